//! Applications (with addPassword / removePassword), service principals and app role
//! assignments.

use serde_json::{Map, Value, json};

use super::objects::{self, check_body, entity, hard_delete, soft_delete};
use super::query::{self, ListQuery};
use super::{Ctx, GraphError, GraphResponse, GraphResult, Perm, require_admin};
use crate::identity::Caller;
use base64::Engine as _;

use crate::model::{DirObject, Kind, State, StoredKey};
use crate::tenant::{
    self, GRAPH_APP_ID, app_role_assignment, new_application, new_service_principal,
    password_credential,
};
use crate::util::{new_guid, parse_rfc3339, rfc3339, unix_now};
use crate::x509;

pub const APP_READ: Perm = Perm {
    delegated: &[
        "Application.Read.All",
        "Application.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
    application: &[
        "Application.Read.All",
        "Application.ReadWrite.OwnedBy",
        "Application.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ],
};
pub const APP_WRITE: Perm = Perm {
    delegated: &["Application.ReadWrite.All", "Directory.AccessAsUser.All"],
    application: &["Application.ReadWrite.OwnedBy", "Application.ReadWrite.All"],
};
const ASSIGNMENT_WRITE: Perm = Perm {
    delegated: &[
        "AppRoleAssignment.ReadWrite.All",
        "Directory.AccessAsUser.All",
    ],
    application: &["AppRoleAssignment.ReadWrite.All"],
};

/// An app that holds only Application.ReadWrite.OwnedBy sees and changes only what it owns.
fn owned_only(caller: &Caller) -> bool {
    !caller.delegated
        && caller.has("Application.ReadWrite.OwnedBy")
        && ![
            "Application.Read.All",
            "Application.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ]
        .iter()
        .any(|p| caller.has(p))
}

fn visible(caller: &Caller, object: &DirObject) -> bool {
    !owned_only(caller) || object.internal.owners.contains(&caller.object_id)
}

/// By object ID, or by the alternate key `appId='…'`.
fn find<'s>(state: &'s State, kind: Kind, key: &str) -> Option<&'s DirObject> {
    if let Some(app_id) = key
        .strip_prefix("appId=")
        .or_else(|| key.strip_prefix("appid="))
    {
        return match kind {
            Kind::Application => state.application_by_app_id(app_id),
            _ => state.service_principal_by_app_id(app_id),
        };
    }
    state.live_of(kind, &key.to_ascii_lowercase())
}

pub(super) fn find_visible<'s>(
    ctx: &Ctx<'_>,
    state: &'s State,
    kind: Kind,
    key: &str,
) -> Result<&'s DirObject, GraphError> {
    find(state, kind, key)
        .filter(|o| visible(ctx.caller, o))
        .ok_or_else(|| GraphError::not_found(key.trim_start_matches("appId=")))
}

// https://learn.microsoft.com/en-us/graph/api/application-list?view=graph-rest-1.0
// https://learn.microsoft.com/en-us/graph/api/serviceprincipal-list?view=graph-rest-1.0
/// `GET /applications`, `GET /servicePrincipals` (`$filter=appId eq '…'`)
pub fn list(ctx: &Ctx<'_>, kind: Kind) -> GraphResult {
    APP_READ.check(ctx.caller)?;
    let query = ListQuery::parse(kind, ctx.req)?;
    let search = query::search(kind, ctx.req)?;
    let indexed = ctx.indexed();
    let body = ctx.app.store.read(|state| {
        let items: Vec<&DirObject> = state
            .objects
            .values()
            .filter(|o| o.is_live() && o.kind == kind && visible(ctx.caller, o) && indexed(o))
            .filter(|o| query.matches(o))
            .filter(|o| search.as_ref().is_none_or(|s| query::search_matches(o, s)))
            .collect();
        objects::collection_page(ctx, kind, items, &query, query.select.as_deref(), None)
    });
    Ok(GraphResponse::ok(body))
}

// https://learn.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0
// https://learn.microsoft.com/en-us/graph/api/serviceprincipal-get?view=graph-rest-1.0
/// `GET /applications/{id}`, `GET /servicePrincipals/{id}` (also `(appId='…')`)
pub fn get(ctx: &Ctx<'_>, kind: Kind, key: &str) -> GraphResult {
    APP_READ.check(ctx.caller)?;
    let select = query::select(kind, ctx.req, false)?;
    ctx.app.store.read(|state| {
        let object = find_visible(ctx, state, kind, key)?;
        Ok(GraphResponse::ok(entity(ctx, object, select.as_deref())))
    })
}

