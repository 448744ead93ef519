//! The mapping expression language: Cloud Sync's attribute mapping expressions, as a small
//! typed language. Pure: an expression is parsed and type-checked once, when it is saved, with
//! errors that point at the character; then it is evaluated against each directory object's
//! attributes.
//!
//! ```text
//! expression := operand (("=" | "<>") operand)?
//! operand    := "text" | 123 | [attribute] | Function(expression, …) | (expression)
//! ```
//!
//! Strings are in double quotes (`\"` and `\\` inside); attributes in square brackets; numbers
//! are whole and not negative. Positions and indexes (`Mid`, `Item`, `Word`) count from 1, as in
//! Cloud Sync. An attribute AD does not hold is null: text functions give null for a null source,
//! `Join` leaves nulls and empty values out, `Coalesce` takes the first value that is neither,
//! `IsPresent` says whether there is one, and a comparison with null is false.

use std::fmt;

/// The deepest nesting accepted: deep enough for any mapping, shallow enough for the stack.
const MAX_DEPTH: usize = 32;
/// The longest expression accepted, in characters.
const MAX_LENGTH: usize = 4_096;

/// What an expression (or one of its arguments) gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Text,
    Number,
    Bool,
    /// Several values (a multi-valued attribute, `Split`'s result).
    List,
    /// An attribute: its first value where text is wanted, all of them where a list is.
    Attribute,
}

impl Type {
    fn accepted_as(self, wanted: Type) -> bool {
        self == wanted
            || (self == Type::Attribute && matches!(wanted, Type::Text | Type::List))
            || (wanted == Type::Attribute && matches!(self, Type::Text | Type::List))
    }

    fn word(self) -> &'static str {
        match self {
            Type::Text => "text",
            Type::Number => "a number",
            Type::Bool => "a condition",
            Type::List => "a list",
            Type::Attribute => "an attribute",
        }
    }
}

/// A parsed, type-checked expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expression {
    node: Node,
    gives: Type,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Text(String),
    Number(u32),
    Attribute(String),
    Call(Function, Vec<Node>),
    Compare {
        equal: bool,
        left: Box<Node>,
        right: Box<Node>,
    },
}

/// Why an expression was refused: where (the character, counted from 1) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The character the problem is at, counted from 1.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at character {}: {}", self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

/// A value while evaluating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Text(String),
    Number(u32),
    Bool(bool),
    List(Vec<String>),
}

impl Value {
    /// The value as one text: a list's first item; null for nothing.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Text(text) => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            Value::Bool(value) => Some(value.to_string()),
            Value::List(values) => values.first().cloned(),
        }
    }

    fn is_present(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Text(text) => !text.is_empty(),
            Value::List(values) => values.iter().any(|value| !value.is_empty()),
            Value::Number(_) | Value::Bool(_) => true,
        }
    }
}

/// Why an expression could not be evaluated for one object (a date in another format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError(pub String);

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EvalError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    Join,
    Left,
    Mid,
    Replace,
    Switch,
    Iif,
    Coalesce,
    ToLower,
    ToUpper,
    Trim,
    Split,
    Item,
    Word,
    FormatDateTime,
    NormalizeDiacritics,
    IsPresent,
    StripSpaces,
}

/// Each function: its name, the types of its fixed arguments, the type of any further ones
/// (`None`: no more), the least number of arguments, and what it gives.
struct Signature {
    name: &'static str,
    function: Function,
    fixed: &'static [Type],
    rest: Option<Type>,
    least: usize,
    gives: Type,
}

const T: Type = Type::Text;
const N: Type = Type::Number;

