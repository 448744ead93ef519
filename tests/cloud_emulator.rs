//! The Graph client against the tenant emulator over real HTTP: sign-in (client credentials,
//! device code), users and groups, lookups, delta, `$batch`, typed errors, flow control under
//! injected faults, setup's app registration, and that no secret reaches a message or a log.
//!
//! Each test starts its own emulator on a free loopback port.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dirsync::cloud::auth::{
    Authority, Credentials, DeviceCodeSignIn, SETUP_CLIENT_ID, SETUP_SCOPES, TokenSource,
};
use dirsync::cloud::graph::{DeltaChange, DeltaLink, http_client};
use dirsync::cloud::mailboxes::{MailboxChange, MailboxEndpoint, MailboxPage};
use dirsync::cloud::setup::{
    self, AppOutcome, SYNC_APP_PERMISSIONS, SyncAppTarget, register_sync_app,
};
use dirsync::cloud::{
    CloudEndpoints, ErrorKind, FlowPolicy, GraphClient, GraphError, GraphRequest, Method,
    ObjectKind, SignInError,
};
use dirsync::secret::Secret;
use dirsync::secret_store::{OsKeyring, SecretStore};
use dirsync::tls::TlsTrust;
use serde_json::{Value, json};
use tenant_emulator::{EmulatorConfig, ReadyInfo, RunningEmulator};

fn start(config: EmulatorConfig) -> RunningEmulator {
    RunningEmulator::start(EmulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..config
    })
    .expect("the emulator starts")
}

fn emulator() -> RunningEmulator {
    start(EmulatorConfig {
        verified_domains: vec!["corp.dirsync.test".to_owned()],
        // The protocol's pace, shortened so that sign-in tests take seconds.
        device_code_interval_secs: 1,
        ..EmulatorConfig::default()
    })
}

fn endpoints(info: &ReadyInfo) -> CloudEndpoints {
    CloudEndpoints::parse(&info.authority, &info.graph).unwrap()
}

fn quick_policy() -> FlowPolicy {
    FlowPolicy {
        first_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
        give_up_after: Duration::from_secs(30),
        ..FlowPolicy::default()
    }
}

/// A client signing in as `client_id` with `secret` (client credentials).
fn client_as(
    endpoints: &CloudEndpoints,
    tenant: &str,
    client_id: impl Into<String>,
    secret: Secret,
    policy: FlowPolicy,
) -> GraphClient {
    let credentials = Credentials::ClientSecret {
        client_id: client_id.into(),
        secret,
    };
    GraphClient::new(
        endpoints,
        tenant,
        credentials,
        &TlsTrust::SystemRoots,
        policy,
    )
    .unwrap()
}

/// The emulator's pre-registered sync app, at `endpoints`.
fn app_client_at(endpoints: &CloudEndpoints, info: &ReadyInfo, policy: FlowPolicy) -> GraphClient {
    let secret = Secret::new(info.client_secret.clone());
    client_as(
        endpoints,
        &info.tenant_id,
        info.client_id.clone(),
        secret,
        policy,
    )
}

fn app_client(info: &ReadyInfo, policy: FlowPolicy) -> GraphClient {
    app_client_at(&endpoints(info), info, policy)
}

/// Starts a device code sign-in for setup at the emulator.
async fn start_sign_in(info: &ReadyInfo) -> (reqwest::Client, Authority, DeviceCodeSignIn) {
    let http = http_client(&TlsTrust::SystemRoots, Duration::from_secs(30)).unwrap();
    let authority = Authority::new(&endpoints(info), &info.tenant_id).unwrap();
    let sign_in = DeviceCodeSignIn::start(
        http.clone(),
        authority.clone(),
        SETUP_CLIENT_ID,
        SETUP_SCOPES,
    )
    .await
    .unwrap();
    (http, authority, sign_in)
}

/// A signed-in Global Administrator, through the device code flow approved by the test hook.
async fn admin_client(emulator: &RunningEmulator) -> GraphClient {
    let info = &emulator.info;
    let (http, authority, sign_in) = start_sign_in(info).await;
    approve(emulator, &sign_in.prompt().user_code, "approve").await;
    let session = sign_in.wait().await.unwrap();
    let tokens = TokenSource::with_session(http.clone(), authority, session);
    GraphClient::with_tokens(http, &endpoints(info), Arc::new(tokens), quick_policy())
}

async fn hook(
    emulator: &RunningEmulator,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let url = format!("{}/_emulator/{path}", emulator.info.graph);
    let http = http_client(&TlsTrust::SystemRoots, Duration::from_secs(30)).unwrap();
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    assert!(
        response.status().is_success(),
        "hook {path}: {}",
        response.status()
    );
    response
}

