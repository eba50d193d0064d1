//! Running a rule's expression: Prometheus' `EngineQueryFunc`.

use crate::promql::value::{Sample, Value};
use crate::promql::{Engine, QueryResult};
use crate::tsdb::Querier;

/// What a rule evaluation reads: the engine and a storage view.
pub struct QueryContext<'a> {
    pub engine: &'a Engine,
    pub querier: &'a Querier,
}

impl QueryContext<'_> {
    /// Evaluates `expr` at `ts` (ms) as an instant vector. A scalar becomes a
    /// one-element vector without labels, as in Prometheus; strings and
    /// range vectors are errors.
    pub fn vector(&self, expr: &str, ts: i64) -> Result<Vec<Sample>, String> {
        let QueryResult { value, .. } = self.engine.instant(self.querier, expr, ts).map_err(|e| e.to_string())?;
        match value {
            Value::Vector(v) => Ok(v),
            Value::Scalar { t, v } => Ok(vec![Sample::new(crate::model::Labels::empty(), t, v)]),
            other => Err(format!("rule result is not a vector or scalar: {}", other.type_name())),
        }
    }
}
