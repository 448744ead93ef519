//! `config.toml`: what setup decided and every run reads. It never holds a secret: the sync app's
//! client secret and the service account's password live in the OS keyring under the keys
//! [`Config::app_credential_key`] and [`Config::service_account_key`] name.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cloud::CloudEndpoints;
use crate::directory::password_hashes::SAMBA_PRIVILEGED_SOCKET;
use crate::directory::scope::SyncScope;
use crate::directory::service_account::KnownAccount;
use crate::directory::{DirectoryError, DirectoryTarget, Dn};
use crate::guid::Guid;
use crate::rules::{RulesConfig, SyncRules};
use crate::tls::TlsTrust;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub cloud: CloudConfig,
    pub directory: DirectoryConfig,
    #[serde(default)]
    pub options: SyncOptions,
    pub scope: ScopeConfig,
    #[serde(default, skip_serializing_if = "MonitoringConfig::is_default")]
    pub monitoring: MonitoringConfig,
    /// Sync rules (README, "Sync rules"): scoping beyond the OUs and attribute mappings; empty:
    /// the OU scope and the default flow.
    #[serde(default, skip_serializing_if = "rules_are_default")]
    pub rules: RulesConfig,
    /// Further forests synchronized into the same tenant (README, "Several forests"), after the
    /// first one that `directory`, `scope` and `rules` describe.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forests: Vec<ForestConfig>,
    /// Where the run history and sync state live (README, "Where the state lives"): SQLite in
    /// the home directory unless this names a PostgreSQL database.
    #[serde(default, skip_serializing_if = "StoreConfig::is_default")]
    pub store: StoreConfig,
}

pub use crate::store::settings::{StoreConfig, StoreEngine, StoreTls};

/// A further forest: its domain controller and service account, its OUs and its scoping rules.
/// The attribute mappings are the first forest's (`[rules]`), shared by every forest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForestConfig {
    pub directory: DirectoryConfig,
    pub scope: ScopeConfig,
    #[serde(default, skip_serializing_if = "rules_are_default")]
    pub rules: RulesConfig,
}

/// One forest as a cycle reads it: the first one (`[directory]`, `[scope]`, `[rules]`) or a
/// further one (`[[forests]]`).
#[derive(Debug, Clone, Copy)]
pub struct Forest<'a> {
    /// 0 for the first forest, then in `[[forests]]` order: the precedence of their values
    /// (README, "Several forests").
    pub position: usize,
    pub directory: &'a DirectoryConfig,
    pub scope_config: &'a ScopeConfig,
    pub rules_config: &'a RulesConfig,
    config: &'a Config,
}

impl Forest<'_> {
    /// The forest's name as administrators say it: its domain's DNS name (`corp.example.com`).
    pub fn name(&self) -> String {
        self.naming_context().dns_name()
    }

    /// Where this forest keeps a sync cursor named `cursor`: the first forest keeps the names
    /// of a single-forest installation (an upgrade reads nothing again), the others add their
    /// name.
    pub fn cursor(&self, cursor: &str) -> String {
        if self.position == 0 {
            cursor.to_owned()
        } else {
            format!("{cursor}@{}", self.name())
        }
    }

    pub fn naming_context(&self) -> Dn {
        Dn::parse(&self.directory.naming_context).expect("validated on load")
    }

    pub fn directory_trust(&self) -> TlsTrust {
        match (&self.directory.ca_file, self.directory.insecure) {
            (_, true) => TlsTrust::Insecure,
            (Some(path), false) => TlsTrust::CaFile(path.clone()),
            (None, false) => TlsTrust::SystemRoots,
        }
    }

    pub fn directory_target(&self) -> Result<DirectoryTarget, DirectoryError> {
        DirectoryTarget::new(
            &self.directory.server,
            self.directory_trust(),
            Duration::from_secs(self.directory.timeout_secs),
        )
    }

    /// The forest's scoping rules with the shared mappings (a further forest's `rules` hold
    /// scoping only; validated by [`Config::validate`]).
    pub fn sync_rules(&self) -> SyncRules {
        let mut rules = crate::rules::compile(self.rules_config).unwrap_or_default();
        if self.position > 0 {
            let shared = self.config.first_forest().sync_rules();
            rules.users.mappings = shared.users.mappings;
            rules.groups.mappings = shared.groups.mappings;
        }
        rules.extension_app_id = self.config.cloud.client_id.replace('-', "");
        rules
    }

    /// The scope as DNs (validated by [`Config::validate`]; invalid entries are skipped),
    /// reading what the sync rules name too.
    pub fn scope(&self) -> SyncScope {
        let parse = |dns: &[String]| dns.iter().filter_map(|dn| Dn::parse(dn).ok()).collect();
        SyncScope::new(
            parse(&self.scope_config.included),
            parse(&self.scope_config.excluded),
        )
        .reading(&self.sync_rules().attributes())
    }

    /// The service account this forest's configuration names, for setup to find it again.
    pub fn known_service_account(&self) -> KnownAccount {
        KnownAccount {
            dn: Dn::parse(&self.directory.service_account_dn).ok(),
            guid: self
                .directory
                .service_account_guid
                .as_deref()
                .and_then(Guid::parse),
        }
    }

    pub fn service_account_key(&self) -> String {
        crate::secret_store::service_account_key(&self.directory.service_account_dn)
    }
}

