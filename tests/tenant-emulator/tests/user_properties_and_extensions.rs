//! The user and group properties dirsync's sync rules write, over HTTP: usageLocation,
//! onPremisesExtensionAttributes (merged on PATCH), employeeOrgData, employeeHireDate,
//! preferredLanguage and employeeType, and directory extensions: their definitions on an
//! application (`/applications/{id}/extensionProperties`) and their values on users and groups.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_emulator::ReadyInfo;

const ANCHOR: &str = "cHJvcHNwcm9wc3Byb3BzcA==";

async fn patch_user(info: &ReadyInfo, token: &str, id: &str, body: Value) -> Answer {
    graph(
        info,
        token,
        Method::PATCH,
        &format!("/users/{id}"),
        Some(body),
    )
    .await
}

async fn select_user(info: &ReadyInfo, token: &str, id: &str, select: &str) -> Answer {
    graph(
        info,
        token,
        Method::GET,
        &format!("/users/{id}?$select={select}"),
        None,
    )
    .await
}

fn assert_invalid_value(answer: &Answer, property: &str) {
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{:?}", answer.body);
    assert_eq!(
        answer.error_code(),
        "Request_BadRequest",
        "{:?}",
        answer.body
    );
    assert_eq!(
        answer.error_message(),
        format!("Invalid value specified for property '{property}' of resource 'User'.")
    );
}

#[tokio::test]
async fn usage_location_takes_country_codes_and_keeps_them_upper_case() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let user = create_user(info, &token, "loc", ANCHOR).await;
    let id = user["id"].as_str().unwrap();

    // `UK` is the classic mistake (the code is `GB`); three letters fail the length first.
    for bad in ["UK", "U1", "ZZ", "", "USA", "é"] {
        let refused = patch_user(info, &token, id, json!({"usageLocation": bad})).await;
        assert_invalid_value(&refused, "usageLocation");
    }
    let mut body = new_user("loc2", "bG9jMmxvYzJsb2MybG9jMg==");
    body["usageLocation"] = json!("XX");
    let refused = graph(info, &token, Method::POST, "/users", Some(body)).await;
    assert_invalid_value(&refused, "usageLocation");

    let set = patch_user(info, &token, id, json!({"usageLocation": "de"})).await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{:?}", set.body);
    let read = select_user(info, &token, id, "usageLocation").await;
    assert_eq!(read.body["usageLocation"], "DE");
    let cleared = patch_user(info, &token, id, json!({"usageLocation": null})).await;
    assert_eq!(cleared.status, StatusCode::NO_CONTENT);
    let read = select_user(info, &token, id, "usageLocation").await;
    assert_eq!(read.body["usageLocation"], Value::Null);
}