async fn approve(emulator: &RunningEmulator, user_code: &str, decision: &str) {
    hook(
        emulator,
        reqwest::Method::POST,
        "device-codes/approve",
        Some(json!({"user_code": user_code, "decision": decision})),
    )
    .await;
}

async fn set_faults(emulator: &RunningEmulator, faults: Value) {
    hook(emulator, reqwest::Method::PUT, "faults", Some(faults)).await;
}

fn new_user(name: &str, immutable_id: &str) -> Value {
    json!({
        "accountEnabled": true,
        "displayName": format!("User {name}"),
        "mailNickname": name,
        "userPrincipalName": format!("{name}@corp.dirsync.test"),
        "mail": format!("{name}@corp.dirsync.test"),
        "onPremisesImmutableId": immutable_id,
        "passwordProfile": {"password": "Initial-Passw0rd!", "forceChangePasswordNextSignIn": false},
    })
}

#[tokio::test]
async fn the_sync_app_signs_in_and_reads_the_verified_domains() {
    let emulator = emulator();
    let client = app_client(&emulator.info, quick_policy());
    let domains = setup::verified_domains(&client).await.unwrap();
    let names: Vec<&str> = domains.iter().map(|domain| domain.name.as_str()).collect();
    assert!(names.contains(&"corp.dirsync.test"), "{names:?}");
    let initial: Vec<&str> = domains
        .iter()
        .filter(|d| d.is_initial)
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(initial.len(), 1, "{domains:?}");
    assert!(initial[0].ends_with(".onmicrosoft.com"), "{initial:?}");
}

#[tokio::test]
async fn users_are_created_found_changed_listed_and_deleted() {
    let emulator = emulator();
    let client = app_client(&emulator.info, quick_policy());
    let ann = client
        .create(
            ObjectKind::User,
            &new_user("ann", "AAAAAAAAAAAAAAAAAAAAAA=="),
        )
        .await
        .unwrap();
    assert_eq!(
        ann.string("userPrincipalName"),
        Some("ann@corp.dirsync.test")
    );

    let select = [
        "id",
        "userPrincipalName",
        "onPremisesImmutableId",
        "mail",
        "proxyAddresses",
        "jobTitle",
    ];
    let by_anchor = client
        .user_by_immutable_id("AAAAAAAAAAAAAAAAAAAAAA==", &select)
        .await
        .unwrap();
    assert_eq!(
        by_anchor.as_ref().map(|user| user.id.as_str()),
        Some(ann.id.as_str())
    );
    let by_upn = client
        .user_by_upn("ANN@corp.dirsync.test", &select)
        .await
        .unwrap();
    assert_eq!(by_upn.map(|user| user.id), Some(ann.id.clone()));
    let by_smtp = client
        .by_smtp_address(ObjectKind::User, "ann@corp.dirsync.test", &select)
        .await
        .unwrap();
    assert_eq!(by_smtp.map(|user| user.id), Some(ann.id.clone()));
    assert_eq!(
        client
            .user_by_upn("nobody@corp.dirsync.test", &select)
            .await
            .unwrap(),
        None
    );

    client
        .update(ObjectKind::User, &ann.id, &json!({"jobTitle": "Auditor"}))
        .await
        .unwrap();
    let fetched = client
        .get(ObjectKind::User, &ann.id, &select)
        .await
        .unwrap();
    assert_eq!(fetched.string("jobTitle"), Some("Auditor"));
    // $select is honoured: what was not asked for is not there.
    assert!(
        fetched.properties.get("displayName").is_none(),
        "{:?}",
        fetched.properties
    );

    let listed = client
        .list(ObjectKind::User, &["id", "userPrincipalName"])
        .await
        .unwrap();
    assert!(listed.iter().any(|user| user.id == ann.id));

    client.delete(ObjectKind::User, &ann.id).await.unwrap();
    let gone = client
        .get(ObjectKind::User, &ann.id, &select)
        .await
        .expect_err("deleted");
    assert_eq!(gone.kind(), ErrorKind::NotFound, "{gone}");
}

#[tokio::test]
async fn lists_follow_next_links_past_one_page() {
    let emulator = emulator();
    let client = app_client(&emulator.info, quick_policy());
    let requests: Vec<GraphRequest> = (0..1010)
        .map(|n| {
            GraphRequest::new(Method::Post, &["users"])
                .with_body(new_user(&format!("page{n}"), &format!("page{n}")))
        })
        .collect();
    for result in client.batch(&requests).await {
        result.unwrap();
    }
    let listed = client.list(ObjectKind::User, &["id"]).await.unwrap();
    // 1,010 synced users plus the tenant's administrator: more than one page of 999.
    assert!(listed.len() >= 1011, "{}", listed.len());
}

