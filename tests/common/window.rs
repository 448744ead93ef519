//! The window driven by role and label (egui_kittest) on a home that real runs filled: opening
//! the dashboard, waiting for what it reads, clicking, and reading what it shows.

use std::path::Path;
use std::time::{Duration, Instant};

use dirsync::home::Home;
use dirsync::ui::DirsyncApp;
use dirsync::ui::dashboard::{Dashboard, DashboardOptions};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable};

/// How long the window may take to show what the store holds (reads are off the UI thread).
pub const READ: Duration = Duration::from_secs(20);
/// How long a run the window starts may take.
pub const RUN: Duration = Duration::from_secs(120);

pub type Window = Harness<'static, DirsyncApp>;

/// The dashboard on the home at `home`, as `dirsync` opens it. The runtime must outlive the
/// harness: keep both.
pub fn open_dashboard(home: &Path, options: DashboardOptions) -> (tokio::runtime::Runtime, Window) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = DirsyncApp::with_dashboard_options(
        Home::in_dir(home),
        runtime.handle().clone(),
        None,
        options,
    );
    let harness = Harness::builder()
        .with_size(egui::vec2(1040.0, 720.0))
        .build_ui_state(|ui, app: &mut DirsyncApp| app.contents_ui(ui), app);
    (runtime, harness)
}

pub fn dashboard(window: &Window) -> &Dashboard {
    window
        .state()
        .dashboard()
        .expect("the dashboard is showing")
}

/// The accesskit tree, for failure messages and leak checks.
pub fn tree(window: &Window) -> String {
    format!("{:#?}", window.root())
}

/// A node's text as kittest's label queries read it: a label's is its value.
pub fn text_of(node: &egui_kittest::Node<'_>) -> Option<String> {
    let node = node.accesskit_node();
    if node.role() == Role::Label {
        node.value()
    } else {
        node.label()
    }
}

/// Every text in the window, in tree order (a label's text runs are not counted again).
pub fn texts(window: &Window) -> Vec<String> {
    window
        .query_all_by(|node| node.role() != Role::TextRun)
        .filter_map(|node| text_of(&node))
        .collect()
}

pub fn shows(window: &Window, text: &str) -> bool {
    window.query_all_by_label_contains(text).next().is_some()
}

/// Runs frames until `done` holds, never blocking the window; panics with what the window shows.
pub fn wait_until(
    window: &mut Window,
    timeout: Duration,
    what: &str,
    done: impl Fn(&Window) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        window.step();
        if done(window) {
            // One more frame, so what arrived is drawn.
            window.step();
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}; the window shows:\n{}",
            tree(window)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Clicks the one node labelled `label` and lets the click's frames run.
pub fn click(window: &mut Window, label: &str) {
    window.get_by_label(label).click();
    window.run_steps(3);
}

/// Opens run `id` from its link in the history.
pub fn open_run_by_link(window: &mut Window, id: i64) {
    let link = format!("Run {id}");
    wait_until(window, READ, &format!("the link {link}"), |window| {
        window.query_by_role_and_label(Role::Link, &link).is_some()
    });
    window.get_by_role_and_label(Role::Link, &link).click();
    let read_in = wait_until(window, READ, &format!("run {id}'s details"), |window| {
        dashboard(window).open_run_id() == Some(id)
            && shows(window, "⬅ Back to the history")
            && dashboard(window).open_run_read_in().is_some()
    });
    eprintln!("run {id} opened and read in {read_in:?}");
    window.run_steps(2);
}
