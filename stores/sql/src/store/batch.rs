//! Batch writes on every dialect: `enqueue_batch` (one transaction, a few
//! multi-row statements), its transactional-outbox forms, and the bulk dedup
//! lookup deadline scans use.
//!
//! No `RETURNING` is needed (MariaDB has none), so one path serves all three
//! engines: the batch's own duplicates are resolved in memory (the first of
//! a key wins), the keys' holders are read with one `SELECT … IN`, and the
//! rest is written with one multi-row INSERT for the notifications (13
//! parameters a row: 13,000 for [`MAX_BATCH`], under SQLite's 32,766) and
//! one per 4,000 deliveries (6 a row). A concurrent transaction may take a
//! key between the lookup and the insert: on SQLite and PostgreSQL the
//! insert skips that row (`ON CONFLICT DO NOTHING`; the affected count
//! shows it, and the missing rows are looked up), on MariaDB the statement
//! fails with a unique violation, which aborts only that statement, and the
//! batch's notifications are then written one by one with `enqueue`'s logic.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use clarion_core::event::Event;
use clarion_core::notifier::{BatchResults, EmitError, Notifier};
use clarion_core::store::{Enqueued, MAX_BATCH, NewNotification, StoreError, check_batch};
use uuid::Uuid;

use super::{MAX_KEY_CHARS, SqlStore, backend_error, check_text, is_retryable};
use crate::backend::{Arg, Backend, Stmt, placeholders};
use crate::rows::{self, NOTIFICATION_COLUMNS};

/// How often a batch is tried again after a deadlock or serialization
/// failure (nothing of it was stored, so trying again is safe).
const BATCH_TRIES: u32 = 3;

/// Keys per dedup lookup statement.
const LOOKUP_CHUNK: usize = 1_000;

/// Delivery rows per INSERT statement (6 parameters each).
const DELIVERY_CHUNK: usize = 4_000;

impl<B: Backend> SqlStore<B> {
    /// The transactional outbox for batches: [`Notifier::emit_batch`] on
    /// `conn`, typically your own open transaction (`&mut tx`), so that your
    /// change and the notifications commit or roll back together.
    ///
    /// Same semantics as `emit_batch`: every event is validated first (an
    /// invalid one gets its own `InvalidEvent`, the rest are stored), dedup
    /// holds inside the batch, each stored event is reported as `emit`
    /// would. All of it is written in your one transaction, in statements of
    /// at most [`MAX_BATCH`] notifications. `Err` means the store failed:
    /// roll your transaction back (on PostgreSQL it is aborted anyway).
    /// Nothing is committed here; after your commit call [`Notifier::wake`].
    ///
    /// ```no_run
    /// # async fn demo(store: clarion_sql::PostgresStore, notifier: clarion_core::Notifier,
    /// #     events: Vec<clarion_core::KeyEvent>) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut tx = store.pool().begin().await?;
    /// // … your own writes on &mut *tx …
    /// let results = store.emit_batch_in(&notifier, &mut tx, &events).await?;
    /// tx.commit().await?;
    /// notifier.wake();
    /// println!("{results:?}");
    /// # Ok(()) }
    /// ```
    pub async fn emit_batch_in<E: Event>(
        &self,
        notifier: &Notifier,
        conn: &mut B::Connection,
        events: &[E],
    ) -> Result<BatchResults, EmitError> {
        let mut results = Vec::with_capacity(events.len());
        for chunk in events.chunks(MAX_BATCH) {
            let conn = &mut *conn;
            let stored = notifier
                .prepare_batch(chunk)
                .enqueue_with(
                    move |batch| async move { Self::enqueue_batch_on(conn, &batch).await },
                )
                .await?;
            results.extend(stored);
        }
        Ok(results)
    }

    /// The lower level of [`emit_batch_in`](Self::emit_batch_in): stores up
    /// to [`MAX_BATCH`] notifications you built on `conn` (your open
    /// transaction), with `enqueue_batch`'s answers. Nothing is committed.
    pub async fn enqueue_batch_in(
        &self,
        conn: &mut B::Connection,
        batch: Vec<NewNotification>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        Self::enqueue_batch_on(conn, &batch).await
    }

    /// [`OutboxStore::enqueue_batch`](clarion_core::store::OutboxStore::enqueue_batch):
    /// one transaction of its own, tried again on a deadlock.
    pub(crate) async fn enqueue_batch_tx(
        &self,
        batch: Vec<NewNotification>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        check(&batch)?;
        let mut tries = 0;
        loop {
            tries += 1;
            let mut tx = B::begin_write(&self.write)
                .await
                .map_err(backend_error::<B>)?;
            match Self::enqueue_batch_on(&mut tx, &batch).await {
                Ok(enqueued) => {
                    tx.commit().await.map_err(backend_error::<B>)?;
                    return Ok(enqueued);
                }
                Err(error) => {
                    // Roll back now rather than on the connection's next use,
                    // which would keep the batch's locks until then.
                    let _ = tx.rollback().await;
                    if tries >= BATCH_TRIES || !is_retryable(&error) {
                        return Err(error);
                    }
                    tracing::debug!(%error, tries, "a batch conflicted; trying again");
                }
            }
        }
    }

