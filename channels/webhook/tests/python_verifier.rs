//! An independent implementation of the specification checks our signatures:
//! the `standardwebhooks` package from PyPI, run with python3. The test
//! installs it with pip when it is missing (CI runs on a fresh machine).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clarion_core::channel::Channel;
use clarion_webhook::{DEFAULT_TOLERANCE, WebhookChannel, WebhookConfig, WebhookSecret, verify};
use common::*;
use http::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

const PACKAGE: &str = "standardwebhooks==1.1.0";

/// Imports `standardwebhooks`, installing it first if needed; panics with
/// what to do when that is impossible.
fn ensure_standardwebhooks() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let importable = || {
            Command::new("python3")
                .args(["-c", "import standardwebhooks.webhooks"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if importable() {
            return Ok(());
        }
        let base = [
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ];
        let mut log = String::new();
        // Plain first; `--break-system-packages` for an externally managed
        // (PEP 668) system Python.
        for extra in [&[][..], &["--break-system-packages"][..]] {
            let out = Command::new("python3")
                .args(base)
                .args(extra)
                .arg(PACKAGE)
                .output()
                .map_err(|e| format!("cannot run python3: {e}"))?;
            log.push_str(&String::from_utf8_lossy(&out.stderr));
            if out.status.success() && importable() {
                return Ok(());
            }
        }
        Err(format!("`python3 -m pip install {PACKAGE}` failed:\n{log}"))
    });
    if let Err(e) = ready {
        panic!("the independent verifier is unavailable: {e}");
    }
}

const VERIFY_PY: &str = r#"
import base64, json, sys
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
req = json.load(sys.stdin)
body = base64.b64decode(req["body"])
out = {"verified": [], "tampered_rejected": []}
for secret in req["secrets"]:
    Webhook(secret).verify(body, req["headers"])
    out["verified"].append(secret[:10])
    try:
        Webhook(secret).verify(body + b" ", req["headers"])
    except WebhookVerificationError:
        out["tampered_rejected"].append(secret[:10])
print(json.dumps(out))
"#;

const SIGN_PY: &str = r#"
import base64, json, sys
from datetime import datetime, timezone
from standardwebhooks.webhooks import Webhook
req = json.load(sys.stdin)
ts = datetime.fromtimestamp(req["timestamp"], tz=timezone.utc)
print(Webhook(req["secret"]).sign(req["id"], ts, base64.b64decode(req["body"]).decode()))
"#;

fn python(script: &str, input: &Value) -> String {
    ensure_standardwebhooks();
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn headers_json(r: &Recorded) -> Value {
    let mut map = serde_json::Map::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        map.insert(name.into(), json!(header(r, name)));
    }
    Value::Object(map)
}

#[tokio::test]
async fn the_standardwebhooks_package_verifies_our_signatures() {
    let receiver = Receiver::start().await;
    let channel =
        WebhookChannel::from_config(WebhookConfig::new(receiver.url("/")).secret(SECRET_A))
            .unwrap();
    channel.deliver(&delivery(failure_event())).await.unwrap();
    let r = &receiver.requests()[0];
    let out: Value = serde_json::from_str(&python(
        VERIFY_PY,
        &json!({"secrets": [SECRET_A], "headers": headers_json(r), "body": STANDARD.encode(&r.body)}),
    ))
    .unwrap();
    assert_eq!(out["verified"], json!([&SECRET_A[..10]]));
    assert_eq!(out["tampered_rejected"], json!([&SECRET_A[..10]]));
}

#[tokio::test]
async fn the_standardwebhooks_package_verifies_both_rotation_signatures() {
    let receiver = Receiver::start().await;
    let channel = WebhookChannel::from_config(
        WebhookConfig::new(receiver.url("/"))
            .secret(SECRET_A)
            .secret(SECRET_B),
    )
    .unwrap();
    channel.deliver(&delivery(failure_event())).await.unwrap();
    let r = &receiver.requests()[0];
    let out: Value = serde_json::from_str(&python(
        VERIFY_PY,
        &json!({"secrets": [SECRET_A, SECRET_B], "headers": headers_json(r), "body": STANDARD.encode(&r.body)}),
    ))
    .unwrap();
    assert_eq!(out["verified"].as_array().unwrap().len(), 2);
    assert_eq!(out["tampered_rejected"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn our_verify_accepts_what_the_standardwebhooks_package_signs() {
    let body = br#"{"type":"rotation_success","data":{"id":"x"}}"#;
    let now = chrono::Utc::now().timestamp();
    let signature = python(
        SIGN_PY,
        &json!({"secret": SECRET_B, "id": "msg_from_python", "timestamp": now, "body": STANDARD.encode(body)}),
    );
    assert!(signature.starts_with("v1,"), "{signature}");
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", HeaderValue::from_static("msg_from_python"));
    headers.insert("webhook-timestamp", HeaderValue::from(now));
    headers.insert("webhook-signature", signature.parse().unwrap());
    let secret: WebhookSecret = SECRET_B.parse().unwrap();
    verify(&secret, &headers, body, DEFAULT_TOLERANCE).unwrap();
    let wrong: WebhookSecret = SECRET_A.parse().unwrap();
    assert!(verify(&wrong, &headers, body, DEFAULT_TOLERANCE).is_err());
}
