//! A top-level section registered by another crate (as clarion-server
//! registers `[server]`): accepted, checked with paths, in the schema.

use clarion_core::config::{Config, ConfigError};
use serde::Deserialize;

#[derive(Debug, Deserialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
struct Extra {
    /// A port.
    port: u16,
    #[serde(default)]
    name: Option<String>,
}

fn validate(extra: &Extra) -> Result<(), ConfigError> {
    if extra.port == 0 {
        return Err(ConfigError::invalid("extra.port", "must not be 0"));
    }
    Ok(())
}

clarion_core::register_config_section! {
    name: "extra",
    description: "A test section.",
    config: Extra,
    validate: validate,
}

#[test]
fn a_registered_section_is_accepted_and_read_by_its_owner() {
    let config = Config::from_toml_str("[extra]\nport = 8080\n").unwrap();
    let extra: Extra = config.section("extra").unwrap().unwrap();
    assert_eq!(
        extra,
        Extra {
            port: 8080,
            name: None
        }
    );
    assert!(config.section::<Extra>("absent").unwrap().is_none());
    // Debug shows that the section is there, not what it holds.
    let debug = format!("{config:?}");
    assert!(debug.contains("[\"extra\"]"), "{debug}");
    assert!(!debug.contains("8080"), "{debug}");
}

#[test]
fn unknown_keys_inside_it_are_errors_with_their_path() {
    let error = Config::from_toml_str("[extra]\nport = 1\nlisten = 2\n").unwrap_err();
    assert_eq!(error.path(), Some("extra.listen"));
    assert!(
        error.to_string().contains("unknown field `listen`"),
        "{error}"
    );

    let error = Config::from_toml_str("[extra]\nport = \"x\"\n").unwrap_err();
    assert_eq!(error.path(), Some("extra.port"));
}

#[test]
fn its_validate_hook_runs_when_the_file_loads() {
    let error = Config::from_toml_str("[extra]\nport = 0\n").unwrap_err();
    assert_eq!(error.to_string(), "extra.port: must not be 0");
}

#[test]
fn a_substituted_value_is_not_echoed_in_its_errors() {
    let error =
        Config::from_toml_str_with_env("[extra]\nport = \"${PORT}\"\n", |_| Some("hunter2".into()))
            .unwrap_err();
    assert_eq!(error.path(), Some("extra.port"));
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

#[test]
fn unregistered_sections_are_still_unknown_top_level_keys() {
    let error = Config::from_toml_str("[other]\nport = 1\n").unwrap_err();
    assert!(
        error.to_string().contains("unknown field `other`"),
        "{error}"
    );
}

#[test]
fn the_schema_includes_the_section() {
    let schema = clarion_core::config::json_schema();
    let extra = &schema["properties"]["extra"];
    assert_eq!(extra["description"], "A test section.");
    assert_eq!(extra["properties"]["port"]["description"], "A port.");
    assert_eq!(extra["additionalProperties"], false);
}