fn check_app_values(
    kind: Kind,
    props: &Map<String, Value>,
    creating: bool,
) -> Result<(), GraphError> {
    if creating
        && kind == Kind::Application
        && props
            .get("displayName")
            .and_then(Value::as_str)
            .is_none_or(|t| t.trim().is_empty())
    {
        return Err(GraphError::required("displayName"));
    }
    if let Some(audience) = props.get("signInAudience")
        && !audience.as_str().is_some_and(|a| {
            [
                "AzureADMyOrg",
                "AzureADMultipleOrgs",
                "AzureADandPersonalMicrosoftAccount",
                "PersonalMicrosoftAccount",
            ]
            .contains(&a)
        })
    {
        return Err(GraphError::invalid_value(kind, "signInAudience"));
    }
    if let Some(required) = props.get("requiredResourceAccess") {
        let valid = required.as_array().is_some_and(|items| {
            items.iter().all(|item| {
                item.get("resourceAppId")
                    .and_then(Value::as_str)
                    .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok())
                    && item
                        .get("resourceAccess")
                        .and_then(Value::as_array)
                        .is_some_and(|access| {
                            access.iter().all(|a| {
                                a.get("id")
                                    .and_then(Value::as_str)
                                    .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok())
                                    && a.get("type")
                                        .and_then(Value::as_str)
                                        .is_some_and(|t| t == "Role" || t == "Scope")
                            })
                        })
            })
        });
        if !valid {
            return Err(GraphError::invalid_value(kind, "requiredResourceAccess"));
        }
    }
    Ok(())
}

/// An application's `keyCredentials` as a write gives them: each a certificate (`key`, DER in
/// base64) of type `AsymmetricX509Cert` and usage `Verify`, the kind a client assertion is
/// signed for. Returns what reads show (the key left out, as Graph leaves it out of reads) and
/// what is kept. The dates default to the certificate's validity and may only narrow it.
/// https://learn.microsoft.com/en-us/graph/api/resources/keycredential?view=graph-rest-1.0
fn key_credentials(kind: Kind, value: &Value) -> Result<(Value, Vec<StoredKey>), GraphError> {
    let invalid = || GraphError::invalid_value(kind, "keyCredentials");
    let items = value.as_array().ok_or_else(invalid)?;
    let mut public = Vec::new();
    let mut kept = Vec::new();
    for item in items {
        let text = |name: &str| item.get(name).and_then(Value::as_str);
        if text("type") != Some("AsymmetricX509Cert") || text("usage") != Some("Verify") {
            return Err(invalid());
        }
        let der = text("key")
            .and_then(|key| base64::engine::general_purpose::STANDARD.decode(key).ok())
            .ok_or_else(invalid)?;
        let certificate = x509::parse(&der).ok_or_else(invalid)?;
        let date = |name: &str| match item.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => parse_rfc3339(text).map(Some).ok_or_else(invalid),
            Some(_) => Err(invalid()),
        };
        let start = date("startDateTime")?.unwrap_or(certificate.not_before);
        let end = date("endDateTime")?.unwrap_or(certificate.not_after);
        if start < certificate.not_before || end > certificate.not_after || end <= start {
            return Err(GraphError::bad_request(
                "Request_BadRequest",
                "Key credential end date is invalid.",
            ));
        }
        let key_id = text("keyId")
            .filter(|id| uuid::Uuid::parse_str(id).is_ok())
            .map_or_else(new_guid, str::to_ascii_lowercase);
        public.push(json!({
            "customKeyIdentifier": base64::engine::general_purpose::STANDARD.encode(&certificate.sha1),
            "displayName": item.get("displayName").cloned().unwrap_or(Value::Null),
            "endDateTime": rfc3339(end),
            "key": null,
            "keyId": key_id,
            "startDateTime": rfc3339(start),
            "type": "AsymmetricX509Cert",
            "usage": "Verify",
        }));
        kept.push(StoredKey {
            key_id,
            certificate: base64::engine::general_purpose::STANDARD.encode(&der),
            start,
            end,
        });
    }
    Ok((Value::Array(public), kept))
}

