//! The store contracts: the outbox (deliveries and their state machine) and
//! the inbox (notifications per owner).
//!
//! ```text
//!            claim                 complete(Sent)
//! pending ──────────▶ in_flight ─────────────────▶ sent
//!    ▲   ◀──────────────  │  │
//!    │ complete(Retry)    │  └──────────────────▶ dead ──requeue──▶ pending
//!    │                    │     complete(Dead)
//!    └── lease expires: claimable again (same status, new token)
//! ```
//!
//! A claim hands out a fresh lease token; an outcome is accepted only under
//! the delivery's current token (fencing), so a slow worker whose lease
//! expired and was re-claimed cannot overwrite the newer attempt. `attempts`
//! counts completed attempts: it grows by one with every outcome, and is reset
//! by requeue. No other transition exists; stores enforce this and the
//! testkit's conformance suite checks it for every store.
//!
//! Every method takes the time it should consider "now" from the caller's
//! [`crate::clock::Clock`], so behaviour under time is testable on every store.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::channel::{Delivery, Receipt};
use crate::notification::Notification;

mod batch;

pub use batch::{MAX_BATCH, check_batch};

/// Where a delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for `next_attempt_at`.
    Pending,
    /// Claimed by a worker until `lease_until`.
    InFlight,
    /// Delivered (final).
    Sent,
    /// Given up on, with `last_error` (final until requeued).
    Dead,
}

impl DeliveryStatus {
    /// Every status.
    pub const ALL: [DeliveryStatus; 4] = [
        DeliveryStatus::Pending,
        DeliveryStatus::InFlight,
        DeliveryStatus::Sent,
        DeliveryStatus::Dead,
    ];

    /// The wire and column name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::InFlight => "in_flight",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Dead => "dead",
        }
    }

    /// Whether the delivery is finished (sent or dead).
    pub fn is_final(self) -> bool {
        matches!(self, DeliveryStatus::Sent | DeliveryStatus::Dead)
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeliveryStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                format!("unknown delivery status {s:?} (expected pending, in_flight, sent or dead)")
            })
    }
}

/// A delivery as the store keeps it (the admin view).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// Delivery id (UUIDv7); also the source of its idempotency key.
    pub id: Uuid,
    /// The notification delivered.
    pub notification_id: Uuid,
    /// The configured channel name.
    pub channel: String,
    /// Where it is in its life.
    pub status: DeliveryStatus,
    /// Completed attempts.
    pub attempts: u32,
    /// When it is next due (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Until when its current claim holds (in flight only).
    pub lease_until: Option<DateTime<Utc>>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was sent.
    pub sent_at: Option<DateTime<Utc>>,
    /// What the peer answered when it was sent.
    pub receipt: Option<String>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When its state last changed.
    pub updated_at: DateTime<Utc>,
}

impl DeliveryRecord {
    /// The key receivers see for this delivery (the `webhook-id` header, the
    /// e-mail `Message-ID`), as [`Delivery::idempotency_key`] gives it.
    pub fn idempotency_key(&self) -> String {
        crate::channel::idempotency_key(self.id)
    }
}

/// A notification to store, with the channels it was routed to.
#[derive(Debug, Clone)]
pub struct NewNotification {
    /// The notification (its id, event and creation time).
    pub notification: Notification,
    /// One delivery is created per channel; empty for an unrouted event.
    pub channels: Vec<String>,
}

/// What `enqueue` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored, with one delivery per channel (in the order given).
    Created {
        /// The notification's id.
        notification_id: Uuid,
        /// The deliveries' ids.
        deliveries: Vec<Uuid>,
    },
    /// A notification with the same dedup key exists; nothing was created.
    Duplicate {
        /// The notification that has the key.
        existing_id: Uuid,
    },
}

/// Proof of a claim: the delivery's lease token at claim time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseToken(pub Uuid);

/// What to claim.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    /// "Now": pending deliveries due by then (`next_attempt_at <= now`) and
    /// leases expired by then (`lease_until <= now`) qualify.
    pub now: DateTime<Utc>,
    /// How long the claim is exclusive.
    pub lease: Duration,
    /// At most this many.
    pub limit: usize,
    /// Skip deliveries on these channels (they are saturated here).
    pub exclude_channels: Vec<String>,
}

/// A claimed delivery, ready to attempt.
#[derive(Debug, Clone)]
pub struct Claim {
    /// What the channel gets; `attempt` is the number of this attempt.
    pub delivery: Delivery,
    /// Needed to record the outcome.
    pub token: LeaseToken,
    /// When the claim expires.
    pub lease_until: DateTime<Utc>,
    /// When the delivery was enqueued (for the retry policy's maximum age).
    pub created_at: DateTime<Utc>,
}

/// The result of an attempt, to record.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Delivered.
    Sent {
        /// What the peer answered.
        receipt: Receipt,
        /// When.
        at: DateTime<Utc>,
    },
    /// Failed; try again at `next_attempt_at`.
    Retry {
        /// Why it failed.
        error: String,
        /// When to try again.
        next_attempt_at: DateTime<Utc>,
        /// When the attempt ended.
        at: DateTime<Utc>,
    },
    /// Failed for good.
    Dead {
        /// Why.
        error: String,
        /// When.
        at: DateTime<Utc>,
    },
}

/// What `requeue` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeued {
    /// The dead delivery is pending again, attempts reset, due now.
    Requeued,
    /// Only dead deliveries can be requeued; this one is in another state.
    NotDead(DeliveryStatus),
    /// No delivery has this id.
    NotFound,
}

