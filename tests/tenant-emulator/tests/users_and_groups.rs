//! Users and groups over HTTP: create, get, list with paging and $select, the $filter forms
//! dirsync sends (and Graph's advanced-query rules), uniqueness, read-only properties,
//! permissions, members, manager, soft delete and restore.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_emulator::ReadyInfo;

#[tokio::test]
async fn users_are_created_read_listed_and_paged() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let created = create_user(info, &token, "ann", "YW5uYW5uYW5uYW5uYW5uYQ==").await;
    let id = created["id"].as_str().unwrap().to_owned();
    // The create response has the default properties only, as Graph's.
    assert_eq!(
        created["@odata.context"],
        json!(format!("{}/v1.0/$metadata#users/$entity", info.graph))
    );
    assert_eq!(created["userPrincipalName"], json!(format!("ann@{DOMAIN}")));
    assert_eq!(created["businessPhones"], json!([]));
    assert_eq!(created["jobTitle"], Value::Null);
    assert!(
        created.get("onPremisesImmutableId").is_none() && created.get("accountEnabled").is_none(),
        "{created}"
    );

    let by_id = graph(
        info,
        &token,
        Method::GET,
        &format!("/users/{id}?$select=id,onPremisesImmutableId,proxyAddresses,mail"),
        None,
    )
    .await;
    assert_eq!(by_id.status, StatusCode::OK);
    assert_eq!(
        by_id.body["onPremisesImmutableId"],
        "YW5uYW5uYW5uYW5uYW5uYQ=="
    );
    assert_eq!(
        by_id.body["proxyAddresses"],
        json!([format!("SMTP:ann@{DOMAIN}")])
    );
    assert!(by_id.body.get("displayName").is_none(), "{:?}", by_id.body);
    assert!(by_id.header("request-id").is_some() && by_id.header("client-request-id").is_some());

    let by_upn = graph(
        info,
        &token,
        Method::GET,
        &format!("/users/ANN@{DOMAIN}"),
        None,
    )
    .await;
    assert_eq!(by_upn.body["id"], json!(id));

    let missing = graph(
        info,
        &token,
        Method::GET,
        "/users/00000000-0000-0000-0000-000000000000",
        None,
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "Request_ResourceNotFound");
    assert_eq!(
        missing.error_message(),
        "Resource '00000000-0000-0000-0000-000000000000' does not exist or one of its queried reference-property objects are not present."
    );
    let inner = &missing.body["error"]["innerError"];
    assert!(
        inner["date"].is_string()
            && inner["request-id"].is_string()
            && inner["client-request-id"].is_string()
    );

    let bad_select = graph(info, &token, Method::GET, "/users?$select=shoeSize", None).await;
    assert_eq!(bad_select.status, StatusCode::BAD_REQUEST);

    // Paging: 25 more users, pages of 10, every user exactly once.
    for n in 0..25 {
        create_user(info, &token, &format!("p{n}"), &format!("page-anchor-{n}")).await;
    }
    let mut seen = Vec::new();
    let mut url = format!(
        "{}/v1.0/users?$top=10&$select=id,userPrincipalName",
        info.graph
    );
    let mut pages = 0;
    loop {
        let page = answer(client().get(&url).bearer_auth(&token).send().await.unwrap()).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        pages += 1;
        for user in page.body["value"].as_array().unwrap() {
            assert_eq!(user.as_object().unwrap().len(), 2, "{user}");
            seen.push(user["id"].as_str().unwrap().to_owned());
        }
        match page.body["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(
                    next.contains("$top=10") && next.contains("$skiptoken="),
                    "{next}"
                );
                url = next.to_owned();
            }
            None => break,
        }
    }
    // 26 created + the administrator.
    assert_eq!(seen.len(), 27);
    assert_eq!(pages, 3);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 27);

    let too_many = graph(info, &token, Method::GET, "/users?$top=1000", None).await;
    assert_eq!(too_many.status, StatusCode::BAD_REQUEST);
    assert!(
        too_many.error_message().contains("between 1 and 999"),
        "{:?}",
        too_many.body
    );
    let bad_page = graph(info, &token, Method::GET, "/users?$skiptoken=garbage", None).await;
    assert_eq!(bad_page.error_code(), "Directory_ExpiredPageToken");
}

