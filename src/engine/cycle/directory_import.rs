//! The directory import step: a full read of the scope (which also finds what AD lost while
//! nobody watched) or the DirSync changes since the saved cookie, saved with the cookie in one
//! transaction.

use std::collections::HashSet;

use crate::config::Forest;
use crate::directory::objects::{OBJECT_GUID_TEXT, guid_value};
use crate::directory::scope::SyncScope;

use super::*;

/// One forest's part of the directory import step (README, "Several forests"): what it reads,
/// with its rules, and where it keeps its cookie, its scope and its rules' answers.
pub(super) struct ForestRead {
    /// The forest's name (its domain's DNS name), as its steps and errors say it.
    pub name: String,
    pub naming_context: Dn,
    pub scope: SyncScope,
    pub rules: SyncRules,
    /// What its domain controller answered for its rules' LDAP filters and group memberships.
    pub rule_sets: RuleSets,
    pub dirsync_cursor: String,
    pub scope_cursor: String,
    pub rule_sets_cursor: String,
    pub fingerprint: String,
    /// Whether it alone of the configured forests is read: its objects are all the store
    /// knows.
    pub only_forest: bool,
    /// Objects are anchored by `mS-DS-ConsistencyGuid` (README, "The source anchor").
    pub by_consistency_guid: bool,
}

impl ForestRead {
    pub fn new(forest: &Forest<'_>, forests: usize, by_consistency_guid: bool) -> ForestRead {
        ForestRead {
            name: forest.name(),
            naming_context: forest.naming_context(),
            scope: forest.scope(),
            rules: forest.sync_rules(),
            rule_sets: RuleSets::default(),
            dirsync_cursor: forest.cursor(DIRSYNC_CURSOR),
            scope_cursor: forest.cursor(SCOPE_CURSOR),
            rule_sets_cursor: forest.cursor(RULE_SETS_CURSOR),
            fingerprint: scope_fingerprint(forest),
            only_forest: forests == 1,
            by_consistency_guid,
        }
    }

    /// Whether a stored object at `dn` is this forest's (with one forest, every object is).
    fn holds(&self, dn: &Dn) -> bool {
        self.only_forest || dn.is_within(&self.naming_context)
    }

    /// The object with the anchor the installation uses (README, "The source anchor"). After
    /// [`ForestRead::admits`]: the rules' answers name objects by their objectGUID.
    fn anchored(&self, object: DirectoryObject) -> DirectoryObject {
        if self.by_consistency_guid {
            object.anchored_by_consistency_guid()
        } else {
            object
        }
    }

    /// Whether the sync rules take `object` in (README, "Sync rules").
    fn admits(&self, object: &DirectoryObject) -> bool {
        decide_object(&self.rules, &self.rule_sets, object).in_scope
    }

    /// A full import on request, on the first run, and when the scope changed since the last
    /// one (a delta read would miss objects that entered or left the scope without changing).
    pub fn needs_full_import(
        &self,
        store: &StateStore,
        request: CycleRequest,
    ) -> Result<bool, StoreError> {
        Ok(request.full
            || store.cursor(&self.dirsync_cursor)?.is_none()
            || store.cursor(&self.scope_cursor)?.as_deref() != Some(self.fingerprint.as_bytes()))
    }
}

/// What every forest's import shares while they run at once: the store, the run, its progress
/// and its stop signal.
pub(super) struct SharedImport<'a> {
    pub store: &'a StateStore,
    pub run_id: crate::store::runs::RunId,
    pub progress: &'a (dyn Fn(Progress) + Sync),
    pub stop: &'a StopSignal,
    /// A cycle of one object (a trace applied, a push).
    pub only: Option<Guid>,
    /// Objects read so far by every forest, for the progress shown.
    pub done: std::sync::atomic::AtomicU64,
}

impl<'a> SharedImport<'a> {
    pub fn new(
        store: &'a StateStore,
        recorder: &RunRecorder<'a>,
        stop: &'a StopSignal,
        only: Option<Guid>,
    ) -> SharedImport<'a> {
        SharedImport {
            store,
            run_id: recorder.run_id(),
            progress: recorder.progress_callback(),
            stop,
            only,
            done: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Counts `read` more objects read and says so.
    fn read(&self, read: u64) {
        let done = self
            .done
            .fetch_add(read, std::sync::atomic::Ordering::Relaxed)
            + read;
        (self.progress)(Progress::Objects {
            step: StepKind::DirectoryImport,
            done,
            total: None,
        });
    }
}

/// One forest's import: its own reader, beside the other forests' (README, "Several forests").
pub(super) struct ForestImport<'a> {
    pub reader: &'a mut crate::directory::reader::DirectoryReader,
    pub shared: &'a SharedImport<'a>,
}

