//! `hearth tsdb analyze DIR`: what is stored and where the cardinality is.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use super::block::Block;
use super::index::IndexReader;
use crate::model::labels::METRIC_NAME;

/// Renders a report of the blocks in `dir` (a data directory or a backfill
/// output) with the `limit` highest-cardinality labels and metrics.
pub fn report(dir: &Path, limit: usize) -> Result<String, String> {
    let mut blocks = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for e in rd.flatten() {
        let p = e.path();
        if p.join("meta.json").exists() && !e.file_name().to_string_lossy().contains(".tmp") {
            blocks.push(Block::open(&p).map_err(|e| e.to_string())?);
        }
    }
    blocks.sort_by_key(|b| b.meta().min_time);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<28} {:>14} {:>14} {:>9} {:>10} {:>12} {:>12} {:>8}",
        "BLOCK", "MIN TIME", "MAX TIME", "HOURS", "SERIES", "SAMPLES", "BYTES", "B/SAMPLE"
    );
    let (mut samples, mut bytes) = (0u64, 0u64);
    for b in &blocks {
        let m = b.meta();
        samples += m.stats.num_samples;
        bytes += b.size_bytes();
        let _ = writeln!(
            out,
            "{:<28} {:>14} {:>14} {:>9.1} {:>10} {:>12} {:>12} {:>8.3}",
            m.ulid,
            m.min_time,
            m.max_time,
            (m.max_time - m.min_time) as f64 / 3.6e6,
            m.stats.num_series,
            m.stats.num_samples,
            b.size_bytes(),
            b.size_bytes() as f64 / m.stats.num_samples.max(1) as f64
        );
    }
    let _ = writeln!(
        out,
        "\nblocks: {}  samples: {samples}  bytes: {bytes}  bytes/sample: {:.3}",
        blocks.len(),
        bytes as f64 / samples.max(1) as f64
    );
    let wal = dir.join("wal");
    if wal.exists() {
        let _ = writeln!(out, "WAL: {} bytes (not yet in blocks)", super::wal::dir_size(&wal));
    }

    // Cardinality over all blocks (series counted once per block they appear in).
    let mut values_per_name: HashMap<String, std::collections::HashSet<String>> = HashMap::new();
    let mut series_per_metric: HashMap<String, u64> = HashMap::new();
    let mut pairs: HashMap<String, u64> = HashMap::new();
    for b in &blocks {
        for name in b.label_names() {
            let vals = b.label_values(&name);
            for v in vals {
                let n = b.postings(&name, &v).len() as u64;
                if name == METRIC_NAME {
                    *series_per_metric.entry(v.clone()).or_default() += n;
                }
                *pairs.entry(format!("{name}={v}")).or_default() += n;
                values_per_name.entry(name.clone()).or_default().insert(v);
            }
        }
    }
    let mut top = |title: &str, mut v: Vec<(String, u64)>| {
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let _ = writeln!(out, "\n{title}:");
        for (k, n) in v.into_iter().take(limit) {
            let _ = writeln!(out, "{n:>10} {k}");
        }
    };
    top("Highest cardinality labels (distinct values)", values_per_name.into_iter().map(|(k, v)| (k, v.len() as u64)).collect());
    top("Highest cardinality metric names (series)", series_per_metric.into_iter().collect());
    top("Most common label pairs (series)", pairs.into_iter().collect());
    Ok(out)
}