/// Takes `keyCredentials` out of an application write's properties, checked (see
/// [`key_credentials`]); a service principal's are kept as given.
fn take_key_credentials(
    kind: Kind,
    props: &mut Map<String, Value>,
) -> Result<Option<(Value, Vec<StoredKey>)>, GraphError> {
    if kind != Kind::Application {
        return Ok(None);
    }
    props
        .remove("keyCredentials")
        .map(|value| key_credentials(kind, &value))
        .transpose()
}

/// Who may write applications besides administrators. Entra's default "Users can register
/// applications" lets any user register an app, which makes them its owner, and an owner may
/// manage the app (its properties and credentials); a service principal and permission grants
/// stay an administrator's.
/// https://learn.microsoft.com/en-us/entra/identity/role-based-access-control/delegate-app-roles
/// https://learn.microsoft.com/en-us/entra/identity/enterprise-apps/overview-assign-app-owners
fn require_app_writer(ctx: &Ctx<'_>, kind: Kind, key: Option<&str>) -> Result<(), GraphError> {
    if require_admin(ctx).is_ok() {
        return Ok(());
    }
    if kind != Kind::Application {
        return Err(GraphError::forbidden());
    }
    let Some(key) = key else {
        return Ok(());
    };
    let owns = ctx.app.store.read(|state| {
        find(state, kind, key)
            .is_some_and(|app| app.internal.owners.contains(&ctx.caller.object_id))
    });
    if owns {
        Ok(())
    } else {
        Err(GraphError::forbidden())
    }
}

/// The permission checks of an application or service principal write and its body's
/// properties, checked, under their canonical names. `key` is the object written, `None` for a
/// create.
fn write_body(
    ctx: &Ctx<'_>,
    kind: Kind,
    key: Option<&str>,
) -> Result<Map<String, Value>, GraphError> {
    let creating = key.is_none();
    APP_WRITE.check(ctx.caller)?;
    require_app_writer(ctx, kind, key)?;
    let body = ctx.req.json_body()?;
    check_body(kind, &body, creating)?;
    let props = objects::canonical(kind, &body);
    check_app_values(kind, &props, creating)?;
    Ok(props)
}

// https://learn.microsoft.com/en-us/graph/api/application-post-applications?view=graph-rest-1.0
// https://learn.microsoft.com/en-us/graph/api/serviceprincipal-post-serviceprincipals?view=graph-rest-1.0
/// `POST /applications`, `POST /servicePrincipals` (`{"appId": …}`)
pub fn create(ctx: &Ctx<'_>, kind: Kind) -> GraphResult {
    let mut props = write_body(ctx, kind, None)?;
    let keys = take_key_credentials(kind, &mut props)?;
    ctx.write(|inner| {
        super::directory::check_directory_quota(ctx.app, &inner.state)?;
        let seq = inner.next_seq();
        let id = new_guid();
        let initial = inner.state.initial_domain.clone();
        let tenant_id = inner.state.tenant_id.clone();
        let mut object = match kind {
            Kind::Application => {
                let display = props.get("displayName").and_then(Value::as_str).unwrap_or_default().to_owned();
                let mut app = new_application(&id, &new_guid(), &display, &initial, seq);
                for (key, value) in props {
                    app.set(&key, value, seq);
                }
                app
            }
            _ => {
                let Some(app_id) = props.get("appId").and_then(Value::as_str).map(str::to_owned) else {
                    return Err(GraphError::required("appId"));
                };
                if inner.state.service_principal_by_app_id(&app_id).is_some() {
                    return Err(GraphError::new(
                        409,
                        "Request_MultipleObjectsWithSameKeyValue",
                        &format!(
                            "The service principal cannot be created, updated, or restored because the service principal name {app_id} is already in use."
                        ),
                    ));
                }
                let Some(app) = inner.state.application_by_app_id(&app_id) else {
                    return Err(GraphError::bad_request(
                        "Request_BadRequest",
                        &format!("The appId '{app_id}' of the service principal does not reference a valid application object."),
                    ));
                };
                let display = app.str_prop("displayName").unwrap_or_default().to_owned();
                let audience = app.str_prop("signInAudience").unwrap_or("AzureADMyOrg").to_owned();
                let roles = app.props.get("appRoles").cloned().unwrap_or(json!([]));
                let mut names = vec![json!(app.str_prop("appId").unwrap_or_default())];
                names.extend(app.list_prop("identifierUris").into_iter().map(Value::String));
                let mut sp = new_service_principal(&id, app.str_prop("appId").unwrap_or_default(), &display, &tenant_id, &roles, &audience, seq);
                sp.set("servicePrincipalNames", Value::Array(names), seq);
                for (key, value) in props {
                    if key != "appId" {
                        sp.set(&key, value, seq);
                    }
                }
                sp
            }
        };
        object.internal.owners.insert(ctx.caller.object_id.clone());
        if let Some((public, kept)) = keys {
            for key in &kept {
                ctx.app.note_created(&key.key_id);
            }
            object.set("keyCredentials", public, seq);
            object.internal.keys = kept;
        }
        let body = entity(ctx, &object, None);
        ctx.app.note_created(object.id());
        inner.insert_object(object);
        Ok(GraphResponse::created(body))
    })
}

