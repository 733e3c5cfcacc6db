//! The webhook channel: one signed POST per delivery.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use clarion_core::channel::{Channel, Delivery, DeliveryError, Receipt};
use clarion_core::registry::ChannelConfigError;
use clarion_http::{HttpClient, HttpSettings, SecretUrl};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret;

use crate::body::BodyMaker;
use crate::config::{BodyFormat, WebhookConfig};
use crate::secret::WebhookSecret;
use crate::verify::{WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP};

pub use clarion_http::{MAX_REDIRECTS, USER_AGENT};

/// Headers clarion sets itself; `headers` may not name them.
const RESERVED_HEADERS: [&str; 5] = [
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
];

/// A webhook endpoint: POSTs each delivery, signed per Standard Webhooks.
///
/// Holds one [`HttpClient`] (so connections are reused) using rustls with
/// the ring provider. `Debug` shows the endpoint's origin, the number of
/// secrets and the header names, never their values.
#[derive(Clone)]
pub struct WebhookChannel {
    http: HttpClient,
    url: SecretUrl,
    secrets: Arc<[WebhookSecret]>,
    headers: HeaderMap,
    body: BodyMaker,
    format: BodyFormat,
}

impl fmt::Debug for WebhookChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let custom: Vec<&str> = self
            .headers
            .keys()
            .filter(|k| **k != header::CONTENT_TYPE)
            .map(HeaderName::as_str)
            .collect();
        f.debug_struct("WebhookChannel")
            .field("endpoint", &self.url.origin())
            .field("secrets", &self.secrets.len())
            .field("headers", &custom)
            .field("format", &self.format)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

