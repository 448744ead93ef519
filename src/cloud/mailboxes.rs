//! The cloud side of hybrid Exchange write-back (README, "Hybrid Exchange write-back"): the mailbox attributes Exchange Online
//! masters for a cloud user, read as a delta.
//!
//! Public Microsoft Graph exposes none of them. Entra Connect reads them from Entra's private
//! sync service (its connector's `cloudLegacyExchangeDN`, `cloudMSExchArchiveStatus`, …); the
//! tenant emulator offers the same values at `{graph}/dirsync/v1/mailboxes/delta`, outside
//! `/v1.0` so nothing pretends to be Graph. Against public Graph the first read says the
//! endpoint is missing.

use base64::Engine as _;
use serde_json::Value;

use super::error::GraphError;
use url::Url;

use super::graph::{DeltaLink, GraphClient, Method};

/// One cloud user's mailbox attributes, as the tenant holds them. Each is `None` (or empty)
/// when Exchange Online has no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudMailbox {
    pub user_id: String,
    pub legacy_exchange_dn: Option<String>,
    pub archive_status: Option<i64>,
    pub safe_senders_hash: Option<Vec<u8>>,
    pub blocked_senders_hash: Option<Vec<u8>>,
    pub safe_recipients_hash: Option<Vec<u8>>,
    pub voice_mail_settings: Vec<String>,
}

impl CloudMailbox {
    /// Reads one item of the mailbox delta (the form the store keeps, too).
    pub fn from_value(value: &Value) -> Result<CloudMailbox, String> {
        let user_id = value
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or("a mailbox without an id")?
            .to_owned();
        let string = |name: &str| -> Result<Option<String>, String> {
            match value.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(text)) => Ok(Some(text.clone())),
                Some(_) => Err(format!("{name} of {user_id} is not a string")),
            }
        };
        let bytes = |name: &str| -> Result<Option<Vec<u8>>, String> {
            string(name)?
                .map(|text| {
                    base64::engine::general_purpose::STANDARD
                        .decode(text)
                        .map_err(|error| format!("{name} of {user_id} is not base64 ({error})"))
                })
                .transpose()
        };
        let archive_status = match value.get("cloudMSExchArchiveStatus") {
            None | Some(Value::Null) => None,
            Some(number) => Some(number.as_i64().ok_or_else(|| {
                format!("cloudMSExchArchiveStatus of {user_id} is not an integer")
            })?),
        };
        let voice_mail_settings = match value.get("cloudMSExchUCVoiceMailSettings") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str().map(str::to_owned).ok_or_else(|| {
                        format!("cloudMSExchUCVoiceMailSettings of {user_id} holds a non-string")
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(format!(
                    "cloudMSExchUCVoiceMailSettings of {user_id} is not an array"
                ));
            }
        };
        Ok(CloudMailbox {
            legacy_exchange_dn: string("cloudLegacyExchangeDN")?,
            archive_status,
            safe_senders_hash: bytes("cloudMSExchSafeSendersHash")?,
            blocked_senders_hash: bytes("cloudMSExchBlockedSendersHash")?,
            safe_recipients_hash: bytes("cloudMSExchSafeRecipientsHash")?,
            voice_mail_settings,
            user_id,
        })
    }
}

/// One answer of the mailbox delta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxChange {
    /// The item as the tenant sent it, and its parsed form.
    Changed { item: Value, mailbox: CloudMailbox },
    /// The user was deleted in the cloud.
    Removed { user_id: String },
}

/// One page of the mailbox delta.
#[derive(Debug, Clone, PartialEq)]
pub enum MailboxPage {
    /// Changes; the last page also carries the link the next read starts from.
    Changes {
        changes: Vec<MailboxChange>,
        delta_link: Option<DeltaLink>,
    },
    /// The tenant no longer knows the link it gave: read everything again, without it.
    ResyncRequired,
    /// The tenant has no mailbox endpoint (public Graph): what `url` answered instead.
    Missing { url: String, answer: String },
}

/// Reads the mailbox delta one page at a time, so that a large tenant's first read never sits
/// in memory whole (a safe senders hash alone may be 32,000 bytes).
#[derive(Debug)]
pub struct MailboxDelta<'a> {
    client: &'a GraphClient,
    first: Url,
    next: Option<Url>,
    from_link: bool,
    pages: usize,
}

