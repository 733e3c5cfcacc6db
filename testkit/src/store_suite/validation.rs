//! Event validation on every store: core's one check
//! ([`clarion_core::validation`]) runs in `emit` and in the store's own
//! `enqueue`, so a NUL or an over-long id is refused the same way on every
//! store, naming the field, and nothing is stored.

use clarion_core::config::Config;
use clarion_core::notifier::{EmitError, EmitOutcome, Notifier};
use clarion_core::store::StoreError;

use super::*;

fn notifier(store: &SharedStore, max_event_bytes: usize) -> Notifier {
    let mut config = Config::default();
    config.max_event_bytes = max_event_bytes;
    Notifier::builder()
        .config(config)
        .shared_store(store.clone())
        .build()
        .expect("a notifier without channels")
}

fn invalid_field(result: Result<EmitOutcome, EmitError>) -> String {
    match result {
        Err(EmitError::InvalidEvent { field, .. }) => field,
        other => panic!("expected EmitError::InvalidEvent, got {other:?}"),
    }
}

async fn nothing_stored(store: &SharedStore, owner: &str) {
    assert_eq!(counts(store).await, vec![], "no delivery may be stored");
    assert!(
        inbox(store, owner, 10).await.is_empty(),
        "no notification may be stored"
    );
}

/// `emit` answers `InvalidEvent` naming the field for a NUL in `owner` or
/// in `data.error` (never a store error), and stores nothing.
pub async fn emit_refuses_a_nul_as_an_invalid_event(store: SharedStore) {
    let notifier = notifier(&store, clarion_core::validation::DEFAULT_MAX_EVENT_BYTES);
    let bad_owner = event("key-1", Some("al\0ice"));
    assert_eq!(invalid_field(notifier.emit(&bad_owner).await), "owner");
    let mut bad_data = event("key-1", Some("alice"));
    bad_data.data["error"] = "HSM\0down".into();
    assert_eq!(invalid_field(notifier.emit(&bad_data).await), "data.error");
    nothing_stored(&store, "alice").await;
    // The same events without the NUL are stored.
    let good = event("key-1", Some("alice"));
    assert!(matches!(
        notifier.emit(&good).await,
        Ok(EmitOutcome::Unrouted { .. })
    ));
    assert_eq!(inbox(&store, "alice", 10).await.len(), 1);
}

/// An event over `max_event_bytes` is `InvalidEvent` naming its largest
/// field and both sizes; raising the setting lets the store keep it whole.
pub async fn emit_refuses_an_oversized_event(store: SharedStore) {
    let mut big = event("key-1", Some("alice"));
    big.data["error"] = "x".repeat(2 * 1024 * 1024).into();
    let size = serde_json::to_vec(&big).expect("event JSON").len();
    let err = notifier(&store, 64 * 1024).emit(&big).await.unwrap_err();
    let EmitError::InvalidEvent { field, message } = &err else {
        panic!("expected InvalidEvent, got {err:?}");
    };
    assert_eq!(field, "data.error");
    assert!(
        message.contains(&format!("{size} bytes")) && message.contains("max_event_bytes = 65536"),
        "{message}"
    );
    nothing_stored(&store, "alice").await;
    let roomy = notifier(&store, 4 * 1024 * 1024);
    assert!(matches!(
        roomy.emit(&big).await,
        Ok(EmitOutcome::Unrouted { .. })
    ));
    let kept = inbox(&store, "alice", 10).await;
    assert_eq!(kept.len(), 1);
    assert_eq!(
        kept[0].event.data["error"].as_str().map(str::len),
        Some(2 * 1024 * 1024)
    );
}

/// The store's own `enqueue` runs the same check (for callers that bypass
/// the notifier): `StoreError::Invalid` naming the field, nothing stored.
pub async fn enqueue_refuses_what_validation_refuses(store: SharedStore) {
    type Spoil = Box<dyn Fn(&mut KeyEvent)>;
    let cases: [(&str, Spoil); 5] = [
        ("owner", Box::new(|e| e.owner = Some("a\0".into()))),
        ("owner", Box::new(|e| e.owner = Some("é".repeat(256)))),
        ("subject.id", Box::new(|e| e.subject.id = String::new())),
        ("dedup_key", Box::new(|e| e.dedup_key = Some("k\0".into()))),
        ("data.error", Box::new(|e| e.data["error"] = "\0".into())),
    ];
    for (field, spoil) in cases {
        let mut bad = event("key-1", Some("alice"));
        spoil(&mut bad);
        let notification = Notification::new(bad, base_time());
        match store
            .enqueue(new_notification(&notification, &["ops"]))
            .await
        {
            Err(StoreError::Invalid { field: got, .. }) => assert_eq!(got, field),
            other => panic!("{field}: expected StoreError::Invalid, got {other:?}"),
        }
    }
    nothing_stored(&store, "alice").await;
    // 255 two-byte characters fit: limits count characters on every store.
    let mut longest = event("key-1", Some(&"é".repeat(255)));
    longest.subject.id = "ü".repeat(255);
    let (notification, _) = put_event(&store, longest, &["ops"], base_time()).await;
    let owner = notification.event.owner.clone().expect("owner");
    assert_eq!(inbox(&store, &owner, 10).await, vec![notification]);
}
