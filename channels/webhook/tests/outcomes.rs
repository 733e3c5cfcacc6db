//! How every kind of answer from a real receiver is classified.

mod common;

use std::time::{Duration, SystemTime};

use clarion_core::channel::{Channel, DeliveryError};
use clarion_webhook::{
    DEFAULT_TOLERANCE, ERROR_BODY_BYTES, WebhookChannel, WebhookConfig, WebhookSecret, verify,
};
use common::*;

async fn outcome(reply: Reply) -> Result<String, DeliveryError> {
    let receiver = Receiver::start().await;
    receiver.script([reply]);
    let result = channel(&receiver.url("/"))
        .deliver(&delivery(failure_event()))
        .await;
    assert_eq!(
        receiver.requests().len(),
        1,
        "exactly one request per attempt"
    );
    result.map(|r| r.detail.unwrap())
}

#[tokio::test]
async fn success_records_the_status() {
    for (code, text) in [
        (200, "HTTP 200 OK"),
        (202, "HTTP 202 Accepted"),
        (204, "HTTP 204 No Content"),
    ] {
        assert_eq!(outcome(Reply::status(code)).await.unwrap(), text);
    }
}

#[tokio::test]
async fn transient_statuses_are_retryable() {
    for code in [408, 425, 429, 500, 502, 503, 504] {
        let err = outcome(Reply::with_body(code, "busy")).await.unwrap_err();
        assert!(err.is_retryable(), "{code}: {err}");
        assert!(err.reason().starts_with(&format!("HTTP {code}")), "{err}");
        assert!(err.reason().ends_with(": busy"), "{err}");
    }
}

#[tokio::test]
async fn gone_is_endpoint_gone() {
    let err = outcome(Reply::with_body(410, "hook deleted"))
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Gone { .. }), "{err:?}");
    assert!(!err.is_retryable());
    assert!(
        err.reason()
            .starts_with("endpoint gone: HTTP 410 Gone: hook deleted"),
        "{err}"
    );
}

#[tokio::test]
async fn other_client_errors_are_permanent() {
    for code in [400, 401, 403, 404, 405, 413, 422] {
        let err = outcome(Reply::with_body(code, "nope")).await.unwrap_err();
        assert!(!err.is_retryable(), "{code}: {err}");
        assert!(err.reason().starts_with(&format!("HTTP {code}")), "{err}");
    }
}

