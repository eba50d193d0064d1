//! The database: opening a data directory, and the lifecycle of its parts.

use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::block::Block;
use super::head::{Appender, Head};
use super::metrics::TsdbMetrics;
use super::querier::Querier;
use super::wal::hold::SegmentHold;
use super::wal::{self, Wal, checkpoint};
use super::{compact, replay};
use crate::model::Matcher;

const HOUR_MS: i64 = 3_600_000;

/// Storage settings; the defaults match Prometheus'.
#[derive(Debug, Clone)]
pub struct Options {
    /// Delete blocks older than this (ms); `None` keeps them (Prometheus' default is 15d).
    pub retention_ms: Option<i64>,
    /// Delete the oldest blocks while storage exceeds this many bytes.
    pub retention_bytes: Option<u64>,
    /// Range of blocks cut from the head (ms), 2h by default.
    pub min_block_ms: i64,
    /// Largest range compaction produces (ms).
    pub max_block_ms: i64,
    pub wal_segment_bytes: u64,
    /// Background fsync period of the WAL; zero syncs in every commit.
    pub wal_sync_interval: Duration,
    /// zstd level for block pages and index.
    pub zstd_level: i32,
    /// Most bytes of WAL segments kept past a checkpoint for remote-write
    /// queues that have not sent them yet (see [`wal::hold`]).
    pub wal_hold_max_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            retention_ms: Some(15 * 24 * HOUR_MS),
            retention_bytes: None,
            min_block_ms: 2 * HOUR_MS,
            max_block_ms: 31 * 24 * HOUR_MS,
            wal_segment_bytes: 128 << 20,
            wal_sync_interval: Duration::from_secs(1),
            zstd_level: 6,
            wal_hold_max_bytes: 4 << 30,
        }
    }
}

impl Options {
    /// The largest block range: 10% of retention time, capped at 31 days, as in Prometheus.
    pub fn with_derived_max_block(mut self) -> Self {
        if let Some(r) = self.retention_ms {
            self.max_block_ms = self.max_block_ms.min(r / 10).max(self.min_block_ms);
        }
        self
    }
}

/// Why the database could not open or act.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Block(#[from] super::block::reader::BlockError),
    #[error("data directory {0} is in use by another process (lock file held)")]
    Locked(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DbError + '_ {
    move |source| DbError::Io { path: path.display().to_string(), source }
}

/// An open data directory.
pub struct Db {
    dir: PathBuf,
    opts: Options,
    head: Arc<Head>,
    wal: Arc<Wal>,
    hold: Arc<SegmentHold>,
    blocks: RwLock<Vec<Arc<Block>>>,
    metrics: TsdbMetrics,
    compact_lock: Mutex<()>,
    stop: Arc<AtomicBool>,
    syncer: Option<JoinHandle<()>>,
    _lock: File,
    replay: replay::ReplayStats,
}

impl Db {
    /// Opens (or creates) the data directory, loads blocks and replays the WAL.
    pub fn open(dir: &Path, opts: Options, metrics: TsdbMetrics) -> Result<Db, DbError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock = lock_dir(dir)?;
        remove_tmp_dirs(dir).map_err(io_err(dir))?;
        let blocks = load_blocks(dir)?;
        metrics.blocks_loaded.set(blocks.len() as i64);
        metrics.storage_blocks_bytes.set(blocks.iter().map(|b| b.size_bytes() as i64).sum());

        let wal_dir = dir.join("wal");
        fs::create_dir_all(&wal_dir).map_err(io_err(&wal_dir))?;
        let head = Head::new(&dir.join("chunks_head"), opts.min_block_ms, None, metrics.clone()).map_err(io_err(dir))?;
        if let Some(maxt) = blocks.iter().map(|b| b.meta().max_time).max() {
            head.set_min_valid_time(maxt);
        }
        let started = Instant::now();
        let stats = replay::replay(&head, &wal_dir).map_err(io_err(&wal_dir))?;
        metrics.replay_duration.set(started.elapsed().as_secs_f64());
        metrics.wal_corruptions.inc_by(stats.damage.regions);
        for d in &stats.damage.details {
            tracing::warn!(damage = %d, "WAL damage skipped during replay");
        }
        tracing::info!(
            series = head.num_series(),
            samples = stats.samples,
            seconds = started.elapsed().as_secs_f64(),
            "WAL replay complete"
        );

