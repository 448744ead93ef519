//! The mailbox side of a cloud user, for Exchange hybrid write-back: an emulator extension, not
//! Microsoft Graph. Exchange Online syncs some mailbox attributes into Entra ID, and Entra
//! Connect reads them (its AAD connector's `cloud…` attributes) through Entra's private sync
//! API to write them back to AD. Public Graph exposes none of them, so
//! `{base}/dirsync/v1/mailboxes/delta` (outside `/v1.0`) stands in for that API, and can be
//! switched off to look like public Graph. Tests set the values through `/_emulator/mailboxes`
//! or `RunningEmulator::set_mailbox`; only types are checked, never sizes, so that tests can
//! offer values AD's schema refuses.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::app::App;
use crate::graph::{GraphError, GraphRequest, GraphResponse, GraphResult, Perm};
use crate::identity::Caller;
use crate::model::{DirObject, GoneMailbox, Kind, Mailbox, State};
use crate::store::StoreError;
use crate::util::{self, b64url, b64url_decode, percent_encode};

/// Who may read mailboxes: an application that may read users, or an administrator who may
/// configure directory synchronization (dirsync's setup checks the endpoint as the admin).
const MAILBOX_READ: Perm = Perm {
    delegated: &[
        "OnPremDirectorySynchronization.Read.All",
        "OnPremDirectorySynchronization.ReadWrite.All",
    ],
    application: &[
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ],
};

const PATH: &str = "/dirsync/v1/mailboxes/delta";
const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 1000;

/// The JSON type each attribute takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Text,
    Integer,
    /// Bytes, as standard base64 with padding.
    Hash,
    Texts,
}

/// The attributes, in the order items list them.
const PROPERTIES: &[(&str, Ty)] = &[
    ("cloudLegacyExchangeDN", Ty::Text),
    ("cloudMSExchArchiveStatus", Ty::Integer),
    ("cloudMSExchSafeSendersHash", Ty::Hash),
    ("cloudMSExchBlockedSendersHash", Ty::Hash),
    ("cloudMSExchSafeRecipientsHash", Ty::Hash),
    ("cloudMSExchUCVoiceMailSettings", Ty::Texts),
];

/// A user's item: the id and every attribute (null, or an empty list, when unset).
fn item(id: &str, mailbox: Option<&Mailbox>) -> Value {
    let mut map = Map::new();
    map.insert("id".into(), json!(id));
    for (name, ty) in PROPERTIES {
        let unset = if *ty == Ty::Texts {
            json!([])
        } else {
            Value::Null
        };
        let value = mailbox
            .and_then(|m| m.values.get(*name))
            .cloned()
            .unwrap_or(unset);
        map.insert((*name).to_owned(), value);
    }
    Value::Object(map)
}

/// Checks one attribute's new value: `None` clears it. Hashes come back re-encoded, so what is
/// kept is canonical.
fn check(name: &str, ty: Ty, value: Value) -> Result<Option<Value>, String> {
    let wrong = |what: &str| format!("property '{name}' must be {what} or null");
    match (ty, value) {
        (_, Value::Null) => Ok(None),
        (Ty::Text, text @ Value::String(_)) => Ok(Some(text)),
        (Ty::Text, _) => Err(wrong("a string")),
        (Ty::Integer, number) => match number.as_i64() {
            Some(number) => Ok(Some(json!(number))),
            None => Err(wrong("an integer")),
        },
        (Ty::Hash, hash) => hash
            .as_str()
            .and_then(|text| STANDARD.decode(text).ok())
            .map(|bytes| Some(json!(STANDARD.encode(bytes))))
            .ok_or_else(|| wrong("a standard base64 string (with padding)")),
        (Ty::Texts, Value::Array(items)) if items.iter().all(Value::is_string) => {
            Ok((!items.is_empty()).then_some(Value::Array(items)))
        }
        (Ty::Texts, _) => Err(wrong("an array of strings")),
    }
}

/// The changes a patch asks for (`None` clears), or what is wrong with it.
fn parse_patch(patch: Value) -> Result<Vec<(&'static str, Option<Value>)>, String> {
    let Value::Object(fields) = patch else {
        return Err("the body must be a JSON object of cloud… properties".to_owned());
    };
    fields
        .into_iter()
        .map(|(name, value)| {
            let Some((known, ty)) = PROPERTIES.iter().find(|(known, _)| *known == name) else {
                let names: Vec<&str> = PROPERTIES.iter().map(|(known, _)| *known).collect();
                return Err(format!(
                    "unknown property '{name}' (known: {})",
                    names.join(", ")
                ));
            };
            Ok((*known, check(known, *ty, value)?))
        })
        .collect()
}

