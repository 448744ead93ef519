//! What can go wrong talking to the cloud, in terms an administrator can act on.
//!
//! Messages name the field to fix where there is one. They never carry a secret or a token: the
//! types that hold those (`Secret`) print as `***`, and server answers are quoted only from their
//! error descriptions, which the identity platform and Graph never fill with credentials.

use std::time::Duration;

/// Signing in at the identity platform failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    #[error(
        "the tenant '{tenant}' was not found at {authority} ({code}); check the 'Tenant' field: it takes the tenant ID (a GUID) or one of its domain names"
    )]
    TenantNotFound {
        tenant: String,
        authority: String,
        code: String,
    },
    #[error(
        "no application with client ID '{client_id}' is registered in tenant '{tenant}' ({code}); check the 'Application (client) ID' field"
    )]
    UnknownApplication {
        client_id: String,
        tenant: String,
        code: String,
    },
    #[error(
        "the client secret of application '{client_id}' is wrong ({code}); use the secret's Value (shown once when it was created), not its Secret ID"
    )]
    WrongSecret { client_id: String, code: String },
    #[error(
        "the client secret of application '{client_id}' has expired ({code}); run setup again (the wizard or `dirsync setup`) to give the app a new secret"
    )]
    ExpiredSecret { client_id: String, code: String },
    #[error(
        "application '{client_id}' does not accept this host's certificate ({code}): {description}. The certificate was replaced or removed, or it expired; renew the credential (the dashboard's Connectors page, or setup again)"
    )]
    CertificateRefused {
        client_id: String,
        code: String,
        description: String,
    },
    #[error(
        "the sync app's certificate key cannot sign in for application '{client_id}': {reason}"
    )]
    BadCertificate { client_id: String, reason: String },
    #[error("wrong user name or password for '{user}' ({code})")]
    WrongPassword { user: String, code: String },
    #[error("the sign-in was declined at the device login page; start the sign-in again")]
    Declined,
    #[error(
        "the sign-in code expired before anyone entered it at the device login page; start the sign-in again"
    )]
    DeviceCodeExpired,
    #[error(
        "the saved sign-in is no longer valid ({code}); sign in again as a Global Administrator"
    )]
    SessionExpired { code: String },
    #[error(
        "{url} did not answer as a Microsoft identity platform token endpoint ({what}); check the 'Authority URL' field (the global cloud's is https://login.microsoftonline.com)"
    )]
    NotAnAuthority { url: String, what: String },
    #[error(
        "cannot reach the sign-in server {url}: {reason}; check the 'Authority URL' field and the network"
    )]
    Unreachable { url: String, reason: String },
    #[error("the sign-in server refused: {error}: {description}")]
    Refused { error: String, description: String },
}

/// A Graph request failed. `kind()` tells the engine what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error(
        "another cloud object already has this {property}{}: {message}",
        value.as_deref().map(|v| format!(" ('{v}')")).unwrap_or_default()
    )]
    Conflict {
        property: String,
        value: Option<String>,
        message: String,
    },
    #[error("not found in the cloud: {resource} ({message})")]
    NotFound { resource: String, message: String },
    #[error(
        "Microsoft Graph refused: {message} ({code}); the sync app lacks a permission this needs — run setup again to grant it"
    )]
    Forbidden { code: String, message: String },
    #[error("Microsoft Graph did not accept the sign-in token: {message} ({code})")]
    Unauthorized { code: String, message: String },
    #[error("Microsoft Graph refused the request as invalid: {message} ({code})")]
    BadRequest { code: String, message: String },
    #[error(
        "Microsoft Graph kept throttling (429) for {}; gave up. Last answer: {last}. Try again later or lower the sync's write rate",
        describe(*waited)
    )]
    Throttled { waited: Duration, last: String },
    #[error(
        "Microsoft Graph kept failing for {} ({attempts} attempts); gave up. Last failure: {last}",
        describe(*waited)
    )]
    Unavailable {
        attempts: u32,
        waited: Duration,
        last: String,
    },
    #[error(
        "{url} did not answer as Microsoft Graph ({what}); check the 'Graph URL' field (the global cloud's is https://graph.microsoft.com)"
    )]
    NotGraph { url: String, what: String },
    #[error("Microsoft Graph answered HTTP {status}: {message} ({code})")]
    Failed {
        status: u16,
        code: String,
        message: String,
    },
    #[error("cannot sign in to the cloud: {0}")]
    SignIn(#[from] SignInError),
    /// A create was sent and its answer lost (a dropped connection, a timeout, a 5xx): Graph may
    /// have made the object. It is not sent again until a lookup shows it was not.
    #[error(
        "the answer to this create was lost ({last}); Microsoft Graph may have made the object, so it is looked for before it is created again"
    )]
    OutcomeUnknown { last: String },
}

/// What the engine does with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The object collides with another: an object-level error the admin fixes in AD.
    Conflict,
    /// The object is gone from the cloud.
    NotFound,
    /// Permissions or sign-in: every later request fails the same way; stop the run.
    Forbidden,
    /// Throttled or unavailable for longer than the retry budget: stop the run, try next cycle.
    Transient,
    /// This request is wrong; others may still work: an object-level error.
    Rejected,
    /// The endpoint is misconfigured: stop the run.
    Fatal,
}

/// The value a conflict's message names (its `Display` above), as run records keep it:
/// `another cloud object already has this mail ('a@contoso.test'): …` gives `a@contoso.test`.
pub fn conflict_value(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("another cloud object already has this ")?;
    let (_, rest) = rest.split_once(" ('")?;
    let (value, _) = rest.split_once("'): ")?;
    Some(value)
}

impl GraphError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            GraphError::Conflict { .. } => ErrorKind::Conflict,
            GraphError::NotFound { .. } => ErrorKind::NotFound,
            GraphError::Forbidden { .. } | GraphError::Unauthorized { .. } => ErrorKind::Forbidden,
            GraphError::SignIn(_) => ErrorKind::Forbidden,
            GraphError::Throttled { .. }
            | GraphError::Unavailable { .. }
            | GraphError::OutcomeUnknown { .. } => ErrorKind::Transient,
            GraphError::BadRequest { .. } => ErrorKind::Rejected,
            GraphError::NotGraph { .. } | GraphError::Failed { .. } => ErrorKind::Fatal,
        }
    }
}

fn describe(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs >= 120 {
        format!("{} minutes", secs / 60)
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conflicts_value_is_read_back_from_its_message() {
        let error = GraphError::Conflict {
            property: "userPrincipalName".to_owned(),
            value: Some("o'brien@contoso.test".to_owned()),
            message:
                "Another object with the same value for property userPrincipalName already exists."
                    .to_owned(),
        };
        let message = error.to_string();
        assert_eq!(conflict_value(&message), Some("o'brien@contoso.test"));
        let without = GraphError::Conflict {
            property: "mail".to_owned(),
            value: None,
            message: "taken".to_owned(),
        };
        assert_eq!(conflict_value(&without.to_string()), None);
    }
}
