//! `dirsync check`: IdFix, built in (README, "Checking the directory before syncing"). Every
//! rule a cycle applies, over every object of a scope at once, each finding with the attribute,
//! the value, the rule and, where one can be made, a suggested value. Pure: the caller reads the
//! objects (and the tenant's domains, when it can) and prints the findings.

use std::collections::HashMap;

use serde::Serialize;

use super::addresses::smtp_address;
use super::attribute_flow::{TenantDomains, cloud_shape, primary_smtp};
use super::validation::{
    ObjectIssue, Rule, Severity, check_object, check_proxy_address, find_duplicates,
};
use crate::directory::objects::{DirectoryObject, ObjectKind};
use crate::rules::SyncRules;

/// One thing to fix before (or while) syncing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub dn: String,
    pub object_type: ObjectKind,
    pub attribute: String,
    pub value: String,
    /// The rule's stable name (`invalid-character`, `duplicate`, …).
    pub rule: &'static str,
    /// `error`: the object is not synced until fixed; `warning`: synced, with a remark.
    pub severity: &'static str,
    pub problem: String,
    pub fix: String,
    /// A value that passes the rule, when one follows from the value itself.
    pub suggested: Option<String>,
}

/// Checks `objects` (one scope, read in full): each object's own rules, values used twice
/// inside the scope, and IdFix's remaining checks. `domains`: the tenant's, when they could be
/// read (without them a UPN suffix is not checked against the verified domains).
pub fn check(
    objects: &[DirectoryObject],
    domains: Option<&TenantDomains>,
    rules: &SyncRules,
) -> Vec<Finding> {
    let objects: Vec<&DirectoryObject> = objects
        .iter()
        .filter(|object| !object.is_system_object())
        .collect();
    let every_suffix;
    let domains = match domains {
        Some(domains) => domains,
        None => {
            // Every suffix counts as verified: the rule needs the tenant.
            every_suffix = TenantDomains {
                verified: objects
                    .iter()
                    .filter_map(|object| object.first("userPrincipalName"))
                    .filter_map(|upn| upn.rsplit_once('@').map(|(_, domain)| domain.to_owned()))
                    .collect(),
                initial: String::new(),
            };
            &every_suffix
        }
    };
    let mut duplicates = find_duplicates(objects.iter().copied());
    let addresses = addresses_in_use(&objects);
    let mut findings = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        let mut issues = check_object(object);
        for issue in cloud_shape(object, domains, rules).issues {
            if !issues.contains(&issue) {
                issues.push(issue);
            }
        }
        issues.extend(duplicates.remove(&index).unwrap_or_default());
        issues.extend(idfix_only(object));
        issues.extend(target_address(&objects, index, &addresses));
        findings.extend(issues.iter().map(|issue| finding(object, issue)));
    }
    findings
}

/// IdFix's checks that a cycle does not make itself: characters outside ASCII in a
/// userPrincipalName (Entra ID takes only ASCII letters, digits and a few marks there) and a
/// `mail` that is not the primary SMTP address (Exchange Online then shows another address than
/// on-premises).
fn idfix_only(object: &DirectoryObject) -> Vec<ObjectIssue> {
    let mut issues = Vec::new();
    if let Some(upn) = object.first("userPrincipalName")
        && let Some(character) = upn.chars().find(|c| !c.is_ascii())
    {
        issues.push(ObjectIssue::error(
            "userPrincipalName",
            upn,
            Rule::InvalidCharacter { character },
        ));
    }
    if object.kind == ObjectKind::User
        && let (Some(mail), Some(primary)) = (object.first("mail"), primary_smtp(object))
        && !mail.eq_ignore_ascii_case(primary)
    {
        issues.push(ObjectIssue {
            attribute: "mail".to_owned(),
            value: mail.to_owned(),
            rule: Rule::MailNotPrimary {
                primary: primary.to_owned(),
            },
            severity: Severity::Warning,
        });
    }
    issues
}