#[tokio::test]
async fn conflicts_name_the_property_and_the_value() {
    let emulator = emulator();
    let client = app_client(&emulator.info, quick_policy());
    client
        .create(
            ObjectKind::User,
            &new_user("bob", "Ym9iYm9iYm9iYm9iYm9iYg=="),
        )
        .await
        .unwrap();

    let mut same_upn = new_user("bob", "b3RoZXJvdGhlcm90aGVyIQ==");
    same_upn["mail"] = json!("bob2@corp.dirsync.test");
    let error = client
        .create(ObjectKind::User, &same_upn)
        .await
        .expect_err("same UPN");
    assert_eq!(error.kind(), ErrorKind::Conflict);
    let GraphError::Conflict {
        property,
        value,
        message,
    } = &error
    else {
        panic!("a conflict: {error:?}");
    };
    assert_eq!(property, "userPrincipalName");
    assert_eq!(value.as_deref(), Some("bob@corp.dirsync.test"));
    assert_eq!(
        message,
        "Another object with the same value for property userPrincipalName already exists."
    );

    let mut same_anchor = new_user("bobby", "Ym9iYm9iYm9iYm9iYm9iYg==");
    same_anchor["mail"] = json!("bobby@corp.dirsync.test");
    let error = client
        .create(ObjectKind::User, &same_anchor)
        .await
        .expect_err("same anchor");
    assert!(
        matches!(&error, GraphError::Conflict { property, .. } if property == "onPremisesImmutableId"),
        "{error:?}"
    );

    // proxyAddresses is read-only for users in Graph: the emulator refuses it as Graph does.
    let mut with_proxies = new_user("carl", "Y2FybGNhcmxjYXJsY2FybA==");
    with_proxies["proxyAddresses"] = json!(["SMTP:carl@corp.dirsync.test"]);
    let error = client
        .create(ObjectKind::User, &with_proxies)
        .await
        .expect_err("read-only");
    assert_eq!(error.kind(), ErrorKind::Rejected, "{error:?}");
}

#[tokio::test]
async fn groups_get_members_by_reference() {
    let emulator = emulator();
    let client = app_client(&emulator.info, quick_policy());
    let dana = client
        .create(
            ObjectKind::User,
            &new_user("dana", "ZGFuYWRhbmFkYW5hZGFuYQ=="),
        )
        .await
        .unwrap();
    let group = client
        .create(
            ObjectKind::Group,
            &json!({"displayName": "Finance", "mailEnabled": false, "mailNickname": "finance", "securityEnabled": true}),
        )
        .await
        .unwrap();
    client.add_member(&group.id, &dana.id).await.unwrap();
    assert_eq!(
        client.members(&group.id).await.unwrap(),
        vec![dana.id.clone()]
    );
    let again = client
        .add_member(&group.id, &dana.id)
        .await
        .expect_err("already a member");
    assert_eq!(again.kind(), ErrorKind::Rejected, "{again:?}");
    client.remove_member(&group.id, &dana.id).await.unwrap();
    assert!(client.members(&group.id).await.unwrap().is_empty());
    client
        .update(
            ObjectKind::Group,
            &group.id,
            &json!({"description": "Money"}),
        )
        .await
        .unwrap();
    client.delete(ObjectKind::Group, &group.id).await.unwrap();
}

#[tokio::test]
async fn delta_rounds_see_adds_changes_and_deletes() {
    let emulator = emulator();
    let client = app_client(&emulator.info, quick_policy());
    let select = ["id", "displayName", "onPremisesImmutableId"];
    let first = client.delta(ObjectKind::User, &select, None).await.unwrap();
    let eve = client
        .create(
            ObjectKind::User,
            &new_user("eve", "ZXZlZXZlZXZlZXZlZXZlZQ=="),
        )
        .await
        .unwrap();
    let frank = client
        .create(
            ObjectKind::User,
            &new_user("frank", "ZnJhbmtmcmFua2ZyYW5rZg=="),
        )
        .await
        .unwrap();

    let second = client
        .delta(ObjectKind::User, &select, Some(&first.next))
        .await
        .unwrap();
    let added: Vec<&str> = second
        .changes
        .iter()
        .filter_map(|change| match change {
            DeltaChange::Changed(object) => Some(object.id.as_str()),
            DeltaChange::Removed { .. } => None,
        })
        .collect();
    assert!(
        added.contains(&eve.id.as_str()) && added.contains(&frank.id.as_str()),
        "{second:?}"
    );

    client
        .update(
            ObjectKind::User,
            &eve.id,
            &json!({"displayName": "Eve Renamed"}),
        )
        .await
        .unwrap();
    client.delete(ObjectKind::User, &frank.id).await.unwrap();
    let third = client
        .delta(ObjectKind::User, &select, Some(&second.next))
        .await
        .unwrap();
    assert!(
        third.changes.iter().any(|change| matches!(change,
            DeltaChange::Changed(object) if object.id == eve.id && object.string("displayName") == Some("Eve Renamed"))),
        "{third:?}"
    );
    assert!(
        third
            .changes
            .iter()
            .any(|change| matches!(change, DeltaChange::Removed { id, .. } if *id == frank.id)),
        "{third:?}"
    );
    // Nothing changed since: an empty round.
    let fourth = client
        .delta(ObjectKind::User, &select, Some(&third.next))
        .await
        .unwrap();
    assert!(fourth.changes.is_empty(), "{fourth:?}");
}

