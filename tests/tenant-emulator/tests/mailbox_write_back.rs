//! The mailbox extension for Exchange hybrid write-back (`/dirsync/v1/mailboxes/delta` and the
//! `/_emulator/mailboxes` hooks, not Graph): first rounds and delta rounds, clearing, deletion,
//! restore and purge, paging, refused tokens and callers, the hook's checks, the state file, the
//! in-process API, and the switch that hides the endpoint as public Graph would.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_emulator::{EmulatorConfig, ReadyInfo, RunningEmulator};

const LEGACY_DN: &str =
    "/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=alice";

/// GET on an absolute URL with an optional bearer token.
async fn get(url: &str, token: Option<&str>) -> Answer {
    let mut request = client().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    answer(request.send().await.unwrap()).await
}

/// The endpoint, with a query string (`""` or `"?…"`).
fn delta_url(info: &ReadyInfo, query: &str) -> String {
    format!("{}/dirsync/v1/mailboxes/delta{query}", info.graph)
}

/// Follows a round from `url` to its deltaLink: every item, the deltaLink, and how many pages.
async fn round(url: &str, token: &str) -> (Vec<Value>, String, usize) {
    let mut items = Vec::new();
    let mut url = url.to_owned();
    let mut pages = 0;
    loop {
        let page = get(&url, Some(token)).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        pages += 1;
        items.extend(page.body["value"].as_array().unwrap().iter().cloned());
        if let Some(next) = page.body["@odata.nextLink"].as_str() {
            assert!(
                page.body.get("@odata.deltaLink").is_none(),
                "{:?}",
                page.body
            );
            url = next.to_owned();
            continue;
        }
        let delta_link = page.body["@odata.deltaLink"].as_str().unwrap().to_owned();
        return (items, delta_link, pages);
    }
}

async fn patch_mailbox(info: &ReadyInfo, user: &str, body: Value) -> Answer {
    hook(
        info,
        Method::PATCH,
        &format!("mailboxes/{user}"),
        Some(body),
    )
    .await
}

fn id_of(user: &Value) -> String {
    user["id"].as_str().unwrap().to_owned()
}

fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(id_of).collect()
}

/// An item with every attribute unset.
fn empty_item(id: &str) -> Value {
    json!({
        "id": id,
        "cloudLegacyExchangeDN": null,
        "cloudMSExchArchiveStatus": null,
        "cloudMSExchSafeSendersHash": null,
        "cloudMSExchBlockedSendersHash": null,
        "cloudMSExchSafeRecipientsHash": null,
        "cloudMSExchUCVoiceMailSettings": [],
    })
}

