//! Tracing one object through the cycle (README, "Tracing one object"): "why isn't this user
//! syncing?" answered stage by stage, from what AD and the tenant hold now. It reads only: AD as
//! the service account, the tenant as the sync app, the store's links; the synchronization stage
//! is the cycle's own pure `plan`, given this one object.

use std::collections::{HashMap, HashSet};

use ldap3::Scope;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::cloud_import::{lookups_for, read_tenant_domains};
use super::*;
use crate::directory::DirectoryConnection;
use crate::directory::import::USERS_AND_GROUPS_FILTER;
use crate::directory::scope::SyncScope;
use crate::engine::attribute_flow::cloud_shape;
use crate::engine::plan::JoinKind;
use crate::engine::validation::{ObjectIssue, Rule};
use crate::store::sync_state::Link;

/// Matches shown when nothing answers to what was asked.
const CLOSEST_MATCHES: usize = 5;

/// A trace, stage by stage; `--json` prints it as it is.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    /// What the administrator asked for.
    pub query: String,
    pub found: Found,
    /// The stages after "found"; absent when the object is not in AD.
    pub scope: Option<ScopeStage>,
    pub join: Option<JoinStage>,
    pub flow: Vec<FlowRow>,
    pub validation: Vec<Finding>,
    pub export: Vec<PlannedRequest>,
    /// One sentence: what the next cycle does with the object, and why.
    pub verdict: String,
}

/// Stage 1: the object as AD holds it now.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Found {
    Found {
        dn: String,
        anchor: String,
        kind: ObjectKind,
        attributes: Map<String, Value>,
    },
    NotFound {
        /// DNs of users and groups whose names contain what was asked.
        closest: Vec<String>,
    },
}

/// Stage 2: whether the scope takes it, and which OU (or rule) decided.
#[derive(Debug, Clone, Serialize)]
pub struct ScopeStage {
    pub in_scope: bool,
    pub because: String,
}

/// Stage 3: the cloud object it is (or would be) joined to.
#[derive(Debug, Clone, Serialize)]
pub struct JoinStage {
    /// `linked`, `hard-match`, `soft-match-smtp`, `soft-match-upn`, `create`, or `refused`.
    pub verdict: String,
    pub cloud_id: Option<String>,
    pub because: String,
    /// The cloud objects the lookups found (read live), each with what it holds.
    pub candidates: Vec<Candidate>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub cloud_id: String,
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub immutable_id: Option<String>,
}

/// Stage 4: one Graph property, as the cloud holds it and as AD makes it.
#[derive(Debug, Clone, Serialize)]
pub struct FlowRow {
    pub property: String,
    /// The AD attribute (or attributes, in order) the property is made from.
    pub ad_attribute: &'static str,
    pub cloud: Value,
    pub from_ad: Value,
    pub changes: bool,
}

/// Stage 5: one rule the object breaks, with the offending value and the fix.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: &'static str,
    pub rule: &'static str,
    pub attribute: String,
    pub value: String,
    pub problem: String,
    pub fix: String,
}

/// Stage 6: a request the next cycle would send (secrets left out).
#[derive(Debug, Clone, Serialize)]
pub struct PlannedRequest {
    pub method: &'static str,
    pub path: String,
    pub body: Option<Value>,
}

