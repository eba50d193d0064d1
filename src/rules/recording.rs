//! Recording rules: an expression's result stored under a new metric name.

use std::collections::{BTreeMap, HashSet};

use super::query::QueryContext;
use crate::model::{Labels, LabelsBuilder};

/// A `record:` rule, with its group's labels merged in.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingRule {
    pub name: String,
    pub expr: String,
    /// Group labels overlaid with the rule's own.
    pub labels: BTreeMap<String, String>,
}

impl RecordingRule {
    /// The series to store at `ts`: each result sample renamed to the rule
    /// name with the rule's labels set. Fails like Prometheus when two
    /// results collide after relabeling or when more than `limit` (if not 0)
    /// series come out.
    pub fn eval(&self, q: &QueryContext<'_>, ts: i64, limit: u64) -> Result<Vec<(Labels, f64)>, String> {
        let vector = q.vector(&self.expr, ts)?;
        let mut seen = HashSet::with_capacity(vector.len());
        let mut out = Vec::with_capacity(vector.len());
        for s in vector {
            let mut b = LabelsBuilder::from_labels(&s.metric);
            b.set("__name__", self.name.as_str());
            for (k, v) in &self.labels {
                b.set(k.as_str(), v.as_str());
            }
            let labels = b.build();
            if !seen.insert(labels.stable_hash()) {
                return Err("vector contains metrics with the same labelset after applying rule labels".into());
            }
            out.push((labels, s.v));
        }
        if limit > 0 && out.len() as u64 > limit {
            return Err(format!("exceeded limit of {limit} with {} series", out.len()));
        }
        Ok(out)
    }
}
