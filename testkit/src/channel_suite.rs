//! The channel conformance suite: what every channel must do, checked
//! against the channel's real peer (an HTTP receiver, an SMTP server, a log
//! subscriber …).
//!
//! A channel crate describes its channel once, as a [`ChannelUnderTest`]: the
//! registered `kind`, a factory (the TOML settings of a `[channels.<name>]`
//! table pointed at the peer, built through the registry exactly as a user's
//! file is, or a closure), the [`Peer`] harness, and the secret strings in the
//! configuration. [`channel_conformance_tests!`](crate::channel_conformance_tests)
//! then expands to one `#[test]` per check:
//!
//! ```ignore
//! // tests/conformance.rs of a channel crate
//! async fn subject() -> ChannelUnderTest {
//!     let peer = MyPeer::start().await;                  // a real server on 127.0.0.1
//!     let settings = format!("url = \"{}\"\ntoken = \"t0ken-9f8e7d\"", peer.url());
//!     ChannelUnderTest::from_settings("my-kind", settings, peer).secret("t0ken-9f8e7d")
//! }
//! clarion_testkit::channel_conformance_tests!(subject());
//! ```
//!
//! Complete examples: `channels/webhook/tests/conformance.rs` (an axum
//! receiver that can refuse and hang) and `channels/log/tests/conformance.rs`
//! (a `tracing` subscriber that can only accept).
//!
//! Each generated test runs on a fresh multi-threaded tokio runtime
//! ([`runtime`]) with a fresh subject, and is bounded: every `deliver` by
//! [`ChannelUnderTest::deliver_limit`], every wait for the peer by the same
//! limit, and the whole check by [`CHECK_LIMIT`]. A single check can also be
//! called directly: `channel_suite::secrets_never_leak(&subject).await`.
//!
//! # The peer harness
//!
//! A [`Peer`] is told how to answer the next message ([`PeerBehaviour`]) and
//! reports what it received, each message with the idempotency key it
//! carried (the `webhook-id` header, the `Message-ID`, a log field). A peer
//! that cannot fail in some way (a log subscriber cannot refuse an event)
//! says so with [`Peer::supports`], and the checks that need that failure
//! report [`Verdict::Skipped`] with the reason instead of passing silently.
//!
//! # What the suite checks
//!
//! - [`delivers_every_kind_with_a_receipt`]: every built-in kind and a custom
//!   kind is delivered with a receipt whose detail is not empty, the peer
//!   gets exactly one message per delivery, and through a [`Notifier`] (the
//!   dispatcher, the in-memory store) the delivery is recorded as sent with
//!   that receipt.
//! - [`retryable_failures_are_classified`] and
//!   [`permanent_failures_are_classified`]: a peer refusing temporarily (HTTP
//!   503, SMTP 451) gives [`DeliveryError::Retryable`], refusing for good
//!   (HTTP 400, SMTP 550) gives [`DeliveryError::Permanent`], each with a
//!   reason, and the channel delivers the next message normally.
//! - [`cancellation_leaves_the_channel_usable`]: `deliver` futures dropped
//!   after their first poll, and deliveries to a peer that never answers cut
//!   off by `tokio::time::timeout` (the dispatcher does exactly this), leave
//!   the channel able to deliver the next message (no leaked pool slot, lock
//!   or connection).
//! - [`idempotency_key_is_stable_across_attempts`]: attempts 1 and 2 of one
//!   delivery — also after a retryable failure, and through a freshly built
//!   channel, as after a restart — reach the peer with the same key, which
//!   contains [`Delivery::idempotency_key`]; another delivery has another key.
//! - [`concurrent_deliveries_all_arrive`]: one channel value delivers
//!   [`CONCURRENT_DELIVERIES`] deliveries at once (the dispatcher shares it
//!   across tasks), each exactly once.
//! - [`config_schema_is_valid_and_example_builds`]: the plugin is registered
//!   under its kind with a description; its config schema is valid JSON
//!   Schema 2020-12 and rejects unknown fields; its `example` validates
//!   against the schema and builds through [`Config::from_toml_str`] and
//!   [`Config::build_channels`]; an unknown setting fails the build with an
//!   error naming it; the subject's own settings validate too.
//! - [`secrets_never_leak`]: no declared secret appears in the `Debug`
//!   output (`{:?}` and `{:#?}`) of the built channel or of its
//!   configuration, nor in any [`DeliveryError`] reason or [`Receipt`], in
//!   every way the peer can make the channel fail. (Every other check scans
//!   its errors and receipts for the secrets as well.)
//!
//! Secrets are searched for as plain substrings: list every form a secret
//! could leak in (a `whsec_…` secret *and* its base64 part, a token embedded
//! in a URL …), each at least [`MIN_SECRET_LEN`] characters long.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use clarion_core::channel::{Channel, Delivery, DeliveryError, Receipt};
use clarion_core::config::{Config, RouteConfig};
use clarion_core::event::{
    ApproachingDeadline, EventKind, KeyEvent, ObjectType, RotationFailure, RotationSuccess,
    Severity, Subject,
};
use clarion_core::memory::MemoryStore;
use clarion_core::notification::Notification;
use clarion_core::notifier::{EmitOutcome, Notifier};
use clarion_core::registry;
use clarion_core::store::{DeliveryFilter, DeliveryRecord, DeliveryStatus, PageRequest};
use uuid::Uuid;

/// How a [`Peer`] answers the next message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerBehaviour {
    /// Accepts it (HTTP 2xx, SMTP 250, a log event written). What a peer does
    /// unless told otherwise.
    Accept,
    /// Refuses it in a way worth retrying (HTTP 503, SMTP 451).
    FailRetryable,
    /// Refuses it for good (HTTP 400, SMTP 550).
    FailPermanent,
    /// Never answers (accepts the connection, then stays silent).
    Hang,
}