const SIGNATURES: &[Signature] = &[
    Signature {
        name: "Join",
        function: Function::Join,
        fixed: &[T],
        rest: Some(Type::Attribute),
        least: 2,
        gives: T,
    },
    Signature {
        name: "Left",
        function: Function::Left,
        fixed: &[T, N],
        rest: None,
        least: 2,
        gives: T,
    },
    Signature {
        name: "Mid",
        function: Function::Mid,
        fixed: &[T, N, N],
        rest: None,
        least: 3,
        gives: T,
    },
    Signature {
        name: "Replace",
        function: Function::Replace,
        fixed: &[T, T, T],
        rest: None,
        least: 3,
        gives: T,
    },
    Signature {
        name: "Switch",
        function: Function::Switch,
        fixed: &[T, T],
        rest: Some(T),
        least: 2,
        gives: T,
    },
    Signature {
        name: "IIF",
        function: Function::Iif,
        fixed: &[Type::Bool, T, T],
        rest: None,
        least: 3,
        gives: T,
    },
    Signature {
        name: "Coalesce",
        function: Function::Coalesce,
        fixed: &[],
        rest: Some(T),
        least: 1,
        gives: T,
    },
    Signature {
        name: "ToLower",
        function: Function::ToLower,
        fixed: &[T],
        rest: None,
        least: 1,
        gives: T,
    },
    Signature {
        name: "ToUpper",
        function: Function::ToUpper,
        fixed: &[T],
        rest: None,
        least: 1,
        gives: T,
    },
    Signature {
        name: "Trim",
        function: Function::Trim,
        fixed: &[T],
        rest: None,
        least: 1,
        gives: T,
    },
    Signature {
        name: "Split",
        function: Function::Split,
        fixed: &[T, T],
        rest: None,
        least: 2,
        gives: Type::List,
    },
    Signature {
        name: "Item",
        function: Function::Item,
        fixed: &[Type::List, N],
        rest: None,
        least: 2,
        gives: T,
    },
    Signature {
        name: "Word",
        function: Function::Word,
        fixed: &[T, N, T],
        rest: None,
        least: 3,
        gives: T,
    },
    Signature {
        name: "FormatDateTime",
        function: Function::FormatDateTime,
        fixed: &[T, T, T],
        rest: None,
        least: 3,
        gives: T,
    },
    Signature {
        name: "NormalizeDiacritics",
        function: Function::NormalizeDiacritics,
        fixed: &[T],
        rest: None,
        least: 1,
        gives: T,
    },
    Signature {
        name: "IsPresent",
        function: Function::IsPresent,
        fixed: &[Type::Attribute],
        rest: None,
        least: 1,
        gives: Type::Bool,
    },
    Signature {
        name: "StripSpaces",
        function: Function::StripSpaces,
        fixed: &[T],
        rest: None,
        least: 1,
        gives: T,
    },
];

/// The functions' names, for the editor's help.
pub fn function_names() -> impl Iterator<Item = &'static str> {
    SIGNATURES.iter().map(|signature| signature.name)
}

impl Expression {
    /// Parses and type-checks `text`.
    pub fn parse(text: &str) -> Result<Expression, ParseError> {
        let chars: Vec<char> = text.chars().collect();
        if chars.len() > MAX_LENGTH {
            return Err(ParseError {
                column: MAX_LENGTH + 1,
                message: format!("the expression is longer than {MAX_LENGTH} characters"),
            });
        }
        let mut parser = Parser {
            chars,
            at: 0,
            depth: 0,
        };
        parser.skip_spaces();
        if parser.at == parser.chars.len() {
            return Err(parser.error_here("the expression is empty"));
        }
        let (node, gives) = parser.expression()?;
        parser.skip_spaces();
        if parser.at < parser.chars.len() {
            return Err(parser.error_here(&format!(
                "unexpected '{}' after the end of the expression",
                parser.chars[parser.at]
            )));
        }
        Ok(Expression { node, gives })
    }

    /// What the expression gives: text for most mappings, a condition for a scoping rule.
    pub fn gives(&self) -> Type {
        self.gives
    }

    /// The attributes the expression reads, in order of appearance.
    pub fn attributes(&self) -> Vec<&str> {
        let mut found = Vec::new();
        collect_attributes(&self.node, &mut found);
        found
    }

    /// The value for an object whose attributes `values` gives (all values of one attribute,
    /// none when AD holds none).
    pub fn evaluate(&self, values: &dyn Fn(&str) -> Vec<String>) -> Result<Value, EvalError> {
        // An attribute alone is its one value as text; several values stay a list (for a
        // multi-valued property).
        match evaluate(&self.node, values)? {
            Value::List(mut items) if items.len() == 1 => Ok(Value::Text(items.remove(0))),
            value => Ok(value),
        }
    }
}

