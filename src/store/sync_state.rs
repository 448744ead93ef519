//! The sync state between runs: the connector space (every in-scope AD object as last imported,
//! and what is left to do for it), the links to the cloud objects dirsync manages, change-tracking
//! cursors, and export errors that persist from run to run.
//!
//! The rule that makes a killed run safe: a DirSync cookie is saved in the same transaction as the
//! changes it covers, and an object leaves `pending` (or `gone`) only in the transaction that
//! records its successful export. Whatever a crash interrupts is still pending next run.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::db::{OptionalExtension as _, Transaction, params};
use base64::Engine as _;
use serde_json::{Map, Value};

use super::{Dialect, StateStore, StoreError};
use crate::directory::Dn;
use crate::directory::objects::{DirectoryObject, ObjectKind, ValueProblem};
use crate::directory::sid::Sid;
use crate::guid::Guid;

/// What the store remembers of an object dirsync manages in the cloud.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub anchor: Guid,
    pub kind: ObjectKind,
    pub dn: Dn,
    pub cloud_id: String,
    /// The properties as last exported: what the cloud holds, as far as dirsync knows.
    pub exported: Map<String, Value>,
    /// Groups: the member anchors last exported. Users: empty.
    pub members: BTreeSet<Guid>,
    /// Users: the manager's anchor last exported.
    pub manager: Option<Guid>,
    /// Users disabled in the cloud when they left the scope, waiting to be deleted (README,
    /// "Deletes you can take back"): when, in Unix milliseconds.
    pub disabled_at: Option<i64>,
}

/// A create sent to the cloud whose result is not kept yet (see `create_intents` in the
/// migrations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateIntent {
    pub anchor: Guid,
    pub kind: ObjectKind,
    pub dn: Dn,
    /// The userPrincipalName (users) or mailNickname (groups) the create sent.
    pub lookup: String,
    pub requested_at: i64,
}

/// The cursor name of the directory's DirSync cookie.
pub const DIRSYNC_CURSOR: &str = "directory-dirsync-cookie";
/// When drift was last checked (Unix milliseconds, big-endian): the run that spans it checked.
pub const DRIFT_CHECK_CURSOR: &str = "cloud-drift-check";
/// The scope the last full import read: a different scope needs a full import.
pub const SCOPE_CURSOR: &str = "directory-scope";
/// What the domain controller answered for the sync rules' LDAP filters and group memberships at
/// the last import (README, "Sync rules"): the objects whose answer changes are read again.
pub const RULE_SETS_CURSOR: &str = "directory-rule-sets";

/// The forests' naming contexts a run last finished with (README, "Several forests"): when
/// they change, a run looks for the objects of a forest no longer configured.
pub const FORESTS_CURSOR: &str = "directory-forests";

/// The first value of the attribute `?1` in an object's JSON, in the engine's own words.
fn first_value_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "json_extract(object, '$.attributes.' || ?1 || '[0]')",
        Dialect::Postgres => "(object::jsonb -> 'attributes' -> ?1 ->> 0)",
    }
}

fn kind_word(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::User => "user",
        ObjectKind::Group => "group",
    }
}

fn parse_kind(text: &str) -> ObjectKind {
    if text == "group" {
        ObjectKind::Group
    } else {
        ObjectKind::User
    }
}

fn corrupt(what: &str, text: &str) -> super::db::DbError {
    super::db::DbError::Corrupt(format!(
        "the state database holds an unreadable {what}: '{text}'"
    ))
}

pub(super) fn parse_guid(text: &str) -> super::db::Result<Guid> {
    Guid::parse(text).ok_or_else(|| corrupt("anchor", text))
}

pub(super) fn parse_dn(text: &str) -> super::db::Result<Dn> {
    Dn::parse(text).map_err(|_| corrupt("DN", text))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredObject {
    attributes: std::collections::BTreeMap<String, Vec<String>>,
    object_sid: Option<String>,
    #[serde(default)]
    problems: Vec<(String, String)>,
}

fn object_json(object: &DirectoryObject) -> String {
    let stored = StoredObject {
        attributes: object.attributes.clone(),
        object_sid: object
            .object_sid
            .as_ref()
            .map(|sid| base64::engine::general_purpose::STANDARD.encode(sid.to_bytes())),
        problems: object
            .problems
            .iter()
            .map(|problem| (problem.attribute.clone(), problem.problem.clone()))
            .collect(),
    };
    serde_json::to_string(&stored).expect("strings always serialize")
}

fn read_object(
    anchor: &str,
    kind: &str,
    dn: &str,
    json: &str,
) -> super::db::Result<DirectoryObject> {
    let stored: StoredObject = serde_json::from_str(json).map_err(|_| corrupt("object", anchor))?;
    Ok(DirectoryObject {
        anchor: parse_guid(anchor)?,
        dn: parse_dn(dn)?,
        kind: parse_kind(kind),
        attributes: stored.attributes,
        object_sid: stored
            .object_sid
            .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok())
            .and_then(|bytes| Sid::from_bytes(&bytes).ok()),
        problems: stored
            .problems
            .into_iter()
            .map(|(attribute, problem)| ValueProblem { attribute, problem })
            .collect(),
    })
}

