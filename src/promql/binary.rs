//! Binary operators: arithmetic, comparison (with and without `bool`), set
//! operators, and vector matching with `on`/`ignoring` and
//! `group_left`/`group_right`, as Prometheus defines them.

use std::collections::{HashMap, HashSet};

use promql_parser::parser::{BinModifier, LabelModifier, VectorMatchCardinality};

use super::value::{EvalError, Sample, Value};
use crate::model::labels::METRIC_NAME;
use crate::model::{Label, Labels, LabelsBuilder};
use crate::tsdb::idhash::{IdBuild, IdMap};

/// Matching work one binary-operator node can reuse across the steps of a
/// query, keyed by label-set identity (inputs are kept alive, so identities
/// cannot be reused while the memo lives).
#[derive(Default)]
pub struct BinaryMemo {
    sigs: IdMap<usize, (Labels, Labels)>,
    results: HashMap<(usize, usize), (Labels, Labels, Labels), IdBuild>,
}

impl BinaryMemo {
    fn signature(&mut self, l: &Labels, matching: Option<&LabelModifier>) -> Labels {
        if let Some((_, sig)) = self.sigs.get(&l.identity()) {
            return sig.clone();
        }
        let sig = signature(l, matching);
        self.sigs.insert(l.identity(), (l.clone(), sig.clone()));
        sig
    }
}

fn is_comparison(op: &str) -> bool {
    matches!(op, "==" | "!=" | ">" | "<" | ">=" | "<=")
}

fn is_set(op: &str) -> bool {
    matches!(op, "and" | "or" | "unless")
}

/// Applies `op` to two floats; for comparisons, returns the left value and
/// whether the comparison holds.
fn elem(op: &str, l: f64, r: f64) -> Result<(f64, bool), EvalError> {
    Ok(match op {
        "+" => (l + r, true),
        "-" => (l - r, true),
        "*" => (l * r, true),
        "/" => (l / r, true),
        "^" => (l.powf(r), true),
        "%" => (l % r, true),
        "atan2" => (l.atan2(r), true),
        "==" => (l, l == r),
        "!=" => (l, l != r),
        ">" => (l, l > r),
        "<" => (l, l < r),
        ">=" => (l, l >= r),
        "<=" => (l, l <= r),
        _ => {
            return Err(EvalError::exec(format!("operator \"{op}\" not allowed for float operations")));
        }
    })
}

/// Evaluates `lhs op rhs` at time `ts`.
pub fn eval(op: &str, modifier: Option<&BinModifier>, lhs: Value, rhs: Value, ts: i64) -> Result<Value, EvalError> {
    eval_with(op, modifier, lhs, rhs, ts, &mut BinaryMemo::default())
}

/// [`eval`] reusing matching work across steps.
pub fn eval_with(
    op: &str,
    modifier: Option<&BinModifier>,
    lhs: Value,
    rhs: Value,
    ts: i64,
    memo: &mut BinaryMemo,
) -> Result<Value, EvalError> {
    let return_bool = modifier.is_some_and(|m| m.return_bool);
    match (lhs, rhs) {
        (Value::Scalar { v: l, .. }, Value::Scalar { v: r, .. }) => {
            let (v, keep) = elem(op, l, r)?;
            let v = if is_comparison(op) { f64::from(u8::from(keep)) } else { v };
            Ok(Value::Scalar { t: ts, v })
        }
        (Value::Vector(vs), Value::Scalar { v: s, .. }) => Ok(Value::Vector(vector_scalar(op, vs, s, false, return_bool, ts)?)),
        (Value::Scalar { v: s, .. }, Value::Vector(vs)) => Ok(Value::Vector(vector_scalar(op, vs, s, true, return_bool, ts)?)),
        (Value::Vector(l), Value::Vector(r)) => {
            let default = BinModifier::default();
            let m = modifier.unwrap_or(&default);
            if is_set(op) {
                return Ok(Value::Vector(set_op(op, l, r, m.matching.as_ref(), memo)));
            }
            Ok(Value::Vector(vector_vector(op, l, r, m, return_bool, ts, memo)?))
        }
        (l, r) => Err(EvalError::exec(format!("binary operator \"{op}\" not allowed between {} and {}", l.type_name(), r.type_name()))),
    }
}

