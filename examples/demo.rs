//! The demo behind `cargo xtask demo`: loads `examples/demo.toml`, routes
//! sample key-lifecycle events, prints why each went where, and delivers each
//! through the routed log channels (the tracing output below each event).

use chrono::{Duration, Utc};
use clarion::channel::Delivery;
use clarion::event::*;
use clarion::{Config, Notification};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_target(true).init();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/demo.toml");
    let config = Config::from_file(path)?;
    let router = config.router()?;
    let channels = config.build_channels()?;
    println!(
        "loaded {path}: channels {:?}",
        channels.keys().collect::<Vec<_>>()
    );

    let now = Utc::now();
    let events = [
        KeyEvent::rotation_success(
            Subject::new("key-7", ObjectType::SymmetricKey).named("payments-dek"),
            RotationSuccess {
                old_id: "v6".into(),
                new_id: "v7".into(),
                next_rotation: Some(now + Duration::days(90)),
            },
        )
        .with_owner("alice"),
        KeyEvent::rotation_failure(
            Subject::new("cert-42", ObjectType::Certificate).named("api.example.internal"),
            RotationFailure {
                error: "ACME order failed: rate limited".into(),
                attempt: 3,
                next_attempt: Some(now + Duration::minutes(30)),
            },
        )
        .with_owner("bob"),
        KeyEvent::approaching_deadline(
            Subject::new("token-9", ObjectType::Token),
            ApproachingDeadline {
                deadline: now + Duration::days(5),
                days_remaining: 5,
                threshold_days: 7,
                final_threshold: false,
            },
        ),
    ];

    for event in events {
        println!("\n--- {} for {} ---", event.kind, event.subject.id);
        let explanation = router.explain(&event);
        println!("{explanation}");
        let notification = Notification::new(event, Utc::now());
        for name in &explanation.channels {
            let delivery = Delivery {
                id: uuid::Uuid::now_v7(),
                channel: name.clone(),
                attempt: 1,
                notification: notification.clone(),
            };
            match channels[name].deliver(&delivery).await {
                Ok(receipt) => println!("{name}: sent ({})", receipt.detail.unwrap_or_default()),
                Err(e) => println!("{name}: {e}"),
            }
        }
    }
    Ok(())
}
