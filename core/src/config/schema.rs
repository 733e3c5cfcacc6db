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
    for section in super::section::sections() {
        let mut schema = (section.schema)().to_value();
        if let Some(object) = schema.as_object_mut() {
            object.remove("$schema");
            object.insert("description".into(), json!(section.description));
        }
        root["properties"][section.name] = schema;
    }
    humantime_defaults(&mut root);
    root
}

/// schemars serializes a `Duration` default as `{"secs", "nanos"}`, which no
/// config file could contain; show it the way the file writes it (`"2m"`).
/// Derived from the real defaults, so it cannot drift from them.
fn humantime_defaults(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            if let Some(default) = object.get_mut("default")
                && let Some(text) = as_humantime(default)
            {
                *default = json!(text);
            }
            object.values_mut().for_each(humantime_defaults);
        }
        Value::Array(items) => items.iter_mut().for_each(humantime_defaults),
        _ => {}
    }
}

fn as_humantime(value: &Value) -> Option<String> {
    let object = value.as_object()?;
    if object.len() != 2 {
        return None;
    }
    let secs = object.get("secs")?.as_u64()?;
    let nanos = u32::try_from(object.get("nanos")?.as_u64()?).ok()?;
    // The largest unit that divides evenly ("90d", not humantime's months).
    if nanos == 0 && secs > 0 {
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            if secs % size == 0 {
                return Some(format!("{}{unit}", secs / size));
            }
        }
    }
    let duration = std::time::Duration::new(secs, nanos);
    Some(humantime::format_duration(duration).to_string())
}
