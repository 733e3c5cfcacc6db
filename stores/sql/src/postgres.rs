//! PostgreSQL: several dispatcher processes share one database.
//!
//! Concurrent `enqueue` and `complete` calls of one store share transactions
//! (group commit, see the `group` module), so one WAL flush serves many; each
//! call still returns only after its own write committed. Outcomes are
//! written with one `UPDATE … FROM unnest(…)` per group.
//!
//! A claim is one statement: two `FOR UPDATE SKIP LOCKED` selections (due
//! pending deliveries, expired leases) feed an `UPDATE … RETURNING` that sets
//! status, lease and a fresh `gen_random_uuid()` token per delivery. Claimers
//! skip each other's locked rows instead of waiting, and a row changed by a
//! committed claim is re-checked before it is taken, so a delivery is never
//! handed out twice while its lease holds.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clarion_core::config::StoreConfig;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgRow, Postgres};
use sqlx::types::Json;
use uuid::Uuid;

use crate::OpenError;
use crate::backend::{
    Arg, Backend, BoxFuture, ClaimQuery, Claimed, Completion, Dialect, Sealed, Stmt, bind_fn,
    value_io,
};
use crate::common;
use crate::rows::NOTIFICATION_COLUMNS;
use crate::store::SqlStore;

/// The PostgreSQL store.
pub type PostgresStore = SqlStore<Postgres>;

/// Pool size when the URL does not say.
const CONNECTIONS: u32 = 16;

/// Plans every execution with its parameters and the table's current size.
/// A prepared statement's cached generic plan was costed when it was first
/// used: a plan made while the table was nearly empty (a sequential scan
/// "finding" a delivery by id) stays in use after the table grew to millions
/// of rows until the next ANALYZE: a claim then took 0.5 s instead of 5 ms.
/// Planning the hot statements costs well under a millisecond per batch.
const CUSTOM_PLANS: (&str, &str) = ("plan_cache_mode", "force_custom_plan");

/// Group writers: while one waits for its commit's WAL flush, the others
/// gather and write the next groups.
const WRITERS: usize = 4;

/// Records a group of outcomes. The arrays travel as parameters, so the
/// statement text is the same for every group size. The unnested rows are
/// materialized: right after a burst the statistics can claim that almost no
/// delivery is in flight, and the planner then scans the table once per
/// outcome, re-expanding the arrays each time (25 ms for 200 outcomes instead
/// of a few).
const COMPLETE_ALL: &str = "WITH v AS MATERIALIZED (SELECT * FROM unnest($1::uuid[], \
     $2::uuid[], $3::text[], $4::timestamptz[], $5::text[], $6::timestamptz[], $7::text[], \
     $8::timestamptz[]) AS v(id, token, status, next, error, sent_at, receipt, at)) \
     UPDATE clarion_deliveries AS d SET status = v.status, \
     attempts = d.attempts + 1, next_attempt_at = v.next, lease_until = NULL, \
     lease_token = NULL, last_error = COALESCE(v.error, d.last_error), sent_at = v.sent_at, \
     receipt = v.receipt, updated_at = v.at FROM v \
     WHERE d.id = v.id AND d.status = 'in_flight' AND d.lease_token = v.token \
     RETURNING d.id";

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
            // `id = ANY(ARRAY(…))` looks the picked rows up by primary key;
            // `id IN (…)` was planned as a hash semi-join against a scan of
            // the whole table (dead row versions included), ~46 ms per claim
            // of 100 under four claimers.
            // The claimed deliveries come back with their notifications, read
            // by primary key in the same statement (one round trip).
            let notification_columns = NOTIFICATION_COLUMNS
                .split(", ")
                .map(|column| format!("n.{column}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "WITH pending_due AS ({pending}), expired_leases AS ({expired}), \
                 claimed AS (UPDATE clarion_deliveries SET {set} WHERE id = ANY(ARRAY(\
                 SELECT id FROM (SELECT id, due FROM pending_due UNION ALL \
                 SELECT id, due FROM expired_leases ORDER BY due LIMIT ?) AS picked)) \
                 RETURNING id AS delivery_id, notification_id, channel, attempts, \
                 created_at AS delivery_created_at, lease_token, next_attempt_at AS due) \
                 SELECT c.delivery_id, c.notification_id, c.channel, c.attempts, \
                 c.delivery_created_at, c.lease_token, c.due, {notification_columns} \
                 FROM claimed c JOIN clarion_notifications n ON n.id = c.notification_id \
                 WHERE n.id = ANY(ARRAY(SELECT notification_id FROM claimed))",
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
            rows.iter()
                .map(|row| {
                    let notification = crate::rows::notification::<Self>(row)
                        .map_err(|e| sqlx::Error::Decode(e.to_string().into()))?;
                    Ok(Claimed {
                        id: Self::get_uuid(row, "delivery_id")?,
                        notification_id: notification.id,
                        channel: Self::get_text(row, "channel")?,
                        attempts: Self::get_i32(row, "attempts")?,
                        created_at: Self::get_time(row, "delivery_created_at")?,
                        token: Self::get_uuid(row, "lease_token")?,
                        due: Self::get_opt_time(row, "due")?,
                        notification: Some(notification),
                    })
                })
                .collect()
        })
    }

    fn complete_all<'c>(
        conn: &'c mut PgConnection,
        completions: &'c [&'c Completion],
    ) -> BoxFuture<'c, Result<HashSet<Uuid>, sqlx::Error>> {
        Box::pin(async move {
            let n = completions.len();
            let (mut ids, mut tokens, mut statuses) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            let (mut nexts, mut errors, mut sents, mut receipts, mut ats) = (
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
                Vec::with_capacity(n),
            );
            for c in completions {
                let r = &c.recorded;
                ids.push(c.id);
                tokens.push(c.token);
                statuses.push(r.status);
                nexts.push(r.next);
                errors.push(r.error.as_deref());
                sents.push(r.sent_at);
                receipts.push(r.receipt.as_deref());
                ats.push(r.at);
            }
            sqlx::query_scalar::<_, Uuid>(COMPLETE_ALL)
                .bind(ids)
                .bind(tokens)
                .bind(statuses)
                .bind(nexts)
                .bind(errors)
                .bind(sents)
                .bind(receipts)
                .bind(ats)
                .fetch_all(conn)
                .await
                .map(|ids| ids.into_iter().collect())
        })
    }

    fn migrate(pool: &sqlx::Pool<Self>) -> BoxFuture<'_, Result<(), sqlx::migrate::MigrateError>> {
        Box::pin(async move {
            common::migrator(&[
                ("init", include_str!("../migrations/postgres/0001_init.sql")),
                (
                    "dead_index",
                    include_str!("../migrations/postgres/0002_dead_index.sql"),
                ),
            ])
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
            .connect_with(options.options([CUSTOM_PLANS]))
            .await
            .map_err(|e| OpenError::Connect {
                backend: <Postgres as Backend>::LABEL,
                message: e.to_string(),
            })?;
        Self::from_pool(pool, migrate).await
    }

    /// A store on your own pool (for the transactional outbox, share it).
    ///
    /// Connect that pool with
    /// `PgConnectOptions::options([("plan_cache_mode", "force_custom_plan")])`
    /// as [`connect_with`](Self::connect_with) does: otherwise a plan cached
    /// while the tables were small can stay in use after they grew.
    pub async fn from_pool(pool: sqlx::PgPool, migrate: bool) -> Result<Self, OpenError> {
        let store = SqlStore::from_pools(pool.clone(), pool);
        if migrate {
            store.migrate().await?;
        }
        Ok(store.with_group_commit(true, false, WRITERS))
    }
}
