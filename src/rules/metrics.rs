//! The rule manager's metrics, under Prometheus' names so that its
//! dashboards and mixin alerts work unchanged.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of the per-group series: `rule_group="FILE;NAME"`.
pub type GroupLabels = [(&'static str, String); 1];

/// Counters and gauges per rule group; clones share the series.
#[derive(Clone, Default, Debug)]
pub struct RuleMetrics {
    pub evaluations: Family<GroupLabels, Counter>,
    pub failures: Family<GroupLabels, Counter>,
    pub missed: Family<GroupLabels, Counter>,
    pub last_duration: Family<GroupLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub interval: Family<GroupLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
}

impl RuleMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register("prometheus_rule_evaluations", "The total number of rule evaluations.", self.evaluations.clone());
        r.register("prometheus_rule_evaluation_failures", "The total number of rule evaluation failures.", self.failures.clone());
        r.register(
            "prometheus_rule_group_iterations_missed",
            "The total number of rule group evaluations missed due to slow rule group evaluation.",
            self.missed.clone(),
        );
        r.register(
            "prometheus_rule_group_last_duration_seconds",
            "The duration of the last rule group evaluation.",
            self.last_duration.clone(),
        );
        r.register("prometheus_rule_group_interval_seconds", "The interval of a rule group.", self.interval.clone());
    }
}
