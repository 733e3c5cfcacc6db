//! The memory store's batch writes: one lock for the whole batch, taken only
//! after every entry passed validation, so a batch is all or nothing.

use std::collections::HashSet;

use super::MemoryStore;
use crate::store::{Enqueued, NewNotification, StoreError, check_batch};

impl MemoryStore {
    pub(super) fn enqueue_all(
        &self,
        batch: Vec<NewNotification>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        check_batch(&batch)?;
        let mut state = self.state();
        // Inserting in order makes a later entry with an earlier one's key
        // its duplicate, as the contract asks.
        Ok(batch.into_iter().map(|new| state.enqueue(new)).collect())
    }

    pub(super) fn taken(&self, keys: &[String]) -> HashSet<String> {
        let state = self.state();
        keys.iter()
            .filter(|key| state.dedup.contains_key(*key))
            .cloned()
            .collect()
    }
}
