//! Helpers shared by the emulator's HTTP tests: start an emulator on a free loopback port and
//! talk to it with reqwest, as a client would.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_emulator::{EmulatorConfig, ReadyInfo, RunningEmulator};

pub const GRAPH_CLI: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";
pub const DOMAIN: &str = "corp.dirsync.test";

pub fn config() -> EmulatorConfig {
    EmulatorConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        verified_domains: vec![DOMAIN.to_owned()],
        device_code_interval_secs: 1,
        ..EmulatorConfig::default()
    }
}

pub fn start() -> RunningEmulator {
    RunningEmulator::start(config()).expect("the emulator starts")
}

pub fn client() -> reqwest::Client {
    // reqwest (rustls-no-provider) wants a process-wide crypto provider even for plain HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A response: status, headers, JSON body (Null when empty).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    pub fn error_message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))
    };
    Answer {
        status,
        headers,
        body,
    }
}

/// `POST {authority}/{tenant}/oauth2/v2.0/token` with a form.
pub async fn token_request(info: &ReadyInfo, tenant: &str, form: &[(&str, &str)]) -> Answer {
    let response = client()
        .post(format!("{}/{tenant}/oauth2/v2.0/token", info.authority))
        .form(form)
        .send()
        .await
        .unwrap();
    answer(response).await
}

/// A client-credentials token for an app.
pub async fn app_token_for(info: &ReadyInfo, client_id: &str, secret: &str) -> String {
    let answer = token_request(
        info,
        &info.tenant_id,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    answer.body["access_token"].as_str().unwrap().to_owned()
}

/// The pre-registered sync app's token.
pub async fn app_token(info: &ReadyInfo) -> String {
    app_token_for(info, &info.client_id, &info.client_secret).await
}

/// The Global Administrator's delegated token (resource owner password, Graph CLI client).
pub async fn admin_token(info: &ReadyInfo) -> String {
    let answer = token_request(
        info,
        &info.tenant_id,
        &[
            ("grant_type", "password"),
            ("client_id", GRAPH_CLI),
            ("username", &info.admin_user),
            ("password", &info.admin_password),
            (
                "scope",
                "https://graph.microsoft.com/.default offline_access",
            ),
        ],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    answer.body["access_token"].as_str().unwrap().to_owned()
}

/// Calls Graph: `path` is after `/v1.0` (with its query string).
pub async fn graph(
    info: &ReadyInfo,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Answer {
    graph_with(info, token, method, path, body, &[]).await
}

pub async fn graph_with(
    info: &ReadyInfo,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut request = client()
        .request(method, format!("{}/v1.0{path}", info.graph))
        .bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request.send().await.unwrap()).await
}

/// A test hook under `/_emulator`.
pub async fn hook(info: &ReadyInfo, method: Method, path: &str, body: Option<Value>) -> Answer {
    let mut request = client().request(method, format!("{}/_emulator/{path}", info.graph));
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request.send().await.unwrap()).await
}

/// A user body Graph accepts.
pub fn new_user(name: &str, anchor: &str) -> Value {
    json!({
        "accountEnabled": true,
        "displayName": format!("User {name}"),
        "mailNickname": name,
        "userPrincipalName": format!("{name}@{DOMAIN}"),
        "mail": format!("{name}@{DOMAIN}"),
        "onPremisesImmutableId": anchor,
        "passwordProfile": {"password": "Initial-Passw0rd!", "forceChangePasswordNextSignIn": false},
    })
}

pub async fn create_user(info: &ReadyInfo, token: &str, name: &str, anchor: &str) -> Value {
    let created = graph(
        info,
        token,
        Method::POST,
        "/users",
        Some(new_user(name, anchor)),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body
}

pub fn security_group(name: &str) -> Value {
    json!({"displayName": format!("Group {name}"), "mailEnabled": false, "mailNickname": name, "securityEnabled": true})
}

/// Microsoft Graph's service principal (object ID) as the administrator sees it.
pub async fn graph_service_principal(info: &ReadyInfo, admin: &str) -> Value {
    let found = graph(
        info,
        admin,
        Method::GET,
        "/servicePrincipals?$filter=appId%20eq%20'00000003-0000-0000-c000-000000000000'",
        None,
    )
    .await;
    assert_eq!(found.status, StatusCode::OK, "{:?}", found.body);
    found.body["value"][0].clone()
}

/// Registers an app (application, secret, service principal) and grants it these Microsoft
/// Graph application permissions; returns (appId, secret).
pub async fn app_with_roles(
    info: &ReadyInfo,
    admin: &str,
    name: &str,
    roles: &[&str],
) -> (String, String) {
    let app = graph(
        info,
        admin,
        Method::POST,
        "/applications",
        Some(json!({"displayName": name})),
    )
    .await;
    assert_eq!(app.status, StatusCode::CREATED, "{:?}", app.body);
    let app_id = app.body["appId"].as_str().unwrap().to_owned();
    let object_id = app.body["id"].as_str().unwrap();
    let secret = graph(
        info,
        admin,
        Method::POST,
        &format!("/applications/{object_id}/addPassword"),
        Some(json!({"passwordCredential": {"displayName": name}})),
    )
    .await;
    assert_eq!(secret.status, StatusCode::OK, "{:?}", secret.body);
    let secret = secret.body["secretText"].as_str().unwrap().to_owned();
    let sp = graph(
        info,
        admin,
        Method::POST,
        "/servicePrincipals",
        Some(json!({"appId": app_id})),
    )
    .await;
    assert_eq!(sp.status, StatusCode::CREATED, "{:?}", sp.body);
    let sp_id = sp.body["id"].as_str().unwrap();
    let graph_sp = graph_service_principal(info, admin).await;
    let graph_sp_id = graph_sp["id"].as_str().unwrap();
    for role in roles {
        let role_id = graph_sp["appRoles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["value"] == json!(role))
            .unwrap_or_else(|| panic!("Graph has no app role {role}"))["id"]
            .clone();
        let assigned = graph(
            info,
            admin,
            Method::POST,
            &format!("/servicePrincipals/{graph_sp_id}/appRoleAssignedTo"),
            Some(json!({"principalId": sp_id, "resourceId": graph_sp_id, "appRoleId": role_id})),
        )
        .await;
        assert_eq!(assigned.status, StatusCode::CREATED, "{:?}", assigned.body);
    }
    (app_id, secret)
}

/// A delegated token by the resource owner password grant (Graph CLI client).
pub async fn user_token(info: &ReadyInfo, username: &str, password: &str, scope: &str) -> Answer {
    token_request(
        info,
        &info.tenant_id,
        &[
            ("grant_type", "password"),
            ("client_id", GRAPH_CLI),
            ("username", username),
            ("password", password),
            ("scope", scope),
        ],
    )
    .await
}

/// The `tenant-emulator` binary, stopped however the test ends.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the binary on a free port with `flags`; returns it and the JSON line it prints when ready.
pub fn spawn_binary(flags: &[&str]) -> (Child, ReadyInfo) {
    use std::io::{BufRead as _, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_tenant-emulator"))
            .args(["--listen", "127.0.0.1:0"])
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: ReadyInfo = serde_json::from_str(line.trim()).unwrap();
    (child, info)
}
