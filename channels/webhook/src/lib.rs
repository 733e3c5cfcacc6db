//! clarion-webhook: a channel that POSTs each delivery to an HTTP endpoint,
//! signed per [Standard Webhooks](https://www.standardwebhooks.com/), so a
//! SIEM, chat bridge or ticketing system can prove the sender and drop
//! duplicates.
//!
//! ```toml
//! [channels.siem]
//! kind = "webhook"
//! url = "https://siem.example.com/hooks/clarion"
//! secrets = ["${SIEM_WEBHOOK_SECRET}"]         # whsec_…; list two while rotating
//! headers = { Authorization = "Bearer ${SIEM_TOKEN}" }
//! timeout = "10s"                               # default
//! allow_redirects = false                       # default
//! # tls_ca_file = "/etc/clarion/siem-ca.pem"    # a private CA, besides the system's
//! # proxy = "http://proxy.internal:3128"        # or "direct"; default: HTTPS_PROXY & co.
//!
//! [channels.ops-slack]
//! kind = "webhook"
//! url = "${SLACK_WEBHOOK_URL}"                  # the URL is the credential
//! format = "template"
//! content_type = "application/json"             # default
//! body_template = '''
//! {"text": ":rotating_light: {{ type }} for {{ notification.subject.type }} {{ notification.subject.id }}",
//!  "blocks": [{"type": "section", "text": {"type": "mrkdwn",
//!    "text": "*{{ notification.severity | upper }}* {{ notification.data.error }}"}}]}
//! '''
//! ```
//!
//! `url`, `secrets` and header values are secrets: `Debug`, logs, errors and
//! `last_error` show only `scheme://host:port`, the number of secrets and the
//! header names. Use `${VAR}` substitution to keep them out of the file.
//!
//! # Wire format
//!
//! One `POST` per attempt, with these headers:
//!
//! | header | value |
//! |---|---|
//! | `webhook-id` | [`Delivery::idempotency_key`](clarion_core::channel::Delivery::idempotency_key), e.g. `clarion_0192f0c1…`: the same on every retry, so receivers drop duplicates by it |
//! | `webhook-timestamp` | unix seconds when this attempt was sent |
//! | `webhook-signature` | `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` keyed with the base64-decoded secret; one per configured secret, space-separated |
//! | `content-type` | `application/json` (or `content_type` with `format = "template"`) |
//! | `user-agent` | `clarion/<version>` ([`USER_AGENT`]) |
//!
//! plus the configured `headers`, which may not override any of these
//! (nor `content-length`, `host`, `transfer-encoding`, `connection`).
//!
//! ## The standard body
//!
//! `type` is the event kind, `timestamp` when the event occurred (RFC 3339),
//! and `data` the notification: its `id`, the event's stable JSON shape (see
//! [`clarion_core::event`]) and `created_at`. The body is byte-for-byte the
//! same on every attempt; only `webhook-timestamp` and the signatures change.
//!
//! ```json
//! {
//!   "type": "rotation_failure",
//!   "timestamp": "2026-11-22T05:00:00Z",
//!   "data": {
//!     "id": "0192f0c1-7a3e-7c4d-9b8a-3f2e1d0c9b8a",
//!     "kind": "rotation_failure",
//!     "subject": { "id": "key-42", "type": "symmetric_key", "name": "payments-dek" },
//!     "owner": "alice",
//!     "severity": "critical",
//!     "occurred_at": "2026-11-22T05:00:00Z",
//!     "labels": { "env": "prod" },
//!     "data": { "error": "HSM unreachable", "attempt": 3, "next_attempt": "2026-11-22T05:10:00Z" },
//!     "dedup_key": null,
//!     "created_at": "2026-11-22T05:00:01Z"
//!   }
//! }
//! ```
//!
//! ## Template bodies
//!
//! With `format = "template"`, `body_template` is a
//! [minijinja](https://docs.rs/minijinja) template rendered with:
//! `type` (the event kind), `timestamp` (when it occurred), `notification`
//! (the `data` object above) and `delivery` (`id`, `idempotency_key`,
//! `attempt`, `channel`). Undefined lookups and nulls render empty, so one
//! template can serve every kind. When the content type is JSON (`application/json` or
//! `…+json`), `{{ value }}` is escaped for use *inside* a JSON string and
//! `{{ value | tojson }}` inserts a JSON value; the rendered body must be
//! valid JSON. The template is compiled and tried on a sample event when the
//! channel is built, so syntax errors stop start-up with the line number.
//! Template bodies are signed too when `secrets` are configured (they are
//! optional for templates: chat bridges authenticate by the URL).
//!
//! # Outcomes
//!
//! | answer | outcome |
//! |---|---|
//! | 2xx | sent; the receipt holds the status, e.g. `HTTP 200 OK` |
//! | 429, or 503 with `Retry-After` | throttled (retried after `Retry-After`, seconds or HTTP date) |
//! | 408, 425, other 5xx | retryable, with `Retry-After` passed on |
//! | timeout, connection refused or reset, DNS or TLS failure | retryable |
//! | 410 | gone: `endpoint gone` (the delivery is dead) |
//! | other 4xx | permanent |
//! | 3xx | permanent; with `allow_redirects = true`, 307/308 are followed (at most [`MAX_REDIRECTS`], never https → http) and 301/302/303 stay permanent, since following them would turn the POST into a bodiless GET |
//!
//! Errors hold the status and the first [`ERROR_BODY_BYTES`] bytes of the
//! response body on one line, with any configured secret that the receiver
//! echoes replaced by `[redacted]`. At most 64 KiB of an answer is read.
//!
//! # Transport
//!
//! The shared [`clarion_http`] client: one per channel (connections are
//! reused), HTTP/1.1, rustls with the **ring** crypto provider passed
//! explicitly (no process-wide provider needs to be installed, and aws-lc-rs
//! is never built), the platform's trust store plus the certificates of
//! `tls_ca_file`, if set, and `proxy` (or the standard proxy environment
//! variables). A certificate that does not verify is a retryable connection
//! error. The classification above is [`clarion_http::Response::classify`]'s.
//!
//! # Verifying on the receiving side
//!
//! A Rust receiver checks clarion's signatures with [`verify`]; any Standard
//! Webhooks library does the same in other languages:
//!
//! ```
//! # use http::HeaderMap;
//! use clarion_webhook::{verify, WebhookSecret, DEFAULT_TOLERANCE};
//! # fn handle(headers: &HeaderMap, body: &[u8]) -> Result<(), clarion_webhook::VerifyError> {
//! let secret: WebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap();
//! verify(&secret, headers, body, DEFAULT_TOLERANCE)?; // then dedup on webhook-id
//! # Ok(()) }
//! ```
//!
//! Link it with the `clarion` facade's `webhook` feature (on by default) or
//! `use clarion_webhook as _;`.

mod body;
mod channel;
mod config;
mod secret;
mod verify;

pub use channel::{MAX_REDIRECTS, USER_AGENT, WebhookChannel};
pub use clarion_http::ERROR_BODY_BYTES;
pub use config::{BodyFormat, DEFAULT_TIMEOUT, WebhookConfig};
pub use secret::{MAX_SECRET_BYTES, MIN_SECRET_BYTES, SECRET_PREFIX, SecretError, WebhookSecret};
pub use verify::{
    DEFAULT_TOLERANCE, VerifyError, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP, verify,
    verify_at,
};

clarion_core::register_channel! {
    kind: "webhook",
    description: "POSTs each delivery to an HTTP endpoint, signed per Standard Webhooks (or a templated body).",
    config: WebhookConfig,
    example: "url = \"https://siem.example.com/hooks/clarion\"\n\
              secrets = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]\n\
              timeout = \"10s\"\n",
    build: WebhookChannel::from_config,
}
