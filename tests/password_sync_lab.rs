//! Password hash sync end to end: passwords set in the Samba AD lab reach the tenant emulator
//! through `dirsync sync --passwords` (and the service), and the emulator's resource-owner
//! password grant then accepts the AD password and refuses the old one. The hashes come from
//! the lab DC's privileged LDAP socket, as on a real Samba DC host (the tests run as root).
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::installation::*;
use common::lab;
use common::passwords::*;
use dirsync::config::{Config, SyncOptions};
use serde_json::Value;
use tenant_emulator::EmulatorConfig;

fn password_options() -> SyncOptions {
    SyncOptions {
        password_hash_sync: true,
        ..SyncOptions::default()
    }
}

/// An installation of `included` with password hash sync on, reading the lab DC's socket.
fn installation(included: &str, tenant: EmulatorConfig) -> Installation {
    let installation = Installation::with_tenant(&[included], &[], password_options(), tenant);
    use_lab_dc(&installation, &lab_socket());
    installation
}

/// The changes a run recorded, by DN.
fn changed_dns(installation: &Installation, report: &Value) -> Vec<String> {
    installation.runs_show(run_id(report), None)["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["dn"].as_str().unwrap().to_owned())
        .collect()
}

/// The NT hash (hex and base64) of a user's password, read the way dirsync reads it, for the
/// leak checks.
fn nt_hash_forms(dn: &str) -> Vec<String> {
    let socket = lab_socket();
    let encoded: String =
        url::form_urlencoded::byte_serialize(socket.as_os_str().as_encoded_bytes()).collect();
    let mut command = std::process::Command::new("ldapsearch");
    command
        .args(["-LLL", "-o", "ldif-wrap=no", "-x", "-H"])
        .arg(format!("ldapi://{encoded}"))
        .args(["-b", &lab().base_dn, "-E", "!dirSync=1/0/"])
        .arg(format!("(distinguishedName={dn})"))
        .arg("unicodePwd");
    let output = common::stdout_of(command);
    let base64 = output
        .lines()
        .find_map(|line| line.strip_prefix("unicodePwd:: "))
        .unwrap()
        .to_owned();
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&base64)
        .unwrap();
    assert_eq!(bytes.len(), 16);
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    vec![base64, hex.clone(), hex.to_ascii_uppercase()]
}

