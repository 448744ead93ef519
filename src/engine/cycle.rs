//! One sync cycle (README, "Syncing"): directory import → cloud import → synchronization → cloud
//! export (→ write-back export with hybrid write-back on), recorded step by step in the store. The
//! runner runs it for every caller (ARCHITECTURE.md, "Running a cycle").
//!
//! Safety comes from the store's sync state, not from finishing: the directory's changes and
//! their DirSync cookie are saved together, and an object stays pending until the transaction
//! that records its export. A cycle killed at any point leaves work that the next one redoes,
//! and the plan's look-before-create (hard match on the immutableId, groups by mailNickname)
//! makes the redo create nothing twice.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::addresses::{mail_nickname, primary_smtp};
use super::attribute_flow::TenantDomains;
use super::export::{self, ExportContext, GROUP_SELECT, USER_SELECT};
use super::import_changes::{import_change, import_delete};
use super::plan::{Operation, Plan, PlanInput, PlanOptions, plan};
pub use super::recorder::CycleReport;
use super::recorder::RunRecorder;
pub use super::types::{CycleError, Progress, StopSignal};
use super::validation::Severity;
use super::write_back::{self, WriteBackContext, WriteBackSchema};
use crate::clock::now_ms;
use crate::cloud::graph::DeltaLink;
use crate::cloud::mailboxes::{MailboxChange, MailboxPage};
use crate::cloud::{
    CloudObject, CloudQuery, Credentials, FlowPolicy, GraphClient, GraphError, ObjectKind,
};
use crate::config::Config;
use crate::directory::import::{DirSyncCookie, DirectoryChange, FullImport, MemberChanges};
use crate::directory::objects::DirectoryObject;
use crate::directory::reader::{DirectoryReader, RetryPolicy};
use crate::directory::{DirectoryError, Dn};
use crate::guid::Guid;
use crate::secret_store::SecretStore;
use crate::store::runs::{ErrorRecord, StepCounters};
use crate::store::sync_state::{DIRSYNC_CURSOR, ExportUpdate, SCOPE_CURSOR};
use crate::store::vocabulary::{RunMode, RunStatus, RunTrigger, StepKind};
use crate::store::write_back::{WRITE_BACK_CURSOR, WRITE_BACK_SCHEMA_CURSOR};
use crate::store::{SqliteStore, StoreError};
use crate::tls::TlsTrust;
use futures::StreamExt as _;

/// What the caller asks of a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CycleRequest {
    pub trigger: RunTrigger,
    /// Read every object in scope, not only the changes.
    pub full: bool,
    /// Everything but the export; the report says what would change.
    pub preview: bool,
    /// The administrator confirmed this many deletes after the threshold stopped a run: a run
    /// with at most this many makes them. `None`: the threshold holds.
    pub confirmed_deletes: Option<usize>,
}

impl CycleRequest {
    /// A cycle for `trigger`: delta (full when needed), exporting, the threshold holding.
    pub fn new(trigger: RunTrigger) -> CycleRequest {
        CycleRequest {
            trigger,
            full: false,
            preview: false,
            confirmed_deletes: None,
        }
    }
}

/// The two sides a cycle talks to, signed in as setup configured them.
#[derive(Debug)]
pub struct Connections {
    pub directory: DirectoryReader,
    pub graph: GraphClient,
}

impl Connections {
    /// Signs in as the service account and the sync app, with their secrets from the keyring.
    pub fn open(
        config: &Config,
        secrets: &dyn SecretStore,
        policy: FlowPolicy,
    ) -> Result<Connections, CycleError> {
        let missing = |what: &str, key: &str| CycleError::MissingSecret(secrets.missing(what, key));
        let account_key = config.service_account_key();
        let password = secrets
            .load(&account_key)?
            .ok_or_else(|| missing("the service account's password", &account_key))?;
        let graph = sync_app_client(config, secrets, policy)?;
        let directory = DirectoryReader::new(
            config.directory_target()?,
            config.directory.service_account_dn.clone(),
            password,
            config.naming_context(),
            RetryPolicy::default(),
        );
        Ok(Connections { directory, graph })
    }
}

