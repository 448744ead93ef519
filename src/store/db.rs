//! The one way the store talks to its database, SQLite or PostgreSQL (ARCHITECTURE.md, "The
//! state store"). The store's modules write their SQL once, in the dialect both engines share,
//! with `?1`-style placeholders; this module runs it on whichever engine the configuration names.
//! The API follows rusqlite's shape (execute, query_row, prepare, query_map, transactions), so
//! the store reads the same on both.
//!
//! PostgreSQL runs on a thread of its own: its client blocks on a private runtime, which may not
//! happen on a thread that drives main's runtime, and a store call from a cycle's task does. The
//! caller waits for the answer as it waits for SQLite's, holding the store's lock.

use std::collections::HashMap;
use std::sync::mpsc;

/// A value read from, or bound to, a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// A borrowed value: what a parameter binds and what a column reads, without copying.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl Value {
    fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(f) => ValueRef::Real(*f),
            Value::Text(s) => ValueRef::Text(s),
            Value::Blob(b) => ValueRef::Blob(b),
        }
    }
}

impl ValueRef<'_> {
    fn to_owned_value(self) -> Value {
        match self {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(f) => Value::Real(f),
            ValueRef::Text(s) => Value::Text(s.to_owned()),
            ValueRef::Blob(b) => Value::Blob(b.to_owned()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", postgres_message(.0))]
    Postgres(#[from] postgres::Error),
    #[error("the query returned no rows")]
    NoRows,
    #[error("column {index}: expected {expected}, found {found}")]
    Conversion {
        index: usize,
        expected: &'static str,
        found: &'static str,
    },
    #[error("a stored value is damaged: {0}")]
    Corrupt(String),
    /// `[store]` names something dirsync cannot use (the words say which field and why).
    #[error("{0}")]
    Settings(String),
    #[error("the connection to the state database ended")]
    Closed,
}

/// PostgreSQL's own words (its message, detail and hint), not only the client's "db error".
fn postgres_message(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = format!("PostgreSQL: {}", db.message());
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" ({detail})"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!("; {hint}"));
            }
            text
        }
        None => match std::error::Error::source(error) {
            Some(source) => format!("PostgreSQL: {error}: {source}"),
            None => format!("PostgreSQL: {error}"),
        },
    }
}

impl DbError {
    /// Whether the error says a uniqueness or check rule refused the write.
    pub fn is_constraint_violation(&self) -> bool {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(failure, _)) => {
                failure.code == rusqlite::ErrorCode::ConstraintViolation
            }
            DbError::Postgres(error) => error
                .code()
                .is_some_and(|code| code.code().starts_with("23")),
            _ => false,
        }
    }
}

pub type Result<T, E = DbError> = std::result::Result<T, E>;

/// `NoRows` as `None`, as rusqlite's `OptionalExtension` does.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(DbError::NoRows) => Ok(None),
            Err(DbError::Sqlite(rusqlite::Error::QueryReturnedNoRows)) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// A Rust value a statement can bind.
pub trait ToParam {
    fn to_param(&self) -> ValueRef<'_>;
}

impl<T: ToParam + ?Sized> ToParam for &T {
    fn to_param(&self) -> ValueRef<'_> {
        (**self).to_param()
    }
}

impl<T: ToParam> ToParam for Option<T> {
    fn to_param(&self) -> ValueRef<'_> {
        match self {
            Some(value) => value.to_param(),
            None => ValueRef::Null,
        }
    }
}

impl ToParam for str {
    fn to_param(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}

impl ToParam for String {
    fn to_param(&self) -> ValueRef<'_> {
        ValueRef::Text(self)
    }
}

impl ToParam for [u8] {
    fn to_param(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl ToParam for Vec<u8> {
    fn to_param(&self) -> ValueRef<'_> {
        ValueRef::Blob(self)
    }
}

impl ToParam for Value {
    fn to_param(&self) -> ValueRef<'_> {
        self.as_ref()
    }
}

impl ToParam for f64 {
    fn to_param(&self) -> ValueRef<'_> {
        ValueRef::Real(*self)
    }
}

impl ToParam for bool {
    fn to_param(&self) -> ValueRef<'_> {
        ValueRef::Integer(i64::from(*self))
    }
}

