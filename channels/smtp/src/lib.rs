//! clarion-smtp: the e-mail channel. Sends each notification as a
//! `multipart/alternative` message (text + HTML, rendered from minijinja
//! templates) over SMTP with STARTTLS, implicit TLS or (explicitly) none,
//! optional AUTH, and a small pool of persistent connections.
//!
//! ```toml
//! [channels.ops-email]
//! kind = "smtp"
//! host = "smtp.example.com"
//! tls = "starttls"                  # starttls (587) | tls (465) | none (25, needs allow_insecure)
//! username = "clarion"
//! password = "${SMTP_PASSWORD}"
//! from = "KMS alerts <kms-alerts@example.com>"
//! to = ["oncall@example.com"]
//! cc = []
//! bcc = ["audit@example.com"]
//! reply_to = "kms-team@example.com"
//! to_from_label = "owner_email"     # also mail the address in this event label
//! to_owner = false                  # also mail the owner when it is an address
//! timeout = "30s"                   # the whole SMTP conversation
//! ca_file = "/etc/ssl/private-relay-ca.pem"   # trust only this CA (private relays)
//! pool = { max_connections = 4, idle_timeout = "60s" }
//!
//! [channels.ops-email.templates.rotation_failure]
//! subject = "[KMS] {{ display_name }} failed to rotate: {{ data.error }}"
//! ```
//!
//! # What is sent
//!
//! - `Message-ID: <{idempotency key}@{domain of from}>`: the same on every
//!   attempt of a delivery, so a retried send after a lost reply shows up
//!   as a duplicate of the same message, not as a second alert.
//! - `Date` (the time of the attempt), `Auto-Submitted: auto-generated`,
//!   `X-Clarion-Event-Kind`, `X-Clarion-Notification-Id`.
//! - `To`/`Cc` from the configuration plus the event's recipients
//!   (`to_from_label`, `to_owner`); `Bcc` only in the envelope. A
//!   notification with no recipient at all fails permanently. An address in
//!   an event that does not parse is left out, logged and named in the
//!   receipt; if a server refuses some recipients (5xx) but accepts others,
//!   the message goes to the others and the receipt names the refused ones.
//!
//! # Templates
//!
//! Every event kind has a subject, a text and an HTML template; the built-in
//! ones cover `rotation_success`, `rotation_failure`, `approaching_deadline`
//! and (as `default`) every custom kind. `[templates.<kind>]` overrides any
//! part; `[templates.default]` applies to custom kinds without their own.
//! Templates see: `kind`, `kind_label`, `subject` (`id`, `type`, `name`),
//! `subject_label`, `display_name`, `object_type`, `owner`, `severity`,
//! `occurred_at`, `labels`, `data` (the kind's fields, e.g. `data.error`),
//! `due_in` (deadlines), `notification_id`, `delivery_id`, `attempt`,
//! `channel`; filters `datetime`, `capitalize_first`, `pad(n)`; and the
//! partials `details.text` / `details.html`. HTML is auto-escaped; the
//! subject is flattened to one line, so no event value can add a header.
//! Templates are compiled and test-rendered when the configuration loads.
//!
//! # Failures
//!
//! Connection errors, timeouts and 4xx replies are retryable; 5xx replies,
//! TLS failures (untrusted certificate, wrong host name) and authentication
//! failures are permanent, with a reason that says what to change and never
//! contains the password. `timeout` covers the whole conversation (lettre's
//! own timeout covers only the TCP connect, so a server that accepts but never
//! greets would otherwise hang a send forever).
//!
//! # Connections
//!
//! The channel keeps up to `pool.max_connections` connections, opened by
//! itself with `TCP_NODELAY` (lettre 0.11's pool does not set it and stalls
//! ~45 ms per message on delayed ACKs) and reused while younger than
//! `pool.idle_timeout`. A reused connection that turns out to be closed at
//! `MAIL FROM` is replaced once, transparently: nothing was sent on it yet.
//! TLS is rustls with the ring provider.
//!
//! Link it with the `clarion` facade's `smtp` feature (on by default) or
//! `use clarion_smtp as _;`.

mod config;
mod error;
mod template;
mod transport;

use std::str::FromStr;
use std::time::SystemTime;

use async_trait::async_trait;
use clarion_core::channel::{Channel, Delivery, DeliveryError, Receipt};
use clarion_core::event::{EventKind, KeyEvent, ObjectType, Severity, Subject};
use clarion_core::notification::Notification;
use clarion_core::registry::ChannelConfigError;
use lettre::Address;
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::ExposeSecret;
use tokio::time::Instant;

pub use config::{DEFAULT_TEMPLATE_KEY, PoolConfig, SmtpConfig, TemplateOverride, TlsMode};
pub use error::{SmtpError, Stage};
pub use template::RenderError;

