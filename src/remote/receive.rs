//! The remote-write receiver: `POST /api/v1/write`, enabled by
//! `--web.enable-remote-write-receiver` (Prometheus' flag; without it the
//! route answers 404 as Prometheus does), so a Prometheus or another Hearth
//! can send to us.
//!
//! A request is decoded (snappy block, protobuf), validated and appended to
//! the head in one batch: all of it is stored (204) or none of it. As in
//! Prometheus, a sample older than its series' newest one (also within the
//! request), a second value for a timestamp, or one older than the head
//! rejects the request with 400 and the storage error as the message, so
//! the sender drops it rather than retrying forever; undecodable or
//! invalid input is 400 with what was wrong; a storage failure is 500.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::codec;
use super::proto::WriteRequest;
use crate::model::{Label, Labels};
use crate::tsdb::{AppendError, Db, SeriesRef};
use crate::web::WebState;

/// Largest compressed body accepted.
const MAX_BODY_BYTES: usize = 32 << 20;

/// What Prometheus answers when the receiver is off.
pub const DISABLED_MESSAGE: &str = "remote write receiver needs to be enabled with --web.enable-remote-write-receiver";

/// Why a request was not stored.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("reading the request body: {0}")]
    Body(String),
    #[error("decoding the remote write request: {0}")]
    Decode(#[from] codec::DecodeError),
    #[error("series {index}: {msg}")]
    Invalid { index: usize, msg: String },
    /// Out of order, duplicate or out of bounds, as Prometheus reports them.
    #[error("{err}: series {series}, timestamp {t}")]
    Rejected { err: AppendError, series: String, t: i64 },
    #[error("storage: {0}")]
    Storage(String),
}

impl ReceiveError {
    fn status(&self) -> StatusCode {
        match self {
            ReceiveError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

pub fn routes() -> Router<Arc<WebState>> {
    Router::new().route("/api/v1/write", post(write))
}

fn text(status: StatusCode, msg: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{msg}\n")).into_response()
}

async fn write(State(s): State<Arc<WebState>>, req: Request) -> Response {
    if !s.remote_write_receiver {
        return text(StatusCode::NOT_FOUND, DISABLED_MESSAGE.to_string());
    }
    let Some(db) = s.db.get().cloned() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "storage is still starting (WAL replay)".to_string());
    };
    let body = match axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) => return error_response(ReceiveError::Body(e.to_string())),
    };
    let stored = tokio::task::spawn_blocking(move || codec::decode(&body).map_err(ReceiveError::from).and_then(|r| append(&db, &r))).await;
    match stored {
        Ok(Ok(_)) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(e)) => error_response(e),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("remote write task failed: {e}")),
    }
}

fn error_response(e: ReceiveError) -> Response {
    if matches!(e, ReceiveError::Rejected { .. }) {
        tracing::error!(error = %e, "out of order sample from remote write");
    }
    text(e.status(), e.to_string())
}

