//! The transactional outbox and the other SQL-specific behaviour, written once
//! over the dialect layer and run per backend.

use chrono::Utc;
use clarion_core::notification::Notification;
use clarion_core::store::*;
use clarion_sql::SqlStore;
use clarion_sql::backend::{Backend, Stmt};

/// Event `i`, with the dedup key `outbox-{i}` (the same `i` is a duplicate).
fn new(i: usize) -> NewNotification {
    let event = clarion_testkit::events::success(&format!("key-{i}"), "ops")
        .with_dedup_key(format!("outbox-{i}"));
    NewNotification {
        notification: Notification::new(event, Utc::now()),
        channels: vec!["hook".into(), "mail".into()],
    }
}

async fn exec<B: Backend>(conn: &mut B::Connection, sql: &str) {
    B::exec(conn, Stmt::new(B::DIALECT, sql)).await.expect(sql);
}

async fn app_rows<B: Backend>(store: &SqlStore<B>) -> i64 {
    let mut conn = store.pool().acquire().await.unwrap();
    let rows = B::fetch(
        &mut conn,
        Stmt::new(B::DIALECT, "SELECT COUNT(*) AS n FROM kms_keys"),
    )
    .await
    .unwrap();
    B::get_i64(&rows[0], "n").unwrap()
}

async fn claimable<B: Backend>(store: &SqlStore<B>) -> usize {
    store
        .claim(ClaimRequest {
            now: Utc::now() + chrono::TimeDelta::seconds(1),
            lease: std::time::Duration::from_secs(30),
            limit: 100,
            exclude_channels: vec![],
        })
        .await
        .unwrap()
        .len()
}

/// The app's change and the notification commit together.
pub async fn outbox_commits_with_the_transaction<B: Backend>(store: &SqlStore<B>) {
    {
        let mut conn = store.pool().acquire().await.unwrap();
        exec::<B>(
            &mut conn,
            "CREATE TABLE kms_keys (id VARCHAR(64) NOT NULL PRIMARY KEY)",
        )
        .await;
    }
    let mut tx = store.pool().begin().await.unwrap();
    exec::<B>(&mut tx, "INSERT INTO kms_keys (id) VALUES ('key-1')").await;
    let Enqueued::Created {
        notification_id,
        deliveries,
    } = store.enqueue_in(&mut tx, new(1)).await.unwrap()
    else {
        panic!("expected a new notification");
    };
    assert_eq!(deliveries.len(), 2);
    // Not visible to others before the commit.
    assert_eq!(store.delivery(deliveries[0]).await.unwrap(), None);
    assert_eq!(store.unread_count("ops").await.unwrap(), 0);
    tx.commit().await.unwrap();
    assert_eq!(app_rows(store).await, 1);
    assert!(
        store
            .notification("ops", notification_id)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(claimable(store).await, 2);
}

/// A rollback takes the notification with it.
pub async fn outbox_rolls_back_with_the_transaction<B: Backend>(store: &SqlStore<B>) {
    {
        let mut conn = store.pool().acquire().await.unwrap();
        exec::<B>(
            &mut conn,
            "CREATE TABLE kms_keys (id VARCHAR(64) NOT NULL PRIMARY KEY)",
        )
        .await;
    }
    let mut tx = store.pool().begin().await.unwrap();
    exec::<B>(&mut tx, "INSERT INTO kms_keys (id) VALUES ('key-1')").await;
    let enqueued = store.enqueue_in(&mut tx, new(1)).await.unwrap();
    assert!(matches!(enqueued, Enqueued::Created { .. }));
    tx.rollback().await.unwrap();
    assert_eq!(app_rows(store).await, 0);
    assert_eq!(store.unread_count("ops").await.unwrap(), 0);
    assert_eq!(claimable(store).await, 0);
    // The dedup key is free again.
    assert!(matches!(
        store.enqueue(new(1)).await.unwrap(),
        Enqueued::Created { .. }
    ));
}

/// A duplicate inside the app's transaction stores nothing and leaves the
/// transaction usable (PostgreSQL would abort it on a unique violation).
pub async fn outbox_duplicate_keeps_the_transaction_usable<B: Backend>(store: &SqlStore<B>) {
    let Enqueued::Created {
        notification_id: first,
        ..
    } = store.enqueue(new(7)).await.unwrap()
    else {
        panic!("expected a new notification");
    };
    let mut tx = store.pool().begin().await.unwrap();
    assert_eq!(
        store.enqueue_in(&mut tx, new(7)).await.unwrap(),
        Enqueued::Duplicate { existing_id: first }
    );
    assert!(matches!(
        store.enqueue_in(&mut tx, new(8)).await.unwrap(),
        Enqueued::Created { .. }
    ));
    tx.commit().await.unwrap();
    assert_eq!(store.unread_count("ops").await.unwrap(), 2);
    assert_eq!(claimable(store).await, 4);
}

/// Input every dialect would store differently is refused up front.
pub async fn oversized_and_nul_input_is_invalid<B: Backend>(store: &SqlStore<B>) {
    let mut long_owner = new(1);
    long_owner.notification.event.owner = Some("o".repeat(256));
    assert!(matches!(
        store.enqueue(long_owner).await,
        Err(StoreError::Invalid { field, .. }) if field == "owner"
    ));
    let mut nul = new(2);
    nul.notification.event.subject.id = "key\0".into();
    assert!(matches!(
        store.enqueue(nul).await,
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(store.counts().await.unwrap(), vec![]);
}

/// Purge works through a large backlog in bounded batches.
pub async fn purge_in_bounded_batches<B: Backend>(store: &SqlStore<B>) {
    let now = Utc::now();
    for i in 0..25 {
        store.enqueue(new(100 + i)).await.unwrap();
    }
    let claims = store
        .claim(ClaimRequest {
            now: now + chrono::TimeDelta::seconds(1),
            lease: std::time::Duration::from_secs(30),
            limit: 1000,
            exclude_channels: vec![],
        })
        .await
        .unwrap();
    assert_eq!(claims.len(), 50);
    for claim in claims {
        let outcome = Outcome::Sent {
            receipt: Default::default(),
            at: now,
        };
        store
            .complete(claim.delivery.id, claim.token, outcome)
            .await
            .unwrap();
    }
    let later = now + chrono::TimeDelta::days(1);
    let mut batches = Vec::new();
    loop {
        let purged = store.purge(later, 10).await.unwrap();
        if purged == 0 {
            break;
        }
        batches.push(purged);
    }
    assert_eq!(batches, vec![10, 10, 5]);
    assert_eq!(store.counts().await.unwrap(), vec![]);
}
