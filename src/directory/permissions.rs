//! The service account's rights, granted by editing DACLs (read and written with the SD flags
//! control, DACL only) and nothing else:
//! - on the domain root, the extended right Replicating Directory Changes, plus Replicating
//!   Directory Changes All when password hash sync is on;
//! - with hybrid write-back, write access to exactly the write-back attributes of user objects
//!   under the included OUs (inheritable object ACEs), denied again under excluded OUs.
//!
//! Setup states the rights the options need and [`apply_rights`] makes every DACL say exactly
//! that: the account's explicit ACEs are replaced, so re-running setup never duplicates them and
//! turning an option off removes its rights.

use ldap3::{Mod, Scope};

use super::connection::DirectoryConnection;
use super::controls;
use super::dn::{Dn, escape_filter_value};
use super::error::DirectoryError;
use super::forest;
use super::objects;
use super::security_descriptor::{
    ACE_FLAG_CONTAINER_INHERIT, ACE_FLAG_INHERIT_ONLY, ACE_FLAG_INHERITED,
    ACE_TYPE_ACCESS_ALLOWED_OBJECT, ACE_TYPE_ACCESS_DENIED, ACE_TYPE_ACCESS_DENIED_OBJECT,
    ADS_RIGHT_DS_CONTROL_ACCESS, ADS_RIGHT_DS_WRITE_PROP, Ace, Acl, SecurityDescriptor,
};
use super::sid::Sid;
use crate::guid::Guid;

/// DS-Replication-Get-Changes (MS-ADTS 5.1.3.2.1).
pub const REPLICATING_DIRECTORY_CHANGES: Guid = Guid([
    0x11, 0x31, 0xf6, 0xaa, 0x9c, 0x07, 0x11, 0xd1, 0xf7, 0x9f, 0x00, 0xc0, 0x4f, 0xc2, 0xdc, 0xd2,
]);
/// DS-Replication-Get-Changes-All: needed to read password hashes.
pub const REPLICATING_DIRECTORY_CHANGES_ALL: Guid = Guid([
    0x11, 0x31, 0xf6, 0xad, 0x9c, 0x07, 0x11, 0xd1, 0xf7, 0x9f, 0x00, 0xc0, 0x4f, 0xc2, 0xdc, 0xd2,
]);
/// schemaIDGUID of the `user` class (the same in every forest).
pub const USER_CLASS: Guid = Guid([
    0xbf, 0x96, 0x7a, 0xba, 0x0d, 0xe6, 0x11, 0xd0, 0xa2, 0x85, 0x00, 0xaa, 0x00, 0x30, 0x49, 0xe2,
]);

/// The attributes hybrid write-back writes into AD (README, "Hybrid Exchange write-back"), in the order they are reported.
pub const WRITE_BACK_ATTRIBUTES: &[&str] = &[
    "proxyAddresses",
    "msExchArchiveStatus",
    "msExchSafeSendersHash",
    "msExchBlockedSendersHash",
    "msExchSafeRecipientsHash",
    "msExchUCVoiceMailSettings",
];

const RIGHTS_FILTER: &str =
    "(|(objectClass=domainDNS)(objectClass=organizationalUnit)(objectClass=container))";

/// An attribute of the forest's schema that write-back may write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaAttribute {
    pub name: String,
    pub schema_id: Guid,
}

/// Write access for hybrid write-back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteBackGrant {
    /// The write-back attributes the forest's schema has.
    pub attributes: Vec<SchemaAttribute>,
    pub included: Vec<Dn>,
    pub excluded: Vec<Dn>,
}

/// The rights the chosen options need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RightsPlan {
    pub domain: Dn,
    pub account: Sid,
    /// Password hash sync: Replicating Directory Changes All as well.
    pub replicate_secrets: bool,
    pub write_back: Option<WriteBackGrant>,
    /// The source anchor written back (README, "The source anchor"): write access to
    /// `mS-DS-ConsistencyGuid` of users in the included OUs, denied in the excluded ones.
    pub source_anchor: Option<WriteBackGrant>,
}

