//! The dialect layer: the little that differs between SQLite, PostgreSQL and
//! MySQL/MariaDB. Everything else — the state machine, paging, validation, row
//! mapping — is written once (the `store` and `rows` modules) against
//! this trait.
//!
//! Shared statements are written with `?` placeholders and one bound value per
//! `?` ([`Stmt`]); PostgreSQL's `$n` numbering is applied by [`Dialect::sql`].
//! Each backend maps the few [`Arg`] kinds to its own column types (SQLite
//! keeps timestamps as integer microseconds, for example).

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use sqlx::{Database, Pool, Transaction};
use uuid::Uuid;

use crate::store::SqlStore;

// What a notification row is, for code outside the crate that writes the same
// rows (the bench's raw-driver ceilings).
pub use crate::rows::{NOTIFICATION_COLUMNS, notification_args};

/// A boxed, sendable future (what the dialect layer returns).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a dialect writes bound parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `?` (SQLite, MySQL).
    Question,
    /// `$1`, `$2` … (PostgreSQL).
    Dollar,
}

impl Dialect {
    /// `template` with its `?` placeholders in this dialect's syntax. The
    /// templates are ours and hold no `?` inside literals.
    pub fn sql(self, template: &str) -> String {
        match self {
            Dialect::Question => template.to_owned(),
            Dialect::Dollar => {
                let mut out = String::with_capacity(template.len() + 16);
                let mut n = 0;
                for c in template.chars() {
                    if c == '?' {
                        n += 1;
                        out.push('$');
                        out.push_str(&n.to_string());
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }
    }
}

/// A value bound to a statement, in a dialect-neutral form.
#[derive(Debug, Clone)]
pub enum Arg {
    /// A UUID (native `uuid`, or 16 bytes).
    Uuid(Uuid),
    /// Text.
    Text(String),
    /// Nullable text.
    OptText(Option<String>),
    /// A 64-bit integer (limits).
    Int(i64),
    /// A timestamp.
    Time(DateTime<Utc>),
    /// A nullable timestamp.
    OptTime(Option<DateTime<Utc>>),
    /// A JSON document.
    Json(serde_json::Value),
}

/// A statement with its arguments, one per `?` of the template.
#[derive(Debug, Clone)]
pub struct Stmt {
    /// The SQL, already in the dialect's placeholder syntax.
    pub sql: String,
    /// The arguments, in placeholder order.
    pub args: Vec<Arg>,
}

impl Stmt {
    /// A statement from a `?` template.
    pub fn new(dialect: Dialect, template: &str) -> Self {
        Stmt {
            sql: dialect.sql(template),
            args: Vec::new(),
        }
    }

    /// Binds the next argument.
    pub fn arg(mut self, arg: Arg) -> Self {
        self.args.push(arg);
        self
    }
}

/// `?, ?, ?` with `n` placeholders (at least one, so `IN ()` never occurs).
pub fn placeholders(n: usize) -> String {
    let mut out = String::with_capacity(n * 3);
    for i in 0..n.max(1) {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('?');
    }
    out
}

/// A delivery just claimed, before its notification is attached.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The delivery.
    pub id: Uuid,
    /// Its notification.
    pub notification_id: Uuid,
    /// Its channel.
    pub channel: String,
    /// Completed attempts so far.
    pub attempts: i32,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// The fresh lease token.
    pub token: Uuid,
    /// When this attempt was due (orders the batch, oldest first).
    pub due: Option<DateTime<Utc>>,
    /// The notification, if the claim statement read it already.
    pub notification: Option<clarion_core::notification::Notification>,
}

/// An outcome as the columns it writes.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The new status.
    pub status: &'static str,
    /// When to try again (retry only).
    pub next: Option<DateTime<Utc>>,
    /// Why it failed (kept as is when `None`).
    pub error: Option<String>,
    /// When it was sent.
    pub sent_at: Option<DateTime<Utc>>,
    /// The peer's answer.
    pub receipt: Option<String>,
    /// When the attempt ended.
    pub at: DateTime<Utc>,
}

/// An outcome to record under the lease token it was claimed with.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The delivery.
    pub id: Uuid,
    /// The lease token the outcome is fenced by.
    pub token: Uuid,
    /// What to write.
    pub recorded: Recorded,
}

/// What a claim asks the dialect for.
#[derive(Debug, Clone)]
pub struct ClaimQuery<'a> {
    /// "Now".
    pub now: DateTime<Utc>,
    /// `now + lease`.
    pub lease_until: DateTime<Utc>,
    /// At most this many.
    pub limit: i64,
    /// Skip these channels.
    pub exclude: &'a [String],
}

