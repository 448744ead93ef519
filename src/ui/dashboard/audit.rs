//! Audit: the audit trail (README, "The audit trail"), newest first: who changed the
//! configuration, confirmed deletes or pushed, from where, and each field's old and new value.

use tokio::runtime::Handle;

use super::read_store;
use crate::clock::iso_time;
use crate::home::Home;
use crate::store::audit::AuditEntry;
use crate::ui::task::Lookup;
use crate::ui::theme;

/// Entries the page shows.
const SHOWN: usize = 500;

#[derive(Debug, Default)]
pub struct AuditPage {
    entries: Lookup<Vec<AuditEntry>>,
}

impl AuditPage {
    /// Reads again the next time the page shows.
    pub fn refresh(&mut self) {
        self.entries = Lookup::NotStarted;
    }
}

pub fn audit_ui(ui: &mut egui::Ui, page: &mut AuditPage, home: &Home, runtime: &Handle) {
    page.entries.poll();
    if matches!(page.entries, Lookup::NotStarted) {
        page.entries = read_store(home, runtime, ui.ctx(), |store| store.audit_entries(SHOWN));
    }
    ui.horizontal(|ui| {
        ui.heading("Audit trail");
        if ui.button("Read again").clicked() {
            page.refresh();
        }
    });
    ui.weak("Every change to what dirsync does: the configuration (setup, the wizard, these settings, a renewed credential), confirmed deletes and pushes. Secrets are never recorded.");
    ui.add_space(6.0);
    let entries = match &page.entries {
        Lookup::Done(entries) => entries,
        Lookup::Failed(problem) => {
            ui.colored_label(theme::error(ui), problem.to_string());
            return;
        }
        Lookup::NotStarted | Lookup::Running(_) => {
            ui.spinner();
            return;
        }
    };
    if entries.is_empty() {
        ui.label("No changes recorded yet.");
        return;
    }
    egui::ScrollArea::vertical()
        .id_salt("audit_scroll")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            for entry in entries {
                let detail = if entry.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", entry.detail)
                };
                ui.strong(format!(
                    "{}  {}  ({}, {}){detail}",
                    iso_time(entry.at),
                    entry.action,
                    entry.source,
                    entry.os_user
                ));
                for change in &entry.changes {
                    ui.add(
                        egui::Label::new(format!(
                            "    {}: {} -> {}",
                            change.field,
                            change.old.as_deref().unwrap_or("(none)"),
                            change.new.as_deref().unwrap_or("(none)")
                        ))
                        .wrap(),
                    );
                }
                ui.add_space(4.0);
            }
        });
}
