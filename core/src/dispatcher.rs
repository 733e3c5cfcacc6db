//! The dispatcher: claims due deliveries and attempts them.
//!
//! One loop claims in batches (as many as there are free global slots, never
//! on channels whose own slots are all busy), spawns one task per claim, and
//! sleeps until `emit` wakes it or `poll_interval` passes — there is no busy
//! loop. Each task waits for a slot on its channel, runs `deliver` under
//! `delivery.timeout`, turns the result into an [`Outcome`] with the retry
//! policy, and records it under the claim's lease token. A worker that dies
//! records nothing: its leases expire and another worker claims the
//! deliveries again.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{Instrument, debug, error, info_span, warn};

use crate::channel::{Channel, DeliveryError};
use crate::clock::{Clock, add};
use crate::config::DeliveryConfig;
use crate::retry::{Decision, RetryPolicy};
use crate::store::{Claim, ClaimRequest, NotificationsStore, Outcome, StoreError};
use crate::telemetry;

/// Bounded by configuration; kinds outside it are reported as `undeclared`.
pub(crate) type KindLabel = Arc<dyn Fn(&crate::event::EventKind) -> String + Send + Sync>;

pub(crate) struct Dispatcher {
    pub(crate) store: Arc<dyn NotificationsStore>,
    lanes: HashMap<String, Lane>,
    global: Arc<Semaphore>,
    config: DeliveryConfig,
    policy: RetryPolicy,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) wake: Arc<Notify>,
    kind_label: KindLabel,
}

struct Lane {
    channel: Arc<dyn Channel>,
    slots: Arc<Semaphore>,
}

/// What the dispatcher did with in-flight deliveries when it stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Attempts that finished (and were recorded) during the drain.
    pub finished: usize,
    /// Attempts cut off at the deadline; their leases expire and they are
    /// claimed again by a later run (receivers deduplicate by idempotency key).
    pub abandoned: usize,
}

impl Dispatcher {
    pub(crate) fn new(
        store: Arc<dyn NotificationsStore>,
        channels: impl IntoIterator<Item = (String, Arc<dyn Channel>)>,
        config: DeliveryConfig,
        clock: Arc<dyn Clock>,
        kind_label: KindLabel,
    ) -> Self {
        let lanes = channels
            .into_iter()
            .map(|(name, channel)| {
                let slots = Arc::new(Semaphore::new(config.per_channel_concurrency));
                (name, Lane { channel, slots })
            })
            .collect();
        Dispatcher {
            store,
            lanes,
            global: Arc::new(Semaphore::new(config.concurrency)),
            policy: RetryPolicy::new(config.retry.clone()),
            config,
            clock,
            wake: Arc::new(Notify::new()),
            kind_label,
        }
    }

    /// Runs until `stop` carries a drain deadline (or its sender is dropped),
    /// then waits for in-flight attempts until that deadline.
    pub(crate) async fn run(
        self: Arc<Self>,
        mut stop: watch::Receiver<Option<Instant>>,
    ) -> DrainReport {
        let mut tasks = JoinSet::new();
        let mut failures: u32 = 0;
        loop {
            while tasks.try_join_next().is_some() {}
            if stop.borrow().is_some() || stop.has_changed().is_err() {
                break;
            }
            // When nearly saturated, wait for a quarter of the slots to free up
            // rather than paying a claim round per finished delivery.
            let free = self.global.available_permits();
            let worth_claiming = (self.config.concurrency.min(self.config.batch_size) / 4).max(1);
            if free < worth_claiming && !tasks.is_empty() {
                tokio::select! {
                    _ = tasks.join_next() => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            let limit = free.min(self.config.batch_size);
            let request = ClaimRequest {
                now: self.clock.now(),
                lease: self.config.lease,
                limit,
                exclude_channels: self.saturated_channels(),
            };
            match self.store.claim(request).await {
                Ok(claims) => {
                    failures = 0;
                    let full = claims.len() == limit;
                    for claim in claims {
                        let permit = self
                            .global
                            .clone()
                            .acquire_owned()
                            .await
                            .expect("the global semaphore is never closed");
                        tasks.spawn(self.clone().attempt(claim, permit));
                    }
                    if full {
                        continue;
                    }
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(self.config.poll_interval) => {}
                        _ = stop.changed() => {}
                    }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let backoff = Duration::from_millis(100)
                        .saturating_mul(1 << failures.min(9))
                        .min(Duration::from_secs(30));
                    warn!(error = %e, retry_in = ?backoff, "claiming deliveries failed; backing off");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => {}
                    }
                }
            }
        }

        let deadline = stop
            .borrow()
            .unwrap_or_else(|| Instant::now() + self.config.timeout);
        let mut report = DrainReport::default();
        let drain = async {
            while tasks.join_next().await.is_some() {
                report.finished += 1;
            }
        };
        let _ = tokio::time::timeout_at(deadline, drain).await;
        report.abandoned = tasks.len();
        tasks.abort_all();
        report
    }