fn vector_scalar(op: &str, vs: Vec<Sample>, s: f64, swap: bool, return_bool: bool, ts: i64) -> Result<Vec<Sample>, EvalError> {
    let cmp = is_comparison(op);
    let mut out = Vec::with_capacity(vs.len());
    for mut x in vs {
        let (l, r) = if swap { (s, x.v) } else { (x.v, s) };
        let (mut v, keep) = elem(op, l, r)?;
        // A comparison keeps the vector element's value even when it is on the right.
        if cmp && swap {
            v = x.v;
        }
        if return_bool {
            v = f64::from(u8::from(keep));
        } else if !keep {
            continue;
        }
        if !cmp || return_bool {
            x.drop_name = true;
        }
        x.v = v;
        x.t = ts;
        out.push(x);
    }
    Ok(out)
}

/// The matching key of a sample: the `on` labels, or all but the `ignoring`
/// labels and the metric name.
fn signature(l: &Labels, matching: Option<&LabelModifier>) -> Labels {
    match matching {
        Some(LabelModifier::Include(names)) => Labels::from_sorted(l.iter().filter(|x| names.labels.contains(&x.name)).cloned().collect()),
        Some(LabelModifier::Exclude(names)) => {
            Labels::from_sorted(l.iter().filter(|x| x.name != METRIC_NAME && !names.labels.contains(&x.name)).cloned().collect())
        }
        None => Labels::from_sorted(l.iter().filter(|x| x.name != METRIC_NAME).cloned().collect()),
    }
}

fn set_op(op: &str, l: Vec<Sample>, r: Vec<Sample>, matching: Option<&LabelModifier>, memo: &mut BinaryMemo) -> Vec<Sample> {
    let mut signature = |l: &Labels, m: Option<&LabelModifier>| memo.signature(l, m);
    match op {
        "and" => {
            let rs: HashSet<Labels, IdBuild> = r.iter().map(|s| signature(&s.metric, matching)).collect();
            l.into_iter().filter(|s| rs.contains(&signature(&s.metric, matching))).collect()
        }
        "unless" => {
            let rs: HashSet<Labels, IdBuild> = r.iter().map(|s| signature(&s.metric, matching)).collect();
            l.into_iter().filter(|s| !rs.contains(&signature(&s.metric, matching))).collect()
        }
        _ => {
            let ls: HashSet<Labels, IdBuild> = l.iter().map(|s| signature(&s.metric, matching)).collect();
            let mut out = l;
            out.extend(r.into_iter().filter(|s| !ls.contains(&signature(&s.metric, matching))));
            out
        }
    }
}

