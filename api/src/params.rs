//! Query and path parameters, parsed by hand so that every mistake gets a
//! 400 with a message that names the parameter and what it accepts.

use axum::extract::{FromRequestParts, Path};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clarion_core::store::PageRequest;
use http::request::Parts;
use uuid::Uuid;

use crate::error::Rejection;

/// Page size when the request gives none.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest page size a request may ask for.
pub const MAX_LIMIT: usize = 200;

/// The query string's parameters, each at most once and all of them known.
pub(crate) struct Params(Vec<(&'static str, String)>);

impl Params {
    /// Parses `query` allowing only `allowed` names.
    pub(crate) fn parse(query: Option<&str>, allowed: &[&'static str]) -> Result<Self, Rejection> {
        let mut params: Vec<(&'static str, String)> = Vec::new();
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let Some(known) = allowed.iter().find(|a| **a == name) else {
                let accepted = if allowed.is_empty() {
                    "this endpoint takes no query parameters".to_owned()
                } else {
                    format!("accepted: {}", allowed.join(", "))
                };
                return Err(Rejection::bad_request(
                    "invalid_query",
                    format!("unknown query parameter {:?}; {accepted}", truncate(&name)),
                ));
            };
            if params.iter().any(|(n, _)| n == known) {
                return Err(Rejection::bad_request(
                    "invalid_query",
                    format!("query parameter {known:?} is given more than once"),
                ));
            }
            params.push((known, value.into_owned()));
        }
        Ok(Params(params))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `limit` and `cursor` as a page request for listing `kind`.
    pub(crate) fn page(&self, kind: CursorKind) -> Result<PageRequest, Rejection> {
        let limit = match self.get("limit") {
            None => DEFAULT_LIMIT,
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(Rejection::bad_request(
                        "invalid_limit",
                        format!(
                            "limit must be a whole number from 1 to {MAX_LIMIT} \
                             (default {DEFAULT_LIMIT}); got {:?}",
                            truncate(raw)
                        ),
                    ));
                }
            },
        };
        let after = self.get("cursor").map(|c| kind.decode(c)).transpose()?;
        Ok(PageRequest { limit, after })
    }

    /// An optional parameter that must not be empty when present.
    pub(crate) fn non_empty(&self, name: &'static str) -> Result<Option<&str>, Rejection> {
        match self.get(name) {
            Some("") => Err(Rejection::bad_request(
                match name {
                    "status" => "invalid_status",
                    "channel" => "invalid_channel",
                    _ => "invalid_query",
                },
                format!("query parameter {name:?} must not be empty; omit it to not filter"),
            )),
            other => Ok(other),
        }
    }
}

/// Echoes at most 64 characters of caller input in messages.
pub(crate) fn truncate(s: &str) -> String {
    if s.chars().count() <= 64 {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(64).collect();
        out.push('…');
        out
    }
}

/// Which listing a cursor belongs to: a cursor from one listing is refused by
/// another instead of silently paging from a meaningless position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CursorKind {
    Notifications,
    Deliveries,
}

impl CursorKind {
    fn tag(self) -> u8 {
        match self {
            CursorKind::Notifications => b'n',
            CursorKind::Deliveries => b'd',
        }
    }

    /// The opaque cursor for "after `id`": base64url of a tag byte and the id.
    pub(crate) fn encode(self, id: Uuid) -> String {
        let mut bytes = [0u8; 17];
        bytes[0] = self.tag();
        bytes[1..].copy_from_slice(id.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub(crate) fn decode(self, cursor: &str) -> Result<Uuid, Rejection> {
        let invalid = || {
            Rejection::bad_request(
                "invalid_cursor",
                format!(
                    "cursor {:?} is not a cursor of this listing; pass the next_cursor \
                     of the previous page unchanged, or omit it for the first page",
                    truncate(cursor)
                ),
            )
        };
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        match bytes.split_first() {
            Some((tag, id)) if *tag == self.tag() && id.len() == 16 => {
                Uuid::from_slice(id).map_err(|_| invalid())
            }
            _ => Err(invalid()),
        }
    }
}

/// The `{id}` path segment as a UUID (400 `invalid_id` otherwise).
pub(crate) struct Id(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                Rejection::bad_request("invalid_id", "the id in the path is not valid text")
            })?;
        Uuid::try_parse(&raw).map(Id).map_err(|_| {
            Rejection::bad_request(
                "invalid_id",
                format!(
                    "{:?} is not an id: ids are UUIDs such as \
                     0190c0de-7b1a-7cc0-8f00-2b5e6f1a9c3d",
                    truncate(&raw)
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_tagged() {
        let id = Uuid::now_v7();
        let cursor = CursorKind::Notifications.encode(id);
        assert!(
            cursor
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(CursorKind::Notifications.decode(&cursor).unwrap(), id);
        assert_eq!(
            CursorKind::Deliveries.decode(&cursor).unwrap_err().code(),
            "invalid_cursor"
        );
        for bad in ["", "x", "!!!", &id.to_string(), &cursor[..cursor.len() - 1]] {
            assert_eq!(
                CursorKind::Notifications.decode(bad).unwrap_err().code(),
                "invalid_cursor",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn limits() {
        let page =
            |q: &str| Params::parse(Some(q), &["limit", "cursor"])?.page(CursorKind::Deliveries);
        assert_eq!(page("").unwrap().limit, DEFAULT_LIMIT);
        assert_eq!(page("limit=1").unwrap().limit, 1);
        assert_eq!(page("limit=200").unwrap().limit, 200);
        for bad in [
            "limit=0",
            "limit=201",
            "limit=-1",
            "limit=abc",
            "limit=",
            "limit=1.5",
            "limit=99999999999999999999999",
        ] {
            assert_eq!(page(bad).unwrap_err().code(), "invalid_limit", "{bad}");
        }
        assert_eq!(page("limit=1&limit=2").unwrap_err().code(), "invalid_query");
        assert_eq!(page("limt=1").unwrap_err().code(), "invalid_query");
    }
}
