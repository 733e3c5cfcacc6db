//! The default Block Kit message: a header with severity and kind, fields
//! for subject, owner, labels and the kind's data, and a context line.

use clarion_core::channel::Delivery;
use clarion_core::event::Severity;
use serde_json::{Value, json};

/// Slack's limits: header text, section field text, fields per section.
const HEADER_CHARS: usize = 150;
const FIELD_CHARS: usize = 2000;
const FIELDS_PER_SECTION: usize = 10;

pub(crate) fn blocks(delivery: &Delivery) -> Value {
    let event = &delivery.notification.event;
    let icon = match event.severity {
        Severity::Critical => ":rotating_light:",
        Severity::Warning => ":warning:",
        Severity::Info => ":information_source:",
    };
    let severity = event.severity.as_str().to_ascii_uppercase();
    let header = cut(&format!("{icon} {severity} · {}", event.kind), HEADER_CHARS);
    let mut facts = clarion_http::facts(delivery);
    // Time and id go to the context line.
    let context = facts.split_off(facts.len() - 2);
    let context = format!("clarion · {} · notification {}", context[0].1, context[1].1);
    let fields: Vec<Value> = facts
        .iter()
        .map(|(k, v)| format!("*{}*\n{}", escape(k), escape(v)))
        .map(|text| json!({"type": "mrkdwn", "text": cut(&text, FIELD_CHARS)}))
        .collect();
    let header = json!({"type": "plain_text", "text": header, "emoji": true});
    let mut blocks = vec![json!({"type": "header", "text": header})];
    for chunk in fields.chunks(FIELDS_PER_SECTION) {
        blocks.push(json!({"type": "section", "fields": chunk}));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}));
    Value::Array(blocks)
}

/// Slack mrkdwn's three control characters.
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// At most `max` characters, cut on a character boundary with `…`.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}
