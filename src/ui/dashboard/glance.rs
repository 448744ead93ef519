//! At a glance (README, "The dashboard"): above the run history, whether dirsync is healthy (the
//! verdict `/healthz` gives), the last successful sync and the next, the objects in sync, with errors and
//! waiting to export, the credential's expiry, the tenant's directory quota, and a chart of the recent sync runs in which a run
//! slower or with more errors than usual stands out.

use egui_plot::{Bar, BarChart, Legend, Plot};
use tokio::runtime::Handle;

use super::read_store;
use crate::clock::human_time;
use crate::config::Config;
use crate::home::Home;
use crate::runner::monitoring::{health_of, is_sync, newest_sync_run, went_through};
use crate::store::monitoring::{DirectoryQuota, StateFigures};
use crate::store::runs::RunRecord;
use crate::store::vocabulary::RunStatus;
use crate::ui::task::Lookup;
use crate::ui::theme;

/// Sync runs the chart shows.
const CHARTED_RUNS: usize = 30;
/// A run stands out when it took, or counted errors, this many times the median of the charted
/// runs.
const STANDS_OUT: f64 = 2.0;

/// What the store says beside the history: the sync state's figures, the newest sync run's
/// failure, the directory quota the last cycle read.
type Figures = (StateFigures, Option<String>, Option<DirectoryQuota>);

/// What the store says beside the history, read again when the newest run changes.
#[derive(Debug, Default)]
pub struct Glance {
    figures: Lookup<Figures>,
    /// The newest run (id, status) the figures were read after.
    read_after: Option<(i64, RunStatus)>,
}

impl Glance {
    fn refresh_if_changed(
        &mut self,
        runs: &[RunRecord],
        home: &Home,
        runtime: &Handle,
        repaint: &egui::Context,
    ) {
        self.figures.poll();
        let newest = runs.first().map(|run| (run.id, run.status));
        if self.read_after == newest && !matches!(self.figures, Lookup::NotStarted) {
            return;
        }
        if self.figures.is_running() {
            return;
        }
        self.read_after = newest;
        let failed_run = newest_sync_run(runs)
            .filter(|run| run.status == RunStatus::Failed)
            .map(|run| run.id);
        self.figures = read_store(home, runtime, repaint, move |store| {
            let failure = match failed_run {
                Some(id) => store.run_failure(id)?,
                None => None,
            };
            Ok((store.state_figures()?, failure, store.directory_quota()?))
        });
    }
}

#[allow(clippy::too_many_arguments)]
pub fn glance_ui(
    ui: &mut egui::Ui,
    glance: &mut Glance,
    runs: &[RunRecord],
    config: Option<&Config>,
    next_sync: &str,
    home: &Home,
    runtime: &Handle,
    now: i64,
) {
    glance.refresh_if_changed(runs, home, runtime, ui.ctx());
    let Some(config) = config else {
        return;
    };
    let (figures, failure, quota) = match &glance.figures {
        Lookup::Done((figures, failure, quota)) => (Some(*figures), failure.as_deref(), *quota),
        _ => (None, None, None),
    };
    let health = health_of(
        runs,
        failure,
        config.options.interval_minutes,
        config.monitoring.health_intervals,
        now,
    );
    ui.horizontal_wrapped(|ui| {
        let (word, colour) = if health.healthy {
            ("Healthy", theme::ok(ui))
        } else {
            ("Needs attention", theme::error(ui))
        };
        ui.label(
            egui::RichText::new(word)
                .color(theme::on_badge(ui))
                .background_color(colour)
                .strong(),
        );
        ui.label(health.reason.trim_start_matches("ok: "));
    });
    ui.horizontal_wrapped(|ui| {
        let last_success = runs.iter().find(|run| is_sync(run) && went_through(run));
        ui.label(match last_success {
            Some(run) => format!(
                "Last successful sync: run {}, {}",
                run.id,
                human_time(run.ended_at.unwrap_or(run.started_at))
            ),
            None => "No successful sync yet".to_owned(),
        });
        ui.separator();
        ui.label(next_sync);
        if let Some(figures) = figures {
            ui.separator();
            ui.label(format!("In sync: {}", figures.linked));
            ui.separator();
            let trend: Vec<String> = runs
                .iter()
                .filter(|run| is_sync(run) && run.status != RunStatus::Running)
                .take(5)
                .map(|run| run.error_count().to_string())
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            ui.label(format!(
                "With errors: {} (errors per run: {})",
                figures.with_errors,
                trend.join(", ")
            ));
            ui.separator();
            ui.label(format!("Waiting to export: {}", figures.pending_exports));
        }
        if let Some(expires) = config
            .cloud
            .credential_expires_at
            .as_deref()
            .and_then(crate::credential_expiry::parse_rfc3339)
        {
            ui.separator();
            let days = crate::credential_expiry::days_left(expires, now / 1000);
            let text = if days == 0 {
                "Credential expired".to_owned()
            } else {
                format!("Credential expires in {days} days")
            };
            if days <= crate::credential_expiry::WARN_DAYS_BEFORE {
                ui.colored_label(theme::warning(ui), text);
            } else {
                ui.label(text);
            }
        }
        if let Some(quota) = quota {
            ui.separator();
            let text = format!(
                "Directory quota: {} of {} objects ({:.1} %)",
                quota.used,
                quota.total,
                quota.percent_used()
            );
            // DirSync's administrators met the quota as a failed export: warn before.
            if quota.percent_used() >= 90.0 {
                ui.colored_label(theme::warning(ui), text);
            } else {
                ui.label(text);
            }
        }
    });
    chart_ui(ui, runs);
    ui.add_space(6.0);
}