/// Why a mailbox could not be set.
#[derive(Debug)]
pub enum SetError {
    /// No live user has this ID.
    NotFound(String),
    /// The patch is not what the hook takes.
    Invalid(String),
    /// The state file could not be written.
    Store(StoreError),
}

impl std::fmt::Display for SetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetError::NotFound(id) => write!(f, "no user has the ID '{id}'"),
            SetError::Invalid(problem) => f.write_str(problem),
            SetError::Store(error) => error.fmt(f),
        }
    }
}

/// The key of the live user with this ID (accepted in any case: IDs are kept lowercase).
fn user_key(state: &State, id: &str) -> Option<String> {
    [id.to_owned(), id.to_ascii_lowercase()]
        .into_iter()
        .find(|key| state.live_of(Kind::User, key).is_some())
}

/// Applies a patch of `cloud…` properties to a live user's mailbox (all or nothing). A change
/// takes a new change sequence number, so the next delta round returns the user; a patch that
/// changes nothing does not.
pub fn set(app: &App, user_id: &str, patch: Value) -> Result<(), SetError> {
    let changes = parse_patch(patch).map_err(SetError::Invalid)?;
    let result = app.store.write(|inner| {
        let key = user_key(&inner.state, user_id)
            .ok_or_else(|| SetError::NotFound(user_id.to_owned()))?;
        let old = inner
            .state
            .objects
            .get(&key)
            .and_then(|user| user.internal.mailbox.as_ref())
            .map(|mailbox| mailbox.values.clone())
            .unwrap_or_default();
        let mut values = old.clone();
        for (name, value) in changes {
            match value {
                Some(value) => values.insert(name.to_owned(), value),
                None => values.remove(name),
            };
        }
        if values == old {
            return Ok(());
        }
        let seq = inner.next_seq();
        if let Some(user) = inner.state.objects.get_mut(&key) {
            // Kept even when every value is cleared: a later round must report the clearing.
            user.internal.mailbox = Some(Mailbox { values, seq });
        }
        inner.touch(&key);
        Ok(())
    });
    result.map_err(SetError::Store)?
}

/// A live user's item (unset attributes null or empty), or None for no such user.
pub fn get(app: &App, user_id: &str) -> Option<Value> {
    app.store.read(|state| {
        let key = user_key(state, user_id)?;
        let user = state.objects.get(&key)?;
        Some(item(user.id(), user.internal.mailbox.as_ref()))
    })
}

/// What a purged user's tombstone keeps of its mailbox (see [`removal_due`]).
pub fn gone(object: &DirObject, purged_seq: u64) -> Option<GoneMailbox> {
    let mailbox = object.internal.mailbox.as_ref()?;
    Some(GoneMailbox {
        left_seq: object.deleted.as_ref().map_or(purged_seq, |d| d.seq),
        changed_seq: mailbox.seq,
        had_values: !mailbox.values.is_empty(),
    })
}

/// Whether a round of changes after `since` reports a user who left the directory as removed:
/// it left after that point, and the client may hold values for it (it had values when it
/// left, or its mailbox changed after the client's point, perhaps from values to none). A first
/// round (`since` 0) lists live users only.
fn removal_due(gone: GoneMailbox, since: u64) -> bool {
    since > 0 && gone.left_seq > since && (gone.had_values || gone.changed_seq > since)
}

/// Where a delta round stands; carried, signed, by `$deltatoken` (`u` and `a` unset) and
/// `$skiptoken`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    /// Always [`CURSOR_KIND`]: a Graph delta token is not one of these.
    k: String,
    /// The round lists changes after this sequence number (0: a first round).
    s: u64,
    /// The round's fixed end point: the sequence number its first page found, where the next
    /// round starts (set in `$skiptoken`s only).
    #[serde(default)]
    u: Option<u64>,
    /// The last user ID served in this round.
    #[serde(default)]
    a: Option<String>,
    /// The page size (`$top` of the round's first request).
    n: usize,
}

const CURSOR_KIND: &str = "mailboxes";

fn encode(state: &State, cursor: &Cursor) -> String {
    let body = b64url(serde_json::to_string(cursor).unwrap_or_default().as_bytes());
    // Signed apart from Graph's delta tokens (another first part), though with the same key.
    let signature = &util::digest(&state.signing_key, &[CURSOR_KIND, &body])[..16];
    format!("{body}.{signature}")
}

/// A token this tenant issued and can still serve, else None.
fn decode(state: &State, token: &str) -> Option<Cursor> {
    let (body, signature) = token.rsplit_once('.')?;
    if util::digest(&state.signing_key, &[CURSOR_KIND, body])[..16] != *signature {
        return None;
    }
    let cursor: Cursor = serde_json::from_slice(&b64url_decode(body)?).ok()?;
    let sane = cursor.k == CURSOR_KIND
        && cursor.s <= state.seq
        && cursor.u.is_none_or(|u| cursor.s <= u && u <= state.seq)
        && (1..=MAX_PAGE_SIZE).contains(&cursor.n);
    sane.then_some(cursor)
}

