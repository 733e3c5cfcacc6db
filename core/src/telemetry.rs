//! Metric names and the helpers that record them, in one place.
//!
//! Labels are bounded: `channel` is a configured name and `kind` a built-in or
//! declared kind (anything else is reported as `undeclared`); never a key id.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `clarion_events_total` | counter | kind, outcome = enqueued \| duplicate \| unrouted |
//! | `clarion_delivery_attempts_total` | counter | channel, kind |
//! | `clarion_deliveries_sent_total` | counter | channel, kind |
//! | `clarion_deliveries_retried_total` | counter | channel, kind |
//! | `clarion_deliveries_dead_total` | counter | channel, kind |
//! | `clarion_delivery_duration_seconds` | histogram | channel |
//! | `clarion_deliveries` | gauge | status = pending \| in_flight \| dead |

use std::time::Duration;

use crate::store::{DeliveryStatus, StatusCount};

/// Counter: emitted events by kind and outcome.
pub const EVENTS: &str = "clarion_events_total";
/// Counter: delivery attempts.
pub const ATTEMPTS: &str = "clarion_delivery_attempts_total";
/// Counter: deliveries sent.
pub const SENT: &str = "clarion_deliveries_sent_total";
/// Counter: attempts that scheduled a retry.
pub const RETRIED: &str = "clarion_deliveries_retried_total";
/// Counter: deliveries that went dead.
pub const DEAD: &str = "clarion_deliveries_dead_total";
/// Histogram: how long `deliver` took.
pub const DURATION: &str = "clarion_delivery_duration_seconds";
/// Gauge: deliveries by status (pending, in flight, dead).
pub const DELIVERIES: &str = "clarion_deliveries";

pub(crate) fn event(kind: &str, outcome: &'static str) {
    metrics::counter!(EVENTS, "kind" => kind.to_owned(), "outcome" => outcome).increment(1);
}

pub(crate) fn attempt(channel: &str, kind: &str, elapsed: Duration, result: &'static str) {
    let labels = [("channel", channel.to_owned()), ("kind", kind.to_owned())];
    metrics::counter!(ATTEMPTS, &labels).increment(1);
    let name = match result {
        "sent" => SENT,
        "retry" => RETRIED,
        _ => DEAD,
    };
    metrics::counter!(name, &labels).increment(1);
    metrics::histogram!(DURATION, "channel" => channel.to_owned()).record(elapsed.as_secs_f64());
}

pub(crate) fn gauges(counts: &[StatusCount]) {
    for status in [
        DeliveryStatus::Pending,
        DeliveryStatus::InFlight,
        DeliveryStatus::Dead,
    ] {
        let total: u64 = counts
            .iter()
            .filter(|c| c.status == status)
            .map(|c| c.count)
            .sum();
        metrics::gauge!(DELIVERIES, "status" => status.as_str()).set(total as f64);
    }
}
