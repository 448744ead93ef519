//! The tenant's data: directory objects (users, groups, applications, service principals),
//! their change sequence for delta queries, and the per-type property tables that say what
//! Graph lets a caller write, filter on and get back by default.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The type of a directory object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Kind {
    User,
    Group,
    Application,
    ServicePrincipal,
}

impl Kind {
    /// `#microsoft.graph.user`
    pub fn odata_type(self) -> &'static str {
        match self {
            Kind::User => "#microsoft.graph.user",
            Kind::Group => "#microsoft.graph.group",
            Kind::Application => "#microsoft.graph.application",
            Kind::ServicePrincipal => "#microsoft.graph.servicePrincipal",
        }
    }

    /// `microsoft.graph.user`
    pub fn type_name(self) -> &'static str {
        &self.odata_type()[1..]
    }

    /// The entity set: `users`.
    pub fn collection(self) -> &'static str {
        match self {
            Kind::User => "users",
            Kind::Group => "groups",
            Kind::Application => "applications",
            Kind::ServicePrincipal => "servicePrincipals",
        }
    }

    /// The directory's resource name in error messages: `User`.
    pub fn resource_name(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
            Kind::Application => "Application",
            Kind::ServicePrincipal => "ServicePrincipal",
        }
    }

    pub fn properties(self) -> &'static [PropDef] {
        match self {
            Kind::User => USER_PROPERTIES,
            Kind::Group => GROUP_PROPERTIES,
            Kind::Application => APPLICATION_PROPERTIES,
            Kind::ServicePrincipal => SERVICE_PRINCIPAL_PROPERTIES,
        }
    }

    /// The property definition, found case-insensitively as Graph does.
    pub fn property(self, name: &str) -> Option<&'static PropDef> {
        self.properties()
            .iter()
            .find(|def| def.name.eq_ignore_ascii_case(name))
    }
}

/// A directory object as the emulator keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DirObject {
    pub kind: Kind,
    /// Graph properties under their canonical names, `id` included.
    pub props: Map<String, Value>,
    /// The change sequence at which each property last changed (for delta queries).
    #[serde(default)]
    pub prop_seq: BTreeMap<String, u64>,
    pub created_seq: u64,
    /// Set while the object sits in deleted items.
    #[serde(default)]
    pub deleted: Option<SoftDeleted>,
    #[serde(default)]
    pub internal: Internal,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoftDeleted {
    pub at: i64,
    pub seq: u64,
}

/// What Graph never returns as a property.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Internal {
    #[serde(default)]
    pub password_salt: Option<String>,
    #[serde(default)]
    pub password_hash: Option<String>,
    #[serde(default)]
    pub force_change_password: bool,
    /// The password hash sync credential (`v1;PPH1_MD4,…;`) sent through the emulator's
    /// password hash endpoint: while set, sign-in checks the on-premises password against it
    /// instead of the cloud password.
    #[serde(default)]
    pub synced_password_credential: Option<String>,
    #[serde(default)]
    pub global_admin: bool,
    /// Role definition ids of the other directory roles the user holds.
    #[serde(default)]
    pub directory_roles: BTreeSet<String>,
    #[serde(default)]
    pub members: BTreeSet<String>,
    #[serde(default)]
    pub owners: BTreeSet<String>,
    #[serde(default)]
    pub manager: Option<String>,
    #[serde(default)]
    pub secrets: Vec<StoredSecret>,
    /// An application's certificate credentials (`keyCredentials` shows them without the key).
    #[serde(default)]
    pub keys: Vec<StoredKey>,
    /// A user's userPrincipalName before it went to deleted items.
    #[serde(default)]
    pub original_upn: Option<String>,
    /// A user's mailbox as Exchange Online syncs it into Entra ID, for the emulator's mailbox
    /// delta (see `mailbox`); set through test hooks only. None until first set.
    #[serde(default)]
    pub mailbox: Option<Mailbox>,
    /// An application's directory extension definitions (`extensionProperties`), in the
    /// order they were registered. They stay with the application in deleted items and come
    /// back with it when it is restored.
    #[serde(default)]
    pub extension_properties: Vec<ExtensionProperty>,
}