macro_rules! integer_params {
    ($($t:ty),*) => {$(
        impl ToParam for $t {
            fn to_param(&self) -> ValueRef<'_> {
                ValueRef::Integer(*self as i64)
            }
        }
    )*};
}
integer_params!(i64, i32, u32, u16, u8, usize, u64);

/// A statement's parameters: a tuple, an array, `()` for none, `params![…]` or
/// `params_from_iter(…)`.
pub trait Params {
    fn values(&self) -> Vec<ValueRef<'_>>;
}

impl Params for () {
    fn values(&self) -> Vec<ValueRef<'_>> {
        Vec::new()
    }
}

impl<T: ToParam, const N: usize> Params for [T; N] {
    fn values(&self) -> Vec<ValueRef<'_>> {
        self.iter().map(ToParam::to_param).collect()
    }
}

impl<T: ToParam> Params for &[T] {
    fn values(&self) -> Vec<ValueRef<'_>> {
        self.iter().map(ToParam::to_param).collect()
    }
}

macro_rules! tuple_params {
    ($($name:ident . $index:tt),+) => {
        impl<$($name: ToParam),+> Params for ($($name,)+) {
            fn values(&self) -> Vec<ValueRef<'_>> {
                vec![$(self.$index.to_param()),+]
            }
        }
    };
}
tuple_params!(A.0);
tuple_params!(A.0, B.1);
tuple_params!(A.0, B.1, C.2);
tuple_params!(A.0, B.1, C.2, D.3);
tuple_params!(A.0, B.1, C.2, D.3, E.4);
tuple_params!(A.0, B.1, C.2, D.3, E.4, F.5);
tuple_params!(A.0, B.1, C.2, D.3, E.4, F.5, G.6);
tuple_params!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7);

impl<T> std::fmt::Debug for ParamsFromIter<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ParamsFromIter")
    }
}

/// Parameters from an iterator, in order.
pub struct ParamsFromIter<T>(Vec<T>);

pub fn params_from_iter<I: IntoIterator>(values: I) -> ParamsFromIter<I::Item> {
    ParamsFromIter(values.into_iter().collect())
}

impl<T: ToParam> Params for ParamsFromIter<T> {
    fn values(&self) -> Vec<ValueRef<'_>> {
        self.0.iter().map(ToParam::to_param).collect()
    }
}

/// `params![a, b, c]`: parameters of different types.
#[macro_export]
macro_rules! store_params {
    () => { () };
    ($($value:expr),+ $(,)?) => {
        [$(&$value as &dyn $crate::store::db::ToParam),+]
    };
}
pub use crate::store_params as params;

/// A Rust value a column can be read as.
pub trait FromValue: Sized {
    fn from_value(value: ValueRef<'_>, index: usize) -> Result<Self>;
}

fn type_name(value: ValueRef<'_>) -> &'static str {
    match value {
        ValueRef::Null => "null",
        ValueRef::Integer(_) => "integer",
        ValueRef::Real(_) => "real",
        ValueRef::Text(_) => "text",
        ValueRef::Blob(_) => "blob",
    }
}

fn mismatch<T>(value: ValueRef<'_>, index: usize, expected: &'static str) -> Result<T> {
    Err(DbError::Conversion {
        index,
        expected,
        found: type_name(value),
    })
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: ValueRef<'_>, index: usize) -> Result<Self> {
        match value {
            ValueRef::Null => Ok(None),
            value => T::from_value(value, index).map(Some),
        }
    }
}

impl FromValue for i64 {
    fn from_value(value: ValueRef<'_>, index: usize) -> Result<Self> {
        match value {
            ValueRef::Integer(i) => Ok(i),
            value => mismatch(value, index, "integer"),
        }
    }
}

macro_rules! narrow_integers {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: ValueRef<'_>, index: usize) -> Result<Self> {
                let wide = i64::from_value(value, index)?;
                <$t>::try_from(wide).map_err(|_| DbError::Conversion {
                    index,
                    expected: stringify!($t),
                    found: "integer out of range",
                })
            }
        }
    )*};
}
narrow_integers!(i32, u32, u16, u8, u64, usize);

impl FromValue for bool {
    fn from_value(value: ValueRef<'_>, index: usize) -> Result<Self> {
        Ok(i64::from_value(value, index)? != 0)
    }
}

