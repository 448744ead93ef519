//! The directory half of setup, in the order that loses nothing: find or create the service
//! account with a new password, put the password in the OS keyring, grant exactly the rights the
//! options need, then sign in as the account to prove it can read changes.

use super::account_protection::Trustees;
use super::connection::{DirectoryConnection, DirectoryTarget};
use super::dn::Dn;
use super::error::DirectoryError;
use super::forest;
use super::import;
use super::permissions::{self, RightsPlan, RightsReport, WriteBackGrant};
use super::service_account::{self, AccountOutcome, KnownAccount, ServiceAccount};
use super::sid::Sid;
use crate::secret_store::{SecretStore, SecretStoreError, service_account_key};

/// The options that decide the service account's rights.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryOptions {
    /// Replicating Directory Changes All: only when the password hash source reads as the
    /// service account (Samba's privileged socket does not).
    pub replicate_secrets: bool,
    /// Hybrid write-back on: the included and excluded OUs of the sync scope.
    pub write_back_scope: Option<(Vec<Dn>, Vec<Dn>)>,
    /// The source anchor written back (README, "The source anchor"): the included and excluded
    /// OUs of the sync scope.
    pub source_anchor_scope: Option<(Vec<Dn>, Vec<Dn>)>,
}

/// What setup did, for the wizard and the answers-file report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectorySetup {
    pub account: ServiceAccount,
    pub outcome: AccountOutcome,
    /// The existing account had other permissions than the protected ones; setup replaced them.
    pub protection_restored: bool,
    /// The keyring entry holding the account's password.
    pub keyring_key: String,
    pub rights: RightsReport,
    /// Write-back attributes the forest's schema lacks (write-back skips them).
    pub write_back_skipped: Vec<String>,
    /// Set when the account cannot see deletions: what to run on a domain controller.
    pub deleted_objects_advice: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Keyring(#[from] SecretStoreError),
}

/// Where setup works: the domain, its forest, and this installation.
#[derive(Debug, Clone)]
pub struct DirectorySite<'a> {
    pub domain: &'a Dn,
    pub root_domain_naming_context: &'a str,
    pub schema_naming_context: &'a str,
    pub computer: &'a str,
    /// The account an earlier setup of this installation made (from `config.toml`).
    pub known_account: KnownAccount,
}

/// Sets up the service account on `site.domain` for this computer. `admin` is the enterprise
/// admin's connection; `target` is how the account will reach the directory.
pub async fn set_up_directory(
    admin: &DirectoryConnection,
    target: &DirectoryTarget,
    site: &DirectorySite<'_>,
    options: &DirectoryOptions,
    secrets: &dyn SecretStore,
) -> Result<DirectorySetup, SetupError> {
    let domain = site.domain;
    let schema_naming_context = site.schema_naming_context;
    let trustees = read_trustees(admin, domain, site.root_domain_naming_context).await?;
    let ensured = service_account::ensure_service_account(
        admin,
        domain,
        &trustees,
        site.computer,
        &site.known_account,
    )
    .await?;
    let service_account::EnsuredAccount {
        account,
        password,
        outcome,
        protection_restored,
    } = ensured;
    // The password was just set in AD: keep it before anything else can fail.
    let keyring_key = service_account_key(account.dn.as_str());
    secrets.save(&keyring_key, &password)?;

    let mut write_back_skipped = Vec::new();
    let write_back = match &options.write_back_scope {
        None => None,
        Some((included, excluded)) => {
            let (attributes, missing) =
                permissions::write_back_schema(admin, schema_naming_context).await?;
            write_back_skipped = missing;
            Some(WriteBackGrant {
                attributes,
                included: included.clone(),
                excluded: excluded.clone(),
            })
        }
    };
    let source_anchor = match &options.source_anchor_scope {
        None => None,
        Some((included, excluded)) => {
            let (attributes, _) = permissions::schema_attributes(
                admin,
                schema_naming_context,
                &[crate::directory::objects::CONSISTENCY_GUID],
            )
            .await?;
            if attributes.is_empty() {
                return Err(DirectoryError::UnexpectedReply {
                    server: target.server().to_owned(),
                    operation: "read the schema".to_owned(),
                    detail: "the forest's schema has no mS-DS-ConsistencyGuid (Windows Server 2003 and later have it)".to_owned(),
                }
                .into());
            }
            Some(WriteBackGrant {
                attributes,
                included: included.clone(),
                excluded: excluded.clone(),
            })
        }
    };
    let plan = RightsPlan {
        domain: domain.clone(),
        account: account.sid.clone(),
        replicate_secrets: options.replicate_secrets,
        write_back,
        source_anchor,
    };
    let rights = permissions::apply_rights(admin, &plan).await?;

    // Prove it: the account signs in with the stored password and reads a change cookie.
    let stored = secrets
        .load(&keyring_key)?
        .ok_or_else(|| DirectoryError::UnexpectedReply {
            server: "the OS keyring".to_owned(),
            operation: "read the service account's password back".to_owned(),
            detail: "the entry just saved is missing".to_owned(),
        })?;
    let service =
        DirectoryConnection::connect_and_bind(target, account.dn.as_str(), &stored).await?;
    import::current_cookie(&service, domain).await?;
    let deleted_objects_advice = if permissions::can_see_deleted_objects(&service, domain).await? {
        None
    } else {
        Some(permissions::deleted_objects_advice(
            domain,
            &account.sid,
            &account.sam_account_name,
        ))
    };
    service.close().await;

    Ok(DirectorySetup {
        account,
        outcome,
        protection_restored,
        keyring_key,
        rights,
        write_back_skipped,
        deleted_objects_advice,
    })
}

/// The domain's and the forest root's SIDs, which the account's protected descriptor names.
pub async fn read_trustees(
    admin: &DirectoryConnection,
    domain: &Dn,
    root_domain_naming_context: &str,
) -> Result<Trustees, DirectoryError> {
    Ok(Trustees {
        domain: read_object_sid(admin, domain.as_str()).await?,
        forest_root: read_object_sid(admin, root_domain_naming_context).await?,
    })
}

async fn read_object_sid(admin: &DirectoryConnection, dn: &str) -> Result<Sid, DirectoryError> {
    let entry = admin
        .read_entry("read the domain's SID", dn, &["objectSid"])
        .await?;
    forest::binary_values(&entry, "objectSid")
        .first()
        .and_then(|bytes| Sid::from_bytes(bytes).ok())
        .ok_or_else(|| DirectoryError::UnexpectedReply {
            server: admin.server().to_owned(),
            operation: "read the domain's SID".to_owned(),
            detail: format!("{dn} has no objectSid"),
        })
}
