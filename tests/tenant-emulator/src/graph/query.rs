//! OData query options on directory objects: `$select`, `$filter` (with Graph's advanced query
//! rules), `$top`, `$orderby`, `$count`, `$search`, `$skiptoken` paging, and rendering objects.
//! https://learn.microsoft.com/en-us/graph/query-parameters
//! https://learn.microsoft.com/en-us/graph/aad-advanced-queries

use serde_json::{Map, Value, json};

use super::{GraphError, GraphRequest};
use crate::model::{Access, DirObject, Filter, Kind, PropDef, Ty};
use crate::util::{b64url, b64url_decode};

/// Navigation properties `$select` accepts on delta queries.
pub const DELTA_NAVIGATION: &[(Kind, &str)] = &[(Kind::User, "manager"), (Kind::Group, "members")];

/// Parses `$select`: canonical property names, or None for the default set.
pub fn select(
    kind: Kind,
    req: &GraphRequest,
    allow_navigation: bool,
) -> Result<Option<Vec<String>>, GraphError> {
    let Some(raw) = req.param("$select") else {
        return Ok(None);
    };
    let mut names = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if let Some(def) = kind.property(name) {
            names.push(def.name.to_owned());
        } else if let Some((_, nav)) = DELTA_NAVIGATION
            .iter()
            .find(|(k, nav)| *k == kind && nav.eq_ignore_ascii_case(name) && allow_navigation)
        {
            names.push((*nav).to_owned());
        } else if name == "*" {
            names.extend(kind.properties().iter().map(|d| d.name.to_owned()));
        } else {
            return Err(GraphError::bad_request(
                "BadRequest",
                &format!(
                    "Parsing OData Select and Expand failed: Could not find a property named '{name}' on type '{}'.",
                    kind.type_name()
                ),
            ));
        }
    }
    names.dedup();
    Ok(Some(names))
}

/// The representation of an object: the default properties, or the selected ones.
pub fn render(object: &DirObject, select: Option<&[String]>) -> Map<String, Value> {
    let mut out = Map::new();
    let mut put = |def: &PropDef| {
        let value = if def.access == Access::WriteOnly {
            Value::Null
        } else {
            object
                .props
                .get(def.name)
                .cloned()
                .unwrap_or_else(|| match def.ty {
                    Ty::StrList => json!([]),
                    _ => Value::Null,
                })
        };
        out.insert(def.name.to_owned(), value);
    };
    match select {
        None => object
            .kind
            .properties()
            .iter()
            .filter(|d| d.default)
            .for_each(&mut put),
        Some(names) => {
            for name in names {
                if let Some(def) = object.kind.property(name) {
                    put(def);
                }
            }
        }
    }
    out
}

/// `@odata.context` fragment: `users` or `users(id,displayName)`.
pub fn context_fragment(collection: &str, select: Option<&[String]>) -> String {
    match select {
        Some(names) if !names.is_empty() => format!("{collection}({})", names.join(",")),
        _ => collection.to_owned(),
    }
}

/// `$top` for directory collections: 1 to 999, 100 by default.
pub fn top(req: &GraphRequest) -> Result<usize, GraphError> {
    match req.param("$top") {
        None => Ok(100),
        Some(raw) => match raw.trim().parse::<usize>() {
            Ok(n) if (1..=999).contains(&n) => Ok(n),
            _ => Err(GraphError::bad_request(
                "Request_BadRequest",
                &format!(
                    "Invalid page size specified: '{raw}'. Must be between 1 and 999 inclusive."
                ),
            )),
        },
    }
}

/// The position after which the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub key: String,
    pub id: String,
}

pub fn encode_position(position: &Position) -> String {
    let text = json!({"k": position.key, "i": position.id}).to_string();
    format!("RFNwdAoAAQAAAAAAAAAAFAAAA{}", b64url(text.as_bytes()))
}

pub fn decode_position(token: &str) -> Result<Position, GraphError> {
    let expired = || {
        GraphError::bad_request(
            "Directory_ExpiredPageToken",
            "The specified page token value has expired and can no longer be included in your request.",
        )
    };
    let body = token
        .strip_prefix("RFNwdAoAAQAAAAAAAAAAFAAAA")
        .ok_or_else(expired)?;
    let value: Value = b64url_decode(body)
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(expired)?;
    Ok(Position {
        key: value["k"].as_str().ok_or_else(expired)?.to_owned(),
        id: value["i"].as_str().ok_or_else(expired)?.to_owned(),
    })
}