impl ForestImport<'_> {
    /// Reads one forest: every object in its scope when `full`, else its changes (every object
    /// when the domain controller no longer accepts the cookie).
    pub(super) async fn import_forest(
        &mut self,
        forest: &mut ForestRead,
        full: bool,
    ) -> Result<StepCounters, CycleError> {
        let connection = self.reader.connection().await?;
        forest.rule_sets = read_rule_sets(connection, &forest.scope, &forest.rules).await?;
        if let Some(anchor) = self.shared.only {
            self.import_one(forest, anchor).await
        } else if full {
            self.full_import(forest).await
        } else {
            match self.delta_import(forest).await {
                Err(CycleError::Directory(DirectoryError::CookieRejected { .. })) => {
                    tracing::warn!(
                        forest = %forest.name,
                        "the domain controller no longer accepts the saved DirSync cookie; reading every object instead"
                    );
                    self.full_import(forest).await
                }
                other => other,
            }
        }
    }

    /// Reads every object in scope. The cookie for "now" is taken first, so that changes made
    /// during the import are read again by the next delta run rather than missed. Objects the
    /// store knows and AD no longer has are gone (deleted while nobody watched).
    async fn full_import(&mut self, forest: &ForestRead) -> Result<StepCounters, CycleError> {
        let cookie = self.reader.current_cookie().await?;
        let known: HashSet<Guid> = self
            .shared
            .store
            .known_objects()?
            .into_iter()
            .filter(|(_, dn)| Dn::parse(dn).map_or(forest.only_forest, |dn| forest.holds(&dn)))
            .map(|(anchor, _)| anchor)
            .collect();
        let mut counters = StepCounters::default();
        let mut seen: HashSet<Guid> = HashSet::new();
        let connection = self.reader.connection().await?;
        let mut import = FullImport::new(connection, &forest.scope);
        while let Some(page) = import.next_page().await? {
            let mut changes = Vec::new();
            // What the sync rules leave out is not seen: if the store knows it, it is gone.
            let page: Vec<DirectoryObject> = page
                .into_iter()
                .filter(|object| forest.admits(object))
                .map(|object| forest.anchored(object))
                .collect();
            for object in &page {
                let stored = self.shared.store.directory_object(object.anchor)?;
                match import_change(stored.as_ref(), object) {
                    Some(change) => {
                        counters.count(change.change_kind);
                        changes.push(change);
                    }
                    None => counters.no_change += 1,
                }
                seen.insert(object.anchor);
            }
            self.shared
                .store
                .record_import_changes(self.shared.run_id, &changes)?;
            // A full run evaluates every object again (a changed tenant domain, say, changes
            // what an unchanged object should look like in the cloud).
            self.shared.store.save_import(&page, &[], None, now_ms())?;
            self.shared.read(page.len() as u64);
            if self.shared.stop.is_stopped() {
                return Err(CycleError::Stopped);
            }
        }
        let gone: Vec<Guid> = known.difference(&seen).copied().collect();
        counters.deletes = gone.len() as u64;
        let mut deleted = Vec::new();
        for anchor in &gone {
            if let Some(stored) = self.shared.store.directory_object(*anchor)? {
                deleted.push(import_delete(&stored));
            }
        }
        self.shared
            .store
            .record_import_changes(self.shared.run_id, &deleted)?;
        self.shared.store.save_import(
            &[],
            &gone,
            Some((&forest.dirsync_cursor, cookie.as_bytes())),
            now_ms(),
        )?;
        self.shared.store.set_cursor(
            &forest.scope_cursor,
            forest.fingerprint.as_bytes(),
            now_ms(),
        )?;
        self.shared.store.set_cursor(
            &forest.rule_sets_cursor,
            &forest.rule_sets.to_bytes(),
            now_ms(),
        )?;
        Ok(counters)
    }

    /// Reads one object now (a trace applied, a push): it alone becomes pending, or gone when
    /// AD no longer has it in scope. The DirSync cookie stays where it is.
    async fn import_one(
        &mut self,
        forest: &ForestRead,
        anchor: Guid,
    ) -> Result<StepCounters, CycleError> {
        let mut counters = StepCounters::default();
        self.read_again(forest, anchor, &mut counters).await?;
        Ok(counters)
    }

    /// Reads one object again and sorts it against the scope and the rules: pending when in,
    /// gone when the store knew it (as this forest's) and it is out.
    async fn read_again(
        &mut self,
        forest: &ForestRead,
        anchor: Guid,
        counters: &mut StepCounters,
    ) -> Result<(), CycleError> {
        // An object anchored by its mS-DS-ConsistencyGuid is found by its own objectGUID.
        let object_guid = self
            .shared
            .store
            .directory_object(anchor)?
            .and_then(|stored| stored.first(OBJECT_GUID_TEXT).and_then(Guid::parse))
            .unwrap_or(anchor);
        let connection = self.reader.connection().await?;
        let found = trace::find_object(
            connection,
            &forest.naming_context,
            &forest.scope,
            &object_guid.to_string(),
        )
        .await?;
        let in_scope = found
            .filter(|object| {
                forest.scope.contains(&object.dn)
                    && !object.is_system_object()
                    && forest.admits(object)
            })
            .map(|object| forest.anchored(object));
        let anchor = in_scope.as_ref().map_or(anchor, |object| object.anchor);
        let stored = self
            .shared
            .store
            .directory_object(anchor)?
            .filter(|stored| forest.holds(&stored.dn));
        match (in_scope, stored) {
            (Some(object), stored) => {
                let changes: Vec<_> = import_change(stored.as_ref(), &object)
                    .into_iter()
                    .collect();
                match changes.first() {
                    Some(change) => counters.count(change.change_kind),
                    None => counters.no_change += 1,
                }
                self.shared
                    .store
                    .record_import_changes(self.shared.run_id, &changes)?;
                self.shared
                    .store
                    .save_import(&[object], &[], None, now_ms())?;
            }
            (None, Some(stored)) => {
                counters.deletes += 1;
                self.shared
                    .store
                    .record_import_changes(self.shared.run_id, &[import_delete(&stored)])?;
                self.shared
                    .store
                    .save_import(&[], &[anchor], None, now_ms())?;
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// A gone object anchored by its mS-DS-ConsistencyGuid that this forest has under another
    /// objectGUID (a user moved here while its old account still existed): read here, it is
    /// pending again with this forest's DN instead of deleted (README, "The source anchor").
    pub(super) async fn claim_moved(
        &mut self,
        forest: &ForestRead,
        anchor: Guid,
    ) -> Result<(), CycleError> {
        let mut counters = StepCounters::default();
        self.read_again(forest, anchor, &mut counters).await
    }

    /// The stored object `anchor` names when it is this forest's: a deletion another forest's
    /// DirSync reports never touches it.
    fn stored_in(
        &self,
        forest: &ForestRead,
        anchor: Guid,
    ) -> Result<Option<DirectoryObject>, CycleError> {
        Ok(self
            .shared
            .store
            .directory_object(anchor)?
            .filter(|stored| forest.holds(&stored.dn)))
    }

    /// The anchor of the object whose objectGUID DirSync names (a deleted object has no
    /// mS-DS-ConsistencyGuid left to read; README, "The source anchor").
    fn anchor_of_object_guid(
        &self,
        forest: &ForestRead,
        object_guid: Guid,
    ) -> Result<Guid, CycleError> {
        if !forest.by_consistency_guid || self.shared.store.directory_object(object_guid)?.is_some()
        {
            return Ok(object_guid);
        }
        Ok(self
            .shared
            .store
            .anchor_by_text_attribute(OBJECT_GUID_TEXT, &object_guid.to_string())?
            .unwrap_or(object_guid))
    }

    /// Reads the changes since the saved cookie, keeping each answer with its cookie.
    async fn delta_import(&mut self, forest: &ForestRead) -> Result<StepCounters, CycleError> {
        let mut cookie = DirSyncCookie::from_bytes(
            self.shared
                .store
                .cursor(&forest.dirsync_cursor)?
                .unwrap_or_default(),
        );
        // Samba answers a DirSync read that completes with the domain's highest USN when its
        // search *ends* (dirsync.c, dirsync_create_vector): an object changed while the search
        // runs, after the search passed it, would lie behind that cookie and never be read. The
        // last batch keeps a cookie taken before the read instead, so such a change is read again
        // by the next run (README, "Password sync through Microsoft Graph", on this race). Pages
        // before the last carry the highest USN they returned, which is safe.
        let before = self.reader.current_cookie().await?;
        let mut counters = StepCounters::default();
        let mut read: HashSet<Guid> = HashSet::new();
        loop {
            let batch = self.reader.read_changes(&forest.scope, &cookie).await?;
            let mut objects = Vec::new();
            let mut gone = Vec::new();
            let mut changes = Vec::new();
            for change in batch.changes {
                match change {
                    DirectoryChange::InScope {
                        object, members, ..
                    } if forest.admits(&object) => {
                        read.insert(object.anchor);
                        let object = forest.anchored(object);
                        let stored = self.shared.store.directory_object(object.anchor)?;
                        let object = with_members(object, members, stored.as_ref());
                        // DirSync also reports changes to attributes dirsync does not read:
                        // those objects are unchanged here.
                        match import_change(stored.as_ref(), &object) {
                            Some(change) => {
                                counters.count(change.change_kind);
                                changes.push(change);
                            }
                            None => counters.no_change += 1,
                        }
                        objects.push(object);
                    }
                    DirectoryChange::InScope { object, .. } => {
                        // The sync rules leave it out now.
                        read.insert(object.anchor);
                        let anchor = forest.anchored(object).anchor;
                        if let Some(stored) = self.stored_in(forest, anchor)? {
                            counters.deletes += 1;
                            changes.push(import_delete(&stored));
                            gone.push(anchor);
                        }
                    }
                    DirectoryChange::OutOfScope { anchor, .. }
                    | DirectoryChange::Deleted { anchor } => {
                        read.insert(anchor);
                        let anchor = self.anchor_of_object_guid(forest, anchor)?;
                        if let Some(stored) = self.stored_in(forest, anchor)? {
                            counters.deletes += 1;
                            changes.push(import_delete(&stored));
                            gone.push(anchor);
                        }
                    }
                }
            }
            self.shared
                .store
                .record_import_changes(self.shared.run_id, &changes)?;
            let kept = if batch.more_results {
                &batch.cookie
            } else {
                &before
            };
            self.shared.store.save_import(
                &objects,
                &gone,
                Some((&forest.dirsync_cursor, kept.as_bytes())),
                now_ms(),
            )?;
            self.shared.read((objects.len() + gone.len()) as u64);
            cookie = batch.cookie;
            if !batch.more_results {
                break;
            }
        }
        // Objects whose group membership or LDAP filter answer changed without a change of
        // their own (a user added to a group the rules name): read again and sorted.
        let before = RuleSets::from_bytes(
            &self
                .shared
                .store
                .cursor(&forest.rule_sets_cursor)?
                .unwrap_or_default(),
        );
        let mut again: Vec<Guid> = forest
            .rule_sets
            .changed_anchors(&before)
            .into_iter()
            .filter(|anchor| !read.contains(anchor))
            .collect();
        again.sort_unstable();
        for anchor in again {
            self.read_again(forest, anchor, &mut counters).await?;
            if self.shared.stop.is_stopped() {
                return Err(CycleError::Stopped);
            }
        }
        self.shared.store.set_cursor(
            &forest.rule_sets_cursor,
            &forest.rule_sets.to_bytes(),
            now_ms(),
        )?;
        Ok(counters)
    }
}

/// Asks the domain controller the sync rules' questions (README, "Sync rules"): who each
/// kind's LDAP filter matches, and who is a member of each group a rule names, under the
/// scope's OUs. Object GUIDs only, page by page.
pub async fn read_rule_sets(
    connection: &crate::directory::DirectoryConnection,
    scope: &SyncScope,
    rules: &SyncRules,
) -> Result<RuleSets, DirectoryError> {
    let mut sets = RuleSets::default();
    for query in crate::engine::rule_scope::set_queries(rules) {
        let mut anchors = HashSet::new();
        for base in scope.search_bases() {
            let entries = connection
                .search_paged(
                    &format!("read what the sync rules' {} matches", query.key),
                    base.as_str(),
                    ldap3::Scope::Subtree,
                    &query.filter,
                    &["objectGUID"],
                    1_000,
                )
                .await?;
            anchors.extend(
                entries
                    .iter()
                    .filter_map(|entry| guid_value(entry, "objectGUID")),
            );
        }
        sets.sets.insert(query.key, anchors);
    }
    Ok(sets)
}

/// The sync rules' questions asked of one object only (a test of rules on it): each set holds
/// its anchor when the domain controller says it matches.
pub async fn read_rule_sets_of(
    connection: &crate::directory::DirectoryConnection,
    object: &DirectoryObject,
    rules: &SyncRules,
) -> Result<RuleSets, DirectoryError> {
    let mut sets = RuleSets::default();
    for query in crate::engine::rule_scope::set_queries(rules) {
        let found = connection
            .search(
                &format!("test the sync rules' {}", query.key),
                object.dn.as_str(),
                ldap3::Scope::Base,
                &query.filter,
                &["1.1"],
            )
            .await?;
        let anchors: HashSet<Guid> = if found.is_empty() {
            HashSet::new()
        } else {
            [object.anchor].into()
        };
        sets.sets.insert(query.key, anchors);
    }
    Ok(sets)
}

/// A group's members as they are now: DirSync's re-read leaves `member` out unless the group is
/// new or moved, so unchanged members come from the stored object and incremental changes are
/// applied to them.
pub(super) fn with_members(
    mut object: DirectoryObject,
    members: MemberChanges,
    stored: Option<&DirectoryObject>,
) -> DirectoryObject {
    if object.kind != ObjectKind::Group {
        return object;
    }
    let stored_members = || {
        stored
            .map(|stored| stored.values("member").to_vec())
            .unwrap_or_default()
    };
    let members = match members {
        MemberChanges::Complete => return object,
        MemberChanges::Unchanged => stored_members(),
        MemberChanges::Delta { added, removed } => {
            let removed: HashSet<String> = removed
                .iter()
                .map(|dn| dn.normalized().to_owned())
                .collect();
            let mut members: Vec<String> = stored_members()
                .into_iter()
                .filter(|dn| Dn::parse(dn).map_or(true, |dn| !removed.contains(dn.normalized())))
                .collect();
            let present: HashSet<String> = members
                .iter()
                .filter_map(|dn| Dn::parse(dn).ok())
                .map(|dn| dn.normalized().to_owned())
                .collect();
            members.extend(
                added
                    .into_iter()
                    .filter(|dn| !present.contains(dn.normalized()))
                    .map(|dn| dn.to_string()),
            );
            members
        }
    };
    if members.is_empty() {
        object.attributes.remove("member");
    } else {
        object.attributes.insert("member".to_owned(), members);
    }
    object
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn group(members: &[&str]) -> DirectoryObject {
        let mut attributes = BTreeMap::new();
        if !members.is_empty() {
            attributes.insert(
                "member".to_owned(),
                members.iter().map(|m| (*m).to_owned()).collect(),
            );
        }
        DirectoryObject {
            anchor: Guid([1; 16]),
            dn: Dn::parse("CN=g,DC=x").expect("dn"),
            kind: ObjectKind::Group,
            attributes,
            object_sid: None,
            problems: Vec::new(),
        }
    }

    fn dn(text: &str) -> Dn {
        Dn::parse(text).expect("dn")
    }

    #[test]
    fn a_group_keeps_its_stored_members_and_applies_incremental_changes() {
        let stored = group(&["CN=a,DC=x", "CN=b,DC=x"]);
        let reread = group(&[]);
        let unchanged = with_members(reread.clone(), MemberChanges::Unchanged, Some(&stored));
        assert_eq!(unchanged.values("member"), ["CN=a,DC=x", "CN=b,DC=x"]);

        let delta = with_members(
            reread,
            MemberChanges::Delta {
                added: vec![dn("CN=c,DC=x"), dn("cn=A,dc=x")],
                removed: vec![dn("cn=B,DC=X")],
            },
            Some(&stored),
        );
        assert_eq!(delta.values("member"), ["CN=a,DC=x", "CN=c,DC=x"]);

        let complete = with_members(
            group(&["CN=z,DC=x"]),
            MemberChanges::Complete,
            Some(&stored),
        );
        assert_eq!(complete.values("member"), ["CN=z,DC=x"]);
    }
}
