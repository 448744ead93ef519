//! Headless setup (`dirsync setup --answers FILE`): the wizard's steps, each proven by a real call.
//!
//! Everything that only reads comes first (cloud sign-in, the enterprise admin, the scope DNs), so
//! that a wrong answer is refused before anything changes in either directory; then the service
//! account, the sync app and `config.toml` are written, each step safe to run again.

pub mod answers;
pub mod prerequisites;
pub mod preview;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::cloud::auth::{
    Authority, Credentials, DeviceCodePrompt, DeviceCodeSignIn, SETUP_CLIENT_ID, SETUP_SCOPES,
    TokenSource,
};
use crate::cloud::graph::{GraphSetupError, http_client};
use crate::cloud::mailboxes::MailboxEndpoint;
use crate::cloud::setup::{
    AppOutcome, CloudDomain, CloudSetupError, KnownApp, SyncApp, SyncAppTarget, TenantInfo,
    client_secret_key, enable_directory_sync, register_sync_app, set_sync_features,
    verified_domains, verify_tenant,
};
use crate::cloud::{
    CloudEndpoints, FlowPolicy, GraphClient, GraphError, PasswordHashEndpoint, SignInError,
};
use crate::config::{CloudConfig, Config, DirectoryConfig};
use crate::directory::forest::{
    AdminCheck, AdminLevel, ForestInfo, check_enterprise_admin, read_forest,
};
use crate::directory::password_hashes::{
    PasswordHashSource as _, SAMBA_PRIVILEGED_SOCKET, SambaPrivilegedSocket,
};
use crate::directory::service_account::AccountOutcome;
use crate::directory::setup::{DirectoryOptions, DirectorySite, SetupError, set_up_directory};
use crate::directory::{DirectoryConnection, DirectoryError, DirectoryTarget, Dn};
use crate::secret::Secret;
use crate::secret_store::SecretStore;
use crate::tls::TlsTrust;

pub use answers::{Answers, CheckedAnswers, CloudAnswers, SignIn, check_answers, parse_answers};

/// How many numbered steps setup reports.
pub const STEPS: usize = 6;

/// How long the new sync app may take to sign in for the first time: Entra ID replicates a new
/// app and its grants for a while.
const APP_PROOF_TIMEOUT: Duration = Duration::from_secs(180);

/// What setup needs besides the answers file.
#[derive(Debug)]
pub struct SetupInputs {
    /// The enterprise admin's password (used now, never stored).
    pub admin_password: Secret,
    /// The existing app's client secret, with `sign_in = "app"`.
    pub client_secret: Option<Secret>,
    /// This computer's name: it marks the service account and the sync app as this installation's.
    pub computer: String,
}

/// Told what setup is doing while it works.
pub trait SetupProgress {
    /// Step `number` of [`STEPS`] begins.
    fn step(&mut self, number: usize, title: &str);
    /// Something was done or found, or the administrator must act (the sign-in code).
    fn note(&mut self, text: &str);
    /// Something the administrator should know; also listed in the report.
    fn warning(&mut self, text: &str);
    /// The administrator must sign in with this code; the wizard shows it with copy buttons.
    fn device_code(&mut self, prompt: &DeviceCodePrompt) {
        self.note(&format!(
            "sign in as a Global Administrator: {}",
            prompt.message
        ));
    }
    /// Something that changed AD, the cloud or this computer is done (the wizard's checklist).
    fn done(&mut self, _milestone: &Milestone) {}
}

/// What setup has changed so far, in the order it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Milestone {
    /// The `MSOL_` account exists with a fresh password.
    ServiceAccount {
        dn: String,
        sam_account_name: String,
    },
    /// The account's rights are granted (and the ones its options no longer need removed).
    RightsGranted,
    /// The sync app exists and its secret, with the account's password, is in the OS keyring.
    SecretsStored,
    /// `config.toml` is written.
    ConfigurationSaved,
}

/// A field of the answers file, which is a field of the wizard too: where a failure belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    CloudAuthority,
    CloudGraph,
    CloudTenant,
    CloudClientId,
    CloudClientSecret,
    DirectoryServer,
    DirectoryCaFile,
    DirectoryAdminUser,
    DirectoryPasswordHashSocket,
    OptionsPasswordHashSync,
    OptionsHybridWriteBack,
    ScopeIncluded,
    ScopeExcluded,
}

impl Field {
    const ALL: &[(Field, &str)] = &[
        (Field::CloudAuthority, "cloud.authority"),
        (Field::CloudGraph, "cloud.graph"),
        (Field::CloudTenant, "cloud.tenant"),
        (Field::CloudClientId, "cloud.client_id"),
        (Field::CloudClientSecret, "cloud.client_secret"),
        (Field::DirectoryServer, "directory.server"),
        (Field::DirectoryCaFile, "directory.ca_file"),
        (Field::DirectoryAdminUser, "directory.admin_user"),
        (
            Field::DirectoryPasswordHashSocket,
            "directory.password_hash_socket",
        ),
        (Field::OptionsPasswordHashSync, "options.password_hash_sync"),
        (Field::OptionsHybridWriteBack, "options.hybrid_write_back"),
        (Field::ScopeIncluded, "scope.included"),
        (Field::ScopeExcluded, "scope.excluded"),
    ];

    /// The field's name in the answers file: `directory.admin_user`.
    pub fn name(self) -> &'static str {
        Field::ALL
            .iter()
            .find(|(field, _)| *field == self)
            .map_or("", |(_, name)| name)
    }

    /// The field the answers file names so (the answers checks name their field).
    pub fn named(name: &str) -> Option<Field> {
        Field::ALL
            .iter()
            .find(|(_, known)| *known == name)
            .map(|(field, _)| *field)
    }
}

/// Whether the administrator gave something wrong, or a server failed or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The answers (or a secret) are wrong: exit status 2.
    BadInput,
    /// A server failed or refused: exit status 1.
    Failed,
}

/// Why setup stopped, worded for the administrator, with the field to fix where there is one
/// (the wizard shows the message under that field; the CLI prefixes its name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupFailure {
    pub kind: FailureKind,
    pub field: Option<Field>,
    pub message: String,
}

