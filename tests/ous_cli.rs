//! `dirsync ous` against the real Samba AD lab, compared with what `ldapsearch` sees.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use common::{Lab, Run, dirsync, lab};
// The same filter dirsync uses, so that comparing with ldapsearch checks the walk; the assertions
// on named containers below check the filter's choice.
use dirsync::directory::ou_tree::CONTAINER_FILTER;
use serde_json::{Value, json};

fn ous(lab: &Lab, extra: &[&str]) -> Run {
    let ca_file = lab.ca_file.to_str().unwrap();
    let mut args = vec![
        "ous",
        "--server",
        &lab.ldaps_url,
        "--user",
        &lab.admin_upn,
        "--ca-file",
        ca_file,
    ];
    args.extend_from_slice(extra);
    dirsync(&args, Some(&lab.admin_password))
}

fn assert_no_secret(run: &Run, lab: &Lab) {
    let output = run.all_output();
    assert!(
        !output.contains(&lab.admin_password),
        "admin password leaked:\n{output}"
    );
    assert!(
        !output.contains(&lab.plain_user_password),
        "user password leaked:\n{output}"
    );
}

/// One LDIF entry: its DN and attributes (lowercased names; values decoded from base64).
type LdifEntry = (String, HashMap<String, Vec<String>>);

/// Parses `ldapsearch -LLL` output.
fn parse_ldif(text: &str) -> Vec<LdifEntry> {
    use base64::Engine as _;
    let unfolded = text.replace("\n ", "");
    let mut entries = Vec::new();
    for block in unfolded.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut dn = String::new();
        let mut attributes: HashMap<String, Vec<String>> = HashMap::new();
        for line in block.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = if let Some((name, encoded)) = line.split_once(":: ") {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .unwrap();
                (name, String::from_utf8(bytes).unwrap())
            } else if let Some((name, value)) = line.split_once(": ") {
                (name, value.to_owned())
            } else {
                continue;
            };
            if name == "dn" {
                dn = value;
            } else {
                attributes
                    .entry(name.to_lowercase())
                    .or_default()
                    .push(value);
            }
        }
        if !dn.is_empty() {
            entries.push((dn, attributes));
        }
    }
    entries
}

fn ldapsearch(lab: &Lab, base: &str, scope: &str, filter: &str) -> Vec<LdifEntry> {
    let mut command = common::ldapsearch(lab);
    command.args([
        "-b",
        base,
        "-s",
        scope,
        "-E",
        "pr=1000/noprompt",
        filter,
        "name",
        "objectClass",
    ]);
    parse_ldif(&common::stdout_of(command))
}

fn kind(classes: &[String]) -> &'static str {
    let has = |c: &str| classes.iter().any(|x| x.eq_ignore_ascii_case(c));
    if has("domainDNS") {
        "domain"
    } else if has("organizationalUnit") {
        "organizationalUnit"
    } else if has("builtinDomain") {
        "builtinDomain"
    } else {
        "container"
    }
}

fn sort_key(name: &str) -> (String, String) {
    (name.to_lowercase(), name.to_owned())
}

/// The tree ldapsearch sees: every container whose parent is the base or another visible container.
fn expected_tree(lab: &Lab) -> Value {
    let base = &ldapsearch(lab, &lab.base_dn, "base", "(objectClass=*)")[0];
    let all = ldapsearch(lab, &lab.base_dn, "sub", CONTAINER_FILTER);
    let parent_of = |dn: &str| {
        dirsync::directory::Dn::parse(dn)
            .unwrap()
            .parent()
            .unwrap()
            .normalized()
            .to_owned()
    };
    let mut by_parent: HashMap<String, Vec<&LdifEntry>> = HashMap::new();
    for entry in all
        .iter()
        .filter(|(dn, _)| !dn.eq_ignore_ascii_case(&lab.base_dn))
    {
        by_parent
            .entry(parent_of(&entry.0))
            .or_default()
            .push(entry);
    }
    fn build(entry: &LdifEntry, by_parent: &HashMap<String, Vec<&LdifEntry>>) -> Value {
        let (dn, attributes) = entry;
        let key = dirsync::directory::Dn::parse(dn)
            .unwrap()
            .normalized()
            .to_owned();
        let mut children: Vec<_> = by_parent.get(&key).cloned().unwrap_or_default();
        children.sort_by_key(|(_, a)| sort_key(&a["name"][0]));
        json!({
            "dn": dn,
            "name": attributes["name"][0],
            "kind": kind(&attributes["objectclass"]),
            "children": children.iter().map(|child| build(child, by_parent)).collect::<Vec<_>>(),
        })
    }
    build(base, &by_parent)
}

