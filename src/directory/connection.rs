//! One authenticated LDAP connection to a domain controller, always over TLS (LDAPS, or StartTLS
//! for an `ldap://` URL: dirsync never sends a password in clear text).

use std::io;
use std::time::Duration;

use ldap3::controls::RawControl;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Mod, Scope, SearchEntry};
use url::Url;

use super::error::{DirectoryError, result_code_name};
use crate::secret::Secret;
use crate::tls::{self, TlsTrust};

/// Where and how to reach a domain controller. Built only from a validated URL.
/// LDAP's sizeLimitExceeded (RFC 4511 §4.1.9).
const SIZE_LIMIT_EXCEEDED: u32 = 4;

#[derive(Debug, Clone)]
pub struct DirectoryTarget {
    url: Url,
    /// `host:port`, used in messages.
    server: String,
    starttls: bool,
    trust: TlsTrust,
    timeout: Duration,
}

impl DirectoryTarget {
    /// Validates a server URL such as `ldaps://dc1.corp.example.com` or `ldap://10.0.0.5:389`.
    pub fn new(url_text: &str, trust: TlsTrust, timeout: Duration) -> Result<Self, DirectoryError> {
        let invalid = |reason: &str| DirectoryError::InvalidUrl {
            url: without_user_info(url_text),
            reason: reason.to_owned(),
        };
        let url = Url::parse(url_text.trim()).map_err(|error| invalid(&error.to_string()))?;
        let (starttls, default_port) = match url.scheme() {
            "ldaps" => (false, 636),
            "ldap" => (true, 389),
            _ => return Err(invalid("the scheme must be ldaps:// or ldap://")),
        };
        let Some(host) = url.host_str().filter(|host| !host.is_empty()) else {
            return Err(invalid("it names no host"));
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "it carries a user name or password; pass the user separately",
            ));
        }
        if !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err(invalid(
                "it has a path or query; give only scheme, host and port (the base DN is a separate setting)",
            ));
        }
        let port = url.port().unwrap_or(default_port);
        let server = format!("{host}:{port}");
        Ok(DirectoryTarget {
            url,
            server,
            starttls,
            trust,
            timeout,
        })
    }

    /// `host:port`.
    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn trust(&self) -> &TlsTrust {
        &self.trust
    }
}

/// An open, bound connection. Cheap to share: every operation clones the multiplexed handle, so
/// several requests can be in flight on the one connection.
#[derive(Debug)]
pub struct DirectoryConnection {
    ldap: Ldap,
    server: String,
    timeout: Duration,
    /// The name the connection was bound with, as the administrator typed it.
    bound_as: Option<String>,
}

/// An open change-notification search (see [`DirectoryConnection::change_notifications`]).
pub struct ChangeNotifications {
    stream: ldap3::SearchStream<'static, &'static str, Vec<&'static str>>,
    server: String,
}

impl std::fmt::Debug for ChangeNotifications {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ChangeNotifications")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl ChangeNotifications {
    /// Waits until an object changes. An error when the registration ended: the DC refused
    /// the control (it names why) or the connection closed.
    pub async fn changed(&mut self) -> Result<(), DirectoryError> {
        let refused = |rc: u32, text: String| DirectoryError::Refused {
            server: self.server.clone(),
            operation: "registering for change notifications".to_owned(),
            rc,
            code_name: result_code_name(rc),
            server_message: text,
        };
        loop {
            match self.stream.next().await {
                Ok(Some(entry)) if entry.is_ref() || entry.is_intermediate() => {}
                Ok(Some(_)) => return Ok(()),
                Ok(None) => {
                    let result = self.stream.finish().await;
                    return Err(refused(result.rc, result.text));
                }
                Err(error) => return Err(refused(80, error.to_string())),
            }
        }
    }
}

impl DirectoryConnection {
    /// Connects (TLS verified per the target's trust) and binds with a simple bind.
    pub async fn connect_and_bind(
        target: &DirectoryTarget,
        user: &str,
        password: &Secret,
    ) -> Result<Self, DirectoryError> {
        if user.trim().is_empty() {
            return Err(DirectoryError::EmptyUser);
        }
        if password.is_empty() {
            return Err(DirectoryError::EmptyPassword);
        }
        let mut connection = Self::connect(target).await?;
        connection.simple_bind(user, password).await?;
        Ok(connection)
    }