impl FromValue for f64 {
    fn from_value(value: ValueRef<'_>, index: usize) -> Result<Self> {
        match value {
            ValueRef::Real(f) => Ok(f),
            ValueRef::Integer(i) => Ok(i as f64),
            value => mismatch(value, index, "real"),
        }
    }
}

impl FromValue for String {
    fn from_value(value: ValueRef<'_>, index: usize) -> Result<Self> {
        match value {
            ValueRef::Text(s) => Ok(s.to_owned()),
            value => mismatch(value, index, "text"),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: ValueRef<'_>, index: usize) -> Result<Self> {
        match value {
            ValueRef::Blob(b) => Ok(b.to_owned()),
            // SQLite keeps what it was given: a blob bound as text reads back as text.
            ValueRef::Text(s) => Ok(s.as_bytes().to_owned()),
            value => mismatch(value, index, "blob"),
        }
    }
}

impl FromValue for Value {
    fn from_value(value: ValueRef<'_>, _index: usize) -> Result<Self> {
        Ok(value.to_owned_value())
    }
}

impl std::fmt::Debug for Row<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Row")
    }
}

/// One row of an answer.
pub struct Row<'a> {
    inner: RowInner<'a>,
}

enum RowInner<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Owned(&'a [Value]),
}

/// What names a column: its position, from 0.
pub trait ColumnIndex {
    fn position(&self) -> usize;
}

impl ColumnIndex for usize {
    fn position(&self) -> usize {
        *self
    }
}

impl Row<'_> {
    #[allow(
        clippy::needless_pass_by_value,
        reason = "rusqlite's shape: callers pass params![…], tuples and column numbers by value"
    )]
    pub fn get<I: ColumnIndex, T: FromValue>(&self, index: I) -> Result<T> {
        let index = index.position();
        match &self.inner {
            RowInner::Sqlite(row) => {
                let value = match row.get_ref(index)? {
                    rusqlite::types::ValueRef::Null => ValueRef::Null,
                    rusqlite::types::ValueRef::Integer(i) => ValueRef::Integer(i),
                    rusqlite::types::ValueRef::Real(f) => ValueRef::Real(f),
                    rusqlite::types::ValueRef::Text(bytes) => {
                        ValueRef::Text(std::str::from_utf8(bytes).map_err(|_| {
                            DbError::Conversion {
                                index,
                                expected: "text",
                                found: "text that is not UTF-8",
                            }
                        })?)
                    }
                    rusqlite::types::ValueRef::Blob(bytes) => ValueRef::Blob(bytes),
                };
                T::from_value(value, index)
            }
            RowInner::Owned(values) => {
                let value = values.get(index).ok_or(DbError::Conversion {
                    index,
                    expected: "a column",
                    found: "no such column",
                })?;
                T::from_value(value.as_ref(), index)
            }
        }
    }
}

impl std::fmt::Debug for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rows")
    }
}

/// Rows read whole, walked with `next()`.
pub struct Rows {
    rows: std::vec::IntoIter<Vec<Value>>,
    current: Vec<Value>,
}

impl Rows {
    #[allow(clippy::should_implement_trait)] // rusqlite's shape: a fallible next
    pub fn next(&mut self) -> Result<Option<Row<'_>>> {
        match self.rows.next() {
            Some(row) => {
                self.current = row;
                Ok(Some(Row {
                    inner: RowInner::Owned(&self.current),
                }))
            }
            None => Ok(None),
        }
    }
}

/// Which engine a connection talks to, for the few statements the two spell differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection to the state database.
pub struct Connection {
    backend: Backend,
}

enum Backend {
    Sqlite(rusqlite::Connection),
    Postgres(PostgresSession),
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("dialect", &self.dialect())
            .finish()
    }
}

impl Connection {
    pub fn sqlite(connection: rusqlite::Connection) -> Self {
        Connection {
            backend: Backend::Sqlite(connection),
        }
    }

