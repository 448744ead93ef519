//! Directory (Microsoft Entra ID) extensions: the definitions an application registers
//! (`/applications/{id}/extensionProperties`), and their values on users and groups
//! (`extension_{appId without hyphens}_{name}` in create and update bodies and in `$select`).
//! https://learn.microsoft.com/en-us/graph/api/resources/extensionproperty?view=graph-rest-1.0
//! https://learn.microsoft.com/en-us/graph/extensibility-overview#directory-microsoft-entra-id-extensions
//!
//! A definition is usable ("discoverable") in the tenant while its application is live and has
//! a service principal there: the extensibility overview says that deleting the owner app makes
//! its extensions and their data undiscoverable, and that restoring the app brings back the
//! definitions but not their use until a service principal exists again. Values stay stored on
//! the objects whatever happens to the definition, and come back when a definition of the same
//! name is registered again on the same app (the overview's way to recover them).

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::apps::find_visible;
use super::{Ctx, GraphError, GraphResponse, GraphResult, Perm, require_admin};
use crate::model::{DirObject, ExtensionProperty, Kind, State, is_extension_name};
use crate::util::{new_guid, parse_date_time_offset, rfc3339};

// https://learn.microsoft.com/en-us/graph/api/application-list-extensionproperty?view=graph-rest-1.0
// and …/extensionproperty-get: Application.Read.All, higher Application.ReadWrite.All and
// Directory.Read.All (and Application.ReadWrite.OwnedBy for apps).
const EXTENSION_READ: Perm = Perm {
    delegated: &[
        "Application.Read.All",
        "Application.ReadWrite.All",
        "Directory.Read.All",
    ],
    application: &[
        "Application.Read.All",
        "Application.ReadWrite.OwnedBy",
        "Application.ReadWrite.All",
        "Directory.Read.All",
    ],
};
// https://learn.microsoft.com/en-us/graph/api/application-post-extensionproperty?view=graph-rest-1.0
// and …/extensionproperty-delete: Application.ReadWrite.All or Directory.ReadWrite.All
// (delegated); Application.ReadWrite.OwnedBy (an app that owns the application),
// Application.ReadWrite.All or Directory.ReadWrite.All (application). A signed-in user must
// also hold Directory Writers, Cloud Application Administrator or Application Administrator
// (or Global Administrator): owning the application is not enough.
const EXTENSION_WRITE: Perm = Perm {
    delegated: &["Application.ReadWrite.All", "Directory.ReadWrite.All"],
    application: &[
        "Application.ReadWrite.OwnedBy",
        "Application.ReadWrite.All",
        "Directory.ReadWrite.All",
    ],
};

/// The data types a definition may have (application-post-extensionproperty, "Request body").
const DATA_TYPES: &[&str] = &[
    "Binary",
    "Boolean",
    "DateTime",
    "Integer",
    "LargeInteger",
    "String",
];

/// The resources a definition may target ("All values must be in PascalCase").
const TARGET_OBJECTS: &[&str] = &[
    "User",
    "Group",
    "AdministrativeUnit",
    "Application",
    "Device",
    "Organization",
];

/// The longest short name the emulator takes (Graph documents no limit; see the README).
pub const MAX_NAME_LEN: usize = 120;

/// "Only 100 extension values, across all types and all applications, can be written to any
/// single Microsoft Entra resource" (extensionProperty resource; each value of a multi-valued
/// extension counts).
pub const MAX_VALUES_PER_OBJECT: usize = 100;

/// `String` values: "256 characters maximum"; `Binary`: "256 bytes maximum".
const MAX_VALUE_LEN: usize = 256;

/// The definition of an extension usable on objects of `kind`: registered under that name
/// (any case) on a live application of the tenant that has a live service principal, and
/// targeting `kind`.
pub fn available<'s>(state: &'s State, kind: Kind, name: &str) -> Option<&'s ExtensionProperty> {
    state
        .objects
        .values()
        .filter(|o| o.is_live() && o.kind == Kind::Application)
        .filter(|app| {
            app.str_prop("appId")
                .is_some_and(|app_id| state.service_principal_by_app_id(app_id).is_some())
        })
        .flat_map(|app| app.internal.extension_properties.iter())
        .find(|definition| {
            definition.name.eq_ignore_ascii_case(name)
                && definition
                    .target_objects
                    .iter()
                    .any(|target| target == kind.resource_name())
        })
}