/// [`Dn::dns_name`] of a DN kept as text (the text itself when it is no DN).
pub fn dns_name(dn: &str) -> String {
    Dn::parse(dn).map_or_else(|_| dn.to_owned(), |dn| dn.dns_name())
}

/// Checks one forest's directory, scope and rules; the error names the field under `prefix`
/// (`forests[0].` for the first of `[[forests]]`).
fn validate_forest(forest: &Forest<'_>, prefix: &str) -> Result<(), (String, String)> {
    let field = |name: &str| format!("{prefix}{name}");
    forest
        .directory_target()
        .map_err(|error| (field("directory.server"), error.to_string()))?;
    Dn::parse(&forest.directory.naming_context)
        .map_err(|error| (field("directory.naming_context"), error.to_string()))?;
    Dn::parse(&forest.directory.service_account_dn)
        .map_err(|error| (field("directory.service_account_dn"), error.to_string()))?;
    if let Some(guid) = &forest.directory.service_account_guid
        && Guid::parse(guid).is_none()
    {
        return Err((
            field("directory.service_account_guid"),
            format!("'{guid}' is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)"),
        ));
    }
    if forest.scope_config.included.is_empty() {
        return Err((
            field("scope.included"),
            "no OU is included, so nothing would sync; list at least one OU's DN".to_owned(),
        ));
    }
    for (name, dns) in [
        ("scope.included", &forest.scope_config.included),
        ("scope.excluded", &forest.scope_config.excluded),
    ] {
        for dn in dns {
            Dn::parse(dn).map_err(|error| (field(name), error.to_string()))?;
        }
    }
    let rules = crate::rules::compile(forest.rules_config)
        .map_err(|error| (field(&error.field), error.message))?;
    if forest.position > 0 {
        for (kind, object_rules) in [("users", &rules.users), ("groups", &rules.groups)] {
            if !object_rules.mappings.is_empty() {
                return Err((
                    field(&format!("rules.{kind}.mappings")),
                    "the attribute mappings are shared by every forest: write them in [rules] (the first forest's); a further forest's rules hold its scoping only".to_owned(),
                ));
            }
        }
    }
    Ok(())
}

fn rules_are_default(rules: &RulesConfig) -> bool {
    *rules == RulesConfig::default()
}

/// What `dirsync service` serves for monitoring (README, "Monitoring").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitoringConfig {
    /// `address:port` where the service serves `/metrics` and `/healthz` (say `127.0.0.1:9464`);
    /// absent: not served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// `/healthz` answers 503 once no sync run went through for this many sync intervals.
    pub health_intervals: u32,
    /// Where alerts are sent, as a JSON document in a POST (README, "Alerts"): `https://…`
    /// (`http://` on loopback only); absent: no alerts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// The CA file the webhook's certificate is checked against (else the system's roots).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_ca_file: Option<PathBuf>,
    /// Alert when no sync run went through for this many minutes; absent:
    /// `health_intervals` × `options.interval_minutes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_success_minutes: Option<u64>,
    /// The SMTP server alerts are mailed through, `host` or `host:port` (port 587 when absent);
    /// STARTTLS is required (README, "Alerts"); absent: no mail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_smtp: Option<String>,
    /// The mail's sender, `dirsync@example.com`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_from: Option<String>,
    /// Who gets the mail.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub email_to: Vec<String>,
    /// The CA file the SMTP server's certificate is checked against (else the system's roots).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_ca_file: Option<PathBuf>,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        MonitoringConfig {
            address: None,
            health_intervals: 3,
            webhook_url: None,
            webhook_ca_file: None,
            no_success_minutes: None,
            email_smtp: None,
            email_from: None,
            email_to: Vec::new(),
            email_ca_file: None,
        }
    }
}

impl MonitoringConfig {
    fn is_default(&self) -> bool {
        *self == MonitoringConfig::default()
    }

    /// The SMTP server as host and port, when alerts are mailed.
    pub fn smtp_server(&self) -> Option<Result<(String, u16), String>> {
        let server = self.email_smtp.as_deref()?.trim();
        Some(match server.rsplit_once(':') {
            _ if server.is_empty() => Err("is empty: give host or host:port".to_owned()),
            None => Ok((server.to_owned(), 587)),
            Some((host, port)) => match port.parse::<u16>() {
                Ok(port) if port > 0 && !host.is_empty() => Ok((host.to_owned(), port)),
                _ => Err(format!(
                    "'{server}' is not host or host:port (say smtp.example.com:587)"
                )),
            },
        })
    }

