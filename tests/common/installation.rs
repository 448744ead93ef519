//! One installation of dirsync against the lab, for the sync and password tests: the service
//! account (set up once per test binary, as setup makes it), a home with config.toml and its own
//! tenant emulator, and OUs of test users under OU=Staging.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Lab, Run, lab};
use dirsync::cloud::setup::client_secret_key;
use dirsync::config::{CloudConfig, Config, DirectoryConfig, ScopeConfig, SyncOptions};
use dirsync::directory::service_account::KnownAccount;
use dirsync::directory::setup::{DirectoryOptions, DirectorySite, set_up_directory};
use dirsync::directory::sid::Sid;
use dirsync::directory::{DirectoryConnection, DirectoryTarget, Dn, forest, permissions};
use dirsync::secret::Secret;
use dirsync::secret_store::{OsKeyring, SecretStore};
use dirsync::tls::TlsTrust;
use serde_json::Value;
use tenant_emulator::{EmulatorConfig, RunningEmulator};

pub const INITIAL_DOMAIN: &str = "contoso-lab.onmicrosoft.com";

/// The service account all tests of this binary sync as: its DN and its password.
pub struct ServiceAccount {
    pub dn: String,
    pub sid: Sid,
    pub password: Secret,
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn target(lab: &Lab) -> DirectoryTarget {
    DirectoryTarget::new(
        &lab.ldaps_url,
        TlsTrust::CaFile(lab.ca_file.clone()),
        Duration::from_secs(15),
    )
    .unwrap()
}

/// Sets up the service account once (as setup does), and lets it see deletions the way the
/// advice setup prints tells an administrator to.
pub fn service_account() -> &'static ServiceAccount {
    static ACCOUNT: OnceLock<ServiceAccount> = OnceLock::new();
    ACCOUNT.get_or_init(|| {
        let lab = lab();
        runtime().block_on(async {
            let admin = DirectoryConnection::connect_and_bind(
                &target(lab),
                &lab.admin_upn,
                &Secret::new(lab.admin_password.clone()),
            )
            .await
            .unwrap();
            let forest = forest::read_forest(&admin).await.unwrap();
            let domain = Dn::parse(&lab.base_dn).unwrap();
            let setup = set_up_directory(
                &admin,
                &target(lab),
                &DirectorySite {
                    domain: &domain,
                    root_domain_naming_context: &forest.root_dse.root_domain_naming_context,
                    schema_naming_context: &forest.root_dse.schema_naming_context,
                    computer: "sync-lab-tests",
                    known_account: KnownAccount::default(),
                },
                &DirectoryOptions::default(),
                &OsKeyring,
            )
            .await
            .unwrap();
            follow_deleted_objects_advice(lab, &setup.account.sid, &setup.account.sam_account_name);
            let password = OsKeyring.load(&setup.keyring_key).unwrap().unwrap();
            ServiceAccount {
                dn: setup.account.dn.to_string(),
                sid: setup.account.sid.clone(),
                password,
            }
        })
    })
}

/// Lets `account` see deletions on the lab DC the way the advice setup prints tells an
/// administrator to (ldbmodify on CN=Deleted Objects, as root on the DC host).
pub fn follow_deleted_objects_advice(lab: &Lab, account: &Sid, account_name: &str) {
    let domain = Dn::parse(&lab.base_dn).unwrap();
    let advice = permissions::deleted_objects_advice(&domain, account, account_name);
    let ldif: String = advice
        .lines()
        .skip_while(|line| !line.starts_with("dn: "))
        .take_while(|line| *line != "EOF")
        .map(|line| format!("{line}\n"))
        .collect();
    run_with_input(
        Command::new("ldbmodify")
            .arg("-H")
            .arg(lab.lab_dir.join("private/sam.ldb"))
            .args(["--controls=show_deleted:1", "--controls=sd_flags:1:4"]),
        &ldif,
    );
}

pub fn run_with_input(command: &mut Command, input: &str) -> String {
    use std::io::Write as _;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Written from another thread: a large input makes a large output, and a child blocked on
    // a full stdout pipe stops reading its stdin.
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `ldapmodify` as the lab's administrator (adds, modifies, deletes and moves from LDIF).
pub fn ldapmodify(lab: &Lab, ldif: &str) {
    run_with_input(
        Command::new("ldapmodify")
            .env("LDAPTLS_CACERT", &lab.ca_file)
            .args(["-x", "-H", &lab.ldaps_url])
            .args(["-D", &lab.admin_upn, "-w", &lab.admin_password]),
        ldif,
    );
}

pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}{}", nanos % 1_000_000_000)
}

/// One installation of dirsync: a home with config.toml, a tenant, and the client secret in the
/// keyring.
pub struct Installation {
    pub home: tempfile::TempDir,
    pub tenant: RunningEmulator,
    pub client_secret: String,
}