/// Every SMTP address an object uses (mail, SMTP proxy addresses, targetAddress), lower case,
/// with the objects (by index) using it.
fn addresses_in_use(objects: &[&DirectoryObject]) -> HashMap<String, Vec<usize>> {
    let mut in_use: HashMap<String, Vec<usize>> = HashMap::new();
    for (index, object) in objects.iter().enumerate() {
        let mail = object.first("mail");
        let proxies = object
            .values("proxyAddresses")
            .iter()
            .filter_map(|address| smtp_address(address));
        let target = object.first("targetAddress").and_then(smtp_address);
        for address in mail.into_iter().chain(proxies).chain(target) {
            let users = in_use.entry(address.to_lowercase()).or_default();
            if users.last() != Some(&index) {
                users.push(index);
            }
        }
    }
    in_use
}

/// IdFix's targetAddress rules (the address Exchange routes an on-premises mail user's mail to,
/// in a hybrid): an SMTP address (`SMTP:` and one '@'), without the characters an SMTP proxy
/// address may not have, at most 256 characters, and no other object's address. dirsync does
/// not sync targetAddress, so these are warnings: Exchange Online refuses such objects.
fn target_address(
    objects: &[&DirectoryObject],
    index: usize,
    addresses: &HashMap<String, Vec<usize>>,
) -> Vec<ObjectIssue> {
    let attribute = "targetAddress";
    let Some(value) = objects[index].first(attribute) else {
        return Vec::new();
    };
    let warning = |rule: Rule| ObjectIssue {
        attribute: attribute.to_owned(),
        value: value.to_owned(),
        rule,
        severity: Severity::Warning,
    };
    let Some(address) = smtp_address(value).filter(|address| {
        address.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        })
    }) else {
        return vec![warning(Rule::NotAnAddress)];
    };
    let mut issues: Vec<ObjectIssue> = check_proxy_address(value)
        .into_iter()
        .map(|issue| warning(issue.rule))
        .collect();
    if let Some(other) = addresses
        .get(&address.to_lowercase())
        .and_then(|users| users.iter().find(|&&user| user != index))
    {
        issues.push(warning(Rule::Duplicate {
            other_dn: objects[*other].dn.to_string(),
        }));
    }
    issues
}

fn finding(object: &DirectoryObject, issue: &ObjectIssue) -> Finding {
    Finding {
        dn: object.dn.to_string(),
        object_type: object.kind,
        attribute: issue.attribute.clone(),
        value: issue.value.clone(),
        rule: issue.rule.word(),
        severity: match issue.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        },
        problem: issue.statement(),
        fix: issue.hint(),
        suggested: suggested(issue),
    }
}

/// A value that passes the rule, made from the value itself: characters the cloud refuses
/// spelled in ASCII or left out, the verified suffix, the primary address. `None` where only
/// the administrator can choose (a duplicate, a value too long to shorten blindly).
fn suggested(issue: &ObjectIssue) -> Option<String> {
    let value = issue.value.as_str();
    match &issue.rule {
        Rule::InvalidCharacter { .. } => {
            let fixed = match issue.attribute.as_str() {
                "userPrincipalName" => {
                    let (local, domain) = value.rsplit_once('@').unwrap_or((value, ""));
                    let local: String = ascii_spelling(local)
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric() || ".-_!#^~'".contains(*c))
                        .collect();
                    if domain.is_empty() {
                        local
                    } else {
                        format!("{local}@{domain}")
                    }
                }
                "proxyAddresses" => value
                    .chars()
                    .filter(|c| !c.is_whitespace() && !"<>();,[]\"".contains(*c))
                    .collect(),
                _ => ascii_spelling(value)
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || ".-_".contains(*c))
                    .collect(),
            };
            (!fixed.is_empty() && fixed != value).then_some(fixed)
        }
        Rule::LeadingPeriod => Some(value.trim_start_matches('.').to_owned()),
        Rule::UnverifiedSuffix { replacement } => Some(replacement.clone()),
        Rule::MailNotPrimary { primary } => Some(primary.clone()),
        _ => None,
    }
}

