//! The store conformance suite: one contract, checked against every store.
//!
//! Every case is a public `async fn` taking a fresh, empty, isolated store as
//! a [`SharedStore`]; [`store_conformance_tests!`](crate::store_conformance_tests)
//! turns the whole list into one `#[test]` per case (each on its own
//! multi-threaded tokio runtime with 4 workers), so a store crate needs one
//! line, and every case is reported on its own:
//!
//! ```
//! // tests/memory_store.rs
//! clarion_testkit::store_conformance_tests!(async { clarion_core::memory::MemoryStore::new() });
//! # fn main() {}
//! ```
//!
//! The factory is an expression evaluated once per case inside that case's
//! runtime: an `async` block, or a call to an `async fn`, whose output is the
//! store (any [`NotificationsStore`]). A SQL store's factory creates a fresh
//! database or schema per call. To run the suite against several stores in
//! one test file, invoke the macro once per `mod`. A single case can also be
//! called directly: `store_suite::claim_respects_limit(Arc::new(store)).await`.
//!
//! # What the suite pins down
//!
//! No case sleeps or reads the wall clock: every method gets an explicit time
//! derived from [`base_time`] (which has a microsecond fraction, the precision
//! SQL stores keep; every time the suite passes is whole microseconds).
//! Beyond the doc comments of [`clarion_core::store`], the suite holds stores
//! to these readings of the contract:
//!
//! - A pending delivery is due when `next_attempt_at <= now`; a lease has
//!   expired when `lease_until <= now` (both bounds inclusive).
//! - `attempts` grows only with recorded outcomes: a claim whose lease
//!   expires without an outcome does not count, so the next claim hands out
//!   the same `Delivery::attempt` again.
//! - An outcome is accepted under the current token even after the lease
//!   expired, as long as no one claimed the delivery again.
//! - Completing an unknown delivery is [`StoreError::StaleLease`] too.
//! - `Page::next` is `None` on the last page that has items, also when it is
//!   exactly full: no listing ever ends with an empty page.
//! - Owners and dedup keys are compared exactly (case and trailing spaces
//!   matter), so one owner never sees another's notifications.
//! - `purge` keeps a notification created exactly at `before`.
//! - The delivery record's fields follow the state: `next_attempt_at` only
//!   when pending, `lease_until` only when in flight, `updated_at` is the time
//!   of the last change (the claim's `now`, the outcome's `at`, the requeue's
//!   `now`; `created_at` at first).
//!
//! Left unspecified on purpose: whether a dedup key can be reused after its
//! notification was purged, whether `last_error` survives a later success or
//! a requeue, the order of the claims within one `claim` result, and the
//! order of `counts`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use clarion_core::channel::Receipt;
use clarion_core::event::{
    EventKind, KeyEvent, ObjectType, RotationFailure, RotationSuccess, Severity, Subject,
};
use clarion_core::notification::Notification;
use clarion_core::store::{
    Claim, ClaimRequest, DeliveryFilter, DeliveryRecord, DeliveryStatus, Enqueued, LeaseToken,
    NewNotification, NotificationsStore, Outcome, Page, PageRequest, Requeued, StoreError,
};
use serde_json::json;
use tokio::task::JoinSet;
use uuid::Uuid;

use DeliveryStatus::{Dead, InFlight, Pending, Sent};

mod batch;
mod validation;
pub use batch::*;
pub use validation::*;

/// The store under test, shared by the tasks of a case.
pub type SharedStore = Arc<dyn NotificationsStore>;

/// Runs one case against a store made by `factory`, on a fresh multi-threaded
/// tokio runtime with 4 worker threads (what the generated tests call).
pub fn run<S, F, C, Fut>(factory: F, case: C)
where
    S: NotificationsStore + 'static,
    F: Future<Output = S>,
    C: FnOnce(SharedStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime for the store conformance suite");
    runtime.block_on(async move {
        let store: SharedStore = Arc::new(factory.await);
        case(store).await;
    });
}

/// Expands to one `#[test]` per case of the store conformance suite
/// ([`store_suite`](crate::store_suite)), each running against a fresh store.
///
/// The argument is an expression evaluated once per test, inside that test's
/// tokio runtime (multi-threaded, 4 workers), that yields a future of the
/// store: an `async` block or a call to an `async fn`. The store must be
/// fresh, empty and isolated from every other test's store.
///
/// ```
/// mod memory {
///     clarion_testkit::store_conformance_tests!(async {
///         clarion_core::memory::MemoryStore::new()
///     });
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! store_conformance_tests {
    (@cases ($factory:expr) $($case:ident)*) => {
        $(
            #[test]
            fn $case() {
                $crate::store_suite::run($factory, $crate::store_suite::$case);
            }
        )*
    };
    ($factory:expr $(,)?) => {
        $crate::store_conformance_tests!(@cases ($factory)
            empty_store_has_nothing
            enqueue_creates_one_pending_delivery_per_channel
            enqueue_keeps_unrouted_notification_for_the_inbox
            enqueue_round_trips_every_notification_field
            enqueue_with_taken_dedup_key_creates_nothing
            dedup_keys_are_exact_and_optional
            dedup_race_has_exactly_one_winner
            claim_takes_only_due_deliveries
            claim_takes_oldest_due_first
            claim_respects_limit
            claim_skips_excluded_channels
            claim_leases_and_numbers_the_attempt
            leased_delivery_is_not_claimable_again
            expired_lease_is_claimable_with_a_new_token
            outcome_after_lease_expiry_without_reclaim_is_accepted
            complete_sent_records_receipt
            complete_retry_schedules_next_attempt
            complete_dead_records_reason
            complete_rejects_stale_tokens
            complete_twice_with_one_token_is_rejected
            requeue_revives_a_dead_delivery
            requeue_rejects_live_sent_and_unknown_deliveries
            deliveries_list_newest_first_with_filters
            deliveries_paging_yields_each_once
            filtered_paging_never_ends_with_an_empty_page
            counts_by_channel_and_status
            purge_removes_only_old_finished_notifications
            purge_respects_limit
            inbox_lists_owner_notifications_newest_first
            inbox_lookup_is_owner_scoped
            mark_read_is_owner_scoped_and_keeps_first_read_time
            mark_all_read_counts_changes
            ownerless_notifications_are_in_no_inbox
            concurrent_claimers_claim_each_delivery_once
            concurrent_claim_and_enqueue_lose_nothing
            concurrent_complete_and_reclaim_keep_fencing
            concurrent_completes_with_one_token_have_one_winner
            concurrent_read_marks_count_each_notification_once
            emit_refuses_a_nul_as_an_invalid_event
            emit_refuses_an_oversized_event
            enqueue_refuses_what_validation_refuses
            enqueue_batch_answers_each_entry_in_order
            enqueue_batch_copies_of_a_held_key_name_the_holder
            enqueue_batch_with_an_invalid_entry_stores_nothing
            enqueue_batch_takes_at_most_max_batch
            taken_dedup_keys_reports_held_keys
            emit_batch_reports_each_event
            emit_batch_larger_than_max_batch_is_split
        );
    };
}

// ------------------------------------------------------------------ helpers

/// The fixed instant every case starts from (2031-05-17T09:00:00.123456Z):
/// far from today, and with a microsecond fraction, so a store that keeps
/// less precision or substitutes its own clock fails.
pub fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 5, 17, 9, 0, 0).unwrap() + TimeDelta::microseconds(123_456)
}

/// `base_time()` plus `secs` seconds.
fn t(secs: i64) -> DateTime<Utc> {
    base_time() + TimeDelta::seconds(secs)
}

fn us(micros: i64) -> TimeDelta {
    TimeDelta::microseconds(micros)
}

const LEASE: Duration = Duration::from_secs(30);
const HOUR: Duration = Duration::from_secs(3600);

/// A `rotation_failure` about `subject`, owned by `owner`, that occurred
/// before the base time.
fn event(subject: &str, owner: Option<&str>) -> KeyEvent {
    let mut event = KeyEvent::rotation_failure(
        Subject::new(subject, ObjectType::SymmetricKey),
        RotationFailure {
            error: "HSM unreachable".into(),
            attempt: 1,
            next_attempt: None,
        },
    )
    .at(base_time() - TimeDelta::minutes(5));
    event.owner = owner.map(str::to_owned);
    event
}

fn new_notification(notification: &Notification, channels: &[&str]) -> NewNotification {
    NewNotification {
        notification: notification.clone(),
        channels: channels.iter().map(|c| (*c).to_owned()).collect(),
    }
}

/// Enqueues `event` created at `created_at` on `channels`; expects it created.
async fn put_event(
    store: &SharedStore,
    event: KeyEvent,
    channels: &[&str],
    created_at: DateTime<Utc>,
) -> (Notification, Vec<Uuid>) {
    let notification = Notification::new(event, created_at);
    let result = store
        .enqueue(new_notification(&notification, channels))
        .await
        .expect("enqueue");
    match result {
        Enqueued::Created {
            notification_id,
            deliveries,
        } => {
            assert_eq!(
                notification_id, notification.id,
                "enqueue must keep the notification's id"
            );
            assert_eq!(
                deliveries.len(),
                channels.len(),
                "one delivery per channel: {channels:?}"
            );
            (notification, deliveries)
        }
        other => panic!("expected the notification to be created, got {other:?}"),
    }
}

/// Enqueues a sample notification for `owner` on `channels`.
async fn put(
    store: &SharedStore,
    owner: Option<&str>,
    channels: &[&str],
    created_at: DateTime<Utc>,
) -> (Notification, Vec<Uuid>) {
    put_event(store, event("key-1", owner), channels, created_at).await
}

fn request(now: DateTime<Utc>, lease: Duration, limit: usize) -> ClaimRequest {
    ClaimRequest {
        now,
        lease,
        limit,
        exclude_channels: Vec::new(),
    }
}

async fn claim(
    store: &SharedStore,
    now: DateTime<Utc>,
    lease: Duration,
    limit: usize,
) -> Vec<Claim> {
    store
        .claim(request(now, lease, limit))
        .await
        .expect("claim")
}

