//! The identity platform's token and devicecode endpoints: every grant, every refusal, and
//! the error body's shape.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tenant_emulator::{EmulatorConfig, RunningEmulator};

fn assert_sts_error(answer: &Answer, status: u16, error: &str, code: u64) {
    assert_eq!(answer.status.as_u16(), status, "{:?}", answer.body);
    assert_eq!(answer.body["error"], json!(error), "{:?}", answer.body);
    assert_eq!(
        answer.body["error_codes"],
        json!([code]),
        "{:?}",
        answer.body
    );
    let description = answer.body["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    for part in ["\r\nTrace ID: ", "\r\nCorrelation ID: ", "\r\nTimestamp: "] {
        assert!(description.contains(part), "{description}");
    }
    for field in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(answer.body[field].is_string(), "{field}: {:?}", answer.body);
    }
}

#[tokio::test]
async fn client_credentials_issue_a_token_with_the_assigned_roles() {
    let emulator = start();
    let info = &emulator.info;
    for tenant in [
        info.tenant_id.as_str(),
        "contoso-lab.onmicrosoft.com",
        DOMAIN,
    ] {
        let answer = token_request(
            info,
            tenant,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &info.client_id),
                ("client_secret", &info.client_secret),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{tenant}: {:?}", answer.body);
        assert_eq!(answer.body["token_type"], "Bearer");
        assert_eq!(answer.body["expires_in"], 3599);
        assert_eq!(answer.body["ext_expires_in"], 3599);
        assert!(answer.body.get("refresh_token").is_none());
        let token = answer.body["access_token"].as_str().unwrap();
        // The sync app may read domains (Domain.Read.All) and the organization
        // (Organization.Read.All) but not applications (no Application.Read.All).
        let domains = graph(info, token, Method::GET, "/domains", None).await;
        assert_eq!(domains.status, StatusCode::OK, "{:?}", domains.body);
        let organization = graph(info, token, Method::GET, "/organization", None).await;
        assert_eq!(
            organization.status,
            StatusCode::OK,
            "{:?}",
            organization.body
        );
        let applications = graph(info, token, Method::GET, "/applications", None).await;
        assert_eq!(applications.status, StatusCode::FORBIDDEN);
        assert_eq!(applications.error_code(), "Authorization_RequestDenied");
    }
}

