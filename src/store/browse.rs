//! What the dashboard reads (README, "The dashboard"): a run's object list without its attribute values (one
//! run can hold 100,000 changes; values are read when an object is opened), one object's change,
//! an object's history across runs, a search by name, DN, UPN, mail or anchor, and the
//! connectors' figures.

use super::db::{OptionalExtension as _, params};

use super::runs::{
    ERROR_COLUMNS, ErrorRecord, FOREST_FAILED_ERROR, ObjectChangeRecord, RunId, read_error, word,
};
use super::sync_state::{DIRSYNC_CURSOR, escape_like};
use super::{StateStore, StoreError};
use crate::store::vocabulary::{ChangeKind, ObjectKind, StepKind};

/// One line of a run's object list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRow {
    /// For [`StateStore::object_change`], with `imported`.
    pub id: i64,
    /// What a directory import read (`import_changes`), not what dirsync changed.
    pub imported: bool,
    pub step: StepKind,
    pub change_kind: ChangeKind,
    pub object_type: ObjectKind,
    pub dn: String,
    pub anchor: String,
    pub cloud_id: Option<String>,
}

/// An object a search found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundObject {
    pub anchor: String,
    /// Its DN as last seen.
    pub dn: String,
    pub object_type: Option<ObjectKind>,
}

/// One thing that happened to an object in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub run_id: RunId,
    /// The run's start, Unix milliseconds.
    pub run_started_at: i64,
    pub event: HistoryEvent,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HistoryEvent {
    Change(ChangeRow),
    Error(ErrorRecord),
}

/// The figures the Connectors view shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectorFigures {
    /// In-scope users and groups the store holds from AD (not counting those gone).
    pub directory_objects: u64,
    /// Cloud objects dirsync manages (linked).
    pub cloud_objects: u64,
    /// Users disabled when they left the scope, waiting to be deleted (README, "Deletes you can
    /// take back"), and when the first of them was disabled.
    pub disabled_awaiting_delete: u64,
    pub first_disabled_at: Option<i64>,
    /// The end of the last directory import, Unix milliseconds.
    pub last_directory_import: Option<i64>,
    /// When the DirSync cookie was last saved.
    pub cookie_saved_at: Option<i64>,
    /// Requests Graph throttled in the kept run history, and the last run it happened in.
    pub throttled_requests: u64,
    pub last_throttled_run: Option<RunId>,
}

/// One forest's figures for the Connectors page (README, "Several forests").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForestFigures {
    /// In-scope users and groups the store holds from this forest (not counting those gone).
    pub directory_objects: u64,
    /// The end of its last directory import that went through, Unix milliseconds.
    pub last_directory_import: Option<i64>,
    /// When its DirSync cookie was last saved.
    pub cookie_saved_at: Option<i64>,
    /// Its import failed since then: the run and what failed.
    pub failure: Option<(RunId, String)>,
}

/// Which forest [`StateStore::forest_figures`] counts.
#[derive(Debug, Clone, Copy)]
pub struct ForestKey<'a> {
    /// Its name, as its steps name it (`connector`).
    pub name: &'a str,
    pub naming_context: &'a str,
    /// The name of its DirSync cookie's cursor.
    pub cookie_cursor: &'a str,
    /// The first forest: its steps from before several forests synced name no connector.
    pub first: bool,
}

