//! `[channels.<name>]` settings of a `kind = "smtp"` channel, and their
//! validation into the form the channel runs on.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clarion_core::event::EventKind;
use clarion_core::registry::ChannelConfigError;
use lettre::message::Mailbox;
use schemars::JsonSchema;
use secrecy::SecretString;
use serde::Deserialize;

/// `[channels.<name>]` settings of a `kind = "smtp"` channel.
///
/// ```toml
/// [channels.ops-email]
/// kind = "smtp"
/// host = "smtp.example.com"
/// tls = "starttls"                    # starttls | tls | none (none needs allow_insecure)
/// username = "clarion"
/// password = "${SMTP_PASSWORD}"
/// from = "KMS alerts <kms-alerts@example.com>"
/// to = ["oncall@example.com"]
/// to_from_label = "owner_email"       # plus the address in this event label
/// timeout = "30s"
/// pool = { max_connections = 4, idle_timeout = "60s" }
///
/// [channels.ops-email.templates.rotation_failure]
/// subject = "[KMS] {{ display_name }} failed to rotate"
/// ```
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// The relay's host name (also the name its TLS certificate must carry).
    pub host: String,
    /// The relay's port. Default: 587 for `starttls`, 465 for `tls`, 25 for `none`.
    /// A string of digits is accepted too, so the port can come from the
    /// environment: `port = "${SMTP_PORT}"` (substitution only fills strings).
    #[serde(default, deserialize_with = "port_number_or_string")]
    #[schemars(with = "Option<PortSetting>")]
    pub port: Option<u16>,
    /// How the connection is protected; there is no default, say it explicitly.
    pub tls: TlsMode,
    /// Allows `tls = "none"`: mail and credentials cross the network in clear text.
    #[serde(default)]
    pub allow_insecure: bool,
    /// AUTH user name; set together with `password`.
    #[serde(default)]
    pub username: Option<String>,
    /// AUTH password (use `${VAR}` to keep it out of the file). Never logged.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub password: Option<SecretString>,
    /// The sender, e.g. `KMS alerts <kms-alerts@example.com>`. Its domain is
    /// also the right-hand side of every `Message-ID`.
    pub from: String,
    /// Fixed `To` recipients.
    #[serde(default)]
    pub to: Vec<String>,
    /// Fixed `Cc` recipients.
    #[serde(default)]
    pub cc: Vec<String>,
    /// Fixed `Bcc` recipients (in the envelope only, never in the headers).
    #[serde(default)]
    pub bcc: Vec<String>,
    /// `Reply-To` address.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// An event label whose value (one address, or several separated by
    /// commas) is added to `To`.
    #[serde(default)]
    pub to_from_label: Option<String>,
    /// Adds the event's owner to `To` when the owner is a mailbox
    /// (`alice@example.com`); owners that are not addresses are ignored.
    #[serde(default)]
    pub to_owner: bool,
    /// Upper bound for one whole SMTP conversation: connect, greeting, TLS,
    /// AUTH, MAIL/RCPT/DATA (humantime, e.g. `30s`).
    #[serde(default = "default_timeout", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// Reusable connections.
    #[serde(default)]
    pub pool: PoolConfig,
    /// A PEM file of CA certificates for a private relay. When set, only these
    /// CAs are trusted (instead of the built-in public roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The EHLO name. Default: this machine's host name.
    #[serde(default)]
    pub hello_name: Option<String>,
    /// Template overrides by event kind (`rotation_success`,
    /// `rotation_failure`, `approaching_deadline`, a custom kind, or
    /// `default` for every kind without its own templates).
    #[serde(default)]
    pub templates: BTreeMap<String, TemplateOverride>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

/// What `port` accepts, for the schema: a number, or digits in a string.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum PortSetting {
    /// `port = 2525`
    Number(u16),
    /// `port = "2525"`, or `"${SMTP_PORT}"` giving the digits (the schema
    /// sees the file before substitution, so any string passes here).
    Digits(String),
}

/// `port` as a number or a string of digits (see [`SmtpConfig::port`]).
fn port_number_or_string<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u16>, D::Error> {
    let Some(value) = Option::<serde_json::Value>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let port = match &value {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    };
    port.map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "invalid port {value}: expected a number from 1 to 65535, or a string of its digits"
        ))
    })
}

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain connection upgraded with `STARTTLS` (port 587); fails if the
    /// server does not offer it.
    Starttls,
    /// TLS from the first byte, "SMTPS" (port 465).
    Tls,
    /// No encryption (port 25); needs `allow_insecure = true`.
    None,
}

impl TlsMode {
    /// The conventional port of the mode.
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::Starttls => 587,
            TlsMode::Tls => 465,
            TlsMode::None => 25,
        }
    }

    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Starttls => "starttls",
            TlsMode::Tls => "tls",
            TlsMode::None => "none",
        }
    }
}

/// `pool`: how many connections are kept and for how long.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// Connections open at once (and so messages in flight at once), ≥ 1.
    pub max_connections: usize,
    /// An unused connection older than this is closed instead of reused.
    #[serde(with = "humantime_serde")]
    #[schemars(with = "String")]
    pub idle_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_connections: 4,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Templates for one event kind; each part left out keeps its default.
