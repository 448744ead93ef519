//! The properties dirsync reads of cloud users and groups: what joining looks at and what flows.

/// The user properties read back from the cloud when joining: what matching uses and what flows,
/// so that a join writes only what differs.
pub const USER_SELECT: &[&str] = &[
    "id",
    "onPremisesImmutableId",
    "userPrincipalName",
    "mail",
    "proxyAddresses",
    "mailNickname",
    "displayName",
    "givenName",
    "surname",
    "accountEnabled",
    "jobTitle",
    "department",
    "companyName",
    "officeLocation",
    "businessPhones",
    "mobilePhone",
    "streetAddress",
    "city",
    "state",
    "postalCode",
    "country",
    "employeeId",
    // What the sync rules flow besides (README, "Sync rules"); directory extensions are
    // selected by name where a mapping writes one.
    "usageLocation",
    "onPremisesExtensionAttributes",
    "preferredLanguage",
    "employeeType",
    "employeeOrgData",
];

pub const GROUP_SELECT: &[&str] = &[
    "id",
    "displayName",
    "description",
    "mailNickname",
    "mail",
    "proxyAddresses",
    "securityEnabled",
    "mailEnabled",
    "groupTypes",
];
