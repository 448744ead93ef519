//! Where dirsync keeps the secrets it must remember (the sync app's credential, the service
//! account's password), never in a plain file:
//!
//! - the OS keyring ([`OsKeyring`], service name `dirsync`), for the desktop and for whoever ran
//!   setup: the desktop's Secret Service where the session offers one (it survives a reboot),
//!   else the kernel's keyutils store, which is empty after a reboot;
//! - systemd credentials ([`ServiceCredentials`]), for `dirsync service`: encrypted at rest by
//!   `systemd-creds` with the host's key (and the TPM2 where there is one), in the home's
//!   `credentials/` directory, handed to the service decrypted by systemd
//!   (`LoadCredentialEncrypted=`, `$CREDENTIALS_DIRECTORY`), readable only by the service's user.
//!
//! [`SystemSecrets`] is the two together: what every command and the window use. See the README,
//! "Secrets and the service".

mod keyring;
mod secret_service;
mod systemd;

use std::path::Path;

use crate::secret::Secret;

pub use self::keyring::OsKeyring;
pub use self::systemd::{CREDENTIALS_DIRECTORY_ENV, ServiceCredentials, credential_name};

/// The keyring service name every dirsync secret is filed under.
pub const KEYRING_SERVICE: &str = "dirsync";

#[derive(Debug, thiserror::Error)]
pub enum SecretStoreError {
    #[error(
        "{keyring} could not {operation} the secret '{key}': {reason}; check that it is available to this user (the kernel keyring: `keyctl show @u`; the desktop keyring: `secret-tool search service dirsync`)"
    )]
    Keyring {
        /// Which keyring: the desktop's or the kernel's.
        keyring: &'static str,
        operation: &'static str,
        key: String,
        reason: String,
    },
    #[error(
        "the service credential '{name}' ({path}) could not be {operation}: {reason}; {restore}"
    )]
    Credential {
        name: String,
        path: String,
        operation: &'static str,
        reason: String,
        restore: String,
    },
}

/// A place to keep secrets by name.
pub trait SecretStore: Send + Sync {
    fn save(&self, key: &str, secret: &Secret) -> Result<(), SecretStoreError>;
    /// `None` when there is no such secret.
    fn load(&self, key: &str) -> Result<Option<Secret>, SecretStoreError>;
    /// Removing a secret that is not there is not an error.
    fn remove(&self, key: &str) -> Result<(), SecretStoreError>;
    /// Where `save` puts the secret, in words, for setup's report.
    fn places(&self, key: &str) -> Vec<String> {
        vec![format!("the OS keyring (entry '{key}')")]
    }
    /// Why a service started after a reboot would not find what `save` keeps, if it would not.
    fn reboot_warning(&self) -> Option<String> {
        None
    }
    /// The error a run reports when `key` (`what`) is not here: where it looked, how to restore.
    fn missing(&self, what: &str, key: &str) -> String {
        format!(
            "{what} is not in the OS keyring (entry '{key}'). {}",
            restore_advice()
        )
    }
}

/// The OS keyring, and systemd credentials beside it when this process can make them (as root,
/// with `systemd-creds`) or was handed them (`$CREDENTIALS_DIRECTORY`).
#[derive(Debug, Clone)]
pub struct SystemSecrets {
    keyring: OsKeyring,
    service: ServiceCredentials,
}

impl SystemSecrets {
    /// The secrets of the installation whose home holds `credentials_dir`.
    pub fn for_home(credentials_dir: &Path) -> SystemSecrets {
        SystemSecrets {
            keyring: OsKeyring,
            service: ServiceCredentials::from_environment(credentials_dir),
        }
    }

    pub fn service_credentials(&self) -> &ServiceCredentials {
        &self.service
    }
}

impl SecretStore for SystemSecrets {
    /// Into the keyring, and into an encrypted service credential when this process may make
    /// one; either failing is an error (setup must not report a place it did not fill).
    fn save(&self, key: &str, secret: &Secret) -> Result<(), SecretStoreError> {
        self.keyring.save(key, secret)?;
        if self.service.can_encrypt() {
            self.service.save(key, secret)?;
        }
        Ok(())
    }

    /// What systemd handed the service first, then the keyring, then (as root) the encrypted
    /// credential on disk: a reboot empties the kernel keyring but not the credentials.
    fn load(&self, key: &str) -> Result<Option<Secret>, SecretStoreError> {
        if let Some(secret) = self.service.load_handed(key)? {
            return Ok(Some(secret));
        }
        if let Some(secret) = self.keyring.load(key)? {
            return Ok(Some(secret));
        }
        self.service.load_encrypted(key)
    }

    fn remove(&self, key: &str) -> Result<(), SecretStoreError> {
        self.keyring.remove(key)?;
        if self.service.can_encrypt() {
            self.service.remove(key)?;
        }
        Ok(())
    }

    fn missing(&self, what: &str, key: &str) -> String {
        self.missing_message(what, key)
    }

    fn reboot_warning(&self) -> Option<String> {
        self.service.why_not()
    }

    fn places(&self, key: &str) -> Vec<String> {
        let mut places = self.keyring.places(key);
        if self.service.can_encrypt() {
            places.extend(self.service.places(key));
        }
        places
    }
}

impl SystemSecrets {
    /// Where a missing secret was looked for, and how to restore it, for the error a run reports.
    fn missing_message(&self, what: &str, key: &str) -> String {
        let mut looked = Vec::new();
        if let Some(dir) = self.service.handed_dir() {
            looked.push(format!(
                "systemd's credentials ({}/{})",
                dir.display(),
                credential_name(key)
            ));
        }
        looked.push(format!("{} (entry '{key}')", self.keyring.name()));
        looked.push(format!(
            "the encrypted service credential {}",
            self.service.path_of(key).display()
        ));
        format!(
            "{what} is missing: dirsync looked in {}. {}",
            looked.join(", "),
            restore_advice()
        )
    }
}

/// How to put the secrets back: setup makes new ones (a new service account password and app
/// credential) and stores them where the service finds them.
pub fn restore_advice() -> String {
    "Restore it by running setup again on this computer as root (`sudo dirsync --home HOME setup --answers FILE`, or the wizard's Configure…): it makes new secrets and stores them in the OS keyring and as systemd credentials".to_owned()
}

/// The keyring key of an AD service account's password, by the account's DN.
pub fn service_account_key(account_dn: &str) -> String {
    format!("ad-service-account:{}", account_dn.to_ascii_lowercase())
}