impl RightsPlan {
    /// The account's explicit ACEs that the DACL of `object` should have, in canonical order
    /// (denies first).
    pub fn aces_for(&self, object: &Dn) -> Vec<Ace> {
        let mut aces = Vec::new();
        for grant in self.write_back.iter().chain(&self.source_anchor) {
            if grant.excluded.contains(object) {
                aces.extend(self.write_back_aces(ACE_TYPE_ACCESS_DENIED_OBJECT, grant));
            }
        }
        for grant in self.write_back.iter().chain(&self.source_anchor) {
            if grant.included.contains(object) {
                aces.extend(self.write_back_aces(ACE_TYPE_ACCESS_ALLOWED_OBJECT, grant));
            }
        }
        if *object == self.domain {
            aces.push(self.extended_right(REPLICATING_DIRECTORY_CHANGES));
            if self.replicate_secrets {
                aces.push(self.extended_right(REPLICATING_DIRECTORY_CHANGES_ALL));
            }
        }
        aces
    }

    /// Every object whose DACL should carry one of the account's ACEs.
    pub fn objects(&self) -> Vec<Dn> {
        let mut objects = vec![self.domain.clone()];
        for grant in self.write_back.iter().chain(&self.source_anchor) {
            for dn in grant.included.iter().chain(&grant.excluded) {
                if !objects.contains(dn) {
                    objects.push(dn.clone());
                }
            }
        }
        objects
    }

    fn extended_right(&self, right: Guid) -> Ace {
        Ace::Object {
            ace_type: ACE_TYPE_ACCESS_ALLOWED_OBJECT,
            flags: 0,
            mask: ADS_RIGHT_DS_CONTROL_ACCESS,
            object_type: Some(right),
            inherited_object_type: None,
            sid: self.account.clone(),
        }
    }

    fn write_back_aces(&self, ace_type: u8, write_back: &WriteBackGrant) -> Vec<Ace> {
        write_back
            .attributes
            .iter()
            .map(|attribute| Ace::Object {
                ace_type,
                // Applies to user objects below, not to the OU itself.
                flags: ACE_FLAG_CONTAINER_INHERIT | ACE_FLAG_INHERIT_ONLY,
                mask: ADS_RIGHT_DS_WRITE_PROP,
                object_type: Some(attribute.schema_id),
                inherited_object_type: Some(USER_CLASS),
                sid: self.account.clone(),
            })
            .collect()
    }
}

/// The DACL with the account's explicit ACEs replaced by `wanted`, or `None` when it already
/// has exactly those. Inherited ACEs and everyone else's are kept in place.
pub fn reconcile_dacl(dacl: &Acl, account: &Sid, wanted: &[Ace]) -> Option<Acl> {
    let is_ours = |ace: &Ace| explicit_trustee(ace) == Some(account);
    let current: Vec<&Ace> = dacl.aces.iter().filter(|ace| is_ours(ace)).collect();
    if current.len() == wanted.len() && current.iter().zip(wanted).all(|(a, b)| *a == b) {
        return None;
    }
    let mut others: Vec<Ace> = dacl
        .aces
        .iter()
        .filter(|ace| !is_ours(ace))
        .cloned()
        .collect();
    // Canonical order: explicit denies, explicit allows, then inherited ACEs.
    let (denies, allows): (Vec<Ace>, Vec<Ace>) = wanted.iter().cloned().partition(is_deny);
    others.splice(0..0, denies);
    let first_inherited = others
        .iter()
        .position(|ace| ace_flags(ace) & ACE_FLAG_INHERITED != 0)
        .unwrap_or(others.len());
    others.splice(first_inherited..first_inherited, allows);
    let has_object_aces = others.iter().any(|ace| matches!(ace, Ace::Object { .. }));
    Some(Acl {
        revision: if has_object_aces { 4 } else { dacl.revision },
        aces: others,
    })
}

fn explicit_trustee(ace: &Ace) -> Option<&Sid> {
    match ace {
        Ace::Basic { flags, sid, .. } | Ace::Object { flags, sid, .. }
            if flags & ACE_FLAG_INHERITED == 0 =>
        {
            Some(sid)
        }
        _ => None,
    }
}

fn ace_flags(ace: &Ace) -> u8 {
    match ace {
        Ace::Basic { flags, .. } | Ace::Object { flags, .. } | Ace::Other { flags, .. } => *flags,
    }
}