/// One message as the peer received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The idempotency key the message carried, as the peer saw it: the
    /// `webhook-id` header, the `Message-ID` header (`<clarion_…@host>`), the
    /// log event's `idempotency_key` field. It must contain
    /// [`Delivery::idempotency_key`]; `None` when the message had none.
    pub idempotency_key: Option<String>,
    /// A short description for failure messages (`POST /hook, 812 bytes`).
    pub summary: String,
}

/// The channel's real peer, driven by the suite.
///
/// ```
/// use std::sync::Mutex;
/// use async_trait::async_trait;
/// use clarion_testkit::channel_suite::{Peer, PeerBehaviour, ReceivedMessage};
///
/// /// A peer that can only accept (like a log subscriber).
/// #[derive(Default)]
/// struct Capture(Mutex<Vec<ReceivedMessage>>);
///
/// #[async_trait]
/// impl Peer for Capture {
///     fn supports(&self, behaviour: PeerBehaviour) -> bool {
///         behaviour == PeerBehaviour::Accept
///     }
///     async fn expect(&self, _: PeerBehaviour) {}
///     async fn received(&self) -> Vec<ReceivedMessage> {
///         self.0.lock().unwrap().clone()
///     }
/// }
/// ```
#[async_trait]
pub trait Peer: Send + Sync {
    /// Whether the peer can answer with `behaviour`. Checks that need a
    /// behaviour the peer lacks are skipped, with the reason reported.
    fn supports(&self, behaviour: PeerBehaviour) -> bool;

    /// Answers the next message with `behaviour`; the messages after it are
    /// accepted again. Only called with behaviours the peer supports.
    async fn expect(&self, behaviour: PeerBehaviour);

    /// Every message received so far, oldest first, including the ones it
    /// refused when it saw them (a peer that refuses before the message is
    /// transferred, such as SMTP at `RCPT`, need not list those).
    async fn received(&self) -> Vec<ReceivedMessage>;
}

/// Builds a channel in code (see [`ChannelUnderTest::from_fn`]).
pub type ChannelFactory = Arc<dyn Fn() -> Result<Arc<dyn Channel>, String> + Send + Sync>;

enum Factory {
    Settings(String),
    Code(ChannelFactory),
}

/// The channel name the suite configures and puts in its deliveries.
pub const CHANNEL_NAME: &str = "conformance";

/// Secrets shorter than this are refused: searching for them would find
/// them by chance.
pub const MIN_SECRET_LEN: usize = 6;

/// How many deliveries [`concurrent_deliveries_all_arrive`] runs at once.
pub const CONCURRENT_DELIVERIES: usize = 16;

/// The longest a whole check may take in the generated tests.
pub const CHECK_LIMIT: Duration = Duration::from_secs(120);

/// A channel, its peer and its secrets: what the checks run against.
pub struct ChannelUnderTest {
    kind: String,
    factory: Factory,
    peer: Arc<dyn Peer>,
    secrets: Vec<String>,
    deliver_limit: Duration,
    cancel_after: Duration,
}

impl fmt::Debug for ChannelUnderTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelUnderTest")
            .field("kind", &self.kind)
            .field("secrets", &self.secrets.len())
            .field("deliver_limit", &self.deliver_limit)
            .field("cancel_after", &self.cancel_after)
            .finish_non_exhaustive()
    }
}

impl ChannelUnderTest {
    /// A channel of the registered `kind` built from `settings`: the TOML
    /// body of its `[channels.<name>]` table without `kind` (sub-tables and
    /// `${VAR}` allowed), pointed at `peer`. Every build goes through
    /// [`Config::from_toml_str`] and [`Config::build_channels`], as a user's
    /// file does.
    pub fn from_settings(
        kind: impl Into<String>,
        settings: impl Into<String>,
        peer: impl Peer + 'static,
    ) -> Self {
        Self::with_factory(kind.into(), Factory::Settings(settings.into()), peer)
    }

    /// A channel of the registered `kind` built by `factory` (for channels
    /// that need something a configuration file cannot give). Prefer
    /// [`ChannelUnderTest::from_settings`]: it also tests the user's path.
    pub fn from_fn<F>(kind: impl Into<String>, peer: impl Peer + 'static, factory: F) -> Self
    where
        F: Fn() -> Result<Arc<dyn Channel>, String> + Send + Sync + 'static,
    {
        Self::with_factory(kind.into(), Factory::Code(Arc::new(factory)), peer)
    }

    fn with_factory(kind: String, factory: Factory, peer: impl Peer + 'static) -> Self {
        ChannelUnderTest {
            kind,
            factory,
            peer: Arc::new(peer),
            secrets: Vec::new(),
            deliver_limit: Duration::from_secs(10),
            cancel_after: Duration::from_millis(300),
        }
    }

    /// Declares a secret that the configuration holds (a password, a signing
    /// key, a token in a URL, a header value). At least [`MIN_SECRET_LEN`]
    /// characters.
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        let secret = secret.into();
        assert!(
            secret.chars().count() >= MIN_SECRET_LEN,
            "a declared secret must have at least {MIN_SECRET_LEN} characters; a shorter one \
             would be found by chance"
        );
        self.secrets.push(secret);
        self
    }

    /// Declares several secrets (see [`ChannelUnderTest::secret`]).
    pub fn secrets<I, S>(self, secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        secrets.into_iter().fold(self, Self::secret)
    }

    /// The longest one `deliver` (and one wait for the peer) may take; a
    /// channel that takes longer fails the check (default 10 s).
    pub fn deliver_limit(mut self, limit: Duration) -> Self {
        self.deliver_limit = limit;
        self
    }

    /// How long a delivery to a peer that never answers runs before the
    /// suite cancels it (default 300 ms; keep it below the channel's own
    /// timeout, so the cancellation, not the channel, ends it).
    pub fn cancel_after(mut self, after: Duration) -> Self {
        self.cancel_after = after;
        self
    }

