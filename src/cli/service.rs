//! `dirsync service`: the scheduler loop for systemd. Runs the runner's schedule
//! (`runner::schedule`: a sync cycle on the configured interval and, with password hash sync on,
//! the password cycle on its own shorter one), one run at a time; SIGTERM (or Ctrl-C) stops a
//! running cycle at its next safe point and ends the loop.
//! A run already in progress elsewhere (a manual `dirsync sync`) makes this tick skip. The service
//! holds the store's scheduler lease while it runs, so an open dashboard leaves the schedule to it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::CliError;
use super::sync::load_config;
use crate::clock::now_ms;
use crate::engine::cycle::{CycleRequest, StopSignal};
use crate::engine::password_cycle::PasswordCycleRequest;
use crate::home::Home;
use crate::log_events;
use crate::runner;
use crate::runner::schedule::{self, Attempts, History, ScheduledRun};
use crate::store::StateStore;
use crate::store::scheduler_lease::{RENEW_EVERY_MS, SchedulerHolder};
use crate::store::vocabulary::RunTrigger;

pub async fn run(home: &Home) -> Result<u8, CliError> {
    // Refuse a missing or broken configuration at once rather than on every tick.
    let config = load_config(home)?;
    let stop = StopSignal::default();
    let woken = Arc::new(Notify::new());
    listen_for_signals(stop.clone(), Arc::clone(&woken))?;
    tracing::info!(
        event = log_events::SERVICE_STARTED,
        "running a sync cycle every {} minutes{}; stop with SIGTERM",
        config.options.interval_minutes,
        if config.options.password_hash_sync {
            format!(
                " and a password cycle every {} seconds",
                config.options.password_interval_secs
            )
        } else {
            String::new()
        }
    );
    if config.directory.insecure {
        tracing::warn!(
            event = log_events::DIRECTORY_INSECURE,
            "the domain controller's certificate is not verified (directory.insecure = true)"
        );
    }
    // Monitoring (README, "Monitoring"): on the administrator's address only.
    if let Some(address) = config.monitoring.socket_address() {
        let address = address.map_err(CliError::BadInput)?;
        let listener = tokio::net::TcpListener::bind(address).await.map_err(|error| {
            CliError::Failed(format!(
                "cannot serve monitoring on {address} (monitoring.address in config.toml): {error}"
            ))
        })?;
        tracing::info!(
            event = log_events::MONITORING_LISTENING,
            %address,
            "serving http://{address}/metrics and /healthz"
        );
        tokio::spawn(super::monitoring::serve(listener, home.clone()));
    }
    let mut options = config.options;
    let lease = SchedulerLeaseKeeper::open(home)?;
    let mut attempts = Attempts::default();
    let mut warned_on_day = None;
    let mut said_held = false;
    while !stop.is_stopped() {
        lease.renew();
        // What time alone brings (no run for too long, the credential): runs look themselves.
        runner::alerts::look_or_log(home).await;
        let now = now_ms();
        // Options are read again each time, so an edited config.toml takes effect.
        if let Ok(config) = load_config(home) {
            // Once a day, from 30 days before the credential expires.
            if let Some(warning) = config.credential_warning(now / 1000)
                && warned_on_day != Some(now / 86_400_000)
            {
                tracing::warn!(event = log_events::CREDENTIAL_EXPIRING, "{warning}");
                warned_on_day = Some(now / 86_400_000);
            }
            options = config.options;
        }
        // The runner's schedule, the same as a window's (README, "The schedule").
        let (history, held) = match lease.schedule_facts() {
            Ok(facts) => facts,
            Err(error) => {
                tracing::warn!(%error, "cannot read the run history for the schedule");
                (History::default(), false)
            }
        };
        let due = schedule::next_due(history, attempts, &options, held, now);
        match due.now_due(now) {
            Some(ScheduledRun::Sync) => {
                attempts.sync = now;
                sync_cycle(home, &stop).await;
                continue;
            }
            Some(ScheduledRun::Passwords) => {
                attempts.passwords = now;
                password_cycle(home, &stop).await;
                continue;
            }
            None => {}
        }
        if due.sync.is_none() && !said_held {
            tracing::info!(
                event = log_events::SCHEDULE_WAITING,
                "waiting for the first sync, which the wizard left to the administrator (`dirsync sync`, or Sync now in the window)"
            );
            said_held = true;
        }
        let renew = RENEW_EVERY_MS;
        let wait_ms = due
            .earliest()
            .map_or(renew, |at| (at - now).clamp(0, renew));
        // Between scheduled runs, AD is watched: a change is synced seconds later (README,
        // "Seconds, not half-hours"). Not before the first sync, nor while another process
        // holds the schedule.
        let watching = options.watch_secs > 0 && due.sync.is_some() && !held;
        let every = Duration::from_secs(options.watch_secs.max(1));
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(wait_ms as u64)) => {}
            () = woken.notified() => {}
            seen = runner::watch_for_changes(home, every), if watching => match seen {
                Ok(count) => {
                    tracing::info!(
                        event = log_events::WATCH_CHANGES_SEEN,
                        count,
                        "{count} change(s) in AD; syncing now"
                    );
                    attempts.sync = now_ms();
                    sync_cycle(home, &stop).await;
                }
                Err(error) => {
                    tracing::warn!(
                        event = log_events::WATCH_FAILED,
                        %error,
                        "cannot watch AD for changes; the interval still holds"
                    );
                    tokio::time::sleep(every).await;
                }
            },
        }
    }
    lease.release();
    tracing::info!(event = log_events::SERVICE_STOPPED, "stopped");
    Ok(super::EXIT_SUCCESS)
}

