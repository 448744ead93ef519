//! What the engine's steps share, below all of them: how a run reports its progress, how it is
//! asked to stop, how it fails, and the record's word for an object's type. (The cycles in
//! `cycle.rs` and `password_cycle.rs` and the steps they call all use these.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cloud::GraphError;
use crate::directory::DirectoryError;
use crate::store::StoreError;
use crate::store::vocabulary::StepKind;

/// What a running cycle reports as it goes, for a progress line or bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Step(StepKind),
    /// Objects handled so far in the step (of `total`, when known).
    Objects {
        step: StepKind,
        done: u64,
        total: Option<u64>,
    },
}

/// Asks a running cycle to stop at its next safe point (between pages or export chunks).
#[derive(Debug, Clone, Default)]
pub struct StopSignal(Arc<AtomicBool>);

impl StopSignal {
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A secret is in none of the places dirsync keeps secrets (the message names them and how
    /// to restore it).
    #[error("{0}")]
    MissingSecret(String),
    #[error(transparent)]
    SecretStore(#[from] crate::secret_store::SecretStoreError),
    /// `config.toml`'s cloud endpoints are not usable.
    #[error(transparent)]
    Endpoints(#[from] crate::cloud::EndpointError),
    /// The Graph client could not be built (TLS, sign-in settings).
    #[error(transparent)]
    GraphClient(#[from] crate::cloud::graph::GraphSetupError),
    #[error("stopped on request")]
    Stopped,
    /// Another host holds the export lease now (promoted, or this host paused past its lease):
    /// this one stopped exporting between two batches (README, "Two hosts, one database").
    #[error(
        "{0}, so this host stopped exporting between two batches; what it sent is kept, and the host holding the lease goes on from there"
    )]
    LeaseLost(String),
}
