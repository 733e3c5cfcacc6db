//! Deadline scans at scale: warnings are written in batches (`emit_batch`),
//! and a re-scan that finds nothing new does one dedup lookup per batch and
//! writes nothing; the threshold and dedup rules stay those of
//! tests/deadlines.rs. Counted on a recording store, never timed.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use clarion::Notifier;
use clarion::clock::{Clock, ManualClock};
use clarion::config::Config;
use clarion::deadline::{Deadline, DeadlineSource, SourceError};
use clarion::event::{ApproachingDeadline, Labels, ObjectType, Subject};
use clarion::memory::MemoryStore;
use clarion::notifier::MAX_BATCH;
use clarion::store::{InboxStore, NotificationsStore, PageRequest};
use clarion_testkit::counting::CountingStore;

/// A KMS with many keys, each with a deadline tests can move.
#[derive(Clone, Default)]
struct Keys(Arc<Mutex<Vec<Deadline>>>);

impl Keys {
    fn due_in(now: DateTime<Utc>, days: &[i64]) -> Self {
        let keys = days
            .iter()
            .enumerate()
            .map(|(i, d)| Deadline {
                subject: Subject::new(format!("key-{i}"), ObjectType::SymmetricKey),
                deadline: now + TimeDelta::days(*d) - TimeDelta::hours(1),
                owner: Some("ops".into()),
                labels: Labels::new(),
            })
            .collect();
        Keys(Arc::new(Mutex::new(keys)))
    }
    fn rotate(&self, index: usize, to: DateTime<Utc>) {
        self.0.lock().unwrap()[index].deadline = to;
    }
}

#[async_trait]
impl DeadlineSource for Keys {
    async fn due_by(&self, until: DateTime<Utc>) -> Result<Vec<Deadline>, SourceError> {
        let keys = self.0.lock().unwrap();
        Ok(keys
            .iter()
            .filter(|d| d.deadline <= until)
            .cloned()
            .collect())
    }
}

fn notifier(store: &Arc<CountingStore<MemoryStore>>, keys: Keys, clock: ManualClock) -> Notifier {
    Notifier::builder()
        .config(Config::from_toml_str("[deadlines]\nthresholds = [30, 7, 1]\n").unwrap())
        .shared_store(store.clone() as Arc<dyn NotificationsStore>)
        .deadline_source(keys)
        .clock(clock)
        .build()
        .unwrap()
}

async fn thresholds(store: &CountingStore<MemoryStore>) -> Vec<u32> {
    let mut all = Vec::new();
    let mut page = PageRequest::first(200);
    loop {
        let got = store.notifications("ops", page).await.unwrap();
        all.extend(got.items.iter().map(|n| {
            n.event
                .data_as::<ApproachingDeadline>()
                .unwrap()
                .threshold_days
        }));
        match got.next {
            Some(next) => page.after = Some(next),
            None => return all,
        }
    }
}

#[tokio::test]
async fn a_scan_writes_in_batches_and_a_rescan_with_nothing_new_writes_nothing() {
    let clock = ManualClock::default();
    let now = clock.now();
    // 2,500 keys in the window (the tightest threshold each: 30, 7 or 1 days),
    // and 100 beyond it.
    let mut days: Vec<i64> = (0..2_500).map(|i| [25, 5, 1][i % 3]).collect();
    days.extend(std::iter::repeat_n(40, 100));
    let keys = Keys::due_in(now, &days);
    let store = Arc::new(CountingStore::new(MemoryStore::new()));
    let n = notifier(&store, keys.clone(), clock.clone());

    let first = n.scan_deadlines().await.unwrap();
    assert_eq!(
        (first.listed, first.warned, first.already_warned),
        (2_500, 2_500, 0)
    );
    assert_eq!(store.batches(), vec![MAX_BATCH, MAX_BATCH, 500]);
    assert_eq!(store.lookups(), 3);
    assert_eq!(store.enqueues(), 0);
    let mut seen = thresholds(&store).await;
    seen.sort_unstable();
    let mut expected: Vec<u32> = (0..2_500).map(|i| [30, 7, 1][i % 3]).collect();
    expected.sort_unstable();
    assert_eq!(
        seen, expected,
        "one warning per key, at its tightest threshold"
    );

    // Nothing new: one lookup per batch, no write at all.
    let again = n.scan_deadlines().await.unwrap();
    assert_eq!((again.warned, again.already_warned), (0, 2_500));
    assert_eq!(
        store.batches().len(),
        3,
        "a re-scan with nothing new writes nothing"
    );
    assert_eq!(store.lookups(), 6);

    // Two keys rotated to a deadline 3 days out: a new cycle for them only,
    // written as one small batch.
    keys.rotate(0, now + TimeDelta::days(3));
    keys.rotate(1, now + TimeDelta::days(3));
    let third = n.scan_deadlines().await.unwrap();
    assert_eq!((third.warned, third.already_warned), (2, 2_498));
    assert_eq!(store.batches(), vec![MAX_BATCH, MAX_BATCH, 500, 2]);
}

#[tokio::test]
async fn two_watchers_scanning_many_keys_at_once_warn_once() {
    let clock = ManualClock::default();
    let keys = Keys::due_in(clock.now(), &vec![5; 1_500]);
    let store = Arc::new(CountingStore::new(MemoryStore::new()));
    let a = notifier(&store, keys.clone(), clock.clone());
    let b = notifier(&store, keys, clock);
    let (ra, rb) = tokio::join!(a.scan_deadlines(), b.scan_deadlines());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.warned + rb.warned, 1_500);
    assert_eq!(ra.already_warned + rb.already_warned, 1_500);
    assert_eq!(thresholds(&store).await.len(), 1_500);
}

#[tokio::test]
async fn a_failed_batch_is_reported_and_written_by_the_next_scan() {
    let clock = ManualClock::default();
    let keys = Keys::due_in(clock.now(), &vec![5; 1_500]);
    let store = Arc::new(CountingStore::new(MemoryStore::new()));
    let n = notifier(&store, keys, clock);
    store.fail_batches_from(1);
    let err = n.scan_deadlines().await.unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    assert_eq!(
        thresholds(&store).await.len(),
        MAX_BATCH,
        "the first batch is kept"
    );
    store.fail_batches_from(usize::MAX);
    let next = n.scan_deadlines().await.unwrap();
    assert_eq!((next.warned, next.already_warned), (500, MAX_BATCH));
    assert_eq!(thresholds(&store).await.len(), 1_500);
}
