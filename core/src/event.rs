//! Key-lifecycle events: what a KMS tells clarion.
//!
//! An event serializes to one stable JSON shape, which is also what the store
//! keeps and what channels render:
//!
//! ```json
//! {
//!   "kind": "rotation_failure",
//!   "subject": { "id": "key-42", "type": "symmetric_key", "name": "payments-dek" },
//!   "owner": "alice",
//!   "severity": "critical",
//!   "occurred_at": "2026-11-22T05:00:00Z",
//!   "labels": { "env": "prod" },
//!   "data": { "error": "HSM unreachable", "attempt": 3, "next_attempt": "2026-11-22T05:10:00Z" },
//!   "dedup_key": null
//! }
//! ```
//!
//! `data` depends on the kind: [`RotationSuccess`], [`RotationFailure`] or
//! [`ApproachingDeadline`] for the built-in kinds, any JSON object for a custom
//! kind. `owner`, `subject.name` and `dedup_key` may be `null`; `labels` may be
//! empty. New optional fields may be added; existing ones keep their meaning.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What happened to a key, certificate or secret.
///
/// Serialized as a snake_case string; any string that is not a built-in kind
/// is a [`EventKind::Custom`] kind, which routes must declare before they use it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// A rotation or renewal completed.
    RotationSuccess,
    /// A rotation or renewal failed.
    RotationFailure,
    /// A rotation or renewal deadline is near.
    ApproachingDeadline,
    /// A kind defined by the KMS, e.g. `key_compromised`.
    Custom(String),
}

impl EventKind {
    /// The three kinds clarion knows without declaration.
    pub const BUILT_IN: [EventKind; 3] = [
        EventKind::RotationSuccess,
        EventKind::RotationFailure,
        EventKind::ApproachingDeadline,
    ];

    /// The wire name, e.g. `rotation_success`.
    pub fn as_str(&self) -> &str {
        match self {
            EventKind::RotationSuccess => "rotation_success",
            EventKind::RotationFailure => "rotation_failure",
            EventKind::ApproachingDeadline => "approaching_deadline",
            EventKind::Custom(s) => s,
        }
    }

    /// Whether this is one of the built-in kinds.
    pub fn is_built_in(&self) -> bool {
        !matches!(self, EventKind::Custom(_))
    }

    /// A custom kind, validated: 1–64 characters of `a-z`, `0-9`, `_`, `.`, `-`,
    /// starting with a letter. A built-in name yields the built-in kind.
    pub fn custom(name: impl Into<String>) -> Result<EventKind, InvalidEventKind> {
        name.into().parse()
    }
}

/// A string that is not a valid event kind name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid event kind {0:?}: use 1-64 characters of a-z, 0-9, '_', '.', '-', starting with a letter"
)]
pub struct InvalidEventKind(pub String);

impl FromStr for EventKind {
    type Err = InvalidEventKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "rotation_success" => EventKind::RotationSuccess,
            "rotation_failure" => EventKind::RotationFailure,
            "approaching_deadline" => EventKind::ApproachingDeadline,
            other => {
                let valid = !other.is_empty()
                    && other.len() <= 64
                    && other.starts_with(|c: char| c.is_ascii_lowercase())
                    && other
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
                if !valid {
                    return Err(InvalidEventKind(other.to_owned()));
                }
                EventKind::Custom(other.to_owned())
            }
        })
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for EventKind {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "EventKind".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "rotation_success, rotation_failure, approaching_deadline, or a declared custom kind",
            "type": "string",
            "pattern": "^[a-z][a-z0-9_.-]{0,63}$"
        })
    }
}

/// How urgent an event is. Ordered: `Info < Warning < Critical`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Nothing to do; for the record.
    Info,
    /// Someone should act soon.
    Warning,
    /// Someone must act now.
    Critical,
}

impl Severity {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of object an event is about.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ObjectType {
    /// A symmetric key (AES, HMAC …).
    SymmetricKey,
    /// An asymmetric key pair.
    KeyPair,
    /// An X.509 certificate.
    Certificate,
    /// An opaque secret (password, API key …).
    Secret,
    /// A token (service token, OAuth client credential …).
    Token,
    /// Anything else.
    Other,
}

impl ObjectType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::SymmetricKey => "symmetric_key",
            ObjectType::KeyPair => "key_pair",
            ObjectType::Certificate => "certificate",
            ObjectType::Secret => "secret",
            ObjectType::Token => "token",
            ObjectType::Other => "other",
        }
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The object an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// The KMS's id of the object.
    pub id: String,
    /// What kind of object it is.
    #[serde(rename = "type")]
    pub object_type: ObjectType,
    /// A human-readable name, if the KMS has one.
    #[serde(default)]
    pub name: Option<String>,
}

impl Subject {
    /// A subject without a display name.
    pub fn new(id: impl Into<String>, object_type: ObjectType) -> Self {
        Subject {
            id: id.into(),
            object_type,
            name: None,
        }
    }

