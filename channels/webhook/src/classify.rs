//! Outcome classification: what an HTTP answer (or the lack of one) means.

use std::error::Error as _;
use std::fmt;
use std::time::{Duration, SystemTime};

use clarion_core::channel::{DeliveryError, Receipt};
use http::{HeaderMap, StatusCode, header};
use url::Url;

/// How much of an error response's body `last_error` keeps.
pub const ERROR_BODY_BYTES: usize = 512;
/// How much of an error response's body is read (to redact before cutting).
pub(crate) const ERROR_BODY_READ: usize = 4096;
/// How much of a 2xx response's body is drained so the connection can be
/// reused; past it the connection is closed instead.
pub(crate) const SUCCESS_BODY_DRAIN: usize = 64 * 1024;

/// Replaces configured secrets (URL tokens, header values, signing secrets)
/// with `[redacted]` in text that came from the network, e.g. a receiver's
/// error page echoing the request path.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    needles: Vec<String>,
}

/// Pieces shorter than this are too common to be worth hiding (and a token
/// that short would be no secret).
const MIN_NEEDLE: usize = 8;

impl Redactor {
    pub(crate) fn add(&mut self, secret: &str) {
        let secret = secret.trim();
        if secret.len() >= MIN_NEEDLE && !self.needles.iter().any(|n| n == secret) {
            self.needles.push(secret.to_owned());
            // Longest first, so a whole value wins over its parts.
            self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        }
    }

    /// Adds a value and its space-, `/`-, `&`- and `=`-separated parts.
    pub(crate) fn add_with_parts(&mut self, secret: &str) {
        self.add(secret);
        for part in secret.split([' ', '/', '&', '=', '?', ':', '@']) {
            self.add(part);
        }
    }

    pub(crate) fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for needle in &self.needles {
            if text.contains(needle.as_str()) {
                text = text.replace(needle.as_str(), "[redacted]");
            }
        }
        text
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} values)", self.needles.len())
    }
}

/// The first [`ERROR_BODY_BYTES`] of a response body, made printable on one
/// line, with secrets redacted.
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

/// `Retry-After` as delay-seconds or an HTTP date, relative to `now`.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `scheme://host[:port]` of a URL: enough to say where, never a path or token.
pub(crate) fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

fn status_line(status: StatusCode, excerpt: &str) -> String {
    if excerpt.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {excerpt}")
    }
}

/// What one HTTP answer means. `excerpt` is the (redacted, cut) body; `url`
/// the URL that answered (for resolving a relative `Location`).
pub(crate) fn classify_response(
    status: StatusCode,
    headers: &HeaderMap,
    excerpt: &str,
    url: &Url,
    allow_redirects: bool,
    now: SystemTime,
) -> Result<Receipt, DeliveryError> {
    let line = status_line(status, excerpt);
    let code = status.as_u16();
    if status.is_success() {
        return Ok(Receipt::new(format!("HTTP {status}")));
    }
    if code == 408 || code == 425 || code == 429 || status.is_server_error() {
        return Err(DeliveryError::Retryable {
            reason: line,
            retry_after: retry_after(headers, now),
        });
    }
    if code == 410 {
        return Err(DeliveryError::permanent(format!(
            "endpoint gone: {line} (the receiver says this webhook no longer exists; \
             update url or remove the channel)"
        )));
    }
    if status.is_redirection() {
        let target = headers
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| url.join(l).ok())
            .map(|l| origin(&l))
            .unwrap_or_else(|| "an unknown location".into());
        let hint = match (allow_redirects, code) {
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
        return Err(DeliveryError::permanent(format!("{line} ({hint})")));
    }
    let hint = match code {
        401 | 403 => " (check the channel's headers and the receiver's credentials)",
        404 => " (check url)",
        _ => "",
    };
    Err(DeliveryError::permanent(format!("{line}{hint}")))
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

    fn url() -> Url {
        "https://hooks.example.com/services/T000/B000/XXXXXXXXXXXX"
            .parse()
            .unwrap()
    }

    fn classify(code: u16, headers: &HeaderMap, allow: bool) -> Result<Receipt, DeliveryError> {
        classify_response(
            StatusCode::from_u16(code).unwrap(),
            headers,
            "",
            &url(),
            allow,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        )
    }

    #[test]
    fn status_classes() {
        let none = HeaderMap::new();
        for code in [200, 201, 202, 204, 299] {
            let receipt = classify(code, &none, false).unwrap();
            assert!(receipt.detail.unwrap().starts_with(&format!("HTTP {code}")));
        }
        for code in [408, 425, 429, 500, 502, 503, 504, 599] {
            assert!(
                classify(code, &none, false).unwrap_err().is_retryable(),
                "{code}"
            );
        }
        for code in [400, 401, 403, 404, 405, 409, 413, 422, 451] {
            assert!(
                !classify(code, &none, false).unwrap_err().is_retryable(),
                "{code}"
            );
        }
        let gone = classify(410, &none, false).unwrap_err();
        assert!(!gone.is_retryable());
        assert!(gone.reason().starts_with("endpoint gone: HTTP 410 Gone"));
        for code in [300, 301, 302, 303, 304, 307, 308] {
            for allow in [false, true] {
                assert!(!classify(code, &none, allow).unwrap_err().is_retryable());
            }
        }
    }

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
    fn redirect_reasons_show_only_the_target_origin() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::LOCATION,
            HeaderValue::from_static("https://other.example/secret/path?token=abcdefgh"),
        );
        let err = classify(302, &headers, false).unwrap_err();
        assert!(err.reason().contains("https://other.example"), "{err}");
        assert!(!err.reason().contains("secret/path"), "{err}");
        let err = classify(302, &headers, true).unwrap_err();
        assert!(err.reason().contains("turn the POST into a GET"), "{err}");
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
