//! Delivery to a real SMTP server (aiosmtpd on 127.0.0.1, plain `tls = "none"`).

mod support;

use std::sync::Arc;

use clarion_core::channel::Channel;
use clarion_core::event::*;
use support::*;

fn plain(port: u16, extra: &str) -> clarion_smtp::SmtpChannel {
    channel(&format!(
        "host = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nallow_insecure = true\n\
         from = \"KMS alerts <kms-alerts@example.com>\"\nto = [\"oncall@example.com\"]\ntimeout = \"10s\"\n{extra}"
    ))
}

#[tokio::test]
async fn a_message_arrives_with_headers_both_parts_and_escaped_html() {
    let server = Aio::start(&[]);
    let channel = plain(
        server.port,
        "cc = [\"Team <team@example.com>\"]\nbcc = [\"audit@example.com\"]\nreply_to = \"kms@example.com\"\n",
    );
    let event = KeyEvent::rotation_failure(
        Subject::new("key-42", ObjectType::SymmetricKey)
            .named("payments-dek\r\nBcc: attacker@evil.example"),
        RotationFailure {
            error: "HSM unreachable: <script>alert(1)</script> & co".into(),
            attempt: 3,
            next_attempt: Some("2026-11-22T05:10:00Z".parse().unwrap()),
        },
    )
    .with_owner("alice")
    .with_label("env", "prod");
    let d = delivery(event);
    let receipt = channel.deliver(&d).await.unwrap();
    assert!(
        receipt.detail.as_deref().unwrap().starts_with("250 "),
        "{receipt:?}"
    );

    let m = server.only();
    assert!(m.accepted());
    assert_eq!(m.0["mail_from"], "kms-alerts@example.com");
    let mut rcpts = m.rcpt_tos();
    rcpts.sort();
    assert_eq!(
        rcpts,
        [
            "audit@example.com",
            "oncall@example.com",
            "team@example.com"
        ]
    );
    // Headers, as Python's email package reads them.
    assert_eq!(m.header("From"), "KMS alerts <kms-alerts@example.com>");
    assert_eq!(m.header("To"), "oncall@example.com");
    assert_eq!(m.header("Cc"), "Team <team@example.com>");
    assert_eq!(m.header("Reply-To"), "kms@example.com");
    assert!(m.headers("Bcc").is_empty());
    assert_eq!(
        m.header("Message-ID"),
        format!("<{}@example.com>", d.idempotency_key())
    );
    assert_eq!(m.header("X-Clarion-Event-Kind"), "rotation_failure");
    assert_eq!(
        m.header("X-Clarion-Notification-Id"),
        d.notification.id.to_string()
    );
    assert!(!m.header("Date").is_empty());
    let subject = m.header("Subject");
    assert_eq!(
        subject,
        "[clarion] CRITICAL: rotation failed for symmetric key \"payments-dek Bcc: attacker@evil.example\" (key-42)"
    );
    // No injected header line in the raw message.
    assert!(
        !m.raw_headers()
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
        "{}",
        m.raw_headers()
    );
    // multipart/alternative with text, then HTML.
    assert_eq!(m.0["content_type"], "multipart/alternative");
    let types: Vec<_> = m.0["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, ["text/plain", "text/html"]);
    let text = m.part("text/plain");
    assert!(text.contains("Rotation of symmetric key"), "{text}");
    assert!(
        text.contains("Error:          HSM unreachable: <script>alert(1)</script> & co"),
        "{text}"
    );
    assert!(text.contains("Attempt:        3"), "{text}");
    assert!(
        text.contains("Next attempt:   2026-11-22 05:10 UTC"),
        "{text}"
    );
    assert!(text.contains("Owner:          alice"), "{text}");
    assert!(text.contains("Labels:         env=prod"), "{text}");
    let html = m.part("text/html");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("<code>key-42</code>"), "{html}");
}

#[tokio::test]
async fn recipients_from_the_event_label_and_owner_receive_it() {
    let server = Aio::start(&[]);
    let channel = channel(&format!(
        "host = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nallow_insecure = true\nfrom = \"kms@example.com\"\n\
         to_from_label = \"owner_email\"\nto_owner = true\n",
        server.port
    ));
    let event = success_event()
        .with_owner("bob@example.com")
        .with_label("owner_email", "dev@example.com");
    channel.deliver(&delivery(event)).await.unwrap();
    let m = server.only();
    assert_eq!(m.rcpt_tos(), ["dev@example.com", "bob@example.com"]);
    assert_eq!(m.header("To"), "dev@example.com, bob@example.com");
}

