//! Classification of failures from real peers: postfix's smtp-sink with
//! injected 4xx / 5xx / 421 replies, a server that never greets, and a port
//! nobody listens on.

mod support;

use clarion_core::channel::{Channel, DeliveryError};
use clarion_smtp::{SmtpChannel, SmtpError, Stage};
use support::*;

fn to_port(port: u16, timeout: &str) -> SmtpChannel {
    channel(&format!(
        "host = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nallow_insecure = true\n\
         from = \"kms@example.com\"\nto = [\"oncall@example.com\"]\ntimeout = \"{timeout}\"\n"
    ))
}

async fn deliver_to_sink(flags: &[&str]) -> DeliveryError {
    let sink = Sink::start(flags);
    to_port(sink.port, "10s")
        .deliver(&delivery(failure_event()))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn smtp_sink_accepts_a_message() {
    let sink = Sink::start(&[]);
    let receipt = to_port(sink.port, "10s")
        .deliver(&delivery(failure_event()))
        .await
        .unwrap();
    assert!(
        receipt.detail.unwrap().starts_with("250 "),
        "smtp-sink said 250"
    );
}

#[tokio::test]
async fn rcpt_4xx_is_retryable() {
    let err = deliver_to_sink(&["-r", "RCPT"]).await;
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.reason()
            .contains("refused at RCPT TO:<oncall@example.com>: 450"),
        "{err}"
    );
}

#[tokio::test]
async fn rcpt_5xx_is_permanent() {
    let err = deliver_to_sink(&["-f", "RCPT"]).await;
    assert!(!err.is_retryable(), "{err}");
    assert!(err.reason().contains("refused every recipient"), "{err}");
    assert!(err.reason().contains("(500 5.3.0"), "{err}");
}

#[tokio::test]
async fn rcpt_421_is_retryable() {
    let err = deliver_to_sink(&["-Q", "RCPT"]).await;
    assert!(err.is_retryable(), "{err}");
    assert!(err.reason().contains("421"), "{err}");
}

#[tokio::test]
async fn mail_from_5xx_is_permanent() {
    let err = deliver_to_sink(&["-f", "MAIL"]).await;
    assert!(!err.is_retryable(), "{err}");
    assert!(err.reason().contains("refused at MAIL FROM: 500"), "{err}");
}

#[tokio::test]
async fn data_4xx_is_retryable() {
    let err = deliver_to_sink(&["-r", "DATA"]).await;
    assert!(err.is_retryable(), "{err}");
    assert!(err.reason().contains("refused at DATA: 450"), "{err}");
}

#[tokio::test]
async fn end_of_data_4xx_is_retryable_and_5xx_permanent() {
    let soft = deliver_to_sink(&["-r", "."]).await;
    assert!(soft.is_retryable(), "{soft}");
    assert!(
        soft.reason().contains("sending the message body: 450"),
        "{soft}"
    );
    let hard = deliver_to_sink(&["-f", "."]).await;
    assert!(!hard.is_retryable(), "{hard}");
    assert!(hard.reason().contains("500"), "{hard}");
}

#[tokio::test]
async fn disconnect_without_reply_is_retryable() {
    let err = deliver_to_sink(&["-q", "DATA"]).await;
    assert!(err.is_retryable(), "{err}");
}

#[tokio::test]
async fn a_server_that_never_greets_times_out_as_retryable() {
    let port = silent_server().await;
    let channel = to_port(port, "300ms");
    match channel.send(&delivery(failure_event())).await.unwrap_err() {
        SmtpError::Timeout { stage, after, .. } => {
            assert_eq!(stage, Stage::Greeting);
            assert_eq!(after, std::time::Duration::from_millis(300));
        }
        other => panic!("{other:?}"),
    }
    let err = channel
        .deliver(&delivery(failure_event()))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.reason().contains("greeting"), "{err}");
    let check = channel.check().await.unwrap_err();
    assert!(check.is_retryable(), "{check}");
}

#[tokio::test]
async fn a_refused_connection_is_retryable() {
    let (_socket, port) = closed_port();
    let channel = to_port(port, "10s");
    let err = channel
        .deliver(&delivery(failure_event()))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.reason().starts_with("cannot connect to 127.0.0.1:"),
        "{err}"
    );
}