fn is_deny(ace: &Ace) -> bool {
    match ace {
        Ace::Basic { ace_type, .. } | Ace::Object { ace_type, .. } => {
            *ace_type == ACE_TYPE_ACCESS_DENIED || *ace_type == ACE_TYPE_ACCESS_DENIED_OBJECT
        }
        Ace::Other { .. } => false,
    }
}

/// What [`apply_rights`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RightsReport {
    /// DNs whose DACL was rewritten.
    pub changed: Vec<Dn>,
    /// DNs checked and already right.
    pub unchanged: Vec<Dn>,
}

/// Makes the account's explicit ACEs everywhere match `plan`: adds what is missing and removes
/// rights the options no longer need, including on OUs that left the scope.
pub async fn apply_rights(
    admin: &DirectoryConnection,
    plan: &RightsPlan,
) -> Result<RightsReport, DirectoryError> {
    reconcile_everywhere(admin, &plan.domain, &plan.account, plan.objects(), |dn| {
        plan.aces_for(dn)
    })
    .await
}

/// Removes every explicit ACE naming `account` under `domain` (before deleting the account, so
/// that no orphaned SID stays behind in the DACLs).
pub async fn revoke_rights(
    admin: &DirectoryConnection,
    domain: &Dn,
    account: &Sid,
) -> Result<RightsReport, DirectoryError> {
    reconcile_everywhere(admin, domain, account, Vec::new(), |_| Vec::new()).await
}

async fn reconcile_everywhere(
    admin: &DirectoryConnection,
    domain: &Dn,
    account: &Sid,
    mut to_visit: Vec<Dn>,
    wanted: impl Fn(&Dn) -> Vec<Ace>,
) -> Result<RightsReport, DirectoryError> {
    let descriptors = read_dacls(admin, domain, account).await?;
    let mut report = RightsReport::default();
    for (dn, _) in &descriptors {
        if !to_visit.contains(dn) {
            to_visit.push(dn.clone());
        }
    }
    for dn in to_visit {
        let descriptor = match descriptors.iter().find(|(known, _)| *known == dn) {
            Some((_, descriptor)) => descriptor.clone(),
            None => read_dacl(admin, &dn).await?,
        };
        let dacl = descriptor.dacl.clone().unwrap_or(Acl {
            revision: 4,
            aces: Vec::new(),
        });
        match reconcile_dacl(&dacl, account, &wanted(&dn)) {
            None => report.unchanged.push(dn),
            Some(new_dacl) => {
                let updated = SecurityDescriptor {
                    dacl: Some(new_dacl),
                    ..descriptor
                };
                write_dacl(admin, &dn, &updated).await?;
                report.changed.push(dn);
            }
        }
    }
    Ok(report)
}

/// The domain root, OUs and containers whose DACL names `account` explicitly: what
/// [`revoke_rights`] would change (`dirsync uninstall`'s preview). Any account that may read
/// the DACLs can ask (domain users may, through the SD flags control).
pub async fn objects_naming(
    connection: &DirectoryConnection,
    domain: &Dn,
    account: &Sid,
) -> Result<Vec<Dn>, DirectoryError> {
    Ok(read_dacls(connection, domain, account)
        .await?
        .into_iter()
        .map(|(dn, _)| dn)
        .collect())
}

/// Every domain root, OU and container whose DACL names `account` explicitly, with the DACL.
async fn read_dacls(
    admin: &DirectoryConnection,
    domain: &Dn,
    account: &Sid,
) -> Result<Vec<(Dn, SecurityDescriptor)>, DirectoryError> {
    let (entries, _) = admin
        .search_with_controls(
            "read permissions",
            domain.as_str(),
            Scope::Subtree,
            RIGHTS_FILTER,
            &["nTSecurityDescriptor"],
            vec![controls::sd_flags(controls::SD_FLAGS_DACL)],
        )
        .await?;
    let mut found = Vec::new();
    for entry in entries {
        let Some(bytes) = forest::binary_values(&entry, "nTSecurityDescriptor")
            .into_iter()
            .next()
        else {
            continue;
        };
        let descriptor = parse_descriptor(admin, &entry.dn, &bytes)?;
        let names_account = descriptor.dacl.as_ref().is_some_and(|dacl| {
            dacl.aces
                .iter()
                .any(|ace| explicit_trustee(ace) == Some(account))
        });
        if names_account && let Ok(dn) = Dn::parse(&entry.dn) {
            found.push((dn, descriptor));
        }
    }
    Ok(found)
}

