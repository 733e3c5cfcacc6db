//! clarion's fan-out example: one key-lifecycle event becomes an e-mail, a
//! signed webhook and a log line, each where the routes in
//! `examples/fanout.toml` send it, from the embedded SQLite store.
//!
//! [`run`] is the whole main job: open the store the configuration names,
//! start a [`Notifier`], emit the [`sample_events`] (and one of them again, to
//! show dedup), print why each went where ([`Notifier::explain`]), wait until
//! the dispatcher has nothing left to do, shut down, and read back the inbox
//! and the delivery counts ([`Summary::print`]). The binary runs it against the endpoints in the
//! environment; `cargo xtask demo` runs it against local servers it starts.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as Span, Utc};
use clarion::event::{ApproachingDeadline, RotationFailure, RotationSuccess};
use clarion::router::Explanation;
use clarion::store::{DeliveryFilter, DeliveryRecord, DeliveryStatus, PageRequest, StatusCount};
use clarion::{
    Config, ConfigError, EmitError, EmitOutcome, KeyEvent, Notifier, ObjectType, ShutdownReport,
    Subject,
};

/// The configuration file this example is about.
pub const CONFIG_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fanout.toml");

/// Why the example could not run.
#[derive(Debug, thiserror::Error)]
pub enum FanoutError {
    /// The configuration (file, `${VAR}`, channels) is not usable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An event was refused.
    #[error("emit failed: {0}")]
    Emit(#[from] EmitError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] clarion::store::StoreError),
    /// Writing the report failed.
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
}

/// One emitted event: why it went where, and what `emit` answered.
#[derive(Debug, Clone)]
pub struct Emitted {
    /// The event.
    pub event: KeyEvent,
    /// Which routes matched and why.
    pub explanation: Explanation,
    /// What the notifier did with it.
    pub outcome: EmitOutcome,
}

/// What a run did, read back from the store after shutdown.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Every emit, in order (the last one is the duplicate).
    pub emitted: Vec<Emitted>,
    /// Every delivery, with its idempotency key and final status.
    pub deliveries: Vec<DeliveryRecord>,
    /// Delivery counts by channel and status.
    pub counts: Vec<StatusCount>,
    /// Unread inbox notifications per owner of the sample events.
    pub unread: BTreeMap<String, u64>,
    /// What shutdown left behind.
    pub shutdown: ShutdownReport,
}

impl Summary {
    /// Writes the inbox's unread count per owner and the delivery counts by
    /// status and channel.
    pub fn print(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out, "\n── inbox: unread notifications per owner")?;
        for (owner, count) in &self.unread {
            writeln!(out, "{owner:<20} {count}")?;
        }
        writeln!(out, "\n── deliveries by status and channel")?;
        for count in &self.counts {
            writeln!(
                out,
                "{:<8} {:<14} {}",
                count.status.as_str(),
                count.channel,
                count.count
            )?;
        }
        Ok(())
    }

    /// Deliveries that did not end `sent` (empty after a good run).
    pub fn not_sent(&self) -> Vec<&DeliveryRecord> {
        self.deliveries
            .iter()
            .filter(|d| d.status != DeliveryStatus::Sent)
            .collect()
    }
}

/// Three events a KMS emits, with their owners' e-mail addresses as inbox
/// owners: a key rotated (alice), a certificate renewal failed (alice), a
/// token due for rotation in 5 days (bob). Dates are relative to `now`.
pub fn sample_events(now: DateTime<Utc>) -> Vec<KeyEvent> {
    let rotated = KeyEvent::rotation_success(
        Subject::new("key-7", ObjectType::SymmetricKey).named("payments-dek"),
        RotationSuccess {
            old_id: "key-7/v6".into(),
            new_id: "key-7/v7".into(),
            next_rotation: Some(now + Span::days(90)),
        },
    )
    .with_owner("alice@example.com")
    .with_label("env", "prod")
    .with_dedup_key("rotated:key-7/v7")
    .at(now);
    let failed = KeyEvent::rotation_failure(
        Subject::new("cert-42", ObjectType::Certificate).named("api.example.internal"),
        RotationFailure {
            error: "ACME order failed: rate limited".into(),
            attempt: 3,
            next_attempt: Some(now + Span::minutes(30)),
        },
    )
    .with_owner("alice@example.com")
    .with_label("env", "prod")
    .with_dedup_key("failed:cert-42:attempt-3")
    .at(now);
    let due = KeyEvent::approaching_deadline(
        Subject::new("token-9", ObjectType::Token).named("ci-deploy-token"),
        ApproachingDeadline {
            deadline: now + Span::days(5),
            days_remaining: 5,
            threshold_days: 7,
            final_threshold: false,
        },
    )
    .with_owner("bob@example.com")
    .with_dedup_key("due:token-9:7d")
    .at(now);
    vec![rotated, failed, due]
}