/// Letters outside ASCII as German and French administrators spell them in addresses.
fn ascii_spelling(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            'ä' => out.push_str("ae"),
            'ö' => out.push_str("oe"),
            'ü' => out.push_str("ue"),
            'Ä' => out.push_str("Ae"),
            'Ö' => out.push_str("Oe"),
            'Ü' => out.push_str("Ue"),
            'ß' => out.push_str("ss"),
            'à' | 'á' | 'â' | 'ã' | 'å' => out.push('a'),
            'ç' => out.push('c'),
            'è' | 'é' | 'ê' | 'ë' => out.push('e'),
            'ì' | 'í' | 'î' | 'ï' => out.push('i'),
            'ñ' => out.push('n'),
            'ò' | 'ó' | 'ô' | 'õ' | 'ø' => out.push('o'),
            'ù' | 'ú' | 'û' => out.push('u'),
            'ý' | 'ÿ' => out.push('y'),
            'É' => out.push('E'),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(attribute: &str, value: &str, rule: Rule) -> ObjectIssue {
        ObjectIssue::error(attribute, value, rule)
    }

    #[test]
    fn suggestions_spell_umlauts_and_drop_what_the_cloud_refuses() {
        let upn = issue(
            "userPrincipalName",
            "jürgen müller@contoso.test",
            Rule::InvalidCharacter { character: 'ü' },
        );
        assert_eq!(
            suggested(&upn).as_deref(),
            Some("juergenmueller@contoso.test")
        );
        let alias = issue(
            "sAMAccountName",
            "#hash.user",
            Rule::InvalidCharacter { character: '#' },
        );
        assert_eq!(suggested(&alias).as_deref(), Some("hash.user"));
        let duplicate = issue(
            "proxyAddresses",
            "smtp:shared@contoso.test",
            Rule::Duplicate {
                other_dn: "CN=x".to_owned(),
            },
        );
        assert_eq!(suggested(&duplicate), None);
    }

    fn user(n: u8, attributes: &[(&str, &[&str])]) -> DirectoryObject {
        DirectoryObject {
            anchor: crate::guid::Guid([n; 16]),
            dn: crate::directory::Dn::parse(&format!("CN=User {n},OU=Corp,DC=corp,DC=test"))
                .expect("valid"),
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

    #[test]
    fn a_target_address_is_an_smtp_address_no_other_object_uses() {
        let objects = [
            user(1, &[("mail", &["ann@contoso.test"])]),
            // Its own address as its targetAddress is normal (a remote mailbox).
            user(
                2,
                &[
                    ("mail", &["bob@contoso.test"]),
                    ("targetAddress", &["SMTP:bob@contoso.test"]),
                ],
            ),
            user(3, &[("targetAddress", &["SMTP:ANN@contoso.test"])]),
            user(4, &[("targetAddress", &["X400:c=US;a= ;p=Contoso"])]),
            user(5, &[("targetAddress", &["smtp:eve (old)@contoso.test"])]),
        ];
        let findings = check(&objects, None, &SyncRules::default());
        let target: Vec<(&str, &str, &str)> = findings
            .iter()
            .filter(|finding| finding.attribute == "targetAddress")
            .map(|finding| (finding.dn.as_str(), finding.rule, finding.severity))
            .collect();
        assert_eq!(
            target,
            [
                ("CN=User 3,OU=Corp,DC=corp,DC=test", "duplicate", "warning"),
                (
                    "CN=User 4,OU=Corp,DC=corp,DC=test",
                    "not-an-address",
                    "warning"
                ),
                (
                    "CN=User 5,OU=Corp,DC=corp,DC=test",
                    "invalid-character",
                    "warning"
                ),
            ]
        );
    }
}
