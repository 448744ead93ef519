//! The headless commands. Each prints one JSON document on stdout with `--json`, human text
//! otherwise; errors are one line on stderr and an exit status (README, "CLI").

mod audit;
mod check;
mod lease;
mod match_group;
mod monitoring;
mod ous;
mod rules;
mod runs;
mod service;
mod setup;
pub mod sync;
mod trace;
mod uninstall;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::directory::DirectoryError;
use crate::home::Home;

pub const EXIT_SUCCESS: u8 = 0;
/// The run or the command failed (for example the server could not be reached).
pub const EXIT_FAILED: u8 = 1;
/// Bad usage or bad input: something the administrator typed or configured is wrong.
pub const EXIT_BAD_INPUT: u8 = 2;
/// The run completed, but some objects failed (they are listed in the run's errors).
pub const EXIT_OBJECT_ERRORS: u8 = 3;
/// The run stopped short of its deletes: more than the deletion threshold.
pub const EXIT_DELETION_THRESHOLD: u8 = 4;

#[derive(Debug, Parser)]
#[command(
    name = "dirsync",
    version,
    about = "Synchronizes on-premises Active Directory to Microsoft Entra ID",
    long_about = "Synchronizes on-premises Active Directory to Microsoft Entra ID.\n\nWith no command, opens the window."
)]
pub struct Cli {
    /// Directory holding config.toml and state.db (default: the platform's config and data directories)
    #[arg(long, env = "DIRSYNC_HOME", global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Open the wizard pre-filled from an answers file (the format of `dirsync setup --answers`;
    /// secrets are typed in the window)
    #[arg(long = "prefill", value_name = "FILE")]
    pub prefill: Option<PathBuf>,

