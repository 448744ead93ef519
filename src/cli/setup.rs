//! `dirsync setup --answers FILE`: the wizard's steps, headless. Progress goes to stderr as each
//! step starts; with `--json` one document on stdout says what was done.

use std::io::IsTerminal;

use super::{CliError, EXIT_SUCCESS, SetupArgs};
use crate::engine::cycle::{CycleRequest, StopSignal};
use crate::home::Home;
use crate::runner::audit;
use crate::secret::Secret;
use crate::setup::answers::{CheckedAnswers, SignIn, check_answers, parse_answers};
use crate::setup::{STEPS, SetupInputs, SetupProgress, SetupReport, run_setup};
use crate::store::StateStore;
use crate::store::vocabulary::RunTrigger;

pub async fn run(args: SetupArgs, home: &Home) -> Result<u8, CliError> {
    let path = &args.answers;
    let text = std::fs::read_to_string(path).map_err(|error| {
        CliError::BadInput(format!(
            "cannot read the answers file {}: {error}",
            path.display()
        ))
    })?;
    let answers =
        parse_answers(path, &text).map_err(|error| CliError::BadInput(error.to_string()))?;
    let checked =
        check_answers(path, answers).map_err(|error| CliError::BadInput(error.to_string()))?;

    // Every secret is read before the first network call, so a missing one costs nothing.
    let directory = &checked.answers.directory;
    let admin_password = read_secret(
        &directory.admin_password_env,
        "directory.admin_password_env",
        &format!("Password for {}", directory.admin_user),
    )?;
    let client_secret = match checked.answers.cloud.sign_in {
        SignIn::App => Some(read_secret(
            checked.client_secret_env(),
            "cloud.client_secret_env",
            "Client secret of the app",
        )?),
        SignIn::DeviceCode => None,
    };
    let mut forest_admin_passwords = Vec::new();
    for (index, forest) in checked.forests.iter().enumerate() {
        let directory = &forest.answers.directory;
        forest_admin_passwords.push(read_secret(
            &directory.admin_password_env,
            &format!("forests[{index}].directory.admin_password_env"),
            &format!("Password for {}", directory.admin_user),
        )?);
    }
    // The state database's password: from its variable, else the one an earlier setup kept.
    let store = &checked.answers.store;
    let store_password = if store.engine == crate::config::StoreEngine::Postgresql {
        match std::env::var(store.password_env()) {
            Ok(value) if !value.is_empty() => Some(Secret::new(value)),
            _ => match crate::secret_store::SecretStore::load(
                &home.secrets(),
                crate::store::POSTGRES_PASSWORD_KEY,
            ) {
                Ok(Some(kept)) => Some(kept),
                _ => Some(read_secret(
                    store.password_env(),
                    "store.password_env",
                    "Password of the PostgreSQL login",
                )?),
            },
        }
    } else {
        None
    };
    let inputs = SetupInputs {
        admin_password,
        client_secret,
        computer: crate::setup::computer_name(),
        forest_admin_passwords,
        store_password,
    };

    let previous = crate::config::Config::load(&home.config_file).ok();
    let report = run_setup(
        &checked,
        &inputs,
        &home.config_file,
        &home.secrets(),
        &mut StderrProgress { steps: STEPS },
    )
    .await?;

    StateStore::open_home(home)
        .and_then(|store| crate::setup::start_options_over(&checked.answers.options, &store))
        .map_err(|error| CliError::Failed(error.to_string()))?;
    if let Ok(saved) = crate::config::Config::load(&home.config_file) {
        audit::record_configuration(
            home,
            audit::Source::Setup,
            "configuration-saved",
            previous.as_ref(),
            &saved,
        );
    }

    if !report.sync_now {
        if args.json {
            let document = serde_json::to_string_pretty(&report)
                .map_err(|error| CliError::Failed(format!("cannot write JSON: {error}")))?;
            println!("{document}");
        } else {
            print!("{}", summary(&checked, &report));
        }
        return Ok(EXIT_SUCCESS);
    }

    // sync_now: the first cycle, as the wizard's last step; its status is setup's.
    if !args.json {
        print!("{}", summary(&checked, &report));
    }
    let request = CycleRequest::new(RunTrigger::Wizard);
    let (store, cycle) = super::sync::run_locked(home, request, &StopSignal::default()).await?;
    if args.json {
        let mut document = serde_json::to_value(&report)
            .map_err(|error| CliError::Failed(format!("cannot write JSON: {error}")))?;
        document["first_run"] = super::sync::report_document(&store, &cycle)?;
        let text = serde_json::to_string_pretty(&document)
            .map_err(|error| CliError::Failed(format!("cannot write JSON: {error}")))?;
        println!("{text}");
    } else {
        println!("\nFirst sync run:");
        super::sync::print_report(&store, &cycle, false)?;
    }
    Ok(super::sync::exit_status(&cycle))
}

