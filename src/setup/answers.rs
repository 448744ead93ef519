//! The answers file of `dirsync setup --answers FILE`: the wizard's answers as TOML. It names where
//! the passwords are (environment variables) but never holds one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cloud::auth::Authority;
use crate::cloud::{CloudEndpoints, GLOBAL_AUTHORITY, GLOBAL_GRAPH};
use crate::config::{ConfigError, MonitoringConfig, ScopeConfig, SyncOptions, parse_toml};
use crate::directory::{DirectoryTarget, Dn};
use crate::rules::RulesConfig;
use crate::tls::{TlsTrust, roots_from_file};

/// Where the enterprise admin's password is read from unless the file names another variable.
pub const DEFAULT_ADMIN_PASSWORD_ENV: &str = "DIRSYNC_ADMIN_PASSWORD";
/// Where an existing app's client secret is read from unless the file names another variable.
pub const DEFAULT_CLIENT_SECRET_ENV: &str = "DIRSYNC_CLIENT_SECRET";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answers {
    /// Run the first sync cycle once setup is done.
    #[serde(default)]
    pub sync_now: bool,
    pub cloud: CloudAnswers,
    pub directory: DirectoryAnswers,
    #[serde(default)]
    pub options: SyncOptions,
    pub scope: ScopeConfig,
    /// What `dirsync service` serves for monitoring (README, "Monitoring").
    #[serde(default)]
    pub monitoring: MonitoringConfig,
    /// Sync rules (README, "Sync rules"), as `config.toml` writes them.
    #[serde(default)]
    pub rules: RulesConfig,
    /// Further forests synchronized into the same tenant (README, "Several forests"), each
    /// with its own enterprise admin, service account and scope.
    #[serde(default)]
    pub forests: Vec<ForestAnswers>,
    /// Where the state lives (README, "Where the state lives"): SQLite in the home directory
    /// unless this names a PostgreSQL database.
    #[serde(default)]
    pub store: StoreAnswers,
}

/// `[store]` in the answers file: `config.toml`'s `[store]`, and the environment variable
/// holding the PostgreSQL login's password (kept in the secret store, never in a file).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreAnswers {
    pub engine: crate::config::StoreEngine,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    pub user: Option<String>,
    pub schema: Option<String>,
    pub lease_secs: Option<u64>,
    pub tls: crate::config::StoreTls,
    /// Relative to the answers file.
    pub ca_file: Option<PathBuf>,
    /// Default `DIRSYNC_STORE_PASSWORD`.
    pub password_env: Option<String>,
}

/// The environment variable the PostgreSQL login's password is read from by default.
pub const DEFAULT_STORE_PASSWORD_ENV: &str = "DIRSYNC_STORE_PASSWORD";

impl StoreAnswers {
    pub fn config(&self) -> crate::config::StoreConfig {
        let trimmed = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|value| !value.is_empty())
                .map(str::to_owned)
        };
        crate::config::StoreConfig {
            engine: self.engine,
            host: trimmed(&self.host),
            port: self.port,
            database: trimmed(&self.database),
            user: trimmed(&self.user),
            schema: trimmed(&self.schema),
            lease_secs: self.lease_secs,
            tls: self.tls,
            ca_file: self.ca_file.clone(),
        }
    }

    pub fn password_env(&self) -> &str {
        self.password_env
            .as_deref()
            .unwrap_or(DEFAULT_STORE_PASSWORD_ENV)
    }

    /// The answers a configuration's `[store]` comes from (the wizard keeps the store).
    pub fn from_config(config: &crate::config::StoreConfig) -> StoreAnswers {
        StoreAnswers {
            engine: config.engine,
            host: config.host.clone(),
            port: config.port,
            database: config.database.clone(),
            user: config.user.clone(),
            schema: config.schema.clone(),
            lease_secs: config.lease_secs,
            tls: config.tls,
            ca_file: config.ca_file.clone(),
            password_env: None,
        }
    }
}

/// A further forest in the answers file: its domain controller and enterprise admin, its OUs
/// and its scoping rules.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForestAnswers {
    pub directory: DirectoryAnswers,
    pub scope: ScopeConfig,
    #[serde(default)]
    pub rules: RulesConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudAnswers {
    #[serde(default = "default_authority")]
    pub authority: String,
    #[serde(default = "default_graph")]
    pub graph: String,
    /// The tenant's id (a GUID) or one of its domain names.
    pub tenant: String,
    pub sign_in: SignIn,
    /// The existing app's application (client) id; only with `sign_in = "app"`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The environment variable holding the existing app's client secret; only with
    /// `sign_in = "app"`.
    #[serde(default)]
    pub client_secret_env: Option<String>,
}

