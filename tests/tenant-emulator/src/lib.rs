//! A tenant emulator for dirsync's tests: the subset of Microsoft Graph v1.0 and of the
//! Microsoft identity platform (OAuth 2.0 v2.0 endpoints) that dirsync uses, behaving as their
//! documentation says, refusals and error bodies included.
//!
//! [`RunningEmulator::start`] serves on its own thread and tokio runtime; the
//! `tenant-emulator` binary does the same from the command line. See the README for the
//! endpoints, the test hooks under `/_emulator` and what is not emulated.

mod app;
mod client_assertion;
mod graph;
mod identity;
mod mailbox;
mod model;
mod password_sync;
mod server;
mod store;
mod tenant;
mod util;
mod x509;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::app::{App, Limiter, Stats};
pub use crate::app::{FaultSettings, StatsSnapshot};
use crate::store::Store;

/// Graph's write limit: at most `writes` writes per sliding `window`, per application and tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteLimit {
    pub writes: u32,
    pub window: Duration,
}

impl Default for WriteLimit {
    /// 3,000 writes per 2 minutes 30 seconds (Graph's identity and access service limits).
    fn default() -> Self {
        WriteLimit {
            writes: 3000,
            window: Duration::from_secs(150),
        }
    }
}

/// How to run an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// `127.0.0.1:0` picks a free port.
    pub listen: SocketAddr,
    /// Where the tenant is kept across restarts (none: in memory only).
    pub state_file: Option<PathBuf>,
    /// The tenant's `*.onmicrosoft.com` domain.
    pub initial_domain: String,
    /// More verified domains, e.g. `corp.dirsync.test`.
    pub verified_domains: Vec<String>,
    /// Device codes are approved as the Global Administrator at once.
    pub auto_approve: bool,
    pub write_limit: WriteLimit,
    pub token_lifetime: Duration,
    /// The `interval` the device code endpoint announces (and enforces with `slow_down`).
    pub device_code_interval_secs: u64,
    /// How long a device code stays valid (`expires_in`).
    pub device_code_lifetime_secs: u64,
    /// Faults on from the start, as `PUT /_emulator/faults` sets them (for example
    /// `replication_delay_secs`); off by default.
    pub faults: FaultSettings,
    /// Serve the password hash sync endpoint (`{base}/dirsync/v1/passwordHashes`), an emulator
    /// extension standing in for Entra Connect's private service. Off: both of its routes
    /// answer 404 like any unknown path, as public Graph has no such endpoint.
    pub password_hash_endpoint: bool,
    /// Serve the mailbox delta (`{base}/dirsync/v1/mailboxes/delta`), an emulator extension
    /// standing in for the private sync API Entra Connect's Exchange hybrid write-back reads.
    /// Off: it answers 404 like any unknown path, as public Graph has no such endpoint (the
    /// `/_emulator/mailboxes` hooks stay).
    pub mailbox_endpoint: bool,
    /// The tenant's directory size quota (`directorySizeQuota.total` in Graph's beta
    /// organization; creates are refused once it is used up). None: Entra's default, 300,000
    /// with a verified domain besides the initial one, else 50,000.
    pub directory_quota: Option<u32>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            state_file: None,
            initial_domain: "contoso-lab.onmicrosoft.com".to_owned(),
            verified_domains: Vec::new(),
            auto_approve: false,
            write_limit: WriteLimit::default(),
            token_lifetime: Duration::from_secs(3599),
            device_code_interval_secs: 5,
            device_code_lifetime_secs: 900,
            faults: FaultSettings::default(),
            password_hash_endpoint: true,
            mailbox_endpoint: true,
            directory_quota: None,
        }
    }
}

/// What a client needs to use the emulator; the binary prints it as one JSON line. Its
/// `Debug` hides the client secret and the administrator's password.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct ReadyInfo {
    /// `http://127.0.0.1:PORT`: clients call `{authority}/{tenant}/oauth2/v2.0/token`.
    pub authority: String,
    /// `http://127.0.0.1:PORT`: clients call `{graph}/v1.0/...`.
    pub graph: String,
    pub tenant_id: String,
    /// The pre-registered sync app (client credentials).
    pub client_id: String,
    pub client_secret: String,
    /// The Global Administrator (delegated sign-in).
    pub admin_user: String,
    pub admin_password: String,
}

impl std::fmt::Debug for ReadyInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadyInfo")
            .field("authority", &self.authority)
            .field("graph", &self.graph)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("admin_user", &self.admin_user)
            .field("admin_password", &"<redacted>")
            .finish()
    }
}

