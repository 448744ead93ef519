//! Runs the window starts: Sync now, Full sync, Preview, a confirmed-deletes run, and the schedule
//! while the window holds the store's scheduler lease (`dirsync service` takes it first). A run
//! goes through the runner, as every run does, holding the run lock, so it never overlaps another
//! run from any process; the schedule is the runner's (`runner::schedule`), the service's too.
//! Like the service, the window watches AD between runs while it holds the schedule (README,
//! "Seconds, not half-hours").

use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use crate::clock::now_ms;
use crate::config::SyncOptions;
use crate::engine::cycle::{CycleReport, CycleRequest, Progress, StopSignal};
use crate::engine::password_cycle::PasswordCycleRequest;
use crate::home::Home;
use crate::runner::schedule::{self, Attempts, Due, History, ScheduledRun};
use crate::store::StateStore;
use crate::store::runs::RunRecord;
use crate::store::scheduler_lease::{SchedulerHolder, SchedulerLease};
use crate::store::vocabulary::{RunTrigger, StepKind};
use crate::ui::task::{Lookup, SetupEvent, Task};

/// How often the window renews or asks for the scheduler lease (well within its expiry).
const LOOK_AGAIN: Duration = Duration::from_secs(5);

/// What the administrator (or the schedule) asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    Delta,
    Full,
    Preview,
    Passwords,
    /// After the threshold stopped a run: up to this many deletes, once.
    ConfirmedDeletes(usize),
}

impl RunKind {
    pub fn describe(self) -> String {
        match self {
            RunKind::Delta => "sync".to_owned(),
            RunKind::Full => "full sync".to_owned(),
            RunKind::Preview => "preview".to_owned(),
            RunKind::Passwords => "password sync".to_owned(),
            RunKind::ConfirmedDeletes(count) => format!("sync with {count} confirmed deletes"),
        }
    }
}

/// A run of the window's, under way.
#[derive(Debug)]
pub struct SyncJob {
    pub kind: RunKind,
    pub trigger: RunTrigger,
    task: Task<Result<CycleReport, String>>,
    stop: StopSignal,
    pub live: LiveProgress,
}

/// How a run is going: from the cycle's progress events for a run of the window's, from the
/// store for a run of another process. Times are Unix milliseconds.
#[derive(Debug, Clone)]
pub struct LiveProgress {
    pub started_at: i64,
    pub step: Option<StepKind>,
    pub step_started_at: i64,
    pub done: u64,
    pub total: Option<u64>,
    /// When `done` was counted.
    pub counted_at: i64,
    /// Steps this run will go through (write-back adds one).
    pub steps_expected: usize,
}

impl LiveProgress {
    pub fn new(steps_expected: usize) -> LiveProgress {
        let now = now_ms();
        LiveProgress {
            started_at: now,
            step: None,
            step_started_at: now,
            done: 0,
            total: None,
            counted_at: now,
            steps_expected,
        }
    }

    /// A running run as the store has it (its process keeps its progress there).
    pub fn of_record(run: &RunRecord, steps_expected: usize) -> LiveProgress {
        let current = run.steps.last();
        let progress = run.progress;
        LiveProgress {
            started_at: run.started_at,
            step: current.map(|step| step.step),
            step_started_at: current.map_or(run.started_at, |step| step.started_at),
            done: progress.map_or(0, |progress| progress.done),
            total: progress.and_then(|progress| progress.total),
            counted_at: progress.map_or(run.started_at, |progress| progress.at),
            steps_expected,
        }
    }

    pub fn apply(&mut self, progress: Progress) {
        let now = now_ms();
        match progress {
            Progress::Step(step) => {
                self.step = Some(step);
                self.step_started_at = now;
                self.done = 0;
                self.total = None;
            }
            Progress::Objects { step, done, total } => {
                if self.step != Some(step) {
                    self.step = Some(step);
                    self.step_started_at = now;
                }
                self.done = done;
                self.total = total;
            }
        }
        self.counted_at = now;
    }

