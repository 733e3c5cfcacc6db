//! The API over real HTTP: a server bound on 127.0.0.1:0, a reqwest client.
//!
//! Every test body is generic over the store; `store_suite!` at the bottom
//! runs them all per store — memory, SQLite, PostgreSQL and MariaDB (a fresh
//! schema or database per test, dropped afterwards) — so another store is
//! one line there and a factory function.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use chrono::Utc;
use clarion_api::{Api, HeaderOwner, Rejection};
use clarion_core::config::{Config, RouteConfig};
use clarion_core::memory::MemoryStore;
use clarion_core::notifier::{EmitOutcome, Notifier};
use clarion_core::store::*;
use clarion_core::{Notification, Receipt};
use clarion_testkit::recording::{RecordingChannel, Step};
use clarion_testkit::{databases, events};
use http::request::Parts;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

// ---------------------------------------------------------------- harness

const OWNER_HEADER: &str = "x-user-id";

/// A running server with both routers nested the way the crate docs show.
struct Server {
    base: String,
    client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A response: status, headers and the body parsed as JSON (`Null` if empty).
struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Reply {
    /// Asserts a JSON error with this status and code (and the documented shape).
    #[track_caller]
    fn error(&self, status: u16, code: &str) -> &str {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.body["error"]["code"], code, "body: {}", self.body);
        conforms(&self.body, "Error");
        self.body["error"]["message"].as_str().unwrap()
    }

    #[track_caller]
    fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        &self.body
    }
}

fn app(api: &Api) -> Router {
    Router::new()
        .nest("/api", api.inbox(HeaderOwner::new(OWNER_HEADER)))
        .nest("/api/admin", api.admin())
        .route(
            "/openapi.json",
            clarion_api::openapi_route("/api", "/api/admin"),
        )
}

async fn serve(app: Router) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    // In the workspace build, cargo unifies reqwest's features with the webhook
    // channel's `rustls-no-provider`, so a client needs the workspace's one
    // provider (ring) installed, even for plain http.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    Server { base, client, task }
}

impl Server {
    async fn request(&self, method: Method, path: &str, owner: Option<&str>) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(owner) = owner {
            request = request.header(OWNER_HEADER, owner);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            let body: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "{path}: not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            });
            assert_eq!(headers["content-type"], "application/json", "{path}");
            body
        };
        if path.starts_with("/api/") {
            assert_eq!(headers["cache-control"], "no-store", "{path}");
        }
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str, owner: &str) -> Reply {
        self.request(Method::GET, path, Some(owner)).await
    }

    async fn post(&self, path: &str, owner: &str) -> Reply {
        self.request(Method::POST, path, Some(owner)).await
    }

    async fn admin_get(&self, path: &str) -> Reply {
        self.request(Method::GET, &format!("/api/admin{path}"), None)
            .await
    }

    async fn admin_post(&self, path: &str) -> Reply {
        self.request(Method::POST, &format!("/api/admin{path}"), None)
            .await
    }
}

/// Validates `value` against a schema of the checked-in OpenAPI document.
#[track_caller]
fn conforms(value: &Value, schema: &str) {
    let doc: Value = serde_json::from_str(clarion_api::openapi_json()).unwrap();
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{schema}"),
        "components": doc["components"],
    });
    let validator = jsonschema::validator_for(&root).unwrap();
    if let Err(e) = validator.validate(value) {
        panic!("does not match the OpenAPI schema {schema}: {e}\n{value:#}");
    }
}

/// Stores a notification for `owner` (no deliveries) and returns its id.
async fn notify(store: &dyn NotificationsStore, owner: &str, key: &str) -> Uuid {
    enqueue(store, owner, key, &[]).await.0
}

/// Stores a notification with a delivery per channel.
async fn enqueue(
    store: &dyn NotificationsStore,
    owner: &str,
    key: &str,
    channels: &[&str],
) -> (Uuid, Vec<Uuid>) {
    let notification = Notification::new(events::failure(key, owner), Utc::now());
    match store
        .enqueue(NewNotification {
            notification,
            channels: channels.iter().map(|c| c.to_string()).collect(),
        })
        .await
        .unwrap()
    {
        Enqueued::Created {
            notification_id,
            deliveries,
        } => (notification_id, deliveries),
        other => panic!("{other:?}"),
    }
}

/// Claims every due delivery and records `outcome` for each.
async fn finish_all(store: &dyn NotificationsStore, sent: bool) {
    let now = Utc::now();
    let claims = store
        .claim(ClaimRequest {
            now,
            lease: Duration::from_secs(60),
            limit: 1000,
            exclude_channels: vec![],
        })
        .await
        .unwrap();
    for claim in claims {
        let outcome = if sent {
            Outcome::Sent {
                receipt: Receipt::new("250 ok"),
                at: now,
            }
        } else {
            Outcome::Dead {
                error: "550 mailbox unavailable".into(),
                at: now,
            }
        };
        store
            .complete(claim.delivery.id, claim.token, outcome)
            .await
            .unwrap();
    }
}

