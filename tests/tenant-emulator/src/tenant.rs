//! A new tenant as it looks after sign-up: the organization, its domains, a Global
//! Administrator, the Microsoft Graph service principal with its application roles, and the
//! pre-registered sync app (application, service principal, client secret, role assignments).

use serde_json::{Map, Value, json};

use crate::model::{DirObject, Kind, State, StoredSecret};
use crate::util::{self, new_guid, random_string, rfc3339, unix_now};

/// Microsoft Graph's application ID, the same in every tenant.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// "Microsoft Graph Command Line Tools": Microsoft's public client for delegated sign-in.
pub const GRAPH_CLI_APP_ID: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";

/// First-party public clients the emulator knows (no secret, delegated flows only).
/// Microsoft Azure CLI's application ID.
pub const AZURE_CLI_APP_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

/// The Graph scopes Microsoft pre-authorizes Azure CLI for, for every user of every tenant (what
/// `az account get-access-token --resource-type ms-graph` carries in `scp`); what a user can then
/// do is still bounded by their directory role.
pub const AZURE_CLI_PREAUTHORIZED: &[&str] = &[
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "Directory.AccessAsUser.All",
    "Group.ReadWrite.All",
    "User.ReadWrite.All",
];

pub const FIRST_PARTY_PUBLIC_CLIENTS: &[(&str, &str)] = &[
    (GRAPH_CLI_APP_ID, "Microsoft Graph Command Line Tools"),
    (AZURE_CLI_APP_ID, "Microsoft Azure CLI"),
    (
        "1950a258-227b-4e31-a9cf-717495945fc2",
        "Microsoft Azure PowerShell",
    ),
];

