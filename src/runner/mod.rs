//! The application layer: "run a cycle" for every caller. `dirsync sync`, `dirsync service`, the
//! wizard's first sync and the dashboard all come here, so a run is the same whoever starts it:
//! the configuration read, the run lock held (runs never overlap), the store opened, the two
//! sides signed in from the secret store, progress kept in the store for other processes to
//! show, and a typed error. When the next scheduled run is due is [`schedule::next_due`], the
//! same for the service and the window (see ARCHITECTURE.md, "Running a cycle").
//!
//! It knows nothing of egui or the CLI: callers print, draw or log what it returns.

pub mod alerts;
pub mod audit;
pub mod lease;
pub mod monitoring;
pub mod rules;
pub mod schedule;

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::clock::now_ms;
use crate::cloud::FlowPolicy;
use crate::config::{Config, ConfigError};
use crate::directory::DirectoryError;
use crate::directory::password_hashes::SambaPrivilegedSocket;
use crate::engine::cycle::trace::{Trace, trace};
use crate::engine::cycle::{Connections, CycleReport, CycleRequest, run_cycle, sync_app_client};
use crate::engine::password_cycle::{PasswordCycleRequest, run_password_cycle};
use crate::engine::types::{CycleError, Progress, StopSignal};
use crate::home::Home;
use crate::run_lock::{RunLock, RunLockError};
use crate::store::{StateStore, StoreError};
use tracing::Instrument as _;

/// Why a run could not be made. A run that started and failed is not an error here: it is a
/// report with status `failed`, recorded in the history.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No or a broken `config.toml`: the administrator's to fix.
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "password hash sync is off (options.password_hash_sync = false in {config_file}); turn it on by running setup again with options.password_hash_sync = true"
    )]
    PasswordSyncOff { config_file: String },
    /// Another run holds the run lock.
    #[error(transparent)]
    Busy(#[from] RunLockError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The object a trace or a push names is not in AD.
    #[error(
        "no user or group in AD answers to '{query}'{}",
        closest_names(closest)
    )]
    NotInDirectory { query: String, closest: Vec<String> },
    /// `dirsync push --disable` names something it cannot disable in the cloud.
    #[error("cannot disable '{query}' in the cloud: {reason}")]
    CannotDisable { query: String, reason: String },
    /// Promote, step down or the lease asked of a store only one host uses.
    #[error(
        "the state is in SQLite ({config_file} names no [store] engine = \"postgresql\"), which one host uses alone: there is no export lease to hand over (README, \"Two hosts, one database\")"
    )]
    NoLease { config_file: String },
    /// A run held the lock longer than the caller would wait.
    #[error(
        "a sync run still holds the run lock after {waited_secs} s; nothing was sent: run the command again when it has finished"
    )]
    StillBusy { waited_secs: u64 },
    /// Signing in failed before the run began (a missing secret, a bad configuration value).
    #[error(transparent)]
    SignIn(#[from] CycleError),
}

impl RunError {
    /// The administrator gave something wrong (rather than something failing): exit status 2.
    pub fn is_bad_input(&self) -> bool {
        match self {
            RunError::Config(error) => !matches!(
                error,
                ConfigError::Unreadable { .. } | ConfigError::Unwritable { .. }
            ),
            RunError::PasswordSyncOff { .. }
            | RunError::NotInDirectory { .. }
            | RunError::CannotDisable { .. }
            | RunError::NoLease { .. } => true,
            RunError::Busy(_)
            | RunError::StillBusy { .. }
            | RunError::Store(_)
            | RunError::SignIn(_) => false,
        }
    }
}

/// A run that was made: the store it was recorded in, and how it ended.
#[derive(Debug)]
pub struct Ran {
    pub store: StateStore,
    pub report: CycleReport,
}

/// The configuration every run reads.
pub fn load_config(home: &Home) -> Result<Config, RunError> {
    Ok(Config::load(&home.config_file)?)
}

