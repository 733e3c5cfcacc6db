//! `[server]`: the section of the configuration file that `clarion serve`
//! reads, registered with core so the file's loader checks it (unknown keys
//! are errors with their path) and `clarion schema` documents it.

use std::net::SocketAddr;

use clarion::ConfigError;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::auth::Scope;

/// `[server]`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on.
    #[serde(default = "default_listen")]
    #[schemars(with = "String", default = "default_listen_str")]
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes; larger requests get 413.
    #[serde(default = "default_body_limit")]
    pub body_limit: usize,
    /// Serve `/metrics` without an API key (else scope `metrics` is needed).
    #[serde(default)]
    pub metrics_public: bool,
    /// Serve without API keys (every caller has every scope). Accepted only
    /// on a loopback `listen` address.
    #[serde(default)]
    pub allow_unauthenticated: bool,
    /// The request header that names the inbox owner, for `inbox_proxy` keys
    /// (a trusted frontend) and when unauthenticated, e.g. `x-user-id`.
    #[serde(default)]
    pub owner_header: Option<String>,
    /// `[server.auth]`: the API keys.
    #[serde(default)]
    pub auth: AuthConfig,
}

/// `[server.auth]`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Named API keys, each stored as the SHA-256 of the key (never the key;
    /// `clarion key new NAME --scopes …` makes one).
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
}

/// One `[[server.auth.keys]]` entry.
#[derive(Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// The key's name: shown in logs, and the scope of its `Idempotency-Key`s.
    pub name: String,
    /// Lowercase hex SHA-256 of the key.
    pub sha256: String,
    /// What the key may do: `emit`, `inbox`, `inbox_proxy`, `admin`, `metrics`.
    pub scopes: Vec<Scope>,
    /// The inbox owner this key reads (scope `inbox`).
    #[serde(default)]
    pub owner: Option<String>,
}

impl std::fmt::Debug for KeyConfig {
    // The hash stays out of Debug output like the key itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyConfig")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            body_limit: default_body_limit(),
            metrics_public: false,
            allow_unauthenticated: false,
            owner_header: None,
            auth: AuthConfig::default(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8686))
}
fn default_listen_str() -> String {
    default_listen().to_string()
}
fn default_body_limit() -> usize {
    1024 * 1024
}

/// The smallest `body_limit`: one ordinary event must fit.
const MIN_BODY_LIMIT: usize = 1024;

impl ServerConfig {
    /// The `[server]` table of `config`, or the defaults when there is none.
    pub fn of(config: &clarion::config::Config) -> Result<ServerConfig, ConfigError> {
        Ok(config.section(crate::SECTION)?.unwrap_or_default())
    }

    /// Checks what deserialization cannot; errors name their path.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.body_limit < MIN_BODY_LIMIT {
            return Err(ConfigError::invalid(
                "server.body_limit",
                format!("is {}; at least {MIN_BODY_LIMIT} bytes", self.body_limit),
            ));
        }
        if self.allow_unauthenticated && !self.listen.ip().is_loopback() {
            return Err(ConfigError::invalid(
                "server.allow_unauthenticated",
                format!(
                    "is accepted only on a loopback listen address, not {}: configure \
                     [[server.auth.keys]] (clarion key new NAME --scopes …) or listen on 127.0.0.1",
                    self.listen
                ),
            ));
        }
        if let Some(header) = &self.owner_header
            && axum::http::HeaderName::try_from(header.as_str()).is_err()
        {
            return Err(ConfigError::invalid(
                "server.owner_header",
                format!("{header:?} is not a valid HTTP header name"),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, key) in self.auth.keys.iter().enumerate() {
            let path = format!("server.auth.keys[{i}]");
            if key.name.trim().is_empty() {
                return Err(ConfigError::invalid(format!("{path}.name"), "is empty"));
            }
            if !names.insert(key.name.as_str()) {
                return Err(ConfigError::invalid(
                    format!("{path}.name"),
                    format!("duplicate key name {:?}", key.name),
                ));
            }
            let hex = key.sha256.as_bytes();
            if hex.len() != 64 || !hex.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return Err(ConfigError::invalid(
                    format!("{path}.sha256"),
                    "must be 64 lowercase hex digits (the SHA-256 of the key, as `clarion key new` prints it)",
                ));
            }
            if key.scopes.is_empty() {
                return Err(ConfigError::invalid(
                    format!("{path}.scopes"),
                    "is empty: list what the key may do (emit, inbox, inbox_proxy, admin, metrics)",
                ));
            }
            if key.owner.as_deref().is_some_and(|o| o.trim().is_empty()) {
                return Err(ConfigError::invalid(format!("{path}.owner"), "is empty"));
            }
            if key.scopes.contains(&Scope::InboxProxy) && self.owner_header.is_none() {
                return Err(ConfigError::invalid(
                    format!("{path}.scopes"),
                    "scope inbox_proxy needs server.owner_header (the header the frontend sets)",
                ));
            }
        }
        Ok(())
    }

    /// What `serve` needs beyond [`ServerConfig::validate`]: some way to
    /// authenticate callers.
    pub fn check_serve(&self) -> Result<(), ConfigError> {
        if self.auth.keys.is_empty() && !self.allow_unauthenticated {
            return Err(ConfigError::invalid(
                "server.auth.keys",
                "no API key is configured: add [[server.auth.keys]] (clarion key new NAME \
                 --scopes emit) or, on a loopback address only, allow_unauthenticated = true",
            ));
        }
        Ok(())
    }
}