/// The sync app's Graph client, signed in with its certificate or secret from the secret store.
pub fn sync_app_client(
    config: &Config,
    secrets: &dyn SecretStore,
    policy: FlowPolicy,
) -> Result<GraphClient, CycleError> {
    let key = config.app_credential_key();
    let what = if config.cloud.certificate_thumbprint.is_some() {
        "the sync app's certificate key"
    } else {
        "the sync app's client secret"
    };
    let credential = secrets
        .load(&key)?
        .ok_or_else(|| CycleError::MissingSecret(secrets.missing(what, &key)))?;
    let endpoints = config.endpoints()?;
    let client_id = config.cloud.client_id.clone();
    let credentials = match &config.cloud.certificate_thumbprint {
        Some(thumbprint) => Credentials::Certificate {
            client_id,
            private_key: credential,
            thumbprint: thumbprint.clone(),
        },
        None => Credentials::ClientSecret {
            client_id,
            secret: credential,
        },
    };
    GraphClient::new(
        &endpoints,
        &config.cloud.tenant_id,
        credentials,
        &TlsTrust::SystemRoots,
        policy,
    )
    .map_err(CycleError::from)
}

/// Runs one cycle and records it. The caller holds the run lock. A failure is recorded on the
/// run (status `failed`) and returned in the report, not as an `Err`; `Err` means the store itself
/// could not record the run.
pub async fn run_cycle(
    config: &Config,
    connections: &mut Connections,
    store: &SqliteStore,
    request: CycleRequest,
    progress: &(dyn Fn(Progress) + Sync),
    stop: &StopSignal,
) -> Result<CycleReport, StoreError> {
    let mode = if request.preview {
        RunMode::Preview
    } else if needs_full_import(config, store, request)? {
        RunMode::Full
    } else {
        RunMode::Delta
    };
    let recorder = RunRecorder::start(store, request.trigger, mode, config, progress)?;
    let retention = Duration::from_secs(u64::from(config.options.retention_days) * 86_400);
    let pruned = store.prune_runs(now_ms() - retention.as_millis() as i64)?;
    if pruned > 0 {
        tracing::info!(
            pruned,
            "run history older than the retention period removed"
        );
    }
    let mut cycle = Cycle {
        config,
        connections,
        store,
        request,
        stop,
        recorder,
    };
    let outcome = cycle.run().await;
    let mut recorder = cycle.recorder;
    let report = &recorder.report;
    let status = match outcome {
        Ok(()) => {
            let errors = report.plan.errors.len() + report.export.errors + report.write_back.errors;
            if report.deletes_withheld > 0 {
                RunStatus::StoppedDeletionThreshold
            } else if errors > 0 {
                RunStatus::CompletedWithErrors
            } else {
                RunStatus::Success
            }
        }
        Err(CycleError::Stopped) => RunStatus::Cancelled,
        Err(CycleError::Store(error)) => {
            // The store failed: try to mark the run, then report the store's error.
            recorder.abandon();
            return Err(error);
        }
        Err(error) => {
            recorder.fail(error.to_string(), run_failure_hint(&error))?;
            RunStatus::Failed
        }
    };
    let throttled = recorder.report.export.throttled;
    recorder.finish(status, throttled)
}

/// A full import on request, on the first run, and when the scope changed since the last one
/// (a delta read would miss objects that entered or left the scope without changing).
fn needs_full_import(
    config: &Config,
    store: &SqliteStore,
    request: CycleRequest,
) -> Result<bool, StoreError> {
    Ok(request.full
        || store.cursor(DIRSYNC_CURSOR)?.is_none()
        || store.cursor(SCOPE_CURSOR)?.as_deref() != Some(scope_fingerprint(config).as_bytes()))
}

/// The scope as the store remembers it: included and excluded DNs, normalized and sorted.
fn scope_fingerprint(config: &Config) -> String {
    let scope = config.scope();
    let normalized = |dns: &[Dn]| {
        let mut dns: Vec<&str> = dns.iter().map(Dn::normalized).collect();
        dns.sort_unstable();
        dns.join(";")
    };
    format!(
        "included={}|excluded={}",
        normalized(scope.included()),
        normalized(scope.excluded())
    )
}

