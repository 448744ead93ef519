//! Turning sync off, cleanly (`dirsync uninstall`, the dashboard's "Stop synchronizing…"): what
//! setup made is shown first ([`preview`]) and then removed ([`uninstall`]): the sync app, the
//! service account and every right naming it, the secrets, the service, the configuration. The
//! cloud users and groups stay, optionally with their `onPremisesImmutableId` cleared so that no
//! later sync matches them (README, "Turning sync off").
//!
//! The removal can be run again after any failure: each step finds what is left (an app or an
//! account already gone counts as done), and `config.toml`, which names everything, goes last.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cloud::FlowPolicy;
use crate::cloud::GraphError;
use crate::cloud::setup::{clear_immutable_id_request, delete_sync_app, find_sync_app};
use crate::config::{Config, ConfigError};
use crate::directory::DirectoryConnection;
use crate::directory::objects::ObjectKind;
use crate::directory::permissions::objects_naming;
use crate::directory::service_account::{delete_service_account, find_known_account};
use crate::engine::connections::sync_app_client;
use crate::home::Home;
use crate::run_lock::RunLock;
use crate::secret::Secret;
use crate::secret_store::SecretStore;
use crate::store::StateStore;

use super::failure::{SetupFailure, cloud_setup_failure, directory_failure};
use super::{SetupProgress, check_admin, known_app, tenant::admin_sign_in};

/// Users whose onPremisesImmutableId is cleared between two progress notes (ten `$batch`es).
const CLEAR_SLICE: usize = 200;

/// How many numbered steps the removal reports.
pub const UNINSTALL_STEPS: usize = 5;

/// Where the package installs the service unit; it is this installation's when its `--home` is.
const UNIT_FILES: &[&str] = &[
    "/etc/systemd/system/dirsync.service",
    "/lib/systemd/system/dirsync.service",
    "/usr/lib/systemd/system/dirsync.service",
];

/// What `uninstall` will remove and what stays. Holds no secret.
#[derive(Debug, Clone, Serialize)]
pub struct UninstallPreview {
    pub config_file: PathBuf,
    pub service_account_dn: String,
    /// The objects whose permissions name the service account, when they could be read (as the
    /// service account itself); `None` with the reason in `warnings` otherwise.
    pub rights_on: Option<Vec<String>>,
    /// dirsync's app (its client id), when setup registered it; an app setup was given
    /// (`sign_in = "app"`) stays.
    pub sync_app: Option<String>,
    /// The client id setup was given and did not register: it stays.
    pub existing_app: Option<String>,
    /// Where this installation's secrets are kept, in words.
    pub secrets: Vec<String>,
    /// The systemd unit that runs this installation's service.
    pub service_unit: Option<PathBuf>,
    pub synced_users: usize,
    pub synced_groups: usize,
    /// The removal also clears the synced users' `onPremisesImmutableId`.
    pub clear_immutable_ids: bool,
    /// What will be removed, in words, in the order it happens.
    pub removes: Vec<String>,
    /// What stays, in words.
    pub stays: Vec<String>,
    pub warnings: Vec<String>,
}

/// What the removal needs besides the installation.
#[derive(Debug)]
pub struct UninstallInputs {
    /// An enterprise admin (or a domain admin of a one-domain forest): removes the account.
    pub admin_user: String,
    /// Used now, never stored.
    pub admin_password: Secret,
    pub clear_immutable_ids: bool,
}

/// What the removal did.
#[derive(Debug, Clone, Serialize)]
pub struct UninstallReport {
    pub immutable_ids_cleared: usize,
    /// `deleted`, `already-gone` or `kept` (an app setup did not register).
    pub sync_app: &'static str,
    /// `deleted` or `already-gone`.
    pub service_account: &'static str,
    /// The objects whose permissions named the account and were rewritten.
    pub rights_removed_from: Vec<String>,
    pub secrets_removed: Vec<String>,
    /// `disabled`, `not-installed`, or why it could not be stopped (also in `warnings`).
    pub service: String,
    pub config_removed: PathBuf,
    pub warnings: Vec<String>,
}

fn not_set_up(error: ConfigError) -> SetupFailure {
    match error {
        ConfigError::Missing { path } => SetupFailure::bad_input(
            None,
            format!(
                "dirsync is not set up here ({} does not exist): there is nothing to remove",
                path.display()
            ),
        ),
        error => SetupFailure::bad_input(None, error.to_string()),
    }
}