#[tokio::test]
async fn on_premises_extension_attributes_merge_on_patch_and_come_with_all_fifteen_keys() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let mut body = new_user("ext", ANCHOR);
    body["onPremisesExtensionAttributes"] =
        json!({"extensionAttribute1": "Contractor", "extensionAttribute2": "50"});
    let created = graph(info, &token, Method::POST, "/users", Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    // Not a default property.
    assert!(created.body.get("onPremisesExtensionAttributes").is_none());
    let id = created.body["id"].as_str().unwrap();

    let read = select_user(info, &token, id, "id,onPremisesExtensionAttributes").await;
    let attributes = read.body["onPremisesExtensionAttributes"]
        .as_object()
        .unwrap();
    assert_eq!(attributes.len(), 15, "{attributes:?}");
    assert_eq!(attributes["extensionAttribute1"], "Contractor");
    assert_eq!(attributes["extensionAttribute2"], "50");
    assert_eq!(attributes["extensionAttribute15"], Value::Null);

    // The extensibility overview's PATCH: given keys replace, null clears, the rest stay.
    let patched = patch_user(
        info,
        &token,
        id,
        json!({"onPremisesExtensionAttributes": {"extensionAttribute2": null, "extensionAttribute13": "x13"}}),
    )
    .await;
    assert_eq!(patched.status, StatusCode::NO_CONTENT, "{:?}", patched.body);
    let read = select_user(info, &token, id, "onPremisesExtensionAttributes").await;
    let attributes = &read.body["onPremisesExtensionAttributes"];
    assert_eq!(attributes["extensionAttribute1"], "Contractor");
    assert_eq!(attributes["extensionAttribute2"], Value::Null);
    assert_eq!(attributes["extensionAttribute13"], "x13");
    assert_eq!(attributes.as_object().unwrap().len(), 15);

    // The list with $select shows them too, and a user that never had any gets all nulls.
    let admin = emulator.user_properties(&info.admin_user).unwrap();
    assert_eq!(
        admin["onPremisesExtensionAttributes"]["extensionAttribute1"],
        Value::Null
    );
    let listed = graph(
        info,
        &token,
        Method::GET,
        "/users?$select=id,onPremisesExtensionAttributes",
        None,
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK);
    for user in listed.body["value"].as_array().unwrap() {
        assert_eq!(
            user["onPremisesExtensionAttributes"]
                .as_object()
                .unwrap()
                .len(),
            15
        );
    }

    // The Rust helper sees what is stored.
    let stored = emulator
        .user_properties(&format!("EXT@{}", DOMAIN.to_uppercase()))
        .unwrap();
    assert_eq!(
        stored["onPremisesExtensionAttributes"]["extensionAttribute13"],
        "x13"
    );
    assert!(stored.get("passwordProfile").is_none());
    assert!(
        emulator
            .user_properties("nobody@corp.dirsync.test")
            .is_none()
    );
}

#[tokio::test]
async fn on_premises_extension_attributes_refuse_unknown_keys_and_wrong_values() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let user = create_user(info, &token, "bad", ANCHOR).await;
    let id = user["id"].as_str().unwrap();

    let unknown = patch_user(
        info,
        &token,
        id,
        json!({"onPremisesExtensionAttributes": {"extensionAttribute16": "x"}}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.error_code(), "BadRequest");
    assert!(
        unknown.error_message().starts_with(
            "The property 'extensionAttribute16' does not exist on type 'microsoft.graph.onPremisesExtensionAttributes'."
        ),
        "{:?}",
        unknown.body
    );

    let number = patch_user(
        info,
        &token,
        id,
        json!({"onPremisesExtensionAttributes": {"extensionAttribute1": 5}}),
    )
    .await;
    assert_eq!(number.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        number.error_message(),
        "Cannot convert the literal '5' to the expected type 'Edm.String'."
    );

    let long = patch_user(
        info,
        &token,
        id,
        json!({"onPremisesExtensionAttributes": {"extensionAttribute3": "x".repeat(1025)}}),
    )
    .await;
    assert_invalid_value(&long, "extensionAttribute3");

    for not_an_object in [json!(["x"]), json!("x")] {
        let refused = patch_user(
            info,
            &token,
            id,
            json!({"onPremisesExtensionAttributes": not_an_object}),
        )
        .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{not_an_object}");
    }

    // Nothing of a refused PATCH was kept; 1,024 characters are fine.
    let fine = patch_user(
        info,
        &token,
        id,
        json!({"onPremisesExtensionAttributes": {"extensionAttribute3": "x".repeat(1024)}}),
    )
    .await;
    assert_eq!(fine.status, StatusCode::NO_CONTENT, "{:?}", fine.body);
    let read = select_user(info, &token, id, "onPremisesExtensionAttributes").await;
    assert_eq!(
        read.body["onPremisesExtensionAttributes"]["extensionAttribute1"],
        Value::Null
    );
}

