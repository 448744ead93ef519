//! Directory roles assigned through Graph (`POST`/`GET`/`DELETE
//! /roleManagement/directory/roleAssignments`), and what they let an app do: reset users'
//! passwords with `PATCH /users/{id}` and `passwordProfile` (user-update; "Who can reset
//! passwords"), with passwordPolicies and the complexity rule.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_emulator::{EmulatorConfig, FaultSettings, ReadyInfo, RunningEmulator};

const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
const HELPDESK_ADMINISTRATOR: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
const GLOBAL_READER: &str = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";
const PRIVILEGED_AUTHENTICATION_ADMINISTRATOR: &str = "7be44c8a-adaf-4e2a-84d6-ab2649e08a13";
const ASSIGNMENTS: &str = "/roleManagement/directory/roleAssignments";
/// What `common::new_user` sets.
const INITIAL_PASSWORD: &str = "Initial-Passw0rd!";
const COMPLEXITY: &str = "The specified password does not comply with password complexity requirements. Please provide a different password.";
const CONFLICT: &str = "A conflicting object with one or more of the specified property values is present in the directory.";

fn id_of(object: &Value) -> String {
    object["id"].as_str().unwrap().to_owned()
}

/// The object ID of an app's service principal.
async fn service_principal_of(info: &ReadyInfo, admin: &str, app_id: &str) -> String {
    let found = graph(
        info,
        admin,
        Method::GET,
        &format!("/servicePrincipals?$filter=appId%20eq%20'{app_id}'"),
        None,
    )
    .await;
    assert_eq!(found.status, StatusCode::OK, "{:?}", found.body);
    id_of(&found.body["value"][0])
}

/// An app with these application permissions: its token and its service principal's ID.
async fn app(info: &ReadyInfo, admin: &str, name: &str, roles: &[&str]) -> (String, String) {
    let (app_id, secret) = app_with_roles(info, admin, name, roles).await;
    let sp = service_principal_of(info, admin, &app_id).await;
    (app_token_for(info, &app_id, &secret).await, sp)
}

async fn assign(info: &ReadyInfo, token: &str, role: &str, principal: &str) -> Answer {
    graph(
        info,
        token,
        Method::POST,
        ASSIGNMENTS,
        Some(json!({
            "@odata.type": "#microsoft.graph.unifiedRoleAssignment",
            "roleDefinitionId": role,
            "principalId": principal,
            "directoryScopeId": "/",
        })),
    )
    .await
}

async fn set_password(info: &ReadyInfo, token: &str, user: &str, password: &str) -> Answer {
    patch(
        info,
        token,
        user,
        json!({"passwordProfile": {"password": password, "forceChangePasswordNextSignIn": false}}),
    )
    .await
}

async fn patch(info: &ReadyInfo, token: &str, user: &str, body: Value) -> Answer {
    graph(
        info,
        token,
        Method::PATCH,
        &format!("/users/{user}"),
        Some(body),
    )
    .await
}

async fn sign_in(info: &ReadyInfo, upn: &str, password: &str) -> Answer {
    user_token(info, upn, password, "https://graph.microsoft.com/.default").await
}

fn assert_denied(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{:?}", answer.body);
    assert_eq!(answer.error_code(), "Authorization_RequestDenied");
    assert_eq!(
        answer.error_message(),
        "Insufficient privileges to complete the operation."
    );
}

async fn assert_signs_in(info: &ReadyInfo, upn: &str, good: &str, bad: &str) {
    let signed_in = sign_in(info, upn, good).await;
    assert_eq!(signed_in.status, StatusCode::OK, "{:?}", signed_in.body);
    let refused = sign_in(info, upn, bad).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.body["error_codes"],
        json!([50126]),
        "{:?}",
        refused.body
    );
}