#[tokio::test]
async fn the_token_endpoint_refuses_as_the_identity_platform_does() {
    let emulator = start();
    let info = &emulator.info;
    let base = [
        ("grant_type", "client_credentials"),
        ("client_id", info.client_id.as_str()),
        ("client_secret", info.client_secret.as_str()),
        ("scope", "https://graph.microsoft.com/.default"),
    ];

    let answer = token_request(info, "fabrikam.onmicrosoft.com", &base).await;
    assert_sts_error(&answer, 400, "invalid_request", 90002);
    assert!(
        answer.body["error_description"]
            .as_str()
            .unwrap()
            .contains("Tenant 'fabrikam.onmicrosoft.com' not found.")
    );

    // client_secret_basic works as well as client_secret_post.
    let basic = client()
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            info.authority, info.tenant_id
        ))
        .basic_auth(&info.client_id, Some(&info.client_secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::OK);

    let mut wrong_secret = base;
    wrong_secret[2] = ("client_secret", "not-the-secret");
    assert_sts_error(
        &token_request(info, &info.tenant_id, &wrong_secret).await,
        401,
        "invalid_client",
        7000215,
    );

    let mut unknown_client = base;
    unknown_client[1] = ("client_id", "11111111-2222-3333-4444-555555555555");
    let answer = token_request(info, &info.tenant_id, &unknown_client).await;
    assert_sts_error(&answer, 400, "unauthorized_client", 700016);
    assert!(
        answer.body["error_description"]
            .as_str()
            .unwrap()
            .contains("'11111111-2222-3333-4444-555555555555' was not found")
    );

    let mut delegated_scope = base;
    delegated_scope[3] = ("scope", "User.Read.All");
    assert_sts_error(
        &token_request(info, &info.tenant_id, &delegated_scope).await,
        400,
        "invalid_scope",
        1002012,
    );

    let mut no_secret = base.to_vec();
    no_secret.remove(2);
    assert_sts_error(
        &token_request(info, &info.tenant_id, &no_secret).await,
        401,
        "invalid_client",
        7000218,
    );

    let mut no_grant = base.to_vec();
    no_grant.remove(0);
    assert_sts_error(
        &token_request(info, &info.tenant_id, &no_grant).await,
        400,
        "invalid_request",
        900144,
    );

    let mut odd_grant = base;
    odd_grant[0] = ("grant_type", "authorization_code_plus");
    assert_sts_error(
        &token_request(info, &info.tenant_id, &odd_grant).await,
        400,
        "unsupported_grant_type",
        70003,
    );

    // Expired secrets: the test hook moves every secret's endDateTime into the past.
    let expired = hook(
        info,
        Method::POST,
        &format!("applications/{}/expire-secrets", info.client_id),
        None,
    )
    .await;
    assert_eq!(expired.status, StatusCode::NO_CONTENT);
    assert_sts_error(
        &token_request(info, &info.tenant_id, &base).await,
        401,
        "invalid_client",
        7000222,
    );
    let missing = hook(
        info,
        Method::POST,
        "applications/00000000-0000-0000-0000-000000000001/expire-secrets",
        None,
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn graph_refuses_missing_garbage_and_expired_tokens() {
    let emulator = RunningEmulator::start(EmulatorConfig {
        token_lifetime: Duration::from_secs(1),
        ..config()
    })
    .unwrap();
    let info = &emulator.info;
    let token = app_token(info).await;
    let fine = graph(info, &token, Method::GET, "/domains", None).await;
    assert_eq!(fine.status, StatusCode::OK);

    let response = client()
        .get(format!("{}/v1.0/users", info.graph))
        .send()
        .await
        .unwrap();
    let missing = answer(response).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.error_code(), "InvalidAuthenticationToken");
    assert!(
        missing
            .header("WWW-Authenticate")
            .is_some_and(|h| h.starts_with("Bearer "))
    );
    assert!(missing.body["error"]["innerError"]["request-id"].is_string());

    let garbage = graph(info, "not-a-token", Method::GET, "/users", None).await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
    assert_eq!(garbage.error_code(), "InvalidAuthenticationToken");

    let mut forged = token.clone();
    forged.insert(forged.len() / 2, 'x');
    assert_eq!(
        graph(info, &forged, Method::GET, "/users", None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = graph(info, &token, Method::GET, "/domains", None).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        expired.error_message(),
        "Lifetime validation failed, the token is expired."
    );
}

async fn device_code(info: &tenant_emulator::ReadyInfo, scope: &str) -> Answer {
    let response = client()
        .post(format!(
            "{}/{}/oauth2/v2.0/devicecode",
            info.authority, info.tenant_id
        ))
        .form(&[("client_id", GRAPH_CLI), ("scope", scope)])
        .send()
        .await
        .unwrap();
    answer(response).await
}

async fn poll(info: &tenant_emulator::ReadyInfo, device_code: &str) -> Answer {
    token_request(
        info,
        &info.tenant_id,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", GRAPH_CLI),
            ("device_code", device_code),
        ],
    )
    .await
}

#[tokio::test]
async fn device_codes_are_pending_until_approved_and_poll_no_faster_than_the_interval() {
    let emulator = start();
    let info = &emulator.info;
    let started = device_code(info, "https://graph.microsoft.com/Directory.ReadWrite.All Application.ReadWrite.All offline_access").await;
    assert_eq!(started.status, StatusCode::OK, "{:?}", started.body);
    let user_code = started.body["user_code"].as_str().unwrap().to_owned();
    let code = started.body["device_code"].as_str().unwrap().to_owned();
    assert_eq!(started.body["interval"], 1);
    assert_eq!(started.body["expires_in"], 900);
    assert_eq!(
        started.body["verification_uri"],
        format!("{}/devicelogin", info.authority)
    );
    assert!(
        started.body["message"]
            .as_str()
            .unwrap()
            .contains(&user_code)
    );

    assert_sts_error(
        &poll(info, &code).await,
        400,
        "authorization_pending",
        70016,
    );
    // Polling again at once is too fast.
    assert_sts_error(&poll(info, &code).await, 400, "slow_down", 70016);

    let approved = hook(
        info,
        Method::POST,
        "device-codes/approve",
        Some(json!({"user_code": user_code, "decision": "approve"})),
    )
    .await;
    assert_eq!(approved.status, StatusCode::NO_CONTENT);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let token = poll(info, &code).await;
    assert_eq!(token.status, StatusCode::OK, "{:?}", token.body);
    let scopes = token.body["scope"].as_str().unwrap();
    assert!(
        scopes.contains("Directory.ReadWrite.All") && scopes.contains("Application.ReadWrite.All"),
        "{scopes}"
    );
    assert!(token.body["refresh_token"].is_string());
    let access = token.body["access_token"].as_str().unwrap();
    let me = graph(info, access, Method::GET, "/me", None).await;
    assert_eq!(me.body["userPrincipalName"], json!(info.admin_user));

    // A redeemed code is gone.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_sts_error(
        &poll(info, &code).await,
        400,
        "bad_verification_code",
        70018,
    );
    let unknown = hook(
        info,
        Method::POST,
        "device-codes/approve",
        Some(json!({"user_code": "NOSUCHCOD"})),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn declined_and_expired_device_codes_end_the_flow() {
    let emulator = start();
    let info = &emulator.info;
    for (decision, error, code_number) in [
        ("decline", "authorization_declined", 65004),
        ("expire", "expired_token", 70019),
    ] {
        let started = device_code(info, "User.Read").await;
        let user_code = started.body["user_code"].as_str().unwrap();
        let code = started.body["device_code"].as_str().unwrap();
        let decided = hook(
            info,
            Method::POST,
            "device-codes/approve",
            Some(json!({"user_code": user_code, "decision": decision})),
        )
        .await;
        assert_eq!(decided.status, StatusCode::NO_CONTENT);
        assert_sts_error(&poll(info, code).await, 400, error, code_number);
    }
    // A code also expires on its own.
    let emulator = RunningEmulator::start(EmulatorConfig {
        device_code_lifetime_secs: 1,
        ..config()
    })
    .unwrap();
    let info = &emulator.info;
    let started = device_code(info, "User.Read").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_sts_error(
        &poll(info, started.body["device_code"].as_str().unwrap()).await,
        400,
        "expired_token",
        70019,
    );
}

#[tokio::test]
async fn auto_approve_signs_the_administrator_in_at_once() {
    let emulator = RunningEmulator::start(EmulatorConfig {
        auto_approve: true,
        ..config()
    })
    .unwrap();
    let info = &emulator.info;
    let started = device_code(info, "User.Read").await;
    let token = poll(info, started.body["device_code"].as_str().unwrap()).await;
    assert_eq!(token.status, StatusCode::OK, "{:?}", token.body);
    assert!(
        token.body.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );
}

#[tokio::test]
async fn resource_owner_password_checks_users_passwords() {
    let emulator = start();
    let info = &emulator.info;
    let admin = admin_token(info).await;
    create_user(info, &admin, "paula", "cGF1bGFwYXVsYXBhdWxh").await;
    let ropc = |username: &str, password: &str| {
        let (username, password) = (username.to_owned(), password.to_owned());
        async move {
            token_request(
                info,
                &info.tenant_id,
                &[
                    ("grant_type", "password"),
                    ("client_id", GRAPH_CLI),
                    ("username", &username),
                    ("password", &password),
                    ("scope", "User.Read offline_access"),
                ],
            )
            .await
        }
    };
    let ok = ropc(&format!("PAULA@{DOMAIN}"), "Initial-Passw0rd!").await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert_eq!(ok.body["scope"], "User.Read");
    assert_sts_error(
        &ropc(&format!("paula@{DOMAIN}"), "wrong").await,
        400,
        "invalid_grant",
        50126,
    );
    assert_sts_error(
        &ropc(&format!("nobody@{DOMAIN}"), "Initial-Passw0rd!").await,
        400,
        "invalid_grant",
        50034,
    );

    // A disabled account cannot sign in; a password that must change has expired.
    let disabled = graph(
        info,
        &admin,
        Method::PATCH,
        &format!("/users/paula@{DOMAIN}"),
        Some(json!({"accountEnabled": false})),
    )
    .await;
    assert_eq!(disabled.status, StatusCode::NO_CONTENT);
    assert_sts_error(
        &ropc(&format!("paula@{DOMAIN}"), "Initial-Passw0rd!").await,
        400,
        "invalid_grant",
        50057,
    );
    let reset = graph(
        info,
        &admin,
        Method::PATCH,
        &format!("/users/paula@{DOMAIN}"),
        Some(json!({"accountEnabled": true, "passwordProfile": {"password": "Changed-Passw0rd!", "forceChangePasswordNextSignIn": true}})),
    )
    .await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT, "{:?}", reset.body);
    assert_sts_error(
        &ropc(&format!("paula@{DOMAIN}"), "Changed-Passw0rd!").await,
        400,
        "invalid_grant",
        50055,
    );

    // Refresh tokens renew the administrator's access.
    let signed_in = ropc(&info.admin_user, &info.admin_password).await;
    let refresh = signed_in.body["refresh_token"].as_str().unwrap();
    let renewed = token_request(
        info,
        &info.tenant_id,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", GRAPH_CLI),
            ("refresh_token", refresh),
        ],
    )
    .await;
    assert_eq!(renewed.status, StatusCode::OK, "{:?}", renewed.body);
    assert!(renewed.body["refresh_token"].is_string());
    let garbage = token_request(
        info,
        &info.tenant_id,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", GRAPH_CLI),
            ("refresh_token", "1.Agarbage"),
        ],
    )
    .await;
    assert_sts_error(&garbage, 400, "invalid_grant", 9002313);
}

