//! The cloud half of setup, done with an administrator's delegated sign-in: check the tenant,
//! register dirsync's own app with only the permissions the sync needs, give it a secret (kept
//! only in the OS keyring), prove the app can sign in, and turn on the tenant's directory
//! synchronization.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::CloudEndpoints;
use super::auth::Credentials;
use super::certificate::{CertificateError, make_certificate};
use super::error::{GraphError, SignInError};
use super::flow::FlowPolicy;
use super::graph::{GraphClient, GraphRequest, Method, odata_string};
use crate::secret_store::{SecretStore, SecretStoreError};
use crate::tls::TlsTrust;

/// Microsoft Graph's own application (resource) ID, the same in every tenant.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// The application permissions the sync needs, and no more: write users and groups (members
/// included), read the verified domains to check UPN suffixes, read who holds a directory
/// role (read-only), so that no cloud administrator is ever matched to an AD user (README,
/// "Joining"), and read the organization for its directory quota (README, "Monitoring").
pub const SYNC_APP_PERMISSIONS: &[&str] = &[
    "User.ReadWrite.All",
    "Group.ReadWrite.All",
    "Domain.Read.All",
    "RoleManagement.Read.Directory",
    "Organization.Read.All",
];

/// The secret store's entry holding an existing app's client secret.
pub fn client_secret_key(client_id: &str) -> String {
    format!("cloud-app-secret:{}", client_id.to_ascii_lowercase())
}

/// The secret store's entry holding the private key of dirsync's app's certificate.
pub fn client_certificate_key(client_id: &str) -> String {
    format!("cloud-app-certificate:{}", client_id.to_ascii_lowercase())
}

/// A cloud domain name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CloudDomain {
    pub name: String,
    pub is_initial: bool,
    pub is_default: bool,
}

/// What the tenant is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TenantInfo {
    pub tenant_id: String,
    pub display_name: String,
    pub initial_domain: String,
    pub verified_domains: Vec<CloudDomain>,
    pub directory_sync_enabled: bool,
}

/// Reads the organization: proves the sign-in reached the right tenant.
/// https://learn.microsoft.com/en-us/graph/api/organization-list?view=graph-rest-1.0
pub async fn verify_tenant(admin: &GraphClient) -> Result<TenantInfo, GraphError> {
    let answer = admin
        .send(&GraphRequest::get(&["organization"]))
        .await?
        .unwrap_or(Value::Null);
    let organization = answer
        .get("value")
        .and_then(Value::as_array)
        .and_then(|values| values.first())
        .ok_or_else(|| GraphError::NotGraph {
            url: "organization".to_owned(),
            what: "no organization in the answer".to_owned(),
        })?;
    let text = |name: &str| {
        organization
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let verified_domains: Vec<CloudDomain> = organization
        .get("verifiedDomains")
        .and_then(Value::as_array)
        .map(|domains| domains.iter().filter_map(domain_from).collect())
        .unwrap_or_default();
    Ok(TenantInfo {
        tenant_id: text("id"),
        display_name: text("displayName"),
        initial_domain: verified_domains
            .iter()
            .find(|domain| domain.is_initial)
            .map(|domain| domain.name.clone())
            .unwrap_or_default(),
        verified_domains,
        directory_sync_enabled: organization
            .get("onPremisesSyncEnabled")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

fn domain_from(value: &Value) -> Option<CloudDomain> {
    let name = value
        .get("name")
        .or_else(|| value.get("id"))
        .and_then(Value::as_str)?;
    let flag = |name: &str| value.get(name).and_then(Value::as_bool).unwrap_or(false);
    Some(CloudDomain {
        name: name.to_owned(),
        is_initial: flag("isInitial"),
        is_default: flag("isDefault"),
    })
}

/// The tenant's verified domains, as the sync app sees them (Domain.Read.All).
/// https://learn.microsoft.com/en-us/graph/api/domain-list?view=graph-rest-1.0
pub async fn verified_domains(client: &GraphClient) -> Result<Vec<CloudDomain>, GraphError> {
    let answer = client
        .send(&GraphRequest::get(&["domains"]))
        .await?
        .unwrap_or(Value::Null);
    Ok(answer
        .get("value")
        .and_then(Value::as_array)
        .map(|domains| {
            domains
                .iter()
                .filter(|domain| domain.get("isVerified").and_then(Value::as_bool) == Some(true))
                .filter_map(domain_from)
                .collect()
        })
        .unwrap_or_default())
}

/// Whether the app registration was made now or found from an earlier setup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum AppOutcome {
    Created,
    Reused,
}

/// dirsync's app in the tenant.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SyncApp {
    pub display_name: String,
    /// The application object's id.
    pub application_id: String,
    /// The appId: what the sync signs in with.
    pub client_id: String,
    pub service_principal_id: String,
    /// The secret store's key of the certificate's private key.
    pub credential_key: String,
    /// `x5t#S256` of the app's certificate.
    pub certificate_thumbprint: String,
    pub permissions: Vec<String>,
    pub outcome: AppOutcome,
    /// The app's older credentials (certificates and client secrets) that were removed, so
    /// only the new certificate signs in.
    pub removed_secrets: usize,
    /// When the new certificate expires (RFC 3339).
    pub credential_expires_at: Option<String>,
}

/// The app an earlier setup of this installation registered, as `config.toml` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownApp {
    pub client_id: String,
    pub service_principal_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CloudSetupError {
    #[error(
        "an app named '{display_name}' (client id {client_id}) already exists, but it is not dirsync's: it is owned by {owners}. Anyone who owns an app can add credentials to it, so setup will not give it a secret or the sync's tenant-wide permissions. Nothing was changed. Delete that app (or rename it) in the Entra admin center if it is not yours, then run setup again"
    )]
    AppOwnedByOthers {
        display_name: String,
        client_id: String,
        owners: String,
    },
    #[error("{step}: {source}")]
    Graph {
        step: &'static str,
        #[source]
        source: GraphError,
    },
    #[error(
        "the Microsoft Graph service principal in this tenant offers no application permission '{0}'"
    )]
    MissingPermission(String),
    #[error(transparent)]
    Keyring(#[from] SecretStoreError),
    #[error(transparent)]
    Certificate(CertificateError),
    #[error(
        "the new app '{client_id}' could not sign in or read the domains within {waited_secs} s: {source}. Entra ID can take minutes to make a new app usable; run setup again to retry (it reuses the app)"
    )]
    NotProven {
        client_id: String,
        waited_secs: u64,
        #[source]
        source: GraphError,
    },
}

