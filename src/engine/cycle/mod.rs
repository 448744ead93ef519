//! One sync cycle (README, "Syncing"): directory import → cloud import → synchronization → cloud
//! export (→ write-back export with hybrid write-back on), recorded step by step in the store. The
//! runner runs it for every caller (ARCHITECTURE.md, "Running a cycle").
//!
//! Safety comes from the store's sync state, not from finishing: the directory's changes and
//! their DirSync cookie are saved together, and an object stays pending until the transaction
//! that records its export. A cycle killed at any point leaves work that the next one redoes,
//! and the create intents with the plan's look-before-create (hard match on the immutableId,
//! groups dirsync provably made) make the redo create nothing twice (`engine::lost_creates`).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::addresses::{mail_nickname, primary_smtp};
use super::attribute_flow::TenantDomains;
pub use super::connections::{Connections, sync_app_client};
use super::export::{self, ExportContext, GROUP_SELECT, USER_SELECT};
use super::forest_join;
use super::import_changes::{import_change, import_delete};
use super::plan::{Operation, Plan, PlanInput, PlanOptions, plan};
pub use super::recorder::CycleReport;
use super::recorder::RunRecorder;
use super::rule_scope::{RuleSets, decide_object};
pub use super::types::{CycleError, Progress, StopSignal};
use super::validation::Severity;
use super::write_back::{self, WriteBackContext, WriteBackSchema};
use crate::clock::now_ms;
use crate::cloud::graph::DeltaLink;
use crate::cloud::mailboxes::{MailboxChange, MailboxPage};
use crate::cloud::{CloudObject, CloudQuery, GraphError, ObjectKind};
use crate::config::Config;
use crate::directory::import::{DirSyncCookie, DirectoryChange, FullImport, MemberChanges};
use crate::directory::objects::DirectoryObject;
use crate::directory::{DirectoryError, Dn};
use crate::guid::Guid;
use crate::rules::SyncRules;
use crate::store::export_lease::LeaseTerms;
use crate::store::runs::{ErrorRecord, FOREST_FAILED_ERROR, StepCounters};
use crate::store::sync_state::{
    DIRSYNC_CURSOR, ExportUpdate, FORESTS_CURSOR, RULE_SETS_CURSOR, SCOPE_CURSOR,
};
use crate::store::vocabulary::{RunMode, RunStatus, RunTrigger, StepKind};
use crate::store::write_back::{WRITE_BACK_CURSOR, WRITE_BACK_SCHEMA_CURSOR};
use crate::store::{StateStore, StoreError};
use futures::StreamExt as _;

mod cloud_import;
pub use cloud_import::read_tenant_domains;
mod directory_import;
use directory_import::{ForestImport, ForestRead, SharedImport};
pub use directory_import::{read_rule_sets, read_rule_sets_of};
mod integrity;
mod mailboxes;
mod source_anchor;
pub mod trace;

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
    /// Only this object (a trace applied, a push): it is read from AD now and synchronized
    /// alone; the DirSync cookie stays, so the next cycle still reads every other change.
    pub only: Option<Guid>,
}

impl CycleRequest {
    /// A cycle for `trigger`: delta (full when needed), exporting, the threshold holding.
    pub fn new(trigger: RunTrigger) -> CycleRequest {
        CycleRequest {
            trigger,
            full: false,
            preview: false,
            confirmed_deletes: None,
            only: None,
        }
    }
}

