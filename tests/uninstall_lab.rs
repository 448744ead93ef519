//! `dirsync uninstall` end to end on the Samba lab and the tenant emulator: an installation made
//! by `dirsync setup` (a device code sign-in, password hash sync), synced, then previewed
//! (nothing removed), refused without an admin, and removed: no `MSOL_` account, no right naming
//! it, no sync app, no secret, no configuration; the cloud users still sign in, with their
//! onPremisesImmutableId cleared; setup afterwards starts from scratch.
//!
//! Run alone with `keyctl session - cargo test --test uninstall_lab` (the keyring is the kernel's).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::installation::{TestOu, runtime, unique};
use common::passwords::{lab_socket, set_password, sign_in_to};
use common::{Lab, Run, lab, samba_tool};
use dirsync::config::Config;
use dirsync::home::Home;
use dirsync::secret_store::{OsKeyring, SecretStore};
use dirsync::ui::DirsyncApp;
use dirsync::ui::dashboard::DashboardOptions;
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use serde_json::Value;
use tenant_emulator::{EmulatorConfig, RunningEmulator};

/// The tests rewrite the domain root's DACL; two at once could lose each other's ACEs.
static LAB_TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Every computer name this test uses starts so (and the sweep finds leftovers by it).
const COMPUTER_PREFIX: &str = "uninstall-lab-";

fn dirsync_in(home: &Path, computer: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .args(args)
        .env("DIRSYNC_HOME", home)
        .env("HOSTNAME", computer)
        .env_remove("DIRSYNC_ADMIN_PASSWORD")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        status: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn document(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|error| panic!("stdout is not one JSON document ({error}):\n{run:?}"))
}

fn answers(lab: &Lab, tenant: &RunningEmulator, ou: &TestOu) -> String {
    let info = &tenant.info;
    format!(
        r#"sync_now = true

[cloud]
authority = "{}"
graph = "{}"
tenant = "{}"
sign_in = "device-code"

[directory]
server = "{}"
ca_file = "{}"
admin_user = "{}"
password_hash_socket = "{}"

[options]
password_hash_sync = true

[scope]
included = ["{}"]
excluded = []
"#,
        info.authority,
        info.graph,
        info.tenant_id,
        lab.ldaps_url,
        lab.ca_file.display(),
        lab.admin_upn,
        lab_socket().display(),
        ou.dn,
    )
}

/// The service accounts this computer's setup made, with their SIDs (S-1-5-21-…).
fn accounts_of(lab: &Lab, computer: &str) -> Vec<(String, String)> {
    runtime().block_on(async {
        let admin = common::accounts::admin_connection(lab).await;
        common::accounts::service_accounts(&admin, lab, computer)
            .await
            .into_iter()
            .map(|account| (account.dn.to_string(), account.sid.to_string()))
            .collect()
    })
}

