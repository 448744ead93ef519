//! Sync rules (README, "Sync rules"): which users and groups sync beyond the OU scope, and how
//! their cloud properties are made. Pure: `config.toml`'s `[rules]` is checked once, when it is
//! loaded or saved, into [`SyncRules`], which the engine evaluates per object.
//!
//! - `expression`: the mapping expression language (Cloud Sync's functions), parsed and
//!   type-checked with errors at the character.
//! - `scoping`: ordered include/exclude rules on attributes and group membership.

pub mod expression;
pub mod scoping;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use expression::Expression;
use scoping::{Condition, RuleAction, ScopingRule};

/// `[rules]` as `config.toml` and the answers file write it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    #[serde(skip_serializing_if = "ObjectRulesConfig::is_empty")]
    pub users: ObjectRulesConfig,
    #[serde(skip_serializing_if = "ObjectRulesConfig::is_empty")]
    pub groups: ObjectRulesConfig,
}

/// The rules of one object type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectRulesConfig {
    /// Only objects this LDAP filter matches (asked of the domain controller), say
    /// `(employeeType=staff)`; absent: no filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ldap_filter: Option<String>,
    /// Include/exclude rules in order; the first that holds decides.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scoping: Vec<ScopingRuleConfig>,
    /// Graph property → expression (an attribute alone, a `"constant"`, or a function).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub mappings: BTreeMap<String, String>,
}

impl ObjectRulesConfig {
    pub fn is_empty(&self) -> bool {
        *self == ObjectRulesConfig::default()
    }
}

/// One scoping rule as written: `action = "exclude"`, `attribute = "description"`,
/// `operator = "starts-with"`, `value = "svc-"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopingRuleConfig {
    pub action: ActionConfig,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub attribute: String,
    pub operator: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionConfig {
    Include,
    Exclude,
}

impl From<ActionConfig> for RuleAction {
    fn from(action: ActionConfig) -> RuleAction {
        match action {
            ActionConfig::Include => RuleAction::Include,
            ActionConfig::Exclude => RuleAction::Exclude,
        }
    }
}

/// Which kind of object a rule set is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    Users,
    Groups,
}

impl RuleKind {
    pub fn word(self) -> &'static str {
        match self {
            RuleKind::Users => "users",
            RuleKind::Groups => "groups",
        }
    }
}

/// Where a mapping's value goes in the cloud object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A top-level property (`usageLocation`).
    Property(String),
    /// `onPremisesExtensionAttributes.extensionAttributeN`, N in 1..=15.
    ExtensionAttribute(u8),
    /// `employeeOrgData.division` or `employeeOrgData.costCenter`.
    EmployeeOrgData(String),
    /// A directory extension of the sync app, by its short name; the property is
    /// `extension_<appId without hyphens>_<name>`.
    DirectoryExtension(String),
}

impl Target {
    /// The target as the configuration names it.
    pub fn name(&self) -> String {
        match self {
            Target::Property(name) => name.clone(),
            Target::ExtensionAttribute(number) => {
                format!("onPremisesExtensionAttributes.extensionAttribute{number}")
            }
            Target::EmployeeOrgData(field) => format!("employeeOrgData.{field}"),
            Target::DirectoryExtension(name) => format!("extension_{name}"),
        }
    }
}

/// One property mapping, checked: an AD attribute's name alone (`c`), or an expression
/// (`Join(" ", [givenName], [sn])`, a constant `"DE"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub target: Target,
    pub expression: Expression,
    /// The expression as written, for tests and traces.
    pub text: String,
}

/// The checked rules of one object type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectRules {
    pub ldap_filter: Option<String>,
    pub scoping: Vec<ScopingRule>,
    pub mappings: Vec<Mapping>,
}

impl ObjectRules {
    /// Whether the rules can leave an object out.
    pub fn scopes(&self) -> bool {
        self.ldap_filter.is_some() || !self.scoping.is_empty()
    }