#[tokio::test]
async fn employee_org_data_merges_and_comes_only_on_select() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let mut body = new_user("org", ANCHOR);
    body["employeeOrgData"] = json!({"division": "Sales", "costCenter": "CC-1"});
    let created = graph(info, &token, Method::POST, "/users", Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert!(created.body.get("employeeOrgData").is_none());
    let id = created.body["id"].as_str().unwrap();

    let patched = patch_user(
        info,
        &token,
        id,
        json!({"employeeOrgData": {"costCenter": "CC-2"}}),
    )
    .await;
    assert_eq!(patched.status, StatusCode::NO_CONTENT, "{:?}", patched.body);
    let read = select_user(info, &token, id, "employeeOrgData").await;
    assert_eq!(
        read.body["employeeOrgData"],
        json!({"division": "Sales", "costCenter": "CC-2"})
    );
    let plain = graph(info, &token, Method::GET, &format!("/users/{id}"), None).await;
    assert!(
        plain.body.get("employeeOrgData").is_none(),
        "{:?}",
        plain.body
    );

    let unknown = patch_user(
        info,
        &token,
        id,
        json!({"employeeOrgData": {"department": "x"}}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(
        unknown
            .error_message()
            .contains("does not exist on type 'microsoft.graph.employeeOrgData'")
    );

    let cleared = patch_user(info, &token, id, json!({"employeeOrgData": null})).await;
    assert_eq!(cleared.status, StatusCode::NO_CONTENT);
    let read = select_user(info, &token, id, "employeeOrgData").await;
    assert_eq!(read.body["employeeOrgData"], Value::Null);
}

#[tokio::test]
async fn employee_hire_date_must_be_a_date_time_offset_and_comes_back_in_utc() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let user = create_user(info, &token, "hired", ANCHOR).await;
    let id = user["id"].as_str().unwrap();

    for bad in [
        "yesterday",
        "2021-05-01",
        "2021-05-01T00:00:00",
        "05/01/2021",
    ] {
        let refused = patch_user(info, &token, id, json!({"employeeHireDate": bad})).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(refused.error_code(), "BadRequest");
        assert_eq!(
            refused.error_message(),
            format!(
                "Cannot convert the literal '{bad}' to the expected type 'Edm.DateTimeOffset'."
            )
        );
    }
    let set = patch_user(
        info,
        &token,
        id,
        json!({"employeeHireDate": "2021-05-01T02:00:00.000+02:00"}),
    )
    .await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{:?}", set.body);
    let read = select_user(info, &token, id, "employeeHireDate").await;
    assert_eq!(read.body["employeeHireDate"], "2021-05-01T00:00:00Z");
}

#[tokio::test]
async fn preferred_language_and_employee_type_are_written_and_read() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let user = create_user(info, &token, "lang", ANCHOR).await;
    let id = user["id"].as_str().unwrap();

    let set = patch_user(
        info,
        &token,
        id,
        json!({"preferredLanguage": "fr-CA", "employeeType": "Contractor"}),
    )
    .await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{:?}", set.body);
    let read = select_user(info, &token, id, "preferredLanguage,employeeType").await;
    assert_eq!(read.body["preferredLanguage"], "fr-CA");
    assert_eq!(read.body["employeeType"], "Contractor");
    // preferredLanguage is a default property, employeeType is not.
    let plain = graph(info, &token, Method::GET, &format!("/users/{id}"), None).await;
    assert_eq!(plain.body["preferredLanguage"], "fr-CA");
    assert!(plain.body.get("employeeType").is_none());

    for bad in ["en_US", "en--US", "", "e", "english", "en-", "12-US"] {
        let refused = patch_user(info, &token, id, json!({"preferredLanguage": bad})).await;
        assert_invalid_value(&refused, "preferredLanguage");
    }
    let mut group = security_group("langs");
    group["preferredLanguage"] = json!("fr CA");
    let refused = graph(info, &token, Method::POST, "/groups", Some(group)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.error_message(),
        "Invalid value specified for property 'preferredLanguage' of resource 'Group'."
    );
}

/// The sync app's application object (its object ID and appId without hyphens).
async fn sync_application(info: &ReadyInfo, admin: &str) -> (String, String) {
    let found = graph(
        info,
        admin,
        Method::GET,
        &format!("/applications?$filter=appId%20eq%20'{}'", info.client_id),
        None,
    )
    .await;
    assert_eq!(found.status, StatusCode::OK, "{:?}", found.body);
    let app = &found.body["value"][0];
    (
        app["id"].as_str().unwrap().to_owned(),
        app["appId"].as_str().unwrap().replace('-', ""),
    )
}

