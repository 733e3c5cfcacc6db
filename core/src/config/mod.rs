//! Configuration: one TOML file, or the same structure built in code.
//!
//! ```toml
//! custom_kinds = ["key_compromised"]   # event kinds beyond the built-in three
//!
//! [store]
//! url = "sqlite://clarion.db"
//!
//! [delivery]
//! timeout = "30s"
//! [delivery.retry]
//! max_attempts = 30
//!
//! [deadlines]
//! thresholds = [30, 7, 1]              # days, any order
//!
//! [channels.ops-log]
//! kind = "log"                         # the plugin; the other keys are its own
//! level = "warn"
//!
//! [[routes]]
//! kinds = ["rotation_failure", "approaching_deadline"]
//! min_severity = "warning"
//! channels = ["ops-log"]
//! ```
//!
//! Loading runs in stages, each failing with the path of what is wrong:
//! TOML syntax → `${VAR}` substitution → typed deserialization (unknown
//! fields are errors) → semantic validation (route targets, event kinds,
//! channel kinds linked). Channel settings are deserialized by their plugin
//! when the channels are built.

pub mod duration;
mod env;
mod error;
mod schema;
pub mod section;
mod sync;

pub use sync::SyncMode;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use secrecy::SecretString;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

pub use error::ConfigError;
pub use schema::json_schema;

use crate::channel::Channel;
use crate::event::{EventKind, ObjectType, Severity};
use crate::registry;
use crate::router::Router;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Event kinds beyond `rotation_success`, `rotation_failure` and
    /// `approaching_deadline` that routes may name.
    #[serde(default)]
    pub custom_kinds: Vec<EventKind>,
    /// Largest event accepted, in bytes of its JSON (as stored and as
    /// channels render it), on every path: `emit`, batches, HTTP ingest. A
    /// larger event is refused with its largest field named. At least 1024.
    #[serde(default = "default_max_event_bytes")]
    pub max_event_bytes: usize,
    /// Where notifications and deliveries are kept.
    #[serde(default)]
    pub store: StoreConfig,
    /// How deliveries are attempted.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// When deadline warnings fire.
    #[serde(default)]
    pub deadlines: DeadlinesConfig,
    /// Named channels: `[channels.<name>]` with `kind` and the plugin's settings.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelConfig>,
    /// Ordered routes from events to channels.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Values that came from `${VAR}`, kept to scrub them from error messages.
    #[serde(skip)]
    #[schemars(skip)]
    substituted: Substitutions,
    /// Registered extra sections (`[server]` …), see [`section`].
    #[serde(skip)]
    #[schemars(skip)]
    sections: section::Sections,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            custom_kinds: Vec::new(),
            max_event_bytes: default_max_event_bytes(),
            store: StoreConfig::default(),
            delivery: DeliveryConfig::default(),
            deadlines: DeadlinesConfig::default(),
            channels: BTreeMap::new(),
            routes: Vec::new(),
            substituted: Substitutions::default(),
            sections: section::Sections::default(),
        }
    }
}

fn default_max_event_bytes() -> usize {
    crate::validation::DEFAULT_MAX_EVENT_BYTES
}

/// The smallest `max_event_bytes` accepted: below it, ordinary events with a
/// few labels would be refused.
const MIN_MAX_EVENT_BYTES: usize = 1024;

/// Where `${VAR}` put a value, so errors can show `${VAR}` instead of it.
#[derive(Clone, Default)]
struct Substitutions(Vec<Substitution>);

#[derive(Clone)]
struct Substitution {
    path: String,
    value: String,
    template: String,
}

impl fmt::Debug for Substitutions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} substituted values]", self.0.len())
    }
}

