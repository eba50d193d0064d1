//! Query entry points and the step evaluator.
//!
//! A query is parsed once, its selectors are planned and fetched once
//! ([`super::selectors`]), then the expression is evaluated at each step from
//! memory. Subtrees that do not depend on the step (literals, `@`-pinned
//! selectors, selectors that matched nothing) are evaluated once; subquery
//! inner results are memoized by absolute timestamp, so sliding subquery
//! windows share work across steps.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use promql_parser::parser::{self, Expr};

use super::Annotations;
use super::binary;
use super::functions::{self, FnContext};
use super::metrics::{EngineMetrics, QueryKind};
use super::selectors::{self, Fetched, at_ms, ms, offset_ms, selector_key};
use super::value::{EvalError, Sample, Series, Value};
use crate::model::{Labels, Sample as Point};
use crate::promql::unique::{RewriteOutputs, check_unique};
use crate::tsdb::Querier;
use crate::tsdb::idhash::{IdBuild, IdMap};

/// Default step of subqueries written without one (Prometheus uses the global evaluation interval, 1m by default).
const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

/// Limits and defaults, named after Prometheus' flags.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// `--query.lookback-delta` (ms).
    pub lookback_ms: i64,
    /// `--query.max-samples`.
    pub max_samples: usize,
    /// `--query.timeout`.
    pub timeout: Duration,
    /// `--query.max-concurrency`.
    pub max_concurrent: usize,
    /// How range queries are split across threads.
    pub parallelism: Parallelism,
}

/// Splitting a range query into runs of consecutive steps evaluated on
/// separate threads over the same fetched data. Prometheus evaluates a query
/// on one goroutine; a dashboard refresh on an idle server then leaves the
/// other cores unused.
#[derive(Debug, Clone)]
pub struct Parallelism {
    /// The most threads one range query uses (the CPUs available by default).
    pub threads: usize,
    /// Queries with less work than this (selected series × steps) run on one
    /// thread: starting threads would cost more than it saves.
    pub min_work: usize,
    /// The fewest steps one thread evaluates.
    pub min_steps: usize,
}

impl Default for Parallelism {
    fn default() -> Self {
        Parallelism { threads: std::thread::available_parallelism().map_or(1, |n| n.get()), min_work: 20_000, min_steps: 8 }
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_ms: 300_000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            max_concurrent: 20,
            parallelism: Parallelism::default(),
        }
    }
}

/// A successful query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub value: Value,
    pub annotations: Annotations,
}

/// Why a query failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The query text is invalid; the message carries Prometheus-style positions.
    #[error("{0}")]
    Parse(String),
    #[error("{0}")]
    Eval(#[from] EvalError),
}

/// Evaluates PromQL over a storage view, at most `max_concurrent` at a time.
pub struct Engine {
    opts: EngineOptions,
    parsed: ParseCache,
    slots: Mutex<Slots>,
    freed: Condvar,
    metrics: EngineMetrics,
}

/// Per-query overrides (the HTTP API's `lookback_delta` parameter, for one).
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    pub lookback_ms: Option<i64>,
    /// Set from outside to stop the query (for example when its HTTP client
    /// goes away); the query then fails with [`EvalError::Canceled`].
    pub cancel: Option<Arc<AtomicBool>>,
}

struct Slot<'a>(&'a Engine);

/// Queries running and queries waiting for one of them to end. Waiters are
/// counted so that ending a query wakes a thread only when one waits.
#[derive(Default)]
struct Slots {
    active: usize,
    waiting: usize,
}

/// Parsed queries by their text. Dashboards send the same texts at every
/// refresh, and parsing is about a quarter of a small query's time.
#[derive(Default)]
struct ParseCache(Mutex<HashMap<String, Arc<Expr>>>);

/// Query texts kept parsed; the cache starts over when full.
const PARSE_CACHE_ENTRIES: usize = 512;

impl ParseCache {
    fn get(&self, query: &str) -> Result<Arc<Expr>, QueryError> {
        if let Some(e) = self.0.lock().unwrap_or_else(|p| p.into_inner()).get(query) {
            return Ok(e.clone());
        }
        let expr = Arc::new(super::parse::parse(query).map_err(QueryError::Parse)?);
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= PARSE_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(query.to_string(), expr.clone());
        Ok(expr)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut s = self.0.slots.lock().unwrap_or_else(|p| p.into_inner());
        s.active -= 1;
        if s.waiting > 0 {
            self.0.freed.notify_one();
        }
    }
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Self {
        let metrics = EngineMetrics::new(opts.max_concurrent);
        Engine { opts, parsed: ParseCache::default(), slots: Mutex::default(), freed: Condvar::new(), metrics }
    }

    /// Counts, durations and failures of the queries (registered by the server).
    pub fn metrics(&self) -> &EngineMetrics {
        &self.metrics
    }