// https://learn.microsoft.com/en-us/graph/api/application-update?view=graph-rest-1.0
// https://learn.microsoft.com/en-us/graph/api/serviceprincipal-update?view=graph-rest-1.0
/// `PATCH /applications/{id}`, `PATCH /servicePrincipals/{id}`
pub fn update(ctx: &Ctx<'_>, kind: Kind, key: &str) -> GraphResult {
    let mut props = write_body(ctx, kind, Some(key))?;
    let keys = take_key_credentials(kind, &mut props)?;
    ctx.write(|inner| {
        let id = find_visible(ctx, &inner.state, kind, key)?.id().to_owned();
        if props
            .get("displayName")
            .is_some_and(|v| v.as_str().is_none_or(|t| t.trim().is_empty()))
        {
            return Err(GraphError::invalid_value(kind, "displayName"));
        }
        let seq = inner.next_seq();
        if let Some(object) = inner.state.objects.get_mut(&id) {
            for (name, value) in props {
                object.set(&name, value, seq);
            }
            // keyCredentials replace the whole collection, as a PATCH of a collection does.
            if let Some((public, kept)) = keys {
                for key in &kept {
                    if !object
                        .internal
                        .keys
                        .iter()
                        .any(|old| old.key_id == key.key_id)
                    {
                        ctx.app.note_created(&key.key_id);
                    }
                }
                object.set("keyCredentials", public, seq);
                object.internal.keys = kept;
            }
        }
        inner.touch(&id);
        Ok(GraphResponse::no_content())
    })
}

// https://learn.microsoft.com/en-us/graph/api/application-delete?view=graph-rest-1.0
// https://learn.microsoft.com/en-us/graph/api/serviceprincipal-delete?view=graph-rest-1.0
/// `DELETE /applications/{id}` (to deleted items; its service principal goes too),
/// `DELETE /servicePrincipals/{id}`
pub fn delete(ctx: &Ctx<'_>, kind: Kind, key: &str) -> GraphResult {
    APP_WRITE.check(ctx.caller)?;
    require_app_writer(ctx, kind, Some(key))?;
    ctx.write(|inner| {
        let object = find_visible(ctx, &inner.state, kind, key)?;
        let id = object.id().to_owned();
        let app_id = object.str_prop("appId").unwrap_or_default().to_owned();
        if app_id.eq_ignore_ascii_case(GRAPH_APP_ID)
            || tenant::FIRST_PARTY_PUBLIC_CLIENTS
                .iter()
                .any(|(a, _)| a.eq_ignore_ascii_case(&app_id))
        {
            return Err(GraphError::forbidden());
        }
        if kind == Kind::Application {
            if let Some(sp) = inner
                .state
                .service_principal_by_app_id(&app_id)
                .map(|sp| sp.id().to_owned())
            {
                hard_delete(inner, &sp);
            }
            soft_delete(inner, &id);
        } else {
            hard_delete(inner, &id);
        }
        Ok(GraphResponse::no_content())
    })
}

