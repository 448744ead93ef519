//! `[store]` in `config.toml`: which database keeps the state (README, "Where the state
//! lives"). Here rather than in `config` so the store needs nothing of the configuration.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The state database's engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreEngine {
    /// `state.db` in the home directory.
    #[default]
    Sqlite,
    /// A database on a PostgreSQL server; its login's password is a secret
    /// (`store::POSTGRES_PASSWORD_KEY`).
    Postgresql,
}

/// `[store]`: which database keeps the state. The PostgreSQL fields default to
/// 127.0.0.1:5432, database and login `dirsync`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    pub engine: StoreEngine,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The schema dirsync's tables go in (made if missing); PostgreSQL's search path
    /// (`public`) when unset. Several installations can share one database this way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// PostgreSQL: how long the export lease lasts unrenewed before a standby host takes over
    /// (README, "Two hosts, one database"); default twice the sync interval, at least a minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_secs: Option<u64>,
}

impl StoreConfig {
    pub fn is_default(&self) -> bool {
        *self == StoreConfig::default()
    }

    /// The `[store]` of the configuration at `path`: the default when there is no file yet or
    /// it names none. Only this table is read, so a store can be opened (the dashboard, `runs`)
    /// while the rest of the file is being set up; `Config::load` checks the whole file.
    pub fn read(path: &Path) -> StoreConfig {
        #[derive(Deserialize)]
        struct OnlyStore {
            #[serde(default)]
            store: StoreConfig,
        }
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| toml::from_str::<OnlyStore>(&text).ok())
            .map(|only| only.store)
            .unwrap_or_default()
    }

    /// How long the export lease lasts unrenewed, in milliseconds; `None` where there is no
    /// lease (SQLite: one host).
    pub fn lease_ms(&self, interval_minutes: u64) -> Option<i64> {
        (self.engine == StoreEngine::Postgresql).then(|| {
            let secs = self
                .lease_secs
                .unwrap_or_else(|| (interval_minutes * 120).max(60));
            secs.max(1) as i64 * 1000
        })
    }

    /// The server and database, in words, for messages.
    pub fn place(&self) -> String {
        match self.engine {
            StoreEngine::Sqlite => "state.db".to_owned(),
            StoreEngine::Postgresql => format!(
                "postgresql://{}@{}:{}/{}{}",
                self.user.as_deref().unwrap_or("dirsync"),
                self.host.as_deref().unwrap_or("127.0.0.1"),
                self.port.unwrap_or(5432),
                self.database.as_deref().unwrap_or("dirsync"),
                self.schema
                    .as_deref()
                    .map(|schema| format!(" (schema {schema})"))
                    .unwrap_or_default()
            ),
        }
    }
}
