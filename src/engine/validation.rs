//! Checks an object's values before export, with IdFix's rules (Microsoft's directory
//! remediation tool): a value the cloud would refuse becomes an object-level error that names the
//! attribute, the value and the rule, and says what to fix in AD. It never stops a run.
//!
//! Pure: no I/O, so every rule is unit-tested here.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use super::addresses::smtp_address;
use crate::directory::objects::DirectoryObject;

/// How much an issue matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The object is not exported.
    Error,
    /// The object is exported, with a change the admin should know about.
    Warning,
}

/// The rule a value broke.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "rule", rename_all = "kebab-case")]
pub enum Rule {
    InvalidCharacter {
        character: char,
    },
    TooLong {
        max_chars: usize,
    },
    LocalPartTooLong {
        max_chars: usize,
    },
    NotAnAddress,
    LeadingPeriod,
    Duplicate {
        other_dn: String,
    },
    NotText,
    /// A sync rule's mapping could not make the property's value for this object (README, "Sync
    /// rules").
    Mapping {
        problem: String,
    },
    UnverifiedSuffix {
        replacement: String,
    },
    DistributionGroup,
    InvalidSoftMatch {
        cloud_id: String,
        holder: String,
    },
    /// A cloud group dirsync did not make (or a Microsoft 365 group) has the group's
    /// mailNickname: dirsync never takes over a group it cannot prove it made.
    GroupNotOurs {
        cloud_id: String,
        display_name: String,
        microsoft_365: bool,
    },
    /// The cloud user the object would join holds directory roles (empty: they could not be
    /// read), and Entra never matches an on-premises user to a cloud administrator.
    PrivilegedCloudAccount {
        cloud_id: String,
        roles: Vec<String>,
    },
    /// `mail` is not the primary SMTP address in proxyAddresses (IdFix's check; `dirsync check`
    /// only: a cycle syncs the object as it is).
    MailNotPrimary {
        primary: String,
    },
}

/// One problem with one value of one object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ObjectIssue {
    pub attribute: String,
    pub value: String,
    pub rule: Rule,
    pub severity: Severity,
}

impl Rule {
    /// The rule's stable name, as run records store it.
    pub fn word(&self) -> &'static str {
        match self {
            Rule::InvalidCharacter { .. } => "invalid-character",
            Rule::TooLong { .. } => "too-long",
            Rule::LocalPartTooLong { .. } => "local-part-too-long",
            Rule::NotAnAddress => "not-an-address",
            Rule::LeadingPeriod => "leading-period",
            Rule::Duplicate { .. } => "duplicate",
            Rule::NotText => "not-text",
            Rule::Mapping { .. } => "mapping",
            Rule::UnverifiedSuffix { .. } => "unverified-suffix",
            Rule::DistributionGroup => "distribution-group",
            Rule::InvalidSoftMatch { .. } => "invalid-soft-match",
            Rule::GroupNotOurs { .. } => "group-not-ours",
            Rule::PrivilegedCloudAccount { .. } => "privileged-cloud-account",
            Rule::MailNotPrimary { .. } => "mail-not-primary",
        }
    }
}

