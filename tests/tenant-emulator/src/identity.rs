//! The Microsoft identity platform's OAuth 2.0 v2.0 endpoints: `/token` (client credentials,
//! device code, resource owner password, refresh token) and `/devicecode`, with the
//! platform's error body (`error`, `error_description` "AADSTSnnnn: …", `error_codes`, …).
//!
//! Access tokens are JWT-shaped (header.claims.signature) with the claims Graph reads (`tid`,
//! `appid`, `roles` or `scp`, `exp`), signed with a key of the tenant's so that they survive a
//! restart with a state file. Clients must not parse them, and nothing here relies on them doing so.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::app::{App, DeviceCode, DeviceStatus, lock};
use crate::model::{DirObject, Kind, State};
use crate::tenant::{
    self, AZURE_CLI_APP_ID, AZURE_CLI_PREAUTHORIZED, FIRST_PARTY_PUBLIC_CLIENTS, GRAPH_APP_ID,
    GRAPH_SCOPES, OIDC_SCOPES,
};
use crate::util::{self, b64url, b64url_decode, new_guid, random_string, sts_timestamp, unix_now};

const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub tid: String,
    pub appid: String,
    pub idtyp: String,
    /// The service principal (app tokens) or the user (delegated tokens).
    pub oid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    pub uti: String,
    pub ver: String,
}

/// Who calls Graph, from a validated access token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub client_id: String,
    pub object_id: String,
    pub delegated: bool,
    /// Application roles (app tokens) or scopes (delegated tokens).
    pub permissions: Vec<String>,
}

impl Caller {
    pub fn has(&self, permission: &str) -> bool {
        self.permissions
            .iter()
            .any(|p| p.eq_ignore_ascii_case(permission))
    }
}

/// Why a bearer token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    Missing,
    Malformed,
    BadSignature,
    Expired,
}

/// An error of the token or devicecode endpoint.
#[derive(Debug, Clone)]
pub struct StsError {
    pub status: u16,
    pub error: &'static str,
    pub code: u32,
    pub description: String,
}

impl StsError {
    pub(crate) fn new(
        status: u16,
        error: &'static str,
        code: u32,
        description: impl Into<String>,
    ) -> Self {
        StsError {
            status,
            error,
            code,
            description: description.into(),
        }
    }

    fn missing(name: &str) -> Self {
        StsError::new(
            400,
            "invalid_request",
            900_144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    /// The identity platform's error body.
    pub fn body(&self, base: &str) -> Value {
        let trace_id = new_guid();
        let correlation_id = new_guid();
        let timestamp = sts_timestamp(unix_now());
        json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
                self.code, self.description
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("{base}/error?code={}", self.code),
        })
    }
}

type StsResult = Result<Value, StsError>;

fn sign(state: &State, header_and_claims: &str) -> String {
    b64url(util::digest(&state.signing_key, &[header_and_claims]).as_bytes())
}

fn mint_jwt(state: &State, claims: &Claims) -> String {
    let header = b64url(br#"{"typ":"JWT","alg":"HS256","kid":"tenant-emulator"}"#);
    let body = b64url(serde_json::to_string(claims).unwrap_or_default().as_bytes());
    let signed = format!("{header}.{body}");
    let signature = sign(state, &signed);
    format!("{signed}.{signature}")
}

/// Checks a bearer token and returns its claims.
pub fn validate(state: &State, token: Option<&str>) -> Result<Claims, TokenProblem> {
    let token = token
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(TokenProblem::Missing)?;
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(TokenProblem::Malformed);
    }
    let claims: Claims = b64url_decode(parts[1])
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(TokenProblem::Malformed)?;
    if sign(state, &format!("{}.{}", parts[0], parts[1])) != parts[2]
        || !claims.tid.eq_ignore_ascii_case(&state.tenant_id)
    {
        return Err(TokenProblem::BadSignature);
    }
    if unix_now() >= claims.exp {
        return Err(TokenProblem::Expired);
    }
    Ok(claims)
}

pub fn caller(claims: &Claims) -> Caller {
    let delegated = claims.idtyp == "user";
    let permissions = if delegated {
        claims
            .scp
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    } else {
        claims.roles.clone()
    };
    Caller {
        client_id: claims.appid.clone(),
        object_id: claims.oid.clone(),
        delegated,
        permissions,
    }
}

/// The refresh token's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RefreshClaims {
    tid: String,
    appid: String,
    oid: String,
    scopes: Vec<String>,
    iat: i64,
    nonce: String,
}

fn mint_refresh(state: &State, claims: &RefreshClaims) -> String {
    let body = b64url(serde_json::to_string(claims).unwrap_or_default().as_bytes());
    let signature = sign(state, &body);
    format!("1.A{body}.{signature}")
}

fn read_refresh(state: &State, token: &str) -> Option<RefreshClaims> {
    let token = token.strip_prefix("1.A")?;
    let (body, signature) = token.rsplit_once('.')?;
    if sign(state, body) != signature {
        return None;
    }
    let claims: RefreshClaims = serde_json::from_slice(&b64url_decode(body)?).ok()?;
    claims
        .tid
        .eq_ignore_ascii_case(&state.tenant_id)
        .then_some(claims)
}

