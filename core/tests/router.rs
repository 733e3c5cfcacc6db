//! Routing: every matcher, `continue`, union dedup and `explain`.

use clarion_core::config::{ChannelConfig, Config, RouteConfig};
use clarion_core::event::*;
use clarion_core::router::Outcome;

fn config(routes: Vec<RouteConfig>) -> Config {
    let mut config = Config::default();
    for name in ["a", "b", "c"] {
        config
            .add_channel(name, ChannelConfig::new("whatever", serde_json::json!({})))
            .unwrap();
    }
    config.custom_kinds = vec![EventKind::custom("key_compromised").unwrap()];
    for route in routes {
        config.add_route(route);
    }
    config
}

fn route(text: &str) -> RouteConfig {
    toml::from_str(text).unwrap()
}

fn failure() -> KeyEvent {
    KeyEvent::rotation_failure(
        Subject::new("k1", ObjectType::Certificate),
        RotationFailure {
            error: "CA down".into(),
            attempt: 2,
            next_attempt: None,
        },
    )
    .with_owner("alice")
    .with_label("env", "prod")
    .with_label("team", "payments")
}

fn success() -> KeyEvent {
    KeyEvent::rotation_success(
        Subject::new("k2", ObjectType::SymmetricKey),
        RotationSuccess {
            old_id: "v1".into(),
            new_id: "v2".into(),
            next_rotation: None,
        },
    )
}

fn routed(routes: &[&str], event: &KeyEvent) -> Vec<String> {
    let config = config(routes.iter().map(|r| route(r)).collect());
    config.router().unwrap().route(event)
}