/// Loads `path`, looking `${VAR}` up with `env` (e.g. `|k| std::env::var(k).ok()`).
pub fn load_config(
    path: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, FanoutError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(Config::from_toml_str_with_env(&text, env)?)
}

/// Runs the main job on `config`, writing what happens to `out`. Waits at
/// most `drain_limit` for the dispatcher to finish every delivery; what is
/// left then shows up in [`Summary::not_sent`].
pub async fn run(
    config: Config,
    out: &mut dyn Write,
    drain_limit: Duration,
) -> Result<Summary, FanoutError> {
    let store = clarion::open_store(&config.store).await?;
    let notifier = Notifier::builder()
        .config(config)
        .shared_store(store)
        .build()?;
    let running = notifier.start();

    let events = sample_events(Utc::now());
    let mut emitted = Vec::new();
    // The first event once more: same dedup key, so nothing new.
    for (n, event) in events.iter().chain(events.first()).enumerate() {
        let again = if n == events.len() { " (again)" } else { "" };
        let heading = format!(
            "\n── emit {}{again}: {} {} ({}) for {}",
            event.kind,
            event.subject.object_type,
            event.subject.id,
            event.subject.name.as_deref().unwrap_or("unnamed"),
            event.owner.as_deref().unwrap_or("nobody"),
        );
        let explanation = notifier.explain(event);
        let outcome = notifier.emit(event).await?;
        // Written together after emit: the dispatcher's log lines for
        // earlier events may come in between sections, not inside one.
        let verdict = match &outcome {
            EmitOutcome::Enqueued { id, channels } => {
                format!("stored {id}, to deliver on {}", channels.join(", "))
            }
            EmitOutcome::Unrouted { id } => format!("stored {id} for the inbox only"),
            EmitOutcome::Duplicate { existing_id } => {
                format!("duplicate of {existing_id}: nothing new stored or sent")
            }
        };
        writeln!(
            out,
            "{heading}\n{}\n→ {verdict}",
            explanation.to_string().trim_end()
        )?;
        emitted.push(Emitted {
            event: event.clone(),
            explanation,
            outcome,
        });
    }

    let started = Instant::now();
    let drained = wait_until_final(&notifier, drain_limit).await?;
    let waited = started.elapsed();
    let shutdown = running.shutdown(Duration::from_secs(5)).await;
    writeln!(
        out,
        "\n── dispatcher {} after {:.2} s; shut down: {} pending",
        if drained {
            "finished every delivery"
        } else {
            "gave up waiting"
        },
        waited.as_secs_f64(),
        shutdown.pending,
    )?;

    let store = notifier.store();
    let mut unread = BTreeMap::new();
    for owner in events.iter().filter_map(|e| e.owner.clone()) {
        let count = store.unread_count(&owner).await?;
        unread.insert(owner, count);
    }
    let counts = store.counts().await?;
    let deliveries = all_deliveries(&notifier).await?;
    Ok(Summary {
        emitted,
        deliveries,
        counts,
        unread,
        shutdown,
    })
}

/// Polls the store until no delivery is pending or in flight, or `limit`
/// passes; true when everything is final.
async fn wait_until_final(notifier: &Notifier, limit: Duration) -> Result<bool, FanoutError> {
    let deadline = Instant::now() + limit;
    loop {
        let busy = notifier
            .store()
            .counts()
            .await?
            .iter()
            .any(|c| !c.status.is_final());
        if !busy {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn all_deliveries(notifier: &Notifier) -> Result<Vec<DeliveryRecord>, FanoutError> {
    let mut all = Vec::new();
    let mut page = PageRequest::first(200);
    loop {
        let got = notifier
            .store()
            .deliveries(&DeliveryFilter::default(), page)
            .await?;
        all.extend(got.items);
        match got.next {
            Some(after) => page.after = Some(after),
            None => break,
        }
    }
    // Oldest first: the order they were enqueued in.
    all.reverse();
    Ok(all)
}
