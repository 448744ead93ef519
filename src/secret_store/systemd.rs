//! systemd credentials: how `dirsync service` gets its secrets back after a reboot.
//!
//! Setup, run as root, encrypts each secret with `systemd-creds encrypt` (the host key in
//! `/var/lib/systemd/credential.secret`, sealed to the TPM2 too where one is present) into the
//! home's `credentials/` directory, one file per credential, mode 0600. The packaged unit names
//! them with `LoadCredentialEncrypted=`; systemd decrypts them when it starts the service and
//! hands them over in `$CREDENTIALS_DIRECTORY`, readable only by the unit's user. A root process
//! started by hand (`dirsync sync` after a reboot) decrypts them itself.
//!
//! A credential holds a small JSON document, `{"key": …, "secret": …}`: the key says which
//! secret it is (which app's, which account's), so a stale credential is never taken for the
//! current one.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{SecretStoreError, restore_advice};
use crate::secret::Secret;

/// The environment variable systemd sets to the directory of the unit's credentials.
pub const CREDENTIALS_DIRECTORY_ENV: &str = "CREDENTIALS_DIRECTORY";

/// The systemd tool that encrypts and decrypts credentials.
const SYSTEMD_CREDS: &str = "systemd-creds";

/// A credential's name, as the unit's `LoadCredentialEncrypted=` names it: one per secret the
/// service needs, whatever its form: `dirsync-cloud-app` (the app's certificate key, or an
/// existing app's client secret) and `dirsync-ad-service-account`.
pub fn credential_name(key: &str) -> String {
    let kind: String = key
        .split(':')
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if kind.starts_with("cloud-app") {
        "dirsync-cloud-app".to_owned()
    } else {
        format!("dirsync-{kind}")
    }
}

/// What a credential holds, as written.
#[derive(Serialize)]
struct Content<'a> {
    key: &'a str,
    secret: &'a str,
}

/// What a credential holds, as read (owned: a PEM key's line breaks arrive escaped).
#[derive(Deserialize)]
struct ReadContent {
    key: String,
    secret: String,
}

/// An installation's systemd credentials.
#[derive(Debug, Clone)]
pub struct ServiceCredentials {
    /// Where the encrypted credentials are kept (the home's `credentials/`).
    dir: PathBuf,
    /// Where systemd handed the decrypted credentials to this process, if it did.
    handed: Option<PathBuf>,
    /// `systemd-creds`, when it is on this host.
    tool: Option<PathBuf>,
    /// The host key is root's: only root can encrypt and decrypt.
    is_root: bool,
}

