//! The password cycle (README, "Password hash sync" and "Password sync through Microsoft Graph"),
//! a run of its own (mode `password`): read the passwords of users whose password changed, and
//! send them to the tenant, in one of two ways:
//!
//! - password hash: each NT hash turned into the cloud credential
//!   ([`password_hash`](super::password_hash)), to the password hash endpoint in requests of at
//!   most 50 users;
//! - through Microsoft Graph: the password Samba keeps GPG-encrypted, decrypted just before its
//!   `$batch` and set as the user's `passwordProfile`.
//!
//! Only users dirsync synchronizes get a password: linked to a cloud user and still in scope.
//! A user who becomes one later (created, moved into scope, re-created in the cloud) or whose
//! last send failed has no `password_sync` row for its current cloud object, and gets a full read
//! of the hash; so does every user on the first run and after a reset (`--full`). The DirSync
//! cookie is kept only after the cycle sent what it read, so a cycle killed half-way reads the
//! same changes again.
//!
//! No NT hash, credential or password is ever stored, logged or recorded: run records say only
//! that a password was sent.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::password_hash::cloud_credential;
use super::recorder::{CycleReport, RunRecorder};
use super::types::{CycleError, Progress, StopSignal};
use crate::clock::now_ms;
use crate::cloud::{
    GraphClient, GraphError, PASSWORD_RESET_ROLES, PasswordHashEndpoint, PasswordHashItem,
    PasswordProfileItem, password_policies,
};
use crate::config::{Config, PasswordSyncMode};
use crate::directory::DirectoryError;
use crate::directory::import::DirSyncCookie;
use crate::directory::password_hashes::{
    HashSourceUnavailable, NtHash, PasswordHashRead, PasswordHashSource,
};
use crate::directory::samba_gpg::{Cleartext, GnupgKeyring, KeyProblem};
use crate::directory::supplemental_credentials::{MalformedCredentials, StoredPasswords};
use crate::guid::Guid;
use crate::store::password_sync::{PASSWORD_CURSOR, PasswordTarget};
use crate::store::runs::{AttributeValues, ErrorRecord, ObjectChangeRecord, StepCounters};
use crate::store::vocabulary::{ChangeKind, ObjectKind, RunMode, RunStatus, RunTrigger, StepKind};
use crate::store::{StateStore, StoreError};

/// Entra Connect's batch size for password hashes.
const MAX_USERS_PER_REQUEST: usize = 50;

/// Through Microsoft Graph: users decrypted, sent and dropped together (five `$batch`es of 20
/// at most), so that few cleartexts are in memory at once.
const GRAPH_USERS_PER_PASS: usize = 100;

/// What the caller asks of a password cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCycleRequest {
    pub trigger: RunTrigger,
    /// Forget what was sent and send every synced user's password again.
    pub full: bool,
}

/// Runs one password cycle and records it. `source` is the opened hash source, or why none is
/// available (then the run is recorded as failed with that reason). The caller holds the run
/// lock. As with [`run_cycle`](super::cycle::run_cycle), `Err` means only that the store failed.
pub async fn run_password_cycle<S: PasswordHashSource + Send>(
    config: &Config,
    source: Result<&mut S, HashSourceUnavailable>,
    graph: &GraphClient,
    store: &StateStore,
    request: PasswordCycleRequest,
    progress: &(dyn Fn(Progress) + Sync),
    stop: &StopSignal,
) -> Result<CycleReport, StoreError> {
    let recorder = RunRecorder::start(store, request.trigger, RunMode::Password, config, progress)?;
    let mut cycle = PasswordCycle {
        config,
        graph,
        store,
        stop,
        recorder,
        errors: 0,
    };
    let outcome = match source {
        Ok(source) => cycle.run(source, request).await,
        Err(unavailable) => Err(PasswordFailure::NoSource(unavailable)),
    };
    let mut recorder = cycle.recorder;
    let status = match outcome {
        Ok(()) if cycle.errors > 0 => RunStatus::CompletedWithErrors,
        Ok(()) => RunStatus::Success,
        Err(PasswordFailure::Cycle(CycleError::Stopped)) => RunStatus::Cancelled,
        Err(PasswordFailure::Cycle(CycleError::Store(error))) => {
            recorder.abandon();
            return Err(error);
        }
        Err(failure) => {
            recorder.fail(failure.to_string(), failure.hint())?;
            RunStatus::Failed
        }
    };
    let mut report = recorder.finish(status, 0)?;
    let run_id = report.run_id;
    // A scheduled cycle runs every two minutes and usually finds nothing: keeping those runs
    // would bury the history. One that sent a password, failed, or was asked for is kept.
    let sent = report
        .steps
        .iter()
        .any(|(step, counters)| *step == StepKind::CloudExport && counters.updates > 0);
    if request.trigger == RunTrigger::Schedule && report.status == RunStatus::Success && !sent {
        store.delete_run(run_id)?;
        report.recorded = false;
    }
    Ok(report)
}