#[tokio::test]
async fn connections_are_reused() {
    let server = Aio::start(&[]);
    let channel = plain(server.port, "");
    for _ in 0..3 {
        channel.deliver(&delivery(success_event())).await.unwrap();
    }
    let got = server.received();
    assert_eq!(got.len(), 3);
    assert!(
        got.iter().all(|m| m.peer_port() == got[0].peer_port()),
        "all three over one connection"
    );
}

#[tokio::test]
async fn a_pooled_connection_closed_by_the_server_is_replaced_transparently() {
    let server = Aio::start(&["--close-after-each"]);
    let channel = plain(server.port, "");
    for _ in 0..3 {
        channel.deliver(&delivery(success_event())).await.unwrap();
    }
    let got = server.received();
    assert_eq!(got.len(), 3);
    assert_ne!(got[0].peer_port(), got[1].peer_port());
    assert_ne!(got[1].peer_port(), got[2].peer_port());
}

#[tokio::test]
async fn idle_timeout_zero_keeps_no_connection() {
    let server = Aio::start(&[]);
    let channel = plain(server.port, "pool = { idle_timeout = \"0s\" }\n");
    for _ in 0..2 {
        channel.deliver(&delivery(success_event())).await.unwrap();
    }
    let got = server.received();
    assert_ne!(got[0].peer_port(), got[1].peer_port());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_share_a_bounded_pool() {
    let server = Aio::start(&[]);
    let channel = Arc::new(plain(server.port, "pool = { max_connections = 3 }\n"));
    let mut tasks = Vec::new();
    for i in 0..24 {
        let channel = channel.clone();
        tasks.push(tokio::spawn(async move {
            let event = success_event().with_label("n", i.to_string());
            channel.deliver(&delivery(event)).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let got = server.received();
    assert_eq!(got.len(), 24);
    let mut peers: Vec<u64> = got.iter().map(|m| m.peer_port()).collect();
    peers.sort();
    peers.dedup();
    assert!(
        peers.len() <= 3,
        "at most 3 connections, saw {}",
        peers.len()
    );
}

#[tokio::test]
async fn a_temporary_failure_is_retryable_and_the_retry_keeps_the_message_id() {
    let server = Aio::start(&["--tempfail", "1"]);
    let channel = plain(server.port, "");
    let mut d = delivery(failure_event());
    let err = channel.deliver(&d).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.reason().contains("451"), "{err}");
    d.attempt = 2;
    channel.deliver(&d).await.unwrap();
    let got = server.received();
    assert_eq!(got.len(), 2);
    assert!(!got[0].accepted() && got[1].accepted());
    assert_eq!(got[0].header("Message-ID"), got[1].header("Message-ID"));
    assert_eq!(
        got[1].header("Message-ID"),
        format!("<{}@example.com>", d.idempotency_key())
    );
}

#[tokio::test]
async fn a_refused_recipient_does_not_stop_the_others() {
    let server = Aio::start(&["--reject-rcpt", "gone@example.com"]);
    let channel = plain(server.port, "cc = [\"gone@example.com\"]\n");
    let receipt = channel.deliver(&delivery(failure_event())).await.unwrap();
    let detail = receipt.detail.unwrap();
    assert!(
        detail.contains("refused: gone@example.com (550 5.1.1"),
        "{detail}"
    );
    assert_eq!(server.only().rcpt_tos(), ["oncall@example.com"]);
}

#[tokio::test]
async fn all_recipients_refused_is_permanent() {
    let server = Aio::start(&["--reject-rcpt", "oncall@example.com"]);
    let channel = plain(server.port, "");
    let err = channel
        .deliver(&delivery(failure_event()))
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(err.reason().contains("refused every recipient"), "{err}");
    assert!(err.reason().contains("oncall@example.com (550"), "{err}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn check_connects() {
    let server = Aio::start(&[]);
    plain(server.port, "").check().await.unwrap();
}
