//! clarion-ntfy: an example of a third-party clarion channel. It pushes each
//! notification to a topic on an [ntfy](https://ntfy.sh) server (ntfy.sh or
//! self-hosted), which phones and desktops subscribe to.
//!
//! ```toml
//! [channels.oncall-phone]
//! kind = "ntfy"
//! server = "https://ntfy.example.com"   # default https://ntfy.sh
//! topic = "${NTFY_TOPIC}"               # a secret: guessable topics are public
//! token = "${NTFY_TOKEN}"               # optional access token (tk_…)
//! timeout = "10s"
//! ```
//!
//! Title, message, priority (info 3, warning 4, critical 5) and tags come
//! from the event; the delivery's idempotency key travels in an
//! `Idempotency-Key` header (ntfy ignores it; a proxy can deduplicate).
//!
//! # Writing a channel, step by step
//!
//! Read the files in this order; each step is one place in the code.
//!
//! 1. **Configuration** (`src/config.rs`, [`NtfyConfig`]): a struct that
//!    derives `Deserialize` with `#[serde(deny_unknown_fields)]` and
//!    `schemars::JsonSchema`. Its doc comments become the field descriptions
//!    in the exported JSON Schema. Secrets are `secrecy::SecretString`
//!    (described to schemars as strings), so `Debug` cannot print them.
//! 2. **Construction** ([`NtfyChannel::from_config`]): validate what serde
//!    cannot and return [`ChannelConfigError::field`](clarion_core::registry::ChannelConfigError::field)
//!    naming the field; clarion prefixes the path
//!    (`channels.oncall-phone.topic: …`). Do no I/O here: a configuration
//!    must build while the server is down.
//! 3. **Delivery** (`impl Channel for NtfyChannel`): one publish per
//!    delivery, and every outcome classified, because only the channel knows
//!    its protocol:
//!
//!    | outcome | result |
//!    |---|---|
//!    | 2xx | `Ok(Receipt)` with the status and ntfy's message id |
//!    | 429 (ntfy's rate limits), 503 with `Retry-After` | `Throttled`, with `Retry-After` |
//!    | 408, 425, other 5xx | `Retryable`, with `Retry-After` when sent |
//!    | connection refused or reset, timeout | `Retryable` |
//!    | 401, 403 | `Permanent` (fix the token or the topic's access) |
//!    | 410 | `Gone` |
//!    | other 3xx and 4xx | `Permanent` (the same request gets the same answer) |
//!
//!    Only the 2xx receipt and the 401/403 hint are ntfy's own; the rest is
//!    [`clarion_http`]'s default classification, which also gives the
//!    client (rustls with ring, timeouts, bounded reads), `Retry-After`
//!    parsing and reasons with every secret the client was told about
//!    redacted. A permanent (or gone) error sends the delivery to the
//!    dead-letter queue at once (requeue it once fixed); a retryable or
//!    throttled one is tried again later.
//!    `deliver` must be cancel-safe, since the dispatcher drops it at its
//!    timeout, and shareable (`&self`), since its tasks share one channel.
//! 4. **Registration** (the end of this file): one
//!    [`clarion_core::register_channel!`] with the kind, a one-line
//!    description, the config type, a valid example and the constructor.
//! 5. **Linking**: an application that uses the channel writes
//!
//!    ```
//!    use clarion_ntfy as _;
//!    ```
//!
//!    once, anywhere in its binary crate. Registration is collected by
//!    `inventory` at link time, and Rust links only crates the code names:
//!    a crate that is merely listed in `Cargo.toml` is left out, its
//!    registration never runs, and a configuration with `kind = "ntfy"`
//!    fails at start-up with the list of linked kinds and this hint. The
//!    same holds for the schema: `clarion_core::config::json_schema()`
//!    describes the channels linked into the binary that calls it, so
//!    `cargo xtask schema` (which links the stock channels) does not list
//!    `ntfy`, while a binary that links this crate does:
//!    `cargo run -p clarion-ntfy --example schema` (and `tests/linking.rs`).
//! 6. **Conformance** (`tests/conformance.rs`): the testkit's channel
//!    conformance suite, run against a real HTTP receiver on 127.0.0.1 that
//!    accepts, refuses (503, 400) or never answers. It checks delivery of
//!    every event kind, the classification above, cancellation, stable
//!    idempotency keys, concurrency, the schema and example, and that the
//!    declared secrets never leak. `tests/outcomes.rs` pins the request
//!    and the classification table above against the same receiver.
//!
//! `cargo xtask new-channel <name>` writes steps 1–6 for a new crate.

mod channel;
mod config;

pub use channel::NtfyChannel;
pub use config::NtfyConfig;

clarion_core::register_channel! {
    kind: "ntfy",
    description: "Pushes each notification to a topic on an ntfy server (ntfy.sh or self-hosted).",
    config: NtfyConfig,
    example: "server = \"https://ntfy.sh\"\ntopic = \"kms-alerts-7f3a9c\"\ntimeout = \"10s\"\n",
    build: NtfyChannel::from_config,
}
