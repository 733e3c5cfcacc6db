//! JSON errors: `{"error": {"code": "...", "message": "..."}}`.
//!
//! Every response the routers produce for a failed request has this shape and
//! a status that says who is at fault: 4xx for the caller (with a message that
//! tells them what to change), 5xx for the server (with a generic message: the
//! cause is logged, never sent, so store internals do not leak).

use std::borrow::Cow;

use axum::Json;
use axum::extract::OriginalUri;
use axum::response::{IntoResponse, Response};
use clarion_core::store::{DeliveryStatus, StoreError};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::Serialize;

/// A refusal, as the owner extractor (or the API itself) sends it.
///
/// It becomes a JSON error response `{"error": {"code", "message"}}` with the
/// given status and any extra headers (e.g. `WWW-Authenticate`).
///
/// ```
/// use clarion_api::Rejection;
/// use http::{HeaderValue, StatusCode, header};
/// let rejection = Rejection::unauthorized("sign in first")
///     .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
/// assert_eq!(rejection.status(), StatusCode::UNAUTHORIZED);
/// assert_eq!(rejection.code(), "unauthenticated");
/// ```
#[derive(Debug, Clone)]
pub struct Rejection(Box<Inner>);

#[derive(Debug, Clone)]
struct Inner {
    status: StatusCode,
    code: Cow<'static, str>,
    message: String,
    headers: HeaderMap,
    delivery_status: Option<DeliveryStatus>,
}

impl Rejection {
    /// A refusal with any status, a stable machine-readable `code` (snake
    /// case by convention) and a message for people.
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Rejection(Box::new(Inner {
            status,
            code: code.into(),
            message: message.into(),
            headers: HeaderMap::new(),
            delivery_status: None,
        }))
    }

    /// 401 `unauthenticated`: the request does not say who the caller is.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// 403 `forbidden`: the caller is known but may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// Adds a response header (e.g. `WWW-Authenticate` on a 401).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.headers.append(name, value);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The machine-readable code.
    pub fn code(&self) -> &str {
        &self.0.code
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub(crate) fn not_dead(id: uuid::Uuid, status: DeliveryStatus) -> Self {
        let mut rejection = Self::new(
            StatusCode::CONFLICT,
            "not_dead",
            format!("delivery {id} is {status}; only dead deliveries can be requeued"),
        );
        rejection.0.delivery_status = Some(status);
        rejection
    }

    pub(crate) fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; the cause was logged on the server",
        )
    }

    /// A store failure: logged in full, answered without internals.
    pub(crate) fn store(error: StoreError) -> Self {
        match error {
            StoreError::Backend {
                retryable: true, ..
            } => {
                tracing::warn!(error = %error, "clarion-api: the store is unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the notification store is unavailable; try again shortly",
                )
                .with_header(http::header::RETRY_AFTER, HeaderValue::from_static("1"))
            }
            error => {
                tracing::error!(error = %error, "clarion-api: the store failed");
                Self::internal()
            }
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.0.status.as_u16(),
            self.0.code,
            self.0.message
        )
    }
}

impl std::error::Error for Rejection {}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery_status: Option<DeliveryStatus>,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let Inner {
            status,
            code,
            message,
            headers,
            delivery_status,
        } = *self.0;
        let body = Body {
            error: Detail {
                code: &code,
                message: &message,
                delivery_status,
            },
        };
        let mut response = (status, Json(body)).into_response();
        response.headers_mut().extend(headers);
        response
    }
}

/// The routers' fallback: 404 for a path they do not serve.
pub(crate) async fn unknown_route(
    method: http::Method,
    OriginalUri(uri): OriginalUri,
) -> Rejection {
    Rejection::new(
        StatusCode::NOT_FOUND,
        "unknown_route",
        format!(
            "no route for {method} {}; see the OpenAPI document",
            uri.path()
        ),
    )
}

/// The routers' answer to a known path with the wrong method (axum adds `Allow`).
pub(crate) async fn method_not_allowed(
    method: http::Method,
    OriginalUri(uri): OriginalUri,
) -> Rejection {
    Rejection::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not allowed on {}; the Allow header lists the methods that are",
            uri.path()
        ),
    )
}

/// A panic in a handler (or in the application's owner extractor) becomes a
/// 500 JSON error instead of a dropped connection.
pub(crate) fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("clarion-api: a request handler panicked");
    Rejection::internal().into_response()
}
