//! What the directory import records about each object it read, so the dashboard's import
//! counters list exactly their objects: adds (no values: the export records what it sent),
//! updates and renames with the AD attributes that changed, and deletes. Pure.

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use crate::directory::objects::DirectoryObject;
use crate::store::runs::{AttributeValues, ObjectChangeRecord};
use crate::store::vocabulary::{ChangeKind, StepKind};

/// A multi-valued attribute with more values than this on either side (a large group's members)
/// is recorded by the values removed and added, not whole.
const WHOLE_VALUES_MAX: usize = 100;

/// The change `object` (just read) makes to `stored` (what the store held), if any, and how it
/// counts.
pub fn import_change(
    stored: Option<&DirectoryObject>,
    object: &DirectoryObject,
) -> Option<ObjectChangeRecord> {
    let (change_kind, attributes) = match stored {
        None => (ChangeKind::Add, Vec::new()),
        Some(stored) if stored == object => return None,
        Some(stored) => {
            let mut attributes = Vec::new();
            let moved = stored.dn != object.dn;
            if moved {
                attributes.push(AttributeValues {
                    name: "distinguishedName".to_owned(),
                    old: Value::String(stored.dn.to_string()),
                    new: Value::String(object.dn.to_string()),
                });
            }
            attributes.extend(changed_attributes(stored, object));
            let kind = if moved {
                ChangeKind::Rename
            } else {
                ChangeKind::Update
            };
            (kind, attributes)
        }
    };
    Some(ObjectChangeRecord {
        step: StepKind::DirectoryImport,
        dn: object.dn.to_string(),
        anchor: object.anchor.to_string(),
        object_type: object.kind,
        cloud_id: None,
        change_kind,
        attributes,
    })
}

/// An object deleted in AD or moved out of scope.
pub fn import_delete(stored: &DirectoryObject) -> ObjectChangeRecord {
    ObjectChangeRecord {
        step: StepKind::DirectoryImport,
        dn: stored.dn.to_string(),
        anchor: stored.anchor.to_string(),
        object_type: stored.kind,
        cloud_id: None,
        change_kind: ChangeKind::Delete,
        attributes: Vec::new(),
    }
}

fn changed_attributes(stored: &DirectoryObject, object: &DirectoryObject) -> Vec<AttributeValues> {
    let names: BTreeSet<&String> = stored
        .attributes
        .keys()
        .chain(object.attributes.keys())
        .collect();
    names
        .into_iter()
        .filter_map(|name| {
            let old = stored.attributes.get(name).map_or(&[][..], Vec::as_slice);
            let new = object.attributes.get(name).map_or(&[][..], Vec::as_slice);
            if old == new {
                return None;
            }
            if old.len().max(new.len()) > WHOLE_VALUES_MAX {
                let old_set: HashSet<&String> = old.iter().collect();
                let new_set: HashSet<&String> = new.iter().collect();
                let removed: Vec<&String> = old
                    .iter()
                    .filter(|value| !new_set.contains(value))
                    .collect();
                let added: Vec<&String> = new
                    .iter()
                    .filter(|value| !old_set.contains(value))
                    .collect();
                return Some(AttributeValues {
                    name: format!("{name} (values removed, added)"),
                    old: serde_json::json!(removed),
                    new: serde_json::json!(added),
                });
            }
            Some(AttributeValues {
                name: name.clone(),
                old: values(old),
                new: values(new),
            })
        })
        .collect()
}

fn values(values: &[String]) -> Value {
    match values {
        [] => Value::Null,
        [one] => Value::String(one.clone()),
        many => serde_json::json!(many),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::directory::Dn;
    use crate::directory::objects::ObjectKind;
    use crate::guid::Guid;

    fn user(dn: &str, title: &str) -> DirectoryObject {
        DirectoryObject {
            anchor: Guid([7; 16]),
            dn: Dn::parse(dn).expect("dn"),
            kind: ObjectKind::User,
            attributes: BTreeMap::from([
                ("title".to_owned(), vec![title.to_owned()]),
                ("sAMAccountName".to_owned(), vec!["ada".to_owned()]),
            ]),
            object_sid: None,
            problems: Vec::new(),
        }
    }

    #[test]
    fn an_import_records_adds_updates_renames_and_deletes_with_what_changed() {
        let stored = user("CN=Ada,OU=Sales,DC=x", "Buyer");
        let add = import_change(None, &stored).expect("an add");
        assert_eq!(add.change_kind, ChangeKind::Add);
        assert!(add.attributes.is_empty());
        assert!(import_change(Some(&stored), &stored).is_none(), "unchanged");

        let promoted = user("CN=Ada,OU=Sales,DC=x", "Head buyer");
        let update = import_change(Some(&stored), &promoted).expect("an update");
        assert_eq!(update.change_kind, ChangeKind::Update);
        assert_eq!(
            update.attributes,
            [AttributeValues {
                name: "title".to_owned(),
                old: json!("Buyer"),
                new: json!("Head buyer"),
            }]
        );

        let moved = user("CN=Ada,OU=EMEA,OU=Sales,DC=x", "Buyer");
        let rename = import_change(Some(&stored), &moved).expect("a rename");
        assert_eq!(rename.change_kind, ChangeKind::Rename);
        assert_eq!(rename.attributes[0].name, "distinguishedName");
        assert_eq!(
            rename.attributes[0].new,
            json!("CN=Ada,OU=EMEA,OU=Sales,DC=x")
        );

        assert_eq!(import_delete(&stored).change_kind, ChangeKind::Delete);
    }

    #[test]
    fn a_large_group_records_the_members_removed_and_added() {
        let members = |range: std::ops::Range<usize>| -> Vec<String> {
            range.map(|n| format!("CN=u{n},DC=x")).collect()
        };
        let mut stored = user("CN=G,DC=x", "");
        stored.kind = ObjectKind::Group;
        stored
            .attributes
            .insert("member".to_owned(), members(0..150));
        let mut changed = stored.clone();
        changed
            .attributes
            .insert("member".to_owned(), members(1..151));
        let update = import_change(Some(&stored), &changed).expect("an update");
        assert_eq!(update.attributes[0].old, json!(["CN=u0,DC=x"]));
        assert_eq!(update.attributes[0].new, json!(["CN=u150,DC=x"]));
    }
}
