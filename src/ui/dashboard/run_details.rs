//! Run details: the run's steps with miisclient's counters; a counter opens exactly the objects
//! it counts, in a list to filter and sort; warnings; the threshold panel; export to CSV or JSON.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use egui_extras::{Column, TableBuilder};
use tokio::runtime::Handle;

use super::object::ObjectSource;
use super::{read_store, status_badge_ui};
use crate::clock::human_time;
use crate::home::Home;
use crate::run_report::human_duration;
use crate::store::browse::ChangeRow;
use crate::store::runs::{ErrorRecord, RunId, RunRecord, WarningRecord};
use crate::store::vocabulary::{ChangeKind, RunMode, RunStatus, StepKind};
use crate::ui::task::Lookup;
use crate::ui::theme;

/// How often an open run that is still going is read again.
const REFRESH_RUNNING: Duration = Duration::from_secs(2);

/// Everything the run's page shows, read at once.
#[derive(Debug)]
pub struct RunContents {
    pub record: RunRecord,
    pub changes: Vec<ChangeRow>,
    pub errors: Vec<ErrorRecord>,
    pub warnings: Vec<WarningRecord>,
    /// How many changes each step recorded of each kind: which counters list objects.
    listed: HashMap<(StepKind, ChangeKind), usize>,
    /// For the object list, worked out with the run off the UI thread: each change's DN
    /// lowercased, and the changes' indexes by DN and by type (then DN).
    dns_lowercase: Vec<String>,
    changes_by_dn: Vec<usize>,
    changes_by_type: Vec<usize>,
    pub threshold: Option<usize>,
}

#[derive(Debug)]
pub struct OpenRun {
    pub id: RunId,
    opened_at: Instant,
    /// How long the run took to read, once it has.
    pub read_in: Option<Duration>,
    contents: Lookup<RunContents>,
    /// The contents shown while they are read again.
    shown: Option<RunContents>,
    list: Option<ObjectList>,
    confirm_text: String,
    export: Lookup<String>,
}

/// What a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Change(ChangeKind),
    Errors,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortBy {
    Order,
    Dn,
    Type,
}

/// The objects behind one counter.
#[derive(Debug)]
struct ObjectList {
    step: StepKind,
    counter: Counter,
    filter: String,
    sort: SortBy,
    descending: bool,
    /// Indexes into the changes or the errors, filtered and sorted.
    shown: Vec<usize>,
    dirty: bool,
}

pub enum RunAction {
    None,
    Back,
    Open(ObjectSource),
    ConfirmDeletes(usize),
}

impl OpenRun {
    pub fn open(id: RunId, home: &Home, runtime: &Handle, repaint: &egui::Context) -> OpenRun {
        OpenRun {
            id,
            opened_at: Instant::now(),
            read_in: None,
            contents: read_contents(id, home, runtime, repaint),
            shown: None,
            list: None,
            confirm_text: String::new(),
            export: Lookup::NotStarted,
        }
    }

    pub fn record(&self) -> Option<&RunRecord> {
        self.shown.as_ref().map(|contents| &contents.record)
    }

    pub fn poll(&mut self, home: &Home, runtime: &Handle, repaint: &egui::Context) {
        self.contents.poll();
        self.export.poll();
        match std::mem::take(&mut self.contents) {
            Lookup::Done(contents) => {
                if self.read_in.is_none() {
                    self.read_in = Some(self.opened_at.elapsed());
                }
                self.shown = Some(contents);
                if let Some(list) = &mut self.list {
                    list.dirty = true;
                }
            }
            other => self.contents = other,
        }
        let running = self
            .record()
            .is_some_and(|record| record.status == RunStatus::Running);
        if running && !self.contents.is_running() && self.opened_at.elapsed() >= REFRESH_RUNNING {
            self.opened_at = Instant::now();
            self.contents = read_contents(self.id, home, runtime, repaint);
        }
    }
}

