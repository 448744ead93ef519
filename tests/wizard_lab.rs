//! The wizard driven by role and label (egui_kittest) against the real lab: the Samba AD DC and
//! the tenant emulator, over real sockets. The happy path ends with the configuration
//! `dirsync setup --answers` makes from the same answers; a wrong password, an untrusted
//! certificate and a declined sign-in are shown next to their fields and keep Next closed.
//!
//! Run alone with `keyctl session - cargo test --test wizard_lab` (the keyring is the kernel's).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Lab, lab};
use dirsync::cloud::graph::http_client;
use dirsync::config::Config;
use dirsync::home::Home;
use dirsync::setup::parse_answers;
use dirsync::tls::TlsTrust;
use dirsync::ui::DirsyncApp;
use dirsync::ui::wizard::{WizardState, WizardStep};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable};
use tenant_emulator::{EmulatorConfig, RunningEmulator};

/// Setup rewrites the domain root's DACL; two at once could lose each other's ACEs.
static LAB_TURN: Mutex<()> = Mutex::new(());

/// Every computer name these tests use starts so (the sweep finds leftovers by it).
const COMPUTER_PREFIX: &str = "wizard-lab-";

const WAIT: Duration = Duration::from_secs(90);

struct Wizard {
    harness: Harness<'static, DirsyncApp>,
    emulator: RunningEmulator,
    home: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
}

fn emulator() -> RunningEmulator {
    RunningEmulator::start(EmulatorConfig {
        verified_domains: vec!["corp.dirsync.test".to_owned()],
        device_code_interval_secs: 1,
        ..EmulatorConfig::default()
    })
    .expect("the emulator starts")
}

/// The answers file the wizard starts from (and the headless setup compares with).
fn answers_text(lab: &Lab, emulator: &RunningEmulator, scope: &str) -> String {
    let info = &emulator.info;
    format!(
        r#"[cloud]
authority = "{}"
graph = "{}"
tenant = "{}"
sign_in = "device-code"

[directory]
server = "{}"
ca_file = "{}"
admin_user = "{}"

{scope}
"#,
        info.authority,
        info.graph,
        info.tenant_id,
        lab.ldaps_url,
        lab.ca_file.display(),
        lab.admin_upn,
    )
}

fn unique_computer(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{COMPUTER_PREFIX}{test}-{}", nanos % 1_000_000_000)
}

impl Wizard {
    fn open(lab: &Lab, computer: &str) -> Wizard {
        let emulator = emulator();
        let home = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let answers = parse_answers(
            Path::new("prefill.toml"),
            &answers_text(lab, &emulator, "[scope]\nincluded = []"),
        )
        .unwrap();
        let mut app = DirsyncApp::new(
            Home::in_dir(home.path()),
            runtime.handle().clone(),
            Some(&answers),
        );
        app.wizard_mut().unwrap().computer = computer.to_owned();
        let harness = Harness::builder()
            .with_size(egui::vec2(1040.0, 720.0))
            .build_ui_state(|ui, app: &mut DirsyncApp| app.contents_ui(ui), app);
        Wizard {
            harness,
            emulator,
            home,
            runtime,
        }
    }

    fn wizard(&self) -> &WizardState {
        self.harness
            .state()
            .wizard()
            .expect("the wizard is showing")
    }

