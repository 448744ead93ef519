//! Attribute flow: what a directory object looks like in the cloud (README, "Syncing"). Pure.
//!
//! Every flowed property is present in the shape, `null` (or `[]`) when AD has no value, so that
//! a value cleared in AD is cleared in the cloud too. Only properties Graph lets an application
//! write are produced: proxyAddresses (read-only for users in Graph) and a group's mail are not.

use serde_json::{Map, Value, json};

pub use super::addresses::{mail_nickname, primary_smtp, smtp_address};
use super::validation::{ObjectIssue, Rule, Severity};
use crate::directory::Dn;
use crate::directory::objects::{DirectoryObject, EXTENSION_ATTRIBUTES, ObjectKind};
use crate::rules::expression::Value as ExpressionValue;
use crate::rules::{ObjectRules, RuleKind, SyncRules, Target};

/// The tenant's domains, as the sync app reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantDomains {
    /// Verified domain names, any case.
    pub verified: Vec<String>,
    /// `<tenant>.onmicrosoft.com`.
    pub initial: String,
}

impl TenantDomains {
    pub fn is_verified(&self, domain: &str) -> bool {
        self.verified
            .iter()
            .any(|verified| verified.eq_ignore_ascii_case(domain))
    }
}

/// How an object should look in the cloud.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudShape {
    /// Graph properties, by Graph name.
    pub properties: Map<String, Value>,
    /// References, resolved to cloud ids once their targets exist.
    pub manager: Option<Dn>,
    pub members: Vec<Dn>,
    /// Errors stop the object's export; warnings are reported with it.
    pub issues: Vec<ObjectIssue>,
}

impl CloudShape {
    pub fn has_errors(&self) -> bool {
        self.issues
            .iter()
            .any(|issue| issue.severity == Severity::Error)
    }
}

/// User attributes that flow one to one: (AD attribute, Graph property).
const USER_TEXT_FLOWS: &[(&str, &str)] = &[
    ("givenName", "givenName"),
    ("sn", "surname"),
    ("mail", "mail"),
    ("title", "jobTitle"),
    ("department", "department"),
    ("company", "companyName"),
    ("physicalDeliveryOfficeName", "officeLocation"),
    ("mobile", "mobilePhone"),
    ("streetAddress", "streetAddress"),
    ("l", "city"),
    ("st", "state"),
    ("postalCode", "postalCode"),
    ("employeeID", "employeeId"),
];

/// What a Graph property is made from in AD, in words (a trace's attribute flow, README,
/// "Tracing one object"). Empty for a property dirsync does not make.
pub fn ad_source(property: &str) -> &'static str {
    if let Some((attribute, _)) = USER_TEXT_FLOWS.iter().find(|(_, flow)| *flow == property) {
        return attribute;
    }
    match property {
        "userPrincipalName" => "userPrincipalName",
        "displayName" => "displayName, else name",
        "mailNickname" => {
            "mailNickname, else the local part of the primary SMTP address, mail or UPN, else sAMAccountName"
        }
        "accountEnabled" => "userAccountControl",
        "country" => "co, else c",
        "businessPhones" => "telephoneNumber",
        "onPremisesImmutableId" => "objectGUID",
        "description" => "description",
        "usageLocation" => "msExchUsageLocation, else c",
        "onPremisesExtensionAttributes" => "extensionAttribute1..15",
        "securityEnabled" | "mailEnabled" => "(always a security group)",
        _ => "",
    }
}

/// The properties dirsync makes for `kind` without a mapping, and what each is made from in AD
/// (the default rules the wizard and `dirsync rules show` list).
pub fn default_flow_of(kind: RuleKind) -> Vec<(&'static str, &'static str)> {
    let properties: Vec<&'static str> = match kind {
        RuleKind::Users => [
            "userPrincipalName",
            "displayName",
            "mailNickname",
            "accountEnabled",
        ]
        .into_iter()
        .chain(USER_TEXT_FLOWS.iter().map(|(_, property)| *property))
        .chain([
            "country",
            "businessPhones",
            "usageLocation",
            "onPremisesExtensionAttributes",
            "onPremisesImmutableId",
        ])
        .collect(),
        RuleKind::Groups => vec![
            "displayName",
            "description",
            "mailNickname",
            "securityEnabled",
            "mailEnabled",
        ],
    };
    properties
        .into_iter()
        .map(|property| (property, ad_source(property)))
        .collect()
}

