//! What an HTTP answer (or the lack of one) means, by default.

use std::error::Error as _;
use std::time::{Duration, SystemTime};

use clarion_core::channel::{DeliveryError, Receipt};
use http::{HeaderMap, StatusCode, header};

use crate::redact::Redactor;
use crate::response::Response;

/// How much of a response body a reason keeps (after redaction), in bytes.
pub const ERROR_BODY_BYTES: usize = 512;

/// `Retry-After` as delay-seconds or an HTTP date, relative to `now`.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The default classification (see the crate docs' table).
pub(crate) fn classify(response: &Response) -> Result<Receipt, DeliveryError> {
    let status = response.status();
    let code = status.as_u16();
    if status.is_success() {
        return Ok(response.receipt());
    }
    if code == 429 || (code == 503 && response.retry_after().is_some()) {
        return Err(response.throttled());
    }
    if code == 408 || code == 425 || status.is_server_error() {
        return Err(response.retryable());
    }
    if code == 410 {
        return Err(response.gone());
    }
    if status.is_redirection() {
        return Err(response.redirect_not_followed());
    }
    let hint = match code {
        401 | 403 => " (check the channel's credentials)",
        404 => " (check url)",
        _ => "",
    };
    Err(DeliveryError::permanent(format!(
        "{}{hint}",
        response.reason()
    )))
}

/// `HTTP 503 Service Unavailable` or `HTTP 503 Service Unavailable: <excerpt>`.
pub(crate) fn status_line(status: StatusCode, excerpt: &str) -> String {
    if excerpt.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {excerpt}")
    }
}

/// The first [`ERROR_BODY_BYTES`] of a body, made printable on one line,
/// with secrets redacted.
pub(crate) fn excerpt(body: &[u8], redactor: &Redactor) -> String {
    let text = redactor.redact(&String::from_utf8_lossy(body));
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut cut = one_line.trim();
    if cut.len() > ERROR_BODY_BYTES {
        let mut end = ERROR_BODY_BYTES;
        while !cut.is_char_boundary(end) {
            end -= 1;
        }
        cut = &cut[..end];
    }
    cut.to_owned()
}

/// What a request that got no HTTP answer means.
pub(crate) fn classify_error(
    err: reqwest::Error,
    origin: &str,
    timeout: Duration,
    redactor: &Redactor,
) -> DeliveryError {
    let err = err.without_url();
    let mut causes: Vec<String> = Vec::new();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if causes.last() != Some(&text) {
            causes.push(text);
        }
        source = cause.source();
    }
    let chain = redactor.redact(&if causes.is_empty() {
        err.to_string()
    } else {
        causes.join(": ")
    });
    if err.is_timeout() {
        DeliveryError::retryable(format!(
            "timed out after {timeout:?} waiting for {origin} ({chain})"
        ))
    } else if err.is_redirect() {
        DeliveryError::permanent(format!("redirect from {origin} not followed: {chain}"))
    } else if err.is_builder() {
        DeliveryError::permanent(format!("cannot build the request to {origin}: {chain}"))
    } else if err.is_connect() {
        DeliveryError::retryable(format!("cannot connect to {origin}: {chain}"))
    } else {
        DeliveryError::retryable(format!("request to {origin} failed: {chain}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(120)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        headers.insert(header::RETRY_AFTER, later.parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(90)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(90));
        headers.insert(header::RETRY_AFTER, past.parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::ZERO));
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers, now), None);
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("-5"));
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn excerpts_are_cut_redacted_and_single_line() {
        let mut redactor = Redactor::default();
        redactor.add_with_parts("Bearer sk_live_0123456789");
        let body = format!("no such token sk_live_0123456789\n{}", "é".repeat(600));
        let text = excerpt(body.as_bytes(), &redactor);
        assert!(text.starts_with("no such token [redacted] é"));
        assert!(!text.contains('\n'));
        assert!(text.len() <= ERROR_BODY_BYTES && text.len() > ERROR_BODY_BYTES - 4);
    }
}
