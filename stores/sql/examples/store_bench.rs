//! Store benchmarks: prints figures, asserts nothing.
//!
//! ```text
//! cargo run --release -p clarion-sql --example store_bench -- [sqlite|postgres|mysql]...
//! ```
//!
//! Per store: durable emit throughput (one `enqueue` per event, each
//! committed before it returns) with 1 and 8 tasks; end-to-end claim and
//! complete throughput (deliveries/s, 4 workers claiming 100 at a time and
//! completing concurrently, as the dispatcher does); claim latency with
//! 1,000,000 final deliveries in the table against an empty one, and the
//! ratio. PostgreSQL and MariaDB run in a fresh schema / database on
//! 127.0.0.1 (override with `CLARION_TEST_POSTGRES` / `CLARION_TEST_MYSQL`).

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use clarion_core::Receipt;
use clarion_core::event::{KeyEvent, ObjectType, RotationSuccess, Subject};
use clarion_core::notification::Notification;
use clarion_core::store::*;
use clarion_sql::SqlStore;
use clarion_sql::backend::{Backend, Stmt};
use sqlx::{Connection, Executor};

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

async fn emit_rate<B: Backend>(store: &Arc<SqlStore<B>>, tasks: usize, per_task: usize) -> f64 {
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let store = store.clone();
        set.spawn(async move {
            for i in 0..per_task {
                store.enqueue(new(t * per_task + i)).await.expect("enqueue");
            }
        });
    }
    while set.join_next().await.is_some() {}
    (tasks * per_task) as f64 / start.elapsed().as_secs_f64()
}

async fn claim_complete_rate<B: Backend>(store: &Arc<SqlStore<B>>, total: usize) -> f64 {
    // Fill with 8 emitters first (not timed).
    emit_rate(store, 8, total / 8).await;
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let store = store.clone();
        set.spawn(async move {
            let mut done = 0usize;
            let (mut claiming, mut completing) = (Duration::ZERO, Duration::ZERO);
            loop {
                let started = Instant::now();
                let claims = store
                    .claim(ClaimRequest {
                        now: Utc::now(),
                        lease: Duration::from_secs(60),
                        limit: 100,
                        exclude_channels: vec![],
                    })
                    .await
                    .expect("claim");
                claiming += started.elapsed();
                if claims.is_empty() {
                    if std::env::var_os("CLARION_BENCH_VERBOSE").is_some() {
                        println!("  worker: {done} deliveries, {claiming:?} claiming, {completing:?} completing");
                    }
                    return done;
                }
                done += claims.len();
                let started = Instant::now();
                let mut completes = tokio::task::JoinSet::new();
                for claim in claims {
                    let store = store.clone();
                    completes.spawn(async move {
                        let outcome = Outcome::Sent {
                            receipt: Receipt::new("ok"),
                            at: Utc::now(),
                        };
                        store
                            .complete(claim.delivery.id, claim.token, outcome)
                            .await
                            .expect("complete");
                    });
                }
                while completes.join_next().await.is_some() {}
                completing += started.elapsed();
            }
        });
    }
    let mut done = 0;
    while let Some(n) = set.join_next().await {
        done += n.expect("worker");
    }
    done as f64 / start.elapsed().as_secs_f64()
}