#[tokio::test]
async fn filters_need_the_advanced_query_parameters_where_graph_does() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let ann = create_user(info, &token, "ann", "YW5uYW5uYW5uYW5uYW5uYQ==").await;
    let bob = create_user(info, &token, "bob", "Ym9iYm9iYm9iYm9iYm9iYg==").await;
    let eventual = [("ConsistencyLevel", "eventual")];
    let find = |filter: &str, advanced: bool| find_users(info, &token, filter.to_owned(), advanced);
    let ids = |answer: &Answer| -> Vec<String> {
        answer.body["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_owned())
            .collect()
    };

    let by_upn = find(&format!("userPrincipalName eq 'BOB@{DOMAIN}'"), false).await;
    assert_eq!(ids(&by_upn), vec![bob["id"].as_str().unwrap()]);
    let by_mail = find(&format!("mail eq 'ann@{DOMAIN}'"), false).await;
    assert_eq!(ids(&by_mail), vec![ann["id"].as_str().unwrap()]);
    let nobody = find("userPrincipalName eq 'nobody@corp.dirsync.test'", false).await;
    assert_eq!(nobody.status, StatusCode::OK);
    assert!(ids(&nobody).is_empty());

    // onPremisesImmutableId needs ConsistencyLevel: eventual and $count=true.
    let filter = "onPremisesImmutableId eq 'YW5uYW5uYW5uYW5uYW5uYQ=='";
    let refused = find(filter, false).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.error_code(), "Request_UnsupportedQuery");
    let only_header = graph_with(
        info,
        &token,
        Method::GET,
        &format!("/users?$filter={}", urlencode(filter)),
        None,
        &eventual,
    )
    .await;
    assert_eq!(only_header.status, StatusCode::BAD_REQUEST);
    let found = find(filter, true).await;
    assert_eq!(found.status, StatusCode::OK, "{:?}", found.body);
    assert_eq!(ids(&found), vec![ann["id"].as_str().unwrap()]);
    assert_eq!(found.body["@odata.count"], 1);
    // proxyAddresses eq (through any) works by default, primary or alias, any case; $count only
    // with the advanced parameters.
    for advanced in [false, true] {
        let found = find(
            "proxyAddresses/any(p:p eq 'smtp:ANN@corp.dirsync.test')",
            advanced,
        )
        .await;
        assert_eq!(found.status, StatusCode::OK, "{:?}", found.body);
        assert_eq!(ids(&found), vec![ann["id"].as_str().unwrap()]);
        assert_eq!(found.body.get("@odata.count").is_some(), advanced);
    }
    let ends = find(
        "proxyAddresses/any(p:endswith(p,'@corp.dirsync.test'))",
        false,
    )
    .await;
    assert_eq!(ends.error_code(), "Request_UnsupportedQuery");
    let ends = find(
        "proxyAddresses/any(p:endswith(p,'@corp.dirsync.test'))",
        true,
    )
    .await;
    assert_eq!(ids(&ends).len(), 2);
    // $count as a segment: advanced queries only.
    let count = graph(info, &token, Method::GET, "/users/$count", None).await;
    assert_eq!(count.error_message(), "$count is not currently supported.");
    let count = graph_with(info, &token, Method::GET, "/users/$count", None, &eventual).await;
    assert_eq!(count.body, json!(3));
    assert!(
        count
            .header("Content-Type")
            .is_some_and(|t| t.starts_with("text/plain"))
    );
    let message = find("onPremisesImmutableId eq 'x'", false).await;
    assert_eq!(
        message.error_message(),
        "Unsupported or invalid query filter clause specified for property 'onPremisesImmutableId' of resource 'User'."
    );
    let not_equal = find("accountEnabled ne true", false).await;
    assert!(
        not_equal
            .error_message()
            .starts_with("Operator 'ne' is not supported"),
        "{:?}",
        not_equal.body
    );
    let unknown = find("shoeSize eq '9'", true).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    let syntax = find("userPrincipalName eq", false).await;
    assert_eq!(syntax.status, StatusCode::BAD_REQUEST);
    // Groups have no onPremisesImmutableId in v1.0.
    let group_anchor = graph_with(
        info,
        &token,
        Method::GET,
        "/groups?$filter=onPremisesImmutableId%20eq%20'x'&$count=true",
        None,
        &eventual,
    )
    .await;
    assert_eq!(group_anchor.status, StatusCode::BAD_REQUEST);
}

