//! Sample events for tests.

use chrono::{DateTime, Utc};
use clarion_core::event::*;

/// A `rotation_failure` for `key_id`, owned by `owner`.
pub fn failure(key_id: &str, owner: &str) -> KeyEvent {
    KeyEvent::rotation_failure(
        Subject::new(key_id, ObjectType::SymmetricKey),
        RotationFailure {
            error: "HSM unreachable".into(),
            attempt: 1,
            next_attempt: None,
        },
    )
    .with_owner(owner)
}

/// A `rotation_success` for `key_id`, owned by `owner`.
pub fn success(key_id: &str, owner: &str) -> KeyEvent {
    KeyEvent::rotation_success(
        Subject::new(key_id, ObjectType::KeyPair),
        RotationSuccess {
            old_id: format!("{key_id}-v1"),
            new_id: format!("{key_id}-v2"),
            next_rotation: None,
        },
    )
    .with_owner(owner)
}

/// An `approaching_deadline` for `key_id` due at `deadline`.
pub fn deadline(key_id: &str, deadline: DateTime<Utc>, threshold_days: u32) -> KeyEvent {
    KeyEvent::approaching_deadline(
        Subject::new(key_id, ObjectType::Certificate),
        ApproachingDeadline {
            deadline,
            days_remaining: (deadline - Utc::now()).num_days(),
            threshold_days,
            final_threshold: false,
        },
    )
}
