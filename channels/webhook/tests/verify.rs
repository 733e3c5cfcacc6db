//! The receiver-side helper, on a controlled clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clarion_webhook::{DEFAULT_TOLERANCE, VerifyError, WebhookSecret, verify_at};
use http::{HeaderMap, HeaderValue};

const OLD: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NEW: &str = "whsec_ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
const UNRELATED: &str = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const SENT_AT: i64 = 1_800_000_000;
const BODY: &[u8] = br#"{"type":"rotation_success"}"#;

fn secret(s: &str) -> WebhookSecret {
    s.parse().unwrap()
}

fn at(unix: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix as u64)
}

/// Headers as clarion sends them, signed by each of `secrets`.
fn signed(secrets: &[&str]) -> HeaderMap {
    let signature = secrets
        .iter()
        .map(|s| secret(s).sign("clarion_abc", SENT_AT, BODY))
        .collect::<Vec<_>>()
        .join(" ");
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", HeaderValue::from_static("clarion_abc"));
    headers.insert("webhook-timestamp", HeaderValue::from(SENT_AT));
    headers.insert("webhook-signature", signature.parse().unwrap());
    headers
}

#[test]
fn accepts_a_fresh_message() {
    let headers = signed(&[OLD]);
    verify_at(
        &secret(OLD),
        &headers,
        BODY,
        DEFAULT_TOLERANCE,
        at(SENT_AT + 3),
    )
    .unwrap();
}

#[test]
fn key_rotation_two_signatures_either_secret_verifies() {
    let headers = signed(&[OLD, NEW]);
    let now = at(SENT_AT);
    // A receiver still on the old secret, and one already on the new one.
    verify_at(&secret(OLD), &headers, BODY, DEFAULT_TOLERANCE, now).unwrap();
    verify_at(&secret(NEW), &headers, BODY, DEFAULT_TOLERANCE, now).unwrap();
    assert_eq!(
        verify_at(&secret(UNRELATED), &headers, BODY, DEFAULT_TOLERANCE, now),
        Err(VerifyError::NoMatchingSignature)
    );
    // After the rotation the old secret no longer verifies.
    let after = signed(&[NEW]);
    assert_eq!(
        verify_at(&secret(OLD), &after, BODY, DEFAULT_TOLERANCE, now),
        Err(VerifyError::NoMatchingSignature)
    );
}

#[test]
fn expiry_follows_the_five_minute_default_tolerance_both_ways() {
    let headers = signed(&[OLD]);
    let s = secret(OLD);
    assert_eq!(DEFAULT_TOLERANCE, Duration::from_secs(300));
    verify_at(&s, &headers, BODY, DEFAULT_TOLERANCE, at(SENT_AT + 300)).unwrap();
    verify_at(&s, &headers, BODY, DEFAULT_TOLERANCE, at(SENT_AT - 300)).unwrap();
    assert_eq!(
        verify_at(&s, &headers, BODY, DEFAULT_TOLERANCE, at(SENT_AT + 301)),
        Err(VerifyError::TooOld {
            age_secs: 301,
            tolerance_secs: 300
        })
    );
    assert_eq!(
        verify_at(&s, &headers, BODY, DEFAULT_TOLERANCE, at(SENT_AT - 301)),
        Err(VerifyError::TooNew {
            ahead_secs: 301,
            tolerance_secs: 300
        })
    );
    // A custom tolerance.
    let minute = Duration::from_secs(60);
    assert!(verify_at(&s, &headers, BODY, minute, at(SENT_AT + 61)).is_err());
}

#[test]
fn tampering_is_detected() {
    let headers = signed(&[OLD]);
    let s = secret(OLD);
    let now = at(SENT_AT);
    assert_eq!(
        verify_at(
            &s,
            &headers,
            b"{\"type\":\"forged\"}",
            DEFAULT_TOLERANCE,
            now
        ),
        Err(VerifyError::NoMatchingSignature)
    );
    let mut other_id = headers.clone();
    other_id.insert("webhook-id", HeaderValue::from_static("clarion_xyz"));
    assert_eq!(
        verify_at(&s, &other_id, BODY, DEFAULT_TOLERANCE, now),
        Err(VerifyError::NoMatchingSignature)
    );
    // A replay with a fresh timestamp but the old signature.
    let mut restamped = headers.clone();
    restamped.insert("webhook-timestamp", HeaderValue::from(SENT_AT + 100));
    assert_eq!(
        verify_at(&s, &restamped, BODY, DEFAULT_TOLERANCE, at(SENT_AT + 100)),
        Err(VerifyError::NoMatchingSignature)
    );
}

#[test]
fn unknown_versions_and_garbage_signatures_are_skipped() {
    let s = secret(OLD);
    let good = s.sign("clarion_abc", SENT_AT, BODY);
    let mut headers = signed(&[OLD]);
    let mixed = format!("v2,abc v1,!!notbase64!! junk {good}");
    headers.insert("webhook-signature", mixed.parse().unwrap());
    verify_at(&s, &headers, BODY, DEFAULT_TOLERANCE, at(SENT_AT)).unwrap();
    // The right bytes under another version label do not count.
    let relabelled = good.replacen("v1,", "v1a,", 1);
    headers.insert("webhook-signature", relabelled.parse().unwrap());
    assert_eq!(
        verify_at(&s, &headers, BODY, DEFAULT_TOLERANCE, at(SENT_AT)),
        Err(VerifyError::NoMatchingSignature)
    );
}

#[test]
fn missing_and_malformed_headers_are_named() {
    let s = secret(OLD);
    let now = at(SENT_AT);
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let mut headers = signed(&[OLD]);
        headers.remove(name);
        let err = verify_at(&s, &headers, BODY, DEFAULT_TOLERANCE, now).unwrap_err();
        assert_eq!(err.to_string(), format!("missing header {name}"));
    }
    let mut headers = signed(&[OLD]);
    headers.insert("webhook-timestamp", HeaderValue::from_static("yesterday"));
    assert_eq!(
        verify_at(&s, &headers, BODY, DEFAULT_TOLERANCE, now),
        Err(VerifyError::MalformedHeader("webhook-timestamp"))
    );
}
