//! Reading users and groups out of Active Directory: the full import (paged results) for first
//! runs and reconciliation, and change tracking with the DirSync control for every other run.
//!
//! Nothing here stores anything: a DirSync cookie is handed to the caller with the changes it
//! covers, and the caller keeps it only once those changes are durable. Reading again from the
//! last kept cookie is always safe, so a dropped connection is retried from there.

use std::collections::BTreeSet;

use futures::StreamExt as _;
use ldap3::{Scope, SearchEntry};

use super::connection::DirectoryConnection;
use super::controls::{self, DIRSYNC_INCREMENTAL_VALUES};
use super::dn::Dn;
use super::error::DirectoryError;
use super::forest;
use super::objects::{self, DirectoryObject};
use super::scope::SyncScope;
use crate::guid::Guid;

/// Users and groups, not computers (which are users in AD's schema).
pub const USERS_AND_GROUPS_FILTER: &str =
    "(&(|(objectClass=user)(objectClass=group))(!(objectClass=computer)))";

/// What DirSync watches: users and groups, and the OUs and containers whose renames and moves
/// change the DN of everything below them without touching those objects.
const DIRSYNC_FILTER: &str = "(|(objectClass=user)(objectClass=group)(objectClass=organizationalUnit)(objectClass=container))";

/// A filter that matches nothing: a DirSync search with it returns only a cookie for "now".
/// Matches no object, through the objectGUID index (no object has the nil GUID): a DirSync
/// search that returns at once with a cookie for "now". Samba's cookie is the domain's highest
/// USN when the search ends, so a search that scanned the domain would give a later "now".
pub(crate) const MATCHES_NOTHING_FILTER: &str =
    "(objectGUID=\\00\\00\\00\\00\\00\\00\\00\\00\\00\\00\\00\\00\\00\\00\\00\\00)";

/// Samba's and Windows' default MaxPageSize.
const PAGE_SIZE: i64 = 1000;

/// Re-reads of changed objects kept in flight on the one connection.
const REREADS_IN_FLIGHT: usize = 16;

/// The server's opaque position in the change stream. Stored by the caller, never interpreted.
#[derive(Clone, PartialEq, Eq)]
pub struct DirSyncCookie(Vec<u8>);

impl DirSyncCookie {
    pub fn from_bytes(bytes: Vec<u8>) -> DirSyncCookie {
        DirSyncCookie(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for DirSyncCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DirSyncCookie({} bytes)", self.0.len())
    }
}

/// One change DirSync reported, already sorted against the scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryChange {
    /// A user or group in scope, as it is now.
    InScope {
        object: DirectoryObject,
        /// The attributes DirSync said changed (`name` means added, renamed or moved).
        changed_attributes: BTreeSet<String>,
        members: MemberChanges,
    },
    /// A user or group that changed and is now outside the scope (moved out, or a system
    /// object). If it was synced before, the cloud copy goes.
    OutOfScope { anchor: Guid, dn: Dn },
    /// Deleted in the directory.
    Deleted { anchor: Guid },
}

/// What a change says about a group's members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChanges {
    /// Not a group, or its members did not change.
    Unchanged,
    /// The object's `member` values are the complete list (new, renamed or moved groups).
    Complete,
    /// Values added to and removed from `member` (DNs).
    Delta { added: Vec<Dn>, removed: Vec<Dn> },
}

/// The changes of one DirSync answer and the cookie that follows them.
#[derive(Debug)]
pub struct ChangeBatch {
    pub changes: Vec<DirectoryChange>,
    pub cookie: DirSyncCookie,
    /// The server has more changes: read again with `cookie` (after keeping these).
    pub more_results: bool,
}

/// A cookie for "now", taken before a full import so that changes made during the import are
/// read again by the next incremental run rather than missed.
pub async fn current_cookie(
    connection: &DirectoryConnection,
    naming_context: &Dn,
) -> Result<DirSyncCookie, DirectoryError> {
    let (_, cookie, _) = dirsync_search(
        connection,
        naming_context,
        MATCHES_NOTHING_FILTER,
        &["objectGUID"],
        &[],
    )
    .await?;
    Ok(cookie)
}

