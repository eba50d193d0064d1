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
//! samples are keyed by a hash of their grouping labels (collisions are checked
//! against the group's first sample), and output labels are built once per group.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};

use promql_parser::parser::{LabelModifier, token, token::TokenType};
use xxhash_rust::xxh3::xxh3_64;

use crate::model::labels::METRIC_NAME;
use crate::model::{Label, Labels};
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
        return Ok(aggregate_simple(kind, &grouping, input, ts));
    }
    match op.id() {
        token::T_QUANTILE => {
            let q = scalar_param("quantile", param)?;
            // Prometheus warns for an invalid φ even when the input is empty.
            if q.is_nan() || !(0.0..=1.0).contains(&q) {
                annotations.warn(format!(
                    "PromQL warning: quantile value should be between 0 and 1, got {}",
                    go_format_g(q)
                ));
            }
            Ok(aggregate_simple(Simple::Quantile(q), &grouping, input, ts))
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
                    go_format_g(r),
                    go_format_g(capped)
                ));
            }
            Ok(select_k(
                KOp::Ratio(capped),
                usize::MAX,
                &grouping,
                input,
                ts,
            ))
        }
        token::T_COUNT_VALUES => {
            let label = match param {
                Some(Value::String { v, .. }) => v.as_str(),
                other => return Err(param_type_error("count_values", "string", other)),
            };
            // Prometheus validates label names as UTF-8; a Rust string always
            // is, so only the empty name is invalid.
            if label.is_empty() {
                return Err(EvalError::exec(format!(
                    "invalid label name {}",
                    go_quote(label)
                )));
            }
            Ok(count_values(label, grouping, input, ts))
        }
        _ => Err(EvalError::exec(format!(
            "operator {op} is not an aggregation operator"
        ))),
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
        return Err(EvalError::exec(format!(
            "Scalar value {} overflows int64",
            go_format_g(k)
        )));
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
        let listed = self
            .names
            .binary_search_by(|n| n.as_str().cmp(name))
            .is_ok();
        if self.without {
            !listed && name != METRIC_NAME
        } else {
            listed
        }
    }

    /// The grouping labels of a sample, in label order.
    fn key<'a>(&'a self, labels: &'a Labels) -> impl Iterator<Item = (&'a str, &'a str)> + Clone {
        labels
            .iter()
            .filter(|l| self.selects(&l.name))
            .map(|l| (l.name.as_str(), l.value.as_str()))
    }
}

/// Hashes sorted label pairs (reusing `buf`) for the group map.
fn hash_key<'a>(buf: &mut Vec<u8>, pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    buf.clear();
    for (n, v) in pairs {
        buf.extend_from_slice(n.as_bytes());
        buf.push(0xff);
        buf.extend_from_slice(v.as_bytes());
        buf.push(0xff);
    }
    xxh3_64(buf)
}

/// Whether two label-pair sequences are equal (lifetimes kept apart so the
/// borrows of the two sides stay independent).
fn pairs_eq<'a, 'b>(
    mut a: impl Iterator<Item = (&'a str, &'a str)>,
    mut b: impl Iterator<Item = (&'b str, &'b str)>,
) -> bool {
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) if x == y => {}
            _ => return false,
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

/// Groups numbered in order of first appearance, found by key hash; groups
/// whose keys collide are chained and told apart by comparing keys.
#[derive(Default)]
struct GroupIndex {
    by_hash: HashMap<u64, usize, BuildHasherDefault<KeyHasher>>,
    /// The first input sample of each group.
    reps: Vec<usize>,
    /// The next group with the same hash, or `NO_GROUP`.
    next: Vec<usize>,
}

