//! The organization, its domains, on-premises directory synchronization settings, and deleted
//! items.

use serde_json::{Map, Value, json};

use super::apps::{APP_READ, APP_WRITE};
use super::objects::{
    self, GROUP_READ, GROUP_WRITE, PageSpec, USER_READ, USER_WRITE, hard_delete, io_error,
    membership_events,
};
use super::query;
use super::{Ctx, GraphError, GraphResponse, GraphResult, Perm, require_admin};
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

// https://learn.microsoft.com/en-us/graph/api/organization-list?view=graph-rest-1.0
/// `GET /organization`
pub fn organization_list(ctx: &Ctx<'_>) -> GraphResult {
    ORG_READ.check(ctx.caller)?;
    let org = ctx.app.store.read(|state| state.organization.clone());
    let select = ctx.req.param("$select");
    Ok(GraphResponse::ok(json!({
        "@odata.context": ctx.context("organization"),
        "value": [select_map(&org, select)],
    })))
}

// https://learn.microsoft.com/en-us/graph/api/organization-get?view=graph-rest-1.0
/// `GET /organization/{id}`
pub fn organization_get(ctx: &Ctx<'_>, id: &str) -> GraphResult {
    ORG_READ.check(ctx.caller)?;
    let org = ctx.app.store.read(|state| state.organization.clone());
    if !org
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|own| own.eq_ignore_ascii_case(id))
    {
        return Err(GraphError::not_found(id));
    }
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(ctx.context("organization/$entity")),
    );
    body.extend(select_map(&org, ctx.req.param("$select")));
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
    let result = ctx.app.store.write(|inner| -> GraphResult {
        if !inner.state.tenant_id.eq_ignore_ascii_case(id) {
            return Err(GraphError::not_found(id));
        }
        inner.next_seq();
        inner.state.organization.extend(changes);
        inner.touch_organization();
        Ok(GraphResponse::no_content())
    });
    result.map_err(|e| io_error(&e))?
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
    if !sync
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|own| own.eq_ignore_ascii_case(id))
    {
        return Err(GraphError::not_found(id));
    }
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(ctx.context("directory/onPremisesSynchronization/$entity")),
    );
    body.extend(select_map(&sync, ctx.req.param("$select")));
    Ok(GraphResponse::ok(Value::Object(body)))
}