#[tokio::test]
async fn a_global_administrator_gives_an_app_user_administrator_and_takes_it_back() {
    let emulator = start();
    let info = &emulator.info;
    let admin = admin_token(info).await;
    let sync = app_token(info).await;
    let (resetter, sp) = app(
        info,
        &admin,
        "Password resetter",
        &["User-PasswordProfile.ReadWrite.All"],
    )
    .await;
    let alice = create_user(info, &sync, "alice", "YWxpY2VhbGljZWFsaWNlYWw=").await;
    let (alice_id, alice_upn) = (
        id_of(&alice),
        alice["userPrincipalName"].as_str().unwrap().to_owned(),
    );

    // The permission alone is not enough: the app needs a directory role.
    assert_denied(&set_password(info, &resetter, &alice_id, "Second-Passw0rd!").await);

    let assigned = assign(info, &admin, USER_ADMINISTRATOR, &sp).await;
    assert_eq!(assigned.status, StatusCode::CREATED, "{:?}", assigned.body);
    let assignment = format!("{USER_ADMINISTRATOR}_{sp}");
    assert_eq!(assigned.body["id"], assignment.as_str());
    assert_eq!(assigned.body["principalId"], sp.as_str());
    assert_eq!(assigned.body["roleDefinitionId"], USER_ADMINISTRATOR);
    assert_eq!(assigned.body["directoryScopeId"], "/");
    assert!(
        assigned.body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#roleManagement/directory/roleAssignments/$entity")
    );
    let again = assign(info, &admin, USER_ADMINISTRATOR, &sp).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{:?}", again.body);
    assert_eq!(again.error_code(), "Request_BadRequest");
    assert_eq!(again.error_message(), CONFLICT);

    // It is listed, fetched by id, and the app is a member of the activated role.
    let got = graph(
        info,
        &sync,
        Method::GET,
        &format!("{ASSIGNMENTS}/{assignment}"),
        None,
    )
    .await;
    assert_eq!(got.status, StatusCode::OK, "{:?}", got.body);
    assert_eq!(got.body["principalId"], sp.as_str());
    let listed = graph(
        info,
        &sync,
        Method::GET,
        &format!("{ASSIGNMENTS}?$filter=principalId%20eq%20'{sp}'"),
        None,
    )
    .await;
    assert_eq!(
        listed.body["value"].as_array().unwrap().len(),
        1,
        "{:?}",
        listed.body
    );
    assert_eq!(listed.body["value"][0]["id"], assignment.as_str());
    let members = graph(
        info,
        &sync,
        Method::GET,
        &format!("/directoryRoles(roleTemplateId='{USER_ADMINISTRATOR}')/members"),
        None,
    )
    .await;
    assert_eq!(members.status, StatusCode::OK, "{:?}", members.body);
    let member = &members.body["value"][0];
    assert_eq!(member["@odata.type"], "#microsoft.graph.servicePrincipal");
    assert_eq!(member["id"], sp.as_str());
    assert_eq!(member["displayName"], "Password resetter");
    assert!(member["appId"].is_string());

    // Now the app resets a plain user's password: the new one signs in, the old one does not.
    let reset = set_password(info, &resetter, &alice_id, "Second-Passw0rd!").await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT, "{:?}", reset.body);
    assert_signs_in(info, &alice_upn, "Second-Passw0rd!", INITIAL_PASSWORD).await;

    // User-PasswordProfile.ReadWrite.All covers passwordProfile only.
    assert_denied(&patch(info, &resetter, &alice_id, json!({"jobTitle": "Changed"})).await);
    assert_denied(
        &patch(
            info,
            &resetter,
            &alice_id,
            json!({"passwordPolicies": "DisablePasswordExpiration", "passwordProfile": {"password": "Third-Passw0rd!"}}),
        )
        .await,
    );

    // The complexity rule, in a batch too.
    let weak = set_password(info, &resetter, &alice_id, "alllowercase").await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST, "{:?}", weak.body);
    assert_eq!(weak.error_code(), "Request_BadRequest");
    assert_eq!(weak.error_message(), COMPLEXITY);
    let batch = graph(
        info,
        &resetter,
        Method::POST,
        "/$batch",
        Some(json!({"requests": [
            {"id": "1", "method": "PATCH", "url": format!("/users/{alice_id}"),
             "headers": {"Content-Type": "application/json"},
             "body": {"passwordProfile": {"password": "weakweakweak"}}},
            {"id": "2", "method": "PATCH", "url": format!("/users/{alice_id}"),
             "headers": {"Content-Type": "application/json"},
             "body": {"passwordProfile": {"password": "Batched-Passw0rd!"}}},
        ]})),
    )
    .await;
    assert_eq!(batch.status, StatusCode::OK, "{:?}", batch.body);
    let status_of = |id: &str| {
        batch.body["responses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status_of("1"), 400);
    assert_eq!(status_of("2"), 204);
    assert_signs_in(info, &alice_upn, "Batched-Passw0rd!", "Second-Passw0rd!").await;

    // Revoked: 204, then gone, and the app may no longer reset passwords.
    let path = format!("{ASSIGNMENTS}/{assignment}");
    let removed = graph(info, &admin, Method::DELETE, &path, None).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{:?}", removed.body);
    for method in [Method::GET, Method::DELETE] {
        let gone = graph(info, &admin, method, &path, None).await;
        assert_eq!(gone.status, StatusCode::NOT_FOUND, "{:?}", gone.body);
        assert_eq!(gone.error_code(), "Request_ResourceNotFound");
    }
    assert_denied(&set_password(info, &resetter, &alice_id, "Fourth-Passw0rd!").await);
    let members = graph(info, &sync, Method::GET, "/directoryRoles", None).await;
    assert!(
        !members.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|role| role["roleTemplateId"] == USER_ADMINISTRATOR),
        "{:?}",
        members.body
    );
}

