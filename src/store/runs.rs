//! Run records (README, "JSON output"): runs, their steps with miisclient's counters, every object change with
//! its old and new values, and every error with the server's words and a hint. Written by the
//! engine as a run goes, read by `dirsync runs` and the dashboard.

use std::collections::HashMap;

use super::db::{OptionalExtension as _, params};
use serde::Serialize;
use serde_json::Value;

use super::{StateStore, StoreError};
use crate::store::vocabulary::{ChangeKind, ObjectKind, RunMode, RunStatus, RunTrigger, StepKind};

pub type RunId = i64;

/// A step's counters, as miisclient shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StepCounters {
    pub adds: u64,
    pub updates: u64,
    pub renames: u64,
    pub deletes: u64,
    pub no_change: u64,
    pub errors: u64,
}

impl StepCounters {
    pub fn count(&mut self, kind: ChangeKind) {
        match kind {
            ChangeKind::Add => self.adds += 1,
            ChangeKind::Update => self.updates += 1,
            ChangeKind::Rename => self.renames += 1,
            ChangeKind::Delete => self.deletes += 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    pub step: StepKind,
    /// The forest a directory import read, when several forests sync (README, "Several
    /// forests").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    #[serde(flatten)]
    pub counters: StepCounters,
}

impl StepRecord {
    /// The step as lists show it: its word, and the forest it read when several sync
    /// (`directory-import (corp.example.com)`).
    pub fn title(&self) -> String {
        match &self.connector {
            Some(connector) => format!("{} ({connector})", self.step),
            None => self.step.as_str().to_owned(),
        }
    }
}

/// One run with its steps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    pub id: RunId,
    pub trigger: RunTrigger,
    pub mode: RunMode,
    pub status: RunStatus,
    /// Unix milliseconds, UTC.
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub steps: Vec<StepRecord>,
    /// Requests Graph answered 429 (throttled) during the run's export.
    pub throttled: u64,
    /// How far the current step of a running run is, as the running process last said.
    #[serde(skip)]
    pub progress: Option<RunProgress>,
    /// The host that ran it (README, "Two hosts, one database"); `None` for runs from before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// Objects done in a running run's current step, of how many when known, said at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunProgress {
    pub done: u64,
    pub total: Option<u64>,
    /// Unix milliseconds.
    pub at: i64,
}

impl RunRecord {
    /// What the run wrote to the cloud: its export step's counters. A run without an export
    /// step (a preview, staging mode, or one that stopped before export) shows what its
    /// synchronization step planned; a run that got no further than import has none.
    pub fn result_counters(&self) -> Option<StepCounters> {
        if let Some(export) = self.step(StepKind::CloudExport) {
            return Some(export.counters);
        }
        let mut planned = self.step(StepKind::Synchronization)?.counters;
        if self.status == RunStatus::StoppedDeletionThreshold {
            // The synchronization step counts the deletes it held back; none was made.
            planned.deletes = 0;
        }
        Some(planned)
    }

    /// Errors of every step.
    pub fn error_count(&self) -> u64 {
        self.steps.iter().map(|step| step.counters.errors).sum()
    }

    pub fn step(&self, kind: StepKind) -> Option<&StepRecord> {
        self.steps.iter().find(|step| step.step == kind)
    }
}

/// One property's values before and after.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AttributeValues {
    pub name: String,
    pub old: Value,
    pub new: Value,
}

/// What happened to one object in one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectChangeRecord {
    pub step: StepKind,
    pub dn: String,
    pub anchor: String,
    pub object_type: ObjectKind,
    pub cloud_id: Option<String>,
    pub change_kind: ChangeKind,
    pub attributes: Vec<AttributeValues>,
}

/// The error type of a run's own failure (the step it stopped in holds it).
pub const RUN_FAILED_ERROR: &str = "run-failed";

/// The error type of a forest that could not be read while the others synced (README,
/// "Several forests"); its `code` names the forest.
pub const FOREST_FAILED_ERROR: &str = "forest-failed";

/// One error of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorRecord {
    pub step: StepKind,
    pub dn: String,
    pub anchor: Option<String>,
    pub object_type: Option<ObjectKind>,
    /// A stable word: `invalid-character`, `conflict`, `forbidden`, …
    pub error_type: String,
    /// The rule or the server's code.
    pub code: Option<String>,
    /// The server's message as it was, or the rule's statement for validation errors.
    pub server_message: String,
    /// What the administrator should do.
    pub hint: String,
    pub first_occurred_at: i64,
    pub retry_count: i64,
}

