//! `SqlStore::emit_in` + `Notifier::wake`: the transactional outbox through
//! the notifier, with the notifier's semantics (routing, validation,
//! duplicate and unrouted outcomes) and delivery by its dispatcher.
//!
//! The dispatcher polls only every hour here and the clock is manual, so a
//! delivery can only come from `wake`; "nothing was delivered" is asserted
//! after the dispatcher demonstrably ran a claim round (`CountingStore`),
//! never after a sleep.

use std::sync::Arc;
use std::time::Duration;

use clarion_core::clock::ManualClock;
use clarion_core::config::Config;
use clarion_core::event::{KeyEvent, ObjectType, RotationFailure, Subject};
use clarion_core::notifier::{EmitError, EmitOutcome, Notifier, RunningNotifier};
use clarion_core::store::{InboxStore, NotificationsStore, OutboxStore};
use clarion_sql::SqlStore;
use clarion_sql::backend::{Backend, Stmt};
use clarion_testkit::counting::CountingStore;
use clarion_testkit::recording::RecordingChannel;

const CONFIG: &str = r#"
[delivery]
poll_interval = "1h"

[[routes]]
kinds = ["rotation_success", "rotation_failure"]
channels = ["rec"]
"#;

/// Only a hang turns into a failure here; no assertion depends on time.
const BOUND: Duration = Duration::from_secs(60);

struct Kms<B: Backend> {
    store: SqlStore<B>,
    counting: Arc<CountingStore<SqlStore<B>>>,
    notifier: Notifier,
    channel: RecordingChannel,
    running: RunningNotifier,
}

