//! Cloud export: the plan's writes, sent to Graph in `$batch`es (paced by the client's flow
//! control), in three phases so that references resolve: objects (create, join, update), then
//! references (members, managers), then deletes.
//!
//! Every chunk's outcome is kept in one store transaction before the next chunk goes out: new
//! links, exported values and deletes are durable as soon as the cloud has them. An object that
//! fails is an object-level error and stays pending; only errors that every later request would
//! share (sign-in, permissions, Graph unavailable past the retry budget) stop the export.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use super::attribute_flow::{TenantDomains, cloud_shape};
use super::plan::{AttributeChange, JoinKind, Operation, Plan};
use super::types::{Progress, StopSignal};
use crate::clock::now_ms;
use crate::cloud::{ErrorKind, GraphClient, GraphError, GraphRequest, Method, ObjectKind};
use crate::directory::Dn;
use crate::directory::objects::DirectoryObject;
use crate::guid::Guid;
use crate::store::runs::{AttributeValues, ErrorRecord, ObjectChangeRecord, RunId, StepCounters};
use crate::store::sync_state::ExportUpdate;
use crate::store::sync_state::Link;
use crate::store::vocabulary::{ChangeKind, StepKind};
use crate::store::{SqliteStore, StoreError};

/// Requests sent between two store commits: enough to keep several `$batch`es in flight.
const CHUNK: usize = 400;

/// The user properties read back from the cloud when joining: what matching uses and what flows,
/// so that a join writes only what differs.
pub const USER_SELECT: &[&str] = &[
    "id",
    "onPremisesImmutableId",
    "userPrincipalName",
    "mail",
    "proxyAddresses",
    "mailNickname",
    "displayName",
    "givenName",
    "surname",
    "accountEnabled",
    "jobTitle",
    "department",
    "companyName",
    "officeLocation",
    "businessPhones",
    "mobilePhone",
    "streetAddress",
    "city",
    "state",
    "postalCode",
    "country",
    "employeeId",
];

pub const GROUP_SELECT: &[&str] = &[
    "id",
    "displayName",
    "description",
    "mailNickname",
    "mail",
    "proxyAddresses",
    "securityEnabled",
    "mailEnabled",
];

/// What export did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExportReport {
    pub adds: usize,
    pub updates: usize,
    pub deletes: usize,
    /// Objects that failed.
    pub errors: usize,
    /// HTTP exchanges (a `$batch` counts once), and answers that were 429.
    pub requests: u64,
    pub throttled: u64,
}

#[derive(Debug)]
pub enum ExportError {
    /// Stopped on request between chunks; what was done is kept.
    Stopped(ExportReport),
    /// An error every later request would share.
    Graph(GraphError, ExportReport),
    Store(StoreError),
}

impl From<StoreError> for ExportError {
    fn from(error: StoreError) -> Self {
        ExportError::Store(error)
    }
}

/// Everything export needs beside the plan.
#[derive(Debug)]
pub struct ExportContext<'a> {
    pub graph: &'a GraphClient,
    pub store: &'a SqliteStore,
    pub run_id: RunId,
    /// The objects the plan was made from (the pending ones).
    pub objects: &'a [DirectoryObject],
    pub links: HashMap<Guid, Link>,
    pub domains: &'a TenantDomains,
}

/// Sends the plan's writes. `counters` are the export step's, kept current as chunks finish.
pub async fn export(
    context: ExportContext<'_>,
    plan: &Plan,
    counters: &mut StepCounters,
    progress: &(dyn Fn(Progress) + Sync),
    stop: &StopSignal,
) -> Result<ExportReport, ExportError> {
    let objects: HashMap<Guid, &DirectoryObject> = context
        .objects
        .iter()
        .map(|object| (object.anchor, object))
        .collect();
    let mut exporter = Exporter {
        graph: context.graph,
        store: context.store,
        run_id: context.run_id,
        objects,
        links: context.links,
        domains: context.domains,
        counters,
        report: ExportReport::default(),
        failed: HashSet::new(),
        deferred: HashSet::new(),
        progress,
        stop,
        done: 0,
        total: plan.operations.len() as u64,
    };
    let result = exporter.run(plan).await;
    let stats = exporter.graph.stats();
    exporter.report.requests = stats.requests;
    exporter.report.throttled = stats.throttled;
    let report = exporter.report.clone();
    match result {
        Ok(()) => {
            // Objects that came through cleanly leave `pending`.
            let errors: HashSet<Guid> = plan.errors.iter().map(|report| report.anchor).collect();
            let synced: Vec<ExportUpdate> = context
                .objects
                .iter()
                .map(|object| object.anchor)
                .filter(|anchor| {
                    !errors.contains(anchor)
                        && !exporter.failed.contains(anchor)
                        && !exporter.deferred.contains(anchor)
                })
                .map(ExportUpdate::Synced)
                .collect();
            context.store.apply_export(&synced)?;
            Ok(report)
        }
        Err(Halt::Stopped) => Err(ExportError::Stopped(report)),
        Err(Halt::Graph(error)) => Err(ExportError::Graph(error, report)),
        Err(Halt::Store(error)) => Err(ExportError::Store(error)),
    }
}

