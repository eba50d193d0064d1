//! The TSDB admin API (`--web.enable-admin-api`): snapshots, deleting series
//! and cleaning tombstones, as Prometheus exposes them.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::WebState;
use super::api::{ApiError, Params, parse_selector, time_range};

/// Routes under `/api/v1/admin/tsdb`.
pub fn routes() -> Router<Arc<WebState>> {
    Router::new()
        .route("/api/v1/admin/tsdb/snapshot", post(snapshot).put(snapshot))
        .route("/api/v1/admin/tsdb/delete_series", post(delete_series).put(delete_series))
        .route("/api/v1/admin/tsdb/clean_tombstones", post(clean_tombstones).put(clean_tombstones))
}

fn enabled(s: &WebState) -> Result<(), ApiError> {
    if s.admin_api {
        Ok(())
    } else {
        Err(ApiError::forbidden("admin APIs disabled; start the server with --web.enable-admin-api to use them"))
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e.to_string())
}

async fn snapshot(State(s): State<Arc<WebState>>, p: Params) -> Result<Response, ApiError> {
    enabled(&s)?;
    let skip_head = p.get("skip_head").is_some_and(|v| v == "true" || v == "1");
    let (db, _) = s.query()?;
    let name = tokio::task::spawn_blocking(move || db.snapshot(skip_head)).await.map_err(internal)?.map_err(internal)?;
    Ok(super::api::success(json!({"name": name}), None))
}

async fn delete_series(State(s): State<Arc<WebState>>, p: Params) -> Result<Response, ApiError> {
    enabled(&s)?;
    let sets = p.all("match[]").into_iter().map(parse_selector).collect::<Result<Vec<_>, _>>()?;
    if sets.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let (start, end) = time_range(&p)?;
    let (db, _) = s.query()?;
    tokio::task::spawn_blocking(move || sets.iter().try_for_each(|ms| db.delete(ms, start, end)))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn clean_tombstones(State(s): State<Arc<WebState>>) -> Result<Response, ApiError> {
    enabled(&s)?;
    let (db, _) = s.query()?;
    tokio::task::spawn_blocking(move || db.clean_tombstones()).await.map_err(internal)?.map_err(internal)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
