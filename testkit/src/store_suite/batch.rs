//! Batches on every store: `enqueue_batch` (all or nothing, dedup inside the
//! batch, at most `MAX_BATCH`), `taken_dedup_keys`, and `Notifier::emit_batch`
//! over the store (an invalid event among valid ones, a call larger than
//! `MAX_BATCH`). A store failure mid-batch needs a way to make the store
//! fail, so it is tested per store (clarion-sql: a trigger).

use clarion_core::config::Config;
use clarion_core::notifier::{EmitError, EmitOutcome, MAX_BATCH, Notifier};

use super::*;

fn keyed(subject: &str, key: Option<&str>) -> KeyEvent {
    let mut e = event(subject, Some("ops"));
    e.dedup_key = key.map(str::to_owned);
    e
}

fn new(event: KeyEvent, channels: &[&str]) -> NewNotification {
    new_notification(&Notification::new(event, base_time()), channels)
}

fn created(result: &Enqueued) -> (Uuid, usize) {
    match result {
        Enqueued::Created {
            notification_id,
            deliveries,
        } => (*notification_id, deliveries.len()),
        other => panic!("expected Created, got {other:?}"),
    }
}

/// Created, duplicate of a stored key, duplicate of an earlier entry, and
/// unrouted entries in one batch, answered in order.
pub async fn enqueue_batch_answers_each_entry_in_order(store: SharedStore) {
    let (held, _) = put_event(&store, keyed("key-0", Some("held")), &["ops"], base_time()).await;
    let batch = vec![
        new(keyed("key-1", Some("a")), &["ops", "audit"]),
        new(keyed("key-2", Some("held")), &["ops"]),
        new(keyed("key-3", None), &[]),
        new(keyed("key-4", Some("a")), &["ops"]),
        new(keyed("key-5", None), &["audit"]),
    ];
    let ids: Vec<Uuid> = batch.iter().map(|n| n.notification.id).collect();
    let results = store.enqueue_batch(batch).await.expect("enqueue_batch");
    assert_eq!(results.len(), 5);
    assert_eq!(created(&results[0]), (ids[0], 2));
    assert_eq!(
        results[1],
        Enqueued::Duplicate {
            existing_id: held.id
        }
    );
    assert_eq!(created(&results[2]), (ids[2], 0));
    assert_eq!(
        results[3],
        Enqueued::Duplicate {
            existing_id: ids[0]
        },
        "the later of two equal keys in a batch is a duplicate of the earlier"
    );
    assert_eq!(created(&results[4]), (ids[4], 1));
    assert_eq!(
        counts(&store).await,
        vec![count("audit", Pending, 2), count("ops", Pending, 2)]
    );
    let stored: BTreeSet<Uuid> = notification_ids(&inbox(&store, "ops", 10).await)
        .into_iter()
        .collect();
    assert_eq!(stored, BTreeSet::from([held.id, ids[0], ids[2], ids[4]]));
    // The deliveries are claimable like enqueue's.
    let claims = claim(&store, base_time(), LEASE, 10).await;
    assert_eq!(claims.len(), 4);
}

/// A batch whose earlier entry's key was already taken makes the later
/// equal key a duplicate of the holder, not of the earlier entry.
pub async fn enqueue_batch_copies_of_a_held_key_name_the_holder(store: SharedStore) {
    let (held, _) = put_event(&store, keyed("key-0", Some("k")), &["ops"], base_time()).await;
    let results = store
        .enqueue_batch(vec![
            new(keyed("key-1", Some("k")), &["ops"]),
            new(keyed("key-2", Some("k")), &["ops"]),
        ])
        .await
        .expect("enqueue_batch");
    let duplicate = Enqueued::Duplicate {
        existing_id: held.id,
    };
    assert_eq!(results, vec![duplicate.clone(), duplicate]);
    assert_eq!(counts(&store).await, vec![count("ops", Pending, 1)]);
}

/// An invalid entry refuses the whole batch, naming the entry and field;
/// nothing of it is stored. An empty batch stores nothing and succeeds.
pub async fn enqueue_batch_with_an_invalid_entry_stores_nothing(store: SharedStore) {
    let mut bad = keyed("key-2", Some("b"));
    bad.owner = Some("o\0".into());
    let batch = vec![new(keyed("key-1", Some("a")), &["ops"]), new(bad, &["ops"])];
    match store.enqueue_batch(batch).await {
        Err(StoreError::Invalid { field, .. }) => assert_eq!(field, "batch[1].owner"),
        other => panic!("expected StoreError::Invalid, got {other:?}"),
    }
    assert_eq!(counts(&store).await, vec![]);
    assert!(inbox(&store, "ops", 10).await.is_empty());
    assert_eq!(store.enqueue_batch(Vec::new()).await, Ok(Vec::new()));
    // The first entry's key is still free.
    put_event(&store, keyed("key-1", Some("a")), &["ops"], base_time()).await;
}

