//! `dirsync sync [--preview] [--full] [--json]`: one cycle now, reported as it went.

use std::io::IsTerminal as _;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{
    CliError, EXIT_DELETION_THRESHOLD, EXIT_FAILED, EXIT_OBJECT_ERRORS, EXIT_SUCCESS, SyncArgs,
};
use crate::clock::now_ms;
use crate::cloud::FlowPolicy;
use crate::config::{Config, ConfigError};
use crate::directory::password_hashes::SambaPrivilegedSocket;
use crate::engine::cycle::sync_app_client;
use crate::engine::cycle::{
    Connections, CycleReport, CycleRequest, Progress, StopSignal, run_cycle,
};
use crate::engine::password_cycle::{PasswordCycleRequest, run_password_cycle};
use crate::home::Home;
use crate::run_lock::RunLock;
use crate::run_report::printable;
use crate::store::SqliteStore;
use crate::store::runs::ObjectChangeRecord;
use crate::store::vocabulary::{RunMode, RunStatus, RunTrigger, StepKind};

pub async fn run(args: SyncArgs, home: &Home) -> Result<u8, CliError> {
    if args.passwords {
        let request = PasswordCycleRequest {
            trigger: RunTrigger::Cli,
            full: args.full,
        };
        let (store, report) = run_passwords_locked(home, request, &StopSignal::default()).await?;
        print_report(&store, &report, args.json)?;
        return Ok(exit_status(&report));
    }
    let request = CycleRequest {
        trigger: RunTrigger::Cli,
        full: args.full,
        preview: args.preview,
        confirmed_deletes: args.confirm_deletes,
    };
    run_now(home, request, args.json, &StopSignal::default()).await
}

pub fn load_config(home: &Home) -> Result<Config, CliError> {
    Config::load(&home.config_file).map_err(|error| match error {
        ConfigError::Unreadable { .. } | ConfigError::Unwritable { .. } => {
            CliError::Failed(error.to_string())
        }
        _ => CliError::BadInput(error.to_string()),
    })
}

/// Runs one cycle with the lock held and prints its report. Returns the exit status (SPEC §2).
pub async fn run_now(
    home: &Home,
    request: CycleRequest,
    json: bool,
    stop: &StopSignal,
) -> Result<u8, CliError> {
    let (store, report) = run_locked(home, request, stop).await?;
    print_report(&store, &report, json)?;
    Ok(exit_status(&report))
}

/// Runs one cycle with the run lock held; progress goes to stderr.
pub async fn run_locked(
    home: &Home,
    request: CycleRequest,
    stop: &StopSignal,
) -> Result<(SqliteStore, CycleReport), CliError> {
    let progress = progress_printer();
    let result = run_locked_with(home, request, stop, &progress).await;
    finish_progress_line();
    result
}

