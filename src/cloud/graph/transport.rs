//! One HTTP exchange with Graph and how its answer is judged: admitted by the flow control,
//! signed, retried after throttling, server errors, dropped connections and expired tokens, as
//! https://learn.microsoft.com/en-us/graph/throttling and https://learn.microsoft.com/en-us/graph/errors
//! say.

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use url::Url;

use super::{GraphClient, GraphError, Method};
use crate::cloud::http::{
    BodyError, MAX_GRAPH_BODY_BYTES, describe_transport_error, parse_retry_after, read_capped,
    snippet,
};

impl GraphClient {
    /// One HTTP exchange with retries: admits it through the flow control, signs it, and sends
    /// it again after 429, 5xx, a dropped connection, or an expired token.
    pub(in crate::cloud) async fn execute(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        eventual: bool,
        writes: u32,
    ) -> Result<Option<Value>, GraphError> {
        self.execute_once_if_unanswered(method, url, body, eventual, writes, false)
            .await
    }

    /// As `execute`; with `creates`, an exchange whose answer is lost (5xx, a dropped connection)
    /// is not sent again but answered `OutcomeUnknown`: it may have made objects. A 429, a
    /// refused token and a request that never left are still retried (nothing was done).
    pub(in crate::cloud) async fn execute_once_if_unanswered(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        eventual: bool,
        writes: u32,
        creates: bool,
    ) -> Result<Option<Value>, GraphError> {
        let started = Instant::now();
        let mut attempt: u32 = 0;
        let mut signed_in_again = false;
        let mut last_throttle = None;
        loop {
            // A Retry-After longer than the time left is not waited out: give up now.
            let paused_for = self.flow.paused_for();
            if paused_for > Duration::ZERO
                && started.elapsed() + paused_for >= self.flow.policy().give_up_after
            {
                return Err(GraphError::Throttled {
                    waited: started.elapsed(),
                    last: last_throttle.unwrap_or_else(|| {
                        format!("Graph asked to wait {} s more", paused_for.as_secs())
                    }),
                });
            }
            let permit = self.flow.admit(writes).await;
            let token = self.tokens.token().await?;
            let mut request = self
                .http
                .request(method.reqwest(), url.clone())
                .bearer_auth(token.expose())
                .header("Accept", "application/json");
            if eventual {
                request = request.header("ConsistencyLevel", "eventual");
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            tracing::debug!(method = method.as_str(), url = %url.path(), "graph request");
            let verdict = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|value| value.to_str().ok())
                        .and_then(parse_retry_after);
                    let is_json = response
                        .headers()
                        .get(reqwest::header::CONTENT_TYPE)
                        .and_then(|value| value.to_str().ok())
                        .is_some_and(|value| value.contains("json"));
                    match read_capped(response, MAX_GRAPH_BODY_BYTES).await {
                        Ok(bytes) => self.judge_http(status, retry_after, is_json, &bytes),
                        Err(BodyError::Transport(error)) => self.dropped(&error),
                        Err(too_large @ BodyError::TooLarge { .. }) => {
                            Verdict::Failed(GraphError::NotGraph {
                                url: self.base.to_string(),
                                what: too_large.describe(),
                            })
                        }
                    }
                }
                Err(error) if error.is_builder() => {
                    // Nothing was sent: give the slots back.
                    self.flow.writes_answered(writes, Instant::now());
                    return Err(GraphError::NotGraph {
                        url: self.base.to_string(),
                        what: describe_transport_error(&error),
                    });
                }
                Err(error) => self.dropped(&error),
            };
            self.flow.writes_answered(writes, Instant::now());
            drop(permit);
            let (wait, last, throttled) = match verdict {
                Verdict::Done(body) => return Ok(body),
                Verdict::Failed(error) => return Err(error),
                Verdict::TokenRejected(error) => {
                    if signed_in_again {
                        return Err(error);
                    }
                    // The token expired early or was revoked: sign in once more, then retry.
                    signed_in_again = true;
                    self.tokens.forget().await;
                    continue;
                }
                Verdict::Throttled { retry_after, last } => {
                    // The flow control holds every request until Retry-After has passed.
                    self.flow.throttled(retry_after);
                    last_throttle = Some(last.clone());
                    (retry_after, last, true)
                }
                Verdict::Retry { last, .. } if creates => {
                    return Err(GraphError::OutcomeUnknown { last });
                }
                Verdict::Retry { retry_after, last } => {
                    attempt += 1;
                    (
                        retry_after.unwrap_or_else(|| self.flow.backoff(attempt)),
                        last,
                        false,
                    )
                }
            };
            if started.elapsed() + wait >= self.flow.policy().give_up_after {
                return Err(given_up(throttled, attempt, started, last));
            }
            tracing::debug!(%last, wait_ms = wait.as_millis() as u64, "graph request will be retried");
            self.flow.retrying();
            if !throttled {
                tokio::time::sleep(wait).await;
            }
        }
    }

    fn dropped(&self, error: &reqwest::Error) -> Verdict {
        self.flow.dropped();
        Verdict::Retry {
            retry_after: None,
            last: describe_transport_error(error),
        }
    }

    fn judge_http(
        &self,
        status: u16,
        retry_after: Option<Duration>,
        is_json: bool,
        bytes: &[u8],
    ) -> Verdict {
        if !is_json && !bytes.is_empty() && status < 500 && status != 429 {
            return Verdict::Failed(self.not_graph(format!(
                "HTTP {status} with a non-JSON answer: {}",
                snippet(bytes)
            )));
        }
        let body = if bytes.is_empty() {
            None
        } else {
            match serde_json::from_slice::<Value>(bytes) {
                Ok(body) => Some(body),
                Err(_) if status >= 500 || status == 429 => None,
                Err(error) => {
                    return Verdict::Failed(
                        self.not_graph(format!("its answer is not JSON: {error}")),
                    );
                }
            }
        };
        if status >= 500 {
            self.flow.server_error();
        }
        judge(status, retry_after, body, &self.base)
    }
}