/// Waits (bounded) until `check` holds, polling the API.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let wait = async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

// ---------------------------------------------------------------- bodies

async fn unread(server: &Server) -> u64 {
    server
        .get("/api/notifications/unread/count", "alice")
        .await
        .ok(200)["unread"]
        .as_u64()
        .unwrap()
}

async fn paging_through_500_notifications(store: Arc<dyn NotificationsStore>) {
    let mut created = Vec::new();
    for i in 0..500 {
        created.push(notify(store.as_ref(), "alice", &format!("key-{i}")).await);
    }
    notify(store.as_ref(), "bob", "bobs-key").await;
    let newest_first: Vec<Uuid> = created.iter().rev().copied().collect();
    let server = serve(app(&Api::new(store.clone()))).await;

    // The default page is 50.
    let first = server.get("/api/notifications", "alice").await;
    let first = first.ok(200);
    conforms(first, "NotificationPage");
    assert_eq!(first["items"].as_array().unwrap().len(), 50);
    assert_eq!(first["unread"], 500);

    for limit in [37, 200] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                None => format!("/api/notifications?limit={limit}"),
                Some(c) => format!("/api/notifications?limit={limit}&cursor={c}"),
            };
            let reply = server.get(&path, "alice").await;
            let page = reply.ok(200);
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= limit);
            for item in items {
                assert_eq!(item["owner"], "alice");
                assert_eq!(item["read"], false);
                seen.push(item["id"].as_str().unwrap().parse::<Uuid>().unwrap());
            }
            pages += 1;
            match page["next_cursor"].as_str() {
                Some(next) => {
                    assert_eq!(items.len(), limit, "only the last page is short");
                    cursor = Some(next.to_owned());
                }
                None => break,
            }
        }
        assert_eq!(pages, 500usize.div_ceil(limit));
        assert_eq!(seen, newest_first, "each exactly once, newest first");
    }
}

async fn owner_isolation(store: Arc<dyn NotificationsStore>) {
    let mut alice = Vec::new();
    for i in 0..3 {
        alice.push(notify(store.as_ref(), "alice", &format!("a-{i}")).await);
    }
    let bobs = notify(store.as_ref(), "bob", "b-0").await;
    let server = serve(app(&Api::new(store.clone()))).await;

    // Bob cannot see, read or count Alice's notifications.
    server
        .get(&format!("/api/notifications/{}", alice[0]), "bob")
        .await
        .error(404, "not_found");
    let message = server
        .post(&format!("/api/notifications/{}/read", alice[0]), "bob")
        .await
        .error(404, "not_found")
        .to_owned();
    // Unknown and foreign ids get the same answer.
    let unknown = Uuid::now_v7();
    let unknown_message = server
        .post(&format!("/api/notifications/{unknown}/read"), "bob")
        .await
        .error(404, "not_found")
        .to_owned();
    assert_eq!(
        message.replace(&alice[0].to_string(), "ID"),
        unknown_message.replace(&unknown.to_string(), "ID")
    );
    let list = server.get("/api/notifications", "bob").await;
    let ids: Vec<&str> = list.ok(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![bobs.to_string()]);
    assert_eq!(list.body["unread"], 1);

    // Bob's read-all changes only Bob's.
    assert_eq!(
        server
            .post("/api/notifications/read-all", "bob")
            .await
            .ok(200)["changed"],
        1
    );
    let count = server.get("/api/notifications/unread/count", "alice").await;
    conforms(count.ok(200), "UnreadCount");
    assert_eq!(count.body["unread"], 3);
    let alices = server
        .get(&format!("/api/notifications/{}", alice[0]), "alice")
        .await;
    conforms(alices.ok(200), "Notification");
    assert_eq!(alices.body["read"], false);
    assert_eq!(alices.body["read_at"], Value::Null);

    // No owner is taken from the query either.
    server
        .get("/api/notifications?owner=alice", "bob")
        .await
        .error(400, "invalid_query");
}

