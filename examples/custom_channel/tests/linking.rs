//! Step 5: a binary that names the crate links its registration, so its
//! kind builds from configuration and its settings appear, with their doc
//! comments, in the whole-file JSON Schema.

use clarion_core::config::Config;

use clarion_ntfy as _;

#[test]
fn the_linked_kind_is_registered_and_builds_from_a_file() {
    assert!(clarion_core::registry::kinds().contains(&"ntfy"));
    let config = Config::from_toml_str(
        r#"
[channels.oncall-phone]
kind = "ntfy"
topic = "kms-alerts-5d0c7e41"
token = "tk_linking1234"

[[routes]]
channels = ["oncall-phone"]
"#,
    )
    .unwrap();
    let channels = config.build_channels().unwrap();
    let debug = format!("{:?}", channels["oncall-phone"]);
    assert!(debug.contains("https://ntfy.sh/"), "{debug}");
    assert!(
        !debug.contains("kms-alerts") && !debug.contains("tk_linking"),
        "{debug}"
    );
}

#[test]
fn bad_settings_are_errors_that_name_the_path() {
    let error = |settings: &str| {
        let text = format!("[channels.phone]\nkind = \"ntfy\"\n{settings}");
        Config::from_toml_str(&text)
            .unwrap()
            .build_channels()
            .unwrap_err()
            .to_string()
    };
    let bad_topic = error("topic = \"has space-secret\"");
    assert!(
        bad_topic.starts_with("channels.phone.topic: "),
        "{bad_topic}"
    );
    assert!(
        !bad_topic.contains("space-secret"),
        "the topic is a secret: {bad_topic}"
    );
    let bad_server = error("server = \"ftp://example.com\"\ntopic = \"alerts\"");
    assert!(
        bad_server.starts_with("channels.phone.server: "),
        "{bad_server}"
    );
    let empty_token = error("topic = \"alerts\"\ntoken = \" \"");
    assert!(
        empty_token.starts_with("channels.phone.token: "),
        "{empty_token}"
    );
    let typo = error("topic = \"alerts\"\ntopik = \"alerts\"");
    assert!(
        typo.contains("channels.phone") && typo.contains("topik"),
        "{typo}"
    );
}

#[test]
fn the_whole_file_schema_describes_the_linked_channel() {
    let schema = clarion_core::config::json_schema();
    let kinds = schema["properties"]["channels"]["additionalProperties"]["oneOf"]
        .as_array()
        .expect("one schema per linked kind");
    let ntfy = kinds
        .iter()
        .find(|k| k["properties"]["kind"]["const"] == "ntfy")
        .expect("the ntfy channel is in the schema of a binary that links it");
    let topic = ntfy["properties"]["topic"]["description"].as_str().unwrap();
    assert!(topic.starts_with("The topic to publish to"), "{topic}");
    assert_eq!(ntfy["properties"]["timeout"]["default"], "10s");
    assert_eq!(ntfy["required"], serde_json::json!(["kind", "topic"]));

    // A file using it validates against that schema.
    let file: toml::Table =
        toml::from_str("[channels.phone]\nkind = \"ntfy\"\ntopic = \"kms-alerts-5d0c7e41\"\n")
            .unwrap();
    let file = serde_json::to_value(file).unwrap();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    assert!(validator.is_valid(&file));
}
