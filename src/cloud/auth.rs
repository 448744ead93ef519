//! Signing in at the Microsoft identity platform (OAuth 2.0, v2.0 endpoints).
//!
//! - The running sync uses the client credentials grant with its own app's secret
//!   (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow).
//! - An administrator signs in during setup with the device code flow: dirsync shows a code and a
//!   URL, the admin signs in anywhere, dirsync polls
//!   (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-device-code).
//! - The resource owner password grant is used only to check that a synced password signs in
//!   (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth-ropc).
//!
//! Tokens are kept in memory as `Secret`s and refreshed before they expire.

use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use super::CloudEndpoints;
use super::error::SignInError;
use crate::secret::Secret;

/// The Microsoft Graph resource, for `.default` and delegated scopes.
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";

/// The public client an administrator signs in through during setup: Microsoft's own
/// "Microsoft Graph Command Line Tools", which every tenant can consent to.
pub const SETUP_CLIENT_ID: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";

/// The delegated permissions setup needs from the administrator, and no more.
pub const SETUP_SCOPES: &[&str] = &[
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "Organization.ReadWrite.All",
    "Domain.Read.All",
    // The wizard's preview of the first sync reads the tenant's users and groups as the admin.
    "Directory.Read.All",
    "OnPremDirectorySynchronization.ReadWrite.All",
    // Password sync through Microsoft Graph: assigning (and taking back) the sync app's User
    // Administrator role.
    "RoleManagement.ReadWrite.Directory",
];

/// The token endpoint of one tenant.
#[derive(Debug, Clone)]
pub struct Authority {
    tenant: String,
    authority: Url,
}

impl Authority {
    pub fn new(endpoints: &CloudEndpoints, tenant: &str) -> Result<Self, SignInError> {
        let tenant = tenant.trim();
        let valid = !tenant.is_empty()
            && tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'));
        if !valid {
            return Err(SignInError::TenantNotFound {
                tenant: tenant.to_owned(),
                authority: endpoints.authority.to_string(),
                code: "not a tenant ID or domain name".to_owned(),
            });
        }
        Ok(Authority {
            tenant: tenant.to_owned(),
            authority: endpoints.authority.clone(),
        })
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    fn endpoint(&self, name: &str) -> Url {
        let mut url = self.authority.clone();
        url.path_segments_mut()
            .expect("validated as http(s)")
            .pop_if_empty()
            .extend([self.tenant.as_str(), "oauth2", "v2.0", name]);
        url
    }
}

/// How the sync signs in.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// An app with a client secret (an existing app the answers named).
    ClientSecret { client_id: String, secret: Secret },
    /// An app with a certificate (dirsync's own app): every token request carries a client
    /// assertion signed with the private key (PKCS #8 PEM), which never leaves this host.
    Certificate {
        client_id: String,
        private_key: Secret,
        /// `x5t#S256` of the registered certificate.
        thumbprint: String,
    },
    /// A signed-in administrator (setup): refreshed with its refresh token.
    Delegated {
        client_id: String,
        refresh_token: Secret,
        scopes: String,
    },
}

impl Credentials {
    pub fn client_id(&self) -> &str {
        match self {
            Credentials::ClientSecret { client_id, .. }
            | Credentials::Certificate { client_id, .. }
            | Credentials::Delegated { client_id, .. } => client_id,
        }
    }
}

/// An access token and when to stop using it.
#[derive(Debug, Clone)]
struct CachedToken {
    token: Secret,
    renew_at: Instant,
}

/// Hands out a valid access token, signing in again or refreshing when the cached one is old.
#[derive(Debug)]
pub struct TokenSource {
    http: reqwest::Client,
    authority: Authority,
    credentials: Mutex<Credentials>,
    cached: Mutex<Option<CachedToken>>,
}

impl TokenSource {
    pub fn new(http: reqwest::Client, authority: Authority, credentials: Credentials) -> Self {
        TokenSource {
            http,
            authority,
            credentials: Mutex::new(credentials),
            cached: Mutex::new(None),
        }
    }

