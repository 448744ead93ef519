//! Run-record changes built from the plan's operations, the same way for what a run would write
//! (a preview, staging mode: step synchronization) and for what export wrote (step
//! cloud-export): a create lists every property, a join starts with how it joined, an update
//! lists its changes, a delete its last exported values.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::plan::{AttributeChange, JoinKind, Operation};
use crate::directory::objects::DirectoryObject;
use crate::guid::Guid;
use crate::object_kind::ObjectKind;
use crate::store::runs::{AttributeValues, ObjectChangeRecord};
use crate::store::sync_state::Link;
use crate::store::vocabulary::{ChangeKind, StepKind};

pub fn join_words(how: JoinKind) -> &'static str {
    match how {
        JoinKind::HardMatch => "hard match on onPremisesImmutableId",
        JoinKind::SoftMatchSmtp => "soft match on the primary SMTP address",
        JoinKind::SoftMatchUpn => "soft match on userPrincipalName",
        JoinKind::OwnCreate => {
            "the group dirsync created (its create intent, its owner and its mailNickname)"
        }
        JoinKind::ConfirmedGroupMatch => {
            "the cloud group the administrator confirmed as this group's"
        }
    }
}

pub fn added(properties: &Map<String, Value>) -> Vec<AttributeValues> {
    properties
        .iter()
        .map(|(name, value)| AttributeValues {
            name: name.clone(),
            old: Value::Null,
            new: value.clone(),
        })
        .collect()
}

pub fn removed(properties: &Map<String, Value>) -> Vec<AttributeValues> {
    properties
        .iter()
        .map(|(name, value)| AttributeValues {
            name: name.clone(),
            old: value.clone(),
            new: Value::Null,
        })
        .collect()
}

/// An update's attributes: each property's old and new value.
pub fn changed(changes: &[AttributeChange]) -> Vec<AttributeValues> {
    changes
        .iter()
        .map(|change| AttributeValues {
            name: change.property.clone(),
            old: change.old.clone(),
            new: change.new.clone(),
        })
        .collect()
}

/// A join's attributes: how it joined, then the properties it changed.
pub fn joined(how: JoinKind, changes: &[AttributeChange]) -> Vec<AttributeValues> {
    let mut attributes = vec![AttributeValues {
        name: "(joined)".to_owned(),
        old: Value::Null,
        new: json!(join_words(how)),
    }];
    attributes.extend(changed(changes));
    attributes
}

/// Reference changes as attributes, the references named by `dn_of` (their DNs): members added
/// and removed, the manager from old to new.
pub fn references(
    added: &[Guid],
    removed: &[Guid],
    manager: Option<(Option<Guid>, Option<Guid>)>,
    dn_of: &dyn Fn(&Guid) -> Value,
) -> Vec<AttributeValues> {
    let mut attributes = Vec::new();
    if !added.is_empty() {
        attributes.push(AttributeValues {
            name: "members added".to_owned(),
            old: Value::Null,
            new: Value::Array(added.iter().map(dn_of).collect()),
        });
    }
    if !removed.is_empty() {
        attributes.push(AttributeValues {
            name: "members removed".to_owned(),
            old: Value::Array(removed.iter().map(dn_of).collect()),
            new: Value::Null,
        });
    }
    if let Some((old, new)) = manager {
        attributes.push(AttributeValues {
            name: "manager".to_owned(),
            old: old.as_ref().map_or(Value::Null, dn_of),
            new: new.as_ref().map_or(Value::Null, dn_of),
        });
    }
    attributes
}

/// The plan as run-record changes (step synchronization): what a preview or a staging-mode run
/// would have exported.
pub fn planned_changes(
    operations: &[Operation],
    objects: &[DirectoryObject],
    links: &HashMap<Guid, Link>,
) -> Vec<ObjectChangeRecord> {
    let by_anchor: HashMap<Guid, &DirectoryObject> = objects
        .iter()
        .map(|object| (object.anchor, object))
        .collect();
    let dn_of = |anchor: &Guid| -> Value {
        links
            .get(anchor)
            .map(|link| link.dn.to_string())
            .or_else(|| by_anchor.get(anchor).map(|object| object.dn.to_string()))
            .map_or(Value::Null, Value::String)
    };
    let record = |anchor: &Guid,
                  kind: ObjectKind,
                  dn: String,
                  cloud_id: Option<String>,
                  change_kind,
                  attributes| {
        ObjectChangeRecord {
            step: StepKind::Synchronization,
            dn,
            anchor: anchor.to_string(),
            object_type: kind,
            cloud_id,
            change_kind,
            attributes,
        }
    };
    operations
        .iter()
        .map(|operation| match operation {
            Operation::Create {
                anchor,
                kind,
                dn,
                properties,
            } => record(
                anchor,
                *kind,
                dn.to_string(),
                None,
                ChangeKind::Add,
                added(properties),
            ),
            Operation::Join {
                anchor,
                kind,
                dn,
                cloud_id,
                how,
                changes,
            } => record(
                anchor,
                *kind,
                dn.to_string(),
                Some(cloud_id.clone()),
                ChangeKind::Update,
                joined(*how, changes),
            ),
            Operation::Update {
                anchor,
                kind,
                dn,
                cloud_id,
                changes,
            } => record(
                anchor,
                *kind,
                dn.to_string(),
                Some(cloud_id.clone()),
                ChangeKind::Update,
                changed(changes),
            ),
            Operation::Members { group, add, remove } => {
                let attributes = references(add, remove, None, &dn_of);
                let dn = dn_of(group).as_str().unwrap_or_default().to_owned();
                record(
                    group,
                    ObjectKind::Group,
                    dn,
                    links.get(group).map(|l| l.cloud_id.clone()),
                    ChangeKind::Update,
                    attributes,
                )
            }
            Operation::Manager { user, manager } => {
                let old = links.get(user).and_then(|link| link.manager);
                let dn = dn_of(user).as_str().unwrap_or_default().to_owned();
                record(
                    user,
                    by_anchor
                        .get(user)
                        .map_or(ObjectKind::User, |object| object.kind),
                    dn,
                    links.get(user).map(|l| l.cloud_id.clone()),
                    ChangeKind::Update,
                    references(&[], &[], Some((old, *manager)), &dn_of),
                )
            }
            Operation::Delete {
                anchor,
                kind,
                dn,
                cloud_id,
            } => record(
                anchor,
                *kind,
                dn.to_string(),
                Some(cloud_id.clone()),
                ChangeKind::Delete,
                links
                    .get(anchor)
                    .map(|link| removed(&link.exported))
                    .unwrap_or_default(),
            ),
            Operation::Disable {
                anchor,
                dn,
                cloud_id,
            } => record(
                anchor,
                ObjectKind::User,
                dn.to_string(),
                Some(cloud_id.clone()),
                ChangeKind::Update,
                disabled(),
            ),
        })
        .collect()
}

/// A user disabled when it left the scope: sign-in blocked, sessions revoked.
pub fn disabled() -> Vec<AttributeValues> {
    vec![
        AttributeValues {
            name: "accountEnabled".to_owned(),
            old: json!(true),
            new: json!(false),
        },
        AttributeValues {
            name: "(left the scope)".to_owned(),
            old: Value::Null,
            new: json!(
                "disabled and its sign-in sessions revoked; deleted when its days are up unless it comes back"
            ),
        },
    ]
}
