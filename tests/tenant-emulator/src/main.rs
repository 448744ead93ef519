//! `tenant-emulator --listen ADDR:PORT [--state FILE] ...`: serves the emulator, prints one
//! JSON line (the ReadyInfo) on stdout when ready, logs to stderr, and stops cleanly (state
//! written) on SIGINT or SIGTERM.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tenant_emulator::{EmulatorConfig, RunningEmulator, WriteLimit};

/// A Microsoft Graph v1.0 and Microsoft identity platform emulator for dirsync's tests.
#[derive(Debug, Parser)]
#[command(name = "tenant-emulator", version)]
struct Args {
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// State file: the tenant survives restarts.
    #[arg(long = "state")]
    state: Option<PathBuf>,
    /// The tenant's initial domain.
    #[arg(long, default_value = "contoso-lab.onmicrosoft.com")]
    initial_domain: String,
    /// A further verified domain (repeatable).
    #[arg(long = "verified-domain")]
    verified_domains: Vec<String>,
    /// Approve device codes as the Global Administrator at once.
    #[arg(long)]
    auto_approve: bool,
    /// Writes allowed per window, per application and tenant.
    #[arg(long, default_value_t = 3000)]
    write_limit: u32,
    /// The write limit's sliding window in seconds.
    #[arg(long, default_value_t = 150)]
    write_window_secs: u64,
    /// Access token lifetime in seconds.
    #[arg(long, default_value_t = 3599)]
    token_lifetime_secs: u64,
    /// The device code polling interval announced to clients, in seconds.
    #[arg(long, default_value_t = 5)]
    device_code_interval_secs: u64,
    /// Do not serve the password hash sync endpoint (/dirsync/v1/passwordHashes, an emulator
    /// extension): answer it 404 like any unknown path, as public Graph does.
    #[arg(long)]
    no_password_hash_endpoint: bool,
    /// Do not serve the mailbox delta (/dirsync/v1/mailboxes/delta, an emulator extension):
    /// answer it 404 like any unknown path, as public Graph does.
    #[arg(long)]
    no_mailbox_endpoint: bool,
    /// The directory size quota's total (default: 300,000 with a verified domain besides the
    /// initial one, else 50,000); creates are refused once it is used up.
    #[arg(long)]
    directory_quota: Option<u32>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = EmulatorConfig {
        listen: args.listen,
        state_file: args.state,
        initial_domain: args.initial_domain,
        verified_domains: args.verified_domains,
        auto_approve: args.auto_approve,
        write_limit: WriteLimit {
            writes: args.write_limit,
            window: Duration::from_secs(args.write_window_secs),
        },
        token_lifetime: Duration::from_secs(args.token_lifetime_secs),
        device_code_interval_secs: args.device_code_interval_secs,
        password_hash_endpoint: !args.no_password_hash_endpoint,
        mailbox_endpoint: !args.no_mailbox_endpoint,
        directory_quota: args.directory_quota,
        ..EmulatorConfig::default()
    };
    let emulator = match RunningEmulator::start(config) {
        Ok(emulator) => emulator,
        Err(error) => {
            eprintln!("tenant-emulator: cannot start: {error}");
            return ExitCode::from(2);
        }
    };
    let line = match serde_json::to_string(&emulator.info) {
        Ok(line) => line,
        Err(error) => {
            eprintln!("tenant-emulator: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        eprintln!("tenant-emulator: cannot write to stdout");
    }
    drop(stdout);
    eprintln!(
        "tenant-emulator: serving tenant {} on {} (Ctrl-C or SIGTERM stops it)",
        emulator.info.tenant_id, emulator.info.graph
    );
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tenant-emulator: {error}");
            return ExitCode::FAILURE;
        }
    };
    let signal = runtime.block_on(wait_for_signal());
    eprintln!("tenant-emulator: {signal}, stopping");
    emulator.stop();
    eprintln!("tenant-emulator: stopped");
    ExitCode::SUCCESS
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return "interrupted";
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted",
        _ = terminate.recv() => "terminated",
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "interrupted"
}