/// A secret from the environment variable `variable`, or asked for on the terminal without echo.
pub(super) fn read_secret(variable: &str, field: &str, prompt: &str) -> Result<Secret, CliError> {
    match std::env::var(variable) {
        Ok(value) if !value.is_empty() => return Ok(Secret::new(value)),
        Ok(_) => {
            return Err(CliError::BadInput(format!(
                "{field}: the environment variable {variable} is empty; put the secret in it, or unset it to be asked on a terminal"
            )));
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(CliError::BadInput(format!(
                "{field}: the environment variable {variable} is not valid UTF-8"
            )));
        }
        Err(std::env::VarError::NotPresent) => {}
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::BadInput(format!(
            "{field}: the environment variable {variable} is not set and there is no terminal to ask on; set {variable}"
        )));
    }
    let value = rpassword::prompt_password(format!("{prompt}: "))
        .map_err(|error| CliError::BadInput(format!("cannot read the secret: {error}")))?;
    if value.is_empty() {
        return Err(CliError::BadInput(format!(
            "{field}: nothing was entered; set {variable} or type the secret at the prompt"
        )));
    }
    Ok(Secret::new(value))
}

/// Progress lines on stderr: `1/6 Signing in to the cloud…`, details indented under them.
#[derive(Debug)]
pub(super) struct StderrProgress {
    /// How many numbered steps there are.
    pub(super) steps: usize,
}

impl SetupProgress for StderrProgress {
    fn step(&mut self, number: usize, title: &str) {
        eprintln!("{number}/{} {title}…", self.steps);
    }

    fn note(&mut self, text: &str) {
        eprintln!("    {text}");
    }

    fn warning(&mut self, text: &str) {
        eprintln!("dirsync: warning: {text}");
    }
}

/// The human summary on stdout.
fn summary(checked: &CheckedAnswers, report: &SetupReport) -> String {
    let mut out = String::from("dirsync is set up.\n");
    out.push_str(&format!("  tenant:          {}\n", report.tenant_id));
    out.push_str(&format!(
        "  sync app:        {} ({})\n",
        report.client_id, report.app.outcome
    ));
    out.push_str(&format!(
        "  service account: {} ({})\n",
        report.service_account.dn, report.service_account.outcome
    ));
    for right in &report.rights {
        out.push_str(&format!("  right:           {right}\n"));
    }
    for dn in &checked.answers.scope.included {
        out.push_str(&format!("  syncs:           {dn}\n"));
    }
    for dn in &checked.answers.scope.excluded {
        out.push_str(&format!("  except:          {dn}\n"));
    }
    out.push_str(&format!(
        "  configuration:   {}\n",
        report.config_file.display()
    ));
    if !report.warnings.is_empty() {
        out.push_str(&format!(
            "  {} warning(s), shown above on stderr\n",
            report.warnings.len()
        ));
    }
    out
}