/// Claims exactly the one delivery that is due, and checks it is `id`.
async fn claim_one(store: &SharedStore, id: Uuid, now: DateTime<Utc>, lease: Duration) -> Claim {
    let mut claims = claim(store, now, lease, 10).await;
    assert_eq!(
        ids(&claims),
        BTreeSet::from([id]),
        "exactly delivery {id} is due at {now}"
    );
    claims.pop().expect("one claim")
}

fn ids(claims: &[Claim]) -> BTreeSet<Uuid> {
    claims.iter().map(|c| c.delivery.id).collect()
}

fn by_id(claims: Vec<Claim>) -> HashMap<Uuid, Claim> {
    claims.into_iter().map(|c| (c.delivery.id, c)).collect()
}

async fn complete(store: &SharedStore, claim: &Claim, outcome: Outcome) {
    store
        .complete(claim.delivery.id, claim.token, outcome)
        .await
        .unwrap_or_else(|e| panic!("complete {}: {e}", claim.delivery.id));
}

async fn record(store: &SharedStore, id: Uuid) -> DeliveryRecord {
    store
        .delivery(id)
        .await
        .expect("delivery")
        .unwrap_or_else(|| panic!("delivery {id} exists"))
}

fn sent(at: DateTime<Utc>) -> Outcome {
    Outcome::Sent {
        receipt: Receipt::new("250 2.0.0 queued"),
        at,
    }
}

fn retry(next_attempt_at: DateTime<Utc>, at: DateTime<Utc>) -> Outcome {
    Outcome::Retry {
        error: "connection refused".into(),
        next_attempt_at,
        at,
    }
}

fn dead(at: DateTime<Utc>) -> Outcome {
    Outcome::Dead {
        error: "550 5.1.1 mailbox unavailable".into(),
        at,
    }
}

/// The record of a delivery just enqueued.
fn fresh(id: Uuid, notification: &Notification, channel: &str) -> DeliveryRecord {
    DeliveryRecord {
        id,
        notification_id: notification.id,
        channel: channel.to_owned(),
        status: Pending,
        attempts: 0,
        next_attempt_at: Some(notification.created_at),
        lease_until: None,
        last_error: None,
        sent_at: None,
        receipt: None,
        created_at: notification.created_at,
        updated_at: notification.created_at,
    }
}

fn filter(status: Option<DeliveryStatus>, channel: Option<&str>) -> DeliveryFilter {
    DeliveryFilter {
        status,
        channel: channel.map(str::to_owned),
    }
}

fn all() -> DeliveryFilter {
    DeliveryFilter::default()
}

/// Pages through a delivery listing with `limit`, checking the paging rules:
/// no page is larger than `limit`, no item comes twice, a page with a
/// cursor has items, and the listing ends.
async fn list(store: &SharedStore, filter: &DeliveryFilter, limit: usize) -> Vec<DeliveryRecord> {
    let mut out: Vec<DeliveryRecord> = Vec::new();
    let mut seen = HashSet::new();
    let mut page = PageRequest::first(limit);
    for _ in 0..10_000 {
        let Page { items, next } = store.deliveries(filter, page).await.expect("deliveries");
        assert!(items.len() <= limit, "a page holds at most {limit} items");
        for item in &items {
            assert!(seen.insert(item.id), "delivery {} listed twice", item.id);
        }
        out.extend(items);
        match next {
            None => return out,
            Some(cursor) => {
                assert!(
                    !out.is_empty() && page.after != Some(cursor),
                    "a page with a cursor must make progress"
                );
                page = PageRequest {
                    limit,
                    after: Some(cursor),
                };
            }
        }
    }
    panic!("the listing of {filter:?} did not end");
}

fn record_ids(records: &[DeliveryRecord]) -> Vec<Uuid> {
    records.iter().map(|r| r.id).collect()
}

/// `ids`, newest (greatest UUIDv7) first.
fn newest_first(ids: impl IntoIterator<Item = Uuid>) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = ids.into_iter().collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids
}

async fn counts(store: &SharedStore) -> Vec<(String, DeliveryStatus, u64)> {
    let mut out: Vec<_> = store
        .counts()
        .await
        .expect("counts")
        .into_iter()
        .map(|c| (c.channel, c.status, c.count))
        .collect();
    out.sort();
    out
}

fn count(channel: &str, status: DeliveryStatus, n: u64) -> (String, DeliveryStatus, u64) {
    (channel.to_owned(), status, n)
}

/// The owner's whole inbox, through pages of `limit`.
async fn inbox(store: &SharedStore, owner: &str, limit: usize) -> Vec<Notification> {
    let mut out: Vec<Notification> = Vec::new();
    let mut page = PageRequest::first(limit);
    for _ in 0..10_000 {
        let Page { items, next } = store
            .notifications(owner, page)
            .await
            .expect("notifications");
        assert!(items.len() <= limit, "a page holds at most {limit} items");
        out.extend(items);
        match next {
            None => return out,
            Some(cursor) => {
                assert!(!out.is_empty(), "a page with a cursor must have items");
                page = PageRequest {
                    limit,
                    after: Some(cursor),
                };
            }
        }
    }
    panic!("the inbox of {owner:?} did not end");
}

fn notification_ids(notifications: &[Notification]) -> Vec<Uuid> {
    notifications.iter().map(|n| n.id).collect()
}

async fn unread(store: &SharedStore, owner: &str) -> u64 {
    store.unread_count(owner).await.expect("unread_count")
}

async fn read_at(store: &SharedStore, owner: &str, id: Uuid) -> Option<DateTime<Utc>> {
    store
        .notification(owner, id)
        .await
        .expect("notification")
        .unwrap_or_else(|| panic!("notification {id} is in {owner}'s inbox"))
        .read_at
}

fn stale(id: Uuid) -> Result<(), StoreError> {
    Err(StoreError::StaleLease(id))
}

// ------------------------------------------------------------------ enqueue

/// An empty store lists, counts, claims and purges nothing, and every lookup
/// of an unknown id says so (`None`, `NotFound`, `StaleLease`, `false`).
pub async fn empty_store_has_nothing(store: SharedStore) {
    let unknown = Uuid::now_v7();
    assert_eq!(counts(&store).await, vec![]);
    for status in [None, Some(Pending), Some(InFlight), Some(Sent), Some(Dead)] {
        let page = store
            .deliveries(&filter(status, None), PageRequest::first(10))
            .await
            .unwrap();
        assert_eq!(
            page,
            Page {
                items: vec![],
                next: None
            }
        );
    }
    assert_eq!(store.delivery(unknown).await.unwrap(), None);
    assert!(claim(&store, t(1_000_000), LEASE, 100).await.is_empty());
    assert_eq!(store.purge(t(1_000_000), 100).await.unwrap(), 0);
    assert_eq!(
        store.requeue(unknown, t(0)).await.unwrap(),
        Requeued::NotFound
    );
    assert_eq!(
        store
            .complete(unknown, LeaseToken(Uuid::now_v7()), sent(t(0)))
            .await,
        stale(unknown)
    );
    assert_eq!(
        store
            .notifications("alice", PageRequest::first(10))
            .await
            .unwrap(),
        Page {
            items: vec![],
            next: None
        }
    );
    assert_eq!(store.notification("alice", unknown).await.unwrap(), None);
    assert_eq!(unread(&store, "alice").await, 0);
    assert!(!store.mark_read("alice", unknown, t(0)).await.unwrap());
    assert_eq!(store.mark_all_read("alice", t(0)).await.unwrap(), 0);
}

/// `enqueue` stores the notification under its own id with one pending
/// delivery per channel, due at the notification's `created_at`, and returns
/// the delivery ids in the order of the channels.
pub async fn enqueue_creates_one_pending_delivery_per_channel(store: SharedStore) {
    let channels = ["email", "webhook", "log"];
    let (n, deliveries) = put(&store, Some("alice"), &channels, t(0)).await;
    assert_eq!(
        deliveries.iter().collect::<HashSet<_>>().len(),
        3,
        "delivery ids are distinct: {deliveries:?}"
    );
    for (id, channel) in deliveries.iter().zip(channels) {
        assert_eq!(record(&store, *id).await, fresh(*id, &n, channel));
    }
    let listed = list(&store, &all(), 10).await;
    assert_eq!(record_ids(&listed), newest_first(deliveries.clone()));
    assert_eq!(
        counts(&store).await,
        vec![
            count("email", Pending, 1),
            count("log", Pending, 1),
            count("webhook", Pending, 1),
        ]
    );
    assert_eq!(
        store.notification("alice", n.id).await.unwrap(),
        Some(n.clone())
    );
    assert_eq!(unread(&store, "alice").await, 1);

    // Due exactly at created_at.
    assert!(claim(&store, t(0) - us(1), LEASE, 10).await.is_empty());
    let claims = claim(&store, t(0), LEASE, 10).await;
    assert_eq!(ids(&claims), deliveries.iter().copied().collect());
    for c in &claims {
        let index = deliveries.iter().position(|d| *d == c.delivery.id).unwrap();
        assert_eq!(c.delivery.channel, channels[index]);
        assert_eq!(c.delivery.notification, n);
    }
}

/// A notification routed to no channel is stored without deliveries and is
/// in its owner's inbox; there is nothing to claim.
pub async fn enqueue_keeps_unrouted_notification_for_the_inbox(store: SharedStore) {
    let (n, deliveries) = put(&store, Some("alice"), &[], t(0)).await;
    assert!(deliveries.is_empty());
    assert_eq!(counts(&store).await, vec![]);
    assert!(list(&store, &all(), 10).await.is_empty());
    assert!(claim(&store, t(3600), LEASE, 10).await.is_empty());
    assert_eq!(inbox(&store, "alice", 10).await, vec![n.clone()]);
    assert_eq!(store.notification("alice", n.id).await.unwrap(), Some(n));
    assert_eq!(unread(&store, "alice").await, 1);
}