/// Filters for listing deliveries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    /// Only this status.
    pub status: Option<DeliveryStatus>,
    /// Only this channel.
    pub channel: Option<String>,
}

/// A page request: newest first, after the cursor (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// At most this many items.
    pub limit: usize,
    /// The `next` of the previous page.
    pub after: Option<Uuid>,
}

impl PageRequest {
    /// The first page of `limit` items.
    pub fn first(limit: usize) -> Self {
        PageRequest { limit, after: None }
    }
}

/// One page of a newest-first listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// The cursor of the next page; `None` on the last page, also when that
    /// page is exactly full (a listing never ends with an empty page).
    pub next: Option<Uuid>,
}

/// How many deliveries a channel has in a status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCount {
    /// The channel.
    pub channel: String,
    /// The status.
    pub status: DeliveryStatus,
    /// How many.
    pub count: u64,
}

/// A store failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The outcome was written under a lease token that is no longer the
    /// delivery's: its claim expired and another worker took it, or it was
    /// already completed. The outcome was not recorded.
    #[error(
        "delivery {0}: the lease is no longer held by this worker (it expired and was \
         claimed again, or the delivery was already completed); the outcome was not recorded"
    )]
    StaleLease(Uuid),
    /// The request cannot be stored as given (too long, malformed …).
    #[error("invalid {field}: {message}")]
    Invalid {
        /// The offending field.
        field: String,
        /// Why.
        message: String,
    },
    /// The backend failed (connection lost, deadlock, disk full …).
    #[error("store backend error: {message}")]
    Backend {
        /// What the backend said (never a credential).
        message: String,
        /// Whether trying again may succeed.
        retryable: bool,
    },
}

impl StoreError {
    /// A backend error.
    pub fn backend(message: impl Into<String>, retryable: bool) -> Self {
        StoreError::Backend {
            message: message.into(),
            retryable,
        }
    }
}

/// The outbox: notifications and their deliveries, with the state machine.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Stores the notification and one pending delivery per channel, due at
    /// the notification's `created_at`, atomically; or reports the
    /// notification that already holds its dedup key and stores nothing.
    async fn enqueue(&self, new: NewNotification) -> Result<Enqueued, StoreError>;

    /// Stores up to [`MAX_BATCH`] notifications in one transaction, all or
    /// nothing: one [`Enqueued`] per input, in order, or an error and nothing
    /// stored. Of two inputs with one dedup key the later is a duplicate of
    /// the earlier. See [`check_batch`] for what is refused up front.
    async fn enqueue_batch(&self, batch: Vec<NewNotification>)
    -> Result<Vec<Enqueued>, StoreError>;

    /// Which of `keys` are held by a stored notification (one bulk lookup;
    /// any number of keys). Lets a deadline re-scan skip what it warned of.
    async fn taken_dedup_keys(
        &self,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError>;

    /// Claims up to `limit` deliveries that are pending and due, or in flight
    /// with an expired lease, oldest due first: each gets a fresh lease token
    /// and `lease_until = now + lease`. A delivery is never handed to two
    /// claimers while its lease holds.
    async fn claim(&self, request: ClaimRequest) -> Result<Vec<Claim>, StoreError>;

    /// Records an attempt's outcome under the claim's token
    /// ([`StoreError::StaleLease`] if the token is not current, the delivery
    /// is not in flight, or it does not exist). An expired lease alone does
    /// not make the token stale: only a new claim (or a recorded outcome) does.
    async fn complete(
        &self,
        delivery_id: Uuid,
        token: LeaseToken,
        outcome: Outcome,
    ) -> Result<(), StoreError>;

    /// Makes a dead delivery pending again, due `now`, with attempts reset.
    async fn requeue(&self, delivery_id: Uuid, now: DateTime<Utc>) -> Result<Requeued, StoreError>;

    /// One delivery.
    async fn delivery(&self, delivery_id: Uuid) -> Result<Option<DeliveryRecord>, StoreError>;

    /// Deliveries matching `filter`, newest first.
    async fn deliveries(
        &self,
        filter: &DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<DeliveryRecord>, StoreError>;

    /// Delivery counts by channel and status (zero counts omitted).
    async fn counts(&self) -> Result<Vec<StatusCount>, StoreError>;

    /// Deletes up to `limit` notifications created before `before` whose
    /// deliveries are all final (or that have none), with their deliveries;
    /// returns how many notifications it deleted. Call repeatedly until 0.
    async fn purge(&self, before: DateTime<Utc>, limit: usize) -> Result<u64, StoreError>;
}

/// The inbox: an owner's notifications and their read state. Every method is
/// scoped to the owner: another owner's notification behaves as unknown.
#[async_trait]
pub trait InboxStore: Send + Sync {
    /// The owner's notifications, newest first.
    async fn notifications(
        &self,
        owner: &str,
        page: PageRequest,
    ) -> Result<Page<Notification>, StoreError>;

    /// One of the owner's notifications.
    async fn notification(&self, owner: &str, id: Uuid)
    -> Result<Option<Notification>, StoreError>;

    /// How many of the owner's notifications are unread.
    async fn unread_count(&self, owner: &str) -> Result<u64, StoreError>;

    /// Marks one of the owner's notifications read (keeping the first read
    /// time); `false` when the id is unknown or someone else's.
    async fn mark_read(
        &self,
        owner: &str,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Marks all the owner's notifications read; returns how many changed.
    async fn mark_all_read(&self, owner: &str, now: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// A complete store: outbox and inbox over the same notifications.
pub trait NotificationsStore: OutboxStore + InboxStore {}

impl<T: OutboxStore + InboxStore> NotificationsStore for T {}