impl Installation {
    pub fn new(included: &[&str], excluded: &[&str], options: SyncOptions) -> Installation {
        Installation::with_tenant(included, excluded, options, EmulatorConfig::default())
    }

    pub fn with_tenant(
        included: &[&str],
        excluded: &[&str],
        options: SyncOptions,
        tenant: EmulatorConfig,
    ) -> Installation {
        let lab = lab();
        let account = service_account();
        let tenant = RunningEmulator::start(EmulatorConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            initial_domain: INITIAL_DOMAIN.to_owned(),
            verified_domains: vec!["contoso.test".to_owned(), "corp.dirsync.test".to_owned()],
            ..tenant
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
            store: test_store(),
            cloud: CloudConfig {
                authority: info.authority.clone(),
                graph: info.graph.clone(),
                tenant_id: info.tenant_id.clone(),
                client_id: info.client_id.clone(),
                // As setup keeps it for dirsync's own app.
                service_principal_id: tenant
                    .objects("servicePrincipals")
                    .iter()
                    .find(|principal| principal["appId"] == info.client_id.as_str())
                    .and_then(|principal| principal["id"].as_str())
                    .map(str::to_owned),
                credential_expires_at: None,
                certificate_thumbprint: None,
                directory_extensions: Vec::new(),
            },
            directory: DirectoryConfig {
                server: lab.ldaps_url.clone(),
                ca_file: Some(lab.ca_file.clone()),
                insecure: false,
                naming_context: lab.base_dn.clone(),
                service_account_dn: account.dn.clone(),
                service_account_guid: None,
                timeout_secs: 15,
                password_hash_socket: None,
                password_gpg_home: None,
                samba_config: None,
            },
            options,
            scope: ScopeConfig {
                included: included.iter().map(|dn| (*dn).to_owned()).collect(),
                excluded: excluded.iter().map(|dn| (*dn).to_owned()).collect(),
            },
            monitoring: Default::default(),
            rules: Default::default(),
            forests: Vec::new(),
        };
        let home = tempfile::tempdir().unwrap();
        config.save(&home.path().join("config.toml")).unwrap();
        Installation {
            home,
            tenant,
            client_secret: info.client_secret,
        }
    }

    /// The installation's state store, SQLite or PostgreSQL as its configuration says.
    pub fn store(&self) -> dirsync::store::StateStore {
        dirsync::store::StateStore::open_home(&dirsync::home::Home::in_dir(self.home.path()))
            .unwrap()
    }

    pub fn config_path(&self) -> std::path::PathBuf {
        self.home.path().join("config.toml")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dirsync"));
        command
            .args(args)
            .env("DIRSYNC_HOME", self.home.path())
            .stdin(Stdio::null());
        command
    }

    pub fn dirsync(&self, args: &[&str]) -> Run {
        let output = self.command(args).output().unwrap();
        let run = Run {
            status: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        self.assert_no_secret(&run.all_output());
        run
    }

    /// `dirsync sync --json ARGS`: the exit status and the report.
    pub fn sync(&self, args: &[&str]) -> (i32, Value) {
        let mut all = vec!["sync", "--json"];
        all.extend_from_slice(args);
        let run = self.dirsync(&all);
        let report: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|error| {
            panic!(
                "sync printed no JSON ({error}); status {}\nstdout: {}\nstderr: {}",
                run.status, run.stdout, run.stderr
            )
        });
        (run.status, report)
    }

    pub fn assert_no_secret(&self, text: &str) {
        let account = service_account();
        assert!(
            !text.contains(&self.client_secret),
            "the client secret leaked"
        );
        assert!(
            !text.contains(account.password.expose()),
            "the service account's password leaked"
        );
        assert!(
            !text.contains(&lab().admin_password),
            "the admin password leaked"
        );
    }

    /// Users in the tenant, by onPremisesImmutableId (those without one under their id).
    pub fn cloud_users(&self) -> Vec<Value> {
        self.tenant.objects("users")
    }

    pub fn cloud_groups(&self) -> Vec<Value> {
        self.tenant.objects("groups")
    }

    /// The members' UPNs or group names of a cloud group.
    pub fn member_names(&self, group_id: &str) -> BTreeSet<String> {
        let ids = runtime().block_on(self.graph().members(group_id)).unwrap();
        let users = self.cloud_users();
        ids.iter()
            .filter_map(|id| {
                users
                    .iter()
                    .find(|user| user["id"] == *id)
                    .and_then(|user| user["userPrincipalName"].as_str())
                    .map(str::to_owned)
            })
            .collect()
    }

