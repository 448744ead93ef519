//! The window (eframe/egui). The UI sends commands and polls results; it never blocks on the network
//! and holds no sync logic of its own.

pub mod alerts_form;
pub mod dashboard;
pub mod icon;
pub mod rules_editor;
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
    Dashboard(Box<dashboard::Dashboard>),
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
    dashboard_options: dashboard::DashboardOptions,
}

impl DirsyncApp {
    /// The wizard when nothing is configured (pre-filled from `prefill`), the dashboard
    /// otherwise.
    pub fn new(home: Home, runtime: Handle, prefill: Option<&Answers>) -> Self {
        Self::with_dashboard_options(
            home,
            runtime,
            prefill,
            dashboard::DashboardOptions::default(),
        )
    }

    /// As [`DirsyncApp::new`], the dashboard behaving as `dashboard_options` say (tests turn
    /// the schedule and cloud reads off).
    pub fn with_dashboard_options(
        home: Home,
        runtime: Handle,
        prefill: Option<&Answers>,
        dashboard_options: dashboard::DashboardOptions,
    ) -> Self {
        let route = if home.is_configured() && prefill.is_none() {
            Route::Dashboard(Box::new(dashboard::Dashboard::new(
                home.clone(),
                runtime.clone(),
                dashboard_options,
            )))
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
            dashboard_options,
        }
    }

    fn open_dashboard(&self) -> Route {
        Route::Dashboard(Box::new(dashboard::Dashboard::new(
            self.home.clone(),
            self.runtime.clone(),
            self.dashboard_options,
        )))
    }

    /// Everything inside the window; separate from [`eframe::App::ui`] so tests can drive it
    /// without a native window.
    pub fn contents_ui(&mut self, ui: &mut egui::Ui) {
        let mut next = None;
        match &mut self.route {
            Route::Wizard(wizard) => {
                wizard::wizard_ui(ui, wizard);
                match wizard.outcome {
                    Some(wizard::WizardOutcome::Applied) => next = Some(self.open_dashboard()),
                    Some(wizard::WizardOutcome::Cancelled) if self.home.is_configured() => {
                        next = Some(self.open_dashboard());
                    }
                    Some(wizard::WizardOutcome::Cancelled) => self.close_requested = true,
                    None => {}
                }
            }
            Route::Dashboard(board) => {
                if let Some(problem) = &self.config_problem {
                    ui.colored_label(theme::error(ui), problem);
                }
                match dashboard::dashboard_ui(ui, board) {
                    dashboard::DashboardAction::None => {}
                    dashboard::DashboardAction::Configure => {
                        // A run of the window's goes on to its end in the background; the
                        // dashboard that returns reads the history again.
                        next = Some(self.configure());
                    }
                    dashboard::DashboardAction::StartOver => {
                        next = Some(Route::Wizard(Box::new(wizard::WizardState::new(
                            self.runtime.clone(),
                            self.home.clone(),
                        ))));
                    }
                }
            }
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

    /// The dashboard, when it is showing.
    pub fn dashboard(&self) -> Option<&dashboard::Dashboard> {
        match &self.route {
            Route::Dashboard(board) => Some(board),
            Route::Wizard(_) => None,
        }
    }

    pub fn dashboard_mut(&mut self) -> Option<&mut dashboard::Dashboard> {
        match &mut self.route {
            Route::Dashboard(board) => Some(board),
            Route::Wizard(_) => None,
        }
    }
}

impl eframe::App for DirsyncApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.contents_ui(ui);
        if self.close_requested {
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        if let Some(board) = self.dashboard_mut() {
            board.on_close();
        }
    }
}

/// The window's icon, in pixels (the desktop scales it).
const WINDOW_ICON_SIZE: u32 = 128;

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
            .with_min_inner_size([760.0, 520.0])
            .with_icon(egui::IconData {
                rgba: icon::icon_rgba(WINDOW_ICON_SIZE),
                width: WINDOW_ICON_SIZE,
                height: WINDOW_ICON_SIZE,
            }),
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