fn vector_vector(
    op: &str,
    lhs: Vec<Sample>,
    rhs: Vec<Sample>,
    m: &BinModifier,
    return_bool: bool,
    ts: i64,
    memo: &mut BinaryMemo,
) -> Result<Vec<Sample>, EvalError> {
    let matching = m.matching.as_ref();
    let (card_one_to_many, include) = match &m.card {
        VectorMatchCardinality::OneToMany(l) => (true, Some(l)),
        VectorMatchCardinality::ManyToOne(l) => (false, Some(l)),
        _ => (false, None),
    };
    let one_to_one = include.is_none();
    // With group_right the roles swap: the left side is the "one" side.
    let (many, one) = if card_one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    let one_side = if card_one_to_many { "left" } else { "right" };
    let mut one_by_sig: HashMap<Labels, Sample, IdBuild> = HashMap::with_capacity_and_hasher(one.len(), IdBuild::default());
    for s in one {
        let sig = memo.signature(&s.metric, matching);
        if let Some(prev) = one_by_sig.get(&sig) {
            let mut pair = [go_labels(&prev.metric), go_labels(&s.metric)];
            pair.sort();
            return Err(EvalError::exec(format!(
                "found duplicate series for the match group {} on the {one_side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                go_labels(&sig),
                pair[0],
                pair[1]
            )));
        }
        one_by_sig.insert(sig, s);
    }
    let cmp = is_comparison(op);
    let drop_name = !cmp || return_bool;
    let mut out = Vec::new();
    let mut inserted: HashMap<Labels, (), IdBuild> = HashMap::default();
    let mut matched: HashMap<Labels, (), IdBuild> = HashMap::default();
    for s in many {
        let sig = memo.signature(&s.metric, matching);
        let Some(o) = one_by_sig.get(&sig) else {
            continue;
        };
        // One-to-one: a second series on the "many" side is an error even when
        // the comparison would filter it out.
        if one_to_one && matched.insert(sig.clone(), ()).is_some() {
            return Err(EvalError::exec("multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"));
        }
        let (l, r) = if card_one_to_many { (o.v, s.v) } else { (s.v, o.v) };
        let (mut v, keep) = elem(op, l, r)?;
        if return_bool {
            v = f64::from(u8::from(keep));
        } else if !keep {
            continue;
        }
        // Comparisons keep the "many" side's value.
        if cmp && !return_bool {
            v = s.v;
        }
        let key = (s.metric.identity(), o.metric.identity());
        let metric = match memo.results.get(&key) {
            Some((_, _, out)) => out.clone(),
            None => {
                let out = result_metric(&s.metric, &o.metric, one_to_one, matching, include.map(|l| l.labels.as_slice()));
                memo.results.insert(key, (s.metric.clone(), o.metric.clone(), out.clone()));
                out
            }
        };
        let key = if one_to_one { sig.clone() } else { metric.clone() };
        if inserted.insert(key, ()).is_some() {
            return Err(EvalError::exec(if one_to_one {
                "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".to_string()
            } else {
                "multiple matches for labels: grouping labels must ensure unique matches".to_string()
            }));
        }
        out.push(Sample { metric, t: ts, v, drop_name: drop_name || s.drop_name && cmp });
    }
    Ok(out)
}

/// Labels of a result sample, taken from the "many" side.
fn result_metric(many: &Labels, one: &Labels, one_to_one: bool, matching: Option<&LabelModifier>, include: Option<&[String]>) -> Labels {
    if one_to_one {
        return match matching {
            Some(LabelModifier::Include(names)) => {
                Labels::from_sorted(many.iter().filter(|x| names.labels.contains(&x.name) || x.name == METRIC_NAME).cloned().collect())
            }
            Some(LabelModifier::Exclude(names)) => {
                Labels::from_sorted(many.iter().filter(|x| !names.labels.contains(&x.name)).cloned().collect())
            }
            None => many.clone(),
        };
    }
    let mut b = LabelsBuilder::from_labels(many);
    for name in include.unwrap_or(&[]) {
        let v = one.get(name);
        if v.is_empty() {
            b.del(name);
        } else {
            b.set(name.clone(), v.to_string());
        }
    }
    b.build()
}

/// Formats labels as Go's `labels.Labels.String()` does: `{a="b", c="d"}`,
/// the metric name included as `__name__`.
pub fn go_labels(l: &Labels) -> String {
    let parts: Vec<String> = l.iter().map(|x| format!("{}=\"{}\"", x.name, crate::model::labels::escape_label_value(&x.value))).collect();
    format!("{{{}}}", parts.join(", "))
}

/// Removes `__name__` from a label set.
pub fn without_name(l: &Labels) -> Labels {
    if !l.has(METRIC_NAME) {
        return l.clone();
    }
    Labels::from_sorted(l.iter().filter(|x| x.name != METRIC_NAME).cloned().collect::<Vec<Label>>())
}
