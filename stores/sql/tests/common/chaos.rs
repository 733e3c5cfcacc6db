//! Real processes against real databases: a child process (this very test
//! binary, re-run with `CLARION_CHAOS_*` set) emits and dispatches through a
//! `Notifier` on a SQL store to a local HTTP receiver, which counts every
//! idempotency key it is sent.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use clarion_core::config::{Config, RouteConfig};
use clarion_core::event::{KeyEvent, ObjectType, RotationSuccess, Subject};
use clarion_core::notifier::Notifier;
use clarion_core::store::{DeliveryStatus, NotificationsStore, StoreError};
use clarion_core::{Channel, Delivery, DeliveryError, EmitError, Receipt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The env var that turns the test binary into a worker.
pub const ROLE: &str = "CLARION_CHAOS_STORE_URL";

// ------------------------------------------------------------------ receiver

/// A minimal HTTP/1.1 receiver: counts `idempotency-key` headers.
#[derive(Clone, Default)]
pub struct Receiver {
    pub seen: Arc<Mutex<HashMap<String, u32>>>,
    pub addr: String,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let receiver = Receiver {
            seen: Default::default(),
            addr: listener.local_addr().unwrap().to_string(),
        };
        let seen = receiver.seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let seen = seen.clone();
                tokio::spawn(async move {
                    let _ = serve(socket, seen).await;
                });
            }
        });
        receiver
    }

    /// Requests received (with duplicates).
    pub fn received(&self) -> u64 {
        self.seen
            .lock()
            .unwrap()
            .values()
            .map(|n| u64::from(*n))
            .sum()
    }

    /// (distinct keys, duplicate deliveries).
    pub fn tally(&self) -> (usize, u64) {
        let seen = self.seen.lock().unwrap();
        let duplicates = seen.values().map(|n| u64::from(n - 1)).sum();
        (seen.len(), duplicates)
    }
}

async fn serve(socket: TcpStream, seen: Arc<Mutex<HashMap<String, u32>>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(socket);
    let mut key = None;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "idempotency-key" => key = Some(value.trim().to_owned()),
                "content-length" => length = value.trim().parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    if let Some(key) = key {
        *seen.lock().unwrap().entry(key).or_default() += 1;
    }
    reader
        .get_mut()
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await
}

// ------------------------------------------------------------------ child

/// POSTs each delivery to the receiver, one connection per attempt.
#[derive(Debug)]
struct HttpChannel {
    addr: String,
}

#[async_trait]
impl Channel for HttpChannel {
    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt, DeliveryError> {
        let fail = |e: std::io::Error| DeliveryError::retryable(e.to_string());
        let mut socket = TcpStream::connect(&self.addr).await.map_err(fail)?;
        let body = serde_json::to_vec(&delivery.notification).expect("JSON");
        let head = format!(
            "POST /hook HTTP/1.1\r\nHost: receiver\r\nIdempotency-Key: {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            delivery.idempotency_key(),
            body.len()
        );
        socket.write_all(head.as_bytes()).await.map_err(fail)?;
        socket.write_all(&body).await.map_err(fail)?;
        let mut answer = String::new();
        socket.read_to_string(&mut answer).await.map_err(fail)?;
        if answer.starts_with("HTTP/1.1 200") {
            Ok(Receipt::new("200"))
        } else {
            Err(DeliveryError::retryable(format!(
                "receiver answered {answer:?}"
            )))
        }
    }
}

/// An event with a stable dedup key, so a restarted child re-emits safely.
pub fn event(i: usize) -> KeyEvent {
    KeyEvent::rotation_success(
        Subject::new(format!("key-{i}"), ObjectType::SymmetricKey),
        RotationSuccess {
            old_id: "v1".into(),
            new_id: "v2".into(),
            next_rotation: None,
        },
    )
    .with_owner("ops")
    .with_dedup_key(format!("chaos-{i}"))
}

/// Pending plus in-flight deliveries.
pub async fn open_work(store: &dyn NotificationsStore) -> Result<u64, StoreError> {
    Ok(store
        .counts()
        .await?
        .iter()
        .filter(|c| !c.status.is_final())
        .map(|c| c.count)
        .sum())
}

