//! Directory role assignments and activated directory roles: who holds which Microsoft Entra
//! role, and assigning or removing one.
//! https://learn.microsoft.com/en-us/graph/api/rbacapplication-list-roleassignments?view=graph-rest-1.0
//! https://learn.microsoft.com/en-us/graph/api/rbacapplication-post-roleassignments?view=graph-rest-1.0
//! https://learn.microsoft.com/en-us/graph/api/unifiedroleassignment-get?view=graph-rest-1.0
//! https://learn.microsoft.com/en-us/graph/api/unifiedroleassignment-delete?view=graph-rest-1.0
//! https://learn.microsoft.com/en-us/graph/api/directoryrole-list?view=graph-rest-1.0 (a role is
//! activated in a tenant, and listed there, once someone holds it; its object id is the tenant's
//! own, not the template id)
//!
//! A role is held by a user, a service principal or a role-assignable group
//! (`isAssignableToRole`), only at the tenant scope (`directoryScopeId` "/"). A user's Global
//! Administrator role is the flag `global_admin`; every other role, and Global Administrator
//! held by a service principal or group, is in `internal.directory_roles`. Members of a
//! role-assignable group hold its roles. An assignment's id is `{roleDefinitionId}_{principalId}`.
//! Only `$filter` on `principalId` or `roleDefinitionId` with `eq`, and
//! `$expand=roleDefinition`, are understood; anything else answers 400 as Graph does for an
//! unsupported query.

use serde_json::{Value, json};

use super::{Ctx, GraphError, GraphResponse, GraphResult, Perm};
use crate::model::{DirObject, Kind, State};

/// Built-in role definitions (their template ids are the same in every tenant), from
/// "Microsoft Entra built-in roles".
pub const ROLE_DEFINITIONS: &[(&str, &str)] = &[
    (
        "62e90394-69f5-4237-9190-012177145e10",
        "Global Administrator",
    ),
    (
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
        "Privileged Role Administrator",
    ),
    ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator"),
    (
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
        "Exchange Administrator",
    ),
    (
        "729827e3-9c14-49f7-bb1b-9608f156bbb8",
        "Helpdesk Administrator",
    ),
    ("f2ef992c-3afb-46b9-b7cf-a126ee74c451", "Global Reader"),
    (
        "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
        "Privileged Authentication Administrator",
    ),
];

pub const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
pub const PRIVILEGED_ROLE_ADMINISTRATOR: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";
pub const USER_ADMINISTRATOR: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
pub const HELPDESK_ADMINISTRATOR: &str = "729827e3-9c14-49f7-bb1b-9608f156bbb8";
pub const PRIVILEGED_AUTHENTICATION_ADMINISTRATOR: &str = "7be44c8a-adaf-4e2a-84d6-ab2649e08a13";

// The page's permission table (least to most privileged).
const ROLE_ASSIGNMENTS_READ: Perm = Perm {
    delegated: &[
        "RoleManagement.Read.Directory",
        "Directory.Read.All",
        "RoleManagement.ReadWrite.Directory",
        "Directory.ReadWrite.All",
    ],
    application: &[
        "RoleManagement.Read.Directory",
        "Directory.Read.All",
        "RoleManagement.ReadWrite.Directory",
        "Directory.ReadWrite.All",
    ],
};

// rbacapplication-post-roleassignments and unifiedroleassignment-delete: "Delegated (work or
// school account): RoleManagement.ReadWrite.Directory; Higher privileged permissions: Not
// available", the same for Application. A signed-in user must also hold Privileged Role
// Administrator (the least privileged role the pages name) or Global Administrator.
const ROLE_ASSIGNMENTS_WRITE: Perm = Perm {
    delegated: &["RoleManagement.ReadWrite.Directory"],
    application: &["RoleManagement.ReadWrite.Directory"],
};

/// The role definition ids a principal (user, service principal, group) is assigned directly.
pub fn roles_of(principal: &DirObject) -> Vec<String> {
    let mut roles: Vec<String> = principal
        .internal
        .directory_roles
        .iter()
        .filter(|role| role.as_str() != GLOBAL_ADMINISTRATOR)
        .cloned()
        .collect();
    if principal.internal.global_admin
        || principal
            .internal
            .directory_roles
            .contains(GLOBAL_ADMINISTRATOR)
    {
        roles.insert(0, GLOBAL_ADMINISTRATOR.to_owned());
    }
    roles
}