/// `$select` of an extension name: its registered spelling, or Graph's query error.
pub fn select_name(state: &State, kind: Kind, name: &str) -> Result<String, GraphError> {
    available(state, kind, name)
        .map(|definition| definition.name.clone())
        .ok_or_else(|| unknown_in_query(name))
}

/// Graph's answer to a query naming an extension it does not know, as reported from tenants
/// (`$select`/`$filter` of an unregistered `extension_…` name; instructure/canvas-lms's
/// microsoft_sync specs, Yvand/EntraCP).
pub fn unknown_in_query(name: &str) -> GraphError {
    GraphError::unsupported_query(&format!(
        "Property '{name}' does not exist as a declared property or extension property."
    ))
}

/// A write naming an extension that is not available for the object's type, as reported from
/// tenants (Azure-Samples/ms-identity-dotnetcore-b2c-account-management#17).
fn not_available(name: &str) -> GraphError {
    GraphError::bad_request(
        "Request_BadRequest",
        &format!("The following extension properties are not available: {name}."),
    )
}

/// A value of the wrong JSON type for its extension's data type, as reported from tenants
/// (microsoftgraph/msgraph-sdk-powershell#3230).
fn invalid_property(name: &str) -> GraphError {
    GraphError::bad_request("Request_BadRequest", &format!("Invalid property '{name}'."))
}

/// Checks one value against a definition; returns it as stored (a DateTime in UTC).
fn checked_value(
    kind: Kind,
    definition: &ExtensionProperty,
    value: &Value,
) -> Result<Value, GraphError> {
    let name = definition.name.as_str();
    let single = |value: &Value| -> Result<Value, GraphError> {
        let too_big = || GraphError::invalid_value(kind, name);
        match (definition.data_type.as_str(), value) {
            ("String", Value::String(text)) => {
                if text.chars().count() > MAX_VALUE_LEN {
                    return Err(too_big());
                }
                Ok(value.clone())
            }
            ("Binary", Value::String(text)) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|_| too_big())?;
                if bytes.len() > MAX_VALUE_LEN {
                    return Err(too_big());
                }
                Ok(value.clone())
            }
            ("Boolean", Value::Bool(_)) => Ok(value.clone()),
            ("Integer", Value::Number(number)) => number
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .map(|n| json!(n))
                .ok_or_else(too_big),
            ("LargeInteger", Value::Number(number)) => {
                number.as_i64().map(|n| json!(n)).ok_or_else(too_big)
            }
            ("DateTime", Value::String(text)) => parse_date_time_offset(text)
                .map(|unix| json!(rfc3339(unix)))
                .ok_or_else(too_big),
            _ => Err(invalid_property(name)),
        }
    };
    match value {
        Value::Null => Ok(Value::Null),
        Value::Array(items) if definition.is_multi_valued => Ok(Value::Array(
            items.iter().map(single).collect::<Result<_, _>>()?,
        )),
        _ if definition.is_multi_valued => Err(invalid_property(name)),
        other => single(other),
    }
}

/// How many extension values an object holds (each item of a collection counts).
fn value_count(props: &Map<String, Value>) -> usize {
    props
        .iter()
        .filter(|(name, _)| is_extension_name(name))
        .map(|(_, value)| match value {
            Value::Null => 0,
            Value::Array(items) => items.len(),
            _ => 1,
        })
        .sum()
}

