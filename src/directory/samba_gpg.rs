//! Samba's GPG-encrypted passwords (README, "Password sync through Microsoft Graph"): where
//! smb.conf says which keys Samba encrypts to, and the key on this host that decrypts them.
//!
//! With `password hash gpg key ids` in smb.conf's `[global]` section, a Samba DC keeps every new
//! password, encrypted to those OpenPGP keys, as the `Primary:SambaGPG` package of the user's
//! `supplementalCredentials` (`man smb.conf`). dirsync decrypts them through GnuPG's own library
//! (gpgme), with the secret key in a GnuPG home on the DC host; GnuPG's agent holds the key.
//!
//! A cleartext password lives only in a [`Cleartext`], overwritten when dropped, for as long as
//! one request to the cloud takes. gpgme's and gpg's own buffers are theirs to clear.

use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Where Debian's Samba keeps its configuration.
pub const SAMBA_CONFIG: &str = "/etc/samba/smb.conf";

/// The smb.conf parameter, as `man smb.conf` spells it.
pub const GPG_KEY_IDS_PARAMETER: &str = "password hash gpg key ids";

/// A user's password in clear. Never formatted; overwritten in memory when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Cleartext(Zeroizing<String>);

impl Cleartext {
    /// From the UTF-16LE form AD keeps (`Primary:CLEARTEXT`, and what `Primary:SambaGPG`
    /// encrypts). `None` if it is not UTF-16.
    pub fn from_utf16le(bytes: &[u8]) -> Option<Cleartext> {
        if !bytes.len().is_multiple_of(2) {
            return None;
        }
        let units: Zeroizing<Vec<u16>> = Zeroizing::new(
            bytes
                .chunks_exact(2)
                .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
                .collect(),
        );
        let mut text = Zeroizing::new(String::with_capacity(units.len()));
        for unit in char::decode_utf16(units.iter().copied()) {
            text.push(unit.ok()?);
        }
        Some(Cleartext(text))
    }

    /// For the request body only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Cleartext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cleartext(***)")
    }
}

/// What is wrong with the smb.conf option, said with the line to add and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SambaGpgOption {
    #[error(
        "cannot read {path} ({reason}); password sync through Microsoft Graph needs the Samba DC's smb.conf: set directory.samba_config to it"
    )]
    Unreadable { path: String, reason: String },
    #[error(
        "{path} does not set \"{GPG_KEY_IDS_PARAMETER}\", so Samba keeps no password dirsync could send: add the line `{GPG_KEY_IDS_PARAMETER} = <fingerprint of your key>` to its [global] section and restart samba; passwords set after that are kept encrypted to the key"
    )]
    Missing { path: String },
}

/// The key ids smb.conf's `[global]` section gives Samba to encrypt passwords to.
pub fn configured_key_ids(smb_conf: &Path) -> Result<Vec<String>, SambaGpgOption> {
    let path = smb_conf.display().to_string();
    let text = std::fs::read_to_string(smb_conf).map_err(|error| SambaGpgOption::Unreadable {
        path: path.clone(),
        reason: error.to_string(),
    })?;
    let ids = key_ids_in(&text);
    if ids.is_empty() {
        return Err(SambaGpgOption::Missing { path });
    }
    Ok(ids)
}

/// smb.conf's rules (`man smb.conf`, "FILE FORMAT"): sections in brackets, `name = value`,
/// names case-insensitive with spaces not significant, `#` and `;` start comments, a trailing
/// backslash continues a line. The value is a list separated by commas or spaces.
fn key_ids_in(text: &str) -> Vec<String> {
    let wanted = normalized_name(GPG_KEY_IDS_PARAMETER);
    let mut in_global = false;
    let mut found = Vec::new();
    let mut logical = String::new();
    for raw in text.lines() {
        if let Some(continued) = raw.strip_suffix('\\') {
            logical.push_str(continued);
            continue;
        }
        logical.push_str(raw);
        let line = std::mem::take(&mut logical);
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(section) = line.strip_prefix('[') {
            let name = section.trim_end_matches(']').trim();
            in_global = name.eq_ignore_ascii_case("global");
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if in_global && normalized_name(name) == wanted {
            found = value
                .split([',', ' ', '\t'])
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect();
        }
    }
    found
}

fn normalized_name(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Why a stored password could not be decrypted, or the key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    #[error(
        "GnuPG's library cannot start ({reason}); install gpg and gpg-agent (Debian: apt-get install --no-install-recommends gpg gpg-agent)"
    )]
    NoGnupg { reason: String },
    #[error(
        "the GnuPG home {home} has no secret key for {key_id}, which smb.conf's \"{GPG_KEY_IDS_PARAMETER}\" names; import it there (gpg --homedir {home} --import <secret key file>) or set directory.password_gpg_home to the home that has it"
    )]
    NoSecretKey { home: String, key_id: String },
    #[error(
        "the key {key_id} in {home} cannot decrypt ({reason}); a key protected by a passphrase cannot be used unattended: remove the passphrase (gpg --homedir {home} --passwd {key_id}) or give dirsync a key without one"
    )]
    CannotDecrypt {
        home: String,
        key_id: String,
        reason: String,
    },
    #[error(
        "a password Samba stored could not be decrypted with the keys in {home} ({reason}); it was encrypted to a key this host does not have"
    )]
    Undecryptable { home: String, reason: String },
    #[error("a decrypted password is not UTF-16 text")]
    NotText,
}

