//! Sync cycle benchmark (targets: nothing changed under 0.5 s, 100 changed users in under 2 s, export at 95 % of the write limit), against the Samba AD lab and an in-process tenant
//! emulator:
//!
//! - the incremental cycle with nothing changed (target under 0.5 s) and with 100 changed users
//!   reaching the cloud (target under 2 s), each timed in-process through the library and end to
//!   end as the `dirsync sync` binary;
//! - the export rate against the emulator at a write limit, with dirsync's client paced to the same
//!   budget (target at least 95 % of the limit, at most 1 % of requests answered 429);
//! - 1,000 changed passwords through Microsoft Graph (password sync through Graph) at Graph's
//!   write limit: the password cycle's time as `dirsync sync --passwords` and its share of 429s;
//! - the peak memory of this process.
//!
//! Prints figures beside their targets; asserts what reached the cloud, never a time.
//!
//!     keyctl session - cargo bench --bench sync_cycle
//!
//! (Secrets live in the OS keyring, which needs a session keyring.) Uses the lab as it is when it
//! runs, whatever its size, and brings it up when it does not. Creates its OU under OU=Staging
//! and deletes it at the end. `cargo test --all-targets` runs this without `--bench`; it then
//! does nothing.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Lab, running_lab};
use dirsync::cloud::FlowPolicy;
use dirsync::cloud::setup::client_secret_key;
use dirsync::config::{
    CloudConfig, Config, DirectoryConfig, PasswordSyncMode, ScopeConfig, SyncOptions,
};
use dirsync::directory::import::DirSyncCookie;
use dirsync::directory::service_account::KnownAccount;
use dirsync::directory::setup::{DirectoryOptions, DirectorySite, set_up_directory};
use dirsync::directory::{DirectoryConnection, DirectoryTarget, Dn, forest};
use dirsync::engine::cycle::{
    Connections, CycleReport, CycleRequest, Progress, StopSignal, run_cycle,
};
use dirsync::run_lock::RunLock;
use dirsync::secret::Secret;
use dirsync::secret_store::{OsKeyring, SecretStore};
use dirsync::store::StateStore;
use dirsync::store::sync_state::DIRSYNC_CURSOR;
use dirsync::store::vocabulary::{RunMode, RunStatus, RunTrigger, StepKind};
use dirsync::tls::TlsTrust;
use tenant_emulator::{EmulatorConfig, RunningEmulator, WriteLimit};

/// Users in the bench's OU: what the incremental cycles keep in sync, and what the export rate is
/// measured on (five windows' worth of the write limit below).
const USERS: usize = 1000;
const CHANGED_USERS: usize = 100;
const NOTHING_CHANGED_ROUNDS: usize = 5;
const CHANGED_ROUNDS: usize = 3;
/// Graph's write limit is 3,000 writes per 150 s; this is the same kind of sliding window, scaled
/// so that the export of `USERS` takes seconds rather than minutes.
const EXPORT_LIMIT: WriteLimit = WriteLimit {
    writes: 200,
    window: Duration::from_secs(4),
};
const INITIAL_DOMAIN: &str = "contoso-lab.onmicrosoft.com";
const VERIFIED_DOMAIN: &str = "contoso.test";
/// The computer name the bench's service account (MSOL_…) is made for: its own account, so that
/// resetting its password disturbs no test.
const COMPUTER: &str = "sync-bench";

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let lab = running_lab();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let account_dn = runtime.block_on(service_account(&lab));
    println!(
        "sync cycle: Samba AD lab ({} extra users), tenant emulator in-process, dirsync binary {}",
        lab.extra_users,
        binary().display()
    );

    let ou = BenchOu::create(&lab, USERS);
    bench_incremental_cycles(&lab, &runtime, &account_dn, &ou);
    // A fresh tenant and home: the same users make a first sync there.
    bench_export_rate(&lab, &runtime, &account_dn, &ou);
    bench_passwords_through_graph(&lab, &account_dn, &ou);
    drop(ou);

    println!(
        "peak memory of the bench process (VmHWM, emulator included): {:.0} MB",
        peak_rss_mb()
    );
}

/// `dirsync` built by the same `cargo bench` (the release profile).
fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dirsync"))
}

fn directory_target(lab: &Lab) -> DirectoryTarget {
    DirectoryTarget::new(
        &lab.ldaps_url,
        TlsTrust::CaFile(lab.ca_file.clone()),
        Duration::from_secs(15),
    )
    .unwrap()
}