/// The child: emits `CLARION_CHAOS_EVENTS` events (skipping those already
/// stored), dispatches until nothing is pending or in flight, exits.
pub async fn child_main() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn,clarion=info")
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let url = std::env::var(ROLE).unwrap();
    let receiver = std::env::var("CLARION_CHAOS_RECEIVER").unwrap();
    let events: usize = std::env::var("CLARION_CHAOS_EVENTS")
        .unwrap()
        .parse()
        .unwrap();
    let lease: u64 = std::env::var("CLARION_CHAOS_LEASE_SECS")
        .map(|s| s.parse().unwrap())
        .unwrap_or(30);
    let store = loop {
        match clarion_sql::open(&url, &Default::default()).await {
            Ok(store) => break store,
            Err(e) => {
                eprintln!("child: opening the store failed ({e}); retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let mut config = Config::default();
    config.add_route(RouteConfig::to(["hook"]));
    config.delivery.lease = Duration::from_secs(lease);
    config.delivery.concurrency = 32;
    config.delivery.per_channel_concurrency = 32;
    config.delivery.poll_interval = Duration::from_millis(50);
    config.delivery.timeout = Duration::from_secs(lease.div_ceil(2).min(5));
    let notifier = Notifier::builder()
        .config(config)
        .shared_store(store.clone())
        .channel("hook", HttpChannel { addr: receiver })
        .build()
        .expect("notifier");
    let running = notifier.start();
    for i in 0..events {
        loop {
            match notifier.emit(&event(i)).await {
                Ok(_) => break,
                Err(EmitError::Store(e)) => {
                    eprintln!("child: emit {i} failed ({e}); retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("emit {i}: {e}"),
            }
        }
    }
    eprintln!("child: all {events} events stored");
    loop {
        match open_work(store.as_ref()).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => eprintln!("child: counting failed ({e}); retrying"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let report = running.shutdown(Duration::from_secs(5)).await;
    eprintln!("child: done ({report:?})");
}

/// Starts a child worker process.
pub fn spawn_child(
    url: &str,
    receiver: &Receiver,
    events: usize,
    lease_secs: u64,
) -> tokio::process::Child {
    let exe = std::env::current_exe().expect("test binary");
    tokio::process::Command::new(exe)
        .args([
            "--exact",
            "chaos_child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, url)
        .env("CLARION_CHAOS_RECEIVER", &receiver.addr)
        .env("CLARION_CHAOS_EVENTS", events.to_string())
        .env("CLARION_CHAOS_LEASE_SECS", lease_secs.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the child worker")
}

/// Waits for `child` to exit successfully within `limit`.
pub async fn finish(mut child: tokio::process::Child, limit: Duration) {
    let status = tokio::time::timeout(limit, child.wait())
        .await
        .unwrap_or_else(|_| panic!("the child worker did not finish within {limit:?}"))
        .expect("wait for the child");
    assert!(status.success(), "the child worker failed: {status}");
}

/// Waits until the receiver has seen at least `n` requests (failing at once
/// if the child exits).
pub async fn wait_received(
    child: &mut tokio::process::Child,
    receiver: &Receiver,
    n: u64,
    limit: Duration,
) {
    tokio::time::timeout(limit, async {
        while receiver.received() < n {
            if let Some(status) = child.try_wait().expect("child status") {
                panic!("the child worker exited early: {status}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "the receiver saw only {} of {n} requests in {limit:?}",
            receiver.received()
        )
    });
}

/// Crash test: kill the child with SIGKILL mid-run, restart it; every
/// delivery arrives, duplicates at most what was in flight.
pub async fn crash_and_restart(url: &str, events: usize) {
    let receiver = Receiver::start().await;
    let mut child = spawn_child(url, &receiver, events, 2);
    wait_received(
        &mut child,
        &receiver,
        (events / 4) as u64,
        Duration::from_secs(120),
    )
    .await;
    child.kill().await.expect("SIGKILL the child"); // tokio sends SIGKILL
    let at_kill = receiver.received();
    eprintln!("killed the child after {at_kill} deliveries");
    finish(
        spawn_child(url, &receiver, events, 2),
        Duration::from_secs(300),
    )
    .await;
    let (distinct, duplicates) = receiver.tally();
    let lost = events - distinct;
    println!(
        "crash test: {events} events, {distinct} delivered, lost {lost}, duplicates {duplicates} \
         (each with the same idempotency key)"
    );
    assert_eq!(lost, 0, "deliveries were lost");
    // At most the child's concurrency (32) was in flight at the kill.
    assert!(
        duplicates <= 32,
        "{duplicates} duplicates: more than were in flight"
    );
    let store = clarion_sql::open(url, &Default::default()).await.unwrap();
    assert_eq!(open_work(store.as_ref()).await.unwrap(), 0);
    let sent: u64 = store
        .counts()
        .await
        .unwrap()
        .iter()
        .filter(|c| c.status == DeliveryStatus::Sent)
        .map(|c| c.count)
        .sum();
    assert_eq!(sent, events as u64);
}

/// Many instances: three children share one database and 10,000 deliveries;
/// each is delivered exactly once.
pub async fn many_instances(url: &str, store: &dyn NotificationsStore, deliveries: usize) {
    use clarion_core::notification::Notification;
    use clarion_core::store::NewNotification;
    let receiver = Receiver::start().await;
    let now = chrono::Utc::now();
    for i in 0..deliveries {
        store
            .enqueue(NewNotification {
                notification: Notification::new(event(i), now),
                channels: vec!["hook".into()],
            })
            .await
            .expect("enqueue");
    }
    let children: Vec<_> = (0..3).map(|_| spawn_child(url, &receiver, 0, 30)).collect();
    for child in children {
        finish(child, Duration::from_secs(300)).await;
    }
    let (distinct, duplicates) = receiver.tally();
    println!(
        "many instances: {deliveries} deliveries by 3 processes: {distinct} delivered, \
         duplicates {duplicates}"
    );
    assert_eq!(distinct, deliveries, "deliveries were lost");
    assert_eq!(duplicates, 0, "a delivery was delivered twice");
}
