//! `dirsync rules test OBJECT` on the Samba lab (README, "Sync rules"): an expression's value and a
//! scoping rule set's decision for a real user, read now as the service account reads it;
//! nested group membership asked of the DC; a wrong expression refused at its character before
//! AD is asked.
#![allow(clippy::unwrap_used)]

mod common;

use common::installation::*;
use dirsync::config::SyncOptions;
use serde_json::Value;

#[test]
fn rules_test_shows_an_expression_s_value_and_the_scope_decision_for_a_real_user() {
    // The forest with Exchange's schema: extensionAttribute1..15 and msExchUsageLocation.
    let lab = common::lab_with(&["--exchange-schema"]);
    let ou = TestOu::create("rul", &["ann", "bob"]);
    // ann is staff; the OU's group (ann and bob) is nested in a second group.
    let outer = format!("CN=outer-{},{}", ou.tag, ou.dn);
    ldapmodify(
        lab,
        &format!(
            "dn: {}\nchangetype: modify\nreplace: employeeType\nemployeeType: staff\n-\n\
             replace: extensionAttribute3\nextensionAttribute3: cost-centre 4711\n-\n\
             replace: msExchUsageLocation\nmsExchUsageLocation: NO\n\n\
             dn: {outer}\nchangetype: add\nobjectClass: group\nsAMAccountName: outer-{}\nmember: CN=grp-{},{}\n\n",
            ou.user_dn("ann"),
            ou.tag,
            ou.tag,
            ou.dn
        ),
    );
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let test = |object: &str, args: &[&str]| {
        let mut all = vec!["rules", "test", object, "--json"];
        all.extend_from_slice(args);
        installation.dirsync(&all)
    };

    let run = test(
        &ou.upn("ann"),
        &[
            "--expression",
            r#"Join(" - ", [displayName], ToUpper([title]))"#,
            "--expression",
            "Coalesce([department], [title])",
            "--expression",
            "[extensionAttribute3]",
            "--expression",
            "Coalesce([msExchUsageLocation], [c])",
            "--rule",
            "exclude title starts-with svc-",
            "--rule",
            "include employeeType equals STAFF",
        ],
    );
    assert_eq!(run.status, 0, "{run:?}");
    let tested: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(tested["dn"], ou.user_dn("ann").as_str(), "{tested}");
    assert_eq!(
        tested["expressions"][0]["value"],
        format!("ann {} - ENGINEER", ou.tag).as_str(),
        "{tested}"
    );
    assert_eq!(tested["expressions"][1]["value"], "Engineer", "{tested}");
    assert_eq!(
        tested["expressions"][2]["value"], "cost-centre 4711",
        "{tested}"
    );
    assert_eq!(tested["expressions"][3]["value"], "NO", "{tested}");
    assert_eq!(tested["scope"]["in_scope"], true, "{tested}");
    assert_eq!(
        tested["scope"]["decided_by"],
        "rule 2: include employeeType equals 'STAFF'"
    );
    let inputs = tested["inputs"].to_string();
    assert!(inputs.contains("\"employeeType\""), "{inputs}");

    // bob is not staff: no rule holds, and a set with an include rule leaves him out.
    let run = test(
        &ou.upn("bob"),
        &["--rule", "include employeeType equals staff"],
    );
    assert_eq!(run.status, 0, "{run:?}");
    let tested: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(tested["scope"]["in_scope"], false, "{tested}");
    assert!(tested["scope"]["decided_by"].is_null());

    // Membership of the outer group is only through nesting: the DC follows it when asked.
    let nested = format!("include member-of-nested {outer}");
    let direct = format!("include member-of {outer}");
    let run = test(&ou.upn("bob"), &["--rule", &nested]);
    let tested: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(tested["scope"]["in_scope"], true, "{tested}");
    let run = test(&ou.upn("bob"), &["--rule", &direct]);
    let tested: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(tested["scope"]["in_scope"], false, "{tested}");

    // As text: what was read, the value, the decision.
    let run = installation.dirsync(&[
        "rules",
        "test",
        &ou.upn("ann"),
        "--expression",
        "ToLower([c])",
    ]);
    assert_eq!(run.status, 0, "{run:?}");
    assert!(run.stdout.contains("c: (no value)"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("ToLower([c]) → null (the property would be cleared)"),
        "{}",
        run.stdout
    );

    // A wrong expression is refused at its character before AD is asked; so is a wrong rule.
    let run = test(&ou.upn("ann"), &["--expression", r#"Left([sn], "3")"#]);
    assert_eq!(run.status, 2, "{run:?}");
    assert!(
        run.stderr
            .contains("at character 12: argument 2 of Left must be a number, not text"),
        "{}",
        run.stderr
    );
    let run = test(&ou.upn("ann"), &["--rule", "include title contains x"]);
    assert_eq!(run.status, 2, "{run:?}");
    assert!(run.stderr.contains("--rule 1"), "{}", run.stderr);
    let run = test("nobody-here@contoso.test", &["--expression", "[sn]"]);
    assert_eq!(run.status, 2, "{run:?}");
    assert!(
        run.stderr.contains("no user or group in AD answers"),
        "{}",
        run.stderr
    );
}

/// The users in the tenant that came from `ou` (by UPN), sorted.
fn synced_users(installation: &Installation, ou: &TestOu) -> Vec<String> {
    let mut upns: Vec<String> = installation
        .cloud_users()
        .iter()
        .filter(|user| user["deletedDateTime"].is_null())
        .filter_map(|user| user["userPrincipalName"].as_str())
        .filter(|upn| upn.ends_with(&format!(".{}@contoso.test", ou.tag)))
        .map(|upn| upn.split('.').next().unwrap_or_default().to_owned())
        .collect();
    upns.sort();
    upns
}

fn write_rules(installation: &Installation, name: &str, text: &str) -> String {
    let path = installation.home.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn scoping_rules_decide_what_syncs_and_a_changed_set_is_previewed_then_applied() {
    let lab = common::lab_with(&["--exchange-schema"]);
    let ou = TestOu::create("rsc", &["ann", "bob", "cy"]);
    // ann and cy are staff, bob a contractor; the OU's group (ann and bob) is nested in outer.
    let outer = format!("CN=outer-{},{}", ou.tag, ou.dn);
    let group = format!("CN=grp-{},{}", ou.tag, ou.dn);
    let mut ldif = String::new();
    for (user, employee_type) in [("ann", "staff"), ("bob", "contractor"), ("cy", "Staff")] {
        ldif.push_str(&format!(
            "dn: {}\nchangetype: modify\nreplace: employeeType\nemployeeType: {employee_type}\n\n",
            ou.user_dn(user)
        ));
    }
    ldif.push_str(&format!(
        "dn: {outer}\nchangetype: add\nobjectClass: group\nsAMAccountName: outer-{}\nmember: {group}\n\n",
        ou.tag
    ));
    ldapmodify(lab, &ldif);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let (status, _) = installation.sync(&[]);
    assert_eq!(status, 0);
    assert_eq!(synced_users(&installation, &ou), ["ann", "bob", "cy"]);

    // Only staff: the preview names bob as leaving (he was exported), nothing entering.
    let staff_only = write_rules(
        &installation,
        "staff.toml",
        "[[users.scoping]]\naction = \"include\"\nattribute = \"employeeType\"\noperator = \"equals\"\nvalue = \"staff\"\n",
    );
    let run = installation.dirsync(&["rules", "preview", &staff_only, "--json"]);
    assert_eq!(run.status, 0, "{run:?}");
    let preview: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(preview["leaving"], 1, "{preview}");
    assert_eq!(
        preview["leaving_objects"][0]["dn"],
        ou.user_dn("bob").as_str()
    );
    assert_eq!(preview["entering"], 0, "{preview}");
    assert_eq!(preview["removal"], "delete");
    assert_eq!(preview["over_threshold"], false);
    // A preview changes nothing: the rules in use are still none.
    let config = std::fs::read_to_string(installation.config_path()).unwrap();
    assert!(!config.contains("[rules"), "{config}");

    // Saved without --yes and without a terminal: refused, nothing saved.
    let run = installation.dirsync(&["rules", "save", &staff_only]);
    assert_eq!(run.status, 2, "{run:?}");
    assert!(run.stdout.contains("leave the scope: 1"), "{}", run.stdout);
    let run = installation.dirsync(&["rules", "save", &staff_only, "--yes"]);
    assert_eq!(run.status, 0, "{run:?}");
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    assert_eq!(report["run"]["mode"], "full", "changed rules read every object again");
    assert_eq!(synced_users(&installation, &ou), ["ann", "cy"]);
    // The change is in the audit trail with the field it changed.
    let run = installation.dirsync(&["audit", "--json"]);
    assert!(run.stdout.contains("rules saved"), "{}", run.stdout);
    assert!(run.stdout.contains("rules.users.scoping"), "{}", run.stdout);

    // Members of outer (through grp): ann and bob enter or stay, cy leaves.
    let members = write_rules(
        &installation,
        "members.toml",
        &format!(
            "[[users.scoping]]\naction = \"include\"\noperator = \"member-of-nested\"\nvalue = \"{outer}\"\n"
        ),
    );
    let run = installation.dirsync(&["rules", "preview", &members, "--json"]);
    let preview: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(preview["entering"], 1, "{preview}");
    assert_eq!(
        preview["entering_objects"][0]["dn"],
        ou.user_dn("bob").as_str()
    );
    assert_eq!(preview["leaving"], 1, "{preview}");
    assert_eq!(
        preview["leaving_objects"][0]["dn"],
        ou.user_dn("cy").as_str()
    );
    let run = installation.dirsync(&["rules", "save", &members, "--yes"]);
    assert_eq!(run.status, 0, "{run:?}");
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    assert_eq!(synced_users(&installation, &ou), ["ann", "bob"]);

    // cy joins grp in AD: nothing of cy changed, yet the next delta run takes cy in.
    ldapmodify(
        lab,
        &format!(
            "dn: {group}\nchangetype: modify\nadd: member\nmember: {}\n\n",
            ou.user_dn("cy")
        ),
    );
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    assert_eq!(report["run"]["mode"], "delta");
    assert_eq!(synced_users(&installation, &ou), ["ann", "bob", "cy"]);
    // And leaves again when removed from it.
    ldapmodify(
        lab,
        &format!(
            "dn: {group}\nchangetype: modify\ndelete: member\nmember: {}\n\n",
            ou.user_dn("cy")
        ),
    );
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    assert_eq!(synced_users(&installation, &ou), ["ann", "bob"]);

    // A wrong rules file names its field, and nothing is saved.
    let wrong = write_rules(
        &installation,
        "wrong.toml",
        "[users.mappings]\ndisplayName = 'Join(\" \", [givenName]'\n",
    );
    let run = installation.dirsync(&["rules", "save", &wrong, "--yes"]);
    assert_eq!(run.status, 2, "{run:?}");
    assert!(
        run.stderr.contains("rules.users.mappings.displayName"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("at character"), "{}", run.stderr);
}
