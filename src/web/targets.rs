//! What scraping knows, over the Prometheus API: `/api/v1/targets`,
//! `/api/v1/targets/metadata` and `/api/v1/metadata`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value as Json, json};

use crate::config::format_duration;
use crate::model::{Labels, Matcher};
use crate::scrape::manager::PoolView;
use crate::server::rfc3339;
use crate::web::WebState;
use crate::web::api::{ApiError, Params, parse_selector, success};

pub fn routes() -> Router<Arc<WebState>> {
    Router::new()
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/targets/metadata", get(targets_metadata))
        .route("/api/v1/metadata", get(metadata))
}

fn views(s: &WebState) -> Vec<PoolView> {
    s.scrape.get().map(|m| m.views()).unwrap_or_default()
}

fn labels_json(l: &Labels) -> Json {
    Json::Object(l.iter().map(|l| (l.name.clone(), Json::String(l.value.clone()))).collect())
}

fn limit(p: &Params, name: &str) -> Result<Option<usize>, ApiError> {
    match p.get(name) {
        None | Some("") => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n > 0 => Ok(Some(n as usize)),
            Ok(_) => Ok(None),
            Err(_) => Err(ApiError::bad_data(format!("invalid parameter \"{name}\": {v:?} is not a number"))),
        },
    }
}

async fn targets(State(s): State<Arc<WebState>>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let p = Params::from_query(raw.as_deref());
    let state = p.get("state").unwrap_or("any").to_ascii_lowercase();
    let (show_active, show_dropped) = match state.as_str() {
        "" | "any" => (true, true),
        "active" => (true, false),
        "dropped" => (false, true),
        other => return Err(ApiError::bad_data(format!("invalid parameter \"state\": {other:?}"))),
    };
    let pool_filter = p.get("scrapePool").filter(|v| !v.is_empty());
    let mut active = Vec::new();
    let mut dropped = Vec::new();
    let mut dropped_counts = serde_json::Map::new();
    for v in views(&s) {
        if pool_filter.is_some_and(|f| f != v.name) {
            continue;
        }
        dropped_counts.insert(v.name.clone(), json!(v.dropped.len()));
        if show_active {
            for t in &v.active {
                let st = t.status();
                let never = "0001-01-01T00:00:00Z".to_string();
                active.push(json!({
                    "discoveredLabels": labels_json(&t.discovered),
                    "labels": labels_json(&t.labels),
                    "scrapePool": v.name,
                    "scrapeUrl": t.url,
                    "globalUrl": t.url,
                    "lastError": st.last_error,
                    "lastScrape": st.last_scrape.map_or(never, rfc3339),
                    "lastScrapeDuration": st.last_duration.as_secs_f64(),
                    "health": st.health.as_str(),
                    "scrapeInterval": format_duration(t.interval),
                    "scrapeTimeout": format_duration(t.timeout),
                }));
            }
        }
        if show_dropped {
            dropped.extend(v.dropped.iter().map(|d| json!({"discoveredLabels": labels_json(d), "scrapePool": v.name})));
        }
    }
    let mut data = json!({"activeTargets": active, "droppedTargets": dropped});
    if show_dropped {
        data["droppedTargetCounts"] = Json::Object(dropped_counts);
    }
    Ok(success(data, None))
}

fn matches(ms: &[Matcher], l: &Labels) -> bool {
    ms.iter().all(|m| m.matches(l.get(&m.name)))
}

async fn targets_metadata(State(s): State<Arc<WebState>>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let p = Params::from_query(raw.as_deref());
    let limit = limit(&p, "limit")?;
    let metric = p.get("metric").filter(|m| !m.is_empty());
    let selector = match p.get("match_target").filter(|m| !m.is_empty()) {
        Some(m) => parse_selector(m).map_err(|_| ApiError::bad_data(format!("invalid parameter \"match_target\": {m:?}")))?,
        None => Vec::new(),
    };
    let mut out = Vec::new();
    'pools: for v in views(&s) {
        for t in v.active.iter().filter(|t| matches(&selector, &t.labels)) {
            let md = t.status().metadata;
            let mut families: Vec<_> = md.iter().filter(|(name, _)| metric.is_none_or(|m| m == name.as_str())).collect();
            families.sort_by(|a, b| a.0.cmp(b.0));
            for (name, m) in families {
                if limit.is_some_and(|l| out.len() >= l) {
                    break 'pools;
                }
                let mut e = json!({"target": labels_json(&t.labels), "type": m.kind.as_str(), "help": m.help, "unit": m.unit});
                if metric.is_none() {
                    e["metric"] = json!(name);
                }
                out.push(e);
            }
        }
    }
    Ok(success(json!(out), None))
}

async fn metadata(State(s): State<Arc<WebState>>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let p = Params::from_query(raw.as_deref());
    let per_metric = limit(&p, "limit_per_metric")?;
    let limit = limit(&p, "limit")?;
    let metric = p.get("metric").filter(|m| !m.is_empty());
    let mut all: BTreeMap<String, Vec<Json>> = BTreeMap::new();
    for v in views(&s) {
        for t in &v.active {
            for (name, m) in t.status().metadata.iter() {
                if metric.is_some_and(|f| f != name) {
                    continue;
                }
                let e = json!({"type": m.kind.as_str(), "help": m.help, "unit": m.unit});
                let list = all.entry(name.clone()).or_default();
                if !list.contains(&e) {
                    list.push(e);
                }
            }
        }
    }
    let mut out = serde_json::Map::new();
    for (name, mut list) in all {
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        if let Some(n) = per_metric {
            list.truncate(n);
        }
        out.insert(name, Json::Array(list));
    }
    Ok(success(Json::Object(out), None))
}