fn run_failure_hint(error: &CycleError) -> String {
    match error {
        CycleError::Directory(error) if error.is_transient() => {
            "the domain controller could not be reached; check that it is up and reachable, then run again (nothing was lost: the next run continues where this one stopped)".to_owned()
        }
        CycleError::Directory(_) => {
            "fix what the message names in the directory settings (run setup again to change them), then run again".to_owned()
        }
        CycleError::Graph(_) => {
            "nothing was lost: objects not exported stay pending and the next run exports them; if the message names a permission or sign-in, run setup again".to_owned()
        }
        CycleError::MissingSecret(_)
        | CycleError::SecretStore(_)
        | CycleError::Endpoints(_)
        | CycleError::GraphClient(_) => {
            "run setup again (the wizard or `dirsync setup`)".to_owned()
        }
        CycleError::Store(_) | CycleError::Stopped => String::new(),
    }
}

struct Cycle<'a> {
    config: &'a Config,
    connections: &'a mut Connections,
    store: &'a SqliteStore,
    request: CycleRequest,
    stop: &'a StopSignal,
    recorder: RunRecorder<'a>,
}

impl Cycle<'_> {
    async fn run(&mut self) -> Result<(), CycleError> {
        let full = self.recorder.report.mode == RunMode::Full
            || (self.request.preview && needs_full_import(self.config, self.store, self.request)?);
        self.step(StepKind::DirectoryImport)?;
        let counters = if full {
            self.full_import().await?
        } else {
            match self.delta_import().await {
                Err(CycleError::Directory(DirectoryError::CookieRejected { .. })) => {
                    tracing::warn!(
                        "the domain controller no longer accepts the saved DirSync cookie; reading every object instead"
                    );
                    self.full_import().await?
                }
                other => other?,
            }
        };
        self.end_step(StepKind::DirectoryImport, counters)?;
        self.check_stop()?;

        let links = self.store.links()?;
        let objects = self.store.pending_objects()?;
        let gone = self.store.gone_anchors()?;

        self.step(StepKind::CloudImport)?;
        let needs_cloud = objects
            .iter()
            .any(|object| !links.contains_key(&object.anchor));
        let (cloud, mut counters) = if needs_cloud {
            self.cloud_import(&objects, &links).await?
        } else {
            (Vec::new(), StepCounters::default())
        };
        let domains = self.tenant_domains().await?;
        let mailboxes_read = if self.config.options.hybrid_write_back {
            self.import_mailboxes(&mut counters).await?
        } else {
            false
        };
        self.end_step(StepKind::CloudImport, counters)?;
        self.check_stop()?;

        self.step(StepKind::Synchronization)?;
        let options = PlanOptions {
            deletion_threshold: self.config.options.deletion_threshold,
            confirmed_deletes: self.request.confirmed_deletes,
            soft_match_upn: self.config.options.soft_match_upn,
        };
        let planned = plan(&PlanInput {
            objects: &objects,
            gone: &gone,
            full: false,
            links: &links,
            cloud: &cloud,
            domains: &domains,
            options: &options,
        });
        self.recorder.report.deletes_withheld = planned.withheld_deletes.len();
        let counters = self.record_plan(&planned, &objects, &links)?;
        self.end_step(StepKind::Synchronization, counters)?;
        let exporting = !self.request.preview && !self.config.options.staging_mode;
        if exporting {
            self.forget_unlinked_gone(&gone, &links)?;
        }
        self.recorder.report.plan = planned;
        if !exporting {
            return Ok(());
        }
        self.check_stop()?;

        self.step(StepKind::CloudExport)?;
        let mut counters = StepCounters::default();
        let context = ExportContext {
            graph: &self.connections.graph,
            store: self.store,
            run_id: self.recorder.run_id(),
            objects: &objects,
            links,
            domains: &domains,
        };
        let result = export::export(
            context,
            &self.recorder.report.plan,
            &mut counters,
            self.recorder.progress_callback(),
            self.stop,
        )
        .await;
        self.end_step(StepKind::CloudExport, counters)?;
        match result {
            Ok(report) => {
                self.recorder.report.export = report;
                if mailboxes_read {
                    self.check_stop()?;
                    self.write_back_export().await?;
                }
                Ok(())
            }
            Err(export::ExportError::Stopped(report)) => {
                self.recorder.report.export = report;
                Err(CycleError::Stopped)
            }
            Err(export::ExportError::Graph(error, report)) => {
                self.recorder.report.export = report;
                Err(CycleError::Graph(error))
            }
            Err(export::ExportError::Store(error)) => Err(CycleError::Store(error)),
        }
    }

    /// Reads the tenant's mailbox changes into the store (hybrid write-back), counted as
    /// updates. A tenant without the mailbox endpoint is the run's error, not its failure: the
    /// rest of the cycle goes on, and write-back waits. Returns whether the read succeeded.
    async fn import_mailboxes(&mut self, counters: &mut StepCounters) -> Result<bool, CycleError> {
        let saved = self
            .store
            .cursor(WRITE_BACK_CURSOR)?
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .map(DeltaLink);
        let graph = &self.connections.graph;
        let mut delta = graph.mailbox_delta(saved.as_ref())?;
        let mut started_over = false;
        loop {
            let page = delta.next_page().await?;
            let Some(page) = page else {
                return Ok(true);
            };
            match page {
                MailboxPage::Changes {
                    changes,
                    delta_link,
                } => {
                    let mut changed = Vec::new();
                    let mut removed = Vec::new();
                    for change in &changes {
                        match change {
                            MailboxChange::Changed { item, mailbox } => {
                                changed.push((mailbox.user_id.as_str(), item));
                            }
                            MailboxChange::Removed { user_id } => removed.push(user_id.as_str()),
                        }
                    }
                    counters.updates += changed.len() as u64;
                    // The link is kept only with the last page: a read that stops halfway
                    // starts again from the old link, and saving a mailbox twice is harmless.
                    let link = delta_link.as_ref().map(|link| link.0.as_str());
                    self.store
                        .save_mailbox_changes(&changed, &removed, link, now_ms())?;
                }
                MailboxPage::ResyncRequired if saved.is_some() && !started_over => {
                    tracing::warn!(
                        "the tenant no longer knows the saved mailbox delta link; reading every mailbox instead"
                    );
                    started_over = true;
                    delta = graph.mailbox_delta(None)?;
                }
                MailboxPage::ResyncRequired => {
                    return Err(CycleError::Graph(GraphError::NotGraph {
                        url: self.config.cloud.graph.clone(),
                        what: "a mailbox delta that asks to start over when started over"
                            .to_owned(),
                    }));
                }
                MailboxPage::Missing { url, answer } => {
                    let message = format!(
                        "hybrid write-back is on, but the tenant has no mailbox endpoint ({url} answered: {answer}); public Microsoft Graph offers none, so no mailbox attribute is written back"
                    );
                    counters.errors += 1;
                    self.recorder.report.write_back.errors += 1;
                    self.store.record_errors(
                    self.recorder.run_id(),
                    &[ErrorRecord {
                        step: StepKind::CloudImport,
                        dn: String::new(),
                        anchor: None,
                        object_type: None,
                        error_type: "write-back-unavailable".to_owned(),
                        code: None,
                        server_message: message,
                        hint: "turn hybrid write-back off (run setup again with options.hybrid_write_back = false), or point dirsync at a tenant service that offers the mailbox attributes".to_owned(),
                        first_occurred_at: now_ms(),
                        retry_count: 0,
                    }],
                )?;
                    return Ok(false);
                }
            }
        }
    }

    /// The write-back export step: reads which write-back attributes the forest's schema has
    /// (saying which it skips), then writes the pending mailboxes as the service account.
    async fn write_back_export(&mut self) -> Result<(), CycleError> {
        self.step(StepKind::WriteBackExport)?;
        let connection = self.connections.directory.connection().await?;
        let root = crate::directory::forest::read_root_dse(connection).await?;
        let (present, missing) = crate::directory::permissions::write_back_schema(
            connection,
            &root.schema_naming_context,
        )
        .await?;
        let schema = WriteBackSchema {
            writable: present
                .into_iter()
                .map(|attribute| attribute.name)
                .collect(),
            skipped: missing,
        };
        if self.store.cursor(WRITE_BACK_SCHEMA_CURSOR)?.as_deref()
            != Some(schema.fingerprint().as_bytes())
        {
            // An attribute appeared (or went): every mailbox is checked against AD again.
            self.store.mark_all_mailboxes_pending()?;
            self.store.set_cursor(
                WRITE_BACK_SCHEMA_CURSOR,
                schema.fingerprint().as_bytes(),
                now_ms(),
            )?;
        }
        let warnings: Vec<crate::store::runs::WarningRecord> = schema
            .skipped
            .iter()
            .map(|attribute| crate::store::runs::WarningRecord {
                dn: root.schema_naming_context.clone(),
                anchor: String::new(),
                attribute: attribute.clone(),
                value: String::new(),
                message: format!(
                    "the forest's schema has no {attribute}; hybrid write-back skips it (extend the schema with Exchange's to have it written)"
                ),
            })
            .collect();
        self.store
            .record_warnings(self.recorder.run_id(), &warnings)?;
        self.recorder.report.write_back.skipped = schema.skipped.clone();

        let mut counters = StepCounters::default();
        let context = WriteBackContext {
            connection,
            store: self.store,
            run_id: self.recorder.run_id(),
            schema: &schema,
            progress: self.recorder.progress_callback(),
            stop: self.stop,
        };
        let result = write_back::export(
            &context,
            &mut counters,
            &mut self.recorder.report.write_back,
        )
        .await;
        self.end_step(StepKind::WriteBackExport, counters)?;
        result
    }

    fn check_stop(&self) -> Result<(), CycleError> {
        if self.stop.is_stopped() {
            Err(CycleError::Stopped)
        } else {
            Ok(())
        }
    }

    fn step(&mut self, step: StepKind) -> Result<(), CycleError> {
        Ok(self.recorder.step(step)?)
    }

    fn end_step(&mut self, step: StepKind, counters: StepCounters) -> Result<(), CycleError> {
        Ok(self.recorder.end_step(step, counters)?)
    }

    /// Reads every object in scope. The cookie for "now" is taken first, so that changes made
    /// during the import are read again by the next delta run rather than missed. Objects the
    /// store knows and AD no longer has are gone (deleted while nobody watched).
    async fn full_import(&mut self) -> Result<StepCounters, CycleError> {
        let scope = self.config.scope();
        let cookie = self.connections.directory.current_cookie().await?;
        let known: HashSet<Guid> = self.store.known_anchors()?.into_iter().collect();
        let mut counters = StepCounters::default();
        let mut seen: HashSet<Guid> = HashSet::new();
        let connection = self.connections.directory.connection().await?;
        let mut import = FullImport::new(connection, &scope);
        while let Some(page) = import.next_page().await? {
            let mut changes = Vec::new();
            for object in &page {
                let stored = self.store.directory_object(object.anchor)?;
                match import_change(stored.as_ref(), object) {
                    Some(change) => {
                        counters.count(change.change_kind);
                        changes.push(change);
                    }
                    None => counters.no_change += 1,
                }
                seen.insert(object.anchor);
            }
            self.store
                .record_import_changes(self.recorder.run_id(), &changes)?;
            // A full run evaluates every object again (a changed tenant domain, say, changes
            // what an unchanged object should look like in the cloud).
            self.store.save_import(&page, &[], None, now_ms())?;
            self.recorder.progress(Progress::Objects {
                step: StepKind::DirectoryImport,
                done: seen.len() as u64,
                total: None,
            });
            if self.stop.is_stopped() {
                return Err(CycleError::Stopped);
            }
        }
        let gone: Vec<Guid> = known.difference(&seen).copied().collect();
        counters.deletes = gone.len() as u64;
        let mut deleted = Vec::new();
        for anchor in &gone {
            if let Some(stored) = self.store.directory_object(*anchor)? {
                deleted.push(import_delete(&stored));
            }
        }
        self.store
            .record_import_changes(self.recorder.run_id(), &deleted)?;
        self.store.save_import(
            &[],
            &gone,
            Some((DIRSYNC_CURSOR, cookie.as_bytes())),
            now_ms(),
        )?;
        self.store.set_cursor(
            SCOPE_CURSOR,
            scope_fingerprint(self.config).as_bytes(),
            now_ms(),
        )?;
        Ok(counters)
    }

    /// Reads the changes since the saved cookie, keeping each answer with its cookie.
    async fn delta_import(&mut self) -> Result<StepCounters, CycleError> {
        let scope = self.config.scope();
        let mut cookie =
            DirSyncCookie::from_bytes(self.store.cursor(DIRSYNC_CURSOR)?.unwrap_or_default());
        let mut counters = StepCounters::default();
        let mut done = 0u64;
        loop {
            let batch = self
                .connections
                .directory
                .read_changes(&scope, &cookie)
                .await?;
            let mut objects = Vec::new();
            let mut gone = Vec::new();
            let mut changes = Vec::new();
            for change in batch.changes {
                match change {
                    DirectoryChange::InScope {
                        object, members, ..
                    } => {
                        let stored = self.store.directory_object(object.anchor)?;
                        let object = with_members(object, members, stored.as_ref());
                        // DirSync also reports changes to attributes dirsync does not read:
                        // those objects are unchanged here.
                        match import_change(stored.as_ref(), &object) {
                            Some(change) => {
                                counters.count(change.change_kind);
                                changes.push(change);
                            }
                            None => counters.no_change += 1,
                        }
                        objects.push(object);
                    }
                    DirectoryChange::OutOfScope { anchor, .. }
                    | DirectoryChange::Deleted { anchor } => {
                        if let Some(stored) = self.store.directory_object(anchor)? {
                            counters.deletes += 1;
                            changes.push(import_delete(&stored));
                        }
                        gone.push(anchor);
                    }
                }
            }
            self.store
                .record_import_changes(self.recorder.run_id(), &changes)?;
            done += (objects.len() + gone.len()) as u64;
            self.store.save_import(
                &objects,
                &gone,
                Some((DIRSYNC_CURSOR, batch.cookie.as_bytes())),
                now_ms(),
            )?;
            self.recorder.progress(Progress::Objects {
                step: StepKind::DirectoryImport,
                done,
                total: None,
            });
            cookie = batch.cookie;
            if !batch.more_results {
                return Ok(counters);
            }
        }
    }

    /// What the tenant holds, for joining objects that have no link yet. A few such objects are
    /// looked up one by one (by immutableId, SMTP address, UPN or group nickname), so a run with
    /// a handful of new objects never lists a large tenant; many are read with one listing.
    async fn cloud_import(
        &mut self,
        objects: &[DirectoryObject],
        links: &HashMap<Guid, crate::store::sync_state::Link>,
    ) -> Result<(Vec<CloudObject>, StepCounters), CycleError> {
        let unlinked: Vec<&DirectoryObject> = objects
            .iter()
            .filter(|object| !links.contains_key(&object.anchor) && !object.is_system_object())
            .collect();
        let graph = &self.connections.graph;
        let cloud = if unlinked.len() > LOOKUP_LIMIT {
            let mut cloud = graph.list(ObjectKind::User, USER_SELECT).await?;
            cloud.extend(graph.list(ObjectKind::Group, GROUP_SELECT).await?);
            cloud
        } else {
            let soft_match_upn = self.config.options.soft_match_upn;
            let lookups: Vec<(ObjectKind, CloudQuery)> = unlinked
                .iter()
                .flat_map(|object| lookups_for(object, soft_match_upn))
                .collect();
            let found: Vec<Result<Vec<CloudObject>, GraphError>> =
                futures::stream::iter(lookups.iter().map(|(kind, lookup)| {
                    let select = match kind {
                        ObjectKind::User => USER_SELECT,
                        ObjectKind::Group => GROUP_SELECT,
                    };
                    graph.find(*kind, lookup, select)
                }))
                .buffer_unordered(LOOKUPS_IN_FLIGHT)
                .collect()
                .await;
            let mut by_id: HashMap<String, CloudObject> = HashMap::new();
            for result in found {
                for object in result? {
                    by_id.insert(object.id.clone(), object);
                }
            }
            by_id.into_values().collect()
        };
        let linked: HashSet<&str> = links.values().map(|link| link.cloud_id.as_str()).collect();
        let mut counters = StepCounters::default();
        for object in &cloud {
            if linked.contains(object.id.as_str()) {
                counters.no_change += 1;
            } else {
                counters.adds += 1;
            }
        }
        self.recorder.progress(Progress::Objects {
            step: StepKind::CloudImport,
            done: cloud.len() as u64,
            total: Some(cloud.len() as u64),
        });
        Ok((cloud, counters))
    }

    async fn tenant_domains(&self) -> Result<TenantDomains, CycleError> {
        let domains = crate::cloud::setup::verified_domains(&self.connections.graph).await?;
        Ok(TenantDomains {
            initial: domains
                .iter()
                .find(|domain| domain.is_initial)
                .map(|domain| domain.name.clone())
                .unwrap_or_default(),
            verified: domains.into_iter().map(|domain| domain.name).collect(),
        })
    }

    /// Records the plan's errors and warnings; counts what the stage decided.
    fn record_plan(
        &mut self,
        planned: &Plan,
        objects: &[DirectoryObject],
        links: &HashMap<Guid, crate::store::sync_state::Link>,
    ) -> Result<StepCounters, CycleError> {
        let now = now_ms();
        let mut errors = Vec::new();
        for report in &planned.errors {
            let history =
                self.store
                    .object_error_seen(report.anchor, report.issues[0].rule.word(), now)?;
            for issue in &report.issues {
                errors.push(ErrorRecord {
                    step: StepKind::Synchronization,
                    dn: report.dn.to_string(),
                    anchor: Some(report.anchor.to_string()),
                    object_type: Some(report.kind),
                    error_type: issue.rule.word().to_owned(),
                    code: Some(issue.attribute.clone()),
                    server_message: issue.statement(),
                    hint: issue.hint(),
                    first_occurred_at: history.first_occurred_at,
                    retry_count: history.retry_count,
                });
            }
        }
        self.store.record_errors(self.recorder.run_id(), &errors)?;
        let warnings: Vec<_> = planned
            .warnings
            .iter()
            .flat_map(|report| {
                report
                    .issues
                    .iter()
                    .filter(|issue| issue.severity == Severity::Warning)
                    .map(|issue| crate::store::runs::WarningRecord {
                        dn: report.dn.to_string(),
                        anchor: report.anchor.to_string(),
                        attribute: issue.attribute.clone(),
                        value: issue.value.clone(),
                        message: issue.hint(),
                    })
            })
            .collect();
        self.store
            .record_warnings(self.recorder.run_id(), &warnings)?;
        if self.request.preview || self.config.options.staging_mode {
            // Nothing is exported: the planned changes are the run's record.
            let changes = export::planned_changes(&planned.operations, objects, links);
            self.store
                .record_changes(self.recorder.run_id(), &changes)?;
        }
        // Deletes the threshold held back are kept with the step that decided them, so the
        // administrator can see exactly what would go before letting it proceed.
        let withheld = export::planned_changes(&planned.withheld_deletes, objects, links);
        self.store
            .record_changes(self.recorder.run_id(), &withheld)?;
        let mut counters = StepCounters {
            no_change: planned.unchanged as u64,
            errors: planned.errors.len() as u64,
            deletes: planned.withheld_deletes.len() as u64,
            ..StepCounters::default()
        };
        // Objects already counted: a create's or an update's members and manager are part of
        // that add or update (the plan lists them after every object write).
        let mut counted: HashSet<Guid> = HashSet::new();
        for operation in &planned.operations {
            match operation {
                Operation::Create { anchor, .. } => {
                    counted.insert(*anchor);
                    counters.adds += 1;
                }
                Operation::Delete { .. } => counters.deletes += 1,
                Operation::Join { anchor, .. }
                | Operation::Update { anchor, .. }
                | Operation::Members { group: anchor, .. }
                | Operation::Manager { user: anchor, .. } => {
                    if counted.insert(*anchor) {
                        counters.updates += 1;
                    }
                }
            }
        }
        Ok(counters)
    }

    /// Gone objects that were never exported have nothing to delete in the cloud: forget them.
    fn forget_unlinked_gone(
        &self,
        gone: &[Guid],
        links: &HashMap<Guid, crate::store::sync_state::Link>,
    ) -> Result<(), CycleError> {
        let forget: Vec<ExportUpdate> = gone
            .iter()
            .filter(|anchor| !links.contains_key(anchor))
            .map(|anchor| ExportUpdate::Removed(*anchor))
            .collect();
        self.store.apply_export(&forget)?;
        Ok(())
    }
}

