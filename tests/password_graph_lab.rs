//! Password sync through public Microsoft Graph, end to end: the lab DC keeps each new password
//! GPG-encrypted (smb.conf `password hash gpg key ids`), dirsync reads it through the DC's
//! privileged socket, decrypts it with the lab's key and sets it as the user's
//! `passwordProfile`; the emulator runs without the password hash endpoint (public Graph) and
//! its resource-owner grant then accepts the AD password.
#![allow(clippy::unwrap_used)]

mod common;

use common::installation::*;
use common::passwords::*;
use dirsync::config::{PasswordSyncMode, SyncOptions};
use serde_json::Value;
use tenant_emulator::EmulatorConfig;

const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
const EXCHANGE_ADMINISTRATOR: &str = "29232cdf-9323-42fd-ade2-1d097af3e4de";

fn public_graph() -> EmulatorConfig {
    EmulatorConfig {
        password_hash_endpoint: false,
        ..EmulatorConfig::default()
    }
}

/// An installation of `included` with password sync through Graph, reading the lab DC; the
/// sync app holds `role` (setup would have assigned User Administrator).
fn installation(included: &str, role: Option<&str>) -> Installation {
    let options = SyncOptions {
        password_hash_sync: true,
        password_sync_mode: PasswordSyncMode::Graph,
        ..SyncOptions::default()
    };
    let installation = Installation::with_tenant(&[included], &[], options, public_graph());
    use_lab_dc(&installation, &lab_socket());
    if let Some(role) = role {
        installation
            .tenant
            .assign_role(&sync_app_principal(&installation), role)
            .unwrap();
    }
    installation
}

fn sync_app_principal(installation: &Installation) -> String {
    let client_id = installation.tenant.info.client_id.clone();
    installation
        .tenant
        .objects("servicePrincipals")
        .iter()
        .find(|principal| principal["appId"] == client_id.as_str())
        .and_then(|principal| principal["id"].as_str())
        .unwrap()
        .to_owned()
}