/// A directory extension definition registered on an application
/// (https://learn.microsoft.com/en-us/graph/api/resources/extensionproperty?view=graph-rest-1.0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionProperty {
    pub id: String,
    /// The full name: `extension_{appId without hyphens}_{name}`.
    pub name: String,
    /// `Binary`, `Boolean`, `DateTime`, `Integer`, `LargeInteger` or `String`.
    pub data_type: String,
    pub is_multi_valued: bool,
    /// `User`, `Group`, `AdministrativeUnit`, `Application`, `Device`, `Organization`.
    pub target_objects: Vec<String>,
}

/// Whether a property name is a directory extension's (`extension_{appId}_{name}`), compared
/// case-insensitively as Graph compares property names.
pub fn is_extension_name(name: &str) -> bool {
    name.get(..10)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("extension_"))
}

/// The 15 keys of `onPremisesExtensionAttributes`
/// (https://learn.microsoft.com/en-us/graph/api/resources/onpremisesextensionattributes?view=graph-rest-1.0).
pub fn extension_attribute_names() -> impl Iterator<Item = String> {
    (1..=15).map(|n| format!("extensionAttribute{n}"))
}

/// `onPremisesExtensionAttributes` with every attribute unset, as Graph returns it for a user
/// that has none.
pub fn empty_extension_attributes() -> Value {
    Value::Object(
        extension_attribute_names()
            .map(|name| (name, Value::Null))
            .collect(),
    )
}

/// The `cloud…` mailbox attributes of a user (Entra Connect's names for them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mailbox {
    /// The values set, under their `cloud…` names. An absent name is null (for the voice mail
    /// settings: empty); nulls and empty lists are never kept.
    #[serde(default)]
    pub values: Map<String, Value>,
    /// The change sequence at which a value last changed (for the mailbox delta).
    pub seq: u64,
}

/// What the mailbox delta must still know of a purged user's mailbox: whether a client that
/// read the mailbox delta before the user left may hold values for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoneMailbox {
    /// When the user left the directory (went to deleted items, or was purged at once).
    pub left_seq: u64,
    /// When its mailbox last changed.
    pub changed_seq: u64,
    /// Whether it had values when it left.
    pub had_values: bool,
}

/// A certificate credential: the certificate (public) and the dates it is valid.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredKey {
    pub key_id: String,
    /// The certificate, DER in standard base64, as `keyCredentials[].key` gave it.
    pub certificate: String,
    pub start: i64,
    pub end: i64,
}

/// A client secret: only a salted digest of its text is kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSecret {
    pub key_id: String,
    pub salt: String,
    pub hash: String,
    pub start: i64,
    pub end: i64,
}

impl DirObject {
    pub fn new(kind: Kind, id: &str, seq: u64) -> Self {
        let mut props = Map::new();
        props.insert("id".to_owned(), Value::String(id.to_owned()));
        let mut prop_seq = BTreeMap::new();
        prop_seq.insert("id".to_owned(), seq);
        DirObject {
            kind,
            props,
            prop_seq,
            created_seq: seq,
            deleted: None,
            internal: Internal::default(),
        }
    }