    /// [`OutboxStore::taken_dedup_keys`](clarion_core::store::OutboxStore::taken_dedup_keys).
    ///
    /// Counts first: a re-scan asks about keys that are nearly all held, and
    /// one row with a count is far cheaper than a thousand decoded rows
    /// (measured: ~5× on SQLite, more on PostgreSQL). Only a chunk whose
    /// count says "some, not all" reads which keys are held.
    pub(crate) async fn taken_keys(&self, keys: &[String]) -> Result<HashSet<String>, StoreError> {
        let mut unique: Vec<&String> = keys.iter().collect();
        unique.sort_unstable();
        unique.dedup();
        let mut conn = self.read.acquire().await.map_err(backend_error::<B>)?;
        let mut taken = HashSet::new();
        for chunk in unique.chunks(LOOKUP_CHUNK) {
            let mut count = Stmt::new(
                B::DIALECT,
                &format!(
                    "SELECT COUNT(*) AS n FROM clarion_notifications WHERE dedup_key IN ({})",
                    placeholders(chunk.len())
                ),
            );
            count
                .args
                .extend(chunk.iter().map(|k| Arg::Text((*k).clone())));
            let rows = B::fetch(&mut conn, count)
                .await
                .map_err(backend_error::<B>)?;
            let held = match rows.first() {
                Some(row) => B::get_i64(row, "n").map_err(backend_error::<B>)?,
                None => 0,
            };
            if held == 0 {
                continue;
            }
            if usize::try_from(held).is_ok_and(|n| n == chunk.len()) {
                taken.extend(chunk.iter().map(|k| (*k).clone()));
                continue;
            }
            let owned: Vec<String> = chunk.iter().map(|k| (*k).clone()).collect();
            for (key, _) in Self::holders(&mut conn, &owned).await? {
                taken.insert(key);
            }
        }
        Ok(taken)
    }

    pub(crate) async fn enqueue_batch_on(
        conn: &mut B::Connection,
        batch: &[NewNotification],
    ) -> Result<Vec<Enqueued>, StoreError> {
        check(batch)?;
        let mut results: Vec<Option<Enqueued>> = vec![None; batch.len()];
        // The first of each dedup key in the batch; later ones copy its answer.
        let mut first: HashMap<&str, usize> = HashMap::new();
        let mut copies = Vec::new();
        for (i, new) in batch.iter().enumerate() {
            if let Some(key) = &new.notification.event.dedup_key {
                match first.entry(key.as_str()) {
                    Entry::Occupied(e) => copies.push((i, *e.get())),
                    Entry::Vacant(e) => {
                        e.insert(i);
                    }
                }
            }
        }
        let keys: Vec<String> = first.keys().map(|k| (*k).to_owned()).collect();
        let mut holders = HashMap::new();
        for chunk in keys.chunks(LOOKUP_CHUNK) {
            holders.extend(Self::holders(conn, chunk).await?);
        }
        let copied: HashSet<usize> = copies.iter().map(|(i, _)| *i).collect();
        let mut fresh = Vec::new();
        for (i, new) in batch.iter().enumerate() {
            if copied.contains(&i) {
                continue;
            }
            match new
                .notification
                .event
                .dedup_key
                .as_ref()
                .and_then(|k| holders.get(k))
            {
                Some(existing_id) => {
                    results[i] = Some(Enqueued::Duplicate {
                        existing_id: *existing_id,
                    });
                }
                None => fresh.push(i),
            }
        }
        Self::insert_fresh(conn, batch, &fresh, &mut results).await?;
        for (i, of) in copies {
            let existing_id = match &results[of] {
                Some(Enqueued::Created {
                    notification_id, ..
                }) => *notification_id,
                Some(Enqueued::Duplicate { existing_id }) => *existing_id,
                None => unreachable!("the first of a key is answered before its copies"),
            };
            results[i] = Some(Enqueued::Duplicate { existing_id });
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every entry of the batch is answered"))
            .collect())
    }

