//! The inbox router: an owner's notifications and their read state.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use clarion_core::Notification;
use http::{Method, StatusCode};
use serde::Serialize;

use crate::InboxState;
use crate::error::Rejection;
use crate::owner::Owner;
use crate::params::{CursorKind, Id, Params};

/// Every inbox route: the router is built from this table, and the OpenAPI
/// document is checked against it.
pub(crate) fn routes() -> Vec<(Method, &'static str, MethodRouter<InboxState>)> {
    vec![
        (Method::GET, "/notifications", get(list)),
        (
            Method::GET,
            "/notifications/unread/count",
            get(unread_count),
        ),
        (Method::GET, "/notifications/{id}", get(one)),
        (Method::POST, "/notifications/{id}/read", post(mark_read)),
        (Method::POST, "/notifications/read-all", post(mark_all_read)),
    ]
}

/// A notification as the stored JSON shape plus `read`.
#[derive(Serialize)]
struct View<'a> {
    #[serde(flatten)]
    notification: &'a Notification,
    read: bool,
}

impl<'a> From<&'a Notification> for View<'a> {
    fn from(notification: &'a Notification) -> Self {
        View {
            notification,
            read: notification.read_at.is_some(),
        }
    }
}

#[derive(Serialize)]
struct ListBody<'a> {
    items: Vec<View<'a>>,
    next_cursor: Option<String>,
    unread: u64,
}

async fn list(
    State(state): State<InboxState>,
    Owner(owner): Owner,
    RawQuery(query): RawQuery,
) -> Result<Response, Rejection> {
    let page =
        Params::parse(query.as_deref(), &["limit", "cursor"])?.page(CursorKind::Notifications)?;
    let store = &state.api.store;
    let page = store
        .notifications(&owner, page)
        .await
        .map_err(Rejection::store)?;
    let unread = store.unread_count(&owner).await.map_err(Rejection::store)?;
    Ok(Json(ListBody {
        items: page.items.iter().map(View::from).collect(),
        next_cursor: page.next.map(|id| CursorKind::Notifications.encode(id)),
        unread,
    })
    .into_response())
}

#[derive(Serialize)]
struct UnreadBody {
    unread: u64,
}

async fn unread_count(
    State(state): State<InboxState>,
    Owner(owner): Owner,
    RawQuery(query): RawQuery,
) -> Result<Json<UnreadBody>, Rejection> {
    Params::parse(query.as_deref(), &[])?;
    let unread = state
        .api
        .store
        .unread_count(&owner)
        .await
        .map_err(Rejection::store)?;
    Ok(Json(UnreadBody { unread }))
}

fn unknown(id: uuid::Uuid) -> Rejection {
    // The same answer whether the id is unknown or someone else's.
    Rejection::not_found(format!("notification {id} not found"))
}

async fn one(
    State(state): State<InboxState>,
    Owner(owner): Owner,
    Id(id): Id,
    RawQuery(query): RawQuery,
) -> Result<Response, Rejection> {
    Params::parse(query.as_deref(), &[])?;
    let notification = state
        .api
        .store
        .notification(&owner, id)
        .await
        .map_err(Rejection::store)?
        .ok_or_else(|| unknown(id))?;
    Ok(Json(View::from(&notification)).into_response())
}

async fn mark_read(
    State(state): State<InboxState>,
    Owner(owner): Owner,
    Id(id): Id,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, Rejection> {
    Params::parse(query.as_deref(), &[])?;
    let now = state.api.clock.now();
    if state
        .api
        .store
        .mark_read(&owner, id, now)
        .await
        .map_err(Rejection::store)?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(unknown(id))
    }
}

#[derive(Serialize)]
struct ChangedBody {
    changed: u64,
}

async fn mark_all_read(
    State(state): State<InboxState>,
    Owner(owner): Owner,
    RawQuery(query): RawQuery,
) -> Result<Json<ChangedBody>, Rejection> {
    Params::parse(query.as_deref(), &[])?;
    let now = state.api.clock.now();
    let changed = state
        .api
        .store
        .mark_all_read(&owner, now)
        .await
        .map_err(Rejection::store)?;
    Ok(Json(ChangedBody { changed }))
}