impl SetupFailure {
    pub fn bad_input(field: Option<Field>, message: impl Into<String>) -> SetupFailure {
        SetupFailure {
            kind: FailureKind::BadInput,
            field,
            message: message.into(),
        }
    }

    pub fn failed(field: Option<Field>, message: impl Into<String>) -> SetupFailure {
        SetupFailure {
            kind: FailureKind::Failed,
            field,
            message: message.into(),
        }
    }

    pub fn is_bad_input(&self) -> bool {
        self.kind == FailureKind::BadInput
    }
}

impl std::fmt::Display for SetupFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.field {
            Some(field) => write!(f, "{}: {}", field.name(), self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for SetupFailure {}

/// What setup did. Holds no secret: secrets are only named by their keyring entries.
#[derive(Debug, Clone, Serialize)]
pub struct SetupReport {
    pub tenant_id: String,
    pub client_id: String,
    pub app: AppReport,
    pub enterprise_admin: AdminReport,
    pub service_account: AccountReport,
    /// The rights the service account holds, in words.
    pub rights: Vec<String>,
    /// Objects whose permissions setup changed (the rest already were right).
    pub rights_changed_on: Vec<String>,
    /// Write-back attributes the forest's schema lacks (write-back skips them).
    pub write_back_skipped: Vec<String>,
    /// What to run on a domain controller so that the account sees deletions, when it cannot.
    pub deleted_objects_advice: Option<String>,
    pub config_file: PathBuf,
    /// The OS keyring entries (service `dirsync`) setup filled.
    pub keyring_entries: Vec<String>,
    /// Every place setup kept a secret, in words: the keyring entries, and the encrypted
    /// systemd credentials `dirsync service` reads after a reboot.
    pub secrets_kept_in: Vec<String>,
    /// The answers asked for a first sync cycle right after setup.
    pub sync_now: bool,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AppReport {
    /// `created` or `reused` (dirsync's own app, device code sign-in), or `existing` (an app the
    /// answers named).
    pub outcome: &'static str,
    pub display_name: Option<String>,
    pub permissions: Vec<String>,
    /// Older secrets of dirsync's app that were removed.
    pub removed_secrets: usize,
    /// Setup turned on directory synchronization for the tenant (it was off).
    pub directory_sync_turned_on: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct AdminReport {
    pub account_dn: String,
    pub level: AdminLevel,
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountReport {
    pub dn: String,
    pub sam_account_name: String,
    /// `created`, or `password-reset` when this computer's account existed.
    pub outcome: &'static str,
    /// The existing account had other permissions than the protected ones (owner Domain Admins,
    /// no inheritance); setup replaced them.
    pub protection_restored: bool,
}

/// Runs every step and saves `config_file`. Secrets go to `secrets` (the OS keyring).
pub async fn run_setup(
    checked: &CheckedAnswers,
    inputs: &SetupInputs,
    config_file: &Path,
    secrets: &dyn SecretStore,
    progress: &mut dyn SetupProgress,
) -> Result<SetupReport, SetupFailure> {
    let answers = &checked.answers;
    let fields = CloudFields::of(checked);
    progress.step(1, "Signing in to the cloud");
    let cloud = Box::pin(sign_in(
        &answers.cloud,
        &checked.endpoints,
        inputs.client_secret.clone(),
        &fields,
        progress,
    ))
    .await?;
    check_cloud_options(cloud.client(), &answers.options, &fields, progress).await?;
    Box::pin(apply_setup(
        checked,
        inputs,
        cloud,
        config_file,
        secrets,
        progress,
    ))
    .await
}

/// A checked enterprise admin: the bound connection and what it read of the forest.
#[derive(Debug)]
pub struct AdminSession {
    pub connection: DirectoryConnection,
    pub forest: ForestInfo,
    pub check: AdminCheck,
    /// The domain the domain controller serves by default: dirsync syncs it.
    pub domain: Dn,
}

/// Signs in as the enterprise admin and checks that the server is a domain controller offering
/// DirSync and that the account is an enterprise admin (or a domain admin of a one-domain forest).
pub async fn check_admin(
    target: &DirectoryTarget,
    admin_user: &str,
    admin_password: &Secret,
) -> Result<AdminSession, SetupFailure> {
    let connection = DirectoryConnection::connect_and_bind(target, admin_user, admin_password)
        .await
        .map_err(|error| directory_failure(&error))?;
    let forest = read_forest(&connection)
        .await
        .map_err(|error| directory_failure(&error))?;
    if !forest.root_dse.supports_dirsync() {
        return Err(SetupFailure::failed(
            Some(Field::DirectoryServer),
            format!(
                "{} does not offer the DirSync control (1.2.840.113556.1.4.841) that dirsync reads changes with; point it at an Active Directory domain controller",
                target.server()
            ),
        ));
    }
    let check = check_enterprise_admin(&connection, &forest)
        .await
        .map_err(|error| directory_failure(&error))?;
    if check.level == AdminLevel::NotAdmin {
        return Err(SetupFailure::bad_input(
            Some(Field::DirectoryAdminUser),
            format!(
                "{admin_user}: {}",
                check.explanation.clone().unwrap_or_default()
            ),
        ));
    }
    let domain = domain_of(&forest)?;
    Ok(AdminSession {
        connection,
        forest,
        check,
        domain,
    })
}

/// What setup says as it goes: progress for the window or the terminal, and the warnings the
/// report lists.
struct Said<'p> {
    progress: &'p mut dyn SetupProgress,
    warnings: Vec<String>,
}

impl Said<'_> {
    fn warn(&mut self, text: String) {
        self.progress.warning(&text);
        self.warnings.push(text);
    }
}

/// What the checks before any change found: the admin's session and what the service account's
/// rights depend on.
struct Checked {
    admin: AdminSession,
    /// The password hash source reads as the service account (Replicating Directory Changes
    /// All is granted only then).
    replicate_secrets: bool,
}

/// What the sync app step leaves for the configuration and the report.
struct AppStep {
    tenant_id: String,
    client_id: String,
    service_principal_id: Option<String>,
    credential_expires_at: Option<String>,
    certificate_thumbprint: Option<String>,
    /// The secret store's key of the app's credential.
    credential_key: String,
    report: AppReport,
}

/// The steps after the cloud sign-in: the enterprise admin, the scope, the service account and
/// its rights, the sync app, `config.toml`. The wizard calls this with the session its cloud
/// step proved (and whose options its later steps checked); `run_setup` with its own.
pub async fn apply_setup(
    checked: &CheckedAnswers,
    inputs: &SetupInputs,
    cloud: CloudSession,
    config_file: &Path,
    secrets: &dyn SecretStore,
    progress: &mut dyn SetupProgress,
) -> Result<SetupReport, SetupFailure> {
    // This installation's earlier configuration names the account and the app it made: setup
    // reuses only those (an account or app found by its name alone must prove itself).
    let previous = Config::load(config_file).ok();
    let mut said = Said {
        progress,
        warnings: Vec::new(),
    };
    if checked.answers.directory.insecure {
        said.warn(
            "directory.insecure = true: the domain controller's certificate is not verified (not for production)".to_owned(),
        );
    }
    let Checked {
        admin,
        replicate_secrets,
    } = check_before_changing(checked, inputs, &cloud, previous.as_ref(), &mut said).await?;
    let options = DirectoryOptions {
        replicate_secrets,
        write_back_scope: checked
            .answers
            .options
            .hybrid_write_back
            .then(|| (checked.included.clone(), checked.excluded.clone())),
    };
    let directory = service_account_step(
        checked,
        inputs,
        &admin,
        &options,
        previous.as_ref(),
        secrets,
        &mut said,
    )
    .await;
    let AdminSession {
        connection,
        check: admin_check,
        domain,
        ..
    } = admin;
    connection.close().await;
    let directory = directory?;
    let rights = rights_in_words(&domain, checked, &options, &directory.write_back_skipped);
    let app = sync_app_step(
        checked,
        inputs,
        cloud,
        previous.as_ref(),
        secrets,
        &mut said,
    )
    .await?;

    let keyring_entries = vec![app.credential_key.clone(), directory.keyring_key.clone()];
    let secrets_kept_in: Vec<String> = keyring_entries
        .iter()
        .flat_map(|key| secrets.places(key))
        .collect();
    for place in &secrets_kept_in {
        said.progress.note(&format!("a secret is kept in {place}"));
    }
    if let Some(warning) = secrets.reboot_warning() {
        said.warn(format!("service credentials: {warning}"));
    }
    said.progress.done(&Milestone::SecretsStored);

    said.progress.step(6, "Saving the configuration");
    let mut config = config_for(
        checked,
        &app.tenant_id,
        &app.client_id,
        app.service_principal_id.clone(),
        &domain,
        directory.account.dn.as_str(),
        Some(directory.account.guid.to_string()),
    );
    config.cloud.credential_expires_at = app.credential_expires_at.clone();
    config.cloud.certificate_thumbprint = app.certificate_thumbprint.clone();
    // The same checks every run makes on load: a configuration setup saves always loads.
    config
        .validate(config_file)
        .and_then(|()| config.save(config_file))
        .map_err(|error| SetupFailure::failed(None, error.to_string()))?;
    said.progress
        .note(&format!("saved {}", config_file.display()));
    said.progress.done(&Milestone::ConfigurationSaved);

    Ok(SetupReport {
        tenant_id: app.tenant_id,
        client_id: app.client_id,
        app: app.report,
        enterprise_admin: AdminReport {
            account_dn: admin_check.account_dn,
            level: admin_check.level,
        },
        service_account: AccountReport {
            dn: directory.account.dn.to_string(),
            sam_account_name: directory.account.sam_account_name.clone(),
            outcome: match directory.outcome {
                AccountOutcome::Created => "created",
                AccountOutcome::PasswordReset => "password-reset",
            },
            protection_restored: directory.protection_restored,
        },
        rights,
        rights_changed_on: directory
            .rights
            .changed
            .iter()
            .map(ToString::to_string)
            .collect(),
        write_back_skipped: directory.write_back_skipped,
        deleted_objects_advice: directory.deleted_objects_advice,
        config_file: config_file.to_owned(),
        keyring_entries,
        secrets_kept_in,
        sync_now: checked.answers.sync_now,
        warnings: said.warnings,
    })
}

/// Steps 2 and 3, and what else only reads: the enterprise admin, the scope, the sync app's name
/// (this installation's app or nobody's), the password hash source. Nothing has changed yet.
async fn check_before_changing(
    checked: &CheckedAnswers,
    inputs: &SetupInputs,
    cloud: &CloudSession,
    previous: Option<&Config>,
    said: &mut Said<'_>,
) -> Result<Checked, SetupFailure> {
    let answers = &checked.answers;
    said.progress.step(2, "Checking the enterprise admin");
    let admin = check_admin(
        &checked.directory_target,
        &answers.directory.admin_user,
        &inputs.admin_password,
    )
    .await?;
    match admin.check.level {
        AdminLevel::DomainAdminSingleDomain => {
            said.warn(admin.check.explanation.clone().unwrap_or_default());
        }
        _ => said.progress.note(&format!(
            "{} is an enterprise admin",
            admin.check.account_dn
        )),
    }

    said.progress.step(3, "Checking the scope");
    check_scope(&admin.connection, &admin.domain, checked).await?;
    said.progress.note(&format!(
        "{} included and {} excluded OU(s) found in {}",
        checked.included.len(),
        checked.excluded.len(),
        admin.domain
    ));

    // dirsync's app must be this installation's or nobody's before anything changes in AD.
    if let CloudSession::Admin {
        client, app: None, ..
    } = cloud
    {
        let display_name = sync_app_name(&inputs.computer);
        let target = sync_app_target(
            &checked.endpoints,
            cloud.tenant_id(),
            &display_name,
            previous.and_then(known_app),
        );
        crate::cloud::setup::find_own_app(client, &target)
            .await
            .map_err(|error| cloud_setup_failure(&error))?;
    }

    let mut replicate_secrets = false;
    if answers.options.password_hash_sync {
        let source = open_hash_source(checked, &admin.domain).await?;
        said.progress.note(&format!(
            "password hashes can be read through {}",
            source.describe()
        ));
        replicate_secrets = source.needs_replicating_directory_changes_all();
    }
    Ok(Checked {
        admin,
        replicate_secrets,
    })
}

/// Step 4: the service account, protected, with a fresh password kept where secrets are kept,
/// and exactly the rights `options` need.
async fn service_account_step(
    checked: &CheckedAnswers,
    inputs: &SetupInputs,
    admin: &AdminSession,
    options: &DirectoryOptions,
    previous: Option<&Config>,
    secrets: &dyn SecretStore,
    said: &mut Said<'_>,
) -> Result<crate::directory::setup::DirectorySetup, SetupFailure> {
    said.progress.step(4, "Setting up the service account");
    let site = DirectorySite {
        domain: &admin.domain,
        root_domain_naming_context: &admin.forest.root_dse.root_domain_naming_context,
        schema_naming_context: &admin.forest.root_dse.schema_naming_context,
        computer: &inputs.computer,
        known_account: previous
            .map(Config::known_service_account)
            .unwrap_or_default(),
    };
    let directory = set_up_directory(
        &admin.connection,
        &checked.directory_target,
        &site,
        options,
        secrets,
    )
    .await
    .map_err(|error| match error {
        SetupError::Directory(error) => directory_failure(&error),
        SetupError::Keyring(error) => SetupFailure::failed(None, error.to_string()),
    })?;
    said.progress.note(&format!(
        "{} {}; its password is in the OS keyring; it signed in and read the change cookie",
        directory.account.dn,
        match directory.outcome {
            AccountOutcome::Created => "created, owned by Domain Admins, inheriting no permissions",
            AccountOutcome::PasswordReset => "existed: its password was reset",
        }
    ));
    if directory.protection_restored {
        said.warn(format!(
            "{} had other permissions than dirsync's protected ones (owner Domain Admins, no inherited rights); setup replaced them",
            directory.account.dn
        ));
    }
    said.progress.done(&Milestone::ServiceAccount {
        dn: directory.account.dn.to_string(),
        sam_account_name: directory.account.sam_account_name.clone(),
    });
    for right in rights_in_words(
        &admin.domain,
        checked,
        options,
        &directory.write_back_skipped,
    ) {
        said.progress.note(&format!("right: {right}"));
    }
    said.progress.done(&Milestone::RightsGranted);
    if !directory.write_back_skipped.is_empty() {
        said.warn(format!(
            "hybrid write-back: the forest's schema has no {}; write-back skips them",
            directory.write_back_skipped.join(", ")
        ));
    }
    if let Some(advice) = &directory.deleted_objects_advice {
        said.warn(format!("deletions: {advice}"));
    }
    Ok(directory)
}

/// Step 5: dirsync's own app with a new certificate (or the existing app the answers named,
/// its secret kept), the tenant's directory synchronization and, with password hash sync, its
/// password sync turned on.
async fn sync_app_step(
    checked: &CheckedAnswers,
    inputs: &SetupInputs,
    cloud: CloudSession,
    previous: Option<&Config>,
    secrets: &dyn SecretStore,
    said: &mut Said<'_>,
) -> Result<AppStep, SetupFailure> {
    let options = &checked.answers.options;
    said.progress.step(5, "Setting up the sync app");
    match cloud {
        CloudSession::Admin {
            client,
            tenant,
            app,
        } => {
            // The wizard registers the app as soon as the administrator signs in.
            let app = match app {
                Some(app) => *app,
                None => {
                    create_sync_app(
                        &client,
                        &tenant,
                        &checked.endpoints,
                        &inputs.computer,
                        previous.and_then(known_app),
                        secrets,
                        &mut *said.progress,
                    )
                    .await?
                }
            };
            let turned_on = enable_directory_sync(&client, &tenant)
                .await
                .map_err(|error| cloud_setup_failure(&error))?;
            if turned_on {
                said.progress
                    .note("directory synchronization turned on for the tenant");
            }
            if options.password_hash_sync {
                set_sync_features(&client, &[("passwordSyncEnabled", true)])
                    .await
                    .map_err(|error| cloud_setup_failure(&error))?;
                said.progress
                    .note("password hash sync turned on for the tenant");
            }
            Ok(AppStep {
                tenant_id: tenant.tenant_id,
                client_id: app.client_id,
                service_principal_id: Some(app.service_principal_id),
                credential_expires_at: app.credential_expires_at,
                certificate_thumbprint: Some(app.certificate_thumbprint),
                credential_key: app.credential_key,
                report: AppReport {
                    outcome: match app.outcome {
                        AppOutcome::Created => "created",
                        AppOutcome::Reused => "reused",
                    },
                    display_name: Some(app.display_name),
                    permissions: app.permissions,
                    removed_secrets: app.removed_secrets,
                    directory_sync_turned_on: turned_on,
                },
            })
        }
        CloudSession::App {
            tenant_id,
            client_id,
            secret,
            ..
        } => {
            let key = client_secret_key(&client_id);
            secrets
                .save(&key, &secret)
                .map_err(|error| SetupFailure::failed(None, error.to_string()))?;
            said.progress.note(&format!(
                "app {client_id} will sign in with the given secret, now in the OS keyring"
            ));
            if options.password_hash_sync {
                said.warn(
                    "options.password_hash_sync: with sign_in = \"app\" setup cannot turn on the tenant's password sync (Graph allows that only to a signed-in administrator); run setup once with sign_in = \"device-code\", or turn it on in the Entra admin center".to_owned(),
                );
            }
            Ok(AppStep {
                tenant_id,
                client_id,
                service_principal_id: None,
                credential_expires_at: None,
                certificate_thumbprint: None,
                credential_key: key,
                report: AppReport {
                    outcome: "existing",
                    display_name: None,
                    permissions: Vec::new(),
                    removed_secrets: 0,
                    directory_sync_turned_on: false,
                },
            })
        }
    }
}

/// The sync app a saved configuration names, when setup registered it (not an existing app the
/// answers named: that one is the administrator's, and setup never registers over it).
pub fn known_app(config: &Config) -> Option<KnownApp> {
    config
        .cloud
        .service_principal_id
        .as_ref()
        .map(|service_principal_id| KnownApp {
            client_id: config.cloud.client_id.clone(),
            service_principal_id: Some(service_principal_id.clone()),
        })
}

/// Registers dirsync's app for this computer (or finds this installation's from an earlier
/// setup and gives it a new secret), with its secret in the keyring, and proves it signs in.
pub async fn create_sync_app(
    admin: &GraphClient,
    tenant: &TenantInfo,
    endpoints: &CloudEndpoints,
    computer: &str,
    known: Option<KnownApp>,
    secrets: &dyn SecretStore,
    progress: &mut dyn SetupProgress,
) -> Result<SyncApp, SetupFailure> {
    let display_name = sync_app_name(computer);
    let target = sync_app_target(endpoints, &tenant.tenant_id, &display_name, known);
    let app = register_sync_app(admin, &target, secrets)
        .await
        .map_err(|error| cloud_setup_failure(&error))?;
    progress.note(&format!(
        "app '{}' {} (client id {}) with {}; it signs in with a certificate whose private key was made here and is kept only on this computer",
        app.display_name,
        match app.outcome {
            AppOutcome::Created => "registered",
            AppOutcome::Reused => "found from an earlier setup and given a new certificate",
        },
        app.client_id,
        app.permissions.join(", ")
    ));
    Ok(app)
}

/// What renewing the sync app's credential did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewedCredential {
    /// When the new credential expires (RFC 3339).
    pub expires_at: Option<String>,
    /// Older credentials removed once the new one signed in.
    pub removed: usize,
}

/// Renews the credential of the sync app `config` names, with a Global Administrator's device
/// code sign-in: a new secret (kept where the old one was: the OS keyring and, as root, the
/// service's systemd credential), proven, then the older ones removed and `config_file` updated
/// with the new expiry. Only this installation's own app is renewed; an existing app the answers
/// named is the administrator's to renew in the Entra admin center.
pub async fn renew_app_credential(
    config_file: &Path,
    computer: &str,
    secrets: &dyn SecretStore,
    progress: &mut dyn SetupProgress,
) -> Result<RenewedCredential, SetupFailure> {
    let mut config = Config::load(config_file)
        .map_err(|error| SetupFailure::bad_input(None, error.to_string()))?;
    let known = known_app(&config).ok_or_else(|| {
        SetupFailure::bad_input(None, format!(
            "the sync app {} was not registered by dirsync's setup, so dirsync cannot renew its credential: add a new client secret to it in the Entra admin center and run setup with sign_in = \"app\"",
            config.cloud.client_id
        ))
    })?;
    let endpoints = config
        .endpoints()
        .map_err(|error| SetupFailure::bad_input(Some(Field::CloudAuthority), error.to_string()))?;
    let answers = CloudAnswers {
        authority: config.cloud.authority.clone(),
        graph: config.cloud.graph.clone(),
        tenant: config.cloud.tenant_id.clone(),
        sign_in: SignIn::DeviceCode,
        client_id: None,
        client_secret_env: None,
    };
    let fields = CloudFields {
        sign_in: SignIn::DeviceCode,
        client_secret: "the client secret".to_owned(),
    };
    let session = Box::pin(sign_in(&answers, &endpoints, None, &fields, progress)).await?;
    let CloudSession::Admin { client, tenant, .. } = session else {
        return Err(SetupFailure::failed(
            None,
            "the sign-in was not an administrator's".to_owned(),
        ));
    };
    let app = create_sync_app(
        &client,
        &tenant,
        &endpoints,
        computer,
        Some(known),
        secrets,
        progress,
    )
    .await?;
    if app.client_id != config.cloud.client_id {
        return Err(SetupFailure::failed(
            None,
            format!(
                "the renewal reached app {} instead of {}; run setup again",
                app.client_id, config.cloud.client_id
            ),
        ));
    }
    config.cloud.credential_expires_at = app.credential_expires_at.clone();
    config.cloud.certificate_thumbprint = Some(app.certificate_thumbprint.clone());
    config
        .save(config_file)
        .map_err(|error| SetupFailure::failed(None, error.to_string()))?;
    Ok(RenewedCredential {
        expires_at: app.credential_expires_at,
        removed: app.removed_secrets,
    })
}

/// The display name of this computer's sync app.
pub fn sync_app_name(computer: &str) -> String {
    format!("dirsync ({computer})")
}

fn sync_app_target<'a>(
    endpoints: &'a CloudEndpoints,
    tenant_id: &'a str,
    display_name: &'a str,
    known: Option<KnownApp>,
) -> SyncAppTarget<'a> {
    SyncAppTarget {
        endpoints,
        tenant_id,
        trust: &TlsTrust::SystemRoots,
        display_name,
        proof_timeout: APP_PROOF_TIMEOUT,
        known,
    }
}

