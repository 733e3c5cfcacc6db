//! [`SqlStore`]: the outbox and inbox contracts in SQL, written once for every
//! dialect. What differs between dialects (claims, placeholders, column types)
//! lives behind [`Backend`].

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use clarion_core::channel::Delivery;
use clarion_core::event::Event;
use clarion_core::notification::Notification;
use clarion_core::notifier::{EmitError, EmitOutcome, Notifier};
use clarion_core::store::*;
use clarion_core::validation::validate_event;
use sqlx::Pool;
use uuid::Uuid;

use crate::backend::{Arg, Backend, BoxFuture, ClaimQuery, Claimed, Recorded, Stmt, placeholders};
use crate::rows::{self, DELIVERY_COLUMNS, NOTIFICATION_COLUMNS};

mod batch;

/// Longest owner, dedup key, channel name, subject id or name a store accepts
/// (in characters); the same on every dialect, and core's
/// [`MAX_ID_CHARS`](clarion_core::validation::MAX_ID_CHARS).
pub const MAX_KEY_CHARS: usize = clarion_core::validation::MAX_ID_CHARS;

/// `last_error` and receipts longer than this (in bytes) are cut, with a marker.
pub const MAX_DETAIL_BYTES: usize = 8 * 1024;

/// How often a claim is tried again after a deadlock or serialization failure.
const CLAIM_TRIES: u32 = 5;

/// A [`NotificationsStore`] on one of sqlx's databases.
///
/// Use the aliases [`SqliteStore`](crate::SqliteStore),
/// [`PostgresStore`](crate::PostgresStore) and [`MySqlStore`](crate::MySqlStore),
/// or [`crate::open`] to pick one by URL. Cheap to clone (pools are shared).
///
/// SQLite and PostgreSQL stores group concurrent `enqueue` and `complete`
/// calls into shared transactions through a writer task spawned on the tokio
/// runtime that opened the store: use the store on that runtime (or one that
/// outlives it). Each call still returns only after its own write committed.
pub struct SqlStore<B: Backend> {
    /// Writes (for SQLite: the single writer connection).
    pub(crate) write: Pool<B>,
    /// Reads (for PostgreSQL and MySQL: the same pool).
    pub(crate) read: Pool<B>,
    /// Groups concurrent enqueues and completes into shared transactions
    /// (SQLite, where each statement costs a thread hand-off).
    pub(crate) group: Option<Arc<dyn GroupWriter>>,
    _backend: PhantomData<fn() -> B>,
}

/// Writes that a backend may group into shared transactions; each call
/// returns only after its group committed.
pub(crate) trait GroupWriter: Send + Sync {
    /// Whether `complete` goes through the group too.
    fn groups_completions(&self) -> bool;
    /// A grouped [`OutboxStore::enqueue`] (the input is already validated).
    fn enqueue(&self, new: NewNotification) -> BoxFuture<'_, Result<Enqueued, StoreError>>;
    /// Whether claims go through the group too.
    fn groups_claims(&self) -> bool;
    /// A grouped claim: the deliveries it took, their notifications not attached.
    fn claim(&self, request: ClaimRequest) -> BoxFuture<'_, Result<Vec<Claimed>, StoreError>>;
    /// A grouped [`OutboxStore::complete`].
    fn complete(
        &self,
        delivery_id: Uuid,
        token: LeaseToken,
        outcome: Outcome,
    ) -> BoxFuture<'_, Result<(), StoreError>>;
}

impl<B: Backend> Clone for SqlStore<B> {
    fn clone(&self) -> Self {
        SqlStore {
            write: self.write.clone(),
            read: self.read.clone(),
            group: self.group.clone(),
            _backend: PhantomData,
        }
    }
}

impl<B: Backend> std::fmt::Debug for SqlStore<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &B::LABEL)
            .field("write_connections", &self.write.size())
            .field("read_connections", &self.read.size())
            .finish()
    }
}

