//! Hybrid write-back's state (README, "Hybrid Exchange write-back"): the mailbox attributes of each cloud user as the tenant
//! last sent them, which of them AD still has to be brought in line with, and the delta link.

use super::db::params;
use serde_json::Value;

use super::sync_state::{ErrorHistory, parse_dn, parse_guid};
use super::{StateStore, StoreError};
use crate::directory::Dn;
use crate::guid::Guid;

/// The cursor name of the mailbox delta link.
pub const WRITE_BACK_CURSOR: &str = "write-back-delta-link";
/// The cursor name of the write-back attributes the forest's schema had at the last cycle.
pub const WRITE_BACK_SCHEMA_CURSOR: &str = "write-back-schema";

/// A linked user in scope whose cloud mailbox AD may not reflect yet.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteBackTarget {
    pub anchor: Guid,
    pub dn: Dn,
    pub cloud_id: String,
    /// The tenant's item, as [`crate::cloud::mailboxes::CloudMailbox::from_value`] reads it.
    pub mailbox: Value,
}

impl StateStore {
    /// Keeps one page of the mailbox delta, with the link for the next read when it is the last
    /// page, in one transaction: a changed mailbox becomes pending, a removed user's is forgotten.
    pub fn save_mailbox_changes(
        &self,
        changed: &[(&str, &Value)],
        removed: &[&str],
        next_link: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let connection = self.connection();
        let transaction = connection.unchecked_transaction()?;
        {
            let mut upsert = transaction.prepare(
                "INSERT INTO cloud_mailboxes (cloud_id, mailbox, pending) VALUES (?1, ?2, 1)
                 ON CONFLICT (cloud_id) DO UPDATE SET mailbox = excluded.mailbox, pending = 1",
            )?;
            for (cloud_id, mailbox) in changed {
                upsert.execute(params![cloud_id, mailbox.to_string()])?;
            }
            let mut delete =
                transaction.prepare("DELETE FROM cloud_mailboxes WHERE cloud_id = ?1")?;
            for cloud_id in removed {
                delete.execute([cloud_id])?;
            }
            if let Some(link) = next_link {
                transaction.execute(
                    "INSERT INTO sync_cursors (name, value, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    params![WRITE_BACK_CURSOR, link.as_bytes(), now],
                )?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Pending mailboxes of users that are linked and in scope. The others wait: a mailbox whose
    /// user is linked later is written back then.
    pub fn write_back_targets(&self) -> Result<Vec<WriteBackTarget>, StoreError> {
        let connection = self.connection();
        let mut select = connection.prepare(
            "SELECT l.anchor, l.dn, l.cloud_id, m.mailbox
             FROM cloud_mailboxes m
             JOIN links l ON l.cloud_id = m.cloud_id AND l.kind = 'user'
             JOIN directory_objects d ON d.anchor = l.anchor AND d.state != 'gone'
             WHERE m.pending = 1
             ORDER BY l.dn",
        )?;
        let targets = select
            .query_map((), |row| {
                let mailbox: String = row.get(3)?;
                Ok(WriteBackTarget {
                    anchor: parse_guid(&row.get::<_, String>(0)?)?,
                    dn: parse_dn(&row.get::<_, String>(1)?)?,
                    cloud_id: row.get(2)?,
                    mailbox: serde_json::from_str(&mailbox).map_err(|error| {
                        super::db::DbError::Corrupt(format!("a mailbox: {error}"))
                    })?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(targets)
    }

    /// AD now holds what the tenant says for this user.
    pub fn mark_written_back(&self, cloud_id: &str) -> Result<(), StoreError> {
        self.connection().execute(
            "UPDATE cloud_mailboxes SET pending = 0, first_failed_at = NULL, retry_count = 0
             WHERE cloud_id = ?1",
            [cloud_id],
        )?;
        Ok(())
    }

    /// Writing this user's mailbox failed again; returns the failure's history (it stays
    /// pending, so the next cycle tries again).
    pub fn write_back_failed(&self, cloud_id: &str, now: i64) -> Result<ErrorHistory, StoreError> {
        let db = self.connection();
        db.execute(
            "UPDATE cloud_mailboxes
             SET retry_count = CASE WHEN first_failed_at IS NULL THEN 0 ELSE retry_count + 1 END,
                 first_failed_at = COALESCE(first_failed_at, ?2)
             WHERE cloud_id = ?1",
            params![cloud_id, now],
        )?;
        Ok(db.query_row(
            "SELECT first_failed_at, retry_count FROM cloud_mailboxes WHERE cloud_id = ?1",
            [cloud_id],
            |row| {
                Ok(ErrorHistory {
                    first_occurred_at: row.get::<_, Option<i64>>(0)?.unwrap_or(now),
                    retry_count: row.get(1)?,
                })
            },
        )?)
    }

    /// Every known mailbox is checked against AD again (the schema gained an attribute).
    pub fn mark_all_mailboxes_pending(&self) -> Result<(), StoreError> {
        self.connection()
            .execute("UPDATE cloud_mailboxes SET pending = 1", ())?;
        Ok(())
    }

    /// Starts write-back over: the next cycle reads every mailbox and checks each against AD.
    pub fn reset_write_back(&self) -> Result<(), StoreError> {
        let connection = self.connection();
        let transaction = connection.unchecked_transaction()?;
        transaction.execute("DELETE FROM cloud_mailboxes", ())?;
        transaction.execute(
            "DELETE FROM sync_cursors WHERE name IN (?1, ?2)",
            [WRITE_BACK_CURSOR, WRITE_BACK_SCHEMA_CURSOR],
        )?;
        transaction.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_mailbox_waits_for_its_link_and_a_failure_keeps_its_first_time() {
        let store = StateStore::open_scratch().expect("store");
        let item = json!({"id": "cloud-1", "cloudMSExchArchiveStatus": 1});
        store
            .save_mailbox_changes(&[("cloud-1", &item)], &[], Some("link-1"), 10)
            .expect("save");
        assert_eq!(
            store.cursor(WRITE_BACK_CURSOR).expect("cursor"),
            Some(b"link-1".to_vec())
        );
        // No link yet: nothing to write.
        assert!(store.write_back_targets().expect("targets").is_empty());

        let first = store.write_back_failed("cloud-1", 100).expect("failed");
        let again = store
            .write_back_failed("cloud-1", 200)
            .expect("failed again");
        assert_eq!((first.first_occurred_at, first.retry_count), (100, 0));
        assert_eq!((again.first_occurred_at, again.retry_count), (100, 1));

        store
            .save_mailbox_changes(&[], &["cloud-1"], None, 20)
            .expect("removed");
        assert_eq!(
            store.cursor(WRITE_BACK_CURSOR).expect("cursor"),
            Some(b"link-1".to_vec()),
            "a page that is not the last keeps the link where it was"
        );
        store.reset_write_back().expect("reset");
        assert_eq!(store.cursor(WRITE_BACK_CURSOR).expect("cursor"), None);
    }
}