/// The default flow of users and groups, for `--json`.
pub fn default_flow() -> Value {
    let as_json = |kind| {
        default_flow_of(kind)
            .into_iter()
            .map(|(property, source)| json!({"property": property, "source": source}))
            .collect::<Vec<_>>()
    };
    json!({"users": as_json(RuleKind::Users), "groups": as_json(RuleKind::Groups)})
}

/// The cloud shape of a user or group: the default flow, then the sync rules' mappings
/// (README, "Sync rules") over it.
pub fn cloud_shape(
    object: &DirectoryObject,
    domains: &TenantDomains,
    rules: &SyncRules,
) -> CloudShape {
    match object.kind {
        ObjectKind::User => user_shape(object, domains, rules),
        ObjectKind::Group => {
            let mut shape = group_shape(object);
            apply_mappings(object, rules, &rules.groups, &mut shape);
            shape
        }
    }
}

fn text(object: &DirectoryObject, attribute: &str) -> Value {
    object
        .first(attribute)
        .filter(|value| !value.trim().is_empty())
        .map_or(Value::Null, |value| json!(value))
}

fn user_shape(object: &DirectoryObject, domains: &TenantDomains, rules: &SyncRules) -> CloudShape {
    let mut properties = Map::new();
    properties.insert(
        "userPrincipalName".to_owned(),
        text(object, "userPrincipalName"),
    );
    properties.insert(
        "displayName".to_owned(),
        match text(object, "displayName") {
            Value::Null => text(object, "name"),
            name => name,
        },
    );
    properties.insert(
        "mailNickname".to_owned(),
        mail_nickname(object).map_or(Value::Null, Value::String),
    );
    properties.insert(
        "accountEnabled".to_owned(),
        json!(object.account_enabled().unwrap_or(true)),
    );
    for (attribute, property) in USER_TEXT_FLOWS {
        properties.insert((*property).to_owned(), text(object, attribute));
    }
    // Graph's country is free text: the country's name (co), else its ISO code (c).
    properties.insert(
        "country".to_owned(),
        match text(object, "co") {
            Value::Null => text(object, "c"),
            name => name,
        },
    );
    properties.insert(
        "businessPhones".to_owned(),
        match text(object, "telephoneNumber") {
            Value::Null => json!([]),
            phone => json!([phone]),
        },
    );
    properties.insert(
        "onPremisesImmutableId".to_owned(),
        json!(object.immutable_id()),
    );
    let mut shape = CloudShape {
        properties,
        manager: object.first("manager").and_then(|dn| Dn::parse(dn).ok()),
        members: Vec::new(),
        issues: Vec::new(),
    };
    // Where a licence is used (required before one is assigned): Exchange's
    // msExchUsageLocation, else the country code.
    let usage_location = match text(object, "msExchUsageLocation") {
        Value::Null => text(object, "c"),
        location => location,
    };
    set_checked(&mut shape, "usageLocation", usage_location);
    let extension_attributes: Map<String, Value> = EXTENSION_ATTRIBUTES
        .iter()
        .map(|attribute| ((*attribute).to_owned(), text(object, attribute)))
        .collect();
    // Set only when AD holds one (see below for why), all fifteen then, so that a value
    // cleared in AD is cleared in the cloud.
    shape.properties.insert(
        "onPremisesExtensionAttributes".to_owned(),
        if extension_attributes.values().all(Value::is_null) {
            Value::Null
        } else {
            Value::Object(extension_attributes)
        },
    );
    apply_mappings(object, rules, &rules.users, &mut shape);
    for complex in ["onPremisesExtensionAttributes", "employeeOrgData"] {
        // Nothing set is kept as null, not as fifteen nulls per user (100,000 users' worth of
        // them is most of a plan's memory); export writes null as Graph's empty form.
        if let Some(value) = shape.properties.get_mut(complex)
            && value
                .as_object()
                .is_some_and(|fields| fields.values().all(Value::is_null))
        {
            *value = Value::Null;
        }
    }
    replace_unverified_suffix(&mut shape, domains);
    shape
}

