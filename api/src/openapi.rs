//! The OpenAPI 3.1 document of both routers, checked in as `api/openapi.json`.
//!
//! Its paths are relative to where each router is mounted; operations tagged
//! `inbox` belong to [`Api::inbox`](crate::Api::inbox), those tagged `admin`
//! to [`Api::admin`](crate::Api::admin). [`openapi`] rewrites the paths for
//! the prefixes the application mounts them at, and [`openapi_route`] serves
//! that at a path the application chooses.

use std::sync::Arc;

use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get};
use serde_json::Value;

const DOCUMENT: &str = include_str!("../openapi.json");

/// The document as checked in, paths relative to each router's mount point.
pub fn openapi_json() -> &'static str {
    DOCUMENT
}

/// The document with the inbox paths under `inbox_prefix` and the admin paths
/// under `admin_prefix` (e.g. `"/api"` and `"/admin/clarion"`; `""` for a
/// router merged at the root).
pub fn openapi(inbox_prefix: &str, admin_prefix: &str) -> Value {
    let mut doc: Value = serde_json::from_str(DOCUMENT).expect("api/openapi.json is valid JSON");
    let inbox = normalize(inbox_prefix);
    let admin = normalize(admin_prefix);
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        let old = std::mem::take(paths);
        for (path, item) in old {
            let prefix = if router_of(&item) == Some("admin") {
                &admin
            } else {
                &inbox
            };
            paths.insert(format!("{prefix}{path}"), item);
        }
    }
    doc
}

/// A `GET` route serving [`openapi`]`(inbox_prefix, admin_prefix)` as JSON:
///
/// ```
/// # use axum::Router;
/// let app: Router = Router::new()
///     .route("/api/openapi.json", clarion_api::openapi_route("/api", "/admin/clarion"));
/// ```
pub fn openapi_route<S>(inbox_prefix: &str, admin_prefix: &str) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    let body: Arc<str> = openapi(inbox_prefix, admin_prefix).to_string().into();
    get(move || {
        let body = body.clone();
        async move {
            (
                [(http::header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
    })
}

/// `"api/"` → `"/api"`, `"/"` → `""`.
fn normalize(prefix: &str) -> String {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}

/// The router (`inbox` or `admin`) an OpenAPI path item belongs to, by the
/// tags of its operations.
pub(crate) fn router_of(item: &Value) -> Option<&str> {
    item.as_object()?
        .values()
        .filter_map(|op| op.get("tags")?.as_array())
        .flatten()
        .filter_map(Value::as_str)
        .find(|t| *t == "inbox" || *t == "admin")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    fn documented(router: &str) -> BTreeSet<(String, String)> {
        let doc: Value = serde_json::from_str(DOCUMENT).unwrap();
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if !METHODS.contains(&method.as_str()) {
                    continue;
                }
                let tags: Vec<&str> = op["tags"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{method} {path} has no tags"))
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                assert!(
                    tags.contains(&"inbox") ^ tags.contains(&"admin"),
                    "{method} {path} must be tagged inbox or admin"
                );
                if tags.contains(&router) {
                    out.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn every_route_is_documented_and_every_documented_route_exists() {
        let inbox: BTreeSet<(String, String)> = crate::inbox::routes()
            .into_iter()
            .map(|(m, p, _)| (m.to_string(), p.to_owned()))
            .collect();
        assert_eq!(inbox, documented("inbox"));
        let admin: BTreeSet<(String, String)> = crate::admin::routes()
            .into_iter()
            .map(|(m, p, _)| (m.to_string(), p.to_owned()))
            .collect();
        assert_eq!(admin, documented("admin"));
    }

    #[test]
    fn the_document_is_openapi_3_1_and_its_refs_resolve() {
        let doc: Value = serde_json::from_str(DOCUMENT).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
        let text = DOCUMENT;
        for piece in text.split("\"$ref\": \"#/").skip(1) {
            let pointer = format!("/{}", &piece[..piece.find('"').unwrap()]);
            assert!(doc.pointer(&pointer).is_some(), "dangling $ref {pointer}");
        }
    }

    #[test]
    fn prefixes_are_applied_per_router() {
        let doc = openapi("/api/", "admin/clarion");
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.contains_key("/api/notifications"));
        assert!(paths.contains_key("/admin/clarion/deliveries/{id}/requeue"));
        assert!(!paths.keys().any(|p| p.starts_with("/notifications")));
        let root = openapi("/", "");
        assert!(root["paths"].as_object().unwrap().contains_key("/stats"));
    }
}