fn read_contents(
    id: RunId,
    home: &Home,
    runtime: &Handle,
    repaint: &egui::Context,
) -> Lookup<RunContents> {
    let config_file = home.config_file.clone();
    read_store(home, runtime, repaint, move |store| {
        let record = store
            .run(id)?
            .ok_or_else(|| crate::store::StoreError::Database(crate::store::DbError::NoRows))?;
        let changes = store.change_rows(id)?;
        let mut listed = HashMap::new();
        for change in &changes {
            *listed.entry((change.step, change.change_kind)).or_insert(0) += 1;
        }
        let dns_lowercase: Vec<String> = changes
            .iter()
            .map(|change| change.dn.to_lowercase())
            .collect();
        let mut changes_by_dn: Vec<usize> = (0..changes.len()).collect();
        changes_by_dn.sort_by(|&a, &b| dns_lowercase[a].cmp(&dns_lowercase[b]));
        let mut changes_by_type = changes_by_dn.clone();
        // Stable: by type, then by DN.
        changes_by_type.sort_by_key(|&index| changes[index].object_type.as_str());
        Ok(RunContents {
            dns_lowercase,
            changes_by_dn,
            changes_by_type,
            record,
            changes,
            errors: store.run_errors(id)?,
            warnings: store.run_warnings(id)?,
            listed,
            threshold: crate::config::Config::load(&config_file)
                .ok()
                .map(|config| config.options.deletion_threshold),
        })
    })
}

pub fn run_details_ui(
    ui: &mut egui::Ui,
    run: &mut OpenRun,
    runs: &[RunRecord],
    syncing: bool,
    export_path_override: Option<&Path>,
    home: &Home,
    runtime: &Handle,
) -> RunAction {
    let mut action = RunAction::None;
    ui.horizontal(|ui| {
        if ui.button("⬅ Back to the history").clicked() {
            action = RunAction::Back;
        }
        ui.heading(format!("Run {}", run.id));
        if run.contents.is_running() {
            ui.spinner();
        }
    });
    if let Some(problem) = run.contents.failure() {
        ui.colored_label(
            theme::error(ui),
            format!("Cannot read run {}: {problem}", run.id),
        );
        return action;
    }
    let Some(contents) = &run.shown else {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Reading the run…");
        });
        return action;
    };
    let record = &contents.record;
    ui.horizontal_wrapped(|ui| {
        status_badge_ui(ui, record.status);
        ui.label(format!(
            "trigger {}, mode {}; started {}",
            record.trigger,
            record.mode,
            human_time(record.started_at)
        ));
        match record.ended_at {
            Some(ended) => ui.label(format!(
                "ended {} ({})",
                human_time(ended),
                human_duration(ended - record.started_at)
            )),
            None => ui.label("still running"),
        };
        if record.throttled > 0 {
            ui.colored_label(
                theme::warning(ui),
                format!("Graph throttled {} requests", record.throttled),
            );
        }
    });
    ui.horizontal(|ui| {
        let export_running = run.export.is_running();
        for (label, format) in [
            ("Export CSV…", ExportFormat::Csv),
            ("Export JSON…", ExportFormat::Json),
        ] {
            if ui
                .add_enabled(!export_running, egui::Button::new(label))
                .on_hover_text("The run's changes and errors, for a ticket or a spreadsheet")
                .clicked()
            {
                run.export = start_export(
                    run.id,
                    format,
                    export_path_override,
                    home.clone(),
                    runtime,
                    ui.ctx(),
                );
            }
        }
        match &run.export {
            Lookup::Running(_) => {
                ui.spinner();
            }
            Lookup::Done(message) => {
                ui.colored_label(theme::ok(ui), message);
            }
            Lookup::Failed(problem) => {
                ui.colored_label(theme::error(ui), problem.to_string());
            }
            Lookup::NotStarted => {}
        }
    });
    ui.add_space(6.0);

    for error in contents.errors.iter().filter(|error| error.dn.is_empty()) {
        // The run's own failure (no object): its words and what to do, first.
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.colored_label(
                theme::error(ui),
                format!("The run failed: {}", error.server_message),
            );
            if !error.hint.is_empty() {
                ui.label(format!("What to do: {}", error.hint));
            }
        });
    }
    if record.status == RunStatus::StoppedDeletionThreshold
        && let Some(count) = threshold_panel_ui(ui, &mut run.confirm_text, contents, runs, syncing)
    {
        action = RunAction::ConfirmDeletes(count);
        run.confirm_text.clear();
    }

    if let Some(chosen) = steps_ui(ui, contents, run.list.as_ref()) {
        run.list = Some(ObjectList {
            step: chosen.0,
            counter: chosen.1,
            filter: String::new(),
            sort: SortBy::Order,
            descending: false,
            shown: Vec::new(),
            dirty: true,
        });
    }
    // Drift (README, "Drift") is listed apart, open: something was changed in the cloud behind
    // dirsync's back, and the administrator should see what.
    let (drift, warnings): (Vec<&WarningRecord>, Vec<&WarningRecord>) =
        contents.warnings.iter().partition(|warning| {
            warning
                .message
                .starts_with(crate::engine::drift::WARNING_PREFIX)
        });
    if !drift.is_empty() {
        egui::CollapsingHeader::new(format!("Drift ({})", drift.len()))
            .id_salt("run_drift")
            .default_open(true)
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("run_drift_scroll")
                    .max_height(140.0)
                    .show(ui, |ui| {
                        for warning in &drift {
                            ui.colored_label(
                                theme::warning(ui),
                                format!("⚠ {}: {}", warning.dn, warning.attribute),
                            );
                            let detail = warning
                                .message
                                .trim_start_matches(crate::engine::drift::WARNING_PREFIX)
                                .trim_start();
                            ui.label(format!("    {detail}"));
                        }
                    });
            });
    }
    if !warnings.is_empty() {
        egui::CollapsingHeader::new(format!("Warnings ({})", warnings.len()))
            .id_salt("run_warnings")
            .show(ui, |ui| {
                egui::ScrollArea::vertical()
                    .id_salt("run_warnings_scroll")
                    .max_height(140.0)
                    .show(ui, |ui| {
                        for warning in warnings {
                            let subject = if warning.dn.is_empty() {
                                "the run".to_owned()
                            } else {
                                warning.dn.clone()
                            };
                            ui.colored_label(theme::warning(ui), format!("⚠ {subject}"));
                            ui.label(format!("    {}", warning.message));
                        }
                    });
            });
    }
    if let Some(list) = &mut run.list {
        ui.separator();
        if let Some(source) = object_list_ui(ui, list, contents) {
            action = RunAction::Open(source);
        }
    } else {
        ui.add_space(8.0);
        ui.weak("Click a counter to list its objects.");
    }
    action
}

