//! The log channel writes one structured event per delivery, at a level from
//! severity (raised to the floor), under the configured target.

use std::sync::{Arc, Mutex};

use clarion_core::channel::{Channel, Delivery};
use clarion_core::event::*;
use clarion_core::notification::Notification;
use clarion_log::{LogChannel, LogConfig};
use tracing::field::{Field, Visit};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

#[derive(Debug, Clone)]
struct Captured {
    target: String,
    level: Level,
    fields: Vec<(String, String)>,
}

impl Captured {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        struct V(Vec<(String, String)>);
        impl Visit for V {
            fn record_str(&mut self, f: &Field, v: &str) {
                self.0.push((f.name().into(), v.into()));
            }
            fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
                self.0.push((f.name().into(), format!("{v:?}")));
            }
        }
        let mut v = V(Vec::new());
        event.record(&mut v);
        self.0.lock().unwrap().push(Captured {
            target: event.metadata().target().into(),
            level: *event.metadata().level(),
            fields: v.0,
        });
    }
}

fn delivery(event: KeyEvent) -> Delivery {
    Delivery {
        id: uuid::Uuid::now_v7(),
        channel: "audit-log".into(),
        attempt: 1,
        notification: Notification::new(event, chrono::Utc::now()),
    }
}

fn channel(toml: &str) -> LogChannel {
    LogChannel::from_config(toml::from_str::<LogConfig>(toml).unwrap()).unwrap()
}

fn capture(channel: &LogChannel, deliveries: &[Delivery]) -> Vec<Captured> {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    tracing::subscriber::with_default(subscriber, || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for d in deliveries {
            let receipt = rt.block_on(channel.deliver(d)).unwrap();
            assert!(receipt.detail.unwrap().starts_with("logged at"));
        }
    });
    capture.0.lock().unwrap().clone()
}

fn failure() -> KeyEvent {
    KeyEvent::rotation_failure(
        Subject::new("key-42", ObjectType::SymmetricKey).named("payments-dek"),
        RotationFailure {
            error: "HSM unreachable".into(),
            attempt: 3,
            next_attempt: None,
        },
    )
    .with_owner("alice")
}

fn success() -> KeyEvent {
    KeyEvent::rotation_success(
        Subject::new("key-7", ObjectType::Token),
        RotationSuccess {
            old_id: "v1".into(),
            new_id: "v2".into(),
            next_rotation: None,
        },
    )
}

#[test]
fn writes_structured_fields_at_the_severity_level() {
    let d = delivery(failure());
    let events = capture(&channel(""), std::slice::from_ref(&d));
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.target, "clarion::notification");
    assert_eq!(e.level, Level::ERROR);
    assert_eq!(e.field("kind"), Some("rotation_failure"));
    assert_eq!(e.field("severity"), Some("critical"));
    assert_eq!(e.field("subject_id"), Some("key-42"));
    assert_eq!(e.field("subject_name"), Some("payments-dek"));
    assert_eq!(e.field("object_type"), Some("symmetric_key"));
    assert_eq!(e.field("owner"), Some("alice"));
    assert_eq!(e.field("channel"), Some("audit-log"));
    assert_eq!(e.field("attempt"), Some("1"));
    let notification_id = d.notification.id.to_string();
    assert_eq!(e.field("notification_id"), Some(notification_id.as_str()));
    let key = d.idempotency_key();
    assert_eq!(e.field("idempotency_key"), Some(key.as_str()));
    assert!(e.field("data").unwrap().contains("HSM unreachable"));
    assert_eq!(
        e.field("message"),
        Some("rotation_failure for symmetric_key key-42")
    );
}

#[test]
fn severity_maps_to_levels_and_the_floor_raises_them() {
    let plain = channel("");
    assert_eq!(plain.level_for(Severity::Info), Level::INFO);
    assert_eq!(plain.level_for(Severity::Warning), Level::WARN);
    assert_eq!(plain.level_for(Severity::Critical), Level::ERROR);
    let floored = channel(r#"min_level = "warn""#);
    assert_eq!(floored.level_for(Severity::Info), Level::WARN);
    assert_eq!(floored.level_for(Severity::Critical), Level::ERROR);

    let events = capture(&floored, &[delivery(success())]);
    assert_eq!(events[0].level, Level::WARN);
    assert_eq!(events[0].field("owner"), None);
}

#[test]
fn the_target_is_configurable() {
    let custom = channel(r#"target = "kms::alerts""#);
    let events = capture(&custom, &[delivery(success()), delivery(failure())]);
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.target == "kms::alerts"));
}

#[test]
fn bad_settings_name_the_field() {
    let err = LogChannel::from_config(LogConfig {
        min_level: Default::default(),
        target: "has space".into(),
    })
    .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("target"));
    let err = toml::from_str::<LogConfig>(r#"min_level = "loud""#).unwrap_err();
    assert!(err.to_string().contains("unknown variant `loud`"));
}