    /// The registered kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The peer harness.
    pub fn peer(&self) -> &dyn Peer {
        self.peer.as_ref()
    }

    /// The declared secrets.
    pub fn declared_secrets(&self) -> &[String] {
        &self.secrets
    }

    /// The configuration the settings factory builds from (`None` for a
    /// code factory).
    pub fn config(&self) -> Option<Config> {
        match &self.factory {
            Factory::Settings(settings) => Some(
                config_with_channel(&self.kind, CHANNEL_NAME, settings)
                    .unwrap_or_else(|e| panic!("the subject's settings: {e}")),
            ),
            Factory::Code(_) => None,
        }
    }

    /// Builds a fresh channel; panics with the reason if it cannot.
    pub fn build(&self) -> Arc<dyn Channel> {
        let built = match &self.factory {
            Factory::Settings(_) => {
                let config = self.config().expect("a settings factory has a config");
                config
                    .build_channels()
                    .map_err(|e| e.to_string())
                    .and_then(|mut channels| {
                        channels
                            .remove(CHANNEL_NAME)
                            .ok_or_else(|| "build_channels returned no channel".to_owned())
                    })
            }
            Factory::Code(factory) => factory(),
        };
        match built {
            Ok(channel) => channel,
            Err(e) => panic!(
                "cannot build the {} channel under test: {}",
                self.kind,
                self.redact(&e)
            ),
        }
    }

    /// `text` with every declared secret replaced by `<secret #i>`.
    fn redact(&self, text: &str) -> String {
        self.secrets
            .iter()
            .enumerate()
            .fold(text.to_owned(), |t, (i, s)| {
                t.replace(s, &format!("<secret #{i}>"))
            })
    }

    /// Panics if `text` contains a declared secret.
    fn assert_no_secret(&self, text: &str, whence: &str) {
        for (i, secret) in self.secrets.iter().enumerate() {
            assert!(
                !text.contains(secret.as_str()),
                "{whence} contains declared secret #{i}: {}",
                self.redact(text)
            );
        }
    }

    fn assert_clean_result(&self, result: &Result<Receipt, DeliveryError>, whence: &str) {
        match result {
            Ok(receipt) => {
                self.assert_no_secret(&format!("{receipt:?}"), &format!("{whence}: the receipt"))
            }
            Err(e) => {
                self.assert_no_secret(&e.to_string(), &format!("{whence}: the error"));
                self.assert_no_secret(&format!("{e:?}"), &format!("{whence}: the error's Debug"));
            }
        }
    }

    /// `deliver` under [`ChannelUnderTest::deliver_limit`]; scans the result
    /// for secrets.
    async fn deliver(
        &self,
        channel: &dyn Channel,
        delivery: &Delivery,
        whence: &str,
    ) -> Result<Receipt, DeliveryError> {
        let result = tokio::time::timeout(self.deliver_limit, channel.deliver(delivery))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{whence}: deliver did not return within {:?} (deliver_limit); a channel \
                     must bound its own waits",
                    self.deliver_limit
                )
            });
        self.assert_clean_result(&result, whence);
        result
    }

    /// Delivers and insists on success with a non-empty receipt.
    async fn deliver_ok(
        &self,
        channel: &dyn Channel,
        delivery: &Delivery,
        whence: &str,
    ) -> Receipt {
        match self.deliver(channel, delivery, whence).await {
            Ok(receipt) => {
                let detail = receipt.detail.as_deref().unwrap_or_default();
                assert!(
                    !detail.trim().is_empty(),
                    "{whence}: a successful delivery needs a receipt with a detail (an HTTP \
                     status, a queue id …); got {receipt:?}"
                );
                receipt
            }
            Err(e) => panic!(
                "{whence}: expected success, got {}",
                self.redact(&e.to_string())
            ),
        }
    }

    /// The messages the peer received for `delivery`, waiting (bounded) until
    /// there are at least `at_least`.
    async fn received_for(&self, delivery: &Delivery, at_least: usize) -> Vec<ReceivedMessage> {
        let key = delivery.idempotency_key();
        let deadline = Instant::now() + self.deliver_limit;
        loop {
            let got: Vec<ReceivedMessage> = self
                .peer
                .received()
                .await
                .into_iter()
                .filter(|m| {
                    m.idempotency_key
                        .as_deref()
                        .is_some_and(|k| k.contains(&key))
                })
                .collect();
            if got.len() >= at_least || Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Insists that the peer received exactly `n` messages for `delivery`.
    async fn assert_received(
        &self,
        delivery: &Delivery,
        n: usize,
        whence: &str,
    ) -> Vec<ReceivedMessage> {
        let got = self.received_for(delivery, n).await;
        if got.len() != n {
            let all = self.peer.received().await;
            let recent: Vec<String> = all
                .iter()
                .rev()
                .take(5)
                .map(|m| format!("{:?} {}", m.idempotency_key, m.summary))
                .collect();
            panic!(
                "{whence}: the peer received {} message(s) carrying the idempotency key {} \
                 (expected {n}); its last messages, newest first: {recent:#?}",
                got.len(),
                delivery.idempotency_key()
            );
        }
        got
    }

    fn require(&self, behaviour: PeerBehaviour) -> Result<(), Verdict> {
        if self.peer.supports(behaviour) {
            Ok(())
        } else {
            Err(Verdict::Skipped(format!(
                "the {} channel's peer cannot answer with {behaviour:?}",
                self.kind
            )))
        }
    }
}

/// The result of one check. Failures panic with the reason, like assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Verdict {
    /// Everything checked held.
    Passed,
    /// The check could not run for this channel (its peer cannot fail that
    /// way, it holds no secrets …); the reason says why.
    Skipped(String),
}