/// When the threshold stopped the run: what would be deleted, and a deliberate way to go on.
/// Returns the confirmed count when the administrator confirms.
fn threshold_panel_ui(
    ui: &mut egui::Ui,
    confirm_text: &mut String,
    contents: &RunContents,
    runs: &[RunRecord],
    syncing: bool,
) -> Option<usize> {
    let withheld = contents
        .record
        .step(StepKind::Synchronization)
        .map_or(0, |step| step.counters.deletes as usize);
    let threshold = contents
        .threshold
        .map_or("the threshold".to_owned(), |threshold| {
            format!("the threshold of {threshold}")
        });
    // Only the newest sync run speaks for what would happen now.
    let newest = runs
        .iter()
        .find(|run| run.mode != RunMode::Password && run.mode != RunMode::Preview)
        .map(|run| run.id);
    let mut confirmed = None;
    egui::Frame::group(ui.style())
        .stroke(egui::Stroke::new(1.5, theme::warning(ui)))
        .show(ui, |ui| {
            ui.colored_label(
                theme::warning(ui),
                egui::RichText::new("Stopped by the deletion threshold").strong(),
            );
            ui.label(format!(
                "This run would have deleted {withheld} cloud objects, more than {threshold}, so it deleted none (nothing else was held back). The synchronization step's deletes list exactly these objects."
            ));
            ui.label("Deletes this large usually mean an OU left the scope, or a domain controller answered with part of the directory. If that is the cause, fix it and sync again: nothing is deleted.");
            if newest != Some(contents.record.id) {
                ui.weak("A later run has run since; confirm deletes from the newest run.");
                return;
            }
            ui.label(format!(
                "If these deletes are intended, type {withheld} and confirm: one sync runs with up to {withheld} deletes. If it would delete more, it stops again."
            ));
            ui.horizontal(|ui| {
                let label = ui.label("Number of deletes to confirm:");
                ui.add(
                    egui::TextEdit::singleline(confirm_text).desired_width(80.0),
                )
                .labelled_by(label.id);
                let matches = confirm_text.trim() == withheld.to_string();
                if ui
                    .add_enabled(
                        matches && !syncing,
                        egui::Button::new(format!("Delete {withheld} objects and sync")),
                    )
                    .clicked()
                {
                    confirmed = Some(withheld);
                }
            });
        });
    confirmed
}

