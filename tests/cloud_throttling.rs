//! Throttling: the client keeps to Graph's write budget and rides out 429s, so a large export
//! finishes with every object created and no request failing. Prints its figures (run with
//! `--nocapture` to see them): duration, 429s seen, achieved writes per second against the limit.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use dirsync::cloud::auth::Credentials;
use dirsync::cloud::{CloudEndpoints, FlowPolicy, GraphClient, GraphRequest, Method, ObjectKind};
use dirsync::secret::Secret;
use dirsync::tls::TlsTrust;
use serde_json::json;
use tenant_emulator::{EmulatorConfig, RunningEmulator, WriteLimit};

const USERS: usize = 1000;

/// Creates `USERS` users through `$batch` against an emulator holding `limit`, with a client
/// keeping to the same budget; checks every one arrived once and prints the figures.
async fn create_users_at(limit: WriteLimit, label: &str) {
    let emulator = RunningEmulator::start(EmulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        verified_domains: vec!["corp.dirsync.test".to_owned()],
        write_limit: WriteLimit {
            writes: limit.writes,
            window: limit.window,
        },
        ..EmulatorConfig::default()
    })
    .unwrap();
    let info = &emulator.info;
    let client = GraphClient::new(
        &CloudEndpoints::parse(&info.authority, &info.graph).unwrap(),
        &info.tenant_id,
        Credentials::ClientSecret {
            client_id: info.client_id.clone(),
            secret: Secret::new(info.client_secret.clone()),
        },
        &TlsTrust::SystemRoots,
        FlowPolicy {
            write_limit: limit.writes,
            write_window: limit.window,
            ..FlowPolicy::default()
        },
    )
    .unwrap();
    let requests: Vec<GraphRequest> = (0..USERS)
        .map(|n| {
            GraphRequest::new(Method::Post, &["users"]).with_body(json!({
                "accountEnabled": true,
                "displayName": format!("Throttle {n}"),
                "mailNickname": format!("throttle{n}"),
                "userPrincipalName": format!("throttle{n}@corp.dirsync.test"),
                "onPremisesImmutableId": format!("throttle-anchor-{n}"),
                "passwordProfile": {"password": "Initial-Passw0rd!"},
            }))
        })
        .collect();

    let started = Instant::now();
    let results = client.batch(&requests).await;
    let elapsed = started.elapsed();

    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(ToString::to_string))
        .collect();
    assert!(
        failed.is_empty(),
        "{} creates failed, first: {:?}",
        failed.len(),
        failed.first()
    );
    let listed = client
        .list(ObjectKind::User, &["id", "onPremisesImmutableId"])
        .await
        .unwrap();
    let synced = listed
        .iter()
        .filter(|user| {
            user.immutable_id()
                .is_some_and(|id| id.starts_with("throttle-anchor-"))
        })
        .count();
    assert_eq!(synced, USERS, "every user exactly once");

    let stats = client.stats();
    let limit_per_sec = f64::from(limit.writes) / limit.window.as_secs_f64();
    let achieved = USERS as f64 / elapsed.as_secs_f64();
    // A sliding window lets the first `limit.writes` go at once and the rest at the limit's rate:
    // the fastest any client may finish, against which the achieved time is measured.
    let fastest_secs = (USERS as f64 - f64::from(limit.writes)).max(0.0) / limit_per_sec;
    let throttled_share = stats.throttled as f64 / stats.writes.max(1) as f64;
    println!(
        "throttling [{label}]: {USERS} creates in {:.2} s ({:.1} writes/s); {} HTTP requests, {} writes, \
         {} answered 429 ({:.2} %), {} retries; the limit ({} per {} s, {:.1}/s sustained) allows it in {:.2} s at best{}",
        elapsed.as_secs_f64(),
        achieved,
        stats.requests,
        stats.writes,
        stats.throttled,
        throttled_share * 100.0,
        stats.retries,
        limit.writes,
        limit.window.as_secs(),
        limit_per_sec,
        fastest_secs,
        if fastest_secs > 0.0 {
            format!(
                ": {:.0} % of the limit's throughput",
                fastest_secs / elapsed.as_secs_f64() * 100.0
            )
        } else {
            " (all within the first window's budget)".to_owned()
        },
    );
    // Pacing to the budget keeps 429s to at most 1 % of the writes (the README's export target).
    assert!(throttled_share <= 0.01, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_creates_under_graphs_default_write_limit_all_succeed() {
    create_users_at(
        WriteLimit {
            writes: 3000,
            window: Duration::from_secs(150),
        },
        "default 3000/150 s",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_a_tight_limit_the_client_paces_its_writes_to_the_budget() {
    // 1,000 writes against 200 per 4 s (50/s): the budget, not the server, sets the pace.
    create_users_at(
        WriteLimit {
            writes: 200,
            window: Duration::from_secs(4),
        },
        "tight 200/4 s",
    )
    .await;
}
