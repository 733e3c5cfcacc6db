//! The channel conformance suite against the log channel. Its peer is a
//! `tracing` subscriber that captures the events: it can only accept, so the
//! checks that need a refusing or silent peer report themselves skipped.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use clarion_testkit::channel_suite::{ChannelUnderTest, Peer, PeerBehaviour, ReceivedMessage};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use clarion_log as _;

/// One captured event: its target and its `idempotency_key` field.
type Captured = (String, ReceivedMessage);

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        #[derive(Default)]
        struct Fields {
            key: Option<String>,
            message: String,
        }
        impl Visit for Fields {
            fn record_str(&mut self, field: &Field, value: &str) {
                if field.name() == "idempotency_key" {
                    self.key = Some(value.to_owned());
                }
            }
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.message = format!("{value:?}");
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let target = event.metadata().target().to_owned();
        let summary = format!("{} {target}: {}", event.metadata().level(), fields.message);
        self.0.lock().unwrap().push((
            target,
            ReceivedMessage {
                idempotency_key: fields.key,
                summary,
            },
        ));
    }
}

/// The process-wide capture: the dispatcher delivers on worker threads, so
/// a thread-scoped subscriber would miss its events.
fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(capture.clone()),
        )
        .expect("no other global subscriber in this test binary");
        capture
    })
}

/// The events written under one target (unique per test, as the tests of
/// this binary run in parallel and share the global subscriber).
struct LogPeer {
    target: String,
    capture: &'static Capture,
}

#[async_trait]
impl Peer for LogPeer {
    fn supports(&self, behaviour: PeerBehaviour) -> bool {
        // A subscriber cannot refuse or delay an event.
        behaviour == PeerBehaviour::Accept
    }

    async fn expect(&self, _: PeerBehaviour) {}

    async fn received(&self) -> Vec<ReceivedMessage> {
        self.capture
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|(target, _)| *target == self.target)
            .map(|(_, message)| message.clone())
            .collect()
    }
}

async fn subject() -> ChannelUnderTest {
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let target = format!("conformance::run{}", RUN.fetch_add(1, Ordering::SeqCst));
    let settings = format!("min_level = \"warn\"\ntarget = \"{target}\"\n");
    let peer = LogPeer {
        target,
        capture: capture(),
    };
    // The log channel's configuration holds no secrets.
    ChannelUnderTest::from_settings("log", settings, peer)
}

clarion_testkit::channel_conformance_tests!(subject());