/// The configuration the answers lead to, once the tenant, the app and the account are known.
pub fn config_for(
    checked: &CheckedAnswers,
    tenant_id: &str,
    client_id: &str,
    service_principal_id: Option<String>,
    domain: &Dn,
    service_account_dn: &str,
    service_account_guid: Option<String>,
) -> Config {
    let answers = &checked.answers;
    Config {
        cloud: CloudConfig {
            authority: answers.cloud.authority.trim().to_owned(),
            graph: answers.cloud.graph.trim().to_owned(),
            tenant_id: tenant_id.to_owned(),
            client_id: client_id.to_owned(),
            service_principal_id,
            credential_expires_at: None,
            certificate_thumbprint: None,
        },
        directory: DirectoryConfig {
            server: answers.directory.server.trim().to_owned(),
            ca_file: answers.directory.ca_file.clone(),
            insecure: answers.directory.insecure,
            naming_context: domain.to_string(),
            service_account_dn: service_account_dn.to_owned(),
            service_account_guid,
            timeout_secs: answers.directory.timeout_secs,
            password_hash_socket: answers.directory.password_hash_socket.clone(),
        },
        options: answers.options.clone(),
        scope: answers.scope.clone(),
    }
}

/// Opens the password hash source the answers name (Samba's privileged socket by default).
async fn open_hash_source(
    checked: &CheckedAnswers,
    domain: &Dn,
) -> Result<SambaPrivilegedSocket, SetupFailure> {
    let directory = &checked.answers.directory;
    open_password_hash_source(
        directory.password_hash_socket.as_deref(),
        domain,
        directory.timeout_secs,
    )
    .await
}