fn collect_attributes<'n>(node: &'n Node, found: &mut Vec<&'n str>) {
    match node {
        Node::Attribute(name) => {
            if !found.iter().any(|seen| seen.eq_ignore_ascii_case(name)) {
                found.push(name);
            }
        }
        Node::Call(_, arguments) => {
            for argument in arguments {
                collect_attributes(argument, found);
            }
        }
        Node::Compare { left, right, .. } => {
            collect_attributes(left, found);
            collect_attributes(right, found);
        }
        Node::Text(_) | Node::Number(_) => {}
    }
}

struct Parser {
    chars: Vec<char>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn error_at(&self, at: usize, message: &str) -> ParseError {
        ParseError {
            column: at + 1,
            message: message.to_owned(),
        }
    }

    fn error_here(&self, message: &str) -> ParseError {
        self.error_at(self.at, message)
    }

    fn skip_spaces(&mut self) {
        while self.chars.get(self.at).is_some_and(|c| c.is_whitespace()) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    /// `operand (("=" | "<>") operand)?`
    fn expression(&mut self) -> Result<(Node, Type), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_here(&format!("nested more than {MAX_DEPTH} deep")));
        }
        self.skip_spaces();
        let left_at = self.at;
        let (left, left_type) = self.operand()?;
        self.skip_spaces();
        let equal = match (self.peek(), self.chars.get(self.at + 1)) {
            (Some('='), _) => Some((true, 1)),
            (Some('<'), Some('>')) => Some((false, 2)),
            _ => None,
        };
        let result = match equal {
            None => (left, left_type),
            Some((equal, width)) => {
                self.at += width;
                self.skip_spaces();
                let right_at = self.at;
                let (right, right_type) = self.operand()?;
                for (at, found) in [(left_at, left_type), (right_at, right_type)] {
                    if !found.accepted_as(Type::Text) {
                        return Err(self.error_at(
                            at,
                            &format!(
                                "a comparison needs text on both sides, not {}",
                                found.word()
                            ),
                        ));
                    }
                }
                (
                    Node::Compare {
                        equal,
                        left: Box::new(left),
                        right: Box::new(right),
                    },
                    Type::Bool,
                )
            }
        };
        self.depth -= 1;
        Ok(result)
    }

    fn operand(&mut self) -> Result<(Node, Type), ParseError> {
        self.skip_spaces();
        match self.peek() {
            None => Err(self.error_here("the expression ends where a value was expected")),
            Some('"') => self.string().map(|text| (Node::Text(text), Type::Text)),
            Some('[') => self.attribute(),
            Some('(') => {
                self.at += 1;
                let inner = self.expression()?;
                self.skip_spaces();
                if self.peek() != Some(')') {
                    return Err(self.error_here("expected ')' to close the '('"));
                }
                self.at += 1;
                Ok(inner)
            }
            Some(c) if c.is_ascii_digit() => self.number(),
            Some(c) if c.is_alphabetic() => self.call(),
            Some(c) => Err(self.error_here(&format!(
                "unexpected '{c}': expected \"text\", a number, an [attribute] or a function"
            ))),
        }
    }

    fn string(&mut self) -> Result<String, ParseError> {
        let start = self.at;
        self.at += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error_at(start, "this text has no closing '\"'")),
                Some('"') => {
                    self.at += 1;
                    return Ok(text);
                }
                Some('\\') => {
                    match self.chars.get(self.at + 1) {
                        Some(escaped @ ('"' | '\\')) => text.push(*escaped),
                        _ => {
                            return Err(
                                self.error_here("'\\' in text must be followed by '\"' or '\\'")
                            );
                        }
                    }
                    self.at += 2;
                }
                Some(c) => {
                    text.push(c);
                    self.at += 1;
                }
            }
        }
    }

    fn attribute(&mut self) -> Result<(Node, Type), ParseError> {
        let start = self.at;
        self.at += 1;
        let name_start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            self.at += 1;
        }
        let name: String = self.chars[name_start..self.at].iter().collect();
        if self.peek() != Some(']') {
            return Err(self
                .error_here("an attribute is its LDAP name in square brackets, like [givenName]"));
        }
        if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(self.error_at(start, "an attribute's name must start with a letter"));
        }
        self.at += 1;
        Ok((Node::Attribute(name), Type::Attribute))
    }

    fn number(&mut self) -> Result<(Node, Type), ParseError> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.at += 1;
        }
        let digits: String = self.chars[start..self.at].iter().collect();
        let number = digits
            .parse::<u32>()
            .map_err(|_| self.error_at(start, "this number is too large"))?;
        Ok((Node::Number(number), Type::Number))
    }

    fn call(&mut self) -> Result<(Node, Type), ParseError> {
        let start = self.at;
        while self.peek().is_some_and(|c| c.is_alphanumeric()) {
            self.at += 1;
        }
        let name: String = self.chars[start..self.at].iter().collect();
        let Some(signature) = SIGNATURES
            .iter()
            .find(|signature| signature.name.eq_ignore_ascii_case(&name))
        else {
            let names: Vec<&str> = function_names().collect();
            return Err(self.error_at(
                start,
                &format!("unknown function '{name}' (known: {})", names.join(", ")),
            ));
        };
        self.skip_spaces();
        if self.peek() != Some('(') {
            return Err(self.error_here(&format!("expected '(' after {}", signature.name)));
        }
        self.at += 1;
        let mut arguments = Vec::new();
        self.skip_spaces();
        if self.peek() == Some(')') {
            self.at += 1;
        } else {
            loop {
                self.skip_spaces();
                let argument_at = self.at;
                let (argument, found) = self.expression()?;
                let index = arguments.len();
                let wanted = signature.fixed.get(index).copied().or(signature.rest);
                match wanted {
                    None => {
                        return Err(self.error_at(
                            argument_at,
                            &format!(
                                "{} takes {} argument(s)",
                                signature.name,
                                signature.fixed.len()
                            ),
                        ));
                    }
                    Some(wanted) if !found.accepted_as(wanted) => {
                        return Err(self.error_at(
                            argument_at,
                            &format!(
                                "argument {} of {} must be {}, not {}",
                                index + 1,
                                signature.name,
                                wanted.word(),
                                found.word()
                            ),
                        ));
                    }
                    Some(_) => {}
                }
                arguments.push(argument);
                self.skip_spaces();
                match self.peek() {
                    Some(',') => self.at += 1,
                    Some(')') => {
                        self.at += 1;
                        break;
                    }
                    _ => {
                        return Err(self.error_here(&format!(
                            "expected ',' or ')' in the arguments of {}",
                            signature.name
                        )));
                    }
                }
            }
        }
        let least = signature.least.max(signature.fixed.len());
        if arguments.len() < least {
            return Err(self.error_at(
                start,
                &format!(
                    "{} needs at least {least} argument(s), it has {}",
                    signature.name,
                    arguments.len()
                ),
            ));
        }
        if signature.function == Function::Switch && arguments.len() % 2 != 0 {
            return Err(self.error_at(
                start,
                "Switch takes the source, the default, then pairs of key and value",
            ));
        }
        Ok((Node::Call(signature.function, arguments), signature.gives))
    }
}