#[tokio::test]
async fn a_first_round_lists_mailboxes_and_later_rounds_only_what_changed() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let alice = id_of(&create_user(info, &token, "alice", "YWxpY2VhbGljZWFsaWNlYQ==").await);
    let bob = id_of(&create_user(info, &token, "bob", "Ym9iYm9iYm9iYm9iYm9iYg==").await);
    let carol = id_of(&create_user(info, &token, "carol", "Y2Fyb2xjYXJvbGNhcm9sYw==").await);
    let set = patch_mailbox(
        info,
        &alice,
        json!({
            "cloudLegacyExchangeDN": LEGACY_DN,
            "cloudMSExchArchiveStatus": 1,
            "cloudMSExchSafeSendersHash": "AAECAw==",
            "cloudMSExchUCVoiceMailSettings": ["CsHostedVoicemail=1"],
        }),
    )
    .await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{:?}", set.body);
    assert_eq!(set.body, Value::Null);
    let set = patch_mailbox(info, &bob, json!({"cloudMSExchArchiveStatus": 0})).await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{:?}", set.body);

    // Only users with a mailbox; carol has none. Graph's headers come along.
    let first = get(&delta_url(info, ""), Some(&token)).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert!(first.header("request-id").is_some());
    let mut expected = vec![
        json!({
            "id": alice,
            "cloudLegacyExchangeDN": LEGACY_DN,
            "cloudMSExchArchiveStatus": 1,
            "cloudMSExchSafeSendersHash": "AAECAw==",
            "cloudMSExchBlockedSendersHash": null,
            "cloudMSExchSafeRecipientsHash": null,
            "cloudMSExchUCVoiceMailSettings": ["CsHostedVoicemail=1"],
        }),
        {
            let mut item = empty_item(&bob);
            item["cloudMSExchArchiveStatus"] = json!(0);
            item
        },
    ];
    expected.sort_by_key(id_of);
    assert_eq!(first.body["value"], json!(expected));
    let delta_link = first.body["@odata.deltaLink"].as_str().unwrap();
    let prefix = format!("{}?$deltatoken=", delta_url(info, ""));
    assert!(delta_link.starts_with(&prefix), "{delta_link}");
    assert!(first.body.get("@odata.nextLink").is_none());

    // Nothing changed: nothing new, and a new deltaLink.
    let (items, delta_link, _) = round(delta_link, &token).await;
    assert!(items.is_empty(), "{items:?}");

    // A Graph change to a user is not a mailbox change; a patch that changes nothing is none.
    let renamed = graph(
        info,
        &token,
        Method::PATCH,
        &format!("/users/{carol}"),
        Some(json!({"displayName": "Carol"})),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::NO_CONTENT);
    let same = patch_mailbox(info, &bob, json!({"cloudMSExchArchiveStatus": 0})).await;
    assert_eq!(same.status, StatusCode::NO_CONTENT);
    let (items, delta_link, _) = round(&delta_link, &token).await;
    assert!(items.is_empty(), "{items:?}");

    // A patch: exactly that user, with all its values.
    let set = patch_mailbox(
        info,
        &carol,
        json!({"cloudMSExchBlockedSendersHash": "/w==", "cloudMSExchSafeRecipientsHash": "AQ=="}),
    )
    .await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{:?}", set.body);
    let (items, delta_link, _) = round(&delta_link, &token).await;
    let mut carol_item = empty_item(&carol);
    carol_item["cloudMSExchBlockedSendersHash"] = json!("/w==");
    carol_item["cloudMSExchSafeRecipientsHash"] = json!("AQ==");
    assert_eq!(items, vec![carol_item]);

    // Clearing every value shows the user with nulls; it then leaves first rounds.
    let cleared = patch_mailbox(
        info,
        &alice,
        json!({
            "cloudLegacyExchangeDN": null,
            "cloudMSExchArchiveStatus": null,
            "cloudMSExchSafeSendersHash": null,
            "cloudMSExchUCVoiceMailSettings": null,
        }),
    )
    .await;
    assert_eq!(cleared.status, StatusCode::NO_CONTENT, "{:?}", cleared.body);
    let (items, delta_link, _) = round(&delta_link, &token).await;
    assert_eq!(items, vec![empty_item(&alice)]);
    let (items, _, _) = round(&delta_url(info, ""), &token).await;
    let mut expected = vec![bob.clone(), carol.clone()];
    expected.sort();
    assert_eq!(ids(&items), expected);

    // Deleting a user with a mailbox: removed. Alice (cleared before this point) is not.
    for user in [&bob, &alice] {
        let deleted = graph(
            info,
            &token,
            Method::DELETE,
            &format!("/users/{user}"),
            None,
        )
        .await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    }
    let (items, delta_link, _) = round(&delta_link, &token).await;
    assert_eq!(
        items,
        vec![json!({"id": bob, "@removed": {"reason": "deleted"}})]
    );
    let (items, _, _) = round(&delta_url(info, ""), &token).await;
    assert_eq!(ids(&items), vec![carol.clone()]);

    // Restored from deleted items: back, with its values.
    let admin = admin_token(info).await;
    let restored = graph(
        info,
        &admin,
        Method::POST,
        &format!("/directory/deletedItems/{bob}/restore"),
        None,
    )
    .await;
    assert_eq!(restored.status, StatusCode::OK, "{:?}", restored.body);
    let (items, _, _) = round(&delta_link, &token).await;
    assert_eq!(items, vec![expected_bob(&bob)]);
}

fn expected_bob(bob: &str) -> Value {
    let mut item = empty_item(bob);
    item["cloudMSExchArchiveStatus"] = json!(0);
    item
}

