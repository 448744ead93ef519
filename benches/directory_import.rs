//! Directory import benchmark (target: within 1.2× of ldapsearch): on a lab seeded with 20,000 users, dirsync's full import
//! beside `ldapsearch` paging the same entries and attributes over LDAPS, and the incremental
//! (DirSync) read with 0 and with 100 changed users. Prints figures; asserts nothing about time.
//!
//!     cargo bench --bench directory_import            (brings the 20k lab up; ~1 min cold)
//!     BENCH_USERS=5000 cargo bench --bench directory_import
//!
//! `cargo test --all-targets` builds this and runs it without `--bench`; it then does nothing.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Lab, lab_up};
use dirsync::directory::import::{self, FullImport, USERS_AND_GROUPS_FILTER};
use dirsync::directory::objects::OBJECT_ATTRIBUTES;
use dirsync::directory::scope::SyncScope;
use dirsync::directory::{DirectoryConnection, DirectoryTarget, Dn};
use dirsync::secret::Secret;
use dirsync::tls::TlsTrust;

const ROUNDS: usize = 3;

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let users: usize = std::env::var("BENCH_USERS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20_000);
    let ous = (users / 200).max(1);
    eprintln!("bench: bringing the lab up with {users} users in {ous} OUs");
    let lab = lab_up(&[
        "--extra-users",
        &users.to_string(),
        "--extra-ous",
        &ous.to_string(),
    ]);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(&lab, users));
}

async fn run(lab: &Lab, users: usize) {
    let target = DirectoryTarget::new(
        &lab.ldaps_url,
        TlsTrust::CaFile(lab.ca_file.clone()),
        Duration::from_secs(60),
    )
    .unwrap();
    let password = Secret::new(lab.admin_password.clone());
    let bench_ou = Dn::parse(&format!("OU=Bench,{}", lab.base_dn)).unwrap();
    let domain = Dn::parse(&lab.base_dn).unwrap();
    let scope = SyncScope::new(vec![bench_ou.clone()], Vec::new());

    println!(
        "directory import: {users} users, {} attributes requested, LDAPS, page size 1000, best of {ROUNDS}",
        OBJECT_ATTRIBUTES.len()
    );
    let mut dirsync_times = Vec::new();
    let mut ldapsearch_times = Vec::new();
    for _ in 0..ROUNDS {
        // Each side opens its own connection and binds, as in a real run.
        let started = Instant::now();
        let connection = DirectoryConnection::connect_and_bind(&target, &lab.admin_upn, &password)
            .await
            .unwrap();
        let mut full_import = FullImport::new(&connection, &scope);
        let mut count = 0;
        while let Some(page) = full_import.next_page().await.unwrap() {
            count += page.len();
        }
        dirsync_times.push(started.elapsed());
        assert_eq!(count, users, "dirsync read every bench user");
        connection.close().await;

        let started = Instant::now();
        let entries = ldapsearch(lab, bench_ou.as_str());
        ldapsearch_times.push(started.elapsed());
        assert_eq!(entries, users, "ldapsearch read every bench user");
    }
    let dirsync_best = *dirsync_times.iter().min().unwrap();
    let ldapsearch_best = *ldapsearch_times.iter().min().unwrap();
    println!(
        "  dirsync full import   {:>8.2} s   (rounds: {})",
        dirsync_best.as_secs_f64(),
        seconds(&dirsync_times)
    );
    println!(
        "  ldapsearch paged      {:>8.2} s   (rounds: {})",
        ldapsearch_best.as_secs_f64(),
        seconds(&ldapsearch_times)
    );
    println!(
        "  ratio dirsync / ldapsearch: {:.2} (target at most 1.20)",
        dirsync_best.as_secs_f64() / ldapsearch_best.as_secs_f64()
    );

    // Incremental reads: the DirSync search plus re-reading each changed object.
    let connection = DirectoryConnection::connect_and_bind(&target, &lab.admin_upn, &password)
        .await
        .unwrap();
    let cookie = import::current_cookie(&connection, &domain).await.unwrap();
    let started = Instant::now();
    let batch = import::read_changes(&connection, &domain, &scope, &cookie)
        .await
        .unwrap();
    let nothing_changed = started.elapsed();
    assert!(batch.changes.is_empty());
    modify_users(lab, 100);
    let started = Instant::now();
    let batch = import::read_changes(&connection, &domain, &scope, &batch.cookie)
        .await
        .unwrap();
    let hundred_changed = started.elapsed();
    assert_eq!(batch.changes.len(), 100);
    println!("incremental read (DirSync), {users} users in the directory (target under 0.5 s):");
    println!(
        "  0 changed users       {:>8.3} s",
        nothing_changed.as_secs_f64()
    );
    println!(
        "  100 changed users     {:>8.3} s",
        hundred_changed.as_secs_f64()
    );
}

fn seconds(times: &[Duration]) -> String {
    times
        .iter()
        .map(|time| format!("{:.2}", time.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ldapsearch` paging the same entries and attributes over LDAPS; returns the entry count.
fn ldapsearch(lab: &Lab, base: &str) -> usize {
    let output = Command::new("ldapsearch")
        .env("LDAPTLS_CACERT", &lab.ca_file)
        .args(["-LLL", "-o", "ldif-wrap=no", "-x", "-H", &lab.ldaps_url])
        .args(["-D", &lab.admin_upn, "-w", &lab.admin_password])
        .args([
            "-b",
            base,
            "-E",
            "pr=1000/noprompt",
            USERS_AND_GROUPS_FILTER,
        ])
        .args(OBJECT_ATTRIBUTES)
        .output()
        .unwrap();
    assert!(output.status.success(), "ldapsearch failed");
    output
        .stdout
        .split(|byte| *byte == b'\n')
        .filter(|line| line.starts_with(b"dn: "))
        .count()
}

/// Changes the title of `count` bench users with one `ldapmodify`.
fn modify_users(lab: &Lab, count: usize) {
    let output = Command::new("ldapsearch")
        .env("LDAPTLS_CACERT", &lab.ca_file)
        .args(["-LLL", "-o", "ldif-wrap=no", "-x", "-H", &lab.ldaps_url])
        .args(["-D", &lab.admin_upn, "-w", &lab.admin_password])
        .args([
            "-b",
            &format!("OU=Bench,{}", lab.base_dn),
            "-z",
            &count.to_string(),
        ])
        .args(["(objectClass=user)", "dn"])
        .output()
        .unwrap();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let ldif: String = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.starts_with("dn: "))
        .take(count)
        .map(|dn| format!("{dn}\nchangetype: modify\nreplace: title\ntitle: Changed {stamp}\n\n"))
        .collect();
    let mut child = Command::new("ldapmodify")
        .env("LDAPTLS_CACERT", &lab.ca_file)
        .args([
            "-x",
            "-H",
            &lab.ldaps_url,
            "-D",
            &lab.admin_upn,
            "-w",
            &lab.admin_password,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ldif.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "ldapmodify failed");
}
