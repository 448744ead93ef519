//! The PostgreSQL store's connection (README, "Where the state lives"), against the lab's real
//! PostgreSQL server (`tests/lab/postgres`, started here if it is not running): TLS with the
//! server's certificate verified, clear text only on this host, the login's errors in words.
#![allow(clippy::unwrap_used)]

use dirsync::store::{StateStore, StoreConfig, StoreTls};

/// Whether the store's session with the server is encrypted, as the server sees it.
fn encrypted(store: &StateStore) -> bool {
    store
        .connection()
        .query_row(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            (),
            |row| row.get(0),
        )
        .unwrap()
}

#[test]
fn the_session_is_encrypted_and_an_untrusted_certificate_is_refused() {
    let (config, password) = dirsync::store::lab_postgres();
    let store = StateStore::open_postgres(&config, Some(&password)).unwrap();
    assert!(encrypted(&store), "the session is not encrypted");
    assert_eq!(
        store.schema_version().unwrap(),
        StateStore::latest_schema_version()
    );

    // The system's roots do not know the lab's CA: refused, saying why.
    let untrusted = StoreConfig {
        ca_file: None,
        ..config.clone()
    };
    let error = StateStore::open_postgres(&untrusted, Some(&password))
        .unwrap_err()
        .to_string();
    assert!(error.contains("certificate"), "{error}");
    assert!(error.contains("[store]"), "{error}");

    // A wrong password: PostgreSQL's own words.
    let error = StateStore::open_postgres(&config, Some("not-the-password"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("password authentication failed"), "{error}");
    assert!(!error.contains(&password));
}

#[test]
fn clear_text_is_only_for_a_server_on_this_host() {
    let (config, password) = dirsync::store::lab_postgres();
    let local = StoreConfig {
        tls: StoreTls::Off,
        ca_file: None,
        ..config.clone()
    };
    let store = StateStore::open_postgres(&local, Some(&password)).unwrap();
    assert!(!encrypted(&store));

    let remote = StoreConfig {
        host: Some("db.corp.example".to_owned()),
        ..local
    };
    let error = StateStore::open_postgres(&remote, Some(&password))
        .unwrap_err()
        .to_string();
    assert!(error.contains("tls = \"off\""), "{error}");
    assert!(error.contains("db.corp.example"), "{error}");
}
