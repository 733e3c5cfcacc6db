//! The webhook channel through the dispatcher: a `Notifier` with the memory
//! store, a webhook channel built from configuration, and a real axum
//! receiver on 127.0.0.1.
//!
//! Time is a `ManualClock`: tokio's paused clock cannot be used with real
//! sockets (its auto-advance would fire I/O timeouts), and with the manual
//! clock a retry scheduled at +2 s is not claimable until the test moves the
//! clock there. The store is wrapped to count claim rounds, so "nothing is
//! sent before the retry is due" is asserted after the dispatcher has
//! demonstrably looked for due deliveries, not after a fixed sleep. Every
//! wait is a bounded polling loop.

mod common;

use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use clarion_core::Delivery;
use clarion_core::clock::Clock;
use clarion_core::notification::Notification;
use clarion_core::store::{DeliveryRecord, DeliveryStatus};
use clarion_testkit::manual::{ManualHarness, WAIT};
use clarion_webhook::{DEFAULT_TOLERANCE, WebhookSecret, verify};
use common::*;
use uuid::Uuid;

/// A running notifier with one webhook channel, `siem`, on a manual clock.
struct Harness(ManualHarness);

impl std::ops::Deref for Harness {
    type Target = ManualHarness;
    fn deref(&self) -> &ManualHarness {
        &self.0
    }
}

/// Settings shared by every test: a fast poll, deterministic backoff
/// (10 s, 20 s, 40 s … without jitter) and the given `delivery.timeout`.
fn config(url: &str, channel_extra: &str, delivery_timeout: &str) -> String {
    let toml = format!(
        r#"
[delivery]
poll_interval = "10ms"
timeout = "{delivery_timeout}"
lease = "1m"

[delivery.retry]
initial_backoff = "10s"
multiplier = 2.0
jitter = 0.0
max_attempts = 10

[channels.siem]
kind = "webhook"
url = "{url}"
secrets = ["{SECRET_A}"]
{channel_extra}

[[routes]]
channels = ["siem"]
"#
    );
    toml
}

impl Harness {
    fn start(config: String) -> Harness {
        Harness(ManualHarness::start(&config))
    }

    /// Emits a rotation failure; returns its delivery's id and idempotency key.
    async fn emit(&self) -> (Uuid, String) {
        let id = self.0.emit(&failure_event()).await;
        let notification = Notification::new(failure_event(), Utc::now());
        let delivery = Delivery {
            id,
            channel: "siem".into(),
            attempt: 1,
            notification,
        };
        (id, delivery.idempotency_key())
    }

    async fn stop(self) {
        self.0.stop().await;
    }
}

