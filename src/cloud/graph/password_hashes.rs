//! The password hash endpoint, `{graph}/dirsync/v1/passwordHashes` (README, "Password hash
//! sync").

use serde_json::{Value, json};
use url::Url;

use super::transport::{Verdict, judge};
use super::{GraphClient, GraphError, Method};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordHashEndpoint {
    Available {
        max_batch: usize,
    },
    /// What `url` answered instead.
    Missing {
        url: String,
        answer: String,
    },
}

/// One user's password hash credential for [`GraphClient::set_password_hashes`]. The credential
/// is a secret: it is only ever put in the request body.
pub struct PasswordHashItem<'a> {
    pub user_id: &'a str,
    pub credential: &'a str,
}

impl std::fmt::Debug for PasswordHashItem<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHashItem")
            .field("user_id", &self.user_id)
            .field("credential", &"***")
            .finish()
    }
}

impl GraphClient {
    /// `{graph}/dirsync/v1/passwordHashes`: the cloud side of password hash sync. It is not part
    /// of Microsoft Graph (public Graph has no such endpoint; the tenant emulator provides it,
    /// standing in for Entra Connect's private password-sync service).
    fn password_hash_url(&self) -> Url {
        self.extension_url(&["passwordHashes"])
    }

    /// Whether this tenant accepts password hashes, and how many per request.
    pub async fn password_hash_endpoint(&self) -> Result<PasswordHashEndpoint, GraphError> {
        let url = self.password_hash_url();
        match self.execute(Method::Get, url.clone(), None, false, 0).await {
            Ok(body) => {
                let max_batch = body
                    .as_ref()
                    .and_then(|body| body.get("maxBatchSize"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                if max_batch == 0 {
                    return Ok(PasswordHashEndpoint::Missing {
                        url: url.to_string(),
                        answer: "an answer without maxBatchSize".to_owned(),
                    });
                }
                Ok(PasswordHashEndpoint::Available {
                    max_batch: usize::try_from(max_batch).unwrap_or(usize::MAX),
                })
            }
            // Public Graph answers an unknown path with 400 ("Invalid version") or 404.
            Err(
                error @ (GraphError::NotFound { .. }
                | GraphError::BadRequest { .. }
                | GraphError::NotGraph { .. }
                | GraphError::Failed { .. }),
            ) => Ok(PasswordHashEndpoint::Missing {
                url: url.to_string(),
                answer: error.to_string(),
            }),
            Err(other) => Err(other),
        }
    }

    /// Sends one request of password hashes (at most the endpoint's `max_batch`). Each user's
    /// outcome comes back in order; `Err` means the request as a whole failed.
    pub async fn set_password_hashes(
        &self,
        items: &[PasswordHashItem<'_>],
    ) -> Result<Vec<Result<(), GraphError>>, GraphError> {
        let body = json!({
            "value": items
                .iter()
                .map(|item| json!({ "id": item.user_id, "credential": item.credential }))
                .collect::<Vec<_>>()
        });
        let answer = self
            .execute(
                Method::Post,
                self.password_hash_url(),
                Some(&body),
                false,
                1,
            )
            .await?;
        let results = answer
            .as_ref()
            .and_then(|answer| answer.get("value"))
            .and_then(Value::as_array)
            .filter(|results| results.len() == items.len())
            .ok_or_else(|| {
                self.not_graph("a password hash answer without one result per user".to_owned())
            })?;
        Ok(results
            .iter()
            .map(|result| {
                let status = result
                    .get("status")
                    .and_then(Value::as_u64)
                    .and_then(|status| u16::try_from(status).ok())
                    .unwrap_or(0);
                match judge(status, None, Some(result.clone()), &self.base) {
                    Verdict::Done(_) => Ok(()),
                    Verdict::Failed(error) | Verdict::TokenRejected(error) => Err(error),
                    Verdict::Throttled { last, .. } | Verdict::Retry { last, .. } => {
                        Err(GraphError::Failed {
                            status,
                            code: String::new(),
                            message: last,
                        })
                    }
                }
            })
            .collect())
    }
}