/// Checks the extension values of a user or group create or update body (`props`, already
/// past `check_body`): each must name an available extension for the object's type and fit
/// its data type; they are renamed to their registered spelling (replacing a value stored under
/// another case) and DateTime values put in UTC. Then the object, as this write leaves it, may
/// hold at most [`MAX_VALUES_PER_OBJECT`] values.
pub fn check_values(
    state: &State,
    kind: Kind,
    props: &mut Map<String, Value>,
    existing: Option<&DirObject>,
) -> Result<(), GraphError> {
    let names: Vec<String> = props
        .keys()
        .filter(|name| is_extension_name(name))
        .cloned()
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    for name in names {
        let value = props.remove(&name).unwrap_or(Value::Null);
        let definition = available(state, kind, &name).ok_or_else(|| not_available(&name))?;
        let value = checked_value(kind, definition, &value)?;
        props.insert(definition.name.clone(), value);
    }
    let mut after = existing.map(|o| o.props.clone()).unwrap_or_default();
    for (name, value) in props.iter() {
        if is_extension_name(name) {
            after.retain(|key, _| !key.eq_ignore_ascii_case(name));
            after.insert(name.clone(), value.clone());
        }
    }
    if value_count(&after) > MAX_VALUES_PER_OBJECT {
        return Err(GraphError::bad_request(
            "Request_BadRequest",
            &format!(
                "The object would hold more than {MAX_VALUES_PER_OBJECT} directory extension values."
            ),
        ));
    }
    Ok(())
}

/// The value of an extension on an object, under any case of its name; None when unset.
pub fn value_of<'o>(object: &'o DirObject, name: &str) -> Option<&'o Value> {
    object
        .props
        .iter()
        .find(|(key, value)| key.eq_ignore_ascii_case(name) && !value.is_null())
        .map(|(_, value)| value)
}

/// An extensionProperty resource as Graph shows it (`appDisplayName` is the application's
/// display name now).
fn resource(app: &DirObject, definition: &ExtensionProperty) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("id".into(), json!(definition.id));
    map.insert("deletedDateTime".into(), Value::Null);
    map.insert(
        "appDisplayName".into(),
        app.props.get("displayName").cloned().unwrap_or(Value::Null),
    );
    map.insert("dataType".into(), json!(definition.data_type));
    map.insert("isMultiValued".into(), json!(definition.is_multi_valued));
    map.insert("isSyncedFromOnPremises".into(), json!(false));
    map.insert("name".into(), json!(definition.name));
    map.insert("targetObjects".into(), json!(definition.target_objects));
    map
}

fn context(ctx: &Ctx<'_>, app: &DirObject, entity: bool) -> Value {
    let suffix = if entity { "/$entity" } else { "" };
    json!(ctx.context(&format!(
        "applications('{}')/extensionProperties{suffix}",
        app.id()
    )))
}

/// Writes also need a signed-in user to hold a role that manages applications: of those the
/// emulator knows, Global Administrator.
fn check_write(ctx: &Ctx<'_>) -> Result<(), GraphError> {
    EXTENSION_WRITE.check(ctx.caller)?;
    require_admin(ctx)
}

// https://learn.microsoft.com/en-us/graph/api/application-list-extensionproperty?view=graph-rest-1.0
/// `GET /applications/{id}/extensionProperties`
pub fn list(ctx: &Ctx<'_>, key: &str) -> GraphResult {
    EXTENSION_READ.check(ctx.caller)?;
    ctx.app.store.read(|state| {
        let app = find_visible(ctx, state, Kind::Application, key)?;
        let value: Vec<Value> = app
            .internal
            .extension_properties
            .iter()
            .map(|definition| Value::Object(resource(app, definition)))
            .collect();
        Ok(GraphResponse::ok(json!({
            "@odata.context": context(ctx, app, false),
            "value": value,
        })))
    })
}

// https://learn.microsoft.com/en-us/graph/api/extensionproperty-get?view=graph-rest-1.0
/// `GET /applications/{id}/extensionProperties/{extensionPropertyId}`
pub fn get(ctx: &Ctx<'_>, key: &str, extension_id: &str) -> GraphResult {
    EXTENSION_READ.check(ctx.caller)?;
    ctx.app.store.read(|state| {
        let app = find_visible(ctx, state, Kind::Application, key)?;
        let definition = app
            .internal
            .extension_properties
            .iter()
            .find(|d| d.id.eq_ignore_ascii_case(extension_id))
            .ok_or_else(|| GraphError::not_found(extension_id))?;
        let mut body = Map::new();
        body.insert("@odata.context".into(), context(ctx, app, true));
        body.extend(resource(app, definition));
        Ok(GraphResponse::ok(Value::Object(body)))
    })
}