/// Traces the object `query` names: a DN, a userPrincipalName, a sAMAccountName or an
/// objectGUID.
pub async fn trace(
    config: &Config,
    connections: &mut Connections,
    store: &StateStore,
    query: &str,
) -> Result<Trace, CycleError> {
    // Every forest is asked, the first forest first (README, "Several forests").
    let forests = config.forests();
    let mut found_in = None;
    for forest in &forests {
        let connection = connections.forest(forest.position).connection().await?;
        if let Some(object) =
            find_object(connection, &forest.naming_context(), &forest.scope(), query).await?
        {
            found_in = Some((*forest, object));
            break;
        }
    }
    let Some((forest, object)) = found_in else {
        let connection = connections.directory.connection().await?;
        let closest = closest_matches(connection, &config.naming_context(), query).await?;
        let verdict = if closest.is_empty() {
            format!("no user or group in AD answers to '{query}'")
        } else {
            format!("no user or group in AD answers to '{query}'; the closest names are listed")
        };
        return Ok(Trace {
            query: query.to_owned(),
            found: Found::NotFound { closest },
            scope: None,
            join: None,
            flow: Vec::new(),
            validation: Vec::new(),
            export: Vec::new(),
            verdict,
        });
    };
    let object = if config.options.anchors_by_consistency_guid() {
        object.anchored_by_consistency_guid()
    } else {
        object
    };
    let naming_context = forest.naming_context();
    let connection = connections.forest(forest.position).connection().await?;
    let ad_duplicates = ad_duplicates(connection, &naming_context, &object).await?;
    let found = Found::Found {
        dn: object.dn.to_string(),
        anchor: object.anchor.to_string(),
        kind: object.kind,
        attributes: object
            .attributes
            .iter()
            .map(|(name, values)| (name.clone(), json!(values)))
            .collect(),
    };
    let mut scope = scope_stage(&forest.scope(), &object);
    let rules = forest.sync_rules();
    if scope.in_scope && (rules.users.scopes() || rules.groups.scopes()) {
        // The sync rules decide within the OUs (README, "Sync rules").
        let sets = read_rule_sets_of(connection, &object, &rules).await?;
        let verdict = decide_object(&rules, &sets, &object);
        let object_rules = match object.kind {
            ObjectKind::User => &rules.users,
            ObjectKind::Group => &rules.groups,
        };
        let decided = verdict
            .decided_by
            .map(|number| format!("sync rule {number} ({})", object_rules.scoping[number - 1]));
        scope = ScopeStage {
            in_scope: verdict.in_scope,
            because: match (verdict.in_scope, decided) {
                (_, Some(rule)) => format!("{}, then {rule}", scope.because),
                (true, None) => format!("{}, and no sync rule leaves it out", scope.because),
                (false, None) => format!(
                    "{}, but the sync rules leave it out (their LDAP filter does not match it, or no include rule holds)",
                    scope.because
                ),
            },
        };
    }
    let links = store.links()?;
    let link = links.get(&object.anchor);
    let graph = &connections.graph;
    let domains = read_tenant_domains(graph).await?;

    let mut trace = Trace {
        query: query.to_owned(),
        found,
        scope: Some(scope.clone()),
        join: None,
        flow: Vec::new(),
        validation: Vec::new(),
        export: Vec::new(),
        verdict: String::new(),
    };
    if !scope.in_scope {
        trace.verdict = match link {
            Some(link) => format!(
                "out of scope ({}): the next cycle removes its cloud object {}",
                scope.because, link.cloud_id
            ),
            None => format!("not synced: {}", scope.because),
        };
        return Ok(trace);
    }

    // The cloud objects the plan could join it to, read now (a linked object needs none).
    let candidates = if link.is_some() {
        Vec::new()
    } else {
        let mut by_id: HashMap<String, CloudObject> = HashMap::new();
        for (kind, lookup) in lookups_for(&object, config.options.soft_match_upn) {
            let select = match kind {
                ObjectKind::User => USER_SELECT,
                ObjectKind::Group => GROUP_SELECT,
            };
            for found in graph.find(kind, &lookup, select).await? {
                by_id.insert(found.id.clone(), found);
            }
        }
        by_id.into_values().collect::<Vec<_>>()
    };
    let owned_groups = match config.cloud.service_principal_id.as_deref() {
        Some(sync_app) => {
            let mut owned = HashSet::new();
            for group in candidates.iter().filter(|c| c.kind == ObjectKind::Group) {
                if crate::engine::lost_creates::owned_by(graph, group, sync_app).await? {
                    owned.insert(group.id.clone());
                }
            }
            owned
        }
        None => HashSet::new(),
    };
    let options = PlanOptions {
        soft_match_upn: config.options.soft_match_upn,
        ..PlanOptions::default()
    };
    let objects = [object.clone()];
    let intents = store.create_intents()?;
    // As the cycle sees it: a hold ends once AD has disabled the account.
    let mut held_disabled = store.held_disabled()?;
    if object.account_enabled() == Some(false) {
        held_disabled.remove(&object.anchor);
    }
    let held = held_disabled.contains(&object.anchor);
    let rules = config.sync_rules();
    let mut planned = plan(&PlanInput {
        objects: &objects,
        gone: &[],
        full: false,
        links: &links,
        cloud: &candidates,
        owned_groups: &owned_groups,
        create_intents: &intents.keys().copied().collect(),
        confirmed_group_matches: &store.confirmed_group_matches()?,
        held_disabled: &held_disabled,
        domains: &domains,
        rules: &rules,
        aliases: &HashMap::new(),
        options: &options,
        now_ms: now_ms(),
    });
    let targets = crate::engine::plan::user_join_targets(&planned);
    if !targets.is_empty() {
        let mut roles = HashMap::new();
        for target in targets {
            let held = graph.directory_roles_of(&target).await.unwrap_or_default();
            roles.insert(target, held);
        }
        crate::engine::plan::refuse_privileged_joins(&mut planned, &roles);
    }

    // The cloud object as it is now: the linked one, or the one the plan joins.
    let joined_id = link.map(|link| link.cloud_id.clone()).or_else(|| {
        planned
            .operations
            .iter()
            .find_map(|operation| match operation {
                Operation::Join { cloud_id, .. } => Some(cloud_id.clone()),
                _ => None,
            })
    });
    let cloud_now = match &joined_id {
        Some(id) => {
            let select = match object.kind {
                ObjectKind::User => USER_SELECT,
                ObjectKind::Group => GROUP_SELECT,
            };
            match graph.get(object.kind, id, select).await {
                Ok(found) => Some(found),
                Err(GraphError::NotFound { .. }) => None,
                Err(error) => return Err(error.into()),
            }
        }
        None => None,
    };

    let errors: Vec<&ObjectIssue> = planned
        .errors
        .iter()
        .filter(|report| report.anchor == object.anchor)
        .flat_map(|report| &report.issues)
        .collect();
    trace.join = Some(join_stage(link, &planned, &candidates, &errors));
    let mut shape = cloud_shape(&object, &domains, &rules).properties;
    if held {
        shape.insert("accountEnabled".to_owned(), Value::Bool(false));
    }
    trace.flow = flow_rows(&shape, cloud_now.as_ref());
    trace.validation = planned
        .errors
        .iter()
        .chain(&planned.warnings)
        .filter(|report| report.anchor == object.anchor)
        .flat_map(|report| &report.issues)
        .map(finding)
        .chain(ad_duplicates)
        .collect();
    trace.export = planned
        .operations
        .iter()
        .filter_map(|operation| planned_request(operation, &links))
        .collect();
    trace.verdict = verdict(&trace, link);
    if held {
        trace.verdict.push_str(
            "; held disabled in the cloud by dirsync push --disable until AD disables the account too",
        );
    }
    Ok(trace)
}

