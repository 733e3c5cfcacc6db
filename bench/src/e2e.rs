//! `cargo xtask bench e2e`: the path users run, next to its ceilings.
//!
//! Per store (memory, SQLite, PostgreSQL, MariaDB), on a fresh database per
//! run: a notifier with one signed webhook channel is started, then
//! [`EMITTERS`] tasks call `Notifier::emit` while the dispatcher delivers to a
//! receiver **in another process** (testkit's `ChildReceiver`, this binary
//! run with `--receiver-child`); the clock runs from the first emit until
//! every delivery is recorded as sent. SQLite also runs with one emitter,
//! and with `store.sync = "normal"` (printed apart: that figure gives up the
//! power-loss guarantee, so it is not compared with the FULL ceiling).
//! `CLARION_BENCH_STORES=sqlite,postgres` runs only those stores.
//!
//! In the same run, interleaved with clarion's runs, the ceilings
//! (`ceiling` module):
//!
//! - memory: a bare reqwest loop POSTing the same signed requests to the
//!   same receiver at the dispatcher's concurrency ([`CONCURRENCY`]);
//! - SQLite: Python's sqlite3, one writer, WAL, `synchronous = FULL`, the
//!   same rows, one event per transaction;
//! - PostgreSQL, MariaDB: 8 raw sqlx writers, one event per transaction.
//!
//! Each figure is the best of [`ROUNDS`] runs with the spread; each ratio is
//! best / best. Nothing is asserted about speed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clarion::config::{Config, SyncMode};
use clarion::notification::Notification;
use clarion::store::NotificationsStore;
use clarion::webhook_channel::{WebhookChannel, WebhookConfig, WebhookSecret};
use clarion::{Delivery, EmitOutcome, Notifier};
use clarion_testkit::servers::ChildReceiver;

use crate::ceiling::{self, SignedRequest};
use crate::store::{Databases, Figure, rate_row, row};
use crate::webhook::event;

/// Tasks calling `emit` at once.
pub const EMITTERS: usize = 8;
/// Deliveries in flight at once (the dispatcher's and the raw loop's).
pub const CONCURRENCY: usize = 64;
/// Runs per figure; the best is reported with the spread.
pub const ROUNDS: usize = 3;
/// Events per memory-store run.
pub const MEMORY_EVENTS: usize = 20_000;
/// Events per SQL-store run with 8 emitters.
pub const SQL_EVENTS: usize = 4_000;
/// Events per SQLite run with one emitter.
pub const SQLITE_ONE_EVENTS: usize = 1_000;
/// Events per commit-rate ceiling run.
pub const CEILING_EVENTS: usize = 2_000;
/// Upper bound for one run.
const LIMIT: Duration = Duration::from_secs(120);

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The argument that makes this binary the child receiver.
pub const RECEIVER_CHILD: &str = "--receiver-child";
/// The receiver's path.
const PATH: &str = "/hooks/clarion";

/// Runs the end-to-end section and prints its table.
pub async fn run() {
    let exe = std::env::current_exe().expect("the bench binary's path");
    let mut receiver = ChildReceiver::spawn(&exe, &[RECEIVER_CHILD])
        .await
        .expect("the child receiver starts");
    let mut db = Databases::default();
    println!(
        "\nend to end — {EMITTERS} tasks calling emit while the dispatcher delivers signed \
         webhooks (concurrency {CONCURRENCY}) to a receiver in another process, until every \
         delivery is recorded sent; best of {ROUNDS} runs (spread slowest–best), ceilings \
         measured in the same run"
    );
    row("store", "figure", "best", "spread");

    if wanted("memory") {
        memory(&mut receiver).await;
    }
    if wanted("sqlite") {
        sqlite(&mut db, &mut receiver).await;
    }
    if wanted("postgres") {
        postgres(&mut db, &mut receiver).await;
    }
    if wanted("mysql") {
        mysql(&mut db, &mut receiver).await;
    }
    let counts = receiver.counts().await.expect("the receiver's counts");
    println!(
        "receiver: {} requests, {} signed",
        crate::store::thousands(counts.requests as f64),
        crate::store::thousands(counts.signed as f64)
    );
    db.drop_all().await;
}

