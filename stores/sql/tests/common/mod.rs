//! Test databases: each call makes a fresh, isolated one (a SQLite file, a
//! PostgreSQL schema, a MariaDB database) that is removed when the store is
//! dropped. PostgreSQL and MariaDB must be running: an unreachable server
//! fails the test with a message saying how to start it — never a skip.

#![allow(dead_code, missing_docs)]

pub mod batch;
pub mod chaos;
pub mod emit_in;
pub mod outbox;

/// The tests every SQL store runs, on `$open` (a path to a function making a
/// fresh `Isolated` store, e.g. `crate::common::sqlite`): the store
/// conformance suite and the transactional outbox cases.
#[allow(unused_macros)] // not by every test binary
macro_rules! sql_store_tests {
    ($open:path) => {
        mod conformance {
            clarion_testkit::store_conformance_tests!($open());
        }

        #[tokio::test]
        async fn outbox_commits_with_the_transaction() {
            common::outbox::outbox_commits_with_the_transaction(&$open().await.store).await;
        }

        #[tokio::test]
        async fn outbox_rolls_back_with_the_transaction() {
            common::outbox::outbox_rolls_back_with_the_transaction(&$open().await.store).await;
        }

        #[tokio::test]
        async fn outbox_duplicate_keeps_the_transaction_usable() {
            common::outbox::outbox_duplicate_keeps_the_transaction_usable(&$open().await.store)
                .await;
        }

        #[tokio::test]
        async fn emit_in_commits_and_wake_delivers() {
            common::emit_in::emit_in_commits_and_wake_delivers(&$open().await.store).await;
        }

        #[tokio::test]
        async fn emit_in_rolls_back_with_the_transaction() {
            common::emit_in::emit_in_rolls_back_with_the_transaction(&$open().await.store).await;
        }

        #[tokio::test]
        async fn emit_in_duplicate_invalid_and_unrouted() {
            common::emit_in::emit_in_duplicate_invalid_and_unrouted(&$open().await.store).await;
        }

        #[tokio::test]
        async fn oversized_and_nul_input_is_invalid() {
            common::outbox::oversized_and_nul_input_is_invalid(&$open().await.store).await;
        }

        #[tokio::test]
        async fn a_store_failure_mid_batch_stores_none_of_it() {
            common::batch::a_store_failure_mid_batch_stores_none_of_it(&$open().await.store).await;
        }

        #[tokio::test]
        async fn emit_batch_in_follows_the_transaction() {
            common::batch::emit_batch_in_follows_the_transaction(&$open().await.store).await;
        }

        #[tokio::test]
        async fn purge_in_bounded_batches() {
            common::outbox::purge_in_bounded_batches(&$open().await.store).await;
        }
    };
}
#[allow(unused_imports)] // not by every test binary
pub(crate) use sql_store_tests;

use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clarion_core::notification::Notification;
use clarion_core::store::*;
use clarion_testkit::databases::{self, mysql_url, postgres_url, unique_name};
use uuid::Uuid;

/// A store plus what removes its database when it is dropped.
pub struct Isolated<S> {
    pub store: S,
    /// The URL that opens the same database (for child processes).
    pub url: String,
    cleanup: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl<S> Drop for Isolated<S> {
    fn drop(&mut self) {
        if let Some(cleanup) = self.cleanup.take() {
            cleanup();
        }
    }
}

impl<S> std::ops::Deref for Isolated<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.store
    }
}

/// Runs `f` on a fresh thread with its own runtime (usable from `Drop`).
fn blocking<F: std::future::Future<Output = ()> + Send + 'static>(f: F) {
    let _ = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    })
    .join();
}

// ------------------------------------------------------------------ SQLite

pub fn sqlite_path() -> PathBuf {
    std::env::temp_dir().join(format!("{}.db", unique_name("clarion_test")))
}

pub async fn sqlite() -> Isolated<clarion_sql::SqliteStore> {
    let path = sqlite_path();
    let url = format!("sqlite://{}", path.display());
    let store = clarion_sql::SqliteStore::open(&url, &Default::default())
        .await
        .expect("open a SQLite store");
    Isolated {
        store,
        url,
        cleanup: Some(Box::new(move || {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        })),
    }
}

