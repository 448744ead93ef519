//! The organization, its domains, on-premises directory synchronization settings, and deleted
//! items.

use serde_json::{Map, Value, json};

use super::apps::{APP_READ, APP_WRITE};
use super::objects::{
    self, GROUP_DELETE, GROUP_READ, PageSpec, Typed, USER_DELETE, USER_READ, check_user_uniqueness,
    hard_delete, member_events_of, membership_events, proxy_conflict,
};
use super::query::{self, ListQuery};
use super::{Ctx, GraphError, GraphResponse, GraphResult, Perm, require_admin};
use crate::app::{App, lock};
use crate::model::{DirObject, Kind, State};

const ORG_READ: Perm = Perm {
    delegated: &[
        "User.Read",
        "Organization.Read.All",
        "Directory.Read.All",
        "Organization.ReadWrite.All",
        "Directory.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
    application: &[
        "Organization.Read.All",
        "Directory.Read.All",
        "Organization.ReadWrite.All",
        "Directory.ReadWrite.All",
    ],
};
const ORG_WRITE: Perm = Perm {
    delegated: &["Organization.ReadWrite.All", "Directory.AccessAsUser.All"],
    application: &["Organization.ReadWrite.All"],
};
const DOMAIN_READ: Perm = Perm {
    delegated: &[
        "Domain.Read.All",
        "Domain.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
    application: &[
        "Domain.Read.All",
        "Domain.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ],
};
// Delegated only: "Application: Not supported." on both pages.
const SYNC_READ: Perm = Perm {
    delegated: &[
        "OnPremDirectorySynchronization.Read.All",
        "OnPremDirectorySynchronization.ReadWrite.All",
    ],
    application: &[],
};
const SYNC_WRITE: Perm = Perm {
    delegated: &["OnPremDirectorySynchronization.ReadWrite.All"],
    application: &[],
};

fn select_map(object: &Map<String, Value>, select: Option<&str>) -> Map<String, Value> {
    match select {
        None => object.clone(),
        Some(raw) => {
            let names: Vec<&str> = raw.split(',').map(str::trim).collect();
            object
                .iter()
                .filter(|(key, _)| names.iter().any(|n| n.eq_ignore_ascii_case(key)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }
    }
}

/// The default quota, and the one once the tenant has a verified domain of its own
/// ("Microsoft Entra service limits and restrictions",
/// https://learn.microsoft.com/en-us/entra/identity/users/directory-service-limits-restrictions).
const DEFAULT_QUOTA: u32 = 50_000;
const VERIFIED_DOMAIN_QUOTA: u32 = 300_000;

/// The tenant's directory size quota, `(used, total)`. `used` counts users, groups,
/// applications and service principals, live or in deleted items: deleted objects count until
/// they are permanently deleted (purged, or 30 days on; "Deletion and recovery of applications
/// FAQ", https://learn.microsoft.com/en-us/entra/identity/enterprise-apps/delete-recover-faq:
/// "After 30 days, they're permanently deleted, thus freeing up the quota"). `total` is the
/// configured quota, else the service limits page's default.
pub fn directory_size_quota(app: &App, state: &State) -> (u32, u32) {
    let used = state
        .objects
        .values()
        .filter(|o| o.is_live() || in_deleted_items(o))
        .count();
    let own_verified_domain = state.domains.iter().any(|d| {
        d.get("isVerified").and_then(Value::as_bool) == Some(true)
            && d.get("isInitial").and_then(Value::as_bool) != Some(true)
    });
    let total = lock(&app.directory_quota).unwrap_or(if own_verified_domain {
        VERIFIED_DOMAIN_QUOTA
    } else {
        DEFAULT_QUOTA
    });
    (u32::try_from(used).unwrap_or(u32::MAX), total)
}

/// Refuses a create once the quota is used up, as Entra does ("When the number of objects in
/// your tenant reach quota size, the directory will generate an error when trying to create a
/// new object",
/// https://learn.microsoft.com/en-us/azure/active-directory-b2c/tenant-management-directory-quota).
pub fn check_directory_quota(app: &App, state: &State) -> Result<(), GraphError> {
    let (used, total) = directory_size_quota(app, state);
    if used >= total {
        return Err(GraphError::quota_exceeded());
    }
    Ok(())
}

/// The organization as the request's version shows it: beta adds `directorySizeQuota`
/// (https://learn.microsoft.com/en-us/graph/api/resources/organization?view=graph-rest-beta).
/// v1.0 has no such property, so selecting it there is OData's 400 for an unknown property.
fn organization(ctx: &Ctx<'_>) -> Result<Map<String, Value>, GraphError> {
    let selects_quota = ctx.req.param("$select").is_some_and(|raw| {
        raw.split(',')
            .any(|name| name.trim().eq_ignore_ascii_case("directorySizeQuota"))
    });
    if !ctx.req.beta && selects_quota {
        return Err(GraphError::bad_request(
            "BadRequest",
            "Parsing OData Select and Expand failed: Could not find a property named 'directorySizeQuota' on type 'microsoft.graph.organization'.",
        ));
    }
    Ok(ctx.app.store.read(|state| {
        let mut org = state.organization.clone();
        if ctx.req.beta {
            let (used, total) = directory_size_quota(ctx.app, state);
            org.insert(
                "directorySizeQuota".into(),
                json!({"used": used, "total": total}),
            );
        }
        org
    }))
}

// https://learn.microsoft.com/en-us/graph/api/organization-list?view=graph-rest-1.0
// https://learn.microsoft.com/en-us/graph/api/organization-list?view=graph-rest-beta
/// `GET /organization`
pub fn organization_list(ctx: &Ctx<'_>) -> GraphResult {
    ORG_READ.check(ctx.caller)?;
    let org = organization(ctx)?;
    let select = ctx.req.param("$select");
    Ok(GraphResponse::ok(json!({
        "@odata.context": ctx.context("organization"),
        "value": [select_map(&org, select)],
    })))
}

// https://learn.microsoft.com/en-us/graph/api/organization-get?view=graph-rest-1.0
// https://learn.microsoft.com/en-us/graph/api/organization-get?view=graph-rest-beta
/// `GET /organization/{id}`
pub fn organization_get(ctx: &Ctx<'_>, id: &str) -> GraphResult {
    ORG_READ.check(ctx.caller)?;
    let org = organization(ctx)?;
    singleton(ctx, &org, id, "organization/$entity")
}

/// The tenant's one organization (or synchronization settings) by its ID, with `$select`.
fn singleton(ctx: &Ctx<'_>, object: &Map<String, Value>, id: &str, context: &str) -> GraphResult {
    if !object
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|own| own.eq_ignore_ascii_case(id))
    {
        return Err(GraphError::not_found(id));
    }
    let mut body = Map::new();
    body.insert("@odata.context".into(), json!(ctx.context(context)));
    body.extend(select_map(object, ctx.req.param("$select")));
    Ok(GraphResponse::ok(Value::Object(body)))
}

// https://learn.microsoft.com/en-us/graph/api/organization-update?view=graph-rest-1.0
/// `PATCH /organization/{id}`: the notification settings, and `onPremisesSyncEnabled` (turns
/// the tenant's directory synchronization on or off; a signed-in administrator only).
pub fn organization_update(ctx: &Ctx<'_>, id: &str) -> GraphResult {
    ORG_WRITE.check(ctx.caller)?;
    require_admin(ctx)?;
    let body = ctx.req.json_body()?;
    let writable = [
        "marketingNotificationEmails",
        "privacyProfile",
        "securityComplianceNotificationMails",
        "securityComplianceNotificationPhones",
        "technicalNotificationMails",
        "onPremisesSyncEnabled",
    ];
    let mut changes = Map::new();
    let current = ctx.app.store.read(|state| state.organization.clone());
    for (name, value) in &body {
        if name.starts_with('@') {
            continue;
        }
        let Some(canonical) = writable.iter().find(|w| w.eq_ignore_ascii_case(name)) else {
            if let Some((known, _)) = current.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                return Err(GraphError::read_only(known));
            }
            return Err(GraphError::bad_request(
                "BadRequest",
                &format!(
                    "The property '{name}' does not exist on type 'microsoft.graph.organization'. Make sure to only use property names that are defined by the type or mark the type as open type."
                ),
            ));
        };
        let valid = match *canonical {
            "onPremisesSyncEnabled" => value.is_boolean(),
            "privacyProfile" => value.is_object() || value.is_null(),
            _ => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string)),
        };
        if !valid {
            return Err(GraphError::bad_request(
                "BadRequest",
                &format!(
                    "Invalid value specified for property '{canonical}' of resource 'Organization'."
                ),
            ));
        }
        if *canonical == "onPremisesSyncEnabled" && !ctx.caller.delegated {
            return Err(GraphError::forbidden());
        }
        changes.insert((*canonical).to_owned(), value.clone());
    }
    ctx.write(|inner| {
        if !inner.state.tenant_id.eq_ignore_ascii_case(id) {
            return Err(GraphError::not_found(id));
        }
        inner.next_seq();
        inner.state.organization.extend(changes);
        inner.touch_organization();
        Ok(GraphResponse::no_content())
    })
}

// https://learn.microsoft.com/en-us/graph/api/domain-list?view=graph-rest-1.0
/// `GET /domains`
pub fn domains_list(ctx: &Ctx<'_>) -> GraphResult {
    DOMAIN_READ.check(ctx.caller)?;
    let domains = ctx.app.store.read(|state| state.domains.clone());
    let select = ctx.req.param("$select");
    let value: Vec<Value> = domains
        .iter()
        .filter_map(Value::as_object)
        .map(|d| Value::Object(select_map(d, select)))
        .collect();
    Ok(GraphResponse::ok(json!({
        "@odata.context": ctx.context("domains"),
        "value": value,
    })))
}

// https://learn.microsoft.com/en-us/graph/api/domain-get?view=graph-rest-1.0
/// `GET /domains/{name}`
pub fn domain_get(ctx: &Ctx<'_>, name: &str) -> GraphResult {
    DOMAIN_READ.check(ctx.caller)?;
    let domain = ctx.app.store.read(|state| {
        state
            .domains
            .iter()
            .find(|d| {
                d.get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| id.eq_ignore_ascii_case(name))
            })
            .cloned()
    });
    let Some(Value::Object(domain)) = domain else {
        return Err(GraphError::not_found(name));
    };
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(ctx.context("domains/$entity")),
    );
    body.extend(select_map(&domain, ctx.req.param("$select")));
    Ok(GraphResponse::ok(Value::Object(body)))
}

