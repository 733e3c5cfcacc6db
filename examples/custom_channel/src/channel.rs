//! Steps 2 and 3: the channel built from its configuration, and `deliver`
//! with every outcome classified.

use std::error::Error as _;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use clarion_core::channel::{Channel, Delivery, DeliveryError, Receipt};
use clarion_core::event::{KeyEvent, Severity};
use clarion_core::registry::ChannelConfigError;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::NtfyConfig;

/// How much of an error answer a reason keeps.
const ERROR_TEXT_CHARS: usize = 200;

/// Pushes each delivery to one ntfy topic.
///
/// One `reqwest::Client` per channel, so connections are reused; the
/// dispatcher shares the channel across its tasks.
pub struct NtfyChannel {
    client: reqwest::Client,
    /// The server's root, where ntfy accepts JSON publishes.
    endpoint: Url,
    topic: SecretString,
    token: Option<SecretString>,
    timeout: Duration,
}

// By hand, not derived: the topic and the token must never be printed.
impl fmt::Debug for NtfyChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NtfyChannel")
            .field("endpoint", &self.endpoint.as_str())
            .field("topic", &"[secret]")
            .field("token", &self.token.as_ref().map(|_| "[secret]"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl NtfyChannel {
    /// Step 2: checks what serde cannot and builds the channel.
    ///
    /// Errors name the field (`ChannelConfigError::field`); clarion adds the
    /// path, e.g. `channels.oncall-phone.topic: …`. No network I/O here:
    /// building a configuration must not depend on the server being up
    /// (that is what [`Channel::check`] is for).
    pub fn from_config(config: NtfyConfig) -> Result<Self, ChannelConfigError> {
        let mut endpoint = Url::parse(config.server.trim()).map_err(|e| {
            ChannelConfigError::field(
                "server",
                format!("not a valid URL ({e}); expected e.g. \"https://ntfy.example.com\""),
            )
        })?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
            return Err(ChannelConfigError::field(
                "server",
                "expected an http:// or https:// URL with a host",
            ));
        }
        if !endpoint.path().ends_with('/') {
            // A server under a path prefix publishes at `<prefix>/`.
            let path = format!("{}/", endpoint.path());
            endpoint.set_path(&path);
        }
        let topic = config.topic.expose_secret();
        let valid_topic = (1..=64).contains(&topic.len())
            && topic
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid_topic {
            // Not echoed: the topic is a secret.
            return Err(ChannelConfigError::field(
                "topic",
                "expected 1-64 letters, digits, '-' or '_'",
            ));
        }
        if config
            .token
            .as_ref()
            .is_some_and(|t| t.expose_secret().trim().is_empty())
        {
            return Err(ChannelConfigError::field(
                "token",
                "is empty; remove it or set an access token (tk_…)",
            ));
        }
        if config.timeout.is_zero() {
            return Err(ChannelConfigError::field("timeout", "must be more than 0s"));
        }
        let client = http_client(endpoint.scheme() == "https", config.timeout)
            .map_err(|e| ChannelConfigError::field("server", e))?;
        Ok(NtfyChannel {
            client,
            endpoint,
            topic: config.topic,
            token: config.token,
            timeout: config.timeout,
        })
    }

    /// `scheme://host:port` of the server, for reasons and receipts.
    fn origin(&self) -> String {
        self.endpoint.origin().ascii_serialization()
    }

    /// `text` (from the network) with the secrets replaced and cut short.
    fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        let secrets = std::iter::once(&self.topic).chain(self.token.as_ref());
        // Shorter values are too common to hide (and too short to be secret).
        for secret in secrets.filter(|s| s.expose_secret().len() >= 4) {
            text = text.replace(secret.expose_secret(), "[secret]");
        }
        let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        one_line.chars().take(ERROR_TEXT_CHARS).collect()
    }

    /// Step 3: what an HTTP answer means.
    fn classify(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &str,
    ) -> Result<Receipt, DeliveryError> {
        if status.is_success() {
            // ntfy answers with the message it stored: {"id": "…", …}.
            let id = serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("id")?.as_str().map(str::to_owned));
            let id = id.map(|id| format!(", message {id}")).unwrap_or_default();
            return Ok(Receipt::new(format!("ntfy {status}{id}")));
        }
        let reason = format!("{} answered {status}: {}", self.origin(), self.redact(body));
        match status.as_u16() {
            // The server is busy or rate-limits us (ntfy's visitor limits):
            // come back later, when it says if it says.
            408 | 425 | 429 | 500..=599 => Err(DeliveryError::Retryable {
                reason,
                retry_after: retry_after(headers),
            }),
            401 | 403 => Err(DeliveryError::permanent(format!(
                "{reason} (check token and the topic's access rules)"
            ))),
            // 3xx (redirects are not followed), 400, 404, 413 …: sending the
            // same request again will not change the answer.
            _ => Err(DeliveryError::permanent(reason)),
        }
    }

    /// Step 3: what a request that got no HTTP answer means.
    fn classify_error(&self, error: reqwest::Error) -> DeliveryError {
        let error = error.without_url();
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            text = format!("{text}: {cause}");
            source = cause.source();
        }
        let origin = self.origin();
        let text = self.redact(&text);
        if error.is_builder() {
            DeliveryError::permanent(format!("cannot build the request to {origin}: {text}"))
        } else if error.is_timeout() {
            DeliveryError::retryable(format!(
                "no answer from {origin} within {:?}: {text}",
                self.timeout
            ))
        } else {
            // Refused connections, resets, DNS: usually passing.
            DeliveryError::retryable(format!("cannot reach {origin}: {text}"))
        }
    }
}

