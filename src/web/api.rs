//! The Prometheus HTTP API v1, as Grafana and other clients call it.
//!
//! Envelope: `{"status":"success","data":…,"warnings":[…],"infos":[…]}` or
//! `{"status":"error","errorType":…,"error":…}` with 400 for bad parameters,
//! 422 for execution errors and 503 for timeouts and cancellation.
//! Timestamps are unix seconds (numbers), sample values strings formatted like
//! Go's `strconv.FormatFloat(v, 'f', -1, 64)`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value as Json, json};

use super::WebState;
use crate::model::{Labels, MatchOp, Matcher};
use crate::promql::engine::QueryOptions;
use crate::promql::{Annotations, EvalError, QueryError, QueryResult, Value};

/// Most points a range query may return per series, as in Prometheus.
const MAX_POINTS: i64 = 11_000;

/// Routes under `/api/v1`.
pub fn routes() -> Router<Arc<WebState>> {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/format_query", get(format_query).post(format_query))
        .route("/api/v1/parse_query", get(parse_query).post(parse_query))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route("/api/v1/status/config", get(status_config))
        .route("/api/v1/status/flags", get(status_flags))
        .route("/api/v1/status/runtimeinfo", get(runtimeinfo))
        .route("/api/v1/status/tsdb", get(status_tsdb))
}

/// An API error: its `errorType` and message.
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    msg: String,
}

impl ApiError {
    pub fn bad_data(msg: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, kind: "bad_data", msg: msg.into() }
    }

    pub fn forbidden(msg: impl Into<String>) -> Self {
        ApiError { status: StatusCode::FORBIDDEN, kind: "unavailable", msg: msg.into() }
    }

    pub fn internal(msg: impl Into<String>) -> Self {
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, kind: "internal", msg: msg.into() }
    }

    /// Storage has not finished opening (WAL replay).
    pub fn not_ready() -> Self {
        ApiError { status: StatusCode::SERVICE_UNAVAILABLE, kind: "unavailable", msg: "storage is still starting (WAL replay)".into() }
    }

    fn unavailable(msg: impl Into<String>) -> Self {
        ApiError { status: StatusCode::SERVICE_UNAVAILABLE, kind: "unavailable", msg: msg.into() }
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Parse(m) => ApiError::bad_data(format!("invalid parameter \"query\": {m}")),
            QueryError::Eval(EvalError::Timeout) => {
                ApiError { status: StatusCode::SERVICE_UNAVAILABLE, kind: "timeout", msg: EvalError::Timeout.to_string() }
            }
            QueryError::Eval(EvalError::Canceled) => {
                ApiError { status: StatusCode::SERVICE_UNAVAILABLE, kind: "canceled", msg: EvalError::Canceled.to_string() }
            }
            QueryError::Eval(e) => ApiError { status: StatusCode::UNPROCESSABLE_ENTITY, kind: "execution", msg: e.to_string() },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"status": "error", "errorType": self.kind, "error": self.msg});
        (self.status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
    }
}

pub fn success(data: Json, ann: Option<Annotations>) -> Response {
    let mut body = json!({"status": "success", "data": data});
    if let Some(a) = ann {
        if !a.warnings.is_empty() {
            body["warnings"] = json!(a.warnings);
        }
        if !a.infos.is_empty() {
            body["infos"] = json!(a.infos);
        }
    }
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Request parameters from the query string and, for POST, the form body.
pub struct Params(Vec<(String, String)>);

impl Params {
    fn parse(method: &Method, headers: &HeaderMap, raw: Option<String>, body: &Bytes) -> Params {
        let mut v = parse_urlencoded(raw.as_deref().unwrap_or(""));
        let form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|c| c.to_str().ok())
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        if *method == Method::POST && form {
            v.extend(parse_urlencoded(&String::from_utf8_lossy(body)));
        }
        Params(v)
    }

    /// Only the query string (for routes without a form body).
    pub fn from_query(raw: Option<&str>) -> Params {
        Params(parse_urlencoded(raw.unwrap_or("")))
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    pub fn all(&self, k: &str) -> Vec<&str> {
        self.0.iter().filter(|(n, _)| n == k).map(|(_, v)| v.as_str()).collect()
    }
}

/// Largest form body accepted (long `match[]` lists are POSTed).
const MAX_FORM_BYTES: usize = 16 << 20;

/// Handlers take their parameters as Prometheus reads them: query string,
/// plus the form body of a POST.
impl<S: Send + Sync> axum::extract::FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes =
            axum::body::to_bytes(body, MAX_FORM_BYTES).await.map_err(|e| ApiError::bad_data(format!("reading request body: {e}")))?;
        Ok(Params::parse(&parts.method, &parts.headers, parts.uri.query().map(str::to_string), &bytes))
    }
}