async fn find_users(info: &ReadyInfo, token: &str, filter: String, advanced: bool) -> Answer {
    let path = format!(
        "/users?$filter={}{}",
        urlencode(&filter),
        if advanced { "&$count=true" } else { "" }
    );
    let headers: &[(&str, &str)] = if advanced {
        &[("ConsistencyLevel", "eventual")]
    } else {
        &[]
    };
    graph_with(info, token, Method::GET, &path, None, headers).await
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn uniqueness_conflicts_have_graphs_body() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    create_user(info, &token, "bob", "Ym9iYm9iYm9iYm9iYm9iYg==").await;

    let mut same_upn = new_user("bob", "b3RoZXJvdGhlcm90aGVyMQ==");
    same_upn["mail"] = json!("bob2@corp.dirsync.test");
    let conflict = graph(info, &token, Method::POST, "/users", Some(same_upn)).await;
    assert_eq!(conflict.status, StatusCode::BAD_REQUEST);
    assert_eq!(conflict.error_code(), "Request_BadRequest");
    assert_eq!(
        conflict.error_message(),
        "Another object with the same value for property userPrincipalName already exists."
    );
    assert_eq!(
        conflict.body["error"]["details"][0],
        json!({"code": "ObjectConflict", "message": "Another object with the same value for property userPrincipalName already exists.", "target": "userPrincipalName"})
    );

    let mut same_anchor = new_user("bobby", "Ym9iYm9iYm9iYm9iYm9iYg==");
    same_anchor["mail"] = json!("bobby@corp.dirsync.test");
    let conflict = graph(info, &token, Method::POST, "/users", Some(same_anchor)).await;
    assert_eq!(
        conflict.body["error"]["details"][0]["target"],
        "onPremisesImmutableId"
    );

    // mail flows into proxyAddresses: a taken address conflicts there, case-insensitively.
    let mut same_mail = new_user("robert", "cm9iZXJ0cm9iZXJ0cm9iZXI=");
    same_mail["mail"] = json!("BOB@corp.dirsync.test");
    let conflict = graph(info, &token, Method::POST, "/users", Some(same_mail)).await;
    assert_eq!(
        conflict.error_message(),
        "Another object with the same value for property proxyAddresses already exists."
    );

    // An update that would collide is refused the same way, and changes nothing.
    let carl = create_user(info, &token, "carl", "Y2FybGNhcmxjYXJsY2FybA==").await;
    let carl_id = carl["id"].as_str().unwrap();
    let clash = graph(
        info,
        &token,
        Method::PATCH,
        &format!("/users/{carl_id}"),
        Some(json!({"userPrincipalName": "Bob@corp.dirsync.test", "jobTitle": "X"})),
    )
    .await;
    assert_eq!(
        clash.body["error"]["details"][0]["target"],
        "userPrincipalName"
    );
    let unchanged = graph(
        info,
        &token,
        Method::GET,
        &format!("/users/{carl_id}"),
        None,
    )
    .await;
    assert_eq!(unchanged.body["jobTitle"], Value::Null);
}

#[tokio::test]
async fn graph_refuses_what_it_does_not_let_callers_write() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;

    for (property, value) in [
        ("proxyAddresses", json!(["SMTP:dora@corp.dirsync.test"])),
        ("onPremisesSyncEnabled", json!(true)),
        ("id", json!("x")),
        ("createdDateTime", json!("2020-01-01T00:00:00Z")),
    ] {
        let mut body = new_user("dora", "ZG9yYWRvcmFkb3JhZG9yYQ==");
        body[property] = value;
        let refused = graph(info, &token, Method::POST, "/users", Some(body)).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{property}");
        assert_eq!(
            refused.error_message(),
            format!("Property '{property}' is read-only and cannot be set.")
        );
    }

    let mut unknown = new_user("dora", "ZG9yYWRvcmFkb3JhZG9yYQ==");
    unknown["shoeSize"] = json!(9);
    let refused = graph(info, &token, Method::POST, "/users", Some(unknown)).await;
    assert!(
        refused
            .error_message()
            .contains("The property 'shoeSize' does not exist on type 'microsoft.graph.user'"),
        "{:?}",
        refused.body
    );

    let mut missing = new_user("dora", "ZG9yYWRvcmFkb3JhZG9yYQ==");
    missing.as_object_mut().unwrap().remove("passwordProfile");
    let refused = graph(info, &token, Method::POST, "/users", Some(missing)).await;
    assert_eq!(
        refused.error_message(),
        "Property passwordProfile value is required but is empty or missing."
    );

    let mut weak = new_user("dora", "ZG9yYWRvcmFkb3JhZG9yYQ==");
    weak["passwordProfile"]["password"] = json!("password");
    let refused = graph(info, &token, Method::POST, "/users", Some(weak)).await;
    assert!(
        refused.error_message().contains("password complexity"),
        "{:?}",
        refused.body
    );

    let mut elsewhere = new_user("dora", "ZG9yYWRvcmFkb3JhZG9yYQ==");
    elsewhere["userPrincipalName"] = json!("dora@unverified.example");
    let refused = graph(info, &token, Method::POST, "/users", Some(elsewhere)).await;
    assert_eq!(
        refused.error_message(),
        "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization."
    );

    let mut bad_upn = new_user("dora", "ZG9yYWRvcmFkb3JhZG9yYQ==");
    bad_upn["userPrincipalName"] = json!("dora smith@corp.dirsync.test");
    let refused = graph(info, &token, Method::POST, "/users", Some(bad_upn)).await;
    assert_eq!(
        refused.error_message(),
        "Invalid value specified for property 'userPrincipalName' of resource 'User'."
    );

    let not_json = answer(
        client()
            .post(format!("{}/v1.0/users", info.graph))
            .bearer_auth(&token)
            .header("Content-Type", "text/plain")
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);

    // Mail-enabled security groups cannot be created through Graph.
    let mut mail_enabled = security_group("staff");
    mail_enabled["mailEnabled"] = json!(true);
    let refused = graph(info, &token, Method::POST, "/groups", Some(mail_enabled)).await;
    assert!(
        refused
            .error_message()
            .starts_with("The service does not currently support writes of mail-enabled groups")
    );
    let mut with_mail = security_group("staff");
    with_mail["mail"] = json!("staff@corp.dirsync.test");
    let refused = graph(info, &token, Method::POST, "/groups", Some(with_mail)).await;
    assert_eq!(
        refused.error_message(),
        "Property 'mail' is read-only and cannot be set."
    );
}