fn rich_event() -> KeyEvent {
    KeyEvent::custom(
        EventKind::custom("key_compromised").expect("a valid custom kind"),
        Subject::new("kms/keys/7f3a-9c1e", ObjectType::Certificate)
            .named("pay-gateway TLS — prod ✓ «ü»"),
        Severity::Critical,
        json!({
            "text": "line 1\nline 2 \"quoted\" \\ back\tslash — ✓ 鍵",
            "negative": -42,
            "big": u64::MAX,
            "ratio": 2.5,
            "flag": true,
            "nothing": null,
            "list": [1, "two", { "three": 3 }, []],
            "nested": { "ü": { "ß": "deep" } },
            "empty": {}
        }),
    )
    .with_owner("alice@example.com")
    .with_label("env", "prod")
    .with_label("team", "payments")
    .with_label("région", "eu-west-1")
    .with_dedup_key("key_compromised:kms/keys/7f3a-9c1e")
    .at(base_time() - TimeDelta::hours(1) + us(654_321))
}

fn plain_event() -> KeyEvent {
    KeyEvent::rotation_success(
        Subject::new("key-2", ObjectType::KeyPair),
        RotationSuccess {
            old_id: "key-2-v1".into(),
            new_id: "key-2-v2".into(),
            next_rotation: Some(base_time() + TimeDelta::days(90)),
        },
    )
    .at(base_time() - us(1))
}

/// Every field of a notification comes back exactly as enqueued, through
/// the inbox and through a claim: custom kind, subject with name, owner,
/// severity, `occurred_at` to the microsecond, labels, nested JSON data,
/// dedup key, `created_at`, `read_at`; and the absent ones stay absent.
pub async fn enqueue_round_trips_every_notification_field(store: SharedStore) {
    let (rich, rich_ids) = put_event(&store, rich_event(), &["webhook"], t(0) + us(1)).await;
    let (plain, plain_ids) = put_event(&store, plain_event(), &["email"], t(0) + us(2)).await;
    let owner = "alice@example.com";
    assert_eq!(
        store.notification(owner, rich.id).await.unwrap(),
        Some(rich.clone())
    );
    assert_eq!(inbox(&store, owner, 10).await, vec![rich.clone()]);

    let claims = by_id(claim(&store, t(1), LEASE, 10).await);
    assert_eq!(claims.len(), 2);
    let delivered = &claims[&rich_ids[0]].delivery;
    assert_eq!(delivered.notification, rich);
    assert_eq!(delivered.channel, "webhook");
    let delivered = &claims[&plain_ids[0]].delivery;
    assert_eq!(delivered.notification, plain);
    assert_eq!(delivered.notification.event.owner, None);
    assert_eq!(delivered.notification.event.subject.name, None);
    assert_eq!(delivered.notification.event.dedup_key, None);
    assert!(delivered.notification.event.labels.is_empty());

    // Read state round-trips too.
    assert!(store.mark_read(owner, rich.id, t(2) + us(7)).await.unwrap());
    let read = store.notification(owner, rich.id).await.unwrap().unwrap();
    assert_eq!(
        read,
        Notification {
            read_at: Some(t(2) + us(7)),
            ..rich
        }
    );
}

/// A second notification with a dedup key that is already taken reports the
/// holder's id and stores nothing: no notification (in any inbox), no
/// deliveries, counts unchanged; also after the first one was delivered.
pub async fn enqueue_with_taken_dedup_key_creates_nothing(store: SharedStore) {
    let first = event("key-1", Some("alice")).with_dedup_key("rotation:key-1:v2");
    let (first, first_ids) = put_event(&store, first, &["email"], t(0)).await;
    let before = (
        counts(&store).await,
        list(&store, &all(), 10).await,
        inbox(&store, "alice", 10).await,
    );

    // Everything else differs: owner, subject, channels, time.
    let second = Notification::new(
        event("key-9", Some("bob")).with_dedup_key("rotation:key-1:v2"),
        t(5),
    );
    let result = store
        .enqueue(new_notification(&second, &["webhook", "log"]))
        .await
        .unwrap();
    assert_eq!(
        result,
        Enqueued::Duplicate {
            existing_id: first.id
        }
    );
    let after = (
        counts(&store).await,
        list(&store, &all(), 10).await,
        inbox(&store, "alice", 10).await,
    );
    assert_eq!(after, before);
    assert_eq!(store.notification("bob", second.id).await.unwrap(), None);
    assert!(inbox(&store, "bob", 10).await.is_empty());
    assert_eq!(unread(&store, "bob").await, 0);

    // Still a duplicate once the first one is delivered and read.
    let c = claim_one(&store, first_ids[0], t(1), LEASE).await;
    complete(&store, &c, sent(t(2))).await;
    assert!(store.mark_read("alice", first.id, t(3)).await.unwrap());
    let third = Notification::new(
        event("key-1", Some("alice")).with_dedup_key("rotation:key-1:v2"),
        t(10),
    );
    let result = store
        .enqueue(new_notification(&third, &["email"]))
        .await
        .unwrap();
    assert_eq!(
        result,
        Enqueued::Duplicate {
            existing_id: first.id
        }
    );
    assert_eq!(counts(&store).await, vec![count("email", Sent, 1)]);
    assert_eq!(
        notification_ids(&inbox(&store, "alice", 10).await),
        vec![first.id]
    );
}

/// Notifications without a dedup key are never duplicates, even when
/// identical; dedup keys match exactly (case and trailing spaces count).
pub async fn dedup_keys_are_exact_and_optional(store: SharedStore) {
    let same = event("key-1", Some("alice"));
    let (a, _) = put_event(&store, same.clone(), &["email"], t(0)).await;
    let (b, _) = put_event(&store, same, &["email"], t(0)).await;
    assert_ne!(a.id, b.id);
    let mut created = vec![b.id, a.id];
    let mut holders = HashMap::new();
    for key in ["rotation:k1", "ROTATION:K1", "rotation:k1 ", " rotation:k1"] {
        let e = event("key-1", Some("alice")).with_dedup_key(key);
        let (n, _) = put_event(&store, e, &["email"], t(1)).await;
        created.insert(0, n.id);
        holders.insert(key, n.id);
    }
    assert_eq!(
        notification_ids(&inbox(&store, "alice", 100).await),
        created
    );
    assert_eq!(counts(&store).await, vec![count("email", Pending, 6)]);
    // And each of those keys is now taken.
    let again = Notification::new(
        event("key-1", Some("alice")).with_dedup_key("ROTATION:K1"),
        t(2),
    );
    assert_eq!(
        store
            .enqueue(new_notification(&again, &["email"]))
            .await
            .unwrap(),
        Enqueued::Duplicate {
            existing_id: holders["ROTATION:K1"]
        }
    );
}

/// Many concurrent enqueues of the same dedup key (4 keys × 8 contenders):
/// per key exactly one is created, every other one reports that one, and
/// only the winner's notification and deliveries exist.
pub async fn dedup_race_has_exactly_one_winner(store: SharedStore) {
    const KEYS: usize = 4;
    const CONTENDERS: usize = 8;
    let mut tasks = JoinSet::new();
    for contender in 0..CONTENDERS {
        for key in 0..KEYS {
            let store = store.clone();
            tasks.spawn(async move {
                let e = event(&format!("key-{contender}"), Some("alice"))
                    .with_dedup_key(format!("race-{key}"));
                let n = Notification::new(e, t(contender as i64));
                let result = store
                    .enqueue(new_notification(&n, &["email", "webhook"]))
                    .await
                    .expect("enqueue");
                (key, n.id, result)
            });
        }
    }
    let results = tasks.join_all().await;
    let mut winners: BTreeMap<usize, Uuid> = BTreeMap::new();
    for (key, id, result) in &results {
        if let Enqueued::Created {
            notification_id, ..
        } = result
        {
            assert_eq!(notification_id, id);
            assert!(
                winners.insert(*key, *id).is_none(),
                "two notifications created with dedup key race-{key}"
            );
        }
    }
    assert_eq!(winners.len(), KEYS, "every key has a winner");
    for (key, _, result) in &results {
        if let Enqueued::Duplicate { existing_id } = result {
            assert_eq!(*existing_id, winners[key], "duplicate of race-{key}");
        }
    }
    assert_eq!(
        inbox(&store, "alice", 100)
            .await
            .into_iter()
            .map(|n| n.id)
            .collect::<BTreeSet<_>>(),
        winners.values().copied().collect()
    );
    assert_eq!(unread(&store, "alice").await, KEYS as u64);
    assert_eq!(
        counts(&store).await,
        vec![
            count("email", Pending, KEYS as u64),
            count("webhook", Pending, KEYS as u64)
        ]
    );
    let owners: BTreeSet<Uuid> = list(&store, &all(), 100)
        .await
        .into_iter()
        .map(|r| r.notification_id)
        .collect();
    assert_eq!(owners, winners.values().copied().collect());
}

// -------------------------------------------------------------------- claim

/// Only pending deliveries with `next_attempt_at <= now` are claimed; later
/// ones stay pending and untouched; sent and dead ones are never claimed.
pub async fn claim_takes_only_due_deliveries(store: SharedStore) {
    let (n_early, early) = put(&store, None, &["email"], t(0)).await;
    let (_, exact) = put(&store, None, &["email"], t(10)).await;
    let (n_later, later) = put(&store, None, &["email"], t(11)).await;

    let claims = by_id(claim(&store, t(10), HOUR, 10).await);
    assert_eq!(
        claims.keys().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([early[0], exact[0]])
    );
    assert_eq!(
        record(&store, later[0]).await,
        fresh(later[0], &n_later, "email")
    );
    assert!(claim(&store, t(11) - us(1), HOUR, 10).await.is_empty());
    let c_later = claim_one(&store, later[0], t(11), HOUR).await;

    complete(&store, &claims[&early[0]], sent(t(12))).await;
    complete(&store, &claims[&exact[0]], dead(t(12))).await;
    complete(&store, &c_later, sent(t(12))).await;
    assert!(claim(&store, t(1_000_000), HOUR, 10).await.is_empty());
    assert_eq!(record(&store, early[0]).await.notification_id, n_early.id);
}

