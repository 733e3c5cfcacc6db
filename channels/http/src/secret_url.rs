//! [`SecretUrl`]: an endpoint whose path or query is a credential.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::Deserialize;
use url::Url;

/// An `http://` or `https://` URL that may carry a token in its path, query
/// or user info (Slack and Teams webhook URLs are bearer credentials).
///
/// `Debug` and `Display` show only `scheme://host:port/[redacted]`; the
/// whole URL is reachable only through [`SecretUrl::expose`]. Deserializes
/// from a string (errors never repeat it) and is described to schemars as
/// one.
///
/// ```
/// use clarion_http::SecretUrl;
/// let url: SecretUrl = "https://hooks.slack.com/services/T000/B000/XXXX".parse().unwrap();
/// assert_eq!(url.to_string(), "https://hooks.slack.com/[redacted]");
/// assert_eq!(format!("{url:?}"), "SecretUrl(https://hooks.slack.com/[redacted])");
/// assert_eq!(url.origin(), "https://hooks.slack.com");
/// assert!("ftp://example.com".parse::<SecretUrl>().unwrap_err().contains("http://"));
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct SecretUrl {
    url: Url,
    origin: String,
}

impl SecretUrl {
    /// Parses and checks a URL: `http` or `https`, with a host. The error
    /// says what is wrong without repeating the URL.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = Url::parse(raw.trim()).map_err(|e| {
            format!("not a valid URL ({e}); expected e.g. \"https://hooks.example.com/…\"")
        })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(format!(
                "scheme \"{}\" is not supported; use an http:// or https:// URL",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("the URL has no host".into());
        }
        let origin = url.origin().ascii_serialization();
        Ok(SecretUrl { url, origin })
    }

    /// The whole URL, token included: for sending, never for printing.
    pub fn expose(&self) -> &Url {
        &self.url
    }

    /// `scheme://host[:port]`: enough to say where, never a path or token.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether the scheme is `https`.
    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }

    /// Whether the host is a loopback address or `localhost`.
    pub fn is_loopback(&self) -> bool {
        match self.url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        }
    }

    /// The pieces of the URL that are secret (user info, path, query), for
    /// a [`Redactor`](crate::Redactor).
    pub(crate) fn secret_parts(&self) -> Vec<&str> {
        let mut parts = vec![&self.url[url::Position::BeforePath..], self.url.username()];
        parts.extend(self.url.password());
        parts
    }
}

impl FromStr for SecretUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SecretUrl::parse(s)
    }
}

impl TryFrom<String> for SecretUrl {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        SecretUrl::parse(&s)
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/[redacted]", self.origin)
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({self})")
    }
}

impl JsonSchema for SecretUrl {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretUrl".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^https?://",
            "description": "An http:// or https:// URL; a secret (use ${VAR}), never printed beyond scheme://host:port."
        })
    }

    fn inline_schema() -> bool {
        true
    }
}