/// The steps table. Returns the counter clicked.
fn steps_ui(
    ui: &mut egui::Ui,
    contents: &RunContents,
    list: Option<&ObjectList>,
) -> Option<(StepKind, Counter)> {
    let record = &contents.record;
    let mut chosen = None;
    if record.steps.is_empty() {
        ui.label("No step recorded.");
        return None;
    }
    egui::ScrollArea::horizontal()
        .id_salt("run_steps_sideways")
        .show(ui, |ui| {
            egui::Grid::new("run_steps")
                .striped(true)
                .min_col_width(64.0)
                .show(ui, |ui| {
                    for title in [
                        "Step",
                        "Adds",
                        "Updates",
                        "Renames",
                        "Deletes",
                        "No change",
                        "Errors",
                        "Duration",
                    ] {
                        ui.strong(title);
                    }
                    ui.end_row();
                    for step in &record.steps {
                        ui.label(step.title());
                        let counters = &step.counters;
                        for (counter, value) in [
                            (Counter::Change(ChangeKind::Add), counters.adds),
                            (Counter::Change(ChangeKind::Update), counters.updates),
                            (Counter::Change(ChangeKind::Rename), counters.renames),
                            (Counter::Change(ChangeKind::Delete), counters.deletes),
                        ] {
                            if counter_ui(ui, contents, step.step, counter, value, list) {
                                chosen = Some((step.step, counter));
                            }
                        }
                        ui.label(counters.no_change.to_string());
                        if counter_ui(
                            ui,
                            contents,
                            step.step,
                            Counter::Errors,
                            counters.errors,
                            list,
                        ) {
                            chosen = Some((step.step, Counter::Errors));
                        }
                        ui.label(step.ended_at.map_or("running".to_owned(), |ended| {
                            human_duration(ended - step.started_at)
                        }));
                        ui.end_row();
                    }
                });
        });
    chosen
}

/// One counter: a link when the run kept the objects it counts. Returns whether it was clicked.
fn counter_ui(
    ui: &mut egui::Ui,
    contents: &RunContents,
    step: StepKind,
    counter: Counter,
    value: u64,
    list: Option<&ObjectList>,
) -> bool {
    let listed = match counter {
        Counter::Change(kind) => contents.listed.get(&(step, kind)).copied().unwrap_or(0),
        Counter::Errors => contents
            .errors
            .iter()
            .filter(|error| error.step == step)
            .count(),
    };
    let name = format!("{step} {}: {value}", counter_name(counter));
    if value == 0 || listed == 0 {
        let response = ui.label(value.to_string());
        if value > 0 {
            response.on_hover_text(
                "Counted, not listed: this step keeps its count; the objects are listed under the step that wrote them",
            );
        }
        return false;
    }
    let open = list.is_some_and(|list| list.step == step && list.counter == counter);
    let text = egui::RichText::new(value.to_string()).underline();
    let text = if counter == Counter::Errors {
        text.color(theme::error(ui))
    } else {
        text
    };
    let response = ui.add(egui::Button::new(text).selected(open).small());
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &name));
    response
        .on_hover_text(format!("List these {listed} objects"))
        .clicked()
}

fn counter_name(counter: Counter) -> &'static str {
    match counter {
        Counter::Change(ChangeKind::Add) => "adds",
        Counter::Change(ChangeKind::Update) => "updates",
        Counter::Change(ChangeKind::Rename) => "renames",
        Counter::Change(ChangeKind::Delete) => "deletes",
        Counter::Errors => "errors",
    }
}

