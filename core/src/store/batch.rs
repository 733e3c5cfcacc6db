//! The batch half of the outbox contract: [`OutboxStore::enqueue_batch`]
//! (many notifications in one transaction) and
//! [`OutboxStore::taken_dedup_keys`] (which dedup keys are already held, in
//! one lookup), for rotation waves and deadline scans.
//!
//! `enqueue_batch` is all or nothing: either every notification of the
//! batch is stored (or reported a duplicate) and committed together, or the
//! call fails and none of it is stored, so the caller retries the whole
//! batch. Dedup holds inside a batch as between calls: of two notifications
//! with one dedup key, the later one is a duplicate of the earlier (or of the
//! notification that held the key before the batch).
//!
//! [`OutboxStore::enqueue_batch`]: super::OutboxStore::enqueue_batch
//! [`OutboxStore::taken_dedup_keys`]: super::OutboxStore::taken_dedup_keys

use super::{NewNotification, StoreError};

/// Most notifications one `enqueue_batch` call (one transaction) takes;
/// `Notifier::emit_batch` splits larger calls into transactions of at most
/// this many. 1,000: big enough that a transaction's fixed cost (on SQLite a
/// durable commit, on PostgreSQL a WAL flush) is spread thin, small enough
/// that a batch's statements stay within every engine's bound-parameter limit
/// (SQLite: 32,766; 13 per notification row) and a failed batch costs little
/// to retry.
pub const MAX_BATCH: usize = 1_000;

/// Checks a batch before a store writes any of it: at most [`MAX_BATCH`],
/// and every event valid (core's [`validate_event`](crate::validation::validate_event)).
/// The error names the entry, e.g. `batch[3].owner`.
pub fn check_batch(batch: &[NewNotification]) -> Result<(), StoreError> {
    if batch.len() > MAX_BATCH {
        return Err(StoreError::Invalid {
            field: "batch".into(),
            message: format!(
                "has {} notifications; at most {MAX_BATCH} per call",
                batch.len()
            ),
        });
    }
    for (i, new) in batch.iter().enumerate() {
        crate::validation::validate_event(&new.notification.event, None).map_err(|e| {
            StoreError::Invalid {
                field: format!("batch[{i}].{}", e.field),
                message: e.message,
            }
        })?;
    }
    Ok(())
}
