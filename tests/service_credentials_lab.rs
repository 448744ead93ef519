//! Secrets that survive a reboot: setup, run as root, keeps the service's secrets as systemd
//! credentials encrypted with this host's key (`systemd-creds`), and a cycle after every kernel
//! keyring was emptied (what a reboot does) still signs in to AD and the cloud, either decrypting
//! them itself (root) or from the `$CREDENTIALS_DIRECTORY` systemd hands the service. The real
//! binary, the Samba lab, the tenant emulator, the real kernel keyring and the real
//! `systemd-creds`.
//!
//! This binary empties the user's kernel keyrings: its tests run one at a time, and no other
//! binary's secrets are needed while it runs.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Lab, Run, lab};
use dirsync::config::Config;
use dirsync::secret_store::{OsKeyring, SecretStore, service_account_key};
use serde_json::Value;
use tenant_emulator::{EmulatorConfig, RunningEmulator};

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const COMPUTER_PREFIX: &str = "creds-lab-";

fn unique_computer() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{COMPUTER_PREFIX}{}", nanos % 1_000_000_000)
}

fn answers(lab: &Lab, emulator: &RunningEmulator) -> String {
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

[scope]
included = ["OU=Sales,OU=Corp,{}"]
"#,
        info.authority,
        info.graph,
        info.tenant_id,
        lab.ldaps_url,
        lab.ca_file.display(),
        lab.admin_upn,
        lab.base_dn
    )
}

fn dirsync(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .args(args)
        .env("DIRSYNC_HOME", home)
        .env_remove("CREDENTIALS_DIRECTORY")
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

/// What a reboot does to the kernel keyrings: the session, user and persistent keyrings of this
/// user are emptied.
fn empty_every_keyring() {
    for keyring in ["@s", "@u", "@us"] {
        let status = Command::new("keyctl")
            .args(["clear", keyring])
            .status()
            .unwrap();
        assert!(status.success(), "keyctl clear {keyring}");
    }
    let persistent = Command::new("keyctl")
        .args(["get_persistent", "@s"])
        .output()
        .unwrap();
    if persistent.status.success() {
        let id = String::from_utf8_lossy(&persistent.stdout)
            .trim()
            .to_owned();
        assert!(
            Command::new("keyctl")
                .args(["clear", &id])
                .status()
                .unwrap()
                .success()
        );
    }
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            // Sockets (the desktop session's bus and keyring daemon) hold nothing at rest.
            if path.is_dir() {
                pending.push(path);
            } else if path.is_file() {
                files.push(path);
            }
        }
    }
    files
}

fn assert_nowhere_in_plain_text(dir: &Path, secrets: &[&str]) {
    for file in files_under(dir) {
        let bytes = std::fs::read(&file).unwrap();
        for secret in secrets {
            assert!(
                !bytes
                    .windows(secret.len())
                    .any(|window| window == secret.as_bytes()),
                "{} holds a secret in plain text",
                file.display()
            );
        }
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// What systemd does for `LoadCredentialEncrypted=`: decrypts each credential into a directory
/// only the service's user may read.
fn hand_over_as_systemd_would(credentials: &Path, handed: &Path) {
    std::fs::create_dir(handed).unwrap();
    std::fs::set_permissions(handed, std::fs::Permissions::from_mode(0o700)).unwrap();
    for file in files_under(credentials) {
        let name = file.file_name().unwrap().to_str().unwrap().to_owned();
        let target = handed.join(&name);
        let status = Command::new("systemd-creds")
            .arg("decrypt")
            .arg(format!("--name={name}"))
            .arg(&file)
            .arg(&target)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "systemd-creds decrypt {}", file.display());
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o400)).unwrap();
    }
}

fn last_run(home: &Path) -> Option<Value> {
    let run = dirsync(home, &["runs", "--json", "--limit", "1"], &[]);
    let document: Value = serde_json::from_str(&run.stdout).ok()?;
    document["runs"].as_array()?.first().cloned()
}

