//! The dashboard (README, "The dashboard"): the modern Synchronization Service Manager.
//! Operations (the run history, live progress of a run, and a run's details down to each
//! object), Errors (the error workbench), Connectors, Search, Settings and Audit (the audit
//! trail); Sync now, Full sync, Preview and Stop. Everything it shows is read from the store off
//! the UI thread; the window polls and never waits.

mod audit;
mod connectors;
mod export_lease;
mod glance;
mod history;
mod object;
mod run_details;
mod search;
mod settings;
mod stop_sync;
pub mod sync_runner;
mod workbench;

use std::path::PathBuf;
use std::time::Duration;

use tokio::runtime::Handle;

use crate::clock::{human_time, now_ms};
use crate::config::Config;
use crate::home::Home;
use crate::store::StateStore;
use crate::store::runs::{RunId, RunRecord};
use crate::store::vocabulary::{RunStatus, RunTrigger};
use crate::ui::task::Lookup;
use crate::ui::theme;

use sync_runner::{LeaseState, RunKind, SyncRunner};

/// The history keeps at most this many runs on screen (30 days of a 30-minute schedule is
/// 1,440).
const HISTORY_LIMIT: usize = 10_000;

/// The dashboard's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Operations,
    Errors,
    Connectors,
    Search,
    Settings,
    Audit,
}

impl Tab {
    const ALL: [Tab; 6] = [
        Tab::Operations,
        Tab::Errors,
        Tab::Connectors,
        Tab::Search,
        Tab::Settings,
        Tab::Audit,
    ];

    fn title(self) -> &'static str {
        match self {
            Tab::Operations => "Operations",
            Tab::Errors => "Errors",
            Tab::Connectors => "Connectors",
            Tab::Search => "Search",
            Tab::Settings => "Settings",
            Tab::Audit => "Audit",
        }
    }
}

/// How the dashboard behaves; tests turn off what would make their pictures change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DashboardOptions {
    /// Run the schedule while no `dirsync service` does.
    pub scheduling: bool,
    /// Ask the tenant (Connectors) with the sync app's secret.
    pub read_cloud: bool,
    /// "Now" for ages and the next scheduled run (Unix ms); the clock when `None`.
    pub fixed_now: Option<i64>,
}

impl Default for DashboardOptions {
    fn default() -> Self {
        DashboardOptions {
            scheduling: true,
            read_cloud: true,
            fixed_now: None,
        }
    }
}

/// What the dashboard asks of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DashboardAction {
    None,
    /// "Configure…": reopen the wizard on the saved configuration.
    Configure,
    /// "Stop synchronizing…" removed everything: the wizard from scratch.
    StartOver,
}

#[derive(Debug)]
pub struct Dashboard {
    home: Home,
    runtime: Handle,
    options: DashboardOptions,
    pub tab: Tab,
    config: Result<Config, String>,
    history: history::History,
    /// The run open in Operations (its details), if any.
    run: Option<run_details::OpenRun>,
    /// The object open beside Operations or Search.
    object: Option<object::OpenObject>,
    sync: SyncRunner,
    /// Which host exports, when the state is in PostgreSQL (README, "Two hosts, one database").
    export_lease: export_lease::ExportLeaseStrip,
    connectors: connectors::Connectors,
    search: search::Search,
    workbench: workbench::Workbench,
    audit: audit::AuditPage,
    glance: glance::Glance,
    settings: settings::SettingsForm,
    /// The folder an export goes to instead of asking with the save dialog (tests, scripts).
    pub export_folder_override: Option<PathBuf>,
}

impl Dashboard {
    pub fn new(home: Home, runtime: Handle, options: DashboardOptions) -> Dashboard {
        let config = Config::load(&home.config_file).map_err(|error| error.to_string());
        let settings = settings::SettingsForm::new(config.as_ref().ok());
        Dashboard {
            home,
            runtime,
            options,
            tab: Tab::Operations,
            config,
            history: history::History::default(),
            run: None,
            object: None,
            sync: SyncRunner::new(options.scheduling),
            export_lease: Default::default(),
            connectors: connectors::Connectors::new(options.read_cloud),
            search: search::Search::default(),
            workbench: workbench::Workbench::default(),
            audit: audit::AuditPage::default(),
            glance: glance::Glance::default(),
            settings,
            export_folder_override: None,
        }
    }

    /// The runs on screen, newest first.
    pub fn runs(&self) -> &[RunRecord] {
        &self.history.runs
    }

    /// The open run's id.
    pub fn open_run_id(&self) -> Option<RunId> {
        self.run.as_ref().map(|run| run.id)
    }