#[tokio::test]
async fn a_scope_with_non_ascii_characters_is_an_error_not_a_crash() {
    let emulator = start();
    let info = &emulator.info;
    // 'é' straddles the end of "https://graph.microsoft.com/".
    let started = device_code(info, "https://graph.microsoft.comé/User.Read").await;
    assert_sts_error(&started, 400, "invalid_resource", 500011);
    let ropc = user_token(
        info,
        &info.admin_user,
        &info.admin_password,
        "https://graph.microsoft.comé/User.Read",
    )
    .await;
    assert_sts_error(&ropc, 400, "invalid_resource", 500011);
    // Still serving.
    assert_eq!(device_code(info, "User.Read").await.status, StatusCode::OK);
}

#[tokio::test]
async fn delegated_sign_ins_get_only_consented_scopes() {
    let emulator = start();
    let info = &emulator.info;
    let admin = admin_token(info).await;
    create_user(info, &admin, "consent", "Y29uc2VudGNvbnNlbnRjbw==").await;
    let user = format!("consent@{DOMAIN}");

    // .default: everything for the Global Administrator, User.Read for anyone else.
    let everything = user_token(
        info,
        &info.admin_user,
        &info.admin_password,
        "https://graph.microsoft.com/.default",
    )
    .await;
    let scopes = everything.body["scope"].as_str().unwrap();
    assert!(
        scopes.contains("Directory.ReadWrite.All") && scopes.contains("User.Read"),
        "{scopes}"
    );
    let little = user_token(
        info,
        &user,
        "Initial-Passw0rd!",
        "https://graph.microsoft.com/.default",
    )
    .await;
    assert_eq!(little.status, StatusCode::OK, "{:?}", little.body);
    assert_eq!(little.body["scope"], "User.Read");
    let token = little.body["access_token"].as_str().unwrap();
    let users = graph(info, token, Method::GET, "/users", None).await;
    assert_eq!(users.status, StatusCode::FORBIDDEN);
    let me = graph(info, token, Method::GET, "/me", None).await;
    assert_eq!(me.status, StatusCode::OK, "{:?}", me.body);
    assert_eq!(me.body["userPrincipalName"], json!(user));

    // Scopes that need an administrator's consent: AADSTS65001 for a user.
    let refused = user_token(info, &user, "Initial-Passw0rd!", "User.Read.All").await;
    assert_sts_error(&refused, 400, "invalid_grant", 65001);
    // The same through the device code flow, once the user has signed in.
    let started = device_code(info, "Directory.Read.All").await;
    let approved = hook(
        info,
        Method::POST,
        "device-codes/approve",
        Some(json!({"user_code": started.body["user_code"], "user": user})),
    )
    .await;
    assert_eq!(approved.status, StatusCode::NO_CONTENT);
    let polled = poll(info, started.body["device_code"].as_str().unwrap()).await;
    assert_sts_error(&polled, 400, "invalid_grant", 65001);

    // GET /me needs User.Read or more.
    let groups_only = user_token(
        info,
        &info.admin_user,
        &info.admin_password,
        "Group.Read.All",
    )
    .await;
    assert_eq!(groups_only.body["scope"], "Group.Read.All");
    let me = graph(
        info,
        groups_only.body["access_token"].as_str().unwrap(),
        Method::GET,
        "/me",
        None,
    )
    .await;
    assert_eq!(me.status, StatusCode::FORBIDDEN);
    assert_eq!(me.error_code(), "Authorization_RequestDenied");
}