enum Halt {
    Stopped,
    Graph(GraphError),
    Store(StoreError),
}

impl From<StoreError> for Halt {
    fn from(error: StoreError) -> Self {
        Halt::Store(error)
    }
}

/// One write and what it is for.
struct Write<'p> {
    operation: &'p Operation,
    /// `None`: nothing to send (a join that changes nothing, a reference without a target).
    request: Option<GraphRequest>,
    reference: Option<Reference>,
}

/// The reference a phase-two write changes.
#[derive(Debug, Clone, Copy)]
enum Reference {
    AddMember(Guid),
    RemoveMember(Guid),
    SetManager(Guid),
    RemoveManager,
}

/// What one chunk's results change in the store and the run record.
#[derive(Default)]
struct ChunkOutcome {
    updates: Vec<ExportUpdate>,
    changes: Vec<ObjectChangeRecord>,
    errors: Vec<ErrorRecord>,
}

struct Exporter<'a, 'c> {
    graph: &'a GraphClient,
    store: &'a SqliteStore,
    run_id: RunId,
    objects: HashMap<Guid, &'a DirectoryObject>,
    links: HashMap<Guid, Link>,
    domains: &'a TenantDomains,
    counters: &'c mut StepCounters,
    report: ExportReport,
    /// Objects with a failed write this run: they stay pending.
    failed: HashSet<Guid>,
    /// Objects linked this run whose values are written next run: they stay pending.
    deferred: HashSet<Guid>,
    progress: &'a (dyn Fn(Progress) + Sync),
    stop: &'a StopSignal,
    done: u64,
    total: u64,
}

impl Exporter<'_, '_> {
    async fn run(&mut self, plan: &Plan) -> Result<(), Halt> {
        let (objects, rest): (Vec<&Operation>, Vec<&Operation>) =
            plan.operations.iter().partition(|operation| {
                matches!(
                    operation,
                    Operation::Create { .. } | Operation::Join { .. } | Operation::Update { .. }
                )
            });
        let (deletes, references): (Vec<&Operation>, Vec<&Operation>) = rest
            .into_iter()
            .partition(|operation| matches!(operation, Operation::Delete { .. }));

        for chunk in objects.chunks(CHUNK) {
            let writes: Vec<Write<'_>> = chunk
                .iter()
                .map(|operation| self.object_write(operation))
                .collect();
            self.send(writes).await?;
        }
        // Members and managers after every object exists, so new ids resolve.
        let writes: Vec<Write<'_>> = references
            .iter()
            .flat_map(|operation| self.reference_writes(operation))
            .collect();
        let mut writes = writes.into_iter().peekable();
        while writes.peek().is_some() {
            let chunk: Vec<Write<'_>> = writes.by_ref().take(CHUNK).collect();
            self.send(chunk).await?;
        }
        for chunk in deletes.chunks(CHUNK) {
            let writes: Vec<Write<'_>> = chunk
                .iter()
                .map(|operation| {
                    let Operation::Delete { kind, cloud_id, .. } = operation else {
                        unreachable!("partitioned above")
                    };
                    Write {
                        operation,
                        request: Some(GraphRequest::new(
                            Method::Delete,
                            &[collection(*kind), cloud_id],
                        )),
                        reference: None,
                    }
                })
                .collect();
            self.send(writes).await?;
        }
        Ok(())
    }