async fn sync_cycle(home: &Home, stop: &StopSignal) {
    let request = CycleRequest::new(RunTrigger::Schedule);
    // No progress lines: the service's log is one line per event (README, "Logs"), and a
    // window shows a run's progress from the store.
    match runner::run_sync(home, request, stop, &|_| {}).await {
        // The runner logs the run's end (`run.ended`).
        Ok(_) => {}
        Err(error) => tracing::warn!(
            event = log_events::RUN_NOT_STARTED,
            %error,
            "this cycle did not run: {error}"
        ),
    }
}

async fn password_cycle(home: &Home, stop: &StopSignal) {
    let request = PasswordCycleRequest {
        trigger: RunTrigger::Schedule,
        full: false,
    };
    match runner::run_passwords(home, request, stop, &|_| {}).await {
        // The runner logs the run's end, unless it found nothing (`run.ended`).
        Ok(_) => {}
        Err(error) => tracing::warn!(
            event = log_events::RUN_NOT_STARTED,
            %error,
            "this password cycle did not run: {error}"
        ),
    }
}

/// The service's hold on the scheduler lease. The store being briefly unavailable is not worth
/// stopping the schedule for: the run lock still keeps runs apart, so a failed renewal is logged.
struct SchedulerLeaseKeeper {
    store: StateStore,
}

impl SchedulerLeaseKeeper {
    fn open(home: &Home) -> Result<SchedulerLeaseKeeper, CliError> {
        let store =
            StateStore::open_home(home).map_err(|error| CliError::Failed(error.to_string()))?;
        Ok(SchedulerLeaseKeeper { store })
    }

    fn renew(&self) {
        if let Err(error) =
            self.store
                .claim_scheduler(SchedulerHolder::Service, std::process::id(), now_ms())
        {
            tracing::warn!(%error, "cannot renew the scheduler lease");
        }
    }

    /// What the schedule needs from the store: when runs last started, and the hold.
    fn schedule_facts(&self) -> Result<(History, bool), crate::store::StoreError> {
        Ok((History::read(&self.store)?, schedule::is_held(&self.store)?))
    }

    fn release(&self) {
        if let Err(error) = self.store.release_scheduler(std::process::id()) {
            tracing::warn!(%error, "cannot release the scheduler lease");
        }
    }
}

fn listen_for_signals(stop: StopSignal, woken: Arc<Notify>) -> Result<(), CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let failed =
        |error: std::io::Error| CliError::Failed(format!("cannot listen for signals: {error}"));
    let mut terminate = signal(SignalKind::terminate()).map_err(failed)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(failed)?;
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!(
            event = log_events::SERVICE_STOPPING,
            "stopping (the current run ends at its next safe point)"
        );
        stop.stop();
        woken.notify_one();
    });
    Ok(())
}
