//! `dirsync runs` and `dirsync runs show ID`: the run history the store keeps (README, "JSON output").
//!
//! Read-only: a home without `state.db` has no runs, and no database is created to say so.
//! Output goes through one buffered writer, since one run can hold 100,000 object changes; a
//! reader that stops early (`| head`) is not an error.

use std::io::{self, BufWriter, Write};

use serde::Serialize;

use super::{ChangeFilter, CliError, EXIT_SUCCESS, RunsArgs, RunsCommand, RunsShowArgs};
use crate::clock::human_time;
use crate::home::Home;
use crate::run_report::{
    RunDocument, RunView, RunsDocument, human_duration, human_value, printable,
};
use crate::store::runs::{ErrorRecord, ObjectChangeRecord, RunId, RunRecord};
use crate::store::vocabulary::ChangeKind;
use crate::store::{StateStore, StoreError};

pub fn run(args: RunsArgs, home: &Home) -> Result<u8, CliError> {
    let json = args.json;
    match args.show {
        None => list(home, args.limit, json),
        Some(RunsCommand::Show(show_args)) => show(home, &show_args, json),
    }
}

/// Opens the store if there is one: `None` for a home that has never run.
fn open_store(home: &Home) -> Result<Option<StateStore>, CliError> {
    if !StateStore::exists(home) {
        return Ok(None);
    }
    StateStore::open_home(home)
        .map(Some)
        .map_err(|error| store_failed(&error))
}

fn store_failed(error: &StoreError) -> CliError {
    CliError::Failed(error.to_string())
}

fn list(home: &Home, limit: usize, json: bool) -> Result<u8, CliError> {
    if limit == 0 {
        return Err(CliError::BadInput("--limit must be at least 1".to_owned()));
    }
    let runs = match open_store(home)? {
        Some(store) => store.runs(limit).map_err(|error| store_failed(&error))?,
        None => Vec::new(),
    };
    let warnings = home_warnings(home);
    for warning in &warnings {
        eprintln!("dirsync: warning: {warning}");
    }
    write_stdout(|out| {
        if json {
            let document = RunsDocument {
                runs: runs.iter().map(RunView::new).collect(),
                warnings: warnings.clone(),
            };
            write_json(out, &document)
        } else {
            write_run_table(out, &runs, limit)
        }
    })
}

/// What the history's reader should know beyond the runs: the sync app's credential expiring.
/// A home without a readable configuration has nothing to say here.
fn home_warnings(home: &Home) -> Vec<String> {
    crate::config::Config::load(&home.config_file)
        .ok()
        .and_then(|config| config.credential_warning(crate::clock::now_ms() / 1000))
        .into_iter()
        .collect()
}

fn show(home: &Home, args: &RunsShowArgs, json: bool) -> Result<u8, CliError> {
    let no_such_run =
        || CliError::BadInput(format!("no run {}; `dirsync runs` lists them", args.id));
    let store = open_store(home)?.ok_or_else(no_such_run)?;
    let record = store
        .run(args.id)
        .map_err(|error| store_failed(&error))?
        .ok_or_else(no_such_run)?;
    let (changes, errors) = read_changes_and_errors(&store, args.id, args.kind)?;
    write_stdout(|out| {
        if json {
            let document = RunDocument {
                run: RunView::new(&record),
                changes: &changes,
                errors: &errors,
            };
            write_json(out, &document)
        } else {
            write_run_header(out, &record)?;
            write_steps(out, &record)?;
            // With --kind, only the part asked for is shown (and an empty one says so).
            if args.kind != Some(ChangeFilter::Errors) {
                write_changes(out, &changes, args.kind)?;
            }
            if args.kind.is_none() || args.kind == Some(ChangeFilter::Errors) {
                write_errors(out, &errors)?;
            }
            Ok(())
        }
    })
}

/// The run's changes (all, or those of one kind) and its errors; `--kind` fills only one list.
fn read_changes_and_errors(
    store: &StateStore,
    id: RunId,
    filter: Option<ChangeFilter>,
) -> Result<(Vec<ObjectChangeRecord>, Vec<ErrorRecord>), CliError> {
    let changes_of = |kind| {
        store
            .run_changes(id, kind)
            .map_err(|error| store_failed(&error))
    };
    let errors = || store.run_errors(id).map_err(|error| store_failed(&error));
    Ok(match filter {
        None => (changes_of(None)?, errors()?),
        Some(ChangeFilter::Adds) => (changes_of(Some(ChangeKind::Add))?, Vec::new()),
        Some(ChangeFilter::Updates) => (changes_of(Some(ChangeKind::Update))?, Vec::new()),
        Some(ChangeFilter::Deletes) => (changes_of(Some(ChangeKind::Delete))?, Vec::new()),
        Some(ChangeFilter::Errors) => (Vec::new(), errors()?),
    })
}

/// Runs `write` against a buffered stdout. A closed pipe ends the output quietly.
fn write_stdout(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<u8, CliError> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(EXIT_SUCCESS),
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(EXIT_SUCCESS),
        Err(error) => Err(CliError::Failed(format!(
            "cannot write the output: {error}"
        ))),
    }
}

fn write_json(out: &mut dyn Write, document: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, document).map_err(io::Error::from)?;
    writeln!(out)
}

// ---- Human text -----------------------------------------------------------------------------

