//! `dirsync rules`: the sync rules (README, "Sync rules"). `test OBJECT` tries expressions and
//! scoping rules on one AD object now; `show` prints the rules in use; `preview FILE` and
//! `save FILE` say what a changed set would do, and save it. Every expression and rule is
//! checked before AD is asked; a wrong one is refused with the character or the field it is
//! about (exit status 2).

use std::io::IsTerminal as _;

use super::{CliError, EXIT_SUCCESS, RulesFileArgs, RulesSaveArgs, RulesShowArgs, RulesTestArgs};
use crate::home::Home;
use crate::rules::RulesConfig;
use crate::rules::expression::Expression;
use crate::rules::scoping::{RuleAction, ScopingRule};
use crate::runner::rules::{RulesPreviewReport, preview_rules, save_rules};
use crate::runner::rules::{RulesTest, RulesToTest, test_rules};

pub async fn test(args: &RulesTestArgs, home: &Home) -> Result<u8, CliError> {
    if args.expressions.is_empty() && args.rules.is_empty() {
        return test_rule_set(args, home).await;
    }
    let mut tests = RulesToTest::default();
    for text in &args.expressions {
        let expression = Expression::parse(text)
            .map_err(|error| CliError::BadInput(format!("--expression '{text}': {error}")))?;
        tests.expressions.push(expression);
        tests.expression_texts.push(text.clone());
    }
    for (number, text) in args.rules.iter().enumerate() {
        tests.rules.push(parse_rule(text).map_err(|error| {
            CliError::BadInput(format!("--rule {} '{text}': {error}", number + 1))
        })?);
    }
    let tested = test_rules(home, &args.object, &tests).await?;
    if args.json {
        let document = serde_json::to_string_pretty(&tested)
            .map_err(|error| CliError::Failed(format!("cannot write JSON: {error}")))?;
        println!("{document}");
    } else {
        print!("{}", in_words(&tested));
    }
    Ok(EXIT_SUCCESS)
}

/// A whole rule set (the rules in use, or `--file`'s) tried on the object: before and after.
async fn test_rule_set(args: &RulesTestArgs, home: &Home) -> Result<u8, CliError> {
    let rules = match &args.file {
        Some(file) => read_rules_file(file)?,
        None => crate::runner::load_config(home)?.rules,
    };
    let tested = crate::runner::rules::test_rule_set(home, &rules, &args.object).await?;
    if args.json {
        println!("{}", to_json(&serde_json::json!(tested))?);
        return Ok(EXIT_SUCCESS);
    }
    println!("{}", tested.dn);
    let scope = match (tested.in_ou_scope, tested.in_scope) {
        (false, _) => "not in the OU scope: it does not sync".to_owned(),
        (true, in_scope) => format!(
            "{} ({})",
            if in_scope { "syncs" } else { "does not sync" },
            tested
                .decided_by
                .as_deref()
                .unwrap_or("no scoping rule held")
        ),
    };
    println!("  scope: {scope}");
    if tested.properties.is_empty() {
        println!("  no mapping: every property follows the default flow");
    }
    for property in &tested.properties {
        println!(
            "  {}: {} → {}",
            property.property, property.before, property.after
        );
    }
    for error in &tested.errors {
        println!("  error: {error}");
    }
    Ok(EXIT_SUCCESS)
}

/// `include|exclude ATTRIBUTE OPERATOR [VALUE]`, or `include|exclude member-of[-nested] DN`.
fn parse_rule(text: &str) -> Result<ScopingRule, String> {
    let mut words = text.trim().splitn(2, char::is_whitespace);
    let action = match words.next().unwrap_or_default() {
        "include" => RuleAction::Include,
        "exclude" => RuleAction::Exclude,
        other => return Err(format!("action: '{other}' is not include or exclude")),
    };
    let rest = words.next().unwrap_or_default().trim_start();
    if let Some(group) = rest.strip_prefix("member-of-nested") {
        return ScopingRule::new(action, "", "member-of-nested", group.trim());
    }
    if let Some(group) = rest.strip_prefix("member-of") {
        return ScopingRule::new(action, "", "member-of", group.trim());
    }
    let mut parts = rest.splitn(3, char::is_whitespace);
    let attribute = parts.next().unwrap_or_default();
    let operator = parts.next().unwrap_or_default();
    let value = parts.next().unwrap_or_default();
    ScopingRule::new(action, attribute, operator, value)
}