// https://learn.microsoft.com/en-us/graph/api/application-list-owners?view=graph-rest-1.0
/// `GET /applications/{id}/owners` (users and service principals)
pub fn owners_list(ctx: &Ctx<'_>, key: &str) -> GraphResult {
    APP_READ.check(ctx.caller)?;
    let select = objects::directory_select(ctx)?;
    ctx.app.store.read(|state| {
        let app = find_visible(ctx, state, Kind::Application, key)?;
        let items: Vec<&DirObject> = app
            .internal
            .owners
            .iter()
            .filter_map(|id| state.live(id))
            .collect();
        Ok(GraphResponse::ok(objects::directory_page(
            ctx,
            items,
            select.as_deref(),
        )?))
    })
}

// https://learn.microsoft.com/en-us/graph/api/application-addpassword?view=graph-rest-1.0
/// `POST /applications/{id}/addPassword`
pub fn add_password(ctx: &Ctx<'_>, key: &str) -> GraphResult {
    APP_WRITE.check(ctx.caller)?;
    require_app_writer(ctx, Kind::Application, Some(key))?;
    let body = if ctx.req.body.is_some() {
        ctx.req.json_body()?
    } else {
        Map::new()
    };
    let credential = body.get("passwordCredential").cloned().unwrap_or(json!({}));
    let now = unix_now();
    let date = |name: &str| -> Result<Option<i64>, GraphError> {
        match credential.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => parse_rfc3339(text)
                .map(Some)
                .ok_or_else(|| GraphError::bad_request("BadRequest", &format!("Cannot convert the literal '{text}' to the expected type 'Edm.DateTimeOffset'."))),
            Some(_) => Err(GraphError::bad_request("BadRequest", &format!("Invalid value for '{name}'."))),
        }
    };
    let start = date("startDateTime")?.unwrap_or(now);
    let end = date("endDateTime")?.unwrap_or(start + 2 * 365 * 86_400);
    if end <= start {
        return Err(GraphError::bad_request(
            "Request_BadRequest",
            "Invalid value specified for property 'endDateTime' of resource 'PasswordCredential'.",
        ));
    }
    let display_name = credential
        .get("displayName")
        .and_then(Value::as_str)
        .map(str::to_owned);
    ctx.write(|inner| {
        let id = find_visible(ctx, &inner.state, Kind::Application, key)?
            .id()
            .to_owned();
        let secret = tenant::random_client_secret();
        let (public, stored) = password_credential(display_name.as_deref(), &secret, start, end);
        let seq = inner.next_seq();
        if let Some(app) = inner.state.objects.get_mut(&id) {
            let mut credentials = app
                .props
                .get("passwordCredentials")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            credentials.push(public.clone());
            app.set("passwordCredentials", Value::Array(credentials), seq);
            ctx.app.note_created(&stored.key_id);
            app.internal.secrets.push(stored);
        }
        inner.touch(&id);
        let mut response = public;
        response["secretText"] = json!(secret);
        response["@odata.context"] = json!(ctx.context("microsoft.graph.passwordCredential"));
        Ok(GraphResponse::ok(response))
    })
}

// https://learn.microsoft.com/en-us/graph/api/application-removepassword?view=graph-rest-1.0
/// `POST /applications/{id}/removePassword`
pub fn remove_password(ctx: &Ctx<'_>, key: &str) -> GraphResult {
    APP_WRITE.check(ctx.caller)?;
    require_app_writer(ctx, Kind::Application, Some(key))?;
    let body = ctx.req.json_body()?;
    let key_id = body
        .get("keyId")
        .and_then(Value::as_str)
        .ok_or_else(|| GraphError::required("keyId"))?
        .to_ascii_lowercase();
    ctx.write(|inner| {
        let id = find_visible(ctx, &inner.state, Kind::Application, key)?
            .id()
            .to_owned();
        let seq = inner.next_seq();
        let Some(app) = inner.state.objects.get_mut(&id) else {
            return Err(GraphError::not_found(key));
        };
        if !app
            .internal
            .secrets
            .iter()
            .any(|s| s.key_id.eq_ignore_ascii_case(&key_id))
        {
            return Err(GraphError::bad_request(
                "Request_BadRequest",
                &format!("No password credential found with keyId '{key_id}'."),
            ));
        }
        app.internal
            .secrets
            .retain(|s| !s.key_id.eq_ignore_ascii_case(&key_id));
        let credentials: Vec<Value> = app
            .props
            .get("passwordCredentials")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| {
                !c.get("keyId")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.eq_ignore_ascii_case(&key_id))
            })
            .collect();
        app.set("passwordCredentials", Value::Array(credentials), seq);
        inner.touch(&id);
        Ok(GraphResponse::no_content())
    })
}