/// The oldest due deliveries are claimed first, by due time (creation time,
/// or the retry time of a failed attempt), not by id.
pub async fn claim_takes_oldest_due_first(store: SharedStore) {
    // Enqueued in an order unlike their due order.
    let (_, d3) = put(&store, None, &["email"], t(3)).await;
    let (_, d1) = put(&store, None, &["email"], t(1)).await;
    let (_, d4) = put(&store, None, &["email"], t(4)).await;
    let (_, d2) = put(&store, None, &["email"], t(2)).await;

    let first = claim(&store, t(10), HOUR, 2).await;
    assert_eq!(ids(&first), BTreeSet::from([d1[0], d2[0]]));
    let c3 = claim(&store, t(10), HOUR, 1).await;
    assert_eq!(ids(&c3), BTreeSet::from([d3[0]]));
    let c4 = claim(&store, t(10), HOUR, 1).await;
    assert_eq!(ids(&c4), BTreeSet::from([d4[0]]));

    // A retry due at t(20) comes between deliveries created at t(15) and t(25).
    let c1 = first.iter().find(|c| c.delivery.id == d1[0]).unwrap();
    complete(&store, c1, retry(t(20), t(11))).await;
    let (_, d25) = put(&store, None, &["email"], t(25)).await;
    let (_, d15) = put(&store, None, &["email"], t(15)).await;
    for expected in [d15[0], d1[0], d25[0]] {
        let got = claim(&store, t(30), HOUR, 1).await;
        assert_eq!(ids(&got), BTreeSet::from([expected]));
    }
    assert!(claim(&store, t(30), HOUR, 1).await.is_empty());
}

/// A claim takes at most `limit` deliveries; `limit` 0 takes none.
pub async fn claim_respects_limit(store: SharedStore) {
    let mut expected = BTreeSet::new();
    for i in 0..5 {
        let (_, ids) = put(&store, None, &["email", "webhook"], t(i)).await;
        expected.extend(ids);
    }
    assert!(claim(&store, t(10), HOUR, 0).await.is_empty());
    assert_eq!(counts(&store).await[0], count("email", Pending, 5));
    let mut got = BTreeSet::new();
    for (limit, n) in [(3, 3), (4, 4), (10, 3), (10, 0)] {
        let claims = claim(&store, t(10), HOUR, limit).await;
        assert_eq!(claims.len(), n, "claim with limit {limit}");
        for c in claims {
            assert!(got.insert(c.delivery.id), "claimed twice");
        }
    }
    assert_eq!(got, expected);
}

/// Deliveries on excluded channels are not claimed (neither pending nor with
/// an expired lease) and do not use up the limit.
pub async fn claim_skips_excluded_channels(store: SharedStore) {
    let (_, old) = put(&store, None, &["email", "webhook"], t(0)).await;
    let (_, new) = put(&store, None, &["log"], t(1)).await;
    let exclude = |now, limit, channels: &[&str]| ClaimRequest {
        now,
        lease: LEASE,
        limit,
        exclude_channels: channels.iter().map(|c| (*c).to_owned()).collect(),
    };
    // The two oldest are excluded; the limit of 1 still finds the third.
    let claims = store
        .claim(exclude(t(10), 1, &["email", "webhook"]))
        .await
        .unwrap();
    assert_eq!(ids(&claims), BTreeSet::from([new[0]]));
    assert_eq!(claims[0].delivery.channel, "log");
    assert!(
        store
            .claim(exclude(t(10), 10, &["email", "webhook"]))
            .await
            .unwrap()
            .is_empty()
    );
    let claims = store
        .claim(exclude(t(10), 10, &["webhook", "sms"]))
        .await
        .unwrap();
    assert_eq!(ids(&claims), BTreeSet::from([old[0]]));
    // Expired leases of excluded channels stay put too.
    let later = t(10) + TimeDelta::seconds(LEASE.as_secs() as i64);
    let claims = store
        .claim(exclude(later, 10, &["email", "log"]))
        .await
        .unwrap();
    assert_eq!(ids(&claims), BTreeSet::from([old[1]]));
    let claims = store.claim(exclude(later, 10, &[])).await.unwrap();
    assert_eq!(ids(&claims), BTreeSet::from([old[0], new[0]]));
}

/// A claim puts the delivery in flight under a fresh token until
/// `now + lease`, hands out the full notification, numbers the attempt
/// `attempts + 1`, and reports the delivery's `created_at`.
pub async fn claim_leases_and_numbers_the_attempt(store: SharedStore) {
    let (n, deliveries) = put_event(&store, rich_event(), &["email", "webhook"], t(0)).await;
    let lease = Duration::from_millis(45_250);
    let now = t(5) + us(3);
    let lease_until = now + TimeDelta::milliseconds(45_250);
    let claims = claim(&store, now, lease, 10).await;
    assert_eq!(ids(&claims), deliveries.iter().copied().collect());
    assert_ne!(
        claims[0].token, claims[1].token,
        "every claim has its own token"
    );
    for c in &claims {
        let channel = if c.delivery.id == deliveries[0] {
            "email"
        } else {
            "webhook"
        };
        assert_eq!(c.delivery.channel, channel);
        assert_eq!(c.delivery.attempt, 1);
        assert_eq!(c.delivery.notification, n);
        assert_eq!(c.lease_until, lease_until);
        assert_eq!(c.created_at, t(0));
        assert_eq!(
            record(&store, c.delivery.id).await,
            DeliveryRecord {
                status: InFlight,
                next_attempt_at: None,
                lease_until: Some(lease_until),
                updated_at: now,
                ..fresh(c.delivery.id, &n, channel)
            }
        );
    }
    assert_eq!(
        counts(&store).await,
        vec![count("email", InFlight, 1), count("webhook", InFlight, 1)]
    );
}

/// While its lease holds, a claimed delivery is not handed out again, up to
/// one microsecond before `lease_until`.
pub async fn leased_delivery_is_not_claimable_again(store: SharedStore) {
    let (_, deliveries) = put(&store, None, &["email"], t(0)).await;
    let c = claim_one(&store, deliveries[0], t(0), LEASE).await;
    let held = record(&store, deliveries[0]).await;
    for now in [t(0), t(15), t(30) - us(1)] {
        assert!(
            claim(&store, now, LEASE, 10).await.is_empty(),
            "claimable at {now} though leased until {}",
            c.lease_until
        );
    }
    assert_eq!(record(&store, deliveries[0]).await, held);
    // The lease has expired at lease_until.
    let again = claim_one(&store, deliveries[0], t(30), LEASE).await;
    assert_ne!(again.token, c.token);
}

/// An expired lease makes the delivery claimable again with a new token and
/// the same attempt number (no outcome was recorded); the old token is
/// stale, the new one works.
pub async fn expired_lease_is_claimable_with_a_new_token(store: SharedStore) {
    let (n, deliveries) = put(&store, Some("alice"), &["email"], t(0)).await;
    let id = deliveries[0];
    let first = claim_one(&store, id, t(0), LEASE).await;
    let second = claim_one(&store, id, t(31), LEASE).await;
    assert_ne!(second.token, first.token);
    assert_eq!(second.delivery.id, id);
    assert_eq!(
        second.delivery.idempotency_key(),
        first.delivery.idempotency_key()
    );
    assert_eq!(second.delivery.attempt, 1);
    assert_eq!(second.lease_until, t(61));
    let leased = DeliveryRecord {
        status: InFlight,
        next_attempt_at: None,
        lease_until: Some(t(61)),
        updated_at: t(31),
        ..fresh(id, &n, "email")
    };
    assert_eq!(record(&store, id).await, leased);

    for outcome in [sent(t(32)), retry(t(40), t(32)), dead(t(32))] {
        assert_eq!(store.complete(id, first.token, outcome).await, stale(id));
    }
    assert_eq!(record(&store, id).await, leased);
    complete(&store, &second, retry(t(100), t(33))).await;
    assert_eq!(record(&store, id).await.attempts, 1);
    assert_eq!(
        store.complete(id, first.token, sent(t(34))).await,
        stale(id)
    );
}

/// An outcome recorded after the lease expired, while no one claimed the
/// delivery again, is accepted: the token is still the current one.
pub async fn outcome_after_lease_expiry_without_reclaim_is_accepted(store: SharedStore) {
    let (_, deliveries) = put(&store, None, &["email", "webhook"], t(0)).await;
    let claims = by_id(claim(&store, t(0), LEASE, 10).await);
    complete(&store, &claims[&deliveries[0]], sent(t(100))).await;
    complete(&store, &claims[&deliveries[1]], retry(t(200), t(100))).await;
    let sent_record = record(&store, deliveries[0]).await;
    assert_eq!(
        (sent_record.status, sent_record.sent_at),
        (Sent, Some(t(100)))
    );
    let retried = record(&store, deliveries[1]).await;
    assert_eq!(
        (retried.status, retried.next_attempt_at),
        (Pending, Some(t(200)))
    );
}

// ----------------------------------------------------------------- complete

/// `Sent` makes the delivery final with `sent_at`, the receipt's detail and
/// one more attempt; it is never claimed again.
pub async fn complete_sent_records_receipt(store: SharedStore) {
    let (n, deliveries) = put(&store, None, &["email", "webhook"], t(0)).await;
    let claims = by_id(claim(&store, t(1), LEASE, 10).await);
    let receipt = Receipt::new("250 2.0.0 Ok: queued as 4F2A1C0D3E");
    complete(
        &store,
        &claims[&deliveries[0]],
        Outcome::Sent {
            receipt,
            at: t(7) + us(9),
        },
    )
    .await;
    assert_eq!(
        record(&store, deliveries[0]).await,
        DeliveryRecord {
            status: Sent,
            attempts: 1,
            next_attempt_at: None,
            lease_until: None,
            sent_at: Some(t(7) + us(9)),
            receipt: Some("250 2.0.0 Ok: queued as 4F2A1C0D3E".into()),
            updated_at: t(7) + us(9),
            ..fresh(deliveries[0], &n, "email")
        }
    );
    // A receipt without detail.
    complete(
        &store,
        &claims[&deliveries[1]],
        Outcome::Sent {
            receipt: Receipt::default(),
            at: t(8),
        },
    )
    .await;
    let r = record(&store, deliveries[1]).await;
    assert_eq!(
        (r.status, r.attempts, r.receipt, r.sent_at),
        (Sent, 1, None, Some(t(8)))
    );
    assert!(claim(&store, t(1_000_000), LEASE, 10).await.is_empty());
    assert_eq!(
        counts(&store).await,
        vec![count("email", Sent, 1), count("webhook", Sent, 1)]
    );
}

