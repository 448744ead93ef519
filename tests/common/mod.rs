//! Shared by the integration tests: the lab (brought up by its own script) and running the binary.
#![allow(dead_code, clippy::unwrap_used)]

pub mod accounts;
pub mod installation;
pub mod passwords;
pub mod window;
pub mod write_back;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Connection facts printed by `tests/lab/lab up`.
#[derive(Debug, serde::Deserialize)]
pub struct Lab {
    pub ldaps_url: String,
    pub ldap_url: String,
    pub base_dn: String,
    pub admin_upn: String,
    pub admin_dn: String,
    pub admin_password: String,
    pub plain_user_upn: String,
    pub plain_user_password: String,
    pub ca_file: PathBuf,
    pub dns_host_name: String,
    pub lab_dir: PathBuf,
    /// The DC's smb.conf, and the GnuPG home and key Samba encrypts passwords to.
    pub smb_conf: PathBuf,
    pub gpg_home: PathBuf,
    pub gpg_key_id: String,
}

pub fn repository_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

static LAB: OnceLock<Lab> = OnceLock::new();

/// Brings the lab up once per test binary (idempotent and fast when it is already running).
pub fn lab() -> &'static Lab {
    lab_with(&[])
}

/// The lab brought up with `tests/lab/lab up ARGS` (say `--exchange-schema`). The first call of
/// a test binary decides: later calls, and [`lab`], return that same lab. (A different image
/// restores another directory, so one binary never mixes two.)
pub fn lab_with(args: &[&str]) -> &'static Lab {
    LAB.get_or_init(|| {
        let mut all = vec!["up"];
        all.extend_from_slice(args);
        lab_script(&all)
    })
}

static SECOND_FOREST: OnceLock<Lab> = OnceLock::new();

/// The second forest's DC (FABRIKAM.DIRSYNC.TEST on 127.0.0.2), brought up beside the first by
/// `tests/lab/lab --forest fabrikam up`.
pub fn second_forest() -> &'static Lab {
    SECOND_FOREST.get_or_init(|| lab_script(&["--forest", "fabrikam", "up"]))
}

/// Stops the second forest's DC (a forest whose DC is down); [`second_forest_up`] starts it again.
pub fn second_forest_down() {
    let script = repository_root().join("tests/lab/lab");
    let status = Command::new(&script)
        .args(["--forest", "fabrikam", "down"])
        .status()
        .unwrap();
    assert!(
        status.success(),
        "`tests/lab/lab --forest fabrikam down` failed"
    );
}

pub fn second_forest_up() {
    lab_script(&["--forest", "fabrikam", "up"]);
}

/// Runs `tests/lab/lab ARGS` and reads the lab it prints.
pub fn lab_script(args: &[&str]) -> Lab {
    let script = repository_root().join("tests/lab/lab");
    let output = Command::new(&script)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", script.display()));
    assert!(
        output.status.success(),
        "`tests/lab/lab {}` failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "lab printed no valid JSON ({error}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The forests a run's directory import steps name (`connector`), in order, from `sync --json`
/// or `runs show --json` (README, "Several forests").
pub fn step_connectors(document: &serde_json::Value) -> Vec<String> {
    document["run"]["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .filter_map(|step| step["connector"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The result of one run of the dirsync binary.
#[derive(Debug)]
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Everything the process printed, for leak checks.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `dirsync ARGS` with `DIRSYNC_LDAP_PASSWORD` set (or unset when `None`) and a private home.
pub fn dirsync(args: &[&str], password: Option<&str>) -> Run {
    let home = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_dirsync"));
    command
        .args(args)
        .env("DIRSYNC_HOME", home.path())
        .env_remove("DIRSYNC_LDAP_PASSWORD")
        .stdin(std::process::Stdio::null());
    if let Some(password) = password {
        command.env("DIRSYNC_LDAP_PASSWORD", password);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().unwrap();
    Run {
        status: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// `ldapsearch -LLL` over LDAPS as the lab's administrator, trusting the lab's CA; add `-b`, `-s`,
/// the filter and the attributes.
pub fn ldapsearch(lab: &Lab) -> Command {
    let mut command = Command::new("ldapsearch");
    command
        .env("LDAPTLS_CACERT", &lab.ca_file)
        .args(["-LLL", "-o", "ldif-wrap=no", "-x", "-H", &lab.ldaps_url])
        .args(["-D", &lab.admin_upn, "-w", &lab.admin_password]);
    command
}

/// Runs a command that must succeed and returns what it printed.
pub fn stdout_of(mut command: Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `samba-tool ARGS` against the lab's database directly (as root on the DC host), as an
/// administrator would make changes; returns what it printed.
pub fn samba_tool(lab: &Lab, args: &[&str]) -> String {
    let mut command = samba_tool_command(lab);
    command.args(args).args(samba_db_args(lab));
    stdout_of(command)
}

/// `samba-tool` as root on the DC host runs it: with the GnuPG home the DC's samba has, since a
/// password change writes `Primary:SambaGPG` and fails when the key cannot be found.
pub fn samba_tool_command(lab: &Lab) -> Command {
    let mut command = Command::new("samba-tool");
    command.env("GNUPGHOME", &lab.gpg_home);
    command
}

/// `-H <sam.ldb> -s <smb.conf>` for Samba's local tools.
pub fn samba_db_args(lab: &Lab) -> [String; 4] {
    [
        "-H".to_owned(),
        lab.lab_dir.join("private/sam.ldb").display().to_string(),
        "-s".to_owned(),
        lab.lab_dir.join("etc/smb.conf").display().to_string(),
    ]
}

/// A TCP proxy on loopback in front of `upstream` that cuts the first connection once it has
/// carried `budget` bytes from the server, and passes later connections through untouched: a
/// connection dropped in the middle of an answer.
pub struct DroppingProxy {
    pub port: u16,
}

impl DroppingProxy {
    pub fn start(upstream: std::net::SocketAddr, budget: usize) -> DroppingProxy {
        use std::io::{Read as _, Write as _};
        use std::net::{Shutdown, TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for (index, client) in listener.incoming().enumerate() {
                let Ok(client) = client else { return };
                let server = TcpStream::connect(upstream).unwrap();
                let limit = if index == 0 { budget } else { usize::MAX };
                let (client_in, mut server_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let mut client_in = client_in;
                    let mut buffer = [0u8; 4096];
                    while let Ok(read) = client_in.read(&mut buffer) {
                        if read == 0 || server_out.write_all(&buffer[..read]).is_err() {
                            break;
                        }
                    }
                    let _ = server_out.shutdown(Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let (mut server_in, mut client_out) = (server, client);
                    let mut buffer = [0u8; 4096];
                    let mut carried = 0usize;
                    while let Ok(read) = server_in.read(&mut buffer) {
                        let allowed = read.min(limit - carried);
                        if read == 0 || client_out.write_all(&buffer[..allowed]).is_err() {
                            break;
                        }
                        carried += allowed;
                        if carried >= limit {
                            break;
                        }
                    }
                    let _ = client_out.shutdown(Shutdown::Both);
                    let _ = server_in.shutdown(Shutdown::Both);
                });
            }
        });
        DroppingProxy { port }
    }
}
