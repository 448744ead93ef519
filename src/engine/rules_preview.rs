//! What a changed rule set would do (README, "Sync rules"), before it is saved. Pure: every
//! object in the OU scope, read once, decided under the rules in use and under the new ones;
//! what enters and leaves the scope, and which properties change for what stays.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use super::attribute_flow::{TenantDomains, cloud_shape, is_empty_value};
use super::rule_scope::{RuleSets, decide_object};
use super::validation::Severity;
use crate::directory::objects::{DirectoryObject, ObjectKind};
use crate::guid::Guid;
use crate::rules::SyncRules;

/// How many objects each list keeps in full (the counts are always whole).
pub const LISTED: usize = 200;

/// One side of the comparison: the rules and what the domain controller answered for them.
#[derive(Debug, Clone, Copy)]
pub struct RuleSide<'a> {
    pub rules: &'a SyncRules,
    pub sets: &'a RuleSets,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RulesPreview {
    /// Users and groups read in the OU scope.
    pub objects_read: usize,
    /// In scope under the rules in use, and under the new ones.
    pub in_scope_now: usize,
    pub in_scope_after: usize,
    /// Objects the new rules take in (created or joined in the cloud), the first [`LISTED`].
    pub entering: usize,
    pub entering_objects: Vec<PreviewObject>,
    /// Objects dirsync manages that the new rules leave out: their cloud objects are removed
    /// (deleted, or disabled first with disable-before-delete), the first [`LISTED`].
    pub leaving: usize,
    pub leaving_objects: Vec<PreviewObject>,
    /// Objects the new rules leave out that dirsync never exported: nothing to remove.
    pub leaving_unexported: usize,
    /// For objects in scope both before and after: how many change, per Graph property.
    pub updates: BTreeMap<String, usize>,
    /// The first [`LISTED`] property changes, with the value before and after.
    pub update_examples: Vec<PreviewUpdate>,
    /// Objects the new mappings cannot make a value for (they would wait, with an error).
    pub errors: usize,
    pub error_examples: Vec<PreviewError>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PreviewObject {
    pub dn: String,
    pub kind: ObjectKind,
}

#[derive(Debug, Clone, Serialize)]
pub struct PreviewUpdate {
    pub dn: String,
    pub property: String,
    pub before: Value,
    pub after: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct PreviewError {
    pub dn: String,
    pub property: String,
    pub problem: String,
}

/// Compares `now` and `after` over `objects` (system objects already left out). `exported`:
/// the anchors dirsync has a cloud object for.
pub fn preview(
    objects: &[DirectoryObject],
    now: RuleSide<'_>,
    after: RuleSide<'_>,
    domains: &TenantDomains,
    exported: &HashSet<Guid>,
) -> RulesPreview {
    let mut preview = RulesPreview {
        objects_read: objects.len(),
        ..RulesPreview::default()
    };
    let listed = |object: &DirectoryObject| PreviewObject {
        dn: object.dn.to_string(),
        kind: object.kind,
    };
    for object in objects {
        let in_now = decide_object(now.rules, now.sets, object).in_scope;
        let in_after = decide_object(after.rules, after.sets, object).in_scope;
        preview.in_scope_now += usize::from(in_now);
        preview.in_scope_after += usize::from(in_after);
        match (in_now, in_after) {
            (false, true) => {
                preview.entering += 1;
                if preview.entering_objects.len() < LISTED {
                    preview.entering_objects.push(listed(object));
                }
            }
            (true, false) if exported.contains(&object.anchor) => {
                preview.leaving += 1;
                if preview.leaving_objects.len() < LISTED {
                    preview.leaving_objects.push(listed(object));
                }
            }
            (true, false) => preview.leaving_unexported += 1,
            (false, false) => {}
            (true, true) => {
                let before = cloud_shape(object, domains, now.rules);
                let shape = cloud_shape(object, domains, after.rules);
                for issue in &shape.issues {
                    if issue.severity == Severity::Error && !before.issues.contains(issue) {
                        preview.errors += 1;
                        if preview.error_examples.len() < LISTED {
                            preview.error_examples.push(PreviewError {
                                dn: object.dn.to_string(),
                                property: issue.attribute.clone(),
                                problem: issue.statement(),
                            });
                        }
                    }
                }
                for (property, new) in &shape.properties {
                    let old = before.properties.get(property).unwrap_or(&Value::Null);
                    if same(old, new) {
                        continue;
                    }
                    *preview.updates.entry(property.clone()).or_default() += 1;
                    if preview.update_examples.len() < LISTED {
                        preview.update_examples.push(PreviewUpdate {
                            dn: object.dn.to_string(),
                            property: property.clone(),
                            before: old.clone(),
                            after: new.clone(),
                        });
                    }
                }
            }
        }
    }
    preview
}

fn same(old: &Value, new: &Value) -> bool {
    old == new || (is_empty_value(old) && is_empty_value(new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Dn;
    use crate::rules::{RulesConfig, compile};

    fn user(seed: u8, employee_type: &str) -> DirectoryObject {
        DirectoryObject {
            anchor: Guid([seed; 16]),
            dn: Dn::parse(&format!("CN=User {seed},OU=Corp,DC=corp,DC=test")).expect("dn"),
            kind: ObjectKind::User,
            attributes: [
                ("employeeType", employee_type),
                ("givenName", "Ann"),
                ("sn", "Lee"),
                ("userPrincipalName", "ann@contoso.test"),
            ]
            .into_iter()
            .map(|(name, value)| (name.to_owned(), vec![value.to_owned()]))
            .collect(),
            object_sid: None,
            problems: Vec::new(),
        }
    }

    #[test]
    fn entering_leaving_and_updates_are_counted() {
        let domains = TenantDomains {
            verified: vec!["contoso.test".to_owned()],
            initial: "contoso.onmicrosoft.com".to_owned(),
        };
        let now = SyncRules::default();
        let config: RulesConfig = toml::from_str(
            r#"
            [[users.scoping]]
            action = "include"
            attribute = "employeeType"
            operator = "equals"
            value = "staff"
            [users.mappings]
            displayName = 'Join(", ", [sn], [givenName])'
            "#,
        )
        .expect("TOML");
        let after = compile(&config).expect("valid");
        let objects = [user(1, "staff"), user(2, "contractor"), user(3, "intern")];
        let sets = RuleSets::default();
        let exported: HashSet<Guid> = [Guid([1; 16]), Guid([2; 16])].into();
        let preview = preview(
            &objects,
            RuleSide {
                rules: &now,
                sets: &sets,
            },
            RuleSide {
                rules: &after,
                sets: &sets,
            },
            &domains,
            &exported,
        );
        assert_eq!((preview.in_scope_now, preview.in_scope_after), (3, 1));
        assert_eq!(preview.leaving, 1, "user 2 was exported and leaves");
        assert_eq!(preview.leaving_unexported, 1, "user 3 never was");
        assert_eq!(preview.entering, 0);
        assert_eq!(preview.updates.get("displayName"), Some(&1));
        assert_eq!(preview.update_examples[0].after, "Lee, Ann");
    }
}