    /// The alert destinations (README, "Alerts"): the webhook's URL, and mail's server, sender
    /// and recipients together; the field that is missing or wrong.
    pub fn check_alerts(&self) -> Result<(), (&'static str, String)> {
        if let Some(url) = &self.webhook_url {
            let parsed = url::Url::parse(url).map_err(|error| {
                (
                    "monitoring.webhook_url",
                    format!("'{url}' is not a URL: {error}"),
                )
            })?;
            let loopback = matches!(
                parsed.host(),
                Some(url::Host::Ipv4(ip)) if ip.is_loopback()
            ) || matches!(parsed.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
                || parsed.host_str() == Some("localhost");
            if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
                return Err((
                    "monitoring.webhook_url",
                    format!("'{url}' must be https:// (http:// only on this computer's loopback)"),
                ));
            }
        }
        self.check_email()
    }

    /// Mail needs a server, a sender and someone to send to: the field that is missing or wrong.
    fn check_email(&self) -> Result<(), (&'static str, String)> {
        let wanted =
            self.email_smtp.is_some() || self.email_from.is_some() || !self.email_to.is_empty();
        if !wanted {
            return Ok(());
        }
        match self.smtp_server() {
            None => {
                return Err((
                    "monitoring.email_smtp",
                    "is missing: alert mail needs the SMTP server (host:port)".to_owned(),
                ));
            }
            Some(Err(message)) => return Err(("monitoring.email_smtp", message)),
            Some(Ok(_)) => {}
        }
        let address = |text: &str| {
            let text = text.trim();
            let well_formed = text.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && (domain.contains('.') || domain == "localhost")
            });
            well_formed && !text.contains(char::is_whitespace)
        };
        match self.email_from.as_deref() {
            None => {
                return Err((
                    "monitoring.email_from",
                    "is missing: alert mail needs a sender address".to_owned(),
                ));
            }
            Some(from) if !address(from) => {
                return Err((
                    "monitoring.email_from",
                    format!("'{from}' is not a mail address (say dirsync@example.com)"),
                ));
            }
            Some(_) => {}
        }
        if self.email_to.is_empty() {
            return Err((
                "monitoring.email_to",
                "is empty: name who gets the alert mail".to_owned(),
            ));
        }
        if let Some(wrong) = self.email_to.iter().find(|to| !address(to)) {
            return Err((
                "monitoring.email_to",
                format!("'{wrong}' is not a mail address (say admins@example.com)"),
            ));
        }
        Ok(())
    }

    /// The address to serve on, when one is set.
    pub fn socket_address(&self) -> Option<Result<std::net::SocketAddr, String>> {
        let address = self.address.as_deref()?;
        Some(address.parse().map_err(|_| {
            format!("'{address}' is not an IP address and port (127.0.0.1:9464, or [::1]:9464)")
        }))
    }
}

/// The tenant and the sync app dirsync signs in as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudConfig {
    pub authority: String,
    pub graph: String,
    /// The tenant's id (a GUID).
    pub tenant_id: String,
    /// The sync app's application (client) id.
    pub client_id: String,
    /// The sync app's service principal in the tenant (dirsync's own app, registered by setup):
    /// setup reuses only this app, never one that merely has the same name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_principal_id: Option<String>,
    /// When the sync app's credential expires (RFC 3339), as setup made it; unknown for an
    /// existing app the answers named. Runs warn from 30 days before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_expires_at: Option<String>,
    /// dirsync's own app signs in with a certificate (`x5t#S256`, the base64url SHA-256 of the
    /// certificate registered on the app); its private key is kept where secrets are kept.
    /// Without it (an existing app the answers named), with a client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_thumbprint: Option<String>,
    /// The directory extensions setup registered on the sync app for the sync rules, by short
    /// name (Graph's property is `extension_<appId without hyphens>_<name>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub directory_extensions: Vec<String>,
}

/// The domain controller and the service account dirsync reads it as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// `ldaps://host[:636]` or `ldap://host[:389]` (StartTLS).
    pub server: String,
    /// PEM file of the CA that issued the domain controller's certificate (default: system roots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification. Only ever set by an explicit choice; every run warns.
    #[serde(default)]
    pub insecure: bool,
    /// The domain's naming context, where DirSync reads changes.
    pub naming_context: String,
    /// The `MSOL_…` account setup made.
    pub service_account_dn: String,
    /// Its objectGUID: setup reuses only this account (it survives renames and moves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_guid: Option<String>,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Password hash sync reads NT hashes through this Samba DC's privileged LDAP socket
    /// (default: Samba's own, [`SAMBA_PRIVILEGED_SOCKET`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash_socket: Option<PathBuf>,
    /// Password sync through Microsoft Graph decrypts Samba's stored passwords with the key in
    /// this GnuPG home (default: `$GNUPGHOME`, else `~/.gnupg` of the user dirsync runs as).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_gpg_home: Option<PathBuf>,
    /// The Samba DC's smb.conf, where setup checks `password hash gpg key ids` (default
    /// [`SAMBA_CONFIG`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samba_config: Option<PathBuf>,
}