/// A complex property's form with nothing set, as PATCH writes it (Graph merges a complex
/// value's fields; null for the whole property is not a documented way to clear them).
pub fn empty_complex(property: &str) -> Option<Value> {
    match property {
        "onPremisesExtensionAttributes" => Some(Value::Object(
            EXTENSION_ATTRIBUTES
                .iter()
                .map(|attribute| ((*attribute).to_owned(), Value::Null))
                .collect(),
        )),
        "employeeOrgData" => Some(json!({"division": null, "costCenter": null})),
        _ => None,
    }
}

/// A UPN on a domain the tenant has not verified cannot be created: the user signs in as
/// `<mailNickname>@<initial domain>` instead, with a warning.
fn replace_unverified_suffix(shape: &mut CloudShape, domains: &TenantDomains) {
    let upn = shape
        .properties
        .get("userPrincipalName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let suffix = upn.rsplit_once('@').map(|(_, domain)| domain);
    if suffix.is_some_and(|domain| domains.is_verified(domain)) {
        return;
    }
    let Some(nickname) = shape.properties.get("mailNickname").and_then(Value::as_str) else {
        return;
    };
    let replacement = format!("{nickname}@{}", domains.initial);
    shape.issues.push(ObjectIssue {
        attribute: "userPrincipalName".to_owned(),
        value: upn,
        rule: Rule::UnverifiedSuffix {
            replacement: replacement.clone(),
        },
        severity: Severity::Warning,
    });
    shape
        .properties
        .insert("userPrincipalName".to_owned(), json!(replacement));
}

/// Each mapping's value over the default flow's. A value that cannot be made (an expression
/// that fails for this object, a value Graph would refuse) is an error on the object, which
/// then waits, rather than a property cleared.
fn apply_mappings(
    object: &DirectoryObject,
    rules: &SyncRules,
    object_rules: &ObjectRules,
    shape: &mut CloudShape,
) {
    let values = |attribute: &str| object.values(attribute).to_vec();
    for mapping in &object_rules.mappings {
        let value = match mapping.expression.evaluate(&values) {
            Ok(value) => value,
            Err(error) => {
                shape.issues.push(ObjectIssue::error(
                    &mapping.target.name(),
                    &mapping.text,
                    Rule::Mapping {
                        problem: error.to_string(),
                    },
                ));
                continue;
            }
        };
        match &mapping.target {
            Target::Property(property) if property == "businessPhones" => {
                let phones: Vec<String> = match value {
                    ExpressionValue::List(values) => values,
                    other => other.as_text().into_iter().collect(),
                };
                let phones: Vec<String> = phones
                    .into_iter()
                    .filter(|phone| !phone.trim().is_empty())
                    .collect();
                shape.properties.insert(property.clone(), json!(phones));
            }
            Target::Property(property) => {
                let value = as_text(&value);
                // Graph refuses a create or update without these: said here, on the object,
                // rather than as Graph's refusal after the request.
                if value.is_null() && REQUIRED.contains(&property.as_str()) {
                    shape.issues.push(ObjectIssue::error(
                        property,
                        &mapping.text,
                        Rule::Mapping {
                            problem: format!(
                                "the mapping gives no value for this object, and Graph requires {property}"
                            ),
                        },
                    ));
                    continue;
                }
                set_checked(shape, property, value);
            }
            Target::ExtensionAttribute(number) => {
                let key = format!("extensionAttribute{number}");
                let value = as_text(&value);
                if let Err(problem) = within_length(&value, 1_024) {
                    shape.issues.push(ObjectIssue::error(
                        &mapping.target.name(),
                        value.as_str().unwrap_or_default(),
                        Rule::Mapping { problem },
                    ));
                    continue;
                }
                let attributes = shape
                    .properties
                    .entry("onPremisesExtensionAttributes")
                    .or_insert(Value::Null);
                if attributes.is_null() {
                    *attributes =
                        empty_complex("onPremisesExtensionAttributes").unwrap_or_default();
                }
                if let Value::Object(attributes) = attributes {
                    attributes.insert(key, value);
                }
            }
            Target::EmployeeOrgData(field) => {
                let org_data = shape
                    .properties
                    .entry("employeeOrgData")
                    .or_insert_with(|| json!({"division": null, "costCenter": null}));
                if let Value::Object(org_data) = org_data {
                    org_data.insert(field.clone(), as_text(&value));
                }
            }
            Target::DirectoryExtension(name) => {
                let value = as_text(&value);
                // A String extension property holds up to 256 characters (Graph, "Add custom
                // data to resources using extensions").
                if let Err(problem) = within_length(&value, 256) {
                    shape.issues.push(ObjectIssue::error(
                        &mapping.target.name(),
                        value.as_str().unwrap_or_default(),
                        Rule::Mapping { problem },
                    ));
                    continue;
                }
                shape
                    .properties
                    .insert(rules.extension_property(name), value);
            }
        }
    }
}

/// Nothing, an empty text or list, or an object of empty values: what a create leaves out, and
/// what compares equal to nothing (plan, drift and the rules preview agree on it).
pub fn is_empty_value(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(values) => values.is_empty(),
        Value::String(text) => text.is_empty(),
        Value::Object(fields) => fields.values().all(is_empty_value),
        _ => false,
    }
}

