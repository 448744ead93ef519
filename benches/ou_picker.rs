//! OU picker benchmark (the target: "the OU tree of a 10,000-OU directory opens its first level in under
//! 100 ms"; the wizard's picker "must stay smooth on a directory of 10,000 OUs", frames under
//! 16 ms): on a lab seeded with 10,000 OUs under one parent, dirsync's one-level read beside
//! `ldapsearch` making the same request over LDAPS, then the picker's frame times through
//! egui_kittest while scrolling those 10,000 rows, beside a tree of 10. Prints figures; asserts
//! nothing about time. Brings the base lab back up at the end.
//!
//!     cargo bench --bench ou_picker                 (brings the 10k-OU lab up; ~1 min cold)
//!     BENCH_OUS=2000 cargo bench --bench ou_picker
//!
//! `cargo test --all-targets` builds this and runs it without `--bench`; it then does nothing.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Lab, lab_up};
use dirsync::directory::ou_tree::{self, CONTAINER_FILTER, OuEntry};
use dirsync::directory::{DirectoryConnection, DirectoryTarget, Dn};
use dirsync::secret::Secret;
use dirsync::tls::TlsTrust;
use dirsync::ui::wizard::scope::{OuPicker, ReadChildren, scope_ui};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};

const ROUNDS: usize = 5;
const FRAMES: usize = 300;
const SMALL_TREE: usize = 10;

/// What the directory gave: the domain's first level and the bench OU's 10,000 children.
struct Levels {
    root: Vec<OuEntry>,
    bench: Vec<OuEntry>,
}

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let ous: usize = std::env::var("BENCH_OUS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(10_000);
    eprintln!("bench: bringing the lab up with {ous} OUs under OU=Bench");
    let lab = lab_up(&["--extra-ous", &ous.to_string()]);

    // Whatever happens, the base lab comes back: the tests expect it.
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let levels = runtime.block_on(read_levels(&lab, ous));
        picker_frames(runtime.handle(), &lab, levels);
    }));

    eprintln!("bench: restoring the base lab");
    lab_up(&[]);
    if let Err(panic) = outcome {
        panic::resume_unwind(panic);
    }
}

async fn read_levels(lab: &Lab, ous: usize) -> Levels {
    let target = DirectoryTarget::new(
        &lab.ldaps_url,
        TlsTrust::CaFile(lab.ca_file.clone()),
        Duration::from_secs(60),
    )
    .unwrap();
    let password = Secret::new(lab.admin_password.clone());
    let bench_dn = format!("OU=Bench,{}", lab.base_dn);

    println!(
        "OU tree, one level over LDAPS (target: first level of a {ous}-OU directory under 100 ms), \
         {ROUNDS} rounds"
    );

    // The picker reads every level on the admin session's connection, bound once.
    let connection = DirectoryConnection::connect_and_bind(&target, &lab.admin_upn, &password)
        .await
        .unwrap();
    let mut bound_times = Vec::new();
    let mut bench = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        bench = ou_tree::read_children(&connection, &bench_dn)
            .await
            .unwrap();
        bound_times.push(started.elapsed());
    }
    assert_eq!(bench.len(), ous, "read_children listed every bench OU");
    assert_eq!(bench[0].name, "Bench-0000");

    // ldapsearch connects, negotiates TLS and binds each time: so does this column.
    let mut fresh_times = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let fresh = DirectoryConnection::connect_and_bind(&target, &lab.admin_upn, &password)
            .await
            .unwrap();
        let count = ou_tree::read_children(&fresh, &bench_dn)
            .await
            .unwrap()
            .len();
        fresh_times.push(started.elapsed());
        assert_eq!(count, ous);
        fresh.close().await;
    }
    let mut bind_times = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let fresh = DirectoryConnection::connect_and_bind(&target, &lab.admin_upn, &password)
            .await
            .unwrap();
        bind_times.push(started.elapsed());
        fresh.close().await;
    }
    let mut ldapsearch_times = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let count = ldapsearch_one_level(lab, &bench_dn);
        ldapsearch_times.push(started.elapsed());
        assert_eq!(count, ous, "ldapsearch listed every bench OU");
    }

    let mut root_times = Vec::new();
    let mut root = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        root = ou_tree::read_children(&connection, &lab.base_dn)
            .await
            .unwrap();
        root_times.push(started.elapsed());
    }
    assert!(root.iter().any(|entry| entry.dn == bench_dn));
    connection.close().await;

    println!("  {bench_dn}: {} child OUs", bench.len());
    print_times("dirsync read_children, bound connection", &bound_times);
    print_times("dirsync connect + bind + read_children", &fresh_times);
    print_times("dirsync connect + bind alone", &bind_times);
    print_times(
        "ldapsearch -s one (process, TLS, bind, search)",
        &ldapsearch_times,
    );
    println!(
        "  ratio dirsync / ldapsearch, both connecting: {:.2} (bound connection: {:.2})",
        median(&fresh_times).as_secs_f64() / median(&ldapsearch_times).as_secs_f64(),
        median(&bound_times).as_secs_f64() / median(&ldapsearch_times).as_secs_f64()
    );
    println!("  {}: {} child containers", lab.base_dn, root.len());
    print_times("dirsync read_children of the domain root", &root_times);
    Levels { root, bench }
}