    /// How long the open run took to read, once it has.
    pub fn open_run_read_in(&self) -> Option<Duration> {
        self.run.as_ref().and_then(|run| run.read_in)
    }

    /// Opens a run's details, as clicking it in the history does.
    pub fn open_run(&mut self, id: RunId, repaint: &egui::Context) {
        self.tab = Tab::Operations;
        self.close_run();
        self.run = Some(run_details::OpenRun::open(
            id,
            &self.home,
            &self.runtime,
            repaint,
        ));
    }

    /// Closes the open run and its object. A run's 100,000 rows take milliseconds to free: not
    /// on the UI thread.
    fn close_run(&mut self) {
        let closed = self.run.take();
        self.runtime.spawn_blocking(move || drop(closed));
        self.object = None;
    }

    /// Whether a run of the window's is under way.
    pub fn is_syncing(&self) -> bool {
        self.sync.is_running()
    }

    /// The window is closing: a run of the window's stops at its next safe point (recorded
    /// `cancelled`; the next run finishes its work), and the scheduler lease is given up.
    pub fn on_close(&mut self) {
        self.sync.stop_and_wait(Duration::from_secs(30));
        self.sync.release_lease(&self.home);
    }

    fn now(&self) -> i64 {
        self.options.fixed_now.unwrap_or_else(now_ms)
    }

    fn options(&self) -> crate::config::SyncOptions {
        self.config
            .as_ref()
            .map(|config| config.options.clone())
            .unwrap_or_default()
    }

    fn start_run(&mut self, kind: RunKind, repaint: &egui::Context) {
        let options = self.options();
        self.sync.start(
            kind,
            RunTrigger::Manual,
            &self.home,
            &self.runtime,
            repaint,
            &options,
        );
    }

    /// Polls the background work; starts a scheduled run when one is due.
    fn poll(&mut self, repaint: &egui::Context) {
        if self.sync.poll() {
            // A run ended: read the history now, and the open run if it was that one.
            self.history.refresh(&self.home, &self.runtime, repaint);
            self.workbench.refresh();
            if let Some(run) = &mut self.run
                && (run
                    .record()
                    .is_none_or(|record| record.status == RunStatus::Running)
                    || self
                        .sync
                        .last_outcome
                        .as_ref()
                        .and_then(|outcome| outcome.run_id)
                        == Some(run.id))
            {
                *run = run_details::OpenRun::open(run.id, &self.home, &self.runtime, repaint);
            }
            self.connectors.forget();
        }
        self.history.poll(&self.home, &self.runtime, repaint);
        if let Some(run) = &mut self.run {
            run.poll(&self.home, &self.runtime, repaint);
        }
        if let Some(object) = &mut self.object {
            object.poll();
        }
        self.sync.keep_lease(&self.home, &self.runtime, repaint);
        let options = self.options();
        if self.history.loaded()
            && self.config.is_ok()
            && let Some(kind) = self.sync.due(
                &self.history.runs,
                self.history.schedule_held,
                &options,
                self.now(),
            )
        {
            self.sync
                .start_scheduled(kind, &self.home, &self.runtime, repaint, &options);
        }
        if self.history.loaded() && self.config.is_ok() {
            let now = self.now();
            let sync_scheduled = self
                .sync
                .next_due(
                    &self.history.runs,
                    self.history.schedule_held,
                    &options,
                    now,
                )
                .sync
                .is_some();
            if self.sync.watch_for_changes(
                sync_scheduled,
                &options,
                &self.home,
                &self.runtime,
                repaint,
            ) {
                self.sync.start_scheduled(
                    RunKind::Delta,
                    &self.home,
                    &self.runtime,
                    repaint,
                    &options,
                );
            }
        }
    }
}