    /// Runs `f` as one query of `kind`, counted in the metrics unless it
    /// gave the query back (`None`) to be run elsewhere.
    fn measured<T>(&self, kind: QueryKind, f: impl FnOnce() -> Result<Option<T>, QueryError>) -> Option<Result<T, QueryError>> {
        let start = Instant::now();
        self.metrics.queries.inc();
        let result = f().transpose();
        self.metrics.queries.dec();
        if let Some(r) = &result {
            self.metrics.observe(kind, start.elapsed().as_secs_f64(), r.as_ref().err());
        }
        result
    }

    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// A query slot: waited for, up to the query timeout, on a thread that
    /// may block; on an async worker only if one is free now.
    fn slot_for(&self, place: Place, deadline: Instant) -> Result<Option<Slot<'_>>, EvalError> {
        match place {
            Place::MayBlock => self.slot(deadline).map(Some),
            Place::Inline => {
                let mut s = self.slots.lock().unwrap_or_else(|p| p.into_inner());
                if s.active >= self.opts.max_concurrent.max(1) {
                    return Ok(None);
                }
                s.active += 1;
                Ok(Some(Slot(self)))
            }
        }
    }

    /// Waits for a free query slot, up to the query timeout.
    fn slot(&self, deadline: Instant) -> Result<Slot<'_>, EvalError> {
        let mut s = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        while s.active >= self.opts.max_concurrent.max(1) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(EvalError::Timeout);
            }
            s.waiting += 1;
            s = self.freed.wait_timeout(s, left).unwrap_or_else(|p| p.into_inner()).0;
            s.waiting -= 1;
        }
        s.active += 1;
        Ok(Slot(self))
    }

    /// Threads for a range query of `work` (series × steps) over `steps`
    /// steps: one for small queries, where starting threads costs more than
    /// it saves; otherwise the cores no other running query occupies, so a
    /// lone dashboard query uses the machine and a busy server degrades to
    /// one thread per query.
    fn workers(&self, work: usize, steps: usize) -> usize {
        let p = &self.opts.parallelism;
        if work < p.min_work {
            return 1;
        }
        let others = self.slots.lock().unwrap_or_else(|p| p.into_inner()).active.saturating_sub(1);
        p.threads.saturating_sub(others).min(steps / p.min_steps.max(1)).max(1)
    }

    /// Evaluates `query` at `ts` (ms).
    pub fn instant(&self, q: &Querier, query: &str, ts: i64) -> Result<QueryResult, QueryError> {
        self.instant_with(q, query, ts, &QueryOptions::default())
    }

    pub fn instant_with(&self, q: &Querier, query: &str, ts: i64, o: &QueryOptions) -> Result<QueryResult, QueryError> {
        self.measured(QueryKind::Instant, || self.instant_inner(q, query, ts, o, Place::MayBlock)).unwrap_or_else(never_given_back)
    }

    /// [`Engine::instant_with`] for an async worker: runs the query here if
    /// it turns out small (see [`Place::Inline`]); `None` gives it back, to
    /// be run with `instant_with` on a thread that may block.
    pub fn instant_inline(&self, q: &Querier, query: &str, ts: i64, o: &QueryOptions) -> Option<Result<QueryResult, QueryError>> {
        self.measured(QueryKind::Instant, || self.instant_inner(q, query, ts, o, Place::Inline))
    }

    fn instant_inner(&self, q: &Querier, query: &str, ts: i64, o: &QueryOptions, place: Place) -> Result<Option<QueryResult>, QueryError> {
        let expr = self.parsed.get(query)?;
        let deadline = Instant::now() + self.opts.timeout;
        let lookback = o.lookback_ms.unwrap_or(self.opts.lookback_ms);
        let plan = selectors::plan(&expr, ts, ts, lookback, DEFAULT_SUBQUERY_STEP_MS);
        let Some(Fetch { slot: _slot, budget, data }) = self.fetch(q, &plan, place, 1, deadline)? else { return Ok(None) };
        let mut ev = Evaluator::new(query, ts, ts, lookback, deadline, budget, data);
        ev.cancel = o.cancel.clone();
        let value = ev.eval(&expr, ts)?;
        let value = match value {
            Value::Vector(v) => Value::Vector(finish_vector(v, &mut NameDrops::default())?),
            Value::Matrix(m) => Value::Matrix(finish_matrix(m)?),
            other => other,
        };
        Ok(Some(QueryResult { value, annotations: ev.annotations }))
    }

    /// Evaluates `query` at every step from `start` to `end` (ms, inclusive).
    pub fn range(&self, q: &Querier, query: &str, start: i64, end: i64, step: i64) -> Result<QueryResult, QueryError> {
        self.range_with(q, query, start, end, step, &QueryOptions::default())
    }

    pub fn range_with(
        &self,
        q: &Querier,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
        o: &QueryOptions,
    ) -> Result<QueryResult, QueryError> {
        self.measured(QueryKind::Range, || self.range_inner(q, query, start, end, step, o, Place::MayBlock))
            .unwrap_or_else(never_given_back)
    }

    /// [`Engine::range_with`] for an async worker: runs the query here if it
    /// turns out small (see [`Place::Inline`]); `None` gives it back, to be
    /// run with `range_with` on a thread that may block.
    pub fn range_inline(
        &self,
        q: &Querier,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
        o: &QueryOptions,
    ) -> Option<Result<QueryResult, QueryError>> {
        self.measured(QueryKind::Range, || self.range_inner(q, query, start, end, step, o, Place::Inline))
    }

    #[allow(clippy::too_many_arguments)]
    fn range_inner(
        &self,
        q: &Querier,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
        o: &QueryOptions,
        place: Place,
    ) -> Result<Option<QueryResult>, QueryError> {
        let expr = self.parsed.get(query)?;
        match expr.value_type() {
            parser::value::ValueType::Vector | parser::value::ValueType::Scalar => {}
            t => {
                let name = if t == parser::value::ValueType::Matrix { "range vector".to_string() } else { t.to_string() };
                return Err(QueryError::Eval(EvalError::exec(format!(
                    "invalid expression type \"{name}\" for range query, must be Scalar or instant Vector"
                ))));
            }
        }
        if step <= 0 {
            return Err(QueryError::Eval(EvalError::exec(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            )));
        }
        let deadline = Instant::now() + self.opts.timeout;
        let lookback = o.lookback_ms.unwrap_or(self.opts.lookback_ms);
        let plan = selectors::plan(&expr, start, end, lookback, step);
        let steps = ((end - start) / step + 1) as usize;
        let Some(Fetch { slot: _slot, budget, data }) = self.fetch(q, &plan, place, steps, deadline)? else { return Ok(None) };
        let series: usize = data.values().map(|f| f.series.len()).sum();
        let chunks = split_steps(start, step, steps, self.workers(series.saturating_mul(steps), steps));
        // Each chunk of consecutive steps gets its own evaluator (cursors and
        // memos are per chunk) over the shared fetched data; a failing chunk
        // stops the others.
        let abort = Arc::new(AtomicBool::new(false));
        let run = |(from, to): (i64, i64)| -> Result<(StepSeries, Annotations), EvalError> {
            let mut ev = Evaluator::new(query, start, end, lookback, deadline, budget.clone(), data.clone());
            ev.cancel = o.cancel.clone();
            ev.abort = Some(abort.clone());
            let out = eval_steps(&mut ev, &expr, from, to, step);
            if out.is_err() {
                abort.store(true, Ordering::Relaxed);
            }
            Ok((out?, ev.annotations))
        };
        let results: Vec<_> = std::thread::scope(|scope| {
            let run = &run;
            let workers: Vec<_> = chunks[1..].iter().map(|&c| scope.spawn(move || run(c))).collect();
            let first = run(chunks[0]);
            std::iter::once(first)
                .chain(workers.into_iter().map(|w| w.join().unwrap_or_else(|_| Err(EvalError::exec("query worker panicked")))))
                .collect()
        });
        let (mut out, mut annotations) = merge_chunks(results)?;
        out.sort_by(|a, b| a.0.cmp(&b.0));
        let m = out.into_iter().map(|(metric, points)| Series { metric, points: points.into(), drop_name: false }).collect();
        let mut fns = Vec::new();
        called_functions(&expr, &mut fns);
        for f in ["sort", "sort_desc", "sort_by_label", "sort_by_label_desc"] {
            if fns.contains(&f) {
                annotations.warn(format!(
                    "PromQL warning: sort is ineffective for range queries since results are always ordered by labels{}",
                    call_position(query, f)
                ));
            }
        }
        Ok(Some(QueryResult { value: Value::Matrix(m), annotations }))
    }

    /// Takes a query slot and fetches what `plan` selects, counted against
    /// a new sample budget. [`Place::Inline`] gives up (`None`) as soon as
    /// the query is not small.
    fn fetch(
        &self,
        q: &Querier,
        plan: &selectors::Plan,
        place: Place,
        steps: usize,
        deadline: Instant,
    ) -> Result<Option<Fetch<'_>>, EvalError> {
        if place == Place::Inline && !plan.selects_by_equality_only() {
            return Ok(None);
        }
        let Some(slot) = self.slot_for(place, deadline)? else { return Ok(None) };
        let budget = Arc::new(SampleBudget::new(self.opts.max_samples));
        let small = self.opts.parallelism.min_work;
        let cap = if place == Place::Inline { budget.max.min(small) } else { budget.max };
        let mut samples = 0;
        let data = match plan.fetch(q, &mut samples, cap) {
            Err(EvalError::TooManySamples) if cap < budget.max => return Ok(None),
            r => r?,
        };
        budget.take(samples)?;
        let series: usize = data.values().map(|f| f.series.len()).sum();
        if place == Place::Inline && series.saturating_mul(steps) >= small {
            return Ok(None);
        }
        Ok(Some(Fetch { slot, budget, data }))
    }
}