/// How many users, groups, OUs and containers changed since `cookie` (attributes dirsync reads),
/// counted without reading them again or moving the cookie: the service's watch for changes
/// (README, "Seconds, not half-hours"). `more`: at least one page more.
pub async fn count_changes(
    connection: &DirectoryConnection,
    naming_context: &Dn,
    scope: &SyncScope,
    cookie: &DirSyncCookie,
) -> Result<(usize, bool), DirectoryError> {
    let mut attributes: Vec<&str> = scope.attributes();
    attributes.extend(["parentGUID", "isDeleted"]);
    let (entries, _, more_results) = dirsync_search(
        connection,
        naming_context,
        DIRSYNC_FILTER,
        &attributes,
        cookie.as_bytes(),
    )
    .await?;
    Ok((entries.len(), more_results))
}

/// Reads the changes since `cookie` and sorts them against `scope`.
pub async fn read_changes(
    connection: &DirectoryConnection,
    naming_context: &Dn,
    scope: &SyncScope,
    cookie: &DirSyncCookie,
) -> Result<ChangeBatch, DirectoryError> {
    let mut attributes: Vec<&str> = scope.attributes();
    attributes.extend(["parentGUID", "isDeleted"]);
    let (entries, cookie, more_results) = dirsync_search(
        connection,
        naming_context,
        DIRSYNC_FILTER,
        &attributes,
        cookie.as_bytes(),
    )
    .await?;

    let reported: Vec<ReportedChange> = entries.iter().filter_map(ReportedChange::from).collect();
    // Collected first so that no closure stays in the stream (which would keep the import's
    // future from being `Send`).
    let pending: Vec<_> = reported
        .iter()
        .map(|change| reread(connection, change, scope))
        .collect();
    let rereads: Vec<Result<Option<SearchEntry>, DirectoryError>> = futures::stream::iter(pending)
        .buffered(REREADS_IN_FLIGHT)
        .collect()
        .await;

    let mut changes = Vec::new();
    for (change, current) in reported.into_iter().zip(rereads) {
        if change.deleted {
            changes.push(DirectoryChange::Deleted {
                anchor: change.anchor,
            });
            continue;
        }
        // Gone since DirSync answered: the next read reports the delete.
        let Some(current) = current? else { continue };
        let classes = forest::values(&current, "objectClass");
        if is_container(classes) {
            if change.changed_attributes.contains("name") {
                // Renamed or moved: every user and group below has a new DN.
                changes.extend(reimport_subtree(connection, &current.dn, scope).await?);
            }
            continue;
        }
        let Some(object) = DirectoryObject::from_entry(&current, scope.also_read()) else {
            continue;
        };
        if !scope.contains(&object.dn) || object.is_system_object() {
            changes.push(DirectoryChange::OutOfScope {
                anchor: object.anchor,
                dn: object.dn,
            });
            continue;
        }
        let members = if object.kind != objects::ObjectKind::Group {
            MemberChanges::Unchanged
        } else if change.needs_all_members() {
            MemberChanges::Complete
        } else if change.added_members.is_empty() && change.removed_members.is_empty() {
            MemberChanges::Unchanged
        } else {
            MemberChanges::Delta {
                added: change.added_members,
                removed: change.removed_members,
            }
        };
        changes.push(DirectoryChange::InScope {
            object,
            changed_attributes: change.changed_attributes,
            members,
        });
    }
    Ok(ChangeBatch {
        changes,
        cookie,
        more_results,
    })
}

/// Reads every user and group in scope, one page at a time.
#[derive(Debug)]
pub struct FullImport<'a> {
    connection: &'a DirectoryConnection,
    scope: &'a SyncScope,
    bases: std::vec::IntoIter<Dn>,
    current: Option<PagedSearch>,
}

impl<'a> FullImport<'a> {
    pub fn new(connection: &'a DirectoryConnection, scope: &'a SyncScope) -> FullImport<'a> {
        FullImport {
            connection,
            scope,
            bases: scope.search_bases().into_iter(),
            current: None,
        }
    }

    /// The next page of objects in scope, or `None` when the import is complete. System objects
    /// and excluded OUs are left out.
    pub async fn next_page(&mut self) -> Result<Option<Vec<DirectoryObject>>, DirectoryError> {
        loop {
            if self.current.is_none() {
                let Some(base) = self.bases.next() else {
                    return Ok(None);
                };
                self.current = Some(PagedSearch::new(base));
            }
            let search = self.current.as_mut().expect("set above");
            match search.next_page(self.connection, self.scope).await? {
                None => self.current = None,
                Some(entries) => {
                    let page = objects_in_scope(self.connection, entries, self.scope).await?;
                    return Ok(Some(page));
                }
            }
        }
    }
}