/// `appRoleAssignedTo` lists what is assigned on a resource; `appRoleAssignments` what a
/// principal holds.
fn on_resource(relation: &str) -> bool {
    relation.eq_ignore_ascii_case("appRoleAssignedTo")
}

// https://learn.microsoft.com/en-us/graph/api/serviceprincipal-list-approleassignedto?view=graph-rest-1.0
// https://learn.microsoft.com/en-us/graph/api/serviceprincipal-list-approleassignments?view=graph-rest-1.0
/// `GET /servicePrincipals/{id}/appRoleAssignedTo`, `GET /servicePrincipals/{id}/appRoleAssignments`
pub fn assignments_list(ctx: &Ctx<'_>, key: &str, relation: &str) -> GraphResult {
    APP_READ.check(ctx.caller)?;
    let field = if on_resource(relation) {
        "resourceId"
    } else {
        "principalId"
    };
    ctx.app.store.read(|state| {
        let sp = find(state, Kind::ServicePrincipal, key).ok_or_else(|| GraphError::not_found(key))?;
        let mut value: Vec<Value> = state
            .assignments
            .values()
            .filter(|a| a.get(field).and_then(Value::as_str) == Some(sp.id()))
            .map(|a| Value::Object(a.clone()))
            .collect();
        value.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        Ok(GraphResponse::ok(json!({
            "@odata.context": ctx.context(&format!("servicePrincipals('{}')/{}", sp.id(), if on_resource(relation) { "appRoleAssignedTo" } else { "appRoleAssignments" })),
            "value": value,
        })))
    })
}

// https://learn.microsoft.com/en-us/graph/api/serviceprincipal-post-approleassignedto?view=graph-rest-1.0
// https://learn.microsoft.com/en-us/graph/api/serviceprincipal-post-approleassignments?view=graph-rest-1.0
/// `POST /servicePrincipals/{id}/appRoleAssignedTo` (`principalId`, `resourceId`, `appRoleId`)
pub fn assignment_create(ctx: &Ctx<'_>, key: &str, relation: &str) -> GraphResult {
    ASSIGNMENT_WRITE.check(ctx.caller)?;
    APP_READ.check(ctx.caller)?;
    require_admin(ctx)?;
    let body = ctx.req.json_body()?;
    for name in body.keys() {
        if ![
            "principalId",
            "resourceId",
            "appRoleId",
            "principalType",
            "principalDisplayName",
            "resourceDisplayName",
        ]
        .iter()
        .any(|known| known.eq_ignore_ascii_case(name))
            && !name.starts_with('@')
        {
            return Err(GraphError::bad_request(
                "BadRequest",
                &format!(
                    "The property '{name}' does not exist on type 'microsoft.graph.appRoleAssignment'. Make sure to only use property names that are defined by the type or mark the type as open type."
                ),
            ));
        }
    }
    let field = |name: &str| {
        body.get(name)
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
    };
    let principal_id = field("principalId").ok_or_else(|| GraphError::required("principalId"))?;
    let resource_id = field("resourceId").ok_or_else(|| GraphError::required("resourceId"))?;
    let app_role_id = field("appRoleId").ok_or_else(|| GraphError::required("appRoleId"))?;
    ctx.write(|inner| {
        let sp = find(&inner.state, Kind::ServicePrincipal, key).ok_or_else(|| GraphError::not_found(key))?;
        let expected = if on_resource(relation) { &resource_id } else { &principal_id };
        if sp.id() != expected {
            return Err(GraphError::bad_request(
                "Request_BadRequest",
                &format!(
                    "The {} in the request body must match the service principal in the request URL.",
                    if on_resource(relation) { "resourceId" } else { "principalId" }
                ),
            ));
        }
        let resource = inner
            .state
            .live_of(Kind::ServicePrincipal, &resource_id)
            .ok_or_else(|| GraphError::not_found(&resource_id))?;
        let principal = inner.state.live(&principal_id).filter(|p| p.kind != Kind::Application).ok_or_else(|| GraphError::not_found(&principal_id))?;
        let member_type = if principal.kind == Kind::ServicePrincipal { "Application" } else { "User" };
        let role_exists = app_role_id == "00000000-0000-0000-0000-000000000000"
            || resource.props.get("appRoles").and_then(Value::as_array).is_some_and(|roles| {
                roles.iter().any(|role| {
                    role.get("id").and_then(Value::as_str).is_some_and(|id| id.eq_ignore_ascii_case(&app_role_id))
                        && role
                            .get("allowedMemberTypes")
                            .and_then(Value::as_array)
                            .is_some_and(|types| types.iter().any(|t| t.as_str() == Some(member_type)))
                })
            });
        if !role_exists {
            return Err(GraphError::bad_request(
                "Request_BadRequest",
                &format!(
                    "Permission being assigned was not found on application '{}'.",
                    resource.str_prop("appId").unwrap_or_default()
                ),
            ));
        }
        let duplicate = inner.state.assignments.values().any(|a| {
            a.get("principalId").and_then(Value::as_str) == Some(principal_id.as_str())
                && a.get("resourceId").and_then(Value::as_str) == Some(resource_id.as_str())
                && a.get("appRoleId").and_then(Value::as_str).is_some_and(|r| r.eq_ignore_ascii_case(&app_role_id))
        });
        if duplicate {
            return Err(GraphError::bad_request(
                "Request_BadRequest",
                "Permission being assigned already exists on the object.",
            ));
        }
        let assignment = app_role_assignment(principal, resource, &app_role_id);
        let context = ctx.context(&format!(
            "servicePrincipals('{}')/{}/$entity",
            sp.id(),
            if on_resource(relation) { "appRoleAssignedTo" } else { "appRoleAssignments" }
        ));
        inner.next_seq();
        if let Some(id) = assignment.get("id").and_then(Value::as_str) {
            ctx.app.note_created(id);
        }
        inner.put_assignment(assignment.clone());
        let mut body = Map::new();
        body.insert("@odata.context".into(), json!(context));
        body.extend(assignment);
        Ok(GraphResponse::created(Value::Object(body)))
    })
}

