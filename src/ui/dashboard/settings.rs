//! Settings: the options without a wizard page (interval, deletion thresholds, disabling before
//! deleting, drift, staging mode, retention, the password cycle's interval) and where alerts go,
//! saved to
//! `config.toml`; "Configure…" reopens the wizard for the rest; "Send a test alert" proves the
//! alerts reach the webhook and the mail (README, "Alerts"); "Stop synchronizing…" removes what
//! setup made (`stop_sync`).

use crate::config::{Config, DriftAction, SyncOptions};
use crate::home::Home;
use crate::ui::task::Lookup;
use crate::ui::theme;

use super::stop_sync::{StopSync, StopSyncAction, stop_sync_ui};
use crate::ui::alerts_form::{AlertsForm, alerts_form_ui};

/// What the settings page asks of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsAction {
    None,
    /// "Configure…": the wizard on the saved configuration.
    Configure,
    /// dirsync was uninstalled: the wizard from scratch.
    StartOver,
}

#[derive(Debug)]
pub struct SettingsForm {
    interval_minutes: String,
    deletion_threshold: String,
    deletion_threshold_percent: String,
    disable_before_delete: bool,
    delete_after_days: String,
    restore_drift: bool,
    staging_mode: bool,
    retention_days: String,
    password_interval_secs: String,
    alerts: AlertsForm,
    /// The last save's result: what was saved, or which field is wrong.
    outcome: Option<Result<String, String>>,
    saved_now: bool,
    /// The last test alert: where it went, or why not.
    test_alert: Lookup<String>,
    stop_sync: StopSync,
}

impl SettingsForm {
    pub fn new(config: Option<&Config>) -> SettingsForm {
        let options = config
            .map(|config| config.options.clone())
            .unwrap_or_default();
        SettingsForm {
            interval_minutes: options.interval_minutes.to_string(),
            deletion_threshold: options.deletion_threshold.to_string(),
            deletion_threshold_percent: options.deletion_threshold_percent.to_string(),
            disable_before_delete: options.disable_before_delete,
            delete_after_days: options.delete_after_days.to_string(),
            restore_drift: options.drift == DriftAction::Restore,
            staging_mode: options.staging_mode,
            retention_days: options.retention_days.to_string(),
            password_interval_secs: options.password_interval_secs.to_string(),
            alerts: config
                .map(|config| AlertsForm::from_config(&config.monitoring))
                .unwrap_or_default(),
            outcome: None,
            saved_now: false,
            test_alert: Lookup::NotStarted,
            stop_sync: StopSync::default(),
        }
    }

    /// True once after a save: the dashboard reads the configuration again.
    pub fn saved_now(&mut self) -> bool {
        std::mem::take(&mut self.saved_now)
    }

    /// The form's values on top of `options`, or the first wrong field.
    fn apply_to(&self, options: &mut SyncOptions) -> Result<(), String> {
        /// A whole number, `at_least` or more, or what is wrong with the field.
        fn number<T: std::str::FromStr + PartialOrd + From<u8> + std::fmt::Display>(
            text: &str,
            field: &str,
            at_least: u8,
            what: &str,
        ) -> Result<T, String> {
            match text.trim().parse::<T>() {
                Ok(value) if value >= T::from(at_least) => Ok(value),
                _ => Err(format!(
                    "{field}: '{}' is not a whole number of {at_least} or more; enter {what}",
                    text.trim()
                )),
            }
        }
        options.interval_minutes = number(
            &self.interval_minutes,
            "Sync interval",
            1,
            "the minutes between scheduled syncs",
        )?;
        options.deletion_threshold = number(
            &self.deletion_threshold,
            "Deletion threshold",
            0,
            "the most removals one run may make (0 stops every removal)",
        )?;
        options.deletion_threshold_percent = number(
            &self.deletion_threshold_percent,
            "Deletion threshold (%)",
            0,
            "the largest share of the synced objects one run may remove, 1 to 100 (0: no share limit)",
        )?;
        if options.deletion_threshold_percent > 100 {
            return Err(format!(
                "Deletion threshold (%): {} is more than 100; enter a share from 1 to 100, or 0 for no share limit",
                options.deletion_threshold_percent
            ));
        }
        options.disable_before_delete = self.disable_before_delete;
        options.delete_after_days = number(
            &self.delete_after_days,
            "Delete after (days)",
            1,
            "the days between disabling a user that left the scope and deleting it",
        )?;
        options.drift = if self.restore_drift {
            DriftAction::Restore
        } else {
            DriftAction::Report
        };
        options.retention_days = number(
            &self.retention_days,
            "Keep run history",
            1,
            "the days to keep runs",
        )?;
        options.password_interval_secs = number(
            &self.password_interval_secs,
            "Password sync interval",
            1,
            "the seconds between password cycles",
        )?;
        options.staging_mode = self.staging_mode;
        Ok(())
    }

    fn save(&mut self, home: &Home, runtime: &tokio::runtime::Handle) {
        let result = Config::load(&home.config_file)
            .map_err(|error| error.to_string())
            .and_then(|mut config| {
                let previous = config.clone();
                self.apply_to(&mut config.options)?;
                self.alerts.apply_to(&mut config.monitoring)?;
                config
                    .validate(&home.config_file)
                    .map_err(|error| error.to_string())?;
                config
                    .save(&home.config_file)
                    .map_err(|error| error.to_string())?;
                // The trail is a database write, which may wait for a running cycle's: off
                // the window's thread.
                let home = home.clone();
                runtime.spawn_blocking(move || {
                    crate::runner::audit::record_configuration(
                        &home,
                        crate::runner::audit::Source::Dashboard,
                        "settings-saved",
                        Some(&previous),
                        &config,
                    );
                });
                Ok(())
            });
        self.saved_now = result.is_ok();
        self.outcome = Some(result.map(|()| {
            format!(
                "Saved to {}; the next run uses these settings",
                home.config_file.display()
            )
        }));
    }
}

