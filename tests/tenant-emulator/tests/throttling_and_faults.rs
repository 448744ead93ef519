//! The write limit (429 with Retry-After) and the injected faults: latency, 5xx, 429 storms,
//! dropped connections, and the counters.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_emulator::{EmulatorConfig, RunningEmulator, WriteLimit};

#[tokio::test]
async fn writes_above_the_limit_get_429_with_retry_after_until_a_slot_frees() {
    let emulator = RunningEmulator::start(EmulatorConfig {
        write_limit: WriteLimit {
            writes: 3,
            window: Duration::from_secs(2),
        },
        ..config()
    })
    .unwrap();
    let info = &emulator.info;
    let token = app_token(info).await;
    for n in 0..2 {
        create_user(info, &token, &format!("w{n}"), &format!("write-anchor-{n}")).await;
    }
    // The last slot: Graph says how much of the limit is used once past 0.8.
    let last = graph(
        info,
        &token,
        Method::POST,
        "/users",
        Some(new_user("w2", "write-anchor-2")),
    )
    .await;
    assert_eq!(last.status, StatusCode::CREATED);
    assert_eq!(last.header("x-ms-throttle-limit-percentage"), Some("1.0"));
    let throttled = graph(
        info,
        &token,
        Method::POST,
        "/users",
        Some(new_user("w3", "write-anchor-3")),
    )
    .await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.error_code(), "TooManyRequests");
    assert!(throttled.body["error"]["innerError"]["request-id"].is_string());
    let retry_after: u64 = throttled.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert!(
        throttled
            .header("x-ms-throttle-scope")
            .is_some_and(|s| s.contains(&info.client_id))
    );
    // The throttled write did not happen; reads still work.
    let absent = graph(
        info,
        &token,
        Method::GET,
        &format!("/users/w3@{DOMAIN}"),
        None,
    )
    .await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);
    // Another app has its own budget: the administrator's delegated client.
    let admin = admin_token(info).await;
    let other = graph(
        info,
        &admin,
        Method::POST,
        "/users",
        Some(new_user("w4", "write-anchor-4")),
    )
    .await;
    assert_eq!(other.status, StatusCode::CREATED);

    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let after = graph(
        info,
        &token,
        Method::POST,
        "/users",
        Some(new_user("w3", "write-anchor-3")),
    )
    .await;
    assert_eq!(after.status, StatusCode::CREATED, "{:?}", after.body);

    let stats = hook(info, Method::GET, "stats", None).await;
    assert_eq!(stats.body["throttled"], 1);
    assert_eq!(stats.body["writes"], 5);
    assert_eq!(emulator.stats().throttled, 1);
    let reset = hook(info, Method::DELETE, "stats", None).await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT);
    assert_eq!(emulator.stats().writes, 0);
}

#[tokio::test]
async fn faults_add_latency_fail_throttle_and_drop() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;

    let set = hook(
        info,
        Method::PUT,
        "faults",
        Some(json!({"latency_ms": 300})),
    )
    .await;
    assert_eq!(set.status, StatusCode::NO_CONTENT);
    let started = Instant::now();
    assert_eq!(
        graph(info, &token, Method::GET, "/domains", None)
            .await
            .status,
        StatusCode::OK
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );

    hook(info, Method::PUT, "faults", Some(json!({"fail_every": 3}))).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let answer = graph(info, &token, Method::GET, "/domains", None).await;
        if answer.status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(answer.error_code(), "serviceNotAvailable");
            assert_eq!(answer.header("Retry-After"), Some("1"));
        }
        statuses.push(answer.status.as_u16());
    }
    assert_eq!(statuses, vec![200, 200, 503, 200, 200, 503]);

    hook(
        info,
        Method::PUT,
        "faults",
        Some(json!({"throttle_for_secs": 2})),
    )
    .await;
    let storm = graph(info, &token, Method::GET, "/domains", None).await;
    assert_eq!(storm.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = storm.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        graph(info, &token, Method::GET, "/domains", None)
            .await
            .status,
        StatusCode::OK
    );

    hook(info, Method::PUT, "faults", Some(json!({"drop_every": 2}))).await;
    let first = client()
        .get(format!("{}/v1.0/domains", info.graph))
        .bearer_auth(&token)
        .send()
        .await;
    assert!(first.is_ok());
    let second = client()
        .get(format!("{}/v1.0/domains", info.graph))
        .bearer_auth(&token)
        .send()
        .await;
    let error = second.expect_err("the connection is closed without a response");
    assert!(!error.is_status() && !error.is_timeout(), "{error:?}");
    // Nothing was applied for a dropped write.
    hook(info, Method::PUT, "faults", Some(json!({"drop_every": 1}))).await;
    let dropped = client()
        .post(format!("{}/v1.0/users", info.graph))
        .bearer_auth(&token)
        .json(&new_user("dropped", "ZHJvcHBlZGRyb3BwZWRkcm8="))
        .send()
        .await;
    assert!(dropped.is_err());
    hook(info, Method::DELETE, "faults", None).await;
    let absent = graph(
        info,
        &token,
        Method::GET,
        &format!("/users/dropped@{DOMAIN}"),
        None,
    )
    .await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);

    let stats = hook(info, Method::GET, "stats", None).await;
    assert_eq!(stats.body["failed_5xx"], 2);
    assert_eq!(stats.body["dropped"], 2);
    assert!(stats.body["throttled"].as_u64().unwrap() >= 1);
    assert!(stats.body["requests"].as_u64().unwrap() >= 10);
}

