//! The helper against a real HTTP receiver on 127.0.0.1: every status class,
//! Retry-After, redaction, bounded reads, timeouts, proxies, config errors.

use std::time::Duration;

use clarion_core::DeliveryError;
use clarion_http::{HttpClient, HttpSettings, MAX_RESPONSE_BYTES, SecretUrl};
use clarion_testkit::servers::{Receiver, Reply};

const TOKEN: &str = "T0KEN5ecret9876";

fn url(receiver: &Receiver) -> SecretUrl {
    receiver
        .url(&format!("/hooks/{TOKEN}?sig=s1gnature42"))
        .parse()
        .unwrap()
}

fn client(settings: &HttpSettings, url: &SecretUrl) -> HttpClient {
    HttpClient::builder(settings)
        .endpoint(url)
        .secret("Bearer ap1key0123456")
        .build()
        .unwrap()
}

async fn answer(reply: Reply) -> Result<String, DeliveryError> {
    let receiver = Receiver::start().await;
    receiver.script([reply]);
    let url = url(&receiver);
    let http = client(&HttpSettings::default(), &url);
    let response = http.post_json(&url, &serde_json::json!({"a": 1})).await?;
    assert_eq!(receiver.requests().len(), 1);
    response.classify().map(|r| r.detail.unwrap())
}

#[tokio::test]
async fn every_status_class_is_classified() {
    assert_eq!(answer(Reply::status(200)).await.unwrap(), "HTTP 200 OK");
    assert_eq!(
        answer(Reply::status(202)).await.unwrap(),
        "HTTP 202 Accepted"
    );
    for code in [408, 425, 500, 502, 503, 504] {
        let err = answer(Reply::with_body(code, "busy")).await.unwrap_err();
        assert!(
            matches!(err, DeliveryError::Retryable { .. }),
            "{code}: {err:?}"
        );
        assert!(err.reason().starts_with(&format!("HTTP {code}")), "{err}");
        assert!(err.reason().ends_with(": busy"), "{err}");
    }
    let err = answer(Reply::with_body(410, "hook deleted"))
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Gone { .. }), "{err:?}");
    assert!(
        err.reason()
            .starts_with("endpoint gone: HTTP 410 Gone: hook deleted"),
        "{err}"
    );
    for code in [400, 401, 403, 404, 413, 422] {
        let err = answer(Reply::with_body(code, "nope")).await.unwrap_err();
        assert!(
            matches!(err, DeliveryError::Permanent { .. }),
            "{code}: {err:?}"
        );
    }
    let err = answer(Reply::with_header(
        307,
        "location",
        "https://elsewhere.example/x/y",
    ))
    .await
    .unwrap_err();
    assert!(matches!(err, DeliveryError::Permanent { .. }), "{err:?}");
    assert!(
        err.reason()
            .contains("redirect to https://elsewhere.example not followed"),
        "{err}"
    );
    assert!(!err.reason().contains("/x/y"), "{err}");
}

#[tokio::test]
async fn throttling_carries_retry_after() {
    let err = answer(Reply::with_header(429, "retry-after", "17"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DeliveryError::Throttled {
            reason: "HTTP 429 Too Many Requests".into(),
            retry_after: Some(Duration::from_secs(17)),
        }
    );
    // 429 without a hint is still the channel being throttled.
    let err = answer(Reply::status(429)).await.unwrap_err();
    assert_eq!(err.retry_after(), None);
    assert!(matches!(err, DeliveryError::Throttled { .. }), "{err:?}");
    // 503 with Retry-After is throttling; without it, a passing failure.
    let err = answer(Reply::with_header(503, "retry-after", "60"))
        .await
        .unwrap_err();
    assert!(matches!(err, DeliveryError::Throttled { .. }), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(60)));
    let err = answer(Reply::with_header(500, "retry-after", "5"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DeliveryError::Retryable {
            reason: "HTTP 500 Internal Server Error".into(),
            retry_after: Some(Duration::from_secs(5)),
        }
    );
}

#[tokio::test]
async fn secrets_echoed_by_the_peer_are_redacted_and_never_printed() {
    let echo = format!("no hook /hooks/{TOKEN}?sig=s1gnature42 for Bearer ap1key0123456");
    let err = answer(Reply::with_body(404, echo)).await.unwrap_err();
    let text = format!("{err} {err:?}");
    for secret in [TOKEN, "s1gnature42", "ap1key0123456"] {
        assert!(!text.contains(secret), "{text}");
    }
    assert!(err.reason().contains("[redacted]"), "{err}");

    let receiver = Receiver::start().await;
    let url = url(&receiver);
    let http = client(
        &HttpSettings::default().proxy("http://user:pa55word99@127.0.0.1:1"),
        &url,
    );
    let shown = format!("{url} {url:?} {http:?}");
    for secret in [TOKEN, "s1gnature42", "ap1key0123456", "pa55word99"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(shown.contains(&receiver.url("")), "{shown}");
}

#[tokio::test]
async fn reads_are_bounded_and_the_raw_body_is_available_for_vendor_rules() {
    let receiver = Receiver::start().await;
    receiver.script([
        Reply::with_body(200, "x".repeat(1 << 20)),
        Reply::with_body(404, "channel_not_found"),
    ]);
    let url = url(&receiver);
    let http = client(&HttpSettings::default(), &url);
    let big = http.post_json(&url, &"hello").await.unwrap();
    assert_eq!(big.body().len(), MAX_RESPONSE_BYTES);
    let vendor = http.post_json(&url, &"hello").await.unwrap();
    assert_eq!(vendor.text(), "channel_not_found");
    let err = match vendor.text().trim() {
        "channel_not_found" => vendor.gone(),
        _ => vendor.classify().unwrap_err(),
    };
    assert!(matches!(err, DeliveryError::Gone { .. }), "{err:?}");
    let request = &receiver.requests()[0];
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(request.headers["user-agent"], clarion_http::USER_AGENT);
    assert_eq!(request.body.as_ref(), b"\"hello\"");
}

#[tokio::test]
async fn no_answer_is_retryable_and_names_only_the_origin() {
    let receiver = Receiver::start().await;
    receiver.script([Reply::Hang]);
    let url = url(&receiver);
    let http = client(
        &HttpSettings::default().timeout(Duration::from_millis(300)),
        &url,
    );
    let err = http.post_json(&url, &1).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Retryable { .. }), "{err:?}");
    assert!(
        err.reason()
            .starts_with("timed out after 300ms waiting for http://127.0.0.1:"),
        "{err}"
    );

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed: SecretUrl = format!("http://{}/hooks/{TOKEN}", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    drop(listener);
    let http = client(&HttpSettings::default(), &closed);
    let err = http.post_json(&closed, &1).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.reason()
            .starts_with(&format!("cannot connect to {}", closed.origin())),
        "{err}"
    );
    assert!(!err.reason().contains(TOKEN), "{err}");
    assert!(http.check(&closed).await.unwrap_err().is_retryable());
    assert!(http.check(&url).await.is_ok());
}