        let sync_every_commit = opts.wal_sync_interval.is_zero();
        let wal =
            Arc::new(Wal::open(&wal_dir, opts.wal_segment_bytes, sync_every_commit, Box::new(metrics.clone())).map_err(io_err(&wal_dir))?);
        let mut head = head;
        head.wal = Some(wal.clone());
        let head = Arc::new(head);
        let stop = Arc::new(AtomicBool::new(false));
        let syncer = (!sync_every_commit).then(|| spawn_syncer(wal.clone(), opts.wal_sync_interval, stop.clone()));
        let hold = Arc::new(SegmentHold::new(&wal_dir, opts.wal_hold_max_bytes));
        let db = Db {
            dir: dir.to_path_buf(),
            opts,
            head,
            wal,
            hold,
            blocks: RwLock::new(blocks),
            metrics,
            compact_lock: Mutex::new(()),
            stop,
            syncer,
            _lock: lock,
            replay: stats,
        };
        db.update_head_gauges();
        Ok(db)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn head(&self) -> &Arc<Head> {
        &self.head
    }

    pub fn metrics(&self) -> &TsdbMetrics {
        &self.metrics
    }

    /// WAL segments kept for remote-write queues.
    pub fn wal_hold(&self) -> &Arc<SegmentHold> {
        &self.hold
    }

    /// What the startup replay found.
    pub fn replay_stats(&self) -> &replay::ReplayStats {
        &self.replay
    }