/// `$orderby`: the property to sort on (lower-cased values), `None` for the directory's order.
pub fn order_by(kind: Kind, req: &GraphRequest) -> Result<Option<&'static str>, GraphError> {
    let Some(raw) = req.param("$orderby") else {
        return Ok(None);
    };
    let mut parts = raw.split_whitespace();
    let name = parts.next().unwrap_or_default();
    let direction = parts.next().unwrap_or("asc");
    let by_default: &[&str] = match kind {
        Kind::User => &["displayName", "userPrincipalName"],
        Kind::Group => &["displayName"],
        _ => &[],
    };
    let advanced_only: &[&str] = &["createdDateTime", "deletedDateTime", "displayName"];
    let Some(def) = kind.property(name) else {
        return Err(GraphError::bad_request(
            "BadRequest",
            &format!(
                "Could not find a property named '{name}' on type '{}'.",
                kind.type_name()
            ),
        ));
    };
    let default_ok = by_default.contains(&def.name);
    let advanced_ok = advanced_only.contains(&def.name) && req.advanced();
    if !(default_ok || advanced_ok) || !direction.eq_ignore_ascii_case("asc") {
        return Err(GraphError::unsupported_query(&format!(
            "Sorting not supported for '{}'.",
            def.name
        )));
    }
    if req.param("$filter").is_some() && !req.advanced() {
        return Err(GraphError::unsupported_query(
            "Sorting with $filter is not supported because the required parameters might be missing. Try adding $count=true query parameter and ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more information",
        ));
    }
    Ok(Some(def.name))
}

/// The sort key of an object.
pub fn sort_key(object: &DirObject, order: Option<&str>) -> String {
    match order {
        Some(name) => object.str_prop(name).unwrap_or_default().to_lowercase(),
        None => String::new(),
    }
}

/// `$search="displayName:foo"` (advanced queries only): tokens matched case-insensitively.
pub fn search(kind: Kind, req: &GraphRequest) -> Result<Option<Vec<(String, String)>>, GraphError> {
    let Some(raw) = req.param("$search") else {
        return Ok(None);
    };
    if !req.eventual {
        return Err(GraphError::unsupported_query(
            "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
        ));
    }
    let mut clauses = Vec::new();
    for clause in raw.split(" OR ").flat_map(|c| c.split(" AND ")) {
        let clause = clause.trim().trim_matches('"');
        let Some((name, value)) = clause.split_once(':') else {
            return Err(GraphError::bad_request(
                "Request_BadRequest",
                "Invalid search clause.",
            ));
        };
        let Some(def) = kind.property(name.trim()) else {
            return Err(GraphError::bad_request(
                "Request_BadRequest",
                &format!("Invalid search property '{}'.", name.trim()),
            ));
        };
        clauses.push((def.name.to_owned(), value.trim().to_lowercase()));
    }
    Ok(Some(clauses))
}

pub fn search_matches(object: &DirObject, clauses: &[(String, String)]) -> bool {
    clauses.iter().any(|(name, value)| {
        object.str_prop(name).is_some_and(|text| {
            text.to_lowercase()
                .split(|c: char| !c.is_alphanumeric())
                .any(|word| word.starts_with(value.as_str()))
                || text.to_lowercase().starts_with(value.as_str())
        })
    })
}

