//! Two dirsync hosts on one PostgreSQL state database (README, "Two hosts, one database"):
//! the export lease decides which one exports; the other runs in staging and takes over by
//! itself when the lease lapses. Both hosts here are processes on this machine with their own
//! home (their own run lock) and host name, sharing the lab's PostgreSQL server, the lab DC and
//! one tenant emulator.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::installation::*;
use common::lab;
use dirsync::config::{Config, SyncOptions};
use dirsync::secret::Secret;
use dirsync::secret_store::{OsKeyring, SecretStore};
use serde_json::{Value, json};
use tenant_emulator::EmulatorConfig;

/// The second host: a home of its own with the first one's configuration.
struct Hosts {
    installation: Installation,
    standby_home: tempfile::TempDir,
}

const ACTIVE: &str = "dirsync-host-a";
const STANDBY: &str = "dirsync-host-b";

impl Hosts {
    /// Both hosts on a fresh schema of the lab's PostgreSQL server, with a short lease.
    fn new(ou: &TestOu, lease_secs: u64, tenant: EmulatorConfig) -> Hosts {
        let installation =
            Installation::with_tenant(&[ou.dn.as_str()], &[], SyncOptions::default(), tenant);
        let (mut store, password) = dirsync::store::lab_postgres();
        store.lease_secs = Some(lease_secs);
        OsKeyring
            .save(
                dirsync::store::POSTGRES_PASSWORD_KEY,
                &Secret::new(password),
            )
            .unwrap();
        let mut config = Config::load(&installation.config_path()).unwrap();
        config.store = store;
        config.save(&installation.config_path()).unwrap();
        let standby_home = tempfile::tempdir().unwrap();
        config
            .save(&standby_home.path().join("config.toml"))
            .unwrap();
        Hosts {
            installation,
            standby_home,
        }
    }