#[tokio::test]
async fn batches_map_each_answer_back_to_its_request() {
    let emulator = emulator();
    let client = app_client(&emulator.info, quick_policy());
    let mut requests: Vec<GraphRequest> = (0..45)
        .map(|n| {
            GraphRequest::new(Method::Post, &["users"])
                .with_body(new_user(&format!("b{n}"), &format!("batch-anchor-{n}")))
        })
        .collect();
    // Requests 3 and 30 want the same UPN: batches run at once and Graph keeps no order between
    // them, so either may win, and the other is a conflict. Request 44 reads a missing user.
    let mut duplicate = new_user("b3", "batch-anchor-dup");
    duplicate["mail"] = json!("dup@corp.dirsync.test");
    requests[30] = GraphRequest::new(Method::Post, &["users"]).with_body(duplicate);
    requests[44] = GraphRequest::get(&["users", "00000000-0000-0000-0000-000000000000"]);

    let results = client.batch(&requests).await;
    assert_eq!(results.len(), 45);
    let conflicts = [3, 30]
        .iter()
        .filter(|&&index| {
            matches!(&results[index], Err(GraphError::Conflict { property, value, .. })
                if property == "userPrincipalName" && value.as_deref() == Some("b3@corp.dirsync.test"))
        })
        .count();
    assert_eq!(conflicts, 1, "{:?} {:?}", results[3], results[30]);
    for (index, result) in results.iter().enumerate() {
        match index {
            3 | 30 => assert!(
                result.is_ok() || matches!(result, Err(GraphError::Conflict { .. })),
                "{result:?}"
            ),
            44 => assert_eq!(
                result.as_ref().expect_err("missing").kind(),
                ErrorKind::NotFound
            ),
            _ => {
                // A create answers with the user's default properties, as Graph does.
                let created = result.as_ref().unwrap().as_ref().unwrap();
                assert_eq!(
                    created["userPrincipalName"],
                    json!(format!("b{index}@corp.dirsync.test"))
                );
            }
        }
    }
    // 45 requests went as 3 batches.
    assert_eq!(client.stats().requests, 3, "{:?}", client.stats());
}

