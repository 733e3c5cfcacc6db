//! Pieces of SQL and setup shared by the dialects' claims and migrations.

use std::collections::HashSet;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use uuid::Uuid;

use crate::backend::{Arg, Backend, ClaimQuery, Claimed, Completion, Stmt, placeholders};

/// What a claim returns for each delivery it took.
pub(crate) const CLAIM_RETURNING: &str =
    "id, notification_id, channel, attempts, created_at, lease_token, next_attempt_at AS due";

/// The `SET` of a claim, with `token` the dialect's fresh-random-UUID
/// expression (evaluated per row). `next_attempt_at` is assigned first: MySQL
/// evaluates assignments left to right, seeing earlier ones.
pub(crate) fn claim_set(token: &str) -> String {
    format!(
        "next_attempt_at = CASE WHEN status = 'pending' THEN next_attempt_at ELSE lease_until END, \
         status = 'in_flight', lease_until = ?, lease_token = {token}, updated_at = ?"
    )
}

/// The arguments of [`claim_set`].
pub(crate) fn claim_set_args(query: &ClaimQuery<'_>) -> Vec<Arg> {
    vec![Arg::Time(query.lease_until), Arg::Time(query.now)]
}

/// A row selected with [`CLAIM_RETURNING`].
pub(crate) fn claimed<B: Backend>(row: &B::Row) -> Result<Claimed, sqlx::Error> {
    Ok(Claimed {
        id: B::get_uuid(row, "id")?,
        notification_id: B::get_uuid(row, "notification_id")?,
        channel: B::get_text(row, "channel")?,
        attempts: B::get_i32(row, "attempts")?,
        created_at: B::get_time(row, "created_at")?,
        token: B::get_uuid(row, "lease_token")?,
        due: B::get_opt_time(row, "due")?,
        notification: None,
    })
}

/// The embedded migrations of one dialect, in order (version 1, 2, …). They
/// are recorded in `_clarion_migrations`, so an application that runs its own
/// sqlx migrations in the same database keeps its `_sqlx_migrations` to
/// itself.
pub(crate) fn migrator(migrations: &[(&'static str, &'static str)]) -> Migrator {
    let mut migrator = Migrator::with_migrations(
        migrations
            .iter()
            .zip(1..)
            .map(|(&(name, sql), version)| {
                Migration::new(
                    version,
                    name.into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    );
    migrator.dangerous_set_table_name("_clarion_migrations");
    migrator
}

/// Records the outcomes with one `UPDATE … FROM (VALUES …)`, each only under
/// its current token; returns the deliveries it updated.
pub(crate) async fn complete_values<B: Backend>(
    conn: &mut B::Connection,
    completions: &[&Completion],
) -> Result<HashSet<Uuid>, sqlx::Error> {
    if completions.is_empty() {
        return Ok(HashSet::new());
    }
    B::fetch(conn, complete_values_stmt::<B>(completions))
        .await?
        .iter()
        .map(|row| B::get_uuid(row, "id"))
        .collect()
}

/// The statement of [`complete_values`] (at least one completion); it
/// returns the `id` of each delivery it updated.
pub(crate) fn complete_values_stmt<B: Backend>(completions: &[&Completion]) -> Stmt {
    let row = format!("({})", placeholders(8));
    let mut stmt = Stmt::new(
        B::DIALECT,
        &format!(
            "UPDATE clarion_deliveries SET status = v.column3, attempts = attempts + 1, \
             next_attempt_at = v.column4, lease_until = NULL, lease_token = NULL, \
             last_error = COALESCE(v.column5, last_error), sent_at = v.column6, \
             receipt = v.column7, updated_at = v.column8 \
             FROM (VALUES {}) AS v \
             WHERE clarion_deliveries.id = v.column1 AND clarion_deliveries.status = 'in_flight' \
             AND clarion_deliveries.lease_token = v.column2 RETURNING id",
            vec![row.as_str(); completions.len()].join(", ")
        ),
    );
    for c in completions {
        let r = &c.recorded;
        stmt.args.extend([
            Arg::Uuid(c.id),
            Arg::Uuid(c.token),
            Arg::Text(r.status.to_owned()),
            Arg::OptTime(r.next),
            Arg::OptText(r.error.clone()),
            Arg::OptTime(r.sent_at),
            Arg::OptText(r.receipt.clone()),
            Arg::Time(r.at),
        ]);
    }
    stmt
}