fn step(step: &'static str) -> impl FnOnce(GraphError) -> CloudSetupError {
    move |source| CloudSetupError::Graph { step, source }
}

/// Where the sync app is registered, and how it is proven.
#[derive(Debug, Clone)]
pub struct SyncAppTarget<'a> {
    pub endpoints: &'a CloudEndpoints,
    pub tenant_id: &'a str,
    pub trust: &'a TlsTrust,
    pub display_name: &'a str,
    /// How long to keep trying the new app's first sign-in: Entra takes a while to replicate a
    /// new app and its grants.
    pub proof_timeout: Duration,
    /// The app this installation registered before (from `config.toml`), reused if it exists.
    pub known: Option<KnownApp>,
}

/// Registers (or finds) dirsync's app, grants it exactly `SYNC_APP_PERMISSIONS`, gives it a new
/// certificate whose private key is kept (keyring, service credential) before Graph hears of
/// it, proves the app signs in with it and reads the domains, and then removes the app's client
/// secrets.
pub async fn register_sync_app(
    admin: &GraphClient,
    target: &SyncAppTarget<'_>,
    secrets: &dyn SecretStore,
) -> Result<SyncApp, CloudSetupError> {
    let graph = find_one(admin, "servicePrincipals", "appId", GRAPH_APP_ID)
        .await
        .map_err(step("finding Microsoft Graph's service principal"))?
        .ok_or_else(|| CloudSetupError::MissingPermission(SYNC_APP_PERMISSIONS.join(", ")))?;
    let graph_sp_id = text(&graph, "id");
    let mut role_ids = Vec::new();
    for permission in SYNC_APP_PERMISSIONS {
        role_ids.push(
            app_role_id(&graph, permission)
                .ok_or_else(|| CloudSetupError::MissingPermission((*permission).to_owned()))?,
        );
    }
    let required_access = json!([{
        "resourceAppId": GRAPH_APP_ID,
        "resourceAccess": role_ids.iter().map(|id| json!({"id": id, "type": "Role"})).collect::<Vec<_>>(),
    }]);

    // The app registration: this installation's own, or a new one.
    let existing = find_own_app(admin, target).await?;
    let (application, outcome) = match existing {
        Some(application) => {
            // https://learn.microsoft.com/en-us/graph/api/application-update?view=graph-rest-1.0
            let id = text(&application, "id");
            admin
                .send(
                    &GraphRequest::new(Method::Patch, &["applications", &id])
                        .with_body(json!({ "requiredResourceAccess": required_access })),
                )
                .await
                .map_err(step("updating the app's permissions"))?;
            (application, AppOutcome::Reused)
        }
        None => {
            // https://learn.microsoft.com/en-us/graph/api/application-post-applications?view=graph-rest-1.0
            let body = json!({
                "displayName": target.display_name,
                "signInAudience": "AzureADMyOrg",
                "requiredResourceAccess": required_access,
            });
            let created = admin
                .send(&GraphRequest::new(Method::Post, &["applications"]).with_body(body))
                .await
                .map_err(step("registering the dirsync app"))?
                .unwrap_or(Value::Null);
            (created, AppOutcome::Created)
        }
    };
    let application_id = text(&application, "id");
    let client_id = text(&application, "appId");
    let old_certificates = application
        .get("keyCredentials")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let old_secret_ids: Vec<String> = application
        .get("passwordCredentials")
        .and_then(Value::as_array)
        .map(|credentials| credentials.iter().map(|c| text(c, "keyId")).collect())
        .unwrap_or_default();

    // A new certificate, made here; its private key goes where secrets are kept at once, before
    // Graph knows the certificate, so that it is never registered without its key being kept.
    let display_name = target.display_name.to_owned();
    let certificate = tokio::task::spawn_blocking(move || make_certificate(&display_name))
        .await
        .map_err(|error| CloudSetupError::Certificate(CertificateError::Make(error.to_string())))?
        .map_err(CloudSetupError::Certificate)?;
    let credential_key = client_certificate_key(&client_id);
    secrets.save(&credential_key, &certificate.private_key)?;
    // Registered in place of the older certificates (a PATCH replaces the collection).
    // https://learn.microsoft.com/en-us/graph/api/application-update?view=graph-rest-1.0
    admin
        .send(
            &GraphRequest::new(Method::Patch, &["applications", &application_id]).with_body(
                json!({ "keyCredentials": [certificate.key_credential("dirsync sync")] }),
            ),
        )
        .await
        .map_err(step("registering the app's certificate"))?;
    let credential_expires_at = Some(crate::credential_expiry::rfc3339(certificate.not_after));

    // Its service principal.
    // https://learn.microsoft.com/en-us/graph/api/serviceprincipal-post-serviceprincipals?view=graph-rest-1.0
    let service_principal = match find_one(admin, "servicePrincipals", "appId", &client_id)
        .await
        .map_err(step("looking for the app's service principal"))?
    {
        Some(found) => found,
        None => admin
            .send(
                &GraphRequest::new(Method::Post, &["servicePrincipals"])
                    .with_body(json!({ "appId": client_id })),
            )
            .await
            .map_err(step("creating the app's service principal"))?
            .unwrap_or(Value::Null),
    };
    let service_principal_id = text(&service_principal, "id");

    // Exactly the wanted application permissions: grant the missing, revoke the others.
    // https://learn.microsoft.com/en-us/graph/api/serviceprincipal-post-approleassignedto?view=graph-rest-1.0
    let assigned = admin
        .send(
            &GraphRequest::get(&["servicePrincipals", &graph_sp_id, "appRoleAssignedTo"])
                .with_query("$top", "999"),
        )
        .await
        .map_err(step("reading the app's permissions"))?
        .unwrap_or(Value::Null);
    let ours: Vec<(String, String)> = assigned
        .get("value")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|assignment| text(assignment, "principalId") == service_principal_id)
        .map(|assignment| (text(assignment, "id"), text(assignment, "appRoleId")))
        .collect();
    for role_id in &role_ids {
        if ours.iter().any(|(_, assigned)| assigned == role_id) {
            continue;
        }
        let body = json!({ "principalId": service_principal_id, "resourceId": graph_sp_id, "appRoleId": role_id });
        admin
            .send(
                &GraphRequest::new(
                    Method::Post,
                    &["servicePrincipals", &graph_sp_id, "appRoleAssignedTo"],
                )
                .with_body(body),
            )
            .await
            .map_err(step("granting the app its permissions"))?;
    }
    for (assignment_id, role_id) in &ours {
        if !role_ids.contains(role_id) {
            admin
                .send(&GraphRequest::new(
                    Method::Delete,
                    &[
                        "servicePrincipals",
                        &graph_sp_id,
                        "appRoleAssignedTo",
                        assignment_id,
                    ],
                ))
                .await
                .map_err(step("revoking a permission the app no longer needs"))?;
        }
    }

    let credentials = Credentials::Certificate {
        client_id: client_id.clone(),
        private_key: certificate.private_key.clone(),
        thumbprint: certificate.thumbprint.clone(),
    };
    prove_app(target, &client_id, credentials).await?;

    // Only now that the certificate works: remove the app's client secrets (an earlier version
    // of dirsync, or someone else, made them; the certificate is the app's only credential).
    // https://learn.microsoft.com/en-us/graph/api/application-removepassword?view=graph-rest-1.0
    let mut removed_secrets = old_certificates;
    for key_id in old_secret_ids.iter().filter(|id| !id.is_empty()) {
        admin
            .send(
                &GraphRequest::new(
                    Method::Post,
                    &["applications", &application_id, "removePassword"],
                )
                .with_body(json!({ "keyId": key_id })),
            )
            .await
            .map_err(step("removing the app's older secret"))?;
        removed_secrets += 1;
    }
    // A secret an earlier version kept for this app is no use any more.
    secrets.remove(&client_secret_key(&client_id))?;

    Ok(SyncApp {
        display_name: target.display_name.to_owned(),
        application_id,
        client_id,
        service_principal_id,
        credential_key,
        certificate_thumbprint: certificate.thumbprint,
        permissions: SYNC_APP_PERMISSIONS
            .iter()
            .map(|p| (*p).to_owned())
            .collect(),
        outcome,
        removed_secrets,
        credential_expires_at,
    })
}

