//! Real local peers, all on 127.0.0.1, for tests and the demo (feature
//! `servers`).
//!
//! - [`Aio`]: a real SMTP server (aiosmtpd, installed from PyPI with pip on
//!   first use) that records every message it receives as [`Received`].
//! - [`Receiver`]: a real HTTP receiver (axum) whose answers can be scripted
//!   and which records every request as [`Recorded`].
//! - [`ChildReceiver`]: a counting webhook receiver in a child process, for
//!   benchmarks ([`serve_child_receiver`] is the child's side).
//! - [`random_webhook_secret`], [`random_password`]: fresh secrets per run.
//! - [`TempDir`]: a scratch directory removed on drop.

mod child;
mod secrets;
mod smtp;
mod temp_dir;
mod webhook;

pub use child::{ChildCounts, ChildReceiver, serve_child_receiver};
pub use secrets::{random_password, random_webhook_secret};
pub use smtp::{Aio, Received, ensure_aiosmtpd};
pub use temp_dir::TempDir;
pub use webhook::{Receiver, Recorded, Reply};

/// Why a test server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A program the server needs is missing or failed to install.
    #[error("{0}")]
    Setup(String),
    /// The server process did not come up.
    #[error("{what} did not start: {detail}")]
    Start {
        /// Which server.
        what: &'static str,
        /// What happened.
        detail: String,
    },
}