/// Decodes `application/x-www-form-urlencoded` pairs.
pub fn parse_urlencoded(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(x) => {
                        out.push(x);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Parses a timestamp as Prometheus does: unix seconds (fractional allowed) or RFC 3339.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        if f.is_finite() {
            return Ok((f * 1000.0).round() as i64);
        }
    }
    parse_rfc3339(s).ok_or_else(|| format!("cannot parse {s:?} to a valid timestamp"))
}

/// Minimal RFC 3339: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ') || b[13] != b':' || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = s.get(start..i)?;
        let ms_digits: String = digits.chars().chain(std::iter::repeat('0')).take(3).collect();
        frac_ms = ms_digits.parse().ok()?;
    }
    let offset_min = match b.get(i)? {
        b'Z' | b'z' => 0,
        sign @ (b'+' | b'-') => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let m = oh * 60 + om;
            if *sign == b'-' { -m } else { m }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60) * 1000) + frac_ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses a duration as Prometheus does: float seconds or a duration string.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        if f.is_finite() && f >= 0.0 {
            return Ok((f * 1000.0).round() as i64);
        }
        return Err(format!("cannot parse {s:?} to a valid duration"));
    }
    crate::config::units::parse_duration_ms(s).map_err(|_| format!("cannot parse {s:?} to a valid duration"))
}

/// Formats a sample value like Go's `FormatFloat(v, 'f', -1, 64)` (used for
/// the special values; [`push_value`] is the fast path).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn labels_json(l: &Labels) -> Json {
    Json::Object(l.iter().map(|x| (x.name.clone(), Json::String(x.value.clone()))).collect())
}

/// Appends `s` as a JSON string literal.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a millisecond timestamp as unix seconds, e.g. `1435781451.781`.
fn push_ts(out: &mut String, ms: i64) {
    if ms < 0 {
        out.push('-');
    }
    let abs = ms.unsigned_abs();
    let (s, frac) = (abs / 1000, abs % 1000);
    let mut b = itoa::Buffer::new();
    out.push_str(b.format(s));
    if frac != 0 {
        let digits = [b'0' + (frac / 100) as u8, b'0' + (frac / 10 % 10) as u8, b'0' + (frac % 10) as u8];
        let keep = if digits[2] != b'0' {
            3
        } else if digits[1] != b'0' {
            2
        } else {
            1
        };
        out.push('.');
        out.extend(digits[..keep].iter().map(|&d| d as char));
    }
}

fn push_labels(out: &mut String, l: &Labels) {
    out.push('{');
    for (i, x) in l.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, &x.name);
        out.push(':');
        push_json_str(out, &x.value);
    }
    out.push('}');
}

fn push_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    push_ts(out, t);
    out.push_str(",\"");
    push_value(out, v);
    out.push_str("\"]");
}

/// Appends a value like Go's `FormatFloat(v, 'f', -1, 64)`: the shortest
/// digits that round-trip, never in exponent form. Whole numbers (counters,
/// most gauges) are printed as integers; ryu finds the digits of the rest
/// fast; its exponent forms (very large or small values) take the slow path.
fn push_value(out: &mut String, v: f64) {
    // Below 2^53 every whole f64 is an exact i64; -0 keeps its sign.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    if v.fract() == 0.0 && v.abs() < EXACT && !(v == 0.0 && v.is_sign_negative()) {
        out.push_str(itoa::Buffer::new().format(v as i64));
        return;
    }
    if !v.is_finite() {
        out.push_str(&format_value(v));
        return;
    }
    let mut b = ryu::Buffer::new();
    let s = b.format_finite(v);
    if s.contains('e') {
        use std::fmt::Write;
        let _ = write!(out, "{v}");
    } else {
        out.push_str(s.strip_suffix(".0").unwrap_or(s));
    }
}