/// Why a password cycle failed as a whole.
#[derive(Debug, thiserror::Error)]
enum PasswordFailure {
    #[error(transparent)]
    NoSource(HashSourceUnavailable),
    #[error(
        "this tenant has no password hash endpoint ({url} answered: {answer}); public Microsoft Graph offers none, so password hash sync cannot deliver passwords to this tenant"
    )]
    NoCloudEndpoint { url: String, answer: String },
    #[error(
        "the sync app holds no directory role that may reset passwords (it holds: {held}); Microsoft Graph lets an application set passwords only with one of: {}",
        PASSWORD_RESET_ROLES.join(", ")
    )]
    NoResetRole { held: String },
    #[error(transparent)]
    Cycle(#[from] CycleError),
    #[error("cannot make a password credential: {0}")]
    Random(super::password_hash::RandomUnavailable),
}

impl From<StoreError> for PasswordFailure {
    fn from(error: StoreError) -> Self {
        PasswordFailure::Cycle(CycleError::Store(error))
    }
}

impl From<DirectoryError> for PasswordFailure {
    fn from(error: DirectoryError) -> Self {
        PasswordFailure::Cycle(CycleError::Directory(error))
    }
}

impl From<GraphError> for PasswordFailure {
    fn from(error: GraphError) -> Self {
        PasswordFailure::Cycle(CycleError::Graph(error))
    }
}

impl PasswordFailure {
    fn hint(&self) -> String {
        match self {
            PasswordFailure::NoSource(_) => {
                "password hashes can be read only on a Samba domain controller of this domain, as root; run dirsync there, or turn options.password_hash_sync off".to_owned()
            }
            PasswordFailure::NoCloudEndpoint { .. } => {
                "set options.password_sync_mode = \"graph\" (run setup again), or turn options.password_hash_sync off; no password was sent".to_owned()
            }
            PasswordFailure::NoResetRole { .. } => {
                "assign the User Administrator role to dirsync's app: run setup again (it assigns the role as the signed-in Global Administrator), or in the Entra admin center: Roles and administrators → User Administrator → Add assignments → the app; no password was sent".to_owned()
            }
            PasswordFailure::Cycle(CycleError::Directory(error)) if error.is_transient() => {
                "the domain controller could not be reached; the next password cycle reads the same changes again".to_owned()
            }
            PasswordFailure::Cycle(CycleError::Graph(_)) => {
                "nothing was lost: the next password cycle sends what this one could not; if the message names a permission or sign-in, run setup again".to_owned()
            }
            PasswordFailure::Cycle(_) | PasswordFailure::Random(_) => {
                "see the message, then run again".to_owned()
            }
        }
    }
}

struct PasswordCycle<'a> {
    config: &'a Config,
    graph: &'a GraphClient,
    store: &'a StateStore,
    stop: &'a StopSignal,
    recorder: RunRecorder<'a>,
    errors: u64,
}

/// A password read for a target, waiting to be sent.
struct ToSend<'t> {
    target: &'t PasswordTarget,
    nt_hash: NtHash,
    /// What `supplementalCredentials` holds of the password (through Microsoft Graph only).
    stored: Option<Result<StoredPasswords, MalformedCredentials>>,
}