/// The live role-assignable groups (`isAssignableToRole`) an object is a direct member of.
fn role_assignable_groups<'s>(
    state: &'s State,
    id: &'s str,
) -> impl Iterator<Item = &'s DirObject> + 's {
    state.objects.values().filter(move |group| {
        group.is_live()
            && group.kind == Kind::Group
            && group.bool_prop("isAssignableToRole") == Some(true)
            && group.internal.members.contains(id)
    })
}

/// The roles a principal holds, each with the id of the assignment that gives it: its own, and
/// those of the role-assignable groups it is a member of.
pub fn held_roles(state: &State, principal: &DirObject) -> Vec<(String, String)> {
    let mut held: Vec<(String, String)> = roles_of(principal)
        .into_iter()
        .map(|role| {
            let assignment = assignment_id(&role, principal.id());
            (role, assignment)
        })
        .collect();
    for group in role_assignable_groups(state, principal.id()) {
        for role in roles_of(group) {
            let assignment = assignment_id(&role, group.id());
            held.push((role, assignment));
        }
    }
    held
}

/// The id of the assignment of `role` to `principal` (stable, and parsed back by
/// [`parse_assignment_id`]).
pub fn assignment_id(role: &str, principal: &str) -> String {
    format!("{role}_{principal}")
}

fn parse_assignment_id(id: &str) -> Option<(String, String)> {
    let (role, principal) = id.split_once('_')?;
    Some((role.to_ascii_lowercase(), principal.to_ascii_lowercase()))
}

fn role_name(id: &str) -> Option<&'static str> {
    ROLE_DEFINITIONS
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(id))
        .map(|(_, name)| *name)
}

// https://learn.microsoft.com/en-us/entra/identity/role-based-access-control/privileged-roles-permissions#who-can-reset-passwords
// (the rows each column ticks; "All other built-in and custom roles": only Privileged
// Authentication Administrator and Global Administrator). By name: the emulator knows only the
// roles of `ROLE_DEFINITIONS`, and a role it does not know is never held.
const USER_ADMINISTRATOR_RESETS: &[&str] = &[
    "Directory Readers",
    "Groups Administrator",
    "Guest Inviter",
    "Helpdesk Administrator",
    "Message Center Reader",
    "Password Administrator",
    "Reports Reader",
    "User Administrator",
    "User Experience Success Manager",
    "Usage Summary Reports Reader",
];
const HELPDESK_ADMINISTRATOR_RESETS: &[&str] = &[
    "Directory Readers",
    "Guest Inviter",
    "Helpdesk Administrator",
    "Message Center Reader",
    "Password Administrator",
    "Reports Reader",
    "User Experience Success Manager",
    "Usage Summary Reports Reader",
];

/// Whether a holder of `resetter` roles may reset the password of `target` ("Who can reset
/// passwords"). A user with no admin role who is a member of a role-assignable group counts as
/// an administrator there: only Privileged Authentication Administrator or Global Administrator.
pub fn may_reset_password(state: &State, resetter: &[String], target: &DirObject) -> bool {
    let has = |role: &str| resetter.iter().any(|held| held.eq_ignore_ascii_case(role));
    if has(GLOBAL_ADMINISTRATOR) || has(PRIVILEGED_AUTHENTICATION_ADMINISTRATOR) {
        return true;
    }
    if role_assignable_groups(state, target.id()).next().is_some() {
        return false;
    }
    let target_roles = roles_of(target);
    let covers = |allowed: &[&str]| {
        target_roles
            .iter()
            .all(|role| role_name(role).is_some_and(|name| allowed.contains(&name)))
    };
    (has(USER_ADMINISTRATOR) && covers(USER_ADMINISTRATOR_RESETS))
        || (has(HELPDESK_ADMINISTRATOR) && covers(HELPDESK_ADMINISTRATOR_RESETS))
}

/// Whether a user holds any directory role (Graph then refuses most changes to it by an app
/// with only User.ReadWrite.All).
pub fn is_privileged(user: &DirObject) -> bool {
    user.internal.global_admin || !user.internal.directory_roles.is_empty()
}

fn definition(id: &str) -> Value {
    let name = ROLE_DEFINITIONS
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(id))
        .map_or("Unknown role", |(_, name)| *name);
    json!({
        "id": id,
        "templateId": id,
        "displayName": name,
        "isBuiltIn": true,
        "isEnabled": true,
    })
}