/// Runs one cycle and records it. The caller holds the run lock. A failure is recorded on the
/// run (status `failed`) and returned in the report, not as an `Err`; `Err` means the store itself
/// could not record the run.
pub async fn run_cycle(
    config: &Config,
    connections: &mut Connections,
    store: &StateStore,
    request: CycleRequest,
    progress: &(dyn Fn(Progress) + Sync),
    stop: &StopSignal,
) -> Result<CycleReport, StoreError> {
    let mode = if request.preview {
        RunMode::Preview
    } else if request.only.is_some() {
        RunMode::Delta
    } else if needs_full_import(config, store, request)? {
        RunMode::Full
    } else {
        RunMode::Delta
    };
    // Hosts sharing one database (README, "Two hosts, one database"): only the holder of the
    // export lease exports; this host runs in staging otherwise.
    let lease = export_lease_terms(config);
    let standby = match &lease {
        Some(terms) if !request.preview => store
            .claim_export_lease(&terms.host, now_ms(), terms.lease_ms)?
            .why_not_exporting(),
        _ => None,
    };
    let standby_config;
    let config = match &standby {
        Some(_) => {
            standby_config = Config {
                options: crate::config::SyncOptions {
                    staging_mode: true,
                    ..config.options.clone()
                },
                ..config.clone()
            };
            &standby_config
        }
        None => config,
    };
    let mut recorder = RunRecorder::start(store, request.trigger, mode, config, progress)?;
    if let Some(why) = &standby {
        tracing::info!(run_id = recorder.run_id(), "{why}");
    }
    recorder.report.standby = standby;
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
        rules: config.sync_rules(),
        lease,
    };
    let outcome = cycle.run().await;
    // Only after a cycle that went through: one that failed may have failed on Graph, and the
    // read would wait out the flow control's retries before the run could end.
    if !request.preview && outcome.is_ok() {
        keep_directory_quota(&cycle.connections.graph, store).await;
    }
    let mut recorder = cycle.recorder;
    let report = &recorder.report;
    let status = match outcome {
        Ok(()) => {
            let errors = report.plan.errors.len()
                + report.export.errors
                + report.write_back.errors
                + report.failed_forests.len();
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

/// The tenant's directory quota, kept for the dashboard, the metrics and the alerts (README,
/// "Monitoring"): one read per cycle. Only Graph's beta offers it, so a tenant that does not
/// answer (or an app without Organization.Read.All) is said in the log, never a failed run.
async fn keep_directory_quota(graph: &crate::cloud::GraphClient, store: &StateStore) {
    match graph.directory_quota().await {
        Ok(Some((used, total))) => {
            let quota = crate::store::monitoring::DirectoryQuota {
                used,
                total,
                read_at: now_ms(),
            };
            if let Err(error) = store.set_directory_quota(&quota) {
                tracing::warn!(%error, "cannot keep the directory quota");
            }
        }
        Ok(None) => tracing::info!("the tenant did not say its directory quota"),
        Err(error) => tracing::info!(%error, "the directory quota could not be read"),
    }
}

/// A full import on request, on the first run, and when a forest's scope changed since the
/// last one: any forest that needs one makes the run full.
fn needs_full_import(
    config: &Config,
    store: &StateStore,
    request: CycleRequest,
) -> Result<bool, StoreError> {
    let forests = config.forests();
    for forest in &forests {
        let forest = ForestRead::new(forest, forests.len(), false);
        if forest.needs_full_import(store, request)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A forest's scope as the store remembers it: included and excluded DNs, normalized and
/// sorted, and its sync rules (changed rules change what every object looks like, or whether
/// it syncs).
fn scope_fingerprint(forest: &crate::config::Forest<'_>) -> String {
    let scope = forest.scope();
    let normalized = |dns: &[Dn]| {
        let mut dns: Vec<&str> = dns.iter().map(Dn::normalized).collect();
        dns.sort_unstable();
        dns.join(";")
    };
    let fingerprint = format!(
        "included={}|excluded={}",
        normalized(scope.included()),
        normalized(scope.excluded())
    );
    let rules = toml::to_string(forest.rules_config).unwrap_or_default();
    if forest.position > 0 {
        // A further forest reads what the first forest's mappings name: part of its scope.
        return format!(
            "{fingerprint}|rules={rules}|reading={}",
            forest.sync_rules().attributes().join(",")
        );
    }
    if *forest.rules_config == crate::rules::RulesConfig::default() {
        // As before rules existed: an upgrade reads nothing again.
        return fingerprint;
    }
    format!("{fingerprint}|rules={rules}")
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
        CycleError::LeaseLost(_) => {
            "nothing to do: this host is a standby now (`dirsync lease` says which host exports)".to_owned()
        }
        CycleError::Store(_) | CycleError::Stopped => String::new(),
    }
}

struct Cycle<'a> {
    config: &'a Config,
    connections: &'a mut Connections,
    store: &'a StateStore,
    request: CycleRequest,
    stop: &'a StopSignal,
    recorder: RunRecorder<'a>,
    /// The sync rules (README, "Sync rules"): their mappings apply to every forest's objects.
    rules: SyncRules,
    /// The export lease this host renews as it exports, when hosts share the database.
    lease: Option<LeaseTerms>,
}

/// The export lease's terms for this host, when the store is one several hosts can share
/// (README, "Two hosts, one database").
pub fn export_lease_terms(config: &Config) -> Option<LeaseTerms> {
    config
        .store
        .lease_ms(config.options.interval_minutes)
        .map(|lease_ms| LeaseTerms {
            host: crate::home::host_name(),
            lease_ms,
        })
}

impl Cycle<'_> {
    async fn run(&mut self) -> Result<(), CycleError> {
        let run_full = self.recorder.report.mode == RunMode::Full;
        let forests = self.config.forests();
        let several = forests.len() > 1;
        let mut reads = Vec::new();
        for forest in &forests {
            let forest = ForestRead::new(
                forest,
                forests.len(),
                self.config.options.anchors_by_consistency_guid(),
            );
            let forest_full = run_full
                || (self.request.preview && forest.needs_full_import(self.store, self.request)?);
            self.recorder.step_of(
                StepKind::DirectoryImport,
                several.then_some(forest.name.as_str()),
            )?;
            reads.push((forest, forest_full));
        }
        let full = reads.iter().any(|(_, forest_full)| *forest_full);
        // Every forest at once, each with its own reader (README, "Several forests").
        let shared = SharedImport::new(self.store, &self.recorder, self.stop, self.request.only);
        let readers = self.connections.forest_readers();
        let imports = reads
            .iter_mut()
            .zip(readers)
            .map(|((forest, forest_full), reader)| {
                let shared = &shared;
                async move {
                    ForestImport { reader, shared }
                        .import_forest(forest, *forest_full)
                        .await
                }
            });
        let results: Vec<Result<StepCounters, CycleError>> =
            futures::future::join_all(imports).await;
        for ((forest, _), result) in reads.iter().zip(results) {
            let connector = several.then_some(forest.name.as_str());
            match result {
                Ok(counters) => {
                    self.recorder
                        .end_step_of(StepKind::DirectoryImport, connector, counters)?;
                }
                // With several forests, one that cannot be read is this run's error: the
                // others still sync, and nothing of it is deleted (README, "Several forests").
                Err(error @ CycleError::Directory(_)) if several => {
                    self.forest_failed(forest, &error)?;
                }
                Err(error) => return Err(error),
            }
        }
        self.check_stop()?;
        let held_gone = if several
            && self.request.only.is_none()
            && self.config.options.anchors_by_consistency_guid()
        {
            self.claim_moved_objects(&reads).await?
        } else {
            HashSet::new()
        };
        // Only when the forests changed since a run last went through: the search scans every
        // object, and a cycle with nothing changed should cost nothing.
        let naming_contexts: Vec<Dn> = forests
            .iter()
            .map(crate::config::Forest::naming_context)
            .collect();
        let forests_key = naming_contexts
            .iter()
            .map(Dn::normalized)
            .collect::<Vec<_>>()
            .join(";");
        let forests_changed =
            self.store.cursor(FORESTS_CURSOR)?.as_deref() != Some(forests_key.as_bytes());
        let forests_removed = self.request.only.is_none()
            && forests_changed
            && self.forget_removed_forests(&naming_contexts)?;
        let mut links = self.store.links()?;
        let mut objects = self.store.pending_objects()?;
        let mut gone = self.store.gone_anchors()?;
        gone.retain(|anchor| !held_gone.contains(anchor));
        if let Some(anchor) = self.request.only {
            // Other pending objects wait for the next cycle.
            objects.retain(|object| object.anchor == anchor);
            gone.retain(|gone| *gone == anchor);
        }
        let (joined_secondaries, aliases) = if self.request.only.is_none() {
            self.join_forests(&mut objects, &mut gone, &mut links, forests_removed)?
        } else {
            (Vec::new(), HashMap::new())
        };
        let intents = self.store.create_intents()?;

        self.step(StepKind::CloudImport)?;
        let needs_cloud = objects
            .iter()
            .any(|object| !links.contains_key(&object.anchor));
        let (cloud, owned_groups, mut counters) = if needs_cloud {
            self.cloud_import(&objects, &links, &intents).await?
        } else {
            (Vec::new(), HashSet::new(), StepCounters::default())
        };
        let settled = self
            .find_lost_creates_of_gone(&gone, &intents, &mut links)
            .await?;
        if self.request.only.is_none() && (full || self.drift_check_due()?) {
            self.check_drift(&mut links, &mut objects, &gone).await?;
        }
        let domains = self.tenant_domains().await?;
        let mailboxes_read = if self.config.options.hybrid_write_back && self.request.only.is_none()
        {
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
            deletion_threshold_percent: Some(self.config.options.deletion_threshold_percent)
                .filter(|percent| *percent > 0),
            disable_before_delete_days: self
                .config
                .options
                .disable_before_delete
                .then_some(self.config.options.delete_after_days),
        };
        let held_disabled = self.held_disabled(&objects, &gone)?;
        let planned = plan(&PlanInput {
            objects: &objects,
            gone: &gone,
            full: false,
            links: &links,
            cloud: &cloud,
            owned_groups: &owned_groups,
            create_intents: &intents.keys().copied().collect(),
            confirmed_group_matches: &self.store.confirmed_group_matches()?,
            held_disabled: &held_disabled,
            domains: &domains,
            rules: &self.rules,
            aliases: &aliases,
            options: &options,
            now_ms: now_ms(),
        });
        let mut planned = planned;
        let targets = crate::engine::plan::user_join_targets(&planned);
        if !targets.is_empty() {
            let roles = self.directory_roles(&targets).await?;
            crate::engine::plan::refuse_privileged_joins(&mut planned, &roles);
        }
        self.recorder.report.deletes_withheld = planned
            .withheld_deletes
            .iter()
            .map(Operation::removals)
            .sum();
        let counters = self.record_plan(&planned, &objects, &links)?;
        self.end_step(StepKind::Synchronization, counters)?;
        let exporting = !self.request.preview && !self.config.options.staging_mode;
        if exporting {
            self.store.apply_export(&settled)?;
            self.forget_unlinked_gone(&gone, &links)?;
            // A secondary forest's object has nothing of its own to export: its values went
            // with its primary's (which stays pending if its export fails, and is merged again).
            let joined: Vec<ExportUpdate> = joined_secondaries
                .iter()
                .map(|anchor| ExportUpdate::Synced(*anchor))
                .collect();
            self.store.apply_export(&joined)?;
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
            rules: &self.rules,
            sync_app: self.config.cloud.service_principal_id.as_deref(),
            lease: self.lease.as_ref(),
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
                // Held deletes keep the question open: the run that makes them may have to
                // plan the same person's remaining object again.
                if forests_changed
                    && self.request.only.is_none()
                    && self.recorder.report.deletes_withheld == 0
                {
                    self.store
                        .set_cursor(FORESTS_CURSOR, forests_key.as_bytes(), now_ms())?;
                }
                if self.config.options.anchors_by_consistency_guid() {
                    self.write_source_anchors(&objects).await?;
                }
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
            Err(export::ExportError::LeaseLost(reason, report)) => {
                self.recorder.report.export = report;
                Err(CycleError::LeaseLost(reason))
            }
        }
    }

    /// Several forests (README, "Several forests"): the same person's objects become one, the
    /// first forest's (its primary), with the values of the others filling its gaps. A pending
    /// secondary makes its primary pending in its place; a gone primary hands its cloud user to
    /// the next forest's object. Returns the secondaries of this run, settled with the export,
    /// and every secondary's DN naming its primary (a group's member there is the one user).
    /// `forests_removed`: objects of a forest no longer configured are gone (with one forest
    /// left, the same person's remaining object must lose what the removed forest gave).
    fn join_forests(
        &mut self,
        objects: &mut Vec<DirectoryObject>,
        gone: &mut Vec<Guid>,
        links: &mut HashMap<Guid, crate::store::sync_state::Link>,
        forests_removed: bool,
    ) -> Result<(Vec<Guid>, HashMap<String, Guid>), CycleError> {
        let forests: Vec<Dn> = self
            .config
            .forests()
            .iter()
            .map(crate::config::Forest::naming_context)
            .collect();
        let Some(attribute) = self.config.options.forest_join.attribute() else {
            return Ok((Vec::new(), HashMap::new()));
        };
        // Nothing read or gone: nothing to join (a cycle with nothing changed scans no user).
        let idle = objects.is_empty() && gone.is_empty();
        if (forests.len() < 2 && !forests_removed) || idle {
            return Ok((Vec::new(), HashMap::new()));
        }
        let candidates: Vec<forest_join::Candidate> = self
            .store
            .join_candidates(attribute)?
            .into_iter()
            .filter_map(|(anchor, dn, key, is_gone)| {
                Some(forest_join::Candidate {
                    anchor,
                    dn: Dn::parse(&dn).ok()?,
                    key,
                    gone: is_gone,
                })
            })
            .collect();
        let mut joins = forest_join::find_joins(&candidates, &forests);
        // A secondary that already has a cloud user of its own (synced before the join could
        // see its partner) stays that user: joining it would orphan or delete one of the two.
        joins
            .primary_of
            .retain(|secondary, _| !links.contains_key(secondary));
        for secondaries in joins.secondaries.values_mut() {
            secondaries.retain(|secondary| !links.contains_key(secondary));
        }
        let aliases: HashMap<String, Guid> = candidates
            .iter()
            .filter_map(|candidate| {
                let primary = joins.primary_of.get(&candidate.anchor)?;
                Some((candidate.dn.normalized().to_owned(), *primary))
            })
            .collect();
        let exporting = !self.request.preview && !self.config.options.staging_mode;
        let mut primaries: HashSet<Guid> = HashSet::new();
        // A gone object of a group: its primary is planned again; a gone primary's cloud
        // user goes on as the successor's.
        for (gone_anchor, successor) in &joins.successor_of_gone {
            if !gone.contains(gone_anchor) {
                continue;
            }
            if let Some(link) = links.remove(gone_anchor) {
                if links.contains_key(successor) {
                    links.insert(*gone_anchor, link);
                    continue;
                }
                let Some(object) = self.store.directory_object(*successor)? else {
                    links.insert(*gone_anchor, link);
                    continue;
                };
                tracing::info!(from = %gone_anchor, to = %successor, "the same person's object in another forest keeps the cloud user");
                if exporting {
                    self.store.move_link(*gone_anchor, *successor, &object.dn)?;
                }
                let mut link = link;
                link.anchor = *successor;
                link.dn = object.dn.clone();
                links.insert(*successor, link);
                gone.retain(|anchor| anchor != gone_anchor);
            }
            primaries.insert(*successor);
        }
        let mut secondaries = Vec::new();
        objects.retain(|object| match joins.primary_of.get(&object.anchor) {
            Some(primary) => {
                secondaries.push(object.anchor);
                primaries.insert(*primary);
                false
            }
            None => true,
        });
        primaries.extend(
            objects
                .iter()
                .map(|object| object.anchor)
                .filter(|anchor| joins.secondaries.contains_key(anchor)),
        );
        let mut primaries: Vec<Guid> = primaries.into_iter().collect();
        primaries.sort_unstable();
        let positions: HashMap<Guid, usize> = objects
            .iter()
            .enumerate()
            .map(|(position, object)| (object.anchor, position))
            .collect();
        for primary in primaries {
            let Some(stored) = self.store.directory_object(primary)? else {
                continue;
            };
            let mut others = Vec::new();
            for secondary in joins.secondaries.get(&primary).into_iter().flatten() {
                if let Some(object) = self.store.directory_object(*secondary)? {
                    others.push(object);
                }
            }
            let merged = forest_join::merge(&stored, &others);
            match positions.get(&primary) {
                Some(&position) => objects[position] = merged,
                None => objects.push(merged),
            }
        }
        Ok((secondaries, aliases))
    }

    /// Gone objects anchored by their mS-DS-ConsistencyGuid that another forest holds (in its
    /// scope, under the same anchor) are that forest's now: a user moved between forests is never
    /// deleted because its old account went, whichever forest was read first (README, "The
    /// source anchor"). Returns the gone objects this run cannot settle: with a forest that did
    /// not answer, they wait for a run that can ask it.
    async fn claim_moved_objects(
        &mut self,
        reads: &[(ForestRead, bool)],
    ) -> Result<HashSet<Guid>, CycleError> {
        let mut gone = Vec::new();
        for anchor in self.store.gone_anchors()? {
            if let Some(stored) = self.store.directory_object(anchor)?
                && stored
                    .first(crate::directory::objects::CONSISTENCY_GUID)
                    .and_then(Guid::parse)
                    == Some(anchor)
            {
                gone.push(stored);
            }
        }
        if gone.is_empty() {
            return Ok(HashSet::new());
        }
        let failed = self.recorder.report.failed_forests.clone();
        if !failed.is_empty() {
            return Ok(gone.iter().map(|stored| stored.anchor).collect());
        }
        let shared = SharedImport::new(self.store, &self.recorder, self.stop, None);
        for (reader, (forest, _)) in self.connections.forest_readers().into_iter().zip(reads) {
            let mut import = ForestImport {
                reader,
                shared: &shared,
            };
            for stored in &gone {
                if stored.dn.is_within(&forest.naming_context) {
                    continue;
                }
                import.claim_moved(forest, stored.anchor).await?;
            }
        }
        Ok(HashSet::new())
    }

    /// Objects of a forest no longer configured (removed in the wizard or `config.toml`) are
    /// gone, as if they had left the scope: their cloud objects go the way of every removal,
    /// the deletion thresholds holding (README, "Several forests"). Recorded as a directory
    /// import step named after those forests. Returns whether any such object is still to
    /// handle.
    fn forget_removed_forests(&mut self, naming_contexts: &[Dn]) -> Result<bool, CycleError> {
        let naming_context_texts: Vec<&str> = naming_contexts.iter().map(Dn::as_str).collect();
        let outside = |dn: &str| {
            Dn::parse(dn).is_ok_and(|dn| {
                !naming_contexts
                    .iter()
                    .any(|naming_context| dn.is_within(naming_context))
            })
        };
        let (gone_already, removed): (Vec<_>, Vec<_>) = self
            .store
            .objects_outside(&naming_context_texts)?
            .into_iter()
            .filter(|(_, dn, _)| outside(dn))
            .partition(|(_, _, gone)| *gone);
        let removed: Vec<(Guid, String)> = removed
            .into_iter()
            .map(|(anchor, dn, _)| (anchor, dn))
            .collect();
        if removed.is_empty() {
            // Gone already (a preview found them) and still to handle.
            return Ok(!gone_already.is_empty());
        }
        let names: std::collections::BTreeSet<String> = removed
            .iter()
            .map(|(_, dn)| crate::config::dns_name(dn))
            .collect();
        let connector = format!(
            "{} (no longer configured)",
            names.into_iter().collect::<Vec<_>>().join(", ")
        );
        tracing::warn!(forests = %connector, objects = removed.len(), "objects of forests no longer configured are gone");
        self.recorder
            .step_of(StepKind::DirectoryImport, Some(&connector))?;
        let mut deleted = Vec::new();
        let mut gone = Vec::new();
        for (anchor, _) in &removed {
            if let Some(stored) = self.store.directory_object(*anchor)? {
                deleted.push(import_delete(&stored));
            }
            gone.push(*anchor);
        }
        self.store
            .record_import_changes(self.recorder.run_id(), &deleted)?;
        self.store.save_import(&[], &gone, None, now_ms())?;
        let counters = StepCounters {
            deletes: gone.len() as u64,
            ..StepCounters::default()
        };
        self.recorder
            .end_step_of(StepKind::DirectoryImport, Some(&connector), counters)?;
        Ok(true)
    }

    /// Records a forest whose import failed, as an error of its directory import step.
    fn forest_failed(&mut self, forest: &ForestRead, error: &CycleError) -> Result<(), CycleError> {
        tracing::error!(forest = %forest.name, %error, "a forest could not be read; the others sync");
        self.store.record_errors(
            self.recorder.run_id(),
            &[ErrorRecord {
                step: StepKind::DirectoryImport,
                dn: forest.naming_context.to_string(),
                anchor: None,
                object_type: None,
                error_type: FOREST_FAILED_ERROR.to_owned(),
                code: Some(forest.name.clone()),
                server_message: format!("{}: {error}", forest.name),
                hint: format!(
                    "{} (the other forests synced; nothing of this forest was deleted)",
                    run_failure_hint(error)
                ),
                first_occurred_at: now_ms(),
                retry_count: 0,
            }],
        )?;
        self.recorder
            .report
            .failed_forests
            .push(forest.name.clone());
        let counters = StepCounters {
            errors: 1,
            ..StepCounters::default()
        };
        self.end_step(StepKind::DirectoryImport, counters)
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
        // A cloud group with an AD group's mailNickname that dirsync did not make: proposed, for
        // the administrator to confirm (README, "Joining").
        for report in &planned.errors {
            for issue in &report.issues {
                if let crate::engine::validation::Rule::GroupNotOurs {
                    cloud_id,
                    microsoft_365: false,
                    ..
                } = &issue.rule
                {
                    self.store
                        .propose_group_match(report.anchor, cloud_id, now)?;
                }
            }
        }
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
            deletes: planned
                .withheld_deletes
                .iter()
                .map(Operation::removals)
                .sum::<usize>() as u64,
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
                Operation::Disable { anchor, .. } => {
                    counted.insert(*anchor);
                    counters.updates += 1;
                }
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

    /// The users `dirsync push --disable` holds disabled (README, "Pushing one user now"). A hold
    /// ends once AD has disabled the account too (AD governs again) or the object left AD or the
    /// scope (its cloud object goes the way of every object that leaves); a preview or staging
    /// run changes nothing, so it only leaves such holds out.
    fn held_disabled(
        &self,
        objects: &[DirectoryObject],
        gone: &[Guid],
    ) -> Result<HashSet<Guid>, CycleError> {
        let mut held = self.store.held_disabled()?;
        if held.is_empty() {
            return Ok(held);
        }
        let disabled_in_ad = objects
            .iter()
            .filter(|object| object.account_enabled() == Some(false))
            .map(|object| object.anchor);
        let ended: Vec<Guid> = disabled_in_ad
            .chain(gone.iter().copied())
            .filter(|anchor| held.contains(anchor))
            .collect();
        let exporting = !self.request.preview && !self.config.options.staging_mode;
        for anchor in ended {
            held.remove(&anchor);
            if exporting {
                self.store.release_held_disabled(anchor)?;
            }
        }
        Ok(held)
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