/// Mean latency of claiming 100 due deliveries.
async fn claim_latency<B: Backend>(store: &Arc<SqlStore<B>>) -> Duration {
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
        assert_eq!(claims.len(), 100);
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

/// Adds `rows` sent deliveries (of one notification) in large statements.
async fn fill_final<B: Backend>(store: &SqlStore<B>, rows: usize, fill: &str) {
    let n = store.enqueue(new(usize::MAX)).await.expect("enqueue");
    let Enqueued::Created {
        notification_id, ..
    } = n
    else {
        unreachable!()
    };
    let mut conn = store.pool().acquire().await.expect("connection");
    let chunk = 100_000;
    let mut done = 0;
    while done < rows {
        let sql = fill
            .replace("{n}", &(chunk.min(rows - done)).to_string())
            .replace("{nid}", &notification_id.simple().to_string());
        B::exec(&mut conn, Stmt::new(B::DIALECT, &sql))
            .await
            .expect("bulk fill");
        done += chunk;
    }
}

async fn run<B: Backend>(name: &str, open: impl AsyncFn() -> SqlStore<B>, fill: &str) {
    println!("== {name}");
    let store = Arc::new(open().await);
    let one = emit_rate(&store, 1, 1_000).await;
    println!("emit, 1 task:              {one:>9.0} events/s (durable)");
    let eight = emit_rate(&store, 8, 1_000).await;
    println!("emit, 8 tasks:             {eight:>9.0} events/s (durable)");
    let store = Arc::new(open().await);
    let e2e = claim_complete_rate(&store, 20_000).await;
    println!("claim + complete:          {e2e:>9.0} deliveries/s");
    let store = Arc::new(open().await);
    let empty = claim_latency(&store).await;
    fill_final(&store, 1_000_000, fill).await;
    let full = claim_latency(&store).await;
    println!(
        "claim of 100: {:.2} ms empty, {:.2} ms with 1,000,000 final rows: ratio {:.2}",
        empty.as_secs_f64() * 1e3,
        full.as_secs_f64() * 1e3,
        full.as_secs_f64() / empty.as_secs_f64()
    );
}

const SQLITE_FILL: &str = "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) \
     INSERT INTO clarion_deliveries (id, notification_id, channel, status, attempts, created_at, updated_at, sent_at) \
     SELECT randomblob(16), unhex('{nid}'), 'noop', 'sent', 1, 0, 0, 0 FROM s";
const POSTGRES_FILL: &str = "INSERT INTO clarion_deliveries (id, notification_id, channel, status, attempts, created_at, updated_at, sent_at) \
     SELECT gen_random_uuid(), '{nid}'::uuid, 'noop', 'sent', 1, now(), now(), now() FROM generate_series(1, {n})";
/// MariaDB's sequence engine (`seq_1_to_N`); MySQL would need another row source.
const MYSQL_FILL: &str = "INSERT INTO clarion_deliveries (id, notification_id, channel, status, attempts, created_at, updated_at, sent_at) \
     SELECT RANDOM_BYTES(16), UNHEX('{nid}'), 'noop', 'sent', 1, NOW(6), NOW(6), NOW(6) FROM seq_1_to_{n}";

#[tokio::main]
async fn main() {
    if std::env::var_os("CLARION_BENCH_VERBOSE").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("clarion_sql=debug")
            .try_init();
    }
    let mut which: Vec<String> = std::env::args().skip(1).collect();
    if which.is_empty() {
        which = vec!["sqlite".into(), "postgres".into(), "mysql".into()];
    }
    let dir = std::env::temp_dir();
    // Schemas and databases to drop after each run.
    let created = std::sync::Mutex::new(Vec::<String>::new());
    let created = &created;
    for name in which {
        match name.as_str() {
            "sqlite" => {
                run(
                    "SQLite (WAL, synchronous=FULL)",
                    async || {
                        let path = dir.join(format!("clarion-bench-{}.db", uuid::Uuid::now_v7()));
                        created.lock().unwrap().push(path.display().to_string());
                        clarion_sql::SqliteStore::open(
                            &format!("sqlite://{}", path.display()),
                            &Default::default(),
                        )
                        .await
                        .expect("open SQLite")
                    },
                    SQLITE_FILL,
                )
                .await;
                for path in created.lock().unwrap().drain(..) {
                    for suffix in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{path}{suffix}"));
                    }
                }
            }
            "postgres" => {
                let url = std::env::var("CLARION_TEST_POSTGRES")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
                run(
                    "PostgreSQL",
                    async || {
                        let schema = format!("clarion_bench_{}", uuid::Uuid::now_v7().simple());
                        created
                            .lock()
                            .unwrap()
                            .push(format!("DROP SCHEMA {schema} CASCADE"));
                        let mut admin =
                            sqlx::PgConnection::connect(&url).await.expect("PostgreSQL");
                        admin
                            .execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                            .await
                            .expect("schema");
                        let options = sqlx::postgres::PgConnectOptions::from_str(&url)
                            .unwrap()
                            .options([("search_path", schema.as_str())]);
                        clarion_sql::PostgresStore::connect_with(options, true)
                            .await
                            .expect("open PostgreSQL")
                    },
                    POSTGRES_FILL,
                )
                .await;
                let mut admin = sqlx::PgConnection::connect(&url).await.expect("PostgreSQL");
                let drops: Vec<String> = created.lock().unwrap().drain(..).collect();
                for drop in drops {
                    let _ = admin.execute(sqlx::AssertSqlSafe(drop)).await;
                }
            }
            "mysql" => {
                let url = std::env::var("CLARION_TEST_MYSQL")
                    .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
                run(
                    "MariaDB",
                    async || {
                        let db = format!("clarion_bench_{}", uuid::Uuid::now_v7().simple());
                        created.lock().unwrap().push(format!("DROP DATABASE {db}"));
                        let mut admin =
                            sqlx::MySqlConnection::connect(&url).await.expect("MariaDB");
                        admin
                            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
                            .await
                            .expect("database");
                        let options = sqlx::mysql::MySqlConnectOptions::from_str(&url)
                            .unwrap()
                            .database(&db);
                        clarion_sql::MySqlStore::connect_with(options, true)
                            .await
                            .expect("open MariaDB")
                    },
                    MYSQL_FILL,
                )
                .await;
                let mut admin = sqlx::MySqlConnection::connect(&url).await.expect("MariaDB");
                let drops: Vec<String> = created.lock().unwrap().drain(..).collect();
                for drop in drops {
                    let _ = admin.execute(sqlx::AssertSqlSafe(drop)).await;
                }
            }
            other => eprintln!("unknown store {other:?} (sqlite, postgres, mysql)"),
        }
    }
}