// ------------------------------------------------------------------ PostgreSQL

pub fn drop_postgres_schema(schema: String) {
    blocking(async move { databases::drop_postgres_schema(&schema).await });
}

/// A URL that selects `schema` (for child processes).
pub fn postgres_url_for(schema: &str) -> String {
    let base = postgres_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options%5Bsearch_path%5D={schema}")
}

pub async fn postgres() -> Isolated<clarion_sql::PostgresStore> {
    let (schema, options) = databases::create_postgres_schema().await;
    let store = clarion_sql::PostgresStore::connect_with(options, true)
        .await
        .expect("open a PostgreSQL store");
    Isolated {
        store,
        url: postgres_url_for(&schema),
        cleanup: Some(Box::new(move || drop_postgres_schema(schema))),
    }
}

// ------------------------------------------------------------------ MariaDB

pub fn drop_mysql_database(database: String) {
    blocking(async move { databases::drop_mysql_database(&database).await });
}

/// A URL that selects `database` (for child processes).
pub fn mysql_url_for(database: &str) -> String {
    let base = mysql_url();
    let (server, _) = base.rsplit_once('/').expect("a MySQL URL with a database");
    format!("{server}/{database}")
}

pub async fn mysql() -> Isolated<clarion_sql::MySqlStore> {
    let (database, options) = databases::create_mysql_database().await;
    let store = clarion_sql::MySqlStore::connect_with(options, true)
        .await
        .expect("open a MariaDB store");
    Isolated {
        store,
        url: mysql_url_for(&database),
        cleanup: Some(Box::new(move || drop_mysql_database(database))),
    }
}

// ------------------------------------------------------------------ forwarding

#[async_trait]
impl<S: NotificationsStore> OutboxStore for Isolated<S> {
    async fn enqueue(&self, new: NewNotification) -> Result<Enqueued, StoreError> {
        self.store.enqueue(new).await
    }
    async fn enqueue_batch(
        &self,
        batch: Vec<NewNotification>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        self.store.enqueue_batch(batch).await
    }
    async fn taken_dedup_keys(
        &self,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        self.store.taken_dedup_keys(keys).await
    }
    async fn claim(&self, request: ClaimRequest) -> Result<Vec<Claim>, StoreError> {
        self.store.claim(request).await
    }
    async fn complete(
        &self,
        id: Uuid,
        token: LeaseToken,
        outcome: Outcome,
    ) -> Result<(), StoreError> {
        self.store.complete(id, token, outcome).await
    }
    async fn requeue(&self, id: Uuid, now: DateTime<Utc>) -> Result<Requeued, StoreError> {
        self.store.requeue(id, now).await
    }
    async fn delivery(&self, id: Uuid) -> Result<Option<DeliveryRecord>, StoreError> {
        self.store.delivery(id).await
    }
    async fn deliveries(
        &self,
        filter: &DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<DeliveryRecord>, StoreError> {
        self.store.deliveries(filter, page).await
    }
    async fn counts(&self) -> Result<Vec<StatusCount>, StoreError> {
        self.store.counts().await
    }
    async fn purge(&self, before: DateTime<Utc>, limit: usize) -> Result<u64, StoreError> {
        self.store.purge(before, limit).await
    }
}

#[async_trait]
impl<S: NotificationsStore> InboxStore for Isolated<S> {
    async fn notifications(
        &self,
        owner: &str,
        page: PageRequest,
    ) -> Result<Page<Notification>, StoreError> {
        self.store.notifications(owner, page).await
    }
    async fn notification(
        &self,
        owner: &str,
        id: Uuid,
    ) -> Result<Option<Notification>, StoreError> {
        self.store.notification(owner, id).await
    }
    async fn unread_count(&self, owner: &str) -> Result<u64, StoreError> {
        self.store.unread_count(owner).await
    }
    async fn mark_read(
        &self,
        owner: &str,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.store.mark_read(owner, id, now).await
    }
    async fn mark_all_read(&self, owner: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.store.mark_all_read(owner, now).await
    }
}
