//! Durations in humantime form (`30s`, `5m`, `1h 30m`, `7days`), with errors
//! that say what was wrong and show valid examples.

use std::fmt;
use std::time::Duration;

use serde::Deserializer;
use serde::de::{Error, Visitor};

const EXAMPLES: &str = "write e.g. \"30s\", \"5m\", \"1h 30m\" or \"7days\"";

/// Deserializes a humantime duration; use with
/// `#[serde(deserialize_with = "clarion_core::config::duration::deserialize")]`
/// in channel configs so every duration error reads the same.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    struct Humantime;
    impl Visitor<'_> for Humantime {
        type Value = Duration;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a duration string ({EXAMPLES})")
        }
        fn visit_str<E: Error>(self, text: &str) -> Result<Duration, E> {
            humantime::parse_duration(text)
                .map_err(|e| E::custom(format!("invalid duration {text:?} ({e}); {EXAMPLES}")))
        }
    }
    d.deserialize_str(Humantime)
}
