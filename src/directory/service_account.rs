//! The AD service account dirsync signs in with, made as DirSync made it:
//! `CN=MSOL_<12 hex>,CN=Users,<domain>`, a random long password that never expires, and a
//! description that says what it is for; and protected as Entra Connect protects it since
//! Microsoft's advisory 4056318 (see `account_protection`). Setup runs with the enterprise
//! admin's connection.

use ldap3::{Mod, Scope, SearchEntry};

use super::account_protection::Trustees;
use super::connection::DirectoryConnection;
use super::controls::SD_FLAGS_OWNER_GROUP_DACL;
use super::dn::{Dn, escape_filter_value};
use super::error::DirectoryError;
use super::forest;
use super::objects::guid_value;
use super::permissions::{read_descriptor, write_descriptor};
use super::sid::Sid;
use crate::guid::Guid;
use crate::secret::Secret;

/// userAccountControl: NORMAL_ACCOUNT (0x200) | DONT_EXPIRE_PASSWORD (0x10000).
pub const SERVICE_ACCOUNT_UAC: u32 = 66048;

const DESCRIPTION_PREFIX: &str = "Account created by dirsync to synchronize this directory";
const PASSWORD_LENGTH: usize = 64;
const ACCOUNT_ATTRIBUTES: &[&str] = &["sAMAccountName", "description", "objectSid", "objectGUID"];

/// The service account as it exists in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub dn: Dn,
    pub sam_account_name: String,
    pub sid: Sid,
    /// Its objectGUID: `config.toml` keeps it, so that a later setup finds this very account.
    pub guid: Guid,
}

/// What setup did to the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountOutcome {
    Created,
    /// It existed: its password was reset, as DirSync did on every setup.
    PasswordReset,
}

/// The account an earlier setup of this installation made, as `config.toml` names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownAccount {
    pub dn: Option<Dn>,
    pub guid: Option<Guid>,
}

/// The service account after setup, and whether its permissions had to be restored.
#[derive(Debug)]
pub struct EnsuredAccount {
    pub account: ServiceAccount,
    pub password: Secret,
    pub outcome: AccountOutcome,
    /// The account existed with permissions other than the protected ones; setup replaced them.
    pub protection_restored: bool,
}

/// The description written on the account, naming dirsync and the computer it serves.
pub fn description_for(computer: &str) -> String {
    format!(
        "{DESCRIPTION_PREFIX} with the cloud, for the dirsync installation on computer {computer}. Do not delete or rename it."
    )
}

/// Finds this installation's service account or creates one, protected, with a fresh random
/// password returned for the caller to keep. An account `known` names (this installation's own,
/// from `config.toml`) is reused and its protection restored; an account found only by its name
/// and description is reused only when it is protected as setup makes it, and refused otherwise
/// ([`DirectoryError::LookAlikeServiceAccount`]): anyone may create an account of that name.
pub async fn ensure_service_account(
    admin: &DirectoryConnection,
    domain_dn: &Dn,
    trustees: &Trustees,
    computer: &str,
    known: &KnownAccount,
) -> Result<EnsuredAccount, DirectoryError> {
    let password = random_password()?;
    let protected = trustees.protected_descriptor();
    let existing = match find_known_account(admin, domain_dn, known).await? {
        Some(account) => Some(account),
        None => match find_service_account(admin, domain_dn, computer).await? {
            Some(candidate) => {
                let actual =
                    read_descriptor(admin, &candidate.dn, SD_FLAGS_OWNER_GROUP_DACL).await?;
                let names = describe_sids(admin, domain_dn, trustees, &actual).await;
                let differences = trustees.differences(&actual, &|sid| name_of(&names, sid));
                if !differences.is_empty() {
                    return Err(DirectoryError::LookAlikeServiceAccount {
                        dn: candidate.dn.to_string(),
                        differences: differences.join("; "),
                    });
                }
                Some(candidate)
            }
            None => None,
        },
    };
    if let Some(account) = existing {
        // Protection first, so that nobody else holds a right on the account once it has its
        // new password.
        let actual = read_descriptor(admin, &account.dn, SD_FLAGS_OWNER_GROUP_DACL).await?;
        // Restored: someone else could control it. Any other difference (an entry the server
        // added or reordered) is put right quietly.
        let protection_restored = !trustees
            .differences(&actual, &|sid| sid.to_string())
            .is_empty();
        if protection_restored || actual.dacl != protected.dacl || actual.owner != protected.owner {
            write_descriptor(admin, &account.dn, &protected, SD_FLAGS_OWNER_GROUP_DACL).await?;
        }
        admin
            .modify_entry(
                "reset the service account's password",
                account.dn.as_str(),
                vec![
                    replace("unicodePwd", unicode_pwd(&password)),
                    replace("userAccountControl", SERVICE_ACCOUNT_UAC.to_string()),
                ],
                Vec::new(),
            )
            .await?;
        return Ok(EnsuredAccount {
            account,
            password,
            outcome: AccountOutcome::PasswordReset,
            protection_restored,
        });
    }

    let users = domain_dn.child("CN", "Users");
    let sam_account_name = format!("MSOL_{}", random_hex(6)?);
    let dn = users.child("CN", &sam_account_name);
    let descriptor = protected
        .to_bytes()
        .map_err(|error| DirectoryError::DescriptorTooLarge {
            dn: dn.to_string(),
            detail: error.to_string(),
        })?;
    // The descriptor comes with the add, so the account is never unprotected, not even for a
    // moment: it inherits nothing from CN=Users and the user class's default (which gives
    // Account Operators full control) does not apply.
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
                ("nTSecurityDescriptor", vec![descriptor]),
            ],
        )
        .await?;
    let entry = admin
        .read_entry("read the service account", dn.as_str(), ACCOUNT_ATTRIBUTES)
        .await?;
    let account = account_from(&entry).ok_or_else(|| DirectoryError::UnexpectedReply {
        server: admin.server().to_owned(),
        operation: "read the service account".to_owned(),
        detail: format!("{dn} has no objectSid or objectGUID"),
    })?;
    Ok(EnsuredAccount {
        account,
        password,
        outcome: AccountOutcome::Created,
        protection_restored: false,
    })
}

