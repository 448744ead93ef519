//! `dirsync setup --answers FILE` end to end: the real binary against the Samba lab and the tenant
//! emulator. Each test names its computer (`HOSTNAME`) uniquely, so its service account and app
//! are its own; the accounts are removed afterwards.
//!
//! Run alone with `keyctl session - cargo test --test setup_cli` (the keyring is the kernel's).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use common::{Lab, Run, dirsync, lab, ldapsearch, stdout_of};
use dirsync::cloud::setup::client_secret_key;
use dirsync::config::Config;
use dirsync::secret_store::{OsKeyring, SecretStore, service_account_key};
use serde_json::Value;
use tenant_emulator::{EmulatorConfig, RunningEmulator};

/// Setup rewrites the domain root's DACL; two at once could lose each other's ACEs.
static LAB_TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every computer name these tests use starts so (and the sweep finds leftovers by it).
const COMPUTER_PREFIX: &str = "setup-cli-";

fn emulator(auto_approve: bool) -> RunningEmulator {
    RunningEmulator::start(EmulatorConfig {
        verified_domains: vec!["corp.dirsync.test".to_owned()],
        auto_approve,
        device_code_interval_secs: 1,
        ..EmulatorConfig::default()
    })
    .expect("the emulator starts")
}

/// A computer name no earlier run used (the lab keeps its directory between runs).
fn unique_computer(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{COMPUTER_PREFIX}{test}-{}", nanos % 1_000_000_000)
}

fn ou(lab: &Lab, path: &str) -> String {
    format!("{path},{}", lab.base_dn)
}

/// The `[cloud]` table for signing in with the emulator's own sync app.
fn app_sign_in(emulator: &RunningEmulator) -> String {
    let info = &emulator.info;
    format!(
        r#"[cloud]
authority = "{}"
graph = "{}"
tenant = "contoso-lab.onmicrosoft.com"
sign_in = "app"
client_id = "{}"
client_secret_env = "SETUP_TEST_CLIENT_SECRET"
"#,
        info.authority, info.graph, info.client_id
    )
}

fn device_code_sign_in(emulator: &RunningEmulator) -> String {
    let info = &emulator.info;
    format!(
        r#"[cloud]
authority = "{}"
graph = "{}"
tenant = "{}"
sign_in = "device-code"
"#,
        info.authority, info.graph, info.tenant_id
    )
}