/// The live objects that can hold a role.
fn principals(state: &State) -> impl Iterator<Item = &DirObject> {
    state.objects.values().filter(|object| {
        object.is_live()
            && matches!(
                object.kind,
                Kind::User | Kind::ServicePrincipal | Kind::Group
            )
    })
}

/// A unifiedRoleAssignment as Graph shows it.
fn assignment(role: &str, principal: &str) -> Value {
    json!({
        "id": assignment_id(role, principal),
        "principalId": principal,
        "roleDefinitionId": role,
        "directoryScopeId": "/",
    })
}

/// What the `$filter` asks for: `(property, value)`.
fn parse_filter(filter: &str) -> Result<(&'static str, String), GraphError> {
    let unsupported = || {
        GraphError::bad_request(
            "BadRequest",
            &format!("Invalid filter clause: the filter '{filter}' is not supported."),
        )
    };
    let (property, value) = filter.split_once(" eq ").ok_or_else(unsupported)?;
    let property = match property.trim() {
        p if p.eq_ignore_ascii_case("principalId") => "principalId",
        p if p.eq_ignore_ascii_case("roleDefinitionId") => "roleDefinitionId",
        _ => return Err(unsupported()),
    };
    let value = value
        .trim()
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .ok_or_else(unsupported)?;
    Ok((property, value.to_ascii_lowercase()))
}

/// `GET /roleManagement/directory/roleAssignments`
pub fn list(ctx: &Ctx<'_>) -> GraphResult {
    ROLE_ASSIGNMENTS_READ.check(ctx.caller)?;
    let filter = ctx.req.param("$filter").map(parse_filter).transpose()?;
    let expand = match ctx.req.param("$expand") {
        None => false,
        Some(expand) if expand.eq_ignore_ascii_case("roleDefinition") => true,
        Some(other) => {
            return Err(GraphError::bad_request(
                "BadRequest",
                &format!(
                    "Could not find a property named '{other}' on type 'microsoft.graph.unifiedRoleAssignment'."
                ),
            ));
        }
    };
    let value: Vec<Value> = ctx.app.store.read(|state| {
        principals(state)
            .flat_map(|principal| {
                roles_of(principal)
                    .into_iter()
                    .map(move |role| (principal.id().to_owned(), role))
            })
            .filter(|(principal, role)| match &filter {
                Some(("principalId", wanted)) => principal == wanted,
                Some((_, wanted)) => role == wanted,
                None => true,
            })
            .map(|(principal, role)| {
                let mut assignment = assignment(&role, &principal);
                if expand {
                    assignment["roleDefinition"] = definition(&role);
                }
                assignment
            })
            .collect()
    });
    Ok(GraphResponse::ok(json!({
        "@odata.context": ctx.context("roleManagement/directory/roleAssignments"),
        "value": value,
    })))
}

/// The object id of the role activated from `template` in `tenant` (stable, and not the
/// template id, as in Entra).
fn activated_role_id(tenant: &str, template: &str) -> String {
    let bytes = |id: &str| {
        uuid::Uuid::parse_str(id)
            .map(|id| *id.as_bytes())
            .unwrap_or_default()
    };
    let (tenant, template) = (bytes(tenant), bytes(template));
    let mut mixed = [0u8; 16];
    for (n, byte) in mixed.iter_mut().enumerate() {
        *byte = tenant[n] ^ template[n] ^ 0x5a;
    }
    uuid::Uuid::from_bytes(mixed).to_string()
}

/// The activated roles: `(object id, template id, name, holders)`.
fn activated(state: &State) -> Vec<(String, &'static str, &'static str, Vec<&DirObject>)> {
    ROLE_DEFINITIONS
        .iter()
        .filter_map(|(template, name)| {
            let holders: Vec<&DirObject> = state
                .objects
                .values()
                .filter(|object| {
                    object.is_live()
                        && matches!(
                            object.kind,
                            Kind::User | Kind::ServicePrincipal | Kind::Group
                        )
                })
                .filter(|holder| roles_of(holder).iter().any(|role| role == template))
                .collect();
            (!holders.is_empty()).then(|| {
                (
                    activated_role_id(&state.tenant_id, template),
                    *template,
                    *name,
                    holders,
                )
            })
        })
        .collect()
}

