//! The directory side of setup: the enterprise admin's check, the scope, the rights in words,
//! the password hash source and this computer's name.

use std::path::Path;
use std::time::Duration;

use crate::directory::forest::{
    AdminCheck, AdminLevel, ForestInfo, check_enterprise_admin, read_forest,
};
use crate::directory::password_hashes::{SAMBA_PRIVILEGED_SOCKET, SambaPrivilegedSocket};
use crate::directory::samba_gpg::{
    GnupgKeyring, KeyProblem, SAMBA_CONFIG, SambaGpgOption, configured_key_ids,
};
use crate::directory::setup::DirectoryOptions;
use crate::directory::{DirectoryConnection, DirectoryError, DirectoryTarget, Dn};
use crate::secret::Secret;

use super::answers::CheckedAnswers;
use super::failure::{Field, SetupFailure, directory_failure};

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
pub(super) async fn check_scope(
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
pub(super) fn rights_in_words(
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
    if options.source_anchor_scope.is_some() {
        for ou in &checked.included {
            rights.push(format!(
                "write mS-DS-ConsistencyGuid on users under {ou} (the source anchor)"
            ));
        }
    }
    rights
}

/// Opens the password hash source the answers name (Samba's privileged socket by default).
pub(super) async fn open_hash_source(
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

/// Password sync through Microsoft Graph: proves that Samba keeps new passwords encrypted
/// (smb.conf's `password hash gpg key ids`) and that this host's key decrypts them (a value
/// encrypted to each key decrypts). Says what was proven. The wizard's password step calls this.
pub async fn check_samba_gpg(
    samba_config: Option<&Path>,
    gpg_home: Option<&Path>,
) -> Result<String, SetupFailure> {
    let samba_config = samba_config.unwrap_or(Path::new(SAMBA_CONFIG)).to_owned();
    let key_ids = configured_key_ids(&samba_config).map_err(|problem| {
        let field = match problem {
            SambaGpgOption::Unreadable { .. } => Field::DirectorySambaConfig,
            SambaGpgOption::Missing { .. } => Field::OptionsPasswordSyncMode,
        };
        SetupFailure::bad_input(Some(field), problem.to_string())
    })?;
    let keyring = GnupgKeyring::new(gpg_home.map(Path::to_owned));
    let checked_ids = key_ids.clone();
    let checking = keyring.clone();
    tokio::task::spawn_blocking(move || checking.check_keys(&checked_ids))
        .await
        .map_err(|error| SetupFailure::failed(None, format!("the key check stopped: {error}")))?
        .map_err(|problem| {
            let field = match problem {
                KeyProblem::NoGnupg { .. } => None,
                _ => Some(Field::DirectoryPasswordGpgHome),
            };
            SetupFailure::bad_input(field, problem.to_string())
        })?;
    Ok(format!(
        "Samba keeps new passwords encrypted to {} ({}), and the key in {} decrypts them",
        key_ids.join(", "),
        samba_config.display(),
        keyring.describe()
    ))
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

/// This computer's name: `HOSTNAME`, else /etc/hostname, else a fixed name. It tells this
/// installation's service account and app apart from another computer's.
pub fn computer_name() -> String {
    crate::home::host_name()
}
