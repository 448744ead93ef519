//! The cloud side of setup: signing in, the tenant's id, dirsync's sync app (registered,
//! found again, renewed) and what the chosen options need of the tenant.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::cloud::auth::{
    Authority, Credentials, DeviceCodeSignIn, SETUP_CLIENT_ID, SETUP_SCOPES, TokenSource,
};
use crate::cloud::graph::{GraphSetupError, http_client};
use crate::cloud::mailboxes::MailboxEndpoint;
use crate::cloud::setup::{
    AppOutcome, CloudDomain, KnownApp, SyncApp, SyncAppTarget, TenantInfo, register_sync_app,
    verified_domains, verify_tenant,
};
use crate::cloud::{CloudEndpoints, FlowPolicy, GraphClient, PasswordHashEndpoint};
use crate::config::Config;
use crate::secret::Secret;
use crate::secret_store::SecretStore;
use crate::tls::TlsTrust;

use super::SetupProgress;
use super::answers::{CloudAnswers, SignIn};
use super::failure::{
    CloudFields, Field, SetupFailure, cloud_setup_failure, graph_failure, sign_in_failure,
};

/// How long the new sync app may take to sign in for the first time: Entra ID replicates a new
/// app and its grants for a while.
const APP_PROOF_TIMEOUT: Duration = Duration::from_secs(180);

/// The proven cloud sign-in: an administrator's session, or an existing app's credentials.
#[derive(Debug, Clone)]
pub enum CloudSession {
    Admin {
        client: GraphClient,
        tenant: TenantInfo,
        /// dirsync's app, when it is already registered (the wizard does so at sign-in).
        app: Option<Box<SyncApp>>,
    },
    App {
        tenant_id: String,
        client_id: String,
        secret: Secret,
        client: GraphClient,
        /// The tenant's verified domains, read with the app's credentials.
        domains: Vec<CloudDomain>,
    },
}

impl CloudSession {
    /// Graph, signed in as the administrator or the app.
    pub fn client(&self) -> &GraphClient {
        match self {
            CloudSession::Admin { client, .. } | CloudSession::App { client, .. } => client,
        }
    }

    pub fn tenant_id(&self) -> &str {
        match self {
            CloudSession::Admin { tenant, .. } => &tenant.tenant_id,
            CloudSession::App { tenant_id, .. } => tenant_id,
        }
    }

    /// The tenant's name, when an administrator signed in (an app may not read it).
    pub fn tenant_name(&self) -> Option<&str> {
        match self {
            CloudSession::Admin { tenant, .. } => Some(&tenant.display_name),
            CloudSession::App { .. } => None,
        }
    }

    /// dirsync's app, once registered (an existing app's session has none).
    pub fn sync_app(&self) -> Option<&SyncApp> {
        match self {
            CloudSession::Admin { app, .. } => app.as_deref(),
            CloudSession::App { .. } => None,
        }
    }

    pub fn verified_domains(&self) -> &[CloudDomain] {
        match self {
            CloudSession::Admin { tenant, .. } => &tenant.verified_domains,
            CloudSession::App { domains, .. } => domains,
        }
    }
}

/// Setup's requests give up sooner than a sync run's: an administrator is waiting.
fn setup_policy() -> FlowPolicy {
    FlowPolicy {
        give_up_after: Duration::from_secs(60),
        ..FlowPolicy::default()
    }
}

