//! The channel plugin registry.
//!
//! A channel crate registers itself once, with [`register_channel!`](crate::register_channel):
//!
//! ```text
//! clarion_core::register_channel! {
//!     kind: "log",
//!     description: "Writes each delivery as a structured tracing event.",
//!     config: LogConfig,          // Deserialize + JsonSchema, deny_unknown_fields
//!     example: "level = \"info\"",
//!     build: LogChannel::from_config, // fn(LogConfig) -> Result<LogChannel, ChannelConfigError>
//! }
//! ```
//!
//! Registrations are collected by `inventory` at link time. A crate that is
//! only listed in `Cargo.toml` is **not** linked and its registration is
//! invisible: the final binary must name it somewhere (`use clarion_log as _;`,
//! or the `clarion` facade feature, which does that). [`kinds`] lists what is
//! linked; building a configuration that names any other kind fails with a
//! message that says how to link it.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::channel::Channel;
use crate::config::ConfigError;

/// Builds a channel named `name` from its settings (`kind` removed).
pub type BuildFn =
    fn(name: &str, settings: serde_json::Value) -> Result<Arc<dyn Channel>, ConfigError>;

/// A channel kind, as registered by its crate.
pub struct ChannelPlugin {
    /// The `kind = "…"` value that selects it, e.g. `smtp`.
    pub kind: &'static str,
    /// One line for humans.
    pub description: &'static str,
    /// The Rust module that registered it (to report duplicates).
    pub module: &'static str,
    /// The JSON Schema of its configuration (without `kind`).
    pub config_schema: fn() -> schemars::Schema,
    /// An example `[channels.<name>]` body in TOML (without `kind`) that is
    /// valid configuration; used by docs, scaffolding and conformance tests.
    pub example: &'static str,
    /// Builds a channel named `name` from its settings (`kind` removed).
    /// Errors name the full path, e.g. `channels.ops-email.port: …`.
    pub build: BuildFn,
}

impl std::fmt::Debug for ChannelPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelPlugin")
            .field("kind", &self.kind)
            .field("module", &self.module)
            .finish_non_exhaustive()
    }
}

inventory::collect!(ChannelPlugin);

/// Every linked plugin, sorted by kind.
pub fn plugins() -> Vec<&'static ChannelPlugin> {
    let mut all: Vec<_> = inventory::iter::<ChannelPlugin>.into_iter().collect();
    all.sort_by_key(|p| (p.kind, p.module));
    all
}

/// The kinds of every linked plugin, sorted.
pub fn kinds() -> Vec<&'static str> {
    let mut kinds: Vec<_> = plugins().into_iter().map(|p| p.kind).collect();
    kinds.dedup();
    kinds
}

/// The plugin for `kind`, if one is linked.
pub fn find(kind: &str) -> Option<&'static ChannelPlugin> {
    inventory::iter::<ChannelPlugin>
        .into_iter()
        .find(|p| p.kind == kind)
}

/// An error a channel's constructor returns for configuration that
/// deserialized but makes no sense (an invalid address, a missing file …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", field.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct ChannelConfigError {
    /// The offending field, relative to the channel's table (`port`, `to[1]`).
    pub field: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ChannelConfigError {
    /// An error about one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ChannelConfigError {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// An error about the channel's configuration as a whole.
    pub fn new(message: impl Into<String>) -> Self {
        ChannelConfigError {
            field: None,
            message: message.into(),
        }
    }
}

#[doc(hidden)]
pub fn __build_with<C, T>(
    name: &str,
    settings: serde_json::Value,
    build: fn(C) -> Result<T, ChannelConfigError>,
) -> Result<Arc<dyn Channel>, ConfigError>
where
    C: DeserializeOwned,
    T: Channel + 'static,
{
    let base = format!("channels.{name}");
    let config: C = crate::config::deserialize_at(&base, settings)?;
    let channel = build(config).map_err(|e| {
        let path = match &e.field {
            Some(field) => format!("{base}.{field}"),
            None => base.clone(),
        };
        ConfigError::invalid(path, e.message)
    })?;
    Ok(Arc::new(channel))
}

#[doc(hidden)]
pub fn __schema_of<C: schemars::JsonSchema>() -> schemars::Schema {
    // Inlined so the whole-file schema can embed it under its kind without
    // rewriting `$ref`s.
    let mut settings = schemars::generate::SchemaSettings::draft2020_12();
    settings.inline_subschemas = true;
    settings.into_generator().into_root_schema_for::<C>()
}

/// Registers a channel kind. Call it once, at the top level of the channel crate.
///
/// `config` must implement `serde::Deserialize` (with
/// `#[serde(deny_unknown_fields)]`) and `schemars::JsonSchema`; `build` is a
/// `fn(Config) -> Result<impl Channel, ChannelConfigError>`.
#[macro_export]
macro_rules! register_channel {
    (
        kind: $kind:expr,
        description: $description:expr,
        config: $config:ty,
        example: $example:expr,
        build: $build:expr $(,)?
    ) => {
        $crate::__private::inventory::submit! {
            $crate::registry::ChannelPlugin {
                kind: $kind,
                description: $description,
                module: ::core::module_path!(),
                config_schema: $crate::registry::__schema_of::<$config>,
                example: $example,
                build: |name, settings| {
                    $crate::registry::__build_with::<$config, _>(name, settings, $build)
                },
            }
        }
    };
}
