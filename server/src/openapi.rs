//! `GET /openapi.json`: the OpenAPI 3.1 document of the server — its own
//! routes plus clarion-api's inbox and admin routers at `/v1/inbox` and
//! `/v1/admin`, with the bearer-key security the server adds.

use serde_json::{Value, json};

/// Where the inbox router is mounted.
pub const INBOX_PREFIX: &str = "/v1/inbox";
/// Where the admin router is mounted.
pub const ADMIN_PREFIX: &str = "/v1/admin";

/// The whole document.
pub fn document() -> Value {
    let mut doc = clarion::api::openapi(INBOX_PREFIX, ADMIN_PREFIX);
    doc["info"]["title"] = json!("clarion server");
    doc["info"]["description"] = json!(
        "clarion as a daemon: event ingest, the in-app inbox and the dead-letter queue. \
         Every route except /healthz, /readyz and /openapi.json (and /metrics when \
         metrics_public) needs `Authorization: Bearer <key>` with the scope named in \
         its description: 401 without a valid key, 403 without the scope. Every error \
         is `{\"error\": {\"code\", \"message\"}}`."
    );
    doc["components"]["securitySchemes"] = json!({
        "bearer": { "type": "http", "scheme": "bearer", "description": "An API key from [[server.auth.keys]]." }
    });
    doc["security"] = json!([{ "bearer": [] }]);
    let schemas = doc["components"]["schemas"]
        .as_object_mut()
        .expect("components.schemas");
    schemas.insert("EventResult".into(), event_result());
    let paths = doc["paths"].as_object_mut().expect("paths");
    for item in paths.values_mut() {
        for operation in item
            .as_object_mut()
            .into_iter()
            .flat_map(|o| o.values_mut())
        {
            if let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            {
                responses.insert("401".into(), error_response("No valid API key."));
                responses.insert("403".into(), error_response("The key lacks the scope."));
            }
        }
    }
    paths.insert("/v1/events".into(), events());
    paths.insert(
        "/healthz".into(),
        plain("health", "The process is up.", "ok"),
    );
    paths.insert("/readyz".into(), readyz());
    paths.insert("/metrics".into(), metrics());
    paths.insert("/openapi.json".into(), openapi());
    doc
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn event_result() -> Value {
    json!({
        "type": "object",
        "description": "What happened to one event.",
        "required": ["result"],
        "properties": {
            "result": { "enum": ["enqueued", "duplicate", "unrouted", "invalid", "error"] },
            "id": { "type": "string", "format": "uuid", "description": "The notification (for duplicate: the existing one)." },
            "channels": { "type": "array", "items": { "type": "string" }, "description": "enqueued: the channels it will be delivered on." },
            "field": { "type": "string", "description": "invalid: the offending field, e.g. subject.id." },
            "message": { "type": "string", "description": "invalid / error: what is wrong." }
        }
    })
}

fn events() -> Value {
    json!({ "post": {
        "tags": ["events"],
        "operationId": "postEvents",
        "summary": "Emit one event or an array of at most 1000 (scope emit)",
        "description": "The documented event JSON; occurred_at defaults to now, severity to the kind's default. Answers one result per event (an object for an object, an array for an array); an invalid event is reported and the others are stored.",
        "parameters": [{
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "The dedup key of a single event without one, scoped to the API key.",
            "schema": { "type": "string", "minLength": 1 }
        }],
        "requestBody": { "required": true, "content": { "application/json": { "schema": {
            "oneOf": [
                { "type": "object" },
                { "type": "array", "maxItems": 1000, "items": { "type": "object" } }
            ]
        } } } },
        "responses": {
            "200": { "description": "One result per event.", "content": { "application/json": { "schema": {
                "oneOf": [
                    { "$ref": "#/components/schemas/EventResult" },
                    { "type": "array", "items": { "$ref": "#/components/schemas/EventResult" } }
                ]
            } } } },
            "400": error_response("The body is not usable JSON."),
            "401": error_response("No valid API key."),
            "403": error_response("The key lacks scope emit."),
            "413": error_response("The body is over server.body_limit."),
            "415": error_response("Not Content-Type: application/json."),
            "503": error_response("The store is unavailable; nothing was stored.")
        }
    } })
}

fn plain(tag: &str, description: &str, example: &str) -> Value {
    json!({ "get": {
        "tags": [tag],
        "security": [],
        "summary": description,
        "responses": { "200": { "description": description, "content": {
            "text/plain": { "schema": { "type": "string" }, "example": example }
        } } }
    } })
}

fn readyz() -> Value {
    let mut item = plain("health", "The store is reachable.", "ready");
    item["get"]["responses"]["503"] = error_response("The store is unreachable.");
    item
}

fn metrics() -> Value {
    let mut item = plain(
        "metrics",
        "Prometheus text format (scope metrics unless metrics_public).",
        "",
    );
    item["get"]
        .as_object_mut()
        .expect("operation")
        .remove("security");
    item["get"]["responses"]["401"] = error_response("No valid API key.");
    item["get"]["responses"]["403"] = error_response("The key lacks scope metrics.");
    item
}

fn openapi() -> Value {
    json!({ "get": {
        "tags": ["health"],
        "security": [],
        "summary": "This document.",
        "responses": { "200": { "description": "This document.", "content": {
            "application/json": { "schema": { "type": "object" } }
        } } }
    } })
}
