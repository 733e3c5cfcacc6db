//! `store.sync`: how SQLite makes a commit durable.

use schemars::JsonSchema;
use serde::Deserialize;

use super::StoreConfig;

/// `store.sync` (SQLite only): when a commit counts as durable.
///
/// - `full` (the default): every commit is synced to disk before `emit`
///   returns; a returned `emit` survives a crash of the process and a power
///   loss.
/// - `normal`: commits are written to SQLite's write-ahead log and synced at
///   checkpoints; a returned `emit` survives a crash of the process, **not**
///   a power loss or an OS crash (the last commits may be lost).
///
/// PostgreSQL and MariaDB decide durability on the server
/// (`synchronous_commit`, `innodb_flush_log_at_trx_commit`), so the key is an
/// error there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// Sync every commit (survives a power loss).
    #[default]
    Full,
    /// Sync at checkpoints (survives a process crash, not a power loss).
    Normal,
}

impl StoreConfig {
    /// The SQLite sync mode (`full` unless `store.sync` says otherwise).
    pub fn sync_mode(&self) -> SyncMode {
        self.sync.unwrap_or_default()
    }

    /// Why `store.sync` does not apply to the store whose URL has this
    /// scheme (`postgres`, `mysql`, …); `None` when it does or is unset.
    /// [`super::Config::validate_settings`] reports it under `store.sync`.
    pub fn sync_mismatch(&self, scheme: &str) -> Option<String> {
        if self.sync.is_none() || scheme == "sqlite" {
            return None;
        }
        Some(format!(
            "applies to SQLite stores only (sqlite://…), not to this {scheme}: store; \
             PostgreSQL and MariaDB durability is the server's setting \
             (synchronous_commit, innodb_flush_log_at_trx_commit): remove the key"
        ))
    }
}
