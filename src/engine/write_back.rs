//! Hybrid Exchange write-back (README, "Hybrid Exchange write-back"): the mailbox attributes Exchange Online masters flow
//! back into AD, so that on-premises Exchange and mail filtering see what the cloud decided.
//!
//! The cycle's cloud import reads the tenant's mailbox delta into the store; the write-back
//! export step then brings each linked user in scope in line, as the service account, writing
//! only the attributes the forest's schema has:
//! - proxyAddresses gets `X500:` + the cloud legacyExchangeDN, added and never replacing (the
//!   on-premises addresses stay, and an older X500 stays so old replies still reach the user);
//! - msExchArchiveStatus and the three safelist hashes take the cloud's single value (none
//!   clears it), msExchUCVoiceMailSettings exactly the cloud's values.
//!
//! Nothing loops: the directory import reads the written values back, but none of them flows to
//! the cloud (mail comes from the primary `SMTP:` address, which write-back never touches).

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::Value;

use super::types::{CycleError, Progress, StopSignal};
use crate::clock::now_ms;
use crate::cloud::mailboxes::CloudMailbox;
use crate::directory::write_back::{
    AttributeEdit, is_value_refused, modify_attributes, read_attributes,
};
use crate::directory::{DirectoryConnection, DirectoryError};
use crate::store::StateStore;
use crate::store::runs::{AttributeValues, ErrorRecord, ObjectChangeRecord, RunId, StepCounters};
use crate::store::vocabulary::{ChangeKind, ObjectKind, StepKind};
use crate::store::write_back::WriteBackTarget;

const PROXY_ADDRESSES: &str = "proxyAddresses";
/// Octet-string attributes: recorded as base64.
const BINARY_ATTRIBUTES: &[&str] = &[
    "msExchSafeSendersHash",
    "msExchBlockedSendersHash",
    "msExchSafeRecipientsHash",
];
const SINGLE_VALUED: &[&str] = &[
    "msExchArchiveStatus",
    "msExchSafeSendersHash",
    "msExchBlockedSendersHash",
    "msExchSafeRecipientsHash",
];

/// What the cloud says one AD attribute should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    /// This value among the others (an X500 proxy address: added, never replacing).
    Includes(Vec<u8>),
    /// Exactly these values; none clears the attribute.
    Exactly(Vec<Vec<u8>>),
}

/// The AD attributes a cloud mailbox asks for, in
/// [`crate::directory::permissions::WRITE_BACK_ATTRIBUTES`] order.
pub fn wanted_values(mailbox: &CloudMailbox) -> Vec<(&'static str, Wanted)> {
    let single = |value: Option<Vec<u8>>| Wanted::Exactly(value.into_iter().collect());
    let mut wanted = Vec::new();
    if let Some(legacy_dn) = &mailbox.legacy_exchange_dn {
        wanted.push((
            PROXY_ADDRESSES,
            Wanted::Includes(format!("X500:{legacy_dn}").into_bytes()),
        ));
    }
    wanted.push((
        "msExchArchiveStatus",
        single(
            mailbox
                .archive_status
                .map(|status| status.to_string().into_bytes()),
        ),
    ));
    wanted.push((
        "msExchSafeSendersHash",
        single(mailbox.safe_senders_hash.clone()),
    ));
    wanted.push((
        "msExchBlockedSendersHash",
        single(mailbox.blocked_senders_hash.clone()),
    ));
    wanted.push((
        "msExchSafeRecipientsHash",
        single(mailbox.safe_recipients_hash.clone()),
    ));
    wanted.push((
        "msExchUCVoiceMailSettings",
        Wanted::Exactly(
            mailbox
                .voice_mail_settings
                .iter()
                .map(|setting| setting.as_bytes().to_vec())
                .collect(),
        ),
    ));
    wanted
}

/// One attribute to write, and its values before and after for the run record.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedEdit {
    pub edit: AttributeEdit,
    pub record: AttributeValues,
}

