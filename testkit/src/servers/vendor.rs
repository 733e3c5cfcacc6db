//! A fake vendor endpoint (axum on 127.0.0.1) that checks every request
//! with the vendor's rules and answers as the vendor documents, unless a
//! failure is scripted. [`slack`](super::slack) and [`teams`](super::teams)
//! supply the rules.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;

use super::webhook::{Recorded, Reply, respond};

/// A vendor's rules: the documented answer to one request at `path`.
pub type Rules = fn(request: &Recorded, path: &str) -> Reply;

/// What the fake made of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The request.
    pub request: Recorded,
    /// The status it answered.
    pub status: u16,
    /// The body it answered (the vendor's error string on a refusal).
    pub answer: String,
}

struct State {
    seen: Mutex<Vec<Seen>>,
    script: Mutex<VecDeque<Reply>>,
    rules: Rules,
    path: String,
}

/// A running fake; stops when dropped.
pub struct VendorFake {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl VendorFake {
    /// Starts a fake whose (secret) endpoint is `path`, judged by `rules`.
    pub async fn start(path: &str, rules: Rules) -> VendorFake {
        let state = Arc::new(State {
            seen: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
            rules,
            path: path.to_owned(),
        });
        let shared = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = shared.clone();
                async move { answer(state, method, uri, headers, body).await }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        VendorFake { addr, state, task }
    }

    /// The endpoint's URL (it holds the secret path).
    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, self.state.path)
    }

    /// `http://127.0.0.1:<port><path>`: another path on the same fake.
    pub fn url_of(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Queues answers that replace the rules' verdict, used in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    /// Every request so far with the answer it got.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// The JSON bodies of the requests the rules accepted (2xx).
    pub fn accepted(&self) -> Vec<serde_json::Value> {
        self.seen()
            .into_iter()
            .filter(|s| (200..300).contains(&s.status))
            .map(|s| serde_json::from_slice(&s.request.body).unwrap())
            .collect()
    }
}

impl Drop for VendorFake {
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
    let request = Recorded {
        method,
        path: uri.to_string(),
        headers,
        body,
    };
    let scripted = state.script.lock().unwrap().pop_front();
    let reply = scripted.unwrap_or_else(|| (state.rules)(&request, &state.path));
    let (status, extra, text) = match reply {
        Reply::Hang => return std::future::pending().await,
        Reply::Status(status, extra, text) => (status, extra, text),
    };
    state.seen.lock().unwrap().push(Seen {
        request,
        status,
        answer: text.clone(),
    });
    respond(status, extra, text)
}

/// The request's JSON object, if its content type is JSON and it parses.
pub(crate) fn json_object(
    request: &Recorded,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    let content_type = request.headers.get("content-type")?.to_str().ok()?;
    if !content_type.starts_with("application/json") {
        return None;
    }
    match serde_json::from_slice(&request.body).ok()? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

/// The fake as the conformance suite's peer: refuses with `503` (retryable)
/// or `400 invalid_payload` (permanent), echoing its secret path as a
/// careless vendor might, or hangs; a message's key is its
/// `idempotency-key` header.
#[async_trait::async_trait]
impl crate::channel_suite::Peer for VendorFake {
    fn supports(&self, _: crate::channel_suite::PeerBehaviour) -> bool {
        true
    }

    async fn expect(&self, behaviour: crate::channel_suite::PeerBehaviour) {
        use crate::channel_suite::PeerBehaviour::*;
        let echo = format!("for {}", self.state.path);
        let reply = match behaviour {
            Accept => return,
            FailRetryable => Reply::with_body(503, format!("busy {echo}")),
            FailPermanent => Reply::with_body(400, format!("invalid_payload {echo}")),
            Hang => Reply::Hang,
        };
        self.script([reply]);
    }

    async fn received(&self) -> Vec<crate::channel_suite::ReceivedMessage> {
        self.seen()
            .into_iter()
            .map(|s| crate::channel_suite::ReceivedMessage {
                idempotency_key: (s.request.headers.get("idempotency-key"))
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                summary: format!("POST {} bytes -> {}", s.request.body.len(), s.status),
            })
            .collect()
    }
}
