//! `POST /v1/events`: one event JSON, or an array of at most
//! [`MAX_BATCH`], answered with one
//! result per event.
//!
//! The body is the documented event JSON ([`clarion::event::KeyEvent`]);
//! `occurred_at` defaults to now and `severity` to the kind's default. A
//! well-formed request answers 200 whatever happened to each event:
//! `enqueued` (+ `id`, `channels`), `duplicate` (+ the existing `id`),
//! `unrouted` (+ `id`) or `invalid` (+ `field`, `message`; nothing stored
//! for it, the others are). Only a body that is not JSON gets 400, a body
//! over `server.body_limit` 413, another content type 415, and a store
//! failure 503 (nothing of the request was stored).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, http::HeaderValue};
use chrono::Utc;
use clarion::api::Rejection;
use clarion::event::{EventKind, KeyEvent, Severity};
use clarion::notifier::MAX_BATCH;
use clarion::{EmitError, EmitOutcome, Notifier};
use serde_json::{Value, json};

use crate::auth::Caller;

/// The header whose value becomes the dedup key of a single event without one.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The handler.
pub async fn post_events(
    State(notifier): State<Notifier>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !is_json(headers.get(header::CONTENT_TYPE)) {
        return Rejection::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the event as Content-Type: application/json",
        )
        .into_response();
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "payload_too_large"
            } else {
                "bad_request"
            };
            return Rejection::new(status, code, rejection.body_text()).into_response();
        }
    };
    let value: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => return bad_request(format!("the body is not valid JSON: {e}")),
    };
    let idempotency = match headers.get(IDEMPOTENCY_KEY).map(HeaderValue::to_str) {
        None => None,
        Some(Ok(key)) if !key.trim().is_empty() => Some(key.trim().to_owned()),
        Some(_) => return bad_request("the Idempotency-Key header must be non-empty text"),
    };
    match value {
        Value::Array(items) => {
            if idempotency.is_some() {
                return bad_request(
                    "Idempotency-Key applies to a single event; give each event of an array its own dedup_key",
                );
            }
            if items.len() > MAX_BATCH {
                return bad_request(format!(
                    "{} events in one array; at most {MAX_BATCH}",
                    items.len()
                ));
            }
            emit_array(&notifier, items).await
        }
        Value::Object(_) => {
            let mut event = match parse(value) {
                Ok(event) => event,
                Err(invalid) => return Json(invalid).into_response(),
            };
            if let Some(key) = idempotency
                && event.dedup_key.is_none()
            {
                // Scoped to the API key: two clients' `Idempotency-Key: 1` never collide.
                event.dedup_key = Some(format!("idempotency:{}:{key}", caller.name()));
            }
            match notifier.emit(&event).await {
                Ok(outcome) => Json(outcome_json(&outcome)).into_response(),
                Err(EmitError::InvalidEvent { field, message }) => {
                    Json(invalid_json(&field, &message)).into_response()
                }
                Err(EmitError::Store(e)) => unavailable(&e),
            }
        }
        _ => bad_request("the body must be an event object or an array of events"),
    }
}

async fn emit_array(notifier: &Notifier, items: Vec<Value>) -> Response {
    let parsed: Vec<Result<KeyEvent, Value>> = items.into_iter().map(parse).collect();
    let valid: Vec<KeyEvent> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok())
        .cloned()
        .collect();
    let mut outcomes = match notifier.emit_batch(&valid).await {
        Ok(outcomes) => outcomes.into_iter(),
        Err(EmitError::Store(e)) => return unavailable(&e),
        Err(EmitError::InvalidEvent { field, message }) => {
            // emit_batch reports invalid events per slot; a whole-batch one
            // would be a bug, answered as such rather than hidden.
            tracing::error!(%field, %message, "emit_batch refused a whole batch as invalid");
            return Rejection::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the batch could not be stored",
            )
            .into_response();
        }
    };
    let results: Vec<Value> = parsed
        .into_iter()
        .map(|slot| match slot {
            Err(invalid) => invalid,
            Ok(_) => match outcomes.next() {
                Some(Ok(outcome)) => outcome_json(&outcome),
                Some(Err(EmitError::InvalidEvent { field, message })) => {
                    invalid_json(&field, &message)
                }
                Some(Err(EmitError::Store(e))) => json!({
                    "result": "error",
                    "message": format!("not stored: {e}"),
                }),
                None => json!({ "result": "error", "message": "no result for this event" }),
            },
        })
        .collect();
    Json(Value::Array(results)).into_response()
}

/// The event, with defaults filled, or its `invalid` result.
pub(crate) fn parse(mut value: Value) -> Result<KeyEvent, Value> {
    let Some(object) = value.as_object_mut() else {
        return Err(invalid_json("(event)", "an event is a JSON object"));
    };
    if !object.contains_key("occurred_at") {
        object.insert("occurred_at".into(), json!(Utc::now()));
    }
    if !object.contains_key("severity")
        && let Some(kind) = object.get("kind").and_then(Value::as_str)
    {
        let final_threshold = object
            .get("data")
            .and_then(|d| d.get("final_threshold"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        object.insert(
            "severity".into(),
            json!(default_severity(kind, final_threshold)),
        );
    }
    serde_path_to_error::deserialize::<_, KeyEvent>(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "(event)".to_owned()
        } else {
            path
        };
        invalid_json(&field, &e.into_inner().to_string())
    })
}

/// What the library's constructors give each kind: success `info`, failure
/// `critical`, a deadline `warning` (`critical` at the final threshold), and
/// `info` for custom kinds, which have no documented default.
fn default_severity(kind: &str, final_threshold: bool) -> Severity {
    match kind.parse::<EventKind>() {
        Ok(EventKind::RotationFailure) => Severity::Critical,
        Ok(EventKind::ApproachingDeadline) if final_threshold => Severity::Critical,
        Ok(EventKind::ApproachingDeadline) => Severity::Warning,
        _ => Severity::Info,
    }
}

pub(crate) fn outcome_json(outcome: &EmitOutcome) -> Value {
    match outcome {
        EmitOutcome::Enqueued { id, channels } => {
            json!({ "result": "enqueued", "id": id, "channels": channels })
        }
        EmitOutcome::Unrouted { id } => json!({ "result": "unrouted", "id": id }),
        EmitOutcome::Duplicate { existing_id } => {
            json!({ "result": "duplicate", "id": existing_id })
        }
    }
}

fn invalid_json(field: &str, message: &str) -> Value {
    json!({ "result": "invalid", "field": field, "message": message })
}

fn is_json(content_type: Option<&HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

fn bad_request(message: impl Into<String>) -> Response {
    Rejection::new(StatusCode::BAD_REQUEST, "bad_request", message).into_response()
}

fn unavailable(error: &clarion::store::StoreError) -> Response {
    tracing::error!(%error, "POST /v1/events: the store failed; nothing was stored");
    Rejection::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the store is unavailable; nothing was stored, send the request again",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_occurred_at_and_the_kinds_severity() {
        let event = parse(json!({
            "kind": "rotation_failure",
            "subject": { "type": "symmetric_key", "id": "k1" },
        }))
        .unwrap();
        assert_eq!(event.severity, Severity::Critical);
        assert!(Utc::now() - event.occurred_at < chrono::Duration::minutes(1));
    }

    #[test]
    fn a_bad_field_is_named() {
        let invalid = parse(json!({
            "kind": "rotation_success",
            "subject": { "type": "symmetric_key", "id": 7 },
        }))
        .unwrap_err();
        assert_eq!(invalid["result"], "invalid");
        assert_eq!(invalid["field"], "subject.id");
    }
}
