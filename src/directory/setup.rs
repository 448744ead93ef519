//! The directory half of setup, in the order that loses nothing: find or create the service
//! account with a new password, put the password in the OS keyring, grant exactly the rights the
//! options need, then sign in as the account to prove it can read changes.

use super::connection::{DirectoryConnection, DirectoryTarget};
use super::dn::Dn;
use super::error::DirectoryError;
use super::import;
use super::permissions::{self, RightsPlan, RightsReport, WriteBackGrant};
use super::service_account::{self, AccountOutcome, ServiceAccount};
use crate::secret_store::{SecretStore, SecretStoreError, service_account_key};

/// The options that decide the service account's rights.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryOptions {
    pub password_hash_sync: bool,
    /// Hybrid write-back on: the included and excluded OUs of the sync scope.
    pub write_back_scope: Option<(Vec<Dn>, Vec<Dn>)>,
}

/// What setup did, for the wizard and the answers-file report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectorySetup {
    pub account: ServiceAccount,
    pub outcome: AccountOutcome,
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

/// Sets up the service account on `domain` for this `computer`. `admin` is the enterprise
/// admin's connection; `target` is how the account will reach the directory.
pub async fn set_up_directory(
    admin: &DirectoryConnection,
    target: &DirectoryTarget,
    domain: &Dn,
    schema_naming_context: &str,
    computer: &str,
    options: &DirectoryOptions,
    secrets: &dyn SecretStore,
) -> Result<DirectorySetup, SetupError> {
    let (account, password, outcome) =
        service_account::ensure_service_account(admin, domain, computer).await?;
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
    let plan = RightsPlan {
        domain: domain.clone(),
        account: account.sid.clone(),
        replicate_secrets: options.password_hash_sync,
        write_back,
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
        keyring_key,
        rights,
        write_back_skipped,
        deleted_objects_advice,
    })
}
