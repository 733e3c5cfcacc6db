//! Time as the store sees it: injected, so tests control it.
//!
//! Every timestamp clarion writes (created_at, next_attempt_at, lease_until,
//! sent_at …) comes from a [`Clock`]. Production uses [`SystemClock`]; tests
//! use [`TokioClock`], which follows tokio's clock, so with
//! `#[tokio::test(start_paused = true)]` the stored timestamps and the
//! dispatcher's sleeps and timeouts move together and no test sleeps for real.
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