async fn read_and_read_all(store: Arc<dyn NotificationsStore>) {
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(notify(store.as_ref(), "alice", &format!("k-{i}")).await);
    }
    let server = serve(app(&Api::new(store.clone()))).await;
    assert_eq!(unread(&server).await, 5);

    let read = server
        .post(&format!("/api/notifications/{}/read", ids[1]), "alice")
        .await;
    assert_eq!(read.ok(204), &Value::Null);
    assert_eq!(unread(&server).await, 4);
    let one = server
        .get(&format!("/api/notifications/{}", ids[1]), "alice")
        .await;
    assert_eq!(one.ok(200)["read"], true);
    let read_at = one.body["read_at"].clone();
    assert!(read_at.is_string());

    // Marking again is fine and keeps the first read time.
    server
        .post(&format!("/api/notifications/{}/read", ids[1]), "alice")
        .await
        .ok(204);
    assert_eq!(unread(&server).await, 4);
    let again = server
        .get(&format!("/api/notifications/{}", ids[1]), "alice")
        .await;
    assert_eq!(again.ok(200)["read_at"], read_at);

    // The list carries read state and the unread count.
    let list = server.get("/api/notifications", "alice").await;
    assert_eq!(list.ok(200)["unread"], 4);
    let read_flags: Vec<bool> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["read"].as_bool().unwrap())
        .collect();
    assert_eq!(read_flags, vec![false, false, false, true, false]);

    let all = server.post("/api/notifications/read-all", "alice").await;
    conforms(all.ok(200), "Changed");
    assert_eq!(all.body["changed"], 4);
    assert_eq!(unread(&server).await, 0);
    let again = server.post("/api/notifications/read-all", "alice").await;
    assert_eq!(again.ok(200)["changed"], 0);
    let nobody = server.post("/api/notifications/read-all", "nobody").await;
    assert_eq!(nobody.ok(200)["changed"], 0);
}

async fn requeue_of_a_dead_delivery_is_sent_by_the_dispatcher(store: Arc<dyn NotificationsStore>) {
    let channel = RecordingChannel::new()
        .then(Step::Permanent)
        .otherwise(Step::Succeed);
    let mut config = Config::default();
    config.add_route(RouteConfig::to(["pager"]));
    // Only a wake-up can make the dispatcher claim the requeued delivery in time.
    config.delivery.poll_interval = Duration::from_secs(3600);
    let notifier = Notifier::builder()
        .config(config)
        .shared_store(store.clone())
        .shared_channel("pager", Arc::new(channel.clone()))
        .build()
        .unwrap();
    let running = notifier.start();
    let server = serve(app(&Api::from_notifier(notifier.clone()))).await;

    let outcome = notifier
        .emit(&events::failure("key-1", "alice"))
        .await
        .unwrap();
    assert!(
        matches!(outcome, EmitOutcome::Enqueued { .. }),
        "{outcome:?}"
    );
    tokio::time::timeout(Duration::from_secs(10), channel.wait_for_calls(1))
        .await
        .expect("the first attempt");
    // The attempt has happened; wait until its outcome is recorded.
    eventually("the delivery to be dead", || async {
        let dead = server.admin_get("/deliveries?status=dead").await;
        dead.ok(200)["items"].as_array().unwrap().len() == 1
    })
    .await;
    let dead = server.admin_get("/deliveries?status=dead").await;
    conforms(&dead.body, "DeliveryPage");
    let delivery = dead.body["items"][0].clone();
    assert_eq!(delivery["channel"], "pager");
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["last_error"], "scripted permanent failure");
    let id = delivery["id"].as_str().unwrap().to_owned();
    let stats = server.admin_get("/stats").await;
    conforms(stats.ok(200), "Stats");
    assert_eq!(stats.body["by_status"]["dead"], 1);

    let requeued = server
        .admin_post(&format!("/deliveries/{id}/requeue"))
        .await;
    conforms(requeued.ok(200), "Delivery");
    assert_eq!(requeued.body["id"], id.as_str());
    assert_ne!(requeued.body["status"], "dead");

    // Sent by the dispatcher, woken by the requeue (its poll interval is 1 h).
    tokio::time::timeout(Duration::from_secs(10), channel.wait_for_calls(2))
        .await
        .expect("requeue should wake the dispatcher");
    let calls = channel.calls();
    assert_eq!(calls[1].delivery.id.to_string(), id);
    assert_eq!(calls[1].delivery.attempt, 1, "attempts were reset");
    eventually("the delivery to be sent", || async {
        server.admin_get(&format!("/deliveries/{id}")).await.ok(200)["status"] == "sent"
    })
    .await;
    let sent = server.admin_get(&format!("/deliveries/{id}")).await;
    assert_eq!(sent.body["attempts"], 1);
    assert!(sent.body["receipt"].is_string());
    let stats = server.admin_get("/stats").await;
    assert_eq!(
        stats.body,
        json!({
            "by_status": {"pending": 0, "in_flight": 0, "sent": 1, "dead": 0, "total": 1},
            "by_channel": {"pager": {"pending": 0, "in_flight": 0, "sent": 1, "dead": 0, "total": 1}},
        })
    );

    // Requeueing it again is a conflict now.
    server
        .admin_post(&format!("/deliveries/{id}/requeue"))
        .await
        .error(409, "not_dead");
    running.shutdown(Duration::from_secs(5)).await;
}

