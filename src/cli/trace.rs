//! `dirsync trace OBJECT [--json] [--apply]`: one object walked through a cycle's stages (README,
//! "Tracing one object"), printed stage by stage or as one JSON document; with `--apply`, then
//! synchronized alone. `dirsync push OBJECT` synchronizes it alone now (README, "Pushing one
//! user now").

use std::time::Duration;

use super::sync::{exit_status, print_report, progress_printer};
use super::{CliError, EXIT_SUCCESS, PushArgs, TraceArgs};
use crate::home::Home;
use crate::run_report::trace_text;
use crate::runner::{self, AccountHold, OneObjectRun};
use crate::store::vocabulary::RunTrigger;

pub async fn run(args: &TraceArgs, home: &Home) -> Result<u8, CliError> {
    if args.apply {
        // A trace applied sends its requests at once: it does not wait for a running cycle.
        let ran = one_object(
            home,
            &args.object,
            RunTrigger::Trace,
            Duration::ZERO,
            false,
            AccountHold::FollowAd,
        )
        .await?;
        if !args.json {
            print!("{}", trace_text(&ran.trace));
        }
        print_report(&ran.ran.store, &ran.ran.report, args.json)?;
        return Ok(exit_status(&ran.ran.report));
    }
    let trace = runner::trace_object(home, &args.object).await?;
    if args.json {
        let document =
            serde_json::to_string(&trace).map_err(|error| CliError::Failed(error.to_string()))?;
        println!("{document}");
    } else {
        print!("{}", trace_text(&trace));
    }
    Ok(EXIT_SUCCESS)
}

pub async fn push(args: &PushArgs, home: &Home) -> Result<u8, CliError> {
    let hold = if args.disable {
        AccountHold::Disable
    } else if args.enable {
        AccountHold::Release
    } else {
        AccountHold::FollowAd
    };
    let ran = one_object(
        home,
        &args.object,
        RunTrigger::Push,
        Duration::from_secs(args.wait_secs),
        args.revoke_sessions,
        hold,
    )
    .await?;
    runner::audit::record_push(
        home,
        runner::audit::Source::Cli,
        &args.object,
        &ran,
        hold,
        args.revoke_sessions,
    );
    print_report(&ran.ran.store, &ran.ran.report, args.json)?;
    if !args.json {
        match hold {
            AccountHold::Disable if ran.held_disabled => println!(
                "Held disabled in the cloud until AD disables the account too: every cycle keeps it so (dirsync push --enable {} takes the hold back).",
                args.object
            ),
            AccountHold::Disable => {
                println!("AD has the account disabled: the cloud follows AD, no hold is needed.");
            }
            AccountHold::Release if ran.released => {
                println!("Hold taken back: the cloud account follows AD again.");
            }
            AccountHold::Release => {
                println!("No hold on this user: its cloud account already follows AD.");
            }
            AccountHold::FollowAd if ran.held_disabled => println!(
                "Still held disabled in the cloud by an earlier --disable (dirsync push --enable {} takes the hold back).",
                args.object
            ),
            AccountHold::FollowAd => {}
        }
        if let Some(user) = &ran.revoked {
            println!("Sign-in sessions of cloud user {user} revoked.");
        } else if args.revoke_sessions {
            println!("No cloud user to revoke sessions of (the object is not synced).");
        }
    }
    Ok(exit_status(&ran.ran.report))
}

async fn one_object(
    home: &Home,
    object: &str,
    trigger: RunTrigger,
    wait: Duration,
    revoke_sessions: bool,
    hold: AccountHold,
) -> Result<OneObjectRun, CliError> {
    let progress = progress_printer();
    Ok(runner::run_one_object(
        home,
        object,
        trigger,
        wait,
        revoke_sessions,
        hold,
        &progress,
    )
    .await?)
}
