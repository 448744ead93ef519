//! The sync rules' scope for one directory object (README, "Sync rules"). Pure: what the
//! domain controller answered for the LDAP filters and group memberships is read by the cycle
//! (`cycle::rule_sets`) and handed in as [`RuleSets`].

use std::collections::{BTreeMap, HashSet};

use crate::directory::import::USERS_AND_GROUPS_FILTER;
use crate::directory::objects::{DirectoryObject, ObjectKind};
use crate::guid::Guid;
use crate::rules::scoping::{Condition, ScopedObject, Verdict, decide};
use crate::rules::{ObjectRules, SyncRules};

/// The AD matching rule that follows group nesting (LDAP_MATCHING_RULE_IN_CHAIN, MS-ADTS
/// 3.1.1.3.4.4.3), which Samba offers too.
pub const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";

/// One question for the domain controller: which users and groups in scope match `filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetQuery {
    pub key: String,
    pub filter: String,
}

/// The anchors that matched each question, by its key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSets {
    pub sets: BTreeMap<String, HashSet<Guid>>,
}

impl RuleSets {
    /// The anchors whose answer differs between `self` and `other`, for the questions both
    /// asked (a new question comes with changed rules, which read every object anyway).
    pub fn changed_anchors(&self, other: &RuleSets) -> HashSet<Guid> {
        let mut changed = HashSet::new();
        for (key, now) in &self.sets {
            if let Some(before) = other.sets.get(key) {
                changed.extend(now.symmetric_difference(before).copied());
            }
        }
        changed
    }

    /// The sets as kept in the store: one line per question, its key and then its anchors.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut text = String::new();
        for (key, anchors) in &self.sets {
            let mut anchors: Vec<String> = anchors.iter().map(Guid::to_string).collect();
            anchors.sort_unstable();
            text.push_str(&key.replace(['\t', '\n'], " "));
            for anchor in anchors {
                text.push('\t');
                text.push_str(&anchor);
            }
            text.push('\n');
        }
        text.into_bytes()
    }

    pub fn from_bytes(bytes: &[u8]) -> RuleSets {
        let text = String::from_utf8_lossy(bytes);
        let mut sets = BTreeMap::new();
        for line in text.lines() {
            let mut fields = line.split('\t');
            let Some(key) = fields.next() else { continue };
            sets.insert(key.to_owned(), fields.filter_map(Guid::parse).collect());
        }
        RuleSets { sets }
    }
}

fn filter_key(kind: ObjectKind) -> String {
    format!("{} ldap_filter", kind_word(kind))
}

fn member_key(group: &str, nested: bool) -> String {
    format!(
        "member-of{} {}",
        if nested { "-nested" } else { "" },
        group.to_lowercase()
    )
}

fn kind_word(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::User => "users",
        ObjectKind::Group => "groups",
    }
}

/// What the rules ask the domain controller: each kind's LDAP filter, and each group a rule
/// names (its direct or nested members).
pub fn set_queries(rules: &SyncRules) -> Vec<SetQuery> {
    let mut queries = Vec::new();
    for (kind, object_rules, class_filter) in [
        (
            ObjectKind::User,
            &rules.users,
            "(objectClass=user)(!(objectClass=computer))",
        ),
        (ObjectKind::Group, &rules.groups, "(objectClass=group)"),
    ] {
        if let Some(filter) = &object_rules.ldap_filter {
            queries.push(SetQuery {
                key: filter_key(kind),
                filter: format!("(&{class_filter}{filter})"),
            });
        }
        for rule in &object_rules.scoping {
            if let Condition::MemberOf { group, nested } = &rule.condition {
                let key = member_key(group, *nested);
                if queries.iter().any(|query: &SetQuery| query.key == key) {
                    continue;
                }
                let matching = if *nested {
                    format!("memberOf:{IN_CHAIN}:")
                } else {
                    "memberOf".to_owned()
                };
                queries.push(SetQuery {
                    key,
                    filter: format!(
                        "(&{USERS_AND_GROUPS_FILTER}({matching}={}))",
                        crate::directory::dn::escape_filter_value(group)
                    ),
                });
            }
        }
    }
    queries
}

