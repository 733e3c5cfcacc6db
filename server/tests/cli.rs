//! The `clarion` command line: exit codes, `check` messages with paths,
//! refusing to serve insecurely, `key new`, `emit` / `deliveries` /
//! `requeue` on a store a running `serve` delivers from.

mod support;

use clarion_testkit::servers::{Receiver, Reply, random_webhook_secret};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::*;

const LOG_CHANNEL: &str = r#"
[channels.ops-log]
kind = "log"

[[routes]]
channels = ["ops-log"]
"#;

fn config_path(dir: &clarion_testkit::servers::TempDir) -> String {
    dir.path("clarion.toml").display().to_string()
}

#[test]
fn help_and_usage_exit_codes() {
    for command in [
        "serve",
        "check",
        "schema",
        "explain",
        "emit",
        "deliveries",
        "requeue",
    ] {
        let (code, out, _) = run(&[command, "--help"]);
        assert_eq!(code, 0, "{command} --help");
        assert!(out.contains("Usage: clarion"), "{command}: {out}");
    }
    let (code, out, _) = run(&["key", "new", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("--scopes"), "{out}");
    let (code, _, err) = run(&["frobnicate"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["check"]);
    assert_eq!(code, 2, "a missing --config is a usage error: {err}");
}

#[test]
fn check_names_the_path_of_every_kind_of_error_and_exits_2() {
    let cases = [
        ("[server]\nlisten = \"nowhere\"\n", "server.listen: "),
        (
            "[server]\nlisten_on = \"127.0.0.1:1\"\n",
            "server.listen_on: unknown field `listen_on`",
        ),
        (
            "[server]\n[[server.auth.keys]]\nname = \"k\"\nsha256 = \"abc\"\nscopes = [\"emit\"]\n",
            "server.auth.keys[0].sha256: must be 64 lowercase hex digits",
        ),
        (
            "[server]\n[[server.auth.keys]]\nname = \"k\"\nsha256 = \"abc\"\nscopes = [\"root\"]\n",
            "server.auth.keys[0].scopes[0]: unknown variant `root`",
        ),
        (
            "[channels.x]\nkind = \"log\"\nlevel = 1\n",
            "channels.x.level: unknown field",
        ),
        (
            "[[routes]]\nchannels = [\"missing\"]\n",
            "routes[0].channels[0]",
        ),
    ];
    for (body, expected) in cases {
        let dir = config_dir(body);
        let (code, out, err) = run(&["check", "--config", &config_path(&dir)]);
        assert_eq!(code, 2, "{body}\nstdout: {out}\nstderr: {err}");
        assert!(
            err.contains(expected),
            "{body}\nexpected {expected:?} in: {err}"
        );
    }

    let dir = config_dir(&format!(
        "{LOG_CHANNEL}\n[server]\nlisten = \"127.0.0.1:0\"\n"
    ));
    let (code, out, err) = run(&["check", "--config", &config_path(&dir)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ops-log (kind log)"), "{out}");
    assert!(out.contains("store: sqlite (url not shown)"), "{out}");
    assert!(
        !out.contains("clarion.db"),
        "the store url is never printed: {out}"
    );
}

#[test]
fn serve_refuses_to_run_unauthenticated_on_a_public_address_or_without_keys() {
    let dir = config_dir(&format!(
        "{LOG_CHANNEL}\n[server]\nlisten = \"0.0.0.0:0\"\nallow_unauthenticated = true\n"
    ));
    let (code, _, err) = run(&["serve", "--config", &config_path(&dir)]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("server.allow_unauthenticated: is accepted only on a loopback"),
        "{err}"
    );

    let dir = config_dir(&format!(
        "{LOG_CHANNEL}\n[server]\nlisten = \"127.0.0.1:0\"\n"
    ));
    let (code, _, err) = run(&["serve", "--config", &config_path(&dir)]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("server.auth.keys: no API key is configured"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_from_key_new_works_as_a_configured_key() {
    let (code, out, err) = run(&["key", "new", "kms", "--scopes", "emit,metrics"]);
    assert_eq!(code, 0, "{err}");
    let key = out
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .unwrap()
        .to_owned();
    let entry = &out[out.find("[[server.auth.keys]]").expect("the config entry")..];
    assert!(
        !entry.contains(&key),
        "the entry holds the hash, not the key"
    );
    assert!(
        entry.contains("scopes = [\"emit\", \"metrics\"]"),
        "{entry}"
    );

    let daemon = Daemon::start(config_dir(&format!(
        "{LOG_CHANNEL}\n[server]\nlisten = \"127.0.0.1:0\"\n\n{entry}"
    )))
    .await;
    let client = client();
    let event =
        json!({ "kind": "rotation_success", "subject": { "type": "symmetric_key", "id": "k1" } });
    let response = client
        .post(daemon.url("/v1/events"))
        .bearer_auth(&key)
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let result: Value = response.json().await.unwrap();
    assert_eq!(result["result"], "enqueued", "{result}");
    let admin = client
        .get(daemon.url("/v1/admin/stats"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::FORBIDDEN);
    assert_eq!(daemon.terminate().await.code(), Some(0));

    let (code, _, err) = run(&["key", "new", "kms", "--scopes", "root"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown scope \"root\""), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_explain_deliveries_and_requeue_on_the_store_a_daemon_delivers_from() {
    let receiver = Receiver::start().await;
    // The first attempt is refused for good (400: permanent), so the delivery dies.
    receiver.script([Reply::status(400)]);
    let secret = random_webhook_secret();
    let dir = config_dir(&format!(
        r#"
[channels.hook]
kind = "webhook"
url = "{}"
secrets = ["{secret}"]

[[routes]]
name = "failures"
kinds = ["rotation_failure"]
channels = ["hook"]

[server]
listen = "127.0.0.1:0"
{}
"#,
        receiver.url("/hook"),
        keys_toml()
    ));
    let config = config_path(&dir);
    let event_file = dir.path("event.json");
    std::fs::write(
        &event_file,
        json!({ "kind": "rotation_failure", "subject": { "type": "symmetric_key", "id": "k9" } })
            .to_string(),
    )
    .unwrap();
    let event_file = event_file.display().to_string();

    let (code, out, err) = run(&["explain", "--config", &config, &event_file]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("route #0 (failures): matched"), "{out}");
    assert!(out.contains("=> channels: hook"), "{out}");

    let daemon = Daemon::start(dir).await;
    let (code, out, err) = run(&["emit", "--config", &config, &event_file]);
    assert_eq!(code, 0, "{err}");
    let result: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(result["result"], "enqueued", "{out}");

    let dead = eventually("the delivery dead after the 400", || async {
        let (code, out, _) = run(&[
            "deliveries",
            "--config",
            &config,
            "--status",
            "dead",
            "--json",
        ]);
        assert_eq!(code, 0);
        out.lines()
            .next()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
    })
    .await;
    assert_eq!(dead["channel"], "hook");
    let id = dead["id"].as_str().unwrap().to_owned();

    let (code, out, err) = run(&["requeue", "--config", &config, &id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("requeued"), "{out}");
    // The receiver answers 200 now; the daemon's dispatcher picks it up.
    eventually("the requeued delivery sent", || async {
        let (_, out, _) = run(&[
            "deliveries",
            "--config",
            &config,
            "--status",
            "sent",
            "--json",
        ]);
        out.contains(&id).then_some(())
    })
    .await;
    assert_eq!(receiver.requests().len(), 2);

    let (code, _, err) = run(&["requeue", "--config", &config, &id]);
    assert_eq!(
        code, 1,
        "requeuing a sent delivery is an operational failure: {err}"
    );
    assert!(err.contains("not dead (sent)"), "{err}");
    let (code, _, err) = run(&["requeue", "--config", &config, "not-an-id"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(&["deliveries", "--config", &config, "--status", "lost"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(daemon.terminate().await.code(), Some(0));
}

#[test]
fn the_example_config_of_the_readme_checks() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/clarion.example.toml");
    let (code, out, err) = run(&["check", "--config", example]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("server: listen 127.0.0.1:8686, 0 API key(s), unauthenticated allowed"),
        "{out}"
    );
}
