//! Where password hash sync gets AD's NT hashes (README, "Password hash sync"), behind [`PasswordHashSource`].
//!
//! A domain controller hands out `unicodePwd` (the 16-byte NT hash) only to replication. On a
//! Samba DC host, the privileged LDAP socket (`private/ldap_priv/ldapi`, which only root can
//! open) serves the DirSync control with system rights and includes `unicodePwd` for users whose
//! password changed: [`SambaPrivilegedSocket`]. Windows AD never returns it over LDAP; a source
//! for it needs MS-DRSR GetNCChanges (DRSUAPI over RPC) and would be a second implementation of
//! the trait.
//!
//! The hashes are secrets: [`NtHash`] never formats, nothing here logs or stores one, and errors
//! never carry entry values.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ldap3::{Scope, SearchEntry};

use super::connection::DirectoryConnection;
use super::dn::Dn;
use super::error::DirectoryError;
use super::forest;
use super::import::{DirSyncCookie, MATCHES_NOTHING_FILTER, dirsync_search_with_flags};
use super::objects::guid_value;
use super::supplemental_credentials::{self, MalformedCredentials, StoredPasswords};
use crate::guid::Guid;

/// Where Samba on Debian keeps its privileged LDAP socket.
pub const SAMBA_PRIVILEGED_SOCKET: &str = "/var/lib/samba/private/ldap_priv/ldapi";

/// DirSync flag LDAP_DIRSYNC_OBJECT_SECURITY, as `samba-tool user syncpasswords` sends it.
const DIRSYNC_OBJECT_SECURITY: i64 = 1;

/// Users, not computers: only people sign in to the cloud.
const USERS_FILTER: &str = "(&(objectClass=user)(!(objectClass=computer)))";

/// GUIDs per `(|(objectGUID=…)…)` filter when reading chosen users' hashes.
const GUIDS_PER_FILTER: usize = 100;

/// Beyond this many chosen users, one read of every user is cheaper than GUID filters.
const READ_ALL_ABOVE: usize = 2000;

/// AD's NT hash of a password: MD4 of its UTF-16LE form, 16 bytes. Never shown; overwritten in
/// memory when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct NtHash([u8; 16]);

impl Drop for NtHash {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl NtHash {
    /// `None` unless exactly 16 bytes (what `unicodePwd` holds on a DC).
    pub fn from_bytes(bytes: &[u8]) -> Option<NtHash> {
        <[u8; 16]>::try_from(bytes).ok().map(NtHash)
    }

    /// The 16 bytes, for the transform only.
    pub fn expose(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for NtHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NtHash(***)")
    }
}

/// One user's password as the source read it.
#[derive(Debug, PartialEq, Eq)]
pub struct PasswordHashRead {
    pub anchor: Guid,
    /// `None`: the user has no password (or the read did not include one).
    pub nt_hash: Option<NtHash>,
    /// For password sync through Microsoft Graph: the password as `supplementalCredentials`
    /// keeps it (encrypted, or in clear for reversible accounts); `None` when not asked for.
    pub stored: Option<Result<StoredPasswords, MalformedCredentials>>,
}

/// The password changes since a cookie, and the cookie that follows them.
#[derive(Debug)]
pub struct PasswordChanges {
    /// Only users whose password changed.
    pub changed: Vec<PasswordHashRead>,
    pub cookie: DirSyncCookie,
    /// Read again with `cookie` for the rest.
    pub more_results: bool,
}

/// A place that can hand out NT hashes and tell what changed since a cookie.
pub trait PasswordHashSource {
    /// Read `supplementalCredentials` too (password sync through Microsoft Graph).
    fn read_stored_passwords(&mut self, wanted: bool);

    /// For messages: "Samba's privileged LDAP socket /var/lib/…".
    fn describe(&self) -> String;

    /// Whether the service account needs Replicating Directory Changes All for this source. Setup
    /// grants nothing that is not used.
    fn needs_replicating_directory_changes_all(&self) -> bool;

    /// A cookie for "now", taken before a full pass so that changes during it are read again.
    fn current_cookie(
        &mut self,
    ) -> impl Future<Output = Result<DirSyncCookie, DirectoryError>> + Send;

    /// The users whose password changed since `cookie`.
    fn changes_since(
        &mut self,
        cookie: &DirSyncCookie,
    ) -> impl Future<Output = Result<PasswordChanges, DirectoryError>> + Send;