    /// A PostgreSQL connection, through `tls` when given (TLS required), else in clear text.
    pub fn postgres(
        config: postgres::Config,
        tls: Option<super::postgres_tls::RustlsConnector>,
    ) -> Result<Self> {
        Ok(Connection {
            backend: Backend::Postgres(PostgresSession::connect(config, tls)?),
        })
    }

    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The SQLite connection underneath, for what only SQLite has (pragmas, its migrations).
    pub fn as_sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.backend {
            Backend::Sqlite(connection) => Some(connection),
            Backend::Postgres(_) => None,
        }
    }

    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        self.prepare(sql)?.execute(params)
    }

    /// Runs statements without parameters, one after another.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(connection) => Ok(connection.execute_batch(sql)?),
            Backend::Postgres(session) => session.batch(sql),
        }
    }

    /// The first row's answer; `DbError::NoRows` when there is none.
    pub fn query_row<T, P, F>(&self, sql: &str, params: P, read: F) -> Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> Result<T>,
    {
        let mut statement = self.prepare(sql)?;
        let mut read = Some(read);
        let mut answer = None;
        statement.for_each_row(params, true, &mut |row| {
            if let Some(read) = read.take() {
                answer = Some(read(row)?);
            }
            Ok(())
        })?;
        answer.ok_or(DbError::NoRows)
    }

    pub fn prepare(&self, sql: &str) -> Result<Statement<'_>> {
        Ok(Statement {
            inner: match &self.backend {
                Backend::Sqlite(connection) => {
                    StatementInner::Sqlite(connection.prepare_cached(sql)?)
                }
                Backend::Postgres(session) => StatementInner::Postgres {
                    session,
                    sql: sql.to_owned(),
                },
            },
        })
    }

    /// A transaction on this connection, ended by `commit` or rolled back when dropped. The
    /// store's lock keeps other callers off the connection meanwhile.
    pub fn unchecked_transaction(&self) -> Result<Transaction<'_>> {
        self.execute_batch("BEGIN")?;
        Ok(Transaction {
            connection: self,
            finished: false,
        })
    }
}

impl Connection {
    /// A transaction that takes the write lock at once, so two processes deciding on the same
    /// row (the scheduler lease) see each other's write: SQLite's `BEGIN IMMEDIATE`, and on
    /// PostgreSQL an advisory lock every such transaction takes.
    pub fn immediate_transaction(&self) -> Result<Transaction<'_>> {
        self.execute_batch(match self.dialect() {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN; SELECT pg_advisory_xact_lock(7235441815140722);",
        })?;
        Ok(Transaction {
            connection: self,
            finished: false,
        })
    }
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Transaction")
    }
}

pub struct Transaction<'c> {
    connection: &'c Connection,
    finished: bool,
}

impl Transaction<'_> {
    pub fn commit(mut self) -> Result<()> {
        self.finished = true;
        self.connection.execute_batch("COMMIT")
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.connection
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.finished
            && let Err(error) = self.connection.execute_batch("ROLLBACK")
        {
            tracing::warn!(%error, "rolling back a transaction failed");
        }
    }
}

impl std::fmt::Debug for Statement<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Statement")
    }
}

pub struct Statement<'c> {
    inner: StatementInner<'c>,
}

enum StatementInner<'c> {
    Sqlite(rusqlite::CachedStatement<'c>),
    Postgres {
        session: &'c PostgresSession,
        sql: String,
    },
}

