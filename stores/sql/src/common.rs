//! Pieces of SQL and setup shared by the dialects' claims and migrations.

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use crate::backend::{Arg, Backend, ClaimQuery, Claimed};

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
    })
}

/// The embedded migrations of one dialect. They are recorded in
/// `_clarion_migrations`, so an application that runs its own sqlx migrations
/// in the same database keeps its `_sqlx_migrations` to itself.
pub(crate) fn migrator(init: &'static str) -> Migrator {
    let mut migrator = Migrator::with_migrations(vec![Migration::new(
        1,
        "init".into(),
        MigrationType::Simple,
        init.into_sql_str(),
        false,
    )]);
    migrator.dangerous_set_table_name("_clarion_migrations");
    migrator
}
