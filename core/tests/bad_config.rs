//! The bad-config corpus: every `tests/bad-config/<name>.toml` is a complete
//! configuration file with one mistake, and must be rejected with exactly the
//! message in `<name>.expected` (compared trimmed).
//!
//! A file is loaded with [`Config::from_toml_str_with_env`] and a fixed
//! environment (only `SMTP_PASSWORD` and `WEBHOOK_SECRET` are set), validated
//! (routes included), then its
//! channels are built, so errors of the plugins' constructors are covered too.
//! The plugins are the test-only `fake-email` and `fake-webhook` registered
//! below: integration tests link no channel crate.
//!
//! `BLESS=1 cargo test -p clarion-core --test bad_config` (re)writes the
//! `.expected` files from what the loader says; read every one before
//! committing: each must name the path of the offending value (or the TOML
//! line of a syntax error).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use clarion_core::Config;
use clarion_core::channel::{Channel, Delivery, DeliveryError, Receipt};
use clarion_core::registry::ChannelConfigError;
use schemars::JsonSchema;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The values of the fixed environment; no message may contain them.
const SMTP_PASSWORD: &str = "hunter2-smtp-pw";
const WEBHOOK_SECRET: &str = "whsec_c2VjcmV0LXRlc3Q";

/// The fewest cases the corpus may hold.
const MIN_CASES: usize = 25;

fn env(name: &str) -> Option<String> {
    match name {
        "SMTP_PASSWORD" => Some(SMTP_PASSWORD.into()),
        "WEBHOOK_SECRET" => Some(WEBHOOK_SECRET.into()),
        _ => None,
    }
}

/// `[channels.<name>]` of a `kind = "fake-email"` channel.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FakeEmailConfig {
    host: String,
    #[serde(default = "default_smtp_port")]
    port: u16,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    password: Option<SecretString>,
    from: String,
    to: Vec<String>,
}

fn default_smtp_port() -> u16 {
    587
}

/// `[channels.<name>]` of a `kind = "fake-webhook"` channel.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FakeWebhookConfig {
    url: String,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    secret: Option<SecretString>,
    #[serde(
        default = "default_webhook_timeout",
        deserialize_with = "clarion_core::config::duration::deserialize"
    )]
    #[schemars(with = "String")]
    timeout: Duration,
}

fn default_webhook_timeout() -> Duration {
    Duration::from_secs(10)
}

/// A channel that is never asked to deliver.
#[derive(Debug)]
struct FakeChannel;

#[async_trait]
impl Channel for FakeChannel {
    async fn deliver(&self, _: &Delivery) -> Result<Receipt, DeliveryError> {
        Ok(Receipt::default())
    }
}

fn is_address(s: &str) -> bool {
    s.split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
}

fn build_fake_email(config: FakeEmailConfig) -> Result<FakeChannel, ChannelConfigError> {
    if config.host.trim().is_empty() {
        return Err(ChannelConfigError::field("host", "must not be empty"));
    }
    if config.port == 0 {
        return Err(ChannelConfigError::field("port", "must not be 0"));
    }
    if !is_address(&config.from) {
        return Err(ChannelConfigError::field(
            "from",
            format!("{:?} is not an e-mail address", config.from),
        ));
    }
    if config.to.is_empty() {
        return Err(ChannelConfigError::field(
            "to",
            "list at least one recipient",
        ));
    }
    for (i, to) in config.to.iter().enumerate() {
        if !is_address(to) {
            return Err(ChannelConfigError::field(
                format!("to[{i}]"),
                format!("{to:?} is not an e-mail address"),
            ));
        }
    }
    let has_password = config
        .password
        .as_ref()
        .is_some_and(|p| !p.expose_secret().is_empty());
    if config.username.is_some() != has_password {
        return Err(ChannelConfigError::new(
            "set both `username` and `password`, or neither",
        ));
    }
    Ok(FakeChannel)
}

fn build_fake_webhook(config: FakeWebhookConfig) -> Result<FakeChannel, ChannelConfigError> {
    if !config.url.starts_with("https://") {
        return Err(ChannelConfigError::field(
            "url",
            format!("{:?} is not an https:// URL", config.url),
        ));
    }
    if config
        .secret
        .as_ref()
        .is_some_and(|s| s.expose_secret().len() < 16)
    {
        return Err(ChannelConfigError::field(
            "secret",
            "must be at least 16 characters",
        ));
    }
    if config.timeout.is_zero() {
        return Err(ChannelConfigError::field(
            "timeout",
            "must be longer than 0s",
        ));
    }
    Ok(FakeChannel)
}

