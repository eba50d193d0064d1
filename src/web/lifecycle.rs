//! `/-/reload` and `/-/quit`, enabled by `--web.enable-lifecycle` as in
//! Prometheus, so the same config-reloader sidecars and scripts work.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::sync::oneshot;

use crate::web::WebState;

/// A lifecycle request for the server's main task.
pub enum Request {
    /// Reload the configuration; the outcome is sent back.
    Reload(oneshot::Sender<Result<(), String>>),
    /// Shut down gracefully.
    Quit,
}

pub fn routes() -> Router<Arc<WebState>> {
    Router::new().route("/-/reload", post(reload).put(reload)).route("/-/quit", post(quit).put(quit))
}

fn disabled() -> Response {
    (StatusCode::FORBIDDEN, "Lifecycle API is not enabled.\n").into_response()
}

async fn reload(State(s): State<Arc<WebState>>) -> Response {
    let Some(tx) = &s.lifecycle else { return disabled() };
    let (done, outcome) = oneshot::channel();
    if tx.send(Request::Reload(done)).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "server is shutting down\n").into_response();
    }
    match outcome.await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("failed to reload config: {e}\n")).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "server is shutting down\n").into_response(),
    }
}

async fn quit(State(s): State<Arc<WebState>>) -> Response {
    let Some(tx) = &s.lifecycle else { return disabled() };
    let _ = tx.send(Request::Quit).await;
    (StatusCode::OK, "Requesting termination... Goodbye!\n").into_response()
}