impl ClaimQuery<'_> {
    /// The two candidate selections — due pending deliveries, expired leases —
    /// each `SELECT id, due … ORDER BY due LIMIT ?` followed by `suffix`
    /// (e.g. `FOR UPDATE SKIP LOCKED`), and their arguments (pending first).
    /// The literal statuses let SQLite and PostgreSQL use the partial indexes.
    pub fn candidates(&self, suffix: &str) -> (String, String, Vec<Arg>) {
        let exclusion = if self.exclude.is_empty() {
            String::new()
        } else {
            format!(" AND channel NOT IN ({})", placeholders(self.exclude.len()))
        };
        let select = |status: &str, column: &str| {
            format!(
                "SELECT id, {column} AS due FROM clarion_deliveries WHERE status = '{status}' \
                 AND {column} <= ?{exclusion} ORDER BY {column} LIMIT ?{suffix}"
            )
        };
        let mut args = Vec::new();
        for _ in 0..2 {
            args.push(Arg::Time(self.now));
            args.extend(self.exclude.iter().cloned().map(Arg::Text));
            args.push(Arg::Int(self.limit));
        }
        (
            select("pending", "next_attempt_at"),
            select("in_flight", "lease_until"),
            args,
        )
    }
}

mod sealed {
    pub trait Sealed {}
}
pub(crate) use sealed::Sealed;

/// One SQL dialect on one of sqlx's databases; implemented for
/// [`sqlx::Sqlite`], [`sqlx::Postgres`] and [`sqlx::MySql`] only.
pub trait Backend: Database + Sealed + Sized {
    /// The name used in messages (`SQLite`, `PostgreSQL`, `MySQL`).
    const LABEL: &'static str;
    /// The placeholder syntax.
    const DIALECT: Dialect;
    /// Appended to the notification insert so that a dedup-key conflict
    /// inserts nothing instead of failing (empty where the dialect cannot:
    /// the store then treats the unique violation as the duplicate).
    const ON_DEDUP_CONFLICT: &'static str;

