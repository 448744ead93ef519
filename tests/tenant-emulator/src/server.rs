//! HTTP: the routes (identity platform, Graph, test hooks) and a connection loop of our own so
//! that an injected fault can close a connection without any response.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, post, put};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower_service::Service as _;

use crate::app::{App, FaultSettings, MAX_WINDOW_SECS, Stats, lock};
use crate::graph::{self, GraphError, GraphRequest, GraphResponse};
use crate::identity::{self, Decision, TokenProblem};
use crate::mailbox;
use crate::password_sync;

type Shared = Arc<App>;

pub fn router(app: Shared) -> Router {
    let mut router = Router::new();
    // Not Graph: an emulator extension (see `password_sync`). When it is off the path is
    // unknown, and the fallback answers it like any other.
    if app.password_hash_endpoint {
        router = router.route("/dirsync/v1/passwordHashes", any(password_hashes));
    }
    // Not Graph either (see `mailbox`); its test hooks below stay when it is off.
    if app.mailbox_endpoint {
        router = router.route("/dirsync/v1/mailboxes/delta", any(mailbox_delta));
    }
    router
        .route("/{tenant}/oauth2/v2.0/token", any(token))
        .route("/{tenant}/oauth2/v2.0/devicecode", any(devicecode))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route(
            "/devicelogin",
            get(device_login_page).post(device_login_submit),
        )
        .route("/_emulator/device-codes/approve", post(hook_approve))
        .route(
            "/_emulator/faults",
            put(hook_faults_set).delete(hook_faults_clear),
        )
        .route("/_emulator/limits", put(hook_limits))
        .route("/_emulator/stats", get(hook_stats).delete(hook_stats_reset))
        .route(
            "/_emulator/mailboxes/{user_id}",
            get(hook_mailbox_get).patch(hook_mailbox_set),
        )
        .route(
            "/_emulator/applications/{app_id}/expire-secrets",
            post(hook_expire_secrets),
        )
        .route("/v1.0", any(graph_entry))
        .route("/v1.0/{*rest}", any(graph_entry))
        .route("/beta", any(graph_entry))
        .route("/beta/{*rest}", any(graph_entry))
        .fallback(not_found)
        .with_state(app)
}

async fn not_found(uri: Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": {"code": "NotFound", "message": format!("No endpoint at {}", uri.path())}})),
    )
        .into_response()
}

fn json_response(status: u16, headers: &[(String, String)], body: Option<&Value>) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            builder = builder.header(name.as_str(), value);
        }
    }
    let body = match body {
        Some(body) => Body::from(serde_json::to_vec(body).unwrap_or_default()),
        None => Body::empty(),
    };
    builder
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn sts_response(app: &App, result: Result<Value, identity::StsError>) -> Response {
    let headers = vec![
        (
            "Content-Type".to_owned(),
            "application/json; charset=utf-8".to_owned(),
        ),
        ("Cache-Control".to_owned(), "no-store, no-cache".to_owned()),
        ("Pragma".to_owned(), "no-cache".to_owned()),
        ("x-ms-request-id".to_owned(), crate::util::new_guid()),
    ];
    match result {
        Ok(body) => json_response(200, &headers, Some(&body)),
        Err(error) => json_response(error.status, &headers, Some(&error.body(&app.base))),
    }
}

fn form(body: &[u8]) -> HashMap<String, String> {
    graph::parse_query(&String::from_utf8_lossy(body))
        .into_iter()
        .collect()
}

fn post_only(app: &App, method: &Method) -> Option<Response> {
    (method != Method::POST).then(|| {
        sts_response(
            app,
            Err(identity::StsError {
                status: 405,
                error: "invalid_request",
                code: 900_561,
                description: format!(
                    "The endpoint only accepts POST requests. Received a {method} request."
                ),
            }),
        )
    })
}

// https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow#get-a-token
// https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-device-code#authenticating-the-user
// https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth-ropc#authorization-request
// https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#refresh-the-access-token
async fn token(
    State(app): State<Shared>,
    Path(tenant): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = post_only(&app, &method) {
        return refused;
    }
    let mut form = form(&body);
    // client_secret_basic: `Authorization: Basic base64(urlencode(id):urlencode(secret))`.
    if let Some((id, secret)) = basic_credentials(&headers) {
        form.entry("client_id".into()).or_insert(id);
        form.entry("client_secret".into()).or_insert(secret);
    }
    let result = identity::token(&app, &tenant, &form);
    sts_response(&app, result)
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine as _;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((
        crate::util::percent_decode(id, true),
        crate::util::percent_decode(secret, true),
    ))
}

