//! SQLite: the embedded, single-node default.
//!
//! One file (`sqlite://clarion.db`, created if missing) in WAL mode with
//! `synchronous = FULL`, so a returned `enqueue` survives a crash or power
//! loss (`store.sync = "normal"` trades the power-loss guarantee for speed:
//! a returned write then survives a process crash only). All writes go through one connection (SQLite has one writer at a
//! time; queueing in the pool is cheaper than SQLite's busy-wait), reads use a
//! small pool of their own and never block on writes. Timestamps are stored as
//! integer microseconds since the Unix epoch.
//!
//! Concurrent `enqueue` and `complete` calls share transactions through one
//! writer task (group commit, see the `group` module): each still returns only
//! after its own write committed.
//!
//! A claim is a single `UPDATE … RETURNING`, which SQLite runs under its write
//! lock, so a delivery is never handed to two claimers even across processes
//! sharing the file.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clarion_core::config::{StoreConfig, SyncMode};
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::types::Json;

use crate::OpenError;
use crate::backend::{
    Backend, BoxFuture, ClaimQuery, Claimed, Dialect, Sealed, Stmt, bind_fn, value_io,
};
use crate::common::{self, CLAIM_RETURNING};
use crate::store::SqlStore;

/// The SQLite store.
pub type SqliteStore = SqlStore<Sqlite>;

/// Readers next to the single writer.
const READ_CONNECTIONS: u32 = 4;

type TimeDb = i64;

fn time_to_db(t: DateTime<Utc>) -> TimeDb {
    t.timestamp_micros()
}

fn time_from_db(t: TimeDb, column: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    crate::rows::from_micros(t, column)
}

fn json_to_db(v: serde_json::Value) -> Json<serde_json::Value> {
    Json(v)
}

fn json_from_db(row: &SqliteRow, column: &str) -> Result<serde_json::Value, sqlx::Error> {
    sqlx::Row::try_get::<Json<serde_json::Value>, _>(row, column).map(|j| j.0)
}

fn text_from_db(row: &SqliteRow, column: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::Row::try_get(row, column)
}

bind_fn!(Sqlite);

impl Sealed for Sqlite {}

impl Backend for Sqlite {
    const LABEL: &'static str = "SQLite";
    const DIALECT: Dialect = Dialect::Question;
    const ON_DEDUP_CONFLICT: &'static str = " ON CONFLICT (dedup_key) DO NOTHING";

    value_io!(Sqlite);

    fn begin_write(
        pool: &sqlx::Pool<Self>,
    ) -> BoxFuture<'_, Result<sqlx::Transaction<'static, Self>, sqlx::Error>> {
        // Take the write lock up front: a deferred transaction that reads
        // first could not upgrade if another process wrote meanwhile.
        Box::pin(pool.begin_with("BEGIN IMMEDIATE"))
    }

    fn claim<'a>(
        store: &'a SqlStore<Self>,
        query: ClaimQuery<'a>,
    ) -> BoxFuture<'a, Result<Vec<Claimed>, sqlx::Error>> {
        Box::pin(async move {
            let mut conn = store.write.acquire().await?;
            let rows = Self::fetch(&mut conn, claim_statement(&query)).await?;
            rows.iter().map(common::claimed::<Self>).collect()
        })
    }

    fn grouped_claim(query: &ClaimQuery<'_>) -> Option<Stmt> {
        Some(claim_statement(query))
    }

    // The driver hands every command to the connection's worker thread and
    // waits to be woken with the answer: with the runtime busy delivering,
    // each hand-off costs far more than the statement. One script per group
    // is one hand-off.
    const SCRIPTS: bool = true;

    fn fetch_script<'c>(
        conn: &'c mut sqlx::SqliteConnection,
        stmt: Stmt,
    ) -> BoxFuture<'c, Result<Vec<Vec<SqliteRow>>, sqlx::Error>> {
        Box::pin(async move {
            use futures_util::TryStreamExt;
            let mut query = sqlx::query::<Sqlite>(sqlx::AssertSqlSafe(stmt.sql));
            for arg in stmt.args {
                query = bind(query, arg);
            }
            // Several statements in one prepared query is SQLite-only, hence
            // deprecated in sqlx's generic API; each statement ends with its
            // result (`Left`), which is how the rows are told apart.
            #[allow(deprecated)]
            let mut results = query.fetch_many(conn);
            let mut statements = vec![Vec::new()];
            while let Some(item) = results.try_next().await? {
                match item {
                    sqlx::Either::Left(_) => statements.push(Vec::new()),
                    sqlx::Either::Right(row) => statements
                        .last_mut()
                        .expect("there is a current statement")
                        .push(row),
                }
            }
            statements.pop();
            Ok(statements)
        })
    }

    fn migrate(pool: &sqlx::Pool<Self>) -> BoxFuture<'_, Result<(), sqlx::migrate::MigrateError>> {
        Box::pin(async move {
            common::migrator(&[
                ("init", include_str!("../migrations/sqlite/0001_init.sql")),
                (
                    "dead_index",
                    include_str!("../migrations/sqlite/0002_dead_index.sql"),
                ),
            ])
            .run(pool)
            .await
        })
    }

    fn retryable(error: &(dyn sqlx::error::DatabaseError + 'static)) -> bool {
        // SQLITE_BUSY, SQLITE_LOCKED and their extended codes.
        error
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|code| matches!(code & 0xff, 5 | 6))
    }
}

