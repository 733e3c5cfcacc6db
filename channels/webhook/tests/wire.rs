//! What goes over the wire, as a real axum receiver on 127.0.0.1 sees it.

mod common;

use clarion_core::channel::Channel;
use clarion_core::event::{KeyEvent, ObjectType, RotationSuccess, Subject};
use clarion_webhook::{
    DEFAULT_TOLERANCE, USER_AGENT, VerifyError, WebhookChannel, WebhookConfig, WebhookSecret,
    verify,
};
use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn signed_request_verifies_and_carries_the_standard_headers() {
    let receiver = Receiver::start().await;
    let channel = WebhookChannel::from_config(
        WebhookConfig::new(receiver.url("/hooks/clarion"))
            .secret(SECRET_A)
            .header("X-Tenant", "kms-prod"),
    )
    .unwrap();
    let d = delivery(failure_event());

    let receipt = channel.deliver(&d).await.unwrap();
    assert_eq!(receipt.detail.as_deref(), Some("HTTP 200 OK"));

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/hooks/clarion");
    assert_eq!(header(r, "webhook-id"), d.idempotency_key());
    assert_eq!(header(r, "content-type"), "application/json");
    assert_eq!(header(r, "user-agent"), USER_AGENT);
    assert_eq!(USER_AGENT, concat!("clarion/", env!("CARGO_PKG_VERSION")));
    assert_eq!(header(r, "x-tenant"), "kms-prod");
    let timestamp: i64 = header(r, "webhook-timestamp").parse().unwrap();
    assert!(timestamp > 1_700_000_000);
    let signature = header(r, "webhook-signature");
    assert!(signature.starts_with("v1,"));
    assert_eq!(signature.split(' ').count(), 1);

    let secret: WebhookSecret = SECRET_A.parse().unwrap();
    verify(&secret, &r.headers, &r.body, DEFAULT_TOLERANCE).unwrap();
    assert_eq!(
        verify(
            &secret,
            &r.headers,
            b"{\"type\":\"forged\"}",
            DEFAULT_TOLERANCE
        ),
        Err(VerifyError::NoMatchingSignature)
    );
    let other: WebhookSecret = SECRET_B.parse().unwrap();
    assert_eq!(
        verify(&other, &r.headers, &r.body, DEFAULT_TOLERANCE),
        Err(VerifyError::NoMatchingSignature)
    );
}

#[tokio::test]
async fn standard_body_is_type_timestamp_and_the_notification() {
    let receiver = Receiver::start().await;
    let channel = channel(&receiver.url("/"));
    let d = delivery(failure_event());
    channel.deliver(&d).await.unwrap();

    let body: Value = serde_json::from_slice(&receiver.requests()[0].body).unwrap();
    let expected = json!({
        "type": "rotation_failure",
        "timestamp": "2026-11-22T05:00:00Z",
        "data": {
            "id": d.notification.id.to_string(),
            "kind": "rotation_failure",
            "subject": { "id": "key-42", "type": "symmetric_key", "name": "payments-dek" },
            "owner": "alice",
            "severity": "critical",
            "occurred_at": "2026-11-22T05:00:00Z",
            "labels": { "env": "prod" },
            "data": { "error": "HSM unreachable", "attempt": 3, "next_attempt": "2026-11-22T05:10:00Z" },
            "dedup_key": null,
            "created_at": "2026-11-22T05:00:01Z"
        }
    });
    assert_eq!(body, expected);
    assert_eq!(channel.body(&d).unwrap(), receiver.requests()[0].body);
}

#[tokio::test]
async fn two_secrets_sign_during_rotation_and_each_verifies() {
    let receiver = Receiver::start().await;
    let channel = WebhookChannel::from_config(
        WebhookConfig::new(receiver.url("/"))
            .secret(SECRET_A)
            .secret(SECRET_B),
    )
    .unwrap();
    channel.deliver(&delivery(failure_event())).await.unwrap();

    let r = &receiver.requests()[0];
    let signatures: Vec<&str> = header(r, "webhook-signature").split(' ').collect();
    assert_eq!(signatures.len(), 2);
    assert!(signatures.iter().all(|s| s.starts_with("v1,")));
    assert_ne!(signatures[0], signatures[1]);
    for secret in [SECRET_A, SECRET_B] {
        let secret: WebhookSecret = secret.parse().unwrap();
        verify(&secret, &r.headers, &r.body, DEFAULT_TOLERANCE).unwrap();
    }
}