/// The dashboard, whole.
pub fn dashboard_ui(ui: &mut egui::Ui, dashboard: &mut Dashboard) -> DashboardAction {
    let repaint = ui.ctx().clone();
    dashboard.poll(&repaint);
    let mut action = DashboardAction::None;

    egui::Panel::top("dashboard_top").show(ui, |ui| {
        top_bar_ui(ui, dashboard);
    });
    let shared_store = dashboard
        .config
        .as_ref()
        .is_ok_and(|config| config.store.engine == crate::config::StoreEngine::Postgresql);
    if shared_store {
        egui::Panel::top("dashboard_export_lease").show(ui, |ui| {
            export_lease::export_lease_ui(
                ui,
                &mut dashboard.export_lease,
                &dashboard.home,
                &dashboard.runtime,
            );
        });
    }
    egui::Panel::bottom("dashboard_status").show(ui, |ui| {
        status_bar_ui(ui, dashboard);
    });
    if let Some(job) = &dashboard.sync.job {
        let stopping = dashboard.sync.stopping();
        egui::Panel::top("dashboard_live").show(ui, |ui| {
            history::live_progress_ui(ui, job, stopping);
        });
    } else if let Some(run) = dashboard
        .history
        .runs
        .first()
        .filter(|run| run.status == RunStatus::Running)
        // The window's own run, just ended, until the history is read again.
        .filter(|run| {
            dashboard
                .sync
                .last_outcome
                .as_ref()
                .and_then(|outcome| outcome.run_id)
                != Some(run.id)
        })
    {
        let options = dashboard.options();
        egui::Panel::top("dashboard_live").show(ui, |ui| {
            history::other_process_progress_ui(ui, run, &options);
        });
    }
    let object_open =
        dashboard.object.is_some() && matches!(dashboard.tab, Tab::Operations | Tab::Search);
    if object_open {
        let mut close = false;
        let width = (ui.available_width() * 0.45).min(420.0);
        egui::Panel::right("object_details")
            .resizable(true)
            .default_size(width)
            .show(ui, |ui| {
                if let Some(object) = &mut dashboard.object {
                    close = object::object_ui(ui, object);
                }
            });
        if close {
            dashboard.object = None;
        }
    }
    let now = dashboard.now();
    if dashboard.connectors.take_renewed() {
        dashboard.config =
            Config::load(&dashboard.home.config_file).map_err(|error| error.to_string());
    }
    if let Some(warning) = dashboard
        .config
        .as_ref()
        .ok()
        .and_then(|config| config.credential_warning(now / 1000))
    {
        egui::Panel::top("credential_warning").show(ui, |ui| {
            ui.add_space(2.0);
            ui.add(
                egui::Label::new(
                    egui::RichText::new(format!("⚠ {warning}")).color(theme::warning(ui)),
                )
                .wrap(),
            );
            if dashboard.tab != Tab::Connectors
                && ui.button("Renew on the Connectors page").clicked()
            {
                dashboard.tab = Tab::Connectors;
            }
            ui.add_space(2.0);
        });
    }
    egui::CentralPanel::default().show(ui, |ui| match dashboard.tab {
        Tab::Operations => operations_ui(ui, dashboard, &repaint),
        Tab::Connectors => connectors::connectors_ui(
            ui,
            &mut dashboard.connectors,
            &dashboard.config,
            &dashboard.history.runs,
            &dashboard.home,
            &dashboard.runtime,
            now,
        ),
        Tab::Errors => workbench::workbench_ui(
            ui,
            &mut dashboard.workbench,
            &dashboard.home,
            &dashboard.runtime,
            dashboard.export_folder_override.as_deref(),
        ),
        Tab::Search => match search::search_ui(
            ui,
            &mut dashboard.search,
            &dashboard.home,
            &dashboard.runtime,
            &repaint,
        ) {
            search::SearchAction::None => {}
            search::SearchAction::OpenObject(source) => {
                dashboard.object = Some(object::OpenObject::open(
                    source,
                    &dashboard.home,
                    &dashboard.runtime,
                    &repaint,
                ));
            }
            search::SearchAction::OpenRun(id) => dashboard.open_run(id, &repaint),
        },
        Tab::Settings => {
            match settings::settings_ui(
                ui,
                &mut dashboard.settings,
                &dashboard.home,
                &dashboard.runtime,
            ) {
                settings::SettingsAction::None => {}
                settings::SettingsAction::Configure => action = DashboardAction::Configure,
                settings::SettingsAction::StartOver => action = DashboardAction::StartOver,
            }
            if dashboard.settings.saved_now() {
                dashboard.audit.refresh();
                dashboard.config =
                    Config::load(&dashboard.home.config_file).map_err(|error| error.to_string());
            }
        }
        Tab::Audit => audit::audit_ui(
            ui,
            &mut dashboard.audit,
            &dashboard.home,
            &dashboard.runtime,
        ),
    });

    // Timers: the schedule, the lease, a run in another process.
    repaint.request_repaint_after(Duration::from_secs(1));
    action
}

fn top_bar_ui(ui: &mut egui::Ui, dashboard: &mut Dashboard) {
    ui.add_space(4.0);
    // The actions go right of the tabs, or under them in a narrow window.
    let wide = ui.available_width() >= 900.0;
    ui.horizontal(|ui| {
        ui.heading("dirsync");
        ui.add_space(12.0);
        for tab in Tab::ALL {
            if ui
                .selectable_label(dashboard.tab == tab, tab.title())
                .clicked()
            {
                if tab == Tab::Audit && dashboard.tab != Tab::Audit {
                    dashboard.audit.refresh();
                }
                dashboard.tab = tab;
            }
        }
        if wide {
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                actions_ui(ui, dashboard);
            });
        }
    });
    if !wide {
        ui.horizontal(|ui| actions_ui(ui, dashboard));
    }
    ui.add_space(2.0);
}

