//! The startup audit, in a binary that links no channel crate at all:
//! configuration naming a kind fails, listing what is registered and saying
//! how to link the missing crate.

use clarion_core::{Config, ConfigError, registry};

#[test]
fn nothing_is_registered_when_no_channel_crate_is_linked() {
    assert!(registry::kinds().is_empty());
    assert!(registry::find("log").is_none());
}

#[test]
fn a_stock_kind_that_is_not_linked_is_a_startup_error() {
    let err = Config::from_toml_str(
        r#"
        [channels.ops-log]
        kind = "log"
        "#,
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::UnknownChannelKind { .. }));
    assert_eq!(
        err.to_string(),
        "channels.ops-log.kind: no channel plugin of kind \"log\" is linked into this program \
         (registered kinds: none); enable the `log` feature of the `clarion` crate, or add \
         `clarion_log` to Cargo.toml and link it with `use clarion_log as _;`"
    );
}

#[test]
fn a_third_party_kind_that_is_not_linked_says_how_to_link_it() {
    let mut config = Config::default();
    config
        .add_channel(
            "matrix",
            clarion_core::config::ChannelConfig::new("matrix-push", serde_json::json!({})),
        )
        .unwrap();
    // `validate` and `build_channels` both audit: code-built configs too.
    let err = config.build_channels().unwrap_err();
    assert_eq!(err.path(), Some("channels.matrix.kind"));
    let message = err.to_string();
    assert!(
        message.contains("`use clarion_matrix_push as _;`"),
        "{message}"
    );
    assert!(message.contains("a crate that is only a dependency is not linked"));
    assert!(config.validate().is_err());
}
