//! Users and groups as dirsync reads them from Active Directory: anchor, DN, class and the
//! attributes that flow to the cloud, decoded from LDAP entries without trusting them.

use std::collections::BTreeMap;

use base64::Engine as _;
use ldap3::SearchEntry;

use super::dn::Dn;
use super::forest;
use super::sid::Sid;
use crate::guid::Guid;

/// Binary attributes: kept as bytes, never decoded as text.
pub const BINARY_ATTRIBUTES: &[&str] = &["objectGUID", "objectSid", CONSISTENCY_GUID];

/// The source anchor Entra Connect writes (README, "The source anchor"): 16 bytes, kept among
/// the attributes as the GUID's text.
pub const CONSISTENCY_GUID: &str = "mS-DS-ConsistencyGuid";

/// Where an object anchored by its `mS-DS-ConsistencyGuid` keeps its own objectGUID (as text):
/// DirSync names a deleted object by its objectGUID.
pub const OBJECT_GUID_TEXT: &str = "objectGUID";

/// Every attribute dirsync reads for users and groups: identity, scope decisions and the flows in
/// the README's "Syncing". Anything else an entry carries is ignored.
pub const OBJECT_ATTRIBUTES: &[&str] = &[
    "objectGUID",
    "objectSid",
    "objectClass",
    "sAMAccountName",
    "isCriticalSystemObject",
    "name",
    "userPrincipalName",
    "displayName",
    "givenName",
    "sn",
    "mail",
    "mailNickname",
    "proxyAddresses",
    "userAccountControl",
    "title",
    "department",
    "company",
    "physicalDeliveryOfficeName",
    "telephoneNumber",
    "mobile",
    "streetAddress",
    "l",
    "st",
    "postalCode",
    "co",
    "c",
    "employeeID",
    // Where a licence is used (Exchange's schema; else c). A forest without Exchange's schema
    // has none: the domain controller leaves an attribute it does not know out of the answer.
    "msExchUsageLocation",
    "manager",
    "description",
    "groupType",
    "member",
    // Read for `dirsync check` (IdFix's targetAddress rules); not synced.
    "targetAddress",
    CONSISTENCY_GUID,
];

/// Exchange's custom attributes, read besides [`OBJECT_ATTRIBUTES`]: what
/// onPremisesExtensionAttributes flows from (a forest without Exchange's schema has none).
pub const EXTENSION_ATTRIBUTES: [&str; 15] = [
    "extensionAttribute1",
    "extensionAttribute2",
    "extensionAttribute3",
    "extensionAttribute4",
    "extensionAttribute5",
    "extensionAttribute6",
    "extensionAttribute7",
    "extensionAttribute8",
    "extensionAttribute9",
    "extensionAttribute10",
    "extensionAttribute11",
    "extensionAttribute12",
    "extensionAttribute13",
    "extensionAttribute14",
    "extensionAttribute15",
];

/// Every attribute an import reads of each user and group: [`OBJECT_ATTRIBUTES`] and
/// [`EXTENSION_ATTRIBUTES`].
pub fn object_attributes() -> impl Iterator<Item = &'static str> {
    OBJECT_ATTRIBUTES
        .iter()
        .chain(EXTENSION_ATTRIBUTES.iter())
        .copied()
}

/// userAccountControl bit: the account is disabled.
const UAC_ACCOUNT_DISABLE: u32 = 0x2;

/// The accounts of the system itself, which never sync whatever the scope says.
const SYSTEM_ACCOUNT_NAMES: &[&str] = &["krbtgt", "guest", "defaultaccount"];

pub use crate::object_kind::ObjectKind;

/// A value dirsync could not use, kept so the run can report it on the object instead of
/// failing or silently dropping it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueProblem {
    pub attribute: String,
    pub problem: String,
}

/// One user or group, as read from the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryObject {
    /// objectGUID: never changes, survives renames and moves. Its base64 wire form is the cloud's
    /// `onPremisesImmutableId`.
    pub anchor: Guid,
    pub dn: Dn,
    pub kind: ObjectKind,
    /// Text attributes by their canonical name (the spelling in [`OBJECT_ATTRIBUTES`]).
    pub attributes: BTreeMap<String, Vec<String>>,
    pub object_sid: Option<Sid>,
    pub problems: Vec<ValueProblem>,
}