/// The search that finds the user or group `query` names (a DN, a UPN, a sAMAccountName or an
/// objectGUID); `None` for a DN that does not parse.
fn object_search(naming_context: &Dn, query: &str) -> Option<(String, Scope, String)> {
    let query = query.trim();
    Some(if let Some(guid) = Guid::parse(query) {
        let bytes: String = guid
            .to_wire()
            .iter()
            .map(|byte| format!("\\{byte:02x}"))
            .collect();
        // An anchor is an objectGUID or, for an object anchored by it, an
        // mS-DS-ConsistencyGuid (README, "The source anchor").
        (
            naming_context.to_string(),
            Scope::Subtree,
            format!(
                "(&{USERS_AND_GROUPS_FILTER}(|(objectGUID={bytes})(mS-DS-ConsistencyGuid={bytes})))"
            ),
        )
    } else if query.contains('=') {
        match Dn::parse(query) {
            Ok(dn) => (
                dn.to_string(),
                Scope::Base,
                USERS_AND_GROUPS_FILTER.to_owned(),
            ),
            Err(_) => return None,
        }
    } else if query.contains('@') {
        (
            naming_context.to_string(),
            Scope::Subtree,
            format!(
                "(&{USERS_AND_GROUPS_FILTER}(userPrincipalName={}))",
                escaped(query)
            ),
        )
    } else {
        (
            naming_context.to_string(),
            Scope::Subtree,
            format!(
                "(&{USERS_AND_GROUPS_FILTER}(sAMAccountName={}))",
                escaped(query)
            ),
        )
    })
}