    /// Starts a batch of appends.
    pub fn appender(&self) -> Appender<'_> {
        self.head.appender()
    }

    /// The loaded blocks, oldest first.
    pub fn blocks(&self) -> Vec<Arc<Block>> {
        self.blocks.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A consistent view for reading.
    pub fn querier(&self) -> Querier {
        Querier { head: self.head.clone(), blocks: self.blocks() }
    }

    /// Deletes `[mint, maxt]` of matching series (reads skip it at once).
    pub fn delete(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<(), DbError> {
        let ids = self.head.delete(matchers, mint, maxt);
        let ts: Vec<_> = ids.into_iter().map(|id| wal::record::Tombstone { id, mint, maxt }).collect();
        if !ts.is_empty() {
            self.wal.log_tombstones(&ts).map_err(io_err(self.wal.dir()))?;
        }
        for b in self.blocks() {
            b.delete(matchers, mint, maxt).map_err(io_err(b.dir()))?;
        }
        Ok(())
    }

    /// Writes a consistent copy of the data into `snapshots/<name>`: blocks are
    /// hard-linked (cheap, immutable), and unless `skip_head` the head is
    /// written as one more block. Returns the snapshot's name.
    pub fn snapshot(&self, skip_head: bool) -> Result<String, DbError> {
        let _g = self.compact_lock.lock().unwrap_or_else(|p| p.into_inner());
        let name = format!("{}-{}", crate::server::rfc3339_now().replace(['-', ':'], ""), &super::block::meta::new_ulid()[16..]);
        let dir = self.dir.join("snapshots").join(&name);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        for b in self.blocks() {
            let dst = dir.join(&b.meta().ulid);
            fs::create_dir_all(&dst).map_err(io_err(&dst))?;
            for e in fs::read_dir(b.dir()).map_err(io_err(b.dir()))?.flatten() {
                let to = dst.join(e.file_name());
                fs::hard_link(e.path(), &to).or_else(|_| fs::copy(e.path(), &to).map(|_| ())).map_err(io_err(&to))?;
            }
        }
        let (lo, hi) = (self.head.min_time(), self.head.max_time());
        if !skip_head && lo <= hi {
            compact::write_head_range(&self.head, &dir, lo, hi + 1, self.opts.zstd_level).map_err(io_err(&dir))?;
        }
        Ok(name)
    }

    /// Rewrites blocks that have deletions so the deleted data is gone from disk.
    pub fn clean_tombstones(&self) -> Result<(), DbError> {
        let _g = self.compact_lock.lock().unwrap_or_else(|p| p.into_inner());
        for b in self.blocks().into_iter().filter(|b| b.has_tombstones()) {
            let meta = compact::merge(std::slice::from_ref(&b), &self.dir, self.opts.zstd_level).map_err(io_err(&self.dir))?;
            let new = match meta {
                Some(m) => vec![Arc::new(Block::open(&self.dir.join(&m.ulid))?)],
                None => Vec::new(),
            };
            self.add_blocks(new, std::slice::from_ref(&b));
            delete_block_dir(b.dir()).map_err(io_err(b.dir()))?;
        }
        Ok(())
    }

    /// Runs everything that is due: head → blocks, block merges, retention.
    /// Safe to call often; one run at a time.
    pub fn compact(&self) -> Result<(), DbError> {
        let _g = self.compact_lock.lock().unwrap_or_else(|p| p.into_inner());
        let res = self.compact_head().and_then(|_| self.compact_blocks()).and_then(|_| self.apply_retention());
        if res.is_err() {
            self.metrics.compactions_failed.inc();
        }
        self.update_head_gauges();
        res
    }

    fn update_head_gauges(&self) {
        let (lo, hi) = (self.head.min_time(), self.head.max_time());
        if lo <= hi {
            self.metrics.head_min_time.set(lo);
            self.metrics.head_max_time.set(hi);
        }
    }

    fn compact_head(&self) -> Result<(), DbError> {
        let r = self.opts.min_block_ms;
        loop {
            let (lo, hi) = (self.head.min_time(), self.head.max_time());
            if lo > hi || hi - lo < r / 2 * 3 {
                return Ok(());
            }
            let mint = lo.div_euclid(r) * r;
            let maxt = mint + r;
            self.persist_head_range(mint, maxt)?;
        }
    }

    /// Persists the head up to `maxt` and truncates head and WAL behind it.
    fn persist_head_range(&self, mint: i64, maxt: i64) -> Result<(), DbError> {
        let started = Instant::now();
        let meta = compact::write_head_range(&self.head, &self.dir, mint, maxt, self.opts.zstd_level).map_err(io_err(&self.dir))?;
        if let Some(meta) = meta {
            let b = Block::open(&self.dir.join(&meta.ulid))?;
            self.add_blocks(vec![Arc::new(b)], &[]);
            self.metrics.compactions.inc();
            self.metrics.compaction_duration.observe(started.elapsed().as_secs_f64());
            tracing::info!(ulid = %meta.ulid, mint, maxt, series = meta.stats.num_series, samples = meta.stats.num_samples, "head persisted as block");
        }
        let wal_dir = self.wal.dir().to_path_buf();
        let last = self.wal.cut_segment().map_err(io_err(&wal_dir))?;
        self.head.truncate(maxt).map_err(io_err(&self.dir))?;
        self.hold.preserve(last).map_err(io_err(&wal_dir))?;
        let head = self.head.clone();
        checkpoint::create(&wal_dir, last, |id| head.contains(id), maxt).map_err(io_err(&wal_dir))?;
        self.metrics.checkpoint_creations.inc();
        Ok(())
    }

    /// Persists the whole head now, e.g. before a snapshot or in tests.
    pub fn flush_head(&self) -> Result<(), DbError> {
        let _g = self.compact_lock.lock().unwrap_or_else(|p| p.into_inner());
        let r = self.opts.min_block_ms;
        loop {
            let (lo, hi) = (self.head.min_time(), self.head.max_time());
            if lo > hi {
                return Ok(());
            }
            let mint = lo.div_euclid(r) * r;
            self.persist_head_range(mint, mint + r)?;
        }
    }

    fn compact_blocks(&self) -> Result<(), DbError> {
        let ranges = compact::level_ranges(self.opts.min_block_ms, self.opts.max_block_ms);
        loop {
            let blocks = self.blocks();
            let metas: Vec<_> = blocks.iter().map(|b| b.meta().clone()).collect();
            let Some(group) = compact::plan(&metas, &ranges) else {
                return Ok(());
            };
            let started = Instant::now();
            let sel: Vec<Arc<Block>> = group.iter().map(|&i| blocks[i].clone()).collect();
            let meta = compact::merge(&sel, &self.dir, self.opts.zstd_level).map_err(io_err(&self.dir))?;
            let new = match meta {
                Some(m) => vec![Arc::new(Block::open(&self.dir.join(&m.ulid))?)],
                None => Vec::new(),
            };
            self.add_blocks(new, &sel);
            self.metrics.compactions.inc();
            self.metrics.compaction_duration.observe(started.elapsed().as_secs_f64());
            for b in &sel {
                delete_block_dir(b.dir()).map_err(io_err(b.dir()))?;
            }
        }
    }

    fn add_blocks(&self, add: Vec<Arc<Block>>, remove: &[Arc<Block>]) {
        let mut bs = self.blocks.write().unwrap_or_else(|p| p.into_inner());
        bs.retain(|b| !remove.iter().any(|r| Arc::ptr_eq(r, b)));
        bs.extend(add);
        bs.sort_by_key(|b| b.meta().min_time);
        self.metrics.blocks_loaded.set(bs.len() as i64);
        self.metrics.storage_blocks_bytes.set(bs.iter().map(|b| b.size_bytes() as i64).sum());
    }

    fn apply_retention(&self) -> Result<(), DbError> {
        let blocks = self.blocks();
        let mut doomed: Vec<Arc<Block>> = Vec::new();
        if let Some(ret) = self.opts.retention_ms {
            let newest = blocks.iter().map(|b| b.meta().max_time).max().unwrap_or(i64::MIN).max(self.head.max_time());
            for b in &blocks {
                if b.meta().max_time <= newest.saturating_sub(ret) {
                    doomed.push(b.clone());
                    self.metrics.time_retentions.inc();
                }
            }
        }
        if let Some(limit) = self.opts.retention_bytes {
            let mut total: u64 = blocks.iter().map(|b| b.size_bytes()).sum::<u64>() + self.wal.size_bytes() + self.head.disk.size_bytes();
            for b in &blocks {
                if total <= limit {
                    break;
                }
                total = total.saturating_sub(b.size_bytes());
                if !doomed.iter().any(|d| Arc::ptr_eq(d, b)) {
                    doomed.push(b.clone());
                    self.metrics.size_retentions.inc();
                }
            }
        }
        if doomed.is_empty() {
            return Ok(());
        }
        self.add_blocks(Vec::new(), &doomed);
        for b in doomed {
            tracing::info!(ulid = %b.meta().ulid, "deleting block past retention");
            delete_block_dir(b.dir()).map_err(io_err(b.dir()))?;
        }
        Ok(())
    }

    /// Flushes and fsyncs the WAL and stops background work.
    pub fn close(mut self) -> Result<(), DbError> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.syncer.take() {
            let _ = h.join();
        }
        self.wal.sync().map_err(io_err(self.wal.dir()))
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.syncer.take() {
            let _ = h.join();
        }
    }
}

