//! The delivery state machine end to end through `Notifier`, on tokio's
//! paused clock: no test sleeps for real, every wait is simulated time.

use std::time::Duration;

use clarion::clock::{Clock, TokioClock};
use clarion::config::Config;
use clarion::memory::MemoryStore;
use clarion::store::{
    ClaimRequest, DeliveryFilter, DeliveryRecord, DeliveryStatus, Outcome, PageRequest, Requeued,
    StoreError,
};
use clarion::{EmitOutcome, Notifier, Receipt};
use clarion_testkit::events;
use clarion_testkit::recording::{RecordingChannel, Step};
use uuid::Uuid;

const BASE: &str = r#"
[delivery]
timeout = "30s"
lease = "2m"
poll_interval = "1s"
[delivery.retry]
initial_backoff = "10s"
max_backoff = "1h"
jitter = 0.0
max_attempts = 5
max_age = "1day"

[[routes]]
channels = ["rec"]
"#;

fn notifier_with(config: &str, channel: &RecordingChannel) -> Notifier {
    Notifier::builder()
        .config(Config::from_toml_str(config).unwrap())
        .store(MemoryStore::new())
        .channel("rec", channel.clone())
        .clock(TokioClock::default())
        .build()
        .unwrap()
}

fn notifier(channel: &RecordingChannel) -> Notifier {
    notifier_with(BASE, channel)
}

async fn emit(notifier: &Notifier) -> Uuid {
    match notifier
        .emit(&events::failure("key-1", "alice"))
        .await
        .unwrap()
    {
        EmitOutcome::Enqueued { id, channels } => {
            assert_eq!(channels, ["rec"]);
            id
        }
        other => panic!("{other:?}"),
    }
}

async fn only_delivery(notifier: &Notifier) -> DeliveryRecord {
    let page = notifier
        .store()
        .deliveries(&DeliveryFilter::default(), PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1, "{page:?}");
    page.items[0].clone()
}

