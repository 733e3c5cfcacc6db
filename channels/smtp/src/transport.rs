//! Connections to the relay: opened by us (TCP_NODELAY, TLS, STARTTLS,
//! AUTH), handed to lettre's `AsyncSmtpConnection`, and kept in a small pool.
//!
//! lettre 0.11's own pool never sets `TCP_NODELAY` and writes the body and
//! the final `.` separately, so each message waits for the peer's delayed
//! ACK (~45 ms, ~22 messages/s per connection). Opening the socket ourselves
//! with `set_nodelay(true)` and handing it to
//! `AsyncSmtpConnection::connect_with_transport` removes that stall.

use std::collections::HashSet;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::Address;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use rustls::pki_types::{CertificateDer, ServerName};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::config::TlsMode;
use crate::error::{
    SmtpError, Stage, chain, classify, find_rustls_error, one_line_reply, tls_hint,
};

/// Mechanisms tried, in order.
const MECHANISMS: [Mechanism; 2] = [Mechanism::Plain, Mechanism::Login];

/// Everything needed to open an authenticated connection.
pub(crate) struct Connector {
    pub host: String,
    pub port: u16,
    /// `host:port`, for messages.
    pub server: String,
    pub tls: TlsMode,
    /// For `tls = "tls"`: our own handshake before the greeting.
    pub tls_connector: Option<TlsConnector>,
    /// For `tls = "starttls"`: lettre upgrades after EHLO.
    pub starttls: Option<TlsParameters>,
    pub hello: ClientId,
    pub username: Option<String>,
    pub password: Option<SecretString>,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("server", &self.server)
            .field("tls", &self.tls)
            .field("hello", &self.hello.to_string())
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

/// Builds the TLS settings from the trusted roots: `ca_file`'s certificates
/// if given, else the built-in public roots (webpki-roots). rustls uses the
/// ring provider, the only one in the workspace.
pub(crate) fn tls_settings(
    tls: TlsMode,
    host: &str,
    ca: Option<&[CertificateDer<'static>]>,
) -> Result<(Option<TlsConnector>, Option<TlsParameters>), String> {
    match tls {
        TlsMode::None => Ok((None, None)),
        TlsMode::Tls => {
            let mut roots = rustls::RootCertStore::empty();
            match ca {
                Some(certs) => {
                    for cert in certs {
                        roots
                            .add(cert.clone())
                            .map_err(|e| format!("a certificate in ca_file is unusable: {e}"))?;
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok((Some(TlsConnector::from(Arc::new(config))), None))
        }
        TlsMode::Starttls => {
            use lettre::transport::smtp::client::{Certificate, CertificateStore};
            let mut builder = TlsParameters::builder(host.to_owned());
            match ca {
                Some(certs) => {
                    builder = builder.certificate_store(CertificateStore::None);
                    for cert in certs {
                        let cert = Certificate::from_der(cert.to_vec())
                            .map_err(|e| format!("a certificate in ca_file is unusable: {e}"))?;
                        builder = builder.add_root_certificate(cert);
                    }
                }
                None => builder = builder.certificate_store(CertificateStore::WebpkiRoots),
            }
            let params = builder.build_rustls().map_err(|e| chain(&e))?;
            Ok((None, Some(params)))
        }
    }
}

/// A client-side TLS stream that lettre can drive.
struct TlsStream(tokio_rustls::client::TlsStream<TcpStream>);

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TlsStream")
            .field(&self.0.get_ref().0)
            .finish()
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

impl AsyncTokioStream for TlsStream {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl Connector {
    /// Opens a connection: TCP (no Nagle), TLS or STARTTLS, EHLO, AUTH.
    /// `stage` tracks progress so a timeout can say where it stalled.
    pub async fn open(&self, stage: &mut Stage) -> Result<AsyncSmtpConnection, SmtpError> {
        *stage = Stage::Connecting;
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| SmtpError::Connect {
                server: self.server.clone(),
                detail: e.to_string(),
            })?;
        // Without this every message waits ~45 ms for the peer's delayed ACK.
        tcp.set_nodelay(true).map_err(|e| SmtpError::Connect {
            server: self.server.clone(),
            detail: format!("cannot set TCP_NODELAY: {e}"),
        })?;
        let stream: Box<dyn AsyncTokioStream> = match &self.tls_connector {
            Some(connector) => {
                *stage = Stage::TlsHandshake;
                let name = ServerName::try_from(self.host.clone()).map_err(|e| SmtpError::Tls {
                    server: self.server.clone(),
                    stage: stage.clone(),
                    detail: e.to_string(),
                    hint: "`host` must be a DNS name or an IP address",
                })?;
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| self.handshake_error(&e, stage))?;
                Box::new(TlsStream(tls))
            }
            None => Box::new(tcp),
        };
        *stage = Stage::Greeting;
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(|e| classify(&e, &self.server, stage))?;
        if let Some(params) = &self.starttls {
            *stage = Stage::StartTls;
            if !conn.server_info().supports_feature(Extension::StartTls) {
                conn.abort().await;
                return Err(SmtpError::StartTlsUnavailable {
                    server: self.server.clone(),
                });
            }
            conn.starttls(params.clone(), &self.hello)
                .await
                .map_err(|e| classify(&e, &self.server, stage))?;
        }
        if let (Some(user), Some(password)) = (&self.username, &self.password) {
            *stage = Stage::Authenticating;
            self.authenticate(&mut conn, user, password).await?;
        }
        Ok(conn)
    }

    fn handshake_error(&self, e: &std::io::Error, stage: &Stage) -> SmtpError {
        match find_rustls_error(e) {
            Some(tls) => SmtpError::Tls {
                server: self.server.clone(),
                stage: stage.clone(),
                detail: tls.to_string(),
                hint: tls_hint(tls),
            },
            None => SmtpError::Network {
                server: self.server.clone(),
                stage: stage.clone(),
                detail: chain(e),
            },
        }
    }

    async fn authenticate(
        &self,
        conn: &mut AsyncSmtpConnection,
        user: &str,
        password: &SecretString,
    ) -> Result<(), SmtpError> {
        let info = conn.server_info();
        if info.get_auth_mechanism(&MECHANISMS).is_none() {
            let offered: Vec<String> = [Mechanism::Plain, Mechanism::Login, Mechanism::Xoauth2]
                .into_iter()
                .filter(|m| info.supports_auth_mechanism(*m))
                .map(|m| m.to_string())
                .collect();
            let offered = if offered.is_empty() {
                "; it offers none".to_owned()
            } else {
                format!("; it offers {}", offered.join(", "))
            };
            conn.abort().await;
            return Err(SmtpError::AuthUnsupported {
                server: self.server.clone(),
                offered,
            });
        }
        // Built here and dropped at once: lettre's `Credentials` is `Debug`.
        let credentials = Credentials::new(user.to_owned(), password.expose_secret().to_owned());
        match conn.auth(&MECHANISMS, &credentials).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let stage = Stage::Authenticating;
                Err(match classify(&e, &self.server, &stage) {
                    SmtpError::Rejected {
                        reply, permanent, ..
                    } => {
                        if permanent {
                            SmtpError::AuthRejected {
                                user: user.to_owned(),
                                server: self.server.clone(),
                                reply,
                            }
                        } else {
                            SmtpError::AuthTemporary {
                                user: user.to_owned(),
                                server: self.server.clone(),
                                reply,
                            }
                        }
                    }
                    other => other,
                })
            }
        }
    }
}

/// The recipients of one message and what the server said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Accepted {
    /// The server's reply to the message, e.g. `250 2.0.0 Ok: queued as 4F…`.
    pub reply: String,
    /// Recipients refused with 5xx while others were accepted.
    pub refused: Vec<(String, String)>,
}

/// Runs one mail transaction (MAIL, RCPT…, DATA, message) on `conn`.
///
/// A recipient refused with 5xx is skipped if at least one other is
/// accepted; a 4xx anywhere fails the transaction (retryable) so the whole
/// message is sent again later, to everyone, with the same Message-ID.
pub(crate) async fn transact(
    conn: &mut AsyncSmtpConnection,
    server: &str,
    from: &Address,
    recipients: &[Address],
    body: &[u8],
    stage: &mut Stage,
) -> Result<Accepted, SmtpError> {
    let mut mail_options = Vec::new();
    if let Some(address) = std::iter::once(from)
        .chain(recipients)
        .find(|a| !AsRef::<str>::as_ref(a).is_ascii())
    {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            return Err(SmtpError::Utf8Unsupported {
                server: server.to_owned(),
                address: address.to_string(),
            });
        }
        mail_options.push(MailParameter::SmtpUtfEight);
    }
    if !body.is_ascii() {
        mail_options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    *stage = Stage::MailFrom;
    conn.command(Mail::new(Some(from.clone()), mail_options))
        .await
        .map_err(|e| classify(&e, server, stage))?;
    let mut accepted = 0usize;
    let mut refused = Vec::new();
    for rcpt in recipients {
        *stage = Stage::RcptTo(rcpt.to_string());
        match conn.command(Rcpt::new(rcpt.clone(), vec![])).await {
            Ok(_) => accepted += 1,
            Err(e) if e.is_permanent() => {
                let text = std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                let code = e.status().map(u16::from).unwrap_or(550);
                refused.push((rcpt.to_string(), one_line_reply(code, &text)));
            }
            Err(e) => return Err(classify(&e, server, stage)),
        }
    }
    if accepted == 0 {
        return Err(SmtpError::AllRecipientsRejected {
            server: server.to_owned(),
            details: refused
                .iter()
                .map(|(a, r)| format!("{a} ({r})"))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    *stage = Stage::Data;
    conn.command(Data)
        .await
        .map_err(|e| classify(&e, server, stage))?;
    *stage = Stage::Message;
    let response = conn
        .message(body)
        .await
        .map_err(|e| classify(&e, server, stage))?;
    let text = response.message().collect::<Vec<_>>().join(" ");
    Ok(Accepted {
        reply: one_line_reply(response.code().into(), &text),
        refused,
    })
}

/// Removes duplicates (case-insensitively), keeping the first occurrence.
pub(crate) fn dedup(addresses: impl IntoIterator<Item = Address>) -> Vec<Address> {
    let mut seen = HashSet::new();
    addresses
        .into_iter()
        .filter(|a| seen.insert(AsRef::<str>::as_ref(a).to_ascii_lowercase()))
        .collect()
}

/// A connection waiting for reuse.
struct Idle<T> {
    conn: T,
    since: Instant,
}

/// Idle connections, most recently used last. Expired ones are dropped when
/// met (closing their sockets), so nothing runs in the background.
pub(crate) struct IdleList<T> {
    idle: Mutex<Vec<Idle<T>>>,
    idle_timeout: Duration,
}

impl<T> IdleList<T> {
    pub fn new(idle_timeout: Duration) -> Self {
        IdleList {
            idle: Mutex::new(Vec::new()),
            idle_timeout,
        }
    }

    fn expired(&self, idle: &Idle<T>, now: Instant) -> bool {
        now.saturating_duration_since(idle.since) >= self.idle_timeout
    }

    /// The freshest connection that has not expired; expired ones are dropped.
    pub fn take(&self, now: Instant) -> Option<T> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(entry) = idle.pop() {
            if !self.expired(&entry, now) {
                return Some(entry.conn);
            }
            // Everything older is expired too.
            idle.clear();
        }
        None
    }

    /// Puts a connection back for reuse.
    pub fn put(&self, conn: T, now: Instant) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.retain(|e| !self.expired(e, now));
        if !self.idle_timeout.is_zero() {
            idle.push(Idle { conn, since: now });
        }
    }

    /// How many connections wait.
    pub fn len(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// The pool: a bound on open connections and the idle ones.
pub(crate) struct Pool {
    pub permits: Semaphore,
    pub idle: IdleList<AsyncSmtpConnection>,
    pub max_connections: usize,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("max_connections", &self.max_connections)
            .field("idle_timeout", &self.idle.idle_timeout)
            .field("idle", &self.idle.len())
            .finish()
    }
}

impl Pool {
    pub fn new(max_connections: usize, idle_timeout: Duration) -> Self {
        Pool {
            permits: Semaphore::new(max_connections),
            idle: IdleList::new(idle_timeout),
            max_connections,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_list_reuses_freshest_and_drops_expired() {
        let list = IdleList::new(Duration::from_secs(60));
        let t0 = Instant::now();
        list.put(1, t0);
        list.put(2, t0 + Duration::from_secs(30));
        assert_eq!(list.take(t0 + Duration::from_secs(40)), Some(2));
        // 1 is 70 s old by now: expired, dropped.
        assert_eq!(list.take(t0 + Duration::from_secs(70)), None);
        assert_eq!(list.len(), 0);
    }

    #[test]
    fn put_prunes_expired_and_zero_timeout_keeps_nothing() {
        let list = IdleList::new(Duration::from_secs(10));
        let t0 = Instant::now();
        list.put(1, t0);
        list.put(2, t0 + Duration::from_secs(20));
        assert_eq!(list.len(), 1);
        let none = IdleList::new(Duration::ZERO);
        none.put(1, t0);
        assert_eq!(none.take(t0), None);
    }

    #[test]
    fn dedup_is_case_insensitive() {
        let a: Address = "a@example.com".parse().unwrap();
        let a2: Address = "A@Example.com".parse().unwrap();
        let b: Address = "b@example.com".parse().unwrap();
        assert_eq!(dedup([a.clone(), b.clone(), a2]), vec![a, b]);
    }
}