/// Runs one sync cycle with the run lock held, telling `progress` how it goes.
pub async fn run_sync(
    home: &Home,
    request: CycleRequest,
    stop: &StopSignal,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Ran, RunError> {
    let config = load_config(home)?;
    let _lock = RunLock::acquire(&home.state_db)?;
    let store = StateStore::open_home(home)?;
    let mut connections = Connections::open(&config, &home.secrets(), FlowPolicy::default())?;
    let progress = kept_progress(home, progress);
    let confirmed = request
        .confirmed_deletes
        .map(|count| (count, request.trigger));
    let report = Box::pin(run_cycle(
        &config,
        &mut connections,
        &store,
        request,
        &progress,
        stop,
    ))
    .instrument(run_span())
    .await?;
    log_run_ended(&report);
    alerts::look_or_log(home).await;
    if let Some((count, trigger)) = confirmed {
        let source = match trigger {
            crate::store::vocabulary::RunTrigger::Manual => audit::Source::Dashboard,
            _ => audit::Source::Cli,
        };
        audit::record_or_log(
            home,
            source,
            "deletes-confirmed",
            &format!(
                "up to {count} deletes allowed in run {} (ended {})",
                report.run_id,
                report.status.as_str()
            ),
            &[],
        );
    }
    Ok(Ran { store, report })
}

/// Traces one object through the cycle's stages (README, "Tracing one object"). Reads only, so
/// it does not wait for the run lock.
pub async fn trace_object(home: &Home, query: &str) -> Result<Trace, RunError> {
    let config = load_config(home)?;
    let store = StateStore::open_home(home)?;
    let mut connections = Connections::open(&config, &home.secrets(), FlowPolicy::default())?;
    Ok(trace(&config, &mut connections, &store, query).await?)
}

/// The cloud objects holding a value Graph refused as taken (README, "The dashboard": the
/// error workbench), read now. `anchor` is the AD object the error is about: its own cloud
/// object is not a holder. Reads only.
pub async fn conflict_holders(
    home: &Home,
    anchor: Option<&str>,
    property: &str,
    value: &str,
) -> Result<Vec<crate::engine::holders::Holder>, RunError> {
    let config = load_config(home)?;
    let store = StateStore::open_home(home)?;
    let connections = Connections::open(&config, &home.secrets(), FlowPolicy::default())?;
    let anchor = anchor.and_then(crate::guid::Guid::parse);
    let links = store.links()?;
    crate::engine::holders::holders(&connections.graph, &links, anchor, property, value)
        .await
        .map_err(|error| RunError::SignIn(CycleError::Graph(error)))
}

/// What `dirsync check` found (README, "Checking the directory before syncing").
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckReport {
    /// The OUs read (the configured scope, or the one OU asked for).
    pub scope: Vec<String>,
    pub objects_checked: usize,
    /// Whether UPN suffixes were checked against the tenant's verified domains (its domains
    /// could be read).
    pub suffixes_checked: bool,
    pub findings: Vec<crate::engine::check::Finding>,
}

/// Reads every user and group of the scope (or of `ou` and its subtree) as the service account
/// and checks them all, as IdFix does; nothing is written anywhere. The tenant is only read,
/// for its verified domains; when it cannot be, suffixes are left unchecked.
pub async fn check_directory(home: &Home, ou: Option<&str>) -> Result<CheckReport, RunError> {
    let config = load_config(home)?;
    let scope = match ou {
        Some(ou) => {
            let dn = crate::directory::Dn::parse(ou).map_err(|error| {
                RunError::SignIn(CycleError::Directory(DirectoryError::InvalidDn {
                    dn: ou.to_owned(),
                    reason: error.to_string(),
                }))
            })?;
            crate::directory::scope::SyncScope::new(vec![dn], Vec::new())
        }
        None => config.scope(),
    };
    let mut connections = Connections::open(&config, &home.secrets(), FlowPolicy::default())?;
    let domains = match crate::engine::cycle::read_tenant_domains(&connections.graph).await {
        Ok(domains) => Some(domains),
        Err(error) => {
            tracing::warn!(%error, "cannot read the tenant's domains; UPN suffixes are not checked");
            None
        }
    };
    let connection = connections
        .directory
        .connection()
        .await
        .map_err(|error| RunError::SignIn(CycleError::Directory(error)))?;
    let mut import = crate::directory::import::FullImport::new(connection, &scope);
    let mut objects = Vec::new();
    while let Some(page) = import
        .next_page()
        .await
        .map_err(|error| RunError::SignIn(CycleError::Directory(error)))?
    {
        objects.extend(page);
    }
    let findings = crate::engine::check::check(&objects, domains.as_ref(), &config.sync_rules());
    Ok(CheckReport {
        scope: scope.included().iter().map(ToString::to_string).collect(),
        objects_checked: objects.len(),
        suffixes_checked: domains.is_some(),
        findings,
    })
}

/// Watches AD for what the next delta cycle would read (README, "Seconds, not half-hours"):
/// counts the changes since the last cycle's DirSync cookie, without moving it, every `every`,
/// and at once whenever the DC's change notifications say something changed (Windows DCs send
/// them within a second; Samba within five). Returns once changes were seen and have settled
/// (a count unchanged for a second, or [`SETTLE_AT_MOST`] after the first), so that a burst of
/// changes is one cycle. Reads only; dropping the future at any point is safe.
pub async fn watch_for_changes(home: &Home, every: Duration) -> Result<usize, RunError> {
    let config = load_config(home)?;
    let store = StateStore::open_home(home)?;
    let mut connections = Connections::open(&config, &home.secrets(), FlowPolicy::default())?;
    // What the sync rules read counts as a change too (README, "Sync rules").
    let scope = config.scope();
    let mut notifications = match connections.directory.change_notifications().await {
        Ok(notifications) => Some(notifications),
        Err(error) => {
            tracing::info!(%error, "no change notifications from the DC; polling instead");
            None
        }
    };
    loop {
        let Some(cookie) = store.cursor(crate::store::sync_state::DIRSYNC_CURSOR)? else {
            // No cycle has run yet: nothing to compare with.
            tokio::time::sleep(every).await;
            continue;
        };
        let cookie = crate::directory::import::DirSyncCookie::from_bytes(cookie);
        let (mut seen, mut more) = count_changes(&mut connections, &scope, &cookie).await?;
        if seen == 0 {
            // Something changed, perhaps nothing dirsync syncs (a logon time, an object out of
            // scope): count again.
            let notified = match notifications.as_mut() {
                Some(notifications) => tokio::time::timeout(every, notifications.changed()).await,
                None => {
                    tokio::time::sleep(every).await;
                    continue;
                }
            };
            if let Ok(Err(error)) = notified {
                tracing::warn!(%error, "change notifications ended; polling instead");
                notifications = None;
            }
            continue;
        }
        let first = Instant::now();
        loop {
            tokio::time::sleep(SETTLE_QUIET).await;
            let (now_seen, now_more) = count_changes(&mut connections, &scope, &cookie).await?;
            let settled = now_seen == seen && now_more == more;
            (seen, more) = (now_seen, now_more);
            if settled || first.elapsed() >= SETTLE_AT_MOST {
                return Ok(seen);
            }
        }
    }
}

async fn count_changes(
    connections: &mut Connections,
    scope: &crate::directory::scope::SyncScope,
    cookie: &crate::directory::import::DirSyncCookie,
) -> Result<(usize, bool), RunError> {
    connections
        .directory
        .count_changes(scope, cookie)
        .await
        .map_err(|error| RunError::SignIn(CycleError::Directory(error)))
}

/// A burst of changes has ended when no new one came for this long.
const SETTLE_QUIET: Duration = Duration::from_secs(1);
/// Changes that keep coming are synced at the latest this long after the first.
pub const SETTLE_AT_MOST: Duration = Duration::from_secs(5);

/// One object synchronized now, alone (README, "Tracing one object" and "Pushing one user now").
#[derive(Debug)]
pub struct OneObjectRun {
    pub ran: Ran,
    pub trace: Trace,
    /// The cloud user whose sign-in sessions were revoked, when asked.
    pub revoked: Option<String>,
    /// After the run: whether `dirsync push --disable` holds the user disabled in the cloud.
    pub held_disabled: bool,
    /// Whether a hold was taken back (`AccountHold::Release`).
    pub released: bool,
}

/// What a push does about the cloud account besides bringing AD's state (README, "Pushing one
/// user now").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccountHold {
    /// The cloud account follows AD: a plain push.
    #[default]
    FollowAd,
    /// Disabled in the cloud now, and kept so by every cycle until AD disables the account too.
    Disable,
    /// A hold taken back: the cloud account follows AD again.
    Release,
}

