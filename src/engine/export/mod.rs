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

use super::attribute_flow::{TenantDomains, cloud_shape, empty_complex};
pub use super::change_records::planned_changes;
use super::change_records::{added, removed};
use super::plan::{AttributeChange, JoinKind, Operation, Plan};
use super::types::{Progress, StopSignal};
use crate::clock::now_ms;
use crate::cloud::{ErrorKind, GraphClient, GraphError, GraphRequest, Method, ObjectKind};
use crate::directory::Dn;
use crate::directory::objects::DirectoryObject;
use crate::guid::Guid;
use crate::rules::SyncRules;
use crate::store::export_lease::{Claim, LeaseTerms};
use crate::store::runs::{ErrorRecord, ObjectChangeRecord, RunId, StepCounters};
use crate::store::sync_state::{CreateIntent, ExportUpdate, Link};
use crate::store::vocabulary::{ChangeKind, StepKind};
use crate::store::{StateStore, StoreError};

mod requests;
mod results;

use requests::collection;
use results::ReferenceChange;

/// Requests sent between two store commits: enough to keep several `$batch`es in flight.
const CHUNK: usize = 400;
/// Rounds of waiting (1, 2, 4, 8, 16 s) for new objects to replicate before a 404 on a member or
/// manager write naming one counts.
const REPLICATION_RETRIES: usize = 5;

pub use super::cloud_properties::{GROUP_SELECT, USER_SELECT};

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
    /// This host no longer holds the export lease (why, in words); what was done is kept.
    LeaseLost(String, ExportReport),
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
    pub store: &'a StateStore,
    pub run_id: RunId,
    /// The objects the plan was made from (the pending ones).
    pub objects: &'a [DirectoryObject],
    pub links: HashMap<Guid, Link>,
    pub domains: &'a TenantDomains,
    pub rules: &'a SyncRules,
    /// The sync app's service principal id: the owner of the groups dirsync creates, which is
    /// how a group whose create answer was lost is proven dirsync's (`engine::lost_creates`).
    pub sync_app: Option<&'a str>,
    /// Renewed before every batch when hosts share the database: a batch is sent only while
    /// this host holds the export lease.
    pub lease: Option<&'a LeaseTerms>,
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
        rules: context.rules,
        sync_app: context.sync_app,
        counters,
        report: ExportReport::default(),
        failed: HashSet::new(),
        deferred: HashSet::new(),
        created: HashSet::new(),
        disabled: Vec::new(),
        progress,
        stop,
        lease: context.lease,
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
        Err(Halt::LeaseLost(reason)) => Err(ExportError::LeaseLost(reason, report)),
    }
}

