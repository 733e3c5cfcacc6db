//! A fake Slack incoming webhook, following Slack's documentation:
//!
//! - <https://api.slack.com/messaging/webhooks> (POST JSON with `text`
//!   and/or `blocks` to the secret URL; `200` with the body `ok`);
//! - <https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks>
//!   (the error strings: `400 invalid_payload`, `400 no_text`, `403
//!   action_prohibited`, `404 channel_not_found`, `404 no_service`, `410
//!   channel_is_archived`);
//! - <https://api.slack.com/reference/block-kit/blocks> (limits: at most 50
//!   blocks; a header's `plain_text` at most 150 characters; a section's
//!   `text` at most 3000 and at most 10 `fields` of at most 2000 each; a
//!   context at most 10 elements; `invalid_blocks` otherwise);
//! - <https://api.slack.com/apis/rate-limits> (about one message per second
//!   per webhook; `429` with `Retry-After`: script it).

use serde_json::{Map, Value};

use super::vendor::{VendorFake, json_object};
use super::webhook::{Recorded, Reply};

/// The documented minimal message (from the incoming-webhooks page).
pub const EXAMPLE_TEXT: &str = r#"{"text": "Hello, world."}"#;
/// A documented-style Block Kit message: header, section with fields, context.
pub const EXAMPLE_BLOCKS: &str = r#"{"text": "fallback", "blocks": [
  {"type": "header", "text": {"type": "plain_text", "text": "New request"}},
  {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Type:*\nPaid Time Off"},
                                 {"type": "mrkdwn", "text": "*Created by:*\n<example.com|Fred Enriquez>"}]},
  {"type": "context", "elements": [{"type": "mrkdwn", "text": "Last updated Jan 1, 2019"}]}]}"#;

/// The path of the fake's webhook (a workspace, a channel and a token).
pub const SLACK_PATH: &str = "/services/T0CLARION/B0CLARION/s1ackT0kenXXXXXXXXXXXXX";

/// Starts a fake Slack webhook at [`SLACK_PATH`].
pub async fn start_slack() -> VendorFake {
    VendorFake::start(SLACK_PATH, slack_rules).await
}

/// Slack's answer to one incoming-webhook request.
pub fn slack_rules(request: &Recorded, path: &str) -> Reply {
    if request.path != path {
        return Reply::with_body(404, "no_service");
    }
    let Some(message) = json_object(request) else {
        return Reply::with_body(400, "invalid_payload");
    };
    let text = message.get("text").and_then(Value::as_str).unwrap_or("");
    let blocks = message.get("blocks");
    if text.trim().is_empty() && blocks.is_none() {
        return Reply::with_body(400, "no_text");
    }
    if let Some(blocks) = blocks
        && let Err(why) = check_blocks(blocks)
    {
        return Reply::with_body(400, format!("invalid_blocks: {why}"));
    }
    Reply::with_body(200, "ok")
}

fn text_object(value: Option<&Value>, max: usize, kinds: &[&str]) -> Result<(), String> {
    let object = value
        .and_then(Value::as_object)
        .ok_or("missing text object")?;
    let kind = object.get("type").and_then(Value::as_str).unwrap_or("");
    if !kinds.contains(&kind) {
        return Err(format!("text type {kind:?} not one of {kinds:?}"));
    }
    let text = object
        .get("text")
        .and_then(Value::as_str)
        .ok_or("text without text")?;
    let chars = text.chars().count();
    if chars == 0 || chars > max {
        return Err(format!("text of {chars} characters (1 to {max} allowed)"));
    }
    Ok(())
}

fn check_blocks(blocks: &Value) -> Result<(), String> {
    let blocks = blocks.as_array().ok_or("blocks is not an array")?;
    if blocks.is_empty() || blocks.len() > 50 {
        return Err(format!("{} blocks (1 to 50 allowed)", blocks.len()));
    }
    for (i, block) in blocks.iter().enumerate() {
        check_block(block.as_object().ok_or("a block is not an object")?)
            .map_err(|e| format!("blocks[{i}]: {e}"))?;
    }
    Ok(())
}

fn check_block(block: &Map<String, Value>) -> Result<(), String> {
    const BOTH: &[&str] = &["plain_text", "mrkdwn"];
    match block.get("type").and_then(Value::as_str) {
        Some("header") => text_object(block.get("text"), 150, &["plain_text"]),
        Some("section") => {
            let fields = block.get("fields").and_then(Value::as_array);
            if block.get("text").is_none() && fields.is_none() {
                return Err("a section needs text or fields".into());
            }
            if block.get("text").is_some() {
                text_object(block.get("text"), 3000, BOTH)?;
            }
            let fields = fields.map(Vec::as_slice).unwrap_or_default();
            if fields.len() > 10 {
                return Err(format!("{} fields (at most 10)", fields.len()));
            }
            fields
                .iter()
                .try_for_each(|f| text_object(Some(f), 2000, BOTH))
        }
        Some("context") => {
            let elements = block.get("elements").and_then(Value::as_array);
            let elements = elements.ok_or("a context needs elements")?;
            if elements.is_empty() || elements.len() > 10 {
                return Err(format!("{} context elements (1 to 10)", elements.len()));
            }
            elements
                .iter()
                .try_for_each(|e| text_object(Some(e), 3000, BOTH))
        }
        Some("divider") => Ok(()),
        other => Err(format!("block type {other:?} is not one this fake knows")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(path: &str, content_type: &str, body: &str) -> Recorded {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("content-type", content_type.parse().unwrap());
        Recorded {
            method: axum::http::Method::POST,
            path: path.into(),
            headers,
            body: body.to_owned().into(),
        }
    }

    fn verdict(body: &str) -> (u16, String) {
        match slack_rules(&post(SLACK_PATH, "application/json", body), SLACK_PATH) {
            Reply::Status(code, _, text) => (code, text),
            Reply::Hang => unreachable!(),
        }
    }

    #[test]
    fn the_documented_examples_pass_and_the_documented_errors_come_back() {
        assert_eq!(verdict(EXAMPLE_TEXT), (200, "ok".into()));
        assert_eq!(verdict(EXAMPLE_BLOCKS), (200, "ok".into()));
        assert_eq!(verdict("{not json"), (400, "invalid_payload".into()));
        assert_eq!(verdict(r#"{"text": " "}"#), (400, "no_text".into()));
        let long = format!(
            r#"{{"blocks": [{{"type": "header", "text": {{"type": "plain_text", "text": "{}"}}}}]}}"#,
            "x".repeat(151)
        );
        assert!(
            verdict(&long)
                .1
                .starts_with("invalid_blocks: blocks[0]: text of 151")
        );
        let fields = format!(
            r#"{{"blocks": [{{"type": "section", "fields": [{}]}}]}}"#,
            [r#"{"type": "mrkdwn", "text": "f"}"#; 11].join(",")
        );
        assert!(verdict(&fields).1.contains("11 fields"));
        let wrong = post("/services/T/B/other", "application/json", EXAMPLE_TEXT);
        assert!(
            matches!(slack_rules(&wrong, SLACK_PATH), Reply::Status(404, _, t) if t == "no_service")
        );
        let form = post(SLACK_PATH, "text/plain", EXAMPLE_TEXT);
        assert!(matches!(
            slack_rules(&form, SLACK_PATH),
            Reply::Status(400, _, _)
        ));
    }
}
