//! The window (eframe/egui). The UI sends commands and polls results; it never blocks on the network
//! and holds no sync logic of its own.

pub mod task;
pub mod theme;
pub mod wizard;

use tokio::runtime::Handle;

use crate::config::Config;
use crate::home::Home;
use crate::setup::answers::Answers;

/// What the window shows.
#[derive(Debug)]
pub enum Route {
    Wizard(Box<wizard::WizardState>),
    /// Setup is done. The dashboard (issue 7) grows here; for now the configuration and the
    /// run history in brief, and "Configure…".
    Dashboard(Box<HandOff>),
}

/// What the hand-off page shows, read from disk when it opens (and on Refresh), not per frame.
#[derive(Debug)]
pub struct HandOff {
    config: Result<Config, String>,
    runs: Result<Vec<crate::store::runs::RunRecord>, String>,
}

impl HandOff {
    fn read(home: &Home) -> Box<HandOff> {
        Box::new(HandOff {
            config: Config::load(&home.config_file).map_err(|error| error.to_string()),
            runs: crate::store::SqliteStore::open(&home.state_db)
                .and_then(|store| store.runs(10))
                .map_err(|error| error.to_string()),
        })
    }
}

#[derive(Debug)]
pub struct DirsyncApp {
    home: Home,
    runtime: Handle,
    route: Route,
    /// Why the saved configuration could not be read, when it could not.
    config_problem: Option<String>,
    /// Close the window (Cancel before any configuration exists).
    pub close_requested: bool,
}

impl DirsyncApp {
    /// The wizard when nothing is configured (pre-filled from `prefill`), the dashboard
    /// otherwise.
    pub fn new(home: Home, runtime: Handle, prefill: Option<&Answers>) -> Self {
        let route = if home.is_configured() && prefill.is_none() {
            Route::Dashboard(HandOff::read(&home))
        } else {
            let wizard = match prefill {
                Some(answers) => {
                    wizard::WizardState::from_answers(runtime.clone(), home.clone(), answers)
                }
                None => wizard::WizardState::new(runtime.clone(), home.clone()),
            };
            Route::Wizard(Box::new(wizard))
        };
        DirsyncApp {
            home,
            runtime,
            route,
            config_problem: None,
            close_requested: false,
        }
    }

    /// Everything inside the window; separate from [`eframe::App::ui`] so tests can drive it
    /// without a native window.
    pub fn contents_ui(&mut self, ui: &mut egui::Ui) {
        let mut next = None;
        match &mut self.route {
            Route::Wizard(wizard) => {
                wizard::wizard_ui(ui, wizard);
                match wizard.outcome {
                    Some(wizard::WizardOutcome::Applied) => {
                        next = Some(Route::Dashboard(HandOff::read(&self.home)));
                    }
                    Some(wizard::WizardOutcome::Cancelled) if self.home.is_configured() => {
                        next = Some(Route::Dashboard(HandOff::read(&self.home)));
                    }
                    Some(wizard::WizardOutcome::Cancelled) => self.close_requested = true,
                    None => {}
                }
            }
            Route::Dashboard(hand_off) => match hand_off_ui(ui, hand_off, &self.config_problem) {
                HandOffAction::None => {}
                HandOffAction::Refresh => *hand_off = HandOff::read(&self.home),
                HandOffAction::Configure => next = Some(self.configure()),
            },
        }
        if let Some(route) = next {
            self.route = route;
        }
    }

    /// "Configure…": the wizard on the saved configuration.
    fn configure(&mut self) -> Route {
        let wizard = match Config::load(&self.home.config_file) {
            Ok(config) => {
                wizard::WizardState::from_config(self.runtime.clone(), self.home.clone(), &config)
            }
            Err(error) => {
                self.config_problem = Some(error.to_string());
                wizard::WizardState::new(self.runtime.clone(), self.home.clone())
            }
        };
        Route::Wizard(Box::new(wizard))
    }

    pub fn route(&self) -> &Route {
        &self.route
    }

    /// The wizard, when it is showing.
    pub fn wizard(&self) -> Option<&wizard::WizardState> {
        match &self.route {
            Route::Wizard(wizard) => Some(wizard),
            Route::Dashboard(_) => None,
        }
    }

    pub fn wizard_mut(&mut self) -> Option<&mut wizard::WizardState> {
        match &mut self.route {
            Route::Wizard(wizard) => Some(wizard),
            Route::Dashboard(_) => None,
        }
    }
}

enum HandOffAction {
    None,
    Refresh,
    Configure,
}

/// The hand-off page.
fn hand_off_ui(
    ui: &mut egui::Ui,
    hand_off: &HandOff,
    config_problem: &Option<String>,
) -> HandOffAction {
    let mut action = HandOffAction::None;
    egui::CentralPanel::default().show(ui, |ui| {
        ui.heading("dirsync");
        match &hand_off.config {
            Ok(config) => {
                ui.label(format!(
                    "Synchronizing {} to tenant {} ({} included OU(s)).",
                    config.directory.naming_context,
                    config.cloud.tenant_id,
                    config.scope.included.len()
                ));
                ui.label(format!(
                    "Service account {}; every {} minutes with `dirsync service`.",
                    config.directory.service_account_dn, config.options.interval_minutes
                ));
            }
            Err(problem) => {
                ui.colored_label(theme::error(ui), problem);
            }
        }
        ui.add_space(8.0);
        ui.strong("Recent runs");
        match &hand_off.runs {
            Ok(runs) if runs.is_empty() => {
                ui.label("No run yet.");
            }
            Ok(runs) => {
                egui::Grid::new("recent_runs").striped(true).show(ui, |ui| {
                    for run in runs {
                        ui.label(format!("run {}", run.id));
                        ui.label(run.trigger.as_str());
                        ui.label(run.mode.as_str());
                        ui.label(run.status.as_str());
                        ui.end_row();
                    }
                });
            }
            Err(problem) => {
                ui.colored_label(theme::error(ui), problem);
            }
        }
        if let Some(problem) = config_problem {
            ui.colored_label(theme::error(ui), problem);
        }
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            if ui.button("Configure…").clicked() {
                action = HandOffAction::Configure;
            }
            if ui.button("Refresh").clicked() {
                action = HandOffAction::Refresh;
            }
        });
    });
    action
}

impl eframe::App for DirsyncApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.contents_ui(ui);
        if self.close_requested {
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }
}

/// Opens the window and returns when it is closed.
pub fn run_window(
    home: Home,
    runtime: Handle,
    prefill: Option<Answers>,
) -> Result<(), eframe::Error> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("dirsync")
            .with_app_id("dirsync")
            .with_inner_size([1040.0, 720.0])
            .with_min_inner_size([760.0, 520.0]),
        ..Default::default()
    };
    eframe::run_native(
        "dirsync",
        options,
        Box::new(move |_creation_context| {
            Ok(Box::new(DirsyncApp::new(home, runtime, prefill.as_ref())))
        }),
    )
}
