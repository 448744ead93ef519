//! The state store: run history and sync positions, in SQLite (`state.db` in the home directory,
//! the default) or in a PostgreSQL database `config.toml` names (README, "Where the state
//! lives"). Knows nothing of the GUI. Schema changes are numbered migrations, each applied in its
//! own transaction together with the version it brings the database to; PostgreSQL starts from
//! one baseline that equals SQLite's first fourteen, and every later number comes as a pair.

pub mod audit;
pub mod browse;
pub mod db;
pub mod export_lease;
pub mod monitoring;
pub mod password_sync;
mod postgres_tls;
pub mod runs;
pub mod scheduler_lease;
pub mod settings;
pub mod sync_state;
pub mod vocabulary;
pub mod write_back;

use std::path::{Path, PathBuf};
use std::time::Duration;

use parking_lot::{ReentrantMutex, ReentrantMutexGuard};
use rusqlite::TransactionBehavior;

pub use self::db::{Connection, DbError, Dialect};
pub use self::settings::{StoreConfig, StoreEngine, StoreTls};
use crate::home::Home;
use crate::secret_store::SecretStore;

/// The migrations, in order. Entry `i` brings the schema from version `i` to `i + 1`.
/// Never edit a released migration; add a new one.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_run_records.sql"),
    include_str!("migrations/0002_sync_state.sql"),
    include_str!("migrations/0003_password_sync.sql"),
    include_str!("migrations/0004_write_back.sql"),
    include_str!("migrations/0005_dashboard.sql"),
    include_str!("migrations/0006_create_intents.sql"),
    include_str!("migrations/0007_disabled_links.sql"),
    include_str!("migrations/0008_group_matches.sql"),
    include_str!("migrations/0009_password_waiting.sql"),
    include_str!("migrations/0010_trace_and_push_triggers.sql"),
    include_str!("migrations/0011_held_disabled.sql"),
    include_str!("migrations/0012_audit.sql"),
    include_str!("migrations/0013_alerts.sql"),
    include_str!("migrations/0014_forest_steps.sql"),
    include_str!("migrations/0015_export_lease.sql"),
    include_str!("migrations/0016_scheduler_lease_per_host.sql"),
];

/// PostgreSQL's migrations: the version each brings the database to, and its SQL. The baseline
/// brings an empty database to SQLite's version 14 at once.
const POSTGRES_MIGRATIONS: &[(u32, &str)] = &[
    (14, include_str!("migrations/postgres/0014_baseline.sql")),
    (
        15,
        include_str!("migrations/postgres/0015_export_lease.sql"),
    ),
    (
        16,
        include_str!("migrations/postgres/0016_scheduler_lease_per_host.sql"),
    ),
];

/// The secret-store key of the PostgreSQL login's password.
pub const POSTGRES_PASSWORD_KEY: &str = "state-database-password";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the state database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the state database {path} has schema version {found}, newer than this dirsync knows ({known}); run a newer dirsync"
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        known: u32,
    },
    #[error("migrating the state database {path} to version {version} failed: {source}")]
    Migration {
        path: PathBuf,
        version: u32,
        source: DbError,
    },
    #[error(
        "cannot connect to the state database {place}: {source}; check [store] in config.toml and that the server accepts this host"
    )]
    Connect { place: String, source: DbError },
    #[error("the state database's password is not stored: {0}")]
    Password(String),
    #[error("state database error: {0}")]
    Database(#[from] DbError),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Database(DbError::Sqlite(error))
    }
}

/// The state store, on SQLite or PostgreSQL. One per process and home directory.
#[derive(Debug)]
pub struct StateStore {
    /// Re-entrant: a store method may call another while it holds the connection. The lock
    /// makes the store `Sync`, so a cycle's future can run as a task on main's runtime
    /// (ARCHITECTURE.md, "The window").
    connection: ReentrantMutex<Connection>,
    /// The SQLite file, or the PostgreSQL server and database in words.
    path: PathBuf,
}

