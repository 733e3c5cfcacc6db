//! Webhook throughput: the dispatcher against a raw `reqwest` loop.
//!
//! A local axum receiver on 127.0.0.1 reads each body and answers 204. Then,
//! in one run, [`ROUNDS`] interleaved rounds of:
//!
//! 1. **dispatcher**: [`EVENTS`] events are emitted into a fresh memory
//!    store, then a notifier is started with `delivery.concurrency =
//!    per_channel_concurrency =` [`CONCURRENCY`] and delivers them through a
//!    webhook channel built from configuration (signed Standard Webhooks,
//!    one reqwest client): claims, attempts, records each outcome; timed
//!    from `start` until every delivery is recorded as sent;
//! 2. **channel alone** (for the breakdown): the same channel's `deliver`
//!    called by [`CONCURRENCY`] tasks, no dispatcher, no store;
//! 3. **raw reqwest**: the same bodies POSTed by [`CONCURRENCY`] tasks
//!    sharing one bare `reqwest::Client`: no store, no signature.
//!
//! It prints the best round of each and the ratio dispatcher / raw (the aim
//! is ≥ 0.7). Interleaving and best-of-rounds keep a neighbour's burst of CPU
//! from landing on one side only. Connections are opened (warmed up) before
//! timing. Nothing is asserted about speed; every wait is bounded by
//! [`LIMIT`].

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use clarion::config::Config;
use clarion::event::{KeyEvent, ObjectType, RotationFailure, Subject};
use clarion::memory::MemoryStore;
use clarion::notification::Notification;
use clarion::webhook_channel::{WebhookChannel, WebhookConfig};
use clarion::{Channel, Delivery, EmitOutcome, Notifier};
use tokio::sync::Notify;

/// Events (one delivery each) per side.
pub const EVENTS: usize = 20_000;
/// Requests in flight at once, on both sides.
pub const CONCURRENCY: usize = 64;
/// Interleaved rounds; the best of each side is reported.
pub const ROUNDS: usize = 3;
/// Upper bound for any one phase.
pub const LIMIT: Duration = Duration::from_secs(300);

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WARM_UP: usize = CONCURRENCY * 4;

/// Counts what the receiver got and wakes the bench at a target.
#[derive(Default)]
struct Counter {
    seen: AtomicUsize,
    target: AtomicUsize,
    reached: Notify,
}

impl Counter {
    fn expect(&self, n: usize) {
        self.seen.store(0, Ordering::SeqCst);
        self.target.store(n, Ordering::SeqCst);
    }

    fn hit(&self) {
        if self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.target.load(Ordering::SeqCst) {
            self.reached.notify_one();
        }
    }

    async fn wait(&self, what: &str) {
        let reached = async {
            while self.seen.load(Ordering::SeqCst) < self.target.load(Ordering::SeqCst) {
                self.reached.notified().await;
            }
        };
        if tokio::time::timeout(LIMIT, reached).await.is_err() {
            panic!(
                "{what}: the receiver got {} of {} requests within {LIMIT:?}",
                self.seen.load(Ordering::SeqCst),
                self.target.load(Ordering::SeqCst)
            );
        }
    }
}

pub(crate) fn event(i: usize) -> KeyEvent {
    KeyEvent::rotation_failure(
        Subject::new(format!("key-{i}"), ObjectType::SymmetricKey).named("payments-dek"),
        RotationFailure {
            error: "HSM unreachable".into(),
            attempt: 1,
            next_attempt: None,
        },
    )
    .with_owner(format!("owner-{}", i % 100))
    .with_label("env", "prod")
}

fn delivery(i: usize) -> Delivery {
    Delivery {
        id: uuid::Uuid::now_v7(),
        channel: "bench".into(),
        attempt: 1,
        notification: Notification::new(event(i), chrono::Utc::now()),
    }
}

