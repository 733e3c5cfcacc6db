//! [`MemoryStore`]: the whole store contract in process memory.
//!
//! For tests, examples and single-process setups that accept losing the queue
//! on restart. One mutex guards all state, so every method is atomic; no
//! method awaits while holding it. Claims read ordered indexes (due time,
//! lease expiry) instead of scanning.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::channel::Delivery;
use crate::clock::add;
use crate::notification::Notification;
use crate::store::*;

mod batch;

/// An in-memory [`NotificationsStore`].
///
/// ```
/// use clarion_core::memory::MemoryStore;
/// use clarion_core::store::InboxStore;
/// # tokio_test_block_on(async {
/// let store = MemoryStore::new();
/// assert_eq!(store.unread_count("alice").await.unwrap(), 0);
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f) }
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    notifications: HashMap<Uuid, Entry>,
    /// Owner → notification ids (UUIDv7, so ordered by creation).
    inbox: HashMap<String, BTreeSet<Uuid>>,
    unread: HashMap<String, u64>,
    dedup: HashMap<String, Uuid>,
    deliveries: HashMap<Uuid, Slot>,
    /// All delivery ids, for newest-first listing.
    delivery_ids: BTreeSet<Uuid>,
    /// Pending deliveries by due time.
    due: BTreeSet<(DateTime<Utc>, Uuid)>,
    /// In-flight deliveries by lease expiry.
    leased: BTreeSet<(DateTime<Utc>, Uuid)>,
}

#[derive(Debug)]
struct Entry {
    notification: Notification,
    deliveries: Vec<Uuid>,
}

#[derive(Debug)]
struct Slot {
    record: DeliveryRecord,
    token: Option<Uuid>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change:
        // every method validates before it mutates.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    /// Stores a validated notification (or reports its key's holder).
    fn enqueue(&mut self, new: NewNotification) -> Enqueued {
        let state = self;
        let notification = new.notification;
        if let Some(key) = &notification.event.dedup_key
            && let Some(existing) = state.dedup.get(key)
        {
            return Enqueued::Duplicate {
                existing_id: *existing,
            };
        }
        let now = notification.created_at;
        let id = notification.id;
        let mut deliveries = Vec::with_capacity(new.channels.len());
        for channel in new.channels {
            let record = DeliveryRecord {
                id: Uuid::now_v7(),
                notification_id: id,
                channel,
                status: DeliveryStatus::Pending,
                attempts: 0,
                next_attempt_at: Some(now),
                lease_until: None,
                last_error: None,
                sent_at: None,
                receipt: None,
                created_at: now,
                updated_at: now,
            };
            deliveries.push(record.id);
            state.index(&record);
            state.delivery_ids.insert(record.id);
            state.deliveries.insert(
                record.id,
                Slot {
                    record,
                    token: None,
                },
            );
        }
        if let Some(key) = &notification.event.dedup_key {
            state.dedup.insert(key.clone(), id);
        }
        if let Some(owner) = &notification.event.owner {
            state.inbox.entry(owner.clone()).or_default().insert(id);
            if notification.read_at.is_none() {
                *state.unread.entry(owner.clone()).or_default() += 1;
            }
        }
        state.notifications.insert(
            id,
            Entry {
                notification,
                deliveries: deliveries.clone(),
            },
        );
        Enqueued::Created {
            notification_id: id,
            deliveries,
        }
    }

    fn unindex(&mut self, record: &DeliveryRecord) {
        match record.status {
            DeliveryStatus::Pending => {
                if let Some(at) = record.next_attempt_at {
                    self.due.remove(&(at, record.id));
                }
            }
            DeliveryStatus::InFlight => {
                if let Some(at) = record.lease_until {
                    self.leased.remove(&(at, record.id));
                }
            }
            DeliveryStatus::Sent | DeliveryStatus::Dead => {}
        }
    }

    fn index(&mut self, record: &DeliveryRecord) {
        match record.status {
            DeliveryStatus::Pending => {
                if let Some(at) = record.next_attempt_at {
                    self.due.insert((at, record.id));
                }
            }
            DeliveryStatus::InFlight => {
                if let Some(at) = record.lease_until {
                    self.leased.insert((at, record.id));
                }
            }
            DeliveryStatus::Sent | DeliveryStatus::Dead => {}
        }
    }

    /// Applies `change` to a delivery, keeping the indexes right.
    fn update(&mut self, id: Uuid, change: impl FnOnce(&mut Slot)) {
        let Some(mut slot) = self.deliveries.remove(&id) else {
            return;
        };
        self.unindex(&slot.record);
        change(&mut slot);
        self.index(&slot.record);
        self.deliveries.insert(id, slot);
    }