#[tokio::test]
async fn only_privileged_authentication_administrators_reset_administrators() {
    let emulator = start();
    let info = &emulator.info;
    let admin = admin_token(info).await;
    let sync = app_token(info).await;
    let (resetter, sp) = app(
        info,
        &admin,
        "Resetter",
        &["User-PasswordProfile.ReadWrite.All"],
    )
    .await;
    emulator.assign_role(&sp, USER_ADMINISTRATOR).unwrap();
    let helpdesk = create_user(info, &sync, "helpdesk", "aGVscGRlc2toZWxwZGVza2g=").await;
    emulator
        .assign_role(&id_of(&helpdesk), HELPDESK_ADMINISTRATOR)
        .unwrap();
    let reader = create_user(info, &sync, "reader", "cmVhZGVycmVhZGVycmVhZGU=").await;
    emulator
        .assign_role(&id_of(&reader), GLOBAL_READER)
        .unwrap();
    let global_admin = info.admin_user.clone();

    // User Administrator resets a Helpdesk Administrator, not a Global Reader ("All other
    // built-in roles") nor a Global Administrator.
    let reset = set_password(info, &resetter, &id_of(&helpdesk), "Helpdesk-Passw0rd!").await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT, "{:?}", reset.body);
    assert_denied(&set_password(info, &resetter, &id_of(&reader), "Reader-Passw0rd!").await);
    assert_denied(&set_password(info, &resetter, &global_admin, "Admin-Passw0rd!1").await);

    // Privileged Authentication Administrator resets anyone's password, but an app still may
    // not change anything else of a role holder.
    let assigned = assign(info, &admin, PRIVILEGED_AUTHENTICATION_ADMINISTRATOR, &sp).await;
    assert_eq!(assigned.status, StatusCode::CREATED, "{:?}", assigned.body);
    for user in [id_of(&reader), global_admin.clone()] {
        let reset = set_password(info, &resetter, &user, "Admin-Passw0rd!1").await;
        assert_eq!(reset.status, StatusCode::NO_CONTENT, "{:?}", reset.body);
    }
    assert_signs_in(
        info,
        &global_admin,
        "Admin-Passw0rd!1",
        &info.admin_password,
    )
    .await;
    assert_denied(&patch(info, &sync, &id_of(&reader), json!({"jobTitle": "Changed"})).await);
}