impl MailboxDelta<'_> {
    /// The next page, or `None` after the last one.
    pub async fn next_page(&mut self) -> Result<Option<MailboxPage>, GraphError> {
        let Some(url) = self.next.take() else {
            return Ok(None);
        };
        let first_page = self.pages == 0;
        self.pages += 1;
        let page = match self.client.execute(Method::Get, url, None, false, 0).await {
            Ok(page) => page,
            Err(GraphError::Failed { status: 410, .. }) => {
                return Ok(Some(MailboxPage::ResyncRequired));
            }
            // Public Graph answers an unknown path with 400 ("Invalid version") or 404.
            Err(
                error @ (GraphError::NotFound { .. }
                | GraphError::BadRequest { .. }
                | GraphError::NotGraph { .. }),
            ) if first_page && !self.from_link => {
                return Ok(Some(MailboxPage::Missing {
                    url: self.first.to_string(),
                    answer: error.to_string(),
                }));
            }
            Err(other) => return Err(other),
        };
        let client = self.client;
        let page = page.ok_or_else(|| client.not_graph("an empty mailbox page".to_owned()))?;
        let items = page
            .get("value")
            .and_then(Value::as_array)
            .ok_or_else(|| client.not_graph("a mailbox page without a value array".to_owned()))?;
        let mut changes = Vec::with_capacity(items.len());
        for item in items {
            if item.get("@removed").is_some() {
                let user_id = item.get("id").and_then(Value::as_str).unwrap_or_default();
                changes.push(MailboxChange::Removed {
                    user_id: user_id.to_owned(),
                });
            } else {
                let mailbox =
                    CloudMailbox::from_value(item).map_err(|what| client.not_graph(what))?;
                changes.push(MailboxChange::Changed {
                    item: item.clone(),
                    mailbox,
                });
            }
        }
        let mut delta_link = None;
        if let Some(next) = page.get("@odata.nextLink").and_then(Value::as_str) {
            self.next = Some(client.follow(next)?);
        } else if let Some(link) = page.get("@odata.deltaLink").and_then(Value::as_str) {
            // Checked now, so a stored link is known to be ours.
            client.follow(link)?;
            delta_link = Some(DeltaLink(link.to_owned()));
        } else {
            return Err(
                client.not_graph("a mailbox page with neither nextLink nor deltaLink".to_owned())
            );
        }
        Ok(Some(MailboxPage::Changes {
            changes,
            delta_link,
        }))
    }
}

/// Whether the tenant offers the mailbox attributes at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxEndpoint {
    Available,
    /// What `url` answered instead.
    Missing {
        url: String,
        answer: String,
    },
}

impl GraphClient {
    /// Asks for one mailbox, to learn whether the endpoint exists (setup checks this before
    /// turning hybrid write-back on).
    pub async fn mailbox_endpoint(&self) -> Result<MailboxEndpoint, GraphError> {
        let url = self.extension_url(&["mailboxes", "delta"]);
        let mut probe = url.clone();
        probe.query_pairs_mut().append_pair("$top", "1");
        match self.execute(Method::Get, probe, None, false, 0).await {
            Ok(Some(page)) if page.get("value").is_some_and(Value::is_array) => {
                Ok(MailboxEndpoint::Available)
            }
            Ok(_) => Ok(MailboxEndpoint::Missing {
                url: url.to_string(),
                answer: "an answer without a value array".to_owned(),
            }),
            // Public Graph answers an unknown path with 400 ("Invalid version") or 404.
            Err(
                error @ (GraphError::NotFound { .. }
                | GraphError::BadRequest { .. }
                | GraphError::NotGraph { .. }),
            ) => Ok(MailboxEndpoint::Missing {
                url: url.to_string(),
                answer: error.to_string(),
            }),
            Err(other) => Err(other),
        }
    }

    /// The mailbox changes since `from`, or every mailbox when `from` is `None`, page by page.
    pub fn mailbox_delta(&self, from: Option<&DeltaLink>) -> Result<MailboxDelta<'_>, GraphError> {
        let first = self.extension_url(&["mailboxes", "delta"]);
        let next = match from {
            Some(link) => self.follow(&link.0)?,
            None => first.clone(),
        };
        Ok(MailboxDelta {
            client: self,
            first,
            next: Some(next),
            from_link: from.is_some(),
            pages: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_item_reads_every_value_and_null_as_none() {
        let mailbox = CloudMailbox::from_value(&json!({
            "id": "u1",
            "cloudLegacyExchangeDN": "/o=ExchangeLabs/cn=Recipients/cn=u1",
            "cloudMSExchArchiveStatus": 1,
            "cloudMSExchSafeSendersHash": "AAEC",
            "cloudMSExchBlockedSendersHash": null,
            "cloudMSExchUCVoiceMailSettings": ["CsvEnabled=true"],
        }))
        .expect("parses");
        assert_eq!(mailbox.archive_status, Some(1));
        assert_eq!(mailbox.safe_senders_hash, Some(vec![0, 1, 2]));
        assert_eq!(mailbox.blocked_senders_hash, None);
        assert_eq!(mailbox.safe_recipients_hash, None);
        assert_eq!(mailbox.voice_mail_settings, ["CsvEnabled=true"]);
    }

    #[test]
    fn a_malformed_item_names_the_property() {
        let error =
            CloudMailbox::from_value(&json!({"id": "u1", "cloudMSExchSafeSendersHash": "%%"}))
                .expect_err("not base64");
        assert!(error.contains("cloudMSExchSafeSendersHash"), "{error}");
        let error = CloudMailbox::from_value(&json!({"id": "u1", "cloudMSExchArchiveStatus": "1"}))
            .expect_err("not an integer");
        assert!(error.contains("cloudMSExchArchiveStatus"), "{error}");
        assert!(CloudMailbox::from_value(&json!({"cloudLegacyExchangeDN": "x"})).is_err());
    }
}
