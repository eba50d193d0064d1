//! The values PromQL expressions evaluate to.

use std::ops::Deref;
use std::sync::Arc;

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
    pub points: Points,
    pub drop_name: bool,
}

/// A run of points: a window onto a shared array. A range selector hands out
/// one window per step without copying the points.
#[derive(Clone)]
pub struct Points {
    data: Arc<[Point]>,
    start: usize,
    end: usize,
}

impl Points {
    /// The window `[start, end)` of `data` (clamped to its length).
    pub fn window(data: Arc<[Point]>, start: usize, end: usize) -> Self {
        let end = end.min(data.len());
        Points { data, start: start.min(end), end }
    }
}

impl Points {
    /// The shared array this window is onto, and the window's bounds in it:
    /// lets functions memoize per-series facts across the steps of a query.
    pub fn source(&self) -> (&Arc<[Point]>, usize, usize) {
        (&self.data, self.start, self.end)
    }
}

impl Deref for Points {
    type Target = [Point];

    fn deref(&self) -> &[Point] {
        &self.data[self.start..self.end]
    }
}

impl From<Vec<Point>> for Points {
    fn from(v: Vec<Point>) -> Self {
        let end = v.len();
        Points { data: Arc::from(v), start: 0, end }
    }
}

impl FromIterator<Point> for Points {
    fn from_iter<I: IntoIterator<Item = Point>>(iter: I) -> Self {
        iter.into_iter().collect::<Vec<_>>().into()
    }
}

impl<'a> IntoIterator for &'a Points {
    type Item = &'a Point;
    type IntoIter = std::slice::Iter<'a, Point>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl PartialEq for Points {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl std::fmt::Debug for Points {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
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