/// `Retry` makes the delivery pending again with the error and one more
/// attempt, due exactly at `next_attempt_at` (not a microsecond before);
/// the next claim numbers the attempt accordingly, and the delivery keeps
/// its id (hence its idempotency key) across attempts.
pub async fn complete_retry_schedules_next_attempt(store: SharedStore) {
    let (n, deliveries) = put(&store, None, &["email"], t(0)).await;
    let id = deliveries[0];
    let first = claim_one(&store, id, t(1), LEASE).await;
    complete(
        &store,
        &first,
        Outcome::Retry {
            error: "421 4.7.0 try again later".into(),
            next_attempt_at: t(120) + us(5),
            at: t(2),
        },
    )
    .await;
    assert_eq!(
        record(&store, id).await,
        DeliveryRecord {
            status: Pending,
            attempts: 1,
            next_attempt_at: Some(t(120) + us(5)),
            lease_until: None,
            last_error: Some("421 4.7.0 try again later".into()),
            updated_at: t(2),
            ..fresh(id, &n, "email")
        }
    );
    assert!(claim(&store, t(120) + us(4), LEASE, 10).await.is_empty());
    let second = claim_one(&store, id, t(120) + us(5), LEASE).await;
    assert_eq!(second.delivery.attempt, 2);
    assert_ne!(second.token, first.token);
    assert_eq!(
        second.delivery.idempotency_key(),
        first.delivery.idempotency_key()
    );
    assert_eq!(second.created_at, t(0));

    complete(&store, &second, retry(t(300), t(121))).await;
    let r = record(&store, id).await;
    assert_eq!(
        (
            r.status,
            r.attempts,
            r.last_error.as_deref(),
            r.next_attempt_at
        ),
        (Pending, 2, Some("connection refused"), Some(t(300)))
    );
    let third = claim_one(&store, id, t(300), LEASE).await;
    assert_eq!(third.delivery.attempt, 3);
    assert_eq!(third.delivery.id, first.delivery.id);
    complete(&store, &third, sent(t(301))).await;
    let r = record(&store, id).await;
    assert_eq!((r.status, r.attempts, r.sent_at), (Sent, 3, Some(t(301))));
}

/// `Dead` makes the delivery final with its reason and one more attempt; it
/// is never claimed again.
pub async fn complete_dead_records_reason(store: SharedStore) {
    let (n, deliveries) = put(&store, None, &["email"], t(0)).await;
    let c = claim_one(&store, deliveries[0], t(1), LEASE).await;
    complete(&store, &c, dead(t(3))).await;
    assert_eq!(
        record(&store, deliveries[0]).await,
        DeliveryRecord {
            status: Dead,
            attempts: 1,
            next_attempt_at: None,
            lease_until: None,
            last_error: Some("550 5.1.1 mailbox unavailable".into()),
            updated_at: t(3),
            ..fresh(deliveries[0], &n, "email")
        }
    );
    assert!(claim(&store, t(1_000_000), LEASE, 10).await.is_empty());
    assert_eq!(counts(&store).await, vec![count("email", Dead, 1)]);
}

/// An outcome under a token that is not the delivery's current one is
/// rejected with `StaleLease(id)` and changes nothing: on a pending delivery,
/// with a random token or another delivery's token, on a sent or dead one,
/// or for an unknown delivery.
pub async fn complete_rejects_stale_tokens(store: SharedStore) {
    let outcomes = || [sent(t(50)), retry(t(60), t(50)), dead(t(50))];
    let (_, pending) = put(&store, None, &["email"], t(100)).await;
    let (_, live) = put(&store, None, &["email", "webhook"], t(0)).await;
    let (_, done) = put(&store, None, &["email", "webhook"], t(1)).await;
    let claims = by_id(claim(&store, t(2), HOUR, 10).await);
    assert_eq!(claims.len(), 4);
    complete(&store, &claims[&done[0]], sent(t(3))).await;
    complete(&store, &claims[&done[1]], dead(t(3))).await;

    let mut attempts: Vec<(Uuid, LeaseToken)> = vec![
        (pending[0], LeaseToken(Uuid::now_v7())),
        (live[0], LeaseToken(Uuid::now_v7())),
        (live[0], claims[&live[1]].token),
        (done[0], claims[&done[0]].token),
        (done[1], claims[&done[1]].token),
        (done[0], LeaseToken(Uuid::now_v7())),
    ];
    let unknown = Uuid::now_v7();
    attempts.push((unknown, claims[&live[0]].token));
    for (id, token) in attempts {
        let before = store.delivery(id).await.unwrap();
        for outcome in outcomes() {
            assert_eq!(
                store.complete(id, token, outcome.clone()).await,
                stale(id),
                "{outcome:?} on {id} with {token:?}"
            );
        }
        assert_eq!(store.delivery(id).await.unwrap(), before);
    }
    // The rightful tokens still work.
    complete(&store, &claims[&live[0]], sent(t(4))).await;
    complete(&store, &claims[&live[1]], sent(t(4))).await;
    assert_eq!(
        counts(&store).await,
        vec![
            count("email", Pending, 1),
            count("email", Sent, 2),
            count("webhook", Sent, 1),
            count("webhook", Dead, 1),
        ]
    );
}

/// The second outcome under the same token is stale, whatever the first
/// was, and does not change what the first recorded.
pub async fn complete_twice_with_one_token_is_rejected(store: SharedStore) {
    let (_, deliveries) = put(&store, None, &["a", "b", "c"], t(0)).await;
    let claims = by_id(claim(&store, t(1), LEASE, 10).await);
    let firsts = [sent(t(2)), retry(t(500), t(2)), dead(t(2))];
    for (id, first) in deliveries.iter().zip(firsts) {
        let c = &claims[id];
        complete(&store, c, first).await;
        let after_first = record(&store, *id).await;
        for again in [sent(t(3)), retry(t(600), t(3)), dead(t(3))] {
            assert_eq!(store.complete(*id, c.token, again).await, stale(*id));
        }
        assert_eq!(record(&store, *id).await, after_first);
    }
    // The retried one gets a new token; the old one stays stale.
    let retried = deliveries[1];
    let next = claim_one(&store, retried, t(500), LEASE).await;
    assert_ne!(next.token, claims[&retried].token);
    assert_eq!(
        store
            .complete(retried, claims[&retried].token, sent(t(501)))
            .await,
        stale(retried)
    );
    complete(&store, &next, sent(t(501))).await;
}

// ------------------------------------------------------------------ requeue

/// Requeue makes a dead delivery pending, due `now`, attempts reset; it is
/// claimable from `now` as attempt 1, and the token that killed it stays
/// stale.
pub async fn requeue_revives_a_dead_delivery(store: SharedStore) {
    let (n, deliveries) = put(&store, None, &["email"], t(0)).await;
    let id = deliveries[0];
    let first = claim_one(&store, id, t(0), LEASE).await;
    complete(&store, &first, retry(t(10), t(1))).await;
    let second = claim_one(&store, id, t(10), LEASE).await;
    complete(&store, &second, dead(t(11))).await;
    assert_eq!(record(&store, id).await.attempts, 2);

    let now = t(500) + us(1);
    assert_eq!(store.requeue(id, now).await.unwrap(), Requeued::Requeued);
    let r = record(&store, id).await;
    assert_eq!(
        r,
        DeliveryRecord {
            status: Pending,
            attempts: 0,
            next_attempt_at: Some(now),
            lease_until: None,
            sent_at: None,
            receipt: None,
            updated_at: now,
            last_error: r.last_error.clone(), // kept or cleared: unspecified
            ..fresh(id, &n, "email")
        }
    );
    assert_eq!(counts(&store).await, vec![count("email", Pending, 1)]);
    assert!(claim(&store, now - us(1), LEASE, 10).await.is_empty());
    let third = claim_one(&store, id, now, LEASE).await;
    assert_eq!(third.delivery.attempt, 1);
    assert_eq!(
        third.delivery.idempotency_key(),
        first.delivery.idempotency_key()
    );
    assert_eq!(
        store.complete(id, second.token, sent(t(501))).await,
        stale(id)
    );
    assert_eq!(
        store.requeue(id, t(501)).await.unwrap(),
        Requeued::NotDead(InFlight)
    );
    complete(&store, &third, sent(t(502))).await;
    let r = record(&store, id).await;
    assert_eq!((r.status, r.attempts), (Sent, 1));
}

/// Requeue of a pending, in-flight or sent delivery reports its status and
/// changes nothing (an in-flight claim's token still works); an unknown id
/// is `NotFound`.
pub async fn requeue_rejects_live_sent_and_unknown_deliveries(store: SharedStore) {
    let (_, claimed) = put(&store, None, &["email", "webhook"], t(0)).await;
    let (_, pending) = put(&store, None, &["email"], t(100)).await;
    let claims = by_id(claim(&store, t(1), LEASE, 10).await);
    complete(&store, &claims[&claimed[1]], sent(t(2))).await;
    let cases = [
        (pending[0], Pending),
        (claimed[0], InFlight),
        (claimed[1], Sent),
    ];
    for (id, status) in cases {
        let before = record(&store, id).await;
        assert_eq!(
            store.requeue(id, t(3)).await.unwrap(),
            Requeued::NotDead(status)
        );
        assert_eq!(record(&store, id).await, before);
    }
    assert_eq!(
        store.requeue(Uuid::now_v7(), t(3)).await.unwrap(),
        Requeued::NotFound
    );
    complete(&store, &claims[&claimed[0]], sent(t(4))).await;
}

// ------------------------------------------------------------------ listing

