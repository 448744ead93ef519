//! `dirsync check`: IdFix's rules over the lab's seeded directory, which finds every edge case
//! the seed planted and nothing else (tests/lab/README.md lists them).
#![allow(clippy::unwrap_used)]

mod common;

use common::installation::*;
use common::lab;
use dirsync::config::SyncOptions;
use serde_json::Value;

#[test]
fn the_seeded_edge_cases_are_found_and_nothing_else() {
    let corp = corp();
    let installation = Installation::new(&[corp.as_str()], &[], SyncOptions::default());
    let run = installation.dirsync(&["check", "--json"]);
    assert_eq!(
        run.status, 3,
        "findings exit 3: {}\n{}",
        run.stdout, run.stderr
    );
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["suffixes_checked"], true);
    let mut found: Vec<(String, String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|finding| {
            let dn = finding["dn"].as_str().unwrap();
            let cn = dn.split(',').next().unwrap().to_owned();
            (
                cn,
                finding["attribute"].as_str().unwrap().to_owned(),
                finding["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    eprintln!("{found:#?}");
    let expected = vec![
        ("CN=Emma Laurent", "proxyAddresses", "duplicate"),
        // Graph makes no distribution group (mail-enabled, not security).
        ("CN=Engineering News", "groupType", "distribution-group"),
        ("CN=Henry Walker", "proxyAddresses", "duplicate"),
        ("CN=Liam Wilson", "userPrincipalName", "unverified-suffix"),
        ("CN=Sales Announcements", "groupType", "distribution-group"),
        ("CN=\\#hash.user", "sAMAccountName", "invalid-character"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .into_iter()
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
        .collect();
    assert_eq!(found, expected, "{report:#}");
    let hash = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|finding| finding["rule"] == "invalid-character")
        .unwrap();
    assert_eq!(hash["suggested"], "hash.user");

    // The CSV lists the same findings, one row each, with a header.
    let run = installation.dirsync(&["check", "--csv"]);
    assert_eq!(run.status, 3);
    let rows: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(rows.len(), expected.len() + 1, "{}", run.stdout);
    assert!(rows[0].starts_with("dn,object_type,attribute,value,rule"));

    // An OU without edge cases: nothing found, exit 0.
    let run = installation.dirsync(&[
        "check",
        "--ou",
        &format!("OU=Platform,OU=Engineering,{corp}"),
    ]);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(": 0 findings."), "{}", run.stdout);
    let _ = lab();
}

#[test]
fn idfix_checks_a_cycle_does_not_make_are_found_with_suggested_values() {
    let ou = TestOu::create("chk", &[]);
    ldapmodify(
        lab(),
        &format!(
            "dn: CN=juergen,{dn}\nchangetype: add\nobjectClass: user\nsAMAccountName: juergen{tag}\nuserPrincipalName: jürgen.{tag}@contoso.test\nmail: juergen.old.{tag}@contoso.test\nproxyAddresses: SMTP:juergen.{tag}@contoso.test\nuserAccountControl: 512\n\n",
            dn = ou.dn,
            tag = ou.tag
        ),
    );
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let run = installation.dirsync(&["check", "--json"]);
    assert_eq!(run.status, 3, "{}\n{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    let umlaut = findings
        .iter()
        .find(|finding| finding["attribute"] == "userPrincipalName")
        .unwrap();
    assert_eq!(umlaut["rule"], "invalid-character");
    assert_eq!(
        umlaut["suggested"],
        format!("juergen.{}@contoso.test", ou.tag).as_str()
    );
    let mail = findings
        .iter()
        .find(|finding| finding["rule"] == "mail-not-primary")
        .unwrap();
    assert_eq!(mail["severity"], "warning");
    assert_eq!(
        mail["suggested"],
        format!("juergen.{}@contoso.test", ou.tag).as_str()
    );
}