impl StateStore {
    /// One forest's figures (README, "Several forests").
    pub fn forest_figures(&self, forest: ForestKey<'_>) -> Result<ForestFigures, StoreError> {
        let db = self.connection();
        let suffix = format!("%,{}", escape_like(forest.naming_context));
        let directory_objects: i64 = db.query_row(
            "SELECT count(*) FROM directory_objects
             WHERE state != 'gone' AND dn LIKE ?1 ESCAPE '\\'",
            [&suffix],
            |row| row.get(0),
        )?;
        let last_directory_import: Option<i64> = db.query_row(
            "SELECT max(s.ended_at) FROM run_steps s JOIN runs r ON r.id = s.run_id
             WHERE s.step = 'directory-import' AND r.mode != 'password' AND s.errors = 0
                 AND (s.connector = ?1 OR (?2 AND s.connector IS NULL))",
            params![forest.name, forest.first],
            |row| row.get(0),
        )?;
        let failure: Option<(RunId, String, i64)> = db
            .query_row(
                "SELECT e.run_id, e.server_message || ' — ' || e.hint, r.started_at
                 FROM run_errors e JOIN runs r ON r.id = e.run_id
                 WHERE e.error_type = ?1 AND e.code = ?2
                 ORDER BY e.run_id DESC LIMIT 1",
                params![FOREST_FAILED_ERROR, forest.name],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        let failure = failure
            .filter(|(_, _, started)| last_directory_import.is_none_or(|last| *started > last))
            .map(|(run, message, _)| (run, message));
        Ok(ForestFigures {
            directory_objects: directory_objects.max(0) as u64,
            last_directory_import,
            cookie_saved_at: db
                .query_row(
                    "SELECT updated_at FROM sync_cursors WHERE name = ?1",
                    [forest.cookie_cursor],
                    |row| row.get(0),
                )
                .optional()?,
            failure,
        })
    }

    /// Every change of a run without attribute values: what its directory import read, then
    /// what it changed, each in the order recorded.
    pub fn change_rows(&self, run: RunId) -> Result<Vec<ChangeRow>, StoreError> {
        let connection = self.connection();
        let mut select = connection.prepare(&format!(
            "SELECT {IMPORT_ROW} FROM import_changes WHERE run_id = ?1
             UNION ALL
             SELECT {CHANGE_ROW} FROM object_changes WHERE run_id = ?1
             ORDER BY 2 DESC, 1"
        ))?;
        let rows = select
            .query_map([run], read_change_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// One change with its attribute values.
    pub fn object_change(
        &self,
        id: i64,
        imported: bool,
    ) -> Result<Option<ObjectChangeRecord>, StoreError> {
        let sql = if imported {
            "SELECT 'directory-import', dn, anchor, object_type, NULL, change_kind,
                 attribute_changes
             FROM import_changes WHERE id = ?1"
        } else {
            "SELECT step, dn, anchor, object_type, cloud_id, change_kind, attribute_changes
             FROM object_changes WHERE id = ?1"
        };
        let change = self
            .connection()
            .query_row(sql, [id], |row| {
                let step: String = row.get(0)?;
                let object_type: String = row.get(3)?;
                let change_kind: String = row.get(5)?;
                let attributes: String = row.get(6)?;
                Ok(ObjectChangeRecord {
                    step: word(StepKind::parse(&step), &step)?,
                    dn: row.get(1)?,
                    anchor: row.get(2)?,
                    object_type: word(ObjectKind::parse(&object_type), &object_type)?,
                    cloud_id: row.get(4)?,
                    change_kind: word(ChangeKind::parse(&change_kind), &change_kind)?,
                    attributes: serde_json::from_str(&attributes).unwrap_or_default(),
                })
            })
            .optional()?;
        Ok(change)
    }

    /// Objects whose anchor is `text`, or whose DN or any recorded value (name, UPN, mail…)
    /// contains it, case-insensitively; the most recently changed first.
    pub fn find_objects(&self, text: &str, limit: usize) -> Result<Vec<FoundObject>, StoreError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let pattern = format!("%{}%", escape_like(text));
        // The sync state holds every object in scope now (its JSON has the UPN and mail); the
        // run history also has objects since deleted, and errors.
        let connection = self.connection();
        let mut select = connection.prepare(
            "SELECT anchor, dn, object_type FROM (
                 SELECT anchor, dn, kind AS object_type, 1 AS source, 0 AS recent
                 FROM directory_objects
                 WHERE anchor = ?1 OR dn LIKE ?2 ESCAPE '\\' OR object LIKE ?2 ESCAPE '\\'
                 UNION ALL
                 SELECT anchor, dn, object_type, 2, id FROM object_changes
                 WHERE id IN (SELECT max(id) FROM object_changes
                     WHERE anchor = ?1 OR dn LIKE ?2 ESCAPE '\\'
                         OR attribute_changes LIKE ?2 ESCAPE '\\'
                     GROUP BY anchor)
                 UNION ALL
                 SELECT anchor, dn, object_type, 3, id FROM run_errors
                 WHERE id IN (SELECT max(id) FROM run_errors
                     WHERE anchor IS NOT NULL AND (anchor = ?1 OR dn LIKE ?2 ESCAPE '\\')
                     GROUP BY anchor)
             ) AS found ORDER BY source, recent DESC",
        )?;
        let mut found: Vec<FoundObject> = Vec::new();
        let mut rows = select.query(params![text, pattern])?;
        while let Some(row) = rows.next()? {
            let anchor: String = row.get(0)?;
            if found.iter().any(|object| object.anchor == anchor) {
                continue;
            }
            let object_type: Option<String> = row.get(2)?;
            found.push(FoundObject {
                anchor,
                dn: row.get(1)?,
                object_type: object_type.as_deref().and_then(ObjectKind::parse),
            });
            if found.len() == limit {
                break;
            }
        }
        Ok(found)
    }

    /// What happened to the object with `anchor` in every kept run, newest run first.
    pub fn object_history(&self, anchor: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        let db = self.connection();
        let mut entries = Vec::new();
        let mut changes = db.prepare(&format!(
            "SELECT c.*, r.started_at FROM (
                 SELECT {IMPORT_ROW}, run_id FROM import_changes WHERE anchor = ?1
                 UNION ALL
                 SELECT {CHANGE_ROW}, run_id FROM object_changes WHERE anchor = ?1
             ) c JOIN runs r ON r.id = c.run_id
             ORDER BY c.run_id DESC, 2 DESC, 1"
        ))?;
        let mut rows = changes.query([anchor])?;
        while let Some(row) = rows.next()? {
            entries.push(HistoryEntry {
                run_id: row.get(8)?,
                run_started_at: row.get(9)?,
                event: HistoryEvent::Change(read_change_row(&row)?),
            });
        }
        let mut errors = db.prepare(&format!(
            "SELECT {ERROR_COLUMNS}, run_id, started_at
             FROM run_errors e JOIN runs r ON r.id = e.run_id
             WHERE e.anchor = ?1 ORDER BY e.id"
        ))?;
        let mut rows = errors.query([anchor])?;
        while let Some(row) = rows.next()? {
            entries.push(HistoryEntry {
                run_id: row.get(10)?,
                run_started_at: row.get(11)?,
                event: HistoryEvent::Error(read_error(&row)?),
            });
        }
        // Newest run first; in a run, what was read, then what changed, then the errors.
        entries.sort_by_key(|entry| std::cmp::Reverse(entry.run_id));
        Ok(entries)
    }

