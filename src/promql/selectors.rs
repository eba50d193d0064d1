//! Selecting series from storage once per query, then per step.
//!
//! Before evaluation, [`plan`] walks the expression and works out for every
//! distinct selector (same metric name and matchers) the whole time range any
//! step will read, accounting for ranges, lookback, offsets, `@` and the
//! subqueries around it. Each is fetched from storage once; steps then read
//! their window from memory with a binary search.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};

use super::value::{EvalError, Points, Sample, Series};
use crate::model::{Labels, MatchOp, Matcher, Sample as Point, is_stale_nan};
use crate::tsdb::Querier;

/// Milliseconds of a duration.
pub fn ms(d: &Duration) -> i64 {
    d.as_millis() as i64
}

/// Signed milliseconds of an offset.
pub fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        Some(Offset::Pos(d)) => ms(d),
        Some(Offset::Neg(d)) => -ms(d),
        None => 0,
    }
}

/// Milliseconds since the epoch of a point in time (negative before 1970).
pub fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// The fixed evaluation time an `@` modifier pins, if any.
pub fn at_ms(at: &Option<AtModifier>, start: i64, end: i64) -> Option<i64> {
    match at {
        None => None,
        Some(AtModifier::Start) => Some(start),
        Some(AtModifier::End) => Some(end),
        Some(AtModifier::At(t)) => Some(system_time_ms(t)),
    }
}

/// A selector's identity for sharing fetched data between identical selectors.
pub fn selector_key(vs: &VectorSelector) -> String {
    let mut parts: Vec<String> = vs.matchers.matchers.iter().map(|m| m.to_string()).collect();
    parts.sort();
    let ors: Vec<String> = vs.matchers.or_matchers.iter().map(|g| g.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(",")).collect();
    format!("{}{{{}}}{}", vs.name.as_deref().unwrap_or(""), parts.join(","), ors.join(" or "))
}

/// Converts a selector's matchers into storage matchers, one list per `or` branch.
fn matcher_sets(vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>, EvalError> {
    let convert = |ms: &[promql_parser::label::Matcher]| -> Result<Vec<Matcher>, EvalError> {
        let mut out = Vec::with_capacity(ms.len() + 1);
        for m in ms {
            let op = match m.op {
                PMatchOp::Equal => MatchOp::Equal,
                PMatchOp::NotEqual => MatchOp::NotEqual,
                PMatchOp::Re(_) => MatchOp::Regex,
                PMatchOp::NotRe(_) => MatchOp::NotRegex,
            };
            out.push(Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| EvalError::exec(e.to_string()))?);
        }
        if let Some(name) = &vs.name
            && !out.iter().any(|m| m.name == crate::model::labels::METRIC_NAME)
        {
            out.push(Matcher::equal(crate::model::labels::METRIC_NAME, name.clone()));
        }
        Ok(out)
    };
    if vs.matchers.or_matchers.is_empty() {
        Ok(vec![convert(&vs.matchers.matchers)?])
    } else {
        vs.matchers.or_matchers.iter().map(|g| convert(g)).collect()
    }
}

/// Data fetched for one distinct selector.
pub struct Fetched {
    /// Every stored point, stale markers included (instant selection needs them).
    pub series: Vec<(Labels, Vec<Point>)>,
    /// The same without stale markers, shared by every range window.
    no_stale: std::sync::OnceLock<Vec<Arc<[Point]>>>,
}

impl Fetched {
    fn no_stale(&self) -> &[Arc<[Point]>] {
        self.no_stale.get_or_init(|| {
            self.series.iter().map(|(_, p)| p.iter().filter(|p| !is_stale_nan(p.v)).copied().collect::<Vec<_>>().into()).collect()
        })
    }
}

/// Time ranges each selector needs, gathered before evaluation.
#[derive(Default)]
pub struct Plan {
    ranges: HashMap<String, (i64, i64)>,
    nodes: HashMap<String, VectorSelector>,
}

/// The evaluation-time interval a subtree runs over and the query bounds.
#[derive(Clone, Copy)]
struct Span {
    lo: i64,
    hi: i64,
    start: i64,
    end: i64,
}

/// Walks `expr` to find what each selector will read.
pub fn plan(expr: &Expr, start: i64, end: i64, lookback: i64, default_step: i64) -> Plan {
    let mut p = Plan::default();
    walk(expr, Span { lo: start, hi: end, start, end }, lookback, default_step, &mut p);
    p
}

