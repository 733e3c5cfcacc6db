//! The router: which channels an event goes to.
//!
//! Routes are tried in order. A route matches when every filter it sets
//! matches (kinds, minimum severity, object types, owners, labels). The first
//! matching route ends the search unless it says `continue = true`. The event
//! goes to the union of the matched routes' channels, each once, in the order
//! they were first named.
//!
//! ```
//! use clarion_core::config::{ChannelConfig, Config, RouteConfig};
//! use clarion_core::event::*;
//! # use clarion_core::{Channel, Delivery, DeliveryError, Receipt};
//! # #[derive(Debug)] struct Null;
//! # #[async_trait::async_trait] impl Channel for Null {
//! #   async fn deliver(&self, _: &Delivery) -> Result<Receipt, DeliveryError> { Ok(Receipt::default()) } }
//! # fn build(_: serde_json::Value) -> Result<Null, clarion_core::registry::ChannelConfigError> { Ok(Null) }
//! # clarion_core::register_channel! { kind: "doc-null", description: "", config: serde_json::Value, example: "", build: build }
//!
//! let mut config = Config::default();
//! config.add_channel("pager", ChannelConfig::new("doc-null", serde_json::json!({}))).unwrap();
//! config.add_channel("audit", ChannelConfig::new("doc-null", serde_json::json!({}))).unwrap();
//! config.add_route(RouteConfig::to(["audit"]).and_continue());
//! config.add_route(RouteConfig::to(["pager"]).min_severity(Severity::Critical));
//! let router = config.router().unwrap();
//!
//! let failure = KeyEvent::rotation_failure(
//!     Subject::new("k1", ObjectType::KeyPair),
//!     RotationFailure { error: "HSM down".into(), attempt: 1, next_attempt: None },
//! );
//! assert_eq!(router.route(&failure), ["audit", "pager"]);
//! println!("{}", router.explain(&failure));
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::config::{Config, ConfigError, RouteConfig};
use crate::event::{Event, EventKind, ObjectType, Severity};

/// Compiled, validated routes.
#[derive(Debug, Clone)]
pub struct Router {
    routes: Vec<Route>,
}

#[derive(Debug, Clone)]
struct Route {
    label: String,
    kinds: Option<BTreeSet<EventKind>>,
    min_severity: Option<Severity>,
    object_types: BTreeSet<ObjectType>,
    owners: BTreeSet<String>,
    labels: BTreeMap<String, String>,
    channels: Vec<String>,
    continue_matching: bool,
}

/// What [`Router::explain`] found for one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteVerdict {
    /// `#<index>` or `#<index> (<name>)`.
    pub route: String,
    /// What happened.
    pub outcome: Outcome,
    /// Why: one line per filter that was checked (up to the first mismatch).
    pub reasons: Vec<String>,
}

/// The outcome of one route for one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every filter matched.
    Matched,
    /// A filter did not match.
    NotMatched,
    /// An earlier route matched without `continue`.
    NotEvaluated,
}

/// Which routes matched an event and why, and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// One verdict per route, in order.
    pub routes: Vec<RouteVerdict>,
    /// The union of matched channels, each once.
    pub channels: Vec<String>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for verdict in &self.routes {
            let outcome = match verdict.outcome {
                Outcome::Matched => "matched",
                Outcome::NotMatched => "no match",
                Outcome::NotEvaluated => "not evaluated",
            };
            writeln!(
                f,
                "route {}: {outcome}: {}",
                verdict.route,
                verdict.reasons.join("; ")
            )?;
        }
        if self.channels.is_empty() {
            write!(f, "=> no channel (the event is kept for the inbox only)")
        } else {
            write!(f, "=> channels: {}", self.channels.join(", "))
        }
    }
}

impl Router {
    /// Compiles `config`'s routes, checking them against its channels and kinds.
    pub fn from_config(config: &Config) -> Result<Router, ConfigError> {
        let channels: Vec<&str> = config.channels.keys().map(String::as_str).collect();
        Router::new(&config.routes, &channels, &config.custom_kinds)
    }