#[tokio::test]
async fn retries_ride_out_server_errors_dropped_connections_and_throttling() {
    let emulator = emulator();
    let client = app_client(&emulator.info, quick_policy());
    let mut ids = Vec::new();
    for n in 0..20 {
        let user = client
            .create(
                ObjectKind::User,
                &new_user(&format!("f{n}"), &format!("fault-anchor-{n}")),
            )
            .await
            .unwrap();
        ids.push(user.id);
    }
    // Updates are sent again until they are answered: writing the same values twice is safe.
    set_faults(&emulator, json!({"fail_every": 3, "drop_every": 5})).await;
    for id in &ids {
        client
            .update(ObjectKind::User, id, &json!({"jobTitle": "Tester"}))
            .await
            .unwrap();
    }
    let stats = client.stats();
    assert!(stats.server_errors >= 3, "{stats:?}");
    assert!(stats.dropped >= 2, "{stats:?}");
    assert!(
        stats.retries >= stats.server_errors + stats.dropped,
        "{stats:?}"
    );

    set_faults(&emulator, json!({"throttle_for_secs": 2})).await;
    let started = std::time::Instant::now();
    client
        .create(ObjectKind::User, &new_user("after-storm", "after-storm"))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    assert!(client.stats().throttled >= 1, "{:?}", client.stats());

    // A create is never sent again when its answer is lost: Graph may have made the object.
    // Here the emulator carries it out and then answers 503.
    set_faults(&emulator, json!({"fail_after_write_every": 1})).await;
    let error = client
        .create(ObjectKind::User, &new_user("lost", "fault-anchor-lost"))
        .await
        .expect_err("the answer is lost");
    assert!(
        matches!(error, GraphError::OutcomeUnknown { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("looked for"), "{error}");
    set_faults(&emulator, json!({})).await;

    // Every created user is there exactly once: no duplicates from retries.
    let listed = client
        .list(
            ObjectKind::User,
            &["id", "onPremisesImmutableId", "jobTitle"],
        )
        .await
        .unwrap();
    let updated = listed
        .iter()
        .filter(|user| user.string("jobTitle") == Some("Tester"))
        .count();
    assert_eq!(updated, 20);
    for n in ["lost".to_owned()]
        .into_iter()
        .chain((0..20).map(|n| n.to_string()))
    {
        let anchor = format!("fault-anchor-{n}");
        let count = listed
            .iter()
            .filter(|user| user.immutable_id() == Some(anchor.as_str()))
            .count();
        assert_eq!(count, 1, "{anchor}");
    }
}

#[tokio::test]
async fn a_cloud_that_stays_down_is_given_up_with_a_clear_error() {
    let emulator = emulator();
    let client = app_client(
        &emulator.info,
        FlowPolicy {
            give_up_after: Duration::from_secs(3),
            ..quick_policy()
        },
    );
    set_faults(&emulator, json!({"throttle_for_secs": 60})).await;
    let started = std::time::Instant::now();
    let error = client
        .list(ObjectKind::User, &["id"])
        .await
        .expect_err("throttled for a minute");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(error.kind(), ErrorKind::Transient);
    assert!(
        error.to_string().contains("kept throttling (429)"),
        "{error}"
    );

    // Another run (its own client) while every request answers 503.
    set_faults(&emulator, json!({"fail_every": 1})).await;
    let client = app_client(
        &emulator.info,
        FlowPolicy {
            give_up_after: Duration::from_secs(3),
            ..quick_policy()
        },
    );
    let error = client
        .list(ObjectKind::User, &["id"])
        .await
        .expect_err("503 every time");
    assert!(
        matches!(error, GraphError::Unavailable { attempts, .. } if attempts >= 2),
        "{error:?}"
    );
    assert!(error.to_string().contains("HTTP 503"), "{error}");
}

#[tokio::test]
async fn bad_sign_in_input_gets_errors_that_name_the_field() {
    let emulator = emulator();
    let info = &emulator.info;
    let policy = quick_policy();

    let wrong_tenant = client_as(
        &endpoints(info),
        "no-such-tenant.onmicrosoft.com",
        info.client_id.clone(),
        Secret::new(info.client_secret.clone()),
        policy.clone(),
    );
    let error = setup::verified_domains(&wrong_tenant)
        .await
        .expect_err("wrong tenant");
    assert!(
        matches!(
            error,
            GraphError::SignIn(SignInError::TenantNotFound { .. })
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("'Tenant' field"), "{error}");

    let wrong_secret = client_as(
        &endpoints(info),
        &info.tenant_id,
        info.client_id.clone(),
        Secret::new("not-the-secret"),
        policy.clone(),
    );
    let error = setup::verified_domains(&wrong_secret)
        .await
        .expect_err("wrong secret");
    assert!(
        matches!(error, GraphError::SignIn(SignInError::WrongSecret { .. })),
        "{error:?}"
    );

    let unknown_app = client_as(
        &endpoints(info),
        &info.tenant_id,
        "11111111-2222-3333-4444-555555555555".to_owned(),
        Secret::new("x"),
        policy.clone(),
    );
    let error = setup::verified_domains(&unknown_app)
        .await
        .expect_err("unknown app");
    assert!(
        matches!(
            error,
            GraphError::SignIn(SignInError::UnknownApplication { .. })
        ),
        "{error:?}"
    );

    hook(
        &emulator,
        reqwest::Method::POST,
        &format!("applications/{}/expire-secrets", info.client_id),
        None,
    )
    .await;
    let expired = app_client(info, policy.clone());
    let error = setup::verified_domains(&expired)
        .await
        .expect_err("expired secret");
    assert!(
        matches!(error, GraphError::SignIn(SignInError::ExpiredSecret { .. })),
        "{error:?}"
    );
    assert!(error.to_string().contains("run setup again"), "{error}");
}

/// A local HTTP server that answers every request with `response` (for "not Graph" cases).
fn canned_server(response: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 8192];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(response.as_bytes());
        }
    });
    format!("http://{address}")
}