/// Creates (or resets) the bench's service account the way setup does; its password goes to the
/// keyring. Returns its DN. Deleted Objects stays as it is: the bench syncs no delete, and
/// replacing that DACL would take the right away from the tests' own account.
async fn service_account(lab: &Lab) -> String {
    let admin = DirectoryConnection::connect_and_bind(
        &directory_target(lab),
        &lab.admin_upn,
        &Secret::new(lab.admin_password.clone()),
    )
    .await
    .unwrap();
    let forest = forest::read_forest(&admin).await.unwrap();
    let setup = set_up_directory(
        &admin,
        &directory_target(lab),
        &DirectorySite {
            domain: &Dn::parse(&lab.base_dn).unwrap(),
            root_domain_naming_context: &forest.root_dse.root_domain_naming_context,
            schema_naming_context: &forest.root_dse.schema_naming_context,
            computer: COMPUTER,
            known_account: KnownAccount::default(),
        },
        &DirectoryOptions::default(),
        &OsKeyring,
    )
    .await
    .unwrap_or_else(|error| {
        panic!("cannot set up the service account ({error}); run under `keyctl session -`")
    });
    admin.close().await;
    setup.account.dn.to_string()
}

/// An OU under OU=Staging holding `users` users, made with one LDIF; deleted with its subtree
/// when dropped, so that the lab stays small even when the bench panics.
struct BenchOu<'a> {
    lab: &'a Lab,
    dn: String,
    tag: String,
}

impl<'a> BenchOu<'a> {
    fn create(lab: &'a Lab, users: usize) -> BenchOu<'a> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let number = format!("{:06}", nanos % 1_000_000);
        let tag = format!("bench-sync{number}");
        let dn = format!("OU={tag},OU=Staging,{}", lab.base_dn);
        let mut ldif = format!("dn: {dn}\nchangetype: add\nobjectClass: organizationalUnit\n\n");
        for n in 0..users {
            let user = format!("u{n:05}");
            // sAMAccountName holds at most 20 characters; the tag's number keeps it unique.
            let sam = format!("{user}{number}");
            ldif.push_str(&format!(
                "dn: CN={user},{dn}\nchangetype: add\nobjectClass: user\nsAMAccountName: {sam}\n\
                 userPrincipalName: {user}.{tag}@{VERIFIED_DOMAIN}\ndisplayName: {user} {tag}\n\
                 mail: {user}.{tag}@{VERIFIED_DOMAIN}\nproxyAddresses: SMTP:{user}.{tag}@{VERIFIED_DOMAIN}\n\
                 title: Engineer\nuserAccountControl: 512\n\n"
            ));
        }
        let started = Instant::now();
        ldapmodify(lab, &ldif);
        eprintln!(
            "bench: created {dn} with {users} users in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        BenchOu { lab, dn, tag }
    }

    fn user_dn(&self, n: usize) -> String {
        format!("CN=u{n:05},{}", self.dn)
    }

    fn upn(&self, n: usize) -> String {
        format!("u{n:05}.{}@{VERIFIED_DOMAIN}", self.tag)
    }
}

impl Drop for BenchOu<'_> {
    fn drop(&mut self) {
        let output = Command::new("samba-tool")
            .args(["ou", "delete", &self.dn, "--force-subtree-delete"])
            .arg("-H")
            .arg(self.lab.lab_dir.join("private/sam.ldb"))
            .arg("-s")
            .arg(self.lab.lab_dir.join("etc/smb.conf"))
            .output();
        match output {
            Ok(output) if output.status.success() => {}
            Ok(output) => eprintln!(
                "bench: could not delete {}: {}",
                self.dn,
                String::from_utf8_lossy(&output.stderr)
            ),
            Err(error) => eprintln!("bench: could not run samba-tool: {error}"),
        }
    }
}

