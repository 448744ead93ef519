//! Delta queries (first round, changes, deletions, members) and JSON batching (limit,
//! dependsOn, each request judged alone).
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_emulator::ReadyInfo;

/// Follows nextLinks to the end of a round; returns (entries, deltaLink).
async fn round(
    info: &ReadyInfo,
    token: &str,
    first: &str,
    headers: &[(&str, &str)],
) -> (Vec<Value>, String) {
    let mut url = first.to_owned();
    let mut entries = Vec::new();
    loop {
        let mut request = client().get(&url).bearer_auth(token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let page = answer(request.send().await.unwrap()).await;
        assert_eq!(page.status, StatusCode::OK, "{url}: {:?}", page.body);
        entries.extend(page.body["value"].as_array().unwrap().iter().cloned());
        if let Some(next) = page.body["@odata.nextLink"].as_str() {
            assert!(next.contains("$skiptoken="), "{next}");
            assert!(page.body.get("@odata.deltaLink").is_none());
            url = next.to_owned();
            continue;
        }
        let delta = page.body["@odata.deltaLink"]
            .as_str()
            .expect("a delta link ends the round");
        assert!(delta.contains("$deltatoken="), "{delta}");
        let _ = info;
        return (entries, delta.to_owned());
    }
}

fn by_id<'a>(entries: &'a [Value], id: &str) -> Vec<&'a Value> {
    entries.iter().filter(|e| e["id"] == json!(id)).collect()
}

