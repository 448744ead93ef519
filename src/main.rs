use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _};
use dirsync::cli::{self, Cli};
use dirsync::home::Home;

fn main() -> ExitCode {
    // `--version` names the commit the package was built from (packaging/build-deb sets it).
    let version = format!(
        "{} (commit {})",
        env!("CARGO_PKG_VERSION"),
        option_env!("DIRSYNC_COMMIT").unwrap_or("not recorded: built outside packaging/build-deb")
    );
    let matches = Cli::command()
        .version(&*Box::leak(version.into_boxed_str()))
        .get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    // The service logs what it does (README, "Logs"); other commands only what goes wrong.
    let default_level = match cli.command {
        Some(cli::Command::Service) => "info",
        _ => "warn",
    };
    init_logging(cli.log_format, default_level);
    // Before any secret is read: no core dumps, not dumpable, files for the owner only.
    dirsync::hardening::harden_process();
    let home = Home::resolve(cli.home.as_deref());
    // main owns the runtime: the CLI runs on it, and the window spawns its background work on it.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("dirsync: error: cannot start the async runtime: {error}");
            return ExitCode::from(cli::EXIT_FAILED);
        }
    };
    match cli.command {
        None => {
            let prefill = match cli.prefill.as_deref().map(read_prefill).transpose() {
                Ok(prefill) => prefill,
                Err(message) => {
                    eprintln!("dirsync: error: --prefill: {message}");
                    return ExitCode::from(cli::EXIT_BAD_INPUT);
                }
            };
            match dirsync::ui::run_window(home, runtime.handle().clone(), prefill) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!(
                        "dirsync: error: cannot open the window: {error}; on a server without a desktop use the CLI (dirsync --help)"
                    );
                    ExitCode::from(cli::EXIT_FAILED)
                }
            }
        }
        Some(command) => ExitCode::from(runtime.block_on(cli::run(command, &home))),
    }
}

/// The answers file the wizard starts from.
fn read_prefill(path: &std::path::Path) -> Result<dirsync::setup::Answers, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    dirsync::setup::parse_answers(path, &text).map_err(|error| error.to_string())
}

/// Logs go to stderr, one line per event (README, "Logs"); `DIRSYNC_LOG` (tracing's filter syntax)
/// sets the level. winit's X11 notices (display size, XSETTINGS) are not the administrator's
/// concern.
fn init_logging(format: cli::LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DIRSYNC_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{default_level},winit=error"))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        cli::LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        cli::LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}
