//! Fixtures; the real HTTP receiver is clarion-testkit's.
#![allow(dead_code)]

use std::net::SocketAddr;

// Each test binary uses a different subset.
use clarion_core::channel::Delivery;
use clarion_core::event::*;
use clarion_core::notification::Notification;
#[allow(unused_imports)]
pub use clarion_testkit::servers::{Receiver, Recorded, Reply};
use clarion_webhook::{WebhookChannel, WebhookConfig};

pub const SECRET_A: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const SECRET_B: &str = "whsec_ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

/// A port on 127.0.0.1 where nothing listens.
pub async fn closed_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

pub fn failure_event() -> KeyEvent {
    KeyEvent::rotation_failure(
        Subject::new("key-42", ObjectType::SymmetricKey).named("payments-dek"),
        RotationFailure {
            error: "HSM unreachable".into(),
            attempt: 3,
            next_attempt: Some("2026-11-22T05:10:00Z".parse().unwrap()),
        },
    )
    .with_owner("alice")
    .with_label("env", "prod")
    .at("2026-11-22T05:00:00Z".parse().unwrap())
}

pub fn delivery(event: KeyEvent) -> Delivery {
    Delivery {
        id: uuid::Uuid::now_v7(),
        channel: "siem".into(),
        attempt: 1,
        notification: Notification::new(event, "2026-11-22T05:00:01Z".parse().unwrap()),
    }
}

/// A standard channel to `url` signed with [`SECRET_A`].
pub fn channel(url: &str) -> WebhookChannel {
    WebhookChannel::from_config(WebhookConfig::new(url).secret(SECRET_A)).unwrap()
}

pub fn header<'a>(request: &'a Recorded, name: &str) -> &'a str {
    request
        .headers
        .get(name)
        .unwrap_or_else(|| panic!("header {name} missing"))
        .to_str()
        .unwrap()
}