    /// Runs frames until `done` holds; the window is never blocked meanwhile.
    fn wait_for(&mut self, what: &str, done: impl Fn(&Wizard) -> bool) {
        let start = Instant::now();
        loop {
            self.harness.step();
            if done(self) {
                // One more frame, so what arrived is drawn.
                self.harness.step();
                return;
            }
            assert!(
                start.elapsed() < WAIT,
                "timed out waiting for {what}; the window shows:\n{:#?}",
                self.harness.root()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn click(&mut self, label: &str) {
        self.harness.get_by_label(label).click();
        self.harness.step();
        self.harness.step();
    }

    fn next(&mut self) {
        let before = self.wizard().step;
        self.wait_for("Next to open", |wizard| wizard.wizard().can_advance());
        self.click("Next");
        assert_ne!(self.wizard().step, before, "Next moved on");
    }

    /// Types into the field labelled `label` (a text field before a step of the list with its
    /// name).
    fn type_into(&mut self, label: &str, text: &str) {
        let role = egui::accesskit::Role::TextInput;
        let text_field = self.harness.query_by_role_and_label(role, label).is_some();
        let field = if text_field {
            self.harness.get_by_role_and_label(role, label)
        } else {
            self.harness.get_by_label(label)
        };
        field.focus();
        self.harness.step();
        let field = if text_field {
            self.harness.get_by_role_and_label(role, label)
        } else {
            self.harness.get_by_label(label)
        };
        field.type_text(text);
        self.harness.step();
    }

    fn shows(&self, text: &str) -> bool {
        self.harness
            .query_all_by_label_contains(text)
            .next()
            .is_some()
    }

    /// The first text on screen containing `text`.
    fn text_with(&self, text: &str) -> String {
        self.harness
            .query_all_by_label_contains(text)
            .next()
            .and_then(|node| {
                let node = node.accesskit_node();
                node.label().or_else(|| node.value())
            })
            .unwrap_or_default()
    }

    /// Tells the emulator the administrator answered the device code prompt.
    fn answer_device_code(&self, user_code: &str, decision: &str) {
        let url = format!(
            "{}/_emulator/device-codes/approve",
            self.emulator.info.authority
        );
        let http = http_client(&TlsTrust::SystemRoots, Duration::from_secs(10)).unwrap();
        let status = self.runtime.block_on(async {
            http.post(url)
                .json(&serde_json::json!({"user_code": user_code, "decision": decision}))
                .send()
                .await
                .unwrap()
                .status()
        });
        assert!(
            status.is_success(),
            "the emulator took the answer: {status}"
        );
    }

    fn sign_in(&mut self, decision: &str) {
        self.click("Sign in");
        self.wait_for("the device code", |wizard| {
            wizard.wizard().cloud.prompt().is_some()
        });
        let code = self.wizard().cloud.prompt().unwrap().user_code.clone();
        assert!(self.shows(&code), "the code is on screen");
        self.harness.get_by_label("Copy code");
        self.harness.get_by_label("Copy link");
        assert!(self.shows("Waiting for sign-in"));
        self.answer_device_code(&code, decision);
    }

    fn check_admin(&mut self, password: &str) {
        self.type_into("Password", password);
        self.click("Check");
    }

    /// From Welcome to the Other forests page: the keyring checked, signed in with an approved
    /// device code, the enterprise admin checked (`admin_user` typed first when the field is
    /// empty, as after "Configure…": the configuration keeps no admin).
    fn open_other_forests(&mut self, admin_user: Option<&str>, admin_password: &str) {
        self.wait_for("the keyring check", |wizard| {
            wizard.shows("OS keyring: secrets can be stored")
        });
        self.next();
        self.sign_in("approve");
        self.wait_for("the sign-in", |wizard| wizard.wizard().can_advance());
        self.next();
        if let Some(user) = admin_user {
            self.type_into("Enterprise admin", user);
        }
        self.check_admin(admin_password);
        self.wait_for("the admin check", |wizard| {
            wizard.shows("can set up dirsync")
        });
        self.next();
        assert_eq!(self.wizard().step, WizardStep::OtherForests);
    }
}

/// `dirsync setup --answers` with the same answers, signing in with the device code it prints.
fn headless_setup(wizard: &Wizard, answers: &str, computer: &str, home: &Path) {
    let file = home.join("answers.toml");
    std::fs::write(&file, answers).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .args(["setup", "--answers"])
        .arg(&file)
        .env("DIRSYNC_HOME", home)
        .env("HOSTNAME", computer)
        .env("DIRSYNC_ADMIN_PASSWORD", &lab().admin_password)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        if let Some((_, rest)) = line.split_once("enter the code ") {
            let code = rest.split_whitespace().next().unwrap();
            wizard.answer_device_code(code, "approve");
        }
        seen.push(line);
    }
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "headless setup succeeded:\n{}",
        seen.join("\n")
    );
}

#[test]
fn the_wizard_ends_where_headless_setup_ends() {
    let _turn = LAB_TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let lab = lab();
    let computer = unique_computer("happy");
    let mut wizard = Wizard::open(lab, &computer);

    // 1. Welcome: the keyring, the clock and the network are checked.
    assert!(wizard.shows("Welcome to dirsync"));
    wizard.wait_for("the keyring check", |wizard| {
        wizard.shows("OS keyring: secrets can be stored")
    });
    wizard.next();

    // 2. Cloud: device code, approved by the administrator.
    assert_eq!(wizard.wizard().step, WizardStep::Cloud);
    wizard.sign_in("approve");
    wizard.wait_for("the sign-in", |wizard| wizard.shows("Signed in to '"));
    assert!(wizard.shows("corp.dirsync.test"), "verified domains listed");
    assert!(
        wizard.shows(&format!("Created the sync app 'dirsync ({computer})'")),
        "the sync app is created at sign-in, and the page says so"
    );
    wizard.next();

    // 3. Enterprise admin: checked; the UPN suffixes are compared with the verified domains.
    wizard.check_admin(&lab.admin_password);
    wizard.wait_for("the admin check", |wizard| {
        wizard.shows("can set up dirsync")
    });
    assert!(wizard.shows("corp.dirsync.test: a verified cloud domain"));
    assert!(
        wizard.shows("fabrikam.invalid: not a verified cloud domain"),
        "an unverified suffix is flagged"
    );
    wizard.next();

    // Other forests (optional): none here (`the_wizard_adds_a_second_forest` adds one).
    assert_eq!(wizard.wizard().step, WizardStep::OtherForests);
    assert!(wizard.shows("Add another forest"));
    wizard.next();

    // 4. Hybrid write-back, turned on: the table says which attributes this schema has, and
    // the tenant's mailboxes are checked.
    wizard.wait_for("the schema check", |wizard| wizard.shows("present"));
    assert!(wizard.shows("msExchArchiveStatus"));
    wizard.click("Write Exchange attributes back to AD");
    wizard.wait_for("the mailbox check", |wizard| {
        wizard.shows("The tenant offers its mailboxes' attributes")
    });
    wizard.next();

    // 5. Password sync, turned on: the lab DC's socket and the tenant are checked.
    wizard.click("Synchronize passwords");
    let socket = lab.lab_dir.join("private/ldap_priv/ldapi");
    {
        let state = wizard.harness.state_mut().wizard_mut().unwrap();
        state.passwords.socket = socket.display().to_string();
    }
    wizard.wait_for("the hash checks", |wizard| {
        wizard.shows("Passwords can be read through") && wizard.shows("accepts password hashes")
    });
    // Through Microsoft Graph instead: the lab DC's smb.conf names its key, and this host's
    // GnuPG home decrypts with it.
    wizard.click("through Microsoft Graph");
    {
        let state = wizard.harness.state_mut().wizard_mut().unwrap();
        state.passwords.samba_config = lab.smb_conf.display().to_string();
        state.passwords.gpg_home = lab.gpg_home.display().to_string();
    }
    wizard.wait_for("the key check", |wizard| wizard.shows("decrypts them"));
    assert!(wizard.shows(&lab.gpg_key_id));
    assert!(wizard.shows("User Administrator role, as you"));
    // Back to hashes, which the headless setup below also chooses.
    wizard.click("password hash (Microsoft's sync service)");
    wizard.wait_for("the hash checks again", |wizard| {
        wizard.shows("accepts password hashes")
    });
    wizard.next();

    // Back to the cloud step and forward again: what was entered and proven stays.
    for _ in 0..5 {
        wizard.click("Back");
    }
    assert_eq!(wizard.wizard().step, WizardStep::Cloud);
    assert!(wizard.shows("Signed in to '"), "the sign-in is kept");
    for _ in 0..5 {
        wizard.next();
    }
    assert_eq!(wizard.wizard().step, WizardStep::Scope);

    // 6. Scope: Sales picked, EMEA under it excluded, from the lazily read tree.
    wizard.wait_for("the first level", |wizard| wizard.shows("Expand Corp"));
    wizard.click("Expand Corp");
    wizard.wait_for("Corp's children", |wizard| wizard.shows("Expand Sales"));
    wizard.click("Sales");
    wizard.click("Expand Sales");
    wizard.wait_for("Sales' children", |wizard| wizard.shows("Expand EMEA"));
    wizard.click("EMEA");
    let sales = format!("OU=Sales,OU=Corp,{}", lab.base_dn);
    let emea = format!("OU=EMEA,OU=Sales,OU=Corp,{}", lab.base_dn);
    let answers = wizard.wizard().answers();
    assert_eq!(answers.scope.included, vec![sales.clone()]);
    assert_eq!(answers.scope.excluded, vec![emea.clone()]);
    assert!(wizard.shows("1 OU subtree(s) included, 1 excluded"));
    wizard.next();

    // 7. Rules (optional): the VP is left out by a scoping rule, a mapping sets the usage
    // location; tried on the VP as the enterprise admin reads him.
    assert_eq!(wizard.wizard().step, WizardStep::Rules);
    wizard.wait_for("the Rules page", |wizard| {
        wizard.shows("No scoping rule: every user in the chosen OUs syncs.")
    });
    wizard.click("Add a scoping rule for users");
    wizard.click("exclude");
    wizard.type_into("Rule 1 attribute", "title");
    wizard.type_into("Rule 1 value", "VP Sales");
    wizard.click("Add a mapping for users");
    wizard.type_into("Mapping 1 property", "usageLocation");
    assert!(
        wizard.shows("Users, mapping of usageLocation: the expression is empty"),
        "a rule being written holds Next back, and says why"
    );
    assert!(!wizard.wizard().can_advance());
    wizard.type_into("Mapping 1 expression", "\"FR\"");
    assert!(wizard.shows("The rules are valid."));
    wizard.type_into("Test on", "bruno.lefevre");
    wizard.click("Test");
    wizard.wait_for("the test", |wizard| {
        wizard.wizard().rules.test.done().is_some()
    });
    assert!(
        wizard.shows("Scope: does not sync (rule 1: exclude title equals 'VP Sales')"),
        "{}",
        wizard.text_with("Scope")
    );
    assert!(wizard.shows("usageLocation"));
    wizard.next();

    // 8. Review: the preview of the first sync, from the engine's preview cycle.
    wizard.wait_for("the preview", |wizard| {
        wizard.wizard().review.preview().is_some()
    });
    let preview = wizard.wizard().review.preview().unwrap().clone();
    assert!(!preview.adds.is_empty(), "Sales' users would be added");
    assert!(
        preview
            .adds
            .iter()
            .all(|add| add.dn.ends_with(&sales) && !add.dn.ends_with(&emea)),
        "only objects in scope: {:?}",
        preview.adds
    );
    assert!(wizard.shows(&format!("Adds ({})", preview.adds.len())));
    assert!(
        preview
            .adds
            .iter()
            .all(|add| !add.dn.starts_with("CN=Bruno Lefevre")),
        "the scoping rule leaves the VP out: {:?}",
        preview.adds
    );
    assert!(
        !wizard.wizard().review.start_sync,
        "starting a sync is off by default"
    );
    // Where alerts go (optional): a wrong webhook holds Apply back until it is right.
    wizard.click("Alerts (optional)");
    wizard.type_into("Alert webhook", "http://hooks.example.com/dirsync");
    assert!(wizard.shows("Alert webhook: 'http://hooks.example.com/dirsync' must be https://"));
    assert!(!wizard.wizard().can_advance(), "Apply waits");
    wizard.harness.get_by_label("Alert webhook").focus();
    wizard.harness.step();
    wizard
        .harness
        .key_combination_modifiers(egui::Modifiers::COMMAND, &[egui::Key::A]);
    wizard.harness.step();
    wizard
        .harness
        .get_by_label("Alert webhook")
        .type_text("https://hooks.example.com/dirsync");
    wizard.harness.step();
    assert!(
        wizard.wizard().can_advance(),
        "{}",
        wizard.text_with("Alert")
    );
    wizard.click("Apply now");

    // 9. Apply: the checklist ticks; the configuration is saved.
    assert_eq!(wizard.wizard().step, WizardStep::Apply);
    wizard.wait_for("setup to finish", |wizard| {
        wizard.wizard().apply.succeeded()
    });
    assert!(wizard.shows("Service account created: MSOL_"));
    assert!(wizard.shows("Configuration saved"));
    let wizard_config_file = wizard.home.path().join("config.toml");
    let wizard_text = std::fs::read_to_string(&wizard_config_file).unwrap();
    assert!(
        !wizard_text.contains(&lab.admin_password),
        "no password in the file"
    );
    let wizard_config = Config::load(&wizard_config_file).unwrap();
    assert_eq!(
        wizard_config.monitoring.webhook_url.as_deref(),
        Some("https://hooks.example.com/dirsync")
    );
    assert_eq!(
        wizard_config.rules.users.scoping.len(),
        1,
        "the rules are saved"
    );
    assert_eq!(
        wizard_config
            .rules
            .users
            .mappings
            .get("usageLocation")
            .map(String::as_str),
        Some("\"FR\"")
    );
    wizard.click("Open the dashboard");
    assert!(
        wizard.harness.state().wizard().is_none(),
        "the dashboard took over"
    );
    assert!(wizard.shows("Sync now"));

    // The same answers, headless, on the same computer: the same configuration.
    let headless_home = tempfile::tempdir().unwrap();
    let scope = format!(
        "password_hash_socket = \"{}\"\n\n[options]\nhybrid_write_back = true\npassword_hash_sync = true\n\n[scope]\nincluded = [\"{sales}\"]\nexcluded = [\"{emea}\"]\n\n[monitoring]\nwebhook_url = \"https://hooks.example.com/dirsync\"\n\n[[rules.users.scoping]]\naction = \"exclude\"\nattribute = \"title\"\noperator = \"equals\"\nvalue = \"VP Sales\"\n\n[rules.users.mappings]\nusageLocation = '\"FR\"'",
        socket.display()
    );
    headless_setup(
        &wizard,
        &answers_text(lab, &wizard.emulator, &scope),
        &computer,
        headless_home.path(),
    );
    let mut headless_config = Config::load(&headless_home.path().join("config.toml")).unwrap();
    // Each run gave the app a new secret, so the expiry is the time of each.
    let mut wizard_config = wizard_config;
    let expiry = |config: &mut Config| {
        dirsync::credential_expiry::parse_rfc3339(
            &config.cloud.credential_expires_at.take().expect("kept"),
        )
        .expect("RFC 3339")
    };
    let (wizard_expiry, headless_expiry) =
        (expiry(&mut wizard_config), expiry(&mut headless_config));
    assert!((headless_expiry - wizard_expiry).abs() < 600);
    // And a new certificate.
    let wizard_certificate = wizard_config.cloud.certificate_thumbprint.take();
    let headless_certificate = headless_config.cloud.certificate_thumbprint.take();
    assert!(wizard_certificate.is_some() && headless_certificate.is_some());
    assert_ne!(wizard_certificate, headless_certificate);
    assert_eq!(wizard_config, headless_config);

    wizard
        .runtime
        .block_on(common::accounts::remove_service_accounts(
            lab,
            COMPUTER_PREFIX,
        ));
}

#[test]
fn a_wrong_admin_password_is_shown_next_to_the_field() {
    let _turn = LAB_TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let lab = lab();
    let mut wizard = Wizard::open(lab, &unique_computer("password"));
    wizard.harness.state_mut().wizard_mut().unwrap().step = WizardStep::EnterpriseAdmin;
    wizard.harness.step();
    wizard.check_admin("not-the-password");
    wizard.wait_for("the refusal", |wizard| {
        wizard.shows("✖") && !wizard.wizard().admin.busy()
    });
    let refusal = wizard.text_with("✖");
    assert!(
        refusal.contains("Administrator@corp.dirsync.test") || refusal.contains("password"),
        "the refusal names the account or the password: {refusal}"
    );
    assert!(
        !refusal.contains("not-the-password"),
        "the password is not shown"
    );
    assert!(!wizard.wizard().can_advance(), "Next stays closed");
}

#[test]
fn an_untrusted_certificate_is_shown_next_to_the_ca_field() {
    let _turn = LAB_TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let lab = lab();
    let mut wizard = Wizard::open(lab, &unique_computer("certificate"));
    {
        let state = wizard.harness.state_mut().wizard_mut().unwrap();
        state.step = WizardStep::EnterpriseAdmin;
        // No CA file: the system's roots, which never issued the lab's certificate.
        state.admin.ca_file.clear();
    }
    wizard.harness.step();
    wizard.check_admin(&lab.admin_password);
    wizard.wait_for("the refusal", |wizard| {
        wizard.shows("✖") && !wizard.wizard().admin.busy()
    });
    let refusal = wizard.text_with("✖");
    assert!(
        refusal.to_lowercase().contains("certificate"),
        "the refusal is about the certificate: {refusal}"
    );
    assert!(!wizard.wizard().can_advance(), "Next stays closed");
    // The explicit insecure choice is there, in red, and works.
    wizard.click("Do not verify the certificate (insecure)");
    assert!(wizard.shows("Only for a lab"));
    wizard.click("Check");
    wizard.wait_for("the check", |wizard| wizard.shows("can set up dirsync"));
    assert!(wizard.wizard().can_advance());
}

#[test]
fn a_declined_sign_in_is_said_plainly() {
    let _turn = LAB_TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let lab = lab();
    let mut wizard = Wizard::open(lab, &unique_computer("declined"));
    wizard.harness.state_mut().wizard_mut().unwrap().step = WizardStep::Cloud;
    wizard.harness.step();
    wizard.sign_in("decline");
    wizard.wait_for("the refusal", |wizard| {
        wizard.shows("✖") && !wizard.wizard().cloud.busy()
    });
    let refusal = wizard.text_with("✖");
    assert!(
        refusal.to_lowercase().contains("declined"),
        "the refusal says the sign-in was declined: {refusal}"
    );
    assert!(!wizard.wizard().can_advance(), "Next stays closed");
    // Signing in again is possible straight away.
    assert!(
        !wizard
            .harness
            .get_by_label("Sign in")
            .accesskit_node()
            .is_disabled()
    );
}

/// "Add another forest": the second forest's domain controller and enterprise admin are checked
/// on their own page, its OUs picked from its own tree, and setup makes its service account; the
/// configuration lists it, and a first sync brings its users.
#[test]
fn the_wizard_adds_a_second_forest() {
    let _turn = LAB_TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let lab = lab();
    let fabrikam = common::second_forest();
    let computer = unique_computer("forests");
    let mut wizard = Wizard::open(lab, &computer);
    wizard.open_other_forests(None, &lab.admin_password);

    // Other forests: fabrikam, with its own admin and its own tree.
    assert!(wizard.wizard().can_advance(), "no other forest is fine");
    wizard.click("Add another forest");
    assert!(
        !wizard.wizard().can_advance(),
        "a forest added must be checked"
    );
    wizard.type_into("Domain controller", &fabrikam.ldaps_url);
    wizard.type_into("CA certificate", &fabrikam.ca_file.display().to_string());
    wizard.type_into("Enterprise admin", &fabrikam.admin_upn);
    wizard.check_admin(&fabrikam.admin_password);
    wizard.wait_for("fabrikam's admin check", |wizard| {
        wizard.shows("Which OUs of fabrikam.dirsync.test to synchronize")
    });
    assert!(wizard.shows(&fabrikam.admin_dn));
    assert!(
        wizard.shows("fabrikam.dirsync.test: not a verified cloud domain"),
        "the forest's own suffixes are checked"
    );
    // Its tree is read with its admin; the filter finds the OU among the test OUs.
    wizard.wait_for("fabrikam's first level", |wizard| {
        wizard.shows("Expand Domain Controllers")
    });
    wizard.type_into("Filter", "Fabrikam");
    wizard.wait_for("the OU found", |wizard| {
        wizard.shows(&format!("OU=Fabrikam,{}", fabrikam.base_dn))
    });
    wizard.click("Fabrikam");
    assert!(wizard.wizard().can_advance());
    assert!(wizard.shows("✔ fabrikam.dirsync.test"));
    wizard.next();

    // The rest as for one forest: no write-back, no password sync, corp's Sales.
    wizard.next();
    wizard.next();
    assert_eq!(wizard.wizard().step, WizardStep::Scope);
    wizard.wait_for("the first level", |wizard| wizard.shows("Expand Corp"));
    wizard.click("Expand Corp");
    wizard.wait_for("Corp's children", |wizard| wizard.shows("Expand Sales"));
    wizard.click("Sales");
    wizard.next();
    wizard.next();
    wizard.wait_for("the preview", |wizard| {
        wizard.wizard().review.preview().is_some()
    });
    // The review lists the forest and previews both forests' first sync.
    assert!(wizard.shows("Forest 2"));
    let preview = wizard.wizard().review.preview().unwrap().clone();
    for base in [&lab.base_dn, &fabrikam.base_dn] {
        assert!(
            preview
                .adds
                .iter()
                .any(|add| add.dn.ends_with(base.as_str())),
            "{base}: {:?}",
            preview.adds
        );
    }
    wizard.click("Apply now");
    wizard.wait_for("setup to finish", |wizard| {
        wizard.wizard().apply.succeeded()
    });
    let config = Config::load(&wizard.home.path().join("config.toml")).unwrap();
    assert_eq!(config.forests.len(), 1, "{config:?}");
    let forest = &config.forests[0];
    assert_eq!(forest.directory.naming_context, fabrikam.base_dn);
    assert_eq!(
        forest.scope.included,
        vec![format!("OU=Fabrikam,{}", fabrikam.base_dn)]
    );
    assert!(
        forest.directory.service_account_dn.starts_with("CN=MSOL_")
            && forest
                .directory
                .service_account_dn
                .ends_with(&fabrikam.base_dn),
        "{}",
        forest.directory.service_account_dn
    );
    let text = std::fs::read_to_string(wizard.home.path().join("config.toml")).unwrap();
    assert!(!text.contains(&fabrikam.admin_password));

    // A first sync reads both forests.
    let sync = Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .args(["sync", "--json"])
        .env("DIRSYNC_HOME", wizard.home.path())
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&sync.stdout).unwrap();
    assert_eq!(
        common::step_connectors(&report),
        ["corp.dirsync.test", "fabrikam.dirsync.test"],
        "{report:#}"
    );
    let users = wizard.emulator.objects("users");
    assert!(
        users
            .iter()
            .any(|user| user["mail"] == "oscar.lindqvist@contoso.test"),
        "fabrikam's users arrive: {report:#}"
    );

