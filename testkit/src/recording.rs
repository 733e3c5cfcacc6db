//! A scriptable channel that records what it was handed.
//!
//! ```
//! use std::time::Duration;
//! use clarion_testkit::recording::{RecordingChannel, Step};
//! // Fail twice (the second time hinting Retry-After: 5s), then succeed forever.
//! let channel = RecordingChannel::new()
//!     .then(Step::Retryable(None))
//!     .then(Step::Retryable(Some(Duration::from_secs(5))))
//!     .otherwise(Step::Succeed);
//! ```

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use clarion_core::channel::{Channel, Delivery, DeliveryError, Receipt};
use tokio::sync::Notify;

/// What one attempt does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Returns a receipt.
    Succeed,
    /// Fails retryably, with an optional `retry_after` hint.
    Retryable(Option<Duration>),
    /// Fails permanently.
    Permanent,
    /// Answers that the endpoint is gone ([`DeliveryError::Gone`]).
    Gone,
    /// Answers that the channel is throttled, with an optional `retry_after`.
    Throttled(Option<Duration>),
    /// Never returns (until the dispatcher's timeout cancels it).
    Hang,
    /// Waits this long (on tokio's clock), then succeeds.
    Delay(Duration),
    /// Panics (a buggy channel).
    Panic,
}

/// One recorded call.
#[derive(Debug, Clone)]
pub struct Call {
    /// What the channel was handed.
    pub delivery: Delivery,
    /// What it did.
    pub step: Step,
    /// When it was called, on tokio's (pausable) clock.
    pub at: tokio::time::Instant,
}

/// A channel that follows a script and records every call.
#[derive(Debug, Clone)]
pub struct RecordingChannel {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    script: Mutex<VecDeque<Step>>,
    otherwise: Mutex<Step>,
    calls: Mutex<Vec<Call>>,
    called: Notify,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// Decrements the in-flight count when an attempt ends, even by cancellation.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Default for RecordingChannel {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordingChannel {
    /// A channel that succeeds on every attempt.
    pub fn new() -> Self {
        RecordingChannel {
            inner: Arc::new(Inner {
                script: Mutex::new(VecDeque::new()),
                otherwise: Mutex::new(Step::Succeed),
                calls: Mutex::new(Vec::new()),
                called: Notify::new(),
                in_flight: AtomicUsize::new(0),
                max_in_flight: AtomicUsize::new(0),
            }),
        }
    }

    /// Appends one scripted attempt.
    pub fn then(self, step: Step) -> Self {
        self.inner.script.lock().unwrap().push_back(step);
        self
    }

    /// Appends `n` copies of a scripted attempt.
    pub fn then_n(self, n: usize, step: Step) -> Self {
        for _ in 0..n {
            self.inner.script.lock().unwrap().push_back(step.clone());
        }
        self
    }

    /// What every attempt does once the script is used up (default: succeed).
    pub fn otherwise(self, step: Step) -> Self {
        *self.inner.otherwise.lock().unwrap() = step;
        self
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.calls.lock().unwrap().clone()
    }

    /// How many calls so far.
    pub fn call_count(&self) -> usize {
        self.inner.calls.lock().unwrap().len()
    }

    /// The most attempts that ever ran at once.
    pub fn max_in_flight(&self) -> usize {
        self.inner.max_in_flight.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` calls were made.
    pub async fn wait_for_calls(&self, n: usize) {
        loop {
            let notified = self.inner.called.notified();
            if self.call_count() >= n {
                return;
            }
            notified.await;
        }
    }
}

#[async_trait]
impl Channel for RecordingChannel {
    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt, DeliveryError> {
        let step = {
            let mut script = self.inner.script.lock().unwrap();
            script
                .pop_front()
                .unwrap_or_else(|| self.inner.otherwise.lock().unwrap().clone())
        };
        let now = self.inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.inner.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let _in_flight = InFlight(&self.inner.in_flight);
        self.inner.calls.lock().unwrap().push(Call {
            delivery: delivery.clone(),
            step: step.clone(),
            at: tokio::time::Instant::now(),
        });
        self.inner.called.notify_waiters();
        match step {
            Step::Succeed => Ok(Receipt::new(format!("recorded {}", delivery.id))),
            Step::Retryable(retry_after) => Err(DeliveryError::Retryable {
                reason: format!("scripted retryable failure (attempt {})", delivery.attempt),
                retry_after,
            }),
            Step::Permanent => Err(DeliveryError::permanent("scripted permanent failure")),
            Step::Gone => Err(DeliveryError::gone("scripted gone: endpoint removed")),
            Step::Throttled(retry_after) => Err(DeliveryError::throttled(
                format!("scripted throttled (attempt {})", delivery.attempt),
                retry_after,
            )),
            Step::Hang => std::future::pending().await,
            Step::Delay(d) => {
                tokio::time::sleep(d).await;
                Ok(Receipt::new("recorded after a delay"))
            }
            Step::Panic => panic!("scripted panic"),
        }
    }
}
