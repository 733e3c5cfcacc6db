//! Store benchmarks: SQLite, PostgreSQL and MariaDB.
//!
//! Per store, on fresh databases (a temporary SQLite file, a PostgreSQL
//! schema, a MariaDB database on 127.0.0.1, dropped afterwards; override the
//! servers with `CLARION_TEST_POSTGRES` / `CLARION_TEST_MYSQL`):
//!
//! - **durable emit**: one `enqueue` per event, each committed before it
//!   returns, from 1 task and from 8 tasks;
//! - **dispatch only, queue pre-filled**: [`E2E_EVENTS`] events are stored
//!   first (untimed), then a `Notifier` with a no-op channel is started and
//!   timed until every delivery is recorded as sent (claims, attempts,
//!   fenced outcomes). Emits and dispatch never overlap here, so this is not
//!   the path users run: `cargo xtask bench e2e` measures that one;
//! - **claim latency**: the mean time to claim 100 due deliveries with an
//!   empty table and with 1,000,000 final (sent) deliveries in it, and the
//!   ratio of the two (the claim must not scan final rows).
//!
//! Throughput figures are the best of [`ROUNDS`] runs, each on a fresh
//! database, printed with the spread (slowest–fastest): a neighbour's burst
//! of CPU lands on one run, not on the figure. Nothing is asserted.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clarion_testkit::databases;

use crate::{Noop, until_sent};
use chrono::Utc;
use clarion::config::Config;
use clarion::event::{KeyEvent, ObjectType, RotationSuccess, Subject};
use clarion::notification::Notification;
use clarion::sql::SqlStore;
use clarion::sql::backend::{Backend, Stmt};
use clarion::store::*;
use clarion::{Notifier, Receipt};

/// Runs per throughput figure; the best is reported.
pub const ROUNDS: usize = 3;
/// Events emitted by the single task.
pub const EMITS_ONE: usize = 1_000;
/// Events emitted by each of the 8 tasks.
pub const EMITS_EACH_OF_8: usize = 500;
/// Deliveries in the end-to-end run.
pub const E2E_EVENTS: usize = 20_000;
/// Final rows added for the second claim-latency measurement.
pub const FINAL_ROWS: usize = 1_000_000;
/// Upper bound for the end-to-end run.
const LIMIT: Duration = Duration::from_secs(300);

/// Runs the benchmark of the store named `name`: `sqlite`, `postgres` or
/// `mysql`.
pub async fn run(name: &str) {
    let mut db = Databases::default();
    match name {
        "sqlite" => bench("SQLite", &mut db, Databases::sqlite, SQLITE_FILL).await,
        "postgres" => bench("PostgreSQL", &mut db, Databases::postgres, POSTGRES_FILL).await,
        "mysql" => bench("MariaDB", &mut db, Databases::mysql, MYSQL_FILL).await,
        other => panic!("unknown store {other:?}"),
    }
    db.drop_all().await;
}

fn event(i: usize) -> KeyEvent {
    KeyEvent::rotation_success(
        Subject::new(format!("key-{i}"), ObjectType::SymmetricKey),
        RotationSuccess {
            old_id: "v1".into(),
            new_id: "v2".into(),
            next_rotation: None,
        },
    )
    .with_owner("ops")
}

fn new(i: usize) -> NewNotification {
    NewNotification {
        notification: Notification::new(event(i), Utc::now()),
        channels: vec!["noop".into()],
    }
}

