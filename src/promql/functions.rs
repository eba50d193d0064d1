//! PromQL functions (being written; this is the agreed interface).

use promql_parser::parser::Expr;

use crate::promql::Annotations;
use crate::promql::value::{EvalError, Value};

/// What a call gets besides its argument values.
pub struct FnContext<'a> {
    /// Evaluation timestamp in ms.
    pub ts: i64,
    /// For a range-vector argument: its range in ms; 0 otherwise.
    pub range_ms: i64,
    /// The argument expressions as parsed.
    pub args: &'a [Box<Expr>],
    /// Where to add warnings/infos.
    pub annotations: &'a mut Annotations,
}

/// Calls function `name`.
pub fn call(name: &str, args: Vec<Value>, ctx: &mut FnContext) -> Result<Value, EvalError> {
    let _ = (args, ctx);
    Err(EvalError::exec(format!(
        "function {name} is not implemented yet"
    )))
}
