//! The HTTP surface of `hearth server`: the Prometheus HTTP API ([`api`]),
//! the browser UI ([`ui`]), self-metrics and health endpoints.

pub mod admin;
pub mod api;
pub mod busy_poll;
pub mod federate;
pub mod lifecycle;
pub mod process_metrics;
pub mod rules;
pub mod serve;
pub mod targets;
pub mod ui;
pub mod webconfig;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;

use crate::promql::Engine;
use crate::scrape::manager::ScrapeManager;
use crate::server::reload::ConfigState;
use crate::tsdb::Db;

/// What handlers share.
pub struct WebState {
    pub registry: Registry,
    /// Set once storage has opened and replayed, so `/-/ready` tells load balancers when to send traffic.
    pub ready: AtomicBool,
    /// Storage, available once opened.
    pub db: OnceLock<Arc<Db>>,
    pub engine: Arc<Engine>,
    /// Flags as given, for `/api/v1/status/flags`.
    pub flags: BTreeMap<String, String>,
    /// The configuration in force and the last reload's outcome.
    pub config: Arc<ConfigState>,
    /// Scraping, available once storage has opened.
    pub scrape: OnceLock<Arc<ScrapeManager>>,
    /// Rule evaluation, available once storage has opened.
    pub rules: OnceLock<Arc<crate::rules::manager::RuleManager>>,
    /// Alert delivery, available once storage has opened.
    pub notifier: OnceLock<crate::notify::Notifier>,
    /// Where `/-/reload` and `/-/quit` send requests; `None` unless
    /// `--web.enable-lifecycle`.
    pub lifecycle: Option<tokio::sync::mpsc::Sender<lifecycle::Request>>,
    pub started_rfc3339: String,
    /// `--web.enable-admin-api`.
    pub admin_api: bool,
    /// `--web.enable-remote-write-receiver`: serve `POST /api/v1/write`.
    pub remote_write_receiver: bool,
}

impl WebState {
    /// Storage and engine, or 503 while storage is still opening.
    pub fn query(&self) -> Result<(Arc<Db>, Arc<Engine>), api::ApiError> {
        match self.db.get() {
            Some(db) => Ok((db.clone(), self.engine.clone())),
            None => Err(api::ApiError::not_ready()),
        }
    }
}

/// The router for all endpoints.
pub fn router(state: Arc<WebState>) -> Router {
    api::routes()
        .merge(admin::routes())
        .merge(targets::routes())
        .merge(lifecycle::routes())
        .merge(rules::routes())
        .merge(federate::routes())
        .merge(crate::remote::receive::routes())
        .merge(ui::routes())
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(healthy).head(healthy))
        .route("/-/ready", get(ready).head(ready))
        .route("/-/config-hash", get(config_hash))
        .with_state(state)
}

/// Renders the registry in the OpenMetrics text format.
pub fn encode_registry(registry: &Registry) -> String {
    let mut out = String::new();
    // Encoding into a String cannot fail for well-formed metrics.
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::error!(error = %e, "encoding metrics failed");
    }
    out
}

async fn metrics(State(s): State<Arc<WebState>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], encode_registry(&s.registry))
}

async fn healthy() -> impl IntoResponse {
    (StatusCode::OK, "Hearth Server is Healthy.\n")
}

async fn ready(State(s): State<Arc<WebState>>) -> impl IntoResponse {
    if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "Hearth Server is Ready.\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n")
    }
}

/// The hash of the configuration in force (16 hex digits, no newline), which
/// the operator compares with the hash of the Secret it wrote.
async fn config_hash(State(s): State<Arc<WebState>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], s.config.hash())
}