/// `deliveries` lists newest first (by id), filtered by status, channel or
/// both, each item equal to `delivery(id)`; `delivery` of an unknown id is
/// `None`.
pub async fn deliveries_list_newest_first_with_filters(store: SharedStore) {
    let mut model: BTreeMap<Uuid, (&str, DeliveryStatus)> = BTreeMap::new();
    let mut per_notification = Vec::new();
    for i in 0..4 {
        let (_, ids) = put(&store, None, &["email", "webhook"], t(i)).await;
        model.insert(ids[0], ("email", InFlight));
        model.insert(ids[1], ("webhook", InFlight));
        per_notification.push(ids);
    }
    let claims = by_id(claim(&store, t(10), HOUR, 100).await);
    assert_eq!(claims.len(), 8);
    let plan = [
        (per_notification[0][0], sent(t(11)), Sent),
        (per_notification[0][1], dead(t(11)), Dead),
        (per_notification[1][0], retry(t(99), t(11)), Pending),
        (per_notification[1][1], sent(t(11)), Sent),
    ];
    for (id, outcome, status) in plan {
        complete(&store, &claims[&id], outcome).await;
        model.get_mut(&id).unwrap().1 = status;
    }
    for i in 4..6 {
        let (_, ids) = put(&store, None, &["email", "webhook"], t(i)).await;
        model.insert(ids[0], ("email", Pending));
        model.insert(ids[1], ("webhook", Pending));
    }

    for status in [None, Some(Pending), Some(InFlight), Some(Sent), Some(Dead)] {
        for channel in [None, Some("email"), Some("webhook"), Some("sms")] {
            let f = filter(status, channel);
            let expected = newest_first(
                model
                    .iter()
                    .filter(|(_, (c, s))| {
                        status.is_none_or(|x| x == *s) && channel.is_none_or(|x| x == *c)
                    })
                    .map(|(id, _)| *id),
            );
            let got = list(&store, &f, 3).await;
            assert_eq!(record_ids(&got), expected, "listing {f:?}");
            for r in got {
                assert_eq!(Some(&r), store.delivery(r.id).await.unwrap().as_ref());
                assert_eq!((r.channel.as_str(), r.status), model[&r.id]);
            }
        }
    }
    assert_eq!(store.delivery(Uuid::now_v7()).await.unwrap(), None);
}

/// Paging 250 deliveries by 100 yields pages of 100, 100 and 50, each
/// delivery exactly once, newest first, and no cursor after the last page;
/// deliveries enqueued between pages do not disturb the later pages; an
/// exactly full last page has no cursor either.
pub async fn deliveries_paging_yields_each_once(store: SharedStore) {
    let mut created = Vec::new();
    for i in 0..125 {
        let (_, ids) = put(&store, None, &["email", "webhook"], t(0) + us(i)).await;
        created.extend(ids);
    }
    let expected = newest_first(created.clone());
    let mut got = Vec::new();
    let mut page = PageRequest::first(100);
    for (round, size) in [100, 100, 50].into_iter().enumerate() {
        let result = store.deliveries(&all(), page).await.unwrap();
        assert_eq!(result.items.len(), size, "page {round}");
        got.extend(record_ids(&result.items));
        if round == 0 {
            // Newer deliveries arrive while the client pages.
            for i in 0..5 {
                put(&store, None, &["email", "webhook"], t(1) + us(i)).await;
            }
        }
        match result.next {
            Some(cursor) if round < 2 => {
                page = PageRequest {
                    limit: 100,
                    after: Some(cursor),
                }
            }
            None if round == 2 => {}
            other => panic!("page {round} has cursor {other:?}"),
        }
    }
    assert_eq!(got, expected);
    assert_eq!(list(&store, &all(), 100).await.len(), 260);
    // 260 = 2 × 130: a last page exactly full.
    let exact = list(&store, &all(), 130).await;
    assert_eq!(exact.len(), 260);
    let first = store
        .deliveries(&all(), PageRequest::first(130))
        .await
        .unwrap();
    let second = store
        .deliveries(
            &all(),
            PageRequest {
                limit: 130,
                after: first.next,
            },
        )
        .await
        .unwrap();
    assert_eq!((first.items.len(), second.items.len()), (130, 130));
    assert!(first.next.is_some());
    assert_eq!(second.next, None, "an exactly full last page has no cursor");
}

/// With a filter, the last page of matches has no cursor even when older,
/// non-matching deliveries follow it and the page is exactly full.
pub async fn filtered_paging_never_ends_with_an_empty_page(store: SharedStore) {
    let mut sms = Vec::new();
    for i in 0..30 {
        sms.extend(put(&store, None, &["sms"], t(0) + us(i)).await.1);
    }
    let mut email = Vec::new();
    for i in 0..100 {
        email.extend(put(&store, None, &["email"], t(1) + us(i)).await.1);
    }
    let claims = store
        .claim(ClaimRequest {
            now: t(2),
            lease: HOUR,
            limit: 100,
            exclude_channels: vec!["email".into()],
        })
        .await
        .unwrap();
    assert_eq!(ids(&claims), sms.iter().copied().collect());

    let check = async |f: DeliveryFilter, limit: usize, expected: &[Uuid]| {
        let mut page = PageRequest::first(limit);
        let mut got = Vec::new();
        let pages = expected.len() / limit;
        for round in 0..pages {
            let result = store.deliveries(&f, page).await.unwrap();
            assert_eq!(result.items.len(), limit, "{f:?} page {round}");
            got.extend(record_ids(&result.items));
            if round + 1 == pages {
                assert_eq!(result.next, None, "{f:?}: the last page has no cursor");
            } else {
                let cursor = result.next.expect("a cursor before the last page");
                page = PageRequest {
                    limit,
                    after: Some(cursor),
                };
            }
        }
        assert_eq!(got, newest_first(expected.iter().copied()), "{f:?}");
    };
    check(filter(None, Some("email")), 50, &email).await;
    check(filter(Some(Pending), None), 100, &email).await;
    check(filter(Some(Pending), Some("email")), 25, &email).await;
    check(filter(None, Some("sms")), 10, &sms).await;
    check(filter(Some(InFlight), None), 15, &sms).await;
    check(filter(Some(InFlight), Some("sms")), 30, &sms).await;
}

/// `counts` has one entry per channel and status with deliveries, with the
/// exact numbers, and drops an entry that falls to zero.
pub async fn counts_by_channel_and_status(store: SharedStore) {
    let mut n = Vec::new();
    for i in 0..4 {
        n.push(put(&store, None, &["email", "webhook"], t(i)).await.1);
    }
    let (_, log) = put(&store, None, &["log"], t(4)).await;
    let claims = by_id(claim(&store, t(10), HOUR, 100).await);
    assert_eq!(claims.len(), 9);
    complete(&store, &claims[&n[0][0]], sent(t(11))).await;
    complete(&store, &claims[&n[1][0]], dead(t(11))).await;
    complete(&store, &claims[&n[2][0]], retry(t(99), t(11))).await;
    complete(&store, &claims[&n[0][1]], sent(t(11))).await;
    complete(&store, &claims[&n[1][1]], sent(t(11))).await;
    put(&store, None, &["email"], t(12)).await;
    assert_eq!(
        counts(&store).await,
        vec![
            count("email", Pending, 2),
            count("email", InFlight, 1),
            count("email", Sent, 1),
            count("email", Dead, 1),
            count("log", InFlight, 1),
            count("webhook", InFlight, 2),
            count("webhook", Sent, 2),
        ]
    );
    assert_eq!(
        store.requeue(n[1][0], t(13)).await.unwrap(),
        Requeued::Requeued
    );
    complete(&store, &claims[&log[0]], dead(t(13))).await;
    assert_eq!(
        counts(&store).await,
        vec![
            count("email", Pending, 3),
            count("email", InFlight, 1),
            count("email", Sent, 1),
            count("log", Dead, 1),
            count("webhook", InFlight, 2),
            count("webhook", Sent, 2),
        ]
    );
}

// -------------------------------------------------------------------- purge

/// `purge` deletes exactly the notifications created before `before` whose
/// deliveries are all final (or that have none), with their deliveries, and
/// returns how many; pending, in-flight and partly finished ones, newer
/// ones and one created exactly at `before` stay, as do inbox and counts of
/// what stays.
pub async fn purge_removes_only_old_finished_notifications(store: SharedStore) {
    let before = t(3600);
    let alice = Some("alice");
    // Purgeable.
    let (n_sent, d_sent) = put(&store, alice, &["email"], t(0)).await;
    let (n_mixed, d_mixed) = put(&store, alice, &["email", "webhook"], t(1)).await;
    let (n_unrouted, _) = put(&store, alice, &[], t(2)).await;
    // Kept.
    let (n_partial, d_partial) = put(&store, alice, &["email", "webhook"], t(3)).await;
    let (n_inflight, d_inflight) = put(&store, alice, &["email"], t(4)).await;
    let (n_recent, d_recent) = put(&store, alice, &["email"], t(7200)).await;
    let (n_boundary, d_boundary) = put(&store, alice, &["email"], before).await;

    let claims = by_id(claim(&store, t(7300), HOUR, 100).await);
    assert_eq!(claims.len(), 8);
    complete(&store, &claims[&d_sent[0]], sent(t(7301))).await;
    complete(&store, &claims[&d_mixed[0]], sent(t(7301))).await;
    complete(&store, &claims[&d_mixed[1]], dead(t(7301))).await;
    complete(&store, &claims[&d_partial[0]], sent(t(7301))).await;
    complete(&store, &claims[&d_partial[1]], retry(t(99_999), t(7301))).await;
    complete(&store, &claims[&d_recent[0]], sent(t(7301))).await;
    complete(&store, &claims[&d_boundary[0]], sent(t(7301))).await;
    // Never claimed.
    let (n_pending, d_pending) = put(&store, alice, &["email"], t(5)).await;
    assert!(store.mark_read("alice", n_sent.id, t(7302)).await.unwrap());
    assert!(
        store
            .mark_read("alice", n_recent.id, t(7302))
            .await
            .unwrap()
    );
    assert_eq!(unread(&store, "alice").await, 6);

    assert_eq!(store.purge(before, 100).await.unwrap(), 3);
    assert_eq!(store.purge(before, 100).await.unwrap(), 0);

    for id in d_sent.iter().chain(&d_mixed) {
        assert_eq!(
            store.delivery(*id).await.unwrap(),
            None,
            "delivery {id} purged"
        );
    }
    for n in [&n_sent, &n_mixed, &n_unrouted] {
        assert_eq!(store.notification("alice", n.id).await.unwrap(), None);
    }
    let kept = [&n_pending, &n_boundary, &n_recent, &n_inflight, &n_partial];
    assert_eq!(
        notification_ids(&inbox(&store, "alice", 2).await),
        newest_first(kept.iter().map(|n| n.id))
    );
    assert_eq!(unread(&store, "alice").await, 4);
    let kept_deliveries: Vec<Uuid> =
        [d_partial, d_inflight, d_recent, d_boundary, d_pending].concat();
    assert_eq!(
        record_ids(&list(&store, &all(), 100).await),
        newest_first(kept_deliveries)
    );
    assert_eq!(
        counts(&store).await,
        vec![
            count("email", Pending, 1),
            count("email", InFlight, 1),
            count("email", Sent, 3),
            count("webhook", Pending, 1),
        ]
    );
    // Once the rest is final, a later purge takes it.
    assert_eq!(store.purge(t(1_000_000), 100).await.unwrap(), 2);
}