/// A query's data, with the slot it holds while it runs and its sample
/// budget (shared by its threads).
struct Fetch<'a> {
    slot: Slot<'a>,
    budget: Arc<SampleBudget>,
    data: HashMap<String, Arc<Fetched>>,
}

/// Where a query runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// A thread that may wait for a query slot and run for as long as the
    /// query takes (the HTTP API's blocking pool, rule evaluation).
    MayBlock,
    /// An async worker, which other requests share: the query runs there
    /// only if it is small, since moving it to another thread and back
    /// costs two thread wake-ups, often more than a small query itself.
    /// Small means: every selector matches by (in)equality only, so the
    /// index lookups are a few postings lists (a regex may scan every value
    /// of a label); a query slot is free now; and fetching and evaluating
    /// stay under [`Parallelism::min_work`], the size below which a range
    /// query is not worth splitting across threads either.
    Inline,
}

/// The answer for a query given back by [`Place::MayBlock`], which never
/// gives one back (only [`Place::Inline`] does).
fn never_given_back() -> Result<QueryResult, QueryError> {
    Err(QueryError::Eval(EvalError::exec("the query was not run")))
}

/// Name dropping across the steps of a query: each input label set's
/// output is computed once (by identity; the memo keeps the inputs alive so
/// identities are not reused).
#[derive(Default)]
struct NameDrops {
    memo: IdMap<usize, (Labels, Labels)>,
    outputs: RewriteOutputs,
}

impl NameDrops {
    fn drop_name(&mut self, metric: &Labels) -> Labels {
        let id = metric.identity();
        if let Some((_, out)) = self.memo.get(&id) {
            return out.clone();
        }
        let out = binary::without_name(metric);
        self.outputs.record(&out);
        self.memo.insert(id, (metric.clone(), out.clone()));
        out
    }
}

/// Output series of a run of steps, each with its points in time order.
type StepSeries = Vec<(Labels, Vec<Point>)>;

/// The `--query.max-samples` allowance of one query, shared by its threads.
struct SampleBudget {
    max: usize,
    used: AtomicUsize,
}

impl SampleBudget {
    fn new(max: usize) -> Self {
        SampleBudget { max, used: AtomicUsize::new(0) }
    }

    fn take(&self, n: usize) -> Result<(), EvalError> {
        if self.used.fetch_add(n, Ordering::Relaxed).saturating_add(n) > self.max {
            return Err(EvalError::TooManySamples);
        }
        Ok(())
    }
}

/// `steps` steps from `start` split into `parts` runs of consecutive steps,
/// as even as possible: the first and last step of each.
fn split_steps(start: i64, step: i64, steps: usize, parts: usize) -> Vec<(i64, i64)> {
    let parts = parts.clamp(1, steps.max(1));
    (0..parts)
        .map(|i| {
            let (lo, hi) = (i * steps / parts, (i + 1) * steps / parts);
            (start + lo as i64 * step, start + (hi as i64 - 1) * step)
        })
        .collect()
}

/// Output series of a range query in the order they first appear, each
/// with its points; label sets that recur at every step are found by
/// identity first (only identities of sets kept alive here are recorded,
/// so none can be reused).
#[derive(Default)]
struct RangeOutput {
    by_id: IdMap<usize, usize>,
    by_content: HashMap<Labels, usize, IdBuild>,
    series: StepSeries,
}

impl RangeOutput {
    fn push(&mut self, metric: Labels, p: Point) {
        let i = match self.by_id.get(&metric.identity()) {
            Some(&i) => i,
            None => self.index(metric),
        };
        self.series[i].1.push(p);
    }

    fn index(&mut self, metric: Labels) -> usize {
        match self.by_content.get(&metric) {
            Some(&i) => i,
            None => {
                let i = self.series.len();
                self.by_id.insert(metric.identity(), i);
                self.by_content.insert(metric.clone(), i);
                self.series.push((metric, Vec::new()));
                i
            }
        }
    }

    /// Appends the points of a later run of steps.
    fn append(&mut self, later: StepSeries) {
        for (metric, points) in later {
            let i = self.index(metric);
            self.series[i].1.extend(points);
        }
    }
}

/// Evaluates `expr` at every step from `from` to `to` (inclusive).
fn eval_steps(ev: &mut Evaluator, expr: &Expr, from: i64, to: i64, step: i64) -> Result<StepSeries, EvalError> {
    if ev.invariant(expr) {
        return invariant_steps(ev, expr, from, to, step);
    }
    let mut out = RangeOutput::default();
    let mut dropped_names = NameDrops::default();
    // One label set for a scalar's every step, found by identity.
    let scalar = Labels::empty();
    let mut ts = from;
    while ts <= to {
        match ev.eval(expr, ts)? {
            Value::Scalar { v, .. } => out.push(scalar.clone(), Point::new(ts, v)),
            Value::Vector(v) => {
                let v = finish_vector(v, &mut dropped_names)?;
                ev.count(v.len())?;
                v.into_iter().for_each(|s| out.push(s.metric, Point::new(ts, s.v)));
            }
            other => return Err(EvalError::exec(format!("unexpected {} in range query", other.type_name()))),
        }
        ts += step;
    }
    Ok(out.series)
}