    fn candidates(&self, now: DateTime<Utc>, request: &ClaimRequest) -> Vec<Uuid> {
        let excluded = |id: &Uuid| {
            !request.exclude_channels.is_empty()
                && request
                    .exclude_channels
                    .contains(&self.deliveries[id].record.channel)
        };
        let mut due = self.due.iter().take_while(|(at, _)| *at <= now).peekable();
        let mut expired = self
            .leased
            .iter()
            .take_while(|(at, _)| *at <= now)
            .peekable();
        let mut out = Vec::new();
        // Merge both queues, oldest first.
        while out.len() < request.limit {
            let next = match (due.peek(), expired.peek()) {
                (Some(a), Some(b)) if b < a => expired.next(),
                (Some(_), _) => due.next(),
                (None, Some(_)) => expired.next(),
                (None, None) => break,
            };
            let (_, id) = next.expect("peeked");
            if !excluded(id) {
                out.push(*id);
            }
        }
        out
    }
}

fn page<T>(
    ids: impl DoubleEndedIterator<Item = Uuid>,
    page: PageRequest,
    mut get: impl FnMut(Uuid) -> Option<T>,
) -> Page<T> {
    let mut items = Vec::new();
    let mut last = None;
    let mut more = false;
    for id in ids
        .rev()
        .filter(|id| page.after.is_none_or(|after| *id < after))
    {
        // Only a further *matching* item makes a next page: with a filter,
        // a full page followed by non-matching items is the last page.
        let Some(item) = get(id) else { continue };
        if items.len() == page.limit {
            more = true;
            break;
        }
        items.push(item);
        last = Some(id);
    }
    Page {
        items,
        next: if more { last } else { None },
    }
}

#[async_trait]
impl OutboxStore for MemoryStore {
    async fn enqueue(&self, new: NewNotification) -> Result<Enqueued, StoreError> {
        crate::validation::validate_event(&new.notification.event, None)?;
        Ok(self.state().enqueue(new))
    }

    async fn enqueue_batch(
        &self,
        batch: Vec<NewNotification>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        self.enqueue_all(batch)
    }

    async fn taken_dedup_keys(&self, keys: &[String]) -> Result<HashSet<String>, StoreError> {
        Ok(self.taken(keys))
    }

    async fn claim(&self, request: ClaimRequest) -> Result<Vec<Claim>, StoreError> {
        let now = request.now;
        let lease_until = add(now, request.lease);
        let mut state = self.state();
        let ids = state.candidates(now, &request);
        let mut claims = Vec::with_capacity(ids.len());
        for id in ids {
            let token = Uuid::now_v7();
            state.update(id, |slot| {
                slot.record.status = DeliveryStatus::InFlight;
                slot.record.lease_until = Some(lease_until);
                slot.record.next_attempt_at = None;
                slot.record.updated_at = now;
                slot.token = Some(token);
            });
            let record = &state.deliveries[&id].record;
            let notification = state.notifications[&record.notification_id]
                .notification
                .clone();
            claims.push(Claim {
                delivery: Delivery {
                    id,
                    channel: record.channel.clone(),
                    attempt: record.attempts + 1,
                    notification,
                },
                token: LeaseToken(token),
                lease_until,
                created_at: record.created_at,
            });
        }
        Ok(claims)
    }

    async fn complete(
        &self,
        delivery_id: Uuid,
        token: LeaseToken,
        outcome: Outcome,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let current = state.deliveries.get(&delivery_id);
        let held = current.is_some_and(|slot| {
            slot.record.status == DeliveryStatus::InFlight && slot.token == Some(token.0)
        });
        if !held {
            return Err(StoreError::StaleLease(delivery_id));
        }
        state.update(delivery_id, |slot| {
            let record = &mut slot.record;
            record.attempts += 1;
            record.lease_until = None;
            slot.token = None;
            match outcome {
                Outcome::Sent { receipt, at } => {
                    record.status = DeliveryStatus::Sent;
                    record.sent_at = Some(at);
                    record.receipt = receipt.detail;
                    record.updated_at = at;
                }
                Outcome::Retry {
                    error,
                    next_attempt_at,
                    at,
                } => {
                    record.status = DeliveryStatus::Pending;
                    record.next_attempt_at = Some(next_attempt_at);
                    record.last_error = Some(error);
                    record.updated_at = at;
                }
                Outcome::Dead { error, at } => {
                    record.status = DeliveryStatus::Dead;
                    record.last_error = Some(error);
                    record.updated_at = at;
                }
            }
        });
        Ok(())
    }

    async fn requeue(&self, delivery_id: Uuid, now: DateTime<Utc>) -> Result<Requeued, StoreError> {
        let mut state = self.state();
        let Some(slot) = state.deliveries.get(&delivery_id) else {
            return Ok(Requeued::NotFound);
        };
        if slot.record.status != DeliveryStatus::Dead {
            return Ok(Requeued::NotDead(slot.record.status));
        }
        state.update(delivery_id, |slot| {
            slot.record.status = DeliveryStatus::Pending;
            slot.record.attempts = 0;
            slot.record.next_attempt_at = Some(now);
            slot.record.updated_at = now;
        });
        Ok(Requeued::Requeued)
    }

