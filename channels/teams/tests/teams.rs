//! The Teams channel against the fake Workflows webhook: the card, every
//! status class, secrets, and `Retry-After` through the dispatcher on a
//! manual clock.

use std::time::Duration;

use clarion_core::channel::{Channel, DeliveryError};
use clarion_core::clock::Clock;
use clarion_teams::{TeamsChannel, TeamsConfig};
use clarion_testkit::channel_suite::{sample_delivery, sample_events};
use clarion_testkit::events;
use clarion_testkit::manual::ManualHarness;
use clarion_testkit::servers::Reply;
use clarion_testkit::servers::teams::start_teams;

const SIG: &str = "te4msS1gnatureXXXXXXXX";

fn channel(url: &str) -> TeamsChannel {
    let config: TeamsConfig = toml::from_str(&format!("url = \"{url}\"")).unwrap();
    TeamsChannel::from_config(config).unwrap()
}

#[tokio::test]
async fn the_card_is_an_adaptive_card_1_4_in_a_message_envelope() {
    let fake = start_teams().await;
    let teams = channel(&fake.url());
    let delivery = sample_delivery(sample_events().remove(1));
    let receipt = teams.deliver(&delivery).await.unwrap();
    assert_eq!(receipt.detail.as_deref(), Some("HTTP 202 Accepted"));
    let sent = fake.accepted();
    assert_eq!(sent.len(), 1, "the fake accepted the card");
    let message = &sent[0];
    assert_eq!(message["type"], "message");
    let attachments = message["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1);
    assert_eq!(
        attachments[0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &attachments[0]["content"];
    assert_eq!(
        (card["type"].as_str(), card["version"].as_str()),
        (Some("AdaptiveCard"), Some("1.4"))
    );
    let title = &card["body"][0]["items"][0];
    assert_eq!(title["text"], "CRITICAL · rotation_failure");
    assert_eq!(title["color"], "Attention");
    assert_eq!(card["body"][0]["style"], "attention");
    let facts = card["body"][2]["facts"].as_array().unwrap();
    let titles: Vec<&str> = facts.iter().map(|f| f["title"].as_str().unwrap()).collect();
    for expected in ["Subject", "Owner", "error", "Occurred", "Notification"] {
        assert!(titles.contains(&expected), "{titles:?}");
    }
    // Every kind and severity colour passes the card checks.
    for event in sample_events() {
        teams.deliver(&sample_delivery(event)).await.unwrap();
    }
    let colours: Vec<String> = (fake.accepted().iter())
        .map(|m| m["attachments"][0]["content"]["body"][0]["items"][0]["color"].to_string())
        .collect();
    assert!(colours.iter().any(|c| c.contains("Accent")), "{colours:?}");
}

#[tokio::test]
async fn every_status_class_is_classified() {
    let fake = start_teams().await;
    let teams = channel(&fake.url());
    fake.script([
        Reply::status(200),
        Reply::with_body(400, r#"{"error":{"code":"TriggerInputSchemaMismatch"}}"#),
        Reply::with_body(410, ""),
        Reply::Status(429, vec![("retry-after", "12".into())], String::new()),
        Reply::Status(503, vec![("retry-after", "7".into())], String::new()),
        Reply::with_body(502, "bad gateway"),
    ]);
    let delivery = || sample_delivery(sample_events().remove(0));
    assert_eq!(
        teams.deliver(&delivery()).await.unwrap().detail.as_deref(),
        Some("HTTP 200 OK")
    );
    let mut errors = Vec::new();
    for _ in 0..5 {
        errors.push(teams.deliver(&delivery()).await.unwrap_err());
    }
    assert!(
        matches!(errors[0], DeliveryError::Permanent { .. }),
        "{:?}",
        errors[0]
    );
    assert!(
        matches!(errors[1], DeliveryError::Gone { .. }),
        "{:?}",
        errors[1]
    );
    assert!(
        matches!(errors[2], DeliveryError::Throttled { .. }),
        "{:?}",
        errors[2]
    );
    assert_eq!(errors[2].retry_after(), Some(Duration::from_secs(12)));
    assert!(
        matches!(errors[3], DeliveryError::Throttled { .. }),
        "{:?}",
        errors[3]
    );
    assert!(
        matches!(errors[4], DeliveryError::Retryable { .. }),
        "{:?}",
        errors[4]
    );
    // A flow that was deleted: permanent.
    let gone = channel(&fake.url_of("/workflows/deleted/triggers/manual/paths/invoke"));
    assert!(!gone.deliver(&delivery()).await.unwrap_err().is_retryable());
}

#[tokio::test]
async fn the_signature_never_shows() {
    let fake = start_teams().await;
    let teams = channel(&fake.url());
    fake.script([Reply::with_body(
        400,
        format!("bad request to {}", fake.url()),
    )]);
    assert!(!format!("{teams:?}").contains(SIG));
    let err = teams
        .deliver(&sample_delivery(sample_events().remove(0)))
        .await
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains(SIG), "{err:?}");
    let receipt = teams
        .deliver(&sample_delivery(sample_events().remove(0)))
        .await
        .unwrap();
    assert!(!format!("{receipt:?}").contains(SIG));
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after_through_the_dispatcher() {
    let fake = start_teams().await;
    fake.script([Reply::Status(
        429,
        vec![("retry-after", "45".into())],
        String::new(),
    )]);
    let h = ManualHarness::start(&format!(
        "[delivery]\npoll_interval = \"10ms\"\n[delivery.retry]\ninitial_backoff = \"1s\"\njitter = 0.0\n\
         [channels.ops-teams]\nkind = \"teams\"\nurl = \"{}\"\n[[routes]]\nchannels = [\"ops-teams\"]\n",
        fake.url()
    ));
    let failed_at = h.clock.now();
    let id = h.emit(&events::failure("key-1", "alice")).await;
    let due = h.wait_retry(id, 1).await.next_attempt_at.unwrap();
    assert_eq!(due - failed_at, chrono::TimeDelta::seconds(45));
    h.advance_to(due - chrono::TimeDelta::seconds(1));
    h.wait_claim_rounds(3).await;
    assert_eq!(fake.seen().len(), 1, "retried before Retry-After");
    h.advance_to(due);
    assert_eq!(h.wait_final(id).await.attempts, 2);
    assert_eq!(fake.accepted().len(), 1);
    h.stop().await;
}
