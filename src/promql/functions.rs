//! Every non-experimental PromQL function of Prometheus 3.x, for float samples.
//!
//! The engine evaluates a call's arguments and hands them to [`call`] once per
//! evaluation step, so every function here sees a single instant: instant
//! vectors as `Value::Vector`, range vectors as `Value::Matrix` already cut to
//! their window. The functions follow Prometheus' semantics to the bit where
//! that matters (Kahan summation, extrapolation, quantile interpolation, Go's
//! number formatting in annotations), because dashboards and alerts compare
//! Hearth's answers with Prometheus'.
//!
//! Native histograms are not stored by Hearth, so the functions that only make
//! sense for them fail with an explicit error, and experimental functions
//! fail as they do in Prometheus when the experimental flag is off.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::f64::consts::PI;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promql_parser::label::MatchOp as ParserMatchOp;
use promql_parser::parser::{AtModifier, Expr, Offset};
use regex::Regex;

use crate::model::Sample as Point;
use crate::model::labels::{Labels, LabelsBuilder, METRIC_NAME};
use crate::promql::float::{almost_equal, kahan_inc};
use crate::promql::gofmt::{go_fmt_g, go_quote};
use crate::promql::unique::{RewriteOutputs, check_unique};
use crate::promql::{
    Annotations,
    value::{EvalError, Sample, Series, Value},
};
use crate::relabel::template::{Groups, Template};

/// What a call gets besides its argument values.
///
/// Kept separate from the argument values because a few functions need more
/// than values: the evaluation time, the range of their range-vector argument
/// and the argument expressions themselves (`absent()` derives its labels from
/// the selector, `rate()` its window from the selector's `offset`/`@`).
pub struct FnContext<'a> {
    /// Evaluation timestamp in ms: the step being evaluated, *not* adjusted
    /// for `offset` or `@` (functions that need the end of a range-vector
    /// window derive it from `args`, as Prometheus does).
    pub ts: i64,
    /// For a range-vector argument: its range in ms (selector range or subquery range); 0 otherwise.
    pub range_ms: i64,
    /// The argument expressions as parsed (absent/absent_over_time derive labels from them).
    pub args: &'a [Box<Expr>],
    /// Where to add warnings/infos (Annotations::warn / ::info), worded like Prometheus' "PromQL warning: ..." / "PromQL info: ..." messages.
    pub annotations: &'a mut Annotations,
    /// Per-query memo (compiled regexes, relabelled label sets); None in
    /// one-off calls.
    pub memo: Option<&'a mut FnMemo>,
}

/// Work functions can reuse across the steps of one query.
#[derive(Default)]
pub struct FnMemo {
    regexes: HashMap<String, Regex>,
    /// (call parameters, input label-set identity, input name flag) →
    /// (input kept alive so its identity cannot be reused, output, output name flag).
    relabeled: HashMap<(u64, usize, bool), (Labels, Labels, bool), crate::tsdb::idhash::IdBuild>,
    /// Per call parameters: the outputs in `relabeled`, for the uniqueness check.
    relabel_outputs: HashMap<u64, RewriteOutputs>,
    /// Per selected series (by its shared points, kept alive so the address
    /// cannot be reused): what the functions learned about it, so that each
    /// step's window of it costs less than a scan.
    series: HashMap<usize, SeriesFacts, crate::tsdb::idhash::IdBuild>,
    /// Per `absent`/`absent_over_time` argument node: the label set it
    /// reports, shared by every step so that the range output finds it by
    /// identity.
    absent: HashMap<usize, Labels, crate::tsdb::idhash::IdBuild>,
}

/// `prefix[i]` = the sum of the first `i` values, when every value is an
/// integer and the sum of their magnitudes is at most 2^53: then every
/// partial sum and every difference of two is exact, so a window's sum is
/// `prefix[end] - prefix[start]` in O(1), and equals what the compensated
/// (Kahan) summation Prometheus uses returns, whose compensation stays zero
/// when nothing is rounded. Counters and byte gauges are usually integers.
fn exact_prefix(data: &[Point]) -> Option<Vec<f64>> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(0.0);
    let (mut total, mut magnitude) = (0.0f64, 0.0f64);
    for p in data {
        // NaN and ±Inf have a NaN fractional part.
        if p.v.fract() != 0.0 {
            return None;
        }
        magnitude += p.v.abs();
        if magnitude > EXACT {
            return None;
        }
        total += p.v;
        out.push(total);
    }
    Some(out)
}

/// Per-query facts about one selected series, each computed on first use.
struct SeriesFacts {
    /// Kept alive so that the address used as the key cannot be reused.
    data: std::sync::Arc<[Point]>,
    /// Indexes `j` where point `j` is lower than point `j - 1`. Most series
    /// have none, so `rate` and friends skip the reset scan of each window.
    resets: Option<Vec<u32>>,
    /// The counter-name info has been considered for this series.
    name_checked: bool,
    /// [`exact_prefix`], `Some(None)` when the sums would not be exact.
    exact_prefix: Option<Option<Vec<f64>>>,
}

/// What [`FnMemo::window_facts`] knows about a window of a counter.
struct WindowFacts<'a> {
    has_reset: bool,
    /// Whether the series' one-off checks (the counter-name info) are done;
    /// set it when doing them.
    name_checked: Option<&'a mut bool>,
}

impl FnMemo {
    /// Whether the window `points` contains a counter reset (a value lower
    /// than the one before it, both in the window).
    #[cfg(test)]
    fn window_has_reset(&mut self, points: &crate::promql::value::Points) -> bool {
        self.window_facts(points).has_reset
    }

    /// The facts about the selected series whose points are `data`.
    fn series_facts(&mut self, data: &std::sync::Arc<[Point]>) -> &mut SeriesFacts {
        let key = std::sync::Arc::as_ptr(data) as *const Point as usize;
        self.series.entry(key).or_insert_with(|| SeriesFacts { data: data.clone(), resets: None, name_checked: false, exact_prefix: None })
    }

    fn window_facts(&mut self, points: &crate::promql::value::Points) -> WindowFacts<'_> {
        let (data, start, end) = points.source();
        let facts = self.series_facts(data);
        let data = &facts.data;
        let resets = facts
            .resets
            .get_or_insert_with(|| data.windows(2).enumerate().filter(|(_, w)| w[1].v < w[0].v).map(|(i, _)| (i + 1) as u32).collect());
        // A reset at index j pairs points j-1 and j: inside when start < j < end.
        let first = resets.partition_point(|&j| (j as usize) <= start);
        let has_reset = resets.get(first).is_some_and(|&j| (j as usize) < end);
        WindowFacts { has_reset, name_checked: Some(&mut facts.name_checked) }
    }

    /// The exact sum of window `points` in O(1), when its series qualifies
    /// (see [`exact_prefix`]). Only for windows onto a longer selected
    /// series: a subquery's windows are fresh arrays each step, where the
    /// prefix would cost as much as the sum and be kept for nothing.
    fn exact_window_sum(&mut self, points: &crate::promql::value::Points) -> Option<f64> {
        let (data, start, end) = points.source();
        if data.len() < 2 * (end - start) {
            return None;
        }
        let facts = self.series_facts(data);
        let data = &facts.data;
        let prefix = facts.exact_prefix.get_or_insert_with(|| exact_prefix(data)).as_ref()?;
        Some(prefix[end] - prefix[start])
    }
}

/// Calls function `name` (the parser has already checked arity and argument types).
///
/// Returns the function's value at `ctx.ts`: a vector whose samples carry
/// `t = ctx.ts` (or a scalar). Output samples whose metric name Prometheus
/// drops are flagged with `drop_name` instead of losing the name here, so
/// that `label_replace()` and friends further up can still read it.
pub fn call(name: &str, args: Vec<Value>, ctx: &mut FnContext<'_>) -> Result<Value, EvalError> {
    let mut args = args;
    let a = &mut args;
    match name {
        // Plain math on each float.
        "abs" => map_floats(a, ctx, f64::abs),
        "ceil" => map_floats(a, ctx, f64::ceil),
        "floor" => map_floats(a, ctx, f64::floor),
        "exp" => map_floats(a, ctx, f64::exp),
        "sqrt" => map_floats(a, ctx, f64::sqrt),
        "ln" => map_floats(a, ctx, f64::ln),
        "log2" => map_floats(a, ctx, go_log2),
        "log10" => map_floats(a, ctx, go_log10),
        "sin" => map_floats(a, ctx, f64::sin),
        "cos" => map_floats(a, ctx, f64::cos),
        "tan" => map_floats(a, ctx, f64::tan),
        "asin" => map_floats(a, ctx, f64::asin),
        "acos" => map_floats(a, ctx, f64::acos),
        "atan" => map_floats(a, ctx, f64::atan),
        "sinh" => map_floats(a, ctx, f64::sinh),
        "cosh" => map_floats(a, ctx, f64::cosh),
        "tanh" => map_floats(a, ctx, f64::tanh),
        "asinh" => map_floats(a, ctx, f64::asinh),
        "acosh" => map_floats(a, ctx, f64::acosh),
        "atanh" => map_floats(a, ctx, f64::atanh),
        "rad" => map_floats(a, ctx, |v| v * PI / 180.0),
        "deg" => map_floats(a, ctx, |v| v * 180.0 / PI),
        "sgn" => map_floats(a, ctx, sgn),
        "round" => {
            let to_nearest = if a.len() > 1 { scalar_arg(a, 1, name)? } else { 1.0 };
            // Inverting first is what Prometheus does; it rounds ties up.
            let inv = 1.0 / to_nearest;
            map_floats(a, ctx, move |v| (v * inv + 0.5).floor() / inv)
        }
        "clamp" => {
            let (lo, hi) = (scalar_arg(a, 1, name)?, scalar_arg(a, 2, name)?);
            clamp(a, ctx, lo, hi)
        }
        "clamp_min" => {
            let lo = scalar_arg(a, 1, name)?;
            clamp(a, ctx, lo, f64::INFINITY)
        }
        "clamp_max" => {
            let hi = scalar_arg(a, 1, name)?;
            clamp(a, ctx, f64::NEG_INFINITY, hi)
        }
        "timestamp" => {
            let v = take_vector(a, 0, name)?;
            let ts = ctx.ts;
            Ok(Value::Vector(v.into_iter().map(|s| Sample { metric: s.metric, t: ts, v: s.t as f64 / 1000.0, drop_name: true }).collect()))
        }

        // Conversions and constants.
        "vector" => {
            let v = scalar_arg(a, 0, name)?;
            Ok(Value::Vector(vec![Sample::new(Labels::empty(), ctx.ts, v)]))
        }
        "scalar" => {
            let v = take_vector(a, 0, name)?;
            let v = if v.len() == 1 { v[0].v } else { f64::NAN };
            Ok(Value::Scalar { t: ctx.ts, v })
        }
        "time" => Ok(Value::Scalar { t: ctx.ts, v: ctx.ts as f64 / 1000.0 }),
        "pi" => Ok(Value::Scalar { t: ctx.ts, v: PI }),

        // Ordering.
        "sort" => sort(a, ctx, false),
        "sort_desc" => sort(a, ctx, true),

        // Presence.
        "absent" => {
            let v = take_vector(a, 0, name)?;
            if !v.is_empty() {
                return Ok(Value::Vector(Vec::new()));
            }
            let metric = absent_metric(ctx);
            Ok(Value::Vector(vec![Sample::new(metric, ctx.ts, 1.0)]))
        }
        "absent_over_time" => {
            let m = take_matrix(a, 0, name)?;
            if m.iter().any(|s| !s.points.is_empty()) {
                return Ok(Value::Vector(Vec::new()));
            }
            let metric = absent_metric(ctx);
            Ok(Value::Vector(vec![Sample { metric, t: ctx.ts, v: 1.0, drop_name: true }]))
        }
        "present_over_time" => over_time(a, 0, ctx, name, false, |_, _| Some(1.0)),

        // Calendar.
        "year" => date_fn(a, ctx, name, |c| c.year as f64),
        "month" => date_fn(a, ctx, name, |c| c.month as f64),
        "day_of_month" => date_fn(a, ctx, name, |c| c.day as f64),
        "day_of_week" => date_fn(a, ctx, name, |c| c.weekday as f64),
        "day_of_year" => date_fn(a, ctx, name, |c| c.yday as f64),
        "hour" => date_fn(a, ctx, name, |c| c.hour as f64),
        "minute" => date_fn(a, ctx, name, |c| c.minute as f64),
        "days_in_month" => date_fn(a, ctx, name, |c| days_in_month(c.year, c.month) as f64),

        // Labels.
        "label_replace" => label_replace(a, ctx),
        "label_join" => label_join(a, ctx),

        // Classic histograms.
        "histogram_quantile" => histogram_quantile(a, ctx),
        "histogram_fraction" => histogram_fraction(a, ctx),
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev" | "histogram_stdvar" => {
            Err(EvalError::exec(format!("{name}() works on native histograms only: native histograms are not supported")))
        }

        // Counters and gauges over a range.
        "rate" => extrapolated(a, ctx, name, true, true),
        "increase" => extrapolated(a, ctx, name, true, false),
        "delta" => extrapolated(a, ctx, name, false, false),
        "irate" => over_time(a, 0, ctx, name, false, |s, _| instant_value(&s.points, true)),
        "idelta" => over_time(a, 0, ctx, name, false, |s, _| instant_value(&s.points, false)),
        "deriv" => over_time(a, 0, ctx, name, false, |s, _| {
            let p = &s.points;
            (p.len() >= 2).then(|| linear_regression(p, p[0].t).0)
        }),
        "predict_linear" => {
            let secs = scalar_arg(a, 1, name)?;
            let ts = ctx.ts;
            over_time(a, 0, ctx, name, false, move |s, _| {
                let p = &s.points;
                if p.len() < 2 {
                    return None;
                }
                let (slope, intercept) = linear_regression(p, ts);
                Some(slope * secs + intercept)
            })
        }
        "changes" => over_time(a, 0, ctx, name, false, |s, _| Some(changes(&s.points))),
        "resets" => over_time(a, 0, ctx, name, false, |s, _| Some(resets(&s.points))),

        // Aggregations over a range.
        "avg_over_time" => sum_over_time(a, ctx, name, true),
        "sum_over_time" => sum_over_time(a, ctx, name, false),
        "count_over_time" => over_time(a, 0, ctx, name, false, |s, _| Some(s.points.len() as f64)),
        "min_over_time" => over_time(a, 0, ctx, name, false, |s, _| Some(pick(&s.points, |cur, best| cur < best || best.is_nan()))),
        "max_over_time" => over_time(a, 0, ctx, name, false, |s, _| Some(pick(&s.points, |cur, best| cur > best || best.is_nan()))),
        "last_over_time" => over_time(a, 0, ctx, name, true, |s, _| s.points.last().map(|p| p.v)),
        "first_over_time" => over_time(a, 0, ctx, name, true, |s, _| s.points.first().map(|p| p.v)),
        "stdvar_over_time" => over_time(a, 0, ctx, name, false, |s, _| Some(variance(&s.points))),
        "stddev_over_time" => over_time(a, 0, ctx, name, false, |s, _| Some(variance(&s.points).sqrt())),
        "quantile_over_time" => {
            let q = scalar_arg(a, 0, name)?;
            over_time(a, 1, ctx, name, false, move |s, annos| {
                if q.is_nan() || !(0.0..=1.0).contains(&q) {
                    annos.warn(invalid_quantile_warning(q));
                }
                let values: Vec<f64> = s.points.iter().map(|p| p.v).collect();
                Some(crate::promql::aggregate::quantile(q, &values))
            })
        }

        // Experimental in Prometheus 3 and therefore off by default there.
        "double_exponential_smoothing"
        | "mad_over_time"
        | "sort_by_label"
        | "sort_by_label_desc"
        | "ts_of_first_over_time"
        | "ts_of_last_over_time"
        | "ts_of_max_over_time"
        | "ts_of_min_over_time"
        | "histogram_quantiles"
        | "info"
        | "start"
        | "end"
        | "step"
        | "range"
        | "min_of"
        | "max_of"
        | "start_timestamp" => Err(EvalError::exec(format!("function \"{name}\" is not enabled"))),
        _ => Err(EvalError::exec(format!("unknown function with name \"{name}\""))),
    }
}

