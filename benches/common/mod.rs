//! Shared by the benchmarks: the lab, brought up by its own script.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Connection facts printed by `tests/lab/lab`.
#[derive(Debug, serde::Deserialize)]
pub struct Lab {
    pub ldaps_url: String,
    pub base_dn: String,
    pub admin_upn: String,
    pub admin_password: String,
    pub ca_file: PathBuf,
    pub lab_dir: PathBuf,
    pub extra_users: usize,
    /// The DC's smb.conf, and the GnuPG home with the key Samba encrypts passwords to.
    pub smb_conf: PathBuf,
    pub gpg_home: PathBuf,
}

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/lab");

/// `tests/lab/lab up ARGS`: the lab of that size (switching images if another runs).
pub fn lab_up(args: &[&str]) -> Lab {
    let output = Command::new(SCRIPT)
        .arg("up")
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("tests/lab/lab runs");
    assert!(
        output.status.success(),
        "`tests/lab/lab up {args:?}` failed"
    );
    serde_json::from_slice(&output.stdout).expect("the lab prints its facts as JSON")
}

/// The lab as it runs now; `lab up` only when it is not running, because `up` with another size
/// than the running lab's would restart it under everyone else's tests.
pub fn running_lab() -> Lab {
    let status = Command::new(SCRIPT)
        .arg("status")
        .output()
        .expect("tests/lab/lab runs");
    if status.status.success() {
        return serde_json::from_slice(&status.stdout).expect("the lab prints its facts as JSON");
    }
    eprintln!("bench: the lab is not running; bringing it up");
    lab_up(&[])
}
