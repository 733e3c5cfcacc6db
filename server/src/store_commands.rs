//! The commands that open the configured store: `emit`, `deliveries`,
//! `requeue`. A `clarion serve` running on the same store delivers what
//! they enqueue.

use std::path::Path;

use clarion::Notifier;
use clarion::store::{DeliveryFilter, DeliveryStatus, PageRequest, Requeued};
use uuid::Uuid;

use crate::commands::read_event;
use crate::error::Failure;
use crate::load;

async fn notifier(config_path: &Path) -> Result<Notifier, Failure> {
    let config = load(config_path)?;
    let store = clarion::open_store(&config.store)
        .await
        .map_err(|e| Failure::Operational(format!("cannot open the store: {e}")))?;
    Ok(Notifier::builder()
        .config(config)
        .shared_store(store)
        .build()?)
}

/// `clarion emit`: stores the event; prints its result as `POST /v1/events` does.
pub async fn emit(config_path: &Path, event_path: &Path) -> Result<(), Failure> {
    let event = read_event(event_path)?;
    let notifier = notifier(config_path).await?;
    match notifier.emit(&event).await {
        Ok(outcome) => {
            println!("{}", crate::ingest::outcome_json(&outcome));
            Ok(())
        }
        Err(clarion::EmitError::InvalidEvent { field, message }) => {
            Err(Failure::Usage(format!("invalid event: {field}: {message}")))
        }
        Err(clarion::EmitError::Store(e)) => Err(Failure::Operational(format!(
            "the event was not stored: {e}"
        ))),
    }
}

/// `clarion deliveries`: every matching delivery, newest first.
pub async fn deliveries(
    config_path: &Path,
    status: Option<&str>,
    channel: Option<String>,
    json: bool,
) -> Result<(), Failure> {
    let status = status
        .map(|s| {
            DeliveryStatus::ALL
                .into_iter()
                .find(|d| d.as_str() == s)
                .ok_or_else(|| {
                    Failure::Usage(format!(
                        "unknown status {s:?}: pending, in_flight, sent or dead"
                    ))
                })
        })
        .transpose()?;
    let notifier = notifier(config_path).await?;
    let filter = DeliveryFilter { status, channel };
    let mut page = PageRequest::first(200);
    loop {
        let found = notifier
            .store()
            .deliveries(&filter, page)
            .await
            .map_err(|e| Failure::Operational(format!("cannot list deliveries: {e}")))?;
        for d in &found.items {
            if json {
                let line = serde_json::to_string(d)
                    .map_err(|e| Failure::Operational(format!("cannot print: {e}")))?;
                println!("{line}");
            } else {
                println!(
                    "{}  {:<9} {:<16} attempts {:<3} {}",
                    d.id,
                    d.status.as_str(),
                    d.channel,
                    d.attempts,
                    d.last_error.as_deref().unwrap_or("")
                );
            }
        }
        match found.next {
            Some(next) => page.after = Some(next),
            None => return Ok(()),
        }
    }
}

/// `clarion requeue`: each dead delivery pending again, due now.
pub async fn requeue(config_path: &Path, ids: &[String]) -> Result<(), Failure> {
    let ids = ids
        .iter()
        .map(|id| {
            Uuid::parse_str(id).map_err(|_| Failure::Usage(format!("{id:?} is not a delivery id")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let notifier = notifier(config_path).await?;
    let mut failed = Vec::new();
    for id in ids {
        match notifier.requeue(id).await {
            Ok(Requeued::Requeued) => println!("{id}: requeued"),
            Ok(Requeued::NotDead(status)) => failed.push(format!(
                "{id}: not dead ({status}); only dead deliveries are requeued"
            )),
            Ok(Requeued::NotFound) => failed.push(format!("{id}: no such delivery")),
            Err(e) => failed.push(format!("{id}: {e}")),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Operational(failed.join("\n")))
    }
}