#[test]
fn kinds_filter_and_wildcard() {
    let routes = [
        r#"kinds = ["rotation_success"]
           channels = ["a"]"#,
        r#"kinds = ["*"]
           channels = ["b"]"#,
    ];
    assert_eq!(routed(&routes, &success()), ["a"]);
    assert_eq!(routed(&routes, &failure()), ["b"]);
    // Omitted kinds mean every kind.
    assert_eq!(routed(&[r#"channels = ["c"]"#], &failure()), ["c"]);
}

#[test]
fn custom_kinds_route_when_declared() {
    let compromised = KeyEvent::custom(
        EventKind::custom("key_compromised").unwrap(),
        Subject::new("k3", ObjectType::KeyPair),
        Severity::Critical,
        serde_json::json!({}),
    );
    let routes = [r#"kinds = ["key_compromised"]
                     channels = ["a"]"#];
    assert_eq!(routed(&routes, &compromised), ["a"]);
    assert!(routed(&routes, &failure()).is_empty());
}

#[test]
fn min_severity() {
    let routes = [r#"min_severity = "warning"
                     channels = ["a"]"#];
    assert_eq!(routed(&routes, &failure()), ["a"]);
    assert!(routed(&routes, &success()).is_empty());
    let critical_only = [r#"min_severity = "critical"
                            channels = ["a"]"#];
    assert!(routed(&critical_only, &failure().with_severity(Severity::Warning)).is_empty());
}

#[test]
fn object_types() {
    let routes = [r#"object_types = ["certificate", "key_pair"]
                     channels = ["a"]"#];
    assert_eq!(routed(&routes, &failure()), ["a"]);
    assert!(routed(&routes, &success()).is_empty());
}

#[test]
fn owners() {
    let routes = [r#"owners = ["alice", "bob"]
                     channels = ["a"]"#];
    assert_eq!(routed(&routes, &failure()), ["a"]);
    assert!(routed(&routes, &failure().with_owner("mallory")).is_empty());
    // No owner never matches a route that lists owners.
    assert!(routed(&routes, &success()).is_empty());
}

#[test]
fn labels_all_must_match_and_star_means_present() {
    let both = [r#"labels = { env = "prod", team = "payments" }
                   channels = ["a"]"#];
    assert_eq!(routed(&both, &failure()), ["a"]);
    assert!(routed(&both, &failure().with_label("team", "search")).is_empty());
    let present = [r#"labels = { team = "*" }
                      channels = ["a"]"#];
    assert_eq!(routed(&present, &failure()), ["a"]);
    assert!(routed(&present, &success()).is_empty());
}

#[test]
fn first_match_wins_unless_continue() {
    let stop = [r#"channels = ["a"]"#, r#"channels = ["b"]"#];
    assert_eq!(routed(&stop, &failure()), ["a"]);
    let go_on = [
        r#"channels = ["a"]
           continue = true"#,
        r#"kinds = ["rotation_success"]
           channels = ["c"]"#,
        r#"channels = ["b"]"#,
    ];
    assert_eq!(routed(&go_on, &failure()), ["a", "b"]);
    assert_eq!(routed(&go_on, &success()), ["a", "c"]);
}

#[test]
fn union_names_each_channel_once() {
    let routes = [
        r#"channels = ["a", "b", "a"]
           continue = true"#,
        r#"channels = ["b", "c"]
           continue = true"#,
        r#"channels = ["c", "a"]"#,
    ];
    assert_eq!(routed(&routes, &failure()), ["a", "b", "c"]);
}

#[test]
fn explain_says_which_routes_matched_and_why() {
    let config = config(vec![
        route(
            r#"name = "critical-pager"
               min_severity = "critical"
               object_types = ["certificate"]
               channels = ["a"]
               continue = true"#,
        ),
        route(
            r#"kinds = ["rotation_success"]
               channels = ["b"]"#,
        ),
        route(
            r#"labels = { env = "prod" }
               channels = ["c"]"#,
        ),
        route(r#"channels = ["a"]"#),
    ]);
    let router = config.router().unwrap();
    let explanation = router.explain(&failure());
    assert_eq!(explanation.channels, ["a", "c"]);
    assert_eq!(explanation.channels, router.route(&failure()));
    let outcomes: Vec<_> = explanation.routes.iter().map(|v| v.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Matched,
            Outcome::NotMatched,
            Outcome::Matched,
            Outcome::NotEvaluated
        ]
    );
    assert_eq!(explanation.routes[0].route, "#0 (critical-pager)");
    assert_eq!(
        explanation.routes[0].reasons,
        [
            "kind rotation_failure (route takes every kind)",
            "severity critical >= critical",
            "object type certificate is listed",
        ]
    );
    assert_eq!(
        explanation.routes[1].reasons,
        ["kind rotation_failure is not in [rotation_success]"]
    );
    assert_eq!(
        explanation.routes[3].reasons,
        ["route #2 matched without `continue`"]
    );
    let text = explanation.to_string();
    assert!(
        text.contains(
            "route #2: matched: kind rotation_failure (route takes every kind); label env=prod"
        ),
        "{text}"
    );
    assert!(text.ends_with("=> channels: a, c"), "{text}");

    let unrouted = config_with_no_match().router().unwrap().explain(&success());
    assert!(unrouted.channels.is_empty());
    assert!(unrouted.to_string().contains("no channel"));
}

fn config_with_no_match() -> Config {
    config(vec![route(
        r#"kinds = ["rotation_failure"]
           channels = ["a"]"#,
    )])
}

#[test]
fn explain_and_route_agree_on_mismatch_reasons() {
    let config = config(vec![route(
        r#"owners = ["bob"]
           labels = { env = "prod" }
           channels = ["a"]"#,
    )]);
    let router = config.router().unwrap();
    let e = router.explain(&failure());
    assert!(e.channels.is_empty());
    assert_eq!(
        e.routes[0].reasons.last().unwrap(),
        "owner alice is not in [bob]"
    );
    let e = router.explain(&success());
    assert_eq!(
        e.routes[0].reasons.last().unwrap(),
        "the event has no owner and the route lists owners"
    );
}