/// `ldapmodify` as the lab's administrator.
fn ldapmodify(lab: &Lab, ldif: &str) {
    let mut child = Command::new("ldapmodify")
        .env("LDAPTLS_CACERT", &lab.ca_file)
        .args(["-x", "-H", &lab.ldaps_url])
        .args(["-D", &lab.admin_upn, "-w", &lab.admin_password])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ldif.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "ldapmodify failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Gives the first `CHANGED_USERS` users of the OU a new title, in one LDIF.
fn change_titles(ou: &BenchOu, title: &str) {
    let ldif: String = (0..CHANGED_USERS)
        .map(|n| {
            format!(
                "dn: {}\nchangetype: modify\nreplace: title\ntitle: {title}\n-\n\n",
                ou.user_dn(n)
            )
        })
        .collect();
    ldapmodify(ou.lab, &ldif);
}

/// How many of the changed users the cloud shows with `title`.
fn cloud_users_with_title(tenant: &RunningEmulator, ou: &BenchOu, title: &str) -> usize {
    let upns: std::collections::HashSet<String> = (0..CHANGED_USERS).map(|n| ou.upn(n)).collect();
    tenant
        .objects("users")
        .iter()
        .filter(|user| {
            user["userPrincipalName"]
                .as_str()
                .is_some_and(|upn| upns.contains(upn))
                && user["jobTitle"] == title
        })
        .count()
}

/// One dirsync installation: a home with config.toml, its own tenant, and the client secret in
/// the keyring.
struct Installation {
    home: tempfile::TempDir,
    tenant: RunningEmulator,
}

impl Installation {
    fn new(lab: &Lab, account_dn: &str, ou: &BenchOu, write_limit: WriteLimit) -> Installation {
        Installation::new_with(lab, account_dn, ou, write_limit, true)
    }

    /// `password_hash_endpoint`: false for a tenant like public Graph.
    fn new_with(
        lab: &Lab,
        account_dn: &str,
        ou: &BenchOu,
        write_limit: WriteLimit,
        password_hash_endpoint: bool,
    ) -> Installation {
        let tenant = RunningEmulator::start(EmulatorConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            initial_domain: INITIAL_DOMAIN.to_owned(),
            verified_domains: vec![VERIFIED_DOMAIN.to_owned()],
            write_limit,
            password_hash_endpoint,
            ..EmulatorConfig::default()
        })
        .unwrap();
        let info = tenant.info.clone();
        OsKeyring
            .save(
                &client_secret_key(&info.client_id),
                &Secret::new(info.client_secret.clone()),
            )
            .unwrap();
        let config = Config {
            cloud: CloudConfig {
                authority: info.authority.clone(),
                graph: info.graph.clone(),
                tenant_id: info.tenant_id.clone(),
                client_id: info.client_id.clone(),
                service_principal_id: None,
                credential_expires_at: None,
                certificate_thumbprint: None,
                directory_extensions: Vec::new(),
            },
            directory: DirectoryConfig {
                server: lab.ldaps_url.clone(),
                ca_file: Some(lab.ca_file.clone()),
                insecure: false,
                naming_context: lab.base_dn.clone(),
                service_account_dn: account_dn.to_owned(),
                service_account_guid: None,
                timeout_secs: 15,
                password_hash_socket: None,
                password_gpg_home: None,
                samba_config: None,
            },
            options: SyncOptions::default(),
            scope: ScopeConfig {
                included: vec![ou.dn.clone()],
                excluded: Vec::new(),
            },
            monitoring: Default::default(),
            rules: Default::default(),
            forests: Vec::new(),
            store: Default::default(),
        };
        let home = tempfile::tempdir().unwrap();
        config.save(&home.path().join("config.toml")).unwrap();
        Installation { home, tenant }
    }

    fn home(&self) -> &Path {
        self.home.path()
    }
}

/// How long a cycle took, and each of its steps (from the step's start to the next one's, the
/// last to the end of the cycle).
struct CycleTiming {
    total: Duration,
    steps: Vec<(StepKind, Duration)>,
}

impl CycleTiming {
    fn step(&self, kind: StepKind) -> Duration {
        self.steps
            .iter()
            .find(|(step, _)| *step == kind)
            .map_or(Duration::ZERO, |(_, took)| *took)
    }
}

