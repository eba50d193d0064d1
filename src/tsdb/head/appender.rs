//! Batched appends: validate as samples arrive, make them durable and visible
//! on commit.
//!
//! An appender holds the head's garbage-collection guard from creation to
//! commit, so no series can be removed under it. That lets a caller's
//! [`SeriesRef`] from the current GC epoch be trusted without a lookup: such
//! appends only queue the sample, and ordering is checked once, at commit,
//! where the sample is written anyway. Appends by labels (no valid ref) are
//! checked at once, so their errors return from [`Appender::append`].

use std::sync::RwLockReadGuard;

use super::{Head, SeriesRef, make_ref};
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
    epoch: u32,
    _gc: RwLockReadGuard<'a, ()>,
}

impl<'a> Appender<'a> {
    pub(super) fn new(head: &'a Head, gc: RwLockReadGuard<'a, ()>) -> Self {
        Appender { head, batch: Vec::new(), epoch: head.gc_epoch(), _gc: gc }
    }

    /// Adds a sample. `hint` is a ref returned earlier for these labels; while
    /// it is current the labels are not looked up again.
    pub fn append(&mut self, hint: Option<SeriesRef>, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef, AppendError> {
        if t < self.head.min_valid_time() {
            self.head.metrics.out_of_bound_samples.inc();
            return Err(AppendError::OutOfBounds);
        }
        if let Some(h) = hint
            && (h >> 32) as u32 == self.epoch
        {
            self.batch.push(RefSample { id: h as u32, t, v });
            return Ok(h);
        }
        if labels.is_empty() {
            return Err(AppendError::EmptyLabels);
        }
        let (id, _) = self.head.get_or_create(labels).map_err(|e| AppendError::Wal(e.to_string()))?;
        self.check(id, t, v)?;
        self.batch.push(RefSample { id, t, v });
        Ok(make_ref(self.epoch, id))
    }

    /// Adds a sample by reference alone, for callers that keep no labels.
    /// A reference from an earlier GC epoch is revalidated: series ids are
    /// never reused, so an id that still exists is the same series. Returns
    /// `None` when the series is gone; the caller then appends by labels.
    pub fn append_ref(&mut self, sref: SeriesRef, t: i64, v: f64) -> Result<Option<SeriesRef>, AppendError> {
        if t < self.head.min_valid_time() {
            self.head.metrics.out_of_bound_samples.inc();
            return Err(AppendError::OutOfBounds);
        }
        if (sref >> 32) as u32 == self.epoch {
            self.batch.push(RefSample { id: sref as u32, t, v });
            return Ok(Some(sref));
        }
        let id = sref as u32;
        if !self.head.contains(id) {
            return Ok(None);
        }
        self.check(id, t, v)?;
        self.batch.push(RefSample { id, t, v });
        Ok(Some(make_ref(self.epoch, id)))
    }

    /// Checks a sample against the series' newest one.
    fn check(&self, id: u32, t: i64, v: f64) -> Result<(), AppendError> {
        let st = self.head.stripe(id);
        let Some(s) = st.get(&id) else { return Ok(()) };
        let Some(last) = s.max_time() else {
            return Ok(());
        };
        let e = if t > last {
            return Ok(());
        } else if t < last {
            AppendError::OutOfOrder
        } else if s.last_value_bits() == Some(v.to_bits()) {
            return Ok(());
        } else {
            AppendError::Duplicate
        };
        e.count(&self.head.metrics);
        Err(e)
    }

    /// Number of samples queued.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// Writes the batch to the WAL, then to the series. When this returns Ok
    /// the samples survive a crash of the process; samples rejected at this
    /// point (out of order, duplicates) are counted in the result.
    pub fn commit(mut self) -> Result<CommitStats, AppendError> {
        let batch = std::mem::take(&mut self.batch);
        if let Some(wal) = &self.head.wal {
            wal.log_samples(&batch).map_err(|e| AppendError::Wal(e.to_string()))?;
        }
        let stats = self.head.apply_batch(&batch);
        self.head.metrics.samples_appended.inc_by(stats.appended);
        Ok(stats)
    }
}

/// What a commit did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CommitStats {
    pub appended: u64,
    /// Samples older than their series' newest sample.
    pub out_of_order: u64,
    /// Samples repeating a timestamp with a different value.
    pub duplicate: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsdb::metrics::TsdbMetrics;

    #[test]
    fn append_ref_revalidates_refs_from_an_earlier_gc_epoch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let head = Head::new(dir.path(), 7_200_000, None, TsdbMetrics::default()).expect("head");
        let (old, live) = (Labels::from_pairs([("__name__", "old")]), Labels::from_pairs([("__name__", "live")]));
        let mut app = head.appender();
        let old_ref = app.append(None, &old, 1_000, 1.0).expect("append");
        let live_ref = app.append(None, &live, 1_000, 1.0).expect("append");
        app.commit().expect("commit");
        let mut app = head.appender();
        assert_eq!(app.append_ref(live_ref, 5_000, 2.0).expect("append"), Some(live_ref));
        app.commit().expect("commit");

        // Truncation removes `old` (no samples left) and starts a new GC epoch.
        head.truncate(2_000).expect("truncate");
        let mut app = head.appender();
        assert_eq!(app.append_ref(old_ref, 6_000, 3.0).expect("append"), None, "a removed series is reported gone");
        let renewed = app.append_ref(live_ref, 6_000, 3.0).expect("append").expect("live series still there");
        assert_ne!(renewed, live_ref);
        assert_eq!(renewed as u32, live_ref as u32, "same series id, current epoch");
        // Current-epoch refs are ordered at commit: the late sample is counted, not stored.
        assert_eq!(app.append_ref(renewed, 5_500, 4.0).expect("queued"), Some(renewed));
        assert_eq!(app.commit().expect("commit").out_of_order, 1);
        let got = head.series_data(live_ref as u32, 2_000, i64::MAX).expect("series").1;
        assert_eq!(got.iter().map(|s| s.t).collect::<Vec<_>>(), vec![5_000, 6_000]);
    }
}
