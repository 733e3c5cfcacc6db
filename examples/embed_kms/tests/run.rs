//! Runs the `embed_kms` binary as a real process on a fresh SQLite file and
//! checks what a KMS vendor would check, over real HTTP: inboxes per owner,
//! unread counts, read-all, the admin API, Prometheus metrics, the failed
//! rotations' notifications, deadline warnings and a clean shutdown.
//!
//! The simulation is bounded (`--ticks`) and seeded (`--seed`), so every run
//! rotates and fails the same keys; nothing here depends on timing.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use clarion::webhook_channel::{DEFAULT_TOLERANCE, WebhookSecret, verify};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const BIN: &str = env!("CARGO_BIN_EXE_embed_kms");

/// Only a hang turns into a failure here; no assertion depends on time.
const BOUND: Duration = Duration::from_secs(120);

struct Kms {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    base: String,
    http: reqwest::Client,
    db: std::path::PathBuf,
}

impl Kms {
    async fn start(args: &[&str]) -> Kms {
        let db = temp_file("db");
        remove_db(&db);
        let mut child = Command::new(BIN)
            .args(["--db", &format!("sqlite://{}", db.display())])
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            // The log channel's deliveries (targets kms::…) would flood the
            // test output; anything else at ERROR still shows.
            .env("RUST_LOG", "error,kms=off")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start embed_kms");
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = next_line(&mut stdout).await;
        let base = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("expected the address first, got {line:?}"))
            .to_owned();
        Kms {
            child,
            stdout,
            base,
            http: reqwest::Client::new(),
            db,
        }
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let mut request = self.http.get(format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("GET");
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn json(&self, path: &str, headers: &[(&str, &str)]) -> Value {
        let (status, body) = self.get(path, headers).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    async fn inbox(&self, owner: &str) -> Vec<Value> {
        let page = self
            .json("/api/notifications?limit=200", &[("x-user-id", owner)])
            .await;
        assert_eq!(page["next_cursor"], Value::Null, "one page holds them all");
        page["items"].as_array().unwrap().clone()
    }

    async fn unread(&self, owner: &str) -> u64 {
        self.json("/api/notifications/unread/count", &[("x-user-id", owner)])
            .await["unread"]
            .as_u64()
            .unwrap()
    }

    /// Waits until the dispatcher has delivered everything (admin stats).
    async fn settled(&self) -> Value {
        tokio::time::timeout(BOUND, async {
            loop {
                let stats = self.json("/api/admin/stats", &[("x-role", "admin")]).await;
                let open = &stats["by_status"];
                if open["pending"] == 0 && open["in_flight"] == 0 {
                    return stats;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("every delivery settles")
    }

    /// SIGTERM, as a service manager sends it; returns the rest of stdout.
    async fn stop(mut self) -> Vec<String> {
        let pid = self.child.id().unwrap().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(killed.success());
        let status = tokio::time::timeout(BOUND, self.child.wait())
            .await
            .expect("embed_kms exits after SIGTERM")
            .unwrap();
        assert!(status.success(), "{status}");
        let mut rest = Vec::new();
        while let Ok(Some(line)) = self.stdout.next_line().await {
            rest.push(line);
        }
        remove_db(&self.db);
        rest
    }
}

async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(BOUND, lines.next_line())
        .await
        .expect("embed_kms prints a line")
        .unwrap()
        .expect("embed_kms exited early")
}

fn temp_file(extension: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "embed-kms-test-{}-{}.{extension}",
        std::process::id(),
        &uuid_like()
    ))
}

/// Unique enough for temporary file names within one test process.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{nanos}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// A webhook receiver on 127.0.0.1 that records every POST and answers 204.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
        let sink = received.clone();
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                sink.lock().unwrap().push((headers, body));
                std::future::ready(StatusCode::NO_CONTENT)
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, received }
    }
}

