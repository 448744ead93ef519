//! Monitoring (README, "Monitoring"): the figures `/metrics` serves in Prometheus's text format,
//! and the verdict `/healthz` gives, both read from `state.db` when asked. Reading is the only
//! I/O; the rendering and the verdict are pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{RunError, load_config};
use crate::home::Home;
use crate::store::StateStore;
use crate::store::monitoring::StateFigures;
use crate::store::runs::RunRecord;
use crate::store::vocabulary::{RunMode, RunStatus, StepKind};

/// Runs read for the totals: more than any retention keeps in practice.
const RUNS_READ: usize = 1_000_000;

/// What monitoring knows at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The kept run history, newest first.
    pub runs: Vec<RunRecord>,
    pub errors_by_type: BTreeMap<String, u64>,
    pub state: StateFigures,
    /// The sync app's credential expires then (Unix seconds), when setup recorded it.
    pub credential_expires_at: Option<i64>,
    pub interval_minutes: u64,
    pub health_intervals: u32,
    /// Why the newest sync run failed, in its own words, when it did.
    pub last_failure: Option<String>,
    /// The tenant's directory quota as the last cycle read it.
    pub directory_quota: Option<crate::store::monitoring::DirectoryQuota>,
}

/// `/healthz`'s verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub healthy: bool,
    pub reason: String,
}

/// Reads what the figures need, in a few queries.
pub fn read_snapshot(home: &Home) -> Result<Snapshot, RunError> {
    let config = load_config(home)?;
    let store = StateStore::open_home(home)?;
    let runs = store.runs(RUNS_READ)?;
    let last_failure = match newest_sync_run(&runs) {
        Some(run) if run.status == RunStatus::Failed => store.run_failure(run.id)?,
        _ => None,
    };
    Ok(Snapshot {
        errors_by_type: store.errors_by_type()?,
        state: store.state_figures()?,
        credential_expires_at: config
            .cloud
            .credential_expires_at
            .as_deref()
            .and_then(crate::credential_expiry::parse_rfc3339),
        interval_minutes: config.options.interval_minutes,
        health_intervals: config.monitoring.health_intervals,
        last_failure,
        directory_quota: store.directory_quota()?,
        runs,
    })
}

/// A sync cycle (full or delta), as opposed to a preview or a password cycle.
pub fn is_sync(run: &RunRecord) -> bool {
    matches!(run.mode, RunMode::Full | RunMode::Delta)
}

/// The run went through: every object was read and planned (some may have failed).
pub fn went_through(run: &RunRecord) -> bool {
    matches!(
        run.status,
        RunStatus::Success | RunStatus::CompletedWithErrors
    )
}

/// Healthy while the newest sync run went through and one went through within
/// `health_intervals` sync intervals.
pub fn health(snapshot: &Snapshot, now_ms: i64) -> Health {
    health_of(
        &snapshot.runs,
        snapshot.last_failure.as_deref(),
        snapshot.interval_minutes,
        snapshot.health_intervals,
        now_ms,
    )
}

/// [`health`] over a run history (newest first) and the newest sync run's failure, if it failed.
pub fn health_of(
    runs: &[RunRecord],
    last_failure: Option<&str>,
    interval_minutes: u64,
    health_intervals: u32,
    now_ms: i64,
) -> Health {
    let unhealthy = |reason: String| Health {
        healthy: false,
        reason,
    };
    let Some(newest) = newest_sync_run(runs) else {
        return unhealthy("no sync run has ended yet".to_owned());
    };
    if !went_through(newest) {
        let why = last_failure
            .map(|failure| format!(": {failure}"))
            .unwrap_or_default();
        return unhealthy(format!(
            "the last sync run (run {}) ended {}{why}",
            newest.id,
            newest.status.as_str()
        ));
    }
    let ended = newest.ended_at.unwrap_or(newest.started_at);
    let allowed_ms = i64::from(health_intervals) * interval_minutes as i64 * 60_000;
    let since_ms = now_ms - ended;
    if since_ms > allowed_ms {
        return unhealthy(format!(
            "no sync run for {} minutes (one is due every {} minutes; the service may be stopped)",
            since_ms / 60_000,
            interval_minutes
        ));
    }
    Health {
        healthy: true,
        reason: format!(
            "ok: run {} ended {} {} s ago",
            newest.id,
            newest.status.as_str(),
            since_ms / 1000
        ),
    }
}

/// The newest sync run (full or delta) that has ended.
pub fn newest_sync_run(runs: &[RunRecord]) -> Option<&RunRecord> {
    runs.iter()
        .find(|run| is_sync(run) && run.status != RunStatus::Running)
}

