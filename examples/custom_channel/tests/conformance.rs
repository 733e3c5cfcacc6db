//! Step 6: the channel conformance suite against a real HTTP receiver on
//! 127.0.0.1 standing in for an ntfy server, which accepts, refuses
//! temporarily (503) or for good (400), or never answers, as the suite asks.
//! Its refusals echo the topic and the token back, as a careless server
//! might, so the check that secrets never leak also covers the channel's
//! redaction.

mod common;

use async_trait::async_trait;
use clarion_testkit::channel_suite::{ChannelUnderTest, Peer, PeerBehaviour, ReceivedMessage};
use common::{Answer, Receiver};

// Step 5, in a test: name the crate so that its registration is linked.
use clarion_ntfy as _;

const TOPIC: &str = "kms-alerts-5d0c7e41";
const TOKEN: &str = "tk_conformance9f8e7d6c5b";

struct NtfyPeer(Receiver);

#[async_trait]
impl Peer for NtfyPeer {
    fn supports(&self, _: PeerBehaviour) -> bool {
        true
    }

    async fn expect(&self, behaviour: PeerBehaviour) {
        let echo = format!("topic {TOPIC}, Bearer {TOKEN}");
        let answer = match behaviour {
            PeerBehaviour::Accept => return,
            PeerBehaviour::FailRetryable => Answer::Status(503, None, format!("busy; {echo}")),
            PeerBehaviour::FailPermanent => Answer::Status(400, None, format!("bad; {echo}")),
            PeerBehaviour::Hang => Answer::Hang,
        };
        self.0.script([answer]);
    }

    async fn received(&self) -> Vec<ReceivedMessage> {
        self.0
            .received()
            .into_iter()
            .map(|request| ReceivedMessage {
                idempotency_key: request
                    .headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                summary: format!("publish {}", request.body["title"]),
            })
            .collect()
    }
}

async fn subject() -> ChannelUnderTest {
    let receiver = Receiver::start().await;
    let settings = format!(
        "server = \"{}\"\ntopic = \"{TOPIC}\"\ntoken = \"{TOKEN}\"\ntimeout = \"2s\"\n",
        receiver.url
    );
    ChannelUnderTest::from_settings("ntfy", settings, NtfyPeer(receiver)).secrets([TOPIC, TOKEN])
}

clarion_testkit::channel_conformance_tests!(subject());
