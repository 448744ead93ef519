//! `dirsync audit`: the audit trail (README, "The audit trail"), newest first.

use super::{AuditArgs, CliError, EXIT_SUCCESS};
use crate::clock::iso_time;
use crate::home::Home;
use crate::runner::audit::entries;

pub fn run(args: &AuditArgs, home: &Home) -> Result<u8, CliError> {
    let entries = entries(home, args.limit)?;
    if args.json {
        let entries: Vec<serde_json::Value> = entries
            .iter()
            .map(|entry| {
                let mut value = serde_json::to_value(entry).expect("entries serialize");
                value["at_iso"] = serde_json::Value::String(iso_time(entry.at));
                value
            })
            .collect();
        println!("{}", serde_json::json!({ "entries": entries }));
        return Ok(EXIT_SUCCESS);
    }
    if entries.is_empty() {
        println!("No changes recorded yet.");
    }
    for entry in &entries {
        let detail = if entry.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", entry.detail)
        };
        println!(
            "{}  {}  {}  {}{detail}",
            iso_time(entry.at),
            entry.os_user,
            entry.source,
            entry.action
        );
        for change in &entry.changes {
            println!(
                "    {}: {} -> {}",
                change.field,
                change.old.as_deref().unwrap_or("(none)"),
                change.new.as_deref().unwrap_or("(none)")
            );
        }
    }
    Ok(EXIT_SUCCESS)
}
