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

/// `[store] tls`: how dirsync talks to the PostgreSQL server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreTls {
    /// TLS required, the server's certificate verified.
    #[default]
    Verify,
    /// No TLS: only to a loopback address or a Unix socket's directory.
    Off,
}

impl StoreTls {
    fn is_default(&self) -> bool {
        *self == StoreTls::Verify
    }
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
    /// PostgreSQL: TLS to the server, its certificate verified (the default), or off, which only
    /// a loopback host or a Unix socket's directory may use.
    #[serde(skip_serializing_if = "StoreTls::is_default")]
    pub tls: StoreTls,
    /// PostgreSQL: the CA file the server's certificate is checked against; the system's
    /// trusted roots when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
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

    /// Why `tls = "off"` may not be used with this host, if it may not: it would send the state
    /// (every object's values) across a network in clear text.
    pub fn plaintext_refusal(&self) -> Option<String> {
        let host = self.host.as_deref().unwrap_or("127.0.0.1");
        let local = host.starts_with('/')
            || host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|address| address.is_loopback());
        (self.tls == StoreTls::Off && !local).then(|| {
            format!(
                "[store] tls = \"off\" is only for a server on this host (a loopback address or a Unix socket's directory), not {host}: remove it to use TLS, and give the server's CA in [store] ca_file if the system does not trust it"
            )
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