impl StateStore {
    /// The store `config.toml` names in `home` (SQLite in the home directory when it names none
    /// or does not exist yet), its password read from the secret store.
    pub fn open_home(home: &Home) -> Result<Self, StoreError> {
        let config = StoreConfig::read(&home.config_file);
        match config.engine {
            StoreEngine::Sqlite => Self::open(&home.state_db),
            StoreEngine::Postgresql => {
                let secrets = crate::secret_store::SystemSecrets::for_home(&home.credentials_dir);
                let password = secrets
                    .load(POSTGRES_PASSWORD_KEY)
                    .map_err(|error| StoreError::Password(error.to_string()))?
                    .ok_or_else(|| {
                        StoreError::Password(
                            secrets.missing("The state database's password", POSTGRES_PASSWORD_KEY),
                        )
                    })?;
                Self::open_postgres(&config, Some(password.expose()))
            }
        }
    }

    /// Whether `home` has a state store yet: its SQLite file, or a PostgreSQL database its
    /// configuration names (made on first use).
    pub fn exists(home: &Home) -> bool {
        StoreConfig::read(&home.config_file).engine == StoreEngine::Postgresql
            || home.state_db.exists()
    }

    /// Where `home`'s state lives, in words: its SQLite file, or the PostgreSQL database its
    /// configuration names.
    pub fn location_in_words(home: &Home) -> String {
        let config = StoreConfig::read(&home.config_file);
        match config.engine {
            StoreEngine::Sqlite => home.state_db.display().to_string(),
            StoreEngine::Postgresql => config.place(),
        }
    }

    /// Connects to the PostgreSQL database `config` names and brings its schema up to date.
    pub fn open_postgres(config: &StoreConfig, password: Option<&str>) -> Result<Self, StoreError> {
        let place = config.place();
        let mut settings = postgres::Config::new();
        settings
            .host(config.host.as_deref().unwrap_or("127.0.0.1"))
            .port(config.port.unwrap_or(5432))
            .dbname(config.database.as_deref().unwrap_or("dirsync"))
            .user(config.user.as_deref().unwrap_or("dirsync"))
            .application_name("dirsync")
            .connect_timeout(Duration::from_secs(10));
        if let Some(password) = password {
            settings.password(password);
        }
        if let Some(schema) = &config.schema {
            if !is_plain_identifier(schema) {
                return Err(StoreError::Connect {
                    place,
                    source: DbError::Settings(format!(
                        "[store] schema '{schema}' is not a plain name: use lowercase letters, digits and _, starting with a letter"
                    )),
                });
            }
            settings.options(&format!("-c search_path={schema}"));
        }
        if let Some(refusal) = config.plaintext_refusal() {
            return Err(StoreError::Connect {
                place,
                source: DbError::Settings(refusal),
            });
        }
        let tls = match config.tls {
            StoreTls::Verify => {
                let trust = match &config.ca_file {
                    Some(path) => crate::tls::TlsTrust::CaFile(path.clone()),
                    None => crate::tls::TlsTrust::SystemRoots,
                };
                let client =
                    crate::tls::client_config(&trust).map_err(|error| StoreError::Connect {
                        place: place.clone(),
                        source: DbError::Settings(format!("[store] ca_file: {error}")),
                    })?;
                Some(postgres_tls::RustlsConnector::new(client))
            }
            StoreTls::Off => None,
        };
        let connection = Connection::postgres(settings, tls).map_err(|source| {
            let certificate = source.to_string().contains("certificate");
            StoreError::Connect {
                place: if certificate {
                    format!(
                        "{place} (its TLS certificate is not trusted: give the CA that issued it in [store] ca_file)"
                    )
                } else {
                    place.clone()
                },
                source,
            }
        })?;
        if let Some(schema) = &config.schema {
            connection.execute_batch(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))?;
        }
        migrate_postgres(&connection, &place)?;
        Ok(StateStore {
            connection: ReentrantMutex::new(connection),
            path: PathBuf::from(place),
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.connection().dialect()
    }

    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent() {
            // A missing home directory is created; a failure shows up as the open error below.
            let _ = std::fs::create_dir_all(parent);
        }
        let connection = rusqlite::Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        let store = Self::prepare(connection, path.to_owned())?;
        // The run history names every object and value: the owner's only. The WAL files
        // exist once the database is in WAL mode.
        for file in [
            path.to_owned(),
            path.with_extension("db-wal"),
            path.with_extension("db-shm"),
        ] {
            if let Err(error) = crate::hardening::restrict_to_owner(&file) {
                tracing::warn!(file = %file.display(), %error, "cannot make the file private");
            }
        }
        Ok(store)
    }

