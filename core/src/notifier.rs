//! The [`Notifier`]: what a KMS holds. `emit` routes and persists; `start`
//! runs the dispatcher and the deadline watcher in the background.
//!
//! ```
//! use std::time::Duration;
//! use clarion_core::config::{ChannelConfig, Config, RouteConfig};
//! use clarion_core::event::*;
//! use clarion_core::memory::MemoryStore;
//! use clarion_core::notifier::{EmitOutcome, Notifier};
//! # use clarion_core::{Channel, Delivery, DeliveryError, Receipt};
//! # #[derive(Debug)] struct Null;
//! # #[async_trait::async_trait] impl Channel for Null {
//! #   async fn deliver(&self, _: &Delivery) -> Result<Receipt, DeliveryError> { Ok(Receipt::default()) } }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let mut config = Config::default();
//! config.add_route(RouteConfig::to(["pager"]));
//! let notifier = Notifier::builder()
//!     .config(config)
//!     .store(MemoryStore::new())
//!     .channel("pager", Null)          // or [channels.pager] in the config
//!     .build()
//!     .unwrap();
//! let running = notifier.start();
//! let event = KeyEvent::rotation_failure(
//!     Subject::new("key-1", ObjectType::SymmetricKey),
//!     RotationFailure { error: "HSM down".into(), attempt: 1, next_attempt: None },
//! );
//! let outcome = notifier.emit(&event).await.unwrap(); // durable once this returns
//! assert!(matches!(outcome, EmitOutcome::Enqueued { .. }));
//! let report = running.shutdown(Duration::from_secs(5)).await;
//! println!("{report:?}");
//! # });
//! ```

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};
use uuid::Uuid;

use crate::channel::Channel;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError, DeadlinesConfig};
use crate::deadline::{DeadlineSource, DeadlineWatcher, ScanError, ScanReport};
use crate::dispatcher::{Dispatcher, DrainReport, KindLabel};
use crate::event::{Event, EventKind, KeyEvent};
use crate::memory::MemoryStore;
use crate::router::{Explanation, Router};
use crate::store::{DeliveryStatus, NotificationsStore, Requeued, StoreError};
use crate::telemetry;
use crate::validation::InvalidEvent;

mod batch;
mod prepared;

pub use batch::{BatchResults, MAX_BATCH, PreparedBatch};
pub use prepared::Prepared;

/// What `emit` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmitOutcome {
    /// Stored, with a delivery per channel.
    Enqueued {
        /// The notification's id.
        id: Uuid,
        /// The channels it will be delivered on.
        channels: Vec<String>,
    },
    /// Stored for the inbox, but no route matched: nothing will be delivered.
    Unrouted {
        /// The notification's id.
        id: Uuid,
    },
    /// A notification with the same dedup key exists; nothing was stored.
    Duplicate {
        /// The existing notification.
        existing_id: Uuid,
    },
}