/// The edits that bring `current` (keyed by lowercase attribute name) in line with `wanted`,
/// for the attributes in `writable` only. Pure: the step reads and writes around it.
pub fn edits_for(
    wanted: &[(&'static str, Wanted)],
    current: &HashMap<String, Vec<Vec<u8>>>,
    writable: &[String],
) -> Vec<PlannedEdit> {
    let mut edits = Vec::new();
    for (attribute, wanted) in wanted {
        if !writable
            .iter()
            .any(|name| name.eq_ignore_ascii_case(attribute))
        {
            continue;
        }
        let now: &[Vec<u8>] = current
            .get(&attribute.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice);
        match wanted {
            Wanted::Includes(value) => {
                // proxyAddresses compare without regard to case, as AD does.
                let present = now.iter().any(|held| held.eq_ignore_ascii_case(value));
                if !present {
                    let mut after = now.to_vec();
                    after.push(value.clone());
                    edits.push(PlannedEdit {
                        edit: AttributeEdit::AddValues {
                            attribute: (*attribute).to_owned(),
                            values: vec![value.clone()],
                        },
                        record: record(attribute, now, &after),
                    });
                }
            }
            Wanted::Exactly(values) => {
                let mut held = now.to_vec();
                let mut asked = values.clone();
                held.sort_unstable();
                asked.sort_unstable();
                if held != asked {
                    edits.push(PlannedEdit {
                        edit: AttributeEdit::Replace {
                            attribute: (*attribute).to_owned(),
                            values: values.clone(),
                        },
                        record: record(attribute, now, values),
                    });
                }
            }
        }
    }
    edits
}

fn record(attribute: &str, old: &[Vec<u8>], new: &[Vec<u8>]) -> AttributeValues {
    AttributeValues {
        name: attribute.to_owned(),
        old: json_values(attribute, old),
        new: json_values(attribute, new),
    }
}

/// Values as the run record shows them: binary ones in base64, single-valued ones as one value
/// (or null).
fn json_values(attribute: &str, values: &[Vec<u8>]) -> Value {
    let binary = BINARY_ATTRIBUTES.contains(&attribute);
    let one = |value: &Vec<u8>| {
        Value::String(if binary {
            base64::engine::general_purpose::STANDARD.encode(value)
        } else {
            String::from_utf8_lossy(value).into_owned()
        })
    };
    if SINGLE_VALUED.contains(&attribute) {
        values.first().map_or(Value::Null, one)
    } else {
        Value::Array(values.iter().map(one).collect())
    }
}

/// Which write-back attributes the forest's schema has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBackSchema {
    pub writable: Vec<String>,
    /// Not in the schema: never written, and said so on every run.
    pub skipped: Vec<String>,
}

impl WriteBackSchema {
    /// What the store remembers, to notice a schema that gained an attribute.
    pub fn fingerprint(&self) -> String {
        self.writable.join(",")
    }
}

/// What the write-back export step did (in `sync --json` as `write_back`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WriteBackReport {
    /// Users whose AD attributes were changed.
    pub written: usize,
    /// Users with at least one attribute AD refused or the service account may not write.
    pub errors: usize,
    /// Write-back attributes the forest's schema lacks.
    pub skipped: Vec<String>,
}

/// Where the write-back export step writes and records.
pub(super) struct WriteBackContext<'a> {
    pub connection: &'a DirectoryConnection,
    pub store: &'a StateStore,
    pub run_id: RunId,
    pub schema: &'a WriteBackSchema,
    pub progress: &'a (dyn Fn(Progress) + Sync),
    pub stop: &'a StopSignal,
}

/// Brings every pending, linked, in-scope user's AD attributes in line with its cloud mailbox.
/// A refused value or a denied write is that user's error (it stays pending and is tried again
/// next cycle); a directory that stops answering fails the step.
pub(super) async fn export(
    context: &WriteBackContext<'_>,
    counters: &mut StepCounters,
    report: &mut WriteBackReport,
) -> Result<(), CycleError> {
    let targets = context.store.write_back_targets()?;
    let total = targets.len() as u64;
    let attributes: Vec<&str> = context.schema.writable.iter().map(String::as_str).collect();
    for (done, target) in targets.iter().enumerate() {
        if context.stop.is_stopped() {
            return Err(CycleError::Stopped);
        }
        let mailbox = match CloudMailbox::from_value(&target.mailbox) {
            Ok(mailbox) => mailbox,
            Err(what) => {
                // Checked when read; only a hand-edited store gets here.
                tracing::warn!(cloud_id = %target.cloud_id, "{what}; read again next cycle");
                continue;
            }
        };
        let current = match read_attributes(context.connection, target.anchor, &attributes).await {
            Ok(current) => current,
            // Moved or deleted since the import: the next cycle knows where it is.
            Err(DirectoryError::NoSuchObject { .. }) => continue,
            Err(error) => return Err(error.into()),
        };
        let edits = edits_for(&wanted_values(&mailbox), &current, &context.schema.writable);
        if edits.is_empty() {
            counters.no_change += 1;
            context.store.mark_written_back(&target.cloud_id)?;
        } else {
            write_user(context, target, &edits, counters, report).await?;
        }
        (context.progress)(Progress::Objects {
            step: StepKind::WriteBackExport,
            done: done as u64 + 1,
            total: Some(total),
        });
    }
    Ok(())
}