/// The steps of a query whose value is the same at each (`absent(x)` over
/// a metric not there, `vector(1)`, a pinned `x @ end()`): evaluated once,
/// its samples get a point at every step.
fn invariant_steps(ev: &mut Evaluator, expr: &Expr, from: i64, to: i64, step: i64) -> Result<StepSeries, EvalError> {
    let times: Vec<i64> = std::iter::successors(Some(from), |t| Some(t + step)).take_while(|&t| t <= to).collect();
    let points = |v: f64| times.iter().map(|&t| Point::new(t, v)).collect::<Vec<_>>();
    match ev.eval(expr, from)? {
        Value::Scalar { v, .. } => Ok(vec![(Labels::empty(), points(v))]),
        Value::Vector(v) => {
            let v = finish_vector(v, &mut NameDrops::default())?;
            ev.count(v.len().saturating_mul(times.len()))?;
            Ok(v.into_iter().map(|s| (s.metric, points(s.v))).collect())
        }
        other => Err(EvalError::exec(format!("unexpected {} in range query", other.type_name()))),
    }
}

/// Joins the runs of steps of a range query, in time order. On failure the
/// error of the earliest failed run is the one a single thread would have
/// met first; runs stopped only because another failed say `Canceled` and
/// give way to the real error.
fn merge_chunks(results: Vec<Result<(StepSeries, Annotations), EvalError>>) -> Result<(StepSeries, Annotations), EvalError> {
    if let Some(e) = results.iter().filter_map(|r| r.as_ref().err()).find(|e| **e != EvalError::Canceled) {
        return Err(e.clone());
    }
    if results.len() == 1 {
        return results.into_iter().next().unwrap_or_else(|| Ok(Default::default()));
    }
    let mut out = RangeOutput::default();
    let mut annotations = Annotations::default();
    for r in results {
        let (series, a) = r?;
        out.append(series);
        annotations.extend(a);
    }
    Ok((out.series, annotations))
}

/// Drops names flagged for removal and rejects label-set collisions.
fn finish_vector(mut v: Vec<Sample>, names: &mut NameDrops) -> Result<Vec<Sample>, EvalError> {
    let (mut any, mut all) = (false, true);
    for s in v.iter_mut() {
        if s.drop_name {
            s.metric = names.drop_name(&s.metric);
            s.drop_name = false;
            any = true;
        } else {
            all = false;
        }
    }
    // Collisions can only come from dropping names (Prometheus checks then too).
    if any {
        if all { names.outputs.check_unique(&v)? } else { check_unique(&v)? }
    }
    Ok(v)
}

fn finish_matrix(mut m: Vec<Series>) -> Result<Vec<Series>, EvalError> {
    for s in m.iter_mut().filter(|s| s.drop_name) {
        s.metric = binary::without_name(&s.metric);
        s.drop_name = false;
    }
    let mut seen = HashSet::with_capacity(m.len());
    for s in &m {
        if !seen.insert(&s.metric) {
            return Err(EvalError::exec("vector cannot contain metrics with the same labelset"));
        }
    }
    Ok(m)
}

/// Functions that read the evaluation time (Prometheus' "@ modifier
/// unsafe" functions): their value varies even when their arguments do not.
fn reads_eval_time(name: &str) -> bool {
    matches!(
        name,
        "time"
            | "timestamp"
            | "predict_linear"
            | "minute"
            | "hour"
            | "day_of_week"
            | "day_of_month"
            | "day_of_year"
            | "days_in_month"
            | "month"
            | "year"
    )
}

struct Evaluator {
    cancel: Option<Arc<AtomicBool>>,
    /// Set when another part of the same query failed.
    abort: Option<Arc<AtomicBool>>,
    /// The query text, for annotation positions.
    query: String,
    start: i64,
    end: i64,
    lookback: i64,
    deadline: Instant,
    budget: Arc<SampleBudget>,
    data: HashMap<String, Arc<Fetched>>,
    /// Per selector node: its fetched data (found by key at the first step).
    selected: IdMap<usize, Arc<Fetched>>,
    /// Per node: whether its value is the same at every step (see [`Evaluator::invariant`]).
    invariant: IdMap<usize, bool>,
    invariant_cache: IdMap<usize, Value>,
    subquery_cache: HashMap<(usize, i64), Value, IdBuild>,
    /// Per range-selector node: where each series' window was at the last step.
    cursors: HashMap<usize, selectors::Cursor>,
    fn_memo: functions::FnMemo,
    /// Per aggregation node: group keys by label-set identity.
    group_memos: HashMap<usize, super::aggregate::GroupMemo>,
    /// Per binary-operator node: matching signatures and result label sets.
    binary_memos: HashMap<usize, binary::BinaryMemo>,
    annotations: Annotations,
}

impl Evaluator {
    fn new(
        query: &str,
        start: i64,
        end: i64,
        lookback: i64,
        deadline: Instant,
        budget: Arc<SampleBudget>,
        data: HashMap<String, Arc<Fetched>>,
    ) -> Self {
        Evaluator {
            cancel: None,
            abort: None,
            query: query.to_string(),
            start,
            end,
            lookback,
            deadline,
            budget,
            data,
            selected: IdMap::default(),
            invariant: IdMap::default(),
            invariant_cache: IdMap::default(),
            subquery_cache: HashMap::default(),
            cursors: HashMap::new(),
            fn_memo: functions::FnMemo::default(),
            group_memos: HashMap::new(),
            binary_memos: HashMap::new(),
            annotations: Annotations::default(),
        }
    }

    /// Accounts for samples held in memory; fails past `--query.max-samples`.
    fn count(&mut self, n: usize) -> Result<(), EvalError> {
        self.budget.take(n)
    }

    fn eval(&mut self, e: &Expr, ts: i64) -> Result<Value, EvalError> {
        if Instant::now() > self.deadline {
            return Err(EvalError::Timeout);
        }
        if [&self.cancel, &self.abort].into_iter().flatten().any(|c| c.load(Ordering::Relaxed)) {
            return Err(EvalError::Canceled);
        }
        let key = e as *const Expr as usize;
        let invariant = self.invariant(e) && !matches!(e, Expr::NumberLiteral(_) | Expr::StringLiteral(_));
        if invariant && let Some(v) = self.invariant_cache.get(&key) {
            // Selector samples keep their stored timestamps (for `timestamp()`);
            // computed samples carry the evaluation time.
            return Ok(if matches!(e, Expr::VectorSelector(_)) { v.clone() } else { restamp(v.clone(), ts) });
        }
        let v = self.eval_uncached(e, ts)?;
        if invariant {
            self.invariant_cache.insert(key, v.clone());
        }
        Ok(v)
    }

