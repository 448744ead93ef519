//! The directory size quota: Graph's beta organization shows it (`directorySizeQuota`, not in
//! v1.0), creates are refused with `Directory_QuotaExceeded` once it is used up, and `/beta`
//! serves nothing else.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_emulator::{EmulatorConfig, ReadyInfo, RunningEmulator};

const QUOTA_EXCEEDED: &str = "The directory object quota limit for the Tenant has been exceeded. Please ask your administrator to increase the quota limit or delete objects to reduce the used quota.";

/// Calls Graph's beta: `path` is after `/beta` (with its query string).
async fn beta(info: &ReadyInfo, token: &str, method: Method, path: &str) -> Answer {
    let request = client()
        .request(method, format!("{}/beta{path}", info.graph))
        .bearer_auth(token);
    answer(request.send().await.unwrap()).await
}

/// `directorySizeQuota` of the beta organization, as `(used, total)`.
async fn quota(info: &ReadyInfo, token: &str) -> (u64, u64) {
    let answer = beta(
        info,
        token,
        Method::GET,
        "/organization?$select=directorySizeQuota",
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let quota = &answer.body["value"][0]["directorySizeQuota"];
    (
        quota["used"].as_u64().unwrap(),
        quota["total"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn the_beta_organization_shows_the_quota_and_v1_does_not() {
    let emulator = start();
    let info = &emulator.info;
    // The sync app holds Organization.Read.All.
    let token = app_token(info).await;

    let selected = beta(
        info,
        &token,
        Method::GET,
        "/organization?$select=directorySizeQuota",
    )
    .await;
    assert_eq!(selected.status, StatusCode::OK, "{:?}", selected.body);
    assert_eq!(
        selected.body["@odata.context"],
        json!(format!("{}/beta/$metadata#organization", info.graph))
    );
    // Users, groups, applications and service principals: the administrator, Microsoft
    // Graph's and three public clients' service principals, the sync app and its principal.
    let live = ["users", "groups", "applications", "servicePrincipals"]
        .iter()
        .map(|collection| emulator.objects(collection).len())
        .sum::<usize>();
    assert_eq!(live, 7);
    // The test tenant has a verified domain besides the initial one: 300,000.
    assert_eq!(
        selected.body["value"],
        json!([{"directorySizeQuota": {"used": live, "total": 300_000}}])
    );

    let by_id = beta(
        info,
        &token,
        Method::GET,
        &format!("/organization/{}", info.tenant_id),
    )
    .await;
    assert_eq!(by_id.status, StatusCode::OK, "{:?}", by_id.body);
    assert_eq!(by_id.body["id"], json!(info.tenant_id));
    assert_eq!(
        by_id.body["directorySizeQuota"],
        json!({"used": live, "total": 300_000})
    );

    // v1.0 has no such property: not in the organization, and 400 when selected.
    let v1 = graph(info, &token, Method::GET, "/organization", None).await;
    assert_eq!(v1.status, StatusCode::OK, "{:?}", v1.body);
    assert_eq!(v1.body["value"][0]["id"], json!(info.tenant_id));
    assert!(v1.body["value"][0].get("directorySizeQuota").is_none());
    let v1_by_id = graph(
        info,
        &token,
        Method::GET,
        &format!("/organization/{}", info.tenant_id),
        None,
    )
    .await;
    assert!(v1_by_id.body.get("directorySizeQuota").is_none());
    let v1_selected = graph(
        info,
        &token,
        Method::GET,
        "/organization?$select=directorySizeQuota",
        None,
    )
    .await;
    assert_eq!(v1_selected.status, StatusCode::BAD_REQUEST);
    assert_eq!(v1_selected.error_code(), "BadRequest");

    // The same permission check and token check as v1.0.
    let (app_id, secret) = app_with_roles(info, &admin_token(info).await, "no-org", &[]).await;
    let unprivileged = app_token_for(info, &app_id, &secret).await;
    let refused = beta(info, &unprivileged, Method::GET, "/organization").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.error_code(), "Authorization_RequestDenied");
    let anonymous = beta(info, "", Method::GET, "/organization").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.error_code(), "InvalidAuthenticationToken");
}

#[tokio::test]
async fn without_a_verified_domain_of_its_own_the_quota_is_50_000() {
    let emulator = RunningEmulator::start(EmulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..EmulatorConfig::default()
    })
    .unwrap();
    let token = app_token(&emulator.info).await;
    assert_eq!(quota(&emulator.info, &token).await.1, 50_000);

    let configured = RunningEmulator::start(EmulatorConfig {
        directory_quota: Some(1_234),
        ..config()
    })
    .unwrap();
    let token = app_token(&configured.info).await;
    assert_eq!(quota(&configured.info, &token).await.1, 1_234);
}

#[tokio::test]
async fn creates_and_deleted_items_count_until_purged() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let (used, _) = quota(info, &token).await;

    let user = create_user(info, &token, "counted", "Y291bnRlZGNvdW50ZWRjbw==").await;
    assert_eq!(quota(info, &token).await.0, used + 1);
    let group = graph(
        info,
        &token,
        Method::POST,
        "/groups",
        Some(security_group("counted")),
    )
    .await;
    assert_eq!(group.status, StatusCode::CREATED, "{:?}", group.body);
    assert_eq!(quota(info, &token).await.0, used + 2);

    // A deleted user sits in deleted items and still counts; purged, it is gone.
    let id = user["id"].as_str().unwrap();
    let deleted = graph(info, &token, Method::DELETE, &format!("/users/{id}"), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    assert_eq!(quota(info, &token).await.0, used + 2);
    let purged = graph(
        info,
        &admin_token(info).await,
        Method::DELETE,
        &format!("/directory/deletedItems/{id}"),
        None,
    )
    .await;
    assert_eq!(purged.status, StatusCode::NO_CONTENT, "{:?}", purged.body);
    assert_eq!(quota(info, &token).await.0, used + 1);
}

fn assert_quota_exceeded(answer: &Value) {
    assert_eq!(
        answer["error"]["code"], "Directory_QuotaExceeded",
        "{answer:?}"
    );
    assert_eq!(answer["error"]["message"], QUOTA_EXCEEDED, "{answer:?}");
}

#[tokio::test]
async fn a_used_up_quota_refuses_creates_and_creates_nothing() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let admin = admin_token(info).await;
    let kept = create_user(info, &token, "kept", "a2VwdGtlcHRrZXB0a2VwdA==").await;
    let (used, _) = quota(info, &token).await;
    emulator.set_directory_quota(Some(u32::try_from(used).unwrap()));
    assert_eq!(quota(info, &token).await, (used, used));

    let refused = graph(
        info,
        &token,
        Method::POST,
        "/users",
        Some(new_user("over", "b3Zlcm92ZXJvdmVyb3Zlcg==")),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_quota_exceeded(&refused.body);
    let absent = graph(
        info,
        &token,
        Method::GET,
        &format!("/users/over@{DOMAIN}"),
        None,
    )
    .await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);

    let group = graph(
        info,
        &token,
        Method::POST,
        "/groups",
        Some(security_group("over")),
    )
    .await;
    assert_eq!(group.status, StatusCode::BAD_REQUEST);
    assert_quota_exceeded(&group.body);
    let application = graph(
        info,
        &admin,
        Method::POST,
        "/applications",
        Some(json!({"displayName": "over"})),
    )
    .await;
    assert_eq!(application.status, StatusCode::BAD_REQUEST);
    assert_quota_exceeded(&application.body);
    let principal = graph(
        info,
        &admin,
        Method::POST,
        "/servicePrincipals",
        Some(json!({"appId": info.client_id})),
    )
    .await;
    assert_eq!(principal.status, StatusCode::BAD_REQUEST);
    assert_quota_exceeded(&principal.body);

    // In a batch, each create is refused alone.
    let batch = graph(
        info,
        &token,
        Method::POST,
        "/$batch",
        Some(json!({"requests": [
            {"id": "1", "method": "POST", "url": "/users", "headers": {"Content-Type": "application/json"}, "body": new_user("batched", "YmF0Y2hlZGJhdGNoZWRiYQ==")},
            {"id": "2", "method": "GET", "url": "/domains"},
        ]})),
    )
    .await;
    assert_eq!(batch.status, StatusCode::OK, "{:?}", batch.body);
    let responses = batch.body["responses"].as_array().unwrap();
    let response = |id: &str| responses.iter().find(|r| r["id"] == json!(id)).unwrap();
    assert_eq!(response("1")["status"], 400);
    assert_quota_exceeded(&response("1")["body"]);
    assert_eq!(response("2")["status"], 200);

    // Nothing was created; updates go on.
    assert_eq!(quota(info, &token).await.0, used);
    let updated = graph(
        info,
        &token,
        Method::PATCH,
        &format!("/users/{}", kept["id"].as_str().unwrap()),
        Some(json!({"jobTitle": "Keeper"})),
    )
    .await;
    assert_eq!(updated.status, StatusCode::NO_CONTENT, "{:?}", updated.body);

    // Raised again, creates work.
    emulator.set_directory_quota(None);
    create_user(info, &token, "over", "b3Zlcm92ZXJvdmVyb3Zlcg==").await;
    assert_eq!(quota(info, &token).await, (used + 1, 300_000));
}

#[tokio::test]
async fn beta_serves_only_the_organization() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    for (method, path, segment) in [
        (Method::GET, "/users", "users"),
        (Method::GET, "/domains", "domains"),
        (Method::GET, "/organization/x/extensions", "extensions"),
        (Method::POST, "/$batch", "$batch"),
    ] {
        let answer = beta(info, &token, method, path).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{path}: {:?}",
            answer.body
        );
        assert_eq!(answer.error_code(), "BadRequest", "{path}");
        assert_eq!(
            answer.error_message(),
            format!("Resource not found for the segment '{segment}'."),
            "{path}"
        );
        assert!(answer.body["error"]["innerError"]["request-id"].is_string());
    }
}