/// A remark on an object that was exported anyway.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WarningRecord {
    pub dn: String,
    pub anchor: String,
    pub attribute: String,
    pub value: String,
    pub message: String,
}

/// The columns of `run_errors` that [`read_error`] reads, first in a row.
pub(super) const ERROR_COLUMNS: &str = "step, dn, anchor, object_type, error_type, code, \
     server_message, hint, first_occurred_at, retry_count";

pub(super) fn read_error(row: &super::db::Row<'_>) -> super::db::Result<ErrorRecord> {
    let step: String = row.get(0)?;
    let object_type: Option<String> = row.get(3)?;
    Ok(ErrorRecord {
        step: word(StepKind::parse(&step), &step)?,
        dn: row.get(1)?,
        anchor: row.get(2)?,
        object_type: object_type.as_deref().and_then(ObjectKind::parse),
        error_type: row.get(4)?,
        code: row.get(5)?,
        server_message: row.get(6)?,
        hint: row.get(7)?,
        first_occurred_at: row.get(8)?,
        retry_count: row.get(9)?,
    })
}

/// A change's attribute values as the JSON the change tables keep.
fn attributes_json(change: &ObjectChangeRecord) -> String {
    serde_json::to_string(&change.attributes).expect("JSON values always serialize")
}

pub(super) fn word<T>(parsed: Option<T>, text: &str) -> super::db::Result<T> {
    parsed.ok_or_else(|| {
        super::db::DbError::Corrupt(format!("unknown word '{text}' in the state database"))
    })
}

impl StateStore {
    /// Starts a run. A run left `running` by a process that was killed is marked `cancelled`
    /// first: only one run exists at a time (the caller holds the run lock).
    pub fn start_run(
        &self,
        trigger: RunTrigger,
        mode: RunMode,
        now: i64,
    ) -> Result<RunId, StoreError> {
        self.start_run_on_host(trigger, mode, now, None)
    }

