//! PostgreSQL: several dispatcher processes share one database.
//!
//! Concurrent `enqueue` calls of one store share transactions (group commit,
//! see the `group` module), so one WAL flush serves many; each call still
//! returns only after its own write committed.
//!
//! A claim is one statement: two `FOR UPDATE SKIP LOCKED` selections (due
//! pending deliveries, expired leases) feed an `UPDATE … RETURNING` that sets
//! status, lease and a fresh `gen_random_uuid()` token per delivery. Claimers
//! skip each other's locked rows instead of waiting, and a row changed by a
//! committed claim is re-checked before it is taken, so a delivery is never
//! handed out twice while its lease holds.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clarion_core::config::StoreConfig;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow, Postgres};
use sqlx::types::Json;

use crate::OpenError;
use crate::backend::{
    Arg, Backend, BoxFuture, ClaimQuery, Claimed, Dialect, Sealed, Stmt, bind_fn, value_io,
};
use crate::common::{self, CLAIM_RETURNING};
use crate::store::SqlStore;

/// The PostgreSQL store.
pub type PostgresStore = SqlStore<Postgres>;

/// Pool size when the URL does not say.
const CONNECTIONS: u32 = 16;

type TimeDb = DateTime<Utc>;

fn time_to_db(t: DateTime<Utc>) -> TimeDb {
    t
}

fn time_from_db(t: TimeDb, _column: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    Ok(t)
}

fn json_to_db(v: serde_json::Value) -> Json<serde_json::Value> {
    Json(v)
}

fn json_from_db(row: &PgRow, column: &str) -> Result<serde_json::Value, sqlx::Error> {
    sqlx::Row::try_get::<Json<serde_json::Value>, _>(row, column).map(|j| j.0)
}

fn text_from_db(row: &PgRow, column: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::Row::try_get(row, column)
}

bind_fn!(Postgres);

impl Sealed for Postgres {}

impl Backend for Postgres {
    const LABEL: &'static str = "PostgreSQL";
    const DIALECT: Dialect = Dialect::Dollar;
    const ON_DEDUP_CONFLICT: &'static str = " ON CONFLICT (dedup_key) DO NOTHING";

    value_io!(Postgres);

    fn begin_write(
        pool: &sqlx::Pool<Self>,
    ) -> BoxFuture<'_, Result<sqlx::Transaction<'static, Self>, sqlx::Error>> {
        Box::pin(pool.begin())
    }

    fn claim<'a>(
        store: &'a SqlStore<Self>,
        query: ClaimQuery<'a>,
    ) -> BoxFuture<'a, Result<Vec<Claimed>, sqlx::Error>> {
        Box::pin(async move {
            let (pending, expired, candidate_args) = query.candidates(" FOR UPDATE SKIP LOCKED");
            let sql = format!(
                "WITH pending_due AS ({pending}), expired_leases AS ({expired}) \
                 UPDATE clarion_deliveries SET {set} WHERE id IN (SELECT id FROM (\
                 SELECT id, due FROM pending_due UNION ALL SELECT id, due FROM expired_leases \
                 ORDER BY due LIMIT ?) AS picked) RETURNING {CLAIM_RETURNING}",
                set = common::claim_set("gen_random_uuid()"),
            );
            // Placeholders in text order: the CTEs, the SET, the final limit.
            let mut args = candidate_args;
            args.extend(common::claim_set_args(&query));
            args.push(Arg::Int(query.limit));
            let stmt = Stmt {
                sql: Self::DIALECT.sql(&sql),
                args,
            };
            let mut conn = store.write.acquire().await?;
            let rows = Self::fetch(&mut conn, stmt).await?;
            rows.iter().map(common::claimed::<Self>).collect()
        })
    }

    fn migrate(pool: &sqlx::Pool<Self>) -> BoxFuture<'_, Result<(), sqlx::migrate::MigrateError>> {
        Box::pin(async move {
            common::migrator(include_str!("../migrations/postgres/0001_init.sql"))
                .run(pool)
                .await
        })
    }

    fn retryable(error: &(dyn sqlx::error::DatabaseError + 'static)) -> bool {
        // Serialization failure, deadlock, lock not available, shutdown,
        // too many connections, connection exceptions (class 08).
        error.code().is_some_and(|code| {
            matches!(
                &*code,
                "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03" | "53300"
            ) || code.starts_with("08")
        })
    }
}

impl SqlStore<Postgres> {
    /// Connects to the database at `url` (`postgres://user:password@host/db`),
    /// running migrations unless `config.migrate` is off.
    pub async fn open(url: &str, config: &StoreConfig) -> Result<Self, OpenError> {
        let options = PgConnectOptions::from_str(url).map_err(|e| OpenError::Url {
            backend: <Postgres as Backend>::LABEL,
            message: e.to_string(),
        })?;
        Self::connect_with(options, config.migrate).await
    }

    /// Connects with explicit options (e.g. a `search_path` through
    /// [`PgConnectOptions::options`]).
    pub async fn connect_with(options: PgConnectOptions, migrate: bool) -> Result<Self, OpenError> {
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| OpenError::Connect {
                backend: <Postgres as Backend>::LABEL,
                message: e.to_string(),
            })?;
        Self::from_pool(pool, migrate).await
    }

    /// A store on your own pool (for the transactional outbox, share it).
    pub async fn from_pool(pool: sqlx::PgPool, migrate: bool) -> Result<Self, OpenError> {
        let store = SqlStore::from_pools(pool.clone(), pool);
        if migrate {
            store.migrate().await?;
        }
        // Outcomes stay one autocommitted statement each: they run in parallel on
        // the pool and PostgreSQL shares WAL flushes between them, which measured
        // faster than one grouped `UPDATE … FROM (VALUES …)`.
        Ok(store.with_group_commit(false))
    }
}