/// A paged subtree search for users and groups under one base.
#[derive(Debug)]
struct PagedSearch {
    base: Dn,
    cookie: Vec<u8>,
    done: bool,
}

impl PagedSearch {
    fn new(base: Dn) -> PagedSearch {
        PagedSearch {
            base,
            cookie: Vec::new(),
            done: false,
        }
    }

    async fn next_page(
        &mut self,
        connection: &DirectoryConnection,
        scope: &SyncScope,
    ) -> Result<Option<Vec<SearchEntry>>, DirectoryError> {
        if self.done {
            return Ok(None);
        }
        let (entries, next) = connection
            .search_page(
                "read users and groups",
                self.base.as_str(),
                Scope::Subtree,
                USERS_AND_GROUPS_FILTER,
                &scope.attributes(),
                PAGE_SIZE,
                &self.cookie,
            )
            .await?;
        self.cookie = next;
        self.done = self.cookie.is_empty();
        Ok(Some(entries))
    }
}

async fn objects_in_scope(
    connection: &DirectoryConnection,
    entries: Vec<SearchEntry>,
    scope: &SyncScope,
) -> Result<Vec<DirectoryObject>, DirectoryError> {
    let mut page = Vec::with_capacity(entries.len());
    for mut entry in entries {
        complete_ranged_values(connection, &mut entry).await?;
        if let Some(object) = DirectoryObject::from_entry(&entry, scope.also_read())
            && scope.contains(&object.dn)
            && !object.is_system_object()
        {
            page.push(object);
        }
    }
    Ok(page)
}

/// After an OU or container is renamed or moved: every user and group below it, sorted against
/// the scope.
async fn reimport_subtree(
    connection: &DirectoryConnection,
    base: &str,
    scope: &SyncScope,
) -> Result<Vec<DirectoryChange>, DirectoryError> {
    let base = Dn::parse(base).map_err(|error| DirectoryError::InvalidDn {
        dn: base.to_owned(),
        reason: error.to_string(),
    })?;
    let mut search = PagedSearch::new(base);
    let mut changes = Vec::new();
    while let Some(entries) = search.next_page(connection, scope).await? {
        for mut entry in entries {
            complete_ranged_values(connection, &mut entry).await?;
            let Some(object) = DirectoryObject::from_entry(&entry, scope.also_read()) else {
                continue;
            };
            if scope.contains(&object.dn) && !object.is_system_object() {
                let members = if object.kind == objects::ObjectKind::Group {
                    MemberChanges::Complete
                } else {
                    MemberChanges::Unchanged
                };
                changes.push(DirectoryChange::InScope {
                    object,
                    changed_attributes: BTreeSet::from(["name".to_owned()]),
                    members,
                });
            } else {
                changes.push(DirectoryChange::OutOfScope {
                    anchor: object.anchor,
                    dn: object.dn,
                });
            }
        }
    }
    Ok(changes)
}

/// One search with the DirSync control; maps the server's refusals to what they mean.
async fn dirsync_search(
    connection: &DirectoryConnection,
    naming_context: &Dn,
    filter: &str,
    attributes: &[&str],
    cookie: &[u8],
) -> Result<(Vec<SearchEntry>, DirSyncCookie, bool), DirectoryError> {
    dirsync_search_with_flags(
        connection,
        naming_context,
        filter,
        attributes,
        cookie,
        DIRSYNC_INCREMENTAL_VALUES,
    )
    .await
}

