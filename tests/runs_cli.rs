//! `dirsync runs` and `dirsync runs show` on a home whose state.db the store API filled: the real
//! binary, its human text and its JSON. No lab needed.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use dirsync::store::StateStore;
use dirsync::store::runs::{AttributeValues, ErrorRecord, ObjectChangeRecord, StepCounters};
use dirsync::store::vocabulary::{
    ChangeKind, ObjectKind, RunMode, RunStatus, RunTrigger, StepKind,
};
use serde_json::{Value, json};

struct Output {
    status: i32,
    stdout: String,
    stderr: String,
}

fn dirsync(home: &Path, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_dirsync"))
        .args(args)
        .env("DIRSYNC_HOME", home)
        .env_remove("DIRSYNC_LOG")
        .output()
        .unwrap();
    Output {
        status: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn json_of(output: &Output) -> Value {
    assert_eq!(output.status, 0, "stderr: {}", output.stderr);
    serde_json::from_str(&output.stdout)
        .unwrap_or_else(|error| panic!("not one JSON document ({error}):\n{}", output.stdout))
}

/// 2026-11-21 14:03:07 UTC.
const T0: i64 = 1_795_269_787_000;
const LONG_DESCRIPTION_CHARS: usize = 300;

fn attribute(name: &str, old: Value, new: Value) -> AttributeValues {
    AttributeValues {
        name: name.to_owned(),
        old,
        new,
    }
}

fn change(
    kind: ChangeKind,
    object_type: ObjectKind,
    dn: &str,
    attributes: Vec<AttributeValues>,
) -> ObjectChangeRecord {
    ObjectChangeRecord {
        step: StepKind::CloudExport,
        dn: dn.to_owned(),
        anchor: format!("anchor-of-{dn}"),
        object_type,
        cloud_id: Some(format!("cloud-id-of-{dn}")),
        change_kind: kind,
        attributes,
    }
}

/// Three runs: 1 a first full run with adds, an update, a delete and an error; 2 a delta run with
/// nothing to do; 3 a preview that is newest. Returns the ids in that order.
fn seed(home: &Path) -> [i64; 3] {
    let store = StateStore::open(&home.join("state.db")).unwrap();

    let first = store
        .start_run(RunTrigger::Wizard, RunMode::Full, T0)
        .unwrap();
    let steps = [
        (StepKind::DirectoryImport, 5, 0, 0),
        (StepKind::CloudImport, 0, 0, 0),
        (StepKind::Synchronization, 3, 1, 1),
        (StepKind::CloudExport, 3, 1, 1),
    ];
    for (position, (step, adds, updates, deletes)) in steps.into_iter().enumerate() {
        let started = T0 + position as i64 * 1000;
        store.start_step(first, step, None, started).unwrap();
        let counters = StepCounters {
            adds,
            updates,
            deletes,
            no_change: 7,
            errors: u64::from(step == StepKind::Synchronization),
            ..StepCounters::default()
        };
        store
            .finish_step(first, step, None, &counters, started + 900)
            .unwrap();
    }
    store
        .record_changes(
            first,
            &[
                change(
                    ChangeKind::Add,
                    ObjectKind::User,
                    "CN=Ann Lee,OU=Sales,DC=corp,DC=test",
                    vec![
                        attribute("displayName", Value::Null, json!("Ann Lee")),
                        attribute(
                            "businessPhones",
                            json!([]),
                            json!(["+1 555 0100", "+1 555 0101"]),
                        ),
                        attribute(
                            "description",
                            Value::Null,
                            json!("d".repeat(LONG_DESCRIPTION_CHARS)),
                        ),
                    ],
                ),
                change(
                    ChangeKind::Add,
                    ObjectKind::Group,
                    "CN=Finance,OU=Groups,DC=corp,DC=test",
                    vec![attribute("displayName", Value::Null, json!("Finance"))],
                ),
                change(
                    ChangeKind::Update,
                    ObjectKind::User,
                    "CN=Bob Ray,OU=Sales,DC=corp,DC=test",
                    vec![
                        attribute("jobTitle", json!("Clerk"), json!("Buyer")),
                        attribute("department", json!("Sales"), Value::Null),
                    ],
                ),
                change(
                    ChangeKind::Delete,
                    ObjectKind::User,
                    "CN=Cy Old,OU=Sales,DC=corp,DC=test",
                    Vec::new(),
                ),
            ],
        )
        .unwrap();
    store
        .record_errors(
            first,
            &[ErrorRecord {
                step: StepKind::Synchronization,
                dn: "CN=#name,OU=Sales,DC=corp,DC=test".to_owned(),
                anchor: Some("anchor-of-name".to_owned()),
                object_type: Some(ObjectKind::User),
                error_type: "invalid-character".to_owned(),
                code: Some("upn-invalid-character".to_owned()),
                server_message: "userPrincipalName contains ' '".to_owned(),
                hint: "userPrincipalName may not contain ' '; change it in Active Directory"
                    .to_owned(),
                first_occurred_at: T0 - 86_400_000,
                retry_count: 3,
            }],
        )
        .unwrap();
    store
        .finish_run(first, RunStatus::CompletedWithErrors, T0 + 64_000)
        .unwrap();

    let quiet = store
        .start_run(RunTrigger::Schedule, RunMode::Delta, T0 + 1_800_000)
        .unwrap();
    store
        .finish_run(quiet, RunStatus::Success, T0 + 1_800_400)
        .unwrap();

    let preview = store
        .start_run(RunTrigger::Cli, RunMode::Preview, T0 + 3_600_000)
        .unwrap();
    store
        .start_step(preview, StepKind::Synchronization, None, T0 + 3_600_000)
        .unwrap();
    let planned = StepCounters {
        updates: 2,
        ..StepCounters::default()
    };
    store
        .finish_step(
            preview,
            StepKind::Synchronization,
            None,
            &planned,
            T0 + 3_600_500,
        )
        .unwrap();
    store
        .finish_run(preview, RunStatus::Success, T0 + 3_600_500)
        .unwrap();
    [first, quiet, preview]
}

#[test]
fn an_empty_home_has_no_runs_and_no_database_is_made() {
    let home = tempfile::tempdir().unwrap();
    let output = dirsync(home.path(), &["runs"]);
    assert_eq!(output.status, 0, "{}", output.stderr);
    assert_eq!(output.stdout.trim(), "no runs yet");
    assert_eq!(
        json_of(&dirsync(home.path(), &["runs", "--json"])),
        json!({"runs": []})
    );
    assert!(!home.path().join("state.db").exists());

    let output = dirsync(home.path(), &["runs", "show", "1"]);
    assert_eq!(output.status, 2);
    assert!(
        output
            .stderr
            .contains("no run 1; `dirsync runs` lists them"),
        "{}",
        output.stderr
    );
}

#[test]
fn the_list_is_newest_first_with_export_counters_and_honours_limit() {
    let home = tempfile::tempdir().unwrap();
    let [first, quiet, preview] = seed(home.path());

    let output = dirsync(home.path(), &["runs"]);
    assert_eq!(output.status, 0, "{}", output.stderr);
    let lines: Vec<&str> = output.stdout.lines().collect();
    assert!(lines[0].contains("STARTED (UTC)"), "{}", output.stdout);
    let ids: Vec<i64> = lines[1..4]
        .iter()
        .map(|line| line.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, [preview, quiet, first]);
    let first_line = lines[3];
    for needle in [
        "2026-11-21 14:03:07Z",
        "1m 04s",
        "wizard",
        "full",
        "completed-with-errors",
    ] {
        assert!(first_line.contains(needle), "'{needle}' in {first_line}");
    }
    // The export step's adds, updates, deletes; the run's errors.
    assert!(
        first_line.ends_with("3        1        1       1"),
        "{first_line}"
    );

    let document = json_of(&dirsync(home.path(), &["runs", "--json", "--limit", "2"]));
    let runs = document["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["id"], preview);
    assert_eq!(runs[1]["id"], quiet);
    assert_eq!(runs[1]["trigger"], "schedule");
    assert_eq!(runs[1]["status"], "success");
    assert_eq!(runs[1]["duration_ms"], 400);
    assert_eq!(runs[0]["steps"][0]["step"], "synchronization");
    assert_eq!(runs[0]["steps"][0]["updates"], 2);

    let document = json_of(&dirsync(home.path(), &["runs", "--json"]));
    let oldest = &document["runs"][2];
    assert_eq!(oldest["started_at"], T0);
    assert_eq!(oldest["started_at_iso"], "2026-11-21T14:03:07.000Z");
    assert_eq!(oldest["ended_at"], T0 + 64_000);
    assert_eq!(
        oldest["steps"].as_array().unwrap().len(),
        4,
        "steps in cycle order"
    );
    assert_eq!(oldest["steps"][3]["step"], "cloud-export");
    assert_eq!(oldest["steps"][3]["no_change"], 7);

    let output = dirsync(home.path(), &["runs", "--limit", "1"]);
    assert_eq!(output.stdout.lines().count(), 3, "{}", output.stdout);
    assert!(output.stdout.contains("--limit N shows more"));
}

#[test]
fn show_lists_every_change_with_old_and_new_values_and_every_error() {
    let home = tempfile::tempdir().unwrap();
    let [first, ..] = seed(home.path());
    let id = first.to_string();

    let output = dirsync(home.path(), &["runs", "show", &id]);
    assert_eq!(output.status, 0, "{}", output.stderr);
    let text = &output.stdout;
    for needle in [
        "completed-with-errors",
        "started  2026-11-21 14:03:07Z",
        "NO-CHANGE",
        "cloud-export",
        "Object changes (4)",
        "add     user   CN=Ann Lee,OU=Sales,DC=corp,DC=test",
        "add     group  CN=Finance,OU=Groups,DC=corp,DC=test",
        "update  user   CN=Bob Ray,OU=Sales,DC=corp,DC=test",
        "delete  user   CN=Cy Old,OU=Sales,DC=corp,DC=test",
        "displayName: (none) → Ann Lee",
        "businessPhones: (none) → [+1 555 0100, +1 555 0101]",
        "jobTitle: Clerk → Buyer",
        "department: Sales → (none)",
        "Errors (1)",
        "CN=#name,OU=Sales,DC=corp,DC=test  (user)",
        "invalid-character  code upn-invalid-character",
        "first occurred 2026-11-20 14:03:07Z",
        "retries 3",
        "message: userPrincipalName contains ' '",
        "hint: userPrincipalName may not contain ' '; change it in Active Directory",
    ] {
        assert!(text.contains(needle), "'{needle}' missing from:\n{text}");
    }
    // Long values are cut in human text...
    assert!(text.contains("description: (none) → ddd"), "{text}");
    assert!(
        !text.contains(&"d".repeat(LONG_DESCRIPTION_CHARS)),
        "{text}"
    );

    // ...and whole in JSON.
    let document = json_of(&dirsync(home.path(), &["runs", "show", &id, "--json"]));
    assert_eq!(document["run"]["id"], first);
    assert_eq!(document["run"]["steps"].as_array().unwrap().len(), 4);
    let changes = document["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 4);
    assert_eq!(changes[0]["change_kind"], "add");
    assert_eq!(changes[0]["object_type"], "user");
    assert_eq!(changes[0]["step"], "cloud-export");
    assert_eq!(
        changes[0]["attributes"][2]["new"],
        json!("d".repeat(LONG_DESCRIPTION_CHARS))
    );
    assert_eq!(
        changes[2]["attributes"][0],
        json!({"name": "jobTitle", "old": "Clerk", "new": "Buyer"})
    );
    let errors = document["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["code"], "upn-invalid-character");
    assert_eq!(
        errors[0]["server_message"],
        "userPrincipalName contains ' '"
    );
    assert_eq!(errors[0]["retry_count"], 3);
    assert_eq!(errors[0]["first_occurred_at"], T0 - 86_400_000);
}

#[test]
fn kind_shows_only_the_changes_or_errors_asked_for() {
    let home = tempfile::tempdir().unwrap();
    let [first, ..] = seed(home.path());
    let id = first.to_string();

    let kinds = |filter: &str| -> (Vec<Value>, usize) {
        let document = json_of(&dirsync(
            home.path(),
            &["runs", "show", &id, "--kind", filter, "--json"],
        ));
        let changes = document["changes"].as_array().unwrap();
        let errors = document["errors"].as_array().unwrap().len();
        (
            changes.iter().map(|c| c["change_kind"].clone()).collect(),
            errors,
        )
    };
    assert_eq!(kinds("adds"), (vec![json!("add"), json!("add")], 0));
    assert_eq!(kinds("updates"), (vec![json!("update")], 0));
    assert_eq!(kinds("deletes"), (vec![json!("delete")], 0));
    assert_eq!(kinds("errors"), (vec![], 1));

    let output = dirsync(home.path(), &["runs", "show", &id, "--kind", "updates"]);
    assert_eq!(output.status, 0, "{}", output.stderr);
    assert!(output.stdout.contains("Updates (1)"), "{}", output.stdout);
    assert!(output.stdout.contains("CN=Bob Ray"));
    assert!(!output.stdout.contains("CN=Ann Lee"));
    assert!(!output.stdout.contains("Errors"));

    let output = dirsync(home.path(), &["runs", "show", &id, "--kind", "errors"]);
    assert!(output.stdout.contains("Errors (1)"), "{}", output.stdout);
    assert!(!output.stdout.contains("CN=Ann Lee"));

    let output = dirsync(home.path(), &["runs", "show", &id, "--kind", "renames"]);
    assert_eq!(output.status, 2, "clap refuses an unknown kind");
}

#[test]
fn an_unknown_run_is_bad_input() {
    let home = tempfile::tempdir().unwrap();
    seed(home.path());
    let output = dirsync(home.path(), &["runs", "show", "999"]);
    assert_eq!(output.status, 2);
    assert_eq!(output.stdout, "");
    assert_eq!(
        output.stderr.trim(),
        "dirsync: error: no run 999; `dirsync runs` lists them"
    );

    let output = dirsync(home.path(), &["runs", "show", "999", "--json"]);
    assert_eq!(output.status, 2);
    let document: Value = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(document["error"]["kind"], "bad-input");

    let output = dirsync(home.path(), &["runs", "--limit", "0"]);
    assert_eq!(output.status, 2, "{}", output.stderr);
}

#[test]
fn a_run_that_failed_as_a_whole_shows_its_own_error() {
    let home = tempfile::tempdir().unwrap();
    let store = StateStore::open(&home.path().join("state.db")).unwrap();
    let failed = store
        .start_run(RunTrigger::Cli, RunMode::Delta, T0)
        .unwrap();
    store
        .start_step(failed, StepKind::DirectoryImport, None, T0)
        .unwrap();
    store
        .record_errors(
            failed,
            &[ErrorRecord {
                step: StepKind::DirectoryImport,
                dn: String::new(),
                anchor: None,
                object_type: None,
                error_type: "run-failed".to_owned(),
                code: None,
                server_message: "cannot connect to dc1.corp.test:636: connection refused"
                    .to_owned(),
                hint: "check that the domain controller is up".to_owned(),
                first_occurred_at: T0,
                retry_count: 0,
            }],
        )
        .unwrap();
    store
        .finish_run(failed, RunStatus::Failed, T0 + 2000)
        .unwrap();
    drop(store);

    let output = dirsync(home.path(), &["runs"]);
    assert!(output.stdout.contains("failed"), "{}", output.stdout);
    let output = dirsync(home.path(), &["runs", "show", &failed.to_string()]);
    assert_eq!(output.status, 0, "{}", output.stderr);
    for needle in [
        "the run   [directory-import]",
        "run-failed  first occurred 2026-11-21 14:03:07Z  retries 0",
        "message: cannot connect to dc1.corp.test:636: connection refused",
        "Object changes (0)",
    ] {
        assert!(
            output.stdout.contains(needle),
            "'{needle}' missing from:\n{}",
            output.stdout
        );
    }
    // A step that never finished shows no duration rather than a made-up one.
    assert!(
        output
            .stdout
            .lines()
            .any(|line| line.trim_start().starts_with("directory-import") && line.ends_with('-')),
        "{}",
        output.stdout
    );
}
