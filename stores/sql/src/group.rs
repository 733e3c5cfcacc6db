//! Group commit: writer tasks turn concurrent `enqueue`, `complete` and (on
//! SQLite) claim calls into shared transactions. SQLite and PostgreSQL only:
//! the grouped insert needs `RETURNING` or a script, which MySQL lacks.
//!
//! sqlx's SQLite driver runs each command on the connection's worker thread
//! and wakes the caller with the answer; with the runtime busy delivering,
//! that hand-off costs far more than the statement (150 µs to over 1 ms), so
//! a transaction of five statements per event tops out well below the disk.
//! On PostgreSQL every commit waits for a WAL flush. A writer takes every
//! request waiting in the queue (up to [`MAX_GROUP`]) and writes them in one
//! transaction, then answers each caller: every call still returns after its
//! write is durable. While a group commits, the next one queues up, so the
//! group size follows the load.
//!
//! - SQLite has one writer (it has one write connection). Enqueues, outcomes
//!   and claims all need that one write lock, so they share the group's
//!   transaction, and the whole group is one script (`script` module): one
//!   hand-off and one commit per group.
//! - PostgreSQL has a few writers, so that one group's WAL flush does not
//!   hold up the next; its claims run on their own (`FOR UPDATE SKIP
//!   LOCKED`, concurrent with the groups). A group is a few multi-row
//!   statements (outcomes alone: one statement, which commits by itself).
//!
//! If a group's transaction fails, its requests are retried one by one, so
//! an error is reported only to the request that caused it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use clarion_core::store::{
    ClaimRequest, Enqueued, LeaseToken, NewNotification, Outcome, StoreError,
};
use sqlx::Pool;
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use crate::backend::{Arg, Backend, BoxFuture, Claimed, Completion, Recorded, Stmt, placeholders};
use crate::common;
use crate::rows::{self, NOTIFICATION_COLUMNS};
use crate::store::{GroupWriter, SqlStore, backend_error, claim_query};

mod script;

/// Requests per group at most (bounded by SQLite's 32,766 bound parameters:
/// 13 per notification row, 8 per completion row).
pub(crate) const MAX_GROUP: usize = 512;

/// Requests waiting for the writer at most; callers wait for room beyond.
const QUEUE: usize = 4096;

enum Job {
    Enqueue(
        NewNotification,
        oneshot::Sender<Result<Enqueued, StoreError>>,
    ),
    Complete(Completion, oneshot::Sender<Result<(), StoreError>>),
    Claim(
        ClaimRequest,
        oneshot::Sender<Result<Vec<Claimed>, StoreError>>,
    ),
}

/// The handle the store holds; the writer tasks end when it is dropped.
pub(crate) struct GroupCommit {
    jobs: mpsc::Sender<Job>,
    completions: bool,
    claims: bool,
}

/// The queue the writers share: one of them at a time takes a group.
type Queue = Arc<Mutex<mpsc::Receiver<Job>>>;

impl GroupCommit {
    /// Starts `writers` writer tasks on the current tokio runtime;
    /// `completions` and `claims` say whether outcomes and claims are
    /// grouped too (claims only where [`Backend::grouped_claim`] has a
    /// statement).
    pub(crate) fn start<B: Backend>(
        pool: Pool<B>,
        completions: bool,
        claims: bool,
        writers: usize,
    ) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..writers.max(1) {
            tokio::spawn(run(pool.clone(), queue.clone()));
        }
        GroupCommit {
            jobs,
            completions,
            claims,
        }
    }
}

fn stopped() -> StoreError {
    StoreError::backend("the store's writer task has stopped", false)
}

impl GroupWriter for GroupCommit {
    fn groups_completions(&self) -> bool {
        self.completions
    }

    fn groups_claims(&self) -> bool {
        self.claims
    }

    fn claim(&self, request: ClaimRequest) -> BoxFuture<'_, Result<Vec<Claimed>, StoreError>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            self.jobs
                .send(Job::Claim(request, reply))
                .await
                .map_err(|_| stopped())?;
            answer.await.map_err(|_| stopped())?
        })
    }

    fn enqueue(&self, new: NewNotification) -> BoxFuture<'_, Result<Enqueued, StoreError>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            self.jobs
                .send(Job::Enqueue(new, reply))
                .await
                .map_err(|_| stopped())?;
            answer.await.map_err(|_| stopped())?
        })
    }

    fn complete(
        &self,
        delivery_id: Uuid,
        token: LeaseToken,
        outcome: Outcome,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            let completion = Completion {
                id: delivery_id,
                token: token.0,
                recorded: Recorded::from(outcome),
            };
            self.jobs
                .send(Job::Complete(completion, reply))
                .await
                .map_err(|_| stopped())?;
            answer.await.map_err(|_| stopped())?
        })
    }
}