impl DirectoryObject {
    /// Builds a typed object from an entry, keeping [`OBJECT_ATTRIBUTES`] and `also_read` (the
    /// sync rules' attributes, spelt as they name them). Returns `None` for entries that are
    /// neither a user nor a group (computers, OUs, contacts) or carry no readable objectGUID.
    pub fn from_entry(entry: &SearchEntry, also_read: &[String]) -> Option<DirectoryObject> {
        let canonical_name = |name: &str| -> Option<String> {
            canonical_name(name).map(str::to_owned).or_else(|| {
                also_read
                    .iter()
                    .find(|wanted| wanted.eq_ignore_ascii_case(name))
                    .cloned()
            })
        };
        let kind = kind_of(forest::values(entry, "objectClass"))?;
        let anchor = guid_value(entry, "objectGUID")?;
        let dn = Dn::parse(&entry.dn).ok()?;
        let mut attributes = BTreeMap::new();
        let mut problems = Vec::new();
        for (name, values) in &entry.attrs {
            let Some(canonical) = canonical_name(name) else {
                continue;
            };
            if BINARY_ATTRIBUTES.contains(&canonical.as_str()) {
                continue;
            }
            attributes.insert(canonical, values.clone());
        }
        for (name, values) in &entry.bin_attrs {
            let Some(canonical) = canonical_name(name) else {
                continue;
            };
            if BINARY_ATTRIBUTES.contains(&canonical.as_str()) {
                continue;
            }
            for value in values {
                problems.push(ValueProblem {
                    attribute: canonical.clone(),
                    problem: format!(
                        "a value of {} bytes is not valid UTF-8 text and was left out",
                        value.len()
                    ),
                });
            }
        }
        if let Some(guid) = guid_value(entry, CONSISTENCY_GUID) {
            attributes.insert(CONSISTENCY_GUID.to_owned(), vec![guid.to_string()]);
        }
        let object_sid = forest::binary_values(entry, "objectSid")
            .first()
            .and_then(|bytes| Sid::from_bytes(bytes).ok());
        Some(DirectoryObject {
            anchor,
            dn,
            kind,
            attributes,
            object_sid,
            problems,
        })
    }

    /// All values of an attribute (empty when absent).
    pub fn values(&self, attribute: &str) -> &[String] {
        match self
            .attributes
            .get(canonical_name(attribute).unwrap_or(attribute))
        {
            Some(values) => values,
            // An attribute the sync rules read, spelt as they name it (any case).
            None => self
                .attributes
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(attribute))
                .map_or(&[], |(_, values)| values.as_slice()),
        }
    }

    pub fn first(&self, attribute: &str) -> Option<&str> {
        self.values(attribute).first().map(String::as_str)
    }

    /// The object anchored by its `mS-DS-ConsistencyGuid` when it has one that differs from its
    /// objectGUID (README, "The source anchor"); its objectGUID is kept as
    /// [`OBJECT_GUID_TEXT`].
    pub fn anchored_by_consistency_guid(mut self) -> DirectoryObject {
        let Some(guid) = self.first(CONSISTENCY_GUID).and_then(Guid::parse) else {
            return self;
        };
        if guid != self.anchor {
            self.attributes
                .insert(OBJECT_GUID_TEXT.to_owned(), vec![self.anchor.to_string()]);
            self.anchor = guid;
        }
        self
    }

    /// The cloud's `onPremisesImmutableId` for this object.
    pub fn immutable_id(&self) -> String {
        immutable_id(self.anchor)
    }

    /// For users: false when userAccountControl has ACCOUNTDISABLE.
    pub fn account_enabled(&self) -> Option<bool> {
        let flags: u32 = self.first("userAccountControl")?.parse().ok()?;
        Some(flags & UAC_ACCOUNT_DISABLE == 0)
    }

    /// Objects that never sync, whatever the scope: critical system objects, krbtgt, Guest, and
    /// directory-sync service accounts (`MSOL_*`, including the one dirsync made).
    pub fn is_system_object(&self) -> bool {
        if self
            .first("isCriticalSystemObject")
            .is_some_and(|value| value.eq_ignore_ascii_case("TRUE"))
        {
            return true;
        }
        let Some(account) = self.first("sAMAccountName") else {
            return false;
        };
        let lower = account.to_ascii_lowercase();
        SYSTEM_ACCOUNT_NAMES.contains(&lower.as_str()) || lower.starts_with("msol_")
    }
}

/// base64 of the objectGUID's wire bytes, as Entra Connect and DirSync write it.
pub fn immutable_id(anchor: Guid) -> String {
    base64::engine::general_purpose::STANDARD.encode(anchor.to_wire())
}

/// User or group from objectClass; computers are users in AD's schema but never sync.
pub fn kind_of(classes: &[String]) -> Option<ObjectKind> {
    let has = |wanted: &str| {
        classes
            .iter()
            .any(|class| class.eq_ignore_ascii_case(wanted))
    };
    if has("computer") {
        None
    } else if has("user") {
        Some(ObjectKind::User)
    } else if has("group") {
        Some(ObjectKind::Group)
    } else {
        None
    }
}

/// The spelling in [`object_attributes`] of an attribute name the server returned in any case.
pub fn canonical_name(name: &str) -> Option<&'static str> {
    object_attributes().find(|known| known.eq_ignore_ascii_case(name))
}