/// Maps a sqlx error to a [`StoreError`], classifying what is worth retrying.
/// sqlx's messages name no credentials.
pub(crate) fn backend_error<B: Backend>(error: sqlx::Error) -> StoreError {
    let retryable = match &error {
        sqlx::Error::Database(e) => B::retryable(e.as_ref()),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => true,
        _ => false,
    };
    StoreError::backend(format!("{}: {error}", B::LABEL), retryable)
}

fn is_retryable(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Backend {
            retryable: true,
            ..
        }
    )
}

/// `t + d`, saturating.
pub(crate) fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn invalid(field: &str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        field: field.to_owned(),
        message: message.into(),
    }
}

fn check_text(field: &str, value: &str, max_chars: usize) -> Result<(), StoreError> {
    if value.contains('\0') {
        return Err(invalid(field, "contains a NUL character"));
    }
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(invalid(
            field,
            format!("is {chars} characters long; at most {max_chars} are stored"),
        ));
    }
    Ok(())
}

/// Checks that `new` can be stored the same way on every dialect: the event
/// with core's one validation (`clarion_core::validation`), and what only a
/// store has, the channel names.
pub(crate) fn validate(new: &NewNotification) -> Result<(), StoreError> {
    validate_event(&new.notification.event, None)?;
    for channel in &new.channels {
        check_text("channels", channel, MAX_KEY_CHARS)?;
    }
    Ok(())
}

/// Cuts a diagnostic text to [`MAX_DETAIL_BYTES`] at a character boundary.
pub(crate) fn detail(text: String) -> String {
    const MARK: &str = " …[truncated]";
    if text.len() <= MAX_DETAIL_BYTES {
        return text;
    }
    let mut end = MAX_DETAIL_BYTES - MARK.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &text[..end])
}

impl From<Outcome> for Recorded {
    fn from(outcome: Outcome) -> Self {
        let (status, next, error, sent_at, receipt, at) = match outcome {
            Outcome::Sent { receipt, at } => (
                DeliveryStatus::Sent,
                None,
                None,
                Some(at),
                receipt.detail.map(detail),
                at,
            ),
            Outcome::Retry {
                error,
                next_attempt_at,
                at,
            } => (
                DeliveryStatus::Pending,
                Some(next_attempt_at),
                Some(detail(error)),
                None,
                None,
                at,
            ),
            Outcome::Dead { error, at } => (
                DeliveryStatus::Dead,
                None,
                Some(detail(error)),
                None,
                None,
                at,
            ),
        };
        Recorded {
            status: status.as_str(),
            next,
            error,
            sent_at,
            receipt,
            at,
        }
    }
}

/// A limit as SQL sees it: the page size plus one, to learn whether more follow.
fn fetch_limit(limit: usize) -> i64 {
    i64::try_from(limit)
        .unwrap_or(i64::MAX - 1)
        .saturating_add(1)
}

fn page<T>(mut items: Vec<T>, limit: usize, id: impl Fn(&T) -> Uuid) -> Page<T> {
    let more = items.len() > limit;
    items.truncate(limit);
    let next = if more { items.last().map(id) } else { None };
    Page { items, next }
}

impl<B: Backend> SqlStore<B> {
    /// A store over `write` (all writes) and `read` (all reads).
    pub(crate) fn from_pools(write: Pool<B>, read: Pool<B>) -> Self {
        SqlStore {
            write,
            read,
            group: None,
            _backend: PhantomData,
        }
    }

    /// The pool writes go through: begin your own transactions on it for
    /// [`enqueue_in`](Self::enqueue_in).
    pub fn pool(&self) -> &Pool<B> {
        &self.write
    }

    /// Applies the embedded migrations (what `open` does unless
    /// `store.migrate = false`). Idempotent; safe from several processes.
    pub async fn migrate(&self) -> Result<(), crate::OpenError> {
        B::migrate(&self.write)
            .await
            .map_err(|e| crate::OpenError::Migrate {
                backend: B::LABEL,
                message: e.to_string(),
            })
    }