    pub fn id(&self) -> &str {
        self.props
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub fn str_prop(&self, name: &str) -> Option<&str> {
        self.props.get(name).and_then(Value::as_str)
    }

    pub fn bool_prop(&self, name: &str) -> Option<bool> {
        self.props.get(name).and_then(Value::as_bool)
    }

    pub fn list_prop(&self, name: &str) -> Vec<String> {
        self.props
            .get(name)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sets a property and records the change sequence when the value changes.
    pub fn set(&mut self, name: &str, value: Value, seq: u64) -> bool {
        if self.props.get(name) == Some(&value) {
            return false;
        }
        self.props.insert(name.to_owned(), value);
        self.prop_seq.insert(name.to_owned(), seq);
        true
    }

    pub fn is_live(&self) -> bool {
        self.deleted.is_none()
    }

    pub fn is_unified_group(&self) -> bool {
        self.kind == Kind::Group
            && self
                .list_prop("groupTypes")
                .iter()
                .any(|t| t.eq_ignore_ascii_case("Unified"))
    }
}

/// A hard-deleted object, remembered for delta queries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tombstone {
    pub id: String,
    pub kind: Kind,
    pub seq: u64,
    /// A user that had a mailbox record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<GoneMailbox>,
}

/// A membership change, for `members@delta`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberEvent {
    pub seq: u64,
    pub group: String,
    pub member: String,
    pub member_kind: Kind,
    pub added: bool,
}

/// The state file's format. 2: digests are HMAC-SHA256 (1, the first, used the standard
/// library's `DefaultHasher`, whose algorithm may change between Rust releases). Files of
/// another format are refused with a message.
pub const STATE_FORMAT: u32 = 2;

/// The whole tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// [`STATE_FORMAT`] when written (absent, hence 0, in files of the first format).
    #[serde(default)]
    pub format: u32,
    pub tenant_id: String,
    pub initial_domain: String,
    pub signing_key: String,
    pub created: i64,
    pub seq: u64,
    pub domains: Vec<Value>,
    pub organization: Map<String, Value>,
    pub onprem_sync: Map<String, Value>,
    pub admin_user_id: String,
    pub admin_password: String,
    pub sync_app_id: String,
    pub sync_app_secret: String,
    pub objects: BTreeMap<String, DirObject>,
    #[serde(default)]
    pub tombstones: BTreeMap<String, Tombstone>,
    #[serde(default)]
    pub member_events: Vec<MemberEvent>,
    #[serde(default)]
    pub assignments: BTreeMap<String, Map<String, Value>>,
}

impl State {
    pub fn live(&self, id: &str) -> Option<&DirObject> {
        self.objects.get(id).filter(|object| object.is_live())
    }

    pub fn live_of(&self, kind: Kind, id: &str) -> Option<&DirObject> {
        self.live(id).filter(|object| object.kind == kind)
    }

    pub fn is_verified_domain(&self, domain: &str) -> bool {
        self.domains.iter().any(|d| {
            d.get("isVerified").and_then(Value::as_bool) == Some(true)
                && d.get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|name| name.eq_ignore_ascii_case(domain))
        })
    }

    /// The tenant answers to its GUID, its initial domain and every verified domain.
    pub fn answers_to(&self, tenant: &str) -> bool {
        tenant.eq_ignore_ascii_case(&self.tenant_id) || self.is_verified_domain(tenant)
    }

    pub fn application_by_app_id(&self, app_id: &str) -> Option<&DirObject> {
        self.objects.values().find(|o| {
            o.is_live()
                && o.kind == Kind::Application
                && o.str_prop("appId")
                    .is_some_and(|a| a.eq_ignore_ascii_case(app_id))
        })
    }

    pub fn service_principal_by_app_id(&self, app_id: &str) -> Option<&DirObject> {
        self.objects.values().find(|o| {
            o.is_live()
                && o.kind == Kind::ServicePrincipal
                && o.str_prop("appId")
                    .is_some_and(|a| a.eq_ignore_ascii_case(app_id))
        })
    }

    pub fn user_by_upn(&self, upn: &str) -> Option<&DirObject> {
        self.objects.values().find(|o| {
            o.is_live()
                && o.kind == Kind::User
                && o.str_prop("userPrincipalName")
                    .is_some_and(|u| u.eq_ignore_ascii_case(upn))
        })
    }
}

