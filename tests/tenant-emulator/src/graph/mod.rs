//! Microsoft Graph v1.0: one dispatcher for plain requests and `$batch` inner requests alike,
//! so that each inner request is authorized, throttled and faulted on its own.

mod apps;
mod batch;
mod delta;
mod directory;
mod error;
mod extensions;
mod objects;
pub mod query;
pub mod roles;

use std::time::Instant;

use serde_json::{Map, Value, json};

pub use self::apps::expire_secrets;
pub use self::batch::batch;
pub use self::error::GraphError;
use crate::app::{App, Stats, lock};
use crate::identity::Caller;
use crate::model::Kind;
use crate::store::{Inner, StoreError};
use crate::util::{self, percent_decode};

/// One Graph request (an HTTP request to `/v1.0/...` or `/beta/...`, or one request of a
/// batch).
#[derive(Debug, Clone)]
pub struct GraphRequest {
    pub method: String,
    /// Sent to `/beta` rather than `/v1.0` (only the organization is served there).
    pub beta: bool,
    /// The path after `/v1.0` (or `/beta`), as received (still percent-encoded).
    pub path: String,
    /// Decoded path segments after `/v1.0` (or `/beta`), with `name(key)` split into `name`, `key`.
    pub segments: Vec<String>,
    /// Decoded query parameters in order.
    pub query: Vec<(String, String)>,
    pub eventual: bool,
    pub prefer_minimal: bool,
    pub content_type: Option<String>,
    pub client_request_id: Option<String>,
    pub request_id: String,
    pub body: Option<Vec<u8>>,
}

impl GraphRequest {
    /// Builds a request from a path after `/v1.0`, a raw query string and headers.
    pub fn new(
        method: &str,
        path: &str,
        raw_query: &str,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
    ) -> Self {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.clone())
        };
        GraphRequest {
            method: method.to_ascii_uppercase(),
            beta: false,
            path: path.to_owned(),
            segments: split_path(path),
            query: parse_query(raw_query),
            eventual: header("ConsistencyLevel")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("eventual")),
            prefer_minimal: header("Prefer")
                .is_some_and(|v| v.to_ascii_lowercase().contains("return=minimal")),
            content_type: header("Content-Type"),
            client_request_id: header("client-request-id"),
            request_id: util::new_guid(),
            body: body.filter(|b| !b.is_empty()),
        }
    }

    /// The version segment the request was sent to: `v1.0` or `beta`.
    pub fn version(&self) -> &'static str {
        if self.beta { "beta" } else { "v1.0" }
    }

    /// A query option by name, with or without its `$`, case-insensitively.
    pub fn param(&self, name: &str) -> Option<&str> {
        let bare = name.trim_start_matches('$');
        self.query
            .iter()
            .find(|(key, _)| key.trim_start_matches('$').eq_ignore_ascii_case(bare))
            .map(|(_, value)| value.as_str())
    }

    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PATCH" | "PUT" | "DELETE")
    }

    /// `$count=true` together with `ConsistencyLevel: eventual`.
    pub fn advanced(&self) -> bool {
        self.eventual
            && self
                .param("$count")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// The JSON body of a write, as Graph checks it.
    pub fn json_body(&self) -> Result<Map<String, Value>, GraphError> {
        let Some(body) = &self.body else {
            return Err(GraphError::bad_request(
                "BadRequest",
                "Empty Payload. JSON content expected.",
            ));
        };
        if !self
            .content_type
            .as_deref()
            .is_some_and(|t| t.to_ascii_lowercase().contains("json"))
        {
            return Err(GraphError::bad_request(
                "BadRequest",
                "Write requests (excluding DELETE) must contain the Content-Type header declaration.",
            ));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(GraphError::bad_request(
                "BadRequest",
                "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
            )),
        }
    }
}

