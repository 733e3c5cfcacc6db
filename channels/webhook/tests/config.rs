//! Configuration: registration, validation with field paths, and secrets
//! that never show up in Debug output or errors.

mod common;

use std::time::Duration;

use clarion_core::channel::Channel;
use clarion_core::registry;
use clarion_webhook::{BodyFormat, WebhookChannel, WebhookConfig};
use common::*;
use serde_json::{Value, json};

fn build_err(config: WebhookConfig) -> (String, String) {
    let err = WebhookChannel::from_config(config).unwrap_err();
    (err.field.clone().unwrap_or_default(), err.message)
}

fn from_toml(text: &str) -> WebhookConfig {
    toml::from_str(text).unwrap()
}

#[test]
fn registered_as_webhook_with_a_valid_example_and_schema() {
    let plugin = registry::find("webhook").expect("clarion-webhook registers kind \"webhook\"");
    assert!(registry::kinds().contains(&"webhook"));

    let example: toml::Table = toml::from_str(plugin.example).unwrap();
    let example = serde_json::to_value(example).unwrap();
    let channel = (plugin.build)("siem", example.clone()).unwrap();
    assert!(format!("{channel:?}").contains("https://siem.example.com"));

    let schema = serde_json::to_value((plugin.config_schema)()).unwrap();
    jsonschema::meta::validate(&schema).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    assert!(validator.is_valid(&example));
    assert!(!validator.is_valid(&json!({"url": "https://x.example", "retries": 3})));
    assert!(
        !validator.is_valid(&json!({"secrets": []})),
        "url is required"
    );
}

#[test]
fn the_schema_shows_the_default_timeout() {
    let plugin = registry::find("webhook").unwrap();
    let schema = serde_json::to_value((plugin.config_schema)()).unwrap();
    let shown = schema["properties"]["timeout"]["default"].as_str().unwrap();
    assert_eq!(
        humantime_serde::re::humantime::parse_duration(shown).unwrap(),
        clarion_webhook::DEFAULT_TIMEOUT
    );
}

