//! The [`Channel`] trait: how a notification leaves clarion.
//!
//! A channel knows its protocol, so it classifies its own failures: a
//! [`DeliveryError::Retryable`] is tried again later (honouring `retry_after`
//! within the retry policy's bounds), a [`DeliveryError::Permanent`] goes to
//! the dead-letter queue at once. Two answers concern the whole channel rather
//! than one delivery: [`DeliveryError::Gone`] (the endpoint no longer exists)
//! and [`DeliveryError::Throttled`] (the peer asks the channel to slow down).
//! Until clarion keeps per-channel state, the dispatcher treats `Gone` like
//! `Permanent` (that delivery is dead with its reason) and `Throttled` like
//! `Retryable` (that delivery is retried after `retry_after`); channels return
//! them now so they pause or throttle the channel once that state exists. The dispatcher wraps every `deliver` in its
//! own timeout, so a channel need not, but it must be cancel-safe: dropping the
//! future must not leave shared state broken.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::notification::Notification;

/// One attempt to deliver one notification over one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// The delivery's id; stable across attempts.
    pub id: Uuid,
    /// The configured channel name (not the kind), e.g. `ops-email`.
    pub channel: String,
    /// Which attempt this is, starting at 1.
    pub attempt: u32,
    /// What is being delivered.
    pub notification: Notification,
}

impl Delivery {
    /// The key a receiver uses to drop duplicates: the same on every attempt
    /// of this delivery (the `webhook-id` header, the e-mail `Message-ID`).
    pub fn idempotency_key(&self) -> String {
        idempotency_key(self.id)
    }
}

/// The idempotency key of the delivery `delivery_id` (see
/// [`Delivery::idempotency_key`]).
pub(crate) fn idempotency_key(delivery_id: Uuid) -> String {
    format!("clarion_{}", delivery_id.simple())
}

/// Proof of a successful delivery, kept with the delivery record
/// (an SMTP queue id, an HTTP status …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// What the peer answered, short and human-readable.
    pub detail: Option<String>,
}

impl Receipt {
    /// A receipt carrying the peer's answer.
    pub fn new(detail: impl Into<String>) -> Self {
        Receipt {
            detail: Some(detail.into()),
        }
    }
}

/// Why a delivery did not succeed, classified by the channel.
///
/// `#[non_exhaustive]`: match with a `_` arm (or use [`reason`](Self::reason),
/// [`is_retryable`](Self::is_retryable) and [`retry_after`](Self::retry_after)),
/// so new answers do not break third-party code.
///
/// ```
/// use std::time::Duration;
/// use clarion_core::DeliveryError;
///
/// // HTTP 429 with `Retry-After: 30`.
/// let throttled = DeliveryError::throttled("HTTP 429 Too Many Requests", Some(Duration::from_secs(30)));
/// assert!(throttled.is_retryable());
/// assert_eq!(throttled.retry_after(), Some(Duration::from_secs(30)));
///
/// // HTTP 410: retrying cannot help.
/// let gone = DeliveryError::gone("HTTP 410 Gone: channel_is_archived");
/// assert!(!gone.is_retryable());
/// assert_eq!(gone.reason(), "HTTP 410 Gone: channel_is_archived");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// Worth trying again: a timeout, a refused connection, HTTP 5xx, SMTP 4xx.
    #[error("retryable: {reason}")]
    Retryable {
        /// What went wrong (never a secret).
        reason: String,
        /// The peer's hint for when to try again (HTTP `Retry-After` …).
        retry_after: Option<Duration>,
    },
    /// Will never succeed as configured: HTTP 4xx, SMTP 5xx, bad credentials.
    #[error("permanent: {reason}")]
    Permanent {
        /// What went wrong (never a secret).
        reason: String,
    },
    /// The endpoint no longer exists (webhook HTTP 410, Slack `404
    /// channel_not_found`, `410 channel_is_archived`): nothing sent to this
    /// channel can succeed until someone fixes its configuration. Today the
    /// delivery is dead with this reason; with channel state the channel is
    /// paused instead and its deliveries wait.
    #[error("gone: {reason}")]
    Gone {
        /// What the peer said (never a secret).
        reason: String,
    },
    /// The whole channel is throttled (HTTP 429, or 503 with `Retry-After`),
    /// as opposed to a per-delivery hint such as an SMTP per-recipient 4xx,
    /// which stays [`Retryable`](Self::Retryable). Today the delivery is
    /// retried after `retry_after` (within the retry policy's bounds, like a
    /// `Retryable` hint); with channel state the channel is throttled.
    #[error("throttled: {reason}")]
    Throttled {
        /// What the peer said (never a secret).
        reason: String,
        /// How long the peer asked to wait (HTTP `Retry-After`), if it said.
        retry_after: Option<Duration>,
    },
}

impl DeliveryError {
    /// A retryable error without a hint.
    pub fn retryable(reason: impl Into<String>) -> Self {
        DeliveryError::Retryable {
            reason: reason.into(),
            retry_after: None,
        }
    }

    /// A permanent error.
    pub fn permanent(reason: impl Into<String>) -> Self {
        DeliveryError::Permanent {
            reason: reason.into(),
        }
    }

    /// The endpoint no longer exists (see [`DeliveryError::Gone`]).
    pub fn gone(reason: impl Into<String>) -> Self {
        DeliveryError::Gone {
            reason: reason.into(),
        }
    }

    /// The channel is throttled, with the peer's `Retry-After` if it sent one
    /// (see [`DeliveryError::Throttled`]).
    pub fn throttled(reason: impl Into<String>, retry_after: Option<Duration>) -> Self {
        DeliveryError::Throttled {
            reason: reason.into(),
            retry_after,
        }
    }

    /// The reason, without the classification prefix.
    pub fn reason(&self) -> &str {
        match self {
            DeliveryError::Retryable { reason, .. }
            | DeliveryError::Permanent { reason }
            | DeliveryError::Gone { reason }
            | DeliveryError::Throttled { reason, .. } => reason,
        }
    }

    /// Whether the dispatcher tries this delivery again: `Retryable` and
    /// `Throttled` yes, `Permanent` and `Gone` no.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            DeliveryError::Retryable { .. } | DeliveryError::Throttled { .. }
        )
    }

    /// The peer's hint for when to try again, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            DeliveryError::Retryable { retry_after, .. }
            | DeliveryError::Throttled { retry_after, .. } => *retry_after,
            DeliveryError::Permanent { .. } | DeliveryError::Gone { .. } => None,
        }
    }
}

/// A way out: e-mail, webhook, log, or a third-party transport.
///
/// Implementations are built by their plugin from configuration (see
/// [`crate::registry`]). `Debug` is required so configuration can be
/// inspected; it must never print secrets (wrap them in `secrecy`).
///
/// ```
/// use async_trait::async_trait;
/// use clarion_core::channel::{Channel, Delivery, DeliveryError, Receipt};
///
/// #[derive(Debug)]
/// struct Stdout;
///
/// #[async_trait]
/// impl Channel for Stdout {
///     async fn deliver(&self, d: &Delivery) -> Result<Receipt, DeliveryError> {
///         println!("{} about {}", d.notification.event.kind, d.notification.event.subject.id);
///         Ok(Receipt::new("printed"))
///     }
/// }
/// ```
#[async_trait]
pub trait Channel: Send + Sync + fmt::Debug {
    /// Delivers one notification, or says why not and whether to retry.
    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt, DeliveryError>;

    /// Checks connectivity and credentials without sending anything
    /// (a "test channel" button). The default has nothing to check.
    async fn check(&self) -> Result<(), DeliveryError> {
        Ok(())
    }
}