#[test]
fn a_changed_ad_password_signs_in_to_the_cloud_and_the_old_one_no_longer_does() {
    let ou = TestOu::create("pw", &["alice", "bob", "dave"]);
    let outside = TestOu::create("pwout", &["carol"]);
    let installation = installation(&ou.dn, EmulatorConfig::default());
    set_password(&ou, "alice", "Old-Passw0rd-2026");
    set_password(&ou, "dave", "Dave-Passw0rd-2026");
    // Disabled after its password is set (samba-tool setpassword enables the account).
    ldapmodify(
        lab(),
        &format!(
            "dn: {}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n\n",
            ou.user_dn("dave")
        ),
    );
    set_password(&outside, "carol", "Carol-Passw0rd-2026");
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    let cloud_users = installation.cloud_users();
    let alice_id = user_with_upn(&cloud_users, &ou.upn("alice")).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The first password cycle is a full pass: every synced user with a password.
    let (status, report) = installation.sync(&["--passwords"]);
    assert_eq!(status, 0, "{report}");
    assert_eq!(report["run"]["mode"], "password");
    assert_eq!(step(&report, "cloud-export")["updates"], 2, "{report}");
    let mut sent = changed_dns(&installation, &report);
    sent.sort();
    assert_eq!(sent, vec![ou.user_dn("alice"), ou.user_dn("dave")]);
    assert_eq!(
        sign_in(&installation, &ou.upn("alice"), "Old-Passw0rd-2026"),
        Ok(())
    );
    // The disabled user's hash is synced (re-enabling works at once), but sign-in is blocked.
    assert_eq!(
        sign_in(&installation, &ou.upn("dave"), "Dave-Passw0rd-2026"),
        Err(ACCOUNT_DISABLED)
    );
    // A user outside the scope gets nothing: not in the cloud, not in the run.
    assert!(user_with_upn(&cloud_users, &outside.upn("carol")).is_none());
    assert!(!sent.contains(&outside.user_dn("carol")));

    // A password change on the DC reaches the cloud in the next cycle, and only that one.
    set_password(&ou, "alice", "New-Passw0rd-2026");
    let (status, report) = installation.sync(&["--passwords"]);
    assert_eq!(status, 0, "{report}");
    assert_eq!(step(&report, "cloud-export")["updates"], 1, "{report}");
    assert_eq!(
        changed_dns(&installation, &report),
        vec![ou.user_dn("alice")]
    );
    assert_eq!(
        sign_in(&installation, &ou.upn("alice"), "New-Passw0rd-2026"),
        Ok(())
    );
    assert_eq!(
        sign_in(&installation, &ou.upn("alice"), "Old-Passw0rd-2026"),
        Err(WRONG_PASSWORD)
    );
    let synced = installation.tenant.users_with_synced_password();
    assert!(synced.contains(&alice_id));
    assert_eq!(synced.len(), 2, "only alice and dave have synced passwords");

    // Nothing changed: nothing sent.
    let (status, report) = installation.sync(&["--passwords"]);
    assert_eq!(status, 0, "{report}");
    assert_eq!(step(&report, "cloud-export")["updates"], 0, "{report}");

    // Neither the NT hash nor the derived credential is anywhere dirsync writes or prints.
    let leaks = nt_hash_forms(&ou.user_dn("alice"));
    let mut written = String::new();
    for (args, _) in [
        (&["runs", "--json"][..], ()),
        (&["runs", "show", "1", "--json"][..], ()),
    ] {
        written.push_str(&installation.dirsync(args).all_output());
    }
    written.push_str(&String::from_utf8_lossy(
        &std::fs::read(installation.home.path().join("state.db")).unwrap(),
    ));
    written.push_str(&std::fs::read_to_string(installation.config_path()).unwrap());
    let (_, report) = installation.sync(&["--passwords", "--full"]);
    written.push_str(&report.to_string());
    for leak in &leaks {
        assert!(!written.contains(leak.as_str()), "an NT hash leaked");
    }
    assert!(!written.contains("PPH1_MD4"), "a derived credential leaked");
}