    pub fn connector_figures(&self) -> Result<ConnectorFigures, StoreError> {
        let db = self.connection();
        let count = |sql: &str| -> Result<u64, StoreError> {
            Ok(db.query_row(sql, (), |row| row.get::<_, i64>(0))?.max(0) as u64)
        };
        let (throttled_requests, last_throttled_run) = db.query_row(
            "SELECT CAST(coalesce(sum(throttled), 0) AS BIGINT),
                 max(CASE WHEN throttled > 0 THEN id END)
             FROM runs",
            (),
            |row| Ok((row.get::<_, i64>(0)?.max(0) as u64, row.get(1)?)),
        )?;
        Ok(ConnectorFigures {
            directory_objects: count(
                "SELECT count(*) FROM directory_objects WHERE state != 'gone'",
            )?,
            cloud_objects: count("SELECT count(*) FROM links")?,
            disabled_awaiting_delete: count(
                "SELECT count(*) FROM links WHERE disabled_at IS NOT NULL",
            )?,
            first_disabled_at: db
                .query_row("SELECT min(disabled_at) FROM links", (), |row| row.get(0))?,
            last_directory_import: db.query_row(
                "SELECT max(s.ended_at) FROM run_steps s JOIN runs r ON r.id = s.run_id
                 WHERE s.step = 'directory-import' AND r.mode != 'password'",
                (),
                |row| row.get(0),
            )?,
            cookie_saved_at: db
                .query_row(
                    "SELECT updated_at FROM sync_cursors WHERE name = ?1",
                    [DIRSYNC_CURSOR],
                    |row| row.get(0),
                )
                .optional()?,
            throttled_requests,
            last_throttled_run,
        })
    }
}

/// The columns [`read_change_row`] reads, from `import_changes` and from `object_changes`.
const IMPORT_ROW: &str = "id, 1, 'directory-import', change_kind, object_type, dn, anchor, NULL";
const CHANGE_ROW: &str = "id, 0, step, change_kind, object_type, dn, anchor, cloud_id";

