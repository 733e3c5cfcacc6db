//! `clarion-example-fanout [CONFIG]`: runs the fan-out example (see the
//! library) on `examples/fanout.toml` or CONFIG, with endpoints and secrets
//! from the environment (`FANOUT_*`, listed in the file). Exits 1 if any
//! delivery did not end `sent`, 2 if the example could not run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clarion_example_fanout::{CONFIG_PATH, load_config, run};

/// Long enough for a slow relay, short enough that a dead one is reported
/// rather than waited on through its retries.
const DRAIN_LIMIT: Duration = Duration::from_secs(20);

#[tokio::main]
async fn main() -> ExitCode {
    // The log channel writes through tracing: show its lines.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CONFIG_PATH));
    let result = async {
        let config = load_config(&path, |name| std::env::var(name).ok())?;
        let shown = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        println!("clarion fan-out: {}", shown.display());
        run(config, &mut std::io::stdout(), DRAIN_LIMIT).await
    }
    .await;
    match result {
        Ok(summary) => {
            if let Err(e) = summary.print(&mut std::io::stdout()) {
                eprintln!("clarion-example-fanout: cannot print the summary: {e}");
                return ExitCode::from(2);
            }
            let not_sent = summary.not_sent();
            for d in &not_sent {
                eprintln!(
                    "not sent: {} on {}: {} ({})",
                    d.id,
                    d.channel,
                    d.status,
                    d.last_error.as_deref().unwrap_or("no error recorded")
                );
            }
            if not_sent.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("clarion-example-fanout: {e}");
            ExitCode::from(2)
        }
    }
}