enum Halt {
    Stopped,
    LeaseLost(String),
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
    store: &'a StateStore,
    run_id: RunId,
    objects: HashMap<Guid, &'a DirectoryObject>,
    links: HashMap<Guid, Link>,
    domains: &'a TenantDomains,
    rules: &'a SyncRules,
    sync_app: Option<&'a str>,
    counters: &'c mut StepCounters,
    report: ExportReport,
    /// Objects with a failed write this run: they stay pending.
    failed: HashSet<Guid>,
    /// Objects linked this run whose values are written next run: they stay pending.
    deferred: HashSet<Guid>,
    /// Cloud ids of the objects this run created (or found after a lost create answer).
    created: HashSet<String>,
    /// Users the current chunk disabled, whose sessions are revoked next.
    disabled: Vec<(Guid, Dn, String)>,
    progress: &'a (dyn Fn(Progress) + Sync),
    stop: &'a StopSignal,
    lease: Option<&'a LeaseTerms>,
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
        let (deletes, references): (Vec<&Operation>, Vec<&Operation>) =
            rest.into_iter().partition(|operation| {
                matches!(
                    operation,
                    Operation::Delete { .. } | Operation::Disable { .. }
                )
            });

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
                    let request = match operation {
                        Operation::Delete { kind, cloud_id, .. } => {
                            GraphRequest::new(Method::Delete, &[collection(*kind), cloud_id])
                        }
                        Operation::Disable { cloud_id, .. } => {
                            GraphRequest::new(Method::Patch, &["users", cloud_id])
                                .with_body(json!({ "accountEnabled": false }))
                        }
                        _ => unreachable!("partitioned above"),
                    };
                    Write {
                        operation,
                        request: Some(request),
                        reference: None,
                    }
                })
                .collect();
            self.send(writes).await?;
            self.revoke_sessions_of_disabled().await?;
        }
        Ok(())
    }

    /// Users disabled by the last chunk lose their sign-in sessions too (a disabled account's
    /// refresh tokens and session cookies would otherwise live on for a while).
    async fn revoke_sessions_of_disabled(&mut self) -> Result<(), Halt> {
        let disabled = std::mem::take(&mut self.disabled);
        if disabled.is_empty() {
            return Ok(());
        }
        let requests: Vec<GraphRequest> = disabled
            .iter()
            .map(|(_, _, cloud_id)| {
                GraphRequest::new(Method::Post, &["users", cloud_id, "revokeSignInSessions"])
            })
            .collect();
        let results = self.graph.batch(&requests).await;
        let mut outcome = ChunkOutcome::default();
        for ((anchor, dn, _), result) in disabled.iter().zip(results) {
            if let Err(error) = result {
                self.object_error(*anchor, ObjectKind::User, dn.as_str(), &error, &mut outcome)?;
            }
        }
        self.keep(&outcome)
    }

    /// Sends one chunk, applies its results, and keeps them before returning.
    async fn send(&mut self, writes: Vec<Write<'_>>) -> Result<(), Halt> {
        if self.stop.is_stopped() {
            return Err(Halt::Stopped);
        }
        if let Some(lease) = self.lease {
            match self
                .store
                .claim_export_lease(&lease.host, now_ms(), lease.lease_ms)?
            {
                Claim::Ours { .. } => {}
                Claim::Theirs { holder, .. } => {
                    return Err(Halt::LeaseLost(format!(
                        "the export lease passed to host {holder}"
                    )));
                }
                Claim::StoodDown => {
                    return Err(Halt::LeaseLost("this host was stepped down".to_owned()));
                }
            }
        }
        let requests: Vec<GraphRequest> = writes
            .iter()
            .filter_map(|write| write.request.clone())
            .collect();
        // Before a create is sent, its intent is kept: if its answer is lost or this process
        // dies, the next run looks for what it made (README, "Joining").
        let now = now_ms();
        let intents: Vec<CreateIntent> = writes
            .iter()
            .filter_map(|write| results::create_intent(write.operation, now))
            .collect();
        self.store.record_create_intents(&intents)?;
        let mut results = self.graph.batch(&requests).await;
        self.retry_references_to_new_objects(&requests, &mut results)
            .await;
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

    /// A member or manager write naming an object created moments ago may answer 404: the new
    /// object has not reached every directory replica yet. Such writes are sent again after a
    /// growing wait (about half a minute in all) before their 404 counts.
    async fn retry_references_to_new_objects(
        &self,
        requests: &[GraphRequest],
        results: &mut [Result<Option<Value>, GraphError>],
    ) {
        let mut wait = std::time::Duration::from_secs(1);
        for _ in 0..REPLICATION_RETRIES {
            let waiting: Vec<usize> = (0..requests.len())
                .filter(|&index| {
                    matches!(results[index], Err(GraphError::NotFound { .. }))
                        && self.names_a_new_object(&requests[index])
                })
                .collect();
            if waiting.is_empty() {
                return;
            }
            tracing::debug!(
                writes = waiting.len(),
                wait_ms = wait.as_millis() as u64,
                "references to new objects answered 404; waiting for replication"
            );
            tokio::time::sleep(wait).await;
            wait *= 2;
            let again: Vec<GraphRequest> = waiting
                .iter()
                .map(|&index| requests[index].clone())
                .collect();
            for (index, result) in waiting.into_iter().zip(self.graph.batch(&again).await) {
                results[index] = result;
            }
        }
    }

    /// A `$ref` write (adding a member, setting a manager) whose object or target was created
    /// in this run.
    fn names_a_new_object(&self, request: &GraphRequest) -> bool {
        let adds = matches!(request.method, Method::Post | Method::Put)
            && request.segments.last().is_some_and(|last| last == "$ref");
        let target = request
            .body
            .as_ref()
            .and_then(|body| body.get("@odata.id"))
            .and_then(Value::as_str)
            .and_then(|url| url.rsplit('/').next());
        adds && request
            .segments
            .iter()
            .map(String::as_str)
            .chain(target)
            .any(|id| self.created.contains(id))
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
