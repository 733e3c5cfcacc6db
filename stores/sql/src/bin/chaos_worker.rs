//! The worker process of clarion-sql's reliability tests
//! (`tests/common/chaos.rs`): emits events and dispatches them through a
//! `Notifier` on a SQL store to a local HTTP receiver, which counts every
//! idempotency key it is sent. The tests kill it, restart it, run three at
//! once. Built only with the `chaos-worker` feature (on in this crate's
//! defaults, off for the `clarion` facade).
//!
//! Configured by environment:
//!
//! - `CLARION_CHAOS_STORE_URL`: the store;
//! - `CLARION_CHAOS_RECEIVER`: the receiver's `host:port`;
//! - `CLARION_CHAOS_EVENTS`: how many events to emit (those already stored are
//!   skipped by their dedup keys);
//! - `CLARION_CHAOS_LEASE_SECS`: the lease (default 30);
//! - `CLARION_CHAOS_DISPATCH=0`: only emit, then exit (default: dispatch
//!   until nothing is pending or in flight, then exit).

use std::time::Duration;

use async_trait::async_trait;
use clarion_core::config::{Config, RouteConfig};
use clarion_core::event::{KeyEvent, ObjectType, RotationSuccess, Subject};
use clarion_core::notifier::Notifier;
use clarion_core::store::{NotificationsStore, StoreError};
use clarion_core::{Channel, Delivery, DeliveryError, EmitError, Receipt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

/// An event with a stable dedup key, so a restarted worker re-emits safely.
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
    .with_dedup_key(format!("chaos-{i}"))
}

/// Pending plus in-flight deliveries.
async fn open_work(store: &dyn NotificationsStore) -> Result<u64, StoreError> {
    Ok(store
        .counts()
        .await?
        .iter()
        .filter(|c| !c.status.is_final())
        .map(|c| c.count)
        .sum())
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

#[tokio::main]
async fn main() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn,clarion=info")
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    let url = var("CLARION_CHAOS_STORE_URL");
    let receiver = var("CLARION_CHAOS_RECEIVER");
    let events: usize = var("CLARION_CHAOS_EVENTS")
        .parse()
        .expect("CLARION_CHAOS_EVENTS: a count");
    let lease: u64 = std::env::var("CLARION_CHAOS_LEASE_SECS")
        .map(|s| s.parse().expect("CLARION_CHAOS_LEASE_SECS: seconds"))
        .unwrap_or(30);
    let dispatch = std::env::var("CLARION_CHAOS_DISPATCH").map_or(true, |v| v != "0");
    let store = loop {
        match clarion_sql::open(&url, &Default::default()).await {
            Ok(store) => break store,
            Err(e) => {
                eprintln!("worker: opening the store failed ({e}); retrying");
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
    let running = dispatch.then(|| notifier.start());
    for i in 0..events {
        loop {
            match notifier.emit(&event(i)).await {
                Ok(_) => break,
                Err(EmitError::Store(e)) => {
                    eprintln!("worker: emit {i} failed ({e}); retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("emit {i}: {e}"),
            }
        }
    }
    eprintln!("worker: all {events} events stored");
    let Some(running) = running else {
        return;
    };
    loop {
        match open_work(store.as_ref()).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => eprintln!("worker: counting failed ({e}); retrying"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let report = running.shutdown(Duration::from_secs(5)).await;
    eprintln!("worker: done ({report:?})");
}
