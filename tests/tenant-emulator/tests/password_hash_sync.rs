//! The password hash sync extension (`/dirsync/v1/passwordHashes`, not Graph): the probe, the
//! per-user results, whole-request refusals, who may call it, the write limit, sign-in with the
//! on-premises password afterwards, and the switch that hides it as public Graph would.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_emulator::{EmulatorConfig, ReadyInfo, RunningEmulator};

/// The credential for the password "password" (NT hash 8846F7EAEE8FB117AD06BDD830B7586C), salt
/// 00112233445566778899, 1,000 iterations; the hash computed with Python's
/// `hashlib.pbkdf2_hmac`.
const CREDENTIAL: &str = "v1;PPH1_MD4,00112233445566778899,1000,9ffb6cdb25b9bf88f869082fcb5bc58a7ec0c5d317b126a8ab4ec316c053cd11;";
const AD_PASSWORD: &str = "password";
/// What `common::new_user` sets in the cloud.
const CLOUD_PASSWORD: &str = "Initial-Passw0rd!";

const NOT_SYNCED: &str =
    "Password hashes can only be set for users synchronized from on-premises directories.";

/// Calls the endpoint with an optional bearer token and JSON body.
async fn password_hashes(
    info: &ReadyInfo,
    token: Option<&str>,
    method: Method,
    body: Option<Value>,
) -> Answer {
    let mut request = client().request(method, format!("{}/dirsync/v1/passwordHashes", info.graph));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request.send().await.unwrap()).await
}

async fn send(info: &ReadyInfo, token: &str, items: &[(&str, &str)]) -> Answer {
    let value: Vec<Value> = items
        .iter()
        .map(|(id, credential)| json!({"id": id, "credential": credential}))
        .collect();
    password_hashes(
        info,
        Some(token),
        Method::POST,
        Some(json!({ "value": value })),
    )
    .await
}

async fn sign_in(info: &ReadyInfo, upn: &str, password: &str) -> Answer {
    user_token(info, upn, password, "https://graph.microsoft.com/.default").await
}