    /// Sets the display name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// Routing labels: a sorted string map.
pub type Labels = BTreeMap<String, String>;

/// `data` of a `rotation_success` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationSuccess {
    /// The id (or version) that was replaced.
    pub old_id: String,
    /// The id (or version) now in use.
    pub new_id: String,
    /// When the next rotation is due, if scheduled.
    pub next_rotation: Option<DateTime<Utc>>,
}

/// `data` of a `rotation_failure` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationFailure {
    /// What went wrong, as the KMS reports it.
    pub error: String,
    /// Which attempt failed (1 for the first).
    pub attempt: u32,
    /// When the KMS will try again, if it will.
    pub next_attempt: Option<DateTime<Utc>>,
}

/// `data` of an `approaching_deadline` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproachingDeadline {
    /// When the rotation or renewal is due.
    pub deadline: DateTime<Utc>,
    /// Whole days left until the deadline (0 on the last day, negative when overdue).
    pub days_remaining: i64,
    /// The warning threshold that was crossed, in days.
    pub threshold_days: u32,
    /// Whether this is the tightest configured threshold (the last warning).
    pub final_threshold: bool,
}

/// An event a KMS emits. Implement it for your own types, or use [`KeyEvent`].
///
/// Routing reads only these accessors; `to_key_event` produces the stable
/// JSON shape that is stored and delivered.
pub trait Event: Send + Sync {
    /// What happened.
    fn kind(&self) -> EventKind;
    /// What it happened to.
    fn subject(&self) -> &Subject;
    /// Whose inbox it belongs to, if anyone's.
    fn owner(&self) -> Option<&str>;
    /// How urgent it is.
    fn severity(&self) -> Severity;
    /// When it happened.
    fn occurred_at(&self) -> DateTime<Utc>;
    /// Routing labels.
    fn labels(&self) -> &Labels;
    /// Kind-specific data as a JSON object.
    fn data(&self) -> serde_json::Value;
    /// A key that makes a second emit of the same fact a duplicate.
    fn dedup_key(&self) -> Option<&str>;

    /// The event in its stable, serializable form.
    fn to_key_event(&self) -> KeyEvent {
        KeyEvent {
            kind: self.kind(),
            subject: self.subject().clone(),
            owner: self.owner().map(str::to_owned),
            severity: self.severity(),
            occurred_at: self.occurred_at(),
            labels: self.labels().clone(),
            data: self.data(),
            dedup_key: self.dedup_key().map(str::to_owned),
        }
    }
}

/// The provided [`Event`]: one constructor per kind, builder-style setters.
///
/// ```
/// use clarion_core::event::*;
/// let event = KeyEvent::rotation_failure(
///     Subject::new("key-42", ObjectType::SymmetricKey).named("payments-dek"),
///     RotationFailure { error: "HSM unreachable".into(), attempt: 3, next_attempt: None },
/// )
/// .with_owner("alice")
/// .with_label("env", "prod");
/// assert_eq!(event.severity, Severity::Critical);
/// assert_eq!(serde_json::to_value(&event).unwrap()["subject"]["type"], "symmetric_key");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEvent {
    /// What happened.
    pub kind: EventKind,
    /// What it happened to.
    pub subject: Subject,
    /// Whose inbox it belongs to.
    #[serde(default)]
    pub owner: Option<String>,
    /// How urgent it is.
    pub severity: Severity,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Routing labels.
    #[serde(default)]
    pub labels: Labels,
    /// Kind-specific data.
    #[serde(default = "empty_object")]
    pub data: serde_json::Value,
    /// Makes a second emit of the same fact a duplicate.
    #[serde(default)]
    pub dedup_key: Option<String>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

impl KeyEvent {
    fn new(kind: EventKind, subject: Subject, severity: Severity, data: serde_json::Value) -> Self {
        KeyEvent {
            kind,
            subject,
            owner: None,
            severity,
            occurred_at: Utc::now(),
            labels: Labels::new(),
            data,
            dedup_key: None,
        }
    }

    /// A completed rotation; severity `info`.
    pub fn rotation_success(subject: Subject, data: RotationSuccess) -> Self {
        Self::new(
            EventKind::RotationSuccess,
            subject,
            Severity::Info,
            to_object(&data),
        )
    }

    /// A failed rotation; severity `critical`.
    pub fn rotation_failure(subject: Subject, data: RotationFailure) -> Self {
        Self::new(
            EventKind::RotationFailure,
            subject,
            Severity::Critical,
            to_object(&data),
        )
    }

    /// A deadline warning; severity `warning`, or `critical` at the final threshold.
    pub fn approaching_deadline(subject: Subject, data: ApproachingDeadline) -> Self {
        let severity = if data.final_threshold {
            Severity::Critical
        } else {
            Severity::Warning
        };
        Self::new(
            EventKind::ApproachingDeadline,
            subject,
            severity,
            to_object(&data),
        )
    }

