//! A running [`Notifier`] on the memory store and a [`ManualClock`], for
//! driving a real channel against a real (local) peer through the
//! dispatcher.
//!
//! tokio's paused clock cannot be used with real sockets (its auto-advance
//! would fire I/O timeouts), so time is a `ManualClock`: a retry scheduled
//! at +30 s is not claimable until the test moves the clock there. The store
//! counts claim rounds, so "nothing was sent before the retry was due" is
//! asserted after the dispatcher demonstrably looked for due deliveries,
//! not after a fixed sleep. Every wait is a bounded polling loop.
//!
//! ```ignore
//! let h = ManualHarness::start(&config_toml);   // one channel, routed
//! let id = h.emit(&events::failure("key-1", "alice")).await;
//! let first = h.wait_retry(id, 1).await;
//! h.advance_to(first.next_attempt_at.unwrap() - chrono::TimeDelta::seconds(1));
//! h.wait_claim_rounds(3).await;                 // still only one attempt
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clarion_core::clock::{Clock, ManualClock};
use clarion_core::config::Config;
use clarion_core::event::KeyEvent;
use clarion_core::memory::MemoryStore;
use clarion_core::store::{
    DeliveryFilter, DeliveryRecord, DeliveryStatus, OutboxStore, PageRequest,
};
use clarion_core::{EmitOutcome, Notifier, RunningNotifier};
use uuid::Uuid;

use crate::counting::CountingStore;

/// How long any wait for the dispatcher or the store may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// A notifier, its store and its manual clock.
pub struct ManualHarness {
    /// The notifier (memory store, manual clock).
    pub notifier: Notifier,
    running: Option<RunningNotifier>,
    /// The store, counting claim rounds.
    pub store: Arc<CountingStore<MemoryStore>>,
    /// The clock the dispatcher reads.
    pub clock: ManualClock,
}

impl ManualHarness {
    /// Builds the notifier from `config` (TOML) and starts it.
    pub fn start(config: &str) -> ManualHarness {
        let store = Arc::new(CountingStore::new(MemoryStore::new()));
        let clock = ManualClock::default();
        let notifier = Notifier::builder()
            .config(Config::from_toml_str(config).unwrap())
            .shared_store(store.clone())
            .clock(clock.clone())
            .build()
            .unwrap();
        let running = Some(notifier.start());
        ManualHarness {
            notifier,
            running,
            store,
            clock,
        }
    }

    /// Emits `event`, routed to exactly one channel; returns its delivery's id.
    pub async fn emit(&self, event: &KeyEvent) -> Uuid {
        match self.notifier.emit(event).await.unwrap() {
            EmitOutcome::Enqueued { channels, .. } => assert_eq!(channels.len(), 1, "{channels:?}"),
            other => panic!("{other:?}"),
        }
        let page = self
            .store
            .deliveries(&DeliveryFilter::default(), PageRequest::first(100))
            .await;
        page.unwrap().items.last().expect("a delivery").id
    }

    /// The delivery's record.
    pub async fn record(&self, id: Uuid) -> DeliveryRecord {
        self.store
            .delivery(id)
            .await
            .unwrap()
            .expect("the delivery exists")
    }

    /// Waits (bounded) until the delivery satisfies `done`.
    pub async fn wait_for(
        &self,
        id: Uuid,
        what: &str,
        done: impl Fn(&DeliveryRecord) -> bool,
    ) -> DeliveryRecord {
        let deadline = Instant::now() + WAIT;
        loop {
            let record = self.record(id).await;
            if done(&record) {
                return record;
            }
            assert!(Instant::now() < deadline, "never {what}: {record:#?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until the delivery is sent or dead.
    pub async fn wait_final(&self, id: Uuid) -> DeliveryRecord {
        self.wait_for(id, "final", |r| r.status.is_final()).await
    }

    /// Waits until `attempts` attempts are recorded and a retry is scheduled.
    pub async fn wait_retry(&self, id: Uuid, attempts: u32) -> DeliveryRecord {
        let what = format!("pending after {attempts} attempts");
        let record = (self.wait_for(id, &what, |r| {
            r.attempts >= attempts && r.status != DeliveryStatus::InFlight
        }))
        .await;
        assert_eq!(
            (record.status, record.attempts),
            (DeliveryStatus::Pending, attempts),
            "{record:#?}"
        );
        record
    }

    /// Waits until the dispatcher has looked for due deliveries `rounds` more times.
    pub async fn wait_claim_rounds(&self, rounds: usize) {
        let target = self.store.claims() + rounds;
        let deadline = Instant::now() + WAIT;
        while self.store.claims() < target {
            assert!(Instant::now() < deadline, "the dispatcher stopped claiming");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Moves the manual clock forward to `at`.
    pub fn advance_to(&self, at: DateTime<Utc>) {
        self.clock
            .advance((at - self.clock.now()).to_std().expect("only forward"));
    }

    /// Shuts the notifier down.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown(Duration::from_secs(2)).await;
        }
    }
}