/// A Graph response before it becomes HTTP (or a batch inner response).
#[derive(Debug, Clone)]
pub struct GraphResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl GraphResponse {
    pub fn ok(body: Value) -> Self {
        GraphResponse {
            status: 200,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    pub fn created(body: Value) -> Self {
        GraphResponse {
            status: 201,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    pub fn no_content() -> Self {
        GraphResponse {
            status: 204,
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub type GraphResult = Result<GraphResponse, GraphError>;

/// What every handler gets.
pub struct Ctx<'a> {
    pub app: &'a App,
    pub caller: &'a Caller,
    pub req: &'a GraphRequest,
}

impl Ctx<'_> {
    /// `http://127.0.0.1:PORT/v1.0` (or `/beta`)
    pub fn root(&self) -> String {
        format!("{}/{}", self.app.base, self.req.version())
    }

    pub fn context(&self, fragment: &str) -> String {
        format!("{}/$metadata#{fragment}", self.root())
    }

    /// Whether an object is in the index advanced queries read (`ConsistencyLevel: eventual`,
    /// `$count`, `$search`): with the `index_lag_ms` fault, only once it is that old.
    pub fn indexed(&self) -> impl Fn(&crate::model::DirObject) -> bool + '_ {
        let advanced = self.req.eventual
            || self.req.param("$count").is_some()
            || self.req.param("$search").is_some();
        let lag = if advanced {
            self.app.index_lag()
        } else {
            std::time::Duration::ZERO
        };
        move |object| !self.app.younger_than(object.id(), lag)
    }

    /// Runs a change on the tenant and answers what it returns, once the change is in the
    /// state file. A file that cannot be written answers 500 for the change that failed (it is
    /// not acknowledged), then 503 until the file can be rewritten whole.
    pub fn write(&self, change: impl FnOnce(&mut Inner) -> GraphResult) -> GraphResult {
        match self.app.store.write(change) {
            Ok(result) => result,
            Err(StoreError::Write(error)) => Err(GraphError::new(
                500,
                "generalException",
                &format!("The state file could not be written: {error}"),
            )),
            Err(StoreError::Unavailable(why)) => {
                eprintln!("tenant-emulator: refusing a write: {why}");
                Err(GraphError::unavailable())
            }
        }
    }
}

/// A permission requirement: any one of the delegated scopes (delegated tokens) or of the
/// application roles (app tokens), as listed on the API's documentation page.
pub struct Perm {
    pub delegated: &'static [&'static str],
    pub application: &'static [&'static str],
}

impl Perm {
    pub fn check(&self, caller: &Caller) -> Result<(), GraphError> {
        let allowed = if caller.delegated {
            self.delegated
        } else {
            self.application
        };
        if allowed.iter().any(|p| caller.has(p)) {
            Ok(())
        } else {
            Err(GraphError::forbidden())
        }
    }
}

/// Writes by a signed-in user also need a directory role: only the Global Administrator has one.
pub fn require_admin(ctx: &Ctx<'_>) -> Result<(), GraphError> {
    if !ctx.caller.delegated {
        return Ok(());
    }
    let is_admin = ctx.app.store.read(|state| {
        state
            .live(&ctx.caller.object_id)
            .is_some_and(|user| user.internal.global_admin)
    });
    if is_admin {
        Ok(())
    } else {
        Err(GraphError::forbidden())
    }
}

fn split_path(path: &str) -> Vec<String> {
    let mut segments = Vec::new();
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        let decoded = percent_decode(raw, false);
        // `users('alice@contoso.com')`, `applications(appId='…')`
        if let Some((name, key)) = decoded
            .strip_suffix(')')
            .and_then(|inner| inner.split_once('('))
            && !name.is_empty()
            && !key.is_empty()
            && !decoded.starts_with("microsoft.graph.")
        {
            segments.push(name.to_owned());
            segments.push(key.trim_matches('\'').to_owned());
            if let Some((name, value)) = key.split_once('=') {
                segments.pop();
                segments.push(format!(
                    "{}={}",
                    name.trim(),
                    value.trim().trim_matches('\'')
                ));
            }
            continue;
        }
        segments.push(decoded);
    }
    segments
}

pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key, true), percent_decode(value, true))
        })
        .collect()
}

/// Graph's resource-unit cost of a read (identity and access service limits), for the
/// `x-ms-resource-unit` header.
fn resource_units(req: &GraphRequest) -> u32 {
    let segments: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let base: i64 = match (req.method.as_str(), segments.as_slice()) {
        ("GET", ["users"] | ["applications"]) => 2,
        ("GET", ["groups", _, "members"]) => 3,
        ("GET", ["servicePrincipals", _, "appRoleAssignments"]) => 2,
        _ => 1,
    };
    let mut cost = base;
    if req.param("$select").is_some() {
        cost -= 1;
    }
    if req.param("$expand").is_some() {
        cost += 1;
    }
    if req
        .param("$top")
        .and_then(|t| t.parse::<u32>().ok())
        .is_some_and(|t| t < 20)
    {
        cost -= 1;
    }
    u32::try_from(cost.max(1)).unwrap_or(1)
}