async fn requeue_conflicts_and_unknowns(store: Arc<dyn NotificationsStore>) {
    let (_, sent) = enqueue(store.as_ref(), "alice", "k-sent", &["pager"]).await;
    finish_all(store.as_ref(), true).await;
    let (_, pending) = enqueue(store.as_ref(), "alice", "k-pending", &["pager"]).await;
    let server = serve(app(&Api::new(store.clone()))).await;

    let reply = server
        .admin_post(&format!("/deliveries/{}/requeue", sent[0]))
        .await;
    let message = reply.error(409, "not_dead");
    assert!(message.contains("sent"), "{message}");
    assert_eq!(reply.body["error"]["delivery_status"], "sent");
    let reply = server
        .admin_post(&format!("/deliveries/{}/requeue", pending[0]))
        .await;
    reply.error(409, "not_dead");
    assert_eq!(reply.body["error"]["delivery_status"], "pending");
    let unknown = Uuid::now_v7();
    server
        .admin_post(&format!("/deliveries/{unknown}/requeue"))
        .await
        .error(404, "not_found");
    server
        .admin_get(&format!("/deliveries/{unknown}"))
        .await
        .error(404, "not_found");
    // Nothing changed.
    let sent_now = server.admin_get(&format!("/deliveries/{}", sent[0])).await;
    conforms(sent_now.ok(200), "Delivery");
    assert_eq!(sent_now.body["status"], "sent");

    // Without a notifier the store requeues directly.
    let (_, dead) = enqueue(store.as_ref(), "alice", "k-dead", &["pager"]).await;
    finish_all(store.as_ref(), false).await; // kills the pending ones too
    let requeued = server
        .admin_post(&format!("/deliveries/{}/requeue", dead[0]))
        .await;
    assert_eq!(requeued.ok(200)["status"], "pending");
    assert_eq!(requeued.body["attempts"], 0);
}

async fn deliveries_filters_paging_and_stats(store: Arc<dyn NotificationsStore>) {
    for i in 0..7 {
        enqueue(
            store.as_ref(),
            "alice",
            &format!("s-{i}"),
            &["email", "pager"],
        )
        .await;
    }
    finish_all(store.as_ref(), true).await; // 14 sent
    for i in 0..3 {
        enqueue(store.as_ref(), "bob", &format!("d-{i}"), &["email"]).await;
    }
    finish_all(store.as_ref(), false).await; // 3 dead on email
    enqueue(store.as_ref(), "bob", "p-0", &["pager"]).await; // 1 pending
    let server = serve(app(&Api::new(store.clone()))).await;

    let all = server.admin_get("/deliveries?limit=200").await;
    assert_eq!(all.ok(200)["items"].as_array().unwrap().len(), 18);
    assert_eq!(all.body["next_cursor"], Value::Null);
    let ids: Vec<&str> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");

    let dead = server.admin_get("/deliveries?status=dead").await;
    let items = dead.ok(200)["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|d| d["status"] == "dead"
        && d["channel"] == "email"
        && d["last_error"] == "550 mailbox unavailable"));
    let pager_sent = server
        .admin_get("/deliveries?status=sent&channel=pager")
        .await;
    assert_eq!(pager_sent.ok(200)["items"].as_array().unwrap().len(), 7);
    let none = server.admin_get("/deliveries?channel=nope").await;
    assert_eq!(none.ok(200)["items"], json!([]));

    // Paging a filtered listing: each once.
    let mut seen = Vec::new();
    let mut path = "/deliveries?status=sent&limit=4".to_owned();
    loop {
        let page = server.admin_get(&path).await;
        conforms(page.ok(200), "DeliveryPage");
        for d in page.body["items"].as_array().unwrap() {
            assert_eq!(d["status"], "sent");
            seen.push(d["id"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => path = format!("/deliveries?status=sent&limit=4&cursor={c}"),
            None => break,
        }
    }
    let unique: std::collections::BTreeSet<_> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (14, 14));

    let stats = server.admin_get("/stats").await;
    conforms(stats.ok(200), "Stats");
    assert_eq!(
        stats.body,
        json!({
            "by_status": {"pending": 1, "in_flight": 0, "sent": 14, "dead": 3, "total": 18},
            "by_channel": {
                "email": {"pending": 0, "in_flight": 0, "sent": 7, "dead": 3, "total": 10},
                "pager": {"pending": 1, "in_flight": 0, "sent": 7, "dead": 0, "total": 8},
            },
        })
    );
}