/// `purge` deletes at most `limit` notifications per call; repeated calls
/// finish the job and then return 0.
pub async fn purge_respects_limit(store: SharedStore) {
    for i in 0..3 {
        put(&store, Some("alice"), &[], t(i)).await;
    }
    let mut delivered = Vec::new();
    for i in 3..5 {
        delivered.extend(put(&store, Some("alice"), &["email"], t(i)).await.1);
    }
    let claims = claim(&store, t(10), HOUR, 10).await;
    assert_eq!(ids(&claims), delivered.iter().copied().collect());
    for c in &claims {
        complete(&store, c, sent(t(11))).await;
    }
    let (kept, _) = put(&store, Some("alice"), &["email"], t(6)).await;
    assert_eq!(store.purge(t(100), 0).await.unwrap(), 0);
    assert_eq!(inbox(&store, "alice", 10).await.len(), 6);
    let mut purged = Vec::new();
    for _ in 0..4 {
        purged.push(store.purge(t(100), 2).await.unwrap());
    }
    assert_eq!(purged, vec![2, 2, 1, 0]);
    assert_eq!(
        notification_ids(&inbox(&store, "alice", 10).await),
        vec![kept.id]
    );
    assert_eq!(unread(&store, "alice").await, 1);
    assert_eq!(counts(&store).await, vec![count("email", Pending, 1)]);
}

// -------------------------------------------------------------------- inbox

/// An owner's inbox lists only their notifications, newest first, in pages
/// (120 by 50: 50, 50, 20; 30 by 15: 15, 15), with no cursor after the last.
pub async fn inbox_lists_owner_notifications_newest_first(store: SharedStore) {
    let mut alice = Vec::new();
    let mut bob = Vec::new();
    for i in 0..120 {
        let created = t(0) + us(i);
        let channels: &[&str] = if i % 3 == 0 { &["email"] } else { &[] };
        alice.push(put(&store, Some("alice"), channels, created).await.0);
        if i % 4 == 0 {
            bob.push(put(&store, Some("bob"), &["email"], created).await.0);
        }
        if i % 12 == 0 {
            put(&store, None, &["email"], created).await;
        }
    }
    alice.reverse();
    bob.reverse();
    for (owner, expected, limit, sizes) in [
        ("alice", &alice, 50, vec![50, 50, 20]),
        ("bob", &bob, 15, vec![15, 15]),
    ] {
        let mut page = PageRequest::first(limit);
        let mut got = Vec::new();
        for (round, size) in sizes.iter().enumerate() {
            let result = store.notifications(owner, page).await.unwrap();
            assert_eq!(result.items.len(), *size, "{owner} page {round}");
            got.extend(result.items);
            if round + 1 == sizes.len() {
                assert_eq!(result.next, None, "{owner}: the last page has no cursor");
            } else {
                page = PageRequest {
                    limit,
                    after: Some(result.next.expect("a cursor")),
                };
            }
        }
        assert_eq!(&got, expected, "{owner}'s inbox");
        assert_eq!(unread(&store, owner).await, expected.len() as u64);
    }
    assert_eq!(
        store
            .notifications("carol", PageRequest::first(10))
            .await
            .unwrap(),
        Page {
            items: vec![],
            next: None
        }
    );
}

/// `notification(owner, id)` finds only the owner's own notifications:
/// another owner's (also an owner differing only in case or a trailing
/// space) and unknown ids are `None`.
pub async fn inbox_lookup_is_owner_scoped(store: SharedStore) {
    let (a, _) = put(&store, Some("alice"), &["email"], t(0)).await;
    let (b, _) = put(&store, Some("bob"), &[], t(1)).await;
    assert_eq!(
        store.notification("alice", a.id).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        store.notification("bob", b.id).await.unwrap(),
        Some(b.clone())
    );
    for (owner, id) in [
        ("bob", a.id),
        ("alice", b.id),
        ("ALICE", a.id),
        ("alice ", a.id),
        ("", a.id),
        ("alice", Uuid::now_v7()),
    ] {
        assert_eq!(
            store.notification(owner, id).await.unwrap(),
            None,
            "{owner:?} must not see {id}"
        );
        assert!(
            store
                .notifications(owner, PageRequest::first(10))
                .await
                .unwrap()
                .items
                .iter()
                .all(|n| n.event.owner.as_deref() == Some(owner))
        );
    }
    assert_eq!(unread(&store, "ALICE").await, 0);
    assert_eq!(unread(&store, "alice ").await, 0);
}

/// `mark_read` marks the owner's own notification read (true), keeps the
/// first read time when repeated (still true, unread count decremented
/// once), and is false for another owner's or an unknown id, leaving that
/// owner's state untouched; deliveries are not affected.
pub async fn mark_read_is_owner_scoped_and_keeps_first_read_time(store: SharedStore) {
    let mut a = Vec::new();
    for i in 0..3 {
        a.push(put(&store, Some("alice"), &["email"], t(i)).await.0);
    }
    let (b1, _) = put(&store, Some("bob"), &["email"], t(3)).await;
    put(&store, Some("bob"), &[], t(4)).await;
    let deliveries_before = list(&store, &all(), 100).await;
    assert_eq!(unread(&store, "alice").await, 3);
    assert_eq!(unread(&store, "bob").await, 2);

    assert!(
        store
            .mark_read("alice", a[0].id, t(100) + us(1))
            .await
            .unwrap()
    );
    assert_eq!(unread(&store, "alice").await, 2);
    assert_eq!(
        read_at(&store, "alice", a[0].id).await,
        Some(t(100) + us(1))
    );
    assert!(store.mark_read("alice", a[0].id, t(200)).await.unwrap());
    assert_eq!(unread(&store, "alice").await, 2);
    assert_eq!(
        read_at(&store, "alice", a[0].id).await,
        Some(t(100) + us(1))
    );

    assert!(!store.mark_read("alice", b1.id, t(300)).await.unwrap());
    assert!(!store.mark_read("ALICE", a[1].id, t(300)).await.unwrap());
    assert!(!store.mark_read("bob", a[1].id, t(300)).await.unwrap());
    assert!(
        !store
            .mark_read("alice", Uuid::now_v7(), t(300))
            .await
            .unwrap()
    );
    assert_eq!(unread(&store, "bob").await, 2);
    assert_eq!(read_at(&store, "bob", b1.id).await, None);
    assert_eq!(unread(&store, "alice").await, 2);
    assert_eq!(
        inbox(&store, "alice", 10)
            .await
            .into_iter()
            .map(|n| (n.id, n.read_at))
            .collect::<Vec<_>>(),
        vec![
            (a[2].id, None),
            (a[1].id, None),
            (a[0].id, Some(t(100) + us(1)))
        ]
    );
    assert_eq!(list(&store, &all(), 100).await, deliveries_before);
}

/// `mark_all_read` marks the owner's unread notifications read at `now`,
/// returns how many changed (0 when repeated), keeps earlier read times, and
/// leaves other owners alone.
pub async fn mark_all_read_counts_changes(store: SharedStore) {
    let mut a = Vec::new();
    for i in 0..4 {
        a.push(put(&store, Some("alice"), &["email"], t(i)).await.0);
    }
    let (b1, _) = put(&store, Some("bob"), &["email"], t(5)).await;
    assert!(store.mark_read("alice", a[1].id, t(50)).await.unwrap());

    assert_eq!(store.mark_all_read("alice", t(100)).await.unwrap(), 3);
    assert_eq!(unread(&store, "alice").await, 0);
    let read: Vec<_> = inbox(&store, "alice", 10)
        .await
        .into_iter()
        .map(|n| (n.id, n.read_at))
        .collect();
    assert_eq!(
        read,
        vec![
            (a[3].id, Some(t(100))),
            (a[2].id, Some(t(100))),
            (a[1].id, Some(t(50))),
            (a[0].id, Some(t(100))),
        ]
    );
    assert_eq!(store.mark_all_read("alice", t(200)).await.unwrap(), 0);
    assert_eq!(read_at(&store, "alice", a[0].id).await, Some(t(100)));
    assert_eq!(unread(&store, "bob").await, 1);
    assert_eq!(read_at(&store, "bob", b1.id).await, None);

    let (a5, _) = put(&store, Some("alice"), &[], t(6)).await;
    assert_eq!(unread(&store, "alice").await, 1);
    assert_eq!(store.mark_all_read("alice", t(300)).await.unwrap(), 1);
    assert_eq!(read_at(&store, "alice", a5.id).await, Some(t(300)));
    assert_eq!(store.mark_all_read("carol", t(300)).await.unwrap(), 0);
    assert_eq!(unread(&store, "carol").await, 0);
    assert_eq!(unread(&store, "bob").await, 1);
}

/// A notification without an owner is delivered but belongs to no inbox
/// (not even the empty owner's): no one finds, counts or marks it.
pub async fn ownerless_notifications_are_in_no_inbox(store: SharedStore) {
    let (n, deliveries) = put(&store, None, &["email"], t(0)).await;
    let (a, _) = put(&store, Some("alice"), &[], t(1)).await;
    for owner in ["", "alice", "bob", "null", "None"] {
        assert_eq!(store.notification(owner, n.id).await.unwrap(), None);
        assert!(!store.mark_read(owner, n.id, t(2)).await.unwrap());
    }
    assert!(inbox(&store, "", 10).await.is_empty());
    assert_eq!(unread(&store, "").await, 0);
    assert_eq!(store.mark_all_read("", t(2)).await.unwrap(), 0);
    assert_eq!(inbox(&store, "alice", 10).await, vec![a]);
    assert_eq!(unread(&store, "alice").await, 1);
    let c = claim_one(&store, deliveries[0], t(3), LEASE).await;
    assert_eq!(c.delivery.notification, n);
    assert_eq!(c.delivery.notification.read_at, None);
}