    /// A Graph client signed in as the tenant's sync app (the test's own reads and writes).
    pub fn graph(&self) -> dirsync::cloud::GraphClient {
        let info = &self.tenant.info;
        dirsync::cloud::GraphClient::new(
            &dirsync::cloud::CloudEndpoints::parse(&info.authority, &info.graph).unwrap(),
            &info.tenant_id,
            dirsync::cloud::auth::Credentials::ClientSecret {
                client_id: info.client_id.clone(),
                secret: Secret::new(info.client_secret.clone()),
            },
            &TlsTrust::SystemRoots,
            dirsync::cloud::FlowPolicy::default(),
        )
        .unwrap()
    }

    pub fn runs_show(&self, run: i64, kind: Option<&str>) -> Value {
        let id = run.to_string();
        let mut args = vec!["runs", "show", &id, "--json"];
        if let Some(kind) = kind {
            args.extend(["--kind", kind]);
        }
        let run = self.dirsync(&args);
        assert_eq!(run.status, 0, "{}", run.stderr);
        serde_json::from_str(&run.stdout).unwrap()
    }
}

pub fn user_with_upn<'a>(users: &'a [Value], upn: &str) -> Option<&'a Value> {
    users
        .iter()
        .find(|user| user["userPrincipalName"].as_str() == Some(upn))
}

pub fn run_id(report: &Value) -> i64 {
    report["run"]["id"].as_i64().unwrap()
}

pub fn step<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["run"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["step"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {report}"))
}

pub fn errors_of<'a>(report: &'a Value, dn_part: &str) -> Vec<&'a Value> {
    report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|error| error["dn"].as_str().unwrap_or_default().contains(dn_part))
        .collect()
}

/// A fresh OU under OU=Staging with users (`uid`s) and a group holding the first two.
pub struct TestOu {
    pub dn: String,
    pub tag: String,
}

impl TestOu {
    pub fn create(prefix: &str, users: &[&str]) -> TestOu {
        let lab = lab();
        let tag = unique(prefix);
        let dn = format!("OU={tag},OU=Staging,{}", lab.base_dn);
        let mut ldif = format!("dn: {dn}\nchangetype: add\nobjectClass: organizationalUnit\n\n");
        for user in users {
            ldif.push_str(&user_ldif(&dn, &tag, user));
        }
        if users.len() >= 2 {
            ldif.push_str(&format!(
                "dn: CN=grp-{tag},{dn}\nchangetype: add\nobjectClass: group\nsAMAccountName: grp-{tag}\ngroupType: -2147483646\nmember: CN={},{dn}\nmember: CN={},{dn}\n\n",
                users[0], users[1]
            ));
        }
        ldapmodify(lab, &ldif);
        TestOu { dn, tag }
    }

    pub fn upn(&self, user: &str) -> String {
        format!("{user}.{}@contoso.test", self.tag)
    }

    pub fn user_dn(&self, user: &str) -> String {
        format!("CN={user},{}", self.dn)
    }
}

pub fn user_ldif(ou: &str, tag: &str, user: &str) -> String {
    format!(
        "dn: CN={user},{ou}\nchangetype: add\nobjectClass: user\nsAMAccountName: {sam}\nuserPrincipalName: {user}.{tag}@contoso.test\ndisplayName: {user} {tag}\nmail: {user}.{tag}@contoso.test\nproxyAddresses: SMTP:{user}.{tag}@contoso.test\ntitle: Engineer\nuserAccountControl: 512\n\n",
        sam = format!("{user}{tag}").chars().take(20).collect::<String>(),
    )
}

pub fn corp() -> String {
    format!("OU=Corp,{}", lab().base_dn)
}

/// The users in OU=Corp's subtree, by UPN (what a first sync of that scope reads).
pub fn corp_user_upns(lab: &Lab) -> BTreeSet<String> {
    let mut command = super::ldapsearch(lab);
    command.args([
        "-b",
        &corp(),
        "(&(objectClass=user)(!(objectClass=computer)))",
        "userPrincipalName",
    ]);
    super::stdout_of(command)
        .lines()
        .filter_map(|line| line.strip_prefix("userPrincipalName: "))
        .map(str::to_owned)
        .collect()
}

/// The `[store]` the tests' installations use: SQLite, or with `DIRSYNC_TEST_STORE=postgresql`
/// the lab's PostgreSQL server in a schema of the installation's own, its password in the
/// keyring where dirsync looks for it.
pub fn test_store() -> dirsync::config::StoreConfig {
    match dirsync::store::test_postgres() {
        Some((store, password)) => {
            OsKeyring
                .save(
                    dirsync::store::POSTGRES_PASSWORD_KEY,
                    &Secret::new(password),
                )
                .unwrap();
            store
        }
        None => Default::default(),
    }
}