/// `MAX_BATCH` entries are stored in one call; one more is refused whole.
pub async fn enqueue_batch_takes_at_most_max_batch(store: SharedStore) {
    let batch = |n: usize, tag: &str| -> Vec<NewNotification> {
        (0..n)
            .map(|i| {
                new(
                    keyed(&format!("key-{i}"), Some(&format!("{tag}-{i}"))),
                    &["ops"],
                )
            })
            .collect()
    };
    match store.enqueue_batch(batch(MAX_BATCH + 1, "over")).await {
        Err(StoreError::Invalid { field, .. }) => assert_eq!(field, "batch"),
        other => panic!("expected StoreError::Invalid for batch, got {other:?}"),
    }
    assert_eq!(counts(&store).await, vec![]);
    let results = store
        .enqueue_batch(batch(MAX_BATCH, "full"))
        .await
        .expect("a full batch");
    assert_eq!(results.len(), MAX_BATCH);
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Enqueued::Created { .. }))
    );
    assert_eq!(
        counts(&store).await,
        vec![count("ops", Pending, MAX_BATCH as u64)]
    );
}

/// `taken_dedup_keys` reports exactly the held keys, for any number of keys.
pub async fn taken_dedup_keys_reports_held_keys(store: SharedStore) {
    let batch: Vec<NewNotification> = (0..10)
        .map(|i| new(keyed(&format!("key-{i}"), Some(&format!("k{i}"))), &[]))
        .collect();
    store.enqueue_batch(batch).await.expect("enqueue_batch");
    put_event(&store, keyed("key-x", None), &[], base_time()).await;
    // 2,500 keys, 10 held (exact match only: case and spaces matter).
    let mut asked: Vec<String> = (0..2_490).map(|i| format!("free-{i}")).collect();
    asked.extend((0..10).map(|i| format!("k{i}")));
    asked.push("K1".into());
    asked.push("k1 ".into());
    let taken = store.taken_dedup_keys(&asked).await.expect("lookup");
    let expected: HashSet<String> = (0..10).map(|i| format!("k{i}")).collect();
    assert_eq!(taken, expected);
    assert!(store.taken_dedup_keys(&[]).await.expect("empty").is_empty());
}

fn notifier(store: &SharedStore) -> Notifier {
    let mut config = Config::default();
    config.add_route(clarion_core::config::RouteConfig::to(["ops"]));
    Notifier::builder()
        .config(config)
        .shared_store(store.clone())
        .channel("ops", crate::recording::RecordingChannel::new())
        .build()
        .expect("a notifier")
}

/// `emit_batch`: an invalid event gets its own `InvalidEvent`, the others
/// are stored; dedup inside the call; outcomes as `emit` reports them.
pub async fn emit_batch_reports_each_event(store: SharedStore) {
    let notifier = notifier(&store);
    let mut nul = keyed("key-2", Some("b"));
    nul.data["error"] = "bad\0".into();
    let events = vec![
        keyed("key-1", Some("a")),
        nul,
        keyed("", Some("c")),
        keyed("key-4", Some("a")),
        keyed("key-5", None),
    ];
    let results = notifier.emit_batch(&events).await.expect("emit_batch");
    assert_eq!(results.len(), 5);
    let Ok(EmitOutcome::Enqueued {
        id: first,
        channels,
    }) = &results[0]
    else {
        panic!("{:?}", results[0]);
    };
    assert_eq!(channels, &vec!["ops".to_owned()]);
    let field = |r: &Result<EmitOutcome, EmitError>| match r {
        Err(EmitError::InvalidEvent { field, .. }) => field.clone(),
        other => panic!("expected InvalidEvent, got {other:?}"),
    };
    assert_eq!(field(&results[1]), "data.error");
    assert_eq!(field(&results[2]), "subject.id");
    assert_eq!(
        results[3],
        Ok(EmitOutcome::Duplicate {
            existing_id: *first
        })
    );
    assert!(matches!(results[4], Ok(EmitOutcome::Enqueued { .. })));
    assert_eq!(counts(&store).await, vec![count("ops", Pending, 2)]);
    // Emitting the same call again stores nothing new.
    let again = notifier.emit_batch(&events[..1]).await.expect("again");
    assert_eq!(
        again,
        vec![Ok(EmitOutcome::Duplicate {
            existing_id: *first
        })]
    );
}

/// A call larger than `MAX_BATCH` is split into transactions of at most
/// that size; every event is reported, dedup holds across the split.
pub async fn emit_batch_larger_than_max_batch_is_split(store: SharedStore) {
    let notifier = notifier(&store);
    let total = 2 * MAX_BATCH + 500;
    let mut events: Vec<KeyEvent> = (0..total)
        .map(|i| keyed(&format!("key-{i}"), Some(&format!("k{i}"))))
        .collect();
    // In the third transaction, a duplicate of an event of the first.
    events[2 * MAX_BATCH + 10].dedup_key = Some("k7".into());
    let results = notifier.emit_batch(&events).await.expect("emit_batch");
    assert_eq!(results.len(), total);
    let Ok(EmitOutcome::Enqueued { id: seventh, .. }) = &results[7] else {
        panic!("{:?}", results[7]);
    };
    assert_eq!(
        results[2 * MAX_BATCH + 10],
        Ok(EmitOutcome::Duplicate {
            existing_id: *seventh
        })
    );
    let enqueued = results
        .iter()
        .filter(|r| matches!(r, Ok(EmitOutcome::Enqueued { .. })))
        .count();
    assert_eq!(enqueued, total - 1);
    assert_eq!(
        counts(&store).await,
        vec![count("ops", Pending, (total - 1) as u64)]
    );
}