// ---------------------------------------------------------------------------
// Argument access.

fn arg_error(name: &str, i: usize, want: &str, got: Option<&Value>) -> EvalError {
    match got {
        Some(v) => {
            EvalError::exec(format!("expected type {want} in call to function \"{name}\" (argument {}), got {}", i + 1, v.type_name()))
        }
        None => EvalError::exec(format!("missing argument {} of type {want} in call to function \"{name}\"", i + 1)),
    }
}

fn take_vector(args: &mut [Value], i: usize, name: &str) -> Result<Vec<Sample>, EvalError> {
    match args.get_mut(i) {
        Some(Value::Vector(v)) => Ok(std::mem::take(v)),
        other => Err(arg_error(name, i, "instant vector", other.map(|v| &*v))),
    }
}

fn take_matrix(args: &mut [Value], i: usize, name: &str) -> Result<Vec<Series>, EvalError> {
    match args.get_mut(i) {
        Some(Value::Matrix(m)) => Ok(std::mem::take(m)),
        other => Err(arg_error(name, i, "range vector", other.map(|v| &*v))),
    }
}

fn scalar_arg(args: &[Value], i: usize, name: &str) -> Result<f64, EvalError> {
    match args.get(i) {
        Some(Value::Scalar { v, .. }) => Ok(*v),
        other => Err(arg_error(name, i, "scalar", other)),
    }
}

/// A string argument: its evaluated value, or else the literal as parsed.
fn string_arg(args: &[Value], i: usize, ctx: &FnContext<'_>, name: &str) -> Result<String, EvalError> {
    if let Some(Value::String { v, .. }) = args.get(i) {
        return Ok(v.clone());
    }
    if let Some(Expr::StringLiteral(s)) = ctx.args.get(i).map(|e| unwrap_parens(e)) {
        return Ok(s.val.clone());
    }
    Err(arg_error(name, i, "string", args.get(i)))
}

fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

fn duration_ms(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn offset_ms(o: Option<&Offset>) -> i64 {
    match o {
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => duration_ms(d).wrapping_neg(),
        None => 0,
    }
}

fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => duration_ms(&d),
        Err(e) => duration_ms(&e.duration()).wrapping_neg(),
    }
}

/// The range-vector argument's selector or subquery, if any.
fn range_arg<'e>(ctx: &FnContext<'e>) -> Option<&'e Expr> {
    ctx.args.iter().map(|e| unwrap_parens(e)).find(|e| matches!(e, Expr::MatrixSelector(_) | Expr::Subquery(_)))
}

/// The end of the range-vector argument's window (inclusive), in ms.
///
/// That is the evaluation time moved by the argument's `@` and `offset`;
/// `@ start()`/`@ end()` cannot be resolved here and count as the evaluation
/// time (exact for instant queries).
fn window_end(ctx: &FnContext<'_>) -> i64 {
    let (at, offset) = match range_arg(ctx) {
        Some(Expr::MatrixSelector(ms)) => (ms.vs.at.as_ref(), ms.vs.offset.as_ref()),
        Some(Expr::Subquery(sq)) => (sq.at.as_ref(), sq.offset.as_ref()),
        _ => (None, None),
    };
    let base = match at {
        Some(AtModifier::At(t)) => system_time_ms(t),
        _ => ctx.ts,
    };
    base.wrapping_sub(offset_ms(offset))
}

/// The range of the range-vector argument in ms.
fn window_range(ctx: &FnContext<'_>) -> i64 {
    if ctx.range_ms != 0 {
        return ctx.range_ms;
    }
    match range_arg(ctx) {
        Some(Expr::MatrixSelector(ms)) => duration_ms(&ms.range),
        Some(Expr::Subquery(sq)) => duration_ms(&sq.range),
        _ => 0,
    }
}

/// Converts milliseconds to seconds the way Go's `Duration.Seconds()` does
/// (whole seconds plus the fraction), so results match Prometheus to the bit.
fn ms_to_seconds(ms: i64) -> f64 {
    (ms / 1000) as f64 + ((ms % 1000) * 1_000_000) as f64 / 1e9
}

// ---------------------------------------------------------------------------
// Instant-vector functions.

/// Applies `f` to every sample; the result loses its metric name.
fn map_floats(args: &mut [Value], ctx: &FnContext<'_>, f: impl Fn(f64) -> f64) -> Result<Value, EvalError> {
    let v = take_vector(args, 0, "function")?;
    let ts = ctx.ts;
    Ok(Value::Vector(v.into_iter().map(|s| Sample { metric: s.metric, t: ts, v: f(s.v), drop_name: true }).collect()))
}

fn sgn(v: f64) -> f64 {
    if v < 0.0 {
        -1.0
    } else if v > 0.0 {
        1.0
    } else {
        v
    }
}

/// Go's `math.Max`: +Inf wins over NaN, NaN over everything else, +0 over -0.
fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        f64::INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && y == 0.0 {
        if x.is_sign_negative() { y } else { x }
    } else if x > y {
        x
    } else {
        y
    }
}

/// Go's `math.Min`: -Inf wins over NaN, NaN over everything else, -0 over +0.
fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        f64::NEG_INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && y == 0.0 {
        if x.is_sign_negative() { x } else { y }
    } else if x < y {
        x
    } else {
        y
    }
}

fn clamp(args: &mut [Value], ctx: &FnContext<'_>, lo: f64, hi: f64) -> Result<Value, EvalError> {
    if hi < lo {
        return Ok(Value::Vector(Vec::new()));
    }
    map_floats(args, ctx, move |v| go_max(lo, go_min(hi, v)))
}

/// Go's `math.Frexp`: `f = frac * 2^exp` with `0.5 <= |frac| < 1`.
fn frexp(f: f64) -> (f64, i32) {
    if f == 0.0 || f.is_nan() || f.is_infinite() {
        return (f, 0);
    }
    let (mut f, mut exp) = (f, 0);
    if f.abs() < f64::MIN_POSITIVE {
        // Subnormal: scale into the normal range first.
        f *= (1u64 << 52) as f64;
        exp = -52;
    }
    let bits = f.to_bits();
    exp += ((bits >> 52) & 0x7ff) as i32 - 1022;
    let frac = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (frac, exp)
}

/// `log2` computed the way Go's `math.Log2` does (exact for powers of two).
fn go_log2(v: f64) -> f64 {
    let (frac, exp) = frexp(v);
    if frac == 0.5 {
        return (exp - 1) as f64;
    }
    frac.ln() * std::f64::consts::LOG2_E + exp as f64
}

/// `log10` computed the way Go's `math.Log10` does (`ln(v) * (1/ln 10)`).
fn go_log10(v: f64) -> f64 {
    v.ln() * std::f64::consts::LOG10_E
}

/// Orders floats ascending with NaN last (`nan_first` puts NaN first).
fn cmp_nan(a: f64, b: f64, nan_first: bool) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) if nan_first => Ordering::Less,
        (true, false) => Ordering::Greater,
        (false, true) if nan_first => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// `sort`/`sort_desc`: NaN always sorts last; samples keep their name.
fn sort(args: &mut [Value], ctx: &FnContext<'_>, desc: bool) -> Result<Value, EvalError> {
    let mut v = take_vector(args, 0, if desc { "sort_desc" } else { "sort" })?;
    v.sort_by(|a, b| {
        if desc {
            match (a.v.is_nan(), b.v.is_nan()) {
                (false, false) => cmp_nan(b.v, a.v, false),
                _ => cmp_nan(a.v, b.v, false),
            }
        } else {
            cmp_nan(a.v, b.v, false)
        }
    });
    for s in &mut v {
        s.t = ctx.ts;
    }
    Ok(Value::Vector(v))
}

/// [`absent_labels`] of the call's argument, derived once per query.
fn absent_metric(ctx: &mut FnContext) -> Labels {
    let arg = ctx.args.first().map(|e| &**e);
    match (ctx.memo.as_deref_mut(), arg) {
        (Some(memo), Some(a)) => memo.absent.entry(a as *const Expr as usize).or_insert_with(|| absent_labels(Some(a))).clone(),
        _ => absent_labels(arg),
    }
}

/// The labels `absent()`/`absent_over_time()` report: those pinned by an
/// equality matcher on the argument selector, except names matched more than
/// once (a historic quirk Prometheus keeps).
fn absent_labels(arg: Option<&Expr>) -> Labels {
    let vs = match arg.map(unwrap_parens) {
        Some(Expr::VectorSelector(vs)) => vs,
        Some(Expr::MatrixSelector(ms)) => &ms.vs,
        _ => return Labels::empty(),
    };
    if !vs.matchers.or_matchers.is_empty() {
        return Labels::empty();
    }
    let mut b = LabelsBuilder::new();
    let mut seen: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, ParserMatchOp::Equal) && !seen.contains(&m.name.as_str()) {
            b.set(m.name.as_str(), m.value.as_str());
            seen.push(m.name.as_str());
        } else {
            b.del(&m.name);
        }
    }
    b.build()
}

// ---------------------------------------------------------------------------
// Calendar functions, computed like Go's `time` package in UTC.

/// A broken-down UTC time, as Go's `time.Time` accessors report it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    /// 0 = Sunday.
    weekday: u32,
    /// 1-based.
    yday: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

/// Years between the computation epoch (1 March of a year far in the past,
/// a multiple of 400 years before year 0) and year 0. Counting days from
/// there keeps every intermediate value unsigned; like Go, instants outside
/// the representable span wrap rather than fail.
const EPOCH_YEARS: u64 = 292_277_022_400;
/// Seconds from the computation epoch to 1970-01-01T00:00:00Z.
const UNIX_TO_EPOCH_SECS: u64 = {
    // Whole 400-year cycles, then 1 March of year 0 to 1 January of year 1
    // (306 days), then year 1 to 1970.
    let to_year0 = EPOCH_YEARS / 400 * 146_097 + 306;
    let year1_to_1970 = 1969 * 365 + 1969 / 4 - 1969 / 100 + 1969 / 400;
    (to_year0 + year1_to_1970) * 86_400
};

fn civil_from_unix(secs: i64) -> Civil {
    let abs = (secs as u64).wrapping_add(UNIX_TO_EPOCH_SECS);
    let days = abs / 86_400;
    let secs_of_day = abs % 86_400;
    // Years start on 1 March, so leap days come last.
    let d4 = days.wrapping_mul(4).wrapping_add(3);
    let century = d4 / 146_097;
    let c4 = (d4 % 146_097) | 3;
    let cyear = c4 / 1461;
    let ayday = (c4 % 1461) / 4; // 0 = 1 March
    let m5 = 5 * ayday + 461;
    let amonth = m5 / 153; // 3 = March ... 14 = February
    let day = (m5 % 153) / 5 + 1;
    let jan_feb = u64::from(ayday >= 306);
    let leap = cyear % 4 == 0 && (cyear != 0 || century % 4 == 0);
    let year = (century.wrapping_mul(100).wrapping_sub(EPOCH_YEARS) as i64).wrapping_add((cyear + jan_feb) as i64);
    let yday = if jan_feb == 1 { ayday + 60 - 365 } else { ayday + 60 + u64::from(leap) };
    Civil {
        year,
        month: (amonth - 12 * jan_feb) as u32,
        day: day as u32,
        weekday: ((days % 7 + 3) % 7) as u32, // the epoch was a Wednesday
        yday: yday as u32,
        hour: (secs_of_day / 3600) as u32,
        minute: (secs_of_day % 3600 / 60) as u32,
        second: (secs_of_day % 60) as u32,
    }
}

fn is_leap(year: i64) -> bool {
    year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Go's `int64(f)` on amd64: truncation, with NaN and out-of-range values
/// becoming the minimum int64.
fn go_f64_to_i64(f: f64) -> i64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() || !(-TWO_63..TWO_63).contains(&f) { i64::MIN } else { f as i64 }
}

/// RFC 3339 in UTC with second precision, as Go formats it.
fn rfc3339(secs: i64) -> String {
    let c = civil_from_unix(secs);
    let year = if c.year < 0 { format!("-{:04}", c.year.unsigned_abs()) } else { format!("{:04}", c.year) };
    format!("{year}-{:02}-{:02}T{:02}:{:02}:{:02}Z", c.month, c.day, c.hour, c.minute, c.second)
}

/// A calendar function: over its argument's values (seconds since the
/// epoch), or over the evaluation time when called without one.
fn date_fn(args: &mut [Value], ctx: &FnContext<'_>, name: &str, f: impl Fn(&Civil) -> f64) -> Result<Value, EvalError> {
    if args.is_empty() {
        let c = civil_from_unix(ctx.ts / 1000);
        return Ok(Value::Vector(vec![Sample::new(Labels::empty(), ctx.ts, f(&c))]));
    }
    let v = take_vector(args, 0, name)?;
    let ts = ctx.ts;
    Ok(Value::Vector(
        v.into_iter()
            .map(|s| {
                let c = civil_from_unix(go_f64_to_i64(s.v));
                Sample { metric: s.metric, t: ts, v: f(&c), drop_name: true }
            })
            .collect(),
    ))
}

