//! `dirsync check [--ou DN] [--json | --csv]`: IdFix, built in (README, "Checking the directory
//! before syncing"). Exit status 0 when nothing was found, 3 when something was.

use super::{CheckArgs, CliError, EXIT_OBJECT_ERRORS, EXIT_SUCCESS};
use crate::directory::Dn;
use crate::home::Home;
use crate::runner::{self, CheckReport};

pub async fn run(args: &CheckArgs, home: &Home) -> Result<u8, CliError> {
    if let Some(ou) = &args.ou
        && let Err(error) = Dn::parse(ou)
    {
        return Err(CliError::BadInput(format!(
            "--ou '{ou}' is not a DN: {error}"
        )));
    }
    let report = runner::check_directory(home, args.ou.as_deref()).await?;
    if args.json {
        let document =
            serde_json::to_string(&report).map_err(|error| CliError::Failed(error.to_string()))?;
        println!("{document}");
    } else if args.csv {
        print!("{}", as_csv(&report));
    } else {
        print!("{}", as_text(&report));
    }
    Ok(if report.findings.is_empty() {
        EXIT_SUCCESS
    } else {
        EXIT_OBJECT_ERRORS
    })
}

fn as_text(report: &CheckReport) -> String {
    let mut out = format!(
        "Checked {} users and groups in {}: {} finding{}.\n",
        report.objects_checked,
        report.scope.join("; "),
        report.findings.len(),
        if report.findings.len() == 1 { "" } else { "s" }
    );
    if !report.suffixes_checked {
        out.push_str("(The tenant's domains could not be read: UPN suffixes were not checked.)\n");
    }
    for finding in &report.findings {
        out.push_str(&format!(
            "\n{} [{} {}] {}\n  {}\n  Fix: {}\n",
            finding.dn,
            finding.severity,
            finding.rule,
            finding.attribute,
            finding.problem,
            finding.fix
        ));
        if let Some(suggested) = &finding.suggested {
            out.push_str(&format!("  Suggested value: {suggested}\n"));
        }
    }
    out
}

/// One row per finding, as IdFix exports them: a spreadsheet opens it as it is.
fn as_csv(report: &CheckReport) -> String {
    let mut out =
        String::from("dn,object_type,attribute,value,rule,severity,problem,fix,suggested\r\n");
    for finding in &report.findings {
        let cells = [
            finding.dn.as_str(),
            finding.object_type.as_str(),
            finding.attribute.as_str(),
            finding.value.as_str(),
            finding.rule,
            finding.severity,
            finding.problem.as_str(),
            finding.fix.as_str(),
            finding.suggested.as_deref().unwrap_or(""),
        ];
        let row: Vec<String> = cells.iter().map(|cell| csv_cell(cell)).collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

/// RFC 4180: quoted when it holds a comma, a quote or a line break; quotes doubled.
fn csv_cell(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_owned()
    }
}