/// What a caller may do with a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Writable on create and update.
    ReadWrite,
    /// Writable on create only.
    CreateOnly,
    /// Refused with 400 "Property 'x' is read-only and cannot be set."
    ReadOnly,
    /// Refused with 403: Graph does not let applications write it (proxyAddresses).
    Forbidden,
    /// Written, never read back (passwordProfile).
    WriteOnly,
}

/// How `$filter` supports a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    No,
    /// Works without the advanced query parameters.
    Default,
    /// Needs `ConsistencyLevel: eventual` and `$count=true`.
    Advanced,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Str,
    Bool,
    StrList,
    /// Any JSON object or array: stored as given.
    Complex,
    DateTime,
}

impl Ty {
    pub fn edm(self) -> &'static str {
        match self {
            Str => "Edm.String",
            Bool => "Edm.Boolean",
            StrList => "Collection(Edm.String)",
            Complex => "Edm.ComplexType",
            DateTime => "Edm.DateTimeOffset",
        }
    }
}

#[derive(Debug)]
pub struct PropDef {
    pub name: &'static str,
    pub ty: Ty,
    pub access: Access,
    pub filter: Filter,
    /// Returned without `$select`.
    pub default: bool,
    /// Longest value Graph accepts (characters), 0 when unbounded here.
    pub max_len: usize,
}

const fn p(
    name: &'static str,
    ty: Ty,
    access: Access,
    filter: Filter,
    default: bool,
    max_len: usize,
) -> PropDef {
    PropDef {
        name,
        ty,
        access,
        filter,
        default,
        max_len,
    }
}

use Access::{CreateOnly, Forbidden, ReadOnly, ReadWrite, WriteOnly};
use Filter::{Advanced, Default as Dflt, No};
use Ty::{Bool, Complex, DateTime, Str, StrList};

