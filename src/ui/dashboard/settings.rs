//! Settings: the options without a wizard page (interval, deletion thresholds, disabling before
//! deleting, drift, staging mode, retention, the password cycle's interval) and where alerts go,
//! saved to
//! `config.toml`; "Configure…" reopens the wizard for the rest; "Send a test alert" proves the
//! alerts reach the webhook and the mail (README, "Alerts"); "Stop synchronizing…" removes what
//! setup made (`stop_sync`). "Sync rules" edits the rules (README, "Sync rules"): tested on an
//! object, previewed over the whole scope, then saved.

use crate::config::{Config, DriftAction, SyncOptions};
use crate::home::Home;
use crate::ui::task::Lookup;
use crate::ui::theme;

use super::stop_sync::{StopSync, StopSyncAction, stop_sync_ui};
use crate::rules::RulesConfig;
use crate::runner::rules::RulesPreviewReport;
use crate::ui::alerts_form::{AlertsForm, alerts_form_ui};
use crate::ui::rules_editor::{EditorAction, RulesEditor, rules_editor_ui};

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
    rules: RulesEditor,
    /// The last preview, with the rules it was made for: Save is offered for those only.
    rules_preview: Lookup<(RulesConfig, RulesPreviewReport)>,
    rules_saved: Lookup<String>,
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
            rules: config
                .map(|config| RulesEditor::from_config(&config.rules))
                .unwrap_or_default(),
            rules_preview: Lookup::NotStarted,
            rules_saved: Lookup::NotStarted,
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
    ui.add_space(12.0);
    egui::CollapsingHeader::new("Sync rules")
        .id_salt("settings_sync_rules")
        .show(ui, |ui| rules_section_ui(ui, form, home, runtime));
    ui.add_space(16.0);
    ui.separator();
    if stop_sync_ui(ui, &mut form.stop_sync, home, runtime) == StopSyncAction::StartOver {
        action = SettingsAction::StartOver;
    }
    action
}

/// The rules editor, its test as the service account, the preview over the scope and the save.
fn rules_section_ui(
    ui: &mut egui::Ui,
    form: &mut SettingsForm,
    home: &Home,
    runtime: &tokio::runtime::Handle,
) {
    if let EditorAction::Test(rules, object) = rules_editor_ui(ui, &mut form.rules) {
        let home = home.clone();
        form.rules.test = Lookup::start(runtime, ui.ctx(), move |_| async move {
            crate::runner::rules::test_rule_set(&home, &rules, &object)
                .await
                .map_err(|error| crate::setup::SetupFailure::failed(None, error.to_string()))
        });
    }
    ui.add_space(6.0);
    let candidate = form.rules.to_config();
    let valid = form.rules.check().is_ok();
    form.rules_preview.poll();
    let was_saving = form.rules_saved.is_running();
    form.rules_saved.poll();
    if was_saving && form.rules_saved.done().is_some() {
        // Once: the dashboard reads the configuration again.
        form.saved_now = true;
    }
    let previewed = matches!(&form.rules_preview, Lookup::Done((rules, _)) if *rules == candidate);
    ui.horizontal(|ui| {
        if ui
            .add_enabled(
                valid && !form.rules_preview.is_running(),
                egui::Button::new("Preview rule changes"),
            )
            .on_hover_text("Read every user and group in the scope and say what these rules would change; changes nothing")
            .clicked()
        {
            let home = home.clone();
            let rules = candidate.clone();
            form.rules_saved = Lookup::NotStarted;
            form.rules_preview = Lookup::start(runtime, ui.ctx(), move |_| async move {
                let file = home.config_file.clone();
                crate::runner::rules::preview_rules(&home, &rules, &file, &|_| {})
                    .await
                    .map(|report| (rules, report))
                    .map_err(|error| crate::setup::SetupFailure::failed(None, error.to_string()))
            });
        }
        if ui
            .add_enabled(previewed && !form.rules_saved.is_running(), egui::Button::new("Save rules"))
            .on_hover_text("Save these rules to config.toml; the next sync reads every object again under them")
            .clicked()
        {
            let home = home.clone();
            let rules = candidate.clone();
            form.rules_saved = Lookup::read(runtime, ui.ctx(), move || {
                crate::runner::rules::save_rules(
                    &home,
                    &rules,
                    &home.config_file,
                    crate::runner::audit::Source::Dashboard,
                )
                .map(|_| "Rules saved; the next sync reads every object again under them".to_owned())
                .map_err(|error| error.to_string())
            });
        }
    });
    match &form.rules_preview {
        Lookup::Running(_) => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Reading the scope…");
            });
        }
        Lookup::Failed(failure) => {
            ui.colored_label(theme::error(ui), failure.to_string());
        }
        Lookup::Done((rules, report)) => {
            if *rules != candidate {
                ui.weak("The rules changed since this preview: preview again before saving.");
            }
            if report.over_threshold {
                ui.colored_label(
                    theme::warning(ui),
                    format!(
                        "{} removals exceed the deletion threshold ({}): the first sync stops before removing any until you confirm them.",
                        report.preview.leaving, report.deletion_threshold
                    ),
                );
            }
            ui.label(egui::RichText::new(report.in_words()).monospace());
        }
        Lookup::NotStarted => {}
    }
    match &form.rules_saved {
        Lookup::Done(message) => {
            ui.colored_label(theme::ok(ui), message);
        }
        Lookup::Failed(failure) => {
            ui.colored_label(theme::error(ui), failure.to_string());
        }
        _ => {}
    }
}

fn number_row_ui(ui: &mut egui::Ui, label: &str, value: &mut String, help: &str) {
    let label_response = ui.label(label);
    ui.add(egui::TextEdit::singleline(value).desired_width(90.0))
        .labelled_by(label_response.id);
    ui.weak(help);
    ui.end_row();
}