/// Above this many objects without a link, cloud import lists the tenant instead of looking
/// each one up.
const LOOKUP_LIMIT: usize = 100;
const LOOKUPS_IN_FLIGHT: usize = 8;

/// The lookups that find any cloud object the plan could join `object` to.
fn lookups_for(object: &DirectoryObject, soft_match_upn: bool) -> Vec<(ObjectKind, CloudQuery)> {
    let equals = |property: &'static str, value: &str| CloudQuery::Equals {
        property,
        value: value.to_owned(),
    };
    match object.kind {
        ObjectKind::Group => mail_nickname(object)
            .map(|nickname| vec![(ObjectKind::Group, equals("mailNickname", &nickname))])
            .unwrap_or_default(),
        ObjectKind::User => {
            let mut lookups = vec![(
                ObjectKind::User,
                equals("onPremisesImmutableId", &object.immutable_id()),
            )];
            if let Some(smtp) = primary_smtp(object).or_else(|| object.first("mail")) {
                lookups.push((ObjectKind::User, CloudQuery::SmtpAddress(smtp.to_owned())));
                lookups.push((ObjectKind::User, equals("mail", smtp)));
            }
            if soft_match_upn && let Some(upn) = object.first("userPrincipalName") {
                lookups.push((ObjectKind::User, equals("userPrincipalName", upn)));
            }
            lookups
        }
    }
}

