//! The notifier's metrics, under Prometheus' names.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of the per-Alertmanager series.
pub type AmLabels = [(&'static str, String); 1];

/// Clones share the series.
#[derive(Clone, Default, Debug)]
pub struct NotifyMetrics {
    pub sent: Family<AmLabels, Counter>,
    pub errors: Family<AmLabels, Counter>,
    pub dropped: Counter,
    pub queue_length: Gauge,
    pub queue_capacity: Gauge,
    pub discovered: Gauge,
}

impl NotifyMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register("prometheus_notifications_sent", "Total number of alerts sent.", self.sent.clone());
        r.register("prometheus_notifications_errors", "Total number of sent alerts affected by errors.", self.errors.clone());
        r.register(
            "prometheus_notifications_dropped",
            "Total number of alerts dropped due to errors when sending to Alertmanager.",
            self.dropped.clone(),
        );
        r.register("prometheus_notifications_queue_length", "The number of alert notifications in the queue.", self.queue_length.clone());
        r.register(
            "prometheus_notifications_queue_capacity",
            "The capacity of the alert notifications queue.",
            self.queue_capacity.clone(),
        );
        r.register(
            "prometheus_notifications_alertmanagers_discovered",
            "The number of alertmanagers discovered and active.",
            self.discovered.clone(),
        );
    }
}
