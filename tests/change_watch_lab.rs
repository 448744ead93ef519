//! "Seconds, not half-hours": `dirsync service` watches AD between its scheduled cycles and syncs
//! a change a few seconds after it is made; a burst of changes is one cycle (or two), not one per
//! change. Against the Samba AD lab and the tenant emulator, with the service as a real process.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::installation::*;
use common::lab;
use dirsync::config::{Config, SyncOptions};
use serde_json::Value;

fn titles_arrived(
    installation: &Installation,
    ou: &TestOu,
    users: &[String],
    title: &str,
) -> usize {
    let cloud = installation.cloud_users();
    users
        .iter()
        .filter(|user| {
            user_with_upn(&cloud, &ou.upn(user)).is_some_and(|found| found["jobTitle"] == title)
        })
        .count()
}

fn retitle(ou: &TestOu, users: &[String], title: &str) {
    let ldif: String = users
        .iter()
        .map(|user| {
            format!(
                "dn: {}\nchangetype: modify\nreplace: title\ntitle: {title}\n\n",
                ou.user_dn(user)
            )
        })
        .collect();
    ldapmodify(lab(), &ldif);
}

fn runs(installation: &Installation) -> usize {
    let listed: Value = serde_json::from_str(
        &installation
            .dirsync(&["runs", "--json", "--limit", "1000"])
            .stdout,
    )
    .unwrap();
    listed["runs"].as_array().unwrap().len()
}

#[test]
fn the_service_syncs_a_change_in_seconds_and_a_burst_in_one_or_two_runs() {
    let users: Vec<String> = (0..200).map(|n| format!("w{n:03}")).collect();
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let ou = TestOu::create("watch", &names);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let mut config = Config::load(&installation.config_path()).unwrap();
    config.options.watch_secs = 2;
    config.save(&installation.config_path()).unwrap();
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");

    // The first sync is done, so the next scheduled one is half an hour away.
    let service = installation
        .command(&["service"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));

    let one = vec![users[0].clone()];
    retitle(&ou, &one, "Watched");
    let changed = Instant::now();
    let deadline = changed + Duration::from_secs(60);
    while titles_arrived(&installation, &ou, &one, "Watched") < 1 {
        assert!(
            Instant::now() < deadline,
            "the change never reached the cloud"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "one changed title reached the cloud {:.1} s after the change (target under 10 s)",
        changed.elapsed().as_secs_f64()
    );

    let before = runs(&installation);
    retitle(&ou, &users, "Burst");
    let changed = Instant::now();
    let deadline = changed + Duration::from_secs(120);
    while titles_arrived(&installation, &ou, &users, "Burst") < users.len() {
        assert!(
            Instant::now() < deadline,
            "the burst never fully reached the cloud"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "200 changed titles reached the cloud {:.1} s after the burst",
        changed.elapsed().as_secs_f64()
    );
    // Let a cycle that reads the burst's tail finish before counting.
    std::thread::sleep(Duration::from_secs(4));
    let burst_runs = runs(&installation) - before;

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &service.id().to_string()])
        .status();
    let output = service.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    installation.assert_no_secret(&stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("change(s) in AD; syncing now"), "{stderr}");
    assert!(
        (1..=2).contains(&burst_runs),
        "the burst of 200 changes made {burst_runs} runs:\n{stderr}"
    );
}
