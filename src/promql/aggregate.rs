//! PromQL aggregation operators over float samples, one evaluation step at a time.
//!
//! Semantics follow Prometheus 3.x (`sum`, `avg`, `min`, `max`, `count`, `group`,
//! `stddev`, `stdvar`, `quantile`, `topk`, `bottomk`, `count_values`, `limitk`,
//! `limit_ratio`), down to the details that decide exact values and order:
//! Kahan-compensated sums, the switch from direct to incremental mean when a
//! running sum would overflow, NaN handling in `min`/`max`/`topk`/`bottomk`,
//! the output order of instant queries (Go's heap and sort are reproduced, so
//! ties come out in the same order), and the label-set hash `limit_ratio`
//! samples by.
//!
//! Grouping never builds a label set for a sample whose group already exists:
//! each sample's grouping labels are encoded into a reused byte buffer, found
//! by hash (collisions are checked against the group's stored encoding), and
//! output labels are built once per group.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};

use promql_parser::parser::{LabelModifier, token, token::TokenType};
use xxhash_rust::xxh3::xxh3_64;

use crate::model::labels::METRIC_NAME;
use crate::model::{Label, Labels};
use crate::promql::float::kahan_inc;
use crate::promql::gofmt::{go_fmt_g, go_quote};
use crate::promql::{
    Annotations,
    value::{EvalError, Sample, Value},
};

/// Aggregates one step's instant vector.
///
/// `param` is the evaluated parameter (a scalar for `topk`, `bottomk`,
/// `quantile`, `limitk` and `limit_ratio`, a string for `count_values`);
/// `modifier` is the `by (...)`/`without (...)` clause; `ts` (ms) is the
/// evaluation time stamped on every output sample. The engine evaluates one
/// step at a time, so everything Prometheus decides per query from the
/// parameter (errors, warnings) is decided here from this step's value.
///
/// Output order matches what Prometheus returns for an instant query: groups
/// in order of their first input sample; within a group, `topk` descending
/// and `bottomk` ascending (NaN last), `limitk`/`limit_ratio` in Prometheus'
/// heap order. `topk`, `bottomk`, `limitk` and `limit_ratio` return input
/// samples unchanged (labels and `drop_name` included); the other operators
/// return one sample per group labelled with the grouping labels, whose
/// `drop_name` is set when any input of the group had it set (so
/// `sum by (__name__) (rate(x[5m]))` still drops the name at the end).
pub fn aggregate(
    op: TokenType,
    param: Option<&Value>,
    modifier: Option<&LabelModifier>,
    input: Vec<Sample>,
    ts: i64,
    annotations: &mut Annotations,
) -> Result<Vec<Sample>, EvalError> {
    aggregate_with(op, param, modifier, input, ts, annotations, None)
}

/// The groups of one aggregation node across the steps of a query: the
/// same shared label sets recur at every step of a range query, so each
/// input's group is found by identity after its first step, without
/// encoding or hashing its key again. Inputs are kept alive so their
/// identities cannot be reused.
#[derive(Default)]
pub struct GroupMemo {
    /// Input identity → (the input, its query-wide group number).
    group_of: crate::tsdb::idhash::IdMap<usize, (Labels, usize)>,
    /// Query-wide groups by encoded key.
    groups: GroupIndex,
}

/// [`aggregate`] reusing group keys across the steps of one query.
#[allow(clippy::too_many_arguments)]
pub fn aggregate_with(
    op: TokenType,
    param: Option<&Value>,
    modifier: Option<&LabelModifier>,
    input: Vec<Sample>,
    ts: i64,
    annotations: &mut Annotations,
    memo: Option<&mut GroupMemo>,
) -> Result<Vec<Sample>, EvalError> {
    let grouping = Grouping::new(modifier);
    let kind = match op.id() {
        token::T_SUM => Some(Simple::Sum),
        token::T_AVG => Some(Simple::Avg),
        token::T_COUNT => Some(Simple::Count),
        token::T_MIN => Some(Simple::Min),
        token::T_MAX => Some(Simple::Max),
        token::T_GROUP => Some(Simple::Group),
        token::T_STDDEV => Some(Simple::Stddev),
        token::T_STDVAR => Some(Simple::Stdvar),
        _ => None,
    };
    if let Some(kind) = kind {
        return Ok(aggregate_simple(kind, &grouping, input, ts, memo));
    }
    match op.id() {
        token::T_QUANTILE => {
            let q = scalar_param("quantile", param)?;
            // Prometheus warns for an invalid φ even when the input is empty.
            if q.is_nan() || !(0.0..=1.0).contains(&q) {
                annotations.warn(format!("PromQL warning: quantile value should be between 0 and 1, got {}", go_fmt_g(q, None)));
            }
            Ok(aggregate_simple(Simple::Quantile(q), &grouping, input, ts, memo))
        }
        token::T_TOPK => aggregate_k(KOp::Top, param, "topk", &grouping, input, ts),
        token::T_BOTTOMK => aggregate_k(KOp::Bottom, param, "bottomk", &grouping, input, ts),
        token::T_LIMITK => aggregate_k(KOp::Limit, param, "limitk", &grouping, input, ts),
        token::T_LIMIT_RATIO => {
            let r = scalar_param("limit_ratio", param)?;
            if r == 0.0 {
                return Ok(Vec::new());
            }
            if r.is_nan() {
                return Err(EvalError::exec("Ratio value is NaN"));
            }
            let capped = r.clamp(-1.0, 1.0);
            if capped != r {
                annotations.warn(format!(
                    "PromQL warning: ratio value should be between -1 and 1, got {}, capping to {}",
                    go_fmt_g(r, None),
                    go_fmt_g(capped, None)
                ));
            }
            Ok(select_k(KOp::Ratio(capped), usize::MAX, &grouping, input, ts))
        }
        token::T_COUNT_VALUES => {
            let label = match param {
                Some(Value::String { v, .. }) => v.as_str(),
                other => return Err(param_type_error("count_values", "string", other)),
            };
            // Prometheus validates label names as UTF-8; a Rust string always
            // is, so only the empty name is invalid.
            if label.is_empty() {
                return Err(EvalError::exec(format!("invalid label name {}", go_quote(label))));
            }
            Ok(count_values(label, grouping, input, ts))
        }
        _ => Err(EvalError::exec(format!("operator {op} is not an aggregation operator"))),
    }
}

// ---------------------------------------------------------------------------
// Parameters.

fn scalar_param(op: &str, param: Option<&Value>) -> Result<f64, EvalError> {
    match param {
        Some(Value::Scalar { v, .. }) => Ok(*v),
        other => Err(param_type_error(op, "scalar", other)),
    }
}

fn param_type_error(op: &str, want: &str, got: Option<&Value>) -> EvalError {
    let got = got.map_or("nothing", Value::type_name);
    EvalError::exec(format!("expected {want} parameter for {op}, got {got}"))
}

/// The `k` of `topk`/`bottomk`/`limitk`, checked as Prometheus does: `None`
/// when it selects nothing (k < 1), an error for NaN or k beyond int64.
fn k_param(op: &str, param: Option<&Value>) -> Result<Option<usize>, EvalError> {
    // float64(math.MaxInt64) == 2^63.
    const MAX_INT64_F: f64 = 9_223_372_036_854_775_808.0;
    let k = scalar_param(op, param)?;
    if k < 1.0 {
        return Ok(None);
    }
    if k.is_nan() {
        return Err(EvalError::exec("Parameter value is NaN"));
    }
    if k >= MAX_INT64_F {
        return Err(EvalError::exec(format!("Scalar value {} overflows int64", go_fmt_g(k, None))));
    }
    // Truncates toward zero like Go's int64(k); k is in [1, 2^63).
    Ok(Some(usize::try_from(k as i64).unwrap_or(usize::MAX)))
}

// ---------------------------------------------------------------------------
// Grouping.

/// A `by`/`without` clause with its names sorted and de-duplicated.
struct Grouping {
    names: Vec<String>,
    without: bool,
}

impl Grouping {
    fn new(modifier: Option<&LabelModifier>) -> Self {
        let (names, without) = match modifier {
            Some(LabelModifier::Include(l)) => (l.labels.clone(), false),
            Some(LabelModifier::Exclude(l)) => (l.labels.clone(), true),
            None => (Vec::new(), false),
        };
        let mut g = Grouping { names, without };
        g.names.sort_unstable();
        g.names.dedup();
        g
    }

    /// Whether every sample falls into the single, label-less group.
    fn is_single(&self) -> bool {
        !self.without && self.names.is_empty()
    }

    /// Whether label `name` is part of the grouping key (and output labels).
    fn selects(&self, name: &str) -> bool {
        let listed = self.names.binary_search_by(|n| n.as_str().cmp(name)).is_ok();
        if self.without { !listed && name != METRIC_NAME } else { listed }
    }

