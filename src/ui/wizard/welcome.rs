//! Step 1: what dirsync will do, what it needs, and whether this computer has it.

use tokio::runtime::Handle;

use crate::home::Home;
use crate::secret_store::OsKeyring;
use crate::setup::prerequisites::{Prerequisite, check_prerequisites};
use crate::ui::task::Lookup;
use crate::ui::theme;

#[derive(Debug, Default)]
pub struct WelcomeStep {
    checks: Lookup<Vec<Prerequisite>>,
}

impl WelcomeStep {
    /// Every required check passed.
    pub fn passed(&self) -> bool {
        self.checks.done().is_some_and(|checks| {
            checks
                .iter()
                .all(|check| !check.required || check.outcome.is_ok())
        })
    }

    pub fn busy(&self) -> bool {
        self.checks.is_running()
    }
}

pub fn welcome_ui(
    ui: &mut egui::Ui,
    step: &mut WelcomeStep,
    runtime: &Handle,
    home: &Home,
    authority: &str,
    server: &str,
) {
    step.checks.poll();
    if matches!(step.checks, Lookup::NotStarted) {
        let (authority, server) = (authority.to_owned(), server.to_owned());
        step.checks = Lookup::start(runtime, ui.ctx(), move |_| async move {
            Ok(check_prerequisites(&OsKeyring, &authority, &server).await)
        });
    }

    ui.heading("Welcome to dirsync");
    ui.add_space(8.0);
    ui.label(
        "dirsync keeps Microsoft Entra ID in step with your on-premises Active Directory: \
         the users and groups of the OUs you choose are created, updated and deleted in the \
         cloud as they change in AD.",
    );
    ui.add_space(8.0);
    ui.label("This wizard will:");
    for line in [
        "sign in to your cloud tenant (a Global Administrator, or an app you already have),",
        "check an enterprise administrator account (used now, never stored),",
        "let you choose hybrid write-back, password hash sync and the OUs to synchronize,",
        "show you what the first synchronization would change before anything is created,",
        "then create the service account dirsync reads AD with (with only the rights it needs) and the sync app.",
    ] {
        ui.label(format!("  •  {line}"));
    }
    ui.add_space(8.0);
    ui.label("You will need: the tenant's id or domain, a Global Administrator (or an app's id and secret), the domain controller's LDAPS address and its CA certificate, and an enterprise admin's user name and password.");
    ui.add_space(8.0);
    ui.label(format!(
        "The configuration will be saved to {}; secrets go to the OS keyring only.",
        home.config_file.display()
    ));
    ui.add_space(12.0);
    ui.strong("This computer");
    match &step.checks {
        Lookup::Done(checks) => {
            for check in checks {
                match &check.outcome {
                    Ok(found) => {
                        ui.colored_label(theme::ok(ui), format!("✔ {}: {found}", check.what));
                    }
                    Err(problem) => {
                        let colour = if check.required {
                            theme::error(ui)
                        } else {
                            theme::warning(ui)
                        };
                        ui.colored_label(colour, format!("✖ {}: {problem}", check.what));
                    }
                }
            }
        }
        Lookup::Failed(failure) => {
            ui.colored_label(theme::error(ui), failure.to_string());
        }
        _ => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Checking the keyring, the clock and the network…");
            });
        }
    }
    if !step.checks.is_running() && ui.button("Check again").clicked() {
        step.checks = Lookup::NotStarted;
    }
}
