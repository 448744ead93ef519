//! The wizard's frame, driven by role and label through egui_kittest, with no network: the steps
//! are listed, none opens before its proof, and the answers the fields make are setup's.
#![allow(clippy::unwrap_used)]

use dirsync::home::Home;
use dirsync::ui::DirsyncApp;
use dirsync::ui::wizard::WizardStep;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

fn harness(runtime: &tokio::runtime::Runtime) -> Harness<'static, DirsyncApp> {
    let home = Home::in_dir(std::path::Path::new("/tmp/dirsync-ui-test-unconfigured"));
    Harness::builder()
        .with_size(egui::vec2(1040.0, 720.0))
        .build_ui_state(
            |ui, app: &mut DirsyncApp| app.contents_ui(ui),
            DirsyncApp::new(home, runtime.handle().clone(), None),
        )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_wizard_lists_its_steps_and_opens_on_welcome() {
    let runtime = runtime();
    let harness = harness(&runtime);
    for step in [
        "Cloud",
        "Enterprise admin",
        "Hybrid write-back",
        "Password sync",
        "Scope",
        "Review",
        "Apply",
    ] {
        harness.get_by_label(step);
    }
    harness.get_by_label("Welcome to dirsync");
    assert_eq!(harness.state().wizard().unwrap().step, WizardStep::Welcome);
}

#[test]
fn steps_not_yet_proven_cannot_be_opened() {
    let runtime = runtime();
    let mut harness = harness(&runtime);
    harness.get_by_label("Scope").click();
    harness.run_steps(3);
    assert_eq!(
        harness.state().wizard().unwrap().step,
        WizardStep::Welcome,
        "Scope is not reachable yet"
    );
}
