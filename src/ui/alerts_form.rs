//! Where alerts go (README, "Alerts"): the webhook and the mail's server, sender and
//! recipients, as the wizard's review step and the dashboard's Settings page ask for them. An
//! empty field leaves its destination off; the CA files stay in the answers file and
//! `config.toml`.

use crate::config::MonitoringConfig;
use crate::ui::theme;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertsForm {
    webhook_url: String,
    email_smtp: String,
    email_from: String,
    /// Recipients separated by commas.
    email_to: String,
}

impl AlertsForm {
    pub fn from_config(monitoring: &MonitoringConfig) -> AlertsForm {
        AlertsForm {
            webhook_url: monitoring.webhook_url.clone().unwrap_or_default(),
            email_smtp: monitoring.email_smtp.clone().unwrap_or_default(),
            email_from: monitoring.email_from.clone().unwrap_or_default(),
            email_to: monitoring.email_to.join(", "),
        }
    }

    /// The form's values on top of `monitoring`, or the first wrong field in the form's words.
    pub fn apply_to(&self, monitoring: &mut MonitoringConfig) -> Result<(), String> {
        let optional = |text: &str| {
            let text = text.trim();
            (!text.is_empty()).then(|| text.to_owned())
        };
        monitoring.webhook_url = optional(&self.webhook_url);
        monitoring.email_smtp = optional(&self.email_smtp);
        monitoring.email_from = optional(&self.email_from);
        monitoring.email_to = self
            .email_to
            .split(',')
            .map(str::trim)
            .filter(|to| !to.is_empty())
            .map(str::to_owned)
            .collect();
        monitoring.check_alerts().map_err(|(field, message)| {
            let label = match field {
                "monitoring.webhook_url" => "Alert webhook",
                "monitoring.email_smtp" => "Alert mail server",
                "monitoring.email_from" => "Alert mail from",
                "monitoring.email_to" => "Alert mail to",
                other => other,
            };
            format!("{label}: {message}")
        })
    }
}

/// The four fields, labelled (the label is each field's accessible name), with what each is for.
pub fn alerts_form_ui(ui: &mut egui::Ui, form: &mut AlertsForm) {
    egui::Grid::new("alerts_form")
        .num_columns(3)
        .spacing([12.0, 6.0])
        .show(ui, |ui| {
            row_ui(
                ui,
                "Alert webhook",
                &mut form.webhook_url,
                "https://hooks.example.com/dirsync",
                "A JSON document is POSTed here when a condition begins and ends",
            );
            row_ui(
                ui,
                "Alert mail server",
                &mut form.email_smtp,
                "smtp.example.com:587",
                "STARTTLS is required; the server must relay for this computer",
            );
            row_ui(
                ui,
                "Alert mail from",
                &mut form.email_from,
                "dirsync@example.com",
                "The sender of alert mail",
            );
            row_ui(
                ui,
                "Alert mail to",
                &mut form.email_to,
                "admins@example.com, oncall@example.com",
                "Who gets alert mail, separated by commas",
            );
        });
}

fn row_ui(ui: &mut egui::Ui, label: &str, value: &mut String, hint: &str, help: &str) {
    let label = ui.label(label);
    ui.add_sized(
        [320.0, ui.spacing().interact_size.y],
        egui::TextEdit::singleline(value).hint_text(hint),
    )
    .labelled_by(label.id);
    ui.weak(help);
    ui.end_row();
}

/// The form's problem, if any, in the error colour.
pub fn alerts_problem_ui(ui: &mut egui::Ui, form: &AlertsForm) {
    if let Err(problem) = form.apply_to(&mut MonitoringConfig::default()) {
        ui.colored_label(theme::error(ui), problem);
    }
}
