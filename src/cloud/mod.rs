//! Microsoft Entra ID through Microsoft Graph v1.0 and the Microsoft identity platform.
//! Knows nothing of the GUI or of LDAP.
//!
//! - `auth`: signing in (client credentials, device code, refresh, password check);
//! - `certificate`: the sync app's certificate credential and its client assertions;
//! - `graph`: the Graph client (objects, lookups, lists, delta, `$batch`);
//! - `http`: the HTTP client they share (no redirects, capped bodies, clamped durations);
//! - `flow`: flow control (concurrency, write budget, `Retry-After`, backoff);
//! - `setup`: registering dirsync's app in the tenant during setup;
//! - `mailboxes`: the mailbox attributes hybrid write-back brings back to AD;
//! - `error`: what went wrong, in words an administrator can act on.
//!
//! This file says where the cloud is: the sign-in authority and the Graph endpoint, which differ
//! between the global cloud, the national clouds and the lab's tenant emulator.

pub mod auth;
pub mod certificate;
pub mod error;
pub mod flow;
pub mod graph;
pub mod http;
pub mod mailboxes;
pub mod setup;

pub use auth::{Authority, Credentials, DeviceCodeSignIn, TokenSource};
pub use error::{ErrorKind, GraphError, SignInError, conflict_value};
pub use flow::{FlowPolicy, FlowStats};
pub use graph::{
    CloudObject, CloudQuery, GraphClient, GraphRequest, Method, ObjectKind, PASSWORD_RESET_ROLES,
    PasswordHashEndpoint, PasswordHashItem, PasswordProfileItem, USER_ADMINISTRATOR_ROLE_ID,
    password_policies,
};

use url::Url;

/// The global cloud's sign-in authority.
pub const GLOBAL_AUTHORITY: &str = "https://login.microsoftonline.com";
/// The global cloud's Graph endpoint.
pub const GLOBAL_GRAPH: &str = "https://graph.microsoft.com";

/// Where to sign in and where Graph answers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CloudEndpoints {
    pub authority: Url,
    pub graph: Url,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {field} '{value}' is not valid: {reason}")]
pub struct EndpointError {
    pub field: &'static str,
    pub value: String,
    pub reason: String,
}

impl Default for CloudEndpoints {
    fn default() -> Self {
        CloudEndpoints {
            authority: Url::parse(GLOBAL_AUTHORITY).expect("constant URL"),
            graph: Url::parse(GLOBAL_GRAPH).expect("constant URL"),
        }
    }
}

impl CloudEndpoints {
    /// Validates administrator-typed URLs: absolute HTTPS (HTTP only for loopback, where the lab's
    /// emulator runs), a host, and no credentials.
    pub fn parse(authority: &str, graph: &str) -> Result<Self, EndpointError> {
        Ok(CloudEndpoints {
            authority: parse_endpoint("authority URL", authority)?,
            graph: parse_endpoint("Graph URL", graph)?,
        })
    }
}

fn parse_endpoint(field: &'static str, text: &str) -> Result<Url, EndpointError> {
    let error = |reason: &str| EndpointError {
        field,
        value: text.to_owned(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(text.trim()).map_err(|e| error(&e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EndpointError {
            field,
            value: "(hidden: it carries credentials)".to_owned(),
            reason: "remove the user name and password from the URL".to_owned(),
        });
    }
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(error(
                "use https:// (plain http is only allowed on this machine)",
            ));
        }
        _ => return Err(error("the scheme must be https://")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(error("it names no host"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_global_cloud_is_the_default() {
        let endpoints = CloudEndpoints::default();
        assert_eq!(
            endpoints.authority.host_str(),
            Some("login.microsoftonline.com")
        );
        assert_eq!(endpoints.graph.host_str(), Some("graph.microsoft.com"));
    }

    #[test]
    fn endpoints_are_validated() {
        assert!(
            CloudEndpoints::parse(
                "https://login.microsoftonline.us",
                "https://graph.microsoft.us"
            )
            .is_ok()
        );
        assert!(CloudEndpoints::parse("http://127.0.0.1:8443", "http://127.0.0.1:8443/").is_ok());
        let error =
            CloudEndpoints::parse("http://login.example.com", GLOBAL_GRAPH).expect_err("http");
        assert_eq!(error.field, "authority URL");
        let error =
            CloudEndpoints::parse(GLOBAL_AUTHORITY, "graph.microsoft.com").expect_err("relative");
        assert_eq!(error.field, "Graph URL");
        let error = CloudEndpoints::parse("https://u:pw@login.example.com", GLOBAL_GRAPH)
            .expect_err("creds");
        assert!(!error.to_string().contains("pw@"), "{error}");
    }
}
