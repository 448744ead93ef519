//! `dirsync trace`, against the Samba AD lab and the tenant emulator: one object walked through
//! a cycle's stages, each saying what happened and why.
#![allow(clippy::unwrap_used)]

mod common;

use common::installation::*;
use common::lab;
use dirsync::cloud::{GraphRequest, Method};
use dirsync::config::SyncOptions;
use serde_json::{Value, json};

/// `dirsync trace --json OBJECT`: the exit status and the document.
fn trace(installation: &Installation, object: &str) -> (i32, Value) {
    let run = installation.dirsync(&["trace", "--json", object]);
    let document = serde_json::from_str(&run.stdout).unwrap_or_else(|error| {
        panic!(
            "trace printed no JSON ({error}); status {}\nstdout: {}\nstderr: {}",
            run.status, run.stdout, run.stderr
        )
    });
    (run.status, document)
}

#[test]
fn scope_says_which_ou_or_rule_decided() {
    let ou = TestOu::create("trs", &["anna"]);
    let hidden = format!("OU=Hidden,{}", ou.dn);
    ldapmodify(
        lab(),
        &format!(
            "dn: {hidden}\nchangetype: add\nobjectClass: organizationalUnit\n\n{}",
            user_ldif(&hidden, &ou.tag, "hugo")
        ),
    );
    let installation = Installation::new(
        &[ou.dn.as_str()],
        &[hidden.as_str()],
        SyncOptions::default(),
    );

    let (status, document) = trace(&installation, &format!("CN=hugo,{hidden}"));
    assert_eq!(status, 0, "{document}");
    assert_eq!(document["found"]["outcome"], "found");
    assert_eq!(document["scope"]["in_scope"], false);
    assert!(
        document["scope"]["because"]
            .as_str()
            .unwrap()
            .contains(&format!("excluded OU {hidden}")),
        "{document}"
    );
    assert!(
        document["verdict"]
            .as_str()
            .unwrap()
            .starts_with("not synced")
    );

    // A system account is never synced, wherever it is.
    let (_, document) = trace(&installation, "krbtgt");
    assert_eq!(document["scope"]["in_scope"], false);
    assert!(
        document["scope"]["because"]
            .as_str()
            .unwrap()
            .contains("system account"),
        "{document}"
    );

    // In scope, never synced: the next cycle creates it, and says with which request.
    let (_, document) = trace(&installation, &ou.upn("anna"));
    assert_eq!(document["scope"]["in_scope"], true, "{document}");
    assert_eq!(document["join"]["verdict"], "create", "{document}");
    assert_eq!(document["export"][0]["method"], "POST");
    assert_eq!(document["export"][0]["path"], "/users");
    assert_eq!(
        document["export"][0]["body"]["passwordProfile"]["password"],
        "(random, never shown)"
    );
}

