//! The window's wizard frame, driven by role and label through egui_kittest (no network).
#![allow(clippy::unwrap_used)]

use dirsync::home::Home;
use dirsync::ui::DirsyncApp;
use dirsync::ui::wizard::WizardStep;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

fn harness() -> Harness<'static, DirsyncApp> {
    let home = Home::in_dir(std::path::Path::new("/tmp/dirsync-ui-test"));
    Harness::builder()
        .with_size(egui::vec2(980.0, 660.0))
        .build_ui_state(
            |ui, app: &mut DirsyncApp| app.contents_ui(ui),
            DirsyncApp::new(home),
        )
}

#[test]
fn the_wizard_lists_its_steps_and_opens_on_welcome() {
    let harness = harness();
    for step in [
        "Cloud",
        "Enterprise admin",
        "Hybrid write-back",
        "Password sync",
        "Scope",
        "Review",
    ] {
        harness.get_by_label(step);
    }
    harness.get_by_label("Welcome to dirsync");
    assert_eq!(harness.state().wizard().step, WizardStep::Welcome);
}

#[test]
fn steps_not_yet_proven_cannot_be_opened() {
    let mut harness = harness();
    harness.get_by_label("Scope").click();
    harness.run();
    assert_eq!(
        harness.state().wizard().step,
        WizardStep::Welcome,
        "Scope is not reachable yet"
    );
    harness.get_by_label("Next").click();
    harness.run();
    assert_eq!(
        harness.state().wizard().step,
        WizardStep::Welcome,
        "Next waits for the step's proof"
    );
}
