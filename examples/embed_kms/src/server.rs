//! The KMS's own axum server, with clarion's routers mounted in it.

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use clarion::Notifier;
use clarion::api::{Api, HeaderOwner, Rejection};
use metrics_exporter_prometheus::PrometheusHandle;

/// `/api/notifications…` (the caller's inbox), `/api/admin/…` (deliveries,
/// dead letters, stats) and `/metrics`.
pub fn router(notifier: &Notifier, metrics: PrometheusHandle) -> Router {
    // From the notifier, so a requeue through the admin API wakes its
    // dispatcher and read times come from its clock.
    let api = Api::from_notifier(notifier.clone());
    Router::new()
        // The owner comes only from the header, which the KMS's
        // authentication layer (a proxy, a session check) sets: never from
        // the request path or body, so nobody reads someone else's inbox.
        .nest("/api", api.inbox(HeaderOwner::new("x-user-id")))
        .nest(
            "/api/admin",
            api.admin().layer(middleware::from_fn(require_admin)),
        )
        .route(
            "/metrics",
            get(move || {
                // Without the exporter's HTTP listener nothing drains its
                // histograms in the background: do it before each scrape.
                metrics.run_upkeep();
                std::future::ready(metrics.render())
            }),
        )
}

/// A stand-in for the KMS's real admin check (mTLS, SSO role …): the admin
/// API performs no authentication of its own.
async fn require_admin(request: Request, next: Next) -> Result<Response, Rejection> {
    match request
        .headers()
        .get("x-role")
        .and_then(|v| v.to_str().ok())
    {
        Some("admin") => Ok(next.run(request).await),
        _ => Err(Rejection::forbidden("administrators only")),
    }
}
