//! The sync rules editor (README, "Sync rules"), as the wizard's Rules step and the dashboard's
//! Settings show it: per object type an LDAP filter, the ordered scoping rules and the mappings,
//! with the default flow listed beside them; checked as typed (the first wrong field named);
//! "Test" tries the rules on an object the administrator names. The caller starts the test
//! (the wizard as the enterprise admin, the dashboard as the service account).

use crate::engine::attribute_flow::default_flow_of;
use crate::rules::{
    ActionConfig, ObjectRulesConfig, RuleKind, RulesConfig, ScopingRuleConfig, SyncRules,
};
use crate::runner::rules::RuleSetTest;
use crate::ui::task::Lookup;
use crate::ui::theme;

const OPERATORS: &[(&str, &str)] = &[
    ("equals", "equals"),
    ("starts-with", "starts with"),
    ("ends-with", "ends with"),
    ("matches", "matches (regex)"),
    ("present", "is present"),
    ("member-of", "member of (direct)"),
    ("member-of-nested", "member of (nested)"),
];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RuleRow {
    include: bool,
    attribute: String,
    operator: String,
    value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct MappingRow {
    property: String,
    expression: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct KindForm {
    ldap_filter: String,
    scoping: Vec<RuleRow>,
    mappings: Vec<MappingRow>,
}

impl KindForm {
    fn from_config(config: &ObjectRulesConfig) -> KindForm {
        KindForm {
            ldap_filter: config.ldap_filter.clone().unwrap_or_default(),
            scoping: config
                .scoping
                .iter()
                .map(|rule| RuleRow {
                    include: rule.action == ActionConfig::Include,
                    attribute: rule.attribute.clone(),
                    operator: rule.operator.clone(),
                    value: rule.value.clone(),
                })
                .collect(),
            mappings: config
                .mappings
                .iter()
                .map(|(property, expression)| MappingRow {
                    property: property.clone(),
                    expression: expression.clone(),
                })
                .collect(),
        }
    }

    fn to_config(&self) -> ObjectRulesConfig {
        let filter = self.ldap_filter.trim();
        ObjectRulesConfig {
            ldap_filter: (!filter.is_empty()).then(|| filter.to_owned()),
            scoping: self
                .scoping
                .iter()
                .map(|row| ScopingRuleConfig {
                    action: if row.include {
                        ActionConfig::Include
                    } else {
                        ActionConfig::Exclude
                    },
                    attribute: row.attribute.trim().to_owned(),
                    operator: row.operator.clone(),
                    value: row.value.trim().to_owned(),
                })
                .collect(),
            mappings: self
                .mappings
                .iter()
                .filter(|row| !row.property.trim().is_empty())
                .map(|row| {
                    (
                        row.property.trim().to_owned(),
                        row.expression.trim().to_owned(),
                    )
                })
                .collect(),
        }
    }
}

/// What the editor asks of its page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditorAction {
    None,
    /// "Test" on this object with these rules.
    Test(RulesConfig, String),
}

#[derive(Debug, Default)]
pub struct RulesEditor {
    showing_groups: bool,
    users: KindForm,
    groups: KindForm,
    /// The object a test reads: a DN, UPN, sAMAccountName or objectGUID.
    pub test_object: String,
    pub test: Lookup<RuleSetTest>,
}

impl RulesEditor {
    pub fn from_config(config: &RulesConfig) -> RulesEditor {
        RulesEditor {
            users: KindForm::from_config(&config.users),
            groups: KindForm::from_config(&config.groups),
            ..RulesEditor::default()
        }
    }

    pub fn to_config(&self) -> RulesConfig {
        RulesConfig {
            users: self.users.to_config(),
            groups: self.groups.to_config(),
        }
    }

    /// The rules, checked; else the first wrong field, in the editor's words.
    pub fn check(&self) -> Result<SyncRules, String> {
        let config = self.to_config();
        for (kind, form) in [("Users", &self.users), ("Groups", &self.groups)] {
            if let Some(row) = form
                .mappings
                .iter()
                .find(|row| !row.property.trim().is_empty() && row.expression.trim().is_empty())
            {
                return Err(format!(
                    "{kind}, mapping of {}: the expression is empty (an attribute's name, \"text\" or a function)",
                    row.property.trim()
                ));
            }
        }
        crate::rules::compile(&config).map_err(|error| in_words(&error.field, &error.message))
    }
}

/// A field of `[rules]` as the editor names it: `rules.users.scoping[2]` → `Users, scoping
/// rule 2`.
fn in_words(field: &str, message: &str) -> String {
    let rest = field.strip_prefix("rules.").unwrap_or(field);
    let (kind, rest) = rest.split_once('.').unwrap_or((rest, ""));
    let kind = if kind == "groups" { "Groups" } else { "Users" };
    let place = if let Some(number) = rest
        .strip_prefix("scoping[")
        .and_then(|rest| rest.strip_suffix(']'))
    {
        format!("scoping rule {number}")
    } else if let Some(property) = rest.strip_prefix("mappings.") {
        format!("mapping of {property}")
    } else {
        "LDAP filter".to_owned()
    };
    format!("{kind}, {place}: {message}")
}

/// The editor. Returns what the page is asked to do.
pub fn rules_editor_ui(ui: &mut egui::Ui, editor: &mut RulesEditor) -> EditorAction {
    let mut action = EditorAction::None;
    ui.horizontal(|ui| {
        ui.selectable_value(&mut editor.showing_groups, false, "Users");
        ui.selectable_value(&mut editor.showing_groups, true, "Groups");
    });
    let kind = if editor.showing_groups {
        RuleKind::Groups
    } else {
        RuleKind::Users
    };
    let form = if editor.showing_groups {
        &mut editor.groups
    } else {
        &mut editor.users
    };
    let word = kind.word();
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        let label = ui.label("LDAP filter");
        ui.add(
            egui::TextEdit::singleline(&mut form.ldap_filter)
                .hint_text("(employeeType=staff)")
                .desired_width(360.0),
        )
        .labelled_by(label.id)
        .on_hover_text(format!(
            "Optional: only the {word} the domain controller says match this filter"
        ));
    });
    ui.add_space(6.0);
    ui.strong("Scoping rules");
    ui.weak(
        "In order: the first rule that holds decides. With no rule holding, an object is in only \
         when no rule is an include rule.",
    );
    scoping_ui(ui, form, word);
    ui.add_space(6.0);
    ui.strong("Mappings");
    ui.weak(
        "A mapping makes its property instead of the default flow: an attribute's name (c), \
         \"text\", or an expression such as Join(\" \", [givenName], [sn]).",
    );
    mappings_ui(ui, form, kind);
    ui.add_space(6.0);
    let checked = editor.check();
    match &checked {
        Ok(_) => {
            ui.colored_label(theme::ok(ui), "The rules are valid.");
        }
        Err(problem) => {
            ui.colored_label(theme::error(ui), problem);
        }
    }
    ui.add_space(6.0);
    ui.horizontal(|ui| {
        let label = ui.label("Test on");
        ui.add(
            egui::TextEdit::singleline(&mut editor.test_object)
                .hint_text("a user's UPN, a DN or a sAMAccountName")
                .desired_width(300.0),
        )
        .labelled_by(label.id);
        let can_test =
            checked.is_ok() && !editor.test_object.trim().is_empty() && !editor.test.is_running();
        if ui
            .add_enabled(can_test, egui::Button::new("Test"))
            .on_hover_text("Read the object now and show what these rules make of it")
            .clicked()
        {
            action = EditorAction::Test(editor.to_config(), editor.test_object.trim().to_owned());
        }
    });
    editor.test.poll();
    match &editor.test {
        Lookup::Running(_) => {
            ui.spinner();
        }
        Lookup::Failed(failure) => {
            ui.colored_label(theme::error(ui), failure.to_string());
        }
        Lookup::Done(test) => test_result_ui(ui, test),
        Lookup::NotStarted => {}
    }
    ui.add_space(6.0);
    let form = if editor.showing_groups {
        &mut editor.groups
    } else {
        &mut editor.users
    };
    default_flow_ui(ui, form, kind);
    action
}