/// The account `config.toml` names, by its objectGUID (it survives renames and moves), else by
/// its DN (configurations saved before the GUID was kept). `None` when it is gone.
pub async fn find_known_account(
    admin: &DirectoryConnection,
    domain_dn: &Dn,
    known: &KnownAccount,
) -> Result<Option<ServiceAccount>, DirectoryError> {
    let filter = match (&known.guid, &known.dn) {
        (Some(guid), _) => format!("(objectGUID={})", escape_binary(&guid.to_wire())),
        (None, Some(dn)) => format!("(distinguishedName={})", escape_filter_value(dn.as_str())),
        (None, None) => return Ok(None),
    };
    let entries = admin
        .search(
            "look for the service account",
            domain_dn.as_str(),
            Scope::Subtree,
            &format!("(&(objectClass=user)(sAMAccountName=MSOL_*){filter})"),
            ACCOUNT_ATTRIBUTES,
        )
        .await?;
    Ok(entries.iter().find_map(account_from))
}

/// The service account this computer's dirsync made earlier, by its name and description.
/// Anyone who may create users can make one that matches, so a caller must check it.
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
            ACCOUNT_ATTRIBUTES,
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
        .filter_map(account_from)
        .collect();
    // Two would mean someone copied the account; use the oldest-named one deterministically.
    matching.sort_by(|a, b| a.dn.normalized().cmp(b.dn.normalized()));
    Ok(matching.into_iter().next())
}

fn account_from(entry: &SearchEntry) -> Option<ServiceAccount> {
    Some(ServiceAccount {
        dn: Dn::parse(&entry.dn).ok()?,
        sam_account_name: forest::first_value(entry, "sAMAccountName")?,
        sid: Sid::from_bytes(forest::binary_values(entry, "objectSid").first()?).ok()?,
        guid: guid_value(entry, "objectGUID")?,
    })
}

/// Names for the SIDs a descriptor holds, as `name (SID)`, for the refusal message.
async fn describe_sids(
    admin: &DirectoryConnection,
    domain_dn: &Dn,
    trustees: &Trustees,
    descriptor: &super::security_descriptor::SecurityDescriptor,
) -> Vec<(Sid, String)> {
    let mut sids: Vec<Sid> = descriptor.owner.iter().cloned().collect();
    if let Some(dacl) = &descriptor.dacl {
        for ace in &dacl.aces {
            if let super::security_descriptor::Ace::Basic { sid, .. }
            | super::security_descriptor::Ace::Object { sid, .. } = ace
                && !sids.contains(sid)
            {
                sids.push(sid.clone());
            }
        }
    }
    let mut names = vec![
        (trustees.domain_admins(), "Domain Admins".to_owned()),
        (trustees.enterprise_admins(), "Enterprise Admins".to_owned()),
    ];
    for sid in sids {
        if names.iter().any(|(known, _)| *known == sid) {
            continue;
        }
        let filter = format!("(objectSid={})", escape_binary(&sid.to_bytes()));
        // A name is a courtesy: a SID that cannot be looked up is shown as it is.
        if let Ok(entries) = admin
            .search(
                "look up an account",
                domain_dn.as_str(),
                Scope::Subtree,
                &filter,
                &["sAMAccountName"],
            )
            .await
            && let Some(name) = entries
                .first()
                .and_then(|entry| forest::first_value(entry, "sAMAccountName"))
        {
            names.push((sid.clone(), format!("{name} ({sid})")));
        }
    }
    names
}

fn name_of(names: &[(Sid, String)], sid: &Sid) -> String {
    names
        .iter()
        .find(|(known, _)| known == sid)
        .map_or_else(|| sid.to_string(), |(_, name)| name.clone())
}

/// Bytes as an LDAP filter value (RFC 4515): `\xx` for each byte.
fn escape_binary(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("\\{byte:02x}")).collect()
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