    /// Starts a run on `host` (README, "Two hosts, one database"): only runs this host left
    /// `running` (or runs that name no host) are marked `cancelled`; another host's run may be
    /// running now. The run lock is each host's own.
    pub fn start_run_on_host(
        &self,
        trigger: RunTrigger,
        mode: RunMode,
        now: i64,
        host: Option<&str>,
    ) -> Result<RunId, StoreError> {
        let db = self.connection();
        db.execute(
            "UPDATE runs SET status = 'cancelled', ended_at = coalesce(
                 (SELECT max(ended_at) FROM run_steps WHERE run_id = runs.id), started_at)
             WHERE status = 'running'
                 AND (CAST(?1 AS TEXT) IS NULL OR host IS NULL OR host = ?1)",
            [host],
        )?;
        Ok(db.query_row(
            "INSERT INTO runs (trigger, mode, status, started_at, host)
             VALUES (?1, ?2, 'running', ?3, ?4)
             RETURNING id",
            params![trigger.as_str(), mode.as_str(), now, host],
            |row| row.get(0),
        )?)
    }

    /// Marks the runs `host` left `running` as `cancelled`: another host took the export lease
    /// over from it, so it was killed or cut off.
    pub fn cancel_runs_of_host(&self, host: &str) -> Result<usize, StoreError> {
        Ok(self.connection().execute(
            "UPDATE runs SET status = 'cancelled', ended_at = coalesce(
                 (SELECT max(ended_at) FROM run_steps WHERE run_id = runs.id), started_at)
             WHERE status = 'running' AND host = ?1",
            [host],
        )?)
    }

    /// A step begins; `connector` names the forest a directory import reads when several
    /// forests sync.
    pub fn start_step(
        &self,
        run: RunId,
        step: StepKind,
        connector: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.connection().execute(
            "INSERT INTO run_steps (run_id, position, step, started_at, connector)
             VALUES (?1, (SELECT count(*) FROM run_steps WHERE run_id = ?1), ?2, ?3, ?4)",
            params![run, step.as_str(), now, connector],
        )?;
        Ok(())
    }

    /// The last step of `step` for `connector` (none: a step of the whole run) ends.
    pub fn finish_step(
        &self,
        run: RunId,
        step: StepKind,
        connector: Option<&str>,
        counters: &StepCounters,
        now: i64,
    ) -> Result<(), StoreError> {
        self.connection().execute(
            "UPDATE run_steps SET ended_at = ?3, adds = ?4, updates = ?5, renames = ?6,
                 deletes = ?7, no_change = ?8, errors = ?9
             WHERE run_id = ?1 AND position =
                 (SELECT max(position) FROM run_steps
                  WHERE run_id = ?1 AND step = ?2 AND connector IS NOT DISTINCT FROM ?10)",
            params![
                run,
                step.as_str(),
                now,
                counters.adds as i64,
                counters.updates as i64,
                counters.renames as i64,
                counters.deletes as i64,
                counters.no_change as i64,
                counters.errors as i64,
                connector
            ],
        )?;
        Ok(())
    }

    /// Keeps how far the running run's current step is (there is one running run at most: the
    /// caller holds the run lock).
    pub fn record_running_progress(
        &self,
        done: u64,
        total: Option<u64>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.connection().execute(
            "UPDATE runs SET progress_done = ?1, progress_total = ?2, progress_at = ?3
             WHERE status = 'running'",
            params![done as i64, total.map(|total| total as i64), now],
        )?;
        Ok(())
    }

    /// Keeps how many requests Graph throttled during the run.
    pub fn record_throttled(&self, run: RunId, throttled: u64) -> Result<(), StoreError> {
        self.connection().execute(
            "UPDATE runs SET throttled = ?2 WHERE id = ?1",
            params![run, throttled as i64],
        )?;
        Ok(())
    }

    pub fn finish_run(&self, run: RunId, status: RunStatus, now: i64) -> Result<(), StoreError> {
        self.connection().execute(
            "UPDATE runs SET status = ?2, ended_at = ?3 WHERE id = ?1",
            params![run, status.as_str(), now],
        )?;
        Ok(())
    }

    /// Keeps object changes, in one transaction.
    pub fn record_changes(
        &self,
        run: RunId,
        changes: &[ObjectChangeRecord],
    ) -> Result<(), StoreError> {
        self.insert_each(
            "INSERT INTO object_changes (run_id, step, dn, anchor, object_type, cloud_id,
                 change_kind, attribute_changes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            changes,
            |insert, change| {
                insert.execute(params![
                    run,
                    change.step.as_str(),
                    change.dn,
                    change.anchor,
                    change.object_type.as_str(),
                    change.cloud_id,
                    change.change_kind.as_str(),
                    attributes_json(change)
                ])
            },
        )
    }

    /// Keeps what a directory import read of each object (`import_changes`), in one transaction.
    pub fn record_import_changes(
        &self,
        run: RunId,
        changes: &[ObjectChangeRecord],
    ) -> Result<(), StoreError> {
        self.insert_each(
            "INSERT INTO import_changes (run_id, dn, anchor, object_type, change_kind,
                 attribute_changes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            changes,
            |insert, change| {
                insert.execute(params![
                    run,
                    change.dn,
                    change.anchor,
                    change.object_type.as_str(),
                    change.change_kind.as_str(),
                    attributes_json(change)
                ])
            },
        )
    }

    pub fn record_errors(&self, run: RunId, errors: &[ErrorRecord]) -> Result<(), StoreError> {
        self.insert_each(
            "INSERT INTO run_errors (run_id, step, dn, anchor, object_type, error_type, code,
                 server_message, hint, first_occurred_at, retry_count)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            errors,
            |insert, error| {
                insert.execute(params![
                    run,
                    error.step.as_str(),
                    error.dn,
                    error.anchor,
                    error.object_type.map(ObjectKind::as_str),
                    error.error_type,
                    error.code,
                    error.server_message,
                    error.hint,
                    error.first_occurred_at,
                    error.retry_count
                ])
            },
        )
    }

    pub fn record_warnings(
        &self,
        run: RunId,
        warnings: &[WarningRecord],
    ) -> Result<(), StoreError> {
        self.insert_each(
            "INSERT INTO run_warnings (run_id, dn, anchor, attribute, value, message)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            warnings,
            |insert, warning| {
                insert.execute(params![
                    run,
                    warning.dn,
                    warning.anchor,
                    warning.attribute,
                    warning.value,
                    warning.message
                ])
            },
        )
    }

    /// Runs `sql` once per item, all in one transaction (nothing for no items).
    fn insert_each<T>(
        &self,
        sql: &str,
        items: &[T],
        insert_one: impl Fn(&mut super::db::Statement<'_>, &T) -> super::db::Result<usize>,
    ) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let connection = self.connection();
        let transaction = connection.unchecked_transaction()?;
        {
            let mut insert = transaction.prepare(sql)?;
            for item in items {
                insert_one(&mut insert, item)?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    pub fn run_warnings(&self, run: RunId) -> Result<Vec<WarningRecord>, StoreError> {
        let connection = self.connection();
        let mut select = connection.prepare(
            "SELECT dn, anchor, attribute, value, message FROM run_warnings
             WHERE run_id = ?1 ORDER BY id",
        )?;
        let warnings = select
            .query_map([run], |row| {
                Ok(WarningRecord {
                    dn: row.get(0)?,
                    anchor: row.get(1)?,
                    attribute: row.get(2)?,
                    value: row.get(3)?,
                    message: row.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(warnings)
    }

    /// When the last sync cycle (full or delta) and the last password cycle started, for the
    /// schedule.
    pub fn last_run_starts(&self) -> Result<(Option<i64>, Option<i64>), StoreError> {
        let last = |modes: &str| -> Result<Option<i64>, StoreError> {
            Ok(self.connection().query_row(
                &format!("SELECT MAX(started_at) FROM runs WHERE mode IN ({modes})"),
                (),
                |row| row.get(0),
            )?)
        };
        Ok((last("'full', 'delta'")?, last("'password'")?))
    }

    /// Runs, newest first, with their steps (two queries however many runs: the dashboard
    /// reads a thousand of them).
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let db = self.connection();
        let mut select = db.prepare(
            "SELECT id, trigger, mode, status, started_at, ended_at, throttled, progress_done,
                 progress_total, progress_at, host
             FROM runs ORDER BY started_at DESC, id DESC LIMIT ?1",
        )?;
        let mut runs = select
            .query_map([limit as i64], read_run)?
            .collect::<Result<Vec<_>, _>>()?;
        let Some(oldest) = runs.iter().map(|run| run.id).min() else {
            return Ok(runs);
        };
        let mut steps = self.steps_where("run_id >= ?1", oldest)?;
        for run in &mut runs {
            run.steps = steps.remove(&run.id).unwrap_or_default();
        }
        Ok(runs)
    }

    pub fn run(&self, id: RunId) -> Result<Option<RunRecord>, StoreError> {
        let run = self
            .connection()
            .query_row(
                "SELECT id, trigger, mode, status, started_at, ended_at, throttled, progress_done,
                     progress_total, progress_at, host
                 FROM runs WHERE id = ?1",
                [id],
                read_run,
            )
            .optional()?;
        match run {
            Some(mut run) => {
                run.steps = self
                    .steps_where("run_id = ?1", id)?
                    .remove(&id)
                    .unwrap_or_default();
                Ok(Some(run))
            }
            None => Ok(None),
        }
    }

    /// The steps of the runs `condition` (on `run_id`, with `?1` bound to `value`) picks, in
    /// order, by run.
    fn steps_where(
        &self,
        condition: &str,
        value: i64,
    ) -> Result<HashMap<RunId, Vec<StepRecord>>, StoreError> {
        let connection = self.connection();
        let mut select = connection.prepare(&format!(
            "SELECT run_id, step, started_at, ended_at, adds, updates, renames, deletes,
                 no_change, errors, connector
             FROM run_steps WHERE {condition} ORDER BY run_id, position"
        ))?;
        let mut steps: HashMap<RunId, Vec<StepRecord>> = HashMap::new();
        let mut rows = select.query([value])?;
        while let Some(row) = rows.next()? {
            let step: String = row.get(1)?;
            let count = |index: usize| -> super::db::Result<u64> {
                Ok(row.get::<_, i64>(index)?.max(0) as u64)
            };
            steps.entry(row.get(0)?).or_default().push(StepRecord {
                step: word(StepKind::parse(&step), &step)?,
                connector: row.get(10)?,
                started_at: row.get(2)?,
                ended_at: row.get(3)?,
                counters: StepCounters {
                    adds: count(4)?,
                    updates: count(5)?,
                    renames: count(6)?,
                    deletes: count(7)?,
                    no_change: count(8)?,
                    errors: count(9)?,
                },
            });
        }
        Ok(steps)
    }

    /// A run's object changes in the order they were made, optionally of one kind.
    pub fn run_changes(
        &self,
        run: RunId,
        kind: Option<ChangeKind>,
    ) -> Result<Vec<ObjectChangeRecord>, StoreError> {
        let connection = self.connection();
        let mut select = connection.prepare(
            "SELECT step, dn, anchor, object_type, cloud_id, change_kind, attribute_changes
             FROM object_changes WHERE run_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR change_kind = ?2)
             ORDER BY id",
        )?;
        let changes = select
            .query_map(params![run, kind.map(ChangeKind::as_str)], |row| {
                let step: String = row.get(0)?;
                let object_type: String = row.get(3)?;
                let change_kind: String = row.get(5)?;
                let attributes: String = row.get(6)?;
                Ok(ObjectChangeRecord {
                    step: word(StepKind::parse(&step), &step)?,
                    dn: row.get(1)?,
                    anchor: row.get(2)?,
                    object_type: word(ObjectKind::parse(&object_type), &object_type)?,
                    cloud_id: row.get(4)?,
                    change_kind: word(ChangeKind::parse(&change_kind), &change_kind)?,
                    attributes: serde_json::from_str(&attributes).unwrap_or_default(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(changes)
    }

    pub fn run_errors(&self, run: RunId) -> Result<Vec<ErrorRecord>, StoreError> {
        let connection = self.connection();
        let mut select = connection.prepare(&format!(
            "SELECT {ERROR_COLUMNS} FROM run_errors WHERE run_id = ?1 ORDER BY id"
        ))?;
        let errors = select
            .query_map([run], read_error)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(errors)
    }

    /// Why run `run` failed, in its own words (its [`RUN_FAILED_ERROR`] error), when it did.
    pub fn run_failure(&self, run: RunId) -> Result<Option<String>, StoreError> {
        Ok(self
            .connection()
            .query_row(
                "SELECT server_message FROM run_errors WHERE run_id = ?1 AND error_type = ?2
                 ORDER BY id LIMIT 1",
                params![run, RUN_FAILED_ERROR],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// Removes one finished run with its steps, changes and errors.
    pub fn delete_run(&self, run: RunId) -> Result<(), StoreError> {
        self.connection().execute(
            "DELETE FROM runs WHERE id = ?1 AND status != 'running'",
            [run],
        )?;
        Ok(())
    }

    /// Removes runs that started before `cutoff` (Unix ms), with their steps, changes and errors.
    /// Returns how many runs went.
    pub fn prune_runs(&self, cutoff: i64) -> Result<usize, StoreError> {
        Ok(self.connection().execute(
            "DELETE FROM runs WHERE started_at < ?1 AND status != 'running'",
            [cutoff],
        )?)
    }
}

fn read_run(row: &super::db::Row<'_>) -> super::db::Result<RunRecord> {
    let trigger: String = row.get(1)?;
    let mode: String = row.get(2)?;
    let status: String = row.get(3)?;
    Ok(RunRecord {
        id: row.get(0)?,
        trigger: word(RunTrigger::parse(&trigger), &trigger)?,
        mode: word(RunMode::parse(&mode), &mode)?,
        status: word(RunStatus::parse(&status), &status)?,
        started_at: row.get(4)?,
        ended_at: row.get(5)?,
        steps: Vec::new(),
        throttled: row.get::<_, i64>(6)?.max(0) as u64,
        progress: match (row.get::<_, Option<i64>>(7)?, row.get::<_, Option<i64>>(9)?) {
            (Some(done), Some(at)) if status == "running" => Some(RunProgress {
                done: done.max(0) as u64,
                total: row
                    .get::<_, Option<i64>>(8)?
                    .map(|total| total.max(0) as u64),
                at,
            }),
            _ => None,
        },
        host: row.get(10)?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_run_keeps_its_steps_changes_and_errors_and_retention_removes_old_runs() {
        let store = StateStore::open_scratch().expect("open");
        let old = store
            .start_run(RunTrigger::Schedule, RunMode::Delta, 1_000)
            .expect("run");
        store
            .finish_run(old, RunStatus::Success, 2_000)
            .expect("finish");
        let run = store
            .start_run(RunTrigger::Cli, RunMode::Full, 10_000)
            .expect("run");
        store
            .start_step(run, StepKind::DirectoryImport, None, 10_001)
            .expect("step");
        store
            .start_step(run, StepKind::CloudExport, None, 10_002)
            .expect("step");
        let counters = StepCounters {
            adds: 1,
            errors: 1,
            ..StepCounters::default()
        };
        store
            .finish_step(run, StepKind::CloudExport, None, &counters, 10_003)
            .expect("finish step");
        store
            .record_changes(
                run,
                &[ObjectChangeRecord {
                    step: StepKind::CloudExport,
                    dn: "CN=a,DC=x".to_owned(),
                    anchor: "guid".to_owned(),
                    object_type: ObjectKind::User,
                    cloud_id: Some("id".to_owned()),
                    change_kind: ChangeKind::Add,
                    attributes: vec![AttributeValues {
                        name: "displayName".to_owned(),
                        old: Value::Null,
                        new: json!("A"),
                    }],
                }],
            )
            .expect("changes");
        store
            .record_errors(
                run,
                &[ErrorRecord {
                    step: StepKind::Synchronization,
                    dn: "CN=b,DC=x".to_owned(),
                    anchor: None,
                    object_type: Some(ObjectKind::User),
                    error_type: "invalid-character".to_owned(),
                    code: None,
                    server_message: "bad".to_owned(),
                    hint: "fix it".to_owned(),
                    first_occurred_at: 10_000,
                    retry_count: 2,
                }],
            )
            .expect("errors");
        store
            .finish_run(run, RunStatus::CompletedWithErrors, 10_004)
            .expect("finish");

        let runs = store.runs(10).expect("runs");
        assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), [run, old]);
        assert_eq!(runs[0].steps.len(), 2);
        assert_eq!(runs[0].steps[1].counters, counters);
        let adds = store
            .run_changes(run, Some(ChangeKind::Add))
            .expect("changes");
        assert_eq!(adds.len(), 1);
        assert_eq!(adds[0].attributes[0].new, json!("A"));
        assert!(
            store
                .run_changes(run, Some(ChangeKind::Delete))
                .expect("changes")
                .is_empty()
        );
        assert_eq!(store.run_errors(run).expect("errors")[0].retry_count, 2);

        assert_eq!(store.prune_runs(5_000).expect("prune"), 1);
        assert!(store.run(old).expect("read").is_none());
        assert!(store.run(run).expect("read").is_some());
    }

    #[test]
    fn a_running_run_keeps_its_progress_and_a_finished_one_shows_none() {
        let store = StateStore::open_scratch().expect("open");
        let run = store
            .start_run(RunTrigger::Schedule, RunMode::Delta, 1_000)
            .expect("run");
        assert_eq!(store.run(run).expect("read").expect("run").progress, None);
        store
            .record_running_progress(400, Some(1_000), 2_000)
            .expect("progress");
        assert_eq!(
            store.runs(1).expect("runs")[0].progress,
            Some(RunProgress {
                done: 400,
                total: Some(1_000),
                at: 2_000
            })
        );
        store
            .finish_run(run, RunStatus::Success, 3_000)
            .expect("finish");
        assert_eq!(store.run(run).expect("read").expect("run").progress, None);
        // Nothing runs: nothing to keep progress on.
        store
            .record_running_progress(1, None, 4_000)
            .expect("progress");
        assert_eq!(store.run(run).expect("read").expect("run").progress, None);
    }

    #[test]
    fn a_run_left_running_by_a_killed_process_is_marked_cancelled() {
        let store = StateStore::open_scratch().expect("open");
        let killed = store
            .start_run(RunTrigger::Cli, RunMode::Delta, 1_000)
            .expect("run");
        store
            .start_run(RunTrigger::Cli, RunMode::Delta, 2_000)
            .expect("run");
        let record = store.run(killed).expect("read").expect("exists");
        assert_eq!(record.status, RunStatus::Cancelled);
        assert_eq!(record.ended_at, Some(1_000));
    }
}
