//! The audit trail (README, "The audit trail"): who changed what dirsync does, and when.

use serde::{Deserialize, Serialize};

use super::{StateStore, StoreError};

/// One field that changed: its dotted name (`options.interval_minutes`) and its values as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// One entry of the trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    /// Unix milliseconds, UTC.
    pub at: i64,
    /// The operating system's user who made it (`alice (uid 1000)`; under sudo, who ran sudo).
    pub os_user: String,
    /// Where: `setup`, `wizard`, `dashboard`, `cli`.
    pub source: String,
    /// What: `configuration-saved`, `credential-renewed`, `deletes-confirmed`, `push`, …
    pub action: String,
    /// The object, the count, the options of the action, in words.
    pub detail: String,
    pub changes: Vec<FieldChange>,
}

impl StateStore {
    /// Adds an entry; returns its id.
    pub fn record_audit(
        &self,
        at: i64,
        os_user: &str,
        source: &str,
        action: &str,
        detail: &str,
        changes: &[FieldChange],
    ) -> Result<i64, StoreError> {
        Ok(self.connection().query_row(
            "INSERT INTO audit (at, os_user, source, action, detail, changes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
            super::db::params![
                at,
                os_user,
                source,
                action,
                detail,
                serde_json::to_string(changes).expect("changes serialize"),
            ],
            |row| row.get(0),
        )?)
    }

    /// The newest `limit` entries, newest first.
    pub fn audit_entries(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let connection = self.connection();
        let mut select = connection.prepare(
            "SELECT id, at, os_user, source, action, detail, changes FROM audit
             ORDER BY at DESC, id DESC LIMIT ?1",
        )?;
        let entries = select
            .query_map([limit as i64], |row| {
                let changes: String = row.get(6)?;
                Ok(AuditEntry {
                    id: row.get(0)?,
                    at: row.get(1)?,
                    os_user: row.get(2)?,
                    source: row.get(3)?,
                    action: row.get(4)?,
                    detail: row.get(5)?,
                    changes: serde_json::from_str(&changes).unwrap_or_default(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(entries)
    }
}