#[tokio::test]
async fn after_a_reboot_the_service_still_signs_in_from_its_systemd_credentials() {
    let _turn = TURN.lock().await;
    let lab = lab();
    common::accounts::remove_service_accounts(lab, COMPUTER_PREFIX).await;
    let emulator = RunningEmulator::start(EmulatorConfig {
        verified_domains: vec!["corp.dirsync.test".to_owned()],
        auto_approve: true,
        device_code_interval_secs: 1,
        ..EmulatorConfig::default()
    })
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let computer = unique_computer();
    std::fs::write(home.path().join("answers.toml"), answers(lab, &emulator)).unwrap();
    let answers_file = home.path().join("answers.toml");

    // Setup as root: the secrets go to the keyring and, encrypted, to the home's credentials.
    let run = dirsync(
        home.path(),
        &[
            "setup",
            "--json",
            "--answers",
            answers_file.to_str().unwrap(),
        ],
        &[
            ("DIRSYNC_ADMIN_PASSWORD", lab.admin_password.as_str()),
            ("HOSTNAME", computer.as_str()),
        ],
    );
    assert_eq!(run.status, 0, "{run:?}");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let config = Config::load(&home.path().join("config.toml")).unwrap();
    let credentials = home.path().join("credentials");
    let app_credential = credentials.join("dirsync-cloud-app");
    let account_credential = credentials.join("dirsync-ad-service-account");
    let places = report["secrets_kept_in"].to_string();
    for file in [&app_credential, &account_credential] {
        assert!(
            places.contains(file.to_str().unwrap()),
            "setup says where: {places}"
        );
        assert_eq!(mode(file), 0o600, "{}", file.display());
        assert_eq!(std::fs::metadata(file).unwrap().uid(), 0, "root's");
    }
    assert_eq!(mode(&credentials), 0o700);
    assert_eq!(mode(&home.path().join("config.toml")), 0o600);
    let app_key = OsKeyring
        .load(&config.app_credential_key())
        .unwrap()
        .unwrap();
    let password = OsKeyring
        .load(&service_account_key(&config.directory.service_account_dn))
        .unwrap()
        .unwrap();
    // The private key's base64 body (one line of it is enough to recognize it), and the password.
    let key_line = app_key
        .expose()
        .lines()
        .find(|line| !line.starts_with("-----"))
        .unwrap()
        .to_owned();
    assert_nowhere_in_plain_text(home.path(), &[&key_line, password.expose()]);

    // The reboot.
    empty_every_keyring();
    assert!(
        OsKeyring
            .load(&config.app_credential_key())
            .unwrap()
            .is_none()
    );

    // The service as systemd starts it: the credentials decrypted into $CREDENTIALS_DIRECTORY,
    // and nothing else (the encrypted files moved away, the keyring empty).
    let handed = home.path().join("handed");
    hand_over_as_systemd_would(&credentials, &handed);
    let away = home.path().join("credentials.away");
    std::fs::rename(&credentials, &away).unwrap();
    empty_every_keyring();
    // No sync yet: the service syncs at once (the schedule, README "The schedule").
    assert!(last_run(home.path()).is_none());
    let service = Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .arg("service")
        .env("DIRSYNC_HOME", home.path())
        .env("CREDENTIALS_DIRECTORY", &handed)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let ended = loop {
        if let Some(run) = last_run(home.path())
            && !run["ended_at"].is_null()
        {
            break run;
        }
        assert!(Instant::now() < deadline, "the service ran no cycle");
        std::thread::sleep(Duration::from_millis(300));
    };
    Command::new("kill")
        .args(["-TERM", &service.id().to_string()])
        .status()
        .unwrap();
    let output = service.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(ended["trigger"], "schedule", "{ended}\n{log}");
    assert_ne!(ended["status"], "failed", "{ended}\n{log}");
    // It read AD as the service account and wrote to the cloud as the app.
    let adds = ended["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["step"] == "cloud-export")
        .map_or(0, |step| step["adds"].as_u64().unwrap());
    assert!(adds > 0, "{ended}\n{log}");
    std::fs::rename(&away, &credentials).unwrap();
    empty_every_keyring();

    // A root process started by hand decrypts the credentials itself.
    let run = dirsync(home.path(), &["sync", "--json"], &[]);
    let document: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|error| panic!("{error}: {run:?}"));
    assert_ne!(document["run"]["status"], "failed", "{run:?}");
    assert!(matches!(run.status, 0 | 3), "{run:?}");
    assert_eq!(mode(&home.path().join("state.db")), 0o600);

    // Nothing anywhere: the error names the credential and how to restore it.
    std::fs::rename(&credentials, &away).unwrap();
    std::fs::remove_file(handed.join("dirsync-ad-service-account")).unwrap();
    let run = dirsync(
        home.path(),
        &["sync"],
        &[("CREDENTIALS_DIRECTORY", handed.to_str().unwrap())],
    );
    assert_eq!(run.status, 1, "{run:?}");
    assert!(run.stderr.contains("dirsync-ad-service-account"), "{run:?}");
    assert!(run.stderr.contains("setup again"), "{run:?}");
    assert!(!run.all_output().contains(password.expose()));

    std::fs::rename(&away, &credentials).unwrap();
    common::accounts::remove_service_accounts(lab, COMPUTER_PREFIX).await;
}