fn id_of(user: &Value) -> String {
    user["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_probe_answers_a_valid_token_and_refuses_others_as_graph_does() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let probe = password_hashes(info, Some(&token), Method::GET, None).await;
    assert_eq!(probe.status, StatusCode::OK, "{:?}", probe.body);
    assert_eq!(
        probe.body,
        json!({"maxBatchSize": 50, "algorithms": ["PPH1_MD4"]})
    );
    assert!(probe.header("request-id").is_some());

    for token in [None, Some("not-a-token")] {
        for method in [Method::GET, Method::POST] {
            let refused = password_hashes(info, token, method, None).await;
            assert_eq!(
                refused.status,
                StatusCode::UNAUTHORIZED,
                "{:?}",
                refused.body
            );
            assert_eq!(refused.error_code(), "InvalidAuthenticationToken");
            assert!(refused.header("WWW-Authenticate").is_some());
        }
    }
    let other = password_hashes(info, Some(&token), Method::PUT, None).await;
    assert_eq!(other.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(other.error_code(), "Request_BadRequest");
}

#[tokio::test]
async fn a_synced_password_signs_in_and_the_cloud_password_no_longer_does() {
    let directory = tempfile::tempdir().unwrap();
    let with_state = || EmulatorConfig {
        state_file: Some(directory.path().join("tenant.json")),
        ..config()
    };
    let emulator = RunningEmulator::start(with_state()).unwrap();
    let info = emulator.info.clone();
    let token = app_token(&info).await;
    let user = create_user(&info, &token, "samesignon", "c2FtZXNpZ25vbnNhbWVzaWc=").await;
    let id = id_of(&user);
    let upn = user["userPrincipalName"].as_str().unwrap().to_owned();
    assert_eq!(
        sign_in(&info, &upn, CLOUD_PASSWORD).await.status,
        StatusCode::OK
    );
    assert!(emulator.users_with_synced_password().is_empty());

    // Object IDs are accepted in any case and echoed as sent.
    let upper = id.to_uppercase();
    let sent = send(&info, &token, &[(&upper, CREDENTIAL)]).await;
    assert_eq!(sent.status, StatusCode::OK, "{:?}", sent.body);
    assert_eq!(sent.body, json!({"value": [{"id": upper, "status": 204}]}));
    assert_eq!(emulator.users_with_synced_password(), vec![id.clone()]);

    let signed_in = sign_in(&info, &upn, AD_PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::OK, "{:?}", signed_in.body);
    for wrong in [CLOUD_PASSWORD, "Password"] {
        let refused = sign_in(&info, &upn, wrong).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            refused.body["error_codes"],
            json!([50126]),
            "{:?}",
            refused.body
        );
    }

    // Never visible through Graph (nor through the objects hook).
    let hash = CREDENTIAL.split(',').nth(3).unwrap().trim_end_matches(';');
    let read = graph(&info, &token, Method::GET, &format!("/users/{id}"), None).await;
    assert_eq!(read.status, StatusCode::OK);
    let listed = graph(&info, &token, Method::GET, "/users", None).await;
    let delta = graph(&info, &token, Method::GET, "/users/delta", None).await;
    for text in [
        read.body.to_string(),
        listed.body.to_string(),
        delta.body.to_string(),
        json!(emulator.objects("users")).to_string(),
    ] {
        assert!(!text.contains(hash), "{text}");
        assert!(!text.contains("PPH1"), "{text}");
    }

    // The credential is in the state file: a restart keeps the same sign-on.
    emulator.stop();
    let again = RunningEmulator::start(with_state()).unwrap();
    assert_eq!(again.users_with_synced_password(), vec![id.clone()]);
    let signed_in = sign_in(&again.info, &upn, AD_PASSWORD).await;
    assert_eq!(signed_in.status, StatusCode::OK, "{:?}", signed_in.body);

    // A cloud password set later through Graph is the one that signs in (an app resets
    // passwords once it holds User Administrator).
    let sync_sp = again
        .objects("servicePrincipals")
        .into_iter()
        .find(|sp| sp["appId"] == again.info.client_id.as_str())
        .unwrap();
    again
        .assign_role(
            sync_sp["id"].as_str().unwrap(),
            "fe930be7-5e62-47db-91af-98c3a49a38b1",
        )
        .unwrap();
    let token = app_token(&again.info).await;
    let reset = graph(
        &again.info,
        &token,
        Method::PATCH,
        &format!("/users/{id}"),
        Some(json!({"passwordProfile": {"password": "Reset-Passw0rd!", "forceChangePasswordNextSignIn": false}})),
    )
    .await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT, "{:?}", reset.body);
    assert!(again.users_with_synced_password().is_empty());
    assert_eq!(
        sign_in(&again.info, &upn, "Reset-Passw0rd!").await.status,
        StatusCode::OK
    );
    assert_eq!(
        sign_in(&again.info, &upn, AD_PASSWORD).await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn each_item_is_judged_alone_and_answered_in_order() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let synced = id_of(&create_user(info, &token, "synced", "c3luY2Vkc3luY2Vkc3luYw==").await);
    let other = id_of(&create_user(info, &token, "other", "b3RoZXJvdGhlcm90aGVyb3Q=").await);
    let mut cloud_only = new_user("cloudonly", "unused");
    cloud_only
        .as_object_mut()
        .unwrap()
        .remove("onPremisesImmutableId");
    let cloud_only = graph(info, &token, Method::POST, "/users", Some(cloud_only)).await;
    assert_eq!(
        cloud_only.status,
        StatusCode::CREATED,
        "{:?}",
        cloud_only.body
    );
    let cloud_only = id_of(&cloud_only.body);
    let unknown = "0badc0de-0000-4000-8000-000000000000";
    let malformed = CREDENTIAL.replace(",1000,", ",0,");

    let sent = send(
        info,
        &token,
        &[
            (&synced, CREDENTIAL),
            (&cloud_only, CREDENTIAL),
            (unknown, CREDENTIAL),
            (&other, &malformed),
        ],
    )
    .await;
    assert_eq!(sent.status, StatusCode::OK, "{:?}", sent.body);
    assert_eq!(
        sent.body,
        json!({"value": [
            {"id": synced, "status": 204},
            {"id": cloud_only, "status": 400, "error": {"code": "Request_BadRequest", "message": NOT_SYNCED}},
            {"id": unknown, "status": 404, "error": {"code": "Request_ResourceNotFound", "message": format!("Resource '{unknown}' does not exist or one of its queried reference-property objects are not present.")}},
            {"id": other, "status": 400, "error": {"code": "Request_BadRequest", "message": "The credential is not a valid v1;PPH1_MD4 value."}},
        ]})
    );
    assert_eq!(emulator.users_with_synced_password(), vec![synced.clone()]);

    // A user in deleted items is no user.
    let deleted = graph(
        info,
        &token,
        Method::DELETE,
        &format!("/users/{synced}"),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let sent = send(info, &token, &[(&synced, CREDENTIAL)]).await;
    assert_eq!(sent.body["value"][0]["status"], 404, "{:?}", sent.body);
    assert!(emulator.users_with_synced_password().is_empty());
}

#[tokio::test]
async fn malformed_empty_or_oversized_requests_are_refused_whole() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let user = id_of(&create_user(info, &token, "whole", "d2hvbGV3aG9sZXdob2xld2g=").await);
    let item = json!({"id": user, "credential": CREDENTIAL});
    for (body, words) in [
        (json!({"value": []}), "empty"),
        (json!({"value": vec![item.clone(); 51]}), "at most 50"),
        (json!({"items": [item.clone()]}), "must be"),
        (json!({"value": [{"id": user}]}), "'credential'"),
    ] {
        let refused = password_hashes(info, Some(&token), Method::POST, Some(body)).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{:?}",
            refused.body
        );
        assert_eq!(refused.error_code(), "Request_BadRequest");
        assert!(
            refused.error_message().contains(words),
            "{:?}",
            refused.body
        );
    }
    let response = client()
        .post(format!("{}/dirsync/v1/passwordHashes", info.graph))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body("{\"value\": [")
        .send()
        .await
        .unwrap();
    let refused = answer(response).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.error_code(), "Request_BadRequest");
    assert!(
        refused.error_message().contains("not valid JSON"),
        "{:?}",
        refused.body
    );
    // Nothing was stored by any of them; exactly 50 is fine.
    assert!(emulator.users_with_synced_password().is_empty());
    let fifty = password_hashes(
        info,
        Some(&token),
        Method::POST,
        Some(json!({"value": vec![item; 50]})),
    )
    .await;
    assert_eq!(fifty.status, StatusCode::OK, "{:?}", fifty.body);
    assert_eq!(fifty.body["value"].as_array().unwrap().len(), 50);
}

