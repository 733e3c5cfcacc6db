//! Request bodies: the Standard Webhooks JSON envelope, or a minijinja template.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use clarion_core::channel::Delivery;
use clarion_core::event::KeyEvent;
use http::HeaderValue;
use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;
use uuid::Uuid;

const TEMPLATE_NAME: &str = "body_template";

/// How one channel turns a delivery into bytes.
#[derive(Clone)]
pub(crate) enum BodyMaker {
    Standard,
    Template {
        env: Arc<Environment<'static>>,
        content_type: HeaderValue,
        json: bool,
    },
}

/// The standard envelope. `timestamp` is when the event occurred, so the body
/// is byte-for-byte the same on every attempt.
#[derive(Serialize)]
struct StandardBody<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    timestamp: &'a DateTime<Utc>,
    data: NotificationView<'a>,
}

/// The notification as receivers see it: its id, the event's stable JSON
/// shape, and when clarion stored it (the inbox's `read_at` is left out).
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

#[derive(Serialize)]
struct TemplateContext<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    timestamp: &'a DateTime<Utc>,
    notification: NotificationView<'a>,
    delivery: DeliveryView<'a>,
}

fn view(delivery: &Delivery) -> NotificationView<'_> {
    NotificationView {
        id: delivery.notification.id,
        event: &delivery.notification.event,
        created_at: delivery.notification.created_at,
    }
}

/// Whether a content type is JSON (`application/json` or `…+json`).
pub(crate) fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// Why a template could not be compiled or rendered.
#[derive(Debug)]
pub(crate) struct TemplateError(pub String);

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

impl BodyMaker {
    /// Compiles a template. `{{ value }}` renders nothing for undefined and
    /// null values; for JSON content types it is escaped for use inside a JSON
    /// string, while `{{ value | tojson }}` inserts JSON.
    pub(crate) fn template(
        source: String,
        content_type: HeaderValue,
    ) -> Result<BodyMaker, TemplateError> {
        let json = is_json(content_type.to_str().unwrap_or_default());
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_formatter(move |out, state, value| {
            if value.is_none() || value.is_undefined() {
                return Ok(());
            }
            if !json || value.is_safe() {
                return minijinja::escape_formatter(out, state, value);
            }
            let quoted = serde_json::to_string(&value.to_string()).expect("strings serialize");
            out.write_str(&quoted[1..quoted.len() - 1]).map_err(|e| {
                minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
            })
        });
        env.add_template_owned(TEMPLATE_NAME, source).map_err(|e| {
            if e.kind() == minijinja::ErrorKind::SyntaxError {
                TemplateError(describe(&e))
            } else {
                TemplateError(format!("invalid template: {}", describe(&e)))
            }
        })?;
        Ok(BodyMaker::Template {
            env: Arc::new(env),
            content_type,
            json,
        })
    }

    /// The body's content type.
    pub(crate) fn content_type(&self) -> HeaderValue {
        match self {
            BodyMaker::Standard => HeaderValue::from_static("application/json"),
            BodyMaker::Template { content_type, .. } => content_type.clone(),
        }
    }

    /// The body of one delivery.
    pub(crate) fn render(&self, delivery: &Delivery) -> Result<Vec<u8>, TemplateError> {
        let event = &delivery.notification.event;
        match self {
            BodyMaker::Standard => {
                let body = StandardBody {
                    kind: event.kind.as_str(),
                    timestamp: &event.occurred_at,
                    data: view(delivery),
                };
                serde_json::to_vec(&body)
                    .map_err(|e| TemplateError(format!("cannot serialize the body: {e}")))
            }
            BodyMaker::Template { env, json, .. } => {
                let context = TemplateContext {
                    kind: event.kind.as_str(),
                    timestamp: &event.occurred_at,
                    notification: view(delivery),
                    delivery: DeliveryView {
                        id: delivery.id,
                        idempotency_key: delivery.idempotency_key(),
                        attempt: delivery.attempt,
                        channel: &delivery.channel,
                    },
                };
                let template = env
                    .get_template(TEMPLATE_NAME)
                    .map_err(|e| TemplateError(describe(&e)))?;
                let rendered = template
                    .render(Value::from(Serde(&context)))
                    .map_err(|e| TemplateError(format!("cannot render: {}", describe(&e))))?;
                if *json && let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&rendered) {
                    return Err(TemplateError(format!(
                        "rendered invalid JSON ({e}); insert values inside JSON strings \
                         with {{{{ value }}}} and whole JSON values with {{{{ value | tojson }}}}"
                    )));
                }
                Ok(rendered.into_bytes())
            }
        }
    }
}
