//! Deleted time ranges per series.
//!
//! Deletion never rewrites data in place: it records intervals that reads
//! skip, in the head (logged to the WAL) and per block (a `tombstones` file),
//! until compaction drops the data for good.

use serde::{Deserialize, Serialize};

/// Sorted, non-overlapping closed intervals `[mint, maxt]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intervals(Vec<(i64, i64)>);

impl Intervals {
    /// Adds an interval, merging it with any it overlaps or touches.
    pub fn add(&mut self, mint: i64, maxt: i64) {
        if mint > maxt {
            return;
        }
        self.0.push((mint, maxt));
        self.0.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(self.0.len());
        for &(a, b) in &self.0 {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        self.0 = merged;
    }

    pub fn contains(&self, t: i64) -> bool {
        let i = self.0.partition_point(|&(_, b)| b < t);
        self.0.get(i).is_some_and(|&(a, _)| a <= t)
    }

    /// Forgets intervals wholly before `t`.
    pub fn drop_before(&mut self, t: i64) {
        self.0.retain(|&(_, b)| b >= t);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.0.iter().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_merge_and_answer_membership() {
        let mut iv = Intervals::default();
        iv.add(10, 20);
        iv.add(30, 40);
        iv.add(21, 25);
        assert_eq!(iv.iter().collect::<Vec<_>>(), vec![(10, 25), (30, 40)]);
        assert!(iv.contains(10) && iv.contains(25) && iv.contains(35));
        assert!(!iv.contains(9) && !iv.contains(26) && !iv.contains(41));
        iv.drop_before(26);
        assert_eq!(iv.iter().collect::<Vec<_>>(), vec![(30, 40)]);
    }
}