async fn bad_input_gets_a_clear_400(store: Arc<dyn NotificationsStore>) {
    let (id, deliveries) = enqueue(store.as_ref(), "alice", "k", &["pager"]).await;
    for i in 0..3 {
        notify(store.as_ref(), "alice", &format!("more-{i}")).await;
    }
    let server = serve(app(&Api::new(store.clone()))).await;
    // A real cursor of each listing, to cross them.
    let n_cursor = server.get("/api/notifications?limit=1", "alice").await.body["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    enqueue(store.as_ref(), "alice", "k2", &["pager"]).await;
    let d_cursor = server.admin_get("/deliveries?limit=1").await.body["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let long = "x".repeat(10_000);

    let inbox_cases: Vec<(Method, String, &str)> = vec![
        (
            Method::GET,
            "/api/notifications?limit=0".into(),
            "invalid_limit",
        ),
        (
            Method::GET,
            "/api/notifications?limit=201".into(),
            "invalid_limit",
        ),
        (
            Method::GET,
            "/api/notifications?limit=-5".into(),
            "invalid_limit",
        ),
        (
            Method::GET,
            "/api/notifications?limit=ten".into(),
            "invalid_limit",
        ),
        (
            Method::GET,
            "/api/notifications?limit=".into(),
            "invalid_limit",
        ),
        (
            Method::GET,
            "/api/notifications?limit=2.5".into(),
            "invalid_limit",
        ),
        (
            Method::GET,
            "/api/notifications?limit=%00".into(),
            "invalid_limit",
        ),
        (
            Method::GET,
            "/api/notifications?limit=99999999999999999999999".into(),
            "invalid_limit",
        ),
        (
            Method::GET,
            "/api/notifications?cursor=garbage!".into(),
            "invalid_cursor",
        ),
        (
            Method::GET,
            "/api/notifications?cursor=".into(),
            "invalid_cursor",
        ),
        (
            Method::GET,
            format!("/api/notifications?cursor={id}"),
            "invalid_cursor",
        ),
        (
            Method::GET,
            format!("/api/notifications?cursor={d_cursor}"),
            "invalid_cursor",
        ),
        (
            Method::GET,
            format!("/api/notifications?cursor={long}"),
            "invalid_cursor",
        ),
        (
            Method::GET,
            "/api/notifications?page=2".into(),
            "invalid_query",
        ),
        (
            Method::GET,
            "/api/notifications?limit=1&limit=2".into(),
            "invalid_query",
        ),
        (
            Method::GET,
            "/api/notifications/unread/count?x=1".into(),
            "invalid_query",
        ),
        (
            Method::GET,
            "/api/notifications/not-a-uuid".into(),
            "invalid_id",
        ),
        (
            Method::GET,
            "/api/notifications/%FF%FE".into(),
            "invalid_id",
        ),
        (
            Method::POST,
            "/api/notifications/123/read".into(),
            "invalid_id",
        ),
        (
            Method::POST,
            format!("/api/notifications/{id}x/read"),
            "invalid_id",
        ),
        (
            Method::POST,
            format!("/api/notifications/{long}/read"),
            "invalid_id",
        ),
        (
            Method::POST,
            "/api/notifications/read-all?all=true".into(),
            "invalid_query",
        ),
    ];
    for (method, path, code) in &inbox_cases {
        let reply = server.request(method.clone(), path, Some("alice")).await;
        let message = reply.error(400, code);
        assert!(message.len() < 400, "{path}: a short message: {message}");
        // Authentication comes first: the same request without an owner is a 401.
        server
            .request(method.clone(), path, None)
            .await
            .error(401, "unauthenticated");
    }
    let message = server
        .get("/api/notifications?limit=500", "alice")
        .await
        .error(400, "invalid_limit")
        .to_owned();
    assert!(message.contains("1 to 200"), "{message}");

    let admin_cases: Vec<(Method, String, &str)> = vec![
        (
            Method::GET,
            "/deliveries?status=bogus".into(),
            "invalid_status",
        ),
        (
            Method::GET,
            "/deliveries?status=DEAD".into(),
            "invalid_status",
        ),
        (Method::GET, "/deliveries?status=".into(), "invalid_status"),
        (
            Method::GET,
            "/deliveries?channel=".into(),
            "invalid_channel",
        ),
        (
            Method::GET,
            format!("/deliveries?channel={long}"),
            "invalid_channel",
        ),
        (Method::GET, "/deliveries?limit=0".into(), "invalid_limit"),
        (
            Method::GET,
            "/deliveries?limit=1000".into(),
            "invalid_limit",
        ),
        (
            Method::GET,
            format!("/deliveries?cursor={n_cursor}"),
            "invalid_cursor",
        ),
        (
            Method::GET,
            "/deliveries?cursor=%%%".into(),
            "invalid_cursor",
        ),
        (
            Method::GET,
            "/deliveries?state=dead".into(),
            "invalid_query",
        ),
        (Method::GET, "/deliveries/nope".into(), "invalid_id"),
        (
            Method::POST,
            "/deliveries/nope/requeue".into(),
            "invalid_id",
        ),
        (Method::GET, "/stats?by=channel".into(), "invalid_query"),
    ];
    for (method, path, code) in &admin_cases {
        let reply = server
            .request(method.clone(), &format!("/api/admin{path}"), None)
            .await;
        let message = reply.error(400, code);
        assert!(message.len() < 400, "{path}: a short message: {message}");
    }
    let message = server
        .admin_get("/deliveries?status=bogus")
        .await
        .error(400, "invalid_status")
        .to_owned();
    assert!(
        message.contains("pending, in_flight, sent or dead"),
        "{message}"
    );

    // Valid forms of the same parameters work, and nothing above changed anything.
    server
        .get(
            &format!("/api/notifications?limit=200&cursor={n_cursor}"),
            "alice",
        )
        .await
        .ok(200);
    server
        .admin_get(&format!("/deliveries?status=in_flight&cursor={d_cursor}"))
        .await
        .ok(200);
    let delivery = server
        .admin_get(&format!("/deliveries/{}", deliveries[0]))
        .await;
    assert_eq!(delivery.ok(200)["status"], "pending");
    assert_eq!(
        server
            .get("/api/notifications/unread/count", "alice")
            .await
            .body["unread"],
        5
    );
}

async fn missing_owner_is_401(store: Arc<dyn NotificationsStore>) {
    let id = notify(store.as_ref(), "alice", "k").await;
    let server = serve(app(&Api::new(store.clone()))).await;
    let routes = [
        (Method::GET, "/api/notifications".to_owned()),
        (Method::GET, "/api/notifications/unread/count".to_owned()),
        (Method::GET, format!("/api/notifications/{id}")),
        (Method::POST, format!("/api/notifications/{id}/read")),
        (Method::POST, "/api/notifications/read-all".to_owned()),
    ];
    for (method, path) in &routes {
        let message = server
            .request(method.clone(), path, None)
            .await
            .error(401, "unauthenticated")
            .to_owned();
        assert!(message.contains("x-user-id"), "{message}");
        server
            .request(method.clone(), path, Some("   "))
            .await
            .error(401, "unauthenticated");
    }
    // Nothing was read.
    assert_eq!(
        server
            .get("/api/notifications/unread/count", "alice")
            .await
            .body["unread"],
        1
    );
}

// ---------------------------------------------------------------- per store

/// A store for one test, and what removes its database afterwards.
struct TestStore {
    store: Arc<dyn NotificationsStore>,
    cleanup: Option<Box<dyn FnOnce() + Send>>,
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(cleanup) = self.cleanup.take() {
            // Drop runs inside the test's runtime, which cannot block on
            // async work: clean up on a thread with its own runtime.
            let _ = std::thread::spawn(cleanup).join();
        }
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

async fn memory_store() -> TestStore {
    TestStore {
        store: Arc::new(MemoryStore::new()),
        cleanup: None,
    }
}

async fn sqlite_store() -> TestStore {
    let store = clarion_sql::SqliteStore::open("sqlite::memory:", &Default::default())
        .await
        .expect("an in-memory SQLite store");
    TestStore {
        store: Arc::new(store),
        cleanup: None,
    }
}

/// A fresh schema in the PostgreSQL test server, dropped after the test.
async fn postgres_store() -> TestStore {
    let (schema, options) = databases::create_postgres_schema().await;
    let store = clarion_sql::PostgresStore::connect_with(options, true)
        .await
        .expect("a PostgreSQL store");
    TestStore {
        store: Arc::new(store),
        cleanup: Some(Box::new(move || {
            block_on(databases::drop_postgres_schema(&schema))
        })),
    }
}

/// A fresh database in the MariaDB test server, dropped after the test.
async fn mysql_store() -> TestStore {
    let (database, options) = databases::create_mysql_database().await;
    let store = clarion_sql::MySqlStore::connect_with(options, true)
        .await
        .expect("a MariaDB store");
    TestStore {
        store: Arc::new(store),
        cleanup: Some(Box::new(move || {
            block_on(databases::drop_mysql_database(&database))
        })),
    }
}

macro_rules! store_suite {
    ($($store:ident => $factory:path;)*) => {$(
        mod $store {
            use super::*;

            #[tokio::test]
            async fn paging_through_500_notifications() {
                let db = $factory().await;
                super::paging_through_500_notifications(db.store.clone()).await
            }
            #[tokio::test]
            async fn owner_isolation() {
                let db = $factory().await;
                super::owner_isolation(db.store.clone()).await
            }
            #[tokio::test]
            async fn read_and_read_all() {
                let db = $factory().await;
                super::read_and_read_all(db.store.clone()).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn requeue_of_a_dead_delivery_is_sent_by_the_dispatcher() {
                let db = $factory().await;
                super::requeue_of_a_dead_delivery_is_sent_by_the_dispatcher(db.store.clone()).await
            }
            #[tokio::test]
            async fn requeue_conflicts_and_unknowns() {
                let db = $factory().await;
                super::requeue_conflicts_and_unknowns(db.store.clone()).await
            }
            #[tokio::test]
            async fn deliveries_filters_paging_and_stats() {
                let db = $factory().await;
                super::deliveries_filters_paging_and_stats(db.store.clone()).await
            }
            #[tokio::test]
            async fn bad_input_gets_a_clear_400() {
                let db = $factory().await;
                super::bad_input_gets_a_clear_400(db.store.clone()).await
            }
            #[tokio::test]
            async fn missing_owner_is_401() {
                let db = $factory().await;
                super::missing_owner_is_401(db.store.clone()).await
            }
        }
    )*};
}

// One line per store.
store_suite! {
    memory => memory_store;
    sqlite => sqlite_store;
    postgres => postgres_store;
    mysql => mysql_store;
}

// ---------------------------------------------------------------- store-independent

#[tokio::test]
async fn unknown_paths_and_wrong_methods_are_json() {
    let server = serve(app(&Api::new(Arc::new(MemoryStore::new())))).await;
    for path in [
        "/api/nope",
        "/api/notifications/a/b/c",
        "/api/admin/nope",
        "/api/admin/deliveries/x/y/z",
    ] {
        let message = server
            .get(path, "alice")
            .await
            .error(404, "unknown_route")
            .to_owned();
        assert!(message.contains(path), "{message}");
    }
    let id = Uuid::now_v7();
    for (method, path, allow) in [
        (Method::DELETE, "/api/notifications".to_owned(), "GET,HEAD"),
        (Method::POST, "/api/notifications".to_owned(), "GET,HEAD"),
        (Method::GET, format!("/api/notifications/{id}/read"), "POST"),
        (
            Method::PUT,
            "/api/notifications/read-all".to_owned(),
            "POST",
        ),
        (Method::POST, "/api/admin/stats".to_owned(), "GET,HEAD"),
        (
            Method::GET,
            format!("/api/admin/deliveries/{id}/requeue"),
            "POST",
        ),
    ] {
        let reply = server.request(method, &path, Some("alice")).await;
        reply.error(405, "method_not_allowed");
        assert_eq!(reply.headers["allow"], allow, "{path}");
    }
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let server = serve(app(&Api::new(Arc::new(MemoryStore::new())))).await;
    let doc: Value = server
        .request(Method::GET, "/openapi.json", None)
        .await
        .body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(path.starts_with("/api/"), "{path}");
        for (method, operation) in item.as_object().unwrap() {
            let concrete = path.replace("{id}", &Uuid::now_v7().to_string());
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let reply = server
                .request(method.clone(), &concrete, Some("alice"))
                .await;
            let code = &reply.body["error"]["code"];
            assert!(
                code != "unknown_route" && code != "method_not_allowed",
                "{method} {path} is documented but not served: {}",
                reply.body
            );
            let documented = operation["responses"]
                .as_object()
                .unwrap()
                .contains_key(reply.status.as_str());
            assert!(
                documented,
                "{method} {path} answered an undocumented {}",
                reply.status
            );
            operations += 1;
        }
    }
    assert_eq!(operations, 9);
}

#[tokio::test]
async fn a_closure_extractor_and_its_rejections() {
    let store: Arc<dyn NotificationsStore> = Arc::new(MemoryStore::new());
    notify(store.as_ref(), "alice", "k").await;
    let api = Api::new(store);
    let inbox = api.inbox(|parts: &Parts| {
        let token = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        async move {
            match token.as_deref() {
                Some("Bearer alice") => Ok("alice".to_owned()),
                Some("Bearer mallory") => Err(Rejection::forbidden("account suspended")),
                Some("Bearer panic") => panic!("a bug in the application's extractor"),
                _ => Err(
                    Rejection::unauthorized("a bearer token is required").with_header(
                        http::header::WWW_AUTHENTICATE,
                        http::HeaderValue::from_static("Bearer"),
                    ),
                ),
            }
        }
    });
    let server = serve(Router::new().nest("/inbox", inbox)).await;
    let send = |token: Option<&'static str>| {
        let mut request = server
            .client
            .get(format!("{}/inbox/notifications/unread/count", server.base));
        if let Some(token) = token {
            request = request.header("authorization", token);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let www = response.headers().get("www-authenticate").cloned();
            let body: Value = response.json().await.unwrap();
            (status, www, body)
        }
    };
    let (status, _, body) = send(Some("Bearer alice")).await;
    assert_eq!((status, body), (200, json!({"unread": 1})));
    let (status, _, body) = send(Some("Bearer mallory")).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, www, body) = send(None).await;
    assert_eq!(status, 401);
    assert_eq!(www.unwrap(), "Bearer");
    assert_eq!(body["error"]["message"], "a bearer token is required");
    // A panicking extractor is a 500 JSON error, and the server keeps serving.
    let (status, _, body) = send(Some("Bearer panic")).await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["code"], "internal");
    let (status, _, _) = send(Some("Bearer alice")).await;
    assert_eq!(status, 200);
}