    /// Runs a statement; returns the rows it affected (matched, on MySQL).
    fn exec<'c>(
        conn: &'c mut Self::Connection,
        stmt: Stmt,
    ) -> BoxFuture<'c, Result<u64, sqlx::Error>>;

    /// Runs a query; returns its rows.
    fn fetch<'c>(
        conn: &'c mut Self::Connection,
        stmt: Stmt,
    ) -> BoxFuture<'c, Result<Vec<Self::Row>, sqlx::Error>>;

    /// Begins a write transaction (SQLite takes the write lock up front).
    fn begin_write(
        pool: &Pool<Self>,
    ) -> BoxFuture<'_, Result<Transaction<'static, Self>, sqlx::Error>>;

    /// Claims deliveries atomically: status `in_flight`, a fresh token per
    /// delivery, `lease_until`; `next_attempt_at` keeps when the attempt was due.
    fn claim<'a>(
        store: &'a SqlStore<Self>,
        query: ClaimQuery<'a>,
    ) -> BoxFuture<'a, Result<Vec<Claimed>, sqlx::Error>>;

    /// Whether [`Backend::fetch_script`] works (SQLite only: the other
    /// drivers prepare one statement per command).
    const SCRIPTS: bool = false;

    /// Runs `;`-separated statements as one command (one hand-off to the
    /// driver); the rows of each statement, in order.
    fn fetch_script<'c>(
        _conn: &'c mut Self::Connection,
        _stmt: Stmt,
    ) -> BoxFuture<'c, Result<Vec<Vec<Self::Row>>, sqlx::Error>> {
        Box::pin(async {
            Err(sqlx::Error::Protocol(
                "this driver runs one statement per command".into(),
            ))
        })
    }

    /// The claim as one statement that a group writer runs inside its
    /// transaction, next to the group's enqueues and outcomes (SQLite: one
    /// writer holds the write lock anyway, so a claim of its own costs a
    /// commit of its own). `None`: claims run on their own ([`Backend::claim`]).
    fn grouped_claim(_query: &ClaimQuery<'_>) -> Option<Stmt> {
        None
    }

    /// Records many outcomes with one statement, each only while its delivery
    /// is in flight under its token; returns the deliveries it updated. The
    /// ids are distinct. Used by the group writer (SQLite, PostgreSQL) only.
    fn complete_all<'c>(
        conn: &'c mut Self::Connection,
        completions: &'c [&'c Completion],
    ) -> BoxFuture<'c, Result<HashSet<Uuid>, sqlx::Error>> {
        Box::pin(crate::common::complete_values::<Self>(conn, completions))
    }

    /// Applies the embedded migrations.
    fn migrate(pool: &Pool<Self>) -> BoxFuture<'_, Result<(), sqlx::migrate::MigrateError>>;

    /// Whether a database error is worth retrying (deadlock, serialization
    /// failure, busy database, lost connection).
    fn retryable(error: &(dyn sqlx::error::DatabaseError + 'static)) -> bool;

    /// Column getters.
    fn get_uuid(row: &Self::Row, column: &str) -> Result<Uuid, sqlx::Error>;
    /// Nullable text.
    fn get_opt_text(row: &Self::Row, column: &str) -> Result<Option<String>, sqlx::Error>;
    /// Text.
    fn get_text(row: &Self::Row, column: &str) -> Result<String, sqlx::Error>;
    /// A 32-bit integer column.
    fn get_i32(row: &Self::Row, column: &str) -> Result<i32, sqlx::Error>;
    /// A 64-bit integer (counts).
    fn get_i64(row: &Self::Row, column: &str) -> Result<i64, sqlx::Error>;
    /// A timestamp.
    fn get_time(row: &Self::Row, column: &str) -> Result<DateTime<Utc>, sqlx::Error>;
    /// A nullable timestamp.
    fn get_opt_time(row: &Self::Row, column: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error>;
    /// A JSON document.
    fn get_json(row: &Self::Row, column: &str) -> Result<serde_json::Value, sqlx::Error>;
}

/// Implements the parts of [`Backend`] that read and write values, given the
/// module's `time_to_db`, `time_from_db`, `TimeDb`, `json_to_db`,
/// `json_from_db` and `text_from_db` (the only type mappings that differ
/// between dialects).
macro_rules! value_io {
    ($db:ty) => {
        fn exec<'c>(
            conn: &'c mut <$db as sqlx::Database>::Connection,
            stmt: $crate::backend::Stmt,
        ) -> $crate::backend::BoxFuture<'c, Result<u64, sqlx::Error>> {
            Box::pin(async move {
                let (sql, args) = (stmt.sql, stmt.args);
                let mut query = sqlx::query::<$db>(sqlx::AssertSqlSafe(sql));
                for arg in args {
                    query = bind(query, arg);
                }
                Ok(query.execute(conn).await?.rows_affected())
            })
        }

        fn fetch<'c>(
            conn: &'c mut <$db as sqlx::Database>::Connection,
            stmt: $crate::backend::Stmt,
        ) -> $crate::backend::BoxFuture<'c, Result<Vec<<$db as sqlx::Database>::Row>, sqlx::Error>>
        {
            Box::pin(async move {
                let (sql, args) = (stmt.sql, stmt.args);
                let mut query = sqlx::query::<$db>(sqlx::AssertSqlSafe(sql));
                for arg in args {
                    query = bind(query, arg);
                }
                query.fetch_all(conn).await
            })
        }

        fn get_uuid(
            row: &<$db as sqlx::Database>::Row,
            column: &str,
        ) -> Result<uuid::Uuid, sqlx::Error> {
            sqlx::Row::try_get(row, column)
        }
        fn get_opt_text(
            row: &<$db as sqlx::Database>::Row,
            column: &str,
        ) -> Result<Option<String>, sqlx::Error> {
            text_from_db(row, column)
        }
        fn get_text(
            row: &<$db as sqlx::Database>::Row,
            column: &str,
        ) -> Result<String, sqlx::Error> {
            text_from_db(row, column)?.ok_or_else(|| sqlx::Error::ColumnDecode {
                index: column.to_owned(),
                source: "unexpected NULL".into(),
            })
        }
        fn get_i32(row: &<$db as sqlx::Database>::Row, column: &str) -> Result<i32, sqlx::Error> {
            sqlx::Row::try_get(row, column)
        }
        fn get_i64(row: &<$db as sqlx::Database>::Row, column: &str) -> Result<i64, sqlx::Error> {
            sqlx::Row::try_get(row, column)
        }
        fn get_time(
            row: &<$db as sqlx::Database>::Row,
            column: &str,
        ) -> Result<chrono::DateTime<chrono::Utc>, sqlx::Error> {
            time_from_db(sqlx::Row::try_get::<TimeDb, _>(row, column)?, column)
        }
        fn get_opt_time(
            row: &<$db as sqlx::Database>::Row,
            column: &str,
        ) -> Result<Option<chrono::DateTime<chrono::Utc>>, sqlx::Error> {
            sqlx::Row::try_get::<Option<TimeDb>, _>(row, column)?
                .map(|t| time_from_db(t, column))
                .transpose()
        }
        fn get_json(
            row: &<$db as sqlx::Database>::Row,
            column: &str,
        ) -> Result<serde_json::Value, sqlx::Error> {
            json_from_db(row, column)
        }
    };
}
pub(crate) use value_io;

/// Defines the module's `bind`, mapping each [`Arg`] to the dialect's type.
macro_rules! bind_fn {
    ($db:ty) => {
        fn bind(
            query: sqlx::query::Query<'static, $db, <$db as sqlx::Database>::Arguments>,
            arg: $crate::backend::Arg,
        ) -> sqlx::query::Query<'static, $db, <$db as sqlx::Database>::Arguments> {
            use $crate::backend::Arg;
            match arg {
                Arg::Uuid(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
                Arg::OptText(v) => query.bind(v),
                Arg::Int(v) => query.bind(v),
                Arg::Time(v) => query.bind(time_to_db(v)),
                Arg::OptTime(v) => query.bind(v.map(time_to_db)),
                Arg::Json(v) => query.bind(json_to_db(v)),
            }
        }
    };
}
pub(crate) use bind_fn;