// https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-device-code#device-authorization-request
async fn devicecode(
    State(app): State<Shared>,
    Path(tenant): Path<String>,
    method: Method,
    body: Bytes,
) -> Response {
    if let Some(refused) = post_only(&app, &method) {
        return refused;
    }
    let result = identity::devicecode(&app, &tenant, &form(&body));
    sts_response(&app, result)
}

// https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc#find-your-apps-openid-configuration-document-uri
async fn openid_configuration(State(app): State<Shared>, Path(tenant): Path<String>) -> Response {
    let tenant_id = app
        .store
        .read(|state| state.answers_to(&tenant).then(|| state.tenant_id.clone()));
    let Some(tenant_id) = tenant_id else {
        return json_response(
            400,
            &[],
            Some(
                &json!({"error": "invalid_tenant", "error_description": format!("AADSTS90002: Tenant '{tenant}' not found.")}),
            ),
        );
    };
    let base = &app.base;
    json_response(
        200,
        &[],
        Some(&json!({
            "token_endpoint": format!("{base}/{tenant_id}/oauth2/v2.0/token"),
            "device_authorization_endpoint": format!("{base}/{tenant_id}/oauth2/v2.0/devicecode"),
            "authorization_endpoint": format!("{base}/{tenant_id}/oauth2/v2.0/authorize"),
            "issuer": format!("{base}/{tenant_id}/v2.0"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "grant_types_supported": ["client_credentials", "urn:ietf:params:oauth:grant-type:device_code", "password", "refresh_token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "tenant_region_scope": "NA",
            "cloud_instance_name": "emulator.local",
            "msgraph_host": base.trim_start_matches("http://"),
        })),
    )
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

fn unauthorized(app: &App, req: &GraphRequest, problem: TokenProblem) -> Response {
    let message = match problem {
        TokenProblem::Missing => "Access token is empty.",
        TokenProblem::Malformed => {
            "Invalid JWT token. The token is not in JWS or JWE compact serialization format."
        }
        TokenProblem::BadSignature => {
            "Access token validation failure. Invalid audience or signature."
        }
        TokenProblem::Expired => "Lifetime validation failed, the token is expired.",
    };
    let error = GraphError::new(401, "InvalidAuthenticationToken", message);
    let mut headers = graph::standard_headers(req);
    headers.push((
        "WWW-Authenticate".into(),
        format!(
            "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
            app.base
        ),
    ));
    headers.push(("Content-Type".into(), "application/json".into()));
    json_response(401, &headers, Some(&error.body(req)))
}

fn graph_http(req: &GraphRequest, response: GraphResponse) -> Response {
    let mut headers = graph::standard_headers(req);
    headers.extend(response.headers);
    if response.body.is_some()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("Content-Type"))
    {
        headers.push((
            "Content-Type".into(),
            "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8".into(),
        ));
    }
    json_response(response.status, &headers, response.body.as_ref())
}

/// A request to `/v1.0` or `/beta` (`path` after it) or to an extension under `/dirsync`, as Graph's
/// handlers take it, and the caller its bearer token names (else Graph's 401).
fn authenticated(
    app: &App,
    method: &Method,
    path: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(GraphRequest, identity::Caller), Box<Response>> {
    let pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(name, value)| {
            value
                .to_str()
                .ok()
                .map(|v| (name.as_str().to_owned(), v.to_owned()))
        })
        .collect();
    let req = GraphRequest::new(
        method.as_str(),
        path,
        uri.query().unwrap_or_default(),
        &pairs,
        Some(body.to_vec()),
    );
    let token = bearer(headers);
    let claims = app
        .store
        .read(|state| identity::validate(state, token.as_deref()));
    match claims {
        Ok(claims) => Ok((req, identity::caller(&claims))),
        Err(problem) => Err(Box::new(unauthorized(app, &req, problem))),
    }
}

/// Every request under `/v1.0` and `/beta` (where only the organization is served).
async fn graph_entry(
    State(app): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (path, beta) = match uri.path().strip_prefix("/beta") {
        Some(path) => (path, true),
        None => (uri.path().strip_prefix("/v1.0").unwrap_or_default(), false),
    };
    let (mut req, caller) = match authenticated(&app, &method, path, &uri, &headers, &body) {
        Ok(authenticated) => authenticated,
        Err(refused) => return *refused,
    };
    req.beta = beta;
    let is_batch =
        !beta && req.segments.len() == 1 && req.segments[0].eq_ignore_ascii_case("$batch");
    let response = if is_batch {
        if req.method == "POST" {
            graph::batch(&app, &caller, &req)
        } else {
            GraphError::new(
                405,
                "Request_BadRequest",
                "Specified HTTP method is not allowed for the request target.",
            )
            .into_response(&req)
        }
    } else {
        graph::execute(&app, &caller, &req)
    };
    graph_http(&req, response)
}

/// `GET` and `POST /dirsync/v1/passwordHashes`: the password hash sync extension, with Graph's
/// token check, headers and error shapes.
async fn password_hashes(
    State(app): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (req, caller) = match authenticated(&app, &method, uri.path(), &uri, &headers, &body) {
        Ok(authenticated) => authenticated,
        Err(refused) => return *refused,
    };
    let response = password_sync::handle(&app, &caller, &req);
    graph_http(&req, response)
}

/// `GET /dirsync/v1/mailboxes/delta`: the mailbox extension, with Graph's token check, headers
/// and error shapes.
async fn mailbox_delta(
    State(app): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (req, caller) = match authenticated(&app, &method, uri.path(), &uri, &headers, &body) {
        Ok(authenticated) => authenticated,
        Err(refused) => return *refused,
    };
    let response = mailbox::handle(&app, &caller, &req);
    graph_http(&req, response)
}

#[derive(Debug, Deserialize)]
struct ApproveBody {
    user_code: String,
    #[serde(default)]
    decision: Option<String>,
    /// Approve as this user (UPN) instead of the Global Administrator.
    #[serde(default)]
    user: Option<String>,
}

fn hook_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": message}))).into_response()
}

async fn hook_approve(State(app): State<Shared>, body: Bytes) -> Response {
    let body: ApproveBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(error) => {
            return hook_error(StatusCode::BAD_REQUEST, &format!("invalid body: {error}"));
        }
    };
    let decision = match body.decision.as_deref().unwrap_or("approve") {
        "approve" => Decision::Approve,
        "decline" => Decision::Decline,
        "expire" => Decision::Expire,
        other => {
            return hook_error(
                StatusCode::BAD_REQUEST,
                &format!("unknown decision '{other}' (approve, decline, expire)"),
            );
        }
    };
    let user_id = app.store.read(|state| match &body.user {
        Some(upn) => state.user_by_upn(upn).map(|u| u.id().to_owned()),
        None => Some(state.admin_user_id.clone()),
    });
    let Some(user_id) = user_id else {
        return hook_error(StatusCode::NOT_FOUND, "no such user");
    };
    if identity::decide(&app, &body.user_code, decision, &user_id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        hook_error(StatusCode::NOT_FOUND, "no device code has this user code")
    }
}