// -------------------------------------------------------------- concurrency

/// 8 concurrent claimers over 500 due deliveries, under a long lease: every
/// delivery is claimed exactly once in total, each with its own token.
pub async fn concurrent_claimers_claim_each_delivery_once(store: SharedStore) {
    let mut expected = BTreeSet::new();
    for i in 0..250 {
        expected.extend(
            put(&store, None, &["email", "webhook"], t(0) + us(i))
                .await
                .1,
        );
    }
    let mut tasks = JoinSet::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = claim(&store, t(60), HOUR, 7).await;
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch);
                if mine.len() > 500 {
                    return mine; // more than exist: reported below, not looped on
                }
            }
        });
    }
    let claims: Vec<Claim> = tasks.join_all().await.into_iter().flatten().collect();
    assert_eq!(claims.len(), 500, "each delivery claimed exactly once");
    assert_eq!(ids(&claims), expected);
    assert_eq!(
        claims.iter().map(|c| c.token).collect::<HashSet<_>>().len(),
        500
    );
    assert!(claim(&store, t(60), HOUR, 10).await.is_empty());
    for c in claims.iter().step_by(50) {
        let r = record(&store, c.delivery.id).await;
        assert_eq!((r.status, r.lease_until), (InFlight, Some(t(3660))));
    }
    assert_eq!(
        counts(&store).await,
        vec![
            count("email", InFlight, 250),
            count("webhook", InFlight, 250)
        ]
    );
}

/// 4 producers enqueue while 4 claimers claim and complete: every delivery
/// is claimed exactly once and ends sent.
pub async fn concurrent_claim_and_enqueue_lose_nothing(store: SharedStore) {
    let done = Arc::new(AtomicBool::new(false));
    let mut producers = JoinSet::new();
    for p in 0..4 {
        let store = store.clone();
        producers.spawn(async move {
            let mut ids = Vec::new();
            for i in 0..50 {
                let (_, d) = put(&store, None, &["email", "webhook"], t(0) + us(p * 100 + i)).await;
                ids.extend(d);
            }
            ids
        });
    }
    let mut claimers = JoinSet::new();
    for _ in 0..4 {
        let store = store.clone();
        let done = done.clone();
        claimers.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let finished = done.load(Ordering::SeqCst);
                let batch = claim(&store, t(60), HOUR, 5).await;
                if batch.is_empty() {
                    if finished {
                        return mine;
                    }
                    tokio::task::yield_now().await;
                }
                for c in batch {
                    complete(&store, &c, sent(t(61))).await;
                    mine.push(c.delivery.id);
                }
                if mine.len() > 400 {
                    return mine; // more than exist: reported below, not looped on
                }
            }
        });
    }
    let enqueued: Vec<Uuid> = producers.join_all().await.into_iter().flatten().collect();
    done.store(true, Ordering::SeqCst);
    let claimed: Vec<Uuid> = claimers.join_all().await.into_iter().flatten().collect();
    assert_eq!(enqueued.len(), 400);
    assert_eq!(claimed.len(), 400, "each delivery claimed exactly once");
    assert_eq!(
        claimed.into_iter().collect::<BTreeSet<_>>(),
        enqueued.into_iter().collect::<BTreeSet<_>>()
    );
    assert_eq!(
        counts(&store).await,
        vec![count("email", Sent, 200), count("webhook", Sent, 200)]
    );
}

/// Slow workers complete under their expired leases while another worker
/// reclaims the same deliveries: for each delivery exactly one side wins
/// (the slow outcome is recorded and nothing is reclaimed, or it is
/// reclaimed and the slow outcome is stale), and the new token then works.
pub async fn concurrent_complete_and_reclaim_keep_fencing(store: SharedStore) {
    const N: usize = 200;
    let mut all_ids = BTreeSet::new();
    for i in 0..N {
        all_ids.extend(put(&store, None, &["email"], t(0) + us(i as i64)).await.1);
    }
    let first = claim(&store, t(1), Duration::from_secs(10), N).await;
    assert_eq!(ids(&first), all_ids);
    let old_tokens: HashMap<Uuid, LeaseToken> =
        first.iter().map(|c| (c.delivery.id, c.token)).collect();

    let slow = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut results = Vec::new();
            for c in first {
                let outcome = Outcome::Sent {
                    receipt: Receipt::new("slow"),
                    at: t(20),
                };
                let result = store.complete(c.delivery.id, c.token, outcome).await;
                results.push((c.delivery.id, result));
            }
            results
        })
    };
    let fast = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut taken = Vec::new();
            loop {
                let batch = claim(&store, t(20), HOUR, 4).await;
                if batch.is_empty() {
                    return taken;
                }
                taken.extend(batch);
                if taken.len() > N {
                    return taken; // more than exist: reported below, not looped on
                }
            }
        })
    };
    let (slow, fast) = (slow.await.unwrap(), fast.await.unwrap());

    let mut slow_won = BTreeSet::new();
    for (id, result) in slow {
        match result {
            Ok(()) => {
                slow_won.insert(id);
            }
            Err(e) => assert_eq!(e, StoreError::StaleLease(id)),
        }
    }
    let taken = ids(&fast);
    assert_eq!(taken.len(), fast.len(), "no delivery reclaimed twice");
    assert!(
        slow_won.is_disjoint(&taken),
        "a delivery both sent and reclaimed"
    );
    assert_eq!(
        slow_won.union(&taken).copied().collect::<BTreeSet<_>>(),
        all_ids
    );
    for id in &slow_won {
        let r = record(&store, *id).await;
        assert_eq!(
            (r.status, r.receipt.as_deref(), r.attempts),
            (Sent, Some("slow"), 1)
        );
    }
    for c in &fast {
        let id = c.delivery.id;
        assert_ne!(c.token, old_tokens[&id]);
        assert_eq!(c.delivery.attempt, 1);
        let r = record(&store, id).await;
        assert_eq!((r.status, r.lease_until), (InFlight, Some(t(3620))));
        let outcome = Outcome::Sent {
            receipt: Receipt::new("fast"),
            at: t(21),
        };
        complete(&store, c, outcome).await;
        assert_eq!(
            store.complete(id, old_tokens[&id], sent(t(22))).await,
            stale(id)
        );
        let r = record(&store, id).await;
        assert_eq!(
            (r.status, r.receipt.as_deref(), r.attempts),
            (Sent, Some("fast"), 1)
        );
    }
    assert_eq!(counts(&store).await, vec![count("email", Sent, N as u64)]);
}

/// Eight workers record different outcomes under one token at once: exactly
/// one is accepted per delivery, and the record shows that one.
pub async fn concurrent_completes_with_one_token_have_one_winner(store: SharedStore) {
    let mut all_ids = Vec::new();
    for i in 0..20 {
        all_ids.extend(put(&store, None, &["email"], t(0) + us(i)).await.1);
    }
    let claims = claim(&store, t(1), HOUR, 100).await;
    assert_eq!(claims.len(), 20);
    let outcome = |worker: usize| match worker % 3 {
        0 => Outcome::Sent {
            receipt: Receipt::new(format!("worker {worker}")),
            at: t(2),
        },
        1 => Outcome::Retry {
            error: format!("worker {worker}"),
            next_attempt_at: t(100),
            at: t(2),
        },
        _ => Outcome::Dead {
            error: format!("worker {worker}"),
            at: t(2),
        },
    };
    let mut tasks = JoinSet::new();
    for c in &claims {
        for worker in 0..8 {
            let store = store.clone();
            let (id, token) = (c.delivery.id, c.token);
            tasks.spawn(
                async move { (id, worker, store.complete(id, token, outcome(worker)).await) },
            );
        }
    }
    let mut winners: HashMap<Uuid, usize> = HashMap::new();
    for (id, worker, result) in tasks.join_all().await {
        match result {
            Ok(()) => assert!(
                winners.insert(id, worker).is_none(),
                "two outcomes accepted for {id}"
            ),
            Err(e) => assert_eq!(e, StoreError::StaleLease(id)),
        }
    }
    assert_eq!(winners.len(), 20, "one outcome accepted per delivery");
    for (id, worker) in winners {
        let r = record(&store, id).await;
        let label = format!("worker {worker}");
        let seen = match r.status {
            Sent => r.receipt,
            Pending | Dead => r.last_error,
            InFlight => None,
        };
        let status = [Sent, Pending, Dead][worker % 3];
        assert_eq!((r.status, seen, r.attempts), (status, Some(label), 1));
    }
}

/// Concurrent read marks count each notification once: 16 concurrent
/// `mark_read` of one notification decrement the unread count by one, and
/// the results of 8 concurrent `mark_all_read` add up to the unread count.
pub async fn concurrent_read_marks_count_each_notification_once(store: SharedStore) {
    let mut alice = Vec::new();
    for i in 0..50 {
        alice.push(put(&store, Some("alice"), &[], t(0) + us(i)).await.0.id);
    }
    let mut bob = Vec::new();
    for i in 0..3 {
        bob.push(put(&store, Some("bob"), &[], t(0) + us(i)).await.0.id);
    }
    let mut marks = JoinSet::new();
    for i in 0..16 {
        let store = store.clone();
        let id = bob[0];
        marks.spawn(async move { store.mark_read("bob", id, t(10) + us(i)).await.unwrap() });
    }
    assert!(marks.join_all().await.into_iter().all(|ok| ok));
    assert_eq!(unread(&store, "bob").await, 2);
    let first = read_at(&store, "bob", bob[0]).await.expect("read");
    assert!(first >= t(10) && first < t(10) + us(16));

    let mut sweeps = JoinSet::new();
    for i in 0..8 {
        let store = store.clone();
        sweeps.spawn(async move { store.mark_all_read("alice", t(20) + us(i)).await.unwrap() });
    }
    let changed: u64 = sweeps.join_all().await.into_iter().sum();
    assert_eq!(
        changed, 50,
        "each notification changed by exactly one sweep"
    );
    assert_eq!(unread(&store, "alice").await, 0);
    assert!(inbox(&store, "alice", 100).await.iter().all(|n| {
        n.read_at
            .is_some_and(|at| at >= t(20) && at < t(20) + us(8))
    }));
    assert_eq!(unread(&store, "bob").await, 2);
}
