//! `cargo xtask bench deadlines`: deadline scans with [`KEYS`] keys inside
//! the window, on SQLite and PostgreSQL.
//!
//! Per store, on a fresh database: the **first scan** (every key crosses a
//! threshold: a warning each, written by `emit_batch` in 1,000-warning
//! batches after one dedup lookup per batch), then a **re-scan** with
//! nothing new (the lookups find every key: no write), and their ratio
//! (target: re-scan ≤ 0.1× the first scan). Keys/s counts the keys the
//! source listed. The source is an in-memory list, so the figures are
//! clarion's cost, not a KMS's query. The notifier is not started (scans
//! only); one channel per warning.
//!
//! In-run ceiling for the first scan: the same number of rows (one
//! notification and one delivery each) written by the engine alone with
//! 1,000 per transaction — Python's `sqlite3` (FULL) on SQLite, one raw sqlx
//! writer on PostgreSQL (its rate taken over 20,000 rows). One run per
//! figure (100,000 keys take seconds).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use clarion::Notifier;
use clarion::clock::{Clock, ManualClock};
use clarion::config::Config;
use clarion::deadline::{Deadline, DeadlineSource, SourceError};
use clarion::event::{Labels, ObjectType, Subject};
use clarion::notification::Notification;
use clarion::store::NotificationsStore;

use crate::ceiling;
use crate::store::{Databases, row, thousands};
use crate::webhook::event;

/// Keys due within the window.
pub const KEYS: usize = 100_000;

struct Keys(Vec<Deadline>);

#[async_trait]
impl DeadlineSource for Keys {
    async fn due_by(&self, until: DateTime<Utc>) -> Result<Vec<Deadline>, SourceError> {
        Ok(self
            .0
            .iter()
            .filter(|d| d.deadline <= until)
            .cloned()
            .collect())
    }
}

pub async fn run() {
    println!(
        "\ndeadline scans: {} keys inside the window, first scan then a re-scan with nothing new \
         (one run each)",
        thousands(KEYS as f64)
    );
    row("store", "figure", "value", "");
    let mut db = Databases::default();
    let sample = Notification::new(event(0), Utc::now());

    let (first, again) = scans(Arc::new(db.sqlite().await)).await;
    let (_, path) = db.sqlite_with_path().await;
    let engine = ceiling::sqlite_commits(&path, &sample, 1_000, KEYS).await;
    report(
        "SQLite",
        first,
        again,
        engine,
        "sqlite3 (Python), 1,000 rows/tx, FULL",
    );

    let (store, _) = db.postgres_with_options().await;
    let (first, again) = scans(Arc::new(store)).await;
    let (_, options) = db.postgres_with_options().await;
    let pool = clarion::sql::sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("raw PostgreSQL pool");
    // A rate: 20,000 rows measure it (100,000 would take most of a minute).
    let engine = ceiling::sql_commits(&pool, &sample, 1, 1_000, 20_000).await;
    pool.close().await;
    report(
        "PostgreSQL",
        first,
        again,
        engine,
        "1 raw sqlx writer, 1,000 rows/tx",
    );
    db.drop_all().await;
}

fn report(store: &str, first: Duration, again: Duration, engine: f64, ceiling: &str) {
    let rate = |d: Duration| KEYS as f64 / d.as_secs_f64();
    let secs = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    row(
        store,
        "first scan (all warned)",
        &format!("{} keys/s", thousands(rate(first))),
        &secs(first),
    );
    row(
        store,
        &format!("ceiling: {ceiling}"),
        &format!("{} rows/s", thousands(engine)),
        "",
    );
    row(
        store,
        "ratio first scan / ceiling",
        &format!("{:.2}×", rate(first) / engine),
        "",
    );
    row(
        store,
        "re-scan, nothing new",
        &format!("{} keys/s", thousands(rate(again))),
        &secs(again),
    );
    row(
        store,
        "ratio re-scan / first scan (time)",
        &format!("{:.3}×", again.as_secs_f64() / first.as_secs_f64()),
        "",
    );
}

/// The first scan and the re-scan on `store`.
async fn scans(store: Arc<dyn NotificationsStore>) -> (Duration, Duration) {
    let clock = ManualClock::default();
    let now = clock.now();
    // Spread over the window: the 30-, 7- and 1-day thresholds all fire.
    let keys = (0..KEYS)
        .map(|i| Deadline {
            subject: Subject::new(format!("key-{i}"), ObjectType::SymmetricKey),
            deadline: now + TimeDelta::minutes((i % (29 * 24 * 60)) as i64 + 1),
            owner: Some(format!("owner-{}", i % 100)),
            labels: Labels::from([("env".into(), "prod".into())]),
        })
        .collect();
    let notifier = Notifier::builder()
        .config(Config::from_toml_str("[[routes]]\nchannels = [\"bench\"]\n").expect("config"))
        .shared_store(store)
        .shared_channel("bench", crate::Noop::new(usize::MAX))
        .deadline_source(Keys(keys))
        .clock(clock)
        .build()
        .expect("bench notifier");
    let started = Instant::now();
    let report = notifier.scan_deadlines().await.expect("first scan");
    let first = started.elapsed();
    assert_eq!(report.warned, KEYS, "every key is warned once");
    let started = Instant::now();
    let report = notifier.scan_deadlines().await.expect("re-scan");
    let again = started.elapsed();
    assert_eq!(
        report.already_warned, KEYS,
        "the re-scan finds every warning"
    );
    (first, again)
}