#[tokio::test]
async fn urls_that_are_not_the_cloud_get_errors_that_name_the_field() {
    let emulator = emulator();
    let info = &emulator.info;
    let html = canned_server(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 29\r\nConnection: close\r\n\r\n<html><h1>Welcome</h1></html>",
    );

    // An authority that answers a web page.
    let not_authority = CloudEndpoints::parse(&html, &info.graph).unwrap();
    let client = app_client_at(&not_authority, info, quick_policy());
    let error = setup::verified_domains(&client)
        .await
        .expect_err("html authority");
    assert!(
        matches!(
            error,
            GraphError::SignIn(SignInError::NotAnAuthority { .. })
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("'Authority URL' field"),
        "{error}"
    );
    assert!(error.to_string().contains("<html><h1>Welcome"), "{error}");

    // A Graph URL that answers a web page, or garbage that claims to be JSON.
    let not_graph = CloudEndpoints::parse(&info.authority, &html).unwrap();
    let client = app_client_at(&not_graph, info, quick_policy());
    let error = setup::verified_domains(&client)
        .await
        .expect_err("html graph");
    assert!(error.to_string().contains("'Graph URL' field"), "{error}");
    let garbage = canned_server(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{\"value\":",
    );
    let client = app_client_at(
        &CloudEndpoints::parse(&info.authority, &garbage).unwrap(),
        info,
        quick_policy(),
    );
    let error = setup::verified_domains(&client).await.expect_err("garbage");
    assert!(matches!(error, GraphError::NotGraph { .. }), "{error:?}");

    // Nothing listening.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let client = app_client_at(
        &CloudEndpoints::parse(&format!("http://{closed}"), &info.graph).unwrap(),
        info,
        quick_policy(),
    );
    let error = setup::verified_domains(&client)
        .await
        .expect_err("closed port");
    assert!(
        matches!(error, GraphError::SignIn(SignInError::Unreachable { .. })),
        "{error:?}"
    );
}

#[tokio::test]
async fn device_code_sign_in_waits_for_approval_and_reports_a_decline() {
    let emulator = emulator();
    let info = &emulator.info;
    let (_, _, declined) = start_sign_in(info).await;
    let prompt = declined.prompt().clone();
    assert!(
        !prompt.user_code.is_empty() && prompt.verification_uri.starts_with("http"),
        "{prompt:?}"
    );
    assert!(prompt.message.contains(&prompt.user_code), "{prompt:?}");
    approve(&emulator, &prompt.user_code, "decline").await;
    assert_eq!(
        declined.wait().await.expect_err("declined"),
        SignInError::Declined
    );

    let (_, _, expired) = start_sign_in(info).await;
    let user_code = expired.prompt().user_code.clone();
    approve(&emulator, &user_code, "expire").await;
    let error = expired.wait().await.expect_err("expired");
    assert_eq!(error, SignInError::DeviceCodeExpired);
    assert!(
        error.to_string().contains("start the sign-in again"),
        "{error}"
    );

    // The approved sign-in reads the tenant and turns directory synchronization on.
    let admin = admin_client(&emulator).await;
    let tenant = setup::verify_tenant(&admin).await.unwrap();
    assert_eq!(tenant.tenant_id, info.tenant_id);
    assert!(!tenant.directory_sync_enabled);
    assert!(setup::enable_directory_sync(&admin, &tenant).await.unwrap());
    assert!(
        setup::verify_tenant(&admin)
            .await
            .unwrap()
            .directory_sync_enabled
    );
    setup::set_sync_features(&admin, &[("passwordSyncEnabled", true)])
        .await
        .unwrap();

    // The sync app may not change those settings: Graph allows them only to a signed-in admin.
    let app = app_client(info, quick_policy());
    let error = setup::set_sync_features(&app, &[("passwordSyncEnabled", false)])
        .await
        .expect_err("app token");
    assert!(error.to_string().contains("lacks a permission"), "{error}");
}

/// An in-memory view of which keys setup wrote, over the real keyring.
#[derive(Debug, Default)]
struct RecordingKeyring {
    saved: Mutex<Vec<String>>,
}

impl SecretStore for RecordingKeyring {
    fn save(
        &self,
        key: &str,
        secret: &Secret,
    ) -> Result<(), dirsync::secret_store::SecretStoreError> {
        self.saved.lock().unwrap().push(key.to_owned());
        OsKeyring.save(key, secret)
    }
    fn load(&self, key: &str) -> Result<Option<Secret>, dirsync::secret_store::SecretStoreError> {
        OsKeyring.load(key)
    }
    fn remove(&self, key: &str) -> Result<(), dirsync::secret_store::SecretStoreError> {
        OsKeyring.remove(key)
    }
}

/// The sync app signing in with its certificate, as the running sync does.
fn certificate_client(
    endpoints: &CloudEndpoints,
    tenant: &str,
    app: &setup::SyncApp,
    private_key: Secret,
) -> GraphClient {
    GraphClient::new(
        endpoints,
        tenant,
        Credentials::Certificate {
            client_id: app.client_id.clone(),
            private_key,
            thumbprint: app.certificate_thumbprint.clone(),
        },
        &TlsTrust::SystemRoots,
        quick_policy(),
    )
    .unwrap()
}

#[tokio::test]
async fn setup_registers_a_least_privilege_app_that_signs_in_with_a_certificate_made_here() {
    let emulator = emulator();
    let info = &emulator.info;
    let admin = admin_client(&emulator).await;
    let endpoints = endpoints(info);
    let target = SyncAppTarget {
        endpoints: &endpoints,
        tenant_id: &info.tenant_id,
        trust: &TlsTrust::SystemRoots,
        display_name: "dirsync (test-host-1)",
        proof_timeout: Duration::from_secs(10),
        known: None,
    };
    let keyring = RecordingKeyring::default();
    let app = register_sync_app(&admin, &target, &keyring).await.unwrap();
    assert_eq!(app.outcome, AppOutcome::Created);
    assert_eq!(
        keyring.saved.lock().unwrap().clone(),
        vec![setup::client_certificate_key(&app.client_id)]
    );
    let private_key = OsKeyring
        .load(&app.credential_key)
        .unwrap()
        .expect("the private key is in the keyring");
    assert!(private_key.expose().contains("BEGIN PRIVATE KEY"));

    // Graph holds the certificate (never its key) and no secret.
    let registered = emulator
        .objects("applications")
        .into_iter()
        .find(|application| application["appId"] == app.client_id.as_str())
        .unwrap();
    let credentials = registered["keyCredentials"].as_array().unwrap();
    assert_eq!(credentials.len(), 1, "{registered}");
    assert_eq!(credentials[0]["type"], "AsymmetricX509Cert");
    assert_eq!(credentials[0]["key"], Value::Null);
    assert_eq!(registered["passwordCredentials"], json!([]));
    let expires =
        dirsync::credential_expiry::parse_rfc3339(app.credential_expires_at.as_deref().unwrap())
            .unwrap();
    assert_eq!(
        Some(expires),
        dirsync::credential_expiry::parse_rfc3339(credentials[0]["endDateTime"].as_str().unwrap())
    );

    // The app can do what the sync needs and nothing more.
    let sync = certificate_client(&endpoints, &info.tenant_id, &app, private_key.clone());
    sync.create(
        ObjectKind::User,
        &new_user("gina", "Z2luYWdpbmFnaW5hZ2luYQ=="),
    )
    .await
    .unwrap();
    sync.create(ObjectKind::Group, &json!({"displayName": "G", "mailEnabled": false, "mailNickname": "g", "securityEnabled": true}))
        .await
        .unwrap();
    let error = sync
        .send(&GraphRequest::get(&["applications"]))
        .await
        .expect_err("no Application permission");
    assert_eq!(error.kind(), ErrorKind::Forbidden, "{error:?}");
    assert_eq!(app.permissions, SYNC_APP_PERMISSIONS);

    // Setup again: the same app, a new certificate, the old one no longer accepted.
    let again = register_sync_app(&admin, &target, &keyring).await.unwrap();
    assert_eq!(again.outcome, AppOutcome::Reused);
    assert_eq!(again.client_id, app.client_id);
    assert_eq!(again.removed_secrets, 1, "the old certificate");
    assert_ne!(again.certificate_thumbprint, app.certificate_thumbprint);
    let old = certificate_client(&endpoints, &info.tenant_id, &app, private_key);
    let error = setup::verified_domains(&old)
        .await
        .expect_err("the old certificate is gone");
    assert!(
        matches!(
            error,
            GraphError::SignIn(SignInError::CertificateRefused { .. })
        ),
        "{error:?}"
    );
    let new_key = OsKeyring.load(&again.credential_key).unwrap().unwrap();
    setup::verified_domains(&certificate_client(
        &endpoints,
        &info.tenant_id,
        &again,
        new_key.clone(),
    ))
    .await
    .expect("the new one signs in");

    // A key that is not the certificate's: refused.
    let stranger = dirsync::cloud::certificate::make_certificate("stranger").unwrap();
    let forged = certificate_client(&endpoints, &info.tenant_id, &again, stranger.private_key);
    let error = setup::verified_domains(&forged)
        .await
        .expect_err("a signature the certificate does not verify");
    assert!(error.to_string().contains("AADSTS700027"), "{error}");

    // Nothing setup reports carries the key.
    let shown = format!("{again:?} {}", serde_json::to_string(&again).unwrap());
    assert!(!shown.contains(new_key.expose()), "{shown}");
    OsKeyring.remove(&again.credential_key).unwrap();
}

#[tokio::test]
async fn setup_waits_for_the_new_app_to_replicate_before_proving_it() {
    let emulator = emulator();
    let info = &emulator.info;
    let admin = admin_client(&emulator).await;
    // As in Entra ID, a new app, its secret and its grants take a while to reach sign-in.
    set_faults(&emulator, json!({"replication_delay_secs": 3})).await;
    let endpoints = endpoints(info);
    let target = SyncAppTarget {
        endpoints: &endpoints,
        tenant_id: &info.tenant_id,
        trust: &TlsTrust::SystemRoots,
        display_name: "dirsync (test-host-2)",
        proof_timeout: Duration::from_secs(20),
        known: None,
    };
    let started = std::time::Instant::now();
    let app = register_sync_app(&admin, &target, &OsKeyring)
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "proven only after replication: {:?}",
        started.elapsed()
    );

    // With less patience than the replication takes, setup says what failed and keeps the key.
    set_faults(&emulator, json!({"replication_delay_secs": 30})).await;
    let impatient = SyncAppTarget {
        display_name: "dirsync (test-host-3)",
        proof_timeout: Duration::from_secs(3),
        ..target
    };
    let error = register_sync_app(&admin, &impatient, &OsKeyring)
        .await
        .expect_err("not replicated in 3 s");
    assert!(
        error
            .to_string()
            .contains("could not sign in or read the domains"),
        "{error}"
    );
    OsKeyring.remove(&app.credential_key).unwrap();
}

