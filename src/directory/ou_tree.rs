//! The OU tree, read lazily: one request lists one container's child containers. The wizard's picker
//! asks for a level when a node is expanded; `dirsync ous` walks it level by level.

use std::cmp::Ordering;

use futures::stream::{self, StreamExt, TryStreamExt};
use ldap3::{Scope, SearchEntry};
use serde::Serialize;

use super::connection::DirectoryConnection;
use super::error::DirectoryError;
use super::forest::{first_value, values};

/// Object classes that can hold users and groups and so can be in the sync scope. Left out are the
/// system's own hidden containers (System, LostAndFound, …): those that are both "advanced view
/// only" and critical system objects. Hidden alone is not enough, because every container an
/// administrator creates is hidden by default (the container class's defaultHidingValue) and may
/// well hold users.
pub const CONTAINER_FILTER: &str = "(&(|(objectClass=organizationalUnit)(objectClass=container)(objectClass=builtinDomain))(!(&(showInAdvancedViewOnly=TRUE)(isCriticalSystemObject=TRUE))))";

const ENTRY_ATTRIBUTES: [&str; 2] = ["name", "objectClass"];

/// How many one-level requests the full walk keeps in flight on the connection.
const CONCURRENT_LEVEL_REQUESTS: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ContainerKind {
    Domain,
    OrganizationalUnit,
    Container,
    BuiltinDomain,
    /// The base of a walk may be any object; this is its most specific object class.
    #[serde(untagged)]
    Other(String),
}

impl ContainerKind {
    /// Classifies by object class, most specific first.
    pub fn from_object_classes(classes: &[String]) -> ContainerKind {
        let has = |wanted: &str| classes.iter().any(|c| c.eq_ignore_ascii_case(wanted));
        if has("domainDNS") {
            ContainerKind::Domain
        } else if has("organizationalUnit") {
            ContainerKind::OrganizationalUnit
        } else if has("builtinDomain") {
            ContainerKind::BuiltinDomain
        } else if has("container") {
            ContainerKind::Container
        } else {
            ContainerKind::Other(classes.last().cloned().unwrap_or_default())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ContainerKind::Domain => "domain",
            ContainerKind::OrganizationalUnit => "organizationalUnit",
            ContainerKind::Container => "container",
            ContainerKind::BuiltinDomain => "builtinDomain",
            ContainerKind::Other(class) => class,
        }
    }
}

/// One container, without its children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OuEntry {
    pub dn: String,
    pub name: String,
    pub kind: ContainerKind,
}

impl OuEntry {
    fn from_search_entry(entry: &SearchEntry) -> OuEntry {
        let name = first_value(entry, "name").unwrap_or_else(|| {
            super::dn::Dn::parse(&entry.dn)
                .ok()
                .and_then(|dn| dn.rdn_value().map(str::to_owned))
                .unwrap_or_else(|| entry.dn.clone())
        });
        OuEntry {
            dn: entry.dn.clone(),
            name,
            kind: ContainerKind::from_object_classes(values(entry, "objectClass")),
        }
    }
}

/// A container with the children that were read (empty past the depth limit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OuNode {
    pub dn: String,
    pub name: String,
    pub kind: ContainerKind,
    pub children: Vec<OuNode>,
}

/// Children are listed by name, case-insensitively, as an administrator reads them.
pub fn compare_names(a: &str, b: &str) -> Ordering {
    a.to_lowercase()
        .cmp(&b.to_lowercase())
        .then_with(|| a.cmp(b))
}

/// Reads the one entry at `dn` (the base of a tree).
pub async fn read_container(
    connection: &DirectoryConnection,
    dn: &str,
) -> Result<OuEntry, DirectoryError> {
    let entry = connection
        .read_entry("read the base of the tree", dn, &ENTRY_ATTRIBUTES)
        .await?;
    Ok(OuEntry::from_search_entry(&entry))
}

