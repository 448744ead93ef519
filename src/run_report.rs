//! A run's report as text, JSON and CSV: shared by `dirsync runs` and the dashboard's export
//! and views, so both say the same thing in the same words. Times are UTC.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::Value;

use crate::clock::iso_time;
use crate::engine::cycle::trace::{Found, Trace};
use crate::store::runs::{ErrorRecord, ObjectChangeRecord, RunRecord};

/// Values longer than this are cut in human text (JSON keeps them whole).
pub const VALUE_MAX_CHARS: usize = 80;
/// A multi-valued attribute shows this many values in human text, then how many more there are.
const VALUES_SHOWN: usize = 4;

#[derive(Debug, Serialize)]
pub struct RunsDocument<'a> {
    pub runs: Vec<RunView<'a>>,
    /// Things the administrator must act on before runs fail (the sync app's credential
    /// expiring within 30 days); left out when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct RunDocument<'a> {
    pub run: RunView<'a>,
    pub changes: &'a [ObjectChangeRecord],
    pub errors: &'a [ErrorRecord],
}

/// A run record as printed: the stored fields, plus readable times and the duration so that a
/// script need not compute them.
#[derive(Debug, Serialize)]
pub struct RunView<'a> {
    #[serde(flatten)]
    record: &'a RunRecord,
    started_at_iso: String,
    ended_at_iso: Option<String>,
    duration_ms: Option<i64>,
}

impl<'a> RunView<'a> {
    pub fn new(record: &'a RunRecord) -> Self {
        RunView {
            record,
            started_at_iso: iso_time(record.started_at),
            ended_at_iso: record.ended_at.map(iso_time),
            duration_ms: record.ended_at.map(|ended| ended - record.started_at),
        }
    }
}

/// Writes the run as `dirsync runs show ID --json` prints it.
pub fn write_json(
    out: &mut dyn Write,
    record: &RunRecord,
    changes: &[ObjectChangeRecord],
    errors: &[ErrorRecord],
) -> io::Result<()> {
    let document = RunDocument {
        run: RunView::new(record),
        changes,
        errors,
    };
    serde_json::to_writer_pretty(&mut *out, &document).map_err(io::Error::from)?;
    writeln!(out)
}

/// The CSV columns, one row per object change and per error.
pub const CSV_HEADER: [&str; 14] = [
    "run",
    "row",
    "step",
    "change",
    "object_type",
    "dn",
    "anchor",
    "cloud_id",
    "attributes",
    "error_type",
    "code",
    "message",
    "hint",
    "retry_count",
];

/// Writes the run as CSV (RFC 4180): a row per object change (`row` = `change`, its attributes
/// as `name: old -> new` lines in one cell, values whole), then a row per error (`row` =
/// `error`). A spreadsheet opens it as it is.
pub fn write_csv(
    out: &mut dyn Write,
    record: &RunRecord,
    changes: &[ObjectChangeRecord],
    errors: &[ErrorRecord],
) -> io::Result<()> {
    write_csv_row(out, &CSV_HEADER.map(str::to_owned))?;
    let run = record.id.to_string();
    for change in changes {
        let attributes: Vec<String> = change
            .attributes
            .iter()
            .map(|attribute| {
                format!(
                    "{}: {} -> {}",
                    attribute.name,
                    whole_value(&attribute.old),
                    whole_value(&attribute.new)
                )
            })
            .collect();
        write_csv_row(
            out,
            &[
                run.clone(),
                "change".to_owned(),
                change.step.as_str().to_owned(),
                change.change_kind.as_str().to_owned(),
                change.object_type.as_str().to_owned(),
                change.dn.clone(),
                change.anchor.clone(),
                change.cloud_id.clone().unwrap_or_default(),
                attributes.join("\n"),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ],
        )?;
    }
    for error in errors {
        write_csv_row(
            out,
            &[
                run.clone(),
                "error".to_owned(),
                error.step.as_str().to_owned(),
                String::new(),
                error
                    .object_type
                    .map(|kind| kind.as_str().to_owned())
                    .unwrap_or_default(),
                error.dn.clone(),
                error.anchor.clone().unwrap_or_default(),
                String::new(),
                String::new(),
                error.error_type.clone(),
                error.code.clone().unwrap_or_default(),
                error.server_message.clone(),
                error.hint.clone(),
                error.retry_count.to_string(),
            ],
        )?;
    }
    Ok(())
}

