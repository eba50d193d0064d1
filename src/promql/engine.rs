//! Query entry points and the evaluator.

use std::time::Duration;

use super::Annotations;
use super::value::{EvalError, Value};
use crate::tsdb::Querier;

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
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions { lookback_ms: 300_000, max_samples: 50_000_000, timeout: Duration::from_secs(120), max_concurrent: 20 }
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

/// Evaluates PromQL over a storage view.
pub struct Engine {
    opts: EngineOptions,
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Evaluates `query` at `ts` (ms).
    pub fn instant(&self, q: &Querier, query: &str, ts: i64) -> Result<QueryResult, QueryError> {
        let _ = (q, query, ts);
        Err(QueryError::Eval(EvalError::exec("evaluator not written yet")))
    }

    /// Evaluates `query` at every step from `start` to `end` (ms, inclusive).
    pub fn range(&self, q: &Querier, query: &str, start: i64, end: i64, step: i64) -> Result<QueryResult, QueryError> {
        let _ = (q, query, start, end, step);
        Err(QueryError::Eval(EvalError::exec("evaluator not written yet")))
    }
}
