//! Time as the store sees it: injected, so tests control it.
//!
//! Every timestamp clarion writes (created_at, next_attempt_at, lease_until,
//! sent_at …) comes from a [`Clock`]. Production uses [`SystemClock`]; tests
//! use [`TokioClock`], which follows tokio's clock, so with
//! `#[tokio::test(start_paused = true)]` the stored timestamps and the
//! dispatcher's sleeps and timeouts move together and no test sleeps for real.
//! Tests that talk to real servers over sockets cannot pause tokio (its
//! auto-advance would fire I/O timeouts); they use [`ManualClock`], which
//! stands still until the test advances it, so a retry scheduled "in 2 s" is
//! not claimed before the test says 2 s have passed.
//! Timestamps are truncated to microseconds, the precision SQL stores keep.

use std::fmt::Debug;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// A source of "now".
pub trait Clock: Send + Sync + Debug {
    /// The current time, truncated to microseconds.
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        micros(Utc::now())
    }
}

/// Wall-clock time at creation, advanced by tokio's (pausable) clock.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: DateTime<Utc>,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `origin` now and advances with tokio's clock.
    pub fn starting_at(origin: DateTime<Utc>) -> Self {
        TokioClock {
            origin: micros(origin),
            start: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::starting_at(Utc::now())
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = TimeDelta::from_std(self.start.elapsed()).unwrap_or(TimeDelta::MAX);
        micros(self.origin + elapsed)
    }
}

/// A clock that moves only when told to. Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use clarion_core::clock::{Clock, ManualClock};
/// let clock = ManualClock::default();
/// let t0 = clock.now();
/// clock.advance(Duration::from_secs(2));
/// assert_eq!((clock.now() - t0).num_seconds(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: std::sync::Arc<std::sync::Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock standing at `at`.
    pub fn starting_at(at: DateTime<Utc>) -> Self {
        ManualClock {
            now: std::sync::Arc::new(std::sync::Mutex::new(micros(at))),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now = micros(add(*now, by));
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::starting_at(Utc::now())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}

/// `t + d`, saturating instead of overflowing.
pub(crate) fn add(t: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