fn cloud_id(installation: &Installation, upn: &str) -> String {
    user_with_upn(&installation.cloud_users(), upn).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn error_types(report: &Value) -> Vec<(String, String)> {
    report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| {
            (
                error["dn"].as_str().unwrap().to_owned(),
                error["error_type"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_changed_ad_password_signs_in_through_public_graph_and_is_kept_nowhere() {
    let ou = TestOu::create("pwg", &["alice", "bob"]);
    let installation = installation(&ou.dn, Some(USER_ADMINISTRATOR));
    set_password(&ou, "alice", "Old-Passw0rd-2026");
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");

    // The first cycle is a full pass: alice's stored password is sent; bob has none.
    let (status, report) = installation.sync(&["--passwords"]);
    assert_eq!(status, 0, "{report}");
    assert_eq!(step(&report, "cloud-export")["updates"], 1, "{report}");
    assert_eq!(
        sign_in(&installation, &ou.upn("alice"), "Old-Passw0rd-2026"),
        Ok(())
    );

    // A change on the DC reaches the cloud in the next cycle; the old password stops working.
    set_password(&ou, "alice", "New-Passw0rd-2026");
    let (status, report) = installation.sync(&["--passwords"]);
    assert_eq!(status, 0, "{report}");
    assert_eq!(step(&report, "cloud-export")["updates"], 1, "{report}");
    assert_eq!(
        sign_in(&installation, &ou.upn("alice"), "New-Passw0rd-2026"),
        Ok(())
    );
    assert_eq!(
        sign_in(&installation, &ou.upn("alice"), "Old-Passw0rd-2026"),
        Err(WRONG_PASSWORD)
    );
    // AD decides when passwords expire; the cloud's complexity rule stays.
    let alice = installation
        .tenant
        .objects("users")
        .into_iter()
        .find(|user| user["id"] == cloud_id(&installation, &ou.upn("alice")).as_str())
        .unwrap();
    assert_eq!(alice["passwordPolicies"], "DisablePasswordExpiration");
    let changes = installation.runs_show(run_id(&report), None)["changes"].clone();
    assert_eq!(
        changes[0]["attributes"][0]["new"], "set through Microsoft Graph from AD",
        "{changes}"
    );

    // Nothing changed: nothing sent.
    let (status, report) = installation.sync(&["--passwords"]);
    assert_eq!(status, 0, "{report}");
    assert_eq!(step(&report, "cloud-export")["updates"], 0, "{report}");

    // Neither password is in anything dirsync wrote or printed.
    let mut written = String::new();
    for args in [
        &["runs", "--json"][..],
        &["runs", "show", "2", "--json"][..],
    ] {
        written.push_str(&installation.dirsync(args).all_output());
    }
    // A full pass sends alice's password again, with every log line on.
    let output = installation
        .command(&["sync", "--json", "--passwords", "--full"])
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(output.status.success());
    written.push_str(&String::from_utf8_lossy(&output.stdout));
    written.push_str(&String::from_utf8_lossy(&output.stderr));
    for entry in std::fs::read_dir(installation.home.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            written.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
        }
    }
    for password in ["New-Passw0rd-2026", "Old-Passw0rd-2026"] {
        let utf16: String = password
            .encode_utf16()
            .map(|unit| char::from_u32(u32::from(unit)).unwrap().to_string() + "\0")
            .collect();
        assert!(!written.contains(password), "a password leaked");
        assert!(!written.contains(&utf16), "a password leaked as UTF-16");
    }
}

#[test]
fn without_the_role_the_run_fails_saying_which_and_an_administrator_is_an_object_error() {
    let ou = TestOu::create("pwgr", &["carol", "admin"]);
    set_password(&ou, "carol", "Carol-Passw0rd-2026");
    set_password(&ou, "admin", "Admin-Passw0rd-2026");
    let installation = installation(&ou.dn, None);
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");

    // No role: the run stops before sending, naming the role to assign.
    let (status, report) = installation.sync(&["--passwords"]);
    assert_eq!(status, 1, "{report}");
    let failure = report["failure"].as_str().unwrap();
    let hint = report["errors"][0]["hint"].as_str().unwrap();
    assert!(
        failure.contains("User Administrator") && hint.contains("User Administrator"),
        "{report}"
    );
    assert_eq!(
        sign_in(&installation, &ou.upn("carol"), "Carol-Passw0rd-2026"),
        Err(WRONG_PASSWORD)
    );

    // An app setup did not make (no service principal recorded) is not checked first: each
    // user's refusal says the app's role is missing or not in effect yet, not "administrator".
    let mut config = dirsync::config::Config::load(&installation.config_path()).unwrap();
    let principal = config.cloud.service_principal_id.take();
    config.save(&installation.config_path()).unwrap();
    let (status, report) = installation.sync(&["--passwords"]);
    assert_eq!(status, 3, "{report}");
    let carol = errors_of(&report, "CN=carol");
    assert_eq!(carol[0]["error_type"], "forbidden", "{report}");
    let hint = carol[0]["hint"].as_str().unwrap();
    assert!(
        hint.contains("several minutes") && hint.contains("User Administrator"),
        "{hint}"
    );
    config.cloud.service_principal_id = principal;
    config.save(&installation.config_path()).unwrap();

    // With the role, a cloud administrator's account is refused alone, naming the role it needs.
    let admin_id = cloud_id(&installation, &ou.upn("admin"));
    installation
        .tenant
        .assign_role(&admin_id, EXCHANGE_ADMINISTRATOR)
        .unwrap();
    installation
        .tenant
        .assign_role(&sync_app_principal(&installation), USER_ADMINISTRATOR)
        .unwrap();
    let (status, report) = installation.sync(&["--passwords"]);
    assert_eq!(status, 3, "{report}");
    assert_eq!(
        error_types(&report),
        vec![(ou.user_dn("admin"), "forbidden".to_owned())]
    );
    let hint = report["errors"][0]["hint"].as_str().unwrap();
    assert!(
        hint.contains("Privileged Authentication Administrator"),
        "{hint}"
    );
    assert_eq!(
        sign_in(&installation, &ou.upn("carol"), "Carol-Passw0rd-2026"),
        Ok(())
    );
}

#[test]
fn a_password_the_clouds_rule_refuses_is_an_object_error_and_the_others_go_on() {
    let ou = TestOu::create("pwgc", &["dan", "eve"]);
    let installation = installation(&ou.dn, Some(USER_ADMINISTRATOR));
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    // AD's default policy takes 7 characters of 3 kinds; the cloud wants at least 8.
    set_password(&ou, "dan", "Ab1-xyz");
    set_password(&ou, "eve", "Eve-Passw0rd-2026");
    let (status, report) = installation.sync(&["--passwords"]);
    assert_eq!(status, 3, "{report}");
    assert_eq!(
        error_types(&report),
        vec![(ou.user_dn("dan"), "password-complexity".to_owned())]
    );
    let hint = report["errors"][0]["hint"].as_str().unwrap();
    assert!(
        hint.contains("8 to 256 characters") && hint.contains("disable_strong_password"),
        "{hint}"
    );
    assert!(!report.to_string().contains("Ab1-xyz"));
    assert_eq!(
        sign_in(&installation, &ou.upn("eve"), "Eve-Passw0rd-2026"),
        Ok(())
    );
}

/// A password set before Samba kept passwords (here an NT hash set directly, as a migration
/// does) has nothing to send: the user waits, counted, without an error, until the next change.
#[test]
fn a_user_whose_password_samba_did_not_keep_waits_for_the_next_change() {
    let ou = TestOu::create("pwgw", &["frank"]);
    set_hash_only(&ou.user_dn("frank"));
    let installation = installation(&ou.dn, Some(USER_ADMINISTRATOR));
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    let (status, report) = installation.sync(&["--passwords"]);
    assert_eq!(status, 0, "{report}");
    assert_eq!(step(&report, "cloud-export")["updates"], 0, "{report}");
    assert_eq!(step(&report, "cloud-export")["no_change"], 1, "{report}");
    assert_eq!(waiting(&installation), 1);

    set_password(&ou, "frank", "Frank-Passw0rd-2026");
    let (status, report) = installation.sync(&["--passwords"]);
    assert_eq!(status, 0, "{report}");
    assert_eq!(step(&report, "cloud-export")["updates"], 1, "{report}");
    assert_eq!(waiting(&installation), 0);
    assert_eq!(
        sign_in(&installation, &ou.upn("frank"), "Frank-Passw0rd-2026"),
        Ok(())
    );
}

fn waiting(installation: &Installation) -> u64 {
    installation.store().passwords_waiting().unwrap()
}

/// Gives a user an NT hash without its password (Samba's password-hash-values control on the
/// DC's database), so that no `Primary:SambaGPG` is kept.
fn set_hash_only(dn: &str) {
    use base64::Engine as _;
    let lab = common::lab();
    let hash = base64::engine::general_purpose::STANDARD.encode([0x88u8; 16]);
    let ldif = format!("dn: {dn}\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: {hash}\n");
    let mut command = std::process::Command::new("ldbmodify");
    command
        .env("GNUPGHOME", &lab.gpg_home)
        .arg("-H")
        .arg(lab.lab_dir.join("private/sam.ldb"))
        .arg("--controls=local_oid:1.3.6.1.4.1.7165.4.3.12:0");
    run_with_input(&mut command, &ldif);
}
