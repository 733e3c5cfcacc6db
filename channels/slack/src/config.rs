//! `[channels.<name>]` settings of a `kind = "slack"` channel.

use std::collections::BTreeMap;

use clarion_http::{HttpSettings, SecretUrl};
use schemars::JsonSchema;
use serde::Deserialize;

/// `[channels.<name>]` settings of a `kind = "slack"` channel.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The incoming-webhook URL, `https://hooks.slack.com/services/…`. It is
    /// the credential: use `${SLACK_WEBHOOK_URL}`; only its origin is ever shown.
    pub url: SecretUrl,
    /// Per event kind (`rotation_failure`, a custom kind …), minijinja
    /// templates replacing the default message.
    #[serde(default)]
    pub templates: BTreeMap<String, SlackTemplate>,
    /// Transport: timeout, connect_timeout, proxy, tls_ca_file, allow_redirects.
    #[serde(default)]
    pub http: HttpSettings,
}

/// The templates of one event kind.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackTemplate {
    /// The message `text` (Slack mrkdwn; also the notification fallback).
    /// Without `blocks`, the message is this text alone.
    pub text: Option<String>,
    /// A template producing the `blocks` JSON array (Block Kit); values go
    /// inside JSON strings as `{{ value }}`, whole JSON values as `{{ value | tojson }}`.
    pub blocks: Option<String>,
}
