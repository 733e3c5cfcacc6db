//! The transport settings every HTTP channel shares.

use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use secrecy::SecretString;
use serde::Deserialize;

/// The default for [`HttpSettings::timeout`]: below the dispatcher's own
/// 30 s default, so the channel classifies a slow peer itself.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest a connection attempt may take when `connect_timeout` is not
/// set (or `timeout`, if shorter).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a channel reaches its HTTP peer: timeouts, redirects, trust and proxy.
///
/// Embed it in a channel's settings as `http` (every field has a default, so
/// the table is optional):
///
/// ```toml
/// [channels.ops-slack.http]
/// timeout = "5s"
/// proxy = "http://proxy.internal:3128"
/// tls_ca_file = "/etc/clarion/corp-ca.pem"
/// ```
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Upper bound for one request, connection and response included
    /// (humantime, e.g. `10s`). Keep it below `[delivery] timeout`, so a slow
    /// peer is reported by the channel rather than cut off by the dispatcher.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    // schemars ignores `default` next to `with`; `extend` sets it.
    #[schemars(with = "String", extend("default" = "10s"))]
    pub timeout: Duration,
    /// Upper bound for opening the connection (TCP, TLS, proxy); default the
    /// shorter of `timeout` and 10 s.
    #[serde(default, with = "humantime_serde")]
    #[schemars(with = "Option<String>")]
    pub connect_timeout: Option<Duration>,
    /// Follow `307`/`308` redirects (at most 5, never from https to http).
    /// Off by default: a redirect is then a permanent error that names the
    /// target's origin. `301`/`302`/`303` are never followed, since they
    /// would turn the POST into a GET without a body.
    #[serde(default)]
    pub allow_redirects: bool,
    /// A PEM file of CA certificates to trust besides the system's, for a
    /// peer (or a TLS-inspecting proxy) behind a private CA. Read when the
    /// channel is built.
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

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: None,
            allow_redirects: false,
            tls_ca_file: None,
            proxy: None,
        }
    }
}

impl HttpSettings {
    /// Sets `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets `allow_redirects`.
    pub fn allow_redirects(mut self, allow: bool) -> Self {
        self.allow_redirects = allow;
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

    /// The connect timeout in effect.
    pub fn effective_connect_timeout(&self) -> Duration {
        self.connect_timeout
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
            .min(self.timeout)
    }
}