#[test]
fn a_user_not_in_ad_lists_the_closest_names() {
    let ou = TestOu::create("trn", &["bertrand"]);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let (status, document) = trace(
        &installation,
        &format!("bertrand.{}@elsewhere.test", ou.tag),
    );
    assert_eq!(status, 0, "{document}");
    assert_eq!(document["found"]["outcome"], "not-found");
    let closest: Vec<&str> = document["found"]["closest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|dn| dn.as_str().unwrap())
        .collect();
    assert_eq!(closest, vec![ou.user_dn("bertrand").as_str()]);
    assert!(document["scope"].is_null());
}

#[test]
fn validation_and_join_refusals_name_the_value_and_the_fix() {
    let ou = TestOu::create("trv", &["carla", "damon"]);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    // Carla's UPN has a character the cloud refuses.
    ldapmodify(
        lab(),
        &format!(
            "dn: {}\nchangetype: modify\nreplace: userPrincipalName\nuserPrincipalName: carla {}@contoso.test\n\n",
            ou.user_dn("carla"),
            ou.tag
        ),
    );
    let (_, document) = trace(&installation, &ou.user_dn("carla"));
    let finding = &document["validation"][0];
    assert_eq!(finding["rule"], "invalid-character", "{document}");
    assert_eq!(finding["attribute"], "userPrincipalName");
    assert!(!finding["fix"].as_str().unwrap().is_empty());
    assert!(document["export"].as_array().unwrap().is_empty());
    assert!(
        document["verdict"]
            .as_str()
            .unwrap()
            .starts_with("not exported")
    );

    // A cloud user another directory synced holds Damon's address: no soft match.
    let graph = installation.graph();
    let request = GraphRequest::new(Method::Post, &["users"]).with_body(json!({
        "accountEnabled": true,
        "displayName": "damon elsewhere",
        "mailNickname": format!("damon-{}", ou.tag),
        "userPrincipalName": format!("damon-{}@contoso.test", ou.tag),
        "mail": ou.upn("damon"),
        "onPremisesImmutableId": "c29tZW9uZSBlbHNlJ3M=",
        "passwordProfile": {"password": "Cloud-Only-Pa55word!", "forceChangePasswordNextSignIn": false},
    }));
    let holder = runtime().block_on(graph.send(&request)).unwrap().unwrap();
    let (_, document) = trace(&installation, &ou.upn("damon"));
    assert_eq!(document["join"]["verdict"], "refused", "{document}");
    assert_eq!(document["join"]["cloud_id"], holder["id"]);
    assert_eq!(
        document["join"]["candidates"][0]["immutable_id"],
        "c29tZW9uZSBlbHNlJ3M="
    );
    assert_eq!(document["validation"][0]["rule"], "invalid-soft-match");
}

#[test]
fn a_synced_user_with_a_changed_title_shows_old_and_new_and_the_patch() {
    let ou = TestOu::create("trt", &["erik"]);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    let (_, document) = trace(&installation, &ou.upn("erik"));
    assert_eq!(document["join"]["verdict"], "linked");
    assert!(
        document["export"].as_array().unwrap().is_empty(),
        "{document}"
    );
    assert!(document["verdict"].as_str().unwrap().starts_with("in sync"));

    ldapmodify(
        lab(),
        &format!(
            "dn: {}\nchangetype: modify\nreplace: title\ntitle: Architect\n\n",
            ou.user_dn("erik")
        ),
    );
    let (_, document) = trace(&installation, &ou.upn("erik"));
    let title = document["flow"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["property"] == "jobTitle")
        .unwrap()
        .clone();
    assert_eq!(title["ad_attribute"], "title");
    assert_eq!(title["cloud"], "Engineer");
    assert_eq!(title["from_ad"], "Architect");
    assert_eq!(title["changes"], true);
    assert_eq!(document["export"][0]["method"], "PATCH", "{document}");
    assert_eq!(
        document["export"][0]["body"],
        json!({"jobTitle": "Architect"})
    );

    // The same, in words.
    let run = installation.dirsync(&["trace", &ou.upn("erik")]);
    assert_eq!(run.status, 0);
    assert!(
        run.stdout
            .contains("* jobTitle (from title): \"Engineer\" -> \"Architect\"")
            && run.stdout.contains("PATCH /users/"),
        "{}",
        run.stdout
    );
}

fn cloud_user(installation: &Installation, upn: &str) -> Value {
    user_with_upn(&installation.cloud_users(), upn)
        .unwrap()
        .clone()
}

#[test]
fn a_trace_applied_exports_that_object_only() {
    let ou = TestOu::create("tra", &["fay", "gus"]);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    for user in ["fay", "gus"] {
        ldapmodify(
            lab(),
            &format!(
                "dn: {}\nchangetype: modify\nreplace: title\ntitle: Director\n\n",
                ou.user_dn(user)
            ),
        );
    }
    let run = installation.dirsync(&["trace", "--apply", "--json", &ou.upn("fay")]);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["run"]["trigger"], "trace", "{report}");
    assert_eq!(step(&report, "cloud-export")["updates"], 1, "{report}");
    assert_eq!(
        cloud_user(&installation, &ou.upn("fay"))["jobTitle"],
        "Director"
    );
    assert_eq!(
        cloud_user(&installation, &ou.upn("gus"))["jobTitle"],
        "Engineer"
    );

    // The next cycle still reads gus's change: the applied trace left the DirSync cookie alone.
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    assert_eq!(
        cloud_user(&installation, &ou.upn("gus"))["jobTitle"],
        "Director"
    );
}

#[test]
fn a_push_waits_for_a_running_cycle_then_disables_and_revokes_at_once() {
    let ou = TestOu::create("trp", &["hal"]);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    ldapmodify(
        lab(),
        &format!(
            "dn: {}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 514\n\n",
            ou.user_dn("hal")
        ),
    );
    // A cycle holds the run lock for two seconds while the administrator pushes.
    let state_db = installation.home.path().join("state.db");
    let (locked, lock_taken) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let lock = dirsync::run_lock::RunLock::acquire(&state_db).unwrap();
        locked.send(()).unwrap();
        std::thread::sleep(std::time::Duration::from_secs(2));
        drop(lock);
        std::time::Instant::now()
    });
    lock_taken.recv().unwrap();
    let run = installation.dirsync(&["push", "--revoke-sessions", "--json", &ou.upn("hal")]);
    let finished = std::time::Instant::now();
    let released = holder.join().unwrap();
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["run"]["trigger"], "push", "{report}");
    assert!(finished > released, "the push waited for the lock");
    let elapsed = finished - released;
    eprintln!("push reached the cloud {elapsed:?} after the lock was freed");
    let hal = cloud_user(&installation, &ou.upn("hal"));
    assert_eq!(hal["accountEnabled"], false, "{hal}");
    assert!(hal["signInSessionsValidFromDateTime"].is_string(), "{hal}");

    // Not in AD: refused, naming what was asked.
    let run = installation.dirsync(&["push", "nobody.at.all@contoso.test"]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("nobody.at.all@contoso.test"),
        "{}",
        run.stderr
    );
}