#[tokio::test]
async fn a_user_cleared_or_purged_between_rounds_is_still_reported_removed() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let admin = admin_token(info).await;
    let dave = id_of(&create_user(info, &token, "dave", "ZGF2ZWRhdmVkYXZlZGF2ZQ==").await);
    let erin = id_of(&create_user(info, &token, "erin", "ZXJpbmVyaW5lcmluZXJpbg==").await);
    for user in [&dave, &erin] {
        let set = patch_mailbox(info, user, json!({"cloudMSExchArchiveStatus": 1})).await;
        assert_eq!(set.status, StatusCode::NO_CONTENT);
    }
    let (items, delta_link, _) = round(&delta_url(info, ""), &token).await;
    assert_eq!(items.len(), 2);

    // Dave is cleared then deleted, Erin deleted then purged, all before the next round: the
    // client holds values for both, so both are removed.
    let cleared = patch_mailbox(info, &dave, json!({"cloudMSExchArchiveStatus": null})).await;
    assert_eq!(cleared.status, StatusCode::NO_CONTENT);
    for user in [&dave, &erin] {
        let deleted = graph(
            info,
            &token,
            Method::DELETE,
            &format!("/users/{user}"),
            None,
        )
        .await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    }
    let purged = graph(
        info,
        &admin,
        Method::DELETE,
        &format!("/directory/deletedItems/{erin}"),
        None,
    )
    .await;
    assert_eq!(purged.status, StatusCode::NO_CONTENT, "{:?}", purged.body);
    let (mut items, delta_link, _) = round(&delta_link, &token).await;
    items.sort_by_key(id_of);
    let mut expected = vec![
        json!({"id": dave, "@removed": {"reason": "deleted"}}),
        json!({"id": erin, "@removed": {"reason": "deleted"}}),
    ];
    expected.sort_by_key(id_of);
    assert_eq!(items, expected);
    // Reported once.
    let (items, _, _) = round(&delta_link, &token).await;
    assert!(items.is_empty(), "{items:?}");
}

#[tokio::test]
async fn pages_of_two_give_every_user_once_in_id_order() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let mut users = Vec::new();
    for n in 0..5 {
        let name = format!("pager{n}");
        let user = id_of(&create_user(info, &token, &name, &format!("cGFnZXJ{n}")).await);
        emulator
            .set_mailbox(
                &user,
                json!({"cloudLegacyExchangeDN": format!("/o=Lab/cn={name}")}),
            )
            .unwrap();
        users.push(user);
    }
    users.sort();

    let first = get(&delta_url(info, "?$top=2"), Some(&token)).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(first.body["value"].as_array().unwrap().len(), 2);
    let next = first.body["@odata.nextLink"].as_str().unwrap();
    let prefix = format!("{}?$skiptoken=", delta_url(info, ""));
    assert!(next.starts_with(&prefix), "{next}");

    // A change while paging waits for the next round: the pages do not shift.
    emulator
        .set_mailbox(&users[4], json!({"cloudMSExchArchiveStatus": 1}))
        .unwrap();
    let (rest, delta_link, pages) = round(next, &token).await;
    let mut seen = ids(first.body["value"].as_array().unwrap());
    seen.extend(ids(&rest));
    assert_eq!(seen, users);
    assert_eq!(pages, 2);
    // The round's page size goes on in its delta link.
    emulator
        .set_mailbox(&users[0], json!({"cloudMSExchArchiveStatus": 1}))
        .unwrap();
    emulator
        .set_mailbox(&users[1], json!({"cloudMSExchArchiveStatus": 1}))
        .unwrap();
    let (items, _, pages) = round(&delta_link, &token).await;
    assert_eq!(
        ids(&items),
        vec![users[0].clone(), users[1].clone(), users[4].clone()]
    );
    assert_eq!(pages, 2);
    assert_eq!(items[2]["cloudMSExchArchiveStatus"], 1);

    // $top out of range or not a number.
    for top in ["0", "1001", "two", "-1"] {
        let refused = get(&delta_url(info, &format!("?$top={top}")), Some(&token)).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{:?}",
            refused.body
        );
        assert_eq!(refused.error_code(), "Request_BadRequest");
        assert!(
            refused.error_message().contains("$top"),
            "{:?}",
            refused.body
        );
    }
    let (items, _, pages) = round(&delta_url(info, "?$top=1000"), &token).await;
    assert_eq!((items.len(), pages), (5, 1));
}

