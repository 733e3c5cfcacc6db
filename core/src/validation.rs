//! Event validation: the one check every path runs before an event is stored.
//!
//! [`validate_event`] is called by [`Notifier::emit`](crate::Notifier::emit)
//! and [`Notifier::prepare`](crate::Notifier::prepare) (so by the
//! transactional outbox too), by batch emits, by HTTP ingest, and by every
//! store's `enqueue` (the memory store included), so an event is accepted or
//! refused the same way whichever path and store it takes. It refuses:
//!
//! - an empty (or all-whitespace) `subject.id`, `subject.name`, `owner`,
//!   `dedup_key` or label key, and any of those or a label value longer than
//!   [`MAX_ID_CHARS`] characters (characters, not bytes: what a SQL
//!   `VARCHAR(255)` holds on every dialect);
//! - more than [`MAX_LABELS`] labels; a kind longer than [`MAX_KIND_CHARS`];
//!   a `data` that is not a JSON object;
//! - a NUL character in any text: the fields above, the kind, and every key
//!   and string inside `data` (the error names the path, e.g. `data.error`
//!   or `data.steps[2]`). PostgreSQL cannot store NUL in text at all, and
//!   the other engines would keep what a receiver may cut short;
//! - an event whose JSON (as stored and as channels render it) is longer
//!   than `max_event_bytes` (the top-level [`Config`](crate::Config) key,
//!   default [`DEFAULT_MAX_EVENT_BYTES`]): the error names the largest field,
//!   descending into `data`, with its size and both totals. A 2 MB error text
//!   would otherwise be posted whole to every webhook on every retry.
//!
//! Every refusal is an [`InvalidEvent`] naming the field; the notifier turns
//! it into [`EmitError::InvalidEvent`](crate::EmitError::InvalidEvent), a
//! store into [`StoreError::Invalid`].
//!
//! ```
//! use clarion_core::event::*;
//! use clarion_core::validation::{validate_event, DEFAULT_MAX_EVENT_BYTES};
//!
//! let event = KeyEvent::rotation_failure(
//!     Subject::new("key-1", ObjectType::SymmetricKey),
//!     RotationFailure { error: "HSM\0down".into(), attempt: 1, next_attempt: None },
//! );
//! let err = validate_event(&event, Some(DEFAULT_MAX_EVENT_BYTES)).unwrap_err();
//! assert_eq!(err.field, "data.error");
//! ```

use std::io;

use serde::Serialize;
use serde_json::Value;

use crate::event::KeyEvent;
use crate::store::StoreError;

/// Longest `subject.id`, `subject.name`, `owner`, `dedup_key`, label key or
/// label value, in characters.
pub const MAX_ID_CHARS: usize = 255;

/// Most labels an event may carry.
pub const MAX_LABELS: usize = 64;

/// Longest event kind, in characters (custom kinds are 1–64 characters).
pub const MAX_KIND_CHARS: usize = 64;

/// The default of the `max_event_bytes` setting: 64 KiB of event JSON.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 64 * 1024;

/// An event that cannot be accepted as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event: {field}: {message}")]
pub struct InvalidEvent {
    /// The offending field, e.g. `subject.id`, `labels.env`, `data.error`.
    pub field: String,
    /// What is wrong, with the limit.
    pub message: String,
}

