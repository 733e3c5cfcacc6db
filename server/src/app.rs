//! The axum application of `clarion serve`: every route, each behind the
//! scope it needs.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::request::Parts;
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clarion::Notifier;
use clarion::api::{Api, HeaderOwner, OwnerExtractor, Rejection};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::{self, Caller, Keys, Scope};
use crate::config::ServerConfig;
use crate::ingest;
use crate::openapi::{self, ADMIN_PREFIX, INBOX_PREFIX};

/// Builds the router. `metrics` renders `/metrics` (absent: 404).
pub fn router(
    notifier: &Notifier,
    config: &ServerConfig,
    metrics: Option<PrometheusHandle>,
) -> Router {
    let keys = Arc::new(Keys::new(config));
    let guard = |scopes: &'static [Scope]| {
        middleware::from_fn_with_state((keys.clone(), scopes), auth::require)
    };
    let api = Api::from_notifier(notifier.clone());
    let owner = InboxOwner {
        header: config.owner_header.as_deref().map(|h| {
            HeaderOwner::from_name(HeaderName::try_from(h).expect("validated owner_header"))
        }),
    };
    let document = openapi::document().to_string();

    let mut app = Router::new()
        .route(
            "/v1/events",
            post(ingest::post_events)
                .with_state(notifier.clone())
                .layer(guard(&[Scope::Emit])),
        )
        .nest(
            INBOX_PREFIX,
            api.inbox(owner)
                .layer(guard(&[Scope::Inbox, Scope::InboxProxy])),
        )
        .nest(ADMIN_PREFIX, api.admin().layer(guard(&[Scope::Admin])))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz).with_state(notifier.clone()))
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], document) }),
        );
    if let Some(metrics) = metrics {
        let route = get(move || {
            // Without the exporter's own listener nothing drains its
            // histograms in the background: do it before each scrape.
            metrics.run_upkeep();
            std::future::ready(metrics.render())
        });
        let route = if config.metrics_public {
            route
        } else {
            route.layer(guard(&[Scope::Metrics]))
        };
        app = app.route("/metrics", route);
    }
    app.layer(DefaultBodyLimit::max(config.body_limit))
}

/// Ready when the store answers a point lookup.
async fn readyz(axum::extract::State(notifier): axum::extract::State<Notifier>) -> Response {
    match notifier.store().delivery(uuid::Uuid::nil()).await {
        Ok(_) => "ready".into_response(),
        Err(error) => {
            tracing::warn!(%error, "readyz: the store is unreachable");
            Rejection::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the store is unreachable",
            )
            .into_response()
        }
    }
}

/// Whose inbox a request reads: the owner its key is bound to, or — for an
/// `inbox_proxy` key or an unauthenticated server — the `owner_header`.
struct InboxOwner {
    header: Option<HeaderOwner>,
}

#[async_trait::async_trait]
impl OwnerExtractor for InboxOwner {
    async fn owner(&self, parts: &Parts) -> Result<String, Rejection> {
        let from_header = || async {
            match &self.header {
                Some(header) => header.owner(parts).await,
                None => Err(Rejection::forbidden(
                    "no server.owner_header is configured to name the inbox owner",
                )),
            }
        };
        match parts.extensions.get::<Caller>() {
            Some(Caller::Anonymous) => from_header().await,
            Some(Caller::Key(key)) if key.scopes.contains(&Scope::InboxProxy) => {
                from_header().await
            }
            Some(Caller::Key(key)) => key.owner.clone().ok_or_else(|| {
                Rejection::forbidden(format!(
                    "the API key {:?} is bound to no owner (set owner in its [[server.auth.keys]] entry)",
                    key.name
                ))
            }),
            None => Err(Rejection::unauthorized("an API key is required")),
        }
    }
}
