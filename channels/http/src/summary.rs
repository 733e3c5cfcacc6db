//! A notification summed up the same way on every chat channel: one line,
//! and named facts.

use clarion_core::channel::Delivery;
use clarion_core::event::KeyEvent;

/// `symmetric_key key-42 (payments-dek)`.
pub fn subject_line(event: &KeyEvent) -> String {
    let s = &event.subject;
    match &s.name {
        Some(name) => format!("{} {} ({name})", s.object_type, s.id),
        None => format!("{} {}", s.object_type, s.id),
    }
}

/// `CRITICAL rotation_failure: symmetric_key key-42 (payments-dek)`.
pub fn headline(event: &KeyEvent) -> String {
    let severity = event.severity.as_str().to_ascii_uppercase();
    format!("{severity} {}: {}", event.kind, subject_line(event))
}

/// The facts a card shows, in order: `Subject`, `Owner` (`—` without one),
/// `Labels` (`k=v, …`, when there are any), each of the kind's data (strings
/// as they are, other values as JSON; nulls left out), `Occurred` (RFC 3339)
/// and `Notification` (its id).
///
/// ```
/// let facts = clarion_http::facts(&clarion_http::sample_delivery());
/// assert_eq!(facts[0], ("Subject".to_string(), "symmetric_key key-42 (payments-dek)".to_string()));
/// assert!(facts.contains(&("error".to_string(), "HSM unreachable".to_string())));
/// ```
pub fn facts(delivery: &Delivery) -> Vec<(String, String)> {
    let event = &delivery.notification.event;
    let owner = event.owner.clone().unwrap_or_else(|| "—".into());
    let mut facts = vec![
        ("Subject".into(), subject_line(event)),
        ("Owner".into(), owner),
    ];
    if !event.labels.is_empty() {
        let labels: Vec<String> = event
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        facts.push(("Labels".into(), labels.join(", ")));
    }
    for (key, value) in event.data.as_object().into_iter().flatten() {
        if !value.is_null() {
            let value = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            facts.push((key.clone(), value));
        }
    }
    facts.push(("Occurred".into(), event.occurred_at.to_rfc3339()));
    facts.push(("Notification".into(), delivery.notification.id.to_string()));
    facts
}