/// One object's DACL (with the SD flags control: no SACL privilege needed).
pub async fn read_dacl(
    admin: &DirectoryConnection,
    dn: &Dn,
) -> Result<SecurityDescriptor, DirectoryError> {
    read_descriptor(admin, dn, controls::SD_FLAGS_DACL).await
}

/// The parts of one object's descriptor that `sd_flags` names.
pub async fn read_descriptor(
    admin: &DirectoryConnection,
    dn: &Dn,
    sd_flags: i64,
) -> Result<SecurityDescriptor, DirectoryError> {
    let (mut entries, _) = admin
        .search_with_controls(
            "read permissions",
            dn.as_str(),
            Scope::Base,
            "(objectClass=*)",
            &["nTSecurityDescriptor"],
            vec![controls::sd_flags(sd_flags)],
        )
        .await?;
    let bytes = entries
        .pop()
        .and_then(|entry| {
            forest::binary_values(&entry, "nTSecurityDescriptor")
                .into_iter()
                .next()
        })
        .ok_or_else(|| DirectoryError::Refused {
            server: admin.server().to_owned(),
            operation: format!("read the permissions of {dn}"),
            rc: 50,
            code_name: "insufficientAccessRights",
            server_message:
                "no nTSecurityDescriptor was returned; the account may not read permissions here"
                    .to_owned(),
        })?;
    parse_descriptor(admin, dn.as_str(), &bytes)
}

fn parse_descriptor(
    admin: &DirectoryConnection,
    dn: &str,
    bytes: &[u8],
) -> Result<SecurityDescriptor, DirectoryError> {
    SecurityDescriptor::from_bytes(bytes).map_err(|error| DirectoryError::UnexpectedReply {
        server: admin.server().to_owned(),
        operation: format!("read the permissions of {dn}"),
        detail: error.to_string(),
    })
}

async fn write_dacl(
    admin: &DirectoryConnection,
    dn: &Dn,
    descriptor: &SecurityDescriptor,
) -> Result<(), DirectoryError> {
    write_descriptor(admin, dn, descriptor, controls::SD_FLAGS_DACL).await
}

/// Writes the parts of `descriptor` that `sd_flags` names (owner, group, DACL), leaving the rest.
pub async fn write_descriptor(
    admin: &DirectoryConnection,
    dn: &Dn,
    descriptor: &SecurityDescriptor,
    sd_flags: i64,
) -> Result<(), DirectoryError> {
    let bytes = descriptor
        .to_bytes()
        .map_err(|error| DirectoryError::DescriptorTooLarge {
            dn: dn.to_string(),
            detail: error.to_string(),
        })?;
    admin
        .modify_entry(
            &format!("change the permissions of {dn}"),
            dn.as_str(),
            vec![Mod::Replace(
                b"nTSecurityDescriptor".to_vec(),
                std::iter::once(bytes).collect(),
            )],
            vec![controls::sd_flags(sd_flags)],
        )
        .await
}

/// Looks up the write-back attributes in the forest's schema; returns those it has and the names
/// of those it lacks (write-back skips them and says so).
pub async fn write_back_schema(
    connection: &DirectoryConnection,
    schema_naming_context: &str,
) -> Result<(Vec<SchemaAttribute>, Vec<String>), DirectoryError> {
    schema_attributes(connection, schema_naming_context, WRITE_BACK_ATTRIBUTES).await
}

/// Looks up attributes in the forest's schema by their lDAPDisplayName; returns those it has
/// (in `names` order) and the names of those it lacks.
pub async fn schema_attributes(
    connection: &DirectoryConnection,
    schema_naming_context: &str,
    names: &[&str],
) -> Result<(Vec<SchemaAttribute>, Vec<String>), DirectoryError> {
    let filter: String = names
        .iter()
        .map(|name| format!("(lDAPDisplayName={})", escape_filter_value(name)))
        .collect();
    let entries = connection
        .search(
            "read the schema",
            schema_naming_context,
            Scope::OneLevel,
            &format!("(&(objectClass=attributeSchema)(|{filter}))"),
            &["lDAPDisplayName", "schemaIDGUID"],
        )
        .await?;
    let mut present = Vec::new();
    let mut missing = Vec::new();
    for wanted in names {
        let found = entries.iter().find(|entry| {
            forest::first_value(entry, "lDAPDisplayName")
                .is_some_and(|name| name.eq_ignore_ascii_case(wanted))
        });
        match found.and_then(|entry| objects::guid_value(entry, "schemaIDGUID")) {
            Some(schema_id) => present.push(SchemaAttribute {
                name: (*wanted).to_owned(),
                schema_id,
            }),
            None => missing.push((*wanted).to_owned()),
        }
    }
    Ok((present, missing))
}