async fn wait_requests(receiver: &Receiver, n: usize) -> Vec<Recorded> {
    let deadline = Instant::now() + WAIT;
    loop {
        let requests = receiver.requests();
        if requests.len() >= n {
            return requests;
        }
        assert!(
            Instant::now() < deadline,
            "the receiver saw {} requests, expected {n}",
            requests.len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Every request carries `key` as `webhook-id` and a valid signature.
fn assert_same_key_and_signed(requests: &[Recorded], key: &str) {
    let secret: WebhookSecret = SECRET_A.parse().unwrap();
    for (i, request) in requests.iter().enumerate() {
        assert_eq!(header(request, "webhook-id"), key, "attempt {}", i + 1);
        verify(&secret, &request.headers, &request.body, DEFAULT_TOLERANCE)
            .unwrap_or_else(|e| panic!("attempt {}: {e}", i + 1));
    }
}

fn secs(s: i64) -> TimeDelta {
    TimeDelta::seconds(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_503s_then_200_is_sent_on_attempt_4() {
    let receiver = Receiver::start().await;
    receiver.script((0..3).map(|_| Reply::with_body(503, "busy")));
    let h = Harness::start(config(&receiver.url("/hook"), "", "5s"));
    let (id, key) = h.emit().await;

    for (attempt, backoff) in [(1, 10), (2, 20), (3, 40)] {
        let record = h.wait_retry(id, attempt).await;
        assert_eq!(
            record.last_error.as_deref(),
            Some("HTTP 503 Service Unavailable: busy")
        );
        // Scheduled from the attempt's time (the manual clock's now), exactly.
        let next = record.next_attempt_at.unwrap();
        assert_eq!(next, record.updated_at + secs(backoff), "{record:#?}");
        assert_eq!(record.updated_at, h.clock.now());
        assert_eq!(receiver.requests().len(), attempt as usize);
        h.advance_to(next);
        wait_requests(&receiver, attempt as usize + 1).await;
    }

    let sent = h.wait_final(id).await;
    assert_eq!(sent.status, DeliveryStatus::Sent, "{sent:#?}");
    assert_eq!(sent.attempts, 4);
    assert_eq!(sent.receipt.as_deref(), Some("HTTP 200 OK"));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 4);
    assert_same_key_and_signed(&requests, &key);
    // The body is byte-for-byte the same on every attempt.
    assert!(requests.iter().all(|r| r.body == requests[0].body));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_2_schedules_exactly_2s_later_and_not_before() {
    let receiver = Receiver::start().await;
    receiver.script([Reply::with_header(429, "retry-after", "2")]);
    let h = Harness::start(config(&receiver.url("/hook"), "", "5s"));
    let t0 = h.clock.now();
    let (id, key) = h.emit().await;

    let record = h.wait_retry(id, 1).await;
    assert_eq!(
        record.last_error.as_deref(),
        Some("HTTP 429 Too Many Requests")
    );
    // The hint replaces the 10 s backoff: exactly the attempt's time + 2 s.
    let next = record.next_attempt_at.unwrap();
    assert_eq!(
        record.updated_at, t0,
        "the attempt ran at the manual clock's time"
    );
    assert_eq!(next, t0 + secs(2));

    // One microsecond short of due: the dispatcher looks, and sends nothing.
    h.advance_to(next - TimeDelta::microseconds(1));
    h.wait_claim_rounds(3).await;
    assert_eq!(receiver.requests().len(), 1, "retried before Retry-After");
    assert_eq!(h.record(id).await.status, DeliveryStatus::Pending);

    // Due: the retry goes out and succeeds.
    h.advance_to(next);
    let sent = h.wait_final(id).await;
    assert_eq!(sent.status, DeliveryStatus::Sent, "{sent:#?}");
    assert_eq!(sent.attempts, 2);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_same_key_and_signed(&requests, &key);
    h.stop().await;
}

/// Emits against a receiver answering `reply` once; returns the final record
/// after checking it is dead after one attempt, with one request seen.
async fn dead_after_one_attempt(reply: Reply) -> DeliveryRecord {
    let receiver = Receiver::start().await;
    receiver.script([reply]);
    let h = Harness::start(config(&receiver.url("/hook"), "", "5s"));
    let (id, key) = h.emit().await;
    let dead = h.wait_final(id).await;
    assert_eq!(dead.status, DeliveryStatus::Dead, "{dead:#?}");
    assert_eq!(dead.attempts, 1);
    assert_eq!(dead.next_attempt_at, None);
    // Dead is final: the dispatcher keeps polling and never tries again.
    h.wait_claim_rounds(3).await;
    assert_eq!(receiver.requests().len(), 1);
    assert_same_key_and_signed(&receiver.requests(), &key);
    assert_eq!(h.record(id).await.status, DeliveryStatus::Dead);
    h.stop().await;
    dead
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_request_is_dead_after_one_attempt() {
    let dead = dead_after_one_attempt(Reply::with_body(400, "missing field `type`")).await;
    assert_eq!(
        dead.last_error.as_deref(),
        Some("HTTP 400 Bad Request: missing field `type`")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_is_dead() {
    let dead = dead_after_one_attempt(Reply::with_body(410, "hook deleted")).await;
    let error = dead.last_error.unwrap();
    assert!(
        error.starts_with("endpoint gone: HTTP 410 Gone: hook deleted"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_is_dead_by_default() {
    let dead = dead_after_one_attempt(Reply::with_header(307, "location", "/moved")).await;
    let error = dead.last_error.unwrap();
    assert!(error.starts_with("HTTP 307 Temporary Redirect"), "{error}");
    assert!(error.contains("allow_redirects = true"), "{error}");
}

/// A receiver that never answers the first attempt; `channel_extra` and
/// `delivery_timeout` pick whose timeout fires. Returns the first error.
async fn hang_then_answer(channel_extra: &str, delivery_timeout: &str) -> String {
    let receiver = Receiver::start().await;
    receiver.script([Reply::Hang]);
    let h = Harness::start(config(
        &receiver.url("/hook"),
        channel_extra,
        delivery_timeout,
    ));
    let (id, key) = h.emit().await;

    let record = h.wait_retry(id, 1).await;
    let error = record.last_error.clone().unwrap();
    assert_eq!(record.next_attempt_at, Some(record.updated_at + secs(10)));
    assert_eq!(receiver.requests().len(), 1);

    h.advance_to(record.next_attempt_at.unwrap());
    let sent = h.wait_final(id).await;
    assert_eq!(sent.status, DeliveryStatus::Sent, "{sent:#?}");
    assert_eq!(sent.attempts, 2);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    assert_same_key_and_signed(&requests, &key);
    h.stop().await;
    error
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_times_out_and_is_retried() {
    // The channel's own timeout (1 s) is shorter than the dispatcher's (5 s).
    let error = hang_then_answer("timeout = \"1s\"", "5s").await;
    assert!(error.starts_with("timed out after 1s"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dispatchers_timeout_cuts_a_slower_channel_and_retries() {
    // The channel would wait 10 s; the dispatcher's delivery.timeout is 1 s.
    let error = hang_then_answer("timeout = \"10s\"", "1s").await;
    assert_eq!(error, "timed out after 1s (delivery.timeout)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_retried() {
    let closed = closed_port().await;
    let h = Harness::start(config(&format!("http://{closed}/hook"), "", "5s"));
    let (id, key) = h.emit().await;

    let record = h.wait_retry(id, 1).await;
    let error = record.last_error.clone().unwrap();
    assert!(
        error.starts_with(&format!("cannot connect to http://{closed}")),
        "{error}"
    );
    assert_eq!(record.next_attempt_at, Some(record.updated_at + secs(10)));

    // The receiver comes up on that port; the retry reaches it.
    let receiver = Receiver::start_on(closed).await;
    h.advance_to(record.next_attempt_at.unwrap());
    let sent = h.wait_final(id).await;
    assert_eq!(sent.status, DeliveryStatus::Sent, "{sent:#?}");
    assert_eq!(sent.attempts, 2);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_same_key_and_signed(&requests, &key);
    h.stop().await;
}