/// Waits (in simulated time) until the only delivery satisfies `done`.
async fn wait_for(notifier: &Notifier, done: impl Fn(&DeliveryRecord) -> bool) -> DeliveryRecord {
    for _ in 0..100_000 {
        let record = only_delivery(notifier).await;
        if done(&record) {
            return record;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("condition never met: {:?}", only_delivery(notifier).await);
}

/// Waits until the only delivery has `status`.
async fn settle(notifier: &Notifier, status: DeliveryStatus) -> DeliveryRecord {
    wait_for(notifier, |r| r.status == status).await
}

#[tokio::test(start_paused = true)]
async fn retry_then_success() {
    let channel = RecordingChannel::new()
        .then_n(2, Step::Retryable(None))
        .otherwise(Step::Succeed);
    let notifier = notifier(&channel);
    let running = notifier.start();
    emit(&notifier).await;

    // The very first failure already schedules the next attempt.
    let after_first = wait_for(&notifier, |r| r.attempts == 1).await;
    assert_eq!(after_first.status, DeliveryStatus::Pending);
    assert!(after_first.next_attempt_at.is_some());
    assert!(
        after_first
            .last_error
            .unwrap()
            .contains("scripted retryable")
    );

    let sent = settle(&notifier, DeliveryStatus::Sent).await;
    assert_eq!(sent.attempts, 3);
    assert!(sent.receipt.unwrap().starts_with("recorded"));
    let calls = channel.calls();
    assert_eq!(calls.len(), 3);
    let attempts: Vec<u32> = calls.iter().map(|c| c.delivery.attempt).collect();
    assert_eq!(attempts, [1, 2, 3]);
    // Backoff 10 s then 20 s (no jitter), each picked up by the next poll.
    let gap = |a: usize, b: usize| calls[b].at - calls[a].at;
    assert!(
        (Duration::from_secs(10)..Duration::from_secs(12)).contains(&gap(0, 1)),
        "{:?}",
        gap(0, 1)
    );
    assert!(
        (Duration::from_secs(20)..Duration::from_secs(22)).contains(&gap(1, 2)),
        "{:?}",
        gap(1, 2)
    );
    // The idempotency key is the same on every attempt.
    let keys: Vec<String> = calls.iter().map(|c| c.delivery.idempotency_key()).collect();
    assert!(keys.iter().all(|k| *k == keys[0]));
    running.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn budget_exhausted_goes_dead_with_reason() {
    let channel = RecordingChannel::new().otherwise(Step::Retryable(None));
    let notifier = notifier(&channel);
    let running = notifier.start();
    emit(&notifier).await;
    let dead = settle(&notifier, DeliveryStatus::Dead).await;
    assert_eq!(dead.attempts, 5);
    assert_eq!(channel.call_count(), 5);
    let reason = dead.last_error.unwrap();
    assert!(
        reason.starts_with("gave up after 5 attempts (delivery.retry.max_attempts = 5)"),
        "{reason}"
    );
    assert!(
        reason.contains("last error: scripted retryable failure (attempt 5)"),
        "{reason}"
    );
    running.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn max_age_bounds_retries() {
    let channel = RecordingChannel::new().otherwise(Step::Retryable(None));
    let config = BASE
        .replace("max_attempts = 5", "max_attempts = 100")
        .replace("max_age = \"1day\"", "max_age = \"25s\"");
    let notifier = notifier_with(&config, &channel);
    let running = notifier.start();
    emit(&notifier).await;
    let dead = settle(&notifier, DeliveryStatus::Dead).await;
    // t=0 fails (next at 10 s), t≈10 s fails (next at ≈30 s > 25 s): dead.
    assert_eq!(dead.attempts, 2);
    assert!(
        dead.last_error
            .unwrap()
            .contains("delivery.retry.max_age (25s)")
    );
    running.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn permanent_error_is_dead_after_one_attempt_and_requeue_sends_it() {
    let channel = RecordingChannel::new()
        .then(Step::Permanent)
        .otherwise(Step::Succeed);
    let notifier = notifier(&channel);
    let running = notifier.start();
    emit(&notifier).await;
    let dead = settle(&notifier, DeliveryStatus::Dead).await;
    assert_eq!(dead.attempts, 1);
    assert_eq!(
        dead.last_error.as_deref(),
        Some("scripted permanent failure")
    );
    assert_eq!(channel.call_count(), 1);

    assert_eq!(notifier.requeue(dead.id).await.unwrap(), Requeued::Requeued);
    let sent = settle(&notifier, DeliveryStatus::Sent).await;
    assert_eq!(sent.attempts, 1, "requeue resets attempts");
    assert_eq!(channel.call_count(), 2);
    assert_eq!(
        notifier.requeue(sent.id).await.unwrap(),
        Requeued::NotDead(DeliveryStatus::Sent)
    );
    assert_eq!(
        notifier.requeue(Uuid::now_v7()).await.unwrap(),
        Requeued::NotFound
    );
    running.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn retry_after_from_the_channel_is_honoured() {
    let channel = RecordingChannel::new()
        .then(Step::Retryable(Some(Duration::from_secs(120))))
        .otherwise(Step::Succeed);
    let notifier = notifier(&channel);
    let running = notifier.start();
    emit(&notifier).await;
    settle(&notifier, DeliveryStatus::Sent).await;
    let calls = channel.calls();
    let gap = calls[1].at - calls[0].at;
    assert!(
        (Duration::from_secs(120)..Duration::from_secs(122)).contains(&gap),
        "{gap:?}"
    );
    running.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn gone_makes_the_delivery_dead_with_its_reason_after_one_attempt() {
    let channel = RecordingChannel::new()
        .then(Step::Gone)
        .otherwise(Step::Succeed);
    let notifier = notifier(&channel);
    let running = notifier.start();
    emit(&notifier).await;
    let dead = settle(&notifier, DeliveryStatus::Dead).await;
    assert_eq!(dead.attempts, 1);
    assert_eq!(
        dead.last_error.as_deref(),
        Some("scripted gone: endpoint removed")
    );
    // Nothing retried it: a minute later the channel was still called once.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(channel.call_count(), 1);
    running.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn throttled_retries_after_retry_after_or_the_backoff_without_one() {
    let channel = RecordingChannel::new()
        .then(Step::Throttled(Some(Duration::from_secs(300))))
        .then(Step::Throttled(None))
        .otherwise(Step::Succeed);
    let notifier = notifier(&channel);
    let running = notifier.start();
    emit(&notifier).await;
    let after_first = wait_for(&notifier, |r| r.attempts == 1).await;
    assert_eq!(after_first.status, DeliveryStatus::Pending);
    assert_eq!(
        after_first.last_error.as_deref(),
        Some("scripted throttled (attempt 1)")
    );
    let sent = settle(&notifier, DeliveryStatus::Sent).await;
    assert_eq!(sent.attempts, 3);
    let calls = channel.calls();
    assert_eq!(calls.len(), 3);
    let gap = |a: usize, b: usize| calls[b].at - calls[a].at;
    // Retry-After: 300 s is honoured; without a hint the policy's backoff
    // for attempt 2 applies (10 s × 2, no jitter).
    assert!(
        (Duration::from_secs(300)..Duration::from_secs(302)).contains(&gap(0, 1)),
        "{:?}",
        gap(0, 1)
    );
    assert!(
        (Duration::from_secs(20)..Duration::from_secs(22)).contains(&gap(1, 2)),
        "{:?}",
        gap(1, 2)
    );
    running.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn throttled_counts_against_the_attempt_budget() {
    let channel = RecordingChannel::new().otherwise(Step::Throttled(Some(Duration::from_secs(5))));
    let notifier = notifier(&channel);
    let running = notifier.start();
    emit(&notifier).await;
    let dead = settle(&notifier, DeliveryStatus::Dead).await;
    assert_eq!(dead.attempts, 5);
    let reason = dead.last_error.unwrap();
    assert!(
        reason.contains("last error: scripted throttled (attempt 5)"),
        "{reason}"
    );
    running.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_hanging_channel_times_out_and_a_panicking_one_is_retried() {
    let channel = RecordingChannel::new()
        .then(Step::Hang)
        .then(Step::Panic)
        .otherwise(Step::Succeed);
    let notifier = notifier(&channel);
    let running = notifier.start();
    emit(&notifier).await;
    let sent = settle(&notifier, DeliveryStatus::Sent).await;
    assert_eq!(sent.attempts, 3);
    let calls = channel.calls();
    // The hang was cut off by delivery.timeout (30 s), then retried 10 s later.
    let gap = calls[1].at - calls[0].at;
    assert!(
        (Duration::from_secs(40)..Duration::from_secs(42)).contains(&gap),
        "{gap:?}"
    );
    running.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn the_timeout_and_panic_reasons_are_recorded() {
    let channel = RecordingChannel::new().then(Step::Hang).then(Step::Panic);
    let notifier = notifier(&channel);
    let running = notifier.start();
    emit(&notifier).await;
    let first = wait_for(&notifier, |r| r.attempts == 1).await;
    assert_eq!(
        first.last_error.as_deref(),
        Some("timed out after 30s (delivery.timeout)")
    );
    let second = wait_for(&notifier, |r| r.attempts == 2).await;
    assert_eq!(
        second.last_error.as_deref(),
        Some("the channel panicked: scripted panic")
    );
    running.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn an_expired_lease_is_claimed_again_and_the_stale_token_is_rejected() {
    let channel = RecordingChannel::new();
    let notifier = notifier(&channel);
    emit(&notifier).await;
    // A worker that claims and then "crashes": it never records an outcome.
    let clock = TokioClock::default();
    let crashed = notifier
        .store()
        .claim(ClaimRequest {
            now: clock.now(),
            lease: Duration::from_secs(60),
            limit: 10,
            exclude_channels: vec![],
        })
        .await
        .unwrap();
    assert_eq!(crashed.len(), 1);
    let started = tokio::time::Instant::now();

    let running = notifier.start();
    let sent = settle(&notifier, DeliveryStatus::Sent).await;
    assert_eq!(channel.call_count(), 1);
    assert!(channel.calls()[0].at - started >= Duration::from_secs(60));
    assert_eq!(sent.attempts, 1);

    // The crashed worker wakes up and tries to record under its old token.
    let stale = notifier
        .store()
        .complete(
            crashed[0].delivery.id,
            crashed[0].token,
            Outcome::Sent {
                receipt: Receipt::new("late"),
                at: clock.now(),
            },
        )
        .await;
    assert_eq!(stale, Err(StoreError::StaleLease(sent.id)));
    assert_eq!(only_delivery(&notifier).await.receipt, sent.receipt);
    running.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_in_flight_deliveries() {
    let channel = RecordingChannel::new().otherwise(Step::Delay(Duration::from_secs(5)));
    let notifier = notifier(&channel);
    let running = notifier.start();
    emit(&notifier).await;
    emit(&notifier).await;
    channel.wait_for_calls(2).await;
    let report = running.shutdown(Duration::from_secs(10)).await;
    assert_eq!(
        (report.finished, report.abandoned, report.pending),
        (2, 0, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_reports_what_it_left_pending() {
    let channel = RecordingChannel::new().otherwise(Step::Hang);
    let notifier = notifier(&channel);
    let running = notifier.start();
    emit(&notifier).await;
    channel.wait_for_calls(1).await;
    let report = running.shutdown(Duration::from_secs(1)).await;
    assert_eq!(
        (report.finished, report.abandoned, report.pending),
        (0, 1, 1)
    );
    // The abandoned delivery is still in flight; its lease will expire.
    assert_eq!(
        only_delivery(&notifier).await.status,
        DeliveryStatus::InFlight
    );
}

#[tokio::test(start_paused = true)]
async fn dedup_returns_duplicate_and_delivers_once() {
    let channel = RecordingChannel::new();
    let notifier = notifier(&channel);
    let running = notifier.start();
    let event = events::failure("key-1", "alice").with_dedup_key("rotation:key-1:v7");
    let EmitOutcome::Enqueued { id, .. } = notifier.emit(&event).await.unwrap() else {
        panic!()
    };
    assert_eq!(
        notifier.emit(&event).await.unwrap(),
        EmitOutcome::Duplicate { existing_id: id }
    );
    settle(&notifier, DeliveryStatus::Sent).await;
    assert_eq!(channel.call_count(), 1);
    assert_eq!(notifier.store().unread_count("alice").await.unwrap(), 1);
    running.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn an_unrouted_event_is_kept_for_the_inbox() {
    let channel = RecordingChannel::new();
    let config = BASE.replace(
        "channels = [\"rec\"]",
        "kinds = [\"rotation_failure\"]\nchannels = [\"rec\"]",
    );
    let notifier = notifier_with(&config, &channel);
    let outcome = notifier
        .emit(&events::success("key-2", "bob"))
        .await
        .unwrap();
    let EmitOutcome::Unrouted { id } = outcome else {
        panic!("{outcome:?}")
    };
    let inbox = notifier
        .store()
        .notifications("bob", PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(inbox.items.len(), 1);
    assert_eq!(inbox.items[0].id, id);
    assert!(notifier.store().counts().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_invalid_event_is_rejected_with_its_field_and_nothing_is_stored() {
    let channel = RecordingChannel::new();
    let notifier = notifier(&channel);
    let mut event = events::failure("", "alice");
    let err = notifier.emit(&event).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid event: subject.id: must not be empty"
    );
    event = events::failure("key-1", &"x".repeat(300));
    let err = notifier.emit(&event).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid event: owner: is 300 characters long; at most 255"
    );
    assert!(notifier.store().counts().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn per_channel_and_global_concurrency_are_bounded() {
    let channel = RecordingChannel::new().otherwise(Step::Delay(Duration::from_secs(1)));
    let config = BASE.replace(
        "[delivery]\n",
        "[delivery]\nconcurrency = 8\nper_channel_concurrency = 3\n",
    );
    let notifier = notifier_with(&config, &channel);
    let running = notifier.start();
    for _ in 0..20 {
        emit(&notifier).await;
    }
    channel.wait_for_calls(20).await;
    let report = running.shutdown(Duration::from_secs(10)).await;
    assert_eq!(report.pending, 0);
    assert_eq!(channel.max_in_flight(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_delivery_for_a_channel_this_process_lacks_goes_dead_with_a_reason() {
    // Another process (or an older config) enqueued for "gone".
    let store = std::sync::Arc::new(MemoryStore::new());
    let other = Notifier::builder()
        .config(Config::from_toml_str(&BASE.replace("\"rec\"", "\"gone\"")).unwrap())
        .shared_store(store.clone())
        .channel("gone", RecordingChannel::new())
        .clock(TokioClock::default())
        .build()
        .unwrap();
    other
        .emit(&events::failure("key-1", "alice"))
        .await
        .unwrap();
    let channel = RecordingChannel::new();
    let notifier = Notifier::builder()
        .config(Config::from_toml_str(BASE).unwrap())
        .shared_store(store)
        .channel("rec", channel.clone())
        .clock(TokioClock::default())
        .build()
        .unwrap();
    let running = notifier.start();
    let dead = settle(&notifier, DeliveryStatus::Dead).await;
    assert!(
        dead.last_error
            .unwrap()
            .contains("channel \"gone\" is not configured in this process")
    );
    assert_eq!(channel.call_count(), 0);
    running.shutdown(Duration::from_secs(1)).await;
}