/// The error for a request given up after retrying since `started`.
pub(super) fn given_up(
    throttled: bool,
    attempts: u32,
    started: Instant,
    last: String,
) -> GraphError {
    let waited = started.elapsed();
    if throttled {
        GraphError::Throttled { waited, last }
    } else {
        GraphError::Unavailable {
            attempts,
            waited,
            last,
        }
    }
}

/// What to do with one answer.
#[derive(Debug)]
pub(super) enum Verdict {
    Done(Option<Value>),
    Failed(GraphError),
    Throttled {
        retry_after: Duration,
        last: String,
    },
    Retry {
        retry_after: Option<Duration>,
        last: String,
    },
    TokenRejected(GraphError),
}

/// Judges a Graph answer (a whole response or one part of a batch).
pub(super) fn judge(
    status: u16,
    retry_after: Option<Duration>,
    body: Option<Value>,
    base: &Url,
) -> Verdict {
    if (200..300).contains(&status) {
        return Verdict::Done(body);
    }
    let (code, message, details) = error_parts(body.as_ref());
    let last = format!("HTTP {status} {code}: {message}");
    match status {
        429 => Verdict::Throttled {
            // Graph always sends Retry-After with 429; when a proxy strips it, wait a little.
            retry_after: retry_after.unwrap_or(Duration::from_secs(2)),
            last,
        },
        500 | 502 | 503 | 504 => Verdict::Retry { retry_after, last },
        400 => {
            let conflicting = details
                .iter()
                .find(|(detail_code, _)| detail_code == "ObjectConflict")
                .map(|(_, target)| target.clone())
                .or_else(|| conflict_property(&message));
            match conflicting {
                Some(property) => Verdict::Failed(GraphError::Conflict {
                    property,
                    value: None,
                    message,
                }),
                None => Verdict::Failed(GraphError::BadRequest { code, message }),
            }
        }
        401 => Verdict::TokenRejected(GraphError::Unauthorized { code, message }),
        403 => Verdict::Failed(GraphError::Forbidden { code, message }),
        404 => Verdict::Failed(GraphError::NotFound {
            resource: base.to_string(),
            message,
        }),
        _ => Verdict::Failed(GraphError::Failed {
            status,
            code,
            message,
        }),
    }
}

