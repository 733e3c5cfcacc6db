//! A real HTTP receiver on 127.0.0.1 standing in for an ntfy server. It
//! answers like ntfy (200 with the stored message as JSON) unless told to
//! answer otherwise, and records what it received.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// This status, with a `Retry-After` header if given, and this body.
    Status(u16, Option<&'static str>, String),
    /// None: the connection stays open and silent.
    Hang,
}

/// A request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: serde_json::Value,
}

#[derive(Default)]
struct State {
    script: Mutex<VecDeque<Answer>>,
    received: Mutex<Vec<Received>>,
}

/// The receiver; stops when dropped.
pub struct Receiver {
    pub url: String,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let state = Arc::new(State::default());
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
            let state = shared.clone();
            async move { answer(&state, headers, &body).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, state, server }
    }

    /// Queues answers, used in order; then 200 again.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.script.lock().unwrap().extend(answers);
    }

    /// Every request so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(state: &State, headers: HeaderMap, body: &str) -> Response {
    state.received.lock().unwrap().push(Received {
        headers,
        body: serde_json::from_str(body).unwrap_or_default(),
    });
    let next = state.script.lock().unwrap().pop_front();
    match next {
        None => {
            let stored = serde_json::json!({"id": "hWu4mBMDjAVF", "event": "message"});
            (StatusCode::OK, stored.to_string()).into_response()
        }
        Some(Answer::Status(code, retry_after, body)) => {
            let mut response = (StatusCode::from_u16(code).unwrap(), body).into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", seconds.parse().unwrap());
            }
            response
        }
        Some(Answer::Hang) => std::future::pending().await,
    }
}