    fn object_write<'p>(&self, operation: &'p Operation) -> Write<'p> {
        let request = match operation {
            Operation::Create {
                kind, properties, ..
            } => {
                let mut body = properties.clone();
                if *kind == ObjectKind::User {
                    // Graph requires a password on create. Nobody signs in with it: it is random,
                    // never kept, and password hash sync (when on) replaces it.
                    body.insert(
                        "passwordProfile".to_owned(),
                        json!({
                            "password": initial_password(),
                            "forceChangePasswordNextSignIn": false,
                        }),
                    );
                }
                Some(
                    GraphRequest::new(Method::Post, &[collection(*kind)])
                        .with_body(Value::Object(body)),
                )
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
            } => (!changes.is_empty()).then(|| {
                let body: Map<String, Value> = changes
                    .iter()
                    .map(|change| (change.property.clone(), change.new.clone()))
                    .collect();
                GraphRequest::new(Method::Patch, &[collection(*kind), cloud_id])
                    .with_body(Value::Object(body))
            }),
            _ => None,
        };
        Write {
            operation,
            request,
            reference: None,
        }
    }

    fn reference_writes<'p>(&self, operation: &'p Operation) -> Vec<Write<'p>> {
        let cloud_id = |anchor: &Guid| self.links.get(anchor).map(|link| link.cloud_id.clone());
        let write = |request: Option<GraphRequest>, reference: Reference| Write {
            operation,
            request,
            reference: Some(reference),
        };
        match operation {
            Operation::Members { group, add, remove } => {
                // A group whose own write failed has no link: its members wait for next run.
                let Some(group_id) = cloud_id(group) else {
                    return Vec::new();
                };
                let mut writes = Vec::new();
                for member in add {
                    // A member without a cloud object yet is added when it is created (its
                    // create marks this group pending again).
                    if let Some(member_id) = cloud_id(member) {
                        writes.push(write(
                            Some(self.reference_to(
                                Method::Post,
                                &["groups", &group_id, "members", "$ref"],
                                &member_id,
                            )),
                            Reference::AddMember(*member),
                        ));
                    }
                }
                for member in remove {
                    // A member that is no longer in the cloud is no longer a member.
                    let request = cloud_id(member).map(|member_id| {
                        GraphRequest::new(
                            Method::Delete,
                            &["groups", &group_id, "members", &member_id, "$ref"],
                        )
                    });
                    writes.push(write(request, Reference::RemoveMember(*member)));
                }
                writes
            }
            Operation::Manager { user, manager } => {
                let Some(user_id) = cloud_id(user) else {
                    return Vec::new();
                };
                match manager {
                    Some(manager) => match cloud_id(manager) {
                        Some(manager_id) => vec![write(
                            Some(self.reference_to(
                                Method::Put,
                                &["users", &user_id, "manager", "$ref"],
                                &manager_id,
                            )),
                            Reference::SetManager(*manager),
                        )],
                        None => Vec::new(),
                    },
                    None => vec![write(
                        Some(GraphRequest::new(
                            Method::Delete,
                            &["users", &user_id, "manager", "$ref"],
                        )),
                        Reference::RemoveManager,
                    )],
                }
            }
            _ => Vec::new(),
        }
    }

    /// A `$ref` write pointing at the directory object `target_id`.
    fn reference_to(&self, method: Method, segments: &[&str], target_id: &str) -> GraphRequest {
        GraphRequest::new(method, segments)
            .with_body(json!({ "@odata.id": self.graph.directory_object_url(target_id) }))
    }

    /// Sends one chunk, applies its results, and keeps them before returning.
    async fn send(&mut self, writes: Vec<Write<'_>>) -> Result<(), Halt> {
        if self.stop.is_stopped() {
            return Err(Halt::Stopped);
        }
        let requests: Vec<GraphRequest> = writes
            .iter()
            .filter_map(|write| write.request.clone())
            .collect();
        let results = self.graph.batch(&requests).await;
        // A permission refused on every write of a chunk is the app's permission; refused on some
        // writes only, it is about those objects (Graph refuses, for example, to change an
        // administrator's account with User.ReadWrite.All): object errors.
        let all_forbidden = !results.is_empty()
            && results
                .iter()
                .all(|result| matches!(result, Err(error) if error.kind() == ErrorKind::Forbidden));
        let mut results = results.into_iter();
        let mut outcome = ChunkOutcome::default();
        let mut halt = None;
        // Reference writes of one owner are summed into one change record.
        let mut reference_changes: HashMap<Guid, ReferenceChange> = HashMap::new();
        for write in &writes {
            let result = match &write.request {
                Some(_) => results.next().unwrap_or(Ok(None)),
                None => Ok(None),
            };
            if let Err(error) = &result
                && stops_the_export(error, all_forbidden)
            {
                halt.get_or_insert_with(|| error.clone());
                continue;
            }
            match write.reference {
                None => {
                    self.object_result(write.operation, result, &mut outcome)
                        .await?;
                }
                Some(reference) => {
                    self.reference_result(
                        write.operation,
                        reference,
                        result,
                        &mut outcome,
                        &mut reference_changes,
                    )?;
                }
            }
        }
        for (owner, change) in reference_changes {
            if let Some(record) = self.reference_record(owner, &change) {
                outcome.changes.push(record);
            }
            if let Some(link) = self.links.get(&owner) {
                outcome.updates.push(ExportUpdate::Link(link.clone()));
            }
        }
        self.keep(&outcome)?;
        self.done += writes.len() as u64;
        (self.progress)(Progress::Objects {
            step: StepKind::CloudExport,
            done: self.done.min(self.total),
            total: Some(self.total),
        });
        match halt {
            Some(error) => Err(Halt::Graph(error)),
            None => Ok(()),
        }
    }

    fn keep(&mut self, outcome: &ChunkOutcome) -> Result<(), Halt> {
        self.store.apply_export(&outcome.updates)?;
        self.store.record_changes(self.run_id, &outcome.changes)?;
        self.store.record_errors(self.run_id, &outcome.errors)?;
        for change in &outcome.changes {
            self.counters.count(change.change_kind);
            match change.change_kind {
                ChangeKind::Add => self.report.adds += 1,
                ChangeKind::Delete => self.report.deletes += 1,
                ChangeKind::Update | ChangeKind::Rename => self.report.updates += 1,
            }
        }
        Ok(())
    }

    async fn object_result(
        &mut self,
        operation: &Operation,
        result: Result<Option<Value>, GraphError>,
        outcome: &mut ChunkOutcome,
    ) -> Result<(), Halt> {
        match operation {
            Operation::Create {
                anchor,
                kind,
                dn,
                properties,
            } => match result {
                Ok(body) => {
                    let Some(cloud_id) = body
                        .as_ref()
                        .and_then(|body| body.get("id"))
                        .and_then(Value::as_str)
                    else {
                        let error = GraphError::Failed {
                            status: 201,
                            code: "noId".to_owned(),
                            message: "the create was answered without the new object's id"
                                .to_owned(),
                        };
                        return self.object_error(*anchor, *kind, dn.as_str(), &error, outcome);
                    };
                    let link = Link {
                        anchor: *anchor,
                        kind: *kind,
                        dn: dn.clone(),
                        cloud_id: cloud_id.to_owned(),
                        exported: properties.clone(),
                        members: Default::default(),
                        manager: None,
                    };
                    outcome.changes.push(ObjectChangeRecord {
                        step: StepKind::CloudExport,
                        dn: dn.to_string(),
                        anchor: anchor.to_string(),
                        object_type: *kind,
                        cloud_id: Some(link.cloud_id.clone()),
                        change_kind: ChangeKind::Add,
                        attributes: added(properties),
                    });
                    outcome.updates.push(ExportUpdate::Link(link.clone()));
                    outcome
                        .updates
                        .push(ExportUpdate::ReferrersPending(dn.clone()));
                    self.links.insert(*anchor, link);
                    Ok(())
                }
                Err(GraphError::Conflict { property, .. })
                    if *kind == ObjectKind::User
                        && property.eq_ignore_ascii_case("onPremisesImmutableId") =>
                {
                    // Already there: made by a run that was stopped before it kept the link, and
                    // not yet visible to cloud import (Graph's advanced queries lag). Link it; its
                    // values are compared and written next run.
                    let immutable_id = properties
                        .get("onPremisesImmutableId")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    match self
                        .graph
                        .user_by_immutable_id(immutable_id, USER_SELECT)
                        .await
                    {
                        Ok(Some(cloud)) => {
                            let link = Link {
                                anchor: *anchor,
                                kind: *kind,
                                dn: dn.clone(),
                                cloud_id: cloud.id.clone(),
                                exported: cloud.properties,
                                members: Default::default(),
                                manager: None,
                            };
                            outcome.updates.push(ExportUpdate::Link(link.clone()));
                            outcome
                                .updates
                                .push(ExportUpdate::ReferrersPending(dn.clone()));
                            self.links.insert(*anchor, link);
                            self.deferred.insert(*anchor);
                            Ok(())
                        }
                        Ok(None) => {
                            let error = GraphError::Conflict {
                                property,
                                value: Some(immutable_id.to_owned()),
                                message: "Graph reports the immutableId in use but no user has it yet; the next run tries again".to_owned(),
                            };
                            self.object_error(*anchor, *kind, dn.as_str(), &error, outcome)
                        }
                        Err(error) => {
                            self.object_error(*anchor, *kind, dn.as_str(), &error, outcome)
                        }
                    }
                }
                Err(error) => self.object_error(*anchor, *kind, dn.as_str(), &error, outcome),
            },
            Operation::Join {
                anchor,
                kind,
                dn,
                cloud_id,
                how,
                changes,
            } => self.written(
                (*anchor, *kind, dn, cloud_id),
                changes,
                Some(*how),
                result,
                outcome,
            ),
            Operation::Update {
                anchor,
                kind,
                dn,
                cloud_id,
                changes,
            } => self.written(
                (*anchor, *kind, dn, cloud_id),
                changes,
                None,
                result,
                outcome,
            ),
            Operation::Delete {
                anchor,
                kind,
                dn,
                cloud_id,
            } => match result {
                Ok(_) | Err(GraphError::NotFound { .. }) => {
                    let old = self
                        .links
                        .remove(anchor)
                        .map(|link| link.exported)
                        .unwrap_or_default();
                    outcome.changes.push(ObjectChangeRecord {
                        step: StepKind::CloudExport,
                        dn: dn.to_string(),
                        anchor: anchor.to_string(),
                        object_type: *kind,
                        cloud_id: Some(cloud_id.clone()),
                        change_kind: ChangeKind::Delete,
                        attributes: removed(&old),
                    });
                    outcome.updates.push(ExportUpdate::Removed(*anchor));
                    Ok(())
                }
                Err(error) => self.object_error(*anchor, *kind, dn.as_str(), &error, outcome),
            },
            Operation::Members { .. } | Operation::Manager { .. } => Ok(()),
        }
    }

    /// The outcome of a join's or an update's PATCH.
    fn written(
        &mut self,
        (anchor, kind, dn, cloud_id): (Guid, ObjectKind, &Dn, &String),
        changes: &[AttributeChange],
        join: Option<JoinKind>,
        result: Result<Option<Value>, GraphError>,
        outcome: &mut ChunkOutcome,
    ) -> Result<(), Halt> {
        let anchor = &anchor;
        let kind = &kind;
        match result {
            Ok(_) => {
                let exported = match (join, self.objects.get(anchor)) {
                    // A join knows the wanted values, not what the cloud had.
                    (Some(_), Some(object)) => cloud_shape(object, self.domains).properties,
                    _ => {
                        let mut exported = self
                            .links
                            .get(anchor)
                            .map(|link| link.exported.clone())
                            .unwrap_or_default();
                        for change in changes {
                            exported.insert(change.property.clone(), change.new.clone());
                        }
                        exported
                    }
                };
                let link = self.links.entry(*anchor).or_insert_with(|| Link {
                    anchor: *anchor,
                    kind: *kind,
                    dn: dn.clone(),
                    cloud_id: cloud_id.clone(),
                    exported: Map::new(),
                    members: Default::default(),
                    manager: None,
                });
                link.dn = dn.clone();
                link.exported = exported;
                let mut attributes: Vec<AttributeValues> = Vec::new();
                if let Some(how) = join {
                    attributes.push(AttributeValues {
                        name: "(joined)".to_owned(),
                        old: Value::Null,
                        new: json!(join_words(how)),
                    });
                }
                attributes.extend(changes.iter().map(|change| AttributeValues {
                    name: change.property.clone(),
                    old: change.old.clone(),
                    new: change.new.clone(),
                }));
                outcome.changes.push(ObjectChangeRecord {
                    step: StepKind::CloudExport,
                    dn: dn.to_string(),
                    anchor: anchor.to_string(),
                    object_type: *kind,
                    cloud_id: Some(cloud_id.clone()),
                    change_kind: ChangeKind::Update,
                    attributes,
                });
                outcome.updates.push(ExportUpdate::Link(link.clone()));
                if join.is_some() {
                    outcome
                        .updates
                        .push(ExportUpdate::ReferrersPending(dn.clone()));
                }
                Ok(())
            }
            Err(error @ GraphError::NotFound { .. }) => {
                // Deleted in the cloud behind dirsync's back: forget the link; the next
                // run joins or creates the object again.
                self.links.remove(anchor);
                outcome.updates.push(ExportUpdate::Unlinked(*anchor));
                self.object_error(*anchor, *kind, dn.as_str(), &error, outcome)
            }
            Err(error) => self.object_error(*anchor, *kind, dn.as_str(), &error, outcome),
        }
    }

    fn reference_result(
        &mut self,
        operation: &Operation,
        reference: Reference,
        result: Result<Option<Value>, GraphError>,
        outcome: &mut ChunkOutcome,
        changes: &mut HashMap<Guid, ReferenceChange>,
    ) -> Result<(), Halt> {
        let (owner, kind) = match operation {
            Operation::Members { group, .. } => (*group, ObjectKind::Group),
            Operation::Manager { user, .. } => (*user, ObjectKind::User),
            _ => return Ok(()),
        };
        let done = match (&result, reference) {
            (Ok(_), _) => true,
            // Already a member (a group found again by its nickname brings its members along).
            (Err(GraphError::BadRequest { message, .. }), Reference::AddMember(_)) => {
                message.to_ascii_lowercase().contains("already exist")
            }
            (
                Err(GraphError::NotFound { .. }),
                Reference::RemoveMember(_) | Reference::RemoveManager,
            ) => true,
            _ => false,
        };
        if !done {
            let error = result.err().unwrap_or_else(|| GraphError::Failed {
                status: 0,
                code: "unknown".to_owned(),
                message: "no answer".to_owned(),
            });
            let dn = self
                .links
                .get(&owner)
                .map(|link| link.dn.to_string())
                .unwrap_or_default();
            return self.object_error(owner, kind, &dn, &error, outcome);
        }
        let Some(link) = self.links.get_mut(&owner) else {
            return Ok(());
        };
        let change = changes.entry(owner).or_default();
        match reference {
            Reference::AddMember(member) => {
                link.members.insert(member);
                change.added.push(member);
            }
            Reference::RemoveMember(member) => {
                link.members.remove(&member);
                change.removed.push(member);
            }
            Reference::SetManager(manager) => {
                change.manager = Some((link.manager, Some(manager)));
                link.manager = Some(manager);
            }
            Reference::RemoveManager => {
                change.manager = Some((link.manager, None));
                link.manager = None;
            }
        }
        Ok(())
    }

    fn reference_record(
        &self,
        owner: Guid,
        change: &ReferenceChange,
    ) -> Option<ObjectChangeRecord> {
        let link = self.links.get(&owner)?;
        let dn_of = |anchor: &Guid| -> Value {
            self.links
                .get(anchor)
                .map(|link| link.dn.to_string())
                .or_else(|| self.objects.get(anchor).map(|object| object.dn.to_string()))
                .map_or(Value::Null, Value::String)
        };
        let mut attributes = Vec::new();
        if !change.added.is_empty() {
            attributes.push(AttributeValues {
                name: "members added".to_owned(),
                old: Value::Null,
                new: Value::Array(change.added.iter().map(dn_of).collect()),
            });
        }
        if !change.removed.is_empty() {
            attributes.push(AttributeValues {
                name: "members removed".to_owned(),
                old: Value::Array(change.removed.iter().map(dn_of).collect()),
                new: Value::Null,
            });
        }
        if let Some((old, new)) = change.manager {
            attributes.push(AttributeValues {
                name: "manager".to_owned(),
                old: old.as_ref().map_or(Value::Null, dn_of),
                new: new.as_ref().map_or(Value::Null, dn_of),
            });
        }
        (!attributes.is_empty()).then(|| ObjectChangeRecord {
            step: StepKind::CloudExport,
            dn: link.dn.to_string(),
            anchor: owner.to_string(),
            object_type: link.kind,
            cloud_id: Some(link.cloud_id.clone()),
            change_kind: ChangeKind::Update,
            attributes,
        })
    }

    fn object_error(
        &mut self,
        anchor: Guid,
        kind: ObjectKind,
        dn: &str,
        error: &GraphError,
        outcome: &mut ChunkOutcome,
    ) -> Result<(), Halt> {
        let (error_type, code, hint) = describe(error);
        let history = self.store.object_error_seen(anchor, error_type, now_ms())?;
        if self.failed.insert(anchor) {
            self.counters.errors += 1;
            self.report.errors += 1;
        }
        outcome.errors.push(ErrorRecord {
            step: StepKind::CloudExport,
            dn: dn.to_owned(),
            anchor: Some(anchor.to_string()),
            object_type: Some(kind),
            error_type: error_type.to_owned(),
            code,
            server_message: error.to_string(),
            hint,
            first_occurred_at: history.first_occurred_at,
            retry_count: history.retry_count,
        });
        Ok(())
    }
}