/// One cycle through the library, done as `dirsync sync` does it (src/cli/sync.rs `run_locked`):
/// load the configuration, take the run lock, open the store, sign in, run.
fn cycle_in_process(
    runtime: &tokio::runtime::Runtime,
    home: &Path,
    policy: FlowPolicy,
) -> (CycleReport, CycleTiming) {
    let step_starts: Mutex<Vec<(StepKind, Instant)>> = Mutex::default();
    let started = Instant::now();
    let report = runtime.block_on(async {
        let config = Config::load(&home.join("config.toml")).unwrap();
        let _lock = RunLock::acquire(&home.join("state.db")).unwrap();
        let store = StateStore::open(&home.join("state.db")).unwrap();
        let mut connections = Connections::open(&config, &OsKeyring, policy).unwrap();
        let request = CycleRequest {
            trigger: RunTrigger::Cli,
            full: false,
            preview: false,
            confirmed_deletes: None,
            only: None,
        };
        let progress = |progress| {
            if let Progress::Step(step) = progress {
                step_starts.lock().unwrap().push((step, Instant::now()));
            }
        };
        run_cycle(
            &config,
            &mut connections,
            &store,
            request,
            &progress,
            &StopSignal::default(),
        )
        .await
        .unwrap()
    });
    let ended = Instant::now();
    assert_eq!(
        report.status,
        RunStatus::Success,
        "the cycle failed: {:?}",
        report.failure
    );
    let step_starts = step_starts.into_inner().unwrap();
    let steps = step_starts
        .iter()
        .enumerate()
        .map(|(index, (step, start))| {
            let end = step_starts.get(index + 1).map_or(ended, |(_, next)| *next);
            (*step, end - *start)
        })
        .collect();
    let timing = CycleTiming {
        total: ended - started,
        steps,
    };
    (report, timing)
}

/// One `dirsync sync` process, start to exit.
fn cycle_as_binary(home: &Path) -> Duration {
    let started = Instant::now();
    let output = Command::new(binary())
        .arg("sync")
        .env("DIRSYNC_HOME", home)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "dirsync sync failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    elapsed
}

/// The DirSync read alone: bind as the service account and read the changes since the stored
/// cookie (nothing in scope changed).
fn dirsync_read(runtime: &tokio::runtime::Runtime, home: &Path) -> Duration {
    let config = Config::load(&home.join("config.toml")).unwrap();
    let store = StateStore::open(&home.join("state.db")).unwrap();
    let cookie = DirSyncCookie::from_bytes(store.cursor(DIRSYNC_CURSOR).unwrap().unwrap());
    let mut connections = Connections::open(&config, &OsKeyring, FlowPolicy::default()).unwrap();
    let scope = config.scope();
    runtime.block_on(async {
        let started = Instant::now();
        connections
            .directory
            .read_changes(&scope, &cookie)
            .await
            .unwrap();
        started.elapsed()
    })
}

fn bench_incremental_cycles(
    lab: &Lab,
    runtime: &tokio::runtime::Runtime,
    account_dn: &str,
    ou: &BenchOu,
) {
    let installation = Installation::new(lab, account_dn, ou, WriteLimit::default());
    let home = installation.home();
    let (first, timing) = cycle_in_process(runtime, home, FlowPolicy::default());
    assert_eq!(first.mode, RunMode::Full);
    assert_eq!(
        first.export.adds, USERS,
        "the first sync creates every user"
    );
    println!(
        "first (full) sync of {USERS} users, for reference: {:.2} s ({})",
        timing.total.as_secs_f64(),
        steps_of(&timing)
    );

    println!(
        "incremental cycle, nothing changed, {USERS} users in scope, {NOTHING_CHANGED_ROUNDS} runs (target under 0.5 s):"
    );
    let library: Vec<CycleTiming> = (0..NOTHING_CHANGED_ROUNDS)
        .map(|_| {
            let (report, timing) = cycle_in_process(runtime, home, FlowPolicy::default());
            assert_eq!(report.mode, RunMode::Delta);
            assert!(report.plan.operations.is_empty(), "nothing was to change");
            timing
        })
        .collect();
    print_cycle_times("in-process (library)", &library, 0.5);
    let binary_times: Vec<Duration> = (0..NOTHING_CHANGED_ROUNDS)
        .map(|_| cycle_as_binary(home))
        .collect();
    print_times("end to end (dirsync sync)", &binary_times, 0.5);
    let reads: Vec<Duration> = (0..NOTHING_CHANGED_ROUNDS)
        .map(|_| dirsync_read(runtime, home))
        .collect();
    print_reference_times(
        "DirSync read alone (bind + search)",
        &reads,
        "no target; the DirSync read itself takes about 0.25 s",
    );

    println!(
        "incremental cycle, {CHANGED_USERS} users' title changed, {CHANGED_ROUNDS} runs each (target under 2 s):"
    );
    let mut library = Vec::new();
    let mut binary_times = Vec::new();
    for round in 0..CHANGED_ROUNDS * 2 {
        let title = format!("Bench title {round}");
        change_titles(ou, &title);
        let how = if round < CHANGED_ROUNDS {
            let (report, timing) = cycle_in_process(runtime, home, FlowPolicy::default());
            assert_eq!(report.export.updates, CHANGED_USERS, "{:?}", report.export);
            library.push(timing);
            "in-process"
        } else {
            binary_times.push(cycle_as_binary(home));
            "dirsync sync"
        };
        let arrived = cloud_users_with_title(&installation.tenant, ou, &title);
        println!(
            "  round {} ({how}): {arrived} of {CHANGED_USERS} cloud users have jobTitle '{title}'",
            round + 1
        );
        assert_eq!(arrived, CHANGED_USERS);
    }
    print_cycle_times("in-process (library)", &library, 2.0);
    print_times("end to end (dirsync sync)", &binary_times, 2.0);
}