/// The object `query` names, read as a cycle reads it.
pub async fn find_object(
    connection: &DirectoryConnection,
    naming_context: &Dn,
    sync_scope: &SyncScope,
    query: &str,
) -> Result<Option<DirectoryObject>, DirectoryError> {
    let Some((base, scope, filter)) = object_search(naming_context, query) else {
        return Ok(None);
    };
    let entries = match connection
        .search(
            "read the traced object",
            &base,
            scope,
            &filter,
            &sync_scope.attributes(),
        )
        .await
    {
        Ok(entries) => entries,
        // A DN that does not exist.
        Err(DirectoryError::NoSuchObject { .. }) => return Ok(None),
        Err(error) => return Err(error),
    };
    Ok(entries
        .iter()
        .find_map(|entry| DirectoryObject::from_entry(entry, sync_scope.also_read())))
}

/// Users and groups whose names contain what was asked (its first name part for a DN or UPN).
async fn closest_matches(
    connection: &DirectoryConnection,
    naming_context: &Dn,
    query: &str,
) -> Result<Vec<String>, DirectoryError> {
    let query = query.trim();
    let term = if query.contains('=') {
        query
            .split(',')
            .next()
            .and_then(|rdn| rdn.split_once('='))
            .map_or(query, |(_, value)| value)
    } else {
        query.split('@').next().unwrap_or(query)
    };
    let term = escaped(term.trim());
    if term.is_empty() {
        return Ok(Vec::new());
    }
    let filter = format!(
        "(&{USERS_AND_GROUPS_FILTER}(|(cn=*{term}*)(sAMAccountName=*{term}*)(userPrincipalName=*{term}*)(displayName=*{term}*)))"
    );
    let entries = connection
        .search(
            "look for names like the traced object",
            &naming_context.to_string(),
            Scope::Subtree,
            &filter,
            &["cn"],
        )
        .await?;
    Ok(entries
        .into_iter()
        .take(CLOSEST_MATCHES)
        .map(|entry| entry.dn)
        .collect())
}

/// Other users and groups in AD holding one of the object's unique values (UPN, mail, an SMTP
/// address): the cloud would refuse one of the two.
async fn ad_duplicates(
    connection: &DirectoryConnection,
    naming_context: &Dn,
    object: &DirectoryObject,
) -> Result<Vec<Finding>, DirectoryError> {
    let mut checks: Vec<(&str, String)> = Vec::new();
    if let Some(upn) = object.first("userPrincipalName") {
        checks.push(("userPrincipalName", upn.to_owned()));
    }
    for address in object.values("proxyAddresses") {
        if address.to_ascii_lowercase().starts_with("smtp:") {
            checks.push(("proxyAddresses", address.clone()));
        }
    }
    let mut findings = Vec::new();
    for (attribute, value) in checks {
        let wanted = match attribute {
            // smtp:a@b and SMTP:a@b are the same address.
            "proxyAddresses" => format!("(proxyAddresses={})", escaped(&value)),
            _ => format!("({attribute}={})", escaped(&value)),
        };
        let entries = connection
            .search(
                "look for the same value on another object",
                &naming_context.to_string(),
                Scope::Subtree,
                &format!("(&{USERS_AND_GROUPS_FILTER}{wanted})"),
                &["cn"],
            )
            .await?;
        for other in entries
            .iter()
            .filter(|entry| Dn::parse(&entry.dn).is_ok_and(|dn| dn != object.dn))
        {
            findings.push(Finding {
                severity: "error",
                rule: "duplicate-in-ad",
                attribute: attribute.to_owned(),
                value: value.clone(),
                problem: format!("{attribute} '{value}' is also held by {}", other.dn),
                fix: format!(
                    "give one of the two another {attribute} in AD: the cloud accepts each value on one object only"
                ),
            });
        }
    }
    Ok(findings)
}

/// An LDAP filter value (RFC 4515).
fn escaped(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            other => out.push(other),
        }
    }
    out
}

