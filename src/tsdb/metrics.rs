//! The TSDB's self-metrics.
//!
//! Names follow Prometheus' own (`prometheus_tsdb_*`) wherever the meaning is
//! the same, so existing dashboards and alerts (prometheus-mixin) work against
//! Hearth unchanged.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::wal::WalObserver;

/// Handles to every TSDB metric; cheap to clone (shared atomics).
#[derive(Clone)]
pub struct TsdbMetrics {
    pub head_series: Gauge,
    pub head_series_created: Counter,
    pub head_series_removed: Counter,
    pub head_chunks_spilled: Counter,
    pub samples_appended: Counter,
    pub out_of_order_samples: Counter,
    pub duplicate_samples: Counter,
    pub out_of_bound_samples: Counter,
    pub head_min_time: Gauge,
    pub head_max_time: Gauge,
    pub head_truncations: Counter,
    pub wal_fsync_duration: Histogram,
    pub wal_corruptions: Counter,
    pub wal_segments_cut: Counter,
    pub checkpoint_creations: Counter,
    pub replay_duration: Gauge<f64, AtomicU64>,
    pub compactions: Counter,
    pub compactions_failed: Counter,
    pub compaction_duration: Histogram,
    pub blocks_loaded: Gauge,
    pub storage_blocks_bytes: Gauge,
    pub time_retentions: Counter,
    pub size_retentions: Counter,
}

impl Default for TsdbMetrics {
    fn default() -> Self {
        TsdbMetrics {
            head_series: Gauge::default(),
            head_series_created: Counter::default(),
            head_series_removed: Counter::default(),
            head_chunks_spilled: Counter::default(),
            samples_appended: Counter::default(),
            out_of_order_samples: Counter::default(),
            duplicate_samples: Counter::default(),
            out_of_bound_samples: Counter::default(),
            head_min_time: Gauge::default(),
            head_max_time: Gauge::default(),
            head_truncations: Counter::default(),
            wal_fsync_duration: Histogram::new(exponential_buckets(0.0001, 4.0, 10)),
            wal_corruptions: Counter::default(),
            wal_segments_cut: Counter::default(),
            checkpoint_creations: Counter::default(),
            replay_duration: Gauge::default(),
            compactions: Counter::default(),
            compactions_failed: Counter::default(),
            compaction_duration: Histogram::new(exponential_buckets(0.01, 4.0, 10)),
            blocks_loaded: Gauge::default(),
            storage_blocks_bytes: Gauge::default(),
            time_retentions: Counter::default(),
            size_retentions: Counter::default(),
        }
    }
}

impl TsdbMetrics {
    /// Registers every metric (counters get their `_total` suffix from the encoder).
    pub fn register(&self, r: &mut Registry) {
        let p = "prometheus_tsdb_";
        r.register(format!("{p}head_series"), "Series currently in the head.", self.head_series.clone());
        r.register(format!("{p}head_series_created"), "Series created in the head.", self.head_series_created.clone());
        r.register(format!("{p}head_series_removed"), "Series removed from the head.", self.head_series_removed.clone());
        r.register(
            format!("{p}head_chunks_spilled"),
            "Completed head chunks moved to memory-mapped files.",
            self.head_chunks_spilled.clone(),
        );
        r.register(format!("{p}head_samples_appended"), "Samples appended to the head.", self.samples_appended.clone());
        r.register(
            format!("{p}out_of_order_samples"),
            "Samples rejected for being older than the series' newest sample.",
            self.out_of_order_samples.clone(),
        );
        r.register(
            format!("{p}duplicate_samples"),
            "Samples rejected for repeating a timestamp with a different value.",
            self.duplicate_samples.clone(),
        );
        r.register(
            format!("{p}out_of_bound_samples"),
            "Samples rejected for being older than the head's minimum valid time.",
            self.out_of_bound_samples.clone(),
        );
        r.register(format!("{p}head_min_time"), "Lowest timestamp in the head (ms).", self.head_min_time.clone());
        r.register(format!("{p}head_max_time"), "Highest timestamp in the head (ms).", self.head_max_time.clone());
        r.register(format!("{p}head_truncations"), "Head truncations after compaction.", self.head_truncations.clone());
        r.register(format!("{p}wal_fsync_duration_seconds"), "Duration of WAL fsync calls.", self.wal_fsync_duration.clone());
        r.register(format!("{p}wal_corruptions"), "Damaged WAL regions skipped during replay.", self.wal_corruptions.clone());
        r.register(format!("{p}wal_segments_cut"), "WAL segments completed.", self.wal_segments_cut.clone());
        r.register(format!("{p}checkpoint_creations"), "WAL checkpoints created.", self.checkpoint_creations.clone());
        r.register(format!("{p}data_replay_duration_seconds"), "Time taken to replay the WAL at startup.", self.replay_duration.clone());
        r.register(format!("{p}compactions"), "Compactions run (head to block and block merges).", self.compactions.clone());
        r.register(format!("{p}compactions_failed"), "Compactions that failed.", self.compactions_failed.clone());
        r.register(format!("{p}compaction_duration_seconds"), "Duration of compactions.", self.compaction_duration.clone());
        r.register(format!("{p}blocks_loaded"), "Persisted blocks currently loaded.", self.blocks_loaded.clone());
        r.register(format!("{p}storage_blocks_bytes"), "Bytes used by persisted blocks.", self.storage_blocks_bytes.clone());
        r.register(format!("{p}time_retentions"), "Blocks deleted because they passed the retention time.", self.time_retentions.clone());
        r.register(format!("{p}size_retentions"), "Blocks deleted to keep storage under the retention size.", self.size_retentions.clone());
    }
}

impl WalObserver for TsdbMetrics {
    fn fsync_done(&self, seconds: f64) {
        self.wal_fsync_duration.observe(seconds);
    }

    fn segment_cut(&self) {
        self.wal_segments_cut.inc();
    }
}