fn bench_export_rate(lab: &Lab, runtime: &tokio::runtime::Runtime, account_dn: &str, ou: &BenchOu) {
    let installation = Installation::new(lab, account_dn, ou, EXPORT_LIMIT);
    let policy = FlowPolicy {
        write_limit: EXPORT_LIMIT.writes,
        write_window: EXPORT_LIMIT.window,
        ..FlowPolicy::default()
    };
    let before = installation.tenant.stats();
    let (report, timing) = cycle_in_process(runtime, installation.home(), policy);
    let after = installation.tenant.stats();
    assert_eq!(report.export.adds, USERS, "every user was created");

    let export_time = timing.step(StepKind::CloudExport).as_secs_f64();
    let writes = after.writes - before.writes;
    let requests = after.requests - before.requests;
    let throttled = after.throttled - before.throttled;
    // Under a sliding window no client can do better than this: write k·limit + 1 waits a whole
    // window after write (k − 1)·limit + 1, so the last of the writes goes
    // floor((writes − 1) / limit) windows after the first. The export's time against that is its
    // share of the limit's throughput.
    let windows = writes.saturating_sub(1) / u64::from(EXPORT_LIMIT.writes);
    let fastest = windows as f64 * EXPORT_LIMIT.window.as_secs_f64();
    let share = fastest / export_time * 100.0;
    println!(
        "export at a write limit of {} per {} s (Graph's: 3000 per 150 s), first sync of {USERS} users, client paced to the same budget:",
        EXPORT_LIMIT.writes,
        EXPORT_LIMIT.window.as_secs()
    );
    println!(
        "  {writes} writes in {export_time:.2} s of export ({:.1} writes/s); whole cycle {:.2} s ({})",
        writes as f64 / export_time,
        timing.total.as_secs_f64(),
        steps_of(&timing)
    );
    println!(
        "  the limit lets {writes} writes go in {fastest:.2} s at best (the last {windows} windows after the first): \
         {share:.1} % of the limit's throughput (target at least 95 %: {})",
        verdict(share >= 95.0)
    );
    let throttled_share = throttled as f64 / requests.max(1) as f64 * 100.0;
    println!(
        "  emulator: {requests} requests ($batch and each request in it, reads included), {writes} writes, {throttled} answered 429 = {throttled_share:.2} % (target at most 1 %: {})",
        verdict(throttled_share <= 1.0)
    );
    println!(
        "  dirsync's client: {} HTTP exchanges ($batch counts once), {} answers 429",
        report.export.requests, report.export.throttled
    );
}

