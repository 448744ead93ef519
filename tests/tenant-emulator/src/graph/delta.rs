//! `GET /users/delta` and `GET /groups/delta`: a first round that pages through every object
//! (`@odata.nextLink` with `$skiptoken`) and ends with `@odata.deltaLink` (`$deltatoken`), then
//! rounds that return only what changed, removed objects as `{"id", "@removed": {"reason"}}`.
//! https://learn.microsoft.com/en-us/graph/delta-query-overview

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::objects::read_perm;
use super::query::{self, Expr, Literal, Op};
use super::{Ctx, GraphError, GraphResponse, GraphResult};
use crate::model::{Kind, State, is_extension_name};
use crate::util::{self, b64url, b64url_decode, percent_encode, unix_now};

const PAGE_SIZE: usize = 100;
/// Delta tokens of directory objects are valid for seven days.
const TOKEN_LIFETIME_SECS: i64 = 7 * 86_400;

/// The state a delta token carries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Round {
    /// `user` or `group`.
    k: String,
    /// Changes after this sequence number…
    s: u64,
    /// …up to this one (set once the round's first page is served).
    #[serde(default)]
    u: Option<u64>,
    /// Selected properties (None: the default set).
    #[serde(default)]
    sel: Option<Vec<String>>,
    /// Object IDs the round is scoped to (`$filter=id eq …`).
    #[serde(default)]
    ids: Option<Vec<String>>,
    /// The last ID served in this round.
    #[serde(default)]
    a: Option<String>,
    /// When the token was issued.
    t: i64,
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::User => "user",
        _ => "group",
    }
}

fn encode(state: &State, round: &Round) -> String {
    let body = b64url(serde_json::to_string(round).unwrap_or_default().as_bytes());
    let signature = &util::digest(&state.signing_key, &[&body])[..16];
    format!("{body}.{signature}")
}

fn decode(state: &State, token: &str) -> Option<Round> {
    let (body, signature) = token.rsplit_once('.')?;
    if util::digest(&state.signing_key, &[body])[..16] != *signature {
        return None;
    }
    serde_json::from_slice(&b64url_decode(body)?).ok()
}

fn resync(ctx: &Ctx<'_>, kind: Kind, code: &str, message: &str) -> GraphError {
    let mut error = GraphError::new(410, code, message);
    error.extra.headers.push((
        "Location".into(),
        format!("{}/{}/delta", ctx.root(), kind.collection()),
    ));
    error
}

/// The properties a round tracks.
fn tracked(kind: Kind, select: Option<&[String]>) -> Vec<String> {
    match select {
        Some(names) => names.to_vec(),
        None => {
            let mut names = query::default_names(kind);
            if kind == Kind::Group {
                names.push("members".into());
            }
            names
        }
    }
}

/// `$filter=id eq '…' or id eq '…'`: the only filter delta supports.
fn scoped_ids(expr: &Expr, out: &mut Vec<String>) -> bool {
    match expr {
        Expr::Or(terms) => terms.iter().all(|term| scoped_ids(term, out)),
        Expr::Compare {
            path,
            op: Op::Eq,
            value: Literal::Str(id),
        } if path.eq_ignore_ascii_case("id") => {
            out.push(id.to_ascii_lowercase());
            true
        }
        _ => false,
    }
}