/// What [`uninstall`] would remove, read without changing anything: `config.toml`, the store's
/// links, the secret store's places, and the rights naming the service account (read as that
/// account).
pub async fn preview(
    home: &Home,
    clear_immutable_ids: bool,
) -> Result<UninstallPreview, SetupFailure> {
    let config = Config::load(&home.config_file).map_err(not_set_up)?;
    let secrets = home.secrets();
    let mut warnings = Vec::new();
    let (synced_users, synced_groups) = synced_counts(home)?;
    let rights_on = match rights_as_service_account(&config, &secrets).await {
        Ok(dns) => Some(dns),
        Err(reason) => {
            warnings.push(format!(
                "the service account's rights could not be read as that account ({reason}); the removal finds and removes them with the enterprise admin's sign-in"
            ));
            None
        }
    };
    let sync_app = known_app(&config).map(|app| app.client_id);
    let existing_app = sync_app.is_none().then(|| config.cloud.client_id.clone());
    let secrets_kept: Vec<String> = secret_keys(&config)
        .iter()
        .flat_map(|key| secrets.places(key))
        .collect();
    let service_unit = service_unit_of(home);

    let mut removes = Vec::new();
    if clear_immutable_ids && synced_users > 0 {
        removes.push(format!(
            "onPremisesImmutableId of the {synced_users} synced user(s) in the cloud: cleared, so that no later sync matches them"
        ));
    }
    if let Some(client_id) = &sync_app {
        removes.push(format!(
            "the sync app {client_id} (its service principal, certificate and roles go with it; Entra keeps it 30 days in deleted items)"
        ));
    }
    removes.push(format!(
        "the AD service account {}",
        config.directory.service_account_dn
    ));
    match &rights_on {
        Some(dns) if !dns.is_empty() => removes.push(format!(
            "its rights on {} object(s): {}",
            dns.len(),
            dns.join("; ")
        )),
        Some(_) => {}
        None => removes.push("every right naming it (found when removing)".to_owned()),
    }
    for place in &secrets_kept {
        removes.push(format!("the secret kept in {place}"));
    }
    if let Some(unit) = &service_unit {
        removes.push(format!(
            "the scheduled service: {} is stopped and disabled",
            unit.display()
        ));
    }
    removes.push(format!(
        "the configuration {} and the sync state in {} (links, change cookies)",
        home.config_file.display(),
        StateStore::location_in_words(home)
    ));

    let mut stays = vec![format!(
        "{synced_users} user(s) and {synced_groups} group(s) in the cloud, as they are now{}",
        if clear_immutable_ids {
            ""
        } else {
            " (with their onPremisesImmutableId: a later setup of this forest matches them again)"
        }
    )];
    if let Some(client_id) = &existing_app {
        stays.push(format!(
            "the app {client_id}: setup was given it (sign_in = \"app\") and did not register it; only its secret is removed from this computer"
        ));
    }
    stays.push(format!(
        "the run history and the audit trail in {}",
        StateStore::location_in_words(home)
    ));
    stays.push(
        "the tenant's directory synchronization setting (turn it off in the Entra admin center if no other sync uses it)".to_owned(),
    );
    if service_unit.is_none() {
        stays.push(
            "any service started by hand or by another unit: stop it (it finds no configuration and exits)".to_owned(),
        );
    }
    Ok(UninstallPreview {
        config_file: home.config_file.clone(),
        service_account_dn: config.directory.service_account_dn.clone(),
        rights_on,
        sync_app,
        existing_app,
        secrets: secrets_kept,
        service_unit,
        synced_users,
        synced_groups,
        clear_immutable_ids,
        removes,
        stays,
        warnings,
    })
}

