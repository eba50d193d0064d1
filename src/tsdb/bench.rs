//! `hearth tsdb bench write`: the append benchmark, shaped like
//! `promtool tsdb bench write` so the two can be compared on the same series
//! and scrape counts: batches of 1000 series ingested concurrently, 100
//! scrapes per round, one commit per series batch and scrape, 30s apart.
//!
//! Besides samples/s it reports memory per series (resident anonymous memory
//! growth, which is what a user pays) and, after persisting the head, disk
//! bytes per sample. With `--replay` it also reopens the directory and times
//! the WAL replay.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{Db, Options, SeriesRef};
use crate::model::Labels;
use crate::tsdb::metrics::TsdbMetrics;

const TIME_DELTA_MS: i64 = 30_000;
const SHARD: usize = 1000;
const ROUND: usize = 100;

/// How sample values evolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Values {
    /// promtool's: every series a counter that grows by 1000 per scrape.
    Promtool,
    /// Scrape-like: counters with varying rates, gauges with a few decimals, histogram buckets.
    Realistic,
}

/// Benchmark parameters.
pub struct WriteBench {
    pub metrics: usize,
    pub scrapes: usize,
    pub labels_file: Option<PathBuf>,
    pub out: PathBuf,
    pub values: Values,
    pub replay: bool,
}

/// Reads promtool's label file format: one JSON object of label pairs per line.
pub fn read_label_file(path: &Path, n: usize) -> Result<Vec<Labels>, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        if out.len() >= n {
            break;
        }
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let m: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        let l = Labels::from_pairs(m);
        if seen.insert(l.stable_hash()) {
            out.push(l);
        }
    }
    Ok(out)
}

/// Label sets resembling a fleet of node-exporter and application targets.
pub fn generate_labels(n: usize) -> Vec<Labels> {
    const NAMES: [&str; 10] = [
        "node_cpu_seconds_total",
        "node_memory_MemAvailable_bytes",
        "node_network_receive_bytes_total",
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "process_resident_memory_bytes",
        "go_goroutines",
        "node_filesystem_avail_bytes",
        "container_cpu_usage_seconds_total",
        "kube_pod_status_phase",
    ];
    (0..n)
        .map(|i| {
            let name = NAMES[i % NAMES.len()];
            let target = i / 200;
            Labels::from_pairs([
                ("__name__", name.to_string()),
                ("job", ["node", "api", "kubelet"][target % 3].to_string()),
                ("instance", format!("10.{}.{}.{}:9100", target / 65536 % 256, target / 256 % 256, target % 256)),
                ("namespace", format!("team-{}", target % 17)),
                ("series", format!("{}", i % 200)),
            ])
        })
        .collect()
}

/// The value of series `i` at scrape `k`.
fn value(values: Values, i: usize, k: usize) -> f64 {
    match values {
        Values::Promtool => 123_456_789.0 + 1000.0 * (k as f64 + 1.0),
        Values::Realistic => {
            let h = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
            let noise = ((i * 31 + k * 17) % 97) as f64;
            match i % 4 {
                // Counter with a per-series rate and some jitter.
                0 => (h % 1000) as f64 * 10.0 + k as f64 * (1.0 + (h % 50) as f64) + noise,
                // Gauge with two decimals.
                1 => ((h % 10_000) as f64 + noise * 3.0).round() / 100.0,
                // Histogram bucket: slowly increasing integer count.
                2 => (k * (1 + (h % 7) as usize) + (noise as usize) / 10) as f64,
                // Memory-like gauge in bytes.
                _ => (100_000_000 + (h % 1_000_000) * 4096 + noise as u64 * 4096) as f64,
            }
        }
    }
}