    /// Starts with a token already in hand (from the device code flow).
    pub fn with_session(
        http: reqwest::Client,
        authority: Authority,
        session: DelegatedSession,
    ) -> Self {
        let source = TokenSource::new(http, authority, session.credentials);
        *source.cached.try_lock().expect("new") = Some(session.access);
        source
    }

    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// A token valid for at least a few more minutes (or half its lifetime, if short).
    pub async fn token(&self) -> Result<Secret, SignInError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.renew_at
        {
            return Ok(token.token.clone());
        }
        let mut credentials = self.credentials.lock().await;
        let answer = match &*credentials {
            Credentials::ClientSecret { client_id, secret } => {
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", secret.expose()),
                    ("scope", &format!("{GRAPH_RESOURCE}/.default")),
                ];
                request_token(&self.http, &self.authority, &form, client_id).await?
            }
            Credentials::Certificate {
                client_id,
                private_key,
                thumbprint,
            } => {
                let token_url = self.authority.endpoint("token");
                let assertion = super::certificate::client_assertion(
                    client_id,
                    token_url.as_str(),
                    private_key,
                    thumbprint,
                )
                .map_err(|error| SignInError::BadCertificate {
                    client_id: client_id.clone(),
                    reason: error.to_string(),
                })?;
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.expose()),
                    ("scope", &format!("{GRAPH_RESOURCE}/.default")),
                ];
                request_token(&self.http, &self.authority, &form, client_id).await?
            }
            Credentials::Delegated {
                client_id,
                refresh_token,
                scopes,
            } => {
                let form = [
                    ("grant_type", "refresh_token"),
                    ("client_id", client_id.as_str()),
                    ("refresh_token", refresh_token.expose()),
                    ("scope", scopes.as_str()),
                ];
                request_token(&self.http, &self.authority, &form, client_id).await?
            }
        };
        if let (Credentials::Delegated { refresh_token, .. }, Some(rotated)) =
            (&mut *credentials, answer.refresh_token.clone())
        {
            *refresh_token = rotated;
        }
        let token = answer.cached();
        *cached = Some(token.clone());
        Ok(token.token)
    }

    /// Forgets the cached token (Graph said it expired), so the next `token()` signs in again.
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }
}

/// A token endpoint's successful answer.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Secret,
    expires_in: u64,
    #[serde(default)]
    refresh_token: Option<Secret>,
}

impl TokenAnswer {
    fn cached(&self) -> CachedToken {
        let lifetime = super::http::token_lifetime(self.expires_in);
        let margin = (lifetime / 2).min(Duration::from_secs(300));
        CachedToken {
            token: self.access_token.clone(),
            renew_at: Instant::now() + lifetime - margin,
        }
    }
}

/// A token endpoint's error answer
/// (https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes).
#[derive(Debug, Deserialize)]
struct TokenRefusal {
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u64>,
}

impl TokenRefusal {
    fn code(&self) -> String {
        self.error_codes
            .first()
            .map(|code| format!("AADSTS{code}"))
            .unwrap_or_else(|| self.error.clone())
    }

    /// The description without its trace and correlation IDs, which help Microsoft support but
    /// not the administrator.
    fn description(&self) -> String {
        let text = self.error_description.lines().next().unwrap_or_default();
        let text = text.split(" Trace ID:").next().unwrap_or(text);
        text.trim().to_owned()
    }

    fn has_code(&self, code: u64) -> bool {
        self.error_codes.contains(&code)
            || self
                .error_description
                .starts_with(&format!("AADSTS{code}:"))
    }