/// Errors every later request would share: stop the export (what is done is kept) and fail
/// the run, rather than fail every object the same way.
fn stops_the_export(error: &GraphError, all_forbidden: bool) -> bool {
    match error {
        GraphError::Unauthorized { .. }
        | GraphError::SignIn(_)
        | GraphError::NotGraph { .. }
        | GraphError::Throttled { .. }
        | GraphError::Unavailable { .. } => true,
        GraphError::Forbidden { .. } => all_forbidden,
        _ => false,
    }
}

#[derive(Debug, Default)]
struct ReferenceChange {
    added: Vec<Guid>,
    removed: Vec<Guid>,
    manager: Option<(Option<Guid>, Option<Guid>)>,
}

/// The error's type and code for the run record, and what the administrator should do.
fn describe(error: &GraphError) -> (&'static str, Option<String>, String) {
    match error {
        GraphError::Conflict {
            property, value, ..
        } => (
            "conflict",
            Some(property.clone()),
            format!(
                "another cloud object already has {property}{}: find it in the Entra admin center, then change the value on this object in Active Directory or remove it from the other object; the next run tries again",
                value.as_deref().map(|v| format!(" '{v}'")).unwrap_or_default()
            ),
        ),
        GraphError::NotFound { .. } => (
            "not-found",
            None,
            "the cloud object was deleted outside dirsync; the next run creates it again (restore it from Deleted users within 30 days to keep its licenses and mailbox)".to_owned(),
        ),
        GraphError::Forbidden { code, .. } => (
            "forbidden",
            Some(code.clone()),
            "the sync app may not change this cloud object (Graph refuses, for example, to change an administrator's account with User.ReadWrite.All): leave the object out of the scope, or remove its administrator role in the cloud; the next run tries again".to_owned(),
        ),
        GraphError::BadRequest { code, .. } => (
            "rejected",
            Some(code.clone()),
            "Microsoft Graph refused a value of this object; correct the attribute the message names in Active Directory; the next run tries again".to_owned(),
        ),
        other => (
            "failed",
            None,
            match other.kind() {
                ErrorKind::Transient => {
                    "Microsoft Graph was unavailable; the next run tries again".to_owned()
                }
                _ => "see the message; the next run tries again".to_owned(),
            },
        ),
    }
}