#[tokio::test]
async fn only_applications_that_may_write_users_may_send_hashes() {
    let emulator = start();
    let info = &emulator.info;
    let admin = admin_token(info).await;
    let token = app_token(info).await;
    let user = id_of(&create_user(info, &token, "perm", "cGVybXBlcm1wZXJtcGVybXA=").await);
    let (reader, reader_secret) = app_with_roles(info, &admin, "reader", &["User.Read.All"]).await;
    let (directory, directory_secret) =
        app_with_roles(info, &admin, "directory", &["Directory.ReadWrite.All"]).await;
    let reader = app_token_for(info, &reader, &reader_secret).await;
    let directory = app_token_for(info, &directory, &directory_secret).await;
    // A signed-in user (even the Global Administrator) and an app that only reads are refused.
    for refused_token in [&admin, &reader] {
        let refused = send(info, refused_token, &[(&user, CREDENTIAL)]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
        assert_eq!(refused.error_code(), "Authorization_RequestDenied");
        assert_eq!(
            refused.error_message(),
            "Insufficient privileges to complete the operation."
        );
        // The probe only needs a valid token.
        let probe = password_hashes(info, Some(refused_token), Method::GET, None).await;
        assert_eq!(probe.status, StatusCode::OK);
    }
    assert!(emulator.users_with_synced_password().is_empty());
    let sent = send(info, &directory, &[(&user, CREDENTIAL)]).await;
    assert_eq!(sent.body["value"][0]["status"], 204, "{:?}", sent.body);
}

#[tokio::test]
async fn each_request_counts_as_one_write_against_the_limit() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let limits = hook(
        info,
        Method::PUT,
        "limits",
        Some(json!({"writes": 1, "window_secs": 60})),
    )
    .await;
    assert_eq!(limits.status, StatusCode::NO_CONTENT);
    let unknown = "0badc0de-0000-4000-8000-000000000001";
    let items = [(unknown, CREDENTIAL), (unknown, CREDENTIAL)];
    let first = send(info, &token, &items).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let second = send(info, &token, &items).await;
    assert_eq!(
        second.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{:?}",
        second.body
    );
    assert_eq!(second.error_code(), "TooManyRequests");
    let wait: u64 = second.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // The probe is a read: not limited.
    let probe = password_hashes(info, Some(&token), Method::GET, None).await;
    assert_eq!(probe.status, StatusCode::OK);
}

/// What the router answers for a path it does not know.
fn unknown_path(path: &str) -> Value {
    json!({"error": {"code": "NotFound", "message": format!("No endpoint at {path}")}})
}

#[tokio::test]
async fn switched_off_the_endpoint_is_an_unknown_path() {
    let emulator = RunningEmulator::start(EmulatorConfig {
        password_hash_endpoint: false,
        ..config()
    })
    .unwrap();
    let info = &emulator.info;
    let token = app_token(info).await;
    let user = id_of(&create_user(info, &token, "off", "b2Zmb2Zmb2Zmb2Zmb2Zmbw==").await);
    for (method, body) in [
        (Method::GET, None),
        (
            Method::POST,
            Some(json!({"value": [{"id": user, "credential": CREDENTIAL}]})),
        ),
    ] {
        let answer = password_hashes(info, Some(&token), method, body).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{:?}", answer.body);
        assert_eq!(answer.body, unknown_path("/dirsync/v1/passwordHashes"));
    }
    assert!(emulator.users_with_synced_password().is_empty());
}

#[test]
fn the_binary_flag_switches_the_endpoint_off() {
    let (_child, info) = spawn_binary(&["--no-password-hash-endpoint"]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answer = runtime.block_on(async {
        let token = app_token(&info).await;
        password_hashes(&info, Some(&token), Method::GET, None).await
    });
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{:?}", answer.body);
    assert_eq!(answer.body, unknown_path("/dirsync/v1/passwordHashes"));
}