async fn run<B: Backend>(pool: Pool<B>, queue: Queue) {
    // Completions of a delivery already in the current group wait for the
    // next one, so each delivery appears once per statement.
    let mut carried: Vec<Job> = Vec::new();
    loop {
        let mut jobs = std::mem::take(&mut carried);
        // While one writer gathers, the others write their groups. A writer
        // with carried jobs must not wait for the queue: another writer may
        // hold it while waiting for requests that only come once the
        // carried ones are answered.
        let gathering = if jobs.is_empty() {
            let mut queue = queue.clone().lock_owned().await;
            match queue.recv().await {
                Some(job) => jobs.push(job),
                None => return,
            }
            // Let callers that are ready right now join this group (a burst
            // of completions arrives one task at a time).
            tokio::task::yield_now().await;
            Some(queue)
        } else {
            queue.clone().try_lock_owned().ok()
        };
        if let Some(mut queue) = gathering {
            while jobs.len() < MAX_GROUP {
                match queue.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        let mut group = Group::default();
        let mut ids = HashSet::new();
        for job in jobs {
            match job {
                Job::Enqueue(new, reply) => group.enqueues.push((new, reply)),
                Job::Claim(request, reply) => group.claims.push((request, reply)),
                Job::Complete(c, reply) => {
                    if ids.insert(c.id) {
                        group.completes.push((c, reply));
                    } else {
                        carried.push(Job::Complete(c, reply));
                    }
                }
            }
        }
        write_group(&pool, group).await;
    }
}

type EnqueueJob = (
    NewNotification,
    oneshot::Sender<Result<Enqueued, StoreError>>,
);
type CompleteJob = (Completion, oneshot::Sender<Result<(), StoreError>>);
type ClaimJob = (
    ClaimRequest,
    oneshot::Sender<Result<Vec<Claimed>, StoreError>>,
);

/// The requests one transaction carries.
#[derive(Default)]
struct Group {
    enqueues: Vec<EnqueueJob>,
    completes: Vec<CompleteJob>,
    claims: Vec<ClaimJob>,
}

/// Writes a group in one transaction — enqueues, then outcomes, then claims
/// (which so see this group's new deliveries and no longer its finished
/// ones) — and answers each request after the commit. A lone statement
/// commits by itself: no BEGIN / COMMIT round trips.
async fn write_group<B: Backend>(pool: &Pool<B>, group: Group) {
    let Group {
        enqueues,
        completes,
        claims,
    } = group;
    let news: Vec<&NewNotification> = enqueues.iter().map(|(n, _)| n).collect();
    let completions: Vec<&Completion> = completes.iter().map(|(c, _)| c).collect();
    let statements = usize::from(!completions.is_empty()) + claims.len();
    let grouped = async {
        if B::SCRIPTS {
            let mut conn = pool.acquire().await?;
            let script = script::Script::build::<B>(&news, &completions, &claims);
            return script.run::<B>(&mut conn, &news).await;
        }
        if news.is_empty() && statements == 1 {
            let mut conn = pool.acquire().await?;
            let completed = B::complete_all(&mut conn, &completions).await?;
            let claimed = claim_all::<B>(&mut conn, &claims).await?;
            return Ok((Vec::new(), completed, claimed));
        }
        let mut tx = B::begin_write(pool).await?;
        let enqueued = enqueue_all::<B>(&mut tx, &news).await?;
        let completed = B::complete_all(&mut tx, &completions).await?;
        let claimed = claim_all::<B>(&mut tx, &claims).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>((enqueued, completed, claimed))
    };
    match grouped.await {
        Ok((enqueued, completed, claimed)) => {
            for ((_, reply), result) in enqueues.into_iter().zip(enqueued) {
                let _ = reply.send(Ok(result));
            }
            for (c, reply) in completes {
                let result = if completed.contains(&c.id) {
                    Ok(())
                } else {
                    Err(StoreError::StaleLease(c.id))
                };
                let _ = reply.send(result);
            }
            for ((_, reply), result) in claims.into_iter().zip(claimed) {
                let _ = reply.send(Ok(result));
            }
        }
        Err(error) if enqueues.len() + completes.len() + claims.len() == 1 => {
            let error = backend_error::<B>(error);
            for (_, reply) in enqueues {
                let _ = reply.send(Err(error.clone()));
            }
            for (_, reply) in completes {
                let _ = reply.send(Err(error.clone()));
            }
            for (_, reply) in claims {
                let _ = reply.send(Err(error.clone()));
            }
        }
        Err(error) => {
            tracing::debug!(%error, "a grouped write failed; writing its requests one by one");
            for job in enqueues {
                let one = Group {
                    enqueues: vec![job],
                    ..Group::default()
                };
                Box::pin(write_group(pool, one)).await;
            }
            for job in completes {
                let one = Group {
                    completes: vec![job],
                    ..Group::default()
                };
                Box::pin(write_group(pool, one)).await;
            }
            for job in claims {
                let one = Group {
                    claims: vec![job],
                    ..Group::default()
                };
                Box::pin(write_group(pool, one)).await;
            }
        }
    }
}

/// Runs each claim's statement; the deliveries each took.
async fn claim_all<B: Backend>(
    conn: &mut B::Connection,
    claims: &[ClaimJob],
) -> Result<Vec<Vec<Claimed>>, sqlx::Error> {
    let mut all = Vec::with_capacity(claims.len());
    for (request, _) in claims {
        let query = claim_query(request);
        let stmt = B::grouped_claim(&query).ok_or_else(|| {
            sqlx::Error::Protocol("a grouped claim on a backend without one".into())
        })?;
        let rows = B::fetch(conn, stmt).await?;
        all.push(
            rows.iter()
                .map(common::claimed::<B>)
                .collect::<Result<_, _>>()?,
        );
    }
    Ok(all)
}

/// Stores the notifications and their deliveries with one statement each;
/// duplicates (also within the group: the first one wins) store nothing.
async fn enqueue_all<B: Backend>(
    conn: &mut B::Connection,
    news: &[&NewNotification],
) -> Result<Vec<Enqueued>, sqlx::Error> {
    if news.is_empty() {
        return Ok(Vec::new());
    }
    let row = format!("({})", placeholders(13));
    let mut insert = Stmt::new(
        B::DIALECT,
        &format!(
            "INSERT INTO clarion_notifications ({NOTIFICATION_COLUMNS}) VALUES {} \
             ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
            vec![row.as_str(); news.len()].join(", ")
        ),
    );
    for new in news {
        insert
            .args
            .extend(rows::notification_args(&new.notification));
    }
    let inserted: HashSet<Uuid> = B::fetch(conn, insert)
        .await?
        .iter()
        .map(|row| B::get_uuid(row, "id"))
        .collect::<Result<_, _>>()?;
    // Who holds the keys of the ones that were not inserted.
    let keys: Vec<String> = news
        .iter()
        .filter(|n| !inserted.contains(&n.notification.id))
        .filter_map(|n| n.notification.event.dedup_key.clone())
        .collect();
    let mut holders = HashMap::new();
    if !keys.is_empty() {
        let mut select = Stmt::new(
            B::DIALECT,
            &format!(
                "SELECT id, dedup_key FROM clarion_notifications WHERE dedup_key IN ({})",
                placeholders(keys.len())
            ),
        );
        select.args.extend(keys.into_iter().map(Arg::Text));
        for row in B::fetch(conn, select).await? {
            holders.insert(B::get_text(&row, "dedup_key")?, B::get_uuid(&row, "id")?);
        }
    }
    let mut results = Vec::with_capacity(news.len());
    let mut deliveries = Stmt::new(B::DIALECT, "");
    let mut values = Vec::new();
    for new in news {
        let n = &new.notification;
        if !inserted.contains(&n.id) {
            let holder = n
                .event
                .dedup_key
                .as_ref()
                .and_then(|key| holders.get(key))
                .copied();
            results.push(match holder {
                Some(existing_id) => Enqueued::Duplicate { existing_id },
                None => {
                    return Err(sqlx::Error::Protocol(
                        "a notification insert stored nothing and no dedup key explains it".into(),
                    ));
                }
            });
            continue;
        }
        let ids: Vec<Uuid> = new.channels.iter().map(|_| Uuid::now_v7()).collect();
        for (id, channel) in ids.iter().zip(&new.channels) {
            values.push("(?, ?, ?, 'pending', 0, ?, ?, ?)");
            deliveries.args.extend([
                Arg::Uuid(*id),
                Arg::Uuid(n.id),
                Arg::Text(channel.clone()),
                Arg::Time(n.created_at),
                Arg::Time(n.created_at),
                Arg::Time(n.created_at),
            ]);
        }
        results.push(Enqueued::Created {
            notification_id: n.id,
            deliveries: ids,
        });
    }
    // 6 parameters per delivery; split to stay under SQLite's limit.
    let mut args = deliveries.args.into_iter();
    for chunk in values.chunks(4_000) {
        let stmt = Stmt {
            sql: B::DIALECT.sql(&format!(
                "INSERT INTO clarion_deliveries (id, notification_id, channel, status, \
                 attempts, next_attempt_at, created_at, updated_at) VALUES {}",
                chunk.join(", ")
            )),
            args: args.by_ref().take(chunk.len() * 6).collect(),
        };
        B::exec(conn, stmt).await?;
    }
    Ok(results)
}

impl<B: Backend> SqlStore<B> {
    /// Routes `enqueue` (and `complete` if `completions`, claims if
    /// `claims`) through a group-committing writer.
    pub(crate) fn with_group_commit(
        mut self,
        completions: bool,
        claims: bool,
        writers: usize,
    ) -> Self {
        let writer = GroupCommit::start(self.write.clone(), completions, claims, writers);
        self.group = Some(std::sync::Arc::new(writer));
        self
    }
}