/// The top bar's controls, in reading order.
#[derive(Clone, Copy)]
enum Control {
    SyncNow,
    FullSync,
    Preview,
    Stop,
    Separator,
    Theme,
}

const CONTROLS: [Control; 6] = [
    Control::SyncNow,
    Control::FullSync,
    Control::Preview,
    Control::Stop,
    Control::Separator,
    Control::Theme,
];

/// Sync now, Full sync, Preview, Stop, and the theme; added last first in a right-to-left
/// layout, so they read the same either way.
fn actions_ui(ui: &mut egui::Ui, dashboard: &mut Dashboard) {
    let running = dashboard.sync.is_running();
    let can_start = !running && dashboard.config.is_ok();
    let can_stop = running && !dashboard.sync.stopping();
    let button = |ui: &mut egui::Ui, enabled: bool, label: &str, help: &str| {
        ui.add_enabled(enabled, egui::Button::new(label))
            .on_hover_text(help)
            .clicked()
    };
    let mut requested = None;
    let mut stop = false;
    let controls: Vec<Control> = if ui.layout().prefer_right_to_left() {
        CONTROLS.iter().rev().copied().collect()
    } else {
        CONTROLS.to_vec()
    };
    for control in controls {
        match control {
            Control::SyncNow => {
                if button(
                    ui,
                    can_start,
                    "Sync now",
                    "A delta sync: the changes since the last run",
                ) {
                    requested = Some(RunKind::Delta);
                }
            }
            Control::FullSync => {
                if button(
                    ui,
                    can_start,
                    "Full sync",
                    "Read every object in scope, not only the changes",
                ) {
                    requested = Some(RunKind::Full);
                }
            }
            Control::Preview => {
                if button(
                    ui,
                    can_start,
                    "Preview",
                    "Everything up to export: what would be added, updated and deleted",
                ) {
                    requested = Some(RunKind::Preview);
                }
            }
            Control::Stop => {
                stop = button(
                    ui,
                    can_stop,
                    "Stop",
                    "Stop the run at its next safe point; nothing is lost",
                );
            }
            Control::Separator => {
                ui.separator();
            }
            Control::Theme => {
                let dark = ui.visuals().dark_mode;
                let theme_label = if dark { "Light theme" } else { "Dark theme" };
                if ui.button(theme_label).clicked() {
                    ui.ctx().set_theme(if dark {
                        egui::Theme::Light
                    } else {
                        egui::Theme::Dark
                    });
                }
            }
        }
    }
    if let Some(kind) = requested {
        dashboard.start_run(kind, ui.ctx());
    }
    if stop {
        dashboard.sync.stop();
    }
}

/// When the next scheduled sync is due, by whoever runs the schedule, for the glance.
fn next_sync_in_words(dashboard: &Dashboard, now: i64) -> String {
    let due = || {
        dashboard
            .sync
            .next_due(
                &dashboard.history.runs,
                dashboard.history.schedule_held,
                &dashboard.options(),
                now,
            )
            .sync
    };
    match &dashboard.sync.lease {
        LeaseState::Theirs(lease)
            if lease.holder == crate::store::scheduler_lease::SchedulerHolder::Service =>
        {
            due().map_or_else(
                || "Next sync: after the first one (dirsync service)".to_owned(),
                |at| format!("Next sync: {} (dirsync service)", human_time(at.max(now))),
            )
        }
        LeaseState::Ours if dashboard.sync.scheduling => due().map_or_else(
            || "Next sync: after the first one (Sync now)".to_owned(),
            |at| format!("Next sync: {}", human_time(at.max(now))),
        ),
        LeaseState::Theirs(_) => "Next sync: run by another dirsync window".to_owned(),
        LeaseState::Unknown if dashboard.sync.scheduling => {
            "Next sync: checking who runs the schedule…".to_owned()
        }
        _ => "Next sync: not scheduled in this window".to_owned(),
    }
}

