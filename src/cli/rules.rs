//! `dirsync rules test OBJECT`: expressions and scoping rules tried on one AD object now
//! (README, "Sync rules"). Every expression and rule is checked before AD is asked; a wrong one
//! is refused with the character or the field it is about (exit status 2).

use super::{CliError, EXIT_SUCCESS, RulesTestArgs};
use crate::rules::expression::Expression;
use crate::rules::scoping::{RuleAction, ScopingRule};
use crate::home::Home;
use crate::runner::rules::{RulesTest, RulesToTest, test_rules};

pub async fn test(args: &RulesTestArgs, home: &Home) -> Result<u8, CliError> {
    if args.expressions.is_empty() && args.rules.is_empty() {
        return Err(CliError::BadInput(
            "give at least one --expression or --rule to test".to_owned(),
        ));
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
