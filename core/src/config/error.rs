//! Configuration errors: every one names the path of what is wrong.

use std::path::PathBuf;

/// Why a configuration was rejected.
///
/// `Display` always starts with the path of the offending value
/// (`channels.ops-email.port: …`), or with the TOML line for syntax errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is not valid TOML.
    #[error("TOML syntax error at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// A value is missing, of the wrong type, or makes no sense.
    #[error("{path}: {message}")]
    Invalid {
        /// Where, e.g. `routes[2].channels[0]`.
        path: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A channel names a kind no linked crate registered.
    #[error(
        "{path}: no channel plugin of kind \"{kind}\" is linked into this program \
         (registered kinds: {registered}); {hint}"
    )]
    UnknownChannelKind {
        /// `channels.<name>.kind`.
        path: String,
        /// The kind asked for.
        kind: String,
        /// The kinds that are linked, comma-separated.
        registered: String,
        /// How to link the missing crate.
        hint: String,
    },
    /// The file could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl ConfigError {
    /// An [`ConfigError::Invalid`] at `path`.
    pub fn invalid(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }

    /// The path of the offending value, when there is one.
    pub fn path(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { path, .. } | ConfigError::UnknownChannelKind { path, .. } => {
                Some(path)
            }
            _ => None,
        }
    }
}
