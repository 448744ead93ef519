//! What can go wrong talking to a domain controller, each case worded for the administrator: what was
//! wrong and what to do about it. No message ever carries a password.

use crate::tls::TlsSetupError;

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error(
        "the server URL '{url}' is not valid: {reason}; use ldaps://HOST[:636], or ldap://HOST[:389] which dirsync upgrades with StartTLS"
    )]
    InvalidUrl { url: String, reason: String },

    #[error("{0}")]
    TlsSetup(#[from] TlsSetupError),

    #[error("the user name is empty; give a UPN (admin@corp.example.com), DOMAIN\\user or a DN")]
    EmptyUser,

    #[error(
        "the password is empty; an empty password would be an anonymous bind, so dirsync refuses it"
    )]
    EmptyPassword,

    #[error(
        "cannot connect to {server}: {reason}; check the host name and port and that the domain controller is running"
    )]
    Unreachable { server: String, reason: String },

    #[error(
        "the TLS certificate of {server} failed verification ({reason}); pass --ca-file with the domain controller's CA certificate, or --insecure to skip verification knowingly"
    )]
    UntrustedCertificate { server: String, reason: String },

    #[error(
        "{server} did not complete a TLS handshake ({reason}); is this the right port? LDAPS is usually 636, LDAP with StartTLS 389"
    )]
    TlsHandshake { server: String, reason: String },

    #[error("{server} timed out after {timeout_secs} s while {during}")]
    Timeout {
        server: String,
        during: &'static str,
        timeout_secs: u64,
    },

    #[error(
        "sign-in to {server} as '{user}' failed: the user name or password is wrong, or the account is disabled or locked (server said: {server_message})"
    )]
    InvalidCredentials {
        server: String,
        user: String,
        server_message: String,
    },

    #[error("'{dn}' does not exist on {server}; check the DN (for example with `dirsync ous`)")]
    NoSuchObject { server: String, dn: String },

    #[error("'{dn}' is not a valid DN: {reason}")]
    InvalidDn { dn: String, reason: String },

    #[error("{server} refused to {operation}: {code_name} (LDAP {rc}): {server_message}")]
    Refused {
        server: String,
        operation: String,
        rc: u32,
        code_name: &'static str,
        server_message: String,
    },

    #[error("{server} answered {operation} with something dirsync did not expect: {detail}")]
    UnexpectedReply {
        server: String,
        operation: String,
        detail: String,
    },

    #[error(
        "dirsync needs Replicating Directory Changes on {domain}, and '{account}' does not have it; run setup again so that it grants the right to the service account (server said: {server_message})"
    )]
    MissingReplicationRight {
        domain: String,
        account: String,
        server_message: String,
    },

    #[error(
        "the service account lacks the Write Property right on {attributes} of '{dn}'; setup grants that right for hybrid write-back, on the write-back attributes of users in the synced OUs only: is the object in scope, and was setup last run with hybrid write-back on? (server said: {server_message})"
    )]
    WriteDenied {
        dn: String,
        attributes: String,
        server_message: String,
    },

    #[error(
        "{server} no longer accepts the saved change-tracking cookie ({server_message}); a full import replaces it"
    )]
    CookieRejected {
        server: String,
        server_message: String,
    },

    #[error("cannot write the permissions of {dn}: {detail}")]
    DescriptorTooLarge { dn: String, detail: String },

    #[error(
        "{dn} is named and described like this computer's dirsync service account, but it is not protected as dirsync protects its account, so someone else could control it: {differences}. dirsync uses only an account it can show is its own: if this is the account an earlier dirsync made on this computer, delete it in Active Directory and run setup again (it makes a new, protected one); otherwise find out who made it"
    )]
    LookAlikeServiceAccount { dn: String, differences: String },

    #[error("the connection to {server} failed during {operation}: {reason}")]
    ConnectionLost {
        server: String,
        operation: String,
        reason: String,
    },
}

impl DirectoryError {
    /// True when the administrator gave something wrong (URL, CA file, credentials, DN) rather than
    /// the connection failing. The CLI maps this to exit status 2, the rest to 1.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            DirectoryError::InvalidUrl { .. }
                | DirectoryError::TlsSetup(_)
                | DirectoryError::EmptyUser
                | DirectoryError::EmptyPassword
                | DirectoryError::InvalidCredentials { .. }
                | DirectoryError::NoSuchObject { .. }
                | DirectoryError::InvalidDn { .. }
        )
    }
}

impl DirectoryError {
    /// True when trying the same thing again on a new connection may work: the connection broke
    /// or the server did not answer in time.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            DirectoryError::ConnectionLost { .. }
                | DirectoryError::Timeout { .. }
                | DirectoryError::Unreachable { .. }
                | DirectoryError::Refused { rc: 51 | 52, .. }
        )
    }
}

/// The RFC 4511 name of an LDAP result code, for messages.
pub fn result_code_name(rc: u32) -> &'static str {
    match rc {
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        7 => "authMethodNotSupported",
        8 => "strongerAuthRequired",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        16 => "noSuchAttribute",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        64 => "namingViolation",
        65 => "objectClassViolation",
        68 => "entryAlreadyExists",
        80 => "other",
        _ => "error",
    }
}
