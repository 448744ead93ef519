//! The service account's reading session: signs in, reads changes, and when the connection
//! drops or the server stops answering, signs in again and repeats the read from the same cookie.
//!
//! Repeating is safe because a read changes nothing: the cookie the caller passes is the last one
//! it made durable, and a read that failed half-way handed nothing over.

use std::time::Duration;

use super::connection::{DirectoryConnection, DirectoryTarget};
use super::dn::Dn;
use super::error::DirectoryError;
use super::import::{self, ChangeBatch, DirSyncCookie};
use super::scope::SyncScope;
use crate::secret::Secret;

/// How often and how patiently to try again after a transient failure.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    /// Doubled after each failed attempt.
    pub first_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            first_delay: Duration::from_millis(500),
        }
    }
}

#[derive(Debug)]
pub struct DirectoryReader {
    target: DirectoryTarget,
    user: String,
    password: Secret,
    naming_context: Dn,
    retry: RetryPolicy,
    connection: Option<DirectoryConnection>,
    reconnects: u32,
}

impl DirectoryReader {
    pub fn new(
        target: DirectoryTarget,
        user: String,
        password: Secret,
        naming_context: Dn,
        retry: RetryPolicy,
    ) -> DirectoryReader {
        DirectoryReader {
            target,
            user,
            password,
            naming_context,
            retry,
            connection: None,
            reconnects: 0,
        }
    }

    /// How many times a broken connection was replaced.
    pub fn reconnects(&self) -> u32 {
        self.reconnects
    }

    /// Changes since `cookie` (see [`import::read_changes`]), retried on a new connection when the
    /// connection fails.
    pub async fn read_changes(
        &mut self,
        scope: &SyncScope,
        cookie: &DirSyncCookie,
    ) -> Result<ChangeBatch, DirectoryError> {
        let naming_context = self.naming_context.clone();
        let mut attempt = 1;
        loop {
            let result = match self.connection().await {
                Ok(connection) => {
                    import::read_changes(connection, &naming_context, scope, cookie).await
                }
                Err(error) => Err(error),
            };
            match result {
                Err(error) if error.is_transient() && attempt < self.retry.attempts => {
                    let delay = self.retry.first_delay * 2u32.pow(attempt - 1);
                    tracing::warn!(%error, attempt, delay_ms = delay.as_millis() as u64, "reading changes failed; trying again on a new connection");
                    if self.connection.take().is_some() {
                        self.reconnects += 1;
                    }
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// How many objects changed since `cookie` (see [`import::count_changes`]).
    pub async fn count_changes(
        &mut self,
        scope: &SyncScope,
        cookie: &DirSyncCookie,
    ) -> Result<(usize, bool), DirectoryError> {
        let naming_context = self.naming_context.clone();
        let connection = self.connection().await?;
        let counted = import::count_changes(connection, &naming_context, scope, cookie).await;
        if counted.as_ref().is_err_and(DirectoryError::is_transient) {
            // A new connection next time.
            self.connection = None;
        }
        counted
    }

    /// Registers for the DC's change notifications over the naming context (see
    /// [`DirectoryConnection::change_notifications`]).
    pub async fn change_notifications(
        &mut self,
    ) -> Result<super::connection::ChangeNotifications, DirectoryError> {
        let naming_context = self.naming_context.to_string();
        let connection = self.connection().await?;
        connection.change_notifications(&naming_context).await
    }

    /// A cookie for "now" (see [`import::current_cookie`]).
    pub async fn current_cookie(&mut self) -> Result<DirSyncCookie, DirectoryError> {
        let naming_context = self.naming_context.clone();
        let connection = self.connection().await?;
        import::current_cookie(connection, &naming_context).await
    }

    /// The open connection, signing in first if there is none.
    pub async fn connection(&mut self) -> Result<&DirectoryConnection, DirectoryError> {
        if self.connection.is_none() {
            let connection =
                DirectoryConnection::connect_and_bind(&self.target, &self.user, &self.password)
                    .await?;
            self.connection = Some(connection);
        }
        Ok(self.connection.as_ref().expect("connected above"))
    }
}