    /// Opens the TLS connection without binding.
    pub async fn connect(target: &DirectoryTarget) -> Result<Self, DirectoryError> {
        let config = tls::client_config(&target.trust)?;
        let settings = LdapConnSettings::new()
            .set_conn_timeout(target.timeout)
            .set_config(config)
            .set_starttls(target.starttls);
        let connecting = LdapConnAsync::from_url_with_settings(settings, &target.url);
        // The connect timeout covers TCP only; this one covers the TLS handshake and StartTLS too.
        let (driver, ldap) = match tokio::time::timeout(target.timeout, connecting).await {
            Err(_elapsed) => {
                return Err(DirectoryError::Timeout {
                    server: target.server.clone(),
                    during: "connecting",
                    timeout_secs: target.timeout.as_secs(),
                });
            }
            Ok(result) => result.map_err(|error| connect_error(&target.server, target, error))?,
        };
        Ok(Self::driven(
            driver,
            ldap,
            target.server.clone(),
            target.timeout,
        ))
    }

    /// An unbound connection whose driver runs on the runtime until the connection closes.
    fn driven(driver: LdapConnAsync, ldap: Ldap, server: String, timeout: Duration) -> Self {
        let driver_server = server.clone();
        tokio::spawn(async move {
            if let Err(error) = driver.drive().await {
                tracing::debug!(server = %driver_server, %error, "LDAP connection closed");
            }
        });
        DirectoryConnection {
            ldap,
            server,
            timeout,
            bound_as: None,
        }
    }

    /// Opens a local LDAP socket (`ldapi`), unbound. No TLS: the socket never leaves this host,
    /// and what the connection may read is decided by who can open the socket file.
    pub async fn connect_local_socket(
        socket: &std::path::Path,
        timeout: Duration,
    ) -> Result<Self, DirectoryError> {
        let server = socket.display().to_string();
        // ldap3 takes the socket path percent-encoded as the URL's host.
        let encoded: String =
            url::form_urlencoded::byte_serialize(socket.as_os_str().as_encoded_bytes()).collect();
        let url = Url::parse(&format!("ldapi://{encoded}")).map_err(|error| {
            DirectoryError::InvalidUrl {
                url: server.clone(),
                reason: error.to_string(),
            }
        })?;
        let settings = LdapConnSettings::new().set_conn_timeout(timeout);
        let connecting = LdapConnAsync::from_url_with_settings(settings, &url);
        let (driver, ldap) = match tokio::time::timeout(timeout, connecting).await {
            Err(_elapsed) => {
                return Err(DirectoryError::Timeout {
                    server,
                    during: "connecting",
                    timeout_secs: timeout.as_secs(),
                });
            }
            Ok(Ok(connected)) => connected,
            Ok(Err(other)) => {
                return Err(DirectoryError::Unreachable {
                    server,
                    reason: other.to_string(),
                });
            }
        };
        Ok(Self::driven(driver, ldap, server, timeout))
    }

    async fn simple_bind(&mut self, user: &str, password: &Secret) -> Result<(), DirectoryError> {
        let result = self
            .ldap
            .with_timeout(self.timeout)
            .simple_bind(user, password.expose())
            .await
            .map_err(|error| self.operation_error("sign in", error))?;
        match result.rc {
            0 => {
                self.bound_as = Some(user.to_owned());
                Ok(())
            }
            49 => Err(DirectoryError::InvalidCredentials {
                server: self.server.clone(),
                user: user.to_owned(),
                server_message: result.text.trim().to_owned(),
            }),
            rc => Err(self.refused("sign in", rc, &result.text)),
        }
    }

    /// The user name this connection signed in with, if it did.
    pub fn bound_as(&self) -> Option<&str> {
        self.bound_as.as_deref()
    }

    /// `host:port` of the server.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Runs a search and returns its entries. `noSuchObject` on the base becomes
    /// [`DirectoryError::NoSuchObject`].
    pub async fn search(
        &self,
        operation: &str,
        base: &str,
        scope: Scope,
        filter: &str,
        attributes: &[&str],
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        let (entries, _) = self
            .search_with_controls(operation, base, scope, filter, attributes, Vec::new())
            .await?;
        Ok(entries)
    }