async fn register(info: &ReadyInfo, token: &str, app: &str, body: Value) -> Answer {
    graph(
        info,
        token,
        Method::POST,
        &format!("/applications/{app}/extensionProperties"),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn extension_properties_are_registered_listed_and_deleted() {
    let emulator = start();
    let info = &emulator.info;
    let admin = admin_token(info).await;
    let (app, app_id) = sync_application(info, &admin).await;

    let created = register(
        info,
        &admin,
        &app,
        json!({"name": "costCenter", "dataType": "String", "targetObjects": ["User"]}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let name = format!("extension_{app_id}_costCenter");
    assert_eq!(created.body["name"], json!(name));
    assert_eq!(created.body["dataType"], "String");
    assert_eq!(created.body["isMultiValued"], false);
    assert_eq!(created.body["isSyncedFromOnPremises"], false);
    assert_eq!(created.body["targetObjects"], json!(["User"]));
    assert_eq!(created.body["appDisplayName"], "dirsync (pre-registered)");
    assert_eq!(created.body["deletedDateTime"], Value::Null);
    assert_eq!(
        created.body["@odata.context"],
        json!(format!(
            "{}/v1.0/$metadata#applications('{app}')/extensionProperties/$entity",
            info.graph
        ))
    );
    let ext_id = created.body["id"].as_str().unwrap().to_owned();
    assert!(uuid_like(&ext_id), "{ext_id}");

    let listed = graph(
        info,
        &admin,
        Method::GET,
        &format!("/applications/{app}/extensionProperties"),
        None,
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["value"].as_array().unwrap().len(), 1);
    assert_eq!(listed.body["value"][0]["name"], json!(name));
    // By the alternate key too.
    let by_app_id = graph(
        info,
        &admin,
        Method::GET,
        &format!(
            "/applications(appId='{}')/extensionProperties/{ext_id}",
            info.client_id
        ),
        None,
    )
    .await;
    assert_eq!(by_app_id.status, StatusCode::OK, "{:?}", by_app_id.body);
    assert_eq!(by_app_id.body["name"], json!(name));

    // The same name again (in any case) is taken.
    let duplicate = register(
        info,
        &admin,
        &app,
        json!({"name": "COSTCENTER", "dataType": "String", "targetObjects": ["Group"]}),
    )
    .await;
    assert_eq!(
        duplicate.status,
        StatusCode::CONFLICT,
        "{:?}",
        duplicate.body
    );
    assert_eq!(
        duplicate.error_code(),
        "Request_MultipleObjectsWithSameKeyValue"
    );
    assert_eq!(
        duplicate.error_message(),
        format!("An extension property exists with the name extension_{app_id}_COSTCENTER.")
    );

    for (body, property) in [
        (
            json!({"name": "cost-center", "dataType": "String", "targetObjects": ["User"]}),
            "name",
        ),
        (
            json!({"name": "x".repeat(121), "dataType": "String", "targetObjects": ["User"]}),
            "name",
        ),
        (
            json!({"name": "a", "dataType": "Text", "targetObjects": ["User"]}),
            "dataType",
        ),
        (
            json!({"name": "a", "dataType": "String", "targetObjects": ["Users"]}),
            "targetObjects",
        ),
        (
            json!({"name": "a", "dataType": "String", "targetObjects": []}),
            "targetObjects",
        ),
    ] {
        let refused = register(info, &admin, &app, body).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{property}");
        assert_eq!(
            refused.error_message(),
            format!(
                "Invalid value specified for property '{property}' of resource 'ExtensionProperty'."
            )
        );
    }
    let missing = register(
        info,
        &admin,
        &app,
        json!({"name": "a", "targetObjects": ["User"]}),
    )
    .await;
    assert_eq!(
        missing.error_message(),
        "Property dataType value is required but is empty or missing."
    );
    let read_only = register(
        info,
        &admin,
        &app,
        json!({"name": "a", "dataType": "String", "targetObjects": ["User"], "isSyncedFromOnPremises": true}),
    )
    .await;
    assert_eq!(
        read_only.error_message(),
        "Property 'isSyncedFromOnPremises' is read-only and cannot be set."
    );
    // 120 characters of letters, digits and underscores are a name.
    let longest = register(
        info,
        &admin,
        &app,
        json!({"name": format!("a_1{}", "b".repeat(117)), "dataType": "Boolean", "targetObjects": ["User", "Group"], "isMultiValued": false}),
    )
    .await;
    assert_eq!(longest.status, StatusCode::CREATED, "{:?}", longest.body);

    let deleted = graph(
        info,
        &admin,
        Method::DELETE,
        &format!("/applications/{app}/extensionProperties/{ext_id}"),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    let gone = graph(
        info,
        &admin,
        Method::GET,
        &format!("/applications/{app}/extensionProperties/{ext_id}"),
        None,
    )
    .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let again = graph(
        info,
        &admin,
        Method::DELETE,
        &format!("/applications/{app}/extensionProperties/{ext_id}"),
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let listed = graph(
        info,
        &admin,
        Method::GET,
        &format!("/applications/{app}/extensionProperties"),
        None,
    )
    .await;
    assert_eq!(listed.body["value"].as_array().unwrap().len(), 1);
}

fn uuid_like(text: &str) -> bool {
    text.len() == 36 && text.chars().filter(|c| *c == '-').count() == 4
}

#[tokio::test]
async fn registering_extensions_takes_the_pages_permissions() {
    let emulator = start();
    let info = &emulator.info;
    let admin = admin_token(info).await;
    let (app, _) = sync_application(info, &admin).await;
    let body = json!({"name": "costCenter", "dataType": "String", "targetObjects": ["User"]});

    // The sync app has no Application.* permission.
    let sync = app_token(info).await;
    let refused = register(info, &sync, &app, body.clone()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    assert_eq!(refused.error_code(), "Authorization_RequestDenied");
    let listed = graph(
        info,
        &sync,
        Method::GET,
        &format!("/applications/{app}/extensionProperties"),
        None,
    )
    .await;
    assert_eq!(listed.status, StatusCode::FORBIDDEN);

    // Application.ReadWrite.OwnedBy: only on an application the caller owns.
    let (owner_app_id, owner_secret) =
        app_with_roles(info, &admin, "owner", &["Application.ReadWrite.OwnedBy"]).await;
    let owner = app_token_for(info, &owner_app_id, &owner_secret).await;
    let not_owned = register(info, &owner, &app, body.clone()).await;
    assert_eq!(
        not_owned.status,
        StatusCode::NOT_FOUND,
        "{:?}",
        not_owned.body
    );
    let own = graph(
        info,
        &owner,
        Method::POST,
        "/applications",
        Some(json!({"displayName": "owned"})),
    )
    .await;
    assert_eq!(own.status, StatusCode::CREATED, "{:?}", own.body);
    let own_id = own.body["id"].as_str().unwrap();
    let registered = register(info, &owner, own_id, body.clone()).await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{:?}",
        registered.body
    );
    assert_eq!(registered.body["appDisplayName"], "owned");

    // A signed-in user who is not an administrator may not, even as the app's owner (Azure
    // CLI's pre-authorization gives any user Application.ReadWrite.All).
    let user = create_user(info, &sync, "plain", ANCHOR).await;
    let upn = user["userPrincipalName"].as_str().unwrap();
    let token = token_request(
        info,
        &info.tenant_id,
        &[
            ("grant_type", "password"),
            ("client_id", AZURE_CLI),
            ("username", upn),
            ("password", "Initial-Passw0rd!"),
            ("scope", "https://graph.microsoft.com/.default"),
        ],
    )
    .await;
    assert_eq!(token.status, StatusCode::OK, "{:?}", token.body);
    let token = token.body["access_token"].as_str().unwrap();
    let mine = graph(
        info,
        token,
        Method::POST,
        "/applications",
        Some(json!({"displayName": "mine"})),
    )
    .await;
    assert_eq!(mine.status, StatusCode::CREATED, "{:?}", mine.body);
    let mine_id = mine.body["id"].as_str().unwrap();
    let refused = register(info, token, mine_id, body).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
}

const AZURE_CLI: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

/// Registers a String extension for users (and groups when `groups`) on the sync app;
/// returns its full name.
async fn register_on_sync_app(
    info: &ReadyInfo,
    admin: &str,
    name: &str,
    targets: &[&str],
    data_type: &str,
    multi: bool,
) -> String {
    let (app, _) = sync_application(info, admin).await;
    let created = register(
        info,
        admin,
        &app,
        json!({"name": name, "dataType": data_type, "targetObjects": targets, "isMultiValued": multi}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    created.body["name"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn extension_values_are_written_and_read_only_on_select() {
    let emulator = start();
    let info = &emulator.info;
    let admin = admin_token(info).await;
    let token = app_token(info).await;
    let cost_center =
        register_on_sync_app(info, &admin, "costCenter", &["User"], "String", false).await;

    let mut body = new_user("cc", ANCHOR);
    body[&cost_center] = json!("CC-100");
    let created = graph(info, &token, Method::POST, "/users", Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert!(
        created.body.get(&cost_center).is_none(),
        "{:?}",
        created.body
    );
    let id = created.body["id"].as_str().unwrap().to_owned();

    let plain = graph(info, &token, Method::GET, &format!("/users/{id}"), None).await;
    assert!(plain.body.get(&cost_center).is_none(), "{:?}", plain.body);
    // The name is matched in any case and returned as registered.
    let read = select_user(
        info,
        &token,
        &id,
        &format!("id,{}", cost_center.to_uppercase()),
    )
    .await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    assert_eq!(read.body[&cost_center], "CC-100");
    assert_eq!(
        read.body["@odata.context"],
        json!(format!(
            "{}/v1.0/$metadata#users(id,{cost_center})/$entity",
            info.graph
        ))
    );
    let listed = graph(
        info,
        &token,
        Method::GET,
        &format!("/users?$select=id,{cost_center}"),
        None,
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK);
    let users = listed.body["value"].as_array().unwrap();
    let ours = users.iter().find(|u| u["id"] == json!(id)).unwrap();
    assert_eq!(ours[&cost_center], "CC-100");
    // A user without a value has no such property at all.
    let admin_user = users.iter().find(|u| u["id"] != json!(id)).unwrap();
    assert!(admin_user.get(&cost_center).is_none(), "{admin_user}");
    let stored = emulator.user_properties(&id).unwrap();
    assert_eq!(stored[&cost_center], "CC-100");

    // Refusals: too long, the wrong type, an unregistered name.
    let long = patch_user(info, &token, &id, json!({&cost_center: "x".repeat(257)})).await;
    assert_invalid_value(&long, &cost_center);
    let wrong = patch_user(info, &token, &id, json!({&cost_center: 12})).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        wrong.error_message(),
        format!("Invalid property '{cost_center}'.")
    );
    let unregistered = format!("{}_nothing", &cost_center[..42]);
    let unknown = patch_user(info, &token, &id, json!({&unregistered: "x"})).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.error_code(), "Request_BadRequest");
    assert_eq!(
        unknown.error_message(),
        format!("The following extension properties are not available: {unregistered}.")
    );
    let selected = select_user(info, &token, &id, &format!("id,{unregistered}")).await;
    assert_eq!(selected.status, StatusCode::BAD_REQUEST);
    assert_eq!(selected.error_code(), "Request_UnsupportedQuery");
    assert_eq!(
        selected.error_message(),
        format!(
            "Property '{unregistered}' does not exist as a declared property or extension property."
        )
    );
    // A user-only extension is not a group's.
    let mut group = security_group("ccs");
    group[&cost_center] = json!("CC-1");
    let refused = graph(info, &token, Method::POST, "/groups", Some(group)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused
            .error_message()
            .starts_with("The following extension properties are not available")
    );

    // 256 characters fit; null clears.
    let longest = patch_user(info, &token, &id, json!({&cost_center: "y".repeat(256)})).await;
    assert_eq!(longest.status, StatusCode::NO_CONTENT, "{:?}", longest.body);
    let cleared = patch_user(info, &token, &id, json!({&cost_center: null})).await;
    assert_eq!(cleared.status, StatusCode::NO_CONTENT);
    let read = select_user(info, &token, &id, &format!("id,{cost_center}")).await;
    assert!(read.body.get(&cost_center).is_none(), "{:?}", read.body);
    assert!(
        emulator
            .user_properties(&id)
            .unwrap()
            .get(&cost_center)
            .is_none()
    );
}

#[tokio::test]
async fn extension_values_go_through_batches_and_groups_and_delta() {
    let emulator = start();
    let info = &emulator.info;
    let admin = admin_token(info).await;
    let token = app_token(info).await;
    let code =
        register_on_sync_app(info, &admin, "code", &["User", "Group"], "String", false).await;
    let user = create_user(info, &token, "batched", ANCHOR).await;
    let id = user["id"].as_str().unwrap().to_owned();
    let group = graph(
        info,
        &token,
        Method::POST,
        "/groups",
        Some({
            let mut group = security_group("coded");
            group[&code] = json!("G-1");
            group
        }),
    )
    .await;
    assert_eq!(group.status, StatusCode::CREATED, "{:?}", group.body);
    let group_id = group.body["id"].as_str().unwrap().to_owned();
    let read = graph(
        info,
        &token,
        Method::GET,
        &format!("/groups/{group_id}?$select=id,{code}"),
        None,
    )
    .await;
    assert_eq!(read.body[&code], "G-1");
    assert_eq!(emulator.group_properties(&group_id).unwrap()[&code], "G-1");

    let batch = json!({"requests": [
        {"id": "1", "method": "PATCH", "url": format!("/users/{id}"),
         "headers": {"Content-Type": "application/json"}, "body": {&code: "U-1"}},
        {"id": "2", "method": "PATCH", "url": format!("/users/{id}"),
         "headers": {"Content-Type": "application/json"}, "body": {"extension_0_missing": "x"}},
    ]});
    let answered = graph(info, &token, Method::POST, "/$batch", Some(batch)).await;
    assert_eq!(answered.status, StatusCode::OK, "{:?}", answered.body);
    let responses = answered.body["responses"].as_array().unwrap();
    let status_of = |wanted: &str| {
        responses.iter().find(|r| r["id"] == json!(wanted)).unwrap()["status"].clone()
    };
    assert_eq!(status_of("1"), json!(204));
    assert_eq!(status_of("2"), json!(400));
    let read = select_user(info, &token, &id, &code).await;
    assert_eq!(read.body[&code], "U-1");

    // Delta tracks a selected extension.
    let delta = graph(
        info,
        &token,
        Method::GET,
        &format!("/users/delta?$select=id,{code}"),
        None,
    )
    .await;
    assert_eq!(delta.status, StatusCode::OK, "{:?}", delta.body);
    let items = delta.body["value"].as_array().unwrap();
    let ours = items.iter().find(|u| u["id"] == json!(id)).unwrap();
    assert_eq!(ours[&code], "U-1");
}

#[tokio::test]
async fn extension_values_follow_their_data_type_and_the_limit_of_one_hundred() {
    let emulator = start();
    let info = &emulator.info;
    let admin = admin_token(info).await;
    let token = app_token(info).await;
    let since = register_on_sync_app(info, &admin, "since", &["User"], "DateTime", false).await;
    let tags = register_on_sync_app(info, &admin, "tags", &["User"], "String", true).await;
    let user = create_user(info, &token, "typed", ANCHOR).await;
    let id = user["id"].as_str().unwrap();

    let set = patch_user(
        info,
        &token,
        id,
        json!({&since: "2020-01-01T01:00:00+01:00", &tags: ["a", "b"]}),
    )
    .await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{:?}", set.body);
    let read = select_user(info, &token, id, &format!("{since},{tags}")).await;
    assert_eq!(read.body[&since], "2020-01-01T00:00:00Z");
    assert_eq!(read.body[&tags], json!(["a", "b"]));

    let hundred: Vec<String> = (0..100).map(|n| format!("t{n}")).collect();
    let full = patch_user(info, &token, id, json!({&tags: hundred})).await;
    assert_eq!(full.status, StatusCode::BAD_REQUEST, "{:?}", full.body);
    let ninety_nine: Vec<String> = (0..99).map(|n| format!("t{n}")).collect();
    let fits = patch_user(info, &token, id, json!({&tags: ninety_nine})).await;
    assert_eq!(fits.status, StatusCode::NO_CONTENT, "{:?}", fits.body);
}

#[tokio::test]
async fn extensions_of_a_deleted_app_are_unavailable_until_it_is_back_with_a_service_principal() {
    let emulator = start();
    let info = &emulator.info;
    let admin = admin_token(info).await;
    let token = app_token(info).await;
    let app = graph(
        info,
        &admin,
        Method::POST,
        "/applications",
        Some(json!({"displayName": "hr"})),
    )
    .await;
    let app_object = app.body["id"].as_str().unwrap().to_owned();
    let app_id = app.body["appId"].as_str().unwrap().to_owned();
    let body = json!({"name": "grade", "dataType": "String", "targetObjects": ["User"]});
    let registered = register(info, &admin, &app_object, body).await;
    assert_eq!(registered.status, StatusCode::CREATED);
    let grade = registered.body["name"].as_str().unwrap().to_owned();
    let user = create_user(info, &token, "graded", ANCHOR).await;
    let id = user["id"].as_str().unwrap().to_owned();

    // Without a service principal in the tenant the definition is not usable.
    let refused = patch_user(info, &token, &id, json!({&grade: "E4"})).await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        refused.body
    );
    let sp = graph(
        info,
        &admin,
        Method::POST,
        "/servicePrincipals",
        Some(json!({"appId": app_id})),
    )
    .await;
    assert_eq!(sp.status, StatusCode::CREATED);
    let set = patch_user(info, &token, &id, json!({&grade: "E4"})).await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{:?}", set.body);

    let deleted = graph(
        info,
        &admin,
        Method::DELETE,
        &format!("/applications/{app_object}"),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let refused = patch_user(info, &token, &id, json!({&grade: "E5"})).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let selected = select_user(info, &token, &id, &grade).await;
    assert_eq!(selected.error_code(), "Request_UnsupportedQuery");
    // The value stays stored.
    assert_eq!(emulator.user_properties(&id).unwrap()[&grade], "E4");

    // Restored, the app has its definitions again; they are usable once it has a service
    // principal again (the extensibility overview).
    let restored = graph(
        info,
        &admin,
        Method::POST,
        &format!("/directory/deletedItems/{app_object}/restore"),
        None,
    )
    .await;
    assert_eq!(restored.status, StatusCode::OK, "{:?}", restored.body);
    let listed = graph(
        info,
        &admin,
        Method::GET,
        &format!("/applications/{app_object}/extensionProperties"),
        None,
    )
    .await;
    assert_eq!(listed.body["value"][0]["name"], json!(grade));
    let selected = select_user(info, &token, &id, &grade).await;
    assert_eq!(selected.status, StatusCode::BAD_REQUEST);
    let sp = graph(
        info,
        &admin,
        Method::POST,
        "/servicePrincipals",
        Some(json!({"appId": app_id})),
    )
    .await;
    assert_eq!(sp.status, StatusCode::CREATED);
    let selected = select_user(info, &token, &id, &grade).await;
    assert_eq!(selected.status, StatusCode::OK, "{:?}", selected.body);
    assert_eq!(selected.body[&grade], "E4");
}
