//! Throughput of the webhook channel into a local axum receiver.
//!
//! ```text
//! cargo run --release -p clarion-webhook --example webhook_bench -- [deliveries] [concurrency]
//! ```
//!
//! Posts `deliveries` (default 20000) signed deliveries at `concurrency`
//! (default 64) through one `WebhookChannel`, then the same bodies through a
//! bare `reqwest::Client` at the same concurrency, and prints both rates and
//! their ratio. Everything stays on 127.0.0.1; the run is bounded by the count.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use clarion_core::channel::{Channel, Delivery};
use clarion_core::event::{KeyEvent, ObjectType, RotationFailure, Subject};
use clarion_core::notification::Notification;
use clarion_webhook::{WebhookChannel, WebhookConfig};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn deliveries(n: usize) -> Vec<Delivery> {
    (0..n)
        .map(|i| {
            let event = KeyEvent::rotation_failure(
                Subject::new(format!("key-{i}"), ObjectType::SymmetricKey).named("payments-dek"),
                RotationFailure {
                    error: "HSM unreachable".into(),
                    attempt: 1,
                    next_attempt: None,
                },
            )
            .with_owner("alice")
            .with_label("env", "prod");
            Delivery {
                id: uuid::Uuid::now_v7(),
                channel: "bench".into(),
                attempt: 1,
                notification: Notification::new(event, chrono::Utc::now()),
            }
        })
        .collect()
}

/// Runs `work(i)` for i in 0..n on `concurrency` tasks; returns the elapsed time.
async fn run<F, Fut>(n: usize, concurrency: usize, work: F) -> Duration
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let work = Arc::new(work);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (work, next) = (work.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    work(i).await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker panicked");
    }
    started.elapsed()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map_or(20_000, |a| a.parse().expect("deliveries: a number"));
    let concurrency: usize = args
        .next()
        .map_or(64, |a| a.parse().expect("concurrency: a number"));

    // The receiver: reads the body, answers 204.
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let app = axum::Router::new().fallback(move |_body: Bytes| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::Relaxed);
            axum::http::StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/clarion", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let channel = Arc::new(
        WebhookChannel::from_config(WebhookConfig::new(&url).secret(SECRET)).expect("valid config"),
    );
    let all = Arc::new(deliveries(n));
    let bodies: Arc<Vec<Vec<u8>>> =
        Arc::new(all.iter().map(|d| channel.body(d).unwrap()).collect());

    // Warm up connections on both clients.
    let warm = deliveries(concurrency * 4);
    for d in &warm {
        channel.deliver(d).await.expect("warm-up delivery");
    }
    let raw = reqwest::Client::builder()
        .tls_backend_preconfigured(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        )
        .build()
        .unwrap();
    for _ in 0..concurrency * 4 {
        raw.post(&url).body("{}").send().await.unwrap();
    }
    received.store(0, Ordering::Relaxed);

    let (c, d) = (channel.clone(), all.clone());
    let channel_time = run(n, concurrency, move |i| {
        let (c, d) = (c.clone(), d.clone());
        async move {
            c.deliver(&d[i]).await.expect("delivery failed");
        }
    })
    .await;
    assert_eq!(received.swap(0, Ordering::Relaxed), n);

    let (client, b, u) = (raw.clone(), bodies.clone(), url.clone());
    let raw_time = run(n, concurrency, move |i| {
        let (client, b, u) = (client.clone(), b.clone(), u.clone());
        async move {
            let response = client
                .post(u.as_str())
                .header("content-type", "application/json")
                .body(b[i].clone())
                .send()
                .await
                .expect("raw request failed");
            assert!(response.status().is_success());
            response.bytes().await.unwrap();
        }
    })
    .await;
    assert_eq!(received.load(Ordering::Relaxed), n);

    let channel_rate = n as f64 / channel_time.as_secs_f64();
    let raw_rate = n as f64 / raw_time.as_secs_f64();
    println!(
        "webhook channel: {n} deliveries at concurrency {concurrency} in {:.2} s = {channel_rate:.0} deliveries/s",
        channel_time.as_secs_f64()
    );
    println!(
        "raw reqwest:     {n} POSTs      at concurrency {concurrency} in {:.2} s = {raw_rate:.0} POST/s",
        raw_time.as_secs_f64()
    );
    println!("ratio channel/raw: {:.2}", channel_rate / raw_rate);

    // The channel's own CPU per delivery, without the network: body + signature.
    let started = Instant::now();
    let mut bytes = 0;
    for d in all.iter() {
        let body = channel.body(d).unwrap();
        bytes += channel
            .signature(&d.idempotency_key(), 1_800_000_000, &body)
            .len()
            + body.len();
    }
    let per = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!(
        "body + signature: {per:.1} µs per delivery ({} bytes on average)",
        bytes / n
    );
}
