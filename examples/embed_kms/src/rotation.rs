//! The rotation loop's body: rotate every due key, each in its own
//! transaction together with its notification (the transactional outbox).
//!
//! Why one transaction: if the KMS committed the rotation and crashed before
//! `emit`, nobody would hear about it; if it emitted first and the rotation
//! then rolled back, people would be told about a rotation that never
//! happened. With `SqlStore::emit_in` both rows commit together or not at all.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use clarion::event::{KeyEvent, RotationFailure, RotationSuccess};
use clarion::sql::{SqliteStore, sqlx};
use clarion::{EmitError, EmitOutcome, Notifier};

use crate::hsm::SimulatedHsm;
use crate::keys::{Key, Keys};

/// Why a tick stopped early. The key being rotated was left as it was.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// The KMS's database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// clarion refused the event (e.g. invalid; the error names the field).
    #[error("notification: {0}")]
    Emit(#[from] EmitError),
}

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Keys rotated.
    pub rotated: usize,
    /// Rotations that failed (tried again next tick).
    pub failed: usize,
}

/// Rotates due keys and tells clarion.
#[derive(Debug)]
pub struct Rotator {
    store: SqliteStore,
    notifier: Notifier,
    keys: Keys,
    hsm: SimulatedHsm,
    /// When a failed rotation is tried again (reported in the event).
    retry_in: Duration,
}

impl Rotator {
    /// A rotator writing to `store`'s database, reporting through `notifier`.
    pub fn new(
        store: SqliteStore,
        notifier: Notifier,
        keys: Keys,
        hsm: SimulatedHsm,
        retry_in: Duration,
    ) -> Self {
        Rotator {
            store,
            notifier,
            keys,
            hsm,
            retry_in,
        }
    }

    /// Rotates every key due at `now`.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<TickReport, RotationError> {
        let mut report = TickReport::default();
        for key in self.keys.due_by(now).await? {
            match self.rotate(&key, now).await? {
                Rotation::Done => report.rotated += 1,
                Rotation::Failed => report.failed += 1,
            }
        }
        Ok(report)
    }

    /// One key: ask the HSM, record the result and queue the notification in
    /// one transaction, commit, then wake the dispatcher.
    async fn rotate(&self, key: &Key, now: DateTime<Utc>) -> Result<Rotation, RotationError> {
        // The store's write pool: on SQLite its single writer connection.
        // While this transaction holds it, do not call `notifier.emit` (it
        // needs the same connection); `emit_in` writes on the transaction.
        let mut tx = self.store.pool().begin().await?;
        let (kind, event) = match self.hsm.generate(&key.id) {
            Ok(()) => {
                let version = Keys::record_rotation(&mut tx, key, now).await?;
                let event = KeyEvent::rotation_success(
                    key.subject(),
                    RotationSuccess {
                        old_id: format!("{}/v{}", key.id, key.version),
                        new_id: format!("{}/v{version}", key.id),
                        next_rotation: Some(now + TimeDelta::days(key.rotation_days)),
                    },
                )
                // One key per version: announced again (a replay, a second
                // KMS instance), clarion answers Duplicate and stores nothing.
                .with_dedup_key(format!("rotated:{}:v{version}", key.id));
                (Rotation::Done, event)
            }
            Err(error) => {
                let attempt = Keys::record_failure(&mut tx, key).await?;
                let event = KeyEvent::rotation_failure(
                    key.subject(),
                    RotationFailure {
                        error: error.to_string(),
                        attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
                        next_attempt: Some(now + self.retry_in),
                    },
                )
                .with_dedup_key(format!(
                    "rotation_failed:{}:v{}:{attempt}",
                    key.id, key.version
                ));
                (Rotation::Failed, event)
            }
        };
        let event = event.with_owner(&key.owner).at(now);
        // Routed, validated and stored exactly as `notifier.emit` would, but
        // on our transaction. An error returns here and drops `tx`: the
        // rotation is rolled back with it, so it is retried next tick.
        let outcome = self.store.emit_in(&self.notifier, &mut tx, &event).await?;
        tx.commit().await?;
        // Only now are the deliveries visible: wake the dispatcher instead of
        // waiting for its next poll.
        self.notifier.wake();
        if let EmitOutcome::Duplicate { .. } = outcome {
            tracing::debug!(key = %key.id, "already announced");
        }
        Ok(kind)
    }
}

/// How one key's rotation went.
enum Rotation {
    Done,
    Failed,
}
