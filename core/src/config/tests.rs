//! Unit tests for configuration loading: defaults, durations, `${VAR}`
//! substitution, secrecy, unknown fields, in-code building, validation and
//! the JSON Schema.
//!
//! Core's own tests link no channel crate, so a test-only `test-null` plugin
//! is registered here.

use super::*;
use crate::channel::{Delivery, DeliveryError, Receipt};
use crate::event::{KeyEvent, RotationFailure, Subject};
use crate::registry::ChannelConfigError;
use secrecy::ExposeSecret;
use serde_json::json;

/// Settings of the test-only `test-null` channel.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NullConfig {
    /// Must not be empty when set.
    #[serde(default)]
    greeting: Option<String>,
    /// A token (a real plugin would keep it in a `SecretString`).
    #[serde(default)]
    token: Option<String>,
    /// A port, to have a typed number.
    #[serde(default = "default_port")]
    port: u16,
}

fn default_port() -> u16 {
    25
}

/// A channel that accepts everything and does nothing.
#[derive(Debug)]
struct NullChannel;

#[async_trait::async_trait]
impl Channel for NullChannel {
    async fn deliver(&self, _: &Delivery) -> Result<Receipt, DeliveryError> {
        Ok(Receipt::default())
    }
}

fn build_null(config: NullConfig) -> Result<NullChannel, ChannelConfigError> {
    if config.greeting.as_deref() == Some("") {
        return Err(ChannelConfigError::field("greeting", "must not be empty"));
    }
    if config.token.as_deref() == Some("") {
        return Err(ChannelConfigError::new("an empty token is no token"));
    }
    if config.port == 0 {
        return Err(ChannelConfigError::field("port", "must not be 0"));
    }
    Ok(NullChannel)
}

crate::register_channel! {
    kind: "test-null",
    description: "Accepts every delivery and does nothing (core's unit tests).",
    config: NullConfig,
    example: "greeting = \"hello\"\nport = 2525\n",
    build: build_null,
}

/// No environment variable is set.
fn no_env(_: &str) -> Option<String> {
    None
}