#[test]
fn errors_through_the_registry_name_the_full_path() {
    let plugin = registry::find("webhook").unwrap();
    let err = (plugin.build)(
        "hooks",
        json!({"url": "ftp://example.com/x", "secrets": [SECRET_A]}),
    )
    .unwrap_err();
    assert_eq!(err.path(), Some("channels.hooks.url"));
    assert!(
        err.to_string()
            .starts_with("channels.hooks.url: scheme \"ftp\" is not supported")
    );

    let err = (plugin.build)(
        "hooks",
        json!({"url": "https://x.example", "secrets": [SECRET_A, "whsec_short"]}),
    )
    .unwrap_err();
    assert_eq!(err.path(), Some("channels.hooks.secrets[1]"));

    let err = (plugin.build)(
        "hooks",
        json!({"url": "https://x.example", "secrets": [SECRET_A], "timeout": "soon"}),
    )
    .unwrap_err();
    assert_eq!(err.path(), Some("channels.hooks.timeout"));

    let err = (plugin.build)(
        "hooks",
        json!({"url": "https://x.example", "secret": SECRET_A}),
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown field `secret`"), "{err}");
}

#[test]
fn defaults() {
    let config = from_toml(&format!(
        "url = \"https://x.example/h\"\nsecrets = [\"{SECRET_A}\"]"
    ));
    assert_eq!(config.timeout, Duration::from_secs(10));
    assert_eq!(config.format, BodyFormat::Standard);
    assert!(!config.allow_redirects);
    assert!(config.headers.is_empty());
    WebhookChannel::from_config(config).unwrap();
}

#[test]
fn url_must_be_http_or_https() {
    for bad in [
        "not a url",
        "ftp://example.com/",
        "file:///etc/passwd",
        "mailto:ops@example.com",
        "/relative/path",
    ] {
        let (field, message) = build_err(WebhookConfig::new(bad).secret(SECRET_A));
        assert_eq!(field, "url", "{bad}: {message}");
    }
    for good in [
        "http://127.0.0.1:8080/hook",
        "https://siem.example.com/hooks/clarion?tenant=a",
    ] {
        WebhookChannel::from_config(WebhookConfig::new(good).secret(SECRET_A)).unwrap();
    }
}

#[test]
fn secrets_are_checked_one_by_one() {
    let url = "https://x.example/h";
    let (field, message) = build_err(WebhookConfig::new(url));
    assert_eq!(field, "secrets");
    assert!(message.contains("at least one signing secret"), "{message}");

    let cases = [
        (
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "must start with \"whsec_\"",
        ),
        ("whsec_%%%not-base64%%%", "not valid base64"),
        ("whsec_dG9vIHNob3J0", "24-64 bytes"),
    ];
    for (bad, expected) in cases {
        let (field, message) = build_err(WebhookConfig::new(url).secret(SECRET_A).secret(bad));
        assert_eq!(field, "secrets[1]");
        assert!(message.contains(expected), "{message}");
        assert!(
            !message.contains(bad.trim_start_matches("whsec_")),
            "{message}"
        );
    }
    let (field, message) = build_err(WebhookConfig::new(url).secret(SECRET_A).secret(SECRET_A));
    assert_eq!(field, "secrets[1]");
    assert!(message.contains("same secret as secrets[0]"), "{message}");
}

#[test]
fn headers_cannot_override_what_clarion_sets() {
    let base = || WebhookConfig::new("https://x.example/h").secret(SECRET_A);
    for name in [
        "webhook-id",
        "Webhook-Signature",
        "webhook-timestamp",
        "webhook-anything",
        "Content-Type",
        "content-length",
        "host",
    ] {
        let (field, message) = build_err(base().header(name, "x"));
        assert_eq!(field, format!("headers.{name}"));
        assert!(message.contains("cannot be overridden"), "{message}");
    }
    let (field, _) = build_err(base().header("bad header", "x"));
    assert_eq!(field, "headers.bad header");
    let (field, message) = build_err(base().header("X-Token", "line\nbreak"));
    assert_eq!(field, "headers.X-Token");
    assert!(!message.contains("line"));
    WebhookChannel::from_config(
        base()
            .header("Authorization", "Bearer abc")
            .header("User-Agent", "kms/1"),
    )
    .unwrap();
}

#[test]
fn timeout_must_be_positive() {
    let (field, _) = build_err(
        WebhookConfig::new("https://x.example/h")
            .secret(SECRET_A)
            .timeout(Duration::ZERO),
    );
    assert_eq!(field, "timeout");
    let config = from_toml(&format!(
        "url = \"https://x.example\"\nsecrets = [\"{SECRET_A}\"]\ntimeout = \"2m 30s\""
    ));
    assert_eq!(config.timeout, Duration::from_secs(150));
}

#[test]
fn template_settings_are_checked_at_load() {
    let url = "https://hooks.example.com/services/T/B/X";
    // Syntax errors are reported with the line.
    let (field, message) =
        build_err(WebhookConfig::new(url).template("{\"text\": \"ok\"}\n{{ type ", None));
    assert_eq!(field, "body_template");
    assert!(message.starts_with("syntax error"), "{message}");
    assert!(message.contains("line 2"), "{message}");
    let (field, message) = build_err(WebhookConfig::new(url).template("{% if %}", None));
    assert_eq!(field, "body_template");
    assert!(message.starts_with("syntax error"), "{message}");

    // A template that cannot produce JSON for a JSON content type.
    let (field, message) = build_err(WebhookConfig::new(url).template("text: {{ type }}", None));
    assert_eq!(field, "body_template");
    assert!(message.contains("invalid JSON"), "{message}");
    // Unknown filters are compile errors too.
    let (field, _) =
        build_err(WebhookConfig::new(url).template("{{ type | nope }}", Some("text/plain")));
    assert_eq!(field, "body_template");

    // Template without body_template; template-only keys with the standard format.
    let (field, _) = build_err(from_toml(&format!(
        "url = \"{url}\"\nformat = \"template\""
    )));
    assert_eq!(field, "body_template");
    let (field, _) = build_err(from_toml(&format!(
        "url = \"{url}\"\nsecrets = [\"{SECRET_A}\"]\nbody_template = \"{{}}\""
    )));
    assert_eq!(field, "body_template");
    let (field, _) = build_err(from_toml(&format!(
        "url = \"{url}\"\nsecrets = [\"{SECRET_A}\"]\ncontent_type = \"text/plain\""
    )));
    assert_eq!(field, "content_type");
    assert!(
        toml::from_str::<WebhookConfig>(&format!("url = \"{url}\"\nformat = \"xml\"")).is_err()
    );

    // A template needs no secret, and one template serves every kind.
    let config = from_toml(&format!(
        "url = \"{url}\"\nformat = \"template\"\nbody_template = '{{\"text\": \"{{{{ type }}}} {{{{ notification.data.old_id }}}}\"}}'"
    ));
    WebhookChannel::from_config(config).unwrap();
}

const URL_TOKEN: &str = "T0001/B0002/sEcReTpAtHtOkEn9";
const HEADER_TOKEN: &str = "sk_live_HeAdErToKeN42";

fn secretive(url: &str) -> WebhookConfig {
    WebhookConfig::new(url)
        .secret(SECRET_A)
        .secret(SECRET_B)
        .header("Authorization", format!("Bearer {HEADER_TOKEN}"))
        .timeout(Duration::from_millis(300))
}

fn assert_no_secret(text: &str) {
    for secret in [
        SECRET_A,
        &SECRET_A[6..],
        SECRET_B,
        &SECRET_B[6..],
        URL_TOKEN,
        "sEcReTpAtHtOkEn9",
        HEADER_TOKEN,
    ] {
        assert!(
            !text.contains(secret),
            "secret {secret:?} leaked in: {text}"
        );
    }
}

#[tokio::test]
async fn secrets_never_appear_in_debug_or_errors() {
    let receiver = Receiver::start().await;
    let url = receiver.url(&format!("/services/{URL_TOKEN}"));
    let config = secretive(&url);
    assert_no_secret(&format!("{config:?}"));
    let channel = WebhookChannel::from_config(config).unwrap();
    let debug = format!("{channel:?}");
    assert_no_secret(&debug);
    assert!(
        debug.contains(&format!("http://{}", receiver.addr)),
        "{debug}"
    );
    assert!(debug.contains("authorization"), "{debug}");
    assert!(debug.contains("secrets: 2"), "{debug}");

    // A receiver that echoes the request path and headers in its error page.
    let echo =
        format!("no route for /services/{URL_TOKEN} with Authorization: Bearer {HEADER_TOKEN}");
    receiver.script([
        Reply::with_body(404, echo.clone()),
        Reply::with_body(500, echo),
        Reply::Hang,
    ]);
    for _ in 0..3 {
        let err = channel
            .deliver(&delivery(failure_event()))
            .await
            .unwrap_err();
        assert_no_secret(&err.to_string());
        assert_no_secret(&format!("{err:?}"));
    }
    let closed = closed_port().await;
    let refused =
        WebhookChannel::from_config(secretive(&format!("http://{closed}/services/{URL_TOKEN}")))
            .unwrap();
    let err = refused
        .deliver(&delivery(failure_event()))
        .await
        .unwrap_err();
    assert_no_secret(&err.to_string());
    let err = refused.check().await.unwrap_err();
    assert_no_secret(&err.to_string());

    // Config errors about other fields do not repeat the secrets either.
    let mut bad = secretive(&url);
    bad.secrets.push(format!("{}x", &SECRET_B[..20]).into());
    let err = WebhookChannel::from_config(bad).unwrap_err();
    assert_no_secret(&err.to_string());
    let plugin = registry::find("webhook").unwrap();
    let err = (plugin.build)(
        "hooks",
        json!({"url": format!("gopher://x/{URL_TOKEN}"), "secrets": [SECRET_A]}),
    )
    .unwrap_err();
    assert_no_secret(&err.to_string());
    let value: Value = json!({"url": url, "secrets": [SECRET_A, "not-a-secret"]});
    let err = (plugin.build)("hooks", value).unwrap_err();
    assert_no_secret(&format!("{err} {err:?}"));
}
