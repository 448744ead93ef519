//! Sync integrity against Graph as it behaves (README, "Joining"): writes whose answer is lost
//! after Graph carried them out, a process killed between a create and the kept link, and cloud
//! groups dirsync did not make. The real `dirsync` binary against the Samba AD lab and the tenant
//! emulator with its apply-then-lose faults on.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::installation::*;
use common::lab;
use dirsync::cloud::{GraphRequest, Method};
use dirsync::config::SyncOptions;
use serde_json::{Value, json};
use tenant_emulator::{EmulatorConfig, FaultSettings};

/// A fresh OU with `users` users and `groups` groups of two members each.
fn populated_ou(prefix: &str, users: usize, groups: usize) -> (TestOu, Vec<String>) {
    let names: Vec<String> = (0..users).map(|n| format!("u{n:03}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let ou = TestOu::create(prefix, &refs);
    let mut ldif = String::new();
    for n in 0..groups {
        ldif.push_str(&format!(
            "dn: CN=team{n}-{tag},{dn}\nchangetype: add\nobjectClass: group\nsAMAccountName: team{n}-{tag}\ngroupType: -2147483646\nmember: CN={a},{dn}\nmember: CN={b},{dn}\n\n",
            tag = ou.tag,
            dn = ou.dn,
            a = names[n % users],
            b = names[(n + 1) % users],
        ));
    }
    ldapmodify(lab(), &ldif);
    (ou, names)
}

/// How many cloud objects each on-premises object has: users by immutableId, groups by
/// mailNickname.
fn copies(installation: &Installation) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let mut users = BTreeMap::new();
    for user in installation.cloud_users() {
        if let Some(anchor) = user["onPremisesImmutableId"].as_str() {
            *users.entry(anchor.to_owned()).or_default() += 1;
        }
    }
    let mut groups = BTreeMap::new();
    for group in installation.cloud_groups() {
        if let Some(nickname) = group["mailNickname"].as_str() {
            *groups.entry(nickname.to_lowercase()).or_default() += 1;
        }
    }
    (users, groups)
}

fn sync_until_clean(installation: &Installation, runs: usize) -> Value {
    let mut last = Value::Null;
    for _ in 0..runs {
        let (status, report) = installation.sync(&[]);
        last = report;
        if status == 0 && last["errors"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
    }
    last
}

#[test]
fn writes_carried_out_whose_answers_are_lost_never_make_a_second_object() {
    let (ou, users) = populated_ou("lose", 60, 8);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    // Every 4th HTTP exchange is carried out and its answer lost (a `$batch` with all its
    // creates), and every 5th successful write answers 503 though it was made. New objects
    // cannot be referenced for a second and a half (replication), and advanced queries (the
    // immutableId lookup) miss them for a minute (the index lags).
    let faults = FaultSettings {
        lose_answer_every: 4,
        fail_after_write_every: 5,
        object_replication_ms: 1500,
        index_lag_ms: 60_000,
        ..FaultSettings::default()
    };
    installation.tenant.set_faults(Some(&faults)).unwrap();
    let first = sync_until_clean(&installation, 4);
    let stats = installation.tenant.stats();
    assert!(stats.dropped > 0 && stats.failed_5xx > 0, "{stats:?}");
    installation.tenant.set_faults(None).unwrap();
    let last = sync_until_clean(&installation, 2);
    assert!(
        last["errors"].as_array().unwrap().is_empty(),
        "{first:#}\n{last:#}"
    );

    let (user_copies, group_copies) = copies(&installation);
    assert_eq!(user_copies.len(), users.len(), "{user_copies:?}");
    assert!(user_copies.values().all(|&n| n == 1), "{user_copies:?}");
    // The TestOu's own group and the eight teams, each once, each owned by the sync app.
    assert_eq!(group_copies.len(), 9, "{group_copies:?}");
    assert!(group_copies.values().all(|&n| n == 1), "{group_copies:?}");
    let sync_app = sync_app_id(&installation);
    for group in installation.cloud_groups() {
        assert_eq!(group["owners"], json!([sync_app]), "{group:#}");
    }
    // The runs' records say which creates lost their answers and how each was settled.
    let last_run = run_id(&last);
    let records: String = (1..=last_run)
        .map(|run| installation.runs_show(run, Some("adds")).to_string())
        .collect();
    assert!(
        records.contains("(answer lost)"),
        "no run recorded a lost answer"
    );
    // Members written right after their groups were made arrived, after replication.
    assert_teams_have_their_members(&installation, &ou, &users, 8);
}

#[test]
fn a_create_made_before_a_kill_is_deleted_when_its_ad_object_goes_meanwhile() {
    let (ou, users) = populated_ou("orphan", 120, 1);
    let installation = Installation::with_tenant(
        &[ou.dn.as_str()],
        &[],
        SyncOptions::default(),
        EmulatorConfig {
            // Slow enough that the kill lands while the creates are going out.
            faults: serde_json::from_value(json!({"latency_ms": 30})).unwrap(),
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
    while synced_users(&installation) < 10 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "export never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // SIGKILL: no chance to keep the links of what was just made.
    child.kill().unwrap();
    child.wait().unwrap();
    installation.tenant.set_faults(None).unwrap();
    let made = synced_users(&installation);
    assert!(
        made > 0 && made < users.len(),
        "{made} made before the kill"
    );

    // Every AD object of the OU goes before the next run.
    let mut ldif = format!("dn: CN=team0-{},{}\nchangetype: delete\n\n", ou.tag, ou.dn);
    ldif.push_str(&format!(
        "dn: CN=grp-{},{}\nchangetype: delete\n\n",
        ou.tag, ou.dn
    ));
    for user in &users {
        ldif.push_str(&format!("dn: {}\nchangetype: delete\n\n", ou.user_dn(user)));
    }
    ldapmodify(lab(), &ldif);
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report:#}");
    // Nothing the killed run made is left behind.
    assert_eq!(synced_users(&installation), 0);
    assert_eq!(installation.cloud_groups(), Vec::<Value>::new());
    assert!(
        step(&report, "cloud-export")["deletes"].as_u64().unwrap() >= made as u64,
        "{report:#}"
    );
}

#[test]
fn cloud_groups_dirsync_did_not_make_are_never_joined_changed_or_deleted() {
    let (ou, _) = populated_ou("alien", 4, 1);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let graph = installation.graph();
    let create = |body: Value| {
        let request = GraphRequest::new(Method::Post, &["groups"]).with_body(body);
        runtime().block_on(graph.send(&request)).unwrap().unwrap()
    };
    // A cloud-only security group with the TestOu group's nickname, and a Microsoft 365 group
    // with the team's.
    let team = create(json!({
        "displayName": "Cloud team",
        "mailNickname": format!("grp-{}", ou.tag),
        "securityEnabled": true,
        "mailEnabled": false,
        "description": "made in the portal",
    }));
    let unified = create(json!({
        "displayName": "Team in Microsoft 365",
        "mailNickname": format!("team0-{}", ou.tag),
        "groupTypes": ["Unified"],
        "securityEnabled": false,
        "mailEnabled": true,
    }));
    let before: BTreeSet<String> = installation
        .cloud_groups()
        .iter()
        .map(Value::to_string)
        .collect();

    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 3, "the run ends with object errors: {report:#}");
    let after: BTreeSet<String> = installation
        .cloud_groups()
        .iter()
        .map(Value::to_string)
        .collect();
    assert_eq!(before, after, "the cloud groups were changed");
    for (cloud, kind) in [(&team, "group"), (&unified, "Microsoft 365 group")] {
        let id = cloud["id"].as_str().unwrap();
        let error = report["errors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|error| {
                error["server_message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(id)
            })
            .unwrap_or_else(|| panic!("no error names {id}: {report:#}"));
        assert_eq!(error["error_type"], "group-not-ours", "{error:#}");
        let message = error["server_message"].as_str().unwrap();
        assert!(message.contains(&format!("cloud {kind} ")), "{message}");
        assert!(message.contains("dirsync did not create it"), "{message}");
    }
    // The users are synced as usual.
    assert_eq!(copies(&installation).0.len(), 4);

    // Gone from AD: the cloud groups stay.
    ldapmodify(
        lab(),
        &format!(
            "dn: CN=grp-{tag},{dn}\nchangetype: delete\n\ndn: CN=team0-{tag},{dn}\nchangetype: delete\n\n",
            tag = ou.tag,
            dn = ou.dn
        ),
    );
    let (status, report) = installation.sync(&["--full"]);
    assert_eq!(status, 0, "{report:#}");
    assert_eq!(installation.cloud_groups().len(), 2);
}

/// Each of the first `teams` teams of `populated_ou` has its two members in the cloud.
fn assert_teams_have_their_members(
    installation: &Installation,
    ou: &TestOu,
    users: &[String],
    teams: usize,
) {
    for n in 0..teams {
        let nickname = format!("team{n}-{}", ou.tag);
        let group = installation
            .cloud_groups()
            .into_iter()
            .find(|group| group["mailNickname"] == nickname.as_str())
            .unwrap_or_else(|| panic!("no cloud group {nickname}"));
        assert_eq!(
            installation.member_names(group["id"].as_str().unwrap()),
            BTreeSet::from([ou.upn(&users[n]), ou.upn(&users[n + 1])]),
            "{nickname}"
        );
    }
}

/// Cloud users with an immutableId (the tenant's own administrator has none).
fn synced_users(installation: &Installation) -> usize {
    installation
        .cloud_users()
        .iter()
        .filter(|user| user["onPremisesImmutableId"].is_string())
        .count()
}

fn sync_app_id(installation: &Installation) -> String {
    let config = dirsync::config::Config::load(&installation.config_path()).unwrap();
    config.cloud.service_principal_id.unwrap()
}

#[test]
fn members_and_managers_of_new_objects_arrive_in_the_same_run_despite_replication() {
    let (ou, users) = populated_ou("replica", 6, 3);
    // A manager for the first user: a reference to a user made in the same run.
    ldapmodify(
        lab(),
        &format!(
            "dn: {}\nchangetype: modify\nreplace: manager\nmanager: {}\n-\n",
            ou.user_dn(&users[0]),
            ou.user_dn(&users[1])
        ),
    );
    let installation = Installation::with_tenant(
        &[ou.dn.as_str()],
        &[],
        SyncOptions::default(),
        EmulatorConfig {
            // New users and groups answer 404 to `$ref` writes for 2 s.
            faults: serde_json::from_value(json!({"object_replication_ms": 2000})).unwrap(),
            ..EmulatorConfig::default()
        },
    );
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report:#}");
    assert!(
        report["errors"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
    assert_teams_have_their_members(&installation, &ou, &users, 3);
    let graph = installation.graph();
    let cloud_users = installation.cloud_users();
    let first = user_with_upn(&cloud_users, &ou.upn(&users[0])).unwrap();
    let manager = runtime()
        .block_on(graph.send(&GraphRequest::get(&[
            "users",
            first["id"].as_str().unwrap(),
            "manager",
        ])))
        .unwrap()
        .unwrap();
    assert_eq!(manager["userPrincipalName"], ou.upn(&users[1]).as_str());
}

#[test]
fn a_cloud_administrator_with_an_ad_users_address_is_never_matched() {
    let (ou, users) = populated_ou("admin", 2, 0);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let graph = installation.graph();
    // A cloud-only Global Administrator whose address is the first AD user's, and a cloud-only
    // user without a role who has the second's: only the second is matched.
    let create = |user: &str, nickname: &str| {
        let address = ou.upn(user);
        let request = GraphRequest::new(Method::Post, &["users"]).with_body(json!({
            "accountEnabled": true,
            "displayName": format!("cloud {user}"),
            "mailNickname": nickname,
            "userPrincipalName": format!("{nickname}@contoso.test"),
            "mail": address,
            "passwordProfile": {"password": "Cloud-Only-Pa55word!", "forceChangePasswordNextSignIn": false},
        }));
        runtime().block_on(graph.send(&request)).unwrap().unwrap()
    };
    let admin = create(&users[0], &format!("cloudadmin-{}", ou.tag));
    let plain = create(&users[1], &format!("cloudplain-{}", ou.tag));
    let admin_id = admin["id"].as_str().unwrap();
    installation
        .tenant
        .assign_role(admin_id, "62e90394-69f5-4237-9190-012177145e10")
        .unwrap();

    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 3, "{report:#}");
    let errors = errors_of(&report, &format!("CN={},", users[0]));
    assert_eq!(errors.len(), 1, "{report:#}");
    assert_eq!(errors[0]["error_type"], "privileged-cloud-account");
    let message = errors[0]["server_message"].as_str().unwrap();
    assert!(message.contains("Global Administrator"), "{message}");
    assert!(message.contains(admin_id), "{message}");
    assert!(
        errors[0]["hint"]
            .as_str()
            .unwrap()
            .contains("remove the roles"),
        "{:#}",
        errors[0]
    );
    // The administrator is untouched: no immutableId, its own name.
    let cloud_users = installation.cloud_users();
    let admin_now = cloud_users
        .iter()
        .find(|user| user["id"] == admin_id)
        .unwrap();
    assert!(
        admin_now["onPremisesImmutableId"].is_null(),
        "{admin_now:#}"
    );
    assert_eq!(
        admin_now["displayName"],
        format!("cloud {}", users[0]).as_str()
    );
    // The plain cloud user was matched (soft match stamps the immutableId).
    let plain_now = cloud_users
        .iter()
        .find(|user| user["id"] == plain["id"])
        .unwrap();
    assert!(
        plain_now["onPremisesImmutableId"].is_string(),
        "{plain_now:#}"
    );
}

#[test]
fn a_property_changed_in_the_cloud_is_reported_as_drift_and_restored() {
    let (ou, users) = populated_ou("drift", 2, 0);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let (status, first) = installation.sync(&[]);
    assert_eq!(status, 0, "{first:#}");
    let graph = installation.graph();
    let cloud_id = |upn: &str| {
        user_with_upn(&installation.cloud_users(), upn).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let ann = cloud_id(&ou.upn(&users[0]));
    let edit = |title: &str| {
        let request = GraphRequest::new(Method::Patch, &["users", &ann])
            .with_body(json!({"jobTitle": title}));
        runtime().block_on(graph.send(&request)).unwrap();
    };
    let title = || {
        user_with_upn(&installation.cloud_users(), &ou.upn(&users[0])).unwrap()["jobTitle"].clone()
    };

    // Edited in the portal; a delta run the same day does not look.
    edit("CEO");
    let (status, delta) = installation.sync(&[]);
    assert_eq!(status, 0, "{delta:#}");
    assert_eq!(delta["drifted"], 0, "{delta:#}");
    assert_eq!(title(), "CEO");

    // A full cycle finds it, says so, and writes AD's value back.
    let (status, full) = installation.sync(&["--full"]);
    assert_eq!(status, 0, "{full:#}");
    assert_eq!(full["drifted"], 1, "{full:#}");
    let warning = &full["warnings"][0];
    assert_eq!(warning["attribute"], "jobTitle", "{full:#}");
    let message = warning["message"].as_str().unwrap();
    assert!(
        message.contains("dirsync wrote 'Engineer', the cloud has 'CEO'"),
        "{message}"
    );
    let change = full["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|change| change["cloud_id"] == ann.as_str())
        .unwrap_or_else(|| panic!("no change for {ann}: {full:#}"));
    assert_eq!(
        change["attributes"],
        json!([{"name": "jobTitle", "old": "CEO", "new": "Engineer"}])
    );
    assert_eq!(title(), "Engineer");

    // Members: one removed in the portal and a cloud-only user added. The member comes back;
    // the cloud-only user, which dirsync does not manage, stays and is reported.
    let group = installation
        .cloud_groups()
        .into_iter()
        .find(|group| group["displayName"] == format!("grp-{}", ou.tag).as_str())
        .unwrap();
    let group_id = group["id"].as_str().unwrap().to_owned();
    let bob = cloud_id(&ou.upn(&users[1]));
    let remove = GraphRequest::new(
        Method::Delete,
        &["groups", &group_id, "members", &bob, "$ref"],
    );
    runtime().block_on(graph.send(&remove)).unwrap();
    let outsider = runtime()
        .block_on(graph.send(&GraphRequest::new(Method::Post, &["users"]).with_body(json!({
            "accountEnabled": true,
            "displayName": "cloud only",
            "mailNickname": format!("cloudonly-{}", ou.tag),
            "userPrincipalName": format!("cloudonly-{}@contoso.test", ou.tag),
            "passwordProfile": {"password": "Cloud-Only-Pa55word!", "forceChangePasswordNextSignIn": false},
        }))))
        .unwrap()
        .unwrap();
    let outsider_id = outsider["id"].as_str().unwrap().to_owned();
    runtime()
        .block_on(graph.add_member(&group_id, &outsider_id))
        .unwrap();
    let (status, members) = installation.sync(&["--full"]);
    assert_eq!(status, 0, "{members:#}");
    let warning = members["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|warning| warning["attribute"] == "members")
        .unwrap_or_else(|| panic!("no member drift: {members:#}"));
    let message = warning["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("removed in the cloud: {}", ou.user_dn(&users[1]))),
        "{message}"
    );
    assert!(message.contains(&outsider_id), "{message}");
    let ids = runtime().block_on(graph.members(&group_id)).unwrap();
    assert!(ids.contains(&bob), "the member is back: {ids:?}");
    assert!(
        ids.contains(&outsider_id),
        "the cloud-only member stays: {ids:?}"
    );

    // With options.drift = "report", it is only reported.
    let path = installation.config_path();
    let mut config = dirsync::config::Config::load(&path).unwrap();
    config.options.drift = dirsync::config::DriftAction::Report;
    config.save(&path).unwrap();
    edit("CFO");
    let (status, reported) = installation.sync(&["--full"]);
    assert_eq!(status, 0, "{reported:#}");
    // The title, and the group that still has its cloud-only member.
    assert_eq!(reported["drifted"], 2, "{reported:#}");
    assert!(
        reported["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|warning| warning["message"]
                .as_str()
                .unwrap()
                .contains("left as it is")),
        "{reported:#}"
    );
    assert_eq!(title(), "CFO");
}

#[test]
fn users_leaving_the_scope_are_disabled_and_come_back_unchanged_or_go_after_their_days() {
    let lab = lab();
    let (ou, users) = populated_ou("disable", 3, 0);
    let outside = TestOu::create("parked", &[]);
    let options = SyncOptions {
        disable_before_delete: true,
        delete_after_days: 7,
        ..SyncOptions::default()
    };
    let installation = Installation::new(&[ou.dn.as_str()], &[], options);
    let (status, first) = installation.sync(&[]);
    assert_eq!(status, 0, "{first:#}");
    let upn = ou.upn(&users[0]);
    let cloud = || user_with_upn(&installation.cloud_users(), &upn).cloned();
    let id = cloud().unwrap()["id"].clone();
    let move_to = |from: &str, to: &str| {
        ldapmodify(
            lab,
            &format!(
                "dn: CN={},{from}\nchangetype: modrdn\nnewrdn: CN={}\ndeleteoldrdn: 1\nnewsuperior: {to}\n\n",
                users[0], users[0]
            ),
        );
    };

    // Out of scope: disabled, sessions revoked, still there.
    move_to(&ou.dn, &outside.dn);
    let (status, out) = installation.sync(&[]);
    assert_eq!(status, 0, "{out:#}");
    let parked = cloud().expect("not deleted");
    assert_eq!(parked["accountEnabled"], false, "{parked:#}");
    assert!(
        parked["signInSessionsValidFromDateTime"].is_string(),
        "{parked:#}"
    );
    assert_eq!(step(&out, "cloud-export")["deletes"], 0, "{out:#}");

    // Back within the days: enabled again, the same cloud object.
    move_to(&outside.dn, &ou.dn);
    let (status, back) = installation.sync(&[]);
    assert_eq!(status, 0, "{back:#}");
    let returned = cloud().unwrap();
    assert_eq!(returned["id"], id);
    assert_eq!(returned["accountEnabled"], true, "{returned:#}");

    // Out again, and its days pass: deleted.
    move_to(&ou.dn, &outside.dn);
    let (status, out) = installation.sync(&[]);
    assert_eq!(status, 0, "{out:#}");
    assert_eq!(cloud().unwrap()["accountEnabled"], false);
    let (status, waiting) = installation.sync(&[]);
    assert_eq!(status, 0, "{waiting:#}");
    assert!(cloud().is_some(), "deleted before its days were up");
    assert_eq!(
        waiting["awaiting_delete"].as_array().map(Vec::len),
        Some(1),
        "{waiting:#}"
    );
    let eight_days_ms: i64 = 8 * 24 * 3_600_000;
    installation
        .store()
        .connection()
        .execute(
            "UPDATE links SET disabled_at = disabled_at - ?1 WHERE disabled_at IS NOT NULL",
            [eight_days_ms],
        )
        .unwrap();
    let (status, gone) = installation.sync(&[]);
    assert_eq!(status, 0, "{gone:#}");
    assert!(cloud().is_none(), "{gone:#}");
    assert_eq!(step(&gone, "cloud-export")["deletes"], 1, "{gone:#}");
}

#[test]
fn a_run_that_would_remove_too_large_a_share_of_the_scope_removes_nothing() {
    let (ou, users) = populated_ou("share", 9, 0);
    let options = SyncOptions {
        deletion_threshold_percent: 25,
        ..SyncOptions::default()
    };
    let installation = Installation::new(&[ou.dn.as_str()], &[], options);
    let (status, first) = installation.sync(&[]);
    assert_eq!(status, 0, "{first:#}");
    // Ten objects (nine users and the OU's group); three users go: 30 %, over 25 % (the unit
    // tests of the plan count member removals too).
    let mut ldif = String::new();
    for user in &users[..3] {
        ldif.push_str(&format!("dn: {}\nchangetype: delete\n\n", ou.user_dn(user)));
    }
    ldapmodify(lab(), &ldif);
    let before = synced_users(&installation);
    let (status, stopped) = installation.sync(&[]);
    assert_eq!(status, 4, "{stopped:#}");
    let withheld = stopped["deletes_withheld"].as_u64().unwrap();
    assert!(withheld >= 3, "{stopped:#}");
    assert_eq!(synced_users(&installation), before);
    let group = installation
        .cloud_groups()
        .into_iter()
        .find(|group| group["displayName"] == format!("grp-{}", ou.tag).as_str())
        .unwrap();
    assert_eq!(
        installation
            .member_names(group["id"].as_str().unwrap())
            .len(),
        2,
        "members were removed"
    );
    // Confirmed: made.
    let (status, confirmed) = installation.sync(&["--confirm-deletes", &withheld.to_string()]);
    assert_eq!(status, 0, "{confirmed:#}");
    assert_eq!(synced_users(&installation), before - 3);
    // The audit trail names who allowed them (README, "The audit trail").
    let audit: Value =
        serde_json::from_str(&installation.dirsync(&["audit", "--json"]).stdout).unwrap();
    let entry = &audit["entries"][0];
    assert_eq!(entry["action"], "deletes-confirmed", "{audit}");
    assert_eq!(entry["source"], "cli", "{audit}");
    assert!(
        entry["detail"]
            .as_str()
            .unwrap()
            .starts_with(&format!("up to {withheld} deletes allowed in run ")),
        "{audit}"
    );
}

/// A first sync of 1,000 users and 50 groups killed (SIGKILL) at ten points, with answers lost
/// after Graph carried out the writes, new objects replicating slowly and the index lagging; 20
/// users are deleted in AD between two kills. After reruns, every AD object has exactly one
/// cloud object and nothing dirsync made is left over.
#[test]
fn a_first_sync_killed_at_ten_points_under_faults_converges_to_exactly_one_object_each() {
    let (ou, users) = populated_ou("tenkill", 1000, 50);
    let installation = Installation::with_tenant(
        &[ou.dn.as_str()],
        &[],
        SyncOptions::default(),
        EmulatorConfig {
            faults: FaultSettings {
                lose_answer_every: 7,
                fail_after_write_every: 11,
                object_replication_ms: 1000,
                index_lag_ms: 30_000,
                latency_ms: 5,
                ..FaultSettings::default()
            },
            ..EmulatorConfig::default()
        },
    );
    let mut deleted = Vec::new();
    let mut kills_mid_run = 0;
    for kill in 1..=10usize {
        let target = synced_users(&installation) + 60;
        let mut child = installation
            .command(&["sync"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while synced_users(&installation) < target
            && child.try_wait().unwrap().is_none()
            && started.elapsed() < Duration::from_secs(120)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let finished = child.try_wait().unwrap().is_some();
        child.kill().ok();
        child.wait().unwrap();
        kills_mid_run += usize::from(!finished);
        eprintln!(
            "kill {kill}: {} users in the cloud{}",
            synced_users(&installation),
            if finished {
                " (the run had finished)"
            } else {
                ""
            }
        );
        if kill == 5 {
            // Gone from AD between a kill and the rerun: some were made in the cloud by a run
            // that never kept their links.
            let mut ldif = String::new();
            for user in users
                .iter()
                .rev()
                .take(10)
                .chain(users.iter().skip(100).take(10))
            {
                ldif.push_str(&format!("dn: {}\nchangetype: delete\n\n", ou.user_dn(user)));
                deleted.push(ou.upn(user));
            }
            ldapmodify(lab(), &ldif);
        }
    }
    assert!(
        kills_mid_run >= 8,
        "only {kills_mid_run} kills landed in a run"
    );
    let stats = installation.tenant.stats();
    assert!(stats.dropped > 0 && stats.failed_5xx > 0, "{stats:?}");
    installation.tenant.set_faults(None).unwrap();
    let last = sync_until_clean(&installation, 4);
    assert!(last["errors"].as_array().unwrap().is_empty(), "{last:#}");

    let (user_copies, group_copies) = copies(&installation);
    assert_eq!(
        user_copies.len(),
        users.len() - deleted.len(),
        "orphans or missing users"
    );
    assert!(user_copies.values().all(|&n| n == 1), "a user made twice");
    let cloud_users = installation.cloud_users();
    for upn in &deleted {
        assert!(
            user_with_upn(&cloud_users, upn).is_none(),
            "{upn} was deleted in AD"
        );
    }
    assert_eq!(group_copies.len(), 51, "{group_copies:?}");
    assert!(group_copies.values().all(|&n| n == 1), "{group_copies:?}");
}

#[test]
fn a_proposed_group_match_is_applied_only_after_the_administrator_confirms_it() {
    let (ou, users) = populated_ou("confirm", 2, 0);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let graph = installation.graph();
    let request = GraphRequest::new(Method::Post, &["groups"]).with_body(json!({
        "displayName": "Cloud copy",
        "mailNickname": format!("grp-{}", ou.tag),
        "securityEnabled": true,
        "mailEnabled": false,
    }));
    let copy = runtime().block_on(graph.send(&request)).unwrap().unwrap();
    let copy_id = copy["id"].as_str().unwrap().to_owned();
    let group_dn = format!("CN=grp-{},{}", ou.tag, ou.dn);

    // Proposed, not applied; a preview and a second run change nothing either.
    let (status, first) = installation.sync(&[]);
    assert_eq!(status, 3, "{first:#}");
    let hint = errors_of(&first, &group_dn)[0]["hint"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(hint.contains("dirsync match-group"), "{hint}");
    let (status, _) = installation.sync(&[]);
    assert_eq!(status, 3);
    assert_eq!(installation.member_names(&copy_id).len(), 0);

    // A confirmation must name the proposed group.
    let wrong = installation.dirsync(&[
        "match-group",
        "--dn",
        &group_dn,
        "--cloud-id",
        "00000000-0000-0000-0000-000000000000",
    ]);
    assert_eq!(wrong.status, 2, "{wrong:?}");
    assert!(wrong.stderr.contains(&copy_id), "{wrong:?}");
    let unknown = installation.dirsync(&[
        "match-group",
        "--dn",
        &ou.user_dn(&users[0]),
        "--cloud-id",
        &copy_id,
    ]);
    assert_eq!(unknown.status, 2, "{unknown:?}");
    let confirmed = installation.dirsync(&[
        "match-group",
        "--dn",
        &group_dn,
        "--cloud-id",
        &copy_id,
        "--json",
    ]);
    assert_eq!(confirmed.status, 0, "{confirmed:?}");

    // The next run joins it: the same cloud group now follows AD.
    let (status, joined) = installation.sync(&[]);
    assert_eq!(status, 0, "{joined:#}");
    let groups = installation.cloud_groups();
    assert_eq!(groups.len(), 1, "{groups:#?}");
    assert_eq!(groups[0]["id"], copy_id.as_str());
    assert_eq!(groups[0]["displayName"], format!("grp-{}", ou.tag).as_str());
    assert_eq!(
        installation.member_names(&copy_id),
        BTreeSet::from([ou.upn(&users[0]), ou.upn(&users[1])])
    );
}

#[test]
fn a_create_that_conflicts_with_its_own_earlier_copy_links_it() {
    // A user without mail, so only its immutableId (an advanced query, lagging here) and its
    // UPN can find it.
    let ou = TestOu::create("conflict", &[]);
    let tag = &ou.tag;
    ldapmodify(
        lab(),
        &format!(
            "dn: CN=nomail,{dn}\nchangetype: add\nobjectClass: user\nsAMAccountName: nomail{short}\nuserPrincipalName: nomail.{tag}@contoso.test\ndisplayName: nomail {tag}\nuserAccountControl: 512\n\n",
            dn = ou.dn,
            short = &tag[tag.len() - 8..],
        ),
    );
    let installation = Installation::with_tenant(
        &[ou.dn.as_str()],
        &[],
        SyncOptions::default(),
        EmulatorConfig {
            faults: serde_json::from_value(json!({"index_lag_ms": 600_000})).unwrap(),
            ..EmulatorConfig::default()
        },
    );
    let (status, first) = installation.sync(&[]);
    assert_eq!(status, 0, "{first:#}");
    assert_eq!(synced_users(&installation), 1);
    // The store forgets the link (a restore of an old state.db, say): the next run cannot find
    // the user by its immutableId (the index lags), creates it, and Graph answers a conflict.
    installation
        .store()
        .connection()
        .execute_batch("DELETE FROM links; UPDATE directory_objects SET state = 'pending';")
        .unwrap();
    let (status, again) = installation.sync(&[]);
    assert_eq!(status, 0, "{again:#}");
    assert_eq!(synced_users(&installation), 1, "{again:#}");
    let (status, steady) = installation.sync(&[]);
    assert_eq!(status, 0, "{steady:#}");
    assert!(
        steady["errors"].as_array().unwrap().is_empty(),
        "{steady:#}"
    );
}
