//! A whole group as one script, for drivers that run several statements per
//! command ([`Backend::SCRIPTS`], SQLite): `BEGIN IMMEDIATE`, the
//! notifications, who holds the group's dedup keys, the deliveries, the
//! outcomes, the claims, `COMMIT` — one hand-off to the driver's thread and
//! one commit, however many requests the group carries.
//!
//! No statement depends on an earlier one's rows: the deliveries are
//! inserted only where their notification row exists (a duplicate's was not
//! inserted), and a notification is a duplicate when its key's holder is
//! another notification.

use std::collections::{HashMap, HashSet};

use clarion_core::store::{Enqueued, NewNotification};
use uuid::Uuid;

use crate::backend::{Arg, Backend, Claimed, Completion, Stmt, placeholders};
use crate::common;
use crate::rows::{self, NOTIFICATION_COLUMNS};
use crate::store::claim_query;

use super::ClaimJob;

/// Deliveries per insert (6 parameters each; SQLite allows 32,766 per statement).
const DELIVERIES_PER_INSERT: usize = 4_000;

/// The script and where each answer's rows are.
pub(super) struct Script {
    stmt: Stmt,
    /// Delivery ids per notification, in request order.
    delivery_ids: Vec<Vec<Uuid>>,
    holders: Option<usize>,
    completed: Option<usize>,
    claims: Vec<usize>,
}

/// What a script's group wrote.
pub(super) type Written = (Vec<Enqueued>, HashSet<Uuid>, Vec<Vec<Claimed>>);

impl Script {
    pub(super) fn build<B: Backend>(
        news: &[&NewNotification],
        completions: &[&Completion],
        claims: &[ClaimJob],
    ) -> Script {
        let mut script = Script {
            stmt: Stmt::new(B::DIALECT, "BEGIN IMMEDIATE;"),
            delivery_ids: Vec::with_capacity(news.len()),
            holders: None,
            completed: None,
            claims: Vec::with_capacity(claims.len()),
        };
        // Statement 0 is BEGIN.
        let mut next = 1;
        if !news.is_empty() {
            let row = format!("({})", placeholders(13));
            let mut insert = Stmt::new(
                B::DIALECT,
                &format!(
                    "INSERT INTO clarion_notifications ({NOTIFICATION_COLUMNS}) VALUES {} \
                     ON CONFLICT (dedup_key) DO NOTHING;",
                    vec![row.as_str(); news.len()].join(", ")
                ),
            );
            for new in news {
                insert
                    .args
                    .extend(rows::notification_args(&new.notification));
            }
            script.push(insert);
            next += 1;
            let keys: Vec<String> = news
                .iter()
                .filter_map(|n| n.notification.event.dedup_key.clone())
                .collect();
            if !keys.is_empty() {
                let mut select = Stmt::new(
                    B::DIALECT,
                    &format!(
                        "SELECT id, dedup_key FROM clarion_notifications WHERE dedup_key IN ({});",
                        placeholders(keys.len())
                    ),
                );
                select.args.extend(keys.into_iter().map(Arg::Text));
                script.push(select);
                script.holders = Some(next);
                next += 1;
            }
            let mut values = Vec::new();
            let mut args = Vec::new();
            for new in news {
                let n = &new.notification;
                let ids: Vec<Uuid> = new.channels.iter().map(|_| Uuid::now_v7()).collect();
                for (id, channel) in ids.iter().zip(&new.channels) {
                    values.push("(?, ?, ?, ?, ?, ?)");
                    args.extend([
                        Arg::Uuid(*id),
                        Arg::Uuid(n.id),
                        Arg::Text(channel.clone()),
                        Arg::Time(n.created_at),
                        Arg::Time(n.created_at),
                        Arg::Time(n.created_at),
                    ]);
                }
                script.delivery_ids.push(ids);
            }
            let mut args = args.into_iter();
            for chunk in values.chunks(DELIVERIES_PER_INSERT) {
                let insert = Stmt {
                    sql: B::DIALECT.sql(&format!(
                        "INSERT INTO clarion_deliveries (id, notification_id, channel, status, \
                         attempts, next_attempt_at, created_at, updated_at) \
                         SELECT v.column1, v.column2, v.column3, 'pending', 0, v.column4, \
                         v.column5, v.column6 FROM (VALUES {}) AS v \
                         WHERE EXISTS (SELECT 1 FROM clarion_notifications n WHERE n.id = v.column2);",
                        chunk.join(", ")
                    )),
                    args: args.by_ref().take(chunk.len() * 6).collect(),
                };
                script.push(insert);
                next += 1;
            }
        }
        if !completions.is_empty() {
            let mut update = common::complete_values_stmt::<B>(completions);
            update.sql.push(';');
            script.push(update);
            script.completed = Some(next);
            next += 1;
        }
        for (request, _) in claims {
            let query = claim_query(request);
            let mut claim = B::grouped_claim(&query)
                .expect("scripted groups carry claims only where the backend groups them");
            claim.sql.push(';');
            script.push(claim);
            script.claims.push(next);
            next += 1;
        }
        script.push(Stmt::new(B::DIALECT, "COMMIT;"));
        script
    }

    fn push(&mut self, stmt: Stmt) {
        self.stmt.sql.push(' ');
        self.stmt.sql.push_str(&stmt.sql);
        self.stmt.args.extend(stmt.args);
    }

    /// Runs the script on `conn`; on an error the transaction is rolled back.
    pub(super) async fn run<B: Backend>(
        self,
        conn: &mut B::Connection,
        news: &[&NewNotification],
    ) -> Result<Written, sqlx::Error> {
        let Script {
            stmt,
            delivery_ids,
            holders,
            completed,
            claims,
        } = self;
        let results = match B::fetch_script(conn, stmt).await {
            Ok(results) => results,
            Err(error) => {
                // The failed statement left the transaction open (or COMMIT
                // failed); "no transaction is active" is fine here.
                let _ = B::exec(conn, Stmt::new(B::DIALECT, "ROLLBACK")).await;
                return Err(error);
            }
        };
        let rows_of = |i: Option<usize>| i.and_then(|i| results.get(i)).map(Vec::as_slice);
        let mut holder = HashMap::new();
        for row in rows_of(holders).unwrap_or_default() {
            holder.insert(B::get_text(row, "dedup_key")?, B::get_uuid(row, "id")?);
        }
        let mut enqueued = Vec::with_capacity(news.len());
        for (new, deliveries) in news.iter().zip(delivery_ids) {
            let n = &new.notification;
            let held_by = n.event.dedup_key.as_ref().map(|key| holder.get(key));
            enqueued.push(match held_by {
                None => Enqueued::Created {
                    notification_id: n.id,
                    deliveries,
                },
                Some(Some(&id)) if id == n.id => Enqueued::Created {
                    notification_id: n.id,
                    deliveries,
                },
                Some(Some(&existing_id)) => Enqueued::Duplicate { existing_id },
                Some(None) => {
                    return Err(sqlx::Error::Protocol(
                        "a dedup key has no holder after its insert".into(),
                    ));
                }
            });
        }
        let completed = rows_of(completed)
            .unwrap_or_default()
            .iter()
            .map(|row| B::get_uuid(row, "id"))
            .collect::<Result<_, _>>()?;
        let claimed = claims
            .into_iter()
            .map(|i| {
                rows_of(Some(i))
                    .unwrap_or_default()
                    .iter()
                    .map(common::claimed::<B>)
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<_, _>>()?;
        Ok((enqueued, completed, claimed))
    }
}