/// The GnuPG home with the key that decrypts Samba's stored passwords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GnupgKeyring {
    /// `None`: GnuPG's default (`$GNUPGHOME`, else `~/.gnupg`).
    home: Option<PathBuf>,
}

impl GnupgKeyring {
    pub fn new(home: Option<PathBuf>) -> GnupgKeyring {
        GnupgKeyring { home }
    }

    pub fn describe(&self) -> String {
        match &self.home {
            Some(home) => home.display().to_string(),
            None => "GnuPG's default home ($GNUPGHOME, else ~/.gnupg)".to_owned(),
        }
    }

    fn context(&self) -> Result<gpgme::Context, KeyProblem> {
        let no_gnupg = |error: gpgme::Error| KeyProblem::NoGnupg {
            reason: error.to_string(),
        };
        let mut context =
            gpgme::Context::from_protocol(gpgme::Protocol::OpenPgp).map_err(no_gnupg)?;
        if let Some(home) = &self.home {
            context
                .set_engine_home_dir(home.to_string_lossy().into_owned())
                .map_err(no_gnupg)?;
        }
        // Never wait for a passphrase prompt: a service has nobody to answer it.
        context
            .set_pinentry_mode(gpgme::PinentryMode::Loopback)
            .map_err(no_gnupg)?;
        Ok(context)
    }

    /// Proves each key can be used: its secret part is here, and a value encrypted to it
    /// decrypts. Blocking (GnuPG runs as a child process).
    pub fn check_keys(&self, key_ids: &[String]) -> Result<(), KeyProblem> {
        let home = self.describe();
        let mut context = self.context()?;
        for key_id in key_ids {
            let no_key = || KeyProblem::NoSecretKey {
                home: home.clone(),
                key_id: key_id.clone(),
            };
            context
                .get_secret_key(key_id.as_str())
                .map_err(|_| no_key())?;
            let key = context.get_key(key_id.as_str()).map_err(|_| no_key())?;
            let probe = b"dirsync: can this host decrypt Samba's passwords?";
            let mut encrypted = Vec::new();
            context.set_armor(true);
            context
                .encrypt_with_flags(
                    Some(&key),
                    &probe[..],
                    &mut encrypted,
                    gpgme::EncryptFlags::ALWAYS_TRUST,
                )
                .map_err(|error| KeyProblem::CannotDecrypt {
                    home: home.clone(),
                    key_id: key_id.clone(),
                    reason: error.to_string(),
                })?;
            let mut decrypted = Vec::new();
            let outcome = context.decrypt(&encrypted[..], &mut decrypted);
            if outcome.is_err() || decrypted != probe {
                return Err(KeyProblem::CannotDecrypt {
                    home: home.clone(),
                    key_id: key_id.clone(),
                    reason: outcome.err().map_or_else(
                        || "the value came back different".to_owned(),
                        |error| error.to_string(),
                    ),
                });
            }
        }
        Ok(())
    }

    /// Decrypts `Primary:SambaGPG` packages, one result per message in order. Blocking.
    pub fn decrypt_all(&self, messages: &[Vec<u8>]) -> Vec<Result<Cleartext, KeyProblem>> {
        let mut context = match self.context() {
            Ok(context) => context,
            Err(problem) => return messages.iter().map(|_| Err(problem.clone())).collect(),
        };
        messages
            .iter()
            .map(|message| {
                let mut plain = Zeroizing::new(Vec::new());
                context
                    .decrypt(&message[..], &mut *plain)
                    .map_err(|error| KeyProblem::Undecryptable {
                        home: self.describe(),
                        reason: error.to_string(),
                    })?;
                Cleartext::from_utf16le(&plain).ok_or(KeyProblem::NotText)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_ids_come_from_the_global_section_however_the_name_is_spelt() {
        let conf = "[global]\n\tnetbios name = DC1\n\tPassword Hash  GPG key IDs = 4952E40301FAB41A, \\\n  ABCDEF0123456789\n; password hash gpg key ids = commented\n[netlogon]\n\tpassword hash gpg key ids = not-global\n";
        assert_eq!(
            key_ids_in(conf),
            vec!["4952E40301FAB41A".to_owned(), "ABCDEF0123456789".to_owned()]
        );
        assert!(key_ids_in("[global]\n# password hash gpg key ids = X\n").is_empty());
        assert!(key_ids_in("[homes]\npassword hash gpg key ids = X\n").is_empty());
    }

    #[test]
    fn a_missing_option_says_the_line_to_add_and_where() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conf = dir.path().join("smb.conf");
        std::fs::write(&conf, "[global]\n\tworkgroup = CORP\n").expect("write");
        let message = configured_key_ids(&conf).expect_err("missing").to_string();
        assert!(
            message.contains(&conf.display().to_string())
                && message.contains("password hash gpg key ids = <fingerprint")
                && message.contains("[global]"),
            "{message}"
        );
    }

    #[test]
    fn cleartext_comes_from_utf16_and_never_shows() {
        let utf16: Vec<u8> = "Pä$$-1".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let cleartext = Cleartext::from_utf16le(&utf16).expect("utf-16");
        assert_eq!(cleartext.expose(), "Pä$$-1");
        assert_eq!(format!("{cleartext:?}"), "Cleartext(***)");
        assert!(
            Cleartext::from_utf16le(&[0x00, 0xd8]).is_none(),
            "a lone surrogate"
        );
        assert!(Cleartext::from_utf16le(&[0x41]).is_none(), "odd length");
    }
}