/// The figures in Prometheus's text exposition format (version 0.0.4). Totals count the kept run
/// history: a retention sweep lowers them, which Prometheus reads as a counter reset.
pub fn metrics_text(snapshot: &Snapshot, now_ms: i64) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };

    let mut runs: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    let mut throttled = 0;
    let mut step_objects: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for run in snapshot
        .runs
        .iter()
        .filter(|run| run.status != RunStatus::Running)
    {
        *runs
            .entry((run.mode.as_str(), run.status.as_str()))
            .or_default() += 1;
        throttled += run.throttled;
        for step in &run.steps {
            let counters = step.counters;
            for (change, count) in [
                ("add", counters.adds),
                ("update", counters.updates),
                ("rename", counters.renames),
                ("delete", counters.deletes),
                ("no-change", counters.no_change),
                ("error", counters.errors),
            ] {
                *step_objects
                    .entry((step.step.as_str(), change))
                    .or_default() += count;
            }
        }
    }
    family(
        "dirsync_runs_total",
        "counter",
        "Runs in the kept history that ended, by mode and status.",
        runs.iter()
            .map(|((mode, status), count)| {
                (labels(&[("mode", mode), ("status", status)]), *count as f64)
            })
            .collect(),
    );
    family(
        "dirsync_step_objects_total",
        "counter",
        "Objects the runs' steps counted, by step and kind of change.",
        step_objects
            .iter()
            .map(|((step, change), count)| {
                (labels(&[("step", step), ("change", change)]), *count as f64)
            })
            .collect(),
    );
    family(
        "dirsync_object_errors_total",
        "counter",
        "Object errors the runs recorded, by error type.",
        snapshot
            .errors_by_type
            .iter()
            .map(|(error_type, count)| (labels(&[("error_type", error_type)]), *count as f64))
            .collect(),
    );
    family(
        "dirsync_graph_throttled_requests_total",
        "counter",
        "Microsoft Graph requests answered 429 (throttled) during the runs.",
        vec![(String::new(), throttled as f64)],
    );
    let mut last_completed: BTreeMap<&str, i64> = BTreeMap::new();
    for run in snapshot.runs.iter().filter(|run| went_through(run)) {
        // Newest first: the first of each mode is its last.
        last_completed
            .entry(run.mode.as_str())
            .or_insert(run.ended_at.unwrap_or(run.started_at));
    }
    family(
        "dirsync_last_completed_run_timestamp_seconds",
        "gauge",
        "When the last run of each mode that went through (success or completed-with-errors) ended.",
        last_completed
            .iter()
            .map(|(mode, ended)| (labels(&[("mode", mode)]), seconds(*ended)))
            .collect(),
    );
    if let Some(newest) = snapshot
        .runs
        .iter()
        .find(|run| is_sync(run) && run.status != RunStatus::Running && run.ended_at.is_some())
    {
        family(
            "dirsync_last_sync_run_duration_seconds",
            "gauge",
            "How long the last sync run took.",
            vec![(
                String::new(),
                seconds(newest.ended_at.unwrap_or(newest.started_at) - newest.started_at),
            )],
        );
        family(
            "dirsync_last_sync_run_step_duration_seconds",
            "gauge",
            "How long each step of the last sync run took.",
            newest
                .steps
                .iter()
                .filter_map(|step| {
                    let ended = step.ended_at?;
                    Some((
                        labels(&[("step", step_name(step.step))]),
                        seconds(ended - step.started_at),
                    ))
                })
                .collect(),
        );
    }
    family(
        "dirsync_objects_linked",
        "gauge",
        "Objects dirsync manages in the cloud (linked to an AD object).",
        vec![(String::new(), snapshot.state.linked as f64)],
    );
    family(
        "dirsync_pending_exports",
        "gauge",
        "Objects read from AD whose change the cloud has not taken yet.",
        vec![(String::new(), snapshot.state.pending_exports as f64)],
    );
    family(
        "dirsync_objects_with_errors",
        "gauge",
        "Objects whose last export or validation failed.",
        vec![(String::new(), snapshot.state.with_errors as f64)],
    );
    if let Some(expires) = snapshot.credential_expires_at {
        family(
            "dirsync_credential_expiry_timestamp_seconds",
            "gauge",
            "When the sync app's credential expires.",
            vec![(String::new(), expires as f64)],
        );
    }
    if let Some(quota) = snapshot.directory_quota {
        family(
            "dirsync_directory_quota_used_objects",
            "gauge",
            "Directory objects the tenant holds (its directorySizeQuota.used, as the last cycle read it).",
            vec![(String::new(), quota.used as f64)],
        );
        family(
            "dirsync_directory_quota_objects",
            "gauge",
            "Directory objects the tenant may hold (its directorySizeQuota.total).",
            vec![(String::new(), quota.total as f64)],
        );
    }
    let health = health(snapshot, now_ms);
    family(
        "dirsync_healthy",
        "gauge",
        "1 while /healthz answers 200, else 0.",
        vec![(String::new(), if health.healthy { 1.0 } else { 0.0 })],
    );
    out
}

