//! The deadline watcher: `approaching_deadline` warnings at thresholds.
//!
//! The KMS implements [`DeadlineSource`]: "which subjects are due by T, and
//! when, and whose are they". Every `deadlines.scan_interval` the watcher asks
//! for everything due within the largest threshold, and for each subject emits
//! one warning for the **tightest** threshold crossed: with thresholds 30, 7
//! and 1 days, a key due in 5 days gets the 7-day warning, not the 30- and
//! 7-day warnings together. The dedup key is (subject, deadline, threshold),
//! so a rescan, a restart or a second instance on the same store never warns
//! twice, and a new deadline (after a rotation) starts a new cycle.
//!
//! A scan works in batches of [`MAX_BATCH`](crate::notifier::MAX_BATCH)
//! warnings (`deadline/scan.rs`): one bulk dedup lookup, then one `emit_batch` of
//! the warnings not given yet, so a re-scan that finds nothing new costs a
//! lookup per thousand subjects and writes nothing.

use std::error::Error as StdError;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use crate::config::DeadlinesConfig;
use crate::event::{ApproachingDeadline, KeyEvent, Labels, Subject};
use crate::notifier::{EmitError, Notifier};

mod scan;

/// A subject's next rotation or renewal deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    /// What is due.
    pub subject: Subject,
    /// When it is due.
    pub deadline: DateTime<Utc>,
    /// Whose inbox the warning goes to.
    pub owner: Option<String>,
    /// Routing labels for the warning.
    pub labels: Labels,
}

/// An error from the KMS's deadline listing.
pub type SourceError = Box<dyn StdError + Send + Sync>;

/// Where the watcher learns deadlines; implemented by the KMS.
///
/// ```
/// use async_trait::async_trait;
/// use chrono::{DateTime, Utc};
/// use clarion_core::deadline::{Deadline, DeadlineSource, SourceError};
///
/// struct Keys(Vec<Deadline>);
///
/// #[async_trait]
/// impl DeadlineSource for Keys {
///     async fn due_by(&self, until: DateTime<Utc>) -> Result<Vec<Deadline>, SourceError> {
///         Ok(self.0.iter().filter(|d| d.deadline <= until).cloned().collect())
///     }
/// }
/// ```
#[async_trait]
pub trait DeadlineSource: Send + Sync {
    /// Every subject whose deadline is at or before `until`, overdue ones included.
    async fn due_by(&self, until: DateTime<Utc>) -> Result<Vec<Deadline>, SourceError>;
}

/// What one scan did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Subjects the source listed.
    pub listed: usize,
    /// Warnings emitted.
    pub warned: usize,
    /// Warnings already emitted earlier (by this or another instance).
    pub already_warned: usize,
}

/// Why a scan failed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The notifier was built without a deadline source.
    #[error("no deadline source: pass one to NotifierBuilder::deadline_source")]
    NoSource,
    /// The KMS's listing failed.
    #[error("the deadline source failed: {0}")]
    Source(SourceError),
    /// A warning could not be emitted; the next scan tries again.
    #[error("emitting a deadline warning for {subject} failed: {error}")]
    Emit {
        /// The subject id.
        subject: String,
        /// Why.
        error: EmitError,
    },
}

/// Computes warnings from deadlines and thresholds.
#[derive(Debug, Clone)]
pub struct DeadlineWatcher {
    /// Thresholds in days, largest first.
    thresholds: Vec<u32>,
}

impl DeadlineWatcher {
    /// A watcher for these settings (thresholds in any order).
    pub fn new(config: &DeadlinesConfig) -> Self {
        let mut thresholds = config.thresholds.clone();
        thresholds.sort_unstable_by(|a, b| b.cmp(a));
        thresholds.dedup();
        DeadlineWatcher { thresholds }
    }

    /// How far ahead a scan looks: the largest threshold.
    pub fn window(&self) -> TimeDelta {
        TimeDelta::days(self.thresholds.first().copied().unwrap_or(0).into())
    }

    /// The warning `deadline` warrants at `now`, if any: the tightest
    /// threshold it has crossed.
    pub fn warning(&self, deadline: &Deadline, now: DateTime<Utc>) -> Option<KeyEvent> {
        let threshold = self.threshold(deadline, now)?;
        Some(self.event(deadline, threshold, now, dedup_key(deadline, threshold)))
    }

    /// The tightest threshold (in days) `deadline` has crossed at `now`.
    fn threshold(&self, deadline: &Deadline, now: DateTime<Utc>) -> Option<u32> {
        let remaining = deadline.deadline - now;
        self.thresholds
            .iter()
            .rev()
            .copied()
            .find(|days| remaining <= TimeDelta::days((*days).into()))
    }

