//! The demo behind `cargo xtask demo`: loads `examples/demo.toml`, opens the
//! embedded SQLite store, emits sample key-lifecycle events through a running
//! `Notifier` (route → store → dispatcher → log channels), then prints the
//! inbox and delivery counts.

use std::time::Duration;

use chrono::{Duration as Days, Utc};
use clarion::event::*;
use clarion::store::DeliveryStatus;
use clarion::{Config, EmitOutcome, Notifier};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_target(true).init();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/demo.toml");
    let config = Config::from_file(path)?;
    // A fresh database each run, so the demo's dedup keys start unused.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("target/clarion-demo.db{suffix}"));
    }
    let store = clarion::open_store(&config.store).await?;
    let notifier = Notifier::builder()
        .config(config)
        .shared_store(store)
        .build()?;
    let running = notifier.start();
    println!("loaded {path}");

    let now = Utc::now();
    let rotated = KeyEvent::rotation_success(
        Subject::new("key-7", ObjectType::SymmetricKey).named("payments-dek"),
        RotationSuccess {
            old_id: "v6".into(),
            new_id: "v7".into(),
            next_rotation: Some(now + Days::days(90)),
        },
    )
    .with_owner("alice")
    .with_dedup_key("rotated:key-7:v7");
    let failed = KeyEvent::rotation_failure(
        Subject::new("cert-42", ObjectType::Certificate).named("api.example.internal"),
        RotationFailure {
            error: "ACME order failed: rate limited".into(),
            attempt: 3,
            next_attempt: Some(now + Days::minutes(30)),
        },
    )
    .with_owner("alice");
    let due = KeyEvent::approaching_deadline(
        Subject::new("token-9", ObjectType::Token),
        ApproachingDeadline {
            deadline: now + Days::days(5),
            days_remaining: 5,
            threshold_days: 7,
            final_threshold: false,
        },
    )
    .with_owner("bob");

    for event in [&rotated, &failed, &due, &rotated] {
        println!("\n--- emit {} for {} ---", event.kind, event.subject.id);
        println!("{}", notifier.explain(event));
        match notifier.emit(event).await? {
            EmitOutcome::Enqueued { id, channels } => {
                println!("enqueued {id} for {}", channels.join(", "))
            }
            EmitOutcome::Unrouted { id } => println!("stored {id} for the inbox only"),
            EmitOutcome::Duplicate { existing_id } => {
                println!("duplicate of {existing_id}: nothing new stored or sent")
            }
        }
    }

    // Wait until the dispatcher has nothing left to do, then stop it.
    for _ in 0..500 {
        let busy = notifier
            .store()
            .counts()
            .await?
            .iter()
            .any(|c| matches!(c.status, DeliveryStatus::Pending | DeliveryStatus::InFlight));
        if !busy {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let report = running.shutdown(Duration::from_secs(5)).await;
    println!("\n--- after shutdown: {report:?} ---");
    let store = notifier.store();
    for owner in ["alice", "bob"] {
        println!("inbox {owner}: {} unread", store.unread_count(owner).await?);
    }
    for count in store.counts().await? {
        println!(
            "deliveries {:<12} {:<9} {}",
            count.channel, count.status, count.count
        );
    }
    Ok(())
}
