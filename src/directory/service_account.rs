//! The AD service account dirsync signs in with, made as DirSync made it:
//! `CN=MSOL_<12 hex>,CN=Users,<domain>`, a random long password that never expires, and a
//! description that says what it is for. Setup runs with the enterprise admin's connection.

use ldap3::{Mod, Scope};

use super::connection::DirectoryConnection;
use super::dn::{Dn, escape_filter_value};
use super::error::DirectoryError;
use super::forest;
use super::sid::Sid;
use crate::secret::Secret;

/// userAccountControl: NORMAL_ACCOUNT (0x200) | DONT_EXPIRE_PASSWORD (0x10000).
pub const SERVICE_ACCOUNT_UAC: u32 = 66048;

const DESCRIPTION_PREFIX: &str = "Account created by dirsync to synchronize this directory";
const PASSWORD_LENGTH: usize = 64;

/// The service account as it exists in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub dn: Dn,
    pub sam_account_name: String,
    pub sid: Sid,
}

/// What setup did to the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountOutcome {
    Created,
    /// It existed: its password was reset, as DirSync did on every setup.
    PasswordReset,
}

/// The description written on the account, naming dirsync and the computer it serves.
pub fn description_for(computer: &str) -> String {
    format!(
        "{DESCRIPTION_PREFIX} with the cloud, for the dirsync installation on computer {computer}. Do not delete or rename it."
    )
}

/// Finds this computer's service account (by its description) or creates one, and gives it a
/// fresh random password, returned for the caller to put in the OS keyring.
pub async fn ensure_service_account(
    admin: &DirectoryConnection,
    domain_dn: &Dn,
    computer: &str,
) -> Result<(ServiceAccount, Secret, AccountOutcome), DirectoryError> {
    let users = domain_dn.child("CN", "Users");
    let password = random_password()?;
    if let Some(existing) = find_service_account(admin, domain_dn, computer).await? {
        admin
            .modify_entry(
                "reset the service account's password",
                existing.dn.as_str(),
                vec![
                    replace("unicodePwd", unicode_pwd(&password)),
                    replace("userAccountControl", SERVICE_ACCOUNT_UAC.to_string()),
                ],
                Vec::new(),
            )
            .await?;
        return Ok((existing, password, AccountOutcome::PasswordReset));
    }

    let sam_account_name = format!("MSOL_{}", random_hex(6)?);
    let dn = users.child("CN", &sam_account_name);
    admin
        .add_entry(
            "create the service account",
            dn.as_str(),
            vec![
                ("objectClass", vec![b"user".to_vec()]),
                (
                    "sAMAccountName",
                    vec![sam_account_name.clone().into_bytes()],
                ),
                ("description", vec![description_for(computer).into_bytes()]),
                (
                    "userAccountControl",
                    vec![SERVICE_ACCOUNT_UAC.to_string().into_bytes()],
                ),
                ("unicodePwd", vec![unicode_pwd(&password)]),
            ],
        )
        .await?;
    let sid = read_sid(admin, &dn).await?;
    let account = ServiceAccount {
        dn,
        sam_account_name,
        sid,
    };
    Ok((account, password, AccountOutcome::Created))
}

/// The service account this computer's dirsync made earlier, if any.
pub async fn find_service_account(
    admin: &DirectoryConnection,
    domain_dn: &Dn,
    computer: &str,
) -> Result<Option<ServiceAccount>, DirectoryError> {
    let users = domain_dn.child("CN", "Users");
    let filter = format!(
        "(&(objectClass=user)(sAMAccountName=MSOL_*)(description={}*))",
        escape_filter_value(DESCRIPTION_PREFIX)
    );
    let entries = admin
        .search(
            "look for the service account",
            users.as_str(),
            Scope::OneLevel,
            &filter,
            &["sAMAccountName", "description", "objectSid"],
        )
        .await?;
    let wanted = description_for(computer);
    let mut matching: Vec<ServiceAccount> = entries
        .iter()
        .filter(|entry| {
            forest::values(entry, "description")
                .iter()
                .any(|description| description.eq_ignore_ascii_case(&wanted))
        })
        .filter_map(|entry| {
            Some(ServiceAccount {
                dn: Dn::parse(&entry.dn).ok()?,
                sam_account_name: forest::first_value(entry, "sAMAccountName")?,
                sid: Sid::from_bytes(forest::binary_values(entry, "objectSid").first()?).ok()?,
            })
        })
        .collect();
    // Two would mean someone copied the account; use the oldest-named one deterministically.
    matching.sort_by(|a, b| a.dn.normalized().cmp(b.dn.normalized()));
    Ok(matching.into_iter().next())
}