/// Why `emit` failed. Nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    /// The event cannot be stored as it is.
    #[error("invalid event: {field}: {message}")]
    InvalidEvent {
        /// The offending field, e.g. `subject.id`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The store failed; the event was not stored and may be emitted again.
    #[error("the event was not stored: {0}")]
    Store(#[from] StoreError),
}

impl From<InvalidEvent> for EmitError {
    fn from(e: InvalidEvent) -> Self {
        EmitError::InvalidEvent {
            field: e.field,
            message: e.message,
        }
    }
}

/// Builds a [`Notifier`] from configuration and code.
#[derive(Default)]
pub struct NotifierBuilder {
    config: Config,
    store: Option<Arc<dyn NotificationsStore>>,
    channels: Vec<(String, Arc<dyn Channel>)>,
    clock: Option<Arc<dyn Clock>>,
    source: Option<Arc<dyn DeadlineSource>>,
}

impl NotifierBuilder {
    /// The configuration (default: an empty one).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The store. Without one, `store.url = "memory://"` gives a
    /// [`MemoryStore`]; SQL URLs need a store from the `clarion` facade.
    pub fn store(self, store: impl NotificationsStore + 'static) -> Self {
        self.shared_store(Arc::new(store))
    }

    /// A store shared with other code (e.g. the HTTP API).
    pub fn shared_store(mut self, store: Arc<dyn NotificationsStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// A channel built in code, routable by `name` like a configured one.
    pub fn channel(self, name: impl Into<String>, channel: impl Channel + 'static) -> Self {
        self.shared_channel(name, Arc::new(channel))
    }

    /// A channel built in code and shared.
    pub fn shared_channel(mut self, name: impl Into<String>, channel: Arc<dyn Channel>) -> Self {
        self.channels.push((name.into(), channel));
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Where the deadline watcher finds upcoming deadlines.
    pub fn deadline_source(mut self, source: impl DeadlineSource + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Validates everything and builds the channels (the startup audit).
    pub fn build(self) -> Result<Notifier, ConfigError> {
        let config = self.config;
        config.validate_settings()?;
        let mut channels: Vec<(String, Arc<dyn Channel>)> =
            config.build_channels()?.into_iter().collect();
        for (name, channel) in self.channels {
            if channels.iter().any(|(n, _)| *n == name) {
                return Err(ConfigError::invalid(
                    format!("channels.{name}"),
                    "duplicate channel name: configured in the file and added in code",
                ));
            }
            channels.push((name, channel));
        }
        let names: Vec<&str> = channels.iter().map(|(n, _)| n.as_str()).collect();
        let router = Router::new(&config.routes, &names, &config.custom_kinds)?;
        let store = match self.store {
            Some(store) => store,
            None => default_store(&config)?,
        };
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let declared: Arc<HashSet<EventKind>> =
            Arc::new(config.custom_kinds.iter().cloned().collect());
        let kind_label: KindLabel = Arc::new(move |kind: &EventKind| {
            if kind.is_built_in() || declared.contains(kind) {
                kind.as_str().to_owned()
            } else {
                "undeclared".to_owned()
            }
        });
        let dispatcher = Arc::new(Dispatcher::new(
            store.clone(),
            channels,
            config.delivery.clone(),
            clock.clone(),
            kind_label.clone(),
        ));
        Ok(Notifier {
            inner: Arc::new(Inner {
                router,
                store,
                clock,
                dispatcher,
                deadlines: config.deadlines.clone(),
                max_event_bytes: config.max_event_bytes,
                retention: config.store.retention,
                source: self.source,
                kind_label,
                unrouted_logged: Mutex::new(HashSet::new()),
            }),
        })
    }
}

fn default_store(config: &Config) -> Result<Arc<dyn NotificationsStore>, ConfigError> {
    let url = config.store.url.expose_secret();
    if url.starts_with("memory:") {
        Ok(Arc::new(MemoryStore::new()))
    } else {
        let scheme = url.split(':').next().unwrap_or_default();
        Err(ConfigError::invalid(
            "store.url",
            format!(
                "a \"{scheme}:\" store is not built in clarion-core; open it with the \
                 `clarion` facade (its store features) and pass it to NotifierBuilder::store, \
                 or use \"memory://\""
            ),
        ))
    }
}

/// Routes, persists and delivers key-lifecycle notifications. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    router: Router,
    store: Arc<dyn NotificationsStore>,
    clock: Arc<dyn Clock>,
    dispatcher: Arc<Dispatcher>,
    deadlines: DeadlinesConfig,
    /// `max_event_bytes`, for [`crate::validation::validate_event`].
    max_event_bytes: usize,
    retention: Duration,
    source: Option<Arc<dyn DeadlineSource>>,
    kind_label: KindLabel,
    unrouted_logged: Mutex<HashSet<EventKind>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

impl Notifier {
    /// A builder.
    pub fn builder() -> NotifierBuilder {
        NotifierBuilder::default()
    }

    /// Routes `event` and stores it with one delivery per matched channel, in
    /// one atomic write: when this returns `Ok`, the notification is durable
    /// (as durable as the store). An event no route matches is still stored
    /// for the inbox and reported as [`EmitOutcome::Unrouted`].
    ///
    /// To store the notification inside your own database transaction
    /// instead (the transactional outbox), see [`Notifier::prepare`].
    pub async fn emit(&self, event: &(impl Event + ?Sized)) -> Result<EmitOutcome, EmitError> {
        let store = &self.inner.store;
        let outcome = self
            .prepare(event)?
            .enqueue_with(|new| store.enqueue(new))
            .await?;
        if matches!(outcome, EmitOutcome::Enqueued { .. }) {
            self.wake();
        }
        Ok(outcome)
    }

    /// The first half of [`emit`](Self::emit), for the transactional outbox:
    /// validates `event`, routes it and stamps it with an id and the
    /// notifier's clock, without storing anything. Store the result with
    /// [`Prepared::enqueue_with`] inside your own transaction (clarion-sql's
    /// `SqlStore::emit_in` does both steps), commit, then call
    /// [`wake`](Self::wake) so the dispatcher delivers at once.
    ///
    /// The errors are `emit`'s: an [`EmitError::InvalidEvent`] names the field.
    ///
    /// ```
    /// use clarion_core::event::*;
    /// use clarion_core::memory::MemoryStore;
    /// use clarion_core::notifier::{EmitOutcome, Notifier};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let notifier = Notifier::builder().store(MemoryStore::new()).build().unwrap();
    /// let store = notifier.store();
    /// let event = KeyEvent::rotation_success(
    ///     Subject::new("key-1", ObjectType::SymmetricKey),
    ///     RotationSuccess { old_id: "v1".into(), new_id: "v2".into(), next_rotation: None },
    /// )
    /// .with_owner("alice");
    ///
    /// let prepared = notifier.prepare(&event).unwrap();
    /// // In your transaction: `|new| sql_store.enqueue_in(&mut tx, new)`.
    /// let outcome = prepared.enqueue_with(|new| store.enqueue(new)).await.unwrap();
    /// assert!(matches!(outcome, EmitOutcome::Unrouted { .. })); // no routes configured
    /// // … commit your transaction, then:
    /// notifier.wake();
    /// # });
    /// ```
    pub fn prepare(&self, event: &(impl Event + ?Sized)) -> Result<Prepared, EmitError> {
        Prepared::new(self, event.to_key_event())
    }

    /// Wakes the dispatcher so that it claims now instead of at its next
    /// `delivery.poll_interval`. [`emit`](Self::emit) does this itself; call it
    /// after committing a transaction that stored [`Prepared`] notifications
    /// (before the commit, the dispatcher would find nothing to claim). Cheap,
    /// and harmless when there is nothing to deliver.
    pub fn wake(&self) {
        self.inner.dispatcher.wake.notify_one();
    }

    /// Warns once per kind, not once per event: an unrouted kind is a
    /// configuration gap, and repeating it would bury other logs.
    fn log_unrouted(&self, kind: &str) {
        let mut logged = self
            .inner
            .unrouted_logged
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if logged.insert(EventKind::Custom(kind.to_owned())) {
            warn!(
                kind,
                "no route matches events of this kind; they are kept for the inbox only \
                 (logged once per kind; see Router::explain)"
            );
        }
    }

    /// Checks `event` exactly as `emit` does before storing it (see
    /// [`crate::validation`]), with this notifier's `max_event_bytes`; for
    /// code that accepts events before emitting them, such as HTTP ingest.
    pub fn validate(&self, event: &KeyEvent) -> Result<(), InvalidEvent> {
        crate::validation::validate_event(event, Some(self.inner.max_event_bytes))
    }

    /// Which routes `event` matches and why.
    pub fn explain(&self, event: &(impl Event + ?Sized)) -> Explanation {
        self.inner.router.explain(&event.to_key_event())
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn NotificationsStore> {
        &self.inner.store
    }

    /// The clock every timestamp comes from (for code that writes to the
    /// store beside the notifier, such as the HTTP API's `read_at`).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Makes a dead delivery pending again and wakes the dispatcher.
    pub async fn requeue(&self, delivery_id: Uuid) -> Result<Requeued, StoreError> {
        let result = self
            .inner
            .store
            .requeue(delivery_id, self.inner.clock.now())
            .await?;
        if result == Requeued::Requeued {
            self.wake();
        }
        Ok(result)
    }

    /// Scans the deadline source once and emits the warnings due now.
    pub async fn scan_deadlines(&self) -> Result<ScanReport, ScanError> {
        let Some(source) = &self.inner.source else {
            return Err(ScanError::NoSource);
        };
        DeadlineWatcher::new(&self.inner.deadlines)
            .scan(self, source.as_ref(), self.inner.clock.now())
            .await
    }

    /// Purges notifications older than `store.retention` whose deliveries are
    /// all final, in batches; returns how many were purged.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let before = self.inner.clock.now()
            - chrono::TimeDelta::from_std(self.inner.retention).unwrap_or(chrono::TimeDelta::MAX);
        let mut total = 0;
        loop {
            let purged = self.inner.store.purge(before, 1000).await?;
            total += purged;
            if purged == 0 {
                return Ok(total);
            }
        }
    }

    /// Starts the dispatcher, the deadline watcher (when a source is set) and
    /// upkeep (gauges, retention) on the current tokio runtime.
    pub fn start(&self) -> RunningNotifier {
        let (stop, stopped) = watch::channel(None);
        let dispatcher = tokio::spawn(self.inner.dispatcher.clone().run(stopped.clone()));
        let mut background = vec![tokio::spawn(upkeep(self.clone(), stopped.clone()))];
        if self.inner.source.is_some() {
            background.push(tokio::spawn(watch_deadlines(self.clone(), stopped)));
        }
        RunningNotifier {
            stop,
            dispatcher,
            background,
            notifier: self.clone(),
        }
    }
}

/// A started [`Notifier`]; stop it with [`RunningNotifier::shutdown`].
/// Dropping it stops claiming and lets in-flight attempts finish.
pub struct RunningNotifier {
    stop: watch::Sender<Option<Instant>>,
    dispatcher: JoinHandle<DrainReport>,
    background: Vec<JoinHandle<()>>,
    notifier: Notifier,
}

/// What `shutdown` left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// In-flight attempts that finished during the drain.
    pub finished: usize,
    /// In-flight attempts cut off at the deadline (their leases expire and
    /// they are attempted again by the next run).
    pub abandoned: usize,
    /// Deliveries left pending or in flight in the store, for later runs.
    pub pending: u64,
}

impl RunningNotifier {
    /// The notifier, for emitting.
    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    /// Stops claiming, waits up to `grace` for in-flight attempts, stops the
    /// watcher and upkeep, and reports what is left.
    pub async fn shutdown(self, grace: Duration) -> ShutdownReport {
        let deadline = Instant::now() + grace;
        let _ = self.stop.send(Some(deadline));
        let drain = self.dispatcher.await.unwrap_or_default();
        // The watcher and upkeep return at the stop signal once the round
        // they are in is done. Aborting them mid-round would drop a store
        // transaction (a purge batch) whose rollback sqlx only sends when the
        // connection is next used: until then the server keeps its locks.
        // So they get the rest of `grace`, and are aborted only after it.
        for mut task in self.background {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
            }
        }
        let pending = match self.notifier.inner.store.counts().await {
            Ok(counts) => counts
                .iter()
                .filter(|c| matches!(c.status, DeliveryStatus::Pending | DeliveryStatus::InFlight))
                .map(|c| c.count)
                .sum(),
            Err(e) => {
                warn!(error = %e, "could not count pending deliveries at shutdown");
                0
            }
        };
        ShutdownReport {
            finished: drain.finished,
            abandoned: drain.abandoned,
            pending,
        }
    }
}

const UPKEEP_INTERVAL: Duration = Duration::from_secs(15);
const PURGE_EVERY: u32 = 240; // upkeep rounds: once an hour

async fn upkeep(notifier: Notifier, mut stop: watch::Receiver<Option<Instant>>) {
    let mut round: u32 = 0;
    loop {
        match notifier.inner.store.counts().await {
            Ok(counts) => telemetry::gauges(&counts),
            Err(e) => warn!(error = %e, "counting deliveries for metrics failed"),
        }
        if round.is_multiple_of(PURGE_EVERY) {
            match notifier.purge_expired().await {
                Ok(0) => {}
                Ok(n) => debug!(purged = n, "purged expired notifications"),
                Err(e) => warn!(error = %e, "purging expired notifications failed"),
            }
        }
        round = round.wrapping_add(1);
        tokio::select! {
            _ = tokio::time::sleep(UPKEEP_INTERVAL) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn watch_deadlines(notifier: Notifier, mut stop: watch::Receiver<Option<Instant>>) {
    loop {
        match notifier.scan_deadlines().await {
            Ok(report) => debug!(?report, "deadline scan"),
            Err(e) => warn!(error = %e, "deadline scan failed; trying again at the next interval"),
        }
        tokio::select! {
            _ = tokio::time::sleep(notifier.inner.deadlines.scan_interval) => {}
            _ = stop.changed() => return,
        }
    }
}