fn sqlite_params<'a>(values: &'a [ValueRef<'a>]) -> Vec<rusqlite::types::ToSqlOutput<'a>> {
    values
        .iter()
        .map(|value| {
            rusqlite::types::ToSqlOutput::Borrowed(match *value {
                ValueRef::Null => rusqlite::types::ValueRef::Null,
                ValueRef::Integer(i) => rusqlite::types::ValueRef::Integer(i),
                ValueRef::Real(f) => rusqlite::types::ValueRef::Real(f),
                ValueRef::Text(s) => rusqlite::types::ValueRef::Text(s.as_bytes()),
                ValueRef::Blob(b) => rusqlite::types::ValueRef::Blob(b),
            })
        })
        .collect()
}

impl Statement<'_> {
    /// Runs the statement; the number of rows it changed.
    #[allow(
        clippy::needless_pass_by_value,
        reason = "rusqlite's shape: callers pass params![…], tuples and column numbers by value"
    )]
    pub fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        let values = params.values();
        match &mut self.inner {
            StatementInner::Sqlite(statement) => {
                Ok(statement.execute(rusqlite::params_from_iter(sqlite_params(&values).iter()))?)
            }
            StatementInner::Postgres { session, sql } => {
                let owned = values.iter().map(|v| v.to_owned_value()).collect();
                session.execute(sql, owned).map(|n| n as usize)
            }
        }
    }

    /// Every row, each mapped by `read`.
    pub fn query_map<T, P, F>(
        &mut self,
        params: P,
        mut read: F,
    ) -> Result<std::vec::IntoIter<Result<T>>>
    where
        P: Params,
        F: FnMut(&Row<'_>) -> Result<T>,
    {
        let mut mapped = Vec::new();
        self.for_each_row(params, false, &mut |row| {
            mapped.push(read(row));
            Ok(())
        })?;
        Ok(mapped.into_iter())
    }

    /// Every row, read whole, to walk with `Rows::next`.
    pub fn query<P: Params>(&mut self, params: P) -> Result<Rows> {
        let rows = if let StatementInner::Postgres { session, sql } = &self.inner {
            let owned = params.values().iter().map(|v| v.to_owned_value()).collect();
            session.query(sql, owned)?
        } else {
            let count = match &self.inner {
                StatementInner::Sqlite(statement) => statement.column_count(),
                StatementInner::Postgres { .. } => 0,
            };
            let mut rows = Vec::new();
            self.for_each_row(params, false, &mut |row| {
                let values = (0..count)
                    .map(|index| row.get::<_, Value>(index))
                    .collect::<Result<_>>()?;
                rows.push(values);
                Ok(())
            })?;
            rows
        };
        Ok(Rows {
            rows: rows.into_iter(),
            current: Vec::new(),
        })
    }

    #[allow(
        clippy::needless_pass_by_value,
        reason = "rusqlite's shape: callers pass params![…], tuples and column numbers by value"
    )]
    fn for_each_row<P: Params>(
        &mut self,
        params: P,
        first_only: bool,
        each: &mut dyn FnMut(&Row<'_>) -> Result<()>,
    ) -> Result<()> {
        let values = params.values();
        match &mut self.inner {
            StatementInner::Sqlite(statement) => {
                let bound = sqlite_params(&values);
                let mut rows = statement.query(rusqlite::params_from_iter(bound.iter()))?;
                while let Some(row) = rows.next()? {
                    each(&Row {
                        inner: RowInner::Sqlite(row),
                    })?;
                    if first_only {
                        break;
                    }
                }
                Ok(())
            }
            StatementInner::Postgres { session, sql } => {
                let owned = values.iter().map(|v| v.to_owned_value()).collect();
                for row in session.query(sql, owned)? {
                    each(&Row {
                        inner: RowInner::Owned(&row),
                    })?;
                    if first_only {
                        break;
                    }
                }
                Ok(())
            }
        }
    }
}

/// The store's SQL as PostgreSQL takes it: `?1`, `?2`, … (and bare `?`) become `$1`, `$2`, …,
/// and `LIKE` becomes `ILIKE`, since SQLite's LIKE ignores the case of ASCII letters and the
/// store relies on it (DNs are case-insensitive). Quoted text is left alone.
pub fn postgres_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut in_text = false;
    let mut next_bare = 1;
    let mut word = String::new();
    while let Some(c) = chars.next() {
        if !in_text && (c.is_ascii_alphanumeric() || c == '_') {
            word.push(c);
            continue;
        }
        flush_word(&mut out, &mut word);
        match c {
            '\'' => {
                in_text = !in_text;
                out.push(c);
            }
            '?' if !in_text => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str(&format!("${next_bare}"));
                    next_bare += 1;
                } else {
                    out.push('$');
                    out.push_str(&digits);
                }
            }
            c => out.push(c),
        }
    }
    flush_word(&mut out, &mut word);
    out
}

fn flush_word(out: &mut String, word: &mut String) {
    if word.eq_ignore_ascii_case("LIKE") {
        out.push_str("ILIKE");
    } else {
        out.push_str(word);
    }
    word.clear();
}

/// A PostgreSQL client on its own thread (see the module's comment).
struct PostgresSession {
    requests: mpsc::Sender<Request>,
}