/// Whether `connection`'s account can read CN=Deleted Objects, which it needs to see deletions
/// through DirSync on Samba.
pub async fn can_see_deleted_objects(
    connection: &DirectoryConnection,
    domain: &Dn,
) -> Result<bool, DirectoryError> {
    let deleted_objects = domain.child("CN", "Deleted Objects");
    let result = connection
        .search_with_controls(
            "read CN=Deleted Objects",
            deleted_objects.as_str(),
            Scope::Base,
            "(objectClass=*)",
            &["isDeleted"],
            vec![controls::show_deleted()],
        )
        .await;
    match result {
        Ok((entries, _)) => Ok(entries
            .iter()
            .any(|entry| forest::first_value(entry, "isDeleted").is_some())),
        Err(DirectoryError::NoSuchObject { .. }) => Ok(false),
        Err(other) => Err(other),
    }
}

/// What to run, on a domain controller, so that the service account sees deletions: only the
/// DC's SYSTEM account may change the permissions of CN=Deleted Objects.
pub fn deleted_objects_advice(domain: &Dn, account: &Sid, account_name: &str) -> String {
    let deleted_objects = domain.child("CN", "Deleted Objects");
    format!(
        "The service account {account_name} cannot read {deleted_objects}, so dirsync would not see objects deleted in AD \
         (a full import still finds them, later). Only the domain controller's SYSTEM account can grant this.\n\
         On a Samba domain controller, as root (the DACL below is Samba's default plus the account; if yours differs, \
         append (A;;LCRP;;;{account}) to it instead):\n\
         ldbmodify -H /var/lib/samba/private/sam.ldb --controls=show_deleted:1 --controls=sd_flags:1:4 <<'EOF'\n\
         dn: {deleted_objects}\n\
         changetype: modify\n\
         replace: nTSecurityDescriptor\n\
         nTSecurityDescriptor: D:PAI(A;;RPWPCCDCLCRCWOWDSDSW;;;SY)(A;;RPLC;;;BA)(A;;LCRP;;;{account})\n\
         EOF\n\
         On a Windows domain controller, as a domain admin:\n\
         dsacls \"{deleted_objects}\" /takeownership\n\
         dsacls \"{deleted_objects}\" /G \"{account_name}:LCRP\""
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::security_descriptor::ACE_TYPE_ACCESS_ALLOWED;

    fn sid(rid: u32) -> Sid {
        Sid {
            revision: 1,
            authority: 5,
            sub_authorities: vec![21, 1, 2, 3, rid],
        }
    }

    fn dn(text: &str) -> Dn {
        Dn::parse(text).expect("DN")
    }

    fn basic(ace_type: u8, flags: u8, rid: u32) -> Ace {
        Ace::Basic {
            ace_type,
            flags,
            mask: 0x20094,
            sid: sid(rid),
        }
    }

    fn plan(replicate_secrets: bool, write_back: bool) -> RightsPlan {
        RightsPlan {
            domain: dn("DC=corp,DC=test"),
            account: sid(1154),
            replicate_secrets,
            write_back: write_back.then(|| WriteBackGrant {
                attributes: vec![SchemaAttribute {
                    name: "proxyAddresses".to_owned(),
                    schema_id: Guid::parse("bf967a68-0de6-11d0-a285-00aa003049e2").expect("guid"),
                }],
                included: vec![dn("OU=Corp,DC=corp,DC=test")],
                excluded: vec![dn("OU=Staging,OU=Corp,DC=corp,DC=test")],
            }),
            source_anchor: None,
        }
    }

    fn domain_dacl() -> Acl {
        Acl {
            revision: 4,
            aces: vec![
                basic(ACE_TYPE_ACCESS_DENIED, 0, 500),
                basic(ACE_TYPE_ACCESS_ALLOWED, 0, 512),
                basic(ACE_TYPE_ACCESS_ALLOWED, ACE_FLAG_INHERITED, 519),
            ],
        }
    }

    #[test]
    fn granting_puts_allows_after_explicit_denies_and_before_inherited_aces() {
        let plan = plan(true, false);
        let wanted = plan.aces_for(&plan.domain);
        assert_eq!(wanted.len(), 2);
        let granted = reconcile_dacl(&domain_dacl(), &plan.account, &wanted).expect("changed");
        assert_eq!(granted.aces.len(), 5);
        assert_eq!(granted.aces[0], basic(ACE_TYPE_ACCESS_DENIED, 0, 500));
        assert_eq!(granted.aces[1], basic(ACE_TYPE_ACCESS_ALLOWED, 0, 512));
        assert_eq!(&granted.aces[2..4], wanted.as_slice());
        assert_eq!(
            granted.aces[4],
            basic(ACE_TYPE_ACCESS_ALLOWED, ACE_FLAG_INHERITED, 519)
        );
    }

    #[test]
    fn granting_twice_changes_nothing_and_dropping_an_option_removes_its_right() {
        let with_secrets = plan(true, false);
        let granted = reconcile_dacl(
            &domain_dacl(),
            &with_secrets.account,
            &with_secrets.aces_for(&with_secrets.domain),
        )
        .expect("changed");
        assert_eq!(
            reconcile_dacl(
                &granted,
                &with_secrets.account,
                &with_secrets.aces_for(&with_secrets.domain)
            ),
            None
        );
        let without = plan(false, false);
        let reduced = reconcile_dacl(
            &granted,
            &without.account,
            &without.aces_for(&without.domain),
        )
        .expect("changed");
        assert_eq!(reduced.aces.len(), 4);
        assert!(!reduced.aces.iter().any(|ace| matches!(ace, Ace::Object { object_type: Some(right), .. } if *right == REPLICATING_DIRECTORY_CHANGES_ALL)));
        let removed = reconcile_dacl(&reduced, &without.account, &[]).expect("changed");
        assert_eq!(removed, domain_dacl());
    }

    #[test]
    fn write_back_is_inheritable_to_users_and_denied_under_excluded_ous() {
        let plan = plan(false, true);
        let corp = plan.aces_for(&dn("ou=corp,dc=corp,dc=test"));
        assert_eq!(corp.len(), 1);
        let Ace::Object {
            ace_type,
            flags,
            mask,
            inherited_object_type,
            ..
        } = &corp[0]
        else {
            panic!("object ACE expected");
        };
        assert_eq!(*ace_type, ACE_TYPE_ACCESS_ALLOWED_OBJECT);
        assert_eq!(*flags, ACE_FLAG_CONTAINER_INHERIT | ACE_FLAG_INHERIT_ONLY);
        assert_eq!(*mask, ADS_RIGHT_DS_WRITE_PROP);
        assert_eq!(*inherited_object_type, Some(USER_CLASS));
        let staging = plan.aces_for(&dn("OU=Staging,OU=Corp,DC=corp,DC=test"));
        assert!(matches!(
            staging[0],
            Ace::Object {
                ace_type: ACE_TYPE_ACCESS_DENIED_OBJECT,
                ..
            }
        ));
        assert_eq!(plan.objects().len(), 3);
        // Inherited ACEs for the account (propagated by the server) are never touched.
        let mut inherited_ace = corp[0].clone();
        if let Ace::Object { flags, .. } = &mut inherited_ace {
            *flags = ACE_FLAG_INHERITED;
        }
        let inherited = Acl {
            revision: 4,
            aces: vec![inherited_ace],
        };
        assert_eq!(reconcile_dacl(&inherited, &plan.account, &[]), None);
    }

    #[test]
    fn the_advice_names_the_container_and_the_account() {
        let advice = deleted_objects_advice(&dn("DC=corp,DC=test"), &sid(1154), "CORP\\MSOL_ab");
        assert!(advice.contains("CN=Deleted Objects,DC=corp,DC=test"));
        assert!(advice.contains("(A;;LCRP;;;S-1-5-21-1-2-3-1154)"));
        assert!(advice.contains("dsacls"));
    }
}