/// Where password sync finds what it reads on the DC host (unset: the defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PasswordPaths {
    pub socket: Option<PathBuf>,
    pub samba_config: Option<PathBuf>,
    pub gpg_home: Option<PathBuf>,
}

impl DirectoryConfig {
    pub fn password_paths(&self) -> PasswordPaths {
        PasswordPaths {
            socket: self.password_hash_socket.clone(),
            samba_config: self.samba_config.clone(),
            gpg_home: self.password_gpg_home.clone(),
        }
    }
}

/// The choices that shape a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncOptions {
    pub hybrid_write_back: bool,
    /// Password sync on: users sign in to the cloud with their AD password.
    pub password_hash_sync: bool,
    /// How passwords reach the cloud (README, "Password hash sync" and "Password sync through
    /// Microsoft Graph").
    pub password_sync_mode: PasswordSyncMode,
    /// Through Microsoft Graph: set `DisableStrongPassword` on synced users, so that the cloud
    /// accepts passwords its complexity rule would refuse (AD's own policy still applies).
    pub disable_strong_password: bool,
    /// Import and synchronize, never export.
    pub staging_mode: bool,
    /// More deletes than this in one run: the run makes none of them.
    pub deletion_threshold: usize,
    /// `dirsync service` starts a cycle this often.
    pub interval_minutes: u64,
    /// Soft match on userPrincipalName as well as on the primary SMTP address.
    pub soft_match_upn: bool,
    /// Run history older than this is removed.
    pub retention_days: u32,
    /// With password hash sync on, `dirsync service` starts a password cycle this often.
    pub password_interval_secs: u64,
    /// What a run does with properties changed in the cloud behind dirsync's back (README,
    /// "Drift"): restore AD's values, or only report them.
    pub drift: DriftAction,
    /// A run that would remove more than this share (percent) of the objects dirsync manages
    /// makes none of its removals; 0: only `deletion_threshold` counts.
    pub deletion_threshold_percent: u32,
    /// Users leaving the scope are disabled in the cloud (sign-in blocked, sessions revoked)
    /// and deleted `delete_after_days` later, unless they come back (README, "Deletes you can
    /// take back").
    pub disable_before_delete: bool,
    pub delete_after_days: u32,
    /// The process holding the schedule counts changes in AD this often (besides the DC's change
    /// notifications) and runs a delta cycle a moment after one (README, "Seconds, not
    /// half-hours"); 0: only on the interval.
    pub watch_secs: u64,
    /// With several forests: how the same person in two of them is found (README, "Several
    /// forests").
    pub forest_join: ForestJoin,
    /// What anchors an AD object to its cloud object (README, "The source anchor"). Absent: the
    /// objectGUID, as every installation did before `mS-DS-ConsistencyGuid` (setup writes
    /// `consistency-guid` for a new installation and never changes an existing one's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_anchor: Option<SourceAnchor>,
}

impl SyncOptions {
    /// Whether objects are anchored by `mS-DS-ConsistencyGuid` (README, "The source anchor").
    pub fn anchors_by_consistency_guid(&self) -> bool {
        self.source_anchor == Some(SourceAnchor::ConsistencyGuid)
    }
}

/// The attribute whose value is an AD object's anchor (and, in base64, its cloud object's
/// `onPremisesImmutableId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceAnchor {
    /// objectGUID: never changes, but a user moved to another forest gets a new one.
    ObjectGuid,
    /// `mS-DS-ConsistencyGuid` when the object has one, else objectGUID, which dirsync writes
    /// into `mS-DS-ConsistencyGuid` once the object is in the cloud: a migration tool that copies
    /// it keeps the user's cloud object across forests.
    ConsistencyGuid,
}

/// The attribute that says two forests' users are one person, who becomes one cloud user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForestJoin {
    /// The same `mail` (compared without case).
    #[default]
    Mail,
    /// The same `userPrincipalName`.
    UserPrincipalName,
    /// The same `employeeID`.
    EmployeeId,
    /// Never: every forest's users are different people.
    None,
}

impl ForestJoin {
    /// The AD attribute compared, by its canonical name.
    pub fn attribute(self) -> Option<&'static str> {
        match self {
            ForestJoin::Mail => Some("mail"),
            ForestJoin::UserPrincipalName => Some("userPrincipalName"),
            ForestJoin::EmployeeId => Some("employeeID"),
            ForestJoin::None => None,
        }
    }
}

/// How password sync delivers passwords.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PasswordSyncMode {
    /// The NT hash's documented transform, to Microsoft's password hash sync service (the lab's
    /// emulator stands in for it; public Graph has none).
    #[default]
    Hash,
    /// The cleartext Samba keeps GPG-encrypted, set as the user's `passwordProfile` through
    /// public Microsoft Graph.
    Graph,
}