/// Whether `CLARION_BENCH_STORES` (comma-separated: memory, sqlite, postgres,
/// mysql; default all) selects `store`.
fn wanted(store: &str) -> bool {
    std::env::var("CLARION_BENCH_STORES")
        .map(|list| list.split(',').any(|s| s.trim() == store))
        .unwrap_or(true)
}

fn sample() -> Notification {
    Notification::new(event(0), chrono::Utc::now())
}

/// The dispatcher and channel against the raw signed loop.
async fn memory(receiver: &mut ChildReceiver) {
    let url = receiver.url(PATH);
    let requests = Arc::new(signed_requests(&url, MEMORY_EVENTS));
    let (mut clarion, mut raw) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let store = Arc::new(clarion::memory::MemoryStore::new());
        clarion.push(e2e(store, receiver, EMITTERS, MEMORY_EVENTS).await);
        let client = crate::webhook::plain_client();
        raw.push(ceiling::signed_posts(&client, &url, requests.clone(), CONCURRENCY).await);
    }
    report(
        "memory",
        "8 emitters → webhook",
        "raw signed reqwest loop",
        "events/s",
        &clarion,
        &raw,
    );
}

/// 8 emitters and 1 emitter against one synchronous writer.
async fn sqlite(db: &mut Databases, receiver: &mut ChildReceiver) {
    let sample = sample();
    let (mut eight, mut one, mut engine) = (Vec::new(), Vec::new(), Vec::new());
    let mut normal = Vec::new();
    let relaxed = clarion::config::StoreConfig {
        sync: Some(SyncMode::Normal),
        ..Default::default()
    };
    for _ in 0..ROUNDS {
        let (store, _) = db.sqlite_with(relaxed.clone()).await;
        normal.push(e2e(Arc::new(store), receiver, EMITTERS, SQL_EVENTS).await);
        let store = Arc::new(db.sqlite().await);
        eight.push(e2e(store, receiver, EMITTERS, SQL_EVENTS).await);
        let store = Arc::new(db.sqlite().await);
        one.push(e2e(store, receiver, 1, SQLITE_ONE_EVENTS).await);
        let (_, path) = db.sqlite_with_path().await;
        engine.push(ceiling::sqlite_commits(&path, &sample, 1, CEILING_EVENTS).await);
    }
    report(
        "SQLite",
        "8 emitters → webhook, FULL",
        "sqlite3 (Python), 1 event/tx, FULL",
        "events/s",
        &eight,
        &engine,
    );
    rate_row(
        "SQLite",
        "1 emitter → webhook, FULL",
        "events/s",
        &Figure::of(&one),
    );
    ratio_row("SQLite", "1 emitter / ceiling", &one, &engine);
    // Not comparable with the FULL ceiling: a returned emit survives a
    // process crash, not a power loss.
    rate_row(
        "SQLite",
        "8 emitters → webhook, sync = normal",
        "events/s",
        &Figure::of(&normal),
    );
}

/// 8 emitters against 8 raw writers.
async fn postgres(db: &mut Databases, receiver: &mut ChildReceiver) {
    let sample = sample();
    let (mut clarion, mut engine) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (store, _) = db.postgres_with_options().await;
        clarion.push(e2e(Arc::new(store), receiver, EMITTERS, SQL_EVENTS).await);
        // A fresh schema with clarion's tables (the store that made them is
        // dropped at once).
        let (_, options) = db.postgres_with_options().await;
        let pool = clarion::sql::sqlx::postgres::PgPoolOptions::new()
            .max_connections(EMITTERS as u32)
            .connect_with(options)
            .await
            .expect("raw PostgreSQL pool");
        engine.push(ceiling::sql_commits(&pool, &sample, EMITTERS, 1, CEILING_EVENTS).await);
        pool.close().await;
    }
    report(
        "PostgreSQL",
        "8 emitters → webhook",
        "8 raw sqlx writers, 1 event/tx",
        "events/s",
        &clarion,
        &engine,
    );
}

/// 8 emitters against 8 raw writers.
async fn mysql(db: &mut Databases, receiver: &mut ChildReceiver) {
    let sample = sample();
    let (mut clarion, mut engine) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (store, _) = db.mysql_with_options().await;
        clarion.push(e2e(Arc::new(store), receiver, EMITTERS, SQL_EVENTS).await);
        let (_, options) = db.mysql_with_options().await;
        let pool = clarion::sql::sqlx::mysql::MySqlPoolOptions::new()
            .max_connections(EMITTERS as u32)
            .connect_with(options)
            .await
            .expect("raw MariaDB pool");
        engine.push(ceiling::sql_commits(&pool, &sample, EMITTERS, 1, CEILING_EVENTS).await);
        pool.close().await;
    }
    report(
        "MariaDB",
        "8 emitters → webhook",
        "8 raw sqlx writers, 1 event/tx",
        "events/s",
        &clarion,
        &engine,
    );
}

