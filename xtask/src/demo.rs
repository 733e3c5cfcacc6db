//! `cargo xtask demo`: the fan-out example against real local servers.
//!
//! Starts aiosmtpd (installed with pip on first run) and a webhook receiver
//! on 127.0.0.1, runs `examples/fanout` on `examples/fanout.toml` with their
//! endpoints and fresh secrets, prints what each receiver got, and fails
//! unless every routed delivery arrived exactly once.

use std::collections::BTreeMap;
use std::time::Duration;

use clarion::EmitOutcome;
use clarion::store::DeliveryRecord;
use clarion::webhook_channel::{DEFAULT_TOLERANCE, WebhookSecret, verify};
use clarion_example_fanout::{CONFIG_PATH, Summary, load_config};
use clarion_testkit::servers::{
    Aio, Received, Receiver, Recorded, TempDir, ensure_aiosmtpd, random_password,
    random_webhook_secret,
};

/// How long the dispatcher may take to finish every delivery.
const DRAIN_LIMIT: Duration = Duration::from_secs(20);

/// Runs the demo; an error says what failed or what did not arrive.
pub fn run() -> Result<(), String> {
    println!("clarion demo: the fan-out example (examples/fanout) on examples/fanout.toml");
    println!("checking for aiosmtpd, a real SMTP server from PyPI …");
    ensure_aiosmtpd().map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start tokio: {e}"))?;
    runtime.block_on(demo())
}

async fn demo() -> Result<(), String> {
    // The log channel writes through tracing: show its lines among ours.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .try_init();

    let password = random_password();
    let secret = random_webhook_secret();
    let smtp =
        Aio::try_start(&["--auth", &format!("clarion:{password}")]).map_err(|e| e.to_string())?;
    let receiver = Receiver::start().await;
    let dir = TempDir::new();
    let db = dir.path("fanout.db");
    let url = receiver.url("/hooks/siem");
    println!(
        "SMTP server:      aiosmtpd on 127.0.0.1:{} (AUTH as clarion)",
        smtp.port
    );
    println!("webhook receiver: {url}");
    println!("store:            {} (fresh)", db.display());
    println!("secrets:          a fresh SMTP password and webhook secret, in the environment only");
    let env = BTreeMap::from([
        ("FANOUT_DB", db.display().to_string()),
        ("FANOUT_SMTP_HOST", "127.0.0.1".to_owned()),
        ("FANOUT_SMTP_PORT", smtp.port.to_string()),
        ("FANOUT_SMTP_PASSWORD", password),
        ("FANOUT_WEBHOOK_URL", url),
        ("FANOUT_WEBHOOK_SECRET", secret.clone()),
    ]);
    let config = load_config(CONFIG_PATH.as_ref(), |name| env.get(name).cloned())
        .map_err(|e| e.to_string())?;
    let kinds: BTreeMap<String, String> = config
        .channels
        .iter()
        .map(|(name, channel)| (name.clone(), channel.kind.clone()))
        .collect();
    let summary = clarion_example_fanout::run(config, &mut std::io::stdout(), DRAIN_LIMIT)
        .await
        .map_err(|e| e.to_string())?;

    let secret: WebhookSecret = secret.parse().map_err(|e| format!("webhook secret: {e}"))?;
    let mails = smtp.received();
    let hooks = receiver.requests();
    print_mails(&mails);
    print_hooks(&hooks, &secret);
    summary
        .print(&mut std::io::stdout())
        .map_err(|e| format!("cannot print: {e}"))?;
    check(&summary, &kinds, &mails, &hooks, &secret)
}

fn print_mails(mails: &[Received]) {
    println!("\n── the SMTP server received {} e-mail(s)", mails.len());
    for mail in mails {
        println!("subject:    {}", first(&mail.headers("Subject")));
        println!("to:         {}", mail.rcpt_tos().join(", "));
        println!("message-id: {}\n", first(&mail.headers("Message-ID")));
    }
}