impl PasswordSyncMode {
    pub fn label(self) -> &'static str {
        match self {
            PasswordSyncMode::Hash => "password hash (Microsoft's sync service)",
            PasswordSyncMode::Graph => "through Microsoft Graph",
        }
    }
}

/// What a run does with drift.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriftAction {
    /// Write AD's values back over the cloud's (AD is the source of authority).
    #[default]
    Restore,
    /// List the drift in the run's warnings; change nothing.
    Report,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            hybrid_write_back: false,
            password_hash_sync: false,
            password_sync_mode: PasswordSyncMode::Hash,
            disable_strong_password: false,
            staging_mode: false,
            deletion_threshold: 500,
            interval_minutes: 30,
            soft_match_upn: false,
            retention_days: 30,
            password_interval_secs: 120,
            drift: DriftAction::Restore,
            deletion_threshold_percent: 0,
            disable_before_delete: false,
            delete_after_days: 7,
            watch_secs: 3,
            forest_join: ForestJoin::Mail,
            source_anchor: None,
        }
    }
}

/// Included OUs (each with its subtree) minus excluded OUs, as DNs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeConfig {
    pub included: Vec<String>,
    #[serde(default)]
    pub excluded: Vec<String>,
}

fn default_timeout_secs() -> u64 {
    15
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "dirsync is not set up yet: {path} does not exist; run `dirsync setup --answers FILE` or open the window"
    )]
    Missing { path: PathBuf },
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path}, line {line}: {message}")]
    Malformed {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: {field}: {message}")]
    Invalid {
        path: PathBuf,
        field: String,
        message: String,
    },
    #[error("cannot write {path}: {reason}")]
    Unwritable { path: PathBuf, reason: String },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::Missing {
                    path: path.to_owned(),
                });
            }
            Err(error) => {
                return Err(ConfigError::Unreadable {
                    path: path.to_owned(),
                    reason: error.to_string(),
                });
            }
        };
        let config: Config = parse_toml(path, &text)?;
        config.validate(path)?;
        Ok(config)
    }

    /// Writes the file whole or not at all (a temporary file renamed over the old one).
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let unwritable = |error: &dyn std::fmt::Display| ConfigError::Unwritable {
            path: path.to_owned(),
            reason: error.to_string(),
        };
        let text = toml::to_string_pretty(self).map_err(|error| unwritable(&error))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|error| unwritable(&error))?;
        }
        let temporary = path.with_extension("toml.new");
        let header = "# dirsync configuration, written by setup. Secrets are in the OS keyring, never here.\n";
        write_owner_only(&temporary, format!("{header}{text}").as_bytes())
            .map_err(|error| unwritable(&error))?;
        std::fs::rename(&temporary, path).map_err(|error| unwritable(&error))
    }

    /// Checks what TOML's types cannot: URLs, DNs, numbers in range.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: String| ConfigError::Invalid {
            path: path.to_owned(),
            field: field.to_owned(),
            message,
        };
        self.endpoints()
            .map_err(|error| invalid("cloud", error.to_string()))?;
        if let Some(expires) = &self.cloud.credential_expires_at
            && crate::credential_expiry::parse_rfc3339(expires).is_none()
        {
            return Err(invalid(
                "cloud.credential_expires_at",
                format!("'{expires}' is not an RFC 3339 time (2028-12-02T15:31:00Z)"),
            ));
        }
        let mut seen = std::collections::HashMap::new();
        for forest in self.forests() {
            let prefix = match forest.position {
                0 => String::new(),
                position => format!("forests[{}].", position - 1),
            };
            validate_forest(&forest, &prefix)
                .map_err(|(field, message)| invalid(&field, message))?;
            let where_ = if prefix.is_empty() {
                "[directory]".to_owned()
            } else {
                prefix.trim_end_matches('.').to_owned()
            };
            if let Some(earlier) = seen.insert(forest.name(), where_) {
                return Err(invalid(
                    &format!("{prefix}directory.naming_context"),
                    format!(
                        "{} is already synchronized ({earlier}); list each forest once",
                        forest.name()
                    ),
                ));
            }
        }
        if let Some(Err(message)) = self.monitoring.socket_address() {
            return Err(invalid("monitoring.address", message));
        }
        if let Err((field, message)) = self.monitoring.check_alerts() {
            return Err(invalid(field, message));
        }
        if self.monitoring.health_intervals == 0 {
            return Err(invalid(
                "monitoring.health_intervals",
                "must be at least 1".to_owned(),
            ));
        }
        if self.options.interval_minutes == 0 {
            return Err(invalid(
                "options.interval_minutes",
                "must be at least 1".to_owned(),
            ));
        }
        if self.options.password_interval_secs == 0 {
            return Err(invalid(
                "options.password_interval_secs",
                "must be at least 1".to_owned(),
            ));
        }
        if self.options.retention_days == 0 {
            return Err(invalid(
                "options.retention_days",
                "must be at least 1".to_owned(),
            ));
        }
        if self.options.delete_after_days == 0 {
            return Err(invalid(
                "options.delete_after_days",
                "must be at least 1 (to delete at once, set disable_before_delete = false)"
                    .to_owned(),
            ));
        }
        if self.options.deletion_threshold_percent > 100 {
            return Err(invalid(
                "options.deletion_threshold_percent",
                "is a percentage: 1 to 100, or 0 for no percentage limit".to_owned(),
            ));
        }
        Ok(())
    }

    pub fn endpoints(&self) -> Result<CloudEndpoints, crate::cloud::EndpointError> {
        CloudEndpoints::parse(&self.cloud.authority, &self.cloud.graph)
    }

    pub fn directory_trust(&self) -> TlsTrust {
        self.first_forest().directory_trust()
    }

    /// Where password hashes are read.
    pub fn password_hash_socket(&self) -> &Path {
        self.directory
            .password_hash_socket
            .as_deref()
            .unwrap_or(Path::new(SAMBA_PRIVILEGED_SOCKET))
    }

    pub fn directory_target(&self) -> Result<DirectoryTarget, DirectoryError> {
        self.first_forest().directory_target()
    }

    /// The first forest's scope (see [`Forest::scope`]).
    pub fn scope(&self) -> SyncScope {
        self.first_forest().scope()
    }

    /// The sync rules, checked (validated by [`Config::validate`]; a set that no longer checks
    /// is empty here, which only a configuration changed behind `validate` could cause). Their
    /// mappings apply to every forest's objects.
    pub fn sync_rules(&self) -> SyncRules {
        self.first_forest().sync_rules()
    }

    pub fn naming_context(&self) -> Dn {
        self.first_forest().naming_context()
    }

    /// The first forest: `[directory]`, `[scope]` and `[rules]`.
    pub fn first_forest(&self) -> Forest<'_> {
        Forest {
            position: 0,
            directory: &self.directory,
            scope_config: &self.scope,
            rules_config: &self.rules,
            config: self,
        }
    }

    /// Every forest, the first one first (README, "Several forests").
    pub fn forests(&self) -> Vec<Forest<'_>> {
        let further = self
            .forests
            .iter()
            .enumerate()
            .map(|(index, forest)| Forest {
                position: index + 1,
                directory: &forest.directory,
                scope_config: &forest.scope,
                rules_config: &forest.rules,
                config: self,
            });
        std::iter::once(self.first_forest())
            .chain(further)
            .collect()
    }

    /// The secret store's key of the sync app's credential: its certificate's private key, or
    /// an existing app's client secret.
    pub fn app_credential_key(&self) -> String {
        match self.cloud.certificate_thumbprint {
            Some(_) => crate::cloud::setup::client_certificate_key(&self.cloud.client_id),
            None => crate::cloud::setup::client_secret_key(&self.cloud.client_id),
        }
    }

    /// The warning about the sync app's credential at `now_secs` (Unix), if it expires within
    /// 30 days or has expired.
    pub fn credential_warning(&self, now_secs: i64) -> Option<String> {
        let expires_at =
            crate::credential_expiry::parse_rfc3339(self.cloud.credential_expires_at.as_deref()?)?;
        crate::credential_expiry::expiry_warning(expires_at, now_secs)
    }

    /// The service account this configuration names, for setup to find it again.
    pub fn known_service_account(&self) -> KnownAccount {
        self.first_forest().known_service_account()
    }

    pub fn service_account_key(&self) -> String {
        self.first_forest().service_account_key()
    }
}

