//! Step 8: setup runs (`apply_setup`, as `dirsync setup` does) and a checklist ticks as each
//! thing is made; then, if asked for, the first sync runs and the dashboard takes over.

use tokio::runtime::Handle;

use super::WizardState;
use crate::engine::cycle::{CycleRequest, StopSignal};
use crate::secret::Secret;
use crate::setup::{
    Milestone, SetupFailure, SetupInputs, SetupReport, apply_setup, start_options_over,
};
use crate::store::StateStore;
use crate::store::vocabulary::{RunTrigger, StepKind};
use crate::ui::task::{Lookup, SetupEvent};
use crate::ui::theme;

/// What Apply did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub report: SetupReport,
    /// The first sync's outcome in words, when it was asked for.
    pub first_sync: Option<Result<String, String>>,
}

#[derive(Debug, Default)]
pub struct ApplyStep {
    work: Lookup<Applied>,
    service_account: Option<String>,
    rights: bool,
    secrets: bool,
    configuration: bool,
    first_sync_started: bool,
    /// What setup said as it went (notes and warnings), in order.
    log: Vec<(bool, String)>,
}

impl ApplyStep {
    pub fn started(&self) -> bool {
        !matches!(self.work, Lookup::NotStarted)
    }

    pub fn busy(&self) -> bool {
        self.work.is_running()
    }

    pub fn succeeded(&self) -> bool {
        self.work.done().is_some()
    }

    pub fn applied(&self) -> Option<&Applied> {
        self.work.done()
    }

    /// What setup has made so far, for Cancel's message.
    pub fn created_so_far(&self) -> Vec<String> {
        let mut made = Vec::new();
        if let Some(account) = &self.service_account {
            made.push(format!("the service account {account} in AD"));
        }
        if self.rights {
            made.push("its rights in AD".to_owned());
        }
        if self.secrets {
            made.push("the secrets in the OS keyring".to_owned());
        }
        if self.configuration {
            made.push("the configuration file".to_owned());
        }
        made
    }

    fn take_events(&mut self, events: Vec<SetupEvent>) {
        for event in events {
            match event {
                SetupEvent::Done(Milestone::ServiceAccount {
                    sam_account_name, ..
                }) => self.service_account = Some(sam_account_name),
                SetupEvent::Done(Milestone::RightsGranted) => self.rights = true,
                SetupEvent::Done(Milestone::SecretsStored) => self.secrets = true,
                SetupEvent::Done(Milestone::ConfigurationSaved) => self.configuration = true,
                SetupEvent::FirstSyncStarted => self.first_sync_started = true,
                SetupEvent::Note(text) | SetupEvent::Step(_, text) => self.log.push((false, text)),
                SetupEvent::Warning(text) => self.log.push((true, text)),
                SetupEvent::DeviceCode(_) | SetupEvent::Sync(_) => {}
            }
        }
    }
}

fn start(state: &mut WizardState, runtime: &Handle, repaint: &egui::Context) {
    let checked = match super::check_wizard_answers(state.answers()) {
        Ok(checked) => checked,
        Err(problem) => {
            state.apply.work = Lookup::Failed(problem);
            return;
        }
    };
    let Some(cloud) = state.cloud_session().cloned() else {
        state.apply.work = Lookup::Failed(SetupFailure::failed(
            None,
            "sign in to the cloud again (step 2)",
        ));
        return;
    };
    let inputs = SetupInputs {
        admin_password: Secret::new(state.admin.password.clone()),
        client_secret: (!state.cloud.client_secret.is_empty())
            .then(|| Secret::new(state.cloud.client_secret.clone())),
        computer: state.computer.clone(),
        forest_admin_passwords: state.forests.passwords(),
        // The wizard keeps the store the configuration names, and the password an earlier
        // setup kept for it (README, "Where the state lives").
        store_password: std::env::var(checked.answers.store.password_env())
            .ok()
            .filter(|password| !password.is_empty())
            .map(Secret::new)
            .or_else(|| {
                crate::secret_store::SecretStore::load(
                    &state.home().secrets(),
                    crate::store::POSTGRES_PASSWORD_KEY,
                )
                .ok()
                .flatten()
            }),
    };
    let home = state.home().clone();
    let start_sync = state.review.start_sync;
    state.apply = ApplyStep::default();
    state.apply.work = Lookup::start(runtime, repaint, move |mut reporter| async move {
        let previous = crate::config::Config::load(&home.config_file).ok();
        let report = Box::pin(apply_setup(
            &checked,
            &inputs,
            cloud,
            &home.config_file,
            &home.secrets(),
            &mut reporter,
        ))
        .await?;
        StateStore::open_home(&home)
            .and_then(|store| {
                start_options_over(&checked.answers.options, &store)?;
                // "Start synchronization when the wizard closes" left off: the schedule, the
                // service's or a window's, waits for the administrator's first sync.
                if !start_sync {
                    crate::runner::schedule::hold_until_first_sync(&store, crate::clock::now_ms())?;
                }
                Ok(())
            })
            .map_err(|error| SetupFailure::failed(None, error.to_string()))?;
        if let Ok(saved) = crate::config::Config::load(&home.config_file) {
            crate::runner::audit::record_configuration(
                &home,
                crate::runner::audit::Source::Wizard,
                "configuration-saved",
                previous.as_ref(),
                &saved,
            );
        }
        if !start_sync {
            return Ok(Applied {
                report,
                first_sync: None,
            });
        }
        reporter.first_sync_started();
        let request = CycleRequest::new(RunTrigger::Wizard);
        let progress = reporter.cycle_progress();
        let outcome = Box::pin(crate::runner::run_sync(
            &home,
            request,
            &StopSignal::default(),
            &progress,
        ))
        .await;
        let first_sync = match outcome {
            Ok(crate::runner::Ran { report: cycle, .. }) => {
                let export = cycle
                    .steps
                    .iter()
                    .find(|(step, _)| *step == StepKind::CloudExport)
                    .map(|(_, counters)| *counters)
                    .unwrap_or_default();
                let errors: u64 = cycle
                    .steps
                    .iter()
                    .map(|(_, counters)| counters.errors)
                    .sum();
                let text = format!(
                    "run {} ended {}: {} added, {} updated, {} deleted in the cloud, {} error(s)",
                    cycle.run_id,
                    cycle.status.as_str(),
                    export.adds,
                    export.updates,
                    export.deletes,
                    errors
                );
                match cycle.failure {
                    Some(failure) => Err(format!("{text}: {failure}")),
                    None => Ok(text),
                }
            }
            Err(error) => Err(error.to_string()),
        };
        Ok(Applied {
            report,
            first_sync: Some(first_sync),
        })
    });
}

