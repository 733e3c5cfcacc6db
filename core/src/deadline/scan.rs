//! A scan at scale: warnings in batches, and a re-scan that finds nothing
//! new stays cheap.
//!
//! For each batch of up to [`MAX_BATCH`] subjects that crossed a threshold,
//! the scan computes the dedup keys (subject, deadline, threshold) and asks
//! the store in one lookup ([`OutboxStore::taken_dedup_keys`]) which are
//! already held; only the warnings not given yet are built and stored, with
//! one [`Notifier::emit_batch`] (one transaction). A KMS with a million keys
//! due within the window thus pays, on an hourly re-scan, a thousand indexed
//! lookups and no writes, instead of a million emits answered `Duplicate`.
//!
//! Why a lookup rather than a watermark ("warned up to T"): the dedup keys
//! are already the source of truth, shared by every instance and surviving
//! restarts; a watermark would be a second record to keep consistent with
//! them, and deadlines moved by a rotation, or a subject added with a
//! deadline already near, would fall behind it. The lookup is only an
//! optimisation: the store's dedup still decides, so two watchers scanning at
//! once still warn once (the slower one's emit answers `Duplicate`).
//!
//! [`OutboxStore::taken_dedup_keys`]: crate::store::OutboxStore::taken_dedup_keys

use chrono::{DateTime, Utc};

use super::{Deadline, DeadlineWatcher, ScanError, ScanReport, dedup_key};
use crate::notifier::{EmitError, EmitOutcome, MAX_BATCH, Notifier};

pub(super) async fn warn(
    watcher: &DeadlineWatcher,
    notifier: &Notifier,
    due: &[Deadline],
    now: DateTime<Utc>,
) -> Result<ScanReport, ScanError> {
    let mut report = ScanReport {
        listed: due.len(),
        ..Default::default()
    };
    let crossed: Vec<(&Deadline, u32)> = due
        .iter()
        .filter_map(|d| watcher.threshold(d, now).map(|t| (d, t)))
        .collect();
    let mut first_error = None;
    // Keep going after an error: one bad subject or batch must not starve
    // the others; the next scan retries what failed.
    let mut fail = |subject: &str, error: EmitError| {
        tracing::warn!(subject, %error, "deadline warning not emitted");
        first_error.get_or_insert(ScanError::Emit {
            subject: subject.to_owned(),
            error,
        });
    };
    for chunk in crossed.chunks(MAX_BATCH) {
        let keys: Vec<String> = chunk.iter().map(|(d, t)| dedup_key(d, *t)).collect();
        let taken = match notifier.store().taken_dedup_keys(&keys).await {
            Ok(taken) => taken,
            Err(error) => {
                fail(&chunk[0].0.subject.id, error.into());
                continue;
            }
        };
        report.already_warned += taken.len();
        let mut subjects = Vec::new();
        let events: Vec<_> = chunk
            .iter()
            .zip(keys)
            .filter(|(_, key)| !taken.contains(key))
            .map(|((deadline, threshold), key)| {
                subjects.push(deadline.subject.id.as_str());
                watcher.event(deadline, *threshold, now, key)
            })
            .collect();
        if events.is_empty() {
            continue;
        }
        match notifier.emit_batch(&events).await {
            Ok(results) => {
                for (subject, result) in subjects.iter().zip(results) {
                    match result {
                        Ok(EmitOutcome::Duplicate { .. }) => report.already_warned += 1,
                        Ok(_) => report.warned += 1,
                        Err(error) => fail(subject, error),
                    }
                }
            }
            Err(error) => fail(subjects[0], error),
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(report),
    }
}