/// A group's members as they are now: DirSync's re-read leaves `member` out unless the group is
/// new or moved, so unchanged members come from the stored object and incremental changes are
/// applied to them.
fn with_members(
    mut object: DirectoryObject,
    members: MemberChanges,
    stored: Option<&DirectoryObject>,
) -> DirectoryObject {
    if object.kind != ObjectKind::Group {
        return object;
    }
    let stored_members = || {
        stored
            .map(|stored| stored.values("member").to_vec())
            .unwrap_or_default()
    };
    let members = match members {
        MemberChanges::Complete => return object,
        MemberChanges::Unchanged => stored_members(),
        MemberChanges::Delta { added, removed } => {
            let removed: HashSet<String> = removed
                .iter()
                .map(|dn| dn.normalized().to_owned())
                .collect();
            let mut members: Vec<String> = stored_members()
                .into_iter()
                .filter(|dn| Dn::parse(dn).map_or(true, |dn| !removed.contains(dn.normalized())))
                .collect();
            let present: HashSet<String> = members
                .iter()
                .filter_map(|dn| Dn::parse(dn).ok())
                .map(|dn| dn.normalized().to_owned())
                .collect();
            members.extend(
                added
                    .into_iter()
                    .filter(|dn| !present.contains(dn.normalized()))
                    .map(|dn| dn.to_string()),
            );
            members
        }
    };
    if members.is_empty() {
        object.attributes.remove("member");
    } else {
        object.attributes.insert("member".to_owned(), members);
    }
    object
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn group(members: &[&str]) -> DirectoryObject {
        let mut attributes = BTreeMap::new();
        if !members.is_empty() {
            attributes.insert(
                "member".to_owned(),
                members.iter().map(|m| (*m).to_owned()).collect(),
            );
        }
        DirectoryObject {
            anchor: Guid([1; 16]),
            dn: Dn::parse("CN=g,DC=x").expect("dn"),
            kind: ObjectKind::Group,
            attributes,
            object_sid: None,
            problems: Vec::new(),
        }
    }

    fn dn(text: &str) -> Dn {
        Dn::parse(text).expect("dn")
    }

    #[test]
    fn a_group_keeps_its_stored_members_and_applies_incremental_changes() {
        let stored = group(&["CN=a,DC=x", "CN=b,DC=x"]);
        let reread = group(&[]);
        let unchanged = with_members(reread.clone(), MemberChanges::Unchanged, Some(&stored));
        assert_eq!(unchanged.values("member"), ["CN=a,DC=x", "CN=b,DC=x"]);

        let delta = with_members(
            reread,
            MemberChanges::Delta {
                added: vec![dn("CN=c,DC=x"), dn("cn=A,dc=x")],
                removed: vec![dn("cn=B,DC=X")],
            },
            Some(&stored),
        );
        assert_eq!(delta.values("member"), ["CN=a,DC=x", "CN=c,DC=x"]);

        let complete = with_members(
            group(&["CN=z,DC=x"]),
            MemberChanges::Complete,
            Some(&stored),
        );
        assert_eq!(complete.values("member"), ["CN=z,DC=x"]);
    }
}
