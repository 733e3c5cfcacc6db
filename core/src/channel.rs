//! The [`Channel`] trait: how a notification leaves clarion.
//!
//! A channel knows its protocol, so it classifies its own failures: a
//! [`DeliveryError::Retryable`] is tried again later (honouring `retry_after`
//! within the retry policy's bounds), a [`DeliveryError::Permanent`] goes to
//! the dead-letter queue at once. The dispatcher wraps every `deliver` in its
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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

    /// The reason, without the classification prefix.
    pub fn reason(&self) -> &str {
        match self {
            DeliveryError::Retryable { reason, .. } | DeliveryError::Permanent { reason } => reason,
        }
    }

    /// Whether the dispatcher should try again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, DeliveryError::Retryable { .. })
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
