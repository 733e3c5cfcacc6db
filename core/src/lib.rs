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

pub mod channel;
pub mod config;
pub mod event;
pub mod notification;
pub mod registry;
pub mod router;

pub use channel::{Channel, Delivery, DeliveryError, Receipt};
pub use config::{Config, ConfigError};
pub use event::{Event, EventKind, KeyEvent, ObjectType, Severity, Subject};
pub use notification::Notification;
pub use router::Router;

#[doc(hidden)]
pub mod __private {
    pub use inventory;
}