/// Microsoft Graph application roles (application permissions) with their real IDs, from the
/// Microsoft Graph permissions reference
/// (https://learn.microsoft.com/en-us/graph/permissions-reference).
pub const GRAPH_APP_ROLES: &[(&str, &str, &str, &str)] = &[
    (
        "483bed4a-2ad3-4361-a73b-c83ccdbdc53c",
        "RoleManagement.Read.Directory",
        "Read all directory RBAC settings",
        "Allows the app to read the role-based access control (RBAC) settings for your company's directory, without a signed-in user. This includes reading directory role templates, directory roles and memberships.",
    ),
    (
        "df021288-bdef-4463-88db-98f22de89214",
        "User.Read.All",
        "Read all users' full profiles",
        "Allows the app to read user profiles without a signed in user.",
    ),
    (
        "741f803b-c850-494e-b5df-cde7c675a1ca",
        "User.ReadWrite.All",
        "Read and write all users' full profiles",
        "Allows the app to read and update user profiles without a signed in user.",
    ),
    (
        "cc117bb9-00cf-4eb8-b580-ea2a878fe8f7",
        "User-PasswordProfile.ReadWrite.All",
        "Read and write all password profiles and reset user passwords",
        "Allows the app to read and write password profiles and reset passwords for all users, without a signed-in user.",
    ),
    (
        "97235f07-e226-4f63-ace3-39588e11d3a1",
        "User.ReadBasic.All",
        "Read all users' basic profiles",
        "Allows the app to read a basic set of profile properties of other users in your organization without a signed-in user. Includes display name, first and last name, email address, open extensions, and photo.",
    ),
    (
        "09850681-111b-4a89-9bed-3f2cae46d706",
        "User.Invite.All",
        "Invite guest users to the organization",
        "Allows the app to invite guest users to the organization, without a signed-in user.",
    ),
    (
        "5b567255-7703-4780-807c-7be8301ae99b",
        "Group.Read.All",
        "Read all groups",
        "Allows the app to read group properties and memberships, and read the calendar and conversations for all groups, without a signed-in user.",
    ),
    (
        "62a82d76-70ea-41e2-9197-370581804d09",
        "Group.ReadWrite.All",
        "Read and write all groups",
        "Allows the app to create groups, read all group properties and memberships, update group properties and memberships, and delete groups. Also allows the app to read and write group calendar and conversations.  All of these operations can be performed by the app without a signed-in user.",
    ),
    (
        "bf7b1a76-6e77-406b-b258-bf5c7720e98f",
        "Group.Create",
        "Create groups",
        "Allows the app to create groups without a signed-in user.",
    ),
    (
        "98830695-27a2-44f7-8c18-0c3ebc9698f6",
        "GroupMember.Read.All",
        "Read all group memberships",
        "Allows the app to read memberships and basic group properties for all groups without a signed-in user.",
    ),
    (
        "dbaae8cf-10b5-4b86-a4a1-f871c94c6695",
        "GroupMember.ReadWrite.All",
        "Read and write all group memberships",
        "Allows the app to list groups, read basic properties, read and update the membership of the groups this app has access to without a signed-in user. Group properties and owners cannot be updated and groups cannot be deleted.",
    ),
    (
        "7ab1d382-f21e-4acd-a863-ba3e13f7da61",
        "Directory.Read.All",
        "Read directory data",
        "Allows the app to read data in your organization's directory, such as users, groups and apps, without a signed-in user.",
    ),
    (
        "19dbc75e-c2e2-444c-a770-ec69d8559fc7",
        "Directory.ReadWrite.All",
        "Read and write directory data",
        "Allows the app to read and write data in your organization's directory, such as users, and groups, without a signed-in user.  Does not allow user or group deletion.",
    ),
    (
        "dbb9058a-0e50-45d7-ae91-66909b5d4664",
        "Domain.Read.All",
        "Read domains",
        "Allows the app to read all domain properties without a signed-in user.",
    ),
    (
        "7e05723c-0bb0-42da-be95-ae9f08a6e53c",
        "Domain.ReadWrite.All",
        "Read and write domains",
        "Allows the app to read and write all domain properties without a signed in user.  Also allows the app to add,  verify and remove domains.",
    ),
    (
        "498476ce-e0fe-48b0-b801-37ba7e2685c6",
        "Organization.Read.All",
        "Read organization information",
        "Allows the app to read the organization and related resources, without a signed-in user. Related resources include things like subscribed skus and tenant branding information.",
    ),
    (
        "292d869f-3427-49a8-9dab-8c70152b74e9",
        "Organization.ReadWrite.All",
        "Read and write organization information",
        "Allows the app to read and write the organization and related resources, without a signed-in user. Related resources include things like subscribed skus and tenant branding information.",
    ),
    (
        "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30",
        "Application.Read.All",
        "Read all applications",
        "Allows the app to read all applications and service principals without a signed-in user.",
    ),
    (
        "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9",
        "Application.ReadWrite.All",
        "Read and write all applications",
        "Allows the app to create, read, update and delete applications and service principals without a signed-in user.  Does not allow management of consent grants.",
    ),
    (
        "18a4783c-866b-4cc7-a460-3d5e5662c884",
        "Application.ReadWrite.OwnedBy",
        "Manage apps that this app creates or owns",
        "Allows the app to create other applications, and fully manage those applications (read, update, update application secrets and delete), without a signed-in user.  It cannot update any apps that it is not an owner of.",
    ),
    (
        "06b708a9-e830-4db3-a914-8e69da51d44f",
        "AppRoleAssignment.ReadWrite.All",
        "Manage app permission grants and app role assignments",
        "Allows the app to manage permission grants for application permissions to any API (including Microsoft Graph) and application assignments for any app, without a signed-in user.",
    ),
    (
        "1138cb37-bd11-4084-a2b7-9f71582aeddb",
        "Device.ReadWrite.All",
        "Read and write devices",
        "Allows the app to read and write all device properties without a signed in user.  Does not allow device creation, device deletion or update of device alternative security identifiers.",
    ),
    (
        "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8",
        "RoleManagement.ReadWrite.Directory",
        "Read and write all directory RBAC settings",
        "Allows the app to read and manage the role-based access control (RBAC) settings for your company's directory, without a signed-in user. This includes instantiating directory roles and managing directory role membership, and reading directory role templates, directory roles and memberships.",
    ),
];

