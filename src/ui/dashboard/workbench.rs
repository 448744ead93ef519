//! Errors: the error workbench (README, "The dashboard"). The latest complete sync run's errors grouped
//! by cause, each group with its count and its trend over the last runs, its objects with the
//! message and the fix, and an export of the group as CSV (the run export's format). For a value
//! another cloud object holds, the AD object and that holder side by side, the holder read live.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use tokio::runtime::Handle;

use super::read_store;
use crate::engine::holders::Holder;
use crate::home::Home;
use crate::run_report::{ErrorCause, error_cause, write_csv};
use crate::store::runs::{ErrorRecord, RunRecord};
use crate::store::vocabulary::{RunMode, RunStatus};
use crate::ui::task::Lookup;
use crate::ui::theme;

/// Sync runs the trend looks back over.
const TREND_RUNS: usize = 10;

/// The latest sync runs that went through, oldest first, each with its errors.
#[derive(Debug, Default)]
pub struct ErrorHistory {
    runs: Vec<(RunRecord, Vec<ErrorRecord>)>,
}

#[derive(Debug, Default)]
pub struct Workbench {
    history: Lookup<ErrorHistory>,
    export: Lookup<String>,
    /// The cloud holders of a conflicting value, by the DN of the AD object refused it.
    holders: HashMap<String, Lookup<Vec<Holder>>>,
}

impl Workbench {
    /// Reads again (after a run ended, or when asked).
    pub fn refresh(&mut self) {
        self.history = Lookup::NotStarted;
        self.holders.clear();
    }
}

pub fn workbench_ui(
    ui: &mut egui::Ui,
    workbench: &mut Workbench,
    home: &Home,
    runtime: &Handle,
    export_folder_override: Option<&Path>,
) {
    workbench.history.poll();
    workbench.export.poll();
    for holders in workbench.holders.values_mut() {
        holders.poll();
    }
    if matches!(workbench.history, Lookup::NotStarted) {
        workbench.history = read_store(home, runtime, ui.ctx(), |store| {
            let mut runs: Vec<RunRecord> = store
                .runs(TREND_RUNS * 4)?
                .into_iter()
                // Runs that went through: a failed, stopped or cancelled run did not check
                // every object, so its errors are not the directory's.
                .filter(|run| {
                    matches!(run.mode, RunMode::Full | RunMode::Delta)
                        && matches!(
                            run.status,
                            RunStatus::Success | RunStatus::CompletedWithErrors
                        )
                })
                .take(TREND_RUNS)
                .collect();
            runs.reverse();
            let mut history = ErrorHistory::default();
            for run in runs {
                let errors = store.run_errors(run.id)?;
                history.runs.push((run, errors));
            }
            Ok(history)
        });
    }
    ui.horizontal(|ui| {
        ui.heading("Errors by cause");
        if ui.button("Read again").clicked() {
            workbench.refresh();
        }
    });
    let history = match &workbench.history {
        Lookup::Done(history) => history,
        Lookup::Failed(problem) => {
            ui.colored_label(theme::error(ui), problem.to_string());
            return;
        }
        Lookup::NotStarted | Lookup::Running(_) => {
            ui.spinner();
            return;
        }
    };
    let Some((latest, errors)) = history.runs.last() else {
        ui.label("No sync run yet.");
        return;
    };
    ui.label(format!(
        "Run {} ({}): {} error{}. The trend counts each cause in the last {} sync runs, oldest first.",
        latest.id,
        latest.status.as_str(),
        errors.len(),
        if errors.len() == 1 { "" } else { "s" },
        history.runs.len()
    ));
    match &workbench.export {
        Lookup::Done(saved) => {
            ui.label(saved);
        }
        Lookup::Failed(problem) => {
            ui.colored_label(theme::error(ui), problem.to_string());
        }
        _ => {}
    }
    ui.add_space(6.0);
    // Every cause seen in the trend's runs: one fixed since shows with its count down to 0.
    let mut groups: BTreeMap<ErrorCause, Vec<&ErrorRecord>> = BTreeMap::new();
    for (_, run_errors) in &history.runs {
        for error in run_errors {
            groups.entry(error_cause(&error.error_type)).or_default();
        }
    }
    for error in errors {
        groups
            .entry(error_cause(&error.error_type))
            .or_default()
            .push(error);
    }
    if groups.is_empty() {
        ui.label("No errors in these runs.");
        return;
    }
    if errors.is_empty() {
        ui.label("No errors in the latest sync run; the causes below had some before.");
    }
    let mut export = None;
    let mut look_up = None;
    egui::ScrollArea::vertical()
        .id_salt("workbench_scroll")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            for (cause, members) in &groups {
                let trend: Vec<String> = history
                    .runs
                    .iter()
                    .map(|(_, errors)| {
                        errors
                            .iter()
                            .filter(|error| error_cause(&error.error_type) == *cause)
                            .count()
                            .to_string()
                    })
                    .collect();
                let title = format!(
                    "{}: {} (trend {})",
                    cause.title(),
                    members.len(),
                    trend.join(", ")
                );
                egui::CollapsingHeader::new(&title)
                    .id_salt(cause.title())
                    .default_open(!members.is_empty())
                    .show(ui, |ui| {
                        ui.horizontal(|ui| {
                            if !members.is_empty()
                                && !workbench.export.is_running()
                                && ui
                                    .button(format!("Export {} as CSV", cause.title()))
                                    .clicked()
                            {
                                export = Some(*cause);
                            }
                        });
                        ui.weak(cause.advice());
                        for error in members {
                            ui.add_space(4.0);
                            ui.colored_label(
                                theme::error(ui),
                                format!("{}  [{}]", error.dn, error.error_type),
                            );
                            ui.add(
                                egui::Label::new(format!("    {}", error.server_message)).wrap(),
                            );
                            ui.add(egui::Label::new(format!("    Fix: {}", error.hint)).wrap());
                            if *cause == ErrorCause::HeldInCloud
                                && let Some(found) =
                                    holders_ui(ui, error, workbench.holders.get(&error.dn))
                            {
                                look_up = Some(found);
                            }
                        }
                    });
            }
        });
    if let Some((error, property, value)) = look_up {
        let home = home.clone();
        let anchor = error.anchor.clone();
        let lookup = Lookup::start(runtime, ui.ctx(), move |_| async move {
            crate::runner::conflict_holders(&home, anchor.as_deref(), &property, &value)
                .await
                .map_err(|error| crate::setup::SetupFailure::failed(None, error.to_string()))
        });
        workbench.holders.insert(error.dn, lookup);
    }
    if let Some(cause) = export {
        let members: Vec<ErrorRecord> = groups
            .get(&cause)
            .map(|members| members.iter().map(|error| (*error).clone()).collect())
            .unwrap_or_default();
        workbench.export = start_export(
            latest.clone(),
            cause,
            members,
            export_folder_override,
            runtime,
            ui.ctx(),
        );
    }
}

