//! clarion: key-lifecycle notifications — rotation succeeded, rotation failed,
//! deadline approaching — delivered once, reliably, on the right channel.
//!
//! This facade re-exports [`clarion_core`] and, behind cargo features, the
//! stock channel crates. Enabling a feature links its crate, which is what
//! makes its `kind` visible to configuration (a crate that is only a
//! dependency is never linked, so its registration would be invisible).
//!
//! | feature | crate | re-exported as | provides |
//! |---|---|---|---|
//! | `log` (default) | `clarion-log` | `clarion::log_channel` | channel kind `log` |
//! | `smtp` (default) | `clarion-smtp` | `clarion::smtp_channel` | channel kind `smtp` |
//! | `webhook` (default) | `clarion-webhook` | `clarion::webhook_channel` | channel kind `webhook` |
//! | `slack` (default) | `clarion-slack` | `clarion::slack_channel` | channel kind `slack` |
//! | `teams` (default) | `clarion-teams` | `clarion::teams_channel` | channel kind `teams` |
//! | `api` (default) | `clarion-api` | `clarion::api` | axum routers: inbox, dead letters |
//! | `sqlite` (default), `postgres`, `mysql` | `clarion-sql` | `clarion::sql` | SQL stores |

pub use clarion_core::*;

/// The `log` channel (tracing).
#[cfg(feature = "log")]
pub use clarion_log as log_channel;

/// The `smtp` channel (e-mail over SMTP, lettre).
#[cfg(feature = "smtp")]
pub use clarion_smtp as smtp_channel;

/// The `webhook` channel (HTTP POST signed per Standard Webhooks, reqwest).
#[cfg(feature = "webhook")]
pub use clarion_webhook as webhook_channel;

/// The `slack` channel (Block Kit over a Slack incoming webhook).
#[cfg(feature = "slack")]
pub use clarion_slack as slack_channel;

/// The `teams` channel (Adaptive Cards over a Microsoft Teams Workflows webhook).
#[cfg(feature = "teams")]
pub use clarion_teams as teams_channel;

/// The HTTP API: axum routers for the inbox and the dead-letter queue.
#[cfg(feature = "api")]
pub use clarion_api as api;

/// The SQL stores (SQLite, PostgreSQL, MySQL/MariaDB): `sql::open(url, &config.store)`.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub use clarion_sql as sql;

/// Opens the store `config.url` names: `memory://` (in process), or a SQL
/// store (`sqlite://…`, `postgres://…`, `mysql://…`) when its feature is on.
/// Errors name `store.url` and never print it (it may hold a password).
pub async fn open_store(
    config: &config::StoreConfig,
) -> Result<std::sync::Arc<dyn store::NotificationsStore>, ConfigError> {
    use secrecy::ExposeSecret;
    let url = config.url.expose_secret();
    if url.starts_with("memory:") {
        return Ok(std::sync::Arc::new(memory::MemoryStore::new()));
    }
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    {
        Ok(clarion_sql::open(url, config).await?)
    }
    #[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
    {
        Err(ConfigError::invalid(
            "store.url",
            "no SQL store is built in: enable the `sqlite`, `postgres` or `mysql` feature of `clarion`",
        ))
    }
}
