//! clarion-slack: posts each notification to a Slack channel through an
//! [incoming webhook](https://api.slack.com/messaging/webhooks).
//!
//! ```toml
//! [channels.ops-slack]
//! kind = "slack"
//! url = "${SLACK_WEBHOOK_URL}"       # https://hooks.slack.com/services/…; a secret
//!
//! [channels.ops-slack.templates.rotation_failure]   # optional, per kind
//! text = ":boom: {{ notification.subject.id }} failed: {{ notification.data.error }}"
//! # blocks = '[{"type": "section", "text": {"type": "mrkdwn", "text": "{{ notification.data.error }}"}}]'
//!
//! [channels.ops-slack.http]          # optional: timeout, proxy, tls_ca_file …
//! timeout = "10s"
//! ```
//!
//! **What it sends**: a Block Kit message — a header with the severity and
//! the kind, a section with fields for the subject, owner, labels and each
//! of the kind's data, and a context line with the time and the
//! notification id — plus a plain `text` fallback for notifications.
//! `templates.<kind>.text` replaces the text (alone, unless `blocks` is also
//! given); `templates.<kind>.blocks` is a template producing the `blocks`
//! array (see [`clarion_http::Templates`] for the context and escaping).
//!
//! **Answers**: `200 ok` sent; `400` (`invalid_payload`, `no_text`,
//! `invalid_blocks`) and `403` (`action_prohibited`) permanent; `404
//! no_service`/`channel_not_found` and `410 channel_is_archived` gone (the
//! webhook or its channel was removed); `429` throttled with `Retry-After`
//! (Slack allows about one message per second per webhook); `5xx`,
//! timeouts and connection errors retryable. The URL is never shown beyond
//! `https://hooks.slack.com`.
//!
//! Link it with the `clarion` facade's `slack` feature (on by default) or
//! `use clarion_slack as _;`.

mod channel;
mod config;
mod message;

pub use channel::SlackChannel;
pub use config::{SlackConfig, SlackTemplate};

clarion_core::register_channel! {
    kind: "slack",
    description: "Posts a Block Kit message to a Slack incoming webhook.",
    config: SlackConfig,
    example: "url = \"https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX\"\n",
    build: SlackChannel::from_config,
}