impl Substitutions {
    /// Replaces substituted values in an error about a path they are in (or
    /// under) with the `${VAR}` text that produced them: a mistyped secret must
    /// not be echoed by "invalid type: string \"hunter2\"".
    fn scrub(&self, error: ConfigError) -> ConfigError {
        let ConfigError::Invalid { path, mut message } = error else {
            return error;
        };
        for sub in &self.0 {
            let related = path == sub.path
                || sub.path.starts_with(&format!("{path}."))
                || sub.path.starts_with(&format!("{path}["))
                || path.starts_with(&format!("{}.", sub.path))
                || path.starts_with(&format!("{}[", sub.path));
            if related && !sub.value.is_empty() {
                message = message.replace(&sub.value, &sub.template);
            }
        }
        ConfigError::Invalid { path, message }
    }
}

/// `[store]`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://path`, `postgres://…`, `mysql://…` or `memory://`. May hold
    /// a password, so it is kept secret; use `${VAR}` to keep it out of the file.
    #[serde(default = "default_store_url")]
    #[schemars(with = "String", default = "default_store_url_str")]
    pub url: SecretString,
    /// Run embedded migrations when the store opens.
    #[serde(default = "yes")]
    pub migrate: bool,
    /// Purge final notifications older than this (humantime, e.g. `30d`).
    #[serde(
        default = "default_retention",
        deserialize_with = "duration::deserialize"
    )]
    #[schemars(with = "String")]
    pub retention: Duration,
    /// SQLite only: `full` (default; a returned `emit` survives a power
    /// loss) or `normal` (survives a process crash, not a power loss).
    #[serde(default)]
    pub sync: Option<SyncMode>,
}

fn default_store_url() -> SecretString {
    SecretString::from(default_store_url_str())
}
fn default_store_url_str() -> String {
    "sqlite://clarion.db".into()
}
fn default_retention() -> Duration {
    Duration::from_secs(90 * 86_400)
}
fn yes() -> bool {
    true
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: default_store_url(),
            migrate: true,
            retention: default_retention(),
            sync: None,
        }
    }
}

/// `[delivery]`: concurrency, leases, timeouts and retries.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// Deliveries in flight at once, across all channels.
    pub concurrency: usize,
    /// Deliveries in flight at once on one channel.
    pub per_channel_concurrency: usize,
    /// Deliveries claimed per store round trip.
    pub batch_size: usize,
    /// How long a claim is exclusive; a crashed worker's claims expire after it.
    #[serde(deserialize_with = "duration::deserialize")]
    #[schemars(with = "String")]
    pub lease: Duration,
    /// Upper bound for one `deliver` call, whatever the channel does.
    #[serde(deserialize_with = "duration::deserialize")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// How often the store is polled when nothing wakes the dispatcher.
    #[serde(deserialize_with = "duration::deserialize")]
    #[schemars(with = "String")]
    pub poll_interval: Duration,
    /// Retry policy.
    pub retry: RetryConfig,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            concurrency: 64,
            per_channel_concurrency: 16,
            batch_size: 100,
            lease: Duration::from_secs(120),
            timeout: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            retry: RetryConfig::default(),
        }
    }
}

/// `[delivery.retry]`: exponential backoff with jitter, bounded by attempts and age.
///
/// Defaults: 10 s, doubling, capped at 1 h, ±20 % jitter, 30 attempts, 24 h.
/// That is ~1.4 h to reach the cap and ~21 h for the whole budget, close to
/// Svix's published schedule (8 attempts over ~27 h) and, early on, to
/// certctl's 2^n minutes capped at 1 h.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Delay before the second attempt.
    #[serde(deserialize_with = "duration::deserialize")]
    #[schemars(with = "String")]
    pub initial_backoff: Duration,
    /// Largest delay between attempts.
    #[serde(deserialize_with = "duration::deserialize")]
    #[schemars(with = "String")]
    pub max_backoff: Duration,
    /// Growth factor per attempt (≥ 1).
    pub multiplier: f64,
    /// Random spread as a fraction of the delay, 0 to 1.
    pub jitter: f64,
    /// Attempts before a delivery is dead (≥ 1).
    pub max_attempts: u32,
    /// Age after which a delivery is dead instead of retried.
    #[serde(deserialize_with = "duration::deserialize")]
    #[schemars(with = "String")]
    pub max_age: Duration,
    /// Largest `Retry-After` a channel may impose.
    #[serde(deserialize_with = "duration::deserialize")]
    #[schemars(with = "String")]
    pub max_retry_after: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial_backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(3600),
            multiplier: 2.0,
            jitter: 0.2,
            max_attempts: 30,
            max_age: Duration::from_secs(86_400),
            max_retry_after: Duration::from_secs(3600),
        }
    }
}

