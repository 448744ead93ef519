//! The operating system's keyring: the desktop's Secret Service where the session offers one
//! (it survives a reboot), else the kernel's keyutils store through the `keyring` crate (the
//! user's persistent keyring, empty after a reboot). See the README, "Secrets and the service".

use std::sync::OnceLock;

use super::secret_service::SecretService;
use super::{KEYRING_SERVICE, SecretStore, SecretStoreError};
use crate::secret::Secret;

/// The operating system's keyring.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsKeyring;

/// The environment variable naming the session bus, set in a desktop session.
const SESSION_BUS_ENV: &str = "DBUS_SESSION_BUS_ADDRESS";

const DESKTOP: &str = "the desktop keyring (Secret Service)";
const KERNEL: &str = "the kernel keyring";

/// The session's Secret Service, looked for once per process: only where the session names its
/// bus (a desktop session; not `sudo`, not the service), and only if its default collection is
/// unlocked.
fn desktop() -> Option<&'static SecretService> {
    static DESKTOP_KEYRING: OnceLock<Option<SecretService>> = OnceLock::new();
    DESKTOP_KEYRING
        .get_or_init(|| {
            let address = std::env::var(SESSION_BUS_ENV).ok()?;
            match SecretService::connect(&address) {
                Ok(service) => Some(service),
                Err(reason) => {
                    tracing::info!(%reason, "no desktop keyring; secrets go to the kernel keyring");
                    None
                }
            }
        })
        .as_ref()
}

impl OsKeyring {
    /// Which keyring this process uses, in words.
    pub fn name(&self) -> &'static str {
        if desktop().is_some() { DESKTOP } else { KERNEL }
    }
}

impl SecretStore for OsKeyring {
    fn save(&self, key: &str, secret: &Secret) -> Result<(), SecretStoreError> {
        match desktop() {
            Some(service) => service
                .save(key, secret)
                .map_err(|reason| failure(DESKTOP, "save", key, reason)),
            None => kernel::save(key, secret),
        }
    }

    /// From the desktop keyring; a secret saved before there was one (setup over SSH, say) is
    /// read from the kernel keyring and moved to the desktop's.
    fn load(&self, key: &str) -> Result<Option<Secret>, SecretStoreError> {
        let Some(service) = desktop() else {
            return kernel::load(key);
        };
        if let Some(secret) = service
            .load(key)
            .map_err(|reason| failure(DESKTOP, "read", key, reason))?
        {
            return Ok(Some(secret));
        }
        let Some(secret) = kernel::load(key)? else {
            return Ok(None);
        };
        match service.save(key, &secret) {
            Ok(()) => {
                if let Err(error) = kernel::remove(key) {
                    tracing::warn!(%error, "the secret is in the desktop keyring now, but its old copy stays in the kernel keyring");
                }
            }
            Err(reason) => {
                tracing::warn!(%reason, key, "the secret stays in the kernel keyring");
            }
        }
        Ok(Some(secret))
    }

    /// From both keyrings, so that no old copy stays behind.
    fn remove(&self, key: &str) -> Result<(), SecretStoreError> {
        if let Some(service) = desktop() {
            service
                .remove(key)
                .map_err(|reason| failure(DESKTOP, "remove", key, reason))?;
        }
        kernel::remove(key)
    }

    fn places(&self, key: &str) -> Vec<String> {
        vec![format!("{} (entry '{key}')", self.name())]
    }

    fn missing(&self, what: &str, key: &str) -> String {
        format!(
            "{what} is not in {} (entry '{key}'). {}",
            self.name(),
            super::restore_advice()
        )
    }
}

/// The kernel's keyutils store, through the `keyring` crate.
mod kernel {
    use super::{KERNEL, KEYRING_SERVICE, Secret, SecretStoreError, failure};

    fn entry(operation: &'static str, key: &str) -> Result<keyring::Entry, SecretStoreError> {
        keyring::Entry::new(KEYRING_SERVICE, key)
            .map_err(|error| failure(KERNEL, operation, key, error.to_string()))
    }

    pub fn save(key: &str, secret: &Secret) -> Result<(), SecretStoreError> {
        entry("save", key)?
            .set_password(secret.expose())
            .map_err(|error| failure(KERNEL, "save", key, error.to_string()))
    }

    pub fn load(key: &str) -> Result<Option<Secret>, SecretStoreError> {
        match entry("read", key)?.get_password() {
            Ok(value) => Ok(Some(Secret::new(value))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(error) => Err(failure(KERNEL, "read", key, error.to_string())),
        }
    }

    pub fn remove(key: &str) -> Result<(), SecretStoreError> {
        match entry("remove", key)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(error) => Err(failure(KERNEL, "remove", key, error.to_string())),
        }
    }
}

/// The keyrings' errors describe the store, never the secret itself.
fn failure(
    keyring: &'static str,
    operation: &'static str,
    key: &str,
    reason: String,
) -> SecretStoreError {
    SecretStoreError::Keyring {
        keyring,
        operation,
        key: key.to_owned(),
        reason,
    }
}