/// How setup signs in to the cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignIn {
    /// A Global Administrator signs in with a code on another device; setup registers (or reuses)
    /// dirsync's own app.
    DeviceCode,
    /// Use an app that already exists, by its client id and secret.
    App,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryAnswers {
    /// `ldaps://host[:636]` or `ldap://host[:389]` (StartTLS).
    pub server: String,
    /// PEM file of the CA that issued the domain controller's certificate. A relative path is
    /// relative to the answers file.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification (not for production).
    #[serde(default)]
    pub insecure: bool,
    /// The enterprise administrator setup signs in as (never stored).
    pub admin_user: String,
    #[serde(default = "default_admin_password_env")]
    pub admin_password_env: String,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// With password hash sync: the Samba DC's privileged LDAP socket on this host (default
    /// Samba's own). A relative path is relative to the answers file.
    #[serde(default)]
    pub password_hash_socket: Option<PathBuf>,
    /// With password sync through Microsoft Graph: the GnuPG home holding the key Samba
    /// encrypts passwords to (default `$GNUPGHOME`, else `~/.gnupg`). Relative to the answers file.
    #[serde(default)]
    pub password_gpg_home: Option<PathBuf>,
    /// With password sync through Microsoft Graph: the Samba DC's smb.conf (default
    /// /etc/samba/smb.conf). Relative to the answers file.
    #[serde(default)]
    pub samba_config: Option<PathBuf>,
}

impl DirectoryAnswers {
    pub fn password_paths(&self) -> crate::config::PasswordPaths {
        crate::config::PasswordPaths {
            socket: self.password_hash_socket.clone(),
            samba_config: self.samba_config.clone(),
            gpg_home: self.password_gpg_home.clone(),
        }
    }
}

fn default_authority() -> String {
    GLOBAL_AUTHORITY.to_owned()
}

fn default_graph() -> String {
    GLOBAL_GRAPH.to_owned()
}

fn default_admin_password_env() -> String {
    DEFAULT_ADMIN_PASSWORD_ENV.to_owned()
}

fn default_timeout_secs() -> u64 {
    15
}

/// A value in the answers file that TOML's types could not catch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {field}: {message}")]
pub struct InvalidAnswer {
    pub path: PathBuf,
    pub field: String,
    pub message: String,
}

/// The answers file after its values were checked: URLs, DNs and the CA file are usable.
#[derive(Debug, Clone)]
pub struct CheckedAnswers {
    pub answers: Answers,
    pub endpoints: CloudEndpoints,
    pub directory_target: DirectoryTarget,
    pub included: Vec<Dn>,
    pub excluded: Vec<Dn>,
    /// The further forests, each checked as the first forest is (its `answers` holds the
    /// forest's directory, scope and rules in place of the first one's).
    pub forests: Vec<CheckedAnswers>,
}

impl CheckedAnswers {
    /// The environment variable holding the existing app's client secret.
    pub fn client_secret_env(&self) -> &str {
        self.answers
            .cloud
            .client_secret_env
            .as_deref()
            .unwrap_or(DEFAULT_CLIENT_SECRET_ENV)
    }
}

/// Parses the file's text: a malformed file names the line and the field.
pub fn parse_answers(path: &Path, text: &str) -> Result<Answers, ConfigError> {
    parse_toml(path, text)
}

