//! `cargo xtask bench [SECTION…] [EVENTS]`: prints figures. Sections:
//! `e2e`, `memory`, `webhook`, `smtp`, `sqlite`, `postgres`, `mysql`,
//! `batch`, `deadlines` (default: all); `EVENTS` sets the memory-store run's
//! event count.
//!
//! `batch` is `emit_batch` (emit only) against each engine's 100-events-per-
//! transaction rate; `deadlines` the first scan and the re-scan of 100,000
//! keys (see those modules).
//!
//! `e2e` is the path users run: emits while the dispatcher delivers signed
//! webhooks to a receiver in another process, on every store, next to the
//! ceilings measured in the same run (see the `e2e` module).
//!
//! The memory store:
//!
//! - emit latency (p50, p99, max) over N events routed to two channels, with
//!   the dispatcher running at the same time, as in production;
//! - no-op channel throughput: from the first emit (one task) until every
//!   delivery of those N events was attempted by a no-op channel and
//!   recorded as sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clarion::config::Config;
use clarion::event::*;
use clarion::memory::MemoryStore;
use clarion::store::{DeliveryStatus, OutboxStore};
use clarion::{Channel, Delivery, DeliveryError, Notifier, Receipt};
use tokio::sync::Notify;

mod batch;
mod ceiling;
mod deadlines;
mod e2e;
mod smtp;
mod store;
mod webhook;

/// A channel that only counts its attempts and wakes the bench at the
/// `target`-th, so a figure measures clarion, not a transport.
#[derive(Debug)]
struct Noop {
    calls: AtomicUsize,
    target: usize,
    done: Notify,
}

impl Noop {
    fn new(target: usize) -> Arc<Self> {
        Arc::new(Noop {
            calls: AtomicUsize::new(0),
            target,
            done: Notify::new(),
        })
    }
}

#[async_trait]
impl Channel for Noop {
    async fn deliver(&self, _: &Delivery) -> Result<Receipt, DeliveryError> {
        if self.calls.fetch_add(1, Ordering::Relaxed) + 1 == self.target {
            self.done.notify_one();
        }
        Ok(Receipt::default())
    }
}

const CONFIG: &str = r#"
[store]
url = "memory://"
[delivery]
concurrency = 512
per_channel_concurrency = 256
batch_size = 256

[[routes]]
channels = ["a", "b"]
"#;

const SECTIONS: [&str; 9] = [
    "e2e",
    "memory",
    "webhook",
    "smtp",
    "sqlite",
    "postgres",
    "mysql",
    "batch",
    "deadlines",
];

fn main() {
    if std::env::args().nth(1).as_deref() == Some(e2e::RECEIVER_CHILD) {
        clarion_testkit::servers::serve_child_receiver();
        return;
    }
    let mut events: usize = 100_000;
    let mut sections = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.parse() {
            Ok(n) => events = n,
            Err(_) if SECTIONS.contains(&arg.as_str()) => sections.push(arg),
            Err(_) => {
                eprintln!("unknown section {arg:?}: choose from {SECTIONS:?} (default: all)");
                std::process::exit(2);
            }
        }
    }
    if sections.is_empty() {
        sections = SECTIONS.iter().map(|s| s.to_string()).collect();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    for section in &sections {
        match section.as_str() {
            "e2e" => runtime.block_on(e2e::run()),
            "batch" => runtime.block_on(batch::run()),
            "deadlines" => runtime.block_on(deadlines::run()),
            "memory" => runtime.block_on(memory(events)),
            "webhook" => runtime.block_on(webhook::run()),
            "smtp" => runtime.block_on(smtp::run()),
            name => runtime.block_on(store::run(name)),
        }
    }
}

async fn memory(events: usize) {
    let channel = Noop::new(events * 2);
    let store = Arc::new(MemoryStore::new());
    let notifier = Notifier::builder()
        .config(Config::from_toml_str(CONFIG).expect("bench config"))
        .shared_store(store.clone())
        .shared_channel("a", channel.clone())
        .shared_channel("b", channel.clone())
        .build()
        .expect("bench notifier");
    let running = notifier.start();

    let sample: Vec<KeyEvent> = (0..events)
        .map(|i| {
            KeyEvent::rotation_failure(
                Subject::new(format!("key-{i}"), ObjectType::SymmetricKey),
                RotationFailure {
                    error: "HSM unreachable".into(),
                    attempt: 1,
                    next_attempt: None,
                },
            )
            .with_owner(format!("owner-{}", i % 100))
        })
        .collect();

    let mut latencies = Vec::with_capacity(events);
    let started = Instant::now();
    for event in &sample {
        let t = Instant::now();
        notifier.emit(event).await.expect("emit");
        latencies.push(t.elapsed());
    }
    let emitted = started.elapsed();
    channel.done.notified().await;
    until_sent(store.as_ref(), events * 2).await;
    let total = started.elapsed();
    running.shutdown(Duration::from_secs(5)).await;

    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!("clarion bench — memory store, {events} events × 2 channels, 2 worker threads");
    println!(
        "emit latency: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs ({:.0} emits/s while dispatching)",
        micros(pct(0.50)),
        micros(pct(0.99)),
        micros(*latencies.last().expect("at least one event")),
        events as f64 / emitted.as_secs_f64()
    );
    println!(
        "no-op channel, one emitter: {} deliveries sent and recorded in {:.2} s = {:.0} deliveries/s",
        events * 2,
        total.as_secs_f64(),
        (events * 2) as f64 / total.as_secs_f64()
    );
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Returns once `n` deliveries are recorded as sent. Each outcome is written
/// right after its `deliver` returns, so the last records trail the last
/// attempt; counting is O(deliveries), so call this once all were attempted.
async fn until_sent(store: &dyn OutboxStore, n: usize) {
    loop {
        let sent: u64 = store
            .counts()
            .await
            .expect("counts")
            .iter()
            .filter(|c| c.status == DeliveryStatus::Sent)
            .map(|c| c.count)
            .sum();
        if sent as usize >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
