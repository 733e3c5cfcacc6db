//! Fresh, isolated databases on the test servers (feature `databases`): a
//! PostgreSQL schema or a MariaDB/MySQL database per call, so tests and
//! benchmarks running at once never see each other's rows.
//!
//! The servers are the machine's own on 127.0.0.1 (PostgreSQL: trust auth,
//! database `test`; MariaDB: root without a password, database `test`), or
//! the URLs in `CLARION_TEST_POSTGRES` / `CLARION_TEST_MYSQL`. An unreachable
//! server panics with the command that starts it: a test never skips.
//!
//! ```no_run
//! # async fn demo() {
//! let (schema, options) = clarion_testkit::databases::create_postgres_schema().await;
//! // … open a store with `options` (its search_path is `schema`), test …
//! clarion_testkit::databases::drop_postgres_schema(&schema).await;
//! # }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection, Executor};

const PG_HINT: &str = "start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` \
     (trust auth, user postgres, database test), or point CLARION_TEST_POSTGRES at one";
const MYSQL_HINT: &str = "start it with `start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd` \
     (root, empty password, database test), or point CLARION_TEST_MYSQL at one";

/// Where the PostgreSQL test server is (override with `CLARION_TEST_POSTGRES`).
pub fn postgres_url() -> String {
    std::env::var("CLARION_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Where the MariaDB test server is (override with `CLARION_TEST_MYSQL`).
pub fn mysql_url() -> String {
    std::env::var("CLARION_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// A name no other process, test or run uses: `{prefix}_{pid}_{n}_{random}`.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        &uuid::Uuid::now_v7().simple().to_string()[24..]
    )
}

/// An admin connection to the PostgreSQL test database.
pub async fn postgres_admin() -> PgConnection {
    let url = postgres_url();
    PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} is unreachable ({e}): {PG_HINT}"))
}

/// An admin connection to the MariaDB test database.
pub async fn mysql_admin() -> MySqlConnection {
    let url = mysql_url();
    MySqlConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("MariaDB at {url} is unreachable ({e}): {MYSQL_HINT}"))
}

/// Creates a fresh schema; returns its name and options whose
/// `search_path` selects it.
pub async fn create_postgres_schema() -> (String, PgConnectOptions) {
    let schema = unique_name("clarion_t");
    postgres_admin()
        .await
        .execute(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .await
        .expect("create a test schema");
    let options = postgres_url()
        .parse::<PgConnectOptions>()
        .expect("PostgreSQL URL")
        .options([("search_path", schema.as_str())]);
    (schema, options)
}

/// Creates a fresh database; returns its name and options that select it.
pub async fn create_mysql_database() -> (String, MySqlConnectOptions) {
    let database = unique_name("clarion_t");
    mysql_admin()
        .await
        .execute(AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .await
        .expect("create a test database");
    let options = mysql_url()
        .parse::<MySqlConnectOptions>()
        .expect("MySQL URL")
        .database(&database);
    (database, options)
}

/// Drops a schema made by [`create_postgres_schema`] (best effort). Close
/// the pools on it first: open transactions hold locks the drop waits for.
pub async fn drop_postgres_schema(schema: &str) {
    let drop = format!("DROP SCHEMA {schema} CASCADE");
    let _ = postgres_admin().await.execute(AssertSqlSafe(drop)).await;
}

/// Drops a database made by [`create_mysql_database`] (best effort).
pub async fn drop_mysql_database(database: &str) {
    let drop = format!("DROP DATABASE {database}");
    let _ = mysql_admin().await.execute(AssertSqlSafe(drop)).await;
}
