//! A small simulated KMS that embeds clarion — documentation for KMS vendors.
//!
//! What it shows, file by file:
//!
//! - [`keys`]: the KMS's own `kms_keys` table (keys and rotation policies) in
//!   the same SQLite database as clarion's store, and its
//!   [`DeadlineSource`](clarion::deadline::DeadlineSource) implementation.
//! - [`rotation`]: the rotation loop; each rotation (or failed attempt) and
//!   its notification commit in one transaction with
//!   [`SqlStore::emit_in`](clarion::sql::SqlStore::emit_in), then
//!   [`Notifier::wake`] delivers at once.
//! - [`hsm`]: a simulated HSM that fails a seeded fraction of rotations.
//! - [`server`]: clarion's inbox and admin routers and Prometheus `/metrics`
//!   mounted in the KMS's own axum server.
//! - [`simulation`]: the simulated clock that makes days pass in milliseconds.
//! - [`run`] (here): the wiring, the simulated clock and a clean shutdown.
//!
//! Run it with `cargo run -p clarion-example-embed-kms -- --help`.

pub mod hsm;
pub mod keys;
pub mod options;
pub mod rotation;
pub mod server;
pub mod simulation;

use std::io::Write;
use std::time::Duration;

use clarion::clock::{Clock, ManualClock};
use clarion::config::Config;
use clarion::deadline::DeadlineWatcher;
use clarion::sql::SqliteStore;
use clarion::{ConfigError, Notifier};
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::sync::watch;

use crate::hsm::SimulatedHsm;
use crate::keys::Keys;
use crate::options::Options;
use crate::rotation::Rotator;
use crate::simulation::Simulation;

/// clarion's configuration when `--config` is not given.
pub const DEFAULT_CONFIG: &str = include_str!("../clarion.toml");

/// How long shutdown waits for deliveries in flight.
const GRACE: Duration = Duration::from_secs(5);

/// Why the KMS stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    /// clarion's configuration (or the store URL) is wrong; names the path.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The Prometheus recorder could not be installed.
    #[error("metrics: {0}")]
    Metrics(#[from] metrics_exporter_prometheus::BuildError),
    /// The key table failed.
    #[error("key table: {0}")]
    Keys(#[from] clarion::sql::sqlx::Error),
    /// A rotation tick failed.
    #[error("rotation: {0}")]
    Rotation(#[from] rotation::RotationError),
    /// The HTTP server failed.
    #[error("HTTP server: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs the KMS until Ctrl-C or SIGTERM.
pub async fn run(options: Options) -> Result<(), KmsError> {
    // First, so that every metric recorded from here on is exported.
    let metrics = PrometheusBuilder::new().install_recorder()?;

    let config = match &options.config {
        Some(path) => Config::from_file(path)?,
        None => Config::from_toml_str(DEFAULT_CONFIG)?,
    };
    let url = match &options.db {
        Some(url) => url.clone(),
        None => {
            use secrecy::ExposeSecret;
            config.store.url.expose_secret().to_owned()
        }
    };
    // The concrete SqliteStore (not `clarion::open_store`'s trait object):
    // its pool is where the KMS's transactions begin, and `emit_in` is on it.
    let store = SqliteStore::open(&url, &config.store)
        .await
        .map_err(ConfigError::from)?;

    // Simulated time: every timestamp clarion writes and every deadline it
    // computes comes from this clock, which the rotation loop moves forward
    // one tick at a time. A real KMS leaves the notifier on the system clock.
    let clock = ManualClock::default();
    let keys = Keys::open(store.pool().clone()).await?;
    keys.seed_if_empty(clock.now()).await?;

    // The simulation drives the deadline watcher itself (see `simulation`);
    // in production add `.deadline_source(keys.clone())` here instead.
    let watcher = DeadlineWatcher::new(&config.deadlines);
    let notifier = Notifier::builder()
        .config(config)
        .store(store.clone())
        .clock(clock.clone())
        .build()?;
    // The dispatcher and upkeep (metrics gauges, retention), in the background.
    let running = notifier.start();

    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    say(format!("listening on http://{}", listener.local_addr()?));
    let (stop, mut stopped) = watch::channel(false);
    let app = server::router(&notifier, metrics);
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
            .await
    });

    let simulation = Simulation {
        rotator: Rotator::new(
            store.clone(),
            notifier.clone(),
            keys.clone(),
            SimulatedHsm::new(options.seed, options.failure_rate),
            options.tick_length,
        ),
        notifier: notifier.clone(),
        clock,
        keys,
        watcher,
        tick_length: options.tick_length,
    };
    // One signal future for the whole run, so that a SIGTERM arriving while
    // the simulation finishes is not missed.
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let interrupted = tokio::select! {
        result = simulation.run(options.ticks) => {
            let (ticks, total) = result?;
            say(format!(
                "simulation done: {ticks} ticks, {} rotations, {} failed rotations",
                total.rotated, total.failed
            ));
            false
        }
        () = &mut shutdown => true,
    };
    if !interrupted {
        // Bounded mode: the ticks are done; serve until asked to stop.
        shutdown.await;
    }

    // Stop in the reverse order of the data path: no new requests, then let
    // the dispatcher finish what is in flight, then close the database.
    let _ = stop.send(true);
    server.await.map_err(std::io::Error::other)??;
    let report = running.shutdown(GRACE).await;
    say(format!(
        "shutdown: {} deliveries finished during the drain, {} abandoned, {} left pending",
        report.finished, report.abandoned, report.pending
    ));
    store.close().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM (what service managers and `kill` send).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// A line on stdout for whoever drives the process (the integration test
/// reads the address from it); logs go to stderr.
fn say(line: String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