/// Password sync through Microsoft Graph: every user of the OU changes password on the DC (Samba
/// encrypts each to the lab's key), then one `dirsync sync --passwords` sets them all in a tenant
/// with Graph's own write limit and no password hash endpoint.
fn bench_passwords_through_graph(lab: &Lab, account_dn: &str, ou: &BenchOu) {
    let limit = WriteLimit {
        writes: 3000,
        window: Duration::from_secs(150),
    };
    let installation = Installation::new_with(lab, account_dn, ou, limit, false);
    let config_file = installation.home().join("config.toml");
    let mut config = Config::load(&config_file).unwrap();
    config.options.password_hash_sync = true;
    config.options.password_sync_mode = PasswordSyncMode::Graph;
    config.directory.password_hash_socket = Some(lab.lab_dir.join("private/ldap_priv/ldapi"));
    config.directory.samba_config = Some(lab.smb_conf.clone());
    config.directory.password_gpg_home = Some(lab.gpg_home.clone());
    config.save(&config_file).unwrap();
    let client_id = installation.tenant.info.client_id.clone();
    let principal = installation
        .tenant
        .objects("servicePrincipals")
        .iter()
        .find(|principal| principal["appId"] == client_id.as_str())
        .and_then(|principal| principal["id"].as_str())
        .unwrap()
        .to_owned();
    installation
        .tenant
        .assign_role(&principal, "fe930be7-5e62-47db-91af-98c3a49a38b1")
        .unwrap();
    cycle_as_binary(installation.home());
    // The first password cycle: a full pass that finds nothing to send yet.
    passwords_as_binary(installation.home());

    let password = "Bench-Passw0rd-2026";
    let quoted: Vec<u8> = format!("\"{password}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    use base64::Engine as _;
    let value = base64::engine::general_purpose::STANDARD.encode(quoted);
    let ldif: String = (0..USERS)
        .map(|n| {
            format!(
                "dn: {}\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: {value}\n\n",
                ou.user_dn(n)
            )
        })
        .collect();
    let started = Instant::now();
    ldapmodify(lab, &ldif);
    println!(
        "passwords through Microsoft Graph: {USERS} password changes on the DC (Samba encrypts each) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let before = installation.tenant.stats();
    let (took, report) = passwords_as_binary(installation.home());
    let after = installation.tenant.stats();
    let sent = report["run"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["step"] == "cloud-export")
        .map_or(0, |step| step["updates"].as_u64().unwrap_or(0));
    assert_eq!(sent, USERS as u64, "{report}");
    let writes = after.writes - before.writes;
    let requests = after.requests - before.requests;
    let throttled = after.throttled - before.throttled;
    println!(
        "  one password cycle (dirsync sync --passwords): {:.2} s for {sent} passwords ({:.0} per s); {writes} writes, {requests} requests, {throttled} answered 429 = {:.2} % (Graph's limit: 3000 writes per 150 s)",
        took.as_secs_f64(),
        sent as f64 / took.as_secs_f64(),
        throttled as f64 / requests.max(1) as f64 * 100.0
    );
}

/// One `dirsync sync --passwords --json`: its time and its report.
fn passwords_as_binary(home: &Path) -> (Duration, serde_json::Value) {
    let started = Instant::now();
    let output = Command::new(binary())
        .args(["sync", "--passwords", "--json"])
        .env("DIRSYNC_HOME", home)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "dirsync sync --passwords failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (elapsed, serde_json::from_slice(&output.stdout).unwrap())
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// "directory-import 0.123 s, cloud-import …": where a cycle's time went.
fn steps_of(timing: &CycleTiming) -> String {
    let in_steps: Duration = timing.steps.iter().map(|(_, took)| *took).sum();
    let mut parts = vec![format!(
        "before the first step {:.3} s",
        (timing.total - in_steps).as_secs_f64()
    )];
    parts.extend(
        timing
            .steps
            .iter()
            .map(|(step, took)| format!("{step} {:.3} s", took.as_secs_f64())),
    );
    parts.join(", ")
}

/// Like `print_times`, then where the median run's time went.
fn print_cycle_times(label: &str, timings: &[CycleTiming], target_secs: f64) {
    let totals: Vec<Duration> = timings.iter().map(|timing| timing.total).collect();
    print_times(label, &totals, target_secs);
    let mut by_total: Vec<&CycleTiming> = timings.iter().collect();
    by_total.sort_by_key(|timing| timing.total);
    println!("    median run: {}", steps_of(by_total[by_total.len() / 2]));
}

fn print_times(label: &str, times: &[Duration], target_secs: f64) {
    let median = median(times).as_secs_f64();
    println!(
        "  {label:<34} {} (target under {target_secs} s: {})",
        summary(times),
        verdict(median < target_secs)
    );
}

/// Like `print_times`, for a figure that has no target of its own.
fn print_reference_times(label: &str, times: &[Duration], reference: &str) {
    println!("  {label:<34} {} ({reference})", summary(times));
}

/// "median 0.123 s, min 0.100 s; runs: …"
fn summary(times: &[Duration]) -> String {
    let min = times.iter().min().unwrap();
    let runs: Vec<String> = times
        .iter()
        .map(|time| format!("{:.3}", time.as_secs_f64()))
        .collect();
    format!(
        "median {:.3} s, min {:.3} s; runs: {}",
        median(times).as_secs_f64(),
        min.as_secs_f64(),
        runs.join(", ")
    )
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

/// Peak resident memory of this process (VmHWM), in MB.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kilobytes: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kilobytes / 1024.0
}