    /// Every entry a search finds, however many. Asks once without paging, which is fastest
    /// (Samba's paged results take about seven times as long for 10,000 entries); when the
    /// server stops at its limit (Active Directory's MaxPageSize, 1,000: sizeLimitExceeded), asks
    /// again in pages.
    pub async fn search_all(
        &self,
        operation: &str,
        base: &str,
        scope: Scope,
        filter: &str,
        attributes: &[&str],
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        match self
            .search(operation, base, scope, filter, attributes)
            .await
        {
            Err(DirectoryError::Refused {
                rc: SIZE_LIMIT_EXCEEDED,
                ..
            }) => {
                self.search_paged(operation, base, scope, filter, attributes, 1000)
                    .await
            }
            other => other,
        }
    }

    /// A search read in pages of `page_size` (the paged results control).
    pub async fn search_paged(
        &self,
        operation: &str,
        base: &str,
        scope: Scope,
        filter: &str,
        attributes: &[&str],
        page_size: i64,
    ) -> Result<Vec<SearchEntry>, DirectoryError> {
        let mut all = Vec::new();
        let mut cookie = Vec::new();
        loop {
            let (entries, next) = self
                .search_page(
                    operation, base, scope, filter, attributes, page_size, &cookie,
                )
                .await?;
            all.extend(entries);
            if next.is_empty() {
                return Ok(all);
            }
            cookie = next;
        }
    }

    /// One page of a paged search (`cookie` empty for the first); returns the entries and the
    /// cookie of the next page, empty after the last.
    #[allow(clippy::too_many_arguments)]
    pub async fn search_page(
        &self,
        operation: &str,
        base: &str,
        scope: Scope,
        filter: &str,
        attributes: &[&str],
        page_size: i64,
        cookie: &[u8],
    ) -> Result<(Vec<SearchEntry>, Vec<u8>), DirectoryError> {
        let (entries, response_controls) = self
            .search_with_controls(
                operation,
                base,
                scope,
                filter,
                attributes,
                vec![super::controls::paged_results(page_size, cookie)],
            )
            .await?;
        let response = response_controls
            .iter()
            .find(|control| control.ctype == super::controls::PAGED_RESULTS_OID)
            .and_then(|control| control.val.as_deref());
        let next = match response {
            Some(value) => super::controls::parse_paged_results_cookie(value).map_err(|error| {
                DirectoryError::UnexpectedReply {
                    server: self.server.clone(),
                    operation: operation.to_owned(),
                    detail: error.to_string(),
                }
            })?,
            // A server that does not page returned everything at once.
            None => Vec::new(),
        };
        Ok((entries, next))
    }

    /// A search with request controls; returns the entries and the response controls.
    pub async fn search_with_controls(
        &self,
        operation: &str,
        base: &str,
        scope: Scope,
        filter: &str,
        attributes: &[&str],
        controls: Vec<RawControl>,
    ) -> Result<(Vec<SearchEntry>, Vec<RawControl>), DirectoryError> {
        let mut ldap = self.ldap.clone();
        let result = ldap
            .with_controls(controls)
            .with_timeout(self.timeout)
            .search(base, scope, filter, attributes.to_vec())
            .await
            .map_err(|error| self.operation_error(operation, error))?;
        let ldap3::SearchResult(entries, status) = result;
        match status.rc {
            // Referrals (Samba returns one to CN=Configuration on subtree searches) and
            // intermediate messages are not entries.
            0 => Ok((
                entries
                    .into_iter()
                    .filter(|entry| !entry.is_ref() && !entry.is_intermediate())
                    .map(SearchEntry::construct)
                    .collect(),
                status.ctrls.into_iter().map(|control| control.1).collect(),
            )),
            32 => Err(DirectoryError::NoSuchObject {
                server: self.server.clone(),
                dn: base.to_owned(),
            }),
            34 => Err(DirectoryError::InvalidDn {
                dn: base.to_owned(),
                reason: status.text.trim().to_owned(),
            }),
            rc => Err(self.refused(operation, rc, &status.text)),
        }
    }