use config::Validated;
use template::Templates;
use transport::{Connector, Pool};

/// The SMTP channel. Build it with [`SmtpChannel::from_config`]; share it
/// (it pools connections internally).
#[derive(Debug)]
pub struct SmtpChannel {
    from: Mailbox,
    to: Vec<Mailbox>,
    cc: Vec<Mailbox>,
    bcc: Vec<Mailbox>,
    reply_to: Option<Mailbox>,
    to_from_label: Option<String>,
    to_owner: bool,
    timeout: std::time::Duration,
    templates: Templates,
    connector: Connector,
    pool: Pool,
}

/// A message as it would be sent: for previews and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposedMessage {
    /// The rendered subject (one line).
    pub subject: String,
    /// The rendered `text/plain` part.
    pub text: String,
    /// The rendered `text/html` part.
    pub html: String,
    /// The `Message-ID` header value, with angle brackets.
    pub message_id: String,
    /// The envelope recipients (To, Cc, Bcc; deduplicated).
    pub recipients: Vec<String>,
    /// Event addresses that were left out, with why.
    pub ignored: Vec<String>,
    /// The whole message as it goes over the wire (before dot-stuffing).
    pub raw: Vec<u8>,
}

struct Prepared {
    composed: ComposedMessage,
    from: Address,
    recipients: Vec<Address>,
}

impl SmtpChannel {
    /// Builds the channel: validates every address (the error names the
    /// field, e.g. `to[1]`), the TLS mode, credentials, `ca_file` and the
    /// templates. Opens no connection; see [`Channel::check`] for that.
    pub fn from_config(config: SmtpConfig) -> Result<Self, ChannelConfigError> {
        let v: Validated = config.validate()?;
        let ca = match &v.ca_file {
            Some(_) if v.tls == TlsMode::None => {
                return Err(ChannelConfigError::field(
                    "ca_file",
                    "has no effect with tls = \"none\"; remove it or use starttls/tls",
                ));
            }
            Some(path) => Some(load_ca(path)?),
            None => None,
        };
        let (tls_connector, starttls) = transport::tls_settings(v.tls, &v.host, ca.as_deref())
            .map_err(|e| ChannelConfigError::field("ca_file", e))?;
        let templates = Templates::new(&config.templates)?;
        let hello = match &v.hello_name {
            Some(name) => ClientId::Domain(name.clone()),
            None => ClientId::default(),
        };
        let connector = Connector {
            server: format!("{}:{}", v.host, v.port),
            host: v.host,
            port: v.port,
            tls: v.tls,
            tls_connector,
            starttls,
            hello,
            username: v.username,
            password: v.password,
        };
        Ok(SmtpChannel {
            from: v.from,
            to: v.to,
            cc: v.cc,
            bcc: v.bcc,
            reply_to: v.reply_to,
            to_from_label: v.to_from_label,
            to_owner: v.to_owner,
            timeout: v.timeout,
            templates,
            pool: Pool::new(v.pool.max_connections, v.pool.idle_timeout),
            connector,
        })
    }

    /// `host:port` of the relay.
    pub fn server(&self) -> &str {
        &self.connector.server
    }

    /// Renders and assembles the message for `delivery` without sending it.
    pub fn compose(&self, delivery: &Delivery) -> Result<ComposedMessage, SmtpError> {
        Ok(self.prepare(delivery)?.composed)
    }

