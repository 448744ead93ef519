//! Operations: the run history as a table that builds only the rows on screen, and the live view
//! of a run in progress.

use std::time::{Duration, Instant};

use egui_extras::{Column, TableBuilder};
use tokio::runtime::Handle;

use super::sync_runner::{LiveProgress, SyncJob, steps_expected};
use super::{HISTORY_LIMIT, read_store, status_badge_ui};
use crate::clock::human_time;
use crate::clock::now_ms;
use crate::config::SyncOptions;
use crate::home::Home;
use crate::run_report::human_duration;
use crate::store::runs::{RunId, RunRecord};
use crate::ui::task::Lookup;

/// How often the history is read again (off the UI thread; a thousand runs read in a few
/// milliseconds): often enough that a run of another process shows live.
const REFRESH_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
pub struct History {
    pub runs: Vec<RunRecord>,
    /// The schedule waits for the administrator's first sync (the runner's rule).
    pub schedule_held: bool,
    reading: Lookup<(Vec<RunRecord>, bool)>,
    read_at: Option<Instant>,
    pub problem: Option<String>,
    /// The row the keyboard moves (Up, Down; Enter opens it).
    selected: Option<usize>,
}

impl History {
    pub fn loaded(&self) -> bool {
        self.read_at.is_some() && !self.reading.is_running()
    }

    pub fn refresh(&mut self, home: &Home, runtime: &Handle, repaint: &egui::Context) {
        self.read_at = Some(Instant::now());
        self.reading = read_store(home, runtime, repaint, |store| {
            Ok((
                store.runs(HISTORY_LIMIT)?,
                crate::runner::schedule::is_held(store)?,
            ))
        });
    }

    pub fn poll(&mut self, home: &Home, runtime: &Handle, repaint: &egui::Context) {
        self.reading.poll();
        match std::mem::take(&mut self.reading) {
            Lookup::Done((runs, held)) => {
                self.runs = runs;
                self.schedule_held = held;
                self.problem = None;
            }
            Lookup::Failed(problem) => {
                // A home that has not run yet has no database: no runs, not a problem.
                if crate::store::StateStore::exists(home) {
                    self.problem = Some(problem.to_string());
                }
            }
            other => self.reading = other,
        }
        let due = self
            .read_at
            .is_none_or(|read_at| read_at.elapsed() >= REFRESH_EVERY);
        if due && !self.reading.is_running() {
            self.refresh(home, runtime, repaint);
        }
    }
}

/// The history table. Returns the run to open.
pub fn history_ui(
    ui: &mut egui::Ui,
    history: &mut History,
    job: Option<&SyncJob>,
) -> Option<RunId> {
    let mut open = None;
    ui.horizontal(|ui| {
        ui.strong(format!("Run history ({} runs)", history.runs.len()));
        if history.reading.is_running() {
            ui.spinner();
        }
    });
    if history.runs.is_empty() {
        ui.label(if job.is_some() {
            "The first run is under way."
        } else {
            "No run yet. Sync now starts one; the schedule starts one on its own."
        });
        return None;
    }
    let row_count = history.runs.len();
    // Keyboard: Up and Down move the selection, Enter opens it, when no text field has focus.
    if ui.memory(|memory| memory.focused().is_none()) {
        let (up, down, enter) = ui.input(|input| {
            (
                input.key_pressed(egui::Key::ArrowUp),
                input.key_pressed(egui::Key::ArrowDown),
                input.key_pressed(egui::Key::Enter),
            )
        });
        let current = history.selected.unwrap_or(0);
        if down {
            history.selected =
                Some((current + usize::from(history.selected.is_some())).min(row_count - 1));
        }
        if up {
            history.selected = Some(current.saturating_sub(1));
        }
        if enter && let Some(index) = history.selected {
            open = Some(history.runs[index].id);
        }
    }
    let row_height = ui.text_style_height(&egui::TextStyle::Body) + 6.0;
    let selected = history.selected;
    let mut clicked_row = None;
    // Runs from more than one host (README, "Two hosts, one database"): a column says whose.
    let hosts: std::collections::BTreeSet<&str> = history
        .runs
        .iter()
        .filter_map(|run| run.host.as_deref())
        .collect();
    let show_host = hosts.len() > 1;
    // Every column stays reachable in a narrow window: the table scrolls sideways.
    egui::ScrollArea::horizontal()
        .id_salt("run_history_sideways")
        .show(ui, |ui| {
            TableBuilder::new(ui)
                .id_salt("run_history")
                .striped(true)
                .sense(egui::Sense::click())
                .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
                .column(Column::exact(62.0))
                .column(Column::exact(64.0))
                .column(Column::exact(64.0))
                .column(Column::exact(200.0))
                .column(Column::exact(138.0))
                .column(Column::exact(62.0))
                .columns(Column::exact(52.0), 4)
                .columns(Column::exact(138.0), usize::from(show_host))
                .column(Column::remainder().at_least(60.0).clip(true))
                .header(row_height, |mut header| {
                    for title in [
                        "Run",
                        "Trigger",
                        "Mode",
                        "Status",
                        "Start (UTC)",
                        "Duration",
                        "Adds",
                        "Updates",
                        "Deletes",
                        "Errors",
                        "Host",
                        "End (UTC)",
                    ] {
                        if title == "Host" && !show_host {
                            continue;
                        }
                        header.col(|ui| {
                            ui.strong(title);
                        });
                    }
                })
                .body(|body| {
                    body.rows(row_height, row_count, |mut row| {
                        let index = row.index();
                        let run = &history.runs[index];
                        row.set_selected(selected == Some(index));
                        let counters = run.result_counters();
                        let count = |value: Option<u64>| {
                            value.map_or("–".to_owned(), |value| value.to_string())
                        };
                        row.col(|ui| {
                            if ui.link(format!("Run {}", run.id)).clicked() {
                                open = Some(run.id);
                            }
                        });
                        row.col(|ui| {
                            ui.label(run.trigger.as_str());
                        });
                        row.col(|ui| {
                            ui.label(run.mode.as_str());
                        });
                        row.col(|ui| {
                            status_badge_ui(ui, run.status);
                        });
                        row.col(|ui| {
                            ui.label(human_time(run.started_at).trim_end_matches('Z'));
                        });
                        row.col(|ui| {
                            ui.label(run.ended_at.map_or("–".to_owned(), |ended| {
                                human_duration(ended - run.started_at)
                            }));
                        });
                        row.col(|ui| {
                            ui.label(count(counters.map(|c| c.adds)));
                        });
                        row.col(|ui| {
                            ui.label(count(counters.map(|c| c.updates)));
                        });
                        row.col(|ui| {
                            ui.label(count(counters.map(|c| c.deletes)));
                        });
                        row.col(|ui| {
                            let errors = run.error_count();
                            if errors > 0 {
                                ui.colored_label(crate::ui::theme::error(ui), errors.to_string());
                            } else {
                                ui.label("0");
                            }
                        });
                        if show_host {
                            row.col(|ui| {
                                ui.label(run.host.as_deref().unwrap_or("–"));
                            });
                        }
                        row.col(|ui| {
                            ui.label(
                                run.ended_at.map_or("–".to_owned(), |ended| {
                                    end_time(run.started_at, ended)
                                }),
                            );
                        });
                        let response = row.response();
                        if response.clicked() {
                            clicked_row = Some(index);
                        }
                        if response.double_clicked() {
                            open = Some(run.id);
                        }
                    });
                });
        });
    if let Some(index) = clicked_row {
        history.selected = Some(index);
    }
    open
}

