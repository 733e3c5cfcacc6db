//! Step 3, in detail: what reaches the server, and how each answer (or its
//! absence) is classified, against the real receiver.

mod common;

use std::sync::Arc;
use std::time::Duration;

use clarion_core::channel::{Channel, DeliveryError};
use clarion_core::config::Config;
use clarion_testkit::channel_suite::{sample_delivery, sample_events};
use common::{Answer, Receiver};

use clarion_ntfy as _;

const TOPIC: &str = "kms-alerts-5d0c7e41";
const TOKEN: &str = "tk_outcomes0a1b2c3d4e";

fn channel(server: &str) -> Arc<dyn Channel> {
    channel_with_timeout(server, "2s")
}

fn channel_with_timeout(server: &str, timeout: &str) -> Arc<dyn Channel> {
    let text = format!(
        "[channels.phone]\nkind = \"ntfy\"\nserver = \"{server}\"\ntopic = \"{TOPIC}\"\n\
         token = \"{TOKEN}\"\ntimeout = \"{timeout}\"\n"
    );
    let mut channels = Config::from_toml_str(&text)
        .unwrap()
        .build_channels()
        .unwrap();
    channels.remove("phone").unwrap()
}

#[tokio::test]
async fn a_publish_carries_the_event_the_token_and_the_idempotency_key() {
    let receiver = Receiver::start().await;
    let channel = channel(&receiver.url);
    let failure = sample_events().remove(1);
    let delivery = sample_delivery(failure);
    let receipt = channel.deliver(&delivery).await.unwrap();
    assert_eq!(
        receipt.detail.as_deref(),
        Some("ntfy 200 OK, message hWu4mBMDjAVF")
    );

    let request = &receiver.received()[0];
    let header = |name: &str| request.headers[name].to_str().unwrap().to_owned();
    assert_eq!(header("authorization"), format!("Bearer {TOKEN}"));
    assert_eq!(header("idempotency-key"), delivery.idempotency_key());
    assert_eq!(request.body["topic"], TOPIC);
    assert_eq!(
        request.body["title"],
        "rotation_failure: symmetric_key key-failure-name"
    );
    assert_eq!(request.body["priority"], 5, "critical is ntfy's max");
    assert_eq!(
        request.body["tags"],
        serde_json::json!(["rotating_light", "rotation_failure"])
    );
    let message = request.body["message"].as_str().unwrap();
    assert!(message.contains("error: HSM unreachable"), "{message}");
}

#[tokio::test]
async fn answers_are_classified() {
    let receiver = Receiver::start().await;
    let channel = channel(&receiver.url);
    let echo = format!("{{\"error\":\"no; topic {TOPIC}, Bearer {TOKEN}\"}}");
    receiver.script([
        Answer::Status(429, Some("30"), echo.clone()),
        Answer::Status(502, None, String::new()),
        Answer::Status(401, None, echo.clone()),
        Answer::Status(413, None, echo.clone()),
        Answer::Status(301, None, String::new()),
    ]);
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        let delivery = sample_delivery(sample_events().remove(0));
        outcomes.push(channel.deliver(&delivery).await.unwrap_err());
    }
    for outcome in &outcomes {
        let reason = format!("{outcome} {outcome:?}");
        assert!(
            !reason.contains(TOPIC) && !reason.contains(TOKEN),
            "{reason}"
        );
    }
    let retryable: Vec<bool> = outcomes.iter().map(DeliveryError::is_retryable).collect();
    assert_eq!(retryable, [true, true, false, false, false]);
    match &outcomes[0] {
        // 429: ntfy's rate limit throttles the whole channel.
        DeliveryError::Throttled {
            reason,
            retry_after,
        } => {
            assert_eq!(*retry_after, Some(Duration::from_secs(30)));
            assert!(reason.contains("429 Too Many Requests"), "{reason}");
            assert!(
                reason.contains("topic [redacted], Bearer [redacted]"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        outcomes[4]
            .reason()
            .starts_with("HTTP 301 Moved Permanently"),
        "{}",
        outcomes[4]
    );
    assert!(
        outcomes[2].reason().contains("check token"),
        "{}",
        outcomes[2]
    );
}

#[tokio::test]
async fn an_unreachable_server_is_retryable() {
    // A port that was just free: nothing listens there now.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let error = channel(&refused)
        .deliver(&sample_delivery(sample_events().remove(0)))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert!(
        error
            .reason()
            .starts_with("cannot connect to http://127.0.0.1:"),
        "{error}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_retryable_after_the_timeout() {
    let receiver = Receiver::start().await;
    receiver.script([Answer::Hang]);
    let error = channel_with_timeout(&receiver.url, "200ms")
        .deliver(&sample_delivery(sample_events().remove(0)))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert!(
        error
            .reason()
            .starts_with("timed out after 200ms waiting for http://127.0.0.1:"),
        "{error}"
    );
}
