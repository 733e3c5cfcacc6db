//! The channel conformance suite against the webhook channel and a real axum
//! receiver on 127.0.0.1, which can accept (200), refuse temporarily (503),
//! refuse for good (400) or never answer. Its refusals echo the channel's
//! secrets back, as a careless receiver might, so the check that secrets
//! never reach an error also covers the channel's redaction.

mod common;

use async_trait::async_trait;
use clarion_testkit::channel_suite::{ChannelUnderTest, Peer, PeerBehaviour, ReceivedMessage};
use common::{Receiver, Reply, SECRET_A, SECRET_B};

/// A token in the URL's path, as Slack- and Teams-style URLs carry.
const URL_TOKEN: &str = "T0KEN-7f3a9c2e51";
/// The value of a configured `Authorization` header.
const BEARER: &str = "hdr-s3cret-5b1d08";

struct HttpPeer(Receiver);

#[async_trait]
impl Peer for HttpPeer {
    fn supports(&self, _: PeerBehaviour) -> bool {
        true
    }

    async fn expect(&self, behaviour: PeerBehaviour) {
        let echo = format!("saw Bearer {BEARER} at /hooks/{URL_TOKEN} signed with {SECRET_A}");
        match behaviour {
            PeerBehaviour::Accept => {}
            PeerBehaviour::FailRetryable => self
                .0
                .script([Reply::with_body(503, format!("overloaded; {echo}"))]),
            PeerBehaviour::FailPermanent => self
                .0
                .script([Reply::with_body(400, format!("bad request; {echo}"))]),
            PeerBehaviour::Hang => self.0.script([Reply::Hang]),
        }
    }

    async fn received(&self) -> Vec<ReceivedMessage> {
        self.0
            .requests()
            .into_iter()
            .map(|r| ReceivedMessage {
                idempotency_key: r
                    .headers
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                summary: format!("{} {} ({} bytes)", r.method, r.path, r.body.len()),
            })
            .collect()
    }
}

async fn subject() -> ChannelUnderTest {
    let receiver = Receiver::start().await;
    let settings = format!(
        r#"
url = "{url}"
secrets = ["{SECRET_A}", "{SECRET_B}"]
timeout = "2s"

[headers]
Authorization = "Bearer {BEARER}"
"#,
        url = receiver.url(&format!("/hooks/{URL_TOKEN}")),
    );
    let base64 = |s: &'static str| s.trim_start_matches("whsec_");
    ChannelUnderTest::from_settings("webhook", settings, HttpPeer(receiver)).secrets([
        SECRET_A,
        base64(SECRET_A),
        SECRET_B,
        base64(SECRET_B),
        URL_TOKEN,
        BEARER,
    ])
}

clarion_testkit::channel_conformance_tests!(subject());