#[tokio::test]
async fn retry_after_in_seconds_is_passed_on() {
    let err = outcome(Reply::with_header(429, "retry-after", "2"))
        .await
        .unwrap_err();
    // 429 throttles the whole channel (DeliveryError::Throttled).
    assert_eq!(
        err,
        DeliveryError::Throttled {
            reason: "HTTP 429 Too Many Requests".into(),
            retry_after: Some(Duration::from_secs(2)),
        }
    );
    let err = outcome(Reply::with_header(500, "retry-after", "3"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DeliveryError::Retryable {
            reason: "HTTP 500 Internal Server Error".into(),
            retry_after: Some(Duration::from_secs(3)),
        }
    );
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_passed_on() {
    let at = SystemTime::now() + Duration::from_secs(3600);
    let err = outcome(Reply::with_header(
        503,
        "retry-after",
        httpdate::fmt_http_date(at),
    ))
    .await
    .unwrap_err();
    // 503 with Retry-After is the channel being throttled.
    let DeliveryError::Throttled {
        retry_after: Some(after),
        ..
    } = err
    else {
        panic!("expected a throttled error with a hint, got {err:?}");
    };
    // HTTP dates have whole seconds; the hint is "about an hour", wherever the clock is.
    assert!(
        after <= Duration::from_secs(3600) && after > Duration::from_secs(3000),
        "{after:?}"
    );
}

#[tokio::test]
async fn last_error_holds_the_status_and_the_first_512_bytes_of_the_body() {
    let body = format!("{}{}", "a".repeat(ERROR_BODY_BYTES), "TAIL".repeat(10_000));
    let err = outcome(Reply::with_body(500, body)).await.unwrap_err();
    let reason = err.reason();
    assert!(reason.starts_with("HTTP 500 Internal Server Error: aaaa"));
    assert!(reason.contains(&"a".repeat(ERROR_BODY_BYTES)));
    assert!(!reason.contains("TAIL"));
    assert!(reason.len() < ERROR_BODY_BYTES + 64);
}

#[tokio::test]
async fn redirects_are_permanent_by_default() {
    let receiver = Receiver::start().await;
    receiver.script([Reply::with_header(307, "location", "/moved")]);
    let err = channel(&receiver.url("/"))
        .deliver(&delivery(failure_event()))
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(
        err.reason().starts_with("HTTP 307 Temporary Redirect"),
        "{err}"
    );
    assert!(err.reason().contains("allow_redirects = true"), "{err}");
    assert_eq!(
        receiver.requests().len(),
        1,
        "the redirect was not followed"
    );
}

fn redirecting(receiver: &Receiver) -> WebhookChannel {
    WebhookChannel::from_config(
        WebhookConfig::new(receiver.url("/"))
            .secret(SECRET_A)
            .allow_redirects(true),
    )
    .unwrap()
}

#[tokio::test]
async fn allowed_307_and_308_redirects_keep_the_signed_post() {
    for code in [307, 308] {
        let receiver = Receiver::start().await;
        receiver.script([Reply::with_header(code, "location", "/moved")]);
        let receipt = redirecting(&receiver)
            .deliver(&delivery(failure_event()))
            .await
            .unwrap();
        assert_eq!(receipt.detail.as_deref(), Some("HTTP 200 OK"));
        let requests = receiver.requests();
        assert_eq!(requests.len(), 2);
        let moved = &requests[1];
        assert_eq!(moved.method, "POST");
        assert_eq!(moved.path, "/moved");
        assert_eq!(moved.body, requests[0].body);
        let secret: WebhookSecret = SECRET_A.parse().unwrap();
        verify(&secret, &moved.headers, &moved.body, DEFAULT_TOLERANCE).unwrap();
    }
}

#[tokio::test]
async fn allowed_redirects_never_turn_the_post_into_a_get() {
    for code in [301, 302, 303] {
        let receiver = Receiver::start().await;
        receiver.script([Reply::with_header(code, "location", "/moved")]);
        let err = redirecting(&receiver)
            .deliver(&delivery(failure_event()))
            .await
            .unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.reason().contains("turn the POST into a GET"), "{err}");
        assert_eq!(receiver.requests().len(), 1);
    }
}

#[tokio::test]
async fn redirect_loops_stop_and_are_permanent() {
    let receiver = Receiver::start().await;
    receiver.script((0..20).map(|_| Reply::with_header(307, "location", "/again")));
    let err = redirecting(&receiver)
        .deliver(&delivery(failure_event()))
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(err.reason().contains("more than 5 redirects"), "{err}");
    assert_eq!(receiver.requests().len(), 6);
}

#[tokio::test]
async fn a_receiver_that_never_answers_times_out_retryably() {
    let receiver = Receiver::start().await;
    receiver.script([Reply::Hang]);
    let channel = WebhookChannel::from_config(
        WebhookConfig::new(receiver.url("/"))
            .secret(SECRET_A)
            .timeout(Duration::from_millis(300)),
    )
    .unwrap();
    let err = channel
        .deliver(&delivery(failure_event()))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.reason().starts_with("timed out after 300ms"), "{err}");
    assert_eq!(receiver.requests().len(), 1);
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let closed = closed_port().await;
    let err = channel(&format!("http://{closed}/hook"))
        .deliver(&delivery(failure_event()))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.reason()
            .starts_with(&format!("cannot connect to http://{closed}")),
        "{err}"
    );
}

#[tokio::test]
async fn connections_are_reused_across_deliveries() {
    let receiver = Receiver::start().await;
    let channel = channel(&receiver.url("/"));
    for _ in 0..50 {
        channel.deliver(&delivery(failure_event())).await.unwrap();
    }
    assert_eq!(receiver.requests().len(), 50);
    // Typically 1; the pool may race a fresh connect against a returning
    // idle one, so only "far fewer than one per request" is asserted.
    assert!(
        receiver.connections() < 10,
        "{} connections",
        receiver.connections()
    );
}
