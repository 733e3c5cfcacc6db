//! Rows ⇄ records, once for every dialect: the column lists, the values an
//! insert binds, and the decoding of a row into a [`Notification`] or a
//! [`DeliveryRecord`].

use std::str::FromStr;

use chrono::{DateTime, Utc};
use clarion_core::event::{EventKind, KeyEvent, ObjectType, Severity, Subject};
use clarion_core::notification::Notification;
use clarion_core::store::{DeliveryRecord, DeliveryStatus, StoreError};
use serde::de::DeserializeOwned;

use crate::backend::{Arg, Backend};

/// The notification columns, in insert order.
pub const NOTIFICATION_COLUMNS: &str = "id, kind, subject_id, subject_type, subject_name, \
     owner, severity, occurred_at, labels, data, dedup_key, created_at, read_at";

/// The delivery columns a record is read from.
pub(crate) const DELIVERY_COLUMNS: &str = "id, notification_id, channel, status, attempts, \
     next_attempt_at, lease_until, last_error, sent_at, receipt, created_at, updated_at";

/// The values of [`NOTIFICATION_COLUMNS`] for `n`.
pub fn notification_args(n: &Notification) -> Vec<Arg> {
    let e = &n.event;
    vec![
        Arg::Uuid(n.id),
        Arg::Text(e.kind.as_str().to_owned()),
        Arg::Text(e.subject.id.clone()),
        Arg::Text(e.subject.object_type.as_str().to_owned()),
        Arg::OptText(e.subject.name.clone()),
        Arg::OptText(e.owner.clone()),
        Arg::Text(e.severity.as_str().to_owned()),
        Arg::Time(e.occurred_at),
        Arg::Json(serde_json::to_value(&e.labels).unwrap_or_default()),
        Arg::Json(e.data.clone()),
        Arg::OptText(e.dedup_key.clone()),
        Arg::Time(n.created_at),
        Arg::OptTime(n.read_at),
    ]
}

fn corrupt(column: &str, message: impl std::fmt::Display) -> StoreError {
    StoreError::backend(
        format!("stored column {column} cannot be read: {message}"),
        false,
    )
}

fn decode(error: sqlx::Error) -> StoreError {
    StoreError::backend(format!("reading a stored row: {error}"), false)
}

/// A snake_case enum stored as its wire name.
fn wire<T: DeserializeOwned>(column: &str, value: String) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(value)).map_err(|e| corrupt(column, e))
}

/// Decodes a row selected with [`NOTIFICATION_COLUMNS`].
pub(crate) fn notification<B: Backend>(row: &B::Row) -> Result<Notification, StoreError> {
    let kind = B::get_text(row, "kind").map_err(decode)?;
    let kind = EventKind::from_str(&kind).map_err(|e| corrupt("kind", e))?;
    let object_type: ObjectType = wire(
        "subject_type",
        B::get_text(row, "subject_type").map_err(decode)?,
    )?;
    let severity: Severity = wire("severity", B::get_text(row, "severity").map_err(decode)?)?;
    let labels = serde_json::from_value(B::get_json(row, "labels").map_err(decode)?)
        .map_err(|e| corrupt("labels", e))?;
    Ok(Notification {
        id: B::get_uuid(row, "id").map_err(decode)?,
        event: KeyEvent {
            kind,
            subject: Subject {
                id: B::get_text(row, "subject_id").map_err(decode)?,
                object_type,
                name: B::get_opt_text(row, "subject_name").map_err(decode)?,
            },
            owner: B::get_opt_text(row, "owner").map_err(decode)?,
            severity,
            occurred_at: B::get_time(row, "occurred_at").map_err(decode)?,
            labels,
            data: B::get_json(row, "data").map_err(decode)?,
            dedup_key: B::get_opt_text(row, "dedup_key").map_err(decode)?,
        },
        created_at: B::get_time(row, "created_at").map_err(decode)?,
        read_at: B::get_opt_time(row, "read_at").map_err(decode)?,
    })
}

/// Decodes a delivery status column.
pub(crate) fn status<B: Backend>(row: &B::Row, column: &str) -> Result<DeliveryStatus, StoreError> {
    let status = B::get_text(row, column).map_err(decode)?;
    DeliveryStatus::from_str(&status).map_err(|e| corrupt(column, e))
}

/// Decodes a row selected with [`DELIVERY_COLUMNS`].
pub(crate) fn delivery<B: Backend>(row: &B::Row) -> Result<DeliveryRecord, StoreError> {
    let status = status::<B>(row, "status")?;
    let time = |column| B::get_opt_time(row, column).map_err(decode);
    // In flight, next_attempt_at remembers when the claimed attempt was due
    // (it orders claims); the record shows it only while pending.
    let next_attempt_at = match status {
        DeliveryStatus::Pending => time("next_attempt_at")?,
        _ => None,
    };
    let lease_until = match status {
        DeliveryStatus::InFlight => time("lease_until")?,
        _ => None,
    };
    let attempts = B::get_i32(row, "attempts").map_err(decode)?;
    Ok(DeliveryRecord {
        id: B::get_uuid(row, "id").map_err(decode)?,
        notification_id: B::get_uuid(row, "notification_id").map_err(decode)?,
        channel: B::get_text(row, "channel").map_err(decode)?,
        status,
        attempts: u32::try_from(attempts).map_err(|e| corrupt("attempts", e))?,
        next_attempt_at,
        lease_until,
        last_error: B::get_opt_text(row, "last_error").map_err(decode)?,
        sent_at: time("sent_at")?,
        receipt: B::get_opt_text(row, "receipt").map_err(decode)?,
        created_at: B::get_time(row, "created_at").map_err(decode)?,
        updated_at: B::get_time(row, "updated_at").map_err(decode)?,
    })
}

/// Microseconds since the epoch ⇄ time (SQLite's timestamp columns).
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn from_micros(micros: i64, column: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: format!("{micros} µs is not a representable time").into(),
    })
}