#[async_trait]
impl Channel for NtfyChannel {
    /// One JSON publish per delivery. Cancel-safe: the future holds nothing
    /// but the request, so the dispatcher's timeout may drop it at any point.
    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt, DeliveryError> {
        let event = &delivery.notification.event;
        let body = serde_json::json!({
            "topic": self.topic.expose_secret(),
            "title": title(event),
            "message": message(event),
            "priority": priority(event.severity),
            "tags": [tag(event.severity), event.kind.as_str()],
        });
        let mut request = self
            .client
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/json")
            // ntfy ignores it; a proxy or a custom receiver can drop the
            // duplicates that at-least-once delivery allows.
            .header("idempotency-key", delivery.idempotency_key())
            .body(body.to_string());
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose_secret());
        }
        let response = request.send().await.map_err(|e| self.classify_error(e))?;
        let (status, headers) = (response.status(), response.headers().clone());
        let body = response.text().await.map_err(|e| self.classify_error(e))?;
        self.classify(status, &headers, &body)
    }
}

/// `Retry-After` in seconds (ntfy's form).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

fn title(event: &KeyEvent) -> String {
    let name = event.subject.name.as_deref().unwrap_or(&event.subject.id);
    format!("{}: {} {name}", event.kind, event.subject.object_type)
}

fn message(event: &KeyEvent) -> String {
    let mut text = format!(
        "{} {} ({}) at {}",
        event.subject.object_type,
        event.subject.id,
        event.severity,
        event.occurred_at.to_rfc3339()
    );
    if let Some(data) = event.data.as_object().filter(|d| !d.is_empty()) {
        for (key, value) in data {
            let value = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            text.push_str(&format!("\n{key}: {value}"));
        }
    }
    text
}

/// ntfy priorities: 3 default, 4 high, 5 max.
fn priority(severity: Severity) -> u8 {
    match severity {
        Severity::Info => 3,
        Severity::Warning => 4,
        Severity::Critical => 5,
    }
}

/// A tag ntfy shows as an emoji.
fn tag(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "white_check_mark",
        Severity::Warning => "warning",
        Severity::Critical => "rotating_light",
    }
}

/// rustls with the ring provider, passed explicitly (nothing process-wide is
/// installed or assumed); the platform's trust store for `https`.
fn http_client(https: bool, timeout: Duration) -> Result<reqwest::Client, String> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let tls = if https {
        builder
            .with_platform_verifier()
            .map_err(|e| format!("cannot load the system's CA certificates: {e}"))?
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}