    fn eval_uncached(&mut self, e: &Expr, ts: i64) -> Result<Value, EvalError> {
        match e {
            Expr::NumberLiteral(n) => Ok(Value::Scalar { t: ts, v: n.val }),
            Expr::StringLiteral(s) => Ok(Value::String { t: ts, v: s.val.clone() }),
            Expr::Paren(p) => self.eval(&p.expr, ts),
            Expr::Unary(u) => match self.eval(&u.expr, ts)? {
                Value::Scalar { v, .. } => Ok(Value::Scalar { t: ts, v: -v }),
                Value::Vector(mut vs) => {
                    for s in vs.iter_mut() {
                        s.v = -s.v;
                        s.t = ts;
                        s.drop_name = true;
                    }
                    Ok(Value::Vector(vs))
                }
                other => Err(EvalError::exec(format!(
                    "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                    other.type_name()
                ))),
            },
            Expr::VectorSelector(vs) => {
                let t = at_ms(&vs.at, self.start, self.end).unwrap_or(ts) - offset_ms(&vs.offset);
                let f = self.selected(e, vs)?;
                let cursor = self.cursors.entry(e as *const Expr as usize).or_default();
                let v = selectors::instant_vector(&f, t, self.lookback, cursor);
                self.count(v.len())?;
                Ok(Value::Vector(v))
            }
            Expr::MatrixSelector(m) => {
                let t = at_ms(&m.vs.at, self.start, self.end).unwrap_or(ts) - offset_ms(&m.vs.offset);
                let f = self.selected(e, &m.vs)?;
                let cursor = self.cursors.entry(e as *const Expr as usize).or_default();
                Ok(Value::Matrix(selectors::range_vector(&f, t, ms(&m.range), cursor)))
            }
            Expr::Subquery(sq) => {
                let base = at_ms(&sq.at, self.start, self.end).unwrap_or(ts) - offset_ms(&sq.offset);
                let step = sq.step.as_ref().map(ms).filter(|&s| s > 0).unwrap_or(DEFAULT_SUBQUERY_STEP_MS);
                let range = ms(&sq.range);
                // Steps at absolute multiples of `step` inside (base - range, base].
                let mut t = (base - range).div_euclid(step) * step;
                if t <= base - range {
                    t += step;
                }
                let inner_key = &*sq.expr as *const Expr as usize;
                let mut series: BTreeMap<Labels, (Vec<Point>, bool)> = BTreeMap::new();
                while t <= base {
                    let v = match self.subquery_cache.get(&(inner_key, t)) {
                        Some(v) => v.clone(),
                        None => {
                            let v = self.eval(&sq.expr, t)?;
                            self.subquery_cache.insert((inner_key, t), v.clone());
                            v
                        }
                    };
                    match v {
                        Value::Vector(vs) => {
                            self.count(vs.len())?;
                            for s in vs {
                                let e = series.entry(s.metric).or_default();
                                e.0.push(Point::new(t, s.v));
                                e.1 |= s.drop_name;
                            }
                        }
                        Value::Scalar { v, .. } => series.entry(Labels::empty()).or_default().0.push(Point::new(t, v)),
                        other => {
                            return Err(EvalError::exec(format!("subquery is only allowed on instant vector, got {}", other.type_name())));
                        }
                    }
                    t += step;
                }
                Ok(Value::Matrix(
                    series.into_iter().map(|(metric, (points, drop_name))| Series { metric, points: points.into(), drop_name }).collect(),
                ))
            }
            Expr::Aggregate(a) => {
                let param = match &a.param {
                    Some(p) => Some(self.eval(p, ts)?),
                    None => None,
                };
                let input = match self.eval(&a.expr, ts)? {
                    Value::Vector(v) => v,
                    other => {
                        return Err(EvalError::exec(format!("expected instant vector in aggregation, got {}", other.type_name())));
                    }
                };
                let before = (self.annotations.warnings.len(), self.annotations.infos.len());
                let memo = self.group_memos.entry(e as *const Expr as usize).or_default();
                let out = super::aggregate::aggregate_with(
                    a.op,
                    param.as_ref(),
                    a.modifier.as_ref(),
                    input,
                    ts,
                    &mut self.annotations,
                    Some(memo),
                )?;
                if (self.annotations.warnings.len(), self.annotations.infos.len()) != before {
                    let positions = call_arg_positions(&self.query, &a.op.to_string());
                    position_new_annotations(&mut self.annotations, before, &positions, positions.len().saturating_sub(1));
                }
                Ok(Value::Vector(out))
            }
            Expr::Binary(b) => {
                let l = self.eval(&b.lhs, ts)?;
                let r = self.eval(&b.rhs, ts)?;
                let memo = self.binary_memos.entry(e as *const Expr as usize).or_default();
                binary::eval_with(&b.op.to_string(), b.modifier.as_ref(), l, r, ts, memo)
            }
            Expr::Call(c) => {
                let mut args = Vec::with_capacity(c.args.args.len());
                let mut range_ms = 0;
                for a in &c.args.args {
                    range_ms = match unparen(a) {
                        Expr::MatrixSelector(m) => ms(&m.range),
                        Expr::Subquery(sq) => ms(&sq.range),
                        _ => range_ms,
                    };
                    args.push(self.eval(a, ts)?);
                }
                if matches!(c.func.name, "label_replace" | "label_join")
                    && let Some(dst) = call_arg_texts(&self.query, c.func.name).get(1)
                    && literal_has_raw_high_bytes(dst)
                {
                    return Err(EvalError::exec(format!("invalid destination label name in {}(): {dst}", c.func.name)));
                }
                let before = (self.annotations.warnings.len(), self.annotations.infos.len());
                let mut ctx =
                    FnContext { ts, range_ms, args: &c.args.args, annotations: &mut self.annotations, memo: Some(&mut self.fn_memo) };
                let out = functions::call(c.func.name, args, &mut ctx);
                if (self.annotations.warnings.len(), self.annotations.infos.len()) != before {
                    let positions = call_arg_positions(&self.query, c.func.name);
                    let data_arg = c
                        .args
                        .args
                        .iter()
                        .rposition(|a| !matches!(unparen(a), Expr::NumberLiteral(_) | Expr::StringLiteral(_)))
                        .unwrap_or(0);
                    position_new_annotations(&mut self.annotations, before, &positions, data_arg);
                }
                out
            }
            Expr::Extension(_) => Err(EvalError::exec("extension expressions are not supported")),
        }
    }

