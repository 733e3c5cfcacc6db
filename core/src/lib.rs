//! clarion-core: the model and the machinery of clarion.
//!
//! The path of a notification is a straight line through these modules:
//!
//! ```text
//! event ─▶ router ─▶ (store) ─▶ (dispatcher) ─▶ channel ─▶ (store)
//! ```
//!
//! - [`event`]: what a KMS reports ([`event::KeyEvent`], the [`event::Event`] trait).
//! - [`router`]: which channels an event goes to, and [`router::Router::explain`] why.
//! - [`channel`]: the [`channel::Channel`] trait every transport implements.
//! - [`registry`]: how channel crates register themselves ([`register_channel!`]).
//! - [`config`]: the TOML file (or the same structure in code), validated with paths.
//! - [`notification`]: an event as stored and delivered.
//! - [`notifier`]: `emit` (route + enqueue) and `start` (dispatcher, deadline watcher).
//! - [`store`]: the outbox and inbox contracts; [`memory`]: the in-memory store.
//! - `dispatcher` (internal): claim → deliver under a timeout → record; [`retry`]: backoff.
//! - [`deadline`]: `approaching_deadline` warnings from a [`deadline::DeadlineSource`].
//! - [`validation`]: the one event check every path and store runs.
//! - [`clock`]: injected time; [`telemetry`]: metric names.

pub mod channel;
pub mod clock;
pub mod config;
pub mod deadline;
mod dispatcher;
pub mod event;
pub mod memory;
pub mod notification;
pub mod notifier;
pub mod registry;
pub mod retry;
pub mod router;
pub mod store;
pub mod telemetry;
pub mod validation;

pub use dispatcher::DrainReport;
pub use notifier::{
    EmitError, EmitOutcome, Notifier, NotifierBuilder, RunningNotifier, ShutdownReport,
};

pub use channel::{Channel, Delivery, DeliveryError, Receipt};
pub use config::{Config, ConfigError};
pub use event::{Event, EventKind, KeyEvent, ObjectType, Severity, Subject};
pub use notification::Notification;
pub use router::Router;

#[doc(hidden)]
pub mod __private {
    pub use inventory;
}