// ----- $filter -----

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Bool(bool),
    Null,
    Number(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Ge,
    Le,
    Gt,
    Lt,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare {
        path: String,
        op: Op,
        value: Literal,
    },
    In {
        path: String,
        values: Vec<Literal>,
    },
    StartsWith {
        path: String,
        value: String,
    },
    EndsWith {
        path: String,
        value: String,
    },
    Any {
        collection: String,
        variable: String,
        body: Box<Expr>,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Number(f64),
    Open,
    Close,
    Comma,
    Colon,
}

fn syntax_error(text: &str, position: usize) -> GraphError {
    GraphError::bad_request(
        "BadRequest",
        &format!("Invalid filter clause: Syntax error at position {position} in '{text}'."),
    )
}

fn tokenize(text: &str) -> Result<Vec<Token>, GraphError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            ':' => {
                tokens.push(Token::Colon);
                i += 1;
            }
            '\'' => {
                let mut value = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(syntax_error(text, i)),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            value.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(other) => {
                            value.push(*other);
                            i += 1;
                        }
                    }
                }
                tokens.push(Token::Str(value));
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | '-' | ':'))
                {
                    i += 1;
                }
                let raw: String = chars[start..i].iter().collect();
                match raw.parse::<f64>() {
                    Ok(number) => tokens.push(Token::Number(number)),
                    // Unquoted GUIDs and dates are identifiers-like literals.
                    Err(_) => tokens.push(Token::Str(raw)),
                }
            }
            c if c.is_alphanumeric() || c == '_' || c == '$' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '/' | '.' | '$'))
                {
                    i += 1;
                }
                tokens.push(Token::Ident(chars[start..i].iter().collect()));
            }
            _ => return Err(syntax_error(text, i)),
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn error(&self) -> GraphError {
        syntax_error(self.text, self.at)
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Ident(ident)) if ident.eq_ignore_ascii_case(word))
    }

    fn expect(&mut self, token: &Token) -> Result<(), GraphError> {
        if self.next().as_ref() == Some(token) {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    fn or(&mut self) -> Result<Expr, GraphError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.at += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, GraphError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.at += 1;
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, GraphError> {
        if self.keyword("not") {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn literal(&mut self) -> Result<Literal, GraphError> {
        match self.next() {
            Some(Token::Str(value)) => Ok(Literal::Str(value)),
            Some(Token::Number(value)) => Ok(Literal::Number(value)),
            Some(Token::Ident(word)) if word.eq_ignore_ascii_case("true") => {
                Ok(Literal::Bool(true))
            }
            Some(Token::Ident(word)) if word.eq_ignore_ascii_case("false") => {
                Ok(Literal::Bool(false))
            }
            Some(Token::Ident(word)) if word.eq_ignore_ascii_case("null") => Ok(Literal::Null),
            _ => Err(self.error()),
        }
    }

    fn primary(&mut self) -> Result<Expr, GraphError> {
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or()?;
                self.expect(&Token::Close)?;
                Ok(inner)
            }
            Some(Token::Ident(name)) => {
                let lower = name.to_ascii_lowercase();
                if (lower == "startswith" || lower == "endswith")
                    && self.peek() == Some(&Token::Open)
                {
                    self.at += 1;
                    let Some(Token::Ident(path)) = self.next() else {
                        return Err(self.error());
                    };
                    self.expect(&Token::Comma)?;
                    let Literal::Str(value) = self.literal()? else {
                        return Err(self.error());
                    };
                    self.expect(&Token::Close)?;
                    return Ok(if lower == "startswith" {
                        Expr::StartsWith { path, value }
                    } else {
                        Expr::EndsWith { path, value }
                    });
                }
                if let Some(collection) = name
                    .strip_suffix("/any")
                    .or_else(|| name.strip_suffix("/ANY"))
                {
                    self.expect(&Token::Open)?;
                    let Some(Token::Ident(variable)) = self.next() else {
                        return Err(self.error());
                    };
                    self.expect(&Token::Colon)?;
                    let body = self.or()?;
                    self.expect(&Token::Close)?;
                    return Ok(Expr::Any {
                        collection: collection.to_owned(),
                        variable,
                        body: Box::new(body),
                    });
                }
                let Some(Token::Ident(op)) = self.next() else {
                    return Err(self.error());
                };
                let op = match op.to_ascii_lowercase().as_str() {
                    "eq" => Op::Eq,
                    "ne" => Op::Ne,
                    "ge" => Op::Ge,
                    "le" => Op::Le,
                    "gt" => Op::Gt,
                    "lt" => Op::Lt,
                    "in" => {
                        self.expect(&Token::Open)?;
                        let mut values = vec![self.literal()?];
                        while self.peek() == Some(&Token::Comma) {
                            self.at += 1;
                            values.push(self.literal()?);
                        }
                        self.expect(&Token::Close)?;
                        return Ok(Expr::In { path: name, values });
                    }
                    _ => return Err(self.error()),
                };
                let value = self.literal()?;
                Ok(Expr::Compare {
                    path: name,
                    op,
                    value,
                })
            }
            _ => Err(self.error()),
        }
    }
}

pub fn parse_filter(text: &str) -> Result<Expr, GraphError> {
    let mut parser = Parser {
        text,
        tokens: tokenize(text)?,
        at: 0,
    };
    let expr = parser.or()?;
    if parser.at != parser.tokens.len() {
        return Err(parser.error());
    }
    Ok(expr)
}

fn unsupported_property(kind: Kind, property: &str) -> GraphError {
    GraphError::unsupported_query(&format!(
        "Unsupported or invalid query filter clause specified for property '{property}' of resource '{}'.",
        kind.resource_name()
    ))
}

fn needs_advanced(operator: &str) -> GraphError {
    GraphError::unsupported_query(&format!(
        "Operator '{operator}' is not supported because the required parameters might be missing. Try adding $count=true query parameter and ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more information"
    ))
}

/// Resolves a property path of a filter, checking that it may be filtered on.
fn filter_property(kind: Kind, path: &str, advanced: bool) -> Result<&'static PropDef, GraphError> {
    let Some(def) = kind.property(path) else {
        return Err(GraphError::bad_request(
            "BadRequest",
            &format!(
                "Invalid filter clause: Could not find a property named '{path}' on type '{}'.",
                kind.type_name()
            ),
        ));
    };
    match def.filter {
        Filter::No => Err(unsupported_property(kind, def.name)),
        Filter::Advanced if !advanced => Err(unsupported_property(kind, def.name)),
        _ => Ok(def),
    }
}