/// Runs one Graph request: injected faults, the write limit, routing, then the handler.
pub fn execute(app: &App, caller: &Caller, req: &GraphRequest) -> GraphResponse {
    Stats::bump(&app.stats.requests);
    let now = Instant::now();
    {
        let mut faults = lock(&app.faults);
        faults.operations += 1;
        if let Some(until) = faults.throttle_until
            && until > now
        {
            drop(faults);
            Stats::bump(&app.stats.throttled);
            return GraphError::throttled(
                until - now,
                "Tenant_Application/ReadWrite",
                &caller.client_id,
                "ResourceUnitLimitExceeded",
            )
            .into_response(req);
        }
        if faults.fail_every > 0 && faults.operations.is_multiple_of(faults.fail_every) {
            drop(faults);
            Stats::bump(&app.stats.failed_5xx);
            return GraphError::unavailable().into_response(req);
        }
    }
    let mut used = 0.0;
    let quota = crate::app::unit_quota(app.store.read(|state| {
        state
            .objects
            .values()
            .filter(|o| o.is_live() && o.kind == Kind::User)
            .count()
    }));
    let refused = {
        let mut limiter = lock(&app.limiter);
        limiter
            .try_units(&caller.client_id, resource_units(req), quota, now)
            .and_then(|()| {
                if req.is_write() {
                    limiter
                        .try_write_in_tenant(&caller.client_id, now)
                        .map(|share| used = share)
                } else {
                    Ok(())
                }
            })
            .err()
    };
    if let Some(refused) = refused {
        Stats::bump(&app.stats.throttled);
        return GraphError::throttled(
            refused.wait,
            refused.scope,
            &caller.client_id,
            refused.information,
        )
        .into_response(req);
    }
    if req.is_write() {
        Stats::bump(&app.stats.writes);
    }
    let ctx = Ctx { app, caller, req };
    let mut response = match route(&ctx) {
        Ok(response) => response,
        Err(error) => error.into_response(req),
    };
    // The harder fault: the write happened, and its answer says it did not.
    if req.is_write() && response.status < 300 {
        let mut faults = lock(&app.faults);
        faults.writes += 1;
        if faults.fail_after_write_every > 0
            && faults.writes.is_multiple_of(faults.fail_after_write_every)
        {
            drop(faults);
            response = GraphError::unavailable().into_response(req);
        }
    }
    if response.status >= 500 {
        Stats::bump(&app.stats.failed_5xx);
    }
    if response.body.is_some() && response.header("Content-Type").is_none() {
        response.headers.push((
            "Content-Type".into(),
            "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8".into(),
        ));
    }
    response
        .headers
        .push(("x-ms-resource-unit".into(), resource_units(req).to_string()));
    // Returned only when the application used more than 0.8 of its limit.
    if used >= 0.8 {
        let share = (used * 10.0).floor() / 10.0;
        response.headers.push((
            "x-ms-throttle-limit-percentage".into(),
            format!("{share:.1}"),
        ));
    }
    response
}

/// What the emulator serves under `/beta`: reading the organization, which there carries the
/// beta-only `directorySizeQuota`
/// (https://learn.microsoft.com/en-us/graph/api/resources/directorysizequota?view=graph-rest-beta).
fn beta_serves(segments: &[&str], method: &str) -> bool {
    matches!(segments, [] | ["organization"] | ["organization", _]) && method == "GET"
}

/// Graph's answer to a path it has no resource for.
fn unknown_segment(segments: &[&str]) -> GraphError {
    let unknown = segments
        .iter()
        .rev()
        .find(|s| !s.is_empty())
        .copied()
        .unwrap_or_default();
    GraphError::bad_request(
        "BadRequest",
        &format!("Resource not found for the segment '{unknown}'."),
    )
}

