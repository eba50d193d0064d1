//! The query engine's metrics: how many queries run, how long they take and
//! why they fail, for the "Queries" row of the dashboards and for alerts on
//! query overload. Prometheus' names where the meaning is the same;
//! Prometheus reports durations as a summary, which prometheus-client
//! cannot, so the duration histogram has a name of our own.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::engine::QueryError;
use super::value::EvalError;

/// Instant or range query.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum QueryKind {
    Instant,
    Range,
}

impl EncodeLabelValue for QueryKind {
    fn encode(&self, e: &mut prometheus_client::encoding::LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        e.write_str(match self {
            QueryKind::Instant => "instant",
            QueryKind::Range => "range",
        })
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: QueryKind,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// `parse`, `execution`, `too_many_samples`, `timeout` or `canceled`.
    pub reason: &'static str,
}

/// Clones share the series.
#[derive(Clone, Debug)]
pub struct EngineMetrics {
    /// Queries running or waiting for a slot.
    pub queries: Gauge,
    pub concurrent_max: Gauge,
    pub duration: Family<KindLabels, Histogram>,
    pub failures: Family<FailureLabels, Counter>,
}

impl EngineMetrics {
    pub fn new(max_concurrent: usize) -> EngineMetrics {
        let m = EngineMetrics {
            queries: Gauge::default(),
            concurrent_max: Gauge::default(),
            duration: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 4.0, 9))),
            failures: Family::default(),
        };
        m.concurrent_max.set(max_concurrent as i64);
        m
    }

    pub fn register(&self, r: &mut Registry) {
        r.register("prometheus_engine_queries", "The current number of queries being executed or waiting", self.queries.clone());
        r.register("prometheus_engine_queries_concurrent_max", "The max number of concurrent queries", self.concurrent_max.clone());
        r.register(
            "hearth_engine_query_duration_seconds",
            "Time from receiving a query to its result, including the wait for a slot",
            self.duration.clone(),
        );
        r.register("hearth_engine_query_failures", "Queries that failed, by reason", self.failures.clone());
    }

    /// Records one finished query.
    pub fn observe(&self, kind: QueryKind, seconds: f64, error: Option<&QueryError>) {
        self.duration.get_or_create(&KindLabels { kind }).observe(seconds);
        if let Some(e) = error {
            let reason = match e {
                QueryError::Parse(_) => "parse",
                QueryError::Eval(EvalError::Execution(_)) => "execution",
                QueryError::Eval(EvalError::TooManySamples) => "too_many_samples",
                QueryError::Eval(EvalError::Timeout) => "timeout",
                QueryError::Eval(EvalError::Canceled) => "canceled",
            };
            self.failures.get_or_create(&FailureLabels { reason }).inc();
        }
    }
}