/// Opens Samba's privileged socket (`socket`, or Samba's default path) for `domain`: proves that
/// password hashes can be read on this host. The wizard's password step calls this too.
pub async fn open_password_hash_source(
    socket: Option<&Path>,
    domain: &Dn,
    timeout_secs: u64,
) -> Result<SambaPrivilegedSocket, SetupFailure> {
    let socket = socket.unwrap_or(Path::new(SAMBA_PRIVILEGED_SOCKET));
    SambaPrivilegedSocket::open(socket, domain, Duration::from_secs(timeout_secs))
        .await
        .map_err(|unavailable| {
            SetupFailure::bad_input(
                Some(Field::OptionsPasswordHashSync),
                format!("{unavailable}"),
            )
        })
}

/// Password hash sync needs the tenant to accept hashes: public Microsoft Graph has no endpoint
/// for them (README, "Password hash sync"), so setup says so before anything is created.
pub async fn check_password_hash_endpoint(
    client: &GraphClient,
    fields: &CloudFields,
    progress: &mut dyn SetupProgress,
) -> Result<(), SetupFailure> {
    match client.password_hash_endpoint().await {
        Ok(PasswordHashEndpoint::Available { max_batch }) => {
            progress.note(&format!(
                "the tenant accepts password hashes ({max_batch} users per request)"
            ));
            Ok(())
        }
        Ok(PasswordHashEndpoint::Missing { url, answer }) => Err(SetupFailure::bad_input(
            Some(Field::OptionsPasswordHashSync),
            format!(
                "this tenant has no password hash endpoint ({url} answered: {answer}); public Microsoft Graph offers none, so passwords cannot be synchronized to it; set password_hash_sync = false"
            ),
        )),
        Err(error) => Err(graph_failure(error, fields)),
    }
}