    /// Compiles `routes`, checking that they name only `channels` and only
    /// built-in or `custom_kinds` event kinds.
    pub fn new(
        routes: &[RouteConfig],
        channels: &[&str],
        custom_kinds: &[EventKind],
    ) -> Result<Router, ConfigError> {
        let known = Known {
            channels,
            custom_kinds,
        };
        let compiled = routes
            .iter()
            .enumerate()
            .map(|(i, route)| Route::compile(i, route, &known))
            .collect::<Result<_, _>>()?;
        Ok(Router { routes: compiled })
    }

    /// The channels `event` goes to: the union of matched routes, each once.
    pub fn route(&self, event: &dyn Event) -> Vec<String> {
        let mut channels: Vec<String> = Vec::new();
        for route in &self.routes {
            if route.mismatch(event).is_none() {
                for channel in &route.channels {
                    if !channels.contains(channel) {
                        channels.push(channel.clone());
                    }
                }
                if !route.continue_matching {
                    break;
                }
            }
        }
        channels
    }

    /// Which routes match `event` and why; the same decision as [`Router::route`].
    pub fn explain(&self, event: &dyn Event) -> Explanation {
        let mut verdicts = Vec::with_capacity(self.routes.len());
        let mut channels: Vec<String> = Vec::new();
        let mut stopped_by: Option<&str> = None;
        for route in &self.routes {
            if let Some(stopper) = stopped_by {
                verdicts.push(RouteVerdict {
                    route: route.label.clone(),
                    outcome: Outcome::NotEvaluated,
                    reasons: vec![format!("route {stopper} matched without `continue`")],
                });
                continue;
            }
            let (reasons, matched) = route.reasons(event);
            if matched {
                for channel in &route.channels {
                    if !channels.contains(channel) {
                        channels.push(channel.clone());
                    }
                }
                if !route.continue_matching {
                    stopped_by = Some(&route.label);
                }
            }
            verdicts.push(RouteVerdict {
                route: route.label.clone(),
                outcome: if matched {
                    Outcome::Matched
                } else {
                    Outcome::NotMatched
                },
                reasons,
            });
        }
        Explanation {
            routes: verdicts,
            channels,
        }
    }
}

struct Known<'a> {
    channels: &'a [&'a str],
    custom_kinds: &'a [EventKind],
}

impl Route {
    fn compile(index: usize, route: &RouteConfig, known: &Known<'_>) -> Result<Route, ConfigError> {
        let at = |field: &str| format!("routes[{index}].{field}");
        let kinds = if route.kinds.iter().any(|k| k == "*") {
            if route.kinds.len() > 1 {
                return Err(ConfigError::invalid(
                    at("kinds"),
                    "\"*\" already takes every kind; list it alone",
                ));
            }
            None
        } else if route.kinds.is_empty() {
            return Err(ConfigError::invalid(
                at("kinds"),
                "list at least one event kind, or \"*\" for every kind",
            ));
        } else {
            let mut set = BTreeSet::new();
            for (i, name) in route.kinds.iter().enumerate() {
                let path = at(&format!("kinds[{i}]"));
                let kind: EventKind =
                    name.parse().map_err(|e: crate::event::InvalidEventKind| {
                        ConfigError::invalid(&path, e.to_string())
                    })?;
                if !(kind.is_built_in() || known.custom_kinds.contains(&kind)) {
                    return Err(ConfigError::invalid(
                        path,
                        format!(
                            "unknown event kind \"{kind}\": the built-in kinds are \
                             rotation_success, rotation_failure and approaching_deadline; \
                             declare custom kinds in `custom_kinds`"
                        ),
                    ));
                }
                set.insert(kind);
            }
            Some(set)
        };
        if route.channels.is_empty() {
            return Err(ConfigError::invalid(
                at("channels"),
                "a route must name at least one channel",
            ));
        }
        let mut channels = Vec::new();
        for (i, channel) in route.channels.iter().enumerate() {
            if !known.channels.contains(&channel.as_str()) {
                let mut names = known.channels.to_vec();
                names.sort_unstable();
                return Err(ConfigError::invalid(
                    at(&format!("channels[{i}]")),
                    format!(
                        "unknown channel \"{channel}\" (configured channels: {})",
                        if names.is_empty() {
                            "none".to_owned()
                        } else {
                            names.join(", ")
                        }
                    ),
                ));
            }
            if !channels.contains(channel) {
                channels.push(channel.clone());
            }
        }
        Ok(Route {
            label: match &route.name {
                Some(name) => format!("#{index} ({name})"),
                None => format!("#{index}"),
            },
            kinds,
            min_severity: route.min_severity,
            object_types: route.object_types.iter().copied().collect(),
            owners: route.owners.iter().cloned().collect(),
            labels: route.labels.clone(),
            channels,
            continue_matching: route.continue_matching,
        })
    }