#[tokio::test]
async fn password_policies_are_checked_and_disable_strong_password_waives_complexity() {
    let emulator = start();
    let info = &emulator.info;
    let admin = admin_token(info).await;
    let sync = app_token(info).await;
    let sync_sp = service_principal_of(info, &admin, &info.client_id).await;
    emulator.assign_role(&sync_sp, USER_ADMINISTRATOR).unwrap();
    let bob = create_user(info, &sync, "bob", "Ym9iYm9iYm9iYm9iYm9iYm9=").await;
    let (bob_id, bob_upn) = (
        id_of(&bob),
        bob["userPrincipalName"].as_str().unwrap().to_owned(),
    );

    for bad in [
        "Bogus",
        "DisableStrongPassword,",
        "DisableStrongPassword, Sometimes",
    ] {
        let refused = patch(info, &sync, &bob_id, json!({ "passwordPolicies": bad })).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {:?}",
            refused.body
        );
        assert_eq!(refused.error_code(), "Request_BadRequest");
        assert_eq!(
            refused.error_message(),
            "Invalid value specified for property 'passwordPolicies' of resource 'User'."
        );
    }
    let weak = set_password(info, &sync, &bob_id, "alllowercase").await;
    assert_eq!(weak.error_message(), COMPLEXITY, "{:?}", weak.body);

    let waived = patch(
        info,
        &sync,
        &bob_id,
        json!({"passwordPolicies": "DisablePasswordExpiration, DisableStrongPassword"}),
    )
    .await;
    assert_eq!(waived.status, StatusCode::NO_CONTENT, "{:?}", waived.body);
    let reset = set_password(info, &sync, &bob_id, "alllowercase").await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT, "{:?}", reset.body);
    assert_signs_in(info, &bob_upn, "alllowercase", INITIAL_PASSWORD).await;
    // The length rule stays.
    let short = set_password(info, &sync, &bob_id, "short").await;
    assert_eq!(short.error_message(), COMPLEXITY, "{:?}", short.body);
    // The policies the same request sets are the ones that count.
    let strong_again = patch(
        info,
        &sync,
        &bob_id,
        json!({"passwordPolicies": "None", "passwordProfile": {"password": "lowercaseagain"}}),
    )
    .await;
    assert_eq!(
        strong_again.error_message(),
        COMPLEXITY,
        "{:?}",
        strong_again.body
    );
    let carol = create_user(info, &sync, "carol", "Y2Fyb2xjYXJvbGNhcm9sY2E=").await;
    let both = patch(
        info,
        &sync,
        &id_of(&carol),
        json!({"passwordPolicies": "DisableStrongPassword", "passwordProfile": {"password": "lowercaseagain"}}),
    )
    .await;
    assert_eq!(both.status, StatusCode::NO_CONTENT, "{:?}", both.body);
    // And on create.
    let mut body = new_user("dave", "ZGF2ZWRhdmVkYXZlZGF2ZWQ=");
    body["passwordPolicies"] = json!("DisableStrongPassword");
    body["passwordProfile"]["password"] = json!("lowercaseonly");
    let created = graph(info, &sync, Method::POST, "/users", Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
}

#[tokio::test]
async fn a_reset_replaces_a_synced_password_hash() {
    let emulator = start();
    let info = &emulator.info;
    let admin = admin_token(info).await;
    let sync = app_token(info).await;
    let sync_sp = service_principal_of(info, &admin, &info.client_id).await;
    emulator.assign_role(&sync_sp, USER_ADMINISTRATOR).unwrap();
    let erin = create_user(info, &sync, "erin", "ZXJpbmVyaW5lcmluZXJpbmU=").await;
    let upn = erin["userPrincipalName"].as_str().unwrap().to_owned();
    // The credential of the on-premises password "password" (see tests/password_hash_sync.rs).
    let credential = "v1;PPH1_MD4,00112233445566778899,1000,9ffb6cdb25b9bf88f869082fcb5bc58a7ec0c5d317b126a8ab4ec316c053cd11;";
    let sent = client()
        .post(format!("{}/dirsync/v1/passwordHashes", info.graph))
        .bearer_auth(&sync)
        .json(&json!({"value": [{"id": id_of(&erin), "credential": credential}]}))
        .send()
        .await
        .unwrap();
    let sent = answer(sent).await;
    assert_eq!(sent.body["value"][0]["status"], 204, "{:?}", sent.body);
    assert_signs_in(info, &upn, "password", INITIAL_PASSWORD).await;

    let reset = set_password(info, &sync, &id_of(&erin), "Cloud-Passw0rd!").await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT, "{:?}", reset.body);
    assert_signs_in(info, &upn, "Cloud-Passw0rd!", "password").await;
}