/// Changes and errors per sync run, oldest to newest; a run that failed, or took or counted
/// errors [`STANDS_OUT`] times the median, is drawn in the error colour and named below.
fn chart_ui(ui: &mut egui::Ui, runs: &[RunRecord]) {
    let mut charted: Vec<&RunRecord> = runs
        .iter()
        .filter(|run| is_sync(run) && run.status != RunStatus::Running)
        .take(CHARTED_RUNS)
        .collect();
    if charted.len() < 2 {
        return;
    }
    charted.reverse();
    let duration =
        |run: &RunRecord| (run.ended_at.unwrap_or(run.started_at) - run.started_at) as f64;
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let usual_duration = median(charted.iter().map(|run| duration(run)).collect());
    let usual_errors = median(charted.iter().map(|run| run.error_count() as f64).collect());
    let mut notable = Vec::new();
    let stands_out = |run: &RunRecord| {
        if run.status == RunStatus::Failed {
            return Some("failed".to_owned());
        }
        let took = duration(run);
        if usual_duration > 0.0 && took > STANDS_OUT * usual_duration && took > 1000.0 {
            return Some(format!(
                "took {:.1}x as long as usual",
                took / usual_duration
            ));
        }
        let errors = run.error_count() as f64;
        if errors > 0.0 && errors > STANDS_OUT * usual_errors.max(1.0) {
            return Some(format!("{errors} errors, usually {usual_errors}"));
        }
        None
    };
    let normal = ui.visuals().selection.bg_fill;
    let error = theme::error(ui);
    let mut changes = Vec::new();
    let mut errors = Vec::new();
    for (index, run) in charted.iter().enumerate() {
        let counters = run.result_counters().unwrap_or_default();
        let changed =
            (counters.adds + counters.updates + counters.renames + counters.deletes) as f64;
        let odd = stands_out(run);
        let colour = if odd.is_some() { error } else { normal };
        changes.push(
            Bar::new(index as f64, changed)
                .name(format!("run {}", run.id))
                .fill(colour)
                .width(0.4),
        );
        errors.push(
            Bar::new(index as f64 + 0.4, run.error_count() as f64)
                .name(format!("run {}", run.id))
                .fill(error.gamma_multiply(0.6))
                .width(0.4),
        );
        if let Some(why) = odd {
            notable.push(format!("run {} {why}", run.id));
        }
    }
    ui.label(format!(
        "The last {} sync runs, oldest first: changes and errors",
        charted.len()
    ));
    let run_ids: Vec<i64> = charted.iter().map(|run| run.id).collect();
    Plot::new("glance_runs")
        .height(110.0)
        .x_axis_formatter(move |mark, _| {
            // Whole positions are runs: name them by their number.
            let index = mark.value.round();
            if (mark.value - index).abs() > f64::EPSILON || index < 0.0 {
                return String::new();
            }
            run_ids
                .get(index as usize)
                .map(|id| format!("run {id}"))
                .unwrap_or_default()
        })
        .legend(Legend::default())
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .show_x(false)
        .show_y(false)
        .show(ui, |plot| {
            plot.bar_chart(BarChart::new("changes", changes).color(normal));
            plot.bar_chart(BarChart::new("errors", errors).color(error));
        });
    if !notable.is_empty() {
        ui.colored_label(error, format!("Stands out: {}", notable.join("; ")));
    }
}