/// One DirSync search: the entries, the cookie that follows them, and whether more remain.
pub(crate) async fn dirsync_search_with_flags(
    connection: &DirectoryConnection,
    naming_context: &Dn,
    filter: &str,
    attributes: &[&str],
    cookie: &[u8],
    flags: i64,
) -> Result<(Vec<SearchEntry>, DirSyncCookie, bool), DirectoryError> {
    let result = connection
        .search_with_controls(
            "read changes (DirSync)",
            naming_context.as_str(),
            Scope::Subtree,
            filter,
            attributes,
            vec![controls::dirsync_request(flags, cookie)],
        )
        .await;
    let (entries, response_controls) = match result {
        Ok(found) => found,
        Err(DirectoryError::Refused {
            rc: 50,
            server_message,
            ..
        }) => {
            return Err(DirectoryError::MissingReplicationRight {
                domain: naming_context.to_string(),
                account: connection.bound_as().unwrap_or("this account").to_owned(),
                server_message,
            });
        }
        Err(DirectoryError::Refused {
            rc,
            server_message,
            server,
            ..
        }) if !cookie.is_empty()
            && (rc == 12 || server_message.to_ascii_lowercase().contains("cookie")) =>
        {
            return Err(DirectoryError::CookieRejected {
                server,
                server_message,
            });
        }
        Err(other) => return Err(other),
    };
    let unexpected = |detail: String| DirectoryError::UnexpectedReply {
        server: connection.server().to_owned(),
        operation: "read changes (DirSync)".to_owned(),
        detail,
    };
    let value = response_controls
        .iter()
        .find(|control| control.ctype == controls::DIRSYNC_OID)
        .and_then(|control| control.val.as_deref())
        .ok_or_else(|| unexpected("the answer has no DirSync control".to_owned()))?;
    let response =
        controls::parse_dirsync_response(value).map_err(|error| unexpected(error.to_string()))?;
    Ok((
        entries,
        DirSyncCookie(response.cookie),
        response.more_results,
    ))
}

/// What one DirSync entry said, before the object is read again.
struct ReportedChange {
    anchor: Guid,
    deleted: bool,
    changed_attributes: BTreeSet<String>,
    added_members: Vec<Dn>,
    removed_members: Vec<Dn>,
}

impl ReportedChange {
    fn from(entry: &SearchEntry) -> Option<ReportedChange> {
        let anchor = objects::guid_value(entry, "objectGUID")?;
        let deleted = forest::values(entry, "isDeleted")
            .iter()
            .any(|value| value.eq_ignore_ascii_case("TRUE"));
        let mut changed_attributes = BTreeSet::new();
        let mut added_members = Vec::new();
        let mut removed_members = Vec::new();
        let names = entry.attrs.keys().chain(entry.bin_attrs.keys());
        for name in names {
            let (attribute, options) = name.split_once(';').unwrap_or((name, ""));
            if attribute.eq_ignore_ascii_case("objectGUID")
                || attribute.eq_ignore_ascii_case("instanceType")
            {
                continue;
            }
            changed_attributes.insert(canonical(attribute));
            if attribute.eq_ignore_ascii_case("member") {
                let values = entry.attrs.get(name).map_or(&[][..], Vec::as_slice);
                let parsed = values.iter().filter_map(|value| Dn::parse(value).ok());
                // Incremental values: range 1-1 holds added values, range 0-0 removed ones.
                match options.to_ascii_lowercase().as_str() {
                    "range=0-0" => removed_members.extend(parsed),
                    _ => added_members.extend(parsed),
                }
            }
        }
        Some(ReportedChange {
            anchor,
            deleted,
            changed_attributes,
            added_members,
            removed_members,
        })
    }

    /// New, renamed or moved objects come with all their members: the caller may never have
    /// seen them in scope.
    fn needs_all_members(&self) -> bool {
        self.changed_attributes.contains("name")
    }
}

fn canonical(attribute: &str) -> String {
    objects::canonical_name(attribute)
        .unwrap_or(attribute)
        .to_owned()
}

fn is_container(classes: &[String]) -> bool {
    classes.iter().any(|class| {
        class.eq_ignore_ascii_case("organizationalUnit") || class.eq_ignore_ascii_case("container")
    }) && objects::kind_of(classes).is_none()
}

/// Reads a changed object as it is now, by GUID (its DN may have changed since).
async fn reread(
    connection: &DirectoryConnection,
    change: &ReportedChange,
    scope: &SyncScope,
) -> Result<Option<SearchEntry>, DirectoryError> {
    if change.deleted {
        return Ok(None);
    }
    let attributes: Vec<&str> = scope
        .attributes()
        .into_iter()
        .filter(|name| change.needs_all_members() || *name != "member")
        .collect();
    let base = format!("<GUID={}>", change.anchor);
    match connection
        .search(
            "read a changed object",
            &base,
            Scope::Base,
            "(objectClass=*)",
            &attributes,
        )
        .await
    {
        Ok(mut entries) => match entries.pop() {
            Some(mut entry) => {
                complete_ranged_values(connection, &mut entry).await?;
                Ok(Some(entry))
            }
            None => Ok(None),
        },
        Err(DirectoryError::NoSuchObject { .. }) => Ok(None),
        Err(other) => Err(other),
    }
}