/// Removes what setup made, as [`preview`] described it. Everything that only checks comes
/// first (the run lock, the enterprise admin, the cloud sign-in), so that a wrong password
/// changes nothing.
pub async fn uninstall(
    home: &Home,
    inputs: &UninstallInputs,
    progress: &mut dyn SetupProgress,
) -> Result<UninstallReport, SetupFailure> {
    let config = Config::load(&home.config_file).map_err(not_set_up)?;
    let secrets = home.secrets();
    let mut warnings = Vec::new();
    // No run starts while the installation is taken apart, and none is running now.
    let _lock = RunLock::acquire(&home.state_db)
        .map_err(|error| SetupFailure::failed(None, error.to_string()))?;

    progress.step(1, "Checking the enterprise admin");
    let target = config
        .directory_target()
        .map_err(|error| directory_failure(&error))?;
    let admin = check_admin(&target, &inputs.admin_user, &inputs.admin_password).await?;
    let domain = config.naming_context();
    let account = find_known_account(&admin.connection, &domain, &config.known_service_account())
        .await
        .map_err(|error| directory_failure(&error))?;

    progress.step(2, "Signing in to the cloud");
    let sync_app = known_app(&config);
    let cloud_admin = match &sync_app {
        Some(_) => Some(Box::pin(admin_sign_in(&config, progress)).await?.0),
        None => {
            progress.note("the sync app was not registered by setup: it stays, and no administrator sign-in is needed");
            None
        }
    };

    progress.step(3, "Clearing onPremisesImmutableId");
    let immutable_ids_cleared = if inputs.clear_immutable_ids {
        clear_immutable_ids(home, &config, &secrets, progress).await?
    } else {
        progress.note("not asked for: the cloud users keep their onPremisesImmutableId");
        0
    };

    progress.step(4, "Removing the sync app and the service account");
    let app_outcome = match (&sync_app, &cloud_admin) {
        (Some(app), Some(client)) => match find_sync_app(client, &app.client_id)
            .await
            .map_err(|error| cloud_setup_failure(&error))?
        {
            Some((application_id, display_name)) => {
                delete_sync_app(client, &application_id)
                    .await
                    .map_err(|error| cloud_setup_failure(&error))?;
                progress.note(&format!(
                    "deleted the sync app '{display_name}' ({})",
                    app.client_id
                ));
                "deleted"
            }
            None => {
                progress.note(&format!("the sync app {} is already gone", app.client_id));
                "already-gone"
            }
        },
        _ => "kept",
    };
    let (account_outcome, rights_removed_from) =
        remove_account(&admin.connection, &domain, account.as_ref(), progress).await?;
    admin.connection.close().await;

    progress.step(5, "Removing the secrets, the service and the configuration");
    let mut secrets_removed = Vec::new();
    for key in secret_keys(&config) {
        let places = secrets.places(&key);
        secrets
            .remove(&key)
            .map_err(|error| SetupFailure::failed(None, error.to_string()))?;
        secrets_removed.extend(places);
    }
    for place in &secrets_removed {
        progress.note(&format!("removed the secret kept in {place}"));
    }
    let service = match service_unit_of(home) {
        None => "not-installed".to_owned(),
        Some(unit) => match disable_service() {
            Ok(()) => {
                progress.note(&format!("stopped and disabled {}", unit.display()));
                "disabled".to_owned()
            }
            Err(reason) => {
                let text = format!(
                    "the service could not be stopped ({reason}): run `systemctl disable --now dirsync.service` as root"
                );
                progress.warning(&text);
                warnings.push(text.clone());
                text
            }
        },
    };
    StateStore::open_home(home)
        .and_then(|store| store.forget_sync_state())
        .map_err(|error| SetupFailure::failed(None, error.to_string()))?;
    // The state database's password last: the store was needed until now. Its history stays
    // in the database; a later setup asks for the password again.
    if config.store.engine == crate::config::StoreEngine::Postgresql {
        let key = crate::store::POSTGRES_PASSWORD_KEY;
        let places = secrets.places(key);
        secrets
            .remove(key)
            .map_err(|error| SetupFailure::failed(None, error.to_string()))?;
        for place in &places {
            progress.note(&format!("removed the secret kept in {place}"));
        }
        secrets_removed.extend(places);
    }
    std::fs::remove_file(&home.config_file).map_err(|error| {
        SetupFailure::failed(
            None,
            format!("cannot remove {}: {error}", home.config_file.display()),
        )
    })?;
    progress.note(&format!(
        "removed {} and the sync state; setup starts from scratch",
        home.config_file.display()
    ));
    Ok(UninstallReport {
        immutable_ids_cleared,
        sync_app: app_outcome,
        service_account: account_outcome,
        rights_removed_from,
        secrets_removed,
        service,
        config_removed: home.config_file.clone(),
        warnings,
    })
}

impl UninstallReport {
    /// The removal in one line, for the audit trail.
    pub fn in_words(&self, preview: &UninstallPreview) -> String {
        format!(
            "service account {} {}; sync app {} {}; {} onPremisesImmutableId cleared; service {}",
            preview.service_account_dn,
            self.service_account,
            preview
                .sync_app
                .as_deref()
                .or(preview.existing_app.as_deref())
                .unwrap_or("-"),
            self.sync_app,
            self.immutable_ids_cleared,
            self.service
        )
    }
}

/// The synced users and groups: the store's links.
fn synced_counts(home: &Home) -> Result<(usize, usize), SetupFailure> {
    let links = StateStore::open_home(home)
        .and_then(|store| store.links())
        .map_err(|error| SetupFailure::failed(None, error.to_string()))?;
    let users = links
        .values()
        .filter(|link| link.kind == ObjectKind::User)
        .count();
    Ok((users, links.len() - users))
}

/// The secret store's keys setup filled: the app's credential and the account's password.
fn secret_keys(config: &Config) -> [String; 2] {
    [config.app_credential_key(), config.service_account_key()]
}