/// Resident anonymous memory of this process in bytes (Linux), 0 elsewhere.
pub fn rss_anon_bytes() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    s.lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Runs the benchmark, printing results to stdout.
pub fn run(b: &WriteBench) -> Result<(), String> {
    let labels = match &b.labels_file {
        Some(p) => read_label_file(p, b.metrics)?,
        None => generate_labels(b.metrics),
    };
    if b.out.exists() {
        std::fs::remove_dir_all(&b.out).map_err(|e| format!("{}: {e}", b.out.display()))?;
    }
    let rss_before = rss_anon_bytes();
    let opts = Options { retention_ms: None, ..Options::default() };
    let db = Db::open(&b.out, opts, TsdbMetrics::default()).map_err(|e| e.to_string())?;
    println!(">> ingesting {} series x {} scrapes", labels.len(), b.scrapes);
    let start = Instant::now();
    let mut total = 0u64;
    let mut refs: Vec<Option<SeriesRef>> = vec![None; labels.len()];
    let mut round = 0;
    while round < b.scrapes {
        let scrapes = ROUND.min(b.scrapes - round);
        let results: Vec<Result<u64, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = labels
                .chunks(SHARD)
                .zip(refs.chunks_mut(SHARD))
                .enumerate()
                .map(|(shard, (ls, rs))| {
                    let db = &db;
                    s.spawn(move || -> Result<u64, String> {
                        let mut n = 0u64;
                        for k in round..round + scrapes {
                            let ts = TIME_DELTA_MS * (k as i64 + 1);
                            let mut app = db.appender();
                            for (j, (l, r)) in ls.iter().zip(rs.iter_mut()).enumerate() {
                                let v = value(b.values, shard * SHARD + j, k);
                                *r = Some(app.append(*r, l, ts, v).map_err(|e| format!("{l}: {e}"))?);
                                n += 1;
                            }
                            app.commit().map_err(|e| e.to_string())?;
                        }
                        Ok(n)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("ingest thread panicked".into()))).collect()
        });
        for r in results {
            total += r?;
        }
        round += scrapes;
    }
    let secs = start.elapsed().as_secs_f64();
    let rss_after = rss_anon_bytes();
    let series = db.head().num_series().max(1) as f64;
    println!(" > total samples: {total}");
    println!(" > samples/sec: {:.0}", total as f64 / secs);
    println!(" > ingest seconds: {secs:.2}");
    println!(" > head memory per series (resident anonymous growth): {:.0} bytes", rss_after.saturating_sub(rss_before) as f64 / series);
    println!(
        " > head series data per series (heap accounting, excluding index): {:.0} bytes",
        db.head().series_heap_bytes() as f64 / series
    );

    if b.replay {
        db.close().map_err(|e| e.to_string())?;
        return replay(&b.out);
    }
    let start = Instant::now();
    db.flush_head().map_err(|e| e.to_string())?;
    db.compact().map_err(|e| e.to_string())?;
    let (bytes, samples): (u64, u64) =
        db.blocks().iter().fold((0, 0), |(b, s), blk| (b + blk.size_bytes(), s + blk.meta().stats.num_samples));
    println!(" > persisted {} blocks in {:.2} s", db.blocks().len(), start.elapsed().as_secs_f64());
    println!(" > disk bytes per sample: {:.3}", bytes as f64 / samples.max(1) as f64);
    db.close().map_err(|e| e.to_string())
}

/// Appends to `series` series forever, one commit per timestamp, printing
/// `acked <t>` after each commit returns. Crash tests kill it with SIGKILL
/// and check that every acknowledged timestamp survived.
pub fn append_loop(dir: &Path, series: usize, sync_interval: std::time::Duration) -> Result<(), String> {
    use std::io::Write;
    let opts = Options { wal_sync_interval: sync_interval, ..Options::default() };
    let db = Db::open(dir, opts, TsdbMetrics::default()).map_err(|e| e.to_string())?;
    let labels: Vec<Labels> = (0..series).map(|i| Labels::from_pairs([("__name__", "crash_test"), ("i", &i.to_string())])).collect();
    let start = db.head().max_time().max(0) + 1;
    let mut refs = vec![None; series];
    let stdout = std::io::stdout();
    for t in start.. {
        let mut app = db.appender();
        for (l, r) in labels.iter().zip(refs.iter_mut()) {
            *r = Some(app.append(*r, l, t, t as f64).map_err(|e| e.to_string())?);
        }
        app.commit().map_err(|e| e.to_string())?;
        let mut out = stdout.lock();
        writeln!(out, "acked {t}").and_then(|_| out.flush()).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Opens `dir` (replaying its WAL), prints how long that took, and closes it
/// again without compacting: the restart-time benchmark.
pub fn replay(dir: &Path) -> Result<(), String> {
    let start = Instant::now();
    let db = Db::open(dir, Options { retention_ms: None, ..Options::default() }, TsdbMetrics::default()).map_err(|e| e.to_string())?;
    let st = db.replay_stats();
    println!(
        " > WAL replay: {:.2} s for {} samples, {} series, {} bytes",
        start.elapsed().as_secs_f64(),
        st.samples,
        db.head().num_series(),
        st.bytes
    );
    db.close().map_err(|e| e.to_string())
}