impl ObjectIssue {
    /// What is wrong, stated plainly with the attribute and its value (the run record's message
    /// for an error dirsync found itself rather than one a server answered).
    pub fn statement(&self) -> String {
        let (attribute, value) = (&self.attribute, &self.value);
        match &self.rule {
            Rule::InvalidCharacter { character } => format!(
                "{attribute} '{value}' contains the character '{}', which the cloud does not accept",
                character.escape_default()
            ),
            Rule::TooLong { max_chars } => {
                format!("{attribute} '{value}' is longer than {max_chars} characters")
            }
            Rule::LocalPartTooLong { max_chars } => {
                format!("{attribute} '{value}' has more than {max_chars} characters before the '@'")
            }
            Rule::NotAnAddress => format!("{attribute} '{value}' is not an address"),
            Rule::LeadingPeriod => format!("{attribute} '{value}' starts with a period"),
            Rule::Duplicate { other_dn } => {
                format!("{attribute} '{value}' is also used by {other_dn}")
            }
            Rule::NotText => format!("{attribute}: {value}"),
            Rule::Mapping { problem } => format!("{attribute}: {problem}"),
            Rule::UnverifiedSuffix { replacement } => format!(
                "{attribute} '{value}' has a domain the tenant has not verified; exported as {replacement}"
            ),
            Rule::DistributionGroup => {
                format!("the group is a distribution group (groupType {value})")
            }
            Rule::InvalidSoftMatch { cloud_id, holder } => format!(
                "InvalidSoftMatch: the cloud object {cloud_id} matches on {attribute} but belongs to {holder}"
            ),
            Rule::GroupNotOurs {
                cloud_id,
                display_name,
                microsoft_365,
            } => format!(
                "the cloud {} '{display_name}' ({cloud_id}) has the {attribute} '{value}', and dirsync did not create it",
                if *microsoft_365 {
                    "Microsoft 365 group"
                } else {
                    "group"
                }
            ),
            Rule::PrivilegedCloudAccount { cloud_id, roles } if roles.is_empty() => format!(
                "the cloud user {cloud_id} matches on {attribute}, and whether it holds a directory role could not be read"
            ),
            Rule::PrivilegedCloudAccount { cloud_id, roles } => format!(
                "the cloud user {cloud_id} matches on {attribute} but holds the directory role{} {}; a cloud administrator is never matched to an on-premises user",
                if roles.len() == 1 { "" } else { "s" },
                roles.join(", ")
            ),
            Rule::MailNotPrimary { primary } => {
                format!("{attribute} '{value}' is not the primary SMTP address ({primary})")
            }
        }
    }

    pub fn error(attribute: &str, value: &str, rule: Rule) -> Self {
        ObjectIssue {
            attribute: attribute.to_owned(),
            value: value.to_owned(),
            rule,
            severity: Severity::Error,
        }
    }

    /// What the administrator should do, in plain words.
    pub fn hint(&self) -> String {
        let attribute = &self.attribute;
        match &self.rule {
            Rule::InvalidCharacter { character } => format!(
                "{attribute} may not contain '{}'; change it in Active Directory",
                character.escape_default()
            ),
            Rule::TooLong { max_chars } => format!(
                "{attribute} is longer than {max_chars} characters; shorten it in Active Directory"
            ),
            Rule::LocalPartTooLong { max_chars } => format!(
                "the part of {attribute} before '@' is longer than {max_chars} characters; shorten it in Active Directory"
            ),
            Rule::NotAnAddress => {
                format!("{attribute} must have the form name@domain; correct it in Active Directory")
            }
            Rule::LeadingPeriod => {
                format!("{attribute} may not start with '.'; change it in Active Directory")
            }
            Rule::Duplicate { other_dn } => format!(
                "every object needs its own {attribute}: change it on this object or on {other_dn} in Active Directory"
            ),
            Rule::NotText => format!(
                "a value of {attribute} is not valid text (UTF-8); rewrite it in Active Directory"
            ),
            Rule::Mapping { .. } => format!(
                "fix the value in Active Directory, or the sync rules' mapping for {attribute} (`dirsync rules test` shows what it gives)"
            ),
            Rule::UnverifiedSuffix { replacement } => format!(
                "the domain of {attribute} is not a verified domain of the tenant, so the user signs in as {replacement}; verify the domain in the tenant, or change the UPN suffix in Active Directory"
            ),
            Rule::DistributionGroup => "Microsoft Graph cannot create distribution groups; make it a security group in Active Directory, or leave it out of the scope".to_owned(),
            Rule::InvalidSoftMatch { cloud_id, holder } => format!(
                "the cloud object {cloud_id} has this object's address but belongs to {holder}; remove the address from one of them, or delete the cloud object if it is stale (InvalidSoftMatch)"
            ),
            Rule::MailNotPrimary { primary } => format!(
                "set mail to {primary} in AD (or make '{}' the primary address, SMTP: in capitals): Exchange Online shows the primary address, so the two should agree",
                self.value
            ),
            Rule::PrivilegedCloudAccount { roles, .. } if roles.is_empty() => "the sync app needs the application permission RoleManagement.Read.Directory to check that it never takes over a cloud administrator: run setup again to grant it".to_owned(),
            Rule::PrivilegedCloudAccount { cloud_id, .. } => format!(
                "Microsoft Entra ID does not match on-premises users to cloud users that hold an admin role, and neither does dirsync (Microsoft Entra Connect: When you have an existing tenant, \"Admin role considerations\"). Either keep them apart (give the AD user another mail address and UPN), or remove the roles from the cloud user {cloud_id}, let a sync match it, and assign the roles again"
            ),
            Rule::GroupNotOurs {
                cloud_id,
                microsoft_365: true,
                ..
            } => format!(
                "dirsync neither changes nor deletes a Microsoft 365 group, so this group is not synchronized while the Microsoft 365 group {cloud_id} has its {attribute}: give one of the two another {attribute} (in AD: mailNickname, or sAMAccountName when it has none)"
            ),
            Rule::GroupNotOurs { cloud_id, .. } => format!(
                "dirsync neither changes nor deletes a cloud group it did not create, so this group is not synchronized while the cloud group {cloud_id} has its {attribute}. If it is this group's copy, let dirsync take it over: `dirsync match-group --dn <this group's DN> --cloud-id {cloud_id}` (or \"Take it over\" in the dashboard's error details); otherwise give one of the two another {attribute} (in AD: mailNickname, or sAMAccountName when it has none), or delete the cloud group if it is stale"
            ),
        }
    }
}

