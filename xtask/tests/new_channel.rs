//! `cargo xtask new-channel` writes a crate that builds and passes its own
//! tests without edits, and refuses bad requests without writing anything.
//!
//! The crate is scaffolded outside the repository (a standalone package with
//! path dependencies back to it and a copy of its `Cargo.lock`), so the real
//! workspace is never touched, and tested by a nested `cargo test --offline`
//! that shares this build's target directory: the dependencies compiled for
//! the workspace are reused where their features match. Cargo releases the
//! target directory's lock before it runs test binaries, so the nested build
//! does not wait for the outer one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

/// A fresh directory under the system's temporary directory; removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "clarion-xtask-new-channel-{test}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn xtask(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every file under `dir`, with its contents.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let contents = std::fs::read(&path).unwrap();
                files.push((path, contents));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn a_scaffolded_channel_builds_and_passes_its_tests_without_edits() {
    let scratch = Scratch::new("build");
    let root_manifest = std::fs::read(repository().join("Cargo.toml")).unwrap();

    let scaffolded = xtask(
        &["new-channel", "pager-duty", "--path", "pager-duty"],
        &scratch.0,
    );
    assert!(scaffolded.status.success(), "{}", text(&scaffolded));
    let printed = String::from_utf8_lossy(&scaffolded.stdout);
    assert!(printed.contains("cd pager-duty && cargo test"), "{printed}");
    assert!(
        printed.contains("use clarion_pager_duty as _;"),
        "{printed}"
    );

    let dir = scratch.0.join("pager-duty");
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("name = \"clarion-pager-duty\""),
        "{manifest}"
    );
    assert!(manifest.contains("\n[workspace]\n"), "{manifest}");
    let core = repository().join("core").display().to_string();
    assert!(
        manifest.contains(&format!("path = \"{core}\"")),
        "{manifest}"
    );
    assert!(dir.join("Cargo.lock").is_file());
    assert_eq!(
        std::fs::read(repository().join("Cargo.toml")).unwrap(),
        root_manifest,
        "a scaffold outside the workspace leaves the workspace's manifest alone"
    );

    // The outer target directory: <target>/tmp is CARGO_TARGET_TMPDIR.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let started = Instant::now();
    let tested = Command::new(&cargo)
        .args(["test", "--offline"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .output()
        .unwrap();
    eprintln!(
        "nested `cargo test --offline` of the scaffolded crate took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let report = text(&tested);
    assert!(tested.status.success(), "{report}");
    // The conformance suite (8 checks), the delivery tests (3) and the doc test.
    for passed in [
        "test result: ok. 8 passed",
        "test result: ok. 3 passed",
        "test result: ok. 1 passed",
    ] {
        assert!(report.contains(passed), "no `{passed}` in:\n{report}");
    }
    assert!(report.contains("config_schema_is_valid_and_example_builds ... ok"));

    // Its settings appear in the schema of a binary that links it.
    let started = Instant::now();
    let schema = Command::new(&cargo)
        .args(["run", "--offline", "--quiet", "--example", "schema"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .output()
        .unwrap();
    eprintln!(
        "nested `cargo run --example schema` took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(schema.status.success(), "{}", text(&schema));
    let schema: serde_json::Value = serde_json::from_slice(&schema.stdout).unwrap();
    let kinds: Vec<&str> = schema["properties"]["channels"]["additionalProperties"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|kind| kind["properties"]["kind"]["const"].as_str())
        .collect();
    assert_eq!(kinds, ["pager-duty"], "only the linked channel is listed");
}

#[test]
fn bad_requests_are_refused_with_a_reason_and_write_nothing() {
    let scratch = Scratch::new("refusals");
    std::fs::create_dir(scratch.0.join("taken")).unwrap();
    std::fs::write(scratch.0.join("taken").join("keep.txt"), "mine").unwrap();
    let before = snapshot(&scratch.0);

    let refusals: &[(&[&str], &str)] = &[
        (
            &["new-channel", "taken", "--path", "taken"],
            "taken already exists",
        ),
        (
            &["new-channel", "Pager_Duty", "--path", "x"],
            "invalid channel name \"Pager_Duty\": use lowercase letters and digits",
        ),
        (
            &["new-channel", "webhook", "--path", "webhook"],
            "kind \"webhook\" is taken by a stock channel",
        ),
        (
            &["new-channel", "fresh", "--path", "no/such/parent/fresh"],
            "does not exist; create it first",
        ),
        (&["new-channel"], "which channel?"),
        (
            &["new-channel", "fresh", "--path"],
            "--path needs a directory",
        ),
        (
            &["new-channel", "fresh", "--force"],
            "unknown option --force",
        ),
    ];
    for (args, expected) in refusals {
        let output = xtask(args, &scratch.0);
        assert!(!output.status.success(), "{args:?}: {}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.starts_with("xtask: ") && stderr.contains(expected),
            "{args:?}: expected {expected:?} in {stderr}"
        );
    }
    assert_eq!(
        snapshot(&scratch.0),
        before,
        "a refused request wrote something"
    );
}
