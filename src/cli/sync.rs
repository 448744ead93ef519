//! `dirsync sync [--preview] [--full] [--json]`: one cycle now, reported as it went.

use std::io::IsTerminal as _;

use serde_json::json;

use super::{
    CliError, EXIT_DELETION_THRESHOLD, EXIT_FAILED, EXIT_OBJECT_ERRORS, EXIT_SUCCESS, SyncArgs,
};
use crate::config::Config;
use crate::engine::cycle::{CycleReport, CycleRequest};
use crate::engine::password_cycle::PasswordCycleRequest;
use crate::engine::types::{Progress, StopSignal};
use crate::home::Home;
use crate::run_report::printable;
use crate::runner::{self, Ran};
use crate::store::StateStore;
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
        only: None,
    };
    run_now(home, request, args.json, &StopSignal::default()).await
}

/// The configuration, as the CLI reports a problem with it.
pub fn load_config(home: &Home) -> Result<Config, CliError> {
    Ok(runner::load_config(home)?)
}

/// Runs one cycle with the lock held and prints its report. Returns the exit status (README,
/// "Exit status of `sync`").
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

/// Runs one cycle through the runner; progress goes to stderr.
pub async fn run_locked(
    home: &Home,
    request: CycleRequest,
    stop: &StopSignal,
) -> Result<(StateStore, CycleReport), CliError> {
    let config = load_config(home)?;
    if config.directory.insecure {
        eprintln!(
            "dirsync: warning: the domain controller's certificate is not verified (directory.insecure = true)"
        );
    }
    let progress = progress_printer();
    let result = runner::run_sync(home, request, stop, &progress).await;
    finish_progress_line();
    let Ran { store, report } = result?;
    Ok((store, report))
}

/// Runs one password hash sync cycle through the runner; progress goes to stderr.
pub async fn run_passwords_locked(
    home: &Home,
    request: PasswordCycleRequest,
    stop: &StopSignal,
) -> Result<(StateStore, CycleReport), CliError> {
    let progress = progress_printer();
    let result = runner::run_passwords(home, request, stop, &progress).await;
    finish_progress_line();
    let Ran { store, report } = result?;
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

/// Progress on stderr: one line per step, and on a terminal a running count.
pub(super) fn progress_printer() -> impl Fn(Progress) + Sync {
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
    store: &StateStore,
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
        // Why this host did not export (another host holds the export lease).
        "standby": report.standby,
        "failure": report.failure,
        "deletion_threshold": report.threshold,
        "deletes_withheld": report.deletes_withheld,
        "drifted": report.drifted,
        // Users disabled when they left the scope, with when each is deleted (Unix ms).
        "awaiting_delete": report
            .plan
            .awaiting_delete
            .iter()
            .map(|(anchor, due)| json!({ "anchor": anchor.to_string(), "deleted_after": due }))
            .collect::<Vec<_>>(),
        "export": report.export,
        "write_back": report.write_back,
        // A preview's (or staging run's) changes are what would be exported; a real run's are
        // what was exported.
        "changes": store.run_changes(report.run_id, None).map_err(failed)?,
        "errors": store.run_errors(report.run_id).map_err(failed)?,
        "warnings": store.run_warnings(report.run_id).map_err(failed)?,
    }))
}

pub fn print_report(store: &StateStore, report: &CycleReport, json: bool) -> Result<(), CliError> {
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
    if let Some(standby) = &report.standby {
        println!("\n{standby}.");
    }
    if preview || report.staging {
        let why = if preview {
            "Preview: nothing was written to the cloud"
        } else if report.standby.is_some() {
            "Standby: nothing was written to the cloud"
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
    if !report.plan.awaiting_delete.is_empty() {
        println!(
            "\n{} user(s) disabled after leaving the scope wait to be deleted (options.delete_after_days); one that comes back is enabled again.",
            report.plan.awaiting_delete.len()
        );
    }
    if report.deletes_withheld > 0 {
        println!(
            "\nStopped by the deletion threshold: this run would remove {withheld} (deletes, disables and group members removed), more than the threshold of {} (or than options.deletion_threshold_percent of the objects dirsync manages), so it removed none.\n  `dirsync runs show {} --kind deletes` lists them. If they are intended, run `dirsync sync --confirm-deletes {withheld}` (once), or raise the threshold in config.toml.",
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
