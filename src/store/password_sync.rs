//! Password hash sync's state (README, "Password hash sync"): its DirSync cookie (a cursor) and which linked users'
//! current password the cloud was sent. Never a hash: only that one was sent, where, and when.

use super::db::params;

use super::sync_state::{parse_dn, parse_guid};
use super::{StateStore, StoreError};
use crate::directory::Dn;
use crate::guid::Guid;

/// The cursor name of the password hash source's DirSync cookie.
pub const PASSWORD_CURSOR: &str = "password-dirsync-cookie";

/// A user whose password hash sync may send: linked to a cloud user and still in scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordTarget {
    pub anchor: Guid,
    pub dn: Dn,
    pub cloud_id: String,
    /// The cloud user was never sent this user's current password (new link, a reset, or the
    /// last attempt failed): read the hash in full rather than wait for a change.
    pub needs_full_read: bool,
}

impl StateStore {
    /// Every linked user in scope, and whether each needs a full read.
    pub fn password_targets(&self) -> Result<Vec<PasswordTarget>, StoreError> {
        let connection = self.connection();
        let mut select = connection.prepare(
            "SELECT l.anchor, l.dn, l.cloud_id, p.cloud_id IS NULL OR p.cloud_id != l.cloud_id
             FROM links l
             JOIN directory_objects d ON d.anchor = l.anchor AND d.state != 'gone'
             LEFT JOIN password_sync p ON p.anchor = l.anchor
             WHERE l.kind = 'user'",
        )?;
        let targets = select
            .query_map((), |row| {
                Ok(PasswordTarget {
                    anchor: parse_guid(&row.get::<_, String>(0)?)?,
                    dn: parse_dn(&row.get::<_, String>(1)?)?,
                    cloud_id: row.get(2)?,
                    needs_full_read: row.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(targets)
    }

    fn record_password_state(
        &self,
        synced: &[(Guid, &str)],
        now: i64,
        waiting: bool,
    ) -> Result<(), StoreError> {
        let connection = self.connection();
        let transaction = connection.unchecked_transaction()?;
        {
            let mut upsert = transaction.prepare(
                "INSERT INTO password_sync (anchor, cloud_id, synced_at, waiting) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (anchor) DO UPDATE SET cloud_id = excluded.cloud_id, synced_at = excluded.synced_at,
                     waiting = excluded.waiting",
            )?;
            for (anchor, cloud_id) in synced {
                upsert.execute(params![anchor.to_string(), cloud_id, now, waiting])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// These users' current passwords are in the cloud (or they have none to send).
    pub fn record_passwords_synced(
        &self,
        synced: &[(Guid, &str)],
        now: i64,
    ) -> Result<(), StoreError> {
        self.record_password_state(synced, now, false)
    }

    /// These users have no password dirsync could send until they next change it in AD.
    pub fn record_passwords_waiting(
        &self,
        waiting: &[(Guid, &str)],
        now: i64,
    ) -> Result<(), StoreError> {
        self.record_password_state(waiting, now, true)
    }

    /// How many synced users wait for their next AD password change.
    pub fn passwords_waiting(&self) -> Result<u64, StoreError> {
        let count: i64 = self.connection().query_row(
            "SELECT count(*) FROM password_sync p
             JOIN links l ON l.anchor = p.anchor AND l.cloud_id = p.cloud_id AND l.kind = 'user'
             WHERE p.waiting = 1",
            (),
            |row| row.get(0),
        )?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// These users' passwords must be read in full again (their last send failed).
    pub fn forget_passwords_synced(&self, anchors: &[Guid]) -> Result<(), StoreError> {
        let connection = self.connection();
        let transaction = connection.unchecked_transaction()?;
        {
            let mut delete = transaction.prepare("DELETE FROM password_sync WHERE anchor = ?1")?;
            for anchor in anchors {
                delete.execute([anchor.to_string()])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Starts password hash sync over: the next password cycle is a full pass.
    pub fn reset_password_sync(&self) -> Result<(), StoreError> {
        let connection = self.connection();
        let transaction = connection.unchecked_transaction()?;
        transaction.execute("DELETE FROM password_sync", ())?;
        transaction.execute(
            "DELETE FROM sync_cursors WHERE name = ?1",
            [PASSWORD_CURSOR],
        )?;
        transaction.commit()?;
        Ok(())
    }
}
