//! The simulated clock: each tick moves time forward (a day by default),
//! rotates the keys that are due, and scans for approaching deadlines.
//!
//! Two things differ from a production KMS, both because simulated days pass
//! in milliseconds:
//!
//! - The deadline watcher is driven here, once per tick, at the simulated
//!   time. In production pass the source to `NotifierBuilder::deadline_source`
//!   and the notifier scans every `deadlines.scan_interval` by itself.
//! - Before the clock jumps, the simulation waits until no delivery is in
//!   flight or due. Claims hold a lease measured on this clock; a day-long
//!   jump under a delivery in flight would expire its lease and have it sent
//!   twice (at least once, with the same idempotency key: correct, but noisy).

use std::time::Duration;

use clarion::Notifier;
use clarion::clock::{Clock, ManualClock};
use clarion::deadline::DeadlineWatcher;
use clarion::store::{DeliveryFilter, DeliveryStatus, PageRequest, StoreError};

use crate::keys::Keys;
use crate::rotation::{RotationError, Rotator, TickReport};

/// How long a tick waits for deliveries to settle before moving on anyway
/// (a channel that is down must not freeze the simulation).
const SETTLE_BOUND: Duration = Duration::from_secs(10);

/// The rotation loop on a simulated clock.
#[derive(Debug)]
pub struct Simulation {
    /// Rotates due keys.
    pub rotator: Rotator,
    /// Emits, delivers, and holds the store.
    pub notifier: Notifier,
    /// The clock shared with the notifier.
    pub clock: ManualClock,
    /// The KMS's keys, as the deadline source.
    pub keys: Keys,
    /// The watcher, configured from `[deadlines]`.
    pub watcher: DeadlineWatcher,
    /// Simulated time per tick.
    pub tick_length: Duration,
}

impl Simulation {
    /// Runs `ticks` ticks back to back, or one per second forever (`None`),
    /// and returns the totals.
    pub async fn run(&self, ticks: Option<u32>) -> Result<(u32, TickReport), RotationError> {
        let mut total = TickReport::default();
        self.scan().await;
        let mut every_second = tokio::time::interval(Duration::from_secs(1));
        let mut tick = 0;
        while ticks.is_none_or(|n| tick < n) {
            if ticks.is_none() {
                every_second.tick().await;
            }
            self.settle().await;
            tick += 1;
            self.clock.advance(self.tick_length);
            let report = self.rotator.tick(self.clock.now()).await?;
            metrics::counter!("kms_rotations_total", "result" => "rotated")
                .increment(report.rotated as u64);
            metrics::counter!("kms_rotations_total", "result" => "failed")
                .increment(report.failed as u64);
            total.rotated += report.rotated;
            total.failed += report.failed;
            self.scan().await;
        }
        self.settle().await;
        Ok((tick, total))
    }

    /// One deadline scan at the simulated time; a failure is logged, and the
    /// next tick scans again (warnings are deduplicated, so none is lost).
    async fn scan(&self) {
        match self
            .watcher
            .scan(&self.notifier, &self.keys, self.clock.now())
            .await
        {
            Ok(report) => tracing::debug!(?report, "deadline scan"),
            Err(e) => tracing::warn!(error = %e, "deadline scan failed"),
        }
    }

    /// Waits until nothing is in flight or due at the current simulated time.
    async fn settle(&self) {
        let waited = tokio::time::timeout(SETTLE_BOUND, async {
            while !self.idle().await.unwrap_or(false) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        if waited.is_err() {
            tracing::warn!("deliveries are still in flight; moving the simulated clock anyway");
        }
    }

    /// Due deliveries are checked first: one claimed between the two checks
    /// then shows up as in flight, never slips through both.
    async fn idle(&self) -> Result<bool, StoreError> {
        let store = self.notifier.store();
        let now = self.clock.now();
        let pending = DeliveryFilter {
            status: Some(DeliveryStatus::Pending),
            channel: None,
        };
        let mut page = PageRequest::first(200);
        loop {
            let deliveries = store.deliveries(&pending, page).await?;
            if deliveries
                .items
                .iter()
                .any(|d| d.next_attempt_at.is_none_or(|at| at <= now))
            {
                return Ok(false);
            }
            match deliveries.next {
                Some(after) => page.after = Some(after),
                None => break,
            }
        }
        let in_flight = store
            .counts()
            .await?
            .iter()
            .any(|c| c.status == DeliveryStatus::InFlight && c.count > 0);
        Ok(!in_flight)
    }
}