/// The DNs an object points at.
fn references(object: &DirectoryObject) -> BTreeSet<String> {
    object
        .values("member")
        .iter()
        .chain(object.values("manager"))
        .filter_map(|dn| Dn::parse(dn).ok())
        .map(|dn| dn.normalized().to_owned())
        .collect()
}

/// One thing export learned, applied with others in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportUpdate {
    /// The link as it now is (created, joined or written to).
    Link(Link),
    /// Nothing is left to do for this object.
    Synced(Guid),
    /// The cloud object is deleted: forget the object and its link.
    Removed(Guid),
    /// The cloud object is gone (deleted outside dirsync): forget the link and keep the object
    /// pending, so the next run joins or creates it again.
    Unlinked(Guid),
    /// An object newly exists in the cloud: whatever names its DN is evaluated again next run, so
    /// a group whose member was created late gains it.
    ReferrersPending(Dn),
    /// The create is settled without a link: Graph refused it, or a lookup showed it made
    /// nothing.
    IntentSettled(Guid),
}

/// An object's error history (miisclient's "first occurred" and "retry count").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorHistory {
    pub first_occurred_at: i64,
    pub retry_count: i64,
}

impl StateStore {
    pub fn cursor(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .connection()
            .query_row(
                "SELECT value FROM sync_cursors WHERE name = ?1",
                [name],
                |row| row.get(0),
            )
            .optional()?)
    }

    pub fn set_cursor(&self, name: &str, value: &[u8], now: i64) -> Result<(), StoreError> {
        self.connection().execute(
            "INSERT INTO sync_cursors (name, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            params![name, value, now],
        )?;
        Ok(())
    }

    pub fn remove_cursor(&self, name: &str) -> Result<(), StoreError> {
        self.connection()
            .execute("DELETE FROM sync_cursors WHERE name = ?1", [name])?;
        Ok(())
    }

    /// One stored object, as last imported.
    pub fn directory_object(&self, anchor: Guid) -> Result<Option<DirectoryObject>, StoreError> {
        Ok(self
            .connection()
            .query_row(
                "SELECT anchor, kind, dn, object FROM directory_objects WHERE anchor = ?1",
                [anchor.to_string()],
                |row| {
                    read_object(
                        &row.get::<_, String>(0)?,
                        &row.get::<_, String>(1)?,
                        &row.get::<_, String>(2)?,
                        &row.get::<_, String>(3)?,
                    )
                },
            )
            .optional()?)
    }

    /// Keeps what an import read, in one transaction: `objects` become pending, `gone` anchors
    /// are marked for deletion in the cloud, and `cursor` (when given) moves on with them.
    pub fn save_import(
        &self,
        objects: &[DirectoryObject],
        gone: &[Guid],
        cursor: Option<(&str, &[u8])>,
        now: i64,
    ) -> Result<(), StoreError> {
        let connection = self.connection();
        let transaction = connection.unchecked_transaction()?;
        upsert_objects(&transaction, objects)?;
        mark_gone(&transaction, gone)?;
        if let Some((name, value)) = cursor {
            transaction.execute(
                "INSERT INTO sync_cursors (name, value, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                params![name, value, now],
            )?;
        }
        transaction.commit()?;
        Ok(())
    }

    /// Every anchor the sync state knows (connector space or links), for a full import to find
    /// what AD no longer has.
    pub fn known_anchors(&self) -> Result<Vec<Guid>, StoreError> {
        let connection = self.connection();
        let mut select = connection.prepare(
            "SELECT anchor FROM directory_objects WHERE state != 'gone'
             UNION SELECT anchor FROM links",
        )?;
        let anchors = select
            .query_map((), |row| parse_guid(&row.get::<_, String>(0)?))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(anchors)
    }

    /// Every object the sync state knows (connector space or links) with its DN, for a full
    /// import of one forest to find what its AD no longer has (README, "Several forests").
    pub fn known_objects(&self) -> Result<Vec<(Guid, String)>, StoreError> {
        let connection = self.connection();
        let mut select = connection.prepare(
            "SELECT anchor, dn FROM directory_objects WHERE state != 'gone'
             UNION SELECT anchor, dn FROM links
                 WHERE anchor NOT IN (SELECT anchor FROM directory_objects)",
        )?;
        let objects = select
            .query_map((), |row| {
                Ok((parse_guid(&row.get::<_, String>(0)?)?, row.get(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(objects)
    }

    /// Every user with a value of `attribute` (a canonical AD attribute name), with its DN,
    /// that value and whether it is gone: what the join of several forests compares (README,
    /// "Several forests").
    pub fn join_candidates(
        &self,
        attribute: &str,
    ) -> Result<Vec<(Guid, String, String, bool)>, StoreError> {
        let connection = self.connection();
        let first_value = first_value_sql(connection.dialect());
        let mut select = connection.prepare(&format!(
            "SELECT anchor, dn, {first_value}, state = 'gone'
             FROM directory_objects
             WHERE kind = 'user' AND {first_value} IS NOT NULL"
        ))?;
        let candidates = select
            .query_map([attribute], |row| {
                Ok((
                    parse_guid(&row.get::<_, String>(0)?)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(candidates)
    }

    /// The anchor of the object whose first value of `attribute` is `value` (a scan: for the
    /// rare objects a deletion names by another value than their anchor).
    pub fn anchor_by_text_attribute(
        &self,
        attribute: &str,
        value: &str,
    ) -> Result<Option<Guid>, StoreError> {
        let connection = self.connection();
        let first_value = first_value_sql(connection.dialect());
        let anchor: Option<String> = connection
            .query_row(
                &format!("SELECT anchor FROM directory_objects WHERE {first_value} = ?2"),
                params![attribute, value],
                |row| row.get(0),
            )
            .optional()?;
        anchor
            .map(|anchor| parse_guid(&anchor))
            .transpose()
            .map_err(StoreError::from)
    }

    /// A gone object's cloud user goes on for another object (the same person in another
    /// forest): its link moves to `to`, and the gone object is forgotten.
    pub fn move_link(&self, from: Guid, to: Guid, dn: &Dn) -> Result<(), StoreError> {
        let connection = self.connection();
        let transaction = connection.unchecked_transaction()?;
        transaction.execute(
            "UPDATE links SET anchor = ?2, dn = ?3 WHERE anchor = ?1",
            params![from.to_string(), to.to_string(), dn.as_str()],
        )?;
        transaction.execute(
            "DELETE FROM directory_objects WHERE anchor = ?1",
            [from.to_string()],
        )?;
        transaction.commit()?;
        Ok(())
    }

    /// Objects with something left to do.
    pub fn pending_objects(&self) -> Result<Vec<DirectoryObject>, StoreError> {
        let connection = self.connection();
        let mut select = connection.prepare(
            "SELECT anchor, kind, dn, object FROM directory_objects WHERE state = 'pending'",
        )?;
        let objects = select
            .query_map((), |row| {
                read_object(
                    &row.get::<_, String>(0)?,
                    &row.get::<_, String>(1)?,
                    &row.get::<_, String>(2)?,
                    &row.get::<_, String>(3)?,
                )
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(objects)
    }

    /// The objects whose DN does not end with any of `naming_contexts` (compared without case,
    /// as SQL's LIKE compares ASCII): those of a forest no longer configured (README, "Several
    /// forests"), with their DN and whether they are gone already. The scan stays in SQLite: a
    /// cycle with nothing changed asks it too.
    pub fn objects_outside(
        &self,
        naming_contexts: &[&str],
    ) -> Result<Vec<(Guid, String, bool)>, StoreError> {
        let conditions: String = (1..=naming_contexts.len())
            .map(|index| format!(" AND dn NOT LIKE ?{index} ESCAPE '\\'"))
            .collect();
        let patterns: Vec<String> = naming_contexts
            .iter()
            .map(|naming_context| format!("%{}", escape_like(naming_context)))
            .collect();
        let connection = self.connection();
        let mut select = connection.prepare(&format!(
            "SELECT anchor, dn, CASE WHEN state = 'gone' THEN 1 ELSE 0 END
                 FROM directory_objects WHERE TRUE{conditions}
             UNION SELECT anchor, dn, 0 FROM links
                 WHERE anchor NOT IN (SELECT anchor FROM directory_objects){conditions}"
        ))?;
        let objects = select
            .query_map(super::db::params_from_iter(&patterns), |row| {
                Ok((
                    parse_guid(&row.get::<_, String>(0)?)?,
                    row.get(1)?,
                    row.get(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(objects)
    }

    /// Anchors deleted in AD or moved out of scope whose cloud objects are still to delete.
    pub fn gone_anchors(&self) -> Result<Vec<Guid>, StoreError> {
        let connection = self.connection();
        let mut select =
            connection.prepare("SELECT anchor FROM directory_objects WHERE state = 'gone'")?;
        let anchors = select
            .query_map((), |row| parse_guid(&row.get::<_, String>(0)?))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(anchors)
    }

    /// Forgets everything a sync remembers of AD and the cloud (objects, links, cookies, pending
    /// creates, confirmed group matches, held disables, password and mailbox state, firing
    /// alerts), keeping the run history and the audit trail: after `dirsync uninstall` a new
    /// setup starts from scratch (README, "Turning sync off").
    pub fn forget_sync_state(&self) -> Result<(), StoreError> {
        let connection = self.connection();
        let transaction = connection.unchecked_transaction()?;
        for table in [
            "directory_references",
            "directory_objects",
            "links",
            "object_errors",
            "sync_cursors",
            "create_intents",
            "group_matches",
            "held_disabled",
            "password_sync",
            "cloud_mailboxes",
            "alerts_firing",
            "scheduler_lease",
            "export_lease",
        ] {
            transaction.execute(&format!("DELETE FROM {table}"), ())?;
        }
        transaction.commit()?;
        Ok(())
    }

    /// How many objects the connector space holds in each state.
    pub fn object_counts(&self) -> Result<HashMap<String, u64>, StoreError> {
        let connection = self.connection();
        let mut select =
            connection.prepare("SELECT state, count(*) FROM directory_objects GROUP BY state")?;
        let counts = select
            .query_map((), |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as u64)))?
            .collect::<Result<HashMap<_, _>, _>>()?;
        Ok(counts)
    }

    pub fn links(&self) -> Result<HashMap<Guid, Link>, StoreError> {
        let connection = self.connection();
        let mut select = connection.prepare(
            "SELECT anchor, kind, dn, cloud_id, exported, members, manager, disabled_at FROM links",
        )?;
        let links = select
            .query_map((), |row| {
                let anchor = parse_guid(&row.get::<_, String>(0)?)?;
                let exported: String = row.get(4)?;
                let members: String = row.get(5)?;
                let manager: Option<String> = row.get(6)?;
                let members: Vec<String> =
                    serde_json::from_str(&members).map_err(|_| corrupt("member list", &members))?;
                Ok((
                    anchor,
                    Link {
                        anchor,
                        kind: parse_kind(&row.get::<_, String>(1)?),
                        dn: parse_dn(&row.get::<_, String>(2)?)?,
                        cloud_id: row.get(3)?,
                        exported: serde_json::from_str::<Map<String, Value>>(&exported)
                            .map_err(|_| corrupt("exported properties", &exported))?,
                        members: members
                            .iter()
                            .map(|member| parse_guid(member))
                            .collect::<Result<_, _>>()?,
                        manager: manager.as_deref().map(parse_guid).transpose()?,
                        disabled_at: row.get(7)?,
                    },
                ))
            })?
            .collect::<Result<HashMap<_, _>, _>>()?;
        Ok(links)
    }

    /// Keeps the intents of creates about to be sent, in one transaction, before they are sent.
    pub fn record_create_intents(&self, intents: &[CreateIntent]) -> Result<(), StoreError> {
        if intents.is_empty() {
            return Ok(());
        }
        let connection = self.connection();
        let transaction = connection.unchecked_transaction()?;
        for intent in intents {
            transaction.execute(
                "INSERT INTO create_intents (anchor, kind, dn, lookup, requested_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (anchor) DO UPDATE SET kind = excluded.kind, dn = excluded.dn,
                     lookup = excluded.lookup, requested_at = excluded.requested_at",
                params![
                    intent.anchor.to_string(),
                    kind_word(intent.kind),
                    intent.dn.as_str(),
                    intent.lookup,
                    intent.requested_at,
                ],
            )?;
        }
        transaction.commit()?;
        Ok(())
    }

    /// Proposes matching the AD group `anchor` to the cloud group `cloud_id` (a run found it
    /// with the group's mailNickname). A proposal for another cloud group replaces it, and a
    /// confirmation given for that other group no longer counts.
    pub fn propose_group_match(
        &self,
        anchor: Guid,
        cloud_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.connection().execute(
            "INSERT INTO group_matches (anchor, cloud_id, proposed_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (anchor) DO UPDATE SET proposed_at = excluded.proposed_at,
                 confirmed_at = CASE WHEN group_matches.cloud_id = excluded.cloud_id THEN group_matches.confirmed_at END,
                 cloud_id = excluded.cloud_id",
            params![anchor.to_string(), cloud_id, now],
        )?;
        Ok(())
    }

    /// The proposed match of the group whose DN is `dn` (any case): its anchor and the cloud
    /// group's id.
    pub fn proposed_group_match(&self, dn: &str) -> Result<Option<(Guid, String)>, StoreError> {
        let connection = self.connection();
        let found = connection
            .query_row(
                "SELECT m.anchor, m.cloud_id FROM group_matches m
                 JOIN directory_objects o ON o.anchor = m.anchor
                 WHERE lower(o.dn) = lower(?1)",
                [dn],
                |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
            )
            .optional()?;
        match found {
            Some((anchor, cloud_id)) => Ok(Some((parse_guid(&anchor)?, cloud_id))),
            None => Ok(None),
        }
    }

    /// The cloud group proposed for the AD group `anchor`, and whether it is confirmed.
    pub fn group_match_proposal(&self, anchor: Guid) -> Result<Option<(String, bool)>, StoreError> {
        Ok(self
            .connection()
            .query_row(
                "SELECT cloud_id, confirmed_at IS NOT NULL FROM group_matches WHERE anchor = ?1",
                [anchor.to_string()],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?)
    }

    /// Confirms the proposed match of `anchor` onto `cloud_id`: the next run joins them.
    /// False when no such match is proposed.
    pub fn confirm_group_match(
        &self,
        anchor: Guid,
        cloud_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let changed = self.connection().execute(
            "UPDATE group_matches SET confirmed_at = ?3 WHERE anchor = ?1 AND cloud_id = ?2",
            params![anchor.to_string(), cloud_id, now],
        )?;
        Ok(changed > 0)
    }

    /// Confirmed group matches: AD group anchor → cloud group id.
    pub fn confirmed_group_matches(&self) -> Result<HashMap<Guid, String>, StoreError> {
        let connection = self.connection();
        let mut select = connection
            .prepare("SELECT anchor, cloud_id FROM group_matches WHERE confirmed_at IS NOT NULL")?;
        let matches = select
            .query_map((), |row| {
                Ok((parse_guid(&row.get::<_, String>(0)?)?, row.get(1)?))
            })?
            .collect::<Result<HashMap<_, _>, _>>()?;
        Ok(matches)
    }

    /// Users held disabled in the cloud by `dirsync push --disable` (README, "Pushing one user
    /// now").
    pub fn held_disabled(&self) -> Result<HashSet<Guid>, StoreError> {
        let connection = self.connection();
        let mut select = connection.prepare("SELECT anchor FROM held_disabled")?;
        let held = select
            .query_map((), |row| parse_guid(&row.get::<_, String>(0)?))?
            .collect::<Result<HashSet<_>, _>>()?;
        Ok(held)
    }

    /// Holds the user `anchor` disabled in the cloud, whatever AD says, until released.
    pub fn hold_disabled(&self, anchor: Guid, now: i64) -> Result<(), StoreError> {
        self.connection().execute(
            "INSERT INTO held_disabled (anchor, held_at) VALUES (?1, ?2)
             ON CONFLICT (anchor) DO NOTHING",
            params![anchor.to_string(), now],
        )?;
        Ok(())
    }

    /// Ends the hold on `anchor`: the cloud account follows AD again. False when none was held.
    pub fn release_held_disabled(&self, anchor: Guid) -> Result<bool, StoreError> {
        let changed = self.connection().execute(
            "DELETE FROM held_disabled WHERE anchor = ?1",
            [anchor.to_string()],
        )?;
        Ok(changed > 0)
    }

    /// Creates sent and never confirmed, by anchor.
    pub fn create_intents(&self) -> Result<HashMap<Guid, CreateIntent>, StoreError> {
        let connection = self.connection();
        let mut select = connection
            .prepare("SELECT anchor, kind, dn, lookup, requested_at FROM create_intents")?;
        let intents = select
            .query_map((), |row| {
                let anchor = parse_guid(&row.get::<_, String>(0)?)?;
                Ok((
                    anchor,
                    CreateIntent {
                        anchor,
                        kind: parse_kind(&row.get::<_, String>(1)?),
                        dn: parse_dn(&row.get::<_, String>(2)?)?,
                        lookup: row.get(3)?,
                        requested_at: row.get(4)?,
                    },
                ))
            })?
            .collect::<Result<HashMap<_, _>, _>>()?;
        Ok(intents)
    }

    /// Applies what an export batch learned, in one transaction.
    pub fn apply_export(&self, updates: &[ExportUpdate]) -> Result<(), StoreError> {
        if updates.is_empty() {
            return Ok(());
        }
        let connection = self.connection();
        let transaction = connection.unchecked_transaction()?;
        for update in updates {
            match update {
                ExportUpdate::Link(link) => {
                    for table in ["create_intents", "group_matches"] {
                        transaction.execute(
                            &format!("DELETE FROM {table} WHERE anchor = ?1"),
                            [link.anchor.to_string()],
                        )?;
                    }
                    let members: Vec<String> =
                        link.members.iter().map(ToString::to_string).collect();
                    transaction.execute(
                        "INSERT INTO links (anchor, kind, dn, cloud_id, exported, members, manager,
                             disabled_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                         ON CONFLICT (anchor) DO UPDATE SET kind = excluded.kind, dn = excluded.dn,
                             cloud_id = excluded.cloud_id, exported = excluded.exported,
                             members = excluded.members, manager = excluded.manager,
                             disabled_at = excluded.disabled_at",
                        params![
                            link.anchor.to_string(),
                            kind_word(link.kind),
                            link.dn.as_str(),
                            link.cloud_id,
                            Value::Object(link.exported.clone()).to_string(),
                            serde_json::to_string(&members).expect("strings serialize"),
                            link.manager.map(|manager| manager.to_string()),
                            link.disabled_at,
                        ],
                    )?;
                }
                ExportUpdate::Synced(anchor) => {
                    transaction.execute(
                        "UPDATE directory_objects SET state = 'synced'
                         WHERE anchor = ?1 AND state = 'pending'",
                        [anchor.to_string()],
                    )?;
                    transaction.execute(
                        "DELETE FROM object_errors WHERE anchor = ?1",
                        [anchor.to_string()],
                    )?;
                }
                ExportUpdate::Removed(anchor) => {
                    for table in [
                        "links",
                        "directory_objects",
                        "object_errors",
                        "create_intents",
                        "held_disabled",
                    ] {
                        transaction.execute(
                            &format!("DELETE FROM {table} WHERE anchor = ?1"),
                            [anchor.to_string()],
                        )?;
                    }
                }
                ExportUpdate::IntentSettled(anchor) => {
                    transaction.execute(
                        "DELETE FROM create_intents WHERE anchor = ?1",
                        [anchor.to_string()],
                    )?;
                }
                ExportUpdate::Unlinked(anchor) => {
                    transaction
                        .execute("DELETE FROM links WHERE anchor = ?1", [anchor.to_string()])?;
                }
                ExportUpdate::ReferrersPending(dn) => {
                    transaction.execute(
                        "UPDATE directory_objects SET state = 'pending'
                         WHERE state = 'synced' AND anchor IN
                             (SELECT source FROM directory_references WHERE target_dn = ?1)",
                        [dn.normalized()],
                    )?;
                }
            }
        }
        transaction.commit()?;
        Ok(())
    }

    /// Records that `anchor` failed again and returns its history: the first time it failed
    /// (in a row) and how many runs have retried it since.
    pub fn object_error_seen(
        &self,
        anchor: Guid,
        error_type: &str,
        now: i64,
    ) -> Result<ErrorHistory, StoreError> {
        let db = self.connection();
        db.execute(
            "INSERT INTO object_errors (anchor, error_type, first_occurred_at, retry_count)
             VALUES (?1, ?2, ?3, 0)
             ON CONFLICT (anchor) DO UPDATE SET retry_count = object_errors.retry_count + 1,
                 error_type = excluded.error_type",
            params![anchor.to_string(), error_type, now],
        )?;
        Ok(db.query_row(
            "SELECT first_occurred_at, retry_count FROM object_errors WHERE anchor = ?1",
            [anchor.to_string()],
            |row| {
                Ok(ErrorHistory {
                    first_occurred_at: row.get(0)?,
                    retry_count: row.get(1)?,
                })
            },
        )?)
    }
}

/// `text` for a LIKE pattern with `\` as the escape: its `%` and `_` match only themselves.
pub(super) fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Rows per multi-row statement: a page of objects is a few statements, not a few per object
/// (one round trip each to a PostgreSQL server), within both engines' parameter limits.
const ROWS_PER_STATEMENT: usize = 250;

fn upsert_objects(
    transaction: &Transaction<'_>,
    objects: &[DirectoryObject],
) -> super::db::Result<()> {
    // The last reading of an object wins; one statement may not name a row twice.
    let mut latest: HashMap<Guid, &DirectoryObject> = HashMap::new();
    let mut order = Vec::new();
    for object in objects {
        if latest.insert(object.anchor, object).is_none() {
            order.push(object.anchor);
        }
    }
    let objects: Vec<&DirectoryObject> = order.iter().map(|anchor| latest[anchor]).collect();
    for chunk in objects.chunks(ROWS_PER_STATEMENT) {
        let anchors: Vec<String> = chunk
            .iter()
            .map(|object| object.anchor.to_string())
            .collect();
        let mut values: Vec<super::db::Value> = Vec::with_capacity(chunk.len() * 4);
        for (object, anchor) in chunk.iter().zip(&anchors) {
            values.push(super::db::Value::Text(anchor.clone()));
            values.push(super::db::Value::Text(kind_word(object.kind).to_owned()));
            values.push(super::db::Value::Text(object.dn.as_str().to_owned()));
            values.push(super::db::Value::Text(object_json(object)));
        }
        transaction.execute(
            &format!(
                "INSERT INTO directory_objects (anchor, kind, dn, object, state) VALUES {}
                 ON CONFLICT (anchor) DO UPDATE SET kind = excluded.kind, dn = excluded.dn,
                     object = excluded.object, state = 'pending'",
                row_placeholders(chunk.len(), 4, "'pending'")
            ),
            super::db::params_from_iter(values),
        )?;
        transaction.execute(
            &format!(
                "DELETE FROM directory_references WHERE source IN ({})",
                row_placeholders(anchors.len(), 1, "")
            ),
            super::db::params_from_iter(&anchors),
        )?;
        let pairs: Vec<(&String, String)> = chunk
            .iter()
            .zip(&anchors)
            .flat_map(|(object, anchor)| {
                references(object)
                    .into_iter()
                    .map(move |target| (anchor, target))
            })
            .collect();
        for pairs in pairs.chunks(ROWS_PER_STATEMENT * 2) {
            let values: Vec<&str> = pairs
                .iter()
                .flat_map(|(anchor, target)| [anchor.as_str(), target.as_str()])
                .collect();
            transaction.execute(
                &format!(
                    "INSERT INTO directory_references (source, target_dn) VALUES {}
                     ON CONFLICT DO NOTHING",
                    row_placeholders(pairs.len(), 2, "")
                ),
                super::db::params_from_iter(values),
            )?;
        }
    }
    Ok(())
}

/// `(?1, ?2), (?3, ?4)…`: `rows` rows of `columns` placeholders, each row ending in `constant`
/// when one is given.
fn row_placeholders(rows: usize, columns: usize, constant: &str) -> String {
    (0..rows)
        .map(|row| {
            let mut cells: Vec<String> = (1..=columns)
                .map(|column| format!("?{}", row * columns + column))
                .collect();
            if !constant.is_empty() {
                cells.push(constant.to_owned());
            }
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn mark_gone(transaction: &Transaction<'_>, gone: &[Guid]) -> super::db::Result<()> {
    let mut mark =
        transaction.prepare("UPDATE directory_objects SET state = 'gone' WHERE anchor = ?1")?;
    // A linked object the connector space lost track of is still deleted in the cloud.
    let mut from_link = transaction.prepare(
        "INSERT INTO directory_objects (anchor, kind, dn, object, state)
         SELECT anchor, kind, dn, '{\"attributes\":{}}', 'gone' FROM links WHERE anchor = ?1
         ON CONFLICT DO NOTHING",
    )?;
    for anchor in gone {
        let anchor = anchor.to_string();
        if mark.execute([&anchor])? == 0 {
            from_link.execute([&anchor])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    #[test]
    fn a_page_written_in_few_statements_keeps_every_object_the_last_reading_of_each_and_its_references()
     {
        let store = StateStore::open_scratch().expect("open");
        // More objects than one statement holds, one of them read twice in the page.
        let mut page: Vec<DirectoryObject> = (1..=255)
            .map(|n| user(n, Some("CN=u1,OU=Corp,DC=x")))
            .collect();
        let mut again = user(7, None);
        again
            .attributes
            .insert("title".to_owned(), vec!["Read again".to_owned()]);
        page.push(again);
        store.save_import(&page, &[], None, 1).expect("save");
        assert_eq!(store.known_anchors().expect("anchors").len(), 255);
        let seven = store
            .directory_object(Guid([7; 16]))
            .expect("read")
            .expect("there");
        assert_eq!(seven.values("title"), ["Read again".to_owned()]);
        let references: i64 = store
            .connection()
            .query_row(
                "SELECT count(*) FROM directory_references WHERE target_dn = ?1",
                [Dn::parse("CN=u1,OU=Corp,DC=x").expect("dn").normalized()],
                |row| row.get(0),
            )
            .expect("count");
        assert_eq!(
            references, 254,
            "every manager reference but the re-read one's"
        );
    }

    fn user(n: u8, manager: Option<&str>) -> DirectoryObject {
        let mut attributes = BTreeMap::new();
        attributes.insert("sAMAccountName".to_owned(), vec![format!("u{n}")]);
        if let Some(manager) = manager {
            attributes.insert("manager".to_owned(), vec![manager.to_owned()]);
        }
        DirectoryObject {
            anchor: Guid([n; 16]),
            dn: Dn::parse(&format!("CN=u{n},OU=Corp,DC=x")).expect("dn"),
            kind: ObjectKind::User,
            attributes,
            object_sid: None,
            problems: vec![ValueProblem {
                attribute: "title".to_owned(),
                problem: "not UTF-8".to_owned(),
            }],
        }
    }

    fn link(n: u8) -> Link {
        Link {
            anchor: Guid([n; 16]),
            kind: ObjectKind::User,
            dn: Dn::parse(&format!("CN=u{n},OU=Corp,DC=x")).expect("dn"),
            cloud_id: format!("cloud-{n}"),
            exported: json!({"displayName": "U"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            members: BTreeSet::from([Guid([9; 16])]),
            manager: None,
            disabled_at: None,
        }
    }

    #[test]
    fn an_import_and_its_cookie_are_kept_together_and_objects_round_trip() {
        let store = StateStore::open_scratch().expect("open");
        let objects = [user(1, None), user(2, Some("CN=u1,OU=Corp,DC=x"))];
        store
            .save_import(&objects, &[], Some((DIRSYNC_CURSOR, b"cookie")), 1)
            .expect("save");
        assert_eq!(
            store.cursor(DIRSYNC_CURSOR).expect("cursor").as_deref(),
            Some(&b"cookie"[..])
        );
        let mut pending = store.pending_objects().expect("pending");
        pending.sort_by_key(|object| object.anchor);
        assert_eq!(pending, objects);
        assert_eq!(
            store.directory_object(Guid([2; 16])).expect("read"),
            Some(objects[1].clone())
        );
    }

    #[test]
    fn export_moves_objects_out_of_pending_and_a_late_target_wakes_its_referrers() {
        let store = StateStore::open_scratch().expect("open");
        let objects = [user(1, None), user(2, Some("CN=u1,OU=Corp,DC=x"))];
        store.save_import(&objects, &[], None, 1).expect("save");
        store
            .apply_export(&[
                ExportUpdate::Link(link(2)),
                ExportUpdate::Synced(Guid([2; 16])),
            ])
            .expect("export");
        assert_eq!(store.pending_objects().expect("pending").len(), 1);
        assert_eq!(store.links().expect("links")[&Guid([2; 16])], link(2));

        // u1 is created later: u2, which names it as manager, is evaluated again.
        store
            .apply_export(&[
                ExportUpdate::Link(link(1)),
                ExportUpdate::Synced(Guid([1; 16])),
                ExportUpdate::ReferrersPending(objects[0].dn.clone()),
            ])
            .expect("export");
        let pending = store.pending_objects().expect("pending");
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].anchor, Guid([2; 16]));
    }

    #[test]
    fn a_gone_object_stays_gone_until_its_cloud_delete_is_recorded() {
        let store = StateStore::open_scratch().expect("open");
        store
            .save_import(&[user(1, None)], &[], None, 1)
            .expect("save");
        store
            .apply_export(&[
                ExportUpdate::Link(link(1)),
                ExportUpdate::Synced(Guid([1; 16])),
            ])
            .expect("export");
        // Linked but not in the connector space (a state from before it existed): still deleted.
        store
            .apply_export(&[ExportUpdate::Link(link(3))])
            .expect("link");
        store
            .save_import(&[], &[Guid([1; 16]), Guid([3; 16]), Guid([7; 16])], None, 2)
            .expect("gone");
        let mut gone = store.gone_anchors().expect("gone");
        gone.sort();
        assert_eq!(gone, [Guid([1; 16]), Guid([3; 16])]);
        store
            .apply_export(&[ExportUpdate::Removed(Guid([1; 16]))])
            .expect("removed");
        assert_eq!(store.gone_anchors().expect("gone"), [Guid([3; 16])]);
        assert!(!store.links().expect("links").contains_key(&Guid([1; 16])));
    }

    #[test]
    fn an_error_that_repeats_keeps_its_first_occurrence_and_counts_retries() {
        let store = StateStore::open_scratch().expect("open");
        let anchor = Guid([4; 16]);
        let first = store
            .object_error_seen(anchor, "conflict", 100)
            .expect("seen");
        assert_eq!(
            first,
            ErrorHistory {
                first_occurred_at: 100,
                retry_count: 0
            }
        );
        let again = store
            .object_error_seen(anchor, "conflict", 200)
            .expect("seen");
        assert_eq!(
            again,
            ErrorHistory {
                first_occurred_at: 100,
                retry_count: 1
            }
        );
        store
            .save_import(&[user(4, None)], &[], None, 1)
            .expect("save");
        store
            .apply_export(&[ExportUpdate::Synced(anchor)])
            .expect("ok");
        let fresh = store
            .object_error_seen(anchor, "conflict", 300)
            .expect("seen");
        assert_eq!(fresh.retry_count, 0, "a success clears the history");
    }
}