    /// The first filter that rejects `event`, if any (the hot path: no strings built).
    fn mismatch(&self, event: &dyn Event) -> Option<()> {
        let (_, matched) = self.check(event, false);
        (!matched).then_some(())
    }

    fn reasons(&self, event: &dyn Event) -> (Vec<String>, bool) {
        self.check(event, true)
    }

    /// Checks every filter in order; with `explain`, says why for each.
    fn check(&self, event: &dyn Event, explain: bool) -> (Vec<String>, bool) {
        let mut reasons = Vec::new();
        let mut note = |ok: bool, yes: &dyn Fn() -> String, no: &dyn Fn() -> String| {
            if explain {
                reasons.push(if ok { yes() } else { no() });
            }
            ok
        };
        let kind = event.kind();
        let kind_ok = match &self.kinds {
            None => note(
                true,
                &|| format!("kind {kind} (route takes every kind)"),
                &String::new,
            ),
            Some(kinds) => note(
                kinds.contains(&kind),
                &|| format!("kind {kind} is listed"),
                &|| format!("kind {kind} is not in [{}]", join(kinds)),
            ),
        };
        if !kind_ok {
            return (reasons, false);
        }
        if let Some(min) = self.min_severity {
            let severity = event.severity();
            if !note(
                severity >= min,
                &|| format!("severity {severity} >= {min}"),
                &|| format!("severity {severity} is below {min}"),
            ) {
                return (reasons, false);
            }
        }
        if !self.object_types.is_empty() {
            let object_type = event.subject().object_type;
            if !note(
                self.object_types.contains(&object_type),
                &|| format!("object type {object_type} is listed"),
                &|| {
                    format!(
                        "object type {object_type} is not in [{}]",
                        join(&self.object_types)
                    )
                },
            ) {
                return (reasons, false);
            }
        }
        if !self.owners.is_empty() {
            let owner = event.owner();
            if !note(
                owner.is_some_and(|o| self.owners.contains(o)),
                &|| format!("owner {} is listed", owner.unwrap_or_default()),
                &|| match owner {
                    Some(o) => format!("owner {o} is not in [{}]", join(&self.owners)),
                    None => "the event has no owner and the route lists owners".to_owned(),
                },
            ) {
                return (reasons, false);
            }
        }
        for (key, want) in &self.labels {
            let have = event.labels().get(key);
            let ok = match have {
                Some(value) => want == "*" || value == want,
                None => false,
            };
            if !note(
                ok,
                &|| {
                    format!(
                        "label {key}={}",
                        have.map(String::as_str).unwrap_or_default()
                    )
                },
                &|| match have {
                    Some(value) => format!("label {key}={value}, route wants {key}={want}"),
                    None => format!("label {key} is missing, route wants {key}={want}"),
                },
            ) {
                return (reasons, false);
            }
        }
        (reasons, true)
    }
}

fn join<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
