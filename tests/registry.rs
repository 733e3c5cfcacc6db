//! The facade links the stock channels: their kinds are registered and
//! buildable from configuration.

use clarion::{Config, registry};

#[test]
fn the_default_features_register_the_log_channel() {
    assert!(
        registry::kinds().contains(&"log"),
        "{:?}",
        registry::kinds()
    );
    let plugin = registry::find("log").unwrap();
    assert!(!plugin.description.is_empty());
    assert!(plugin.module.starts_with("clarion_log"));
}

#[test]
fn every_plugin_example_builds() {
    for plugin in registry::plugins() {
        let config = Config::from_toml_str(&format!(
            "[channels.example]\nkind = \"{}\"\n{}",
            plugin.kind, plugin.example
        ))
        .unwrap_or_else(|e| panic!("{}: {e}", plugin.kind));
        let channels = config.build_channels().unwrap();
        assert!(channels.contains_key("example"));
    }
}

#[test]
fn the_schema_lists_each_linked_kind() {
    let schema = clarion::config::json_schema();
    let kinds: Vec<_> = schema["properties"]["channels"]["additionalProperties"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["properties"]["kind"]["const"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds, registry::kinds());
}