impl Verdict {
    /// Prints a skipped check's reason to stderr (visible with
    /// `--nocapture`), so a skip is never mistaken for a pass in the logs.
    pub fn report(self, check: &str) {
        if let Verdict::Skipped(reason) = self {
            eprintln!("channel conformance: {check}: skipped: {reason}");
        }
    }
}

/// The runtime each generated test runs on: multi-threaded, 2 workers, I/O
/// and time enabled.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the channel conformance suite")
}

/// Runs one check under [`CHECK_LIMIT`] and reports its verdict (what the
/// generated tests call).
pub async fn bounded(check: &str, case: impl Future<Output = Verdict>) {
    match tokio::time::timeout(CHECK_LIMIT, case).await {
        Ok(verdict) => verdict.report(check),
        Err(_) => panic!("{check}: did not finish within {CHECK_LIMIT:?}"),
    }
}

/// Expands to one `#[test]` per check of the channel conformance suite
/// ([`channel_suite`](crate::channel_suite)), each on a fresh runtime with a
/// fresh subject.
///
/// The argument is an expression, evaluated once per test inside that test's
/// runtime, that yields a future of the
/// [`ChannelUnderTest`](crate::channel_suite::ChannelUnderTest): an `async`
/// block or a call to an `async fn`, which typically starts the peer.
///
/// ```ignore
/// clarion_testkit::channel_conformance_tests!(webhook_subject());
/// ```
#[macro_export]
macro_rules! channel_conformance_tests {
    (@cases ($subject:expr) $($case:ident)*) => {
        $(
            #[test]
            fn $case() {
                $crate::channel_suite::runtime().block_on(async {
                    let subject: $crate::channel_suite::ChannelUnderTest = $subject.await;
                    $crate::channel_suite::bounded(
                        ::core::stringify!($case),
                        $crate::channel_suite::$case(&subject),
                    )
                    .await;
                });
            }
        )*
    };
    ($subject:expr $(,)?) => {
        $crate::channel_conformance_tests!(@cases ($subject)
            delivers_every_kind_with_a_receipt
            retryable_failures_are_classified
            permanent_failures_are_classified
            cancellation_leaves_the_channel_usable
            idempotency_key_is_stable_across_attempts
            concurrent_deliveries_all_arrive
            config_schema_is_valid_and_example_builds
            secrets_never_leak
        );
    };
}

// ------------------------------------------------------------------ samples

/// One event of each built-in kind and one of a custom kind, with a subject
/// name, an owner and labels, so templates have something to render.
pub fn sample_events() -> Vec<KeyEvent> {
    let now = Utc::now();
    let subject = |id: &str, t| Subject::new(id, t).named(format!("{id}-name"));
    vec![
        KeyEvent::rotation_success(
            subject("key-success", ObjectType::KeyPair),
            RotationSuccess {
                old_id: "key-success-v1".into(),
                new_id: "key-success-v2".into(),
                next_rotation: Some(now + chrono::TimeDelta::days(90)),
            },
        ),
        KeyEvent::rotation_failure(
            subject("key-failure", ObjectType::SymmetricKey),
            RotationFailure {
                error: "HSM unreachable".into(),
                attempt: 2,
                next_attempt: Some(now + chrono::TimeDelta::minutes(10)),
            },
        ),
        KeyEvent::approaching_deadline(
            subject("cert-deadline", ObjectType::Certificate),
            ApproachingDeadline {
                deadline: now + chrono::TimeDelta::days(6),
                days_remaining: 6,
                threshold_days: 7,
                final_threshold: false,
            },
        ),
        KeyEvent::custom(
            EventKind::custom("key_compromised").expect("a valid custom kind"),
            subject("key-custom", ObjectType::Secret),
            Severity::Critical,
            serde_json::json!({ "reported_by": "conformance suite" }),
        ),
    ]
    .into_iter()
    .map(|e| e.with_owner("conformance-owner").with_label("env", "test"))
    .collect()
}

/// A fresh delivery (attempt 1, a new id) of `event` on [`CHANNEL_NAME`].
pub fn sample_delivery(event: KeyEvent) -> Delivery {
    Delivery {
        id: Uuid::now_v7(),
        channel: CHANNEL_NAME.into(),
        attempt: 1,
        notification: Notification::new(event, Utc::now()),
    }
}

fn failure_delivery() -> Delivery {
    let event = sample_events()
        .into_iter()
        .find(|e| e.kind == EventKind::RotationFailure)
        .expect("the samples have a rotation_failure");
    sample_delivery(event)
}

/// `[channels.<name>]` with `kind` and `settings`, parsed as a user's file is.
fn config_with_channel(kind: &str, name: &str, settings: &str) -> Result<Config, String> {
    let mut table: toml::Table =
        toml::from_str(settings).map_err(|e| format!("the settings are not valid TOML: {e}"))?;
    if table.contains_key("kind") {
        return Err("the settings must not hold `kind`; the suite adds it".into());
    }
    table.insert("kind".into(), toml::Value::String(kind.into()));
    let mut channels = toml::Table::new();
    channels.insert(name.into(), toml::Value::Table(table));
    let mut doc = toml::Table::new();
    doc.insert("channels".into(), toml::Value::Table(channels));
    let text = toml::to_string(&doc).map_err(|e| format!("cannot write the TOML: {e}"))?;
    Config::from_toml_str(&text).map_err(|e| e.to_string())
}

// ------------------------------------------------------------------ checks