#[tokio::test]
async fn the_apply_then_lose_faults_carry_out_the_write_and_lose_its_answer() {
    let emulator = RunningEmulator::start(config()).unwrap();
    let info = &emulator.info;
    let token = app_token(info).await;

    // The connection closes without an answer, but the user was made.
    hook(
        info,
        Method::PUT,
        "faults",
        Some(json!({"lose_answer_every": 1})),
    )
    .await;
    let lost = client()
        .post(format!("{}/v1.0/users", info.graph))
        .bearer_auth(&token)
        .json(&new_user("lost", "bG9zdGxvc3Rsb3N0bG9zdGw="))
        .send()
        .await;
    assert!(lost.is_err(), "{lost:?}");
    hook(info, Method::DELETE, "faults", None).await;
    let made = graph(
        info,
        &token,
        Method::GET,
        &format!("/users/lost@{DOMAIN}"),
        None,
    )
    .await;
    assert_eq!(made.status, StatusCode::OK);

    // A 503 that is not true: the second write fails, yet it happened; reads are not counted.
    hook(
        info,
        Method::PUT,
        "faults",
        Some(json!({"fail_after_write_every": 2})),
    )
    .await;
    create_user(info, &token, "first", "Zmlyc3RmaXJzdGZpcnN0Zmk=").await;
    let failed = graph(
        info,
        &token,
        Method::POST,
        "/users",
        Some(new_user("second", "c2Vjb25kc2Vjb25kc2Vjb24=")),
    )
    .await;
    assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE);
    hook(info, Method::DELETE, "faults", None).await;
    let made = graph(
        info,
        &token,
        Method::GET,
        &format!("/users/second@{DOMAIN}"),
        None,
    )
    .await;
    assert_eq!(made.status, StatusCode::OK);
    // A refused write does not count: it was not carried out.
    hook(
        info,
        Method::PUT,
        "faults",
        Some(json!({"fail_after_write_every": 1})),
    )
    .await;
    let refused = graph(
        info,
        &token,
        Method::POST,
        "/users",
        Some(new_user("second", "c2Vjb25kc2Vjb25kc2Vjb24=")),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        refused.body
    );
}

#[tokio::test]
async fn reads_past_the_resource_unit_quota_are_throttled() {
    let emulator = RunningEmulator::start(config()).unwrap();
    let info = &emulator.info;
    let token = app_token(info).await;
    // A tenant of under 50 users: 3,500 units per 10 seconds. A list of users costs 2 (1 with
    // $select); each request of a batch is counted alone.
    let parts: Vec<Value> = (0..20)
        .map(|n| json!({"id": n.to_string(), "method": "GET", "url": "/users"}))
        .collect();
    let mut throttled = None;
    for _ in 0..100 {
        let answer = graph(
            info,
            &token,
            Method::POST,
            "/$batch",
            Some(json!({ "requests": parts })),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK);
        if let Some(part) = answer.body["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|part| part["status"] == 429)
        {
            throttled = Some(part.clone());
            break;
        }
    }
    let part = throttled.expect("throttled before 2,000 list requests");
    assert_eq!(
        part["headers"]["x-ms-throttle-information"], "ResourceUnitLimitExceeded",
        "{part:#}"
    );
    let retry_after: u64 = part["headers"]["Retry-After"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&retry_after), "{part:#}");
}

#[tokio::test]
async fn the_hooks_check_their_input() {
    let emulator = start();
    let info = &emulator.info;
    assert_eq!(
        hook(
            info,
            Method::PUT,
            "limits",
            Some(json!({"writes": 0, "window_secs": 1}))
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        hook(
            info,
            Method::PUT,
            "faults",
            Some(json!({"fail_every": "often"}))
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
    let unknown = hook(
        info,
        Method::POST,
        "device-codes/approve",
        Some(json!({"user_code": "X", "decision": "maybe"})),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_hooks_refuse_durations_that_would_overflow_the_clock() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    for (path, body) in [
        ("faults", json!({"throttle_for_secs": u64::MAX})),
        ("faults", json!({"throttle_for_secs": 86_401})),
        ("faults", json!({"latency_ms": u64::MAX})),
        ("faults", json!({"replication_delay_secs": u64::MAX})),
        ("faults", json!({"index_lag_ms": u64::MAX})),
        ("faults", json!({"throttle_secs": 5})),
        ("limits", json!({"writes": 1, "window_secs": u64::MAX})),
    ] {
        let refused = hook(info, Method::PUT, path, Some(body.clone())).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{path} {body}");
        assert!(refused.body["error"].is_string(), "{:?}", refused.body);
    }
    // Nothing was switched on, and the emulator still serves.
    let created = graph(
        info,
        &token,
        Method::POST,
        "/users",
        Some(new_user("clock", "Y2xvY2tjbG9ja2Nsb2NrY2w=")),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let largest = hook(
        info,
        Method::PUT,
        "faults",
        Some(json!({"throttle_for_secs": 86_400})),
    )
    .await;
    assert_eq!(largest.status, StatusCode::NO_CONTENT);
    let throttled = graph(info, &token, Method::GET, "/domains", None).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
}