/// A fixed environment.
fn env(name: &str) -> Option<String> {
    match name {
        "TOKEN" => Some("tok-3f9a".into()),
        "DB_PASSWORD" => Some("pg-s3cr3t-pw".into()),
        "OWNER" => Some("alice".into()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

fn parse(toml: &str) -> Config {
    match Config::from_toml_str_with_env(toml, env) {
        Ok(config) => config,
        Err(e) => panic!("config rejected: {e}\n---\n{toml}"),
    }
}

fn error(toml: &str) -> String {
    match Config::from_toml_str_with_env(toml, env) {
        Ok(config) => panic!("config accepted: {config:?}\n---\n{toml}"),
        Err(e) => e.to_string(),
    }
}

/// The error of building the channels of a config that loads.
fn build_error(toml: &str) -> String {
    match parse(toml).build_channels() {
        Ok(built) => panic!("channels built: {built:?}\n---\n{toml}"),
        Err(e) => e.to_string(),
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The defaults documented in `mod.rs`.
fn assert_documented_defaults(config: &Config) {
    assert!(config.custom_kinds.is_empty());

    let store = &config.store;
    assert_eq!(store.url.expose_secret(), "sqlite://clarion.db");
    assert!(store.migrate);
    assert_eq!(store.retention, secs(90 * 86_400));

    let delivery = &config.delivery;
    assert_eq!(delivery.concurrency, 64);
    assert_eq!(delivery.per_channel_concurrency, 16);
    assert_eq!(delivery.batch_size, 100);
    assert_eq!(delivery.lease, secs(120));
    assert_eq!(delivery.timeout, secs(30));
    assert_eq!(delivery.poll_interval, secs(1));

    // "10 s, doubling, capped at 1 h, ±20 % jitter, 30 attempts, 24 h."
    let retry = &delivery.retry;
    assert_eq!(retry.initial_backoff, secs(10));
    assert_eq!(retry.max_backoff, secs(3600));
    assert_eq!(retry.multiplier, 2.0);
    assert_eq!(retry.jitter, 0.2);
    assert_eq!(retry.max_attempts, 30);
    assert_eq!(retry.max_age, secs(86_400));
    assert_eq!(retry.max_retry_after, secs(3600));

    assert_eq!(config.deadlines.thresholds, [30, 7, 1]);
    assert_eq!(config.deadlines.scan_interval, secs(3600));

    assert!(config.channels.is_empty());
    assert!(config.routes.is_empty());
}

#[test]
fn an_empty_file_gets_the_documented_defaults() {
    assert_documented_defaults(&parse(""));
    assert_documented_defaults(&parse("# nothing but a comment\n"));
    // Empty sections are the same as omitted ones.
    assert_documented_defaults(&parse(
        "[store]\n[delivery]\n[delivery.retry]\n[deadlines]\n[channels]\n",
    ));
    assert_documented_defaults(&Config::default());
    Config::default().validate().unwrap();
}

#[test]
fn a_partial_section_keeps_the_other_defaults() {
    let config = parse(
        r#"
        [store]
        migrate = false

        [delivery]
        timeout = "45s"

        [delivery.retry]
        max_attempts = 5

        [deadlines]
        thresholds = [14]
        "#,
    );
    assert!(!config.store.migrate);
    assert_eq!(config.store.url.expose_secret(), "sqlite://clarion.db");
    assert_eq!(config.store.retention, secs(90 * 86_400));

    assert_eq!(config.delivery.timeout, secs(45));
    assert_eq!(config.delivery.lease, secs(120));
    assert_eq!(config.delivery.concurrency, 64);
    assert_eq!(config.delivery.retry.max_attempts, 5);
    assert_eq!(config.delivery.retry.initial_backoff, secs(10));
    assert_eq!(config.delivery.retry.multiplier, 2.0);

    assert_eq!(config.deadlines.thresholds, [14]);
    assert_eq!(config.deadlines.scan_interval, secs(3600));

    // [delivery] without [delivery.retry] keeps the whole default policy.
    let config = parse("[delivery]\nconcurrency = 8\n");
    assert_eq!(config.delivery.concurrency, 8);
    assert_eq!(config.delivery.retry.max_attempts, 30);
    assert_eq!(config.delivery.retry.max_backoff, secs(3600));
}

#[test]
fn route_and_channel_defaults() {
    let config = parse(
        r#"
        [channels.ops]
        kind = "test-null"

        [[routes]]
        channels = ["ops"]
        "#,
    );
    let channel = &config.channels["ops"];
    assert_eq!(channel.kind, "test-null");
    assert!(channel.settings.is_empty());

    let route = &config.routes[0];
    assert_eq!(route.name, None);
    assert_eq!(route.kinds, ["*"]);
    assert_eq!(route.min_severity, None);
    assert!(route.object_types.is_empty());
    assert!(route.owners.is_empty());
    assert!(route.labels.is_empty());
    assert_eq!(route.channels, ["ops"]);
    assert!(!route.continue_matching);

    // Plugin defaults apply when the channel is built.
    let built = config.build_channels().unwrap();
    assert_eq!(built.keys().collect::<Vec<_>>(), ["ops"]);
}

#[test]
fn a_full_file_is_read_field_by_field() {
    let config = parse(FULL_EXAMPLE);
    assert_eq!(
        config.custom_kinds,
        [EventKind::custom("key_compromised").unwrap()]
    );
    assert_eq!(config.store.url.expose_secret(), "memory://");
    assert!(!config.store.migrate);
    assert_eq!(config.store.retention, secs(30 * 86_400));
    assert_eq!(config.delivery.concurrency, 32);
    assert_eq!(config.delivery.per_channel_concurrency, 4);
    assert_eq!(config.delivery.batch_size, 20);
    assert_eq!(config.delivery.retry.multiplier, 1.5);
    assert_eq!(config.delivery.retry.jitter, 0.0);
    assert_eq!(config.deadlines.thresholds, [1, 30, 7]);

    let ops = &config.channels["ops"];
    assert_eq!(ops.kind, "test-null");
    assert_eq!(
        serde_json::Value::Object(ops.settings.clone()),
        json!({ "greeting": "hello", "port": 2525 })
    );

    let route = &config.routes[1];
    assert_eq!(route.name.as_deref(), Some("page on failures"));
    assert_eq!(route.kinds, ["rotation_failure", "key_compromised"]);
    assert_eq!(route.min_severity, Some(Severity::Warning));
    assert_eq!(
        route.object_types,
        [ObjectType::KeyPair, ObjectType::Certificate]
    );
    assert_eq!(route.owners, ["alice"]);
    assert_eq!(route.labels["env"], "prod");
    assert_eq!(route.channels, ["ops", "audit"]);
    assert!(config.routes[0].continue_matching);
    assert!(!route.continue_matching);

    assert_eq!(config.build_channels().unwrap().len(), 2);
    config.router().unwrap();
}

#[test]
fn durations_are_humantime() {
    let config = parse(
        r#"
        [store]
        retention = "30d"

        [delivery]
        lease = "2h"
        timeout = "1m 30s"
        poll_interval = "250ms"

        [delivery.retry]
        initial_backoff = "1s"
        max_backoff = "1h 30min"
        max_age = "2days"
        max_retry_after = "15m"

        [deadlines]
        scan_interval = "1week"
        "#,
    );
    assert_eq!(config.store.retention, secs(30 * 86_400));
    assert_eq!(config.delivery.lease, secs(7200));
    assert_eq!(config.delivery.timeout, secs(90));
    assert_eq!(config.delivery.poll_interval, Duration::from_millis(250));
    let retry = &config.delivery.retry;
    assert_eq!(retry.initial_backoff, secs(1));
    assert_eq!(retry.max_backoff, secs(5400));
    assert_eq!(retry.max_age, secs(2 * 86_400));
    assert_eq!(retry.max_retry_after, secs(900));
    assert_eq!(config.deadlines.scan_interval, secs(7 * 86_400));
}

#[test]
fn a_bad_duration_names_its_path() {
    assert_eq!(
        error("[delivery]\ntimeout = \"soon\"\n"),
        "delivery.timeout: invalid duration \"soon\" (expected number at 0); write e.g. \"30s\", \"5m\", \"1h 30m\" or \"7days\""
    );
    assert_eq!(
        error("[delivery.retry]\nmax_age = \"3 fortnights\"\n"),
        "delivery.retry.max_age: invalid duration \"3 fortnights\" (unknown time unit \"fortnights\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)); write e.g. \"30s\", \"5m\", \"1h 30m\" or \"7days\""
    );
    // A bare number is not a duration: the unit would be a guess.
    assert_eq!(
        error("[store]\nretention = 30\n"),
        "store.retention: invalid type: integer `30`, expected a duration string (write e.g. \"30s\", \"5m\", \"1h 30m\" or \"7days\")"
    );
}

#[test]
fn env_vars_are_substituted_in_channel_settings_and_the_store_url() {
    let config = parse(
        r#"
        [store]
        url = "postgres://clarion:${DB_PASSWORD}@db.internal/clarion"

        [channels.ops]
        kind = "test-null"
        token = "${TOKEN}"
        greeting = "hello ${OWNER}${EMPTY}, it costs $5; literal $${TOKEN} and $${"

        [[routes]]
        owners = ["bob", "${OWNER}"]
        channels = ["ops"]
        "#,
    );
    assert_eq!(
        config.store.url.expose_secret(),
        "postgres://clarion:pg-s3cr3t-pw@db.internal/clarion"
    );
    let settings = &config.channels["ops"].settings;
    assert_eq!(settings["token"], "tok-3f9a");
    assert_eq!(
        settings["greeting"],
        "hello alice, it costs $5; literal ${TOKEN} and ${"
    );
    assert_eq!(config.routes[0].owners, ["bob", "alice"]);
    config.build_channels().unwrap();
}

#[test]
fn env_vars_are_looked_up_only_in_values() {
    // Comments and keys are not substituted; a variable used nowhere is not needed.
    let config = parse(
        r#"
        # password = "${NOT_SET}"
        [channels.ops]
        kind = "test-null"
        "#,
    );
    assert!(config.channels.contains_key("ops"));
    // A value that is not a string is never substituted.
    let config = parse("[channels.ops]\nkind = \"test-null\"\nport = 2525\n");
    assert_eq!(config.channels["ops"].settings["port"], 2525);
}

#[test]
fn a_missing_env_var_names_the_path_and_the_variable() {
    assert_eq!(
        error("[channels.ops]\nkind = \"test-null\"\ntoken = \"${API_TOKEN}\"\n"),
        "channels.ops.token: environment variable API_TOKEN is not set"
    );
    assert_eq!(
        error("[store]\nurl = \"postgres://clarion:${PG_PASSWORD}@db/clarion\"\n"),
        "store.url: environment variable PG_PASSWORD is not set"
    );
    assert_eq!(
        error(
            "[channels.ops]\nkind = \"test-null\"\n\n\
             [[routes]]\nchannels = [\"ops\"]\n\n\
             [[routes]]\nowners = [\"${OWNER}\", \"${TEAM}\"]\nchannels = [\"ops\"]\n"
        ),
        "routes[1].owners[1]: environment variable TEAM is not set"
    );
    // Nothing is looked up in the process environment by `_with_env`.
    let e = Config::from_toml_str_with_env("[store]\nurl = \"${PATH}\"\n", no_env).unwrap_err();
    assert_eq!(
        e.to_string(),
        "store.url: environment variable PATH is not set"
    );
    assert_eq!(e.path(), Some("store.url"));
}

#[test]
fn a_bad_reference_names_the_path() {
    assert_eq!(
        error("[store]\nurl = \"postgres://${DB_PASSWORD@db\"\n"),
        "store.url: unterminated \"${\" (write \"$${\" for a literal \"${\")"
    );
    assert_eq!(
        error("[channels.ops]\nkind = \"test-null\"\ntoken = \"${}\"\n"),
        "channels.ops.token: invalid environment variable name \"\" in \"${}\" \
         (use letters, digits and '_'; write \"$${\" for a literal \"${\")"
    );
}

#[test]
fn the_store_url_never_shows_in_debug() {
    let config = parse(
        r#"
        [store]
        url = "postgres://clarion:${DB_PASSWORD}@db.internal/clarion"
        "#,
    );
    let debug = format!("{config:?}");
    assert!(!debug.contains("pg-s3cr3t-pw"), "secret in Debug: {debug}");
    assert!(
        !debug.contains("db.internal"),
        "store URL in Debug: {debug}"
    );
    assert!(debug.contains("[REDACTED]"), "{debug}");
    let pretty = format!("{config:#?}");
    assert!(!pretty.contains("pg-s3cr3t-pw"));
    assert!(!format!("{:?}", config.store).contains("pg-s3cr3t-pw"));

    // Nor in a later error of the same file.
    let e = Config::from_toml_str_with_env(
        "[store]\nurl = \"postgres://clarion:${DB_PASSWORD}@db/clarion\"\n\
         [delivery]\nconcurrency = 0\n",
        env,
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "delivery.concurrency: must be at least 1");
    assert!(!format!("{e:?}").contains("pg-s3cr3t-pw"));
}

#[test]
fn unknown_fields_are_rejected_with_their_path() {
    let unknown = |toml: &str| {
        let message = error(toml);
        // Only the part before the list of expected fields.
        message
            .split(", expected")
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(
        unknown("log_level = \"debug\"\n"),
        "log_level: unknown field `log_level`"
    );
    assert_eq!(
        unknown("[store]\npath = \"clarion.db\"\n"),
        "store.path: unknown field `path`"
    );
    assert_eq!(
        unknown("[delivery]\nretries = 3\n"),
        "delivery.retries: unknown field `retries`"
    );
    assert_eq!(
        unknown("[delivery.retry]\nmax_retries = 3\n"),
        "delivery.retry.max_retries: unknown field `max_retries`"
    );
    assert_eq!(
        unknown("[deadlines]\nthreshold = [7]\n"),
        "deadlines.threshold: unknown field `threshold`"
    );
    assert_eq!(
        unknown(
            "[channels.ops]\nkind = \"test-null\"\n[[routes]]\nchannels = [\"ops\"]\n\
             severity = \"critical\"\n"
        ),
        "routes[0].severity: unknown field `severity`"
    );
    // The full message lists what is allowed.
    assert_eq!(
        error("[delivery]\nretries = 3\n"),
        "delivery.retries: unknown field `retries`, expected one of `concurrency`, \
         `per_channel_concurrency`, `batch_size`, `lease`, `timeout`, `poll_interval`, `retry`"
    );
}

#[test]
fn unknown_channel_settings_are_rejected_when_built() {
    // The plugin owns its settings: loading keeps them, building rejects them.
    assert_eq!(
        build_error("[channels.ops]\nkind = \"test-null\"\ngreting = \"hi\"\n"),
        "channels.ops.greting: unknown field `greting`, expected one of `greeting`, `token`, `port`"
    );
    assert_eq!(
        build_error("[channels.ops]\nkind = \"test-null\"\nport = \"abc\"\n"),
        "channels.ops.port: invalid type: string \"abc\", expected u16"
    );
    assert_eq!(
        build_error("[channels.ops]\nkind = \"test-null\"\nport = 0\n"),
        "channels.ops.port: must not be 0"
    );
    assert_eq!(
        build_error("[channels.ops]\nkind = \"test-null\"\ntoken = \"${EMPTY}\"\n"),
        "channels.ops: an empty token is no token"
    );
}

#[test]
fn channel_tables_need_a_string_kind() {
    assert_eq!(
        error("[channels.ops]\nport = 25\n"),
        "channels.ops: missing field `kind`"
    );
    assert_eq!(
        error("[channels.ops]\nkind = 7\n"),
        "channels.ops.kind: invalid type: integer `7`, expected a string"
    );
    assert_eq!(
        error("[channels]\nops = \"test-null\"\n"),
        "channels.ops: invalid type: string \"test-null\", expected a channel table with a `kind`"
    );
}

#[test]
fn building_in_code() {
    let mut config = Config::default();
    config
        .add_channel(
            "ops",
            ChannelConfig::new("test-null", json!({ "port": 2525 })),
        )
        .unwrap()
        .add_channel(
            "audit",
            ChannelConfig::new("test-null", serde_json::Value::Null),
        )
        .unwrap();
    assert!(config.channels["audit"].settings.is_empty());
    assert_eq!(config.channels["ops"].settings["port"], 2525);

    let e = config
        .add_channel("ops", ChannelConfig::new("test-null", json!({})))
        .unwrap_err();
    assert_eq!(e.to_string(), "channels.ops: duplicate channel name");
    assert_eq!(e.path(), Some("channels.ops"));
    // The first definition is kept.
    assert_eq!(config.channels["ops"].settings["port"], 2525);

    config
        .add_route(RouteConfig::to(["audit"]).and_continue())
        .add_route(
            RouteConfig::to(["ops"])
                .kinds([EventKind::RotationFailure])
                .min_severity(Severity::Critical),
        );
    assert_eq!(config.routes.len(), 2);
    assert_eq!(config.routes[1].kinds, ["rotation_failure"]);
    config.validate().unwrap();

    let built = config.build_channels().unwrap();
    assert_eq!(built.keys().collect::<Vec<_>>(), ["audit", "ops"]);

    let failure = KeyEvent::rotation_failure(
        Subject::new("k1", ObjectType::KeyPair),
        RotationFailure {
            error: "HSM down".into(),
            attempt: 1,
            next_attempt: None,
        },
    );
    assert_eq!(config.router().unwrap().route(&failure), ["audit", "ops"]);

    // A route to a channel that does not exist is caught by validate().
    config.add_route(RouteConfig::to(["pager"]));
    assert_eq!(
        config.validate().unwrap_err().to_string(),
        "routes[2].channels[0]: unknown channel \"pager\" (configured channels: audit, ops)"
    );
}

#[test]
fn in_code_channels_are_validated_like_the_file() {
    let mut config = Config::default();
    config
        .add_channel("Ops", ChannelConfig::new("test-null", json!({})))
        .unwrap();
    assert_eq!(
        config.validate().unwrap_err().to_string(),
        "channels.\"Ops\": a channel name is 1-64 characters of a-z, 0-9, '-' and '_'"
    );

    let mut config = Config::default();
    config
        .add_channel(
            "ops",
            ChannelConfig::new("test-null", json!({ "port": "x" })),
        )
        .unwrap();
    config.validate().unwrap();
    assert_eq!(
        config.build_channels().unwrap_err().to_string(),
        "channels.ops.port: invalid type: string \"x\", expected u16"
    );
}

#[test]
fn an_unlinked_kind_says_how_to_link_it() {
    let mut config = Config::default();
    config
        .add_channel("pager", ChannelConfig::new("pager-duty", json!({})))
        .unwrap();
    let e = config.validate().unwrap_err();
    assert_eq!(e.path(), Some("channels.pager.kind"));
    let message = e.to_string();
    assert!(
        message.starts_with(
            "channels.pager.kind: no channel plugin of kind \"pager-duty\" is linked into this \
             program (registered kinds: "
        ),
        "{message}"
    );
    assert!(message.contains("test-null"), "{message}");
    assert!(
        message.ends_with(
            "add the crate that provides it (e.g. `clarion_pager_duty`) to Cargo.toml and link \
             it with `use clarion_pager_duty as _;` in your binary: a crate that is only a \
             dependency is not linked, so its registration is invisible"
        ),
        "{message}"
    );
    // build_channels() runs the same audit.
    assert_eq!(config.build_channels().unwrap_err().to_string(), message);

    // A stock kind points at the facade's feature.
    let message = error("[channels.mail]\nkind = \"smtp\"\n");
    assert!(message.starts_with("channels.mail.kind: "), "{message}");
    assert!(
        message.ends_with(
            "enable the `smtp` feature of the `clarion` crate, or add `clarion_smtp` to \
             Cargo.toml and link it with `use clarion_smtp as _;`"
        ),
        "{message}"
    );
}

/// `validate()` on a default config changed by `change`.
fn invalid(change: impl FnOnce(&mut Config)) -> String {
    let mut config = Config::default();
    config
        .add_channel("ops", ChannelConfig::new("test-null", json!({})))
        .unwrap();
    config.add_route(RouteConfig::to(["ops"]));
    config.validate().expect("the base config is valid");
    change(&mut config);
    match config.validate() {
        Ok(()) => panic!("accepted: {config:?}"),
        Err(e) => e.to_string(),
    }
}

/// `validate()` accepts a default config changed by `change`.
fn valid(change: impl FnOnce(&mut Config)) {
    let mut config = Config::default();
    change(&mut config);
    if let Err(e) = config.validate() {
        panic!("rejected: {e}");
    }
}

#[test]
fn validate_checks_delivery_numbers() {
    assert_eq!(
        invalid(|c| c.delivery.concurrency = 0),
        "delivery.concurrency: must be at least 1"
    );
    assert_eq!(
        invalid(|c| c.delivery.per_channel_concurrency = 0),
        "delivery.per_channel_concurrency: must be at least 1"
    );
    assert_eq!(
        invalid(|c| c.delivery.batch_size = 0),
        "delivery.batch_size: must be at least 1"
    );
    assert_eq!(
        invalid(|c| c.delivery.timeout = Duration::ZERO),
        "delivery.timeout: must be longer than 0s"
    );
    assert_eq!(
        invalid(|c| c.delivery.lease = Duration::ZERO),
        "delivery.lease: must be longer than 0s"
    );
    assert_eq!(
        invalid(|c| c.delivery.poll_interval = Duration::ZERO),
        "delivery.poll_interval: must be longer than 0s"
    );
    assert_eq!(
        invalid(|c| c.delivery.lease = c.delivery.timeout),
        "delivery.lease: must be longer than delivery.timeout (30s), or a slow delivery's \
         claim expires while it is still running and it is sent twice"
    );
    assert_eq!(
        invalid(|c| {
            c.delivery.timeout = secs(150);
            c.delivery.lease = secs(90);
        }),
        "delivery.lease: must be longer than delivery.timeout (2m 30s), or a slow delivery's \
         claim expires while it is still running and it is sent twice"
    );
    valid(|c| c.delivery.lease = c.delivery.timeout + Duration::from_millis(1));
    valid(|c| c.delivery.concurrency = 1);
}

#[test]
fn validate_checks_the_retry_policy() {
    assert_eq!(
        invalid(|c| c.delivery.retry.max_attempts = 0),
        "delivery.retry.max_attempts: must be at least 1"
    );
    assert_eq!(
        invalid(|c| c.delivery.retry.multiplier = 0.5),
        "delivery.retry.multiplier: must be a number ≥ 1, got 0.5"
    );
    assert_eq!(
        invalid(|c| c.delivery.retry.multiplier = f64::NAN),
        "delivery.retry.multiplier: must be a number ≥ 1, got NaN"
    );
    assert_eq!(
        invalid(|c| c.delivery.retry.multiplier = f64::INFINITY),
        "delivery.retry.multiplier: must be a number ≥ 1, got inf"
    );
    assert_eq!(
        invalid(|c| c.delivery.retry.jitter = 1.5),
        "delivery.retry.jitter: must be between 0 and 1, got 1.5"
    );
    assert_eq!(
        invalid(|c| c.delivery.retry.jitter = -0.1),
        "delivery.retry.jitter: must be between 0 and 1, got -0.1"
    );
    assert_eq!(
        invalid(|c| c.delivery.retry.jitter = f64::NAN),
        "delivery.retry.jitter: must be between 0 and 1, got NaN"
    );
    assert_eq!(
        invalid(|c| c.delivery.retry.initial_backoff = Duration::ZERO),
        "delivery.retry.initial_backoff: must be longer than 0s"
    );
    assert_eq!(
        invalid(|c| c.delivery.retry.max_backoff = secs(5)),
        "delivery.retry.max_backoff: must not be shorter than delivery.retry.initial_backoff"
    );
    // The bounds themselves are fine.
    valid(|c| c.delivery.retry.multiplier = 1.0);
    valid(|c| c.delivery.retry.jitter = 0.0);
    valid(|c| c.delivery.retry.jitter = 1.0);
    valid(|c| c.delivery.retry.max_attempts = 1);
    valid(|c| c.delivery.retry.max_backoff = c.delivery.retry.initial_backoff);
}

#[test]
fn validate_checks_deadlines() {
    assert_eq!(
        invalid(|c| c.deadlines.thresholds.clear()),
        "deadlines.thresholds: list at least one threshold (days before the deadline)"
    );
    assert_eq!(
        invalid(|c| c.deadlines.thresholds = vec![30, 0]),
        "deadlines.thresholds[1]: a threshold must be at least 1 day"
    );
    assert_eq!(
        invalid(|c| c.deadlines.thresholds = vec![30, 7, 30]),
        "deadlines.thresholds[2]: 30 is listed twice"
    );
    assert_eq!(
        invalid(|c| c.deadlines.scan_interval = Duration::ZERO),
        "deadlines.scan_interval: must be longer than 0s"
    );
    valid(|c| c.deadlines.thresholds = vec![1, 90, 14]);
}

#[test]
fn validate_checks_names_and_kinds() {
    assert_eq!(
        invalid(|c| c.custom_kinds = vec![EventKind::RotationFailure]),
        "custom_kinds[0]: \"rotation_failure\" is a built-in kind; list only custom kinds here"
    );
    for bad in ["Ops", "ops log", "ops.log", "", &"x".repeat(65)] {
        let message = invalid(|c| {
            c.channels
                .insert(bad.to_owned(), ChannelConfig::new("test-null", json!({})));
        });
        assert_eq!(
            message,
            format!("channels.{bad:?}: a channel name is 1-64 characters of a-z, 0-9, '-' and '_'")
        );
    }
    valid(|c| {
        let name = format!("ops_log-2{}", "x".repeat(55));
        assert_eq!(name.len(), 64);
        c.channels
            .insert(name, ChannelConfig::new("test-null", json!({})));
    });
}

#[test]
fn validate_checks_routes() {
    assert_eq!(
        invalid(|c| c.routes[0].channels.clear()),
        "routes[0].channels: a route must name at least one channel"
    );
    assert_eq!(
        invalid(|c| c.routes[0].kinds.clear()),
        "routes[0].kinds: list at least one event kind, or \"*\" for every kind"
    );
    assert_eq!(
        invalid(|c| c.routes[0].kinds.push("rotation_failure".into())),
        "routes[0].kinds: \"*\" already takes every kind; list it alone"
    );
    assert_eq!(
        invalid(|c| c.routes[0].kinds = vec!["rotation_failure".into(), "Oops!".into()]),
        "routes[0].kinds[1]: invalid event kind \"Oops!\": use 1-64 characters of a-z, 0-9, \
         '_', '.', '-', starting with a letter"
    );
    assert_eq!(
        invalid(|c| c.routes[0].kinds = vec!["key_compromised".into()]),
        "routes[0].kinds[0]: unknown event kind \"key_compromised\": the built-in kinds are \
         rotation_success, rotation_failure and approaching_deadline; declare custom kinds in \
         `custom_kinds`"
    );
    valid(|c| {
        c.custom_kinds = vec![EventKind::custom("key_compromised").unwrap()];
        c.add_channel("ops", ChannelConfig::new("test-null", json!({})))
            .unwrap();
        c.add_route(RouteConfig::to(["ops"]).kinds([
            EventKind::custom("key_compromised").unwrap(),
            EventKind::ApproachingDeadline,
        ]));
    });
}

#[test]
fn syntax_errors_give_line_and_column() {
    let e = Config::from_toml_str_with_env("[store]\nurl = \"sqlite://x\n", env).unwrap_err();
    assert!(matches!(e, ConfigError::Syntax { line: 2, .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("TOML syntax error at line 2, column "),
        "{e}"
    );
    assert_eq!(e.path(), None);
}

/// A file using every section, valid for the loader and for the schema.
const FULL_EXAMPLE: &str = r#"
custom_kinds = ["key_compromised"]

[store]
url = "memory://"
migrate = false
retention = "30d"

[delivery]
concurrency = 32
per_channel_concurrency = 4
batch_size = 20
lease = "5m"
timeout = "20s"
poll_interval = "500ms"

[delivery.retry]
initial_backoff = "5s"
max_backoff = "30m"
multiplier = 1.5
jitter = 0.0
max_attempts = 12
max_age = "12h"
max_retry_after = "10m"

[deadlines]
thresholds = [1, 30, 7]
scan_interval = "15m"

[channels.ops]
kind = "test-null"
greeting = "hello"
port = 2525

[channels.audit]
kind = "test-null"

[[routes]]
name = "audit everything"
channels = ["audit"]
continue = true

[[routes]]
name = "page on failures"
kinds = ["rotation_failure", "key_compromised"]
min_severity = "warning"
object_types = ["key_pair", "certificate"]
owners = ["alice"]
labels = { env = "prod", team = "*" }
channels = ["ops", "audit"]
"#;

fn toml_to_json(toml: &str) -> serde_json::Value {
    let value: toml::Value = toml::from_str(toml).unwrap();
    serde_json::to_value(value).unwrap()
}

fn schema_errors(validator: &jsonschema::Validator, instance: &serde_json::Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect()
}

#[test]
fn the_json_schema_is_valid_draft_2020_12() {
    let schema = json_schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["title"], "clarion configuration");
    if let Err(e) = jsonschema::meta::validate(&schema) {
        panic!("not a valid JSON Schema: {e} at {}", e.instance_path);
    }
    jsonschema::validator_for(&schema).unwrap();
    // The linked plugin is described under `channels`.
    let per_kind = schema["properties"]["channels"]["additionalProperties"]["oneOf"]
        .as_array()
        .unwrap();
    let null = per_kind
        .iter()
        .find(|s| s["properties"]["kind"]["const"] == "test-null")
        .expect("test-null in the schema");
    assert_eq!(null["title"], "test-null channel");
    assert_eq!(null["required"][0], "kind");
}

#[test]
fn the_json_schema_shows_duration_defaults_as_the_file_writes_them() {
    let schema = json_schema();
    let delivery = &schema["properties"]["delivery"]["properties"];
    assert_eq!(delivery["lease"]["default"], "2m");
    assert_eq!(delivery["retry"]["properties"]["max_age"]["default"], "1d");
    // Every duration default the schema shows parses back to the built-in one.
    let retention = &schema["properties"]["store"]["properties"]["retention"]["default"];
    let defaults = serde_json::json!({
        "delivery": {
            "lease": delivery["lease"]["default"],
            "retry": { "max_age": delivery["retry"]["properties"]["max_age"]["default"] },
        },
        "store": { "retention": retention },
    });
    let config: Config = serde_json::from_value(defaults).unwrap();
    let built_in = Config::default();
    assert_eq!(config.delivery.lease, built_in.delivery.lease);
    assert_eq!(
        config.delivery.retry.max_age,
        built_in.delivery.retry.max_age
    );
    assert_eq!(config.store.retention, built_in.store.retention);
    assert!(!serde_json::to_string(&schema).unwrap().contains("\"secs\""));
}

#[test]
fn the_json_schema_accepts_a_full_file() {
    let validator = jsonschema::validator_for(&json_schema()).unwrap();
    let instance = toml_to_json(FULL_EXAMPLE);
    assert_eq!(schema_errors(&validator, &instance), Vec::<String>::new());
    assert!(validator.is_valid(&toml_to_json("")));

    // Every linked plugin's example is valid, for the schema and for the plugin.
    for plugin in registry::plugins() {
        let toml = format!(
            "[channels.x]\nkind = \"{}\"\n{}",
            plugin.kind, plugin.example
        );
        let instance = toml_to_json(&toml);
        assert_eq!(
            schema_errors(&validator, &instance),
            Vec::<String>::new(),
            "{}",
            plugin.kind
        );
        if plugin.kind == "test-null" {
            parse(&toml).build_channels().unwrap();
        }
    }
}

#[test]
fn the_json_schema_rejects_bad_files() {
    let validator = jsonschema::validator_for(&json_schema()).unwrap();
    let good = toml_to_json(FULL_EXAMPLE);
    let rejects = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut instance = good.clone();
        change(&mut instance);
        !validator.is_valid(&instance)
    };
    assert!(rejects(&|c| c["delivery"]["concurrency"] = json!("many")));
    assert!(rejects(
        &|c| c["delivery"]["retry"]["max_attempts"] = json!(-1)
    ));
    assert!(rejects(&|c| c["store"]["migrate"] = json!("yes")));
    assert!(rejects(
        &|c| c["routes"][1]["min_severity"] = json!("urgent")
    ));
    assert!(rejects(
        &|c| c["routes"][1]["object_types"][0] = json!("password")
    ));
    assert!(rejects(&|c| c["routes"][0]["channels"] = json!("audit")));
    assert!(rejects(&|c| c["custom_kinds"][0] = json!("Key Compromised")));
    assert!(rejects(&|c| c["log_level"] = json!("debug")));
    assert!(rejects(&|c| c["delivery"]["retries"] = json!(3)));
    assert!(rejects(&|c| c["routes"][0]["severity"] = json!("info")));
    // Channels: unknown kind, missing kind, bad or unknown settings, bad name.
    assert!(rejects(
        &|c| c["channels"]["ops"]["kind"] = json!("carrier-pigeon")
    ));
    assert!(rejects(&|c| {
        c["channels"]["ops"].as_object_mut().unwrap().remove("kind");
    }));
    assert!(rejects(&|c| c["channels"]["ops"]["port"] = json!("abc")));
    assert!(rejects(&|c| c["channels"]["ops"]["port"] = json!(70_000)));
    assert!(rejects(&|c| c["channels"]["ops"]["greting"] = json!("hi")));
    assert!(rejects(
        &|c| c["channels"]["Ops"] = json!({ "kind": "test-null" })
    ));
    assert!(rejects(&|c| c["channels"]["ops"] = json!("test-null")));
    // The untouched file still passes (the closures really change something).
    assert!(!rejects(&|_| {}));
}

#[test]
fn a_mistyped_secret_is_not_echoed_in_errors() {
    let env = |name: &str| (name == "SECRET").then(|| "hunter2-value".to_owned());
    let err = Config::from_toml_str_with_env("[delivery]\nconcurrency = \"${SECRET}\"\n", env)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "delivery.concurrency: invalid type: string \"${SECRET}\", expected usize"
    );
    // A plugin setting is deserialized later, by build_channels: scrubbed too.
    let config = Config::from_toml_str_with_env(
        "[channels.x]\nkind = \"test-null\"\nport = \"${SECRET}\"\n",
        env,
    )
    .unwrap();
    assert!(!format!("{config:?}").contains("hunter2-value"));
    let err = config.build_channels().unwrap_err().to_string();
    assert_eq!(
        err,
        "channels.x.port: invalid type: string \"${SECRET}\", expected u16"
    );
}

#[test]
fn store_sync_is_sqlite_only() {
    assert_eq!(parse("").store.sync_mode(), SyncMode::Full);
    let relaxed = parse("[store]\nurl = \"sqlite://x.db\"\nsync = \"normal\"\n");
    assert_eq!(relaxed.store.sync_mode(), SyncMode::Normal);
    assert_eq!(
        parse("[store]\nsync = \"full\"\n").store.sync_mode(),
        SyncMode::Full
    );
    for url in ["postgres://db/clarion", "mysql://db/clarion", "memory://"] {
        let e = error(&format!("[store]\nurl = \"{url}\"\nsync = \"normal\"\n"));
        assert!(
            e.starts_with("store.sync: applies to SQLite stores only"),
            "{e}"
        );
    }
    let e = error("[store]\nsync = \"off\"\n");
    assert!(e.contains("store.sync") && e.contains("full"), "{e}");
}