fn join_words(how: JoinKind) -> &'static str {
    match how {
        JoinKind::HardMatch => "hard match on onPremisesImmutableId",
        JoinKind::SoftMatchSmtp => "soft match on the primary SMTP address",
        JoinKind::SoftMatchUpn => "soft match on userPrincipalName",
        JoinKind::GroupNickname => "the cloud group with the same mailNickname",
    }
}

fn collection(kind: ObjectKind) -> &'static str {
    match kind {
        ObjectKind::User => ObjectKind::User.collection(),
        ObjectKind::Group => ObjectKind::Group.collection(),
    }
}

fn added(properties: &Map<String, Value>) -> Vec<AttributeValues> {
    properties
        .iter()
        .map(|(name, value)| AttributeValues {
            name: name.clone(),
            old: Value::Null,
            new: value.clone(),
        })
        .collect()
}

fn removed(properties: &Map<String, Value>) -> Vec<AttributeValues> {
    properties
        .iter()
        .map(|(name, value)| AttributeValues {
            name: name.clone(),
            old: value.clone(),
            new: Value::Null,
        })
        .collect()
}

/// A random password for a new cloud user (Graph requires one). 64 characters of every class.
fn initial_password() -> String {
    crate::directory::service_account::random_password()
        .map(|secret| secret.expose().to_owned())
        // The system's random source failing is not something a run can fix; Graph refuses an
        // empty password and the object is reported as an error, never created with a weak one.
        .unwrap_or_default()
}

