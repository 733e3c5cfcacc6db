//! The channel conformance suite against the fake Slack webhook, whose
//! refusals echo its secret path.

use clarion_testkit::channel_suite::ChannelUnderTest;
use clarion_testkit::servers::slack::{SLACK_PATH, start_slack};

use clarion_slack as _;

async fn subject() -> ChannelUnderTest {
    let fake = start_slack().await;
    let settings = format!("url = \"{}\"\n[http]\ntimeout = \"2s\"\n", fake.url());
    ChannelUnderTest::from_settings("slack", settings, fake)
        .secrets([SLACK_PATH, "s1ackT0kenXXXXXXXXXXXXX"])
}

clarion_testkit::channel_conformance_tests!(subject());
