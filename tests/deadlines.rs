//! The deadline watcher through `Notifier`, on tokio's paused clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use clarion::clock::{Clock, TokioClock};
use clarion::config::Config;
use clarion::deadline::{Deadline, DeadlineSource, SourceError};
use clarion::event::{ApproachingDeadline, Labels, ObjectType, Severity, Subject};
use clarion::memory::MemoryStore;
use clarion::store::{NotificationsStore, PageRequest};
use clarion::{Notification, Notifier};
use clarion_testkit::recording::RecordingChannel;

/// A KMS with one key whose deadline tests move.
#[derive(Clone)]
struct OneKey(Arc<Mutex<DateTime<Utc>>>);

impl OneKey {
    fn due(at: DateTime<Utc>) -> Self {
        OneKey(Arc::new(Mutex::new(at)))
    }
    fn rotate_to(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap() = at;
    }
}

#[async_trait]
impl DeadlineSource for OneKey {
    async fn due_by(&self, until: DateTime<Utc>) -> Result<Vec<Deadline>, SourceError> {
        let deadline = *self.0.lock().unwrap();
        Ok((deadline <= until)
            .then(|| Deadline {
                subject: Subject::new("cert-1", ObjectType::Certificate),
                deadline,
                owner: Some("alice".into()),
                labels: Labels::from([("env".into(), "prod".into())]),
            })
            .into_iter()
            .collect())
    }
}

const CONFIG: &str = r#"
[deadlines]
thresholds = [1, 30, 7]
scan_interval = "1h"

[[routes]]
kinds = ["approaching_deadline"]
channels = ["rec"]
"#;

fn notifier(store: Arc<dyn NotificationsStore>, source: OneKey, clock: TokioClock) -> Notifier {
    Notifier::builder()
        .config(Config::from_toml_str(CONFIG).unwrap())
        .shared_store(store)
        .channel("rec", RecordingChannel::new())
        .deadline_source(source)
        .clock(clock)
        .build()
        .unwrap()
}

async fn warnings(store: &Arc<dyn NotificationsStore>) -> Vec<(u32, Notification)> {
    let mut all = store
        .notifications("alice", PageRequest::first(100))
        .await
        .unwrap()
        .items;
    all.reverse();
    all.into_iter()
        .map(|n| {
            let data: ApproachingDeadline = n.event.data_as().unwrap();
            (data.threshold_days, n)
        })
        .collect()
}

fn thresholds(w: &[(u32, Notification)]) -> Vec<u32> {
    w.iter().map(|(t, _)| *t).collect()
}

#[tokio::test(start_paused = true)]
async fn a_key_due_in_5_days_gets_only_the_7_day_warning() {
    let clock = TokioClock::default();
    let store: Arc<dyn NotificationsStore> = Arc::new(MemoryStore::new());
    let key = OneKey::due(clock.now() + TimeDelta::days(5));
    let n = notifier(store.clone(), key, clock);
    let report = n.scan_deadlines().await.unwrap();
    assert_eq!(
        (report.listed, report.warned, report.already_warned),
        (1, 1, 0)
    );
    let w = warnings(&store).await;
    assert_eq!(thresholds(&w), [7]);
    let event = &w[0].1.event;
    assert_eq!(event.severity, Severity::Warning);
    assert_eq!(event.labels["env"], "prod");
    let data: ApproachingDeadline = event.data_as().unwrap();
    assert_eq!((data.days_remaining, data.final_threshold), (5, false));
    // A rescan finds the warning already given.
    let again = n.scan_deadlines().await.unwrap();
    assert_eq!((again.warned, again.already_warned), (0, 1));
}

#[tokio::test(start_paused = true)]
async fn a_key_moving_from_31_to_0_days_gets_30_7_and_1_once_each() {
    let clock = TokioClock::default();
    let store: Arc<dyn NotificationsStore> = Arc::new(MemoryStore::new());
    let key = OneKey::due(clock.now() + TimeDelta::days(31));
    let n = notifier(store.clone(), key, clock);
    // Scan every 6 hours for 31 days.
    for _ in 0..(31 * 4) {
        n.scan_deadlines().await.unwrap();
        tokio::time::advance(Duration::from_secs(6 * 3600)).await;
    }
    let w = warnings(&store).await;
    assert_eq!(thresholds(&w), [30, 7, 1]);
    assert_eq!(w[2].1.event.severity, Severity::Critical);
}

#[tokio::test(start_paused = true)]
async fn two_watchers_on_one_store_warn_once() {
    let clock = TokioClock::default();
    let store: Arc<dyn NotificationsStore> = Arc::new(MemoryStore::new());
    let key = OneKey::due(clock.now() + TimeDelta::days(6));
    let a = notifier(store.clone(), key.clone(), clock);
    let b = notifier(store.clone(), key, clock);
    let (ra, rb) = tokio::join!(a.scan_deadlines(), b.scan_deadlines());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.warned + rb.warned, 1);
    assert_eq!(ra.already_warned + rb.already_warned, 1);
    assert_eq!(thresholds(&warnings(&store).await), [7]);
}

#[tokio::test(start_paused = true)]
async fn a_new_deadline_after_rotation_starts_a_new_cycle() {
    let clock = TokioClock::default();
    let store: Arc<dyn NotificationsStore> = Arc::new(MemoryStore::new());
    let key = OneKey::due(clock.now() + TimeDelta::days(3));
    let n = notifier(store.clone(), key.clone(), clock);
    n.scan_deadlines().await.unwrap();
    assert_eq!(thresholds(&warnings(&store).await), [7]);

    // Rotated: due again in 90 days. Nothing until the 30-day threshold.
    key.rotate_to(clock.now() + TimeDelta::days(90));
    n.scan_deadlines().await.unwrap();
    assert_eq!(warnings(&store).await.len(), 1);
    tokio::time::advance(Duration::from_secs(61 * 86_400)).await;
    n.scan_deadlines().await.unwrap();
    let w = warnings(&store).await;
    assert_eq!(thresholds(&w), [7, 30]);
    assert_ne!(w[0].1.event.dedup_key, w[1].1.event.dedup_key);
}

#[tokio::test(start_paused = true)]
async fn the_running_watcher_scans_on_its_interval_and_delivers() {
    let clock = TokioClock::default();
    let store: Arc<dyn NotificationsStore> = Arc::new(MemoryStore::new());
    let key = OneKey::due(clock.now() + TimeDelta::days(7) + TimeDelta::hours(5));
    let channel = RecordingChannel::new();
    let n = Notifier::builder()
        .config(Config::from_toml_str(CONFIG).unwrap())
        .shared_store(store.clone())
        .channel("rec", channel.clone())
        .deadline_source(key)
        .clock(clock)
        .build()
        .unwrap();
    let running = n.start();
    // First scan at start: the 30-day warning.
    channel.wait_for_calls(1).await;
    // Five hours later an hourly scan crosses the 7-day threshold.
    channel.wait_for_calls(2).await;
    let calls = channel.calls();
    let crossed = calls[1].at - calls[0].at;
    assert!(
        (Duration::from_secs(5 * 3600)..Duration::from_secs(6 * 3600 + 2)).contains(&crossed),
        "{crossed:?}"
    );
    assert_eq!(thresholds(&warnings(&store).await), [30, 7]);
    running.shutdown(Duration::from_secs(1)).await;
}