#[tokio::test]
async fn an_app_without_group_permissions_is_forbidden() {
    let emulator = start();
    let info = &emulator.info;
    let admin = admin_token(info).await;
    // Register an app with User.ReadWrite.All only.
    let app = graph(
        info,
        &admin,
        Method::POST,
        "/applications",
        Some(json!({"displayName": "users only"})),
    )
    .await;
    assert_eq!(app.status, StatusCode::CREATED, "{:?}", app.body);
    let app_id = app.body["appId"].as_str().unwrap();
    let object_id = app.body["id"].as_str().unwrap();
    let secret = graph(
        info,
        &admin,
        Method::POST,
        &format!("/applications/{object_id}/addPassword"),
        Some(json!({"passwordCredential": {"displayName": "t"}})),
    )
    .await;
    let secret_text = secret.body["secretText"].as_str().unwrap();
    let sp = graph(
        info,
        &admin,
        Method::POST,
        "/servicePrincipals",
        Some(json!({"appId": app_id})),
    )
    .await;
    let sp_id = sp.body["id"].as_str().unwrap();
    let graph_sp = graph(
        info,
        &admin,
        Method::GET,
        "/servicePrincipals?$filter=appId%20eq%20'00000003-0000-0000-c000-000000000000'",
        None,
    )
    .await;
    let graph_sp_id = graph_sp.body["value"][0]["id"].as_str().unwrap();
    let assigned = graph(
        info,
        &admin,
        Method::POST,
        &format!("/servicePrincipals/{graph_sp_id}/appRoleAssignedTo"),
        Some(json!({"principalId": sp_id, "resourceId": graph_sp_id, "appRoleId": "741f803b-c850-494e-b5df-cde7c675a1ca"})),
    )
    .await;
    assert_eq!(assigned.status, StatusCode::CREATED, "{:?}", assigned.body);

    let token = app_token_for(info, app_id, secret_text).await;
    let user = graph(
        info,
        &token,
        Method::POST,
        "/users",
        Some(new_user("eve", "ZXZlZXZlZXZlZXZlZXZlZQ==")),
    )
    .await;
    assert_eq!(user.status, StatusCode::CREATED);
    let group = graph(
        info,
        &token,
        Method::POST,
        "/groups",
        Some(security_group("g")),
    )
    .await;
    assert_eq!(group.status, StatusCode::FORBIDDEN);
    assert_eq!(group.error_code(), "Authorization_RequestDenied");
    assert_eq!(
        group.error_message(),
        "Insufficient privileges to complete the operation."
    );
    let groups = graph(info, &token, Method::GET, "/groups", None).await;
    assert_eq!(groups.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn groups_get_members_by_reference() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let dana = create_user(info, &token, "dana", "ZGFuYWRhbmFkYW5hZGFuYQ==").await;
    let dana_id = dana["id"].as_str().unwrap();
    let group = graph(
        info,
        &token,
        Method::POST,
        "/groups",
        Some(security_group("finance")),
    )
    .await;
    assert_eq!(group.status, StatusCode::CREATED, "{:?}", group.body);
    assert_eq!(group.body["mail"], Value::Null);
    assert_eq!(group.body["proxyAddresses"], json!([]));
    let group_id = group.body["id"].as_str().unwrap();

    let reference = json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{dana_id}")});
    let added = graph(
        info,
        &token,
        Method::POST,
        &format!("/groups/{group_id}/members/$ref"),
        Some(reference.clone()),
    )
    .await;
    assert_eq!(added.status, StatusCode::NO_CONTENT, "{:?}", added.body);
    let again = graph(
        info,
        &token,
        Method::POST,
        &format!("/groups/{group_id}/members/$ref"),
        Some(reference),
    )
    .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        again.error_message(),
        "One or more added object references already exist for the following modified properties: 'members'."
    );
    let ghost = json!({"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/00000000-0000-0000-0000-0000000000aa"});
    let missing = graph(
        info,
        &token,
        Method::POST,
        &format!("/groups/{group_id}/members/$ref"),
        Some(ghost),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let members = graph(
        info,
        &token,
        Method::GET,
        &format!("/groups/{group_id}/members?$select=id,userPrincipalName"),
        None,
    )
    .await;
    assert_eq!(
        members.body["value"][0]["@odata.type"],
        "#microsoft.graph.user"
    );
    assert_eq!(members.body["value"][0]["id"], json!(dana_id));

    // Up to 20 references in one PATCH.
    let mut binds = Vec::new();
    for n in 0..3 {
        let user = create_user(
            info,
            &token,
            &format!("m{n}"),
            &format!("member-anchor-{n}"),
        )
        .await;
        binds.push(format!(
            "{}/v1.0/directoryObjects/{}",
            info.graph,
            user["id"].as_str().unwrap()
        ));
    }
    let patched = graph(
        info,
        &token,
        Method::PATCH,
        &format!("/groups/{group_id}"),
        Some(json!({"members@odata.bind": binds})),
    )
    .await;
    assert_eq!(patched.status, StatusCode::NO_CONTENT, "{:?}", patched.body);
    let members = graph(
        info,
        &token,
        Method::GET,
        &format!("/groups/{group_id}/members"),
        None,
    )
    .await;
    assert_eq!(members.body["value"].as_array().unwrap().len(), 4);

    let removed = graph(
        info,
        &token,
        Method::DELETE,
        &format!("/groups/{group_id}/members/{dana_id}/$ref"),
        None,
    )
    .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let gone = graph(
        info,
        &token,
        Method::DELETE,
        &format!("/groups/{group_id}/members/{dana_id}/$ref"),
        None,
    )
    .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    let found = graph(
        info,
        &token,
        Method::GET,
        "/groups?$filter=mailNickname%20eq%20'FINANCE'",
        None,
    )
    .await;
    assert_eq!(found.body["value"][0]["id"], json!(group_id));

    // Security groups and Microsoft 365 groups both go to deleted items (group-delete).
    let deleted = graph(
        info,
        &token,
        Method::DELETE,
        &format!("/groups/{group_id}"),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let in_bin = graph(
        info,
        &token,
        Method::GET,
        &format!("/directory/deletedItems/{group_id}"),
        None,
    )
    .await;
    assert_eq!(in_bin.status, StatusCode::OK, "{:?}", in_bin.body);
    assert_eq!(in_bin.body["@odata.type"], "#microsoft.graph.group");
    let unified = graph(
        info,
        &token,
        Method::POST,
        "/groups",
        Some(json!({"displayName": "Team", "mailEnabled": true, "mailNickname": "team", "securityEnabled": false, "groupTypes": ["Unified"]})),
    )
    .await;
    assert_eq!(unified.status, StatusCode::CREATED, "{:?}", unified.body);
    assert_eq!(unified.body["mail"], "team@contoso-lab.onmicrosoft.com");
    let unified_id = unified.body["id"].as_str().unwrap();
    graph(
        info,
        &token,
        Method::DELETE,
        &format!("/groups/{unified_id}"),
        None,
    )
    .await;
    let in_bin = graph(
        info,
        &token,
        Method::GET,
        &format!("/directory/deletedItems/{unified_id}"),
        None,
    )
    .await;
    assert_eq!(in_bin.status, StatusCode::OK);
    assert_eq!(in_bin.body["@odata.type"], "#microsoft.graph.group");
}

#[tokio::test]
async fn deleted_users_wait_in_deleted_items_and_restore_unless_their_name_was_taken() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let fred = create_user(info, &token, "fred", "ZnJlZGZyZWRmcmVkZnJlZA==").await;
    let fred_id = fred["id"].as_str().unwrap();
    let boss = create_user(info, &token, "boss", "Ym9zc2Jvc3Nib3NzYm9zcw==").await;
    let manager = graph(
        info,
        &token,
        Method::PUT,
        &format!("/users/{fred_id}/manager/$ref"),
        Some(json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/users/{}", boss["id"].as_str().unwrap())})),
    )
    .await;
    assert_eq!(manager.status, StatusCode::NO_CONTENT, "{:?}", manager.body);
    let got = graph(
        info,
        &token,
        Method::GET,
        &format!("/users/{fred_id}/manager"),
        None,
    )
    .await;
    assert_eq!(got.body["id"], boss["id"]);
    assert_eq!(got.body["@odata.type"], "#microsoft.graph.user");

    let deleted = graph(
        info,
        &token,
        Method::DELETE,
        &format!("/users/{fred_id}"),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        graph(
            info,
            &token,
            Method::GET,
            &format!("/users/{fred_id}"),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let bin = graph(
        info,
        &token,
        Method::GET,
        "/directory/deletedItems/microsoft.graph.user",
        None,
    )
    .await;
    let entry = &bin.body["value"][0];
    assert_eq!(entry["id"], json!(fred_id));
    assert_eq!(
        entry["userPrincipalName"],
        json!(format!("{}fred@{DOMAIN}", fred_id.replace('-', "")))
    );
    assert!(entry["deletedDateTime"].is_string());

    // While fred is deleted, a new user takes his name: restoring him now conflicts.
    let mut taker = new_user("fred", "dGFrZXJ0YWtlcnRha2VydGE=");
    taker["mail"] = json!("fred.new@corp.dirsync.test");
    let taker = graph(info, &token, Method::POST, "/users", Some(taker)).await;
    assert_eq!(taker.status, StatusCode::CREATED);
    let conflict = graph(
        info,
        &token,
        Method::POST,
        &format!("/directory/deletedItems/{fred_id}/restore"),
        None,
    )
    .await;
    assert_eq!(conflict.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        conflict.body["error"]["details"][0]["target"],
        "userPrincipalName"
    );

    graph(
        info,
        &token,
        Method::DELETE,
        &format!("/users/{}", taker.body["id"].as_str().unwrap()),
        None,
    )
    .await;
    let restored = graph(
        info,
        &token,
        Method::POST,
        &format!("/directory/deletedItems/{fred_id}/restore"),
        None,
    )
    .await;
    assert_eq!(restored.status, StatusCode::OK, "{:?}", restored.body);
    assert_eq!(
        restored.body["userPrincipalName"],
        json!(format!("fred@{DOMAIN}"))
    );
    assert_eq!(
        graph(
            info,
            &token,
            Method::GET,
            &format!("/users/{fred_id}"),
            None
        )
        .await
        .status,
        StatusCode::OK
    );

    // Purged for good: by a signed-in administrator only (directory-deleteditems-delete:
    // users, "Application: Not supported.").
    graph(
        info,
        &token,
        Method::DELETE,
        &format!("/users/{fred_id}"),
        None,
    )
    .await;
    let app_purge = graph(
        info,
        &token,
        Method::DELETE,
        &format!("/directory/deletedItems/{fred_id}"),
        None,
    )
    .await;
    assert_eq!(app_purge.status, StatusCode::FORBIDDEN);
    let admin = admin_token(info).await;
    let purged = graph(
        info,
        &admin,
        Method::DELETE,
        &format!("/directory/deletedItems/{fred_id}"),
        None,
    )
    .await;
    assert_eq!(purged.status, StatusCode::NO_CONTENT);
    let gone = graph(
        info,
        &token,
        Method::POST,
        &format!("/directory/deletedItems/{fred_id}/restore"),
        None,
    )
    .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unknown_segments_and_methods_are_refused_as_graph_does() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let unknown = graph(info, &token, Method::GET, "/widgets", None).await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        unknown.error_message(),
        "Resource not found for the segment 'widgets'."
    );
    let method = graph(info, &token, Method::PUT, "/users", Some(json!({}))).await;
    assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);
    let me = graph(info, &token, Method::GET, "/me", None).await;
    assert_eq!(
        me.error_message(),
        "/me request is only valid with delegated authentication flow."
    );
}

#[tokio::test]
async fn a_deeply_nested_filter_is_refused_with_graphs_error_body() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let deep = format!(
        "{}userPrincipalName eq 'a@corp.dirsync.test'{}",
        "(".repeat(3000),
        ")".repeat(3000)
    );
    let refused = graph(
        info,
        &token,
        Method::GET,
        &format!("/users?$filter={}", urlencode(&deep)),
        None,
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.error_code(), "BadRequest");
    assert!(
        refused.error_message().contains("Recursion depth"),
        "{:?}",
        refused.body
    );
    assert!(refused.body["error"]["innerError"]["request-id"].is_string());
    // The emulator is still there.
    let users = graph(info, &token, Method::GET, "/users?$top=1", None).await;
    assert_eq!(users.status, StatusCode::OK);
    // Sixteen `or` clauses across the filter are one too many.
    let sixteen = (0..16)
        .map(|n| format!("mail eq 'u{n}@corp.dirsync.test'"))
        .collect::<Vec<_>>()
        .join(" or ");
    let refused = graph(
        info,
        &token,
        Method::GET,
        &format!("/users?$filter={}", urlencode(&sixteen)),
        None,
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.error_code(), "Request_UnsupportedQuery");
    assert_eq!(
        refused.error_message(),
        "Too many child clauses specified in search filter expression containing 'OR' operators: 16. Max allowed: 15."
    );
}

#[tokio::test]
async fn a_hire_date_with_an_impossible_offset_is_refused_not_a_crash() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let user = create_user(info, &token, "hire", "aGlyZWhpcmVoaXJlaGlyZQ==").await;
    let id = user["id"].as_str().unwrap();
    for date in [
        "2030-01-01T00:00:00+99999999999999999:00",
        "2030-01-01T00:00:00+24:00",
    ] {
        let refused = graph(
            info,
            &token,
            Method::PATCH,
            &format!("/users/{id}"),
            Some(json!({"employeeHireDate": date})),
        )
        .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{date}");
    }
    let fine = graph(
        info,
        &token,
        Method::PATCH,
        &format!("/users/{id}"),
        Some(json!({"employeeHireDate": "2030-01-01T00:00:00+02:00"})),
    )
    .await;
    assert_eq!(fine.status, StatusCode::NO_CONTENT, "{:?}", fine.body);
}