    /// Objects per second in the current step.
    pub fn rate_per_sec(&self) -> Option<f64> {
        let elapsed_secs = (self.counted_at - self.step_started_at) as f64 / 1000.0;
        (self.done > 0 && elapsed_secs > 0.2).then(|| self.done as f64 / elapsed_secs)
    }

    /// Time left in the current step, when its total is known.
    pub fn time_left(&self) -> Option<Duration> {
        let total = self.total?;
        let rate = self.rate_per_sec()?;
        Some(Duration::from_secs_f64(
            total.saturating_sub(self.done) as f64 / rate,
        ))
    }

    /// How far the whole run is, 0 to 1: finished steps, plus the current one's share.
    pub fn fraction(&self) -> f32 {
        let Some(step) = self.step else {
            return 0.0;
        };
        let index = step_index(step).min(self.steps_expected.saturating_sub(1));
        let within = match self.total {
            Some(total) if total > 0 => self.done as f32 / total as f32,
            _ => 0.5,
        };
        ((index as f32 + within.clamp(0.0, 1.0)) / self.steps_expected.max(1) as f32)
            .clamp(0.0, 1.0)
    }
}

fn step_index(step: StepKind) -> usize {
    StepKind::ALL
        .iter()
        .position(|known| *known == step)
        .unwrap_or(0)
}

/// How long the window leaves AD unwatched after the watch failed (the DC unreachable, a
/// secret missing): the interval still holds meanwhile.
const WATCH_RETRY: Duration = Duration::from_secs(30);

/// `runner::watch_for_changes`, running. Dropped, it stops: the window stops watching the
/// moment it gives up the schedule or starts a run.
#[derive(Debug)]
struct ChangeWatch {
    seen: mpsc::Receiver<Result<usize, String>>,
    abort: tokio::task::AbortHandle,
}

impl ChangeWatch {
    fn start(home: &Home, every: Duration, runtime: &Handle, repaint: &egui::Context) -> Self {
        let (sender, seen) = mpsc::channel();
        let home = home.clone();
        let repaint = repaint.clone();
        let task = runtime.spawn(async move {
            let seen = crate::runner::watch_for_changes(&home, every)
                .await
                .map_err(|error| error.to_string());
            let _ = sender.send(seen);
            repaint.request_repaint();
        });
        ChangeWatch {
            seen,
            abort: task.abort_handle(),
        }
    }
}

impl Drop for ChangeWatch {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

/// The scheduler's view of the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseState {
    /// Not asked yet.
    Unknown,
    /// This window runs the schedule.
    Ours,
    /// Another process does (the service, or another window).
    Theirs(SchedulerLease),
    Problem(String),
}

/// Starts and follows the window's runs.
#[derive(Debug)]
pub struct SyncRunner {
    pub job: Option<SyncJob>,
    /// How the last run of the window's ended, or why it could not start.
    pub last_outcome: Option<Outcome>,
    pub lease: LeaseState,
    lease_check: Lookup<Option<SchedulerLease>>,
    lease_checked_at: Option<Instant>,
    /// Off in tests that must not start runs of their own.
    pub scheduling: bool,
    /// When the schedule last started each kind of cycle (Unix ms): a password cycle that found
    /// nothing is not recorded, and a cycle that could not start leaves no run either.
    scheduled_sync_at: i64,
    scheduled_passwords_at: i64,
    /// AD watched for changes, while this window runs the schedule and no run is under way.
    watch: Option<ChangeWatch>,
    watch_failed_at: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub kind: RunKind,
    /// The run's id, when one was recorded.
    pub run_id: Option<i64>,
    pub message: String,
    pub failed: bool,
}

impl SyncRunner {
    pub fn new(scheduling: bool) -> SyncRunner {
        SyncRunner {
            job: None,
            last_outcome: None,
            lease: LeaseState::Unknown,
            lease_check: Lookup::NotStarted,
            lease_checked_at: None,
            scheduling,
            scheduled_sync_at: 0,
            scheduled_passwords_at: 0,
            watch: None,
            watch_failed_at: None,
        }
    }