fn scoping_ui(ui: &mut egui::Ui, form: &mut KindForm, word: &str) {
    let mut remove = None;
    let mut raise = None;
    let count = form.scoping.len();
    // Rows, not a grid: a grid's cell offers a text field only last frame's column width.
    for (index, row) in form.scoping.iter_mut().enumerate() {
        ui.horizontal(|ui| {
            let number = index + 1;
            ui.selectable_value(&mut row.include, true, "include");
            ui.selectable_value(&mut row.include, false, "exclude");
            let membership = row.operator.starts_with("member-of");
            let attribute = ui.add_enabled(
                !membership,
                egui::TextEdit::singleline(&mut row.attribute)
                    .hint_text("attribute")
                    .desired_width(140.0),
            );
            named(&attribute, &format!("Rule {number} attribute"));
            let shown = OPERATORS
                .iter()
                .find(|(operator, _)| *operator == row.operator)
                .map_or("choose", |(_, words)| *words);
            egui::ComboBox::from_id_salt(("scoping_operator", word, index))
                .selected_text(shown)
                .show_ui(ui, |ui| {
                    for (operator, words) in OPERATORS {
                        ui.selectable_value(&mut row.operator, (*operator).to_owned(), *words);
                    }
                });
            let value = ui.add_enabled(
                row.operator != "present",
                egui::TextEdit::singleline(&mut row.value)
                    .hint_text(if membership {
                        "the group's DN"
                    } else {
                        "value"
                    })
                    .desired_width(260.0),
            );
            named(&value, &format!("Rule {number} value"));
            if ui
                .add_enabled(index > 0, egui::Button::new("Up"))
                .on_hover_text(format!("Move rule {number} up"))
                .clicked()
            {
                raise = Some(index);
            }
            if ui
                .button("Remove")
                .on_hover_text(format!("Remove rule {number}"))
                .clicked()
            {
                remove = Some(index);
            }
        });
    }
    if let Some(index) = raise {
        form.scoping.swap(index, index - 1);
    }
    if let Some(index) = remove {
        form.scoping.remove(index);
    }
    if count == 0 {
        ui.weak(format!(
            "No scoping rule: every {} in the chosen OUs syncs.",
            word.trim_end_matches('s')
        ));
    }
    if ui
        .button(format!("Add a scoping rule for {word}"))
        .clicked()
    {
        form.scoping.push(RuleRow {
            include: true,
            operator: "equals".to_owned(),
            ..RuleRow::default()
        });
    }
}