#[tokio::test]
async fn unknown_tokens_are_gone_and_the_client_starts_again() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    // Graph's users delta token (followed to its deltaLink) is no mailbox token.
    let mut page = graph(info, &token, Method::GET, "/users/delta", None).await;
    let graph_token = loop {
        if let Some(link) = page.body["@odata.deltaLink"].as_str() {
            break link.split("$deltatoken=").nth(1).unwrap().to_owned();
        }
        let next = page.body["@odata.nextLink"].as_str().unwrap().to_owned();
        page = get(&next, Some(&token)).await;
    };
    let (_, delta_link, _) = round(&delta_url(info, ""), &token).await;
    let good = delta_link.split("$deltatoken=").nth(1).unwrap().to_owned();
    let tampered = format!("{}x", &good[..good.len() - 1]);
    for query in [
        "?$deltatoken=garbage".to_owned(),
        "?$skiptoken=garbage".to_owned(),
        "?$deltatoken=".to_owned(),
        "?$deltatoken=latest".to_owned(),
        format!("?$deltatoken={graph_token}"),
        format!("?$deltatoken={tampered}"),
    ] {
        let gone = get(&delta_url(info, &query), Some(&token)).await;
        assert_eq!(gone.status, StatusCode::GONE, "{query}: {:?}", gone.body);
        assert_eq!(gone.error_code(), "syncStateNotFound", "{:?}", gone.body);
        assert!(!gone.error_message().is_empty());
    }
    // Another tenant's token is unknown here.
    let other = start();
    let other_token = app_token(&other.info).await;
    let foreign = get(
        &delta_url(&other.info, &format!("?$deltatoken={good}")),
        Some(&other_token),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::GONE, "{:?}", foreign.body);
    assert_eq!(foreign.error_code(), "syncStateNotFound");
}