    /// The AD attributes the rules read (beyond what dirsync reads anyway), in order.
    pub fn attributes(&self) -> Vec<String> {
        let mut found: Vec<String> = Vec::new();
        let named = self
            .mappings
            .iter()
            .flat_map(|mapping| mapping.expression.attributes())
            .chain(
                self.scoping
                    .iter()
                    .filter_map(|rule| match &rule.condition {
                        Condition::Equals { attribute, .. }
                        | Condition::StartsWith { attribute, .. }
                        | Condition::EndsWith { attribute, .. }
                        | Condition::Matches { attribute, .. }
                        | Condition::IsPresent { attribute } => Some(attribute.as_str()),
                        Condition::MemberOf { .. } => None,
                    }),
            );
        for attribute in named {
            if !found
                .iter()
                .any(|seen| seen.eq_ignore_ascii_case(attribute))
            {
                found.push(attribute.to_owned());
            }
        }
        found
    }

    /// The directory extensions the mappings write, by short name.
    pub fn directory_extensions(&self) -> Vec<&str> {
        self.mappings
            .iter()
            .filter_map(|mapping| match &mapping.target {
                Target::DirectoryExtension(name) => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The mapping for `target`, if the administrator gave one.
    pub fn mapping(&self, target: &Target) -> Option<&Mapping> {
        self.mappings
            .iter()
            .find(|mapping| mapping.target == *target)
    }
}

/// The checked rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncRules {
    pub users: ObjectRules,
    pub groups: ObjectRules,
    /// The sync app's application id without hyphens: directory extensions are named
    /// `extension_<it>_<name>` (set by `Config::sync_rules`).
    pub extension_app_id: String,
}

impl SyncRules {
    /// A directory extension's property name in Graph.
    pub fn extension_property(&self, name: &str) -> String {
        format!("extension_{}_{name}", self.extension_app_id)
    }

    pub fn for_kind(&self, kind: RuleKind) -> &ObjectRules {
        match kind {
            RuleKind::Users => &self.users,
            RuleKind::Groups => &self.groups,
        }
    }

    /// Every AD attribute the rules read, users' and groups'.
    pub fn attributes(&self) -> Vec<String> {
        let mut found = self.users.attributes();
        for attribute in self.groups.attributes() {
            if !found
                .iter()
                .any(|seen| seen.eq_ignore_ascii_case(&attribute))
            {
                found.push(attribute);
            }
        }
        found
    }
}

/// A rule that cannot be used: the field (`rules.users.mappings.usageLocation`) and what is
/// wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesError {
    pub field: String,
    pub message: String,
}

/// Graph properties a user's mapping may write (beyond the structured targets).
const USER_PROPERTIES: &[&str] = &[
    "userPrincipalName",
    "displayName",
    "mailNickname",
    "givenName",
    "surname",
    "mail",
    "jobTitle",
    "department",
    "companyName",
    "officeLocation",
    "mobilePhone",
    "businessPhones",
    "streetAddress",
    "city",
    "state",
    "postalCode",
    "country",
    "employeeId",
    "usageLocation",
    "preferredLanguage",
    "employeeType",
    "employeeHireDate",
];

/// Graph properties a group's mapping may write.
const GROUP_PROPERTIES: &[&str] = &["displayName", "description", "mailNickname"];

/// Properties dirsync decides itself, whatever a mapping says, and why.
const FIXED_PROPERTIES: &[(&str, &str)] = &[
    (
        "onPremisesImmutableId",
        "is the object's anchor (its objectGUID) and never mapped",
    ),
    (
        "accountEnabled",
        "follows userAccountControl (and the disable-before-delete option) and is not mapped",
    ),
    (
        "securityEnabled",
        "is always true: dirsync makes security groups",
    ),
    (
        "mailEnabled",
        "is always false: mail-enabled groups belong to Exchange",
    ),
];

/// Checks `[rules]`: every scoping rule, filter, target and expression.
pub fn compile(config: &RulesConfig) -> Result<SyncRules, RulesError> {
    Ok(SyncRules {
        users: compile_kind(RuleKind::Users, &config.users)?,
        groups: compile_kind(RuleKind::Groups, &config.groups)?,
        extension_app_id: String::new(),
    })
}

fn compile_kind(kind: RuleKind, config: &ObjectRulesConfig) -> Result<ObjectRules, RulesError> {
    let prefix = format!("rules.{}", kind.word());
    let ldap_filter = match config.ldap_filter.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(filter) => {
            check_ldap_filter(filter).map_err(|message| RulesError {
                field: format!("{prefix}.ldap_filter"),
                message,
            })?;
            Some(filter.to_owned())
        }
    };
    let mut scoping = Vec::new();
    for (index, rule) in config.scoping.iter().enumerate() {
        let compiled = ScopingRule::new(
            rule.action.into(),
            &rule.attribute,
            &rule.operator,
            &rule.value,
        )
        .map_err(|message| RulesError {
            field: format!("{prefix}.scoping[{}]", index + 1),
            message,
        })?;
        scoping.push(compiled);
    }
    let mut mappings = Vec::new();
    for (name, text) in &config.mappings {
        let field = format!("{prefix}.mappings.{name}");
        let target = parse_target(kind, name).map_err(|message| RulesError {
            field: field.clone(),
            message,
        })?;
        // An attribute's name alone is that attribute (Cloud Sync's "Direct" mapping).
        let bare_attribute = text.starts_with(|c: char| c.is_ascii_alphabetic())
            && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        let parsed = if bare_attribute {
            Expression::parse(&format!("[{text}]"))
        } else {
            Expression::parse(text)
        };
        let expression = parsed.map_err(|error| RulesError {
            field: field.clone(),
            message: format!("'{text}': {error}"),
        })?;
        if expression.gives() == expression::Type::Bool {
            return Err(RulesError {
                field,
                message: format!(
                    "'{text}' gives a condition, not a value (wrap it in IIF(condition, \"yes\", \"no\"))"
                ),
            });
        }
        mappings.push(Mapping {
            target,
            expression,
            text: text.clone(),
        });
    }
    Ok(ObjectRules {
        ldap_filter,
        scoping,
        mappings,
    })
}