async fn hook_faults_set(State(app): State<Shared>, body: Bytes) -> Response {
    let settings: FaultSettings = match serde_json::from_slice(&body) {
        Ok(settings) => settings,
        Err(error) => {
            return hook_error(StatusCode::BAD_REQUEST, &format!("invalid body: {error}"));
        }
    };
    match settings.faults(Instant::now()) {
        Ok(faults) => {
            *lock(&app.faults) = faults;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(problem) => hook_error(StatusCode::BAD_REQUEST, &problem),
    }
}

async fn hook_faults_clear(State(app): State<Shared>) -> Response {
    *lock(&app.faults) = crate::app::Faults::default();
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Debug, Deserialize)]
struct LimitsBody {
    writes: u32,
    window_secs: u64,
}

async fn hook_limits(State(app): State<Shared>, body: Bytes) -> Response {
    let limits: LimitsBody = match serde_json::from_slice(&body) {
        Ok(limits) => limits,
        Err(error) => {
            return hook_error(StatusCode::BAD_REQUEST, &format!("invalid body: {error}"));
        }
    };
    if limits.writes == 0 || limits.window_secs == 0 {
        return hook_error(
            StatusCode::BAD_REQUEST,
            "writes and window_secs must be at least 1",
        );
    }
    if limits.window_secs > MAX_WINDOW_SECS {
        return hook_error(
            StatusCode::BAD_REQUEST,
            &format!(
                "window_secs is {}; at most {MAX_WINDOW_SECS} is accepted",
                limits.window_secs
            ),
        );
    }
    lock(&app.limiter).set(limits.writes, Duration::from_secs(limits.window_secs));
    StatusCode::NO_CONTENT.into_response()
}

async fn hook_stats(State(app): State<Shared>) -> Response {
    axum::Json(app.stats.snapshot()).into_response()
}

async fn hook_stats_reset(State(app): State<Shared>) -> Response {
    app.stats.reset();
    StatusCode::NO_CONTENT.into_response()
}

async fn hook_mailbox_get(State(app): State<Shared>, Path(user_id): Path<String>) -> Response {
    match mailbox::get(&app, &user_id) {
        Some(item) => axum::Json(item).into_response(),
        None => hook_error(
            StatusCode::NOT_FOUND,
            &format!("no user has the ID '{user_id}'"),
        ),
    }
}