fn mappings_ui(ui: &mut egui::Ui, form: &mut KindForm, kind: RuleKind) {
    let word = kind.word();
    let mut remove = None;
    for (index, row) in form.mappings.iter_mut().enumerate() {
        ui.horizontal(|ui| {
            let property = ui.add(
                egui::TextEdit::singleline(&mut row.property)
                    .hint_text("Graph property")
                    .desired_width(220.0),
            );
            named(&property, &format!("Mapping {} property", index + 1));
            let expression = ui.add(
                egui::TextEdit::singleline(&mut row.expression)
                    .hint_text("attribute, \"text\" or expression")
                    .desired_width(320.0),
            );
            named(&expression, &format!("Mapping {} expression", index + 1));
            if ui.button("Remove").clicked() {
                remove = Some(index);
            }
        });
    }
    if let Some(index) = remove {
        form.mappings.remove(index);
    }
    if ui.button(format!("Add a mapping for {word}")).clicked() {
        form.mappings.push(MappingRow::default());
    }
}

/// The default flow as rules: each property and its source, with "Map" to replace one.
fn default_flow_ui(ui: &mut egui::Ui, form: &mut KindForm, kind: RuleKind) {
    let word = kind.word();
    egui::CollapsingHeader::new(format!("Default flow for {word}"))
        .id_salt(("default_flow", word))
        .default_open(true)
        .show(ui, |ui| {
            egui::Grid::new(("default_flow_grid", word))
                .num_columns(3)
                .spacing([12.0, 2.0])
                .show(ui, |ui| {
                    for (property, source) in default_flow_of(kind) {
                        let mapped = form
                            .mappings
                            .iter()
                            .any(|row| row.property.trim() == property);
                        // The button first: the sources can be long.
                        let fixed = crate::rules::parse_target(kind, property).is_err();
                        if fixed || mapped {
                            ui.label("");
                        } else if ui
                            .small_button("Map")
                            .on_hover_text(format!("Add a mapping of {property}"))
                            .clicked()
                        {
                            form.mappings.push(MappingRow {
                                property: property.to_owned(),
                                expression: String::new(),
                            });
                        }
                        ui.label(property);
                        if mapped {
                            ui.weak(format!("{source} (replaced by a mapping)"));
                        } else if property == "onPremisesExtensionAttributes" {
                            ui.weak(format!(
                                "{source} (map one as onPremisesExtensionAttributes.extensionAttributeN)"
                            ));
                        } else if fixed {
                            ui.weak(format!("{source} (dirsync's, not mapped)"));
                        } else {
                            ui.weak(source);
                        }
                        ui.end_row();
                    }
                });
        });
}