/// Characters IdFix refuses in a userPrincipalName (besides whitespace).
const UPN_INVALID: &[char] = &[
    '\\', '%', '&', '*', '+', '/', '=', '?', '{', '}', '|', '<', '>', '(', ')', ';', ':', ',', '[',
    ']', '"',
];
/// Characters IdFix refuses in an alias (mailNickname, and the sAMAccountName it falls back to),
/// besides whitespace.
const ALIAS_INVALID: &[char] = &[
    '\\', '!', '#', '$', '%', '&', '*', '+', '/', '=', '?', '^', '`', '{', '}', '|', '~', '<', '>',
    '(', ')', '\'', ';', ':', ',', '[', ']', '"', '@',
];
/// Characters IdFix refuses in an SMTP proxy address (besides whitespace).
const PROXY_INVALID: &[char] = &['<', '>', '(', ')', ';', ',', '[', ']', '"'];

/// Entra ID's limits: a UPN of 113 characters, at most 64 of them before the '@'
/// (https://learn.microsoft.com/en-us/entra/identity/hybrid/connect/plan-connect-userprincipalname).
pub const UPN_MAX_CHARS: usize = 113;
pub const UPN_LOCAL_MAX_CHARS: usize = 64;
pub const PROXY_ADDRESS_MAX_CHARS: usize = 256;
pub const DISPLAY_NAME_MAX_CHARS: usize = 255;

/// Checks a userPrincipalName.
pub fn check_upn(upn: &str) -> Vec<ObjectIssue> {
    let attribute = "userPrincipalName";
    let mut issues = Vec::new();
    if let Some(character) = upn
        .chars()
        .find(|c| c.is_whitespace() || UPN_INVALID.contains(c))
    {
        issues.push(ObjectIssue::error(
            attribute,
            upn,
            Rule::InvalidCharacter { character },
        ));
    }
    if upn.chars().count() > UPN_MAX_CHARS {
        issues.push(ObjectIssue::error(
            attribute,
            upn,
            Rule::TooLong {
                max_chars: UPN_MAX_CHARS,
            },
        ));
    }
    match upn.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') =>
        {
            if local.chars().count() > UPN_LOCAL_MAX_CHARS {
                issues.push(ObjectIssue::error(
                    attribute,
                    upn,
                    Rule::LocalPartTooLong {
                        max_chars: UPN_LOCAL_MAX_CHARS,
                    },
                ));
            }
        }
        _ => issues.push(ObjectIssue::error(attribute, upn, Rule::NotAnAddress)),
    }
    issues
}

