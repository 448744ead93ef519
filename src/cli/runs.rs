//! `dirsync runs` and `dirsync runs show ID`: the run history the store keeps (SPEC §6).
//!
//! Read-only: a home without `state.db` has no runs, and no database is created to say so.
//! Output goes through one buffered writer, since one run can hold 100,000 object changes; a
//! reader that stops early (`| head`) is not an error.

use std::io::{self, BufWriter, Write};

use serde::Serialize;
use serde_json::Value;

use super::{ChangeFilter, CliError, EXIT_SUCCESS, RunsArgs, RunsCommand, RunsShowArgs};
use crate::engine::run::{ChangeKind, StepKind};
use crate::home::Home;
use crate::store::runs::{ErrorRecord, ObjectChangeRecord, RunId, RunRecord, StepCounters};
use crate::store::{SqliteStore, StoreError};

/// Values longer than this are cut in human text (JSON keeps them whole).
const VALUE_MAX_CHARS: usize = 80;
/// A multi-valued attribute shows this many values in human text, then how many more there are.
const VALUES_SHOWN: usize = 4;

pub fn run(args: RunsArgs, home: &Home) -> Result<u8, CliError> {
    let json = args.json;
    match args.show {
        None => list(home, args.limit, json),
        Some(RunsCommand::Show(show_args)) => show(home, &show_args, json),
    }
}

/// Opens the store if there is one: `None` for a home that has never run.
fn open_store(home: &Home) -> Result<Option<SqliteStore>, CliError> {
    if !home.state_db.exists() {
        return Ok(None);
    }
    SqliteStore::open(&home.state_db)
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
    write_stdout(|out| {
        if json {
            let document = RunsDocument {
                runs: runs.iter().map(RunView::new).collect(),
            };
            write_json(out, &document)
        } else {
            write_run_table(out, &runs, limit)
        }
    })
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
    store: &SqliteStore,
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

// ---- JSON documents -------------------------------------------------------------------------

#[derive(Serialize)]
struct RunsDocument<'a> {
    runs: Vec<RunView<'a>>,
}

#[derive(Serialize)]
struct RunDocument<'a> {
    run: RunView<'a>,
    changes: &'a [ObjectChangeRecord],
    errors: &'a [ErrorRecord],
}

/// A run record as printed: the stored fields, plus readable times and the duration so that a
/// script need not compute them.
#[derive(Serialize)]
struct RunView<'a> {
    #[serde(flatten)]
    record: &'a RunRecord,
    started_at_iso: String,
    ended_at_iso: Option<String>,
    duration_ms: Option<i64>,
}

