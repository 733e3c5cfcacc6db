//! Command-line options. Hand-parsed: the example should show clarion, not an
//! argument-parsing library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// What `--help` prints.
pub const HELP: &str = "\
embed_kms — a small simulated KMS that embeds clarion

Keys with rotation policies live in the KMS's own table, in the same SQLite
database as clarion's store. Every tick the simulated clock moves forward, due
keys are rotated (the simulated HSM fails a seeded fraction of attempts), and
each rotation and its notification commit in one transaction. The deadline
watcher warns before rotations are due. The inbox API, the admin API and
Prometheus metrics are served on one axum server.

USAGE:
    embed_kms [OPTIONS]

OPTIONS:
    --config PATH       clarion's TOML configuration (default: the built-in one,
                        examples/embed_kms/clarion.toml: two log channels)
    --db URL            the SQLite database, for the keys and clarion's store
                        (default: the config's [store] url, sqlite://embed-kms.db;
                        created if missing)
    --listen ADDR       where to serve HTTP (default: 127.0.0.1:8080; port 0 picks one)
    --ticks N           simulate N ticks at once, then keep serving until stopped
                        (default: one tick per second, forever)
    --tick-length DUR   simulated time per tick (default: 1day)
    --seed N            seed of the simulated HSM's failures (default: 7)
    --failure-rate P    fraction of rotations the HSM fails, 0 to 1 (default: 0.25)
    -h, --help          print this help

HTTP (the caller is named by the x-user-id header; admin needs x-role: admin):
    GET  /api/notifications              the caller's inbox, with the unread count
    GET  /api/notifications/unread/count
    POST /api/notifications/read-all
    GET  /api/admin/deliveries?status=dead
    GET  /api/admin/stats
    GET  /metrics                        Prometheus text format

Stop it with Ctrl-C or SIGTERM: it stops rotating, drains deliveries in flight
and exits. It prints `listening on http://ADDR` and, with --ticks,
`simulation done: …` on stdout; logs go to stderr (RUST_LOG to filter).
";

/// The parsed options.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The database URL, if not the configuration's `[store] url`.
    pub db: Option<String>,
    /// clarion's configuration file, if not the built-in one.
    pub config: Option<PathBuf>,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Ticks to simulate at once; `None`: one per second until stopped.
    pub ticks: Option<u32>,
    /// Simulated time per tick.
    pub tick_length: Duration,
    /// The HSM's failure seed.
    pub seed: u64,
    /// The HSM's failure rate.
    pub failure_rate: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            db: None,
            config: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            ticks: None,
            tick_length: Duration::from_secs(86_400),
            seed: 7,
            failure_rate: 0.25,
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Run the KMS.
    Run(Options),
    /// Print [`HELP`].
    Help,
}

/// A bad command line; the message names the option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{option}: {message} (see --help)")]
pub struct UsageError {
    /// The option at fault.
    pub option: String,
    /// What is wrong.
    pub message: String,
}

impl Command {
    /// Parses the arguments after the program name.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, UsageError> {
        let mut options = Options::default();
        let mut args = args.into_iter();
        while let Some(option) = args.next() {
            if option == "-h" || option == "--help" {
                return Ok(Command::Help);
            }
            let error = |message: String| UsageError {
                option: option.clone(),
                message,
            };
            let value = args.next().ok_or_else(|| error("expects a value".into()))?;
            let invalid =
                |e: &dyn std::fmt::Display| error(format!("invalid value {value:?}: {e}"));
            match option.as_str() {
                "--db" => options.db = Some(value.clone()),
                "--config" => options.config = Some(PathBuf::from(&value)),
                "--listen" => options.listen = value.parse().map_err(|e| invalid(&e))?,
                "--ticks" => options.ticks = Some(value.parse().map_err(|e| invalid(&e))?),
                "--tick-length" => {
                    options.tick_length =
                        humantime::parse_duration(&value).map_err(|e| invalid(&e))?
                }
                "--seed" => options.seed = value.parse().map_err(|e| invalid(&e))?,
                "--failure-rate" => {
                    let rate: f64 = value.parse().map_err(|e| invalid(&e))?;
                    if !(0.0..=1.0).contains(&rate) {
                        return Err(invalid(&"must be between 0 and 1"));
                    }
                    options.failure_rate = rate;
                }
                _ => {
                    return Err(UsageError {
                        option,
                        message: "unknown option".into(),
                    });
                }
            }
        }
        Ok(Command::Run(options))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, UsageError> {
        Command::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn options_and_errors_name_the_option() {
        let Command::Run(o) = parse(&["--ticks", "5", "--listen", "127.0.0.1:0"]).unwrap() else {
            panic!("expected Run");
        };
        assert_eq!((o.ticks, o.listen.port()), (Some(5), 0));
        assert_eq!(parse(&["--help"]).unwrap(), Command::Help);
        let err = parse(&["--failure-rate", "2"]).unwrap_err();
        assert_eq!(err.option, "--failure-rate");
        assert!(
            parse(&["--ticks"])
                .unwrap_err()
                .to_string()
                .contains("expects a value")
        );
        assert_eq!(
            parse(&["--bogus", "1"]).unwrap_err().message,
            "unknown option"
        );
    }
}