fn read_change_row(row: &super::db::Row<'_>) -> super::db::Result<ChangeRow> {
    let step: String = row.get(2)?;
    let change_kind: String = row.get(3)?;
    let object_type: String = row.get(4)?;
    Ok(ChangeRow {
        id: row.get(0)?,
        imported: row.get::<_, i64>(1)? == 1,
        step: word(StepKind::parse(&step), &step)?,
        change_kind: word(ChangeKind::parse(&change_kind), &change_kind)?,
        object_type: word(ObjectKind::parse(&object_type), &object_type)?,
        dn: row.get(5)?,
        anchor: row.get(6)?,
        cloud_id: row.get(7)?,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::runs::AttributeValues;
    use crate::store::vocabulary::{RunMode, RunStatus, RunTrigger};

    #[test]
    fn the_connectors_figures_read_on_an_empty_store() {
        let store = StateStore::open_scratch().expect("open");
        let figures = store.connector_figures().expect("figures");
        assert_eq!(figures.directory_objects, 0);
        let forest = store
            .forest_figures(ForestKey {
                name: "corp.example.com",
                naming_context: "DC=corp,DC=example,DC=com",
                cookie_cursor: "cookie",
                first: true,
            })
            .expect("forest figures");
        assert_eq!(forest.directory_objects, 0);
    }

    fn change(dn: &str, anchor: &str, kind: ChangeKind, upn: &str) -> ObjectChangeRecord {
        ObjectChangeRecord {
            step: StepKind::CloudExport,
            dn: dn.to_owned(),
            anchor: anchor.to_owned(),
            object_type: ObjectKind::User,
            cloud_id: Some(format!("cloud-{anchor}")),
            change_kind: kind,
            attributes: vec![AttributeValues {
                name: "userPrincipalName".to_owned(),
                old: serde_json::Value::Null,
                new: json!(upn),
            }],
        }
    }

    #[test]
    fn an_object_is_found_by_dn_upn_or_anchor_and_its_history_spans_runs() {
        let store = StateStore::open_scratch().expect("open");
        let first = store
            .start_run(RunTrigger::Cli, RunMode::Full, 1_000)
            .expect("run");
        store
            .record_changes(
                first,
                &[
                    change(
                        "CN=Ada Lovelace,OU=Sales",
                        "AAA=",
                        ChangeKind::Add,
                        "ada@corp.test",
                    ),
                    change(
                        "CN=Bob 100%,OU=Sales",
                        "BBB=",
                        ChangeKind::Add,
                        "bob@corp.test",
                    ),
                ],
            )
            .expect("changes");
        store
            .finish_run(first, RunStatus::Success, 2_000)
            .expect("finish");
        let second = store
            .start_run(RunTrigger::Schedule, RunMode::Delta, 3_000)
            .expect("run");
        store
            .record_changes(
                second,
                &[change(
                    "CN=Ada Lovelace,OU=Sales",
                    "AAA=",
                    ChangeKind::Update,
                    "ada@corp.test",
                )],
            )
            .expect("changes");
        store
            .record_errors(
                second,
                &[ErrorRecord {
                    step: StepKind::CloudExport,
                    dn: "CN=Ada Lovelace,OU=Sales".to_owned(),
                    anchor: Some("AAA=".to_owned()),
                    object_type: Some(ObjectKind::User),
                    error_type: "conflict".to_owned(),
                    code: Some("Request_BadRequest".to_owned()),
                    server_message: "Another object with the same value".to_owned(),
                    hint: "make the value unique".to_owned(),
                    first_occurred_at: 3_000,
                    retry_count: 0,
                }],
            )
            .expect("errors");

        let anchors = |text: &str| -> Vec<String> {
            store
                .find_objects(text, 10)
                .expect("find")
                .into_iter()
                .map(|found| found.anchor)
                .collect()
        };
        assert_eq!(anchors("lovelace"), ["AAA="]);
        assert_eq!(anchors("BOB@corp"), ["BBB="]);
        assert_eq!(anchors("AAA="), ["AAA="]);
        // `%` is a character to find, not a wildcard.
        assert_eq!(anchors("100%"), ["BBB="]);
        assert_eq!(anchors("1%0"), Vec::<String>::new());
        assert!(anchors("   ").is_empty());

        let history = store.object_history("AAA=").expect("history");
        let runs: Vec<RunId> = history.iter().map(|entry| entry.run_id).collect();
        assert_eq!(runs, [second, second, first]);
        assert!(history.iter().any(|entry| matches!(
            &entry.event,
            HistoryEvent::Error(error) if error.hint == "make the value unique"
        )));

        let rows = store.change_rows(first).expect("rows");
        assert_eq!(rows.len(), 2);
        let opened = store
            .object_change(rows[1].id, rows[1].imported)
            .expect("read")
            .expect("exists");
        assert_eq!(opened.dn, "CN=Bob 100%,OU=Sales");
        assert_eq!(opened.attributes[0].new, json!("bob@corp.test"));

        // What the second run's import read comes first in its list, and in Ada's history.
        let mut read = change(
            "CN=Ada Lovelace,OU=Sales",
            "AAA=",
            ChangeKind::Update,
            "ada@corp.test",
        );
        read.step = StepKind::DirectoryImport;
        read.cloud_id = None;
        store
            .record_import_changes(second, &[read])
            .expect("import changes");
        let rows = store.change_rows(second).expect("rows");
        assert_eq!(
            rows.iter()
                .map(|row| (row.step, row.imported))
                .collect::<Vec<_>>(),
            [
                (StepKind::DirectoryImport, true),
                (StepKind::CloudExport, false)
            ]
        );
        let imported = store
            .object_change(rows[0].id, true)
            .expect("read")
            .expect("exists");
        assert_eq!(imported.step, StepKind::DirectoryImport);
        assert_eq!(imported.attributes[0].name, "userPrincipalName");
        assert_eq!(store.object_history("AAA=").expect("history").len(), 4);

        store.record_throttled(second, 7).expect("throttled");
        let figures = store.connector_figures().expect("figures");
        assert_eq!(figures.throttled_requests, 7);
        assert_eq!(figures.last_throttled_run, Some(second));
    }
}