/// Through Microsoft Graph: what a user's stored password allows.
enum GraphPassword<'t> {
    Encrypted(&'t ToSend<'t>, Vec<u8>),
    Clear(&'t ToSend<'t>, Cleartext),
    /// Set before Samba kept passwords: nothing to send until the next AD change.
    NotKept(&'t ToSend<'t>),
    Unreadable(&'t ToSend<'t>, MalformedCredentials),
    Undecryptable(&'t ToSend<'t>, KeyProblem),
}

impl PasswordCycle<'_> {
    async fn run<S: PasswordHashSource + Send>(
        &mut self,
        source: &mut S,
        request: PasswordCycleRequest,
    ) -> Result<(), PasswordFailure> {
        if request.full {
            self.store.reset_password_sync()?;
        }
        let through_graph = self.config.options.password_sync_mode == PasswordSyncMode::Graph;
        source.read_stored_passwords(through_graph);
        self.step(StepKind::DirectoryImport)?;
        let targets = self.store.password_targets()?;
        let by_anchor: HashMap<Guid, &PasswordTarget> = targets
            .iter()
            .map(|target| (target.anchor, target))
            .collect();
        let stored = self.store.cursor(PASSWORD_CURSOR)?;
        let (cookie, changed, everyone) = read_changes(source, stored).await?;
        let mut to_send: Vec<ToSend<'_>> = Vec::new();
        let mut read: HashSet<Guid> = HashSet::new();
        // The last change of a user wins: DirSync may report a user once per answer.
        let mut not_targets = Vec::new();
        for change in changed.into_iter().rev() {
            let Some(target) = by_anchor.get(&change.anchor) else {
                not_targets.push(change.anchor);
                continue;
            };
            if let Some(nt_hash) = change.nt_hash
                && read.insert(change.anchor)
            {
                to_send.push(ToSend {
                    target,
                    nt_hash,
                    stored: change.stored,
                });
            }
        }
        // A user out of scope whose cloud user still exists (its delete withheld, say) changed
        // password: if it comes back, its password must be read in full, not taken as sent.
        self.store.forget_passwords_synced(&not_targets)?;
        let full_reads: Vec<Guid> = targets
            .iter()
            .filter(|target| (everyone || target.needs_full_read) && !read.contains(&target.anchor))
            .map(|target| target.anchor)
            .collect();
        let mut without_password: Vec<(Guid, &str)> = Vec::new();
        for found in source.hashes_of(&full_reads).await? {
            let Some(target) = by_anchor.get(&found.anchor) else {
                continue;
            };
            match found.nt_hash {
                Some(nt_hash) if read.insert(found.anchor) => {
                    to_send.push(ToSend {
                        target,
                        nt_hash,
                        stored: found.stored,
                    });
                }
                Some(_) => {}
                // Nothing to send; a password set later arrives as a change.
                None => without_password.push((target.anchor, target.cloud_id.as_str())),
            }
        }
        let import = StepCounters {
            updates: to_send.len() as u64,
            no_change: (targets.len() - to_send.len()) as u64,
            ..StepCounters::default()
        };
        self.end_step(StepKind::DirectoryImport, import)?;

        if self.config.options.staging_mode {
            // Staging mode exports nothing, passwords included; nothing is marked sent.
            return Ok(());
        }
        // A standby host sends no password either (README, "Two hosts, one database").
        if let Some(terms) = crate::engine::cycle::export_lease_terms(self.config)
            && !self
                .store
                .claim_export_lease(&terms.host, now_ms(), terms.lease_ms)?
                .is_ours()
        {
            return Ok(());
        }
        self.step(StepKind::CloudExport)?;
        let mut export = StepCounters::default();
        if through_graph {
            self.send_through_graph(&to_send, &mut export).await?;
        } else {
            self.send_hashes(&to_send, &mut export).await?;
        }
        self.store
            .record_passwords_synced(&without_password, now_ms())?;
        self.store
            .set_cursor(PASSWORD_CURSOR, cookie.as_bytes(), now_ms())?;
        self.end_step(StepKind::CloudExport, export)?;
        Ok(())
    }

    /// Password hash sync: each user's credential to the password hash endpoint.
    async fn send_hashes(
        &mut self,
        to_send: &[ToSend<'_>],
        export: &mut StepCounters,
    ) -> Result<(), PasswordFailure> {
        let batch_size = match self.graph.password_hash_endpoint().await? {
            PasswordHashEndpoint::Available { max_batch } => max_batch.min(MAX_USERS_PER_REQUEST),
            PasswordHashEndpoint::Missing { url, answer } => {
                return Err(PasswordFailure::NoCloudEndpoint { url, answer });
            }
        };
        let total = to_send.len() as u64;
        for chunk in to_send.chunks(batch_size.max(1)) {
            if self.stop.is_stopped() {
                return Err(CycleError::Stopped.into());
            }
            self.send_chunk(chunk, export).await?;
            self.recorder.progress(Progress::Objects {
                step: StepKind::CloudExport,
                done: export.updates + export.errors,
                total: Some(total),
            });
        }
        Ok(())
    }

    /// Sends one request's worth of passwords and records each user's outcome durably.
    async fn send_chunk(
        &mut self,
        chunk: &[ToSend<'_>],
        export: &mut StepCounters,
    ) -> Result<(), PasswordFailure> {
        let mut credentials = Vec::with_capacity(chunk.len());
        for item in chunk {
            let credential = cloud_credential(&item.nt_hash).map_err(PasswordFailure::Random)?;
            credentials.push(credential);
        }
        let items: Vec<PasswordHashItem<'_>> = chunk
            .iter()
            .zip(&credentials)
            .map(|(item, credential)| PasswordHashItem {
                user_id: &item.target.cloud_id,
                credential: credential.expose(),
            })
            .collect();
        let results = self.graph.set_password_hashes(&items).await?;
        let now = now_ms();
        let mut synced = Vec::new();
        let mut failed = Vec::new();
        let mut changes = Vec::new();
        let mut errors = Vec::new();
        for (item, result) in chunk.iter().zip(results) {
            let target = item.target;
            match result {
                Ok(()) => {
                    export.updates += 1;
                    synced.push((target.anchor, target.cloud_id.as_str()));
                    changes.push(password_change(
                        target,
                        "password hash",
                        "synchronized from AD",
                    ));
                }
                Err(error) => {
                    export.errors += 1;
                    self.errors += 1;
                    failed.push(target.anchor);
                    errors.push(password_error(target, &error, now));
                }
            }
        }
        self.store.record_passwords_synced(&synced, now)?;
        self.store.forget_passwords_synced(&failed)?;
        self.store
            .record_changes(self.recorder.run_id(), &changes)?;
        self.store.record_errors(self.recorder.run_id(), &errors)?;
        Ok(())
    }

    /// Through Microsoft Graph: each user's cleartext, decrypted just before its request and
    /// dropped (overwritten) after it, set as the cloud user's password.
    async fn send_through_graph(
        &mut self,
        to_send: &[ToSend<'_>],
        export: &mut StepCounters,
    ) -> Result<(), PasswordFailure> {
        if to_send.is_empty() {
            return Ok(());
        }
        self.check_reset_role().await?;
        let keyring = GnupgKeyring::new(self.config.directory.password_gpg_home.clone());
        let policies = password_policies(self.config.options.disable_strong_password);
        let total = to_send.len() as u64;
        let mut waiting = Vec::new();
        let mut not_kept = 0u64;
        for chunk in to_send.chunks(GRAPH_USERS_PER_PASS) {
            if self.stop.is_stopped() {
                return Err(CycleError::Stopped.into());
            }
            let mut passwords: Vec<GraphPassword<'_>> = chunk
                .iter()
                .map(|item| match &item.stored {
                    Some(Ok(StoredPasswords {
                        samba_gpg: Some(message),
                        ..
                    })) => GraphPassword::Encrypted(item, message.clone()),
                    Some(Ok(StoredPasswords {
                        cleartext_utf16: Some(utf16),
                        ..
                    })) => match Cleartext::from_utf16le(utf16) {
                        Some(cleartext) => GraphPassword::Clear(item, cleartext),
                        None => GraphPassword::NotKept(item),
                    },
                    Some(Err(malformed)) => GraphPassword::Unreadable(item, malformed.clone()),
                    Some(Ok(_)) | None => GraphPassword::NotKept(item),
                })
                .collect();
            Self::decrypt(&keyring, &mut passwords).await;
            let now = now_ms();
            let mut items = Vec::new();
            let mut sent: Vec<&ToSend<'_>> = Vec::new();
            let mut errors = Vec::new();
            let mut failed = Vec::new();
            for password in &passwords {
                match password {
                    GraphPassword::Clear(item, cleartext) => {
                        items.push(PasswordProfileItem {
                            user_id: &item.target.cloud_id,
                            password: cleartext.expose(),
                        });
                        sent.push(item);
                    }
                    GraphPassword::NotKept(item) => {
                        not_kept += 1;
                        waiting.push((item.target.anchor, item.target.cloud_id.as_str()));
                    }
                    GraphPassword::Unreadable(item, malformed) => {
                        failed.push(item.target.anchor);
                        errors.push(unreadable_password_error(item.target, malformed, now));
                    }
                    GraphPassword::Undecryptable(item, problem) => {
                        failed.push(item.target.anchor);
                        errors.push(undecryptable_password_error(item.target, problem, now));
                    }
                    // `decrypt` left none encrypted.
                    GraphPassword::Encrypted(..) => {}
                }
            }
            let results = self.graph.set_passwords(&items, policies).await;
            drop(passwords);
            let mut synced = Vec::new();
            let mut changes = Vec::new();
            for (item, result) in sent.iter().zip(results) {
                let target = item.target;
                match result {
                    Ok(()) => {
                        export.updates += 1;
                        synced.push((target.anchor, target.cloud_id.as_str()));
                        changes.push(password_change(
                            target,
                            "password",
                            "set through Microsoft Graph from AD",
                        ));
                    }
                    Err(error) => {
                        // The same password would be refused again: it waits for the next AD
                        // change (or for setup to start password sync over).
                        if is_complexity_refusal(&error) {
                            waiting.push((target.anchor, target.cloud_id.as_str()));
                        } else {
                            failed.push(target.anchor);
                        }
                        // A 403 means an administrator's account only if the user holds a role;
                        // otherwise the app's own role is missing or not in effect yet.
                        let administrator = matches!(error, GraphError::Forbidden { .. })
                            && self
                                .graph
                                .directory_roles_of(&target.cloud_id)
                                .await
                                .is_ok_and(|roles| !roles.is_empty());
                        errors.push(graph_password_error(target, &error, administrator, now));
                    }
                }
            }
            export.errors += errors.len() as u64;
            self.errors += errors.len() as u64;
            self.store.record_passwords_synced(&synced, now)?;
            self.store.forget_passwords_synced(&failed)?;
            self.store
                .record_changes(self.recorder.run_id(), &changes)?;
            self.store.record_errors(self.recorder.run_id(), &errors)?;
            self.recorder.progress(Progress::Objects {
                step: StepKind::CloudExport,
                done: export.updates + export.errors + not_kept,
                total: Some(total),
            });
        }
        export.no_change += not_kept;
        self.store.record_passwords_waiting(&waiting, now_ms())?;
        Ok(())
    }

    /// Turns each `Encrypted` password into `Clear`, or `Undecryptable` saying why; GnuPG runs
    /// off the async threads.
    async fn decrypt(keyring: &GnupgKeyring, passwords: &mut [GraphPassword<'_>]) {
        let messages: Vec<Vec<u8>> = passwords
            .iter()
            .filter_map(|password| match password {
                GraphPassword::Encrypted(_, message) => Some(message.clone()),
                _ => None,
            })
            .collect();
        if messages.is_empty() {
            return;
        }
        let blocking_keyring = keyring.clone();
        let mut decrypted =
            tokio::task::spawn_blocking(move || blocking_keyring.decrypt_all(&messages))
                .await
                .unwrap_or_default()
                .into_iter();
        for password in passwords.iter_mut() {
            let GraphPassword::Encrypted(item, _) = password else {
                continue;
            };
            let item = *item;
            *password = match decrypted.next() {
                Some(Ok(cleartext)) => GraphPassword::Clear(item, cleartext),
                Some(Err(problem)) => GraphPassword::Undecryptable(item, problem),
                None => GraphPassword::Undecryptable(
                    item,
                    KeyProblem::Undecryptable {
                        home: keyring.describe(),
                        reason: "the decryption task stopped".to_owned(),
                    },
                ),
            };
        }
    }

    /// A cycle that would only collect 403s stops first, saying which role to assign. Only
    /// when setup recorded the app's service principal (an existing app given by sign_in =
    /// "app" may hold a role setup cannot see).
    async fn check_reset_role(&self) -> Result<(), PasswordFailure> {
        let Some(principal) = &self.config.cloud.service_principal_id else {
            return Ok(());
        };
        let held = self.graph.directory_roles_of(principal).await?;
        if held.iter().any(|role| {
            PASSWORD_RESET_ROLES
                .iter()
                .any(|allowed| role.eq_ignore_ascii_case(allowed))
        }) {
            return Ok(());
        }
        Err(PasswordFailure::NoResetRole {
            held: if held.is_empty() {
                "none".to_owned()
            } else {
                held.join(", ")
            },
        })
    }

    fn step(&mut self, step: StepKind) -> Result<(), StoreError> {
        self.recorder.step(step)
    }

    fn end_step(&mut self, step: StepKind, counters: StepCounters) -> Result<(), StoreError> {
        self.recorder.end_step(step, counters)
    }
}

/// One user's refused password, with what to do about it.
fn password_error(target: &PasswordTarget, error: &GraphError, now: i64) -> ErrorRecord {
    let (error_type, code, hint) = match error {
        GraphError::NotFound { .. } => (
            "not-found",
            None,
            "the cloud user was deleted outside dirsync; the next sync cycle creates it again and its password follows",
        ),
        GraphError::BadRequest { code, .. } => (
            "rejected",
            Some(code.clone()),
            "the tenant refused this user's password hash (the message says why); the next password cycle tries again",
        ),
        GraphError::Forbidden { code, .. } => (
            "forbidden",
            Some(code.clone()),
            "the sync app may not set this user's password (an administrator's account, say); leave the user out of the scope or remove its administrator role",
        ),
        _ => (
            "failed",
            None,
            "see the message; the next password cycle tries again",
        ),
    };
    user_error(target, error_type, code, error.to_string(), hint, now)
}

/// The changes since the stored cookie, the cookie to keep after sending them, and whether
/// every target needs a full read (no cookie yet, or the DC refused the old one).
async fn read_changes<S: PasswordHashSource + Send>(
    source: &mut S,
    stored: Option<Vec<u8>>,
) -> Result<(DirSyncCookie, Vec<PasswordHashRead>, bool), DirectoryError> {
    let Some(stored) = stored else {
        return Ok((source.current_cookie().await?, Vec::new(), true));
    };
    let mut cookie = DirSyncCookie::from_bytes(stored);
    // Samba's DirSync cookie is the domain's highest USN when its search *ends*
    // (dirsync.c, dirsync_create_vector): a password changed while the search runs, on a user it
    // had already passed, would be behind the returned cookie and never read. The cookie kept
    // is one taken before the read, so such a change is read again by the next cycle (a password
    // sent twice, never one lost). README, "Password sync through Microsoft Graph".
    let keep = source.current_cookie().await?;
    let mut changed = Vec::new();
    loop {
        match source.changes_since(&cookie).await {
            Ok(batch) => {
                changed.extend(batch.changed);
                cookie = batch.cookie;
                if !batch.more_results {
                    return Ok((keep, changed, false));
                }
            }
            Err(DirectoryError::CookieRejected { .. }) => {
                tracing::warn!(
                    "the domain controller no longer accepts the password cycle's DirSync cookie; reading every synced user's password instead"
                );
                return Ok((source.current_cookie().await?, Vec::new(), true));
            }
            Err(error) => return Err(error),
        }
    }
}

/// The change record of a password sent: `attribute` and how, never what.
fn password_change(target: &PasswordTarget, attribute: &str, how: &str) -> ObjectChangeRecord {
    ObjectChangeRecord {
        step: StepKind::CloudExport,
        dn: target.dn.to_string(),
        anchor: target.anchor.to_string(),
        object_type: ObjectKind::User,
        cloud_id: Some(target.cloud_id.clone()),
        change_kind: ChangeKind::Update,
        attributes: vec![AttributeValues {
            name: attribute.to_owned(),
            old: Value::Null,
            new: Value::String(how.to_owned()),
        }],
    }
}

fn user_error(
    target: &PasswordTarget,
    error_type: &str,
    code: Option<String>,
    server_message: String,
    hint: &str,
    now: i64,
) -> ErrorRecord {
    ErrorRecord {
        step: StepKind::CloudExport,
        dn: target.dn.to_string(),
        anchor: Some(target.anchor.to_string()),
        object_type: Some(ObjectKind::User),
        error_type: error_type.to_owned(),
        code,
        server_message,
        hint: hint.to_owned(),
        first_occurred_at: now,
        retry_count: 0,
    }
}

/// Graph's answer to a password its rule refuses: 400, "…does not comply with password
/// complexity requirements…".
fn is_complexity_refusal(error: &GraphError) -> bool {
    matches!(error, GraphError::BadRequest { message, .. }
        if message.to_ascii_lowercase().contains("complexity"))
}

/// Through Microsoft Graph: one user's refused password, with what to do about it.
fn graph_password_error(
    target: &PasswordTarget,
    error: &GraphError,
    administrator: bool,
    now: i64,
) -> ErrorRecord {
    let (error_type, code, hint) = match error {
        GraphError::NotFound { .. } => (
            "not-found",
            None,
            "the cloud user was deleted outside dirsync; the next sync cycle creates it again, and its password follows at the user's next AD password change",
        ),
        GraphError::BadRequest { code, .. } if is_complexity_refusal(error) => (
            "password-complexity",
            Some(code.clone()),
            "the cloud's password rule refused it (8 to 256 characters, and 3 of: lower case, upper case, digits, symbols); AD's policy allowed it. Make AD's password policy at least as strict, or set options.disable_strong_password = true (and run setup again) to let the cloud accept what AD accepts; until then the user's password is sent again at their next AD change",
        ),
        GraphError::BadRequest { code, .. } => (
            "rejected",
            Some(code.clone()),
            "the tenant refused this user's password (the message says why); the next password cycle tries again",
        ),
        GraphError::Forbidden { code, .. } if !administrator => (
            "forbidden",
            Some(code.clone()),
            "the sync app's role does not let it set this user's password: Entra can take several minutes to apply a role setup just assigned, or the app holds none (assign it User Administrator: run setup again, or in the Entra admin center); the next password cycle tries again",
        ),
        GraphError::Forbidden { code, .. } => (
            "forbidden",
            Some(code.clone()),
            "the user holds an administrator role: the sync app's User Administrator role may not reset it (Privileged Authentication Administrator or Global Administrator may). Leave the account out of the scope (recommended: cloud administrators should be cloud-only accounts), or reset its cloud password yourself",
        ),
        _ => (
            "failed",
            None,
            "see the message; the next password cycle tries again",
        ),
    };
    user_error(target, error_type, code, error.to_string(), hint, now)
}

fn unreadable_password_error(
    target: &PasswordTarget,
    malformed: &MalformedCredentials,
    now: i64,
) -> ErrorRecord {
    user_error(
        target,
        "unreadable-password",
        None,
        malformed.to_string(),
        "the domain controller's stored credentials for this user could not be read; set the user's password again in AD",
        now,
    )
}

fn undecryptable_password_error(
    target: &PasswordTarget,
    problem: &KeyProblem,
    now: i64,
) -> ErrorRecord {
    user_error(
        target,
        "undecryptable-password",
        None,
        problem.to_string(),
        "make the key smb.conf's \"password hash gpg key ids\" names available in directory.password_gpg_home (setup checks it); the user's password is read again by the next password cycle",
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::password_hashes::PasswordChanges;

    /// Samba's DirSync as its source behaves (dirsync.c): a read reports the users changed
    /// after the cookie's USN, and answers with the domain's highest USN when the search ends.
    /// `during_search` is a password change that commits while the next search runs, after it
    /// has passed that user: not reported, yet below the returned cookie.
    struct SambaLikeSource {
        /// (USN, user) of each password change so far.
        changes: Vec<(u64, Guid)>,
        highest_usn: u64,
        during_search: Option<Guid>,
    }

    fn cookie(usn: u64) -> DirSyncCookie {
        DirSyncCookie::from_bytes(usn.to_le_bytes().to_vec())
    }

    fn usn(cookie: &DirSyncCookie) -> u64 {
        u64::from_le_bytes(cookie.as_bytes().try_into().expect("8 bytes"))
    }

    impl SambaLikeSource {
        fn change(&mut self, user: Guid) {
            self.highest_usn += 1;
            self.changes.push((self.highest_usn, user));
        }
    }

    impl PasswordHashSource for SambaLikeSource {
        fn read_stored_passwords(&mut self, _wanted: bool) {}
        fn describe(&self) -> String {
            "a Samba-like source".to_owned()
        }
        fn needs_replicating_directory_changes_all(&self) -> bool {
            false
        }
        async fn current_cookie(&mut self) -> Result<DirSyncCookie, DirectoryError> {
            Ok(cookie(self.highest_usn))
        }
        async fn changes_since(
            &mut self,
            since: &DirSyncCookie,
        ) -> Result<PasswordChanges, DirectoryError> {
            let from = usn(since);
            let changed = self
                .changes
                .iter()
                .filter(|(at, _)| *at > from)
                .map(|(_, user)| PasswordHashRead {
                    anchor: *user,
                    nt_hash: NtHash::from_bytes(&[7; 16]),
                    stored: None,
                })
                .collect();
            if let Some(user) = self.during_search.take() {
                self.change(user);
            }
            Ok(PasswordChanges {
                changed,
                cookie: cookie(self.highest_usn),
                more_results: false,
            })
        }
        async fn hashes_of(
            &mut self,
            _anchors: &[Guid],
        ) -> Result<Vec<PasswordHashRead>, DirectoryError> {
            Ok(Vec::new())
        }
    }

    fn anchors(reads: &[PasswordHashRead]) -> Vec<Guid> {
        reads.iter().map(|read| read.anchor).collect()
    }

    #[test]
    fn a_password_changed_while_the_read_runs_is_read_by_the_next_cycle() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let (alice, bob) = (Guid::from_wire(&[1; 16]), Guid::from_wire(&[2; 16]));
        let mut source = SambaLikeSource {
            changes: Vec::new(),
            highest_usn: 10,
            during_search: None,
        };
        let start = cookie(10);
        source.change(alice);
        // Bob's password changes while the read of alice's change runs.
        source.during_search = Some(bob);
        let (kept, changed, everyone) = runtime
            .block_on(read_changes(&mut source, Some(start.as_bytes().to_vec())))
            .expect("read");
        assert!(!everyone);
        assert_eq!(anchors(&changed), vec![alice]);
        // Samba's own cookie would be past bob's change; the kept one is not.
        assert!(usn(&kept) < source.highest_usn);
        let (_, changed, _) = runtime
            .block_on(read_changes(&mut source, Some(kept.as_bytes().to_vec())))
            .expect("read");
        assert!(anchors(&changed).contains(&bob), "bob's change was lost");
    }

    #[test]
    fn without_a_cookie_everyone_is_read_in_full() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let mut source = SambaLikeSource {
            changes: Vec::new(),
            highest_usn: 42,
            during_search: None,
        };
        let (kept, changed, everyone) = runtime
            .block_on(read_changes(&mut source, None))
            .expect("read");
        assert!(everyone && changed.is_empty());
        assert_eq!(usn(&kept), 42);
    }
}
