//! What the domain controller says about itself and its forest: the rootDSE, the domains, the UPN
//! suffixes, and whether the bound account may set dirsync up.

use ldap3::{Scope, SearchEntry};
use serde::Serialize;

use super::connection::DirectoryConnection;
use super::dn::{Dn, escape_filter_value};
use super::error::DirectoryError;
use super::sid::{RID_DOMAIN_ADMINS, RID_ENTERPRISE_ADMINS, Sid};

/// The LDAP_SERVER_DIRSYNC_OID control, required for change tracking.
pub const DIRSYNC_CONTROL_OID: &str = "1.2.840.113556.1.4.841";

/// The rootDSE attributes dirsync relies on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootDse {
    pub naming_contexts: Vec<String>,
    pub default_naming_context: String,
    pub root_domain_naming_context: String,
    pub configuration_naming_context: String,
    pub schema_naming_context: String,
    pub dns_host_name: String,
    pub supported_controls: Vec<String>,
}

impl RootDse {
    pub fn supports_dirsync(&self) -> bool {
        self.supported_controls
            .iter()
            .any(|oid| oid == DIRSYNC_CONTROL_OID)
    }
}

/// One domain of the forest (a crossRef with a NetBIOS name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainInfo {
    pub dns_name: String,
    pub netbios_name: String,
    pub naming_context: String,
}

/// The forest as seen from one domain controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForestInfo {
    pub root_dse: RootDse,
    pub domains: Vec<DomainInfo>,
    /// Suffixes added on CN=Partitions (`uPNSuffixes`); the domains' DNS names are suffixes too.
    pub extra_upn_suffixes: Vec<String>,
}

impl ForestInfo {
    /// Every UPN suffix a user of this forest may have: domain DNS names first, then the extra ones.
    pub fn upn_suffixes(&self) -> Vec<String> {
        let mut suffixes: Vec<String> = self.domains.iter().map(|d| d.dns_name.clone()).collect();
        for suffix in &self.extra_upn_suffixes {
            if !suffixes.iter().any(|s| s.eq_ignore_ascii_case(suffix)) {
                suffixes.push(suffix.clone());
            }
        }
        suffixes
    }
}

/// Finds an attribute case-insensitively (servers answer with their own capitalization).
pub fn values<'a>(entry: &'a SearchEntry, attribute: &str) -> &'a [String] {
    entry
        .attrs
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(attribute))
        .map_or(&[], |(_, values)| values.as_slice())
}

pub fn first_value(entry: &SearchEntry, attribute: &str) -> Option<String> {
    values(entry, attribute).first().cloned()
}

/// Every value of a binary attribute (SIDs, GUIDs, descriptors) as bytes. ldap3 files a value
/// under `attrs` when it happens to be valid UTF-8 and under `bin_attrs` otherwise, so a binary
/// value whose bytes are all ASCII (a SID or GUID can be) is in `attrs`: look in both.
pub fn binary_values(entry: &SearchEntry, attribute: &str) -> Vec<Vec<u8>> {
    let text = entry
        .attrs
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(attribute))
        .flat_map(|(_, values)| values.iter().map(|value| value.as_bytes().to_vec()));
    let binary = entry
        .bin_attrs
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(attribute))
        .flat_map(|(_, values)| values.iter().cloned());
    text.chain(binary).collect()
}

fn required(
    connection: &DirectoryConnection,
    entry: &SearchEntry,
    attribute: &str,
) -> Result<String, DirectoryError> {
    first_value(entry, attribute).ok_or_else(|| DirectoryError::UnexpectedReply {
        server: connection.server().to_owned(),
        operation: "rootDSE".to_owned(),
        detail: format!("it has no {attribute}; is this an Active Directory domain controller?"),
    })
}

pub async fn read_root_dse(connection: &DirectoryConnection) -> Result<RootDse, DirectoryError> {
    let entry = connection
        .read_entry(
            "read the rootDSE",
            "",
            &[
                "namingContexts",
                "defaultNamingContext",
                "rootDomainNamingContext",
                "configurationNamingContext",
                "schemaNamingContext",
                "dnsHostName",
                "supportedControl",
            ],
        )
        .await?;
    Ok(RootDse {
        naming_contexts: values(&entry, "namingContexts").to_vec(),
        default_naming_context: required(connection, &entry, "defaultNamingContext")?,
        root_domain_naming_context: required(connection, &entry, "rootDomainNamingContext")?,
        configuration_naming_context: required(connection, &entry, "configurationNamingContext")?,
        schema_naming_context: required(connection, &entry, "schemaNamingContext")?,
        dns_host_name: first_value(&entry, "dnsHostName").unwrap_or_default(),
        supported_controls: values(&entry, "supportedControl").to_vec(),
    })
}

pub async fn read_forest(connection: &DirectoryConnection) -> Result<ForestInfo, DirectoryError> {
    let root_dse = read_root_dse(connection).await?;
    let partitions = format!("CN=Partitions,{}", root_dse.configuration_naming_context);
    let partitions_entry = connection
        .read_entry("read the UPN suffixes", &partitions, &["uPNSuffixes"])
        .await?;
    let extra_upn_suffixes = values(&partitions_entry, "uPNSuffixes").to_vec();
    let cross_refs = connection
        .search(
            "list the forest's domains",
            &partitions,
            Scope::OneLevel,
            "(&(objectClass=crossRef)(nETBIOSName=*))",
            &["dnsRoot", "nETBIOSName", "nCName"],
        )
        .await?;
    let mut domains: Vec<DomainInfo> = cross_refs
        .iter()
        .filter_map(|entry| {
            Some(DomainInfo {
                dns_name: first_value(entry, "dnsRoot")?,
                netbios_name: first_value(entry, "nETBIOSName")?,
                naming_context: first_value(entry, "nCName")?,
            })
        })
        .collect();
    domains.sort_by(|a, b| a.dns_name.cmp(&b.dns_name));
    Ok(ForestInfo {
        root_dse,
        domains,
        extra_upn_suffixes,
    })
}