fn write_run_table(out: &mut dyn Write, runs: &[RunRecord], limit: usize) -> io::Result<()> {
    if runs.is_empty() {
        return writeln!(out, "no runs yet");
    }
    writeln!(
        out,
        "{:>6}  {:<20}  {:>9}  {:<8}  {:<8}  {:<26}  {:>6}  {:>7}  {:>7}  {:>6}",
        "ID",
        "STARTED (UTC)",
        "DURATION",
        "TRIGGER",
        "MODE",
        "STATUS",
        "ADDS",
        "UPDATES",
        "DELETES",
        "ERRORS"
    )?;
    for run in runs {
        let exported = run.result_counters();
        let count = |value: Option<u64>| value.map_or("-".to_owned(), |value| value.to_string());
        writeln!(
            out,
            "{:>6}  {:<20}  {:>9}  {:<8}  {:<8}  {:<26}  {:>6}  {:>7}  {:>7}  {:>6}",
            run.id,
            human_time(run.started_at),
            run.ended_at.map_or("-".to_owned(), |ended| human_duration(
                ended - run.started_at
            )),
            run.trigger.as_str(),
            run.mode.as_str(),
            run.status.as_str(),
            count(exported.map(|counters| counters.adds)),
            count(exported.map(|counters| counters.updates)),
            count(exported.map(|counters| counters.deletes)),
            run.error_count(),
        )?;
    }
    if runs.len() == limit {
        writeln!(
            out,
            "(the {limit} newest runs; --limit N shows more, `dirsync runs show ID` shows one)"
        )?;
    }
    Ok(())
}

fn write_run_header(out: &mut dyn Write, run: &RunRecord) -> io::Result<()> {
    writeln!(
        out,
        "Run {}  {}  (trigger {}, mode {}{})",
        run.id,
        run.status,
        run.trigger,
        run.mode,
        run.host
            .as_deref()
            .map(|host| format!(", host {host}"))
            .unwrap_or_default()
    )?;
    writeln!(out, "  started  {}", human_time(run.started_at))?;
    match run.ended_at {
        Some(ended) => writeln!(
            out,
            "  ended    {}  ({})",
            human_time(ended),
            human_duration(ended - run.started_at)
        ),
        None => writeln!(
            out,
            "  ended    -  (still running, or the process was stopped)"
        ),
    }
}

fn write_steps(out: &mut dyn Write, run: &RunRecord) -> io::Result<()> {
    writeln!(out)?;
    if run.steps.is_empty() {
        return writeln!(out, "Steps: none recorded");
    }
    writeln!(
        out,
        "  {:<18}  {:>6}  {:>7}  {:>7}  {:>7}  {:>9}  {:>6}  {:>9}",
        "STEP", "ADDS", "UPDATES", "RENAMES", "DELETES", "NO-CHANGE", "ERRORS", "DURATION"
    )?;
    for step in &run.steps {
        let counters = &step.counters;
        writeln!(
            out,
            "  {:<18}  {:>6}  {:>7}  {:>7}  {:>7}  {:>9}  {:>6}  {:>9}",
            step.title(),
            counters.adds,
            counters.updates,
            counters.renames,
            counters.deletes,
            counters.no_change,
            counters.errors,
            step.ended_at.map_or("-".to_owned(), |ended| human_duration(
                ended - step.started_at
            )),
        )?;
    }
    Ok(())
}

fn write_changes(
    out: &mut dyn Write,
    changes: &[ObjectChangeRecord],
    filter: Option<ChangeFilter>,
) -> io::Result<()> {
    let what = match filter {
        Some(ChangeFilter::Adds) => "Adds",
        Some(ChangeFilter::Updates) => "Updates",
        Some(ChangeFilter::Deletes) => "Deletes",
        Some(ChangeFilter::Errors) | None => "Object changes",
    };
    writeln!(out)?;
    writeln!(out, "{what} ({})", changes.len())?;
    for change in changes {
        writeln!(
            out,
            "  {:<6}  {:<5}  {}   [{}]",
            change.change_kind.as_str(),
            change.object_type.as_str(),
            printable(&change.dn),
            change.step
        )?;
        for attribute in &change.attributes {
            writeln!(
                out,
                "      {}: {} → {}",
                printable(&attribute.name),
                human_value(&attribute.old),
                human_value(&attribute.new)
            )?;
        }
    }
    Ok(())
}

fn write_errors(out: &mut dyn Write, errors: &[ErrorRecord]) -> io::Result<()> {
    writeln!(out)?;
    writeln!(out, "Errors ({})", errors.len())?;
    for error in errors {
        // An error without a DN is the run's own (it failed as a whole), not an object's.
        let subject = match (error.dn.is_empty(), error.object_type) {
            (true, _) => "the run".to_owned(),
            (false, Some(kind)) => format!("{}  ({kind})", printable(&error.dn)),
            (false, None) => printable(&error.dn),
        };
        writeln!(out, "  {subject}   [{}]", error.step)?;
        let code = error
            .code
            .as_deref()
            .map_or(String::new(), |code| format!("  code {}", printable(code)));
        writeln!(
            out,
            "      {}{code}  first occurred {}  retries {}",
            printable(&error.error_type),
            human_time(error.first_occurred_at),
            error.retry_count
        )?;
        // The server's words are kept whole: they are what a support case quotes.
        writeln!(out, "      message: {}", printable(&error.server_message))?;
        writeln!(out, "      hint: {}", printable(&error.hint))?;
    }
    Ok(())
}