/// A checked filter: property names resolved to their definitions.
#[derive(Debug, Clone)]
pub enum Check {
    And(Box<Check>, Box<Check>),
    Or(Box<Check>, Box<Check>),
    Not(Box<Check>),
    Compare {
        prop: &'static str,
        op: Op,
        value: Literal,
    },
    In {
        prop: &'static str,
        values: Vec<Literal>,
    },
    StartsWith {
        prop: &'static str,
        value: String,
    },
    EndsWith {
        prop: &'static str,
        value: String,
    },
    /// `collection/any(v: v eq 'x')` and friends.
    Any {
        prop: &'static str,
        body: Box<ItemCheck>,
    },
}

#[derive(Debug, Clone)]
pub enum ItemCheck {
    Or(Box<ItemCheck>, Box<ItemCheck>),
    Eq(String),
    StartsWith(String),
    EndsWith(String),
}

/// Checks a filter against Graph's rules for directory objects.
pub fn check(kind: Kind, expr: &Expr, advanced: bool) -> Result<Check, GraphError> {
    Ok(match expr {
        Expr::And(a, b) => Check::And(
            Box::new(check(kind, a, advanced)?),
            Box::new(check(kind, b, advanced)?),
        ),
        Expr::Or(a, b) => Check::Or(
            Box::new(check(kind, a, advanced)?),
            Box::new(check(kind, b, advanced)?),
        ),
        Expr::Not(inner) => {
            if !advanced {
                return Err(needs_advanced("not"));
            }
            Check::Not(Box::new(check(kind, inner, advanced)?))
        }
        Expr::Compare { path, op, value } => {
            let def = filter_property(kind, path, advanced)?;
            if def.ty == Ty::StrList || def.ty == Ty::Complex {
                return Err(unsupported_property(kind, def.name));
            }
            if *op == Op::Ne && !advanced {
                return Err(needs_advanced("ne"));
            }
            if *value == Literal::Null && !advanced {
                return Err(unsupported_property(kind, def.name));
            }
            if matches!(op, Op::Gt | Op::Lt) {
                return Err(GraphError::unsupported_query("Unsupported Query."));
            }
            Check::Compare {
                prop: def.name,
                op: *op,
                value: value.clone(),
            }
        }
        Expr::In { path, values } => {
            let def = filter_property(kind, path, advanced)?;
            if values.len() > 15 {
                return Err(GraphError::bad_request(
                    "Request_UnsupportedQuery",
                    "Too many child clauses specified in search filter expression containing 'OR' operators: 16. Max allowed: 15.",
                ));
            }
            Check::In {
                prop: def.name,
                values: values.clone(),
            }
        }
        Expr::StartsWith { path, value } => {
            let def = filter_property(kind, path, advanced)?;
            let by_default = [
                "displayName",
                "givenName",
                "surname",
                "mail",
                "mailNickname",
                "userPrincipalName",
                "otherMails",
                "proxyAddresses",
                "employeeId",
                "city",
                "country",
                "department",
                "jobTitle",
                "state",
                "usageLocation",
            ];
            if !by_default.contains(&def.name) && !advanced {
                return Err(unsupported_property(kind, def.name));
            }
            Check::StartsWith {
                prop: def.name,
                value: value.clone(),
            }
        }
        Expr::EndsWith { path, value } => {
            if !advanced {
                return Err(needs_advanced("endsWith"));
            }
            let def = filter_property(kind, path, advanced)?;
            if ![
                "mail",
                "otherMails",
                "userPrincipalName",
                "proxyAddresses",
                "displayName",
            ]
            .contains(&def.name)
            {
                return Err(unsupported_property(kind, def.name));
            }
            Check::EndsWith {
                prop: def.name,
                value: value.clone(),
            }
        }
        Expr::Any {
            collection,
            variable,
            body,
        } => {
            let def = filter_property(kind, collection, advanced)?;
            if def.ty != Ty::StrList {
                return Err(unsupported_property(kind, def.name));
            }
            Check::Any {
                prop: def.name,
                body: Box::new(item_check(kind, def.name, variable, body, advanced)?),
            }
        }
    })
}

