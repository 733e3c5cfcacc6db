//! Batches on SQL stores beyond the conformance suite: a real store failure
//! mid-batch (a trigger that raises for a marked delivery row, installed on
//! this test's fresh database) stores none of the batch, on every path
//! (`enqueue_batch`, `Notifier::emit_batch`, `SqlStore::emit_batch_in`); and
//! the transactional outbox for batches commits or rolls back with the
//! caller's transaction.

use clarion_core::config::Config;
use clarion_core::event::{KeyEvent, ObjectType, RotationFailure, Subject};
use clarion_core::notification::Notification;
use clarion_core::notifier::{EmitError, EmitOutcome, Notifier};
use clarion_core::store::{
    Enqueued, InboxStore, NewNotification, NotificationsStore, OutboxStore, StoreError,
};
use clarion_sql::SqlStore;
use clarion_sql::backend::{Backend, Stmt};
use clarion_testkit::recording::RecordingChannel;

/// Events labelled `poison = "yes"` go to the channel the trigger refuses.
const CONFIG: &str = r#"
[[routes]]
labels = { poison = "yes" }
channels = ["poison"]

[[routes]]
channels = ["ops"]
"#;

fn notifier<B: Backend>(store: &SqlStore<B>) -> Notifier
where
    SqlStore<B>: NotificationsStore,
{
    Notifier::builder()
        .config(Config::from_toml_str(CONFIG).unwrap())
        .store(store.clone())
        .channel("ops", RecordingChannel::new())
        .channel("poison", RecordingChannel::new())
        .build()
        .unwrap()
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
    .with_dedup_key(format!("failure:{key}"))
}

fn events(n: usize, poisoned: Option<usize>) -> Vec<KeyEvent> {
    (0..n)
        .map(|i| {
            let event = failure(&format!("key-{i}"));
            if Some(i) == poisoned {
                event.with_label("poison", "yes")
            } else {
                event
            }
        })
        .collect()
}

async fn exec<B: Backend>(store: &SqlStore<B>, sql: &str) {
    let mut conn = store.pool().acquire().await.unwrap();
    B::exec(&mut conn, Stmt::new(B::DIALECT, sql))
        .await
        .expect(sql);
}

/// Makes every insert of a delivery on channel `poison` fail: the failure
/// comes after the batch's notifications were inserted, mid-transaction.
async fn install_poison_trigger<B: Backend>(store: &SqlStore<B>) {
    match B::LABEL {
        "SQLite" => {
            exec(
                store,
                "CREATE TRIGGER clarion_test_poison BEFORE INSERT ON clarion_deliveries \
                 WHEN NEW.channel = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned delivery row'); END",
            )
            .await
        }
        "PostgreSQL" => {
            exec(
                store,
                "CREATE FUNCTION clarion_test_poison() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN IF NEW.channel = 'poison' THEN RAISE EXCEPTION 'poisoned delivery row'; \
                 END IF; RETURN NEW; END $$",
            )
            .await;
            exec(
                store,
                "CREATE TRIGGER clarion_test_poison BEFORE INSERT ON clarion_deliveries \
                 FOR EACH ROW EXECUTE FUNCTION clarion_test_poison()",
            )
            .await
        }
        _ => {
            exec(
                store,
                "CREATE TRIGGER clarion_test_poison BEFORE INSERT ON clarion_deliveries \
                 FOR EACH ROW BEGIN IF NEW.channel = 'poison' THEN \
                 SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'poisoned delivery row'; END IF; END",
            )
            .await
        }
    }
}

async fn nothing_stored<B: Backend>(store: &SqlStore<B>)
where
    SqlStore<B>: NotificationsStore,
{
    assert_eq!(store.counts().await.unwrap(), vec![], "no delivery stored");
    assert_eq!(
        store.unread_count("ops").await.unwrap(),
        0,
        "no notification stored"
    );
}

