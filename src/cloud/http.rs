//! What signing in (`auth`) and Graph (`graph`) share about HTTP: one client, built the same way
//! (this program's TLS, no redirects), bodies read with a size cap, and the durations a server
//! sends clamped before they are used.

use std::time::Duration;

use crate::tls::{TlsSetupError, TlsTrust};

/// The largest answer dirsync reads from Graph: a page of 999 users with every property
/// dirsync selects is a few MB; anything far beyond is not Graph.
pub const MAX_GRAPH_BODY_BYTES: usize = 64 * 1024 * 1024;
/// The largest answer dirsync reads from the sign-in server (a token is a few KB).
pub const MAX_TOKEN_BODY_BYTES: usize = 1024 * 1024;
/// The longest `Retry-After` dirsync waits in one go: after it, the request is tried again
/// (and waits again if the server still says so). Beyond this, a value is a server's mistake.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
/// The longest token lifetime dirsync believes (Entra's are about an hour).
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The HTTP client for the cloud. It follows no redirect: Graph and the identity platform never
/// redirect an API call, and a redirect could carry a bearer token or a secret elsewhere.
pub fn http_client(trust: &TlsTrust, timeout: Duration) -> Result<reqwest::Client, TlsSetupError> {
    let mut tls = (*crate::tls::client_config(trust)?).clone();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("dirsync/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a client with a preconfigured rustls backend always builds"))
}

/// Why a body was not read.
#[derive(Debug)]
pub enum BodyError {
    Transport(reqwest::Error),
    /// The answer was larger than the cap (its size, or what had arrived when it passed it).
    TooLarge {
        limit: usize,
    },
}

/// The whole body, unless it is larger than `limit` bytes: the declared length is checked
/// first, then the bytes as they arrive, so a huge answer is never held in memory.
pub async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl BodyError {
    pub fn describe(&self) -> String {
        match self {
            BodyError::Transport(error) => describe_transport_error(error),
            BodyError::TooLarge { limit } => format!(
                "the answer was larger than {} MB, more than dirsync reads",
                limit / (1024 * 1024)
            ),
        }
    }
}

/// Reads `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3; Graph sends seconds),
/// clamped to [`MAX_RETRY_AFTER`]. A date in the past is no wait.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(std::time::SystemTime::now())
                .unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// A token lifetime a server sent (`expires_in`), at most [`MAX_TOKEN_LIFETIME`].
pub fn token_lifetime(expires_in_secs: u64) -> Duration {
    Duration::from_secs(expires_in_secs).min(MAX_TOKEN_LIFETIME)
}

/// The first bytes of an unexpected answer, as text, for an error message.
pub fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]);
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!(
        "'{}{}'",
        text.trim(),
        if bytes.len() > 120 { "…" } else { "" }
    )
}

/// A transport error in words, with its cause chain (reqwest's top line alone says little). URLs
/// in reqwest's messages carry no credentials: tokens travel in headers and forms, never in URLs.
pub fn describe_transport_error(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "no answer in time".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "the connection failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date_and_clamped() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(
            parse_retry_after("18446744073709551615"),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later =
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
        let wait = parse_retry_after(&later).expect("a date");
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
    }

    #[test]
    fn token_lifetimes_are_clamped() {
        assert_eq!(token_lifetime(3599), Duration::from_secs(3599));
        assert_eq!(token_lifetime(u64::MAX), MAX_TOKEN_LIFETIME);
    }

    /// A server on loopback that answers every connection with `answer` and counts them.
    async fn server(answer: Vec<u8>) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = format!("http://{}", listener.local_addr().expect("address"));
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = std::sync::Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request).await;
                    let _ = stream.write_all(&answer).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        (address, connections)
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let (elsewhere, visits) =
            server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".to_vec()).await;
        let redirect = format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {elsewhere}/collect\r\nContent-Length: 0\r\n\r\n"
        );
        let (graph, _) = server(redirect.into_bytes()).await;
        let client = http_client(&TlsTrust::SystemRoots, Duration::from_secs(5)).expect("client");
        let response = client
            .get(format!("{graph}/v1.0/users"))
            .bearer_auth("a-token")
            .send()
            .await
            .expect("an answer");
        assert_eq!(response.status(), 307);
        assert_eq!(
            visits.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "the token never went to the other server"
        );
    }

    #[tokio::test]
    async fn bodies_past_the_cap_are_refused() {
        let client = http_client(&TlsTrust::SystemRoots, Duration::from_secs(5)).expect("client");
        // Declared too large: refused before reading.
        let (declared, _) =
            server(b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n{".to_vec()).await;
        let response = client.get(&declared).send().await.expect("an answer");
        assert!(matches!(
            read_capped(response, 1024).await,
            Err(BodyError::TooLarge { limit: 1024 })
        ));
        // Not declared (until the connection closes): refused once past the cap.
        let mut streamed = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
        streamed.extend(std::iter::repeat_n(b'x', 5000));
        let (undeclared, _) = server(streamed).await;
        let response = client.get(&undeclared).send().await.expect("an answer");
        assert!(matches!(
            read_capped(response, 1024).await,
            Err(BodyError::TooLarge { limit: 1024 })
        ));
        let (small, _) = server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".to_vec()).await;
        let response = client.get(&small).send().await.expect("an answer");
        assert_eq!(read_capped(response, 1024).await.expect("read"), b"{}");
    }
}