/// A field's accessible name (what a screen reader says, and what tests find it by): the
/// rows have no label of their own. Set on the node itself, every frame (a focus or an edit
/// reports an event instead of the node's label).
fn named(response: &egui::Response, name: &str) {
    response.ctx.accesskit_node_builder(response.id, |node| {
        node.set_label(name);
    });
}

fn test_result_ui(ui: &mut egui::Ui, test: &RuleSetTest) {
    ui.label(&test.dn);
    let scope = match (test.in_ou_scope, test.in_scope) {
        (false, _) => "not in the chosen OUs: it does not sync".to_owned(),
        (true, true) => format!(
            "syncs ({})",
            test.decided_by
                .as_deref()
                .unwrap_or("no rule held, and no rule is an include rule")
        ),
        (true, false) => format!(
            "does not sync ({})",
            test.decided_by
                .as_deref()
                .unwrap_or("no rule held, and an include rule exists")
        ),
    };
    ui.label(format!("Scope: {scope}"));
    if !test.properties.is_empty() {
        egui::Grid::new("rules_test_properties")
            .num_columns(3)
            .spacing([12.0, 2.0])
            .show(ui, |ui| {
                ui.strong("Property");
                ui.strong("Before (default flow)");
                ui.strong("After (with the rules)");
                ui.end_row();
                for property in &test.properties {
                    ui.label(&property.property);
                    ui.label(shown(&property.before));
                    ui.label(shown(&property.after));
                    ui.end_row();
                }
            });
    }
    for error in &test.errors {
        ui.colored_label(theme::error(ui), error);
    }
}

fn shown(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "(none)".to_owned(),
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_editor_keeps_the_rules_and_names_a_wrong_field_in_its_words() {
        let config: RulesConfig = toml::from_str(
            r#"
            [[users.scoping]]
            action = "exclude"
            attribute = "description"
            operator = "starts-with"
            value = "svc-"
            [users.mappings]
            usageLocation = "c"
            "#,
        )
        .expect("TOML");
        let mut editor = RulesEditor::from_config(&config);
        assert_eq!(editor.to_config(), config);
        assert!(editor.check().is_ok());
        editor.users.mappings.push(MappingRow {
            property: "displayName".to_owned(),
            expression: "Join(\" \", [givenName]".to_owned(),
        });
        let problem = editor.check().expect_err("refused");
        assert!(
            problem.starts_with("Users, mapping of displayName: "),
            "{problem}"
        );
        editor.users.mappings.pop();
        editor.users.scoping[0].attribute = "two words".to_owned();
        let problem = editor.check().expect_err("refused");
        assert!(problem.starts_with("Users, scoping rule 1: "), "{problem}");
    }
}
