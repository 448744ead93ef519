//! Store writes per second, SQLite beside PostgreSQL (README, "Where the state lives"): a full
//! import's writes as a cycle makes them, one page of 1,000 objects per transaction through
//! `StateStore::save_import` with the DirSync cookie, then the same objects again (an import
//! of a scope where everything changed: every row updated). Each object is a user with the
//! attributes dirsync syncs. PostgreSQL is the lab's (`tests/lab/postgres`, over TLS on
//! loopback), in a fresh schema; SQLite a file in a temporary directory. Prints figures; asserts
//! the row count, never a time.
//!
//!     cargo bench --bench store_writes
//!     BENCH_OBJECTS=1000000 cargo bench --bench store_writes
//!
//! `cargo test --all-targets` builds this and runs it without `--bench`; it then does nothing.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::collections::BTreeMap;
use std::time::Instant;

use dirsync::cloud::ObjectKind;
use dirsync::directory::Dn;
use dirsync::directory::objects::DirectoryObject;
use dirsync::guid::Guid;
use dirsync::store::StateStore;

const PAGE: usize = 1_000;

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let count: usize = std::env::var("BENCH_OBJECTS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(100_000);
    println!("store writes: {count} users, pages of {PAGE} per transaction");
    let dir = tempfile::tempdir().unwrap();
    let sqlite = StateStore::open(&dir.path().join("state.db")).unwrap();
    measure("SQLite", &sqlite, count);
    let (config, password) = dirsync::store::lab_postgres();
    let postgres = StateStore::open_postgres(&config, Some(&password)).unwrap();
    measure("PostgreSQL", &postgres, count);
}

fn measure(engine: &str, store: &StateStore, count: usize) {
    for (pass, title) in [
        (0, "first import (inserts)"),
        (1, "every object changed (updates)"),
    ] {
        let started = Instant::now();
        for first in (0..count).step_by(PAGE) {
            let page: Vec<DirectoryObject> = (first..(first + PAGE).min(count))
                .map(|index| user(index, pass))
                .collect();
            let cookie = format!("cookie-{pass}-{first}");
            store
                .save_import(
                    &page,
                    &[],
                    Some(("directory-dirsync-cookie", cookie.as_bytes())),
                    0,
                )
                .unwrap();
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "  {engine:<10} {title:<32} {seconds:>7.2} s  {:>9.0} objects/s",
            count as f64 / seconds
        );
    }
    let kept: u64 = store.object_counts().unwrap().values().sum();
    assert_eq!(kept, count as u64);
}

fn user(index: usize, pass: usize) -> DirectoryObject {
    let alias = format!("user{index:07}");
    let mut attributes: BTreeMap<String, Vec<String>> = [
        ("sAMAccountName", alias.clone()),
        ("userPrincipalName", format!("{alias}@contoso.test")),
        ("mail", format!("{alias}@contoso.test")),
        ("displayName", format!("User {index:07}")),
        ("givenName", "User".to_owned()),
        ("sn", format!("{index:07}")),
        ("title", format!("Title {}", (index + pass) % 40)),
        ("department", format!("Department {}", index % 25)),
        ("company", "Contoso".to_owned()),
        ("telephoneNumber", format!("+1 555 {:04}", index % 10_000)),
        ("streetAddress", format!("{} Main Street", index % 900 + 1)),
        ("l", "Seattle".to_owned()),
        ("postalCode", "98101".to_owned()),
        ("employeeID", format!("E{index:07}")),
        ("userAccountControl", "512".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), vec![value]))
    .collect();
    attributes.insert(
        "proxyAddresses".to_owned(),
        vec![
            format!("SMTP:{alias}@contoso.test"),
            format!("smtp:{alias}@contoso.onmicrosoft.com"),
        ],
    );
    let mut bytes = [0x5a; 16];
    bytes[8..].copy_from_slice(&(index as u64).to_be_bytes());
    DirectoryObject {
        anchor: Guid(bytes),
        dn: Dn::parse(&format!(
            "CN=User {index:07},OU=Dept{},OU=Corp,DC=corp,DC=contoso,DC=test",
            index % 25
        ))
        .unwrap(),
        kind: ObjectKind::User,
        attributes,
        object_sid: None,
        problems: Vec::new(),
    }
}
