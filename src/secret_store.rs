//! Where dirsync keeps secrets it must remember: the OS keyring (service name `dirsync`), never a
//! file. On Linux that is the kernel's keyutils store (the user's persistent keyring).

use crate::secret::Secret;

/// The keyring service name every dirsync secret is filed under.
pub const KEYRING_SERVICE: &str = "dirsync";

#[derive(Debug, thiserror::Error)]
#[error(
    "the OS keyring could not {operation} the secret '{key}': {reason}; dirsync keeps secrets only in the keyring, so check that one is available to this user (on Linux, the kernel keyring: `keyctl show @u`)"
)]
pub struct SecretStoreError {
    operation: &'static str,
    key: String,
    reason: String,
}

/// A place to keep secrets by name.
pub trait SecretStore: Send + Sync {
    fn save(&self, key: &str, secret: &Secret) -> Result<(), SecretStoreError>;
    /// `None` when there is no such secret.
    fn load(&self, key: &str) -> Result<Option<Secret>, SecretStoreError>;
    /// Removing a secret that is not there is not an error.
    fn remove(&self, key: &str) -> Result<(), SecretStoreError>;
}

/// The operating system's keyring.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsKeyring;

impl OsKeyring {
    fn entry(operation: &'static str, key: &str) -> Result<keyring::Entry, SecretStoreError> {
        keyring::Entry::new(KEYRING_SERVICE, key).map_err(|error| failure(operation, key, &error))
    }
}

impl SecretStore for OsKeyring {
    fn save(&self, key: &str, secret: &Secret) -> Result<(), SecretStoreError> {
        Self::entry("save", key)?
            .set_password(secret.expose())
            .map_err(|error| failure("save", key, &error))
    }

    fn load(&self, key: &str) -> Result<Option<Secret>, SecretStoreError> {
        match Self::entry("read", key)?.get_password() {
            Ok(value) => Ok(Some(Secret::new(value))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(error) => Err(failure("read", key, &error)),
        }
    }

    fn remove(&self, key: &str) -> Result<(), SecretStoreError> {
        match Self::entry("remove", key)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(error) => Err(failure("remove", key, &error)),
        }
    }
}

fn failure(operation: &'static str, key: &str, error: &keyring::Error) -> SecretStoreError {
    // keyring's errors describe the store, never the secret itself.
    SecretStoreError {
        operation,
        key: key.to_owned(),
        reason: error.to_string(),
    }
}

/// The keyring key of an AD service account's password, by the account's DN.
pub fn service_account_key(account_dn: &str) -> String {
    format!("ad-service-account:{}", account_dn.to_ascii_lowercase())
}
