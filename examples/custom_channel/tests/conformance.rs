//! Step 6: the channel conformance suite against a real HTTP receiver on
//! 127.0.0.1 that stands in for an ntfy server. It accepts like ntfy
//! (200 with the stored message as JSON), refuses temporarily (503) or for
//! good (400), or never answers, as the suite asks; its refusals echo the
//! topic and the token back, as a careless server might, so the check that
//! secrets never leak also covers the channel's redaction.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use clarion_testkit::channel_suite::{ChannelUnderTest, Peer, PeerBehaviour, ReceivedMessage};

// Step 5, in a test: name the crate so its registration is linked.
use clarion_ntfy as _;

const TOPIC: &str = "kms-alerts-5d0c7e41";
const TOKEN: &str = "tk_conformance9f8e7d6c5b";

#[derive(Default)]
struct State {
    script: Mutex<VecDeque<PeerBehaviour>>,
    received: Mutex<Vec<ReceivedMessage>>,
}

/// The receiver; stops when dropped.
struct NtfyPeer {
    state: Arc<State>,
    url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for NtfyPeer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl NtfyPeer {
    async fn start() -> NtfyPeer {
        let state = Arc::new(State::default());
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
            let state = shared.clone();
            async move { answer(&state, &headers, &body).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        NtfyPeer { state, url, server }
    }
}

async fn answer(state: &State, headers: &HeaderMap, body: &str) -> axum::response::Response {
    let publish: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    state.received.lock().unwrap().push(ReceivedMessage {
        idempotency_key: headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        summary: format!("publish {:?} ({} bytes)", publish["title"], body.len()),
    });
    let behaviour = state.script.lock().unwrap().pop_front();
    let echo = format!("topic {TOPIC}, {:?}", headers.get("authorization"));
    match behaviour.unwrap_or(PeerBehaviour::Accept) {
        PeerBehaviour::Accept => {
            let stored = serde_json::json!({"id": "hWu4mBMDjAVF", "event": "message"});
            (StatusCode::OK, stored.to_string()).into_response()
        }
        PeerBehaviour::FailRetryable => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(r#"{{"error":"overloaded; {echo}"}}"#),
        )
            .into_response(),
        PeerBehaviour::FailPermanent => (
            StatusCode::BAD_REQUEST,
            format!(r#"{{"error":"invalid request; {echo}"}}"#),
        )
            .into_response(),
        PeerBehaviour::Hang => std::future::pending().await,
    }
}

#[async_trait]
impl Peer for NtfyPeer {
    fn supports(&self, _: PeerBehaviour) -> bool {
        true
    }

    async fn expect(&self, behaviour: PeerBehaviour) {
        self.state.script.lock().unwrap().push_back(behaviour);
    }

    async fn received(&self) -> Vec<ReceivedMessage> {
        self.state.received.lock().unwrap().clone()
    }
}

async fn subject() -> ChannelUnderTest {
    let peer = NtfyPeer::start().await;
    let settings = format!(
        "server = \"{}\"\ntopic = \"{TOPIC}\"\ntoken = \"{TOKEN}\"\ntimeout = \"2s\"\n",
        peer.url
    );
    ChannelUnderTest::from_settings("ntfy", settings, peer).secrets([TOPIC, TOKEN])
}

clarion_testkit::channel_conformance_tests!(subject());