    fn event(
        &self,
        deadline: &Deadline,
        threshold: u32,
        now: DateTime<Utc>,
        key: String,
    ) -> KeyEvent {
        let tightest = *self.thresholds.last().expect("at least one threshold");
        let days_remaining = (deadline.deadline - now).num_seconds().div_euclid(86_400);
        let mut event = KeyEvent::approaching_deadline(
            deadline.subject.clone(),
            ApproachingDeadline {
                deadline: deadline.deadline,
                days_remaining,
                threshold_days: threshold,
                final_threshold: threshold == tightest,
            },
        )
        .at(now)
        .with_dedup_key(key);
        event.owner = deadline.owner.clone();
        event.labels = deadline.labels.clone();
        event
    }

    /// Lists what is due within the window and emits the warnings, in
    /// batches: a dedup lookup, then one `emit_batch` per 1,000 warnings.
    pub async fn scan(
        &self,
        notifier: &Notifier,
        source: &dyn DeadlineSource,
        now: DateTime<Utc>,
    ) -> Result<ScanReport, ScanError> {
        let due = source
            .due_by(now + self.window())
            .await
            .map_err(ScanError::Source)?;
        scan::warn(self, notifier, &due, now).await
    }
}

/// The dedup key of `deadline`'s warning at `threshold`: (subject, deadline,
/// threshold).
fn dedup_key(deadline: &Deadline, threshold: u32) -> String {
    format!(
        "approaching_deadline:{:?}:{}:{}:{}d",
        deadline.subject.object_type,
        deadline.subject.id,
        deadline.deadline.to_rfc3339(),
        threshold
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ObjectType;

    fn watcher(thresholds: &[u32]) -> DeadlineWatcher {
        DeadlineWatcher::new(&DeadlinesConfig {
            thresholds: thresholds.to_vec(),
            ..Default::default()
        })
    }

    fn due_in(now: DateTime<Utc>, delta: TimeDelta) -> Deadline {
        Deadline {
            subject: Subject::new("k", ObjectType::Certificate),
            deadline: now + delta,
            owner: Some("alice".into()),
            labels: Labels::new(),
        }
    }

    fn threshold(w: &DeadlineWatcher, d: &Deadline, now: DateTime<Utc>) -> Option<u32> {
        w.warning(d, now)
            .map(|e| e.data_as::<ApproachingDeadline>().unwrap().threshold_days)
    }

    #[test]
    fn only_the_tightest_threshold_fires() {
        let now = Utc::now();
        let w = watcher(&[1, 30, 7]);
        assert_eq!(
            threshold(&w, &due_in(now, TimeDelta::days(5)), now),
            Some(7)
        );
        assert_eq!(threshold(&w, &due_in(now, TimeDelta::days(31)), now), None);
        assert_eq!(
            threshold(&w, &due_in(now, TimeDelta::days(30)), now),
            Some(30)
        );
        assert_eq!(
            threshold(&w, &due_in(now, TimeDelta::hours(3)), now),
            Some(1)
        );
        assert_eq!(
            threshold(&w, &due_in(now, -TimeDelta::days(2)), now),
            Some(1)
        );
        assert_eq!(w.window(), TimeDelta::days(30));
    }

    #[test]
    fn the_last_threshold_is_critical_and_days_round_down() {
        let now = Utc::now();
        let w = watcher(&[30, 7, 1]);
        let event = w.warning(&due_in(now, TimeDelta::hours(12)), now).unwrap();
        assert_eq!(event.severity, crate::event::Severity::Critical);
        let data: ApproachingDeadline = event.data_as().unwrap();
        assert_eq!((data.days_remaining, data.final_threshold), (0, true));
        assert_eq!(event.owner.as_deref(), Some("alice"));
        let early = w
            .warning(&due_in(now, TimeDelta::hours(6 * 24 + 23)), now)
            .unwrap();
        assert_eq!(early.severity, crate::event::Severity::Warning);
        assert_eq!(
            early
                .data_as::<ApproachingDeadline>()
                .unwrap()
                .days_remaining,
            6
        );
        let overdue = w.warning(&due_in(now, -TimeDelta::hours(1)), now).unwrap();
        assert_eq!(
            overdue
                .data_as::<ApproachingDeadline>()
                .unwrap()
                .days_remaining,
            -1
        );
    }

    #[test]
    fn dedup_key_is_subject_deadline_threshold() {
        let now = Utc::now();
        let w = watcher(&[30, 7, 1]);
        let d = due_in(now, TimeDelta::days(5));
        let a = w.warning(&d, now).unwrap().dedup_key;
        let b = w.warning(&d, now + TimeDelta::hours(1)).unwrap().dedup_key;
        assert_eq!(a, b);
        let moved = Deadline {
            deadline: d.deadline + TimeDelta::days(90),
            ..d.clone()
        };
        let c = w
            .warning(&moved, now + TimeDelta::days(89))
            .unwrap()
            .dedup_key;
        assert_ne!(a, c);
    }
}