fn evaluate(node: &Node, values: &dyn Fn(&str) -> Vec<String>) -> Result<Value, EvalError> {
    match node {
        Node::Text(text) => Ok(Value::Text(text.clone())),
        Node::Number(number) => Ok(Value::Number(*number)),
        Node::Attribute(name) => {
            let found = values(name);
            Ok(if found.is_empty() {
                Value::Null
            } else {
                Value::List(found)
            })
        }
        Node::Compare { equal, left, right } => {
            let left = evaluate(left, values)?.as_text();
            let right = evaluate(right, values)?.as_text();
            Ok(Value::Bool(match (left, right) {
                (Some(left), Some(right)) => (left == right) == *equal,
                _ => false,
            }))
        }
        Node::Call(function, arguments) => call(*function, arguments, values),
    }
}

fn call(
    function: Function,
    arguments: &[Node],
    values: &dyn Fn(&str) -> Vec<String>,
) -> Result<Value, EvalError> {
    let argument = |index: usize| evaluate(&arguments[index], values);
    let text =
        |index: usize| -> Result<Option<String>, EvalError> { Ok(argument(index)?.as_text()) };
    let number = |index: usize| -> Result<usize, EvalError> {
        Ok(match argument(index)? {
            Value::Number(number) => number as usize,
            other => other
                .as_text()
                .and_then(|text| text.trim().parse().ok())
                .unwrap_or(0),
        })
    };
    // A text function of a null source is null.
    let map_text = |change: &dyn Fn(&str) -> String| -> Result<Value, EvalError> {
        Ok(match text(0)? {
            None => Value::Null,
            Some(source) => Value::Text(change(&source)),
        })
    };
    match function {
        Function::Join => {
            let separator = text(0)?.unwrap_or_default();
            let mut parts = Vec::new();
            for index in 1..arguments.len() {
                match argument(index)? {
                    Value::List(items) => {
                        parts.extend(items.into_iter().filter(|item| !item.is_empty()));
                    }
                    other => parts.extend(other.as_text().filter(|part| !part.is_empty())),
                }
            }
            Ok(if parts.is_empty() {
                Value::Null
            } else {
                Value::Text(parts.join(&separator))
            })
        }
        Function::Left => {
            let length = number(1)?;
            map_text(&|source| source.chars().take(length).collect())
        }
        Function::Mid => {
            let start = number(1)?.max(1) - 1;
            let length = number(2)?;
            map_text(&|source| source.chars().skip(start).take(length).collect())
        }
        Function::Replace => {
            let old = text(1)?.unwrap_or_default();
            let new = text(2)?.unwrap_or_default();
            map_text(&|source| {
                if old.is_empty() {
                    source.to_owned()
                } else {
                    source.replace(&old, &new)
                }
            })
        }
        Function::Switch => {
            let source = text(0)?;
            if let Some(source) = source {
                for pair in arguments[2..].chunks(2) {
                    if evaluate(&pair[0], values)?.as_text().as_deref() == Some(source.as_str()) {
                        return evaluate(&pair[1], values).map(text_value);
                    }
                }
            }
            argument(1).map(text_value)
        }
        Function::Iif => {
            let condition = matches!(argument(0)?, Value::Bool(true));
            argument(if condition { 1 } else { 2 }).map(text_value)
        }
        Function::Coalesce => {
            for index in 0..arguments.len() {
                let value = argument(index)?;
                if value.is_present() {
                    return Ok(text_value(value));
                }
            }
            Ok(Value::Null)
        }
        Function::ToLower => map_text(&str::to_lowercase),
        Function::ToUpper => map_text(&str::to_uppercase),
        Function::Trim => map_text(&|source| source.trim().to_owned()),
        Function::StripSpaces => {
            map_text(&|source| source.chars().filter(|c| !c.is_whitespace()).collect())
        }
        Function::NormalizeDiacritics => map_text(&normalize_diacritics),
        Function::Split => {
            let delimiter = text(1)?.unwrap_or_default();
            Ok(match text(0)? {
                None => Value::Null,
                Some(source) if delimiter.is_empty() => Value::List(vec![source]),
                Some(source) => Value::List(
                    source
                        .split(delimiter.as_str())
                        .map(str::to_owned)
                        .collect(),
                ),
            })
        }
        Function::Item => {
            let index = number(1)?;
            Ok(match argument(0)? {
                Value::List(items) => index
                    .checked_sub(1)
                    .and_then(|index| items.get(index).cloned())
                    .map_or(Value::Null, Value::Text),
                Value::Text(text) if index == 1 => Value::Text(text),
                _ => Value::Null,
            })
        }
        Function::Word => {
            let index = number(1)?;
            let delimiters: Vec<char> = text(2)?.unwrap_or_default().chars().collect();
            map_text(&|source| {
                source
                    .split(|c: char| delimiters.contains(&c))
                    .filter(|word| !word.is_empty())
                    .nth(index.saturating_sub(1))
                    .filter(|_| index > 0)
                    .unwrap_or_default()
                    .to_owned()
            })
        }
        Function::FormatDateTime => {
            let Some(source) = text(0)? else {
                return Ok(Value::Null);
            };
            let input = text(1)?.unwrap_or_default();
            let output = text(2)?.unwrap_or_default();
            let parts = read_date(&source, &input).ok_or_else(|| {
                EvalError(format!(
                    "FormatDateTime: '{source}' is not a date in the format '{input}'"
                ))
            })?;
            Ok(Value::Text(write_date(&parts, &output)))
        }
        Function::IsPresent => Ok(Value::Bool(argument(0)?.is_present())),
    }
}

