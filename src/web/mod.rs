//! The HTTP surface of `hearth server`: self-metrics and health endpoints
//! (the Prometheus HTTP API joins them here).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;

/// What handlers share.
pub struct WebState {
    pub registry: Registry,
    /// Set once storage has opened and replayed, so `/-/ready` tells load balancers when to send traffic.
    pub ready: AtomicBool,
}

/// The router for all endpoints.
pub fn router(state: Arc<WebState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(healthy).head(healthy))
        .route("/-/ready", get(ready).head(ready))
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
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        encode_registry(&s.registry),
    )
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