/// 400 for a value the definition cannot take (the emulator's wording of Graph's usual
/// invalid-value message; no page shows Graph's).
fn invalid(property: &str) -> GraphError {
    let mut error = GraphError::bad_request(
        "Request_BadRequest",
        &format!(
            "Invalid value specified for property '{property}' of resource 'ExtensionProperty'."
        ),
    );
    error.extra.details = vec![json!({"code": "InvalidValue", "target": property})];
    error
}

/// The body of a create, checked: (short name, data type, multi-valued, target objects).
fn create_body(ctx: &Ctx<'_>) -> Result<(String, String, bool, Vec<String>), GraphError> {
    let body = ctx.req.json_body()?;
    for name in body.keys() {
        if name.starts_with('@') || name.contains("@odata.") {
            continue;
        }
        if [
            "id",
            "appDisplayName",
            "isSyncedFromOnPremises",
            "deletedDateTime",
        ]
        .iter()
        .any(|known| known.eq_ignore_ascii_case(name))
        {
            return Err(GraphError::read_only(name));
        }
        if !["name", "dataType", "isMultiValued", "targetObjects"]
            .iter()
            .any(|known| known.eq_ignore_ascii_case(name))
        {
            return Err(GraphError::bad_request(
                "BadRequest",
                &format!(
                    "The property '{name}' does not exist on type 'microsoft.graph.extensionProperty'. Make sure to only use property names that are defined by the type or mark the type as open type."
                ),
            ));
        }
    }
    let field = |wanted: &str| {
        body.iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
            .map(|(_, value)| value)
            .filter(|value| !value.is_null())
    };
    let name = match field("name") {
        None => return Err(GraphError::required("name")),
        Some(Value::String(name))
            if !name.is_empty()
                && name.chars().count() <= MAX_NAME_LEN
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            name.clone()
        }
        Some(_) => return Err(invalid("name")),
    };
    let data_type = match field("dataType") {
        None => return Err(GraphError::required("dataType")),
        Some(Value::String(data_type)) if DATA_TYPES.contains(&data_type.as_str()) => {
            data_type.clone()
        }
        Some(_) => return Err(invalid("dataType")),
    };
    let multi_valued = match field("isMultiValued") {
        None => false,
        Some(Value::Bool(multi)) => *multi,
        Some(_) => return Err(invalid("isMultiValued")),
    };
    let targets = match field("targetObjects") {
        None => return Err(GraphError::required("targetObjects")),
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut targets: Vec<String> = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(target) if TARGET_OBJECTS.contains(&target) => {
                        if !targets.iter().any(|t| t == target) {
                            targets.push(target.to_owned());
                        }
                    }
                    _ => return Err(invalid("targetObjects")),
                }
            }
            targets
        }
        Some(_) => return Err(invalid("targetObjects")),
    };
    Ok((name, data_type, multi_valued, targets))
}

// https://learn.microsoft.com/en-us/graph/api/application-post-extensionproperty?view=graph-rest-1.0
/// `POST /applications/{id}/extensionProperties` → 201 with the extensionProperty, named
/// `extension_{appId without hyphens}_{name}`.
pub fn create(ctx: &Ctx<'_>, key: &str) -> GraphResult {
    check_write(ctx)?;
    let (short, data_type, is_multi_valued, target_objects) = create_body(ctx)?;
    ctx.write(|inner| {
        let app = find_visible(ctx, &inner.state, Kind::Application, key)?;
        let id = app.id().to_owned();
        let app_id = app.str_prop("appId").unwrap_or_default().replace('-', "");
        let name = format!("extension_{app_id}_{short}");
        // The code and message reported for a name taken (pnp/cli-microsoft365's
        // directoryextension add); the status is inferred from the code (409, as for a
        // service principal's appId taken).
        if app
            .internal
            .extension_properties
            .iter()
            .any(|d| d.name.eq_ignore_ascii_case(&name))
        {
            return Err(GraphError::new(
                409,
                "Request_MultipleObjectsWithSameKeyValue",
                &format!("An extension property exists with the name {name}."),
            ));
        }
        let definition = ExtensionProperty {
            id: new_guid(),
            name,
            data_type,
            is_multi_valued,
            target_objects,
        };
        inner.next_seq();
        let Some(app) = inner.state.objects.get_mut(&id) else {
            return Err(GraphError::not_found(key));
        };
        app.internal.extension_properties.push(definition.clone());
        let mut body = Map::new();
        body.insert("@odata.context".into(), context(ctx, app, true));
        body.extend(resource(app, &definition));
        inner.touch(&id);
        Ok(GraphResponse::created(Value::Object(body)))
    })
}