#[tokio::test]
async fn the_password_grant_is_refused_on_common() {
    let emulator = start();
    let info = &emulator.info;
    let form = [
        ("grant_type", "password"),
        ("client_id", GRAPH_CLI),
        ("username", info.admin_user.as_str()),
        ("password", info.admin_password.as_str()),
        ("scope", "User.Read"),
    ];
    assert_sts_error(
        &token_request(info, "common", &form).await,
        400,
        "invalid_request",
        9001023,
    );
    let organizations = token_request(info, "organizations", &form).await;
    assert_eq!(
        organizations.status,
        StatusCode::OK,
        "{:?}",
        organizations.body
    );
}

#[tokio::test]
async fn new_apps_secrets_and_grants_wait_for_replication() {
    let emulator = RunningEmulator::start(EmulatorConfig {
        faults: tenant_emulator::FaultSettings {
            replication_delay_secs: 2,
            ..Default::default()
        },
        ..config()
    })
    .unwrap();
    let info = &emulator.info;
    let admin = admin_token(info).await;
    let (app_id, secret) = app_with_roles(info, &admin, "replicating", &["Domain.Read.All"]).await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", app_id.as_str()),
        ("client_secret", secret.as_str()),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    // The new application is not known yet.
    let unknown = token_request(info, &info.tenant_id, &form).await;
    assert_sts_error(&unknown, 400, "unauthorized_client", 700016);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let token = token_request(info, &info.tenant_id, &form).await;
    assert_eq!(token.status, StatusCode::OK, "{:?}", token.body);
    let domains = graph(
        info,
        token.body["access_token"].as_str().unwrap(),
        Method::GET,
        "/domains",
        None,
    )
    .await;
    assert_eq!(domains.status, StatusCode::OK);

    // A new secret is not known yet; a new grant is not in the tokens issued meanwhile.
    let object_id = graph(
        info,
        &admin,
        Method::GET,
        &format!("/applications(appId='{app_id}')"),
        None,
    )
    .await
    .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let added = graph(
        info,
        &admin,
        Method::POST,
        &format!("/applications/{object_id}/addPassword"),
        Some(json!({"passwordCredential": {"displayName": "second"}})),
    )
    .await;
    let second = added.body["secretText"].as_str().unwrap().to_owned();
    let graph_sp = graph_service_principal(info, &admin).await;
    let sp = graph(
        info,
        &admin,
        Method::GET,
        &format!("/servicePrincipals(appId='{app_id}')"),
        None,
    )
    .await;
    let granted = graph(
        info,
        &admin,
        Method::POST,
        &format!("/servicePrincipals/{}/appRoleAssignedTo", graph_sp["id"].as_str().unwrap()),
        Some(json!({"principalId": sp.body["id"], "resourceId": graph_sp["id"], "appRoleId": "df021288-bdef-4463-88db-98f22de89214"})),
    )
    .await;
    assert_eq!(granted.status, StatusCode::CREATED, "{:?}", granted.body);
    let with_second = [
        ("grant_type", "client_credentials"),
        ("client_id", app_id.as_str()),
        ("client_secret", second.as_str()),
        ("scope", "https://graph.microsoft.com/.default"),
    ];
    let early = token_request(info, &info.tenant_id, &with_second).await;
    assert_sts_error(&early, 401, "invalid_client", 7000215);
    let meanwhile = app_token_for(info, &app_id, &secret).await;
    let users = graph(info, &meanwhile, Method::GET, "/users", None).await;
    assert_eq!(
        users.status,
        StatusCode::FORBIDDEN,
        "User.Read.All is not in it yet"
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let later = token_request(info, &info.tenant_id, &with_second).await;
    assert_eq!(later.status, StatusCode::OK, "{:?}", later.body);
    let users = graph(
        info,
        later.body["access_token"].as_str().unwrap(),
        Method::GET,
        "/users",
        None,
    )
    .await;
    assert_eq!(users.status, StatusCode::OK, "{:?}", users.body);
}