/// After a setup, the options it turned on start over as after Entra Connect's wizard: the
/// next password cycle sends every synced user's password, and the next sync cycle reads every
/// mailbox and checks it against AD. Shared by the CLI and the wizard.
pub fn start_options_over(
    options: &crate::config::SyncOptions,
    store: &crate::store::SqliteStore,
) -> Result<(), crate::store::StoreError> {
    if options.password_hash_sync {
        store.reset_password_sync()?;
    }
    if options.hybrid_write_back {
        store.reset_write_back()?;
    }
    Ok(())
}

/// Hybrid write-back needs the tenant's mailbox attributes: public Microsoft Graph has none
/// (README, "Hybrid Exchange write-back"), so setup says so before anything is created.
pub async fn check_mailbox_endpoint(
    client: &GraphClient,
    fields: &CloudFields,
    progress: &mut dyn SetupProgress,
) -> Result<(), SetupFailure> {
    match client.mailbox_endpoint().await {
        Ok(MailboxEndpoint::Available) => {
            progress.note("the tenant offers its mailboxes' attributes for hybrid write-back");
            Ok(())
        }
        Ok(MailboxEndpoint::Missing { url, answer }) => Err(SetupFailure::bad_input(
            Some(Field::OptionsHybridWriteBack),
            format!(
                "this tenant offers no mailbox attributes ({url} answered: {answer}); public Microsoft Graph has none, so nothing could be written back; set hybrid_write_back = false"
            ),
        )),
        Err(error) => Err(graph_failure(error, fields)),
    }
}