// https://learn.microsoft.com/en-us/graph/api/resources/user?view=graph-rest-1.0 (properties)
// and https://learn.microsoft.com/en-us/graph/aad-advanced-queries (which filters need the
// advanced query parameters).
pub static USER_PROPERTIES: &[PropDef] = &[
    p("id", Str, ReadOnly, Dflt, true, 0),
    p("accountEnabled", Bool, ReadWrite, Dflt, false, 0),
    p("ageGroup", Str, ReadWrite, Dflt, false, 0),
    p("assignedLicenses", Complex, ReadOnly, Dflt, false, 0),
    p("businessPhones", StrList, ReadWrite, Dflt, true, 0),
    p("city", Str, ReadWrite, Dflt, false, 128),
    p("companyName", Str, ReadWrite, Advanced, false, 64),
    p("consentProvidedForMinor", Str, ReadWrite, Dflt, false, 0),
    p("country", Str, ReadWrite, Dflt, false, 128),
    p("createdDateTime", DateTime, ReadOnly, Dflt, false, 0),
    p("creationType", Str, ReadOnly, Dflt, false, 0),
    p("deletedDateTime", DateTime, ReadOnly, Dflt, false, 0),
    p("department", Str, ReadWrite, Dflt, false, 64),
    p("displayName", Str, ReadWrite, Dflt, true, 256),
    p("employeeHireDate", DateTime, ReadWrite, Advanced, false, 0),
    p("employeeId", Str, ReadWrite, Dflt, false, 16),
    // https://learn.microsoft.com/en-us/graph/api/resources/employeeorgdata?view=graph-rest-1.0:
    // `division` and `costCenter`, returned only on `$select`.
    p("employeeOrgData", Complex, ReadWrite, Advanced, false, 0),
    p("employeeType", Str, ReadWrite, Advanced, false, 0),
    p("externalUserState", Str, ReadOnly, Dflt, false, 0),
    p("faxNumber", Str, ReadWrite, Advanced, false, 0),
    p("givenName", Str, ReadWrite, Dflt, true, 64),
    p("identities", Complex, ReadWrite, No, false, 0),
    p("imAddresses", StrList, ReadOnly, Dflt, false, 0),
    p("jobTitle", Str, ReadWrite, Dflt, true, 128),
    p(
        "lastPasswordChangeDateTime",
        DateTime,
        ReadOnly,
        No,
        false,
        0,
    ),
    p("mail", Str, ReadWrite, Dflt, true, 0),
    p("mailNickname", Str, ReadWrite, Dflt, false, 64),
    p("mobilePhone", Str, ReadWrite, Advanced, true, 64),
    p("officeLocation", Str, ReadWrite, Advanced, true, 0),
    p("onPremisesDistinguishedName", Str, ReadOnly, No, false, 0),
    p("onPremisesDomainName", Str, ReadOnly, No, false, 0),
    p(
        "onPremisesExtensionAttributes",
        Complex,
        ReadWrite,
        Advanced,
        false,
        0,
    ),
    p("onPremisesImmutableId", Str, ReadWrite, Advanced, false, 0),
    p(
        "onPremisesLastSyncDateTime",
        DateTime,
        ReadOnly,
        Advanced,
        false,
        0,
    ),
    p(
        "onPremisesProvisioningErrors",
        Complex,
        ReadOnly,
        No,
        false,
        0,
    ),
    p(
        "onPremisesSamAccountName",
        Str,
        ReadOnly,
        Advanced,
        false,
        0,
    ),
    p(
        "onPremisesSecurityIdentifier",
        Str,
        ReadOnly,
        Dflt,
        false,
        0,
    ),
    p("onPremisesSyncEnabled", Bool, ReadOnly, Dflt, false, 0),
    p("onPremisesUserPrincipalName", Str, ReadOnly, Dflt, false, 0),
    p("otherMails", StrList, ReadWrite, Dflt, false, 0),
    p("passwordPolicies", Str, ReadWrite, Advanced, false, 0),
    p("passwordProfile", Complex, WriteOnly, No, false, 0),
    p("postalCode", Str, ReadWrite, Advanced, false, 40),
    p("preferredDataLocation", Str, ReadWrite, No, false, 0),
    p("preferredLanguage", Str, ReadWrite, Advanced, true, 0),
    p("proxyAddresses", StrList, ReadOnly, Dflt, false, 0),
    p("securityIdentifier", Str, ReadOnly, Dflt, false, 0),
    p("showInAddressList", Bool, ReadWrite, Advanced, false, 0),
    p(
        "signInSessionsValidFromDateTime",
        DateTime,
        ReadOnly,
        No,
        false,
        0,
    ),
    p("state", Str, ReadWrite, Dflt, false, 128),
    p("streetAddress", Str, ReadWrite, Advanced, false, 1024),
    p("surname", Str, ReadWrite, Dflt, true, 64),
    p("usageLocation", Str, ReadWrite, Dflt, false, 2),
    p("userPrincipalName", Str, ReadWrite, Dflt, true, 113),
    p("userType", Str, ReadWrite, Dflt, false, 0),
];