/// The fields that differ between `old` (none: a first setup) and `new`, by their dotted names
/// (`options.interval_minutes`), for the audit trail (README, "The audit trail"). The
/// configuration holds no secret, so every value can be shown.
pub fn config_changes(old: Option<&Config>, new: &Config) -> Vec<crate::store::audit::FieldChange> {
    let flatten = |config: &Config| {
        let mut fields = std::collections::BTreeMap::new();
        if let Ok(toml::Value::Table(table)) = toml::Value::try_from(config) {
            flatten_into(&mut fields, "", &toml::Value::Table(table));
        }
        fields
    };
    let old = old.map(flatten).unwrap_or_default();
    let new = flatten(new);
    let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    names
        .into_iter()
        .filter(|name| old.get(*name) != new.get(*name))
        .map(|name| crate::store::audit::FieldChange {
            field: name.clone(),
            old: old.get(name).cloned(),
            new: new.get(name).cloned(),
        })
        .collect()
}

fn flatten_into(
    fields: &mut std::collections::BTreeMap<String, String>,
    prefix: &str,
    value: &toml::Value,
) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten_into(fields, &name, value);
            }
        }
        toml::Value::String(text) => {
            fields.insert(prefix.to_owned(), text.clone());
        }
        other => {
            fields.insert(prefix.to_owned(), other.to_string());
        }
    }
}