/// Properties every Graph user or group has.
const REQUIRED: &[&str] = &["displayName", "mailNickname", "userPrincipalName"];

fn as_text(value: &ExpressionValue) -> Value {
    match value.as_text() {
        Some(text) if !text.trim().is_empty() => json!(text),
        _ => Value::Null,
    }
}

fn within_length(value: &Value, max_chars: usize) -> Result<(), String> {
    match value.as_str() {
        Some(text) if text.chars().count() > max_chars => Err(format!(
            "is {} characters long; Graph keeps at most {max_chars}",
            text.chars().count()
        )),
        _ => Ok(()),
    }
}

/// Sets `property`, checking what Graph checks of it; a value it would refuse is an error on
/// the object instead.
fn set_checked(shape: &mut CloudShape, property: &str, value: Value) {
    let refused = value.as_str().and_then(|text| match property {
        "usageLocation" => {
            let code = text.trim().to_uppercase();
            let valid = code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase());
            (!valid).then(|| {
                format!("'{text}' is not a two-letter country code (ISO 3166-1, say DE)")
            })
        }
        "employeeHireDate" => crate::credential_expiry::parse_rfc3339(text)
            .is_none()
            .then(|| {
                format!(
                    "'{text}' is not a date and time (2021-05-01T00:00:00Z); FormatDateTime converts AD's forms"
                )
            }),
        "preferredLanguage" => {
            let valid = text.len() <= 16
                && text.split('-').all(|part| {
                    (2..=8).contains(&part.len()) && part.chars().all(|c| c.is_ascii_alphanumeric())
                });
            (!valid).then(|| format!("'{text}' is not a language tag (ISO 639-1, say en-US)"))
        }
        _ => None,
    });
    if let Some(problem) = refused {
        shape.issues.push(ObjectIssue::error(
            property,
            value.as_str().unwrap_or_default(),
            Rule::Mapping { problem },
        ));
        return;
    }
    let value = match (property, value) {
        ("usageLocation", Value::String(code)) => json!(code.trim().to_uppercase()),
        (_, value) => value,
    };
    shape.properties.insert(property.to_owned(), value);
}

/// groupType bit: a security group (else a distribution group).
const GROUP_TYPE_SECURITY: i64 = 0x8000_0000;