enum Request {
    Execute {
        sql: String,
        params: Vec<Value>,
        reply: mpsc::Sender<Result<u64>>,
    },
    Query {
        sql: String,
        params: Vec<Value>,
        reply: mpsc::Sender<Result<Vec<Vec<Value>>>>,
    },
    Batch {
        sql: String,
        reply: mpsc::Sender<Result<()>>,
    },
}

impl PostgresSession {
    fn connect(
        mut config: postgres::Config,
        tls: Option<super::postgres_tls::RustlsConnector>,
    ) -> Result<Self> {
        let (connected_tx, connected_rx) = mpsc::channel();
        let (requests, receiver) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("dirsync-postgres".into())
            .spawn(move || {
                let connected = match tls {
                    Some(tls) => config
                        .ssl_mode(postgres::config::SslMode::Require)
                        .connect(tls),
                    None => config
                        .ssl_mode(postgres::config::SslMode::Disable)
                        .connect(postgres::NoTls),
                };
                match connected {
                    Ok(client) => {
                        let _ = connected_tx.send(Ok(()));
                        serve(client, receiver);
                    }
                    Err(error) => {
                        let _ = connected_tx.send(Err(DbError::Postgres(error)));
                    }
                }
            })
            .map_err(|_| DbError::Closed)?;
        connected_rx.recv().map_err(|_| DbError::Closed)??;
        Ok(PostgresSession { requests })
    }

    fn ask<T>(&self, request: impl FnOnce(mpsc::Sender<Result<T>>) -> Request) -> Result<T> {
        let (reply, answer) = mpsc::channel();
        self.requests
            .send(request(reply))
            .map_err(|_| DbError::Closed)?;
        answer.recv().map_err(|_| DbError::Closed)?
    }

    fn execute(&self, sql: &str, params: Vec<Value>) -> Result<u64> {
        self.ask(|reply| Request::Execute {
            sql: sql.to_owned(),
            params,
            reply,
        })
    }

    fn query(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Vec<Value>>> {
        self.ask(|reply| Request::Query {
            sql: sql.to_owned(),
            params,
            reply,
        })
    }

    fn batch(&self, sql: &str) -> Result<()> {
        self.ask(|reply| Request::Batch {
            sql: sql.to_owned(),
            reply,
        })
    }
}

/// The client's thread: answers requests until the store drops its end.
fn serve(mut client: postgres::Client, requests: mpsc::Receiver<Request>) {
    // Statements are prepared once per connection and kept, by the SQL the store wrote.
    let mut prepared: HashMap<String, postgres::Statement> = HashMap::new();
    let mut prepare = |client: &mut postgres::Client, sql: &str| -> Result<postgres::Statement> {
        if let Some(statement) = prepared.get(sql) {
            return Ok(statement.clone());
        }
        let statement = client.prepare(&postgres_sql(sql))?;
        prepared.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    };
    for request in requests {
        match request {
            Request::Execute { sql, params, reply } => {
                let answer = prepare(&mut client, &sql).and_then(|statement| {
                    let bound: Vec<&(dyn postgres::types::ToSql + Sync)> =
                        params.iter().map(|p| p as _).collect();
                    Ok(client.execute(&statement, &bound)?)
                });
                let _ = reply.send(answer);
            }
            Request::Query { sql, params, reply } => {
                let answer = prepare(&mut client, &sql).and_then(|statement| {
                    let bound: Vec<&(dyn postgres::types::ToSql + Sync)> =
                        params.iter().map(|p| p as _).collect();
                    let rows = client.query(&statement, &bound)?;
                    rows.iter()
                        .map(|row| {
                            (0..row.len())
                                .map(|index| Ok(row.try_get::<_, Value>(index)?))
                                .collect()
                        })
                        .collect()
                });
                let _ = reply.send(answer);
            }
            Request::Batch { sql, reply } => {
                let _ = reply.send(client.batch_execute(&sql).map_err(DbError::from));
            }
        }
    }
}

mod postgres_values {
    //! How the store's values cross to PostgreSQL's types and back. A parameter takes the type
    //! the server inferred for it, so one integer binds to a BIGINT column, an INTEGER one or a
    //! text one alike.

    use bytes::{BufMut as _, BytesMut};
    use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

    use super::Value;

    type BoxError = Box<dyn std::error::Error + Sync + Send>;