impl ServiceCredentials {
    /// The credentials kept in `dir`, as this process may use them.
    pub fn from_environment(dir: &Path) -> ServiceCredentials {
        ServiceCredentials {
            dir: dir.to_owned(),
            handed: std::env::var_os(CREDENTIALS_DIRECTORY_ENV)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from),
            tool: find_on_path(SYSTEMD_CREDS),
            is_root: rustix::process::geteuid().is_root(),
        }
    }

    /// Whether this process can write encrypted credentials (as root, with `systemd-creds`).
    pub fn can_encrypt(&self) -> bool {
        self.is_root && self.tool.is_some()
    }

    /// Why this process writes no service credentials, for setup to say; `None` when it does.
    pub fn why_not(&self) -> Option<String> {
        if self.can_encrypt() {
            None
        } else if self.tool.is_none() {
            Some(format!(
                "this host has no {SYSTEMD_CREDS} (Debian's systemd package), so the secrets are only in the OS keyring, which a reboot empties; install systemd and run setup again for a service that survives a reboot"
            ))
        } else {
            Some(
                "setup did not run as root, so the secrets are only in this user's OS keyring, which a reboot empties; run setup as root for `dirsync service` to survive a reboot (systemd credentials)".to_owned(),
            )
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn handed_dir(&self) -> Option<&Path> {
        self.handed.as_deref()
    }

    /// The encrypted file of `key`'s credential.
    pub fn path_of(&self, key: &str) -> PathBuf {
        self.dir.join(credential_name(key))
    }

    pub fn places(&self, key: &str) -> Vec<String> {
        vec![format!(
            "the systemd credential {} (encrypted with this host's key)",
            self.path_of(key).display()
        )]
    }

    fn error(&self, key: &str, operation: &'static str, reason: String) -> SecretStoreError {
        SecretStoreError::Credential {
            name: credential_name(key),
            path: self.path_of(key).display().to_string(),
            operation,
            reason,
            restore: restore_advice(),
        }
    }

    /// Encrypts `secret` into `key`'s credential file, replacing it whole (a temporary file
    /// renamed over the old one), mode 0600.
    pub fn save(&self, key: &str, secret: &Secret) -> Result<(), SecretStoreError> {
        let Some(tool) = &self.tool else {
            return Err(self.error(key, "written", format!("{SYSTEMD_CREDS} is not installed")));
        };
        let failed = |reason: String| self.error(key, "written", reason);
        create_private_dir(&self.dir).map_err(|error| failed(error.to_string()))?;
        let path = self.path_of(key);
        let temporary = path.with_extension("new");
        let content = Zeroizing::new(
            serde_json::to_string(&Content {
                key,
                secret: secret.expose(),
            })
            .map_err(|error| failed(error.to_string()))?,
        );
        let mut child = Command::new(tool)
            .arg("encrypt")
            .arg(format!("--name={}", credential_name(key)))
            .arg("-")
            .arg(&temporary)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| failed(format!("cannot run {SYSTEMD_CREDS}: {error}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(content.as_bytes())
                .map_err(|error| failed(format!("cannot write to {SYSTEMD_CREDS}: {error}")))?;
        }
        let output = child
            .wait_with_output()
            .map_err(|error| failed(format!("{SYSTEMD_CREDS} failed: {error}")))?;
        if !output.status.success() {
            let _ = std::fs::remove_file(&temporary);
            return Err(failed(format!(
                "{SYSTEMD_CREDS} encrypt failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        set_owner_only(&temporary).map_err(|error| failed(error.to_string()))?;
        std::fs::rename(&temporary, &path).map_err(|error| failed(error.to_string()))
    }

    /// `key`'s secret from the credentials systemd handed this process, if it holds that key.
    pub fn load_handed(&self, key: &str) -> Result<Option<Secret>, SecretStoreError> {
        let Some(dir) = &self.handed else {
            return Ok(None);
        };
        let path = dir.join(credential_name(key));
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(SecretStoreError::Credential {
                    name: credential_name(key),
                    path: path.display().to_string(),
                    operation: "read",
                    reason: error.to_string(),
                    restore: restore_advice(),
                });
            }
        };
        self.parse(key, &bytes)
    }

    /// `key`'s secret decrypted from its credential file: only root may use the host key, so
    /// for anyone else (and where there is no file) `None`.
    pub fn load_encrypted(&self, key: &str) -> Result<Option<Secret>, SecretStoreError> {
        let path = self.path_of(key);
        let Some(tool) = self.tool.as_ref().filter(|_| self.is_root) else {
            return Ok(None);
        };
        if !path.is_file() {
            return Ok(None);
        }
        let output = Command::new(tool)
            .arg("decrypt")
            .arg(format!("--name={}", credential_name(key)))
            .arg(&path)
            .arg("-")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|error| self.error(key, "decrypted", error.to_string()))?;
        let stdout = Zeroizing::new(output.stdout);
        if !output.status.success() {
            return Err(self.error(
                key,
                "decrypted",
                format!(
                    "{SYSTEMD_CREDS} decrypt failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            ));
        }
        self.parse(key, &stdout)
    }

    /// Removes `key`'s credential file when it holds that key (another installation's secret
    /// of the same kind is left alone).
    pub fn remove(&self, key: &str) -> Result<(), SecretStoreError> {
        if self.load_encrypted(key)?.is_some() {
            std::fs::remove_file(self.path_of(key))
                .map_err(|error| self.error(key, "removed", error.to_string()))?;
        }
        Ok(())
    }

    fn parse(&self, key: &str, bytes: &[u8]) -> Result<Option<Secret>, SecretStoreError> {
        let content: ReadContent = serde_json::from_slice(bytes).map_err(|_| {
            // serde's message could quote the content: say only what is wrong.
            self.error(
                key,
                "read",
                "it is not a credential dirsync wrote (not its JSON document)".to_owned(),
            )
        })?;
        let secret = Secret::new(content.secret);
        Ok((content.key == key).then_some(secret))
    }
}

/// The directory, created with mode 0700 if missing.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

fn set_owner_only(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

fn find_on_path(command: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(command))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_names_follow_the_key_kind() {
        assert_eq!(
            credential_name("cloud-app-secret:1234"),
            "dirsync-cloud-app"
        );
        assert_eq!(
            credential_name("cloud-app-certificate:1234"),
            "dirsync-cloud-app"
        );
        assert_eq!(
            credential_name("ad-service-account:cn=msol_1,cn=users,dc=x"),
            "dirsync-ad-service-account"
        );
    }

    #[test]
    fn a_credential_of_another_key_is_not_taken() {
        let dir = tempfile::tempdir().expect("dir");
        let handed = dir.path().join("handed");
        std::fs::create_dir(&handed).expect("dir");
        std::fs::write(
            handed.join("dirsync-cloud-app"),
            r#"{"key":"cloud-app-secret:old","secret":"s3cret\nline two"}"#,
        )
        .expect("write");
        let credentials = ServiceCredentials {
            dir: dir.path().join("credentials"),
            handed: Some(handed.clone()),
            tool: None,
            is_root: false,
        };
        assert_eq!(
            credentials
                .load_handed("cloud-app-secret:old")
                .expect("reads")
                .map(|secret| secret.expose().to_owned()),
            Some("s3cret\nline two".to_owned())
        );
        assert!(
            credentials
                .load_handed("cloud-app-secret:new")
                .expect("reads")
                .is_none()
        );
        std::fs::write(handed.join("dirsync-ad-service-account"), "garbage s3cret").expect("write");
        let error = credentials
            .load_handed("ad-service-account:x")
            .expect_err("not JSON")
            .to_string();
        assert!(error.contains("dirsync-ad-service-account"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
    }
}