    /// Closes the pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    /// The transactional outbox: [`Notifier::emit`] on `conn` — typically
    /// your own open transaction (`&mut tx`) — so that your change and the
    /// notification commit or roll back together.
    ///
    /// Same semantics as `emit`: the event is validated (errors name the
    /// field), routed by the notifier's routes and stamped by its clock; the
    /// answer is [`EmitOutcome::Enqueued`], [`EmitOutcome::Unrouted`] or
    /// [`EmitOutcome::Duplicate`], with the same metrics and span. A
    /// duplicate writes nothing and leaves the transaction usable.
    ///
    /// Nothing is committed here. After your commit, call
    /// [`Notifier::wake`] so the dispatcher delivers at once rather than at its
    /// next `delivery.poll_interval`. `notifier` must be built on this store
    /// (or one on the same database): its dispatcher is what delivers.
    ///
    /// ```no_run
    /// # async fn demo(store: clarion_sql::PostgresStore, notifier: clarion_core::Notifier,
    /// #     event: clarion_core::KeyEvent) -> Result<(), Box<dyn std::error::Error>> {
    /// use clarion_sql::sqlx;
    /// let mut tx = store.pool().begin().await?;
    /// sqlx::query("UPDATE kms_keys SET version = version + 1 WHERE id = $1")
    ///     .bind("key-1")
    ///     .execute(&mut *tx)
    ///     .await?;
    /// let outcome = store.emit_in(&notifier, &mut tx, &event).await?;
    /// tx.commit().await?;
    /// notifier.wake();
    /// println!("{outcome:?}");
    /// # Ok(()) }
    /// ```
    pub async fn emit_in(
        &self,
        notifier: &Notifier,
        conn: &mut B::Connection,
        event: &(impl Event + ?Sized),
    ) -> Result<EmitOutcome, EmitError> {
        notifier
            .prepare(event)?
            .enqueue_with(|new| Self::enqueue_on(conn, new))
            .await
    }

