//! Counters, histograms and gauges through the `metrics` facade, with
//! bounded labels (channel name and event kind, never a key id).

use std::time::Duration;

use clarion::Notifier;
use clarion::clock::TokioClock;
use clarion::config::Config;
use clarion::memory::MemoryStore;
use clarion::telemetry;
use clarion_testkit::events;
use clarion_testkit::recording::{RecordingChannel, Step};
use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

type Entries = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

fn value<'a>(entries: &'a Entries, name: &str, labels: &[(&str, &str)]) -> Option<&'a DebugValue> {
    entries
        .iter()
        .find(|(key, _, _, _)| {
            let key = key.key();
            key.name() == name
                && labels
                    .iter()
                    .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
                && key.labels().count() == labels.len()
        })
        .map(|(_, _, _, value)| value)
}

fn counter(s: &Entries, name: &str, labels: &[(&str, &str)]) -> u64 {
    match value(s, name, labels) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{name} {labels:?}: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn attempts_outcomes_latency_and_queue_gauges_are_recorded() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);

    let channel = RecordingChannel::new()
        .then(Step::Retryable(None))
        .then(Step::Succeed)
        .then(Step::Permanent);
    let config = Config::from_toml_str(
        r#"
        [delivery.retry]
        jitter = 0.0
        [[routes]]
        kinds = ["rotation_failure"]
        channels = ["rec"]
        "#,
    )
    .unwrap();
    let notifier = Notifier::builder()
        .config(config)
        .store(MemoryStore::new())
        .channel("rec", channel.clone())
        .clock(TokioClock::default())
        .build()
        .unwrap();
    let running = notifier.start();
    notifier
        .emit(&events::failure("key-1", "alice"))
        .await
        .unwrap();
    channel.wait_for_calls(2).await;
    notifier
        .emit(&events::failure("key-2", "alice"))
        .await
        .unwrap();
    notifier
        .emit(&events::success("key-3", "alice"))
        .await
        .unwrap();
    channel.wait_for_calls(3).await;
    // Let the last outcome be recorded and the upkeep refresh the gauges.
    tokio::time::sleep(Duration::from_secs(16)).await;

    // One snapshot: taking a snapshot drains histograms.
    let entries: Entries = snapshotter.snapshot().into_vec();
    let s = &entries;
    let labels = [("channel", "rec"), ("kind", "rotation_failure")];
    assert_eq!(counter(s, telemetry::ATTEMPTS, &labels), 3);
    assert_eq!(counter(s, telemetry::RETRIED, &labels), 1);
    assert_eq!(counter(s, telemetry::SENT, &labels), 1);
    assert_eq!(counter(s, telemetry::DEAD, &labels), 1);
    let enqueued = [("kind", "rotation_failure"), ("outcome", "enqueued")];
    assert_eq!(counter(s, telemetry::EVENTS, &enqueued), 2);
    let unrouted = [("kind", "rotation_success"), ("outcome", "unrouted")];
    assert_eq!(counter(s, telemetry::EVENTS, &unrouted), 1);
    match value(s, telemetry::DURATION, &[("channel", "rec")]) {
        Some(DebugValue::Histogram(samples)) => assert_eq!(samples.len(), 3),
        other => panic!("{other:?}"),
    }
    match value(s, telemetry::DELIVERIES, &[("status", "dead")]) {
        Some(DebugValue::Gauge(v)) => assert_eq!(v.into_inner(), 1.0),
        other => panic!("{other:?}"),
    }
    // No label anywhere carries a key id.
    for (key, _, _, _) in &entries {
        assert!(
            key.key().labels().all(|l| !l.value().starts_with("key-")),
            "{key:?}"
        );
        let _: MetricKind = key.kind();
    }
    running.shutdown(Duration::from_secs(1)).await;
}

/// The transactional path (`prepare` + `enqueue_with`) counts outcomes
/// exactly like `emit`: it is the same code.
#[tokio::test(start_paused = true)]
async fn prepared_events_are_counted_like_emitted_ones() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let config =
        Config::from_toml_str("[[routes]]\nkinds = [\"rotation_failure\"]\nchannels = [\"rec\"]\n")
            .unwrap();
    let notifier = Notifier::builder()
        .config(config)
        .store(MemoryStore::new())
        .channel("rec", RecordingChannel::new())
        .build()
        .unwrap();
    let store = notifier.store().clone();
    let keyed = events::failure("key-1", "alice").with_dedup_key("k1");
    for event in [keyed.clone(), keyed, events::success("key-2", "alice")] {
        let prepared = notifier.prepare(&event).unwrap();
        prepared
            .enqueue_with(|new| store.enqueue(new))
            .await
            .unwrap();
    }
    let entries: Entries = snapshotter.snapshot().into_vec();
    let s = &entries;
    for (kind, outcome) in [
        ("rotation_failure", "enqueued"),
        ("rotation_failure", "duplicate"),
        ("rotation_success", "unrouted"),
    ] {
        let labels = [("kind", kind), ("outcome", outcome)];
        assert_eq!(counter(s, telemetry::EVENTS, &labels), 1, "{labels:?}");
    }
}