// ---------------------------------------------------------------------------
// Label functions.

/// Prometheus 3 accepts any non-empty UTF-8 label name (Rust strings are
/// always UTF-8).
fn valid_label_name(name: &str) -> bool {
    !name.is_empty()
}

/// Sets `dst` on every sample; writing `__name__` keeps the name for good.
fn relabel(s: &mut Sample, dst: &str, value: String) {
    let mut b = LabelsBuilder::from_labels(&s.metric);
    b.set(dst, value);
    s.metric = b.build();
    if dst == METRIC_NAME {
        s.drop_name = false;
    }
}

fn label_replace(args: &mut [Value], ctx: &mut FnContext<'_>) -> Result<Value, EvalError> {
    const NAME: &str = "label_replace";
    let dst = string_arg(args, 1, ctx, NAME)?;
    let repl = string_arg(args, 2, ctx, NAME)?;
    let src = string_arg(args, 3, ctx, NAME)?;
    let pattern = string_arg(args, 4, ctx, NAME)?;
    if !valid_label_name(&dst) {
        return Err(EvalError::exec(format!("invalid destination label name in label_replace(): {dst}")));
    }
    let compile = || {
        Regex::new(&format!("^(?s:{pattern})$"))
            .map_err(|_| EvalError::exec(format!("invalid regular expression in label_replace(): {pattern}")))
    };
    let mut local = FnMemo::default();
    let memo = ctx.memo.as_deref_mut().unwrap_or(&mut local);
    if !memo.regexes.contains_key(&pattern) {
        memo.regexes.insert(pattern.clone(), compile()?);
    }
    let re = memo.regexes.get(&pattern).cloned().ok_or_else(|| EvalError::exec("regex cache"))?;
    let key = xxhash_rust::xxh3::xxh3_64(format!("{dst}\u{0}{repl}\u{0}{src}\u{0}{pattern}").as_bytes());
    // `$1`/`${name}` expansion by Go's rules, shared with relabeling.
    let names: Vec<Option<String>> = re.capture_names().map(|n| n.map(str::to_string)).collect();
    let template = Template::parse(&repl, &names);
    let mut locs = re.capture_locations();
    let mut v = take_vector(args, 0, NAME)?;
    for s in &mut v {
        s.t = ctx.ts;
        let k = (key, s.metric.identity(), s.drop_name);
        if let Some((_, out, drop_name)) = memo.relabeled.get(&k) {
            s.metric = out.clone();
            s.drop_name = *drop_name;
            continue;
        }
        let input = s.metric.clone();
        let value = s.metric.get(&src);
        if re.captures_read(&mut locs, value).is_some() {
            let res = template.expand(&Groups::Spans(value, &locs)).into_owned();
            relabel(s, &dst, res);
        }
        memo.relabel_outputs.entry(key).or_default().record(&s.metric);
        memo.relabeled.insert(k, (input, s.metric.clone(), s.drop_name));
    }
    memo.relabel_outputs.entry(key).or_default().check_unique(&v)?;
    Ok(Value::Vector(v))
}

fn label_join(args: &mut [Value], ctx: &FnContext<'_>) -> Result<Value, EvalError> {
    const NAME: &str = "label_join";
    let dst = string_arg(args, 1, ctx, NAME)?;
    let sep = string_arg(args, 2, ctx, NAME)?;
    let mut srcs = Vec::new();
    for i in 3..args.len().max(ctx.args.len()) {
        let src = string_arg(args, i, ctx, NAME)?;
        if !valid_label_name(&src) {
            return Err(EvalError::exec(format!("invalid source label name in label_join(): {src}")));
        }
        srcs.push(src);
    }
    if !valid_label_name(&dst) {
        return Err(EvalError::exec(format!("invalid destination label name in label_join(): {dst}")));
    }
    let mut v = take_vector(args, 0, NAME)?;
    for s in &mut v {
        s.t = ctx.ts;
        let joined = srcs.iter().map(|l| s.metric.get(l)).collect::<Vec<_>>().join(&sep);
        relabel(s, &dst, joined);
    }
    check_unique(&v)?;
    Ok(Value::Vector(v))
}

// ---------------------------------------------------------------------------
// Range-vector functions.

/// Runs `f` over every series of the range-vector argument `idx`; series
/// for which `f` has no answer are left out. The result keeps the input's
/// name flag when `keep_name` (first/last_over_time act like an offset) and
/// drops the name otherwise.
fn over_time(
    args: &mut [Value],
    idx: usize,
    ctx: &mut FnContext<'_>,
    name: &str,
    keep_name: bool,
    mut f: impl FnMut(&Series, &mut Annotations) -> Option<f64>,
) -> Result<Value, EvalError> {
    let m = take_matrix(args, idx, name)?;
    let mut out = Vec::with_capacity(m.len());
    for s in m {
        if s.points.is_empty() {
            continue;
        }
        if let Some(v) = f(&s, ctx.annotations) {
            let drop_name = if keep_name { s.drop_name } else { true };
            out.push(Sample { metric: s.metric, t: ctx.ts, v, drop_name });
        }
    }
    Ok(Value::Vector(out))
}

/// `sum_over_time`, or `avg_over_time` when `mean`: from the memo's exact
/// prefix sums where a series allows, else by compensated summation.
fn sum_over_time(args: &mut [Value], ctx: &mut FnContext<'_>, name: &str, mean: bool) -> Result<Value, EvalError> {
    let mut memo = ctx.memo.take();
    let out = over_time(args, 0, ctx, name, false, |s, _| {
        let exact = memo.as_deref_mut().and_then(|m| m.exact_window_sum(&s.points));
        Some(match (exact, mean) {
            (Some(total), true) => total / s.points.len() as f64,
            (Some(total), false) => total,
            (None, true) => avg(&s.points),
            (None, false) => sum(&s.points),
        })
    });
    ctx.memo = memo;
    out
}

/// `rate`, `increase` and `delta`.
fn extrapolated(args: &mut [Value], ctx: &mut FnContext<'_>, name: &str, is_counter: bool, is_rate: bool) -> Result<Value, EvalError> {
    let end = window_end(ctx);
    let range = window_range(ctx);
    let start = end.wrapping_sub(range);
    let mut memo = ctx.memo.take();
    let result = over_time(args, 0, ctx, name, false, |s, annos| {
        // Without a reset in the window the (exact, sequential) reset scan adds nothing.
        let facts = match memo.as_deref_mut() {
            Some(m) if is_counter => m.window_facts(&s.points),
            _ => WindowFacts { has_reset: is_counter, name_checked: None },
        };
        let v = extrapolated_rate(&s.points, start, end, range, is_counter, facts.has_reset, is_rate)?;
        // Annotations are a set: one check per series and query is enough.
        let due = match facts.name_checked {
            Some(done) => !std::mem::replace(done, true),
            None => true,
        };
        if is_counter && due {
            let metric = s.metric.metric_name();
            if !metric.is_empty() && !["_total", "_sum", "_count", "_bucket"].iter().any(|x| metric.ends_with(x)) {
                annos.info(format!(
                    "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {}",
                    go_quote(metric)
                ));
            }
        }
        Some(v)
    });
    ctx.memo = memo;
    result
}

/// The change over the window `(start, end]`, extrapolated towards its
/// edges: all the way when the first/last sample is within 1.1 average
/// sample intervals of an edge, otherwise by half an interval (the series
/// presumably starts or ends inside the window). Counters are corrected for
/// resets and never extrapolated below zero.
/// `scan_resets` may be false for a counter only when the window is known
/// to hold no reset.
fn extrapolated_rate(
    points: &[Point],
    start: i64,
    end: i64,
    range_ms: i64,
    is_counter: bool,
    scan_resets: bool,
    is_rate: bool,
) -> Option<f64> {
    let (first, last) = (points.first()?, points.last()?);
    if points.len() < 2 {
        return None;
    }
    let mut result = last.v - first.v;
    if scan_resets {
        for w in points.windows(2) {
            if w[1].v < w[0].v {
                result += w[0].v;
            }
        }
    }
    let mut to_start = first.t.wrapping_sub(start) as f64 / 1000.0;
    let mut to_end = end.wrapping_sub(last.t) as f64 / 1000.0;
    let sampled = last.t.wrapping_sub(first.t) as f64 / 1000.0;
    let avg_step = sampled / (points.len() - 1) as f64;
    let threshold = avg_step * 1.1;
    if to_start >= threshold {
        to_start = avg_step / 2.0;
    }
    if is_counter && result > 0.0 && first.v >= 0.0 {
        // Where the counter would have been zero, if that is closer.
        let to_zero = sampled * (first.v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg_step / 2.0;
    }
    let mut factor = 1.0;
    if sampled != 0.0 {
        factor = (sampled + to_start + to_end) / sampled;
    }
    if is_rate {
        factor /= ms_to_seconds(range_ms);
    }
    Some(result * factor)
}

/// `irate`/`idelta`: from the last two samples.
fn instant_value(points: &[Point], is_rate: bool) -> Option<f64> {
    let n = points.len();
    if n < 2 {
        return None;
    }
    let (prev, last) = (points[n - 2], points[n - 1]);
    let interval = last.t.wrapping_sub(prev.t);
    if interval == 0 {
        return None;
    }
    // On a counter reset the rate is taken from zero.
    let mut v = last.v;
    if !is_rate || last.v >= prev.v || last.v.is_nan() || prev.v.is_nan() {
        v = last.v - prev.v;
    }
    if is_rate {
        v /= interval as f64 / 1000.0;
    }
    Some(v)
}

/// Least-squares fit of value against seconds relative to `intercept_t`:
/// returns the slope (per second) and the value at `intercept_t`.
fn linear_regression(points: &[Point], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut c_x, mut sum_y, mut c_y) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut c_xy, mut sum_x2, mut c_x2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = points.first().map_or(f64::NAN, |p| p.v);
    let mut const_y = true;
    for (i, p) in points.iter().enumerate() {
        if const_y && i > 0 && p.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = p.t.wrapping_sub(intercept_t) as f64 / 1e3;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(p.v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * p.v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    (slope, sum_y / n - slope * sum_x / n)
}

/// How often the value changed (NaN to NaN is no change).
fn changes(points: &[Point]) -> f64 {
    points.windows(2).filter(|w| w[1].v != w[0].v && !(w[1].v.is_nan() && w[0].v.is_nan())).count() as f64
}

/// How often the value decreased.
fn resets(points: &[Point]) -> f64 {
    points.windows(2).filter(|w| w[1].v < w[0].v).count() as f64
}

/// The mean, summed directly with compensation while the sum stays finite
/// and incrementally once it would overflow.
fn avg(points: &[Point]) -> f64 {
    let Some(first) = points.first() else {
        return f64::NAN;
    };
    let (mut sum, mut count, mut mean, mut c) = (first.v, 1.0, 0.0, 0.0);
    let mut incremental = false;
    for (i, p) in points[1..].iter().enumerate() {
        count = (i + 2) as f64;
        if !incremental {
            let (s, nc) = kahan_inc(p.v, sum, c);
            if !s.is_infinite() {
                (sum, c) = (s, nc);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(p.v / count, q * mean, q * c);
    }
    if incremental { mean + c } else { sum / count + c / count }
}

fn sum(points: &[Point]) -> f64 {
    let (mut s, mut c) = (0.0, 0.0);
    for p in points {
        (s, c) = kahan_inc(p.v, s, c);
    }
    if s.is_infinite() { s } else { s + c }
}

/// The value `better` prefers, starting from the first (NaN loses to anything).
fn pick(points: &[Point], better: impl Fn(f64, f64) -> bool) -> f64 {
    let mut best = points.first().map_or(f64::NAN, |p| p.v);
    for p in points {
        if better(p.v, best) {
            best = p.v;
        }
    }
    best
}

/// Population variance with compensated running mean (Welford).
fn variance(points: &[Point]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in points {
        count += 1.0;
        let delta = p.v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (p.v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

fn invalid_quantile_warning(q: f64) -> String {
    format!("PromQL warning: quantile value should be between 0 and 1, got {}", go_fmt_g(q, None))
}

// ---------------------------------------------------------------------------
// Classic histograms.

const BUCKET_LABEL: &str = "le";
/// Relative differences between neighbouring buckets below this are taken
/// for floating point noise and ignored.
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Bucket {
    upper: f64,
    count: f64,
}

/// Groups `le`-labelled samples into histograms keyed by their other labels
/// (metric name included), warning about samples whose `le` is missing or
/// unparsable.
fn group_buckets(v: Vec<Sample>, annos: &mut Annotations) -> Vec<(Labels, Vec<Bucket>)> {
    let mut groups: Vec<(Labels, Vec<Bucket>)> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for s in v {
        let le = s.metric.get(BUCKET_LABEL);
        let Some(upper) = parse_go_float(le) else {
            let mut msg = format!("PromQL warning: bucket label \"le\" is missing or has a malformed value of {}", go_quote(le));
            let metric = s.metric.metric_name();
            if !metric.is_empty() {
                msg.push_str(&format!(" for metric name {}", go_quote(metric)));
            }
            annos.warn(msg);
            continue;
        };
        let mut b = LabelsBuilder::from_labels(&s.metric);
        b.del(BUCKET_LABEL);
        let key = b.build();
        let bucket = Bucket { upper, count: s.v };
        match index.get(&key) {
            Some(&i) => groups[i].1.push(bucket),
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, vec![bucket]));
            }
        }
    }
    groups
}

fn sort_buckets(buckets: &mut [Bucket]) {
    buckets.sort_by(|a, b| a.upper.total_cmp(&b.upper));
}

/// Merges buckets with the same upper bound (sorted input).
fn coalesce_buckets(buckets: &mut Vec<Bucket>) {
    let mut out: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.iter() {
        match out.last_mut() {
            Some(last) if last.upper == b.upper => last.count += b.count,
            _ => out.push(*b),
        }
    }
    *buckets = out;
}

/// Where monotonicity had to be forced: lowest and highest bucket touched
/// and the largest decrease removed.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Forced {
    min_bucket: f64,
    max_bucket: f64,
    max_diff: f64,
}

/// Ignores tiny relative differences between neighbours, then raises every
/// count that is below its predecessor's.
fn ensure_monotonic(buckets: &mut [Bucket]) -> Option<Forced> {
    let mut forced = None::<Forced>;
    let mut prev = buckets.first()?.count;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.count;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, SMALL_DELTA_TOLERANCE) {
            b.count = prev;
            continue;
        }
        if curr < prev {
            b.count = prev;
            let f = forced.get_or_insert(Forced { min_bucket: f64::INFINITY, max_bucket: f64::NEG_INFINITY, max_diff: 0.0 });
            if b.upper < f.min_bucket {
                f.min_bucket = b.upper;
            }
            if b.upper > f.max_bucket {
                f.max_bucket = b.upper;
            }
            if prev - curr > f.max_diff {
                f.max_diff = prev - curr;
            }
            continue;
        }
        prev = curr;
    }
    forced
}

/// The φ-quantile of a classic histogram, interpolating linearly inside the
/// bucket it falls in (from 0 in the lowest bucket if that bucket's bound is
/// positive). Needs a `+Inf` bucket and at least two buckets.
fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> (f64, Option<Forced>) {
    if q.is_nan() {
        return (f64::NAN, None);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, None);
    }
    if q > 1.0 {
        return (f64::INFINITY, None);
    }
    sort_buckets(buckets);
    if buckets.last().is_none_or(|b| b.upper != f64::INFINITY) {
        return (f64::NAN, None);
    }
    coalesce_buckets(buckets);
    let forced = ensure_monotonic(buckets);
    let n = buckets.len();
    if n < 2 {
        return (f64::NAN, forced);
    }
    let observations = buckets[n - 1].count;
    if observations == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let b = buckets[..n - 1].iter().position(|b| b.count >= rank).unwrap_or(n - 1);
    let v = if b == n - 1 {
        buckets[n - 2].upper
    } else if b == 0 && buckets[0].upper <= 0.0 {
        buckets[0].upper
    } else {
        let mut bucket_start = 0.0;
        let bucket_end = buckets[b].upper;
        let mut count = buckets[b].count;
        if b > 0 {
            bucket_start = buckets[b - 1].upper;
            count -= buckets[b - 1].count;
            rank -= buckets[b - 1].count;
        }
        bucket_start + (bucket_end - bucket_start) * (rank / count)
    };
    (v, forced)
}