// https://learn.microsoft.com/en-us/graph/api/onpremisesdirectorysynchronization-get?view=graph-rest-1.0
/// `GET /directory/onPremisesSynchronization`
pub fn onprem_sync_list(ctx: &Ctx<'_>) -> GraphResult {
    SYNC_READ.check(ctx.caller)?;
    require_admin(ctx)?;
    let sync = ctx.app.store.read(|state| state.onprem_sync.clone());
    Ok(GraphResponse::ok(json!({
        "@odata.context": ctx.context("directory/onPremisesSynchronization"),
        "value": [select_map(&sync, ctx.req.param("$select"))],
    })))
}

// https://learn.microsoft.com/en-us/graph/api/onpremisesdirectorysynchronization-get?view=graph-rest-1.0
/// `GET /directory/onPremisesSynchronization/{id}`
pub fn onprem_sync_get(ctx: &Ctx<'_>, id: &str) -> GraphResult {
    SYNC_READ.check(ctx.caller)?;
    require_admin(ctx)?;
    let sync = ctx.app.store.read(|state| state.onprem_sync.clone());
    singleton(
        ctx,
        &sync,
        id,
        "directory/onPremisesSynchronization/$entity",
    )
}

// https://learn.microsoft.com/en-us/graph/api/onpremisesdirectorysynchronization-update?view=graph-rest-1.0
/// `PATCH /directory/onPremisesSynchronization/{id}` (`features`, `configuration`)
pub fn onprem_sync_update(ctx: &Ctx<'_>, id: &str) -> GraphResult {
    SYNC_WRITE.check(ctx.caller)?;
    require_admin(ctx)?;
    let body = ctx.req.json_body()?;
    ctx.write(|inner| {
        if !inner.state.tenant_id.eq_ignore_ascii_case(id) {
            return Err(GraphError::not_found(id));
        }
        let mut sync = inner.state.onprem_sync.clone();
        for (name, value) in &body {
            if name.starts_with('@') {
                continue;
            }
            let section = if name.eq_ignore_ascii_case("features") {
                "features"
            } else if name.eq_ignore_ascii_case("configuration") {
                "configuration"
            } else if name.eq_ignore_ascii_case("id") {
                return Err(GraphError::read_only("id"));
            } else {
                return Err(GraphError::bad_request(
                    "BadRequest",
                    &format!("The property '{name}' does not exist on type 'microsoft.graph.onPremisesDirectorySynchronization'. Make sure to only use property names that are defined by the type or mark the type as open type."),
                ));
            };
            let Some(changes) = value.as_object() else {
                return Err(GraphError::bad_request("BadRequest", &format!("Invalid value for property '{section}'.")));
            };
            let Some(Value::Object(target)) = sync.get_mut(section) else {
                return Err(GraphError::bad_request("BadRequest", &format!("Invalid value for property '{section}'.")));
            };
            for (key, change) in changes {
                if key.starts_with('@') {
                    continue;
                }
                let Some((known, current)) = target.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(k, v)| (k.clone(), v.clone())) else {
                    return Err(GraphError::bad_request(
                        "BadRequest",
                        &format!("The property '{key}' does not exist on type 'microsoft.graph.onPremisesDirectorySynchronization{}'. Make sure to only use property names that are defined by the type or mark the type as open type.",
                            if section == "features" { "Feature" } else { "Configuration" }),
                    ));
                };
                let same_type = matches!((&current, change), (Value::Bool(_), Value::Bool(_)) | (Value::Object(_), Value::Object(_)) | (Value::String(_), Value::String(_)) | (Value::Null, _) | (_, Value::Null));
                if !same_type {
                    return Err(GraphError::bad_request(
                        "BadRequest",
                        &format!("Cannot convert the literal '{change}' to the expected type of property '{known}'."),
                    ));
                }
                match (target.get_mut(&known), change) {
                    (Some(Value::Object(existing)), Value::Object(fields)) => {
                        existing.extend(fields.clone());
                    }
                    (_, _) => {
                        target.insert(known, change.clone());
                    }
                }
            }
        }
        inner.next_seq();
        inner.state.onprem_sync = sync;
        inner.touch_onprem_sync();
        Ok(GraphResponse::no_content())
    })
}

