//! The two sides a cycle talks to, signed in as setup configured them: AD as the service
//! account, Graph as the sync app, with their secrets from the secret store.

use crate::cloud::{Credentials, FlowPolicy, GraphClient};
use crate::config::{Config, Forest};
use crate::directory::reader::{DirectoryReader, RetryPolicy};
use crate::secret_store::SecretStore;
use crate::tls::TlsTrust;

use super::types::CycleError;

/// The two sides a cycle talks to, signed in as setup configured them.
#[derive(Debug)]
pub struct Connections {
    /// The first forest's reader (password sync and hybrid write-back read there).
    pub directory: DirectoryReader,
    /// The further forests' readers, in `[[forests]]` order (README, "Several forests").
    pub further_forests: Vec<DirectoryReader>,
    pub graph: GraphClient,
}

impl Connections {
    /// Signs in as the service account and the sync app, with their secrets from the keyring.
    pub fn open(
        config: &Config,
        secrets: &dyn SecretStore,
        policy: FlowPolicy,
    ) -> Result<Connections, CycleError> {
        let graph = sync_app_client(config, secrets, policy)?;
        let mut readers = config
            .forests()
            .iter()
            .map(|forest| forest_reader(forest, secrets))
            .collect::<Result<Vec<_>, _>>()?;
        let directory = readers.remove(0);
        Ok(Connections {
            directory,
            further_forests: readers,
            graph,
        })
    }

    /// Every forest's reader, the first forest's first.
    pub fn forest_readers(&mut self) -> Vec<&mut DirectoryReader> {
        std::iter::once(&mut self.directory)
            .chain(self.further_forests.iter_mut())
            .collect()
    }

    /// The reader of the forest at `position` (0: the first forest).
    pub fn forest(&mut self, position: usize) -> &mut DirectoryReader {
        match position {
            0 => &mut self.directory,
            position => &mut self.further_forests[position - 1],
        }
    }
}

/// A forest's reader, signed in as its service account.
fn forest_reader(
    forest: &Forest<'_>,
    secrets: &dyn SecretStore,
) -> Result<DirectoryReader, CycleError> {
    let account_key = forest.service_account_key();
    let what = match forest.position {
        0 => "the service account's password".to_owned(),
        _ => format!("the service account's password in {}", forest.name()),
    };
    let password = secrets
        .load(&account_key)?
        .ok_or_else(|| CycleError::MissingSecret(secrets.missing(&what, &account_key)))?;
    Ok(DirectoryReader::new(
        forest.directory_target()?,
        forest.directory.service_account_dn.clone(),
        password,
        forest.naming_context(),
        RetryPolicy::default(),
    ))
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
