//! The webhook channel: one signed POST per delivery.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use clarion_core::channel::{Channel, Delivery, DeliveryError, Receipt};
use clarion_core::registry::ChannelConfigError;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::redirect;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::ExposeSecret;
use url::Url;

use crate::body::BodyMaker;
use crate::classify::{self, ERROR_BODY_READ, Redactor, SUCCESS_BODY_DRAIN};
use crate::config::{BodyFormat, WebhookConfig};
use crate::secret::WebhookSecret;
use crate::verify::{WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP};

/// The `user-agent` of every request: `clarion/<version>`.
pub const USER_AGENT: &str = concat!("clarion/", env!("CARGO_PKG_VERSION"));

/// Redirects followed at most, with `allow_redirects = true`.
pub const MAX_REDIRECTS: usize = 5;

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
/// Holds one `reqwest::Client` (so connections are reused) using rustls with
/// the ring provider. `Debug` shows the endpoint's origin, the number of
/// secrets and the header names, never their values.
#[derive(Clone)]
pub struct WebhookChannel {
    client: reqwest::Client,
    url: Url,
    origin: String,
    secrets: Arc<[WebhookSecret]>,
    headers: HeaderMap,
    body: BodyMaker,
    format: BodyFormat,
    timeout: Duration,
    allow_redirects: bool,
    redactor: Arc<Redactor>,
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
            .field("endpoint", &self.origin)
            .field("secrets", &self.secrets.len())
            .field("headers", &custom)
            .field("format", &self.format)
            .field("timeout", &self.timeout)
            .field("allow_redirects", &self.allow_redirects)
            .finish_non_exhaustive()
    }
}

impl WebhookChannel {
    /// Builds the channel from its settings, checking every field: errors name
    /// the field (`url`, `secrets[1]`, `headers.webhook-id`, `body_template` …)
    /// and never repeat a secret.
    pub fn from_config(config: WebhookConfig) -> Result<Self, ChannelConfigError> {
        let mut redactor = Redactor::default();

        let raw_url = config.url.expose_secret().trim();
        redactor.add(raw_url);
        let url = Url::parse(raw_url).map_err(|e| {
            ChannelConfigError::field(
                "url",
                format!("not a valid URL ({e}); expected e.g. \"https://siem.example.com/hooks/clarion\""),
            )
        })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(ChannelConfigError::field(
                "url",
                format!(
                    "scheme \"{}\" is not supported; use an http:// or https:// URL",
                    url.scheme()
                ),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(ChannelConfigError::field("url", "the URL has no host"));
        }
        // The path and query may hold a token (Slack, Teams); the host does not.
        redactor.add_with_parts(&url[url::Position::BeforePath..]);
        redactor.add(url.username());
        if let Some(password) = url.password() {
            redactor.add(password);
        }
        let origin = classify::origin(&url);
        if url.scheme() == "http" && !is_loopback(&url) {
            tracing::warn!(
                endpoint = %origin,
                "webhook url uses plain http: payloads are signed but travel unencrypted"
            );
        }

        let mut secrets: Vec<WebhookSecret> = Vec::with_capacity(config.secrets.len());
        for (i, raw) in config.secrets.iter().enumerate() {
            let raw = raw.expose_secret();
            redactor.add(raw.trim());
            redactor.add(raw.trim().trim_start_matches(crate::SECRET_PREFIX));
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
            redactor.add_with_parts(value);
            let mut header_value = HeaderValue::from_str(value.trim()).map_err(|_| {
                ChannelConfigError::field(
                    &field,
                    "the value has characters an HTTP header cannot carry (control characters or non-ASCII)",
                )
            })?;
            header_value.set_sensitive(true);
            headers.insert(header_name, header_value);
        }

        if config.timeout.is_zero() {
            return Err(ChannelConfigError::field(
                "timeout",
                "must be greater than zero, e.g. \"10s\"",
            ));
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
                maker.render(&sample_delivery()).map_err(|e| {
                    ChannelConfigError::field(
                        "body_template",
                        format!("fails on a sample rotation_failure event: {}", e.0),
                    )
                })?;
                maker
            }
        };
        headers.insert(header::CONTENT_TYPE, body.content_type());

        let extra_roots = match &config.tls_ca_file {
            None => Vec::new(),
            Some(path) => {
                load_ca_file(path).map_err(|e| ChannelConfigError::field("tls_ca_file", e))?
            }
        };
        let tls = tls_config(extra_roots, url.scheme() == "https").map_err(|e| match e {
            TlsSetupError::ExtraRoots(e) => ChannelConfigError::field("tls_ca_file", e),
            TlsSetupError::Other(e) => ChannelConfigError::new(e),
        })?;
        let client = build_client(tls, config.timeout, config.allow_redirects)
            .map_err(|e| ChannelConfigError::new(format!("cannot build the HTTP client: {e}")))?;

        Ok(WebhookChannel {
            client,
            url,
            origin,
            secrets: secrets.into(),
            headers,
            body,
            format: config.format,
            timeout: config.timeout,
            allow_redirects: config.allow_redirects,
            redactor: Arc::new(redactor),
        })
    }

    /// The endpoint's `scheme://host:port`.
    pub fn endpoint(&self) -> &str {
        &self.origin
    }