clarion_core::register_channel! {
    kind: "fake-email",
    description: "A test-only e-mail channel that checks its settings and sends nothing.",
    config: FakeEmailConfig,
    example: "host = \"smtp.example.com\"\nfrom = \"clarion@example.com\"\nto = [\"ops@example.com\"]\n",
    build: build_fake_email,
}

clarion_core::register_channel! {
    kind: "fake-webhook",
    description: "A test-only webhook channel that checks its settings and posts nothing.",
    config: FakeWebhookConfig,
    example: "url = \"https://hooks.example.com/clarion\"\n",
    build: build_fake_webhook,
}

/// The file every corpus case is a copy of, with one mistake.
const GOOD: &str = r#"
custom_kinds = ["key_compromised"]

[store]
url = "sqlite://clarion.db"
migrate = true
retention = "30d"

[delivery]
concurrency = 32
per_channel_concurrency = 8
batch_size = 50
lease = "2m"
timeout = "30s"
poll_interval = "1s"

[delivery.retry]
initial_backoff = "10s"
max_backoff = "1h"
multiplier = 2.0
jitter = 0.2
max_attempts = 30
max_age = "1day"
max_retry_after = "1h"

[deadlines]
thresholds = [30, 7, 1]
scan_interval = "1h"

[channels.ops-email]
kind = "fake-email"
host = "smtp.example.com"
port = 587
username = "clarion"
password = "${SMTP_PASSWORD}"
from = "clarion@example.com"
to = ["ops@example.com", "security@example.com"]

[channels.audit-hook]
kind = "fake-webhook"
url = "https://hooks.example.com/clarion"
secret = "${WEBHOOK_SECRET}"
timeout = "10s"

[[routes]]
name = "audit everything"
channels = ["audit-hook"]
continue = true

[[routes]]
name = "page on failures"
kinds = ["rotation_failure", "key_compromised"]
min_severity = "warning"
object_types = ["key_pair", "certificate"]
labels = { env = "prod" }
channels = ["ops-email"]

[[routes]]
name = "deadlines"
kinds = ["approaching_deadline"]
owners = ["alice"]
channels = ["ops-email"]
"#;

/// Loads and builds like an application at start-up; the first error, as shown.
fn load(text: &str) -> Result<(), String> {
    let config = Config::from_toml_str_with_env(text, env).map_err(|e| e.to_string())?;
    config.validate().map_err(|e| e.to_string())?;
    config.build_channels().map_err(|e| e.to_string())?;
    Ok(())
}

/// The file names in `dir` ending in `.{ext}`, without it.
fn stems(dir: &Path, ext: &str) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == ext))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_bad_config_is_rejected_with_its_expected_message() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bad-config");
    let bless = std::env::var("BLESS").is_ok_and(|v| v == "1");
    let mut problems = Vec::new();

    // The base is fine, so each case fails for its own mistake only.
    if let Err(e) = load(GOOD) {
        problems.push(format!("the base config in bad_config.rs is rejected: {e}"));
    }

    let tomls = stems(&dir, "toml");
    let expecteds = stems(&dir, "expected");
    for orphan in expecteds.difference(&tomls) {
        problems.push(format!("{orphan}.expected: no {orphan}.toml"));
    }
    if tomls.len() < MIN_CASES {
        problems.push(format!(
            "only {} cases in {}; keep at least {MIN_CASES}",
            tomls.len(),
            dir.display()
        ));
    }

    let mut checked = 0;
    for name in &tomls {
        let toml_path = dir.join(format!("{name}.toml"));
        let expected_path = dir.join(format!("{name}.expected"));
        let text = fs::read_to_string(&toml_path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", toml_path.display()));
        let got = match load(&text) {
            Ok(()) => {
                problems.push(format!("{name}.toml: accepted, but must be rejected"));
                continue;
            }
            Err(message) => message,
        };
        checked += 1;
        if got.contains('\n') {
            problems.push(format!("{name}.toml: the message spans lines: {got}"));
        }
        if got.contains(SMTP_PASSWORD) || got.contains(WEBHOOK_SECRET) {
            problems.push(format!("{name}.toml: the message shows a secret: {got}"));
        }
        if bless {
            fs::write(&expected_path, format!("{got}\n"))
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", expected_path.display()));
            continue;
        }
        match fs::read_to_string(&expected_path) {
            Err(_) => problems.push(format!(
                "{name}.toml: no {name}.expected (BLESS=1 writes it); got:\n    {got}"
            )),
            Ok(expected) if expected.trim() != got.trim() => problems.push(format!(
                "{name}.toml:\n    expected: {}\n    got:      {got}",
                expected.trim()
            )),
            Ok(_) => {}
        }
    }

    assert!(
        problems.is_empty(),
        "{} problem(s) in the bad-config corpus ({checked} of {} files rejected):\n{}",
        problems.len(),
        tomls.len(),
        problems.join("\n")
    );
}
