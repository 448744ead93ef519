//! Knowing what sync rules do before they are used (README, "Sync rules"): a mapping
//! expression's value and a scoping rule set's decision for one object (`dirsync rules test`,
//! the editor's Test), read now; what a changed rule set would do over the whole scope
//! (`dirsync rules preview`, the dashboard's Preview), which reads only; and saving it.

use serde::Serialize;

use super::{RunError, load_config};
use crate::cloud::FlowPolicy;
use crate::config::Config;
use crate::engine::cycle::trace::find_object;
use crate::engine::cycle::{Connections, read_rule_sets, read_rule_sets_of};
use crate::engine::rule_scope::decide_object;
use crate::engine::rules_preview::{RuleSide, RulesPreview};
use crate::home::Home;
use crate::rules::expression::{Expression, Value};
use crate::rules::scoping::ScopingRule;
use crate::rules::{ObjectRules, RulesConfig, SyncRules, compile};

/// What is tested: expressions and, as one ordered set, scoping rules.
#[derive(Debug, Default)]
pub struct RulesToTest {
    pub expressions: Vec<Expression>,
    pub expression_texts: Vec<String>,
    pub rules: Vec<ScopingRule>,
}

/// The outcome for one object.
#[derive(Debug, Clone, Serialize)]
pub struct RulesTest {
    pub dn: String,
    /// Every attribute the rules read, with its values now.
    pub inputs: Vec<AttributeValues>,
    pub expressions: Vec<ExpressionOutcome>,
    /// The rule set's decision, when rules were given.
    pub scope: Option<ScopeOutcome>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttributeValues {
    pub attribute: String,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExpressionOutcome {
    pub expression: String,
    /// The value (null: the property would be cleared), or why it could not be made.
    pub value: Option<serde_json::Value>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScopeOutcome {
    pub in_scope: bool,
    /// The rule that decided, counted from 1, in words; none when no rule held.
    pub decided_by: Option<String>,
}

/// Reads the object `query` names, as a cycle reads it, and tests `tests` against it.
pub async fn test_rules(
    home: &Home,
    query: &str,
    tests: &RulesToTest,
) -> Result<RulesTest, RunError> {
    let config = load_config(home)?;
    let mut connections = Connections::open(&config, &home.secrets(), FlowPolicy::default())?;
    // The scoping rules as a rule set of either kind: the object's kind picks its own.
    let scoping = ObjectRules {
        scoping: tests.rules.clone(),
        ..ObjectRules::default()
    };
    let rules = SyncRules {
        users: scoping.clone(),
        groups: scoping,
        ..SyncRules::default()
    };
    let mut attributes: Vec<String> = Vec::new();
    let named = tests
        .expressions
        .iter()
        .flat_map(Expression::attributes)
        .map(str::to_owned)
        .chain(rules.attributes());
    for attribute in named {
        if !attributes
            .iter()
            .any(|seen| seen.eq_ignore_ascii_case(&attribute))
        {
            attributes.push(attribute);
        }
    }
    let directory = |error: crate::directory::DirectoryError| RunError::SignIn(error.into());
    let connection = connections
        .directory
        .connection()
        .await
        .map_err(directory)?;
    let scope = config.scope().reading(&attributes);
    let Some(object) = find_object(connection, &config.naming_context(), &scope, query)
        .await
        .map_err(directory)?
    else {
        return Err(RunError::NotInDirectory {
            query: query.to_owned(),
            closest: Vec::new(),
        });
    };
    let lookup = |name: &str| object.values(name).to_vec();
    let expressions = tests
        .expressions
        .iter()
        .zip(&tests.expression_texts)
        .map(|(expression, text)| match expression.evaluate(&lookup) {
            Ok(value) => ExpressionOutcome {
                expression: text.clone(),
                value: Some(match value {
                    Value::Null => serde_json::Value::Null,
                    Value::List(items) => serde_json::json!(items),
                    Value::Bool(value) => serde_json::json!(value),
                    Value::Number(number) => serde_json::json!(number),
                    Value::Text(text) => serde_json::json!(text),
                }),
                error: None,
            },
            Err(error) => ExpressionOutcome {
                expression: text.clone(),
                value: None,
                error: Some(error.to_string()),
            },
        })
        .collect();
    let scope = if tests.rules.is_empty() {
        None
    } else {
        // Membership is asked of the DC, as a cycle asks it (nesting with the in-chain rule).
        let sets = read_rule_sets_of(connection, &object, &rules)
            .await
            .map_err(directory)?;
        let verdict = decide_object(&rules, &sets, &object);
        Some(ScopeOutcome {
            in_scope: verdict.in_scope,
            decided_by: verdict
                .decided_by
                .map(|number| format!("rule {number}: {}", tests.rules[number - 1])),
        })
    };
    Ok(RulesTest {
        dn: object.dn.to_string(),
        inputs: attributes
            .iter()
            .map(|attribute| AttributeValues {
                attribute: attribute.clone(),
                values: lookup(attribute),
            })
            .collect(),
        expressions,
        scope,
    })
}

/// What saving a rule set would do, read now (README, "Sync rules"), with what the first run
/// after it would do about the deletion threshold.
#[derive(Debug, Clone, Serialize)]
pub struct RulesPreviewReport {
    #[serde(flatten)]
    pub preview: RulesPreview,
    /// What happens to the cloud objects of what leaves: `delete`, or `disable` (then delete
    /// after `options.delete_after_days`).
    pub removal: &'static str,
    pub deletion_threshold: usize,
    /// More removals than the threshold: the first run after saving makes none of them until
    /// they are confirmed (`dirsync sync --confirm-deletes N`, or the dashboard).
    pub over_threshold: bool,
}

impl RulesPreviewReport {
    /// The preview as the administrator reads it (the CLI and the dashboard).
    pub fn in_words(&self) -> String {
        let report = self;
        let preview = &report.preview;
        let mut out = format!(
            "{} users and groups read in the OU scope: {} in scope now, {} under these rules\n",
            preview.objects_read, preview.in_scope_now, preview.in_scope_after
        );
        out.push_str(&format!(
            "  enter the scope: {} (created or matched in the cloud)\n",
            preview.entering
        ));
        for object in &preview.entering_objects {
            out.push_str(&format!("    + {}\n", object.dn));
        }
        out.push_str(&format!(
            "  leave the scope: {} ({} in the cloud){}\n",
            preview.leaving,
            match report.removal {
                "disable" => "disabled, then deleted later",
                _ => "deleted",
            },
            if preview.leaving_unexported > 0 {
                format!(
                    "; {} more that were never exported",
                    preview.leaving_unexported
                )
            } else {
                String::new()
            }
        ));
        for object in &preview.leaving_objects {
            out.push_str(&format!("    - {}\n", object.dn));
        }
        if report.over_threshold {
            out.push_str(&format!(
            "  that is more than the deletion threshold ({}): the first sync stops before removing any until they are confirmed\n",
            report.deletion_threshold
        ));
        }
        if preview.updates.is_empty() {
            out.push_str("  property updates: none\n");
        } else {
            out.push_str("  property updates:\n");
            for (property, count) in &preview.updates {
                out.push_str(&format!("    {property}: {count}\n"));
            }
            for update in preview.update_examples.iter().take(10) {
                out.push_str(&format!(
                    "      {}: {} → {}\n",
                    update.dn, update.before, update.after
                ));
            }
        }
        if preview.errors > 0 {
            out.push_str(&format!(
            "  objects the mappings cannot make a value for: {} (they would wait, with an error)\n",
            preview.errors
        ));
            for error in preview.error_examples.iter().take(10) {
                out.push_str(&format!("      {}: {}\n", error.dn, error.problem));
            }
        }
        out
    }
}

/// Reads every user and group in the OU scope once, with what both rule sets read, and compares
/// the rules in use with `candidate` (checked first; a wrong one names its field in
/// `candidate_file`). Reads only. `progress` hears how many objects were read.
pub async fn preview_rules(
    home: &Home,
    candidate: &RulesConfig,
    candidate_file: &std::path::Path,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<RulesPreviewReport, RunError> {
    let config = load_config(home)?;
    let mut after_rules = compile(candidate).map_err(|error| {
        RunError::Config(crate::config::ConfigError::Invalid {
            path: candidate_file.to_owned(),
            field: error.field,
            message: error.message,
        })
    })?;
    after_rules.extension_app_id = config.cloud.client_id.replace('-', "");
    let now_rules = config.sync_rules();
    let store = crate::store::StateStore::open_home(home)?;
    let exported: std::collections::HashSet<crate::guid::Guid> =
        store.links()?.into_keys().collect();
    let mut connections = Connections::open(&config, &home.secrets(), FlowPolicy::default())?;
    let domains = crate::engine::cycle::read_tenant_domains(&connections.graph)
        .await
        .map_err(RunError::SignIn)?;
    let scope = config.scope().reading(&after_rules.attributes());
    let connection = connections
        .directory
        .connection()
        .await
        .map_err(|error| RunError::SignIn(error.into()))?;
    let directory = |error: crate::directory::DirectoryError| RunError::SignIn(error.into());
    let now_sets = read_rule_sets(connection, &scope, &now_rules)
        .await
        .map_err(directory)?;
    let after_sets = read_rule_sets(connection, &scope, &after_rules)
        .await
        .map_err(directory)?;
    let mut import = crate::directory::import::FullImport::new(connection, &scope);
    let mut objects = Vec::new();
    while let Some(page) = import.next_page().await.map_err(directory)? {
        objects.extend(page);
        progress(objects.len());
    }
    let preview = crate::engine::rules_preview::preview(
        &objects,
        RuleSide {
            rules: &now_rules,
            sets: &now_sets,
        },
        RuleSide {
            rules: &after_rules,
            sets: &after_sets,
        },
        &domains,
        &exported,
    );
    let threshold = config.options.deletion_threshold;
    // Both thresholds, as the plan applies them: the count, and the share of what dirsync
    // manages.
    let percent = u64::from(config.options.deletion_threshold_percent);
    let over_share =
        percent > 0 && preview.leaving as u64 * 100 > percent * exported.len().max(1) as u64;
    Ok(RulesPreviewReport {
        over_threshold: preview.leaving > threshold || over_share,
        removal: if config.options.disable_before_delete {
            "disable"
        } else {
            "delete"
        },
        deletion_threshold: threshold,
        preview,
    })
}

/// Saves `candidate` as the rules in `config.toml` (checked again, and its directory
/// extensions registered on the sync app by setup), recording the change in the audit trail.
/// The next cycle reads every object again under them.
pub fn save_rules(
    home: &Home,
    candidate: &RulesConfig,
    candidate_file: &std::path::Path,
    source: super::audit::Source,
) -> Result<Config, RunError> {
    let old = load_config(home)?;
    let invalid = |field: String, message: String| {
        RunError::Config(crate::config::ConfigError::Invalid {
            path: candidate_file.to_owned(),
            field,
            message,
        })
    };
    let compiled = compile(candidate).map_err(|error| invalid(error.field, error.message))?;
    for (kind, object_rules) in [("users", &compiled.users), ("groups", &compiled.groups)] {
        for name in object_rules.directory_extensions() {
            if !old
                .cloud
                .directory_extensions
                .iter()
                .any(|known| known == name)
            {
                return Err(invalid(
                    format!("rules.{kind}.mappings.extension_{name}"),
                    format!(
                        "the directory extension '{name}' is not registered on the sync app; registering one needs a Global Administrator: run setup again (the wizard, or `dirsync setup` with these rules in the answers file)"
                    ),
                ));
            }
        }
    }
    let mut new = old.clone();
    new.rules = candidate.clone();
    new.validate(&home.config_file)?;
    new.save(&home.config_file)?;
    super::audit::record_configuration(home, source, "rules saved", Some(&old), &new);
    Ok(new)
}

/// A rule set tried on one object: whether it would sync, and each property the mappings
/// make, before (the default flow) and after (with the mappings).
#[derive(Debug, Clone, Serialize)]
pub struct RuleSetTest {
    pub dn: String,
    /// In the OU scope (the rules apply only there).
    pub in_ou_scope: bool,
    pub in_scope: bool,
    /// The rule that decided, in words; none when no rule held.
    pub decided_by: Option<String>,
    pub properties: Vec<PropertyTest>,
    /// What the mappings cannot make for this object.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PropertyTest {
    pub property: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
}

/// Tries `rules` on the object `query` names, read now over `connection` (the service
/// account's, or in the wizard the enterprise admin's).
pub async fn test_rule_set_with(
    connection: &crate::directory::DirectoryConnection,
    naming_context: &crate::directory::Dn,
    scope: &crate::directory::scope::SyncScope,
    rules: &SyncRules,
    domains: &crate::engine::attribute_flow::TenantDomains,
    query: &str,
) -> Result<RuleSetTest, RunError> {
    let directory = |error: crate::directory::DirectoryError| RunError::SignIn(error.into());
    let scope = scope.clone().reading(&rules.attributes());
    let Some(object) = find_object(connection, naming_context, &scope, query)
        .await
        .map_err(directory)?
    else {
        return Err(RunError::NotInDirectory {
            query: query.to_owned(),
            closest: Vec::new(),
        });
    };
    let sets = read_rule_sets_of(connection, &object, rules)
        .await
        .map_err(directory)?;
    let verdict = decide_object(rules, &sets, &object);
    let object_rules = match object.kind {
        crate::directory::objects::ObjectKind::User => &rules.users,
        crate::directory::objects::ObjectKind::Group => &rules.groups,
    };
    let default_rules = SyncRules {
        extension_app_id: rules.extension_app_id.clone(),
        ..SyncRules::default()
    };
    let before = crate::engine::attribute_flow::cloud_shape(&object, domains, &default_rules);
    let after = crate::engine::attribute_flow::cloud_shape(&object, domains, rules);
    let mut properties = Vec::new();
    for mapping in &object_rules.mappings {
        let property = match &mapping.target {
            crate::rules::Target::DirectoryExtension(name) => rules.extension_property(name),
            crate::rules::Target::ExtensionAttribute(_) => {
                "onPremisesExtensionAttributes".to_owned()
            }
            crate::rules::Target::EmployeeOrgData(_) => "employeeOrgData".to_owned(),
            crate::rules::Target::Property(name) => name.clone(),
        };
        if properties
            .iter()
            .any(|known: &PropertyTest| known.property == property)
        {
            continue;
        }
        properties.push(PropertyTest {
            before: before
                .properties
                .get(&property)
                .cloned()
                .unwrap_or_default(),
            after: after.properties.get(&property).cloned().unwrap_or_default(),
            property,
        });
    }
    let errors = after
        .issues
        .iter()
        .filter(|issue| issue.severity == crate::engine::validation::Severity::Error)
        .map(|issue| issue.statement())
        .collect();
    Ok(RuleSetTest {
        dn: object.dn.to_string(),
        in_ou_scope: scope.contains(&object.dn) && !object.is_system_object(),
        in_scope: verdict.in_scope,
        decided_by: verdict
            .decided_by
            .map(|number| format!("rule {number}: {}", object_rules.scoping[number - 1])),
        properties,
        errors,
    })
}

/// [`test_rule_set_with`] as the service account, for an installation (the dashboard).
pub async fn test_rule_set(
    home: &Home,
    candidate: &RulesConfig,
    query: &str,
) -> Result<RuleSetTest, RunError> {
    let config = load_config(home)?;
    let mut rules = compile(candidate).map_err(|error| {
        RunError::Config(crate::config::ConfigError::Invalid {
            path: home.config_file.clone(),
            field: error.field,
            message: error.message,
        })
    })?;
    rules.extension_app_id = config.cloud.client_id.replace('-', "");
    let mut connections = Connections::open(&config, &home.secrets(), FlowPolicy::default())?;
    let domains = crate::engine::cycle::read_tenant_domains(&connections.graph)
        .await
        .map_err(RunError::SignIn)?;
    let connection = connections
        .directory
        .connection()
        .await
        .map_err(|error| RunError::SignIn(error.into()))?;
    test_rule_set_with(
        connection,
        &config.naming_context(),
        &config.scope(),
        &rules,
        &domains,
        query,
    )
    .await
}