/// The labels of series `index`, checked: at least one, valid names, no
/// name twice. Empty values mean "no label", as everywhere in Prometheus.
fn series_labels(index: usize, labels: &[super::proto::Label]) -> Result<Labels, ReceiveError> {
    let invalid = |msg: String| ReceiveError::Invalid { index, msg };
    let mut out: Vec<Label> = Vec::with_capacity(labels.len());
    for l in labels {
        if !crate::relabel::NameValidation::Legacy.is_valid_label_name(&l.name) {
            return Err(invalid(format!("invalid label name {:?}", l.name)));
        }
        if !l.value.is_empty() {
            out.push(Label::new(l.name.clone(), l.value.clone()));
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = out.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(invalid(format!("duplicate label name {:?}", w[0].name)));
    }
    if out.is_empty() {
        return Err(invalid("no labels".to_string()));
    }
    Ok(Labels::from_sorted(out))
}

/// Appends a request in one batch; returns the samples stored.
pub fn append(db: &Db, req: &WriteRequest) -> Result<u64, ReceiveError> {
    let mut app = db.appender();
    // The newest (timestamp, value bits) appended per series in this request.
    let mut newest: HashMap<u32, (i64, u64)> = HashMap::new();
    for (index, ts) in req.timeseries.iter().enumerate() {
        let labels = series_labels(index, &ts.labels)?;
        let mut hint: Option<SeriesRef> = None;
        for s in &ts.samples {
            let rejected = |err: AppendError| ReceiveError::Rejected { err, series: labels.to_string(), t: s.timestamp };
            let r = match app.append(hint, &labels, s.timestamp, s.value) {
                Ok(r) => r,
                Err(AppendError::Wal(e)) => return Err(ReceiveError::Storage(e)),
                Err(e) => return Err(rejected(e)),
            };
            hint = Some(r);
            match newest.get(&(r as u32)) {
                Some(&(t, _)) if s.timestamp < t => return Err(rejected(AppendError::OutOfOrder)),
                Some(&(t, bits)) if s.timestamp == t && bits != s.value.to_bits() => return Err(rejected(AppendError::Duplicate)),
                _ => {}
            }
            newest.insert(r as u32, (s.timestamp, s.value.to_bits()));
        }
    }
    let n = app.len() as u64;
    let stats = app.commit().map_err(|e| ReceiveError::Storage(e.to_string()))?;
    if stats.out_of_order + stats.duplicate > 0 {
        // Raced by another appender of the same series since the checks.
        tracing::warn!(out_of_order = stats.out_of_order, duplicate = stats.duplicate, "remote write samples rejected at commit");
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::super::proto::{self, Sample, TimeSeries};
    use super::*;
    use crate::model::Matcher;
    use crate::tsdb::Options;
    use crate::tsdb::metrics::TsdbMetrics;

    fn series(name: &str, samples: &[(i64, f64)]) -> TimeSeries {
        TimeSeries {
            labels: vec![
                proto::Label { name: "__name__".into(), value: name.into() },
                proto::Label { name: "job".into(), value: "w".into() },
            ],
            samples: samples.iter().map(|&(timestamp, value)| Sample { value, timestamp }).collect(),
        }
    }

    fn stored(db: &Db, name: &str) -> Vec<(i64, f64)> {
        let got = db.querier().select(&[Matcher::equal("__name__", name)], 0, i64::MAX).expect("select");
        got.into_iter().flat_map(|s| s.samples).map(|s| (s.t, s.v)).collect()
    }

    #[test]
    fn a_request_is_stored_whole_or_not_at_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), Options::default(), TsdbMetrics::default()).expect("open");
        let ok = WriteRequest { timeseries: vec![series("a", &[(1000, 1.0), (2000, 2.0)]), series("b", &[(1000, 5.0)])], metadata: vec![] };
        assert_eq!(append(&db, &ok).expect("stored"), 3);
        assert_eq!(stored(&db, "a"), vec![(1000, 1.0), (2000, 2.0)]);

        // Out of order against storage, and within one request: nothing of the request is kept.
        let late = WriteRequest { timeseries: vec![series("b", &[(3000, 6.0)]), series("a", &[(1500, 9.0)])], metadata: vec![] };
        let e = append(&db, &late).expect_err("out of order");
        assert!(e.to_string().starts_with("out of order sample"), "{e}");
        assert_eq!(stored(&db, "b"), vec![(1000, 5.0)]);
        let inner = WriteRequest { timeseries: vec![series("c", &[(5000, 1.0), (4000, 1.0)])], metadata: vec![] };
        assert!(matches!(append(&db, &inner), Err(ReceiveError::Rejected { err: AppendError::OutOfOrder, .. })));
        let dup = WriteRequest { timeseries: vec![series("a", &[(2000, 3.0)])], metadata: vec![] };
        assert!(matches!(append(&db, &dup), Err(ReceiveError::Rejected { err: AppendError::Duplicate, .. })));
        // The same value again is accepted silently, as Prometheus does.
        let same = WriteRequest { timeseries: vec![series("a", &[(2000, 2.0)])], metadata: vec![] };
        assert!(append(&db, &same).is_ok());
    }

    #[test]
    fn invalid_labels_are_rejected_with_the_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), Options::default(), TsdbMetrics::default()).expect("open");
        let mut bad = series("a", &[(1, 1.0)]);
        bad.labels.push(proto::Label { name: "job".into(), value: "again".into() });
        let e = append(&db, &WriteRequest { timeseries: vec![bad], metadata: vec![] }).expect_err("duplicate name");
        assert_eq!(e.to_string(), "series 0: duplicate label name \"job\"");
        let empty = TimeSeries { labels: vec![], samples: vec![Sample { value: 1.0, timestamp: 1 }] };
        assert!(matches!(append(&db, &WriteRequest { timeseries: vec![empty], metadata: vec![] }), Err(ReceiveError::Invalid { .. })));
    }
}