// https://learn.microsoft.com/en-us/graph/api/user-delta?view=graph-rest-1.0
// https://learn.microsoft.com/en-us/graph/api/group-delta?view=graph-rest-1.0
/// `GET /users/delta`, `GET /groups/delta`
pub fn delta(ctx: &Ctx<'_>, kind: Kind) -> GraphResult {
    read_perm(kind).check(ctx.caller)?;
    for unsupported in ["$orderby", "$expand", "$top", "$search"] {
        if ctx.req.param(unsupported).is_some() {
            return Err(GraphError::unsupported_query(&format!(
                "The query parameter '{unsupported}' is not supported with delta queries."
            )));
        }
    }
    let minimal = ctx.req.prefer_minimal;
    ctx.app.store.read(|state| {
        // Directory extensions may be tracked too, resolved against the tenant.
        let request_select = query::select_in(kind, ctx.req, true, Some(state))?;
        let now = unix_now();
        let current = state.seq;
        let latest = ctx.req.param("$deltatoken").is_some_and(|t| t.eq_ignore_ascii_case("latest"));
        let token = ctx.req.param("$skiptoken").or_else(|| ctx.req.param("$deltatoken").filter(|_| !latest));
        let mut round = match token {
            Some(token) => {
                let round = decode(state, token).filter(|r| r.k == kind_name(kind)).ok_or_else(|| {
                    resync(ctx, kind, "resyncRequired", "The delta token is no longer valid, and the app must reset the sync state.")
                })?;
                if now - round.t > TOKEN_LIFETIME_SECS || round.s > current {
                    return Err(resync(
                        ctx,
                        kind,
                        "syncStateNotFound",
                        "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
                    ));
                }
                round
            }
            None => {
                let mut ids = Vec::new();
                let scoped = match ctx.req.param("$filter") {
                    Some(text) => {
                        let expr = query::parse_filter(text)?;
                        if !scoped_ids(&expr, &mut ids) {
                            return Err(GraphError::unsupported_query(
                                "The only $filter delta supports is 'id eq' (combined with 'or').",
                            ));
                        }
                        if ids.len() > 50 {
                            return Err(GraphError::unsupported_query("A delta query can track at most 50 objects by ID."));
                        }
                        Some(ids)
                    }
                    None => None,
                };
                Round {
                    k: kind_name(kind).to_owned(),
                    s: if latest { current } else { 0 },
                    u: None,
                    sel: request_select.clone(),
                    ids: scoped,
                    a: None,
                    t: now,
                }
            }
        };
        // $select may change the tracked properties of an existing delta link.
        if ctx.req.param("$deltatoken").is_some() && request_select.is_some() {
            round.sel = request_select;
        }
        let upto = *round.u.get_or_insert(current);
        let select = round.sel.clone();
        let mut names = tracked(kind, select.as_deref());
        // An extension whose definition went away since the round began is no longer seen.
        names.retain(|name| !is_extension_name(name) || super::extensions::available(state, kind, name).is_some());
        // The first round's pages name the selected properties; later rounds do not.
        let fragment = if round.s == 0 {
            query::context_fragment(kind.collection(), select.as_deref())
        } else {
            kind.collection().to_owned()
        };
        if latest {
            let next = Round { u: None, a: None, t: now, ..round };
            return Ok(GraphResponse::ok(json!({
                "@odata.context": ctx.context(&fragment),
                "@odata.deltaLink": format!("{}/{}/delta?$deltatoken={}", ctx.root(), kind.collection(), percent_encode(&encode(state, &next))),
                "value": [],
            })));
        }
        let mut entries = changes(state, kind, &round, upto, &names, minimal);
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(after) = &round.a {
            entries.retain(|(id, _)| id > after);
        }
        let more = entries.len() > PAGE_SIZE;
        entries.truncate(PAGE_SIZE);
        let mut body = Map::new();
        body.insert("@odata.context".into(), json!(ctx.context(&fragment)));
        if more {
            let next = Round {
                a: entries.last().map(|(id, _)| id.clone()),
                ..round.clone()
            };
            body.insert(
                "@odata.nextLink".into(),
                json!(format!("{}/{}/delta?$skiptoken={}", ctx.root(), kind.collection(), percent_encode(&encode(state, &next)))),
            );
        } else {
            let next = Round {
                s: upto,
                u: None,
                a: None,
                t: now,
                ..round.clone()
            };
            body.insert(
                "@odata.deltaLink".into(),
                json!(format!("{}/{}/delta?$deltatoken={}", ctx.root(), kind.collection(), percent_encode(&encode(state, &next)))),
            );
        }
        body.insert("value".into(), Value::Array(entries.into_iter().map(|(_, v)| v).collect()));
        Ok(GraphResponse::ok(Value::Object(body)))
    })
}

