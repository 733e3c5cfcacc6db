//! clarion-sql: clarion's durable stores on [sqlx]: SQLite (the embedded
//! default), PostgreSQL and MySQL/MariaDB.
//!
//! ```no_run
//! # async fn demo() -> Result<(), clarion_sql::OpenError> {
//! use clarion_core::config::StoreConfig;
//! let store = clarion_sql::open("sqlite://clarion.db", &StoreConfig::default()).await?;
//! # Ok(()) }
//! ```
//!
//! | URL | store | feature |
//! |---|---|---|
//! | `sqlite://clarion.db` (created if missing), `sqlite::memory:` | [`SqliteStore`] | `sqlite` (default) |
//! | `postgres://user@host/db` | [`PostgresStore`] | `postgres` |
//! | `mysql://user@host/db` (MySQL or MariaDB) | [`MySqlStore`] | `mysql` |
//!
//! Every store is a [`SqlStore`]: the state machine, paging, dedup and purge
//! are written once; what differs per dialect — claims, placeholders, column
//! types — is a small dialect layer.
//!
//! - **Schema**: embedded migrations per dialect (`migrations/{sqlite,postgres,mysql}`),
//!   run on open unless `[store] migrate = false`, recorded in
//!   `_clarion_migrations`; tables `clarion_notifications` and
//!   `clarion_deliveries`; real timestamp columns with microsecond precision
//!   (SQLite: integer microseconds); JSON labels and data.
//! - **Claims**: PostgreSQL and MySQL/MariaDB lock candidates with
//!   `FOR UPDATE SKIP LOCKED` and set status, lease and a fresh random token in
//!   the same transaction (MySQL in `READ COMMITTED`, retried on deadlock), so
//!   several dispatcher processes share one database; SQLite claims with one
//!   `UPDATE … RETURNING`. Outcomes are written only under the current token.
//! - **Transactional outbox**: [`SqlStore::emit_in`] emits (routes, validates,
//!   stores) inside your own sqlx transaction, so "key rotated" and
//!   "notification queued" commit or roll back together; `Notifier::wake`
//!   after the commit delivers at once. [`SqlStore::enqueue_in`] is the lower
//!   level, for a `NewNotification` you built.
//! - **Retention**: `purge` deletes final notifications in bounded batches.
//!
//! TLS to PostgreSQL and MySQL uses rustls with the *ring* provider, like the
//! rest of clarion. [`sqlx`] is re-exported so that your transactions use the
//! same version.

// A build without any backend compiles (and offers `open`, which then says
// which feature to enable), leaving the shared machinery unused.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(unused)
)]

#[doc(hidden)]
pub mod backend;
mod common;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod group;
mod rows;
mod store;

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::sync::Arc;

use clarion_core::config::StoreConfig;
use clarion_core::store::NotificationsStore;

#[cfg(feature = "mysql")]
pub use mysql::MySqlStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
pub use sqlx;
pub use store::{MAX_DETAIL_BYTES, MAX_KEY_CHARS, SqlStore};

/// Why a store could not be opened. Never contains the URL (it may hold a
/// password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The URL's scheme names no SQL store.
    #[error(
        "unsupported store URL scheme {scheme:?}: use sqlite://path, postgres://… or mysql://…"
    )]
    UnsupportedScheme {
        /// The scheme (the part before `:`).
        scheme: String,
    },
    /// The store exists but this build left it out.
    #[error(
        "the {scheme:?} store is not built in: enable the `{feature}` feature of clarion \
         (or clarion-sql)"
    )]
    NotBuilt {
        /// The scheme.
        scheme: String,
        /// The cargo feature that builds it.
        feature: &'static str,
    },
    /// The URL is malformed.
    #[error("invalid {backend} URL: {message}")]
    Url {
        /// Which database.
        backend: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The database could not be reached or opened.
    #[error("cannot connect to {backend}: {message}")]
    Connect {
        /// Which database.
        backend: &'static str,
        /// What the driver said.
        message: String,
    },
    /// A `[store]` setting does not apply to this store.
    #[error("{key}: {message}")]
    Setting {
        /// The configuration key, e.g. `store.sync`.
        key: &'static str,
        /// Why.
        message: String,
    },
    /// The embedded migrations failed.
    #[error("{backend} migrations failed: {message}")]
    Migrate {
        /// Which database.
        backend: &'static str,
        /// What the migrator said.
        message: String,
    },
}

impl From<OpenError> for clarion_core::ConfigError {
    fn from(error: OpenError) -> Self {
        match error {
            OpenError::Setting { key, message } => clarion_core::ConfigError::invalid(key, message),
            other => clarion_core::ConfigError::invalid("store.url", other.to_string()),
        }
    }
}

/// Opens the store that `url`'s scheme names (`sqlite:`, `postgres:` /
/// `postgresql:`, `mysql:` / `mariadb:`), running its migrations unless
/// `config.migrate` is off. `url` is usually `config.url` exposed.
pub async fn open(
    url: &str,
    config: &StoreConfig,
) -> Result<Arc<dyn NotificationsStore>, OpenError> {
    let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
    if let Some(message) = config.sync_mismatch(scheme) {
        return Err(OpenError::Setting {
            key: "store.sync",
            message,
        });
    }
    let not_built = |feature| OpenError::NotBuilt {
        scheme: scheme.to_owned(),
        feature,
    };
    match scheme {
        "sqlite" => {
            #[cfg(feature = "sqlite")]
            return Ok(Arc::new(SqliteStore::open(url, config).await?));
            #[cfg(not(feature = "sqlite"))]
            return Err(not_built("sqlite"));
        }
        "postgres" | "postgresql" => {
            #[cfg(feature = "postgres")]
            return Ok(Arc::new(PostgresStore::open(url, config).await?));
            #[cfg(not(feature = "postgres"))]
            return Err(not_built("postgres"));
        }
        "mysql" | "mariadb" => {
            #[cfg(feature = "mysql")]
            return Ok(Arc::new(MySqlStore::open(url, config).await?));
            #[cfg(not(feature = "mysql"))]
            return Err(not_built("mysql"));
        }
        _ => {
            let _ = (not_built, config);
            Err(OpenError::UnsupportedScheme {
                scheme: scheme.to_owned(),
            })
        }
    }
}