    fn saturated_channels(&self) -> Vec<String> {
        self.lanes
            .iter()
            .filter(|(_, lane)| lane.slots.available_permits() == 0)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// One attempt of one claimed delivery, start to record.
    async fn attempt(self: Arc<Self>, claim: Claim, _global: OwnedSemaphorePermit) {
        let d = &claim.delivery;
        let kind = (self.kind_label)(&d.notification.event.kind);
        let span = info_span!(
            "clarion.delivery",
            channel = %d.channel,
            delivery_id = %d.id,
            attempt = d.attempt,
            kind = %kind,
        );
        async {
            let Some(lane) = self.lanes.get(&claim.delivery.channel) else {
                let error = format!(
                    "channel \"{}\" is not configured in this process; configure it and requeue \
                     the delivery",
                    claim.delivery.channel
                );
                let at = self.clock.now();
                telemetry::attempt(&claim.delivery.channel, &kind, Duration::ZERO, "dead");
                error!(%error, "delivery is dead");
                self.record(&claim, Outcome::Dead { error, at }).await;
                return;
            };
            let _slot = lane
                .slots
                .clone()
                .acquire_owned()
                .await
                .expect("channel semaphores are never closed");
            if add(self.clock.now(), self.config.timeout) > claim.lease_until {
                // Waited so long for a slot that the attempt could outlive the
                // lease and run twice: let the lease lapse instead.
                warn!("claim waited too long for a channel slot; it will be claimed again");
                return;
            }
            let started = Instant::now();
            let result = tokio::time::timeout(
                self.config.timeout,
                AssertUnwindSafe(lane.channel.deliver(&claim.delivery)).catch_unwind(),
            )
            .await;
            let elapsed = started.elapsed();
            let result = match result {
                Ok(Ok(result)) => result,
                Ok(Err(panic)) => Err(DeliveryError::retryable(format!(
                    "the channel panicked: {}",
                    panic_message(&panic)
                ))),
                Err(_) => Err(DeliveryError::retryable(format!(
                    "timed out after {} (delivery.timeout)",
                    humantime::format_duration(self.config.timeout)
                ))),
            };
            let at = self.clock.now();
            let (outcome, label) = match result {
                Ok(receipt) => {
                    debug!(receipt = ?receipt.detail, "sent");
                    (Outcome::Sent { receipt, at }, "sent")
                }
                Err(DeliveryError::Permanent { reason }) => {
                    error!(error = %reason, "delivery is dead: permanent error");
                    (Outcome::Dead { error: reason, at }, "dead")
                }
                // Until channel state exists, Gone ends only this delivery (it
                // will pause the channel) and Throttled retries only this one
                // (it will throttle the channel).
                Err(DeliveryError::Gone { reason }) => {
                    error!(error = %reason, "delivery is dead: the endpoint is gone");
                    (Outcome::Dead { error: reason, at }, "dead")
                }
                Err(
                    DeliveryError::Retryable {
                        reason,
                        retry_after,
                    }
                    | DeliveryError::Throttled {
                        reason,
                        retry_after,
                    },
                ) => match self.policy.decide(
                    claim.delivery.attempt,
                    claim.created_at,
                    at,
                    retry_after,
                ) {
                    Decision::RetryAt(next_attempt_at) => {
                        warn!(error = %reason, %next_attempt_at, "attempt failed; will retry");
                        let outcome = Outcome::Retry {
                            error: reason,
                            next_attempt_at,
                            at,
                        };
                        (outcome, "retry")
                    }
                    Decision::GiveUp(why) => {
                        let error = format!("{why}; last error: {reason}");
                        error!(%error, "delivery is dead");
                        (Outcome::Dead { error, at }, "dead")
                    }
                },
            };
            telemetry::attempt(&claim.delivery.channel, &kind, elapsed, label);
            self.record(&claim, outcome).await;
        }
        .instrument(span)
        .await
    }

    /// Records an outcome, riding out brief store outages. If the store stays
    /// down, the lease expires and the delivery is attempted again: at least
    /// once, with the same idempotency key.
    async fn record(&self, claim: &Claim, outcome: Outcome) {
        let mut backoff = Duration::from_millis(200);
        for attempt in 1..=5 {
            match self
                .store
                .complete(claim.delivery.id, claim.token, outcome.clone())
                .await
            {
                Ok(()) => return,
                Err(e @ StoreError::StaleLease(_)) => {
                    warn!(error = %e, "outcome discarded");
                    return;
                }
                Err(StoreError::Backend {
                    message,
                    retryable: true,
                }) if attempt < 5 => {
                    warn!(error = %message, retry_in = ?backoff, "recording the outcome failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(e) => {
                    error!(error = %e, "recording the outcome failed; the lease will expire and the delivery will be attempted again");
                    return;
                }
            }
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
