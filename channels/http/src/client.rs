//! [`HttpClient`]: one reqwest client per channel, on rustls with ring.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clarion_core::channel::DeliveryError;
use clarion_core::registry::ChannelConfigError;
use http::HeaderValue;
use http::header::CONTENT_TYPE;
use reqwest::redirect;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::ExposeSecret;
use serde::Serialize;
use url::Url;

use crate::classify::classify_error;
use crate::redact::Redactor;
use crate::response::Response;
use crate::secret_url::SecretUrl;
use crate::settings::HttpSettings;

/// The `user-agent` of every request: `clarion/<version>`.
pub const USER_AGENT: &str = concat!("clarion/", env!("CARGO_PKG_VERSION"));

/// Redirects followed at most, with `allow_redirects = true`.
pub const MAX_REDIRECTS: usize = 5;

/// One channel's HTTP client: connections are reused across deliveries and
/// shared by the dispatcher's tasks (it is cheap to clone).
///
/// `Debug` shows the timeouts, the redirect policy and where the proxy comes
/// from, never a URL, a proxy credential or a secret.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    timeout: Duration,
    allow_redirects: bool,
    proxy: ProxyChoice,
    /// The explicit proxy's `host:port`, for [`HttpClient::check`].
    proxy_addr: Option<(String, u16)>,
    redactor: Arc<Redactor>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProxyChoice {
    Environment,
    Configured,
    Direct,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .field("allow_redirects", &self.allow_redirects)
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

/// Builds an [`HttpClient`]; see [`HttpClient::builder`].
#[must_use]
pub struct HttpClientBuilder<'a> {
    settings: &'a HttpSettings,
    at: String,
    redactor: Redactor,
    https: bool,
}

