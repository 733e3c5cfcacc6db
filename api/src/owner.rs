//! Who is asking: the embedding application authenticates, the API only
//! receives the caller's owner id.
//!
//! The inbox router asks an [`OwnerExtractor`] for the owner of every request
//! before it looks at anything else, and uses that owner for every store call.
//! An owner is never read from the request body, the path or the query.

use std::future::Future;

use async_trait::async_trait;
use axum::extract::FromRequestParts;
use http::request::Parts;

use crate::error::Rejection;

/// Turns a request into the id of the inbox owner making it, or refuses it.
///
/// Implement it over your session or token check, or pass a closure:
///
/// ```
/// use clarion_api::{OwnerExtractor, Rejection};
/// use http::request::Parts;
///
/// fn assert_extractor(_: impl OwnerExtractor) {}
///
/// // The future must not borrow `parts`: copy what it needs first.
/// assert_extractor(|parts: &Parts| {
///     let token = parts
///         .headers
///         .get(http::header::AUTHORIZATION)
///         .and_then(|v| v.to_str().ok())
///         .map(str::to_owned);
///     async move {
///         match token.as_deref() {
///             Some("Bearer alice-token") => Ok("alice".to_owned()),
///             _ => Err(Rejection::unauthorized("a valid bearer token is required")),
///         }
///     }
/// });
/// ```
#[async_trait]
pub trait OwnerExtractor: Send + Sync + 'static {
    /// The owner id of the caller, or the refusal to send back (typically
    /// [`Rejection::unauthorized`]). An empty owner is treated as a refusal.
    async fn owner(&self, parts: &Parts) -> Result<String, Rejection>;
}

#[async_trait]
impl<F, Fut> OwnerExtractor for F
where
    F: Fn(&Parts) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<String, Rejection>> + Send + 'static,
{
    async fn owner(&self, parts: &Parts) -> Result<String, Rejection> {
        self(parts).await
    }
}

/// Reads the owner from a request header that a trusted proxy or the
/// application's own auth middleware sets, e.g. `HeaderOwner::new("x-user-id")`.
///
/// Only use it behind something that strips the header from outside requests
/// and sets it after authenticating: the header is trusted as it is. A missing,
/// empty or non-UTF-8 header is refused with 401.
#[derive(Debug, Clone)]
pub struct HeaderOwner {
    name: http::HeaderName,
}

impl HeaderOwner {
    /// Reads the header `name`.
    ///
    /// # Panics
    ///
    /// If `name` is not a valid header name (a programming error, caught at
    /// start-up).
    pub fn new(name: &'static str) -> Self {
        HeaderOwner {
            name: http::HeaderName::from_static(name),
        }
    }

    /// Reads the header `name`.
    pub fn from_name(name: http::HeaderName) -> Self {
        HeaderOwner { name }
    }
}

#[async_trait]
impl OwnerExtractor for HeaderOwner {
    async fn owner(&self, parts: &Parts) -> Result<String, Rejection> {
        let value = parts
            .headers
            .get(&self.name)
            .ok_or_else(|| Rejection::unauthorized(format!("missing {} header", self.name)))?;
        let owner = value.to_str().map_err(|_| {
            Rejection::unauthorized(format!("the {} header is not valid text", self.name))
        })?;
        Ok(owner.trim().to_owned())
    }
}

/// The owner of the current request, as the application's extractor says.
pub(crate) struct Owner(pub String);

impl FromRequestParts<crate::InboxState> for Owner {
    type Rejection = Rejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &crate::InboxState,
    ) -> Result<Self, Rejection> {
        let owner = state.owner.owner(parts).await?;
        if owner.trim().is_empty() {
            return Err(Rejection::unauthorized("the request carries no owner id"));
        }
        Ok(Owner(owner))
    }
}
