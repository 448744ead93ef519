//! Headless setup (`dirsync setup --answers FILE`): the wizard's steps, each proven by a real call.
//!
//! Everything that only reads comes first (cloud sign-in, the enterprise admin, the scope DNs), so
//! that a wrong answer is refused before anything changes in either directory; then the service
//! account, the sync app and `config.toml` are written, each step safe to run again.
//!
//! This file holds the run of setup (`run_setup`, `apply_setup` and its steps); `tenant.rs` the
//! cloud side, `domain.rs` the directory side, `failure.rs` how a failure names its field, and
//! `answers.rs` the answers file.

pub mod answers;
pub mod prerequisites;
pub mod preview;
pub mod uninstall;

mod domain;
mod failure;
mod tenant;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cloud::auth::DeviceCodePrompt;
use crate::cloud::setup::{
    AppOutcome, client_secret_key, enable_directory_sync, set_sync_features,
};
use crate::cloud::{GraphClient, USER_ADMINISTRATOR_ROLE_ID};
use crate::config::{
    CloudConfig, Config, DirectoryConfig, ForestConfig, PasswordSyncMode, SourceAnchor, StoreEngine,
};
use crate::directory::Dn;
use crate::directory::forest::AdminLevel;
use crate::directory::password_hashes::PasswordHashSource as _;
use crate::directory::service_account::AccountOutcome;
use crate::directory::setup::{DirectoryOptions, DirectorySite, SetupError, set_up_directory};
use crate::secret::Secret;
use crate::secret_store::SecretStore;

use crate::cloud::setup::WantedExtension;
pub use domain::{
    AdminSession, check_admin, check_samba_gpg, computer_name, open_password_hash_source,
};
use domain::{check_scope, open_hash_source, rights_in_words};
pub use failure::{CloudFields, FailureKind, Field, SetupFailure};
use failure::{cloud_setup_failure, directory_failure};
pub use tenant::{
    CloudSession, RenewedCredential, check_mailbox_endpoint, check_password_hash_endpoint,
    create_sync_app, known_app, renew_app_credential, sign_in, sync_app_name,
};
use tenant::{check_cloud_options, sync_app_target};

pub use answers::{Answers, CheckedAnswers, CloudAnswers, SignIn, check_answers, parse_answers};

/// How many numbered steps setup reports.
pub const STEPS: usize = 6;

/// What setup needs besides the answers file.
#[derive(Debug)]
pub struct SetupInputs {
    /// The enterprise admin's password (used now, never stored).
    pub admin_password: Secret,
    /// The existing app's client secret, with `sign_in = "app"`.
    pub client_secret: Option<Secret>,
    /// This computer's name: it marks the service account and the sync app as this installation's.
    pub computer: String,
    /// The further forests' enterprise admins' passwords, in the answers' `[[forests]]` order
    /// (used now, never stored).
    pub forest_admin_passwords: Vec<Secret>,
    /// The PostgreSQL login's password, when `[store]` names PostgreSQL; `None`: the one the
    /// secret store keeps from an earlier setup.
    pub store_password: Option<Secret>,
}

/// Told what setup is doing while it works.
pub trait SetupProgress: Send {
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
    /// The directory extensions the sync rules write, registered on the app.
    directory_extensions: Vec<String>,
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
    // A new installation anchors by mS-DS-ConsistencyGuid; an existing one keeps its anchor,
    // whatever the answers say: another anchor would make every object look new (README, "The
    // source anchor").
    let source_anchor = match &previous {
        Some(previous) => previous.options.source_anchor,
        None => Some(
            checked
                .answers
                .options
                .source_anchor
                .unwrap_or(SourceAnchor::ConsistencyGuid),
        ),
    };
    let writes_source_anchor = source_anchor == Some(SourceAnchor::ConsistencyGuid);
    // Every further forest is checked before anything changes in any forest.
    let verified = verified_names(&cloud);
    let mut taken = vec![admin.domain.dns_name()];
    let mut further_admins = Vec::new();
    for (index, forest) in checked.forests.iter().enumerate() {
        let further = FurtherForest {
            index,
            writes_source_anchor,
            verified: &verified,
            taken: &taken,
        };
        match Box::pin(check_further_forest(forest, &further, inputs, &mut said)).await {
            Ok(forest_admin) => {
                taken.push(forest_admin.domain.dns_name());
                further_admins.push(forest_admin);
            }
            Err(failure) => {
                for forest_admin in further_admins {
                    forest_admin.connection.close().await;
                }
                admin.connection.close().await;
                return Err(failure);
            }
        }
    }