/// The answer of `/api/v1/query(_range)`, the success envelope around the
/// result, written straight into JSON text: results can hold millions of
/// points. Large results are encoded on the blocking thread that ran the
/// query, not on a serving thread that other connections share.
fn query_answer(v: &Value, ann: &Annotations) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"status\":\"success\",\"data\":");
    match v {
        Value::Scalar { t, v } => {
            out.push_str("{\"resultType\":\"scalar\",\"result\":");
            push_point(&mut out, *t, *v);
        }
        Value::String { t, v } => {
            out.push_str("{\"resultType\":\"string\",\"result\":[");
            push_ts(&mut out, *t);
            out.push(',');
            push_json_str(&mut out, v);
            out.push(']');
        }
        Value::Vector(vs) => {
            out.push_str("{\"resultType\":\"vector\",\"result\":[");
            for (i, s) in vs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_labels(&mut out, &s.metric);
                out.push_str(",\"value\":");
                push_point(&mut out, s.t, s.v);
                out.push('}');
            }
            out.push(']');
        }
        Value::Matrix(m) => {
            out.reserve(m.iter().map(|s| s.points.len() * 24 + 64).sum());
            out.push_str("{\"resultType\":\"matrix\",\"result\":[");
            for (i, s) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                push_labels(&mut out, &s.metric);
                out.push_str(",\"values\":[");
                for (j, p) in s.points.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    push_point(&mut out, p.t, p.v);
                }
                out.push_str("]}");
            }
            out.push(']');
        }
    }
    out.push('}');
    for (key, list) in [("warnings", &ann.warnings), ("infos", &ann.infos)] {
        if !list.is_empty() {
            out.push_str(",\"");
            out.push_str(key);
            out.push_str("\":[");
            for (i, w) in list.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_str(&mut out, w);
            }
            out.push(']');
        }
    }
    out.push('}');
    out
}

fn json_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Raises the query's cancel flag when the handler is dropped, which hyper
/// does when the client disconnects mid-query.
struct CancelOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn query_options(p: &Params) -> Result<(QueryOptions, CancelOnDrop), ApiError> {
    let lookback_ms = p.get("lookback_delta").map(parse_duration).transpose().map_err(ApiError::bad_data)?;
    let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
    Ok((QueryOptions { lookback_ms, cancel: Some(cancel.clone()) }, CancelOnDrop(cancel)))
}

fn limit_param(p: &Params) -> Result<Option<usize>, ApiError> {
    match p.get("limit") {
        None => Ok(None),
        Some(s) => match s.parse::<i64>() {
            Ok(0) => Ok(None),
            Ok(n) if n > 0 => Ok(Some(n as usize)),
            _ => Err(ApiError::bad_data(format!("invalid limit {s:?}: must be a non-negative integer"))),
        },
    }
}

async fn query(State(s): State<Arc<WebState>>, p: Params) -> Result<Response, ApiError> {
    let q = p.get("query").ok_or_else(|| ApiError::bad_data("invalid parameter \"query\": no query provided"))?.to_string();
    let ts = match p.get("time") {
        Some(t) => parse_time(t).map_err(|e| ApiError::bad_data(format!("invalid parameter \"time\": {e}")))?,
        None => now_ms(),
    };
    let (opts, _cancel_on_drop) = query_options(&p)?;
    let limit = limit_param(&p)?;
    let (db, engine) = s.query()?;
    let answer = move |res: QueryResult| {
        let mut value = res.value;
        if let (Some(n), Value::Vector(v)) = (limit, &mut value) {
            v.truncate(n);
        }
        query_answer(&value, &res.annotations)
    };
    let body = match engine.instant_inline(&db.querier(), &q, ts, &opts) {
        Some(r) => answer(r?),
        None => blocking(move || engine.instant_with(&db.querier(), &q, ts, &opts).map(answer)).await??,
    };
    Ok(json_response(body))
}