async fn hook_mailbox_set(
    State(app): State<Shared>,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Response {
    let patch: Value = match serde_json::from_slice(&body) {
        Ok(patch) => patch,
        Err(error) => {
            return hook_error(StatusCode::BAD_REQUEST, &format!("invalid body: {error}"));
        }
    };
    match mailbox::set(&app, &user_id, patch) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error @ mailbox::SetError::NotFound(_)) => {
            hook_error(StatusCode::NOT_FOUND, &error.to_string())
        }
        Err(error @ mailbox::SetError::Invalid(_)) => {
            hook_error(StatusCode::BAD_REQUEST, &error.to_string())
        }
        Err(error @ mailbox::SetError::Store(_)) => {
            hook_error(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string())
        }
    }
}

async fn hook_expire_secrets(State(app): State<Shared>, Path(app_id): Path<String>) -> Response {
    let result = app.store.write(|inner| {
        let id = graph::expire_secrets(&mut inner.state, &app_id);
        if let Some(id) = &id {
            inner.touch(id);
        }
        id
    });
    match result {
        Ok(Some(_)) => StatusCode::NO_CONTENT.into_response(),
        Ok(None) => hook_error(StatusCode::NOT_FOUND, "no application has this appId"),
        Err(error) => hook_error(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    }
}

const DEVICE_LOGIN_FORM: &str = r#"<!doctype html><html><head><title>Sign in to your account</title></head><body>
<h1>Enter code</h1><p>Enter the code displayed on your app or device, then sign in.</p>
<form method="post"><label>Code <input name="user_code" autocomplete="off"></label><br>
<label>Username <input name="username"></label><br><label>Password <input name="password" type="password"></label><br>
<button name="decision" value="approve">Sign in</button> <button name="decision" value="decline">Cancel</button></form></body></html>"#;

async fn device_login_page() -> Html<&'static str> {
    Html(DEVICE_LOGIN_FORM)
}

async fn device_login_submit(State(app): State<Shared>, body: Bytes) -> Response {
    let form = form(&body);
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let user_code = field("user_code");
    if field("decision") == "decline" {
        let found = identity::decide(&app, user_code, Decision::Decline, "");
        return Html(if found {
            "<p>You have declined the sign-in.</p>"
        } else {
            "<p>That code wasn't found.</p>"
        })
        .into_response();
    }
    match identity::check_password(&app, field("username"), field("password")) {
        Ok(user_id) => {
            if identity::decide(&app, user_code, Decision::Approve, &user_id) {
                Html("<p>You have signed in. You may now close this window.</p>").into_response()
            } else {
                (
                    StatusCode::NOT_FOUND,
                    Html("<p>That code wasn't found or has expired.</p>"),
                )
                    .into_response()
            }
        }
        Err(error) => (
            StatusCode::UNAUTHORIZED,
            Html(format!(
                "<p>AADSTS{}: {}</p>",
                error.code, error.description
            )),
        )
            .into_response(),
    }
}

/// Why a connection was closed without an answer (an injected fault).
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for Dropped {}

async fn handle(
    app: Shared,
    mut router: Router,
    request: hyper::Request<Incoming>,
) -> Result<Response, Dropped> {
    let path = request.uri().path();
    let is_graph = ["/v1.0", "/beta"]
        .iter()
        .any(|root| path == *root || path.starts_with(&format!("{root}/")));
    let is_sts = path.contains("/oauth2/");
    let (latency, lose_answer) = {
        let mut faults = lock(&app.faults);
        let mut lose_answer = false;
        if is_graph {
            faults.connections += 1;
            if faults.drop_every > 0 && faults.connections.is_multiple_of(faults.drop_every) {
                drop(faults);
                Stats::bump(&app.stats.dropped);
                return Err(Dropped);
            }
            lose_answer = faults.lose_answer_every > 0
                && faults.connections.is_multiple_of(faults.lose_answer_every);
        }
        (faults.latency_ms, lose_answer)
    };
    if (is_graph || is_sts) && latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let response: Result<Response, Infallible> = router.call(request).await;
    let response = response.unwrap_or_else(|never| match never {});
    if lose_answer {
        // Carried out, then the connection is closed before the answer (a timeout or a reset
        // after Graph applied the request).
        Stats::bump(&app.stats.dropped);
        return Err(Dropped);
    }
    Ok(response)
}

/// Accepts connections until `shutdown` turns true, then lets open ones finish (briefly).
pub async fn serve(listener: TcpListener, app: Shared, mut shutdown: watch::Receiver<bool>) {
    let router = router(app.clone());
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let router = router.clone();
                let mut stop = shutdown.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| handle(app.clone(), router.clone(), request));
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(connection);
                    tokio::select! {
                        _ = connection.as_mut() => {}
                        _ = stop.changed() => {
                            connection.as_mut().graceful_shutdown();
                            let _ = connection.await;
                        }
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
}