/// The same one-level request as `read_children` (filter and attributes), unpaged as it is;
/// returns the entry count.
fn ldapsearch_one_level(lab: &Lab, base: &str) -> usize {
    let output = Command::new("ldapsearch")
        .env("LDAPTLS_CACERT", &lab.ca_file)
        .args(["-LLL", "-o", "ldif-wrap=no", "-x", "-H", &lab.ldaps_url])
        .args(["-D", &lab.admin_upn, "-w", &lab.admin_password])
        .args([
            "-b",
            base,
            "-s",
            "one",
            CONTAINER_FILTER,
            "name",
            "objectClass",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "ldapsearch failed");
    output
        .stdout
        .split(|byte| *byte == b'\n')
        .filter(|line| line.starts_with(b"dn: "))
        .count()
}

fn picker_frames(runtime: &tokio::runtime::Handle, lab: &Lab, levels: Levels) {
    let domain = Dn::parse(&lab.base_dn).unwrap();
    let bench_dn = format!("OU=Bench,{}", lab.base_dn);
    let Levels { root, bench } = levels;
    let small: Vec<OuEntry> = bench.iter().take(SMALL_TREE).cloned().collect();
    let count = bench.len();

    println!(
        "OU picker frames (egui_kittest, 1040x720, {FRAMES} frames scrolling 3 lines each, \
         offline picker filled with the entries read above)"
    );
    println!(
        "  note: a kittest frame also builds and consumes the AccessKit tree, so these are an \
         upper bound on a real frame (target under 16 ms)"
    );
    for (label, children) in [
        (format!("{count} OUs"), bench),
        (format!("{SMALL_TREE} OUs"), small),
    ] {
        measure_tree(runtime, &domain, &root, &bench_dn, children, &label);
    }
}

/// The picker's page with a directory answer waiting to be taken, as the picker's `poll` takes it
/// at the start of a frame.
struct Page {
    picker: OuPicker,
    answer: Option<(String, ReadChildren)>,
}

fn measure_tree(
    runtime: &tokio::runtime::Handle,
    domain: &Dn,
    root: &[OuEntry],
    bench_dn: &str,
    children: Vec<OuEntry>,
    label: &str,
) {
    let count = children.len();
    // The domain's real first level, with OU=Bench expanded and its children not read yet.
    let opened = || {
        let mut picker = OuPicker::default();
        picker.open_offline(domain);
        picker.insert_children(domain.as_str(), ReadChildren::from_entries(root.to_vec()));
        picker.expand(bench_dn);
        picker
    };

    // The reading thread parses the answer's DNs (not a frame's work), timed apart.
    let started = Instant::now();
    let children = ReadChildren::from_entries(children);
    let parse = started.elapsed();
    println!(
        "    parse the DNs        {:>8.2} ms   (on the reading thread, not in a frame)",
        ms(parse)
    );
    // Attaching the answer alone, and the row list `scope_ui` walks every frame.
    let mut picker = opened();
    let started = Instant::now();
    picker.insert_children(bench_dn, children.clone());
    let attach = started.elapsed();
    let mut walks = Vec::new();
    let mut rows = 0;
    for _ in 0..20 {
        let started = Instant::now();
        rows = picker.row_count();
        walks.push(started.elapsed());
    }
    let walk = median(&walks);
    drop(picker);

    let mut harness = Harness::builder()
        .with_size(egui::vec2(1040.0, 720.0))
        .with_step_dt(1.0 / 60.0)
        .build_ui_state(
            |ui, page: &mut Page| {
                if let Some((parent, entries)) = page.answer.take() {
                    page.picker.insert_children(&parent, entries);
                }
                egui::CentralPanel::default()
                    .show(ui, |ui| scope_ui(ui, &mut page.picker, runtime, None));
            },
            Page {
                picker: opened(),
                answer: None,
            },
        );
    // The frame in which the directory's answer arrives: attach, then lay the rows out.
    harness.state_mut().answer = Some((bench_dn.to_owned(), children));
    let started = Instant::now();
    harness.step();
    let arrival = started.elapsed();
    let started = Instant::now();
    harness.step();
    let next = started.elapsed();
    let first_row = format!("Bench-{:04}", 0);
    let first_visible = harness.query_by_label(&first_row).is_some();

    // The wheel scrolls what is under the pointer.
    harness.event(egui::Event::PointerMoved(egui::pos2(500.0, 400.0)));
    harness.step();
    let mut frames = Vec::with_capacity(FRAMES);
    for _ in 0..FRAMES {
        harness.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Line,
            delta: egui::vec2(0.0, -3.0),
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Wheel,
            modifiers: egui::Modifiers::default(),
        });
        let started = Instant::now();
        harness.step();
        frames.push(started.elapsed());
    }
    let visible = visible_bench_rows(&harness);
    let scrolled = first_visible && harness.query_by_label(&first_row).is_none();

    println!("  tree of {label} ({rows} rows shown):");
    println!(
        "    attach the answer    {:>8.2} ms   ({count} children; the row list walk done every \
         frame: median {:.3} ms)",
        ms(attach),
        ms(walk)
    );
    println!(
        "    answer's frame       {:>8.2} ms   (attach + first layout of the rows; next frame \
         {:.2} ms)",
        ms(arrival),
        ms(next)
    );
    println!(
        "    scrolling frames     median {:.2} ms, p95 {:.2} ms, worst {:.2} ms",
        ms(median(&frames)),
        ms(percentile(&frames, 95)),
        ms(*frames.iter().max().unwrap())
    );
    let over = frames.iter().filter(|frame| ms(**frame) > 16.0).count();
    println!("    frames over 16 ms    {over} of {FRAMES}");
    match (visible.first(), visible.last()) {
        (Some(top), Some(bottom)) if visible.len() == count => println!(
            "    scrolled: nothing to scroll, all {count} bench rows fit on screen ({top} .. {bottom})"
        ),
        (Some(top), Some(bottom)) => println!(
            "    scrolled: {} (Bench-0000 {} on the first frame, now gone: {}; rows on screen \
             {top} .. {bottom})",
            if scrolled { "yes" } else { "no" },
            if first_visible { "shown" } else { "not shown" },
            harness.query_by_label(&first_row).is_none()
        ),
        _ => println!("    scrolled: no bench row on screen"),
    }
}

/// The bench OUs whose checkbox is on screen now, in order.
fn visible_bench_rows(harness: &Harness<'_, Page>) -> Vec<String> {
    let mut names: Vec<String> = harness
        .query_all_by_label_contains("Bench-")
        .filter_map(|node| node.accesskit_node().label())
        .filter(|name| {
            name.strip_prefix("Bench-")
                .is_some_and(|digits| digits.bytes().all(|byte| byte.is_ascii_digit()))
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn median(times: &[Duration]) -> Duration {
    percentile(times, 50)
}

fn percentile(times: &[Duration], percent: usize) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[((sorted.len() * percent).div_ceil(100)).clamp(1, sorted.len()) - 1]
}

fn print_times(what: &str, times: &[Duration]) {
    println!(
        "  {what:<48} median {:>7.2} ms, best {:>7.2} ms   (rounds: {})",
        ms(median(times)),
        ms(*times.iter().min().unwrap()),
        times
            .iter()
            .map(|time| format!("{:.1}", ms(*time)))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
