//! clarion-testkit: what channel and store authors test with.
//!
//! - [`recording::RecordingChannel`]: a channel whose behaviour per attempt is
//!   scripted (succeed, fail retryably N times, fail permanently, hang, hint
//!   `retry_after`) and which records every delivery it was handed.
//! - [`store_suite`]: the store conformance suite, generic over a store
//!   factory; every store (memory, SQLite, PostgreSQL, MariaDB) runs it.
//! - [`channel_suite`]: the channel conformance suite every channel passes.
//! - [`counting::CountingStore`]: a store wrapper counting claim rounds.
//! - [`events`]: sample events.
//! - `servers` (feature `servers`): real local peers — an SMTP server
//!   (aiosmtpd, installed with pip on first use) and an HTTP receiver.
//! - `databases` (feature `databases`): a fresh PostgreSQL schema or MariaDB
//!   database per test, on the servers on 127.0.0.1.

pub mod channel_suite;
pub mod counting;
#[cfg(feature = "databases")]
pub mod databases;
pub mod events;
pub mod manual;
pub mod recording;
#[cfg(feature = "servers")]
pub mod servers;
pub mod store_suite;