/// `[deadlines]`: when `approaching_deadline` warnings fire.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DeadlinesConfig {
    /// Warning thresholds in days before the deadline, any order.
    pub thresholds: Vec<u32>,
    /// How often the deadline source is scanned.
    #[serde(deserialize_with = "duration::deserialize")]
    #[schemars(with = "String")]
    pub scan_interval: Duration,
}

impl Default for DeadlinesConfig {
    fn default() -> Self {
        DeadlinesConfig {
            thresholds: vec![30, 7, 1],
            scan_interval: Duration::from_secs(3600),
        }
    }
}

/// `[channels.<name>]`: the plugin `kind` and the plugin's own settings.
///
/// Its schema here is generic; [`json_schema`] replaces it with one schema per
/// linked plugin.
#[derive(Clone, PartialEq)]
pub struct ChannelConfig {
    /// Which plugin, e.g. `smtp`.
    pub kind: String,
    /// Everything else in the table, deserialized by the plugin.
    pub settings: serde_json::Map<String, serde_json::Value>,
}

impl ChannelConfig {
    /// A channel of `kind` with settings given as a JSON object
    /// (`serde_json::json!({ "level": "warn" })`).
    pub fn new(kind: impl Into<String>, settings: serde_json::Value) -> Self {
        let settings = match settings {
            serde_json::Value::Object(map) => map,
            serde_json::Value::Null => Default::default(),
            other => {
                let mut map = serde_json::Map::new();
                map.insert("settings".into(), other);
                map
            }
        };
        ChannelConfig {
            kind: kind.into(),
            settings,
        }
    }
}

/// Shows the setting names only: values may be secrets (the plugin's own
/// config type wraps them; this raw map cannot know which they are).
impl fmt::Debug for ChannelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelConfig")
            .field("kind", &self.kind)
            .field("settings", &self.settings.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl JsonSchema for ChannelConfig {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ChannelConfig".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "required": ["kind"],
            "properties": { "kind": { "type": "string" } }
        })
    }
}

impl<'de> Deserialize<'de> for ChannelConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ChannelVisitor;
        impl<'de> Visitor<'de> for ChannelVisitor {
            type Value = ChannelConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a channel table with a `kind`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ChannelConfig, A::Error> {
                let mut kind = None;
                let mut settings = serde_json::Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "kind" {
                        kind = Some(map.next_value::<String>()?);
                    } else {
                        settings.insert(key, map.next_value()?);
                    }
                }
                let kind = kind.ok_or_else(|| serde::de::Error::missing_field("kind"))?;
                Ok(ChannelConfig { kind, settings })
            }
        }
        d.deserialize_map(ChannelVisitor)
    }
}

/// `[[routes]]`: which events go to which channels.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// A name shown by `explain`.
    #[serde(default)]
    pub name: Option<String>,
    /// Event kinds this route takes; `"*"` (the default) is every kind.
    #[serde(default = "any_kind")]
    pub kinds: Vec<String>,
    /// Lowest severity this route takes.
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// Object types this route takes; empty is every type.
    #[serde(default)]
    pub object_types: Vec<ObjectType>,
    /// Owners this route takes; empty is anyone (and no owner).
    #[serde(default)]
    pub owners: Vec<String>,
    /// Labels that must all be present with these values (`"*"`: any value).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Channels that get matching events.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Let later routes match too (default: the first match wins).
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
}

fn any_kind() -> Vec<String> {
    vec!["*".into()]
}

