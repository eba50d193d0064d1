//! Sending alerts to Alertmanager: a bounded queue, batches to every
//! discovered Alertmanager, external labels and `alert_relabel_configs`.

pub mod alert;
pub mod alertmanagers;
pub mod metrics;
pub mod notifier;

pub use alert::Alert;
pub use notifier::Notifier;

/// Where rule evaluation hands its alerts; the notifier in the server, a
/// recorder in tests.
pub trait AlertSink: Send + Sync {
    fn send(&self, alerts: Vec<Alert>);
}
