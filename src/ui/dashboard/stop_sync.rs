//! "Stop synchronizing…" on the Settings page: `dirsync uninstall` in the window (README,
//! "Turning sync off"). The preview is read first and shown; the removal starts only from it,
//! with an enterprise admin's password typed here (used once, never kept) and, for dirsync's
//! app, a Global Administrator's device code sign-in.

use tokio::runtime::Handle;

use crate::cloud::auth::DeviceCodePrompt;
use crate::home::Home;
use crate::secret::Secret;
use crate::setup::uninstall::{
    UninstallInputs, UninstallPreview, UninstallReport, preview, uninstall,
};
use crate::ui::task::{Lookup, SetupEvent};
use crate::ui::theme;

/// The page's state: closed until "Stop synchronizing…" is clicked.
#[derive(Debug, Default)]
pub struct StopSync {
    open: bool,
    clear_immutable_ids: bool,
    /// The flag the shown preview was read with.
    previewed_with: bool,
    preview: Lookup<UninstallPreview>,
    admin_user: String,
    admin_password: String,
    removal: Lookup<UninstallReport>,
    prompt: Option<DeviceCodePrompt>,
    /// What the removal said so far, in order.
    said: Vec<String>,
}

/// What the page asks of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSyncAction {
    None,
    /// Everything is removed: the window starts from scratch (the wizard).
    StartOver,
}

pub fn stop_sync_ui(
    ui: &mut egui::Ui,
    stop: &mut StopSync,
    home: &Home,
    runtime: &Handle,
) -> StopSyncAction {
    stop.preview.poll();
    for event in stop.removal.poll() {
        match event {
            SetupEvent::DeviceCode(prompt) => stop.prompt = Some(prompt),
            SetupEvent::Step(number, title) => stop.said.push(format!("{number}. {title}")),
            SetupEvent::Note(text) => stop.said.push(format!("    {text}")),
            SetupEvent::Warning(text) => stop.said.push(format!("⚠ {text}")),
            _ => {}
        }
    }
    if !stop.removal.is_running() {
        stop.prompt = None;
    }
    ui.heading("Stop synchronizing");
    if !stop.open {
        ui.weak("Removes what setup made (the service account and its rights, the sync app, the secrets, the service, the configuration) after showing it; the cloud users and groups stay.");
        if ui.button("Stop synchronizing…").clicked() {
            stop.open = true;
        }
        return StopSyncAction::None;
    }
    if let Lookup::Done(report) = &stop.removal {
        ui.colored_label(
            theme::ok(ui),
            format!(
                "✔ dirsync is uninstalled{}: setup starts from scratch.",
                if report.immutable_ids_cleared > 0 {
                    format!(
                        "; {} cloud user(s) are ordinary cloud accounts now",
                        report.immutable_ids_cleared
                    )
                } else {
                    String::new()
                }
            ),
        );
        said_ui(ui, &stop.said);
        return if ui.button("Start over").clicked() {
            StopSyncAction::StartOver
        } else {
            StopSyncAction::None
        };
    }
    let running = stop.removal.is_running();
    ui.add_enabled_ui(!running, |ui| {
        ui.checkbox(
            &mut stop.clear_immutable_ids,
            "Clear the synced users' onPremisesImmutableId (they become ordinary cloud accounts no later sync matches)",
        );
    });
    if matches!(stop.preview, Lookup::NotStarted) || stop.previewed_with != stop.clear_immutable_ids
    {
        let home = home.clone();
        let clear = stop.clear_immutable_ids;
        stop.previewed_with = clear;
        stop.preview = Lookup::start(runtime, ui.ctx(), move |_| async move {
            preview(&home, clear).await
        });
    }
    let ready = match &stop.preview {
        Lookup::Done(shown) => {
            preview_ui(ui, shown);
            true
        }
        Lookup::Running(_) | Lookup::NotStarted => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Reading what setup made…");
            });
            false
        }
        Lookup::Failed(problem) => {
            ui.colored_label(theme::error(ui), problem.to_string());
            false
        }
    };
    ui.add_enabled_ui(!running, |ui| {
        egui::Grid::new("stop_sync_admin")
            .num_columns(2)
            .spacing([12.0, 6.0])
            .show(ui, |ui| {
                let label = ui.label("Enterprise admin");
                ui.add(
                    egui::TextEdit::singleline(&mut stop.admin_user)
                        .hint_text("admin@corp.example.com")
                        .desired_width(320.0),
                )
                .labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Password");
                ui.add(
                    egui::TextEdit::singleline(&mut stop.admin_password)
                        .password(true)
                        .desired_width(320.0),
                )
                .labelled_by(label.id);
                ui.end_row();
            });
    });
    if running {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Removing…");
        });
        if let Some(prompt) = &stop.prompt {
            crate::ui::wizard::device_code_ui(ui, prompt);
        }
    }
    said_ui(ui, &stop.said);
    if let Lookup::Failed(problem) = &stop.removal {
        ui.add(
            egui::Label::new(
                egui::RichText::new(format!(
                    "The removal stopped: {problem}. Run it again: what is gone counts as done."
                ))
                .color(theme::error(ui)),
            )
            .wrap(),
        );
    }
    ui.horizontal(|ui| {
        let can_remove = ready
            && !running
            && !stop.admin_user.trim().is_empty()
            && !stop.admin_password.is_empty();
        if ui
            .add_enabled(can_remove, egui::Button::new("Remove all this"))
            .on_disabled_hover_text(
                "Needs the preview above and an enterprise admin's user and password",
            )
            .clicked()
        {
            start_removal(stop, home, runtime, ui.ctx());
        }
        if !running && ui.button("Cancel").clicked() {
            *stop = StopSync::default();
        }
    });
    StopSyncAction::None
}

fn start_removal(stop: &mut StopSync, home: &Home, runtime: &Handle, repaint: &egui::Context) {
    let inputs = UninstallInputs {
        admin_user: stop.admin_user.trim().to_owned(),
        // Taken out of the form: the password is not kept once it is used.
        admin_password: Secret::new(std::mem::take(&mut stop.admin_password)),
        clear_immutable_ids: stop.clear_immutable_ids,
    };
    let home = home.clone();
    stop.said.clear();
    stop.removal = Lookup::start(runtime, repaint, move |mut reporter| async move {
        let shown = preview(&home, inputs.clear_immutable_ids).await?;
        let report = Box::pin(uninstall(&home, &inputs, &mut reporter)).await?;
        let detail = report.in_words(&shown);
        crate::runner::audit::record_or_log(
            &home,
            crate::runner::audit::Source::Dashboard,
            "uninstalled",
            &detail,
            &[],
        );
        Ok(report)
    });
}

fn preview_ui(ui: &mut egui::Ui, shown: &UninstallPreview) {
    ui.strong("Will be removed:");
    for line in &shown.removes {
        ui.add(egui::Label::new(format!("• {line}")).wrap());
    }
    ui.strong("Stays:");
    for line in &shown.stays {
        ui.add(egui::Label::new(format!("• {line}")).wrap());
    }
    for warning in &shown.warnings {
        ui.colored_label(theme::warning(ui), format!("⚠ {warning}"));
    }
}

fn said_ui(ui: &mut egui::Ui, said: &[String]) {
    for line in said {
        ui.add(egui::Label::new(line.as_str()).wrap());
    }
}