/// Delegated permissions (scopes) of Microsoft Graph the emulator accepts in a sign-in.
pub const GRAPH_SCOPES: &[&str] = &[
    "User.Read",
    "User.ReadWrite",
    "User.ReadBasic.All",
    "User.Read.All",
    "User.ReadWrite.All",
    "User-PasswordProfile.ReadWrite.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Group.Create",
    "GroupMember.Read.All",
    "GroupMember.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Directory.AccessAsUser.All",
    "Domain.Read.All",
    "Domain.ReadWrite.All",
    "Organization.Read.All",
    "Organization.ReadWrite.All",
    "Application.Read.All",
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "OnPremDirectorySynchronization.Read.All",
    "OnPremDirectorySynchronization.ReadWrite.All",
    "RoleManagement.ReadWrite.Directory",
];

/// OpenID Connect scopes: granted, never Graph permissions.
pub const OIDC_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// The roles the pre-registered sync app gets: what dirsync's own sync app is granted
/// (Organization.Read.All reads the directory size quota from the beta organization).
pub const SYNC_APP_ROLES: &[&str] = &[
    "User.ReadWrite.All",
    "Group.ReadWrite.All",
    "Domain.Read.All",
    "RoleManagement.Read.Directory",
    "Organization.Read.All",
];

pub fn graph_role_id(value: &str) -> Option<&'static str> {
    GRAPH_APP_ROLES
        .iter()
        .find(|(_, name, _, _)| name.eq_ignore_ascii_case(value))
        .map(|(id, _, _, _)| *id)
}

/// The parameters of a new tenant.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub initial_domain: String,
    pub verified_domains: Vec<String>,
}

fn domain(name: &str, initial: bool) -> Value {
    json!({
        "id": name,
        "authenticationType": "Managed",
        "availabilityStatus": null,
        "isAdminManaged": true,
        "isDefault": initial,
        "isInitial": initial,
        "isRoot": true,
        "isVerified": true,
        "passwordNotificationWindowInDays": 14,
        "passwordValidityPeriodInDays": 2_147_483_647,
        "supportedServices": if initial { json!(["Email", "OfficeCommunicationsOnline"]) } else { json!(["Email"]) },
        "state": null,
    })
}

/// A salted digest of a password or secret.
pub fn seal(secret: &str) -> (String, String) {
    let salt = random_string(16, util::ALNUM);
    let hash = util::digest(&salt, &[secret]);
    (salt, hash)
}

pub fn unseal_matches(salt: &str, hash: &str, secret: &str) -> bool {
    util::digest(salt, &[secret]) == hash
}

/// A password that meets Entra's complexity rules.
pub fn random_password() -> String {
    format!(
        "{}-{}!{}",
        random_string(6, b"ABCDEFGHJKLMNPQRSTUVWXYZ"),
        random_string(6, b"abcdefghijkmnopqrstuvwxyz"),
        random_string(4, b"23456789")
    )
}

/// A client secret in Entra's shape: a three-character hint, `8Q~`, then random characters.
pub fn random_client_secret() -> String {
    format!(
        "{}8Q~{}",
        random_string(3, util::ALNUM),
        random_string(37, util::SECRET_CHARS)
    )
}

/// A password credential: the public part (for the application's `passwordCredentials`) and
/// the sealed secret.
pub fn password_credential(
    display_name: Option<&str>,
    secret: &str,
    start: i64,
    end: i64,
) -> (Value, StoredSecret) {
    let key_id = new_guid();
    let (salt, hash) = seal(secret);
    let public = json!({
        "customKeyIdentifier": null,
        "displayName": display_name,
        "endDateTime": rfc3339(end),
        "hint": secret.chars().take(3).collect::<String>(),
        "keyId": key_id,
        "secretText": null,
        "startDateTime": rfc3339(start),
    });
    (
        public,
        StoredSecret {
            key_id,
            salt,
            hash,
            start,
            end,
        },
    )
}