/// An emulator serving on its own thread.
pub struct RunningEmulator {
    pub info: ReadyInfo,
    address: SocketAddr,
    app: Arc<App>,
    shutdown: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

/// Written by hand: `info` holds secrets (redacted by its own `Debug`), and the tenant's state
/// (passwords' digests, the signing key) is nobody's business in a log.
impl std::fmt::Debug for RunningEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningEmulator")
            .field("info", &self.info)
            .field("address", &self.address)
            .field("running", &self.thread.is_some())
            .finish_non_exhaustive()
    }
}

fn invalid_input(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Refuses durations so long that adding them to a clock would overflow (and that no test
/// means): a day at most, an hour for the device code polling interval.
fn check_config_limits(
    window: Duration,
    token_lifetime: Duration,
    device_code_interval_secs: u64,
    device_code_lifetime_secs: u64,
) -> io::Result<()> {
    const DAY: u64 = app::MAX_WINDOW_SECS;
    let checks = [
        ("the write limit's window", window.as_secs(), DAY),
        ("the token lifetime", token_lifetime.as_secs(), DAY),
        ("the device code interval", device_code_interval_secs, 3_600),
        ("the device code lifetime", device_code_lifetime_secs, DAY),
    ];
    for (what, secs, max) in checks {
        if secs > max {
            return Err(invalid_input(format!(
                "{what} is {secs} s; at most {max} s is accepted"
            )));
        }
    }
    Ok(())
}

/// The URL clients use: a wildcard listen address becomes loopback.
fn base_url(address: SocketAddr) -> String {
    let ip = match address.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    match ip {
        IpAddr::V4(v4) => format!("http://{v4}:{}", address.port()),
        IpAddr::V6(v6) => format!("http://[{v6}]:{}", address.port()),
    }
}

impl RunningEmulator {
    /// Binds, starts serving on its own thread with its own tokio runtime (so it outlives any
    /// test's runtime), returns once it accepts connections.
    pub fn start(config: EmulatorConfig) -> io::Result<RunningEmulator> {
        let EmulatorConfig {
            listen,
            state_file,
            initial_domain,
            verified_domains,
            auto_approve,
            write_limit,
            token_lifetime,
            device_code_interval_secs,
            device_code_lifetime_secs,
            faults,
            password_hash_endpoint,
            mailbox_endpoint,
            directory_quota,
        } = config;
        let initial = initial_domain.trim().to_ascii_lowercase();
        let prefix = initial.strip_suffix(".onmicrosoft.com").unwrap_or_default();
        if prefix.is_empty()
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(invalid_input(format!(
                "the initial domain '{initial_domain}' must be NAME.onmicrosoft.com (letters, digits and hyphens)"
            )));
        }
        if write_limit.writes == 0 || write_limit.window.is_zero() {
            return Err(invalid_input(
                "the write limit needs at least one write per non-zero window".to_owned(),
            ));
        }
        check_config_limits(
            write_limit.window,
            token_lifetime,
            device_code_interval_secs,
            device_code_lifetime_secs,
        )?;
        let faults = faults
            .faults(std::time::Instant::now())
            .map_err(invalid_input)?;
        let listener = std::net::TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let base = base_url(address);
        let new_tenant = tenant::NewTenant {
            initial_domain: initial,
            verified_domains: verified_domains.clone(),
        };
        let store = Store::open(state_file.as_deref(), || tenant::create(&new_tenant))?;
        store.write(|inner| tenant::add_domains(inner, &verified_domains))?;
        let info = store.read(|state| ReadyInfo {
            authority: base.clone(),
            graph: base.clone(),
            tenant_id: state.tenant_id.clone(),
            client_id: state.sync_app_id.clone(),
            client_secret: state.sync_app_secret.clone(),
            admin_user: state
                .objects
                .get(&state.admin_user_id)
                .and_then(|admin| admin.str_prop("userPrincipalName"))
                .unwrap_or_default()
                .to_owned(),
            admin_password: state.admin_password.clone(),
        });
        let app = Arc::new(App {
            store,
            base,
            token_lifetime,
            device_code_interval_secs,
            device_code_lifetime_secs,
            auto_approve,
            password_hash_endpoint,
            mailbox_endpoint,
            directory_quota: Mutex::new(directory_quota),
            device_codes: Mutex::new(HashMap::new()),
            limiter: Mutex::new(Limiter::new(write_limit.writes, write_limit.window)),
            faults: Mutex::new(faults),
            stats: Stats::default(),
            recent: Mutex::new(app::Recent::default()),
        });
        let (shutdown, stop) = watch::channel(false);
        let (ready, started) = std::sync::mpsc::channel::<io::Result<()>>();
        let served = app.clone();
        let thread = std::thread::Builder::new()
            .name("tenant-emulator".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("tenant-emulator-worker")
                    .enable_all()
                    .build();
                let runtime = match runtime {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready.send(Err(error));
                        return;
                    }
                };
                runtime.block_on(async {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(error) => {
                            let _ = ready.send(Err(error));
                            return;
                        }
                    };
                    let _ = ready.send(Ok(()));
                    server::serve(listener, served.clone(), stop).await;
                });
                if let Err(error) = served.store.compact() {
                    eprintln!("tenant-emulator: could not write the state file: {error}");
                }
            })?;
        match started.recv() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(error),
            Err(_) => return Err(io::Error::other("the emulator thread ended before serving")),
        }
        Ok(RunningEmulator {
            info,
            address,
            app,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// What `PUT /_emulator/faults` does (`None`: all faults off), for tests in this process.
    pub fn set_faults(&self, settings: Option<&FaultSettings>) -> Result<(), String> {
        let faults = match settings {
            Some(settings) => settings.faults(std::time::Instant::now())?,
            None => app::Faults::default(),
        };
        *app::lock(&self.app.faults) = faults;
        Ok(())
    }

    /// Sets the directory size quota's `total` from now on, as `EmulatorConfig::directory_quota`
    /// does at start (None: Entra's default). Lowering it to the objects in use makes every
    /// create refused with `Directory_QuotaExceeded`.
    pub fn set_directory_quota(&self, total: Option<u32>) {
        *app::lock(&self.app.directory_quota) = total;
    }

    /// Assigns a directory role (a built-in role definition id) to a user or a service
    /// principal, as an administrator would in the portal, effective at once (the
    /// `role_propagation_ms` fault applies only to `POST /roleManagement/directory/roleAssignments`).
    pub fn assign_role(&self, user_id: &str, role_definition_id: &str) -> Result<(), String> {
        let role = role_definition_id.to_ascii_lowercase();
        if !graph::roles::ROLE_DEFINITIONS
            .iter()
            .any(|(id, _)| *id == role)
        {
            return Err(format!(
                "{role_definition_id} is not a built-in role the emulator knows"
            ));
        }
        let mut inner = self.app.store.lock();
        let user = inner
            .state
            .objects
            .get_mut(&user_id.to_ascii_lowercase())
            .filter(|object| {
                object.is_live()
                    && matches!(
                        object.kind,
                        model::Kind::User | model::Kind::ServicePrincipal
                    )
            })
            .ok_or_else(|| format!("no user or service principal {user_id}"))?;
        if role == graph::roles::GLOBAL_ADMINISTRATOR && user.kind == model::Kind::User {
            user.internal.global_admin = true;
        } else {
            user.internal.directory_roles.insert(role);
        }
        Ok(())
    }

    /// The role definition ids a user or service principal holds directly, for tests that
    /// check what setup assigned.
    pub fn roles_of(&self, principal_id: &str) -> Vec<String> {
        self.app.store.read(|state| {
            state
                .objects
                .get(&principal_id.to_ascii_lowercase())
                .filter(|object| object.is_live())
                .map(graph::roles::roles_of)
                .unwrap_or_default()
        })
    }

    /// Counters since start (or since the last `DELETE /_emulator/stats`).
    pub fn stats(&self) -> StatsSnapshot {
        self.app.stats.snapshot()
    }

    /// The tenant's objects of one type as Graph would list them with all properties
    /// (`users`, `groups`, `applications`, `servicePrincipals`), live ones only. For tests that
    /// check the tenant without going through Graph.
    pub fn objects(&self, collection: &str) -> Vec<Value> {
        self.app.store.read(|state| {
            state
                .objects
                .values()
                .filter(|o| o.is_live() && o.kind.collection().eq_ignore_ascii_case(collection))
                .map(|o| {
                    let mut map = o.props.clone();
                    map.remove("passwordProfile");
                    if o.kind == model::Kind::Group {
                        map.insert(
                            "members".into(),
                            json!(
                                o.internal
                                    .members
                                    .iter()
                                    .filter(|m| state.live(m).is_some())
                                    .collect::<Vec<_>>()
                            ),
                        );
                        map.insert(
                            "owners".into(),
                            json!(o.internal.owners.iter().collect::<Vec<_>>()),
                        );
                    }
                    Value::Object(map)
                })
                .collect()
        })
    }

    /// A live user's stored properties, found by object ID or userPrincipalName (either case),
    /// under Graph's names as `objects("users")` gives them (`passwordProfile` left out,
    /// `onPremisesExtensionAttributes` with its 15 keys), with every directory extension value
    /// the user holds (`extension_{appId}_{name}`; cleared ones left out), also those whose
    /// definition is no longer registered and that Graph therefore no longer shows. None for
    /// no such live user. For tests that check what reached the tenant.
    pub fn user_properties(&self, id_or_upn: &str) -> Option<serde_json::Map<String, Value>> {
        self.stored_properties(model::Kind::User, id_or_upn)
    }

    /// [`RunningEmulator::user_properties`] for a live group, found by object ID.
    pub fn group_properties(&self, id: &str) -> Option<serde_json::Map<String, Value>> {
        self.stored_properties(model::Kind::Group, id)
    }

    fn stored_properties(
        &self,
        kind: model::Kind,
        key: &str,
    ) -> Option<serde_json::Map<String, Value>> {
        self.app.store.read(|state| {
            let object = state
                .live_of(kind, &key.to_ascii_lowercase())
                .or_else(|| match kind {
                    model::Kind::User => state.user_by_upn(key),
                    _ => None,
                })?;
            let mut map = object.props.clone();
            map.remove("passwordProfile");
            map.retain(|name, value| !(model::is_extension_name(name) && value.is_null()));
            if kind == model::Kind::User {
                let full = graph::query::full_extension_attributes(
                    map.get("onPremisesExtensionAttributes"),
                );
                map.insert("onPremisesExtensionAttributes".into(), full);
            }
            Some(map)
        })
    }

    /// The IDs of the live users holding a password hash sync credential (sent through
    /// `POST /dirsync/v1/passwordHashes`). For tests that check what reached the tenant.
    pub fn users_with_synced_password(&self) -> Vec<String> {
        self.app.store.read(|state| {
            state
                .objects
                .values()
                .filter(|o| {
                    o.is_live()
                        && o.kind == model::Kind::User
                        && o.internal.synced_password_credential.is_some()
                })
                .map(|o| o.id().to_owned())
                .collect()
        })
    }

    /// Sets a user's mailbox attributes as `PATCH /_emulator/mailboxes/{id}` does: `patch` is a
    /// JSON object with any of the `cloud…` properties (null clears one). The error says what
    /// is wrong (no such live user, an unknown property, a wrong type, the state file).
    pub fn set_mailbox(&self, user_id: &str, patch: Value) -> Result<(), String> {
        mailbox::set(&self.app, user_id, patch).map_err(|error| error.to_string())
    }

    /// A live user's mailbox as the mailbox delta lists it (`id` and the six `cloud…`
    /// properties, unset ones null or empty), or None for no such live user.
    pub fn mailbox(&self, user_id: &str) -> Option<Value> {
        mailbox::get(&self.app, user_id)
    }

    /// Stops serving, writes state, joins the thread. Drop does the same.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(true);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_secrets() {
        let emulator = RunningEmulator::start(EmulatorConfig::default()).expect("starts");
        let secret = emulator.info.client_secret.clone();
        let password = emulator.info.admin_password.clone();
        for text in [
            format!("{emulator:?}"),
            format!("{emulator:#?}"),
            format!("{:?}", emulator.info),
        ] {
            assert!(!text.contains(&secret), "{text}");
            assert!(!text.contains(&password), "{text}");
            assert!(text.contains("<redacted>"), "{text}");
            assert!(text.contains(&emulator.info.client_id), "{text}");
        }
    }

    #[test]
    fn durations_that_would_overflow_a_clock_are_refused() {
        let huge = EmulatorConfig {
            write_limit: WriteLimit {
                writes: 1,
                window: Duration::MAX,
            },
            ..EmulatorConfig::default()
        };
        let error = RunningEmulator::start(huge).expect_err("refused");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        for config in [
            EmulatorConfig {
                token_lifetime: Duration::MAX,
                ..EmulatorConfig::default()
            },
            EmulatorConfig {
                device_code_lifetime_secs: u64::MAX,
                ..EmulatorConfig::default()
            },
            EmulatorConfig {
                faults: FaultSettings {
                    throttle_for_secs: u64::MAX,
                    ..FaultSettings::default()
                },
                ..EmulatorConfig::default()
            },
        ] {
            assert!(RunningEmulator::start(config).is_err());
        }
    }
}
