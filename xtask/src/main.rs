//! `cargo xtask <command>`: project automation that works on a fresh clone.
//!
//! - `test`   — everything CI checks: fmt, clippy, all tests, rustdoc.
//! - `schema` — print the JSON Schema of the configuration file.
//! - `demo`   — the main job: the fan-out example against local SMTP and
//!   webhook servers.
//! - `bench`  — benchmarks that print figures (release build).
//! - `new-channel <name> [--path DIR]` — scaffold a channel crate.

mod demo;
mod new_channel;
mod reference;

use std::process::{Command, ExitCode};

// Link the stock channels so their kinds appear in the schema, and the
// server so its `[server]` section does.
use clarion as _;
use clarion_server as _;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("schema") => schema(&args[1..]),
        Some("demo") => demo::run(),
        Some("bench") => bench(&args[1..]),
        Some("new-channel") => new_channel::run(&args[1..], &workspace_root()),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 test     fmt + clippy + every test + rustdoc (what CI runs)\n  \
                 schema   print the JSON Schema of the configuration file\n           \
                          (--markdown: as a reference; --readme: update README.md's)\n  \
                 demo     the fan-out example (examples/fanout.toml) against local SMTP + webhook servers\n  \
                 bench    print emit latency and delivery throughput (release build);\n           \
                          sections: e2e memory webhook smtp sqlite postgres mysql (default: all)\n  \
                 new-channel <name> [--path DIR]  scaffold a channel crate (channels/<name>)"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn schema(args: &[String]) -> Result<(), String> {
    let schema = clarion::config::json_schema();
    match args.first().map(String::as_str) {
        None => println!(
            "{}",
            serde_json::to_string_pretty(&schema).map_err(|e| e.to_string())?
        ),
        Some("--markdown") => print!("{}", reference::markdown(&schema)),
        Some("--readme") => {
            let path = workspace_root().join("README.md");
            let readme = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
            let updated = reference::splice(&readme, &reference::markdown(&schema))?;
            std::fs::write(&path, updated).map_err(|e| e.to_string())?;
            println!("updated the configuration reference in {}", path.display());
        }
        Some(other) => return Err(format!("schema: unknown option {other:?}")),
    }
    Ok(())
}

fn bench(extra: &[String]) -> Result<(), String> {
    let mut args = vec!["run", "--quiet", "--release", "-p", "clarion-bench", "--"];
    args.extend(extra.iter().map(String::as_str));
    cargo(&args, &[])
}

fn test(extra: &[String]) -> Result<(), String> {
    step("format", &["fmt", "--all", "--", "--check"], &[])?;
    step(
        "lint",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    let mut args = vec![
        "test",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--no-fail-fast",
    ];
    args.extend(extra.iter().map(String::as_str));
    step("tests", &args, &[])?;
    step(
        "doc tests",
        &["test", "--workspace", "--doc", "--all-features"],
        &[],
    )?;
    step(
        "rustdoc",
        &["doc", "--workspace", "--no-deps", "--all-features"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    println!("xtask test: all checks passed");
    Ok(())
}

fn step(name: &str, args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    println!("==> {name}: cargo {}", args.join(" "));
    cargo(args, env).map_err(|e| format!("{name} failed: {e}"))
}

fn cargo(args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} exited with {status}", args.join(" ")))
    }
}

fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_owned()
}