impl<'a> RunView<'a> {
    fn new(record: &'a RunRecord) -> Self {
        RunView {
            record,
            started_at_iso: iso_time(record.started_at),
            ended_at_iso: record.ended_at.map(iso_time),
            duration_ms: record.ended_at.map(|ended| ended - record.started_at),
        }
    }
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
        let exported = exported_counters(run);
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
            run.steps
                .iter()
                .map(|step| step.counters.errors)
                .sum::<u64>(),
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

/// What a run wrote to the cloud: its export step's counters. A run without an export step
/// (a preview, staging mode, or one that stopped before export) shows what its synchronization
/// step planned; a run that got no further than import has none. Errors are the whole run's.
fn exported_counters(run: &RunRecord) -> Option<StepCounters> {
    let counters_of = |kind: StepKind| {
        run.steps
            .iter()
            .find(|step| step.step == kind)
            .map(|step| step.counters)
    };
    counters_of(StepKind::CloudExport).or_else(|| counters_of(StepKind::Synchronization))
}

fn write_run_header(out: &mut dyn Write, run: &RunRecord) -> io::Result<()> {
    writeln!(
        out,
        "Run {}  {}  (trigger {}, mode {})",
        run.id, run.status, run.trigger, run.mode
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
            step.step.as_str(),
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

/// A stored attribute value in a line of text: `(none)` for no value, lists compactly.
fn human_value(value: &Value) -> String {
    match value {
        Value::Null => "(none)".to_owned(),
        Value::Array(values) if values.is_empty() => "(none)".to_owned(),
        Value::Array(values) => {
            let mut shown: Vec<String> = values
                .iter()
                .take(VALUES_SHOWN)
                .map(|value| truncated(&scalar_text(value)))
                .collect();
            if values.len() > VALUES_SHOWN {
                shown.push(format!("… {} more", values.len() - VALUES_SHOWN));
            }
            format!("[{}]", shown.join(", "))
        }
        other => truncated(&scalar_text(other)),
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn truncated(text: &str) -> String {
    let text = printable(text);
    if text.chars().count() <= VALUE_MAX_CHARS {
        return text;
    }
    let kept: String = text.chars().take(VALUE_MAX_CHARS - 1).collect();
    format!("{kept}…")
}

/// Text from AD or a server on one line: control characters (a streetAddress's line breaks, a
/// stray terminal escape) are shown escaped instead of breaking the layout or the terminal.
fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `1m 04s`-style durations from milliseconds.
fn human_duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 60_000 {
        return format!("{:.1} s", ms as f64 / 1000.0);
    }
    let seconds = ms / 1000;
    if seconds < 3600 {
        format!("{}m {:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{}h {:02}m", seconds / 3600, (seconds % 3600) / 60)
    }
}

// ---- Times ----------------------------------------------------------------------------------

/// The store's Unix milliseconds as `2026-11-21 14:03:07Z`.
fn human_time(unix_ms: i64) -> String {
    let time = UtcTime::from_unix_ms(unix_ms);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        time.year, time.month, time.day, time.hour, time.minute, time.second
    )
}

/// The store's Unix milliseconds as RFC 3339, `2026-11-21T14:03:07.123Z`, for JSON.
fn iso_time(unix_ms: i64) -> String {
    let time = UtcTime::from_unix_ms(unix_ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        time.year, time.month, time.day, time.hour, time.minute, time.second, time.millisecond
    )
}

struct UtcTime {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    millisecond: i64,
}

impl UtcTime {
    /// Civil date from days since 1970-01-01 by Howard Hinnant's `civil_from_days`
    /// (proleptic Gregorian; no time-zone crate needed for UTC).
    fn from_unix_ms(unix_ms: i64) -> UtcTime {
        let days = unix_ms.div_euclid(86_400_000);
        let ms_of_day = unix_ms.rem_euclid(86_400_000);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z.rem_euclid(146_097);
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let shifted_month = (5 * day_of_year + 2) / 153;
        let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
        let month = if shifted_month < 10 {
            shifted_month + 3
        } else {
            shifted_month - 9
        };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        UtcTime {
            year,
            month,
            day,
            hour: ms_of_day / 3_600_000,
            minute: ms_of_day / 60_000 % 60,
            second: ms_of_day / 1000 % 60,
            millisecond: ms_of_day % 1000,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn times_print_in_utc() {
        assert_eq!(human_time(0), "1970-01-01 00:00:00Z");
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000Z");
        // 2024-02-29 23:59:59.999 UTC: a leap day, the last millisecond.
        assert_eq!(iso_time(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
        assert_eq!(human_time(1_709_251_200_000), "2024-03-01 00:00:00Z");
        // 2026-11-21 14:03:07 UTC.
        assert_eq!(human_time(1_795_269_787_000), "2026-11-21 14:03:07Z");
        // Before 1970 still counts the right way.
        assert_eq!(human_time(-1000), "1969-12-31 23:59:59Z");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(420), "0.4 s");
        assert_eq!(human_duration(64_000), "1m 04s");
        assert_eq!(human_duration(2 * 3_600_000 + 3 * 60_000), "2h 03m");
    }

    #[test]
    fn values_are_compact_and_long_ones_cut() {
        assert_eq!(human_value(&Value::Null), "(none)");
        assert_eq!(human_value(&json!([])), "(none)");
        assert_eq!(human_value(&json!(true)), "true");
        assert_eq!(human_value(&json!("Buyer")), "Buyer");
        assert_eq!(
            human_value(&json!(["a", "b", "c", "d", "e", "f"])),
            "[a, b, c, d, … 2 more]"
        );
        let long = "x".repeat(200);
        let shown = human_value(&json!(long));
        assert_eq!(shown.chars().count(), VALUE_MAX_CHARS);
        assert!(shown.ends_with('…'));
        assert_eq!(
            human_value(&json!("1 Main St\r\nSuite 2\u{1b}[31m")),
            "1 Main St\\r\\nSuite 2\\u{1b}[31m"
        );
    }
}