/// The plan as run-record changes (step synchronization): what a preview or a staging-mode run
/// would have exported.
pub fn planned_changes(
    operations: &[Operation],
    objects: &[DirectoryObject],
    links: &HashMap<Guid, Link>,
) -> Vec<ObjectChangeRecord> {
    let by_anchor: HashMap<Guid, &DirectoryObject> = objects
        .iter()
        .map(|object| (object.anchor, object))
        .collect();
    let dn_of = |anchor: &Guid| -> Value {
        links
            .get(anchor)
            .map(|link| link.dn.to_string())
            .or_else(|| by_anchor.get(anchor).map(|object| object.dn.to_string()))
            .map_or(Value::Null, Value::String)
    };
    let record = |anchor: &Guid,
                  kind: ObjectKind,
                  dn: String,
                  cloud_id: Option<String>,
                  change_kind,
                  attributes| {
        ObjectChangeRecord {
            step: StepKind::Synchronization,
            dn,
            anchor: anchor.to_string(),
            object_type: kind,
            cloud_id,
            change_kind,
            attributes,
        }
    };
    operations
        .iter()
        .map(|operation| match operation {
            Operation::Create {
                anchor,
                kind,
                dn,
                properties,
            } => record(
                anchor,
                *kind,
                dn.to_string(),
                None,
                ChangeKind::Add,
                added(properties),
            ),
            Operation::Join {
                anchor,
                kind,
                dn,
                cloud_id,
                how,
                changes,
            } => {
                let mut attributes = vec![AttributeValues {
                    name: "(joined)".to_owned(),
                    old: Value::Null,
                    new: json!(join_words(*how)),
                }];
                attributes.extend(changes.iter().map(|change| AttributeValues {
                    name: change.property.clone(),
                    old: change.old.clone(),
                    new: change.new.clone(),
                }));
                record(
                    anchor,
                    *kind,
                    dn.to_string(),
                    Some(cloud_id.clone()),
                    ChangeKind::Update,
                    attributes,
                )
            }
            Operation::Update {
                anchor,
                kind,
                dn,
                cloud_id,
                changes,
            } => record(
                anchor,
                *kind,
                dn.to_string(),
                Some(cloud_id.clone()),
                ChangeKind::Update,
                changes
                    .iter()
                    .map(|change| AttributeValues {
                        name: change.property.clone(),
                        old: change.old.clone(),
                        new: change.new.clone(),
                    })
                    .collect(),
            ),
            Operation::Members { group, add, remove } => {
                let mut attributes = Vec::new();
                if !add.is_empty() {
                    attributes.push(AttributeValues {
                        name: "members added".to_owned(),
                        old: Value::Null,
                        new: Value::Array(add.iter().map(dn_of).collect()),
                    });
                }
                if !remove.is_empty() {
                    attributes.push(AttributeValues {
                        name: "members removed".to_owned(),
                        old: Value::Array(remove.iter().map(dn_of).collect()),
                        new: Value::Null,
                    });
                }
                let dn = dn_of(group).as_str().unwrap_or_default().to_owned();
                record(
                    group,
                    ObjectKind::Group,
                    dn,
                    links.get(group).map(|l| l.cloud_id.clone()),
                    ChangeKind::Update,
                    attributes,
                )
            }
            Operation::Manager { user, manager } => {
                let old = links.get(user).and_then(|link| link.manager);
                let dn = dn_of(user).as_str().unwrap_or_default().to_owned();
                record(
                    user,
                    by_anchor
                        .get(user)
                        .map_or(ObjectKind::User, |object| object.kind),
                    dn,
                    links.get(user).map(|l| l.cloud_id.clone()),
                    ChangeKind::Update,
                    vec![AttributeValues {
                        name: "manager".to_owned(),
                        old: old.as_ref().map_or(Value::Null, dn_of),
                        new: manager.as_ref().map_or(Value::Null, dn_of),
                    }],
                )
            }
            Operation::Delete {
                anchor,
                kind,
                dn,
                cloud_id,
            } => record(
                anchor,
                *kind,
                dn.to_string(),
                Some(cloud_id.clone()),
                ChangeKind::Delete,
                links
                    .get(anchor)
                    .map(|link| removed(&link.exported))
                    .unwrap_or_default(),
            ),
        })
        .collect()
}