/// The target a mapping's key names, for `kind`.
pub fn parse_target(kind: RuleKind, name: &str) -> Result<Target, String> {
    if let Some((_, why)) = FIXED_PROPERTIES.iter().find(|(fixed, _)| *fixed == name) {
        return Err(format!("{name} {why}"));
    }
    if let Some(short) = name.strip_prefix("extension_") {
        // The full Graph name (extension_<appId without hyphens>_<name>) is accepted too.
        let short = match short.split_once('_') {
            Some((app, rest)) if app.len() == 32 && app.chars().all(|c| c.is_ascii_hexdigit()) => {
                rest
            }
            _ => short,
        };
        let well_formed = !short.is_empty()
            && short.len() <= 64
            && short.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && short.starts_with(|c: char| c.is_ascii_alphabetic());
        if !well_formed {
            return Err(format!(
                "'{name}' is not a directory extension name: extension_ and then letters, digits and _ (say extension_costCenter)"
            ));
        }
        return Ok(Target::DirectoryExtension(short.to_owned()));
    }
    if kind == RuleKind::Users {
        if let Some(number) = name
            .strip_prefix("onPremisesExtensionAttributes.extensionAttribute")
            .and_then(|number| number.parse::<u8>().ok())
            .filter(|number| (1..=15).contains(number))
        {
            return Ok(Target::ExtensionAttribute(number));
        }
        if let Some(field) = name.strip_prefix("employeeOrgData.") {
            return match field {
                "division" | "costCenter" => Ok(Target::EmployeeOrgData(field.to_owned())),
                _ => Err(format!(
                    "employeeOrgData has division and costCenter, not '{field}'"
                )),
            };
        }
    }
    let known = match kind {
        RuleKind::Users => USER_PROPERTIES,
        RuleKind::Groups => GROUP_PROPERTIES,
    };
    if known.contains(&name) {
        return Ok(Target::Property(name.to_owned()));
    }
    let extra = match kind {
        RuleKind::Users => {
            ", onPremisesExtensionAttributes.extensionAttribute1..15, employeeOrgData.division, employeeOrgData.costCenter"
        }
        RuleKind::Groups => "",
    };
    Err(format!(
        "'{name}' is not a Graph property dirsync maps for {}: one of {}{extra}, or extension_<name>",
        kind.word(),
        known.join(", ")
    ))
}