/// A store whose backend is down; its errors carry a credential-like detail
/// that must never reach a client.
struct BrokenStore {
    retryable: bool,
}

impl BrokenStore {
    fn error(&self) -> StoreError {
        StoreError::backend(
            "connection to postgres://clarion:hunter2@db.internal:5432 refused",
            self.retryable,
        )
    }
}

#[async_trait::async_trait]
impl OutboxStore for BrokenStore {
    async fn enqueue(&self, _: NewNotification) -> Result<Enqueued, StoreError> {
        Err(self.error())
    }
    async fn enqueue_batch(&self, _: Vec<NewNotification>) -> Result<Vec<Enqueued>, StoreError> {
        Err(self.error())
    }
    async fn taken_dedup_keys(
        &self,
        _: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        Err(self.error())
    }
    async fn claim(&self, _: ClaimRequest) -> Result<Vec<Claim>, StoreError> {
        Err(self.error())
    }
    async fn complete(&self, _: Uuid, _: LeaseToken, _: Outcome) -> Result<(), StoreError> {
        Err(self.error())
    }
    async fn requeue(&self, _: Uuid, _: chrono::DateTime<Utc>) -> Result<Requeued, StoreError> {
        Err(self.error())
    }
    async fn delivery(&self, _: Uuid) -> Result<Option<DeliveryRecord>, StoreError> {
        Err(self.error())
    }
    async fn deliveries(
        &self,
        _: &DeliveryFilter,
        _: PageRequest,
    ) -> Result<Page<DeliveryRecord>, StoreError> {
        Err(self.error())
    }
    async fn counts(&self) -> Result<Vec<StatusCount>, StoreError> {
        Err(self.error())
    }
    async fn purge(&self, _: chrono::DateTime<Utc>, _: usize) -> Result<u64, StoreError> {
        Err(self.error())
    }
}