// https://learn.microsoft.com/en-us/graph/api/resources/group?view=graph-rest-1.0 (properties)
pub static GROUP_PROPERTIES: &[PropDef] = &[
    p("id", Str, ReadOnly, Dflt, true, 0),
    p("classification", Str, ReadWrite, Dflt, true, 0),
    p("createdDateTime", DateTime, ReadOnly, Advanced, true, 0),
    p("creationOptions", StrList, ReadOnly, No, true, 0),
    p("deletedDateTime", DateTime, ReadOnly, Dflt, true, 0),
    p("description", Str, ReadWrite, Dflt, true, 1024),
    p("displayName", Str, ReadWrite, Dflt, true, 256),
    p("expirationDateTime", DateTime, ReadOnly, Dflt, true, 0),
    p("groupTypes", StrList, ReadWrite, Dflt, true, 0),
    p("isAssignableToRole", Bool, CreateOnly, Dflt, true, 0),
    p("mail", Str, ReadOnly, Dflt, true, 0),
    p("mailEnabled", Bool, ReadWrite, Dflt, true, 0),
    p("mailNickname", Str, ReadWrite, Dflt, true, 64),
    p("membershipRule", Str, ReadWrite, No, true, 0),
    p(
        "membershipRuleProcessingState",
        Str,
        ReadWrite,
        Dflt,
        true,
        0,
    ),
    p("onPremisesDomainName", Str, ReadOnly, No, true, 0),
    p(
        "onPremisesLastSyncDateTime",
        DateTime,
        ReadOnly,
        Dflt,
        true,
        0,
    ),
    p("onPremisesNetBiosName", Str, ReadOnly, No, true, 0),
    p(
        "onPremisesProvisioningErrors",
        Complex,
        ReadOnly,
        No,
        true,
        0,
    ),
    p("onPremisesSamAccountName", Str, ReadOnly, Advanced, true, 0),
    p("onPremisesSecurityIdentifier", Str, ReadOnly, Dflt, true, 0),
    p("onPremisesSyncEnabled", Bool, ReadOnly, Dflt, true, 0),
    p("preferredDataLocation", Str, ReadWrite, No, true, 0),
    p("preferredLanguage", Str, ReadWrite, Dflt, true, 0),
    // Graph refuses applications that set a group's proxy addresses with 403.
    p("proxyAddresses", StrList, Forbidden, Dflt, true, 0),
    p("renewedDateTime", DateTime, ReadOnly, Dflt, true, 0),
    p("resourceBehaviorOptions", StrList, CreateOnly, No, true, 0),
    p(
        "resourceProvisioningOptions",
        StrList,
        ReadOnly,
        No,
        true,
        0,
    ),
    p("securityEnabled", Bool, ReadWrite, Dflt, true, 0),
    p("securityIdentifier", Str, ReadOnly, Dflt, true, 0),
    p("serviceProvisioningErrors", Complex, ReadOnly, No, true, 0),
    p("theme", Str, ReadWrite, No, true, 0),
    p("visibility", Str, ReadWrite, No, true, 0),
];

// https://learn.microsoft.com/en-us/graph/api/resources/application?view=graph-rest-1.0
pub static APPLICATION_PROPERTIES: &[PropDef] = &[
    p("id", Str, ReadOnly, Dflt, true, 0),
    p("addIns", Complex, ReadWrite, No, true, 0),
    p("api", Complex, ReadWrite, No, true, 0),
    p("appId", Str, ReadOnly, Dflt, true, 0),
    p("applicationTemplateId", Str, ReadOnly, Dflt, true, 0),
    p("appRoles", Complex, ReadWrite, No, true, 0),
    p("createdDateTime", DateTime, ReadOnly, Dflt, true, 0),
    p("defaultRedirectUri", Str, ReadWrite, No, true, 0),
    p("deletedDateTime", DateTime, ReadOnly, Dflt, true, 0),
    p("description", Str, ReadWrite, Dflt, true, 1024),
    p("disabledByMicrosoftStatus", Str, ReadOnly, Dflt, true, 0),
    p("displayName", Str, ReadWrite, Dflt, true, 256),
    p("groupMembershipClaims", Str, ReadWrite, No, true, 0),
    p("identifierUris", StrList, ReadWrite, Dflt, true, 0),
    p("info", Complex, ReadWrite, No, true, 0),
    p("isDeviceOnlyAuthSupported", Bool, ReadWrite, No, true, 0),
    p("isFallbackPublicClient", Bool, ReadWrite, No, true, 0),
    p("keyCredentials", Complex, ReadWrite, No, true, 0),
    p("notes", Str, ReadWrite, No, true, 0),
    p("optionalClaims", Complex, ReadWrite, No, true, 0),
    p("parentalControlSettings", Complex, ReadWrite, No, true, 0),
    p("passwordCredentials", Complex, ReadOnly, No, true, 0),
    p("publicClient", Complex, ReadWrite, No, true, 0),
    p("publisherDomain", Str, ReadOnly, Dflt, true, 0),
    p("requiredResourceAccess", Complex, ReadWrite, No, true, 0),
    p("serviceManagementReference", Str, ReadWrite, Dflt, true, 0),
    p("signInAudience", Str, ReadWrite, Dflt, true, 0),
    p("spa", Complex, ReadWrite, No, true, 0),
    p("tags", StrList, ReadWrite, Dflt, true, 0),
    p("tokenEncryptionKeyId", Str, ReadWrite, No, true, 0),
    p("verifiedPublisher", Complex, ReadOnly, No, true, 0),
    p("web", Complex, ReadWrite, No, true, 0),
];