/// The objects whose DACL names the service account, read as that account.
async fn rights_as_service_account(
    config: &Config,
    secrets: &dyn SecretStore,
) -> Result<Vec<String>, String> {
    let key = config.service_account_key();
    let password = secrets
        .load(&key)
        .map_err(|error| error.to_string())?
        .ok_or_else(|| "its password is not in the secret store".to_owned())?;
    let target = config
        .directory_target()
        .map_err(|error| error.to_string())?;
    let connection = DirectoryConnection::connect_and_bind(
        &target,
        &config.directory.service_account_dn,
        &password,
    )
    .await
    .map_err(|error| error.to_string())?;
    let domain = config.naming_context();
    let found = async {
        let account =
            find_known_account(&connection, &domain, &config.known_service_account()).await?;
        match account {
            Some(account) => objects_naming(&connection, &domain, &account.sid).await,
            None => Ok(Vec::new()),
        }
    }
    .await;
    connection.close().await;
    Ok(found
        .map_err(|error| error.to_string())?
        .iter()
        .map(ToString::to_string)
        .collect())
}

/// Clears `onPremisesImmutableId` of every synced user, as the sync app (which holds
/// User.ReadWrite.All), before the app is deleted.
async fn clear_immutable_ids(
    home: &Home,
    config: &Config,
    secrets: &dyn SecretStore,
    progress: &mut dyn SetupProgress,
) -> Result<usize, SetupFailure> {
    let links = StateStore::open_home(home)
        .and_then(|store| store.links())
        .map_err(|error| SetupFailure::failed(None, error.to_string()))?;
    let users: Vec<String> = links
        .values()
        .filter(|link| link.kind == ObjectKind::User)
        .map(|link| link.cloud_id.clone())
        .collect();
    if users.is_empty() {
        progress.note("no synced users");
        return Ok(0);
    }
    let client = sync_app_client(config, secrets, FlowPolicy::default()).map_err(|error| {
        SetupFailure::failed(
            None,
            format!(
                "cannot clear onPremisesImmutableId as the sync app: {error}; nothing was removed"
            ),
        )
    })?;
    // In `$batch`es through the flow control; progress after each slice of them.
    let mut cleared = 0;
    let mut done = 0;
    for slice in users.chunks(CLEAR_SLICE) {
        let requests: Vec<_> = slice
            .iter()
            .map(|user_id| clear_immutable_id_request(user_id))
            .collect();
        for (user_id, result) in slice.iter().zip(client.batch(&requests).await) {
            match result {
                Ok(_) => cleared += 1,
                // Deleted in the cloud since: nothing to clear.
                Err(GraphError::NotFound { .. }) => {}
                Err(error) => {
                    return Err(SetupFailure::failed(
                        None,
                        format!(
                            "cannot clear the onPremisesImmutableId of cloud user {user_id}: {error}; {cleared} were cleared, nothing else was removed: run uninstall again"
                        ),
                    ));
                }
            }
        }
        done += slice.len();
        progress.note(&format!("{done} of {} users", users.len()));
    }
    progress.note(&format!(
        "cleared the onPremisesImmutableId of {cleared} cloud user(s)"
    ));
    Ok(cleared)
}

async fn remove_account(
    admin: &DirectoryConnection,
    domain: &crate::directory::Dn,
    account: Option<&crate::directory::service_account::ServiceAccount>,
    progress: &mut dyn SetupProgress,
) -> Result<(&'static str, Vec<String>), SetupFailure> {
    let Some(account) = account else {
        progress.note("the service account is already gone");
        return Ok(("already-gone", Vec::new()));
    };
    let rights = objects_naming(admin, domain, &account.sid)
        .await
        .map_err(|error| directory_failure(&error))?;
    delete_service_account(admin, domain, account)
        .await
        .map_err(|error| directory_failure(&error))?;
    progress.note(&format!(
        "deleted {} and its rights on {} object(s)",
        account.dn,
        rights.len()
    ));
    Ok(("deleted", rights.iter().map(ToString::to_string).collect()))
}

/// The installed unit that runs this installation (its `ExecStart` names this home).
fn service_unit_of(home: &Home) -> Option<PathBuf> {
    let dir = home.config_file.parent()?;
    let wanted = format!("--home {}", dir.display());
    UNIT_FILES
        .iter()
        .map(Path::new)
        .find(|unit| {
            std::fs::read_to_string(unit).is_ok_and(|text| {
                text.lines()
                    .any(|line| line.starts_with("ExecStart=") && line.contains(&wanted))
            })
        })
        .map(Path::to_owned)
}

/// `systemctl disable --now dirsync.service`.
fn disable_service() -> Result<(), String> {
    let output = std::process::Command::new("systemctl")
        .args(["disable", "--now", "dirsync.service"])
        .output()
        .map_err(|error| format!("systemctl: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}
