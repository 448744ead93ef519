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
