//! What monitoring reads (README, "Monitoring"): totals over the kept run history and the sync
//! state's figures now, each one query.

use std::collections::BTreeMap;

use super::db::params;

use super::{StateStore, StoreError};

/// The sync state now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateFigures {
    /// Objects dirsync links to a cloud object.
    pub linked: u64,
    /// Objects read from AD and not exported yet (pending, or gone and not yet removed).
    pub pending_exports: u64,
    /// Objects whose last export or validation failed.
    pub with_errors: u64,
}

/// The tenant's directory quota as a cycle last read it (README, "Monitoring").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DirectoryQuota {
    /// Directory objects the tenant holds.
    pub used: u64,
    /// How many it may hold.
    pub total: u64,
    /// When it was read, Unix milliseconds.
    pub read_at: i64,
}

impl DirectoryQuota {
    /// The share used, in percent (100 when the quota is 0).
    pub fn percent_used(&self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            self.used as f64 * 100.0 / self.total as f64
        }
    }
}

/// The cursor holding the last [`DirectoryQuota`] read, as JSON.
const DIRECTORY_QUOTA_CURSOR: &str = "cloud-directory-quota";

impl StateStore {
    pub fn directory_quota(&self) -> Result<Option<DirectoryQuota>, StoreError> {
        Ok(self
            .cursor(DIRECTORY_QUOTA_CURSOR)?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }

    pub fn set_directory_quota(&self, quota: &DirectoryQuota) -> Result<(), StoreError> {
        let json = serde_json::to_vec(quota).unwrap_or_default();
        self.set_cursor(DIRECTORY_QUOTA_CURSOR, &json, quota.read_at)
    }

    /// Object errors in the kept run history, by error type.
    pub fn errors_by_type(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let connection = self.connection();
        let mut select = connection
            .prepare("SELECT error_type, COUNT(*) FROM run_errors GROUP BY error_type")?;
        let counts = select
            .query_map((), |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as u64)))?
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        Ok(counts)
    }

    pub fn state_figures(&self) -> Result<StateFigures, StoreError> {
        let connection = self.connection();
        let count = |sql: &str| -> Result<u64, StoreError> {
            Ok(connection.query_row(sql, (), |row| row.get::<_, i64>(0))? as u64)
        };
        Ok(StateFigures {
            linked: count("SELECT COUNT(*) FROM links")?,
            pending_exports: count(
                "SELECT COUNT(*) FROM directory_objects WHERE state IN ('pending', 'gone')",
            )?,
            with_errors: count("SELECT COUNT(DISTINCT anchor) FROM object_errors")?,
        })
    }

    /// Alerts that fired and have not cleared: condition → (since, summary).
    pub fn alerts_firing(&self) -> Result<BTreeMap<String, (i64, String)>, StoreError> {
        let connection = self.connection();
        let mut select =
            connection.prepare("SELECT condition, since, summary FROM alerts_firing")?;
        let firing = select
            .query_map((), |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))?
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        Ok(firing)
    }

    /// Marks `condition` as firing; false when it already was (someone sent its alert).
    pub fn claim_alert(
        &self,
        condition: &str,
        since: i64,
        summary: &str,
    ) -> Result<bool, StoreError> {
        let added = self.connection().execute(
            "INSERT INTO alerts_firing (condition, since, summary) VALUES (?1, ?2, ?3)
             ON CONFLICT (condition) DO NOTHING",
            params![condition, since, summary],
        )?;
        Ok(added > 0)
    }

    /// Marks `condition` as cleared; false when it was not firing.
    pub fn clear_alert(&self, condition: &str) -> Result<bool, StoreError> {
        let removed = self.connection().execute(
            "DELETE FROM alerts_firing WHERE condition = ?1",
            [condition],
        )?;
        Ok(removed > 0)
    }
}
