//! `GET /federate?match[]=…`: the latest sample of every matching series,
//! in the Prometheus text format, for another Prometheus to scrape (with
//! `honor_labels: true`, so our `job` and `instance` stay).
//!
//! As in Prometheus: only samples within the lookback delta
//! (`--query.lookback-delta`) count, a series whose latest sample is a
//! staleness marker is left out, series are grouped into families by
//! metric name under `# TYPE <name> untyped`, each sample carries its
//! timestamp in milliseconds, and the external labels are appended to
//! every series that does not have them. At least one `match[]` is
//! required (400 otherwise).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::model::labels::escape_label_value;
use crate::model::{Labels, Sample, is_stale_nan};
use crate::promql::gofmt::go_fmt_g;
use crate::tsdb::Querier;
use crate::web::WebState;
use crate::web::api::{Params, parse_selector};

pub fn routes() -> Router<Arc<WebState>> {
    Router::new().route("/federate", get(federate))
}

fn text(status: StatusCode, msg: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], msg).into_response()
}

async fn federate(State(s): State<Arc<WebState>>, RawQuery(raw): RawQuery) -> Response {
    let p = Params::from_query(raw.as_deref());
    let selectors = p.all("match[]");
    if selectors.iter().all(|m| m.is_empty()) {
        return text(StatusCode::BAD_REQUEST, "federation needs at least one match[] parameter\n".into());
    }
    let mut matcher_sets = Vec::new();
    for m in selectors.into_iter().filter(|m| !m.is_empty()) {
        match parse_selector(m) {
            Ok(ms) => matcher_sets.push(ms),
            Err(_) => return text(StatusCode::BAD_REQUEST, format!("invalid match[] selector {m:?}\n")),
        }
    }
    let Some(db) = s.db.get().cloned() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "storage is still starting (WAL replay)\n".into());
    };
    let lookback = s.engine.options().lookback_ms;
    let external = s.config.running().global.external_labels.clone();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let body = tokio::task::spawn_blocking(move || render(&db.querier(), &matcher_sets, now - lookback, now, &external)).await;
    match body {
        Ok(Ok(b)) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], b).into_response(),
        Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("federation task failed: {e}\n")),
    }
}

/// The exposition of the latest samples in `[mint, maxt]` of the series
/// matching any of `matcher_sets`.
pub fn render(
    q: &Querier,
    matcher_sets: &[Vec<crate::model::Matcher>],
    mint: i64,
    maxt: i64,
    external: &BTreeMap<String, String>,
) -> Result<String, crate::tsdb::querier::QueryError> {
    // Sorted by metric name, then labels: one family per name.
    let mut latest: BTreeMap<(String, Labels), Sample> = BTreeMap::new();
    for ms in matcher_sets {
        for series in q.select(ms, mint, maxt)? {
            let Some(last) = series.samples.last() else { continue };
            if is_stale_nan(last.v) {
                continue;
            }
            latest.insert((series.labels.metric_name().to_string(), series.labels.clone()), *last);
        }
    }
    let mut out = String::new();
    let mut family: Option<&str> = None;
    for ((name, labels), sample) in &latest {
        if family != Some(name.as_str()) {
            let _ = writeln!(out, "# TYPE {name} untyped");
            family = Some(name.as_str());
        }
        out.push_str(name);
        let own: BTreeSet<&str> = labels.iter().map(|l| l.name.as_str()).collect();
        let pairs = labels
            .iter()
            .filter(|l| l.name != crate::model::labels::METRIC_NAME)
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .chain(external.iter().filter(|(k, _)| !own.contains(k.as_str())).map(|(k, v)| (k.as_str(), v.as_str())));
        let mut first = true;
        for (k, v) in pairs {
            out.push(if first { '{' } else { ',' });
            first = false;
            let _ = write!(out, "{k}=\"{}\"", escape_label_value(v));
        }
        if !first {
            out.push('}');
        }
        let _ = writeln!(out, " {} {}", go_fmt_g(sample.v, None), sample.t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Matcher, stale_nan};
    use crate::tsdb::metrics::TsdbMetrics;
    use crate::tsdb::{Db, Options};

    #[test]
    fn latest_samples_grouped_by_family_with_external_labels() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), Options::default(), TsdbMetrics::default()).expect("open");
        let mut app = db.appender();
        let l = |pairs: &[(&str, &str)]| Labels::from_pairs(pairs.iter().copied());
        let up_a = l(&[("__name__", "up"), ("job", "a"), ("instance", "x:1")]);
        let up_b = l(&[("__name__", "up"), ("job", "b"), ("instance", "y:1"), ("cluster", "own")]);
        let gone = l(&[("__name__", "up"), ("job", "c")]);
        let old = l(&[("__name__", "up"), ("job", "old")]);
        let quoted = l(&[("__name__", "build_info"), ("version", "say \"hi\"\n")]);
        for (labels, t, v) in [
            (&up_a, 10_000, 1.0),
            (&up_a, 20_000, 0.0),
            (&up_b, 20_000, 1.0),
            (&gone, 10_000, 1.0),
            (&gone, 20_000, stale_nan()),
            (&old, 1_000, 1.0),
            (&quoted, 20_000, 1_500_000.0),
        ] {
            app.append(None, labels, t, v).expect("append");
        }
        app.commit().expect("commit");
        let ext = BTreeMap::from([("cluster".to_string(), "eu1".to_string()), ("replica".to_string(), "0".to_string())]);
        let sets = vec![vec![Matcher::equal("__name__", "up")], vec![Matcher::equal("__name__", "build_info")]];
        let got = render(&db.querier(), &sets, 5_000, 25_000, &ext).expect("render");
        let want = concat!(
            "# TYPE build_info untyped\n",
            "build_info{version=\"say \\\"hi\\\"\\n\",cluster=\"eu1\",replica=\"0\"} 1.5e+06 20000\n",
            "# TYPE up untyped\n",
            "up{cluster=\"own\",instance=\"y:1\",job=\"b\",replica=\"0\"} 1 20000\n",
            "up{instance=\"x:1\",job=\"a\",cluster=\"eu1\",replica=\"0\"} 0 20000\n",
        );
        assert_eq!(got, want);
    }
}
