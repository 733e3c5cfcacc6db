//! Batch emit: many events, one transaction per [`MAX_BATCH`].
//!
//! A rotation wave (a KMS rotating a thousand keys at midnight) or a deadline
//! scan pays one durable commit per batch instead of one per event. The
//! steps are `emit`'s, per event, with the store write shared:
//!
//! 1. every event is validated ([`crate::validation`]), routed and stamped
//!    like [`Notifier::prepare`] does; an invalid one gets its own
//!    [`EmitError::InvalidEvent`] and is left out;
//! 2. the valid ones go to [`OutboxStore::enqueue_batch`](crate::store::OutboxStore::enqueue_batch)
//!    in chunks of at most [`MAX_BATCH`], each chunk one all-or-nothing
//!    transaction;
//! 3. each stored event is reported as `emit` reports it (the same
//!    [`EmitOutcome`], `clarion_events_total` count and unrouted warning);
//!    the whole call runs in a `clarion.emit_batch` span, each event in its
//!    `clarion.emit` span.

use std::future::Future;

use tracing::{Instrument, info_span};

use super::prepared::Finish;
use super::{EmitError, EmitOutcome, Notifier, Prepared};
use crate::event::Event;
use crate::store::{Enqueued, NewNotification, StoreError};

pub use crate::store::MAX_BATCH;

/// One result per event of a batch, in the events' order.
pub type BatchResults = Vec<Result<EmitOutcome, EmitError>>;

/// Events validated, routed and stamped by [`Notifier::prepare_batch`], not
/// yet stored: the batch counterpart of [`Prepared`], for the transactional
/// outbox (clarion-sql's `SqlStore::emit_batch_in` uses it).
#[must_use = "nothing is stored until `enqueue_with` runs"]
#[derive(Debug)]
pub struct PreparedBatch {
    slots: Vec<Result<Prepared, EmitError>>,
}

impl PreparedBatch {
    /// How many events were valid (and will be stored).
    pub fn valid(&self) -> usize {
        self.slots.iter().filter(|s| s.is_ok()).count()
    }

    /// Stores the valid events with `enqueue` — one call, e.g.
    /// `|batch| sql_store.enqueue_batch_in(&mut tx, batch)` — and reports one
    /// result per event: its `InvalidEvent`, or what `emit` would have
    /// answered. `Err` means the store failed and none of the batch was
    /// stored. `enqueue` is not called when no event is valid. Like
    /// [`Prepared::enqueue_with`], it does not wake the dispatcher.
    ///
    /// `enqueue` gets at most as many notifications as there were events;
    /// a store's `enqueue_batch` takes at most [`MAX_BATCH`], so prepare at
    /// most that many per call (as [`Notifier::emit_batch`] does).
    pub async fn enqueue_with<F, Fut>(self, enqueue: F) -> Result<BatchResults, EmitError>
    where
        F: FnOnce(Vec<NewNotification>) -> Fut,
        Fut: Future<Output = Result<Vec<Enqueued>, StoreError>>,
    {
        let mut news = Vec::with_capacity(self.slots.len());
        let mut slots: Vec<Result<Finish, EmitError>> = Vec::with_capacity(self.slots.len());
        for slot in self.slots {
            slots.push(slot.map(|prepared| {
                let (new, finish) = prepared.split();
                news.push(new);
                finish
            }));
        }
        let stored = news.len();
        let mut answers = if stored == 0 {
            Vec::new()
        } else {
            enqueue(news).await?
        };
        if answers.len() != stored {
            return Err(EmitError::Store(StoreError::backend(
                format!(
                    "the store answered {} results for a batch of {stored}",
                    answers.len()
                ),
                false,
            )));
        }
        answers.reverse();
        Ok(slots
            .into_iter()
            .map(|slot| {
                let finish = slot?;
                let enqueued = answers.pop().expect("one answer per valid event");
                Ok(finish.report(enqueued))
            })
            .collect())
    }
}