/// The fraction of observations between `lower` and `upper` in a classic
/// histogram, interpolating linearly inside buckets.
fn bucket_fraction(lower: f64, upper: f64, buckets: &mut Vec<Bucket>) -> f64 {
    sort_buckets(buckets);
    if buckets.last().is_none_or(|b| b.upper != f64::INFINITY) {
        return f64::NAN;
    }
    coalesce_buckets(buckets);
    let count = buckets.last().map_or(0.0, |b| b.count);
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    // With only positive bounds the lowest bucket starts at 0.
    let mut lower_bound = if buckets[0].upper <= 0.0 { f64::NEG_INFINITY } else { 0.0 };
    for (i, b) in buckets.iter().enumerate() {
        if i > 0 {
            lower_bound = buckets[i - 1].upper;
        }
        let upper_bound = b.upper;
        let interpolate = |v: f64| {
            if lower_bound == f64::NEG_INFINITY {
                b.count
            } else {
                rank + (b.count - rank) * (v - lower_bound) / (upper_bound - lower_bound)
            }
        };
        if !lower_set && lower_bound >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lower_bound >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower_bound < lower && upper_bound > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lower_bound < upper && upper_bound > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = b.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

fn histogram_quantile(args: &mut [Value], ctx: &mut FnContext<'_>) -> Result<Value, EvalError> {
    const NAME: &str = "histogram_quantile";
    let q = scalar_arg(args, 0, NAME)?;
    if q.is_nan() || !(0.0..=1.0).contains(&q) {
        ctx.annotations.warn(invalid_quantile_warning(q));
    }
    let v = take_vector(args, 1, NAME)?;
    let mut out = Vec::new();
    for (metric, mut buckets) in group_buckets(v, ctx.annotations) {
        let (value, forced) = bucket_quantile(q, &mut buckets);
        if let Some(f) = forced {
            add_monotonicity_info(ctx.annotations, metric.metric_name(), ctx.ts, f);
        }
        out.push(Sample { metric, t: ctx.ts, v: value, drop_name: true });
    }
    Ok(Value::Vector(out))
}

fn histogram_fraction(args: &mut [Value], ctx: &mut FnContext<'_>) -> Result<Value, EvalError> {
    const NAME: &str = "histogram_fraction";
    let lower = scalar_arg(args, 0, NAME)?;
    let upper = scalar_arg(args, 1, NAME)?;
    let v = take_vector(args, 2, NAME)?;
    let mut out = Vec::new();
    for (metric, mut buckets) in group_buckets(v, ctx.annotations) {
        let value = bucket_fraction(lower, upper, &mut buckets);
        out.push(Sample { metric, t: ctx.ts, v: value, drop_name: true });
    }
    Ok(Value::Vector(out))
}

/// Adds (or merges into an earlier one, as Prometheus merges them across
/// steps and series of one metric) the info that bucket counts had to be
/// made monotonic.
fn add_monotonicity_info(annos: &mut Annotations, metric: &str, ts: i64, f: Forced) {
    let mut base = String::from(
        "PromQL info: input to histogram_quantile needed to be fixed for monotonicity \
         (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)",
    );
    if !metric.is_empty() {
        base.push_str(&format!(" for metric name {}", go_quote(metric)));
    }
    let marker = format!("{base}, from buckets ");
    let time = rfc3339(ts / 1000);
    let mut info = MonotonicityInfo {
        min_bucket: f.min_bucket,
        max_bucket: f.max_bucket,
        max_diff: f.max_diff,
        samples: 1,
        from: time.clone(),
        to: time,
    };
    let existing = annos.infos.iter().position(|m| m.starts_with(&marker));
    if let Some(prev) = existing.and_then(|i| MonotonicityInfo::parse(&annos.infos[i][marker.len()..])) {
        info.min_bucket = info.min_bucket.min(prev.min_bucket);
        info.max_bucket = info.max_bucket.max(prev.max_bucket);
        info.max_diff = info.max_diff.max(prev.max_diff);
        info.samples += prev.samples;
        info.from = info.from.min(prev.from);
        info.to = info.to.max(prev.to);
    }
    let msg = format!(
        "{marker}{} to {}, with a max diff of {}, over {} samples from {} to {}",
        go_fmt_g(info.min_bucket, None),
        go_fmt_g(info.max_bucket, None),
        go_fmt_g(info.max_diff, Some(2)),
        info.samples,
        info.from,
        info.to
    );
    match existing {
        Some(i) => annos.infos[i] = msg,
        None => annos.info(msg),
    }
}

/// The details of a monotonicity info, as printed after "from buckets ".
struct MonotonicityInfo {
    min_bucket: f64,
    max_bucket: f64,
    max_diff: f64,
    samples: u64,
    from: String,
    to: String,
}

impl MonotonicityInfo {
    fn parse(s: &str) -> Option<Self> {
        let (min_bucket, s) = s.split_once(" to ")?;
        let (max_bucket, s) = s.split_once(", with a max diff of ")?;
        let (max_diff, s) = s.split_once(", over ")?;
        let (samples, s) = s.split_once(" samples from ")?;
        let (from, to) = s.split_once(" to ")?;
        Some(MonotonicityInfo {
            min_bucket: min_bucket.parse().ok()?,
            max_bucket: max_bucket.parse().ok()?,
            max_diff: max_diff.parse().ok()?,
            samples: samples.parse().ok()?,
            from: from.to_string(),
            to: to.to_string(),
        })
    }
}

// ---------------------------------------------------------------------------
// Go-compatible number parsing and formatting.

/// Parses a float the way Go's `strconv.ParseFloat(s, 64)` accepts it:
/// decimal or hexadecimal (`0x1.8p3`) notation, `_` between digits,
/// `inf`/`infinity`/`nan` in any case; values out of range are errors.
fn parse_go_float(s: &str) -> Option<f64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let signed = |v: f64| if neg { -v } else { v };
    if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        return Some(signed(f64::INFINITY));
    }
    if s.eq_ignore_ascii_case("nan") {
        return Some(f64::NAN);
    }
    let cleaned;
    let body = if body.contains('_') {
        if !go_underscores_ok(body) {
            return None;
        }
        cleaned = body.replace('_', "");
        cleaned.as_str()
    } else {
        body
    };
    if body.len() > 2 && (body.starts_with("0x") || body.starts_with("0X")) {
        return parse_hex_float(&body[2..]).map(signed);
    }
    if body.is_empty() || body.starts_with(['+', '-']) || !body.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) {
        return None;
    }
    let v: f64 = body.parse().ok()?;
    if v.is_infinite() {
        return None; // out of range
    }
    Some(signed(v))
}

