//! Step 1: the configuration, `[channels.<name>]` with `kind = "ntfy"`.
//!
//! `Deserialize` reads it (`deny_unknown_fields`, so a typo is an error that
//! names the field), `JsonSchema` describes it: every doc comment on a field
//! becomes that field's `description` in `cargo xtask schema`'s output, so
//! write them for the operator who edits the file.

use std::time::Duration;

use schemars::JsonSchema;
use secrecy::SecretString;
use serde::Deserialize;

/// `[channels.<name>]` settings of a `kind = "ntfy"` channel.
///
/// `topic` and `token` are secrets (on a public server the topic name is the
/// only thing keeping strangers out): they never appear in `Debug` output,
/// logs, errors or receipts.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NtfyConfig {
    /// The ntfy server, `https://` (or `http://` on a trusted network).
    #[serde(default = "default_server")]
    pub server: String,
    /// The topic to publish to: 1–64 letters, digits, `-` or `_`. On a
    /// public server pick one that cannot be guessed, e.g. from `${NTFY_TOPIC}`.
    #[schemars(with = "String")]
    pub topic: SecretString,
    /// An access token (`tk_…`), sent as `Authorization: Bearer …`, for a
    /// topic that needs one. Use `${NTFY_TOKEN}`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub token: Option<SecretString>,
    /// Upper bound for one publish, connection included (humantime, e.g.
    /// `10s`). Keep it below `[delivery] timeout`, so that a slow server is
    /// reported by this channel rather than cut off by the dispatcher.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    #[schemars(with = "String", extend("default" = "10s"))]
    pub timeout: Duration,
}

fn default_server() -> String {
    "https://ntfy.sh".into()
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
