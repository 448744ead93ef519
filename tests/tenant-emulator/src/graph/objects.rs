//! Users and groups: create, get, list, update, delete, manager, members.

use serde_json::{Map, Value, json};

use super::query::{self, ListQuery, Position};
use super::{Ctx, GraphError, GraphResponse, GraphResult, Perm, require_admin};
use crate::model::{
    Access, DirObject, Kind, MemberEvent, State, Ty, empty_extension_attributes,
    extension_attribute_names, is_extension_name, type_matches,
};
use crate::store::Inner;
use crate::tenant;
use crate::util::{parse_date_time_offset, percent_encode, rfc3339, unix_now};

// Permission tables from each API's documentation page (least to most privileged).
pub const USER_READ: Perm = Perm {
    delegated: &[
        "User.ReadBasic.All",
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
    application: &[
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ],
};
// https://learn.microsoft.com/en-us/graph/api/user-get?view=graph-rest-1.0 for `GET /me`:
// User.Read, or a scope that reads more (the signed-in user among others).
pub const ME_READ: Perm = Perm {
    delegated: &[
        "User.Read",
        "User.ReadWrite",
        "User.ReadBasic.All",
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
    application: &[],
};
pub const USER_WRITE: Perm = Perm {
    delegated: &[
        "User.ReadWrite.All",
        "Directory.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
    application: &["User.ReadWrite.All", "Directory.ReadWrite.All"],
};
// https://learn.microsoft.com/en-us/graph/api/user-update?view=graph-rest-1.0, passwordProfile:
// in app-only access, User-PasswordProfile.ReadWrite.All (least privileged), User.ReadWrite.All
// or Directory.ReadWrite.All, "and at least the User Administrator Microsoft Entra role". The
// permission covers passwordProfile only (its name and its description, "read and write
// password profiles and reset user passwords"): any other property, passwordPolicies included,
// still needs USER_WRITE.
pub const PASSWORD_PROFILE_WRITE: Perm = Perm {
    delegated: &[
        "User.ReadWrite.All",
        "Directory.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
    application: &[
        "User-PasswordProfile.ReadWrite.All",
        "User.ReadWrite.All",
        "Directory.ReadWrite.All",
    ],
};
pub const GROUP_READ: Perm = Perm {
    delegated: &[
        "GroupMember.Read.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
    application: &[
        "GroupMember.Read.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ],
};
pub const GROUP_CREATE: Perm = Perm {
    delegated: &[
        "Group.Create",
        "Group.ReadWrite.All",
        "Directory.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
    application: &[
        "Group.Create",
        "Group.ReadWrite.All",
        "Directory.ReadWrite.All",
    ],
};
pub const GROUP_WRITE: Perm = Perm {
    delegated: &[
        "Group.ReadWrite.All",
        "Directory.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
    application: &["Group.ReadWrite.All", "Directory.ReadWrite.All"],
};
// https://learn.microsoft.com/en-us/graph/api/user-delete?view=graph-rest-1.0 and
// https://learn.microsoft.com/en-us/graph/api/group-delete?view=graph-rest-1.0: one permission
// each, "Higher privileged permissions: Not available." (Directory.ReadWrite.All "does not allow
// user or group deletion"). The deletedItems restore page asks the same.
pub const USER_DELETE: Perm = Perm {
    delegated: &["User.ReadWrite.All"],
    application: &["User.ReadWrite.All"],
};
pub const GROUP_DELETE: Perm = Perm {
    delegated: &["Group.ReadWrite.All"],
    application: &["Group.ReadWrite.All"],
};
pub const MEMBER_WRITE: Perm = Perm {
    delegated: &[
        "GroupMember.ReadWrite.All",
        "Group.ReadWrite.All",
        "Directory.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
    application: &[
        "GroupMember.ReadWrite.All",
        "Group.ReadWrite.All",
        "Directory.ReadWrite.All",
    ],
};

pub fn read_perm(kind: Kind) -> &'static Perm {
    match kind {
        Kind::User => &USER_READ,
        _ => &GROUP_READ,
    }
}

/// Finds a live object by ID (any case) or, for users, by userPrincipalName.
pub fn find<'s>(state: &'s State, kind: Kind, key: &str) -> Option<&'s DirObject> {
    if let Some(object) = state.live_of(kind, key) {
        return Some(object);
    }
    let lower = key.to_ascii_lowercase();
    if let Some(object) = state.live_of(kind, &lower) {
        return Some(object);
    }
    if kind == Kind::User && key.contains('@') {
        return state.user_by_upn(key);
    }
    None
}

/// One page of a collection, with `@odata.nextLink` while more remain.
pub struct PageSpec<'a> {
    pub context: String,
    pub select: Option<&'a [String]>,
    pub order: Option<&'a str>,
    pub top: usize,
    pub after: Option<Position>,
    /// `@odata.count` (advanced queries).
    pub count: bool,
    pub typed: Typed,
}

/// How a page's items are typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typed {
    /// A collection of one type (`/users`).
    No,
    /// A collection of directoryObjects: `@odata.type` on each item.
    Yes,
    /// A directoryObject relationship (members, memberOf, owners): also, objects of a type the
    /// caller may not read come back with only `@odata.type` and `id`, every other property
    /// null (group-list-members: "Limited information returned for inaccessible member
    /// objects").
    Limited,
}

/// Whether a caller may read objects of a type (to list them in full in a relationship).
pub fn can_read(caller: &crate::identity::Caller, kind: Kind) -> bool {
    let perm = match kind {
        Kind::User => &USER_READ,
        Kind::Group => &GROUP_READ,
        Kind::Application | Kind::ServicePrincipal => &super::apps::APP_READ,
    };
    perm.check(caller).is_ok()
}

pub fn page(ctx: &Ctx<'_>, mut items: Vec<&DirObject>, spec: &PageSpec<'_>) -> Value {
    items.sort_by(|a, b| {
        (query::sort_key(a, spec.order), a.id()).cmp(&(query::sort_key(b, spec.order), b.id()))
    });
    let total = items.len();
    let start = match &spec.after {
        Some(after) => items
            .iter()
            .position(|o| {
                (query::sort_key(o, spec.order), o.id().to_owned())
                    > (after.key.clone(), after.id.clone())
            })
            .unwrap_or(total),
        None => 0,
    };
    let end = (start + spec.top).min(total);
    let value: Vec<Value> = items[start..end]
        .iter()
        .map(|object| {
            let mut map = Map::new();
            if spec.typed != Typed::No {
                map.insert("@odata.type".into(), json!(object.kind.odata_type()));
            }
            let select = spec.select.map(|names| {
                names
                    .iter()
                    .filter(|n| object.kind.property(n).is_some() || is_extension_name(n))
                    .cloned()
                    .collect::<Vec<_>>()
            });
            let limited = spec.typed == Typed::Limited && !can_read(ctx.caller, object.kind);
            for (name, value) in query::render(object, select.as_deref()) {
                let value = if limited && name != "id" {
                    Value::Null
                } else {
                    value
                };
                map.insert(name, value);
            }
            if limited {
                map.insert("id".into(), json!(object.id()));
            }
            Value::Object(map)
        })
        .collect();
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(spec.context));
    if spec.count {
        body.insert("@odata.count".into(), json!(total));
    }
    if end < total
        && let Some(last) = items.get(end - 1)
    {
        let position = Position {
            key: query::sort_key(last, spec.order),
            id: last.id().to_owned(),
        };
        body.insert(
            "@odata.nextLink".into(),
            json!(next_link(ctx, &query::encode_position(&position))),
        );
    }
    body.insert("value".into(), Value::Array(value));
    Value::Object(body)
}

/// The request's own URL with a new `$skiptoken`.
fn next_link(ctx: &Ctx<'_>, token: &str) -> String {
    let mut params: Vec<String> = ctx
        .req
        .query
        .iter()
        .filter(|(key, _)| {
            !key.trim_start_matches('$')
                .eq_ignore_ascii_case("skiptoken")
        })
        .map(|(key, value)| format!("{}={}", percent_encode(key), percent_encode(value)))
        .collect();
    params.push(format!("$skiptoken={}", percent_encode(token)));
    format!(
        "{}/{}?{}",
        ctx.root(),
        ctx.req.path.trim_start_matches('/'),
        params.join("&")
    )
}

// https://learn.microsoft.com/en-us/graph/api/user-list?view=graph-rest-1.0
// https://learn.microsoft.com/en-us/graph/api/group-list?view=graph-rest-1.0
/// `GET /users`, `GET /groups`
pub fn list(ctx: &Ctx<'_>, kind: Kind) -> GraphResult {
    read_perm(kind).check(ctx.caller)?;
    let indexed = ctx.indexed();
    let body = ctx.app.store.read(|state| {
        // Parsed with the tenant at hand, for the directory extensions `$select` may name.
        let query = ListQuery::parse_in(kind, ctx.req, Some(state))?;
        let order = query::order_by(kind, ctx.req)?;
        let search = query::search(kind, ctx.req)?;
        if ctx.req.param("$expand").is_some() {
            return Err(GraphError::unsupported_query(
                "$expand is not supported by the tenant emulator.",
            ));
        }
        let items: Vec<&DirObject> = state
            .objects
            .values()
            .filter(|o| o.is_live() && o.kind == kind && indexed(o))
            .filter(|o| query.matches(o))
            .filter(|o| search.as_ref().is_none_or(|s| query::search_matches(o, s)))
            .collect();
        Ok(collection_page(
            ctx,
            kind,
            items,
            &query,
            query.select.as_deref(),
            order,
        ))
    })?;
    Ok(GraphResponse::ok(body))
}

/// A page of `/users`, `/applications`, … as `query` asks for it.
pub fn collection_page(
    ctx: &Ctx<'_>,
    kind: Kind,
    items: Vec<&DirObject>,
    query: &ListQuery,
    select: Option<&[String]>,
    order: Option<&str>,
) -> Value {
    page(
        ctx,
        items,
        &PageSpec {
            context: ctx.context(&query::context_fragment(kind.collection(), select)),
            select,
            order,
            top: query.top,
            after: query.after.clone(),
            count: ctx.req.advanced(),
            typed: Typed::No,
        },
    )
}

/// An entity with its `@odata.context`.
pub fn entity(ctx: &Ctx<'_>, object: &DirObject, select: Option<&[String]>) -> Value {
    let mut map = Map::new();
    map.insert(
        "@odata.context".into(),
        json!(ctx.context(&format!(
            "{}/$entity",
            query::context_fragment(object.kind.collection(), select)
        ))),
    );
    map.extend(query::render(object, select));
    Value::Object(map)
}

// https://learn.microsoft.com/en-us/graph/aad-advanced-queries (use of $count as a URL segment)
/// `GET /users/$count`, `GET /groups/$count`: advanced queries only; the count as plain text.
pub fn count(ctx: &Ctx<'_>, kind: Kind) -> GraphResult {
    read_perm(kind).check(ctx.caller)?;
    if !ctx.req.eventual {
        return Err(GraphError::bad_request(
            "Request_BadRequest",
            "$count is not currently supported.",
        ));
    }
    let filter = query::filter_with(kind, ctx.req, true)?;
    let indexed = ctx.indexed();
    let count = ctx.app.store.read(|state| {
        state
            .objects
            .values()
            .filter(|o| o.is_live() && o.kind == kind && indexed(o))
            .filter(|o| filter.as_ref().is_none_or(|f| query::matches(o, f)))
            .count()
    });
    let mut response = GraphResponse::ok(json!(count));
    response
        .headers
        .push(("Content-Type".into(), "text/plain".into()));
    Ok(response)
}

// https://learn.microsoft.com/en-us/graph/api/user-get?view=graph-rest-1.0
// https://learn.microsoft.com/en-us/graph/api/group-get?view=graph-rest-1.0
/// `GET /users/{id | userPrincipalName}`, `GET /groups/{id}`
pub fn get(ctx: &Ctx<'_>, kind: Kind, key: &str) -> GraphResult {
    read_perm(kind).check(ctx.caller)?;
    ctx.app.store.read(|state| {
        let select = query::select_in(kind, ctx.req, false, Some(state))?;
        let object = find(state, kind, key).ok_or_else(|| GraphError::not_found(key))?;
        Ok(GraphResponse::ok(entity(ctx, object, select.as_deref())))
    })
}

// https://learn.microsoft.com/en-us/graph/api/user-get?view=graph-rest-1.0 (GET /me)
/// `GET /me`
pub fn me(ctx: &Ctx<'_>) -> GraphResult {
    if !ctx.caller.delegated {
        return Err(GraphError::bad_request(
            "BadRequest",
            "/me request is only valid with delegated authentication flow.",
        ));
    }
    ME_READ.check(ctx.caller)?;
    ctx.app.store.read(|state| {
        let select = query::select_in(Kind::User, ctx.req, false, Some(state))?;
        let user = state
            .live_of(Kind::User, &ctx.caller.object_id)
            .ok_or_else(|| GraphError::not_found(&ctx.caller.object_id))?;
        Ok(GraphResponse::ok(entity(ctx, user, select.as_deref())))
    })
}

/// Checks the properties of a create or update body: known, of the right type, writable.
/// Directory extension names (`extension_{appId}_{name}`) on users and groups pass here and are
/// checked against the tenant's definitions with the object (`extensions::check_values`).
pub fn check_body(kind: Kind, body: &Map<String, Value>, creating: bool) -> Result<(), GraphError> {
    for (name, value) in body {
        if name.starts_with('@') || name.contains("@odata.") {
            continue;
        }
        if takes_extensions(kind) && is_extension_name(name) {
            continue;
        }
        let Some(def) = kind.property(name) else {
            return Err(GraphError::unknown_property(kind, name));
        };
        // A DateTimeOffset literal must be one (employeeHireDate; the OData reader's message).
        let bad_date = def.ty == Ty::DateTime
            && value
                .as_str()
                .is_some_and(|text| parse_date_time_offset(text).is_none());
        if !type_matches(def.ty, value) || bad_date {
            return Err(cannot_convert(value, def.ty.edm()));
        }
        match def.access {
            Access::ReadOnly => return Err(GraphError::read_only(def.name)),
            Access::CreateOnly if !creating => return Err(GraphError::read_only(def.name)),
            Access::Forbidden => {
                let mut error = GraphError::forbidden();
                if kind == Kind::Group {
                    error.message = "The requesting application is not authorized to set group proxy addresses.".into();
                }
                return Err(error);
            }
            _ => {}
        }
        if def.max_len > 0
            && value
                .as_str()
                .is_some_and(|text| text.chars().count() > def.max_len)
        {
            return Err(GraphError::invalid_value(kind, def.name));
        }
    }
    Ok(())
}

/// Whether objects of a type take directory extension values here (users and groups).
fn takes_extensions(kind: Kind) -> bool {
    matches!(kind, Kind::User | Kind::Group)
}

/// 400 `BadRequest` "Cannot convert the literal 'x' to the expected type 'Edm.String'." (the
/// OData reader's message for a value of the wrong type).
fn cannot_convert(value: &Value, edm: &str) -> GraphError {
    GraphError::bad_request(
        "BadRequest",
        &format!(
            "Cannot convert the literal '{}' to the expected type '{edm}'.",
            literal(value)
        ),
    )
}

fn literal(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Puts body properties under their canonical names (directory extensions of users and groups
/// as given, until `extensions::check_values`), DateTimeOffset values in UTC as Graph stores and
/// returns them (`2021-05-01T00:00:00Z`), and usageLocation upper-cased.
pub fn canonical(kind: Kind, body: &Map<String, Value>) -> Map<String, Value> {
    body.iter()
        .filter_map(|(name, value)| {
            if takes_extensions(kind) && is_extension_name(name) {
                return Some((name.clone(), value.clone()));
            }
            let def = kind.property(name)?;
            let value = match value.as_str() {
                Some(text) if def.ty == Ty::DateTime => parse_date_time_offset(text)
                    .map_or_else(|| value.clone(), |unix| json!(rfc3339(unix))),
                Some(text) if def.name == "usageLocation" => json!(text.to_ascii_uppercase()),
                _ => value.clone(),
            };
            Some((def.name.to_owned(), value))
        })
        .collect()
}

const UPN_LOCAL_CHARS: &str = "'.-_!#^~";
const NICKNAME_FORBIDDEN: &str = "@()\\[]\";:<>, ";

fn valid_upn(upn: &str) -> bool {
    let Some((local, domain)) = upn.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && upn.len() <= 113
        && !domain.is_empty()
        && !domain.contains('@')
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || UPN_LOCAL_CHARS.contains(c))
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

fn valid_nickname(nickname: &str) -> bool {
    !nickname.is_empty()
        && nickname.chars().count() <= 64
        && !nickname.starts_with('.')
        && nickname
            .chars()
            .all(|c| c.is_ascii() && !c.is_ascii_control() && !NICKNAME_FORBIDDEN.contains(c))
}

fn valid_mail(mail: &str) -> bool {
    let Some((local, domain)) = mail.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.contains('@')
        && !mail.chars().any(char::is_whitespace)
}

/// Entra's password rules: 8 to 256 characters, three of four character classes
/// (https://learn.microsoft.com/en-us/entra/identity/authentication/concept-sspr-policy#microsoft-entra-password-policies).
fn complex_enough(password: &str) -> bool {
    long_enough(password) && character_classes(password) >= 3
}

/// The length rule alone, which `DisableStrongPassword` leaves in force (the pages say the
/// policy "allows weaker passwords", not shorter ones).
fn long_enough(password: &str) -> bool {
    (8..=256).contains(&password.chars().count())
}

fn character_classes(password: &str) -> usize {
    [
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_ascii_alphanumeric()),
    ]
    .iter()
    .filter(|c| **c)
    .count()
}

/// The values of `passwordPolicies`
/// (https://learn.microsoft.com/en-us/graph/api/resources/user?view=graph-rest-1.0#properties):
/// `DisablePasswordExpiration`, `DisableStrongPassword`, both separated by a comma, or `None`.
/// `None` when the value is not one of them.
fn password_policies(value: &str) -> Option<Vec<&'static str>> {
    if value.trim().eq_ignore_ascii_case("None") {
        return Some(Vec::new());
    }
    value
        .split(',')
        .map(|item| {
            ["DisablePasswordExpiration", "DisableStrongPassword"]
                .into_iter()
                .find(|known| known.eq_ignore_ascii_case(item.trim()))
        })
        .collect()
}

fn unverified_domain() -> GraphError {
    let mut error = GraphError::bad_request(
        "Request_BadRequest",
        "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.",
    );
    error.extra.details = vec![json!({"code": "InvalidValue", "target": "userPrincipalName"})];
    error
}

/// The properties a create must have (not null, not blank).
fn check_required(props: &Map<String, Value>, required: &[&str]) -> Result<(), GraphError> {
    for name in required {
        let present = match props.get(*name) {
            None | Some(Value::Null) => false,
            Some(Value::String(text)) => !text.trim().is_empty(),
            Some(_) => true,
        };
        if !present {
            return Err(GraphError::required(name));
        }
    }
    Ok(())
}

/// Checks the values of user properties (after `check_body`).
fn check_user_values(
    state: &State,
    props: &Map<String, Value>,
    existing: Option<&DirObject>,
) -> Result<(), GraphError> {
    let creating = existing.is_none();
    let kind = Kind::User;
    // The password is checked against the policies the user has once this request applies.
    let policies = match props.get("passwordPolicies") {
        Some(value) => value.as_str(),
        None => existing.and_then(|user| user.str_prop("passwordPolicies")),
    };
    let strong_waived = policies
        .and_then(password_policies)
        .is_some_and(|policies| policies.contains(&"DisableStrongPassword"));
    if creating {
        check_required(
            props,
            &[
                "accountEnabled",
                "displayName",
                "mailNickname",
                "userPrincipalName",
                "passwordProfile",
            ],
        )?;
    }
    for (name, value) in props {
        let text = value.as_str();
        match name.as_str() {
            "displayName" | "mailNickname" | "userPrincipalName" | "accountEnabled"
                if value.is_null() =>
            {
                return Err(GraphError::invalid_value(kind, name));
            }
            "displayName" if text.is_some_and(|t| t.trim().is_empty()) => {
                return Err(GraphError::invalid_value(kind, name));
            }
            "mailNickname" if text.is_some_and(|t| !valid_nickname(t)) => {
                return Err(GraphError::invalid_value(kind, name));
            }
            "userPrincipalName" => {
                let upn = text.unwrap_or_default();
                if !valid_upn(upn) {
                    return Err(GraphError::invalid_value(kind, name));
                }
                let domain = upn.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
                if !state.is_verified_domain(domain) {
                    return Err(unverified_domain());
                }
            }
            "mail" if text.is_some_and(|t| !valid_mail(t)) => {
                return Err(GraphError::invalid_value(kind, name));
            }
            "usageLocation" if text.is_some_and(|t| !is_country_code(t)) => {
                return Err(GraphError::invalid_value(kind, name));
            }
            "preferredLanguage" if text.is_some_and(|t| !valid_language(t)) => {
                return Err(GraphError::invalid_value(kind, name));
            }
            "onPremisesExtensionAttributes" => {
                // user resource: writable only for cloud-only users (onPremisesSyncEnabled not
                // true); the refusal is Graph's answer to writes to synced objects, as widely
                // reported from tenants.
                if existing
                    .is_some_and(|user| user.bool_prop("onPremisesSyncEnabled") == Some(true))
                {
                    return Err(GraphError::bad_request(
                        "Request_BadRequest",
                        "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration.",
                    ));
                }
                let allowed: Vec<String> = extension_attribute_names().collect();
                check_complex(
                    value,
                    "microsoft.graph.onPremisesExtensionAttributes",
                    &allowed,
                    EXTENSION_ATTRIBUTE_MAX_LEN,
                )?;
            }
            "employeeOrgData" => {
                let allowed = ["division".to_owned(), "costCenter".to_owned()];
                check_complex(value, "microsoft.graph.employeeOrgData", &allowed, 0)?;
            }
            "businessPhones" if value.as_array().is_some_and(|phones| phones.len() > 1) => {
                return Err(GraphError::invalid_value(kind, name));
            }
            "userType"
                if text.is_some_and(|t| {
                    !t.eq_ignore_ascii_case("Member") && !t.eq_ignore_ascii_case("Guest")
                }) =>
            {
                return Err(GraphError::invalid_value(kind, name));
            }
            "onPremisesImmutableId"
                if text.is_some_and(|t| {
                    t.is_empty() || t.len() > 256 || t.chars().any(char::is_whitespace)
                }) =>
            {
                return Err(GraphError::invalid_value(kind, name));
            }
            "passwordPolicies" if text.is_some_and(|t| password_policies(t).is_none()) => {
                return Err(GraphError::invalid_value(kind, name));
            }
            "passwordProfile" => {
                let Some(profile) = value.as_object() else {
                    return Err(GraphError::invalid_value(kind, name));
                };
                for (key, field) in profile {
                    let known = [
                        "password",
                        "forceChangePasswordNextSignIn",
                        "forceChangePasswordNextSignInWithMfa",
                    ];
                    if !known.contains(&key.as_str()) && !key.starts_with('@') {
                        return Err(GraphError::bad_request(
                            "BadRequest",
                            &format!(
                                "The property '{key}' does not exist on type 'microsoft.graph.passwordProfile'. Make sure to only use property names that are defined by the type or mark the type as open type."
                            ),
                        ));
                    }
                    if key != "password" && !(field.is_boolean() || field.is_null()) {
                        return Err(GraphError::invalid_value(kind, name));
                    }
                }
                match profile.get("password") {
                    Some(Value::String(password))
                        if complex_enough(password) || (strong_waived && long_enough(password)) => {
                    }
                    Some(Value::String(_)) => {
                        return Err(GraphError::bad_request(
                            "Request_BadRequest",
                            "The specified password does not comply with password complexity requirements. Please provide a different password.",
                        ));
                    }
                    None | Some(Value::Null) if !creating => {}
                    _ => return Err(GraphError::required("passwordProfile.password")),
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The longest value of an `onPremisesExtensionAttributes` attribute: 1,024 characters, the
/// size of AD's `extensionAttribute1`–`15` (Graph's page gives none).
const EXTENSION_ATTRIBUTE_MAX_LEN: usize = 1024;

/// Checks a complex value of strings (`onPremisesExtensionAttributes`, `employeeOrgData`):
/// null, or an object whose keys are among `allowed` (OData's unknown-property message
/// otherwise), each a string of at most `max_len` characters (0: unbounded; else 400 invalid
/// value naming the attribute) or null.
fn check_complex(
    value: &Value,
    type_name: &str,
    allowed: &[String],
    max_len: usize,
) -> Result<(), GraphError> {
    let fields = match value {
        Value::Null => return Ok(()),
        Value::Object(fields) => fields,
        other => return Err(cannot_convert(other, type_name)),
    };
    for (key, field) in fields {
        if key.starts_with('@') {
            continue;
        }
        if !allowed.iter().any(|name| name == key) {
            return Err(GraphError::bad_request(
                "BadRequest",
                &format!(
                    "The property '{key}' does not exist on type '{type_name}'. Make sure to only use property names that are defined by the type or mark the type as open type."
                ),
            ));
        }
        match field {
            Value::Null => {}
            Value::String(text) => {
                if max_len > 0 && text.chars().count() > max_len {
                    return Err(GraphError::invalid_value(Kind::User, key));
                }
            }
            other => return Err(cannot_convert(other, "Edm.String")),
        }
    }
    Ok(())
}

/// A complex value as a PATCH leaves it: the keys given replace those stored (null clears one),
/// the others keep their values; a null value clears them all (`onPremisesExtensionAttributes`
/// and its merge: https://learn.microsoft.com/en-us/graph/extensibility-overview#extension-attributes).
fn merged_complex(stored: Option<&Value>, given: &Value, keys: &[String]) -> Value {
    let mut out: Map<String, Value> = keys.iter().map(|k| (k.clone(), Value::Null)).collect();
    if let Some(Value::Object(stored)) = stored {
        for key in keys {
            if let Some(value) = stored.get(key) {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    match given {
        Value::Object(fields) => {
            for (key, value) in fields {
                if keys.contains(key) {
                    out.insert(key.clone(), value.clone());
                }
            }
        }
        _ => {
            for value in out.values_mut() {
                *value = Value::Null;
            }
        }
    }
    Value::Object(out)
}

/// Merges a user write's `onPremisesExtensionAttributes` and `employeeOrgData` into what the
/// user has (`existing`; None on create), as Graph merges them on PATCH. A null
/// `employeeOrgData` clears it.
fn merge_user_complex(props: &mut Map<String, Value>, existing: Option<&DirObject>) {
    let stored = |name: &str| existing.and_then(|user| user.props.get(name));
    if let Some(given) = props.get("onPremisesExtensionAttributes") {
        let keys: Vec<String> = extension_attribute_names().collect();
        let merged = merged_complex(stored("onPremisesExtensionAttributes"), given, &keys);
        props.insert("onPremisesExtensionAttributes".into(), merged);
    }
    if let Some(given) = props.get("employeeOrgData") {
        let merged = if given.is_null() {
            Value::Null
        } else {
            let keys = ["division".to_owned(), "costCenter".to_owned()];
            merged_complex(stored("employeeOrgData"), given, &keys)
        };
        props.insert("employeeOrgData".into(), merged);
    }
}

/// ISO 3166-1 alpha-2 country codes (officially assigned), the values usageLocation takes
/// (user resource: "A two-letter country code (ISO standard 3166)"); `UK`, for one, is not.
const COUNTRY_CODES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// Whether a usageLocation is a country code (either case; Graph keeps it upper-cased).
fn is_country_code(code: &str) -> bool {
    code.len() == 2
        && code.chars().all(|c| c.is_ascii_alphabetic())
        && COUNTRY_CODES
            .split(' ')
            .any(|known| known.eq_ignore_ascii_case(code))
}

/// A preferredLanguage Graph takes ("ISO 639-1 Code; for example en-US", user and group
/// resources): a language of two or three letters, then hyphen-separated subtags of one to
/// eight letters or digits (BCP 47's form).
fn valid_language(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let language = parts.next().unwrap_or_default();
    (2..=3).contains(&language.len())
        && language.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|part| {
            (1..=8).contains(&part.len()) && part.chars().all(|c| c.is_ascii_alphanumeric())
        })
}

/// proxyAddresses conflict across users and groups, compared case-insensitively.
pub fn proxy_conflict(state: &State, own_id: Option<&str>, addresses: &[String]) -> bool {
    if addresses.is_empty() {
        return false;
    }
    let wanted: Vec<String> = addresses.iter().map(|a| a.to_lowercase()).collect();
    state.objects.values().any(|other| {
        other.is_live()
            && Some(other.id()) != own_id
            && matches!(other.kind, Kind::User | Kind::Group)
            && other
                .list_prop("proxyAddresses")
                .iter()
                .any(|a| wanted.contains(&a.to_lowercase()))
    })
}

/// The uniqueness rules of users: userPrincipalName, onPremisesImmutableId, proxyAddresses.
pub fn check_user_uniqueness(
    state: &State,
    own_id: Option<&str>,
    user: &Map<String, Value>,
) -> Result<(), GraphError> {
    let others = || {
        state
            .objects
            .values()
            .filter(move |o| o.is_live() && o.kind == Kind::User && Some(o.id()) != own_id)
    };
    if let Some(upn) = user.get("userPrincipalName").and_then(Value::as_str)
        && others().any(|o| {
            o.str_prop("userPrincipalName")
                .is_some_and(|u| u.eq_ignore_ascii_case(upn))
        })
    {
        return Err(GraphError::conflict("userPrincipalName"));
    }
    if let Some(anchor) = user.get("onPremisesImmutableId").and_then(Value::as_str)
        && others().any(|o| o.str_prop("onPremisesImmutableId") == Some(anchor))
    {
        return Err(GraphError::conflict("onPremisesImmutableId"));
    }
    let proxies: Vec<String> = user
        .get("proxyAddresses")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if proxy_conflict(state, own_id, &proxies) {
        return Err(GraphError::conflict("proxyAddresses"));
    }
    Ok(())
}

/// The proxy addresses after `mail` becomes `mail` (Exchange's rule: the new address is the
/// primary `SMTP:`, the old primary stays as an `smtp:` alias).
fn proxies_for_mail(current: &[String], mail: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = current
        .iter()
        .map(|address| match address.strip_prefix("SMTP:") {
            Some(rest) => format!("smtp:{rest}"),
            None => address.clone(),
        })
        .collect();
    if let Some(mail) = mail {
        out.retain(|address| !address.eq_ignore_ascii_case(&format!("smtp:{mail}")));
        out.insert(0, format!("SMTP:{mail}"));
    }
    out
}

fn location(ctx: &Ctx<'_>, state: &State, object: &DirObject) -> (String, String) {
    let class = match object.kind {
        Kind::User => "User",
        Kind::Group => "Group",
        Kind::Application => "Application",
        Kind::ServicePrincipal => "ServicePrincipal",
    };
    (
        "Location".into(),
        format!(
            "{}/v2/{}/directoryObjects/{}/Microsoft.DirectoryServices.{class}",
            ctx.app.base,
            state.tenant_id,
            object.id()
        ),
    )
}

// https://learn.microsoft.com/en-us/graph/api/user-post-users?view=graph-rest-1.0
// https://learn.microsoft.com/en-us/graph/api/group-post-groups?view=graph-rest-1.0
/// `POST /users`, `POST /groups`
pub fn create(ctx: &Ctx<'_>, kind: Kind) -> GraphResult {
    match kind {
        Kind::User => USER_WRITE.check(ctx.caller)?,
        _ => GROUP_CREATE.check(ctx.caller)?,
    }
    require_admin(ctx)?;
    let body = ctx.req.json_body()?;
    check_body(kind, &body, true)?;
    let props = canonical(kind, &body);
    ctx.write(|inner| {
        super::directory::check_directory_quota(ctx.app, &inner.state)?;
        match kind {
            Kind::User => create_user(ctx, inner, props),
            _ => create_group(ctx, inner, &body, props),
        }
    })
}

fn create_user(ctx: &Ctx<'_>, inner: &mut Inner, mut props: Map<String, Value>) -> GraphResult {
    check_user_values(&inner.state, &props, None)?;
    super::extensions::check_values(&inner.state, Kind::User, &mut props, None)?;
    merge_user_complex(&mut props, None);
    if let Some(mail) = props.get("mail").and_then(Value::as_str) {
        let proxies = proxies_for_mail(&[], Some(mail));
        props.insert("proxyAddresses".into(), json!(proxies));
    }
    check_user_uniqueness(&inner.state, None, &props)?;
    let profile = props.remove("passwordProfile").unwrap_or(Value::Null);
    let id = crate::util::new_guid();
    let seq = inner.next_seq();
    let mut user = DirObject::new(Kind::User, &id, seq);
    let now = rfc3339(unix_now());
    for (key, value) in [
        ("businessPhones", json!([])),
        ("createdDateTime", json!(now)),
        ("creationType", Value::Null),
        ("userType", json!("Member")),
        ("otherMails", json!([])),
        ("imAddresses", json!([])),
        ("assignedLicenses", json!([])),
        ("proxyAddresses", json!([])),
        ("onPremisesProvisioningErrors", json!([])),
        ("lastPasswordChangeDateTime", json!(now)),
        ("signInSessionsValidFromDateTime", json!(now)),
        ("securityIdentifier", json!(security_identifier(&id))),
        (
            "onPremisesExtensionAttributes",
            empty_extension_attributes(),
        ),
    ] {
        user.set(key, value, seq);
    }
    let upn = props
        .get("userPrincipalName")
        .cloned()
        .unwrap_or(Value::Null);
    let issuer = inner.state.initial_domain.clone();
    user.set(
        "identities",
        json!([{"signInType": "userPrincipalName", "issuer": issuer, "issuerAssignedId": upn}]),
        seq,
    );
    for (key, value) in props {
        user.set(&key, value, seq);
    }
    if let Some(password) = profile.get("password").and_then(Value::as_str) {
        let (salt, hash) = tenant::seal(password);
        user.internal.password_salt = Some(salt);
        user.internal.password_hash = Some(hash);
    }
    user.internal.force_change_password = profile
        .get("forceChangePasswordNextSignIn")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let header = location(ctx, &inner.state, &user);
    let body = entity(ctx, &user, None);
    ctx.app.note_created(user.id());
    inner.insert_object(user);
    let mut response = GraphResponse::created(body);
    response.headers.push(header);
    Ok(response)
}

/// The `S-1-12-1-…` security identifier Entra derives from an object ID.
fn security_identifier(id: &str) -> String {
    let bytes = uuid::Uuid::parse_str(id)
        .map(|u| u.to_bytes_le())
        .unwrap_or_default();
    let part = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    format!("S-1-12-1-{}-{}-{}-{}", part(0), part(4), part(8), part(12))
}

/// The `@odata.id` of a `$ref` write's body (`{"@odata.id": "https://…/directoryObjects/{id}"}`).
fn reference_body(ctx: &Ctx<'_>) -> Result<String, GraphError> {
    ctx.req
        .json_body()?
        .get("@odata.id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            GraphError::bad_request(
                "Request_BadRequest",
                "The request body must contain '@odata.id'.",
            )
        })
}

/// Resolves `https://graph.microsoft.com/v1.0/directoryObjects/{id}` (or `users/`, `groups/`,
/// `servicePrincipals/`) to a live object.
pub fn resolve_reference<'s>(
    state: &'s State,
    reference: &str,
) -> Result<&'s DirObject, GraphError> {
    let invalid = || {
        GraphError::bad_request(
            "Request_BadRequest",
            &format!("Invalid object identifier '{reference}'."),
        )
    };
    let path = reference.split(['?', '#']).next().unwrap_or_default();
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let [.., collection, id] = parts.as_slice() else {
        return Err(invalid());
    };
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(invalid());
    }
    let wanted = match collection.to_ascii_lowercase().as_str() {
        "directoryobjects" => None,
        "users" => Some(Kind::User),
        "groups" => Some(Kind::Group),
        "serviceprincipals" => Some(Kind::ServicePrincipal),
        "devices" | "contacts" | "orgcontacts" => return Err(GraphError::not_found(id)),
        _ => return Err(invalid()),
    };
    state
        .live(&id.to_ascii_lowercase())
        .filter(|o| wanted.is_none_or(|k| o.kind == k))
        .filter(|o| o.kind != Kind::Application)
        .ok_or_else(|| GraphError::not_found(id))
}

fn bind_list(body: &Map<String, Value>, name: &str) -> Result<Vec<String>, GraphError> {
    let Some((_, value)) = body
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(&format!("{name}@odata.bind")))
    else {
        return Ok(Vec::new());
    };
    match value {
        Value::Array(items) if items.iter().all(Value::is_string) => Ok(items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()),
        _ => Err(GraphError::bad_request(
            "BadRequest",
            &format!("The value of '{name}@odata.bind' must be an array of URLs."),
        )),
    }
}

fn check_group_values(
    state: &State,
    props: &Map<String, Value>,
    existing: Option<&DirObject>,
) -> Result<(), GraphError> {
    let kind = Kind::Group;
    if existing.is_none() {
        check_required(
            props,
            &[
                "displayName",
                "mailEnabled",
                "mailNickname",
                "securityEnabled",
            ],
        )?;
    }
    let get_bool = |name: &str| {
        props
            .get(name)
            .and_then(Value::as_bool)
            .or_else(|| existing.and_then(|g| g.bool_prop(name)))
            .unwrap_or(false)
    };
    let group_types: Vec<String> = props
        .get("groupTypes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .or_else(|| existing.map(|g| g.list_prop("groupTypes")))
        .unwrap_or_default();
    for group_type in &group_types {
        if !group_type.eq_ignore_ascii_case("Unified")
            && !group_type.eq_ignore_ascii_case("DynamicMembership")
        {
            return Err(GraphError::invalid_value(kind, "groupTypes"));
        }
    }
    let unified = group_types
        .iter()
        .any(|t| t.eq_ignore_ascii_case("Unified"));
    if let Some(existing) = existing
        && props.contains_key("groupTypes")
        && existing.is_unified_group() != unified
    {
        return Err(GraphError::invalid_value(kind, "groupTypes"));
    }
    let mail_enabled = get_bool("mailEnabled");
    let security_enabled = get_bool("securityEnabled");
    if mail_enabled && !unified {
        return Err(GraphError::bad_request(
            "Request_BadRequest",
            "The service does not currently support writes of mail-enabled groups. Please ensure that the mail-enablement property is unset or is set to false.",
        ));
    }
    if unified && !mail_enabled {
        return Err(GraphError::invalid_value(kind, "mailEnabled"));
    }
    if !unified && !security_enabled {
        return Err(GraphError::invalid_value(kind, "securityEnabled"));
    }
    for (name, value) in props {
        match name.as_str() {
            "displayName" | "mailNickname"
                if value.as_str().is_none_or(|t| t.trim().is_empty()) =>
            {
                return Err(GraphError::invalid_value(kind, name));
            }
            "mailNickname" if value.as_str().is_some_and(|t| !valid_nickname(t)) => {
                return Err(GraphError::invalid_value(kind, name));
            }
            "preferredLanguage" if value.as_str().is_some_and(|t| !valid_language(t)) => {
                return Err(GraphError::invalid_value(kind, name));
            }
            "visibility"
                if value.as_str().is_some_and(|v| {
                    !["Public", "Private", "HiddenMembership"]
                        .iter()
                        .any(|x| x.eq_ignore_ascii_case(v))
                }) =>
            {
                return Err(GraphError::invalid_value(kind, name));
            }
            _ => {}
        }
    }
    let _ = state;
    Ok(())
}

fn create_group(
    ctx: &Ctx<'_>,
    inner: &mut Inner,
    body: &Map<String, Value>,
    mut props: Map<String, Value>,
) -> GraphResult {
    check_group_values(&inner.state, &props, None)?;
    super::extensions::check_values(&inner.state, Kind::Group, &mut props, None)?;
    let members = bind_list(body, "members")?;
    let owners = bind_list(body, "owners")?;
    if members.len() + owners.len() > 20 {
        return Err(GraphError::bad_request(
            "Request_BadRequest",
            "The request contains more than 20 members@odata.bind and owners@odata.bind references.",
        ));
    }
    if !members.is_empty() {
        MEMBER_WRITE.check(ctx.caller)?;
    }
    let mut member_ids = Vec::new();
    for reference in &members {
        let object = resolve_reference(&inner.state, reference)?;
        member_ids.push((object.id().to_owned(), object.kind));
    }
    let mut owner_ids = Vec::new();
    for reference in &owners {
        owner_ids.push(resolve_reference(&inner.state, reference)?.id().to_owned());
    }
    let unified = props
        .get("groupTypes")
        .and_then(Value::as_array)
        .is_some_and(|t| {
            t.iter().any(|v| {
                v.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case("Unified"))
            })
        });
    let mut proxies = Vec::new();
    let mut mail = Value::Null;
    if unified {
        let nickname = props
            .get("mailNickname")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let address = format!("{nickname}@{}", inner.state.initial_domain);
        proxies.push(format!("SMTP:{address}"));
        mail = json!(address);
        if proxy_conflict(&inner.state, None, &proxies) {
            return Err(GraphError::conflict("proxyAddresses"));
        }
    }
    let id = crate::util::new_guid();
    let seq = inner.next_seq();
    let mut group = DirObject::new(Kind::Group, &id, seq);
    let now = rfc3339(unix_now());
    for (key, value) in [
        ("createdDateTime", json!(now)),
        ("renewedDateTime", json!(now)),
        ("creationOptions", json!([])),
        ("groupTypes", json!([])),
        ("mail", mail),
        ("proxyAddresses", json!(proxies)),
        ("resourceBehaviorOptions", json!([])),
        ("resourceProvisioningOptions", json!([])),
        ("onPremisesProvisioningErrors", json!([])),
        ("serviceProvisioningErrors", json!([])),
        ("securityIdentifier", json!(security_identifier(&id))),
        (
            "visibility",
            if unified {
                json!("Public")
            } else {
                Value::Null
            },
        ),
    ] {
        group.set(key, value, seq);
    }
    for (key, value) in props {
        group.set(&key, value, seq);
    }
    group.internal.owners.extend(owner_ids);
    for (member, member_kind) in &member_ids {
        group.internal.members.insert(member.clone());
        inner.member_event(MemberEvent {
            seq,
            group: id.clone(),
            member: member.clone(),
            member_kind: *member_kind,
            added: true,
        });
    }
    let header = location(ctx, &inner.state, &group);
    let body = entity(ctx, &group, None);
    ctx.app.note_created(group.id());
    inner.insert_object(group);
    let mut response = GraphResponse::created(body);
    response.headers.push(header);
    Ok(response)
}

// https://learn.microsoft.com/en-us/graph/api/user-update?view=graph-rest-1.0
// https://learn.microsoft.com/en-us/graph/api/group-update?view=graph-rest-1.0
/// `PATCH /users/{id}`, `PATCH /groups/{id}` (with `members@odata.bind`)
pub fn update(ctx: &Ctx<'_>, kind: Kind, key: &str) -> GraphResult {
    let body = ctx.req.json_body();
    // What an app may change depends on what the body changes: passwordProfile, or the rest.
    let (password_reset, other_changes) = match (&body, kind) {
        (Ok(body), Kind::User) if !ctx.caller.delegated => {
            let properties: Vec<&String> = body
                .keys()
                .filter(|name| !name.starts_with('@') && !name.contains("@odata."))
                .collect();
            let reset = properties
                .iter()
                .any(|name| name.eq_ignore_ascii_case("passwordProfile"));
            let others = properties
                .iter()
                .any(|name| !name.eq_ignore_ascii_case("passwordProfile"));
            (reset, others || !reset)
        }
        _ => (false, true),
    };
    if password_reset {
        PASSWORD_PROFILE_WRITE.check(ctx.caller)?;
    }
    if other_changes {
        match kind {
            Kind::User => USER_WRITE.check(ctx.caller)?,
            _ => GROUP_WRITE.check(ctx.caller)?,
        }
    }
    require_admin(ctx)?;
    let body = body?;
    check_body(kind, &body, false)?;
    let props = canonical(kind, &body);
    let members = if kind == Kind::Group {
        bind_list(&body, "members")?
    } else {
        Vec::new()
    };
    if !members.is_empty() {
        MEMBER_WRITE.check(ctx.caller)?;
    }
    if members.len() > 20 {
        return Err(GraphError::bad_request(
            "Request_BadRequest",
            "The request contains more than 20 members@odata.bind references.",
        ));
    }
    ctx.write(|inner| {
        let existing = find(&inner.state, kind, key)
            .ok_or_else(|| GraphError::not_found(key))?
            .clone();
        let id = existing.id().to_owned();
        let mut props = props;
        if kind == Kind::User {
            // An app may not change a role holder (but see the password reset below).
            if other_changes && super::roles::is_privileged(&existing) && !ctx.caller.delegated {
                return Err(GraphError::forbidden());
            }
            if password_reset && !app_may_reset_password(ctx, &inner.state, &existing) {
                return Err(GraphError::forbidden());
            }
            check_user_values(&inner.state, &props, Some(&existing))?;
            super::extensions::check_values(&inner.state, kind, &mut props, Some(&existing))?;
            merge_user_complex(&mut props, Some(&existing));
            if props.contains_key("mail") {
                let mail = props.get("mail").and_then(Value::as_str);
                let proxies = proxies_for_mail(&existing.list_prop("proxyAddresses"), mail);
                props.insert("proxyAddresses".into(), json!(proxies));
            }
            check_user_uniqueness(&inner.state, Some(&id), &props)?;
        } else {
            check_group_values(&inner.state, &props, Some(&existing))?;
            super::extensions::check_values(&inner.state, kind, &mut props, Some(&existing))?;
        }
        let mut new_members = Vec::new();
        for reference in &members {
            let member = resolve_reference(&inner.state, reference)?;
            if existing.internal.members.contains(member.id())
                || new_members.iter().any(|(m, _)| m == member.id())
            {
                return Err(already_member());
            }
            new_members.push((member.id().to_owned(), member.kind));
        }
        let profile = props.remove("passwordProfile");
        let seq = inner.next_seq();
        let issuer = inner.state.initial_domain.clone();
        let Some(object) = inner.state.objects.get_mut(&id) else {
            return Err(GraphError::not_found(key));
        };
        if kind == Kind::User
            && !props.contains_key("identities")
            && let Some(upn) = props.get("userPrincipalName")
        {
            let mut identities = object.props.get("identities").and_then(Value::as_array).cloned().unwrap_or_default();
            identities.retain(|i| i["signInType"] != json!("userPrincipalName"));
            identities.insert(0, json!({"signInType": "userPrincipalName", "issuer": issuer, "issuerAssignedId": upn}));
            object.set("identities", Value::Array(identities), seq);
        }
        for (name, value) in props {
            if is_extension_name(&name) {
                // One value per extension, under its registered spelling.
                object
                    .props
                    .retain(|key, _| key == &name || !key.eq_ignore_ascii_case(&name));
            }
            object.set(&name, value, seq);
        }
        if let Some(profile) = profile {
            if let Some(password) = profile.get("password").and_then(Value::as_str) {
                let (salt, hash) = tenant::seal(password);
                object.internal.password_salt = Some(salt);
                object.internal.password_hash = Some(hash);
                // The password set last is the one that signs in.
                object.internal.synced_password_credential = None;
                object.set(
                    "lastPasswordChangeDateTime",
                    json!(rfc3339(unix_now())),
                    seq,
                );
            }
            if let Some(force) = profile
                .get("forceChangePasswordNextSignIn")
                .and_then(Value::as_bool)
            {
                object.internal.force_change_password = force;
            }
        }
        for (member, _) in &new_members {
            object.internal.members.insert(member.clone());
        }
        inner.touch(&id);
        for (member, member_kind) in new_members {
            inner.member_event(MemberEvent {
                seq,
                group: id.clone(),
                member,
                member_kind,
                added: true,
            });
        }
        Ok(GraphResponse::no_content())
    })
}

/// Whether the calling app's service principal holds a directory role that may reset this
/// user's password (user-update, passwordProfile: "at least the User Administrator Microsoft
/// Entra role"; who may reset whom: `roles::may_reset_password`). With the
/// `role_propagation_ms` fault, an assignment made less than that long ago does not count yet.
fn app_may_reset_password(ctx: &Ctx<'_>, state: &State, target: &DirObject) -> bool {
    let Some(caller) = state.live(&ctx.caller.object_id) else {
        return false;
    };
    let lag = ctx.app.role_propagation();
    let held: Vec<String> = super::roles::held_roles(state, caller)
        .into_iter()
        .filter(|(_, assignment)| !ctx.app.younger_than(assignment, lag))
        .map(|(role, _)| role)
        .collect();
    super::roles::may_reset_password(state, &held, target)
}

fn already_member() -> GraphError {
    GraphError::bad_request(
        "Request_BadRequest",
        "One or more added object references already exist for the following modified properties: 'members'.",
    )
}

/// Emits membership events for every group an object belongs to (on delete and restore).
pub fn membership_events(inner: &mut Inner, id: &str, kind: Kind, added: bool, seq: u64) {
    let groups: Vec<String> = inner
        .state
        .objects
        .values()
        .filter(|g| g.is_live() && g.kind == Kind::Group && g.internal.members.contains(id))
        .map(|g| g.id().to_owned())
        .collect();
    for group in groups {
        inner.member_event(MemberEvent {
            seq,
            group,
            member: id.to_owned(),
            member_kind: kind,
            added,
        });
    }
}

/// Emits an "added" event for every live member of a group (a restored group's members).
pub fn member_events_of(inner: &mut Inner, group: &str, seq: u64) {
    let members: Vec<(String, Kind)> = inner
        .state
        .objects
        .get(group)
        .map(|g| {
            g.internal
                .members
                .iter()
                .filter_map(|m| inner.state.live(m).map(|o| (m.clone(), o.kind)))
                .collect()
        })
        .unwrap_or_default();
    for (member, member_kind) in members {
        inner.member_event(MemberEvent {
            seq,
            group: group.to_owned(),
            member,
            member_kind,
            added: true,
        });
    }
}

/// Moves an object to deleted items.
pub fn soft_delete(inner: &mut Inner, id: &str) {
    let seq = inner.next_seq();
    let Some(object) = inner.state.objects.get(id) else {
        return;
    };
    let kind = object.kind;
    membership_events(inner, id, kind, false, seq);
    let Some(object) = inner.state.objects.get_mut(id) else {
        return;
    };
    let now = unix_now();
    object.deleted = Some(crate::model::SoftDeleted { at: now, seq });
    object.set("deletedDateTime", json!(rfc3339(now)), seq);
    if kind == Kind::User
        && let Some(upn) = object.str_prop("userPrincipalName").map(str::to_owned)
    {
        // Deleted users keep their UPN behind their object ID (without dashes).
        object.internal.original_upn = Some(upn.clone());
        object.set(
            "userPrincipalName",
            json!(format!("{}{upn}", id.replace('-', ""))),
            seq,
        );
    }
    inner.touch(id);
}

/// Deletes an object for good, dropping it from every group.
pub fn hard_delete(inner: &mut Inner, id: &str) {
    let Some(object) = inner.state.objects.get(id) else {
        return;
    };
    let kind = object.kind;
    let seq = inner.next_seq();
    membership_events(inner, id, kind, false, seq);
    let groups: Vec<String> = inner
        .state
        .objects
        .values()
        .filter(|g| g.kind == Kind::Group && g.internal.members.contains(id))
        .map(|g| g.id().to_owned())
        .collect();
    for group in groups {
        if let Some(g) = inner.state.objects.get_mut(&group) {
            g.internal.members.remove(id);
        }
        inner.touch(&group);
    }
    let assignments: Vec<String> = inner
        .state
        .assignments
        .iter()
        .filter(|(_, a)| {
            a.get("principalId").and_then(Value::as_str) == Some(id)
                || a.get("resourceId").and_then(Value::as_str) == Some(id)
        })
        .map(|(aid, _)| aid.clone())
        .collect();
    for assignment in assignments {
        inner.remove_assignment(&assignment);
    }
    inner.remove_object(id);
}

// https://learn.microsoft.com/en-us/graph/api/user-delete?view=graph-rest-1.0
// https://learn.microsoft.com/en-us/graph/api/group-delete?view=graph-rest-1.0
/// `DELETE /users/{id}`, `DELETE /groups/{id}`: to deleted items, restorable for 30 days (the
/// group page: "both Microsoft 365 and security groups").
pub fn delete(ctx: &Ctx<'_>, kind: Kind, key: &str) -> GraphResult {
    match kind {
        Kind::User => USER_DELETE.check(ctx.caller)?,
        _ => GROUP_DELETE.check(ctx.caller)?,
    }
    require_admin(ctx)?;
    ctx.write(|inner| {
        let object = find(&inner.state, kind, key).ok_or_else(|| GraphError::not_found(key))?;
        let id = object.id().to_owned();
        // Privileged administrators: only a signed-in administrator through an app that holds
        // Directory.AccessAsUser.All (the user-delete page).
        if super::roles::is_privileged(object)
            && !(ctx.caller.delegated && ctx.caller.has("Directory.AccessAsUser.All"))
        {
            return Err(GraphError::forbidden());
        }
        if id == ctx.caller.object_id {
            return Err(GraphError::bad_request(
                "Request_BadRequest",
                "The signed-in user cannot delete themselves.",
            ));
        }
        soft_delete(inner, &id);
        Ok(GraphResponse::no_content())
    })
}

fn directory_object(ctx: &Ctx<'_>, object: &DirObject, select: Option<&[String]>) -> Value {
    let mut map = Map::new();
    map.insert(
        "@odata.context".into(),
        json!(ctx.context("directoryObjects/$entity")),
    );
    map.insert("@odata.type".into(), json!(object.kind.odata_type()));
    map.extend(query::render(object, select));
    Value::Object(map)
}

// https://learn.microsoft.com/en-us/graph/api/user-list-manager?view=graph-rest-1.0
/// `GET /users/{id}/manager`
pub fn manager_get(ctx: &Ctx<'_>, key: &str) -> GraphResult {
    USER_READ.check(ctx.caller)?;
    ctx.app.store.read(|state| {
        let select = query::select_in(Kind::User, ctx.req, false, Some(state))?;
        let user = find(state, Kind::User, key).ok_or_else(|| GraphError::not_found(key))?;
        let manager = user
            .internal
            .manager
            .as_deref()
            .and_then(|m| state.live(m))
            .ok_or_else(|| GraphError::not_found("manager"))?;
        Ok(GraphResponse::ok(directory_object(
            ctx,
            manager,
            select.as_deref(),
        )))
    })
}

// https://learn.microsoft.com/en-us/graph/api/user-post-manager?view=graph-rest-1.0
/// `PUT /users/{id}/manager/$ref`
pub fn manager_set(ctx: &Ctx<'_>, key: &str) -> GraphResult {
    USER_WRITE.check(ctx.caller)?;
    require_admin(ctx)?;
    let reference = reference_body(ctx)?;
    ctx.write(|inner| {
        let user_id = find(&inner.state, Kind::User, key)
            .ok_or_else(|| GraphError::not_found(key))?
            .id()
            .to_owned();
        let manager = resolve_reference(&inner.state, &reference)?;
        not_replicated_yet(ctx, &[&user_id, manager.id()])?;
        if manager.kind != Kind::User {
            return Err(GraphError::bad_request(
                "Request_BadRequest",
                &format!("Invalid object identifier '{reference}'."),
            ));
        }
        let manager_id = manager.id().to_owned();
        if manager_id == user_id {
            return Err(GraphError::bad_request(
                "Request_BadRequest",
                "A user cannot be their own manager.",
            ));
        }
        let seq = inner.next_seq();
        if let Some(user) = inner.state.objects.get_mut(&user_id)
            && user.internal.manager.as_deref() != Some(manager_id.as_str())
        {
            user.internal.manager = Some(manager_id);
            user.prop_seq.insert("manager".into(), seq);
        }
        inner.touch(&user_id);
        Ok(GraphResponse::no_content())
    })
}

// https://learn.microsoft.com/en-us/graph/api/user-revokesigninsessions?view=graph-rest-1.0
const REVOKE_SESSIONS: Perm = Perm {
    delegated: &[
        "User.RevokeSessions.All",
        "User.ReadWrite.All",
        "Directory.ReadWrite.All",
    ],
    application: &[
        "User.RevokeSessions.All",
        "User.ReadWrite.All",
        "Directory.ReadWrite.All",
    ],
};

/// `POST /users/{id}/revokeSignInSessions`: invalidates the user's refresh tokens and session
/// cookies (the emulator keeps when, as `signInSessionsValidFromDateTime`); answers `{"value":
/// true}`. A privileged user's sessions cannot be revoked by an app (403), as Graph refuses.
pub fn revoke_sign_in_sessions(ctx: &Ctx<'_>, key: &str) -> GraphResult {
    REVOKE_SESSIONS.check(ctx.caller)?;
    require_admin(ctx)?;
    ctx.write(|inner| {
        let user = find(&inner.state, Kind::User, key).ok_or_else(|| GraphError::not_found(key))?;
        if super::roles::is_privileged(user) && !ctx.caller.delegated {
            return Err(GraphError::forbidden());
        }
        let id = user.id().to_owned();
        let seq = inner.next_seq();
        if let Some(user) = inner.state.objects.get_mut(&id) {
            user.set(
                "signInSessionsValidFromDateTime",
                json!(rfc3339(unix_now())),
                seq,
            );
        }
        inner.touch(&id);
        Ok(GraphResponse::ok(json!({
            "@odata.context": ctx.context("Edm.Boolean"),
            "value": true,
        })))
    })
}

// https://learn.microsoft.com/en-us/graph/api/user-delete-manager?view=graph-rest-1.0
/// `DELETE /users/{id}/manager/$ref`
pub fn manager_remove(ctx: &Ctx<'_>, key: &str) -> GraphResult {
    USER_WRITE.check(ctx.caller)?;
    require_admin(ctx)?;
    ctx.write(|inner| {
        let user = find(&inner.state, Kind::User, key).ok_or_else(|| GraphError::not_found(key))?;
        let user_id = user.id().to_owned();
        if user.internal.manager.is_none() {
            return Err(GraphError::not_found("manager"));
        }
        let seq = inner.next_seq();
        if let Some(user) = inner.state.objects.get_mut(&user_id) {
            user.internal.manager = None;
            user.prop_seq.insert("manager".into(), seq);
        }
        inner.touch(&user_id);
        Ok(GraphResponse::no_content())
    })
}

/// `$select` on a collection of directoryObjects: any property of users or groups.
pub fn directory_select(ctx: &Ctx<'_>) -> Result<Option<Vec<String>>, GraphError> {
    match query::select(Kind::User, ctx.req, false) {
        Ok(select) => Ok(select),
        Err(_) => match query::select(Kind::Group, ctx.req, false) {
            Ok(select) => Ok(select),
            Err(error) => Err(error),
        },
    }
    .map(|select| {
        select.map(|names| {
            let mut all = names;
            if let Some(raw) = ctx.req.param("$select") {
                for name in raw.split(',').map(str::trim) {
                    for kind in [Kind::User, Kind::Group, Kind::ServicePrincipal] {
                        if let Some(def) = kind.property(name)
                            && !all.iter().any(|n| n == def.name)
                        {
                            all.push(def.name.to_owned());
                        }
                    }
                }
            }
            all
        })
    })
}

pub fn directory_page(
    ctx: &Ctx<'_>,
    items: Vec<&DirObject>,
    select: Option<&[String]>,
) -> Result<Value, GraphError> {
    Ok(page(
        ctx,
        items,
        &PageSpec {
            context: ctx.context("directoryObjects"),
            select,
            order: None,
            top: query::top(ctx.req)?,
            after: query::after(ctx.req)?,
            count: ctx.req.advanced(),
            typed: Typed::Limited,
        },
    ))
}

// https://learn.microsoft.com/en-us/graph/api/group-list-members?view=graph-rest-1.0
const MEMBERS_READ: Perm = Perm {
    delegated: &[
        "GroupMember.Read.All",
        "Directory.Read.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "GroupMember.ReadWrite.All",
    ],
    application: &[
        "GroupMember.Read.All",
        "Directory.Read.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "GroupMember.ReadWrite.All",
    ],
};
// https://learn.microsoft.com/en-us/graph/api/group-list-memberof?view=graph-rest-1.0
const GROUP_MEMBER_OF_READ: Perm = Perm {
    delegated: &[
        "GroupMember.Read.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
        "Group.Read.All",
    ],
    application: &[
        "GroupMember.Read.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
        "Group.Read.All",
    ],
};
// https://learn.microsoft.com/en-us/graph/api/user-list-memberof?view=graph-rest-1.0
// ("Permissions for another user's direct memberships")
const USER_MEMBER_OF_READ: Perm = Perm {
    delegated: &[
        "User.Read.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
        "GroupMember.Read.All",
    ],
    application: &["Directory.Read.All", "Directory.ReadWrite.All"],
};

// https://learn.microsoft.com/en-us/graph/api/group-list-members?view=graph-rest-1.0
/// `GET /groups/{id}/members`
pub fn members_list(ctx: &Ctx<'_>, key: &str) -> GraphResult {
    MEMBERS_READ.check(ctx.caller)?;
    group_relation(ctx, key, |group| &group.internal.members)
}

/// A page of a group's members or owners (live ones).
fn group_relation(
    ctx: &Ctx<'_>,
    key: &str,
    relation: impl Fn(&DirObject) -> &std::collections::BTreeSet<String>,
) -> GraphResult {
    let select = directory_select(ctx)?;
    ctx.app.store.read(|state| {
        let group = find(state, Kind::Group, key).ok_or_else(|| GraphError::not_found(key))?;
        let items: Vec<&DirObject> = relation(group)
            .iter()
            .filter_map(|id| state.live(id))
            .collect();
        Ok(GraphResponse::ok(directory_page(
            ctx,
            items,
            select.as_deref(),
        )?))
    })
}

// https://learn.microsoft.com/en-us/graph/api/user-list-memberof?view=graph-rest-1.0
// https://learn.microsoft.com/en-us/graph/api/group-list-memberof?view=graph-rest-1.0
/// `GET /users/{id}/memberOf`, `GET /groups/{id}/memberOf`
pub fn member_of(ctx: &Ctx<'_>, kind: Kind, key: &str) -> GraphResult {
    match kind {
        Kind::User => USER_MEMBER_OF_READ.check(ctx.caller)?,
        _ => GROUP_MEMBER_OF_READ.check(ctx.caller)?,
    }
    let select = directory_select(ctx)?;
    ctx.app.store.read(|state| {
        let object = find(state, kind, key).ok_or_else(|| GraphError::not_found(key))?;
        let id = object.id();
        let items: Vec<&DirObject> = state
            .objects
            .values()
            .filter(|g| g.is_live() && g.kind == Kind::Group && g.internal.members.contains(id))
            .collect();
        Ok(GraphResponse::ok(directory_page(
            ctx,
            items,
            select.as_deref(),
        )?))
    })
}

/// A user or group made moments ago is not yet on every directory replica: a `$ref` write that
/// names it answers 404 as if it did not exist, until it has replicated ("Known issues with
/// Microsoft Graph" and the Entra sync guidance: add members after a short wait, and retry 404s for
/// new objects). Off unless the `object_replication_ms` fault is set.
fn not_replicated_yet(ctx: &Ctx<'_>, ids: &[&str]) -> Result<(), GraphError> {
    let lag = ctx.app.object_replication();
    match ids.iter().find(|id| ctx.app.younger_than(id, lag)) {
        Some(id) => Err(GraphError::not_found(id)),
        None => Ok(()),
    }
}

// https://learn.microsoft.com/en-us/graph/api/group-post-members?view=graph-rest-1.0
/// `POST /groups/{id}/members/$ref`
pub fn member_add(ctx: &Ctx<'_>, key: &str) -> GraphResult {
    MEMBER_WRITE.check(ctx.caller)?;
    require_admin(ctx)?;
    let reference = reference_body(ctx)?;
    ctx.write(|inner| {
        let group = find(&inner.state, Kind::Group, key).ok_or_else(|| GraphError::not_found(key))?;
        let group_id = group.id().to_owned();
        if group.list_prop("groupTypes").iter().any(|t| t.eq_ignore_ascii_case("DynamicMembership")) {
            return Err(GraphError::bad_request(
                "Request_BadRequest",
                "Insufficient privileges to complete the operation. Members of a group with dynamic membership cannot be added or removed.",
            ));
        }
        let member = resolve_reference(&inner.state, &reference)?;
        let (member_id, member_kind) = (member.id().to_owned(), member.kind);
        not_replicated_yet(ctx, &[&group_id, &member_id])?;
        if member_id == group_id {
            return Err(GraphError::bad_request("Request_BadRequest", "A group cannot be a member of itself."));
        }
        if group.internal.members.contains(&member_id) {
            return Err(already_member());
        }
        let seq = inner.next_seq();
        if let Some(group) = inner.state.objects.get_mut(&group_id) {
            group.internal.members.insert(member_id.clone());
        }
        inner.touch(&group_id);
        inner.member_event(MemberEvent {
            seq,
            group: group_id,
            member: member_id,
            member_kind,
            added: true,
        });
        Ok(GraphResponse::no_content())
    })
}

// https://learn.microsoft.com/en-us/graph/api/group-delete-members?view=graph-rest-1.0
/// `DELETE /groups/{id}/members/{memberId}/$ref`
pub fn member_remove(ctx: &Ctx<'_>, key: &str, member: &str) -> GraphResult {
    MEMBER_WRITE.check(ctx.caller)?;
    require_admin(ctx)?;
    let member = member.to_ascii_lowercase();
    ctx.write(|inner| {
        let group =
            find(&inner.state, Kind::Group, key).ok_or_else(|| GraphError::not_found(key))?;
        let group_id = group.id().to_owned();
        if !group.internal.members.contains(&member) || inner.state.live(&member).is_none() {
            return Err(GraphError::not_found(&member));
        }
        let member_kind = inner.state.live(&member).map_or(Kind::User, |m| m.kind);
        let seq = inner.next_seq();
        if let Some(group) = inner.state.objects.get_mut(&group_id) {
            group.internal.members.remove(&member);
        }
        inner.touch(&group_id);
        inner.member_event(MemberEvent {
            seq,
            group: group_id,
            member,
            member_kind,
            added: false,
        });
        Ok(GraphResponse::no_content())
    })
}

// https://learn.microsoft.com/en-us/graph/api/group-list-owners?view=graph-rest-1.0
/// `GET /groups/{id}/owners`
pub fn owners_list(ctx: &Ctx<'_>, key: &str) -> GraphResult {
    GROUP_READ.check(ctx.caller)?;
    group_relation(ctx, key, |group| &group.internal.owners)
}

// https://learn.microsoft.com/en-us/graph/api/group-post-owners?view=graph-rest-1.0
/// `POST /groups/{id}/owners/$ref`
pub fn owner_add(ctx: &Ctx<'_>, key: &str) -> GraphResult {
    GROUP_WRITE.check(ctx.caller)?;
    require_admin(ctx)?;
    let reference = reference_body(ctx)?;
    ctx.write(|inner| {
        let group_id = find(&inner.state, Kind::Group, key).ok_or_else(|| GraphError::not_found(key))?.id().to_owned();
        let owner = resolve_reference(&inner.state, &reference)?;
        if owner.kind == Kind::Group {
            return Err(GraphError::bad_request("Request_BadRequest", &format!("Invalid object identifier '{reference}'.")));
        }
        let owner_id = owner.id().to_owned();
        let Some(group) = inner.state.objects.get_mut(&group_id) else {
            return Err(GraphError::not_found(key));
        };
        if !group.internal.owners.insert(owner_id) {
            return Err(GraphError::bad_request(
                "Request_BadRequest",
                "One or more added object references already exist for the following modified properties: 'owners'.",
            ));
        }
        inner.next_seq();
        inner.touch(&group_id);
        Ok(GraphResponse::no_content())
    })
}

// https://learn.microsoft.com/en-us/graph/api/group-delete-owners?view=graph-rest-1.0
/// `DELETE /groups/{id}/owners/{ownerId}/$ref`
pub fn owner_remove(ctx: &Ctx<'_>, key: &str, owner: &str) -> GraphResult {
    GROUP_WRITE.check(ctx.caller)?;
    require_admin(ctx)?;
    let owner = owner.to_ascii_lowercase();
    ctx.write(|inner| {
        let group_id = find(&inner.state, Kind::Group, key)
            .ok_or_else(|| GraphError::not_found(key))?
            .id()
            .to_owned();
        let Some(group) = inner.state.objects.get_mut(&group_id) else {
            return Err(GraphError::not_found(key));
        };
        if !group.internal.owners.remove(&owner) {
            return Err(GraphError::not_found(&owner));
        }
        inner.next_seq();
        inner.touch(&group_id);
        Ok(GraphResponse::no_content())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synced_users_keep_their_extension_attributes() {
        let state = tenant::create(&tenant::NewTenant {
            initial_domain: "contoso-lab.onmicrosoft.com".into(),
            verified_domains: Vec::new(),
        });
        let mut user = DirObject::new(Kind::User, "u", 1);
        let mut props = Map::new();
        props.insert(
            "onPremisesExtensionAttributes".into(),
            json!({"extensionAttribute1": "x"}),
        );
        assert!(check_user_values(&state, &props, Some(&user)).is_ok());
        user.set("onPremisesSyncEnabled", json!(true), 2);
        let refused = check_user_values(&state, &props, Some(&user)).expect_err("refused");
        assert_eq!(refused.status, 400);
        assert_eq!(
            refused.message,
            "Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration."
        );
    }

    #[test]
    fn complex_values_merge_key_by_key() {
        let keys = ["division".to_owned(), "costCenter".to_owned()];
        let stored = json!({"division": "Sales", "costCenter": "1"});
        assert_eq!(
            merged_complex(Some(&stored), &json!({"costCenter": null}), &keys),
            json!({"division": "Sales", "costCenter": null})
        );
        assert_eq!(
            merged_complex(None, &json!({"division": "R&D"}), &keys),
            json!({"division": "R&D", "costCenter": null})
        );
        assert_eq!(
            merged_complex(Some(&stored), &Value::Null, &keys),
            json!({"division": null, "costCenter": null})
        );
    }

    #[test]
    fn country_codes_and_language_tags() {
        assert_eq!(COUNTRY_CODES.split(' ').count(), 249);
        assert!(is_country_code("GB") && is_country_code("gb") && is_country_code("US"));
        assert!(!is_country_code("UK") && !is_country_code("EU") && !is_country_code("U"));
        for good in ["en", "en-US", "zh-Hans-CN", "de-CH-1996", "fil"] {
            assert!(valid_language(good), "{good}");
        }
        for bad in [
            "",
            "e",
            "en_US",
            "en--US",
            "en-",
            "-en",
            "english",
            "en-abcdefghi",
        ] {
            assert!(!valid_language(bad), "{bad}");
        }
    }

    #[test]
    fn upns_follow_the_documented_character_rules() {
        assert!(valid_upn("ann@corp.test"));
        assert!(valid_upn("#hash.o'neil~x@corp.test"));
        assert!(!valid_upn("ann smith@corp.test"));
        assert!(!valid_upn("ann@@corp.test"));
        assert!(!valid_upn(".ann@corp.test"));
        assert!(!valid_upn("ann(x)@corp.test"));
        assert!(!valid_upn(&format!("{}@corp.test", "a".repeat(65))));
    }

    #[test]
    fn mail_changes_keep_the_old_primary_as_an_alias() {
        let current = vec!["SMTP:old@x.test".to_owned(), "smtp:alias@x.test".to_owned()];
        assert_eq!(
            proxies_for_mail(&current, Some("new@x.test")),
            vec!["SMTP:new@x.test", "smtp:old@x.test", "smtp:alias@x.test"]
        );
        assert_eq!(
            proxies_for_mail(&current, Some("alias@x.test")),
            vec!["SMTP:alias@x.test", "smtp:old@x.test"]
        );
    }

    #[test]
    fn passwords_need_three_character_classes() {
        assert!(complex_enough("Passw0rd"));
        assert!(complex_enough("pass-w0rd"));
        assert!(!complex_enough("password1"));
        assert!(!complex_enough("Pw0!"));
    }

    #[test]
    fn security_identifiers_follow_the_object_id() {
        assert_eq!(
            security_identifier("00000001-0002-0003-0004-000000000005"),
            "S-1-12-1-1-196610-1024-83886080"
        );
    }
}