    fn command(&self, host: &str, args: &[&str]) -> Command {
        let home: &Path = if host == ACTIVE {
            self.installation.home.path()
        } else {
            self.standby_home.path()
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_dirsync"));
        command
            .args(args)
            .env("DIRSYNC_HOME", home)
            .env("HOSTNAME", host)
            .stdin(Stdio::null());
        command
    }

    /// `dirsync ARGS --json` on `host`: its exit status and document.
    fn json(&self, host: &str, args: &[&str]) -> (i32, Value) {
        let mut all = args.to_vec();
        all.push("--json");
        let output = self.command(host, &all).output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        let document = serde_json::from_str(&text).unwrap_or_else(|error| {
            panic!(
                "{host} {args:?} printed no JSON ({error}): {text}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (output.status.code().unwrap_or(-1), document)
    }

    fn sync(&self, host: &str) -> Value {
        let (status, report) = self.json(host, &["sync"]);
        assert_eq!(status, 0, "{host}: {report:#}");
        report
    }

    /// The cloud's users by onPremisesImmutableId: each must be there once.
    fn cloud_anchors(&self) -> Vec<String> {
        self.installation
            .cloud_users()
            .iter()
            .filter_map(|user| user["onPremisesImmutableId"].as_str().map(str::to_owned))
            .collect()
    }
}

fn change_dns(report: &Value) -> BTreeSet<String> {
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|change| change["dn"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn two_hosts_configured_active_export_one_at_a_time_and_promote_hands_over() {
    let lab = lab();
    let ou = TestOu::create("ha", &["ann", "bob"]);
    let hosts = Hosts::new(&ou, 600, EmulatorConfig::default());

    // Host a exports first and holds the lease.
    let first = hosts.sync(ACTIVE);
    assert_eq!(first["standby"], Value::Null, "{first:#}");
    assert_eq!(hosts.cloud_anchors().len(), 2);

    // Host b, configured the same, imports and plans but exports nothing, and says why; what
    // it would export is its run's changes.
    ldapmodify(lab, &user_ldif(&ou.dn, &ou.tag, "cid"));
    let standby = hosts.sync(STANDBY);
    assert_eq!(standby["staging"], true, "{standby:#}");
    let why = standby["standby"].as_str().unwrap();
    assert!(
        why.contains(&format!("host {ACTIVE} holds the export lease")),
        "{why}"
    );
    assert!(
        change_dns(&standby).contains(&ou.user_dn("cid")),
        "{standby:#}"
    );
    assert_eq!(hosts.cloud_anchors().len(), 2, "the standby exported");
    let (_, lease) = hosts.json(STANDBY, &["lease"]);
    assert_eq!(lease["holder"], ACTIVE, "{lease}");
    assert_eq!(lease["exports"], false);

    // Host a exports what b planned.
    let second = hosts.sync(ACTIVE);
    assert_eq!(second["standby"], Value::Null, "{second:#}");
    assert_eq!(hosts.cloud_anchors().len(), 3);

    // Promote b: a hands the lease over at its next renewal, and from then on b exports.
    let (status, promoted) = hosts.json(STANDBY, &["promote"]);
    assert_eq!(status, 0, "{promoted}");
    assert_eq!(
        promoted["holder"], ACTIVE,
        "a still holds it until it renews: {promoted}"
    );
    assert_eq!(promoted["wanted_by"], STANDBY);
    ldapmodify(lab, &user_ldif(&ou.dn, &ou.tag, "dee"));
    let handed = hosts.sync(ACTIVE);
    assert!(
        handed["standby"]
            .as_str()
            .is_some_and(|why| why.contains(&format!("host {STANDBY} holds"))),
        "{handed:#}"
    );
    assert_eq!(
        hosts.cloud_anchors().len(),
        3,
        "a exported after handing over"
    );
    let taken = hosts.sync(STANDBY);
    assert_eq!(taken["standby"], Value::Null, "{taken:#}");
    assert_eq!(hosts.cloud_anchors().len(), 4);

    // b steps down: a takes the lease at its next cycle; b stays a standby.
    let (status, _) = hosts.json(STANDBY, &["step-down"]);
    assert_eq!(status, 0);
    assert_eq!(hosts.sync(ACTIVE)["standby"], Value::Null);
    assert!(hosts.sync(STANDBY)["standby"].is_string());

    // The history says which host ran each run, on either host.
    let (_, runs) = hosts.json(STANDBY, &["runs"]);
    let ran_on: Vec<&str> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["host"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        ran_on,
        [STANDBY, ACTIVE, STANDBY, ACTIVE, ACTIVE, STANDBY, ACTIVE],
        "{runs:#}"
    );
    let anchors = hosts.cloud_anchors();
    assert_eq!(anchors.iter().collect::<BTreeSet<_>>().len(), anchors.len());
}

#[test]
fn the_standby_takes_over_from_an_active_host_killed_mid_export_without_duplicates_or_lost_deletes()
{
    let lab = lab();
    let users: Vec<String> = (0..120).map(|n| format!("f{n:03}")).collect();
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let ou = TestOu::create("fail", &names);
    let lease_secs = 8;
    let hosts = Hosts::new(
        &ou,
        lease_secs,
        EmulatorConfig {
            // Slow enough that the kill lands in the middle of the export.
            faults: serde_json::from_value(json!({"latency_ms": 40})).unwrap(),
            ..EmulatorConfig::default()
        },
    );
    // A user synced before, deleted in AD while the active host is down: its delete must not
    // be lost.
    let mut active = hosts
        .command(ACTIVE, &["sync"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while hosts.cloud_anchors().len() < 20 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "export never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // kill -9: no chance to give the lease up or mark its run.
    active.kill().unwrap();
    active.wait().unwrap();
    let killed_at = Instant::now();
    // Requests already sent still land (Graph, like the emulator, finishes a request whose
    // client went away): count once the cloud is still.
    let mut partial = hosts.cloud_anchors().len();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = hosts.cloud_anchors().len();
        if now == partial {
            break;
        }
        partial = now;
    }
    assert!(partial < 120, "the kill came too late ({partial} users)");
    ldapmodify(
        lab,
        &format!("dn: {}\nchangetype: delete\n\n", ou.user_dn("f000")),
    );

    // While the dead host's lease lasts, the standby only plans.
    let waiting = hosts.sync(STANDBY);
    assert!(waiting["standby"].is_string(), "{waiting:#}");
    assert_eq!(hosts.cloud_anchors().len(), partial);

    // Once it lapses, the standby's next cycle takes over and finishes the work.
    while killed_at.elapsed() < Duration::from_secs(lease_secs + 1) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let took_over = hosts.sync(STANDBY);
    assert_eq!(took_over["standby"], Value::Null, "{took_over:#}");
    let anchors = hosts.cloud_anchors();
    let unique: BTreeSet<&String> = anchors.iter().collect();
    assert_eq!(
        anchors.len(),
        119,
        "one cloud user per AD user, f000's deleted"
    );
    assert_eq!(unique.len(), 119);
    assert!(
        !hosts
            .installation
            .cloud_users()
            .iter()
            .any(|user| user["displayName"] == format!("f000 {}", ou.tag)),
        "the delete made while the active host was down was lost"
    );
    assert_eq!(hosts.installation.cloud_groups().len(), 1);

    // The killed host's run is not left running; the dead host, back, is a standby.
    let (_, runs) = hosts.json(STANDBY, &["runs"]);
    let killed = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|run| run["host"] == ACTIVE)
        .unwrap();
    assert_eq!(killed["status"], "cancelled", "{runs:#}");
    let back = hosts.sync(ACTIVE);
    assert!(back["standby"].is_string(), "{back:#}");
    assert_eq!(hosts.cloud_anchors().len(), 119);
}