/// Reads a whole mailbox delta round: every changed mailbox id, every removed id, and the link.
async fn mailbox_round(
    client: &GraphClient,
    from: Option<&DeltaLink>,
) -> (Vec<String>, Vec<String>, Option<DeltaLink>, usize) {
    let mut delta = client.mailbox_delta(from).unwrap();
    let (mut changed, mut removed, mut link, mut pages) = (Vec::new(), Vec::new(), None, 0);
    while let Some(page) = delta.next_page().await.unwrap() {
        pages += 1;
        let MailboxPage::Changes {
            changes,
            delta_link,
        } = page
        else {
            panic!("not a page of changes: {page:?}");
        };
        assert!(link.is_none(), "only the last page carries the link");
        link = delta_link;
        for change in changes {
            match change {
                MailboxChange::Changed { mailbox, .. } => changed.push(mailbox.user_id),
                MailboxChange::Removed { user_id } => removed.push(user_id),
            }
        }
    }
    (changed, removed, link, pages)
}

#[tokio::test]
async fn the_mailbox_delta_pages_through_every_mailbox_then_only_the_changes() {
    let emulator = emulator();
    let client = app_client(&emulator.info, quick_policy());
    let requests: Vec<GraphRequest> = (0..230)
        .map(|n| {
            GraphRequest::new(Method::Post, &["users"])
                .with_body(new_user(&format!("mbx{n}"), &format!("mbx{n}")))
        })
        .collect();
    let mut ids = Vec::new();
    for result in client.batch(&requests).await {
        ids.push(result.unwrap().unwrap()["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        emulator
            .set_mailbox(id, json!({"cloudMSExchArchiveStatus": 1}))
            .unwrap();
    }

    let (changed, removed, link, pages) = mailbox_round(&client, None).await;
    assert!(pages >= 3, "230 mailboxes come in pages: {pages}");
    let mut sorted = changed.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 230, "each mailbox once");
    assert!(removed.is_empty());
    let link = link.expect("the last page carries the delta link");

    emulator
        .set_mailbox(&ids[7], json!({"cloudMSExchArchiveStatus": null}))
        .unwrap();
    let (changed, _, next, _) = mailbox_round(&client, Some(&link)).await;
    assert_eq!(changed, [ids[7].clone()]);
    assert!(next.is_some());

    // A link the tenant does not know: start over.
    let unknown = DeltaLink(format!(
        "{}/dirsync/v1/mailboxes/delta?$deltatoken=bogus",
        emulator.info.graph
    ));
    let mut delta = client.mailbox_delta(Some(&unknown)).unwrap();
    assert_eq!(
        delta.next_page().await.unwrap(),
        Some(MailboxPage::ResyncRequired)
    );

    // Public Graph has no mailbox endpoint, and says so on the first page.
    let public = start(EmulatorConfig {
        mailbox_endpoint: false,
        ..EmulatorConfig::default()
    });
    let client = app_client(&public.info, quick_policy());
    let mut delta = client.mailbox_delta(None).unwrap();
    assert!(matches!(
        delta.next_page().await.unwrap(),
        Some(MailboxPage::Missing { .. })
    ));
    assert!(matches!(
        client.mailbox_endpoint().await.unwrap(),
        MailboxEndpoint::Missing { .. }
    ));
}
