//! clarion-api: the HTTP API of clarion, as [axum] routers the embedding
//! application mounts in its own server.
//!
//! - [`Api::inbox`]: a user's notifications and unread badge. The caller is
//!   identified by an [`OwnerExtractor`] the application supplies; the owner is
//!   never taken from the body, path or query.
//! - [`Api::admin`]: deliveries, the dead-letter queue and counts. It performs
//!   no authentication of its own: mount it behind the application's admin auth.
//! - [`openapi`] / [`openapi_route`]: the OpenAPI 3.1 document of both,
//!   checked in as `api/openapi.json`.
//!
//! | router | method and path | answer |
//! |---|---|---|
//! | inbox | `GET /notifications?limit=&cursor=` | `{items, next_cursor, unread}`, newest first |
//! | inbox | `GET /notifications/unread/count` | `{unread}` |
//! | inbox | `GET /notifications/{id}` | one notification; 404 if unknown or someone else's |
//! | inbox | `POST /notifications/{id}/read` | 204; 404 if unknown or someone else's |
//! | inbox | `POST /notifications/read-all` | `{changed}` |
//! | admin | `GET /deliveries?status=&channel=&limit=&cursor=` | `{items, next_cursor}`, newest first |
//! | admin | `GET /deliveries/{id}` | one delivery |
//! | admin | `POST /deliveries/{id}/requeue` | the delivery, pending again; 409 unless it was dead |
//! | admin | `GET /stats` | `{by_status, by_channel}` |
//!
//! A notification is the stored JSON shape (see [`clarion_core::event`]:
//! `kind`, `subject`, `owner`, `severity`, `occurred_at`, `labels`, `data`,
//! `dedup_key`, plus `id`, `created_at`, `read_at`) and `read: bool`. `limit`
//! defaults to 50 and must be 1 to 200; `cursor` is the opaque `next_cursor`
//! of the previous page. Every error is JSON,
//! `{"error": {"code": "...", "message": "..."}}`: 400 for a bad limit, cursor,
//! id, status or unknown query parameter, 401/403 from the owner extractor, 404
//! for an unknown id or path, 405 for a wrong method, 409 for requeuing a
//! delivery that is not dead (with `delivery_status`), 503 when the store is
//! unavailable and 500 otherwise; store internals are logged, never sent.
//!
//! # Mounting
//!
//! Build an [`Api`] from the [`Notifier`] (so that a requeue wakes its
//! dispatcher at once) or from a bare store, then `nest` the routers:
//!
//! ```
//! use axum::Router;
//! use axum::middleware::{self, Next};
//! use axum::extract::Request;
//! use axum::response::Response;
//! use clarion_api::{Api, HeaderOwner, Rejection};
//! use clarion_core::memory::MemoryStore;
//! use clarion_core::Notifier;
//! use http::request::Parts;
//!
//! // Your admin check (session, mTLS, token …).
//! async fn require_admin(request: Request, next: Next) -> Result<Response, Rejection> {
//!     match request.headers().get("x-role").and_then(|v| v.to_str().ok()) {
//!         Some("admin") => Ok(next.run(request).await),
//!         _ => Err(Rejection::forbidden("administrators only")),
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let notifier = Notifier::builder().store(MemoryStore::new()).build().unwrap();
//! let api = Api::from_notifier(notifier.clone());
//!
//! let app: Router = Router::new()
//!     // Behind a proxy that authenticates and sets x-user-id …
//!     .nest("/api", api.inbox(HeaderOwner::new("x-user-id")))
//!     .nest(
//!         "/api/admin",
//!         api.admin().layer(middleware::from_fn(require_admin)),
//!     )
//!     .route(
//!         "/api/openapi.json",
//!         clarion_api::openapi_route("/api", "/api/admin"),
//!     );
//!
//! // … or with your own session check, as a closure:
//! let _inbox: Router = api.inbox(|parts: &Parts| {
//!     let session = parts.headers.get("cookie").cloned();
//!     async move {
//!         match session {
//!             Some(_cookie) => Ok("alice".to_owned()), // look the session up here
//!             None => Err(Rejection::unauthorized("sign in first")),
//!         }
//!     }
//! });
//!
//! let running = notifier.start();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let server = tokio::spawn(async move { axum::serve(listener, app).await });
//! # server.abort();
//! running.shutdown(std::time::Duration::from_secs(5)).await;
//! # });
//! ```
//!
//! Each router has a JSON fallback for unknown paths, so `nest` them (as
//! above) rather than `merge` them into one router: axum refuses to merge two
//! routers that both have a fallback (call `.reset_fallback()` on one if you
//! must merge).

use std::sync::Arc;

use axum::Router;
use axum::middleware::map_response;
use axum::response::Response;
use axum::routing::MethodRouter;
use clarion_core::Notifier;
use clarion_core::clock::{Clock, SystemClock};
use clarion_core::store::NotificationsStore;
use http::HeaderValue;
use tower_http::catch_panic::CatchPanicLayer;

mod admin;
mod error;
mod inbox;
mod openapi;
mod owner;
mod params;

pub use error::Rejection;
pub use openapi::{openapi, openapi_json, openapi_route};
pub use owner::{HeaderOwner, OwnerExtractor};
pub use params::{DEFAULT_LIMIT, MAX_LIMIT};

/// What the routers are built from: a store, or a [`Notifier`] and its store.
/// Cheap to clone.
#[derive(Clone)]
pub struct Api {
    store: Arc<dyn NotificationsStore>,
    notifier: Option<Notifier>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("notifier", &self.notifier.is_some())
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl Api {
    /// An API over a bare store. A requeued delivery waits for the next poll
    /// of whatever dispatcher runs on that store; prefer [`Api::from_notifier`]
    /// in the process that runs the dispatcher.
    pub fn new(store: Arc<dyn NotificationsStore>) -> Self {
        Api {
            store,
            notifier: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// An API over the notifier's store and clock; requeues go through
    /// [`Notifier::requeue`], which wakes its dispatcher at once.
    pub fn from_notifier(notifier: Notifier) -> Self {
        Api {
            store: notifier.store().clone(),
            clock: notifier.clock().clone(),
            notifier: Some(notifier),
        }
    }

    /// The clock for read times (and requeues without a notifier; with one,
    /// the notifier's clock is used). Default: the system clock, or the
    /// notifier's clock with [`Api::from_notifier`].
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The inbox router; `owner` says whose inbox each request reads.
    pub fn inbox(&self, owner: impl OwnerExtractor) -> Router {
        let state = InboxState {
            api: self.clone(),
            owner: Arc::new(owner),
        };
        finish(inbox::routes(), state)
    }

    /// The admin router: deliveries, requeue and counts, for all owners.
    /// It does no authentication: mount it behind the application's admin auth.
    pub fn admin(&self) -> Router {
        finish(admin::routes(), self.clone())
    }
}

/// The inbox router's state.
#[derive(Clone)]
pub(crate) struct InboxState {
    api: Api,
    owner: Arc<dyn OwnerExtractor>,
}

fn finish<S: Clone + Send + Sync + 'static>(
    routes: Vec<(http::Method, &'static str, MethodRouter<S>)>,
    state: S,
) -> Router {
    let router = routes
        .into_iter()
        .fold(Router::new(), |router, (_, path, route)| {
            router.route(path, route)
        });
    router
        .method_not_allowed_fallback(error::method_not_allowed)
        .fallback(error::unknown_route)
        .layer(CatchPanicLayer::custom(error::panicked))
        .layer(map_response(no_store))
        .with_state(state)
}

/// Inbox contents are per user and change often: never cache them.
async fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    response
}