/// A run of another process (the service, a `dirsync sync`), live as the store has it.
pub fn other_process_progress_ui(ui: &mut egui::Ui, run: &RunRecord, options: &SyncOptions) {
    let steps = steps_expected(
        run.mode == crate::store::vocabulary::RunMode::Password,
        options,
    );
    let live = LiveProgress::of_record(run, steps);
    let title = format!(
        "Run {} ({}, {}) in another process",
        run.id, run.trigger, run.mode
    );
    progress_ui(ui, &title, &live, false);
}

/// A run of the window's, live: stage, objects processed, rate, time left and a progress bar.
pub fn live_progress_ui(ui: &mut egui::Ui, job: &SyncJob, stopping: bool) {
    let title = format!("{} ({})", capitalized(&job.kind.describe()), job.trigger);
    progress_ui(ui, &title, &job.live, stopping);
}

/// A run's live line and progress bar.
fn progress_ui(ui: &mut egui::Ui, title: &str, live: &LiveProgress, stopping: bool) {
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        ui.spinner();
        let stage = live
            .step
            .map_or("starting (signing in)".to_owned(), |step| {
                step.as_str().to_owned()
            });
        let mut line = format!("{title} running: {stage}");
        if live.done > 0 || live.total.is_some() {
            line.push_str(&match live.total {
                Some(total) => format!(", {} of {total} objects", live.done),
                None => format!(", {} objects", live.done),
            });
        }
        if let Some(rate) = live.rate_per_sec() {
            line.push_str(&format!(", {rate:.0}/s"));
        }
        if let Some(left) = live.time_left() {
            line.push_str(&format!(
                ", about {} left",
                human_duration(left.as_millis() as i64)
            ));
        }
        line.push_str(&format!(
            "; {} so far",
            human_duration(now_ms() - live.started_at)
        ));
        if stopping {
            line.push_str(" — stopping at the next safe point…");
        }
        ui.label(line);
    });
    ui.add(
        egui::ProgressBar::new(live.fraction())
            .show_percentage()
            .desired_height(10.0),
    )
    .on_hover_text("How far the run is through its steps");
    ui.add_space(4.0);
}

/// The end as a time of day when the run ended the day it started (the usual case), else whole.
fn end_time(started_at: i64, ended_at: i64) -> String {
    let started = human_time(started_at);
    let ended = human_time(ended_at);
    let ended = ended.trim_end_matches('Z');
    match (started.split_once(' '), ended.split_once(' ')) {
        (Some((start_day, _)), Some((end_day, time))) if start_day == end_day => time.to_owned(),
        _ => ended.to_owned(),
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
