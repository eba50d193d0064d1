//! Compaction: persisting the head as blocks and merging blocks into larger ones.
//!
//! Levels follow Prometheus: block ranges grow by a factor of 3 from the
//! minimum block duration up to the maximum. A set of blocks is merged when
//! they all fall inside one aligned range of the next level and that range
//! is complete (newer data exists past its end). Overlapping blocks (from
//! backfill) are merged first, whatever their level.

use std::io;
use std::path::Path;
use std::sync::Arc;

use super::block::{Block, BlockMeta, BlockWriter};
use super::head::Head;
use super::querier::merge_parts;
use crate::model::{Labels, Sample};

/// Writes the head's samples in `[mint, maxt)` as a new level-1 block.
pub fn write_head_range(head: &Head, dir: &Path, mint: i64, maxt: i64, zstd_level: i32) -> io::Result<Option<BlockMeta>> {
    let mut w = BlockWriter::new(dir, mint, maxt, 1, Vec::new(), zstd_level)?;
    for id in head.ids_sorted_by_labels() {
        if let Some((labels, samples)) = head.series_data(id, mint, maxt - 1) {
            w.add_series(&labels, &samples)?;
        }
    }
    w.finish()
}

/// The ranges of each compaction level.
pub fn level_ranges(min_block: i64, max_block: i64) -> Vec<i64> {
    let mut v = vec![min_block.max(1)];
    while let Some(&last) = v.last() {
        let next = last.saturating_mul(3);
        if next > max_block || next == last {
            break;
        }
        v.push(next);
    }
    v
}

/// Picks blocks to merge next (indexes into `metas`, sorted by min time), if any.
pub fn plan(metas: &[BlockMeta], ranges: &[i64]) -> Option<Vec<usize>> {
    let mut order: Vec<usize> = (0..metas.len()).collect();
    order.sort_by_key(|&i| (metas[i].min_time, metas[i].max_time));
    // Overlaps first: they make queries merge on every read.
    for w in order.windows(2) {
        let (a, b) = (&metas[w[0]], &metas[w[1]]);
        if b.min_time < a.max_time {
            let hi = a.max_time.max(b.max_time);
            let group: Vec<usize> = order.iter().copied().filter(|&i| metas[i].min_time < hi && metas[i].max_time > a.min_time).collect();
            return Some(group);
        }
    }
    let newest = metas.iter().map(|m| m.max_time).max()?;
    for &r in ranges.iter().skip(1) {
        let mut i = 0;
        while i < order.len() {
            let start = metas[order[i]].min_time.div_euclid(r) * r;
            let end = start.saturating_add(r);
            let group: Vec<usize> =
                order[i..].iter().copied().take_while(|&k| metas[k].min_time >= start && metas[k].max_time <= end).collect();
            if group.is_empty() {
                i += 1;
                continue;
            }
            if group.len() > 1 && end <= newest {
                return Some(group);
            }
            i += group.len();
        }
    }
    None
}

/// Merges blocks into one new block covering their union.
pub fn merge(blocks: &[Arc<Block>], dir: &Path, zstd_level: i32) -> io::Result<Option<BlockMeta>> {
    let mint = blocks.iter().map(|b| b.meta().min_time).min().unwrap_or(0);
    let maxt = blocks.iter().map(|b| b.meta().max_time).max().unwrap_or(0);
    let level = blocks.iter().map(|b| b.meta().compaction.level).max().unwrap_or(1) + 1;
    let mut sources: Vec<String> = blocks.iter().flat_map(|b| b.meta().compaction.sources.clone()).collect();
    sources.sort();
    sources.dedup();
    let mut w = BlockWriter::new(dir, mint, maxt, level, sources, zstd_level)?;
    // k-way merge over each block's label-ordered series.
    let mut cursors: Vec<(u32, Option<Labels>)> = blocks.iter().map(|b| (0, (b.num_series() > 0).then(|| b.labels(0)))).collect();
    while let Some(next) = cursors.iter().filter_map(|(_, l)| l.as_ref()).min().cloned() {
        let mut parts: Vec<Vec<Sample>> = Vec::new();
        for (bi, (pos, cur)) in cursors.iter_mut().enumerate() {
            if cur.as_ref() != Some(&next) {
                continue;
            }
            let mut s = Vec::new();
            blocks[bi].samples(*pos, i64::MIN, i64::MAX, &mut s).map_err(io::Error::other)?;
            parts.push(s);
            *pos += 1;
            *cur = ((*pos as usize) < blocks[bi].num_series()).then(|| blocks[bi].labels(*pos));
        }
        parts.sort_by_key(|p| p.first().map(|s| s.t));
        w.add_series(&next, &merge_parts(parts))?;
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsdb::block::meta::{BlockStats, Compaction};

    fn meta(min: i64, max: i64) -> BlockMeta {
        BlockMeta {
            ulid: format!("{min}"),
            min_time: min,
            max_time: max,
            stats: BlockStats::default(),
            compaction: Compaction::default(),
            version: 1,
        }
    }

    #[test]
    fn merges_complete_ranges_only() {
        let ranges = level_ranges(2, 54);
        assert_eq!(ranges, vec![2, 6, 18, 54]);
        // Three 2-wide blocks fill [0,6); a newer block proves the range complete.
        let m = vec![meta(0, 2), meta(2, 4), meta(4, 6), meta(6, 8)];
        assert_eq!(plan(&m, &ranges), Some(vec![0, 1, 2]));
        // The newest range [6,12) is not complete yet.
        let m = vec![meta(0, 6), meta(6, 8), meta(8, 10)];
        assert_eq!(plan(&m, &ranges), None);
    }

    #[test]
    fn overlapping_blocks_are_merged_first() {
        let m = vec![meta(0, 2), meta(1, 3), meta(10, 12)];
        assert_eq!(plan(&m, &level_ranges(2, 54)), Some(vec![0, 1]));
    }
}