/// Checks what the chosen options need of the tenant.
async fn check_cloud_options(
    client: &GraphClient,
    options: &crate::config::SyncOptions,
    fields: &CloudFields,
    progress: &mut dyn SetupProgress,
) -> Result<(), SetupFailure> {
    if options.password_hash_sync {
        check_password_hash_endpoint(client, fields, progress).await?;
    }
    if options.hybrid_write_back {
        check_mailbox_endpoint(client, fields, progress).await?;
    }
    Ok(())
}

/// The proven cloud sign-in: an administrator's session, or an existing app's credentials.
#[derive(Debug, Clone)]
pub enum CloudSession {
    Admin {
        client: GraphClient,
        tenant: TenantInfo,
        /// dirsync's app, when it is already registered (the wizard does so at sign-in).
        app: Option<Box<SyncApp>>,
    },
    App {
        tenant_id: String,
        client_id: String,
        secret: Secret,
        client: GraphClient,
        /// The tenant's verified domains, read with the app's credentials.
        domains: Vec<CloudDomain>,
    },
}

impl CloudSession {
    /// Graph, signed in as the administrator or the app.
    pub fn client(&self) -> &GraphClient {
        match self {
            CloudSession::Admin { client, .. } | CloudSession::App { client, .. } => client,
        }
    }

    pub fn tenant_id(&self) -> &str {
        match self {
            CloudSession::Admin { tenant, .. } => &tenant.tenant_id,
            CloudSession::App { tenant_id, .. } => tenant_id,
        }
    }

    /// The tenant's name, when an administrator signed in (an app may not read it).
    pub fn tenant_name(&self) -> Option<&str> {
        match self {
            CloudSession::Admin { tenant, .. } => Some(&tenant.display_name),
            CloudSession::App { .. } => None,
        }
    }

    /// dirsync's app, once registered (an existing app's session has none).
    pub fn sync_app(&self) -> Option<&SyncApp> {
        match self {
            CloudSession::Admin { app, .. } => app.as_deref(),
            CloudSession::App { .. } => None,
        }
    }

    pub fn verified_domains(&self) -> &[CloudDomain] {
        match self {
            CloudSession::Admin { tenant, .. } => &tenant.verified_domains,
            CloudSession::App { domains, .. } => domains,
        }
    }
}

/// How the cloud answers name their fields in errors: the answers file names the environment
/// variable a client secret came from, the wizard its field.
#[derive(Debug, Clone)]
pub struct CloudFields {
    pub sign_in: SignIn,
    /// "the client secret in DIRSYNC_CLIENT_SECRET", or the wizard's field name.
    pub client_secret: String,
}

impl CloudFields {
    /// The answers file's wording: secrets come from environment variables.
    fn of(checked: &CheckedAnswers) -> CloudFields {
        CloudFields {
            sign_in: checked.answers.cloud.sign_in,
            client_secret: format!("the client secret in {}", checked.client_secret_env()),
        }
    }
}