/// Which included OU takes the object, or which excluded OU (or rule) leaves it out.
fn scope_stage(scope: &SyncScope, object: &DirectoryObject) -> ScopeStage {
    if object.is_system_object() {
        return ScopeStage {
            in_scope: false,
            because: "a system account (isCriticalSystemObject, a built-in or a sync service account): dirsync never syncs it".to_owned(),
        };
    }
    let deepest = |roots: &[Dn]| {
        roots
            .iter()
            .filter(|root| object.dn.is_within(root))
            .max_by_key(|root| root.to_string().len())
            .cloned()
    };
    match (deepest(scope.included()), deepest(scope.excluded())) {
        (None, _) => ScopeStage {
            in_scope: false,
            because: format!(
                "not under any included OU ({})",
                scope
                    .included()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        },
        (Some(_), Some(excluded)) => ScopeStage {
            in_scope: false,
            because: format!("under the excluded OU {excluded}"),
        },
        (Some(included), None) => ScopeStage {
            in_scope: true,
            because: format!("under the included OU {included}"),
        },
    }
}

fn join_stage(
    link: Option<&Link>,
    planned: &Plan,
    candidates: &[CloudObject],
    errors: &[&ObjectIssue],
) -> JoinStage {
    let candidates_shown = candidates
        .iter()
        .map(|candidate| Candidate {
            cloud_id: candidate.id.clone(),
            display_name: candidate.string("displayName").map(str::to_owned),
            user_principal_name: candidate.string("userPrincipalName").map(str::to_owned),
            immutable_id: candidate.immutable_id().map(str::to_owned),
        })
        .collect();
    if let Some(link) = link {
        return JoinStage {
            verdict: "linked".to_owned(),
            cloud_id: Some(link.cloud_id.clone()),
            because: "dirsync made or joined this cloud object earlier (its link is kept)"
                .to_owned(),
            candidates: candidates_shown,
        };
    }
    let refusal = errors.iter().find(|issue| {
        matches!(
            issue.rule,
            Rule::InvalidSoftMatch { .. }
                | Rule::GroupNotOurs { .. }
                | Rule::PrivilegedCloudAccount { .. }
        )
    });
    if let Some(issue) = refusal {
        return JoinStage {
            verdict: "refused".to_owned(),
            cloud_id: match &issue.rule {
                Rule::InvalidSoftMatch { cloud_id, .. }
                | Rule::GroupNotOurs { cloud_id, .. }
                | Rule::PrivilegedCloudAccount { cloud_id, .. } => Some(cloud_id.clone()),
                _ => None,
            },
            because: issue.statement(),
            candidates: candidates_shown,
        };
    }
    for operation in &planned.operations {
        match operation {
            Operation::Join { cloud_id, how, .. } => {
                let (verdict, because) = match how {
                    JoinKind::HardMatch => (
                        "hard-match",
                        "a cloud object already holds this object's immutableId",
                    ),
                    JoinKind::SoftMatchSmtp => (
                        "soft-match-smtp",
                        "a cloud user without an immutableId holds its primary SMTP address",
                    ),
                    JoinKind::SoftMatchUpn => (
                        "soft-match-upn",
                        "a cloud user without an immutableId holds its userPrincipalName",
                    ),
                    JoinKind::OwnCreate => (
                        "hard-match",
                        "a group dirsync made (the sync app owns it), found again",
                    ),
                    JoinKind::ConfirmedGroupMatch => (
                        "confirmed-match",
                        "an administrator confirmed this cloud group is the same group",
                    ),
                };
                return JoinStage {
                    verdict: verdict.to_owned(),
                    cloud_id: Some(cloud_id.clone()),
                    because: because.to_owned(),
                    candidates: candidates_shown,
                };
            }
            Operation::Create { .. } => {
                return JoinStage {
                    verdict: "create".to_owned(),
                    cloud_id: None,
                    because: "no cloud object holds its immutableId, SMTP address or (with soft_match_upn) its UPN".to_owned(),
                    candidates: candidates_shown,
                };
            }
            _ => {}
        }
    }
    JoinStage {
        verdict: "none".to_owned(),
        cloud_id: None,
        because: "the object is not exported (see the validation stage)".to_owned(),
        candidates: candidates_shown,
    }
}

/// Each property AD makes, beside the cloud's value now (`null` when there is no cloud object).
fn flow_rows(shape: &Map<String, Value>, cloud_now: Option<&CloudObject>) -> Vec<FlowRow> {
    shape
        .iter()
        .map(|(property, from_ad)| {
            let cloud = cloud_now
                .and_then(|object| object.properties.get(property))
                .cloned()
                .unwrap_or(Value::Null);
            let changes = !same_value(&cloud, from_ad);
            FlowRow {
                property: property.clone(),
                ad_attribute: crate::engine::attribute_flow::ad_source(property),
                cloud,
                from_ad: from_ad.clone(),
                changes,
            }
        })
        .collect()
}

/// Graph's empty list and absent value are the same; so are addresses in another case.
fn same_value(cloud: &Value, wanted: &Value) -> bool {
    let empty = |value: &Value| value.is_null() || value.as_array().is_some_and(Vec::is_empty);
    if empty(cloud) && empty(wanted) {
        return true;
    }
    match (cloud, wanted) {
        (Value::String(a), Value::String(b)) => a == b,
        _ => cloud == wanted,
    }
}

fn finding(issue: &ObjectIssue) -> Finding {
    Finding {
        severity: match issue.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        },
        rule: issue.rule.word(),
        attribute: issue.attribute.clone(),
        value: issue.value.clone(),
        problem: issue.statement(),
        fix: issue.hint(),
    }
}

