//! A fake Microsoft Teams Workflows webhook ("When a Teams webhook request
//! is received" → "Post card in a chat or channel"), following:
//!
//! - <https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using>
//!   (Office 365 connectors retired; Workflows take Adaptive Cards only, as
//!   `{"type": "message", "attachments": [{"contentType":
//!   "application/vnd.microsoft.card.adaptive", "content": {…}}]}`; the
//!   flow answers `202 Accepted`);
//! - <https://adaptivecards.io/explorer/> (AdaptiveCard `version`, `body`;
//!   `TextBlock.text`, `color`; `FactSet.facts[].title/value`;
//!   `Container.items`, `style`) and Teams' support for card versions up to
//!   1.5 (<https://learn.microsoft.com/en-us/microsoftteams/platform/task-modules-and-cards/cards/cards-reference>);
//! - Power Automate's answer to a request that does not match the trigger's
//!   schema: `400` with `{"error": {"code": "TriggerInputSchemaMismatch", "message": …}}`.

use serde_json::{Map, Value, json};

use super::vendor::{VendorFake, json_object};
use super::webhook::{Recorded, Reply};

/// The documented envelope around a minimal card.
pub const EXAMPLE_CARD: &str = r#"{"type": "message", "attachments": [{
  "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null,
  "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
    "type": "AdaptiveCard", "version": "1.2",
    "body": [{"type": "TextBlock", "text": "For Samples and Templates, see https://adaptivecards.io/samples"}]}}]}"#;

/// The path of the fake's flow trigger (the signature in its query is the secret).
pub const TEAMS_PATH: &str =
    "/workflows/0c1a2b3c/triggers/manual/paths/invoke?api-version=1&sig=te4msS1gnatureXXXXXXXX";

/// Starts a fake Teams Workflows webhook at [`TEAMS_PATH`].
pub async fn start_teams() -> VendorFake {
    VendorFake::start(TEAMS_PATH, teams_rules).await
}

/// The flow's answer to one request.
pub fn teams_rules(request: &Recorded, path: &str) -> Reply {
    if request.path != path {
        return Reply::with_body(404, r#"{"error":{"code":"WorkflowNotFound"}}"#);
    }
    match json_object(request)
        .ok_or_else(|| "the body is not a JSON object".to_owned())
        .and_then(|m| check_message(&m))
    {
        Ok(()) => Reply::status(202),
        Err(message) => Reply::with_body(
            400,
            json!({"error": {"code": "TriggerInputSchemaMismatch", "message": message}})
                .to_string(),
        ),
    }
}

fn check_message(message: &Map<String, Value>) -> Result<(), String> {
    if message.get("type").and_then(Value::as_str) != Some("message") {
        return Err("type must be \"message\"".into());
    }
    let attachments = message.get("attachments").and_then(Value::as_array);
    let attachments = attachments
        .filter(|a| !a.is_empty())
        .ok_or("attachments must be a non-empty array")?;
    for attachment in attachments {
        let content_type = attachment.get("contentType").and_then(Value::as_str);
        if content_type != Some("application/vnd.microsoft.card.adaptive") {
            return Err(format!(
                "contentType {content_type:?} is not an Adaptive Card"
            ));
        }
        let card = attachment
            .get("content")
            .and_then(Value::as_object)
            .ok_or("content must be a card")?;
        if card.get("type").and_then(Value::as_str) != Some("AdaptiveCard") {
            return Err("content.type must be \"AdaptiveCard\"".into());
        }
        let version = card.get("version").and_then(Value::as_str).unwrap_or("");
        if !["1.0", "1.1", "1.2", "1.3", "1.4", "1.5"].contains(&version) {
            return Err(format!(
                "card version {version:?} is not one Teams renders (1.0 to 1.5)"
            ));
        }
        elements(card.get("body"))?;
    }
    Ok(())
}

fn elements(items: Option<&Value>) -> Result<(), String> {
    let items = items.and_then(Value::as_array).filter(|i| !i.is_empty());
    items
        .ok_or("body/items must be a non-empty array")?
        .iter()
        .try_for_each(element)
}

fn element(item: &Value) -> Result<(), String> {
    const COLORS: &[&str] = &[
        "Default",
        "Dark",
        "Light",
        "Accent",
        "Good",
        "Warning",
        "Attention",
    ];
    const STYLES: &[&str] = &[
        "default",
        "emphasis",
        "good",
        "attention",
        "warning",
        "accent",
    ];
    let text = |key: &str| item.get(key).and_then(Value::as_str);
    match text("type") {
        Some("TextBlock") => {
            text("text")
                .filter(|t| !t.is_empty())
                .ok_or("a TextBlock needs text")?;
            match text("color") {
                Some(c) if !COLORS.contains(&c) => {
                    Err(format!("color {c:?} is not an Adaptive Card colour"))
                }
                _ => Ok(()),
            }
        }
        Some("FactSet") => {
            let facts = item
                .get("facts")
                .and_then(Value::as_array)
                .ok_or("a FactSet needs facts")?;
            let ok = facts.iter().all(|f| {
                f.get("title").is_some_and(Value::is_string)
                    && f.get("value").is_some_and(Value::is_string)
            });
            ok.then_some(())
                .ok_or_else(|| "every fact needs a string title and value".into())
        }
        Some("Container") => match text("style") {
            Some(s) if !STYLES.contains(&s) => Err(format!("style {s:?} is not a container style")),
            _ => elements(item.get("items")),
        },
        other => Err(format!("element type {other:?} is not one this fake knows")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(body: &str, path: &str) -> u16 {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        let request = Recorded {
            method: axum::http::Method::POST,
            path: path.into(),
            headers,
            body: body.to_owned().into(),
        };
        match teams_rules(&request, TEAMS_PATH) {
            Reply::Status(code, _, _) => code,
            Reply::Hang => unreachable!(),
        }
    }

    #[test]
    fn the_documented_example_passes_and_broken_envelopes_fail() {
        assert_eq!(verdict(EXAMPLE_CARD, TEAMS_PATH), 202);
        assert_eq!(verdict(EXAMPLE_CARD, "/workflows/other"), 404);
        let legacy = r#"{"@type": "MessageCard", "text": "retired connector format"}"#;
        assert_eq!(verdict(legacy, TEAMS_PATH), 400);
        for (from, to) in [
            (
                "application/vnd.microsoft.card.adaptive",
                "application/vnd.microsoft.card.hero",
            ),
            ("\"1.2\"", "\"2.0\""),
            ("\"TextBlock\"", "\"Marquee\""),
        ] {
            assert_eq!(
                verdict(&EXAMPLE_CARD.replace(from, to), TEAMS_PATH),
                400,
                "{to}"
            );
        }
    }
}