/// How a client authenticates.
enum Client {
    /// A public client: no secret.
    Public,
    /// A confidential client registered in the tenant.
    Confidential {
        app: Box<DirObject>,
        service_principal: Option<Box<DirObject>>,
    },
}

/// The client a token request names. With the `replication_delay_secs` fault, an application
/// made less than that ago is not known here yet (AADSTS700016, as while Entra replicates it).
fn find_client(app: &App, state: &State, client_id: &str) -> Result<Client, StsError> {
    if FIRST_PARTY_PUBLIC_CLIENTS
        .iter()
        .any(|(id, _)| id.eq_ignore_ascii_case(client_id))
    {
        return Ok(Client::Public);
    }
    let delay = app.replication_delay();
    match state
        .application_by_app_id(client_id)
        .filter(|registered| !app.younger_than(registered.id(), delay))
    {
        Some(app) => Ok(Client::Confidential {
            app: Box::new(app.clone()),
            service_principal: state
                .service_principal_by_app_id(client_id)
                .map(|sp| Box::new(sp.clone())),
        }),
        None => {
            let directory = state
                .organization
                .get("displayName")
                .and_then(Value::as_str)
                .unwrap_or("the directory");
            Err(StsError::new(
                400,
                "unauthorized_client",
                700_016,
                format!(
                    "Application with identifier '{client_id}' was not found in the directory '{directory}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
                ),
            ))
        }
    }
}

/// How a client proves itself: a secret, or a certificate's signed assertion.
#[derive(Debug, Clone, Copy)]
enum ClientProof<'a> {
    None,
    Secret(&'a str),
    Assertion {
        assertion: &'a str,
        /// The token endpoint the request came to, for the assertion's audience.
        audiences: [&'a str; 2],
    },
}

/// The JWT bearer assertion type of the certificate credentials page.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Checks the client secret or certificate assertion of a confidential client (or that a
/// public client sends none). With the `replication_delay_secs` fault, a secret or certificate
/// added less than that ago is not known yet (AADSTS7000215, AADSTS700027).
fn authenticate_client(
    app: &App,
    client: &Client,
    proof: ClientProof<'_>,
    delegated_flow: bool,
) -> Result<(), StsError> {
    let secret = match proof {
        ClientProof::Secret(secret) => Some(secret),
        _ => None,
    };
    match client {
        Client::Public => {
            if !matches!(proof, ClientProof::None) {
                return Err(StsError::new(
                    401,
                    "invalid_client",
                    700_025,
                    "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
                ));
            }
            Ok(())
        }
        Client::Confidential {
            app: registered, ..
        } => {
            let app_id = registered.str_prop("appId").unwrap_or_default();
            if let ClientProof::Assertion {
                assertion,
                audiences,
            } = proof
            {
                return crate::client_assertion::verify(app, registered, assertion, &audiences);
            }
            let Some(secret) = secret else {
                // A registered app may allow public client flows for delegated sign-in.
                if delegated_flow && registered.bool_prop("isFallbackPublicClient") == Some(true) {
                    return Ok(());
                }
                return Err(StsError::new(
                    401,
                    "invalid_client",
                    7_000_218,
                    "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                ));
            };
            let now = unix_now();
            let delay = app.replication_delay();
            let matching: Vec<_> = registered
                .internal
                .secrets
                .iter()
                .filter(|stored| !app.younger_than(&stored.key_id, delay))
                .filter(|stored| tenant::unseal_matches(&stored.salt, &stored.hash, secret))
                .collect();
            if matching.is_empty() {
                return Err(StsError::new(
                    401,
                    "invalid_client",
                    7_000_215,
                    format!(
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{app_id}'."
                    ),
                ));
            }
            if matching.iter().all(|stored| stored.end <= now) {
                return Err(StsError::new(
                    401,
                    "invalid_client",
                    7_000_222,
                    format!(
                        "The provided client secret keys for app '{app_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds"
                    ),
                ));
            }
            Ok(())
        }
    }
}

fn tenant_not_found(tenant: &str) -> StsError {
    StsError::new(
        400,
        "invalid_request",
        90_002,
        format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
        ),
    )
}

/// Which endpoints a grant may use instead of the tenant's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aliases {
    /// Client credentials: the tenant only.
    None,
    /// Resource owner password: also `organizations`; not `common` (the ROPC page: "use a
    /// tenant-specific endpoint or the /organizations endpoint").
    Organizations,
    /// Device code, refresh token: also `common` and `organizations`.
    CommonAndOrganizations,
}

/// Checks the `{tenant}` path segment.
fn check_tenant(state: &State, tenant: &str, aliases: Aliases) -> Result<(), StsError> {
    if state.answers_to(tenant) {
        return Ok(());
    }
    let common = tenant.eq_ignore_ascii_case("common");
    let organizations = tenant.eq_ignore_ascii_case("organizations");
    let allowed = match aliases {
        Aliases::None => false,
        Aliases::Organizations => organizations,
        Aliases::CommonAndOrganizations => common || organizations,
    };
    if allowed {
        return Ok(());
    }
    if common || organizations {
        return Err(StsError::new(
            400,
            "invalid_request",
            9_001_023,
            "The grant type isn't supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.",
        ));
    }
    Err(tenant_not_found(tenant))
}

/// A delegated `scope` parameter: Graph scopes asked for by name (short names, canonical
/// case), whether `.default` was asked for, and OpenID Connect scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Requested {
    graph: Vec<String>,
    default: bool,
    oidc: Vec<String>,
}

