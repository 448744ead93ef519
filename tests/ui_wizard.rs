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
        "Other forests",
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

#[test]
fn cancel_before_apply_says_nothing_was_created_and_closes() {
    let runtime = runtime();
    let mut harness = harness(&runtime);
    harness.get_by_label("Cancel").click();
    harness.run_steps(2);
    harness.get_by_label_contains("Nothing has been created or changed");
    harness.get_by_label("Keep setting up").click();
    harness.run_steps(2);
    harness.get_by_label("Welcome to dirsync");
    harness.get_by_label("Cancel").click();
    harness.run_steps(2);
    harness.get_by_label("Cancel setup").click();
    harness.run_steps(2);
    assert!(
        harness.state().close_requested,
        "with nothing configured, cancelling closes the window"
    );
}

#[test]
fn configure_reopens_the_wizard_on_the_saved_configuration() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let home = Home::in_dir(dir.path());
    let config: dirsync::config::Config = toml::from_str(
        r#"
[cloud]
authority = "https://login.microsoftonline.us"
graph = "https://graph.microsoft.us"
tenant_id = "8d2c0c52-0d3c-4d43-9a43-000000000001"
client_id = "11111111-2222-3333-4444-555555555555"

[directory]
server = "ldaps://dc1.corp.example.com"
naming_context = "DC=corp,DC=example,DC=com"
service_account_dn = "CN=MSOL_0123456789ab,CN=Users,DC=corp,DC=example,DC=com"

[options]
hybrid_write_back = true
password_hash_sync = false
staging_mode = false
deletion_threshold = 200
interval_minutes = 15
soft_match_upn = false
retention_days = 30
password_interval_secs = 120

[scope]
included = ["OU=Sales,DC=corp,DC=example,DC=com"]
excluded = ["OU=Paris,OU=Sales,DC=corp,DC=example,DC=com"]
"#,
    )
    .unwrap();
    config.save(&home.config_file).unwrap();
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1040.0, 720.0))
        .build_ui_state(
            |ui, app: &mut DirsyncApp| app.contents_ui(ui),
            DirsyncApp::with_dashboard_options(
                home,
                runtime.handle().clone(),
                None,
                dirsync::ui::dashboard::DashboardOptions {
                    scheduling: false,
                    read_cloud: false,
                    fixed_now: None,
                },
            ),
        );
    assert!(
        harness.state().wizard().is_none(),
        "configured: the dashboard opens"
    );
    harness.get_by_label("Settings").click();
    harness.run_steps(2);
    harness.get_by_label("Configure…").click();
    harness.run_steps(2);
    let wizard = harness.state().wizard().expect("the wizard reopened");
    let answers = wizard.answers();
    assert_eq!(answers.cloud.authority, "https://login.microsoftonline.us");
    assert_eq!(answers.cloud.tenant, "8d2c0c52-0d3c-4d43-9a43-000000000001");
    assert_eq!(answers.directory.server, "ldaps://dc1.corp.example.com");
    assert!(answers.options.hybrid_write_back);
    assert_eq!(
        answers.options.deletion_threshold, 200,
        "options without a page are kept"
    );
    assert_eq!(answers.options.interval_minutes, 15);
    assert_eq!(answers.scope.included, config.scope.included);
    assert_eq!(answers.scope.excluded, config.scope.excluded);
    // Cancelling goes back to the dashboard: the saved configuration stays in use.
    harness.get_by_label("Cancel").click();
    harness.run_steps(2);
    harness.get_by_label_contains("stays in use");
    harness.get_by_label("Cancel setup").click();
    harness.run_steps(2);
    assert!(harness.state().wizard().is_none());
    assert!(!harness.state().close_requested);
}

#[path = "support/software_renderer.rs"]
mod software_renderer;

/// Every page as an image (drawn on the CPU, the same on every machine), compared with
/// `tests/snapshots/`. `UPDATE_SNAPSHOTS=1` writes new ones after a deliberate change.
#[test]
fn every_step_looks_as_it_did() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    // Servers that refuse at once, so the welcome checks end the same way everywhere.
    let answers = dirsync::setup::parse_answers(
        std::path::Path::new("snapshot.toml"),
        r#"
[cloud]
authority = "http://127.0.0.1:9"
graph = "http://127.0.0.1:9"
tenant = "contoso.onmicrosoft.com"
sign_in = "device-code"

[directory]
server = "ldaps://127.0.0.1:1"
admin_user = "admin@corp.example.com"

[options]
hybrid_write_back = true
password_hash_sync = true

[scope]
included = ["OU=Sales,DC=corp,DC=example,DC=com"]
excluded = ["OU=Paris,OU=Sales,DC=corp,DC=example,DC=com"]
"#,
    )
    .unwrap();
    let mut app = DirsyncApp::new(
        Home::in_dir(std::path::Path::new("/var/tmp/dirsync-snapshot-home")),
        runtime.handle().clone(),
        Some(&answers),
    );
    app.wizard_mut().unwrap().computer = "snapshot".to_owned();
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1040.0, 720.0))
        .renderer(software_renderer::SoftwareRenderer::default())
        .build_ui_state(|ui, app: &mut DirsyncApp| app.contents_ui(ui), app);
    drop(dir);

    let wait_until_idle = |harness: &mut Harness<'static, DirsyncApp>| {
        for _ in 0..500 {
            harness.step();
            let welcome_done = harness
                .query_all_by_label_contains("Check again")
                .next()
                .is_some();
            if welcome_done || harness.state().wizard().unwrap().step != WizardStep::Welcome {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        harness.run_steps(3);
    };
    for (step, name) in [
        (WizardStep::Welcome, "wizard-1-welcome"),
        (WizardStep::Cloud, "wizard-2-cloud"),
        (WizardStep::EnterpriseAdmin, "wizard-3-enterprise-admin"),
        (WizardStep::OtherForests, "wizard-3b-other-forests"),
        (WizardStep::HybridWriteBack, "wizard-4-hybrid-write-back"),
        (WizardStep::PasswordSync, "wizard-5-password-sync"),
        (WizardStep::Scope, "wizard-6-scope"),
        (WizardStep::Rules, "wizard-7-rules"),
        (WizardStep::Review, "wizard-8-review"),
    ] {
        harness.state_mut().wizard_mut().unwrap().step = step;
        wait_until_idle(&mut harness);
        harness.snapshot(name);
        if step == WizardStep::OtherForests {
            // A forest added: its own domain controller and enterprise admin to check.
            harness.get_by_label("Add another forest").click();
            wait_until_idle(&mut harness);
            harness.snapshot("wizard-3c-another-forest");
            harness.get_by_label("Remove this forest").click();
            wait_until_idle(&mut harness);
        }
        if step == WizardStep::PasswordSync {
            // The other mode shows what it needs: smb.conf's key and this host's GnuPG home.
            harness.get_by_label("through Microsoft Graph").click();
            // Its check reads smb.conf and runs gpg in the background: the picture is its end.
            for _ in 0..500 {
                harness.step();
                if harness
                    .query_all_by_label_contains("Check again")
                    .next()
                    .is_some()
                {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            harness.run_steps(3);
            harness.snapshot("wizard-5-password-sync-graph");
            harness
                .get_by_label("password hash (Microsoft's sync service)")
                .click();
            wait_until_idle(&mut harness);
        }
    }
    harness.get_by_label("Cancel").click();
    harness.run_steps(3);
    harness.snapshot("wizard-cancel");
}