// https://learn.microsoft.com/en-us/graph/api/resources/serviceprincipal?view=graph-rest-1.0
pub static SERVICE_PRINCIPAL_PROPERTIES: &[PropDef] = &[
    p("id", Str, ReadOnly, Dflt, true, 0),
    p("accountEnabled", Bool, ReadWrite, Dflt, true, 0),
    p("addIns", Complex, ReadWrite, No, true, 0),
    p("alternativeNames", StrList, ReadWrite, Dflt, true, 0),
    p("appDescription", Str, ReadOnly, No, true, 0),
    p("appDisplayName", Str, ReadOnly, Dflt, true, 0),
    p("appId", Str, CreateOnly, Dflt, true, 0),
    p("applicationTemplateId", Str, ReadOnly, Dflt, true, 0),
    p("appOwnerOrganizationId", Str, ReadOnly, Dflt, true, 0),
    p("appRoleAssignmentRequired", Bool, ReadWrite, No, true, 0),
    p("appRoles", Complex, ReadWrite, No, true, 0),
    p("deletedDateTime", DateTime, ReadOnly, Dflt, true, 0),
    p("description", Str, ReadWrite, Dflt, true, 1024),
    p("disabledByMicrosoftStatus", Str, ReadOnly, Dflt, true, 0),
    p("displayName", Str, ReadWrite, Dflt, true, 256),
    p("homepage", Str, ReadWrite, No, true, 0),
    p("info", Complex, ReadWrite, No, true, 0),
    p("keyCredentials", Complex, ReadWrite, No, true, 0),
    p("loginUrl", Str, ReadWrite, No, true, 0),
    p("logoutUrl", Str, ReadWrite, No, true, 0),
    p("notes", Str, ReadWrite, No, true, 0),
    p(
        "notificationEmailAddresses",
        StrList,
        ReadWrite,
        No,
        true,
        0,
    ),
    p("oauth2PermissionScopes", Complex, ReadWrite, No, true, 0),
    p("passwordCredentials", Complex, ReadOnly, No, true, 0),
    p("preferredSingleSignOnMode", Str, ReadWrite, Dflt, true, 0),
    p("replyUrls", StrList, ReadWrite, No, true, 0),
    p(
        "resourceSpecificApplicationPermissions",
        Complex,
        ReadOnly,
        No,
        true,
        0,
    ),
    p("servicePrincipalNames", StrList, ReadWrite, Dflt, true, 0),
    p("servicePrincipalType", Str, ReadOnly, Dflt, true, 0),
    p("signInAudience", Str, ReadOnly, Dflt, true, 0),
    p("tags", StrList, ReadWrite, Dflt, true, 0),
    p("tokenEncryptionKeyId", Str, ReadWrite, No, true, 0),
    p("verifiedPublisher", Complex, ReadOnly, No, true, 0),
];

/// Checks a JSON value against a property type (null is always allowed here; required
/// properties are checked by the caller).
pub fn type_matches(ty: Ty, value: &Value) -> bool {
    match (ty, value) {
        (_, Value::Null) => true,
        (Str | DateTime, Value::String(_)) | (Bool, Value::Bool(_)) => true,
        (StrList, Value::Array(items)) => items.iter().all(Value::is_string),
        (Complex, Value::Object(_) | Value::Array(_)) => true,
        _ => false,
    }
}