/// Every built-in kind and a custom kind are delivered with a non-empty
/// receipt, each reaching the peer exactly once; through a [`Notifier`]
/// (dispatcher, in-memory store) the delivery is recorded as sent with the
/// receipt.
pub async fn delivers_every_kind_with_a_receipt(c: &ChannelUnderTest) -> Verdict {
    let channel = c.build();
    for event in sample_events() {
        let kind = event.kind.to_string();
        let delivery = sample_delivery(event);
        let whence = format!("delivering a {kind} event");
        c.deliver_ok(channel.as_ref(), &delivery, &whence).await;
        c.assert_received(&delivery, 1, &whence).await;
    }

    // The same channel through the dispatcher: the store records the receipt.
    let mut config = Config::default();
    config.delivery.timeout = c.deliver_limit;
    config.delivery.lease = (c.deliver_limit * 2).max(Duration::from_secs(120));
    config.delivery.poll_interval = Duration::from_millis(50);
    config.add_route(RouteConfig::to([CHANNEL_NAME]));
    let store = Arc::new(MemoryStore::new());
    let notifier = Notifier::builder()
        .config(config)
        .shared_store(store.clone())
        .shared_channel(CHANNEL_NAME, channel.clone())
        .build()
        .unwrap_or_else(|e| panic!("a notifier around the channel: {e}"));
    let running = notifier.start();
    let event = crate::events::failure("key-through-dispatcher", "conformance-owner");
    match notifier.emit(&event).await {
        Ok(EmitOutcome::Enqueued { .. }) => {}
        other => panic!("emit through the notifier: {other:?}"),
    }
    let record = wait_until_final(&notifier, c.deliver_limit * 2).await;
    let report = running.shutdown(Duration::from_secs(5)).await;
    assert_eq!(
        record.status,
        DeliveryStatus::Sent,
        "through the dispatcher the delivery ended {}: {}",
        record.status,
        c.redact(record.last_error.as_deref().unwrap_or_default())
    );
    assert_eq!(record.attempts, 1, "{record:?}");
    let receipt = record.receipt.clone().unwrap_or_default();
    assert!(
        !receipt.trim().is_empty(),
        "the store recorded no receipt for the sent delivery: {record:?}"
    );
    c.assert_no_secret(&receipt, "the recorded receipt");
    assert_eq!(report.pending, 0, "{report:?}");
    let delivery = Delivery {
        id: record.id,
        channel: CHANNEL_NAME.into(),
        attempt: 1,
        notification: Notification::new(event, Utc::now()),
    };
    c.assert_received(&delivery, 1, "the delivery through the dispatcher")
        .await;
    Verdict::Passed
}