    let options = DirectoryOptions {
        replicate_secrets,
        write_back_scope: checked
            .answers
            .options
            .hybrid_write_back
            .then(|| (checked.included.clone(), checked.excluded.clone())),
        source_anchor_scope: writes_source_anchor
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
    let mut forests = Vec::new();
    for (index, (forest, forest_admin)) in checked.forests.iter().zip(further_admins).enumerate() {
        let further = FurtherForest {
            index,
            writes_source_anchor,
            verified: &verified,
            taken: &taken,
        };
        forests.push(
            Box::pin(set_up_further_forest(
                forest,
                &further,
                forest_admin,
                inputs,
                previous.as_ref(),
                secrets,
                &mut said,
            ))
            .await?,
        );
    }
    let app = sync_app_step(
        checked,
        inputs,
        cloud,
        previous.as_ref(),
        secrets,
        &mut said,
    )
    .await?;

    let mut keyring_entries = vec![app.credential_key.clone(), directory.keyring_key.clone()];
    if let Some(password) = &inputs.store_password
        && checked.answers.store.engine == StoreEngine::Postgresql
    {
        secrets
            .save(crate::store::POSTGRES_PASSWORD_KEY, password)
            .map_err(|error| SetupFailure::failed(None, error.to_string()))?;
        keyring_entries.push(crate::store::POSTGRES_PASSWORD_KEY.to_owned());
    }
    keyring_entries.extend(forests.iter().map(|(_, key)| key.clone()));
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
    config.cloud.directory_extensions = app.directory_extensions.clone();
    config.forests = forests.into_iter().map(|(forest, _)| forest).collect();
    config.options.source_anchor = source_anchor;
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

    let verified = verified_names(cloud);
    for warning in unverified_suffixes(&admin, &verified) {
        said.warn(warning);
    }

    check_store(&answers.store, inputs, said).await?;

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
        if answers.options.password_sync_mode == PasswordSyncMode::Graph {
            let proven = check_samba_gpg(
                answers.directory.samba_config.as_deref(),
                answers.directory.password_gpg_home.as_deref(),
            )
            .await?;
            said.progress.note(&proven);
            said.progress.note(
                "users get their cloud password at their next AD password change (Samba keeps only passwords set from now on); until then the dashboard's Connectors view counts them as waiting",
            );
        }
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

/// Which further forest, and what setup decided for all of them.
#[derive(Debug, Clone, Copy)]
struct FurtherForest<'a> {
    /// Its place in `[[forests]]`, for messages (`forests[0]`).
    index: usize,
    writes_source_anchor: bool,
    /// The tenant's verified domains.
    verified: &'a [String],
    /// The forests set up before it, by name: each forest is synced once.
    taken: &'a [String],
}

/// The tenant's verified domain names.
fn verified_names(cloud: &CloudSession) -> Vec<String> {
    cloud
        .verified_domains()
        .iter()
        .map(|domain| domain.name.clone())
        .collect()
}

/// A warning for each UPN suffix of the admin's forest that is not a verified cloud domain, as
/// the wizard shows them: its users get the initial domain instead (README, "Several forests").
fn unverified_suffixes(admin: &AdminSession, verified: &[String]) -> Vec<String> {
    let forest = admin.domain.dns_name();
    admin
        .forest
        .upn_suffixes()
        .into_iter()
        .filter(|suffix| !verified.iter().any(|domain| domain.eq_ignore_ascii_case(suffix)))
        .map(|suffix| {
            format!(
                "{forest}: the UPN suffix {suffix} is not a verified cloud domain; its users sign in to the cloud as name@<initial domain>.onmicrosoft.com until you verify it"
            )
        })
        .collect()
}

/// A failure of the further forest at `index`: the field it names is that forest's
/// (`forests[0].directory.admin_user`), not the first forest's.
fn in_further_forest(index: usize, mut failure: SetupFailure) -> SetupFailure {
    failure.message = match failure.field.take() {
        Some(field) => format!("forests[{index}].{}: {}", field.name(), failure.message),
        None => format!("forests[{index}]: {}", failure.message),
    };
    failure
}

/// A further forest's checks, before anything changes (README, "Several forests"): its
/// enterprise admin, that it is not a forest already listed, its UPN suffixes against the
/// tenant's verified domains, and its OUs. Returns the admin's session for
/// [`set_up_further_forest`].
async fn check_further_forest(
    forest: &CheckedAnswers,
    further: &FurtherForest<'_>,
    inputs: &SetupInputs,
    said: &mut Said<'_>,
) -> Result<AdminSession, SetupFailure> {
    let FurtherForest {
        index,
        verified,
        taken,
        ..
    } = *further;
    let in_forest = |failure| in_further_forest(index, failure);
    let answers = &forest.answers;
    let admin_password = inputs.forest_admin_passwords.get(index).ok_or_else(|| {
        SetupFailure::bad_input(
            None,
            format!(
                "forests[{index}]: no password for {}",
                answers.directory.admin_user
            ),
        )
    })?;
    said.progress.note(&format!(
        "forests[{index}]: checking {} as its enterprise admin",
        answers.directory.admin_user
    ));
    let admin = check_admin(
        &forest.directory_target,
        &answers.directory.admin_user,
        admin_password,
    )
    .await
    .map_err(in_forest)?;
    let name = admin.domain.dns_name();
    if taken.contains(&name) {
        admin.connection.close().await;
        return Err(SetupFailure::bad_input(
            None,
            format!(
                "forests[{index}]: {} serves {name}, which is already synchronized; list each forest once",
                answers.directory.server
            ),
        ));
    }
    if let AdminLevel::DomainAdminSingleDomain = admin.check.level {
        said.warn(format!(
            "{name}: {}",
            admin.check.explanation.clone().unwrap_or_default()
        ));
    }
    for warning in unverified_suffixes(&admin, verified) {
        said.warn(warning);
    }
    if let Err(failure) = check_scope(&admin.connection, &admin.domain, forest).await {
        admin.connection.close().await;
        return Err(in_forest(failure));
    }
    Ok(admin)
}

/// A further forest's own service account, with the rights to read its changes (and to write
/// the source anchor). Password sync and hybrid write-back stay the first forest's. Returns the
/// forest's configuration and the secret store's key of its account's password.
async fn set_up_further_forest(
    forest: &CheckedAnswers,
    further: &FurtherForest<'_>,
    admin: AdminSession,
    inputs: &SetupInputs,
    previous: Option<&Config>,
    secrets: &dyn SecretStore,
    said: &mut Said<'_>,
) -> Result<(ForestConfig, String), SetupFailure> {
    let index = further.index;
    let answers = &forest.answers;
    let name = admin.domain.dns_name();
    let known_account = previous
        .and_then(|previous| {
            previous
                .forests()
                .into_iter()
                .find(|known| known.position > 0 && known.name() == name)
                .map(|known| known.known_service_account())
        })
        .unwrap_or_default();
    let site = DirectorySite {
        domain: &admin.domain,
        root_domain_naming_context: &admin.forest.root_dse.root_domain_naming_context,
        schema_naming_context: &admin.forest.root_dse.schema_naming_context,
        computer: &inputs.computer,
        known_account,
    };
    let options = DirectoryOptions {
        replicate_secrets: false,
        write_back_scope: None,
        source_anchor_scope: further
            .writes_source_anchor
            .then(|| (forest.included.clone(), forest.excluded.clone())),
    };
    let directory = set_up_directory(
        &admin.connection,
        &forest.directory_target,
        &site,
        &options,
        secrets,
    )
    .await
    .map_err(|error| match error {
        SetupError::Directory(error) => in_further_forest(index, directory_failure(&error)),
        SetupError::Keyring(error) => SetupFailure::failed(None, error.to_string()),
    });
    admin.connection.close().await;
    let directory = directory?;
    said.progress.note(&format!(
        "{name}: {} {}; it signed in and read the change cookie",
        directory.account.dn,
        match directory.outcome {
            AccountOutcome::Created => "created",
            AccountOutcome::PasswordReset => "existed: its password was reset",
        }
    ));
    let forest_config = ForestConfig {
        directory: DirectoryConfig {
            server: answers.directory.server.trim().to_owned(),
            ca_file: answers.directory.ca_file.clone(),
            insecure: answers.directory.insecure,
            naming_context: admin.domain.to_string(),
            service_account_dn: directory.account.dn.to_string(),
            service_account_guid: Some(directory.account.guid.to_string()),
            timeout_secs: answers.directory.timeout_secs,
            password_hash_socket: None,
            password_gpg_home: None,
            samba_config: None,
        },
        scope: answers.scope.clone(),
        rules: answers.rules.clone(),
    };
    Ok((forest_config, directory.keyring_key))
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
            let through_graph =
                options.password_hash_sync && options.password_sync_mode == PasswordSyncMode::Graph;
            if options.password_hash_sync && !through_graph {
                set_sync_features(&client, &[("passwordSyncEnabled", true)])
                    .await
                    .map_err(|error| cloud_setup_failure(&error))?;
                said.progress
                    .note("password hash sync turned on for the tenant");
            }
            password_reset_role(&client, &app.service_principal_id, through_graph, said).await?;
            let wanted = wanted_extensions(&checked.answers.rules);
            let registered = crate::cloud::setup::register_directory_extensions(
                &client,
                &app.application_id,
                &app.client_id,
                &wanted,
            )
            .await
            .map_err(|error| cloud_setup_failure(&error))?;
            for name in &registered {
                said.progress.note(&format!(
                    "directory extension {name} registered on the sync app (the sync rules write it)"
                ));
            }
            Ok(AppStep {
                directory_extensions: wanted.into_iter().map(|wanted| wanted.name).collect(),
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
            let wanted = wanted_extensions(&checked.answers.rules);
            if let Some(extension) = wanted.first() {
                return Err(SetupFailure::failed(
                    None,
                    format!(
                        "rules: the mapping to extension_{} needs a directory extension registered on the sync app, which setup does only for dirsync's own app (sign_in = \"device-code\"); sign in that way, or leave directory extensions out of the mappings",
                        extension.name
                    ),
                ));
            }
            let key = client_secret_key(&client_id);
            secrets
                .save(&key, &secret)
                .map_err(|error| SetupFailure::failed(None, error.to_string()))?;
            said.progress.note(&format!(
                "app {client_id} will sign in with the given secret, now in the OS keyring"
            ));
            if options.password_hash_sync && options.password_sync_mode == PasswordSyncMode::Graph {
                said.warn(format!(
                    "options.password_sync_mode: with sign_in = \"app\" setup cannot assign the User Administrator role the app needs to set passwords (only a signed-in administrator can); assign it in the Entra admin center (Roles and administrators → User Administrator → Add assignments → app {client_id}), or run setup once with sign_in = \"device-code\""
                ));
            } else if options.password_hash_sync {
                said.warn(
                    "options.password_hash_sync: with sign_in = \"app\" setup cannot turn on the tenant's password sync (Graph allows that only to a signed-in administrator); run setup once with sign_in = \"device-code\", or turn it on in the Entra admin center".to_owned(),
                );
            }
            Ok(AppStep {
                directory_extensions: Vec::new(),
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

/// The directory extensions `rules` write, each for the object types whose mappings name it.
fn wanted_extensions(rules: &crate::rules::RulesConfig) -> Vec<WantedExtension> {
    let compiled = crate::rules::compile(rules).unwrap_or_default();
    let mut wanted: Vec<WantedExtension> = Vec::new();
    for (object_rules, target) in [(&compiled.users, "User"), (&compiled.groups, "Group")] {
        for name in object_rules.directory_extensions() {
            match wanted.iter_mut().find(|known| known.name == name) {
                Some(known) => known.target_objects.push(target),
                None => wanted.push(WantedExtension {
                    name: name.to_owned(),
                    target_objects: vec![target],
                }),
            }
        }
    }
    wanted
}

/// Password sync through Microsoft Graph needs the sync app to hold User Administrator (Graph
/// lets an application set passwords only with a role that may reset them); setup assigns it
/// as the signed-in administrator, and takes it back when that mode is off, so the app never
/// keeps a role it does not use.
async fn password_reset_role(
    admin_client: &GraphClient,
    service_principal_id: &str,
    wanted: bool,
    said: &mut Said<'_>,
) -> Result<(), SetupFailure> {
    if wanted {
        admin_client
            .assign_directory_role(USER_ADMINISTRATOR_ROLE_ID, service_principal_id)
            .await
            .map_err(|error| role_failure(&error, "assign"))?;
        said.progress.note(
            "the sync app holds the User Administrator role (to set synced users' passwords)",
        );
    } else {
        let removed = admin_client
            .revoke_directory_role(USER_ADMINISTRATOR_ROLE_ID, service_principal_id)
            .await
            .map_err(|error| role_failure(&error, "take back"))?;
        if removed > 0 {
            said.progress.note(
                "the sync app's User Administrator role was taken back (password sync through Microsoft Graph is off)",
            );
        }
    }
    Ok(())
}

fn role_failure(error: &crate::cloud::GraphError, what: &str) -> SetupFailure {
    let hint = if matches!(error, crate::cloud::GraphError::Forbidden { .. }) {
        " (only a Global Administrator or Privileged Role Administrator may; sign in as one)"
    } else {
        ""
    };
    SetupFailure::failed(
        Some(Field::OptionsPasswordSyncMode),
        format!("cannot {what} the sync app's User Administrator role: {error}{hint}"),
    )
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
            directory_extensions: Vec::new(),
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
            password_gpg_home: answers.directory.password_gpg_home.clone(),
            samba_config: answers.directory.samba_config.clone(),
        },
        options: answers.options.clone(),
        scope: answers.scope.clone(),
        monitoring: answers.monitoring.clone(),
        rules: answers.rules.clone(),
        forests: Vec::new(),
        store: answers.store.config(),
    }
}

/// Proves the state database `[store]` names answers, with its password, before anything
/// changes: a connection, and the schema brought to this dirsync's version.
async fn check_store(
    store: &answers::StoreAnswers,
    inputs: &SetupInputs,
    said: &mut Said<'_>,
) -> Result<(), SetupFailure> {
    if store.engine != StoreEngine::Postgresql {
        return Ok(());
    }
    let config = store.config();
    let password = match &inputs.store_password {
        Some(password) => password.clone(),
        None => {
            return Err(SetupFailure::failed(
                None,
                format!(
                    "store: the PostgreSQL login's password is missing: set {} (store.password_env) to it",
                    store.password_env()
                ),
            ));
        }
    };
    let checked = config.clone();
    let opened = tokio::task::spawn_blocking(move || {
        crate::store::StateStore::open_postgres(&checked, Some(password.expose()))
            .and_then(|store| store.schema_version())
    })
    .await
    .map_err(|error| SetupFailure::failed(None, error.to_string()))?;
    match opened {
        Ok(version) => {
            said.progress.note(&format!(
                "the state database {} answers (schema version {version})",
                config.place()
            ));
            Ok(())
        }
        Err(error) => Err(SetupFailure::failed(None, format!("store: {error}"))),
    }
}

/// After a setup, the options it turned on start over as after Entra Connect's wizard: the
/// next password cycle sends every synced user's password, and the next sync cycle reads every
/// mailbox and checks it against AD. Shared by the CLI and the wizard.
pub fn start_options_over(
    options: &crate::config::SyncOptions,
    store: &crate::store::StateStore,
) -> Result<(), crate::store::StoreError> {
    if options.password_hash_sync {
        store.reset_password_sync()?;
    }
    if options.hybrid_write_back {
        store.reset_write_back()?;
    }
    Ok(())
}
