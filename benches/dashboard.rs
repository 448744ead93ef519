//! Dashboard benchmark (the target: "A store holding 1,000 runs and one run with 100,000 object
//! changes: print the frame time (median and worst) while scrolling the history and that run's
//! object list, and the time to open the run. Target: every frame under 16 ms."). Builds that
//! store in a temporary home (no lab, no network), opens the window's dashboard on it through
//! egui_kittest and prints:
//!
//! - the store's build time and size, the time the history takes to arrive;
//! - the history's frames while the wheel scrolls it;
//! - the time to open the big run (its read off the UI thread, and until the first frame that
//!   shows its counters), a few times;
//! - the frame that lists the 100,000 objects behind "cloud-export adds", the object list's frames
//!   while the wheel scrolls it, and (besides) a filter typed key by key and a sort by DN;
//! - peak memory (VmHWM).
//!
//! A kittest frame is egui's layout and tessellation on the CPU plus the AccessKit tree, with no
//! GPU and no painting. Prints figures; asserts nothing about time.
//!
//!     cargo bench --bench dashboard
//!     BENCH_RUNS=200 BENCH_CHANGES=20000 cargo bench --bench dashboard
//!
//! `cargo test --all-targets` builds this and runs it without `--bench`; it then does nothing.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::path::Path;
use std::time::{Duration, Instant};

use dirsync::config::{CloudConfig, Config, DirectoryConfig, ScopeConfig, SyncOptions};
use dirsync::home::Home;
use dirsync::store::StateStore;
use dirsync::store::runs::{AttributeValues, ErrorRecord, ObjectChangeRecord, RunId, StepCounters};
use dirsync::store::vocabulary::{
    ChangeKind, ObjectKind, RunMode, RunStatus, RunTrigger, StepKind,
};
use dirsync::ui::DirsyncApp;
use dirsync::ui::dashboard::DashboardOptions;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use serde_json::{Value, json};

const FRAMES: usize = 300;
const OPEN_ROUNDS: usize = 3;
/// Object changes written per `record_changes` call (one transaction each).
const BATCH: usize = 10_000;
const TARGET_MS: f64 = 16.0;
const DAY_MS: i64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;
/// Longest wait for the background reads.
const PATIENCE: Duration = Duration::from_secs(120);
const WINDOW: egui::Vec2 = egui::vec2(1040.0, 720.0);
const BASE_DN: &str = "DC=corp,DC=example";
/// What the filter is typed with, one key a frame.
const FILTER: &str = "user 0009";

type App = Harness<'static, DirsyncApp>;