impl InvalidEvent {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        InvalidEvent {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<InvalidEvent> for StoreError {
    fn from(e: InvalidEvent) -> Self {
        StoreError::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

/// Checks `event` against the rules in the [module docs](self).
///
/// `max_event_bytes` is the notifier's `max_event_bytes` setting; stores,
/// which do not know the configuration, pass `None` and check everything
/// but the size.
pub fn validate_event(
    event: &KeyEvent,
    max_event_bytes: Option<usize>,
) -> Result<(), InvalidEvent> {
    let kind = event.kind.as_str();
    if kind.is_empty() {
        return Err(InvalidEvent::new("kind", "must not be empty"));
    }
    no_nul("kind", kind)?;
    let chars = kind.chars().count();
    if chars > MAX_KIND_CHARS {
        return Err(InvalidEvent::new(
            "kind",
            format!("is {chars} characters long; at most {MAX_KIND_CHARS}"),
        ));
    }
    id("subject.id", &event.subject.id)?;
    if let Some(name) = &event.subject.name {
        id("subject.name", name)?;
    }
    if let Some(owner) = &event.owner {
        id("owner", owner)?;
    }
    if let Some(key) = &event.dedup_key {
        id("dedup_key", key)?;
    }
    if event.labels.len() > MAX_LABELS {
        return Err(InvalidEvent::new(
            "labels",
            format!("has {} labels; at most {MAX_LABELS}", event.labels.len()),
        ));
    }
    for (key, value) in &event.labels {
        id("labels", key)?;
        let field = format!("labels.{}", key.escape_debug());
        no_nul(&field, value)?;
        longest(&field, value)?;
    }
    if !event.data.is_object() {
        return Err(InvalidEvent::new(
            "data",
            "must be a JSON object (kind-specific fields)",
        ));
    }
    json_text("data", &event.data)?;
    if let Some(max) = max_event_bytes {
        let size = json_len(event);
        if size > max {
            let (field, field_size) = largest_field(event);
            return Err(InvalidEvent::new(
                field,
                format!(
                    "the event is {size} bytes as JSON, over max_event_bytes = {max}; \
                     this is its largest field ({field_size} bytes)"
                ),
            ));
        }
    }
    Ok(())
}

/// An id or key: not blank, not too long, no NUL.
fn id(field: &str, value: &str) -> Result<(), InvalidEvent> {
    if value.trim().is_empty() {
        return Err(InvalidEvent::new(field, "must not be empty"));
    }
    no_nul(field, value)?;
    longest(field, value)
}

fn longest(field: &str, value: &str) -> Result<(), InvalidEvent> {
    // Bytes bound characters from above: count only when it could matter.
    if value.len() > MAX_ID_CHARS {
        let chars = value.chars().count();
        if chars > MAX_ID_CHARS {
            return Err(InvalidEvent::new(
                field,
                format!("is {chars} characters long; at most {MAX_ID_CHARS}"),
            ));
        }
    }
    Ok(())
}

fn no_nul(field: &str, value: &str) -> Result<(), InvalidEvent> {
    if value.contains('\0') {
        return Err(InvalidEvent::new(field, "contains a NUL character"));
    }
    Ok(())
}

/// Every key and string inside `value`, with its path in the error.
fn json_text(path: &str, value: &Value) -> Result<(), InvalidEvent> {
    match value {
        Value::String(s) => no_nul(path, s),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| json_text(&format!("{path}[{i}]"), v)),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            let field = format!("{path}.{}", k.escape_debug());
            if k.contains('\0') {
                return Err(InvalidEvent::new(field, "the key contains a NUL character"));
            }
            json_text(&field, v)
        }),
        _ => Ok(()),
    }
}

/// Counts bytes without keeping them.
#[derive(Default)]
struct Counter(usize);

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn json_len(value: &(impl Serialize + ?Sized)) -> usize {
    let mut counter = Counter::default();
    // Serializing an event (strings, numbers, maps with string keys) cannot
    // fail; if it ever did, the count so far is still a lower bound.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// The largest top-level field of `event`'s JSON, descending into the largest
/// member of `data` while it is an object or array: the field to shorten.
fn largest_field(event: &KeyEvent) -> (String, usize) {
    let Ok(Value::Object(top)) = serde_json::to_value(event) else {
        return ("event".into(), json_len(event));
    };
    let mut best = (String::from("event"), 0);
    let mut node = None;
    for (key, value) in &top {
        let size = json_len(value);
        if size > best.1 {
            best = (key.clone(), size);
            node = Some(value);
        }
    }
    while let Some(value) = node.take() {
        let children: Vec<(String, &Value)> = match value {
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| (format!("{}.{}", best.0, k.escape_debug()), v))
                .collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{}[{i}]", best.0), v))
                .collect(),
            _ => Vec::new(),
        };
        if let Some((path, child, size)) = children
            .into_iter()
            .map(|(p, v)| {
                let size = json_len(v);
                (p, v, size)
            })
            .max_by_key(|(_, _, size)| *size)
        {
            best = (path, size);
            node = Some(child);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ObjectType, RotationFailure, Subject};

    fn event() -> KeyEvent {
        KeyEvent::rotation_failure(
            Subject::new("key-1", ObjectType::SymmetricKey),
            RotationFailure {
                error: "HSM down".into(),
                attempt: 1,
                next_attempt: None,
            },
        )
        .with_owner("alice")
    }

    fn field(event: &KeyEvent) -> String {
        validate_event(event, Some(DEFAULT_MAX_EVENT_BYTES))
            .unwrap_err()
            .field
    }

    #[test]
    fn a_plain_event_passes() {
        validate_event(&event(), Some(DEFAULT_MAX_EVENT_BYTES)).unwrap();
    }

    #[test]
    fn blank_ids_are_refused_with_their_field() {
        let mut e = event();
        e.subject.id = " ".into();
        assert_eq!(field(&e), "subject.id");
        let mut e = event();
        e.owner = Some(String::new());
        assert_eq!(field(&e), "owner");
        let mut e = event();
        e.subject.name = Some(String::new());
        assert_eq!(field(&e), "subject.name");
        let mut e = event();
        e.dedup_key = Some("\t".into());
        assert_eq!(field(&e), "dedup_key");
        let mut e = event();
        e.labels.insert(String::new(), "v".into());
        assert_eq!(field(&e), "labels");
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let mut e = event();
        e.owner = Some("é".repeat(MAX_ID_CHARS)); // 510 bytes, 255 characters
        validate_event(&e, None).unwrap();
        e.owner = Some("é".repeat(MAX_ID_CHARS + 1));
        let err = validate_event(&e, None).unwrap_err();
        assert_eq!(err.field, "owner");
        assert_eq!(err.message, "is 256 characters long; at most 255");
        let mut e = event();
        e.labels.insert("env".into(), "v".repeat(256));
        assert_eq!(field(&e), "labels.env");
        let mut e = event();
        e.labels.insert("env".into(), String::new()); // an empty value is a value
        validate_event(&e, None).unwrap();
    }

    #[test]
    fn too_many_labels_are_refused() {
        let mut e = event();
        for i in 0..=MAX_LABELS {
            e.labels.insert(format!("l{i}"), "v".into());
        }
        let err = validate_event(&e, None).unwrap_err();
        assert_eq!(err.field, "labels");
        assert_eq!(err.message, "has 65 labels; at most 64");
    }

    #[test]
    fn a_nul_anywhere_names_its_field() {
        let mut e = event();
        e.owner = Some("al\0ice".into());
        let err = validate_event(&e, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid event: owner: contains a NUL character"
        );
        let mut e = event();
        e.data["error"] = "HSM\0down".into();
        assert_eq!(field(&e), "data.error");
        let mut e = event();
        e.data = serde_json::json!({ "steps": ["a", { "x": "b\0" }] });
        assert_eq!(field(&e), "data.steps[1].x");
        let mut e = event();
        e.data = serde_json::json!({ "a\0": 1 });
        assert_eq!(field(&e), "data.a\\0");
        let mut e = event();
        e.labels.insert("env".into(), "p\0".into());
        assert_eq!(field(&e), "labels.env");
        let mut e = event();
        e.subject.id = "k\0".into();
        assert_eq!(field(&e), "subject.id");
        let mut e = event();
        e.kind = crate::event::EventKind::Custom("x\0".into());
        assert_eq!(field(&e), "kind");
    }

    #[test]
    fn data_must_be_an_object() {
        let mut e = event();
        e.data = serde_json::json!([1]);
        assert_eq!(field(&e), "data");
    }

    #[test]
    fn an_oversized_event_names_its_largest_field_and_both_sizes() {
        let mut e = event();
        e.data["error"] = "x".repeat(2 * 1024 * 1024).into();
        let size = serde_json::to_vec(&e).unwrap().len();
        let err = validate_event(&e, Some(DEFAULT_MAX_EVENT_BYTES)).unwrap_err();
        assert_eq!(err.field, "data.error");
        assert_eq!(
            err.message,
            format!(
                "the event is {size} bytes as JSON, over max_event_bytes = 65536; \
                 this is its largest field ({} bytes)",
                2 * 1024 * 1024 + 2
            )
        );
        // Stores do not apply the size (they do not know the setting).
        validate_event(&e, None).unwrap();
        // Exactly at the limit passes.
        validate_event(&e, Some(size)).unwrap();
        assert!(validate_event(&e, Some(size - 1)).is_err());
    }

    #[test]
    fn an_oversized_label_set_names_labels() {
        let mut e = event();
        for i in 0..MAX_LABELS {
            e.labels.insert(format!("l{i}"), "v".repeat(MAX_ID_CHARS));
        }
        let err = validate_event(&e, Some(4096)).unwrap_err();
        assert!(err.field.starts_with("labels."), "{err}");
    }
}
