//! `dirsync uninstall`: shows what setup made and what stays, then (with `--yes`, or when the
//! administrator types `remove` on the terminal) removes it (README, "Turning sync off").
//! Nothing is removed without the preview having been printed first.

use super::setup::{StderrProgress, read_secret};
use super::{CliError, EXIT_SUCCESS, UninstallArgs};
use crate::home::Home;
use crate::runner::audit;
use crate::setup::uninstall::{
    UNINSTALL_STEPS, UninstallInputs, UninstallPreview, preview, uninstall,
};

pub async fn run(args: &UninstallArgs, home: &Home) -> Result<u8, CliError> {
    let shown = preview(home, args.clear_immutable_ids).await?;
    if !args.json {
        print!("{}", preview_text(&shown));
    }
    for warning in &shown.warnings {
        eprintln!("dirsync: warning: {warning}");
    }
    let admin_user = args
        .admin_user
        .as_deref()
        .map(str::trim)
        .filter(|user| !user.is_empty());
    // On a terminal the administrator is asked only when the removal could go on.
    let go_on = args.yes
        || (!args.json
            && admin_user.is_some()
            && super::confirmed_on_terminal("remove all this", "remove")?);
    if !go_on {
        if args.json {
            println!("{}", to_json(&serde_json::json!({ "preview": shown }))?);
        } else {
            println!(
                "\nNothing was removed. To remove it: dirsync uninstall --yes --admin-user USER{}",
                if args.clear_immutable_ids {
                    " --clear-immutable-ids"
                } else {
                    ""
                }
            );
        }
        return Ok(EXIT_SUCCESS);
    }

    // Every input is checked before the first change.
    let admin_user = admin_user
        .ok_or_else(|| {
            CliError::BadInput(
                "--admin-user: name the enterprise admin who removes the service account (UPN, DOMAIN\\user or DN); nothing was removed".to_owned(),
            )
        })?
        .to_owned();
    let admin_password = read_secret(
        "DIRSYNC_ADMIN_PASSWORD",
        "--admin-user's password",
        &format!("Password for {admin_user}"),
    )?;
    let inputs = UninstallInputs {
        admin_user,
        admin_password,
        clear_immutable_ids: args.clear_immutable_ids,
    };
    let mut progress = StderrProgress {
        steps: UNINSTALL_STEPS,
    };
    let report = uninstall(home, &inputs, &mut progress).await?;
    audit::record_or_log(
        home,
        audit::Source::Cli,
        "uninstalled",
        &report.in_words(&shown),
        &[],
    );
    if args.json {
        println!(
            "{}",
            to_json(&serde_json::json!({ "preview": shown, "removed": report }))?
        );
    } else {
        println!("\ndirsync is uninstalled: setup starts from scratch.");
        if report.immutable_ids_cleared > 0 {
            println!(
                "  {} cloud user(s) are ordinary cloud accounts now (onPremisesImmutableId cleared)",
                report.immutable_ids_cleared
            );
        }
    }
    Ok(EXIT_SUCCESS)
}

fn to_json(value: &serde_json::Value) -> Result<String, CliError> {
    serde_json::to_string_pretty(value)
        .map_err(|error| CliError::Failed(format!("cannot write JSON: {error}")))
}

/// The preview as the administrator reads it.
pub fn preview_text(preview: &UninstallPreview) -> String {
    let mut out = String::from("dirsync uninstall will remove:\n");
    for line in &preview.removes {
        out.push_str(&format!("  - {line}\n"));
    }
    out.push_str("\nand leave in place:\n");
    for line in &preview.stays {
        out.push_str(&format!("  - {line}\n"));
    }
    out
}
