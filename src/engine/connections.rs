//! The two sides a cycle talks to, signed in as setup configured them: AD as the service
//! account, Graph as the sync app, with their secrets from the secret store.

use crate::cloud::{Credentials, FlowPolicy, GraphClient};
use crate::config::Config;
use crate::directory::reader::{DirectoryReader, RetryPolicy};
use crate::secret_store::SecretStore;
use crate::tls::TlsTrust;

use super::types::CycleError;

/// The two sides a cycle talks to, signed in as setup configured them.
#[derive(Debug)]
pub struct Connections {
    pub directory: DirectoryReader,
    pub graph: GraphClient,
}

impl Connections {
    /// Signs in as the service account and the sync app, with their secrets from the keyring.
    pub fn open(
        config: &Config,
        secrets: &dyn SecretStore,
        policy: FlowPolicy,
    ) -> Result<Connections, CycleError> {
        let missing = |what: &str, key: &str| CycleError::MissingSecret(secrets.missing(what, key));
        let account_key = config.service_account_key();
        let password = secrets
            .load(&account_key)?
            .ok_or_else(|| missing("the service account's password", &account_key))?;
        let graph = sync_app_client(config, secrets, policy)?;
        let directory = DirectoryReader::new(
            config.directory_target()?,
            config.directory.service_account_dn.clone(),
            password,
            config.naming_context(),
            RetryPolicy::default(),
        );
        Ok(Connections { directory, graph })
    }
}

/// The sync app's Graph client, signed in with its certificate or secret from the secret store.
pub fn sync_app_client(
    config: &Config,
    secrets: &dyn SecretStore,
    policy: FlowPolicy,
) -> Result<GraphClient, CycleError> {
    let key = config.app_credential_key();
    let what = if config.cloud.certificate_thumbprint.is_some() {
        "the sync app's certificate key"
    } else {
        "the sync app's client secret"
    };
    let credential = secrets
        .load(&key)?
        .ok_or_else(|| CycleError::MissingSecret(secrets.missing(what, &key)))?;
    let endpoints = config.endpoints()?;
    let client_id = config.cloud.client_id.clone();
    let credentials = match &config.cloud.certificate_thumbprint {
        Some(thumbprint) => Credentials::Certificate {
            client_id,
            private_key: credential,
            thumbprint: thumbprint.clone(),
        },
        None => Credentials::ClientSecret {
            client_id,
            secret: credential,
        },
    };
    GraphClient::new(
        &endpoints,
        &config.cloud.tenant_id,
        credentials,
        &TlsTrust::SystemRoots,
        policy,
    )
    .map_err(CycleError::from)
}