/// Checks every value and names the field of the first one that is wrong.
pub fn check_answers(path: &Path, mut answers: Answers) -> Result<CheckedAnswers, InvalidAnswer> {
    let invalid = |field: &str, message: String| InvalidAnswer {
        path: path.to_owned(),
        field: field.to_owned(),
        message,
    };

    // The cloud.
    let cloud = &answers.cloud;
    let endpoints = CloudEndpoints::parse(&cloud.authority, &cloud.graph).map_err(|error| {
        let field = if error.field == "Graph URL" {
            "cloud.graph"
        } else {
            "cloud.authority"
        };
        invalid(field, error.to_string())
    })?;
    Authority::new(&endpoints, &cloud.tenant).map_err(|_| {
        invalid(
            "cloud.tenant",
            format!(
                "'{}' is not a tenant id or domain name; give the tenant's id (a GUID) or a domain such as contoso.onmicrosoft.com",
                cloud.tenant
            ),
        )
    })?;
    match cloud.sign_in {
        SignIn::DeviceCode => {
            for (field, value) in [
                ("cloud.client_id", &cloud.client_id),
                ("cloud.client_secret_env", &cloud.client_secret_env),
            ] {
                if value.is_some() {
                    return Err(invalid(
                        field,
                        "is only used with sign_in = \"app\"; remove it, or set sign_in = \"app\" to use an existing app".to_owned(),
                    ));
                }
            }
        }
        SignIn::App => {
            let client_id = cloud.client_id.as_deref().unwrap_or_default().trim();
            if client_id.is_empty() {
                return Err(invalid(
                    "cloud.client_id",
                    "sign_in = \"app\" needs the app's application (client) id".to_owned(),
                ));
            }
            if !client_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return Err(invalid(
                    "cloud.client_id",
                    format!("'{client_id}' is not an application (client) id (a GUID)"),
                ));
            }
            if let Some(variable) = &cloud.client_secret_env {
                check_variable_name(variable)
                    .map_err(|message| invalid("cloud.client_secret_env", message))?;
            }
        }
    }

    // The state store.
    let store = &answers.store;
    if let Some(variable) = &store.password_env {
        check_variable_name(variable).map_err(|message| invalid("store.password_env", message))?;
    }
    if store.engine == crate::config::StoreEngine::Sqlite {
        for (field, set) in [
            ("store.host", store.host.is_some()),
            ("store.port", store.port.is_some()),
            ("store.database", store.database.is_some()),
            ("store.user", store.user.is_some()),
            ("store.schema", store.schema.is_some()),
            ("store.lease_secs", store.lease_secs.is_some()),
            ("store.tls", store.tls != crate::config::StoreTls::Verify),
            ("store.ca_file", store.ca_file.is_some()),
            ("store.password_env", store.password_env.is_some()),
        ] {
            if set {
                return Err(invalid(
                    field,
                    "is only used with engine = \"postgresql\"; remove it, or set engine = \"postgresql\"".to_owned(),
                ));
            }
        }
    }
    if let Some(schema) = &store.schema
        && !crate::store::is_plain_identifier(schema.trim())
    {
        return Err(invalid(
            "store.schema",
            format!(
                "'{schema}' is not a plain name: use lowercase letters, digits and _, starting with a letter"
            ),
        ));
    }
    if store.port == Some(0) {
        return Err(invalid(
            "store.port",
            "must be a port number from 1 to 65535".to_owned(),
        ));
    }
    if let Some(refusal) = store.config().plaintext_refusal() {
        return Err(invalid("store.tls", refusal));
    }
    if let Some(ca_file) = &answers.store.ca_file {
        let ca_file = match path.parent() {
            Some(dir) if ca_file.is_relative() => dir.join(ca_file),
            _ => ca_file.clone(),
        };
        crate::tls::client_config(&TlsTrust::CaFile(ca_file.clone()))
            .map_err(|error| invalid("store.ca_file", error.to_string()))?;
        answers.store.ca_file = Some(ca_file);
    }

    // The directory.
    let directory = &mut answers.directory;
    check_variable_name(&directory.admin_password_env)
        .map_err(|message| invalid("directory.admin_password_env", message))?;
    if directory.admin_user.trim().is_empty() {
        return Err(invalid(
            "directory.admin_user",
            "is empty; give an enterprise administrator as a UPN (admin@corp.example.com), DOMAIN\\user or a DN".to_owned(),
        ));
    }
    if directory.timeout_secs == 0 {
        return Err(invalid(
            "directory.timeout_secs",
            "must be at least 1".to_owned(),
        ));
    }
    let trust = match (&directory.ca_file, directory.insecure) {
        (Some(_), true) => {
            return Err(invalid(
                "directory.insecure",
                "ca_file and insecure = true exclude each other; keep ca_file to verify the domain controller's certificate".to_owned(),
            ));
        }
        (Some(ca_file), false) => {
            let ca_file = match path.parent() {
                Some(dir) if ca_file.is_relative() => dir.join(ca_file),
                _ => ca_file.clone(),
            };
            // config.toml is read from wherever the service runs: keep the path absolute.
            let ca_file = std::path::absolute(&ca_file).unwrap_or(ca_file);
            roots_from_file(&ca_file)
                .map_err(|error| invalid("directory.ca_file", error.to_string()))?;
            directory.ca_file = Some(ca_file.clone());
            TlsTrust::CaFile(ca_file)
        }
        (None, true) => TlsTrust::Insecure,
        (None, false) => TlsTrust::SystemRoots,
    };
    for given in [
        &mut directory.password_hash_socket,
        &mut directory.password_gpg_home,
        &mut directory.samba_config,
    ] {
        if let Some(relative) = given.as_ref() {
            let joined = match path.parent() {
                Some(dir) if relative.is_relative() => dir.join(relative),
                _ => relative.clone(),
            };
            *given = Some(std::path::absolute(&joined).unwrap_or(joined));
        }
    }
    let directory_target = DirectoryTarget::new(
        &directory.server,
        trust,
        Duration::from_secs(directory.timeout_secs),
    )
    .map_err(|error| invalid("directory.server", error.to_string()))?;

    // The options.
    if answers.options.interval_minutes == 0 {
        return Err(invalid(
            "options.interval_minutes",
            "must be at least 1".to_owned(),
        ));
    }
    if answers.options.retention_days == 0 {
        return Err(invalid(
            "options.retention_days",
            "must be at least 1".to_owned(),
        ));
    }
    if answers.options.password_interval_secs == 0 {
        return Err(invalid(
            "options.password_interval_secs",
            "must be at least 1".to_owned(),
        ));
    }

    // The scope.
    let parse_all = |field: &str, dns: &[String]| -> Result<Vec<Dn>, InvalidAnswer> {
        dns.iter()
            .map(|dn| Dn::parse(dn).map_err(|error| invalid(field, error.to_string())))
            .collect()
    };
    let included = parse_all("scope.included", &answers.scope.included)?;
    let excluded = parse_all("scope.excluded", &answers.scope.excluded)?;
    if included.is_empty() {
        return Err(invalid(
            "scope.included",
            "no OU is included, so nothing would sync; list at least one OU's DN".to_owned(),
        ));
    }
    // An exclusion outside every included OU would silently do nothing: the admin meant something.
    for dn in &excluded {
        let inside = included
            .iter()
            .any(|parent| dn.is_within(parent) && dn.normalized() != parent.normalized());
        if !inside {
            return Err(invalid(
                "scope.excluded",
                format!(
                    "'{dn}' is not below any included OU; an excluded OU must lie inside one listed in scope.included"
                ),
            ));
        }
    }
    crate::rules::compile(&answers.rules).map_err(|error| invalid(&error.field, error.message))?;

    let mut forests = Vec::new();
    for (index, forest) in std::mem::take(&mut answers.forests).into_iter().enumerate() {
        forests.push(check_forest(path, &answers, forest, index)?);
    }
    Ok(CheckedAnswers {
        answers,
        endpoints,
        directory_target,
        included,
        excluded,
        forests,
    })
}

