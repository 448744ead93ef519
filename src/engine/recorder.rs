//! Recording a run, for both cycles: the run and its steps with their counters as they go, the
//! failure that stopped it (as the run's `run-failed` error on the step it stopped in), and how
//! it ended. The history (`store::runs`) is what `dirsync runs` and the dashboard read.

use super::export::ExportReport;
use super::plan::Plan;
use super::types::Progress;
use super::write_back::WriteBackReport;
use crate::clock::now_ms;
use crate::config::Config;
use crate::log_events;
use crate::store::runs::{ErrorRecord, RunId, StepCounters};
use crate::store::vocabulary::{RunMode, RunStatus, RunTrigger, StepKind};
use crate::store::{StateStore, StoreError};

/// How a cycle ended.
#[derive(Debug, Clone, PartialEq)]
pub struct CycleReport {
    pub run_id: RunId,
    pub mode: RunMode,
    pub status: RunStatus,
    /// Why the run failed, when it did.
    pub failure: Option<String>,
    pub steps: Vec<(StepKind, StepCounters)>,
    /// What the synchronization stage decided (in a preview, exactly what would be written).
    pub plan: Plan,
    /// What export did (empty in a preview or in staging mode).
    pub export: ExportReport,
    /// What hybrid write-back did (empty when it is off, in a preview or in staging mode).
    pub write_back: WriteBackReport,
    /// Deletes not made: more than the deletion threshold.
    pub deletes_withheld: usize,
    /// Forests whose import failed while the others synced (README, "Several forests").
    pub failed_forests: Vec<String>,
    pub threshold: usize,
    /// Properties found changed in the cloud behind dirsync's back (the run's warnings list
    /// them); 0 when drift was not checked.
    pub drifted: usize,
    pub staging: bool,
    /// Why this host did not export: another host holds the export lease, or this one was
    /// stepped down (README, "Two hosts, one database").
    pub standby: Option<String>,
    /// The run is in the history. A scheduled password cycle that found nothing to send is
    /// not kept.
    pub recorded: bool,
}

/// A run being recorded: its report so far, and where it goes.
pub struct RunRecorder<'a> {
    store: &'a StateStore,
    progress: &'a (dyn Fn(Progress) + Sync),
    pub report: CycleReport,
    /// The connector of each step in `report.steps` (a forest's name, or none).
    step_connectors: Vec<Option<String>>,
}

impl std::fmt::Debug for RunRecorder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunRecorder")
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl<'a> RunRecorder<'a> {
    /// Starts a run of `mode` in the history.
    pub fn start(
        store: &'a StateStore,
        trigger: RunTrigger,
        mode: RunMode,
        config: &Config,
        progress: &'a (dyn Fn(Progress) + Sync),
    ) -> Result<RunRecorder<'a>, StoreError> {
        let host = crate::home::host_name();
        let run_id = store.start_run_on_host(trigger, mode, now_ms(), Some(&host))?;
        // Every line logged inside the run carries its id (the caller's `run` span, README,
        // "Logs").
        tracing::Span::current().record("run_id", run_id);
        // Debug only: a scheduled password cycle that finds nothing leaves no run behind.
        tracing::debug!(
            event = log_events::RUN_STARTED,
            run_id,
            mode = mode.as_str(),
            trigger = trigger.as_str(),
            "run {run_id} started ({}, {})",
            mode.as_str(),
            trigger.as_str()
        );
        Ok(RunRecorder {
            step_connectors: Vec::new(),
            store,
            progress,
            report: CycleReport {
                run_id,
                mode,
                status: RunStatus::Running,
                failure: None,
                steps: Vec::new(),
                plan: Plan::default(),
                export: ExportReport::default(),
                write_back: WriteBackReport::default(),
                deletes_withheld: 0,
                failed_forests: Vec::new(),
                drifted: 0,
                threshold: config.options.deletion_threshold,
                staging: config.options.staging_mode,
                standby: None,
                recorded: true,
            },
        })
    }

    pub fn run_id(&self) -> RunId {
        self.report.run_id
    }

    /// The caller's progress callback, for a step that reports its own progress.
    pub fn progress_callback(&self) -> &'a (dyn Fn(Progress) + Sync) {
        self.progress
    }

    /// Tells the caller's progress callback.
    pub fn progress(&self, event: Progress) {
        (self.progress)(event);
    }

    /// A step begins.
    pub fn step(&mut self, step: StepKind) -> Result<(), StoreError> {
        self.step_of(step, None)
    }

    /// A step of one connector begins: a forest's directory import when several forests sync
    /// (they run at once: each ends with [`RunRecorder::end_step_of`]).
    pub fn step_of(&mut self, step: StepKind, connector: Option<&str>) -> Result<(), StoreError> {
        self.progress(Progress::Step(step));
        self.store
            .start_step(self.run_id(), step, connector, now_ms())?;
        self.report.steps.push((step, StepCounters::default()));
        self.step_connectors.push(connector.map(str::to_owned));
        Ok(())
    }

    /// The step begun last ends with these counters.
    pub fn end_step(&mut self, step: StepKind, counters: StepCounters) -> Result<(), StoreError> {
        self.end_step_of(step, None, counters)
    }

    /// The last step of `step` for `connector` ends with these counters.
    pub fn end_step_of(
        &mut self,
        step: StepKind,
        connector: Option<&str>,
        counters: StepCounters,
    ) -> Result<(), StoreError> {
        self.store
            .finish_step(self.run_id(), step, connector, &counters, now_ms())?;
        let index = (0..self.report.steps.len()).rev().find(|index| {
            self.report.steps[*index].0 == step
                && self.step_connectors[*index].as_deref() == connector
        });
        if let Some(index) = index {
            self.report.steps[index].1 = counters;
        }
        Ok(())
    }

    /// Records why the run failed: on the report, and as the run's `run-failed` error on the
    /// step it stopped in.
    pub fn fail(&mut self, message: String, hint: String) -> Result<(), StoreError> {
        let failed_step = self
            .report
            .steps
            .last()
            .map_or(StepKind::DirectoryImport, |(step, _)| *step);
        self.store.record_errors(
            self.run_id(),
            &[ErrorRecord {
                step: failed_step,
                dn: String::new(),
                anchor: None,
                object_type: None,
                error_type: crate::store::runs::RUN_FAILED_ERROR.to_owned(),
                code: None,
                server_message: message.clone(),
                hint,
                first_occurred_at: now_ms(),
                retry_count: 0,
            }],
        )?;
        tracing::error!(
            event = log_events::RUN_FAILED,
            run_id = self.run_id(),
            reason = %message,
            "run {} failed: {message}",
            self.run_id()
        );
        self.report.failure = Some(message);
        Ok(())
    }

    /// The run ended with `status`, Graph having throttled `throttled` requests.
    pub fn finish(mut self, status: RunStatus, throttled: u64) -> Result<CycleReport, StoreError> {
        if throttled > 0 {
            self.store.record_throttled(self.run_id(), throttled)?;
        }
        self.store.finish_run(self.run_id(), status, now_ms())?;
        self.report.status = status;
        Ok(self.report)
    }

    /// The store failed: marks the run failed if it still can (the caller reports the store's
    /// error).
    pub fn abandon(&self) {
        let _ = self
            .store
            .finish_run(self.run_id(), RunStatus::Failed, now_ms());
    }
}
