//! The SMTP channel through the dispatcher: a `Notifier` with the memory
//! store and an SMTP channel built from TOML configuration, against real
//! servers on 127.0.0.1 (postfix's smtp-sink, aiosmtpd, a silent socket).
//!
//! Time is a `ManualClock`: tokio's paused clock cannot be used with real
//! sockets (its auto-advance would fire I/O timeouts), and with the manual
//! clock a retry scheduled at +10 s is not claimable until the test moves
//! the clock there. The store is wrapped to count claim rounds, so "nothing
//! more happens" is asserted after the dispatcher has demonstrably looked for
//! due deliveries, never after a fixed sleep. Every wait is a bounded
//! polling loop.

mod support;
use clarion_testkit::counting::CountingStore;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use clarion_core::clock::{Clock, ManualClock};
use clarion_core::config::Config;
use clarion_core::memory::MemoryStore;
use clarion_core::notification::Notification;
use clarion_core::store::{
    DeliveryFilter, DeliveryRecord, DeliveryStatus, OutboxStore, PageRequest,
};
use clarion_core::{Delivery, EmitOutcome, Notifier, RunningNotifier};
use support::*;
use uuid::Uuid;

use clarion_smtp as _;

/// How long any wait for the dispatcher, the store or a server may take.
const WAIT: Duration = Duration::from_secs(15);

const PASSWORD: &str = "correct-horse-battery";
const WRONG: &str = "wrong-horse-staple";

/// The whole configuration file: a fast poll, deterministic backoff (10 s,
/// 20 s, 40 s … without jitter), `delivery.timeout`, and one SMTP channel,
/// `ops-email`, with `channel` as the rest of its table.
fn config_toml(channel: &str, delivery_timeout: &str) -> String {
    format!(
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

[channels.ops-email]
kind = "smtp"
{channel}

[[routes]]
channels = ["ops-email"]
"#
    )
}

fn config(channel: &str, delivery_timeout: &str) -> Config {
    Config::from_toml_str(&config_toml(channel, delivery_timeout)).unwrap()
}

/// A plain-text (`tls = "none"`) channel to `port` with the given SMTP
/// conversation `timeout`.
fn plain(port: u16, timeout: &str) -> String {
    format!(
        r#"host = "127.0.0.1"
port = {port}
tls = "none"
allow_insecure = true
from = "KMS alerts <kms-alerts@example.com>"
to = ["oncall@example.com"]
timeout = "{timeout}"
"#
    )
}

/// A running notifier with the `ops-email` channel, and its controls.
struct Harness {
    notifier: Notifier,
    running: Option<RunningNotifier>,
    store: Arc<CountingStore<MemoryStore>>,
    clock: ManualClock,
}

impl Harness {
    fn start(config: Config) -> Harness {
        let store = Arc::new(CountingStore::new(MemoryStore::new()));
        let clock = ManualClock::default();
        let notifier = Notifier::builder()
            .config(config)
            .shared_store(store.clone())
            .clock(clock.clone())
            .build()
            .unwrap();
        let running = Some(notifier.start());
        Harness {
            notifier,
            running,
            store,
            clock,
        }
    }

    /// Emits a rotation failure; returns its delivery's id and the
    /// `Message-ID` every attempt of it must carry.
    async fn emit(&self) -> (Uuid, String) {
        let event = failure_event();
        match self.notifier.emit(&event).await.unwrap() {
            EmitOutcome::Enqueued { channels, .. } => assert_eq!(channels, ["ops-email"]),
            other => panic!("{other:?}"),
        }
        let page = self
            .store
            .deliveries(&DeliveryFilter::default(), PageRequest::first(10))
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
        let id = page.items[0].id;
        let key = Delivery {
            id,
            channel: "ops-email".into(),
            attempt: 1,
            notification: Notification::new(event, Utc::now()),
        }
        .idempotency_key();
        (id, format!("<{key}@example.com>"))
    }

    async fn record(&self, id: Uuid) -> DeliveryRecord {
        self.store
            .delivery(id)
            .await
            .unwrap()
            .expect("the delivery exists")
    }