    /// The current hashes of these users (a full pass, or users synced for the first time).
    /// Users who no longer exist are left out.
    fn hashes_of(
        &mut self,
        anchors: &[Guid],
    ) -> impl Future<Output = Result<Vec<PasswordHashRead>, DirectoryError>> + Send;
}

/// Why no hash source is available here, said so an administrator can act on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashSourceUnavailable {
    #[error(
        "no password hash source: {socket} does not exist. Password hash sync reads NT hashes through Samba's privileged LDAP socket, so dirsync must run on a Samba domain controller of this domain; set directory.password_hash_socket to that DC's private/ldap_priv/ldapi (Windows AD domain controllers are not supported yet: they hand hashes only to MS-DRSR replication)"
    )]
    NoSocket { socket: String },
    #[error(
        "no password hash source: {socket} cannot be opened ({reason}); only root can use Samba's privileged LDAP socket, so run dirsync as root on the domain controller"
    )]
    NotPermitted { socket: String, reason: String },
    #[error(
        "no password hash source: {socket} serves the domain {serves}, not {configured}; set directory.password_hash_socket to the socket of a domain controller of {configured}"
    )]
    OtherDomain {
        socket: String,
        serves: String,
        configured: String,
    },
    #[error("no password hash source: {socket} did not work: {reason}")]
    Failed { socket: String, reason: String },
}

/// Samba's privileged LDAP socket on this host.
#[derive(Debug)]
pub struct SambaPrivilegedSocket {
    socket: PathBuf,
    naming_context: Dn,
    connection: DirectoryConnection,
    stored_passwords: bool,
}

impl SambaPrivilegedSocket {
    /// Opens the socket and proves it can serve: it answers for `naming_context` and DirSync
    /// works (only the privileged socket allows it without a bind).
    pub async fn open(
        socket: &Path,
        naming_context: &Dn,
        timeout: Duration,
    ) -> Result<SambaPrivilegedSocket, HashSourceUnavailable> {
        let shown = socket.display().to_string();
        match std::fs::metadata(socket) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(HashSourceUnavailable::NoSocket { socket: shown });
            }
            Err(error) => {
                return Err(HashSourceUnavailable::NotPermitted {
                    socket: shown,
                    reason: error.to_string(),
                });
            }
            Ok(_) => {}
        }
        let failed = |error: DirectoryError| HashSourceUnavailable::Failed {
            socket: shown.clone(),
            reason: error.to_string(),
        };
        let connection = DirectoryConnection::connect_local_socket(socket, timeout)
            .await
            .map_err(|error| match error {
                DirectoryError::Unreachable { reason, .. }
                    if reason.to_ascii_lowercase().contains("permission denied") =>
                {
                    HashSourceUnavailable::NotPermitted {
                        socket: shown.clone(),
                        reason,
                    }
                }
                other => failed(other),
            })?;
        let root = connection
            .search(
                "read the rootDSE",
                "",
                Scope::Base,
                "(objectClass=*)",
                &["defaultNamingContext"],
            )
            .await
            .map_err(failed)?;
        let serves = root
            .first()
            .and_then(|entry| forest::first_value(entry, "defaultNamingContext"))
            .unwrap_or_default();
        let same_domain = Dn::parse(&serves).is_ok_and(|dn| dn == *naming_context);
        if !same_domain {
            return Err(HashSourceUnavailable::OtherDomain {
                socket: shown,
                serves,
                configured: naming_context.to_string(),
            });
        }
        let mut source = SambaPrivilegedSocket {
            socket: socket.to_owned(),
            naming_context: naming_context.clone(),
            connection,
            stored_passwords: false,
        };
        source.current_cookie().await.map_err(failed)?;
        Ok(source)
    }

    async fn dirsync(
        &self,
        filter: &str,
        cookie: &[u8],
    ) -> Result<(Vec<SearchEntry>, DirSyncCookie, bool), DirectoryError> {
        dirsync_search_with_flags(
            &self.connection,
            &self.naming_context,
            filter,
            if self.stored_passwords {
                &["objectGUID", "unicodePwd", "supplementalCredentials"]
            } else {
                &["objectGUID", "unicodePwd"]
            },
            cookie,
            DIRSYNC_OBJECT_SECURITY,
        )
        .await
    }
}

impl PasswordHashSource for SambaPrivilegedSocket {
    fn read_stored_passwords(&mut self, wanted: bool) {
        self.stored_passwords = wanted;
    }

