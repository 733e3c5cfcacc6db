//! [`CountingStore`]: a store wrapper that counts claim rounds, so a test can
//! wait until the dispatcher has demonstrably looked for due work before it
//! asserts that nothing was sent (instead of sleeping and hoping).

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clarion_core::notification::Notification;
use clarion_core::store::*;
use uuid::Uuid;

/// Forwards every call to `inner`, counting `claim` calls.
#[derive(Debug, Default)]
pub struct CountingStore<S> {
    inner: S,
    claims: AtomicUsize,
}

impl<S> CountingStore<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        CountingStore {
            inner,
            claims: AtomicUsize::new(0),
        }
    }

    /// How many claim rounds ran so far.
    pub fn claims(&self) -> usize {
        self.claims.load(Ordering::SeqCst)
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

#[async_trait]
impl<S: NotificationsStore> OutboxStore for CountingStore<S> {
    async fn enqueue(&self, new: NewNotification) -> Result<Enqueued, StoreError> {
        self.inner.enqueue(new).await
    }
    async fn enqueue_batch(
        &self,
        batch: Vec<NewNotification>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        self.inner.enqueue_batch(batch).await
    }
    async fn taken_dedup_keys(
        &self,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        self.inner.taken_dedup_keys(keys).await
    }
    async fn claim(&self, request: ClaimRequest) -> Result<Vec<Claim>, StoreError> {
        let claimed = self.inner.claim(request).await;
        self.claims.fetch_add(1, Ordering::SeqCst);
        claimed
    }
    async fn complete(
        &self,
        id: Uuid,
        token: LeaseToken,
        outcome: Outcome,
    ) -> Result<(), StoreError> {
        self.inner.complete(id, token, outcome).await
    }
    async fn requeue(&self, id: Uuid, now: DateTime<Utc>) -> Result<Requeued, StoreError> {
        self.inner.requeue(id, now).await
    }
    async fn delivery(&self, id: Uuid) -> Result<Option<DeliveryRecord>, StoreError> {
        self.inner.delivery(id).await
    }
    async fn deliveries(
        &self,
        filter: &DeliveryFilter,
        page: PageRequest,
    ) -> Result<Page<DeliveryRecord>, StoreError> {
        self.inner.deliveries(filter, page).await
    }
    async fn counts(&self) -> Result<Vec<StatusCount>, StoreError> {
        self.inner.counts().await
    }
    async fn purge(&self, before: DateTime<Utc>, limit: usize) -> Result<u64, StoreError> {
        self.inner.purge(before, limit).await
    }
}

#[async_trait]
impl<S: NotificationsStore> InboxStore for CountingStore<S> {
    async fn notifications(
        &self,
        owner: &str,
        page: PageRequest,
    ) -> Result<Page<Notification>, StoreError> {
        self.inner.notifications(owner, page).await
    }
    async fn notification(
        &self,
        owner: &str,
        id: Uuid,
    ) -> Result<Option<Notification>, StoreError> {
        self.inner.notification(owner, id).await
    }
    async fn unread_count(&self, owner: &str) -> Result<u64, StoreError> {
        self.inner.unread_count(owner).await
    }
    async fn mark_read(
        &self,
        owner: &str,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.inner.mark_read(owner, id, now).await
    }
    async fn mark_all_read(&self, owner: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.inner.mark_all_read(owner, now).await
    }
}