/// Checks a further forest as the first one is checked; a wrong value is named under
/// `forests[N].`. Password sync and hybrid write-back stay the first forest's (README, "Several
/// forests"); its rules hold scoping only (the mappings are shared).
fn check_forest(
    path: &Path,
    first: &Answers,
    forest: ForestAnswers,
    index: usize,
) -> Result<CheckedAnswers, InvalidAnswer> {
    let prefix = format!("forests[{index}].");
    let in_forest = |mut error: InvalidAnswer| {
        error.field = format!("{prefix}{}", error.field);
        error
    };
    for (kind, rules) in [
        ("users", &forest.rules.users),
        ("groups", &forest.rules.groups),
    ] {
        if !rules.mappings.is_empty() {
            return Err(InvalidAnswer {
                path: path.to_owned(),
                field: format!("{prefix}rules.{kind}.mappings"),
                message: "the attribute mappings are shared by every forest: write them in [rules]; a further forest's rules hold its scoping only".to_owned(),
            });
        }
    }
    let mut answers = first.clone();
    answers.directory = forest.directory;
    answers.scope = forest.scope;
    answers.rules = forest.rules;
    answers.options.password_hash_sync = false;
    answers.options.hybrid_write_back = false;
    answers.forests = Vec::new();
    check_answers(path, answers).map_err(in_forest)
}

