//! `clarion serve`: the notifier (dispatcher, upkeep) and
//! the HTTP server, until SIGTERM or SIGINT, then a graceful drain.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use clarion::Notifier;
use metrics_exporter_prometheus::PrometheusBuilder;

use crate::config::ServerConfig;
use crate::error::Failure;
use crate::{app, load};

/// Serves `config_path` until a signal; `grace` bounds the drain of
/// in-flight deliveries (what is left is retried by the next start).
pub async fn serve(config_path: &Path, grace: Duration) -> Result<(), Failure> {
    let config = load(config_path)?;
    let server = ServerConfig::of(&config)?;
    server.check_serve()?;
    // First, so every metric recorded from here on is exported.
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| Failure::Operational(format!("metrics: {e}")))?;
    let store = clarion::open_store(&config.store)
        .await
        .map_err(|e| Failure::Operational(format!("cannot open the store: {e}")))?;
    let notifier = Notifier::builder()
        .config(config)
        .shared_store(store)
        .build()?;
    let listener = tokio::net::TcpListener::bind(server.listen)
        .await
        .map_err(|e| Failure::Operational(format!("cannot listen on {}: {e}", server.listen)))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Failure::Operational(format!("listener: {e}")))?;
    if server.allow_unauthenticated {
        tracing::warn!(%bound, "allow_unauthenticated: every local caller has every scope");
    }
    let app = app::router(&notifier, &server, Some(metrics));
    let running = notifier.start();
    // Scripts and tests wait for this line (the port, when listen ends in :0).
    println!("clarion: listening on http://{bound}");
    let _ = std::io::stdout().flush();
    tracing::info!(%bound, "serving");
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(signal())
        .await;
    tracing::info!("shutting down: draining in-flight deliveries");
    let report = running.shutdown(grace).await;
    tracing::info!(?report, "stopped");
    served.map_err(|e| Failure::Operational(format!("HTTP server: {e}")))
}

async fn signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
