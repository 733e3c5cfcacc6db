//! The command line (clap).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::error::Failure;
use crate::{commands, serve, store_commands};

/// clarion: key-lifecycle notifications as a daemon and a CLI.
///
/// Exit codes: 0 success, 1 operational failure (store or channel
/// unreachable, delivery not found), 2 usage or configuration error.
#[derive(Debug, Parser)]
#[command(name = "clarion", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the dispatcher and the HTTP API until SIGTERM or SIGINT.
    Serve {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// How long to let in-flight deliveries finish on shutdown.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        grace: Duration,
    },
    /// Validate the configuration file; print channels, routes and store.
    Check {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the JSON Schema of the configuration file.
    Schema,
    /// Tell which routes match an event and why.
    Explain {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The event JSON, as POST /v1/events takes it.
        event: PathBuf,
    },
    /// Store an event; a `clarion serve` on the same store delivers it.
    Emit {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The event JSON, as POST /v1/events takes it.
        event: PathBuf,
    },
    /// List deliveries, newest first.
    Deliveries {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Only this status: pending, in_flight, sent or dead.
        #[arg(long)]
        status: Option<String>,
        /// Only this channel.
        #[arg(long)]
        channel: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Make dead deliveries pending again, due now.
    Requeue {
        /// The configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Delivery ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// API keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Print a fresh random key once, and its [[server.auth.keys]] entry.
    New {
        /// The key's name.
        name: String,
        /// Comma-separated: emit, inbox, inbox_proxy, admin, metrics.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
    },
}

/// The `clarion` program.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // --help and --version are successes; everything else is usage.
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging();
    // One rustls provider for the process (see the workspace Cargo.toml).
    let _ = rustls::crypto::ring::default_provider().install_default();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("clarion: {failure}");
            failure.exit_code()
        }
    }
}

fn run(command: Command) -> Result<(), Failure> {
    match command {
        Command::Check { config } => commands::check(&config),
        Command::Schema => commands::schema(),
        Command::Explain { config, event } => commands::explain(&config, &event),
        Command::Key {
            command: KeyCommand::New { name, scopes },
        } => commands::key_new(&name, &scopes),
        Command::Serve { config, grace } => runtime()?.block_on(serve::serve(&config, grace)),
        Command::Emit { config, event } => {
            runtime()?.block_on(store_commands::emit(&config, &event))
        }
        Command::Deliveries {
            config,
            status,
            channel,
            json,
        } => runtime()?.block_on(store_commands::deliveries(
            &config,
            status.as_deref(),
            channel,
            json,
        )),
        Command::Requeue { config, ids } => {
            runtime()?.block_on(store_commands::requeue(&config, &ids))
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Operational(format!("cannot start the runtime: {e}")))
}

fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
