//! The retry policy: when a failed delivery is tried again, and when it is dead.
//!
//! Delay after the n-th failed attempt: `initial_backoff × multiplier^(n-1)`,
//! capped at `max_backoff`, spread by ±`jitter` so that deliveries that failed
//! together do not retry in lock-step. A channel's `retry_after` hint (HTTP
//! `Retry-After`, an SMTP 4xx hint) replaces the computed delay, clamped to
//! `[1s, max_retry_after]`. A delivery is dead when its attempt budget is
//! spent or its next attempt would fall after `max_age` (counted from
//! enqueue); permanent errors are dead at once. The very first failure already
//! schedules the next attempt.
//!
//! With the defaults (10 s, ×2, cap 1 h, ±20 %, 30 attempts, 24 h) the
//! schedule is 10 s, 20 s, 40 s, … 1 h from the ninth retry on: about 1.4 h to
//! reach the cap and about 21 h for the whole budget — close to Svix's
//! published schedule (8 attempts over ~27 h) and, early on, to certctl's
//! 2^n minutes capped at 1 h, but starting faster because a rotation alert is
//! urgent.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock::add;
use crate::config::RetryConfig;

/// What to do after a retryable failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Try again at this time.
    RetryAt(DateTime<Utc>),
    /// Give up; the reason says which bound was hit.
    GiveUp(String),
}

/// The retry policy, from `[delivery.retry]`.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    config: RetryConfig,
}

impl RetryPolicy {
    /// A policy with these settings (validated by [`crate::Config`]).
    pub fn new(config: RetryConfig) -> Self {
        RetryPolicy { config }
    }

    /// The un-jittered delay after the `attempt`-th failure (1-based).
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let c = &self.config;
        let exponent = attempt.saturating_sub(1).min(1000) as i32;
        let secs = c.initial_backoff.as_secs_f64() * c.multiplier.powi(exponent);
        let capped = secs.min(c.max_backoff.as_secs_f64());
        Duration::from_secs_f64(capped)
    }

    /// The delay after the `attempt`-th failure, jittered with `unit`
    /// (a number in `[0, 1)`; 0.5 means no spread).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.base_delay(attempt).as_secs_f64();
        let spread = 1.0 + self.config.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        Duration::from_secs_f64((base * spread).max(0.0))
    }

    /// Decides after the `attempt`-th attempt failed retryably at `now`, for a
    /// delivery enqueued at `created_at`.
    pub fn decide(
        &self,
        attempt: u32,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
        retry_after: Option<Duration>,
    ) -> Decision {
        let c = &self.config;
        if attempt >= c.max_attempts {
            return Decision::GiveUp(format!(
                "gave up after {attempt} attempts (delivery.retry.max_attempts = {})",
                c.max_attempts
            ));
        }
        let delay = match retry_after {
            Some(hint) => hint.clamp(Duration::from_secs(1), c.max_retry_after),
            None => self.delay(attempt, rand::random::<f64>()),
        };
        let at = add(now, delay);
        let expires = add(created_at, c.max_age);
        if at > expires {
            return Decision::GiveUp(format!(
                "gave up after {attempt} attempts: the next attempt would be later than \
                 delivery.retry.max_age ({}) after the notification was created",
                humantime::format_duration(c.max_age)
            ));
        }
        Decision::RetryAt(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::new(RetryConfig::default())
    }

    #[test]
    fn default_schedule_doubles_from_10s_to_the_1h_cap() {
        let p = policy();
        let secs: Vec<u64> = (1..=10).map(|n| p.base_delay(n).as_secs()).collect();
        assert_eq!(secs, [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600]);
        assert_eq!(p.base_delay(29), Duration::from_secs(3600));
        let total: u64 = (1..30).map(|n| p.base_delay(n).as_secs()).sum();
        // ~21 h for the whole budget, as documented.
        assert_eq!(total, 77_110);
    }

    #[test]
    fn jitter_spreads_within_bounds() {
        let p = policy();
        assert_eq!(p.delay(1, 0.5), Duration::from_secs(10));
        assert_eq!(p.delay(1, 0.0), Duration::from_secs(8));
        assert_eq!(p.delay(1, 1.0), Duration::from_secs(12));
    }

    #[test]
    fn first_failure_schedules_a_retry() {
        let now = Utc::now();
        match policy().decide(1, now, now, None) {
            Decision::RetryAt(at) => {
                let d = (at - now).to_std().unwrap();
                assert!(
                    d >= Duration::from_secs(8) && d <= Duration::from_secs(12),
                    "{d:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let now = Utc::now();
        let p = policy();
        let at = |hint| match p.decide(1, now, now, Some(hint)) {
            Decision::RetryAt(at) => (at - now).to_std().unwrap(),
            other => panic!("{other:?}"),
        };
        assert_eq!(at(Duration::from_secs(120)), Duration::from_secs(120));
        assert_eq!(at(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(at(Duration::from_secs(86_400)), Duration::from_secs(3600));
    }

    #[test]
    fn budget_and_age_bound_retries() {
        let now = Utc::now();
        let p = policy();
        match p.decide(30, now, now, None) {
            Decision::GiveUp(reason) => assert!(reason.contains("after 30 attempts"), "{reason}"),
            other => panic!("{other:?}"),
        }
        let created = now - chrono::Duration::hours(24);
        match p.decide(3, created, now, None) {
            Decision::GiveUp(reason) => assert!(reason.contains("max_age (1day)"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}
