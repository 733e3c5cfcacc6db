//! Throughput of the SMTP channel into local sinks on 127.0.0.1.
//!
//! ```text
//! cargo run --release -p clarion-smtp --example smtp_bench -- [MESSAGES] [CONNECTIONS]
//! ```
//!
//! Defaults: 2,000 messages over 8 connections, delivered by 64 concurrent
//! callers of `Channel::deliver`. Runs, each printed as msg/s:
//!
//! 1. pooled: `tls = "none"` into postfix's `smtp-sink`;
//! 2. baseline: one connection per message (`pool.idle_timeout = "0s"`),
//!    same sink, same concurrency; and the pooled/baseline ratio;
//! 3. for reference, lettre 0.11's own `AsyncSmtpTransport` with its pool
//!    of the same size and as many callers (no `TCP_NODELAY`: ~45 ms per
//!    message per connection);
//! 4. TLS: `tls = "tls"` through an in-process rustls terminator in front of
//!    the same `smtp-sink` (so the figure is the client's TLS cost, not a
//!    server's), pooled and one connection (and handshake) per message;
//! 5. STARTTLS: `tls = "starttls"` into aiosmtpd (Python), which is the
//!    bottleneck there: read that figure as a floor.
//!
//! smtp-sink and aiosmtpd are installed if missing, as in the tests.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Instant;

use clarion_core::channel::Channel;
use clarion_smtp::SmtpChannel;
use support::*;
use tokio::net::{TcpListener, TcpStream};

async fn run(label: &str, channel: SmtpChannel, messages: usize, callers: usize) -> f64 {
    let channel = Arc::new(channel);
    // Warm up: open the pool's connections (not timed).
    let mut warm = Vec::new();
    for _ in 0..callers.min(8) {
        let channel = channel.clone();
        warm.push(tokio::spawn(async move {
            channel.deliver(&delivery(failure_event())).await
        }));
    }
    for w in warm {
        w.await.unwrap().unwrap();
    }
    let deliveries: Vec<_> = (0..messages).map(|_| delivery(failure_event())).collect();
    let deliveries = Arc::new(deliveries);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let (channel, deliveries, next) = (channel.clone(), deliveries.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(d) = deliveries.get(i) else { break };
                channel.deliver(d).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let rate = messages as f64 / secs;
    println!("{label:<52} {messages:>6} messages in {secs:>7.3} s = {rate:>9.0} msg/s");
    rate
}

fn config(port: u16, tls: &str, connections: usize, idle: &str, extra: &str) -> SmtpChannel {
    channel(&format!(
        "host = \"127.0.0.1\"\nport = {port}\ntls = \"{tls}\"\nallow_insecure = true\n\
         from = \"kms@example.com\"\nto = [\"oncall@example.com\"]\ntimeout = \"30s\"\n\
         pool = {{ max_connections = {connections}, idle_timeout = \"{idle}\" }}\n{extra}"
    ))
}

/// The same message through lettre's `AsyncSmtpTransport` and its pool.
async fn lettre_stock_pool(port: u16, connections: usize, messages: usize, callers: usize) -> f64 {
    use lettre::transport::smtp::PoolConfig;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .pool_config(PoolConfig::new().max_size(connections as u32))
        .build();
    let composer = config(port, "none", 1, "0s", "");
    let message = composer.compose(&delivery(failure_event())).unwrap();
    let envelope = lettre::address::Envelope::new(
        Some("kms@example.com".parse().unwrap()),
        vec!["oncall@example.com".parse().unwrap()],
    )
    .unwrap();
    let shared = Arc::new((transport, envelope, message.raw));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let (shared, next) = (shared.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < messages {
                shared.0.send_raw(&shared.1, &shared.2).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let rate = messages as f64 / secs;
    let label = format!("lettre's own pool, plain, smtp-sink ({connections} connections)");
    println!("{label:<52} {messages:>6} messages in {secs:>7.3} s = {rate:>9.0} msg/s");
    rate
}

/// Terminates TLS on a local port and forwards the bytes to `backend`.
async fn tls_terminator(pki: &Pki, backend: u16) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&pki.cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&pki.key).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                client.set_nodelay(true).unwrap();
                let Ok(mut tls) = acceptor.accept(client).await else {
                    return;
                };
                let mut upstream = TcpStream::connect(("127.0.0.1", backend)).await.unwrap();
                upstream.set_nodelay(true).unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    port
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    install_crypto();
    let mut args = std::env::args().skip(1);
    let messages: usize = args.next().map_or(2000, |a| a.parse().expect("MESSAGES"));
    let connections: usize = args.next().map_or(8, |a| a.parse().expect("CONNECTIONS"));
    let callers = 64;
    println!(
        "clarion-smtp bench: {messages} messages, {connections} pooled connections, {callers} concurrent callers"
    );

    let sink = Sink::start(&[]);
    let pooled = run(
        &format!("pooled, plain, smtp-sink ({connections} connections)"),
        config(sink.port, "none", connections, "60s", ""),
        messages,
        callers,
    )
    .await;
    let baseline = run(
        "one connection per message, plain, smtp-sink",
        config(sink.port, "none", connections, "0s", ""),
        messages,
        callers,
    )
    .await;
    println!(
        "pooled / one-connection-per-message: {:.1}x",
        pooled / baseline
    );
    // lettre's pool bounds idle connections, not concurrent ones: give it as
    // many callers as connections so it uses that many.
    let stock = lettre_stock_pool(sink.port, connections, messages.min(400), connections).await;
    println!("pooled / lettre's own pool: {:.1}x", pooled / stock);

    let pki = Pki::new(&["127.0.0.1"]);
    let tls_port = tls_terminator(&pki, sink.port).await;
    let ca = format!("ca_file = {:?}\n", pki.ca.display().to_string());
    let pooled_tls = run(
        &format!("pooled, implicit TLS, smtp-sink ({connections} connections)"),
        config(tls_port, "tls", connections, "60s", &ca),
        messages,
        callers,
    )
    .await;
    let baseline_tls = run(
        "one connection per message, implicit TLS, smtp-sink",
        config(tls_port, "tls", connections, "0s", &ca),
        messages,
        callers,
    )
    .await;
    println!(
        "TLS pooled / one-connection-per-message: {:.1}x",
        pooled_tls / baseline_tls
    );

    let aio = Aio::start_unrecorded(&[
        "--starttls",
        pki.cert.to_str().unwrap(),
        pki.key.to_str().unwrap(),
    ]);
    run(
        &format!("pooled, STARTTLS, aiosmtpd ({connections} connections)"),
        config(aio.port, "starttls", connections, "60s", &ca),
        messages,
        callers,
    )
    .await;
}
