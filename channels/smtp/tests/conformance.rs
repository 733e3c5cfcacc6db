//! The channel conformance suite against the SMTP channel and a real SMTP
//! server: aiosmtpd on 127.0.0.1 with STARTTLS (a CA and certificate made by
//! the test, trusted through `ca_file`) and AUTH, as an operator's relay
//! would be configured.
//!
//! The peer answers the final `.` of a message as the suite asks: 250
//! (accept), 451 (retryable), 554 (permanent), or never (hang). These are
//! scripted per message in the one server the channel is configured for;
//! postfix's smtp-sink injects faults only for a whole run (its flags), so
//! it cannot play a peer that fails once and then accepts. smtp-sink's
//! faults (4xx / 5xx / 421 at each command) are covered in `faults.rs` and,
//! through the dispatcher, in `dispatcher.rs`.
//!
//! The refusals echo the password back, as a careless relay might, so the
//! check that secrets never reach an error also covers the channel's
//! scrubbing. Declared secrets: the password, and the base64 forms AUTH
//! PLAIN and AUTH LOGIN put on the wire.

mod support;

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clarion_testkit::channel_suite::{ChannelUnderTest, Peer, PeerBehaviour, ReceivedMessage};
use support::{Aio, Pki, install_crypto};

use clarion_smtp as _;

const USER: &str = "clarion";
const PASSWORD: &str = "conf0rmance-pa55word-7d1c";

/// aiosmtpd with STARTTLS and AUTH, and the CA its certificate chains to.
struct SmtpPeer {
    server: Aio,
    _pki: Pki,
}

#[async_trait]
impl Peer for SmtpPeer {
    fn supports(&self, _: PeerBehaviour) -> bool {
        true
    }

    async fn expect(&self, behaviour: PeerBehaviour) {
        let echo = format!("(you sent user {USER} password {PASSWORD})");
        match behaviour {
            PeerBehaviour::Accept => {}
            PeerBehaviour::FailRetryable => self
                .server
                .script_next(&format!("451 4.3.0 Mailbox busy, try again later {echo}")),
            PeerBehaviour::FailPermanent => self
                .server
                .script_next(&format!("554 5.7.1 Message refused by policy {echo}")),
            PeerBehaviour::Hang => self.server.script_next("hang"),
        }
    }

    async fn received(&self) -> Vec<ReceivedMessage> {
        self.server
            .received()
            .into_iter()
            .map(|m| ReceivedMessage {
                idempotency_key: m.headers("Message-ID").into_iter().next(),
                summary: format!(
                    "{} over {} from port {}: {:?} to {:?}",
                    if m.accepted() { "accepted" } else { "refused" },
                    if m.tls() { "TLS" } else { "plain text" },
                    m.peer_port(),
                    m.headers("Subject").first().cloned().unwrap_or_default(),
                    m.rcpt_tos()
                ),
            })
            .collect()
    }
}

async fn subject() -> ChannelUnderTest {
    install_crypto();
    let pki = Pki::new(&["127.0.0.1"]);
    let server = Aio::start(&[
        "--starttls",
        pki.cert.to_str().unwrap(),
        pki.key.to_str().unwrap(),
        "--auth",
        &format!("{USER}:{PASSWORD}"),
    ]);
    let settings = format!(
        r#"
host = "127.0.0.1"
port = {port}
tls = "starttls"
ca_file = {ca:?}
username = "{USER}"
password = "{PASSWORD}"
from = "KMS alerts <kms-alerts@example.com>"
to = ["oncall@example.com"]
timeout = "2s"
"#,
        port = server.port,
        ca = pki.ca.display().to_string(),
    );
    let plain = STANDARD.encode(format!("\0{USER}\0{PASSWORD}"));
    let login = STANDARD.encode(PASSWORD);
    ChannelUnderTest::from_settings("smtp", settings, SmtpPeer { server, _pki: pki })
        .secrets([PASSWORD.to_owned(), plain, login])
        // Below the channel's 2 s timeout: the suite's cancellation ends a
        // hung delivery, not the channel.
        .cancel_after(Duration::from_millis(500))
}

clarion_testkit::channel_conformance_tests!(subject());
