//! A persisted event: what the inbox lists and what channels deliver.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::KeyEvent;

/// An event as clarion stored it, with its id and inbox state.
///
/// Serializes as the event's JSON shape (see [`crate::event`]) plus `id`,
/// `created_at` and `read_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// UUIDv7: time-ordered, so newest-first paging is an index scan.
    pub id: Uuid,
    /// The event, in its stable form.
    #[serde(flatten)]
    pub event: KeyEvent,
    /// When clarion stored it.
    pub created_at: DateTime<Utc>,
    /// When its owner marked it read.
    pub read_at: Option<DateTime<Utc>>,
}

impl Notification {
    /// A fresh, unread notification for `event`, created at `now`.
    pub fn new(event: KeyEvent, now: DateTime<Utc>) -> Self {
        Notification {
            id: Uuid::now_v7(),
            event,
            created_at: now,
            read_at: None,
        }
    }
}