impl RouteConfig {
    /// A route taking every event to `channels`.
    pub fn to<I, S>(channels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RouteConfig {
            kinds: any_kind(),
            channels: channels.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }

    /// Restricts the route to these kinds.
    pub fn kinds<I: IntoIterator<Item = EventKind>>(mut self, kinds: I) -> Self {
        self.kinds = kinds.into_iter().map(|k| k.to_string()).collect();
        self
    }

    /// Restricts the route to this severity and above.
    pub fn min_severity(mut self, severity: Severity) -> Self {
        self.min_severity = Some(severity);
        self
    }

    /// Lets later routes match too.
    pub fn and_continue(mut self) -> Self {
        self.continue_matching = true;
        self
    }
}

/// The built channels, by configured name.
pub type Channels = BTreeMap<String, Arc<dyn Channel>>;

impl Config {
    /// Parses TOML, substituting `${VAR}` from the process environment, and
    /// validates the settings. Routes are checked when the notifier is built,
    /// against file and code channels alike; [`Config::validate`] checks them
    /// against the file's channels.
    pub fn from_toml_str(toml: &str) -> Result<Config, ConfigError> {
        Self::from_toml_str_with_env(toml, |name| std::env::var(name).ok())
    }

    /// Reads and parses a TOML file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    /// Parses TOML with `${VAR}` looked up through `env`, and validates the
    /// settings (see [`Config::from_toml_str`]).
    pub fn from_toml_str_with_env(
        toml: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let table: toml::Table = toml::from_str(toml).map_err(|e| syntax_error(toml, &e))?;
        let mut substituted = Substitutions::default();
        let mut value = to_json(
            toml::Value::Table(table),
            &mut String::new(),
            &env,
            &mut substituted,
        )?;
        let sections = section::Sections::take(&mut value).map_err(|e| substituted.scrub(e))?;
        let mut config: Config = deserialize_at("", value).map_err(|e| substituted.scrub(e))?;
        config.substituted = substituted;
        config.sections = sections;
        config
            .validate_settings()
            .map_err(|e| config.substituted.scrub(e))?;
        Ok(config)
    }

    /// Adds a channel in code; a name used twice is an error.
    pub fn add_channel(
        &mut self,
        name: impl Into<String>,
        channel: ChannelConfig,
    ) -> Result<&mut Self, ConfigError> {
        let name = name.into();
        if self.channels.contains_key(&name) {
            return Err(ConfigError::invalid(
                format!("channels.{name}"),
                "duplicate channel name",
            ));
        }
        self.channels.insert(name, channel);
        Ok(self)
    }

    /// Appends a route in code.
    pub fn add_route(&mut self, route: RouteConfig) -> &mut Self {
        self.routes.push(route);
        self
    }

    /// Checks everything that can be checked without building channels:
    /// names, numbers, route targets and kinds, and that every channel kind
    /// is linked (the startup audit). Channel settings are checked by
    /// [`Config::build_channels`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_settings()?;
        Router::from_config(self)?;
        Ok(())
    }

    /// [`Config::validate`] without the routes (which may also name channels
    /// added in code).
    pub fn validate_settings(&self) -> Result<(), ConfigError> {
        {
            use secrecy::ExposeSecret;
            let url = self.store.url.expose_secret();
            let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
            if let Some(message) = self.store.sync_mismatch(scheme) {
                return Err(ConfigError::invalid("store.sync", message));
            }
        }
        for (i, kind) in self.custom_kinds.iter().enumerate() {
            if kind.is_built_in() {
                return Err(ConfigError::invalid(
                    format!("custom_kinds[{i}]"),
                    format!("\"{kind}\" is a built-in kind; list only custom kinds here"),
                ));
            }
        }
        if self.max_event_bytes < MIN_MAX_EVENT_BYTES {
            return Err(ConfigError::invalid(
                "max_event_bytes",
                format!(
                    "is {}; at least {MIN_MAX_EVENT_BYTES} (the default is {})",
                    self.max_event_bytes,
                    default_max_event_bytes()
                ),
            ));
        }
        self.delivery.validate()?;
        self.deadlines.validate()?;
        // Purging a notification frees its dedup key; a deadline warning
        // purged while its threshold still holds would be given again.
        let largest = self.deadlines.thresholds.iter().max().copied().unwrap_or(0);
        if self.store.retention < Duration::from_secs(u64::from(largest) * 86_400) {
            return Err(ConfigError::invalid(
                "store.retention",
                format!(
                    "must be at least the largest deadline threshold ({largest} days), or a \
                     purged deadline warning could be given again"
                ),
            ));
        }
        for (name, channel) in &self.channels {
            validate_channel_name(name)?;
            audit_kind(&format!("channels.{name}.kind"), &channel.kind)?;
        }
        Ok(())
    }