    /// The transactional outbox's lower level: enqueues a `new` notification
    /// you built yourself on `conn` (your open transaction). Prefer
    /// [`emit_in`](Self::emit_in), which routes, validates and stamps the
    /// event like [`Notifier::emit`]; this is for a [`NewNotification`] from
    /// [`Notifier::prepare`] or from tooling (imports, replays).
    ///
    /// Nothing is committed here; a [`Enqueued::Duplicate`] writes nothing
    /// and leaves the transaction usable. Deliveries become claimable when
    /// your transaction commits ([`Notifier::wake`] then claims them at once).
    ///
    /// ```no_run
    /// # async fn demo(store: clarion_sql::PostgresStore, new: clarion_core::store::NewNotification)
    /// # -> Result<(), Box<dyn std::error::Error>> {
    /// let mut tx = store.pool().begin().await?;
    /// // sqlx::query("UPDATE keys SET version = version + 1 WHERE id = $1")…execute(&mut *tx).await?;
    /// store.enqueue_in(&mut tx, new).await?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn enqueue_in(
        &self,
        conn: &mut B::Connection,
        new: NewNotification,
    ) -> Result<Enqueued, StoreError> {
        Self::enqueue_on(conn, new).await
    }

    pub(crate) async fn enqueue_on(
        conn: &mut B::Connection,
        new: NewNotification,
    ) -> Result<Enqueued, StoreError> {
        validate(&new)?;
        let notification = &new.notification;
        let insert = format!(
            "INSERT INTO clarion_notifications ({NOTIFICATION_COLUMNS}) VALUES ({}){}",
            placeholders(13),
            B::ON_DEDUP_CONFLICT
        );
        let stmt = Stmt {
            sql: B::DIALECT.sql(&insert),
            args: rows::notification_args(notification),
        };
        let key = notification.event.dedup_key.clone();
        let inserted = match B::exec(conn, stmt).await {
            Ok(rows) => rows > 0,
            Err(sqlx::Error::Database(e)) if key.is_some() && e.is_unique_violation() => false,
            Err(e) => return Err(backend_error::<B>(e)),
        };
        if !inserted {
            return Self::duplicate(conn, key).await;
        }
        let id = notification.id;
        let created = notification.created_at;
        let deliveries: Vec<Uuid> = new.channels.iter().map(|_| Uuid::now_v7()).collect();
        if !deliveries.is_empty() {
            let row = "(?, ?, ?, 'pending', 0, ?, ?, ?)";
            let values = vec![row; deliveries.len()].join(", ");
            let mut stmt = Stmt::new(
                B::DIALECT,
                &format!(
                    "INSERT INTO clarion_deliveries (id, notification_id, channel, status, \
                     attempts, next_attempt_at, created_at, updated_at) VALUES {values}"
                ),
            );
            for (delivery, channel) in deliveries.iter().zip(new.channels) {
                stmt.args.extend([
                    Arg::Uuid(*delivery),
                    Arg::Uuid(id),
                    Arg::Text(channel),
                    Arg::Time(created),
                    Arg::Time(created),
                    Arg::Time(created),
                ]);
            }
            B::exec(conn, stmt).await.map_err(backend_error::<B>)?;
        }
        Ok(Enqueued::Created {
            notification_id: id,
            deliveries,
        })
    }

    async fn duplicate(
        conn: &mut B::Connection,
        key: Option<String>,
    ) -> Result<Enqueued, StoreError> {
        let Some(key) = key else {
            return Err(StoreError::backend(
                format!("{}: the notification insert stored nothing", B::LABEL),
                false,
            ));
        };
        let stmt = Stmt::new(
            B::DIALECT,
            "SELECT id FROM clarion_notifications WHERE dedup_key = ?",
        )
        .arg(Arg::Text(key));
        let rows = B::fetch(conn, stmt).await.map_err(backend_error::<B>)?;
        match rows.first() {
            Some(row) => Ok(Enqueued::Duplicate {
                existing_id: B::get_uuid(row, "id").map_err(backend_error::<B>)?,
            }),
            // Held by a transaction this one cannot see yet.
            None => Err(StoreError::backend(
                format!(
                    "{}: the dedup key is being stored by a concurrent transaction; try again",
                    B::LABEL
                ),
                true,
            )),
        }
    }

    /// Runs a write statement outside any explicit transaction.
    pub(crate) async fn write(&self, stmt: Stmt) -> Result<u64, StoreError> {
        let mut conn = self.write.acquire().await.map_err(backend_error::<B>)?;
        B::exec(&mut conn, stmt).await.map_err(backend_error::<B>)
    }

    /// Runs a query on the read pool.
    pub(crate) async fn read(&self, stmt: Stmt) -> Result<Vec<B::Row>, StoreError> {
        let mut conn = self.read.acquire().await.map_err(backend_error::<B>)?;
        B::fetch(&mut conn, stmt).await.map_err(backend_error::<B>)
    }

    async fn notifications_by_id(
        &self,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Notification>, StoreError> {
        let mut stmt = Stmt::new(
            B::DIALECT,
            &format!(
                "SELECT {NOTIFICATION_COLUMNS} FROM clarion_notifications WHERE id IN ({})",
                placeholders(ids.len())
            ),
        );
        stmt.args.extend(ids.iter().copied().map(Arg::Uuid));
        self.read(stmt)
            .await?
            .iter()
            .map(|row| rows::notification::<B>(row).map(|n| (n.id, n)))
            .collect()
    }

    async fn claim_rows(&self, query: ClaimQuery<'_>) -> Result<Vec<Claimed>, StoreError> {
        let mut tries = 0;
        loop {
            tries += 1;
            match B::claim(self, query.clone()).await {
                Ok(claimed) => return Ok(claimed),
                Err(e) => {
                    let error = backend_error::<B>(e);
                    if tries >= CLAIM_TRIES || !is_retryable(&error) {
                        return Err(error);
                    }
                    tracing::debug!(%error, tries, "claim conflicted; trying again");
                }
            }
        }
    }
}

/// What a claim asks the dialect for.
pub(crate) fn claim_query(request: &ClaimRequest) -> ClaimQuery<'_> {
    ClaimQuery {
        now: request.now,
        lease_until: add(request.now, request.lease),
        limit: i64::try_from(request.limit).unwrap_or(i64::MAX),
        exclude: &request.exclude_channels,
    }
}

