//! Scoping rules on attributes and group membership, on top of the OU scope. Pure: a rule set is
//! checked once, when it is saved, and decides for each directory object.
//!
//! Order of evaluation: the rules in their order; the first whose condition holds decides,
//! `include` putting the object in scope and `exclude` leaving it out. When no rule holds, the
//! object is in scope only if the set has no `include` rule (a set of excludes leaves out what
//! they name; a set with includes takes in only what they name). A condition on a multi-valued
//! attribute holds when one of its values does. Text comparisons ignore case, as AD's string
//! attributes do; a regular expression is matched as written (`(?i)` ignores case).

use std::fmt;

/// What a rule does when its condition holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    Include,
    Exclude,
}

/// What a rule tests.
#[derive(Debug, Clone)]
pub enum Condition {
    Equals {
        attribute: String,
        value: String,
    },
    StartsWith {
        attribute: String,
        value: String,
    },
    EndsWith {
        attribute: String,
        value: String,
    },
    Matches {
        attribute: String,
        pattern: regex_lite::Regex,
    },
    IsPresent {
        attribute: String,
    },
    /// A member of the group with this DN: directly, or with `nested` through groups in it too.
    MemberOf {
        group: String,
        nested: bool,
    },
}

impl PartialEq for Condition {
    fn eq(&self, other: &Condition) -> bool {
        self.to_string() == other.to_string()
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Equals { attribute, value } => write!(f, "{attribute} equals '{value}'"),
            Condition::StartsWith { attribute, value } => {
                write!(f, "{attribute} starts with '{value}'")
            }
            Condition::EndsWith { attribute, value } => {
                write!(f, "{attribute} ends with '{value}'")
            }
            Condition::Matches { attribute, pattern } => {
                write!(f, "{attribute} matches /{}/", pattern.as_str())
            }
            Condition::IsPresent { attribute } => write!(f, "{attribute} is present"),
            Condition::MemberOf { group, nested } => write!(
                f,
                "member of {group}{}",
                if *nested { " (nested)" } else { " (direct)" }
            ),
        }
    }
}

/// One rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopingRule {
    pub action: RuleAction,
    pub condition: Condition,
}

/// `include employeeType equals 'staff'`: as tests, traces and `rules show` name a rule.
impl fmt::Display for ScopingRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.action {
            RuleAction::Include => "include",
            RuleAction::Exclude => "exclude",
        };
        write!(f, "{action} {}", self.condition)
    }
}

impl ScopingRule {
    /// A rule from its parts as the configuration writes them: `operator` is `equals`,
    /// `starts-with`, `ends-with`, `matches`, `present`, `member-of` or `member-of-nested`;
    /// `value` is the text, the pattern or the group's DN (unused for `present`).
    pub fn new(
        action: RuleAction,
        attribute: &str,
        operator: &str,
        value: &str,
    ) -> Result<ScopingRule, String> {
        let attribute = attribute.trim();
        let needs_attribute = !operator.starts_with("member-of");
        if needs_attribute
            && (attribute.is_empty()
                || !attribute
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            return Err(format!(
                "attribute: '{attribute}' is not an LDAP attribute name (say employeeType)"
            ));
        }
        let attribute = attribute.to_owned();
        let value = value.to_owned();
        let condition = match operator {
            "equals" => Condition::Equals { attribute, value },
            "starts-with" => Condition::StartsWith { attribute, value },
            "ends-with" => Condition::EndsWith { attribute, value },
            "matches" => Condition::Matches {
                attribute,
                pattern: regex_lite::Regex::new(&value).map_err(|error| {
                    format!("value: '{value}' is not a regular expression: {error}")
                })?,
            },
            "present" => Condition::IsPresent { attribute },
            "member-of" | "member-of-nested" => {
                if !value.contains('=') {
                    return Err(format!(
                        "value: '{value}' is not a group's DN (say CN=Staff,OU=Groups,DC=corp,DC=example,DC=com)"
                    ));
                }
                Condition::MemberOf {
                    group: value,
                    nested: operator == "member-of-nested",
                }
            }
            other => {
                return Err(format!(
                    "operator: '{other}' is not one of equals, starts-with, ends-with, matches, present, member-of, member-of-nested"
                ));
            }
        };
        Ok(ScopingRule { action, condition })
    }
}

/// What the rules read of one object.
pub trait ScopedObject {
    /// Every value of `attribute` (none when AD holds none).
    fn values(&self, attribute: &str) -> Vec<String>;
    /// Whether the object is a member of the group `group_dn`, directly or (`nested`) through
    /// groups that are members of it.
    fn is_member_of(&self, group_dn: &str, nested: bool) -> bool;
}

/// The rules' decision for one object, and which rule made it (counted from 1), for a trace
/// or a test to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub in_scope: bool,
    pub decided_by: Option<usize>,
}

pub fn decide(rules: &[ScopingRule], object: &dyn ScopedObject) -> Verdict {
    for (index, rule) in rules.iter().enumerate() {
        if holds(&rule.condition, object) {
            return Verdict {
                in_scope: rule.action == RuleAction::Include,
                decided_by: Some(index + 1),
            };
        }
    }
    Verdict {
        in_scope: !rules.iter().any(|rule| rule.action == RuleAction::Include),
        decided_by: None,
    }
}