/// Underscores only between digits (or after a base prefix), as Go allows.
pub(crate) fn go_underscores_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let (mut i, mut saw, mut hex) = (0, b'^', false);
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// Parses the part after `0x`: hex mantissa with optional point, then a
/// mandatory binary exponent `p±N`.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mant, exp) = s.split_once(['p', 'P'])?;
    let exp: i64 = {
        let (neg, digits) = match exp.as_bytes().first() {
            Some(b'-') => (true, &exp[1..]),
            Some(b'+') => (false, &exp[1..]),
            _ => (false, exp),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let e = digits.parse::<i64>().unwrap_or(i64::MAX / 2);
        if neg { -e } else { e }
    };
    let (int_part, frac_part) = mant.split_once('.').unwrap_or((mant, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut m: u64 = 0;
    let mut e2: i64 = 0;
    let mut sticky = false;
    for (i, c) in int_part.chars().chain(frac_part.chars()).enumerate() {
        let d = u64::from(c.to_digit(16)?);
        let in_frac = i >= int_part.len();
        if m >> 56 == 0 {
            m = m * 16 + d;
            if in_frac {
                e2 -= 4;
            }
        } else {
            sticky |= d != 0;
            if !in_frac {
                e2 += 4;
            }
        }
    }
    if sticky {
        m |= 1;
    }
    let mut v = m as f64;
    let mut e = exp.saturating_add(e2).clamp(-5000, 5000);
    while e > 0 {
        let step = e.min(1000);
        v *= 2f64.powi(step as i32);
        e -= step;
    }
    while e < 0 {
        let step = e.max(-1000);
        v *= 2f64.powi(step as i32);
        e -= step;
    }
    if v.is_infinite() { None } else { Some(v) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promql_parser::parser;

    #[test]
    fn reset_memo_finds_resets_only_inside_the_window() {
        use crate::promql::value::Points;
        // Values 1 2 3 0 1 2: one reset, between indexes 2 and 3.
        let data: std::sync::Arc<[Point]> =
            (0..6).map(|i| Point::new(i, [1.0, 2.0, 3.0, 0.0, 1.0, 2.0][i as usize])).collect::<Vec<_>>().into();
        let mut memo = FnMemo::default();
        let has = |m: &mut FnMemo, a, b| m.window_has_reset(&Points::window(data.clone(), a, b));
        assert!(!has(&mut memo, 0, 3), "before the reset");
        assert!(has(&mut memo, 0, 4));
        assert!(has(&mut memo, 2, 4), "the pair 2,3 is inside");
        assert!(!has(&mut memo, 3, 6), "the reset's first point is outside");
        assert!(!has(&mut memo, 4, 6));
        // Exactly the windows where the sequential scan finds a reset.
        for a in 0..6 {
            for b in a..=6 {
                let w = &data[a..b];
                let scan = w.windows(2).any(|p| p[1].v < p[0].v);
                assert_eq!(has(&mut memo, a, b), scan, "window {a}..{b}");
            }
        }
    }

    #[test]
    fn exact_window_sums_equal_compensated_summation_bit_for_bit() {
        use crate::promql::value::Points;
        let series = |vals: Vec<f64>| -> std::sync::Arc<[Point]> {
            vals.into_iter().enumerate().map(|(i, v)| Point::new(i as i64, v)).collect::<Vec<_>>().into()
        };
        // Integers of every size and sign (a deterministic LCG), zeros included.
        let mut x: u64 = 7;
        let mut next = || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let mag = [1.0, 1e3, 1e9, 1e13][(x >> 60) as usize % 4];
            ((x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * mag
        };
        let ints: Vec<f64> = (0..64).map(|_| next().trunc()).chain([0.0, -0.0, 0.0]).collect();
        let data = series(ints);
        let mut memo = FnMemo::default();
        let mut checked = 0;
        for a in 0..data.len() {
            for b in a + 1..=(a + data.len() / 2).min(data.len()) {
                let w = Points::window(data.clone(), a, b);
                let exact = memo.exact_window_sum(&w).expect("integers well under 2^53");
                assert_eq!(exact.to_bits(), sum(&w).to_bits(), "sum of {a}..{b}");
                let mean = exact / w.len() as f64;
                assert_eq!(mean.to_bits(), avg(&w).to_bits(), "avg of {a}..{b}");
                checked += 1;
            }
        }
        assert!(checked > 1000);
        // Fractions, non-finite values and magnitudes past 2^53 fall back.
        for vals in
            [vec![1.0, 2.5, 3.0, 4.0], vec![1.0, f64::NAN, 3.0, 4.0], vec![1.0, f64::INFINITY, 3.0, 4.0], vec![4e15, 4e15, 4e15, 1.0]]
        {
            assert_eq!(memo.exact_window_sum(&Points::window(series(vals), 0, 2)), None);
        }
        // A window as long as its data (a subquery's) is summed directly.
        assert_eq!(memo.exact_window_sum(&Points::window(series(vec![1.0, 2.0]), 0, 2)), None);
    }

    const MIN: i64 = 60_000;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    /// Points every `step` ms from 0, like a test script's `load`; NaN in
    /// `values` is a sample, `None` a gap.
    fn load(step: i64, values: &[Option<f64>]) -> Vec<Point> {
        values.iter().enumerate().filter_map(|(i, v)| v.map(|v| Point::new(i as i64 * step, v))).collect()
    }

    /// `start + k*inc` for k in 0..=n, like `start+incxn`.
    fn ramp(start: f64, inc: f64, n: usize) -> Vec<Option<f64>> {
        (0..=n).map(|k| Some(start + inc * k as f64)).collect()
    }

    fn some(values: &[f64]) -> Vec<Option<f64>> {
        values.iter().copied().map(Some).collect()
    }

    /// The range-vector window `(end - range, end]` of `points`.
    fn cut(points: &[Point], end: i64, range: i64) -> Vec<Point> {
        points.iter().copied().filter(|p| p.t > end - range && p.t <= end).collect()
    }

    fn matrix(series: Vec<(Labels, Vec<Point>)>) -> Value {
        Value::Matrix(
            series
                .into_iter()
                .filter(|(_, p)| !p.is_empty())
                .map(|(metric, points)| Series { metric, points: points.into(), drop_name: false })
                .collect(),
        )
    }

    fn vector(samples: Vec<(Labels, f64)>) -> Value {
        Value::Vector(samples.into_iter().map(|(m, v)| Sample::new(m, 0, v)).collect())
    }

    fn scalar(v: f64) -> Value {
        Value::Scalar { t: 0, v }
    }

    fn string(v: &str) -> Value {
        Value::String { t: 0, v: v.to_string() }
    }

    /// Calls the function of `query` (a call expression) at `ts` with the
    /// given argument values, the way the engine would.
    fn run(query: &str, ts: i64, args: Vec<Value>) -> (Result<Value, EvalError>, Annotations) {
        let expr = parser::parse(query).expect("query parses");
        let Expr::Call(c) = unwrap_parens(&expr) else {
            panic!("not a call: {query}");
        };
        let range_ms = c
            .args
            .args
            .iter()
            .map(|a| match unwrap_parens(a) {
                Expr::MatrixSelector(m) => duration_ms(&m.range),
                Expr::Subquery(s) => duration_ms(&s.range),
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        let mut annotations = Annotations::default();
        let mut ctx = FnContext { ts, range_ms, args: &c.args.args, annotations: &mut annotations, memo: None };
        let res = call(c.func.name, args, &mut ctx);
        (res, annotations)
    }

    /// The output as (labels, value, drop_name), sorted by labels.
    fn samples(res: Result<Value, EvalError>) -> Vec<(Labels, f64, bool)> {
        match res {
            Ok(Value::Vector(v)) => {
                let mut out: Vec<_> = v.into_iter().map(|s| (s.metric, s.v, s.drop_name)).collect();
                out.sort_by(|a, b| a.0.cmp(&b.0));
                out
            }
            other => panic!("expected a vector, got {other:?}"),
        }
    }

    fn values(res: Result<Value, EvalError>) -> Vec<f64> {
        samples(res).into_iter().map(|s| s.1).collect()
    }

    fn one(res: Result<Value, EvalError>) -> f64 {
        let v = values(res);
        assert_eq!(v.len(), 1, "expected one sample, got {v:?}");
        v[0]
    }

    fn close(a: f64, b: f64) -> bool {
        (a.is_nan() && b.is_nan()) || a == b || ((a - b) / b).abs() < 1e-12
    }

    fn assert_close(got: f64, want: f64) {
        assert!(close(got, want), "got {got}, want {want}");
    }

    fn exec_err(res: Result<Value, EvalError>) -> String {
        match res {
            Err(EvalError::Execution(m)) => m,
            other => panic!("expected an execution error, got {other:?}"),
        }
    }

    // --- rate, increase, delta ------------------------------------------

    #[test]
    fn increase_extrapolates_to_the_window_and_stops_at_zero() {
        let step = 5 * MIN;
        let mut bar = ramp(0.0, 18.0, 5);
        bar.extend(ramp(0.0, 18.0, 5));
        let data = [
            ("/foo", load(step, &ramp(0.0, 10.0, 10))),
            ("/bar", load(step, &bar)),
            ("/dings", load(step, &ramp(10.0, 10.0, 10))),
            ("/bumms", load(step, &ramp(1.0, 10.0, 10))),
        ];
        for (range, want) in [("50m", [100.0, 160.0, 100.0, 100.0]), ("100m", [100.0, 162.0, 105.0, 101.0])] {
            let r = parser::parse(&format!("x[{range}]")).map(|_| ()).ok();
            assert!(r.is_some());
            let range_ms = if range == "50m" { 50 * MIN } else { 100 * MIN };
            for ((path, pts), want) in data.iter().zip(want) {
                let m = matrix(vec![(labels(&[("__name__", "http_requests_total"), ("path", path)]), cut(pts, 50 * MIN, range_ms))]);
                let (res, annos) = run(&format!("increase(http_requests_total[{range}])"), 50 * MIN, vec![m]);
                let out = samples(res);
                assert_close(out[0].1, want);
                assert!(out[0].2, "increase drops the metric name");
                assert!(annos.infos.is_empty(), "{annos:?}");
            }
        }
    }

    #[test]
    fn increase_adds_back_counter_resets() {
        let pts = load(5 * MIN, &some(&[0.0, 1.0, 2.0, 3.0, 2.0, 3.0, 4.0]));
        let m = matrix(vec![(labels(&[("__name__", "c_total")]), cut(&pts, 30 * MIN, 30 * MIN))]);
        assert_close(one(run("increase(c_total[30m])", 30 * MIN, vec![m]).0), 7.0);
    }

    #[test]
    fn rate_limits_left_extrapolation_by_the_zero_point() {
        let step = 4 * MIN;
        let want_10m = [0.5, 0.55, 0.6, 0.6, 0.6, 0.6];
        for (k, want) in want_10m.iter().enumerate() {
            let pts = load(step, &ramp(60.0 * k as f64, 240.0, 10));
            let m = matrix(vec![(labels(&[("__name__", "z_total")]), cut(&pts, 10 * MIN, 20 * MIN))]);
            assert_close(one(run("rate(z_total[20m])", 10 * MIN, vec![m]).0), *want);
            let m = matrix(vec![(labels(&[("__name__", "z_total")]), cut(&pts, 50 * MIN, 20 * MIN))]);
            assert_close(one(run("rate(z_total[20m])", 50 * MIN, vec![m]).0), 0.6);
        }
    }

    #[test]
    fn rate_handles_resets_and_short_windows() {
        let mut middle = ramp(0.0, 27.0, 4);
        middle.extend(ramp(0.0, 27.0, 5));
        let pts = load(5 * MIN, &middle);
        let m = matrix(vec![(labels(&[("__name__", "m_total")]), cut(&pts, 50 * MIN, 50 * MIN))]);
        assert_close(one(run("rate(m_total[50m])", 50 * MIN, vec![m]).0), 0.08);

        let mut end = ramp(0.0, 10.0, 9);
        end.extend(some(&[0.0, 10.0]));
        let pts = load(5 * MIN, &end);
        // One sample in the window: nothing.
        let m = matrix(vec![(labels(&[("__name__", "e_total")]), cut(&pts, 50 * MIN, 5 * MIN))]);
        assert!(values(run("rate(e_total[5m])", 50 * MIN, vec![m]).0).is_empty());
        let m = matrix(vec![(labels(&[("__name__", "e_total")]), cut(&pts, 50 * MIN, 6 * MIN))]);
        assert_close(one(run("rate(e_total[6m])", 50 * MIN, vec![m]).0), 0.0);
    }

    #[test]
    fn rate_window_follows_offset_and_at() {
        let pts = load(5 * MIN, &ramp(0.0, 10.0, 10));
        let m = || matrix(vec![(labels(&[("__name__", "o_total"), ("x", "a")]), cut(&pts, 45 * MIN, 10 * MIN))]);
        let (res, _) = run("rate(o_total[10m] offset 5m)", 50 * MIN, vec![m()]);
        assert_close(one(res), 0.03333333333333333);
        // The same window through `@`, evaluated at some other time.
        let (res, _) = run("rate(o_total[10m] @ 2700)", 0, vec![m()]);
        assert_close(one(res), 0.03333333333333333);
        let (res, _) = run("rate((o_total[10m] @ 3000 offset 5m))", 7 * MIN, vec![m()]);
        assert_close(one(res), 0.03333333333333333);
    }

    #[test]
    fn rate_flags_names_that_do_not_look_like_counters() {
        let pts = load(MIN, &ramp(0.0, 1.0, 5));
        let m = matrix(vec![(labels(&[("__name__", "requests")]), cut(&pts, 5 * MIN, 5 * MIN))]);
        let (_, annos) = run("rate(requests[5m])", 5 * MIN, vec![m]);
        assert_eq!(
            annos.infos,
            ["PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"requests\""]
        );
        let m = matrix(vec![(labels(&[("__name__", "requests")]), cut(&pts, 5 * MIN, 5 * MIN))]);
        let (_, annos) = run("delta(requests[5m])", 5 * MIN, vec![m]);
        assert!(annos.infos.is_empty());
    }

    #[test]
    fn delta_is_not_corrected_for_resets() {
        let pts = load(5 * MIN, &some(&[200.0, 150.0, 100.0, 50.0, 0.0]));
        let m = matrix(vec![(labels(&[("path", "/bar")]), cut(&pts, 20 * MIN, 20 * MIN))]);
        assert_close(one(run("delta(x[20m])", 20 * MIN, vec![m]).0), -200.0);
    }

    #[test]
    fn irate_and_idelta_use_the_last_two_samples() {
        let pts = load(5 * MIN, &some(&[0.0, 50.0, 100.0, 50.0]));
        let m = || matrix(vec![(labels(&[("path", "/bar")]), cut(&pts, 15 * MIN, 20 * MIN))]);
        assert_close(one(run("idelta(x[20m])", 15 * MIN, vec![m()]).0), -50.0);
        // A reset: the rate counts from zero.
        assert_close(one(run("irate(x[20m])", 15 * MIN, vec![m()]).0), 50.0 / 300.0);

        let nan = load(5 * MIN, &some(&[1.0, f64::NAN, f64::NAN, 5.0, 11.0]));
        let at = |ts: i64, f: &str| {
            let m = matrix(vec![(Labels::empty(), cut(&nan, ts, 15 * MIN + 1000))]);
            values(run(&format!("{f}(x[15m1s])"), ts, vec![m]).0)
        };
        assert!(at(0, "irate").is_empty());
        assert!(at(5 * MIN, "irate")[0].is_nan());
        assert!(at(15 * MIN, "irate")[0].is_nan());
        assert_close(at(20 * MIN, "irate")[0], 0.02);
        assert_close(at(20 * MIN, "idelta")[0], 6.0);
    }

    // --- deriv, predict_linear ------------------------------------------

    fn reset_middle() -> Vec<Point> {
        let mut v = ramp(0.0, 10.0, 4);
        v.extend(ramp(0.0, 10.0, 5));
        load(5 * MIN, &v)
    }

    #[test]
    fn deriv_is_the_least_squares_slope() {
        let pts = reset_middle();
        let m = matrix(vec![(Labels::empty(), cut(&pts, 50 * MIN, 100 * MIN))]);
        assert_close(one(run("deriv(x[100m])", 50 * MIN, vec![m]).0), 0.010606060606060607);

        let pts = load(5 * MIN, &ramp(0.0, 80.0, 10));
        let m = matrix(vec![(Labels::empty(), cut(&pts, 50 * MIN, 50 * MIN))]);
        assert_close(one(run("deriv(x[50m])", 50 * MIN, vec![m]).0), 0.26666666666666666);

        let mut inf = some(&[f64::NEG_INFINITY]);
        inf.extend(ramp(0.0, 80.0, 10));
        inf.push(Some(f64::INFINITY));
        let pts = load(5 * MIN, &inf);
        let m = matrix(vec![(Labels::empty(), cut(&pts, 100 * MIN, 100 * MIN))]);
        assert!(one(run("deriv(x[100m])", 100 * MIN, vec![m]).0).is_nan());

        // A single point has no slope.
        let m = matrix(vec![(Labels::empty(), vec![Point::new(0, 1.0)])]);
        assert!(values(run("deriv(x[1m])", 0, vec![m]).0).is_empty());
    }

    #[test]
    fn predict_linear_extrapolates_from_the_evaluation_time() {
        let pts = reset_middle();
        let m = matrix(vec![(Labels::empty(), cut(&pts, 50 * MIN, 50 * MIN))]);
        let (res, annos) = run("predict_linear(x[50m], 3600)", 50 * MIN, vec![m, scalar(3600.0)]);
        assert_close(one(res), 70.0);
        assert!(annos.infos.is_empty() && annos.warnings.is_empty());
        // `@ 3000` fixes the window, not the point the prediction starts from.
        for (ts, want) in [(50 * MIN, 76.81818181818181), (10 * MIN, 51.36363636363637), (70 * MIN, 89.54545454545455)] {
            let m = matrix(vec![(Labels::empty(), cut(&pts, 50 * MIN, 55 * MIN))]);
            let (res, _) = run("predict_linear(x[55m] @ 3000, 3600)", ts, vec![m, scalar(3600.0)]);
            assert_close(one(res), want);
        }
        // Constant input: flat prediction; infinite constant input: NaN.
        let flat = matrix(vec![(Labels::empty(), vec![Point::new(0, 3.0), Point::new(MIN, 3.0)])]);
        assert_close(one(run("predict_linear(x[5m], 60)", MIN, vec![flat, scalar(60.0)]).0), 3.0);
        let inf = matrix(vec![(Labels::empty(), vec![Point::new(0, f64::INFINITY), Point::new(MIN, f64::INFINITY)])]);
        assert!(one(run("predict_linear(x[5m], 60)", MIN, vec![inf, scalar(60.0)]).0).is_nan());
    }

    // --- changes, resets --------------------------------------------------

    #[test]
    fn changes_and_resets_count_transitions() {
        let foo = load(5 * MIN, &some(&[1.0, 2.0, 3.0, 0.0, 1.0, 0.0, 0.0, 1.0, 2.0, 0.0]));
        let m = |r| matrix(vec![(labels(&[("path", "/foo")]), cut(&foo, 50 * MIN, r))]);
        assert_close(one(run("changes(x[50m])", 50 * MIN, vec![m(50 * MIN)]).0), 7.0);
        assert_close(one(run("resets(x[50m])", 50 * MIN, vec![m(50 * MIN)]).0), 3.0);
        assert_close(one(run("resets(x[20m])", 50 * MIN, vec![m(20 * MIN)]).0), 1.0);
        assert!(values(run("resets(x[5m])", 50 * MIN, vec![m(5 * MIN)]).0).is_empty());

        let nan = load(5 * MIN, &some(&[0.0, f64::NAN, 0.0]));
        let all_nan = load(5 * MIN, &some(&[f64::NAN, f64::NAN, f64::NAN]));
        let m = matrix(vec![(labels(&[("a", "c")]), nan), (labels(&[("a", "b")]), all_nan)]);
        let out = samples(run("changes(x[20m])", 15 * MIN, vec![m]).0);
        assert_eq!(out.iter().map(|s| s.1).collect::<Vec<_>>(), [0.0, 2.0]);
    }

    // --- *_over_time --------------------------------------------------------

    fn over(f: &str, pts: Vec<Point>) -> f64 {
        let m = matrix(vec![(labels(&[("__name__", "m")]), pts)]);
        let out = samples(run(&format!("{f}(m[1m])"), MIN, vec![m]).0);
        assert_eq!(out.len(), 1);
        out[0].1
    }

    fn pts(values: &[f64]) -> Vec<Point> {
        load(10_000, &some(values))
    }

    #[test]
    #[allow(clippy::excessive_precision)] // the value Prometheus' own tests use
    fn avg_and_sum_over_time_survive_extreme_values() {
        let big = 9.988465674311579e+307;
        assert_close(over("avg_over_time", pts(&[big, big])), big);
        assert_eq!(over("sum_over_time", pts(&[big, big])), f64::INFINITY);
        assert_close(over("avg_over_time", pts(&[-big, -big, -big])), -big);
        assert_eq!(over("avg_over_time", pts(&[-big, big])), 0.0);
        assert_eq!(over("sum_over_time", pts(&[1.0, 1e100, 1.0, -1e100])), 2.0);
        assert_eq!(over("avg_over_time", pts(&[1.0, 1e100, 1.0, -1e100])), 0.5);
        assert_eq!(over("avg_over_time", pts(&[f64::INFINITY, 0.0, f64::INFINITY])), f64::INFINITY);
        assert!(over("avg_over_time", pts(&[1.0, 2.0, 3.0, f64::INFINITY, f64::NEG_INFINITY])).is_nan());
        assert!(over("avg_over_time", pts(&[1.0, 2.0, 3.0, f64::NAN])).is_nan());
        assert_close(over("avg_over_time", pts(&[1e10, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6])), 1.6666666666666675e+09);
        assert_close(
            over("avg_over_time", pts(&[-1.78264e215, 0.76342771, 1.9592258, 2.258e220, 7.69805412, -458.90154])),
            3.76330362266667e+219,
        );
        let m11 = [
            -2.258e220,
            -1.78264e219,
            0.76342771,
            1.9592258,
            2.3757689e217,
            -2.3757689e217,
            2.258e220,
            7.69805412,
            1.78264e219,
            -458.90154,
        ];
        assert_eq!(over("avg_over_time", pts(&m11)), 0.0);
        for n in [10, 11, 12, 13] {
            assert_eq!(over("avg_over_time", pts(&vec![52.0; n])), 52.0);
        }
        let ones = load(1, &vec![Some(1.0); 1003]);
        assert_eq!(over("sum_over_time", ones), 1003.0);
    }

    #[test]
    fn stddev_and_stdvar_over_time() {
        assert_close(over("stdvar_over_time", pts(&[0.0, 8.0, 8.0, 2.0, 3.0])), 10.56);
        assert!((over("stddev_over_time", pts(&[0.0, 8.0, 8.0, 2.0, 3.0])) - 3.249615).abs() < 1e-6);
        let c = 1.5990505637277868;
        assert_eq!(over("stdvar_over_time", pts(&[c, c, c])), 0.0);
        assert_eq!(over("stddev_over_time", pts(&[c, c, c])), 0.0);
    }

    #[test]
    fn min_max_first_last_count_present_over_time() {
        let cases: [(&[f64], f64, f64); 5] = [
            (&[2.0, 0.0, 3.0], 0.0, 3.0),
            (&[2.0, 0.0, f64::NAN], 0.0, 2.0),
            (&[2.0, f64::NAN, 1.0], 1.0, 2.0),
            (&[f64::NAN, 0.0, 1.0], 0.0, 1.0),
            (&[f64::NAN, f64::NAN, f64::NAN], f64::NAN, f64::NAN),
        ];
        for (v, min, max) in cases {
            assert_close(over("min_over_time", pts(v)), min);
            assert_close(over("max_over_time", pts(v)), max);
            assert_eq!(over("count_over_time", pts(v)), 3.0);
            assert_eq!(over("present_over_time", pts(v)), 1.0);
            assert_close(over("first_over_time", pts(v)), v[0]);
            assert_close(over("last_over_time", pts(v)), v[2]);
        }
        // first/last_over_time keep the name (and an incoming drop flag).
        let m = Value::Matrix(vec![
            Series { metric: labels(&[("__name__", "a")]), points: pts(&[1.0]).into(), drop_name: false },
            Series { metric: labels(&[("__name__", "b")]), points: pts(&[1.0]).into(), drop_name: true },
        ]);
        let out = samples(run("last_over_time(m[1m])", MIN, vec![m.clone()]).0);
        assert_eq!(out.iter().map(|s| s.2).collect::<Vec<_>>(), [false, true]);
        let out = samples(run("max_over_time(m[1m])", MIN, vec![m]).0);
        assert_eq!(out.iter().map(|s| s.2).collect::<Vec<_>>(), [true, true]);
    }

    #[test]
    fn quantile_over_time_interpolates_and_warns() {
        let data = || {
            matrix(vec![
                (labels(&[("test", "two")]), pts(&[0.0, 1.0])),
                (labels(&[("test", "three")]), pts(&[0.0, 1.0, 2.0])),
                (labels(&[("test", "uneven")]), pts(&[0.0, 1.0, 4.0])),
            ])
        };
        // Sorted by label: three, two, uneven.
        for (q, want) in [
            (0.0, [0.0, 0.0, 0.0]),
            (0.5, [1.0, 0.5, 1.0]),
            (0.75, [1.5, 0.75, 2.5]),
            (0.8, [1.6, 0.8, 2.8]),
            (1.0, [2.0, 1.0, 4.0]),
            (-1.0, [f64::NEG_INFINITY; 3]),
            (2.0, [f64::INFINITY; 3]),
        ] {
            let (res, annos) = run("quantile_over_time(0.5, data[2m])", MIN, vec![scalar(q), data()]);
            let got = values(res);
            for (g, w) in got.iter().zip(want) {
                assert_close(*g, w);
            }
            assert_eq!(annos.warnings.is_empty(), (0.0..=1.0).contains(&q), "q={q}: {annos:?}");
        }
        let (_, annos) = run("quantile_over_time(2, data[2m])", MIN, vec![scalar(2.0), data()]);
        assert_eq!(annos.warnings, ["PromQL warning: quantile value should be between 0 and 1, got 2"]);
        let (res, _) = run("quantile_over_time(NaN, data[2m])", MIN, vec![scalar(f64::NAN), data()]);
        assert!(values(res).iter().all(|v| v.is_nan()));
        // NaN samples sort first.
        let m = matrix(vec![(Labels::empty(), pts(&[f64::NAN, 5.0, 1.0]))]);
        assert_close(one(run("quantile_over_time(1, m[1m])", MIN, vec![scalar(1.0), m]).0), 5.0);
    }

    // --- histogram_quantile, histogram_fraction -----------------------------

    fn buckets(name: &str, extra: &[(&str, &str)], b: &[(&str, f64)]) -> Vec<(Labels, f64)> {
        b.iter()
            .map(|(le, v)| {
                let mut pairs = vec![("__name__", name), ("le", *le)];
                pairs.extend_from_slice(extra);
                (labels(&pairs), *v)
            })
            .collect()
    }

    fn testhistogram() -> Value {
        let mut v =
            buckets("testhistogram_bucket", &[("start", "positive")], &[("0.1", 50.0), (".2", 70.0), ("1e0", 110.0), ("+Inf", 120.0)]);
        v.extend(buckets(
            "testhistogram_bucket",
            &[("start", "negative")],
            &[("-.2", 10.0), ("-0.1", 20.0), ("0.3", 20.0), ("+Inf", 30.0)],
        ));
        vector(v)
    }

    fn hq(q: f64, v: Value) -> (Vec<(Labels, f64, bool)>, Annotations) {
        let (res, annos) = run("histogram_quantile(0.5, x)", 50 * MIN, vec![scalar(q), v]);
        (samples(res), annos)
    }

    #[test]
    fn histogram_quantile_interpolates_within_buckets() {
        // Sorted by label: start="negative" first.
        for (q, want) in [(0.0, [-0.2, 0.0]), (0.2, [-0.2, 0.048]), (0.5, [-0.15, 0.15]), (0.8, [0.3, 0.72]), (1.0, [0.3, 1.0])] {
            let (out, annos) = hq(q, testhistogram());
            assert_eq!(out.len(), 2);
            assert_eq!(out[0].0, labels(&[("__name__", "testhistogram_bucket"), ("start", "negative")]));
            assert!(out.iter().all(|s| s.2), "histogram_quantile drops the name");
            assert_close(out[0].1, want[0]);
            assert_close(out[1].1, want[1]);
            assert!(annos.warnings.is_empty() && annos.infos.is_empty(), "{annos:?}");
        }
    }

    #[test]
    fn histogram_quantile_special_cases() {
        for (q, want) in [(-0.1, f64::NEG_INFINITY), (1.01, f64::INFINITY), (f64::NAN, f64::NAN)] {
            let (out, annos) = hq(q, testhistogram());
            assert!(out.iter().all(|s| close(s.1, want)), "{out:?}");
            assert_eq!(annos.warnings.len(), 1);
        }
        let (out, annos) = hq(f64::NAN, vector(vec![]));
        assert!(out.is_empty());
        assert_eq!(annos.warnings, ["PromQL warning: quantile value should be between 0 and 1, got NaN"]);

        // No +Inf bucket, a single bucket, no observations: NaN.
        let no_inf = vector(buckets("h", &[], &[("1", 1.0), ("2", 2.0)]));
        assert!(hq(0.5, no_inf).0[0].1.is_nan());
        let single = vector(buckets("h", &[], &[("+Inf", 2.0)]));
        assert!(hq(0.5, single).0[0].1.is_nan());
        let empty = vector(buckets("h", &[], &[("0.1", 0.0), ("0.2", 0.0), ("+Inf", 0.0)]));
        assert!(hq(0.2, empty).0[0].1.is_nan());
        // Different spellings of one bound are merged.
        let mixed = vector(buckets("mixed_bucket", &[], &[("0.1", 10.0), ("0.2", 10.0), ("2e-1", 10.0), ("2.0e-1", 10.0), ("+Inf", 40.0)]));
        assert_close(hq(0.5, mixed.clone()).0[0].1, 0.15);
        assert_close(hq(0.75, mixed).0[0].1, 0.2);
        let infs = vector(buckets("mixed_bucket", &[], &[("+inf", 0.0), ("+Inf", 0.0)]));
        assert!(hq(0.5, infs).0[0].1.is_nan());
        // In the highest bucket: the second highest bound.
        let top = vector(buckets("h", &[], &[("1", 1.0), ("2", 2.0), ("+Inf", 10.0)]));
        assert_close(hq(0.9, top).0[0].1, 2.0);
    }

    #[test]
    fn histogram_quantile_warns_about_bad_le_and_groups_by_name() {
        let (out, annos) = hq(0.8, vector(vec![(labels(&[("__name__", "series"), ("ale", "0.1")]), 2.0)]));
        assert!(out.is_empty());
        assert_eq!(
            annos.warnings,
            ["PromQL warning: bucket label \"le\" is missing or has a malformed value of \"\" for metric name \"series\""]
        );
        let (_, annos) = hq(0.8, vector(vec![(labels(&[("__name__", "series"), ("le", "Hello World")]), 2.0)]));
        assert_eq!(
            annos.warnings,
            ["PromQL warning: bucket label \"le\" is missing or has a malformed value of \"Hello World\" for metric name \"series\""]
        );
        // Same labels but different names: two histograms, both flagged to
        // lose their name (the engine then reports the collision).
        let mut v = buckets("a_bucket", &[("job", "x")], &[("1", 1.0), ("+Inf", 2.0)]);
        v.extend(buckets("b_bucket", &[("job", "x")], &[("1", 1.0), ("+Inf", 2.0)]));
        let (out, _) = hq(0.5, vector(v));
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|s| s.2 && !s.0.has("le")));
    }

    #[test]
    fn histogram_quantile_forces_monotonicity_with_an_info() {
        let nonmonotonic = || {
            vector(buckets(
                "nonmonotonic_bucket",
                &[],
                &[("0.1", 20.0), ("1", 10.0), ("10", 50.0), ("100", 40.0), ("1000", 90.0), ("+Inf", 80.0)],
            ))
        };
        for (q, want) in [(0.01, 0.0045), (0.5, 8.5), (0.99, 979.75)] {
            let (out, annos) = hq(q, nonmonotonic());
            assert_close(out[0].1, want);
            assert_eq!(
                annos.infos,
                ["PromQL info: input to histogram_quantile needed to be fixed for monotonicity \
                  (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) \
                  for metric name \"nonmonotonic_bucket\", from buckets 1 to +Inf, with a max diff of 10, \
                  over 1 samples from 1970-01-01T00:50:00Z to 1970-01-01T00:50:00Z"
                    .replace("  ", " ")]
            );
            assert!(annos.warnings.is_empty());
        }
        // Later steps merge into the same info.
        let mut annos = Annotations::default();
        for ts in [50 * MIN, 55 * MIN] {
            let expr = parser::parse("histogram_quantile(0.5, x)").expect("parses");
            let Expr::Call(c) = &expr else { unreachable!() };
            let mut ctx = FnContext { ts, range_ms: 0, args: &c.args.args, annotations: &mut annos, memo: None };
            call("histogram_quantile", vec![scalar(0.5), nonmonotonic()], &mut ctx).expect("ok");
        }
        assert_eq!(annos.infos.len(), 1);
        assert!(annos.infos[0].ends_with("over 2 samples from 1970-01-01T00:50:00Z to 1970-01-01T00:55:00Z"), "{}", annos.infos[0]);
        // Tiny relative differences are silently ignored.
        let noisy = vector(buckets("h", &[], &[("1", 10.0), ("2", 10.0 - 1e-14), ("+Inf", 10.0)]));
        let (_, annos) = hq(0.5, noisy);
        assert!(annos.infos.is_empty());
    }

    #[test]
    fn histogram_fraction_over_classic_buckets() {
        let h2 = || vector(buckets("h2", &[], &[("0", 0.0), ("2", 10.0), ("4", 20.0), ("6", 30.0), ("+Inf", 30.0)]));
        let frac = |lo: f64, hi: f64, v: Value| {
            let (res, annos) = run("histogram_fraction(0, 1, x)", 0, vec![scalar(lo), scalar(hi), v]);
            assert!(annos.warnings.is_empty());
            one(res)
        };
        assert_close(frac(0.0, 4.0, h2()), 2.0 / 3.0);
        assert_close(frac(0.0, 6.0, h2()), 1.0);
        assert_close(frac(0.0, 3.5, h2()), 0.5833333333333334);
        assert_close(frac(3.0, 2.0, h2()), 0.0);
        assert!(frac(f64::NAN, 1.0, h2()).is_nan());
        assert_close(frac(f64::NEG_INFINITY, f64::INFINITY, h2()), 1.0);
        let neg = || vector(buckets("n", &[], &[("-3", 10.0), ("-2", 12.0), ("-1", 15.0), ("+Inf", 100.0)]));
        // The lowest bucket reaches down to -Inf: it counts whole or not at all.
        assert_close(frac(-4.0, -2.0, neg()), 0.02);
        assert_close(frac(f64::NEG_INFINITY, -1.5, neg()), 0.135);
        let pos = vector(buckets("p", &[], &[("1", 1.0), ("2", 3.0), ("3", 6.0), ("+Inf", 100.0)]));
        assert_close(frac(0.0, 1.5, pos), 0.02);
    }

    #[test]
    fn native_histogram_functions_fail_explicitly() {
        let (res, _) = run("histogram_count(x)", 0, vec![vector(vec![])]);
        assert!(exec_err(res).contains("native histograms are not supported"));
        let (res, _) = run("sort_by_label(x, \"a\")", 0, vec![vector(vec![]), string("a")]);
        assert_eq!(exec_err(res), "function \"sort_by_label\" is not enabled");
    }

    // --- label_replace, label_join -----------------------------------------

    fn testmetric() -> Value {
        vector(vec![
            (labels(&[("__name__", "testmetric"), ("src", "source-value-10"), ("dst", "original")]), 0.0),
            (labels(&[("__name__", "testmetric"), ("src", "source-value-20"), ("dst", "original")]), 1.0),
        ])
    }

    fn replace(dst: &str, repl: &str, src: &str, re: &str) -> Result<Value, EvalError> {
        let q = format!("label_replace(testmetric, {dst:?}, {repl:?}, {src:?}, {re:?})");
        let args = vec![testmetric(), string(dst), string(repl), string(src), string(re)];
        run(&q, 0, args).0
    }

    fn dsts(res: Result<Value, EvalError>) -> Vec<String> {
        samples(res).into_iter().map(|s| s.0.get("dst").to_string()).collect()
    }

    #[test]
    fn label_replace_matches_whole_values() {
        assert_eq!(
            dsts(replace("dst", "destination-value-$1", "src", "source-value-(.*)")),
            ["destination-value-10", "destination-value-20"]
        );
        assert_eq!(dsts(replace("dst", "destination-value-$1", "src", "value-(.*)")), ["original"; 2]);
        assert_eq!(dsts(replace("dst", "$1-value-$2", "src", "(.*)-value-(.*)")), ["source-value-10", "source-value-20"]);
        assert_eq!(dsts(replace("dst", "value-$1", "nonexistent-src", "source-value-(.*)")), ["original"; 2]);
        assert_eq!(dsts(replace("dst", "value-$1", "nonexistent-src", "(.*)")), ["value-"; 2]);
        assert_eq!(dsts(replace("dst", "", "dst", ".*")), [""; 2]);
        let out = samples(replace("dst", "x", "src", "(.*)"));
        assert!(out.iter().all(|s| !s.2 && s.0.metric_name() == "testmetric"));
    }

    #[test]
    fn label_replace_errors_are_worded_like_prometheus() {
        assert_eq!(exec_err(replace("dst", "value-$1", "src", "(.*")), "invalid regular expression in label_replace(): (.*");
        assert_eq!(exec_err(replace("", "", "src", "(.*)")), "invalid destination label name in label_replace(): ");
        assert_eq!(exec_err(replace("src", "", "", "")), "vector cannot contain metrics with the same labelset");
    }

    #[test]
    fn label_replace_and_join_handle_the_metric_name() {
        let input =
            || Value::Vector(vec![Sample { metric: labels(&[("__name__", "metric_total"), ("env", "1")]), t: 0, v: 0.2, drop_name: true }]);
        let q = r#"label_replace(x, "my_name", "rate_$1", "__name__", "(.+)")"#;
        let args = vec![input(), string("my_name"), string("rate_$1"), string("__name__"), string("(.+)")];
        let out = samples(run(q, 0, args).0);
        assert_eq!(out[0].0.get("my_name"), "rate_metric_total");
        assert!(out[0].2, "still loses its name");
        let q = r#"label_replace(x, "__name__", "rate_$1", "__name__", "(.+)")"#;
        let args = vec![input(), string("__name__"), string("rate_$1"), string("__name__"), string("(.+)")];
        let out = samples(run(q, 0, args).0);
        assert_eq!(out[0].0.metric_name(), "rate_metric_total");
        assert!(!out[0].2, "writing __name__ keeps it");

        let q = r#"label_join(x, "__name__", "_", "__name__", "env")"#;
        let args = vec![input(), string("__name__"), string("_"), string("__name__"), string("env")];
        let out = samples(run(q, 0, args).0);
        assert_eq!(out[0].0.metric_name(), "metric_total_1");
        assert!(!out[0].2);
    }

    #[test]
    fn label_join_joins_sources_in_order() {
        let m = || {
            vector(vec![
                (labels(&[("src", "a"), ("src1", "b"), ("src2", "c"), ("dst", "orig")]), 0.0),
                (labels(&[("src", "d"), ("src1", "e"), ("src2", "f"), ("dst", "orig")]), 1.0),
            ])
        };
        let join = |srcs: &[&str], sep: &str| {
            let quoted: Vec<String> = srcs.iter().map(|s| format!("{s:?}")).collect();
            let q = format!("label_join(x, \"dst\", {sep:?}{}{})", if srcs.is_empty() { "" } else { ", " }, quoted.join(", "));
            let mut args = vec![m(), string("dst"), string(sep)];
            args.extend(srcs.iter().map(|s| string(s)));
            run(&q, 0, args).0
        };
        assert_eq!(dsts(join(&["src", "src1", "src2"], "-")), ["a-b-c", "d-e-f"]);
        assert_eq!(dsts(join(&["src", "src3", "src1"], "-")), ["a--b", "d--e"]);
        assert_eq!(dsts(join(&[], ", ")), ["", ""]);
        let dup = vector(vec![(labels(&[("label", "a"), ("this", "a")]), 1.0), (labels(&[("label", "b"), ("this", "a")]), 1.0)]);
        let q = r#"label_join(dup, "label", "", "this")"#;
        let (res, _) = run(q, 0, vec![dup, string("label"), string(""), string("this")]);
        assert_eq!(exec_err(res), "vector cannot contain metrics with the same labelset");
        let q = r#"label_join(x, "dst", "", "")"#;
        let (res, _) = run(q, 0, vec![m(), string("dst"), string(""), string("")]);
        assert_eq!(exec_err(res), "invalid source label name in label_join(): ");
    }

    // --- time and date --------------------------------------------------------

    #[test]
    fn date_functions_use_utc_calendar_like_go() {
        // (secs, year, month, day, weekday, yday, hour, minute, days in month, RFC 3339)
        type Case = (i64, i64, u32, u32, u32, u32, u32, u32, u32, &'static str);
        let cases: &[Case] = &[
            (0, 1970, 1, 1, 4, 1, 0, 0, 31, "1970-01-01T00:00:00Z"),
            (1136239445, 2006, 1, 2, 1, 2, 22, 4, 31, "2006-01-02T22:04:05Z"),
            (1230767999, 2008, 12, 31, 3, 366, 23, 59, 31, "2008-12-31T23:59:59Z"),
            (1230768000, 2009, 1, 1, 4, 1, 0, 0, 31, "2009-01-01T00:00:00Z"),
            (1456790399, 2016, 2, 29, 1, 60, 23, 59, 29, "2016-02-29T23:59:59Z"),
            (1456790400, 2016, 3, 1, 2, 61, 0, 0, 31, "2016-03-01T00:00:00Z"),
            (1483191420, 2016, 12, 31, 6, 366, 13, 37, 31, "2016-12-31T13:37:00Z"),
            (1672493820, 2022, 12, 31, 6, 365, 13, 37, 31, "2022-12-31T13:37:00Z"),
            (1454284800, 2016, 2, 1, 1, 32, 0, 0, 29, "2016-02-01T00:00:00Z"),
            (1485907200, 2017, 2, 1, 3, 32, 0, 0, 28, "2017-02-01T00:00:00Z"),
            (-1, 1969, 12, 31, 3, 365, 23, 59, 31, "1969-12-31T23:59:59Z"),
            (-86401, 1969, 12, 30, 2, 364, 23, 59, 31, "1969-12-30T23:59:59Z"),
            (i64::MIN, 292277026596, 12, 4, 0, 339, 15, 30, 31, "292277026596-12-04T15:30:08Z"),
            (i64::MAX, 292277026596, 12, 4, 0, 339, 15, 30, 31, "292277026596-12-04T15:30:07Z"),
            (9200000000000000000, 291536396232, 8, 31, 5, 244, 11, 33, 31, "291536396232-08-31T11:33:20Z"),
            (-9200000000000000000, -291536392293, 5, 3, 2, 123, 12, 26, 31, "-291536392293-05-03T12:26:40Z"),
            (-62135596801, 0, 12, 31, 0, 366, 23, 59, 31, "0000-12-31T23:59:59Z"),
            (951782400, 2000, 2, 29, 2, 60, 0, 0, 29, "2000-02-29T00:00:00Z"),
            (4107542400, 2100, 3, 1, 1, 60, 0, 0, 31, "2100-03-01T00:00:00Z"),
            (-2208988800, 1900, 1, 1, 1, 1, 0, 0, 31, "1900-01-01T00:00:00Z"),
        ];
        for &(secs, year, month, day, weekday, yday, hour, minute, dim, rfc) in cases {
            let c = civil_from_unix(secs);
            assert_eq!(
                (c.year, c.month, c.day, c.weekday, c.yday, c.hour, c.minute, days_in_month(c.year, c.month)),
                (year, month, day, weekday, yday, hour, minute, dim),
                "secs {secs}"
            );
            assert_eq!(rfc3339(secs), rfc, "secs {secs}");
        }
        assert_eq!(go_f64_to_i64(f64::NAN), i64::MIN);
        assert_eq!(go_f64_to_i64(1e19), i64::MIN);
        assert_eq!(go_f64_to_i64(-0.5), 0);
        assert_eq!(go_f64_to_i64(1136239445.9), 1136239445);
    }

    #[test]
    fn date_functions_default_to_the_evaluation_time() {
        for (f, want) in [("year", 1970.0), ("month", 1.0), ("day_of_month", 1.0), ("day_of_week", 4.0), ("hour", 0.0)] {
            let out = samples(run(&format!("{f}()"), 0, vec![]).0);
            assert_eq!(out, [(Labels::empty(), want, false)], "{f}");
        }
        let v = vector(vec![(labels(&[("__name__", "t")]), 1136239445.0)]);
        let out = samples(run("hour(t)", 0, vec![v]).0);
        assert_eq!(out[0].1, 22.0);
        assert!(out[0].2);
        assert_eq!(one(run("minute()", 90 * MIN + 5_000, vec![]).0), 30.0);
        match run("time()", 3_000_000, vec![]).0 {
            Ok(Value::Scalar { v, .. }) => assert_eq!(v, 3000.0),
            other => panic!("{other:?}"),
        }
    }

    // --- absent ---------------------------------------------------------------

    #[test]
    fn absent_derives_labels_from_equality_matchers() {
        for (q, want) in [
            ("absent(nonexistent)", vec![]),
            (
                r#"absent(nonexistent{job="testjob", instance="testinstance", method=~".x"})"#,
                vec![("instance", "testinstance"), ("job", "testjob")],
            ),
            (r#"absent(nonexistent{job="testjob",job="testjob2",foo="bar"})"#, vec![("foo", "bar")]),
            (r#"absent(nonexistent{job="testjob",job=~"testjob2",foo="bar"})"#, vec![("foo", "bar")]),
            (r#"absent((nonexistent{job="x"}))"#, vec![("job", "x")]),
            (r#"absent(sum(nonexistent{job="testjob"}))"#, vec![]),
        ] {
            let out = samples(run(q, 0, vec![vector(vec![])]).0);
            assert_eq!(out, [(labels(&want), 1.0, false)], "{q}");
        }
        let present = vector(vec![(labels(&[("__name__", "x")]), 1.0)]);
        assert!(samples(run("absent(x)", 0, vec![present]).0).is_empty());
    }

    #[test]
    fn absent_over_time_reports_when_no_series_has_samples() {
        for (q, want) in [
            ("absent_over_time(http_requests_total[5m])", vec![]),
            (r#"absent_over_time(http_requests_total{handler="/foo"}[5m])"#, vec![("handler", "/foo")]),
            (r#"absent_over_time(http_requests_total{handler!="/foo"}[5m])"#, vec![]),
            (
                r#"absent_over_time(http_requests_total{handler="/foo", handler="/bar", instance="127.0.0.1"}[5m])"#,
                vec![("instance", "127.0.0.1")],
            ),
            ("absent_over_time(rate(nonexistent[5m])[5m:])", vec![]),
        ] {
            let out = samples(run(q, MIN, vec![Value::Matrix(vec![])]).0);
            assert_eq!(out.len(), 1, "{q}");
            assert_eq!(out[0].0, labels(&want), "{q}");
            assert_eq!(out[0].1, 1.0);
        }
        let m = matrix(vec![(labels(&[("job", "a")]), vec![Point::new(0, f64::NAN)])]);
        assert!(samples(run(r#"absent_over_time({job="a"}[4m])"#, MIN, vec![m]).0).is_empty());
    }

    // --- simple functions -----------------------------------------------------

    #[test]
    fn math_functions_match_prometheus() {
        let data = || {
            vector(vec![
                (labels(&[("type", "a")]), 2.5),
                (labels(&[("type", "b")]), -2.5),
                (labels(&[("type", "c")]), -0.0),
                (labels(&[("type", "d")]), f64::NAN),
                (labels(&[("type", "e")]), f64::NEG_INFINITY),
            ])
        };
        let vals = |f: &str| values(run(&format!("{f}(x)"), 0, vec![data()]).0);
        let same = |got: Vec<f64>, want: [f64; 5]| assert!(got.iter().zip(want).all(|(g, w)| close(*g, w)), "{got:?} vs {want:?}");
        same(vals("abs"), [2.5, 2.5, 0.0, f64::NAN, f64::INFINITY]);
        same(vals("ceil"), [3.0, -2.0, 0.0, f64::NAN, f64::NEG_INFINITY]);
        same(vals("floor"), [2.0, -3.0, 0.0, f64::NAN, f64::NEG_INFINITY]);
        same(vals("round"), [3.0, -2.0, 0.0, f64::NAN, f64::NEG_INFINITY]);
        same(vals("sgn"), [1.0, -1.0, 0.0, f64::NAN, -1.0]);
        let (res, _) = run("round(x, 0.2)", 0, vec![vector(vec![(Labels::empty(), 1.35)]), scalar(0.2)]);
        assert_close(one(res), 1.4);
        let logs = |f: &str, v: f64| one(run(&format!("{f}(x)"), 0, vec![vector(vec![(Labels::empty(), v)])]).0);
        assert_eq!(logs("log2", 8.0), 3.0);
        assert_eq!(logs("log2", 0.0), f64::NEG_INFINITY);
        assert!(logs("log2", -1.0).is_nan());
        assert_close(logs("log2", 10.0), 3.3219280948873626);
        assert_eq!(logs("log10", 10.0), 1.0);
        assert_close(logs("log10", 20.0), 1.301029995663981);
        assert_close(logs("exp", 10.0), 22026.465794806718);
        assert_close(logs("ln", 20.0), 2.995732273553991);
        assert_close(logs("deg", PI), 180.0);
        assert_close(logs("rad", 180.0), PI);
        assert_eq!(frexp(f64::MIN_POSITIVE / 4.0), (0.5, -1023));
    }

    #[test]
    fn clamp_follows_go_min_max() {
        let data = || vector(vec![(labels(&[("src", "a")]), -50.0), (labels(&[("src", "b")]), 0.0), (labels(&[("src", "c")]), 100.0)]);
        let clamp = |q: &str, args: Vec<Value>| {
            let mut a = vec![data()];
            a.extend(args);
            values(run(q, 0, a).0)
        };
        assert_eq!(clamp("clamp_max(x, 75)", vec![scalar(75.0)]), [-50.0, 0.0, 75.0]);
        assert_eq!(clamp("clamp_min(x, -25)", vec![scalar(-25.0)]), [-25.0, 0.0, 100.0]);
        assert_eq!(clamp("clamp(x, -25, 75)", vec![scalar(-25.0), scalar(75.0)]), [-25.0, 0.0, 75.0]);
        assert!(clamp("clamp(x, 0, NaN)", vec![scalar(0.0), scalar(f64::NAN)]).iter().all(|v| v.is_nan()));
        assert!(clamp("clamp(x, NaN, 0)", vec![scalar(f64::NAN), scalar(0.0)]).iter().all(|v| v.is_nan()));
        assert!(clamp("clamp(x, 5, -5)", vec![scalar(5.0), scalar(-5.0)]).is_empty());
        assert_eq!(go_max(f64::NAN, f64::INFINITY), f64::INFINITY);
        assert!(go_max(f64::NAN, 1.0).is_nan());
        assert_eq!(go_min(f64::NAN, f64::NEG_INFINITY), f64::NEG_INFINITY);
        assert!(go_max(-0.0, 0.0).is_sign_positive());
        assert!(go_min(0.0, -0.0).is_sign_negative());
    }

    #[test]
    fn sort_puts_nan_last_and_keeps_names() {
        let data = || {
            Value::Vector(vec![
                Sample::new(labels(&[("__name__", "h"), ("i", "0")]), 5, 300.0),
                Sample::new(labels(&[("__name__", "h"), ("i", "1")]), 5, f64::NAN),
                Sample::new(labels(&[("__name__", "h"), ("i", "2")]), 5, 100.0),
                Sample::new(labels(&[("__name__", "h"), ("i", "3")]), 5, 200.0),
            ])
        };
        let order = |f: &str| match run(&format!("{f}(h)"), 7, vec![data()]).0 {
            Ok(Value::Vector(v)) => {
                assert!(v.iter().all(|s| !s.drop_name && s.t == 7 && s.metric.metric_name() == "h"));
                v.iter().map(|s| s.metric.get("i").to_string()).collect::<Vec<_>>()
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(order("sort"), ["2", "3", "0", "1"]);
        assert_eq!(order("sort_desc"), ["0", "3", "2", "1"]);
    }

    #[test]
    fn scalar_vector_timestamp() {
        let one_sample = vector(vec![(labels(&[("l", "x")]), 1.0)]);
        match run("scalar(x)", 0, vec![one_sample]).0 {
            Ok(Value::Scalar { v, .. }) => assert_eq!(v, 1.0),
            other => panic!("{other:?}"),
        }
        let two = vector(vec![(labels(&[("l", "x")]), 1.0), (labels(&[("l", "y")]), 2.0)]);
        match run("scalar(x)", 0, vec![two]).0 {
            Ok(Value::Scalar { v, .. }) => assert!(v.is_nan()),
            other => panic!("{other:?}"),
        }
        assert_eq!(samples(run("vector(1)", 0, vec![scalar(1.0)]).0), [(Labels::empty(), 1.0, false)]);
        let stored = Value::Vector(vec![Sample::new(labels(&[("__name__", "m")]), 10_000, 1.0)]);
        let out = samples(run("timestamp(m)", 15_000, vec![stored]).0);
        assert_eq!(out, [(labels(&[("__name__", "m")]), 10.0, true)]);
    }

    // --- Go compatibility helpers --------------------------------------------

    #[test]
    fn formats_floats_like_go() {
        let cases: &[(f64, &str, &str)] = &[
            (0.0, "0", "0"),
            (-0.0, "-0", "-0"),
            (0.1, "0.1", "0.1"),
            (1e21, "1e+21", "1e+21"),
            (1e20, "1e+20", "1e+20"),
            (123456.0, "123456", "1.2e+05"),
            (1234567.0, "1.234567e+06", "1.2e+06"),
            (1e-5, "1e-05", "1e-05"),
            (0.0001, "0.0001", "0.0001"),
            (0.00012345, "0.00012345", "0.00012"),
            (100.0, "100", "1e+02"),
            (1e6, "1e+06", "1e+06"),
            (999999.0, "999999", "1e+06"),
            (-0.1, "-0.1", "-0.1"),
            (1.01, "1.01", "1"),
            (0.125, "0.125", "0.12"),
            (2.5, "2.5", "2.5"),
            (0.35, "0.35", "0.35"),
            (1e-320, "1e-320", "1e-320"),
            (5e-324, "5e-324", "4.9e-324"),
            (f64::MAX, "1.7976931348623157e+308", "1.8e+308"),
            (12.0, "12", "12"),
            (1.5, "1.5", "1.5"),
            (9.995, "9.995", "10"),
            (99.5, "99.5", "1e+02"),
            (9.9999e-05, "9.9999e-05", "0.0001"),
            (1.23456789012e+11, "1.23456789012e+11", "1.2e+11"),
            (1.0 / 3.0, "0.3333333333333333", "0.33"),
            (-6.666666666666667e-11, "-6.666666666666667e-11", "-6.7e-11"),
            (1e100, "1e+100", "1e+100"),
            (f64::NAN, "NaN", "NaN"),
            (f64::INFINITY, "+Inf", "+Inf"),
            (f64::NEG_INFINITY, "-Inf", "-Inf"),
        ];
        for &(f, g, g2) in cases {
            assert_eq!(go_fmt_g(f, None), g, "%g of {f:e}");
            assert_eq!(go_fmt_g(f, Some(2)), g2, "%.2g of {f:e}");
        }
        assert_eq!(go_quote("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\x01é\"");
    }

    #[test]
    fn parses_floats_like_go() {
        let cases: &[(&str, Option<f64>)] = &[
            ("1_000", Some(1000.0)),
            ("0x1p-2", Some(0.25)),
            ("0x_1p-2", Some(0.25)),
            ("1e400", None),
            ("+nan", None),
            ("nan", Some(f64::NAN)),
            ("NaN", Some(f64::NAN)),
            ("-Inf", Some(f64::NEG_INFINITY)),
            ("+inf", Some(f64::INFINITY)),
            ("infinity", Some(f64::INFINITY)),
            ("+infinity", Some(f64::INFINITY)),
            ("-INFINITY", Some(f64::NEG_INFINITY)),
            ("infin", None),
            ("1.", Some(1.0)),
            ("._5", None),
            (".5", Some(0.5)),
            ("1e-400", Some(0.0)),
            ("0x10", None),
            ("1__0", None),
            ("0.1_0", Some(0.1)),
            ("_1", None),
            ("1_", None),
            ("0x1.8p1", Some(3.0)),
            ("0X1P+3", Some(8.0)),
            ("0x.8p0", Some(0.5)),
            ("0x1p", None),
            ("1e", None),
            ("", None),
            (" 1", None),
            ("1 ", None),
            ("+", None),
            ("-0", Some(-0.0)),
            ("0.1", Some(0.1)),
            (".2", Some(0.2)),
            ("1e0", Some(1.0)),
            ("2e-1", Some(0.2)),
            ("2.0e-1", Some(0.2)),
            ("Hello World", None),
            ("0x1p1024", None),
            ("0x1.fffffffffffffp1023", Some(f64::MAX)),
            ("0x123456789abcdef01p0", Some(2.0988295479420645e+19)),
            ("1e308", Some(1e308)),
            ("-1e309", None),
            ("0b101", None),
            ("0o7", None),
            ("-+5", None),
            ("+-5", None),
            ("1e+5", Some(1e5)),
        ];
        for &(s, want) in cases {
            let got = parse_go_float(s);
            match (got, want) {
                (Some(g), Some(w)) => assert!((g.is_nan() && w.is_nan()) || g.to_bits() == w.to_bits(), "{s:?}: got {g}, want {w}"),
                (None, None) => {}
                _ => panic!("{s:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn no_input_makes_a_function_panic() {
        const NAMES: &[&str] = &[
            "abs",
            "absent",
            "absent_over_time",
            "acos",
            "acosh",
            "asin",
            "asinh",
            "atan",
            "atanh",
            "avg_over_time",
            "ceil",
            "changes",
            "clamp",
            "clamp_max",
            "clamp_min",
            "cos",
            "cosh",
            "count_over_time",
            "days_in_month",
            "day_of_month",
            "day_of_week",
            "day_of_year",
            "deg",
            "delta",
            "deriv",
            "exp",
            "first_over_time",
            "floor",
            "histogram_avg",
            "histogram_count",
            "histogram_fraction",
            "histogram_quantile",
            "histogram_stddev",
            "histogram_stdvar",
            "histogram_sum",
            "hour",
            "idelta",
            "increase",
            "irate",
            "label_join",
            "label_replace",
            "last_over_time",
            "ln",
            "log10",
            "log2",
            "max_over_time",
            "min_over_time",
            "minute",
            "month",
            "pi",
            "predict_linear",
            "present_over_time",
            "quantile_over_time",
            "rad",
            "rate",
            "resets",
            "round",
            "scalar",
            "sgn",
            "sin",
            "sinh",
            "sort",
            "sort_desc",
            "sqrt",
            "stddev_over_time",
            "stdvar_over_time",
            "sum_over_time",
            "tan",
            "tanh",
            "time",
            "timestamp",
            "vector",
            "year",
            "no_such_function",
            "mad_over_time",
        ];
        let odd = [0.0, -0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, f64::MIN, f64::MIN_POSITIVE, 1e300, -1e19];
        let odd_labels = labels(&[("__name__", "x"), ("le", "0x1p99999999999999999999"), ("a", "$")]);
        let vec = Value::Vector(
            odd.iter()
                .enumerate()
                .map(|(i, v)| {
                    let mut b = LabelsBuilder::from_labels(&odd_labels);
                    b.set("i", i.to_string());
                    Sample::new(b.build(), i64::MIN + i as i64, *v)
                })
                .collect(),
        );
        let points: Vec<Point> =
            odd.iter().enumerate().map(|(i, v)| Point::new([i64::MIN, -1, 0, 1, i64::MAX][i % 5].wrapping_add(i as i64), *v)).collect();
        let mat = Value::Matrix(vec![
            Series { metric: odd_labels.clone(), points: points.clone().into(), drop_name: false },
            Series { metric: Labels::empty(), points: vec![points[0], points[0]].into(), drop_name: true },
        ]);
        let choices = [
            vec![],
            vec![vec.clone()],
            vec![mat.clone()],
            vec![scalar(f64::NAN), vec.clone()],
            vec![scalar(0.5), mat.clone()],
            vec![mat.clone(), scalar(f64::INFINITY)],
            vec![vec.clone(), scalar(f64::NAN), scalar(f64::NAN)],
            vec![scalar(f64::NEG_INFINITY), scalar(f64::INFINITY), vec.clone()],
            vec![vec.clone(), string("a"), string("$1${x}$"), string("i"), string("(.*)")],
            vec![vec.clone(), string(""), string(""), string("")],
            vec![string("x"), mat.clone(), vec.clone()],
        ];
        let expr = parser::parse("rate(x[5m] @ 1e12 offset -1y)").expect("parses");
        let Expr::Call(c) = &expr else { unreachable!() };
        for name in NAMES {
            for args in &choices {
                for ts in [i64::MIN, 0, i64::MAX] {
                    for range_ms in [0, -1, i64::MAX] {
                        let mut annos = Annotations::default();
                        let mut ctx = FnContext { ts, range_ms, args: &c.args.args, annotations: &mut annos, memo: None };
                        let _ = call(name, args.clone(), &mut ctx);
                    }
                }
            }
        }
    }

    #[test]
    fn window_end_and_range_come_from_the_argument() {
        let expr = parser::parse("rate(x[5m] offset -1m)").expect("parses");
        let Expr::Call(c) = &expr else { unreachable!() };
        let mut annos = Annotations::default();
        let ctx = FnContext { ts: 10 * MIN, range_ms: 0, args: &c.args.args, annotations: &mut annos, memo: None };
        assert_eq!(window_end(&ctx), 11 * MIN);
        assert_eq!(window_range(&ctx), 5 * MIN);
        let expr = parser::parse("max_over_time(rate(x[1m])[10m:1m] @ 100 offset 10s)").expect("parses");
        let Expr::Call(c) = &expr else { unreachable!() };
        let ctx = FnContext { ts: 0, range_ms: 0, args: &c.args.args, annotations: &mut annos, memo: None };
        assert_eq!(window_end(&ctx), 90_000);
        assert_eq!(window_range(&ctx), 10 * MIN);
        assert_eq!(ms_to_seconds(1_500), 1.5);
    }
}
