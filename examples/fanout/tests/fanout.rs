//! Runs the real fan-out binary against a real SMTP server (aiosmtpd) and a
//! real HTTP receiver on 127.0.0.1, then checks what each received against
//! what the store recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use clarion::store::{DeliveryFilter, DeliveryRecord, DeliveryStatus, PageRequest};
use clarion::webhook_channel::{DEFAULT_TOLERANCE, WebhookSecret, verify};
use clarion_example_fanout::{CONFIG_PATH, load_config};
use clarion_testkit::servers::{
    Aio, Receiver, Reply, TempDir, random_password, random_webhook_secret,
};

struct Run {
    stdout: String,
    stderr: String,
    /// Every delivery the store holds afterwards, keyed by channel.
    deliveries: BTreeMap<String, Vec<DeliveryRecord>>,
    unread: BTreeMap<&'static str, u64>,
}

/// Runs the binary with `env` and reads the store it leaves behind.
async fn run_binary(env: Vec<(&'static str, String)>) -> Run {
    let bin = env!("CARGO_BIN_EXE_clarion-example-fanout");
    let vars = env.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(bin)
            .envs(vars)
            .env("RUST_LOG", "info")
            .output()
            .expect("the fan-out binary runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        output.status.success(),
        "fan-out exited with {}\n{stdout}\n{stderr}",
        output.status
    );

    let lookup = |name: &str| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
    let config = load_config(CONFIG_PATH.as_ref(), lookup).unwrap();
    let store = clarion::open_store(&config.store).await.unwrap();
    let page = store
        .deliveries(&DeliveryFilter::default(), PageRequest::first(100))
        .await
        .unwrap();
    assert!(page.next.is_none());
    let mut deliveries: BTreeMap<String, Vec<DeliveryRecord>> = BTreeMap::new();
    for d in page.items {
        deliveries.entry(d.channel.clone()).or_default().push(d);
    }
    let mut unread = BTreeMap::new();
    for owner in ["alice@example.com", "bob@example.com"] {
        unread.insert(owner, store.unread_count(owner).await.unwrap());
    }
    Run {
        stdout,
        stderr,
        deliveries,
        unread,
    }
}

fn keys(deliveries: &[DeliveryRecord]) -> BTreeSet<String> {
    deliveries.iter().map(|d| d.idempotency_key()).collect()
}

/// The local peers and the environment that points the binary at them.
struct Peers {
    password: String,
    secret: String,
    smtp: Aio,
    receiver: Receiver,
    env: Vec<(&'static str, String)>,
    _dir: TempDir,
}

async fn peers() -> Peers {
    let password = random_password();
    let secret = random_webhook_secret();
    let smtp = Aio::start(&["--auth", &format!("clarion:{password}")]);
    let receiver = Receiver::start().await;
    let dir = TempDir::new();
    let env = vec![
        (
            "FANOUT_DB",
            dir.path("fanout.db").to_str().unwrap().to_owned(),
        ),
        ("FANOUT_SMTP_HOST", "127.0.0.1".to_owned()),
        ("FANOUT_SMTP_PORT", smtp.port.to_string()),
        ("FANOUT_SMTP_PASSWORD", password.clone()),
        ("FANOUT_WEBHOOK_URL", receiver.url("/hooks/siem")),
        ("FANOUT_WEBHOOK_SECRET", secret.clone()),
    ];
    Peers {
        password,
        secret,
        smtp,
        receiver,
        env,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_routed_event_arrives_once_on_each_of_its_channels() {
    let Peers {
        password,
        secret,
        smtp,
        receiver,
        env,
        _dir,
    } = peers().await;
    let run = run_binary(env).await;

    // The store: 3 events (the duplicate added nothing) → 6 deliveries, all sent.
    let count = |channel: &str| run.deliveries.get(channel).map_or(0, Vec::len);
    assert_eq!(count("audit-log"), 1, "rotation success → log");
    assert_eq!(count("siem"), 3, "every event → webhook");
    assert_eq!(count("oncall-email"), 2, "failure + deadline → e-mail");
    assert_eq!(run.deliveries.len(), 3, "{:?}", run.deliveries.keys());
    for d in run.deliveries.values().flatten() {
        assert_eq!(d.status, DeliveryStatus::Sent, "{d:?}");
        assert_eq!(d.attempts, 1, "{d:?}");
    }
    let notifications: BTreeSet<_> = run
        .deliveries
        .values()
        .flatten()
        .map(|d| d.notification_id)
        .collect();
    assert_eq!(notifications.len(), 3);
    assert_eq!(
        run.unread,
        BTreeMap::from([("alice@example.com", 2), ("bob@example.com", 1)])
    );

    // E-mail: one per failure / deadline event, to on-call and the owner,
    // with the delivery's idempotency key as Message-ID.
    let mails = smtp.received();
    assert_eq!(mails.len(), 2, "{mails:?}");
    let mut mail_ids = BTreeSet::new();
    let by_kind: BTreeMap<String, _> = mails
        .iter()
        .map(|m| (m.header("X-Clarion-Event-Kind"), m))
        .collect();
    let failure = by_kind["rotation_failure"];
    assert_eq!(
        failure.header("Subject"),
        "[clarion] CRITICAL: rotation failed for certificate \"api.example.internal\" (cert-42)"
    );
    assert_eq!(
        failure.rcpt_tos(),
        ["oncall@example.com", "alice@example.com"]
    );
    let deadline = by_kind["approaching_deadline"];
    assert_eq!(
        deadline.header("Subject"),
        "[clarion] WARNING: token \"ci-deploy-token\" (token-9) is due for rotation in 5 days"
    );
    assert_eq!(
        deadline.rcpt_tos(),
        ["oncall@example.com", "bob@example.com"]
    );
    for mail in &mails {
        assert!(mail.accepted());
        assert_eq!(mail.auth_user().as_deref(), Some("clarion"));
        assert!(mail.header("To").contains("oncall@example.com"));
        let id = mail.header("Message-ID");
        let key = id
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix("@example.com>"))
            .unwrap_or_else(|| panic!("Message-ID {id}"));
        mail_ids.insert(key.to_owned());
    }
    assert_eq!(mail_ids, keys(&run.deliveries["oncall-email"]));

    // Webhooks: one per event, signed with the configured secret, each with
    // its delivery's idempotency key as webhook-id.
    let signing: WebhookSecret = secret.parse().unwrap();
    let hooks = receiver.requests();
    assert_eq!(hooks.len(), 3);
    let mut types = Vec::new();
    let mut hook_ids = BTreeSet::new();
    for hook in &hooks {
        assert_eq!(hook.path, "/hooks/siem");
        verify(&signing, &hook.headers, &hook.body, DEFAULT_TOLERANCE)
            .unwrap_or_else(|e| panic!("signature of {hook:?}: {e}"));
        let body: serde_json::Value = serde_json::from_slice(&hook.body).unwrap();
        types.push(body["type"].as_str().unwrap().to_owned());
        hook_ids.insert(hook.headers["webhook-id"].to_str().unwrap().to_owned());
    }
    types.sort();
    assert_eq!(
        types,
        [
            "approaching_deadline",
            "rotation_failure",
            "rotation_success"
        ]
    );
    assert_eq!(hook_ids, keys(&run.deliveries["siem"]));
    assert!(hook_ids.is_disjoint(&mail_ids));

    // The log channel wrote its line under the configured target.
    let log_lines: Vec<_> = run
        .stderr
        .lines()
        .filter(|l| l.contains("kms::audit"))
        .collect();
    assert_eq!(log_lines.len(), 1, "{}", run.stderr);
    assert!(log_lines[0].contains("key-7"), "{}", log_lines[0]);

    // The report says what happened, and no secret is ever printed.
    assert_eq!(run.stdout.matches("→ duplicate of").count(), 1);
    assert_eq!(
        run.stdout
            .matches("route #1 (wake someone): matched: kind")
            .count(),
        2,
        "{}",
        run.stdout
    );
    for output in [&run.stdout, &run.stderr] {
        assert!(!output.contains(&password));
        assert!(!output.contains(&secret));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_webhook_carries_the_same_idempotency_key() {
    let peers = peers().await;
    // The first webhook is refused once; the channel honours Retry-After.
    peers
        .receiver
        .script([Reply::with_header(503, "retry-after", "1")]);
    let run = run_binary(peers.env.clone()).await;

    let hooks = peers.receiver.requests();
    assert_eq!(hooks.len(), 4, "3 events + 1 retry");
    let ids: Vec<_> = hooks
        .iter()
        .map(|h| h.headers["webhook-id"].to_str().unwrap().to_owned())
        .collect();
    let retried = &ids[0];
    assert_eq!(ids.iter().filter(|id| *id == retried).count(), 2, "{ids:?}");
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        3,
        "one key per delivery: {ids:?}"
    );
    let signing: WebhookSecret = peers.secret.parse().unwrap();
    for hook in &hooks {
        verify(&signing, &hook.headers, &hook.body, DEFAULT_TOLERANCE).unwrap();
    }
    for d in run.deliveries.values().flatten() {
        assert_eq!(d.status, DeliveryStatus::Sent, "{d:?}");
        let expected = if d.idempotency_key() == *retried {
            2
        } else {
            1
        };
        assert_eq!(d.attempts, expected, "{d:?}");
    }
    assert_eq!(peers.smtp.received().len(), 2);
}
