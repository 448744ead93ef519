//! The dashboard driven by role and label (egui_kittest) against a store that real runs filled:
//! `dirsync sync` against the Samba AD lab and the tenant emulator, then the window reads what
//! they recorded. The history lists the runs the CLI reported, a counter lists exactly the objects
//! `dirsync runs show` lists, an error shows its hint, Sync now runs a real delta with live
//! progress, and an export writes the run as `runs show` has it. Each test has its own home,
//! tenant and OU under OU=Staging.
//!
//! Run alone with `keyctl session - cargo test --test dashboard_lab` (the keyring is the kernel's).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::installation::*;
use common::lab;
use common::window::*;
use dirsync::config::SyncOptions;
use dirsync::store::vocabulary::{RunMode, RunStatus, RunTrigger};
use dirsync::ui::dashboard::DashboardOptions;
use egui::accesskit::Role;
use egui_kittest::kittest::{NodeT as _, Queryable};
use serde_json::Value;

/// The dashboard on an installation's home, as `dirsync` opens it, with the schedule off.
/// The runtime must outlive the harness: keep both.
fn open_window(installation: &Installation) -> (tokio::runtime::Runtime, Window) {
    open_window_with(
        installation,
        DashboardOptions {
            scheduling: false,
            read_cloud: true,
            fixed_now: None,
        },
    )
}

fn open_window_with(
    installation: &Installation,
    options: DashboardOptions,
) -> (tokio::runtime::Runtime, Window) {
    open_dashboard(installation.home.path(), options)
}

/// A user the IdFix rules refuse: a space in its userPrincipalName.
fn bad_user_ldif(ou: &TestOu) -> String {
    format!(
        "dn: {}\nchangetype: add\nobjectClass: user\nsAMAccountName: badupn{}\nuserPrincipalName: bad upn.{}@contoso.test\ndisplayName: bad upn {}\nmail: badupn.{}@contoso.test\nuserAccountControl: 512\n\n",
        bad_user_dn(ou),
        ou.tag,
        ou.tag,
        ou.tag,
        ou.tag
    )
}

fn bad_user_dn(ou: &TestOu) -> String {
    ou.user_dn("badupn")
}

/// An installation whose first (full) run added an OU's users and group and refused one user
/// with an IdFix error. Returns its report.
fn synced_with_an_error(prefix: &str) -> (TestOu, Installation, Value) {
    let lab = lab();
    let ou = TestOu::create(prefix, &["ann", "bob", "cid"]);
    ldapmodify(lab, &bad_user_ldif(&ou));
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let started = Instant::now();
    let (status, report) = installation.sync(&[]);
    eprintln!("[{prefix}] first sync: {:?}", started.elapsed());
    assert_eq!(status, 3, "an object error exits 3: {report:#}");
    assert_eq!(report["run"]["mode"], "full");
    assert_eq!(step(&report, "cloud-export")["adds"], 4, "{report:#}");
    let errors = errors_of(&report, "CN=badupn");
    assert_eq!(errors.len(), 1, "{report:#}");
    assert_eq!(errors[0]["error_type"], "invalid-character", "{report:#}");
    (ou, installation, report)
}

/// Opens a run by clicking its link in the history, and waits for its steps.
/// The DNs of an OU listed on screen (the object list under a counter), in order.
fn listed_dns(window: &Window, ou: &TestOu) -> Vec<String> {
    let suffix = format!(",{}", ou.dn).to_lowercase();
    window
        .query_all_by_role(Role::Label)
        .filter_map(|node| text_of(&node))
        .filter(|label| label.to_lowercase().ends_with(&suffix))
        .collect()
}

