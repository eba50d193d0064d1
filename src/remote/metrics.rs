//! Remote-write self-metrics under Prometheus' names
//! (`prometheus_remote_storage_*`, `prometheus_wal_watcher_*`), labelled
//! `remote_name` and `url` as Prometheus labels them, so its dashboards and
//! the prometheus-mixin alerts (e.g. `PrometheusRemoteWriteBehind`) work
//! against Hearth.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// `remote_name` and `url`.
type QueueLabels = [(&'static str, String); 2];
/// `consumer` of the WAL watcher metrics.
type ConsumerLabels = [(&'static str, String); 1];

type FloatGauge = Gauge<f64, AtomicU64>;

fn batch_duration() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// Every remote-write metric of the process; clones share the series.
#[derive(Clone)]
pub struct RemoteMetrics {
    samples_total: Family<QueueLabels, Counter>,
    samples_failed: Family<QueueLabels, Counter>,
    samples_retried: Family<QueueLabels, Counter>,
    samples_dropped: Family<QueueLabels, Counter>,
    samples_pending: Family<QueueLabels, Gauge>,
    bytes_total: Family<QueueLabels, Counter>,
    shards: Family<QueueLabels, Gauge>,
    shards_min: Family<QueueLabels, Gauge>,
    shards_max: Family<QueueLabels, Gauge>,
    shards_desired: Family<QueueLabels, FloatGauge>,
    shard_capacity: Family<QueueLabels, Gauge>,
    max_samples_per_send: Family<QueueLabels, Gauge>,
    highest_sent: Family<QueueLabels, FloatGauge>,
    sent_batch_duration: Family<QueueLabels, Histogram, fn() -> Histogram>,
    watcher_segment: Family<ConsumerLabels, Gauge>,
    /// Highest sample timestamp read from the WAL by any queue (seconds).
    pub highest_timestamp_in: FloatGauge,
    /// Samples read from the WAL by all queues.
    pub samples_in: Counter,
}

impl Default for RemoteMetrics {
    fn default() -> Self {
        RemoteMetrics {
            samples_total: Family::default(),
            samples_failed: Family::default(),
            samples_retried: Family::default(),
            samples_dropped: Family::default(),
            samples_pending: Family::default(),
            bytes_total: Family::default(),
            shards: Family::default(),
            shards_min: Family::default(),
            shards_max: Family::default(),
            shards_desired: Family::default(),
            shard_capacity: Family::default(),
            max_samples_per_send: Family::default(),
            highest_sent: Family::default(),
            sent_batch_duration: Family::new_with_constructor(batch_duration),
            watcher_segment: Family::default(),
            highest_timestamp_in: FloatGauge::default(),
            samples_in: Counter::default(),
        }
    }
}

/// One queue's handles, taken once so the hot path does no lookups.
#[derive(Clone)]
pub struct QueueMetrics {
    /// Samples in send attempts (retries count again, as in Prometheus).
    pub samples_total: Counter,
    /// Samples dropped after a non-recoverable error.
    pub samples_failed: Counter,
    /// Samples in attempts that failed recoverably and are retried.
    pub samples_retried: Counter,
    /// Samples dropped before sending: relabelled away, or of an unknown series.
    pub samples_dropped: Counter,
    pub samples_pending: Gauge,
    /// Compressed bytes in send attempts.
    pub bytes_total: Counter,
    pub shards: Gauge,
    pub shards_min: Gauge,
    pub shards_max: Gauge,
    pub shards_desired: FloatGauge,
    pub shard_capacity: Gauge,
    pub max_samples_per_send: Gauge,
    /// Newest timestamp successfully sent (seconds).
    pub highest_sent: FloatGauge,
    pub sent_batch_duration: Histogram,
    /// Segment the queue's WAL reader is in.
    pub watcher_segment: Gauge,
    pub highest_timestamp_in: FloatGauge,
    pub samples_in: Counter,
}

impl RemoteMetrics {
    /// Registers everything (counters get `_total` from the encoder).
    pub fn register(&self, r: &mut Registry) {
        let p = "prometheus_remote_storage_";
        r.register(format!("{p}samples"), "Total number of samples sent to remote storage.", self.samples_total.clone());
        r.register(
            format!("{p}samples_failed"),
            "Total number of samples which failed on send to remote storage, non-recoverable errors.",
            self.samples_failed.clone(),
        );
        r.register(
            format!("{p}samples_retried"),
            "Total number of samples which failed on send to remote storage but were retried because the send error was recoverable.",
            self.samples_retried.clone(),
        );
        r.register(
            format!("{p}samples_dropped"),
            "Total number of samples which were dropped after being read from the WAL before being sent via remote write, either via relabelling or unintentionally because of an unknown reference ID.",
            self.samples_dropped.clone(),
        );
        r.register(
            format!("{p}samples_pending"),
            "The number of samples pending in the queues shards to be sent to the remote storage.",
            self.samples_pending.clone(),
        );
        r.register(
            format!("{p}bytes"),
            "The total number of bytes of data (not metadata) sent by the queue after compression.",
            self.bytes_total.clone(),
        );
        r.register(format!("{p}shards"), "The number of shards used for parallel sending to the remote storage.", self.shards.clone());
        r.register(format!("{p}shards_min"), "The minimum number of shards that the queue is allowed to run.", self.shards_min.clone());
        r.register(format!("{p}shards_max"), "The maximum number of shards that the queue is allowed to run.", self.shards_max.clone());
        r.register(
            format!("{p}shards_desired"),
            "The number of shards that the queues shard calculation wants to run based on the rate of samples in vs. samples out.",
            self.shards_desired.clone(),
        );
        r.register(
            format!("{p}shard_capacity"),
            "The capacity of each shard of the queue used for parallel sending to the remote storage.",
            self.shard_capacity.clone(),
        );
        r.register(
            format!("{p}max_samples_per_send"),
            "The maximum number of samples to be sent, in a single request, to the remote storage.",
            self.max_samples_per_send.clone(),
        );
        r.register(
            format!("{p}queue_highest_sent_timestamp_seconds"),
            "Timestamp from a WAL sample, the highest timestamp successfully sent by this queue, in seconds since epoch.",
            self.highest_sent.clone(),
        );
        r.register(
            format!("{p}sent_batch_duration_seconds"),
            "Duration of send calls to the remote storage.",
            self.sent_batch_duration.clone(),
        );
        r.register(
            format!("{p}highest_timestamp_in_seconds"),
            "Highest timestamp that has come into the remote storage via the WAL, in seconds since epoch.",
            self.highest_timestamp_in.clone(),
        );
        r.register(format!("{p}samples_in"), "Samples read into remote storage from the WAL.", self.samples_in.clone());
        r.register(
            "prometheus_wal_watcher_current_segment",
            "Current segment the WAL watcher is reading records from.",
            self.watcher_segment.clone(),
        );
    }

    fn labels(name: &str, url: &str) -> QueueLabels {
        [("remote_name", name.to_string()), ("url", url.to_string())]
    }

    /// The handles of queue `name` sending to `url`.
    pub fn queue(&self, name: &str, url: &str) -> QueueMetrics {
        let l = Self::labels(name, url);
        QueueMetrics {
            samples_total: self.samples_total.get_or_create(&l).clone(),
            samples_failed: self.samples_failed.get_or_create(&l).clone(),
            samples_retried: self.samples_retried.get_or_create(&l).clone(),
            samples_dropped: self.samples_dropped.get_or_create(&l).clone(),
            samples_pending: self.samples_pending.get_or_create(&l).clone(),
            bytes_total: self.bytes_total.get_or_create(&l).clone(),
            shards: self.shards.get_or_create(&l).clone(),
            shards_min: self.shards_min.get_or_create(&l).clone(),
            shards_max: self.shards_max.get_or_create(&l).clone(),
            shards_desired: self.shards_desired.get_or_create(&l).clone(),
            shard_capacity: self.shard_capacity.get_or_create(&l).clone(),
            max_samples_per_send: self.max_samples_per_send.get_or_create(&l).clone(),
            highest_sent: self.highest_sent.get_or_create(&l).clone(),
            sent_batch_duration: self.sent_batch_duration.get_or_create(&l).clone(),
            watcher_segment: self.watcher_segment.get_or_create(&[("consumer", name.to_string())]).clone(),
            highest_timestamp_in: self.highest_timestamp_in.clone(),
            samples_in: self.samples_in.clone(),
        }
    }

    /// Removes the series of a queue that no longer exists.
    pub fn remove_queue(&self, name: &str, url: &str) {
        let l = Self::labels(name, url);
        self.samples_total.remove(&l);
        self.samples_failed.remove(&l);
        self.samples_retried.remove(&l);
        self.samples_dropped.remove(&l);
        self.samples_pending.remove(&l);
        self.bytes_total.remove(&l);
        self.shards.remove(&l);
        self.shards_min.remove(&l);
        self.shards_max.remove(&l);
        self.shards_desired.remove(&l);
        self.shard_capacity.remove(&l);
        self.max_samples_per_send.remove(&l);
        self.highest_sent.remove(&l);
        self.sent_batch_duration.remove(&l);
        self.watcher_segment.remove(&[("consumer", name.to_string())]);
    }
}