/// A failure in the middle of a batch stores none of it, whichever path
/// wrote it; the same batch without the failure is then stored whole.
pub async fn a_store_failure_mid_batch_stores_none_of_it<B: Backend>(store: &SqlStore<B>)
where
    SqlStore<B>: NotificationsStore,
{
    install_poison_trigger(store).await;
    let notifier = notifier(store);

    // The store contract: 1,000 entries, the 500th poisoned.
    let batch: Vec<NewNotification> = events(1_000, Some(500))
        .into_iter()
        .map(|event| {
            let poisoned = event.labels.contains_key("poison");
            NewNotification {
                notification: Notification::new(event, chrono::Utc::now()),
                channels: vec![if poisoned { "poison" } else { "ops" }.to_owned()],
            }
        })
        .collect();
    let err = store.enqueue_batch(batch).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Backend { message, .. } if message.contains("poisoned delivery row")),
        "{err}"
    );
    nothing_stored(store).await;

    // Notifier::emit_batch: the call fails as a whole, nothing stored.
    let err = notifier
        .emit_batch(&events(1_000, Some(500)))
        .await
        .unwrap_err();
    assert!(matches!(err, EmitError::Store(_)), "{err}");
    nothing_stored(store).await;

    // The transactional outbox: the error, then the caller rolls back.
    let mut tx = store.pool().begin().await.unwrap();
    let err = store
        .emit_batch_in(&notifier, &mut tx, &events(1_000, Some(500)))
        .await
        .unwrap_err();
    assert!(matches!(err, EmitError::Store(_)), "{err}");
    tx.rollback().await.unwrap();
    nothing_stored(store).await;

    // Retrying the whole batch without the poisoned event stores all of it:
    // no dedup key was left taken by the failed attempts.
    let results = notifier.emit_batch(&events(1_000, None)).await.unwrap();
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(EmitOutcome::Enqueued { .. }))),
        "{:?}",
        results
            .iter()
            .find(|r| !matches!(r, Ok(EmitOutcome::Enqueued { .. })))
    );
    assert_eq!(store.unread_count("ops").await.unwrap(), 1_000);
}

/// `emit_batch_in`: the batch commits or rolls back with the caller's
/// transaction, with `emit_batch`'s per-event answers.
pub async fn emit_batch_in_follows_the_transaction<B: Backend>(store: &SqlStore<B>)
where
    SqlStore<B>: NotificationsStore,
{
    let notifier = notifier(store);
    let mut batch = events(3, None);
    batch.push(failure(" "));
    batch.push(failure("key-0")); // the same dedup key as the first

    let mut tx = store.pool().begin().await.unwrap();
    let results = store
        .emit_batch_in(&notifier, &mut tx, &batch)
        .await
        .unwrap();
    assert!(matches!(results[0], Ok(EmitOutcome::Enqueued { .. })));
    tx.rollback().await.unwrap();
    nothing_stored(store).await;

    let mut tx = store.pool().begin().await.unwrap();
    let results = store
        .emit_batch_in(&notifier, &mut tx, &batch)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let Ok(EmitOutcome::Enqueued { id: first, .. }) = results[0] else {
        panic!("{:?}", results[0]);
    };
    assert!(matches!(results[1], Ok(EmitOutcome::Enqueued { .. })));
    assert!(matches!(results[2], Ok(EmitOutcome::Enqueued { .. })));
    assert!(
        matches!(&results[3], Err(EmitError::InvalidEvent { field, .. }) if field == "subject.id")
    );
    assert_eq!(
        results[4],
        Ok(EmitOutcome::Duplicate { existing_id: first })
    );
    assert_eq!(store.unread_count("ops").await.unwrap(), 3);

    // enqueue_batch_in, the lower level, in a transaction too.
    let mut tx = store.pool().begin().await.unwrap();
    let again = NewNotification {
        notification: Notification::new(failure("key-1"), chrono::Utc::now()),
        channels: vec!["ops".into()],
    };
    let answers = store.enqueue_batch_in(&mut tx, vec![again]).await.unwrap();
    tx.commit().await.unwrap();
    assert!(
        matches!(answers[0], Enqueued::Duplicate { .. }),
        "{answers:?}"
    );
}
