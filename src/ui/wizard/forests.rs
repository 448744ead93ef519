//! Step 4 (optional): other forests synced into the same tenant (README, "Several forests").
//! Each has its own domain controller and enterprise admin (checked now, never stored) and its
//! own OU tree. One forest is edited at a time; the list above says what each one is.

use tokio::runtime::Handle;

use super::directory::{AdminStep, admin_fields_ui};
use super::scope::{OuPicker, ScopeMarks, ou_picker_ui};
use crate::config::{Config, ScopeConfig};
use crate::secret::Secret;
use crate::setup::answers::ForestAnswers;
use crate::ui::theme;

/// One further forest as the wizard edits it.
#[derive(Debug, Default)]
pub struct ForestEntry {
    pub admin: AdminStep,
    pub picker: OuPicker,
    /// Its scoping rules, kept as the configuration or the answers had them.
    rules: crate::rules::RulesConfig,
}

impl ForestEntry {
    /// What the list says of it: the domain its admin check found, else the server entered.
    fn title(&self) -> String {
        match self.admin.session() {
            Some(session) => session.domain.dns_name(),
            None if self.admin.server.trim().is_empty() => "a new forest".to_owned(),
            None => self.admin.server.trim().to_owned(),
        }
    }

    /// Checked, and at least one OU in scope.
    fn ready(&self) -> bool {
        self.admin.session().is_some() && !self.picker.marks.included().is_empty()
    }
}

#[derive(Debug, Default)]
pub struct ForestsStep {
    pub forests: Vec<ForestEntry>,
    /// The forest being edited below the list.
    pub editing: Option<usize>,
}

impl ForestsStep {
    pub fn from_answers(forests: &[ForestAnswers]) -> ForestsStep {
        ForestsStep::with(forests.iter().map(|forest| {
            (
                AdminStep::from_answers(&forest.directory),
                &forest.scope,
                &forest.rules,
            )
        }))
    }

    /// "Configure…": the forests the configuration has; each admin signs in again.
    pub fn from_config(config: &Config) -> ForestsStep {
        ForestsStep::with(config.forests.iter().map(|forest| {
            (
                AdminStep::from_directory(&forest.directory),
                &forest.scope,
                &forest.rules,
            )
        }))
    }

    fn with<'a>(
        forests: impl Iterator<Item = (AdminStep, &'a ScopeConfig, &'a crate::rules::RulesConfig)>,
    ) -> ForestsStep {
        ForestsStep {
            forests: forests
                .map(|(admin, scope, rules)| {
                    let mut picker = OuPicker::default();
                    picker.marks = ScopeMarks::from_scope(&scope.included, &scope.excluded);
                    ForestEntry {
                        admin,
                        picker,
                        rules: rules.clone(),
                    }
                })
                .collect(),
            editing: None,
        }
    }

    /// Every forest added is checked and has OUs in scope (none added passes).
    pub fn passed(&self) -> bool {
        self.forests.iter().all(ForestEntry::ready)
    }

    pub fn busy(&self) -> bool {
        self.forests.iter().any(|forest| forest.admin.busy())
    }

    /// The answers' `[[forests]]`.
    pub fn answers(&self, timeout_secs: u64) -> Vec<ForestAnswers> {
        self.forests
            .iter()
            .map(|forest| ForestAnswers {
                directory: forest.admin.directory_answers(timeout_secs),
                scope: ScopeConfig {
                    included: forest.picker.marks.included(),
                    excluded: forest.picker.marks.excluded(),
                },
                rules: forest.rules.clone(),
            })
            .collect()
    }

    /// The forests' enterprise admins' passwords, in order (memory only).
    pub fn passwords(&self) -> Vec<Secret> {
        self.forests
            .iter()
            .map(|forest| Secret::new(forest.admin.password.clone()))
            .collect()
    }
}

pub fn forests_ui(
    ui: &mut egui::Ui,
    step: &mut ForestsStep,
    runtime: &Handle,
    verified: &[String],
) {
    ui.heading("Other forests (optional)");
    ui.label(
        "Sync users and groups of further Active Directory forests into the same tenant. Each \
         forest gets its own service account, made with its own enterprise admin (used now, never \
         stored), and its own OUs. The same person in two forests (the same mail) becomes one \
         cloud user; the first forest's values win.",
    );
    ui.add_space(8.0);
    let mut remove = None;
    egui::Grid::new("other_forests")
        .num_columns(3)
        .spacing([12.0, 4.0])
        .show(ui, |ui| {
            for (index, forest) in step.forests.iter().enumerate() {
                let state = if forest.ready() {
                    egui::RichText::new(format!("✔ {}", forest.title())).color(theme::ok(ui))
                } else {
                    egui::RichText::new(format!("… {} (not checked yet)", forest.title()))
                };
                ui.label(state);
                if ui
                    .add_enabled(step.editing != Some(index), egui::Button::new("Edit"))
                    .clicked()
                {
                    step.editing = Some(index);
                }
                if ui.button("Remove this forest").clicked() {
                    remove = Some(index);
                }
                ui.end_row();
            }
        });
    if let Some(index) = remove {
        step.forests.remove(index);
        step.editing = None;
    }
    if ui.button("Add another forest").clicked() {
        step.forests.push(ForestEntry::default());
        step.editing = Some(step.forests.len() - 1);
    }
    let Some(index) = step.editing.filter(|index| *index < step.forests.len()) else {
        return;
    };
    let forest = &mut step.forests[index];
    ui.separator();
    ui.strong(format!(
        "Forest {}: its domain controller and enterprise admin",
        index + 2
    ));
    admin_fields_ui(ui, &mut forest.admin, runtime, verified);
    if let Some(session) = forest.admin.session().cloned() {
        ui.add_space(8.0);
        ui.strong(format!(
            "Which OUs of {} to synchronize",
            session.domain.dns_name()
        ));
        ou_picker_ui(ui, &mut forest.picker, runtime, Some(&session));
    }
}