fn removed(id: &str, reason: &str) -> Value {
    json!({"id": id, "@removed": {"reason": reason}})
}

/// The entries of a round: (id, representation).
fn changes(
    state: &State,
    kind: Kind,
    round: &Round,
    upto: u64,
    names: &[String],
    minimal: bool,
) -> Vec<(String, Value)> {
    let since = round.s;
    let in_round = |seq: u64| seq > since && seq <= upto;
    let in_scope = |id: &str| {
        round
            .ids
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|i| i == id))
    };
    let track_members = kind == Kind::Group && names.iter().any(|n| n == "members");
    let track_manager = kind == Kind::User && names.iter().any(|n| n == "manager");
    let mut out = Vec::new();
    for object in state
        .objects
        .values()
        .filter(|o| o.kind == kind && in_scope(o.id()))
    {
        let id = object.id().to_owned();
        if let Some(deleted) = &object.deleted {
            if since > 0 && in_round(deleted.seq) && object.created_seq <= since {
                out.push((id, removed(object.id(), "changed")));
            }
            continue;
        }
        if object.created_seq > upto {
            continue;
        }
        let fresh = since == 0 || in_round(object.created_seq);
        let changed: Vec<&String> = names
            .iter()
            .filter(|n| {
                object
                    .prop_seq
                    .get(n.as_str())
                    .is_some_and(|seq| in_round(*seq))
            })
            .collect();
        let member_events: Vec<_> = if track_members {
            state
                .member_events
                .iter()
                .filter(|e| e.group == id && in_round(e.seq))
                .collect()
        } else {
            Vec::new()
        };
        if !fresh && changed.is_empty() && member_events.is_empty() {
            continue;
        }
        let mut map = Map::new();
        map.insert("id".into(), json!(id));
        for name in names {
            if name == "members" || name == "manager" || name == "id" {
                continue;
            }
            let value = if name == "onPremisesExtensionAttributes" {
                query::full_extension_attributes(object.props.get(name.as_str()))
            } else {
                object
                    .props
                    .get(name.as_str())
                    .cloned()
                    .unwrap_or(Value::Null)
            };
            let was_changed = changed.contains(&name);
            let include = if fresh {
                !value.is_null()
            } else if minimal {
                was_changed
            } else {
                !value.is_null() || was_changed
            };
            if include
                && (is_extension_name(name)
                    || object
                        .kind
                        .property(name)
                        .is_some_and(|d| d.access != crate::model::Access::WriteOnly))
            {
                map.insert(name.clone(), value);
            }
        }
        if track_manager
            && (fresh || changed.iter().any(|c| *c == "manager"))
            && let Some(manager) = &object.internal.manager
            && state.live(manager).is_some()
        {
            map.insert(
                "manager@delta".into(),
                json!([{"@odata.type": "#microsoft.graph.user", "id": manager}]),
            );
        }
        if track_members {
            let mut members = Vec::new();
            if fresh {
                for member in &object.internal.members {
                    if let Some(m) = state.live(member) {
                        members.push(json!({"@odata.type": m.kind.odata_type(), "id": member}));
                    }
                }
            } else {
                // The latest event per member decides.
                let mut last: Vec<(&String, bool, Kind)> = Vec::new();
                for event in &member_events {
                    last.retain(|(m, _, _)| *m != &event.member);
                    last.push((&event.member, event.added, event.member_kind));
                }
                for (member, added, member_kind) in last {
                    let mut entry = json!({"@odata.type": member_kind.odata_type(), "id": member});
                    if !added {
                        entry["@removed"] = json!({"reason": "deleted"});
                    }
                    members.push(entry);
                }
            }
            if fresh || !members.is_empty() {
                map.insert("members@delta".into(), Value::Array(members));
            }
        }
        out.push((id, Value::Object(map)));
    }
    if since > 0 {
        for tombstone in state.tombstones.values() {
            if tombstone.kind == kind && in_round(tombstone.seq) && in_scope(&tombstone.id) {
                out.push((tombstone.id.clone(), removed(&tombstone.id, "deleted")));
            }
        }
    }
    out
}