/// Setup's requests give up sooner than a sync run's: an administrator is waiting.
fn setup_policy() -> FlowPolicy {
    FlowPolicy {
        give_up_after: Duration::from_secs(60),
        ..FlowPolicy::default()
    }
}

/// Signs in to the cloud as the answers say and proves it by reading the tenant (an
/// administrator) or its verified domains (an app).
pub async fn sign_in(
    cloud: &CloudAnswers,
    endpoints: &CloudEndpoints,
    client_secret: Option<Secret>,
    fields: &CloudFields,
    progress: &mut dyn SetupProgress,
) -> Result<CloudSession, SetupFailure> {
    let policy = setup_policy();
    let http = http_client(&TlsTrust::SystemRoots, policy.request_timeout)
        .map_err(|error| SetupFailure::failed(None, error.to_string()))?;
    let authority = Authority::new(endpoints, &cloud.tenant)
        .map_err(|error| sign_in_failure(&error, fields))?;
    match cloud.sign_in {
        SignIn::DeviceCode => {
            let started = DeviceCodeSignIn::start(
                http.clone(),
                authority.clone(),
                SETUP_CLIENT_ID,
                SETUP_SCOPES,
            )
            .await
            .map_err(|error| sign_in_failure(&error, fields))?;
            progress.device_code(started.prompt());
            let session = started
                .wait()
                .await
                .map_err(|error| sign_in_failure(&error, fields))?;
            let tokens = TokenSource::with_session(http.clone(), authority, session);
            let client = GraphClient::with_tokens(http, endpoints, Arc::new(tokens), policy);
            let tenant = verify_tenant(&client)
                .await
                .map_err(|error| graph_failure(error, fields))?;
            progress.note(&format!(
                "signed in to tenant '{}' ({}), initial domain {}",
                tenant.display_name, tenant.tenant_id, tenant.initial_domain
            ));
            Ok(CloudSession::Admin {
                client,
                tenant,
                app: None,
            })
        }
        SignIn::App => {
            let client_id = cloud
                .client_id
                .clone()
                .unwrap_or_default()
                .trim()
                .to_owned();
            let secret = client_secret.ok_or_else(|| {
                SetupFailure::bad_input(
                    Some(Field::CloudClientSecret),
                    format!(
                        "{}: no client secret was given for app {client_id}",
                        fields.client_secret
                    ),
                )
            })?;
            let tenant_id = tenant_id_of(&http, endpoints, &cloud.tenant).await?;
            let credentials = Credentials::ClientSecret {
                client_id: client_id.clone(),
                secret: secret.clone(),
            };
            let client = GraphClient::new(
                endpoints,
                &tenant_id,
                credentials,
                &TlsTrust::SystemRoots,
                policy,
            )
            .map_err(|error| match error {
                GraphSetupError::SignIn(error) => sign_in_failure(&error, fields),
                GraphSetupError::Tls(error) => SetupFailure::failed(None, error.to_string()),
            })?;
            // Signing in and reading the domains proves the id, the secret and the app's rights.
            let domains = verified_domains(&client)
                .await
                .map_err(|error| graph_failure(error, fields))?;
            progress.note(&format!(
                "app {client_id} signed in to tenant {tenant_id} and read its verified domains ({})",
                domains
                    .iter()
                    .map(|domain| domain.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            Ok(CloudSession::App {
                tenant_id,
                client_id,
                secret,
                client,
                domains,
            })
        }
    }
}

/// The name setup gives this computer when the system has none.
const FALLBACK_COMPUTER_NAME: &str = "dirsync";

/// This computer's name: `HOSTNAME`, else /etc/hostname, else a fixed name. It tells this
/// installation's service account and app apart from another computer's.
pub fn computer_name() -> String {
    let from_env = std::env::var("HOSTNAME").ok();
    let from_file = || std::fs::read_to_string("/etc/hostname").ok();
    from_env
        .into_iter()
        .chain(from_file())
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| FALLBACK_COMPUTER_NAME.to_owned())
}

/// The tenant's id (a GUID) for a tenant given by id or domain name, from the identity
/// platform's OpenID configuration, whose issuer names it.
/// https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc#find-your-apps-openid-configuration-document-uri
async fn tenant_id_of(
    http: &reqwest::Client,
    endpoints: &CloudEndpoints,
    tenant: &str,
) -> Result<String, SetupFailure> {
    let tenant = tenant.trim();
    if is_guid(tenant) {
        return Ok(tenant.to_ascii_lowercase());
    }
    let mut url = endpoints.authority.clone();
    url.path_segments_mut()
        .map_err(|()| {
            SetupFailure::bad_input(
                Some(Field::CloudAuthority),
                format!("{} cannot take a path", endpoints.authority),
            )
        })?
        .pop_if_empty()
        .extend([tenant, "v2.0", ".well-known", "openid-configuration"]);
    let response = http.get(url.clone()).send().await.map_err(|error| {
        SetupFailure::failed(
            Some(Field::CloudAuthority),
            format!(
                "cannot reach the sign-in server {url}: {error}; check the URL and the network"
            ),
        )
    })?;
    let status = response.status();
    if status.is_client_error() {
        return Err(SetupFailure::bad_input(
            Some(Field::CloudTenant),
            format!(
                "the tenant '{tenant}' was not found at {} (HTTP {status}); give the tenant's id (a GUID) or one of its domain names",
                endpoints.authority
            ),
        ));
    }
    let not_authority = |what: &str| {
        SetupFailure::failed(
            Some(Field::CloudAuthority),
            format!(
                "{url} did not answer as a Microsoft identity platform ({what}); the global cloud's authority is https://login.microsoftonline.com"
            ),
        )
    };
    if !status.is_success() {
        return Err(not_authority(&format!("HTTP {status}")));
    }
    let body = crate::cloud::http::read_capped(response, crate::cloud::http::MAX_TOKEN_BODY_BYTES)
        .await
        .map_err(|error| not_authority(&error.describe()))?;
    let document: Value =
        serde_json::from_slice(&body).map_err(|error| not_authority(&error.to_string()))?;
    let issuer = document
        .get("issuer")
        .and_then(Value::as_str)
        .and_then(|issuer| url::Url::parse(issuer).ok())
        .ok_or_else(|| not_authority("no issuer in its OpenID configuration"))?;
    issuer
        .path_segments()
        .and_then(|mut segments| segments.find(|segment| is_guid(segment)))
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| not_authority("its issuer names no tenant id"))
}

/// `8d2c0c52-0d3c-4d43-9a43-000000000001`.
fn is_guid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(index, c)| match index {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The domain whose naming context the domain controller serves by default: dirsync syncs it.
fn domain_of(forest: &ForestInfo) -> Result<Dn, SetupFailure> {
    Dn::parse(&forest.root_dse.default_naming_context).map_err(|error| {
        SetupFailure::failed(
            Some(Field::DirectoryServer),
            format!("the domain controller's defaultNamingContext is not a DN: {error}"),
        )
    })
}

/// Every scope DN must lie in the domain and exist there (a base read as the admin).
async fn check_scope(
    admin: &DirectoryConnection,
    domain: &Dn,
    checked: &CheckedAnswers,
) -> Result<(), SetupFailure> {
    let all = checked
        .included
        .iter()
        .map(|dn| (Field::ScopeIncluded, dn))
        .chain(checked.excluded.iter().map(|dn| (Field::ScopeExcluded, dn)));
    for (field, dn) in all {
        if !dn.is_within(domain) {
            return Err(SetupFailure::bad_input(
                Some(field),
                format!(
                    "'{dn}' is not in the domain {domain} that the domain controller serves; dirsync syncs one domain: list OUs under {domain}"
                ),
            ));
        }
        match admin
            .read_entry("check the scope", dn.as_str(), &["objectClass"])
            .await
        {
            Ok(_) => {}
            Err(DirectoryError::NoSuchObject { server, .. }) => {
                return Err(SetupFailure::bad_input(
                    Some(field),
                    format!(
                        "'{dn}' does not exist on {server}; check the DN (`dirsync ous` lists the OUs)"
                    ),
                ));
            }
            Err(error) => return Err(directory_failure(&error)),
        }
    }
    Ok(())
}

/// The rights setup granted, as an administrator would say them.
fn rights_in_words(
    domain: &Dn,
    checked: &CheckedAnswers,
    options: &DirectoryOptions,
    skipped: &[String],
) -> Vec<String> {
    let mut rights = vec![format!("Replicating Directory Changes on {domain}")];
    if options.replicate_secrets {
        rights.push(format!(
            "Replicating Directory Changes All on {domain} (password hash sync)"
        ));
    }
    if options.write_back_scope.is_some() {
        let attributes: Vec<&str> = crate::directory::permissions::WRITE_BACK_ATTRIBUTES
            .iter()
            .copied()
            .filter(|name| !skipped.iter().any(|s| s.eq_ignore_ascii_case(name)))
            .collect();
        for ou in &checked.included {
            rights.push(format!(
                "write {} on users under {ou} (hybrid write-back)",
                attributes.join(", ")
            ));
        }
        for ou in &checked.excluded {
            rights.push(format!("no write-back under {ou} (excluded)"));
        }
    }
    rights
}

fn directory_failure(error: &DirectoryError) -> SetupFailure {
    let field = match error {
        DirectoryError::InvalidCredentials { .. } | DirectoryError::EmptyPassword => {
            Some(Field::DirectoryAdminUser)
        }
        DirectoryError::UntrustedCertificate { .. } | DirectoryError::TlsSetup(_) => {
            Some(Field::DirectoryCaFile)
        }
        DirectoryError::Unreachable { .. }
        | DirectoryError::TlsHandshake { .. }
        | DirectoryError::InvalidUrl { .. } => Some(Field::DirectoryServer),
        _ => None,
    };
    if error.is_bad_input() {
        SetupFailure::bad_input(field, error.to_string())
    } else {
        SetupFailure::failed(field, error.to_string())
    }
}

fn sign_in_failure(error: &SignInError, fields: &CloudFields) -> SetupFailure {
    let bad_input = |field: Field| SetupFailure::bad_input(Some(field), error.to_string());
    match error {
        SignInError::TenantNotFound { .. } => bad_input(Field::CloudTenant),
        SignInError::UnknownApplication { .. } => bad_input(Field::CloudClientId),
        SignInError::WrongSecret { .. } | SignInError::ExpiredSecret { .. } => {
            SetupFailure::bad_input(
                Some(Field::CloudClientSecret),
                format!("{}: {error}", fields.client_secret),
            )
        }
        SignInError::NotAnAuthority { .. } => bad_input(Field::CloudAuthority),
        SignInError::Unreachable { .. } => {
            SetupFailure::failed(Some(Field::CloudAuthority), format!("{error}"))
        }
        _ => SetupFailure::failed(None, error.to_string()),
    }
}

fn graph_failure(error: GraphError, fields: &CloudFields) -> SetupFailure {
    match error {
        GraphError::SignIn(error) => sign_in_failure(&error, fields),
        GraphError::NotGraph { .. } => {
            SetupFailure::bad_input(Some(Field::CloudGraph), format!("{error}"))
        }
        GraphError::Forbidden { .. } if fields.sign_in == SignIn::App => SetupFailure::bad_input(
            Some(Field::CloudClientId),
            format!(
                "the app may not read the tenant's domains (it needs the application permission Domain.Read.All, with User.ReadWrite.All and Group.ReadWrite.All for the sync): {error}"
            ),
        ),
        error => SetupFailure::failed(None, error.to_string()),
    }
}

fn cloud_setup_failure(error: &CloudSetupError) -> SetupFailure {
    SetupFailure::failed(None, error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_recognized() {
        assert!(is_guid("8d2c0c52-0d3c-4d43-9a43-000000000001"));
        assert!(is_guid("8D2C0C52-0D3C-4D43-9A43-00000000000A"));
        assert!(!is_guid("contoso.onmicrosoft.com"));
        assert!(!is_guid("8d2c0c52-0d3c-4d43-9a43-00000000000"));
        assert!(!is_guid("8d2c0c52x0d3c-4d43-9a43-000000000001"));
    }
}
