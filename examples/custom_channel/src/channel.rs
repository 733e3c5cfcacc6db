//! Steps 2 and 3: the channel built from its configuration, and `deliver`
//! with every outcome classified. The HTTP plumbing (client, TLS, timeouts,
//! `Retry-After`, secret-safe reasons) is [`clarion_http`]'s.

use async_trait::async_trait;
use clarion_core::channel::{Channel, Delivery, DeliveryError, Receipt};
use clarion_core::event::{KeyEvent, Severity};
use clarion_core::registry::ChannelConfigError;
use clarion_http::{HttpClient, HttpSettings, SecretUrl};
use secrecy::{ExposeSecret, SecretString};

use crate::NtfyConfig;

/// Pushes each delivery to one ntfy topic. `Debug` is derived: the client,
/// the URL and `SecretString` never print a secret.
#[derive(Debug)]
pub struct NtfyChannel {
    http: HttpClient,
    /// The server's root, where ntfy accepts JSON publishes.
    endpoint: SecretUrl,
    topic: SecretString,
    token: Option<SecretString>,
}

impl NtfyChannel {
    /// Step 2: checks what serde cannot and builds the channel. Errors name
    /// the field; clarion adds the path (`channels.oncall-phone.topic: …`).
    /// No network I/O: a configuration must build while the server is down.
    pub fn from_config(config: NtfyConfig) -> Result<Self, ChannelConfigError> {
        // A server under a path prefix publishes at `<prefix>/`.
        let server = format!("{}/", config.server.trim().trim_end_matches('/'));
        let endpoint =
            SecretUrl::parse(&server).map_err(|e| ChannelConfigError::field("server", e))?;
        let topic = config.topic.expose_secret();
        let topic_ok = (1..=64).contains(&topic.len())
            && (topic.chars()).all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        require(topic_ok, "topic", TOPIC_RULE)?; // never echoed: it is a secret
        let token = config.token.as_ref().map_or("", |t| t.expose_secret());
        let token_ok = config.token.is_none() || !token.trim().is_empty();
        require(token_ok, "token", EMPTY_TOKEN)?;
        // Every secret the client knows is redacted from what a server echoes.
        let settings = HttpSettings::default().timeout(config.timeout);
        let builder = HttpClient::builder(&settings).at("").endpoint(&endpoint);
        let http = builder.secret(topic).secret(token).build()?;
        let (topic, token) = (config.topic, config.token);
        Ok(NtfyChannel {
            http,
            endpoint,
            topic,
            token,
        })
    }
}

const TOPIC_RULE: &str = "expected 1-64 letters, digits, '-' or '_'";
const EMPTY_TOKEN: &str = "is empty; remove it or set an access token (tk_…)";

fn require(ok: bool, field: &str, message: &str) -> Result<(), ChannelConfigError> {
    ok.then_some(())
        .ok_or_else(|| ChannelConfigError::field(field, message))
}

#[async_trait]
impl Channel for NtfyChannel {
    /// Step 3: one JSON publish per delivery. Cancel-safe: the future holds
    /// nothing but the request, so the dispatcher's timeout may drop it.
    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt, DeliveryError> {
        let event = &delivery.notification.event;
        let (priority, tag) = look(event.severity);
        let name = event.subject.name.as_deref().unwrap_or(&event.subject.id);
        let body = serde_json::json!({
            "topic": self.topic.expose_secret(),
            "title": format!("{}: {} {name}", event.kind, event.subject.object_type),
            "message": message(event),
            "priority": priority,
            "tags": [tag, event.kind.as_str()],
        });
        // ntfy ignores the idempotency key; a proxy can drop duplicates by it.
        let mut request = (self.http.json_request(&self.endpoint, &body)?)
            .header("idempotency-key", delivery.idempotency_key());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose_secret());
        }
        // No answer is retryable. An answer: ntfy's own rules, then the
        // defaults (429 throttled; 408, 425, 5xx retryable; 4xx permanent).
        let response = self.http.send(request).await?;
        match response.status().as_u16() {
            // ntfy answers with the message it stored: {"id": "…", …}.
            200..=299 => {
                let stored = response.json::<serde_json::Value>();
                let id = stored.as_ref().and_then(|v| v.get("id")?.as_str());
                let id = id.map(|id| format!(", message {id}")).unwrap_or_default();
                Ok(Receipt::new(format!("ntfy {}{id}", response.status())))
            }
            401 | 403 => Err(response.permanent("check token and the topic's access rules")),
            _ => response.classify(),
        }
    }
}

fn message(event: &KeyEvent) -> String {
    let (s, at) = (&event.subject, event.occurred_at.to_rfc3339());
    let mut text = format!("{} {} ({}) at {at}", s.object_type, s.id, event.severity);
    for (key, value) in event.data.as_object().into_iter().flatten() {
        let value = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        text.push_str(&format!("\n{key}: {value}"));
    }
    text
}

/// ntfy's priority (3 default, 4 high, 5 max) and a tag it shows as an emoji.
fn look(severity: Severity) -> (u8, &'static str) {
    match severity {
        Severity::Info => (3, "white_check_mark"),
        Severity::Warning => (4, "warning"),
        Severity::Critical => (5, "rotating_light"),
    }
}
