//! The channel conformance suite against the fake Teams Workflows webhook,
//! whose refusals echo its secret path.

use clarion_testkit::channel_suite::ChannelUnderTest;
use clarion_testkit::servers::teams::start_teams;

use clarion_teams as _;

async fn subject() -> ChannelUnderTest {
    let fake = start_teams().await;
    let settings = format!("url = \"{}\"\n[http]\ntimeout = \"2s\"\n", fake.url());
    ChannelUnderTest::from_settings("teams", settings, fake).secrets(["te4msS1gnatureXXXXXXXX"])
}

clarion_testkit::channel_conformance_tests!(subject());
