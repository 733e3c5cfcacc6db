//! Ceilings: what the engines and the HTTP stack do without clarion, measured
//! in the same run as clarion's figures so that a ratio compares like with
//! like (this machine's figures swing up to 2× during a day).
//!
//! - [`sqlite_commits`]: Python's `sqlite3` (a plain synchronous connection,
//!   one writer, WAL, `synchronous = FULL`, like the store) writing clarion's
//!   rows — one notification and one delivery per event — `per_tx` events
//!   per transaction;
//! - [`sql_commits`]: `writers` raw sqlx connections doing the same on
//!   PostgreSQL or MariaDB;
//! - [`signed_posts`]: a bare `reqwest` loop POSTing pre-signed webhook
//!   requests at a given concurrency.
//!
//! Every function returns events (or requests) per second. The databases
//! must already hold clarion's schema (open a store on them first).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use clarion::notification::Notification;
use clarion::sql::backend::{Arg, Backend, NOTIFICATION_COLUMNS, Stmt, notification_args};
use clarion::sql::sqlx::Pool;

/// `events` events written by Python's sqlite3 into the SQLite database at
/// `path`, `per_tx` per transaction; events/s. Rows carry `sample`'s labels
/// and data. Needs `python3` (its standard library has `sqlite3`).
pub async fn sqlite_commits(
    path: &Path,
    sample: &Notification,
    per_tx: usize,
    events: usize,
) -> f64 {
    let labels = serde_json::to_string(&sample.event.labels).expect("labels serialize");
    let data = serde_json::to_string(&sample.event.data).expect("data serializes");
    let output = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(SQLITE_WRITER)
        .arg(path)
        .arg(events.to_string())
        .arg(per_tx.max(1).to_string())
        .arg(labels)
        .arg(data)
        .arg(sample.event.kind.as_str())
        .arg(sample.event.subject.object_type.as_str())
        .arg(sample.event.severity.as_str())
        .output()
        .await
        .expect("python3 runs (the SQLite ceiling needs it)");
    assert!(
        output.status.success(),
        "the SQLite ceiling failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seconds: f64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("the SQLite ceiling prints its elapsed seconds");
    events as f64 / seconds
}

/// The timed loop: ids ascend like UUIDv7 (time first), timestamps are
/// integer microseconds, as clarion writes them.
const SQLITE_WRITER: &str = r#"
import os, sqlite3, sys, time
path, events, per_tx, labels, data, kind, otype, severity = sys.argv[1:9]
events, per_tx = int(events), int(per_tx)
con = sqlite3.connect(path, isolation_level=None)
con.execute("PRAGMA journal_mode=WAL")
con.execute("PRAGMA synchronous=FULL")
con.execute("PRAGMA foreign_keys=ON")
def uid():
    return (time.time_ns() // 1000).to_bytes(8, "big") + os.urandom(8)
N = ("INSERT INTO clarion_notifications (id, kind, subject_id, subject_type, subject_name, owner, "
     "severity, occurred_at, labels, data, dedup_key, created_at, read_at) "
     "VALUES (?, ?, ?, ?, 'payments-dek', ?, ?, ?, ?, ?, NULL, ?, NULL)")
D = ("INSERT INTO clarion_deliveries (id, notification_id, channel, status, attempts, next_attempt_at, "
     "created_at, updated_at) VALUES (?, ?, 'bench', 'pending', 0, ?, ?, ?)")
start = time.perf_counter()
i = 0
while i < events:
    con.execute("BEGIN IMMEDIATE")
    for _ in range(min(per_tx, events - i)):
        now = time.time_ns() // 1000
        nid = uid()
        con.execute(N, (nid, kind, "key-%d" % i, otype, "owner-%d" % (i % 100), severity, now, labels, data, now))
        con.execute(D, (uid(), nid, now, now, now))
        i += 1
    con.execute("COMMIT")
print(time.perf_counter() - start)
"#;

/// `events` events written by `writers` connections of `pool` (PostgreSQL or
/// MariaDB, raw statements through sqlx), `per_tx` per transaction; events/s.
pub async fn sql_commits<B: Backend>(
    pool: &Pool<B>,
    sample: &Notification,
    writers: usize,
    per_tx: usize,
    events: usize,
) -> f64 {
    let per_tx = per_tx.max(1);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..writers {
        let (pool, next, sample) = (pool.clone(), next.clone(), sample.clone());
        set.spawn(async move {
            loop {
                let first = next.fetch_add(per_tx, std::sync::atomic::Ordering::Relaxed);
                if first >= events {
                    return;
                }
                let mut tx = pool.begin().await.expect("begin");
                for i in first..(first + per_tx).min(events) {
                    let mut n = Notification::new(sample.event.clone(), chrono::Utc::now());
                    n.event.subject.id = format!("key-{i}");
                    let (notification, delivery) = rows::<B>(&n);
                    B::exec(&mut tx, notification).await.expect("insert");
                    B::exec(&mut tx, delivery).await.expect("insert");
                }
                tx.commit().await.expect("commit");
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.expect("a writer");
    }
    events as f64 / start.elapsed().as_secs_f64()
}

/// The two inserts clarion makes for a one-channel notification.
fn rows<B: Backend>(n: &Notification) -> (Stmt, Stmt) {
    let mut notification = Stmt::new(
        B::DIALECT,
        &format!(
            "INSERT INTO clarion_notifications ({NOTIFICATION_COLUMNS}) VALUES ({})",
            clarion::sql::backend::placeholders(13)
        ),
    );
    notification.args = notification_args(n);
    let delivery = Stmt::new(
        B::DIALECT,
        "INSERT INTO clarion_deliveries (id, notification_id, channel, status, attempts, \
         next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, 'pending', 0, ?, ?, ?)",
    )
    .arg(Arg::Uuid(uuid::Uuid::now_v7()))
    .arg(Arg::Uuid(n.id))
    .arg(Arg::Text("bench".into()))
    .arg(Arg::Time(n.created_at))
    .arg(Arg::Time(n.created_at))
    .arg(Arg::Time(n.created_at));
    (notification, delivery)
}

/// One pre-signed webhook request: the body and its Standard Webhooks headers.
#[derive(Clone)]
pub struct SignedRequest {
    /// The JSON body.
    pub body: Bytes,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    pub headers: [(&'static str, String); 3],
}

/// Every request POSTed to `url` by `concurrency` tasks sharing `client`,
/// each waiting for its answer (which must be a success); requests/s.
pub async fn signed_posts(
    client: &reqwest::Client,
    url: &str,
    requests: Arc<Vec<SignedRequest>>,
    concurrency: usize,
) -> f64 {
    let n = requests.len();
    let (client, url) = (client.clone(), Arc::<str>::from(url));
    let start = Instant::now();
    crate::webhook::concurrently_on(concurrency, n, move |i| {
        let r = &requests[i];
        let mut request = client
            .post(&*url)
            .header("content-type", "application/json")
            .body(r.body.clone());
        for (name, value) in &r.headers {
            request = request.header(*name, value.as_str());
        }
        Box::pin(async move {
            let response = request.send().await.expect("raw POST");
            assert!(response.status().is_success(), "{}", response.status());
            response.bytes().await.expect("raw response");
        })
    })
    .await;
    n as f64 / start.elapsed().as_secs_f64()
}