/// The objects behind a counter. Returns the object to open.
fn object_list_ui(
    ui: &mut egui::Ui,
    list: &mut ObjectList,
    contents: &RunContents,
) -> Option<ObjectSource> {
    let mut open = None;
    if list.dirty {
        list.shown = list_indexes(list, contents);
        list.dirty = false;
    }
    ui.horizontal_wrapped(|ui| {
        ui.strong(format!(
            "{} {} ({} shown)",
            list.step,
            counter_name(list.counter),
            list.shown.len()
        ));
        let label = ui.label("Filter:");
        let field = ui
            .add(
                egui::TextEdit::singleline(&mut list.filter)
                    .desired_width(220.0)
                    .hint_text("DN, anchor or error"),
            )
            .labelled_by(label.id);
        if field.changed() {
            list.dirty = true;
        }
        ui.label("Sort:");
        for (sort, label) in [
            (SortBy::Order, "As made"),
            (SortBy::Dn, "DN"),
            (SortBy::Type, "Type"),
        ] {
            if ui.selectable_label(list.sort == sort, label).clicked() {
                if list.sort == sort {
                    list.descending = !list.descending;
                } else {
                    list.sort = sort;
                    list.descending = false;
                }
                list.dirty = true;
            }
        }
    });
    if list.dirty {
        // The filter or the sort changed below the heading: the list follows now, the
        // heading's count on the next frame.
        list.shown = list_indexes(list, contents);
        list.dirty = false;
        ui.ctx().request_repaint();
    }
    let row_height = ui.text_style_height(&egui::TextStyle::Body) + 6.0;
    let is_errors = list.counter == Counter::Errors;
    TableBuilder::new(ui)
        .id_salt((
            "object_list",
            list.step.as_str(),
            counter_name(list.counter),
        ))
        .striped(true)
        .sense(egui::Sense::click())
        .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
        .column(Column::exact(if is_errors { 170.0 } else { 70.0 }))
        .column(Column::exact(60.0))
        .column(Column::remainder().clip(true))
        .header(row_height, |mut header| {
            for title in [if is_errors { "Error" } else { "Change" }, "Type", "DN"] {
                header.col(|ui| {
                    ui.strong(title);
                });
            }
        })
        .body(|body| {
            body.rows(row_height, list.shown.len(), |mut row| {
                let index = list.shown[row.index()];
                let (what, kind, dn, source) = if is_errors {
                    let error = &contents.errors[index];
                    (
                        error.error_type.as_str(),
                        error.object_type.map_or("", |kind| kind.as_str()),
                        if error.dn.is_empty() {
                            "(the run)"
                        } else {
                            error.dn.as_str()
                        },
                        ObjectSource::Error(Box::new(error.clone())),
                    )
                } else {
                    let change = &contents.changes[index];
                    (
                        change.change_kind.as_str(),
                        change.object_type.as_str(),
                        change.dn.as_str(),
                        ObjectSource::Change {
                            id: change.id,
                            imported: change.imported,
                        },
                    )
                };
                row.col(|ui| {
                    ui.label(what);
                });
                row.col(|ui| {
                    ui.label(kind);
                });
                let mut clicked = false;
                row.col(|ui| {
                    clicked = ui
                        .add(egui::Label::new(dn).truncate().sense(egui::Sense::click()))
                        .clicked();
                });
                if clicked || row.response().clicked() {
                    open = Some(source);
                }
            });
        });
    open
}

