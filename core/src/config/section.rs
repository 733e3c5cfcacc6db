//! Extra top-level sections of the configuration file, registered by the
//! program that reads them (`[server]` by clarion-server).
//!
//! Core does not know their fields: a registered section is taken out of the
//! file before the rest is deserialized, checked by its own hook (so unknown
//! keys inside it are still errors with their path, `server.listen: …`), kept
//! as JSON for its owner to read with [`Config::section`], and its schema is
//! part of [`json_schema`](super::json_schema). A section nobody registered
//! is an unknown top-level key, as before.
//!
//! ```text
//! clarion_core::register_config_section! {
//!     name: "server",
//!     description: "The HTTP server of `clarion serve`.",
//!     config: ServerConfig, // Deserialize + JsonSchema, deny_unknown_fields
//!     validate: ServerConfig::validate, // fn(&ServerConfig) -> Result<(), ConfigError>
//! }
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;

use super::{Config, ConfigError, deserialize_at};

/// Checks a section's JSON value; errors name their full path.
pub type ValidateFn = fn(value: serde_json::Value) -> Result<(), ConfigError>;

/// A top-level configuration section, as registered by the crate that owns it.
pub struct ConfigSection {
    /// The top-level key, e.g. `server`.
    pub name: &'static str,
    /// One line for humans (the schema's description of the section).
    pub description: &'static str,
    /// The Rust module that registered it (to report duplicates).
    pub module: &'static str,
    /// The JSON Schema of the section.
    pub schema: fn() -> schemars::Schema,
    /// Deserializes and validates the section.
    pub validate: ValidateFn,
}

impl fmt::Debug for ConfigSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigSection")
            .field("name", &self.name)
            .field("module", &self.module)
            .finish_non_exhaustive()
    }
}

inventory::collect!(ConfigSection);

/// Every linked section, sorted by name.
pub fn sections() -> Vec<&'static ConfigSection> {
    let mut all: Vec<_> = inventory::iter::<ConfigSection>.into_iter().collect();
    all.sort_by_key(|s| (s.name, s.module));
    all
}

/// The values of the registered sections present in a file, by name. Their
/// contents are not shown by `Debug` (they may hold credential hashes).
#[derive(Clone, Default)]
pub(super) struct Sections(BTreeMap<String, serde_json::Value>);

impl fmt::Debug for Sections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Sections {
    /// Takes every registered section out of the file's top-level table and
    /// validates it through its hook.
    pub(super) fn take(value: &mut serde_json::Value) -> Result<Sections, ConfigError> {
        let mut taken = BTreeMap::new();
        let Some(table) = value.as_object_mut() else {
            return Ok(Sections(taken));
        };
        for section in sections() {
            if let Some(body) = table.remove(section.name) {
                (section.validate)(body.clone())?;
                taken.insert(section.name.to_owned(), body);
            }
        }
        Ok(Sections(taken))
    }
}

impl Config {
    /// The registered section `name`, deserialized as `T`; `None` when the
    /// file has no such table. Errors name their path (`server.listen: …`).
    pub fn section<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, ConfigError> {
        match self.sections.0.get(name) {
            Some(value) => deserialize_at(name, value.clone())
                .map(Some)
                .map_err(|e| self.substituted.scrub(e)),
            None => Ok(None),
        }
    }
}

#[doc(hidden)]
pub fn __validate_with<C: DeserializeOwned>(
    name: &str,
    value: serde_json::Value,
    validate: fn(&C) -> Result<(), ConfigError>,
) -> Result<(), ConfigError> {
    let config: C = deserialize_at(name, value)?;
    validate(&config)
}

/// Registers a top-level configuration section. Call it once, at the top
/// level of the crate that reads the section.
///
/// `config` must implement `serde::Deserialize` (with
/// `#[serde(deny_unknown_fields)]`) and `schemars::JsonSchema`; `validate`
/// is a `fn(&Config) -> Result<(), ConfigError>` whose errors name full paths.
#[macro_export]
macro_rules! register_config_section {
    (
        name: $name:expr,
        description: $description:expr,
        config: $config:ty,
        validate: $validate:expr $(,)?
    ) => {
        $crate::__private::inventory::submit! {
            $crate::config::section::ConfigSection {
                name: $name,
                description: $description,
                module: ::core::module_path!(),
                schema: $crate::registry::__schema_of::<$config>,
                validate: |value| {
                    $crate::config::section::__validate_with::<$config>($name, value, $validate)
                },
            }
        }
    };
}