fn kind_from_cast(cast: &str) -> Option<Kind> {
    match cast.to_ascii_lowercase().as_str() {
        "microsoft.graph.user" => Some(Kind::User),
        "microsoft.graph.group" => Some(Kind::Group),
        "microsoft.graph.application" => Some(Kind::Application),
        "microsoft.graph.serviceprincipal" => Some(Kind::ServicePrincipal),
        _ => None,
    }
}

/// Reading a deleted item: its type's read permission (directory-deleteditems-get, -list).
fn read_perm(kind: Kind) -> &'static Perm {
    match kind {
        Kind::User => &USER_READ,
        Kind::Group => &GROUP_READ,
        _ => &APP_READ,
    }
}

/// Restoring: the table of directory-deleteditems-restore (User.ReadWrite.All,
/// Group.ReadWrite.All; applications as their writes).
fn restore_perm(kind: Kind) -> &'static Perm {
    match kind {
        Kind::User => &USER_DELETE,
        Kind::Group => &GROUP_DELETE,
        _ => &APP_WRITE,
    }
}

// Purging: the table of directory-deleteditems-delete. Users and groups: delegated only
// ("Application: Not supported."; "User.ReadWrite.All doesn't support app only hard delete",
// https://github.com/microsoftgraph/microsoft-graph-docs/pull/8489).
const USER_PURGE: Perm = Perm {
    delegated: &["User.ReadWrite.All"],
    application: &[],
};
const GROUP_PURGE: Perm = Perm {
    delegated: &["Group.ReadWrite.All"],
    application: &[],
};