#[async_trait]
impl<B: Backend> OutboxStore for SqlStore<B> {
    async fn enqueue(&self, new: NewNotification) -> Result<Enqueued, StoreError> {
        validate(&new)?;
        if let Some(group) = &self.group {
            return group.enqueue(new).await;
        }
        let mut tx = B::begin_write(&self.write)
            .await
            .map_err(backend_error::<B>)?;
        let enqueued = Self::enqueue_on(&mut tx, new).await?;
        match enqueued {
            Enqueued::Created { .. } => tx.commit().await.map_err(backend_error::<B>)?,
            Enqueued::Duplicate { .. } => tx.rollback().await.map_err(backend_error::<B>)?,
        }
        Ok(enqueued)
    }

    async fn enqueue_batch(
        &self,
        batch: Vec<NewNotification>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        self.enqueue_batch_tx(batch).await
    }

    async fn taken_dedup_keys(
        &self,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        self.taken_keys(keys).await
    }

    async fn claim(&self, request: ClaimRequest) -> Result<Vec<Claim>, StoreError> {
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        let lease_until = add(request.now, request.lease);
        let mut claimed = match self.group.as_ref().filter(|g| g.groups_claims()) {
            Some(group) => group.claim(request).await?,
            None => self.claim_rows(claim_query(&request)).await?,
        };
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        claimed.sort_by_key(|c| (c.due, c.id));
        let mut ids: Vec<Uuid> = claimed
            .iter()
            .filter(|c| c.notification.is_none())
            .map(|c| c.notification_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let notifications = if ids.is_empty() {
            HashMap::new()
        } else {
            self.notifications_by_id(&ids).await?
        };
        claimed
            .into_iter()
            .map(|mut c| {
                let notification = c
                    .notification
                    .take()
                    .or_else(|| notifications.get(&c.notification_id).cloned())
                    .ok_or_else(|| {
                        StoreError::backend(
                            format!(
                                "{}: delivery {} refers to a missing notification {}",
                                B::LABEL,
                                c.id,
                                c.notification_id
                            ),
                            false,
                        )
                    })?;
                Ok(Claim {
                    delivery: Delivery {
                        id: c.id,
                        channel: c.channel,
                        attempt: u32::try_from(c.attempts).unwrap_or(0).saturating_add(1),
                        notification,
                    },
                    token: LeaseToken(c.token),
                    lease_until,
                    created_at: c.created_at,
                })
            })
            .collect()
    }

    async fn complete(
        &self,
        delivery_id: Uuid,
        token: LeaseToken,
        outcome: Outcome,
    ) -> Result<(), StoreError> {
        if let Some(group) = self.group.as_ref().filter(|g| g.groups_completions()) {
            return group.complete(delivery_id, token, outcome).await;
        }
        let Recorded {
            status,
            next,
            error,
            sent_at,
            receipt,
            at,
        } = Recorded::from(outcome);
        let stmt = Stmt::new(
            B::DIALECT,
            "UPDATE clarion_deliveries SET status = ?, attempts = attempts + 1, \
             next_attempt_at = ?, lease_until = NULL, lease_token = NULL, \
             last_error = COALESCE(?, last_error), sent_at = ?, receipt = ?, updated_at = ? \
             WHERE id = ? AND status = 'in_flight' AND lease_token = ?",
        )
        .arg(Arg::Text(status.to_owned()))
        .arg(Arg::OptTime(next))
        .arg(Arg::OptText(error))
        .arg(Arg::OptTime(sent_at))
        .arg(Arg::OptText(receipt))
        .arg(Arg::Time(at))
        .arg(Arg::Uuid(delivery_id))
        .arg(Arg::Uuid(token.0));
        match self.write(stmt).await? {
            0 => Err(StoreError::StaleLease(delivery_id)),
            _ => Ok(()),
        }
    }

    async fn requeue(&self, delivery_id: Uuid, now: DateTime<Utc>) -> Result<Requeued, StoreError> {
        let stmt = Stmt::new(
            B::DIALECT,
            "UPDATE clarion_deliveries SET status = 'pending', attempts = 0, \
             next_attempt_at = ?, updated_at = ? WHERE id = ? AND status = 'dead'",
        )
        .arg(Arg::Time(now))
        .arg(Arg::Time(now))
        .arg(Arg::Uuid(delivery_id));
        if self.write(stmt).await? > 0 {
            return Ok(Requeued::Requeued);
        }
        let stmt = Stmt::new(
            B::DIALECT,
            "SELECT status FROM clarion_deliveries WHERE id = ?",
        )
        .arg(Arg::Uuid(delivery_id));
        match self.read(stmt).await?.first() {
            None => Ok(Requeued::NotFound),
            Some(row) => Ok(Requeued::NotDead(rows::status::<B>(row, "status")?)),
        }
    }

    async fn delivery(&self, delivery_id: Uuid) -> Result<Option<DeliveryRecord>, StoreError> {
        let stmt = Stmt::new(
            B::DIALECT,
            &format!("SELECT {DELIVERY_COLUMNS} FROM clarion_deliveries WHERE id = ?"),
        )
        .arg(Arg::Uuid(delivery_id));
        self.read(stmt)
            .await?
            .first()
            .map(rows::delivery::<B>)
            .transpose()
    }

    async fn deliveries(
        &self,
        filter: &DeliveryFilter,
        request: PageRequest,
    ) -> Result<Page<DeliveryRecord>, StoreError> {
        let mut conditions = Vec::new();
        let mut args = Vec::new();
        let status;
        if let Some(wanted) = filter.status {
            // A literal, so that SQLite can use the partial index on dead
            // deliveries (it cannot match a bound parameter against it).
            status = format!("status = '{}'", wanted.as_str());
            conditions.push(status.as_str());
        }
        if let Some(channel) = &filter.channel {
            conditions.push("channel = ?");
            args.push(Arg::Text(channel.clone()));
        }
        if let Some(after) = request.after {
            conditions.push("id < ?");
            args.push(Arg::Uuid(after));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        args.push(Arg::Int(fetch_limit(request.limit)));
        let stmt = Stmt {
            sql: B::DIALECT.sql(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM clarion_deliveries{filter} ORDER BY id DESC LIMIT ?"
            )),
            args,
        };
        let items = self
            .read(stmt)
            .await?
            .iter()
            .map(rows::delivery::<B>)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(items, request.limit, |d| d.id))
    }