#[test]
fn a_thousand_password_changes_finish_in_one_cycle() {
    let users: Vec<String> = (0..1000).map(|n| format!("u{n:04}")).collect();
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let ou = TestOu::create("pwk", &names);
    let installation = installation(&ou.dn, EmulatorConfig::default());
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    // The users have no password yet: the full pass has nothing to send.
    let (status, report) = installation.sync(&["--passwords"]);
    assert_eq!(status, 0, "{report}");
    assert_eq!(step(&report, "cloud-export")["updates"], 0, "{report}");

    // Every password changes at once, as an administrator's script would do it.
    let password = "Batch-Passw0rd-2026";
    let quoted: Vec<u8> = format!("\"{password}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    use base64::Engine as _;
    let value = base64::engine::general_purpose::STANDARD.encode(quoted);
    let ldif: String = users
        .iter()
        .map(|user| {
            format!(
                "dn: {}\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: {value}\n\n",
                ou.user_dn(user)
            )
        })
        .collect();
    ldapmodify(lab(), &ldif);

    let started = Instant::now();
    let (status, report) = installation.sync(&["--passwords"]);
    eprintln!(
        "1,000 password changes: one cycle in {:?}",
        started.elapsed()
    );
    assert_eq!(status, 0, "{report}");
    assert_eq!(
        step(&report, "directory-import")["updates"],
        1000,
        "{report}"
    );
    assert_eq!(step(&report, "cloud-export")["updates"], 1000, "{report}");
    assert_eq!(step(&report, "cloud-export")["errors"], 0, "{report}");
    assert_eq!(installation.tenant.users_with_synced_password().len(), 1000);
    for user in ["u0000", "u0499", "u0999"] {
        assert_eq!(sign_in(&installation, &ou.upn(user), password), Ok(()));
    }
}

#[test]
fn without_a_hash_source_or_a_cloud_endpoint_the_cycle_says_so_and_sends_nothing() {
    let ou = TestOu::create("pwx", &["erin"]);
    set_password(&ou, "erin", "Erin-Passw0rd-2026");

    // A tenant like public Graph: no password hash endpoint.
    let installation = installation(
        &ou.dn,
        EmulatorConfig {
            password_hash_endpoint: false,
            ..EmulatorConfig::default()
        },
    );
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    let (status, report) = installation.sync(&["--passwords"]);
    assert_eq!(status, 1, "{report}");
    let failure = report["failure"].as_str().unwrap();
    assert!(
        failure.contains("no password hash endpoint") && failure.contains("public Microsoft Graph"),
        "{failure}"
    );
    assert_eq!(report["run"]["status"], "failed");
    assert!(
        report["errors"][0]["hint"]
            .as_str()
            .unwrap()
            .contains("password_hash_sync")
    );
    assert!(installation.tenant.users_with_synced_password().is_empty());

    // No hash source on this host (the socket is elsewhere).
    use_lab_dc(
        &installation,
        std::path::Path::new("/nonexistent/ldap_priv/ldapi"),
    );
    let (status, report) = installation.sync(&["--passwords"]);
    assert_eq!(status, 1, "{report}");
    let failure = report["failure"].as_str().unwrap();
    assert!(
        failure.contains("/nonexistent/ldap_priv/ldapi")
            && failure.contains("directory.password_hash_socket"),
        "{failure}"
    );

    // Password hash sync turned off: the command refuses as bad input.
    let mut config = Config::load(&installation.config_path()).unwrap();
    config.options.password_hash_sync = false;
    config.save(&installation.config_path()).unwrap();
    let run = installation.dirsync(&["sync", "--passwords"]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("options.password_hash_sync"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_service_syncs_a_changed_password_within_its_password_interval() {
    let ou = TestOu::create("pws", &["fay"]);
    let installation = installation(&ou.dn, EmulatorConfig::default());
    let mut config = Config::load(&installation.config_path()).unwrap();
    config.options.password_interval_secs = 1;
    config.save(&installation.config_path()).unwrap();
    let service = installation
        .command(&["service"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // The service's first sync cycle creates fay; then her password is set on the DC.
    let deadline = Instant::now() + Duration::from_secs(60);
    while user_with_upn(&installation.cloud_users(), &ou.upn("fay")).is_none() {
        assert!(
            Instant::now() < deadline,
            "the service never created the user"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    set_password(&ou, "fay", "Fay-Passw0rd-2026");
    let mut signed_in = Err(0);
    while Instant::now() < deadline {
        signed_in = sign_in(&installation, &ou.upn("fay"), "Fay-Passw0rd-2026");
        if signed_in.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &service.id().to_string()])
        .status();
    let output = service.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    installation.assert_no_secret(&stderr);
    assert_eq!(
        signed_in,
        Ok(()),
        "the password never reached the cloud:\n{stderr}"
    );
    assert!(stderr.contains("(password) ended"), "{stderr}");
    assert!(output.status.success(), "{stderr}");
    // Quiet password cycles leave no run behind: only the sync runs and the one that sent.
    let runs: Value =
        serde_json::from_str(&installation.dirsync(&["runs", "--json"]).stdout).unwrap();
    let password_runs = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|run| run["mode"] == "password")
        .count();
    assert!(password_runs <= 2, "{runs}");
}