    /// The exact body [`Channel::deliver`] sends for `delivery`.
    pub fn body(&self, delivery: &Delivery) -> Result<Vec<u8>, DeliveryError> {
        self.body.render(delivery).map_err(|e| {
            DeliveryError::permanent(format!("body_template {}", self.redactor.redact(&e.0)))
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

    async fn read_prefix(response: &mut reqwest::Response, limit: usize) -> Vec<u8> {
        let mut buf = Vec::new();
        while buf.len() < limit {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = limit - buf.len();
                    buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) | Err(_) => break,
            }
        }
        buf
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {shown}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot parse {shown}: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "{shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(certs)
}

enum TlsSetupError {
    ExtraRoots(String),
    Other(String),
}

/// rustls with the ring provider (passed explicitly: nothing process-wide is
/// assumed or installed), the platform's trust store plus `extra_roots`,
/// HTTP/1.1.
fn tls_config(
    extra_roots: Vec<CertificateDer<'static>>,
    https: bool,
) -> Result<rustls::ClientConfig, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let has_extra = !extra_roots.is_empty();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError::Other(e.to_string()))?;
    let mut tls =
        match rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider) {
            Ok(verifier) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth(),
            Err(e) if has_extra => {
                return Err(TlsSetupError::ExtraRoots(format!(
                    "cannot use these certificates: {e}"
                )));
            }
            // No CA bundle on this machine: an http:// endpoint does not need one
            // (an https redirect target would then fail verification, retryably).
            Err(_) if !https => builder
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
            Err(e) => {
                return Err(TlsSetupError::Other(format!(
                    "cannot load the system's trusted CA certificates ({e}); install them \
                 (e.g. the ca-certificates package) or set tls_ca_file"
                )));
            }
        };
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

fn build_client(
    tls: rustls::ClientConfig,
    timeout: Duration,
    allow_redirects: bool,
) -> Result<reqwest::Client, String> {
    let policy = if allow_redirects {
        redirect::Policy::custom(|attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            if !matches!(attempt.status().as_u16(), 307 | 308) {
                // Hand the 3xx back: classification explains it.
                return attempt.stop();
            }
            let downgrade = attempt.url().scheme() == "http"
                && attempt.previous().iter().any(|u| u.scheme() == "https");
            if downgrade {
                return attempt.error("refusing to follow a redirect from https to http");
            }
            attempt.follow()
        })
    } else {
        redirect::Policy::none()
    };
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(USER_AGENT)
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(policy)
        .build()
        .map_err(|e| {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                text = format!("{text}: {cause}");
                source = cause.source();
            }
            text
        })
}

/// A fixed delivery for the config-time trial render of a template.
fn sample_delivery() -> Delivery {
    use clarion_core::event::{KeyEvent, ObjectType, RotationFailure, Subject};
    use clarion_core::notification::Notification;
    let at = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
    let event = KeyEvent::rotation_failure(
        Subject::new("key-42", ObjectType::SymmetricKey).named("payments-dek"),
        RotationFailure {
            error: "HSM unreachable".into(),
            attempt: 3,
            next_attempt: Some(at),
        },
    )
    .with_owner("alice")
    .with_label("env", "prod")
    .at(at);
    Delivery {
        id: uuid::Uuid::nil(),
        channel: "sample".into(),
        attempt: 1,
        notification: Notification::new(event, at),
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

        let sent = self
            .client
            .post(self.url.clone())
            .headers(headers)
            .body(body)
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(e) => {
                return Err(classify::classify_error(
                    e,
                    &self.origin,
                    self.timeout,
                    &self.redactor,
                ));
            }
        };

        let status = response.status();
        if status.is_success() {
            // Drain a bounded amount so the connection can be reused; the
            // status alone decides the outcome.
            Self::read_prefix(&mut response, SUCCESS_BODY_DRAIN).await;
            return Ok(Receipt::new(format!("HTTP {status}")));
        }
        let final_url = response.url().clone();
        let response_headers = response.headers().clone();
        let prefix = Self::read_prefix(&mut response, ERROR_BODY_READ).await;
        let excerpt = classify::excerpt(&prefix, &self.redactor);
        classify::classify_response(
            status,
            &response_headers,
            &excerpt,
            &final_url,
            self.allow_redirects,
            SystemTime::now(),
        )
    }

    /// Resolves the endpoint's host and opens a TCP connection to it, within
    /// `timeout`; sends nothing. (Direct connection: HTTP proxies are not used.)
    async fn check(&self) -> Result<(), DeliveryError> {
        let host = self.url.host_str().unwrap_or_default().to_owned();
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = self.url.port_or_known_default().unwrap_or(443);
        let connect = tokio::net::TcpStream::connect((host.as_str(), port));
        match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(_stream)) => Ok(()),
            Ok(Err(e)) => Err(DeliveryError::retryable(format!(
                "cannot connect to {}: {}",
                self.origin,
                self.redactor.redact(&e.to_string())
            ))),
            Err(_) => Err(DeliveryError::retryable(format!(
                "timed out after {:?} connecting to {}",
                self.timeout, self.origin
            ))),
        }
    }
}