/// Windows returns large multi-valued attributes in ranges (`member;range=0-1499`); reads the
/// remaining ranges and files every value under the plain attribute name.
pub async fn complete_ranged_values(
    connection: &DirectoryConnection,
    entry: &mut SearchEntry,
) -> Result<(), DirectoryError> {
    let ranged: Vec<String> = entry
        .attrs
        .keys()
        .filter(|name| parse_range(name).is_some())
        .cloned()
        .collect();
    for name in ranged {
        let Some((attribute, _, mut end)) = parse_range(&name) else {
            continue;
        };
        let attribute = attribute.to_owned();
        let mut values = entry.attrs.remove(&name).unwrap_or_default();
        while let Some(last) = end {
            let request = format!("{attribute};range={}-*", last + 1);
            let next = connection
                .read_entry("read all values", &entry.dn, &[request.as_str()])
                .await?;
            let Some((next_name, next_values)) = next
                .attrs
                .into_iter()
                .find(|(name, _)| parse_range(name).is_some())
            else {
                break;
            };
            values.extend(next_values);
            end = parse_range(&next_name).and_then(|(_, _, end)| end);
        }
        entry.attrs.entry(attribute).or_default().extend(values);
    }
    Ok(())
}

/// `member;range=0-1499` → ("member", 0, Some(1499)); `member;range=1500-*` → (…, None).
fn parse_range(name: &str) -> Option<(&str, u64, Option<u64>)> {
    let (attribute, options) = name.split_once(';')?;
    let range = options
        .split(';')
        .find_map(|option| option.strip_prefix("range="))?;
    let (start, end) = range.split_once('-')?;
    let start = start.parse().ok()?;
    let end = if end == "*" {
        None
    } else {
        Some(end.parse().ok()?)
    };
    Some((attribute, start, end))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn ranges_are_parsed() {
        assert_eq!(
            parse_range("member;range=0-1499"),
            Some(("member", 0, Some(1499)))
        );
        assert_eq!(
            parse_range("member;range=1500-*"),
            Some(("member", 1500, None))
        );
        assert_eq!(parse_range("member"), None);
        assert_eq!(parse_range("member;range=x-1"), None);
    }

    #[test]
    fn incremental_member_values_become_a_delta() {
        let wire = [7u8; 16];
        let entry = SearchEntry {
            dn: "CN=Sales,OU=Groups,DC=x".to_owned(),
            attrs: HashMap::from([
                (
                    "member;range=1-1".to_owned(),
                    vec!["CN=New,DC=x".to_owned()],
                ),
                (
                    "member;range=0-0".to_owned(),
                    vec!["CN=Old,DC=x".to_owned(), "CN=Older,DC=x".to_owned()],
                ),
                ("instanceType".to_owned(), vec!["4".to_owned()]),
            ]),
            bin_attrs: HashMap::from([("objectGUID".to_owned(), vec![wire.to_vec()])]),
        };
        let change = ReportedChange::from(&entry).expect("has a GUID");
        assert!(!change.deleted);
        assert_eq!(change.added_members.len(), 1);
        assert_eq!(change.removed_members.len(), 2);
        assert_eq!(
            change.changed_attributes,
            BTreeSet::from(["member".to_owned()])
        );
        assert!(!change.needs_all_members());
    }

    #[test]
    fn a_tombstone_is_a_delete() {
        let entry = SearchEntry {
            dn: "CN=x\\0ADEL:1,CN=Deleted Objects,DC=x".to_owned(),
            attrs: HashMap::from([("isDeleted".to_owned(), vec!["TRUE".to_owned()])]),
            bin_attrs: HashMap::from([("objectGUID".to_owned(), vec![vec![1u8; 16]])]),
        };
        assert!(ReportedChange::from(&entry).expect("has a GUID").deleted);
    }
}