/// Runs one cycle with the run lock held, telling `progress` how it goes (the window's way).
pub async fn run_locked_with(
    home: &Home,
    request: CycleRequest,
    stop: &StopSignal,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(SqliteStore, CycleReport), CliError> {
    let config = load_config(home)?;
    let _lock =
        RunLock::acquire(&home.state_db).map_err(|error| CliError::Failed(error.to_string()))?;
    if config.directory.insecure {
        eprintln!(
            "dirsync: warning: the domain controller's certificate is not verified (directory.insecure = true)"
        );
    }
    let store =
        SqliteStore::open(&home.state_db).map_err(|error| CliError::Failed(error.to_string()))?;
    let mut connections = Connections::open(&config, &home.secrets(), FlowPolicy::default())
        .map_err(|error| CliError::Failed(error.to_string()))?;
    let progress = kept_progress(home, progress);
    let report = Box::pin(run_cycle(
        &config,
        &mut connections,
        &store,
        request,
        &progress,
        stop,
    ))
    .await
    .map_err(|error| CliError::Failed(error.to_string()))?;
    Ok((store, report))
}

/// Runs one password hash sync cycle with the run lock held; progress goes to stderr.
pub async fn run_passwords_locked(
    home: &Home,
    request: PasswordCycleRequest,
    stop: &StopSignal,
) -> Result<(SqliteStore, CycleReport), CliError> {
    let progress = progress_printer();
    let result = run_passwords_locked_with(home, request, stop, &progress).await;
    finish_progress_line();
    result
}

/// Runs one password hash sync cycle with the run lock held, telling `progress` how it goes.
pub async fn run_passwords_locked_with(
    home: &Home,
    request: PasswordCycleRequest,
    stop: &StopSignal,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(SqliteStore, CycleReport), CliError> {
    let config = load_config(home)?;
    if !config.options.password_hash_sync {
        return Err(CliError::BadInput(format!(
            "password hash sync is off (options.password_hash_sync = false in {}); turn it on by running setup again with options.password_hash_sync = true",
            home.config_file.display()
        )));
    }
    let _lock =
        RunLock::acquire(&home.state_db).map_err(|error| CliError::Failed(error.to_string()))?;
    let store =
        SqliteStore::open(&home.state_db).map_err(|error| CliError::Failed(error.to_string()))?;
    let graph = sync_app_client(&config, &home.secrets(), FlowPolicy::default())
        .map_err(|error| CliError::Failed(error.to_string()))?;
    let mut source = SambaPrivilegedSocket::open(
        config.password_hash_socket(),
        &config.naming_context(),
        Duration::from_secs(config.directory.timeout_secs),
    )
    .await;
    let progress = kept_progress(home, progress);
    let report = run_password_cycle(
        &config,
        source.as_mut().map_err(|unavailable| unavailable.clone()),
        &graph,
        &store,
        request,
        &progress,
        stop,
    )
    .await
    .map_err(|error| CliError::Failed(error.to_string()))?;
    Ok((store, report))
}

pub fn exit_status(report: &CycleReport) -> u8 {
    match report.status {
        RunStatus::Success => EXIT_SUCCESS,
        RunStatus::CompletedWithErrors => EXIT_OBJECT_ERRORS,
        RunStatus::StoppedDeletionThreshold => EXIT_DELETION_THRESHOLD,
        RunStatus::Failed | RunStatus::Cancelled | RunStatus::Running => EXIT_FAILED,
    }
}

/// `progress`, and the same kept on the running run in the store (each step, and counts at most
/// once a second), so that a window in another process shows the run live. A store that cannot
/// be written only loses the live view: the run goes on.
fn kept_progress<'a>(
    home: &Home,
    progress: &'a (dyn Fn(Progress) + Sync),
) -> impl Fn(Progress) + Sync + 'a {
    let store = SqliteStore::open(&home.state_db).ok().map(Mutex::new);
    let kept_at: Mutex<Option<Instant>> = Mutex::new(None);
    move |event| {
        progress(event);
        let Some(store) = &store else {
            return;
        };
        let (done, total) = match event {
            Progress::Step(_) => (0, None),
            Progress::Objects { done, total, .. } => (done, total),
        };
        let mut kept_at = kept_at.lock().unwrap_or_else(PoisonError::into_inner);
        let due = matches!(event, Progress::Step(_))
            || kept_at.is_none_or(|at| at.elapsed() >= Duration::from_secs(1));
        if !due {
            return;
        }
        *kept_at = Some(Instant::now());
        let store = store.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(error) = store.record_running_progress(done, total, now_ms()) {
            tracing::debug!(%error, "cannot keep the run's progress in the store");
        }
    }
}

/// Progress on stderr: one line per step, and on a terminal a running count.
fn progress_printer() -> impl Fn(Progress) + Sync {
    let terminal = std::io::stderr().is_terminal();
    move |progress| match progress {
        Progress::Step(step) => {
            if terminal {
                eprint!("\r\x1b[K");
            }
            eprintln!("dirsync: {step}…");
        }
        Progress::Objects { step, done, total } if terminal => {
            let of = total
                .map(|total| format!(" of {total}"))
                .unwrap_or_default();
            eprint!("\r\x1b[K  {step}: {done}{of}");
        }
        Progress::Objects { .. } => {}
    }
}

fn finish_progress_line() {
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[K");
    }
}

fn failed(error: impl std::fmt::Display) -> CliError {
    CliError::Failed(error.to_string())
}

/// The run as `--json` prints it (documented in the README).
pub fn report_document(
    store: &SqliteStore,
    report: &CycleReport,
) -> Result<serde_json::Value, CliError> {
    let run = store
        .run(report.run_id)
        .map_err(failed)?
        .ok_or_else(|| failed(format!("run {} is missing from the store", report.run_id)))?;
    let preview = report.mode == RunMode::Preview;
    Ok(json!({
        "run": run,
        "preview": preview,
        "staging": report.staging,
        "failure": report.failure,
        "deletion_threshold": report.threshold,
        "deletes_withheld": report.deletes_withheld,
        "export": report.export,
        "write_back": report.write_back,
        // A preview's (or staging run's) changes are what would be exported; a real run's are
        // what was exported.
        "changes": store.run_changes(report.run_id, None).map_err(failed)?,
        "errors": store.run_errors(report.run_id).map_err(failed)?,
        "warnings": store.run_warnings(report.run_id).map_err(failed)?,
    }))
}