/// A list where text is wanted is its first item.
fn text_value(value: Value) -> Value {
    match value {
        Value::List(items) => items.into_iter().next().map_or(Value::Null, Value::Text),
        other => other,
    }
}

/// The format tokens `FormatDateTime` knows: year, month, day, hours, minutes, seconds, and `f`
/// for a fraction of a second of any length (AD's generalized time is `yyyyMMddHHmmss.fZ`).
const DATE_TOKENS: &[&str] = &["yyyy", "MM", "dd", "HH", "mm", "ss", "f"];

/// Reads `text` as `format` says: the values of yyyy, MM, dd, HH, mm, ss in that order.
fn read_date(text: &str, format: &str) -> Option<[u32; 6]> {
    let mut parts = [0u32, 1, 1, 0, 0, 0];
    let text: Vec<char> = text.chars().collect();
    let mut at = 0;
    let mut rest = format;
    while !rest.is_empty() {
        if let Some(token) = DATE_TOKENS.iter().find(|token| rest.starts_with(**token)) {
            rest = &rest[token.len()..];
            if *token == "f" {
                while text.get(at).is_some_and(char::is_ascii_digit) {
                    at += 1;
                }
                continue;
            }
            let digits: String = text.get(at..at + token.len())?.iter().collect();
            if !digits.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            at += token.len();
            let value: u32 = digits.parse().ok()?;
            let slot = match *token {
                "yyyy" => 0,
                "MM" => 1,
                "dd" => 2,
                "HH" => 3,
                "mm" => 4,
                _ => 5,
            };
            parts[slot] = value;
        } else {
            let literal = rest.chars().next()?;
            if text.get(at) != Some(&literal) {
                return None;
            }
            at += 1;
            rest = &rest[literal.len_utf8()..];
        }
    }
    let valid = at == text.len()
        && (1..=12).contains(&parts[1])
        && (1..=31).contains(&parts[2])
        && parts[3] < 24
        && parts[4] < 60
        && parts[5] < 61;
    valid.then_some(parts)
}