fn set_account_control(dn: &str, value: u32) {
    ldapmodify(
        lab(),
        &format!(
            "dn: {dn}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: {value}\n\n"
        ),
    );
}

#[test]
fn push_disable_holds_the_cloud_user_disabled_until_ad_disables_it_too() {
    let ou = TestOu::create("trd", &["ivy", "jon"]);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    let ivy = ou.upn("ivy");

    // Off-boarding before AD is touched: a cycle holds the run lock for two seconds while the
    // administrator pushes the disable.
    let state_db = installation.home.path().join("state.db");
    let (locked, lock_taken) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let lock = dirsync::run_lock::RunLock::acquire(&state_db).unwrap();
        locked.send(()).unwrap();
        std::thread::sleep(std::time::Duration::from_secs(2));
        drop(lock);
        std::time::Instant::now()
    });
    lock_taken.recv().unwrap();
    let run = installation.dirsync(&["push", "--disable", "--revoke-sessions", &ivy]);
    let finished = std::time::Instant::now();
    let released = holder.join().unwrap();
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(finished > released, "the push waited for the lock");
    eprintln!(
        "push --disable reached the cloud {:?} after the lock was freed",
        finished - released
    );
    assert!(
        run.stdout.contains("Held disabled in the cloud"),
        "{}",
        run.stdout
    );
    let audit: Value =
        serde_json::from_str(&installation.dirsync(&["audit", "--json"]).stdout).unwrap();
    assert_eq!(audit["entries"][0]["action"], "push", "{audit}");
    assert_eq!(audit["entries"][0]["source"], "cli", "{audit}");
    assert!(
        audit["entries"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("disabled in the cloud (held); sign-in sessions revoked"),
        "{audit}"
    );
    let cloud = cloud_user(&installation, &ivy);
    assert_eq!(cloud["accountEnabled"], false, "{cloud}");
    assert!(
        cloud["signInSessionsValidFromDateTime"].is_string(),
        "{cloud}"
    );
    assert_eq!(
        cloud_user(&installation, &ou.upn("jon"))["accountEnabled"],
        true
    );

    // Cycles keep the hold, delta and full, while other changes still flow.
    ldapmodify(
        lab(),
        &format!(
            "dn: {}\nchangetype: modify\nreplace: title\ntitle: Leaving\n\n",
            ou.user_dn("ivy")
        ),
    );
    for args in [&[][..], &["--full"][..]] {
        let (status, report) = installation.sync(args);
        assert_eq!(status, 0, "{report}");
        let cloud = cloud_user(&installation, &ivy);
        assert_eq!(cloud["accountEnabled"], false, "{args:?}: {cloud}");
        assert_eq!(cloud["jobTitle"], "Leaving", "{args:?}: {cloud}");
    }
    let (_, document) = trace(&installation, &ivy);
    assert!(
        document["verdict"]
            .as_str()
            .unwrap()
            .contains("held disabled in the cloud"),
        "{document}"
    );
    assert!(
        document["export"].as_array().unwrap().is_empty(),
        "{document}"
    );

    // Taken back: the cloud follows AD (enabled) again.
    let run = installation.dirsync(&["push", "--enable", &ivy]);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("Hold taken back"), "{}", run.stdout);
    assert_eq!(cloud_user(&installation, &ivy)["accountEnabled"], true);

    // Held again, then AD disables the account too: the hold ends, and when AD enables the
    // account again (a rehire), the cloud follows.
    let run = installation.dirsync(&["push", "--disable", &ivy]);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    set_account_control(&ou.user_dn("ivy"), 514);
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    set_account_control(&ou.user_dn("ivy"), 512);
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    assert_eq!(cloud_user(&installation, &ivy)["accountEnabled"], true);

    // Only a synced user can be disabled.
    let group = format!("grp-{}", ou.tag);
    let run = installation.dirsync(&["push", "--disable", &group]);
    assert_eq!(run.status, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("only users sign in"), "{}", run.stderr);
    let outside = TestOu::create("trn", &["kim"]);
    let run = installation.dirsync(&["push", "--disable", &outside.upn("kim")]);
    assert_eq!(run.status, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("nothing to disable there"),
        "{}",
        run.stderr
    );
}