/// The settings page (it scrolls: "Stop synchronizing…" opens a long preview).
pub fn settings_ui(
    ui: &mut egui::Ui,
    form: &mut SettingsForm,
    home: &Home,
    runtime: &tokio::runtime::Handle,
) -> SettingsAction {
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| settings_page_ui(ui, form, home, runtime))
        .inner
}

fn settings_page_ui(
    ui: &mut egui::Ui,
    form: &mut SettingsForm,
    home: &Home,
    runtime: &tokio::runtime::Handle,
) -> SettingsAction {
    let mut action = SettingsAction::None;
    ui.heading("Settings");
    ui.add_space(6.0);
    egui::Grid::new("settings")
        .num_columns(3)
        .spacing([12.0, 8.0])
        .show(ui, |ui| {
            number_row_ui(ui, "Sync interval (minutes)", &mut form.interval_minutes, "How often the schedule runs a delta sync");
            number_row_ui(
                ui,
                "Deletion threshold",
                &mut form.deletion_threshold,
                "A run that would remove more than this (deletes, disables, members removed from groups) removes none and stops, for you to look at",
            );
            number_row_ui(
                ui,
                "Deletion threshold (%)",
                &mut form.deletion_threshold_percent,
                "A run that would remove more than this share of the synced objects removes none and stops (0: no share limit)",
            );
            let label = ui.label("Disable before deleting");
            ui.checkbox(&mut form.disable_before_delete, "On").labelled_by(label.id);
            ui.weak("A user that leaves the scope is disabled and its sessions revoked; deleted later unless it comes back");
            ui.end_row();
            number_row_ui(
                ui,
                "Delete after (days)",
                &mut form.delete_after_days,
                "With disable before deleting: days between the disable and the delete",
            );
            let label = ui.label("Restore drift");
            ui.checkbox(&mut form.restore_drift, "On").labelled_by(label.id);
            ui.weak("A property changed in the cloud behind dirsync's back gets AD's value again (off: only reported)");
            ui.end_row();
            number_row_ui(ui, "Keep run history (days)", &mut form.retention_days, "Older runs are removed at the start of each run");
            number_row_ui(
                ui,
                "Password sync interval (seconds)",
                &mut form.password_interval_secs,
                "How often password hash sync looks for changed passwords (when it is on)",
            );
            let label = ui.label("Staging mode");
            ui.checkbox(&mut form.staging_mode, "On").labelled_by(label.id);
            ui.weak("Import and synchronize, never export: a standby server whose runs show what they would change");
            ui.end_row();
        });
    if form.staging_mode {
        ui.colored_label(
            theme::warning(ui),
            "In staging mode nothing reaches the cloud: new users are not created, changes and deletes wait.",
        );
    }
    ui.add_space(8.0);
    ui.strong("Alerts");
    alerts_form_ui(ui, &mut form.alerts);
    ui.add_space(8.0);
    ui.horizontal(|ui| {
        if ui.button("Save settings").clicked() {
            form.save(home, runtime);
        }
        if ui
            .button("Configure…")
            .on_hover_text("Reopen the wizard: cloud, directory, write-back, passwords, scope")
            .clicked()
        {
            action = SettingsAction::Configure;
        }
        if !form.test_alert.is_running()
            && ui
                .button("Send a test alert")
                .on_hover_text(
                    "Send a test alert to the webhook and the mail as saved, to prove they are reached",
                )
                .clicked()
        {
            let home = home.clone();
            form.test_alert = Lookup::start(runtime, ui.ctx(), move |_| async move {
                crate::runner::alerts::send_test(&home)
                    .await
                    .map(|reached| reached.join(" and "))
                    .map_err(|message| crate::setup::SetupFailure::failed(None, message))
            });
        }
    });
    form.test_alert.poll();
    match &form.test_alert {
        Lookup::Done(url) => {
            ui.colored_label(theme::ok(ui), format!("Sent a test alert to {url}"));
        }
        Lookup::Failed(problem) => {
            ui.colored_label(theme::error(ui), problem.to_string());
        }
        Lookup::Running(_) => {
            ui.spinner();
        }
        Lookup::NotStarted => {}
    }
    match &form.outcome {
        Some(Ok(message)) => {
            ui.colored_label(theme::ok(ui), message);
        }
        Some(Err(problem)) => {
            ui.colored_label(theme::error(ui), problem);
        }
        None => {}
    }
    ui.add_space(16.0);
    ui.separator();
    if stop_sync_ui(ui, &mut form.stop_sync, home, runtime) == StopSyncAction::StartOver {
        action = SettingsAction::StartOver;
    }
    action
}

fn number_row_ui(ui: &mut egui::Ui, label: &str, value: &mut String, help: &str) {
    let label_response = ui.label(label);
    ui.add(egui::TextEdit::singleline(value).desired_width(90.0))
        .labelled_by(label_response.id);
    ui.weak(help);
    ui.end_row();
}
