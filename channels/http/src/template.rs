//! [`Templates`]: per-kind minijinja overrides for a channel's payload.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clarion_core::channel::{Delivery, DeliveryError};
use clarion_core::event::KeyEvent;
use clarion_core::registry::ChannelConfigError;
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;
use uuid::Uuid;

/// Named [minijinja](https://docs.rs/minijinja) templates rendered over a
/// delivery, with the context the webhook channel's `body_template` gets:
/// `type` (the event kind), `timestamp` (when it occurred), `notification`
/// (`id`, the event's fields, `created_at`) and `delivery` (`id`,
/// `idempotency_key`, `attempt`, `channel`). Undefined lookups and nulls
/// render empty. In a template whose name ends in `.json`, `{{ value }}` is
/// escaped for use inside a JSON string, `{{ value | tojson }}` inserts a
/// JSON value, and the output must be valid JSON.
///
/// ```
/// use clarion_http::Templates;
/// let mut t = Templates::default();
/// t.add("templates.rotation_failure.text", "rotation_failure.text", "{{ notification.subject.id }} failed").unwrap();
/// assert!(t.contains("rotation_failure.text"));
/// let err = t.add("templates.x.text", "x.text", "{% if %}").unwrap_err();
/// assert_eq!(err.field.as_deref(), Some("templates.x.text"));
/// ```
#[derive(Clone, Default)]
pub struct Templates {
    env: Arc<Environment<'static>>,
    names: BTreeSet<String>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Templates").field(&self.names).finish()
    }
}

#[derive(Serialize)]
struct Context<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    timestamp: &'a DateTime<Utc>,
    notification: NotificationView<'a>,
    delivery: DeliveryView<'a>,
}

#[derive(Serialize)]
struct NotificationView<'a> {
    id: Uuid,
    #[serde(flatten)]
    event: &'a KeyEvent,
    created_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct DeliveryView<'a> {
    id: Uuid,
    idempotency_key: String,
    attempt: u32,
    channel: &'a str,
}

fn describe(e: &minijinja::Error) -> String {
    let mut message = match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    };
    if let Some(line) = e.line() {
        message = format!("{message} (line {line})");
    }
    message
}

impl Templates {
    /// Compiles `source` as `name` and tries it on [`sample_delivery`];
    /// errors name `field` (the setting's path) and the line.
    pub fn add(&mut self, field: &str, name: &str, source: &str) -> Result<(), ChannelConfigError> {
        let env = Arc::make_mut(&mut self.env);
        if self.names.is_empty() {
            env.set_undefined_behavior(UndefinedBehavior::Chainable);
            env.set_formatter(|out, state, value| {
                if value.is_none() || value.is_undefined() {
                    return Ok(());
                }
                if !state.name().ends_with(".json") || value.is_safe() {
                    return minijinja::escape_formatter(out, state, value);
                }
                let quoted = serde_json::to_string(&value.to_string()).expect("strings serialize");
                out.write_str(&quoted[1..quoted.len() - 1]).map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
                })
            });
        }
        env.add_template_owned(name.to_owned(), source.to_owned())
            .map_err(|e| ChannelConfigError::field(field, describe(&e)))?;
        self.names.insert(name.to_owned());
        self.render(name, &sample_delivery()).map_err(|e| {
            ChannelConfigError::field(
                field,
                format!("fails on a sample rotation_failure event: {}", e.reason()),
            )
        })?;
        Ok(())
    }

    /// Whether a template of this name was added.
    pub fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// Renders `name` for `delivery`; a failure is permanent (the same
    /// template fails the same way on every attempt).
    pub fn render(&self, name: &str, delivery: &Delivery) -> Result<String, DeliveryError> {
        let event = &delivery.notification.event;
        let context = Context {
            kind: event.kind.as_str(),
            timestamp: &event.occurred_at,
            notification: NotificationView {
                id: delivery.notification.id,
                event,
                created_at: delivery.notification.created_at,
            },
            delivery: DeliveryView {
                id: delivery.id,
                idempotency_key: delivery.idempotency_key(),
                attempt: delivery.attempt,
                channel: &delivery.channel,
            },
        };
        let fail = |e: String| DeliveryError::permanent(format!("template {name}: {e}"));
        let template = self
            .env
            .get_template(name)
            .map_err(|e| fail(describe(&e)))?;
        let text = (template.render(Value::from(Serde(&context))))
            .map_err(|e| fail(format!("cannot render: {}", describe(&e))))?;
        if name.ends_with(".json")
            && let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&text)
        {
            return Err(fail(format!(
                "rendered invalid JSON ({e}); insert values inside JSON strings with \
                 {{{{ value }}}} and whole JSON values with {{{{ value | tojson }}}}"
            )));
        }
        Ok(text)
    }
}

/// A fixed `rotation_failure` delivery (key `key-42`, owner `alice`, label
/// `env = prod`) for trying templates when a channel is built.
pub fn sample_delivery() -> Delivery {
    use clarion_core::event::{ObjectType, RotationFailure, Subject};
    use clarion_core::notification::Notification;
    let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
    let event = KeyEvent::rotation_failure(
        Subject::new("key-42", ObjectType::SymmetricKey).named("payments-dek"),
        RotationFailure {
            error: "HSM unreachable".into(),
            attempt: 3,
            next_attempt: Some(at),
        },
    )
    .with_owner("alice")
    .with_label("env", "prod")
    .at(at);
    Delivery {
        id: Uuid::nil(),
        channel: "sample".into(),
        attempt: 1,
        notification: Notification::new(event, at),
    }
}