    /// Whether `e`'s value is the same at every step but for its output
    /// timestamps, so it is evaluated once: literals, `@`-pinned selectors
    /// and subqueries, selectors that matched no series at all (a panel or
    /// `absent()` alert over a metric not there), and whatever is built
    /// from only such parts without reading the evaluation time.
    fn invariant(&mut self, e: &Expr) -> bool {
        let key = e as *const Expr as usize;
        if let Some(&v) = self.invariant.get(&key) {
            return v;
        }
        let v = match e {
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) => true,
            Expr::VectorSelector(vs) => vs.at.is_some() || self.selects_nothing(e, vs),
            Expr::MatrixSelector(m) => m.vs.at.is_some() || self.selects_nothing(e, &m.vs),
            Expr::Subquery(sq) => sq.at.is_some(),
            Expr::Paren(p) => self.invariant(&p.expr),
            Expr::Unary(u) => self.invariant(&u.expr),
            Expr::Binary(b) => self.invariant(&b.lhs) && self.invariant(&b.rhs),
            Expr::Aggregate(a) => self.invariant(&a.expr) && a.param.as_ref().is_none_or(|p| self.invariant(p)),
            Expr::Call(c) => !reads_eval_time(c.func.name) && c.args.args.iter().all(|a| self.invariant(a)),
            Expr::Extension(_) => false,
        };
        self.invariant.insert(key, v);
        v
    }

    /// Whether selector `vs` of node `e` matched no series in the whole
    /// query range (an unplanned one is left to fail when evaluated).
    fn selects_nothing(&mut self, e: &Expr, vs: &parser::VectorSelector) -> bool {
        self.selected(e, vs).is_ok_and(|f| f.series.is_empty())
    }

    /// The data fetched for selector `vs` of node `e`.
    fn selected(&mut self, e: &Expr, vs: &parser::VectorSelector) -> Result<Arc<Fetched>, EvalError> {
        let node = e as *const Expr as usize;
        if let Some(f) = self.selected.get(&node) {
            return Ok(f.clone());
        }
        let key = selector_key(vs);
        let f = self.data.get(&key).cloned().ok_or_else(|| EvalError::exec(format!("selector {key} was not planned")))?;
        self.selected.insert(node, f.clone());
        Ok(f)
    }
}

fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unparen(&p.expr),
        other => other,
    }
}

/// A cached step-invariant value re-stamped for the current step.
fn restamp(v: Value, ts: i64) -> Value {
    match v {
        Value::Scalar { v, .. } => Value::Scalar { t: ts, v },
        Value::String { v, .. } => Value::String { t: ts, v },
        Value::Vector(mut vs) => {
            vs.iter_mut().for_each(|s| s.t = ts);
            Value::Vector(vs)
        }
        other => other,
    }
}

/// Byte offset of the first call of `func` in `query`.
fn find_call(query: &str, func: &str) -> Option<usize> {
    let bytes = query.as_bytes();
    let mut from = 0;
    while let Some(i) = query[from..].find(func).map(|i| i + from) {
        let before_ok = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if before_ok && query[i + func.len()..].trim_start().starts_with('(') {
            return Some(i);
        }
        from = i + func.len();
    }
    None
}

/// ` (line:col)` of a byte offset, as Prometheus appends to annotations.
fn position(query: &str, i: usize) -> String {
    let line = query[..i].matches('\n').count() + 1;
    let col = query[..i].rfind('\n').map_or(i, |n| i - n - 1) + 1;
    format!(" ({line}:{col})")
}

/// Position of the first call of `func`; "" when not found.
pub fn call_position(query: &str, func: &str) -> String {
    find_call(query, func).map(|i| position(query, i)).unwrap_or_default()
}

/// Positions of the arguments of the first call of `func`: the call's text is
/// split at top-level commas (outside brackets and string literals).
pub fn call_arg_positions(query: &str, func: &str) -> Vec<String> {
    let Some(start) = find_call(query, func) else { return Vec::new() };
    let Some(open) = query[start..].find('(').map(|o| start + o) else { return Vec::new() };
    let bytes = query.as_bytes();
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut quote: Option<u8> = None;
    let mut arg_start = Some(open + 1);
    let mut i = open + 1;
    while i < bytes.len() {
        let c = bytes[i];
        if let Some(q) = quote {
            if c == b'\\' {
                i += 1;
            } else if c == q {
                quote = None;
            }
        } else {
            if let Some(s) = arg_start
                && !c.is_ascii_whitespace()
            {
                out.push(position(query, s.max(i)));
                arg_start = None;
            }
            match c {
                b'"' | b'\'' | b'`' => quote = Some(c),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' if depth == 0 => break,
                b')' | b']' | b'}' => depth -= 1,
                b',' if depth == 0 => arg_start = Some(i + 1),
                _ => {}
            }
        }
        i += 1;
    }
    out
}

/// Raw text of the arguments of the first call of `func`.
fn call_arg_texts<'q>(query: &'q str, func: &str) -> Vec<&'q str> {
    let Some(start) = find_call(query, func) else { return Vec::new() };
    let Some(open) = query[start..].find('(').map(|o| start + o) else { return Vec::new() };
    let bytes = query.as_bytes();
    let (mut out, mut depth, mut quote, mut from) = (Vec::new(), 0i32, None::<u8>, open + 1);
    let mut i = open + 1;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(_) if c == b'\\' => i += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                b'"' | b'\'' | b'`' => quote = Some(c),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' if depth == 0 => {
                    out.push(query[from..i].trim());
                    break;
                }
                b')' | b']' | b'}' => depth -= 1,
                b',' if depth == 0 => {
                    out.push(query[from..i].trim());
                    from = i + 1;
                }
                _ => {}
            },
        }
        i += 1;
    }
    out
}

/// Whether a quoted literal, read as Go reads it, holds bytes that are not
/// UTF-8 (`"\xff"`): the parser turns such escapes into characters, Go keeps bytes.
fn literal_has_raw_high_bytes(lit: &str) -> bool {
    let b = lit.as_bytes();
    (0..b.len().saturating_sub(3)).any(|i| {
        b[i] == b'\\'
            && ((b[i + 1] == b'x' && b[i + 2].is_ascii_hexdigit() && u8::from_str_radix(&lit[i + 2..i + 3], 16).is_ok_and(|d| d >= 8))
                || (matches!(b[i + 1], b'2' | b'3') && b[i + 2].is_ascii_digit()))
    })
}

/// Appends positions to the annotations a call added: the φ argument for
/// quantile warnings, otherwise the data (last non-literal) argument.
fn position_new_annotations(ann: &mut Annotations, before: (usize, usize), positions: &[String], data_arg: usize) {
    let fix = |m: &mut String| {
        if m.ends_with(')')
            && m.rsplit_once(" (").is_some_and(|(_, p)| {
                p.split(':').count() == 2 && p.trim_end_matches(')').split(':').all(|n| n.chars().all(|c| c.is_ascii_digit()))
            })
        {
            return;
        }
        let idx = if m.contains("quantile value should be between 0 and 1") { 0 } else { data_arg };
        if let Some(p) = positions.get(idx) {
            m.push_str(p);
        }
    };
    ann.warnings.iter_mut().skip(before.0).for_each(fix);
    ann.infos.iter_mut().skip(before.1).for_each(fix);
}