/// Signs in to the cloud as the answers say and proves it by reading the tenant (an
/// administrator) or its verified domains (an app).
pub async fn sign_in(
    cloud: &CloudAnswers,
    endpoints: &CloudEndpoints,
    client_secret: Option<Secret>,
    fields: &CloudFields,
    progress: &mut dyn SetupProgress,
) -> Result<CloudSession, SetupFailure> {
    let policy = setup_policy();
    let http = http_client(&TlsTrust::SystemRoots, policy.request_timeout)
        .map_err(|error| SetupFailure::failed(None, error.to_string()))?;
    let authority = Authority::new(endpoints, &cloud.tenant)
        .map_err(|error| sign_in_failure(&error, fields))?;
    match cloud.sign_in {
        SignIn::DeviceCode => {
            let started = DeviceCodeSignIn::start(
                http.clone(),
                authority.clone(),
                SETUP_CLIENT_ID,
                SETUP_SCOPES,
            )
            .await
            .map_err(|error| sign_in_failure(&error, fields))?;
            progress.device_code(started.prompt());
            let session = started
                .wait()
                .await
                .map_err(|error| sign_in_failure(&error, fields))?;
            let tokens = TokenSource::with_session(http.clone(), authority, session);
            let client = GraphClient::with_tokens(http, endpoints, Arc::new(tokens), policy);
            let tenant = verify_tenant(&client)
                .await
                .map_err(|error| graph_failure(error, fields))?;
            progress.note(&format!(
                "signed in to tenant '{}' ({}), initial domain {}",
                tenant.display_name, tenant.tenant_id, tenant.initial_domain
            ));
            Ok(CloudSession::Admin {
                client,
                tenant,
                app: None,
            })
        }
        SignIn::App => {
            let client_id = cloud
                .client_id
                .clone()
                .unwrap_or_default()
                .trim()
                .to_owned();
            let secret = client_secret.ok_or_else(|| {
                SetupFailure::bad_input(
                    Some(Field::CloudClientSecret),
                    format!(
                        "{}: no client secret was given for app {client_id}",
                        fields.client_secret
                    ),
                )
            })?;
            let tenant_id = tenant_id_of(&http, endpoints, &cloud.tenant).await?;
            let credentials = Credentials::ClientSecret {
                client_id: client_id.clone(),
                secret: secret.clone(),
            };
            let client = GraphClient::new(
                endpoints,
                &tenant_id,
                credentials,
                &TlsTrust::SystemRoots,
                policy,
            )
            .map_err(|error| match error {
                GraphSetupError::SignIn(error) => sign_in_failure(&error, fields),
                GraphSetupError::Tls(error) => SetupFailure::failed(None, error.to_string()),
            })?;
            // Signing in and reading the domains proves the id, the secret and the app's rights.
            let domains = verified_domains(&client)
                .await
                .map_err(|error| graph_failure(error, fields))?;
            progress.note(&format!(
                "app {client_id} signed in to tenant {tenant_id} and read its verified domains ({})",
                domains
                    .iter()
                    .map(|domain| domain.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            Ok(CloudSession::App {
                tenant_id,
                client_id,
                secret,
                client,
                domains,
            })
        }
    }
}

/// The tenant's id (a GUID) for a tenant given by id or domain name, from the identity
/// platform's OpenID configuration, whose issuer names it.
/// https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc#find-your-apps-openid-configuration-document-uri
async fn tenant_id_of(
    http: &reqwest::Client,
    endpoints: &CloudEndpoints,
    tenant: &str,
) -> Result<String, SetupFailure> {
    let tenant = tenant.trim();
    if is_guid(tenant) {
        return Ok(tenant.to_ascii_lowercase());
    }
    let mut url = endpoints.authority.clone();
    url.path_segments_mut()
        .map_err(|()| {
            SetupFailure::bad_input(
                Some(Field::CloudAuthority),
                format!("{} cannot take a path", endpoints.authority),
            )
        })?
        .pop_if_empty()
        .extend([tenant, "v2.0", ".well-known", "openid-configuration"]);
    let response = http.get(url.clone()).send().await.map_err(|error| {
        SetupFailure::failed(
            Some(Field::CloudAuthority),
            format!(
                "cannot reach the sign-in server {url}: {error}; check the URL and the network"
            ),
        )
    })?;
    let status = response.status();
    if status.is_client_error() {
        return Err(SetupFailure::bad_input(
            Some(Field::CloudTenant),
            format!(
                "the tenant '{tenant}' was not found at {} (HTTP {status}); give the tenant's id (a GUID) or one of its domain names",
                endpoints.authority
            ),
        ));
    }
    let not_authority = |what: &str| {
        SetupFailure::failed(
            Some(Field::CloudAuthority),
            format!(
                "{url} did not answer as a Microsoft identity platform ({what}); the global cloud's authority is https://login.microsoftonline.com"
            ),
        )
    };
    if !status.is_success() {
        return Err(not_authority(&format!("HTTP {status}")));
    }
    let body = crate::cloud::http::read_capped(response, crate::cloud::http::MAX_TOKEN_BODY_BYTES)
        .await
        .map_err(|error| not_authority(&error.describe()))?;
    let document: Value =
        serde_json::from_slice(&body).map_err(|error| not_authority(&error.to_string()))?;
    let issuer = document
        .get("issuer")
        .and_then(Value::as_str)
        .and_then(|issuer| url::Url::parse(issuer).ok())
        .ok_or_else(|| not_authority("no issuer in its OpenID configuration"))?;
    issuer
        .path_segments()
        .and_then(|mut segments| segments.find(|segment| is_guid(segment)))
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| not_authority("its issuer names no tenant id"))
}

/// `8d2c0c52-0d3c-4d43-9a43-000000000001`.
fn is_guid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(index, c)| match index {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The sync app a saved configuration names, when setup registered it (not an existing app the
/// answers named: that one is the administrator's, and setup never registers over it).
pub fn known_app(config: &Config) -> Option<KnownApp> {
    config
        .cloud
        .service_principal_id
        .as_ref()
        .map(|service_principal_id| KnownApp {
            client_id: config.cloud.client_id.clone(),
            service_principal_id: Some(service_principal_id.clone()),
        })
}

/// Registers dirsync's app for this computer (or finds this installation's from an earlier
/// setup and gives it a new secret), with its secret in the keyring, and proves it signs in.
pub async fn create_sync_app(
    admin: &GraphClient,
    tenant: &TenantInfo,
    endpoints: &CloudEndpoints,
    computer: &str,
    known: Option<KnownApp>,
    secrets: &dyn SecretStore,
    progress: &mut dyn SetupProgress,
) -> Result<SyncApp, SetupFailure> {
    let display_name = sync_app_name(computer);
    let target = sync_app_target(endpoints, &tenant.tenant_id, &display_name, known);
    let app = register_sync_app(admin, &target, secrets)
        .await
        .map_err(|error| cloud_setup_failure(&error))?;
    progress.note(&format!(
        "app '{}' {} (client id {}) with {}; it signs in with a certificate whose private key was made here and is kept only on this computer",
        app.display_name,
        match app.outcome {
            AppOutcome::Created => "registered",
            AppOutcome::Reused => "found from an earlier setup and given a new certificate",
        },
        app.client_id,
        app.permissions.join(", ")
    ));
    Ok(app)
}

/// What renewing the sync app's credential did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewedCredential {
    /// When the new credential expires (RFC 3339).
    pub expires_at: Option<String>,
    /// Older credentials removed once the new one signed in.
    pub removed: usize,
}

/// Renews the credential of the sync app `config` names, with a Global Administrator's device
/// code sign-in: a new secret (kept where the old one was: the OS keyring and, as root, the
/// service's systemd credential), proven, then the older ones removed and `config_file` updated
/// with the new expiry. Only this installation's own app is renewed; an existing app the answers
/// named is the administrator's to renew in the Entra admin center.
pub async fn renew_app_credential(
    config_file: &Path,
    computer: &str,
    secrets: &dyn SecretStore,
    progress: &mut dyn SetupProgress,
) -> Result<RenewedCredential, SetupFailure> {
    let mut config = Config::load(config_file)
        .map_err(|error| SetupFailure::bad_input(None, error.to_string()))?;
    let known = known_app(&config).ok_or_else(|| {
        SetupFailure::bad_input(None, format!(
            "the sync app {} was not registered by dirsync's setup, so dirsync cannot renew its credential: add a new client secret to it in the Entra admin center and run setup with sign_in = \"app\"",
            config.cloud.client_id
        ))
    })?;
    let endpoints = config
        .endpoints()
        .map_err(|error| SetupFailure::bad_input(Some(Field::CloudAuthority), error.to_string()))?;
    let (client, tenant) = Box::pin(admin_sign_in(&config, progress)).await?;
    let app = create_sync_app(
        &client,
        &tenant,
        &endpoints,
        computer,
        Some(known),
        secrets,
        progress,
    )
    .await?;
    if app.client_id != config.cloud.client_id {
        return Err(SetupFailure::failed(
            None,
            format!(
                "the renewal reached app {} instead of {}; run setup again",
                app.client_id, config.cloud.client_id
            ),
        ));
    }
    config.cloud.credential_expires_at = app.credential_expires_at.clone();
    config.cloud.certificate_thumbprint = Some(app.certificate_thumbprint.clone());
    config
        .save(config_file)
        .map_err(|error| SetupFailure::failed(None, error.to_string()))?;
    Ok(RenewedCredential {
        expires_at: app.credential_expires_at,
        removed: app.removed_secrets,
    })
}

/// A Global Administrator's device code sign-in to the tenant `config.toml` names (renewing
/// the app's credential, uninstalling).
pub async fn admin_sign_in(
    config: &Config,
    progress: &mut dyn SetupProgress,
) -> Result<(GraphClient, TenantInfo), SetupFailure> {
    let endpoints = config
        .endpoints()
        .map_err(|error| SetupFailure::bad_input(Some(Field::CloudAuthority), error.to_string()))?;
    let answers = CloudAnswers {
        authority: config.cloud.authority.clone(),
        graph: config.cloud.graph.clone(),
        tenant: config.cloud.tenant_id.clone(),
        sign_in: SignIn::DeviceCode,
        client_id: None,
        client_secret_env: None,
    };
    let fields = CloudFields {
        sign_in: SignIn::DeviceCode,
        client_secret: "the client secret".to_owned(),
    };
    let session = Box::pin(sign_in(&answers, &endpoints, None, &fields, progress)).await?;
    let CloudSession::Admin { client, tenant, .. } = session else {
        return Err(SetupFailure::failed(
            None,
            "the sign-in was not an administrator's".to_owned(),
        ));
    };
    Ok((client, tenant))
}

/// The display name of this computer's sync app.
pub fn sync_app_name(computer: &str) -> String {
    format!("dirsync ({computer})")
}

pub(super) fn sync_app_target<'a>(
    endpoints: &'a CloudEndpoints,
    tenant_id: &'a str,
    display_name: &'a str,
    known: Option<KnownApp>,
) -> SyncAppTarget<'a> {
    SyncAppTarget {
        endpoints,
        tenant_id,
        trust: &TlsTrust::SystemRoots,
        display_name,
        proof_timeout: APP_PROOF_TIMEOUT,
        known,
    }
}

/// Password hash sync needs the tenant to accept hashes: public Microsoft Graph has no endpoint
/// for them (README, "Password hash sync"), so setup says so before anything is created.
pub async fn check_password_hash_endpoint(
    client: &GraphClient,
    fields: &CloudFields,
    progress: &mut dyn SetupProgress,
) -> Result<(), SetupFailure> {
    match client.password_hash_endpoint().await {
        Ok(PasswordHashEndpoint::Available { max_batch }) => {
            progress.note(&format!(
                "the tenant accepts password hashes ({max_batch} users per request)"
            ));
            Ok(())
        }
        Ok(PasswordHashEndpoint::Missing { url, answer }) => Err(SetupFailure::bad_input(
            Some(Field::OptionsPasswordHashSync),
            format!(
                "this tenant has no password hash endpoint ({url} answered: {answer}); public Microsoft Graph offers none, so password hashes cannot be synchronized to it; set options.password_sync_mode = \"graph\" (passwords through public Microsoft Graph), or password_hash_sync = false"
            ),
        )),
        Err(error) => Err(graph_failure(error, fields)),
    }
}

/// Hybrid write-back needs the tenant's mailbox attributes: public Microsoft Graph has none
/// (README, "Hybrid Exchange write-back"), so setup says so before anything is created.
pub async fn check_mailbox_endpoint(
    client: &GraphClient,
    fields: &CloudFields,
    progress: &mut dyn SetupProgress,
) -> Result<(), SetupFailure> {
    match client.mailbox_endpoint().await {
        Ok(MailboxEndpoint::Available) => {
            progress.note("the tenant offers its mailboxes' attributes for hybrid write-back");
            Ok(())
        }
        Ok(MailboxEndpoint::Missing { url, answer }) => Err(SetupFailure::bad_input(
            Some(Field::OptionsHybridWriteBack),
            format!(
                "this tenant offers no mailbox attributes ({url} answered: {answer}); public Microsoft Graph has none, so nothing could be written back; set hybrid_write_back = false"
            ),
        )),
        Err(error) => Err(graph_failure(error, fields)),
    }
}

/// Checks what the chosen options need of the tenant.
pub(super) async fn check_cloud_options(
    client: &GraphClient,
    options: &crate::config::SyncOptions,
    fields: &CloudFields,
    progress: &mut dyn SetupProgress,
) -> Result<(), SetupFailure> {
    if options.password_hash_sync
        && options.password_sync_mode == crate::config::PasswordSyncMode::Hash
    {
        check_password_hash_endpoint(client, fields, progress).await?;
    }
    if options.hybrid_write_back {
        check_mailbox_endpoint(client, fields, progress).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_recognized() {
        assert!(is_guid("8d2c0c52-0d3c-4d43-9a43-000000000001"));
        assert!(is_guid("8D2C0C52-0D3C-4D43-9A43-00000000000A"));
        assert!(!is_guid("contoso.onmicrosoft.com"));
        assert!(!is_guid("8d2c0c52-0d3c-4d43-9a43-00000000000"));
        assert!(!is_guid("8d2c0c52x0d3c-4d43-9a43-000000000001"));
    }
}
