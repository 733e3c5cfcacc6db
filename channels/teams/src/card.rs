//! The Adaptive Card (1.4) and its `message` envelope.

use clarion_core::channel::Delivery;
use clarion_core::event::Severity;
use serde_json::{Value, json};

/// The attachment's content type for Adaptive Cards.
pub const ADAPTIVE_CARD: &str = "application/vnd.microsoft.card.adaptive";

/// The Workflows message for one delivery.
pub(crate) fn message(delivery: &Delivery) -> Value {
    let event = &delivery.notification.event;
    let (color, style) = match event.severity {
        Severity::Critical => ("Attention", "attention"),
        Severity::Warning => ("Warning", "warning"),
        Severity::Info => ("Accent", "accent"),
    };
    let title = format!(
        "{} · {}",
        event.severity.as_str().to_ascii_uppercase(),
        event.kind
    );
    let subject = clarion_http::subject_line(event);
    let facts: Vec<Value> = clarion_http::facts(delivery)
        .into_iter()
        .map(|(title, value)| json!({ "title": title, "value": value }))
        .collect();
    let card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": { "width": "Full" },
        "body": [
            { "type": "Container", "style": style, "bleed": true, "items": [
                { "type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "color": color, "wrap": true }
            ]},
            { "type": "TextBlock", "text": subject, "wrap": true },
            { "type": "FactSet", "facts": facts }
        ]
    });
    json!({
        "type": "message",
        "attachments": [{ "contentType": ADAPTIVE_CARD, "contentUrl": null, "content": card }]
    })
}