    fn into_error(self, authority: &Authority, client_id: &str, user: Option<&str>) -> SignInError {
        let code = self.code();
        if self.has_code(90002) || self.has_code(900023) {
            return SignInError::TenantNotFound {
                tenant: authority.tenant.clone(),
                authority: authority.authority.to_string(),
                code,
            };
        }
        if self.has_code(700016) {
            return SignInError::UnknownApplication {
                client_id: client_id.to_owned(),
                tenant: authority.tenant.clone(),
                code,
            };
        }
        if self.has_code(7000215) {
            return SignInError::WrongSecret {
                client_id: client_id.to_owned(),
                code,
            };
        }
        // The certificate is unknown (replaced, removed, not yet replicated), its signature
        // wrong, or it expired.
        if self.has_code(700027) || self.has_code(700024) {
            return SignInError::CertificateRefused {
                client_id: client_id.to_owned(),
                description: self.description(),
                code,
            };
        }
        if self.has_code(7000222) {
            return SignInError::ExpiredSecret {
                client_id: client_id.to_owned(),
                code,
            };
        }
        if self.has_code(50126) {
            return SignInError::WrongPassword {
                user: user.unwrap_or_default().to_owned(),
                code,
            };
        }
        match self.error.as_str() {
            "authorization_declined" => SignInError::Declined,
            "expired_token" => SignInError::DeviceCodeExpired,
            "invalid_grant" if user.is_none() => SignInError::SessionExpired { code },
            _ => SignInError::Refused {
                description: self.description(),
                error: self.error,
            },
        }
    }
}

/// Posts a form to a token endpoint and reads the answer, telling a refusal from a URL that is
/// no token endpoint at all.
async fn post_form<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: Url,
    form: &[(&str, &str)],
) -> Result<Result<T, TokenRefusal>, SignInError> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let shown_url = url.to_string();
    let response = http
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|error| SignInError::Unreachable {
            url: shown_url.clone(),
            reason: super::http::describe_transport_error(&error),
        })?;
    let status = response.status();
    let is_json = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("json"));
    let bytes = super::http::read_capped(response, super::http::MAX_TOKEN_BODY_BYTES)
        .await
        .map_err(|error| SignInError::Unreachable {
            url: shown_url.clone(),
            reason: error.describe(),
        })?;
    let not_an_authority = |what: String| SignInError::NotAnAuthority {
        url: shown_url.clone(),
        what,
    };
    if !is_json {
        return Err(not_an_authority(format!(
            "HTTP {} with a non-JSON answer: {}",
            status.as_u16(),
            super::http::snippet(&bytes)
        )));
    }
    if status.is_success() {
        return serde_json::from_slice::<T>(&bytes)
            .map(Ok)
            .map_err(|error| not_an_authority(format!("its answer is not a token: {error}")));
    }
    match serde_json::from_slice::<TokenRefusal>(&bytes) {
        Ok(refusal) => Ok(Err(refusal)),
        Err(_) => Err(not_an_authority(format!(
            "HTTP {} with an unexpected answer: {}",
            status.as_u16(),
            super::http::snippet(&bytes)
        ))),
    }
}

async fn request_token(
    http: &reqwest::Client,
    authority: &Authority,
    form: &[(&str, &str)],
    client_id: &str,
) -> Result<TokenAnswer, SignInError> {
    post_form::<TokenAnswer>(http, authority.endpoint("token"), form)
        .await?
        .map_err(|refusal| refusal.into_error(authority, client_id, None))
}

/// A signed-in administrator: the first access token and what refreshes it.
#[derive(Debug, Clone)]
pub struct DelegatedSession {
    access: CachedToken,
    credentials: Credentials,
}

/// What the administrator must do to sign in: open `verification_uri` and enter `user_code`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DeviceCodePrompt {
    pub user_code: String,
    pub verification_uri: String,
    /// The identity platform's own sentence, in the user's language.
    pub message: String,
    pub expires_in: u64,
    pub interval: u64,
}

/// A started device code sign-in.
#[derive(Debug)]
pub struct DeviceCodeSignIn {
    http: reqwest::Client,
    authority: Authority,
    client_id: String,
    scopes: String,
    device_code: Secret,
    prompt: DeviceCodePrompt,
}