impl HttpClient {
    /// Starts a client for `settings`. Tell it every secret the channel
    /// holds ([`endpoint`](HttpClientBuilder::endpoint),
    /// [`secret`](HttpClientBuilder::secret)) so no reason ever repeats one.
    ///
    /// ```
    /// use clarion_http::{HttpClient, HttpSettings, SecretUrl};
    /// let url: SecretUrl = "https://hooks.example.com/T0/B0/XXXXXXXXXXXX".parse().unwrap();
    /// let http = HttpClient::builder(&HttpSettings::default())
    ///     .endpoint(&url)
    ///     .secret("Bearer sk_live_0123456789")
    ///     .build()
    ///     .unwrap();
    /// assert!(!format!("{http:?}").contains("XXXXXXXXXXXX"));
    /// ```
    pub fn builder(settings: &HttpSettings) -> HttpClientBuilder<'_> {
        HttpClientBuilder {
            settings,
            at: "http".into(),
            redactor: Redactor::default(),
            https: false,
        }
    }

    /// A `POST` to `url`, to finish (headers, body) and hand to [`send`](Self::send).
    pub fn post(&self, url: &SecretUrl) -> reqwest::RequestBuilder {
        self.client.post(url.expose().clone())
    }

    /// Sends a request and reads the answer within bounds. No answer
    /// (timeout, refused or reset connection, DNS or TLS failure) is
    /// retryable; a request that cannot be built or a redirect policy
    /// violation is permanent. Reasons name the origin only.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<Response, DeliveryError> {
        let (client, request) = request.build_split();
        let request = request.map_err(|e| classify_error(e, "?", self.timeout, &self.redactor))?;
        let origin = request.url().origin().ascii_serialization();
        match client.execute(request).await {
            Ok(response) => {
                Ok(Response::read(response, self.allow_redirects, self.redactor.clone()).await)
            }
            Err(e) => Err(classify_error(e, &origin, self.timeout, &self.redactor)),
        }
    }

    /// `POST`s `body` as `application/json` and reads the answer.
    pub async fn post_json(
        &self,
        url: &SecretUrl,
        body: &impl Serialize,
    ) -> Result<Response, DeliveryError> {
        self.send(self.json_request(url, body)?).await
    }

    /// A `POST` of `body` as `application/json`, to add headers to (auth,
    /// idempotency key) before [`send`](Self::send).
    pub fn json_request(
        &self,
        url: &SecretUrl,
        body: &impl Serialize,
    ) -> Result<reqwest::RequestBuilder, DeliveryError> {
        let body = serde_json::to_vec(body).map_err(|e| {
            DeliveryError::permanent(format!("cannot serialize the request body: {e}"))
        })?;
        Ok(self
            .post(url)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body))
    }

    /// Opens a TCP connection to `url`'s host (or to the configured proxy)
    /// within `timeout` and sends nothing: a channel's
    /// [`check`](clarion_core::Channel::check).
    pub async fn check(&self, url: &SecretUrl) -> Result<(), DeliveryError> {
        let (host, port) = match &self.proxy_addr {
            Some(addr) => addr.clone(),
            None => host_port(url.expose()),
        };
        let target = if self.proxy_addr.is_some() {
            "the proxy".to_owned()
        } else {
            url.origin().to_owned()
        };
        let connect = tokio::net::TcpStream::connect((host.as_str(), port));
        match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(_stream)) => Ok(()),
            Ok(Err(e)) => Err(DeliveryError::retryable(format!(
                "cannot connect to {target}: {}",
                self.redactor.redact(&e.to_string())
            ))),
            Err(_) => Err(DeliveryError::retryable(format!(
                "timed out after {:?} connecting to {target}",
                self.timeout
            ))),
        }
    }

    /// `text` with every secret this client knows replaced by `[redacted]`.
    pub fn redact(&self, text: &str) -> String {
        self.redactor.redact(text)
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl HttpClientBuilder<'_> {
    /// Where the settings sit in the channel's table, for error paths:
    /// `"http"` (the default: an embedded `http` table) or `""` when the
    /// channel keeps them at its top level.
    pub fn at(mut self, path: &str) -> Self {
        self.at = path.to_owned();
        self
    }

    /// The endpoint this client talks to: its path, query and user info are
    /// hidden from reasons, and an `https` endpoint requires a trust store.
    /// A plain `http` endpoint off loopback logs a warning.
    pub fn endpoint(mut self, url: &SecretUrl) -> Self {
        for part in url.secret_parts() {
            self.redactor.add_with_parts(part);
        }
        self.redactor.add(url.expose().as_str());
        self.https |= url.is_https();
        if !url.is_https() && !url.is_loopback() {
            tracing::warn!(
                endpoint = %url.origin(),
                "the channel's url uses plain http: requests travel unencrypted"
            );
        }
        self
    }

    /// A secret value (API key, header value) to hide from reasons, with its
    /// space-, `/`-, `=`-… separated parts.
    pub fn secret(mut self, secret: &str) -> Self {
        self.redactor.add_with_parts(secret);
        self
    }

    fn field(&self, name: &str) -> String {
        if self.at.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.at)
        }
    }

    /// Builds the client (reads `tls_ca_file`; no network I/O). Errors name
    /// the setting (`http.timeout`, `http.tls_ca_file`, `http.proxy`) and
    /// never repeat a secret.
    pub fn build(mut self) -> Result<HttpClient, ChannelConfigError> {
        let s = self.settings;
        if s.timeout.is_zero() {
            return Err(ChannelConfigError::field(
                self.field("timeout"),
                "must be greater than zero, e.g. \"10s\"",
            ));
        }
        if s.connect_timeout.is_some_and(|t| t.is_zero()) {
            return Err(ChannelConfigError::field(
                self.field("connect_timeout"),
                "must be greater than zero, e.g. \"5s\"; remove it for the default",
            ));
        }
        let (proxy, proxy_choice, proxy_addr) = match &s.proxy {
            None => (None, ProxyChoice::Environment, None),
            Some(raw) if raw.expose_secret().trim() == "direct" => {
                (None, ProxyChoice::Direct, None)
            }
            Some(raw) => {
                let raw = raw.expose_secret().trim();
                self.redactor.add_with_parts(raw);
                let (proxy, addr) =
                    proxy(raw).map_err(|e| ChannelConfigError::field(self.field("proxy"), e))?;
                self.https |= addr.1 == 443;
                (Some(proxy), ProxyChoice::Configured, Some(addr))
            }
        };
        let extra_roots = match &s.tls_ca_file {
            None => Vec::new(),
            Some(path) => load_ca_file(path)
                .map_err(|e| ChannelConfigError::field(self.field("tls_ca_file"), e))?,
        };
        let tls = tls_config(extra_roots, self.https).map_err(|e| match e {
            TlsSetupError::ExtraRoots(e) => ChannelConfigError::field(self.field("tls_ca_file"), e),
            TlsSetupError::Other(e) => ChannelConfigError::new(e),
        })?;
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(USER_AGENT)
            .timeout(s.timeout)
            .connect_timeout(s.effective_connect_timeout())
            .redirect(redirect_policy(s.allow_redirects));
        builder = match (proxy_choice, proxy) {
            (ProxyChoice::Configured, Some(proxy)) => builder.proxy(proxy),
            (ProxyChoice::Direct, _) => builder.no_proxy(),
            _ => builder,
        };
        let client = builder.build().map_err(|e| {
            ChannelConfigError::new(format!(
                "cannot build the HTTP client: {}",
                self.redactor.redact(&error_chain(&e))
            ))
        })?;
        Ok(HttpClient {
            client,
            timeout: s.timeout,
            allow_redirects: s.allow_redirects,
            proxy: proxy_choice,
            proxy_addr,
            redactor: Arc::new(self.redactor),
        })
    }
}