fn directory_role(id: &str, template: &str, name: &str) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.directoryRole",
        "id": id,
        "deletedDateTime": null,
        "displayName": name,
        "description": name,
        "roleTemplateId": template,
    })
}

/// `GET /directoryRoles`
pub fn directory_roles_list(ctx: &Ctx<'_>) -> GraphResult {
    ROLE_ASSIGNMENTS_READ.check(ctx.caller)?;
    let value: Vec<Value> = ctx.app.store.read(|state| {
        activated(state)
            .into_iter()
            .map(|(id, template, name, _)| directory_role(&id, template, name))
            .collect()
    });
    Ok(GraphResponse::ok(json!({
        "@odata.context": ctx.context("directoryRoles"),
        "value": value,
    })))
}

/// `GET /directoryRoles/{id}/members` (also `roleTemplateId={id}`).
pub fn directory_role_members(ctx: &Ctx<'_>, key: &str) -> GraphResult {
    ROLE_ASSIGNMENTS_READ.check(ctx.caller)?;
    let wanted = key
        .strip_prefix("roleTemplateId=")
        .map_or((key, false), |template| (template, true));
    ctx.app.store.read(|state| {
        let roles = activated(state);
        let role = roles.iter().find(|(id, template, _, _)| {
            if wanted.1 {
                template.eq_ignore_ascii_case(wanted.0)
            } else {
                id.eq_ignore_ascii_case(wanted.0)
            }
        });
        let Some((_, _, _, holders)) = role else {
            return Err(GraphError::not_found(key));
        };
        let value: Vec<Value> = holders
            .iter()
            .map(|holder| match holder.kind {
                Kind::User => json!({
                    "@odata.type": "#microsoft.graph.user",
                    "id": holder.id(),
                    "displayName": holder.str_prop("displayName"),
                    "userPrincipalName": holder.str_prop("userPrincipalName"),
                }),
                Kind::ServicePrincipal => json!({
                    "@odata.type": "#microsoft.graph.servicePrincipal",
                    "id": holder.id(),
                    "appId": holder.str_prop("appId"),
                    "displayName": holder.str_prop("displayName"),
                }),
                _ => json!({
                    "@odata.type": holder.kind.odata_type(),
                    "id": holder.id(),
                    "displayName": holder.str_prop("displayName"),
                }),
            })
            .collect();
        Ok(GraphResponse::ok(json!({
            "@odata.context": ctx.context("directoryObjects"),
            "value": value,
        })))
    })
}

/// A signed-in user must hold Privileged Role Administrator or Global Administrator to assign
/// or remove roles (an app needs only its permission).
fn require_role_manager(ctx: &Ctx<'_>, state: &State) -> Result<(), GraphError> {
    if !ctx.caller.delegated {
        return Ok(());
    }
    let allowed = state.live(&ctx.caller.object_id).is_some_and(|user| {
        held_roles(state, user)
            .iter()
            .any(|(role, _)| role == GLOBAL_ADMINISTRATOR || role == PRIVILEGED_ROLE_ADMINISTRATOR)
    });
    if allowed {
        Ok(())
    } else {
        Err(GraphError::forbidden())
    }
}

/// Whether `principal` holds `role` directly.
fn holds(principal: &DirObject, role: &str) -> bool {
    roles_of(principal).iter().any(|held| held == role)
}