/// The request an operation becomes, as `export` sends it (a new user's random password left
/// out).
fn planned_request(operation: &Operation, links: &HashMap<Guid, Link>) -> Option<PlannedRequest> {
    let collection = |kind: ObjectKind| kind.collection();
    let changes_body = |changes: &[crate::engine::plan::AttributeChange]| {
        Value::Object(
            changes
                .iter()
                .map(|change| (change.property.clone(), change.new.clone()))
                .collect(),
        )
    };
    let cloud_id_of = |anchor: &Guid| {
        links.get(anchor).map_or_else(
            || "(created first)".to_owned(),
            |link| link.cloud_id.clone(),
        )
    };
    match operation {
        Operation::Create {
            kind, properties, ..
        } => {
            let mut body = properties.clone();
            if *kind == ObjectKind::User {
                body.insert(
                    "passwordProfile".to_owned(),
                    json!({"password": "(random, never shown)", "forceChangePasswordNextSignIn": false}),
                );
            }
            Some(PlannedRequest {
                method: "POST",
                path: format!("/{}", collection(*kind)),
                body: Some(Value::Object(body)),
            })
        }
        Operation::Join {
            kind,
            cloud_id,
            changes,
            ..
        }
        | Operation::Update {
            kind,
            cloud_id,
            changes,
            ..
        } if !changes.is_empty() => Some(PlannedRequest {
            method: "PATCH",
            path: format!("/{}/{cloud_id}", collection(*kind)),
            body: Some(changes_body(changes)),
        }),
        Operation::Members { group, add, remove } if !add.is_empty() || !remove.is_empty() => {
            Some(PlannedRequest {
                method: "POST/DELETE",
                path: format!("/groups/{}/members/$ref", cloud_id_of(group)),
                body: Some(json!({
                    "add": add.iter().map(cloud_id_of).collect::<Vec<_>>(),
                    "remove": remove.iter().map(cloud_id_of).collect::<Vec<_>>(),
                })),
            })
        }
        Operation::Manager { user, manager } => Some(PlannedRequest {
            method: if manager.is_some() { "PUT" } else { "DELETE" },
            path: format!("/users/{}/manager/$ref", cloud_id_of(user)),
            body: manager.map(|manager| json!({"@odata.id": cloud_id_of(&manager)})),
        }),
        Operation::Delete { kind, cloud_id, .. } => Some(PlannedRequest {
            method: "DELETE",
            path: format!("/{}/{cloud_id}", collection(*kind)),
            body: None,
        }),
        Operation::Disable { cloud_id, .. } => Some(PlannedRequest {
            method: "PATCH",
            path: format!("/users/{cloud_id}"),
            body: Some(json!({"accountEnabled": false})),
        }),
        _ => None,
    }
}

fn verdict(trace: &Trace, link: Option<&Link>) -> String {
    let errors: Vec<&Finding> = trace
        .validation
        .iter()
        .filter(|finding| finding.severity == "error")
        .collect();
    if let Some(first) = errors.first() {
        return format!(
            "not exported: {} ({} error{} in the validation stage)",
            first.problem,
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        );
    }
    let join = trace.join.as_ref().map_or("", |join| join.verdict.as_str());
    let changing = trace.flow.iter().filter(|row| row.changes).count();
    match (join, link) {
        ("create", _) => "the next cycle creates it in the cloud".to_owned(),
        ("linked", _) if trace.export.is_empty() => {
            "in sync: the cloud holds what AD has".to_owned()
        }
        ("linked", _) => format!(
            "the next cycle updates it: {changing} propert{} differ{}",
            if changing == 1 { "y" } else { "ies" },
            if changing == 1 { "s" } else { "" }
        ),
        (join, _) => format!("the next cycle joins it ({join}) and writes what differs"),
    }
}