fn find<'a>(node: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(node, |node, name| {
        node["children"]
            .as_array()
            .unwrap()
            .iter()
            .find(|child| child["name"] == *name)
            .unwrap_or_else(|| panic!("no child {name} under {}", node["dn"]))
    })
}

#[test]
fn the_json_tree_equals_what_ldapsearch_sees() {
    let lab = lab();
    let run = ous(lab, &["--json"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_no_secret(&run, lab);
    let tree: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(tree, expected_tree(lab));

    // The seeded tree is there, at least three levels deep, with the right kinds.
    assert_eq!(tree["kind"], "domain");
    assert_eq!(
        find(&tree, &["Corp", "Sales", "EMEA", "Paris"])["kind"],
        "organizationalUnit"
    );
    assert_eq!(find(&tree, &["Builtin"])["kind"], "builtinDomain");
    assert_eq!(find(&tree, &["Users"])["kind"], "container");
    // A container an administrator made is hidden from the basic view by default; it must still
    // be listed, since it can hold users. The system's own hidden containers are not.
    assert_eq!(
        find(&tree, &["Corp", "Service Objects"])["kind"],
        "container"
    );
    assert!(
        tree["children"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["name"] != "System" && c["name"] != "LostAndFound"),
        "hidden system containers such as CN=System are not listed"
    );
}

#[test]
fn depth_one_lists_only_the_first_level() {
    let lab = lab();
    let run = ous(lab, &["--json", "--depth", "1"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let tree: Value = serde_json::from_str(&run.stdout).unwrap();
    let full = expected_tree(lab);
    let names = |node: &Value| {
        node["children"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&tree), names(&full));
    for child in tree["children"].as_array().unwrap() {
        assert_eq!(
            child["children"],
            json!([]),
            "{} should not be expanded",
            child["dn"]
        );
    }
    assert!(
        !names(find(&full, &["Corp"])).is_empty(),
        "the full tree goes deeper"
    );
}

#[test]
fn a_base_dn_and_human_output() {
    let lab = lab();
    let base = format!("OU=Sales,OU=Corp,{}", lab.base_dn);
    let run = ous(lab, &["--base", &base]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let first_line = run.stdout.lines().next().unwrap();
    assert!(
        first_line.starts_with("Sales  (organizationalUnit)"),
        "{first_line}"
    );
    assert!(
        run.stdout.contains("Paris  (organizationalUnit)"),
        "{}",
        run.stdout
    );
}

#[test]
fn starttls_and_explicit_insecure_both_connect() {
    let lab = lab();
    let ca_file = lab.ca_file.to_str().unwrap();
    let run = dirsync(
        &[
            "ous",
            "--server",
            &lab.ldap_url,
            "--user",
            &lab.admin_upn,
            "--ca-file",
            ca_file,
            "--depth",
            "0",
            "--json",
        ],
        Some(&lab.admin_password),
    );
    assert_eq!(run.status, 0, "StartTLS: {}", run.stderr);

    let run = dirsync(
        &[
            "ous",
            "--server",
            &lab.ldaps_url,
            "--user",
            &lab.admin_upn,
            "--insecure",
            "--depth",
            "0",
        ],
        Some(&lab.admin_password),
    );
    assert_eq!(run.status, 0, "insecure: {}", run.stderr);
    assert!(
        run.stderr.contains("not verified"),
        "insecure must be visible: {}",
        run.stderr
    );
}

/// Asserts one clear error line, the exit status, and no password anywhere.
fn assert_error(run: &Run, lab: &Lab, status: i32, needles: &[&str]) {
    assert_eq!(
        run.status, status,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.contains("warning"))
        .collect();
    assert_eq!(lines.len(), 1, "one line expected: {}", run.stderr);
    for needle in needles {
        assert!(
            lines[0].contains(needle),
            "'{needle}' missing from: {}",
            lines[0]
        );
    }
    assert_no_secret(run, lab);
}

#[test]
fn wrong_password_and_unknown_user_are_bad_input() {
    let lab = lab();
    let ca_file = lab.ca_file.to_str().unwrap();
    let wrong = "Wrong-Password-123!";
    let run = dirsync(
        &[
            "ous",
            "--server",
            &lab.ldaps_url,
            "--user",
            &lab.admin_upn,
            "--ca-file",
            ca_file,
        ],
        Some(wrong),
    );
    assert_error(
        &run,
        lab,
        2,
        &["user name or password is wrong", &lab.admin_upn],
    );
    assert!(!run.all_output().contains(wrong));

    let run = dirsync(
        &[
            "ous",
            "--server",
            &lab.ldaps_url,
            "--user",
            "nobody@corp.dirsync.test",
            "--ca-file",
            ca_file,
        ],
        Some(&lab.admin_password),
    );
    assert_error(
        &run,
        lab,
        2,
        &["user name or password is wrong", "nobody@corp.dirsync.test"],
    );
}

#[test]
fn unreachable_host_and_wrong_port_are_connection_failures() {
    let lab = lab();
    let ca_file = lab.ca_file.to_str().unwrap();
    let run = dirsync(
        &[
            "ous",
            "--server",
            "ldaps://127.0.0.1:1",
            "--user",
            &lab.admin_upn,
            "--ca-file",
            ca_file,
        ],
        Some(&lab.admin_password),
    );
    assert_error(&run, lab, 1, &["cannot connect to 127.0.0.1:1", "refused"]);

    let run = dirsync(
        &[
            "ous",
            "--server",
            "ldaps://no-such-host.invalid",
            "--user",
            &lab.admin_upn,
            "--ca-file",
            ca_file,
        ],
        Some(&lab.admin_password),
    );
    assert_error(
        &run,
        lab,
        1,
        &["no-such-host.invalid", "could not be resolved"],
    );

    // LDAPS spoken to the plain LDAP port.
    let run = dirsync(
        &[
            "ous",
            "--server",
            "ldaps://127.0.0.1:389",
            "--user",
            &lab.admin_upn,
            "--ca-file",
            ca_file,
            "--timeout-secs",
            "5",
        ],
        Some(&lab.admin_password),
    );
    assert_error(&run, lab, 1, &["127.0.0.1:389", "port"]);

    // StartTLS spoken to the LDAPS port.
    let run = dirsync(
        &[
            "ous",
            "--server",
            "ldap://127.0.0.1:636",
            "--user",
            &lab.admin_upn,
            "--ca-file",
            ca_file,
            "--timeout-secs",
            "5",
        ],
        Some(&lab.admin_password),
    );
    assert_error(&run, lab, 1, &["127.0.0.1:636", "StartTLS", "port"]);
}

#[test]
fn an_untrusted_certificate_says_what_to_do() {
    let lab = lab();
    let run = dirsync(
        &["ous", "--server", &lab.ldaps_url, "--user", &lab.admin_upn],
        Some(&lab.admin_password),
    );
    assert_error(&run, lab, 1, &["certificate", "--ca-file", "--insecure"]);

    let run = dirsync(
        &[
            "ous",
            "--server",
            &lab.ldaps_url,
            "--user",
            &lab.admin_upn,
            "--ca-file",
            "/nonexistent/ca.pem",
        ],
        Some(&lab.admin_password),
    );
    assert_error(&run, lab, 2, &["/nonexistent/ca.pem"]);
}

#[test]
fn a_missing_or_malformed_base_dn_is_bad_input() {
    let lab = lab();
    let missing = format!("OU=Nowhere,{}", lab.base_dn);
    let run = ous(lab, &["--base", &missing]);
    assert_error(&run, lab, 2, &[&missing, "does not exist"]);

    let run = ous(lab, &["--base", "OUNowhere"]);
    assert_error(&run, lab, 2, &["--base", "not a valid distinguished name"]);
}

#[test]
fn a_malformed_url_and_a_missing_password_are_bad_input() {
    let lab = lab();
    let run = dirsync(
        &["ous", "--server", "ldaps//dc1", "--user", &lab.admin_upn],
        Some(&lab.admin_password),
    );
    assert_error(&run, lab, 2, &["ldaps//dc1", "not valid"]);

    let run = dirsync(
        &["ous", "--server", "https://dc1", "--user", &lab.admin_upn],
        Some(&lab.admin_password),
    );
    assert_error(&run, lab, 2, &["ldaps://"]);

    let run = dirsync(
        &["ous", "--server", &lab.ldaps_url, "--user", &lab.admin_upn],
        None,
    );
    assert_error(&run, lab, 2, &["DIRSYNC_LDAP_PASSWORD"]);

    let run = dirsync(
        &[
            "ous",
            "--server",
            &lab.ldaps_url,
            "--user",
            &lab.admin_upn,
            "--json",
        ],
        Some(""),
    );
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("anonymous bind"), "{}", run.stderr);
    let document: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(document["error"]["kind"], "bad-input");

    let run = dirsync(
        &["ous", "--server", &lab.ldaps_url],
        Some(&lab.admin_password),
    );
    assert_error(&run, lab, 2, &["--user"]);

    let run = dirsync(
        &[
            "ous",
            "--insecure",
            "--ca-file",
            "x.pem",
            "--server",
            "ldaps://x",
            "--user",
            "u",
        ],
        None,
    );
    assert_eq!(run.status, 2, "clap usage error: {}", run.stderr);
}