fn print_hooks(hooks: &[Recorded], secret: &WebhookSecret) {
    println!("── the webhook receiver received {} POST(s)", hooks.len());
    for hook in hooks {
        let body: serde_json::Value = serde_json::from_slice(&hook.body).unwrap_or_default();
        let verdict = match verify(secret, &hook.headers, &hook.body, DEFAULT_TOLERANCE) {
            Ok(()) => "signature verified".to_owned(),
            Err(e) => format!("SIGNATURE REJECTED: {e}"),
        };
        println!(
            "{:<22} {:<10} {verdict}, webhook-id {}",
            body["type"].as_str().unwrap_or("?"),
            body["data"]["subject"]["id"].as_str().unwrap_or("?"),
            header(hook, "webhook-id"),
        );
    }
}

/// Every delivery the store says was sent arrived once, where its channel
/// kind sends it; nothing else arrived.
fn check(
    summary: &Summary,
    kinds: &BTreeMap<String, String>,
    mails: &[Received],
    hooks: &[Recorded],
    secret: &WebhookSecret,
) -> Result<(), String> {
    let mut problems = Vec::new();
    let repeated = summary.emitted.last().map(|e| &e.outcome);
    if !matches!(repeated, Some(EmitOutcome::Duplicate { .. })) {
        problems.push(format!(
            "the repeated event was not a duplicate: {repeated:?}"
        ));
    }
    for d in summary.not_sent() {
        problems.push(format!(
            "{} delivery {} is {} ({})",
            d.channel,
            d.id,
            d.status,
            d.last_error.as_deref().unwrap_or("no error recorded")
        ));
    }
    let of_kind = |kind: &str| -> Vec<&DeliveryRecord> {
        summary
            .deliveries
            .iter()
            .filter(|d| kinds.get(&d.channel).map(String::as_str) == Some(kind))
            .collect()
    };
    let (emails, webhooks, logs) = (of_kind("smtp"), of_kind("webhook"), of_kind("log"));
    for d in &emails {
        let key = d.idempotency_key();
        let found = mails
            .iter()
            .filter(|m| {
                m.headers("Message-ID")
                    .iter()
                    .any(|id| id.starts_with(&format!("<{key}@")))
            })
            .count();
        if found != 1 {
            problems.push(format!(
                "e-mail {key}: received {found} time(s), expected once"
            ));
        }
    }
    for d in &webhooks {
        let key = d.idempotency_key();
        let found: Vec<_> = hooks
            .iter()
            .filter(|h| header(h, "webhook-id") == key)
            .collect();
        match found.as_slice() {
            [hook] => {
                if let Err(e) = verify(secret, &hook.headers, &hook.body, DEFAULT_TOLERANCE) {
                    problems.push(format!("webhook {key}: signature rejected: {e}"));
                }
            }
            _ => problems.push(format!(
                "webhook {key}: received {} time(s), expected once",
                found.len()
            )),
        }
    }
    if mails.len() != emails.len() {
        problems.push(format!(
            "{} e-mail(s) received for {} routed",
            mails.len(),
            emails.len()
        ));
    }
    if hooks.len() != webhooks.len() {
        problems.push(format!(
            "{} webhook(s) received for {} routed",
            hooks.len(),
            webhooks.len()
        ));
    }
    if problems.is_empty() {
        println!(
            "\n✓ every routed delivery arrived once: {} e-mail(s), {} signed webhook(s), {} log line(s); the duplicate added nothing",
            emails.len(),
            webhooks.len(),
            logs.len()
        );
        Ok(())
    } else {
        Err(format!(
            "the demo found problems:\n  {}",
            problems.join("\n  ")
        ))
    }
}

fn header<'a>(request: &'a Recorded, name: &str) -> &'a str {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("(missing)")
}

fn first(values: &[String]) -> &str {
    values.first().map_or("(missing)", String::as_str)
}