pub fn print_report(store: &SqliteStore, report: &CycleReport, json: bool) -> Result<(), CliError> {
    if json {
        let document = report_document(store, report)?;
        println!(
            "{}",
            serde_json::to_string_pretty(&document).map_err(failed)?
        );
        return Ok(());
    }
    let run = store
        .run(report.run_id)
        .map_err(failed)?
        .ok_or_else(|| failed(format!("run {} is missing from the store", report.run_id)))?;
    let errors = store.run_errors(report.run_id).map_err(failed)?;
    let warnings = store.run_warnings(report.run_id).map_err(failed)?;
    let changes = store.run_changes(report.run_id, None).map_err(failed)?;
    let preview = report.mode == RunMode::Preview;
    println!(
        "Run {} ({}, {}): {}",
        run.id, run.mode, run.trigger, run.status
    );
    println!(
        "  {:<20} {:>6} {:>8} {:>8} {:>8} {:>10} {:>7}",
        "step", "adds", "updates", "renames", "deletes", "no-change", "errors"
    );
    for step in &run.steps {
        let c = &step.counters;
        println!(
            "  {:<20} {:>6} {:>8} {:>8} {:>8} {:>10} {:>7}",
            step.step.as_str(),
            c.adds,
            c.updates,
            c.renames,
            c.deletes,
            c.no_change,
            c.errors
        );
    }
    if preview || report.staging {
        let why = if preview {
            "Preview: nothing was written to the cloud"
        } else {
            "Staging mode: nothing was written to the cloud"
        };
        println!("\n{why}. A run would make these changes:");
        print_changes(&changes);
    } else if !changes.is_empty() {
        let written_back = changes
            .iter()
            .filter(|change| change.step == StepKind::WriteBackExport)
            .count();
        let to_cloud = changes.len() - written_back;
        if to_cloud > 0 {
            println!("\n{to_cloud} change(s) written to the cloud.");
        }
        if written_back > 0 {
            println!("\n{written_back} user(s) updated in AD by hybrid write-back.");
        }
        println!("`dirsync runs show {}` lists every change.", run.id);
    }
    if report.deletes_withheld > 0 {
        println!(
            "\nStopped by the deletion threshold: this run would delete {withheld} objects, more than the threshold of {}, so it deleted none.\n  `dirsync runs show {} --kind deletes` lists them. If they are intended, run `dirsync sync --confirm-deletes {withheld}` (once), or raise options.deletion_threshold in config.toml.",
            report.threshold,
            report.run_id,
            withheld = report.deletes_withheld,
        );
    }
    if !warnings.is_empty() {
        println!("\nWarnings ({}):", warnings.len());
        for warning in &warnings {
            println!(
                "  {}\n    {}",
                printable(&warning.dn),
                printable(&warning.message)
            );
        }
    }
    if !errors.is_empty() {
        println!("\nErrors ({}):", errors.len());
        for error in &errors {
            let dn = if error.dn.is_empty() {
                "(the run)".to_owned()
            } else {
                printable(&error.dn)
            };
            println!(
                "  {dn}\n    {} [{}]: {}\n    what to do: {}",
                error.error_type,
                printable(error.code.as_deref().unwrap_or("-")),
                printable(&error.server_message),
                printable(&error.hint)
            );
        }
    }
    if let Some(failure) = &report.failure {
        println!("\nThe run failed: {}", printable(failure));
    }
    Ok(())
}

fn print_changes(changes: &[ObjectChangeRecord]) {
    if changes.is_empty() {
        println!("  (none)");
    }
    for change in changes {
        println!(
            "  {:<6} {:<5} {}",
            change.change_kind.as_str(),
            change.object_type.as_str(),
            printable(&change.dn)
        );
        for attribute in &change.attributes {
            println!(
                "           {}: {} → {}",
                printable(&attribute.name),
                compact(&attribute.old),
                compact(&attribute.new)
            );
        }
    }
}

/// A value on one line, its control characters escaped (AD values may hold line breaks and
/// terminal escapes; JSON's own escaping does the same for arrays).
fn compact(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "(none)".to_owned(),
        serde_json::Value::String(text) => printable(text),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_from_ad_print_on_one_line_with_their_control_characters_escaped() {
        let value = serde_json::json!("12 Main St\nFloor 2\u{1b}[31mred");
        let shown = compact(&value);
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(
            shown.contains("\\n") && shown.contains("\\u{1b}"),
            "{shown}"
        );
        assert_eq!(compact(&serde_json::Value::Null), "(none)");
        // Arrays come as JSON, whose strings escape control characters already.
        let list = compact(&serde_json::json!(["a\u{7}b"]));
        assert!(!list.chars().any(char::is_control), "{list:?}");
    }
}