// https://learn.microsoft.com/en-us/graph/api/onpremisesdirectorysynchronization-update?view=graph-rest-1.0
/// `PATCH /directory/onPremisesSynchronization/{id}` (`features`, `configuration`)
pub fn onprem_sync_update(ctx: &Ctx<'_>, id: &str) -> GraphResult {
    SYNC_WRITE.check(ctx.caller)?;
    require_admin(ctx)?;
    let body = ctx.req.json_body()?;
    let result = ctx.app.store.write(|inner| -> GraphResult {
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
    });
    result.map_err(|e| io_error(&e))?
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

fn perms(kind: Kind) -> (&'static Perm, &'static Perm) {
    match kind {
        Kind::User => (&USER_READ, &USER_WRITE),
        Kind::Group => (&GROUP_READ, &GROUP_WRITE),
        _ => (&APP_READ, &APP_WRITE),
    }
}

/// Deleted items are kept for 30 days.
fn deleted<'s>(state: &'s State, id: &str) -> Option<&'s DirObject> {
    let horizon = crate::util::unix_now() - 30 * 86_400;
    state
        .objects
        .get(&id.to_ascii_lowercase())
        .filter(|o| o.deleted.as_ref().is_some_and(|d| d.at >= horizon))
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
    perms(kind).0.check(ctx.caller)?;
    let mut select = query::select(kind, ctx.req, false)?;
    if select.is_none() {
        let mut names: Vec<String> = kind
            .properties()
            .iter()
            .filter(|d| d.default)
            .map(|d| d.name.to_owned())
            .collect();
        if !names.iter().any(|n| n == "deletedDateTime") {
            names.push("deletedDateTime".into());
        }
        select = Some(names);
    }
    let filter = query::filter(kind, ctx.req)?;
    let top = query::top(ctx.req)?;
    let after = ctx
        .req
        .param("$skiptoken")
        .map(query::decode_position)
        .transpose()?;
    let body = ctx.app.store.read(|state| {
        let items: Vec<&DirObject> = state
            .objects
            .values()
            .filter(|o| o.kind == kind && deleted(state, o.id()).is_some())
            .filter(|o| filter.as_ref().is_none_or(|f| query::matches(o, f)))
            .collect();
        objects::page(
            ctx,
            items,
            &PageSpec {
                context: ctx.context(kind.collection()),
                select: select.as_deref(),
                order: None,
                top,
                after,
                count: ctx.req.advanced(),
                typed: true,
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
        perms(object.kind).0.check(ctx.caller)?;
        Ok(GraphResponse::ok(typed_entity(ctx, object)))
    })
}

// https://learn.microsoft.com/en-us/graph/api/directory-deleteditems-delete?view=graph-rest-1.0
/// `DELETE /directory/deletedItems/{id}`: deletes for good.
pub fn deleted_purge(ctx: &Ctx<'_>, id: &str) -> GraphResult {
    require_admin(ctx)?;
    let result = ctx.app.store.write(|inner| -> GraphResult {
        let object = deleted(&inner.state, id).ok_or_else(|| GraphError::not_found(id))?;
        perms(object.kind).1.check(ctx.caller)?;
        let id = object.id().to_owned();
        hard_delete(inner, &id);
        Ok(GraphResponse::no_content())
    });
    result.map_err(|e| io_error(&e))?
}

// https://learn.microsoft.com/en-us/graph/api/directory-deleteditems-restore?view=graph-rest-1.0
/// `POST /directory/deletedItems/{id}/restore`
pub fn deleted_restore(ctx: &Ctx<'_>, id: &str) -> GraphResult {
    require_admin(ctx)?;
    let result = ctx.app.store.write(|inner| -> GraphResult {
        let object = deleted(&inner.state, id).ok_or_else(|| GraphError::not_found(id))?;
        perms(object.kind).1.check(ctx.caller)?;
        let id = object.id().to_owned();
        let kind = object.kind;
        let original_upn = object.internal.original_upn.clone();
        let anchor = object.str_prop("onPremisesImmutableId").map(str::to_owned);
        let proxies: Vec<String> = object
            .list_prop("proxyAddresses")
            .iter()
            .map(|p| p.to_lowercase())
            .collect();
        let live_others = || {
            inner
                .state
                .objects
                .values()
                .filter(|o| o.is_live() && o.id() != id)
        };
        if let Some(upn) = &original_upn
            && live_others().any(|o| {
                o.kind == Kind::User
                    && o.str_prop("userPrincipalName")
                        .is_some_and(|u| u.eq_ignore_ascii_case(upn))
            })
        {
            return Err(GraphError::conflict("userPrincipalName"));
        }
        if let Some(anchor) = &anchor
            && live_others().any(|o| {
                o.kind == Kind::User && o.str_prop("onPremisesImmutableId") == Some(anchor.as_str())
            })
        {
            return Err(GraphError::conflict("onPremisesImmutableId"));
        }
        if !proxies.is_empty()
            && live_others().any(|o| {
                o.list_prop("proxyAddresses")
                    .iter()
                    .any(|p| proxies.contains(&p.to_lowercase()))
            })
        {
            return Err(GraphError::conflict("proxyAddresses"));
        }
        if kind == Kind::Application
            && let Some(app_id) = object.str_prop("appId")
            && inner.state.application_by_app_id(app_id).is_some()
        {
            return Err(GraphError::conflict("appId"));
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
        membership_events(inner, &id, kind, true, seq);
        inner.touch(&id);
        let body = inner
            .state
            .objects
            .get(&id)
            .map(|o| typed_entity(ctx, o))
            .unwrap_or(Value::Null);
        Ok(GraphResponse::ok(body))
    });
    result.map_err(|e| io_error(&e))?
}