    async fn delivery(&self, delivery_id: Uuid) -> Result<Option<DeliveryRecord>, StoreError> {
        Ok(self
            .state()
            .deliveries
            .get(&delivery_id)
            .map(|s| s.record.clone()))
    }

    async fn deliveries(
        &self,
        filter: &DeliveryFilter,
        request: PageRequest,
    ) -> Result<Page<DeliveryRecord>, StoreError> {
        let state = self.state();
        Ok(page(state.delivery_ids.iter().copied(), request, |id| {
            let record = &state.deliveries[&id].record;
            let wanted = filter.status.is_none_or(|s| s == record.status)
                && filter.channel.as_ref().is_none_or(|c| *c == record.channel);
            wanted.then(|| record.clone())
        }))
    }

    async fn counts(&self) -> Result<Vec<StatusCount>, StoreError> {
        let state = self.state();
        let mut counts: HashMap<(&str, DeliveryStatus), u64> = HashMap::new();
        for slot in state.deliveries.values() {
            *counts
                .entry((slot.record.channel.as_str(), slot.record.status))
                .or_default() += 1;
        }
        let mut out: Vec<_> = counts
            .into_iter()
            .map(|((channel, status), count)| StatusCount {
                channel: channel.to_owned(),
                status,
                count,
            })
            .collect();
        out.sort_by(|a, b| (&a.channel, a.status).cmp(&(&b.channel, b.status)));
        Ok(out)
    }

    async fn purge(&self, before: DateTime<Utc>, limit: usize) -> Result<u64, StoreError> {
        let mut state = self.state();
        let doomed: Vec<Uuid> = state
            .notifications
            .values()
            .filter(|e| e.notification.created_at < before)
            .filter(|e| {
                e.deliveries
                    .iter()
                    .all(|d| state.deliveries[d].record.status.is_final())
            })
            .map(|e| e.notification.id)
            .take(limit)
            .collect();
        for id in &doomed {
            let entry = state.notifications.remove(id).expect("listed above");
            for delivery in entry.deliveries {
                state.deliveries.remove(&delivery);
                state.delivery_ids.remove(&delivery);
            }
            let event = entry.notification.event;
            if let Some(key) = event.dedup_key {
                state.dedup.remove(&key);
            }
            if let Some(owner) = event.owner {
                if let Some(ids) = state.inbox.get_mut(&owner) {
                    ids.remove(id);
                }
                if entry.notification.read_at.is_none()
                    && let Some(n) = state.unread.get_mut(&owner)
                {
                    *n -= 1;
                }
            }
        }
        Ok(doomed.len() as u64)
    }
}

#[async_trait]
impl InboxStore for MemoryStore {
    async fn notifications(
        &self,
        owner: &str,
        request: PageRequest,
    ) -> Result<Page<Notification>, StoreError> {
        let state = self.state();
        let Some(ids) = state.inbox.get(owner) else {
            return Ok(Page {
                items: vec![],
                next: None,
            });
        };
        Ok(page(ids.iter().copied(), request, |id| {
            state.notifications.get(&id).map(|e| e.notification.clone())
        }))
    }

    async fn notification(
        &self,
        owner: &str,
        id: Uuid,
    ) -> Result<Option<Notification>, StoreError> {
        Ok(self
            .state()
            .notifications
            .get(&id)
            .filter(|e| e.notification.event.owner.as_deref() == Some(owner))
            .map(|e| e.notification.clone()))
    }

    async fn unread_count(&self, owner: &str) -> Result<u64, StoreError> {
        Ok(self.state().unread.get(owner).copied().unwrap_or(0))
    }

    async fn mark_read(
        &self,
        owner: &str,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some(entry) = state.notifications.get_mut(&id) else {
            return Ok(false);
        };
        if entry.notification.event.owner.as_deref() != Some(owner) {
            return Ok(false);
        }
        if entry.notification.read_at.is_none() {
            entry.notification.read_at = Some(now);
            if let Some(n) = state.unread.get_mut(owner) {
                *n -= 1;
            }
        }
        Ok(true)
    }

    async fn mark_all_read(&self, owner: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut state = self.state();
        let ids: Vec<Uuid> = state
            .inbox
            .get(owner)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default();
        let mut changed = 0;
        for id in ids {
            if let Some(entry) = state.notifications.get_mut(&id)
                && entry.notification.read_at.is_none()
            {
                entry.notification.read_at = Some(now);
                changed += 1;
            }
        }
        state.unread.insert(owner.to_owned(), 0);
        Ok(changed)
    }
}