/// The packaged unit, as `systemd-analyze verify` reads it (with the built binary in place of
/// /usr/bin/dirsync, which it checks exists), alone and with the password hash sync drop-in.
#[test]
fn the_packaged_unit_verifies() {
    let root = common::repository_root();
    let unit = std::fs::read_to_string(root.join("packaging/dirsync.service")).unwrap();
    let drop_in =
        std::fs::read_to_string(root.join("packaging/dirsync.service.d/password-hash-sync.conf"))
            .unwrap();
    let binary = env!("CARGO_BIN_EXE_dirsync");
    assert!(unit.contains("ExecStart=/usr/bin/dirsync "), "{unit}");
    assert!(unit.contains("LoadCredentialEncrypted=dirsync-cloud-app:"));
    assert!(unit.contains("LoadCredentialEncrypted=dirsync-ad-service-account:"));
    let dir = tempfile::tempdir().unwrap();
    let local = unit.replace("/usr/bin/dirsync", binary);
    // A drop-in's settings, appended, are what systemd merges.
    let with_drop_in = format!(
        "{local}\n{}",
        drop_in
            .lines()
            .filter(|line| !line.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    );
    for (name, text) in [
        ("dirsync.service", local),
        ("dirsync-root.service", with_drop_in),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let output = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&path)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // Without systemd as PID 1 it may say so; anything about the unit itself fails.
        let about_the_unit: Vec<&str> = said
            .lines()
            .filter(|line| line.contains(name) || line.contains("dirsync"))
            .collect();
        assert!(
            output.status.success() && about_the_unit.is_empty(),
            "systemd-analyze verify {name}:\n{said}"
        );
    }
}

/// A desktop session's keyring: a private session bus with GNOME Keyring's Secret Service on it,
/// its keyrings kept under `dir` (so a second session over the same `dir` is the same user after
/// a reboot), unlocked with the login password as a desktop login does.
struct DesktopSession {
    address: String,
    bus: std::process::Child,
    keyring: std::process::Child,
}

const LOGIN_PASSWORD: &str = "desktop-login-2026";