/// Lists the direct child containers of `parent_dn`, sorted by name. One LDAP request.
pub async fn read_children(
    connection: &DirectoryConnection,
    parent_dn: &str,
) -> Result<Vec<OuEntry>, DirectoryError> {
    let entries = connection
        .search_all(
            "list child containers",
            parent_dn,
            Scope::OneLevel,
            CONTAINER_FILTER,
            &ENTRY_ATTRIBUTES,
        )
        .await?;
    let mut children: Vec<OuEntry> = entries.iter().map(OuEntry::from_search_entry).collect();
    children.sort_by(|a, b| compare_names(&a.name, &b.name));
    Ok(children)
}

/// How many users and groups sit directly in one container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectCounts {
    pub users: usize,
    pub groups: usize,
}

/// Counts the users and groups directly in `dn` (one level: cheap, where a subtree count of a
/// large OU is not). The wizard shows it beside an expanded OU.
pub async fn count_users_and_groups(
    connection: &DirectoryConnection,
    dn: &str,
) -> Result<DirectCounts, DirectoryError> {
    let entries = connection
        .search_all(
            "count users and groups",
            dn,
            Scope::OneLevel,
            super::import::USERS_AND_GROUPS_FILTER,
            &["objectClass"],
        )
        .await?;
    let mut counts = DirectCounts::default();
    for entry in &entries {
        if values(entry, "objectClass")
            .iter()
            .any(|class| class.eq_ignore_ascii_case("group"))
        {
            counts.groups += 1;
        } else {
            counts.users += 1;
        }
    }
    Ok(counts)
}

/// Finds the containers under `base_dn` whose name contains `text` (case-insensitively, as
/// LDAP compares names), sorted by name, at most `limit` of them. One subtree request: the wizard's
/// filter box finds an OU without expanding the tree down to it.
pub async fn find_containers(
    connection: &DirectoryConnection,
    base_dn: &str,
    text: &str,
    limit: usize,
) -> Result<Vec<OuEntry>, DirectoryError> {
    let filter = format!(
        "(&{CONTAINER_FILTER}(name=*{}*))",
        super::dn::escape_filter_value(text)
    );
    let entries = connection
        .search_all(
            "find containers by name",
            base_dn,
            Scope::Subtree,
            &filter,
            &ENTRY_ATTRIBUTES,
        )
        .await?;
    let mut found: Vec<OuEntry> = entries.iter().map(OuEntry::from_search_entry).collect();
    found.sort_by(|a, b| compare_names(&a.name, &b.name).then_with(|| a.dn.cmp(&b.dn)));
    found.truncate(limit);
    Ok(found)
}

/// Reads the tree under `base_dn`. `max_depth` counts levels below the base: `Some(0)` is the base
/// alone, `Some(1)` the base and its children, `None` everything.
pub async fn read_tree(
    connection: &DirectoryConnection,
    base_dn: &str,
    max_depth: Option<u32>,
) -> Result<OuNode, DirectoryError> {
    let base = read_container(connection, base_dn).await?;
    // Nodes are kept flat while reading, each with its parent's index, then assembled.
    let mut flat: Vec<(Option<usize>, OuEntry)> = vec![(None, base)];
    let mut level: Vec<usize> = vec![0];
    let mut depth = 0;
    while !level.is_empty() && max_depth.is_none_or(|max| depth < max) {
        let parents: Vec<(usize, String)> = level
            .iter()
            .map(|&index| (index, flat[index].1.dn.clone()))
            .collect();
        // Collected first so that no closure stays in the stream (which would keep the caller's
        // future from being `Send`).
        let reads: Vec<_> = parents
            .into_iter()
            .map(|(index, dn)| async move {
                read_children(connection, &dn)
                    .await
                    .map(|children| (index, children))
            })
            .collect();
        let children: Vec<(usize, Vec<OuEntry>)> = stream::iter(reads)
            .buffered(CONCURRENT_LEVEL_REQUESTS)
            .try_collect()
            .await?;
        level.clear();
        for (parent, entries) in children {
            for entry in entries {
                level.push(flat.len());
                flat.push((Some(parent), entry));
            }
        }
        depth += 1;
    }
    Ok(assemble(flat))
}