fn remove_db(db: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

/// `simulation done: 20 ticks, R rotations, F failed rotations` → (R, F).
fn rotations(line: &str) -> (u64, u64) {
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert!(line.starts_with("simulation done: "), "{line}");
    (numbers[1], numbers[2])
}

/// The value of a Prometheus sample line `name{labels} value`.
fn sample(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{series} not in /metrics:\n{metrics}")) as u64
}

fn of_kind<'a>(items: &'a [Value], kind: &str) -> Vec<&'a Value> {
    items.iter().filter(|n| n["kind"] == kind).collect()
}

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_kms_notifies_its_owners() {
    // The built-in configuration, with a signed webhook for failed rotations
    // in front (routes are tried in order; this one continues).
    let receiver = Receiver::start().await;
    let config = temp_file("toml");
    std::fs::write(
        &config,
        format!(
            "[channels.siem]\nkind = \"webhook\"\nurl = \"{}\"\nsecrets = [\"{SECRET}\"]\n\n\
             [[routes]]\nkinds = [\"rotation_failure\"]\nchannels = [\"siem\"]\ncontinue = true\n\n{}",
            receiver.url,
            clarion_example_embed_kms::DEFAULT_CONFIG
        ),
    )
    .unwrap();
    let mut kms = Kms::start(&[
        "--config",
        config.to_str().unwrap(),
        "--ticks",
        "20",
        "--seed",
        "7",
        "--failure-rate",
        "0.25",
    ])
    .await;
    let (rotated, failed) = rotations(&next_line(&mut kms.stdout).await);
    assert!(
        rotated > 0 && failed > 0,
        "seed 7 rotates and fails: {rotated}, {failed}"
    );
    let stats = kms.settled().await;
    assert_eq!(stats["by_status"]["dead"], 0, "{stats}");
    assert!(stats["by_channel"]["audit-log"]["sent"].as_u64().unwrap() > 0);

    // Each owner sees only their own keys' notifications, unread.
    let alice = kms.inbox("alice").await;
    let bob = kms.inbox("bob").await;
    for (owner, items) in [("alice", &alice), ("bob", &bob)] {
        assert!(!items.is_empty(), "{owner} has notifications");
        assert!(
            items
                .iter()
                .all(|n| n["owner"] == owner && n["read"] == false)
        );
        assert_eq!(kms.unread(owner).await, items.len() as u64);
    }
    assert_eq!(kms.inbox("carol").await, Vec::<Value>::new());
    assert_eq!(kms.unread("carol").await, 0);
    let everyone: Vec<Value> = alice.iter().chain(&bob).cloned().collect();

    // Every rotation and every failed attempt was announced, exactly once
    // (the rotation and its notification committed together).
    assert_eq!(of_kind(&everyone, "rotation_success").len() as u64, rotated);
    let failures = of_kind(&everyone, "rotation_failure");
    assert_eq!(failures.len() as u64, failed);
    for failure in &failures {
        assert_eq!(failure["severity"], "critical");
        let error = failure["data"]["error"].as_str().unwrap();
        assert!(error.contains("HSM timed out"), "{error}");
        assert!(failure["data"]["attempt"].as_u64().unwrap() >= 1);
        assert!(failure["data"]["next_attempt"].is_string());
    }

    // The SIEM got each failure once, signed (Standard Webhooks), with the
    // delivery's idempotency key as webhook-id.
    let secret = WebhookSecret::parse(SECRET).unwrap();
    let hooks = receiver.received.lock().unwrap().clone();
    assert_eq!(hooks.len() as u64, failed);
    let mut keys = std::collections::BTreeSet::new();
    let mut notified = std::collections::BTreeSet::new();
    for (headers, body) in &hooks {
        verify(&secret, headers, body, DEFAULT_TOLERANCE).expect("a valid signature");
        let payload: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(payload["type"], "rotation_failure", "{payload}");
        keys.insert(headers["webhook-id"].to_str().unwrap().to_owned());
        notified.insert(payload["data"]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(keys.len(), hooks.len(), "one idempotency key per delivery");
    let in_inboxes: std::collections::BTreeSet<String> = failures
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(notified, in_inboxes, "the webhook and the inboxes agree");
    assert_eq!(stats["by_channel"]["siem"]["sent"], failed);
    std::fs::remove_file(&config).unwrap();

    // The deadline watcher warned before rotations were due: only the
    // tightest threshold per deadline, the last one critical.
    let warnings = of_kind(&everyone, "approaching_deadline");
    assert!(!warnings.is_empty());
    for warning in &warnings {
        let threshold = warning["data"]["threshold_days"].as_u64().unwrap();
        assert!([30, 7, 1].contains(&threshold), "{warning}");
        let critical = warning["severity"] == "critical";
        assert_eq!(critical, threshold == 1, "{warning}");
    }
    let keys: std::collections::BTreeSet<&str> = warnings
        .iter()
        .map(|w| w["subject"]["id"].as_str().unwrap())
        .collect();
    assert!(keys.len() >= 3, "several keys were warned about: {keys:?}");
    assert!(warnings.iter().any(|w| w["severity"] == "critical"));

    // Read-all clears alice's badge and leaves bob's alone.
    let response = kms
        .http
        .post(format!("{}/api/notifications/read-all", kms.base))
        .header("x-user-id", "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let changed: Value = response.json().await.unwrap();
    assert_eq!(changed["changed"], alice.len());
    assert_eq!(kms.unread("alice").await, 0);
    assert_eq!(kms.unread("bob").await, bob.len() as u64);

    // No owner, no inbox; no admin role, no admin API.
    assert_eq!(kms.get("/api/notifications", &[]).await.0, 401);
    assert_eq!(kms.get("/api/admin/stats", &[]).await.0, 403);

    // Prometheus: clarion's counters next to the KMS's own.
    let (status, metrics) = kms.get("/metrics", &[]).await;
    assert_eq!(status, 200);
    let failures_counted = sample(
        &metrics,
        r#"clarion_events_total{kind="rotation_failure",outcome="enqueued"}"#,
    );
    assert_eq!(failures_counted, failed);
    assert_eq!(
        sample(&metrics, r#"kms_rotations_total{result="failed"}"#),
        failed
    );
    assert_eq!(
        sample(&metrics, r#"kms_rotations_total{result="rotated"}"#),
        rotated
    );
    let sent = sample(
        &metrics,
        r#"clarion_deliveries_sent_total{channel="audit-log",kind="rotation_success"}"#,
    );
    assert_eq!(sent, rotated);
    assert!(metrics.contains("clarion_delivery_duration_seconds"));

    let rest = kms.stop().await;
    assert_eq!(
        rest,
        ["shutdown: 0 deliveries finished during the drain, 0 abandoned, 0 left pending"]
    );
}

#[tokio::test]
async fn help_and_bad_options() {
    let help = Command::new(BIN).arg("--help").output().await.unwrap();
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    for expected in ["USAGE", "--ticks", "--seed", "x-user-id", "/metrics"] {
        assert!(text.contains(expected), "--help mentions {expected}");
    }
    let bad = Command::new(BIN)
        .args(["--failure-rate", "1.5"])
        .output()
        .await
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let error = String::from_utf8(bad.stderr).unwrap();
    assert!(error.contains("--failure-rate"), "{error}");
}