#[derive(Deserialize)]
struct DeviceCodeAnswer {
    device_code: Secret,
    #[serde(flatten)]
    prompt: DeviceCodePrompt,
}

/// The space-separated scope string for delegated Graph permissions, with a refresh token.
pub fn delegated_scopes(permissions: &[&str]) -> String {
    let mut scopes: Vec<String> = permissions
        .iter()
        .map(|permission| format!("{GRAPH_RESOURCE}/{permission}"))
        .collect();
    scopes.push("offline_access".to_owned());
    scopes.join(" ")
}

impl DeviceCodeSignIn {
    /// Asks for a code to show the administrator.
    pub async fn start(
        http: reqwest::Client,
        authority: Authority,
        client_id: &str,
        permissions: &[&str],
    ) -> Result<Self, SignInError> {
        let scopes = delegated_scopes(permissions);
        let form = [("client_id", client_id), ("scope", scopes.as_str())];
        let answer: DeviceCodeAnswer = post_form(&http, authority.endpoint("devicecode"), &form)
            .await?
            .map_err(|refusal| refusal.into_error(&authority, client_id, None))?;
        Ok(DeviceCodeSignIn {
            http,
            authority,
            client_id: client_id.to_owned(),
            scopes,
            device_code: answer.device_code,
            prompt: answer.prompt,
        })
    }

    pub fn prompt(&self) -> &DeviceCodePrompt {
        &self.prompt
    }

    /// Polls until the administrator signs in, declines, or the code expires. Polls no faster
    /// than the server's `interval`, and slower after `slow_down`, as RFC 8628 §3.5 requires.
    pub async fn wait(self) -> Result<DelegatedSession, SignInError> {
        // Both come from the server: clamped so that a wild value neither spins nor overflows.
        let mut interval = Duration::from_secs(self.prompt.interval.clamp(1, 60));
        let deadline = Instant::now() + super::http::token_lifetime(self.prompt.expires_in);
        loop {
            tokio::time::sleep(interval).await;
            if Instant::now() > deadline {
                return Err(SignInError::DeviceCodeExpired);
            }
            let form = [
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", self.client_id.as_str()),
                ("device_code", self.device_code.expose()),
            ];
            let answer =
                post_form::<TokenAnswer>(&self.http, self.authority.endpoint("token"), &form)
                    .await?;
            match answer {
                Ok(answer) => return Ok(self.session(&answer)),
                Err(refusal) if refusal.error == "authorization_pending" => {}
                Err(refusal) if refusal.error == "slow_down" => interval += Duration::from_secs(5),
                Err(refusal) => {
                    return Err(refusal.into_error(&self.authority, &self.client_id, None));
                }
            }
        }
    }

    fn session(&self, answer: &TokenAnswer) -> DelegatedSession {
        DelegatedSession {
            access: answer.cached(),
            credentials: Credentials::Delegated {
                client_id: self.client_id.clone(),
                // Without offline_access consent there is no refresh token: the session then
                // lasts as long as its access token, which is enough for setup.
                refresh_token: answer
                    .refresh_token
                    .clone()
                    .unwrap_or_else(|| Secret::new("")),
                scopes: self.scopes.clone(),
            },
        }
    }
}