fn host_port(url: &Url) -> (String, u16) {
    let host = url.host_str().unwrap_or_default();
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    (host, url.port_or_known_default().unwrap_or(443))
}

/// An explicit proxy; `NO_PROXY` from the environment still applies.
fn proxy(raw: &str) -> Result<(reqwest::Proxy, (String, u16)), String> {
    let url = Url::parse(raw).map_err(|e| {
        format!("not a valid URL ({e}); expected e.g. \"http://proxy.internal:3128\" or \"direct\"")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "expected an http:// or https:// proxy URL with a host (scheme \"{}\" is not supported), \
             or \"direct\"",
            url.scheme()
        ));
    }
    let addr = host_port(&url);
    let proxy = reqwest::Proxy::all(url.as_str())
        .map_err(|_| "not a usable proxy URL".to_owned())?
        .no_proxy(reqwest::NoProxy::from_env());
    Ok((proxy, addr))
}

fn redirect_policy(allow_redirects: bool) -> redirect::Policy {
    if !allow_redirects {
        return redirect::Policy::none();
    }
    redirect::Policy::custom(|attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        if !matches!(attempt.status().as_u16(), 307 | 308) {
            // Hand the 3xx back: classification explains it.
            return attempt.stop();
        }
        let downgrade = attempt.url().scheme() == "http"
            && attempt.previous().iter().any(|u| u.scheme() == "https");
        if downgrade {
            return attempt.error("refusing to follow a redirect from https to http");
        }
        attempt.follow()
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {shown}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot parse {shown}: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "{shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(certs)
}

enum TlsSetupError {
    ExtraRoots(String),
    Other(String),
}

/// rustls with the ring provider (passed explicitly: nothing process-wide is
/// assumed or installed), the platform's trust store plus `extra_roots`,
/// HTTP/1.1.
fn tls_config(
    extra_roots: Vec<CertificateDer<'static>>,
    https: bool,
) -> Result<rustls::ClientConfig, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let has_extra = !extra_roots.is_empty();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError::Other(e.to_string()))?;
    let mut tls =
        match rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider) {
            Ok(verifier) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth(),
            Err(e) if has_extra => {
                return Err(TlsSetupError::ExtraRoots(format!(
                    "cannot use these certificates: {e}"
                )));
            }
            // No CA bundle on this machine: an http:// endpoint does not need one
            // (an https redirect target would then fail verification, retryably).
            Err(_) if !https => builder
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
            Err(e) => {
                return Err(TlsSetupError::Other(format!(
                    "cannot load the system's trusted CA certificates ({e}); install them \
                     (e.g. the ca-certificates package) or set tls_ca_file"
                )));
            }
        };
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}