#[tokio::test]
async fn an_explicit_proxy_carries_the_request() {
    // The receiver plays the proxy: the target host does not even resolve.
    let proxy = Receiver::start().await;
    let target: SecretUrl = format!("http://clarion-target.invalid/hooks/{TOKEN}")
        .parse()
        .unwrap();
    let http = client(&HttpSettings::default().proxy(proxy.url("")), &target);
    let response = http.post_json(&target, &1).await.unwrap();
    assert_eq!(response.status(), 200);
    let request = &proxy.requests()[0];
    assert_eq!(request.headers["host"], "clarion-target.invalid");
    assert!(
        request.path.ends_with(&format!("/hooks/{TOKEN}")),
        "{}",
        request.path
    );
    // `check` probes the proxy, not the unresolvable target.
    http.check(&target).await.unwrap();

    // "direct" ignores every proxy: a closed local port is then refused,
    // where the proxy would have answered.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed: SecretUrl = format!("http://{}/x", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    drop(listener);
    let via_proxy = client(&HttpSettings::default().proxy(proxy.url("")), &closed);
    assert_eq!(
        via_proxy.post_json(&closed, &1).await.unwrap().status(),
        200
    );
    let direct = client(&HttpSettings::default().proxy("direct"), &closed);
    let err = direct.post_json(&closed, &1).await.unwrap_err();
    assert!(err.reason().starts_with("cannot connect to"), "{err}");
}

#[test]
fn settings_errors_name_the_field_and_hide_secrets() {
    let url: SecretUrl = "https://hooks.example.com/a".parse().unwrap();
    let err = |settings: HttpSettings, at: &str| {
        HttpClient::builder(&settings)
            .at(at)
            .endpoint(&url)
            .build()
            .unwrap_err()
    };
    let e = err(HttpSettings::default().timeout(Duration::ZERO), "http");
    assert_eq!(e.field.as_deref(), Some("http.timeout"));
    let e = err(
        HttpSettings::default().proxy("socks5://user:pa55word99@proxy:1080"),
        "",
    );
    assert_eq!(e.field.as_deref(), Some("proxy"));
    assert!(!e.message.contains("pa55word99"), "{}", e.message);
    let e = err(HttpSettings::default().proxy("not a url"), "http");
    assert_eq!(e.field.as_deref(), Some("http.proxy"));
    let e = err(
        HttpSettings::default().tls_ca_file("/nonexistent/ca.pem"),
        "http",
    );
    assert_eq!(e.field.as_deref(), Some("http.tls_ca_file"));
    assert!(
        e.message.contains("cannot read /nonexistent/ca.pem"),
        "{}",
        e.message
    );
}

#[test]
fn settings_deserialize_with_defaults_and_reject_unknown_fields() {
    let s: HttpSettings = serde_json::from_value(serde_json::json!({})).unwrap();
    assert_eq!(s.timeout, clarion_http::DEFAULT_TIMEOUT);
    assert_eq!(s.effective_connect_timeout(), Duration::from_secs(10));
    let s: HttpSettings =
        serde_json::from_value(serde_json::json!({"timeout": "3s", "allow_redirects": true}))
            .unwrap();
    assert_eq!(s.effective_connect_timeout(), Duration::from_secs(3));
    let e =
        serde_json::from_value::<HttpSettings>(serde_json::json!({"timout": "3s"})).unwrap_err();
    assert!(e.to_string().contains("unknown field `timout`"), "{e}");
    let e = serde_json::from_value::<SecretUrl>(serde_json::json!("ftp://x.example/T0KEN"))
        .unwrap_err();
    assert!(e.to_string().contains("scheme \"ftp\""), "{e}");
    assert!(!e.to_string().contains("T0KEN"), "{e}");
}