    /// The grouping labels of a sample, in label order.
    fn key<'a>(&'a self, labels: &'a Labels) -> impl Iterator<Item = (&'a str, &'a str)> + Clone {
        labels.iter().filter(|l| self.selects(&l.name)).map(|l| (l.name.as_str(), l.value.as_str()))
    }

    /// Encodes the grouping key of `labels` into `buf` as `name 0xff value
    /// 0xff` per grouping label in label order. UTF-8 never contains 0xff, so
    /// equal encodings mean equal keys. `set` overrides (or adds) one label
    /// first, as `count_values` does with its value label.
    fn write_key(&self, labels: &Labels, set: Option<(&str, &str)>, buf: &mut Vec<u8>) {
        fn put(buf: &mut Vec<u8>, n: &str, v: &str) {
            buf.extend_from_slice(n.as_bytes());
            buf.push(0xff);
            buf.extend_from_slice(v.as_bytes());
            buf.push(0xff);
        }
        buf.clear();
        if !self.without {
            // Few names: look each up rather than scanning every label.
            for n in &self.names {
                let v = match set {
                    Some((sn, sv)) if sn == n => sv,
                    _ => labels.get(n),
                };
                if !v.is_empty() {
                    put(buf, n, v);
                }
            }
            return;
        }
        match set {
            None => self.key(labels).for_each(|(n, v)| put(buf, n, v)),
            Some((sn, sv)) => with_label(labels, sn, sv).filter(|(n, _)| self.selects(n)).for_each(|(n, v)| put(buf, n, v)),
        }
    }
}

fn labels_from_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Labels {
    Labels::from_sorted(pairs.map(|(n, v)| Label::new(n, v)).collect())
}

/// Hashes already hashed keys by passing them through.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

const NO_GROUP: usize = usize::MAX;

/// Groups numbered in order of first appearance, found by the hash of their
/// encoded key; groups whose hashes collide are chained and told apart by
/// comparing the encoded keys, which are kept back to back in one buffer.
#[derive(Default)]
struct GroupIndex {
    by_hash: HashMap<u64, usize, BuildHasherDefault<KeyHasher>>,
    /// Encoded keys of all groups; group g's ends at `key_ends[g]`.
    keys: Vec<u8>,
    key_ends: Vec<usize>,
    /// The first input sample of each group.
    reps: Vec<usize>,
    /// The next group with the same hash, or `NO_GROUP`.
    next: Vec<usize>,
}

impl GroupIndex {
    /// The group of input sample `sample`, whose encoded grouping key is
    /// `key`, and whether the group is new.
    fn find_or_insert(&mut self, key: &[u8], sample: usize) -> (usize, bool) {
        self.find_or_insert_hashed(xxh3_64(key), key, sample)
    }

    fn find_or_insert_hashed(&mut self, hash: u64, key: &[u8], sample: usize) -> (usize, bool) {
        let new = self.reps.len();
        match self.by_hash.entry(hash) {
            Entry::Vacant(e) => {
                e.insert(new);
            }
            Entry::Occupied(e) => {
                let mut g = *e.get();
                loop {
                    let start = if g == 0 { 0 } else { self.key_ends[g - 1] };
                    if self.keys.get(start..self.key_ends[g]) == Some(key) {
                        return (g, false);
                    }
                    if self.next[g] == NO_GROUP {
                        break;
                    }
                    g = self.next[g];
                }
                self.next[g] = new;
            }
        }
        self.keys.extend_from_slice(key);
        self.key_ends.push(self.keys.len());
        self.reps.push(sample);
        self.next.push(NO_GROUP);
        (new, true)
    }
}

/// Which group each input sample belongs to.
struct Groups {
    of_sample: Vec<usize>,
    /// The first input sample of each group, groups in order of appearance.
    reps: Vec<usize>,
}

fn assign_groups(grouping: &Grouping, input: &[Sample], memo: Option<&mut GroupMemo>) -> Groups {
    if grouping.is_single() {
        return Groups { of_sample: vec![0; input.len()], reps: if input.is_empty() { Vec::new() } else { vec![0] } };
    }
    let mut index = GroupIndex::default();
    let mut of_sample = Vec::with_capacity(input.len());
    let mut buf = Vec::with_capacity(256);
    match memo {
        Some(m) => {
            // Query-wide group → this step's group, numbered in order of appearance.
            let mut local = vec![NO_GROUP; m.groups.reps.len()];
            for (i, s) in input.iter().enumerate() {
                let id = s.metric.identity();
                let g = match m.group_of.get(&id) {
                    Some(&(_, g)) => g,
                    None => {
                        grouping.write_key(&s.metric, None, &mut buf);
                        let (g, _) = m.groups.find_or_insert(&buf, i);
                        m.group_of.insert(id, (s.metric.clone(), g));
                        g
                    }
                };
                if g >= local.len() {
                    local.resize(g + 1, NO_GROUP);
                }
                if local[g] == NO_GROUP {
                    local[g] = index.reps.len();
                    index.reps.push(i);
                }
                of_sample.push(local[g]);
            }
        }
        None => {
            for (i, s) in input.iter().enumerate() {
                grouping.write_key(&s.metric, None, &mut buf);
                let (g, _) = index.find_or_insert(&buf, i);
                of_sample.push(g);
            }
        }
    }
    Groups { of_sample, reps: index.reps }
}

// ---------------------------------------------------------------------------
// sum, avg, count, min, max, group, stddev, stdvar, quantile.

#[derive(Clone, Copy, PartialEq, Debug)]
enum Simple {
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    Quantile(f64),
}

/// Running state of one output group.
#[derive(Default)]
struct Acc {
    /// Sum, min/max, or (stddev/stdvar) the sum of squared deviations.
    value: f64,
    /// Running mean (stddev/stdvar, or avg after switching to incremental mean).
    mean: f64,
    /// Kahan compensation term.
    comp: f64,
    count: f64,
    /// avg only: the running sum would overflow, so the mean is kept instead.
    incremental: bool,
    drop_name: bool,
    /// quantile only: the group's values.
    values: Vec<f64>,
}

impl Acc {
    fn first(kind: Simple, f: f64, drop_name: bool) -> Acc {
        let mut a = Acc { value: f, mean: f, count: 1.0, drop_name, ..Acc::default() };
        match kind {
            Simple::Stddev | Simple::Stdvar => {
                a.value = if f.is_finite() { 0.0 } else { f64::NAN };
            }
            Simple::Group => a.value = 1.0,
            Simple::Quantile(_) => a.values.push(f),
            _ => {}
        }
        a
    }

    fn add(&mut self, kind: Simple, f: f64, drop_name: bool) {
        self.drop_name |= drop_name;
        match kind {
            Simple::Sum => (self.value, self.comp) = kahan_inc(f, self.value, self.comp),
            Simple::Avg => {
                self.count += 1.0;
                if !self.incremental {
                    let (sum, c) = kahan_inc(f, self.value, self.comp);
                    if !sum.is_infinite() {
                        (self.value, self.comp) = (sum, c);
                        return;
                    }
                    // The direct sum would overflow: continue with an
                    // incremental mean of the values so far.
                    self.incremental = true;
                    self.mean = self.value / (self.count - 1.0);
                    self.comp /= self.count - 1.0;
                }
                let q = (self.count - 1.0) / self.count;
                (self.mean, self.comp) = kahan_inc(f / self.count, q * self.mean, q * self.comp);
            }
            Simple::Count => self.count += 1.0,
            Simple::Group => {}
            Simple::Max => {
                if self.value < f || self.value.is_nan() {
                    self.value = f;
                }
            }
            Simple::Min => {
                if self.value > f || self.value.is_nan() {
                    self.value = f;
                }
            }
            Simple::Stddev | Simple::Stdvar => {
                // Welford's online variance.
                self.count += 1.0;
                let delta = f - self.mean;
                self.mean += delta / self.count;
                self.value += delta * (f - self.mean);
            }
            Simple::Quantile(_) => self.values.push(f),
        }
    }

    fn result(&self, kind: Simple) -> f64 {
        match kind {
            Simple::Sum => self.value + self.comp,
            Simple::Avg if self.incremental => self.mean + self.comp,
            Simple::Avg => self.value / self.count + self.comp / self.count,
            Simple::Count => self.count,
            Simple::Stdvar => self.value / self.count,
            Simple::Stddev => (self.value / self.count).sqrt(),
            Simple::Quantile(q) => quantile(q, &self.values),
            Simple::Min | Simple::Max | Simple::Group => self.value,
        }
    }
}

fn aggregate_simple(kind: Simple, grouping: &Grouping, input: Vec<Sample>, ts: i64, memo: Option<&mut GroupMemo>) -> Vec<Sample> {
    let groups = assign_groups(grouping, &input, memo);
    let mut accs: Vec<Option<Acc>> = Vec::with_capacity(groups.reps.len());
    accs.resize_with(groups.reps.len(), || None);
    for (s, &g) in input.iter().zip(&groups.of_sample) {
        match &mut accs[g] {
            Some(a) => a.add(kind, s.v, s.drop_name),
            slot => *slot = Some(Acc::first(kind, s.v, s.drop_name)),
        }
    }
    let mut out = Vec::with_capacity(accs.len());
    for (acc, &rep) in accs.iter().zip(&groups.reps) {
        let Some(acc) = acc else { continue };
        let metric = if grouping.is_single() { Labels::empty() } else { labels_from_pairs(grouping.key(&input[rep].metric)) };
        out.push(Sample { metric, t: ts, v: acc.result(kind), drop_name: acc.drop_name });
    }
    out
}