fn group_shape(object: &DirectoryObject) -> CloudShape {
    let mut properties = Map::new();
    let mut issues = Vec::new();
    let group_type: i64 = object
        .first("groupType")
        .and_then(|value| value.parse().ok())
        .unwrap_or(GROUP_TYPE_SECURITY);
    // AD stores groupType as a signed 32-bit number: the security bit makes it negative.
    if group_type & GROUP_TYPE_SECURITY == 0 {
        issues.push(ObjectIssue {
            attribute: "groupType".to_owned(),
            value: group_type.to_string(),
            rule: Rule::DistributionGroup,
            severity: Severity::Error,
        });
    }
    properties.insert(
        "displayName".to_owned(),
        match text(object, "displayName") {
            Value::Null => text(object, "name"),
            name => name,
        },
    );
    properties.insert("description".to_owned(), text(object, "description"));
    properties.insert(
        "mailNickname".to_owned(),
        mail_nickname(object).map_or(Value::Null, Value::String),
    );
    // Graph creates security groups only; mail-enabled ones belong to Exchange.
    properties.insert("securityEnabled".to_owned(), json!(true));
    properties.insert("mailEnabled".to_owned(), json!(false));
    CloudShape {
        properties,
        manager: None,
        members: object
            .values("member")
            .iter()
            .filter_map(|dn| Dn::parse(dn).ok())
            .collect(),
        issues,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guid::Guid;

    fn object(kind: ObjectKind, attributes: &[(&str, &[&str])]) -> DirectoryObject {
        DirectoryObject {
            anchor: Guid([7; 16]),
            dn: Dn::parse("CN=Ann Lee,OU=Sales,DC=corp,DC=test").expect("valid"),
            kind,
            attributes: attributes
                .iter()
                .map(|(name, values)| {
                    (
                        (*name).to_owned(),
                        values.iter().map(|v| (*v).to_owned()).collect(),
                    )
                })
                .collect(),
            object_sid: None,
            problems: Vec::new(),
        }
    }

    fn domains() -> TenantDomains {
        TenantDomains {
            verified: vec![
                "Contoso.test".to_owned(),
                "contoso.onmicrosoft.com".to_owned(),
            ],
            initial: "contoso.onmicrosoft.com".to_owned(),
        }
    }

    #[test]
    fn a_user_flows_every_attribute_of_spec_5() {
        let ann = object(
            ObjectKind::User,
            &[
                ("userPrincipalName", &["ann.lee@contoso.test"]),
                ("displayName", &["Ann Lee"]),
                ("givenName", &["Ann"]),
                ("sn", &["Lee"]),
                ("mail", &["ann.lee@contoso.test"]),
                (
                    "proxyAddresses",
                    &["smtp:al@contoso.test", "SMTP:ann.lee@contoso.test"],
                ),
                ("userAccountControl", &["514"]),
                ("title", &["Buyer"]),
                ("telephoneNumber", &["+33 1 23"]),
                ("co", &["France"]),
                ("c", &["FR"]),
                ("manager", &["CN=Boss,OU=Sales,DC=corp,DC=test"]),
            ],
        );
        let shape = cloud_shape(&ann, &domains(), &SyncRules::default());
        let p = &shape.properties;
        assert_eq!(p["userPrincipalName"], "ann.lee@contoso.test");
        assert_eq!(p["mailNickname"], "ann.lee");
        assert_eq!(p["accountEnabled"], false);
        assert_eq!(p["jobTitle"], "Buyer");
        assert_eq!(p["businessPhones"], json!(["+33 1 23"]));
        assert_eq!(p["country"], "France");
        // Cleared in AD means cleared in the cloud.
        assert_eq!(p["department"], Value::Null);
        assert_eq!(p["onPremisesImmutableId"], "BwcHBwcHBwcHBwcHBwcHBw==");
        assert!(!p.contains_key("proxyAddresses"), "read-only in Graph");
        assert_eq!(
            shape.manager.map(|dn| dn.to_string()).as_deref(),
            Some("CN=Boss,OU=Sales,DC=corp,DC=test")
        );
        assert!(shape.issues.is_empty());
    }

    #[test]
    fn usage_location_and_extension_attributes_flow_by_default() {
        let plain = object(ObjectKind::User, &[("c", &["fr"])]);
        let shape = cloud_shape(&plain, &domains(), &SyncRules::default());
        assert_eq!(shape.properties["usageLocation"], "FR");
        assert_eq!(
            shape.properties["onPremisesExtensionAttributes"],
            Value::Null,
            "nothing set: null, not fifteen nulls"
        );
        let exchange = object(
            ObjectKind::User,
            &[
                ("c", &["FR"]),
                ("msExchUsageLocation", &["NO"]),
                ("extensionAttribute3", &["cc-4711"]),
            ],
        );
        let shape = cloud_shape(&exchange, &domains(), &SyncRules::default());
        assert_eq!(shape.properties["usageLocation"], "NO");
        let attributes = &shape.properties["onPremisesExtensionAttributes"];
        assert_eq!(attributes["extensionAttribute3"], "cc-4711");
        assert_eq!(
            attributes.as_object().map(Map::len),
            Some(15),
            "all fifteen, so that one cleared in AD is cleared in the cloud"
        );
        let wrong = object(ObjectKind::User, &[("c", &["FRA"])]);
        let shape = cloud_shape(&wrong, &domains(), &SyncRules::default());
        assert!(shape.has_errors());
        assert_eq!(shape.issues[0].attribute, "usageLocation");
        assert_eq!(
            empty_complex("onPremisesExtensionAttributes")
                .and_then(|value| value.as_object().map(Map::len)),
            Some(15)
        );
    }

    #[test]
    fn an_unverified_suffix_moves_the_user_to_the_initial_domain_with_a_warning() {
        let liam = object(
            ObjectKind::User,
            &[
                ("userPrincipalName", &["liam.wilson@fabrikam.invalid"]),
                ("mail", &["liam.wilson@fabrikam.invalid"]),
                ("proxyAddresses", &["SMTP:lw@fabrikam.invalid"]),
            ],
        );
        let shape = cloud_shape(&liam, &domains(), &SyncRules::default());
        assert_eq!(
            shape.properties["userPrincipalName"],
            "lw@contoso.onmicrosoft.com"
        );
        assert!(!shape.has_errors());
        assert_eq!(shape.issues.len(), 1);
        assert_eq!(shape.issues[0].severity, Severity::Warning);
        assert!(
            shape.issues[0]
                .hint()
                .contains("signs in as lw@contoso.onmicrosoft.com")
        );
    }

    #[test]
    fn the_nickname_comes_from_the_first_source_that_has_one() {
        let only_sam = object(ObjectKind::User, &[("sAMAccountName", &["ann"])]);
        assert_eq!(mail_nickname(&only_sam).as_deref(), Some("ann"));
        let with_upn = object(
            ObjectKind::User,
            &[
                ("sAMAccountName", &["ann"]),
                ("userPrincipalName", &["a.lee@x.test"]),
            ],
        );
        assert_eq!(mail_nickname(&with_upn).as_deref(), Some("a.lee"));
        let with_mail = object(
            ObjectKind::User,
            &[
                ("userPrincipalName", &["a.lee@x.test"]),
                ("mail", &["ann@x.test"]),
            ],
        );
        assert_eq!(mail_nickname(&with_mail).as_deref(), Some("ann"));
        let with_own = object(
            ObjectKind::User,
            &[("mail", &["ann@x.test"]), ("mailNickname", &["annl"])],
        );
        assert_eq!(mail_nickname(&with_own).as_deref(), Some("annl"));
    }

    #[test]
    fn groups_are_security_groups_with_their_members() {
        let finance = object(
            ObjectKind::Group,
            &[
                ("name", &["Finance"]),
                ("groupType", &["-2147483646"]),
                ("sAMAccountName", &["finance"]),
                (
                    "member",
                    &[
                        "CN=Ann Lee,OU=Sales,DC=corp,DC=test",
                        "CN=Bob,OU=Sales,DC=corp,DC=test",
                    ],
                ),
            ],
        );
        let shape = cloud_shape(&finance, &domains(), &SyncRules::default());
        assert_eq!(shape.properties["displayName"], "Finance");
        assert_eq!(shape.properties["mailNickname"], "finance");
        assert_eq!(shape.properties["securityEnabled"], true);
        assert_eq!(shape.properties["mailEnabled"], false);
        assert_eq!(shape.members.len(), 2);
        assert!(!shape.has_errors());

        let distribution = object(
            ObjectKind::Group,
            &[("name", &["All"]), ("groupType", &["2"])],
        );
        let shape = cloud_shape(&distribution, &domains(), &SyncRules::default());
        assert!(shape.has_errors());
        assert_eq!(shape.issues[0].rule, Rule::DistributionGroup);
    }
}
