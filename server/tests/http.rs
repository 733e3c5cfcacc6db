//! `clarion serve` over real HTTP: ingest with keys and scopes, delivery to
//! a signed-webhook receiver, the inbox and admin routers, refusals, and a
//! clean SIGTERM shutdown.

mod support;

use clarion::webhook_channel::{DEFAULT_TOLERANCE, WebhookSecret, verify};
use clarion_testkit::servers::{Receiver, random_webhook_secret};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::*;

fn webhook_config(receiver: &Receiver, secret: &str, server: &str) -> String {
    format!(
        r#"
[channels.hook]
kind = "webhook"
url = "{}"
secrets = ["{secret}"]

[[routes]]
channels = ["hook"]

[server]
listen = "127.0.0.1:0"
{server}
{}
"#,
        receiver.url("/hook"),
        keys_toml()
    )
}

fn event(id: &str) -> Value {
    json!({
        "kind": "rotation_failure",
        "subject": { "type": "symmetric_key", "id": id, "name": "payments" },
        "owner": "alice",
        "data": { "error": "HSM timeout" },
    })
}

async fn post(client: &reqwest::Client, url: &str, key: &str, body: &Value) -> reqwest::Response {
    client
        .post(url)
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_posted_with_a_key_arrives_signed_at_the_webhook_and_in_the_inbox() {
    let receiver = Receiver::start().await;
    let secret = random_webhook_secret();
    let daemon = Daemon::start(config_dir(&webhook_config(&receiver, &secret, ""))).await;
    let client = client();

    let response = post(&client, &daemon.url("/v1/events"), EMIT_KEY, &event("k1")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let result: Value = response.json().await.unwrap();
    assert_eq!(result["result"], "enqueued", "{result}");
    assert_eq!(result["channels"], json!(["hook"]));
    let id = result["id"].as_str().unwrap().to_owned();

    let requests = eventually("the webhook delivery", || async {
        let requests = receiver.requests();
        (!requests.is_empty()).then_some(requests)
    })
    .await;
    let request = &requests[0];
    let secret = WebhookSecret::parse(&secret).unwrap();
    verify(&secret, &request.headers, &request.body, DEFAULT_TOLERANCE).expect("signed");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["type"], "rotation_failure");
    assert_eq!(body["data"]["id"], id.as_str());
    // Filled by the server: the kind's default severity and an occurred_at.
    assert_eq!(body["data"]["severity"], "critical");
    assert!(body["data"]["occurred_at"].is_string(), "{body}");

    let inbox: Value = client
        .get(daemon.url("/v1/inbox/notifications"))
        .bearer_auth(ALICE_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inbox["items"][0]["id"], id.as_str(), "{inbox}");
    assert_eq!(inbox["unread"], 1);

    let deliveries: Value = eventually("the delivery marked sent", || async {
        let page: Value = client
            .get(daemon.url("/v1/admin/deliveries?status=sent"))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (page["items"].as_array().unwrap().len() == 1).then_some(page)
    })
    .await;
    assert_eq!(deliveries["items"][0]["channel"], "hook");

    // Idempotency-Key: the same key from the same client is a duplicate.
    let mut first = None;
    for _ in 0..2 {
        let result: Value = client
            .post(daemon.url("/v1/events"))
            .bearer_auth(EMIT_KEY)
            .header("idempotency-key", "retry-1")
            .json(&event("k2"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match &first {
            None => {
                assert_eq!(result["result"], "enqueued", "{result}");
                first = Some(result["id"].clone());
            }
            Some(id) => {
                assert_eq!(result["result"], "duplicate", "{result}");
                assert_eq!(&result["id"], id);
            }
        }
    }

    // Public routes.
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        let response = client.get(daemon.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let doc: Value = client
        .get(daemon.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/v1/events"]["post"].is_object());
    assert!(doc["paths"]["/v1/inbox/notifications"]["get"].is_object());
    assert_eq!(
        doc["components"]["parameters"]["NotificationCursor"]["schema"]["minLength"],
        1
    );

    // /metrics needs scope metrics.
    let anonymous = client.get(daemon.url("/metrics")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let metrics = client
        .get(daemon.url("/metrics"))
        .bearer_auth(METRICS_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("clarion_deliveries_sent_total"), "{text}");

    let status = daemon.terminate().await;
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_array_with_one_invalid_event_stores_the_rest_and_names_the_field() {
    let receiver = Receiver::start().await;
    let secret = random_webhook_secret();
    let daemon = Daemon::start(config_dir(&webhook_config(&receiver, &secret, ""))).await;
    let client = client();

    let mut bad = event("");
    bad["labels"] = json!({ "env": "prod" });
    let body = json!([event("a"), bad, event("c")]);
    let response = post(&client, &daemon.url("/v1/events"), EMIT_KEY, &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let results: Value = response.json().await.unwrap();
    assert_eq!(results.as_array().unwrap().len(), 3, "{results}");
    assert_eq!(results[0]["result"], "enqueued", "{results}");
    assert_eq!(results[1]["result"], "invalid", "{results}");
    assert_eq!(results[1]["field"], "subject.id", "{results}");
    assert_eq!(results[2]["result"], "enqueued", "{results}");

    let inbox: Value = client
        .get(daemon.url("/v1/inbox/notifications"))
        .bearer_auth(ALICE_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut subjects: Vec<&str> = inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["subject"]["id"].as_str().unwrap())
        .collect();
    subjects.sort();
    assert_eq!(subjects, ["a", "c"]);
    eventually("both deliveries", || async {
        (receiver.requests().len() == 2).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_401_403_413_415_400() {
    let receiver = Receiver::start().await;
    let secret = random_webhook_secret();
    let config = webhook_config(&receiver, &secret, "body_limit = 2048");
    let daemon = Daemon::start(config_dir(&config)).await;
    let client = client();
    let events = daemon.url("/v1/events");

    let none = client.post(&events).json(&event("k")).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let body: Value = none.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");

    let wrong = post(&client, &events, "not-a-key", &event("k")).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let text = wrong.text().await.unwrap();
    assert!(
        !text.contains("not-a-key"),
        "the key is never echoed: {text}"
    );

    // A valid key without the scope.
    let inbox_key = post(&client, &events, ALICE_KEY, &event("k")).await;
    assert_eq!(inbox_key.status(), StatusCode::FORBIDDEN);
    let admin = client
        .get(daemon.url("/v1/admin/stats"))
        .bearer_auth(EMIT_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::FORBIDDEN);
    let text = admin.text().await.unwrap();
    assert!(text.contains("lacks scope admin"), "{text}");
    assert!(!text.contains(EMIT_KEY), "{text}");

    let mut big = event("k");
    big["data"]["error"] = json!("x".repeat(4096));
    let too_large = post(&client, &events, EMIT_KEY, &big).await;
    assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let text_body = client
        .post(&events)
        .bearer_auth(EMIT_KEY)
        .header("content-type", "text/plain")
        .body(event("k").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(text_body.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let not_json = client
        .post(&events)
        .bearer_auth(EMIT_KEY)
        .header("content-type", "application/json")
        .body("{\"kind\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let body: Value = not_json.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");

    // None of the refused requests stored anything.
    let stats: Value = client
        .get(daemon.url("/v1/admin/stats"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let total: u64 = stats["by_status"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 0, "{stats}");
    assert!(receiver.requests().is_empty());
}