    fn event_recipients(&self, event: &KeyEvent) -> (Vec<Mailbox>, Vec<String>) {
        let mut found = Vec::new();
        let mut ignored = Vec::new();
        if let Some(label) = &self.to_from_label
            && let Some(value) = event.labels.get(label)
        {
            for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                match Mailbox::from_str(part) {
                    Ok(m) => found.push(m),
                    Err(e) => {
                        ignored.push(format!("label {label}={part:?} is not an address ({e})"))
                    }
                }
            }
        }
        if self.to_owner
            && let Some(owner) = event.owner.as_deref()
            && owner.contains('@')
        {
            match Mailbox::from_str(owner.trim()) {
                Ok(m) => found.push(m),
                Err(e) => ignored.push(format!("owner {owner:?} is not an address ({e})")),
            }
        }
        (found, ignored)
    }

    fn prepare(&self, delivery: &Delivery) -> Result<Prepared, SmtpError> {
        let event = &delivery.notification.event;
        let (extra_to, ignored) = self.event_recipients(event);
        let to: Vec<Mailbox> = self.to.iter().cloned().chain(extra_to).collect();
        if to.is_empty() && self.cc.is_empty() && self.bcc.is_empty() {
            let mut sources = vec!["no fixed to/cc/bcc are configured".to_owned()];
            if let Some(label) = &self.to_from_label {
                sources.push(format!("the event has no usable label {label:?}"));
            }
            if self.to_owner {
                sources.push(match &event.owner {
                    Some(o) => format!("the owner {o:?} is not an address"),
                    None => "the event has no owner".to_owned(),
                });
            }
            sources.extend(ignored);
            return Err(SmtpError::NoRecipients {
                detail: sources.join("; "),
            });
        }
        let rendered = self.templates.render(delivery)?;
        let message_id = format!(
            "<{}@{}>",
            delivery.idempotency_key(),
            self.from.email.domain()
        );
        let mut builder = Message::builder()
            .from(self.from.clone())
            .message_id(Some(message_id.clone()))
            .date(SystemTime::now())
            .subject(rendered.subject.clone())
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".into(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Clarion-Event-Kind"),
                event.kind.as_str().to_owned(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Clarion-Notification-Id"),
                delivery.notification.id.to_string(),
            ));
        for m in dedup_mailboxes(&to) {
            builder = builder.to(m);
        }
        for m in dedup_mailboxes(&self.cc) {
            builder = builder.cc(m);
        }
        for m in dedup_mailboxes(&self.bcc) {
            builder = builder.bcc(m);
        }
        if let Some(r) = &self.reply_to {
            builder = builder.reply_to(r.clone());
        }
        let message = builder
            .multipart(MultiPart::alternative_plain_html(
                rendered.text.clone(),
                rendered.html.clone(),
            ))
            .map_err(|e| SmtpError::Build(e.to_string()))?;
        let recipients = transport::dedup(message.envelope().to().iter().cloned());
        let raw = message.formatted();
        Ok(Prepared {
            composed: ComposedMessage {
                subject: rendered.subject,
                text: rendered.text,
                html: rendered.html,
                message_id,
                recipients: recipients.iter().map(|a| a.to_string()).collect(),
                ignored,
                raw,
            },
            from: self.from.email.clone(),
            recipients,
        })
    }

    /// Sends one notification, with the typed error.
    pub async fn send(&self, delivery: &Delivery) -> Result<Receipt, SmtpError> {
        let prepared = self.prepare(delivery)?;
        let _permit = self
            .pool
            .permits
            .acquire()
            .await
            .expect("the pool's semaphore is never closed");
        let mut stage = Stage::Connecting;
        let outcome =
            tokio::time::timeout(self.timeout, self.converse(&prepared, &mut stage)).await;
        let accepted = match outcome {
            Ok(result) => result?,
            Err(_) => {
                return Err(SmtpError::Timeout {
                    server: self.connector.server.clone(),
                    stage,
                    after: self.timeout,
                });
            }
        };
        let mut detail = accepted.reply;
        if !accepted.refused.is_empty() {
            let refused: Vec<String> = accepted
                .refused
                .iter()
                .map(|(a, r)| format!("{a} ({r})"))
                .collect();
            tracing::warn!(
                channel = %delivery.channel,
                notification_id = %delivery.notification.id,
                refused = %refused.join(", "),
                "the relay refused some recipients; sent to the others"
            );
            detail.push_str(&format!("; refused: {}", refused.join(", ")));
        }
        if !prepared.composed.ignored.is_empty() {
            let ignored = prepared.composed.ignored.join("; ");
            tracing::warn!(
                channel = %delivery.channel,
                notification_id = %delivery.notification.id,
                %ignored,
                "left out event recipients that are not addresses"
            );
            detail.push_str(&format!("; ignored: {ignored}"));
        }
        Ok(Receipt::new(detail))
    }

    async fn converse(
        &self,
        prepared: &Prepared,
        stage: &mut Stage,
    ) -> Result<transport::Accepted, SmtpError> {
        let server = &self.connector.server;
        let body = &prepared.composed.raw;
        if let Some(mut conn) = self.pool.idle.take(Instant::now()) {
            match transport::transact(
                &mut conn,
                server,
                &prepared.from,
                &prepared.recipients,
                body,
                stage,
            )
            .await
            {
                Ok(accepted) => {
                    self.release(conn);
                    return Ok(accepted);
                }
                // The relay closed the idle connection (or says it is
                // closing it): nothing was sent, open a fresh one.
                Err(e) if *stage == Stage::MailFrom && is_stale(&e) => {
                    tracing::debug!(%server, error = %e, "pooled connection was closed; reconnecting");
                }
                Err(e) => return Err(e),
            }
        }
        let mut conn = self.connector.open(stage).await?;
        let accepted = transport::transact(
            &mut conn,
            server,
            &prepared.from,
            &prepared.recipients,
            body,
            stage,
        )
        .await?;
        self.release(conn);
        Ok(accepted)
    }

    fn release(&self, conn: AsyncSmtpConnection) {
        if !conn.has_broken() {
            self.pool.idle.put(conn, Instant::now());
        }
    }

    /// Opens a fresh connection and authenticates, with the typed error.
    /// The connection then joins the pool.
    pub async fn check_connection(&self) -> Result<(), SmtpError> {
        let _permit = self
            .pool
            .permits
            .acquire()
            .await
            .expect("the pool's semaphore is never closed");
        let mut stage = Stage::Connecting;
        let outcome = tokio::time::timeout(self.timeout, self.connector.open(&mut stage)).await;
        match outcome {
            Ok(result) => {
                self.release(result?);
                Ok(())
            }
            Err(_) => Err(SmtpError::Timeout {
                server: self.connector.server.clone(),
                stage,
                after: self.timeout,
            }),
        }
    }

    fn secret(&self) -> Option<&str> {
        self.connector.password.as_ref().map(|p| p.expose_secret())
    }
}