fn item_check(
    kind: Kind,
    prop: &str,
    variable: &str,
    expr: &Expr,
    advanced: bool,
) -> Result<ItemCheck, GraphError> {
    match expr {
        Expr::Or(a, b) => Ok(ItemCheck::Or(
            Box::new(item_check(kind, prop, variable, a, advanced)?),
            Box::new(item_check(kind, prop, variable, b, advanced)?),
        )),
        Expr::Compare {
            path,
            op: Op::Eq,
            value: Literal::Str(value),
        } if path == variable => Ok(ItemCheck::Eq(value.clone())),
        Expr::StartsWith { path, value } if path == variable => {
            Ok(ItemCheck::StartsWith(value.clone()))
        }
        Expr::EndsWith { path, value } if path == variable => {
            if advanced {
                Ok(ItemCheck::EndsWith(value.clone()))
            } else {
                Err(needs_advanced("endsWith"))
            }
        }
        _ => Err(unsupported_property(kind, prop)),
    }
}

fn string_value(object: &DirObject, prop: &str) -> Option<String> {
    match object.props.get(prop)? {
        Value::String(text) => Some(text.clone()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn literal_text(literal: &Literal) -> Option<String> {
    match literal {
        Literal::Str(text) => Some(text.clone()),
        Literal::Bool(flag) => Some(flag.to_string()),
        Literal::Number(number) => Some(number.to_string()),
        Literal::Null => None,
    }
}

/// Directory string comparisons are case-insensitive.
pub fn matches(object: &DirObject, check: &Check) -> bool {
    match check {
        Check::And(a, b) => matches(object, a) && matches(object, b),
        Check::Or(a, b) => matches(object, a) || matches(object, b),
        Check::Not(inner) => !matches(object, inner),
        Check::Compare { prop, op, value } => {
            let actual = string_value(object, prop).map(|s| s.to_lowercase());
            let wanted = literal_text(value).map(|s| s.to_lowercase());
            match op {
                Op::Eq => actual == wanted,
                Op::Ne => actual != wanted,
                Op::Ge => matches!((actual, wanted), (Some(a), Some(w)) if a >= w),
                Op::Le => matches!((actual, wanted), (Some(a), Some(w)) if a <= w),
                Op::Gt | Op::Lt => false,
            }
        }
        Check::In { prop, values } => {
            let actual = string_value(object, prop).map(|s| s.to_lowercase());
            values
                .iter()
                .any(|v| literal_text(v).map(|s| s.to_lowercase()) == actual)
        }
        Check::StartsWith { prop, value } => {
            let value = value.to_lowercase();
            match object.props.get(*prop) {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|s| s.to_lowercase().starts_with(&value)),
                _ => {
                    string_value(object, prop).is_some_and(|s| s.to_lowercase().starts_with(&value))
                }
            }
        }
        Check::EndsWith { prop, value } => {
            let value = value.to_lowercase();
            match object.props.get(*prop) {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|s| s.to_lowercase().ends_with(&value)),
                _ => string_value(object, prop).is_some_and(|s| s.to_lowercase().ends_with(&value)),
            }
        }
        Check::Any { prop, body } => object
            .list_prop(prop)
            .iter()
            .any(|item| item_matches(item, body)),
    }
}

fn item_matches(item: &str, check: &ItemCheck) -> bool {
    let item = item.to_lowercase();
    match check {
        ItemCheck::Or(a, b) => item_matches(&item, a) || item_matches(&item, b),
        ItemCheck::Eq(value) => item == value.to_lowercase(),
        ItemCheck::StartsWith(value) => item.starts_with(&value.to_lowercase()),
        ItemCheck::EndsWith(value) => item.ends_with(&value.to_lowercase()),
    }
}

/// Parses and checks `$filter` for a collection.
pub fn filter(kind: Kind, req: &GraphRequest) -> Result<Option<Check>, GraphError> {
    filter_with(kind, req, req.advanced())
}

/// `$filter` with the advanced query capabilities on or off.
pub fn filter_with(
    kind: Kind,
    req: &GraphRequest,
    advanced: bool,
) -> Result<Option<Check>, GraphError> {
    match req.param("$filter") {
        None => Ok(None),
        Some(text) if text.trim().is_empty() => Ok(None),
        Some(text) => Ok(Some(check(kind, &parse_filter(text)?, advanced)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> DirObject {
        let mut user = DirObject::new(Kind::User, "u1", 1);
        user.set("userPrincipalName", json!("Ann@Corp.Test"), 1);
        user.set("onPremisesImmutableId", json!("AAA=="), 1);
        user.set(
            "proxyAddresses",
            json!(["SMTP:ann@corp.test", "smtp:a@corp.test"]),
            1,
        );
        user.set("accountEnabled", json!(true), 1);
        user
    }

    fn run(text: &str, advanced: bool) -> Result<bool, GraphError> {
        let checked = check(Kind::User, &parse_filter(text)?, advanced)?;
        Ok(matches(&user(), &checked))
    }

    #[test]
    fn default_filters_match_case_insensitively() {
        assert!(run("userPrincipalName eq 'ann@corp.test'", false).expect("ok"));
        assert!(!run("userPrincipalName eq 'bob@corp.test'", false).expect("ok"));
        assert!(run("accountEnabled eq true", false).expect("ok"));
        assert!(run("userPrincipalName in ('x@y', 'ANN@corp.test')", false).expect("ok"));
        assert!(run("startswith(userPrincipalName,'ann')", false).expect("ok"));
        assert!(
            run(
                "userPrincipalName eq 'it''s' or accountEnabled eq true",
                false
            )
            .expect("ok")
        );
    }

    #[test]
    fn advanced_filters_need_the_advanced_parameters() {
        let error = run("onPremisesImmutableId eq 'AAA=='", false).expect_err("advanced");
        assert_eq!(error.code, "Request_UnsupportedQuery");
        assert!(
            error
                .message
                .contains("'onPremisesImmutableId' of resource 'User'"),
            "{}",
            error.message
        );
        assert!(run("onPremisesImmutableId eq 'AAA=='", true).expect("ok"));
        // proxyAddresses eq (through any) works by default, and with the advanced parameters.
        assert!(run("proxyAddresses/any(p:p eq 'smtp:a@corp.test')", false).expect("ok"));
        assert!(run("proxyAddresses/any(p:p eq 'smtp:a@corp.test')", true).expect("ok"));
        assert!(run("proxyAddresses/any(p:p eq 'SMTP:ANN@corp.test')", true).expect("ok"));
        assert!(!run("proxyAddresses/any(p:p eq 'smtp:b@corp.test')", true).expect("ok"));
        assert!(run("accountEnabled ne true", false).is_err());
        assert!(!run("accountEnabled ne true", true).expect("ok"));
        assert!(run("endswith(userPrincipalName,'@corp.test')", false).is_err());
        assert!(run("endswith(userPrincipalName,'@corp.test')", true).expect("ok"));
    }

    #[test]
    fn unknown_and_unfilterable_properties_are_refused() {
        let error = run("shoeSize eq '9'", true).expect_err("unknown");
        assert_eq!(error.code, "BadRequest");
        let error = run("passwordProfile eq 'x'", true).expect_err("unfilterable");
        assert_eq!(error.code, "Request_UnsupportedQuery");
        let error = run("userPrincipalName eq", false).expect_err("syntax");
        assert!(
            error.message.starts_with("Invalid filter clause"),
            "{}",
            error.message
        );
    }

    #[test]
    fn positions_round_trip_and_garbage_is_refused() {
        let position = Position {
            key: "ann".into(),
            id: "u1".into(),
        };
        assert_eq!(
            decode_position(&encode_position(&position)).expect("ok"),
            position
        );
        assert_eq!(
            decode_position("garbage").expect_err("bad").code,
            "Directory_ExpiredPageToken"
        );
    }
}