impl Notifier {
    /// Emits many events with one store transaction per [`MAX_BATCH`]
    /// (1,000) events: the fast path for rotation waves and scans.
    ///
    /// Every event is validated first with the same check as
    /// [`emit`](Self::emit); an invalid one gets its own
    /// [`EmitError::InvalidEvent`] in its slot and the others are still
    /// stored. The valid ones are stored in transactions of at most
    /// `MAX_BATCH` notifications; of two events with one dedup key the
    /// later is [`EmitOutcome::Duplicate`] of the earlier.
    ///
    /// - `Ok(results)`: one result per event, in order. An
    ///   `Err(EmitError::Store(_))` in a slot means that event was not stored:
    ///   in a call larger than `MAX_BATCH`, a transaction after the first
    ///   failed; that transaction and every later one were not stored (the
    ///   store is not tried again within the call), the earlier ones are.
    /// - `Err(_)`: the first transaction failed; nothing of the call was
    ///   stored. Retry the whole call (dedup keys make retries safe).
    ///
    /// When it returns, every `Enqueued` and `Unrouted` event is durable.
    ///
    /// ```
    /// use clarion_core::event::*;
    /// use clarion_core::memory::MemoryStore;
    /// use clarion_core::notifier::{EmitError, EmitOutcome, Notifier};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let notifier = Notifier::builder().store(MemoryStore::new()).build().unwrap();
    /// let rotated = |id: &str| KeyEvent::rotation_success(
    ///     Subject::new(id, ObjectType::SymmetricKey),
    ///     RotationSuccess { old_id: "v1".into(), new_id: "v2".into(), next_rotation: None },
    /// )
    /// .with_dedup_key(format!("rotated:{id}:v2"));
    /// let events = [rotated("key-1"), rotated(""), rotated("key-1")];
    /// let results = notifier.emit_batch(&events).await.unwrap();
    /// let Ok(EmitOutcome::Unrouted { id }) = results[0] else { panic!() };
    /// assert!(matches!(&results[1], Err(EmitError::InvalidEvent { field, .. }) if field == "subject.id"));
    /// assert_eq!(results[2], Ok(EmitOutcome::Duplicate { existing_id: id }));
    /// # });
    /// ```
    pub async fn emit_batch<E: Event>(&self, events: &[E]) -> Result<BatchResults, EmitError> {
        let span = info_span!("clarion.emit_batch", events = events.len());
        async {
            let store = &self.inner.store;
            let mut results = Vec::with_capacity(events.len());
            for chunk in events.chunks(MAX_BATCH) {
                let batch = self.prepare_batch(chunk);
                match batch.enqueue_with(|news| store.enqueue_batch(news)).await {
                    Ok(chunk_results) => results.extend(chunk_results),
                    Err(error) if results.is_empty() => return Err(error),
                    Err(error) => {
                        tracing::warn!(%error, stored = results.len(), "a batch transaction failed; the rest of the call was not stored");
                        let rest = &events[results.len()..];
                        results.extend(rest.iter().map(|event| {
                            self.validate(&event.to_key_event())?;
                            Err(error.clone())
                        }));
                        break;
                    }
                }
            }
            if results
                .iter()
                .any(|r| matches!(r, Ok(EmitOutcome::Enqueued { .. })))
            {
                self.wake();
            }
            Ok(results)
        }
        .instrument(span)
        .await
    }

    /// The first half of [`emit_batch`](Self::emit_batch), for the
    /// transactional outbox: validates, routes and stamps every event
    /// (invalid ones keep their error), storing nothing. Store the batch
    /// with [`PreparedBatch::enqueue_with`] in your transaction, commit,
    /// then [`wake`](Self::wake).
    pub fn prepare_batch<E: Event>(&self, events: &[E]) -> PreparedBatch {
        PreparedBatch {
            slots: events.iter().map(|event| self.prepare(event)).collect(),
        }
    }
}
