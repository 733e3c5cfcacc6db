//! The commands that need no store: `check`, `schema`, `explain`, `key new`.

use std::path::Path;

use clarion::memory::MemoryStore;
use clarion::{KeyEvent, Notifier};
use secrecy::ExposeSecret;

use crate::auth::{Scope, hash_hex};
use crate::config::ServerConfig;
use crate::error::Failure;
use crate::load;

/// `clarion check`: the whole file, channels built through their plugins.
pub fn check(config_path: &Path) -> Result<(), Failure> {
    let config = load(config_path)?;
    config.validate()?;
    config.build_channels()?;
    let server = ServerConfig::of(&config)?;
    println!("{}: valid", config_path.display());
    println!("store: {}", store_scheme(config.store.url.expose_secret()));
    println!("channels:");
    for (name, channel) in &config.channels {
        println!("  {name} (kind {})", channel.kind);
    }
    println!("routes:");
    for (i, route) in config.routes.iter().enumerate() {
        let name = route.name.clone().unwrap_or_else(|| format!("#{i}"));
        let severity = route
            .min_severity
            .map(|s| format!(", severity >= {s}"))
            .unwrap_or_default();
        println!(
            "  {name}: kinds {}{severity} -> {}{}",
            route.kinds.join(", "),
            route.channels.join(", "),
            if route.continue_matching {
                " (continue)"
            } else {
                ""
            }
        );
    }
    println!(
        "server: listen {}, {} API key(s){}",
        server.listen,
        server.auth.keys.len(),
        if server.allow_unauthenticated {
            ", unauthenticated allowed"
        } else {
            ""
        }
    );
    Ok(())
}

/// Only the scheme: the rest of the URL may hold a password.
fn store_scheme(url: &str) -> String {
    match url.split_once(':') {
        Some((scheme, _)) => format!("{scheme} (url not shown)"),
        None => "(unrecognised url, not shown)".into(),
    }
}

/// `clarion schema`: the JSON Schema of the file, `[server]` included.
pub fn schema() -> Result<(), Failure> {
    let schema = clarion::config::json_schema();
    let text = serde_json::to_string_pretty(&schema)
        .map_err(|e| Failure::Operational(format!("schema: {e}")))?;
    println!("{text}");
    Ok(())
}

/// Reads an event file the way `POST /v1/events` reads one event.
pub fn read_event(path: &Path) -> Result<KeyEvent, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))?;
    let value = serde_json::from_str(&text)
        .map_err(|e| Failure::Usage(format!("{}: not valid JSON: {e}", path.display())))?;
    crate::ingest::parse(value).map_err(|invalid| {
        Failure::Usage(format!(
            "{}: invalid event: {}: {}",
            path.display(),
            invalid["field"].as_str().unwrap_or_default(),
            invalid["message"].as_str().unwrap_or_default()
        ))
    })
}

/// `clarion explain`: which routes match the event and why.
pub fn explain(config_path: &Path, event_path: &Path) -> Result<(), Failure> {
    let config = load(config_path)?;
    let event = read_event(event_path)?;
    // Routing needs no store: nothing is emitted.
    let notifier = Notifier::builder()
        .config(config)
        .store(MemoryStore::new())
        .build()?;
    notifier
        .validate(&event)
        .map_err(|e| Failure::Usage(format!("invalid event: {}: {}", e.field, e.message)))?;
    println!("{}", notifier.explain(&event));
    Ok(())
}

/// `clarion key new`: a fresh random key, printed once, and its config entry.
pub fn key_new(name: &str, scopes: &[String]) -> Result<(), Failure> {
    if name.trim().is_empty() || name.contains('"') || name.contains('\\') {
        return Err(Failure::Usage(
            "NAME must be non-empty, without quotes or backslashes".into(),
        ));
    }
    let mut parsed = Vec::new();
    for scope in scopes {
        let scope: Scope =
            serde_json::from_value(serde_json::json!(scope.trim())).map_err(|_| {
                Failure::Usage(format!(
                    "unknown scope {scope:?}: emit, inbox, inbox_proxy, admin or metrics"
                ))
            })?;
        parsed.push(format!("\"{}\"", scope.as_str()));
    }
    if parsed.is_empty() {
        return Err(Failure::Usage("--scopes lists at least one scope".into()));
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Failure::Operational(format!("no randomness: {e}")))?;
    let key = format!("clarion_{}", hex::encode(bytes));
    println!("# The key, shown only now; give it to the client:");
    println!("{key}");
    println!("# Add to the configuration file (only the hash is kept):");
    println!("[[server.auth.keys]]");
    println!("name = \"{name}\"");
    println!("sha256 = \"{}\"", hash_hex(&key));
    println!("scopes = [{}]", parsed.join(", "));
    Ok(())
}
