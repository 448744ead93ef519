//! Search: find an object by name, DN, UPN, mail or anchor, and see its history across runs.

use egui_extras::{Column, TableBuilder};
use tokio::runtime::Handle;

use super::object::ObjectSource;
use super::read_store;
use crate::clock::human_time;
use crate::home::Home;
use crate::store::browse::{FoundObject, HistoryEntry, HistoryEvent};
use crate::store::runs::RunId;
use crate::ui::task::Lookup;
use crate::ui::theme;

/// A search shows at most this many objects.
const FOUND_LIMIT: usize = 200;

#[derive(Debug, Default)]
pub struct Search {
    text: String,
    found: Lookup<Vec<FoundObject>>,
    /// The object picked, with its history.
    picked: Option<(FoundObject, Lookup<Vec<HistoryEntry>>)>,
}

/// What the search page asks for.
pub enum SearchAction {
    None,
    /// An entry of an object's history.
    OpenObject(ObjectSource),
    OpenRun(RunId),
}

/// The search page.
pub fn search_ui(
    ui: &mut egui::Ui,
    search: &mut Search,
    home: &Home,
    runtime: &Handle,
    repaint: &egui::Context,
) -> SearchAction {
    search.found.poll();
    if let Some((_, history)) = &mut search.picked {
        history.poll();
    }
    let mut open = SearchAction::None;
    ui.horizontal(|ui| {
        let label = ui.label("Find an object:");
        let field = ui
            .add(
                egui::TextEdit::singleline(&mut search.text)
                    .desired_width(360.0)
                    .hint_text("name, DN, UPN, mail or anchor"),
            )
            .labelled_by(label.id);
        let entered = field.lost_focus() && ui.input(|input| input.key_pressed(egui::Key::Enter));
        let can_search = !search.text.trim().is_empty() && !search.found.is_running();
        if (ui
            .add_enabled(can_search, egui::Button::new("Search"))
            .clicked()
            || entered)
            && can_search
        {
            let text = search.text.clone();
            search.picked = None;
            search.found = read_store(home, runtime, repaint, move |store| {
                store.find_objects(&text, FOUND_LIMIT)
            });
        }
        if search.found.is_running() {
            ui.spinner();
        }
        // An object that never synced is in neither the sync state nor the history: the trace
        // reads it from AD (README, "Tracing one object").
        if ui
            .add_enabled(
                !search.text.trim().is_empty(),
                egui::Button::new("Trace in AD"),
            )
            .on_hover_text("Read this DN, UPN, sAMAccountName or objectGUID from AD and the tenant now, and follow it through every stage of a cycle")
            .clicked()
        {
            open = SearchAction::OpenObject(ObjectSource::Query(search.text.trim().to_owned()));
        }
    });
    ui.add_space(6.0);
    if let Some(problem) = search.found.failure() {
        ui.colored_label(theme::error(ui), problem.to_string());
    }
    if let Some(found) = search.found.done() {
        if found.is_empty() {
            ui.label("Nothing found in the sync state or the kept run history: \"Trace in AD\" reads AD and the tenant now.");
        } else {
            ui.strong(format!(
                "{} object(s){}",
                found.len(),
                if found.len() == FOUND_LIMIT {
                    " (the first ones; refine the search)"
                } else {
                    ""
                }
            ));
            egui::ScrollArea::vertical()
                .id_salt("search_found")
                .max_height(160.0)
                .show(ui, |ui| {
                    for object in found {
                        let picked = search
                            .picked
                            .as_ref()
                            .is_some_and(|(picked, _)| picked.anchor == object.anchor);
                        let kind = object.object_type.map_or("", |kind| kind.as_str());
                        if ui
                            .selectable_label(
                                picked,
                                format!("{}   ({kind}, anchor {})", object.dn, object.anchor),
                            )
                            .clicked()
                        {
                            let anchor = object.anchor.clone();
                            let history = read_store(home, runtime, repaint, move |store| {
                                store.object_history(&anchor)
                            });
                            search.picked = Some((object.clone(), history));
                        }
                    }
                });
        }
    }
    if let Some((object, history)) = &search.picked {
        ui.separator();
        ui.strong(format!("History of {}", object.dn));
        match history {
            Lookup::Done(entries) if entries.is_empty() => {
                ui.label("No run in the kept history changed this object.");
            }
            Lookup::Done(entries) => open = history_table_ui(ui, entries),
            Lookup::Failed(problem) => {
                ui.colored_label(theme::error(ui), problem.to_string());
            }
            _ => {
                ui.spinner();
            }
        }
    }
    open
}

fn history_table_ui(ui: &mut egui::Ui, entries: &[HistoryEntry]) -> SearchAction {
    let mut open = SearchAction::None;
    let row_height = ui.text_style_height(&egui::TextStyle::Body) + 6.0;
    TableBuilder::new(ui)
        .id_salt("object_history")
        .striped(true)
        .sense(egui::Sense::click())
        .column(Column::exact(70.0))
        .column(Column::exact(150.0))
        .column(Column::exact(130.0))
        .column(Column::exact(150.0))
        .column(Column::remainder().clip(true))
        .header(row_height, |mut header| {
            for title in ["Run", "Started (UTC)", "Step", "What", "DN then"] {
                header.col(|ui| {
                    ui.strong(title);
                });
            }
        })
        .body(|body| {
            body.rows(row_height, entries.len(), |mut row| {
                let entry = &entries[row.index()];
                let (step, what, dn, source) = match &entry.event {
                    HistoryEvent::Change(change) => (
                        change.step,
                        change.change_kind.as_str().to_owned(),
                        change.dn.clone(),
                        ObjectSource::Change {
                            id: change.id,
                            imported: change.imported,
                        },
                    ),
                    HistoryEvent::Error(error) => (
                        error.step,
                        format!("error: {}", error.error_type),
                        error.dn.clone(),
                        ObjectSource::Error(Box::new(error.clone())),
                    ),
                };
                row.col(|ui| {
                    if ui.link(format!("Run {}", entry.run_id)).clicked() {
                        open = SearchAction::OpenRun(entry.run_id);
                    }
                });
                row.col(|ui| {
                    ui.label(human_time(entry.run_started_at).trim_end_matches('Z'));
                });
                row.col(|ui| {
                    ui.label(step.as_str());
                });
                let mut clicked = false;
                row.col(|ui| {
                    clicked = ui.link(&what).clicked();
                });
                row.col(|ui| {
                    ui.add(egui::Label::new(&dn).truncate());
                });
                if clicked {
                    open = SearchAction::OpenObject(source);
                }
            });
        });
    open
}
