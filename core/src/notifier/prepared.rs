//! [`Prepared`]: `emit` cut in two for the transactional outbox. The first
//! half (validate, route, stamp) runs in [`Notifier::prepare`]; the second
//! (store, then turn the store's answer into an [`EmitOutcome`] with its
//! metric and log line) runs in [`Prepared::enqueue_with`], on whatever
//! transaction the caller holds. `emit` itself is `prepare` + `enqueue_with`
//! on the notifier's store, so both paths behave the same by construction.

use std::future::Future;

use tracing::{Instrument, Span, debug, info_span};
use uuid::Uuid;

use super::{EmitError, EmitOutcome, Notifier};
use crate::event::KeyEvent;
use crate::notification::Notification;
use crate::store::{Enqueued, NewNotification, StoreError};
use crate::telemetry;

/// An event validated, routed and stamped by [`Notifier::prepare`], not yet
/// stored. Hand it to your store with [`enqueue_with`](Self::enqueue_with).
#[must_use = "nothing is stored until `enqueue_with` runs"]
pub struct Prepared {
    notifier: Notifier,
    new: NewNotification,
    /// The bounded metric label of the event's kind.
    kind: String,
    /// `clarion.emit`, covering both halves.
    span: Span,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("id", &self.new.notification.id)
            .field("kind", &self.kind)
            .field("channels", &self.new.channels)
            .finish_non_exhaustive()
    }
}

impl Prepared {
    pub(super) fn new(notifier: &Notifier, event: KeyEvent) -> Result<Self, EmitError> {
        let kind = (notifier.inner.kind_label)(&event.kind);
        let span = info_span!("clarion.emit", kind = %kind, subject_id = %event.subject.id);
        let channels = span.in_scope(|| {
            notifier.validate(&event)?;
            Ok::<_, EmitError>(notifier.inner.router.route(&event))
        })?;
        let notification = Notification::new(event, notifier.inner.clock.now());
        Ok(Prepared {
            notifier: notifier.clone(),
            new: NewNotification {
                notification,
                channels,
            },
            kind,
            span,
        })
    }

    /// The notification's id (the inbox's id, and the one outcomes report).
    pub fn id(&self) -> Uuid {
        self.new.notification.id
    }

    /// The channels it was routed to; empty when no route matched.
    pub fn channels(&self) -> &[String] {
        &self.new.channels
    }

    /// The notification that will be stored.
    pub fn notification(&self) -> &Notification {
        &self.new.notification
    }

    /// Stores the notification with `enqueue` — typically your store's
    /// transactional insert, e.g. `|new| sql_store.enqueue_in(&mut tx, new)` —
    /// and reports the outcome exactly as [`Notifier::emit`] would: the same
    /// [`EmitOutcome`], `clarion_events_total` count, unrouted warning and
    /// `clarion.emit` span.
    ///
    /// It does not wake the dispatcher: your transaction is not committed yet,
    /// so there would be nothing to claim. Call [`Notifier::wake`] after the
    /// commit. The metric counts the event when the store accepted it; a
    /// transaction rolled back afterwards is not subtracted.
    pub async fn enqueue_with<F, Fut>(self, enqueue: F) -> Result<EmitOutcome, EmitError>
    where
        F: FnOnce(NewNotification) -> Fut,
        Fut: Future<Output = Result<Enqueued, StoreError>>,
    {
        let (new, finish) = self.split();
        let span = finish.span.clone();
        async move { Ok(finish.report(enqueue(new).await?)) }
            .instrument(span)
            .await
    }

    /// The notification to store, and what reports the store's answer.
    pub(super) fn split(self) -> (NewNotification, Finish) {
        let Prepared {
            notifier,
            new,
            kind,
            span,
        } = self;
        let channels = new.channels.clone();
        (
            new,
            Finish {
                notifier,
                kind,
                channels,
                span,
            },
        )
    }
}

/// The second half of `emit` once the store answered: the outcome, its
/// metric and its log line (shared by single and batch emits).
pub(super) struct Finish {
    notifier: Notifier,
    kind: String,
    channels: Vec<String>,
    pub(super) span: Span,
}

impl Finish {
    pub(super) fn report(self, enqueued: Enqueued) -> EmitOutcome {
        let Finish {
            notifier,
            kind,
            channels,
            span,
        } = self;
        let _entered = span.enter();
        match enqueued {
            Enqueued::Duplicate { existing_id } => {
                telemetry::event(&kind, "duplicate");
                debug!(%existing_id, "duplicate event");
                EmitOutcome::Duplicate { existing_id }
            }
            Enqueued::Created {
                notification_id, ..
            } if channels.is_empty() => {
                telemetry::event(&kind, "unrouted");
                notifier.log_unrouted(&kind);
                EmitOutcome::Unrouted {
                    id: notification_id,
                }
            }
            Enqueued::Created {
                notification_id, ..
            } => {
                telemetry::event(&kind, "enqueued");
                EmitOutcome::Enqueued {
                    id: notification_id,
                    channels,
                }
            }
        }
    }
}