    /// Builds every configured channel through its plugin.
    pub fn build_channels(&self) -> Result<Channels, ConfigError> {
        let mut built = Channels::new();
        for (name, channel) in &self.channels {
            let plugin = audit_kind(&format!("channels.{name}.kind"), &channel.kind)?;
            let settings = serde_json::Value::Object(channel.settings.clone());
            let channel = (plugin.build)(name, settings).map_err(|e| self.substituted.scrub(e))?;
            built.insert(name.clone(), channel);
        }
        Ok(built)
    }

    /// Builds the router (validating routes against channels and kinds).
    pub fn router(&self) -> Result<Router, ConfigError> {
        Router::from_config(self)
    }

    /// Whether `kind` may be used in routes.
    pub fn knows_kind(&self, kind: &EventKind) -> bool {
        kind.is_built_in() || self.custom_kinds.contains(kind)
    }
}

impl DeliveryConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        for (path, value) in [
            ("delivery.concurrency", self.concurrency),
            (
                "delivery.per_channel_concurrency",
                self.per_channel_concurrency,
            ),
            ("delivery.batch_size", self.batch_size),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(path, "must be at least 1"));
            }
        }
        for (path, value) in [
            ("delivery.lease", self.lease),
            ("delivery.timeout", self.timeout),
            ("delivery.poll_interval", self.poll_interval),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(path, "must be longer than 0s"));
            }
        }
        if self.lease <= self.timeout {
            return Err(ConfigError::invalid(
                "delivery.lease",
                format!(
                    "must be longer than delivery.timeout ({}), or a slow delivery's claim \
                     expires while it is still running and it is sent twice",
                    humantime::format_duration(self.timeout)
                ),
            ));
        }
        self.retry.validate()
    }
}

impl RetryConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_attempts == 0 {
            return Err(ConfigError::invalid(
                "delivery.retry.max_attempts",
                "must be at least 1",
            ));
        }
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            return Err(ConfigError::invalid(
                "delivery.retry.multiplier",
                format!("must be a number ≥ 1, got {}", self.multiplier),
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(ConfigError::invalid(
                "delivery.retry.jitter",
                format!("must be between 0 and 1, got {}", self.jitter),
            ));
        }
        if self.initial_backoff.is_zero() {
            return Err(ConfigError::invalid(
                "delivery.retry.initial_backoff",
                "must be longer than 0s",
            ));
        }
        if self.max_backoff < self.initial_backoff {
            return Err(ConfigError::invalid(
                "delivery.retry.max_backoff",
                "must not be shorter than delivery.retry.initial_backoff",
            ));
        }
        Ok(())
    }
}

impl DeadlinesConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.thresholds.is_empty() {
            return Err(ConfigError::invalid(
                "deadlines.thresholds",
                "list at least one threshold (days before the deadline)",
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, days) in self.thresholds.iter().enumerate() {
            let path = format!("deadlines.thresholds[{i}]");
            if *days == 0 {
                return Err(ConfigError::invalid(
                    path,
                    "a threshold must be at least 1 day",
                ));
            }
            if !seen.insert(days) {
                return Err(ConfigError::invalid(
                    path,
                    format!("{days} is listed twice"),
                ));
            }
        }
        if self.scan_interval.is_zero() {
            return Err(ConfigError::invalid(
                "deadlines.scan_interval",
                "must be longer than 0s",
            ));
        }
        Ok(())
    }
}