/// Checks one proxy address (`SMTP:…`, `smtp:…`, `X500:…`). The character rule is for SMTP
/// addresses only: an X500 address is an Exchange DN, whose spaces and parentheses
/// ("Exchange Administrative Group (FYDIBOHF23SPDLT)") are normal, and hybrid write-back adds
/// such addresses itself.
pub fn check_proxy_address(address: &str) -> Vec<ObjectIssue> {
    let attribute = "proxyAddresses";
    let mut issues = Vec::new();
    let is_smtp = address
        .get(..5)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("smtp:"));
    let invalid = |c: &char| c.is_whitespace() || PROXY_INVALID.contains(c);
    if let Some(character) = address.chars().find(invalid).filter(|_| is_smtp) {
        issues.push(ObjectIssue::error(
            attribute,
            address,
            Rule::InvalidCharacter { character },
        ));
    }
    if address.chars().count() > PROXY_ADDRESS_MAX_CHARS {
        issues.push(ObjectIssue::error(
            attribute,
            address,
            Rule::TooLong {
                max_chars: PROXY_ADDRESS_MAX_CHARS,
            },
        ));
    }
    issues
}

/// Every rule that looks at one object alone.
pub fn check_object(object: &DirectoryObject) -> Vec<ObjectIssue> {
    let mut issues: Vec<ObjectIssue> = object
        .problems
        .iter()
        .map(|problem| ObjectIssue::error(&problem.attribute, &problem.problem, Rule::NotText))
        .collect();
    if let Some(upn) = object.first("userPrincipalName") {
        issues.extend(check_upn(upn));
    }
    for address in object.values("proxyAddresses") {
        issues.extend(check_proxy_address(address));
    }
    // IdFix's alias rule, on both sources of an on-premises alias: mailNickname and the
    // sAMAccountName (Exchange and Entra Connect fall back to it).
    for attribute in ["mailNickname", "sAMAccountName"] {
        if let Some(alias) = object.first(attribute)
            && let Some(character) = alias
                .chars()
                .find(|c| c.is_whitespace() || ALIAS_INVALID.contains(c))
        {
            issues.push(ObjectIssue::error(
                attribute,
                alias,
                Rule::InvalidCharacter { character },
            ));
        }
    }
    if let Some(nickname) = object.first("mailNickname")
        && nickname.starts_with('.')
    {
        issues.push(ObjectIssue::error(
            "mailNickname",
            nickname,
            Rule::LeadingPeriod,
        ));
    }
    if let Some(name) = object.first("displayName")
        && name.chars().count() > DISPLAY_NAME_MAX_CHARS
    {
        issues.push(ObjectIssue::error(
            "displayName",
            name,
            Rule::TooLong {
                max_chars: DISPLAY_NAME_MAX_CHARS,
            },
        ));
    }
    issues
}

