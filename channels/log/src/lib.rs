//! clarion-log: a channel that writes each delivery as one structured
//! `tracing` event, for the service log (and whatever the subscriber ships
//! it to).
//!
//! ```toml
//! [channels.audit-log]
//! kind = "log"
//! min_level = "warn"                 # floor: info events are written at WARN
//! target = "kms::notifications"      # default: clarion::notification
//! ```
//!
//! The level follows the event's severity (info → INFO, warning → WARN,
//! critical → ERROR), raised to `min_level` if lower: the floor lifts events,
//! it never drops them. Fields: `kind`, `severity`, `subject_id`,
//! `subject_name`, `object_type`, `owner`, `notification_id`, `delivery_id`,
//! `idempotency_key`, `attempt`, `channel`, and `data` (the kind-specific
//! data as JSON).
//!
//! Link it with the `clarion` facade's `log` feature (on by default) or
//! `use clarion_log as _;`.

mod callsite;

use async_trait::async_trait;
use clarion_core::channel::{Channel, Delivery, DeliveryError, Receipt};
use clarion_core::event::Severity;
use clarion_core::registry::ChannelConfigError;
use schemars::JsonSchema;
use serde::Deserialize;
use tracing_core::field::Value;
use tracing_core::{Level, dispatcher};

/// `[channels.<name>]` settings of a `kind = "log"` channel.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// The lowest level written at; lower severities are raised to it.
    #[serde(default)]
    pub min_level: LogLevel,
    /// The `tracing` target of the events.
    #[serde(default = "default_target")]
    pub target: String,
}

fn default_target() -> String {
    "clarion::notification".into()
}

/// A `tracing` level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// TRACE.
    Trace,
    /// DEBUG.
    Debug,
    /// INFO.
    #[default]
    Info,
    /// WARN.
    Warn,
    /// ERROR.
    Error,
}

impl From<LogLevel> for Level {
    fn from(level: LogLevel) -> Level {
        match level {
            LogLevel::Trace => Level::TRACE,
            LogLevel::Debug => Level::DEBUG,
            LogLevel::Info => Level::INFO,
            LogLevel::Warn => Level::WARN,
            LogLevel::Error => Level::ERROR,
        }
    }
}

/// The log channel.
#[derive(Debug, Clone)]
pub struct LogChannel {
    floor: Level,
    target: String,
}

impl LogChannel {
    /// Builds the channel from its settings.
    pub fn from_config(config: LogConfig) -> Result<Self, ChannelConfigError> {
        let target = config.target.trim();
        if target.is_empty() || target.chars().any(char::is_whitespace) {
            return Err(ChannelConfigError::field(
                "target",
                "a target is a non-empty name without spaces, e.g. \"kms::notifications\"",
            ));
        }
        Ok(LogChannel {
            floor: config.min_level.into(),
            target: target.to_owned(),
        })
    }

    /// The level an event of `severity` is written at.
    pub fn level_for(&self, severity: Severity) -> Level {
        let natural = match severity {
            Severity::Info => Level::INFO,
            Severity::Warning => Level::WARN,
            Severity::Critical => Level::ERROR,
        };
        // tracing orders levels by verbosity: ERROR < WARN < INFO.
        std::cmp::min(natural, self.floor)
    }
}

#[async_trait]
impl Channel for LogChannel {
    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt, DeliveryError> {
        let event = &delivery.notification.event;
        let level = self.level_for(event.severity);
        let metadata = callsite::metadata(&self.target, level);
        let fields = metadata.fields();
        let field = |name: &str| fields.field(name).expect("declared in callsite::FIELDS");

        let message = format!(
            "{} for {} {}",
            event.kind, event.subject.object_type, event.subject.id
        );
        let kind = event.kind.as_str();
        let severity = event.severity.as_str();
        let object_type = event.subject.object_type.as_str();
        let notification_id = delivery.notification.id.to_string();
        let delivery_id = delivery.id.to_string();
        let idempotency_key = delivery.idempotency_key();
        let data = event.data.to_string();
        let subject_name = event.subject.name.as_deref();
        let owner = event.owner.as_deref();
        let message = format_args!("{message}");
        let values: [(&tracing_core::Field, Option<&dyn Value>); 13] = [
            (&field("message"), Some(&message)),
            (&field("kind"), Some(&kind)),
            (&field("severity"), Some(&severity)),
            (&field("subject_id"), Some(&event.subject.id.as_str())),
            (
                &field("subject_name"),
                subject_name.as_ref().map(|n| n as &dyn Value),
            ),
            (&field("object_type"), Some(&object_type)),
            (&field("owner"), owner.as_ref().map(|o| o as &dyn Value)),
            (&field("notification_id"), Some(&notification_id.as_str())),
            (&field("delivery_id"), Some(&delivery_id.as_str())),
            (&field("idempotency_key"), Some(&idempotency_key.as_str())),
            (&field("attempt"), Some(&delivery.attempt)),
            (&field("channel"), Some(&delivery.channel.as_str())),
            (&field("data"), Some(&data.as_str())),
        ];
        let value_set = fields.value_set(&values);
        dispatcher::get_default(|dispatch| {
            if dispatch.enabled(metadata) {
                dispatch.event(&tracing_core::Event::new(metadata, &value_set));
            }
        });
        Ok(Receipt::new(format!(
            "logged at {level} to {}",
            self.target
        )))
    }
}

clarion_core::register_channel! {
    kind: "log",
    description: "Writes each delivery as a structured tracing event, at a level from its severity.",
    config: LogConfig,
    example: "min_level = \"info\"\ntarget = \"clarion::notification\"\n",
    build: LogChannel::from_config,
}
