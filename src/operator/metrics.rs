//! The operator's own metrics: reconcile duration and outcome, errors, and
//! how many Prometheus objects wait for a reconcile.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub reason: String,
}

/// Shared by the controller, the reconciler and the trigger streams.
#[derive(Clone)]
pub struct Metrics {
    pub reconciles: Counter,
    pub duration: Histogram,
    pub errors: Family<ErrorLabels, Counter>,
    /// Objects written by server-side apply (a no-op reconcile adds none).
    pub writes: Counter,
    queue_depth: Gauge,
    pending: Arc<Mutex<HashSet<String>>>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            reconciles: Counter::default(),
            duration: Histogram::new([0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            errors: Family::default(),
            writes: Counter::default(),
            queue_depth: Gauge::default(),
            pending: Arc::default(),
        }
    }
}

impl Metrics {
    pub fn register(&self, r: &mut Registry) {
        r.register("hearth_operator_reconciles", "Reconciles of Prometheus objects.", self.reconciles.clone());
        r.register("hearth_operator_reconcile_duration_seconds", "Time one reconcile took.", self.duration.clone());
        r.register("hearth_operator_reconcile_errors", "Reconciles that failed, by reason.", self.errors.clone());
        r.register("hearth_operator_object_writes", "Objects created or changed by server-side apply.", self.writes.clone());
        r.register(
            "hearth_operator_reconcile_queue_depth",
            "Prometheus objects with a change (ServiceMonitor, AlertRule, Namespace) not yet reconciled.",
            self.queue_depth.clone(),
        );
    }

    /// A change was seen that `prometheus` (`namespace/name`) must reconcile.
    pub fn queued(&self, prometheus: String) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.insert(prometheus);
        self.queue_depth.set(p.len() as i64);
    }

    /// A reconcile of `prometheus` started.
    pub fn started(&self, prometheus: &str) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.remove(prometheus);
        self.queue_depth.set(p.len() as i64);
    }
}
