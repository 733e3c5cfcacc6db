//! A real HTTP receiver (axum on 127.0.0.1, ephemeral port) that records
//! every request and answers as scripted (200 by default), over HTTP or HTTPS.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// A request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The method.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// Every header.
    pub headers: HeaderMap,
    /// The raw body, as signed.
    pub body: Bytes,
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Status, extra headers, body.
    Status(u16, Vec<(&'static str, String)>, String),
    /// Never answer.
    Hang,
}

impl Reply {
    /// This status, no body.
    pub fn status(code: u16) -> Reply {
        Reply::Status(code, Vec::new(), String::new())
    }
    /// This status and body.
    pub fn with_body(code: u16, body: impl Into<String>) -> Reply {
        Reply::Status(code, Vec::new(), body.into())
    }
    /// This status and one extra header.
    pub fn with_header(code: u16, name: &'static str, value: impl Into<String>) -> Reply {
        Reply::Status(code, vec![(name, value.into())], String::new())
    }
}

#[derive(Default)]
struct State {
    requests: Mutex<Vec<Recorded>>,
    script: Mutex<VecDeque<Reply>>,
    connections: AtomicUsize,
}

/// A TCP listener that counts the connections it accepts.
struct Counting {
    inner: tokio::net::TcpListener,
    state: Arc<State>,
}

impl axum::serve::Listener for Counting {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Ok(accepted) = self.inner.accept().await {
                self.state.connections.fetch_add(1, Ordering::SeqCst);
                return accepted;
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// The receiver; stops when dropped.
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

/// Completes the TLS handshake of each accepted connection; connections
/// whose handshake fails (a client that rejects the certificate) are dropped.
struct Tls {
    inner: Counting,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for Tls {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (tcp, addr) = self.inner.accept().await;
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

impl Receiver {
    /// Starts a receiver that answers 200 unless scripted otherwise (needs a
    /// tokio runtime; the server runs as a task on it).
    pub async fn start() -> Receiver {
        Self::start_with(None, "127.0.0.1:0".parse().unwrap()).await
    }

    /// Like [`Receiver::start`], listening on `addr` (e.g. a port that was
    /// refusing connections a moment ago).
    pub async fn start_on(addr: SocketAddr) -> Receiver {
        Self::start_with(None, addr).await
    }

    /// Like [`Receiver::start`], speaking HTTPS with this server configuration.
    pub async fn start_tls(tls: Arc<rustls::ServerConfig>) -> Receiver {
        Self::start_with(Some(tls), "127.0.0.1:0".parse().unwrap()).await
    }

    async fn start_with(tls: Option<Arc<rustls::ServerConfig>>, addr: SocketAddr) -> Receiver {
        let state = Arc::new(State::default());
        let shared = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = shared.clone();
                async move { answer(state, method, uri, headers, body).await }
            },
        );
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let listener = Counting {
            inner: listener,
            state: state.clone(),
        };
        let task = match tls {
            None => tokio::spawn(async move {
                axum::serve(listener, app).await.unwrap();
            }),
            Some(tls) => {
                let listener = Tls {
                    inner: listener,
                    acceptor: tokio_rustls::TlsAcceptor::from(tls),
                };
                tokio::spawn(async move {
                    axum::serve(listener, app).await.unwrap();
                })
            }
        };
        Receiver { addr, state, task }
    }

    /// `http://127.0.0.1:<port><path>` (use `https://` with [`Receiver::start_tls`]).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Queues answers, used in order; then 200 again.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    state: Arc<State>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.requests.lock().unwrap().push(Recorded {
        method,
        path: uri.to_string(),
        headers,
        body,
    });
    let reply = state.script.lock().unwrap().pop_front();
    match reply {
        None => (StatusCode::OK, "ok").into_response(),
        Some(Reply::Hang) => std::future::pending().await,
        Some(Reply::Status(code, extra, body)) => respond(code, extra, body),
    }
}

/// An answer with this status, extra headers and body.
pub(crate) fn respond(code: u16, extra: Vec<(&'static str, String)>, body: String) -> Response {
    let mut response = (StatusCode::from_u16(code).unwrap(), body).into_response();
    for (name, value) in extra {
        response.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    response
}
