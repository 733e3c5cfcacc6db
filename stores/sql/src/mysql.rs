//! MySQL and MariaDB: several dispatcher processes share one database.
//!
//! MySQL has no `UPDATE … RETURNING`, so a claim is one short transaction in
//! `READ COMMITTED` (under the default `REPEATABLE READ`, `SKIP LOCKED` claims
//! deadlock constantly): lock the candidates with `FOR UPDATE SKIP LOCKED`,
//! set status, lease and a fresh `RANDOM_BYTES(16)` token per delivery, read
//! the tokens back, commit. Deadlocks and serialization failures are retried.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clarion_core::config::StoreConfig;
use sqlx::mysql::{MySql, MySqlConnectOptions, MySqlDatabaseError, MySqlPoolOptions, MySqlRow};
use sqlx::{Connection, Executor};

use crate::OpenError;
use crate::backend::{
    Arg, Backend, BoxFuture, ClaimQuery, Claimed, Dialect, Sealed, Stmt, bind_fn, placeholders,
    value_io,
};
use crate::common::{self, CLAIM_RETURNING};
use crate::store::SqlStore;

/// The MySQL / MariaDB store.
pub type MySqlStore = SqlStore<MySql>;

/// Pool size.
const CONNECTIONS: u32 = 16;

type TimeDb = DateTime<Utc>;

fn time_to_db(t: DateTime<Utc>) -> TimeDb {
    t
}

fn time_from_db(t: TimeDb, _column: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    Ok(t)
}

/// JSON goes over the wire as text: MariaDB's JSON is an alias of LONGTEXT
/// and does not accept MySQL's JSON parameter type.
fn json_to_db(v: serde_json::Value) -> String {
    v.to_string()
}

fn json_from_db(row: &MySqlRow, column: &str) -> Result<serde_json::Value, sqlx::Error> {
    let text = text_from_db(row, column)?.unwrap_or_default();
    serde_json::from_str(&text).map_err(|e| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: Box::new(e),
    })
}

/// Text columns are UTF-8 in VARCHAR or (where compared exactly) VARBINARY.
fn text_from_db(row: &MySqlRow, column: &str) -> Result<Option<String>, sqlx::Error> {
    let bytes: Option<Vec<u8>> = sqlx::Row::try_get(row, column)?;
    bytes
        .map(String::from_utf8)
        .transpose()
        .map_err(|e| sqlx::Error::ColumnDecode {
            index: column.to_owned(),
            source: Box::new(e),
        })
}

bind_fn!(MySql);

const READ_COMMITTED: &str = "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED";

impl Sealed for MySql {}

impl Backend for MySql {
    const LABEL: &'static str = "MySQL";
    const DIALECT: Dialect = Dialect::Question;
    /// MySQL's `INSERT IGNORE` would swallow other errors too; the store
    /// treats the unique violation (which aborts only the statement) as the
    /// duplicate instead.
    const ON_DEDUP_CONFLICT: &'static str = "";

    value_io!(MySql);

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
            let mut conn = store.write.acquire().await?;
            // The session may come from an application's pool.
            conn.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
                .await?;
            let mut tx = conn.begin().await?;
            let (pending, expired, args) = query.candidates(" FOR UPDATE SKIP LOCKED");
            // Each selection has the same argument layout; split them.
            let (pending_args, expired_args) = args.split_at(args.len() / 2);
            let mut picked = Vec::new();
            for (sql, args) in [(pending, pending_args), (expired, expired_args)] {
                let stmt = Stmt {
                    sql,
                    args: args.to_vec(),
                };
                for row in Self::fetch(&mut tx, stmt).await? {
                    picked.push((Self::get_time(&row, "due")?, Self::get_uuid(&row, "id")?));
                }
            }
            picked.sort();
            picked.truncate(usize::try_from(query.limit).unwrap_or(usize::MAX));
            if picked.is_empty() {
                tx.commit().await?;
                return Ok(Vec::new());
            }
            let ids: Vec<Arg> = picked.iter().map(|(_, id)| Arg::Uuid(*id)).collect();
            let list = placeholders(ids.len());
            let mut args = common::claim_set_args(&query);
            args.extend(ids.iter().cloned());
            let update = Stmt {
                sql: format!(
                    "UPDATE clarion_deliveries SET {} WHERE id IN ({list})",
                    common::claim_set("RANDOM_BYTES(16)")
                ),
                args,
            };
            Self::exec(&mut tx, update).await?;
            let select = Stmt {
                sql: format!(
                    "SELECT {CLAIM_RETURNING} FROM clarion_deliveries WHERE id IN ({list})"
                ),
                args: ids,
            };
            let rows = Self::fetch(&mut tx, select).await?;
            tx.commit().await?;
            rows.iter().map(common::claimed::<Self>).collect()
        })
    }

    fn migrate(pool: &sqlx::Pool<Self>) -> BoxFuture<'_, Result<(), sqlx::migrate::MigrateError>> {
        Box::pin(async move {
            common::migrator(&[("init", include_str!("../migrations/mysql/0001_init.sql"))])
                .run(pool)
                .await
        })
    }

    fn retryable(error: &(dyn sqlx::error::DatabaseError + 'static)) -> bool {
        // Deadlock, lock wait timeout, too many connections, connection killed.
        error
            .try_downcast_ref::<MySqlDatabaseError>()
            .is_some_and(|e| matches!(e.number(), 1213 | 1205 | 1040 | 1927))
            || error.code().as_deref() == Some("40001")
    }
}

impl SqlStore<MySql> {
    /// Connects to the database at `url` (`mysql://user:password@host/db`;
    /// `mariadb://` is accepted too), running migrations unless
    /// `config.migrate` is off.
    pub async fn open(url: &str, config: &StoreConfig) -> Result<Self, OpenError> {
        let url = match url.strip_prefix("mariadb:") {
            Some(rest) => format!("mysql:{rest}"),
            None => url.to_owned(),
        };
        let options = MySqlConnectOptions::from_str(&url).map_err(|e| OpenError::Url {
            backend: <MySql as Backend>::LABEL,
            message: e.to_string(),
        })?;
        Self::connect_with(options, config.migrate).await
    }

    /// Connects with explicit options. Every connection runs in
    /// `READ COMMITTED`.
    pub async fn connect_with(
        options: MySqlConnectOptions,
        migrate: bool,
    ) -> Result<Self, OpenError> {
        let pool = MySqlPoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(READ_COMMITTED).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| OpenError::Connect {
                backend: <MySql as Backend>::LABEL,
                message: e.to_string(),
            })?;
        Self::from_pool(pool, migrate).await
    }

    /// A store on your own pool. Claims run in `READ COMMITTED` whatever the
    /// pool's default.
    pub async fn from_pool(pool: sqlx::MySqlPool, migrate: bool) -> Result<Self, OpenError> {
        let store = SqlStore::from_pools(pool.clone(), pool);
        if migrate {
            store.migrate().await?;
        }
        Ok(store)
    }
}
