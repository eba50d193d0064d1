//! Batched appends: validate as samples arrive, make them durable and visible
//! on commit.

use super::{Head, SeriesRef};
use crate::model::Labels;
use crate::tsdb::metrics::TsdbMetrics;
use crate::tsdb::wal::record::RefSample;

/// Why a sample was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    #[error("out of order sample")]
    OutOfOrder,
    #[error("duplicate sample for timestamp")]
    Duplicate,
    /// Same timestamp and same value: accepted silently, as Prometheus does.
    #[error("duplicate sample with identical value")]
    DuplicateSameValue,
    #[error("out of bounds: sample is older than the head")]
    OutOfBounds,
    #[error("series has no labels")]
    EmptyLabels,
    #[error("write-ahead log: {0}")]
    Wal(String),
}

impl AppendError {
    /// Counts the rejection in the matching metric.
    pub fn count(&self, m: &TsdbMetrics) {
        match self {
            AppendError::OutOfOrder => m.out_of_order_samples.inc(),
            AppendError::Duplicate => m.duplicate_samples.inc(),
            AppendError::OutOfBounds => m.out_of_bound_samples.inc(),
            _ => 0,
        };
    }
}

/// A batch of samples to commit together. Dropping it without commit
/// discards the batch.
pub struct Appender<'a> {
    head: &'a Head,
    batch: Vec<RefSample>,
}

impl<'a> Appender<'a> {
    pub(super) fn new(head: &'a Head) -> Self {
        Appender {
            head,
            batch: Vec::new(),
        }
    }

    /// Adds a sample. `hint` is a ref returned earlier for these labels; when it
    /// is still valid the labels are not looked up again.
    pub fn append(
        &mut self,
        hint: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef, AppendError> {
        let m = &self.head.metrics;
        if t < self.head.min_valid_time() {
            m.out_of_bound_samples.inc();
            return Err(AppendError::OutOfBounds);
        }
        if let Some(id) = hint
            && self.try_add(id, t, v)?
        {
            return Ok(id);
        }
        if labels.is_empty() {
            return Err(AppendError::EmptyLabels);
        }
        let (id, _) = self
            .head
            .get_or_create(labels)
            .map_err(|e| AppendError::Wal(e.to_string()))?;
        if self.try_add(id, t, v)? {
            Ok(id)
        } else {
            // Removed between creation and now; it will be recreated next time.
            Err(AppendError::OutOfBounds)
        }
    }

    /// Validates against the series' newest sample and queues; false if the series is gone.
    fn try_add(&mut self, id: u32, t: i64, v: f64) -> Result<bool, AppendError> {
        let mut st = self.head.stripe(id);
        let Some(s) = st.get_mut(&id) else {
            return Ok(false);
        };
        if let Some(last) = s.max_time()
            && t <= last
        {
            let e = if t < last {
                AppendError::OutOfOrder
            } else if s.last_value_bits() == Some(v.to_bits()) {
                return Ok(true);
            } else {
                AppendError::Duplicate
            };
            e.count(&self.head.metrics);
            return Err(e);
        }
        s.pending += 1;
        drop(st);
        self.batch.push(RefSample { id, t, v });
        Ok(true)
    }

    /// Number of samples queued.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// Writes the batch to the WAL, then to the series. When this returns Ok
    /// the samples survive a crash of the process.
    pub fn commit(mut self) -> Result<CommitStats, AppendError> {
        let batch = std::mem::take(&mut self.batch);
        if let Some(wal) = &self.head.wal
            && let Err(e) = wal.log_samples(&batch)
        {
            self.release(&batch);
            return Err(AppendError::Wal(e.to_string()));
        }
        let mut stats = CommitStats::default();
        for s in &batch {
            let mut st = self.head.stripe(s.id);
            let Some(ms) = st.get_mut(&s.id) else {
                continue;
            };
            ms.pending = ms.pending.saturating_sub(1);
            match self.head.append_locked(ms, s.t, s.v) {
                Ok(()) => stats.appended += 1,
                Err(AppendError::DuplicateSameValue) => {}
                Err(e) => {
                    e.count(&self.head.metrics);
                    stats.rejected += 1;
                }
            }
        }
        self.head.metrics.samples_appended.inc_by(stats.appended);
        Ok(stats)
    }

    fn release(&self, batch: &[RefSample]) {
        for s in batch {
            if let Some(ms) = self.head.stripe(s.id).get_mut(&s.id) {
                ms.pending = ms.pending.saturating_sub(1);
            }
        }
    }
}

impl Drop for Appender<'_> {
    fn drop(&mut self) {
        let batch = std::mem::take(&mut self.batch);
        self.release(&batch);
    }
}

/// What a commit did.
#[derive(Debug, Default, Clone, Copy)]
pub struct CommitStats {
    pub appended: u64,
    /// Samples that lost a race with a concurrent append to the same series.
    pub rejected: u64,
}