/// The AD object and the cloud objects holding its value, side by side; or the button that
/// reads them. Returns the lookup to start when the button was clicked.
fn holders_ui(
    ui: &mut egui::Ui,
    error: &ErrorRecord,
    holders: Option<&Lookup<Vec<Holder>>>,
) -> Option<(ErrorRecord, String, String)> {
    let property = error.code.clone()?;
    let value = crate::cloud::conflict_value(&error.server_message)?.to_owned();
    let mut clicked = None;
    match holders {
        None | Some(Lookup::NotStarted) => {
            if ui.button(format!("Who holds {value}?")).clicked() {
                clicked = Some((error.clone(), property, value));
            }
        }
        Some(Lookup::Running(_)) => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!("Reading who holds {value} in the cloud…"));
            });
        }
        Some(Lookup::Failed(problem)) => {
            ui.colored_label(theme::error(ui), problem.to_string());
            if ui.button(format!("Who holds {value}?")).clicked() {
                clicked = Some((error.clone(), property, value));
            }
        }
        Some(Lookup::Done(holders)) if holders.is_empty() => {
            ui.label(format!(
                "No cloud object holds {value} now: it was freed since the run; the next run tries again."
            ));
        }
        Some(Lookup::Done(holders)) => {
            for holder in holders {
                ui.add_space(4.0);
                ui.columns(2, |columns| {
                    columns[0].strong("In AD");
                    columns[0].add(egui::Label::new(&error.dn).wrap());
                    columns[0].add(egui::Label::new(format!("{property}: {value}")).wrap());
                    let kind = match holder.kind {
                        crate::cloud::ObjectKind::User => "User",
                        crate::cloud::ObjectKind::Group => "Group",
                    };
                    let name = holder
                        .user_principal_name
                        .as_deref()
                        .or(holder.display_name.as_deref())
                        .unwrap_or(&holder.cloud_id);
                    columns[1].strong("In the cloud (read now)");
                    columns[1].add(egui::Label::new(format!("{kind} {name}")).wrap());
                    columns[1].label(format!("Object ID {}", holder.cloud_id));
                    columns[1].label(format!(
                        "Created {}",
                        holder.created.as_deref().unwrap_or("(not shown)")
                    ));
                    columns[1].add(
                        egui::Label::new(match &holder.synced_from {
                            Some(dn) => format!("Managed by dirsync: synced from {dn}"),
                            None => "Not managed by dirsync".to_owned(),
                        })
                        .wrap(),
                    );
                });
            }
            for holder in holders {
                ui.add(egui::Label::new(format!("    Fix: {}", holder.fix(&property))).wrap());
            }
        }
    }
    clicked
}

/// Writes one group as CSV (the run export's columns and rows), where the save dialog says or
/// in the override folder.
fn start_export(
    run: RunRecord,
    cause: ErrorCause,
    errors: Vec<ErrorRecord>,
    folder_override: Option<&Path>,
    runtime: &Handle,
    repaint: &egui::Context,
) -> Lookup<String> {
    let file_name = format!("dirsync-run-{}-{}.csv", run.id, cause.word());
    let path_override = folder_override.map(|folder| folder.join(&file_name));
    Lookup::start(runtime, repaint, move |_| async move {
        let failed = |message: String| crate::setup::SetupFailure::failed(None, message);
        let path: PathBuf = match path_override {
            Some(path) => path,
            None => match rfd::AsyncFileDialog::new()
                .set_title(format!("Export {}", cause.title()))
                .set_file_name(&file_name)
                .add_filter("CSV (spreadsheet)", &["csv"])
                .save_file()
                .await
            {
                Some(handle) => handle.path().to_owned(),
                None => {
                    return Err(failed(
                        "Not exported: no file was chosen. If no dialog appeared, this desktop has no file dialog (install xdg-desktop-portal or zenity)".to_owned(),
                    ));
                }
            },
        };
        let cannot_write =
            |error: std::io::Error| failed(format!("Cannot write {}: {error}", path.display()));
        let mut out = Vec::new();
        write_csv(&mut out, &run, &[], &errors).map_err(cannot_write)?;
        std::fs::write(&path, out).map_err(cannot_write)?;
        Ok(format!(
            "Saved {} error{} to {}",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" },
            path.display()
        ))
    })
}
