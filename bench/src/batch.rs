//! `cargo xtask bench batch`: `Notifier::emit_batch` with 1,000-event
//! batches on SQLite, PostgreSQL and MariaDB, beside each engine's own
//! 100-events-per-transaction rate measured in the same run.
//!
//! **Emit only**: the notifier is not started; the clock runs from the first
//! `emit_batch` call until the last one returned, i.e. until the last batch
//! is durable (committed, `synchronous = FULL` on SQLite). The rows are the
//! ceiling's: one notification and one delivery per event, the same labels
//! and data, no dedup key (a second figure adds a dedup key per event, the
//! lookup a rotation wave with idempotent events pays).
//!
//! Ceilings (same rows, fresh database with clarion's schema): SQLite —
//! Python's `sqlite3`, one plain synchronous connection, WAL + FULL, 100
//! events per transaction; PostgreSQL and MariaDB — one raw sqlx connection,
//! 100 events per transaction (one writer, like one `emit_batch` caller).
//! Best of [`ROUNDS`] fresh databases, spread slowest–best.

use std::sync::Arc;
use std::time::Instant;

use clarion::config::Config;
use clarion::notification::Notification;
use clarion::notifier::MAX_BATCH;
use clarion::store::NotificationsStore;
use clarion::{EmitOutcome, KeyEvent, Notifier};

use crate::ceiling;
use crate::store::{Databases, Figure, rate_row, row};
use crate::webhook::event;

/// Runs per figure.
pub const ROUNDS: usize = 3;
/// Events per run: ten 1,000-event batches.
pub const EVENTS: usize = 10_000;
/// Events per `emit_batch` call.
pub const BATCH: usize = MAX_BATCH;

pub async fn run() {
    println!(
        "\nbatch emit: emit_batch of {BATCH}-event batches, {} events per run, emit only \
         (clock stops when the last batch is durable); best of {ROUNDS}, spread slowest–best",
        crate::store::thousands(EVENTS as f64)
    );
    row("store", "figure", "best", "spread");
    let mut db = Databases::default();
    let sample = Notification::new(event(0), chrono::Utc::now());
    sqlite(&mut db, &sample).await;
    postgres(&mut db, &sample).await;
    mysql(&mut db, &sample).await;
    db.drop_all().await;
}

async fn sqlite(db: &mut Databases, sample: &Notification) {
    let (mut clarion, mut keyed, mut engine) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        clarion.push(emit_rate(Arc::new(db.sqlite().await), false).await);
        keyed.push(emit_rate(Arc::new(db.sqlite().await), true).await);
        let (_, path) = db.sqlite_with_path().await;
        engine.push(ceiling::sqlite_commits(&path, sample, 100, EVENTS).await);
    }
    report(
        "SQLite",
        "sqlite3 (Python), 100 events/tx, FULL",
        &clarion,
        &keyed,
        &engine,
    );
}

async fn postgres(db: &mut Databases, sample: &Notification) {
    let (mut clarion, mut keyed, mut engine) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (store, _) = db.postgres_with_options().await;
        clarion.push(emit_rate(Arc::new(store), false).await);
        let (store, _) = db.postgres_with_options().await;
        keyed.push(emit_rate(Arc::new(store), true).await);
        let (_, options) = db.postgres_with_options().await;
        let pool = clarion::sql::sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("raw PostgreSQL pool");
        engine.push(ceiling::sql_commits(&pool, sample, 1, 100, EVENTS).await);
        pool.close().await;
    }
    report(
        "PostgreSQL",
        "1 raw sqlx writer, 100 events/tx",
        &clarion,
        &keyed,
        &engine,
    );
}

async fn mysql(db: &mut Databases, sample: &Notification) {
    let (mut clarion, mut keyed, mut engine) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (store, _) = db.mysql_with_options().await;
        clarion.push(emit_rate(Arc::new(store), false).await);
        let (store, _) = db.mysql_with_options().await;
        keyed.push(emit_rate(Arc::new(store), true).await);
        let (_, options) = db.mysql_with_options().await;
        let pool = clarion::sql::sqlx::mysql::MySqlPoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("raw MariaDB pool");
        engine.push(ceiling::sql_commits(&pool, sample, 1, 100, EVENTS).await);
        pool.close().await;
    }
    report(
        "MariaDB",
        "1 raw sqlx writer, 100 events/tx",
        &clarion,
        &keyed,
        &engine,
    );
}

fn report(store: &str, ceiling: &str, clarion: &[f64], keyed: &[f64], engine: &[f64]) {
    let best = |v: &[f64]| v.iter().copied().fold(f64::MIN, f64::max);
    rate_row(
        store,
        "emit_batch ×1,000, emit only",
        "events/s",
        &Figure::of(clarion),
    );
    rate_row(
        store,
        "  same, each event with a dedup key",
        "events/s",
        &Figure::of(keyed),
    );
    rate_row(
        store,
        &format!("ceiling: {ceiling}"),
        "events/s",
        &Figure::of(engine),
    );
    row(
        store,
        "ratio emit_batch / ceiling",
        &format!("{:.2}×", best(clarion) / best(engine)),
        "",
    );
}

/// One notifier (not started: emit only) on `store`, routing every event to
/// one channel; emits [`EVENTS`] events in [`BATCH`]-event calls; events/s.
async fn emit_rate(store: Arc<dyn NotificationsStore>, dedup: bool) -> f64 {
    let notifier = Notifier::builder()
        .config(Config::from_toml_str("[[routes]]\nchannels = [\"bench\"]\n").expect("config"))
        .shared_store(store)
        .shared_channel("bench", crate::Noop::new(usize::MAX))
        .build()
        .expect("bench notifier");
    let events: Vec<KeyEvent> = (0..EVENTS)
        .map(|i| {
            let e = event(i);
            if dedup {
                e.with_dedup_key(format!("bench:{i}"))
            } else {
                e
            }
        })
        .collect();
    let started = Instant::now();
    for batch in events.chunks(BATCH) {
        let results = notifier.emit_batch(batch).await.expect("emit_batch");
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Ok(EmitOutcome::Enqueued { .. }))),
            "every bench event is stored"
        );
    }
    EVENTS as f64 / started.elapsed().as_secs_f64()
}