fn purge_perm(kind: Kind) -> &'static Perm {
    match kind {
        Kind::User => &USER_PURGE,
        Kind::Group => &GROUP_PURGE,
        _ => &APP_WRITE,
    }
}

/// Deleted items are kept for 30 days.
fn in_deleted_items(object: &DirObject) -> bool {
    let horizon = crate::util::unix_now() - 30 * 86_400;
    object.deleted.as_ref().is_some_and(|d| d.at >= horizon)
}

fn deleted<'s>(state: &'s State, id: &str) -> Option<&'s DirObject> {
    state
        .objects
        .get(&id.to_ascii_lowercase())
        .filter(|o| in_deleted_items(o))
}

// https://learn.microsoft.com/en-us/graph/api/directory-deleteditems-list?view=graph-rest-1.0
/// `GET /directory/deletedItems/microsoft.graph.user` (and `.group`, `.application`)
pub fn deleted_list(ctx: &Ctx<'_>, cast: &str) -> GraphResult {
    let kind = kind_from_cast(cast).ok_or_else(|| {
        GraphError::bad_request(
            "Request_BadRequest",
            &format!("The type '{cast}' is not supported for deleted items. Use microsoft.graph.user, microsoft.graph.group, microsoft.graph.application or microsoft.graph.servicePrincipal."),
        )
    })?;
    read_perm(kind).check(ctx.caller)?;
    let mut query = ListQuery::parse(kind, ctx.req)?;
    if query.select.is_none() {
        let mut names = query::default_names(kind);
        if !names.iter().any(|n| n == "deletedDateTime") {
            names.push("deletedDateTime".into());
        }
        query.select = Some(names);
    }
    let body = ctx.app.store.read(|state| {
        let items: Vec<&DirObject> = state
            .objects
            .values()
            .filter(|o| o.kind == kind && deleted(state, o.id()).is_some())
            .filter(|o| query.matches(o))
            .collect();
        objects::page(
            ctx,
            items,
            &PageSpec {
                context: ctx.context(kind.collection()),
                select: query.select.as_deref(),
                order: None,
                top: query.top,
                after: query.after.clone(),
                count: ctx.req.advanced(),
                typed: Typed::Yes,
            },
        )
    });
    Ok(GraphResponse::ok(body))
}

