//! Subject, text and HTML templates per event kind (minijinja), with
//! built-in defaults for the three built-in kinds and one for every other.
//!
//! Template names inside the environment are `<kind>.subject`,
//! `<kind>.text`, `<kind>.html` and the partials `details.text` and
//! `details.html`, which overrides may `{% include %}`. Only names ending in
//! `.html` are auto-escaped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use clarion_core::channel::Delivery;
use clarion_core::event::{EventKind, Labels, Subject};
use clarion_core::registry::ChannelConfigError;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Serialize;

use crate::config::{DEFAULT_TEMPLATE_KEY, TemplateOverride};

/// The three parts of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Subject,
    Text,
    Html,
}

impl Part {
    const ALL: [Part; 3] = [Part::Subject, Part::Text, Part::Html];

    fn suffix(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Text => "text",
            Part::Html => "html",
        }
    }
}

const BUILT_IN: &[(&str, &str)] = &[
    ("details.text", include_str!("templates/details.text.j2")),
    ("details.html", include_str!("templates/details.html.j2")),
    (
        "rotation_success.subject",
        include_str!("templates/rotation_success.subject.j2"),
    ),
    (
        "rotation_success.text",
        include_str!("templates/rotation_success.text.j2"),
    ),
    (
        "rotation_success.html",
        include_str!("templates/rotation_success.html.j2"),
    ),
    (
        "rotation_failure.subject",
        include_str!("templates/rotation_failure.subject.j2"),
    ),
    (
        "rotation_failure.text",
        include_str!("templates/rotation_failure.text.j2"),
    ),
    (
        "rotation_failure.html",
        include_str!("templates/rotation_failure.html.j2"),
    ),
    (
        "approaching_deadline.subject",
        include_str!("templates/approaching_deadline.subject.j2"),
    ),
    (
        "approaching_deadline.text",
        include_str!("templates/approaching_deadline.text.j2"),
    ),
    (
        "approaching_deadline.html",
        include_str!("templates/approaching_deadline.html.j2"),
    ),
    (
        "default.subject",
        include_str!("templates/default.subject.j2"),
    ),
    ("default.text", include_str!("templates/default.text.j2")),
    ("default.html", include_str!("templates/default.html.j2")),
];

/// A rendered message body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rendered {
    /// One line, control characters removed.
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Compiled templates; cheap to share.
#[derive(Clone)]
pub(crate) struct Templates {
    env: Arc<Environment<'static>>,
    /// Kinds with at least one template of their own (built-in or override).
    kinds: Arc<BTreeSet<String>>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("kinds", &self.kinds)
            .finish_non_exhaustive()
    }
}

impl Templates {
    /// Compiles the defaults and the overrides; a syntax error names the
    /// field (`templates.rotation_failure.subject`) and the line.
    pub fn new(overrides: &BTreeMap<String, TemplateOverride>) -> Result<Self, ChannelConfigError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.set_keep_trailing_newline(true);
        env.add_filter("datetime", datetime);
        env.add_filter("capitalize_first", capitalize_first);
        env.add_filter("pad", pad);
        for (name, source) in BUILT_IN {
            env.add_template(name, source)
                .expect("built-in templates compile (checked by tests)");
        }
        let mut kinds: BTreeSet<String> = EventKind::BUILT_IN
            .iter()
            .map(|k| k.as_str().to_owned())
            .collect();
        for (kind, parts) in overrides {
            if kind != DEFAULT_TEMPLATE_KEY {
                kinds.insert(kind.clone());
            }
            for part in Part::ALL {
                let source = match part {
                    Part::Subject => &parts.subject,
                    Part::Text => &parts.text,
                    Part::Html => &parts.html,
                };
                let Some(source) = source else { continue };
                let name = format!("{kind}.{}", part.suffix());
                env.add_template_owned(name, source.clone()).map_err(|e| {
                    ChannelConfigError::field(
                        format!("templates.{kind}.{}", part.suffix()),
                        format!("template does not compile: {}", describe(&e)),
                    )
                })?;
            }
        }
        // A kind with only some parts overridden falls back part by part (see
        // `name_for`).
        let templates = Templates {
            env: Arc::new(env),
            kinds: Arc::new(kinds),
        };
        // Render every template once against a sample of each kind, so that
        // an override that compiles but fails at render time (an unknown
        // filter, a type error) is reported at load time, not as dead mail.
        for kind in templates
            .kinds
            .iter()
            .cloned()
            .chain([DEFAULT_TEMPLATE_KEY.into()])
        {
            let event_kind: EventKind = kind.parse().unwrap_or(EventKind::Custom(kind.clone()));
            let sample = crate::sample_delivery(event_kind);
            for part in Part::ALL {
                if let Err(e) = templates.render_part(&sample, part) {
                    let name = templates.name_for(sample.notification.event.kind.as_str(), part);
                    return Err(ChannelConfigError::field(
                        format!("templates.{name}"),
                        format!("template fails on a sample {kind} event: {e}"),
                    ));
                }
            }
        }
        Ok(templates)
    }

    /// The template that renders `part` for `kind`: the kind's own (override
    /// or built-in), else the `default` one.
    fn name_for(&self, kind: &str, part: Part) -> String {
        let own = format!("{kind}.{}", part.suffix());
        if self.env.get_template(&own).is_ok() {
            own
        } else {
            format!("{DEFAULT_TEMPLATE_KEY}.{}", part.suffix())
        }
    }

    fn render_part(&self, delivery: &Delivery, part: Part) -> Result<String, RenderError> {
        let kind = delivery.notification.event.kind.as_str();
        let name = self.name_for(kind, part);
        let template = self.env.get_template(&name).map_err(|e| RenderError {
            template: name.clone(),
            detail: describe(&e),
        })?;
        template
            .render(Context::of(delivery))
            .map_err(|e| RenderError {
                template: name,
                detail: describe(&e),
            })
    }

    /// Renders the three parts for a delivery.
    pub fn render(&self, delivery: &Delivery) -> Result<Rendered, RenderError> {
        Ok(Rendered {
            subject: one_line(&self.render_part(delivery, Part::Subject)?),
            text: self.render_part(delivery, Part::Text)?,
            html: self.render_part(delivery, Part::Html)?,
        })
    }
}

