//! PromQL aggregations (being written; this is the agreed interface).

use promql_parser::parser::LabelModifier;
use promql_parser::parser::token::TokenType;

use crate::promql::Annotations;
use crate::promql::value::{EvalError, Sample, Value};

/// Aggregates one step's instant vector.
pub fn aggregate(
    op: TokenType,
    param: Option<&Value>,
    modifier: Option<&LabelModifier>,
    input: Vec<Sample>,
    ts: i64,
    annotations: &mut Annotations,
) -> Result<Vec<Sample>, EvalError> {
    let _ = (param, modifier, input, ts, annotations);
    Err(EvalError::exec(format!(
        "aggregation {op} is not implemented yet"
    )))
}