fn in_words(tested: &RulesTest) -> String {
    let mut out = format!("{}\n", tested.dn);
    if !tested.inputs.is_empty() {
        out.push_str("  read:\n");
        for input in &tested.inputs {
            let values = if input.values.is_empty() {
                "(no value)".to_owned()
            } else {
                input
                    .values
                    .iter()
                    .map(|value| format!("'{value}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            out.push_str(&format!("    {}: {values}\n", input.attribute));
        }
    }
    for outcome in &tested.expressions {
        let value = match (&outcome.value, &outcome.error) {
            (_, Some(error)) => format!("error: {error}"),
            (Some(serde_json::Value::Null) | None, None) => {
                "null (the property would be cleared)".to_owned()
            }
            (Some(value), None) => value.to_string(),
        };
        out.push_str(&format!("  {} → {value}\n", outcome.expression));
    }
    if let Some(scope) = &tested.scope {
        out.push_str(&format!(
            "  scope: {} ({})\n",
            if scope.in_scope { "in" } else { "out" },
            scope
                .decided_by
                .as_deref()
                .unwrap_or("no rule held: in scope only when the set has no include rule")
        ));
    }
    out
}

/// `dirsync rules show`: the rules in use, and the default flow beside the mappings.
pub fn show(args: &RulesShowArgs, home: &Home) -> Result<u8, CliError> {
    let config = crate::runner::load_config(home)?;
    if args.json {
        let document = serde_json::json!({
            "rules": config.rules,
            "default_flow": crate::engine::attribute_flow::default_flow(),
        });
        println!("{}", to_json(&document)?);
        return Ok(EXIT_SUCCESS);
    }
    let rules = config.sync_rules();
    for (word, object_rules, kind) in [
        ("users", &rules.users, crate::rules::RuleKind::Users),
        ("groups", &rules.groups, crate::rules::RuleKind::Groups),
    ] {
        println!("{word}:");
        match &object_rules.ldap_filter {
            Some(filter) => println!("  LDAP filter: {filter}"),
            None => println!("  LDAP filter: none"),
        }
        if object_rules.scoping.is_empty() {
            println!("  scoping: none (every {word} in the OU scope)");
        }
        for (number, rule) in object_rules.scoping.iter().enumerate() {
            println!("  scoping {}: {rule}", number + 1);
        }
        println!("  mappings:");
        for (property, source) in crate::engine::attribute_flow::default_flow_of(kind) {
            let mapped = crate::rules::parse_target(kind, property)
                .ok()
                .and_then(|target| object_rules.mapping(&target));
            match mapped {
                Some(mapping) => println!("    {property} ← {} (rule)", mapping.text),
                None => println!("    {property} ← {source}"),
            }
        }
        for mapping in &object_rules.mappings {
            let listed = crate::engine::attribute_flow::default_flow_of(kind)
                .iter()
                .any(|(property, _)| *property == mapping.target.name());
            if !listed {
                println!("    {} ← {} (rule)", mapping.target.name(), mapping.text);
            }
        }
    }
    Ok(EXIT_SUCCESS)
}

/// The rules a file holds: config.toml's `[rules]` table's content (a whole `[rules]` table is
/// taken too, so that one can be copied from config.toml).
fn read_rules_file(path: &std::path::Path) -> Result<RulesConfig, CliError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Wrapped {
        rules: RulesConfig,
    }
    let malformed = |error| CliError::from(crate::runner::RunError::Config(error));
    let text = std::fs::read_to_string(path)
        .map_err(|error| CliError::BadInput(format!("cannot read {}: {error}", path.display())))?;
    let table: toml::Table = crate::config::parse_toml(path, &text).map_err(malformed)?;
    if table.len() == 1 && table.contains_key("rules") {
        let wrapped: Wrapped = crate::config::parse_toml(path, &text).map_err(malformed)?;
        return Ok(wrapped.rules);
    }
    crate::config::parse_toml(path, &text).map_err(malformed)
}

/// `dirsync rules preview FILE`.
pub async fn preview(args: &RulesFileArgs, home: &Home) -> Result<u8, CliError> {
    let candidate = read_rules_file(&args.file)?;
    let report = run_preview(home, &candidate, &args.file, args.json).await?;
    if args.json {
        println!("{}", to_json(&serde_json::json!(report))?);
    } else {
        print!("{}", report.in_words());
    }
    Ok(EXIT_SUCCESS)
}

/// `dirsync rules save FILE`: the preview first, then the rules saved once confirmed.
pub async fn save(args: &RulesSaveArgs, home: &Home) -> Result<u8, CliError> {
    let candidate = read_rules_file(&args.file.file)?;
    let report = run_preview(home, &candidate, &args.file.file, args.file.json).await?;
    if !args.file.json {
        print!("{}", report.in_words());
    }
    if !args.yes && !super::confirmed_on_terminal("save these rules", "save")? {
        if args.file.json {
            println!(
                "{}",
                to_json(&serde_json::json!({ "preview": report, "saved": false }))?
            );
        }
        return Err(CliError::BadInput(
            "nothing was saved: confirm on a terminal, or run again with --yes".to_owned(),
        ));
    }
    save_rules(
        home,
        &candidate,
        &args.file.file,
        crate::runner::audit::Source::Cli,
    )?;
    if args.file.json {
        println!(
            "{}",
            to_json(&serde_json::json!({ "preview": report, "saved": true }))?
        );
    } else {
        println!(
            "\nSaved. The next sync reads every object again under these rules{}.",
            if report.over_threshold {
                " and stops before its removals, which exceed the deletion threshold, until they are confirmed"
            } else {
                ""
            }
        );
    }
    Ok(EXIT_SUCCESS)
}

async fn run_preview(
    home: &Home,
    candidate: &RulesConfig,
    file: &std::path::Path,
    json: bool,
) -> Result<RulesPreviewReport, CliError> {
    let terminal = !json && std::io::stderr().is_terminal();
    let progress = move |read: usize| {
        if terminal {
            eprint!("\rreading the scope: {read} objects");
        }
    };
    let report = preview_rules(home, candidate, file, &progress).await;
    if terminal {
        eprintln!();
    }
    Ok(report?)
}

fn to_json(value: &serde_json::Value) -> Result<String, CliError> {
    serde_json::to_string_pretty(value)
        .map_err(|error| CliError::Failed(format!("cannot write JSON: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_read_as_written() {
        let rule = parse_rule("exclude description starts-with svc- backup").expect("parses");
        assert_eq!(rule.action, RuleAction::Exclude);
        assert_eq!(
            rule.condition.to_string(),
            "description starts with 'svc- backup'"
        );
        let member = parse_rule("include member-of-nested CN=Staff,OU=Groups,DC=corp,DC=test")
            .expect("parses");
        assert_eq!(
            member.condition.to_string(),
            "member of CN=Staff,OU=Groups,DC=corp,DC=test (nested)"
        );
        assert_eq!(
            parse_rule("include title present")
                .expect("parses")
                .condition
                .to_string(),
            "title is present"
        );
        assert!(
            parse_rule("keep title present")
                .expect_err("refused")
                .starts_with("action:")
        );
        assert!(
            parse_rule("include title contains x")
                .expect_err("refused")
                .starts_with("operator:")
        );
    }
}