fn parse_delegated_scopes(state: &State, scope: &str) -> Result<Requested, StsError> {
    let mut graph = Vec::new();
    let mut default = false;
    let mut oidc = Vec::new();
    for item in scope.split_whitespace() {
        if let Some(oidc_scope) = OIDC_SCOPES.iter().find(|s| s.eq_ignore_ascii_case(item)) {
            oidc.push((*oidc_scope).to_owned());
            continue;
        }
        let short = strip_graph_prefix(item).ok_or_else(|| resource_not_found(state, item))?;
        if short.eq_ignore_ascii_case(".default") {
            default = true;
            continue;
        }
        match GRAPH_SCOPES.iter().find(|s| s.eq_ignore_ascii_case(short)) {
            Some(known) => graph.push((*known).to_owned()),
            None => {
                return Err(invalid_scope(item));
            }
        }
    }
    graph.sort();
    graph.dedup();
    oidc.sort();
    oidc.dedup();
    Ok(Requested {
        graph,
        default,
        oidc,
    })
}

/// Delegated scopes a user may consent to alone; every other Graph scope the emulator knows
/// needs an administrator's consent (the permissions reference's "Admin consent required").
const USER_CONSENTABLE: &[&str] = &["User.Read", "User.ReadWrite", "User.ReadBasic.All"];

/// What a user who is not an administrator has consented to for a client: User.Read.
const USER_CONSENTED: &[&str] = &["User.Read"];