impl GroupIndex {
    /// The group of input sample `sample` whose key hashes to `hash`, and
    /// whether it is new. `same(group, rep)` says whether the sample's key
    /// equals that of `group`, whose first sample is `rep`.
    fn find_or_insert(
        &mut self,
        hash: u64,
        sample: usize,
        mut same: impl FnMut(usize, usize) -> bool,
    ) -> (usize, bool) {
        let new = self.reps.len();
        match self.by_hash.entry(hash) {
            Entry::Vacant(e) => {
                e.insert(new);
            }
            Entry::Occupied(e) => {
                let mut g = *e.get();
                loop {
                    if same(g, self.reps[g]) {
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

fn assign_groups(grouping: &Grouping, input: &[Sample]) -> Groups {
    if grouping.is_single() {
        return Groups {
            of_sample: vec![0; input.len()],
            reps: if input.is_empty() {
                Vec::new()
            } else {
                vec![0]
            },
        };
    }
    let mut index = GroupIndex::default();
    let mut of_sample = Vec::with_capacity(input.len());
    let mut buf = Vec::with_capacity(256);
    for (i, s) in input.iter().enumerate() {
        let key = grouping.key(&s.metric);
        let hash = hash_key(&mut buf, key.clone());
        let (g, _) = index.find_or_insert(hash, i, |_, rep| {
            pairs_eq(grouping.key(&input[rep].metric), key.clone())
        });
        of_sample.push(g);
    }
    Groups {
        of_sample,
        reps: index.reps,
    }
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

/// Kahan-Babuška-Neumaier summation step: adds `inc` to `sum` with
/// compensation `c`, returning the new sum and compensation. The
/// compensation is reset once the sum overflows, as Prometheus does.
fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

impl Acc {
    fn first(kind: Simple, f: f64, drop_name: bool) -> Acc {
        let mut a = Acc {
            value: f,
            mean: f,
            count: 1.0,
            drop_name,
            ..Acc::default()
        };
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

fn aggregate_simple(kind: Simple, grouping: &Grouping, input: Vec<Sample>, ts: i64) -> Vec<Sample> {
    let groups = assign_groups(grouping, &input);
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
        let metric = if grouping.is_single() {
            Labels::empty()
        } else {
            labels_from_pairs(grouping.key(&input[rep].metric))
        };
        out.push(Sample {
            metric,
            t: ts,
            v: acc.result(kind),
            drop_name: acc.drop_name,
        });
    }
    out
}

/// The φ-quantile of `values` (in input order), interpolating linearly
/// between the closest ranks; NaN ranks below every number. φ < 0 gives
/// -Inf, φ > 1 gives +Inf, NaN φ or no values give NaN. Values are ordered
/// with Go's sort like Prometheus, so even the sign of a zero result agrees.
fn quantile(q: f64, values: &[f64]) -> f64 {
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
    GoSort {
        h: &mut order,
        less,
    }
    .sort();
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    let at = |i: f64| {
        order
            .get(i as usize)
            .and_then(|&j| values.get(j))
            .copied()
            .unwrap_or(f64::NAN)
    };
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
            if was_balanced
                && was_partitioned
                && hint == SortedHint::Increasing
                && self.partial_insertion_sort(a, b)
            {
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
    let groups = assign_groups(grouping, &input);
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
    acc.wrapping_add(lane.wrapping_mul(XXH_P2))
        .rotate_left(31)
        .wrapping_mul(XXH_P1)
}

fn xxh64_merge(acc: u64, lane: u64) -> u64 {
    (acc ^ xxh64_round(0, lane))
        .wrapping_mul(XXH_P1)
        .wrapping_add(XXH_P4)
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
        let mut v = [
            XXH_P1.wrapping_add(XXH_P2),
            XXH_P2,
            0,
            0u64.wrapping_sub(XXH_P1),
        ];
        let mut stripes = data.chunks_exact(32);
        for stripe in &mut stripes {
            for (acc, lane) in v.iter_mut().zip(stripe.chunks_exact(8)) {
                *acc = xxh64_round(*acc, read_u64_le(lane));
            }
        }
        rest = stripes.remainder();
        let mut h = v[0]
            .rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18));
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
fn with_label<'a>(
    labels: &'a Labels,
    name: &'a str,
    value: &'a str,
) -> impl Iterator<Item = (&'a str, &'a str)> + Clone {
    let all = labels.as_slice();
    let lo = all.partition_point(|l| l.name.as_str() < name);
    let hi = all.partition_point(|l| l.name.as_str() <= name);
    let pair = |l: &'a Label| (l.name.as_str(), l.value.as_str());
    let before = all.get(..lo).unwrap_or_default();
    let after = all.get(hi..).unwrap_or_default();
    before
        .iter()
        .map(pair)
        .chain(std::iter::once((name, value)))
        .chain(after.iter().map(pair))
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
        // `key` borrows `value`, so it must be gone before `value` is kept.
        let (g, new) = {
            let key = with_label(&s.metric, label, &value).filter(|(n, _)| grouping.selects(n));
            let hash = hash_key(&mut buf, key.clone());
            index.find_or_insert(hash, i, |g, rep| {
                pairs_eq(
                    with_label(&input[rep].metric, label, &group_values[g])
                        .filter(|(n, _)| grouping.selects(n)),
                    key.clone(),
                )
            })
        };
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
            metric: labels_from_pairs(
                with_label(&input[rep].metric, label, value).filter(|(n, _)| grouping.selects(n)),
            ),
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

/// Go's `%g`/`%v` for a float64: shortest round-trip digits, in exponent form
/// (`1e+06`, `1.5e-07`) when the decimal exponent is below -4 or at least 6.
fn go_format_g(v: f64) -> String {
    if !v.is_finite() {
        return go_format_f(v);
    }
    let sci = format!("{v:e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return format!("{v}");
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        format!("{v}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    }
}

/// Go's `strconv.Quote` for the characters a label name can plausibly hold.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