#[tokio::test]
async fn webhook_id_and_body_are_stable_across_attempts() {
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(503)]);
    let channel = channel(&receiver.url("/"));
    let first = delivery(failure_event());
    let err = channel.deliver(&first).await.unwrap_err();
    assert!(err.is_retryable());
    let second = clarion_core::channel::Delivery {
        attempt: 2,
        ..first.clone()
    };
    channel.deliver(&second).await.unwrap();

    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(header(&requests[0], "webhook-id"), first.idempotency_key());
    assert_eq!(
        header(&requests[0], "webhook-id"),
        header(&requests[1], "webhook-id")
    );
    assert_eq!(requests[0].body, requests[1].body);
    let secret: WebhookSecret = SECRET_A.parse().unwrap();
    for r in &requests {
        verify(&secret, &r.headers, &r.body, DEFAULT_TOLERANCE).unwrap();
    }
    // A different delivery of the same notification gets its own id.
    let other = delivery(failure_event());
    assert_ne!(other.idempotency_key(), first.idempotency_key());
}

const SLACK_TEMPLATE: &str = r#"{
  "text": ":rotating_light: {{ type }} for {{ notification.subject.type }} {{ notification.subject.name }}",
  "blocks": [
    {"type": "section", "text": {"type": "mrkdwn",
      "text": "*{{ notification.severity | upper }}*: {{ notification.data.error }} (attempt {{ notification.data.attempt }})"}},
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "owner {{ notification.owner }} · delivery {{ delivery.idempotency_key }}"}]}
  ],
  "labels": {{ notification.labels | tojson }}
}"#;

#[tokio::test]
async fn template_format_renders_a_slack_style_body() {
    let receiver = Receiver::start().await;
    let channel = WebhookChannel::from_config(
        WebhookConfig::new(receiver.url("/services/T000/B000/XXXXXXXX"))
            .template(SLACK_TEMPLATE, None),
    )
    .unwrap();
    let mut event = failure_event();
    // Quotes, backslashes and newlines in values must not break the JSON.
    event.data["error"] = json!("HSM said \"no\"\n\\retry");
    let d = delivery(event);
    channel.deliver(&d).await.unwrap();

    let r = &receiver.requests()[0];
    assert_eq!(header(r, "content-type"), "application/json");
    assert_eq!(header(r, "webhook-id"), d.idempotency_key());
    // No secrets configured: nothing to sign with.
    assert!(r.headers.get("webhook-signature").is_none());
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        body["text"],
        ":rotating_light: rotation_failure for symmetric_key payments-dek"
    );
    assert_eq!(
        body["blocks"][0]["text"]["text"],
        "*CRITICAL*: HSM said \"no\"\n\\retry (attempt 3)"
    );
    assert_eq!(
        body["blocks"][1]["elements"][0]["text"],
        format!("owner alice · delivery {}", d.idempotency_key())
    );
    assert_eq!(body["labels"], json!({"env": "prod"}));

    // The same template serves another kind: missing values render empty.
    let success = KeyEvent::rotation_success(
        Subject::new("key-7", ObjectType::Token),
        RotationSuccess {
            old_id: "v1".into(),
            new_id: "v2".into(),
            next_rotation: None,
        },
    );
    channel.deliver(&delivery(success)).await.unwrap();
    let body: Value = serde_json::from_slice(&receiver.requests()[1].body).unwrap();
    assert_eq!(body["text"], ":rotating_light: rotation_success for token ");
    assert_eq!(body["blocks"][0]["text"]["text"], "*INFO*:  (attempt )");
    assert!(
        body["blocks"][1]["elements"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("owner  · delivery clarion_")
    );
    assert_eq!(body["labels"], json!({}));
}

#[tokio::test]
async fn template_bodies_are_signed_when_secrets_are_configured() {
    let receiver = Receiver::start().await;
    let channel = WebhookChannel::from_config(
        WebhookConfig::new(receiver.url("/"))
            .secret(SECRET_A)
            .template(
                "kind={{ type }} key={{ notification.subject.id }}",
                Some("text/plain; charset=utf-8"),
            ),
    )
    .unwrap();
    channel.deliver(&delivery(failure_event())).await.unwrap();
    let r = &receiver.requests()[0];
    assert_eq!(header(r, "content-type"), "text/plain; charset=utf-8");
    assert_eq!(&r.body[..], b"kind=rotation_failure key=key-42");
    let secret: WebhookSecret = SECRET_A.parse().unwrap();
    verify(&secret, &r.headers, &r.body, DEFAULT_TOLERANCE).unwrap();
}

#[tokio::test]
async fn check_connects_without_sending() {
    let receiver = Receiver::start().await;
    channel(&receiver.url("/")).check().await.unwrap();
    assert!(receiver.requests().is_empty());
    let closed = closed_port().await;
    let err = channel(&format!("http://{closed}/"))
        .check()
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
}