/// Writes one user's edits in one modify; when AD refuses a value, tries each attribute alone so
/// the others still land and the error names the attribute AD refused.
async fn write_user(
    context: &WriteBackContext<'_>,
    target: &WriteBackTarget,
    edits: &[PlannedEdit],
    counters: &mut StepCounters,
    report: &mut WriteBackReport,
) -> Result<(), CycleError> {
    let all: Vec<AttributeEdit> = edits.iter().map(|planned| planned.edit.clone()).collect();
    let mut written: Vec<&PlannedEdit> = Vec::new();
    let mut failures: Vec<(String, DirectoryError)> = Vec::new();
    match modify_attributes(context.connection, target.anchor, &target.dn, &all).await {
        Ok(()) => written.extend(edits),
        Err(error) if is_value_refused(&error) && edits.len() > 1 => {
            for planned in edits {
                match modify_attributes(
                    context.connection,
                    target.anchor,
                    &target.dn,
                    std::slice::from_ref(&planned.edit),
                )
                .await
                {
                    Ok(()) => written.push(planned),
                    Err(error) if is_value_refused(&error) => {
                        failures.push((planned.edit.attribute().to_owned(), error));
                    }
                    Err(error @ DirectoryError::WriteDenied { .. }) => {
                        failures.push((planned.edit.attribute().to_owned(), error));
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        }
        Err(error) if is_value_refused(&error) => {
            failures.push((edits[0].edit.attribute().to_owned(), error));
        }
        Err(error @ DirectoryError::WriteDenied { .. }) => {
            let attributes = edits
                .iter()
                .map(|planned| planned.edit.attribute())
                .collect::<Vec<_>>()
                .join(", ");
            failures.push((attributes, error));
        }
        Err(error) => return Err(error.into()),
    }

    if !written.is_empty() {
        counters.updates += 1;
        report.written += 1;
        context.store.record_changes(
            context.run_id,
            &[ObjectChangeRecord {
                step: StepKind::WriteBackExport,
                dn: target.dn.to_string(),
                anchor: target.anchor.to_string(),
                object_type: ObjectKind::User,
                cloud_id: Some(target.cloud_id.clone()),
                change_kind: ChangeKind::Update,
                attributes: written
                    .iter()
                    .map(|planned| planned.record.clone())
                    .collect(),
            }],
        )?;
    }
    if failures.is_empty() {
        context.store.mark_written_back(&target.cloud_id)?;
        return Ok(());
    }
    counters.errors += 1;
    report.errors += 1;
    let history = context
        .store
        .write_back_failed(&target.cloud_id, now_ms())?;
    let errors: Vec<ErrorRecord> = failures
        .into_iter()
        .map(|(attribute, error)| {
            let denied = matches!(error, DirectoryError::WriteDenied { .. });
            ErrorRecord {
                step: StepKind::WriteBackExport,
                dn: target.dn.to_string(),
                anchor: Some(target.anchor.to_string()),
                object_type: Some(ObjectKind::User),
                error_type: if denied {
                    "write-back-denied"
                } else {
                    "write-back-refused"
                }
                .to_owned(),
                code: Some(attribute.clone()),
                server_message: error.to_string(),
                hint: if denied {
                    format!(
                        "grant the service account Write Property on {attribute} for users in this OU: run setup again with hybrid write-back on (it grants exactly these rights on the synced OUs)"
                    )
                } else {
                    format!(
                        "AD refused the cloud's value of {attribute} (its size or syntax); the value is the one Exchange Online holds for this mailbox: correct it there, or check the forest's schema for {attribute}"
                    )
                },
                first_occurred_at: history.first_occurred_at,
                retry_count: history.retry_count,
            }
        })
        .collect();
    context.store.record_errors(context.run_id, &errors)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::permissions::WRITE_BACK_ATTRIBUTES;
    use serde_json::json;

    fn mailbox() -> CloudMailbox {
        CloudMailbox {
            user_id: "u1".to_owned(),
            legacy_exchange_dn: Some("/o=ExchangeLabs/cn=Recipients/cn=u1".to_owned()),
            archive_status: Some(1),
            safe_senders_hash: Some(vec![1, 2, 3]),
            blocked_senders_hash: None,
            safe_recipients_hash: None,
            voice_mail_settings: vec!["CsvEnabled=true".to_owned()],
        }
    }

    fn all_attributes() -> Vec<String> {
        WRITE_BACK_ATTRIBUTES
            .iter()
            .map(|name| (*name).to_owned())
            .collect()
    }

    fn current(pairs: &[(&str, &[&[u8]])]) -> HashMap<String, Vec<Vec<u8>>> {
        pairs
            .iter()
            .map(|(name, values)| {
                (
                    name.to_ascii_lowercase(),
                    values.iter().map(|value| value.to_vec()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn the_x500_address_is_added_beside_the_smtp_addresses_once() {
        let held = current(&[("proxyAddresses", &[b"SMTP:ann@contoso.test"])]);
        let edits = edits_for(&wanted_values(&mailbox()), &held, &all_attributes());
        assert_eq!(
            edits[0].edit,
            AttributeEdit::AddValues {
                attribute: "proxyAddresses".to_owned(),
                values: vec![b"X500:/o=ExchangeLabs/cn=Recipients/cn=u1".to_vec()],
            }
        );
        assert_eq!(
            edits[0].record.new,
            json!([
                "SMTP:ann@contoso.test",
                "X500:/o=ExchangeLabs/cn=Recipients/cn=u1"
            ])
        );

        // Already there (in another case): nothing to add.
        let held = current(&[
            (
                "proxyAddresses",
                &[
                    b"SMTP:ann@contoso.test",
                    b"x500:/O=EXCHANGELABS/cn=Recipients/cn=u1",
                ],
            ),
            ("msExchArchiveStatus", &[b"1"]),
            ("msExchSafeSendersHash", &[&[1, 2, 3]]),
            ("msExchUCVoiceMailSettings", &[b"CsvEnabled=true"]),
        ]);
        assert!(edits_for(&wanted_values(&mailbox()), &held, &all_attributes()).is_empty());
    }

    #[test]
    fn a_cleared_cloud_value_clears_ad_and_the_record_shows_both_sides() {
        let mut cleared = mailbox();
        cleared.archive_status = None;
        let held = current(&[
            (
                "proxyAddresses",
                &[b"X500:/o=ExchangeLabs/cn=Recipients/cn=u1"],
            ),
            ("msExchArchiveStatus", &[b"1"]),
            ("msExchSafeSendersHash", &[&[1, 2, 3]]),
            ("msExchUCVoiceMailSettings", &[b"CsvEnabled=true"]),
        ]);
        let edits = edits_for(&wanted_values(&cleared), &held, &all_attributes());
        assert_eq!(edits.len(), 1, "{edits:?}");
        assert_eq!(
            edits[0].edit,
            AttributeEdit::Replace {
                attribute: "msExchArchiveStatus".to_owned(),
                values: vec![],
            }
        );
        assert_eq!(edits[0].record.old, json!("1"));
        assert_eq!(edits[0].record.new, Value::Null);
    }

    #[test]
    fn binary_values_are_recorded_in_base64_and_missing_attributes_are_skipped() {
        let edits = edits_for(
            &wanted_values(&mailbox()),
            &HashMap::new(),
            &[
                "proxyAddresses".to_owned(),
                "msExchSafeSendersHash".to_owned(),
            ],
        );
        let names: Vec<&str> = edits.iter().map(|edit| edit.edit.attribute()).collect();
        assert_eq!(names, ["proxyAddresses", "msExchSafeSendersHash"]);
        assert_eq!(edits[1].record.new, json!("AQID"));
        assert_eq!(edits[1].record.old, Value::Null);
    }

    #[test]
    fn without_a_legacy_dn_proxy_addresses_are_left_alone() {
        let mut no_dn = mailbox();
        no_dn.legacy_exchange_dn = None;
        let edits = edits_for(&wanted_values(&no_dn), &HashMap::new(), &all_attributes());
        assert!(
            edits
                .iter()
                .all(|edit| edit.edit.attribute() != "proxyAddresses")
        );
    }
}