fn is_stale(e: &SmtpError) -> bool {
    matches!(
        e,
        SmtpError::Network { .. } | SmtpError::Rejected { code: 421, .. }
    )
}

fn dedup_mailboxes(list: &[Mailbox]) -> Vec<Mailbox> {
    let mut seen = std::collections::HashSet::new();
    list.iter()
        .filter(|m| seen.insert(AsRef::<str>::as_ref(&m.email).to_ascii_lowercase()))
        .cloned()
        .collect()
}

fn load_ca(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, ChannelConfigError> {
    let shown = path.display();
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| ChannelConfigError::field("ca_file", format!("cannot read {shown}: {e}")))?;
    let certs: Vec<_> = iter.collect::<Result<_, _>>().map_err(|e| {
        ChannelConfigError::field("ca_file", format!("{shown} is not valid PEM: {e}"))
    })?;
    if certs.is_empty() {
        return Err(ChannelConfigError::field(
            "ca_file",
            format!(
                "{shown} holds no certificate; expected PEM `-----BEGIN CERTIFICATE-----` blocks"
            ),
        ));
    }
    Ok(certs)
}

#[async_trait]
impl Channel for SmtpChannel {
    async fn deliver(&self, delivery: &Delivery) -> Result<Receipt, DeliveryError> {
        self.send(delivery)
            .await
            .map_err(|e| e.into_delivery_error(self.secret()))
    }

    async fn check(&self) -> Result<(), DeliveryError> {
        self.check_connection()
            .await
            .map_err(|e| e.into_delivery_error(self.secret()))
    }
}

/// A delivery of `kind` with plausible data, to test-render templates.
pub(crate) fn sample_delivery(kind: EventKind) -> Delivery {
    use clarion_core::event::{ApproachingDeadline, RotationFailure, RotationSuccess};
    let at = "2026-01-01T00:00:00Z".parse().expect("valid timestamp");
    let subject = Subject::new("key-1", ObjectType::SymmetricKey).named("sample");
    let event = match kind {
        EventKind::RotationSuccess => KeyEvent::rotation_success(
            subject,
            RotationSuccess {
                old_id: "v1".into(),
                new_id: "v2".into(),
                next_rotation: Some(at),
            },
        ),
        EventKind::RotationFailure => KeyEvent::rotation_failure(
            subject,
            RotationFailure {
                error: "sample error".into(),
                attempt: 1,
                next_attempt: Some(at),
            },
        ),
        EventKind::ApproachingDeadline => KeyEvent::approaching_deadline(
            subject,
            ApproachingDeadline {
                deadline: at,
                days_remaining: 7,
                threshold_days: 7,
                final_threshold: false,
            },
        ),
        custom => KeyEvent::custom(
            custom,
            subject,
            Severity::Warning,
            serde_json::json!({ "detail": "sample" }),
        ),
    }
    .with_owner("owner@example.com")
    .with_label("env", "sample")
    .at(at);
    Delivery {
        id: uuid_nil(),
        channel: "sample".into(),
        attempt: 1,
        notification: Notification {
            id: uuid_nil(),
            event,
            created_at: at,
            read_at: None,
        },
    }
}

fn uuid_nil() -> uuid::Uuid {
    uuid::Uuid::nil()
}

clarion_core::register_channel! {
    kind: "smtp",
    description: "Sends templated text + HTML e-mail over SMTP (STARTTLS/TLS, AUTH, pooled connections).",
    config: SmtpConfig,
    example: "host = \"smtp.example.com\"\ntls = \"starttls\"\nfrom = \"KMS alerts <kms-alerts@example.com>\"\nto = [\"oncall@example.com\"]\n",
    build: SmtpChannel::from_config,
}
