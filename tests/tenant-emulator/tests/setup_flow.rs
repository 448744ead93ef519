//! What dirsync's setup does with an administrator's delegated token: read the organization
//! and domains, register an app with a secret, a service principal and app role assignments,
//! prove the new app can sign in, and turn on directory synchronization.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn setup_registers_an_app_whose_token_carries_the_assigned_roles() {
    let emulator = start();
    let info = &emulator.info;
    let admin = admin_token(info).await;

    let organization = graph(info, &admin, Method::GET, "/organization", None).await;
    assert_eq!(organization.status, StatusCode::OK);
    let org = &organization.body["value"][0];
    assert_eq!(org["id"], json!(info.tenant_id));
    assert_eq!(org["displayName"], "Contoso Lab");
    assert_eq!(org["onPremisesSyncEnabled"], Value::Null);
    let names: Vec<&str> = org["verifiedDomains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["contoso-lab.onmicrosoft.com", DOMAIN]);
    let domain = graph(
        info,
        &admin,
        Method::GET,
        &format!("/domains/{DOMAIN}"),
        None,
    )
    .await;
    assert_eq!(domain.body["isVerified"], true);
    assert_eq!(domain.body["isInitial"], false);
    assert_eq!(
        graph(info, &admin, Method::GET, "/domains/nope.example", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let required = json!([{"resourceAppId": "00000003-0000-0000-c000-000000000000", "resourceAccess": [
        {"id": "741f803b-c850-494e-b5df-cde7c675a1ca", "type": "Role"},
        {"id": "62a82d76-70ea-41e2-9197-370581804d09", "type": "Role"}
    ]}]);
    let app = graph(info, &admin, Method::POST, "/applications", Some(json!({"displayName": "dirsync", "signInAudience": "AzureADMyOrg", "requiredResourceAccess": required}))).await;
    assert_eq!(app.status, StatusCode::CREATED, "{:?}", app.body);
    let app_id = app.body["appId"].as_str().unwrap().to_owned();
    let object_id = app.body["id"].as_str().unwrap().to_owned();
    assert_eq!(app.body["requiredResourceAccess"], required);
    let found = graph(
        info,
        &admin,
        Method::GET,
        &format!("/applications?$filter=appId%20eq%20'{app_id}'"),
        None,
    )
    .await;
    assert_eq!(found.body["value"][0]["id"], json!(object_id));
    let by_key = graph(
        info,
        &admin,
        Method::GET,
        &format!("/applications(appId='{app_id}')"),
        None,
    )
    .await;
    assert_eq!(by_key.body["id"], json!(object_id));

    let end = "2099-01-01T00:00:00Z";
    let password = graph(
        info,
        &admin,
        Method::POST,
        &format!("/applications/{object_id}/addPassword"),
        Some(json!({"passwordCredential": {"displayName": "dirsync", "endDateTime": end}})),
    )
    .await;
    assert_eq!(password.status, StatusCode::OK, "{:?}", password.body);
    let secret = password.body["secretText"].as_str().unwrap().to_owned();
    // A time-zone offset out of range is a bad value, not an overflow.
    for end in [
        "2030-01-01T00:00:00+99999999999999999:00",
        "2030-01-01T00:00:00-24:00",
    ] {
        let refused = graph(
            info,
            &admin,
            Method::POST,
            &format!("/applications/{object_id}/addPassword"),
            Some(json!({"passwordCredential": {"displayName": "bad", "endDateTime": end}})),
        )
        .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{end}");
        assert!(
            refused.error_message().contains("Edm.DateTimeOffset"),
            "{:?}",
            refused.body
        );
    }
    assert_eq!(password.body["endDateTime"], end);
    assert_eq!(password.body["hint"], json!(&secret[..3]));
    // The secret is shown once: the application keeps only its metadata.
    let stored = graph(
        info,
        &admin,
        Method::GET,
        &format!("/applications/{object_id}?$select=passwordCredentials"),
        None,
    )
    .await;
    assert_eq!(
        stored.body["passwordCredentials"][0]["secretText"],
        Value::Null
    );
    assert_eq!(
        stored.body["passwordCredentials"][0]["keyId"],
        password.body["keyId"]
    );

    // Without a service principal the app cannot sign in.
    let early = token_request(
        info,
        &info.tenant_id,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app_id),
            ("client_secret", &secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_eq!(early.status, StatusCode::BAD_REQUEST, "{:?}", early.body);

    let sp = graph(
        info,
        &admin,
        Method::POST,
        "/servicePrincipals",
        Some(json!({"appId": app_id})),
    )
    .await;
    assert_eq!(sp.status, StatusCode::CREATED, "{:?}", sp.body);
    let sp_id = sp.body["id"].as_str().unwrap().to_owned();
    let twice = graph(
        info,
        &admin,
        Method::POST,
        "/servicePrincipals",
        Some(json!({"appId": app_id})),
    )
    .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);

    let graph_sp = graph(info, &admin, Method::GET, "/servicePrincipals?$filter=appId%20eq%20'00000003-0000-0000-c000-000000000000'&$select=id,appRoles", None).await;
    let graph_sp_id = graph_sp.body["value"][0]["id"].as_str().unwrap().to_owned();
    let roles = graph_sp.body["value"][0]["appRoles"].as_array().unwrap();
    for (id, value) in [
        ("df021288-bdef-4463-88db-98f22de89214", "User.Read.All"),
        (
            "62a82d76-70ea-41e2-9197-370581804d09",
            "Group.ReadWrite.All",
        ),
        ("dbb9058a-0e50-45d7-ae91-66909b5d4664", "Domain.Read.All"),
        (
            "18a4783c-866b-4cc7-a460-3d5e5662c884",
            "Application.ReadWrite.OwnedBy",
        ),
    ] {
        assert!(
            roles.iter().any(|r| r["id"] == id && r["value"] == value),
            "{value}"
        );
    }

    let assign =
        |role: &str| json!({"principalId": sp_id, "resourceId": graph_sp_id, "appRoleId": role});
    let assigned = graph(
        info,
        &admin,
        Method::POST,
        &format!("/servicePrincipals/{graph_sp_id}/appRoleAssignedTo"),
        Some(assign("741f803b-c850-494e-b5df-cde7c675a1ca")),
    )
    .await;
    assert_eq!(assigned.status, StatusCode::CREATED, "{:?}", assigned.body);
    assert_eq!(assigned.body["principalType"], "ServicePrincipal");
    assert_eq!(assigned.body["resourceDisplayName"], "Microsoft Graph");
    let again = graph(
        info,
        &admin,
        Method::POST,
        &format!("/servicePrincipals/{graph_sp_id}/appRoleAssignedTo"),
        Some(assign("741f803b-c850-494e-b5df-cde7c675a1ca")),
    )
    .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    let unknown_role = graph(
        info,
        &admin,
        Method::POST,
        &format!("/servicePrincipals/{graph_sp_id}/appRoleAssignedTo"),
        Some(assign("00000000-1111-2222-3333-444444444444")),
    )
    .await;
    assert_eq!(unknown_role.status, StatusCode::BAD_REQUEST);
    assert!(
        unknown_role
            .error_message()
            .starts_with("Permission being assigned was not found on application"),
        "{:?}",
        unknown_role.body
    );

    let token = app_token_for(info, &app_id, &secret).await;
    assert_eq!(
        graph(info, &token, Method::GET, "/users", None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        graph(info, &token, Method::GET, "/groups", None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // A new role counts for tokens issued after it.
    graph(
        info,
        &admin,
        Method::POST,
        &format!("/servicePrincipals/{graph_sp_id}/appRoleAssignedTo"),
        Some(assign("62a82d76-70ea-41e2-9197-370581804d09")),
    )
    .await;
    assert_eq!(
        graph(info, &token, Method::GET, "/groups", None)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let renewed = app_token_for(info, &app_id, &secret).await;
    assert_eq!(
        graph(info, &renewed, Method::GET, "/groups", None)
            .await
            .status,
        StatusCode::OK
    );

    let listed = graph(
        info,
        &admin,
        Method::GET,
        &format!("/servicePrincipals/{sp_id}/appRoleAssignments"),
        None,
    )
    .await;
    assert_eq!(listed.body["value"].as_array().unwrap().len(), 2);
    let assignment_id = assigned.body["id"].as_str().unwrap();
    let removed = graph(
        info,
        &admin,
        Method::DELETE,
        &format!("/servicePrincipals/{graph_sp_id}/appRoleAssignedTo/{assignment_id}"),
        None,
    )
    .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let listed = graph(
        info,
        &admin,
        Method::GET,
        &format!("/servicePrincipals/{graph_sp_id}/appRoleAssignedTo?$select=id"),
        None,
    )
    .await;
    assert!(
        !listed.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == assignment_id)
    );

    // removePassword: the secret stops working.
    let key_id = password.body["keyId"].as_str().unwrap();
    let gone = graph(
        info,
        &admin,
        Method::POST,
        &format!("/applications/{object_id}/removePassword"),
        Some(json!({"keyId": key_id})),
    )
    .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let refused = token_request(
        info,
        &info.tenant_id,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app_id),
            ("client_secret", &secret),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_eq!(refused.body["error_codes"], json!([7000215]));
}

#[tokio::test]
async fn directory_synchronization_is_turned_on_by_a_signed_in_administrator_only() {
    let emulator = start();
    let info = &emulator.info;
    let admin = admin_token(info).await;
    let app = app_token(info).await;

    let app_read = graph(
        info,
        &app,
        Method::GET,
        "/directory/onPremisesSynchronization",
        None,
    )
    .await;
    assert_eq!(app_read.status, StatusCode::FORBIDDEN);
    let settings = graph(
        info,
        &admin,
        Method::GET,
        "/directory/onPremisesSynchronization",
        None,
    )
    .await;
    assert_eq!(settings.status, StatusCode::OK);
    let id = settings.body["value"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        settings.body["value"][0]["features"]["passwordSyncEnabled"],
        false
    );

    let body = json!({"features": {"passwordSyncEnabled": true}});
    let app_write = graph(
        info,
        &app,
        Method::PATCH,
        &format!("/directory/onPremisesSynchronization/{id}"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(app_write.status, StatusCode::FORBIDDEN);
    let changed = graph(
        info,
        &admin,
        Method::PATCH,
        &format!("/directory/onPremisesSynchronization/{id}"),
        Some(body),
    )
    .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{:?}", changed.body);
    let read = graph(
        info,
        &admin,
        Method::GET,
        &format!("/directory/onPremisesSynchronization/{id}"),
        None,
    )
    .await;
    assert_eq!(read.body["features"]["passwordSyncEnabled"], true);
    assert_eq!(
        read.body["features"]["softMatchOnUpnEnabled"], true,
        "other features unchanged"
    );
    let unknown = graph(
        info,
        &admin,
        Method::PATCH,
        &format!("/directory/onPremisesSynchronization/{id}"),
        Some(json!({"features": {"teleportEnabled": true}})),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);

    let enable = graph(
        info,
        &admin,
        Method::PATCH,
        &format!("/organization/{}", info.tenant_id),
        Some(json!({"onPremisesSyncEnabled": true})),
    )
    .await;
    assert_eq!(enable.status, StatusCode::NO_CONTENT, "{:?}", enable.body);
    let org = graph(info, &admin, Method::GET, "/organization", None).await;
    assert_eq!(org.body["value"][0]["onPremisesSyncEnabled"], true);
    let read_only = graph(
        info,
        &admin,
        Method::PATCH,
        &format!("/organization/{}", info.tenant_id),
        Some(json!({"displayName": "Renamed"})),
    )
    .await;
    assert_eq!(
        read_only.error_message(),
        "Property 'displayName' is read-only and cannot be set."
    );
    let wrong_id = graph(
        info,
        &admin,
        Method::PATCH,
        "/organization/00000000-0000-0000-0000-000000000000",
        Some(json!({"onPremisesSyncEnabled": true})),
    )
    .await;
    assert_eq!(wrong_id.status, StatusCode::NOT_FOUND);

    // A user without an administrator role cannot consent to the scope that changes the
    // tenant (AADSTS65001), and with the scopes a user may consent to, changes nothing.
    create_user(info, &admin, "plain", "cGxhaW5wbGFpbnBsYWlucGw=").await;
    let username = format!("plain@{DOMAIN}");
    let sign_in = |scope: &'static str| {
        let username = username.clone();
        async move {
            token_request(
                info,
                &info.tenant_id,
                &[
                    ("grant_type", "password"),
                    ("client_id", GRAPH_CLI),
                    ("username", &username),
                    ("password", "Initial-Passw0rd!"),
                    ("scope", scope),
                ],
            )
            .await
        }
    };
    let refused = sign_in("Organization.ReadWrite.All User.ReadWrite.All").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.body["error"], "invalid_grant");
    assert_eq!(refused.body["error_codes"], json!([65001]));
    let plain = sign_in("User.ReadBasic.All").await;
    assert_eq!(plain.status, StatusCode::OK, "{:?}", plain.body);
    let plain = plain.body["access_token"].as_str().unwrap();
    let refused = graph(
        info,
        plain,
        Method::PATCH,
        &format!("/organization/{}", info.tenant_id),
        Some(json!({"onPremisesSyncEnabled": false})),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let read = graph(info, plain, Method::GET, "/users?$select=id", None).await;
    assert_eq!(read.status, StatusCode::OK, "reading needs the scope only");
}

/// Entra's default "Users can register applications": any user, signed in with Azure CLI (pre-
/// authorized for every user), registers an app and becomes its owner; they manage their own
/// app (a secret, deleting it) but no one else's, and create no service principal and grant no
/// permission. `GET /applications/{id}/owners` lists the owners.
#[tokio::test]
async fn any_user_may_register_an_app_and_owns_it() {
    let emulator = start();
    let info = &emulator.info;
    let admin = admin_token(info).await;
    let user = create_user(info, &app_token(info).await, "ordinary", "b3JkaW5hcnk=").await;
    let user_id = user["id"].as_str().unwrap().to_owned();
    let signed_in = token_request(
        info,
        &info.tenant_id,
        &[
            ("grant_type", "password"),
            ("client_id", "04b07795-8ddb-461a-bbee-02f9e1bf7b46"),
            ("username", &format!("ordinary@{DOMAIN}")),
            ("password", "Initial-Passw0rd!"),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_eq!(signed_in.status, StatusCode::OK, "{:?}", signed_in.body);
    let scope = signed_in.body["scope"].as_str().unwrap_or_default();
    assert!(scope.contains("Application.ReadWrite.All"), "{scope}");
    let token = signed_in.body["access_token"].as_str().unwrap().to_owned();

    let app = graph(
        info,
        &token,
        Method::POST,
        "/applications",
        Some(json!({"displayName": "dirsync (victim)"})),
    )
    .await;
    assert_eq!(app.status, StatusCode::CREATED, "{:?}", app.body);
    let id = app.body["id"].as_str().unwrap().to_owned();
    let owners = graph(
        info,
        &admin,
        Method::GET,
        &format!("/applications/{id}/owners"),
        None,
    )
    .await;
    assert_eq!(owners.status, StatusCode::OK, "{:?}", owners.body);
    let owner_ids: Vec<&str> = owners.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|owner| owner["id"].as_str().unwrap())
        .collect();
    assert_eq!(owner_ids, [user_id.as_str()]);
    assert_eq!(
        owners.body["value"][0]["@odata.type"],
        "#microsoft.graph.user"
    );

    // Their own app: a secret. Another's (the pre-registered sync app): refused.
    let secret = graph(
        info,
        &token,
        Method::POST,
        &format!("/applications/{id}/addPassword"),
        Some(json!({})),
    )
    .await;
    assert_eq!(secret.status, StatusCode::OK, "{:?}", secret.body);
    let sync_app = graph(
        info,
        &admin,
        Method::GET,
        &format!("/applications(appId='{}')", info.client_id),
        None,
    )
    .await;
    let other = graph(
        info,
        &token,
        Method::POST,
        &format!(
            "/applications/{}/addPassword",
            sync_app.body["id"].as_str().unwrap()
        ),
        Some(json!({})),
    )
    .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    // No service principal, no permission grant.
    let sp = graph(
        info,
        &token,
        Method::POST,
        "/servicePrincipals",
        Some(json!({"appId": app.body["appId"]})),
    )
    .await;
    assert_eq!(sp.status, StatusCode::FORBIDDEN);
    let deleted = graph(
        info,
        &token,
        Method::DELETE,
        &format!("/applications/{id}"),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
}