/// The list's rows: those of the counter, matching the filter, in the chosen order.
fn list_indexes(list: &ObjectList, contents: &RunContents) -> Vec<usize> {
    let filter = list.filter.trim().to_lowercase();
    let mut shown: Vec<usize> = match list.counter {
        Counter::Change(kind) => {
            // Changes come in the order asked for from the orders read with the run (sorting
            // 100,000 DNs on the UI thread took two thirds of a frame); the filter compares
            // the DNs lowercased then.
            let sorted = match list.sort {
                SortBy::Order => None,
                SortBy::Dn => Some(&contents.changes_by_dn),
                SortBy::Type => Some(&contents.changes_by_type),
            };
            let order: Box<dyn Iterator<Item = usize>> = match sorted {
                Some(sorted) => Box::new(sorted.iter().copied()),
                None => Box::new(0..contents.changes.len()),
            };
            order
                .filter(|&index| {
                    let change = &contents.changes[index];
                    change.step == list.step
                        && change.change_kind == kind
                        && (filter.is_empty()
                            || contents.dns_lowercase[index].contains(&filter)
                            || change.anchor.to_lowercase().contains(&filter))
                })
                .collect()
        }
        Counter::Errors => {
            // A run's errors are few: filtered and sorted here.
            let matches = |texts: &[&str]| {
                filter.is_empty()
                    || texts
                        .iter()
                        .any(|text| text.to_lowercase().contains(&filter))
            };
            let mut shown: Vec<usize> = contents
                .errors
                .iter()
                .enumerate()
                .filter(|(_, error)| error.step == list.step)
                .filter(|(_, error)| {
                    matches(&[
                        &error.dn,
                        error.anchor.as_deref().unwrap_or(""),
                        &error.error_type,
                        &error.server_message,
                    ])
                })
                .map(|(index, _)| index)
                .collect();
            let errors = &contents.errors;
            match list.sort {
                SortBy::Order => {}
                SortBy::Dn => shown.sort_by_cached_key(|&index| errors[index].dn.to_lowercase()),
                SortBy::Type => shown.sort_by_cached_key(|&index| {
                    (
                        errors[index].error_type.clone(),
                        errors[index].dn.to_lowercase(),
                    )
                }),
            }
            shown
        }
    };
    if list.descending {
        shown.reverse();
    }
    shown
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExportFormat {
    Csv,
    Json,
}

/// Asks where to save (the native save dialog, unless a folder is set) and writes the run there,
/// off the UI thread.
fn start_export(
    id: RunId,
    format: ExportFormat,
    folder_override: Option<&Path>,
    home: Home,
    runtime: &Handle,
    repaint: &egui::Context,
) -> Lookup<String> {
    let (extension, filter) = match format {
        ExportFormat::Csv => ("csv", "CSV (spreadsheet)"),
        ExportFormat::Json => ("json", "JSON"),
    };
    let file_name = format!("dirsync-run-{id}.{extension}");
    let path_override = folder_override.map(|folder| folder.join(&file_name));
    Lookup::start(runtime, repaint, move |_| async move {
        let failed = |message: String| crate::setup::SetupFailure::failed(None, message);
        let path = match path_override {
            Some(path) => path,
            None => {
                let chosen = rfd::AsyncFileDialog::new()
                    .set_title(format!("Export run {id}"))
                    .set_file_name(&file_name)
                    .add_filter(filter, &[extension])
                    .save_file()
                    .await;
                match chosen {
                    Some(handle) => handle.path().to_owned(),
                    None => {
                        return Err(failed(
                            "Not exported: no file was chosen. If no dialog appeared, this desktop has no file dialog (install xdg-desktop-portal or zenity)".to_owned(),
                        ));
                    }
                }
            }
        };
        write_export(&home, id, format, &path).map_err(failed)
    })
}

/// Writes the run's changes (with their values) and errors to `path`, whole or not at all.
/// Returns what it did.
fn write_export(
    home: &Home,
    id: RunId,
    format: ExportFormat,
    path: &Path,
) -> Result<String, String> {
    use std::io::Write as _;
    let store = crate::store::StateStore::open_home(home).map_err(|error| error.to_string())?;
    let read = |error: crate::store::StoreError| format!("Cannot read run {id}: {error}");
    let record = store
        .run(id)
        .map_err(read)?
        .ok_or_else(|| format!("Run {id} is no longer in the history"))?;
    let changes = store.run_changes(id, None).map_err(read)?;
    let errors = store.run_errors(id).map_err(read)?;
    let cannot_write = |error: std::io::Error| format!("Cannot write {}: {error}", path.display());
    let temporary = path.with_extension("partial");
    let file = std::fs::File::create(&temporary).map_err(cannot_write)?;
    let mut out = std::io::BufWriter::new(file);
    match format {
        ExportFormat::Csv => crate::run_report::write_csv(&mut out, &record, &changes, &errors),
        ExportFormat::Json => crate::run_report::write_json(&mut out, &record, &changes, &errors),
    }
    .and_then(|()| out.flush())
    .map_err(cannot_write)?;
    drop(out);
    std::fs::rename(&temporary, path).map_err(cannot_write)?;
    Ok(format!(
        "Saved {} and {} to {}",
        counted(changes.len(), "change"),
        counted(errors.len(), "error"),
        path.display()
    ))
}

/// `1 change`, `3 changes`.
fn counted(count: usize, what: &str) -> String {
    if count == 1 {
        format!("1 {what}")
    } else {
        format!("{count} {what}s")
    }
}