    /// An empty store for tests: SQLite in memory, or PostgreSQL in a schema of its own when
    /// `DIRSYNC_TEST_STORE` says so (`test_postgres`).
    #[cfg(test)]
    pub fn open_scratch() -> Result<Self, StoreError> {
        match test_postgres() {
            Some((config, password)) => Self::open_postgres(&config, Some(&password)),
            None => Self::open_in_memory(),
        }
    }

    /// A private in-memory store, for tests and previews.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::prepare(
            rusqlite::Connection::open_in_memory()?,
            PathBuf::from(":memory:"),
        )
    }

    fn prepare(mut connection: rusqlite::Connection, path: PathBuf) -> Result<Self, StoreError> {
        // WAL lets the dashboard read while a run writes; the busy timeout covers the scheduler
        // service and the window touching the file at the same moment.
        connection.busy_timeout(Duration::from_secs(10))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        // Migrations run with foreign keys off (rusqlite's SQLite turns them on by default): one
        // that rebuilds a table (SQLite's way to change a constraint) must not cascade its drop
        // to the rows that reference it.
        connection.pragma_update(None, "foreign_keys", "OFF")?;
        migrate(&mut connection, &path, MIGRATIONS)?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        Ok(StateStore {
            connection: ReentrantMutex::new(Connection::sqlite(connection)),
            path,
        })
    }

    pub fn schema_version(&self) -> Result<u32, StoreError> {
        let connection = self.connection();
        Ok(match connection.as_sqlite() {
            Some(sqlite) => user_version(sqlite)?,
            None => postgres_version(&connection)?,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The latest schema version this build knows.
    pub fn latest_schema_version() -> u32 {
        MIGRATIONS.len() as u32
    }

    /// Direct access for the parts of dirsync that read and write run records.
    pub fn connection(&self) -> ReentrantMutexGuard<'_, Connection> {
        self.connection.lock()
    }
}

/// Whether `name` can be a PostgreSQL schema name as it is, unquoted.
pub fn is_plain_identifier(name: &str) -> bool {
    name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// For tests: when `DIRSYNC_TEST_STORE` is `postgresql`, `lab_postgres()`. `None`: the tests
/// use SQLite.
#[doc(hidden)]
pub fn test_postgres() -> Option<(StoreConfig, String)> {
    (std::env::var("DIRSYNC_TEST_STORE").ok()?.as_str() == "postgresql").then(lab_postgres)
}

/// For tests: a `[store]` on the lab's PostgreSQL server (tests/lab/postgres, started if it is
/// not running) in a schema no one used yet, and the login's password.
#[doc(hidden)]
pub fn lab_postgres() -> (StoreConfig, String) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SCHEMAS: AtomicU32 = AtomicU32::new(0);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/postgres");
    let output = std::process::Command::new(&script)
        .arg("up")
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", script.display()));
    assert!(output.status.success(), "tests/lab/postgres up failed");
    let server: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("tests/lab/postgres prints JSON");
    let text = |key: &str| server[key].as_str().map(str::to_owned);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or_default();
    let config = StoreConfig {
        engine: StoreEngine::Postgresql,
        host: text("host"),
        port: server["port"].as_u64().map(|port| port as u16),
        database: text("database"),
        user: text("user"),
        lease_secs: None,
        tls: StoreTls::Verify,
        ca_file: text("ca_file").map(PathBuf::from),
        schema: Some(format!(
            "t_{}_{}_{nanos}",
            std::process::id(),
            SCHEMAS.fetch_add(1, Ordering::Relaxed)
        )),
    };
    (config, text("password").expect("a password"))
}

/// The version a PostgreSQL database's schema is at: 0 when it has none yet.
fn postgres_version(connection: &Connection) -> Result<u32, DbError> {
    let exists: bool = connection.query_row(
        "SELECT to_regclass('dirsync_schema') IS NOT NULL",
        (),
        |row| row.get(0),
    )?;
    if !exists {
        return Ok(0);
    }
    connection.query_row("SELECT version FROM dirsync_schema", (), |row| row.get(0))
}

/// Applies the PostgreSQL migrations the database has not seen, each in one transaction that
/// holds an advisory lock first: two hosts starting on a new database apply each once.
fn migrate_postgres(connection: &Connection, place: &str) -> Result<u32, StoreError> {
    let known = StateStore::latest_schema_version();
    let failed = |version: u32| {
        move |source: DbError| StoreError::Migration {
            path: PathBuf::from(place),
            version,
            source,
        }
    };
    // Every open of the store comes here (the dashboard's reads among them): a database already
    // at this version needs no transaction and no lock.
    if postgres_version(connection)? == known {
        return Ok(known);
    }
    loop {
        let transaction = connection.unchecked_transaction()?;
        // The lock's key: "dirsync" in ASCII, any number would do as long as it is fixed.
        transaction.execute_batch("SELECT pg_advisory_xact_lock(7235441815140721)")?;
        let version = postgres_version(&transaction)?;
        if version > known {
            return Err(StoreError::TooNew {
                path: PathBuf::from(place),
                found: version,
                known,
            });
        }
        let Some((target, sql)) = POSTGRES_MIGRATIONS
            .iter()
            .find(|(target, _)| *target > version)
        else {
            transaction.commit()?;
            return Ok(version);
        };
        transaction.execute_batch(sql).map_err(failed(*target))?;
        transaction
            .execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS dirsync_schema (version BIGINT NOT NULL);
                 DELETE FROM dirsync_schema;
                 INSERT INTO dirsync_schema (version) VALUES ({target});"
            ))
            .map_err(failed(*target))?;
        transaction.commit().map_err(failed(*target))?;
        tracing::info!(version = target, "state database migrated");
    }
}