/// `POST /roleManagement/directory/roleAssignments`
/// `{"roleDefinitionId", "principalId", "directoryScopeId": "/"}` → 201 with the assignment.
pub fn create(ctx: &Ctx<'_>) -> GraphResult {
    ROLE_ASSIGNMENTS_WRITE.check(ctx.caller)?;
    let body = ctx.req.json_body()?;
    for name in body.keys() {
        let known = ["roleDefinitionId", "principalId", "directoryScopeId"];
        if !name.starts_with('@') && !known.contains(&name.as_str()) {
            return Err(GraphError::bad_request(
                "BadRequest",
                &format!(
                    "The property '{name}' does not exist on type 'microsoft.graph.unifiedRoleAssignment'. Make sure to only use property names that are defined by the type or mark the type as open type."
                ),
            ));
        }
    }
    let text = |name: &str| -> Result<String, GraphError> {
        match body.get(name) {
            Some(Value::String(text)) if !text.trim().is_empty() => {
                Ok(text.trim().to_ascii_lowercase())
            }
            _ => Err(GraphError::required(name)),
        }
    };
    let role = text("roleDefinitionId")?;
    let principal_id = text("principalId")?;
    // The page: "directoryScopeId ... Either this property or appScopeId is required." Only
    // the tenant scope is emulated (administrative units and app scopes are not).
    let scope = text("directoryScopeId")?;
    if scope != "/" {
        return Err(GraphError::bad_request(
            "Request_BadRequest",
            &format!("The directoryScopeId '{scope}' is not supported; use '/'."),
        ));
    }
    let result = ctx.write(|inner| {
        require_role_manager(ctx, &inner.state)?;
        // An unknown role or principal: 404 Request_ResourceNotFound, the answer reported from
        // this very request (microsoftgraph/microsoft-graph-docs#18218).
        if role_name(&role).is_none() {
            return Err(GraphError::not_found(&role));
        }
        let principal = inner
            .state
            .live(&principal_id)
            .ok_or_else(|| GraphError::not_found(&principal_id))?;
        match principal.kind {
            Kind::User | Kind::ServicePrincipal => {}
            // "Only groups with isAssignableToRole set to true can be assigned roles"
            // (groups-concept); other groups are refused.
            Kind::Group if principal.bool_prop("isAssignableToRole") == Some(true) => {}
            _ => {
                return Err(GraphError::bad_request(
                    "Request_BadRequest",
                    "The principal is not a user, a service principal or a role-assignable group.",
                ));
            }
        }
        // The answer reported for a duplicate (dod-ccpo/atat#1554: code Request_BadRequest, this
        // message; the status is not shown there, and Request_BadRequest is Graph's 400).
        if holds(principal, &role) {
            return Err(GraphError::bad_request(
                "Request_BadRequest",
                "A conflicting object with one or more of the specified property values is present in the directory.",
            ));
        }
        let is_user = principal.kind == Kind::User;
        let Some(principal) = inner.state.objects.get_mut(&principal_id) else {
            return Err(GraphError::not_found(&principal_id));
        };
        if is_user && role == GLOBAL_ADMINISTRATOR {
            principal.internal.global_admin = true;
        } else {
            principal.internal.directory_roles.insert(role.clone());
        }
        let mut body = assignment(&role, &principal_id);
        body["@odata.context"] = json!(ctx.context("roleManagement/directory/roleAssignments/$entity"));
        Ok(GraphResponse::created(body))
    });
    if result.is_ok() {
        ctx.app.note_created(&assignment_id(&role, &principal_id));
    }
    result
}

/// The assignment an id names, if it exists: `(role, principal id)`.
fn existing(state: &State, id: &str) -> Option<(String, String)> {
    let (role, principal) = parse_assignment_id(id)?;
    let holder = principals(state).find(|object| object.id() == principal)?;
    holds(holder, &role).then_some((role, principal))
}

/// `GET /roleManagement/directory/roleAssignments/{id}`
pub fn get(ctx: &Ctx<'_>, id: &str) -> GraphResult {
    ROLE_ASSIGNMENTS_READ.check(ctx.caller)?;
    let (role, principal) = ctx
        .app
        .store
        .read(|state| existing(state, id))
        .ok_or_else(|| GraphError::not_found(id))?;
    let mut body = assignment(&role, &principal);
    body["@odata.context"] = json!(ctx.context("roleManagement/directory/roleAssignments/$entity"));
    Ok(GraphResponse::ok(body))
}

/// `DELETE /roleManagement/directory/roleAssignments/{id}` → 204.
pub fn delete(ctx: &Ctx<'_>, id: &str) -> GraphResult {
    ROLE_ASSIGNMENTS_WRITE.check(ctx.caller)?;
    ctx.write(|inner| {
        require_role_manager(ctx, &inner.state)?;
        let (role, principal) =
            existing(&inner.state, id).ok_or_else(|| GraphError::not_found(id))?;
        let Some(holder) = inner.state.objects.get_mut(&principal) else {
            return Err(GraphError::not_found(id));
        };
        if role == GLOBAL_ADMINISTRATOR {
            holder.internal.global_admin = false;
        }
        holder.internal.directory_roles.remove(&role);
        Ok(GraphResponse::no_content())
    })
}
