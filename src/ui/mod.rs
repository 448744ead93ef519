//! The window (eframe/egui). The UI sends commands and polls results; it never blocks on the network
//! and holds no sync logic of its own.

pub mod wizard;

use crate::home::Home;

/// What the window shows.
#[derive(Debug)]
pub struct DirsyncApp {
    home: Home,
    wizard: wizard::WizardState,
}

impl DirsyncApp {
    pub fn new(home: Home) -> Self {
        DirsyncApp {
            home,
            wizard: wizard::WizardState::default(),
        }
    }

    /// Everything inside the window; separate from [`eframe::App::ui`] so tests can drive it
    /// without a native window.
    pub fn contents_ui(&mut self, ui: &mut egui::Ui) {
        wizard::wizard_ui(ui, &mut self.wizard, &self.home);
    }

    pub fn wizard(&self) -> &wizard::WizardState {
        &self.wizard
    }
}

impl eframe::App for DirsyncApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.contents_ui(ui);
    }
}

/// Opens the window and returns when it is closed.
pub fn run_window(home: Home) -> Result<(), eframe::Error> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("dirsync")
            .with_app_id("dirsync")
            .with_inner_size([980.0, 660.0])
            .with_min_inner_size([720.0, 480.0]),
        ..Default::default()
    };
    eframe::run_native(
        "dirsync",
        options,
        Box::new(|_creation_context| Ok(Box::new(DirsyncApp::new(home)))),
    )
}