/// A new application object with Graph's defaults.
pub fn new_application(
    id: &str,
    app_id: &str,
    display_name: &str,
    initial_domain: &str,
    seq: u64,
) -> DirObject {
    let mut app = DirObject::new(Kind::Application, id, seq);
    let now = unix_now();
    let defaults = json!({
        "addIns": [],
        "api": {"acceptMappedClaims": null, "knownClientApplications": [], "oauth2PermissionScopes": [], "preAuthorizedApplications": [], "requestedAccessTokenVersion": 2},
        "appId": app_id,
        "applicationTemplateId": null,
        "appRoles": [],
        "createdDateTime": rfc3339(now),
        "defaultRedirectUri": null,
        "deletedDateTime": null,
        "description": null,
        "disabledByMicrosoftStatus": null,
        "displayName": display_name,
        "groupMembershipClaims": null,
        "identifierUris": [],
        "info": {"logoUrl": null, "marketingUrl": null, "privacyStatementUrl": null, "supportUrl": null, "termsOfServiceUrl": null},
        "isDeviceOnlyAuthSupported": null,
        "isFallbackPublicClient": null,
        "keyCredentials": [],
        "notes": null,
        "optionalClaims": null,
        "parentalControlSettings": {"countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow"},
        "passwordCredentials": [],
        "publicClient": {"redirectUris": []},
        "publisherDomain": initial_domain,
        "requiredResourceAccess": [],
        "serviceManagementReference": null,
        // Graph's default (application-post-applications), unlike the admin center's.
        "signInAudience": "AzureADandPersonalMicrosoftAccount",
        "spa": {"redirectUris": []},
        "tags": [],
        "tokenEncryptionKeyId": null,
        "verifiedPublisher": {"addedDateTime": null, "displayName": null, "verifiedPublisherId": null},
        "web": {"homePageUrl": null, "logoutUrl": null, "redirectUris": [], "implicitGrantSettings": {"enableAccessTokenIssuance": false, "enableIdTokenIssuance": false}},
    });
    if let Value::Object(map) = defaults {
        for (key, value) in map {
            app.set(&key, value, seq);
        }
    }
    app
}

/// A new service principal for an application (or a Microsoft first-party resource).
pub fn new_service_principal(
    id: &str,
    app_id: &str,
    display_name: &str,
    owner_tenant: &str,
    app_roles: &Value,
    sign_in_audience: &str,
    seq: u64,
) -> DirObject {
    let mut sp = DirObject::new(Kind::ServicePrincipal, id, seq);
    let defaults = json!({
        "accountEnabled": true,
        "addIns": [],
        "alternativeNames": [],
        "appDescription": null,
        "appDisplayName": display_name,
        "appId": app_id,
        "applicationTemplateId": null,
        "appOwnerOrganizationId": owner_tenant,
        "appRoleAssignmentRequired": false,
        "appRoles": app_roles,
        "deletedDateTime": null,
        "description": null,
        "disabledByMicrosoftStatus": null,
        "displayName": display_name,
        "homepage": null,
        "info": {"logoUrl": null, "marketingUrl": null, "privacyStatementUrl": null, "supportUrl": null, "termsOfServiceUrl": null},
        "keyCredentials": [],
        "loginUrl": null,
        "logoutUrl": null,
        "notes": null,
        "notificationEmailAddresses": [],
        "oauth2PermissionScopes": [],
        "passwordCredentials": [],
        "preferredSingleSignOnMode": null,
        "replyUrls": [],
        "resourceSpecificApplicationPermissions": [],
        "servicePrincipalNames": [app_id],
        "servicePrincipalType": "Application",
        "signInAudience": sign_in_audience,
        "tags": [],
        "tokenEncryptionKeyId": null,
        "verifiedPublisher": {"addedDateTime": null, "displayName": null, "verifiedPublisherId": null},
    });
    if let Value::Object(map) = defaults {
        for (key, value) in map {
            sp.set(&key, value, seq);
        }
    }
    sp
}