    /// Registers for the DC's change notifications under `naming_context`, its whole subtree:
    /// allowed when the base is a naming context's root ("Change Notifications in Active
    /// Directory Domain Services", learn.microsoft.com; the filter must be `(objectClass=*)`).
    /// The search stays open until the connection closes.
    pub async fn change_notifications(
        &self,
        naming_context: &str,
    ) -> Result<ChangeNotifications, DirectoryError> {
        let mut ldap = self.ldap.clone();
        let stream = ldap
            .with_controls(vec![super::controls::change_notification()])
            .streaming_search(
                naming_context,
                Scope::Subtree,
                "(objectClass=*)",
                vec!["uSNChanged"],
            )
            .await
            .map_err(|error| self.operation_error("registering for change notifications", error))?;
        Ok(ChangeNotifications {
            stream,
            server: self.server.clone(),
        })
    }

    /// Adds an entry. Values are bytes so that binary attributes (`unicodePwd`) fit.
    pub async fn add_entry(
        &self,
        operation: &str,
        dn: &str,
        attributes: Vec<(&str, Vec<Vec<u8>>)>,
    ) -> Result<(), DirectoryError> {
        let attributes = attributes
            .into_iter()
            .map(|(name, values)| (name.as_bytes().to_vec(), values.into_iter().collect()))
            .collect();
        let mut ldap = self.ldap.clone();
        let result = ldap
            .with_timeout(self.timeout)
            .add(dn, attributes)
            .await
            .map_err(|error| self.operation_error(operation, error))?;
        self.check_update(operation, dn, result.rc, &result.text)
    }

    /// Modifies an entry, with optional request controls (the SD flags control for
    /// `nTSecurityDescriptor`).
    pub async fn modify_entry(
        &self,
        operation: &str,
        dn: &str,
        modifications: Vec<Mod<Vec<u8>>>,
        controls: Vec<RawControl>,
    ) -> Result<(), DirectoryError> {
        let mut ldap = self.ldap.clone();
        let result = ldap
            .with_controls(controls)
            .with_timeout(self.timeout)
            .modify(dn, modifications)
            .await
            .map_err(|error| self.operation_error(operation, error))?;
        self.check_update(operation, dn, result.rc, &result.text)
    }

    /// Deletes a leaf entry.
    pub async fn delete_entry(&self, operation: &str, dn: &str) -> Result<(), DirectoryError> {
        let mut ldap = self.ldap.clone();
        let result = ldap
            .with_timeout(self.timeout)
            .delete(dn)
            .await
            .map_err(|error| self.operation_error(operation, error))?;
        self.check_update(operation, dn, result.rc, &result.text)
    }

    fn check_update(
        &self,
        operation: &str,
        dn: &str,
        rc: u32,
        text: &str,
    ) -> Result<(), DirectoryError> {
        match rc {
            0 => Ok(()),
            32 => Err(DirectoryError::NoSuchObject {
                server: self.server.clone(),
                dn: dn.to_owned(),
            }),
            34 => Err(DirectoryError::InvalidDn {
                dn: dn.to_owned(),
                reason: text.trim().to_owned(),
            }),
            rc => Err(self.refused(operation, rc, text)),
        }
    }

    /// Reads one entry by DN.
    pub async fn read_entry(
        &self,
        operation: &str,
        dn: &str,
        attributes: &[&str],
    ) -> Result<SearchEntry, DirectoryError> {
        let mut entries = self
            .search(operation, dn, Scope::Base, "(objectClass=*)", attributes)
            .await?;
        entries.pop().ok_or_else(|| DirectoryError::NoSuchObject {
            server: self.server.clone(),
            dn: dn.to_owned(),
        })
    }

    /// Closes the connection politely.
    pub async fn close(mut self) {
        let _ = self.ldap.unbind().await;
    }

    fn refused(&self, operation: &str, rc: u32, text: &str) -> DirectoryError {
        DirectoryError::Refused {
            server: self.server.clone(),
            operation: operation.to_owned(),
            rc,
            code_name: result_code_name(rc),
            server_message: text.trim().to_owned(),
        }
    }

    fn operation_error(&self, operation: &str, error: LdapError) -> DirectoryError {
        match error {
            LdapError::Timeout { .. } => DirectoryError::Timeout {
                server: self.server.clone(),
                during: "waiting for an answer",
                timeout_secs: self.timeout.as_secs(),
            },
            LdapError::LdapResult { result } => self.refused(operation, result.rc, &result.text),
            other => DirectoryError::ConnectionLost {
                server: self.server.clone(),
                operation: operation.to_owned(),
                reason: other.to_string(),
            },
        }
    }
}

