//! Who holds which directory role: role assignments and activated directory roles, read by an
//! app with RoleManagement.Read.Directory; and what an app may not do to a role holder.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const HELPDESK_ADMINISTRATOR: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";

#[tokio::test]
async fn role_holders_are_listed_and_protected_from_app_writes() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let admin = graph(
        info,
        &token,
        Method::GET,
        &format!("/users/{}", info.admin_user),
        None,
    )
    .await;
    let admin_id = admin.body["id"].as_str().unwrap().to_owned();
    let helper = create_user(info, &token, "helper", "aGVscGVyaGVscGVyaGVscGU=").await;
    let helper_id = helper["id"].as_str().unwrap().to_owned();
    emulator
        .assign_role(&helper_id, HELPDESK_ADMINISTRATOR)
        .unwrap();
    assert!(emulator.assign_role(&helper_id, "not-a-role").is_err());
    let plain = create_user(info, &token, "plain", "cGxhaW5wbGFpbnBsYWlucGw=").await;
    let plain_id = plain["id"].as_str().unwrap().to_owned();

    // Assignments by principal, with the role's definition expanded.
    let assignments = |principal: String| {
        let token = token.clone();
        async move {
            graph(
                info,
                &token,
                Method::GET,
                &format!(
                    "/roleManagement/directory/roleAssignments?$filter=principalId%20eq%20'{principal}'&$expand=roleDefinition"
                ),
                None,
            )
            .await
        }
    };
    let of_admin = assignments(admin_id.clone()).await;
    assert_eq!(of_admin.status, StatusCode::OK, "{:?}", of_admin.body);
    assert_eq!(
        of_admin.body["value"][0]["roleDefinitionId"],
        GLOBAL_ADMINISTRATOR
    );
    assert_eq!(
        of_admin.body["value"][0]["roleDefinition"]["displayName"],
        "Global Administrator"
    );
    let of_plain = assignments(plain_id.clone()).await;
    assert_eq!(of_plain.body["value"], json!([]));
    // An unsupported filter is refused, as Graph refuses it.
    let odd = graph(
        info,
        &token,
        Method::GET,
        "/roleManagement/directory/roleAssignments?$filter=startswith(principalId,'a')",
        None,
    )
    .await;
    assert_eq!(odd.status, StatusCode::BAD_REQUEST);

    // Activated roles: only those someone holds, with their own object id.
    let roles = graph(info, &token, Method::GET, "/directoryRoles", None).await;
    let listed = roles.body["value"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let helpdesk = listed
        .iter()
        .find(|role| role["roleTemplateId"] == HELPDESK_ADMINISTRATOR)
        .unwrap();
    assert_ne!(helpdesk["id"], HELPDESK_ADMINISTRATOR);
    let members = graph(
        info,
        &token,
        Method::GET,
        &format!(
            "/directoryRoles/{}/members",
            helpdesk["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(members.body["value"][0]["id"], helper_id.as_str());

    // An app with User.ReadWrite.All may change a plain user, not a role holder.
    for (id, expected) in [
        (&plain_id, StatusCode::NO_CONTENT),
        (&helper_id, StatusCode::FORBIDDEN),
    ] {
        let patch = graph(
            info,
            &token,
            Method::PATCH,
            &format!("/users/{id}"),
            Some(json!({"jobTitle": "Changed"})),
        )
        .await;
        assert_eq!(patch.status, expected, "{:?}", patch.body);
    }
    let revoke = graph(
        info,
        &token,
        Method::POST,
        &format!("/users/{plain_id}/revokeSignInSessions"),
        None,
    )
    .await;
    assert_eq!(revoke.status, StatusCode::OK);
    assert_eq!(revoke.body["value"], true);
}