    /// A custom kind with free-form data (a JSON object) and explicit severity.
    pub fn custom(
        kind: EventKind,
        subject: Subject,
        severity: Severity,
        data: serde_json::Value,
    ) -> Self {
        Self::new(kind, subject, severity, data)
    }

    /// Sets the inbox owner.
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Adds a routing label.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Overrides the default severity of the kind.
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// Sets when the event happened (default: when it was built).
    pub fn at(mut self, occurred_at: DateTime<Utc>) -> Self {
        self.occurred_at = occurred_at;
        self
    }

    /// Sets the dedup key.
    pub fn with_dedup_key(mut self, key: impl Into<String>) -> Self {
        self.dedup_key = Some(key.into());
        self
    }

    /// Decodes `data` as one of the typed payloads.
    pub fn data_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_value(self.data.clone())
    }
}

fn to_object<T: Serialize>(data: &T) -> serde_json::Value {
    // The payload types are plain structs of strings, numbers and timestamps.
    serde_json::to_value(data).expect("event payloads always serialize")
}

impl Event for KeyEvent {
    fn kind(&self) -> EventKind {
        self.kind.clone()
    }
    fn subject(&self) -> &Subject {
        &self.subject
    }
    fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }
    fn severity(&self) -> Severity {
        self.severity
    }
    fn occurred_at(&self) -> DateTime<Utc> {
        self.occurred_at
    }
    fn labels(&self) -> &Labels {
        &self.labels
    }
    fn data(&self) -> serde_json::Value {
        self.data.clone()
    }
    fn dedup_key(&self) -> Option<&str> {
        self.dedup_key.as_deref()
    }
    fn to_key_event(&self) -> KeyEvent {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> Subject {
        Subject::new("key-1", ObjectType::KeyPair)
    }

    #[test]
    fn kinds_round_trip_as_snake_case_strings() {
        for kind in EventKind::BUILT_IN {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<EventKind>(&json).unwrap(), kind);
        }
        let custom: EventKind = serde_json::from_str("\"key_compromised\"").unwrap();
        assert_eq!(custom, EventKind::Custom("key_compromised".into()));
        let err = serde_json::from_str::<EventKind>("\"Bad Kind\"").unwrap_err();
        assert!(err.to_string().contains("invalid event kind \"Bad Kind\""));
    }

    #[test]
    fn severity_is_ordered() {
        assert!(Severity::Info < Severity::Warning);
        assert!(Severity::Warning < Severity::Critical);
    }

    #[test]
    fn default_severity_per_kind() {
        let ok = KeyEvent::rotation_success(
            subject(),
            RotationSuccess {
                old_id: "v1".into(),
                new_id: "v2".into(),
                next_rotation: None,
            },
        );
        assert_eq!(ok.severity, Severity::Info);
        let failed = KeyEvent::rotation_failure(
            subject(),
            RotationFailure {
                error: "boom".into(),
                attempt: 1,
                next_attempt: None,
            },
        );
        assert_eq!(failed.severity, Severity::Critical);
        let deadline = |final_threshold| {
            KeyEvent::approaching_deadline(
                subject(),
                ApproachingDeadline {
                    deadline: Utc::now(),
                    days_remaining: 3,
                    threshold_days: 7,
                    final_threshold,
                },
            )
        };
        assert_eq!(deadline(false).severity, Severity::Warning);
        assert_eq!(deadline(true).severity, Severity::Critical);
    }

    #[test]
    fn stable_json_shape() {
        let at: DateTime<Utc> = "2026-11-22T05:00:00Z".parse().unwrap();
        let event = KeyEvent::rotation_failure(
            Subject::new("key-42", ObjectType::SymmetricKey).named("payments-dek"),
            RotationFailure {
                error: "HSM unreachable".into(),
                attempt: 3,
                next_attempt: Some("2026-11-22T05:10:00Z".parse().unwrap()),
            },
        )
        .with_owner("alice")
        .with_label("env", "prod")
        .at(at);
        let expected = serde_json::json!({
            "kind": "rotation_failure",
            "subject": { "id": "key-42", "type": "symmetric_key", "name": "payments-dek" },
            "owner": "alice",
            "severity": "critical",
            "occurred_at": "2026-11-22T05:00:00Z",
            "labels": { "env": "prod" },
            "data": { "error": "HSM unreachable", "attempt": 3, "next_attempt": "2026-11-22T05:10:00Z" },
            "dedup_key": null
        });
        assert_eq!(serde_json::to_value(&event).unwrap(), expected);
        let back: KeyEvent = serde_json::from_value(expected).unwrap();
        assert_eq!(back, event);
        assert_eq!(
            back.data_as::<RotationFailure>().unwrap().error,
            "HSM unreachable"
        );
    }
}