pub fn apply_ui(ui: &mut egui::Ui, state: &mut WizardState, runtime: &Handle) {
    let events = state.apply.work.poll();
    state.apply.take_events(events);
    if !state.apply.started() {
        start(state, runtime, ui.ctx());
    }
    let step = &state.apply;
    ui.heading("Applying");
    ui.add_space(8.0);
    let running = step.busy();
    let failed = step.work.failure().is_some();
    item_ui(
        ui,
        step.service_account
            .as_ref()
            .map_or("Service account created".to_owned(), |name| {
                format!("Service account created: {name}")
            }),
        step.service_account.is_some(),
        running,
        failed,
    );
    item_ui(
        ui,
        "Rights granted".to_owned(),
        step.rights,
        running && step.service_account.is_some(),
        failed,
    );
    item_ui(
        ui,
        "Secrets stored in the OS keyring".to_owned(),
        step.secrets,
        running && step.rights,
        failed,
    );
    item_ui(
        ui,
        "Configuration saved".to_owned(),
        step.configuration,
        running && step.secrets,
        failed,
    );
    if state.review.start_sync {
        item_ui(
            ui,
            "First sync started".to_owned(),
            step.first_sync_started,
            running && step.configuration,
            failed,
        );
    }
    ui.add_space(8.0);
    egui::CollapsingHeader::new("Details")
        .default_open(false)
        .show(ui, |ui| {
            for (warning, line) in &step.log {
                if *warning {
                    ui.colored_label(theme::warning(ui), format!("⚠ {line}"));
                } else {
                    ui.label(line);
                }
            }
        });
    match &step.work {
        Lookup::Failed(message) => {
            ui.add_space(8.0);
            ui.colored_label(theme::error(ui), format!("✖ Setup stopped: {message}"));
            let made = step.created_so_far();
            if made.is_empty() {
                ui.label("Nothing was created or changed.");
            } else {
                ui.label(format!(
                    "What was already made stays ({}); applying again reuses it.",
                    made.join(", ")
                ));
            }
            if ui.button("Back to the review").clicked() {
                state.apply = ApplyStep::default();
                state.step = super::WizardStep::Review;
            }
        }
        Lookup::Done(applied) => {
            ui.add_space(8.0);
            for warning in &applied.report.warnings {
                ui.colored_label(theme::warning(ui), format!("⚠ {warning}"));
            }
            match &applied.first_sync {
                Some(Ok(text)) => {
                    ui.colored_label(theme::ok(ui), format!("✔ First sync: {text}"));
                }
                Some(Err(text)) => {
                    ui.colored_label(theme::error(ui), format!("✖ First sync: {text}"));
                }
                None => {
                    ui.label("No sync has run yet: start one from the dashboard, or with `dirsync sync`.");
                }
            }
            ui.colored_label(
                theme::ok(ui),
                "Setup is done. Open the dashboard to watch the synchronization.",
            );
        }
        _ => {}
    }
}

fn item_ui(ui: &mut egui::Ui, text: String, done: bool, current: bool, failed: bool) {
    ui.horizontal(|ui| {
        if done {
            ui.colored_label(theme::ok(ui), "✔");
        } else if current {
            ui.spinner();
        } else if failed {
            ui.colored_label(theme::error(ui), "✖");
        } else {
            ui.weak("○");
        }
        ui.label(text);
    });
}