async fn wait_until_final(notifier: &Notifier, limit: Duration) -> DeliveryRecord {
    let deadline = Instant::now() + limit;
    loop {
        let page = notifier
            .store()
            .deliveries(&DeliveryFilter::default(), PageRequest::first(10))
            .await
            .expect("the memory store lists deliveries");
        assert_eq!(page.items.len(), 1, "one delivery was enqueued: {page:?}");
        let record = page.items[0].clone();
        if record.status.is_final() {
            return record;
        }
        assert!(
            Instant::now() < deadline,
            "the delivery is still {} after {limit:?}: {record:?}",
            record.status
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A peer refusing temporarily gives [`DeliveryError::Retryable`] with a
/// reason, and the next delivery succeeds.
pub async fn retryable_failures_are_classified(c: &ChannelUnderTest) -> Verdict {
    failure_is_classified(c, PeerBehaviour::FailRetryable).await
}

/// A peer refusing for good gives [`DeliveryError::Permanent`] with a
/// reason, and the next delivery succeeds.
pub async fn permanent_failures_are_classified(c: &ChannelUnderTest) -> Verdict {
    failure_is_classified(c, PeerBehaviour::FailPermanent).await
}

async fn failure_is_classified(c: &ChannelUnderTest, behaviour: PeerBehaviour) -> Verdict {
    if let Err(skipped) = c.require(behaviour) {
        return skipped;
    }
    let channel = c.build();
    let whence = format!("a peer answering {behaviour:?}");
    let retryable = behaviour == PeerBehaviour::FailRetryable;
    for round in 1..=2 {
        c.peer.expect(behaviour).await;
        let delivery = failure_delivery();
        let whence = format!("{whence} (round {round})");
        match c.deliver(channel.as_ref(), &delivery, &whence).await {
            Ok(receipt) => panic!("{whence}: expected an error, got success: {receipt:?}"),
            Err(e) => {
                assert_eq!(
                    e.is_retryable(),
                    retryable,
                    "{whence}: expected a {} error, got {}",
                    if retryable { "retryable" } else { "permanent" },
                    c.redact(&e.to_string())
                );
                assert!(
                    !e.reason().trim().is_empty(),
                    "{whence}: the error has no reason: {e:?}"
                );
            }
        }
        let next = failure_delivery();
        c.deliver_ok(
            channel.as_ref(),
            &next,
            &format!("{whence}, then accepting"),
        )
        .await;
        c.assert_received(&next, 1, &format!("{whence}, then accepting"))
            .await;
    }
    Verdict::Passed
}

/// Dropped `deliver` futures (after one poll, and to a peer that never
/// answers, under `tokio::time::timeout`) leave the channel usable.
pub async fn cancellation_leaves_the_channel_usable(c: &ChannelUnderTest) -> Verdict {
    let channel = c.build();

    // Dropped after the first poll, many times: no leaked slot or lock.
    const DROPS: usize = 10;
    for i in 0..DROPS {
        let delivery = failure_delivery();
        let mut future = channel.deliver(&delivery);
        let first = std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await;
        drop(future);
        if let Poll::Ready(result) = first {
            c.assert_clean_result(&result, &format!("a delivery done in one poll ({i})"));
        }
    }
    let next = failure_delivery();
    let whence = format!("after {DROPS} deliveries dropped after their first poll");
    c.deliver_ok(channel.as_ref(), &next, &whence).await;
    c.assert_received(&next, 1, &whence).await;

    if !c.peer.supports(PeerBehaviour::Hang) {
        return Verdict::Skipped(format!(
            "dropping after the first poll passed, but the {} channel's peer cannot hang, so \
             cancelling a delivery in flight was not checked",
            c.kind
        ));
    }
    for round in 1..=2 {
        c.peer.expect(PeerBehaviour::Hang).await;
        let delivery = failure_delivery();
        let whence = format!("a peer that never answers (round {round})");
        match tokio::time::timeout(c.cancel_after, channel.deliver(&delivery)).await {
            Err(_elapsed) => {}
            // The channel's own, shorter timeout ended it: also fine if retryable.
            Ok(result) => {
                c.assert_clean_result(&result, &whence);
                match result {
                    Err(e) if e.is_retryable() => {}
                    Err(e) => panic!(
                        "{whence}: a peer that does not answer is not a permanent failure: {}",
                        c.redact(&e.to_string())
                    ),
                    Ok(receipt) => {
                        panic!("{whence}: succeeded although the peer never answered: {receipt:?}")
                    }
                }
            }
        }
        let next = failure_delivery();
        let whence = format!(
            "{whence}, cancelled after {:?}, then accepting",
            c.cancel_after
        );
        c.deliver_ok(channel.as_ref(), &next, &whence).await;
        c.assert_received(&next, 1, &whence).await;
    }
    Verdict::Passed
}

/// Attempts 1 and 2 of a delivery carry the same idempotency key (also
/// after a retryable failure, and through a freshly built channel); another
/// delivery carries another key.
pub async fn idempotency_key_is_stable_across_attempts(c: &ChannelUnderTest) -> Verdict {
    let channel = c.build();

    // Delivered twice (a lost acknowledgement, an expired lease), the second
    // time by a channel built anew, as after a restart.
    let first = failure_delivery();
    c.deliver_ok(channel.as_ref(), &first, "attempt 1").await;
    let mut again = first.clone();
    again.attempt = 2;
    let rebuilt = c.build();
    c.deliver_ok(
        rebuilt.as_ref(),
        &again,
        "attempt 2 through a rebuilt channel",
    )
    .await;
    let seen = c.assert_received(&first, 2, "attempts 1 and 2").await;
    assert_eq!(
        seen[0].idempotency_key, seen[1].idempotency_key,
        "attempts 1 and 2 of one delivery carried different keys"
    );

    let other = failure_delivery();
    c.deliver_ok(channel.as_ref(), &other, "another delivery")
        .await;
    let other_seen = c.assert_received(&other, 1, "another delivery").await;
    assert_ne!(
        other_seen[0].idempotency_key, seen[0].idempotency_key,
        "two deliveries carried the same key"
    );

    if !c.peer.supports(PeerBehaviour::FailRetryable) {
        return Verdict::Passed;
    }
    // A retryable failure, then the retry.
    let failing = failure_delivery();
    c.peer.expect(PeerBehaviour::FailRetryable).await;
    match c
        .deliver(channel.as_ref(), &failing, "attempt 1, refused")
        .await
    {
        Err(e) if e.is_retryable() => {}
        other => panic!(
            "attempt 1 to a peer answering FailRetryable: expected a retryable error, got {}",
            c.redact(&format!("{other:?}"))
        ),
    }
    let mut retry = failing.clone();
    retry.attempt = 2;
    c.deliver_ok(
        channel.as_ref(),
        &retry,
        "attempt 2 after a retryable failure",
    )
    .await;
    let seen = c.received_for(&failing, 2).await;
    assert!(
        !seen.is_empty(),
        "the retry after a retryable failure never reached the peer with key {}",
        failing.idempotency_key()
    );
    assert!(
        seen.windows(2)
            .all(|w| w[0].idempotency_key == w[1].idempotency_key),
        "the refused attempt and its retry carried different keys: {seen:?}"
    );
    Verdict::Passed
}

/// One channel value delivers [`CONCURRENT_DELIVERIES`] deliveries at once,
/// each reaching the peer exactly once.
pub async fn concurrent_deliveries_all_arrive(c: &ChannelUnderTest) -> Verdict {
    let channel = c.build();
    let deliveries: Vec<Delivery> = (0..CONCURRENT_DELIVERIES)
        .map(|_| failure_delivery())
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for delivery in deliveries.clone() {
        let channel = channel.clone();
        let limit = c.deliver_limit;
        tasks.spawn(async move { tokio::time::timeout(limit, channel.deliver(&delivery)).await });
    }
    while let Some(joined) = tasks.join_next().await {
        let result = joined
            .expect("a delivery task panicked")
            .unwrap_or_else(|_| {
                panic!(
                    "a concurrent delivery did not return within {:?} (deliver_limit)",
                    c.deliver_limit
                )
            });
        c.assert_clean_result(&result, "a concurrent delivery");
        if let Err(e) = result {
            panic!("a concurrent delivery failed: {}", c.redact(&e.to_string()));
        }
    }
    for delivery in &deliveries {
        c.assert_received(delivery, 1, "concurrent deliveries")
            .await;
    }
    Verdict::Passed
}

/// The plugin is registered under its kind; its config schema is valid JSON
/// Schema 2020-12 and rejects unknown fields; its `example` validates and
/// builds through the registry; unknown settings fail the build by name.
pub async fn config_schema_is_valid_and_example_builds(c: &ChannelUnderTest) -> Verdict {
    let kind = c.kind();
    let plugin = registry::find(kind).unwrap_or_else(|| {
        panic!(
            "no channel plugin of kind {kind:?} is linked (linked: {:?}); register it with \
             clarion_core::register_channel! and name the crate in the test (`use my_crate as _;`)",
            registry::kinds()
        )
    });
    assert!(
        !plugin.description.trim().is_empty(),
        "the {kind} plugin has no description"
    );

    let schema = serde_json::to_value((plugin.config_schema)()).expect("a schema is JSON");
    assert_eq!(
        schema.get("$schema").and_then(|s| s.as_str()),
        Some("https://json-schema.org/draft/2020-12/schema"),
        "the {kind} config schema must declare JSON Schema 2020-12: {schema:#}"
    );
    if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
        panic!("the {kind} config schema is not valid JSON Schema 2020-12: {e}\n{schema:#}");
    }
    let validator = jsonschema::draft202012::new(&schema)
        .unwrap_or_else(|e| panic!("the {kind} config schema does not compile: {e}"));

    let example: toml::Table = toml::from_str(plugin.example)
        .unwrap_or_else(|e| panic!("the {kind} plugin's example is not valid TOML: {e}"));
    let example_json = serde_json::to_value(&example).expect("TOML converts to JSON");
    let errors: Vec<String> = validator
        .iter_errors(&example_json)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "the {kind} plugin's example does not validate against its schema: {errors:#?}"
    );
    let config = config_with_channel(kind, "example", plugin.example)
        .unwrap_or_else(|e| panic!("the {kind} plugin's example: {e}"));
    let built = config
        .build_channels()
        .unwrap_or_else(|e| panic!("the {kind} plugin's example does not build: {e}"));
    assert!(built.contains_key("example"));

    // Unknown settings are errors, in the schema and in the build.
    const UNKNOWN: &str = "clarion_conformance_unknown_setting";
    let mut extended = example_json.clone();
    extended
        .as_object_mut()
        .expect("the example is a table")
        .insert(UNKNOWN.into(), serde_json::json!(1));
    assert!(
        !validator.is_valid(&extended),
        "the {kind} config schema accepts unknown settings; use #[serde(deny_unknown_fields)]"
    );
    let mut with_unknown = example.clone();
    with_unknown.insert(UNKNOWN.into(), toml::Value::Integer(1));
    let text = toml::to_string(&with_unknown).expect("TOML writes");
    let err = match config_with_channel(kind, "example", &text).and_then(|config| {
        config
            .build_channels()
            .map(|_| ())
            .map_err(|e| e.to_string())
    }) {
        Ok(()) => panic!("the {kind} plugin builds with an unknown setting {UNKNOWN}"),
        Err(e) => e,
    };
    assert!(
        err.contains(UNKNOWN) && err.contains("channels.example"),
        "the error for an unknown setting should name it and its path: {err}"
    );

    // The subject's own settings are valid by the schema too.
    if let Some(config) = c.config() {
        let settings = serde_json::Value::Object(config.channels[CHANNEL_NAME].settings.clone());
        let errors: Vec<String> = validator
            .iter_errors(&settings)
            .map(|e| format!("{}: {e}", e.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "the subject's settings build but do not validate against the {kind} schema: \
             {}",
            c.redact(&format!("{errors:#?}"))
        );
    }
    Verdict::Passed
}

/// No declared secret appears in the built channel's or its configuration's
/// `Debug` output, in a connectivity `check`, or in any error or receipt, in
/// every way the peer can make the channel fail.
pub async fn secrets_never_leak(c: &ChannelUnderTest) -> Verdict {
    if c.secrets.is_empty() {
        return Verdict::Skipped(format!(
            "no secrets were declared for the {} channel under test",
            c.kind
        ));
    }
    let channel = c.build();
    c.assert_no_secret(&format!("{channel:?}"), "the channel's Debug output");
    c.assert_no_secret(
        &format!("{channel:#?}"),
        "the channel's pretty Debug output",
    );
    if let Some(config) = c.config() {
        c.assert_no_secret(&format!("{config:?}"), "the configuration's Debug output");
        c.assert_no_secret(
            &format!("{config:#?}"),
            "the configuration's pretty Debug output",
        );
    }

    match tokio::time::timeout(c.deliver_limit, channel.check()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => c.assert_no_secret(&e.to_string(), "the connectivity check's error"),
        Err(_) => panic!(
            "the connectivity check did not return within {:?} (deliver_limit)",
            c.deliver_limit
        ),
    }

    let success = failure_delivery();
    let _ = c.deliver(channel.as_ref(), &success, "a delivery").await;
    for behaviour in [PeerBehaviour::FailRetryable, PeerBehaviour::FailPermanent] {
        if c.peer.supports(behaviour) {
            c.peer.expect(behaviour).await;
            let delivery = failure_delivery();
            let result = c
                .deliver(
                    channel.as_ref(),
                    &delivery,
                    &format!("a peer answering {behaviour:?}"),
                )
                .await;
            assert!(
                result.is_err(),
                "a peer answering {behaviour:?}: {result:?}"
            );
        }
    }
    if c.peer.supports(PeerBehaviour::Hang) {
        c.peer.expect(PeerBehaviour::Hang).await;
        let delivery = failure_delivery();
        // Let the channel's own timeout answer, if it is shorter than the limit.
        if let Ok(result) = tokio::time::timeout(c.deliver_limit, channel.deliver(&delivery)).await
        {
            c.assert_clean_result(&result, "a peer that never answers");
        }
    }
    Verdict::Passed
}

/// The suite against a fake channel with injectable defects: each defect
/// must fail the check meant to catch it.
#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use tokio::sync::Semaphore;

    use super::*;

    const SECRET: &str = "s3cret-fake-token";

    #[derive(Default)]
    struct State {
        script: Mutex<VecDeque<PeerBehaviour>>,
        received: Mutex<Vec<ReceivedMessage>>,
    }

    struct FakePeer(Arc<State>);

    #[async_trait]
    impl Peer for FakePeer {
        fn supports(&self, _: PeerBehaviour) -> bool {
            true
        }
        async fn expect(&self, behaviour: PeerBehaviour) {
            self.0.script.lock().unwrap().push_back(behaviour);
        }
        async fn received(&self) -> Vec<ReceivedMessage> {
            self.0.received.lock().unwrap().clone()
        }
    }

    #[derive(Debug, Clone, Copy, Default)]
    struct Defects {
        debug_shows_secret: bool,
        error_shows_secret: bool,
        retryable_as_permanent: bool,
        key_per_attempt: bool,
        no_receipt: bool,
        leaks_slot_on_cancel: bool,
    }

    struct Fake {
        state: Arc<State>,
        slots: Arc<Semaphore>,
        defects: Defects,
    }

    impl fmt::Debug for Fake {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let token = if self.defects.debug_shows_secret {
                SECRET
            } else {
                "***"
            };
            f.debug_struct("Fake").field("token", &token).finish()
        }
    }

    #[async_trait]
    impl Channel for Fake {
        async fn deliver(&self, d: &Delivery) -> Result<Receipt, DeliveryError> {
            let permit = self.slots.acquire().await.expect("open");
            let _slot = if self.defects.leaks_slot_on_cancel {
                permit.forget();
                None
            } else {
                Some(permit)
            };
            tokio::task::yield_now().await;
            let behaviour = self
                .state
                .script
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(PeerBehaviour::Accept);
            let mut key = d.idempotency_key();
            if self.defects.key_per_attempt {
                key = format!("{key}-{}", d.attempt);
            }
            self.state.received.lock().unwrap().push(ReceivedMessage {
                idempotency_key: Some(key),
                summary: format!("attempt {}", d.attempt),
            });
            let reason = if self.defects.error_shows_secret {
                format!("refused with token {SECRET}")
            } else {
                "refused".to_owned()
            };
            let result = match behaviour {
                PeerBehaviour::Accept if self.defects.no_receipt => Ok(Receipt::default()),
                PeerBehaviour::Accept => Ok(Receipt::new("accepted")),
                PeerBehaviour::FailRetryable if self.defects.retryable_as_permanent => {
                    Err(DeliveryError::permanent(reason))
                }
                PeerBehaviour::FailRetryable => Err(DeliveryError::retryable(reason)),
                PeerBehaviour::FailPermanent => Err(DeliveryError::permanent(reason)),
                PeerBehaviour::Hang => std::future::pending().await,
            };
            if self.defects.leaks_slot_on_cancel {
                self.slots.add_permits(1);
            }
            result
        }
    }

    fn subject(defects: Defects) -> ChannelUnderTest {
        let state = Arc::new(State::default());
        let peer = FakePeer(state.clone());
        let slots = Arc::new(Semaphore::new(2));
        ChannelUnderTest::from_fn("fake", peer, move || {
            Ok(Arc::new(Fake {
                state: state.clone(),
                slots: slots.clone(),
                defects,
            }) as Arc<dyn Channel>)
        })
        .secret(SECRET)
        .deliver_limit(Duration::from_secs(2))
        .cancel_after(Duration::from_millis(50))
    }

    /// Runs `check` against a fresh fake with `defects`.
    macro_rules! run {
        ($defects:expr, $check:ident) => {{
            let subject = subject($defects);
            runtime()
                .block_on(async { tokio::time::timeout(CHECK_LIMIT, $check(&subject)).await })
                .expect("bounded")
        }};
    }

    #[test]
    fn a_sound_channel_passes_every_check_that_needs_no_registry() {
        let sound = Defects::default();
        assert_eq!(
            run!(sound, delivers_every_kind_with_a_receipt),
            Verdict::Passed
        );
        assert_eq!(
            run!(sound, retryable_failures_are_classified),
            Verdict::Passed
        );
        assert_eq!(
            run!(sound, permanent_failures_are_classified),
            Verdict::Passed
        );
        assert_eq!(
            run!(sound, cancellation_leaves_the_channel_usable),
            Verdict::Passed
        );
        assert_eq!(
            run!(sound, idempotency_key_is_stable_across_attempts),
            Verdict::Passed
        );
        assert_eq!(
            run!(sound, concurrent_deliveries_all_arrive),
            Verdict::Passed
        );
        assert_eq!(run!(sound, secrets_never_leak), Verdict::Passed);
    }

    #[test]
    #[should_panic(expected = "the channel's Debug output contains declared secret #0")]
    fn a_secret_in_debug_output_fails() {
        let defects = Defects {
            debug_shows_secret: true,
            ..Default::default()
        };
        let _ = run!(defects, secrets_never_leak);
    }

    #[test]
    #[should_panic(
        expected = "the error contains declared secret #0: permanent: refused with token <secret #0>"
    )]
    fn a_secret_in_an_error_fails() {
        let defects = Defects {
            error_shows_secret: true,
            ..Default::default()
        };
        let _ = run!(defects, permanent_failures_are_classified);
    }

    #[test]
    #[should_panic(expected = "expected a retryable error, got permanent: refused")]
    fn a_misclassified_failure_fails() {
        let defects = Defects {
            retryable_as_permanent: true,
            ..Default::default()
        };
        let _ = run!(defects, retryable_failures_are_classified);
    }

    #[test]
    #[should_panic(expected = "attempts 1 and 2 of one delivery carried different keys")]
    fn a_key_that_changes_per_attempt_fails() {
        let defects = Defects {
            key_per_attempt: true,
            ..Default::default()
        };
        let _ = run!(defects, idempotency_key_is_stable_across_attempts);
    }

    #[test]
    #[should_panic(expected = "a successful delivery needs a receipt with a detail")]
    fn an_empty_receipt_fails() {
        let defects = Defects {
            no_receipt: true,
            ..Default::default()
        };
        let _ = run!(defects, delivers_every_kind_with_a_receipt);
    }

    #[test]
    #[should_panic(expected = "deliver did not return within 2s")]
    fn a_slot_leaked_by_cancellation_fails() {
        let defects = Defects {
            leaks_slot_on_cancel: true,
            ..Default::default()
        };
        let _ = run!(defects, cancellation_leaves_the_channel_usable);
    }

    #[test]
    #[should_panic(expected = "no channel plugin of kind \"fake\" is linked")]
    fn an_unregistered_kind_fails_the_registry_check() {
        let _ = run!(
            Defects::default(),
            config_schema_is_valid_and_example_builds
        );
    }
}