/// `$top`: 1 to 1000 (None when absent).
fn page_size(req: &GraphRequest) -> Result<Option<usize>, GraphError> {
    let Some(raw) = req.param("$top") else {
        return Ok(None);
    };
    match raw.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(Some(n)),
        _ => Err(GraphError::bad_request(
            "Request_BadRequest",
            &format!(
                "Invalid value '{raw}' for query parameter '$top': it must be an integer from 1 to {MAX_PAGE_SIZE}."
            ),
        )),
    }
}

/// 410 `syncStateNotFound`: the client starts again without a token.
fn sync_state_not_found(app: &App) -> GraphError {
    let mut error = GraphError::new(
        410,
        "syncStateNotFound",
        "The sync state is not found: the token is malformed, unknown or from another tenant. Synchronize again without a token.",
    );
    error
        .extra
        .headers
        .push(("Location".into(), format!("{}{PATH}", app.base)));
    error
}

/// The entries of a round, as (user ID, item), in no particular order: a first round (`since`
/// 0) lists every live user with values, a later one every user whose mailbox changed, who left
/// or who came back after `since`. Each shows the user as it is now: a change made while a round
/// is paged is shown if its page is still ahead, and again in the next round.
fn changes(state: &State, since: u64) -> Vec<(String, Value)> {
    let removed = |id: &str| json!({"id": id, "@removed": {"reason": "deleted"}});
    let mut out = Vec::new();
    for user in state.objects.values().filter(|o| o.kind == Kind::User) {
        let Some(mailbox) = &user.internal.mailbox else {
            continue;
        };
        let has_values = !mailbox.values.is_empty();
        if let Some(deleted) = &user.deleted {
            let left = GoneMailbox {
                left_seq: deleted.seq,
                changed_seq: mailbox.seq,
                had_values: has_values,
            };
            if removal_due(left, since) {
                out.push((user.id().to_owned(), removed(user.id())));
            }
            continue;
        }
        // Restoring a user from deleted items sets its deletedDateTime (back to null): a client
        // told of its removal must get its values again.
        let restored = since > 0
            && user
                .prop_seq
                .get("deletedDateTime")
                .is_some_and(|seq| *seq > since);
        let changed = if since == 0 {
            has_values
        } else {
            mailbox.seq > since
        };
        if changed || (restored && has_values) {
            out.push((user.id().to_owned(), item(user.id(), Some(mailbox))));
        }
    }
    for tombstone in state.tombstones.values() {
        if let Some(gone) = tombstone.mailbox
            && removal_due(gone, since)
        {
            out.push((tombstone.id.clone(), removed(&tombstone.id)));
        }
    }
    out
}

/// `GET {base}/dirsync/v1/mailboxes/delta`, once the bearer token is valid.
pub fn handle(app: &App, caller: &Caller, req: &GraphRequest) -> GraphResponse {
    let result = match req.method.as_str() {
        "GET" => delta(app, caller, req),
        _ => Err(GraphError::new(
            405,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        )),
    };
    result.unwrap_or_else(|error| error.into_response(req))
}

