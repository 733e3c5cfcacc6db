//! clarion-http: the HTTP plumbing every HTTP channel shares, so a channel
//! crate is mostly its payload.
//!
//! The webhook, Slack, Teams, PagerDuty and Opsgenie channels (and the ntfy
//! example) are built on it. It gives a channel:
//!
//! - **one client per channel** ([`HttpClient`]): connections reused across
//!   deliveries, HTTP/1.1, rustls with the **ring** provider passed explicitly
//!   (no process-wide provider to install, aws-lc-rs never built), the
//!   platform's trust store plus `tls_ca_file`;
//! - **proxies**: `proxy = "http://proxy:3128"` per channel, `"direct"` for
//!   none, otherwise the standard `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/
//!   `NO_PROXY` environment variables;
//! - **opt-in redirects**: `allow_redirects = true` follows 307/308 (at most
//!   [`MAX_REDIRECTS`], never https → http); 301/302/303 are never followed;
//! - **timeouts** (`timeout`, `connect_timeout`) and **bounded reads** (at
//!   most [`MAX_RESPONSE_BYTES`] of any answer);
//! - **classification** of every answer into clarion's outcomes
//!   ([`Response::classify`]), which a vendor overrides where it knows better;
//! - **secrets kept out** of `Debug`, errors and receipts: [`SecretUrl`] for
//!   URLs that are credentials, and every reason redacted by the client's
//!   [`Redactor`];
//! - **templates** ([`Templates`]): per-kind minijinja overrides of a
//!   payload, compiled and tried when the channel is built; and one way
//!   to sum a notification up ([`headline`], [`facts`]) for chat cards.
//!
//! # Settings
//!
//! Embed [`HttpSettings`] in the channel's settings as `http`; every field
//! has a default, so the table is optional, and its doc comments become the
//! schema's descriptions:
//!
//! ```toml
//! [channels.ops-slack]
//! kind = "slack"
//! url = "${SLACK_WEBHOOK_URL}"
//!
//! [channels.ops-slack.http]
//! timeout = "10s"                           # default; keep it below [delivery] timeout
//! # connect_timeout = "5s"                  # default: the shorter of timeout and 10s
//! # allow_redirects = false                 # default
//! # tls_ca_file = "/etc/clarion/corp-ca.pem"
//! # proxy = "http://proxy.internal:3128"    # or "direct"; default: HTTPS_PROXY & co.
//! ```
//!
//! # Outcomes
//!
//! [`Response::classify`] applies these rules; [`HttpClient::send`] turns a
//! missing answer into the last rows:
//!
//! | answer | outcome |
//! |---|---|
//! | 2xx | sent; the receipt holds the status, e.g. `HTTP 202 Accepted` |
//! | 429, or 503 with `Retry-After` | `Throttled`, with `Retry-After` (seconds or HTTP date) |
//! | 408, 425, other 5xx | `Retryable`, with `Retry-After` when sent |
//! | 410 | `Gone`: `endpoint gone: HTTP 410 Gone: …` |
//! | 3xx not followed | `Permanent`, naming only the target's origin |
//! | other 4xx | `Permanent` |
//! | timeout, refused or reset connection, DNS or TLS failure | `Retryable` |
//! | a request that cannot be built, a redirect loop or downgrade | `Permanent` |
//!
//! Reasons start with the status line and hold the first [`ERROR_BODY_BYTES`]
//! of the body on one line, with every secret the client was told about
//! replaced by `[redacted]`; connection errors name `scheme://host:port`
//! only. Until clarion keeps channel state, the dispatcher makes a `Gone`
//! delivery dead and retries a `Throttled` one after `Retry-After` (see
//! [`DeliveryError`](clarion_core::DeliveryError)).
//!
//! # A channel in thirty lines
//!
//! ```
//! use async_trait::async_trait;
//! use clarion_core::channel::{Channel, Delivery, DeliveryError, Receipt};
//! use clarion_core::registry::ChannelConfigError;
//! use clarion_http::{HttpClient, HttpSettings, SecretUrl};
//!
//! #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
//! #[serde(deny_unknown_fields)]
//! pub struct ChatConfig {
//!     /// The incoming-webhook URL (a secret).
//!     pub url: SecretUrl,
//!     /// Transport settings.
//!     #[serde(default)]
//!     pub http: HttpSettings,
//! }
//!
//! #[derive(Debug)] // SecretUrl and HttpClient print no secret
//! pub struct ChatChannel { url: SecretUrl, http: HttpClient }
//!
//! impl ChatChannel {
//!     pub fn from_config(config: ChatConfig) -> Result<Self, ChannelConfigError> {
//!         let http = HttpClient::builder(&config.http).endpoint(&config.url).build()?;
//!         Ok(ChatChannel { url: config.url, http })
//!     }
//! }
//!
//! #[async_trait]
//! impl Channel for ChatChannel {
//!     async fn deliver(&self, d: &Delivery) -> Result<Receipt, DeliveryError> {
//!         let body = serde_json::json!({ "text": format!("{}", d.notification.event.kind) });
//!         let response = self.http.post_json(&self.url, &body).await?;
//!         // The vendor's own rule first, then the defaults.
//!         match (response.status().as_u16(), response.text().trim()) {
//!             (404, "channel_not_found") => Err(response.gone()),
//!             (400, _) => Err(response.permanent("the vendor rejected the payload")),
//!             _ => response.classify(),
//!         }
//!     }
//!
//!     async fn check(&self) -> Result<(), DeliveryError> {
//!         self.http.check(&self.url).await
//!     }
//! }
//! # let url: SecretUrl = "https://chat.example.com/hooks/T0KEN0123456".parse().unwrap();
//! # let channel = ChatChannel::from_config(ChatConfig { url, http: HttpSettings::default() }).unwrap();
//! # assert!(!format!("{channel:?}").contains("T0KEN"));
//! ```
//!
//! Headers and other methods go through [`HttpClient::post`] (a
//! `reqwest::RequestBuilder`, see the re-exported [`reqwest`]) and
//! [`HttpClient::send`]. Tell the builder about every secret the channel
//! sends besides the URL (`.secret(api_key)`), so an echo of it in a peer's
//! error page is redacted.

mod classify;
mod client;
mod redact;
mod response;
mod secret_url;
mod settings;
mod summary;
mod template;

pub use classify::{ERROR_BODY_BYTES, retry_after};
pub use client::{HttpClient, HttpClientBuilder, MAX_REDIRECTS, USER_AGENT};
pub use redact::Redactor;
pub use response::{MAX_RESPONSE_BYTES, Response};
pub use secret_url::SecretUrl;
pub use settings::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, HttpSettings};
pub use summary::{facts, headline, subject_line};
pub use template::{Templates, sample_delivery};

/// The reqwest this crate builds on, for [`HttpClient::post`]'s request builder.
pub use reqwest;