fn step_name(step: StepKind) -> &'static str {
    step.as_str()
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// `{name="value",…}`, values escaped as the exposition format says.
fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(name, value)| {
            let escaped = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{name}=\"{escaped}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::runs::{StepCounters, StepRecord};
    use crate::store::vocabulary::RunTrigger;

    const MINUTE: i64 = 60_000;

    fn run(id: i64, mode: RunMode, status: RunStatus, ended_at: i64) -> RunRecord {
        RunRecord {
            id,
            trigger: RunTrigger::Schedule,
            mode,
            status,
            started_at: ended_at - 2_000,
            ended_at: Some(ended_at),
            steps: vec![StepRecord {
                step: StepKind::CloudExport,
                connector: None,
                started_at: ended_at - 1_500,
                ended_at: Some(ended_at),
                counters: StepCounters {
                    adds: 2,
                    updates: 1,
                    ..StepCounters::default()
                },
            }],
            throttled: 1,
            progress: None,
            host: None,
        }
    }

    fn snapshot(runs: Vec<RunRecord>) -> Snapshot {
        Snapshot {
            runs,
            interval_minutes: 30,
            health_intervals: 3,
            ..Snapshot::default()
        }
    }

    #[test]
    fn healthy_while_the_last_sync_went_through_within_the_intervals() {
        let now = 1_000 * MINUTE;
        let fresh = snapshot(vec![run(
            2,
            RunMode::Delta,
            RunStatus::Success,
            now - 10 * MINUTE,
        )]);
        assert!(health(&fresh, now).healthy);
        let stale = snapshot(vec![run(
            2,
            RunMode::Delta,
            RunStatus::Success,
            now - 91 * MINUTE,
        )]);
        let verdict = health(&stale, now);
        assert!(!verdict.healthy);
        assert!(
            verdict.reason.contains("no sync run for 91 minutes"),
            "{verdict:?}"
        );
        let mut failed = snapshot(vec![
            run(3, RunMode::Delta, RunStatus::Failed, now - MINUTE),
            run(2, RunMode::Delta, RunStatus::Success, now - 10 * MINUTE),
        ]);
        failed.last_failure = Some("cannot reach dc1:636".to_owned());
        let verdict = health(&failed, now);
        assert!(!verdict.healthy);
        assert_eq!(
            verdict.reason,
            "the last sync run (run 3) ended failed: cannot reach dc1:636"
        );
        // A password cycle or a preview says nothing about the sync.
        let passwords = snapshot(vec![
            run(4, RunMode::Password, RunStatus::Failed, now),
            run(3, RunMode::Preview, RunStatus::Failed, now),
            run(
                2,
                RunMode::Delta,
                RunStatus::CompletedWithErrors,
                now - MINUTE,
            ),
        ]);
        assert!(health(&passwords, now).healthy);
        assert!(!health(&snapshot(Vec::new()), now).healthy);
    }

    #[test]
    fn metrics_total_the_kept_runs() {
        let now = 1_000 * MINUTE;
        let text = metrics_text(
            &snapshot(vec![
                run(3, RunMode::Delta, RunStatus::Failed, now),
                run(2, RunMode::Delta, RunStatus::Success, now - MINUTE),
                run(1, RunMode::Full, RunStatus::Success, now - 2 * MINUTE),
            ]),
            now,
        );
        for line in [
            "# TYPE dirsync_runs_total counter",
            "dirsync_runs_total{mode=\"delta\",status=\"failed\"} 1",
            "dirsync_runs_total{mode=\"delta\",status=\"success\"} 1",
            "dirsync_runs_total{mode=\"full\",status=\"success\"} 1",
            "dirsync_step_objects_total{step=\"cloud-export\",change=\"add\"} 6",
            "dirsync_graph_throttled_requests_total 3",
            "dirsync_last_completed_run_timestamp_seconds{mode=\"delta\"} 59940",
            "dirsync_last_sync_run_duration_seconds 2",
            "dirsync_healthy 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
        }
        assert_eq!(labels(&[("a", "x\"y\\z")]), "{a=\"x\\\"y\\\\z\"}");
    }
}