fn holds(condition: &Condition, object: &dyn ScopedObject) -> bool {
    let any_value = |attribute: &str, test: &dyn Fn(&str) -> bool| {
        object.values(attribute).iter().any(|value| test(value))
    };
    match condition {
        Condition::Equals { attribute, value } => any_value(attribute, &|found| {
            found.to_lowercase() == value.to_lowercase()
        }),
        Condition::StartsWith { attribute, value } => any_value(attribute, &|found| {
            found.to_lowercase().starts_with(&value.to_lowercase())
        }),
        Condition::EndsWith { attribute, value } => any_value(attribute, &|found| {
            found.to_lowercase().ends_with(&value.to_lowercase())
        }),
        Condition::Matches { attribute, pattern } => {
            any_value(attribute, &|found| pattern.is_match(found))
        }
        Condition::IsPresent { attribute } => any_value(attribute, &|found| !found.is_empty()),
        Condition::MemberOf { group, nested } => object.is_member_of(group, *nested),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct User {
        values: HashMap<&'static str, Vec<&'static str>>,
        /// (group DN, nested only)
        groups: Vec<(&'static str, bool)>,
    }

    impl ScopedObject for User {
        fn values(&self, attribute: &str) -> Vec<String> {
            self.values
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(attribute))
                .map(|(_, values)| values.iter().map(|value| (*value).to_owned()).collect())
                .unwrap_or_default()
        }

        fn is_member_of(&self, group_dn: &str, nested: bool) -> bool {
            self.groups.iter().any(|(group, through_nesting)| {
                group.eq_ignore_ascii_case(group_dn) && (nested || !through_nesting)
            })
        }
    }

    fn user(values: &[(&'static str, &'static str)], groups: &[(&'static str, bool)]) -> User {
        let mut map: HashMap<&'static str, Vec<&'static str>> = HashMap::new();
        for (name, value) in values {
            map.entry(name).or_default().push(value);
        }
        User {
            values: map,
            groups: groups.to_vec(),
        }
    }

    fn rule(action: RuleAction, attribute: &str, operator: &str, value: &str) -> ScopingRule {
        ScopingRule::new(action, attribute, operator, value).expect("a valid rule")
    }

    const STAFF: &str = "CN=Staff,OU=Groups,DC=corp,DC=test";

    #[test]
    fn the_first_rule_that_holds_decides() {
        let rules = [
            rule(RuleAction::Exclude, "description", "starts-with", "svc-"),
            rule(RuleAction::Include, "employeeType", "equals", "staff"),
            rule(RuleAction::Include, "", "member-of-nested", STAFF),
        ];
        let staff = user(&[("employeeType", "Staff")], &[]);
        assert_eq!(
            decide(&rules, &staff),
            Verdict {
                in_scope: true,
                decided_by: Some(2)
            }
        );
        let service = user(
            &[("employeeType", "staff"), ("description", "SVC-backup")],
            &[],
        );
        assert_eq!(decide(&rules, &service).decided_by, Some(1));
        assert!(!decide(&rules, &service).in_scope);
        let nested_member = user(&[], &[(STAFF, true)]);
        assert_eq!(decide(&rules, &nested_member).decided_by, Some(3));
        // With an include rule, what no rule names stays out.
        let contractor = user(&[("employeeType", "contractor")], &[]);
        assert_eq!(
            decide(&rules, &contractor),
            Verdict {
                in_scope: false,
                decided_by: None
            }
        );
    }

    #[test]
    fn excludes_alone_leave_the_rest_in_scope() {
        let rules = [rule(
            RuleAction::Exclude,
            "description",
            "matches",
            "^svc-[0-9]+$",
        )];
        assert!(!decide(&rules, &user(&[("description", "svc-12")], &[])).in_scope);
        assert!(decide(&rules, &user(&[("description", "svc-x")], &[])).in_scope);
        assert!(decide(&rules, &user(&[], &[])).in_scope);
        assert!(
            decide(&[], &user(&[], &[])).in_scope,
            "no rules: the OU scope alone"
        );
    }

    #[test]
    fn direct_membership_is_not_nested_membership() {
        let direct = [rule(RuleAction::Include, "", "member-of", STAFF)];
        assert!(!decide(&direct, &user(&[], &[(STAFF, true)])).in_scope);
        assert!(decide(&direct, &user(&[], &[(STAFF, false)])).in_scope);
    }

    #[test]
    fn each_operator_and_a_multi_valued_attribute() {
        let mail = user(
            &[
                ("proxyAddresses", "SMTP:ann@contoso.test"),
                ("proxyAddresses", "smtp:ann@fabrikam.test"),
            ],
            &[],
        );
        let holds = |operator: &str, value: &str| {
            decide(
                &[rule(RuleAction::Include, "proxyAddresses", operator, value)],
                &mail,
            )
            .in_scope
        };
        assert!(holds("ends-with", "@FABRIKAM.test"));
        assert!(holds("starts-with", "smtp:ann"));
        assert!(holds("equals", "smtp:ann@contoso.test"));
        assert!(!holds("equals", "ann@contoso.test"));
        assert!(holds("present", ""));
        assert!(holds("matches", "(?i)^smtp:.*@contoso"));
        assert!(!holds("matches", "^smtp:.*@contoso"));
    }

    #[test]
    fn a_wrong_rule_names_its_field() {
        let refused = |attribute: &str, operator: &str, value: &str| {
            ScopingRule::new(RuleAction::Include, attribute, operator, value).expect_err("refused")
        };
        assert!(refused("employee type", "equals", "x").starts_with("attribute:"));
        assert!(refused("description", "matches", "svc-(").starts_with("value:"));
        assert!(refused("description", "contains", "x").starts_with("operator:"));
        assert!(refused("", "member-of", "Staff").starts_with("value:"));
        assert_eq!(
            rule(RuleAction::Exclude, "description", "starts-with", "svc-")
                .condition
                .to_string(),
            "description starts with 'svc-'"
        );
    }
}