impl WebhookChannel {
    /// Builds the channel from its settings, checking every field: errors name
    /// the field (`url`, `secrets[1]`, `headers.webhook-id`, `body_template` …)
    /// and never repeat a secret.
    pub fn from_config(config: WebhookConfig) -> Result<Self, ChannelConfigError> {
        let url = SecretUrl::parse(config.url.expose_secret())
            .map_err(|e| ChannelConfigError::field("url", e))?;
        let settings = HttpSettings {
            timeout: config.timeout,
            connect_timeout: None,
            allow_redirects: config.allow_redirects,
            tls_ca_file: config.tls_ca_file.clone(),
            proxy: config.proxy.clone(),
        };
        // The settings sit at the top of a webhook's table.
        let mut http = HttpClient::builder(&settings).at("").endpoint(&url);

        let mut secrets: Vec<WebhookSecret> = Vec::with_capacity(config.secrets.len());
        for (i, raw) in config.secrets.iter().enumerate() {
            let raw = raw.expose_secret();
            http = http
                .secret(raw.trim())
                .secret(raw.trim().trim_start_matches(crate::SECRET_PREFIX));
            let secret = WebhookSecret::parse(raw)
                .map_err(|e| ChannelConfigError::field(format!("secrets[{i}]"), e.to_string()))?;
            if let Some(j) = secrets.iter().position(|s| s.same_key(&secret)) {
                return Err(ChannelConfigError::field(
                    format!("secrets[{i}]"),
                    format!("the same secret as secrets[{j}]; list each secret once"),
                ));
            }
            secrets.push(secret);
        }
        if secrets.is_empty() && config.format == BodyFormat::Standard {
            return Err(ChannelConfigError::field(
                "secrets",
                "format = \"standard\" needs at least one signing secret, \
                 e.g. secrets = [\"${WEBHOOK_SECRET}\"] with WEBHOOK_SECRET=whsec_$(openssl rand -base64 32)",
            ));
        }

        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let field = format!("headers.{name}");
            let header_name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| ChannelConfigError::field(&field, "not a valid HTTP header name"))?;
            if header_name.as_str().starts_with("webhook-")
                || RESERVED_HEADERS.contains(&header_name.as_str())
            {
                let how = if header_name == header::CONTENT_TYPE {
                    "; with format = \"template\" set content_type instead"
                } else {
                    ""
                };
                return Err(ChannelConfigError::field(
                    &field,
                    format!("{header_name} is set by clarion and cannot be overridden{how}"),
                ));
            }
            let value = value.expose_secret();
            http = http.secret(value);
            let mut header_value = HeaderValue::from_str(value.trim()).map_err(|_| {
                ChannelConfigError::field(
                    &field,
                    "the value has characters an HTTP header cannot carry (control characters or non-ASCII)",
                )
            })?;
            header_value.set_sensitive(true);
            headers.insert(header_name, header_value);
        }

        let body = match config.format {
            BodyFormat::Standard => {
                if config.body_template.is_some() {
                    return Err(ChannelConfigError::field(
                        "body_template",
                        "only used with format = \"template\"; remove it or set format = \"template\"",
                    ));
                }
                if config.content_type.is_some() {
                    return Err(ChannelConfigError::field(
                        "content_type",
                        "only used with format = \"template\" (the standard body is application/json); \
                         remove it or set format = \"template\"",
                    ));
                }
                BodyMaker::Standard
            }
            BodyFormat::Template => {
                let Some(source) = config.body_template.clone() else {
                    return Err(ChannelConfigError::field(
                        "body_template",
                        "required with format = \"template\": a minijinja template of the body, \
                         e.g. '{\"text\": \"{{ type }} for {{ notification.subject.id }}\"}'",
                    ));
                };
                let content_type = config.content_type.as_deref().unwrap_or("application/json");
                let content_type = HeaderValue::from_str(content_type.trim()).map_err(|_| {
                    ChannelConfigError::field("content_type", "not a valid content type")
                })?;
                let maker = BodyMaker::template(source, content_type)
                    .map_err(|e| ChannelConfigError::field("body_template", e.0))?;
                maker
                    .render(&clarion_http::sample_delivery())
                    .map_err(|e| {
                        ChannelConfigError::field(
                            "body_template",
                            format!("fails on a sample rotation_failure event: {}", e.0),
                        )
                    })?;
                maker
            }
        };
        headers.insert(header::CONTENT_TYPE, body.content_type());

        let http = http.build()?;

        Ok(WebhookChannel {
            http,
            url,
            secrets: secrets.into(),
            headers,
            body,
            format: config.format,
        })
    }

    /// The endpoint's `scheme://host:port`.
    pub fn endpoint(&self) -> &str {
        self.url.origin()
    }

    /// The exact body [`Channel::deliver`] sends for `delivery`.
    pub fn body(&self, delivery: &Delivery) -> Result<Vec<u8>, DeliveryError> {
        self.body.render(delivery).map_err(|e| {
            DeliveryError::permanent(format!("body_template {}", self.http.redact(&e.0)))
        })
    }

    /// The `webhook-signature` value for one message: one `v1,` signature per
    /// configured secret, space-separated (empty without secrets).
    pub fn signature(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut out = String::with_capacity(48 * self.secrets.len());
        for (i, secret) in self.secrets.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(&secret.sign(id, timestamp, body));
        }
        out
    }
}

#[async_trait]
impl Channel for WebhookChannel {
    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt, DeliveryError> {
        let body = self.body(delivery)?;
        let id = delivery.idempotency_key();
        let timestamp = chrono::Utc::now().timestamp();
        let signature = self.signature(&id, timestamp, &body);

        let mut headers = self.headers.clone();
        let id_value = HeaderValue::from_str(&id).expect("idempotency keys are ASCII");
        headers.insert(WEBHOOK_ID, id_value);
        headers.insert(WEBHOOK_TIMESTAMP, HeaderValue::from(timestamp));
        if !signature.is_empty() {
            let value = HeaderValue::from_str(&signature).expect("base64 is ASCII");
            headers.insert(WEBHOOK_SIGNATURE, value);
        }

        let request = self.http.post(&self.url).headers(headers).body(body);
        // The status alone decides: a webhook has no vendor-specific answers.
        self.http.send(request).await?.classify()
    }

    /// Opens a TCP connection to the endpoint (or the configured proxy)
    /// within `timeout`; sends nothing.
    async fn check(&self) -> Result<(), DeliveryError> {
        self.http.check(&self.url).await
    }
}