fn validate_channel_name(name: &str) -> Result<(), ConfigError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        // Quote like TOML does, so `channels."audit.hook"` is not read as nesting.
        Err(ConfigError::invalid(
            format!("channels.{name:?}"),
            "a channel name is 1-64 characters of a-z, 0-9, '-' and '_'",
        ))
    }
}

/// The startup audit: the plugin for `kind`, or an error saying how to link it.
fn audit_kind(path: &str, kind: &str) -> Result<&'static registry::ChannelPlugin, ConfigError> {
    let providers: Vec<_> = registry::plugins()
        .into_iter()
        .filter(|p| p.kind == kind)
        .collect();
    match providers.as_slice() {
        [one] => Ok(one),
        [] => {
            let registered = registry::kinds();
            let crate_name = format!("clarion_{}", kind.replace('-', "_"));
            let hint = if ["log", "slack", "smtp", "teams", "webhook"].contains(&kind) {
                format!(
                    "enable the `{kind}` feature of the `clarion` crate, or add `{crate_name}` \
                     to Cargo.toml and link it with `use {crate_name} as _;`"
                )
            } else {
                format!(
                    "add the crate that provides it (e.g. `{crate_name}`) to Cargo.toml and link \
                     it with `use {crate_name} as _;` in your binary: a crate that is only a \
                     dependency is not linked, so its registration is invisible"
                )
            };
            Err(ConfigError::UnknownChannelKind {
                path: path.to_owned(),
                kind: kind.to_owned(),
                registered: if registered.is_empty() {
                    "none".into()
                } else {
                    registered.join(", ")
                },
                hint,
            })
        }
        many => Err(ConfigError::invalid(
            path,
            format!(
                "channel kind \"{kind}\" is registered more than once (by {}); link only one",
                many.iter()
                    .map(|p| p.module)
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        )),
    }
}

/// Deserializes `value` as `T`, reporting errors with their path under `base`.
pub(crate) fn deserialize_at<T: DeserializeOwned>(
    base: &str,
    value: serde_json::Value,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = match (base, inner.as_str()) {
            (base, ".") => base.to_owned(),
            ("", inner) => inner.to_owned(),
            (base, inner) if inner.starts_with('[') => format!("{base}{inner}"),
            (base, inner) => format!("{base}.{inner}"),
        };
        let message = e.into_inner().to_string();
        if path.is_empty() {
            ConfigError::invalid("(top level)", message)
        } else {
            ConfigError::invalid(path, message)
        }
    })
}

fn syntax_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let (line, column) = match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            (line, column)
        }
        None => (1, 1),
    };
    let mut message = e.message().trim().to_owned();
    if let Some(span) = e.span() {
        let snippet = text.get(span.clone()).unwrap_or_default().trim();
        if !snippet.is_empty() && snippet.len() <= 60 && !snippet.contains('\n') {
            message.push_str(&format!(" (at `{snippet}`)"));
        }
    }
    ConfigError::Syntax {
        line,
        column,
        message,
    }
}

/// Converts parsed TOML into JSON, substituting `${VAR}` in every string.
fn to_json(
    value: toml::Value,
    path: &mut String,
    env: &dyn Fn(&str) -> Option<String>,
    substituted: &mut Substitutions,
) -> Result<serde_json::Value, ConfigError> {
    use serde_json::Value as J;
    Ok(match value {
        toml::Value::String(s) => {
            let value = env::substitute(&s, path, env)?;
            if value != s {
                substituted.0.push(Substitution {
                    path: path.clone(),
                    value: value.clone(),
                    template: s,
                });
            }
            J::String(value)
        }
        toml::Value::Integer(i) => J::from(i),
        toml::Value::Float(f) => J::from(f),
        toml::Value::Boolean(b) => J::Bool(b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                out.push(to_json(item, path, env, substituted)?);
                path.truncate(len);
            }
            J::Array(out)
        }
        toml::Value::Table(table) => {
            let mut out = serde_json::Map::new();
            for (key, item) in table {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&key);
                out.insert(key, to_json(item, path, env, substituted)?);
                path.truncate(len);
            }
            J::Object(out)
        }
    })
}

#[cfg(test)]
mod tests;