#[tokio::test]
async fn who_may_assign_roles_and_to_what() {
    let emulator = start();
    let info = &emulator.info;
    let admin = admin_token(info).await;
    let sync = app_token(info).await;
    let frank = create_user(info, &sync, "frank", "ZnJhbmtmcmFua2ZyYW5rZnI=").await;
    let (_, target) = app(info, &admin, "Target", &[]).await;

    // A signed-in user who is not an administrator (Azure CLI's pre-authorized scopes).
    let cli = token_request(
        info,
        &info.tenant_id,
        &[
            ("grant_type", "password"),
            ("client_id", "04b07795-8ddb-461a-bbee-02f9e1bf7b46"),
            ("username", frank["userPrincipalName"].as_str().unwrap()),
            ("password", INITIAL_PASSWORD),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_eq!(cli.status, StatusCode::OK, "{:?}", cli.body);
    let frank_token = cli.body["access_token"].as_str().unwrap().to_owned();
    assert_denied(&assign(info, &frank_token, USER_ADMINISTRATOR, &target).await);
    // An app with only RoleManagement.Read.Directory (the sync app) may not either.
    assert_denied(&assign(info, &sync, USER_ADMINISTRATOR, &target).await);

    // An app with RoleManagement.ReadWrite.Directory may, and needs no role itself.
    let (manager, _) = app(
        info,
        &admin,
        "Role manager",
        &["RoleManagement.ReadWrite.Directory"],
    )
    .await;
    let assigned = assign(info, &manager, HELPDESK_ADMINISTRATOR, &id_of(&frank)).await;
    assert_eq!(assigned.status, StatusCode::CREATED, "{:?}", assigned.body);

    // Unknown role or principal: 404.
    for (role, principal) in [
        ("00000000-0000-0000-0000-000000000001", target.as_str()),
        (USER_ADMINISTRATOR, "00000000-0000-0000-0000-000000000002"),
    ] {
        let refused = assign(info, &admin, role, principal).await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "{:?}", refused.body);
        assert_eq!(refused.error_code(), "Request_ResourceNotFound");
    }
    // Groups: only role-assignable ones.
    let plain = graph(
        info,
        &admin,
        Method::POST,
        "/groups",
        Some(security_group("plain")),
    )
    .await;
    assert_eq!(plain.status, StatusCode::CREATED, "{:?}", plain.body);
    let refused = assign(info, &admin, USER_ADMINISTRATOR, &id_of(&plain.body)).await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        refused.body
    );
    let mut body = security_group("admins");
    body["isAssignableToRole"] = json!(true);
    let assignable = graph(info, &admin, Method::POST, "/groups", Some(body)).await;
    assert_eq!(
        assignable.status,
        StatusCode::CREATED,
        "{:?}",
        assignable.body
    );
    let assigned = assign(info, &admin, USER_ADMINISTRATOR, &id_of(&assignable.body)).await;
    assert_eq!(assigned.status, StatusCode::CREATED, "{:?}", assigned.body);
    // Only the tenant scope.
    let scoped = graph(
        info,
        &admin,
        Method::POST,
        ASSIGNMENTS,
        Some(json!({"roleDefinitionId": USER_ADMINISTRATOR, "principalId": target, "directoryScopeId": "/administrativeUnits/x"})),
    )
    .await;
    assert_eq!(scoped.status, StatusCode::BAD_REQUEST, "{:?}", scoped.body);
    let missing = graph(
        info,
        &admin,
        Method::POST,
        ASSIGNMENTS,
        Some(json!({"roleDefinitionId": USER_ADMINISTRATOR, "directoryScopeId": "/"})),
    )
    .await;
    assert_eq!(
        missing.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        missing.body
    );
}

#[tokio::test]
async fn a_new_role_takes_effect_after_the_propagation_delay() {
    let emulator = RunningEmulator::start(EmulatorConfig {
        faults: FaultSettings {
            role_propagation_ms: 1500,
            ..FaultSettings::default()
        },
        ..config()
    })
    .unwrap();
    let info = &emulator.info;
    let admin = admin_token(info).await;
    let sync = app_token(info).await;
    let (resetter, sp) = app(
        info,
        &admin,
        "Slow",
        &["User-PasswordProfile.ReadWrite.All"],
    )
    .await;
    let gina = create_user(info, &sync, "gina", "Z2luYWdpbmFnaW5hZ2luYWc=").await;
    let assigned = assign(info, &admin, USER_ADMINISTRATOR, &sp).await;
    assert_eq!(assigned.status, StatusCode::CREATED, "{:?}", assigned.body);
    assert_denied(&set_password(info, &resetter, &id_of(&gina), "Later-Passw0rd!").await);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let reset = set_password(info, &resetter, &id_of(&gina), "Later-Passw0rd!").await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT, "{:?}", reset.body);
}
