//! The values PromQL expressions evaluate to.

use crate::model::{Labels, Sample as Point};

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub metric: Labels,
    /// Timestamp in ms: the evaluation time, except for samples straight from
    /// a vector selector, which keep their stored timestamp so `timestamp()`
    /// can report it.
    pub t: i64,
    pub v: f64,
    /// Set when the metric name must be dropped at the end of evaluation
    /// (Prometheus 3 delays dropping `__name__` so `label_replace` and
    /// friends can still see it).
    pub drop_name: bool,
}

impl Sample {
    pub fn new(metric: Labels, t: i64, v: f64) -> Self {
        Sample { metric, t, v, drop_name: false }
    }
}

/// One series of a range vector (matrix): points oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub metric: Labels,
    pub points: Vec<Point>,
    pub drop_name: bool,
}

/// A PromQL value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar { t: i64, v: f64 },
    String { t: i64, v: String },
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
}

impl Value {
    /// The type name used in Prometheus' messages and API (`scalar`, `string`, `vector`, `matrix`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar { .. } => "scalar",
            Value::String { .. } => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// An error during evaluation, worded like Prometheus'.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// Any execution error (e.g. "vector cannot contain metrics with the same labelset").
    #[error("{0}")]
    Execution(String),
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    #[error("query timed out in query execution")]
    Timeout,
    #[error("query was canceled")]
    Canceled,
}

impl EvalError {
    pub fn exec(msg: impl Into<String>) -> Self {
        EvalError::Execution(msg.into())
    }
}
