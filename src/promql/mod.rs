//! PromQL: parsing (promql-parser) and Hearth's own evaluator over the TSDB.
//!
//! - [`engine`]: query entry points, limits, the step evaluator, selectors,
//!   binary operators and subqueries;
//! - [`functions`]: every non-experimental PromQL function;
//! - [`aggregate`]: aggregation operators;
//! - [`value`]: the values expressions evaluate to;
//! - [`metrics`]: the engine's own metrics;
//! - [`promqltest`]: Prometheus' test-script format, for conformance.

pub mod aggregate;
pub mod binary;
pub mod engine;
pub(crate) mod float;
pub mod functions;
pub(crate) mod gofmt;
pub mod metrics;
pub mod parse;
pub mod promqltest;
pub mod selectors;
pub mod unique;
pub mod value;

pub use engine::{Engine, EngineOptions, Parallelism, QueryError, QueryOptions, QueryResult};
pub use value::{EvalError, Sample, Series, Value};

/// Warnings and infos attached to a result, as the Prometheus API returns them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Annotations {
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

impl Annotations {
    pub fn warn(&mut self, msg: impl Into<String>) {
        let m = msg.into();
        if !self.warnings.contains(&m) {
            self.warnings.push(m);
        }
    }

    pub fn info(&mut self, msg: impl Into<String>) {
        let m = msg.into();
        if !self.infos.contains(&m) {
            self.infos.push(m);
        }
    }

    pub fn extend(&mut self, other: Annotations) {
        other.warnings.into_iter().for_each(|w| self.warn(w));
        other.infos.into_iter().for_each(|i| self.info(i));
    }
}