/// `error.code`, `error.message` and each `details[]` (code, target) of a Graph error body.
fn error_parts(body: Option<&Value>) -> (String, String, Vec<(String, String)>) {
    let error = body.and_then(|body| body.get("error"));
    let text = |value: Option<&Value>, name: &str| {
        value
            .and_then(|value| value.get(name))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let details = error
        .and_then(|error| error.get("details"))
        .and_then(Value::as_array)
        .map(|details| {
            details
                .iter()
                .map(|detail| (text(Some(detail), "code"), text(Some(detail), "target")))
                .collect()
        })
        .unwrap_or_default();
    let code = text(error, "code");
    let message = text(error, "message");
    (
        if code.is_empty() {
            "no error code".to_owned()
        } else {
            code
        },
        if message.is_empty() {
            "no message".to_owned()
        } else {
            message
        },
        details,
    )
}

/// "Another object with the same value for property userPrincipalName already exists."
fn conflict_property(message: &str) -> Option<String> {
    let rest = message.strip_prefix("Another object with the same value for property ")?;
    let property = rest.split_whitespace().next()?;
    Some(property.trim_end_matches('.').to_owned())
}

/// Names the value that collided, from what was sent.
pub(super) fn with_conflicting_value(error: GraphError, body: Option<&Value>) -> GraphError {
    match error {
        GraphError::Conflict {
            property,
            value: None,
            message,
        } => {
            let value = body
                .and_then(|body| body.get(&property))
                .map(|value| match value {
                    Value::String(text) => text.clone(),
                    Value::Array(values) => values
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", "),
                    other => other.to_string(),
                });
            GraphError::Conflict {
                property,
                value,
                message,
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn base() -> Url {
        Url::parse("https://graph.microsoft.com/v1.0").expect("valid")
    }

    #[test]
    fn conflicts_name_the_property_and_the_value_sent() {
        let body = json!({"error": {"code": "Request_BadRequest",
            "message": "Another object with the same value for property userPrincipalName already exists.",
            "details": [{"code": "ObjectConflict", "target": "userPrincipalName"}]}});
        let Verdict::Failed(error) = judge(400, None, Some(body), &base()) else {
            panic!("a conflict is final");
        };
        let sent = json!({"userPrincipalName": "ann@contoso.com"});
        let error = with_conflicting_value(error, Some(&sent));
        assert_eq!(
            error,
            GraphError::Conflict {
                property: "userPrincipalName".to_owned(),
                value: Some("ann@contoso.com".to_owned()),
                message: "Another object with the same value for property userPrincipalName already exists.".to_owned(),
            }
        );
        // Without details, the message alone names the property.
        let body = json!({"error": {"code": "Request_BadRequest",
            "message": "Another object with the same value for property proxyAddresses already exists."}});
        let Verdict::Failed(GraphError::Conflict { property, .. }) =
            judge(400, None, Some(body), &base())
        else {
            panic!("a conflict");
        };
        assert_eq!(property, "proxyAddresses");
    }

    #[test]
    fn statuses_are_judged_as_graph_documents() {
        assert!(matches!(
            judge(204, None, None, &base()),
            Verdict::Done(None)
        ));
        assert!(matches!(
            judge(429, Some(Duration::from_secs(9)), None, &base()),
            Verdict::Throttled { retry_after, .. } if retry_after == Duration::from_secs(9)
        ));
        assert!(matches!(
            judge(503, None, None, &base()),
            Verdict::Retry { .. }
        ));
        assert!(matches!(
            judge(401, None, None, &base()),
            Verdict::TokenRejected(_)
        ));
        let forbidden = json!({"error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges to complete the operation."}});
        let Verdict::Failed(error) = judge(403, None, Some(forbidden), &base()) else {
            panic!("403 is final");
        };
        assert_eq!(error.kind(), crate::cloud::error::ErrorKind::Forbidden);
        assert!(error.to_string().contains("Insufficient privileges"));
    }

    #[test]
    fn snippets_are_short_and_single_line() {
        let html = b"<html>\n<body>Sign in</body></html>";
        assert_eq!(snippet(html), "'<html> <body>Sign in</body></html>'");
        assert!(snippet(&[b'x'; 500]).ends_with("…'"));
    }

    mod properties {
        use proptest::prelude::*;
        use serde_json::Value;

        use super::super::*;

        /// Any JSON value, nested a few levels: what a server may send as an error body.
        fn any_json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                any::<String>().prop_map(Value::String),
                Just(Value::String("ObjectConflict".to_owned())),
                Just(Value::String("Request_BadRequest".to_owned())),
            ];
            leaf.prop_recursive(4, 64, 8, |inner| {
                let key = prop_oneof![
                    Just("error".to_owned()),
                    Just("code".to_owned()),
                    Just("message".to_owned()),
                    Just("details".to_owned()),
                    Just("target".to_owned()),
                    Just("innerError".to_owned()),
                    any::<String>(),
                ];
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    proptest::collection::btree_map(key, inner, 0..6)
                        .prop_map(|map| Value::Object(map.into_iter().collect())),
                ]
            })
        }

        proptest! {
            /// Graph's error bodies, whatever their shape: a verdict, never a panic.
            #[test]
            fn any_error_body_gets_a_verdict(
                status in 100u16..600,
                retry_after_secs in proptest::option::of(any::<u64>()),
                body in proptest::option::of(any_json()),
            ) {
                let base = Url::parse("https://graph.microsoft.com/v1.0/").expect("URL");
                let retry_after = retry_after_secs.map(Duration::from_secs);
                let verdict = judge(status, retry_after, body, &base);
                let _ = format!("{verdict:?}");
            }

            /// The same as bytes on the wire: JSON or not, the client decides without panicking.
            #[test]
            fn any_error_bytes_get_a_verdict(
                status in 100u16..600,
                bytes in proptest::collection::vec(any::<u8>(), 0..200),
            ) {
                let body = serde_json::from_slice::<Value>(&bytes).ok();
                let base = Url::parse("https://graph.microsoft.com/v1.0/").expect("URL");
                let _ = judge(status, None, body, &base);
            }
        }
    }
}
