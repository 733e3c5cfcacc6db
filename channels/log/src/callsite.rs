//! Tracing callsites with a target chosen at run time.
//!
//! `tracing`'s macros need the target as a constant, but the log channel's
//! target is configuration. A callsite is a `'static` value, so one is leaked
//! per (target, level) pair and cached: a process leaks at most a few small
//! allocations per configured target, however often channels are rebuilt.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use tracing_core::callsite::{Callsite, Identifier};
use tracing_core::field::FieldSet;
use tracing_core::metadata::Kind;
use tracing_core::{Interest, Level, Metadata};

/// The fields every notification event carries, in this order.
pub(crate) const FIELDS: &[&str] = &[
    "message",
    "kind",
    "severity",
    "subject_id",
    "subject_name",
    "object_type",
    "owner",
    "notification_id",
    "delivery_id",
    "idempotency_key",
    "attempt",
    "channel",
    "data",
];

struct DynamicCallsite {
    metadata: OnceLock<&'static Metadata<'static>>,
}

impl Callsite for DynamicCallsite {
    fn set_interest(&self, _: Interest) {}
    fn metadata(&self) -> &Metadata<'_> {
        self.metadata
            .get()
            .expect("metadata is set before registration")
    }
}

/// The metadata of the callsite for `target` at `level`, registered on first use.
pub(crate) fn metadata(target: &str, level: Level) -> &'static Metadata<'static> {
    static CACHE: OnceLock<Mutex<HashMap<(String, Level), &'static Metadata<'static>>>> =
        OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(found) = cache.get(&(target.to_owned(), level)) {
        return found;
    }
    let callsite: &'static DynamicCallsite = Box::leak(Box::new(DynamicCallsite {
        metadata: OnceLock::new(),
    }));
    let target: &'static str = Box::leak(target.to_owned().into_boxed_str());
    let metadata: &'static Metadata<'static> = Box::leak(Box::new(Metadata::new(
        "clarion notification",
        target,
        level,
        Some(file!()),
        Some(line!()),
        Some(module_path!()),
        FieldSet::new(FIELDS, Identifier(callsite)),
        Kind::EVENT,
    )));
    callsite
        .metadata
        .set(metadata)
        .expect("a fresh callsite has no metadata");
    tracing_core::callsite::register(callsite);
    cache.insert((target.to_owned(), level), metadata);
    metadata
}
