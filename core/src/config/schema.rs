//! The JSON Schema of the whole configuration file, including the settings of
//! every linked channel plugin under its `kind`.

use serde_json::{Value, json};

use super::Config;
use crate::registry;

/// The JSON Schema (draft 2020-12) of the configuration file.
///
/// `channels.<name>` must match exactly one linked plugin: its own schema plus
/// `kind` fixed to the plugin's kind. Editors that understand JSON Schema
/// (for TOML through e.g. Taplo/Even Better TOML) validate and complete with it.
pub fn json_schema() -> Value {
    let mut settings = schemars::generate::SchemaSettings::draft2020_12();
    settings.inline_subschemas = true;
    let root = settings.into_generator().into_root_schema_for::<Config>();
    let mut root = root.to_value();
    root["title"] = json!("clarion configuration");

    let per_kind: Vec<Value> = registry::plugins()
        .into_iter()
        .map(|plugin| {
            let mut schema = (plugin.config_schema)().to_value();
            let object = schema
                .as_object_mut()
                .expect("a config schema is an object");
            object.remove("$schema");
            object.insert("title".into(), json!(format!("{} channel", plugin.kind)));
            object.insert("description".into(), json!(plugin.description));
            let properties = object
                .entry("properties")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("properties is an object");
            properties.insert(
                "kind".into(),
                json!({ "const": plugin.kind, "description": "The channel plugin." }),
            );
            let required = object
                .entry("required")
                .or_insert_with(|| json!([]))
                .as_array_mut()
                .expect("required is an array");
            required.insert(0, json!("kind"));
            schema
        })
        .collect();

    let channels = &mut root["properties"]["channels"];
    channels["additionalProperties"] = json!({ "oneOf": per_kind });
    channels["propertyNames"] = json!({ "pattern": "^[a-z0-9_-]{1,64}$" });
    root
}