/// An appRoleAssignment record.
pub fn app_role_assignment(
    principal: &DirObject,
    resource: &DirObject,
    app_role_id: &str,
) -> Map<String, Value> {
    // Real assignment IDs are 43-character base64url strings.
    let mut bytes = util::random_bytes().to_vec();
    bytes.extend_from_slice(&util::random_bytes());
    let id = util::b64url(&bytes[..32]);
    let principal_type = match principal.kind {
        Kind::User => "User",
        Kind::Group => "Group",
        _ => "ServicePrincipal",
    };
    let mut map = Map::new();
    map.insert("id".into(), json!(id));
    map.insert("deletedDateTime".into(), Value::Null);
    map.insert("appRoleId".into(), json!(app_role_id));
    map.insert("createdDateTime".into(), json!(rfc3339(unix_now())));
    map.insert(
        "principalDisplayName".into(),
        principal
            .props
            .get("displayName")
            .cloned()
            .unwrap_or(Value::Null),
    );
    map.insert("principalId".into(), json!(principal.id()));
    map.insert("principalType".into(), json!(principal_type));
    map.insert(
        "resourceDisplayName".into(),
        resource
            .props
            .get("displayName")
            .cloned()
            .unwrap_or(Value::Null),
    );
    map.insert("resourceId".into(), json!(resource.id()));
    map
}

/// The organization's `verifiedDomains` entry for a domain.
fn verified_domain(d: &Value) -> Value {
    json!({
        "capabilities": if d["isInitial"] == json!(true) { "Email, OfficeCommunicationsOnline" } else { "Email" },
        "isDefault": d["isDefault"],
        "isInitial": d["isInitial"],
        "name": d["id"],
        "type": "Managed",
    })
}

/// Adds verified domains a restarted tenant does not have yet.
pub fn add_domains(inner: &mut crate::store::Inner, names: &[String]) {
    let mut added = false;
    for name in names {
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() || inner.state.domains.iter().any(|d| d["id"] == json!(name)) {
            continue;
        }
        inner.state.domains.push(domain(&name, false));
        added = true;
    }
    if added {
        let verified: Vec<Value> = inner.state.domains.iter().map(verified_domain).collect();
        inner
            .state
            .organization
            .insert("verifiedDomains".into(), json!(verified));
        inner.next_seq();
        inner.touch_domains();
        inner.touch_organization();
    }
}