fn status_bar_ui(ui: &mut egui::Ui, dashboard: &Dashboard) {
    ui.horizontal_wrapped(|ui| {
        if let Err(problem) = &dashboard.config {
            ui.colored_label(theme::error(ui), problem);
            return;
        }
        let options = dashboard.options();
        match &dashboard.sync.lease {
            _ if !dashboard.sync.scheduling => {
                ui.label("Schedule: off in this window");
            }
            LeaseState::Unknown => {
                ui.label("Schedule: checking whether dirsync service runs it…");
            }
            LeaseState::Ours => {
                let now = dashboard.now();
                let due = dashboard.sync.next_due(
                    &dashboard.history.runs,
                    dashboard.history.schedule_held,
                    &options,
                    now,
                );
                match due.sync {
                    None => {
                        ui.label("Schedule: starts after the first sync; Sync now starts it");
                    }
                    Some(sync_due) => {
                        ui.label(format!(
                            "Schedule: this window syncs every {} minutes; next at {}",
                            options.interval_minutes,
                            human_time(sync_due.max(now))
                        ));
                    }
                }
            }
            LeaseState::Theirs(lease) => {
                let who = match lease.holder {
                    crate::store::scheduler_lease::SchedulerHolder::Service => "dirsync service",
                    crate::store::scheduler_lease::SchedulerHolder::Window => {
                        "another dirsync window"
                    }
                };
                ui.label(format!(
                    "Schedule: run by {who} (process {}); this window only shows it",
                    lease.pid
                ));
            }
            LeaseState::Problem(problem) => {
                ui.colored_label(
                    theme::warning(ui),
                    format!("Schedule: cannot tell who runs it: {problem}"),
                );
            }
        }
        if let Some(outcome) = &dashboard.sync.last_outcome {
            ui.separator();
            let colour = if outcome.failed {
                theme::error(ui)
            } else {
                ui.visuals().text_color()
            };
            ui.colored_label(colour, &outcome.message);
        }
        if let Some(problem) = &dashboard.history.problem {
            ui.separator();
            ui.colored_label(theme::error(ui), problem);
        }
    });
}

fn operations_ui(ui: &mut egui::Ui, dashboard: &mut Dashboard, repaint: &egui::Context) {
    if let Some(run) = &mut dashboard.run {
        let outcome = run_details::run_details_ui(
            ui,
            run,
            &dashboard.history.runs,
            dashboard.sync.is_running(),
            dashboard.export_folder_override.as_deref(),
            &dashboard.home,
            &dashboard.runtime,
        );
        match outcome {
            run_details::RunAction::None => {}
            run_details::RunAction::Back => dashboard.close_run(),
            run_details::RunAction::Open(source) => {
                dashboard.object = Some(object::OpenObject::open(
                    source,
                    &dashboard.home,
                    &dashboard.runtime,
                    repaint,
                ));
            }
            run_details::RunAction::ConfirmDeletes(count) => {
                dashboard.start_run(RunKind::ConfirmedDeletes(count), repaint);
            }
        }
        return;
    }
    let now = dashboard.now();
    let next_sync = next_sync_in_words(dashboard, now);
    glance::glance_ui(
        ui,
        &mut dashboard.glance,
        &dashboard.history.runs,
        dashboard.config.as_ref().ok(),
        &next_sync,
        &dashboard.home,
        &dashboard.runtime,
        now,
    );
    if let Some(id) = history::history_ui(ui, &mut dashboard.history, dashboard.sync.job.as_ref()) {
        dashboard.open_run(id, repaint);
    }
}

/// The status as a coloured badge.
pub fn status_badge_ui(ui: &mut egui::Ui, status: RunStatus) -> egui::Response {
    let colour = match status {
        RunStatus::Success => theme::ok(ui),
        RunStatus::CompletedWithErrors | RunStatus::StoppedDeletionThreshold => theme::warning(ui),
        RunStatus::Failed => theme::error(ui),
        RunStatus::Running => theme::running(ui),
        RunStatus::Cancelled => ui.visuals().weak_text_color(),
    };
    let text = egui::RichText::new(status.as_str())
        .color(theme::on_badge(ui))
        .background_color(colour)
        .strong();
    ui.label(text)
}

/// Opens the store for a read off the UI thread.
fn open_store(home: &Home) -> Result<StateStore, String> {
    if !StateStore::exists(home) {
        return Err(format!(
            "no run yet: {} does not exist",
            home.state_db.display()
        ));
    }
    StateStore::open_home(home).map_err(|error| error.to_string())
}

/// `Lookup::read` with the store opened.
fn read_store<T: Send + 'static>(
    home: &Home,
    runtime: &Handle,
    repaint: &egui::Context,
    read: impl FnOnce(&StateStore) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Lookup<T> {
    let home = home.clone();
    Lookup::read(runtime, repaint, move || {
        let store = open_store(&home)?;
        read(&store).map_err(|error| error.to_string())
    })
}
