//! Rebuilding the head from the WAL at startup, in parallel.
//!
//! Pass 1 reads every file once, verifies checksums and recreates series in
//! log order (cheap: series records are few). Pass 2 applies samples on all
//! cores in rounds: each thread decodes its slice of a round's records and
//! hands every sample to the thread owning its series (ids by share); each
//! owner then applies what it received in log order, so every series sees its
//! samples in order and threads never contend for the same series lock.
//! Prometheus decodes serially and then applies per shard; here decoding is
//! spread over the cores too.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};

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
        self.sorted.resize(self.buf.len(), RefSample { id: 0, t: 0, v: 0.0 });
        for s in &self.buf {
            let slot = &mut self.counts[key(s)];
            self.sorted[*slot as usize] = *s;
            *slot += 1;
        }
        self.buf.clear();
        head.apply_runs(&self.sorted)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Splits the sample records into consecutive rounds of about one window per thread.
fn plan_rounds(scan: &reader::Scan, records: &[&reader::RecordRef], threads: usize, window: usize) -> Vec<std::ops::Range<usize>> {
    // A sample takes about 12 bytes in a record.
    let budget = window * 12 * threads;
    let mut rounds = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, r) in records.iter().enumerate() {
        bytes += scan.payload(r).len();
        if bytes >= budget {
            rounds.push(start..i + 1);
            start = i + 1;
            bytes = 0;
        }
    }
    if start < records.len() {
        rounds.push(start..records.len());
    }
    rounds
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
    replay_in_windows(head, wal_dir, WINDOW)
}