fn report(store: &str, figure: &str, ceiling: &str, unit: &str, clarion: &[f64], raw: &[f64]) {
    rate_row(store, figure, unit, &Figure::of(clarion));
    rate_row(
        store,
        &format!("ceiling: {ceiling}"),
        unit,
        &Figure::of(raw),
    );
    ratio_row(store, "ratio clarion / ceiling", clarion, raw);
}

fn ratio_row(store: &str, figure: &str, clarion: &[f64], raw: &[f64]) {
    let best = |v: &[f64]| v.iter().copied().fold(f64::MIN, f64::max);
    row(
        store,
        figure,
        &format!("{:.2}×", best(clarion) / best(raw)),
        "",
    );
}

const CONFIG: &str = r#"
[store]
url = "memory://"

[delivery]
concurrency = {CONCURRENCY}
per_channel_concurrency = {CONCURRENCY}

[channels.hook]
kind = "webhook"
url = "{URL}"
secrets = ["{SECRET}"]

[[routes]]
channels = ["hook"]
"#;

/// Starts a notifier on `store`, then `emitters` tasks emit `events` events
/// between them; events/s from the first emit until all are recorded sent.
async fn e2e(
    store: Arc<dyn NotificationsStore>,
    receiver: &mut ChildReceiver,
    emitters: usize,
    events: usize,
) -> f64 {
    let url = receiver.url(PATH);
    let before = receiver
        .counts()
        .await
        .expect("the receiver's counts")
        .signed;
    let config = CONFIG
        .replace("{CONCURRENCY}", &CONCURRENCY.to_string())
        .replace("{URL}", &url)
        .replace("{SECRET}", SECRET);
    let notifier = Notifier::builder()
        .config(Config::from_toml_str(&config).expect("bench config"))
        .shared_store(store.clone())
        .build()
        .expect("bench notifier");
    let running = notifier.start();
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..emitters {
        let notifier = notifier.clone();
        set.spawn(async move {
            for i in (t..events).step_by(emitters) {
                match notifier.emit(&event(i)).await.expect("emit") {
                    EmitOutcome::Enqueued { .. } => {}
                    other => panic!("emit: {other:?}"),
                }
            }
        });
    }
    let finished = tokio::time::timeout(LIMIT, async {
        while let Some(done) = set.join_next().await {
            done.expect("an emitter");
        }
        // Asking the receiver is cheap; counting the store's rows is not (it
        // would compete with the run), so that waits for the last outcomes.
        while receiver
            .counts()
            .await
            .expect("the receiver's counts")
            .signed
            < before + events as u64
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        crate::until_sent(store.as_ref(), events).await;
    })
    .await;
    let elapsed = start.elapsed();
    running.shutdown(Duration::from_secs(5)).await;
    finished.unwrap_or_else(|_| panic!("end to end: not all {events} sent within {LIMIT:?}"));
    events as f64 / elapsed.as_secs_f64()
}

/// `n` requests as the webhook channel signs them.
fn signed_requests(url: &str, n: usize) -> Vec<SignedRequest> {
    let renderer = WebhookChannel::from_config(WebhookConfig::new(url).secret(SECRET))
        .expect("a channel to render bodies");
    let secret: WebhookSecret = SECRET.parse().expect("the bench secret");
    (0..n)
        .map(|i| {
            let delivery = Delivery {
                id: uuid::Uuid::now_v7(),
                channel: "hook".into(),
                attempt: 1,
                notification: Notification::new(event(i), chrono::Utc::now()),
            };
            let body = renderer.body(&delivery).expect("a body");
            let id = delivery.idempotency_key();
            let timestamp = chrono::Utc::now().timestamp();
            let signature = secret.sign(&id, timestamp, &body);
            SignedRequest {
                body: body.into(),
                headers: [
                    ("webhook-id", id),
                    ("webhook-timestamp", timestamp.to_string()),
                    ("webhook-signature", signature),
                ],
            }
        })
        .collect()
}
