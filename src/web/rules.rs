//! Rules and alerts over the Prometheus API, in the shapes Grafana reads:
//! `/api/v1/rules`, `/api/v1/alerts` and `/api/v1/alertmanagers`.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value as Json, json};

use crate::model::Labels;
use crate::promql::gofmt::format_float_e;
use crate::rules::alerting::ActiveAlert;
use crate::rules::group::{Group, RuleKind};
use crate::server::rfc3339;
use crate::web::WebState;
use crate::web::api::{ApiError, Params, success};

pub fn routes() -> Router<Arc<WebState>> {
    Router::new().route("/api/v1/rules", get(rules)).route("/api/v1/alerts", get(alerts)).route("/api/v1/alertmanagers", get(alertmanagers))
}

fn groups(s: &WebState) -> Vec<Arc<Group>> {
    s.rules.get().map(|m| m.groups()).unwrap_or_default()
}

fn labels_json(l: &Labels) -> Json {
    Json::Object(l.iter().map(|l| (l.name.clone(), Json::String(l.value.clone()))).collect())
}

fn map_json(m: &std::collections::BTreeMap<String, String>) -> Json {
    Json::Object(m.iter().map(|(k, v)| (k.clone(), Json::String(v.clone()))).collect())
}

/// Go's zero time when never evaluated, as Prometheus reports it.
fn time_json(t: Option<SystemTime>) -> Json {
    Json::String(t.map_or_else(|| "0001-01-01T00:00:00Z".to_string(), rfc3339))
}

fn alert_json(a: &ActiveAlert) -> Json {
    let mut o = Map::new();
    o.insert("labels".into(), labels_json(&a.labels));
    o.insert("annotations".into(), labels_json(&a.annotations));
    o.insert("state".into(), json!(a.state.as_str()));
    o.insert("activeAt".into(), json!(rfc3339(crate::notify::alert::ms_to_time(a.active_at))));
    if let Some(k) = a.keep_firing_since {
        o.insert("keepFiringSince".into(), json!(rfc3339(crate::notify::alert::ms_to_time(k))));
    }
    o.insert("value".into(), json!(format_float_e(a.value, false)));
    Json::Object(o)
}

async fn rules(State(s): State<Arc<WebState>>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let p = Params::from_query(raw.as_deref());
    let (want_alerts, want_records) = match p.get("type").map(str::to_ascii_lowercase).as_deref() {
        None => (true, true),
        Some("alert") => (true, false),
        Some("record") => (false, true),
        Some(other) => return Err(ApiError::bad_data(format!("unsupported type {other:?}"))),
    };
    let exclude_alerts = match p.get("exclude_alerts") {
        None => false,
        Some(v) => v.parse::<bool>().map_err(|_| ApiError::bad_data(format!("parsing exclude_alerts param: invalid value {v:?}")))?,
    };
    let (names, group_names, files) = (p.all("rule_name[]"), p.all("rule_group[]"), p.all("file[]"));
    let mut out = Vec::new();
    for g in groups(&s) {
        if (!group_names.is_empty() && !group_names.contains(&g.name.as_str())) || (!files.is_empty() && !files.contains(&g.file.as_str()))
        {
            continue;
        }
        let mut rules = Vec::new();
        for entry in &g.rules {
            if !names.is_empty() && !names.contains(&entry.rule.name()) {
                continue;
            }
            let st = entry.status();
            let mut o = Map::new();
            match &entry.rule {
                RuleKind::Alerting(r) if want_alerts => {
                    let alerts: Vec<Json> = if exclude_alerts { Vec::new() } else { r.alerts().iter().map(alert_json).collect() };
                    o.insert("state".into(), json!(r.state().as_str()));
                    o.insert("name".into(), json!(r.name));
                    o.insert("query".into(), json!(r.expr));
                    o.insert("duration".into(), json!(r.hold.as_secs_f64()));
                    o.insert("keepFiringFor".into(), json!(r.keep_firing_for.as_secs_f64()));
                    o.insert("labels".into(), map_json(&r.labels));
                    o.insert("annotations".into(), map_json(&r.annotations));
                    o.insert("alerts".into(), Json::Array(alerts));
                    o.insert("type".into(), json!("alerting"));
                }
                RuleKind::Recording(r) if want_records => {
                    o.insert("name".into(), json!(r.name));
                    o.insert("query".into(), json!(r.expr));
                    o.insert("labels".into(), map_json(&r.labels));
                    o.insert("type".into(), json!("recording"));
                }
                _ => continue,
            }
            o.insert("health".into(), json!(st.health));
            if !st.last_error.is_empty() {
                o.insert("lastError".into(), json!(st.last_error));
            }
            o.insert("evaluationTime".into(), json!(st.duration.as_secs_f64()));
            o.insert("lastEvaluation".into(), time_json(st.last_eval));
            rules.push(Json::Object(o));
        }
        // Filtering by rule name or type leaves out groups with no match, as Prometheus does.
        if rules.is_empty() && (!names.is_empty() || !want_alerts || !want_records) {
            continue;
        }
        let gs = g.status();
        out.push(json!({
            "name": g.name,
            "file": g.file,
            "rules": rules,
            "interval": g.interval.as_secs_f64(),
            "limit": g.limit,
            "evaluationTime": gs.duration.as_secs_f64(),
            "lastEvaluation": time_json(gs.last_eval),
        }));
    }
    Ok(success(json!({ "groups": out }), None))
}

async fn alerts(State(s): State<Arc<WebState>>) -> Result<Response, ApiError> {
    let mut out = Vec::new();
    for g in groups(&s) {
        for entry in &g.rules {
            if let RuleKind::Alerting(r) = &entry.rule {
                out.extend(r.alerts().iter().map(alert_json));
            }
        }
    }
    Ok(success(json!({ "alerts": out }), None))
}

async fn alertmanagers(State(s): State<Arc<WebState>>) -> Result<Response, ApiError> {
    let d = s.notifier.get().map(|n| n.alertmanagers()).unwrap_or_default();
    let urls = |v: Vec<String>| v.into_iter().map(|u| json!({ "url": u })).collect::<Vec<_>>();
    Ok(success(json!({ "activeAlertmanagers": urls(d.active), "droppedAlertmanagers": urls(d.dropped) }), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_format_like_go_e() {
        assert_eq!(format_float_e(1.0, false), "1e+00");
        assert_eq!(format_float_e(1234.5, false), "1.2345e+03");
        assert_eq!(format_float_e(0.00012, true), "1.2E-04");
        assert_eq!(format_float_e(0.0, false), "0e+00");
        assert_eq!(format_float_e(f64::NAN, false), "NaN");
    }
}