/// Builds the nested tree from (parent index, entry) pairs in which parents come before children
/// and siblings are already in order.
fn assemble(flat: Vec<(Option<usize>, OuEntry)>) -> OuNode {
    let mut nodes: Vec<Option<OuNode>> = Vec::with_capacity(flat.len());
    let mut parents = Vec::with_capacity(flat.len());
    for (parent, entry) in flat {
        parents.push(parent);
        nodes.push(Some(OuNode {
            dn: entry.dn,
            name: entry.name,
            kind: entry.kind,
            children: Vec::new(),
        }));
    }
    // Children always have larger indices than their parents: attach from the end, then reverse
    // each child list to restore order.
    for index in (1..nodes.len()).rev() {
        let node = nodes[index].take().expect("each node is attached once");
        let parent = parents[index].expect("only the base has no parent");
        nodes[parent]
            .as_mut()
            .expect("parents are attached after their children")
            .children
            .push(node);
    }
    let mut root = nodes[0].take().expect("the base is present");
    reverse_children(&mut root);
    root
}

fn reverse_children(node: &mut OuNode) {
    node.children.reverse();
    for child in &mut node.children {
        reverse_children(child);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(dn: &str, name: &str) -> OuEntry {
        OuEntry {
            dn: dn.to_owned(),
            name: name.to_owned(),
            kind: ContainerKind::OrganizationalUnit,
        }
    }

    #[test]
    fn kinds_come_from_the_most_specific_class() {
        let classes = |list: &[&str]| list.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            ContainerKind::from_object_classes(&classes(&["top", "domain", "domainDNS"])),
            ContainerKind::Domain
        );
        assert_eq!(
            ContainerKind::from_object_classes(&classes(&["top", "organizationalUnit"])),
            ContainerKind::OrganizationalUnit
        );
        assert_eq!(
            ContainerKind::from_object_classes(&classes(&["top", "builtinDomain"])),
            ContainerKind::BuiltinDomain
        );
        assert_eq!(
            ContainerKind::from_object_classes(&classes(&["top", "person", "user"])),
            ContainerKind::Other("user".to_owned())
        );
        let json = serde_json::to_string(&ContainerKind::OrganizationalUnit).expect("json");
        assert_eq!(json, "\"organizationalUnit\"");
        let json = serde_json::to_string(&ContainerKind::Other("user".into())).expect("json");
        assert_eq!(json, "\"user\"");
    }

    #[test]
    fn names_sort_case_insensitively() {
        let mut names = vec!["sales", "IT", "Engineering", "apps"];
        names.sort_by(|a, b| compare_names(a, b));
        assert_eq!(names, ["apps", "Engineering", "IT", "sales"]);
    }

    #[test]
    fn assembly_keeps_order_and_nesting() {
        let flat = vec![
            (None, entry("DC=x", "x")),
            (Some(0), entry("OU=A,DC=x", "A")),
            (Some(0), entry("OU=B,DC=x", "B")),
            (Some(1), entry("OU=A1,OU=A,DC=x", "A1")),
            (Some(1), entry("OU=A2,OU=A,DC=x", "A2")),
            (Some(2), entry("OU=B1,OU=B,DC=x", "B1")),
            (Some(3), entry("OU=Deep,OU=A1,OU=A,DC=x", "Deep")),
        ];
        let root = assemble(flat);
        let names = |node: &OuNode| {
            node.children
                .iter()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&root), ["A", "B"]);
        assert_eq!(names(&root.children[0]), ["A1", "A2"]);
        assert_eq!(names(&root.children[1]), ["B1"]);
        assert_eq!(names(&root.children[0].children[0]), ["Deep"]);
    }
}