/// Runs the webhook benchmark and prints its figures.
pub async fn run() {
    let counter = Arc::new(Counter::default());
    let hits = counter.clone();
    let app = axum::Router::new().fallback(move |_body: Bytes| {
        let hits = hits.clone();
        async move {
            hits.hit();
            axum::http::StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a local port for the receiver");
    let url = format!(
        "http://{}/hooks/clarion",
        listener.local_addr().expect("an address")
    );
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("the receiver runs");
    });

    let bench = Bench::new(&url, counter).await;
    let (mut dispatched, mut alone, mut raw) = (Duration::MAX, Duration::MAX, Duration::MAX);
    for _ in 0..ROUNDS {
        dispatched = dispatched.min(bench.dispatcher().await);
        alone = alone.min(bench.channel_alone().await);
        raw = raw.min(bench.raw_reqwest().await);
    }
    server.abort();

    let rate = |d: Duration| EVENTS as f64 / d.as_secs_f64();
    println!(
        "webhook — {EVENTS} events, concurrency {CONCURRENCY}, local axum receiver (204), \
         2 worker threads, best of {ROUNDS} interleaved rounds"
    );
    println!(
        "  dispatch only, queue pre-filled (memory store):    {:.2} s = {:>6.0} deliveries/s",
        dispatched.as_secs_f64(),
        rate(dispatched)
    );
    println!(
        "  the same channel called directly (no dispatcher):  {:.2} s = {:>6.0} deliveries/s",
        alone.as_secs_f64(),
        rate(alone)
    );
    println!(
        "  raw reqwest loop (same bodies, one client):        {:.2} s = {:>6.0} POST/s",
        raw.as_secs_f64(),
        rate(raw)
    );
    println!(
        "  ratio dispatcher / raw: {:.2} (aim ≥ 0.70); channel alone / raw: {:.2}",
        rate(dispatched) / rate(raw),
        rate(alone) / rate(raw)
    );
}

/// What every round reuses: the configuration, the warmed-up channel and
/// client, the bodies.
struct Bench {
    counter: Arc<Counter>,
    config: Config,
    channel: Arc<dyn Channel>,
    deliveries: Arc<Vec<Delivery>>,
    client: reqwest::Client,
    url: String,
    bodies: Arc<Vec<Bytes>>,
}

impl Bench {
    async fn new(url: &str, counter: Arc<Counter>) -> Bench {
        let file = Config::from_toml_str(&format!(
            r#"
[store]
url = "memory://"

[delivery]
concurrency = {CONCURRENCY}
per_channel_concurrency = {CONCURRENCY}

[channels.bench]
kind = "webhook"
url = "{url}"
secrets = ["{SECRET}"]

[[routes]]
channels = ["bench"]
"#
        ))
        .expect("bench config");
        // The channel as the configuration builds it; each round's notifier
        // gets it in code, so its connections stay open between rounds.
        let channel = file
            .build_channels()
            .expect("the webhook channel builds")
            .remove("bench")
            .expect("the bench channel");
        let mut config = file.clone();
        config.channels.clear();

        let deliveries: Arc<Vec<Delivery>> = Arc::new((0..EVENTS).map(delivery).collect());
        let renderer = WebhookChannel::from_config(WebhookConfig::new(url).secret(SECRET))
            .expect("a channel to render bodies");
        let bodies: Arc<Vec<Bytes>> = Arc::new(
            deliveries
                .iter()
                .map(|d| Bytes::from(renderer.body(d).expect("a body")))
                .collect(),
        );

        let client = plain_client();

        let bench = Bench {
            counter,
            config,
            channel,
            deliveries,
            client,
            url: url.to_owned(),
            bodies,
        };
        // Open CONCURRENCY connections on both clients before timing anything.
        bench.counter.expect(WARM_UP);
        concurrently(WARM_UP, bench.deliver()).await;
        bench.counter.wait("channel warm-up").await;
        bench.counter.expect(WARM_UP);
        concurrently(WARM_UP, bench.post()).await;
        bench.counter.wait("raw warm-up").await;
        bench
    }

    /// `deliver(i)` through the channel directly.
    fn deliver(&self) -> impl Fn(usize) -> BoxedUnit + Clone + Send + 'static {
        let (channel, deliveries) = (self.channel.clone(), self.deliveries.clone());
        move |i| {
            let (channel, deliveries) = (channel.clone(), deliveries.clone());
            Box::pin(async move {
                channel.deliver(&deliveries[i]).await.expect("a delivery");
            })
        }
    }

    /// POST body `i` with the bare client.
    fn post(&self) -> impl Fn(usize) -> BoxedUnit + Clone + Send + 'static {
        let (client, url, bodies) = (self.client.clone(), self.url.clone(), self.bodies.clone());
        move |i| {
            let request = client
                .post(url.as_str())
                .header("content-type", "application/json")
                .body(bodies[i].clone());
            Box::pin(async move {
                let response = request.send().await.expect("raw POST");
                assert!(response.status().is_success(), "{}", response.status());
                response.bytes().await.expect("raw response");
            })
        }
    }

    /// Emits everything, then times the dispatcher until all is recorded sent.
    async fn dispatcher(&self) -> Duration {
        let store = Arc::new(MemoryStore::new());
        let notifier = Notifier::builder()
            .config(self.config.clone())
            .shared_store(store.clone())
            .shared_channel("bench", self.channel.clone())
            .build()
            .expect("bench notifier");
        self.counter.expect(EVENTS);
        for i in 0..EVENTS {
            match notifier.emit(&event(i)).await.expect("emit") {
                EmitOutcome::Enqueued { .. } => {}
                other => panic!("emit: {other:?}"),
            }
        }
        let started = Instant::now();
        let running = notifier.start();
        self.counter.wait("dispatcher").await;
        let recorded = crate::until_sent(store.as_ref(), EVENTS);
        tokio::time::timeout(LIMIT, recorded)
            .await
            .expect("every delivery recorded as sent");
        let elapsed = started.elapsed();
        running.shutdown(Duration::from_secs(5)).await;
        elapsed
    }

    /// The channel's `deliver` at the same concurrency, no dispatcher.
    async fn channel_alone(&self) -> Duration {
        self.counter.expect(EVENTS);
        let started = Instant::now();
        concurrently(EVENTS, self.deliver()).await;
        let elapsed = started.elapsed();
        self.counter.wait("channel alone").await;
        elapsed
    }

    /// The same bodies through the bare client at the same concurrency.
    async fn raw_reqwest(&self) -> Duration {
        self.counter.expect(EVENTS);
        let started = Instant::now();
        concurrently(EVENTS, self.post()).await;
        let elapsed = started.elapsed();
        self.counter.wait("raw reqwest").await;
        elapsed
    }
}

/// A bare reqwest client for plain HTTP. reqwest still wants a TLS
/// configuration, so it gets the workspace's ring provider explicitly
/// (nothing process-wide installed).
pub(crate) fn plain_client() -> reqwest::Client {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .expect("a plain HTTP client")
}

pub(crate) type BoxedUnit = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs `work(i)` for every i in 0..n on [`CONCURRENCY`] tasks.
async fn concurrently<F, Fut>(n: usize, work: F)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    concurrently_on(CONCURRENCY, n, work).await
}

/// Runs `work(i)` for every i in 0..n on `tasks` tasks.
pub(crate) async fn concurrently_on<F, Fut>(tasks: usize, n: usize, work: F)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..tasks)
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
        tokio::time::timeout(LIMIT, worker)
            .await
            .expect("the loop finishes in time")
            .expect("a worker panicked");
    }
}
