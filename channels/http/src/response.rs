//! [`Response`]: a peer's answer, read within bounds, and the outcomes a
//! channel builds from it.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clarion_core::channel::{DeliveryError, Receipt};
use http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use url::Url;

use crate::classify::{self, status_line};
use crate::redact::Redactor;

/// At most this much of a response body is read; past it the connection is
/// closed instead of drained.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// A peer's answer: status, headers and the first [`MAX_RESPONSE_BYTES`] of
/// the body.
///
/// [`classify`](Self::classify) applies the default rules; a channel that
/// knows better matches on the status and body first and builds its own
/// outcome with [`gone`](Self::gone), [`throttled`](Self::throttled),
/// [`retryable`](Self::retryable), [`permanent`](Self::permanent) or
/// [`receipt`](Self::receipt), whose reasons hold the status line and a
/// redacted excerpt of the body, never a secret.
#[derive(Debug)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    /// Where the answer came from (after redirects): never printed whole.
    url: Url,
    allow_redirects: bool,
    received_at: SystemTime,
    redactor: Arc<Redactor>,
}

impl Response {
    pub(crate) async fn read(
        mut response: reqwest::Response,
        allow_redirects: bool,
        redactor: Arc<Redactor>,
    ) -> Response {
        let status = response.status();
        let url = response.url().clone();
        let headers = std::mem::take(response.headers_mut());
        let mut body = Vec::new();
        // A failure mid-body keeps what arrived: the status decides.
        while body.len() < MAX_RESPONSE_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_RESPONSE_BYTES - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) | Err(_) => break,
            }
        }
        Response {
            status,
            headers,
            body,
            url,
            allow_redirects,
            received_at: SystemTime::now(),
            redactor,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body (at most [`MAX_RESPONSE_BYTES`]), as sent: not redacted.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as text (lossy UTF-8), as sent: for matching a vendor's
    /// error code (`channel_not_found`), not for reasons.
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The body parsed as JSON, if it is.
    pub fn json<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body on one line, cut to [`ERROR_BODY_BYTES`](crate::ERROR_BODY_BYTES),
    /// secrets replaced by `[redacted]`.
    pub fn excerpt(&self) -> String {
        classify::excerpt(&self.body, &self.redactor)
    }

    /// `Retry-After` (seconds or an HTTP date), if sent.
    pub fn retry_after(&self) -> Option<Duration> {
        classify::retry_after(&self.headers, self.received_at)
    }

    /// `HTTP <status>: <excerpt>`: the start of every reason built here.
    pub fn reason(&self) -> String {
        status_line(self.status, &self.excerpt())
    }

    /// The default classification:
    ///
    /// | answer | outcome |
    /// |---|---|
    /// | 2xx | [`receipt`](Self::receipt) |
    /// | 429; 503 with `Retry-After` | [`throttled`](Self::throttled) |
    /// | 408, 425, other 5xx | [`retryable`](Self::retryable) (with `Retry-After`) |
    /// | 410 | [`gone`](Self::gone) |
    /// | 3xx (not followed) | permanent, naming the target's origin |
    /// | other 4xx | permanent |
    pub fn classify(&self) -> Result<Receipt, DeliveryError> {
        classify::classify(self)
    }

    /// Success: a receipt holding the status, e.g. `HTTP 202 Accepted`.
    pub fn receipt(&self) -> Receipt {
        Receipt::new(format!("HTTP {}", self.status))
    }

    /// Worth retrying, with `Retry-After` passed on.
    pub fn retryable(&self) -> DeliveryError {
        DeliveryError::Retryable {
            reason: self.reason(),
            retry_after: self.retry_after(),
        }
    }

    /// The whole channel is throttled, with `Retry-After` passed on.
    pub fn throttled(&self) -> DeliveryError {
        DeliveryError::throttled(self.reason(), self.retry_after())
    }

    /// The endpoint no longer exists: `endpoint gone: HTTP 410 Gone: … (…)`.
    pub fn gone(&self) -> DeliveryError {
        DeliveryError::gone(format!(
            "endpoint gone: {} (the receiver says this endpoint no longer exists; \
             update url or remove the channel)",
            self.reason()
        ))
    }

    /// Will never succeed as configured; `hint` (may be empty) says what to fix.
    pub fn permanent(&self, hint: &str) -> DeliveryError {
        if hint.is_empty() {
            DeliveryError::permanent(self.reason())
        } else {
            DeliveryError::permanent(format!("{} ({hint})", self.reason()))
        }
    }

    pub(crate) fn redirect_not_followed(&self) -> DeliveryError {
        let code = self.status.as_u16();
        let target = self
            .headers
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| self.url.join(l).ok())
            .map(|l| l.origin().ascii_serialization())
            .unwrap_or_else(|| "an unknown location".into());
        let hint = match (self.allow_redirects, code) {
            (false, _) => format!(
                "redirect to {target} not followed: point url at the final endpoint, \
                 or set allow_redirects = true to follow 307/308 redirects"
            ),
            (true, 301..=303) => format!(
                "redirect to {target} not followed: a {code} would turn the POST into a GET \
                 without a body; point url at the final endpoint"
            ),
            (true, _) => format!("redirect to {target} not followed"),
        };
        self.permanent(&hint)
    }
}
