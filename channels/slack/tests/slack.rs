//! The Slack channel against the fake incoming webhook: the payload shape,
//! every answer Slack documents, templates, secrets, and `Retry-After`
//! through the dispatcher on a manual clock.

use std::time::Duration;

use clarion_core::channel::{Channel, DeliveryError};
use clarion_core::clock::Clock;
use clarion_core::config::Config;
use clarion_slack::{SlackChannel, SlackConfig};
use clarion_testkit::channel_suite::{sample_delivery, sample_events};
use clarion_testkit::events;
use clarion_testkit::manual::ManualHarness;
use clarion_testkit::servers::Reply;
use clarion_testkit::servers::slack::start_slack;

const TOKEN: &str = "s1ackT0kenXXXXXXXXXXXXX";

fn channel(url: &str, extra: &str) -> SlackChannel {
    let text = format!("url = \"{url}\"\n{extra}");
    let config: SlackConfig = toml::from_str(&text).unwrap();
    SlackChannel::from_config(config).unwrap()
}

#[tokio::test]
async fn the_default_message_is_block_kit_with_a_text_fallback() {
    let fake = start_slack().await;
    let slack = channel(&fake.url(), "");
    let delivery = sample_delivery(sample_events().remove(1));
    let receipt = slack.deliver(&delivery).await.unwrap();
    assert_eq!(receipt.detail.as_deref(), Some("HTTP 200 OK"));
    let sent = fake.accepted();
    assert_eq!(sent.len(), 1, "the fake accepted the message");
    let message = &sent[0];
    let text = message["text"].as_str().unwrap();
    assert!(text.starts_with("CRITICAL rotation_failure: "), "{text}");
    let blocks = message["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    let header = blocks[0]["text"]["text"].as_str().unwrap();
    assert!(header.contains("CRITICAL · rotation_failure"), "{header}");
    assert_eq!(blocks[1]["type"], "section");
    let fields: Vec<&str> = (blocks[1]["fields"].as_array().unwrap().iter())
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert!(fields[0].starts_with("*Subject*\n"), "{fields:?}");
    assert!(
        fields.iter().any(|f| f.starts_with("*Owner*\n")),
        "{fields:?}"
    );
    assert!(
        fields.iter().any(|f| f.starts_with("*error*\n")),
        "{fields:?}"
    );
    let last = blocks.last().unwrap();
    assert_eq!(last["type"], "context");
    let context = last["elements"][0]["text"].as_str().unwrap();
    assert!(
        context.contains(&delivery.notification.id.to_string()),
        "{context}"
    );
    let request = &fake.seen()[0].request;
    assert_eq!(
        request.headers["idempotency-key"],
        delivery.idempotency_key().as_str()
    );
}

#[tokio::test]
async fn every_kind_passes_the_block_kit_checks() {
    let fake = start_slack().await;
    let slack = channel(&fake.url(), "");
    for event in sample_events() {
        slack.deliver(&sample_delivery(event)).await.unwrap();
    }
    assert_eq!(fake.accepted().len(), sample_events().len());
}

#[tokio::test]
async fn every_documented_answer_is_classified() {
    let fake = start_slack().await;
    let slack = channel(&fake.url(), "");
    fake.script([
        Reply::with_body(400, "invalid_payload"),
        Reply::with_body(400, "no_text"),
        Reply::with_body(403, "action_prohibited"),
        Reply::with_body(404, "channel_not_found"),
        Reply::with_body(410, "channel_is_archived"),
        Reply::Status(
            429,
            vec![("retry-after", "30".into())],
            "rate_limited".into(),
        ),
        Reply::with_body(500, "rollup_error"),
        Reply::with_body(404, "user_not_found"),
    ]);
    let mut errors = Vec::new();
    for _ in 0..8 {
        let delivery = sample_delivery(sample_events().remove(0));
        errors.push(slack.deliver(&delivery).await.unwrap_err());
    }
    let kinds: Vec<&str> = errors
        .iter()
        .map(|e| match e {
            DeliveryError::Permanent { .. } => "permanent",
            DeliveryError::Gone { .. } => "gone",
            DeliveryError::Throttled { .. } => "throttled",
            DeliveryError::Retryable { .. } => "retryable",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "permanent",
            "permanent",
            "permanent",
            "gone",
            "gone",
            "throttled",
            "retryable",
            "permanent"
        ]
    );
    assert_eq!(errors[5].retry_after(), Some(Duration::from_secs(30)));
    assert!(
        errors[3]
            .reason()
            .contains("HTTP 404 Not Found: channel_not_found"),
        "{}",
        errors[3]
    );
    // A URL whose token the workspace revoked: Slack's `404 no_service`.
    let revoked = channel(&fake.url_of("/services/T0/B0/revokedXXXXXXXXXX"), "");
    let err = revoked
        .deliver(&sample_delivery(sample_events().remove(0)))
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Gone { .. }), "{err:?}");
    assert!(err.reason().contains("no_service"), "{err}");
}

