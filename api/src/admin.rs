//! The admin router: deliveries, the dead-letter queue and counts.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::routing::{MethodRouter, get, post};
use clarion_core::store::{DeliveryFilter, DeliveryRecord, DeliveryStatus, Requeued};
use http::Method;
use serde::Serialize;

use crate::Api;
use crate::error::Rejection;
use crate::params::{CursorKind, Id, Params, truncate};

/// Every admin route: the router is built from this table, and the OpenAPI
/// document is checked against it.
pub(crate) fn routes() -> Vec<(Method, &'static str, MethodRouter<Api>)> {
    vec![
        (Method::GET, "/deliveries", get(list)),
        (Method::GET, "/deliveries/{id}", get(one)),
        (Method::POST, "/deliveries/{id}/requeue", post(requeue)),
        (Method::GET, "/stats", get(stats)),
    ]
}

#[derive(Serialize)]
struct ListBody {
    items: Vec<DeliveryRecord>,
    next_cursor: Option<String>,
}

const MAX_CHANNEL: usize = 255;

async fn list(
    State(api): State<Api>,
    RawQuery(query): RawQuery,
) -> Result<Json<ListBody>, Rejection> {
    let params = Params::parse(query.as_deref(), &["status", "channel", "limit", "cursor"])?;
    let status = params
        .non_empty("status")?
        .map(|raw| {
            raw.parse::<DeliveryStatus>().map_err(|_| {
                Rejection::bad_request(
                    "invalid_status",
                    format!(
                        "unknown delivery status {:?}; expected pending, in_flight, sent or dead",
                        truncate(raw)
                    ),
                )
            })
        })
        .transpose()?;
    let channel = params.non_empty("channel")?.map(str::to_owned);
    if channel.as_ref().is_some_and(|c| c.len() > MAX_CHANNEL) {
        return Err(Rejection::bad_request(
            "invalid_channel",
            format!("channel names are at most {MAX_CHANNEL} bytes"),
        ));
    }
    let page = params.page(CursorKind::Deliveries)?;
    let page = api
        .store
        .deliveries(&DeliveryFilter { status, channel }, page)
        .await
        .map_err(Rejection::store)?;
    Ok(Json(ListBody {
        items: page.items,
        next_cursor: page.next.map(|id| CursorKind::Deliveries.encode(id)),
    }))
}

fn unknown(id: uuid::Uuid) -> Rejection {
    Rejection::not_found(format!("delivery {id} not found"))
}

async fn one(
    State(api): State<Api>,
    Id(id): Id,
    RawQuery(query): RawQuery,
) -> Result<Json<DeliveryRecord>, Rejection> {
    Params::parse(query.as_deref(), &[])?;
    api.store
        .delivery(id)
        .await
        .map_err(Rejection::store)?
        .map(Json)
        .ok_or_else(|| unknown(id))
}

async fn requeue(
    State(api): State<Api>,
    Id(id): Id,
    RawQuery(query): RawQuery,
) -> Result<Json<DeliveryRecord>, Rejection> {
    Params::parse(query.as_deref(), &[])?;
    let result = match &api.notifier {
        // Through the notifier, so that its dispatcher wakes up now.
        Some(notifier) => notifier.requeue(id).await,
        None => api.store.requeue(id, api.clock.now()).await,
    }
    .map_err(Rejection::store)?;
    match result {
        Requeued::Requeued => {
            tracing::info!(delivery_id = %id, "clarion-api: dead delivery requeued");
            // The dispatcher may already have claimed it again: report what is stored now.
            api.store
                .delivery(id)
                .await
                .map_err(Rejection::store)?
                .map(Json)
                .ok_or_else(|| unknown(id))
        }
        Requeued::NotDead(status) => Err(Rejection::not_dead(id, status)),
        Requeued::NotFound => Err(unknown(id)),
    }
}

/// Counts of one status each; every status is present, zero or not.
#[derive(Serialize, Default)]
struct ByStatus {
    pending: u64,
    in_flight: u64,
    sent: u64,
    dead: u64,
    total: u64,
}

impl ByStatus {
    fn add(&mut self, status: DeliveryStatus, count: u64) {
        let slot = match status {
            DeliveryStatus::Pending => &mut self.pending,
            DeliveryStatus::InFlight => &mut self.in_flight,
            DeliveryStatus::Sent => &mut self.sent,
            DeliveryStatus::Dead => &mut self.dead,
        };
        *slot = slot.saturating_add(count);
        self.total = self.total.saturating_add(count);
    }
}

#[derive(Serialize)]
struct StatsBody {
    by_status: ByStatus,
    by_channel: BTreeMap<String, ByStatus>,
}

async fn stats(
    State(api): State<Api>,
    RawQuery(query): RawQuery,
) -> Result<Json<StatsBody>, Rejection> {
    Params::parse(query.as_deref(), &[])?;
    let counts = api.store.counts().await.map_err(Rejection::store)?;
    let mut body = StatsBody {
        by_status: ByStatus::default(),
        by_channel: BTreeMap::new(),
    };
    for count in counts {
        body.by_status.add(count.status, count.count);
        body.by_channel
            .entry(count.channel)
            .or_default()
            .add(count.status, count.count);
    }
    Ok(Json(body))
}