fn route(ctx: &Ctx<'_>) -> GraphResult {
    let segments: Vec<&str> = ctx.req.segments.iter().map(String::as_str).collect();
    let method = ctx.req.method.as_str();
    if ctx.req.beta && !beta_serves(&segments, method) {
        return Err(unknown_segment(&segments));
    }
    let not_allowed = || {
        Err(GraphError::new(
            405,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        ))
    };
    match segments.as_slice() {
        [] => Err(GraphError::bad_request("BadRequest", "Invalid request.")),
        ["organization"] => match method {
            "GET" => directory::organization_list(ctx),
            _ => not_allowed(),
        },
        ["organization", id] => match method {
            "GET" => directory::organization_get(ctx, id),
            "PATCH" => directory::organization_update(ctx, id),
            _ => not_allowed(),
        },
        ["domains"] => match method {
            "GET" => directory::domains_list(ctx),
            _ => not_allowed(),
        },
        ["domains", name] => match method {
            "GET" => directory::domain_get(ctx, name),
            _ => not_allowed(),
        },
        ["me"] => match method {
            "GET" => objects::me(ctx),
            _ => not_allowed(),
        },
        ["users" | "groups", delta] if is_delta(delta) => match method {
            "GET" => delta::delta(ctx, kind_of(segments[0])),
            _ => not_allowed(),
        },
        ["users" | "groups", count] if *count == "$count" => match method {
            "GET" => objects::count(ctx, kind_of(segments[0])),
            _ => not_allowed(),
        },
        ["users" | "groups"] => match method {
            "GET" => objects::list(ctx, kind_of(segments[0])),
            "POST" => objects::create(ctx, kind_of(segments[0])),
            _ => not_allowed(),
        },
        ["users" | "groups", id] => match method {
            "GET" => objects::get(ctx, kind_of(segments[0]), id),
            "PATCH" => objects::update(ctx, kind_of(segments[0]), id),
            "DELETE" => objects::delete(ctx, kind_of(segments[0]), id),
            _ => not_allowed(),
        },
        ["users", id, action]
            if action.eq_ignore_ascii_case("revokeSignInSessions")
                || action.eq_ignore_ascii_case("microsoft.graph.revokeSignInSessions") =>
        {
            match method {
                "POST" => objects::revoke_sign_in_sessions(ctx, id),
                _ => not_allowed(),
            }
        }
        ["users", id, "manager"] => match method {
            "GET" => objects::manager_get(ctx, id),
            _ => not_allowed(),
        },
        ["users", id, "manager", "$ref"] => match method {
            "PUT" => objects::manager_set(ctx, id),
            "DELETE" => objects::manager_remove(ctx, id),
            _ => not_allowed(),
        },
        ["directoryRoles"] => match method {
            "GET" => roles::directory_roles_list(ctx),
            _ => not_allowed(),
        },
        ["directoryRoles", id, "members"] => match method {
            "GET" => roles::directory_role_members(ctx, id),
            _ => not_allowed(),
        },
        ["roleManagement", "directory", "roleAssignments"] => match method {
            "GET" => roles::list(ctx),
            "POST" => roles::create(ctx),
            _ => not_allowed(),
        },
        ["roleManagement", "directory", "roleAssignments", id] => match method {
            "GET" => roles::get(ctx, id),
            "DELETE" => roles::delete(ctx, id),
            _ => not_allowed(),
        },
        ["users" | "groups", id, "memberOf"] => match method {
            "GET" => objects::member_of(ctx, kind_of(segments[0]), id),
            _ => not_allowed(),
        },
        ["groups", id, "members"] => match method {
            "GET" => objects::members_list(ctx, id),
            _ => not_allowed(),
        },
        ["groups", id, "members", "$ref"] => match method {
            "POST" => objects::member_add(ctx, id),
            _ => not_allowed(),
        },
        ["groups", id, "owners"] => match method {
            "GET" => objects::owners_list(ctx, id),
            _ => not_allowed(),
        },
        ["groups", id, "owners", "$ref"] => match method {
            "POST" => objects::owner_add(ctx, id),
            _ => not_allowed(),
        },
        ["groups", id, "owners", owner, "$ref"] => match method {
            "DELETE" => objects::owner_remove(ctx, id, owner),
            _ => not_allowed(),
        },
        ["groups", id, "members", member, "$ref"] => match method {
            "DELETE" => objects::member_remove(ctx, id, member),
            _ => not_allowed(),
        },
        ["applications" | "servicePrincipals"] => {
            let kind = kind_of(segments[0]);
            match method {
                "GET" => apps::list(ctx, kind),
                "POST" => apps::create(ctx, kind),
                _ => not_allowed(),
            }
        }
        ["applications" | "servicePrincipals", id] => {
            let kind = kind_of(segments[0]);
            match method {
                "GET" => apps::get(ctx, kind, id),
                "PATCH" => apps::update(ctx, kind, id),
                "DELETE" => apps::delete(ctx, kind, id),
                _ => not_allowed(),
            }
        }
        ["applications", id, "owners"] => match method {
            "GET" => apps::owners_list(ctx, id),
            _ => not_allowed(),
        },
        ["applications", id, relation] if relation.eq_ignore_ascii_case("extensionProperties") => {
            match method {
                "GET" => extensions::list(ctx, id),
                "POST" => extensions::create(ctx, id),
                _ => not_allowed(),
            }
        }
        ["applications", id, relation, extension]
            if relation.eq_ignore_ascii_case("extensionProperties") =>
        {
            match method {
                "GET" => extensions::get(ctx, id, extension),
                "DELETE" => extensions::delete(ctx, id, extension),
                _ => not_allowed(),
            }
        }
        ["applications", id, action]
            if action.eq_ignore_ascii_case("addPassword")
                || action.eq_ignore_ascii_case("microsoft.graph.addPassword") =>
        {
            match method {
                "POST" => apps::add_password(ctx, id),
                _ => not_allowed(),
            }
        }
        ["applications", id, action]
            if action.eq_ignore_ascii_case("removePassword")
                || action.eq_ignore_ascii_case("microsoft.graph.removePassword") =>
        {
            match method {
                "POST" => apps::remove_password(ctx, id),
                _ => not_allowed(),
            }
        }
        ["servicePrincipals", id, relation] if is_assignment_relation(relation) => match method {
            "GET" => apps::assignments_list(ctx, id, relation),
            "POST" => apps::assignment_create(ctx, id, relation),
            _ => not_allowed(),
        },
        ["servicePrincipals", id, relation, assignment] if is_assignment_relation(relation) => {
            match method {
                "DELETE" => apps::assignment_delete(ctx, id, relation, assignment),
                _ => not_allowed(),
            }
        }
        ["directory", "onPremisesSynchronization"] => match method {
            "GET" => directory::onprem_sync_list(ctx),
            _ => not_allowed(),
        },
        ["directory", "onPremisesSynchronization", id] => match method {
            "GET" => directory::onprem_sync_get(ctx, id),
            "PATCH" => directory::onprem_sync_update(ctx, id),
            _ => not_allowed(),
        },
        ["directory", "deletedItems", cast] if cast.starts_with("microsoft.graph.") => match method
        {
            "GET" => directory::deleted_list(ctx, cast),
            _ => not_allowed(),
        },
        ["directory", "deletedItems", id] => match method {
            "GET" => directory::deleted_get(ctx, id),
            "DELETE" => directory::deleted_purge(ctx, id),
            _ => not_allowed(),
        },
        ["directory", "deletedItems", id, action]
            if action.eq_ignore_ascii_case("restore")
                || action.eq_ignore_ascii_case("microsoft.graph.restore") =>
        {
            match method {
                "POST" => directory::deleted_restore(ctx, id),
                _ => not_allowed(),
            }
        }
        _ => Err(unknown_segment(&segments)),
    }
}

