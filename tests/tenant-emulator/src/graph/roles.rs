//! Directory role assignments and activated directory roles, read-only: who holds which
//! Microsoft Entra role.
//! https://learn.microsoft.com/en-us/graph/api/rbacapplication-list-roleassignments?view=graph-rest-1.0
//! https://learn.microsoft.com/en-us/graph/api/directoryrole-list?view=graph-rest-1.0 (a role is
//! activated in a tenant, and listed there, once someone holds it; its object id is the tenant's
//! own, not the template id)
//!
//! The Global Administrator is the user flagged `global_admin`; other roles are assigned by the
//! test hook `RunningEmulator::assign_role` (the emulator has no `POST` for them). Only
//! `$filter` on `principalId` or `roleDefinitionId` with `eq`, and `$expand=roleDefinition`,
//! are understood; anything else answers 400 as Graph does for an unsupported query.

use serde_json::{Value, json};

use super::{Ctx, GraphError, GraphResponse, GraphResult, Perm};
use crate::model::DirObject;

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
];

pub const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";

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

/// The role definition ids a user holds.
pub fn roles_of(user: &DirObject) -> Vec<String> {
    let mut roles: Vec<String> = user.internal.directory_roles.iter().cloned().collect();
    if user.internal.global_admin {
        roles.insert(0, GLOBAL_ADMINISTRATOR.to_owned());
    }
    roles
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
        state
            .objects
            .values()
            .filter(|object| object.is_live() && object.kind == crate::model::Kind::User)
            .flat_map(|user| {
                roles_of(user)
                    .into_iter()
                    .map(move |role| (user.id().to_owned(), role))
            })
            .filter(|(principal, role)| match &filter {
                Some(("principalId", wanted)) => principal == wanted,
                Some((_, wanted)) => role == wanted,
                None => true,
            })
            .map(|(principal, role)| {
                let mut assignment = json!({
                    "id": format!("{role}_{principal}"),
                    "principalId": principal,
                    "roleDefinitionId": role,
                    "directoryScopeId": "/",
                });
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
fn activated(
    state: &crate::model::State,
) -> Vec<(String, &'static str, &'static str, Vec<&DirObject>)> {
    ROLE_DEFINITIONS
        .iter()
        .filter_map(|(template, name)| {
            let holders: Vec<&DirObject> = state
                .objects
                .values()
                .filter(|object| object.is_live() && object.kind == crate::model::Kind::User)
                .filter(|user| roles_of(user).iter().any(|role| role == template))
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
            .map(|user| {
                json!({
                    "@odata.type": "#microsoft.graph.user",
                    "id": user.id(),
                    "displayName": user.str_prop("displayName"),
                    "userPrincipalName": user.str_prop("userPrincipalName"),
                })
            })
            .collect();
        Ok(GraphResponse::ok(json!({
            "@odata.context": ctx.context("directoryObjects"),
            "value": value,
        })))
    })
}