/// How much the bound account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdminLevel {
    /// Member of the forest root's Enterprise Admins: everything setup needs.
    EnterpriseAdmin,
    /// Member of Domain Admins in a single-domain forest: enough there, with a warning.
    DomainAdminSingleDomain,
    /// Neither: setup cannot create the service account or grant its rights.
    NotAdmin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdminCheck {
    pub account_dn: String,
    pub level: AdminLevel,
    /// Plain words for the administrator when the level is not simply "enterprise admin".
    pub explanation: Option<String>,
}

/// Checks the bound account's `tokenGroups` (its transitive group SIDs) for Enterprise Admins of the
/// forest root, or Domain Admins when the forest has a single domain.
pub async fn check_enterprise_admin(
    connection: &DirectoryConnection,
    forest: &ForestInfo,
) -> Result<AdminCheck, DirectoryError> {
    let account_dn = bound_account_dn(connection, forest).await?;
    let account = connection
        .search(
            "read the account's groups",
            &account_dn,
            Scope::Base,
            "(objectClass=*)",
            &["tokenGroups"],
        )
        .await?;
    let token_groups: Vec<Sid> = account
        .first()
        .map(|entry| binary_values(entry, "tokenGroups"))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|bytes| Sid::from_bytes(&bytes).ok())
        .collect();
    let root_domain = connection
        .read_entry(
            "read the forest root domain",
            &forest.root_dse.root_domain_naming_context,
            &["objectSid"],
        )
        .await?;
    let root_sid = binary_values(&root_domain, "objectSid")
        .first()
        .and_then(|bytes| Sid::from_bytes(bytes).ok())
        .ok_or_else(|| DirectoryError::UnexpectedReply {
            server: connection.server().to_owned(),
            operation: "read the forest root domain".to_owned(),
            detail: "it has no objectSid".to_owned(),
        })?;
    let member_of = |rid| token_groups.contains(&root_sid.with_rid(rid));
    let (level, explanation) = if member_of(RID_ENTERPRISE_ADMINS) {
        (AdminLevel::EnterpriseAdmin, None)
    } else if member_of(RID_DOMAIN_ADMINS) && forest.domains.len() == 1 {
        (
            AdminLevel::DomainAdminSingleDomain,
            Some(
                "the account is a Domain Admin but not an Enterprise Admin; that is enough in this single-domain forest, but add it to Enterprise Admins before adding domains".to_owned(),
            ),
        )
    } else {
        (
            AdminLevel::NotAdmin,
            Some(format!(
                "the account is not a member of Enterprise Admins ({}); sign in with an enterprise administrator",
                root_sid.with_rid(RID_ENTERPRISE_ADMINS)
            )),
        )
    };
    Ok(AdminCheck {
        account_dn,
        level,
        explanation,
    })
}

/// The DN of the account this connection is bound as. Found from the name it bound with, in any of
/// the forms Active Directory accepts for a simple bind (Samba has no Who Am I operation):
/// a DN, `user@suffix` (its UPN, or the implicit `sAMAccountName@domain`), `DOMAIN\user`, or `user`.
async fn bound_account_dn(
    connection: &DirectoryConnection,
    forest: &ForestInfo,
) -> Result<String, DirectoryError> {
    let not_found = |detail: String| DirectoryError::UnexpectedReply {
        server: connection.server().to_owned(),
        operation: "find the signed-in account".to_owned(),
        detail,
    };
    let bound_as = connection
        .bound_as()
        .ok_or_else(|| not_found("the connection is not signed in".to_owned()))?;
    if let Ok(dn) = Dn::parse(bound_as)
        && !dn.rdns().is_empty()
    {
        return Ok(bound_as.to_owned());
    }
    let default_nc = forest.root_dse.default_naming_context.as_str();
    let mut candidates: Vec<(String, String)> = Vec::new();
    if let Some((local, suffix)) = bound_as.rsplit_once('@') {
        candidates.push((
            default_nc.to_owned(),
            format!("(userPrincipalName={})", escape_filter_value(bound_as)),
        ));
        if let Some(domain) = forest
            .domains
            .iter()
            .find(|d| d.dns_name.eq_ignore_ascii_case(suffix))
        {
            candidates.push((domain.naming_context.clone(), sam_filter(local)));
        }
    } else if let Some((netbios, account)) = bound_as.split_once('\\') {
        let base = forest
            .domains
            .iter()
            .find(|d| d.netbios_name.eq_ignore_ascii_case(netbios))
            .map_or(default_nc, |d| d.naming_context.as_str());
        candidates.push((base.to_owned(), sam_filter(account)));
    } else {
        candidates.push((default_nc.to_owned(), sam_filter(bound_as)));
    }
    for (base, filter) in candidates {
        let found = connection
            .search(
                "find the signed-in account",
                &base,
                Scope::Subtree,
                &filter,
                &["objectClass"],
            )
            .await?;
        if let Some(entry) = found.into_iter().next() {
            return Ok(entry.dn);
        }
    }
    Err(not_found(format!("no account matches '{bound_as}'")))
}

fn sam_filter(account: &str) -> String {
    format!(
        "(&(objectCategory=person)(sAMAccountName={}))",
        escape_filter_value(account)
    )
}