#[tokio::test]
async fn templates_replace_the_text_and_the_blocks() {
    let fake = start_slack().await;
    let slack = channel(
        &fake.url(),
        r#"
[templates.rotation_failure]
text = ":boom: {{ notification.subject.id }}: {{ notification.data.error }}"
[templates.rotation_success]
text = "rotated {{ notification.subject.id }}"
blocks = '[{"type": "section", "text": {"type": "mrkdwn", "text": "new {{ notification.data.new_id }} \"q\""}}]'
"#,
    );
    let events = sample_events();
    let failure = slack.message(&sample_delivery(events[1].clone())).unwrap();
    assert!(
        failure["text"].as_str().unwrap().starts_with(":boom: "),
        "{failure}"
    );
    assert!(
        failure.get("blocks").is_none(),
        "a text override alone is the message"
    );
    slack
        .deliver(&sample_delivery(events[0].clone()))
        .await
        .unwrap();
    let success = &fake.accepted()[0];
    assert!(
        success["text"].as_str().unwrap().starts_with("rotated "),
        "{success}"
    );
    let block = success["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(
        block.starts_with("new ") && block.ends_with(" \"q\""),
        "{block}"
    );

    let bad = |extra: &str| {
        let config: SlackConfig =
            toml::from_str(&format!("url = \"{}\"\n{extra}", fake.url())).unwrap();
        SlackChannel::from_config(config).unwrap_err()
    };
    let e = bad("[templates.rotation_failure]\ntext = \"{% if %}\"");
    assert_eq!(e.field.as_deref(), Some("templates.rotation_failure.text"));
    let e = bad("[templates.rotation_failure]\nblocks = '{\"type\": \"header\"}'");
    assert_eq!(
        e.field.as_deref(),
        Some("templates.rotation_failure.blocks")
    );
    assert!(e.message.contains("JSON array"), "{}", e.message);
}

#[tokio::test]
async fn the_url_token_never_shows() {
    let fake = start_slack().await;
    let slack = channel(&fake.url(), "");
    let echo = format!("no such hook {}", fake.url());
    fake.script([
        Reply::with_body(404, echo.clone()),
        Reply::with_body(500, echo),
    ]);
    let debug = format!("{slack:?}");
    assert!(
        !debug.contains(TOKEN) && debug.contains(&fake.url_of("")),
        "{debug}"
    );
    for _ in 0..2 {
        let err = slack
            .deliver(&sample_delivery(sample_events().remove(0)))
            .await
            .unwrap_err();
        assert!(!format!("{err} {err:?}").contains(TOKEN), "{err:?}");
    }
    let receipt = slack
        .deliver(&sample_delivery(sample_events().remove(0)))
        .await
        .unwrap();
    assert!(!format!("{receipt:?}").contains(TOKEN));
    let config = Config::from_toml_str(&format!(
        "[channels.s]\nkind = \"slack\"\nurl = \"{}\"\n",
        fake.url()
    ))
    .unwrap();
    assert!(!format!("{config:?}").contains(TOKEN));
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after_through_the_dispatcher() {
    let fake = start_slack().await;
    fake.script([Reply::Status(
        429,
        vec![("retry-after", "30".into())],
        "rate_limited".into(),
    )]);
    let h = ManualHarness::start(&format!(
        r#"
[delivery]
poll_interval = "10ms"
[delivery.retry]
initial_backoff = "1s"
jitter = 0.0
[channels.ops-slack]
kind = "slack"
url = "{}"
[[routes]]
channels = ["ops-slack"]
"#,
        fake.url()
    ));
    let failed_at = h.clock.now();
    let id = h.emit(&events::failure("key-1", "alice")).await;
    let first = h.wait_retry(id, 1).await;
    assert!(first.last_error.unwrap().contains("429"));
    let due = first.next_attempt_at.unwrap();
    assert_eq!(
        due - failed_at,
        chrono::TimeDelta::seconds(30),
        "Retry-After, not the 1 s backoff"
    );
    h.advance_to(due - chrono::TimeDelta::seconds(1));
    h.wait_claim_rounds(3).await;
    assert_eq!(fake.seen().len(), 1, "retried before Retry-After");
    h.advance_to(due);
    let sent = h.wait_final(id).await;
    assert_eq!(sent.attempts, 2);
    assert_eq!(fake.accepted().len(), 1);
    h.stop().await;
}