/// A GUID-valued attribute (objectGUID, parentGUID) in its 16-byte wire form.
pub fn guid_value(entry: &SearchEntry, attribute: &str) -> Option<Guid> {
    forest::binary_values(entry, attribute)
        .first()
        .and_then(|bytes| <[u8; 16]>::try_from(bytes.as_slice()).ok())
        .map(|wire| Guid::from_wire(&wire))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn entry(dn: &str, attrs: &[(&str, &[&str])], bin: &[(&str, Vec<Vec<u8>>)]) -> SearchEntry {
        SearchEntry {
            dn: dn.to_owned(),
            attrs: attrs
                .iter()
                .map(|(name, values)| {
                    (
                        (*name).to_owned(),
                        values.iter().map(|v| (*v).to_owned()).collect(),
                    )
                })
                .collect::<HashMap<_, _>>(),
            bin_attrs: bin
                .iter()
                .cloned()
                .map(|(n, v)| (n.to_owned(), v))
                .collect(),
        }
    }

    const GUID_WIRE: [u8; 16] = [
        0x61, 0x4e, 0xbb, 0xae, 0x0a, 0x2e, 0x1a, 0x40, 0xab, 0x53, 0xd2, 0x72, 0x05, 0xae, 0x65,
        0x30,
    ];

    #[test]
    fn a_user_entry_becomes_a_typed_object() {
        let user = entry(
            "CN=Plain User,OU=IT,OU=Corp,DC=corp,DC=test",
            &[
                (
                    "objectClass",
                    &["top", "person", "organizationalPerson", "user"],
                ),
                ("DISPLAYNAME", &["Plain User"]),
                (
                    "proxyAddresses",
                    &["SMTP:plain@contoso.test", "smtp:p@contoso.test"],
                ),
                ("userAccountControl", &["514"]),
                ("sAMAccountName", &["plain.user"]),
                ("unrequestedThing", &["x"]),
            ],
            &[("objectGUID", vec![GUID_WIRE.to_vec()])],
        );
        let object = DirectoryObject::from_entry(&user, &[]).expect("a user");
        assert_eq!(object.kind, ObjectKind::User);
        assert_eq!(object.first("displayName"), Some("Plain User"));
        assert_eq!(object.values("proxyaddresses").len(), 2);
        assert_eq!(object.account_enabled(), Some(false));
        assert_eq!(object.immutable_id(), "YU67rgouGkCrU9JyBa5lMA==");
        assert!(!object.attributes.contains_key("unrequestedThing"));
        assert!(object.problems.is_empty());
        assert!(!object.is_system_object());
    }

    #[test]
    fn a_guid_that_happens_to_be_valid_utf8_is_still_found() {
        let ascii_guid = *b"ABCDEFGHIJKLMNOP";
        let group = entry(
            "CN=Sales,DC=corp,DC=test",
            &[
                ("objectClass", &["top", "group"]),
                ("objectGUID", &["ABCDEFGHIJKLMNOP"]),
            ],
            &[],
        );
        let object = DirectoryObject::from_entry(&group, &[]).expect("a group");
        assert_eq!(object.kind, ObjectKind::Group);
        assert_eq!(object.anchor.to_wire(), ascii_guid);
        assert!(!object.attributes.contains_key("objectGUID"));
    }

    #[test]
    fn non_utf8_text_is_reported_not_crashed() {
        let user = entry(
            "CN=Odd,DC=corp,DC=test",
            &[("objectClass", &["user"])],
            &[
                ("objectGUID", vec![GUID_WIRE.to_vec()]),
                ("displayName", vec![vec![0xff, 0xfe, 0x41]]),
            ],
        );
        let object = DirectoryObject::from_entry(&user, &[]).expect("a user");
        assert_eq!(object.problems.len(), 1);
        assert_eq!(object.problems[0].attribute, "displayName");
        assert!(object.problems[0].problem.contains("not valid UTF-8"));
        assert!(object.first("displayName").is_none());
    }

    #[test]
    fn computers_ous_and_guidless_entries_are_not_objects() {
        let guid = [("objectGUID", vec![GUID_WIRE.to_vec()])];
        let computer = entry(
            "CN=PC1,DC=corp,DC=test",
            &[("objectClass", &["user", "computer"])],
            &guid,
        );
        assert!(DirectoryObject::from_entry(&computer, &[]).is_none());
        let ou = entry(
            "OU=X,DC=corp,DC=test",
            &[("objectClass", &["organizationalUnit"])],
            &guid,
        );
        assert!(DirectoryObject::from_entry(&ou, &[]).is_none());
        let no_guid = entry("CN=U,DC=corp,DC=test", &[("objectClass", &["user"])], &[]);
        assert!(DirectoryObject::from_entry(&no_guid, &[]).is_none());
    }

    #[test]
    fn system_accounts_are_recognized() {
        for (sam, critical, system) in [
            ("krbtgt", None, true),
            ("Guest", None, true),
            ("MSOL_0123456789ab", None, true),
            ("Administrator", Some("TRUE"), true),
            ("anna.schmidt", None, false),
        ] {
            let mut attrs: Vec<(&str, &[&str])> = vec![
                ("objectClass", &["user"]),
                ("sAMAccountName", std::slice::from_ref(&sam)),
            ];
            let critical_values = critical.map(|value| [value]);
            if let Some(values) = &critical_values {
                attrs.push(("isCriticalSystemObject", values));
            }
            let user = entry(
                "CN=X,DC=corp,DC=test",
                &attrs,
                &[("objectGUID", vec![GUID_WIRE.to_vec()])],
            );
            let object = DirectoryObject::from_entry(&user, &[]).expect("user");
            assert_eq!(object.is_system_object(), system, "{sam}");
        }
    }
}