/// The app setup may reuse: the one `config.toml` names (by its client id), else one with
/// dirsync's display name that nobody but the signed-in administrator owns. Any user of a tenant
/// may register an app of any name, and its owners keep the power to add credentials to it, so
/// an app owned by someone else is refused ([`CloudSetupError::AppOwnedByOthers`]) before
/// anything is changed. `None`: register a new one.
pub async fn find_own_app(
    admin: &GraphClient,
    target: &SyncAppTarget<'_>,
) -> Result<Option<Value>, CloudSetupError> {
    if let Some(known) = &target.known
        && let Some(application) = find_one(admin, "applications", "appId", &known.client_id)
            .await
            .map_err(step("looking for this installation's dirsync app"))?
    {
        return Ok(Some(application));
    }
    let Some(application) = find_one(admin, "applications", "displayName", target.display_name)
        .await
        .map_err(step("looking for an earlier dirsync app"))?
    else {
        return Ok(None);
    };
    // https://learn.microsoft.com/en-us/graph/api/user-get?view=graph-rest-1.0 (GET /me)
    let me = admin
        .send(&GraphRequest::get(&["me"]).with_query("$select", "id,userPrincipalName"))
        .await
        .map_err(step("reading the signed-in administrator"))?
        .unwrap_or(Value::Null);
    let my_id = text(&me, "id");
    // https://learn.microsoft.com/en-us/graph/api/application-list-owners?view=graph-rest-1.0
    // (owners are users or service principals: each comes with its type's default properties)
    let owners = admin
        .send(&GraphRequest::get(&[
            "applications",
            &text(&application, "id"),
            "owners",
        ]))
        .await
        .map_err(step("reading the owners of the app found by name"))?
        .unwrap_or(Value::Null);
    let others: Vec<String> = owners
        .get("value")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|owner| text(owner, "id") != my_id)
        .map(|owner| {
            let name = ["userPrincipalName", "displayName", "appId"]
                .iter()
                .map(|field| text(owner, field))
                .find(|name| !name.is_empty())
                .unwrap_or_else(|| "an object setup may not read".to_owned());
            format!("{name} ({})", text(owner, "id"))
        })
        .collect();
    if others.is_empty() {
        Ok(Some(application))
    } else {
        Err(CloudSetupError::AppOwnedByOthers {
            display_name: target.display_name.to_owned(),
            client_id: text(&application, "appId"),
            owners: others.join(", "),
        })
    }
}

