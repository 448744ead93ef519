//! Drift: properties dirsync manages that were changed in the cloud behind its back (README,
//! "Drift"). dirsync's cloud objects are ordinary cloud objects, which anyone with the rights can
//! edit in the portal; AD stays the source of authority, so each full cycle (and once a day) the
//! cloud's values are compared with what dirsync last wrote. Pure: the cycle reads the cloud.

use std::collections::HashMap;

use serde_json::Value;

use super::attribute_flow::is_empty_value as empty;
use crate::cloud::CloudObject;
use crate::guid::Guid;
use crate::store::sync_state::Link;

/// How a run's drift warnings begin (the dashboard lists them apart).
pub const WARNING_PREFIX: &str = "drift:";

/// One property of one object that the cloud no longer holds as dirsync wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct Drift {
    pub anchor: Guid,
    pub property: String,
    /// What dirsync last wrote.
    pub wrote: Value,
    /// What the cloud holds now.
    pub found: Value,
}

/// The drift of every linked object whose cloud object was read (`cloud`, by id). Only the
/// properties dirsync wrote and read back (`read`) are compared.
pub fn find_drift(
    links: &HashMap<Guid, Link>,
    cloud: &HashMap<&str, &CloudObject>,
    read: &[&str],
) -> Vec<Drift> {
    let mut drift = Vec::new();
    for link in links.values() {
        let Some(object) = cloud.get(link.cloud_id.as_str()) else {
            continue;
        };
        for (property, wrote) in &link.exported {
            if !read.contains(&property.as_str()) {
                continue;
            }
            let found = object.properties.get(property).unwrap_or(&Value::Null);
            if !same(property, wrote, found) {
                drift.push(Drift {
                    anchor: link.anchor,
                    property: property.clone(),
                    wrote: wrote.clone(),
                    found: found.clone(),
                });
            }
        }
    }
    drift.sort_by(|a, b| (a.anchor, &a.property).cmp(&(b.anchor, &b.property)));
    drift
}

/// A group whose members in the cloud are not those dirsync last wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDrift {
    pub anchor: Guid,
    /// Members dirsync wrote that the cloud group no longer has.
    pub missing: Vec<Guid>,
    /// Objects dirsync manages that were added to the group in the cloud.
    pub added: Vec<Guid>,
    /// Cloud objects dirsync does not manage that were added to the group: reported, never
    /// removed (dirsync changes only what it made).
    pub unmanaged: Vec<String>,
}

impl MemberDrift {
    /// The members the cloud group holds now, among those dirsync manages.
    pub fn found(
        &self,
        wrote: &std::collections::BTreeSet<Guid>,
    ) -> std::collections::BTreeSet<Guid> {
        wrote
            .iter()
            .filter(|member| !self.missing.contains(member))
            .chain(&self.added)
            .copied()
            .collect()
    }
}

/// The member drift of the group `link`, whose cloud members are `cloud_members` (ids);
/// `anchor_of` maps the cloud ids of the objects dirsync manages to their anchors.
pub fn find_member_drift(
    link: &Link,
    cloud_members: &[String],
    anchor_of: &HashMap<&str, Guid>,
) -> Option<MemberDrift> {
    let mut found = std::collections::BTreeSet::new();
    let mut unmanaged = Vec::new();
    for id in cloud_members {
        match anchor_of.get(id.as_str()) {
            Some(anchor) => {
                found.insert(*anchor);
            }
            None => unmanaged.push(id.clone()),
        }
    }
    let missing: Vec<Guid> = link.members.difference(&found).copied().collect();
    let added: Vec<Guid> = found.difference(&link.members).copied().collect();
    let drifted = !missing.is_empty() || !added.is_empty() || !unmanaged.is_empty();
    drifted.then_some(MemberDrift {
        anchor: link.anchor,
        missing,
        added,
        unmanaged,
    })
}

