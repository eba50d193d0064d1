//! Rebuilding the head from the WAL at startup, in parallel.
//!
//! Pass 1 reads every file once, verifies checksums and recreates series in
//! log order (cheap: series records are few). Pass 2 applies samples on all
//! cores: each thread takes the series whose id falls in its share, so every
//! series still sees its samples in log order and threads never contend for
//! the same series lock. Prometheus replays on one goroutine per shard after a
//! serial decode; here decoding is spread too.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::head::Head;
use super::wal::checkpoint;
use super::wal::reader::{self, Damage};
use super::wal::record::{self, RecordType, RefSample};

/// Samples a replay thread buffers before sorting them by series and
/// applying them (16 bytes each).
const WINDOW: usize = 4 << 20;

/// A window of replayed samples. In WAL order consecutive samples belong to
/// different series, so with many series every sample would miss the CPU
/// caches several times; sorting a window by series (stably, keeping each
/// series' order) makes the misses once per series per window instead.
#[derive(Default)]
struct SortWindow {
    buf: Vec<RefSample>,
    sorted: Vec<RefSample>,
    counts: Vec<u32>,
}

impl SortWindow {
    /// Counting-sorts the buffer by series id and applies it; returns samples stored.
    fn apply(&mut self, head: &Head, threads: usize) -> u64 {
        if self.buf.is_empty() {
            return 0;
        }
        let key = |s: &RefSample| s.id as usize / threads;
        let max = self.buf.iter().map(key).max().unwrap_or(0);
        self.counts.clear();
        self.counts.resize(max + 2, 0);
        for s in &self.buf {
            self.counts[key(s) + 1] += 1;
        }
        for i in 0..=max {
            self.counts[i + 1] += self.counts[i];
        }
        self.sorted.clear();
        self.sorted.resize(
            self.buf.len(),
            RefSample {
                id: 0,
                t: 0,
                v: 0.0,
            },
        );
        for s in &self.buf {
            let slot = &mut self.counts[key(s)];
            self.sorted[*slot as usize] = *s;
            *slot += 1;
        }
        self.buf.clear();
        head.apply_runs(&self.sorted)
    }
}

/// What a replay found.
#[derive(Debug, Default, Clone)]
pub struct ReplayStats {
    pub records: u64,
    pub samples: u64,
    pub bytes: u64,
    pub damage: Damage,
}

/// Replays the WAL in `wal_dir` into `head`.
pub fn replay(head: &Head, wal_dir: &Path) -> io::Result<ReplayStats> {
    let started = std::time::Instant::now();
    let files = checkpoint::replay_files(wal_dir)?;
    let scan = reader::scan(&files, true)?;
    let scanned = started.elapsed();
    let mut stats = ReplayStats {
        records: scan.records.len() as u64,
        bytes: scan.bytes(),
        damage: scan.damage.clone(),
        ..Default::default()
    };
    let mut malformed = 0u64;

    let mut remap: HashMap<u32, u32> = HashMap::new();
    for r in scan.records.iter().filter(|r| r.typ == RecordType::Series) {
        let res = record::decode_series(scan.payload(r), |id, labels| {
            let to = head.replay_series(id, &labels);
            if to != id {
                remap.insert(id, to);
            }
        });
        malformed += u64::from(res.is_err());
    }

    let series_done = started.elapsed();
    let sample_records: Vec<_> = scan
        .records
        .iter()
        .filter(|r| r.typ == RecordType::Samples)
        .collect();
    // A power of two, so thread shares line up with the head's lock stripes.
    let cores = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let threads = if sample_records.len() < 4 {
        1
    } else {
        1usize << (usize::BITS - 1 - cores.leading_zeros())
    };
    let applied = AtomicU64::new(0);
    let bad = AtomicU64::new(0);
    std::thread::scope(|s| {
        for k in 0..threads {
            let (scan, remap, sample_records, applied, bad) =
                (&scan, &remap, &sample_records, &applied, &bad);
            s.spawn(move || {
                let mut n = 0u64;
                let mut window = SortWindow::default();
                for r in sample_records.iter() {
                    let res = record::decode_samples(scan.payload(r), |mut x| {
                        if !remap.is_empty() {
                            x.id = remap.get(&x.id).copied().unwrap_or(x.id);
                        }
                        if x.id as usize % threads == k {
                            window.buf.push(x);
                        }
                    });
                    if k == 0 && res.is_err() {
                        bad.fetch_add(1, Ordering::Relaxed);
                    }
                    if window.buf.len() >= WINDOW {
                        n += window.apply(head, threads);
                    }
                }
                n += window.apply(head, threads);
                applied.fetch_add(n, Ordering::Relaxed);
            });
        }
    });
    stats.samples = applied.load(Ordering::Relaxed);
    tracing::info!(
        scan_seconds = scanned.as_secs_f64(),
        series_seconds = (series_done - scanned).as_secs_f64(),
        samples_seconds = (started.elapsed() - series_done).as_secs_f64(),
        threads,
        "WAL replay phases"
    );
    malformed += bad.load(Ordering::Relaxed);

    for r in scan
        .records
        .iter()
        .filter(|r| r.typ == RecordType::Tombstones)
    {
        let res = record::decode_tombstones(scan.payload(r), |t| {
            let id = remap.get(&t.id).copied().unwrap_or(t.id);
            head.add_tombstone(id, t.mint, t.maxt);
        });
        malformed += u64::from(res.is_err());
    }
    if malformed > 0 {
        stats.damage.regions += malformed;
        stats.damage.details.push(format!(
            "{malformed} records passed their checksum but did not decode"
        ));
    }
    Ok(stats)
}
