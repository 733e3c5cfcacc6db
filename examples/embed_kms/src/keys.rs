//! The KMS's own table: keys and their rotation policies.
//!
//! It lives in the same database as clarion's store, which is what lets a
//! rotation and its notification commit in one transaction (see
//! [`crate::rotation`]). Times are integer Unix seconds, so that `<=`
//! compares them correctly in SQL.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use clarion::deadline::{Deadline, DeadlineSource, SourceError};
use clarion::event::{Labels, ObjectType, Subject};
use clarion::sql::sqlx::{self, SqliteConnection, SqlitePool};

/// A key as the KMS keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The key's id (not secret: never key material).
    pub id: String,
    /// What kind of object it is.
    pub object_type: ObjectType,
    /// Whose inbox hears about it.
    pub owner: String,
    /// The current version, 1 for a new key.
    pub version: i64,
    /// The rotation policy: rotate every this many days.
    pub rotation_days: i64,
    /// When the current version must be replaced.
    pub next_rotation_at: DateTime<Utc>,
    /// Failed attempts at the current rotation.
    pub failed_attempts: i64,
}

impl Key {
    /// The subject clarion reports this key as.
    pub fn subject(&self) -> Subject {
        Subject::new(&self.id, self.object_type)
    }
}

type Row = (String, String, String, i64, i64, i64, i64);

fn key(
    (id, object_type, owner, version, rotation_days, next, failed): Row,
) -> Result<Key, sqlx::Error> {
    let decode = |e: String| sqlx::Error::Decode(e.into());
    Ok(Key {
        object_type: serde_json::from_value(serde_json::Value::String(object_type))
            .map_err(|e| decode(format!("kms_keys.object_type of {id}: {e}")))?,
        next_rotation_at: DateTime::from_timestamp(next, 0)
            .ok_or_else(|| decode(format!("kms_keys.next_rotation_at of {id}: out of range")))?,
        id,
        owner,
        version,
        rotation_days,
        failed_attempts: failed,
    })
}

/// The key table, on the store's write pool.
///
/// On SQLite that pool is clarion's single writer connection: the KMS's
/// writes queue behind clarion's instead of failing with `SQLITE_BUSY`.
#[derive(Debug, Clone)]
pub struct Keys {
    pool: SqlitePool,
}

impl Keys {
    /// The table on `pool`, created if missing.
    pub async fn open(pool: SqlitePool) -> Result<Self, sqlx::Error> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS kms_keys (
                id TEXT NOT NULL PRIMARY KEY,
                object_type TEXT NOT NULL,
                owner TEXT NOT NULL,
                version INTEGER NOT NULL,
                rotation_days INTEGER NOT NULL,
                next_rotation_at INTEGER NOT NULL,
                failed_attempts INTEGER NOT NULL DEFAULT 0
            )",
        )
        .execute(&pool)
        .await?;
        Ok(Keys { pool })
    }

    /// A fresh database gets four sample keys for two owners, due within
    /// days of `now` so that a short simulation rotates them and warns first.
    pub async fn seed_if_empty(&self, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
        let samples = [
            ("payments-master", ObjectType::SymmetricKey, "alice", 30, 4),
            ("tls-frontend", ObjectType::Certificate, "alice", 90, 9),
            ("release-signing", ObjectType::KeyPair, "bob", 14, 2),
            ("ci-deploy-token", ObjectType::Token, "bob", 7, 6),
        ];
        let mut tx = self.pool.begin().await?;
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM kms_keys")
            .fetch_one(&mut *tx)
            .await?;
        if count == 0 {
            for (id, object_type, owner, days, due_in) in samples {
                sqlx::query(
                    "INSERT INTO kms_keys (id, object_type, owner, version, rotation_days, \
                     next_rotation_at) VALUES (?, ?, ?, 1, ?, ?)",
                )
                .bind(id)
                .bind(object_type.as_str())
                .bind(owner)
                .bind(days)
                .bind((now + TimeDelta::days(due_in)).timestamp())
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await
    }

    /// Keys whose rotation is due by `until`, by id (a stable order keeps the
    /// seeded simulation reproducible).
    pub async fn due_by(&self, until: DateTime<Utc>) -> Result<Vec<Key>, sqlx::Error> {
        sqlx::query_as::<_, Row>(
            "SELECT id, object_type, owner, version, rotation_days, next_rotation_at, \
             failed_attempts FROM kms_keys WHERE next_rotation_at <= ? ORDER BY id",
        )
        .bind(until.timestamp())
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(key)
        .collect()
    }

    /// Records a successful rotation on `tx`: the next version, due again
    /// after the policy's period. Returns the new version.
    pub async fn record_rotation(
        tx: &mut SqliteConnection,
        key: &Key,
        now: DateTime<Utc>,
    ) -> Result<i64, sqlx::Error> {
        let next = now + TimeDelta::days(key.rotation_days);
        sqlx::query(
            "UPDATE kms_keys SET version = version + 1, next_rotation_at = ?, failed_attempts = 0 \
             WHERE id = ?",
        )
        .bind(next.timestamp())
        .bind(&key.id)
        .execute(&mut *tx)
        .await?;
        Ok(key.version + 1)
    }

    /// Records a failed attempt on `tx`. The deadline stays: the key is now
    /// overdue, and the deadline watcher keeps saying so.
    pub async fn record_failure(tx: &mut SqliteConnection, key: &Key) -> Result<i64, sqlx::Error> {
        sqlx::query("UPDATE kms_keys SET failed_attempts = failed_attempts + 1 WHERE id = ?")
            .bind(&key.id)
            .execute(&mut *tx)
            .await?;
        Ok(key.failed_attempts + 1)
    }
}

/// What the deadline watcher asks the KMS: which keys are due by `until`,
/// whose they are. clarion turns them into `approaching_deadline` warnings at
/// its thresholds (30, 7 and 1 days by default), once per key, deadline and
/// threshold.
#[async_trait]
impl DeadlineSource for Keys {
    async fn due_by(&self, until: DateTime<Utc>) -> Result<Vec<Deadline>, SourceError> {
        Ok(Keys::due_by(self, until)
            .await?
            .into_iter()
            .map(|key| Deadline {
                subject: key.subject(),
                deadline: key.next_rotation_at,
                owner: Some(key.owner.clone()),
                labels: Labels::from([("policy".to_owned(), format!("{}d", key.rotation_days))]),
            })
            .collect())
    }
}
