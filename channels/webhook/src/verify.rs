//! Checking clarion's signatures on the receiving side.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

use crate::secret::WebhookSecret;

/// The `webhook-id` header: the delivery's idempotency key, the same on every retry.
pub const WEBHOOK_ID: &str = "webhook-id";
/// The `webhook-timestamp` header: unix seconds at send time.
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// The `webhook-signature` header: space-separated `v1,<base64>` signatures.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// How far a `webhook-timestamp` may be from the receiver's clock, either
/// way, before [`verify`] rejects the message (the specification's 5 minutes).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Why a received webhook is not proven to come from clarion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A Standard Webhooks header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A Standard Webhooks header is not what the specification allows.
    #[error("malformed header {0}")]
    MalformedHeader(&'static str),
    /// The timestamp is older than the tolerance: a replay, or a very late retry.
    #[error("message too old: signed {age_secs} s ago, tolerance is {tolerance_secs} s")]
    TooOld {
        /// How long ago it was signed.
        age_secs: u64,
        /// The tolerance applied.
        tolerance_secs: u64,
    },
    /// The timestamp is further in the future than the tolerance: clock skew.
    #[error("message timestamp {ahead_secs} s in the future, tolerance is {tolerance_secs} s")]
    TooNew {
        /// How far ahead of the receiver's clock.
        ahead_secs: u64,
        /// The tolerance applied.
        tolerance_secs: u64,
    },
    /// No `v1` signature matches the secret: wrong secret, or the body or
    /// headers were altered.
    #[error("no matching signature")]
    NoMatchingSignature,
}

/// Checks that `body` with `headers` was signed with `secret` no more than
/// `tolerance` away from now ([`DEFAULT_TOLERANCE`] is the usual choice).
///
/// Pass the raw body bytes exactly as received, before any JSON parsing.
/// During a key rotation clarion sends one signature per configured secret;
/// the check passes when any of them matches. After it passes, drop messages
/// whose `webhook-id` you have already processed: retries reuse the id.
///
/// ```
/// use clarion_webhook::{verify, WebhookSecret, DEFAULT_TOLERANCE};
/// use http::{HeaderMap, HeaderValue};
///
/// let secret: WebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap();
/// let body = br#"{"type":"rotation_success"}"#;
/// let now = std::time::SystemTime::now()
///     .duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
/// let mut headers = HeaderMap::new();
/// headers.insert("webhook-id", HeaderValue::from_static("clarion_0192"));
/// headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
/// let signature = secret.sign("clarion_0192", now, body);
/// headers.insert("webhook-signature", signature.parse().unwrap());
///
/// verify(&secret, &headers, body, DEFAULT_TOLERANCE).unwrap();
/// assert!(verify(&secret, &headers, b"tampered", DEFAULT_TOLERANCE).is_err());
/// ```
pub fn verify(
    secret: &WebhookSecret,
    headers: &HeaderMap,
    body: &[u8],
    tolerance: Duration,
) -> Result<(), VerifyError> {
    verify_at(secret, headers, body, tolerance, SystemTime::now())
}

/// [`verify`] against a given clock reading instead of the system clock.
pub fn verify_at(
    secret: &WebhookSecret,
    headers: &HeaderMap,
    body: &[u8],
    tolerance: Duration,
    now: SystemTime,
) -> Result<(), VerifyError> {
    let id = header(headers, WEBHOOK_ID)?;
    let timestamp_text = header(headers, WEBHOOK_TIMESTAMP)?;
    let signatures = header(headers, WEBHOOK_SIGNATURE)?;
    if id.is_empty() {
        return Err(VerifyError::MalformedHeader(WEBHOOK_ID));
    }
    let timestamp: i64 = timestamp_text
        .trim()
        .parse()
        .map_err(|_| VerifyError::MalformedHeader(WEBHOOK_TIMESTAMP))?;

    let now_secs = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::from(d.as_secs()),
        Err(e) => -i128::from(e.duration().as_secs()),
    };
    let tolerance_secs = tolerance.as_secs();
    let skew = now_secs - i128::from(timestamp);
    if skew > i128::from(tolerance_secs) {
        return Err(VerifyError::TooOld {
            age_secs: u64::try_from(skew).unwrap_or(u64::MAX),
            tolerance_secs,
        });
    }
    if -skew > i128::from(tolerance_secs) {
        return Err(VerifyError::TooNew {
            ahead_secs: u64::try_from(-skew).unwrap_or(u64::MAX),
            tolerance_secs,
        });
    }

    let matched = signatures
        .split(' ')
        .filter_map(|versioned| versioned.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .any(|(_, sig)| secret.matches(id, timestamp, body, sig));
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, VerifyError> {
    headers
        .get(name)
        .ok_or(VerifyError::MissingHeader(name))?
        .to_str()
        .map_err(|_| VerifyError::MalformedHeader(name))
}