/// Names of the functions called anywhere in `e`.
fn called_functions(e: &Expr, out: &mut Vec<&'static str>) {
    match e {
        Expr::Call(c) => {
            out.push(c.func.name);
            c.args.args.iter().for_each(|a| called_functions(a, out));
        }
        Expr::Aggregate(a) => {
            called_functions(&a.expr, out);
            if let Some(p) = &a.param {
                called_functions(p, out);
            }
        }
        Expr::Binary(b) => {
            called_functions(&b.lhs, out);
            called_functions(&b.rhs, out);
        }
        Expr::Paren(p) => called_functions(&p.expr, out),
        Expr::Unary(u) => called_functions(&u.expr, out),
        Expr::Subquery(s) => called_functions(&s.expr, out),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Labels, stale_nan};
    use crate::tsdb::metrics::TsdbMetrics;
    use crate::tsdb::{Db, Options};

    /// Two series every 15s for 10 minutes: `m{i="0"}` = t/15s, `m{i="1"}` = 2*t/15s;
    /// `m{i="1"}` goes stale at 5m.
    fn db(dir: &std::path::Path) -> Db {
        let db = Db::open(dir, Options { retention_ms: None, ..Options::default() }, TsdbMetrics::default()).expect("open");
        let mut app = db.appender();
        for k in 0..=40i64 {
            let t = k * 15_000;
            app.append(None, &Labels::from_pairs([("__name__", "m"), ("i", "0")]), t, k as f64).expect("append");
            let v = if t == 300_000 { stale_nan() } else { 2.0 * k as f64 };
            if t <= 300_000 {
                app.append(None, &Labels::from_pairs([("__name__", "m"), ("i", "1")]), t, v).expect("append");
            }
        }
        app.commit().expect("commit");
        db
    }

    fn vector(r: QueryResult) -> Vec<(String, f64)> {
        match r.value {
            Value::Vector(v) => {
                let mut out: Vec<(String, f64)> = v.into_iter().map(|s| (s.metric.to_string(), s.v)).collect();
                out.sort_by(|a, b| a.0.cmp(&b.0));
                out
            }
            other => panic!("expected a vector, got {other:?}"),
        }
    }

    #[test]
    fn selectors_honour_lookback_staleness_offset_and_at() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = db(dir.path());
        let e = Engine::new(EngineOptions::default());
        let q = db.querier();
        // At 4m both series exist; at 5m30s m{i="1"} is stale and disappears.
        assert_eq!(vector(e.instant(&q, "m", 240_000).expect("query")), vec![(r#"m{i="0"}"#.into(), 16.0), (r#"m{i="1"}"#.into(), 32.0)]);
        assert_eq!(vector(e.instant(&q, "m", 330_000).expect("query")), vec![(r#"m{i="0"}"#.into(), 22.0)]);
        // Lookback: 5m after the last sample nothing is returned.
        assert!(vector(e.instant(&q, "m", 600_000 + 300_000).expect("query")).is_empty());
        assert_eq!(vector(e.instant(&q, r#"m{i="0"} offset 1m"#, 240_000).expect("query")), vec![(r#"m{i="0"}"#.into(), 12.0)]);
        assert_eq!(vector(e.instant(&q, r#"m{i="0"} @ 60"#, 600_000).expect("query")), vec![(r#"m{i="0"}"#.into(), 4.0)]);
    }

    #[test]
    fn binary_operators_match_and_drop_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = db(dir.path());
        let e = Engine::new(EngineOptions::default());
        let q = db.querier();
        assert_eq!(vector(e.instant(&q, r#"m{i="0"} * 2"#, 60_000).expect("query")), vec![(r#"{i="0"}"#.into(), 8.0)]);
        assert_eq!(vector(e.instant(&q, "m > 5", 60_000).expect("query")), vec![(r#"m{i="1"}"#.into(), 8.0)]);
        assert_eq!(
            vector(e.instant(&q, "m > bool 5", 60_000).expect("query")),
            vec![(r#"{i="0"}"#.into(), 0.0), (r#"{i="1"}"#.into(), 1.0)]
        );
        assert_eq!(
            vector(e.instant(&q, r#"m - on(i) m"#, 60_000).expect("query")),
            vec![(r#"{i="0"}"#.into(), 0.0), (r#"{i="1"}"#.into(), 0.0)]
        );
        let err = e.instant(&q, r#"m + ignoring(i) m"#, 60_000).expect_err("many-to-many");
        assert!(err.to_string().contains("many-to-many matching not allowed"), "{err}");
        assert_eq!(vector(e.instant(&q, r#"m{i="0"} or m"#, 60_000).expect("query")).len(), 2);
        assert_eq!(vector(e.instant(&q, r#"m unless m{i="1"}"#, 60_000).expect("query")), vec![(r#"m{i="0"}"#.into(), 4.0)]);
        assert!(matches!(e.instant(&q, "1 + 2 * 3", 0).expect("query").value, Value::Scalar { v, .. } if v == 7.0));
    }

    #[test]
    fn range_queries_use_idle_cores_only_when_the_work_is_large() {
        let e = Engine::new(EngineOptions {
            parallelism: Parallelism { threads: 4, min_work: 1000, min_steps: 10 },
            ..EngineOptions::default()
        });
        let _running = e.slot(Instant::now()).expect("slot");
        assert_eq!(e.workers(999, 100), 1, "small work stays on one thread");
        assert_eq!(e.workers(1000, 100), 4, "a lone query takes every core");
        assert_eq!(e.workers(1000, 25), 2, "each thread gets at least min_steps steps");
        let _other = e.slot(Instant::now()).expect("slot");
        let _third = e.slot(Instant::now()).expect("slot");
        assert_eq!(e.workers(1000, 100), 2, "cores busy with other queries are left to them");
        assert_eq!(split_steps(0, 10, 5, 2), vec![(0, 10), (20, 40)]);
        assert_eq!(split_steps(0, 10, 2, 4), vec![(0, 0), (10, 10)]);
    }

    #[test]
    fn parsed_queries_are_reused_and_the_cache_stays_bounded() {
        let cache = ParseCache::default();
        let first = cache.get("sum(rate(x[5m]))").expect("parse");
        assert!(Arc::ptr_eq(&first, &cache.get("sum(rate(x[5m]))").expect("parse")), "the same text is parsed once");
        assert!(matches!(cache.get("sum("), Err(QueryError::Parse(_))));
        assert!(matches!(cache.get("sum("), Err(QueryError::Parse(_))), "errors are not cached");
        for i in 0..PARSE_CACHE_ENTRIES + 10 {
            cache.get(&format!("x{i}")).expect("parse");
        }
        assert!(cache.0.lock().expect("lock").len() <= PARSE_CACHE_ENTRIES);
    }

    #[test]
    fn small_queries_run_inline_and_the_rest_are_given_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = db(dir.path());
        let q = db.querier();
        let e = Engine::new(EngineOptions {
            max_concurrent: 1,
            parallelism: Parallelism { threads: 1, min_work: 50, min_steps: 1 },
            ..EngineOptions::default()
        });
        let o = QueryOptions::default();
        // Small and selected by (in)equality: answered here, as a blocking
        // thread would answer.
        for query in [r#"m{i="0"}"#, r#"absent(nope{job="x"})"#, r#"sum(m{i!="1"})"#, "1 + 1"] {
            let inline = e.range_inline(&q, query, 300_000, 600_000, 60_000, &o).expect("run inline").expect("query");
            assert_eq!(inline, e.range(&q, query, 300_000, 600_000, 60_000).expect("query"), "{query}");
        }
        let inline = e.instant_inline(&q, "m", 240_000, &o).expect("run inline").expect("query");
        assert_eq!(inline, e.instant(&q, "m", 240_000).expect("query"));
        // Errors are answers too.
        assert!(matches!(e.range_inline(&q, "sum(", 0, 60_000, 15_000, &o), Some(Err(QueryError::Parse(_)))));
        // Given back: a regex, which may scan every value of a label ...
        assert!(e.range_inline(&q, r#"m{i=~"0"}"#, 300_000, 600_000, 60_000, &o).is_none());
        // ... more samples than min_work (62 stored) ...
        assert!(e.instant_inline(&q, "count_over_time(m[20m])", 600_000, &o).is_none());
        assert!(e.instant_inline(&q, r#"count_over_time(m{i="0"}[20m])"#, 600_000, &o).is_some(), "41 samples");
        // ... more series × steps than min_work (1 × 61) ...
        assert!(e.range_inline(&q, r#"m{i="0"}"#, 0, 600_000, 10_000, &o).is_none());
        // ... and no free query slot, which only a blocking thread may wait for.
        let _running = e.slot(Instant::now()).expect("slot");
        assert!(e.instant_inline(&q, "1", 0, &o).is_none());
    }

    #[test]
    fn a_query_the_same_at_every_step_is_stamped_at_each_and_counted_at_each() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = db(dir.path());
        let q = db.querier();
        let e = Engine::new(EngineOptions::default());
        for query in ["vector(2)", "2", r#"absent(nope{job="x"})"#, r#"m{i="0"} @ 60"#] {
            let Value::Matrix(m) = e.range(&q, query, 0, 90_000, 10_000).unwrap_or_else(|err| panic!("{query}: {err:?}")).value else {
                panic!("matrix")
            };
            assert_eq!(m.len(), 1, "{query}");
            let points: Vec<_> = m[0].points.iter().map(|p| p.t).collect();
            assert_eq!(points, (0..10).map(|k| k * 10_000).collect::<Vec<_>>(), "{query}: a point at every step");
            assert!(m[0].points.iter().all(|p| p.v == m[0].points[0].v), "{query}");
        }
        // One sample at each of ten steps fits a budget of ten; eleven do not.
        let e = Engine::new(EngineOptions { max_samples: 10, ..EngineOptions::default() });
        assert!(e.range(&q, "vector(2)", 0, 90_000, 10_000).is_ok());
        let err = e.range(&q, "vector(2)", 0, 100_000, 10_000).expect_err("too many samples");
        assert_eq!(err, QueryError::Eval(EvalError::TooManySamples));
    }

    #[test]
    fn a_query_waiting_for_a_slot_gets_it_when_one_ends() {
        let e = Engine::new(EngineOptions { max_concurrent: 1, ..EngineOptions::default() });
        let running = e.slot(Instant::now()).expect("slot");
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let begun = Instant::now();
                e.slot(begun + Duration::from_secs(30)).map(|_| begun.elapsed())
            });
            while e.slots.lock().expect("lock").waiting == 0 {
                std::thread::yield_now();
            }
            drop(running);
            let waited = waiter.join().expect("waiter").expect("slot");
            assert!(waited < Duration::from_secs(15), "woken when the running query ended, not at its deadline: {waited:?}");
        });
    }

    #[test]
    fn a_failing_run_of_steps_reports_its_own_error_not_the_abort_of_the_others() {
        let ok = || Ok((vec![(Labels::from_pairs([("a", "1")]), vec![Point::new(0, 1.0)])], Annotations::default()));
        let real = EvalError::exec("vector cannot contain metrics with the same labelset");
        let merged = merge_chunks(vec![Err(EvalError::Canceled), Err(real.clone()), ok()]);
        assert_eq!(merged.map(|_| ()), Err(real));
        let merged = merge_chunks(vec![ok(), ok()]).expect("merged");
        assert_eq!(merged.0.len(), 1);
        assert_eq!(merged.0[0].1.len(), 2, "points of both runs joined");
    }

    #[test]
    fn a_cancelled_query_stops_with_canceled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = db(dir.path());
        let e = Engine::new(EngineOptions::default());
        let cancel = Arc::new(AtomicBool::new(true));
        let o = QueryOptions { cancel: Some(cancel.clone()), ..QueryOptions::default() };
        let err = e.range_with(&db.querier(), "m", 0, 600_000, 15_000, &o).expect_err("cancelled");
        assert_eq!(err, QueryError::Eval(EvalError::Canceled));
        cancel.store(false, Ordering::Relaxed);
        assert!(e.range_with(&db.querier(), "m", 0, 600_000, 15_000, &o).is_ok());
    }

    #[test]
    fn range_queries_and_subqueries_walk_steps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = db(dir.path());
        let e = Engine::new(EngineOptions::default());
        let q = db.querier();
        let r = e.range(&q, r#"m{i="0"}"#, 0, 120_000, 30_000).expect("range");
        let Value::Matrix(m) = r.value else { panic!("matrix") };
        assert_eq!(m[0].points.iter().map(|p| p.v).collect::<Vec<_>>(), vec![0.0, 2.0, 4.0, 6.0, 8.0]);
        let r = e.instant(&q, r#"m{i="0"}[1m:30s]"#, 120_000).expect("subquery");
        let Value::Matrix(m) = r.value else { panic!("matrix") };
        assert_eq!(m[0].points.iter().map(|p| (p.t, p.v)).collect::<Vec<_>>(), vec![(90_000, 6.0), (120_000, 8.0)]);
        let err = e.range(&q, "m[1m]", 0, 60_000, 15_000).expect_err("matrix not allowed");
        assert!(err.to_string().contains("invalid expression type \"range vector\""), "{err}");
    }
}