/// Graph compares addresses and names without case, and answers an unset property as null, an
/// empty string or an empty list alike.
fn same(property: &str, wrote: &Value, found: &Value) -> bool {
    if empty(wrote) && empty(found) {
        return true;
    }
    match (wrote, found) {
        // A complex property (onPremisesExtensionAttributes, employeeOrgData): field by field,
        // a field Graph returns and dirsync did not write counting as empty.
        (Value::Object(wrote), Value::Object(found)) => {
            wrote.keys().chain(found.keys()).all(|field| {
                same(
                    field,
                    wrote.get(field).unwrap_or(&Value::Null),
                    found.get(field).unwrap_or(&Value::Null),
                )
            })
        }
        (Value::String(a), Value::String(b))
            if matches!(property, "mail" | "userPrincipalName" | "mailNickname") =>
        {
            a.eq_ignore_ascii_case(b)
        }
        _ => wrote == found,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;
    use crate::directory::Dn;
    use crate::object_kind::ObjectKind;

    fn link(n: u8, exported: Value) -> Link {
        Link {
            anchor: Guid([n; 16]),
            kind: ObjectKind::User,
            dn: Dn::parse(&format!("CN=u{n},DC=example,DC=com")).unwrap_or_else(|_| unreachable!()),
            cloud_id: format!("c{n}"),
            exported: match exported {
                Value::Object(map) => map,
                _ => serde_json::Map::new(),
            },
            members: BTreeSet::new(),
            manager: None,
            disabled_at: None,
        }
    }

    fn cloud(n: u8, properties: Value) -> CloudObject {
        CloudObject {
            id: format!("c{n}"),
            kind: ObjectKind::User,
            properties: match properties {
                Value::Object(map) => map,
                _ => serde_json::Map::new(),
            },
        }
    }

    #[test]
    fn only_what_dirsync_wrote_and_the_cloud_changed_is_drift() {
        let links = HashMap::from([
            (
                Guid([1; 16]),
                link(
                    1,
                    json!({"jobTitle": "Engineer", "mail": "Ann@Contoso.test", "department": null, "businessPhones": []}),
                ),
            ),
            (Guid([2; 16]), link(2, json!({"jobTitle": "Engineer"}))),
            (Guid([3; 16]), link(3, json!({"jobTitle": "Engineer"}))),
        ]);
        let objects = [
            // Changed title; same mail in another case; unset department and phones.
            cloud(
                1,
                json!({"jobTitle": "CEO", "mail": "ann@contoso.test", "department": "", "businessPhones": null, "city": "Paris"}),
            ),
            cloud(2, json!({"jobTitle": "Engineer"})),
            // c3 was not read: nothing is said of it.
        ];
        let by_id: HashMap<&str, &CloudObject> = objects
            .iter()
            .map(|object| (object.id.as_str(), object))
            .collect();
        let read = ["jobTitle", "mail", "department", "businessPhones", "city"];
        let drift = find_drift(&links, &by_id, &read);
        assert_eq!(
            drift,
            [Drift {
                anchor: Guid([1; 16]),
                property: "jobTitle".to_owned(),
                wrote: json!("Engineer"),
                found: json!("CEO"),
            }]
        );
        // A property dirsync does not read back is never compared.
        assert!(find_drift(&links, &by_id, &["mail"]).is_empty());
    }

    #[test]
    fn member_drift_tells_missing_added_and_unmanaged_members_apart() {
        let mut team = link(9, json!({}));
        team.members = [Guid([1; 16]), Guid([2; 16])].into_iter().collect();
        let anchor_of: HashMap<&str, Guid> = HashMap::from([
            ("c1", Guid([1; 16])),
            ("c2", Guid([2; 16])),
            ("c3", Guid([3; 16])),
        ]);
        let same = ["c2".to_owned(), "c1".to_owned()];
        assert_eq!(find_member_drift(&team, &same, &anchor_of), None);
        let changed = ["c1".to_owned(), "c3".to_owned(), "cloud-only".to_owned()];
        let drift = find_member_drift(&team, &changed, &anchor_of).expect("drift");
        assert_eq!(drift.missing, [Guid([2; 16])]);
        assert_eq!(drift.added, [Guid([3; 16])]);
        assert_eq!(drift.unmanaged, ["cloud-only"]);
        assert_eq!(
            drift.found(&team.members),
            [Guid([1; 16]), Guid([3; 16])].into_iter().collect()
        );
    }
}
