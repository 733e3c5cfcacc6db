//! clarion-server: clarion as a daemon and a CLI, so a KMS in any language
//! can use it. The binary is `clarion`:
//!
//! | command | does | exit codes |
//! |---|---|---|
//! | `clarion serve --config F` | dispatcher, upkeep and the HTTP API, until SIGTERM/SIGINT | 0 after a clean drain / 1 / 2 |
//! | `clarion check --config F` | validates the file (every error with its path); prints channels, routes, store | 0 / 2 |
//! | `clarion schema` | the JSON Schema of the file, `[server]` included | 0 |
//! | `clarion explain --config F EVENT.json` | which routes match and why | 0 / 2 |
//! | `clarion emit --config F EVENT.json` | stores the event (a running `serve` delivers it) | 0 / 1 / 2 |
//! | `clarion deliveries --config F [--status S] [--channel C] [--json]` | lists deliveries | 0 / 1 / 2 |
//! | `clarion requeue --config F ID…` | dead deliveries pending again | 0 / 1 / 2 |
//! | `clarion key new NAME --scopes a,b` | a fresh API key and its config entry | 0 / 2 |
//!
//! Exit code 1 is an operational failure (store unreachable, delivery not
//! found), 2 a usage or configuration error.
//!
//! # Configuration
//!
//! The library's TOML file, plus a `[server]` table (registered with core, so
//! unknown keys in it are errors with their path and `clarion schema` lists it):
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:8686"     # default
//! body_limit = 1048576          # bytes, default 1 MiB
//! metrics_public = false        # /metrics without a key
//! allow_unauthenticated = false # loopback listen addresses only
//! owner_header = "x-user-id"    # inbox owner for inbox_proxy keys / unauthenticated
//!
//! [[server.auth.keys]]
//! name = "kms"
//! sha256 = "…"                  # from `clarion key new kms --scopes emit`
//! scopes = ["emit"]             # emit, inbox, inbox_proxy, admin, metrics
//! # owner = "alice"             # the inbox this key reads (scope inbox)
//! ```
//!
//! With no key configured `serve` refuses to start unless
//! `allow_unauthenticated = true`.
//!
//! # Routes
//!
//! | route | scope | answer |
//! |---|---|---|
//! | `POST /v1/events` | `emit` | one result per event (see [`ingest`]) |
//! | `/v1/inbox/…` | `inbox` (key's owner) or `inbox_proxy` (owner from `owner_header`) | clarion-api's inbox router |
//! | `/v1/admin/…` | `admin` | clarion-api's admin router |
//! | `GET /healthz` | none | `ok` |
//! | `GET /readyz` | none | `ready`, or 503 when the store does not answer |
//! | `GET /metrics` | `metrics` unless `metrics_public` | Prometheus text |
//! | `GET /openapi.json` | none | the OpenAPI 3.1 document of all of the above |
//!
//! `Authorization: Bearer <key>`: the key's SHA-256 is compared in constant
//! time with every configured hash; 401 without a valid key, 403 without the
//! scope. Keys and hashes are never logged or answered.

pub mod app;
pub mod auth;
mod cli;
mod commands;
pub mod config;
mod error;
pub mod ingest;
pub mod openapi;
mod serve;
mod store_commands;

use std::path::Path;

pub use cli::main;
pub use error::Failure;

use clarion::config::Config;

/// The top-level key of the server's section.
pub const SECTION: &str = "server";

clarion::register_config_section! {
    name: SECTION,
    description: "`clarion serve`: listen address, limits and API keys (clarion-server).",
    config: config::ServerConfig,
    validate: config::ServerConfig::validate,
}

/// Reads and checks the file, `[server]` included.
fn load(path: &Path) -> Result<Config, Failure> {
    Ok(Config::from_file(path)?)
}