fn user_version(connection: &rusqlite::Connection) -> rusqlite::Result<u32> {
    connection.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Applies the migrations the database has not seen, each in one transaction. Each takes the
/// write lock before it reads the version, so two processes opening a new database at once (the
/// service and the window, say) apply each migration once: the second finds it done.
fn migrate(
    connection: &mut rusqlite::Connection,
    path: &Path,
    migrations: &[&str],
) -> Result<u32, StoreError> {
    let known = migrations.len() as u32;
    loop {
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version = user_version(&transaction)?;
        if version > known {
            return Err(StoreError::TooNew {
                path: path.to_owned(),
                found: version,
                known,
            });
        }
        if version == known {
            transaction.commit()?;
            return Ok(version);
        }
        let target = version + 1;
        let failed = |source: rusqlite::Error| StoreError::Migration {
            path: path.to_owned(),
            version: target,
            source: source.into(),
        };
        transaction
            .execute_batch(migrations[version as usize])
            .map_err(failed)?;
        transaction
            .pragma_update(None, "user_version", target)
            .map_err(failed)?;
        transaction.commit().map_err(failed)?;
        tracing::info!(version = target, "state database migrated");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::vocabulary::{RunMode, RunStatus, RunTrigger, StepKind};

    #[test]
    fn an_empty_database_migrates_to_the_latest_version() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("home").join("state.db");
        let store = StateStore::open(&path).expect("open");
        assert_eq!(
            store.schema_version().expect("version"),
            StateStore::latest_schema_version()
        );
        let tables: Vec<String> = store
            .connection()
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .expect("prepare")
            .query_map((), |row| row.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        for table in [
            "object_changes",
            "run_errors",
            "run_steps",
            "runs",
            "sync_cursors",
        ] {
            assert!(
                tables.iter().any(|t| t == table),
                "{table} missing: {tables:?}"
            );
        }
        drop(store);
        // Opening again applies nothing and keeps the version.
        let again = StateStore::open(&path).expect("reopen");
        assert_eq!(
            again.schema_version().expect("version"),
            StateStore::latest_schema_version()
        );
    }

    #[test]
    fn the_schema_accepts_every_run_word_and_refuses_others() {
        let store = StateStore::open_scratch().expect("open");
        let db = store.connection();
        for trigger in RunTrigger::ALL {
            for mode in RunMode::ALL {
                for status in RunStatus::ALL {
                    db.execute(
                        "INSERT INTO runs (trigger, mode, status, started_at) VALUES (?1, ?2, ?3, 0)",
                        (trigger.as_str(), mode.as_str(), status.as_str()),
                    )
                    .expect("every known word is accepted");
                }
            }
        }
        for (position, step) in StepKind::ALL.iter().enumerate() {
            db.execute(
                "INSERT INTO run_steps (run_id, position, step, started_at) VALUES (1, ?1, ?2, 0)",
                (position as i64, step.as_str()),
            )
            .expect("step accepted");
        }
        let refused = db.execute(
            "INSERT INTO runs (trigger, mode, status, started_at) VALUES ('cli', 'delta', 'done', 0)",
            (),
        );
        assert!(refused.is_err(), "an unknown status must be refused");
    }

    #[test]
    fn two_processes_opening_a_new_database_at_once_both_get_it_migrated() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.db");
        let openers: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || StateStore::open(&path).map(|_| ()))
            })
            .collect();
        for opener in openers {
            opener
                .join()
                .expect("no panic")
                .expect("every opener gets a migrated database");
        }
        let store = StateStore::open(&path).expect("open");
        assert_eq!(
            store.schema_version().expect("version"),
            StateStore::latest_schema_version()
        );
    }

    #[test]
    fn a_failing_migration_rolls_back_and_names_its_version() {
        let mut connection = rusqlite::Connection::open_in_memory().expect("open");
        let path = Path::new("test.db");
        let migrations = [
            "CREATE TABLE a (x INTEGER);",
            "CREATE TABLE b (x INTEGER); SELECT * FROM missing;",
        ];
        let error = migrate(&mut connection, path, &migrations).expect_err("second fails");
        assert!(
            matches!(error, StoreError::Migration { version: 2, .. }),
            "{error}"
        );
        assert_eq!(user_version(&connection).expect("version"), 1);
        let b_exists: i64 = connection
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'b'",
                (),
                |row| row.get(0),
            )
            .expect("query");
        assert_eq!(
            b_exists, 0,
            "the failed migration's table must be rolled back"
        );
    }

    #[test]
    fn rebuilding_the_runs_table_keeps_every_run_and_what_references_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.db");
        {
            // A database as the dirsync before the trace and push triggers left it.
            let mut connection = rusqlite::Connection::open(&path).expect("open");
            migrate(&mut connection, &path, &MIGRATIONS[..9]).expect("old migrations");
            connection
                .execute_batch(
                    "INSERT INTO runs (id, trigger, mode, status, started_at, throttled)
                         VALUES (7, 'cli', 'delta', 'success', 1, 3);
                     INSERT INTO run_steps (run_id, position, step, started_at, adds)
                         VALUES (7, 0, 'cloud-export', 1, 5);",
                )
                .expect("rows");
        }
        let store = StateStore::open(&path).expect("migrated");
        let connection = store.connection();
        let (trigger, throttled, adds): (String, i64, i64) = connection
            .query_row(
                "SELECT r.trigger, r.throttled, s.adds FROM runs r JOIN run_steps s ON s.run_id = r.id",
                (),
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .expect("the run and its step are still there");
        assert_eq!((trigger.as_str(), throttled, adds), ("cli", 3, 5));
        connection
            .execute(
                "INSERT INTO runs (trigger, mode, status, started_at) VALUES ('push', 'delta', 'running', 2)",
                (),
            )
            .expect("the new trigger is allowed");
        // Foreign keys are on again: deleting the run takes its steps along.
        connection
            .execute("DELETE FROM runs WHERE id = 7", ())
            .expect("delete");
        let steps: i64 = connection
            .query_row("SELECT count(*) FROM run_steps", (), |row| row.get(0))
            .expect("count");
        assert_eq!(steps, 0);
    }

    #[test]
    fn a_database_from_a_newer_dirsync_is_refused() {
        let mut connection = rusqlite::Connection::open_in_memory().expect("open");
        connection
            .pragma_update(None, "user_version", 99)
            .expect("set");
        let error = migrate(&mut connection, Path::new("x.db"), MIGRATIONS).expect_err("too new");
        assert!(error.to_string().contains("newer"), "{error}");
    }
}