/// An LDAP filter's outer form: in parentheses, balanced, not too long. The domain controller
/// checks the rest when it is first asked.
fn check_ldap_filter(filter: &str) -> Result<(), String> {
    if filter.len() > 4_096 {
        return Err("is longer than 4096 characters".to_owned());
    }
    if !filter.starts_with('(') || !filter.ends_with(')') {
        return Err(format!(
            "'{filter}' is not an LDAP filter: it is written in parentheses, say (employeeType=staff)"
        ));
    }
    let mut depth = 0i32;
    for (index, character) in filter.chars().enumerate() {
        match character {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 || (depth == 0 && index + 1 < filter.chars().count()) {
                    return Err(format!(
                        "'{filter}': at character {}: the parentheses do not balance",
                        index + 1
                    ));
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!(
            "'{filter}': the parentheses do not balance ({depth} not closed)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(toml_text: &str) -> Result<SyncRules, RulesError> {
        let config: RulesConfig = toml::from_str(toml_text).expect("well-formed TOML");
        compile(&config)
    }

    #[test]
    fn a_rule_set_is_checked_and_reads_what_it_names() {
        let compiled = rules(
            r#"
            [users]
            ldap_filter = "(!(description=svc-*))"
            [[users.scoping]]
            action = "include"
            attribute = "employeeType"
            operator = "equals"
            value = "staff"
            [[users.scoping]]
            action = "include"
            operator = "member-of-nested"
            value = "CN=Staff,OU=Groups,DC=corp,DC=test"
            [users.mappings]
            displayName = 'Join(" ", [givenName], [sn])'
            usageLocation = '"DE"'
            "onPremisesExtensionAttributes.extensionAttribute3" = "extensionAttribute3"
            extension_costCenter = "departmentNumber"
            "#,
        )
        .expect("valid rules");
        assert!(compiled.users.scopes());
        assert!(!compiled.groups.scopes());
        assert_eq!(
            compiled.attributes(),
            // Mappings by property name, then the scoping rules.
            [
                "givenName",
                "sn",
                "departmentNumber",
                "extensionAttribute3",
                "employeeType"
            ]
        );
        assert_eq!(compiled.users.directory_extensions(), ["costCenter"]);
        assert!(
            compiled
                .users
                .mapping(&Target::ExtensionAttribute(3))
                .is_some()
        );
    }

    #[test]
    fn a_wrong_rule_names_its_field() {
        let refused = |text: &str| rules(text).expect_err("refused");
        let error = refused("[users.mappings]\ndisplayName = 'Join(\" \", [givenName]'");
        assert_eq!(error.field, "rules.users.mappings.displayName");
        assert!(error.message.contains("at character"), "{}", error.message);
        let error = refused("[users.mappings]\naccountEnabled = 'givenName'");
        let direct = rules("[users.mappings]\ndepartment = 'extensionAttribute2'")
            .expect("an attribute alone");
        assert_eq!(direct.users.attributes(), ["extensionAttribute2"]);
        assert!(error.message.contains("userAccountControl"));
        let error = refused("[groups.mappings]\nusageLocation = 'c'");
        assert_eq!(error.field, "rules.groups.mappings.usageLocation");
        let error = refused(
            "[[users.scoping]]\naction = \"include\"\nattribute = \"x y\"\noperator = \"equals\"",
        );
        assert_eq!(error.field, "rules.users.scoping[1]");
        let error = refused("[users]\nldap_filter = \"employeeType=staff\"");
        assert_eq!(error.field, "rules.users.ldap_filter");
        let error = refused("[users]\nldap_filter = \"(&(a=b)(c=d)\"");
        assert!(error.message.contains("balance"));
        let error = refused("[users.mappings]\ndepartment = 'IsPresent([department])'");
        assert!(error.message.contains("condition"));
        let error = refused("[users.mappings]\n\"employeeOrgData.team\" = 'department'");
        assert!(error.message.contains("costCenter"));
    }

    #[test]
    fn a_directory_extension_is_named_short_or_in_full() {
        assert_eq!(
            parse_target(
                RuleKind::Users,
                "extension_0123456789abcdef0123456789abcdef_costCenter"
            ),
            Ok(Target::DirectoryExtension("costCenter".to_owned()))
        );
        assert_eq!(
            parse_target(RuleKind::Groups, "extension_site"),
            Ok(Target::DirectoryExtension("site".to_owned()))
        );
        assert!(parse_target(RuleKind::Users, "extension_").is_err());
        assert!(parse_target(RuleKind::Users, "extension_cost-center").is_err());
    }
}
