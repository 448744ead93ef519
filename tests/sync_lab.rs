//! The sync cycle end to end: the real `dirsync` binary against the Samba AD lab and the tenant
//! emulator over real sockets. Each test gets its own home, its own tenant (an emulator on a free
//! port) and, when it changes the directory, its own OU under OU=Staging; the service account is
//! set up once per test binary, the way setup makes it.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::installation::*;
use common::lab;
use dirsync::config::{Config, SyncOptions};
use dirsync::run_lock::RunLock;
use dirsync::secret::Secret;
use dirsync::store::Dialect;
use dirsync::tls::TlsTrust;
use serde_json::{Value, json};
use tenant_emulator::EmulatorConfig;

#[test]
fn a_first_sync_creates_the_scope_and_reports_what_it_cannot() {
    let lab = lab();
    let corp = corp();
    let installation = Installation::new(&[corp.as_str()], &[], SyncOptions::default());
    let tenant = &installation.tenant;
    // Already in the cloud before dirsync: Claire (same primary SMTP, no immutableId: a soft
    // match) and Damien's address on a user another directory synced (InvalidSoftMatch).
    let info = tenant.info.clone();
    let client = dirsync::cloud::GraphClient::new(
        &dirsync::cloud::CloudEndpoints::parse(&info.authority, &info.graph).unwrap(),
        &info.tenant_id,
        dirsync::cloud::auth::Credentials::ClientSecret {
            client_id: info.client_id.clone(),
            secret: Secret::new(info.client_secret.clone()),
        },
        &TlsTrust::SystemRoots,
        dirsync::cloud::FlowPolicy::default(),
    )
    .unwrap();
    let (claire_id, _) = runtime().block_on(async {
        let claire = client
            .create(
                dirsync::cloud::ObjectKind::User,
                &json!({
                    "accountEnabled": true, "displayName": "Claire (cloud)",
                    "mailNickname": "claire.cloud", "userPrincipalName": "claire.cloud@contoso.test",
                    "passwordProfile": {"password": "Cloud-Only-Pa55!"},
                    "mail": "claire.dubois@contoso.test",
                }),
            )
            .await
            .unwrap();
        let other = client
            .create(
                dirsync::cloud::ObjectKind::User,
                &json!({
                    "accountEnabled": true, "displayName": "Damien elsewhere",
                    "mailNickname": "damien.other", "userPrincipalName": "damien.other@contoso.test",
                    "passwordProfile": {"password": "Cloud-Only-Pa55!"},
                    "mail": "damien.moreau@contoso.test",
                    "onPremisesImmutableId": "b3RoZXItZm9yZXN0LWd1aWQ=",
                }),
            )
            .await
            .unwrap();
        (claire.id, other.id)
    });

    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 3, "object errors exit 3: {report:#}");
    assert_eq!(report["run"]["status"], "completed-with-errors");
    assert_eq!(report["run"]["mode"], "full");

    let users = installation.cloud_users();
    // Claire was joined, not duplicated, and now carries her anchor.
    let claires: Vec<&Value> = users
        .iter()
        .filter(|user| {
            user["id"] == claire_id.as_str() || user["mail"] == "claire.dubois@contoso.test"
        })
        .collect();
    assert_eq!(claires.len(), 1, "{claires:#?}");
    assert!(claires[0]["onPremisesImmutableId"].as_str().is_some());
    assert_eq!(
        claires[0]["userPrincipalName"],
        "claire.dubois@contoso.test"
    );
    // Damien is an InvalidSoftMatch.
    let damien = errors_of(&report, "CN=Damien Moreau");
    assert_eq!(damien.len(), 1, "{report:#}");
    assert_eq!(damien[0]["error_type"], "invalid-soft-match");
    assert!(
        damien[0]["hint"]
            .as_str()
            .unwrap()
            .contains("InvalidSoftMatch")
    );
    // The '#' user and the two users sharing an address are errors with hints.
    let hash = errors_of(&report, "hash.user");
    assert!(!hash.is_empty(), "{report:#}");
    assert!(
        hash.iter()
            .any(|error| error["hint"].as_str().unwrap().contains("'#'"))
    );
    for shared in ["CN=Emma Laurent", "CN=Henry Walker"] {
        let errors = errors_of(&report, shared);
        assert!(
            errors.iter().any(|error| error["error_type"] == "duplicate"
                && error["server_message"]
                    .as_str()
                    .unwrap()
                    .contains("shared@contoso.test")),
            "{shared}: {errors:#?}"
        );
    }
    // The unverified-suffix user lands on the initial domain, with a warning.
    let fabrikam = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|warning| {
            warning["value"]
                .as_str()
                .unwrap_or_default()
                .ends_with("@fabrikam.invalid")
        })
        .unwrap_or_else(|| panic!("no unverified-suffix warning: {report:#}"));
    let nickname = fabrikam["value"]
        .as_str()
        .unwrap()
        .split('@')
        .next()
        .unwrap();
    assert!(
        user_with_upn(&users, &format!("{nickname}@{INITIAL_DOMAIN}")).is_some(),
        "{nickname} is not on the initial domain"
    );

    // Every in-scope user arrived but the ones in error; nothing outside the scope, no system
    // account.
    let failed: BTreeSet<String> = ["hash.user", "damien.moreau", "emma.laurent", "henry.walker"]
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
    let synced: BTreeSet<String> = users
        .iter()
        .filter(|user| user["onPremisesImmutableId"].is_string())
        .filter(|user| user["id"] != "b3RoZXItZm9yZXN0LWd1aWQ=")
        .filter_map(|user| user["userPrincipalName"].as_str())
        .map(|upn| upn.split('@').next().unwrap().to_owned())
        .filter(|name| name != "damien.other")
        .collect();
    let expected: BTreeSet<String> = corp_user_upns(lab)
        .iter()
        .map(|upn| upn.split('@').next().unwrap().to_owned())
        .filter(|name| !failed.contains(name))
        .collect();
    assert_eq!(synced, expected);
    assert!(
        users.iter().all(|user| {
            let upn = user["userPrincipalName"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase();
            !upn.starts_with("msol_")
                && !upn.starts_with("krbtgt")
                && !upn.starts_with("administrator")
        }),
        "a system account was synced"
    );
    // Groups of OU=Groups arrived with their members.
    assert!(!installation.cloud_groups().is_empty());

    // `runs show` lists every change the run made.
    let shown = installation.runs_show(run_id(&report), None);
    let adds = shown["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|change| change["change_kind"] == "add")
        .count();
    assert_eq!(
        adds as u64,
        step(&report, "cloud-export")["adds"].as_u64().unwrap()
    );
    assert!(adds > 0);
    let shown_errors = installation.runs_show(run_id(&report), Some("errors"));
    assert_eq!(
        shown_errors["errors"].as_array().unwrap().len(),
        report["errors"].as_array().unwrap().len()
    );

    // Nothing changed: the next run writes nothing and reports the same errors, retried.
    let (status, again) = installation.sync(&[]);
    assert_eq!(status, 3, "{again:#}");
    assert_eq!(again["run"]["mode"], "delta");
    let export = step(&again, "cloud-export");
    assert_eq!(export["adds"], 0, "{again:#}");
    assert_eq!(export["updates"], 0, "{again:#}");
    let hash_again = errors_of(&again, "hash.user");
    assert!(
        hash_again.iter().all(|error| error["retry_count"] == 1),
        "{hash_again:#?}"
    );
    assert_eq!(
        installation.cloud_users().len(),
        users.len(),
        "no duplicates"
    );

    // No secret in what dirsync keeps on disk (state.db: unless the state is in PostgreSQL).
    for file in ["config.toml", "state.db"] {
        let path = installation.home.path().join(file);
        if file == "state.db" && installation.store().dialect() != Dialect::Sqlite {
            continue;
        }
        let bytes = std::fs::read(path).unwrap();
        installation.assert_no_secret(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn modifies_moves_out_of_scope_and_deletes_reach_the_cloud() {
    let lab = lab();
    let ou = TestOu::create("mod", &["ann", "bob", "cid", "dan"]);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let (status, first) = installation.sync(&[]);
    assert_eq!(status, 0, "{first:#}");
    assert_eq!(step(&first, "cloud-export")["adds"], 5, "{first:#}");
    let group = installation
        .cloud_groups()
        .into_iter()
        .find(|group| group["displayName"] == format!("grp-{}", ou.tag))
        .unwrap();
    let group_id = group["id"].as_str().unwrap().to_owned();
    assert_eq!(
        installation.member_names(&group_id),
        BTreeSet::from([ou.upn("ann"), ou.upn("bob")])
    );

    // A modify is an update of just that attribute.
    ldapmodify(
        lab,
        &format!(
            "dn: {}\nchangetype: modify\nreplace: title\ntitle: Architect\n-\n",
            ou.user_dn("ann")
        ),
    );
    let (status, modified) = installation.sync(&[]);
    assert_eq!(status, 0, "{modified:#}");
    let changes = modified["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{modified:#}");
    assert_eq!(changes[0]["change_kind"], "update");
    assert_eq!(
        changes[0]["attributes"],
        json!([{"name": "jobTitle", "old": "Engineer", "new": "Architect"}])
    );
    let users = installation.cloud_users();
    assert_eq!(
        user_with_upn(&users, &ou.upn("ann")).unwrap()["jobTitle"],
        "Architect"
    );

    // A move out of scope and a delete are cloud deletes; membership follows.
    let outside = TestOu::create("out", &[]);
    ldapmodify(
        lab,
        &format!(
            "dn: {}\nchangetype: modrdn\nnewrdn: CN=bob\ndeleteoldrdn: 1\nnewsuperior: {}\n\n",
            ou.user_dn("bob"),
            outside.dn
        ),
    );
    ldapmodify(
        lab,
        &format!("dn: {}\nchangetype: delete\n\n", ou.user_dn("cid")),
    );
    ldapmodify(
        lab,
        &format!(
            "dn: CN=grp-{},{}\nchangetype: modify\nadd: member\nmember: {}\n-\n",
            ou.tag,
            ou.dn,
            ou.user_dn("dan")
        ),
    );
    let (status, deleted) = installation.sync(&[]);
    assert_eq!(status, 0, "{deleted:#}");
    assert_eq!(step(&deleted, "cloud-export")["deletes"], 2, "{deleted:#}");
    let users = installation.cloud_users();
    assert!(user_with_upn(&users, &ou.upn("bob")).is_none());
    assert!(user_with_upn(&users, &ou.upn("cid")).is_none());
    assert!(user_with_upn(&users, &ou.upn("ann")).is_some());
    assert_eq!(
        installation.member_names(&group_id),
        BTreeSet::from([ou.upn("ann"), ou.upn("dan")])
    );
}

#[test]
fn a_preview_changes_nothing_in_the_cloud_and_says_what_would() {
    let ou = TestOu::create("pre", &["eve", "fay"]);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let before = installation.cloud_users().len();
    let (status, preview) = installation.sync(&["--preview"]);
    assert_eq!(status, 0, "{preview:#}");
    assert_eq!(preview["preview"], true);
    assert_eq!(preview["run"]["mode"], "preview");
    let adds: Vec<&str> = preview["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|change| change["change_kind"] == "add")
        .map(|change| change["dn"].as_str().unwrap())
        .collect();
    assert_eq!(adds.len(), 3, "{preview:#}");
    assert_eq!(
        installation.cloud_users().len(),
        before,
        "a preview wrote to the cloud"
    );
    assert!(installation.cloud_groups().is_empty());
    // The real run then makes exactly those changes.
    let (status, real) = installation.sync(&[]);
    assert_eq!(status, 0, "{real:#}");
    assert_eq!(step(&real, "cloud-export")["adds"], 3, "{real:#}");
}

#[test]
fn more_deletes_than_the_threshold_stop_the_run_deletes() {
    let users: Vec<String> = (0..600).map(|n| format!("u{n:03}")).collect();
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let ou = TestOu::create("thr", &names);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let (status, first) = installation.sync(&[]);
    assert_eq!(status, 0, "{}", first["errors"]);
    assert_eq!(step(&first, "cloud-export")["adds"], 601);

    // The scope moves to another (empty) OU: 601 deletes, more than the default threshold of
    // 500. A changed scope makes the next run a full import, which finds them gone.
    let elsewhere = TestOu::create("thr-elsewhere", &[]);
    let before = installation.cloud_users().len();
    let mut config = Config::load(&installation.config_path()).unwrap();
    config.scope.included = vec![elsewhere.dn.clone()];
    config.save(&installation.config_path()).unwrap();
    let run = installation.dirsync(&["sync"]);
    assert_eq!(run.status, 4, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("deletion threshold"), "{}", run.stdout);
    assert!(
        run.stdout.contains("deletion_threshold"),
        "says how to proceed: {}",
        run.stdout
    );
    assert_eq!(
        installation.cloud_users().len(),
        before,
        "no delete was made"
    );
    let runs = installation.dirsync(&["runs", "--json"]);
    let runs: Value = serde_json::from_str(&runs.stdout).unwrap();
    assert_eq!(runs["runs"][0]["status"], "stopped-deletion-threshold");
    assert!(
        run.stdout.contains("--confirm-deletes 601"),
        "names the way on: {}",
        run.stdout
    );

    // The run kept exactly what it held back, with the step that decided it.
    let stopped = runs["runs"][0]["id"].as_i64().unwrap();
    let withheld = installation.runs_show(stopped, Some("deletes"));
    let withheld = withheld["changes"].as_array().unwrap();
    assert_eq!(withheld.len(), 601);
    assert!(
        withheld
            .iter()
            .all(|change| change["step"] == "synchronization"
                && change["dn"].as_str().unwrap().ends_with(&ou.dn)),
        "{withheld:?}"
    );

    // Confirming fewer deletes than the run would make stops it again; the right count lets
    // exactly those go, once.
    let short = installation.dirsync(&["sync", "--confirm-deletes", "600"]);
    assert_eq!(short.status, 4, "{}\n{}", short.stdout, short.stderr);
    assert_eq!(installation.cloud_users().len(), before);
    let (status, confirmed) = installation.sync(&["--confirm-deletes", "601"]);
    assert_eq!(status, 0, "{confirmed:#}");
    assert_eq!(step(&confirmed, "cloud-export")["deletes"], 601);
    let withheld_users = withheld
        .iter()
        .filter(|change| change["object_type"] == "user")
        .count();
    assert_eq!(installation.cloud_users().len(), before - withheld_users);
}

#[test]
fn a_sync_killed_during_export_converges_without_duplicates() {
    let users: Vec<String> = (0..150).map(|n| format!("k{n:03}")).collect();
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let ou = TestOu::create("kill", &names);
    let installation = Installation::with_tenant(
        &[ou.dn.as_str()],
        &[],
        SyncOptions::default(),
        EmulatorConfig {
            // Slow enough that the kill lands in the middle of the export.
            faults: serde_json::from_value(json!({"latency_ms": 40})).unwrap(),
            ..EmulatorConfig::default()
        },
    );
    let mut child = installation
        .command(&["sync"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while installation.cloud_users().len() < 20 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "export never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = installation.cloud_users().len();
    assert!(
        partial < 150,
        "the kill came too late to test anything ({partial} users)"
    );

    let (status, rerun) = installation.sync(&[]);
    assert_eq!(status, 0, "{rerun:#}");
    let users = installation.cloud_users();
    let anchors: Vec<&str> = users
        .iter()
        .filter_map(|user| user["onPremisesImmutableId"].as_str())
        .collect();
    let unique_anchors: BTreeSet<&str> = anchors.iter().copied().collect();
    assert_eq!(anchors.len(), 150, "{partial} before the kill");
    assert_eq!(unique_anchors.len(), 150);
    assert_eq!(installation.cloud_groups().len(), 1);
    // And the run killed mid-way is recorded as cancelled, not left running.
    let runs = installation.dirsync(&["runs", "--json"]);
    let runs: Value = serde_json::from_str(&runs.stdout).unwrap();
    assert_eq!(runs["runs"][1]["status"], "cancelled", "{runs:#}");
}

#[test]
fn a_second_sync_while_one_runs_says_a_run_is_in_progress() {
    let ou = TestOu::create("lock", &["gil"]);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let lock = RunLock::acquire(&installation.home.path().join("state.db")).unwrap();
    let run = installation.dirsync(&["sync"]);
    assert_eq!(run.status, 1);
    assert!(run.stderr.contains("in progress"), "{}", run.stderr);
    drop(lock);
    assert_eq!(installation.dirsync(&["sync"]).status, 0);
}

#[test]
fn a_cloud_that_throttles_and_fails_for_a_while_slows_the_run_but_does_not_fail_it() {
    let ou = TestOu::create("slow", &["hal", "ida", "jon"]);
    let installation = Installation::with_tenant(
        &[ou.dn.as_str()],
        &[],
        SyncOptions::default(),
        EmulatorConfig {
            faults: serde_json::from_value(json!({"throttle_for_secs": 3, "fail_every": 3}))
                .unwrap(),
            ..EmulatorConfig::default()
        },
    );
    let started = Instant::now();
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report:#}");
    assert_eq!(step(&report, "cloud-export")["adds"], 4);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the faults were not in effect"
    );
}

#[test]
fn the_service_runs_cycles_and_stops_cleanly_on_sigterm() {
    let ou = TestOu::create("svc", &["kim"]);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let mut child = installation
        .command(&["service"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let runs = installation.dirsync(&["runs", "--json"]);
        let runs: Value = serde_json::from_str(&runs.stdout).unwrap_or(Value::Null);
        if runs["runs"][0]["status"] == "success" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the service ran no cycle: {runs}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(user_with_upn(&installation.cloud_users(), &ou.upn("kim")).is_some());
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let stopped = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "the service did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("stopped"), "{stderr}");
    installation.assert_no_secret(&stderr);
}

#[test]
fn staging_mode_imports_and_plans_but_never_exports() {
    let ou = TestOu::create("stg", &["lea", "max"]);
    let installation = Installation::new(
        &[ou.dn.as_str()],
        &[],
        SyncOptions {
            staging_mode: true,
            ..SyncOptions::default()
        },
    );
    let before = installation.cloud_users().len();
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report:#}");
    assert_eq!(report["staging"], true);
    assert_eq!(installation.cloud_users().len(), before);
    assert!(installation.cloud_groups().is_empty());
    assert!(
        report["run"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|step| step["step"] != "cloud-export"),
        "{report:#}"
    );
    assert_eq!(step(&report, "synchronization")["adds"], 3);
    // Leaving staging mode exports what staging planned.
    let mut config = Config::load(&installation.config_path()).unwrap();
    config.options.staging_mode = false;
    config.save(&installation.config_path()).unwrap();
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report:#}");
    assert_eq!(step(&report, "cloud-export")["adds"], 3);
}

#[test]
fn a_full_import_deletes_what_ad_no_longer_has() {
    let lab = lab();
    let ou = TestOu::create("rec", &["ned", "oz"]);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let (status, _) = installation.sync(&[]);
    assert_eq!(status, 0);
    // Forget the change-tracking position, as a reinstalled DirSync would have, so the delete
    // below is never read as a change: only reconciliation can find it.
    let store = installation.store();
    store
        .remove_cursor(dirsync::store::sync_state::DIRSYNC_CURSOR)
        .unwrap();
    drop(store);
    ldapmodify(
        lab,
        &format!("dn: {}\nchangetype: delete\n\n", ou.user_dn("oz")),
    );
    let (status, report) = installation.sync(&["--full"]);
    assert_eq!(status, 0, "{report:#}");
    assert_eq!(report["run"]["mode"], "full");
    assert_eq!(
        step(&report, "directory-import")["deletes"],
        1,
        "{report:#}"
    );
    assert_eq!(step(&report, "cloud-export")["deletes"], 1, "{report:#}");
    assert!(user_with_upn(&installation.cloud_users(), &ou.upn("oz")).is_none());
    assert!(user_with_upn(&installation.cloud_users(), &ou.upn("ned")).is_some());
}

#[test]
fn a_domain_controller_that_is_down_fails_the_run_with_a_record_and_loses_nothing() {
    let ou = TestOu::create("down", &["pia"]);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let mut config = Config::load(&installation.config_path()).unwrap();
    let working = config.directory.server.clone();
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    config.directory.server = format!("ldaps://127.0.0.1:{port}");
    config.save(&installation.config_path()).unwrap();
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 1, "{report:#}");
    assert_eq!(report["run"]["status"], "failed");
    let failure = report["failure"].as_str().unwrap();
    assert!(failure.contains(&port.to_string()), "{failure}");
    assert!(
        report["errors"][0]["hint"]
            .as_str()
            .unwrap()
            .contains("next run"),
        "{report:#}"
    );

    // Back up: the next run does the whole first sync.
    config.directory.server = working;
    config.save(&installation.config_path()).unwrap();
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report:#}");
    assert!(user_with_upn(&installation.cloud_users(), &ou.upn("pia")).is_some());
}