///
/// Templates are [minijinja](https://docs.rs/minijinja) (Jinja2 syntax). The
/// HTML template is auto-escaped; the subject is flattened to one line.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateOverride {
    /// The `Subject` line.
    #[serde(default)]
    pub subject: Option<String>,
    /// The `text/plain` part.
    #[serde(default)]
    pub text: Option<String>,
    /// The `text/html` part.
    #[serde(default)]
    pub html: Option<String>,
}

/// The name under which templates apply to every kind without its own.
pub const DEFAULT_TEMPLATE_KEY: &str = "default";

/// Parses a mailbox (`Name <user@domain>` or `user@domain`), naming `field` on failure.
pub(crate) fn parse_mailbox(field: &str, value: &str) -> Result<Mailbox, ChannelConfigError> {
    Mailbox::from_str(value.trim()).map_err(|e| {
        ChannelConfigError::field(
            field,
            format!(
                "invalid e-mail address {value:?} ({e}); write `user@example.com` or `Name <user@example.com>`"
            ),
        )
    })
}

fn parse_list(field: &str, values: &[String]) -> Result<Vec<Mailbox>, ChannelConfigError> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| parse_mailbox(&format!("{field}[{i}]"), v))
        .collect()
}

/// The settings after validation: addresses parsed, port resolved.
#[derive(Debug, Clone)]
pub(crate) struct Validated {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    pub reply_to: Option<Mailbox>,
    pub to_from_label: Option<String>,
    pub to_owner: bool,
    pub timeout: Duration,
    pub pool: PoolConfig,
    pub ca_file: Option<PathBuf>,
    pub hello_name: Option<String>,
}

impl SmtpConfig {
    /// Checks everything that deserialization cannot: addresses, the TLS
    /// mode, credentials, pool size, the template keys.
    pub(crate) fn validate(&self) -> Result<Validated, ChannelConfigError> {
        let host = self.host.trim();
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(ChannelConfigError::field(
                "host",
                format!(
                    "{:?} is not a host name; write e.g. \"smtp.example.com\"",
                    self.host
                ),
            ));
        }
        if self.tls == TlsMode::None && !self.allow_insecure {
            return Err(ChannelConfigError::field(
                "tls",
                "\"none\" sends mail (and any password) in clear text; use \"starttls\" or \"tls\", \
                 or set allow_insecure = true if the relay is on a trusted network",
            ));
        }
        if self.port == Some(0) {
            return Err(ChannelConfigError::field(
                "port",
                "port 0 is not a valid port",
            ));
        }
        match (&self.username, &self.password) {
            (Some(u), Some(_)) if u.is_empty() => {
                return Err(ChannelConfigError::field("username", "must not be empty"));
            }
            (Some(_), None) => {
                return Err(ChannelConfigError::field(
                    "password",
                    "username is set but password is not; set both, or neither to send without AUTH",
                ));
            }
            (None, Some(_)) => {
                return Err(ChannelConfigError::field(
                    "username",
                    "password is set but username is not; set both, or neither to send without AUTH",
                ));
            }
            _ => {}
        }
        let from = parse_mailbox("from", &self.from)?;
        let to = parse_list("to", &self.to)?;
        let cc = parse_list("cc", &self.cc)?;
        let bcc = parse_list("bcc", &self.bcc)?;
        let reply_to = self
            .reply_to
            .as_deref()
            .map(|r| parse_mailbox("reply_to", r))
            .transpose()?;
        if let Some(label) = &self.to_from_label
            && label.trim().is_empty()
        {
            return Err(ChannelConfigError::field(
                "to_from_label",
                "must name an event label, e.g. \"owner_email\"",
            ));
        }
        if to.is_empty()
            && cc.is_empty()
            && bcc.is_empty()
            && self.to_from_label.is_none()
            && !self.to_owner
        {
            return Err(ChannelConfigError::field(
                "to",
                "no recipients: set at least one of to, cc, bcc, to_from_label or to_owner",
            ));
        }
        if self.timeout.is_zero() {
            return Err(ChannelConfigError::field(
                "timeout",
                "must be longer than zero, e.g. \"30s\"",
            ));
        }
        if self.pool.max_connections == 0 {
            return Err(ChannelConfigError::field(
                "pool.max_connections",
                "must be at least 1",
            ));
        }
        if let Some(name) = &self.hello_name
            && (name.is_empty() || !name.chars().all(|c| c.is_ascii_graphic()))
        {
            return Err(ChannelConfigError::field(
                "hello_name",
                format!("{name:?} is not a host name"),
            ));
        }
        for key in self.templates.keys() {
            if key != DEFAULT_TEMPLATE_KEY && EventKind::custom(key.as_str()).is_err() {
                return Err(ChannelConfigError::field(
                    format!("templates.{key}"),
                    "not an event kind; use rotation_success, rotation_failure, \
                     approaching_deadline, a custom kind, or \"default\"",
                ));
            }
        }
        Ok(Validated {
            host: host.to_owned(),
            port: self.port.unwrap_or(self.tls.default_port()),
            tls: self.tls,
            username: self.username.clone(),
            password: self.password.clone(),
            from,
            to,
            cc,
            bcc,
            reply_to,
            to_from_label: self.to_from_label.clone(),
            to_owner: self.to_owner,
            timeout: self.timeout,
            pool: self.pool.clone(),
            ca_file: self.ca_file.clone(),
            hello_name: self.hello_name.clone(),
        })
    }
}