    // "Configure…" lists the forest; removing it, the review says what leaves with it.
    let app = DirsyncApp::with_dashboard_options(
        Home::in_dir(wizard.home.path()),
        wizard.runtime.handle().clone(),
        None,
        dirsync::ui::dashboard::DashboardOptions {
            scheduling: false,
            read_cloud: false,
            fixed_now: None,
        },
    );
    wizard.harness = Harness::builder()
        .with_size(egui::vec2(1040.0, 720.0))
        .build_ui_state(|ui, app: &mut DirsyncApp| app.contents_ui(ui), app);
    wizard.click("Settings");
    wizard.click("Configure…");
    wizard.harness.state_mut().wizard_mut().unwrap().computer = computer.clone();
    wizard.open_other_forests(Some(&lab.admin_upn), &lab.admin_password);
    assert!(wizard.shows(&format!("… {} (not checked yet)", fabrikam.ldaps_url)));
    wizard.click("Remove this forest");
    wizard.next();
    wizard.next();
    wizard.next();
    wizard.next();
    wizard.next();
    assert_eq!(wizard.wizard().step, WizardStep::Review);
    wizard.wait_for("the removal's warning", |wizard| {
        wizard.shows("fabrikam.dirsync.test is no longer synchronized: its ")
    });
    let warning = wizard.text_with("is no longer synchronized");
    assert!(
        warning.contains("object(s) leave the scope") && !warning.contains("its 0 object"),
        "{warning}"
    );

    wizard.runtime.block_on(async {
        common::accounts::remove_service_accounts(lab, COMPUTER_PREFIX).await;
        common::accounts::remove_service_accounts(fabrikam, COMPUTER_PREFIX).await;
    });
}
