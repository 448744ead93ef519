//! OData query options on directory objects: `$select`, `$filter` (with Graph's advanced query
//! rules), `$top`, `$orderby`, `$count`, `$search`, `$skiptoken` paging, and rendering objects.
//! https://learn.microsoft.com/en-us/graph/query-parameters
//! https://learn.microsoft.com/en-us/graph/aad-advanced-queries

use serde_json::{Map, Value, json};

use super::{GraphError, GraphRequest, extensions};
use crate::model::{
    Access, DirObject, Filter, Kind, PropDef, State, Ty, empty_extension_attributes,
    is_extension_name,
};
use crate::util::{b64url, b64url_decode};

/// Navigation properties `$select` accepts on delta queries.
pub const DELTA_NAVIGATION: &[(Kind, &str)] = &[(Kind::User, "manager"), (Kind::Group, "members")];

/// Parses `$select`: canonical property names, or None for the default set. Directory
/// extension names are refused here (see [`select_in`]).
pub fn select(
    kind: Kind,
    req: &GraphRequest,
    allow_navigation: bool,
) -> Result<Option<Vec<String>>, GraphError> {
    select_in(kind, req, allow_navigation, None)
}

/// [`select`], with the directory extension names (`extension_{appId}_{name}`) of users and
/// groups resolved against the tenant when `state` is given: an extension available for the
/// type is selected under its registered spelling, any other is Graph's query error
/// (https://learn.microsoft.com/en-us/graph/extensibility-overview: on v1.0 extension values
/// come "only on `$select`").
pub fn select_in(
    kind: Kind,
    req: &GraphRequest,
    allow_navigation: bool,
    state: Option<&State>,
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
        } else if is_extension_name(name) {
            match state {
                Some(state) if matches!(kind, Kind::User | Kind::Group) => {
                    names.push(extensions::select_name(state, kind, name)?);
                }
                _ => return Err(extensions::unknown_in_query(name)),
            }
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

/// The properties Graph returns without `$select`.
pub fn default_names(kind: Kind) -> Vec<String> {
    kind.properties()
        .iter()
        .filter(|d| d.default)
        .map(|d| d.name.to_owned())
        .collect()
}

/// The value of a property as reads show it: absent lists are empty, a write-only property is
/// null, and `onPremisesExtensionAttributes` always has its 15 keys (null where unset).
fn shown(object: &DirObject, def: &PropDef) -> Value {
    if def.access == Access::WriteOnly {
        return Value::Null;
    }
    let value = object.props.get(def.name).cloned();
    if def.name == "onPremisesExtensionAttributes" {
        return full_extension_attributes(value.as_ref());
    }
    value.unwrap_or_else(|| match def.ty {
        Ty::StrList => json!([]),
        _ => Value::Null,
    })
}

/// `onPremisesExtensionAttributes` with all 15 keys, taken from `value` where it has them.
pub fn full_extension_attributes(value: Option<&Value>) -> Value {
    let mut full = empty_extension_attributes();
    if let (Some(Value::Object(given)), Value::Object(out)) = (value, &mut full) {
        for (key, slot) in out.iter_mut() {
            if let Some(v) = given.get(key) {
                slot.clone_from(v);
            }
        }
    }
    full
}

/// The representation of an object: the default properties, or the selected ones. Selected
/// directory extensions (resolved by [`select_in`]) appear only when the object has a value.
pub fn render(object: &DirObject, select: Option<&[String]>) -> Map<String, Value> {
    let mut out = Map::new();
    match select {
        None => {
            for def in object.kind.properties().iter().filter(|d| d.default) {
                out.insert(def.name.to_owned(), shown(object, def));
            }
        }
        Some(names) => {
            for name in names {
                if let Some(def) = object.kind.property(name) {
                    out.insert(def.name.to_owned(), shown(object, def));
                } else if is_extension_name(name)
                    && let Some(value) = extensions::value_of(object, name)
                {
                    out.insert(name.clone(), value.clone());
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

/// `$skiptoken`: where the page starts.
pub fn after(req: &GraphRequest) -> Result<Option<Position>, GraphError> {
    req.param("$skiptoken").map(decode_position).transpose()
}

/// The query options every collection read takes: `$select`, `$filter`, `$top`, `$skiptoken`.
#[derive(Debug)]
pub struct ListQuery {
    pub select: Option<Vec<String>>,
    pub filter: Option<Check>,
    pub top: usize,
    pub after: Option<Position>,
}

impl ListQuery {
    pub fn parse(kind: Kind, req: &GraphRequest) -> Result<ListQuery, GraphError> {
        Self::parse_in(kind, req, None)
    }

    /// [`ListQuery::parse`] with directory extensions in `$select` resolved (see [`select_in`]).
    pub fn parse_in(
        kind: Kind,
        req: &GraphRequest,
        state: Option<&State>,
    ) -> Result<ListQuery, GraphError> {
        Ok(ListQuery {
            select: select_in(kind, req, false, state)?,
            filter: filter(kind, req)?,
            top: top(req)?,
            after: after(req)?,
        })
    }

    /// Whether an object passes `$filter`.
    pub fn matches(&self, object: &DirObject) -> bool {
        self.filter.as_ref().is_none_or(|f| matches(object, f))
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

/// A parsed `$search`: clauses joined by `OR` of groups joined by `AND` (`AND` binds tighter),
/// each clause a property and a token.
pub type Search = Vec<Vec<(String, String)>>;

/// `$search="displayName:foo" AND "mail:bar" OR "displayName:baz"` (advanced queries only):
/// tokens matched case-insensitively.
pub fn search(kind: Kind, req: &GraphRequest) -> Result<Option<Search>, GraphError> {
    let Some(raw) = req.param("$search") else {
        return Ok(None);
    };
    if !req.eventual {
        return Err(GraphError::unsupported_query(
            "Request with $search query parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'",
        ));
    }
    let mut alternatives = Vec::new();
    for alternative in raw.split(" OR ") {
        let mut clauses = Vec::new();
        for clause in alternative.split(" AND ") {
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
        alternatives.push(clauses);
    }
    Ok(Some(alternatives))
}

/// Whether an object matches a `$search`: every clause of one of the `OR` groups.
pub fn search_matches(object: &DirObject, search: &Search) -> bool {
    search.iter().any(|clauses| {
        clauses.iter().all(|(name, value)| {
            object.str_prop(name).is_some_and(|text| {
                let text = text.to_lowercase();
                text.split(|c: char| !c.is_alphanumeric())
                    .any(|word| word.starts_with(value.as_str()))
                    || text.starts_with(value.as_str())
            })
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

/// A parsed `$filter`. `and` and `or` chains are flat lists, so that a long chain does not
/// make a deep tree: the tree is only as deep as the nesting, which the parser limits.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
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

/// How deep parentheses, `not` and `any()` may nest in a filter.
pub const MAX_FILTER_DEPTH: usize = 32;

/// How many child clauses `or` operators and `in` lists may have across a whole filter.
pub const MAX_OR_CLAUSES: usize = 15;

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
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

    /// Runs `parse` one nesting level deeper, refusing filters nested deeper than
    /// [`MAX_FILTER_DEPTH`] (the OData library's message).
    fn nested<T>(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<T, GraphError>,
    ) -> Result<T, GraphError> {
        if self.depth >= MAX_FILTER_DEPTH {
            return Err(GraphError::bad_request(
                "BadRequest",
                "Invalid filter clause: Recursion depth exceeded allowed limit.",
            ));
        }
        self.depth += 1;
        let result = parse(self);
        self.depth -= 1;
        result
    }

    fn or(&mut self) -> Result<Expr, GraphError> {
        let mut terms = vec![self.and()?];
        while self.keyword("or") {
            self.at += 1;
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Expr, GraphError> {
        let mut terms = vec![self.unary()?];
        while self.keyword("and") {
            self.at += 1;
            terms.push(self.unary()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::And(terms)
        })
    }

    fn unary(&mut self) -> Result<Expr, GraphError> {
        if self.keyword("not") {
            self.at += 1;
            return self.nested(|parser| Ok(Expr::Not(Box::new(parser.unary()?))));
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
            Some(Token::Open) => self.nested(|parser| {
                let inner = parser.or()?;
                parser.expect(&Token::Close)?;
                Ok(inner)
            }),
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
                    let body = self.nested(Self::or)?;
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
        depth: 0,
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
    And(Vec<Check>),
    Or(Vec<Check>),
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
    Or(Vec<ItemCheck>),
    Eq(String),
    StartsWith(String),
    EndsWith(String),
}

/// How many child clauses the `or` operators and `in` lists of a filter have in all: an `or`
/// of n terms has n (an `in` or `or` term counting its own), an `in` list one per value.
pub fn or_clauses(expr: &Expr) -> usize {
    match expr {
        Expr::Or(terms) => terms
            .iter()
            .map(|term| match term {
                Expr::Or(_) | Expr::In { .. } => or_clauses(term),
                other => 1 + or_clauses(other),
            })
            .sum(),
        Expr::In { values, .. } => values.len(),
        Expr::And(terms) => terms.iter().map(or_clauses).sum(),
        Expr::Not(inner) => or_clauses(inner),
        Expr::Any { body, .. } => or_clauses(body),
        Expr::Compare { .. } | Expr::StartsWith { .. } | Expr::EndsWith { .. } => 0,
    }
}

/// Checks a filter against Graph's rules for directory objects, first the limit on `or`
/// clauses across the whole filter.
pub fn check(kind: Kind, expr: &Expr, advanced: bool) -> Result<Check, GraphError> {
    let clauses = or_clauses(expr);
    if clauses > MAX_OR_CLAUSES {
        return Err(GraphError::bad_request(
            "Request_UnsupportedQuery",
            &format!(
                "Too many child clauses specified in search filter expression containing 'OR' operators: {clauses}. Max allowed: {MAX_OR_CLAUSES}."
            ),
        ));
    }
    check_clause(kind, expr, advanced)
}

fn check_all(kind: Kind, terms: &[Expr], advanced: bool) -> Result<Vec<Check>, GraphError> {
    terms
        .iter()
        .map(|term| check_clause(kind, term, advanced))
        .collect()
}

fn check_clause(kind: Kind, expr: &Expr, advanced: bool) -> Result<Check, GraphError> {
    Ok(match expr {
        Expr::And(terms) => Check::And(check_all(kind, terms, advanced)?),
        Expr::Or(terms) => Check::Or(check_all(kind, terms, advanced)?),
        Expr::Not(inner) => {
            if !advanced {
                return Err(needs_advanced("not"));
            }
            Check::Not(Box::new(check_clause(kind, inner, advanced)?))
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
        Expr::Or(terms) => Ok(ItemCheck::Or(
            terms
                .iter()
                .map(|term| item_check(kind, prop, variable, term, advanced))
                .collect::<Result<_, _>>()?,
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
        Check::And(terms) => terms.iter().all(|term| matches(object, term)),
        Check::Or(terms) => terms.iter().any(|term| matches(object, term)),
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
        ItemCheck::Or(terms) => terms.iter().any(|term| item_matches(&item, term)),
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
    fn deep_nesting_is_refused_instead_of_overflowing_the_stack() {
        let deep = format!(
            "{}userPrincipalName eq 'a'{}",
            "(".repeat(3000),
            ")".repeat(3000)
        );
        let error = run(&deep, false).expect_err("too deep");
        assert_eq!(error.status, 400);
        assert_eq!(
            error.message,
            "Invalid filter clause: Recursion depth exceeded allowed limit."
        );
        let nots = format!("{}accountEnabled eq true", "not ".repeat(3000));
        assert!(run(&nots, true).is_err());
        let any = format!(
            "proxyAddresses/any(p:{}p eq 'x'{})",
            "(".repeat(100),
            ")".repeat(100)
        );
        assert!(run(&any, false).is_err());
        // Up to the limit is fine.
        let fine = format!(
            "{}userPrincipalName eq 'ann@corp.test'{}",
            "(".repeat(MAX_FILTER_DEPTH - 1),
            ")".repeat(MAX_FILTER_DEPTH - 1)
        );
        assert!(run(&fine, false).expect("within the limit"));
        // A long chain is flat, not deep: it parses, and matches without deep recursion.
        let chain = vec!["accountEnabled eq true"; 3000].join(" and ");
        assert!(run(&chain, false).expect("a flat chain"));
    }

    #[test]
    fn or_clauses_are_limited_across_the_whole_filter() {
        let ors = |n: usize| {
            (0..n)
                .map(|i| format!("userPrincipalName eq 'u{i}@corp.test'"))
                .collect::<Vec<_>>()
                .join(" or ")
        };
        assert!(!run(&ors(15), false).expect("15 is allowed"));
        let error = run(&ors(16), false).expect_err("16 is not");
        assert_eq!(
            (error.status, error.code.as_str(), error.message.as_str()),
            (
                400,
                "Request_UnsupportedQuery",
                "Too many child clauses specified in search filter expression containing 'OR' operators: 16. Max allowed: 15."
            )
        );
        let values = |n: usize| {
            (0..n)
                .map(|i| format!("'u{i}@corp.test'"))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert!(run(&format!("userPrincipalName in ({})", values(15)), false).is_ok());
        assert!(run(&format!("userPrincipalName in ({})", values(16)), false).is_err());
        // Counted across the filter: 10 values, then 6 more clauses elsewhere.
        let spread = format!("userPrincipalName in ({}) and ({})", values(10), ors(6));
        let error = run(&spread, false).expect_err("16 in all");
        assert!(
            error.message.contains("operators: 16."),
            "{}",
            error.message
        );
        let error =
            run(&format!("({}) or accountEnabled eq true", ors(15)), false).expect_err("nested or");
        assert!(
            error.message.contains("operators: 16."),
            "{}",
            error.message
        );
    }

    #[test]
    fn search_and_binds_tighter_than_or() {
        let mut user = user();
        user.set("displayName", json!("Ann Smith"), 2);
        user.set("mail", json!("ann@corp.test"), 2);
        let run = |text: &str| {
            let req = GraphRequest::new(
                "GET",
                "/users",
                &format!("$search={}", crate::util::percent_encode(text)),
                &[("ConsistencyLevel".to_owned(), "eventual".to_owned())],
                None,
            );
            let parsed = search(Kind::User, &req).expect("valid").expect("present");
            search_matches(&user, &parsed)
        };
        assert!(run("\"displayName:ann\" AND \"mail:ann\""));
        assert!(
            !run("\"displayName:ann\" AND \"mail:bob\""),
            "AND needs both"
        );
        assert!(run("\"displayName:bob\" OR \"mail:ann\""));
        assert!(run(
            "\"displayName:bob\" AND \"mail:bob\" OR \"displayName:smi\""
        ));
        assert!(!run(
            "\"displayName:bob\" OR \"mail:bob\" AND \"displayName:smi\""
        ));
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