fn spawn_syncer(wal: Arc<Wal>, every: Duration, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("wal-sync".into())
        .spawn(move || {
            let tick = Duration::from_millis(50).min(every);
            let mut last = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                if last.elapsed() >= every {
                    if let Err(e) = wal.sync() {
                        tracing::error!(error = %e, "WAL fsync failed");
                    }
                    last = Instant::now();
                }
            }
        })
        .unwrap_or_else(|e| panic!("cannot start the WAL sync thread: {e}"))
}

/// Takes an exclusive lock on `dir/lock` so two servers never share a directory.
fn lock_dir(dir: &Path) -> Result<File, DbError> {
    let path = dir.join("lock");
    let f = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io_err(&path))?;
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(DbError::Locked(dir.display().to_string()));
    }
    Ok(f)
}

/// Removes leftovers of interrupted writes (blocks, checkpoints, deletions).
fn remove_tmp_dirs(dir: &Path) -> io::Result<()> {
    for d in [dir.to_path_buf(), dir.join("wal")] {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().contains(".tmp") && e.path().is_dir() {
                fs::remove_dir_all(e.path())?;
            }
        }
    }
    Ok(())
}

/// Opens every block, dropping blocks already merged into a newer one (a
/// crash between writing a merged block and deleting its sources).
fn load_blocks(dir: &Path) -> Result<Vec<Arc<Block>>, DbError> {
    let mut blocks = Vec::new();
    for e in fs::read_dir(dir).map_err(io_err(dir))?.flatten() {
        let p = e.path();
        if p.is_dir() && p.join("meta.json").exists() {
            blocks.push(Arc::new(Block::open(&p)?));
        }
    }
    let merged: std::collections::HashSet<String> = blocks
        .iter()
        .filter(|b| b.meta().compaction.sources.len() > 1)
        .flat_map(|b| b.meta().compaction.sources.iter().filter(|s| **s != b.meta().ulid).cloned())
        .collect();
    let (stale, mut keep): (Vec<_>, Vec<_>) = blocks.into_iter().partition(|b| merged.contains(&b.meta().ulid));
    for b in stale {
        tracing::info!(ulid = %b.meta().ulid, "removing block already merged into a newer one");
        delete_block_dir(b.dir()).map_err(io_err(b.dir()))?;
    }
    keep.sort_by_key(|b| b.meta().min_time);
    Ok(keep)
}

/// Deletes a block directory atomically (rename first, so a crash mid-way
/// leaves a `.tmp` leftover rather than a damaged block).
fn delete_block_dir(dir: &Path) -> io::Result<()> {
    let mut tmp = dir.as_os_str().to_owned();
    tmp.push(".tmp-for-deletion");
    let tmp = PathBuf::from(tmp);
    fs::rename(dir, &tmp)?;
    fs::remove_dir_all(&tmp)
}