// https://learn.microsoft.com/en-us/graph/api/serviceprincipal-delete-approleassignedto?view=graph-rest-1.0
// https://learn.microsoft.com/en-us/graph/api/serviceprincipal-delete-approleassignments?view=graph-rest-1.0
/// `DELETE /servicePrincipals/{id}/appRoleAssignedTo/{assignmentId}`
pub fn assignment_delete(
    ctx: &Ctx<'_>,
    key: &str,
    relation: &str,
    assignment: &str,
) -> GraphResult {
    ASSIGNMENT_WRITE.check(ctx.caller)?;
    require_admin(ctx)?;
    let field = if on_resource(relation) {
        "resourceId"
    } else {
        "principalId"
    };
    ctx.write(|inner| {
        let sp = find(&inner.state, Kind::ServicePrincipal, key)
            .ok_or_else(|| GraphError::not_found(key))?;
        let sp_id = sp.id().to_owned();
        let matches = inner
            .state
            .assignments
            .get(assignment)
            .is_some_and(|a| a.get(field).and_then(Value::as_str) == Some(sp_id.as_str()));
        if !matches {
            return Err(GraphError::not_found(assignment));
        }
        inner.next_seq();
        inner.remove_assignment(assignment);
        Ok(GraphResponse::no_content())
    })
}

/// Expires every client secret of an application now (test hook).
pub fn expire_secrets(state: &mut State, app_id: &str) -> Option<String> {
    let id = state.application_by_app_id(app_id)?.id().to_owned();
    let now = unix_now();
    let seq = state.seq + 1;
    state.seq = seq;
    let app = state.objects.get_mut(&id)?;
    for secret in &mut app.internal.secrets {
        secret.end = secret.end.min(now - 1);
    }
    let credentials: Vec<Value> = app
        .props
        .get("passwordCredentials")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut c| {
            c["endDateTime"] = json!(rfc3339(now - 1));
            c
        })
        .collect();
    app.set("passwordCredentials", Value::Array(credentials), seq);
    Some(id)
}