    async fn counts(&self) -> Result<Vec<StatusCount>, StoreError> {
        let stmt = Stmt::new(
            B::DIALECT,
            "SELECT channel, status, COUNT(*) AS n FROM clarion_deliveries GROUP BY channel, status",
        );
        let mut counts = self
            .read(stmt)
            .await?
            .iter()
            .map(|row| {
                Ok(StatusCount {
                    channel: B::get_text(row, "channel").map_err(backend_error::<B>)?,
                    status: rows::status::<B>(row, "status")?,
                    count: u64::try_from(B::get_i64(row, "n").map_err(backend_error::<B>)?)
                        .unwrap_or(0),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        counts.retain(|c| c.count > 0);
        counts.sort_by(|a, b| (&a.channel, a.status).cmp(&(&b.channel, b.status)));
        Ok(counts)
    }

    async fn purge(&self, before: DateTime<Utc>, limit: usize) -> Result<u64, StoreError> {
        if limit == 0 {
            return Ok(0);
        }
        let mut tx = B::begin_write(&self.write)
            .await
            .map_err(backend_error::<B>)?;
        let select = Stmt::new(
            B::DIALECT,
            "SELECT n.id FROM clarion_notifications n WHERE n.created_at < ? AND NOT EXISTS \
             (SELECT 1 FROM clarion_deliveries d WHERE d.notification_id = n.id \
             AND d.status IN ('pending', 'in_flight')) ORDER BY n.created_at LIMIT ?",
        )
        .arg(Arg::Time(before))
        .arg(Arg::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
        let ids = B::fetch(&mut tx, select)
            .await
            .map_err(backend_error::<B>)?
            .iter()
            .map(|row| B::get_uuid(row, "id"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend_error::<B>)?;
        if ids.is_empty() {
            // End the transaction now: a dropped sqlx transaction only queues
            // its rollback for the connection's next use, and until then the
            // server keeps its locks (a `DROP SCHEMA` or a migration would wait).
            tx.rollback().await.map_err(backend_error::<B>)?;
            return Ok(0);
        }
        let list = placeholders(ids.len());
        let id_args = || ids.iter().copied().map(Arg::Uuid).collect::<Vec<_>>();
        // Only final deliveries go; a delivery requeued meanwhile keeps its
        // notification (the second delete skips notifications with deliveries).
        let deliveries = Stmt {
            sql: B::DIALECT.sql(&format!(
                "DELETE FROM clarion_deliveries WHERE notification_id IN ({list}) \
                 AND status IN ('sent', 'dead')"
            )),
            args: id_args(),
        };
        B::exec(&mut tx, deliveries)
            .await
            .map_err(backend_error::<B>)?;
        let notifications = Stmt {
            sql: B::DIALECT.sql(&format!(
                "DELETE FROM clarion_notifications WHERE id IN ({list}) AND NOT EXISTS \
                 (SELECT 1 FROM clarion_deliveries d WHERE d.notification_id = clarion_notifications.id)"
            )),
            args: id_args(),
        };
        let purged = B::exec(&mut tx, notifications)
            .await
            .map_err(backend_error::<B>)?;
        tx.commit().await.map_err(backend_error::<B>)?;
        Ok(purged)
    }
}

#[async_trait]
impl<B: Backend> InboxStore for SqlStore<B> {
    async fn notifications(
        &self,
        owner: &str,
        request: PageRequest,
    ) -> Result<Page<Notification>, StoreError> {
        let mut args = vec![Arg::Text(owner.to_owned())];
        let cursor = match request.after {
            Some(after) => {
                args.push(Arg::Uuid(after));
                " AND id < ?"
            }
            None => "",
        };
        args.push(Arg::Int(fetch_limit(request.limit)));
        let stmt = Stmt {
            sql: B::DIALECT.sql(&format!(
                "SELECT {NOTIFICATION_COLUMNS} FROM clarion_notifications \
                 WHERE owner = ?{cursor} ORDER BY id DESC LIMIT ?"
            )),
            args,
        };
        let items = self
            .read(stmt)
            .await?
            .iter()
            .map(rows::notification::<B>)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page(items, request.limit, |n| n.id))
    }

    async fn notification(
        &self,
        owner: &str,
        id: Uuid,
    ) -> Result<Option<Notification>, StoreError> {
        let stmt = Stmt::new(
            B::DIALECT,
            &format!(
                "SELECT {NOTIFICATION_COLUMNS} FROM clarion_notifications WHERE id = ? AND owner = ?"
            ),
        )
        .arg(Arg::Uuid(id))
        .arg(Arg::Text(owner.to_owned()));
        self.read(stmt)
            .await?
            .first()
            .map(rows::notification::<B>)
            .transpose()
    }

    async fn unread_count(&self, owner: &str) -> Result<u64, StoreError> {
        let stmt = Stmt::new(
            B::DIALECT,
            "SELECT COUNT(*) AS n FROM clarion_notifications WHERE owner = ? AND read_at IS NULL",
        )
        .arg(Arg::Text(owner.to_owned()));
        let rows = self.read(stmt).await?;
        let n = match rows.first() {
            Some(row) => B::get_i64(row, "n").map_err(backend_error::<B>)?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn mark_read(
        &self,
        owner: &str,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let stmt = Stmt::new(
            B::DIALECT,
            "UPDATE clarion_notifications SET read_at = ? \
             WHERE id = ? AND owner = ? AND read_at IS NULL",
        )
        .arg(Arg::Time(now))
        .arg(Arg::Uuid(id))
        .arg(Arg::Text(owner.to_owned()));
        if self.write(stmt).await? > 0 {
            return Ok(true);
        }
        // Already read (keeps the first read time), or unknown / someone else's.
        Ok(self.notification(owner, id).await?.is_some())
    }

    async fn mark_all_read(&self, owner: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let stmt = Stmt::new(
            B::DIALECT,
            "UPDATE clarion_notifications SET read_at = ? WHERE owner = ? AND read_at IS NULL",
        )
        .arg(Arg::Time(now))
        .arg(Arg::Text(owner.to_owned()));
        self.write(stmt).await
    }
}