/// One page of a round: the first (no token: every live user with values; `$deltatoken`: what
/// changed since it was issued) or a later one (`$skiptoken`). A read: no write limit.
fn delta(app: &App, caller: &Caller, req: &GraphRequest) -> GraphResult {
    MAILBOX_READ.check(caller)?;
    let top = page_size(req)?;
    let token = req.param("$skiptoken").or_else(|| req.param("$deltatoken"));
    app.store.read(|state| {
        let cursor = match token {
            Some(token) => decode(state, token).ok_or_else(|| sync_state_not_found(app))?,
            None => Cursor {
                k: CURSOR_KIND.to_owned(),
                s: 0,
                u: None,
                a: None,
                n: DEFAULT_PAGE_SIZE,
            },
        };
        let n = top.unwrap_or(cursor.n);
        // The round ends where its first page found the tenant: the next round starts there, so
        // a change to a user on a page already served is not lost.
        let upto = cursor.u.unwrap_or(state.seq);
        let mut entries = changes(state, cursor.s);
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(after) = &cursor.a {
            entries.retain(|(id, _)| id > after);
        }
        let more = entries.len() > n;
        entries.truncate(n);
        let (link, next) = if more {
            let next = Cursor {
                u: Some(upto),
                a: entries.last().map(|(id, _)| id.clone()),
                n,
                ..cursor
            };
            (
                "@odata.nextLink",
                format!("$skiptoken={}", percent_encode(&encode(state, &next))),
            )
        } else {
            let next = Cursor {
                s: upto,
                u: None,
                a: None,
                n,
                ..cursor
            };
            (
                "@odata.deltaLink",
                format!("$deltatoken={}", percent_encode(&encode(state, &next))),
            )
        };
        let mut body = Map::new();
        body.insert(link.into(), json!(format!("{}{PATH}?{next}", app.base)));
        let value = entries.into_iter().map(|(_, item)| item).collect();
        body.insert("value".into(), Value::Array(value));
        Ok(GraphResponse::ok(Value::Object(body)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_list_every_attribute_unset_ones_null_or_empty() {
        let empty = item("u1", None);
        assert_eq!(
            empty,
            json!({
                "id": "u1",
                "cloudLegacyExchangeDN": null,
                "cloudMSExchArchiveStatus": null,
                "cloudMSExchSafeSendersHash": null,
                "cloudMSExchBlockedSendersHash": null,
                "cloudMSExchSafeRecipientsHash": null,
                "cloudMSExchUCVoiceMailSettings": [],
            })
        );
    }

    #[test]
    fn patches_are_checked_by_type_only() {
        let big = STANDARD.encode(vec![7u8; 40_000]);
        let changes = parse_patch(json!({
            "cloudLegacyExchangeDN": "/o=ExchangeLabs/ou=Exchange Administrative Group/cn=Recipients/cn=alice",
            "cloudMSExchArchiveStatus": 1,
            "cloudMSExchSafeSendersHash": big,
            "cloudMSExchBlockedSendersHash": null,
            "cloudMSExchUCVoiceMailSettings": ["CsHostedVoicemail=1"],
        }))
        .expect("accepted");
        assert_eq!(changes.len(), 5);
        assert!(changes.contains(&("cloudMSExchBlockedSendersHash", None)));
        assert!(changes.contains(&("cloudMSExchSafeSendersHash", Some(json!(big)))));
        // An empty list is no value.
        let cleared = parse_patch(json!({"cloudMSExchUCVoiceMailSettings": []})).expect("ok");
        assert_eq!(cleared, vec![("cloudMSExchUCVoiceMailSettings", None)]);

        for (patch, named) in [
            (
                json!({"cloudMSExchArchiveStatus": "1"}),
                "cloudMSExchArchiveStatus",
            ),
            (
                json!({"cloudMSExchArchiveStatus": 1.5}),
                "cloudMSExchArchiveStatus",
            ),
            (
                json!({"cloudMSExchSafeSendersHash": "not base64!"}),
                "cloudMSExchSafeSendersHash",
            ),
            // Unpadded, and URL-safe, are not standard base64 with padding.
            (
                json!({"cloudMSExchSafeRecipientsHash": "AAE"}),
                "cloudMSExchSafeRecipientsHash",
            ),
            (
                json!({"cloudMSExchBlockedSendersHash": "-_8="}),
                "cloudMSExchBlockedSendersHash",
            ),
            (
                json!({"cloudMSExchBlockedSendersHash": [1]}),
                "cloudMSExchBlockedSendersHash",
            ),
            (json!({"cloudLegacyExchangeDN": 5}), "cloudLegacyExchangeDN"),
            (
                json!({"cloudMSExchUCVoiceMailSettings": "x"}),
                "cloudMSExchUCVoiceMailSettings",
            ),
            (
                json!({"cloudMSExchUCVoiceMailSettings": ["x", 1]}),
                "cloudMSExchUCVoiceMailSettings",
            ),
            (json!({"legacyExchangeDN": "x"}), "legacyExchangeDN"),
        ] {
            let problem = parse_patch(patch).expect_err("refused");
            assert!(problem.contains(&format!("'{named}'")), "{problem}");
        }
        assert!(parse_patch(json!([])).is_err());
        assert!(parse_patch(json!({})).expect("empty").is_empty());
    }

    #[test]
    fn removals_are_reported_to_clients_that_may_hold_values() {
        let gone = |left_seq, changed_seq, had_values| GoneMailbox {
            left_seq,
            changed_seq,
            had_values,
        };
        // Left after the client's point with values.
        assert!(removal_due(gone(15, 3, true), 10));
        // Cleared and left after it: the client saw values at 10.
        assert!(removal_due(gone(15, 12, false), 10));
        // Cleared before the client's point and left later: nothing to remove.
        assert!(!removal_due(gone(15, 5, false), 10));
        // Left before the client's point, or a first round.
        assert!(!removal_due(gone(9, 3, true), 10));
        assert!(!removal_due(gone(15, 3, true), 0));
    }
}