/// The scopes a sign-in gets: those asked for by name, if the user may consent to them, and
/// for `.default` those consented to before. The Global Administrator counts as having
/// consented to every Graph scope for every client; another user, to User.Read, and may
/// consent to the scopes no administrator needs to (else AADSTS65001). Azure CLI is
/// pre-authorized by Microsoft for its scopes for every user ([`AZURE_CLI_PREAUTHORIZED`]).
fn grant(
    state: &State,
    client_id: &str,
    user: &DirObject,
    requested: &Requested,
) -> Result<Vec<String>, StsError> {
    let admin = user.internal.global_admin;
    let preauthorized: &[&str] = if client_id.eq_ignore_ascii_case(AZURE_CLI_APP_ID) {
        AZURE_CLI_PREAUTHORIZED
    } else {
        &[]
    };
    if !admin
        && requested.graph.iter().any(|s| {
            !USER_CONSENTABLE.contains(&s.as_str()) && !preauthorized.contains(&s.as_str())
        })
    {
        let client_name = FIRST_PARTY_PUBLIC_CLIENTS
            .iter()
            .find(|(id, _)| id.eq_ignore_ascii_case(client_id))
            .map(|(_, name)| (*name).to_owned())
            .or_else(|| {
                state
                    .application_by_app_id(client_id)
                    .and_then(|a| a.str_prop("displayName"))
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        return Err(StsError::new(
            400,
            "invalid_grant",
            65_001,
            format!(
                "The user or administrator has not consented to use the application with ID '{client_id}' named '{client_name}'. Send an interactive authorization request for this user and resource."
            ),
        ));
    }
    let mut scopes = requested.graph.clone();
    if requested.default {
        let consented = if admin { GRAPH_SCOPES } else { USER_CONSENTED };
        scopes.extend(consented.iter().map(|s| (*s).to_owned()));
        if !admin {
            scopes.extend(preauthorized.iter().map(|s| (*s).to_owned()));
        }
    }
    if scopes.is_empty() {
        // Only OpenID Connect scopes: the access token is for Graph's User.Read.
        scopes.push("User.Read".to_owned());
    }
    scopes.sort();
    scopes.dedup();
    Ok(scopes)
}

/// `https://graph.microsoft.com/User.Read`, `00000003-…/User.Read` or `User.Read` → `User.Read`.
fn strip_graph_prefix(item: &str) -> Option<&str> {
    for prefix in [
        "https://graph.microsoft.com/",
        "https://graph.microsoft.com//",
        "00000003-0000-0000-c000-000000000000/",
    ] {
        // `get` rather than indexing: the scope is request data and may hold any characters.
        if item
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
            && let Some(rest) = item.get(prefix.len()..).filter(|rest| !rest.is_empty())
        {
            return Some(rest);
        }
    }
    if item.contains("://") || item.contains('/') {
        return None;
    }
    Some(item)
}

/// AADSTS70011 for a scope Graph does not have (the client credentials page's example).
fn invalid_scope(item: &str) -> StsError {
    StsError::new(
        400,
        "invalid_scope",
        70_011,
        format!(
            "The provided value for the input parameter 'scope' is not valid. The scope {item} is not valid."
        ),
    )
}

fn resource_not_found(state: &State, item: &str) -> StsError {
    let resource = item.rsplit_once('/').map_or(item, |(resource, _)| resource);
    StsError::new(
        400,
        "invalid_resource",
        500_011,
        format!(
            "The resource principal named {resource} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
            state
                .organization
                .get("displayName")
                .and_then(Value::as_str)
                .unwrap_or_default()
        ),
    )
}

fn access_token_claims(
    app: &App,
    state: &State,
    client_id: &str,
    oid: &str,
    delegated: Option<(&[String], &str)>,
    roles: Vec<String>,
) -> Claims {
    let now = unix_now();
    let lifetime = i64::try_from(app.token_lifetime.as_secs())
        .unwrap_or(3599)
        .max(1);
    Claims {
        aud: GRAPH_RESOURCE.to_owned(),
        iss: format!("https://sts.windows.net/{}/", state.tenant_id),
        iat: now,
        nbf: now,
        exp: now + lifetime,
        tid: state.tenant_id.clone(),
        appid: client_id.to_owned(),
        idtyp: if delegated.is_some() { "user" } else { "app" }.to_owned(),
        oid: oid.to_owned(),
        roles,
        scp: delegated.map(|(scopes, _)| scopes.join(" ")),
        upn: delegated.map(|(_, upn)| upn.to_owned()),
        uti: random_string(22, util::ALNUM),
        ver: "1.0".to_owned(),
    }
}

/// The token response once a user has signed in: the scopes granted to `requested`.
fn signed_in(
    app: &App,
    state: &State,
    client_id: &str,
    user: &DirObject,
    requested: &Requested,
) -> StsResult {
    let scopes = grant(state, client_id, user, requested)?;
    Ok(delegated_response(
        app,
        state,
        client_id,
        user,
        &scopes,
        &requested.oidc,
    ))
}

/// A token response for a signed-in user.
fn delegated_response(
    app: &App,
    state: &State,
    client_id: &str,
    user: &DirObject,
    scopes: &[String],
    oidc: &[String],
) -> Value {
    let upn = user.str_prop("userPrincipalName").unwrap_or_default();
    let claims = access_token_claims(
        app,
        state,
        client_id,
        user.id(),
        Some((scopes, upn)),
        Vec::new(),
    );
    let expires_in = claims.exp - claims.iat;
    let mut granted: Vec<String> = scopes.to_vec();
    granted.extend(oidc.iter().filter(|s| *s != "offline_access").cloned());
    let mut body = json!({
        "token_type": "Bearer",
        "scope": granted.join(" "),
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": mint_jwt(state, &claims),
    });
    if oidc.iter().any(|s| s == "offline_access") {
        let refresh = RefreshClaims {
            tid: state.tenant_id.clone(),
            appid: client_id.to_owned(),
            oid: user.id().to_owned(),
            scopes: scopes.iter().chain(oidc.iter()).cloned().collect(),
            iat: claims.iat,
            nonce: random_string(16, util::ALNUM),
        };
        body["refresh_token"] = json!(mint_refresh(state, &refresh));
    }
    if oidc.iter().any(|s| s == "openid") {
        let id_claims = json!({
            "aud": client_id,
            "iss": format!("{}/{}/v2.0", app.base, state.tenant_id),
            "iat": claims.iat,
            "nbf": claims.iat,
            "exp": claims.exp,
            "name": user.props.get("displayName"),
            "oid": user.id(),
            "preferred_username": upn,
            "sub": util::digest(&state.tenant_id, &[client_id, user.id()]),
            "tid": state.tenant_id,
            "ver": "2.0",
        });
        let header = b64url(br#"{"typ":"JWT","alg":"none"}"#);
        body["id_token"] = json!(format!(
            "{header}.{}.",
            b64url(id_claims.to_string().as_bytes())
        ));
    }
    body
}

/// Checks that a user may sign in with this password (resource owner password credentials).
fn sign_in_user<'a>(
    state: &'a State,
    username: &str,
    password: &str,
) -> Result<&'a DirObject, StsError> {
    let Some(user) = state.user_by_upn(username) else {
        return Err(StsError::new(
            400,
            "invalid_grant",
            50_034,
            format!(
                "The user account {{EUII Hidden}} does not exist in the {} directory. To sign into this application, the account must be added to the directory.",
                state.tenant_id
            ),
        ));
    };
    let matches = match (
        &user.internal.synced_password_credential,
        &user.internal.password_salt,
        &user.internal.password_hash,
    ) {
        // Password hash sync: the on-premises password, and only it, signs in.
        (Some(credential), _, _) => crate::password_sync::verify(credential, password),
        (None, Some(salt), Some(hash)) => tenant::unseal_matches(salt, hash, password),
        _ => false,
    };
    if !matches {
        return Err(StsError::new(
            400,
            "invalid_grant",
            50_126,
            "Error validating credentials due to invalid username or password.",
        ));
    }
    check_user_can_sign_in(user)?;
    if user.internal.force_change_password {
        return Err(StsError::new(
            400,
            "invalid_grant",
            50_055,
            "The password is expired.",
        ));
    }
    Ok(user)
}

fn check_user_can_sign_in(user: &DirObject) -> Result<(), StsError> {
    if user.bool_prop("accountEnabled") == Some(false) {
        return Err(StsError::new(
            400,
            "invalid_grant",
            50_057,
            "The user account is disabled.",
        ));
    }
    Ok(())
}

// https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow
// https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-device-code
// https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth-ropc
// https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#refresh-the-access-token
// https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
/// `POST /{tenant}/oauth2/v2.0/token`
pub fn token(app: &App, tenant: &str, form: &HashMap<String, String>) -> StsResult {
    app.store.read(|state| token_with(app, state, tenant, form))
}

fn token_with(app: &App, state: &State, tenant: &str, form: &HashMap<String, String>) -> StsResult {
    let param = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let grant_type = param("grant_type").ok_or_else(|| StsError::missing("grant_type"))?;
    let aliases = match grant_type {
        "client_credentials" => Aliases::None,
        "password" => Aliases::Organizations,
        _ => Aliases::CommonAndOrganizations,
    };
    check_tenant(state, tenant, aliases)?;
    let client_id = param("client_id").ok_or_else(|| StsError::missing("client_id"))?;
    let client = find_client(app, state, client_id)?;
    let by_id = format!("{}/{}/oauth2/v2.0/token", app.base, state.tenant_id);
    let as_asked = format!("{}/{tenant}/oauth2/v2.0/token", app.base);
    let secret = match (param("client_secret"), param("client_assertion")) {
        (Some(_), Some(_)) => {
            return Err(StsError::new(
                400,
                "invalid_request",
                90_014,
                "Both 'client_assertion' and 'client_secret' were presented; send one.",
            ));
        }
        (Some(secret), None) => ClientProof::Secret(secret),
        (None, Some(assertion)) => {
            if param("client_assertion_type") != Some(JWT_BEARER) {
                return Err(StsError::new(
                    400,
                    "invalid_request",
                    90_014,
                    format!(
                        "The request body must contain the following parameter: 'client_assertion_type' ({JWT_BEARER})."
                    ),
                ));
            }
            ClientProof::Assertion {
                assertion,
                audiences: [by_id.as_str(), as_asked.as_str()],
            }
        }
        (None, None) => ClientProof::None,
    };
    match grant_type {
        "client_credentials" => {
            client_credentials(app, state, &client, client_id, secret, param("scope"))
        }
        "urn:ietf:params:oauth:grant-type:device_code" => {
            authenticate_client(app, &client, secret, true)?;
            let device_code =
                param("device_code").ok_or_else(|| StsError::missing("device_code"))?;
            redeem_device_code(app, state, client_id, device_code)
        }
        "password" => {
            authenticate_client(app, &client, secret, true)?;
            let scope = param("scope").ok_or_else(|| StsError::missing("scope"))?;
            let username = param("username").ok_or_else(|| StsError::missing("username"))?;
            let password = param("password").ok_or_else(|| StsError::missing("password"))?;
            let requested = parse_delegated_scopes(state, scope)?;
            let user = sign_in_user(state, username, password)?;
            signed_in(app, state, client_id, user, &requested)
        }
        "refresh_token" => {
            authenticate_client(app, &client, secret, true)?;
            let refresh_token =
                param("refresh_token").ok_or_else(|| StsError::missing("refresh_token"))?;
            let claims = read_refresh(state, refresh_token).ok_or_else(|| {
                StsError::new(
                    400,
                    "invalid_grant",
                    9_002_313,
                    "Invalid request. Request is malformed or invalid.",
                )
            })?;
            if !claims.appid.eq_ignore_ascii_case(client_id) {
                return Err(StsError::new(
                    400,
                    "invalid_grant",
                    70_000,
                    "The provided value for the input parameter 'refresh_token' or 'assertion' is not valid.",
                ));
            }
            let user = state.live_of(Kind::User, &claims.oid).ok_or_else(|| {
                StsError::new(
                    400,
                    "invalid_grant",
                    50_034,
                    format!(
                        "The user account {{EUII Hidden}} does not exist in the {} directory. To sign into this application, the account must be added to the directory.",
                        state.tenant_id
                    ),
                )
            })?;
            check_user_can_sign_in(user)?;
            let requested = match param("scope") {
                Some(scope) => parse_delegated_scopes(state, &format!("{scope} offline_access"))?,
                None => parse_delegated_scopes(state, &claims.scopes.join(" "))?,
            };
            signed_in(app, state, client_id, user, &requested)
        }
        other => Err(StsError::new(
            400,
            "unsupported_grant_type",
            70_003,
            format!("The app requested an unsupported grant type '{other}'."),
        )),
    }
}

fn client_credentials(
    app: &App,
    state: &State,
    client: &Client,
    client_id: &str,
    secret: ClientProof<'_>,
    scope: Option<&str>,
) -> StsResult {
    authenticate_client(app, client, secret, false)?;
    let scope = scope.ok_or_else(|| StsError::missing("scope"))?;
    let items: Vec<&str> = scope.split_whitespace().collect();
    let [item] = items.as_slice() else {
        return Err(StsError::new(
            400,
            "invalid_scope",
            1_002_012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ));
    };
    let Some(resource) = item.strip_suffix("/.default") else {
        return Err(StsError::new(
            400,
            "invalid_scope",
            1_002_012,
            format!(
                "The provided value for scope {item} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ));
    };
    let resource = resource.trim_end_matches('/');
    if !(resource.eq_ignore_ascii_case(GRAPH_RESOURCE)
        || resource.eq_ignore_ascii_case(GRAPH_APP_ID))
    {
        // The client credentials page's error example.
        return Err(invalid_scope(item));
    }
    let Client::Confidential {
        service_principal, ..
    } = client
    else {
        return Err(StsError::new(
            401,
            "invalid_client",
            7_000_218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    };
    let Some(sp) = service_principal else {
        return Err(StsError::new(
            400,
            "invalid_client",
            7_000_229,
            format!(
                "The client application {client_id} is missing service principal in the tenant {}.",
                state.tenant_id
            ),
        ));
    };
    // The token carries the app roles assigned to the service principal now (with the
    // `replication_delay_secs` fault, those assigned longer ago than that).
    let graph_sp = state.service_principal_by_app_id(GRAPH_APP_ID);
    let delay = app.replication_delay();
    let mut roles: Vec<String> = state
        .assignments
        .values()
        .filter(|a| a.get("principalId").and_then(Value::as_str) == Some(sp.id()))
        .filter(|a| {
            !a.get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| app.younger_than(id, delay))
        })
        .filter(|a| {
            graph_sp.is_some_and(|g| a.get("resourceId").and_then(Value::as_str) == Some(g.id()))
        })
        .filter_map(|a| a.get("appRoleId").and_then(Value::as_str))
        .filter_map(|role_id| {
            tenant::GRAPH_APP_ROLES
                .iter()
                .find(|(id, _, _, _)| id.eq_ignore_ascii_case(role_id))
                .map(|(_, value, _, _)| (*value).to_owned())
        })
        .collect();
    roles.sort();
    roles.dedup();
    let claims = access_token_claims(app, state, client_id, sp.id(), None, roles);
    let expires_in = claims.exp - claims.iat;
    Ok(json!({
        "token_type": "Bearer",
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": mint_jwt(state, &claims),
    }))
}

fn redeem_device_code(app: &App, state: &State, client_id: &str, device_code: &str) -> StsResult {
    let now = Instant::now();
    let mut codes = lock(&app.device_codes);
    let bad_code = || {
        StsError::new(
            400,
            "bad_verification_code",
            70_018,
            "The provided value for the input parameter 'device_code' is not valid.",
        )
    };
    let entry = codes.get_mut(device_code).ok_or_else(bad_code)?;
    if !entry.client_id.eq_ignore_ascii_case(client_id) {
        return Err(bad_code());
    }
    if now >= entry.expires_at && entry.status == DeviceStatus::Pending {
        entry.status = DeviceStatus::Expired;
    }
    let interval = Duration::from_secs(app.device_code_interval_secs);
    let polled_too_soon = entry
        .last_poll
        .is_some_and(|last| now.duration_since(last) < interval);
    entry.last_poll = Some(now);
    match entry.status.clone() {
        DeviceStatus::Expired => Err(StsError::new(
            400,
            "expired_token",
            70_019,
            "Verification code expired.",
        )),
        DeviceStatus::Declined => Err(StsError::new(
            400,
            "authorization_declined",
            65_004,
            "User declined to consent to access the app.",
        )),
        DeviceStatus::Pending if polled_too_soon => Err(StsError::new(
            400,
            "slow_down",
            70_016,
            format!(
                "OAuth 2.0 device flow error. Authorization is pending. Poll at most every {} seconds.",
                interval.as_secs()
            ),
        )),
        DeviceStatus::Pending => Err(StsError::new(
            400,
            "authorization_pending",
            70_016,
            "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
        )),
        DeviceStatus::Approved { user_id } => {
            let scopes = entry.scopes.clone();
            codes.remove(device_code);
            drop(codes);
            let user = state.live_of(Kind::User, &user_id).ok_or_else(bad_code)?;
            check_user_can_sign_in(user)?;
            let requested = parse_delegated_scopes(state, &scopes.join(" "))?;
            signed_in(app, state, client_id, user, &requested)
        }
    }
}

// https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-device-code#device-authorization-request
/// `POST /{tenant}/oauth2/v2.0/devicecode`
pub fn devicecode(app: &App, tenant: &str, form: &HashMap<String, String>) -> StsResult {
    app.store
        .read(|state| devicecode_with(app, state, tenant, form))
}

fn devicecode_with(
    app: &App,
    state: &State,
    tenant: &str,
    form: &HashMap<String, String>,
) -> StsResult {
    let param = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    check_tenant(state, tenant, Aliases::CommonAndOrganizations)?;
    let client_id = param("client_id").ok_or_else(|| StsError::missing("client_id"))?;
    find_client(app, state, client_id)?;
    let scope = param("scope").ok_or_else(|| StsError::missing("scope"))?;
    // Checked now; granted once a user has signed in (consent depends on who).
    parse_delegated_scopes(state, scope)?;
    let user_code = random_string(9, util::UPPER_ALNUM);
    let device_code = format!("DAQABIQEAAA{}", random_string(120, util::ALNUM));
    let verification_uri = format!("{}/devicelogin", app.base);
    let status = if app.auto_approve {
        DeviceStatus::Approved {
            user_id: state.admin_user_id.clone(),
        }
    } else {
        DeviceStatus::Pending
    };
    lock(&app.device_codes).insert(
        device_code.clone(),
        DeviceCode {
            user_code: user_code.clone(),
            client_id: client_id.to_owned(),
            scopes: scope.split_whitespace().map(str::to_owned).collect(),
            expires_at: Instant::now() + Duration::from_secs(app.device_code_lifetime_secs),
            last_poll: None,
            status,
        },
    );
    Ok(json!({
        "user_code": user_code,
        "device_code": device_code,
        "verification_uri": verification_uri,
        "expires_in": app.device_code_lifetime_secs,
        "interval": app.device_code_interval_secs,
        "message": format!("To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."),
    }))
}

/// What a test (or the sign-in page) decides about a pending device code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Decline,
    Expire,
}

/// Approves (as `user_id`), declines or expires the device code with this user code.
/// Returns false when no pending code has it.
pub fn decide(app: &App, user_code: &str, decision: Decision, user_id: &str) -> bool {
    let wanted: String = user_code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    let mut codes = lock(&app.device_codes);
    let Some(entry) = codes
        .values_mut()
        .find(|entry| entry.user_code.eq_ignore_ascii_case(&wanted))
    else {
        return false;
    };
    entry.status = match decision {
        Decision::Approve => DeviceStatus::Approved {
            user_id: user_id.to_owned(),
        },
        Decision::Decline => DeviceStatus::Declined,
        Decision::Expire => DeviceStatus::Expired,
    };
    true
}

/// The sign-in page's check of a user's password (returns the user's ID).
pub fn check_password(app: &App, username: &str, password: &str) -> Result<String, StsError> {
    app.store
        .read(|state| sign_in_user(state, username, password).map(|user| user.id().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::{NewTenant, create};

    fn state() -> State {
        create(&NewTenant {
            initial_domain: "contoso-lab.onmicrosoft.com".into(),
            verified_domains: vec!["corp.example".into()],
        })
    }

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let state = state();
        let claims = Claims {
            aud: GRAPH_RESOURCE.into(),
            iss: "x".into(),
            iat: unix_now(),
            nbf: unix_now(),
            exp: unix_now() + 60,
            tid: state.tenant_id.clone(),
            appid: "app".into(),
            idtyp: "app".into(),
            oid: "sp".into(),
            roles: vec!["User.Read.All".into()],
            scp: None,
            upn: None,
            uti: "u".into(),
            ver: "1.0".into(),
        };
        let token = mint_jwt(&state, &claims);
        assert_eq!(
            validate(&state, Some(&token)).expect("valid").roles,
            vec!["User.Read.All"]
        );
        assert_eq!(
            validate(&state, None).expect_err("missing"),
            TokenProblem::Missing
        );
        assert_eq!(
            validate(&state, Some("garbage")).expect_err("garbage"),
            TokenProblem::Malformed
        );
        let mut forged = token.clone();
        forged.pop();
        forged.push('x');
        assert_eq!(
            validate(&state, Some(&forged)).expect_err("forged"),
            TokenProblem::BadSignature
        );
        let expired = Claims {
            exp: unix_now() - 1,
            ..claims
        };
        assert_eq!(
            validate(&state, Some(&mint_jwt(&state, &expired))).expect_err("expired"),
            TokenProblem::Expired
        );
    }

    #[test]
    fn delegated_scopes_accept_both_forms_and_refuse_unknown_ones() {
        let state = state();
        let requested = parse_delegated_scopes(
            &state,
            "https://graph.microsoft.com/User.Read.All directory.read.all offline_access",
        )
        .expect("valid");
        assert_eq!(requested.graph, vec!["Directory.Read.All", "User.Read.All"]);
        assert!(!requested.default);
        assert_eq!(requested.oidc, vec!["offline_access"]);
        let error = parse_delegated_scopes(&state, "Files.Fly").expect_err("unknown");
        assert_eq!((error.error, error.code), ("invalid_scope", 70_011));
        let error =
            parse_delegated_scopes(&state, "https://management.azure.com/user_impersonation")
                .expect_err("other resource");
        assert_eq!(error.code, 500_011);
    }

    fn a_user(state: &State, admin: bool) -> DirObject {
        let mut user = state
            .live(&state.admin_user_id)
            .expect("the administrator")
            .clone();
        user.internal.global_admin = admin;
        user
    }

    #[test]
    fn a_synced_password_replaces_the_cloud_password_and_a_disabled_user_is_refused_after_it() {
        let mut state = state();
        let mut user = a_user(&state, false);
        let id = "6d1c4b3a-0000-4000-8000-000000000001";
        user.props.insert("id".into(), json!(id));
        user.props
            .insert("userPrincipalName".into(), json!("synced@corp.example"));
        // The known answer for "password" (see `password_sync`'s tests); the cloud password
        // ("Cloud-Passw0rd!") stays set to show that it no longer counts.
        let (salt, hash) = tenant::seal("Cloud-Passw0rd!");
        user.internal.password_salt = Some(salt);
        user.internal.password_hash = Some(hash);
        user.internal.synced_password_credential = Some(
            "v1;PPH1_MD4,00112233445566778899,1000,9ffb6cdb25b9bf88f869082fcb5bc58a7ec0c5d317b126a8ab4ec316c053cd11;"
                .into(),
        );
        state.objects.insert(id.into(), user);
        let upn = "synced@corp.example";
        assert_eq!(
            sign_in_user(&state, upn, "password")
                .expect("signs in")
                .id(),
            id
        );
        for wrong in ["Password", "Cloud-Passw0rd!"] {
            let error = sign_in_user(&state, upn, wrong).expect_err("wrong password");
            assert_eq!((error.error, error.code), ("invalid_grant", 50_126));
        }
        let user = state.objects.get_mut(id).expect("the user");
        user.props.insert("accountEnabled".into(), json!(false));
        let error = sign_in_user(&state, upn, "password").expect_err("disabled");
        assert_eq!(
            (error.code, error.description.as_str()),
            (50_057, "The user account is disabled.")
        );
        // The password is checked first: a wrong one is still 50126.
        let error = sign_in_user(&state, upn, "Password").expect_err("wrong password");
        assert_eq!(error.code, 50_126);
    }

    #[test]
    fn default_gives_what_was_consented_and_users_cannot_consent_to_admin_scopes() {
        let state = state();
        let cli = tenant::GRAPH_CLI_APP_ID;
        let default =
            parse_delegated_scopes(&state, "https://graph.microsoft.com/.default").expect("valid");
        let admin = grant(&state, cli, &a_user(&state, true), &default).expect("admin");
        assert_eq!(admin.len(), GRAPH_SCOPES.len(), "{admin:?}");
        let user = grant(&state, cli, &a_user(&state, false), &default).expect("user");
        assert_eq!(user, vec!["User.Read"]);

        let own = parse_delegated_scopes(&state, "User.ReadWrite openid").expect("valid");
        assert_eq!(
            grant(&state, cli, &a_user(&state, false), &own).expect("consentable"),
            vec!["User.ReadWrite"]
        );
        let admin_only =
            parse_delegated_scopes(&state, "User.Read Directory.Read.All").expect("valid");
        let error = grant(&state, cli, &a_user(&state, false), &admin_only)
            .expect_err("needs an administrator");
        assert_eq!((error.error, error.code), ("invalid_grant", 65_001));
        assert!(
            error.description.contains(cli)
                && error
                    .description
                    .contains("Microsoft Graph Command Line Tools"),
            "{}",
            error.description
        );
        assert!(grant(&state, cli, &a_user(&state, true), &admin_only).is_ok());
        let oidc_only = parse_delegated_scopes(&state, "openid profile").expect("valid");
        assert_eq!(
            grant(&state, cli, &a_user(&state, false), &oidc_only).expect("sign-in only"),
            vec!["User.Read"]
        );
    }

    #[test]
    fn scopes_with_non_ascii_characters_are_refused_not_a_panic() {
        let state = state();
        // 'é' straddles the end of "https://graph.microsoft.com/" (byte 28).
        let error = parse_delegated_scopes(&state, "https://graph.microsoft.comé/User.Read")
            .expect_err("not Graph");
        assert_eq!(error.code, 500_011);
        let error = parse_delegated_scopes(&state, "00000003-0000-0000-c000-00000000000é/x")
            .expect_err("not Graph");
        assert_eq!(error.code, 500_011);
        let error = parse_delegated_scopes(&state, "Usér.Read").expect_err("unknown");
        assert_eq!(error.code, 70_011);
    }

    #[test]
    fn the_tenant_answers_to_its_id_and_verified_domains_only() {
        let state = state();
        let tenant_id = state.tenant_id.to_uppercase();
        assert!(check_tenant(&state, &tenant_id, Aliases::None).is_ok());
        assert!(check_tenant(&state, "CORP.example", Aliases::None).is_ok());
        assert_eq!(
            check_tenant(&state, "fabrikam.com", Aliases::None)
                .expect_err("unknown")
                .code,
            90_002
        );
        assert_eq!(
            check_tenant(&state, "common", Aliases::None)
                .expect_err("common")
                .code,
            9_001_023
        );
        assert!(check_tenant(&state, "organizations", Aliases::CommonAndOrganizations).is_ok());
        assert!(check_tenant(&state, "common", Aliases::CommonAndOrganizations).is_ok());
        // The resource owner password grant: organizations, not common.
        assert!(check_tenant(&state, "organizations", Aliases::Organizations).is_ok());
        assert_eq!(
            check_tenant(&state, "common", Aliases::Organizations)
                .expect_err("common")
                .code,
            9_001_023
        );
    }
}