#[async_trait::async_trait]
impl InboxStore for BrokenStore {
    async fn notifications(
        &self,
        _: &str,
        _: PageRequest,
    ) -> Result<Page<Notification>, StoreError> {
        Err(self.error())
    }
    async fn notification(&self, _: &str, _: Uuid) -> Result<Option<Notification>, StoreError> {
        Err(self.error())
    }
    async fn unread_count(&self, _: &str) -> Result<u64, StoreError> {
        Err(self.error())
    }
    async fn mark_read(
        &self,
        _: &str,
        _: Uuid,
        _: chrono::DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Err(self.error())
    }
    async fn mark_all_read(&self, _: &str, _: chrono::DateTime<Utc>) -> Result<u64, StoreError> {
        Err(self.error())
    }
}

#[tokio::test]
async fn store_failures_are_503_or_500_without_internals() {
    let id = Uuid::now_v7();
    let paths = [
        (Method::GET, "/api/notifications".to_owned()),
        (Method::GET, "/api/notifications/unread/count".to_owned()),
        (Method::GET, format!("/api/notifications/{id}")),
        (Method::POST, format!("/api/notifications/{id}/read")),
        (Method::POST, "/api/notifications/read-all".to_owned()),
        (Method::GET, "/api/admin/deliveries".to_owned()),
        (Method::GET, format!("/api/admin/deliveries/{id}")),
        (Method::POST, format!("/api/admin/deliveries/{id}/requeue")),
        (Method::GET, "/api/admin/stats".to_owned()),
    ];
    for (retryable, status, code) in [(true, 503, "store_unavailable"), (false, 500, "internal")] {
        let server = serve(app(&Api::new(Arc::new(BrokenStore { retryable })))).await;
        for (method, path) in &paths {
            let reply = server.request(method.clone(), path, Some("alice")).await;
            reply.error(status, code);
            let text = reply.body.to_string();
            for secret in ["hunter2", "postgres", "db.internal"] {
                assert!(!text.contains(secret), "{path} leaked {secret}: {text}");
            }
            if retryable {
                assert_eq!(reply.headers["retry-after"], "1");
            }
        }
    }
}