fn typed_entity(ctx: &Ctx<'_>, object: &DirObject) -> Value {
    let mut map = Map::new();
    map.insert(
        "@odata.context".into(),
        json!(ctx.context("directoryObjects/$entity")),
    );
    map.insert("@odata.type".into(), json!(object.kind.odata_type()));
    map.extend(query::render(object, None));
    map.insert(
        "deletedDateTime".into(),
        object
            .props
            .get("deletedDateTime")
            .cloned()
            .unwrap_or(Value::Null),
    );
    Value::Object(map)
}

// https://learn.microsoft.com/en-us/graph/api/directory-deleteditems-get?view=graph-rest-1.0
/// `GET /directory/deletedItems/{id}`
pub fn deleted_get(ctx: &Ctx<'_>, id: &str) -> GraphResult {
    ctx.app.store.read(|state| {
        let object = deleted(state, id).ok_or_else(|| GraphError::not_found(id))?;
        read_perm(object.kind).check(ctx.caller)?;
        Ok(GraphResponse::ok(typed_entity(ctx, object)))
    })
}

// https://learn.microsoft.com/en-us/graph/api/directory-deleteditems-delete?view=graph-rest-1.0
/// `DELETE /directory/deletedItems/{id}`: deletes for good.
pub fn deleted_purge(ctx: &Ctx<'_>, id: &str) -> GraphResult {
    require_admin(ctx)?;
    ctx.write(|inner| {
        let object = deleted(&inner.state, id).ok_or_else(|| GraphError::not_found(id))?;
        purge_perm(object.kind).check(ctx.caller)?;
        let id = object.id().to_owned();
        hard_delete(inner, &id);
        Ok(GraphResponse::no_content())
    })
}

// https://learn.microsoft.com/en-us/graph/api/directory-deleteditems-restore?view=graph-rest-1.0
/// `POST /directory/deletedItems/{id}/restore`
pub fn deleted_restore(ctx: &Ctx<'_>, id: &str) -> GraphResult {
    require_admin(ctx)?;
    ctx.write(|inner| {
        let object = deleted(&inner.state, id).ok_or_else(|| GraphError::not_found(id))?;
        restore_perm(object.kind).check(ctx.caller)?;
        let id = object.id().to_owned();
        let kind = object.kind;
        // The uniqueness rules of a create, against the live objects, with the user's name
        // from before it was deleted.
        match kind {
            Kind::User => {
                let mut props = object.props.clone();
                if let Some(upn) = &object.internal.original_upn {
                    props.insert("userPrincipalName".into(), json!(upn));
                }
                check_user_uniqueness(&inner.state, Some(&id), &props)?;
            }
            Kind::Group
                if proxy_conflict(&inner.state, Some(&id), &object.list_prop("proxyAddresses")) =>
            {
                return Err(GraphError::conflict("proxyAddresses"));
            }
            Kind::Application
                if object
                    .str_prop("appId")
                    .is_some_and(|app_id| inner.state.application_by_app_id(app_id).is_some()) =>
            {
                return Err(GraphError::conflict("appId"));
            }
            _ => {}
        }
        let seq = inner.next_seq();
        if let Some(object) = inner.state.objects.get_mut(&id) {
            object.deleted = None;
            object.set("deletedDateTime", Value::Null, seq);
            if let Some(upn) = object.internal.original_upn.take() {
                object.set("userPrincipalName", json!(upn), seq);
            }
            // A restored object is new to every delta round that saw it go.
            let names: Vec<String> = object.props.keys().cloned().collect();
            for name in names {
                object.prop_seq.insert(name, seq);
            }
        }
        // Restored with its memberships: back in its groups, and (a group) with its members.
        membership_events(inner, &id, kind, true, seq);
        if kind == Kind::Group {
            member_events_of(inner, &id, seq);
        }
        inner.touch(&id);
        let body = inner
            .state
            .objects
            .get(&id)
            .map(|o| typed_entity(ctx, o))
            .unwrap_or(Value::Null);
        Ok(GraphResponse::ok(body))
    })
}