impl<B: Backend> Kms<B>
where
    SqlStore<B>: NotificationsStore,
{
    /// A notifier on `store`, started, after its dispatcher's first (empty)
    /// claim round: from here on it sleeps until woken (or for an hour).
    async fn start(store: &SqlStore<B>) -> Self {
        let mut conn = store.pool().acquire().await.unwrap();
        exec::<B>(
            &mut conn,
            "CREATE TABLE kms_keys (id VARCHAR(64) NOT NULL PRIMARY KEY)",
        )
        .await;
        drop(conn);
        let counting = Arc::new(CountingStore::new(store.clone()));
        let channel = RecordingChannel::new();
        let notifier = Notifier::builder()
            .config(Config::from_toml_str(CONFIG).unwrap())
            .shared_store(counting.clone())
            .channel("rec", channel.clone())
            .clock(ManualClock::default())
            .build()
            .unwrap();
        let running = notifier.start();
        let kms = Kms {
            store: store.clone(),
            counting,
            notifier,
            channel,
            running,
        };
        kms.claim_round_after(0).await;
        kms
    }

    /// Waits until the dispatcher finished a claim round after round `n`.
    async fn claim_round_after(&self, n: usize) {
        tokio::time::timeout(BOUND, async {
            while self.counting.claims() <= n {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await
        .expect("the dispatcher runs a claim round");
    }

    async fn keys(&self) -> i64 {
        let mut conn = self.store.pool().acquire().await.unwrap();
        let rows = B::fetch(
            &mut conn,
            Stmt::new(B::DIALECT, "SELECT COUNT(*) AS n FROM kms_keys"),
        )
        .await
        .unwrap();
        B::get_i64(&rows[0], "n").unwrap()
    }

    async fn stop(self) {
        self.running.shutdown(Duration::from_secs(5)).await;
    }
}

async fn exec<B: Backend>(conn: &mut B::Connection, sql: &str) {
    B::exec(conn, Stmt::new(B::DIALECT, sql)).await.expect(sql);
}

fn failure(key: &str) -> KeyEvent {
    KeyEvent::rotation_failure(
        Subject::new(key, ObjectType::SymmetricKey),
        RotationFailure {
            error: "HSM unreachable".into(),
            attempt: 1,
            next_attempt: None,
        },
    )
    .with_owner("ops")
}

/// Commit, then wake: the key row and the notification land together and
/// the dispatcher delivers without waiting for its hourly poll.
pub async fn emit_in_commits_and_wake_delivers<B: Backend>(store: &SqlStore<B>)
where
    SqlStore<B>: NotificationsStore,
{
    let kms = Kms::start(store).await;
    let mut tx = store.pool().begin().await.unwrap();
    exec::<B>(&mut tx, "INSERT INTO kms_keys (id) VALUES ('key-1')").await;
    let outcome = store
        .emit_in(&kms.notifier, &mut tx, &failure("key-1"))
        .await
        .unwrap();
    let EmitOutcome::Enqueued { id, channels } = outcome else {
        panic!("expected Enqueued, got {outcome:?}");
    };
    assert_eq!(channels, ["rec"]);
    // Invisible to everyone else until the commit.
    assert_eq!(store.unread_count("ops").await.unwrap(), 0);
    tx.commit().await.unwrap();
    assert_eq!(kms.keys().await, 1);
    assert!(store.notification("ops", id).await.unwrap().is_some());
    assert_eq!(kms.channel.call_count(), 0, "nothing before the wake");

    kms.notifier.wake();
    tokio::time::timeout(BOUND, kms.channel.wait_for_calls(1))
        .await
        .expect("wake makes the dispatcher deliver (its poll is an hour away)");
    let calls = kms.channel.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].delivery.notification.id, id);
    assert_eq!(calls[0].delivery.notification.event.subject.id, "key-1");
    kms.stop().await;
}

/// Rollback: neither the key row nor the notification is stored, and the
/// dispatcher, woken and done with a claim round, delivered nothing.
pub async fn emit_in_rolls_back_with_the_transaction<B: Backend>(store: &SqlStore<B>)
where
    SqlStore<B>: NotificationsStore,
{
    let kms = Kms::start(store).await;
    let mut tx = store.pool().begin().await.unwrap();
    exec::<B>(&mut tx, "INSERT INTO kms_keys (id) VALUES ('key-1')").await;
    let outcome = store
        .emit_in(&kms.notifier, &mut tx, &failure("key-1"))
        .await
        .unwrap();
    assert!(
        matches!(outcome, EmitOutcome::Enqueued { .. }),
        "{outcome:?}"
    );
    tx.rollback().await.unwrap();

    let rounds = kms.counting.claims();
    kms.notifier.wake();
    kms.claim_round_after(rounds).await;
    assert_eq!(kms.channel.call_count(), 0);
    assert_eq!(kms.keys().await, 0);
    assert_eq!(store.unread_count("ops").await.unwrap(), 0);
    assert_eq!(store.counts().await.unwrap(), vec![]);
    kms.stop().await;
}

/// Inside one transaction: a duplicate (of a committed emit), an invalid
/// event and an unrouted one are reported like `emit` reports them, and none
/// of them spoils the transaction.
pub async fn emit_in_duplicate_invalid_and_unrouted<B: Backend>(store: &SqlStore<B>)
where
    SqlStore<B>: NotificationsStore,
{
    let kms = Kms::start(store).await;
    let keyed = failure("key-1").with_dedup_key("rotation:key-1:v2");
    let EmitOutcome::Enqueued { id: first, .. } = kms.notifier.emit(&keyed).await.unwrap() else {
        panic!("expected Enqueued");
    };
    tokio::time::timeout(BOUND, kms.channel.wait_for_calls(1))
        .await
        .expect("emit wakes the dispatcher itself");

    let mut tx = store.pool().begin().await.unwrap();
    assert_eq!(
        store.emit_in(&kms.notifier, &mut tx, &keyed).await.unwrap(),
        EmitOutcome::Duplicate { existing_id: first }
    );
    let err = store
        .emit_in(&kms.notifier, &mut tx, &failure(" "))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EmitError::InvalidEvent { field, .. } if field == "subject.id"),
        "{err}"
    );
    // approaching_deadline has no route here: kept for the inbox only.
    let unrouted = deadline_event("key-2");
    let EmitOutcome::Unrouted { id: inbox_only } = store
        .emit_in(&kms.notifier, &mut tx, &unrouted)
        .await
        .unwrap()
    else {
        panic!("expected Unrouted");
    };
    exec::<B>(&mut tx, "INSERT INTO kms_keys (id) VALUES ('key-2')").await;
    let EmitOutcome::Enqueued { id: second, .. } = store
        .emit_in(&kms.notifier, &mut tx, &failure("key-2"))
        .await
        .unwrap()
    else {
        panic!("expected Enqueued");
    };
    tx.commit().await.unwrap();
    kms.notifier.wake();
    tokio::time::timeout(BOUND, kms.channel.wait_for_calls(2))
        .await
        .expect("the second key's failure is delivered after the wake");

    assert_eq!(kms.keys().await, 1);
    assert_eq!(store.unread_count("ops").await.unwrap(), 3);
    assert!(
        store
            .notification("ops", inbox_only)
            .await
            .unwrap()
            .is_some()
    );
    let delivered: Vec<_> = kms
        .channel
        .calls()
        .iter()
        .map(|c| c.delivery.notification.id)
        .collect();
    assert_eq!(delivered, [first, second]);
    kms.stop().await;
}

/// An `approaching_deadline` for `key`, owned by `ops`.
pub fn deadline_event(key: &str) -> KeyEvent {
    clarion_testkit::events::deadline(key, chrono::Utc::now() + chrono::TimeDelta::days(5), 7)
        .with_owner("ops")
}
