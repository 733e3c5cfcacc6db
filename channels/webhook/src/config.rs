//! `[channels.<name>]` settings of a `kind = "webhook"` channel.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use secrecy::SecretString;
use serde::Deserialize;

/// The default for [`WebhookConfig::timeout`]: below the dispatcher's own
/// 30 s default, so the channel classifies a slow receiver itself.
pub const DEFAULT_TIMEOUT: Duration = clarion_http::DEFAULT_TIMEOUT;

/// `[channels.<name>]` settings of a `kind = "webhook"` channel.
///
/// `url`, `secrets` and header values are secrets (a Slack or Teams URL is a
/// bearer credential, so is an `Authorization` header): `Debug`, logs and
/// errors show only the URL's `scheme://host:port` and the header names.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The endpoint, `http://` or `https://`. Use `${VAR}` when it embeds a token.
    #[schemars(with = "String")]
    pub url: SecretString,
    /// Standard Webhooks secrets, `whsec_<base64 of 24-64 bytes>`. Every one
    /// signs each message: list the new secret beside the old one during a
    /// rotation, then remove the old one. Required with `format = "standard"`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub secrets: Vec<SecretString>,
    /// Extra request headers, e.g. `Authorization`. `webhook-*`,
    /// `content-type`, `content-length`, `host`, `transfer-encoding` and
    /// `connection` are set by clarion and cannot be overridden.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub headers: BTreeMap<String, SecretString>,
    /// Upper bound for one request, connection and response included
    /// (humantime, e.g. `10s`). Keep it below `[delivery] timeout`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    // schemars ignores `default` next to `with`; `extend` sets it (the test
    // `the_schema_shows_the_default_timeout` keeps it equal to DEFAULT_TIMEOUT).
    #[schemars(with = "String", extend("default" = "10s"))]
    pub timeout: Duration,
    /// `standard` (the Standard Webhooks JSON body) or `template`.
    #[serde(default)]
    pub format: BodyFormat,
    /// A minijinja template of the body, with `format = "template"`.
    #[serde(default)]
    pub body_template: Option<String>,
    /// The body's content type with `format = "template"`; default `application/json`.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Follow `307`/`308` redirects (at most 5, never from https to http).
    /// Off by default: a redirect is then a permanent error.
    #[serde(default)]
    pub allow_redirects: bool,
    /// A PEM file of CA certificates to trust besides the system's, for a
    /// receiver behind a private CA. Read when the channel is built.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// An HTTP(S) proxy for this channel, e.g. `http://proxy.internal:3128`
    /// (credentials as `http://user:password@…`; it is a secret), or
    /// `"direct"` to ignore the environment's proxies. Without it the
    /// standard `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`
    /// environment variables apply.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub proxy: Option<SecretString>,
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

/// How the request body is made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    /// `{"type": …, "timestamp": …, "data": {…}}` (see the crate docs).
    #[default]
    Standard,
    /// Rendered from `body_template` (Slack, Teams, ticketing systems …).
    Template,
}

impl WebhookConfig {
    /// Settings for `url` with every other field at its default; add secrets
    /// with [`WebhookConfig::secret`].
    pub fn new(url: impl Into<String>) -> Self {
        WebhookConfig {
            url: SecretString::from(url.into()),
            secrets: Vec::new(),
            headers: BTreeMap::new(),
            timeout: DEFAULT_TIMEOUT,
            format: BodyFormat::Standard,
            body_template: None,
            content_type: None,
            allow_redirects: false,
            tls_ca_file: None,
            proxy: None,
        }
    }

    /// Adds a signing secret (`whsec_…`).
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secrets.push(SecretString::from(secret.into()));
        self
    }

    /// Adds a request header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers
            .insert(name.into(), SecretString::from(value.into()));
        self
    }

    /// Sets the request timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Switches to `format = "template"` with this body template and content type.
    pub fn template(
        mut self,
        body_template: impl Into<String>,
        content_type: Option<&str>,
    ) -> Self {
        self.format = BodyFormat::Template;
        self.body_template = Some(body_template.into());
        self.content_type = content_type.map(str::to_owned);
        self
    }

    /// Trusts the CA certificates in this PEM file besides the system's.
    pub fn tls_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls_ca_file = Some(path.into());
        self
    }

    /// Sends through this proxy (or `"direct"`: through none).
    pub fn proxy(mut self, proxy: impl Into<String>) -> Self {
        self.proxy = Some(SecretString::from(proxy.into()));
        self
    }

    /// Sets `allow_redirects`.
    pub fn allow_redirects(mut self, allow: bool) -> Self {
        self.allow_redirects = allow;
        self
    }
}