/// `tasks` tasks enqueue `each` events apiece; events/s.
async fn emit_rate(store: &Arc<dyn NotificationsStore>, tasks: usize, each: usize) -> f64 {
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let store = store.clone();
        set.spawn(async move {
            for i in 0..each {
                store.enqueue(new(t * each + i)).await.expect("enqueue");
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.expect("emitter");
    }
    (tasks * each) as f64 / start.elapsed().as_secs_f64()
}

const E2E_CONFIG: &str = r#"
[store]
url = "memory://"
[delivery]
concurrency = 512
per_channel_concurrency = 512
batch_size = 256

[[routes]]
channels = ["noop"]
"#;

/// Stores [`E2E_EVENTS`] events (untimed), then times a notifier with a
/// no-op channel until every delivery is recorded as sent; deliveries/s.
async fn end_to_end(store: Arc<dyn NotificationsStore>) -> f64 {
    let fillers = 32;
    let mut set = tokio::task::JoinSet::new();
    for t in 0..fillers {
        let store = store.clone();
        set.spawn(async move {
            for i in (t..E2E_EVENTS).step_by(fillers) {
                store.enqueue(new(i)).await.expect("enqueue");
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.expect("filler");
    }
    let channel = Noop::new(E2E_EVENTS);
    let notifier = Notifier::builder()
        .config(Config::from_toml_str(E2E_CONFIG).expect("bench config"))
        .shared_store(store.clone())
        .shared_channel("noop", channel.clone())
        .build()
        .expect("bench notifier");
    let start = Instant::now();
    let running = notifier.start();
    let finished = tokio::time::timeout(LIMIT, async {
        channel.done.notified().await;
        until_sent(store.as_ref(), E2E_EVENTS).await;
    })
    .await;
    let elapsed = start.elapsed();
    running.shutdown(Duration::from_secs(5)).await;
    finished.unwrap_or_else(|_| {
        panic!(
            "end to end: {} of {E2E_EVENTS} attempts within {LIMIT:?}",
            channel.calls.load(Ordering::Relaxed)
        )
    });
    E2E_EVENTS as f64 / elapsed.as_secs_f64()
}

/// Mean latency of claiming 100 due deliveries (each batch enqueued first,
/// and completed afterwards so that the table keeps only final rows).
async fn claim_latency(store: &Arc<dyn NotificationsStore>) -> Duration {
    let rounds = 20;
    let mut total = Duration::ZERO;
    for round in 0..rounds {
        for i in 0..100 {
            store.enqueue(new(round * 100 + i)).await.expect("enqueue");
        }
        let start = Instant::now();
        let claims = store
            .claim(ClaimRequest {
                now: Utc::now(),
                lease: Duration::from_secs(60),
                limit: 100,
                exclude_channels: vec![],
            })
            .await
            .expect("claim");
        total += start.elapsed();
        assert_eq!(claims.len(), 100, "every enqueued delivery is due");
        for claim in claims {
            let outcome = Outcome::Sent {
                receipt: Receipt::default(),
                at: Utc::now(),
            };
            store
                .complete(claim.delivery.id, claim.token, outcome)
                .await
                .expect("complete");
        }
    }
    total / rounds as u32
}

/// Adds `rows` sent deliveries (of one notification) with a few set-based
/// inserts: `fill` makes `{n}` rows numbered from `{offset}` for
/// notification `{nid}`. Their ids count up from zero, like UUIDv7 ids count
/// up with time (and below any of them): random ids would make MariaDB
/// insert all over its clustered index (200 s instead of seconds).
async fn fill_final<B: Backend>(store: &SqlStore<B>, rows: usize, fill: &str) {
    let Enqueued::Created {
        notification_id, ..
    } = store.enqueue(new(usize::MAX)).await.expect("enqueue")
    else {
        unreachable!("the event has no dedup key")
    };
    let mut conn = store.pool().acquire().await.expect("connection");
    let chunk = 100_000;
    let mut done = 0;
    while done < rows {
        let sql = fill
            .replace("{n}", &chunk.min(rows - done).to_string())
            .replace("{offset}", &done.to_string())
            .replace("{nid}", &notification_id.simple().to_string());
        B::exec(&mut conn, Stmt::new(B::DIALECT, &sql))
            .await
            .expect("bulk fill");
        done += chunk;
    }
}

const SQLITE_FILL: &str = "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) \
     INSERT INTO clarion_deliveries (id, notification_id, channel, status, attempts, created_at, updated_at, sent_at) \
     SELECT unhex(printf('%032x', {offset} + i)), unhex('{nid}'), 'noop', 'sent', 1, 0, 0, 0 FROM s";
const POSTGRES_FILL: &str = "INSERT INTO clarion_deliveries (id, notification_id, channel, status, attempts, created_at, updated_at, sent_at) \
     SELECT lpad(to_hex({offset} + i), 32, '0')::uuid, '{nid}'::uuid, 'noop', 'sent', 1, now(), now(), now() \
     FROM generate_series(1, {n}) AS i";
/// MariaDB's sequence engine (`seq_1_to_N`); MySQL would need another row source.
const MYSQL_FILL: &str = "INSERT INTO clarion_deliveries (id, notification_id, channel, status, attempts, created_at, updated_at, sent_at) \
     SELECT UNHEX(LPAD(HEX({offset} + seq), 32, '0')), UNHEX('{nid}'), 'noop', 'sent', 1, NOW(6), NOW(6), NOW(6) \
     FROM seq_1_to_{n}";

/// The best and the slowest of a figure's runs.
pub(crate) struct Figure {
    best: f64,
    worst: f64,
}

impl Figure {
    /// The best and the slowest of `runs`.
    pub(crate) fn of(runs: &[f64]) -> Figure {
        Figure {
            best: runs.iter().copied().fold(f64::MIN, f64::max),
            worst: runs.iter().copied().fold(f64::MAX, f64::min),
        }
    }
}

async fn best_of(mut run: impl AsyncFnMut() -> f64) -> Figure {
    let mut runs = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        runs.push(run().await);
    }
    Figure::of(&runs)
}

pub(crate) fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(crate) fn row(store: &str, figure: &str, value: &str, spread: &str) {
    println!("{store:<11} {figure:<40} {value:>20}   {spread}");
}

pub(crate) fn rate_row(store: &str, figure: &str, unit: &str, f: &Figure) {
    row(
        store,
        figure,
        &format!("{} {unit}", thousands(f.best)),
        &format!("{}–{}", thousands(f.worst), thousands(f.best)),
    );
}

async fn bench<B, F>(label: &str, db: &mut Databases, open: F, fill: &str)
where
    B: Backend,
    SqlStore<B>: NotificationsStore,
    F: AsyncFn(&mut Databases) -> SqlStore<B>,
{
    println!("\n{label} (throughput: best of {ROUNDS} fresh databases, spread slowest–best)");
    row("store", "figure", "best", "spread");
    let one = best_of(async || {
        let store: Arc<dyn NotificationsStore> = Arc::new(open(db).await);
        emit_rate(&store, 1, EMITS_ONE).await
    })
    .await;
    rate_row(label, "emit, 1 task (durable)", "events/s", &one);
    let eight = best_of(async || {
        let store: Arc<dyn NotificationsStore> = Arc::new(open(db).await);
        emit_rate(&store, 8, EMITS_EACH_OF_8).await
    })
    .await;
    rate_row(label, "emit, 8 tasks (durable)", "events/s", &eight);
    let e2e = best_of(async || end_to_end(Arc::new(open(db).await)).await).await;
    rate_row(
        label,
        &format!(
            "dispatch only, queue pre-filled, {} events, no-op channel",
            thousands(E2E_EVENTS as f64)
        ),
        "deliveries/s",
        &e2e,
    );
    let store = Arc::new(open(db).await);
    let dynamic: Arc<dyn NotificationsStore> = store.clone();
    let empty = claim_latency(&dynamic).await;
    let started = Instant::now();
    fill_final(&store, FINAL_ROWS, fill).await;
    let filled = started.elapsed();
    let full = claim_latency(&dynamic).await;
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    row(label, "claim of 100, empty table", &ms(empty), "");
    row(
        label,
        &format!("claim of 100, {} final rows", thousands(FINAL_ROWS as f64)),
        &ms(full),
        &format!("(filled in {:.1} s)", filled.as_secs_f64()),
    );
    row(
        label,
        "claim ratio, full / empty",
        &format!("{:.2}", full.as_secs_f64() / empty.as_secs_f64()),
        "",
    );
}

/// The databases made for the runs, removed at the end.
#[derive(Default)]
pub(crate) struct Databases {
    sqlite_files: Vec<std::path::PathBuf>,
    postgres_schemas: Vec<String>,
    mysql_databases: Vec<String>,
}

impl Databases {
    pub(crate) async fn sqlite(&mut self) -> clarion::sql::SqliteStore {
        self.sqlite_with_path().await.0
    }

    /// A store on a fresh file, and the file's path.
    pub(crate) async fn sqlite_with_path(
        &mut self,
    ) -> (clarion::sql::SqliteStore, std::path::PathBuf) {
        self.sqlite_with(Default::default()).await
    }

    /// A store on a fresh file opened with this `[store]` configuration
    /// (e.g. `sync`), and the file's path.
    pub(crate) async fn sqlite_with(
        &mut self,
        config: clarion::config::StoreConfig,
    ) -> (clarion::sql::SqliteStore, std::path::PathBuf) {
        let path =
            std::env::temp_dir().join(format!("{}.db", databases::unique_name("clarion_bench")));
        self.sqlite_files.push(path.clone());
        let store =
            clarion::sql::SqliteStore::open(&format!("sqlite://{}", path.display()), &config)
                .await
                .expect("open SQLite");
        (store, path)
    }

    async fn postgres(&mut self) -> clarion::sql::PostgresStore {
        self.postgres_with_options().await.0
    }

    /// A store on a fresh schema, and the options that connect to it.
    pub(crate) async fn postgres_with_options(
        &mut self,
    ) -> (
        clarion::sql::PostgresStore,
        clarion::sql::sqlx::postgres::PgConnectOptions,
    ) {
        let (schema, options) = databases::create_postgres_schema().await;
        self.postgres_schemas.push(schema);
        let store = clarion::sql::PostgresStore::connect_with(options.clone(), true)
            .await
            .expect("open PostgreSQL");
        (store, options)
    }

    async fn mysql(&mut self) -> clarion::sql::MySqlStore {
        self.mysql_with_options().await.0
    }

    /// A store on a fresh database, and the options that connect to it.
    pub(crate) async fn mysql_with_options(
        &mut self,
    ) -> (
        clarion::sql::MySqlStore,
        clarion::sql::sqlx::mysql::MySqlConnectOptions,
    ) {
        let (database, options) = databases::create_mysql_database().await;
        self.mysql_databases.push(database);
        let store = clarion::sql::MySqlStore::connect_with(options.clone(), true)
            .await
            .expect("open MariaDB");
        (store, options)
    }

    pub(crate) async fn drop_all(self) {
        for path in self.sqlite_files {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
        for schema in self.postgres_schemas {
            databases::drop_postgres_schema(&schema).await;
        }
        for database in self.mysql_databases {
            databases::drop_mysql_database(&database).await;
        }
    }
}