/// The name of an environment variable: letters, digits and underscores, not starting with a digit.
fn check_variable_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        // The value is not repeated: someone may have put the secret itself here.
        Err("is not an environment variable name (letters, digits and _, not starting with a digit); name the variable that holds the secret, never the secret itself".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: &str = r#"
sync_now = false

[cloud]
authority = "http://127.0.0.1:5080"
graph = "http://127.0.0.1:5080"
tenant = "contoso-lab.onmicrosoft.com"
sign_in = "app"
client_id = "00000000-0000-0000-0000-000000000002"

[directory]
server = "ldaps://localhost:636"
insecure = true
admin_user = "Administrator@corp.dirsync.test"

[options]
deletion_threshold = 100

[scope]
included = ["OU=Corp,DC=corp,DC=dirsync,DC=test"]
excluded = ["OU=IT,OU=Corp,DC=corp,DC=dirsync,DC=test"]
"#;

    fn path() -> &'static Path {
        Path::new("answers.toml")
    }

    fn check(text: &str) -> Result<CheckedAnswers, String> {
        let answers = parse_answers(path(), text).map_err(|error| error.to_string())?;
        check_answers(path(), answers).map_err(|error| error.to_string())
    }

    const FABRIKAM: &str = r#"
[[forests]]
scope = { included = ["OU=Fabrikam,DC=fabrikam,DC=dirsync,DC=test"] }