    fn describe(&self) -> String {
        format!("Samba's privileged LDAP socket {}", self.socket.display())
    }

    /// The socket reads with the DC's own system rights, not as the service account.
    fn needs_replicating_directory_changes_all(&self) -> bool {
        false
    }

    async fn current_cookie(&mut self) -> Result<DirSyncCookie, DirectoryError> {
        let (_, cookie, _) = self.dirsync(MATCHES_NOTHING_FILTER, &[]).await?;
        Ok(cookie)
    }

    async fn changes_since(
        &mut self,
        cookie: &DirSyncCookie,
    ) -> Result<PasswordChanges, DirectoryError> {
        let (entries, cookie, more_results) = self.dirsync(USERS_FILTER, cookie.as_bytes()).await?;
        // DirSync returns every changed user, with unicodePwd only when the password changed.
        let changed = entries
            .iter()
            .filter_map(|entry| hash_read(entry, self.stored_passwords))
            .filter(|read| read.nt_hash.is_some())
            .collect();
        Ok(PasswordChanges {
            changed,
            cookie,
            more_results,
        })
    }

    async fn hashes_of(
        &mut self,
        anchors: &[Guid],
    ) -> Result<Vec<PasswordHashRead>, DirectoryError> {
        if anchors.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: std::collections::HashSet<Guid> = anchors.iter().copied().collect();
        let mut reads = Vec::new();
        if anchors.len() > READ_ALL_ABOVE {
            // Without a cookie DirSync returns every user as it is now.
            let (entries, _, _) = self.dirsync(USERS_FILTER, &[]).await?;
            reads.extend(
                entries
                    .iter()
                    .filter_map(|entry| hash_read(entry, self.stored_passwords))
                    .filter(|read| wanted.contains(&read.anchor)),
            );
        } else {
            for chunk in anchors.chunks(GUIDS_PER_FILTER) {
                let filter = format!(
                    "(&{USERS_FILTER}(|{}))",
                    chunk
                        .iter()
                        .map(|anchor| format!("(objectGUID={})", escaped_bytes(&anchor.to_wire())))
                        .collect::<String>()
                );
                let (entries, _, _) = self.dirsync(&filter, &[]).await?;
                reads.extend(
                    entries
                        .iter()
                        .filter_map(|entry| hash_read(entry, self.stored_passwords)),
                );
            }
        }
        Ok(reads)
    }
}

/// An entry's anchor, hash and stored password; `None` for an entry without objectGUID (not a
/// user). `stored` only when `supplementalCredentials` was asked for.
fn hash_read(entry: &SearchEntry, stored: bool) -> Option<PasswordHashRead> {
    let anchor = guid_value(entry, "objectGUID")?;
    let nt_hash = forest::binary_values(entry, "unicodePwd")
        .first()
        .and_then(|bytes| NtHash::from_bytes(bytes));
    let stored = stored.then(|| {
        forest::binary_values(entry, "supplementalCredentials")
            .first()
            .map_or(Ok(StoredPasswords::default()), |value| {
                supplemental_credentials::parse(value)
            })
    });
    Some(PasswordHashRead {
        anchor,
        nt_hash,
        stored,
    })
}

/// A binary value in an LDAP filter: every byte as `\xx` (RFC 4515).
fn escaped_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("\\{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_never_formats_and_must_be_16_bytes() {
        let hash = NtHash::from_bytes(&[0xab; 16]).expect("16 bytes");
        assert_eq!(format!("{hash:?}"), "NtHash(***)");
        assert!(NtHash::from_bytes(&[0; 15]).is_none());
        assert!(NtHash::from_bytes(&[0; 17]).is_none());
    }

    #[test]
    fn binary_filter_values_are_escaped_byte_by_byte() {
        assert_eq!(escaped_bytes(&[0x00, 0x2a, 0xff]), "\\00\\2a\\ff");
    }

    #[test]
    fn a_missing_socket_says_where_hashes_come_from() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let naming_context = Dn::parse("DC=corp,DC=example").expect("dn");
        let error = runtime
            .block_on(SambaPrivilegedSocket::open(
                Path::new("/nonexistent/ldap_priv/ldapi"),
                &naming_context,
                Duration::from_secs(1),
            ))
            .expect_err("no socket");
        let message = error.to_string();
        assert!(
            message.contains("/nonexistent/ldap_priv/ldapi")
                && message.contains("directory.password_hash_socket"),
            "{message}"
        );
    }
}