/// A value in full for CSV: `(none)`, a string as it is, a list as `[a; b]`.
fn whole_value(value: &Value) -> String {
    match value {
        Value::Null => "(none)".to_owned(),
        Value::Array(values) if values.is_empty() => "(none)".to_owned(),
        Value::Array(values) => format!(
            "[{}]",
            values
                .iter()
                .map(scalar_text)
                .collect::<Vec<_>>()
                .join("; ")
        ),
        other => scalar_text(other),
    }
}

fn write_csv_row(out: &mut dyn Write, cells: &[String]) -> io::Result<()> {
    let quoted: Vec<String> = cells.iter().map(|cell| csv_cell(cell)).collect();
    write!(out, "{}\r\n", quoted.join(","))
}

/// A cell quoted when it must be. A cell a spreadsheet would run as a formula (`=`, `+`, `-`,
/// `@` first) gets a leading `'`: AD values are anybody's text.
fn csv_cell(cell: &str) -> String {
    let cell = if cell.starts_with(['=', '+', '-', '@']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    };
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell
    }
}

/// A stored attribute value in a line of text: `(none)` for no value, lists compactly.
pub fn human_value(value: &Value) -> String {
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

pub fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

pub fn truncated(text: &str) -> String {
    let text = printable(text);
    if text.chars().count() <= VALUE_MAX_CHARS {
        return text;
    }
    let kept: String = text.chars().take(VALUE_MAX_CHARS - 1).collect();
    format!("{kept}…")
}

/// Text from AD or a server on one line: control characters (a streetAddress's line breaks, a
/// stray terminal escape) are shown escaped instead of breaking the layout or the terminal.
pub fn printable(text: &str) -> String {
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
pub fn human_duration(ms: i64) -> String {
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

/// One stage of a trace as text: its heading line (`2. Scope: in scope: …`) and the lines
/// under it. The CLI prints them; the dashboard shows each as a panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceStage {
    pub heading: String,
    pub details: Vec<String>,
}

/// A trace's stages, in order, as far as the object went.
pub fn trace_stages(trace: &Trace) -> Vec<TraceStage> {
    let mut stages = Vec::new();
    let mut stage = |heading: String, details: Vec<String>| {
        stages.push(TraceStage { heading, details });
    };
    match &trace.found {
        Found::Found { dn, anchor, .. } => {
            stage(
                format!("1. Found in AD: {dn} (objectGUID {anchor})"),
                Vec::new(),
            );
        }
        Found::NotFound { closest } => {
            let mut details = Vec::new();
            if !closest.is_empty() {
                details.push("Closest names:".to_owned());
                details.extend(closest.iter().map(|dn| format!("- {dn}")));
            }
            stage("1. Not found in AD.".to_owned(), details);
        }
    }
    if let Some(scope) = &trace.scope {
        let verdict = if scope.in_scope {
            "in scope"
        } else {
            "out of scope"
        };
        stage(
            format!("2. Scope: {verdict}: {}", scope.because),
            Vec::new(),
        );
    }
    if let Some(join) = &trace.join {
        let target = join
            .cloud_id
            .as_deref()
            .map(|id| format!(" -> cloud object {id}"))
            .unwrap_or_default();
        stage(
            format!("3. Join: {}{target}: {}", join.verdict, join.because),
            join.candidates
                .iter()
                .map(|candidate| {
                    format!(
                        "candidate {} ({}, immutableId {})",
                        candidate.cloud_id,
                        candidate.user_principal_name.as_deref().unwrap_or("no UPN"),
                        candidate.immutable_id.as_deref().unwrap_or("none"),
                    )
                })
                .collect(),
        );
    }
    if !trace.flow.is_empty() {
        stage(
            "4. Attribute flow (cloud now -> from AD):".to_owned(),
            trace
                .flow
                .iter()
                .map(|row| {
                    let mark = if row.changes { "*" } else { " " };
                    format!(
                        "{mark} {} (from {}): {} -> {}",
                        row.property, row.ad_attribute, row.cloud, row.from_ad
                    )
                })
                .collect(),
        );
    }
    if trace.scope.as_ref().is_some_and(|scope| scope.in_scope) {
        if trace.validation.is_empty() {
            stage("5. Validation: every rule passes".to_owned(), Vec::new());
        } else {
            stage(
                "5. Validation:".to_owned(),
                trace
                    .validation
                    .iter()
                    .map(|finding| {
                        format!(
                            "{} [{}] {} - fix: {}",
                            finding.severity, finding.rule, finding.problem, finding.fix
                        )
                    })
                    .collect(),
            );
        }
        if trace.export.is_empty() {
            stage("6. Export: nothing to send".to_owned(), Vec::new());
        } else {
            stage(
                "6. Export (what the next cycle sends):".to_owned(),
                trace
                    .export
                    .iter()
                    .map(|request| {
                        let body = request
                            .body
                            .as_ref()
                            .map(|body| format!(" {body}"))
                            .unwrap_or_default();
                        format!("{} {}{body}", request.method, request.path)
                    })
                    .collect(),
            );
        }
    }
    stages
}

/// A trace as the CLI prints it: each stage's heading, its lines indented, then the verdict.
pub fn trace_text(trace: &Trace) -> String {
    let mut out = format!("Trace of '{}'\n", trace.query);
    for stage in trace_stages(trace) {
        out.push_str(&stage.heading);
        out.push('\n');
        for detail in &stage.details {
            out.push_str("   ");
            out.push_str(detail);
            out.push('\n');
        }
    }
    out.push_str(&format!("Verdict: {}\n", trace.verdict));
    out
}

/// What an error comes from, for the dashboard's error workbench: the error types of the run
/// records grouped as an administrator fixes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorCause {
    DuplicateInAd,
    HeldInCloud,
    InvalidCharacters,
    Lengths,
    SoftMatchRefused,
    Permissions,
    Throttling,
    Other,
}

impl ErrorCause {
    pub fn title(self) -> &'static str {
        match self {
            ErrorCause::DuplicateInAd => "Duplicate values inside AD",
            ErrorCause::HeldInCloud => "A value held by another cloud object",
            ErrorCause::InvalidCharacters => "Invalid characters",
            ErrorCause::Lengths => "Lengths",
            ErrorCause::SoftMatchRefused => "Soft-match refusals",
            ErrorCause::Permissions => "Permissions",
            ErrorCause::Throttling => "Throttling",
            ErrorCause::Other => "Other",
        }
    }

    /// A stable word, for file names.
    pub fn word(self) -> &'static str {
        match self {
            ErrorCause::DuplicateInAd => "duplicates",
            ErrorCause::HeldInCloud => "cloud-conflicts",
            ErrorCause::InvalidCharacters => "invalid-characters",
            ErrorCause::Lengths => "lengths",
            ErrorCause::SoftMatchRefused => "soft-match-refusals",
            ErrorCause::Permissions => "permissions",
            ErrorCause::Throttling => "throttling",
            ErrorCause::Other => "other",
        }
    }

    /// What fixes the whole group, in plain words.
    pub fn advice(self) -> &'static str {
        match self {
            ErrorCause::DuplicateInAd => {
                "Two objects in scope use the same value, and the cloud takes each value once: change it on one of the two in AD (`dirsync check` lists every pair)."
            }
            ErrorCause::HeldInCloud => {
                "A cloud object dirsync does not manage holds the value: remove it there, or give the AD object another value; `dirsync trace` shows the holder."
            }
            ErrorCause::InvalidCharacters => {
                "Values the cloud refuses: fix them in AD (`dirsync check` suggests a value for each)."
            }
            ErrorCause::Lengths => "Values longer than the cloud allows: shorten them in AD.",
            ErrorCause::SoftMatchRefused => {
                "A cloud object with the same address belongs to another directory, a cloud administrator, or a group dirsync did not make: see each hint."
            }
            ErrorCause::Permissions => {
                "The sync app or the service account lacks a right: run setup again (it grants exactly what the options need)."
            }
            ErrorCause::Throttling => {
                "The tenant slowed dirsync down; nothing was lost: the next run sends the rest."
            }
            ErrorCause::Other => "See each object's message and hint.",
        }
    }
}

/// The cause of an error type as run records store it.
pub fn error_cause(error_type: &str) -> ErrorCause {
    match error_type {
        "duplicate" => ErrorCause::DuplicateInAd,
        "conflict" => ErrorCause::HeldInCloud,
        "invalid-character" | "not-an-address" | "leading-period" | "not-text" => {
            ErrorCause::InvalidCharacters
        }
        "too-long" | "local-part-too-long" => ErrorCause::Lengths,
        "invalid-soft-match" | "group-not-ours" | "privileged-cloud-account" => {
            ErrorCause::SoftMatchRefused
        }
        "forbidden" | "write-back-denied" => ErrorCause::Permissions,
        "throttled" => ErrorCause::Throttling,
        _ => ErrorCause::Other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn csv_quotes_what_it_must_and_defuses_formulas() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("CN=a,OU=b"), "\"CN=a,OU=b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(csv_cell("line\nbreak"), "\"line\nbreak\"");
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