/// Values that must be unique in the tenant and are used twice inside the scope: every object
/// that uses one gets an error naming the other. userPrincipalName, mail and SMTP proxy
/// addresses compare without case, as the cloud compares them.
pub fn find_duplicates<'a>(
    objects: impl IntoIterator<Item = &'a DirectoryObject>,
) -> BTreeMap<usize, Vec<ObjectIssue>> {
    let objects: Vec<&DirectoryObject> = objects.into_iter().collect();
    // (attribute, lowercase value) → the first object that uses it, by index. Only the key is
    // kept: the values as written and the DNs are looked up again for the few that collide.
    let mut first_user: BTreeMap<(&'static str, String), usize> = BTreeMap::new();
    // The same key → every object that uses it, only for the values that a second object uses.
    let mut collisions: BTreeMap<(&'static str, String), Vec<usize>> = BTreeMap::new();
    for (index, object) in objects.iter().enumerate() {
        unique_values(object, |attribute, value| {
            match first_user.entry((attribute, value.to_lowercase())) {
                Entry::Vacant(entry) => {
                    entry.insert(index);
                }
                // The same object using a value twice is no duplicate.
                Entry::Occupied(entry) if *entry.get() == index => {}
                Entry::Occupied(entry) => {
                    let users = collisions
                        .entry(entry.key().clone())
                        .or_insert_with(|| vec![*entry.get()]);
                    // Objects come in order, so a repeat by the same object is the last one.
                    if users.last() != Some(&index) {
                        users.push(index);
                    }
                }
            }
        });
    }
    let mut issues: BTreeMap<usize, Vec<ObjectIssue>> = BTreeMap::new();
    for ((attribute, key), users) in collisions {
        for &this in &users {
            // The other object named is the first one, or for the first one the second.
            let other = if this == users[0] { users[1] } else { users[0] };
            let other_dn = objects[other].dn.to_string();
            let list = issues.entry(this).or_default();
            // Every use of the value by this object, as written (an object may use it twice).
            unique_values(objects[this], |used_attribute, value| {
                if used_attribute != attribute || value.to_lowercase() != key {
                    return;
                }
                let issue = ObjectIssue::error(
                    attribute,
                    value,
                    Rule::Duplicate {
                        other_dn: other_dn.clone(),
                    },
                );
                if !list.contains(&issue) {
                    list.push(issue);
                }
            });
        }
    }
    issues
}

/// Calls `found` with each value of the object that must be unique in the tenant: its
/// userPrincipalName, its mail and its SMTP proxy addresses (as `smtp:…`).
fn unique_values(object: &DirectoryObject, mut found: impl FnMut(&'static str, &str)) {
    if let Some(upn) = object.first("userPrincipalName") {
        found("userPrincipalName", upn);
    }
    if let Some(mail) = object.first("mail") {
        found("mail", mail);
    }
    for address in object.values("proxyAddresses") {
        // Only SMTP addresses must be unique; the prefix's case only marks the primary.
        if let Some(smtp) = smtp_address(address) {
            found("proxyAddresses", &format!("smtp:{smtp}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Dn;
    use crate::directory::objects::ObjectKind;
    use crate::guid::Guid;

    fn user(n: u8, attributes: &[(&str, &[&str])]) -> DirectoryObject {
        DirectoryObject {
            anchor: Guid([n; 16]),
            dn: Dn::parse(&format!("CN=User {n},OU=Corp,DC=corp,DC=test")).expect("valid"),
            kind: ObjectKind::User,
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

    fn rules(issues: &[ObjectIssue]) -> Vec<&Rule> {
        issues.iter().map(|issue| &issue.rule).collect()
    }

    #[test]
    fn upns_follow_idfix() {
        assert!(check_upn("ann.lee@contoso.test").is_empty());
        assert_eq!(
            rules(&check_upn("ann lee@contoso.test")),
            [&Rule::InvalidCharacter { character: ' ' }]
        );
        assert_eq!(
            rules(&check_upn("ann+1@contoso.test")),
            [&Rule::InvalidCharacter { character: '+' }]
        );
        assert_eq!(rules(&check_upn("ann.contoso.test")), [&Rule::NotAnAddress]);
        assert_eq!(rules(&check_upn("a@b@c")), [&Rule::NotAnAddress]);
        let long_local = format!("{}@contoso.test", "a".repeat(65));
        assert_eq!(
            rules(&check_upn(&long_local)),
            [&Rule::LocalPartTooLong { max_chars: 64 }]
        );
        assert!(check_upn(&format!("{}@contoso.test", "a".repeat(64))).is_empty());
        let long = format!("{}@{}.test", "a".repeat(60), "b".repeat(60));
        assert_eq!(
            rules(&check_upn(&long)),
            [&Rule::TooLong { max_chars: 113 }]
        );
    }

    #[test]
    fn proxy_addresses_follow_idfix() {
        assert!(check_proxy_address("SMTP:ann@contoso.test").is_empty());
        assert!(check_proxy_address("X500:/o=Contoso/ou=Exchange/cn=Recipients/cn=ann").is_empty());
        assert!(
            check_proxy_address(
                "X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=ann"
            )
            .is_empty()
        );
        assert_eq!(
            rules(&check_proxy_address("smtp:ann (old)@contoso.test")),
            [&Rule::InvalidCharacter { character: ' ' }]
        );
        assert_eq!(
            rules(&check_proxy_address(&format!(
                "smtp:{}@x.test",
                "a".repeat(260)
            ))),
            [&Rule::TooLong { max_chars: 256 }]
        );
    }

    #[test]
    fn an_object_reports_every_broken_value_with_a_hint() {
        let mut object = user(
            1,
            &[
                ("userPrincipalName", &["bad,upn@contoso.test"]),
                ("mailNickname", &[".ann"]),
                (
                    "proxyAddresses",
                    &["SMTP:ann@contoso.test", "smtp:a[1]@contoso.test"],
                ),
            ],
        );
        object
            .problems
            .push(crate::directory::objects::ValueProblem {
                attribute: "description".to_owned(),
                problem: "a value of 3 bytes is not valid UTF-8 text and was left out".to_owned(),
            });
        let issues = check_object(&object);
        let attributes: Vec<&str> = issues
            .iter()
            .map(|issue| issue.attribute.as_str())
            .collect();
        assert_eq!(
            attributes,
            [
                "description",
                "userPrincipalName",
                "proxyAddresses",
                "mailNickname"
            ]
        );
        assert!(issues.iter().all(|issue| issue.severity == Severity::Error));
        assert_eq!(
            issues[1].hint(),
            "userPrincipalName may not contain ','; change it in Active Directory"
        );
        assert!(issues[3].hint().contains("may not start with '.'"));
    }

    #[test]
    fn duplicates_in_scope_are_errors_on_both_objects() {
        let ann = user(
            1,
            &[
                ("userPrincipalName", &["ann@contoso.test"]),
                (
                    "proxyAddresses",
                    &["SMTP:ann@contoso.test", "smtp:shared@contoso.test"],
                ),
            ],
        );
        let bob = user(
            2,
            &[
                ("userPrincipalName", &["bob@contoso.test"]),
                (
                    "proxyAddresses",
                    &["SMTP:bob@contoso.test", "SMTP:Shared@contoso.test"],
                ),
            ],
        );
        let cy = user(3, &[("userPrincipalName", &["ANN@contoso.test"])]);
        let found = find_duplicates([&ann, &bob, &cy]);
        let on_ann: Vec<(&str, &str)> = found[&0]
            .iter()
            .map(|i| (i.attribute.as_str(), i.value.as_str()))
            .collect();
        assert_eq!(
            on_ann,
            [
                ("proxyAddresses", "smtp:shared@contoso.test"),
                ("userPrincipalName", "ann@contoso.test")
            ]
        );
        assert_eq!(found[&1].len(), 1);
        assert!(
            matches!(&found[&1][0].rule, Rule::Duplicate { other_dn } if other_dn.starts_with("CN=User 1"))
        );
        assert!(found[&1][0].hint().contains("or on CN=User 1"));
        assert_eq!(found[&2].len(), 1);
        // The same address twice on one object is not a duplicate.
        let same = user(
            4,
            &[(
                "proxyAddresses",
                &["SMTP:d@contoso.test", "smtp:d@contoso.test"],
            )],
        );
        assert!(find_duplicates([&same]).is_empty());
    }
}
