//! Real processes against real databases: a child process (the
//! `clarion-chaos-worker` binary of this crate, `src/bin/chaos_worker.rs`)
//! emits and dispatches through a `Notifier` on a SQL store to a local HTTP
//! receiver, which counts every idempotency key it is sent.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clarion_core::store::DeliveryStatus;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// The worker binary; cargo builds it for this crate's integration tests.
const WORKER: Option<&str> = option_env!("CARGO_BIN_EXE_clarion-chaos-worker");

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

/// Starts a child worker process that emits `events` events and, if
/// `dispatch`, delivers until no work is left.
pub fn spawn_child(
    url: &str,
    receiver: &Receiver,
    events: usize,
    lease_secs: u64,
    dispatch: bool,
) -> tokio::process::Child {
    let exe = WORKER.expect(
        "the clarion-chaos-worker binary is not built: enable clarion-sql's `chaos-worker` \
         feature (on by default)",
    );
    tokio::process::Command::new(exe)
        .env("CLARION_CHAOS_STORE_URL", url)
        .env("CLARION_CHAOS_RECEIVER", &receiver.addr)
        .env("CLARION_CHAOS_EVENTS", events.to_string())
        .env("CLARION_CHAOS_LEASE_SECS", lease_secs.to_string())
        .env("CLARION_CHAOS_DISPATCH", if dispatch { "1" } else { "0" })
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
    let mut child = spawn_child(url, &receiver, events, 2, true);
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
        spawn_child(url, &receiver, events, 2, true),
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
    let counts = store.counts().await.unwrap();
    assert!(
        counts.iter().all(|c| c.status == DeliveryStatus::Sent),
        "every delivery is recorded as sent: {counts:?}"
    );
    assert_eq!(counts.iter().map(|c| c.count).sum::<u64>(), events as u64);
}

/// Many instances: one child stores 10,000 events (one delivery each), then
/// three children share the database and deliver them; each is delivered
/// exactly once.
pub async fn many_instances(url: &str, deliveries: usize) {
    let receiver = Receiver::start().await;
    finish(
        spawn_child(url, &receiver, deliveries, 30, false),
        Duration::from_secs(300),
    )
    .await;
    assert_eq!(receiver.received(), 0, "the emitting child only stores");
    let children: Vec<_> = (0..3)
        .map(|_| spawn_child(url, &receiver, 0, 30, true))
        .collect();
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