/// Builds a new tenant.
pub fn create(params: &NewTenant) -> State {
    let now = unix_now();
    let tenant_id = new_guid();
    let initial = params.initial_domain.to_ascii_lowercase();
    let mut seq = 0u64;
    let mut next = || {
        seq += 1;
        seq
    };

    let mut domains = vec![domain(&initial, true)];
    for extra in &params.verified_domains {
        let extra = extra.to_ascii_lowercase();
        if !extra.is_empty() && !domains.iter().any(|d| d["id"] == json!(extra)) {
            domains.push(domain(&extra, false));
        }
    }
    let verified: Vec<Value> = domains.iter().map(verified_domain).collect();

    let mut organization = Map::new();
    for (key, value) in [
        ("id", json!(tenant_id)),
        ("assignedPlans", json!([])),
        ("businessPhones", json!([])),
        ("city", Value::Null),
        ("country", Value::Null),
        ("countryLetterCode", json!("US")),
        ("createdDateTime", json!(rfc3339(now))),
        ("defaultUsageLocation", Value::Null),
        ("deletedDateTime", Value::Null),
        ("displayName", json!("Contoso Lab")),
        ("marketingNotificationEmails", json!([])),
        ("onPremisesLastSyncDateTime", Value::Null),
        ("onPremisesSyncEnabled", Value::Null),
        ("postalCode", Value::Null),
        ("preferredLanguage", json!("en")),
        ("privacyProfile", Value::Null),
        ("provisionedPlans", json!([])),
        ("securityComplianceNotificationMails", json!([])),
        ("securityComplianceNotificationPhones", json!([])),
        ("state", Value::Null),
        ("street", Value::Null),
        ("technicalNotificationMails", json!([])),
        ("tenantType", json!("AAD")),
        ("verifiedDomains", json!(verified)),
    ] {
        organization.insert(key.to_owned(), value);
    }

    // https://learn.microsoft.com/en-us/graph/api/onpremisesdirectorysynchronization-get?view=graph-rest-1.0
    let mut onprem_sync = Map::new();
    onprem_sync.insert("id".into(), json!(tenant_id));
    onprem_sync.insert(
        "configuration".into(),
        json!({
            "accidentalDeletionPrevention": {"synchronizationPreventionType": "enabledForCount", "alertThreshold": 500},
            "customerRequestedSynchronizationInterval": null,
            "synchronizationInterval": "PT30M",
        }),
    );
    onprem_sync.insert(
        "features".into(),
        json!({
            "blockCloudObjectTakeoverThroughHardMatchEnabled": false,
            "blockSoftMatchEnabled": false,
            "bypassDirSyncOverridesEnabled": false,
            "cloudPasswordPolicyForPasswordSyncedUsersEnabled": false,
            "concurrentCredentialUpdateEnabled": false,
            "concurrentOrgIdProvisioningEnabled": false,
            "deviceWritebackEnabled": false,
            "directoryExtensionsEnabled": false,
            "fopeConflictResolutionEnabled": false,
            "groupWriteBackEnabled": false,
            "passwordSyncEnabled": false,
            "passwordWritebackEnabled": false,
            "quarantineUponProxyAddressesConflictEnabled": true,
            "quarantineUponUpnConflictEnabled": true,
            "softMatchOnUpnEnabled": true,
            "synchronizeUpnForManagedUsersEnabled": true,
            "unifiedGroupWritebackEnabled": false,
            "userForcePasswordChangeOnLogonEnabled": false,
            "userWritebackEnabled": false,
        }),
    );

    let mut objects = std::collections::BTreeMap::new();

    // The Global Administrator.
    let admin_id = new_guid();
    let admin_password = random_password();
    let seq_admin = next();
    let mut admin = DirObject::new(Kind::User, &admin_id, seq_admin);
    let upn = format!("admin@{initial}");
    for (key, value) in [
        ("accountEnabled", json!(true)),
        ("businessPhones", json!([])),
        ("createdDateTime", json!(rfc3339(now))),
        ("creationType", Value::Null),
        ("displayName", json!("Lab Administrator")),
        ("givenName", json!("Lab")),
        ("surname", json!("Administrator")),
        ("mail", json!(upn)),
        ("mailNickname", json!("admin")),
        ("proxyAddresses", json!([format!("SMTP:{upn}")])),
        ("userPrincipalName", json!(upn)),
        ("userType", json!("Member")),
        ("usageLocation", json!("US")),
        ("otherMails", json!([])),
        ("imAddresses", json!([])),
        ("assignedLicenses", json!([])),
        ("onPremisesProvisioningErrors", json!([])),
    ] {
        admin.set(key, value, seq_admin);
    }
    let (salt, hash) = seal(&admin_password);
    admin.internal.password_salt = Some(salt);
    admin.internal.password_hash = Some(hash);
    admin.internal.global_admin = true;
    objects.insert(admin_id.clone(), admin);

    // Microsoft Graph's service principal.
    let graph_sp_id = new_guid();
    let roles: Vec<Value> = GRAPH_APP_ROLES
        .iter()
        .map(|(id, value, name, description)| {
            json!({
                "allowedMemberTypes": ["Application"],
                "description": description,
                "displayName": name,
                "id": id,
                "isEnabled": true,
                "origin": "Application",
                "value": value,
            })
        })
        .collect();
    let mut graph_sp = new_service_principal(
        &graph_sp_id,
        GRAPH_APP_ID,
        "Microsoft Graph",
        "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
        &json!(roles),
        "AzureADMultipleOrgs",
        next(),
    );
    let seq_graph = graph_sp.created_seq;
    graph_sp.set(
        "servicePrincipalNames",
        json!([
            "00000003-0000-0000-c000-000000000000/ags.windows.net",
            GRAPH_APP_ID,
            "https://canary.graph.microsoft.com",
            "https://graph.microsoft.com",
            "https://ags.windows.net",
            "https://graph.microsoft.us",
            "https://graph.microsoft.com/",
            "https://dod-graph.microsoft.us"
        ]),
        seq_graph,
    );
    graph_sp.set("servicePrincipalType", json!("Application"), seq_graph);
    let graph_sp_for_assignments = graph_sp.clone();
    objects.insert(graph_sp_id, graph_sp);

    // First-party public clients' service principals.
    for (app_id, name) in FIRST_PARTY_PUBLIC_CLIENTS {
        let id = new_guid();
        let sp = new_service_principal(
            &id,
            app_id,
            name,
            "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
            &json!([]),
            "AzureADandPersonalMicrosoftAccount",
            next(),
        );
        objects.insert(id, sp);
    }

    // The pre-registered sync app.
    let app_object_id = new_guid();
    let sync_app_id = new_guid();
    let secret = random_client_secret();
    let seq_app = next();
    let mut app = new_application(
        &app_object_id,
        &sync_app_id,
        "dirsync (pre-registered)",
        &initial,
        seq_app,
    );
    let required: Vec<Value> = SYNC_APP_ROLES
        .iter()
        .filter_map(|role| graph_role_id(role))
        .map(|id| json!({"id": id, "type": "Role"}))
        .collect();
    app.set("signInAudience", json!("AzureADMyOrg"), seq_app);
    app.set(
        "requiredResourceAccess",
        json!([{"resourceAppId": GRAPH_APP_ID, "resourceAccess": required}]),
        seq_app,
    );
    let (public, stored) =
        password_credential(Some("emulator"), &secret, now, now + 2 * 365 * 86_400);
    app.set("passwordCredentials", json!([public]), seq_app);
    app.internal.secrets.push(stored);
    app.internal.owners.insert(admin_id.clone());
    objects.insert(app_object_id, app);

    let sync_sp_id = new_guid();
    let sync_sp = new_service_principal(
        &sync_sp_id,
        &sync_app_id,
        "dirsync (pre-registered)",
        &tenant_id,
        &json!([]),
        "AzureADMyOrg",
        next(),
    );
    let mut assignments = std::collections::BTreeMap::new();
    for role in SYNC_APP_ROLES {
        if let Some(role_id) = graph_role_id(role) {
            let assignment = app_role_assignment(&sync_sp, &graph_sp_for_assignments, role_id);
            let id = assignment["id"].as_str().unwrap_or_default().to_owned();
            assignments.insert(id, assignment);
        }
    }
    objects.insert(sync_sp_id, sync_sp);

    State {
        format: crate::model::STATE_FORMAT,
        tenant_id,
        initial_domain: initial,
        signing_key: random_string(48, util::ALNUM),
        created: now,
        seq,
        domains,
        organization,
        onprem_sync,
        admin_user_id: admin_id,
        admin_password,
        sync_app_id,
        sync_app_secret: secret,
        objects,
        tombstones: std::collections::BTreeMap::new(),
        member_events: Vec::new(),
        assignments,
    }
}
