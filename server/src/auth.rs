//! API keys: `Authorization: Bearer <key>`, checked against configured
//! SHA-256 hashes in constant time, and the scopes a route needs.
//!
//! Neither a key nor a hash is ever logged or put in a response: a refusal
//! says only what was missing.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use clarion::api::Rejection;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::ServerConfig;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// `POST /v1/events`.
    Emit,
    /// `/v1/inbox` for the key's own `owner`.
    Inbox,
    /// `/v1/inbox` for the owner named by `server.owner_header` (a trusted frontend).
    InboxProxy,
    /// `/v1/admin`: deliveries, requeue, stats.
    Admin,
    /// `GET /metrics` (unless `metrics_public`).
    Metrics,
}

impl Scope {
    /// The name as configured.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Emit => "emit",
            Scope::Inbox => "inbox",
            Scope::InboxProxy => "inbox_proxy",
            Scope::Admin => "admin",
            Scope::Metrics => "metrics",
        }
    }
}

/// Who is calling: a configured key, or anybody when unauthenticated.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A configured key.
    Key(Arc<Key>),
    /// `allow_unauthenticated = true`: every scope, owner from the header.
    Anonymous,
}

impl Caller {
    /// Whether the caller has `scope`.
    pub fn has(&self, scope: Scope) -> bool {
        match self {
            Caller::Key(key) => key.scopes.contains(&scope),
            Caller::Anonymous => true,
        }
    }

    /// The name that scopes `Idempotency-Key`s.
    pub fn name(&self) -> &str {
        match self {
            Caller::Key(key) => &key.name,
            Caller::Anonymous => "anonymous",
        }
    }
}

/// A configured key, without its hash.
#[derive(Debug)]
pub struct Key {
    /// Its configured name.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<Scope>,
    /// The inbox owner it is bound to.
    pub owner: Option<String>,
}

/// The configured keys, ready to check presented ones.
pub struct Keys {
    keys: Vec<([u8; 32], Arc<Key>)>,
    unauthenticated: bool,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys({} configured)", self.keys.len())
    }
}

/// The lowercase hex SHA-256 of `key`, as configured.
pub fn hash_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl Keys {
    /// From a validated `[server]` (hashes are 64 hex digits).
    pub fn new(config: &ServerConfig) -> Keys {
        let keys = config
            .auth
            .keys
            .iter()
            .map(|k| {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(&k.sha256, &mut hash).expect("validated sha256");
                let key = Key {
                    name: k.name.clone(),
                    scopes: k.scopes.clone(),
                    owner: k.owner.clone(),
                };
                (hash, Arc::new(key))
            })
            .collect();
        Keys {
            keys,
            unauthenticated: config.allow_unauthenticated,
        }
    }

    /// The key whose hash matches `presented`. Every configured hash is
    /// compared, each in constant time, so timing tells nothing about which
    /// (or whether a) prefix matched.
    pub fn find(&self, presented: &str) -> Option<Arc<Key>> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (hash, key) in &self.keys {
            if bool::from(hash.ct_eq(&digest)) {
                found = Some(key.clone());
            }
        }
        found
    }

    /// Who sent `request`, or the 401 to answer.
    fn caller(&self, request: &Request) -> Result<Caller, Rejection> {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match presented {
            Some(token) => self
                .find(token.trim())
                .map(Caller::Key)
                .ok_or_else(|| challenge(Rejection::unauthorized("the API key is not valid"))),
            None if self.unauthenticated => Ok(Caller::Anonymous),
            None => Err(challenge(Rejection::unauthorized(
                "an API key is required: Authorization: Bearer <key>",
            ))),
        }
    }
}

fn challenge(rejection: Rejection) -> Rejection {
    rejection.with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
}

/// Middleware: identifies the caller (401 when it cannot) and checks that
/// it has one of `scopes` (403 when not); the [`Caller`] goes into the
/// request's extensions for the handlers.
pub async fn require(
    State((keys, scopes)): State<(Arc<Keys>, &'static [Scope])>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match keys.caller(&request) {
        Ok(caller) => caller,
        Err(rejection) => return rejection.into_response(),
    };
    if !scopes.iter().any(|&scope| caller.has(scope)) {
        let names: Vec<_> = scopes.iter().map(|s| s.as_str()).collect();
        return Rejection::forbidden(format!(
            "the API key {:?} lacks scope {}",
            caller.name(),
            names.join(" or ")
        ))
        .into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeyConfig;

    fn keys() -> Keys {
        let mut config = ServerConfig::default();
        config.auth.keys.push(KeyConfig {
            name: "kms".into(),
            sha256: hash_hex("secret-one"),
            scopes: vec![Scope::Emit],
            owner: None,
        });
        Keys::new(&config)
    }

    #[test]
    fn finds_the_key_whose_hash_matches_and_nothing_else() {
        let keys = keys();
        assert_eq!(keys.find("secret-one").unwrap().name, "kms");
        assert!(keys.find("secret-two").is_none());
        assert!(keys.find("").is_none());
    }

    #[test]
    fn hash_is_lowercase_hex_sha256() {
        assert_eq!(
            hash_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