    impl ToSql for Value {
        fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
            match self {
                Value::Null => Ok(IsNull::Yes),
                Value::Integer(i) => match *ty {
                    Type::INT8 => i.to_sql(ty, out),
                    Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                    Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                    Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                    Type::BOOL => (*i != 0).to_sql(ty, out),
                    _ => i.to_string().to_sql(ty, out),
                },
                Value::Real(f) => match *ty {
                    Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                    Type::FLOAT8 => f.to_sql(ty, out),
                    _ => f.to_string().to_sql(ty, out),
                },
                Value::Text(s) => match *ty {
                    Type::INT8 => s.parse::<i64>()?.to_sql(ty, out),
                    Type::BYTEA => s.as_bytes().to_sql(ty, out),
                    // JSONB's binary form: a version byte, then the text.
                    Type::JSONB => {
                        out.put_u8(1);
                        out.put_slice(s.as_bytes());
                        Ok(IsNull::No)
                    }
                    Type::JSON => {
                        out.put_slice(s.as_bytes());
                        Ok(IsNull::No)
                    }
                    _ => s.as_str().to_sql(ty, out),
                },
                Value::Blob(b) => b.as_slice().to_sql(ty, out),
            }
        }

        fn accepts(_: &Type) -> bool {
            true
        }

        to_sql_checked!();
    }

    impl<'a> FromSql<'a> for Value {
        fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
            Ok(match *ty {
                Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
                Type::INT4 => Value::Integer(i32::from_sql(ty, raw)?.into()),
                Type::INT2 => Value::Integer(i16::from_sql(ty, raw)?.into()),
                Type::OID => Value::Integer(u32::from_sql(ty, raw)?.into()),
                Type::BOOL => Value::Integer(bool::from_sql(ty, raw)?.into()),
                Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
                Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
                Type::BYTEA => Value::Blob(raw.to_owned()),
                Type::JSONB => {
                    Value::Text(std::str::from_utf8(raw.get(1..).unwrap_or_default())?.to_owned())
                }
                Type::JSON => Value::Text(std::str::from_utf8(raw)?.to_owned()),
                _ => Value::Text(String::from_sql(ty, raw)?),
            })
        }

        fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
            Ok(Value::Null)
        }

        fn accepts(ty: &Type) -> bool {
            // NUMERIC (what sum() gives) has no faithful i64: the SQL casts it.
            *ty != Type::NUMERIC
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_postgres_numbers_outside_quoted_text() {
        assert_eq!(
            postgres_sql("SELECT ?1, '?2', x FROM t WHERE a = ?12 AND b = ?"),
            "SELECT $1, '?2', x FROM t WHERE a = $12 AND b = $1"
        );
        assert_eq!(
            postgres_sql("SELECT a FROM t WHERE dn LIKE ?1 AND dn NOT like 'LIKE' AND likes = 1"),
            "SELECT a FROM t WHERE dn ILIKE $1 AND dn NOT ILIKE 'LIKE' AND likes = 1"
        );
    }

    #[test]
    fn sqlite_reads_back_what_it_was_given() {
        let connection = Connection::sqlite(rusqlite::Connection::open_in_memory().expect("open"));
        connection
            .execute_batch("CREATE TABLE t (a INTEGER, b TEXT, c BLOB)")
            .expect("create");
        connection
            .execute(
                "INSERT INTO t VALUES (?1, ?2, ?3)",
                params![7_i64, "seven", vec![7_u8]],
            )
            .expect("insert");
        let (a, b, c): (i64, String, Vec<u8>) = connection
            .query_row("SELECT a, b, c FROM t", (), |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .expect("row");
        assert_eq!((a, b.as_str(), c), (7, "seven", vec![7]));
        let none = connection
            .query_row("SELECT a FROM t WHERE a = ?1", [8], |row| {
                row.get::<_, i64>(0)
            })
            .optional()
            .expect("query");
        assert_eq!(none, None);
        {
            let transaction = connection.unchecked_transaction().expect("begin");
            transaction.execute("DELETE FROM t", ()).expect("delete");
            // Dropped without commit: rolled back.
        }
        let count: i64 = connection
            .query_row("SELECT count(*) FROM t", (), |row| row.get(0))
            .expect("count");
        assert_eq!(count, 1);
    }
}
