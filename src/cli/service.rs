//! `dirsync service`: the scheduler loop for systemd. Runs the cycle on the configured interval,
//! one at a time; SIGTERM (or Ctrl-C) stops a running cycle at its next safe point and ends the
//! loop. A run already in progress elsewhere (a manual `dirsync sync`) makes this tick skip.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::CliError;
use super::sync::{exit_status, load_config, run_locked};
use crate::engine::cycle::{CycleRequest, StopSignal};
use crate::engine::run::RunTrigger;
use crate::home::Home;

pub async fn run(home: &Home) -> Result<u8, CliError> {
    // Refuse a missing or broken configuration at once rather than on every tick.
    let config = load_config(home)?;
    let stop = StopSignal::default();
    let woken = Arc::new(Notify::new());
    listen_for_signals(stop.clone(), Arc::clone(&woken))?;
    eprintln!(
        "dirsync service: running a sync cycle every {} minutes; stop with SIGTERM",
        config.options.interval_minutes
    );
    while !stop.is_stopped() {
        let request = CycleRequest {
            trigger: RunTrigger::Schedule,
            full: false,
            preview: false,
        };
        match run_locked(home, request, &stop).await {
            Ok((_, report)) => eprintln!(
                "dirsync service: run {} ended {} (exit status {}){}",
                report.run_id,
                report.status,
                exit_status(&report),
                report
                    .failure
                    .as_deref()
                    .map(|failure| format!(": {failure}"))
                    .unwrap_or_default()
            ),
            Err(error) => eprintln!("dirsync service: this cycle did not run: {error}"),
        }
        // The interval is read again each time, so an edited config.toml takes effect.
        let minutes = load_config(home)
            .map(|config| config.options.interval_minutes)
            .unwrap_or(config.options.interval_minutes);
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(minutes * 60)) => {}
            () = woken.notified() => {}
        }
    }
    eprintln!("dirsync service: stopped");
    Ok(super::EXIT_SUCCESS)
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
        eprintln!("dirsync service: stopping (the current run ends at its next safe point)");
        stop.stop();
        woken.notify_one();
    });
    Ok(())
}
