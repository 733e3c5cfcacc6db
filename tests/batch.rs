//! `Notifier::emit_batch` against a store that records its batch writes and
//! fails them on demand: the split into transactions of at most `MAX_BATCH`,
//! invalid events left out of the store's batch, what a failed first or later
//! transaction reports, metrics, and the dispatcher woken by a batch.

use std::sync::Arc;
use std::time::Duration;

use clarion::config::Config;
use clarion::memory::MemoryStore;
use clarion::notifier::{EmitError, EmitOutcome, MAX_BATCH};
use clarion::store::{InboxStore, NotificationsStore};
use clarion::{KeyEvent, Notifier};
use clarion_testkit::counting::CountingStore;
use clarion_testkit::events;
use clarion_testkit::recording::RecordingChannel;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

const CONFIG: &str = r#"
[delivery]
poll_interval = "1h"

[[routes]]
channels = ["rec"]
"#;

fn setup() -> (Arc<CountingStore<MemoryStore>>, RecordingChannel, Notifier) {
    let store = Arc::new(CountingStore::new(MemoryStore::new()));
    let channel = RecordingChannel::new();
    let notifier = Notifier::builder()
        .config(Config::from_toml_str(CONFIG).unwrap())
        .shared_store(store.clone() as Arc<dyn NotificationsStore>)
        .channel("rec", channel.clone())
        .build()
        .unwrap();
    (store, channel, notifier)
}

fn many(n: usize) -> Vec<KeyEvent> {
    (0..n)
        .map(|i| events::failure(&format!("key-{i}"), "ops").with_dedup_key(format!("k{i}")))
        .collect()
}

#[tokio::test]
async fn a_large_call_is_split_into_transactions_of_at_most_max_batch() {
    let (store, _, notifier) = setup();
    let mut events = many(2 * MAX_BATCH + 500);
    events[1_200].subject.id = String::new(); // invalid: not sent to the store
    let results = notifier.emit_batch(&events).await.unwrap();
    assert_eq!(store.batches(), vec![MAX_BATCH, MAX_BATCH - 1, 500]);
    assert_eq!(store.enqueues(), 0, "no event goes through the single path");
    assert_eq!(results.len(), events.len());
    assert!(matches!(
        &results[1_200],
        Err(EmitError::InvalidEvent { field, .. }) if field == "subject.id"
    ));
    let enqueued = results
        .iter()
        .filter(|r| matches!(r, Ok(EmitOutcome::Enqueued { .. })))
        .count();
    assert_eq!(enqueued, events.len() - 1);
    assert_eq!(
        store.unread_count("ops").await.unwrap(),
        (events.len() - 1) as u64
    );
}

#[tokio::test]
async fn a_failed_first_transaction_fails_the_call_and_stores_nothing() {
    let (store, _, notifier) = setup();
    store.fail_batches_from(0);
    let err = notifier.emit_batch(&many(2_500)).await.unwrap_err();
    assert!(matches!(err, EmitError::Store(_)), "{err}");
    assert_eq!(
        store.batches(),
        vec![MAX_BATCH],
        "no later transaction is tried"
    );
    assert_eq!(store.unread_count("ops").await.unwrap(), 0);
}

#[tokio::test]
async fn a_failed_later_transaction_reports_what_was_not_stored() {
    let (store, _, notifier) = setup();
    store.fail_batches_from(1);
    let mut events = many(2_500);
    events[2_100].owner = Some("o\0".into());
    let results = notifier.emit_batch(&events).await.unwrap();
    assert_eq!(store.batches(), vec![MAX_BATCH, MAX_BATCH]);
    assert!(
        results[..MAX_BATCH]
            .iter()
            .all(|r| matches!(r, Ok(EmitOutcome::Enqueued { .. })))
    );
    for (i, result) in results.iter().enumerate().skip(MAX_BATCH) {
        match result {
            Err(EmitError::InvalidEvent { field, .. }) => {
                assert_eq!((i, field.as_str()), (2_100, "owner"))
            }
            Err(EmitError::Store(_)) => assert_ne!(i, 2_100),
            other => panic!("event {i}: expected not stored, got {other:?}"),
        }
    }
    assert_eq!(store.unread_count("ops").await.unwrap(), MAX_BATCH as u64);
    // The caller retries the whole call: the stored part is Duplicate.
    store.fail_batches_from(usize::MAX);
    let retried = notifier.emit_batch(&events).await.unwrap();
    let duplicates = retried
        .iter()
        .filter(|r| matches!(r, Ok(EmitOutcome::Duplicate { .. })))
        .count();
    assert_eq!(duplicates, MAX_BATCH);
    assert_eq!(store.unread_count("ops").await.unwrap(), 2_499);
}

#[tokio::test]
async fn a_batch_wakes_the_dispatcher_and_counts_each_event() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let (_, channel, notifier) = setup();
    let running = notifier.start();
    let mut events = many(3);
    events.push(events[0].clone()); // a duplicate inside the batch
    let results = notifier.emit_batch(&events).await.unwrap();
    assert!(matches!(results[3], Ok(EmitOutcome::Duplicate { .. })));
    // The dispatcher's poll is an hour away: only the wake delivers.
    tokio::time::timeout(Duration::from_secs(60), channel.wait_for_calls(3))
        .await
        .expect("emit_batch wakes the dispatcher");
    let counted: Vec<(String, u64)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == clarion::telemetry::EVENTS)
        .map(|(key, _, _, value)| {
            let outcome = key
                .key()
                .labels()
                .find(|l| l.key() == "outcome")
                .map(|l| l.value().to_owned())
                .unwrap_or_default();
            let DebugValue::Counter(n) = value else {
                panic!("{value:?}")
            };
            (outcome, n)
        })
        .collect();
    assert!(counted.contains(&("enqueued".into(), 3)), "{counted:?}");
    assert!(counted.contains(&("duplicate".into(), 1)), "{counted:?}");
    running.shutdown(Duration::from_secs(5)).await;
}
