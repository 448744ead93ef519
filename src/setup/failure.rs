//! Why setup stopped: the field a failure belongs to, whether the administrator or a server
//! is at fault, and how the adapters' errors become setup failures.

use crate::cloud::setup::CloudSetupError;
use crate::cloud::{GraphError, SignInError};
use crate::directory::DirectoryError;

use super::answers::{CheckedAnswers, SignIn};

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
    DirectorySambaConfig,
    DirectoryPasswordGpgHome,
    OptionsPasswordHashSync,
    OptionsPasswordSyncMode,
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
        (Field::DirectorySambaConfig, "directory.samba_config"),
        (
            Field::DirectoryPasswordGpgHome,
            "directory.password_gpg_home",
        ),
        (Field::OptionsPasswordHashSync, "options.password_hash_sync"),
        (Field::OptionsPasswordSyncMode, "options.password_sync_mode"),
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
    pub(super) fn of(checked: &CheckedAnswers) -> CloudFields {
        CloudFields {
            sign_in: checked.answers.cloud.sign_in,
            client_secret: format!("the client secret in {}", checked.client_secret_env()),
        }
    }
}

pub(super) fn directory_failure(error: &DirectoryError) -> SetupFailure {
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

pub(super) fn sign_in_failure(error: &SignInError, fields: &CloudFields) -> SetupFailure {
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

pub(super) fn graph_failure(error: GraphError, fields: &CloudFields) -> SetupFailure {
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

pub(super) fn cloud_setup_failure(error: &CloudSetupError) -> SetupFailure {
    SetupFailure::failed(None, error.to_string())
}