// https://learn.microsoft.com/en-us/graph/api/extensionproperty-delete?view=graph-rest-1.0
/// `DELETE /applications/{id}/extensionProperties/{extensionPropertyId}` → 204. The values on
/// objects stay stored, unseen until a definition of the same name is registered again.
pub fn delete(ctx: &Ctx<'_>, key: &str, extension_id: &str) -> GraphResult {
    check_write(ctx)?;
    ctx.write(|inner| {
        let app = find_visible(ctx, &inner.state, Kind::Application, key)?;
        let id = app.id().to_owned();
        if !app
            .internal
            .extension_properties
            .iter()
            .any(|d| d.id.eq_ignore_ascii_case(extension_id))
        {
            return Err(GraphError::not_found(extension_id));
        }
        inner.next_seq();
        if let Some(app) = inner.state.objects.get_mut(&id) {
            app.internal
                .extension_properties
                .retain(|d| !d.id.eq_ignore_ascii_case(extension_id));
        }
        inner.touch(&id);
        Ok(GraphResponse::no_content())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(data_type: &str, multi: bool) -> ExtensionProperty {
        ExtensionProperty {
            id: "x".into(),
            name: "extension_abc_thing".into(),
            data_type: data_type.into(),
            is_multi_valued: multi,
            target_objects: vec!["User".into()],
        }
    }

    #[test]
    fn values_follow_the_data_type() {
        let check = |data_type: &str, multi: bool, value: Value| {
            checked_value(Kind::User, &definition(data_type, multi), &value)
        };
        assert_eq!(
            check("String", false, json!("a")).expect("accepted"),
            json!("a")
        );
        assert!(check("String", false, json!("x".repeat(256))).is_ok());
        let long = check("String", false, json!("x".repeat(257))).expect_err("refused");
        assert!(long.message.starts_with("Invalid value specified"));
        let wrong = check("String", false, json!(true)).expect_err("refused");
        assert_eq!(wrong.message, "Invalid property 'extension_abc_thing'.");
        assert!(check("Boolean", false, json!(true)).is_ok());
        assert!(check("Integer", false, json!(2_147_483_647)).is_ok());
        assert!(check("Integer", false, json!(2_147_483_648_i64)).is_err());
        assert!(check("Integer", false, json!(1.5)).is_err());
        assert!(check("LargeInteger", false, json!(2_147_483_648_i64)).is_ok());
        assert_eq!(
            check("DateTime", false, json!("2021-05-01T02:00:00+02:00")).expect("accepted"),
            json!("2021-05-01T00:00:00Z")
        );
        assert!(check("DateTime", false, json!("May 1st")).is_err());
        assert!(check("Binary", false, json!("AAEC")).is_ok());
        assert!(check("Binary", false, json!("not base64!")).is_err());
        assert!(check("String", true, json!(["a", "b"])).is_ok());
        assert!(check("String", true, json!("a")).is_err());
        assert!(check("String", false, json!(["a"])).is_err());
        assert_eq!(
            check("String", false, Value::Null).expect("accepted"),
            Value::Null
        );
    }

    #[test]
    fn every_value_of_a_collection_counts() {
        let mut props = Map::new();
        props.insert("extension_a_one".into(), json!("x"));
        props.insert("extension_a_two".into(), json!(["x", "y"]));
        props.insert("extension_a_gone".into(), Value::Null);
        props.insert("displayName".into(), json!("not an extension"));
        assert_eq!(value_count(&props), 3);
    }
}