async fn query_range(State(s): State<Arc<WebState>>, p: Params) -> Result<Response, ApiError> {
    let q = p.get("query").ok_or_else(|| ApiError::bad_data("invalid parameter \"query\": no query provided"))?.to_string();
    let req = |k: &str| p.get(k).ok_or_else(|| ApiError::bad_data(format!("invalid parameter \"{k}\": missing")));
    let start = parse_time(req("start")?).map_err(|e| ApiError::bad_data(format!("invalid parameter \"start\": {e}")))?;
    let end = parse_time(req("end")?).map_err(|e| ApiError::bad_data(format!("invalid parameter \"end\": {e}")))?;
    if end < start {
        return Err(ApiError::bad_data("invalid parameter \"end\": end timestamp must not be before start time"));
    }
    let step = parse_duration(req("step")?).map_err(|e| ApiError::bad_data(format!("invalid parameter \"step\": {e}")))?;
    if step <= 0 {
        return Err(ApiError::bad_data(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step >= MAX_POINTS {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let (opts, _cancel_on_drop) = query_options(&p)?;
    // Small queries run here; the rest on a thread that may block.
    let (db, engine) = s.query()?;
    let answer = |res: QueryResult| query_answer(&res.value, &res.annotations);
    let body = match engine.range_inline(&db.querier(), &q, start, end, step, &opts) {
        Some(r) => answer(r?),
        None => blocking(move || engine.range_with(&db.querier(), &q, start, end, step, &opts).map(answer)).await??,
    };
    Ok(json_response(body))
}

/// Parses `match[]` selectors into matcher lists.
fn match_params(p: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    p.all("match[]").into_iter().map(parse_selector).collect()
}

/// Parses a series selector like `up{job="x"}` into storage matchers.
pub fn parse_selector(s: &str) -> Result<Vec<Matcher>, ApiError> {
    use promql_parser::label::MatchOp as P;
    let expr = promql_parser::parser::parse(s).map_err(|e| ApiError::bad_data(format!("invalid parameter \"match[]\": {e}")))?;
    let promql_parser::parser::Expr::VectorSelector(vs) = expr else {
        return Err(ApiError::bad_data(format!("invalid parameter \"match[]\": {s:?} is not a series selector")));
    };
    let mut out = Vec::new();
    for m in &vs.matchers.matchers {
        let op = match m.op {
            P::Equal => MatchOp::Equal,
            P::NotEqual => MatchOp::NotEqual,
            P::Re(_) => MatchOp::Regex,
            P::NotRe(_) => MatchOp::NotRegex,
        };
        out.push(Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| ApiError::bad_data(e.to_string()))?);
    }
    if let Some(n) = &vs.name {
        out.push(Matcher::equal("__name__", n.clone()));
    }
    Ok(out)
}

/// `start` and `end` parameters, unbounded when absent.
pub fn time_range(p: &Params) -> Result<(i64, i64), ApiError> {
    let start = p
        .get("start")
        .map(parse_time)
        .transpose()
        .map_err(|e| ApiError::bad_data(format!("invalid parameter \"start\": {e}")))?
        .unwrap_or(i64::MIN / 2);
    let end = p
        .get("end")
        .map(parse_time)
        .transpose()
        .map_err(|e| ApiError::bad_data(format!("invalid parameter \"end\": {e}")))?
        .unwrap_or(i64::MAX / 2);
    Ok((start, end))
}

async fn series(State(s): State<Arc<WebState>>, p: Params) -> Result<Response, ApiError> {
    let sets = match_params(&p)?;
    if sets.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let (start, end) = time_range(&p)?;
    let limit = limit_param(&p)?;
    let (db, _) = s.query()?;
    blocking(move || {
        let q = db.querier();
        let mut all = std::collections::BTreeSet::new();
        for ms in sets {
            all.extend(q.series(&ms, start, end));
        }
        let mut out: Vec<Json> = all.iter().map(labels_json).collect();
        let mut ann = Annotations::default();
        if let Some(n) = limit
            && out.len() > n
        {
            out.truncate(n);
            ann.warn("results truncated due to limit");
        }
        success(Json::Array(out), Some(ann))
    })
    .await
}

/// Runs work that may take long — a large query, an index walk (series,
/// label names and values, cardinality) that a broad `match[]` or a large
/// head makes long — on a blocking thread rather than on the serving thread
/// other connections share.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::unavailable(e.to_string()))
}

async fn labels(State(s): State<Arc<WebState>>, p: Params) -> Result<Response, ApiError> {
    let sets = match_params(&p)?;
    let (start, end) = time_range(&p)?;
    let limit = limit_param(&p)?;
    let (db, _) = s.query()?;
    blocking(move || {
        let q = db.querier();
        let mut names = std::collections::BTreeSet::new();
        if sets.is_empty() {
            names.extend(q.label_names(&[], start, end));
        } else {
            for ms in sets {
                names.extend(q.label_names(&ms, start, end));
            }
        }
        success(truncated(names.into_iter().collect(), limit), None)
    })
    .await
}

fn truncated(mut v: Vec<String>, limit: Option<usize>) -> Json {
    if let Some(n) = limit {
        v.truncate(n);
    }
    json!(v)
}

async fn label_values(State(s): State<Arc<WebState>>, Path(name): Path<String>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let p = Params::from_query(raw.as_deref());
    let sets = match_params(&p)?;
    let (start, end) = time_range(&p)?;
    let limit = limit_param(&p)?;
    let (db, _) = s.query()?;
    blocking(move || {
        let q = db.querier();
        let mut vals = std::collections::BTreeSet::new();
        if sets.is_empty() {
            vals.extend(q.label_values(&name, &[], start, end));
        } else {
            for ms in sets {
                vals.extend(q.label_values(&name, &ms, start, end));
            }
        }
        success(truncated(vals.into_iter().collect(), limit), None)
    })
    .await
}

async fn format_query(p: Params) -> Result<Response, ApiError> {
    let q = p.get("query").ok_or_else(|| ApiError::bad_data("invalid parameter \"query\": no query provided"))?;
    let e = crate::promql::parse::parse(q).map_err(|e| ApiError::bad_data(format!("invalid parameter \"query\": {e}")))?;
    Ok(success(json!(e.prettify()), None))
}

async fn parse_query(p: Params) -> Result<Response, ApiError> {
    let q = p.get("query").ok_or_else(|| ApiError::bad_data("invalid parameter \"query\": no query provided"))?;
    let e = crate::promql::parse::parse(q).map_err(|e| ApiError::bad_data(format!("invalid parameter \"query\": {e}")))?;
    let ast = serde_json::to_value(&e).map_err(|e| ApiError::bad_data(e.to_string()))?;
    Ok(success(ast, None))
}

async fn buildinfo() -> Response {
    // Grafana decides it talks to Prometheus (not Mimir/Cortex) when
    // `features` is absent, and enables query features by this version.
    success(
        json!({
            "version": "3.0.0",
            "revision": concat!("hearth-", env!("CARGO_PKG_VERSION")),
            "branch": "main",
            "buildUser": "hearth",
            "buildDate": "",
            "goVersion": "none (Rust)",
        }),
        None,
    )
}

async fn status_config(State(s): State<Arc<WebState>>) -> Response {
    success(json!({"yaml": s.config.status().yaml}), None)
}

async fn status_flags(State(s): State<Arc<WebState>>) -> Response {
    success(json!(s.flags), None)
}

async fn runtimeinfo(State(s): State<Arc<WebState>>) -> Response {
    let cwd = std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default();
    let corruptions = s.db.get().map_or(0, |d| d.metrics().wal_corruptions.get());
    let config = s.config.status();
    success(
        json!({
            "startTime": s.started_rfc3339,
            "CWD": cwd,
            "reloadConfigSuccess": config.reload_ok,
            "reloadConfigError": config.reload_error,
            "lastConfigTime": config.loaded_at,
            "corruptionCount": corruptions,
            "goroutineCount": 0,
            "GOMAXPROCS": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "GOMEMLIMIT": 0,
            "GOGC": "",
            "GODEBUG": "",
            "storageRetention": s.flags.get("storage.tsdb.retention.time").cloned().unwrap_or_default(),
        }),
        None,
    )
}

async fn status_tsdb(State(s): State<Arc<WebState>>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let p = Params::from_query(raw.as_deref());
    let limit = p.get("limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(10);
    let (db, _) = s.query()?;
    blocking(move || {
        let stats = db.head().cardinality(limit);
        let pairs = |v: Vec<(String, u64)>| v.into_iter().map(|(name, value)| json!({"name": name, "value": value})).collect::<Vec<_>>();
        success(
            json!({
                "headStats": {
                    "numSeries": stats.num_series,
                    "numLabelPairs": stats.num_label_pairs,
                    "chunkCount": stats.chunk_count,
                    "minTime": db.head().min_time().min(db.head().max_time()),
                    "maxTime": db.head().max_time().max(db.head().min_time()),
                },
                "seriesCountByMetricName": pairs(stats.series_by_metric),
                "labelValueCountByLabelName": pairs(stats.values_by_label),
                "memoryInBytesByLabelName": pairs(stats.bytes_by_label),
                "seriesCountByLabelValuePair": pairs(stats.series_by_pair),
            }),
            None,
        )
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_timestamps_format_like_prometheus() {
        let fmt = |v: f64| {
            let mut s = String::new();
            push_value(&mut s, v);
            s
        };
        for (v, want) in [
            (1.0, "1"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e21, "1000000000000000000000"),
            (1.5e-7, "0.00000015"),
            (12_345_678_901.333_334, "12345678901.333334"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (0.0, "0"),
            (-0.0, "-0"),
            (-3.0, "-3"),
            (9_007_199_254_740_991.0, "9007199254740991"),
            (-9_007_199_254_740_991.0, "-9007199254740991"),
            (9_007_199_254_740_992.0, "9007199254740992"),
            (1e20, "100000000000000000000"),
        ] {
            assert_eq!(fmt(v), want, "{v}");
        }
        let ts = |ms: i64| {
            let mut s = String::new();
            push_ts(&mut s, ms);
            s
        };
        assert_eq!(ts(1_435_781_451_781), "1435781451.781");
        assert_eq!(ts(1_435_781_451_000), "1435781451");
        assert_eq!(ts(1_435_781_451_500), "1435781451.5");
        assert_eq!(ts(1_435_781_451_050), "1435781451.05");
        assert_eq!(ts(-1500), "-1.5");
        assert_eq!(ts(-500), "-0.5");
    }
}