    /// How log lines are written on stderr: `text` (one line per event) or `json` (one JSON
    /// object per line, for journald and log shippers)
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The log's format (README, "Logs").
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the OU tree of a directory (containers that can hold users and groups)
    Ous(OusArgs),
    /// Set dirsync up from an answers file: the wizard's steps, headless
    Setup(SetupArgs),
    /// Run one sync cycle now
    Sync(SyncArgs),
    /// Run the sync cycle on the configured interval until stopped (for systemd)
    Service,
    /// Show run history, or one run
    Runs(RunsArgs),
    /// Confirm that an AD group may take over the cloud group a run proposed (a cloud group
    /// with its mailNickname that dirsync did not create): the next run joins them
    MatchGroup(MatchGroupArgs),
    /// Follow one user or group through every stage of a cycle, as AD and the cloud hold it now:
    /// found, scope, join, attribute flow, validation, the requests a cycle would send
    Trace(TraceArgs),
    /// Send one user's (or group's) current AD state to the cloud now, without waiting for the
    /// next cycle (an off-boarding: disable in AD, then push with --revoke-sessions)
    Push(PushArgs),
    /// Check every user and group of the scope (or of one OU) with IdFix's rules, as a cycle
    /// would, without syncing: each finding with the attribute, the value, the rule and a fix
    Check(CheckArgs),
    /// Show the audit trail: who changed the configuration, confirmed deletes or pushed, when,
    /// and what changed
    Audit(AuditArgs),
    /// Send a test alert to the configured webhook and mail (monitoring.webhook_url,
    /// monitoring.email_*), to prove they are reached
    TestAlert,
    /// Sync rules: show them, test one against a user or group in AD now, preview and save a
    /// changed set
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Hosts sharing one PostgreSQL state database: which one holds the export lease (and
    /// exports), until when, and whether one was promoted or stepped down
    Lease(LeaseArgs),
    /// Make this host the one that exports: at once if no host holds the export lease, else
    /// the holder hands it over at its next export batch or cycle
    Promote(LeaseArgs),
    /// Stop exporting from this host: it gives the export lease up (another host takes it at
    /// its next cycle) and stays a standby until promoted
    StepDown(LeaseArgs),
    /// Turn sync off: show what setup made (the service account and its rights, the sync app,
    /// the secrets, the service, the configuration) and what stays, then remove it
    Uninstall(UninstallArgs),
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Evaluate expressions and scoping rules against one AD object, as it is now: the
    /// attributes they read, each expression's value, and whether the rules keep it in scope;
    /// without --expression or --rule, the rules in use (or --file's): whether the object
    /// syncs, and each mapped property before (the default flow) and after
    Test(RulesTestArgs),
    /// Print the rules in use: scoping, and each property's mapping (the default flow where
    /// no mapping is given)
    Show(RulesShowArgs),
    /// What a rules file would do if saved, read now: objects entering and leaving the scope,
    /// and property updates; changes nothing
    Preview(RulesFileArgs),
    /// Preview a rules file, then save it as the rules in config.toml (on a terminal after a
    /// confirmation, else with --yes); the next sync reads every object again under them
    Save(RulesSaveArgs),
}

#[derive(Debug, Args)]
pub struct RulesShowArgs {
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RulesFileArgs {
    /// A TOML file with the rules as config.toml's [rules] holds them ([users], [groups],
    /// [[users.scoping]], [users.mappings]…)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RulesSaveArgs {
    #[command(flatten)]
    pub file: RulesFileArgs,

    /// Save without asking
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct RulesTestArgs {
    /// The object: a DN, a userPrincipalName, a sAMAccountName or an objectGUID
    #[arg(value_name = "OBJECT")]
    pub object: String,

    /// A mapping expression, like 'Join(" ", [givenName], [sn])' (repeatable)
    #[arg(long = "expression", value_name = "EXPRESSION")]
    pub expressions: Vec<String>,

    /// A scoping rule, 'include|exclude ATTRIBUTE equals|starts-with|ends-with|matches|present
    /// [VALUE]' or 'include|exclude member-of|member-of-nested GROUP-DN' (repeatable; in order)
    #[arg(long = "rule", value_name = "RULE")]
    pub rules: Vec<String>,

    /// Without --expression or --rule: test the rules in this file (as `rules preview` reads
    /// it) instead of the rules in use
    #[arg(long, value_name = "FILE", conflicts_with_all = ["expressions", "rules"])]
    pub file: Option<PathBuf>,

    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UninstallArgs {
    /// The enterprise admin who removes the service account (UPN, DOMAIN\user or DN); the
    /// password comes from DIRSYNC_ADMIN_PASSWORD or a prompt on the terminal
    #[arg(long, value_name = "USER")]
    pub admin_user: Option<String>,

    /// Also clear the synced cloud users' onPremisesImmutableId, so that they become ordinary
    /// cloud accounts no later sync matches
    #[arg(long)]
    pub clear_immutable_ids: bool,

    /// Remove after showing what will be removed, without asking
    #[arg(long)]
    pub yes: bool,

    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LeaseArgs {
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,

    /// At most this many entries, newest first
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Only this OU and its subtree (default: the configured scope)
    #[arg(long, value_name = "DN")]
    pub ou: Option<String>,

    /// Print one JSON document on stdout
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,

    /// Print the findings as CSV (RFC 4180) on stdout
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The object: a DN, a userPrincipalName, a sAMAccountName or an objectGUID
    #[arg(value_name = "OBJECT")]
    pub object: String,

    /// Print one JSON document on stdout (a field per stage)
    #[arg(long)]
    pub json: bool,

    /// Then synchronize this object alone, now (a run of its own, trigger `trace`)
    #[arg(long)]
    pub apply: bool,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The user (or group): a DN, a userPrincipalName, a sAMAccountName or an objectGUID
    #[arg(value_name = "OBJECT")]
    pub object: String,

    /// Also end the user's cloud sign-in sessions now (revokeSignInSessions)
    #[arg(long)]
    pub revoke_sessions: bool,

    /// Disable the user in the cloud now, even while AD still has the account enabled; every
    /// cycle keeps it disabled until AD disables it too
    #[arg(long, conflicts_with = "enable")]
    pub disable: bool,

    /// Take back a --disable: the cloud account follows AD again
    #[arg(long)]
    pub enable: bool,

    /// Wait at most this long for a running cycle to finish (runs never overlap)
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub wait_secs: u64,

    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MatchGroupArgs {
    /// The AD group's DN, as the run's `group-not-ours` error names it
    #[arg(long, value_name = "DN")]
    pub dn: String,

    /// The cloud group's id, as the error names it (a check that the right match is confirmed)
    #[arg(long, value_name = "ID")]
    pub cloud_id: String,

    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// The answers file (TOML; see the README for every field)
    #[arg(long, value_name = "FILE")]
    pub answers: PathBuf,

    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Run everything but the export, and report exactly what would change
    #[arg(long)]
    pub preview: bool,

    /// Read every object in scope instead of only the changes since the last run (with
    /// --passwords: send every synced user's password again)
    #[arg(long)]
    pub full: bool,

    /// Run one password hash sync cycle instead of the sync cycle
    #[arg(long, conflicts_with = "preview")]
    pub passwords: bool,

    /// After the deletion threshold stopped a run: make up to N deletes in this run (the number
    /// the stopped run reported). A run that would delete more still stops.
    #[arg(long, value_name = "N", conflicts_with_all = ["preview", "passwords"])]
    pub confirm_deletes: Option<usize>,

    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub show: Option<RunsCommand>,

    /// Print one JSON document on stdout
    #[arg(long, global = true)]
    pub json: bool,

    /// How many runs to list, newest first
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// One run: its counters and its object changes
    Show(RunsShowArgs),
}

#[derive(Debug, Args)]
pub struct RunsShowArgs {
    /// The run's id (from `dirsync runs`)
    pub id: i64,

    /// Only changes of this kind
    #[arg(long, value_enum)]
    pub kind: Option<ChangeFilter>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ChangeFilter {
    Adds,
    Updates,
    Deletes,
    Errors,
}

#[derive(Debug, Args)]
pub struct OusArgs {
    /// Domain controller URL: ldaps://HOST[:636], or ldap://HOST[:389] (upgraded with StartTLS)
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,

    /// User to sign in as: UPN, DOMAIN\user or DN. The password comes from DIRSYNC_LDAP_PASSWORD
    /// or a prompt on the terminal
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,

    /// PEM file with the CA certificate(s) that issued the domain controller's certificate
    #[arg(long, value_name = "PATH", conflicts_with = "insecure")]
    pub ca_file: Option<PathBuf>,

    /// Do not verify the domain controller's certificate (not for production)
    #[arg(long)]
    pub insecure: bool,

    /// DN to start from (default: the domain's naming context)
    #[arg(long, value_name = "DN")]
    pub base: Option<String>,

    /// How many levels below the base to list (default: all)
    #[arg(long, value_name = "N")]
    pub depth: Option<u32>,

    /// Print one JSON document on stdout
    #[arg(long)]
    pub json: bool,

    /// Seconds to wait for the server before giving up
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    pub timeout_secs: u64,
}

/// A command's failure, already worded for the administrator.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    BadInput(String),
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub fn exit_status(&self) -> u8 {
        match self {
            CliError::BadInput(_) => EXIT_BAD_INPUT,
            CliError::Failed(_) => EXIT_FAILED,
        }
    }
}

/// On a terminal, the administrator types `word` to go on (asked "Type 'word' to {what},
/// anything else to stop"); without a terminal the answer is no, and the caller asks for
/// `--yes` instead.
pub fn confirmed_on_terminal(what: &str, word: &str) -> Result<bool, CliError> {
    use std::io::{BufRead as _, IsTerminal as _, Write as _};
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    print!("\nType '{word}' to {what}, anything else to stop: ");
    std::io::stdout()
        .flush()
        .map_err(|error| CliError::Failed(error.to_string()))?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|error| CliError::Failed(format!("cannot read the answer: {error}")))?;
    Ok(answer.trim() == word)
}

impl From<crate::runner::RunError> for CliError {
    fn from(error: crate::runner::RunError) -> Self {
        if error.is_bad_input() {
            CliError::BadInput(error.to_string())
        } else {
            CliError::Failed(error.to_string())
        }
    }
}

impl From<crate::setup::SetupFailure> for CliError {
    fn from(failure: crate::setup::SetupFailure) -> Self {
        if failure.is_bad_input() {
            CliError::BadInput(failure.to_string())
        } else {
            CliError::Failed(failure.to_string())
        }
    }
}

impl From<DirectoryError> for CliError {
    fn from(error: DirectoryError) -> Self {
        if error.is_bad_input() {
            CliError::BadInput(error.to_string())
        } else {
            CliError::Failed(error.to_string())
        }
    }
}

/// Runs one command and returns the process exit status. Errors are reported here, once.
pub async fn run(command: Command, home: &Home) -> u8 {
    let (result, json) = match command {
        Command::Ous(args) => {
            let json = args.json;
            (ous::run(args, home).await.map(|()| EXIT_SUCCESS), json)
        }
        Command::Setup(args) => {
            let json = args.json;
            (setup::run(args, home).await, json)
        }
        Command::Sync(args) => {
            let json = args.json;
            (sync::run(args, home).await, json)
        }
        Command::Service => (service::run(home).await, false),
        Command::Runs(args) => {
            let json = args.json;
            (runs::run(args, home), json)
        }
        Command::MatchGroup(args) => {
            let json = args.json;
            (match_group::run(&args, home), json)
        }
        Command::Trace(args) => {
            let json = args.json;
            (trace::run(&args, home).await, json)
        }
        Command::Push(args) => {
            let json = args.json;
            (trace::push(&args, home).await, json)
        }
        Command::Check(args) => {
            let json = args.json;
            (check::run(&args, home).await, json)
        }
        Command::Audit(args) => (audit::run(&args, home), args.json),
        Command::Lease(args) => (lease::run(lease::Action::Show, &args, home), args.json),
        Command::Promote(args) => (lease::run(lease::Action::Promote, &args, home), args.json),
        Command::StepDown(args) => (lease::run(lease::Action::StepDown, &args, home), args.json),
        Command::Rules(RulesCommand::Test(args)) => {
            let json = args.json;
            (rules::test(&args, home).await, json)
        }
        Command::Rules(RulesCommand::Show(args)) => (rules::show(&args, home), args.json),
        Command::Rules(RulesCommand::Preview(args)) => {
            let json = args.json;
            (rules::preview(&args, home).await, json)
        }
        Command::Rules(RulesCommand::Save(args)) => {
            let json = args.file.json;
            (rules::save(&args, home).await, json)
        }
        Command::Uninstall(args) => {
            let json = args.json;
            (uninstall::run(&args, home).await, json)
        }
        Command::TestAlert => (
            // A broken configuration is the administrator's to fix (exit 2), not a failed send.
            match sync::load_config(home) {
                Err(error) => Err(error),
                Ok(_) => match crate::runner::alerts::send_test(home).await {
                    Ok(reached) => {
                        for destination in reached {
                            println!("Sent a test alert to {destination}.");
                        }
                        Ok(EXIT_SUCCESS)
                    }
                    Err(message) => Err(CliError::Failed(message)),
                },
            },
            false,
        ),
    };
    match result {
        Ok(status) => status,
        Err(error) => {
            eprintln!("dirsync: error: {error}");
            if json {
                let kind = match error {
                    CliError::BadInput(_) => "bad-input",
                    CliError::Failed(_) => "failed",
                };
                let document =
                    serde_json::json!({ "error": { "kind": kind, "message": error.to_string() } });
                println!("{document}");
            }
            error.exit_status()
        }
    }
}