fn walk(expr: &Expr, s: Span, lookback: i64, default_step: i64, p: &mut Plan) {
    let mut need = |vs: &VectorSelector, back: i64| {
        let off = offset_ms(&vs.offset);
        let (lo, hi) = match at_ms(&vs.at, s.start, s.end) {
            Some(a) => (a - off, a - off),
            None => (s.lo - off, s.hi - off),
        };
        let key = selector_key(vs);
        let r = p.ranges.entry(key.clone()).or_insert((i64::MAX, i64::MIN));
        r.0 = r.0.min(lo - back);
        r.1 = r.1.max(hi);
        p.nodes.entry(key).or_insert_with(|| vs.clone());
    };
    match expr {
        Expr::VectorSelector(vs) => need(vs, lookback),
        Expr::MatrixSelector(m) => need(&m.vs, ms(&m.range)),
        Expr::Subquery(sq) => {
            let off = offset_ms(&sq.offset);
            let (lo, hi) = match at_ms(&sq.at, s.start, s.end) {
                Some(a) => (a - off, a - off),
                None => (s.lo - off, s.hi - off),
            };
            let _ = default_step;
            walk(&sq.expr, Span { lo: lo - ms(&sq.range), hi, ..s }, lookback, default_step, p);
        }
        Expr::Aggregate(a) => {
            walk(&a.expr, s, lookback, default_step, p);
            if let Some(param) = &a.param {
                walk(param, s, lookback, default_step, p);
            }
        }
        Expr::Unary(u) => walk(&u.expr, s, lookback, default_step, p),
        Expr::Binary(b) => {
            walk(&b.lhs, s, lookback, default_step, p);
            walk(&b.rhs, s, lookback, default_step, p);
        }
        Expr::Paren(e) => walk(&e.expr, s, lookback, default_step, p),
        Expr::Call(c) => c.args.args.iter().for_each(|a| walk(a, s, lookback, default_step, p)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

impl Plan {
    /// Whether every planned selector matches by equality or inequality
    /// only: looking such a selector up is a few postings lists, while a
    /// regex may be matched against every value of its label.
    pub fn selects_by_equality_only(&self) -> bool {
        self.nodes.values().all(|vs| {
            let mut all = vs.matchers.matchers.iter().chain(vs.matchers.or_matchers.iter().flatten());
            all.all(|m| matches!(m.op, PMatchOp::Equal | PMatchOp::NotEqual))
        })
    }

    /// Fetches every planned selector once.
    pub fn fetch(&self, q: &Querier, samples: &mut usize, max_samples: usize) -> Result<HashMap<String, Arc<Fetched>>, EvalError> {
        let mut out = HashMap::with_capacity(self.ranges.len());
        for (key, &(lo, hi)) in &self.ranges {
            let vs = &self.nodes[key];
            let mut series: Vec<(Labels, Vec<Point>)> = Vec::new();
            // Ranges are left-open: (lo, hi].
            for ms in matcher_sets(vs)? {
                let left = max_samples.saturating_sub(*samples);
                let selected = q.select_at_most(&ms, lo + 1, hi, left).map_err(|e| EvalError::exec(e.to_string()))?;
                for s in selected.ok_or(EvalError::TooManySamples)? {
                    *samples += s.samples.len();
                    series.push((s.labels, s.samples));
                }
            }
            if !series.is_sorted_by(|a, b| a.0 < b.0) {
                series.sort_by(|a, b| a.0.cmp(&b.0));
                series.dedup_by(|a, b| a.0 == b.0);
            }
            out.insert(key.clone(), Arc::new(Fetched { series, no_stale: std::sync::OnceLock::new() }));
        }
        Ok(out)
    }
}

/// The instant vector a selector yields at `t`: each series' newest sample in
/// `(t - lookback, t]`, unless that sample is a stale marker.
pub fn instant_vector(f: &Fetched, t: i64, lookback: i64, cursor: &mut Cursor) -> Vec<Sample> {
    let forward = cursor.t.is_some_and(|last| t >= last) && cursor.bounds.len() == f.series.len();
    if !forward {
        cursor.bounds = vec![(0, 0); f.series.len()];
    }
    cursor.t = Some(t);
    let mut out = Vec::with_capacity(f.series.len());
    for ((labels, pts), b) in f.series.iter().zip(cursor.bounds.iter_mut()) {
        let i = if forward {
            // Steps move forward: continue from the last position.
            let mut i = b.1;
            while i < pts.len() && pts[i].t <= t {
                i += 1;
            }
            i
        } else {
            pts.partition_point(|p| p.t <= t)
        };
        b.1 = i;
        if i == 0 {
            continue;
        }
        let p = pts[i - 1];
        if p.t <= t - lookback || is_stale_nan(p.v) {
            continue;
        }
        out.push(Sample { metric: labels.clone(), t: p.t, v: p.v, drop_name: false });
    }
    out
}

/// The range vector a selector yields at `t`: points in `(t - range, t]`
/// without stale markers; series with no points are left out.
pub fn range_vector(f: &Fetched, t: i64, range: i64, cursor: &mut Cursor) -> Vec<Series> {
    let windows = f.no_stale();
    let forward = cursor.t.is_some_and(|last| t >= last) && cursor.bounds.len() == windows.len();
    if !forward {
        cursor.bounds = vec![(0, 0); windows.len()];
    }
    cursor.t = Some(t);
    let mut out = Vec::with_capacity(windows.len());
    for (((labels, _), pts), b) in f.series.iter().zip(windows).zip(cursor.bounds.iter_mut()) {
        let (lo, hi) = if forward {
            // Steps move forward: advance from the last window, touching only new points.
            let mut hi = b.1;
            while hi < pts.len() && pts[hi].t <= t {
                hi += 1;
            }
            let mut lo = b.0;
            while lo < hi && pts[lo].t <= t - range {
                lo += 1;
            }
            (lo, hi)
        } else {
            let hi = pts.partition_point(|p| p.t <= t);
            (pts[..hi].partition_point(|p| p.t <= t - range), hi)
        };
        *b = (lo, hi);
        if lo < hi {
            out.push(Series { metric: labels.clone(), points: Points::window(pts.clone(), lo, hi), drop_name: false });
        }
    }
    out
}

/// Where each series' window ended at the previous step of one range selector.
#[derive(Default)]
pub struct Cursor {
    t: Option<i64>,
    bounds: Vec<(usize, usize)>,
}