/// The URL as typed, with any `user:password@` replaced, so that it can be echoed in a message.
fn without_user_info(url_text: &str) -> String {
    let Some((scheme, rest)) = url_text.split_once("://") else {
        return url_text.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url_text.to_owned(),
    }
}

/// Sorts a failure to connect into what the administrator can act on.
fn connect_error(server: &str, target: &DirectoryTarget, error: LdapError) -> DirectoryError {
    let server = server.to_owned();
    match error {
        LdapError::Io { source } => io_connect_error(server, &source),
        LdapError::Rustls { source } => tls_error(server, &source),
        LdapError::DNSName { source } => DirectoryError::InvalidUrl {
            url: target.url.to_string(),
            reason: format!("the host is not a valid TLS server name ({source})"),
        },
        LdapError::Timeout { .. } => DirectoryError::Timeout {
            server,
            during: "connecting",
            timeout_secs: target.timeout.as_secs(),
        },
        LdapError::LdapResult { result } => DirectoryError::Refused {
            server,
            operation: "start TLS".to_owned(),
            rc: result.rc,
            code_name: result_code_name(result.rc),
            server_message: result.text.trim().to_owned(),
        },
        // The TCP connection stood but the StartTLS exchange died: typically ldap:// pointed at
        // the LDAPS port, where the server expects a TLS handshake first.
        other if target.starttls => DirectoryError::TlsHandshake {
            server,
            reason: format!("the server did not answer StartTLS ({other})"),
        },
        other => DirectoryError::Unreachable {
            server,
            reason: other.to_string(),
        },
    }
}

fn io_connect_error(server: String, source: &io::Error) -> DirectoryError {
    if let Some(tls) = source
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return tls_error(server, tls);
    }
    let reason = match source.kind() {
        io::ErrorKind::ConnectionRefused => {
            "the connection was refused (nothing listens on that port)".to_owned()
        }
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => {
            return DirectoryError::TlsHandshake {
                server,
                reason: "the server closed the connection".to_owned(),
            };
        }
        io::ErrorKind::TimedOut => "the connection timed out".to_owned(),
        _ if source.to_string().contains("lookup") => {
            format!("the host name could not be resolved ({source})")
        }
        _ => source.to_string(),
    };
    DirectoryError::Unreachable { server, reason }
}

fn tls_error(server: String, error: &rustls::Error) -> DirectoryError {
    use rustls::CertificateError;
    match error {
        rustls::Error::InvalidCertificate(certificate_error) => {
            let reason = match certificate_error {
                CertificateError::UnknownIssuer => {
                    "it was issued by a CA this machine does not trust".to_owned()
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    "it is not valid for this host name".to_owned()
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    "it has expired".to_owned()
                }
                other => format!("{other:?}"),
            };
            DirectoryError::UntrustedCertificate { server, reason }
        }
        other => DirectoryError::TlsHandshake {
            server,
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Result<DirectoryTarget, DirectoryError> {
        DirectoryTarget::new(url, TlsTrust::Insecure, Duration::from_secs(5))
    }

    #[test]
    fn urls_are_validated_with_a_reason() {
        let ok = target("ldaps://dc1.corp.example.com").expect("valid");
        assert_eq!(ok.server(), "dc1.corp.example.com:636");
        assert!(!ok.starttls);
        let starttls = target("ldap://10.0.0.5").expect("valid");
        assert_eq!(starttls.server(), "10.0.0.5:389");
        assert!(starttls.starttls);

        for (bad, expected) in [
            ("dc1.corp.example.com", "relative URL"),
            ("https://dc1", "scheme must be"),
            ("ldaps://", "names no host"),
            ("ldaps://admin:pw@dc1", "user name or password"),
            ("ldaps://dc1/DC=corp", "path or query"),
            ("ldaps://dc1:99999", "invalid port"),
        ] {
            let error = target(bad).expect_err(bad);
            assert!(error.is_bad_input(), "{bad}");
            assert!(error.to_string().contains(expected), "{bad}: {error}");
        }
    }

    #[test]
    fn credentials_in_a_url_never_reach_the_message() {
        let error = target("ldaps://admin:TopSecret1@dc1/x").expect_err("rejected");
        let message = error.to_string();
        assert!(!message.contains("TopSecret1"), "{message}");
        assert!(message.contains("ldaps://***@dc1/x"), "{message}");
    }
}
