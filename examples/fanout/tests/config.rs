//! examples/fanout.toml is valid as editors see it (the JSON Schema of the
//! whole file) and as clarion loads it, and names what it needs.

use clarion_example_fanout::{CONFIG_PATH, FanoutError, load_config};

const VARS: [(&str, &str); 6] = [
    ("FANOUT_DB", "/tmp/fanout.db"),
    ("FANOUT_SMTP_HOST", "127.0.0.1"),
    ("FANOUT_SMTP_PORT", "2525"),
    ("FANOUT_SMTP_PASSWORD", "pw-never-shown"),
    ("FANOUT_WEBHOOK_URL", "http://127.0.0.1:9/hooks"),
    (
        "FANOUT_WEBHOOK_SECRET",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ),
];

fn env(name: &str) -> Option<String> {
    VARS.iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

#[test]
fn the_file_validates_against_the_configuration_schema() {
    let schema = clarion::config::json_schema();
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let text = std::fs::read_to_string(CONFIG_PATH).unwrap();
    let file = serde_json::to_value(toml::from_str::<toml::Table>(&text).unwrap()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&file)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn it_loads_with_its_variables_and_builds_every_channel() {
    let config = load_config(CONFIG_PATH.as_ref(), env).unwrap();
    let channels = config.build_channels().unwrap();
    let mut names: Vec<_> = channels.keys().cloned().collect();
    names.sort();
    assert_eq!(names, ["audit-log", "oncall-email", "siem"]);
    let shown = format!("{config:?}");
    assert!(!shown.contains("pw-never-shown"), "{shown}");
    assert!(!shown.contains("whsec_MfKQ"), "{shown}");
}

#[test]
fn a_missing_variable_is_named_with_where_it_is_used() {
    let without = |missing: &str| {
        let missing = missing.to_owned();
        match load_config(CONFIG_PATH.as_ref(), move |name| {
            (name != missing).then(|| env(name)).flatten()
        }) {
            Err(FanoutError::Config(e)) => e.to_string(),
            other => panic!("expected a config error, got {other:?}"),
        }
    };
    assert_eq!(
        without("FANOUT_WEBHOOK_SECRET"),
        "channels.siem.secrets[0]: environment variable FANOUT_WEBHOOK_SECRET is not set"
    );
    assert_eq!(
        without("FANOUT_SMTP_PORT"),
        "channels.oncall-email.port: environment variable FANOUT_SMTP_PORT is not set"
    );
}