/// The rules' decision for `object`: its kind's LDAP filter first (an object it does not match
/// is out), then its scoping rules in order.
pub fn decide_object(rules: &SyncRules, sets: &RuleSets, object: &DirectoryObject) -> Verdict {
    let object_rules: &ObjectRules = match object.kind {
        ObjectKind::User => &rules.users,
        ObjectKind::Group => &rules.groups,
    };
    if object_rules.ldap_filter.is_some()
        && !sets
            .sets
            .get(&filter_key(object.kind))
            .is_some_and(|matched| matched.contains(&object.anchor))
    {
        return Verdict {
            in_scope: false,
            decided_by: None,
        };
    }
    decide(&object_rules.scoping, &WithSets { object, sets })
}

struct WithSets<'a> {
    object: &'a DirectoryObject,
    sets: &'a RuleSets,
}

impl ScopedObject for WithSets<'_> {
    fn values(&self, attribute: &str) -> Vec<String> {
        self.object.values(attribute).to_vec()
    }

    fn is_member_of(&self, group_dn: &str, nested: bool) -> bool {
        self.sets
            .sets
            .get(&member_key(group_dn, nested))
            .is_some_and(|members| members.contains(&self.object.anchor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Dn;
    use crate::rules::{RulesConfig, compile};

    fn user(seed: u8, attributes: &[(&str, &str)]) -> DirectoryObject {
        DirectoryObject {
            anchor: Guid([seed; 16]),
            dn: Dn::parse("CN=Ann Lee,OU=Sales,DC=corp,DC=test").expect("valid"),
            kind: ObjectKind::User,
            attributes: attributes
                .iter()
                .map(|(name, value)| ((*name).to_owned(), vec![(*value).to_owned()]))
                .collect(),
            object_sid: None,
            problems: Vec::new(),
        }
    }

    fn rules(text: &str) -> SyncRules {
        let config: RulesConfig = toml::from_str(text).expect("TOML");
        compile(&config).expect("valid rules")
    }

    #[test]
    fn the_filter_and_the_memberships_are_asked_once_and_decide() {
        let rules = rules(
            r#"
            [users]
            ldap_filter = "(employeeType=*)"
            [[users.scoping]]
            action = "include"
            operator = "member-of-nested"
            value = "CN=Staff (all),OU=Groups,DC=corp,DC=test"
            [[users.scoping]]
            action = "include"
            attribute = "employeeType"
            operator = "equals"
            value = "staff"
            [[groups.scoping]]
            action = "exclude"
            operator = "member-of-nested"
            value = "cn=staff (all),OU=Groups,DC=corp,DC=test"
            "#,
        );
        let queries = set_queries(&rules);
        assert_eq!(queries.len(), 2, "{queries:?}");
        assert_eq!(
            queries[0].filter,
            "(&(objectClass=user)(!(objectClass=computer))(employeeType=*))"
        );
        assert!(
            queries[1]
                .filter
                .ends_with("(memberOf:1.2.840.113556.1.4.1941:=CN=Staff \\28all\\29,OU=Groups,DC=corp,DC=test))"),
            "{}",
            queries[1].filter
        );
        let member = user(1, &[("employeeType", "contractor")]);
        let staff = user(2, &[("employeeType", "Staff")]);
        let unmatched = user(3, &[("employeeType", "staff")]);
        let mut sets = RuleSets::default();
        sets.sets.insert(
            queries[0].key.clone(),
            [member.anchor, staff.anchor].into_iter().collect(),
        );
        sets.sets.insert(
            queries[1].key.clone(),
            [member.anchor].into_iter().collect(),
        );
        assert!(decide_object(&rules, &sets, &member).in_scope);
        assert_eq!(decide_object(&rules, &sets, &staff).decided_by, Some(2));
        assert!(
            !decide_object(&rules, &sets, &unmatched).in_scope,
            "the LDAP filter did not match it"
        );
    }

    #[test]
    fn the_sets_survive_the_store_and_say_what_changed() {
        let mut before = RuleSets::default();
        before
            .sets
            .insert("a".to_owned(), [Guid([1; 16]), Guid([2; 16])].into());
        let kept = RuleSets::from_bytes(&before.to_bytes());
        assert_eq!(kept, before);
        let mut now = RuleSets::default();
        now.sets
            .insert("a".to_owned(), [Guid([2; 16]), Guid([3; 16])].into());
        now.sets.insert("b".to_owned(), [Guid([4; 16])].into());
        let changed = now.changed_anchors(&kept);
        assert_eq!(changed, [Guid([1; 16]), Guid([3; 16])].into());
    }
}
