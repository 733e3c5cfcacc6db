//! [`CountingStore`]: a store wrapper that counts claim rounds, so a test can
//! wait until the dispatcher has demonstrably looked for due work before it
//! asserts that nothing was sent (instead of sleeping and hoping). It also
//! records the writes a test may want to count (single and batch enqueues,
//! dedup lookups) and can make batch writes fail from the n-th on, to test
//! how callers handle a store failure.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use clarion_core::notification::Notification;
use clarion_core::store::*;
use uuid::Uuid;

/// Forwards every call to `inner`, counting `claim` calls.
#[derive(Debug)]
pub struct CountingStore<S> {
    inner: S,
    claims: AtomicUsize,
    enqueues: AtomicUsize,
    lookups: AtomicUsize,
    batches: Mutex<Vec<usize>>,
    /// Batch writes from this index on fail (`usize::MAX`: none).
    fail_batches_from: AtomicUsize,
}

impl<S: Default> Default for CountingStore<S> {
    fn default() -> Self {
        CountingStore::new(S::default())
    }
}

impl<S> CountingStore<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        CountingStore {
            inner,
            claims: AtomicUsize::new(0),
            enqueues: AtomicUsize::new(0),
            lookups: AtomicUsize::new(0),
            batches: Mutex::new(Vec::new()),
            fail_batches_from: AtomicUsize::new(usize::MAX),
        }
    }

    /// How many single `enqueue` calls ran so far.
    pub fn enqueues(&self) -> usize {
        self.enqueues.load(Ordering::SeqCst)
    }

    /// How many `taken_dedup_keys` lookups ran so far.
    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }

    /// The size of every `enqueue_batch` call so far (failed ones included).
    pub fn batches(&self) -> Vec<usize> {
        self.batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Makes the `n`-th `enqueue_batch` call (counting from 0) and every
    /// later one fail with a retryable backend error, storing nothing.
    pub fn fail_batches_from(&self, n: usize) {
        self.fail_batches_from.store(n, Ordering::SeqCst);
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
        self.enqueues.fetch_add(1, Ordering::SeqCst);
        self.inner.enqueue(new).await
    }
    async fn enqueue_batch(
        &self,
        batch: Vec<NewNotification>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        let index = {
            let mut batches = self.batches.lock().unwrap_or_else(|p| p.into_inner());
            batches.push(batch.len());
            batches.len() - 1
        };
        if index >= self.fail_batches_from.load(Ordering::SeqCst) {
            return Err(StoreError::backend(
                format!("batch write {index} failed (injected by CountingStore)"),
                true,
            ));
        }
        self.inner.enqueue_batch(batch).await
    }
    async fn taken_dedup_keys(
        &self,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
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