/// Removes the account and every right it was given (uninstall).
pub async fn delete_service_account(
    admin: &DirectoryConnection,
    domain_dn: &Dn,
    account: &ServiceAccount,
) -> Result<(), DirectoryError> {
    super::permissions::revoke_rights(admin, domain_dn, &account.sid).await?;
    admin
        .delete_entry("delete the service account", account.dn.as_str())
        .await
}

async fn read_sid(admin: &DirectoryConnection, dn: &Dn) -> Result<Sid, DirectoryError> {
    let entry = admin
        .read_entry("read the service account", dn.as_str(), &["objectSid"])
        .await?;
    forest::binary_values(&entry, "objectSid")
        .first()
        .and_then(|bytes| Sid::from_bytes(bytes).ok())
        .ok_or_else(|| DirectoryError::UnexpectedReply {
            server: admin.server().to_owned(),
            operation: "read the service account".to_owned(),
            detail: format!("{dn} has no objectSid"),
        })
}

fn replace(attribute: &str, value: impl Into<Vec<u8>>) -> Mod<Vec<u8>> {
    Mod::Replace(
        attribute.as_bytes().to_vec(),
        std::iter::once(value.into()).collect(),
    )
}

/// `unicodePwd` takes the password in double quotes, UTF-16LE (MS-ADTS 3.1.1.3.1.5.1).
fn unicode_pwd(password: &Secret) -> Vec<u8> {
    format!("\"{}\"", password.expose())
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
const DIGITS: &[u8] = b"23456789";
const SYMBOLS: &[u8] = b"!#$%()*+,-./:;=?@[]^_{}~";

/// A random password of [`PASSWORD_LENGTH`] characters with every character class, so that any
/// domain complexity policy accepts it.
pub(crate) fn random_password() -> Result<Secret, DirectoryError> {
    let alphabet: Vec<u8> = [LOWER, UPPER, DIGITS, SYMBOLS].concat();
    // Rejection sampling keeps every character equally likely.
    let limit = 256 - 256 % alphabet.len();
    loop {
        let mut password = String::with_capacity(PASSWORD_LENGTH);
        while password.len() < PASSWORD_LENGTH {
            for byte in random_bytes(PASSWORD_LENGTH)? {
                if usize::from(byte) < limit && password.len() < PASSWORD_LENGTH {
                    password.push(char::from(alphabet[usize::from(byte) % alphabet.len()]));
                }
            }
        }
        let has = |class: &[u8]| password.bytes().any(|byte| class.contains(&byte));
        if has(LOWER) && has(UPPER) && has(DIGITS) && has(SYMBOLS) {
            return Ok(Secret::new(password));
        }
    }
}

fn random_hex(bytes: usize) -> Result<String, DirectoryError> {
    Ok(random_bytes(bytes)?
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

fn random_bytes(count: usize) -> Result<Vec<u8>, DirectoryError> {
    let mut bytes = vec![0u8; count];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| DirectoryError::UnexpectedReply {
            server: "this computer".to_owned(),
            operation: "generate a random password".to_owned(),
            detail: "the system's random number generator failed".to_owned(),
        })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_varied_and_different() {
        let first = random_password().expect("random");
        let second = random_password().expect("random");
        assert_eq!(first.expose().len(), PASSWORD_LENGTH);
        assert_ne!(first.expose(), second.expose());
        assert!(!first.expose().contains('"'));
    }

    #[test]
    fn unicode_pwd_is_quoted_utf16le() {
        let encoded = unicode_pwd(&Secret::new("Ab1!"));
        assert_eq!(
            encoded,
            [b'"', 0, b'A', 0, b'b', 0, b'1', 0, b'!', 0, b'"', 0]
        );
    }

    #[test]
    fn account_names_fit_sam_account_name() {
        let name = format!("MSOL_{}", random_hex(6).expect("random"));
        assert_eq!(name.len(), 17, "sAMAccountName allows 20");
        assert!(name[5..].chars().all(|c| c.is_ascii_hexdigit()));
    }
}