/// A template that failed to render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {template:?} failed to render: {detail}")]
pub struct RenderError {
    /// The template's name, e.g. `rotation_failure.subject`.
    pub template: String,
    /// minijinja's explanation, with the line.
    pub detail: String,
}

fn describe(e: &minijinja::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// What templates see.
#[derive(Serialize)]
struct Context<'a> {
    kind: &'a str,
    /// `rotation failure`.
    kind_label: String,
    subject: &'a Subject,
    /// `symmetric key "payments-dek" (key-42)` or `symmetric key key-42`.
    subject_label: String,
    /// The name if there is one, else the id.
    display_name: &'a str,
    /// `symmetric key`.
    object_type: String,
    owner: Option<&'a str>,
    severity: &'a str,
    occurred_at: String,
    labels: &'a Labels,
    data: &'a serde_json::Value,
    /// For deadlines: `in 5 days`, `tomorrow`, `today`, `2 days ago`.
    due_in: Option<String>,
    notification_id: String,
    delivery_id: String,
    attempt: u32,
    channel: &'a str,
}

impl<'a> Context<'a> {
    fn of(delivery: &'a Delivery) -> Self {
        let event = &delivery.notification.event;
        let object_type = event.subject.object_type.as_str().replace('_', " ");
        let subject_label = match &event.subject.name {
            Some(name) => format!("{object_type} \"{name}\" ({})", event.subject.id),
            None => format!("{object_type} {}", event.subject.id),
        };
        let due_in = event
            .data
            .get("days_remaining")
            .and_then(|d| d.as_i64())
            .map(|d| match d {
                0 => "today".to_owned(),
                1 => "tomorrow".to_owned(),
                -1 => "1 day ago (overdue)".to_owned(),
                d if d < 0 => format!("{} days ago (overdue)", -d),
                d => format!("in {d} days"),
            });
        Context {
            kind: event.kind.as_str(),
            kind_label: event.kind.as_str().replace(['_', '.', '-'], " "),
            subject: &event.subject,
            subject_label,
            display_name: event.subject.name.as_deref().unwrap_or(&event.subject.id),
            object_type,
            owner: event.owner.as_deref(),
            severity: event.severity.as_str(),
            occurred_at: event.occurred_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            labels: &event.labels,
            data: &event.data,
            due_in,
            notification_id: delivery.notification.id.to_string(),
            delivery_id: delivery.id.to_string(),
            attempt: delivery.attempt,
            channel: &delivery.channel,
        }
    }
}

/// `{{ ts|datetime }}`: an RFC 3339 timestamp as `2026-11-22 05:00 UTC`;
/// anything else unchanged.
fn datetime(value: Value) -> Value {
    match value.as_str().and_then(|s| s.parse::<DateTime<Utc>>().ok()) {
        Some(ts) => Value::from(ts.format("%Y-%m-%d %H:%M UTC").to_string()),
        None => value,
    }
}

/// `{{ s|capitalize_first }}`: upper-cases the first letter only.
fn capitalize_first(value: String) -> String {
    let mut chars = value.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => value,
    }
}

/// `{{ s|pad(16) }}`: pads with spaces on the right to a width.
fn pad(value: String, width: usize) -> String {
    format!("{value:<width$}")
}

/// Flattens a rendered subject to one safe header line: every control
/// character (CR, LF, TAB …) becomes a space, runs of spaces collapse, and
/// the result is capped at 200 characters.
pub(crate) fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last_space = true;
    for c in s.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    let trimmed = out.trim_end();
    match trimmed.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &trimmed[..i]),
        None => trimmed.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_removes_line_breaks_and_controls() {
        assert_eq!(
            one_line("a\r\nBcc: evil@example.com\tx\0y "),
            "a Bcc: evil@example.com x y"
        );
        assert_eq!(one_line("  lead"), "lead");
        let long = "x".repeat(500);
        assert_eq!(one_line(&long).chars().count(), 201);
    }

    #[test]
    fn built_in_templates_compile() {
        Templates::new(&BTreeMap::new()).unwrap();
    }

    #[test]
    fn datetime_filter_formats_rfc3339_only() {
        assert_eq!(
            datetime(Value::from("2026-11-22T05:10:00Z")).as_str(),
            Some("2026-11-22 05:10 UTC")
        );
        assert_eq!(datetime(Value::from("soon")).as_str(), Some("soon"));
    }
}