fn write_date(parts: &[u32; 6], format: &str) -> String {
    let mut out = String::new();
    let mut rest = format;
    while !rest.is_empty() {
        if let Some(token) = DATE_TOKENS.iter().find(|token| rest.starts_with(**token)) {
            rest = &rest[token.len()..];
            match *token {
                "yyyy" => out.push_str(&format!("{:04}", parts[0])),
                "MM" => out.push_str(&format!("{:02}", parts[1])),
                "dd" => out.push_str(&format!("{:02}", parts[2])),
                "HH" => out.push_str(&format!("{:02}", parts[3])),
                "mm" => out.push_str(&format!("{:02}", parts[4])),
                "ss" => out.push_str(&format!("{:02}", parts[5])),
                _ => out.push('0'),
            }
        } else if let Some(literal) = rest.chars().next() {
            out.push(literal);
            rest = &rest[literal.len_utf8()..];
        }
    }
    out
}

/// Letters with diacritics as their plain Latin letters (`Zoë Ångström` → `Zoe Angstrom`);
/// others stay as they are.
fn normalize_diacritics(text: &str) -> String {
    const TABLE: &[(&str, &str)] = &[
        ("ÀÁÂÃÄÅĀĂĄ", "A"),
        ("àáâãäåāăą", "a"),
        ("ÇĆĈĊČ", "C"),
        ("çćĉċč", "c"),
        ("ĎĐ", "D"),
        ("ďđ", "d"),
        ("ÈÉÊËĒĔĖĘĚ", "E"),
        ("èéêëēĕėęě", "e"),
        ("ĜĞĠĢ", "G"),
        ("ĝğġģ", "g"),
        ("ĤĦ", "H"),
        ("ĥħ", "h"),
        ("ÌÍÎÏĨĪĬĮİ", "I"),
        ("ìíîïĩīĭįı", "i"),
        ("Ĵ", "J"),
        ("ĵ", "j"),
        ("Ķ", "K"),
        ("ķ", "k"),
        ("ĹĻĽĿŁ", "L"),
        ("ĺļľŀł", "l"),
        ("ÑŃŅŇ", "N"),
        ("ñńņň", "n"),
        ("ÒÓÔÕÖØŌŎŐ", "O"),
        ("òóôõöøōŏő", "o"),
        ("ŔŖŘ", "R"),
        ("ŕŗř", "r"),
        ("ŚŜŞŠ", "S"),
        ("śŝşš", "s"),
        ("ŢŤŦ", "T"),
        ("ţťŧ", "t"),
        ("ÙÚÛÜŨŪŬŮŰŲ", "U"),
        ("ùúûüũūŭůűų", "u"),
        ("Ŵ", "W"),
        ("ŵ", "w"),
        ("ÝŶŸ", "Y"),
        ("ýÿŷ", "y"),
        ("ŹŻŽ", "Z"),
        ("źżž", "z"),
        ("Æ", "AE"),
        ("æ", "ae"),
        ("Œ", "OE"),
        ("œ", "oe"),
        ("ß", "ss"),
        ("Þ", "Th"),
        ("þ", "th"),
    ];
    text.chars()
        .map(|c| {
            TABLE
                .iter()
                .find(|(from, _)| from.contains(c))
                .map_or_else(|| c.to_string(), |(_, to)| (*to).to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn user() -> HashMap<&'static str, Vec<String>> {
        let mut values = HashMap::new();
        for (name, value) in [
            ("givenName", vec!["Zoë"]),
            ("sn", vec!["Ångström"]),
            ("c", vec!["NO"]),
            ("department", vec!["  Sales  "]),
            ("whenCreated", vec!["20261207134502.0Z"]),
            (
                "proxyAddresses",
                vec!["SMTP:zoe@contoso.test", "smtp:z@contoso.test"],
            ),
        ] {
            values.insert(name, value.into_iter().map(str::to_owned).collect());
        }
        values
    }

    fn run(text: &str) -> Value {
        let values = user();
        Expression::parse(text)
            .unwrap_or_else(|error| panic!("{text}: {error}"))
            .evaluate(&|name| {
                values
                    .iter()
                    .find(|(known, _)| known.eq_ignore_ascii_case(name))
                    .map(|(_, values)| values.clone())
                    .unwrap_or_default()
            })
            .unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    fn text(value: &str) -> Value {
        Value::Text(value.to_owned())
    }

    #[test]
    fn each_function_gives_what_cloud_sync_s_gives() {
        assert_eq!(run(r#"Join(" ", [givenName], [sn])"#), text("Zoë Ångström"));
        assert_eq!(
            run(r#"Join(" ", [givenName], [middleName], [sn])"#),
            text("Zoë Ångström")
        );
        assert_eq!(run(r#"Left([sn], 3)"#), text("Ång"));
        assert_eq!(run(r#"Mid([sn], 2, 3)"#), text("ngs"));
        assert_eq!(run(r#"Replace([c], "NO", "Norway")"#), text("Norway"));
        assert_eq!(
            run(r#"Switch([c], "other", "NO", "Norway", "SE", "Sweden")"#),
            text("Norway")
        );
        assert_eq!(
            run(r#"Switch([c], "other", "SE", "Sweden")"#),
            text("other")
        );
        assert_eq!(
            run(r#"IIF([c] = "NO", "Nordic", "elsewhere")"#),
            text("Nordic")
        );
        assert_eq!(
            run(r#"IIF([c] <> "NO", "elsewhere", "Nordic")"#),
            text("Nordic")
        );
        assert_eq!(run(r#"Coalesce([msExchUsageLocation], [c])"#), text("NO"));
        assert_eq!(run(r#"ToLower([c])"#), text("no"));
        assert_eq!(run(r#"ToUpper([givenName])"#), text("ZOË"));
        assert_eq!(run(r#"Trim([department])"#), text("Sales"));
        assert_eq!(run(r#"StripSpaces(" a b ")"#), text("ab"));
        assert_eq!(
            run(r#"NormalizeDiacritics(Join(" ", [givenName], [sn]))"#),
            text("Zoe Angstrom")
        );
        assert_eq!(run(r#"Item(Split("a,b,c", ","), 2)"#), text("b"));
        assert_eq!(
            run(r#"Item([proxyAddresses], 1)"#),
            text("SMTP:zoe@contoso.test")
        );
        // An attribute alone: its value, or all of them when it has several.
        assert_eq!(run("[c]"), text("NO"));
        assert_eq!(
            run("[proxyAddresses]"),
            Value::List(vec![
                "SMTP:zoe@contoso.test".to_owned(),
                "smtp:z@contoso.test".to_owned()
            ])
        );
        assert_eq!(run(r#"Word("The quick brown fox", 3, " ")"#), text("brown"));
        assert_eq!(
            run(r#"FormatDateTime([whenCreated], "yyyyMMddHHmmss.fZ", "yyyy-MM-ddTHH:mm:ssZ")"#),
            text("2026-12-07T13:45:02Z")
        );
        assert_eq!(run("IsPresent([c])"), Value::Bool(true));
        assert_eq!(run("IsPresent([title])"), Value::Bool(false));
        // A null source stays null: the property is cleared, not set to "".
        assert_eq!(run("ToLower([title])"), Value::Null);
        assert_eq!(run(r#"Join(" ", [title])"#), Value::Null);
        // Names are case-insensitive, spaces anywhere between tokens.
        assert_eq!(run(r#"  toupper ( [C] ) "#), text("NO"));
    }

    #[test]
    fn errors_point_at_the_character() {
        let error = |text: &str| Expression::parse(text).expect_err("refused");
        assert_eq!(error(r#"Left([sn], "3")"#).column, 12);
        assert!(
            error(r#"Left([sn], "3")"#)
                .message
                .contains("argument 2 of Left must be a number")
        );
        assert_eq!(error("Lefty([sn], 3)").column, 1);
        assert!(
            error("Lefty([sn], 3)")
                .message
                .contains("unknown function 'Lefty'")
        );
        assert_eq!(error(r#"Join(" ", [sn]"#).column, 15);
        assert_eq!(error(r#"Join(" , [sn])"#).column, 6);
        assert!(error(r#"Join(" , [sn])"#).message.contains("no closing"));
        assert_eq!(error("ToLower([sn], [c])").column, 15);
        assert!(error("Mid([sn], 1)").message.contains("at least 3"));
        assert!(error(r#"Switch([c], "x", "NO")"#).message.contains("pairs"));
        assert!(error("[given name]").message.contains("square brackets"));
        assert!(
            error(r#"IIF("x", "a", "b")"#)
                .message
                .contains("must be a condition")
        );
        assert_eq!(error("").column, 1);
        assert_eq!(error("[sn] [c]").column, 6);
        let deep = format!("{}[sn]{}", "Trim(".repeat(40), ")".repeat(40));
        assert!(error(&deep).message.contains("nested more than"));
        assert_eq!(
            error(r#"Left([sn], "3")"#).to_string(),
            "at character 12: argument 2 of Left must be a number, not text"
        );
    }

    #[test]
    fn a_date_in_another_format_is_an_evaluation_error() {
        let expression =
            Expression::parse(r#"FormatDateTime([d], "yyyyMMdd", "yyyy-MM-dd")"#).expect("parses");
        let error = expression
            .evaluate(&|_| vec!["7 Dec 2026".to_owned()])
            .expect_err("refused");
        assert!(
            error
                .0
                .contains("'7 Dec 2026' is not a date in the format 'yyyyMMdd'")
        );
        assert_eq!(
            expression
                .evaluate(&|_| vec!["20261207".to_owned()])
                .expect("parses"),
            text("2026-12-07")
        );
    }

    #[test]
    fn the_attributes_read_are_listed_once() {
        let expression = Expression::parse(r#"Coalesce([msExchUsageLocation], [c], ToUpper([C]))"#)
            .expect("parses");
        assert_eq!(expression.attributes(), ["msExchUsageLocation", "c"]);
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #[test]
            fn any_text_parses_or_is_refused_at_a_character_inside_it(text in "\\PC{0,80}") {
                if let Err(error) = Expression::parse(&text) {
                    prop_assert!(error.column >= 1);
                    prop_assert!(error.column <= text.chars().count() + 1);
                }
            }

            #[test]
            fn what_parses_evaluates_without_panicking(
                text in r#"(Join|Left|Mid|Replace|Switch|IIF|Coalesce|ToLower|Split|Item|Word|FormatDateTime|IsPresent)\((\[a\]|"[a-z ,]{0,5}"|[0-9]{1,3}|\[b\] = "x"|Split\(\[a\], ","\))(, (\[a\]|"[a-z ,]{0,5}"|[0-9]{1,3}|\[b\] = "x")){0,4}\)"#,
                value in "\\PC{0,20}",
            ) {
                if let Ok(expression) = Expression::parse(&text) {
                    let _ = expression.evaluate(&|name| if name == "a" { vec![value.clone()] } else { Vec::new() });
                }
            }
        }
    }
}