#[tokio::test]
async fn deleting_users_and_groups_needs_their_own_permission_not_directory_read_write() {
    let emulator = start();
    let info = &emulator.info;
    let admin = admin_token(info).await;
    let (app_id, secret) = app_with_roles(
        info,
        &admin,
        "directory writer",
        &["Directory.ReadWrite.All"],
    )
    .await;
    let directory = app_token_for(info, &app_id, &secret).await;
    let user = create_user(info, &directory, "kept", "a2VwdGtlcHRrZXB0a2VwdA==").await;
    let user_id = user["id"].as_str().unwrap();
    let group = graph(
        info,
        &directory,
        Method::POST,
        "/groups",
        Some(security_group("kept")),
    )
    .await;
    assert_eq!(group.status, StatusCode::CREATED, "{:?}", group.body);
    let group_id = group.body["id"].as_str().unwrap();
    for path in [format!("/users/{user_id}"), format!("/groups/{group_id}")] {
        let refused = graph(info, &directory, Method::DELETE, &path, None).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(refused.error_code(), "Authorization_RequestDenied");
    }
    // The sync app (User.ReadWrite.All, Group.ReadWrite.All) may.
    let sync = app_token(info).await;
    for path in [format!("/users/{user_id}"), format!("/groups/{group_id}")] {
        let deleted = graph(info, &sync, Method::DELETE, &path, None).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{path}");
    }
    // Restoring needs them too.
    for id in [user_id, group_id] {
        let refused = graph(
            info,
            &directory,
            Method::POST,
            &format!("/directory/deletedItems/{id}/restore"),
            None,
        )
        .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{id}");
        let restored = graph(
            info,
            &sync,
            Method::POST,
            &format!("/directory/deletedItems/{id}/restore"),
            None,
        )
        .await;
        assert_eq!(restored.status, StatusCode::OK, "{:?}", restored.body);
    }
}