/// Writes a new file readable by its owner only (mode 0600 from its creation, not after).
fn write_owner_only(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Parses TOML into `T`, naming the line and the field of the first problem.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|error: toml::de::Error| {
        let start = error.span().map_or(0, |span| span.start.min(text.len()));
        let line = text[..start].matches('\n').count() + 1;
        // toml's Display repeats the line with a caret drawing; its message and the field do.
        let message = match field_at(text, line) {
            Some(field) => format!("{field}: {}", error.message().trim()),
            None => error.message().trim().to_owned(),
        };
        ConfigError::Malformed {
            path: path.to_owned(),
            line,
            message,
        }
    })
}

/// The dotted name of the key on `line` (1-based): `options.deletion_threshold`.
fn field_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let (key, _) = lines.get(line - 1)?.split_once('=')?;
    let key = key.trim().trim_matches('"');
    let table = lines[..line - 1].iter().rev().find_map(|earlier| {
        let earlier = earlier.trim();
        earlier
            .strip_prefix('[')
            .and_then(|rest| rest.trim_start_matches('[').split(']').next())
            .map(str::trim)
    });
    Some(match table {
        Some(table) => format!("{table}.{key}"),
        None => key.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: &str = r#"
[cloud]
authority = "http://127.0.0.1:5080"
graph = "http://127.0.0.1:5080"
tenant_id = "8d2c0c52-0d3c-4d43-9a43-000000000001"
client_id = "00000000-0000-0000-0000-000000000002"

[directory]
server = "ldaps://localhost:636"
ca_file = "/var/tmp/dirsync-lab/tls/ca.pem"
naming_context = "DC=corp,DC=dirsync,DC=test"
service_account_dn = "CN=MSOL_0123456789ab,CN=Users,DC=corp,DC=dirsync,DC=test"

[options]
deletion_threshold = 100

[scope]
included = ["OU=Corp,DC=corp,DC=dirsync,DC=test"]
"#;

    #[test]
    fn a_saved_configuration_loads_back_the_same() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("config.toml");
        let config: Config = parse_toml(&path, LAB).expect("parses");
        assert_eq!(config.options.deletion_threshold, 100);
        assert_eq!(
            config.options.interval_minutes, 30,
            "defaults fill the rest"
        );
        config.save(&path).expect("save");
        assert_eq!(Config::load(&path).expect("load"), config);
    }

    const FABRIKAM: &str = r#"
[[forests]]
scope = { included = ["OU=Fabrikam,DC=fabrikam,DC=dirsync,DC=test"] }

[forests.directory]
server = "ldaps://127.0.0.2:636"
naming_context = "DC=fabrikam,DC=dirsync,DC=test"
service_account_dn = "CN=MSOL_0123456789ab,CN=Users,DC=fabrikam,DC=dirsync,DC=test"
"#;

    #[test]
    fn further_forests_load_save_and_keep_their_own_cursors() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("config.toml");
        let config: Config = parse_toml(&path, &format!("{LAB}{FABRIKAM}")).expect("parses");
        config.validate(&path).expect("valid");
        config.save(&path).expect("save");
        let loaded = Config::load(&path).expect("load");
        assert_eq!(loaded, config);
        let forests = loaded.forests();
        let names: Vec<String> = forests.iter().map(Forest::name).collect();
        assert_eq!(names, ["corp.dirsync.test", "fabrikam.dirsync.test"]);
        // The first forest keeps a one-forest installation's cursor names.
        assert_eq!(
            forests[0].cursor("directory-dirsync-cookie"),
            "directory-dirsync-cookie"
        );
        assert_eq!(
            forests[1].cursor("directory-dirsync-cookie"),
            "directory-dirsync-cookie@fabrikam.dirsync.test"
        );
        assert_ne!(
            forests[0].service_account_key(),
            forests[1].service_account_key()
        );
    }

    #[test]
    fn a_further_forest_s_wrong_field_is_named_under_forests() {
        let path = Path::new("config.toml");
        let broken = |from: &str, to: &str| -> String {
            let config: Config =
                parse_toml(path, &format!("{LAB}{}", FABRIKAM.replace(from, to))).expect("parses");
            match config.validate(path) {
                Err(ConfigError::Invalid { field, message, .. }) => format!("{field}: {message}"),
                other => panic!("{other:?}"),
            }
        };
        assert!(
            broken("ldaps://127.0.0.2:636", "ftp://127.0.0.2")
                .starts_with("forests[0].directory.server: "),
        );
        assert!(broken("OU=Fabrikam,DC=fabrikam", "").starts_with("forests[0].scope.included: "),);
        let twice = broken(
            "DC=fabrikam,DC=dirsync,DC=test\"\nservice",
            "DC=corp,DC=dirsync,DC=test\"\nservice",
        );
        assert!(
            twice.contains("corp.dirsync.test is already synchronized ([directory])"),
            "{twice}"
        );
        let mapped = format!(
            "{LAB}{FABRIKAM}\n[forests.rules.users.mappings]\ndepartment = '\"Research\"'\n"
        );
        let config: Config = parse_toml(path, &mapped).expect("parses");
        match config.validate(path) {
            Err(ConfigError::Invalid { field, .. }) => {
                assert_eq!(field, "forests[0].rules.users.mappings");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn alert_mail_names_the_field_that_is_missing_or_wrong() {
        let path = Path::new("config.toml");
        let base: Config = parse_toml(path, LAB).expect("parses");
        let refused = |change: &dyn Fn(&mut MonitoringConfig)| {
            let mut config = base.clone();
            change(&mut config.monitoring);
            match config.validate(path) {
                Err(ConfigError::Invalid { field, .. }) => field,
                other => panic!("{other:?}"),
            }
        };
        let whole = |monitoring: &mut MonitoringConfig| {
            monitoring.email_smtp = Some("smtp.example.com".to_owned());
            monitoring.email_from = Some("dirsync@example.com".to_owned());
            monitoring.email_to = vec!["admins@example.com".to_owned()];
        };
        let mut good = base.clone();
        whole(&mut good.monitoring);
        good.validate(path).expect("a whole mail configuration");
        assert_eq!(
            good.monitoring.smtp_server(),
            Some(Ok(("smtp.example.com".to_owned(), 587)))
        );
        assert_eq!(
            refused(&|m| m.email_to = vec!["admins@example.com".to_owned()]),
            "monitoring.email_smtp"
        );
        assert_eq!(
            refused(&|m| {
                whole(m);
                m.email_smtp = Some("smtp.example.com:mail".to_owned());
            }),
            "monitoring.email_smtp"
        );
        assert_eq!(
            refused(&|m| {
                whole(m);
                m.email_from = Some("dirsync".to_owned());
            }),
            "monitoring.email_from"
        );
        assert_eq!(
            refused(&|m| {
                whole(m);
                m.email_to.clear();
            }),
            "monitoring.email_to"
        );
    }

    #[test]
    fn changes_name_each_field_with_its_old_and_new_value() {
        let path = Path::new("config.toml");
        let old: Config = parse_toml(path, LAB).expect("parses");
        let mut new = old.clone();
        new.options.interval_minutes = 15;
        new.scope.excluded = vec!["OU=Hidden,OU=Corp,DC=corp,DC=dirsync,DC=test".to_owned()];
        let changes = config_changes(Some(&old), &new);
        let shown: Vec<(&str, Option<&str>, Option<&str>)> = changes
            .iter()
            .map(|change| {
                (
                    change.field.as_str(),
                    change.old.as_deref(),
                    change.new.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("options.interval_minutes", Some("30"), Some("15")),
                (
                    "scope.excluded",
                    Some("[]"),
                    Some("[\"OU=Hidden,OU=Corp,DC=corp,DC=dirsync,DC=test\"]")
                ),
            ]
        );
        // A first setup: every field is new.
        let first = config_changes(None, &old);
        assert!(first.iter().all(|change| change.old.is_none()));
        assert!(first.iter().any(|change| change.field == "cloud.tenant_id"));
    }

    #[test]
    fn a_malformed_file_names_the_line_and_the_field() {
        let path = Path::new("config.toml");
        let broken = LAB.replace("deletion_threshold = 100", "deletion_threshold = \"many\"");
        let error = parse_toml::<Config>(path, &broken).expect_err("wrong type");
        let text = error.to_string();
        assert!(text.contains("line 15"), "{text}");
        assert!(text.contains("options.deletion_threshold"), "{text}");

        let unknown = LAB.replace("deletion_threshold", "deletion_treshold");
        let text = parse_toml::<Config>(path, &unknown)
            .expect_err("unknown field")
            .to_string();
        assert!(text.contains("deletion_treshold"), "{text}");
        assert!(text.contains("line 15"), "{text}");
    }

    #[test]
    fn bad_values_name_their_field() {
        let path = Path::new("config.toml");
        let mut config: Config = parse_toml(path, LAB).expect("parses");
        config.scope.included = vec!["not a dn".to_owned()];
        let text = config.validate(path).expect_err("bad DN").to_string();
        assert!(text.contains("scope.included"), "{text}");
        config.scope.included.clear();
        let text = config.validate(path).expect_err("empty").to_string();
        assert!(text.contains("scope.included"), "{text}");

        let mut config: Config = parse_toml(path, LAB).expect("parses");
        config.options.delete_after_days = 0;
        let text = config.validate(path).expect_err("no days").to_string();
        assert!(text.contains("options.delete_after_days"), "{text}");
        assert!(text.contains("disable_before_delete = false"), "{text}");
        config.options.delete_after_days = 7;
        config.options.deletion_threshold_percent = 101;
        let text = config.validate(path).expect_err("not a share").to_string();
        assert!(
            text.contains("options.deletion_threshold_percent"),
            "{text}"
        );
        let unknown = LAB.replace("deletion_threshold = 100", "drift = \"sometimes\"");
        let text = parse_toml::<Config>(path, &unknown)
            .expect_err("an unknown drift action")
            .to_string();
        assert!(text.contains("drift"), "{text}");
    }
}