    /// Writes the notifications at `fresh` (no holder seen) and their
    /// deliveries, answering each in `results`.
    async fn insert_fresh(
        conn: &mut B::Connection,
        batch: &[NewNotification],
        fresh: &[usize],
        results: &mut [Option<Enqueued>],
    ) -> Result<(), StoreError> {
        if fresh.is_empty() {
            return Ok(());
        }
        let row = format!("({})", placeholders(13));
        let mut insert = Stmt::new(
            B::DIALECT,
            &format!(
                "INSERT INTO clarion_notifications ({NOTIFICATION_COLUMNS}) VALUES {}{}",
                vec![row.as_str(); fresh.len()].join(", "),
                B::ON_DEDUP_CONFLICT
            ),
        );
        for &i in fresh {
            insert
                .args
                .extend(rows::notification_args(&batch[i].notification));
        }
        let inserted: Vec<usize> = match B::exec(conn, insert).await {
            Ok(rows) if rows == fresh.len() as u64 => fresh.to_vec(),
            // A concurrent transaction took some keys since the lookup.
            Ok(_) => Self::resolve_skipped(conn, batch, fresh, results).await?,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                // MariaDB: only the statement was undone; go one by one.
                for &i in fresh {
                    results[i] = Some(Self::enqueue_on(conn, batch[i].clone()).await?);
                }
                return Ok(());
            }
            Err(e) => return Err(backend_error::<B>(e)),
        };
        let mut values = Vec::new();
        let mut args = Vec::new();
        for &i in &inserted {
            let n = &batch[i].notification;
            let ids: Vec<Uuid> = batch[i].channels.iter().map(|_| Uuid::now_v7()).collect();
            for (id, channel) in ids.iter().zip(&batch[i].channels) {
                values.push("(?, ?, ?, 'pending', 0, ?, ?, ?)");
                args.extend([
                    Arg::Uuid(*id),
                    Arg::Uuid(n.id),
                    Arg::Text(channel.clone()),
                    Arg::Time(n.created_at),
                    Arg::Time(n.created_at),
                    Arg::Time(n.created_at),
                ]);
            }
            results[i] = Some(Enqueued::Created {
                notification_id: n.id,
                deliveries: ids,
            });
        }
        let mut args = args.into_iter();
        for chunk in values.chunks(DELIVERY_CHUNK) {
            let stmt = Stmt {
                sql: B::DIALECT.sql(&format!(
                    "INSERT INTO clarion_deliveries (id, notification_id, channel, status, \
                     attempts, next_attempt_at, created_at, updated_at) VALUES {}",
                    chunk.join(", ")
                )),
                args: args.by_ref().take(chunk.len() * 6).collect(),
            };
            B::exec(conn, stmt).await.map_err(backend_error::<B>)?;
        }
        Ok(())
    }

    /// After an insert that skipped rows: which of `fresh` were stored, with
    /// the skipped ones answered as duplicates of their key's new holder.
    async fn resolve_skipped(
        conn: &mut B::Connection,
        batch: &[NewNotification],
        fresh: &[usize],
        results: &mut [Option<Enqueued>],
    ) -> Result<Vec<usize>, StoreError> {
        let mut select = Stmt::new(
            B::DIALECT,
            &format!(
                "SELECT id FROM clarion_notifications WHERE id IN ({})",
                placeholders(fresh.len())
            ),
        );
        select
            .args
            .extend(fresh.iter().map(|&i| Arg::Uuid(batch[i].notification.id)));
        let stored: HashSet<Uuid> = B::fetch(conn, select)
            .await
            .map_err(backend_error::<B>)?
            .iter()
            .map(|row| B::get_uuid(row, "id"))
            .collect::<Result<_, _>>()
            .map_err(backend_error::<B>)?;
        let mut inserted = Vec::new();
        for &i in fresh {
            let n = &batch[i].notification;
            if stored.contains(&n.id) {
                inserted.push(i);
            } else {
                results[i] = Some(Self::duplicate(conn, n.event.dedup_key.clone()).await?);
            }
        }
        Ok(inserted)
    }

    /// `(dedup_key, id)` of the stored notifications holding any of `keys`.
    async fn holders(
        conn: &mut B::Connection,
        keys: &[String],
    ) -> Result<Vec<(String, Uuid)>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut select = Stmt::new(
            B::DIALECT,
            &format!(
                "SELECT id, dedup_key FROM clarion_notifications WHERE dedup_key IN ({})",
                placeholders(keys.len())
            ),
        );
        select.args.extend(keys.iter().cloned().map(Arg::Text));
        B::fetch(conn, select)
            .await
            .map_err(backend_error::<B>)?
            .iter()
            .map(|row| Ok((B::get_text(row, "dedup_key")?, B::get_uuid(row, "id")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(backend_error::<B>)
    }
}

/// Core's batch check (size, every event), plus what only a SQL store has:
/// channel names that fit their column.
fn check(batch: &[NewNotification]) -> Result<(), StoreError> {
    check_batch(batch)?;
    for (i, new) in batch.iter().enumerate() {
        for channel in &new.channels {
            check_text(&format!("batch[{i}].channels"), channel, MAX_KEY_CHARS)?;
        }
    }
    Ok(())
}