/// The DACLs of the domain root and the scope's OU, as `samba-tool dsacl get` prints them (SDDL).
fn dacls(lab: &Lab, ou: &TestOu) -> String {
    [lab.base_dn.as_str(), ou.dn.as_str()]
        .iter()
        .map(|dn| samba_tool(lab, &["dsacl", "get", &format!("--objectdn={dn}")]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn tenant() -> RunningEmulator {
    RunningEmulator::start(EmulatorConfig {
        verified_domains: vec!["contoso.test".to_owned()],
        auto_approve: true,
        device_code_interval_secs: 1,
        ..EmulatorConfig::default()
    })
    .unwrap()
}

/// An installation `dirsync setup` made (a device code sign-in, password hash sync, a first
/// sync) of a fresh OU, with its own tenant, home and computer name.
struct Installed {
    ou: TestOu,
    tenant: RunningEmulator,
    home: tempfile::TempDir,
    computer: String,
    /// `dirsync setup --json`'s report.
    report: Value,
}

impl Installed {
    /// Sets up an OU of `users`; `before` runs once the OU exists, before setup.
    fn set_up(prefix: &str, users: &[&str], before: impl FnOnce(&TestOu)) -> Installed {
        let ou = TestOu::create(prefix, users);
        before(&ou);
        let tenant = tenant();
        let home = tempfile::tempdir().unwrap();
        std::fs::write(
            home.path().join("answers.toml"),
            answers(lab(), &tenant, &ou),
        )
        .unwrap();
        let mut installed = Installed {
            ou,
            tenant,
            home,
            computer: unique(COMPUTER_PREFIX),
            report: Value::Null,
        };
        let setup = installed.setup();
        assert_eq!(setup.status, 0, "{setup:?}");
        installed.report = document(&setup);
        installed
    }

    /// `dirsync setup --answers … --json` with the enterprise admin's password.
    fn setup(&self) -> Run {
        let answers = self.home.path().join("answers.toml").display().to_string();
        self.dirsync(
            &["setup", "--answers", &answers, "--json"],
            &[("DIRSYNC_ADMIN_PASSWORD", lab().admin_password.as_str())],
        )
    }

    fn dirsync(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        dirsync_in(self.home.path(), &self.computer, args, env)
    }

    fn client_id(&self) -> String {
        self.report["client_id"].as_str().unwrap().to_owned()
    }
}

#[test]
fn uninstall_shows_what_it_removes_then_removes_what_setup_made_and_leaves_the_users() {
    let _turn = LAB_TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let lab = lab();
    runtime().block_on(common::accounts::remove_service_accounts(
        lab,
        COMPUTER_PREFIX,
    ));
    // An installation, synced, with passwords.
    let installed = Installed::set_up("unin", &["ann", "ben"], |ou| {
        set_password(ou, "ann", "Ann-Passw0rd-2026");
    });
    let (ou, tenant, home, computer) = (
        &installed.ou,
        &installed.tenant,
        &installed.home,
        installed.computer.as_str(),
    );
    let admin_env = [("DIRSYNC_ADMIN_PASSWORD", lab.admin_password.as_str())];
    let client_id = installed.client_id();
    let passwords = dirsync_in(
        home.path(),
        computer,
        &["sync", "--passwords", "--json"],
        &[],
    );
    assert_eq!(passwords.status, 0, "{passwords:?}");
    assert_eq!(
        sign_in_to(tenant, &ou.upn("ann"), "Ann-Passw0rd-2026"),
        Ok(())
    );
    let config = Config::load(&home.path().join("config.toml")).unwrap();
    let secret_keys = [config.app_credential_key(), config.service_account_key()];
    let account_password = OsKeyring.load(&secret_keys[1]).unwrap().unwrap();
    let accounts = accounts_of(lab, computer);
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    let (account_dn, account_sid) = accounts[0].clone();
    assert!(
        dacls(lab, ou).contains(&account_sid),
        "setup gave {account_sid} rights"
    );
    let app_exists = || {
        tenant
            .objects("applications")
            .iter()
            .any(|app| app["appId"] == client_id.as_str())
    };
    assert!(app_exists());

    // The preview: what goes and what stays, and nothing removed without --yes.
    let preview = dirsync_in(home.path(), computer, &["uninstall"], &[]);
    assert_eq!(preview.status, 0, "{preview:?}");
    assert!(preview.stdout.contains("will remove"), "{}", preview.stdout);
    assert!(preview.stdout.contains(&account_dn), "{}", preview.stdout);
    assert!(preview.stdout.contains(&client_id), "{}", preview.stdout);
    assert!(
        preview
            .stdout
            .contains("2 user(s) and 1 group(s) in the cloud"),
        "{}",
        preview.stdout
    );
    assert!(preview.stdout.contains("Nothing was removed"));
    let preview_json = dirsync_in(home.path(), computer, &["uninstall", "--json"], &[]);
    assert_eq!(preview_json.status, 0, "{preview_json:?}");
    let shown = document(&preview_json);
    assert_eq!(shown["preview"]["sync_app"], client_id.as_str());
    let rights_on = shown["preview"]["rights_on"].to_string();
    // Replicating Directory Changes on the domain root (read as the account itself).
    assert!(rights_on.contains(&lab.base_dn), "{shown}");

    // Refused before anything changes: no admin named, a wrong admin password.
    let no_admin = dirsync_in(home.path(), computer, &["uninstall", "--yes"], &admin_env);
    assert_eq!(no_admin.status, 2, "{no_admin:?}");
    assert!(
        no_admin.stderr.contains("--admin-user"),
        "{}",
        no_admin.stderr
    );
    let wrong = dirsync_in(
        home.path(),
        computer,
        &["uninstall", "--yes", "--admin-user", &lab.admin_upn],
        &[("DIRSYNC_ADMIN_PASSWORD", "not-the-password")],
    );
    assert_ne!(wrong.status, 0, "{wrong:?}");
    assert_eq!(accounts_of(lab, computer).len(), 1, "nothing was removed");
    assert!(app_exists());
    assert!(home.path().join("config.toml").exists());

    // The removal.
    let removed = dirsync_in(
        home.path(),
        computer,
        &[
            "uninstall",
            "--yes",
            "--admin-user",
            &lab.admin_upn,
            "--clear-immutable-ids",
            "--json",
        ],
        &admin_env,
    );
    assert_eq!(removed.status, 0, "{removed:?}");
    let done = document(&removed);
    assert_eq!(done["removed"]["sync_app"], "deleted", "{done}");
    assert_eq!(done["removed"]["service_account"], "deleted", "{done}");
    assert_eq!(done["removed"]["immutable_ids_cleared"], 2, "{done}");
    for secret in [lab.admin_password.as_str(), account_password.expose()] {
        assert!(
            !removed.all_output().contains(secret),
            "a secret in the output"
        );
    }

    assert!(accounts_of(lab, computer).is_empty(), "no MSOL_ account");
    assert!(
        !dacls(lab, ou).contains(&account_sid),
        "no right names the account"
    );
    assert!(!app_exists(), "no sync app");
    assert!(
        !tenant
            .objects("servicePrincipals")
            .iter()
            .any(|principal| principal["appId"] == client_id.as_str()),
        "no service principal"
    );
    for key in &secret_keys {
        assert!(OsKeyring.load(key).unwrap().is_none(), "{key} is removed");
    }
    let credentials = home.path().join("credentials");
    let left: Vec<_> = std::fs::read_dir(&credentials)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "no credential file: {left:?}");
    assert!(!home.path().join("config.toml").exists());

    // The cloud users stay, ordinary cloud accounts now, and still sign in.
    let users = tenant.objects("users");
    for name in ["ann", "ben"] {
        let user = users
            .iter()
            .find(|user| user["userPrincipalName"] == ou.upn(name).as_str())
            .unwrap_or_else(|| panic!("{name} stays in the cloud"));
        assert!(
            user["onPremisesImmutableId"].is_null(),
            "{name}'s immutableId is cleared: {user}"
        );
        assert_eq!(user["accountEnabled"], true);
    }
    assert_eq!(
        sign_in_to(tenant, &ou.upn("ann"), "Ann-Passw0rd-2026"),
        Ok(())
    );

    // The audit trail keeps the uninstall; a run says dirsync is not set up.
    let audit = dirsync_in(home.path(), computer, &["audit", "--json"], &[]);
    assert!(audit.stdout.contains("uninstalled"), "{}", audit.stdout);
    let sync = dirsync_in(home.path(), computer, &["sync"], &[]);
    assert_eq!(sync.status, 2, "{sync:?}");
    assert!(sync.stderr.contains("not set up"), "{}", sync.stderr);

    // Setup afterwards starts from scratch: a new account and a new app.
    // The users join again by their address; the group the first installation made is an
    // ordinary cloud group now, which a new installation takes over only when told to (exit 3,
    // an object error).
    let again = installed.setup();
    assert_eq!(again.status, 3, "{again:?}");
    let report = document(&again);
    let errors = report["first_run"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{report}");
    assert_eq!(errors[0]["error_type"], "group-not-ours");
    assert_eq!(report["app"]["outcome"], "created", "{report}");
    assert_eq!(report["service_account"]["outcome"], "created", "{report}");
    assert_ne!(report["client_id"], client_id.as_str());

    runtime().block_on(common::accounts::remove_service_accounts(
        lab,
        COMPUTER_PREFIX,
    ));
}

/// The harder fault: Graph deletes the app and its answer says it failed (a 503 after the
/// write). The retried delete finds the app gone, which counts as done, and the removal goes on.
#[test]
fn a_removal_whose_answer_was_lost_finishes_when_run_again() {
    let _turn = LAB_TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let lab = lab();
    let installed = Installed::set_up("unlost", &["cam"], |_| {});
    let (tenant, home, computer) = (
        &installed.tenant,
        &installed.home,
        installed.computer.as_str(),
    );
    let admin_env = [("DIRSYNC_ADMIN_PASSWORD", lab.admin_password.as_str())];
    let client_id = installed.client_id();
    let remove = [
        "uninstall",
        "--yes",
        "--admin-user",
        lab.admin_upn.as_str(),
        "--json",
    ];

    tenant
        .set_faults(Some(&tenant_emulator::FaultSettings {
            fail_after_write_every: 1,
            ..Default::default()
        }))
        .unwrap();
    let failed_before = tenant.stats().failed_5xx;
    let removed = dirsync_in(home.path(), computer, &remove, &admin_env);
    tenant.set_faults(None).unwrap();
    assert!(
        tenant.stats().failed_5xx > failed_before,
        "the delete was answered 503 after it was made"
    );
    assert_eq!(removed.status, 0, "{removed:?}");
    // The retried delete found the app gone: that counts as deleted, and the removal went on.
    assert_eq!(document(&removed)["removed"]["sync_app"], "deleted");
    assert!(
        !tenant
            .objects("applications")
            .iter()
            .any(|app| app["appId"] == client_id.as_str())
    );
    assert!(accounts_of(lab, computer).is_empty(), "no MSOL_ account");
    assert!(!home.path().join("config.toml").exists());

    // Once removed, there is nothing left to remove.
    let again = dirsync_in(home.path(), computer, &remove, &admin_env);
    assert_eq!(again.status, 2, "{again:?}");
    assert!(
        again.stderr.contains("nothing to remove"),
        "{}",
        again.stderr
    );
}

type Window = Harness<'static, DirsyncApp>;

/// Runs frames until `done` holds; panics with what the window shows.
fn wait_until(window: &mut Window, timeout: Duration, what: &str, done: impl Fn(&Window) -> bool) {
    let start = Instant::now();
    loop {
        window.step();
        if done(window) {
            window.run_steps(2);
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}; the window shows:\n{:#?}",
            window.root()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn shows(window: &Window, text: &str) -> bool {
    window.query_all_by_label_contains(text).next().is_some()
}

fn type_into(window: &mut Window, label: &str, text: &str) {
    window.get_by_label(label).scroll_to_me();
    window.run_steps(2);
    window.get_by_label(label).click();
    window.run_steps(1);
    window.get_by_label(label).type_text(text);
    window.run_steps(2);
}

/// The dashboard's "Stop synchronizing…" as an administrator clicks through it: the preview
/// first, the removal only with an enterprise admin's password, then everything setup made is
/// gone and the window starts over with the wizard.
#[test]
fn stop_synchronizing_in_the_dashboard_shows_what_goes_then_removes_it() {
    let _turn = LAB_TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let lab = lab();
    let installed = Installed::set_up("unui", &["dee"], |_| {});
    let (ou, tenant, home, computer) = (
        &installed.ou,
        &installed.tenant,
        &installed.home,
        installed.computer.as_str(),
    );
    let client_id = installed.client_id();
    let account_dn = installed.report["service_account"]["dn"]
        .as_str()
        .unwrap()
        .to_owned();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = DirsyncApp::with_dashboard_options(
        Home::in_dir(home.path()),
        runtime.handle().clone(),
        None,
        DashboardOptions {
            scheduling: false,
            read_cloud: false,
            fixed_now: None,
        },
    );
    let mut window: Window = Harness::builder()
        .with_size(egui::vec2(1040.0, 1600.0))
        .build_ui_state(|ui, app: &mut DirsyncApp| app.contents_ui(ui), app);
    window.run_steps(2);
    let mut tabs: Vec<_> = window
        .query_all_by_role_and_label(Role::Button, "Settings")
        .collect();
    tabs.sort_by(|a, b| a.rect().min.y.total_cmp(&b.rect().min.y));
    tabs[0].click();
    window.run_steps(2);
    window.get_by_label("Stop synchronizing…").click();
    window.run_steps(2);
    wait_until(
        &mut window,
        Duration::from_secs(30),
        "the preview",
        |window| shows(window, "Will be removed:") && shows(window, &account_dn),
    );
    assert!(shows(&window, &client_id), "the app is named");
    let remove = |window: &Window| {
        !window
            .get_by_label("Remove all this")
            .accesskit_node()
            .is_disabled()
    };
    assert!(!remove(&window), "nothing is removed without an admin");
    window
        .query_all_by_label_contains("Clear the synced users")
        .next()
        .unwrap()
        .click();
    window.run_steps(2);
    wait_until(
        &mut window,
        Duration::from_secs(30),
        "the preview again",
        |window| shows(window, "onPremisesImmutableId of the 1 synced user(s)"),
    );
    type_into(&mut window, "Enterprise admin", &lab.admin_upn);
    type_into(&mut window, "Password", &lab.admin_password);
    assert!(remove(&window));
    window.get_by_label("Remove all this").scroll_to_me();
    window.run_steps(2);
    window.get_by_label("Remove all this").click();
    window.run_steps(2);
    wait_until(
        &mut window,
        Duration::from_secs(120),
        "the removal",
        |window| shows(window, "dirsync is uninstalled"),
    );
    assert!(
        !format!("{:#?}", window.root()).contains(lab.admin_password.as_str()),
        "the password is not on the screen"
    );

    assert!(accounts_of(lab, computer).is_empty(), "no MSOL_ account");
    assert!(
        !tenant
            .objects("applications")
            .iter()
            .any(|app| app["appId"] == client_id.as_str()),
        "no sync app"
    );
    assert!(!home.path().join("config.toml").exists());
    let dee = tenant
        .objects("users")
        .into_iter()
        .find(|user| user["userPrincipalName"] == ou.upn("dee").as_str())
        .expect("the user stays");
    assert!(dee["onPremisesImmutableId"].is_null(), "{dee}");

    window.get_by_label("Start over").click();
    window.run_steps(2);
    assert!(
        window.state().wizard().is_some(),
        "the wizard, from scratch"
    );
}
