//! The operating system's keyring, through the `keyring` crate: on Linux the kernel's keyutils
//! store (the user's persistent keyring).

use super::{KEYRING_SERVICE, SecretStore, SecretStoreError};
use crate::secret::Secret;

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
    SecretStoreError::Keyring {
        operation,
        key: key.to_owned(),
        reason: error.to_string(),
    }
}