fn main() {
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let runs: usize = env_number("BENCH_RUNS", 1_000);
    let changes: usize = env_number("BENCH_CHANGES", 100_000);
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());

    println!(
        "dashboard: a store of {runs} runs over 30 days and one run with {changes} cloud-export \
         adds; window {}x{}, {} cores available",
        WINDOW.x,
        WINDOW.y,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "  note: a kittest frame is egui's layout and tessellation on the CPU plus the AccessKit \
         tree, with no GPU and no painting (target: every frame under {TARGET_MS} ms)"
    );
    let started = Instant::now();
    let big = build_store(dir.path(), runs, changes);
    let build = started.elapsed();
    let db_size: u64 = ["state.db", "state.db-wal"]
        .iter()
        .filter_map(|name| std::fs::metadata(dir.path().join(name)).ok())
        .map(|metadata| metadata.len())
        .sum();
    println!(
        "store build: {:.1} s ({} runs + run {big} with {changes} changes, {:.0} MB on disk); \
         peak memory so far (VmHWM) {:.0} MB",
        build.as_secs_f64(),
        runs,
        db_size as f64 / 1e6,
        peak_rss_mb()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();

    history_scroll(&runtime, dir.path(), runs + 1, big);
    open_and_list(&runtime, dir.path(), runs + 1, big, changes);

    println!(
        "peak memory of the bench process (VmHWM, store build included): {:.0} MB; resident now \
         {:.0} MB",
        peak_rss_mb(),
        status_mb("VmRSS:")
    );
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// A valid `config.toml`: the window opens the dashboard, not the wizard.
fn write_config(dir: &Path) {
    let config = Config {
        cloud: CloudConfig {
            authority: "https://login.microsoftonline.com".to_owned(),
            graph: "https://graph.microsoft.com".to_owned(),
            tenant_id: "8d2c0c52-0d3c-4d43-9a43-000000000001".to_owned(),
            client_id: "00000000-0000-0000-0000-000000000002".to_owned(),
            service_principal_id: None,
            credential_expires_at: None,
            certificate_thumbprint: None,
            directory_extensions: Vec::new(),
        },
        directory: DirectoryConfig {
            server: "ldaps://dc.corp.example:636".to_owned(),
            ca_file: None,
            insecure: false,
            naming_context: BASE_DN.to_owned(),
            service_account_dn: format!("CN=MSOL_0123456789ab,CN=Users,{BASE_DN}"),
            service_account_guid: None,
            timeout_secs: 15,
            password_hash_socket: None,
            password_gpg_home: None,
            samba_config: None,
        },
        options: SyncOptions::default(),
        scope: ScopeConfig {
            included: vec![format!("OU=Corp,{BASE_DN}")],
            excluded: vec![],
        },
        monitoring: Default::default(),
        rules: Default::default(),
        forests: Vec::new(),
        store: Default::default(),
    };
    let path = dir.join("config.toml");
    config.save(&path).unwrap();
    assert_eq!(
        Config::load(&path).unwrap(),
        config,
        "the config loads back"
    );
    assert!(Home::in_dir(dir).is_configured());
}

/// `runs` small runs spread over the last 30 days, then the big run (the newest). Returns the big
/// run's id.
fn build_store(dir: &Path, runs: usize, changes: usize) -> RunId {
    let store = StateStore::open(&dir.join("state.db")).unwrap();
    // Each small write is its own transaction; without a sync per commit the build takes seconds,
    // not minutes. Only this connection: the window's reads open their own.
    store
        .connection()
        .execute_batch("PRAGMA synchronous = NORMAL")
        .unwrap();
    let now = dirsync::clock::now_ms();
    let first = now - 30 * DAY_MS;
    let spacing = 30 * DAY_MS / (runs as i64 + 1);
    for index in 0..runs {
        let started = first + index as i64 * spacing;
        small_run(&store, index, started);
    }

    let started = now - 60 * MINUTE_MS;
    let run = store
        .start_run(RunTrigger::Manual, RunMode::Full, started)
        .unwrap();
    let count = changes as u64;
    let steps = [
        (
            StepKind::DirectoryImport,
            StepCounters {
                adds: count,
                ..StepCounters::default()
            },
        ),
        (StepKind::CloudImport, StepCounters::default()),
        (
            StepKind::Synchronization,
            StepCounters {
                adds: count,
                ..StepCounters::default()
            },
        ),
        (
            StepKind::CloudExport,
            StepCounters {
                adds: count,
                ..StepCounters::default()
            },
        ),
    ];
    let mut at = started;
    for (step, counters) in steps {
        store.start_step(run, step, None, at).unwrap();
        if step == StepKind::CloudExport {
            let mut batch = Vec::with_capacity(BATCH);
            for number in 0..changes {
                batch.push(user_add(number));
                if batch.len() == BATCH {
                    store.record_changes(run, &batch).unwrap();
                    batch.clear();
                }
            }
            store.record_changes(run, &batch).unwrap();
        }
        at += 10 * MINUTE_MS;
        store.finish_step(run, step, None, &counters, at).unwrap();
    }
    store.finish_run(run, RunStatus::Success, at).unwrap();
    run
}

/// One scheduled delta run: four steps with small counters, a few updates listed under the
/// export; one run in 50 with an error.
fn small_run(store: &StateStore, index: usize, started: i64) {
    let (trigger, mode) = if index == 0 {
        (RunTrigger::Wizard, RunMode::Full)
    } else {
        (RunTrigger::Schedule, RunMode::Delta)
    };
    let run = store.start_run(trigger, mode, started).unwrap();
    let updates = (index % 5) as u64;
    let errors = u64::from(index % 50 == 7);
    let steps = [
        (
            StepKind::DirectoryImport,
            StepCounters {
                updates: updates + errors,
                ..StepCounters::default()
            },
        ),
        (StepKind::CloudImport, StepCounters::default()),
        (
            StepKind::Synchronization,
            StepCounters {
                updates: updates + errors,
                no_change: 3,
                ..StepCounters::default()
            },
        ),
        (
            StepKind::CloudExport,
            StepCounters {
                updates,
                errors,
                ..StepCounters::default()
            },
        ),
    ];
    let mut at = started;
    for (step, counters) in steps {
        store.start_step(run, step, None, at).unwrap();
        at += 2_000;
        if step == StepKind::CloudExport {
            let changes: Vec<ObjectChangeRecord> = (0..updates as usize)
                .map(|offset| user_update(index * 7 + offset))
                .collect();
            store.record_changes(run, &changes).unwrap();
            if errors > 0 {
                store.record_errors(run, &[user_error(index, at)]).unwrap();
            }
        }
        store.finish_step(run, step, None, &counters, at).unwrap();
    }
    let status = if errors > 0 {
        RunStatus::CompletedWithErrors
    } else {
        RunStatus::Success
    };
    store.finish_run(run, status, at).unwrap();
}

fn user_dn(number: usize) -> String {
    format!("CN=Bench User {number:06},OU=Staff,OU=Corp,{BASE_DN}")
}

fn user_add(number: usize) -> ObjectChangeRecord {
    let attribute = |name: &str, new: Value| AttributeValues {
        name: name.to_owned(),
        old: Value::Null,
        new,
    };
    ObjectChangeRecord {
        step: StepKind::CloudExport,
        dn: user_dn(number),
        anchor: format!("{number:032x}"),
        object_type: ObjectKind::User,
        cloud_id: Some(format!("00000000-0000-4000-8000-{number:012}")),
        change_kind: ChangeKind::Add,
        attributes: vec![
            attribute("displayName", json!(format!("Bench User {number:06}"))),
            attribute(
                "userPrincipalName",
                json!(format!("user{number:06}@corp.example")),
            ),
            attribute("mail", json!(format!("user{number:06}@corp.example"))),
            attribute("department", json!(format!("Department {}", number % 40))),
        ],
    }
}

fn user_update(number: usize) -> ObjectChangeRecord {
    ObjectChangeRecord {
        change_kind: ChangeKind::Update,
        attributes: vec![AttributeValues {
            name: "department".to_owned(),
            old: json!(format!("Department {}", number % 40)),
            new: json!(format!("Department {}", (number + 1) % 40)),
        }],
        ..user_add(number)
    }
}

fn user_error(index: usize, at: i64) -> ErrorRecord {
    ErrorRecord {
        step: StepKind::CloudExport,
        dn: user_dn(index),
        anchor: Some(format!("{index:032x}")),
        object_type: Some(ObjectKind::User),
        error_type: "conflict".to_owned(),
        code: Some("ObjectConflict".to_owned()),
        server_message: "Another object with the same value for property proxyAddresses already \
                         exists."
            .to_owned(),
        hint: "Give one of the two objects another mail address.".to_owned(),
        first_occurred_at: at,
        retry_count: 0,
    }
}

/// A fresh window on the dashboard, stepped until the history has every run.
fn open_window(runtime: &tokio::runtime::Runtime, dir: &Path, runs: usize) -> App {
    let app = DirsyncApp::with_dashboard_options(
        Home::in_dir(dir),
        runtime.handle().clone(),
        None,
        DashboardOptions {
            scheduling: false,
            read_cloud: false,
            fixed_now: None,
        },
    );
    assert!(app.dashboard().is_some(), "configured: the dashboard opens");
    let opened = Instant::now();
    let mut harness = Harness::builder()
        .with_size(WINDOW)
        .with_step_dt(1.0 / 60.0)
        .build_ui_state(|ui, app: &mut DirsyncApp| app.contents_ui(ui), app);
    let frames = step_until(&mut harness, "the history", |harness| {
        harness.state().dashboard().unwrap().runs().len() == runs
    });
    let waited = opened.elapsed();
    println!(
        "  history arrived {:.0} ms after the window was built (frames stepped: {}, worst {:.2} ms)",
        ms(waited),
        frames.len(),
        ms(worst(&frames))
    );
    harness
}

/// Steps (a millisecond apart) until `done`; returns every frame's time.
fn step_until(harness: &mut App, what: &str, done: impl Fn(&App) -> bool) -> Vec<Duration> {
    let started = Instant::now();
    let mut frames = Vec::new();
    loop {
        let frame = Instant::now();
        harness.step();
        frames.push(frame.elapsed());
        if done(harness) {
            return frames;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "waited {PATIENCE:?} for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `count` frames, each with one event from `event`, and times each.
fn timed_frames(
    harness: &mut App,
    count: usize,
    event: impl Fn(usize) -> egui::Event,
) -> Vec<Duration> {
    let mut frames = Vec::with_capacity(count);
    for index in 0..count {
        harness.event(event(index));
        let started = Instant::now();
        harness.step();
        frames.push(started.elapsed());
    }
    frames
}

/// Hover, press and release at `at`, a frame each (the release's frame acts on the click).
fn click_at(harness: &mut App, at: egui::Pos2) -> Vec<Duration> {
    timed_frames(harness, 3, |index| match index {
        0 => egui::Event::PointerMoved(at),
        pressed => egui::Event::PointerButton {
            pos: at,
            button: egui::PointerButton::Primary,
            pressed: pressed == 1,
            modifiers: egui::Modifiers::default(),
        },
    })
}

/// Half the frames wheel down, half back up, 120 points a frame.
fn wheel(index: usize) -> egui::Event {
    let down = index < FRAMES / 2;
    egui::Event::MouseWheel {
        unit: egui::MouseWheelUnit::Point,
        delta: egui::vec2(0.0, if down { -120.0 } else { 120.0 }),
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Wheel,
        modifiers: egui::Modifiers::default(),
    }
}

fn history_scroll(runtime: &tokio::runtime::Runtime, dir: &Path, runs: usize, big: RunId) {
    println!("history ({runs} runs, Operations page):");
    let mut harness = open_window(runtime, dir, runs);
    let idle = timed_frames(&mut harness, 20, |_| {
        egui::Event::PointerMoved(egui::pos2(WINDOW.x / 2.0, WINDOW.y / 2.0))
    });
    let top = visible_runs(&harness);
    assert!(
        top.contains(&big),
        "the newest run, {big}, shows first: {top:?}"
    );
    let mut frames = timed_frames(&mut harness, FRAMES / 2, wheel);
    let down = visible_runs(&harness);
    frames.extend(timed_frames(&mut harness, FRAMES - FRAMES / 2, |index| {
        wheel(index + FRAMES / 2)
    }));
    // Let the smooth scroll finish before looking where it ended.
    harness.run_steps(60);
    let back = visible_runs(&harness);
    print_frames("history, still (pointer over the table)", &idle);
    print_frames(
        &format!("history scroll: {FRAMES} frames, wheel 120 pt a frame, half down, half up"),
        &frames,
    );
    println!(
        "    rows on screen: runs {} at first, runs {} after scrolling down, runs {} back up \
         (scrolled: {})",
        span(&top),
        span(&down),
        span(&back),
        if down.first() != top.first() && !down.contains(&big) {
            "yes"
        } else {
            "NO"
        }
    );
}

/// Opens the big run a few times (from the history link), then lists its adds and scrolls them.
fn open_and_list(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    runs: usize,
    big: RunId,
    changes: usize,
) {
    println!("run {big} ({changes} object changes):");
    let mut harness = open_window(runtime, dir, runs);
    harness.run_steps(2);
    let counter = format!("cloud-export adds: {changes}");
    for round in 1..=OPEN_ROUNDS {
        let link = format!("Run {big}");
        let started = Instant::now();
        let link_at = harness
            .query_by_label(&link)
            .map(|node| node.rect().center());
        let click = match link_at {
            Some(at) => format!(
                "clicking its link, the click's frame {:.2} ms",
                ms(click_at(&mut harness, at)[2])
            ),
            None => {
                let ctx = harness.ctx.clone();
                harness
                    .state_mut()
                    .dashboard_mut()
                    .unwrap()
                    .open_run(big, &ctx);
                "Dashboard::open_run".to_owned()
            }
        };
        let frames = step_until(&mut harness, "the run's contents", |harness| {
            harness.query_by_label(&counter).is_some()
        });
        let shown = started.elapsed();
        let dashboard = harness.state().dashboard().unwrap();
        assert_eq!(dashboard.open_run_id(), Some(big));
        let read_in = dashboard.open_run_read_in().unwrap();
        println!(
            "  open the run, round {round} ({click}): read in {:.0} ms (off the UI thread); \
             first frame showing its counters {:.0} ms after the click, that frame {:.2} ms; \
             {} frames while reading, worst {:.2} ms",
            ms(read_in),
            ms(shown),
            ms(*frames.last().unwrap()),
            frames.len() - 1,
            ms(worst(&frames[..frames.len() - 1]))
        );
        if round < OPEN_ROUNDS {
            let back = harness
                .get_by_label_contains("Back to the history")
                .rect()
                .center();
            let back = click_at(&mut harness, back);
            harness.run_steps(2);
            assert!(harness.state().dashboard().unwrap().open_run_id().is_none());
            println!(
                "    back to the history (the run's rows dropped): that frame {:.2} ms",
                ms(back[2])
            );
        }
    }
    let still = timed_frames(&mut harness, 20, |_| {
        egui::Event::PointerMoved(egui::pos2(WINDOW.x / 2.0, WINDOW.y - 60.0))
    });
    print_frames("run page, still (no list open)", &still);

    // The counter: hover, press, release; the release's frame builds the list of 100,000.
    let button = harness.get_by_label(&counter).rect().center();
    let click = click_at(&mut harness, button);
    let after = timed_frames(&mut harness, 2, |_| egui::Event::PointerMoved(button));
    let heading = format!("cloud-export adds ({changes} shown)");
    assert!(
        harness.query_by_label(&heading).is_some(),
        "the list opened: no \"{heading}\""
    );
    println!(
        "  click \"{counter}\": the frame that lists them {:.2} ms (hover {:.2}, press {:.2}); \
         the next two {:.2} ms, {:.2} ms",
        ms(click[2]),
        ms(click[0]),
        ms(click[1]),
        ms(after[0]),
        ms(after[1])
    );

    // The wheel over the list's rows.
    let top = visible_users(&harness);
    let row = harness
        .get_by_label(&user_dn(*top.first().unwrap()))
        .rect()
        .center();
    let over_list = egui::pos2(WINDOW.x / 2.0, row.y + 60.0);
    harness.event(egui::Event::PointerMoved(over_list));
    harness.step();
    let mut frames = timed_frames(&mut harness, FRAMES / 2, wheel);
    let down = visible_users(&harness);
    frames.extend(timed_frames(&mut harness, FRAMES - FRAMES / 2, |index| {
        wheel(index + FRAMES / 2)
    }));
    harness.run_steps(60);
    let back = visible_users(&harness);
    print_frames(
        &format!("object list scroll: {FRAMES} frames, wheel 120 pt a frame, half down, half up"),
        &frames,
    );
    println!(
        "    rows on screen: users {} at first, {} after scrolling down, {} back up (scrolled: {})",
        span(&top),
        span(&down),
        span(&back),
        if down.first() > top.first() {
            "yes"
        } else {
            "NO"
        }
    );

    // One fling to the end of the list, then a minute of frames there.
    harness.event(egui::Event::MouseWheel {
        unit: egui::MouseWheelUnit::Point,
        delta: egui::vec2(0.0, -(changes as f32) * 40.0),
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Wheel,
        modifiers: egui::Modifiers::default(),
    });
    let mut fling = Vec::new();
    for _ in 0..60 {
        let started = Instant::now();
        harness.step();
        fling.push(started.elapsed());
    }
    let end = visible_users(&harness);
    print_frames(
        &format!(
            "one wheel fling to the end of the list, users {} on screen after",
            span(&end)
        ),
        &fling,
    );
    let deep = timed_frames(&mut harness, 60, |index| wheel(index + FRAMES / 2));
    print_frames(
        &format!(
            "object list scroll at the end: 60 frames up (users {} on screen after)",
            span(&visible_users(&harness))
        ),
        &deep,
    );

    // Besides the figures: the filter typed one key a frame, then a sort by DN, each
    // going over every listed object in the frame.
    harness.get_by_label("Filter:").focus();
    harness.step();
    let keys: Vec<char> = FILTER.chars().collect();
    let typed = timed_frames(&mut harness, keys.len(), |index| {
        egui::Event::Text(keys[index].to_string())
    });
    // The list's heading counts before the field's change is read: one more frame.
    harness.step();
    let matching = harness
        .query_by_label_contains("cloud-export adds (")
        .and_then(|node| text(&node))
        .unwrap_or_default();
    print_frames(
        &format!("filter typed \"{FILTER}\", one key a frame (list now: {matching})"),
        &typed,
    );
    for _ in keys {
        harness.key_press(egui::Key::Backspace);
        harness.step();
    }
    harness.run_steps(2);
    let sort = harness
        .query_all_by_label("DN")
        .map(|node| node.rect().center())
        .min_by(|a, b| a.y.total_cmp(&b.y))
        .unwrap();
    let mut sorted = Vec::new();
    for _ in 0..2 {
        sorted.extend(click_at(&mut harness, sort));
    }
    println!(
        "  sort the {changes} by DN: the frame that sorts {:.2} ms; again, descending {:.2} ms",
        ms(sorted[2]),
        ms(sorted[5])
    );
}

/// The runs whose link is on screen, in order.
fn visible_runs(harness: &App) -> Vec<RunId> {
    let mut ids: Vec<RunId> = harness
        .query_all_by_label_contains("Run ")
        .filter_map(|node| text(&node))
        .filter_map(|label| label.strip_prefix("Run ")?.parse().ok())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The numbers of the listed users whose DN is on screen, in order.
fn visible_users(harness: &App) -> Vec<usize> {
    let mut numbers: Vec<usize> = harness
        .query_all_by_label_contains("CN=Bench User ")
        .filter_map(|node| text(&node))
        .filter_map(|label| label.strip_prefix("CN=Bench User ")?.get(..6)?.parse().ok())
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    numbers
}

/// What a node says: a widget's label, a label's text.
fn text(node: &egui_kittest::Node<'_>) -> Option<String> {
    let node = node.accesskit_node();
    node.label().or_else(|| node.value())
}

fn span<T: std::fmt::Display>(items: &[T]) -> String {
    match (items.first(), items.last()) {
        (Some(first), Some(last)) => format!("{first}..{last}"),
        _ => "(none)".to_owned(),
    }
}

fn print_frames(what: &str, frames: &[Duration]) {
    let over = frames
        .iter()
        .filter(|frame| ms(**frame) > TARGET_MS)
        .count();
    let worst_at = (0..frames.len())
        .max_by_key(|index| frames[*index])
        .unwrap_or(0);
    println!(
        "  {what}: {} frames, median {:.2} ms, p95 {:.2} ms, worst {:.2} ms (frame {}), {over} \
         over {TARGET_MS} ms (target < {TARGET_MS} ms)",
        frames.len(),
        ms(percentile(frames, 50)),
        ms(percentile(frames, 95)),
        ms(worst(frames)),
        worst_at + 1
    );
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn worst(frames: &[Duration]) -> Duration {
    frames.iter().max().copied().unwrap_or_default()
}

fn percentile(times: &[Duration], percent: usize) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[((sorted.len() * percent).div_ceil(100)).clamp(1, sorted.len()) - 1]
}

/// Peak resident memory of this process (VmHWM), in MB.
fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kilobytes: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kilobytes / 1024.0
}