/// Signs in as the new app and reads the domains, retrying while Entra replicates the new app.
async fn prove_app(
    target: &SyncAppTarget<'_>,
    client_id: &str,
    credentials: Credentials,
) -> Result<(), CloudSetupError> {
    let started = Instant::now();
    let not_proven = |source: GraphError| CloudSetupError::NotProven {
        client_id: client_id.to_owned(),
        waited_secs: started.elapsed().as_secs(),
        source,
    };
    let policy = FlowPolicy {
        give_up_after: Duration::from_secs(30),
        ..FlowPolicy::default()
    };
    let app = GraphClient::new(
        target.endpoints,
        target.tenant_id,
        credentials,
        target.trust,
        policy,
    )
    .map_err(|error| match error {
        super::graph::GraphSetupError::SignIn(error) => not_proven(GraphError::SignIn(error)),
        super::graph::GraphSetupError::Tls(error) => not_proven(GraphError::NotGraph {
            url: target.endpoints.graph.to_string(),
            what: error.to_string(),
        }),
    })?;
    loop {
        let Err(error) = verified_domains(&app).await else {
            return Ok(());
        };
        let replicating = matches!(
            error,
            GraphError::SignIn(SignInError::UnknownApplication { .. })
                | GraphError::SignIn(SignInError::WrongSecret { .. })
                | GraphError::SignIn(SignInError::CertificateRefused { .. })
                | GraphError::Forbidden { .. }
                | GraphError::Unauthorized { .. }
        );
        if !replicating || started.elapsed() >= target.proof_timeout {
            return Err(not_proven(error));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Turns on directory synchronization for the tenant (a no-op when it is on).
/// https://learn.microsoft.com/en-us/graph/api/organization-update?view=graph-rest-1.0
pub async fn enable_directory_sync(
    admin: &GraphClient,
    tenant: &TenantInfo,
) -> Result<bool, CloudSetupError> {
    if tenant.directory_sync_enabled {
        return Ok(false);
    }
    admin
        .send(
            &GraphRequest::new(Method::Patch, &["organization", &tenant.tenant_id])
                .with_body(json!({ "onPremisesSyncEnabled": true })),
        )
        .await
        .map_err(step("turning on directory synchronization"))?;
    Ok(true)
}

/// Sets the tenant's directory synchronization features (for example `passwordSyncEnabled`).
/// Graph allows this only to a signed-in administrator.
/// https://learn.microsoft.com/en-us/graph/api/onpremisesdirectorysynchronization-update?view=graph-rest-1.0
pub async fn set_sync_features(
    admin: &GraphClient,
    features: &[(&str, bool)],
) -> Result<(), CloudSetupError> {
    let answer = admin
        .send(&GraphRequest::get(&[
            "directory",
            "onPremisesSynchronization",
        ]))
        .await
        .map_err(step("reading the directory synchronization settings"))?
        .unwrap_or(Value::Null);
    let id = answer
        .get("value")
        .and_then(Value::as_array)
        .and_then(|values| values.first())
        .map(|value| text(value, "id"))
        .unwrap_or_default();
    let features: serde_json::Map<String, Value> = features
        .iter()
        .map(|(name, on)| ((*name).to_owned(), Value::Bool(*on)))
        .collect();
    admin
        .send(
            &GraphRequest::new(
                Method::Patch,
                &["directory", "onPremisesSynchronization", &id],
            )
            .with_body(json!({ "features": features })),
        )
        .await
        .map_err(step("changing the directory synchronization features"))?;
    Ok(())
}

/// dirsync's app as `config.toml` names it (by its appId): its object id and display name, or
/// `None` when it is gone.
pub async fn find_sync_app(
    admin: &GraphClient,
    client_id: &str,
) -> Result<Option<(String, String)>, CloudSetupError> {
    Ok(find_one(admin, "applications", "appId", client_id)
        .await
        .map_err(step("looking for this installation's dirsync app"))?
        .map(|application| (text(&application, "id"), text(&application, "displayName"))))
}

/// Deletes dirsync's app by its object id; its service principal, credentials and role
/// assignments go with it (Entra keeps the app 30 days in deleted items). A 404 means another
/// attempt deleted it already, and counts as done.
/// https://learn.microsoft.com/en-us/graph/api/application-delete?view=graph-rest-1.0
pub async fn delete_sync_app(
    admin: &GraphClient,
    application_id: &str,
) -> Result<(), CloudSetupError> {
    match admin
        .send(&GraphRequest::new(
            Method::Delete,
            &["applications", application_id],
        ))
        .await
    {
        Ok(_) | Err(GraphError::NotFound { .. }) => Ok(()),
        Err(error) => Err(CloudSetupError::Graph {
            step: "deleting the sync app",
            source: error,
        }),
    }
}

/// The request that clears one user's `onPremisesImmutableId`, so that no later sync
/// hard-matches it: an ordinary cloud account (sent in `$batch`es; a 404 means the user is gone).
/// https://learn.microsoft.com/en-us/graph/api/user-update?view=graph-rest-1.0
pub fn clear_immutable_id_request(user_id: &str) -> GraphRequest {
    GraphRequest::new(Method::Patch, &["users", user_id])
        .with_body(json!({ "onPremisesImmutableId": null }))
}

async fn find_one(
    admin: &GraphClient,
    collection: &str,
    property: &str,
    value: &str,
) -> Result<Option<Value>, GraphError> {
    let request = GraphRequest::get(&[collection])
        .with_query("$filter", &format!("{property} eq {}", odata_string(value)));
    let answer = admin.send(&request).await?.unwrap_or(Value::Null);
    Ok(answer
        .get("value")
        .and_then(Value::as_array)
        .and_then(|values| values.first())
        .cloned())
}

fn app_role_id(service_principal: &Value, permission: &str) -> Option<String> {
    service_principal
        .get("appRoles")?
        .as_array()?
        .iter()
        .find(|role| {
            text(role, "value") == permission
                && role
                    .get("allowedMemberTypes")
                    .and_then(Value::as_array)
                    .is_some_and(|types| types.iter().any(|t| t == "Application"))
        })
        .map(|role| text(role, "id"))
}

fn text(value: &Value, name: &str) -> String {
    value
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_roles_are_found_by_permission_name() {
        let graph = json!({"appRoles": [
            {"id": "r1", "value": "User.ReadWrite.All", "allowedMemberTypes": ["Application"]},
            {"id": "d1", "value": "Domain.Read.All", "allowedMemberTypes": ["User"]},
        ]});
        assert_eq!(
            app_role_id(&graph, "User.ReadWrite.All").as_deref(),
            Some("r1")
        );
        // A delegated-only role is not an application permission.
        assert_eq!(app_role_id(&graph, "Domain.Read.All"), None);
    }

    #[test]
    fn the_secret_key_names_the_app() {
        assert_eq!(client_secret_key("ABC-1"), "cloud-app-secret:abc-1");
    }
}

/// A directory extension the sync rules write: its short name and the object types it is for
/// (`User`, `Group`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedExtension {
    pub name: String,
    pub target_objects: Vec<&'static str>,
}

/// Registers on the sync app (its application object id) each directory extension the sync
/// rules write that it does not have yet, as String properties; returns the names registered
/// now. Listed first, so that a setup run again registers nothing twice; a POST whose answer
/// was lost and then refused as a duplicate is found by listing again.
/// https://learn.microsoft.com/en-us/graph/api/application-post-extensionproperty?view=graph-rest-1.0
pub async fn register_directory_extensions(
    admin: &GraphClient,
    application_id: &str,
    client_id: &str,
    wanted: &[WantedExtension],
) -> Result<Vec<String>, CloudSetupError> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let prefix = format!("extension_{}_", client_id.replace('-', ""));
    let registered = |listed: &Option<Value>| -> Vec<String> {
        listed
            .as_ref()
            .and_then(|listed| listed.get("value"))
            .and_then(Value::as_array)
            .map(|properties| {
                properties
                    .iter()
                    .filter_map(|property| property.get("name").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let list = GraphRequest::get(&["applications", application_id, "extensionProperties"]);
    let listed = admin
        .send(&list)
        .await
        .map_err(step("reading the sync app's directory extensions"))?;
    let existing = registered(&listed);
    let mut made = Vec::new();
    for extension in wanted {
        let full_name = format!("{prefix}{}", extension.name);
        if existing
            .iter()
            .any(|name| name.eq_ignore_ascii_case(&full_name))
        {
            continue;
        }
        let body = json!({
            "name": extension.name,
            "dataType": "String",
            "targetObjects": extension.target_objects,
        });
        let posted = admin
            .send(
                &GraphRequest::new(
                    Method::Post,
                    &["applications", application_id, "extensionProperties"],
                )
                .with_body(body),
            )
            .await;
        if let Err(error) = posted {
            let now = admin
                .send(&list)
                .await
                .map_err(step("reading the sync app's directory extensions"))?;
            if !registered(&now)
                .iter()
                .any(|name| name.eq_ignore_ascii_case(&full_name))
            {
                return Err(CloudSetupError::Graph {
                    step: "registering a directory extension on the sync app",
                    source: error,
                });
            }
        }
        made.push(full_name);
    }
    Ok(made)
}
