//! `embed_kms`: see `--help` and the crate documentation.

use std::process::ExitCode;

use clarion_example_embed_kms::options::{Command, HELP};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let options = match Command::parse(std::env::args().skip(1)) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("embed_kms: {e}");
            return ExitCode::from(2);
        }
    };
    // clarion's TLS clients use rustls with the ring provider; installing it
    // as the process default keeps any other rustls user on the same one
    // (two providers in one process make rustls panic).
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Logs (including the log channel's deliveries) on stderr; stdout is
    // kept for the few lines a driver reads.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match clarion_example_embed_kms::run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("embed_kms: {e}");
            ExitCode::FAILURE
        }
    }
}