/// A whole answers file for the lab: `cloud` is a `[cloud]` table, `options` the `[options]`
/// table's lines, then the scope's OU DNs.
fn answers(
    lab: &Lab,
    cloud: &str,
    options: &str,
    included: &[String],
    excluded: &[String],
) -> String {
    let quoted = |dns: &[String]| {
        dns.iter()
            .map(|dn| format!("\"{dn}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        r#"sync_now = false

{cloud}
[directory]
server = "{}"
ca_file = "{}"
admin_user = "{}"

[options]
{options}

[scope]
included = [{}]
excluded = [{}]
"#,
        lab.ldaps_url,
        lab.ca_file.display(),
        lab.admin_upn,
        quoted(included),
        quoted(excluded),
    )
}

/// `answers` with `[directory] password_hash_socket` set (password hash sync reads the hashes
/// there; the lab DC's is `private/ldap_priv/ldapi` in its directory).
fn with_hash_socket(lab: &Lab, answers: &str, socket: &Path) -> String {
    let admin_line = format!("admin_user = \"{}\"\n", lab.admin_upn);
    answers.replace(
        &admin_line,
        &format!(
            "{admin_line}password_hash_socket = \"{}\"\n",
            socket.display()
        ),
    )
}

/// Runs `dirsync setup --answers FILE` with `home` as DIRSYNC_HOME, this computer name, stdin not a
/// terminal, and only the secrets `env` gives.
fn setup(home: &Path, answers: &str, computer: &str, env: &[(&str, &str)], json: bool) -> Run {
    let file = home.join("answers.toml");
    std::fs::write(&file, answers).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_dirsync"));
    command
        .args(["setup", "--answers"])
        .arg(&file)
        .env("DIRSYNC_HOME", home)
        .env("HOSTNAME", computer)
        .env_remove("DIRSYNC_ADMIN_PASSWORD")
        .env_remove("DIRSYNC_CLIENT_SECRET")
        .env_remove("SETUP_TEST_CLIENT_SECRET")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    if json {
        command.arg("--json");
    }
    let output = command.output().unwrap();
    Run {
        status: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn assert_no_secret(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(!text.contains(secret), "{what} holds a secret:\n{text}");
    }
}

fn document(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|error| panic!("stdout is not one JSON document ({error}):\n{run:?}"))
}

/// The MSOL_ accounts whose description names `computer` (by ldapsearch, as an admin would look).
fn accounts_for(lab: &Lab, computer: &str) -> Vec<String> {
    let mut search = ldapsearch(lab);
    search.args([
        "-b",
        &ou(lab, "CN=Users"),
        "-s",
        "one",
        &format!("(&(sAMAccountName=MSOL_*)(description=*computer {computer}.*))"),
        "dn",
    ]);
    stdout_of(search)
        .lines()
        .filter_map(|line| line.strip_prefix("dn: "))
        .map(str::to_owned)
        .collect()
}

async fn remove_test_accounts(lab: &Lab) {
    common::accounts::remove_service_accounts(lab, COMPUTER_PREFIX).await;
}

#[tokio::test]
async fn setup_with_an_existing_app_saves_a_config_without_secrets_and_reruns_without_duplicates() {
    let _turn = LAB_TURN.lock().await;
    let lab = lab();
    remove_test_accounts(lab).await;
    let emulator = emulator(false);
    let info = &emulator.info;
    let home = tempfile::tempdir().unwrap();
    let computer = unique_computer("app");
    let text = answers(
        lab,
        &app_sign_in(&emulator),
        "deletion_threshold = 100",
        &[ou(lab, "OU=Corp")],
        &[ou(lab, "OU=IT,OU=Corp")],
    );
    let env = [
        ("DIRSYNC_ADMIN_PASSWORD", lab.admin_password.as_str()),
        ("SETUP_TEST_CLIENT_SECRET", info.client_secret.as_str()),
    ];

    let first = setup(home.path(), &text, &computer, &env, true);
    assert_eq!(first.status, 0, "{first:?}");
    let report = document(&first);
    assert_eq!(report["tenant_id"], info.tenant_id.as_str(), "{report}");
    assert_eq!(report["client_id"], info.client_id.as_str());
    assert_eq!(report["app"]["outcome"], "existing");
    assert_eq!(report["service_account"]["outcome"], "created");
    assert_eq!(report["enterprise_admin"]["level"], "enterprise-admin");
    assert_eq!(report["sync_now"], false);
    let account_dn = report["service_account"]["dn"].as_str().unwrap().to_owned();
    assert!(account_dn.starts_with("CN=MSOL_"), "{account_dn}");
    assert!(
        report["rights"][0]
            .as_str()
            .unwrap()
            .starts_with("Replicating Directory Changes on"),
        "{report}"
    );
    for step in [
        "1/6 Signing in to the cloud",
        "2/6 Checking the enterprise admin",
        "6/6 Saving the configuration",
    ] {
        assert!(first.stderr.contains(step), "{}", first.stderr);
    }

    // The configuration loads, says what setup decided, and holds no secret.
    let config_file = home.path().join("config.toml");
    let config = Config::load(&config_file).unwrap();
    assert_eq!(config.cloud.tenant_id, info.tenant_id);
    assert_eq!(config.cloud.client_id, info.client_id);
    assert_eq!(config.directory.service_account_dn, account_dn);
    assert_eq!(config.directory.naming_context, lab.base_dn);
    assert_eq!(config.options.deletion_threshold, 100);
    assert_eq!(config.scope.included, vec![ou(lab, "OU=Corp")]);
    let account_password = OsKeyring
        .load(&service_account_key(&account_dn))
        .unwrap()
        .expect("the service account's password is in the keyring");
    let saved_secret = OsKeyring
        .load(&client_secret_key(&info.client_id))
        .unwrap()
        .expect("the app's secret is in the keyring");
    assert_eq!(saved_secret.expose(), info.client_secret);
    let secrets = [
        info.client_secret.as_str(),
        lab.admin_password.as_str(),
        account_password.expose(),
    ];
    let config_text = std::fs::read_to_string(&config_file).unwrap();
    assert_no_secret("config.toml", &config_text, &secrets);
    assert_no_secret("the output", &first.all_output(), &secrets);

    // The account exists in AD, once.
    assert_eq!(accounts_for(lab, &computer), vec![account_dn.clone()]);

    // Again: the same account, its password reset, still one of it; human output this time.
    let second = setup(home.path(), &text, &computer, &env, false);
    assert_eq!(second.status, 0, "{second:?}");
    assert!(
        second.stdout.contains("password-reset"),
        "{}",
        second.stdout
    );
    assert!(second.stdout.contains(&account_dn), "{}", second.stdout);
    assert_eq!(accounts_for(lab, &computer), vec![account_dn.clone()]);
    let new_password = OsKeyring
        .load(&service_account_key(&account_dn))
        .unwrap()
        .unwrap();
    assert_ne!(new_password, account_password, "the password was reset");
    assert_no_secret(
        "the second output",
        &second.all_output(),
        &[
            info.client_secret.as_str(),
            lab.admin_password.as_str(),
            new_password.expose(),
        ],
    );
    assert_eq!(Config::load(&config_file).unwrap(), config);

    // The audit trail has the first setup's configuration, every field new, and nothing for the
    // second, which changed none (README, "The audit trail").
    let audit = dirsync(
        &["--home", home.path().to_str().unwrap(), "audit", "--json"],
        None,
    );
    assert_eq!(audit.status, 0, "{audit:?}");
    let audit: Value = serde_json::from_str(&audit.stdout).unwrap();
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["action"], "configuration-saved");
    assert_eq!(entries[0]["source"], "setup");
    let tenant = entries[0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|change| change["field"] == "cloud.tenant_id")
        .unwrap();
    assert_eq!(tenant["old"], Value::Null);
    assert_eq!(tenant["new"], info.tenant_id.as_str());
    assert_no_secret("the audit", &audit.to_string(), &secrets);

    remove_test_accounts(lab).await;
}

#[tokio::test]
async fn device_code_sign_in_registers_dirsync_s_own_app() {
    let _turn = LAB_TURN.lock().await;
    let lab = lab();
    remove_test_accounts(lab).await;
    let emulator = emulator(true);
    let info = &emulator.info;
    let home = tempfile::tempdir().unwrap();
    let computer = unique_computer("device");
    let text = with_hash_socket(
        lab,
        &answers(
            lab,
            &device_code_sign_in(&emulator),
            "password_hash_sync = true\nhybrid_write_back = true",
            &[
                ou(lab, "OU=Sales,OU=Corp"),
                ou(lab, "OU=Engineering,OU=Corp"),
            ],
            &[ou(lab, "OU=Apps,OU=Engineering,OU=Corp")],
        ),
        &lab.lab_dir.join("private/ldap_priv/ldapi"),
    );
    let env = [("DIRSYNC_ADMIN_PASSWORD", lab.admin_password.as_str())];

    let run = setup(home.path(), &text, &computer, &env, true);
    assert_eq!(run.status, 0, "{run:?}");
    // The administrator was shown where to sign in.
    assert!(run.stderr.contains("devicelogin"), "{}", run.stderr);
    let report = document(&run);
    assert_eq!(report["tenant_id"], info.tenant_id.as_str());
    assert_eq!(report["app"]["outcome"], "created", "{report}");
    assert_eq!(
        report["app"]["display_name"],
        format!("dirsync ({computer})").as_str()
    );
    assert_eq!(report["app"]["directory_sync_turned_on"], true);
    let client_id = report["client_id"].as_str().unwrap().to_owned();
    assert_ne!(client_id, info.client_id, "a new app, not the emulator's");
    let permissions = report["app"]["permissions"].to_string();
    assert!(permissions.contains("User.ReadWrite.All"), "{permissions}");
    let rights = report["rights"].to_string();
    // Hashes come from the DC's privileged socket, which reads with the DC's own rights: the
    // account gets nothing it does not use.
    assert!(
        rights.contains("Replicating Directory Changes on"),
        "{rights}"
    );
    assert!(
        !rights.contains("Replicating Directory Changes All"),
        "{rights}"
    );
    assert!(rights.contains("hybrid write-back"), "{rights}");

    let config_file = home.path().join("config.toml");
    let config = Config::load(&config_file).unwrap();
    assert!(
        config.cloud.certificate_thumbprint.is_some(),
        "a certificate"
    );
    let secret = OsKeyring
        .load(&config.app_credential_key())
        .unwrap()
        .expect("the new app's certificate key is in the keyring");
    assert_eq!(config.cloud.client_id, client_id);
    assert!(config.options.password_hash_sync && config.options.hybrid_write_back);
    let account_dn = report["service_account"]["dn"].as_str().unwrap();
    let account_password = OsKeyring
        .load(&service_account_key(account_dn))
        .unwrap()
        .unwrap();
    let secrets = [
        secret.expose(),
        lab.admin_password.as_str(),
        account_password.expose(),
    ];
    assert_no_secret(
        "config.toml",
        &std::fs::read_to_string(&config_file).unwrap(),
        &secrets,
    );
    assert_no_secret("the output", &run.all_output(), &secrets);

    // Again: the app is found and given a new secret; the old one is removed.
    let again = setup(home.path(), &text, &computer, &env, true);
    assert_eq!(again.status, 0, "{again:?}");
    let report = document(&again);
    assert_eq!(report["app"]["outcome"], "reused");
    assert_eq!(report["client_id"], client_id.as_str());
    assert_eq!(report["app"]["removed_secrets"], 1);
    assert_eq!(report["service_account"]["outcome"], "password-reset");

    remove_test_accounts(lab).await;
}

#[tokio::test]
async fn a_scope_dn_that_does_not_exist_is_refused_before_anything_changes() {
    let _turn = LAB_TURN.lock().await;
    let lab = lab();
    let emulator = emulator(false);
    let home = tempfile::tempdir().unwrap();
    let computer = unique_computer("scope");
    let missing = ou(lab, "OU=Nowhere,OU=Corp");
    let text = answers(
        lab,
        &app_sign_in(&emulator),
        "",
        &[ou(lab, "OU=Corp"), missing.clone()],
        &[],
    );
    let env = [
        ("DIRSYNC_ADMIN_PASSWORD", lab.admin_password.as_str()),
        (
            "SETUP_TEST_CLIENT_SECRET",
            emulator.info.client_secret.as_str(),
        ),
    ];

    let run = setup(home.path(), &text, &computer, &env, false);
    assert_eq!(run.status, 2, "{run:?}");
    assert!(run.stderr.contains("scope.included"), "{}", run.stderr);
    assert!(run.stderr.contains(&missing), "{}", run.stderr);
    assert!(run.stderr.contains("does not exist"), "{}", run.stderr);
    // Refused before any change: no account, no configuration.
    assert!(accounts_for(lab, &computer).is_empty());
    assert!(!home.path().join("config.toml").exists());
}

#[test]
fn a_malformed_answers_file_names_the_line_and_the_field() {
    let home = tempfile::tempdir().unwrap();
    let valid = r#"[cloud]
tenant = "contoso.onmicrosoft.com"
sign_in = "device-code"

[directory]
server = "ldaps://127.0.0.1:636"
insecure = true
admin_user = "Administrator@corp.dirsync.test"

[options]
deletion_threshold = 100

[scope]
included = ["OU=Corp,DC=corp,DC=dirsync,DC=test"]
"#;
    let cases = [
        (
            valid.replace("deletion_threshold = 100", "deletion_threshold = \"many\""),
            "line 11",
            "options.deletion_threshold",
        ),
        (
            valid.replace(
                "insecure = true",
                "insecure = true\nadmin_pasword_env = \"X\"",
            ),
            "line 8",
            "admin_pasword_env",
        ),
        (
            valid.replace("included = [", "included = \"OU=Corp\"\nexcluded = ["),
            "line 14",
            "scope.included",
        ),
    ];
    for (text, line, field) in cases {
        let run = setup(home.path(), &text, "setup-cli-malformed", &[], false);
        assert_eq!(run.status, 2, "{run:?}");
        assert!(run.stderr.contains(line), "{line}: {}", run.stderr);
        assert!(run.stderr.contains(field), "{field}: {}", run.stderr);
        assert!(run.stderr.contains("answers.toml"), "{}", run.stderr);
    }
    // A value of the right type that is still wrong names its field too.
    let run = setup(
        home.path(),
        &valid.replace("ldaps://127.0.0.1:636", "https://127.0.0.1"),
        "setup-cli-malformed",
        &[],
        true,
    );
    assert_eq!(run.status, 2, "{run:?}");
    assert!(run.stderr.contains("directory.server"), "{}", run.stderr);
    assert_eq!(document(&run)["error"]["kind"], "bad-input");
    assert!(!home.path().join("config.toml").exists());
}

#[test]
fn a_missing_secret_without_a_terminal_names_its_variable() {
    let home = tempfile::tempdir().unwrap();
    let text = r#"[cloud]
authority = "http://127.0.0.1:9"
graph = "http://127.0.0.1:9"
tenant = "contoso.onmicrosoft.com"
sign_in = "app"
client_id = "00000000-0000-0000-0000-000000000002"

[directory]
server = "ldaps://127.0.0.1:636"
insecure = true
admin_user = "Administrator@corp.dirsync.test"
admin_password_env = "SETUP_TEST_ADMIN_PASSWORD"

[scope]
included = ["OU=Corp,DC=corp,DC=dirsync,DC=test"]
"#;
    let run = setup(home.path(), text, "setup-cli-secret", &[], false);
    assert_eq!(run.status, 2, "{run:?}");
    assert!(
        run.stderr.contains("SETUP_TEST_ADMIN_PASSWORD"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("directory.admin_password_env"),
        "{}",
        run.stderr
    );

    // With the password given, the app's secret is the one missing (nothing was contacted).
    let run = setup(
        home.path(),
        text,
        "setup-cli-secret",
        &[("SETUP_TEST_ADMIN_PASSWORD", "not-used")],
        false,
    );
    assert_eq!(run.status, 2, "{run:?}");
    assert!(
        run.stderr.contains("DIRSYNC_CLIENT_SECRET"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("not-used"), "{}", run.stderr);
}

#[tokio::test]
async fn sync_now_runs_the_first_cycle_as_the_wizard_s_last_step() {
    let _turn = LAB_TURN.lock().await;
    let lab = lab();
    remove_test_accounts(lab).await;
    let emulator = RunningEmulator::start(EmulatorConfig {
        verified_domains: vec!["contoso.test".to_owned()],
        ..EmulatorConfig::default()
    })
    .expect("the emulator starts");
    let info = &emulator.info;
    let home = tempfile::tempdir().unwrap();
    let computer = unique_computer("now");
    let text = answers(
        lab,
        &app_sign_in(&emulator),
        "",
        &[ou(lab, "OU=Engineering,OU=Corp")],
        &[],
    )
    .replace("sync_now = false", "sync_now = true");
    let env = [
        ("DIRSYNC_ADMIN_PASSWORD", lab.admin_password.as_str()),
        ("SETUP_TEST_CLIENT_SECRET", info.client_secret.as_str()),
    ];
    let run = setup(home.path(), &text, &computer, &env, true);
    let report = document(&run);
    assert_eq!(run.status, 0, "{report:#}\n{}", run.stderr);
    let first_run = &report["first_run"];
    assert_eq!(first_run["run"]["trigger"], "wizard", "{report:#}");
    assert_eq!(first_run["run"]["status"], "success");
    let synced: Vec<Value> = emulator
        .objects("users")
        .into_iter()
        .filter(|user| user["onPremisesImmutableId"].is_string())
        .collect();
    assert!(!synced.is_empty(), "the first cycle exported no user");
    let adds = first_run["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|change| change["change_kind"] == "add" && change["object_type"] == "user")
        .count();
    assert_eq!(adds, synced.len());
    remove_test_accounts(lab).await;
}

/// Password hash sync needs a hash source on this host and a tenant that accepts hashes: setup
/// checks both before it changes anything, and names the field.
#[tokio::test]
async fn password_hash_sync_is_checked_before_anything_changes() {
    let _turn = LAB_TURN.lock().await;
    let lab = lab();
    let lab_socket = lab.lab_dir.join("private/ldap_priv/ldapi");
    let home = tempfile::tempdir().unwrap();
    // Setup with password hash sync on, signing in as `tenant`'s app, hashes read at `socket`.
    let setup_with = |tenant: &RunningEmulator, socket: &Path, computer: &str| {
        let text = with_hash_socket(
            lab,
            &answers(
                lab,
                &app_sign_in(tenant),
                "password_hash_sync = true",
                &[ou(lab, "OU=Corp")],
                &[],
            ),
            socket,
        );
        let env = [
            ("DIRSYNC_ADMIN_PASSWORD", lab.admin_password.as_str()),
            (
                "SETUP_TEST_CLIENT_SECRET",
                tenant.info.client_secret.as_str(),
            ),
        ];
        setup(home.path(), &text, computer, &env, false)
    };

    // A tenant like public Graph, without the password hash endpoint.
    let public_graph = RunningEmulator::start(EmulatorConfig {
        verified_domains: vec!["corp.dirsync.test".to_owned()],
        password_hash_endpoint: false,
        ..EmulatorConfig::default()
    })
    .unwrap();
    let computer = unique_computer("phs-cloud");
    let run = setup_with(&public_graph, &lab_socket, &computer);
    assert_eq!(run.status, 2, "{run:?}");
    assert!(
        run.stderr.contains("options.password_hash_sync")
            && run.stderr.contains("no password hash endpoint"),
        "{}",
        run.stderr
    );
    assert!(accounts_for(lab, &computer).is_empty());
    assert!(!home.path().join("config.toml").exists());

    // A tenant that accepts hashes, but no hash source where the answers point.
    let emulator = emulator(false);
    let computer = unique_computer("phs-source");
    let run = setup_with(
        &emulator,
        Path::new("/nonexistent/ldap_priv/ldapi"),
        &computer,
    );
    assert_eq!(run.status, 2, "{run:?}");
    assert!(
        run.stderr.contains("options.password_hash_sync")
            && run.stderr.contains("/nonexistent/ldap_priv/ldapi"),
        "{}",
        run.stderr
    );
    assert!(accounts_for(lab, &computer).is_empty());

    // Both present: setup proves the source and keeps the socket in config.toml.
    let run = setup_with(&emulator, &lab_socket, &unique_computer("phs"));
    assert_eq!(run.status, 0, "{run:?}");
    assert!(
        run.stderr.contains("password hashes can be read through")
            && run.stderr.contains("the tenant accepts password hashes"),
        "{}",
        run.stderr
    );
    let config = Config::load(&home.path().join("config.toml")).unwrap();
    assert!(config.options.password_hash_sync);
    assert_eq!(config.directory.password_hash_socket, Some(lab_socket));
    remove_test_accounts(lab).await;
}

/// Hybrid write-back needs a tenant that offers its mailboxes' attributes: setup checks before it
/// changes anything and names the field.
#[tokio::test]
async fn hybrid_write_back_is_checked_before_anything_changes() {
    let _turn = LAB_TURN.lock().await;
    let lab = lab();
    let home = tempfile::tempdir().unwrap();
    let public_graph = RunningEmulator::start(EmulatorConfig {
        verified_domains: vec!["corp.dirsync.test".to_owned()],
        mailbox_endpoint: false,
        ..EmulatorConfig::default()
    })
    .unwrap();
    let text = answers(
        lab,
        &app_sign_in(&public_graph),
        "hybrid_write_back = true",
        &[ou(lab, "OU=Corp")],
        &[],
    );
    let env = [
        ("DIRSYNC_ADMIN_PASSWORD", lab.admin_password.as_str()),
        (
            "SETUP_TEST_CLIENT_SECRET",
            public_graph.info.client_secret.as_str(),
        ),
    ];
    let computer = unique_computer("wb-cloud");
    let run = setup(home.path(), &text, &computer, &env, false);
    assert_eq!(run.status, 2, "{run:?}");
    assert!(
        run.stderr.contains("options.hybrid_write_back")
            && run.stderr.contains("offers no mailbox attributes"),
        "{}",
        run.stderr
    );
    assert!(accounts_for(lab, &computer).is_empty());
    assert!(!home.path().join("config.toml").exists());
}

/// An ordinary user of the tenant, signed in with Azure CLI (which Microsoft pre-authorizes for
/// every user), registers an app under dirsync's name first: the name in the MSOL account's
/// description tells them which. Setup refuses that app, names its owner, and changes nothing:
/// no secret, no permission, no service account, no configuration.
#[tokio::test]
async fn an_app_registered_first_under_dirsync_s_name_by_someone_else_is_refused() {
    let _turn = LAB_TURN.lock().await;
    let lab = lab();
    let emulator = emulator(true);
    let info = &emulator.info;
    let computer = unique_computer("borrowed");
    let http = dirsync::cloud::http::http_client(
        &dirsync::tls::TlsTrust::SystemRoots,
        std::time::Duration::from_secs(30),
    )
    .unwrap();

    // The emulator's own sync app makes an ordinary user (User.ReadWrite.All).
    let token = |form: Vec<(&'static str, String)>| {
        let http = http.clone();
        let url = format!("{}/{}/oauth2/v2.0/token", info.authority, info.tenant_id);
        async move {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter())
                .finish();
            let answer: Value = http
                .post(url)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer["access_token"]
                .as_str()
                .unwrap_or_else(|| panic!("no token: {answer}"))
                .to_owned()
        }
    };
    let app_token = token(vec![
        ("grant_type", "client_credentials".to_owned()),
        ("client_id", info.client_id.clone()),
        ("client_secret", info.client_secret.clone()),
        ("scope", "https://graph.microsoft.com/.default".to_owned()),
    ])
    .await;
    let upn = format!("mallory@{}", common::installation::INITIAL_DOMAIN);
    let password = "Mallory-Lab-2026!";
    let created = http
        .post(format!("{}/v1.0/users", info.graph))
        .bearer_auth(&app_token)
        .json(&serde_json::json!({
            "accountEnabled": true,
            "displayName": "Mallory",
            "mailNickname": "mallory",
            "userPrincipalName": upn,
            "passwordProfile": {"password": password, "forceChangePasswordNextSignIn": false},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{:?}", created.text().await);
    let user_token = token(vec![
        ("grant_type", "password".to_owned()),
        (
            "client_id",
            "04b07795-8ddb-461a-bbee-02f9e1bf7b46".to_owned(),
        ),
        ("username", upn.clone()),
        ("password", password.to_owned()),
        ("scope", "https://graph.microsoft.com/.default".to_owned()),
    ])
    .await;
    let registered = http
        .post(format!("{}/v1.0/applications", info.graph))
        .bearer_auth(&user_token)
        .json(&serde_json::json!({"displayName": format!("dirsync ({computer})")}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201, "any user may register an app");
    let borrowed: Value = registered.json().await.unwrap();

    let home = tempfile::tempdir().unwrap();
    let text = answers(
        lab,
        &device_code_sign_in(&emulator),
        "",
        &[ou(lab, "OU=Sales,OU=Corp")],
        &[],
    );
    let env = [("DIRSYNC_ADMIN_PASSWORD", lab.admin_password.as_str())];
    let run = setup(home.path(), &text, &computer, &env, false);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stderr.contains("not dirsync's") && run.stderr.contains(&upn),
        "names the owner: {}",
        run.stderr
    );
    assert!(run.stderr.contains("Nothing was changed"), "{}", run.stderr);

    // Nothing changed: the app has no secret and no service principal, so no permission; no
    // other app, no account, no configuration.
    let applications = emulator.objects("applications");
    let named: Vec<&Value> = applications
        .iter()
        .filter(|app| app["displayName"] == format!("dirsync ({computer})").as_str())
        .collect();
    assert_eq!(named.len(), 1, "{named:?}");
    assert_eq!(named[0]["id"], borrowed["id"]);
    assert_eq!(named[0]["passwordCredentials"], serde_json::json!([]));
    assert!(
        emulator
            .objects("servicePrincipals")
            .iter()
            .all(|sp| sp["appId"] != borrowed["appId"]),
        "no service principal, so no app role assignment"
    );
    assert!(accounts_for(lab, &computer).is_empty());
    assert!(!home.path().join("config.toml").exists());

    // Once that app is gone, setup registers dirsync's own, and a second run reuses it by the
    // id config.toml keeps.
    let deleted = http
        .delete(format!(
            "{}/v1.0/applications/{}",
            info.graph,
            borrowed["id"].as_str().unwrap()
        ))
        .bearer_auth(&user_token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204, "its owner may delete it");
    let run = setup(home.path(), &text, &computer, &env, true);
    assert_eq!(run.status, 0, "{run:?}");
    let first = document(&run);
    assert_eq!(first["app"]["outcome"], "created");
    let config = Config::load(&home.path().join("config.toml")).unwrap();
    assert!(config.cloud.service_principal_id.is_some());
    assert!(config.directory.service_account_guid.is_some());
    let run = setup(home.path(), &text, &computer, &env, true);
    assert_eq!(run.status, 0, "{run:?}");
    let second = document(&run);
    assert_eq!(second["app"]["outcome"], "reused");
    assert_eq!(second["client_id"], first["client_id"]);
    remove_test_accounts(lab).await;
}

/// Setup's progress, not shown: the in-process renewal below needs one.
struct Quiet;

impl dirsync::setup::SetupProgress for Quiet {
    fn step(&mut self, _: usize, _: &str) {}
    fn note(&mut self, _: &str) {}
    fn warning(&mut self, _: &str) {}
}

/// The sync app's credential expires: `dirsync runs` warns from 30 days before, and renewing it
/// (the dashboard's "Renew credential…", a Global Administrator's device code sign-in) gives the
/// app a new secret, kept where the old one was, removes the old one, and keeps the new expiry.
#[tokio::test]
async fn the_app_s_credential_is_warned_of_and_renewed_with_an_administrator_s_sign_in() {
    let _turn = LAB_TURN.lock().await;
    let lab = lab();
    let emulator = emulator(true);
    let info = &emulator.info;
    let home = tempfile::tempdir().unwrap();
    let computer = unique_computer("renew");
    let text = answers(
        lab,
        &device_code_sign_in(&emulator),
        "",
        &[ou(lab, "OU=Sales,OU=Corp")],
        &[],
    );
    let env = [("DIRSYNC_ADMIN_PASSWORD", lab.admin_password.as_str())];
    let run = setup(home.path(), &text, &computer, &env, true);
    assert_eq!(run.status, 0, "{run:?}");
    let config_file = home.path().join("config.toml");
    let mut config = Config::load(&config_file).unwrap();
    let first_expiry = config.cloud.credential_expires_at.clone().expect("kept");
    let days_left = (dirsync::credential_expiry::parse_rfc3339(&first_expiry).unwrap()
        - SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64)
        / 86_400;
    assert!(
        (728..=730).contains(&days_left),
        "two years: {first_expiry}"
    );

    // Twelve days before it expires, `dirsync runs` says so.
    let soon = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 12 * 86_400
        - 60;
    config.cloud.credential_expires_at = Some(dirsync::credential_expiry::rfc3339(soon));
    config.save(&config_file).unwrap();
    let runs = Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .args(["runs", "--json"])
        .env("DIRSYNC_HOME", home.path())
        .output()
        .unwrap();
    let document: Value = serde_json::from_slice(&runs.stdout).unwrap();
    let warning = document["warnings"][0].as_str().unwrap_or_default();
    assert!(warning.contains("in 12 days"), "{document}");
    assert!(String::from_utf8_lossy(&runs.stderr).contains("in 12 days"));

    // The renewal.
    let key = config.app_credential_key();
    let old_key = OsKeyring.load(&key).unwrap().unwrap();
    let old_thumbprint = config.cloud.certificate_thumbprint.clone().unwrap();
    let secrets = dirsync::home::Home::in_dir(home.path()).secrets();
    let renewed =
        dirsync::setup::renew_app_credential(&config_file, &computer, &secrets, &mut Quiet)
            .await
            .unwrap();
    assert_eq!(renewed.removed, 1, "the old certificate is removed");
    let config = Config::load(&config_file).unwrap();
    assert_eq!(config.cloud.credential_expires_at, renewed.expires_at);
    assert!(
        config.credential_warning(soon - 12 * 86_400).is_none(),
        "two years again"
    );
    let new_key = OsKeyring.load(&key).unwrap().unwrap();
    assert_ne!(new_key.expose(), old_key.expose());
    let new_thumbprint = config.cloud.certificate_thumbprint.clone().unwrap();
    assert_ne!(new_thumbprint, old_thumbprint);
    let signs_in = |private_key: dirsync::secret::Secret, thumbprint: String| {
        let endpoints =
            dirsync::cloud::CloudEndpoints::parse(&info.authority, &info.graph).unwrap();
        let client = dirsync::cloud::GraphClient::new(
            &endpoints,
            &info.tenant_id,
            dirsync::cloud::Credentials::Certificate {
                client_id: config.cloud.client_id.clone(),
                private_key,
                thumbprint,
            },
            &dirsync::tls::TlsTrust::SystemRoots,
            dirsync::cloud::FlowPolicy::default(),
        )
        .unwrap();
        async move { dirsync::cloud::setup::verified_domains(&client).await }
    };
    let refused = signs_in(old_key, old_thumbprint)
        .await
        .expect_err("the old certificate is gone");
    assert!(refused.to_string().contains("AADSTS700027"), "{refused}");
    signs_in(new_key.clone(), new_thumbprint)
        .await
        .expect("the new one signs in");
    // As root, the service's encrypted credential holds the new key too.
    let credential = home.path().join("credentials/dirsync-cloud-app");
    let decrypted = Command::new("systemd-creds")
        .args(["decrypt", "--name=dirsync-cloud-app"])
        .arg(&credential)
        .arg("-")
        .output()
        .unwrap();
    assert!(decrypted.status.success());
    let held: Value = serde_json::from_slice(&decrypted.stdout).unwrap();
    assert_eq!(held["key"], key.as_str());
    assert_eq!(held["secret"], new_key.expose());
    remove_test_accounts(lab).await;
}

/// Password sync through Microsoft Graph needs Samba to keep passwords encrypted and this host's
/// key to decrypt them: setup refuses without either, saying the line to add and where; with
/// both it assigns the sync app the User Administrator role, and takes it back when the mode is
/// turned off.
#[tokio::test]
async fn password_sync_through_graph_is_checked_and_its_role_assigned_then_taken_back() {
    let _turn = LAB_TURN.lock().await;
    let lab = lab();
    let home = tempfile::tempdir().unwrap();
    let tenant = RunningEmulator::start(EmulatorConfig {
        verified_domains: vec!["corp.dirsync.test".to_owned()],
        auto_approve: true,
        device_code_interval_secs: 1,
        password_hash_endpoint: false,
        ..EmulatorConfig::default()
    })
    .unwrap();
    let setup_with = |options: &str, samba_config: &Path, gpg_home: &Path, computer: &str| {
        let text = with_hash_socket(
            lab,
            &answers(
                lab,
                &device_code_sign_in(&tenant),
                options,
                &[ou(lab, "OU=Corp")],
                &[],
            ),
            &lab.lab_dir.join("private/ldap_priv/ldapi"),
        )
        .replace(
            "password_hash_socket",
            &format!(
                "samba_config = \"{}\"\npassword_gpg_home = \"{}\"\npassword_hash_socket",
                samba_config.display(),
                gpg_home.display()
            ),
        );
        let env = [("DIRSYNC_ADMIN_PASSWORD", lab.admin_password.as_str())];
        setup(home.path(), &text, computer, &env, false)
    };
    let graph_mode = "password_hash_sync = true\npassword_sync_mode = \"graph\"";

    // smb.conf without the option: the exact line, and where.
    let elsewhere = tempfile::tempdir().unwrap();
    let bare_conf = elsewhere.path().join("smb.conf");
    std::fs::write(&bare_conf, "[global]\n\tworkgroup = CORP\n").unwrap();
    let computer = unique_computer("pwg-conf");
    let run = setup_with(graph_mode, &bare_conf, &lab.gpg_home, &computer);
    assert_eq!(run.status, 2, "{run:?}");
    assert!(
        run.stderr.contains("options.password_sync_mode")
            && run.stderr.contains(&bare_conf.display().to_string())
            && run
                .stderr
                .contains("`password hash gpg key ids = <fingerprint of your key>`")
            && run.stderr.contains("[global]"),
        "{}",
        run.stderr
    );
    assert!(accounts_for(lab, &computer).is_empty());

    // The option, but a GnuPG home without the key.
    let empty_home = tempfile::tempdir().unwrap();
    let computer = unique_computer("pwg-key");
    let run = setup_with(graph_mode, &lab.smb_conf, empty_home.path(), &computer);
    assert_eq!(run.status, 2, "{run:?}");
    assert!(
        run.stderr.contains("directory.password_gpg_home")
            && run.stderr.contains(&lab.gpg_key_id)
            && run.stderr.contains("no secret key"),
        "{}",
        run.stderr
    );
    assert!(accounts_for(lab, &computer).is_empty());

    // Both: proven, and the app holds User Administrator.
    let computer = unique_computer("pwg");
    let run = setup_with(graph_mode, &lab.smb_conf, &lab.gpg_home, &computer);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(
        run.stderr.contains("decrypts them") && run.stderr.contains("User Administrator"),
        "{}",
        run.stderr
    );
    let config = Config::load(&home.path().join("config.toml")).unwrap();
    assert_eq!(
        config.options.password_sync_mode,
        dirsync::config::PasswordSyncMode::Graph
    );
    let principal = config.cloud.service_principal_id.clone().unwrap();
    const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
    assert_eq!(tenant.roles_of(&principal), vec![USER_ADMINISTRATOR]);

    // Setup again with the mode off: the role is taken back.
    let run = setup_with(
        "password_hash_sync = false",
        &lab.smb_conf,
        &lab.gpg_home,
        &computer,
    );
    assert_eq!(run.status, 0, "{run:?}");
    assert!(run.stderr.contains("taken back"), "{}", run.stderr);
    assert!(tenant.roles_of(&principal).is_empty());
    remove_test_accounts(lab).await;
}

#[tokio::test]
async fn a_postgresql_state_database_is_proved_before_anything_changes_then_holds_the_runs() {
    let _turn = LAB_TURN.lock().await;
    let lab = lab();
    remove_test_accounts(lab).await;
    let emulator = emulator(false);
    let info = &emulator.info;
    let (store, password) = dirsync::store::lab_postgres();
    let schema = store.schema.clone().unwrap();
    let store_table = format!(
        "\n[store]\nengine = \"postgresql\"\nhost = \"{}\"\nport = {}\ndatabase = \"{}\"\nuser = \"{}\"\nschema = \"{schema}\"\nca_file = \"{}\"\npassword_env = \"SETUP_TEST_STORE_PASSWORD\"\n",
        store.host.as_deref().unwrap(),
        store.port.unwrap(),
        store.database.as_deref().unwrap(),
        store.user.as_deref().unwrap(),
        store.ca_file.as_deref().unwrap().display(),
    );
    let text = answers(
        lab,
        &app_sign_in(&emulator),
        "deletion_threshold = 100",
        &[ou(lab, "OU=Corp")],
        &[ou(lab, "OU=IT,OU=Corp")],
    ) + &store_table;
    let home = tempfile::tempdir().unwrap();
    let computer = unique_computer("postgres");
    OsKeyring
        .remove(dirsync::store::POSTGRES_PASSWORD_KEY)
        .unwrap();

    // A wrong password: refused at step 2, before the service account or the app exist.
    let wrong = setup(
        home.path(),
        &text,
        &computer,
        &[
            ("DIRSYNC_ADMIN_PASSWORD", lab.admin_password.as_str()),
            ("SETUP_TEST_CLIENT_SECRET", info.client_secret.as_str()),
            ("SETUP_TEST_STORE_PASSWORD", "not-the-password"),
        ],
        false,
    );
    assert_ne!(wrong.status, 0, "{wrong:?}");
    assert!(wrong.stderr.contains("store:"), "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("password authentication failed"),
        "{}",
        wrong.stderr
    );
    assert!(!wrong.stderr.contains("4/6"), "{}", wrong.stderr);
    assert!(accounts_for(lab, &computer).is_empty());
    assert!(!home.path().join("config.toml").exists());

    // The right one: setup proves it, keeps it in the keyring and names the store in
    // config.toml, without the password.
    let env = [
        ("DIRSYNC_ADMIN_PASSWORD", lab.admin_password.as_str()),
        ("SETUP_TEST_CLIENT_SECRET", info.client_secret.as_str()),
        ("SETUP_TEST_STORE_PASSWORD", password.as_str()),
    ];
    let first = setup(home.path(), &text, &computer, &env, false);
    assert_eq!(first.status, 0, "{first:?}");
    assert!(
        first.stderr.contains("the state database postgresql://"),
        "{}",
        first.stderr
    );
    let config_text = std::fs::read_to_string(home.path().join("config.toml")).unwrap();
    let config = Config::load(&home.path().join("config.toml")).unwrap();
    assert_eq!(
        config.store.engine,
        dirsync::config::StoreEngine::Postgresql
    );
    assert_eq!(config.store.schema.as_deref(), Some(schema.as_str()));
    assert_no_secret("config.toml", &config_text, &[password.as_str()]);
    assert_no_secret("the output", &first.all_output(), &[password.as_str()]);
    assert_eq!(
        OsKeyring
            .load(dirsync::store::POSTGRES_PASSWORD_KEY)
            .unwrap()
            .map(|kept| kept.expose().to_owned()),
        Some(password.clone())
    );

    // A sync, with no password in its environment, keeps its run in PostgreSQL: no state.db.
    let sync = dirsync(
        &["--home", home.path().to_str().unwrap(), "sync", "--json"],
        None,
    );
    // 3: done, with the lab's UPN suffixes this tenant has not verified as object errors.
    assert!(matches!(sync.status, 0 | 3), "{}", sync.stderr);
    assert!(!home.path().join("state.db").exists());
    let runs = dirsync(
        &["--home", home.path().to_str().unwrap(), "runs", "--json"],
        None,
    );
    assert_eq!(runs.status, 0, "{runs:?}");
    let listed: Value = serde_json::from_str(&runs.stdout).unwrap();
    assert_eq!(listed["runs"].as_array().map(Vec::len), Some(1), "{listed}");
    let on_server = dirsync::store::StateStore::open_postgres(&store, Some(&password)).unwrap();
    assert_eq!(on_server.runs(10).unwrap().len(), 1);

    // Turning sync off names the database, forgets the sync state there, removes the password
    // with the other secrets, and leaves the run history in the database.
    let mut uninstall = Command::new(env!("CARGO_BIN_EXE_dirsync"));
    let uninstalled = uninstall
        .args(["uninstall", "--yes", "--admin-user", &lab.admin_upn])
        .env("DIRSYNC_HOME", home.path())
        .env("HOSTNAME", &computer)
        .env("DIRSYNC_ADMIN_PASSWORD", &lab.admin_password)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&uninstalled.stdout).into_owned()
        + &String::from_utf8_lossy(&uninstalled.stderr);
    assert!(uninstalled.status.success(), "{said}");
    assert!(said.contains(&format!("(schema {schema})")), "{said}");
    assert!(!said.contains("state.db"), "{said}");
    assert_eq!(
        OsKeyring
            .load(dirsync::store::POSTGRES_PASSWORD_KEY)
            .unwrap()
            .map(|kept| kept.expose().to_owned()),
        None
    );
    assert_eq!(on_server.links().unwrap().len(), 0);
    assert_eq!(on_server.runs(10).unwrap().len(), 1);

    remove_test_accounts(lab).await;
}