#[tokio::test]
async fn delta_reports_additions_changes_and_deletions() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let mut ids = Vec::new();
    for n in 0..120 {
        ids.push(
            create_user(info, &token, &format!("d{n}"), &format!("delta-anchor-{n}")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let first = format!(
        "{}/v1.0/users/delta?$select=displayName,jobTitle,userPrincipalName",
        info.graph
    );
    let (entries, delta_link) = round(info, &token, &first, &[]).await;
    // Every user (and the administrator) once, with the selected properties and id.
    assert_eq!(entries.len(), 121);
    let one = by_id(&entries, &ids[0]);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["displayName"], "User d0");
    assert!(
        one[0].get("jobTitle").is_none(),
        "never set, not returned: {}",
        one[0]
    );
    assert!(one[0].get("mail").is_none(), "not selected: {}", one[0]);

    // Nothing changed: an empty round.
    let (quiet, delta_link) = round(info, &token, &delta_link, &[]).await;
    assert!(quiet.is_empty(), "{quiet:?}");

    // A change, an addition, a deletion, and a change to a property that is not tracked.
    graph(
        info,
        &token,
        Method::PATCH,
        &format!("/users/{}", ids[1]),
        Some(json!({"jobTitle": "Clerk"})),
    )
    .await;
    graph(
        info,
        &token,
        Method::PATCH,
        &format!("/users/{}", ids[3]),
        Some(json!({"city": "Oslo"})),
    )
    .await;
    let added = create_user(info, &token, "late", "bGF0ZWxhdGVsYXRlbGF0ZQ==").await;
    graph(
        info,
        &token,
        Method::DELETE,
        &format!("/users/{}", ids[2]),
        None,
    )
    .await;
    let (changes, delta_link) = round(info, &token, &delta_link, &[]).await;
    assert_eq!(changes.len(), 3, "{changes:?}");
    let changed = by_id(&changes, &ids[1])[0];
    assert_eq!(changed["jobTitle"], "Clerk");
    assert_eq!(
        changed["displayName"], "User d1",
        "default: unchanged tracked properties too"
    );
    assert_eq!(
        by_id(&changes, added["id"].as_str().unwrap())[0]["displayName"],
        "User late"
    );
    assert_eq!(
        by_id(&changes, &ids[2])[0],
        &json!({"id": ids[2], "@removed": {"reason": "changed"}})
    );
    assert!(by_id(&changes, &ids[3]).is_empty(), "city is not tracked");

    // Prefer: return=minimal gives only what changed; a purge is reported as deleted.
    graph(
        info,
        &token,
        Method::PATCH,
        &format!("/users/{}", ids[4]),
        Some(json!({"jobTitle": "Boss"})),
    )
    .await;
    let purged = graph(
        info,
        &admin_token(info).await,
        Method::DELETE,
        &format!("/directory/deletedItems/{}", ids[2]),
        None,
    )
    .await;
    assert_eq!(purged.status, StatusCode::NO_CONTENT, "{:?}", purged.body);
    let (minimal, delta_link) =
        round(info, &token, &delta_link, &[("Prefer", "return=minimal")]).await;
    assert_eq!(
        by_id(&minimal, &ids[4])[0],
        &json!({"id": ids[4], "jobTitle": "Boss"})
    );
    assert_eq!(
        by_id(&minimal, &ids[2])[0],
        &json!({"id": ids[2], "@removed": {"reason": "deleted"}})
    );

    // Tokens survive as plain strings; garbage and foreign tokens need a resync.
    let garbage = format!("{}/v1.0/users/delta?$deltatoken=garbage", info.graph);
    let refused = answer(
        client()
            .get(&garbage)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(refused.status, StatusCode::GONE);
    assert_eq!(refused.error_code(), "resyncRequired");
    assert!(
        refused
            .header("Location")
            .is_some_and(|l| l.ends_with("/v1.0/users/delta"))
    );
    let as_groups = delta_link.replace("/users/delta", "/groups/delta");
    let refused = answer(
        client()
            .get(&as_groups)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(refused.status, StatusCode::GONE);

    // $deltatoken=latest: no data, a link for what comes next.
    let latest = graph(
        info,
        &token,
        Method::GET,
        "/users/delta?$deltatoken=latest",
        None,
    )
    .await;
    assert_eq!(latest.body["value"], json!([]));
    let next = latest.body["@odata.deltaLink"].as_str().unwrap().to_owned();
    create_user(info, &token, "newest", "bmV3ZXN0bmV3ZXN0bmV3ZXM=").await;
    let (after_latest, _) = round(info, &token, &next, &[]).await;
    assert_eq!(after_latest.len(), 1);
    assert_eq!(
        after_latest[0]["userPrincipalName"],
        json!(format!("newest@{DOMAIN}"))
    );
}

#[tokio::test]
async fn group_delta_tracks_members() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let eve = create_user(info, &token, "eve", "ZXZlZXZlZXZlZXZlZXZlZQ==").await;
    let frank = create_user(info, &token, "frank", "ZnJhbmtmcmFua2ZyYW5rZg==").await;
    let group = graph(
        info,
        &token,
        Method::POST,
        "/groups",
        Some(security_group("ops")),
    )
    .await
    .body;
    let group_id = group["id"].as_str().unwrap();
    let reference = |user: &Value| json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{}", user["id"].as_str().unwrap())});
    graph(
        info,
        &token,
        Method::POST,
        &format!("/groups/{group_id}/members/$ref"),
        Some(reference(&eve)),
    )
    .await;

    let first = format!(
        "{}/v1.0/groups/delta?$select=displayName,members",
        info.graph
    );
    let (entries, delta_link) = round(info, &token, &first, &[]).await;
    let ops = by_id(&entries, group_id)[0];
    assert_eq!(
        ops["members@delta"],
        json!([{"@odata.type": "#microsoft.graph.user", "id": eve["id"]}])
    );

    graph(
        info,
        &token,
        Method::POST,
        &format!("/groups/{group_id}/members/$ref"),
        Some(reference(&frank)),
    )
    .await;
    graph(
        info,
        &token,
        Method::DELETE,
        &format!(
            "/groups/{group_id}/members/{}/$ref",
            eve["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    let (changes, _) = round(info, &token, &delta_link, &[]).await;
    let ops = by_id(&changes, group_id)[0];
    let members = ops["members@delta"].as_array().unwrap();
    assert!(
        members.contains(&json!({"@odata.type": "#microsoft.graph.user", "id": frank["id"]})),
        "{members:?}"
    );
    assert!(
        members.contains(&json!({"@odata.type": "#microsoft.graph.user", "id": eve["id"], "@removed": {"reason": "deleted"}})),
        "{members:?}"
    );
}

fn user_request(id: &str, name: &str, anchor: &str) -> Value {
    json!({"id": id, "method": "POST", "url": "/users", "headers": {"Content-Type": "application/json"}, "body": new_user(name, anchor)})
}

#[tokio::test]
async fn batches_hold_twenty_requests_each_judged_alone() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;

    let too_many: Vec<Value> = (0..21)
        .map(|n| user_request(&n.to_string(), &format!("t{n}"), &format!("too-many-{n}")))
        .collect();
    let refused = graph(
        info,
        &token,
        Method::POST,
        "/$batch",
        Some(json!({"requests": too_many})),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body["error"]["code"].is_string());
    // Nothing of a refused batch ran.
    let none = graph(
        info,
        &token,
        Method::GET,
        &format!("/users/t0@{DOMAIN}"),
        None,
    )
    .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);

    let duplicate_ids = json!({"requests": [user_request("1", "a", "a-anchor"), user_request("1", "b", "b-anchor")]});
    assert_eq!(
        graph(info, &token, Method::POST, "/$batch", Some(duplicate_ids))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    // A fully parallel batch: 17 creates, one that collides with an existing user, a read of
    // what does not exist, and an advanced query.
    create_user(info, &token, "taken", "batch-anchor-taken").await;
    let mut requests: Vec<Value> = (0..17)
        .map(|n| {
            user_request(
                &n.to_string(),
                &format!("b{n}"),
                &format!("batch-anchor-{n}"),
            )
        })
        .collect();
    let mut duplicate = new_user("taken", "batch-anchor-dup");
    duplicate["mail"] = json!("dup@corp.dirsync.test");
    requests.push(json!({"id": "17", "method": "POST", "url": "/users", "headers": {"Content-Type": "application/json"}, "body": duplicate}));
    requests.push(
        json!({"id": "18", "method": "GET", "url": "/users/00000000-0000-0000-0000-000000000000"}),
    );
    requests.push(json!({"id": "19", "method": "GET", "url": "users?$select=id&$filter=onPremisesImmutableId eq 'batch-anchor-taken'&$count=true", "headers": {"ConsistencyLevel": "eventual"}}));
    let answer = graph(
        info,
        &token,
        Method::POST,
        "/$batch",
        Some(json!({"requests": requests})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let responses = answer.body["responses"].as_array().unwrap();
    assert_eq!(responses.len(), 20);
    let order: Vec<&str> = responses
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_ne!(
        order,
        (0..20)
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        "responses come in any order"
    );
    let response = |id: &str| responses.iter().find(|r| r["id"] == json!(id)).unwrap();
    for n in 0..17 {
        assert_eq!(
            response(&n.to_string())["status"],
            201,
            "{}",
            response(&n.to_string())
        );
    }
    assert_eq!(
        response("0")["body"]["userPrincipalName"],
        json!(format!("b0@{DOMAIN}"))
    );
    assert!(
        response("0")["headers"]["Content-Type"]
            .as_str()
            .unwrap()
            .starts_with("application/json")
    );
    let conflict = response("17");
    assert_eq!(conflict["status"], 400);
    assert_eq!(
        conflict["body"]["error"]["details"][0]["target"],
        "userPrincipalName"
    );
    assert_eq!(response("18")["status"], 404);
    assert_eq!(response("19")["status"], 200, "{}", response("19"));
    assert_eq!(response("19")["body"]["value"].as_array().unwrap().len(), 1);

    // dependsOn: a failed dependency fails its dependants with 424, down the chain.
    let chained = json!({"requests": [
        {"id": "a", "method": "GET", "url": "/users/00000000-0000-0000-0000-000000000000"},
        {"id": "b", "method": "GET", "url": "/domains", "dependsOn": ["a"]},
        {"id": "c", "method": "GET", "url": "/domains", "dependsOn": ["b"]}
    ]});
    let answer = graph(info, &token, Method::POST, "/$batch", Some(chained)).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let responses = answer.body["responses"].as_array().unwrap();
    let response = |id: &str| responses.iter().find(|r| r["id"] == json!(id)).unwrap();
    assert_eq!(response("a")["status"], 404);
    assert_eq!(response("b")["status"], 424);
    assert_eq!(response("c")["status"], 424);
    let missing_dependency =
        json!({"requests": [{"id": "a", "method": "GET", "url": "/domains", "dependsOn": ["zz"]}]});
    assert_eq!(
        graph(
            info,
            &token,
            Method::POST,
            "/$batch",
            Some(missing_dependency)
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn a_batch_mixing_sequenced_and_parallel_requests_is_refused_and_runs_nothing() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let mixed = json!({"requests": [
        user_request("1", "mixed1", "mixed-anchor-1"),
        {"id": "2", "method": "GET", "url": "/domains", "dependsOn": ["1"]},
        user_request("3", "mixed3", "mixed-anchor-3"),
    ]});
    let refused = graph(info, &token, Method::POST, "/$batch", Some(mixed)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.error_message(),
        "Batch should be either fully sequential or fully parallel."
    );
    for name in ["mixed1", "mixed3"] {
        let absent = graph(
            info,
            &token,
            Method::GET,
            &format!("/users/{name}@{DOMAIN}"),
            None,
        )
        .await;
        assert_eq!(
            absent.status,
            StatusCode::NOT_FOUND,
            "{name} was not created"
        );
    }
    // One root with every other request depending on it is sequential.
    let same_root = json!({"requests": [
        user_request("1", "root", "root-anchor"),
        {"id": "2", "method": "GET", "url": format!("/users/root@{DOMAIN}"), "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": "/domains", "dependsOn": ["1"]},
    ]});
    let answer = graph(info, &token, Method::POST, "/$batch", Some(same_root)).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let statuses: Vec<(&str, u64)> = answer.body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["status"].as_u64().unwrap()))
        .collect();
    assert!(statuses.contains(&("2", 200)), "{statuses:?}");
}

#[tokio::test]
async fn independent_requests_do_not_run_in_array_order() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    // Read-after-create without dependsOn: in array order the read would find the user.
    // Graph may run them in any order; the emulator never runs a parallel batch in array
    // order, so the read comes first and finds nothing.
    let racy = json!({"requests": [
        user_request("create", "racy", "racy-anchor"),
        {"id": "read", "method": "GET", "url": format!("/users/racy@{DOMAIN}")},
    ]});
    let answer = graph(info, &token, Method::POST, "/$batch", Some(racy)).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let responses = answer.body["responses"].as_array().unwrap();
    let status = |id: &str| {
        responses.iter().find(|r| r["id"] == json!(id)).unwrap()["status"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(status("create"), 201);
    assert_eq!(status("read"), 404, "the read ran before the create");
    let order: Vec<&str> = responses
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        ["read", "create"],
        "two answers: never in request order"
    );
}

#[tokio::test]
async fn a_throttled_request_inside_a_batch_gets_its_own_429() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let limits = hook(
        info,
        Method::PUT,
        "limits",
        Some(json!({"writes": 5, "window_secs": 60})),
    )
    .await;
    assert_eq!(limits.status, StatusCode::NO_CONTENT);
    let requests: Vec<Value> = (0..8)
        .map(|n| {
            user_request(
                &n.to_string(),
                &format!("q{n}"),
                &format!("quota-anchor-{n}"),
            )
        })
        .collect();
    let mut with_read = requests.clone();
    with_read.push(json!({"id": "read", "method": "GET", "url": "/domains"}));
    let answer = graph(
        info,
        &token,
        Method::POST,
        "/$batch",
        Some(json!({"requests": with_read})),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    let responses = answer.body["responses"].as_array().unwrap();
    let created = responses.iter().filter(|r| r["status"] == 201).count();
    let throttled: Vec<&Value> = responses.iter().filter(|r| r["status"] == 429).collect();
    assert_eq!(created, 5);
    assert_eq!(throttled.len(), 3);
    for response in throttled {
        let retry_after: u64 = response["headers"]["Retry-After"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry_after), "{response}");
        assert_eq!(response["body"]["error"]["code"], "TooManyRequests");
    }
    let read = responses.iter().find(|r| r["id"] == "read").unwrap();
    assert_eq!(read["status"], 200, "reads are not write-limited");
}
