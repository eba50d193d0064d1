//! `hearth tsdb create-blocks-from openmetrics`: turning a file of historical
//! samples into blocks, as `promtool tsdb create-blocks-from openmetrics` does.
//!
//! The output directory can be moved into a data directory; blocks that
//! overlap existing ones are merged by compaction.

use std::collections::HashMap;
use std::path::Path;

use super::block::BlockWriter;
use crate::model::{Labels, Sample};
use crate::scrape::parse::{Entry, Format, parse_each};

/// What the backfill wrote.
#[derive(Debug, Default)]
pub struct BackfillStats {
    pub blocks: u64,
    pub series: u64,
    pub samples: u64,
    pub bytes: u64,
}

/// Why a backfill failed; always names the input and position.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {msg}")]
    Input { path: String, msg: String },
}

/// Reads `input` (OpenMetrics text, every sample with a timestamp) and writes
/// blocks of `block_ms` aligned ranges into `out`.
pub fn create_blocks_from_openmetrics(input: &Path, out: &Path, block_ms: i64, zstd_level: i32) -> Result<BackfillStats, BackfillError> {
    let ip = input.display().to_string();
    let text = std::fs::read_to_string(input).map_err(|source| BackfillError::Io { path: ip.clone(), source })?;
    let mut series: HashMap<Labels, Vec<Sample>> = HashMap::new();
    let mut missing_ts = 0u64;
    parse_each(&text, Format::OpenMetrics, |e| {
        if let Entry::Sample { labels, timestamp_ms, value } = e {
            match timestamp_ms {
                Some(t) => series.entry(labels).or_default().push(Sample::new(t, value)),
                None => missing_ts += 1,
            }
        }
    })
    .map_err(|e| BackfillError::Input { path: ip.clone(), msg: e.to_string() })?;
    if missing_ts > 0 {
        return Err(BackfillError::Input {
            path: ip,
            msg: format!("{missing_ts} samples have no timestamp; backfill needs one on every sample"),
        });
    }
    std::fs::create_dir_all(out).map_err(|source| BackfillError::Io { path: out.display().to_string(), source })?;
    let mut sorted: Vec<(Labels, Vec<Sample>)> = series.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut windows: Vec<i64> = Vec::new();
    for (_, s) in sorted.iter_mut() {
        s.sort_by_key(|x| x.t);
        s.dedup_by_key(|x| x.t);
        windows.extend(s.iter().map(|x| x.t.div_euclid(block_ms)));
    }
    windows.sort_unstable();
    windows.dedup();
    let mut stats = BackfillStats::default();
    let io = |source| BackfillError::Io { path: out.display().to_string(), source };
    for w in windows {
        let (mint, maxt) = (w * block_ms, (w + 1) * block_ms);
        // The block ends just after its newest sample, not at the window's end,
        // so a backfill of recent data never blocks live appends after it.
        let newest =
            sorted.iter().filter_map(|(_, s)| s[..s.partition_point(|x| x.t < maxt)].last()).map(|x| x.t).filter(|&t| t >= mint).max();
        let block_maxt = newest.map_or(maxt, |t| t + 1);
        let mut bw = BlockWriter::new(out, mint, block_maxt, 1, Vec::new(), zstd_level).map_err(io)?;
        for (labels, s) in &sorted {
            let lo = s.partition_point(|x| x.t < mint);
            let hi = s.partition_point(|x| x.t < maxt);
            bw.add_series(labels, &s[lo..hi]).map_err(io)?;
        }
        if let Some(meta) = bw.finish().map_err(io)? {
            stats.blocks += 1;
            stats.samples += meta.stats.num_samples;
            stats.bytes += super::wal::dir_size(&out.join(&meta.ulid));
        }
    }
    stats.series = sorted.len() as u64;
    Ok(stats)
}