/// The counter buttons of the open run: (step, kind, value), as their labels name them.
fn counters(window: &Window) -> Vec<(String, String, u64)> {
    window
        .query_all_by_role(Role::Button)
        .filter_map(|node| text_of(&node))
        .filter_map(|label| {
            let (name, value) = label.rsplit_once(": ")?;
            let (step, kind) = name.rsplit_once(' ')?;
            let kind = ["adds", "updates", "renames", "deletes", "errors"]
                .into_iter()
                .find(|known| *known == kind)?;
            Some((step.to_owned(), kind.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn change_kind_of(counter: &str) -> &'static str {
    match counter {
        "adds" => "add",
        "updates" => "update",
        "renames" => "rename",
        "deletes" => "delete",
        other => panic!("no change kind for {other}"),
    }
}

#[test]
fn the_history_lists_the_runs_the_cli_made_newest_first() {
    let lab = lab();
    let ou = TestOu::create("dhist", &["ann", "bob", "cid"]);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let started = Instant::now();
    // A first (full) run that adds, a delta that meets an IdFix error, a delta that fixes it.
    let (status, first) = installation.sync(&[]);
    assert_eq!(status, 0, "{first:#}");
    assert_eq!(first["run"]["mode"], "full");
    assert_eq!(step(&first, "cloud-export")["adds"], 4, "{first:#}");
    ldapmodify(lab, &bad_user_ldif(&ou));
    let (status, refused) = installation.sync(&[]);
    assert_eq!(status, 3, "{refused:#}");
    assert_eq!(refused["run"]["mode"], "delta");
    assert_eq!(errors_of(&refused, "CN=badupn").len(), 1, "{refused:#}");
    ldapmodify(
        lab,
        &format!(
            "dn: {}\nchangetype: modify\nreplace: userPrincipalName\nuserPrincipalName: badupn.{}@contoso.test\n-\n",
            bad_user_dn(&ou),
            ou.tag
        ),
    );
    let (status, fixed) = installation.sync(&[]);
    assert_eq!(status, 0, "{fixed:#}");
    assert_eq!(fixed["run"]["mode"], "delta");
    assert_eq!(step(&fixed, "cloud-export")["adds"], 1, "{fixed:#}");
    eprintln!("three CLI syncs: {:?}", started.elapsed());

    // Newest first, as `dirsync runs` lists them.
    let expected: Vec<(i64, &str, &str)> = [&fixed, &refused, &first]
        .iter()
        .map(|report| {
            (
                run_id(report),
                report["run"]["status"].as_str().unwrap(),
                report["run"]["mode"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        expected.iter().map(|run| run.1).collect::<Vec<_>>(),
        ["success", "completed-with-errors", "success"]
    );
    let listed = installation.dirsync(&["runs", "--json"]);
    let listed: Value = serde_json::from_str(&listed.stdout).unwrap();
    let cli_ids: Vec<i64> = listed["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        cli_ids,
        expected.iter().map(|run| run.0).collect::<Vec<_>>()
    );

    let (_runtime, mut window) = open_window(&installation);
    let opened = Instant::now();
    let links: Vec<String> = expected
        .iter()
        .map(|run| format!("Run {}", run.0))
        .collect();
    let read_in = wait_until(&mut window, READ, "a link for every run", |window| {
        links
            .iter()
            .all(|link| window.query_by_role_and_label(Role::Link, link).is_some())
    });
    eprintln!("history shown in {read_in:?}");

    // The records the dashboard holds.
    let runs = dashboard(&window).runs();
    assert_eq!(
        runs.iter().map(|run| run.id).collect::<Vec<_>>(),
        expected.iter().map(|run| run.0).collect::<Vec<_>>()
    );
    for (run, (id, status, mode)) in runs.iter().zip(&expected) {
        assert_eq!(run.status.as_str(), *status, "run {id}");
        assert_eq!(run.mode.as_str(), *mode, "run {id}");
        assert_eq!(run.trigger, RunTrigger::Cli, "run {id}");
        assert!(run.ended_at.is_some(), "run {id}");
    }
    // What the window shows: the links newest first, each row's status and mode.
    let shown_links: Vec<String> = window
        .query_all_by_role(Role::Link)
        .filter_map(|node| text_of(&node))
        .filter(|label| label.starts_with("Run "))
        .collect();
    assert_eq!(shown_links, links, "the history's links, in order");
    let words = |known: &[&str]| -> Vec<String> {
        // A badge pads its word with spaces.
        texts(&window)
            .into_iter()
            .map(|text| text.trim().to_owned())
            .filter(|text| known.contains(&text.as_str()))
            .collect()
    };
    let statuses: Vec<&str> = RunStatus::ALL
        .iter()
        .map(|status| status.as_str())
        .collect();
    assert_eq!(
        words(&statuses),
        expected
            .iter()
            .map(|run| run.1.to_owned())
            .collect::<Vec<_>>(),
        "the status badges, row by row"
    );
    let modes: Vec<&str> = RunMode::ALL.iter().map(|mode| mode.as_str()).collect();
    assert_eq!(
        words(&modes),
        expected
            .iter()
            .map(|run| run.2.to_owned())
            .collect::<Vec<_>>(),
        "the modes, row by row"
    );
    assert_eq!(words(&["cli"]), ["cli"; 3], "the triggers, row by row");
    // Each row's counters are the export's, and its errors every step's, as the CLI has them.
    let shown = texts(&window);
    for (report, link) in [&fixed, &refused, &first].iter().zip(&links) {
        let at = shown.iter().position(|text| text == link).unwrap();
        let row = &shown[at + 1..at + 11];
        let export = step(report, "cloud-export");
        let errors: u64 = report["run"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|step| step["errors"].as_u64().unwrap())
            .sum();
        let expected = [
            export["adds"].to_string(),
            export["updates"].to_string(),
            export["deletes"].to_string(),
            errors.to_string(),
        ];
        assert_eq!(row[5..9], expected, "{link}'s counters: {row:?}");
        assert!(row[4].ends_with(" s"), "{link}'s duration: {row:?}");
    }
    assert!(shows(&window, "Run history (3 runs)"), "{}", tree(&window));
    installation.assert_no_secret(&tree(&window));
    eprintln!("history checked in {:?}", opened.elapsed());
}

#[test]
fn a_counter_lists_exactly_the_objects_runs_show_lists() {
    let (ou, installation, report) = synced_with_an_error("dcnt");
    let id = run_id(&report);
    let shown = installation.runs_show(id, None);
    let adds = installation.runs_show(id, Some("adds"));
    let (_runtime, mut window) = open_window(&installation);
    open_run_by_link(&mut window, id);

    let export_adds = step(&report, "cloud-export")["adds"].as_u64().unwrap();
    let label = format!("cloud-export adds: {export_adds}");
    wait_until(&mut window, READ, &label, |window| {
        window
            .query_by_role_and_label(Role::Button, &label)
            .is_some()
    });
    click(&mut window, &label);
    // Only the export records changes in a run that exports: every add `runs show` lists is
    // one of this counter's.
    assert!(
        adds["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|change| change["step"] == "cloud-export" && change["change_kind"] == "add"),
        "{adds:#}"
    );
    let expected: Vec<String> = adds["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["dn"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(expected.len() as u64, export_adds, "{adds:#}");
    wait_until(&mut window, READ, "the adds' DNs", |window| {
        !listed_dns(window, &ou).is_empty()
    });
    assert_eq!(
        listed_dns(&window, &ou),
        expected,
        "the list under {label} (in the order made)"
    );
    assert!(
        shows(
            &window,
            &format!("cloud-export adds ({} shown)", expected.len())
        ),
        "{}",
        tree(&window)
    );

    // Every other counter that lists objects lists exactly that step's changes of that kind.
    let all = counters(&window);
    eprintln!("counters on screen: {all:?}");
    let recorded = shown["changes"].as_array().unwrap();
    let mut checked = 0;
    for (step_name, kind, value) in all {
        if kind == "errors" {
            continue;
        }
        let label = format!("{step_name} {kind}: {value}");
        click(&mut window, &label);
        if step_name == "directory-import" {
            // `runs show` lists what dirsync changed, not what the import read: the first
            // (full) run read every object in scope, those it exported and the one it refused.
            assert_eq!(kind, "adds");
            let mut expected: Vec<String> = recorded
                .iter()
                .filter(|change| change["change_kind"] == "add")
                .chain(shown["errors"].as_array().unwrap())
                .map(|entry| entry["dn"].as_str().unwrap().to_lowercase())
                .collect();
            expected.sort();
            expected.dedup();
            let heading = format!("{step_name} {kind} ({} shown)", expected.len());
            wait_until(&mut window, READ, &heading, |window| {
                shows(window, &heading)
            });
            let mut listed: Vec<String> = listed_dns(&window, &ou)
                .iter()
                .map(|dn| dn.to_lowercase())
                .collect();
            listed.sort();
            assert_eq!(listed, expected, "the list under {label}");
            checked += 1;
            continue;
        }
        let expected: Vec<String> = recorded
            .iter()
            .filter(|change| {
                change["step"] == step_name.as_str()
                    && change["change_kind"] == change_kind_of(&kind)
            })
            .map(|change| change["dn"].as_str().unwrap().to_owned())
            .collect();
        let heading = format!("{step_name} {kind} ({} shown)", expected.len());
        wait_until(&mut window, READ, &heading, |window| {
            shows(window, &heading)
        });
        assert_eq!(listed_dns(&window, &ou), expected, "the list under {label}");
        checked += 1;
    }
    assert!(checked >= 1);
    installation.assert_no_secret(&tree(&window));
}

#[test]
fn an_error_shows_the_hint_runs_show_has() {
    let (ou, installation, report) = synced_with_an_error("derr");
    let id = run_id(&report);
    let shown = installation.runs_show(id, Some("errors"));
    let errors = shown["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{shown:#}");
    let error = &errors[0];
    let error_step = error["step"].as_str().unwrap();
    let hint = error["hint"].as_str().unwrap();
    assert!(!hint.is_empty(), "{shown:#}");
    let count = step(&report, error_step)["errors"].as_u64().unwrap();
    assert_eq!(count, 1, "{report:#}");

    let (_runtime, mut window) = open_window(&installation);
    open_run_by_link(&mut window, id);
    let label = format!("{error_step} errors: {count}");
    wait_until(&mut window, READ, &label, |window| {
        window
            .query_by_role_and_label(Role::Button, &label)
            .is_some()
    });
    click(&mut window, &label);
    let dn = bad_user_dn(&ou);
    wait_until(&mut window, READ, "the error's DN in the list", |window| {
        listed_dns(window, &ou) == [dn.clone()]
    });
    assert!(shows(&window, "invalid-character"), "{}", tree(&window));
    window.get_by_role_and_label(Role::Label, &dn).click();
    wait_until(&mut window, READ, "the object's details", |window| {
        shows(window, "Object details") && shows(window, "Hint: ")
    });
    let shown_hint: Vec<String> = window
        .query_all_by_label_contains("Hint: ")
        .filter_map(|node| text_of(&node))
        .collect();
    assert_eq!(shown_hint, [format!("Hint: {hint}")]);
    // The server's message (here the rule's statement) is shown as it was recorded.
    let message = error["server_message"].as_str().unwrap();
    assert!(
        window.query_by_label(message).is_some(),
        "the message {message:?} is not shown:\n{}",
        tree(&window)
    );
    // The same object, traced from the panel: every stage, as AD and the tenant hold it now.
    click(&mut window, "Trace this object");
    wait_until(&mut window, READ, "the trace", |window| {
        shows(window, "Verdict: ")
    });
    // A panel per stage, named as `dirsync trace` names them.
    assert!(shows(&window, "Verdict: not exported"), "{}", tree(&window));
    for stage in ["1. Found in AD: ", "2. Scope: in scope", "5. Validation:"] {
        assert!(shows(&window, stage), "{stage}:\n{}", tree(&window));
    }
    assert!(
        window
            .query_all_by_label_contains("[invalid-character]")
            .next()
            .is_some(),
        "{}",
        tree(&window)
    );
    // Fixed in AD, pushed from the panel: in the cloud at once, without waiting for a cycle.
    let fixed_upn = format!("badupn.fixed.{}@contoso.test", ou.tag);
    ldapmodify(
        lab(),
        &format!(
            "dn: {dn}\nchangetype: modify\nreplace: userPrincipalName\nuserPrincipalName: {fixed_upn}\n\n"
        ),
    );
    click(&mut window, "Push now");
    wait_until(&mut window, READ, "the push", |window| {
        shows(window, "Pushed: run ")
    });
    assert!(shows(&window, "ended success"), "{}", tree(&window));
    assert!(
        user_with_upn(&installation.cloud_users(), &fixed_upn).is_some(),
        "the pushed user is in the cloud"
    );
    // Off-boarded from the panel: disabled in the cloud now, though AD has it enabled.
    click(&mut window, "and disable it in the cloud now");
    click(&mut window, "Push now");
    wait_until(&mut window, READ, "the disabling push", |window| {
        shows(window, "held disabled in the cloud")
    });
    let users = installation.cloud_users();
    let pushed = user_with_upn(&users, &fixed_upn).unwrap();
    assert_eq!(pushed["accountEnabled"], false, "{pushed}");
    installation.assert_no_secret(&tree(&window));
}

#[test]
fn sync_now_runs_a_delta_and_shows_its_progress() {
    let lab = lab();
    let ou = TestOu::create("dnow", &["ann", "bob"]);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let (status, first) = installation.sync(&[]);
    assert_eq!(status, 0, "{first:#}");
    let first_id = run_id(&first);
    let (_runtime, mut window) = open_window(&installation);
    wait_until(
        &mut window,
        READ,
        "the first run in the history",
        |window| dashboard(window).runs().len() == 1,
    );
    ldapmodify(lab, &user_ldif(&ou.dn, &ou.tag, "dee"));

    // The click's frames are the loop's first: the live line is watched from the start.
    window.get_by_label("Sync now").click();
    let started = Instant::now();
    let mut seen_syncing = false;
    let mut lines: Vec<String> = Vec::new();
    let mut stages: Vec<String> = Vec::new();
    let mut fractions: Vec<f64> = Vec::new();
    let mut frames = 0u32;
    let mut syncing = false;
    loop {
        // Whether the run was under way when this frame was drawn.
        let syncing_before = syncing;
        window.step();
        frames += 1;
        syncing = dashboard(&window).is_syncing();
        seen_syncing |= syncing;
        let shown = texts(&window);
        installation.assert_no_secret(&shown.join("\n"));
        for line in shown.into_iter().filter(|text| text.contains(" running: ")) {
            let stage = line
                .split_once(" running: ")
                .unwrap()
                .1
                .split([',', ';'])
                .next()
                .unwrap()
                .to_owned();
            if !stages.contains(&stage) {
                stages.push(stage);
            }
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
        // The progress bar is the indicator with a value (spinners have none).
        if let Some(value) = window
            .query_all_by_role(Role::ProgressIndicator)
            .find_map(|node| node.accesskit_node().numeric_value())
            && fractions.last() != Some(&value)
        {
            fractions.push(value);
        }
        if syncing_before && syncing {
            // While it runs, no second run can be started; it can be stopped.
            for (button, disabled) in [
                ("Sync now", true),
                ("Full sync", true),
                ("Preview", true),
                ("Stop", false),
            ] {
                assert_eq!(
                    window.get_by_label(button).accesskit_node().is_disabled(),
                    disabled,
                    "{button} while a run is under way"
                );
            }
        }
        assert!(
            seen_syncing || frames < 20,
            "Sync now started no run; the window shows:\n{}",
            tree(&window)
        );
        if seen_syncing && !syncing {
            break;
        }
        assert!(
            started.elapsed() < RUN,
            "the run did not end in {RUN:?}; the window shows:\n{}",
            tree(&window)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let took = started.elapsed();
    eprintln!(
        "Sync now ran in {took:?} ({frames} frames); stages {stages:?}; progress {fractions:?}; {} distinct lines, first {:?}, last {:?}",
        lines.len(),
        lines.first(),
        lines.last()
    );
    assert!(seen_syncing, "is_syncing() never became true");
    assert!(
        lines
            .first()
            .is_some_and(|line| line.starts_with("Sync (manual) running: ")),
        "{lines:#?}"
    );
    assert!(lines.len() >= 2, "the live line never changed: {lines:#?}");
    assert!(
        stages.len() >= 2,
        "the live line showed one stage only: {stages:?}"
    );
    assert!(!fractions.is_empty(), "no progress bar was seen");
    assert!(
        fractions.windows(2).all(|pair| pair[0] <= pair[1]),
        "the progress bar went back: {fractions:?}"
    );

    // The history gains the run, manual and successful.
    wait_until(&mut window, READ, "the new run in the history", |window| {
        dashboard(window).runs().len() == 2
    });
    let newest = dashboard(&window).runs()[0].clone();
    assert_ne!(newest.id, first_id);
    assert_eq!(newest.trigger, RunTrigger::Manual, "{newest:?}");
    assert_eq!(newest.status, RunStatus::Success, "{newest:?}");
    assert_eq!(newest.mode, RunMode::Delta, "{newest:?}");
    let link = format!("Run {}", newest.id);
    wait_until(&mut window, READ, &link, |window| {
        window.query_by_role_and_label(Role::Link, &link).is_some()
    });
    assert!(
        shows(&window, &format!("Run {} (sync) ended: success", newest.id)),
        "{}",
        tree(&window)
    );
    let links: Vec<String> = window
        .query_all_by_role(Role::Link)
        .filter_map(|node| text_of(&node))
        .collect();
    assert_eq!(links, [link.clone(), format!("Run {first_id}")]);
    assert!(
        !window
            .get_by_label("Sync now")
            .accesskit_node()
            .is_disabled()
    );
    assert!(user_with_upn(&installation.cloud_users(), &ou.upn("dee")).is_some());
    // And the CLI sees the same run.
    let cli = installation.runs_show(newest.id, None);
    assert_eq!(cli["run"]["trigger"], "manual");
    assert_eq!(cli["run"]["status"], "success");
    assert!(
        cli["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|change| change["step"] == "cloud-export"
                && change["change_kind"] == "add"
                && change["dn"] == ou.user_dn("dee").as_str()),
        "{cli:#}"
    );
    installation.assert_no_secret(&tree(&window));
}

/// An RFC 4180 document: rows of cells; rows end in CRLF, a quoted cell may hold anything.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    assert!(text.ends_with("\r\n"), "the last row ends in CRLF");
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut at_cell_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cell.push('"');
                } else {
                    quoted = false;
                }
            } else {
                cell.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                assert!(at_cell_start, "a quote inside an unquoted cell: {cell:?}");
                quoted = true;
                at_cell_start = false;
            }
            ',' => {
                row.push(std::mem::take(&mut cell));
                at_cell_start = true;
            }
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "a CR without LF outside quotes");
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
                at_cell_start = true;
            }
            '\n' => panic!("a bare LF outside quotes after {cell:?}"),
            other => {
                cell.push(other);
                at_cell_start = false;
            }
        }
    }
    assert!(!quoted, "an unterminated quoted cell");
    rows
}

/// A cell as the CSV writes it: a leading `'` before what a spreadsheet would run as a formula.
fn csv_text(value: &Value) -> String {
    let text = match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text
    }
}

/// What an export says when it is done: `Saved 5 changes and 1 error to PATH`.
fn saved_message(changes: usize, errors: usize, path: &Path) -> String {
    let counted = |count: usize, what: &str| {
        if count == 1 {
            format!("1 {what}")
        } else {
            format!("{count} {what}s")
        }
    };
    format!(
        "Saved {} and {} to {}",
        counted(changes, "change"),
        counted(errors, "error"),
        path.display()
    )
}

fn export(window: &mut Window, button: &str, path: &Path) -> String {
    click(window, button);
    let shown = path.display().to_string();
    let took = wait_until(window, READ, &format!("the export to {shown}"), |window| {
        window
            .query_all_by_label_contains("Saved ")
            .filter_map(|node| text_of(&node))
            .any(|label| label.ends_with(&shown))
    });
    eprintln!("{button} written in {took:?}");
    window
        .query_all_by_label_contains("Saved ")
        .filter_map(|node| text_of(&node))
        .find(|label| label.ends_with(&shown))
        .unwrap()
}

#[test]
fn an_export_writes_the_run_as_runs_show_has_it() {
    let (_ou, installation, report) = synced_with_an_error("dexp");
    let id = run_id(&report);
    let shown = installation.runs_show(id, None);
    let changes = shown["changes"].as_array().unwrap();
    let errors = shown["errors"].as_array().unwrap();
    assert!(!changes.is_empty() && !errors.is_empty(), "{shown:#}");
    let folder = tempfile::tempdir().unwrap();
    let (_runtime, mut window) = open_window(&installation);
    window
        .state_mut()
        .dashboard_mut()
        .unwrap()
        .export_folder_override = Some(folder.path().to_owned());
    open_run_by_link(&mut window, id);

    let csv_path = folder.path().join(format!("dirsync-run-{id}.csv"));
    let message = export(&mut window, "Export CSV…", &csv_path);
    assert_eq!(
        message,
        saved_message(changes.len(), errors.len(), &csv_path),
        "what the export says it wrote"
    );
    let text = std::fs::read_to_string(&csv_path).unwrap();
    installation.assert_no_secret(&text);
    let rows = parse_csv(&text);
    assert_eq!(
        rows[0],
        [
            "run",
            "row",
            "step",
            "change",
            "object_type",
            "dn",
            "anchor",
            "cloud_id",
            "attributes",
            "error_type",
            "code",
            "message",
            "hint",
            "retry_count"
        ]
    );
    assert!(rows.iter().all(|row| row.len() == 14), "{rows:#?}");
    let change_rows: Vec<&Vec<String>> =
        rows[1..].iter().filter(|row| row[1] == "change").collect();
    let error_rows: Vec<&Vec<String>> = rows[1..].iter().filter(|row| row[1] == "error").collect();
    assert_eq!(
        change_rows.len() + error_rows.len(),
        rows.len() - 1,
        "every row is a change or an error"
    );
    assert_eq!(change_rows.len(), changes.len());
    assert_eq!(error_rows.len(), errors.len());
    for (row, change) in change_rows.iter().zip(changes) {
        assert_eq!(row[0], id.to_string());
        let expected = [
            csv_text(&change["step"]),
            csv_text(&change["change_kind"]),
            csv_text(&change["object_type"]),
            csv_text(&change["dn"]),
            csv_text(&change["anchor"]),
            csv_text(&change["cloud_id"]),
        ];
        assert_eq!(row[2..8], expected, "{change:#}");
        // One `name: old -> new` line per attribute, in order.
        let lines: Vec<&str> = if row[8].is_empty() {
            Vec::new()
        } else {
            row[8].split('\n').collect()
        };
        let names: Vec<&str> = change["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|attribute| attribute["name"].as_str().unwrap())
            .collect();
        assert_eq!(lines.len(), names.len(), "{:?} against {change:#}", row[8]);
        for (line, name) in lines.iter().zip(&names) {
            assert!(line.starts_with(&format!("{name}: ")), "{line:?}");
            assert!(line.contains(" -> "), "{line:?}");
        }
        assert!(row[9..].iter().all(String::is_empty), "{row:?}");
    }
    for (row, error) in error_rows.iter().zip(errors) {
        assert_eq!(row[0], id.to_string());
        let expected = [
            csv_text(&error["step"]),
            String::new(),
            csv_text(&error["object_type"]),
            csv_text(&error["dn"]),
            csv_text(&error["anchor"]),
            String::new(),
            String::new(),
            csv_text(&error["error_type"]),
            csv_text(&error["code"]),
            csv_text(&error["server_message"]),
            csv_text(&error["hint"]),
            csv_text(&error["retry_count"]),
        ];
        assert_eq!(row[2..], expected, "{error:#}");
    }
    let dns: BTreeSet<&str> = change_rows.iter().map(|row| row[5].as_str()).collect();
    assert!(dns.len() >= 4, "{dns:?}");

    let json_path = folder.path().join(format!("dirsync-run-{id}.json"));
    let message = export(&mut window, "Export JSON…", &json_path);
    assert_eq!(
        message,
        saved_message(changes.len(), errors.len(), &json_path),
        "what the export says it wrote"
    );
    let text = std::fs::read_to_string(&json_path).unwrap();
    installation.assert_no_secret(&text);
    let document: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(document, shown, "the JSON export is `runs show --json`");
    let left: Vec<String> = std::fs::read_dir(folder.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left.iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([
            &format!("dirsync-run-{id}.csv"),
            &format!("dirsync-run-{id}.json")
        ]),
        "no partial file is left"
    );
    installation.assert_no_secret(&tree(&window));
}

#[test]
fn connectors_show_the_directory_and_what_the_tenant_says() {
    let ou = TestOu::create("dcon", &["ann", "bob"]);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let (status, first) = installation.sync(&[]);
    assert_eq!(status, 0, "{first:#}");
    let (_runtime, mut window) = open_window(&installation);
    click(&mut window, "Connectors");
    // The verified domains come from the tenant itself, asked with the sync app's secret.
    wait_until(
        &mut window,
        READ,
        "the tenant's verified domains",
        |window| shows(window, "contoso.test; corp.dirsync.test"),
    );
    assert!(shows(&window, &ou.dn), "the scope");
    assert!(shows(&window, "MSOL_"), "the service account");
    // Two users and the OU's group are in scope and managed in the cloud (the store's figures
    // are read beside the tenant's, and may arrive after them).
    let objects = step(&first, "cloud-export")["adds"].as_u64().unwrap();
    wait_until(&mut window, READ, "the store's figures", |window| {
        texts(window)
            .iter()
            .any(|text| *text == objects.to_string())
    });
    let figures: Vec<String> = texts(&window);
    assert_eq!(
        figures
            .iter()
            .filter(|text| **text == objects.to_string())
            .count(),
        2,
        "objects in scope and objects dirsync manages: {figures:?}"
    );
    assert!(shows(&window, "none in the kept history"), "no throttling");
    assert!(
        !texts(&window)
            .iter()
            .any(|text| text.contains(&installation.client_secret)),
        "no secret on screen"
    );
}

#[test]
fn connectors_count_the_users_awaiting_deletion() {
    let lab = lab();
    let ou = TestOu::create("dwait", &["ann", "bob"]);
    let outside = TestOu::create("dwaitout", &[]);
    let options = SyncOptions {
        disable_before_delete: true,
        ..SyncOptions::default()
    };
    let installation = Installation::new(&[ou.dn.as_str()], &[], options);
    let (status, first) = installation.sync(&[]);
    assert_eq!(status, 0, "{first:#}");
    ldapmodify(
        lab,
        &format!(
            "dn: {}\nchangetype: modrdn\nnewrdn: CN=bob\ndeleteoldrdn: 1\nnewsuperior: {}\n\n",
            ou.user_dn("bob"),
            outside.dn
        ),
    );
    let (status, out) = installation.sync(&[]);
    assert_eq!(status, 0, "{out:#}");
    let (_runtime, mut window) = open_window(&installation);
    click(&mut window, "Connectors");
    wait_until(&mut window, READ, "the users awaiting deletion", |window| {
        texts(window)
            .iter()
            .any(|text| text.starts_with("1 user(s) disabled after leaving the scope"))
    });
    assert!(shows(&window, "Awaiting deletion"));
}

#[test]
fn the_window_leaves_the_schedule_to_a_running_service_and_takes_it_back() {
    let ou = TestOu::create("dsvc", &["ann"]);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let mut service = installation
        .command(&["service"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The service syncs at once (nothing synced yet, nothing held); once it has the schedule
    // (its run begins), a window opens and schedules, as it does when an administrator opens it.
    // (A window opened at the very same moment may take the free lease first and sync once
    // itself: the schedule's rule for a home that never synced.)
    let home = dirsync::home::Home::in_dir(installation.home.path());
    let started = Instant::now();
    while dirsync::store::StateStore::open_home(&home)
        .and_then(|store| store.runs(1))
        .map_or(true, |runs| runs.is_empty())
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the service ran nothing"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_runtime, mut window) = open_window_with(&installation, DashboardOptions::default());
    let pid = service.id();
    std::thread::sleep(Duration::from_secs(1));
    if let Some(status) = service.try_wait().unwrap() {
        let mut stderr = String::new();
        std::io::Read::read_to_string(service.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        panic!("the service ended at once ({status}): {stderr}");
    }
    wait_until(
        &mut window,
        RUN,
        "the service's run and its hold on the schedule",
        |window| {
            dashboard(window)
                .runs()
                .first()
                .is_some_and(|run| run.trigger == RunTrigger::Schedule)
                && shows(
                    window,
                    &format!("Schedule: run by dirsync service (process {pid})"),
                )
        },
    );
    assert!(
        !dashboard(&window).is_syncing(),
        "the window started no run"
    );
    // The service kept its run's progress in the store as it went (what a window shows live).
    let store = installation.store();
    let kept: i64 = store
        .connection()
        .query_row(
            "SELECT count(*) FROM runs WHERE progress_at IS NOT NULL",
            (),
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(kept, 1, "the service's run kept its progress");

    // The service stops (SIGTERM): the window takes the schedule.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        service.wait().unwrap().success(),
        "the service ends cleanly"
    );
    wait_until(
        &mut window,
        READ,
        "the window running the schedule",
        |window| shows(window, "Schedule: this window syncs every 30 minutes"),
    );
    // The service synced a moment ago: nothing is due yet, so the window starts no run.
    window.run_steps(5);
    assert!(!dashboard(&window).is_syncing());
    assert_eq!(dashboard(&window).runs().len(), 1);
}

#[test]
fn the_error_workbench_groups_the_shared_address_pair_and_exports_the_group() {
    // The seeded directory: Emma Laurent and Henry Walker share smtp:shared@contoso.test.
    let corp = corp();
    let installation = Installation::new(&[corp.as_str()], &[], SyncOptions::default());
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 3, "{report:#}");
    let id = run_id(&report);
    let folder = tempfile::tempdir().unwrap();
    let (_runtime, mut window) = open_window(&installation);
    window
        .state_mut()
        .dashboard_mut()
        .unwrap()
        .export_folder_override = Some(folder.path().to_owned());
    open_errors_tab(&mut window);
    let group = "Duplicate values inside AD: 2";
    wait_until(&mut window, READ, "the duplicates' group", |window| {
        shows(window, group)
    });
    for holder in ["CN=Emma Laurent", "CN=Henry Walker"] {
        assert!(
            window
                .query_all_by_label_contains(holder)
                .any(|node| text_of(&node).is_some_and(|text| text.contains("[duplicate]"))),
            "{holder} is not in the group:\n{}",
            tree(&window)
        );
    }
    assert!(shows(&window, "(trend "), "{}", tree(&window));

    let csv_path = folder
        .path()
        .join(format!("dirsync-run-{id}-duplicates.csv"));
    let message = export(
        &mut window,
        "Export Duplicate values inside AD as CSV",
        &csv_path,
    );
    assert_eq!(message, format!("Saved 2 errors to {}", csv_path.display()));
    let rows = parse_csv(&std::fs::read_to_string(&csv_path).unwrap());
    let mut dns: Vec<String> = rows[1..].iter().map(|row| row[5].clone()).collect();
    dns.sort();
    assert_eq!(dns.len(), 2, "{rows:?}");
    assert!(dns[0].starts_with("CN=Emma Laurent") && dns[1].starts_with("CN=Henry Walker"));
    // The CSV is the grouped list: the same errors runs show has for that cause.
    let shown = installation.runs_show(id, Some("errors"));
    let duplicates = shown["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|error| error["error_type"] == "duplicate")
        .count();
    assert_eq!(duplicates, 2);
}

#[test]
fn the_error_workbench_shows_the_cloud_object_holding_a_taken_value_beside_the_ad_object() {
    use dirsync::cloud::{GraphRequest, Method};
    // A cloud-only user made in the portal already has zoe's userPrincipalName (and another
    // address, so nothing soft-matches): creating zoe is refused as a conflict.
    let ou = TestOu::create("wbh", &["zoe"]);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let graph = installation.graph();
    let request = GraphRequest::new(Method::Post, &["users"]).with_body(serde_json::json!({
        "accountEnabled": true,
        "displayName": "zoe made in the portal",
        "mailNickname": format!("portal-{}", ou.tag),
        "userPrincipalName": ou.upn("zoe"),
        "mail": format!("portal-{}@contoso.test", ou.tag),
        "passwordProfile": {"password": "Cloud-Only-Pa55word!", "forceChangePasswordNextSignIn": false},
    }));
    let holder = runtime().block_on(graph.send(&request)).unwrap().unwrap();
    let holder_id = holder["id"].as_str().unwrap().to_owned();
    // Graph's answer to a create has the default properties only; createdDateTime is $select'ed.
    let read = GraphRequest::get(&["users", &holder_id]).with_query("$select", "createdDateTime");
    let created = runtime().block_on(graph.send(&read)).unwrap().unwrap()["createdDateTime"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 3, "{report:#}");
    let errors = errors_of(&report, "CN=zoe,");
    assert_eq!(errors.len(), 1, "{report:#}");
    assert_eq!(errors[0]["error_type"], "conflict", "{report:#}");

    let (_runtime, mut window) = open_window(&installation);
    open_errors_tab(&mut window);
    wait_until(&mut window, READ, "the conflicts' group", |window| {
        shows(window, "A value held by another cloud object: 1")
    });
    click(&mut window, &format!("Who holds {}?", ou.upn("zoe")));
    wait_until(&mut window, READ, "the holder read live", |window| {
        shows(window, "Not managed by dirsync")
    });
    for expected in [
        "In AD".to_owned(),
        "In the cloud (read now)".to_owned(),
        ou.user_dn("zoe"),
        format!("userPrincipalName: {}", ou.upn("zoe")),
        format!("User {}", ou.upn("zoe")),
        format!("Object ID {holder_id}"),
        format!("Created {created}"),
    ] {
        assert!(shows(&window, &expected), "{expected}:\n{}", tree(&window));
    }
    assert!(
        window
            .query_all_by_label_contains("a cloud-only object dirsync did not make")
            .next()
            .is_some(),
        "{}",
        tree(&window)
    );
}

/// Opens the Errors tab: the run history has an "Errors" column too, so the tab is the topmost
/// button of that name.
fn open_errors_tab(window: &mut Window) {
    let mut buttons: Vec<_> = window
        .query_all_by_role_and_label(Role::Button, "Errors")
        .collect();
    buttons.sort_by(|a, b| a.rect().min.y.total_cmp(&b.rect().min.y));
    buttons.first().expect("an Errors tab").click();
    window.run_steps(3);
}

#[test]
fn the_window_holding_the_schedule_syncs_a_change_in_ad_within_seconds_by_notification() {
    let ou = TestOu::create("dwat", &["ann"]);
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    // A poll every minute: only the DC's change notifications can bring the change in seconds.
    let mut config = dirsync::config::Config::load(&installation.config_path()).unwrap();
    config.options.watch_secs = 60;
    config.save(&installation.config_path()).unwrap();
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report:#}");
    // The window takes the free schedule; the next interval is half an hour away.
    let (_runtime, mut window) = open_window_with(&installation, DashboardOptions::default());
    wait_until(
        &mut window,
        READ,
        "the window to hold the schedule",
        |window| shows(window, "Schedule: this window"),
    );
    // Let the watch start (it reads the last cycle's cookie), then change a title in AD.
    for _ in 0..50 {
        window.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    let changed = Instant::now();
    ldapmodify(
        lab(),
        &format!(
            "dn: {}\nchangetype: modify\nreplace: title\ntitle: Watched\n\n",
            ou.user_dn("ann")
        ),
    );
    let arrived = |installation: &Installation| {
        user_with_upn(&installation.cloud_users(), &ou.upn("ann"))
            .is_some_and(|user| user["jobTitle"] == "Watched")
    };
    while !arrived(&installation) {
        assert!(
            changed.elapsed() < Duration::from_secs(10),
            "the change is not in the cloud 10 s later; the window shows:\n{}",
            tree(&window)
        );
        for _ in 0..10 {
            window.step();
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    eprintln!(
        "the window synced the change {:?} after it was made",
        changed.elapsed()
    );
    wait_until(
        &mut window,
        RUN,
        "the watch's run in the history",
        |window| dashboard(window).runs().len() == 2 && !dashboard(window).is_syncing(),
    );
    let run = &dashboard(&window).runs()[0];
    assert_eq!(run.trigger, RunTrigger::Schedule);
    assert_eq!(run.mode, RunMode::Delta);
}

#[test]
fn search_traces_a_user_that_never_synced_straight_from_ad() {
    // Hugo sits in an excluded OU: nothing in the sync state or the history knows him.
    let ou = TestOu::create("dtrs", &["anna"]);
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
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report:#}");
    let (_runtime, mut window) = open_window(&installation);
    click(&mut window, "Search");
    let hugo = format!("hugo.{}@contoso.test", ou.tag);
    window.get_by_label("Find an object:").click();
    window.run_steps(1);
    window.get_by_label("Find an object:").type_text(&hugo);
    window.run_steps(2);
    // The tab is a "Search" button too: the search's own is the lower one.
    let mut buttons: Vec<_> = window
        .query_all_by_role_and_label(Role::Button, "Search")
        .collect();
    buttons.sort_by(|a, b| a.rect().min.y.total_cmp(&b.rect().min.y));
    buttons.last().unwrap().click();
    window.run_steps(2);
    wait_until(&mut window, READ, "the search's answer", |window| {
        shows(window, "Nothing found in the sync state")
    });
    click(&mut window, "Trace in AD");
    wait_until(&mut window, READ, "the trace", |window| {
        shows(window, "Verdict: ")
    });
    assert!(
        shows(
            &window,
            &format!("Traced from what was asked in Search: {hugo}")
        ),
        "{}",
        tree(&window)
    );
    assert!(
        shows(
            &window,
            &format!("2. Scope: out of scope: under the excluded OU {hidden}")
        ),
        "{}",
        tree(&window)
    );
    assert!(shows(&window, "Verdict: not synced"), "{}", tree(&window));
}

fn type_into(window: &mut Window, label: &str, text: &str) {
    window.get_by_label(label).focus();
    window.run_steps(2);
    window.get_by_label(label).type_text(text);
    window.run_steps(2);
}

#[test]
fn settings_edit_the_sync_rules_test_them_preview_them_and_save_them() {
    let ou = TestOu::create("drl", &["ann", "bob"]);
    ldapmodify(
        lab(),
        &format!(
            "dn: {}\nchangetype: modify\nreplace: employeeType\nemployeeType: staff\n\n\
             dn: {}\nchangetype: modify\nreplace: employeeType\nemployeeType: contractor\n\n",
            ou.user_dn("ann"),
            ou.user_dn("bob")
        ),
    );
    let installation = Installation::new(&[ou.dn.as_str()], &[], SyncOptions::default());
    let (status, _) = installation.sync(&[]);
    assert_eq!(status, 0);
    let (_runtime, mut window) = open_window(&installation);
    // Tall enough that the whole rules section is on screen (what is scrolled away cannot be
    // clicked).
    window.set_size(egui::vec2(1040.0, 2200.0));
    window.run_steps(2);
    click(&mut window, "Settings");
    click(&mut window, "Sync rules");
    click(&mut window, "Add a scoping rule for users");
    type_into(&mut window, "Rule 1 attribute", "employeeType");
    type_into(&mut window, "Rule 1 value", "staff");
    assert!(shows(&window, "The rules are valid."), "{}", tree(&window));

    // Tried on bob as the service account reads him now: he would not sync.
    type_into(&mut window, "Test on", &ou.upn("bob"));
    click(&mut window, "Test");
    wait_until(&mut window, READ, "the test", |window| {
        shows(window, "Scope: does not sync")
    });
    assert!(shows(&window, &ou.user_dn("bob")));

    // Save waits for a preview of exactly these rules.
    assert!(
        window
            .get_by_label("Save rules")
            .accesskit_node()
            .is_disabled()
    );
    click(&mut window, "Preview rule changes");
    wait_until(&mut window, RUN, "the preview", |window| {
        shows(window, "leave the scope: 1")
    });
    assert!(shows(&window, &format!("- {}", ou.user_dn("bob"))));
    click(&mut window, "Save rules");
    wait_until(&mut window, READ, "the save", |window| {
        shows(window, "Rules saved")
    });
    let config = dirsync::config::Config::load(&installation.config_path()).unwrap();
    assert_eq!(config.rules.users.scoping.len(), 1);
    assert_eq!(config.rules.users.scoping[0].value, "staff");
    let audit = installation.dirsync(&["audit", "--json"]);
    let audit: Value = serde_json::from_str(&audit.stdout).unwrap();
    let entry = &audit["entries"][0];
    assert_eq!(entry["source"], "dashboard", "{entry}");
    assert_eq!(entry["action"], "rules saved", "{entry}");

    // The next sync applies them: bob's cloud user goes.
    let (status, report) = installation.sync(&[]);
    assert_eq!(status, 0, "{report}");
    let users = installation.cloud_users();
    assert!(user_with_upn(&users, &ou.upn("ann")).is_some());
    assert!(
        user_with_upn(&users, &ou.upn("bob")).is_none_or(|bob| !bob["deletedDateTime"].is_null())
    );
}