/// The IDs of a page of directoryObjects.
fn ids(answer: &Answer) -> Vec<String> {
    let mut ids: Vec<String> = answer.body["value"]
        .as_array()
        .unwrap_or_else(|| panic!("{:?}", answer.body))
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn security_groups_go_to_deleted_items_and_come_back_with_their_memberships() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let mut members = Vec::new();
    for name in ["sgone", "sgtwo"] {
        let user = create_user(info, &token, name, &format!("{name}-anchor-security")).await;
        members.push(user["id"].as_str().unwrap().to_owned());
    }
    members.sort();
    let bind: Vec<String> = members
        .iter()
        .map(|id| format!("https://graph.microsoft.com/v1.0/users/{id}"))
        .collect();
    let mut body = security_group("staff");
    body["members@odata.bind"] = json!(bind);
    let group = graph(info, &token, Method::POST, "/groups", Some(body)).await;
    assert_eq!(group.status, StatusCode::CREATED, "{:?}", group.body);
    let group_id = group.body["id"].as_str().unwrap().to_owned();
    let mut body = security_group("everyone");
    body["members@odata.bind"] = json!([format!(
        "https://graph.microsoft.com/v1.0/groups/{group_id}"
    )]);
    let parent = graph(info, &token, Method::POST, "/groups", Some(body)).await;
    let parent_id = parent.body["id"].as_str().unwrap().to_owned();

    // A delta round to start from.
    let mut url = format!("{}/v1.0/groups/delta", info.graph);
    let delta_link = loop {
        let page = graph_url(info, &token, &url).await;
        match page.body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break page.body["@odata.deltaLink"].as_str().unwrap().to_owned(),
        }
    };

    let deleted = graph(
        info,
        &token,
        Method::DELETE,
        &format!("/groups/{group_id}"),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = graph(
        info,
        &token,
        Method::GET,
        &format!("/groups/{group_id}"),
        None,
    )
    .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let bin = graph(
        info,
        &token,
        Method::GET,
        "/directory/deletedItems/microsoft.graph.group",
        None,
    )
    .await;
    assert_eq!(bin.status, StatusCode::OK, "{:?}", bin.body);
    assert_eq!(ids(&bin), vec![group_id.clone()]);
    assert!(bin.body["value"][0]["deletedDateTime"].is_string());
    // Delta: removed, and restorable ("changed", not "deleted").
    let changes = graph_url(info, &token, &delta_link).await;
    let entries = changes.body["value"].as_array().unwrap();
    let removed = entries.iter().find(|e| e["id"] == json!(group_id)).unwrap();
    assert_eq!(removed["@removed"]["reason"], "changed", "{removed}");
    let delta_link = changes.body["@odata.deltaLink"]
        .as_str()
        .unwrap()
        .to_owned();

    let restored = graph(
        info,
        &token,
        Method::POST,
        &format!("/directory/deletedItems/{group_id}/restore"),
        None,
    )
    .await;
    assert_eq!(restored.status, StatusCode::OK, "{:?}", restored.body);
    assert_eq!(restored.body["@odata.type"], "#microsoft.graph.group");
    let listed = graph(
        info,
        &token,
        Method::GET,
        &format!("/groups/{group_id}/members"),
        None,
    )
    .await;
    assert_eq!(ids(&listed), members, "its members are back");
    let nested = graph(
        info,
        &token,
        Method::GET,
        &format!("/groups/{parent_id}/members"),
        None,
    )
    .await;
    assert_eq!(
        ids(&nested),
        vec![group_id.clone()],
        "and so is its own membership"
    );
    let changes = graph_url(info, &token, &delta_link).await;
    let entries = changes.body["value"].as_array().unwrap();
    let back = entries.iter().find(|e| e["id"] == json!(group_id)).unwrap();
    let mut delta_members: Vec<String> = back["members@delta"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    delta_members.sort();
    assert_eq!(delta_members, members, "{back}");
}

async fn graph_url(info: &ReadyInfo, token: &str, url: &str) -> Answer {
    let path = url
        .strip_prefix(&format!("{}/v1.0", info.graph))
        .unwrap_or_else(|| panic!("{url}"));
    let answer = graph(info, token, Method::GET, path, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{url}: {:?}", answer.body);
    answer
}

#[tokio::test]
async fn relationships_list_what_the_caller_cannot_read_with_type_and_id_only() {
    let emulator = start();
    let info = &emulator.info;
    let admin = admin_token(info).await;
    let sync = app_token(info).await;
    let user = create_user(info, &sync, "limited", "bGltaXRlZGxpbWl0ZWRsaQ==").await;
    let user_id = user["id"].as_str().unwrap();
    let mut body = security_group("limited");
    body["members@odata.bind"] =
        json!([format!("https://graph.microsoft.com/v1.0/users/{user_id}")]);
    let group = graph(info, &sync, Method::POST, "/groups", Some(body)).await;
    let group_id = group.body["id"].as_str().unwrap();

    // GroupMember.Read.All reads groups' members, not users: the user comes back limited.
    let (app_id, secret) =
        app_with_roles(info, &admin, "members only", &["GroupMember.Read.All"]).await;
    let members_only = app_token_for(info, &app_id, &secret).await;
    let listed = graph(
        info,
        &members_only,
        Method::GET,
        &format!("/groups/{group_id}/members"),
        None,
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    let member = &listed.body["value"][0];
    assert_eq!(member["@odata.type"], "#microsoft.graph.user");
    assert_eq!(member["id"], json!(user_id));
    assert_eq!(member["displayName"], Value::Null, "{member}");
    assert_eq!(member["userPrincipalName"], Value::Null, "{member}");
    // With User.Read.All as well, the user in full.
    let full = graph(
        info,
        &sync,
        Method::GET,
        &format!("/groups/{group_id}/members"),
        None,
    )
    .await;
    assert_eq!(full.body["value"][0]["displayName"], "User limited");

    // memberOf follows its pages: a user's needs Directory.Read.All for an app (the sync app
    // is refused); a group's takes GroupMember.Read.All.
    let refused = graph(
        info,
        &sync,
        Method::GET,
        &format!("/users/{user_id}/memberOf"),
        None,
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let (app_id, secret) =
        app_with_roles(info, &admin, "directory reader", &["Directory.Read.All"]).await;
    let reader = app_token_for(info, &app_id, &secret).await;
    let member_of = graph(
        info,
        &reader,
        Method::GET,
        &format!("/users/{user_id}/memberOf"),
        None,
    )
    .await;
    assert_eq!(member_of.status, StatusCode::OK, "{:?}", member_of.body);
    assert_eq!(member_of.body["value"][0]["id"], json!(group_id));
    assert_eq!(member_of.body["value"][0]["displayName"], "Group limited");
    let group_member_of = graph(
        info,
        &members_only,
        Method::GET,
        &format!("/groups/{group_id}/memberOf"),
        None,
    )
    .await;
    assert_eq!(group_member_of.status, StatusCode::OK);
}

#[tokio::test]
async fn advanced_queries_see_new_objects_only_after_the_index_lag() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let set = hook(
        info,
        Method::PUT,
        "faults",
        Some(json!({"index_lag_ms": 1500})),
    )
    .await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{:?}", set.body);
    create_user(info, &token, "lagging", "bGFnZ2luZ2xhZ2dpbmdsYQ==").await;
    let advanced =
        "/users?$filter=onPremisesImmutableId%20eq%20'bGFnZ2luZ2xhZ2dpbmdsYQ=='&$count=true";
    let eventual = [("ConsistencyLevel", "eventual")];
    let early = graph_with(info, &token, Method::GET, advanced, None, &eventual).await;
    assert_eq!(early.status, StatusCode::OK);
    assert_eq!(early.body["@odata.count"], 0, "not indexed yet");
    // A plain read sees it at once.
    let plain = graph(
        info,
        &token,
        Method::GET,
        &format!("/users/lagging@{DOMAIN}"),
        None,
    )
    .await;
    assert_eq!(plain.status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let later = graph_with(info, &token, Method::GET, advanced, None, &eventual).await;
    assert_eq!(later.body["@odata.count"], 1, "{:?}", later.body);
}