#[tokio::test]
async fn applications_that_may_read_users_and_sync_administrators_may_read_mailboxes() {
    let emulator = start();
    let info = &emulator.info;
    let url = delta_url(info, "");
    for token in [None, Some("not-a-token")] {
        let refused = get(&url, token).await;
        assert_eq!(
            refused.status,
            StatusCode::UNAUTHORIZED,
            "{:?}",
            refused.body
        );
        assert_eq!(refused.error_code(), "InvalidAuthenticationToken");
        assert!(refused.header("WWW-Authenticate").is_some());
    }
    // An administrator who may configure directory synchronization may read (dirsync's setup
    // checks the endpoint that way).
    let admin = admin_token(info).await;
    let read = get(&url, Some(&admin)).await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    // An application without a user-reading role is refused as Graph refuses.
    let (groups, groups_secret) = app_with_roles(info, &admin, "groups", &["Group.Read.All"]).await;
    let groups = app_token_for(info, &groups, &groups_secret).await;
    let refused = get(&url, Some(&groups)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    assert_eq!(refused.error_code(), "Authorization_RequestDenied");
    assert_eq!(
        refused.error_message(),
        "Insufficient privileges to complete the operation."
    );
    for role in ["User.Read.All", "Directory.Read.All"] {
        let (reader, secret) = app_with_roles(info, &admin, role, &[role]).await;
        let reader = app_token_for(info, &reader, &secret).await;
        let read = get(&url, Some(&reader)).await;
        assert_eq!(read.status, StatusCode::OK, "{role}: {:?}", read.body);
    }
    // Only GET.
    let token = app_token(info).await;
    let response = client()
        .post(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let other = answer(response).await;
    assert_eq!(other.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(other.error_code(), "Request_BadRequest");
    // A read: not held back by the write limit.
    let limits = hook(
        info,
        Method::PUT,
        "limits",
        Some(json!({"writes": 1, "window_secs": 60})),
    )
    .await;
    assert_eq!(limits.status, StatusCode::NO_CONTENT);
    for _ in 0..3 {
        assert_eq!(get(&url, Some(&token)).await.status, StatusCode::OK);
    }
}

/// What the router answers for a path it does not know.
fn unknown_path(path: &str) -> Value {
    json!({"error": {"code": "NotFound", "message": format!("No endpoint at {path}")}})
}

#[tokio::test]
async fn switched_off_the_endpoint_is_an_unknown_path_and_the_hooks_stay() {
    let emulator = RunningEmulator::start(EmulatorConfig {
        mailbox_endpoint: false,
        ..config()
    })
    .unwrap();
    let info = &emulator.info;
    let token = app_token(info).await;
    let user = id_of(&create_user(info, &token, "off", "b2Zmb2Zmb2Zmb2Zmb2Zmbw==").await);
    let set = patch_mailbox(info, &user, json!({"cloudMSExchArchiveStatus": 1})).await;
    assert_eq!(set.status, StatusCode::NO_CONTENT);
    for query in ["", "?$deltatoken=garbage"] {
        let off = get(&delta_url(info, query), Some(&token)).await;
        assert_eq!(off.status, StatusCode::NOT_FOUND, "{:?}", off.body);
        assert_eq!(off.body, unknown_path("/dirsync/v1/mailboxes/delta"));
    }
    // The password hash endpoint is a switch of its own.
    let probe = get(
        &format!("{}/dirsync/v1/passwordHashes", info.graph),
        Some(&token),
    )
    .await;
    assert_eq!(probe.status, StatusCode::OK);
}

#[tokio::test]
async fn the_hook_checks_users_and_types_but_no_sizes() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let user = id_of(&create_user(info, &token, "hooked", "aG9va2VkaG9va2VkaG9vaw==").await);

    // Unknown and deleted users.
    let unknown = "0badc0de-0000-4000-8000-000000000000";
    let missing = patch_mailbox(info, unknown, json!({"cloudMSExchArchiveStatus": 1})).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{:?}", missing.body);
    assert!(missing.body["error"].as_str().unwrap().contains(unknown));
    let read = hook(info, Method::GET, &format!("mailboxes/{unknown}"), None).await;
    assert_eq!(read.status, StatusCode::NOT_FOUND);

    // Wrong types, bad base64 and unknown properties name the property; nothing is applied.
    for (body, named) in [
        (
            json!({"cloudMSExchArchiveStatus": "1"}),
            "cloudMSExchArchiveStatus",
        ),
        (
            json!({"cloudMSExchSafeSendersHash": "***"}),
            "cloudMSExchSafeSendersHash",
        ),
        (
            json!({"cloudMSExchSafeSendersHash": "AAE"}),
            "cloudMSExchSafeSendersHash",
        ),
        (
            json!({"cloudMSExchUCVoiceMailSettings": [1]}),
            "cloudMSExchUCVoiceMailSettings",
        ),
        (
            json!({"cloudLegacyExchangeDN": LEGACY_DN, "msExchArchiveStatus": 1}),
            "msExchArchiveStatus",
        ),
    ] {
        let refused = patch_mailbox(info, &user, body).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{:?}",
            refused.body
        );
        let message = refused.body["error"].as_str().unwrap();
        assert!(message.contains(&format!("'{named}'")), "{message}");
    }
    let response = client()
        .patch(format!("{}/_emulator/mailboxes/{user}", info.graph))
        .header("Content-Type", "application/json")
        .body("{\"cloudLegacyExchangeDN\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(answer(response).await.status, StatusCode::BAD_REQUEST);
    let read = hook(info, Method::GET, &format!("mailboxes/{user}"), None).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.body, empty_item(&user));

    // No size limits: a 40,000-byte safe senders hash (more than AD's schema takes) is kept.
    let big = base64_of(&vec![0x5a; 40_000]);
    let upper = user.to_uppercase();
    let set = patch_mailbox(info, &upper, json!({"cloudMSExchSafeSendersHash": big})).await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{:?}", set.body);
    let read = hook(info, Method::GET, &format!("mailboxes/{user}"), None).await;
    assert_eq!(read.body["cloudMSExchSafeSendersHash"], json!(big));
    assert_eq!(read.body["id"], json!(user));

    // A deleted user is no user.
    let deleted = graph(
        info,
        &token,
        Method::DELETE,
        &format!("/users/{user}"),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let refused = patch_mailbox(info, &user, json!({"cloudMSExchArchiveStatus": 1})).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    let read = hook(info, Method::GET, &format!("mailboxes/{user}"), None).await;
    assert_eq!(read.status, StatusCode::NOT_FOUND);
}

/// Standard base64 with padding, written out here so the test does not share the emulator's
/// encoder.
fn base64_of(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn the_test_encoder_is_standard_base64() {
    assert_eq!(base64_of(b""), "");
    assert_eq!(base64_of(b"f"), "Zg==");
    assert_eq!(base64_of(b"fo"), "Zm8=");
    assert_eq!(base64_of(b"foo"), "Zm9v");
    assert_eq!(base64_of(&[0xfb, 0xff]), "+/8=");
}

#[tokio::test]
async fn mailboxes_and_delta_links_survive_a_restart() {
    let directory = tempfile::tempdir().unwrap();
    let with_state = || EmulatorConfig {
        state_file: Some(directory.path().join("tenant.jsonl")),
        ..config()
    };
    let emulator = RunningEmulator::start(with_state()).unwrap();
    let info = emulator.info.clone();
    let token = app_token(&info).await;
    let user = id_of(&create_user(&info, &token, "kept", "a2VwdGtlcHRrZXB0a2VwdA==").await);
    let patch =
        json!({"cloudLegacyExchangeDN": LEGACY_DN, "cloudMSExchUCVoiceMailSettings": ["a", "b"]});
    emulator.set_mailbox(&user, patch).unwrap();
    let before = emulator.mailbox(&user).unwrap();
    let (_, delta_link, _) = round(&delta_url(&info, ""), &token).await;
    emulator.stop();

    let again = RunningEmulator::start(with_state()).unwrap();
    assert_eq!(again.mailbox(&user), Some(before.clone()));
    // The port differs; the token does not.
    let token = app_token(&again.info).await;
    let delta_token = delta_link.split("$deltatoken=").nth(1).unwrap();
    let moved = delta_url(&again.info, &format!("?$deltatoken={delta_token}"));
    let (items, delta_link, _) = round(&moved, &token).await;
    assert!(items.is_empty(), "{items:?}");
    let (items, _, _) = round(&delta_url(&again.info, ""), &token).await;
    assert_eq!(items, vec![before]);
    again
        .set_mailbox(&user, json!({"cloudMSExchArchiveStatus": 1}))
        .unwrap();
    let (items, _, _) = round(&delta_link, &token).await;
    assert_eq!(ids(&items), vec![user]);
}

#[tokio::test]
async fn the_in_process_api_follows_the_hooks_rules_and_graph_never_shows_mailboxes() {
    let emulator = start();
    let info = &emulator.info;
    let token = app_token(info).await;
    let user = id_of(&create_user(info, &token, "inproc", "aW5wcm9jaW5wcm9jaW5wcg==").await);
    assert_eq!(emulator.mailbox(&user), Some(empty_item(&user)));
    assert_eq!(
        emulator.mailbox("0badc0de-0000-4000-8000-000000000000"),
        None
    );

    emulator
        .set_mailbox(
            &user,
            json!({
                "cloudLegacyExchangeDN": LEGACY_DN,
                "cloudMSExchArchiveStatus": 1,
                "cloudMSExchBlockedSendersHash": "AAECAwQ=",
                "cloudMSExchUCVoiceMailSettings": ["CsHostedVoicemail=1"],
            }),
        )
        .unwrap();
    let item = emulator.mailbox(&user).unwrap();
    assert_eq!(item["cloudMSExchArchiveStatus"], 1);
    assert_eq!(item["cloudMSExchBlockedSendersHash"], "AAECAwQ=");
    assert_eq!(
        hook(info, Method::GET, &format!("mailboxes/{user}"), None)
            .await
            .body,
        item
    );

    let error = emulator
        .set_mailbox(&user, json!({"cloudMSExchArchiveStatus": true}))
        .unwrap_err();
    assert!(error.contains("'cloudMSExchArchiveStatus'"), "{error}");
    let error = emulator.set_mailbox(&user, json!({"nope": 1})).unwrap_err();
    assert!(error.contains("'nope'"), "{error}");
    let error = emulator
        .set_mailbox("0badc0de-0000-4000-8000-000000000000", json!({}))
        .unwrap_err();
    assert!(error.contains("0badc0de"), "{error}");
    assert_eq!(emulator.mailbox(&user), Some(item));

    // Not a Graph property anywhere.
    let read = graph(info, &token, Method::GET, &format!("/users/{user}"), None).await;
    let selected = graph(
        info,
        &token,
        Method::GET,
        &format!("/users/{user}?$select=id,cloudLegacyExchangeDN"),
        None,
    )
    .await;
    assert_eq!(
        selected.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        selected.body
    );
    let listed = graph(info, &token, Method::GET, "/users", None).await;
    let delta = graph(info, &token, Method::GET, "/users/delta", None).await;
    for text in [
        read.body.to_string(),
        listed.body.to_string(),
        delta.body.to_string(),
        json!(emulator.objects("users")).to_string(),
    ] {
        assert!(!text.contains("ExchangeLabs"), "{text}");
        assert!(!text.contains("AAECAwQ="), "{text}");
    }
}

#[test]
fn the_binary_flag_switches_the_endpoint_off() {
    let (_child, info) = spawn_binary(&["--no-mailbox-endpoint"]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (off, probe) = runtime.block_on(async {
        let token = app_token(&info).await;
        let off = get(&delta_url(&info, ""), Some(&token)).await;
        let probe = get(
            &format!("{}/dirsync/v1/passwordHashes", info.graph),
            Some(&token),
        )
        .await;
        (off, probe)
    });
    assert_eq!(off.status, StatusCode::NOT_FOUND, "{:?}", off.body);
    assert_eq!(off.body, unknown_path("/dirsync/v1/mailboxes/delta"));
    assert_eq!(probe.status, StatusCode::OK);
}