/// [`replay`] with a given window size (samples per thread and round).
fn replay_in_windows(head: &Head, wal_dir: &Path, window: usize) -> io::Result<ReplayStats> {
    let started = std::time::Instant::now();
    let files = checkpoint::replay_files(wal_dir)?;
    let scan = reader::scan(&files, true)?;
    let scanned = started.elapsed();
    let mut stats =
        ReplayStats { records: scan.records.len() as u64, bytes: scan.bytes(), damage: scan.damage.clone(), ..Default::default() };
    let mut malformed = 0u64;

    let mut remap: HashMap<u32, u32> = HashMap::new();
    for r in scan.records.iter().filter(|r| r.typ == RecordType::Series) {
        let res = record::decode_series_pairs(scan.payload(r), |id, pairs| {
            let to = head.replay_series(id, pairs);
            if to != id {
                remap.insert(id, to);
            }
        });
        malformed += u64::from(res.is_err());
    }

    let series_done = started.elapsed();
    let sample_records: Vec<_> = scan.records.iter().filter(|r| r.typ == RecordType::Samples).collect();
    // A power of two, so thread shares line up with the head's lock stripes.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let threads = if sample_records.len() < 4 { 1 } else { 1usize << (usize::BITS - 1 - cores.leading_zeros()) };
    let applied = AtomicU64::new(0);
    let bad = AtomicU64::new(0);
    let rounds = plan_rounds(&scan, &sample_records, threads, window);
    // mail[src * threads + dst]: samples thread `src` decoded for thread `dst`.
    let mail: Vec<Mutex<Vec<RefSample>>> = (0..threads * threads).map(|_| Mutex::new(Vec::new())).collect();
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        for k in 0..threads {
            let (scan, remap, sample_records, rounds, mail, barrier, applied, bad) =
                (&scan, &remap, &sample_records, &rounds, &mail, &barrier, &applied, &bad);
            s.spawn(move || {
                let mut n = 0u64;
                let mut window = SortWindow::default();
                let mut outbox: Vec<Vec<RefSample>> = vec![Vec::new(); threads];
                for round in rounds {
                    // Decode this thread's slice of the round once, sorting
                    // samples by the thread that owns their series.
                    let recs = &sample_records[round.clone()];
                    let per = recs.len().div_ceil(threads);
                    for r in recs.iter().skip(k * per).take(per) {
                        let res = record::decode_samples(scan.payload(r), |mut x| {
                            if !remap.is_empty() {
                                x.id = remap.get(&x.id).copied().unwrap_or(x.id);
                            }
                            outbox[x.id as usize % threads].push(x);
                        });
                        if res.is_err() {
                            bad.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    for (dst, out) in outbox.iter_mut().enumerate() {
                        std::mem::swap(&mut *lock(&mail[k * threads + dst]), out);
                    }
                    barrier.wait();
                    // Collect in slice order, which is log order.
                    for src in 0..threads {
                        let mut m = lock(&mail[src * threads + k]);
                        window.buf.extend_from_slice(&m);
                        m.clear();
                    }
                    barrier.wait();
                    n += window.apply(head, threads);
                }
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

    for r in scan.records.iter().filter(|r| r.typ == RecordType::Tombstones) {
        let res = record::decode_tombstones(scan.payload(r), |t| {
            let id = remap.get(&t.id).copied().unwrap_or(t.id);
            head.add_tombstone(id, t.mint, t.maxt);
        });
        malformed += u64::from(res.is_err());
    }
    if malformed > 0 {
        stats.damage.regions += malformed;
        stats.damage.details.push(format!("{malformed} records passed their checksum but did not decode"));
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{Labels, Matcher};
    use crate::tsdb::metrics::TsdbMetrics;
    use crate::tsdb::wal::Wal;

    /// Many small rounds must give the same head as one: samples of a series
    /// split across rounds and threads stay in order.
    #[test]
    fn replay_in_many_small_rounds_keeps_every_series_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal_dir = dir.path().join("wal");
        let wal = Arc::new(Wal::open(&wal_dir, 1 << 20, false, Box::new(TsdbMetrics::default())).expect("wal"));
        let mut head = Head::new(&dir.path().join("c1"), 7_200_000, None, TsdbMetrics::default()).expect("head");
        head.wal = Some(wal.clone());
        // Few series and one small record per timestamp: every round holds
        // several samples of each series, split between the threads.
        let labels: Vec<Labels> = (0..13).map(|i| Labels::from_pairs([("__name__", "m"), ("i", &i.to_string())])).collect();
        let mut refs = vec![None; labels.len()];
        for t in 0..200 {
            let mut app = head.appender();
            for j in 0..labels.len() {
                let i = (j * 5 + t as usize) % labels.len();
                let v = (t * 7 + i as i64) as f64;
                refs[i] = Some(app.append(refs[i], &labels[i], t * 1000, v).expect("append"));
            }
            app.commit().expect("commit");
        }
        wal.sync().expect("sync");
        let replayed = Head::new(&dir.path().join("c2"), 7_200_000, None, TsdbMetrics::default()).expect("head");
        let stats = replay_in_windows(&replayed, &wal_dir, 40).expect("replay");
        assert_eq!(stats.samples, 13 * 200);
        let all = [Matcher::equal("__name__", "m")];
        assert_eq!(replayed.select(&all, i64::MIN, i64::MAX), head.select(&all, i64::MIN, i64::MAX));
    }

    /// A series removed and created again is logged under a new id; replay
    /// folds both ids into one series with all samples in order.
    #[test]
    fn recreated_series_replay_into_one() {
        use crate::tsdb::wal::record::RefSample;
        let dir = tempfile::tempdir().expect("tempdir");
        let wal_dir = dir.path().join("wal");
        let wal = Wal::open(&wal_dir, 1 << 20, false, Box::new(TsdbMetrics::default())).expect("wal");
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        wal.log_series(1, &l).expect("series");
        wal.log_samples(&[RefSample { id: 1, t: 10, v: 1.0 }]).expect("samples");
        wal.log_series(7, &l).expect("series");
        wal.log_samples(&[RefSample { id: 7, t: 20, v: 2.0 }]).expect("samples");
        wal.sync().expect("sync");
        let head = Head::new(&dir.path().join("c"), 7_200_000, None, TsdbMetrics::default()).expect("head");
        let stats = replay(&head, &wal_dir).expect("replay");
        assert_eq!(stats.samples, 2);
        let got = head.select(&[Matcher::equal("job", "a")], i64::MIN, i64::MAX);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.iter().map(|s| (s.t, s.v)).collect::<Vec<_>>(), vec![(10, 1.0), (20, 2.0)]);
    }
}
