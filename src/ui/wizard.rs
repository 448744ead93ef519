//! The configuration wizard's frame: the list of steps on the left, the current page in the middle,
//! Back and Next at the bottom. Each step proves itself with a real call before Next is enabled.

use crate::home::Home;

/// The wizard's steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WizardStep {
    #[default]
    Welcome,
    Cloud,
    EnterpriseAdmin,
    HybridWriteBack,
    PasswordSync,
    Scope,
    Review,
}

impl WizardStep {
    pub const ALL: [WizardStep; 7] = [
        WizardStep::Welcome,
        WizardStep::Cloud,
        WizardStep::EnterpriseAdmin,
        WizardStep::HybridWriteBack,
        WizardStep::PasswordSync,
        WizardStep::Scope,
        WizardStep::Review,
    ];

    pub fn title(self) -> &'static str {
        match self {
            WizardStep::Welcome => "Welcome",
            WizardStep::Cloud => "Cloud",
            WizardStep::EnterpriseAdmin => "Enterprise admin",
            WizardStep::HybridWriteBack => "Hybrid write-back",
            WizardStep::PasswordSync => "Password sync",
            WizardStep::Scope => "Scope",
            WizardStep::Review => "Review",
        }
    }

    fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|step| *step == self)
            .expect("every step is listed")
    }
}

/// Where the administrator is in the wizard.
#[derive(Debug, Default)]
pub struct WizardState {
    pub step: WizardStep,
    /// The furthest step reached; steps up to it can be revisited from the list.
    furthest: WizardStep,
}

impl WizardState {
    /// Whether the current step has been proven and the next one may open. No step after Welcome
    /// exists in this build yet, so Next stays disabled there.
    fn can_advance(&self) -> bool {
        false
    }
}

pub fn wizard_ui(ui: &mut egui::Ui, state: &mut WizardState, home: &Home) {
    egui::Panel::left("wizard_steps")
        .resizable(false)
        .exact_size(200.0)
        .show(ui, |ui| steps_ui(ui, state));
    egui::Panel::bottom("wizard_navigation").show(ui, |ui| navigation_ui(ui, state));
    egui::CentralPanel::default().show(ui, |ui| match state.step {
        WizardStep::Welcome => welcome_page_ui(ui, home),
        other => {
            ui.heading(other.title());
        }
    });
}

fn steps_ui(ui: &mut egui::Ui, state: &mut WizardState) {
    ui.add_space(12.0);
    ui.heading("Set up dirsync");
    ui.add_space(8.0);
    for step in WizardStep::ALL {
        let reachable = step.index() <= state.furthest.index();
        let selected = step == state.step;
        let response = ui.add_enabled(reachable, egui::Button::selectable(selected, step.title()));
        if response.clicked() {
            state.step = step;
        }
    }
}

fn navigation_ui(ui: &mut egui::Ui, state: &mut WizardState) {
    ui.add_space(6.0);
    // The right side lays out right to left, so Next is rightmost, where wizards put it.
    egui::Sides::new().show(
        ui,
        |_left| {},
        |ui| {
            let next = ui
                .add_enabled(state.can_advance(), egui::Button::new("Next"))
                .on_disabled_hover_text("The next step is not available in this build of dirsync.");
            if next.clicked()
                && let Some(step) = WizardStep::ALL.get(state.step.index() + 1)
            {
                state.step = *step;
                if step.index() > state.furthest.index() {
                    state.furthest = *step;
                }
            }
            let back = ui.add_enabled(state.step != WizardStep::Welcome, egui::Button::new("Back"));
            if back.clicked() {
                state.step = WizardStep::ALL[state.step.index().saturating_sub(1)];
            }
        },
    );
    ui.add_space(6.0);
}

fn welcome_page_ui(ui: &mut egui::Ui, home: &Home) {
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
        "sign in to your cloud tenant and create the sync application,",
        "check an enterprise administrator account (used now, never stored),",
        "create the service account dirsync reads AD with, with only the rights it needs,",
        "let you choose hybrid write-back, password hash sync and the OUs to synchronize,",
        "and show you what the first synchronization would change before it runs.",
    ] {
        ui.label(format!("  •  {line}"));
    }
    ui.add_space(8.0);
    ui.label(format!(
        "Configuration will be saved to {}",
        home.config_file.display()
    ));
}