[forests.directory]
server = "ldaps://127.0.0.2:636"
insecure = true
admin_user = "Administrator@fabrikam.dirsync.test"
admin_password_env = "FABRIKAM_ADMIN_PASSWORD"
"#;

    #[test]
    fn a_further_forest_is_checked_as_the_first_and_keeps_to_its_scoping() {
        let checked = check(&format!("{LAB}{FABRIKAM}")).expect("valid");
        assert_eq!(checked.forests.len(), 1);
        let forest = &checked.forests[0];
        assert_eq!(
            forest.answers.directory.admin_password_env,
            "FABRIKAM_ADMIN_PASSWORD"
        );
        assert_eq!(
            forest.included[0].to_string(),
            "OU=Fabrikam,DC=fabrikam,DC=dirsync,DC=test"
        );
        assert!(!forest.answers.options.password_hash_sync);
        let wrong = check(&format!("{LAB}{}", FABRIKAM.replace("ldaps://", "ftp://")))
            .expect_err("a wrong server");
        assert!(wrong.contains("forests[0].directory.server"), "{wrong}");
        let mapped = check(&format!(
            "{LAB}{FABRIKAM}\n[forests.rules.users.mappings]\ndepartment = '\"Research\"'\n"
        ))
        .expect_err("mappings are the first forest's");
        assert!(
            mapped.contains("forests[0].rules.users.mappings"),
            "{mapped}"
        );
    }

    #[test]
    fn the_lab_answers_are_accepted_with_defaults_filled_in() {
        let checked = check(LAB).expect("valid");
        assert_eq!(checked.answers.cloud.sign_in, SignIn::App);
        assert_eq!(checked.client_secret_env(), DEFAULT_CLIENT_SECRET_ENV);
        assert_eq!(
            checked.answers.directory.admin_password_env,
            DEFAULT_ADMIN_PASSWORD_ENV
        );
        assert_eq!(checked.answers.options.deletion_threshold, 100);
        assert_eq!(checked.answers.options.interval_minutes, 30);
        assert_eq!(checked.included.len(), 1);
        assert_eq!(checked.excluded.len(), 1);
    }

    #[test]
    fn the_global_cloud_is_the_default() {
        let text = LAB
            .replace("authority = \"http://127.0.0.1:5080\"\n", "")
            .replace("graph = \"http://127.0.0.1:5080\"\n", "");
        let checked = check(&text).expect("valid");
        assert_eq!(checked.answers.cloud.authority, GLOBAL_AUTHORITY);
        assert_eq!(checked.answers.cloud.graph, GLOBAL_GRAPH);
    }

    #[test]
    fn a_malformed_file_names_the_line_and_the_field() {
        let wrong_type = LAB.replace("deletion_threshold = 100", "deletion_threshold = \"many\"");
        let text = check(&wrong_type).expect_err("wrong type");
        assert!(text.contains("line 17"), "{text}");
        assert!(text.contains("options.deletion_threshold"), "{text}");

        let unknown = LAB.replace("admin_user", "admin_usr");
        let text = check(&unknown).expect_err("unknown field");
        assert!(text.contains("line 14"), "{text}");
        assert!(text.contains("admin_usr"), "{text}");

        let bad_choice = LAB.replace("sign_in = \"app\"", "sign_in = \"password\"");
        let text = check(&bad_choice).expect_err("unknown sign-in");
        assert!(text.contains("cloud.sign_in"), "{text}");
        assert!(text.contains("device-code"), "{text}");
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            (
                "ldaps://localhost:636",
                "https://localhost",
                "directory.server",
            ),
            (
                "http://127.0.0.1:5080\"\ngraph",
                "http://example.com\"\ngraph",
                "cloud.authority",
            ),
            ("contoso-lab.onmicrosoft.com", "contoso lab", "cloud.tenant"),
            ("OU=Corp,DC=corp", "not a dn,DC=corp", "scope.included"),
            (
                "OU=IT,OU=Corp,DC=corp",
                "OU=IT,OU=Elsewhere,DC=corp",
                "scope.excluded",
            ),
            (
                "insecure = true",
                "insecure = true\nca_file = \"ca.pem\"",
                "directory.insecure",
            ),
            (
                "insecure = true",
                "ca_file = \"/nonexistent/ca.pem\"",
                "directory.ca_file",
            ),
            (
                "client_id = \"00000000-0000-0000-0000-000000000002\"",
                "",
                "cloud.client_id",
            ),
            (
                "[options]",
                "[options]\ninterval_minutes = 0",
                "options.interval_minutes",
            ),
            (
                "admin_user = \"Administrator@corp.dirsync.test\"",
                "admin_user = \"\"",
                "directory.admin_user",
            ),
        ];
        for (from, to, field) in cases {
            let text = check(&LAB.replace(from, to)).expect_err(field);
            assert!(text.contains(field), "{field}: {text}");
        }
        let no_scope = LAB
            .replace(
                "included = [\"OU=Corp,DC=corp,DC=dirsync,DC=test\"]",
                "included = []",
            )
            .replace(
                "excluded = [\"OU=IT,OU=Corp,DC=corp,DC=dirsync,DC=test\"]",
                "",
            );
        let text = check(&no_scope).expect_err("empty scope");
        assert!(text.contains("scope.included"), "{text}");
    }

    #[test]
    fn an_app_id_is_refused_with_a_device_code_sign_in() {
        let text = LAB.replace("sign_in = \"app\"", "sign_in = \"device-code\"");
        let error = check(&text).expect_err("client_id with device code");
        assert!(error.contains("cloud.client_id"), "{error}");
        let text = text.replace("client_id = \"00000000-0000-0000-0000-000000000002\"", "");
        assert!(check(&text).is_ok());
    }

    #[test]
    fn a_relative_ca_file_is_found_beside_the_answers_file() {
        let dir = tempfile::tempdir().expect("dir");
        let answers_file = dir.path().join("answers.toml");
        let text = LAB.replace("insecure = true", "ca_file = \"ca.pem\"");
        let answers = parse_answers(&answers_file, &text).expect("parses");
        let error = check_answers(&answers_file, answers)
            .expect_err("no ca.pem there yet")
            .to_string();
        assert!(error.contains("directory.ca_file"), "{error}");
        assert!(
            error.contains(&dir.path().join("ca.pem").display().to_string()),
            "{error}"
        );
    }

    #[test]
    fn secrets_are_named_by_variable_never_given() {
        let text = LAB.replace(
            "admin_user = ",
            "admin_password_env = \"LabAdmin-2026!\"\nadmin_user = ",
        );
        let error = check(&text).expect_err("a password, not a variable name");
        assert!(error.contains("directory.admin_password_env"), "{error}");
        assert!(
            !error.contains("LabAdmin-2026!"),
            "the message repeats it: {error}"
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// Any text: a parsed file or an error naming a line, never a panic.
            #[test]
            fn any_text_is_answers_or_an_error(text in any::<String>()) {
                match parse_answers(path(), &text) {
                    Ok(answers) => { let _ = check_answers(path(), answers); }
                    Err(error) => { let _ = error.to_string(); }
                }
            }

            /// The lab's file with bytes cut out and others put in: the same.
            #[test]
            fn a_damaged_file_is_answers_or_an_error(
                cut_at in 0..LAB.len(),
                cut_length in 0usize..40,
                inserted in any::<String>(),
            ) {
                let mut text: Vec<char> = LAB.chars().collect();
                let at = cut_at.min(text.len());
                let end = (at + cut_length).min(text.len());
                text.splice(at..end, inserted.chars());
                let text: String = text.into_iter().collect();
                if let Ok(answers) = parse_answers(path(), &text) {
                    let _ = check_answers(path(), answers);
                }
            }
        }
    }
}
