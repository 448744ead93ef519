//! The state file (a restart keeps the tenant, its credentials, its objects and delta tokens),
//! the speed of many writes in a row, and the binary's contract (one JSON line, clean stop).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tenant_emulator::{EmulatorConfig, ReadyInfo, RunningEmulator};

#[tokio::test]
async fn a_restart_with_the_state_file_keeps_the_tenant() {
    let directory = tempfile::tempdir().unwrap();
    let state = directory.path().join("tenant.json");
    let with_state = || EmulatorConfig {
        state_file: Some(state.clone()),
        ..config()
    };
    let first = RunningEmulator::start(with_state()).unwrap();
    let info = first.info.clone();
    let token = app_token(&info).await;
    let kept = create_user(&info, &token, "kept", "a2VwdGtlcHRrZXB0a2VwdA==").await;
    let dropped = create_user(&info, &token, "gone", "Z29uZWdvbmVnb25lZ29uZQ==").await;
    let group = graph(
        &info,
        &token,
        Method::POST,
        "/groups",
        Some(security_group("crew")),
    )
    .await
    .body;
    let reference = json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{}", kept["id"].as_str().unwrap())});
    graph(
        &info,
        &token,
        Method::POST,
        &format!("/groups/{}/members/$ref", group["id"].as_str().unwrap()),
        Some(reference),
    )
    .await;
    let delta = graph(
        &info,
        &token,
        Method::GET,
        "/users/delta?$select=displayName",
        None,
    )
    .await;
    let delta_link = delta.body["@odata.deltaLink"].as_str().unwrap().to_owned();
    graph(
        &info,
        &token,
        Method::DELETE,
        &format!("/users/{}", dropped["id"].as_str().unwrap()),
        None,
    )
    .await;
    first.stop();

    let second = RunningEmulator::start(with_state()).unwrap();
    let again = &second.info;
    assert_eq!(again.tenant_id, info.tenant_id);
    assert_eq!(again.client_id, info.client_id);
    assert_eq!(again.client_secret, info.client_secret);
    assert_eq!(
        (&again.admin_user, &again.admin_password),
        (&info.admin_user, &info.admin_password)
    );
    // Access tokens issued before the restart are still good.
    let user = graph(
        again,
        &token,
        Method::GET,
        &format!("/users/kept@{DOMAIN}?$select=id,onPremisesImmutableId"),
        None,
    )
    .await;
    assert_eq!(user.status, StatusCode::OK);
    assert_eq!(
        user.body["onPremisesImmutableId"],
        "a2VwdGtlcHRrZXB0a2VwdA=="
    );
    let members = graph(
        again,
        &token,
        Method::GET,
        &format!("/groups/{}/members", group["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(members.body["value"][0]["id"], kept["id"]);
    // The delta link from before the restart reports the deletion made before it.
    let delta_link = delta_link.replace(&info.graph, &again.graph);
    let changes = answer(
        client()
            .get(&delta_link)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(changes.status, StatusCode::OK, "{:?}", changes.body);
    assert_eq!(
        changes.body["value"],
        json!([{"id": dropped["id"], "@removed": {"reason": "changed"}}])
    );
    drop(second);

    // Without stop (a crash): every acknowledged write is already in the journal.
    let third = RunningEmulator::start(with_state()).unwrap();
    let fresh = app_token(&third.info).await;
    create_user(&third.info, &fresh, "journaled", "am91cm5hbGVkam91cm5hbGU=").await;
    let length_before = std::fs::metadata(&state).unwrap().len();
    std::mem::forget(third);
    assert!(
        std::fs::read_to_string(&state)
            .unwrap()
            .contains("journaled@corp.dirsync.test"),
        "{length_before}"
    );
    let fourth = RunningEmulator::start(with_state()).unwrap();
    let token = app_token(&fourth.info).await;
    let journaled = graph(
        &fourth.info,
        &token,
        Method::GET,
        &format!("/users/journaled@{DOMAIN}"),
        None,
    )
    .await;
    assert_eq!(journaled.status, StatusCode::OK);
}

#[tokio::test]
async fn a_thousand_creates_in_a_row_stay_fast_with_a_state_file() {
    let directory = tempfile::tempdir().unwrap();
    let emulator = RunningEmulator::start(EmulatorConfig {
        state_file: Some(directory.path().join("tenant.json")),
        ..config()
    })
    .unwrap();
    let info = &emulator.info;
    let token = app_token(info).await;
    let http = client();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in 0..4 {
        let http = http.clone();
        let token = token.clone();
        let graph_url = format!("{}/v1.0/users", info.graph);
        tasks.spawn(async move {
            for n in 0..250 {
                let name = format!("bulk{chunk}x{n}");
                let response = http
                    .post(&graph_url)
                    .bearer_auth(&token)
                    .json(&new_user(&name, &format!("bulk-anchor-{chunk}-{n}")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::CREATED);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(60),
        "1,000 creates took {elapsed:?}"
    );
    assert_eq!(emulator.objects("users").len(), 1001);
    eprintln!("1,000 creates with a state file: {elapsed:?}");
}

#[test]
fn the_binary_prints_one_json_line_and_stops_cleanly_on_sigterm() {
    let directory = tempfile::tempdir().unwrap();
    let state = directory.path().join("tenant.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenant-emulator"))
        .args(["--listen", "127.0.0.1:0", "--state"])
        .arg(&state)
        .args([
            "--verified-domain",
            DOMAIN,
            "--write-limit",
            "10",
            "--write-window-secs",
            "60",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: ReadyInfo = serde_json::from_str(line.trim()).unwrap();
    assert!(info.authority.starts_with("http://127.0.0.1:"));
    assert_eq!(info.authority, info.graph);
    assert!(
        info.admin_user
            .starts_with("admin@contoso-lab.onmicrosoft.com")
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let token = app_token(&info).await;
        create_user(&info, &token, "viabinary", "dmlhYmluYXJ5dmlhYmluYXI=").await;
    });
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("stopped"), "{stderr}");
    assert!(
        !stderr.contains(&info.client_secret),
        "no secret in the logs"
    );
    let saved = std::fs::read_to_string(&state).unwrap();
    assert_eq!(
        saved.lines().count(),
        1,
        "compacted to one snapshot at stop"
    );
    assert!(saved.contains("viabinary@corp.dirsync.test"));

    let bad = Command::new(env!("CARGO_BIN_EXE_tenant-emulator"))
        .args(["--initial-domain", "contoso.com"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("onmicrosoft.com"));
}