/// The φ-quantile of `values` (in input order), interpolating linearly
/// between the closest ranks; NaN ranks below every number. φ < 0 gives
/// -Inf, φ > 1 gives +Inf, NaN φ or no values give NaN. Values are ordered
/// with Go's sort like Prometheus, so even the sign of a zero result agrees.
pub(crate) fn quantile(q: f64, values: &[f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    let mut order: Vec<usize> = (0..values.len()).collect();
    let less = |a: usize, b: usize| values[a].is_nan() || values[a] < values[b];
    GoSort { h: &mut order, less }.sort();
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    let at = |i: f64| order.get(i as usize).and_then(|&j| values.get(j)).copied().unwrap_or(f64::NAN);
    at(lower) * (1.0 - weight) + at(upper) * weight
}

// ---------------------------------------------------------------------------
// topk, bottomk, limitk, limit_ratio.

#[derive(Clone, Copy, PartialEq, Debug)]
enum KOp {
    Top,
    Bottom,
    Limit,
    /// The ratio, already capped to [-1, 1] and non-zero.
    Ratio(f64),
}

fn aggregate_k(
    op: KOp,
    param: Option<&Value>,
    name: &str,
    grouping: &Grouping,
    input: Vec<Sample>,
    ts: i64,
) -> Result<Vec<Sample>, EvalError> {
    match k_param(name, param)? {
        None => Ok(Vec::new()),
        Some(k) => Ok(select_k(op, k.min(input.len()), grouping, input, ts)),
    }
}

/// Go's `container/heap` sift-up over sample indexes.
fn heap_up(h: &mut [usize], mut j: usize, less: &impl Fn(usize, usize) -> bool) {
    while j > 0 {
        let i = (j - 1) / 2;
        if !less(h[j], h[i]) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

/// Go's `container/heap` sift-down; reports whether the element moved.
fn heap_down(h: &mut [usize], i0: usize, less: &impl Fn(usize, usize) -> bool) -> bool {
    let n = h.len();
    let mut i = i0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        if j1 + 1 < n && less(h[j1 + 1], h[j1]) {
            j = j1 + 1;
        }
        if !less(h[j], h[i]) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
    i > i0
}

fn heap_push(h: &mut Vec<usize>, x: usize, less: &impl Fn(usize, usize) -> bool) {
    h.push(x);
    let last = h.len() - 1;
    heap_up(h, last, less);
}

fn heap_fix(h: &mut [usize], i: usize, less: &impl Fn(usize, usize) -> bool) {
    if !heap_down(h, i, less) {
        heap_up(h, i, less);
    }
}

/// Sorts a group's final heap into output order exactly like Prometheus'
/// `sort.Sort(sort.Reverse(heap))`, so that ties (and NaNs) come out in the
/// same order: Go's pattern-defeating quicksort is reproduced step by step.
fn sort_output(h: &mut [usize], vals: &[f64], descending: bool) {
    // Go's reversed heap ordering: "x goes before y".
    let before = |x: usize, y: usize| {
        let (vx, vy) = (vals[x], vals[y]);
        vy.is_nan() || if descending { vy < vx } else { vy > vx }
    };
    GoSort { h, less: before }.sort();
}

/// Go's `sort.Sort` (pdqsort as of Go 1.19+) over a slice of sample indexes
/// with a caller-supplied `less`, reproduced operation by operation so that
/// the order of equal elements matches Go's. Every loop is bounded by
/// indexes, so an inconsistent `less` (NaN) cannot run out of bounds.
struct GoSort<'a, F: Fn(usize, usize) -> bool> {
    h: &'a mut [usize],
    less: F,
}

#[derive(PartialEq, Clone, Copy)]
enum SortedHint {
    Unknown,
    Increasing,
    Decreasing,
}

impl<F: Fn(usize, usize) -> bool> GoSort<'_, F> {
    fn less(&self, i: usize, j: usize) -> bool {
        (self.less)(self.h[i], self.h[j])
    }

    fn swap(&mut self, i: usize, j: usize) {
        self.h.swap(i, j);
    }

    fn sort(&mut self) {
        let n = self.h.len();
        if n <= 1 {
            return;
        }
        let limit = (usize::BITS - n.leading_zeros()) as usize;
        self.pdqsort(0, n, limit);
    }

    fn insertion_sort(&mut self, a: usize, b: usize) {
        for i in a + 1..b {
            let mut j = i;
            while j > a && self.less(j, j - 1) {
                self.swap(j, j - 1);
                j -= 1;
            }
        }
    }

    fn sift_down(&mut self, lo: usize, hi: usize, first: usize) {
        let mut root = lo;
        loop {
            let mut child = 2 * root + 1;
            if child >= hi {
                return;
            }
            if child + 1 < hi && self.less(first + child, first + child + 1) {
                child += 1;
            }
            if !self.less(first + root, first + child) {
                return;
            }
            self.swap(first + root, first + child);
            root = child;
        }
    }

    fn heap_sort(&mut self, a: usize, b: usize) {
        let hi = b - a;
        for i in (0..=(hi.saturating_sub(1)) / 2).rev() {
            self.sift_down(i, hi, a);
        }
        for i in (0..hi).rev() {
            self.swap(a, a + i);
            self.sift_down(0, i, a);
        }
    }

    fn pdqsort(&mut self, mut a: usize, mut b: usize, mut limit: usize) {
        const MAX_INSERTION: usize = 12;
        let mut was_balanced = true;
        let mut was_partitioned = true;
        loop {
            let length = b - a;
            if length <= MAX_INSERTION {
                self.insertion_sort(a, b);
                return;
            }
            if limit == 0 {
                self.heap_sort(a, b);
                return;
            }
            if !was_balanced {
                self.break_patterns(a, b);
                limit -= 1;
            }
            let (mut pivot, mut hint) = self.choose_pivot(a, b);
            if hint == SortedHint::Decreasing {
                self.reverse_range(a, b);
                pivot = (b - 1) - (pivot - a);
                hint = SortedHint::Increasing;
            }
            if was_balanced && was_partitioned && hint == SortedHint::Increasing && self.partial_insertion_sort(a, b) {
                return;
            }
            if a > 0 && !self.less(a - 1, pivot) {
                a = self.partition_equal(a, b, pivot);
                continue;
            }
            let (mid, already) = self.partition(a, b, pivot);
            was_partitioned = already;
            let (left, right) = (mid - a, b - mid);
            let threshold = length / 8;
            if left < right {
                was_balanced = left >= threshold;
                self.pdqsort(a, mid, limit);
                a = mid + 1;
            } else {
                was_balanced = right >= threshold;
                self.pdqsort(mid + 1, b, limit);
                b = mid;
            }
        }
    }

    /// Partitions `[a, b)` around the pivot; returns its final position and
    /// whether nothing had to move.
    fn partition(&mut self, a: usize, b: usize, pivot: usize) -> (usize, bool) {
        self.swap(a, pivot);
        // i and j are inclusive bounds of what is left to partition; j never
        // drops below a because i starts above it.
        let (mut i, mut j) = (a + 1, b - 1);
        while i <= j && self.less(i, a) {
            i += 1;
        }
        while i <= j && !self.less(j, a) {
            j -= 1;
        }
        if i > j {
            self.swap(j, a);
            return (j, true);
        }
        self.swap(i, j);
        i += 1;
        j -= 1;
        loop {
            while i <= j && self.less(i, a) {
                i += 1;
            }
            while i <= j && !self.less(j, a) {
                j -= 1;
            }
            if i > j {
                break;
            }
            self.swap(i, j);
            i += 1;
            j -= 1;
        }
        self.swap(j, a);
        (j, false)
    }

    fn partition_equal(&mut self, a: usize, b: usize, pivot: usize) -> usize {
        self.swap(a, pivot);
        let (mut i, mut j) = (a + 1, b - 1);
        loop {
            while i <= j && !self.less(a, i) {
                i += 1;
            }
            while i <= j && self.less(a, j) {
                j -= 1;
            }
            if i > j {
                return i;
            }
            self.swap(i, j);
            i += 1;
            j -= 1;
        }
    }

    fn partial_insertion_sort(&mut self, a: usize, b: usize) -> bool {
        const MAX_STEPS: usize = 5;
        const SHORTEST_SHIFTING: usize = 50;
        let mut i = a + 1;
        for _ in 0..MAX_STEPS {
            while i < b && !self.less(i, i - 1) {
                i += 1;
            }
            if i == b {
                return true;
            }
            if b - a < SHORTEST_SHIFTING {
                return false;
            }
            self.swap(i, i - 1);
            // Go shifts down to index 1 of the whole slice, not to `a`.
            if i - a >= 2 {
                let mut j = i - 1;
                while j >= 1 && self.less(j, j - 1) {
                    self.swap(j, j - 1);
                    j -= 1;
                }
            }
            if b - i >= 2 {
                let mut j = i + 1;
                while j < b && self.less(j, j - 1) {
                    self.swap(j, j - 1);
                    j += 1;
                }
            }
        }
        false
    }

    fn break_patterns(&mut self, a: usize, b: usize) {
        let length = b - a;
        if length < 8 {
            return;
        }
        let mut random = length as u64;
        let modulus = 1usize << (usize::BITS - length.leading_zeros());
        let mid = a + (length / 4) * 2;
        for idx in mid - 1..=mid + 1 {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            let mut other = (random as usize) & (modulus - 1);
            if other >= length {
                other -= length;
            }
            self.swap(idx, a + other);
        }
    }

    fn choose_pivot(&mut self, a: usize, b: usize) -> (usize, SortedHint) {
        const SHORTEST_NINTHER: usize = 50;
        const MAX_SWAPS: usize = 4 * 3;
        let l = b - a;
        let mut swaps = 0;
        let mut i = a + l / 4;
        let mut j = a + l / 4 * 2;
        let mut k = a + l / 4 * 3;
        if l >= 8 {
            if l >= SHORTEST_NINTHER {
                i = self.median(i - 1, i, i + 1, &mut swaps);
                j = self.median(j - 1, j, j + 1, &mut swaps);
                k = self.median(k - 1, k, k + 1, &mut swaps);
            }
            j = self.median(i, j, k, &mut swaps);
        }
        let hint = match swaps {
            0 => SortedHint::Increasing,
            MAX_SWAPS => SortedHint::Decreasing,
            _ => SortedHint::Unknown,
        };
        (j, hint)
    }

    fn order2(&self, a: usize, b: usize, swaps: &mut usize) -> (usize, usize) {
        if self.less(b, a) {
            *swaps += 1;
            (b, a)
        } else {
            (a, b)
        }
    }

    fn median(&self, a: usize, b: usize, c: usize, swaps: &mut usize) -> usize {
        let (a, b) = self.order2(a, b, swaps);
        let (b, c) = self.order2(b, c, swaps);
        let _ = c;
        let (_, b) = self.order2(a, b, swaps);
        b
    }

    fn reverse_range(&mut self, a: usize, b: usize) {
        self.h[a..b].reverse();
    }
}

/// Whether `limit_ratio` keeps a series whose hash maps to `offset` in [0, 1]:
/// a positive ratio keeps offsets below it, a negative one the complement
/// (offsets at or above 1 + ratio).
fn ratio_keeps(ratio: f64, offset: f64) -> bool {
    (ratio >= 0.0 && offset < ratio) || (ratio < 0.0 && offset >= 1.0 + ratio)
}

fn select_k(op: KOp, k: usize, grouping: &Grouping, input: Vec<Sample>, ts: i64) -> Vec<Sample> {
    if k == 0 || input.is_empty() {
        return Vec::new();
    }
    let groups = assign_groups(grouping, &input, None);
    let vals: Vec<f64> = input.iter().map(|s| s.v).collect();
    // Prometheus' heap orderings: NaN counts as the least element for topk's
    // min-heap and as the greatest for bottomk's max-heap, so NaNs are the
    // first to be replaced.
    let min_heap_less = |a: usize, b: usize| vals[a].is_nan() || vals[a] < vals[b];
    let max_heap_less = |a: usize, b: usize| vals[a].is_nan() || vals[a] > vals[b];
    let mut heaps: Vec<Vec<usize>> = vec![Vec::new(); groups.reps.len()];
    let mut buf = Vec::with_capacity(256);
    for (i, &g) in groups.of_sample.iter().enumerate() {
        let h = &mut heaps[g];
        let v = vals[i];
        match op {
            KOp::Top if h.len() < k => heap_push(h, i, &min_heap_less),
            KOp::Bottom if h.len() < k => heap_push(h, i, &max_heap_less),
            KOp::Top => {
                let top = vals[h[0]];
                if top < v || (top.is_nan() && !v.is_nan()) {
                    h[0] = i;
                    if k > 1 {
                        heap_fix(h, 0, &min_heap_less);
                    }
                }
            }
            KOp::Bottom => {
                let top = vals[h[0]];
                if top > v || (top.is_nan() && !v.is_nan()) {
                    h[0] = i;
                    if k > 1 {
                        heap_fix(h, 0, &max_heap_less);
                    }
                }
            }
            KOp::Limit => {
                if h.len() < k {
                    heap_push(h, i, &min_heap_less);
                }
            }
            KOp::Ratio(r) => {
                if ratio_keeps(r, ratio_offset(&input[i].metric, &mut buf)) {
                    heap_push(h, i, &min_heap_less);
                }
            }
        }
    }

    let mut slots: Vec<Option<Sample>> = input.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(heaps.iter().map(Vec::len).sum());
    for mut h in heaps {
        match op {
            KOp::Top => sort_output(&mut h, &vals, true),
            KOp::Bottom => sort_output(&mut h, &vals, false),
            KOp::Limit | KOp::Ratio(_) => {}
        }
        for i in h {
            if let Some(mut s) = slots[i].take() {
                s.t = ts;
                out.push(s);
            }
        }
    }
    out
}

/// The series' sampling offset in [0, 1] for `limit_ratio`: its label-set
/// hash divided by the largest u64, as Prometheus computes it.
///
/// Prometheus' `labels.Hash()` in its default build (`stringlabels`) is
/// xxHash64 over the packed label encoding: for each label in order, the name
/// length, the name, the value length, the value, where a length below 255 is
/// one byte and a longer one is 0xff followed by 3 little-endian bytes.
/// Matching it keeps the sampled series identical to Prometheus'.
fn ratio_offset(labels: &Labels, buf: &mut Vec<u8>) -> f64 {
    fn put_len(buf: &mut Vec<u8>, n: usize) {
        if n < 255 {
            buf.push(n as u8);
        } else {
            buf.extend_from_slice(&[255, n as u8, (n >> 8) as u8, (n >> 16) as u8]);
        }
    }
    buf.clear();
    for l in labels {
        put_len(buf, l.name.len());
        buf.extend_from_slice(l.name.as_bytes());
        put_len(buf, l.value.len());
        buf.extend_from_slice(l.value.as_bytes());
    }
    xxh64(buf) as f64 / u64::MAX as f64
}

const XXH_P1: u64 = 0x9E37_79B1_85EB_CA87;
const XXH_P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const XXH_P3: u64 = 0x1656_67B1_9E37_79F9;
const XXH_P4: u64 = 0x85EB_CA77_C2B2_AE63;
const XXH_P5: u64 = 0x27D4_EB2F_1656_67C5;

fn xxh64_round(acc: u64, lane: u64) -> u64 {
    acc.wrapping_add(lane.wrapping_mul(XXH_P2)).rotate_left(31).wrapping_mul(XXH_P1)
}

fn xxh64_merge(acc: u64, lane: u64) -> u64 {
    (acc ^ xxh64_round(0, lane)).wrapping_mul(XXH_P1).wrapping_add(XXH_P4)
}

fn read_u64_le(b: &[u8]) -> u64 {
    u64::from_le_bytes(b.try_into().unwrap_or_default())
}

/// xxHash64 with seed 0 (what Go's `cespare/xxhash.Sum64` computes). The
/// crate's `xxhash-rust` dependency only enables xxh3, hence this small copy
/// of the algorithm.
fn xxh64(data: &[u8]) -> u64 {
    let mut rest = data;
    let mut h = if data.len() >= 32 {
        let mut v = [XXH_P1.wrapping_add(XXH_P2), XXH_P2, 0, 0u64.wrapping_sub(XXH_P1)];
        let mut stripes = data.chunks_exact(32);
        for stripe in &mut stripes {
            for (acc, lane) in v.iter_mut().zip(stripe.chunks_exact(8)) {
                *acc = xxh64_round(*acc, read_u64_le(lane));
            }
        }
        rest = stripes.remainder();
        let mut h =
            v[0].rotate_left(1).wrapping_add(v[1].rotate_left(7)).wrapping_add(v[2].rotate_left(12)).wrapping_add(v[3].rotate_left(18));
        for lane in v {
            h = xxh64_merge(h, lane);
        }
        h
    } else {
        XXH_P5
    };
    h = h.wrapping_add(data.len() as u64);
    let mut words = rest.chunks_exact(8);
    for w in &mut words {
        h ^= xxh64_round(0, read_u64_le(w));
        h = h.rotate_left(27).wrapping_mul(XXH_P1).wrapping_add(XXH_P4);
    }
    let mut rest = words.remainder();
    if rest.len() >= 4 {
        let (word, tail) = rest.split_at(4);
        let w = u32::from_le_bytes(word.try_into().unwrap_or_default());
        h ^= u64::from(w).wrapping_mul(XXH_P1);
        h = h.rotate_left(23).wrapping_mul(XXH_P2).wrapping_add(XXH_P3);
        rest = tail;
    }
    for &b in rest {
        h ^= u64::from(b).wrapping_mul(XXH_P5);
        h = h.rotate_left(11).wrapping_mul(XXH_P1);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(XXH_P2);
    h ^= h >> 29;
    h = h.wrapping_mul(XXH_P3);
    h ^ (h >> 32)
}

// ---------------------------------------------------------------------------
// count_values.

/// A sample's labels with `name` set to `value`, in label order.
fn with_label<'a>(labels: &'a Labels, name: &'a str, value: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + Clone {
    let all = labels.as_slice();
    let lo = all.partition_point(|l| l.name.as_str() < name);
    let hi = all.partition_point(|l| l.name.as_str() <= name);
    let pair = |l: &'a Label| (l.name.as_str(), l.value.as_str());
    let before = all.get(..lo).unwrap_or_default();
    let after = all.get(hi..).unwrap_or_default();
    before.iter().map(pair).chain(std::iter::once((name, value))).chain(after.iter().map(pair))
}

fn count_values(label: &str, mut grouping: Grouping, input: Vec<Sample>, ts: i64) -> Vec<Sample> {
    // With `by`, the value label is part of the grouping; with `without`,
    // listing it there merges all values (as in Prometheus).
    if !grouping.without {
        if let Err(at) = grouping.names.binary_search_by(|n| n.as_str().cmp(label)) {
            grouping.names.insert(at, label.to_string());
        }
    }
    let mut index = GroupIndex::default();
    let mut group_values: Vec<String> = Vec::new();
    let mut counts: Vec<f64> = Vec::new();
    let mut buf = Vec::with_capacity(256);
    for (i, s) in input.iter().enumerate() {
        let value = go_format_f(s.v);
        grouping.write_key(&s.metric, Some((label, &value)), &mut buf);
        let (g, new) = index.find_or_insert(&buf, i);
        if new {
            group_values.push(value);
            counts.push(1.0);
        } else {
            counts[g] += 1.0;
        }
    }
    index
        .reps
        .iter()
        .zip(&group_values)
        .zip(counts)
        .map(|((&rep, value), count)| Sample {
            metric: labels_from_pairs(with_label(&input[rep].metric, label, value).filter(|(n, _)| grouping.selects(n))),
            t: ts,
            v: count,
            drop_name: false,
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Go-compatible formatting, for values and messages Prometheus prints.

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest round-trip digits,
/// never an exponent.
fn go_format_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promql_parser::parser::token::{
        T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_LIMIT_RATIO, T_LIMITK, T_MAX, T_MIN, T_QUANTILE, T_STDDEV, T_STDVAR, T_SUM,
        T_TOPK,
    };

    const TS: i64 = 3_000_000;
    const NAN: f64 = f64::NAN;
    const INF: f64 = f64::INFINITY;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    fn sample(pairs: &[(&str, &str)], v: f64) -> Sample {
        Sample { metric: labels(pairs), t: 42, v, drop_name: false }
    }

    /// One series per value, told apart by an `i` label in input order.
    fn indexed(name: &str, vals: &[f64]) -> Vec<Sample> {
        vals.iter().enumerate().map(|(i, &v)| sample(&[("__name__", name), ("i", &i.to_string())], v)).collect()
    }

    fn by(names: &[&str]) -> LabelModifier {
        LabelModifier::include(names.to_vec())
    }

    fn without(names: &[&str]) -> LabelModifier {
        LabelModifier::exclude(names.to_vec())
    }

    fn scalar(v: f64) -> Value {
        Value::Scalar { t: TS, v }
    }

    fn string(v: &str) -> Value {
        Value::String { t: TS, v: v.to_string() }
    }

    fn agg_full(
        op: u16,
        param: Option<Value>,
        modifier: Option<LabelModifier>,
        input: Vec<Sample>,
    ) -> (Result<Vec<Sample>, EvalError>, Annotations) {
        let mut annos = Annotations::default();
        let out = aggregate(TokenType::new(op), param.as_ref(), modifier.as_ref(), input, TS, &mut annos);
        (out, annos)
    }

    fn agg(op: u16, param: Option<Value>, modifier: Option<LabelModifier>, input: Vec<Sample>) -> Vec<Sample> {
        let (out, annos) = agg_full(op, param, modifier, input);
        assert_eq!(annos, Annotations::default());
        out.expect("aggregation failed")
    }

    /// `(labels as Prometheus prints them, value)` in output order.
    fn shown(out: &[Sample]) -> Vec<(String, f64)> {
        out.iter().map(|s| (s.metric.to_string(), s.v)).collect()
    }

    fn single(out: &[Sample]) -> f64 {
        assert_eq!(out.len(), 1, "expected one sample, got {out:?}");
        assert!(out[0].metric.is_empty());
        out[0].v
    }

    fn same(a: f64, b: f64) -> bool {
        (a.is_nan() && b.is_nan()) || a == b
    }

    /// The eight `http_requests` series used by Prometheus' own aggregation
    /// examples: values 100..800 at the evaluation time.
    fn http_requests() -> Vec<Sample> {
        let mut v = Vec::new();
        let mut x = 100.0;
        for job in ["api-server", "app-server"] {
            for group in ["production", "canary"] {
                for instance in ["0", "1"] {
                    v.push(sample(&[("__name__", "http_requests"), ("job", job), ("instance", instance), ("group", group)], x));
                    x += 100.0;
                }
            }
        }
        v
    }

    fn values_of(out: &[Sample]) -> Vec<f64> {
        out.iter().map(|s| s.v).collect()
    }

    fn idx_of(out: &[Sample]) -> Vec<usize> {
        out.iter().map(|s| s.metric.get("i").parse().expect("i label")).collect()
    }

    // --- grouping -------------------------------------------------------------

    #[test]
    fn sum_by_keeps_only_listed_labels_in_first_seen_order() {
        let out = agg(T_SUM, None, Some(by(&["job"])), http_requests());
        assert_eq!(shown(&out), [(r#"{job="api-server"}"#.to_string(), 1000.0), (r#"{job="app-server"}"#.to_string(), 2600.0)]);
        assert!(out.iter().all(|s| s.t == TS && !s.drop_name));

        // Labels missing from every series do not appear; order of the clause is irrelevant.
        let out = agg(T_SUM, None, Some(by(&["nonexistent", "group", "job", "job"])), http_requests());
        assert_eq!(
            shown(&out),
            [
                (r#"{group="production", job="api-server"}"#.to_string(), 300.0),
                (r#"{group="canary", job="api-server"}"#.to_string(), 700.0),
                (r#"{group="production", job="app-server"}"#.to_string(), 1100.0),
                (r#"{group="canary", job="app-server"}"#.to_string(), 1500.0),
            ]
        );
    }

    #[test]
    fn without_drops_listed_labels_and_the_metric_name() {
        let out = agg(T_SUM, None, Some(without(&["instance"])), http_requests());
        assert_eq!(
            shown(&out),
            [
                (r#"{group="production", job="api-server"}"#.to_string(), 300.0),
                (r#"{group="canary", job="api-server"}"#.to_string(), 700.0),
                (r#"{group="production", job="app-server"}"#.to_string(), 1100.0),
                (r#"{group="canary", job="app-server"}"#.to_string(), 1500.0),
            ]
        );
        // `without ()` keeps every label but the name.
        let out = agg(T_SUM, None, Some(without(&[])), http_requests());
        assert_eq!(out.len(), 8);
        assert!(out.iter().all(|s| !s.metric.has("__name__") && s.metric.len() == 3));
        // Series lacking a listed label still group by what they have.
        let input = vec![
            sample(&[("__name__", "a"), ("job", "x"), ("instance", "1")], 1.0),
            sample(&[("__name__", "b"), ("job", "x")], 2.0),
            sample(&[("__name__", "b"), ("job", "x"), ("region", "eu")], 4.0),
        ];
        let out = agg(T_SUM, None, Some(without(&["instance"])), input);
        assert_eq!(shown(&out), [(r#"{job="x"}"#.to_string(), 3.0), (r#"{job="x", region="eu"}"#.to_string(), 4.0)]);
    }

    #[test]
    fn plain_and_empty_by_make_one_unlabelled_group() {
        assert_eq!(single(&agg(T_SUM, None, None, http_requests())), 3600.0);
        assert_eq!(single(&agg(T_SUM, None, Some(by(&[])), http_requests())), 3600.0);
        assert!(agg(T_SUM, None, None, Vec::new()).is_empty());
        assert!(agg(T_SUM, None, Some(by(&["job"])), Vec::new()).is_empty());
    }

    #[test]
    fn grouping_key_separates_label_boundaries() {
        let input = vec![sample(&[("a", "aa"), ("b", "bb")], 100.0), sample(&[("a", "a"), ("b", "abb")], 200.0)];
        let out = agg(T_SUM, None, Some(by(&["a", "b"])), input);
        assert_eq!(values_of(&out), [100.0, 200.0]);
    }

    #[test]
    fn colliding_hashes_still_form_separate_groups() {
        let mut index = GroupIndex::default();
        let keys: [&[u8]; 5] = [b"x", b"y", b"x", b"z", b"y"];
        let groups: Vec<(usize, bool)> = keys.iter().enumerate().map(|(i, k)| index.find_or_insert_hashed(7, k, i)).collect();
        assert_eq!(groups, [(0, true), (1, true), (0, false), (2, true), (1, false)]);
        assert_eq!(index.reps, [0, 1, 3]);
        assert_eq!(index.find_or_insert(b"z", 9), (3, true));
    }

    #[test]
    fn drop_name_is_set_when_any_input_of_the_group_drops_it() {
        let mut input = vec![
            sample(&[("__name__", "m"), ("env", "1")], 10.0),
            sample(&[("__name__", "m"), ("env", "2")], 0.05),
            sample(&[("__name__", "n"), ("env", "2")], 1.0),
        ];
        input[1].drop_name = true;
        let out = agg(T_SUM, None, Some(by(&["__name__"])), input);
        assert_eq!(shown(&out), [("m".to_string(), 10.05), ("n".to_string(), 1.0)]);
        assert_eq!(out.iter().map(|s| s.drop_name).collect::<Vec<_>>(), [true, false]);
    }

    #[test]
    fn many_series_many_groups() {
        let input: Vec<Sample> =
            (0..20_000).map(|i| sample(&[("__name__", "m"), ("pod", &format!("p{i}")), ("node", &format!("n{}", i % 100))], 1.0)).collect();
        let out = agg(T_COUNT, None, Some(by(&["node"])), input.clone());
        assert_eq!(out.len(), 100);
        assert!(out.iter().all(|s| s.v == 200.0));
        assert_eq!(out[7].metric.get("node"), "n7");
        let out = agg(T_TOPK, Some(scalar(1.0)), Some(without(&["pod"])), input);
        assert_eq!(out.len(), 100);
    }

    // --- sum / avg ------------------------------------------------------------

    #[test]
    fn sum_and_avg_compensate_rounding() {
        let vals = [2.0, 8.0, 1e100, -1e100];
        assert_eq!(single(&agg(T_SUM, None, None, indexed("d", &vals))), 10.0);
        assert_eq!(single(&agg(T_AVG, None, None, indexed("d", &vals))), 2.5);
        // Twelve equal values average to exactly that value.
        let out = agg(T_AVG, None, None, indexed("foo", &[52.0; 12]));
        assert_eq!(single(&out), 52.0);
        let out = agg(T_AVG, Some(scalar(0.0)), None, indexed("x", &[8.0, 10.0, 12.0]));
        assert_eq!(single(&out), 10.0);
    }

    #[test]
    fn avg_switches_to_incremental_mean_before_overflowing() {
        let big = 9.988_465_674_311_58e307;
        assert_eq!(single(&agg(T_AVG, None, None, indexed("d", &[big; 4]))), big);
        assert_eq!(single(&agg(T_AVG, None, None, indexed("d", &[-big; 4]))), -big);
        let out = agg(T_AVG, None, None, indexed("d", &[-big, -big, big, big]));
        assert_eq!(single(&out), 0.0);
        assert_eq!(single(&agg(T_SUM, None, None, indexed("d", &[big; 4]))), INF);
    }

    #[test]
    fn sum_and_avg_with_infinities_and_nan() {
        let cases: [(&[f64], f64, f64); 8] = [
            (&[0.0, INF, INF, 0.0], INF, INF),
            (&[-INF, -INF, 0.0], -INF, -INF),
            (&[INF, 0.0, INF], INF, INF),
            (&[INF, INF, -INF], NAN, NAN),
            (&[-INF, 0.0, INF], NAN, NAN),
            (&[INF, 2.0], INF, INF),
            (&[2.0, -INF], -INF, -INF),
            (&[NAN, 2.0], NAN, NAN),
        ];
        for (vals, sum, avg) in cases {
            let s = single(&agg(T_SUM, None, None, indexed("d", vals)));
            let a = single(&agg(T_AVG, None, None, indexed("d", vals)));
            assert!(same(s, sum), "sum{vals:?} = {s}");
            assert!(same(a, avg), "avg{vals:?} = {a}");
        }
    }

    #[test]
    fn avg_by_group() {
        let out = agg(T_AVG, None, Some(by(&["job"])), http_requests());
        assert_eq!(values_of(&out), [250.0, 650.0]);
    }

    // --- count / group / min / max ---------------------------------------------

    #[test]
    fn count_and_group() {
        let out = agg(T_COUNT, None, Some(by(&["group"])), http_requests());
        assert_eq!(shown(&out), [(r#"{group="production"}"#.to_string(), 4.0), (r#"{group="canary"}"#.to_string(), 4.0)]);
        let out = agg(T_GROUP, None, Some(without(&["instance"])), http_requests());
        assert_eq!(values_of(&out), [1.0; 4]);
        assert_eq!(single(&agg(T_GROUP, None, None, indexed("d", &[NAN]))), 1.0);
        assert_eq!(single(&agg(T_COUNT, None, None, indexed("d", &[NAN, INF]))), 2.0);
    }

    #[test]
    fn min_and_max_ignore_nan_unless_all_nan() {
        let vals = [1.0, 2.0, NAN, 3.0, 4.0];
        assert_eq!(single(&agg(T_MAX, None, None, indexed("d", &vals))), 4.0);
        assert_eq!(single(&agg(T_MIN, None, None, indexed("d", &vals))), 1.0);
        let vals = [NAN, 3.0, NAN, -2.0];
        assert_eq!(single(&agg(T_MAX, None, None, indexed("d", &vals))), 3.0);
        assert_eq!(single(&agg(T_MIN, None, None, indexed("d", &vals))), -2.0);
        assert!(single(&agg(T_MAX, None, None, indexed("d", &[NAN, NAN]))).is_nan());
        assert!(single(&agg(T_MIN, None, None, indexed("d", &[NAN]))).is_nan());
        assert_eq!(single(&agg(T_MAX, None, None, indexed("d", &[-INF, INF]))), INF);
        let out = agg(T_MIN, None, Some(by(&["job"])), http_requests());
        assert_eq!(values_of(&out), [100.0, 500.0]);
        let out = agg(T_MAX, None, Some(by(&["job"])), http_requests());
        assert_eq!(values_of(&out), [400.0, 800.0]);
    }

    // --- stddev / stdvar --------------------------------------------------------

    #[test]
    fn stddev_and_stdvar_are_population_statistics() {
        assert_eq!(single(&agg(T_STDVAR, None, None, http_requests())), 52500.0);
        let sd = single(&agg(T_STDDEV, None, None, http_requests()));
        assert!((sd - 229.12878474779).abs() < 1e-9, "{sd}");
        let out = agg(T_STDVAR, None, Some(by(&["instance"])), http_requests());
        assert_eq!(values_of(&out), [50000.0, 50000.0]);
        assert_eq!(single(&agg(T_STDDEV, None, None, indexed("d", &[1.0, 2.0]))), 0.5);
        assert_eq!(single(&agg(T_STDVAR, None, None, indexed("d", &[1.0, 2.0]))), 0.25);
        let eq = agg(T_STDDEV, None, None, indexed("d", &[13.3; 3]));
        assert!(single(&eq).abs() < 1e-12);
    }

    #[test]
    fn stddev_with_nan_or_infinity_is_nan() {
        for vals in [&[1.0, 2.0, NAN][..], &[NAN, 1.0, 2.0], &[NAN], &[1.0, 2.0, INF], &[INF, 1.0, 2.0], &[-INF]] {
            assert!(single(&agg(T_STDDEV, None, None, indexed("d", vals))).is_nan());
            assert!(single(&agg(T_STDVAR, None, None, indexed("d", vals))).is_nan());
        }
        // Per-series groups: a lone finite value has no spread.
        let out = agg(T_STDDEV, None, Some(by(&["i"])), indexed("d", &[1.0, NAN, INF]));
        assert_eq!(values_of(&out)[0], 0.0);
        assert!(values_of(&out)[1..].iter().all(|v| v.is_nan()));
    }

    // --- quantile -------------------------------------------------------------

    fn quantile_data() -> Vec<Sample> {
        let mut v = Vec::new();
        for (test, vals) in [
            ("two samples", &[0.0, 1.0][..]),
            ("three samples", &[0.0, 1.0, 2.0]),
            ("uneven samples", &[0.0, 1.0, 4.0]),
            ("NaN sample", &[0.0, 1.0, NAN]),
        ] {
            for (i, &x) in vals.iter().enumerate() {
                let point = ["a", "b", "c"][i];
                v.push(sample(&[("__name__", "data"), ("test", test), ("point", point)], x));
            }
        }
        v
    }

    #[test]
    fn quantile_interpolates_and_ranks_nan_lowest() {
        let out = agg(T_QUANTILE, Some(scalar(0.8)), Some(without(&["point"])), quantile_data());
        let got = values_of(&out);
        let want = [0.8, 1.6, 2.8, 0.6];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
        assert_eq!(out[0].metric.to_string(), r#"{test="two samples"}"#);
        let out = agg(T_QUANTILE, Some(scalar(0.2)), Some(without(&["point"])), quantile_data());
        let got = values_of(&out);
        for (g, w) in got[..3].iter().zip([0.2, 0.4, 0.4]) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
        // Between NaN and 0 interpolates to NaN.
        assert!(got[3].is_nan());
        assert_eq!(single(&agg(T_QUANTILE, Some(scalar(0.5)), None, indexed("d", &[5.0, 1.0, 3.0, 2.0]))), 2.5);
        assert_eq!(single(&agg(T_QUANTILE, Some(scalar(1.0)), None, indexed("d", &[5.0, 1.0]))), 5.0);
        assert_eq!(single(&agg(T_QUANTILE, Some(scalar(0.0)), None, indexed("d", &[5.0, 1.0]))), 1.0);
    }

    #[test]
    fn quantile_outside_zero_one_is_infinite_and_warns() {
        for (q, want, shown_q) in [(1.5, INF, "1.5"), (-0.1, -INF, "-0.1"), (NAN, NAN, "NaN")] {
            let (out, annos) = agg_full(T_QUANTILE, Some(scalar(q)), None, indexed("d", &[1.0, 2.0]));
            assert!(same(single(&out.expect("quantile")), want));
            assert_eq!(annos.warnings, [format!("PromQL warning: quantile value should be between 0 and 1, got {shown_q}")]);
        }
        // The warning does not depend on there being input.
        let (out, annos) = agg_full(T_QUANTILE, Some(scalar(2.0)), None, Vec::new());
        assert!(out.expect("quantile").is_empty());
        assert_eq!(annos.warnings.len(), 1);
    }

    // --- topk / bottomk ----------------------------------------------------------

    #[test]
    fn topk_and_bottomk_keep_input_samples_in_rank_order() {
        let mut input = http_requests();
        input[7].drop_name = true;
        let out = agg(T_TOPK, Some(scalar(3.0)), None, input);
        assert_eq!(values_of(&out), [800.0, 700.0, 600.0]);
        assert_eq!(out[0].metric.to_string(), r#"http_requests{group="canary", instance="1", job="app-server"}"#);
        assert!(out[0].drop_name && !out[1].drop_name);
        assert!(out.iter().all(|s| s.t == TS));
        let out = agg(T_BOTTOMK, Some(scalar(3.0)), None, http_requests());
        assert_eq!(values_of(&out), [100.0, 200.0, 300.0]);
    }

    #[test]
    fn topk_by_group_orders_groups_by_first_appearance() {
        let out = agg(T_TOPK, Some(scalar(1.0)), Some(by(&["group"])), http_requests());
        assert_eq!(values_of(&out), [600.0, 800.0]);
        let out = agg(T_BOTTOMK, Some(scalar(2.0)), Some(by(&["group"])), http_requests());
        assert_eq!(values_of(&out), [100.0, 200.0, 300.0, 400.0]);
    }

    #[test]
    fn topk_ranks_nan_last_and_only_when_needed() {
        let vals = [100.0, 200.0, NAN];
        let out = agg(T_TOPK, Some(scalar(3.0)), None, indexed("d", &vals));
        assert_eq!(idx_of(&out), [1, 0, 2]);
        let out = agg(T_BOTTOMK, Some(scalar(3.0)), None, indexed("d", &vals));
        assert_eq!(idx_of(&out), [0, 1, 2]);
        let out = agg(T_TOPK, Some(scalar(2.0)), None, indexed("d", &[NAN, 1.0, NAN, 0.5]));
        assert_eq!(idx_of(&out), [1, 3]);
        let out = agg(T_BOTTOMK, Some(scalar(1.0)), None, indexed("d", &[NAN, 7.0]));
        assert_eq!(idx_of(&out), [1]);
        let out = agg(T_TOPK, Some(scalar(1.0)), None, indexed("d", &[NAN, NAN]));
        assert_eq!(idx_of(&out), [0]);
    }

    #[test]
    fn topk_ties_come_out_in_prometheus_order() {
        // Expected orders were produced with Go's container/heap and sort.Sort,
        // driven the way Prometheus drives them.
        let vals = [1.0, NAN, 3.0, NAN, 2.0, 3.0, 1.0];
        let out = agg(T_TOPK, Some(scalar(5.0)), None, indexed("d", &vals));
        assert_eq!(idx_of(&out), [2, 5, 4, 6, 0]);
        let out = agg(T_BOTTOMK, Some(scalar(5.0)), None, indexed("d", &vals));
        assert_eq!(idx_of(&out), [0, 6, 4, 5, 2]);
        let out = agg(T_TOPK, Some(scalar(100.0)), None, indexed("d", &vals));
        assert_eq!(idx_of(&out), [5, 2, 4, 6, 0, 1, 3]);
        let out = agg(T_BOTTOMK, Some(scalar(100.0)), None, indexed("d", &vals));
        assert_eq!(idx_of(&out), [0, 6, 4, 2, 5, 1, 3]);
        let out = agg(T_TOPK, Some(scalar(3.0)), None, indexed("d", &[5.0; 5]));
        assert_eq!(idx_of(&out), [0, 1, 2]);
        // More than twelve results: Go's pdqsort rather than insertion sort.
        let vals = [2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 3.0, 3.0];
        let out = agg(T_TOPK, Some(scalar(100.0)), None, indexed("d", &vals));
        assert_eq!(idx_of(&out), [16, 17, 12, 10, 0, 14, 6, 2, 8, 4, 13, 15, 1, 7, 11, 9, 5, 3]);
        let out = agg(T_BOTTOMK, Some(scalar(100.0)), None, indexed("d", &vals));
        assert_eq!(idx_of(&out), [9, 3, 7, 15, 13, 5, 11, 1, 10, 4, 8, 6, 12, 14, 0, 2, 16, 17]);
    }

    #[test]
    fn go_sort_orders_large_inputs() {
        let vals: Vec<f64> = (0..500).map(|i| ((i * 7919) % 263) as f64).collect();
        let mut h: Vec<usize> = (0..vals.len()).collect();
        sort_output(&mut h, &vals, true);
        assert!(h.windows(2).all(|w| vals[w[0]] >= vals[w[1]]));
        let mut sorted = h.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..500).collect::<Vec<_>>());
        // Reverse-sorted and constant inputs take other paths.
        let vals: Vec<f64> = (0..300).map(|i| i as f64).collect();
        let mut h: Vec<usize> = (0..300).collect();
        sort_output(&mut h, &vals, true);
        assert_eq!(h, (0..300).rev().collect::<Vec<_>>());
        let vals: Vec<f64> = (0..300).map(|i| if i % 3 == 0 { NAN } else { 1.0 }).collect();
        let mut h: Vec<usize> = (0..300).collect();
        sort_output(&mut h, &vals, false);
        assert!(h[..200].iter().all(|&i| vals[i] == 1.0));
        assert!(h[200..].iter().all(|&i| vals[i].is_nan()));
    }

    #[test]
    fn k_parameter_rules() {
        // k < 1 selects nothing, even from nothing with a NaN-free k.
        for k in [0.0, -1.0, 0.99, -INF] {
            assert!(agg(T_TOPK, Some(scalar(k)), None, http_requests()).is_empty());
            assert!(agg(T_LIMITK, Some(scalar(k)), None, http_requests()).is_empty());
        }
        // Fractions truncate; k beyond the input is capped.
        assert_eq!(agg(T_TOPK, Some(scalar(2.9)), None, http_requests()).len(), 2);
        assert_eq!(agg(T_BOTTOMK, Some(scalar(9999999999.0)), None, http_requests()).len(), 8);
        // NaN and too-large k fail regardless of input.
        let (out, _) = agg_full(T_TOPK, Some(scalar(NAN)), None, Vec::new());
        assert_eq!(out, Err(EvalError::exec("Parameter value is NaN")));
        let (out, _) = agg_full(T_LIMITK, Some(scalar(NAN)), None, Vec::new());
        assert_eq!(out, Err(EvalError::exec("Parameter value is NaN")));
        let (out, _) = agg_full(T_BOTTOMK, Some(scalar(1e19)), None, http_requests());
        assert_eq!(out, Err(EvalError::exec("Scalar value 1e+19 overflows int64")));
        let (out, _) = agg_full(T_TOPK, Some(scalar(i64::MAX as f64)), None, Vec::new());
        assert_eq!(out, Err(EvalError::exec("Scalar value 9.223372036854776e+18 overflows int64")));
        let (out, _) = agg_full(T_TOPK, Some(scalar(INF)), None, Vec::new());
        assert_eq!(out, Err(EvalError::exec("Scalar value +Inf overflows int64")));
        let (out, _) = agg_full(T_TOPK, None, None, Vec::new());
        assert!(out.is_err());
        let (out, _) = agg_full(T_TOPK, Some(string("3")), None, Vec::new());
        assert!(out.is_err());
    }

    // --- limitk / limit_ratio ----------------------------------------------------

    #[test]
    fn limitk_takes_the_first_k_of_each_group() {
        let out = agg(T_LIMITK, Some(scalar(1.0)), Some(by(&["group"])), http_requests());
        assert_eq!(values_of(&out), [100.0, 300.0]);
        assert_eq!(out[0].metric, http_requests()[0].metric);
        let out = agg(T_LIMITK, Some(scalar(2.0)), Some(by(&["group"])), http_requests());
        let mut got = values_of(&out);
        got.sort_by(f64::total_cmp);
        assert_eq!(got, [100.0, 200.0, 300.0, 400.0]);
        assert_eq!(agg(T_LIMITK, Some(scalar(100.0)), None, http_requests()).len(), 8);
        // Within a group the output is Prometheus' heap order (from Go).
        let vals = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0, 5.0];
        let out = agg(T_LIMITK, Some(scalar(5.0)), None, indexed("d", &vals));
        assert_eq!(idx_of(&out), [1, 3, 2, 0, 4]);
    }

    /// The series of Prometheus' limit.test.
    fn limit_series() -> Vec<Sample> {
        [
            ("0", "production", 100.0),
            ("1", "production", 200.0),
            ("0", "canary", 300.0),
            ("1", "canary", 400.0),
            ("2", "canary", 500.0),
            ("3", "canary", 600.0),
            ("histogram_1", "canary", 0.0),
            ("histogram_2", "canary", 0.0),
        ]
        .iter()
        .map(|&(instance, group, v)| {
            sample(&[("__name__", "http_requests"), ("job", "api-server"), ("instance", instance), ("group", group)], v)
        })
        .collect()
    }

    #[test]
    fn xxh64_matches_reference_vectors() {
        assert_eq!(xxh64(b""), 0xef46_db37_51d8_e999);
        assert_eq!(xxh64(b"a"), 0xd24e_c4f1_a98c_6e5b);
        let long: Vec<u8> = (0..100u8).collect();
        assert_eq!(xxh64(&long), 0x6ac1_e580_3216_6597);
    }

    #[test]
    fn limit_ratio_samples_by_label_hash() {
        // Offsets of the limit.test series under Prometheus' hash.
        let mut buf = Vec::new();
        let offsets: Vec<f64> = limit_series().iter().map(|s| ratio_offset(&s.metric, &mut buf)).collect();
        let want = [
            0.09456038582361823,
            0.09967529271752745,
            0.9782463706693543,
            0.2047467588166679,
            0.86158214749638,
            0.32521287713803193,
            0.5298450788620908,
            0.15600858441100363,
        ];
        assert_eq!(offsets, want);

        let kept = |r: f64| {
            let out = agg(T_LIMIT_RATIO, Some(scalar(r)), None, limit_series());
            let mut v: Vec<String> = out.iter().map(|s| s.metric.get("instance").to_string()).collect();
            v.sort();
            v
        };
        assert_eq!(kept(0.5), ["0", "1", "1", "3", "histogram_2"]);
        assert_eq!(kept(-0.5), ["0", "2", "histogram_1"]);
        assert_eq!(kept(1.0).len(), 8);
        assert_eq!(kept(-1.0).len(), 8);
        // A ratio and its negative complement split the series exactly.
        for r in [0.2, 0.5, 0.8, 3.0 / 17.0, 11.0 / 17.0] {
            let (a, b) = (kept(r), kept(-(1.0 - r)));
            assert_eq!(a.len() + b.len(), 8, "r={r}");
            let mut all = [a, b].concat();
            all.sort();
            assert_eq!(all, kept(1.0));
        }
        // Samples keep their labels and flags.
        let mut input = limit_series();
        input[0].drop_name = true;
        let out = agg(T_LIMIT_RATIO, Some(scalar(0.1)), None, input);
        assert_eq!(out.len(), 2);
        assert!(out[0].drop_name && out[0].metric.has("__name__"));
    }

    #[test]
    fn limit_ratio_parameter_rules() {
        assert!(agg(T_LIMIT_RATIO, Some(scalar(0.0)), None, limit_series()).is_empty());
        let (out, _) = agg_full(T_LIMIT_RATIO, Some(scalar(NAN)), None, Vec::new());
        assert_eq!(out, Err(EvalError::exec("Ratio value is NaN")));
        for (r, msg) in [(1.1, "got 1.1, capping to 1"), (-1.1, "got -1.1, capping to -1")] {
            let (out, annos) = agg_full(T_LIMIT_RATIO, Some(scalar(r)), None, limit_series());
            assert_eq!(out.expect("limit_ratio").len(), 8);
            assert_eq!(annos.warnings, [format!("PromQL warning: ratio value should be between -1 and 1, {msg}")]);
        }
    }

    // --- count_values ------------------------------------------------------------

    fn versions() -> Vec<Sample> {
        [
            ("api-server", "0", "production", 6.0),
            ("api-server", "1", "production", 6.0),
            ("api-server", "2", "production", 6.0),
            ("api-server", "0", "canary", 8.0),
            ("api-server", "1", "canary", 8.0),
            ("app-server", "0", "production", 6.0),
            ("app-server", "1", "production", 6.0),
            ("app-server", "0", "canary", 7.0),
            ("app-server", "1", "canary", 7.0),
        ]
        .iter()
        .map(|&(job, instance, group, v)| sample(&[("__name__", "version"), ("job", job), ("instance", instance), ("group", group)], v))
        .collect()
    }

    #[test]
    fn count_values_counts_each_value() {
        let out = agg(T_COUNT_VALUES, Some(string("version")), None, versions());
        assert_eq!(
            shown(&out),
            [(r#"{version="6"}"#.to_string(), 5.0), (r#"{version="8"}"#.to_string(), 2.0), (r#"{version="7"}"#.to_string(), 2.0),]
        );
        assert!(out.iter().all(|s| s.t == TS && !s.drop_name));
        let out = agg(T_COUNT_VALUES, Some(string("version")), Some(without(&["instance"])), versions());
        assert_eq!(
            shown(&out),
            [
                (r#"{group="production", job="api-server", version="6"}"#.to_string(), 3.0),
                (r#"{group="canary", job="api-server", version="8"}"#.to_string(), 2.0),
                (r#"{group="production", job="app-server", version="6"}"#.to_string(), 2.0),
                (r#"{group="canary", job="app-server", version="7"}"#.to_string(), 2.0),
            ]
        );
    }

    #[test]
    fn count_values_label_overwrites_an_existing_one() {
        let want = [
            (r#"{group="production", job="6"}"#.to_string(), 5.0),
            (r#"{group="canary", job="8"}"#.to_string(), 2.0),
            (r#"{group="canary", job="7"}"#.to_string(), 2.0),
        ];
        let out = agg(T_COUNT_VALUES, Some(string("job")), Some(without(&["instance"])), versions());
        assert_eq!(shown(&out), want);
        let out = agg(T_COUNT_VALUES, Some(string("job")), Some(by(&["job", "group"])), versions());
        assert_eq!(shown(&out), want);
    }

    #[test]
    fn count_values_formats_like_go() {
        let vals = [1e6, 0.000025, -0.0, 0.0, NAN, INF, -INF, 1.0 / 3.0, 1e21, 123456.7];
        let out = agg(T_COUNT_VALUES, Some(string("v")), None, indexed("d", &vals));
        let got: Vec<&str> = out.iter().map(|s| s.metric.get("v")).collect();
        assert_eq!(
            got,
            ["1000000", "0.000025", "-0", "0", "NaN", "+Inf", "-Inf", "0.3333333333333333", "1000000000000000000000", "123456.7"]
        );
    }

    #[test]
    fn count_values_rejects_bad_parameters() {
        let (out, _) = agg_full(T_COUNT_VALUES, Some(string("")), None, Vec::new());
        assert_eq!(out, Err(EvalError::exec(r#"invalid label name """#)));
        let (out, _) = agg_full(T_COUNT_VALUES, Some(scalar(1.0)), None, versions());
        assert!(out.is_err());
        // Any non-empty UTF-8 name is valid in Prometheus 3.
        let out = agg(T_COUNT_VALUES, Some(string("a.Åz")), None, versions());
        assert_eq!(out[0].metric.get("a.Åz"), "6");
    }

    #[test]
    fn non_aggregation_operator_is_an_error() {
        let (out, _) = agg_full(promql_parser::parser::token::T_ADD, None, None, Vec::new());
        assert!(out.is_err());
    }

    // --- formatting ---------------------------------------------------------------

    #[test]
    fn go_formatting() {
        // Expected strings are Go's fmt %g / %v output.
        let cases = [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.1, "1.1"),
            (-1.0, "-1"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (123456.7, "123456.7"),
            (1e21, "1e+21"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.25e-7, "1.25e-07"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (9999999999.0, "9.999999999e+09"),
            (INF, "+Inf"),
            (-INF, "-Inf"),
            (NAN, "NaN"),
        ];
        for (v, want) in cases {
            assert_eq!(go_fmt_g(v, None), want, "{v}");
        }
        assert_eq!(go_quote(""), r#""""#);
        assert_eq!(go_quote("a\"b\\c\n\x01\x7fé"), r#""a\"b\\c\n\x01\x7fé""#);
    }
}