    /// The scheduled cycle to start now, if one is due and this window runs the schedule.
    pub fn due(
        &self,
        runs: &[RunRecord],
        held: bool,
        options: &SyncOptions,
        now: i64,
    ) -> Option<RunKind> {
        if !self.scheduling || self.lease != LeaseState::Ours || self.job.is_some() {
            return None;
        }
        match self.next_due(runs, held, options, now).now_due(now)? {
            ScheduledRun::Sync => Some(RunKind::Delta),
            ScheduledRun::Passwords => Some(RunKind::Passwords),
        }
    }

    /// When the schedule's next runs are due, by the runner's rules, counting what this window
    /// tried to start.
    pub fn next_due(&self, runs: &[RunRecord], held: bool, options: &SyncOptions, now: i64) -> Due {
        let attempts = Attempts {
            sync: self.scheduled_sync_at,
            passwords: self.scheduled_passwords_at,
        };
        schedule::next_due(History::of_runs(runs), attempts, options, held, now)
    }

    /// Watches AD while this window runs the schedule, as the service does: true when changes
    /// were seen and have settled, so a delta cycle is due now. `sync_scheduled` says the
    /// schedule is not waiting for the administrator's first sync; until a cycle has saved a
    /// DirSync cookie, the watch only waits.
    pub fn watch_for_changes(
        &mut self,
        sync_scheduled: bool,
        options: &SyncOptions,
        home: &Home,
        runtime: &Handle,
        repaint: &egui::Context,
    ) -> bool {
        let wanted = self.scheduling
            && self.lease == LeaseState::Ours
            && self.job.is_none()
            && options.watch_secs > 0
            && sync_scheduled;
        if !wanted {
            self.watch = None;
            return false;
        }
        if let Some(watch) = &self.watch {
            return match watch.seen.try_recv() {
                Err(mpsc::TryRecvError::Empty) => false,
                Ok(Ok(count)) => {
                    tracing::info!(count, "changes in AD; syncing now");
                    self.watch = None;
                    true
                }
                Ok(Err(problem)) => {
                    tracing::warn!(%problem, "cannot watch AD for changes; the interval still holds");
                    self.watch = None;
                    self.watch_failed_at = Some(Instant::now());
                    false
                }
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.watch = None;
                    false
                }
            };
        }
        if self
            .watch_failed_at
            .is_some_and(|failed| failed.elapsed() < WATCH_RETRY)
        {
            return false;
        }
        let every = Duration::from_secs(options.watch_secs.max(1));
        self.watch = Some(ChangeWatch::start(home, every, runtime, repaint));
        false
    }

    /// Starts a scheduled cycle, remembering when.
    pub fn start_scheduled(
        &mut self,
        kind: RunKind,
        home: &Home,
        runtime: &Handle,
        repaint: &egui::Context,
        options: &SyncOptions,
    ) {
        if kind == RunKind::Passwords {
            self.scheduled_passwords_at = now_ms();
        } else {
            self.scheduled_sync_at = now_ms();
        }
        self.start(kind, RunTrigger::Schedule, home, runtime, repaint, options);
    }

    pub fn is_running(&self) -> bool {
        self.job.is_some()
    }

    /// Starts a run unless one of the window's is under way.
    pub fn start(
        &mut self,
        kind: RunKind,
        trigger: RunTrigger,
        home: &Home,
        runtime: &Handle,
        repaint: &egui::Context,
        options: &SyncOptions,
    ) {
        if self.job.is_some() {
            return;
        }
        let stop = StopSignal::default();
        let home = home.clone();
        let run_stop = stop.clone();
        let task = Task::spawn(runtime, repaint, move |reporter| async move {
            let progress = reporter.sync_progress();
            let result = if kind == RunKind::Passwords {
                let request = PasswordCycleRequest {
                    trigger,
                    full: false,
                };
                crate::runner::run_passwords(&home, request, &run_stop, &progress).await
            } else {
                let request = CycleRequest {
                    trigger,
                    full: kind == RunKind::Full,
                    preview: kind == RunKind::Preview,
                    confirmed_deletes: match kind {
                        RunKind::ConfirmedDeletes(count) => Some(count),
                        _ => None,
                    },
                    only: None,
                };
                Box::pin(crate::runner::run_sync(
                    &home, request, &run_stop, &progress,
                ))
                .await
            };
            result
                .map(|ran| ran.report)
                .map_err(|error| error.to_string())
        });
        let steps_expected = steps_expected(kind == RunKind::Passwords, options);
        self.job = Some(SyncJob {
            kind,
            trigger,
            task,
            stop,
            live: LiveProgress::new(steps_expected),
        });
    }

    /// Asks the window's run to stop at its next safe point.
    pub fn stop(&self) {
        if let Some(job) = &self.job {
            job.stop.stop();
        }
    }

    /// Stops the window's run and waits, up to `limit`, for it to record how it ended.
    pub fn stop_and_wait(&mut self, limit: Duration) {
        self.stop();
        let started = Instant::now();
        while self.job.is_some() && started.elapsed() < limit {
            if !self.poll() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    pub fn stopping(&self) -> bool {
        self.job.as_ref().is_some_and(|job| job.stop.is_stopped())
    }

    /// Takes progress and the result. Returns true when a run just ended.
    pub fn poll(&mut self) -> bool {
        let Some(job) = &mut self.job else {
            return false;
        };
        for event in job.task.events() {
            if let SetupEvent::Sync(progress) = event {
                job.live.apply(progress);
            }
        }
        let Some(result) = job.task.try_result() else {
            return false;
        };
        let kind = job.kind;
        self.job = None;
        self.last_outcome = Some(match result {
            Ok(Ok(report)) => Outcome {
                kind,
                run_id: Some(report.run_id),
                failed: report.failure.is_some(),
                message: match &report.failure {
                    Some(failure) => format!(
                        "Run {} ({}) failed: {failure}",
                        report.run_id,
                        kind.describe()
                    ),
                    None => format!(
                        "Run {} ({}) ended: {}",
                        report.run_id,
                        kind.describe(),
                        report.status
                    ),
                },
            },
            Ok(Err(problem)) | Err(problem) => Outcome {
                kind,
                run_id: None,
                failed: true,
                message: format!("The {} did not run: {problem}", kind.describe()),
            },
        });
        true
    }

    /// Renews or asks for the scheduler lease every so often, off the UI thread.
    pub fn keep_lease(&mut self, home: &Home, runtime: &Handle, repaint: &egui::Context) {
        if !self.scheduling {
            return;
        }
        self.lease_check.poll();
        match &self.lease_check {
            Lookup::Done(None) => self.lease = LeaseState::Ours,
            Lookup::Done(Some(lease)) => self.lease = LeaseState::Theirs(*lease),
            Lookup::Failed(problem) => self.lease = LeaseState::Problem(problem.to_string()),
            Lookup::NotStarted | Lookup::Running(_) => {}
        }
        // Often: the window hands the schedule over soon after the service starts, and takes
        // it back soon after the service stops.
        let due = self
            .lease_checked_at
            .is_none_or(|checked| checked.elapsed() >= LOOK_AGAIN);
        if due && !self.lease_check.is_running() {
            self.lease_checked_at = Some(Instant::now());
            let home = home.clone();
            self.lease_check = Lookup::read(runtime, repaint, move || {
                let store = StateStore::open_home(&home).map_err(|error| error.to_string())?;
                store
                    .claim_scheduler(SchedulerHolder::Window, std::process::id(), now_ms())
                    .map_err(|error| error.to_string())
            });
        }
    }

    /// Gives the lease back (the window closes).
    pub fn release_lease(&self, home: &Home) {
        if self.lease == LeaseState::Ours
            && let Ok(store) = StateStore::open_home(home)
        {
            let _ = store.release_scheduler(std::process::id());
        }
    }
}

/// How many steps a run goes through: a password cycle two, a sync four, five with hybrid
/// write-back.
pub fn steps_expected(passwords: bool, options: &SyncOptions) -> usize {
    if passwords {
        2
    } else if options.hybrid_write_back {
        5
    } else {
        4
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::vocabulary::{RunMode, RunStatus};

    fn run(id: i64, mode: RunMode, started_at: i64) -> RunRecord {
        RunRecord {
            id,
            trigger: RunTrigger::Schedule,
            mode,
            status: RunStatus::Success,
            started_at,
            ended_at: Some(started_at + 1_000),
            steps: Vec::new(),
            throttled: 0,
            progress: None,
            host: None,
        }
    }

    fn holding_the_lease() -> SyncRunner {
        let mut runner = SyncRunner::new(true);
        runner.lease = LeaseState::Ours;
        runner
    }

    #[test]
    fn the_window_runs_the_runner_s_schedule_only_while_it_holds_the_lease() {
        let options = SyncOptions {
            interval_minutes: 30,
            password_hash_sync: true,
            password_interval_secs: 120,
            ..SyncOptions::default()
        };
        let runner = holding_the_lease();
        // Nothing synced yet and held for the administrator: nothing; not held: a sync now.
        assert_eq!(runner.due(&[], true, &options, 10_000_000), None);
        assert_eq!(
            runner.due(&[], false, &options, 10_000_000),
            Some(RunKind::Delta)
        );
        let start = 1_000_000;
        let runs = [
            run(3, RunMode::Password, start + 60_000),
            run(2, RunMode::Delta, start),
        ];
        assert_eq!(runner.due(&runs, true, &options, start + 61_000), None);
        assert_eq!(
            runner.due(&runs, true, &options, start + 60_000 + 120_000),
            Some(RunKind::Passwords)
        );
        assert_eq!(
            runner.due(&runs, true, &options, start + 30 * 60_000),
            Some(RunKind::Delta)
        );
        // Not when the service holds the schedule, nor with scheduling off.
        let mut theirs = holding_the_lease();
        theirs.lease = LeaseState::Unknown;
        assert_eq!(theirs.due(&runs, true, &options, start + 30 * 60_000), None);
        let mut off = holding_the_lease();
        off.scheduling = false;
        assert_eq!(off.due(&runs, true, &options, start + 30 * 60_000), None);
    }

    #[test]
    fn a_cycle_the_schedule_started_counts_even_when_it_left_no_run() {
        let options = SyncOptions {
            interval_minutes: 30,
            ..SyncOptions::default()
        };
        let mut runner = holding_the_lease();
        let runs = [run(1, RunMode::Delta, 0)];
        // A scheduled cycle that could not start (say the keyring was locked) is not retried
        // every frame: the next try waits an interval.
        let attempted = now_ms();
        runner.scheduled_sync_at = attempted;
        assert_eq!(
            runner.next_due(&runs, false, &options, attempted).sync,
            Some(attempted + 30 * 60_000)
        );
    }

    #[test]
    fn progress_goes_through_the_steps_and_never_past_the_end() {
        let mut live = LiveProgress::new(4);
        assert_eq!(live.fraction(), 0.0);
        live.apply(Progress::Step(StepKind::DirectoryImport));
        assert!(
            (live.fraction() - 0.125).abs() < 1e-6,
            "half of the first step"
        );
        live.apply(Progress::Objects {
            step: StepKind::CloudExport,
            done: 50,
            total: Some(100),
        });
        assert!((live.fraction() - 0.875).abs() < 1e-6);
        assert_eq!(live.done, 50);
        live.apply(Progress::Objects {
            step: StepKind::CloudExport,
            done: 100,
            total: Some(100),
        });
        assert_eq!(live.fraction(), 1.0);
        // A step beyond those expected (write-back when not counted) stays at the end.
        live.apply(Progress::Step(StepKind::WriteBackExport));
        assert!(live.fraction() <= 1.0);
    }
}