/// Signs a user in with a password (the resource owner password grant). dirsync uses this only
/// to prove that a synced password works in the cloud; it returns whether it did.
pub async fn check_password(
    http: &reqwest::Client,
    authority: &Authority,
    client_id: &str,
    user: &str,
    password: &Secret,
) -> Result<(), SignInError> {
    let scope = format!("{GRAPH_RESOURCE}/User.Read");
    let form = [
        ("grant_type", "password"),
        ("client_id", client_id),
        ("username", user),
        ("password", password.expose()),
        ("scope", scope.as_str()),
    ];
    post_form::<TokenAnswer>(http, authority.endpoint("token"), &form)
        .await?
        .map(|_| ())
        .map_err(|refusal| refusal.into_error(authority, client_id, Some(user)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(error: &str, codes: &[u64], description: &str) -> TokenRefusal {
        TokenRefusal {
            error: error.to_owned(),
            error_description: description.to_owned(),
            error_codes: codes.to_vec(),
        }
    }

    fn authority() -> Authority {
        Authority::new(&CloudEndpoints::default(), "contoso.onmicrosoft.com").expect("valid")
    }

    #[test]
    fn the_token_endpoint_is_under_the_tenant() {
        assert_eq!(
            authority().endpoint("token").as_str(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        let endpoints = CloudEndpoints::parse("http://127.0.0.1:9/login/", "http://127.0.0.1:9")
            .expect("valid");
        let authority = Authority::new(&endpoints, "t1").expect("valid");
        assert_eq!(
            authority.endpoint("devicecode").as_str(),
            "http://127.0.0.1:9/login/t1/oauth2/v2.0/devicecode"
        );
    }

    #[test]
    fn a_tenant_must_look_like_an_id_or_a_domain() {
        let error = Authority::new(&CloudEndpoints::default(), "contoso/../x").expect_err("bad");
        assert!(error.to_string().contains("'Tenant' field"), "{error}");
        assert!(Authority::new(&CloudEndpoints::default(), " ").is_err());
    }

    #[test]
    fn refusals_become_errors_that_name_the_field() {
        let wrong_secret = refusal(
            "invalid_client",
            &[7000215],
            "AADSTS7000215: Invalid client secret provided. Trace ID: abc Correlation ID: def",
        )
        .into_error(&authority(), "app-1", None);
        assert!(matches!(wrong_secret, SignInError::WrongSecret { .. }));
        assert!(wrong_secret.to_string().contains("secret's Value"));

        let expired = refusal("invalid_client", &[7000222], "AADSTS7000222: expired").into_error(
            &authority(),
            "app-1",
            None,
        );
        assert!(matches!(expired, SignInError::ExpiredSecret { .. }));

        let tenant = refusal(
            "invalid_request",
            &[90002],
            "AADSTS90002: Tenant 'x' not found.",
        )
        .into_error(&authority(), "app-1", None);
        assert!(tenant.to_string().contains("'Tenant' field"), "{tenant}");

        assert_eq!(
            refusal("authorization_declined", &[70000], "").into_error(&authority(), "app-1", None),
            SignInError::Declined
        );
        let other = refusal(
            "invalid_scope",
            &[70011],
            "AADSTS70011: The scope is not valid. Trace ID: 123",
        )
        .into_error(&authority(), "app-1", None);
        assert_eq!(
            other.to_string(),
            "the sign-in server refused: invalid_scope: AADSTS70011: The scope is not valid."
        );
    }

    #[test]
    fn delegated_scopes_ask_for_a_refresh_token() {
        assert_eq!(
            delegated_scopes(&["Domain.Read.All"]),
            "https://graph.microsoft.com/Domain.Read.All offline_access"
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// A sign-in server's error body, whatever it holds: an error an administrator can
            /// read, never a panic.
            #[test]
            fn any_token_refusal_becomes_an_error(
                error in any::<String>(),
                description in any::<String>(),
                codes in proptest::collection::vec(any::<u64>(), 0..4),
            ) {
                let refusal = TokenRefusal {
                    error,
                    error_description: description,
                    error_codes: codes,
                };
                let endpoints = CloudEndpoints::parse("https://login.microsoftonline.com", "https://graph.microsoft.com").expect("endpoints");
                let authority = Authority::new(&endpoints, "contoso.onmicrosoft.com").expect("authority");
                let _ = refusal.into_error(&authority, "client", Some("user")).to_string();
            }

            #[test]
            fn any_token_answer_bytes_parse_or_fail(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
                let _ = serde_json::from_slice::<TokenRefusal>(&bytes);
                let _ = serde_json::from_slice::<TokenAnswer>(&bytes).map(|answer| answer.cached());
            }
        }
    }
}