/// Synchronizes the object `query` names, alone, now: traced first (which object, and what the
/// cycle will do), then a cycle of that one object with the run lock held (waiting for a running
/// cycle at most `wait`). With `revoke_sessions`, the user's cloud sign-in sessions are revoked
/// after (`revokeSignInSessions`), so an off-boarded user's open sessions end now. `hold`
/// disables a synced user in the cloud whatever AD says, or takes such a hold back.
pub async fn run_one_object(
    home: &Home,
    query: &str,
    trigger: crate::store::vocabulary::RunTrigger,
    wait: Duration,
    revoke_sessions: bool,
    hold: AccountHold,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<OneObjectRun, RunError> {
    let traced = trace_object(home, query).await?;
    let anchor = match &traced.found {
        crate::engine::cycle::trace::Found::Found { anchor, .. } => {
            crate::guid::Guid::parse(anchor).ok_or_else(|| RunError::NotInDirectory {
                query: query.to_owned(),
                closest: Vec::new(),
            })?
        }
        crate::engine::cycle::trace::Found::NotFound { closest } => {
            return Err(RunError::NotInDirectory {
                query: query.to_owned(),
                closest: closest.clone(),
            });
        }
    };
    let config = load_config(home)?;
    if hold == AccountHold::Disable {
        let cannot = |reason: &str| RunError::CannotDisable {
            query: query.to_owned(),
            reason: reason.to_owned(),
        };
        if !matches!(
            traced.found,
            crate::engine::cycle::trace::Found::Found {
                kind: crate::cloud::ObjectKind::User,
                ..
            }
        ) {
            return Err(cannot("it is a group; only users sign in"));
        }
        let store = StateStore::open_home(home)?;
        if !store.links()?.contains_key(&anchor) {
            return Err(cannot(
                "dirsync has not synced this user to the cloud, so there is nothing to disable there",
            ));
        }
    }
    let lock = acquire_waiting(home, wait).await?;
    let store = StateStore::open_home(home)?;
    let released = match hold {
        AccountHold::FollowAd => false,
        AccountHold::Disable => {
            store.hold_disabled(anchor, now_ms())?;
            false
        }
        AccountHold::Release => store.release_held_disabled(anchor)?,
    };
    let mut connections = Connections::open(&config, &home.secrets(), FlowPolicy::default())?;
    let progress = kept_progress(home, progress);
    let request = CycleRequest {
        only: Some(anchor),
        ..CycleRequest::new(trigger)
    };
    let report = Box::pin(run_cycle(
        &config,
        &mut connections,
        &store,
        request,
        &progress,
        &StopSignal::default(),
    ))
    .instrument(run_span())
    .await?;
    log_run_ended(&report);
    alerts::look_or_log(home).await;
    let mut revoked = None;
    if revoke_sessions && let Some(link) = store.links()?.get(&anchor) {
        connections
            .graph
            .revoke_sign_in_sessions(&link.cloud_id)
            .await
            .map_err(CycleError::from)?;
        revoked = Some(link.cloud_id.clone());
    }
    drop(lock);
    let held_disabled = store.held_disabled()?.contains(&anchor);
    Ok(OneObjectRun {
        ran: Ran { store, report },
        trace: traced,
        revoked,
        held_disabled,
        released,
    })
}

/// The run lock, waiting at most `wait` for a running cycle to finish.
async fn acquire_waiting(home: &Home, wait: Duration) -> Result<RunLock, RunError> {
    let started = Instant::now();
    loop {
        match RunLock::acquire(&home.state_db) {
            Ok(lock) => return Ok(lock),
            Err(RunLockError::Busy { .. }) if started.elapsed() < wait => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(busy @ RunLockError::Busy { .. }) if wait.is_zero() => return Err(busy.into()),
            Err(RunLockError::Busy { .. }) => {
                return Err(RunError::StillBusy {
                    waited_secs: wait.as_secs(),
                });
            }
            Err(other) => return Err(other.into()),
        }
    }
}

fn closest_names(closest: &[String]) -> String {
    if closest.is_empty() {
        String::new()
    } else {
        format!("; the closest names: {}", closest.join("; "))
    }
}

/// Runs one password hash sync cycle with the run lock held, telling `progress` how it goes.
pub async fn run_passwords(
    home: &Home,
    request: PasswordCycleRequest,
    stop: &StopSignal,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Ran, RunError> {
    let config = load_config(home)?;
    if !config.options.password_hash_sync {
        return Err(RunError::PasswordSyncOff {
            config_file: home.config_file.display().to_string(),
        });
    }
    let _lock = RunLock::acquire(&home.state_db)?;
    let store = StateStore::open_home(home)?;
    let graph = sync_app_client(&config, &home.secrets(), FlowPolicy::default())?;
    let mut source = SambaPrivilegedSocket::open(
        config.password_hash_socket(),
        &config.naming_context(),
        Duration::from_secs(config.directory.timeout_secs),
    )
    .await;
    let progress = kept_progress(home, progress);
    let report = run_password_cycle(
        &config,
        source.as_mut().map_err(|unavailable| unavailable.clone()),
        &graph,
        &store,
        request,
        &progress,
        stop,
    )
    .instrument(run_span())
    .await?;
    log_run_ended(&report);
    alerts::look_or_log(home).await;
    Ok(Ran { store, report })
}

/// The span a run's log lines carry; the recorder fills in the run's id once it has one
/// (README, "Logs").
fn run_span() -> tracing::Span {
    tracing::info_span!("run", run_id = tracing::field::Empty)
}

/// One line per run kept in the history (a scheduled password cycle that found nothing leaves
/// none).
fn log_run_ended(report: &CycleReport) {
    if !report.recorded {
        return;
    }
    let failure = report
        .failure
        .as_deref()
        .map(|failure| format!(": {failure}"))
        .unwrap_or_default();
    tracing::info!(
        event = crate::log_events::RUN_ENDED,
        run_id = report.run_id,
        mode = report.mode.as_str(),
        status = report.status.as_str(),
        "run {} ({}) ended {}{failure}",
        report.run_id,
        report.mode.as_str(),
        report.status.as_str()
    );
}

/// `progress`, and the same kept on the running run in the store (each step, and counts at most
/// once a second), so that a window in another process shows the run live. A store that cannot
/// be written only loses the live view: the run goes on.
fn kept_progress<'a>(
    home: &Home,
    progress: &'a (dyn Fn(Progress) + Sync),
) -> impl Fn(Progress) + Sync + 'a {
    let store = StateStore::open_home(home).ok().map(Mutex::new);
    let kept_at: Mutex<Option<Instant>> = Mutex::new(None);
    move |event| {
        progress(event);
        let Some(store) = &store else {
            return;
        };
        let (done, total) = match event {
            Progress::Step(_) => (0, None),
            Progress::Objects { done, total, .. } => (done, total),
        };
        let mut kept_at = kept_at.lock().unwrap_or_else(PoisonError::into_inner);
        let due = matches!(event, Progress::Step(_))
            || kept_at.is_none_or(|at| at.elapsed() >= Duration::from_secs(1));
        if !due {
            return;
        }
        *kept_at = Some(Instant::now());
        let store = store.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(error) = store.record_running_progress(done, total, now_ms()) {
            tracing::debug!(%error, "cannot keep the run's progress in the store");
        }
    }
}