/// A claim is a single `UPDATE … RETURNING` (run under SQLite's write lock).
fn claim_statement(query: &ClaimQuery<'_>) -> Stmt {
    let (pending, expired, mut args) = query.candidates("");
    let sql = format!(
        "UPDATE clarion_deliveries SET {set} WHERE id IN (SELECT id FROM (\
         SELECT id, due FROM ({pending}) UNION ALL SELECT id, due FROM ({expired}) \
         ORDER BY due LIMIT ?)) RETURNING {CLAIM_RETURNING}",
        set = common::claim_set("randomblob(16)"),
    );
    let mut all = common::claim_set_args(query);
    all.append(&mut args);
    all.push(crate::backend::Arg::Int(query.limit));
    Stmt {
        sql: Sqlite::DIALECT.sql(&sql),
        args: all,
    }
}

impl SqlStore<Sqlite> {
    /// Opens (creating if missing) the database at `url` (`sqlite://path`,
    /// `sqlite::memory:`), running migrations unless `config.migrate` is off.
    pub async fn open(url: &str, config: &StoreConfig) -> Result<Self, OpenError> {
        let options = SqliteConnectOptions::from_str(url).map_err(|e| OpenError::Url {
            backend: Self::name(),
            message: e.to_string(),
        })?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let sync = match config.sync_mode() {
            SyncMode::Full => SqliteSynchronous::Full,
            SyncMode::Normal => SqliteSynchronous::Normal,
        };
        Self::connect_with_sync(
            options.create_if_missing(true),
            in_memory,
            config.migrate,
            sync,
        )
        .await
    }

    /// Opens a store with explicit connection options (WAL, `synchronous =
    /// FULL`, foreign keys and a busy timeout are applied on top).
    /// `in_memory` keeps everything on one connection, which an in-memory
    /// database needs.
    pub async fn connect_with(
        options: SqliteConnectOptions,
        in_memory: bool,
        migrate: bool,
    ) -> Result<Self, OpenError> {
        Self::connect_with_sync(options, in_memory, migrate, SqliteSynchronous::Full).await
    }

    /// [`SqlStore::connect_with`] with another `synchronous` setting:
    /// `Normal` is what `store.sync = "normal"` picks (a returned write
    /// survives a process crash, not a power loss; see
    /// [`SyncMode`](clarion_core::config::SyncMode)).
    pub async fn connect_with_sync(
        options: SqliteConnectOptions,
        in_memory: bool,
        migrate: bool,
        sync: SqliteSynchronous,
    ) -> Result<Self, OpenError> {
        let connect = |e: sqlx::Error| OpenError::Connect {
            backend: Self::name(),
            message: e.to_string(),
        };
        let options = options
            .synchronous(sync)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let store = if in_memory {
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
                .map_err(connect)?;
            SqlStore::from_pools(pool.clone(), pool)
        } else {
            let options = options.journal_mode(SqliteJournalMode::Wal);
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await
                .map_err(connect)?;
            let read = SqlitePoolOptions::new()
                .max_connections(READ_CONNECTIONS)
                .connect_lazy_with(options);
            SqlStore::from_pools(write, read)
        };
        if migrate {
            store.migrate().await?;
        }
        // One writer: SQLite has one write connection anyway.
        Ok(store.with_group_commit(true, true, 1))
    }

    fn name() -> &'static str {
        <Sqlite as Backend>::LABEL
    }
}
