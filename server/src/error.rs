//! Why a command failed, and the exit code that says so.

use std::process::ExitCode;

use clarion::ConfigError;

/// A failed command: 2 for usage and configuration errors (fix the command
/// or the file), 1 for operational failures (a store or channel unreachable,
/// a delivery not found).
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The configuration is wrong; the message names the path.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The command line or an input file is wrong.
    #[error("{0}")]
    Usage(String),
    /// Something the command needs failed.
    #[error("{0}")]
    Operational(String),
}

impl Failure {
    /// The process exit code.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Config(_) | Failure::Usage(_) => ExitCode::from(2),
            Failure::Operational(_) => ExitCode::from(1),
        }
    }
}