    /// Waits (bounded) until the delivery satisfies `done`.
    async fn wait_for(
        &self,
        id: Uuid,
        what: &str,
        done: impl Fn(&DeliveryRecord) -> bool,
    ) -> DeliveryRecord {
        let deadline = Instant::now() + WAIT;
        loop {
            let record = self.record(id).await;
            if done(&record) {
                return record;
            }
            assert!(Instant::now() < deadline, "never {what}: {record:#?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until the delivery is final (sent or dead).
    async fn wait_final(&self, id: Uuid) -> DeliveryRecord {
        self.wait_for(id, "final", |r| r.status.is_final()).await
    }

    /// Waits until `attempts` attempts are recorded and the delivery waits
    /// for a retry.
    async fn wait_retry(&self, id: Uuid, attempts: u32) -> DeliveryRecord {
        let record = self
            .wait_for(id, &format!("pending after {attempts} attempts"), |r| {
                r.attempts >= attempts && r.status != DeliveryStatus::InFlight
            })
            .await;
        assert_eq!(record.status, DeliveryStatus::Pending, "{record:#?}");
        assert_eq!(record.attempts, attempts, "{record:#?}");
        record
    }

    /// Waits until the dispatcher has looked for due deliveries `rounds`
    /// more times.
    async fn wait_claim_rounds(&self, rounds: usize) {
        let target = self.store.claims() + rounds;
        let deadline = Instant::now() + WAIT;
        while self.store.claims() < target {
            assert!(Instant::now() < deadline, "the dispatcher stopped claiming");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Moves the manual clock to `at`.
    fn advance_to(&self, at: DateTime<Utc>) {
        let by = (at - self.clock.now()).to_std().expect("only forward");
        self.clock.advance(by);
    }

    async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown(Duration::from_secs(2)).await;
        }
    }
}

/// Waits (bounded) until `read()` returns at least `n` items.
async fn wait_items<T: std::fmt::Debug>(what: &str, n: usize, read: impl Fn() -> Vec<T>) -> Vec<T> {
    let deadline = Instant::now() + WAIT;
    loop {
        let items = read();
        if items.len() >= n {
            return items;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {} of {n} so far: {items:#?}",
            items.len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The Message-IDs smtp-sink dumped into `dump`, once there are `n`.
async fn sink_ids(dump: &Path, n: usize) -> Vec<String> {
    wait_items("smtp-sink transactions", n, || dumped_message_ids(dump)).await
}

/// The `Message-ID` line of a raw message's header block, as sent.
fn raw_message_id(raw_headers: &str) -> String {
    let ids: Vec<&str> = raw_headers
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| name.eq_ignore_ascii_case("Message-ID"))
        .map(|(_, value)| value.trim())
        .collect();
    assert_eq!(ids.len(), 1, "{raw_headers}");
    ids[0].to_owned()
}

fn secs(s: i64) -> TimeDelta {
    TimeDelta::seconds(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_from_smtp_sink_is_retried_and_sent_with_the_same_message_id_once_it_accepts() {
    let dumps = sink_dump_dir();
    let (refused_dump, accepted_dump) = (dumps.path("refused"), dumps.path("accepted"));
    // smtp-sink takes the whole message, then answers the final "." with 450.
    let refusing = Sink::start(&["-r", ".", "-D", refused_dump.to_str().unwrap()]);
    let port = refusing.port;
    let h = Harness::start(config(&plain(port, "10s"), "5s"));
    let (id, message_id) = h.emit().await;

    // The very first failure schedules a retry, with the server's reply.
    let record = h.wait_retry(id, 1).await;
    assert_eq!(
        record.last_error.as_deref(),
        Some(
            format!(
                "127.0.0.1:{port} refused sending the message body: 450 4.3.0 Error: command failed"
            )
            .as_str()
        ),
        "{record:#?}"
    );
    let next = record.next_attempt_at.unwrap();
    assert_eq!(record.updated_at, h.clock.now());
    assert_eq!(next, record.updated_at + secs(10));
    assert_eq!(
        sink_ids(&refused_dump, 1).await,
        std::slice::from_ref(&message_id)
    );

    // One microsecond short of due: the dispatcher looks and sends nothing.
    h.advance_to(next - TimeDelta::microseconds(1));
    h.wait_claim_rounds(3).await;
    let waiting = h.record(id).await;
    assert_eq!(
        (waiting.status, waiting.attempts),
        (DeliveryStatus::Pending, 1)
    );
    assert_eq!(dumped_message_ids(&refused_dump).len(), 1);

    // The relay recovers (a fresh smtp-sink on the same port, accepting);
    // the retry reaches it once due.
    drop(refusing);
    let accepting = Sink::start_on(&["-D", accepted_dump.to_str().unwrap()], port);
    h.advance_to(next);
    let sent = h.wait_final(id).await;
    assert_eq!(sent.status, DeliveryStatus::Sent, "{sent:#?}");
    assert_eq!(sent.attempts, 2);
    // The record keeps the earlier failure as history beside the receipt.
    assert_eq!(sent.last_error, record.last_error);
    assert_eq!(sent.receipt.as_deref(), Some("250 2.0.0 Ok"));

    // Both attempts carried the same Message-ID, as the sink received them.
    assert_eq!(
        sink_ids(&accepted_dump, 1).await,
        std::slice::from_ref(&message_id)
    );
    assert_eq!(dumped_message_ids(&refused_dump), [message_id]);
    h.stop().await;
    drop(accepting);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_451_once_from_aiosmtpd_is_retried_and_the_same_message_arrives() {
    let server = Aio::start(&["--tempfail", "1"]);
    let h = Harness::start(config(&plain(server.port, "10s"), "5s"));
    let (id, message_id) = h.emit().await;

    let record = h.wait_retry(id, 1).await;
    assert_eq!(
        record.last_error.as_deref(),
        Some(
            format!(
                "127.0.0.1:{} refused sending the message body: 451 4.3.0 Temporary failure, try again later",
                server.port
            )
            .as_str()
        )
    );
    h.advance_to(record.next_attempt_at.unwrap());
    let sent = h.wait_final(id).await;
    assert_eq!(sent.status, DeliveryStatus::Sent, "{sent:#?}");
    assert_eq!(sent.attempts, 2);
    assert!(
        sent.receipt.as_deref().unwrap().starts_with("250 2.0.0 OK"),
        "{sent:#?}"
    );

    let got = wait_items("messages at aiosmtpd", 2, || server.received()).await;
    assert_eq!(got.len(), 2);
    assert!(!got[0].accepted() && got[1].accepted());
    // From the raw messages: one Message-ID, the delivery's idempotency key.
    assert_eq!(raw_message_id(got[0].raw_headers()), message_id);
    assert_eq!(raw_message_id(got[1].raw_headers()), message_id);
    // The same message, not a second alert: subject and both parts match.
    assert_eq!(got[0].header("Subject"), got[1].header("Subject"));
    assert_eq!(got[0].part("text/plain"), got[1].part("text/plain"));
    assert_eq!(got[0].part("text/html"), got[1].part("text/html"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_is_dead_after_one_attempt_with_the_reply() {
    let dumps = sink_dump_dir();
    let dump = dumps.path("dump");
    let sink = Sink::start(&["-f", ".", "-D", dump.to_str().unwrap()]);
    let h = Harness::start(config(&plain(sink.port, "10s"), "5s"));
    let (id, message_id) = h.emit().await;

    let dead = h.wait_final(id).await;
    assert_eq!(dead.status, DeliveryStatus::Dead, "{dead:#?}");
    assert_eq!(dead.attempts, 1);
    assert_eq!(dead.next_attempt_at, None);
    assert_eq!(
        dead.last_error.as_deref(),
        Some(
            format!(
                "127.0.0.1:{} refused sending the message body: 500 5.3.0 Error: command failed",
                sink.port
            )
            .as_str()
        )
    );
    // Dead is final: an hour later the dispatcher still looks and never
    // tries again.
    h.clock.advance(Duration::from_secs(3600));
    h.wait_claim_rounds(3).await;
    assert_eq!(h.record(id).await.status, DeliveryStatus::Dead);
    assert_eq!(sink_ids(&dump, 1).await, [message_id]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_greets_times_out_and_is_retried() {
    let port = silent_server().await;
    // The channel's timeout (300 ms) is shorter than the dispatcher's (5 s).
    let h = Harness::start(config(&plain(port, "300ms"), "5s"));
    let (id, _) = h.emit().await;

    let first = h.wait_retry(id, 1).await;
    assert_eq!(
        first.last_error.as_deref(),
        Some(
            format!(
                "no answer from 127.0.0.1:{port} within 300ms (waiting for the greeting (220) and \
                 EHLO reply); the relay is slow or stuck"
            )
            .as_str()
        )
    );
    assert_eq!(first.next_attempt_at, Some(first.updated_at + secs(10)));

    // Retried when due, and still waiting for a server that will not talk.
    h.advance_to(first.next_attempt_at.unwrap());
    let second = h.wait_retry(id, 2).await;
    assert_eq!(second.last_error, first.last_error);
    assert_eq!(second.next_attempt_at, Some(second.updated_at + secs(20)));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dispatchers_timeout_cuts_a_slower_smtp_timeout_and_retries() {
    let port = silent_server().await;
    // The channel would wait 30 s; the dispatcher's delivery.timeout is 1 s.
    let h = Harness::start(config(&plain(port, "30s"), "1s"));
    let (id, _) = h.emit().await;
    let record = h.wait_retry(id, 1).await;
    assert_eq!(
        record.last_error.as_deref(),
        Some("timed out after 1s (delivery.timeout)")
    );
    assert_eq!(record.next_attempt_at, Some(record.updated_at + secs(10)));
    h.stop().await;
}

/// A STARTTLS + AUTH channel to `server` trusting `pki`'s CA, with the
/// password substituted from `${SMTP_PASSWORD}` as an operator would.
fn secure_config(server: &Aio, pki: &Pki, password: &str) -> Config {
    install_crypto();
    let channel = format!(
        r#"host = "127.0.0.1"
port = {port}
tls = "starttls"
ca_file = {ca:?}
username = "clarion"
password = "${{SMTP_PASSWORD}}"
from = "KMS alerts <kms-alerts@example.com>"
to = ["oncall@example.com"]
timeout = "10s"
"#,
        port = server.port,
        ca = pki.ca.display().to_string(),
    );
    Config::from_toml_str_with_env(&config_toml(&channel, "5s"), |name| {
        (name == "SMTP_PASSWORD").then(|| password.to_owned())
    })
    .unwrap()
}

fn starttls_auth_server(pki: &Pki) -> Aio {
    Aio::start(&[
        "--starttls",
        pki.cert.to_str().unwrap(),
        pki.key.to_str().unwrap(),
        "--auth",
        &format!("clarion:{PASSWORD}"),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_dead_with_an_actionable_reason_and_no_password() {
    let pki = Pki::new(&["127.0.0.1"]);
    let server = starttls_auth_server(&pki);
    let h = Harness::start(secure_config(&server, &pki, WRONG));
    let (id, _) = h.emit().await;

    let dead = h.wait_final(id).await;
    assert_eq!(dead.status, DeliveryStatus::Dead, "{dead:#?}");
    assert_eq!(dead.attempts, 1);
    let error = dead.last_error.clone().unwrap();
    assert!(
        error.starts_with(&format!(
            "authentication failed for user \"clarion\" at 127.0.0.1:{}: 535",
            server.port
        )),
        "{error}"
    );
    assert!(error.contains("check username and password"), "{error}");
    // The password is nowhere in what the store keeps or an admin lists.
    assert!(!format!("{dead:?}").contains(WRONG), "{dead:#?}");
    let dead_letters = h
        .store
        .deliveries(
            &DeliveryFilter {
                status: Some(DeliveryStatus::Dead),
                ..DeliveryFilter::default()
            },
            PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(dead_letters.items.len(), 1);
    assert!(!format!("{dead_letters:?}").contains(WRONG));

    // Permanent: never attempted again, and nothing was sent.
    h.clock.advance(Duration::from_secs(3600));
    h.wait_claim_rounds(3).await;
    assert_eq!(h.record(id).await.attempts, 1);
    assert!(server.received().is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_password_over_starttls_is_sent() {
    let pki = Pki::new(&["127.0.0.1"]);
    let server = starttls_auth_server(&pki);
    let h = Harness::start(secure_config(&server, &pki, PASSWORD));
    let (id, message_id) = h.emit().await;

    let sent = h.wait_final(id).await;
    assert_eq!(sent.status, DeliveryStatus::Sent, "{sent:#?}");
    assert_eq!(sent.attempts, 1);
    let m = server.only();
    assert!(m.tls() && m.accepted());
    assert_eq!(m.auth_user().as_deref(), Some("clarion"));
    assert_eq!(raw_message_id(m.raw_headers()), message_id);
    h.stop().await;
}