fn is_delta(segment: &str) -> bool {
    [
        "delta",
        "delta()",
        "microsoft.graph.delta",
        "microsoft.graph.delta()",
    ]
    .iter()
    .any(|name| segment.eq_ignore_ascii_case(name))
}

fn is_assignment_relation(segment: &str) -> bool {
    segment.eq_ignore_ascii_case("appRoleAssignedTo")
        || segment.eq_ignore_ascii_case("appRoleAssignments")
}

fn kind_of(collection: &str) -> Kind {
    match collection {
        "users" => Kind::User,
        "groups" => Kind::Group,
        "applications" => Kind::Application,
        _ => Kind::ServicePrincipal,
    }
}

/// The headers every Graph HTTP response carries.
pub fn standard_headers(req: &GraphRequest) -> Vec<(String, String)> {
    vec![
        ("request-id".into(), req.request_id.clone()),
        (
            "client-request-id".into(),
            req.client_request_id.clone().unwrap_or_else(|| req.request_id.clone()),
        ),
        ("OData-Version".into(), "4.0".into()),
        ("Cache-Control".into(), "no-cache".into()),
        ("Strict-Transport-Security".into(), "max-age=31536000".into()),
        (
            "x-ms-ags-diagnostic".into(),
            json!({"ServerInfo": {"DataCenter": "Loopback", "Slice": "E", "Ring": "0", "ScaleUnit": "000", "RoleInstance": "TENANT-EMULATOR"}}).to_string(),
        ),
    ]
}