impl DesktopSession {
    fn start(dir: &Path) -> DesktopSession {
        use std::io::{BufRead as _, Write as _};
        for sub in ["home", "run", "data"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::set_permissions(dir.join("run"), std::fs::Permissions::from_mode(0o700)).unwrap();
        let socket = dir.join("run/bus");
        let _ = std::fs::remove_file(&socket);
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .arg(format!("--address=unix:path={}", socket.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut address = String::new();
        std::io::BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_owned();
        assert!(address.starts_with("unix:"), "dbus-daemon said {address:?}");
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("HOME", dir.join("home"))
            .env("XDG_RUNTIME_DIR", dir.join("run"))
            .env("XDG_DATA_HOME", dir.join("data"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        keyring
            .stdin
            .take()
            .unwrap()
            .write_all(LOGIN_PASSWORD.as_bytes())
            .unwrap();
        let session = DesktopSession {
            address,
            bus,
            keyring,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !session.secret_service_is_up() {
            assert!(
                Instant::now() < deadline,
                "GNOME Keyring did not take the Secret Service name"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        session
    }

    fn secret_service_is_up(&self) -> bool {
        let output = Command::new("dbus-send")
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.secrets",
            ])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).contains("boolean true")
    }

    /// What `secret-tool` finds under dirsync's attributes for `key`.
    fn lookup(&self, key: &str) -> Option<String> {
        let output = Command::new("secret-tool")
            .args(["lookup", "service", "dirsync", "username", key])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .unwrap();
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn clear(&self, key: &str) {
        let status = Command::new("secret-tool")
            .args(["clear", "service", "dirsync", "username", key])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for DesktopSession {
    fn drop(&mut self) {
        let _ = self.keyring.kill();
        let _ = self.keyring.wait();
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}

#[tokio::test]
async fn in_a_desktop_session_the_secrets_live_in_its_secret_service_and_survive_a_reboot() {
    let _turn = TURN.lock().await;
    let lab = lab();
    common::accounts::remove_service_accounts(lab, COMPUTER_PREFIX).await;
    let emulator = RunningEmulator::start(EmulatorConfig {
        verified_domains: vec!["corp.dirsync.test".to_owned()],
        auto_approve: true,
        device_code_interval_secs: 1,
        ..EmulatorConfig::default()
    })
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let desktop_dir = tempfile::tempdir().unwrap();
    let computer = unique_computer();
    std::fs::write(home.path().join("answers.toml"), answers(lab, &emulator)).unwrap();
    let answers_file = home.path().join("answers.toml");
    empty_every_keyring();

    let desktop = DesktopSession::start(desktop_dir.path());
    let run = dirsync(
        home.path(),
        &[
            "setup",
            "--json",
            "--answers",
            answers_file.to_str().unwrap(),
        ],
        &[
            ("DIRSYNC_ADMIN_PASSWORD", lab.admin_password.as_str()),
            ("HOSTNAME", computer.as_str()),
            ("DBUS_SESSION_BUS_ADDRESS", desktop.address.as_str()),
        ],
    );
    assert_eq!(run.status, 0, "{run:?}");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let places = report["secrets_kept_in"].to_string();
    assert!(
        places.contains("the desktop keyring (Secret Service)"),
        "{places}"
    );
    let config = Config::load(&home.path().join("config.toml")).unwrap();
    let app_key = config.app_credential_key();
    let account_key = service_account_key(&config.directory.service_account_dn);
    let private_key = desktop.lookup(&app_key).expect("the app's key is filed");
    let password = desktop
        .lookup(&account_key)
        .expect("the account's password is filed");
    assert!(private_key.contains("PRIVATE KEY"));
    // Not in the kernel keyring (this test process has no session bus: OsKeyring is the kernel's).
    assert!(OsKeyring.load(&app_key).unwrap().is_none());
    assert!(OsKeyring.load(&account_key).unwrap().is_none());
    // On disk the keyring is encrypted with the login password.
    let key_line = private_key
        .lines()
        .find(|line| !line.starts_with("-----"))
        .unwrap()
        .to_owned();
    assert_nowhere_in_plain_text(desktop_dir.path(), &[&key_line, &password]);
    assert_nowhere_in_plain_text(home.path(), &[&key_line, &password]);

    // The reboot: the session ends, the kernel keyrings empty; the root's encrypted service
    // credentials are moved away so that only the desktop keyring can answer.
    drop(desktop);
    empty_every_keyring();
    let credentials = home.path().join("credentials");
    let away = home.path().join("credentials.away");
    std::fs::rename(&credentials, &away).unwrap();
    let desktop = DesktopSession::start(desktop_dir.path());
    let bus = [("DBUS_SESSION_BUS_ADDRESS", desktop.address.as_str())];
    let run = dirsync(home.path(), &["sync", "--json"], &bus);
    let document: Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|error| panic!("{error}: {run:?}"));
    assert_ne!(document["run"]["status"], "failed", "{run:?}");
    assert!(matches!(run.status, 0 | 3), "{run:?}");

    // A secret saved where there was no desktop session (setup over SSH) is found in the kernel
    // keyring and moved to the desktop's.
    desktop.clear(&app_key);
    OsKeyring
        .save(&app_key, &dirsync::secret::Secret::new(private_key.clone()))
        .unwrap();
    let run = dirsync(home.path(), &["sync", "--json"], &bus);
    assert!(matches!(run.status, 0 | 3), "{run:?}");
    assert_eq!(
        desktop.lookup(&app_key).as_deref(),
        Some(private_key.as_str())
    );
    assert!(OsKeyring.load(&app_key).unwrap().is_none());

    // Without the desktop keyring and without the service credentials, the error says where it
    // looked.
    desktop.clear(&account_key);
    let run = dirsync(home.path(), &["sync"], &bus);
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stderr.contains("the desktop keyring (Secret Service)"),
        "{run:?}"
    );
    assert!(!run.all_output().contains(&password));

    drop(desktop);
    std::fs::rename(&away, &credentials).unwrap();
    common::accounts::remove_service_accounts(lab, COMPUTER_PREFIX).await;
}
