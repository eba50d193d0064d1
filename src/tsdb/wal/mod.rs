//! The write-ahead log: every acknowledged sample is here before it is in memory.
//!
//! Layout: `wal/00000001`, `wal/00000002`, … segment files of framed records
//! (see [`record`]), plus at most one `wal/checkpoint.NNNNNNNN/` holding the
//! still-relevant content of segments up to NNNNNNNN (see [`checkpoint`]).
//!
//! Durability policy:
//! - `commit` hands records to the kernel with `write(2)` before returning, so
//!   an acknowledged sample survives the process being killed (SIGKILL, OOM).
//! - `fsync(2)` protects against power loss: segments are synced when they are
//!   completed, checkpoints before they replace segments, the open segment on
//!   shutdown and every `sync_interval` in the background (default 1s, flag
//!   `--storage.tsdb.wal-sync-interval`); an interval of 0 syncs in every commit.

pub mod checkpoint;
pub mod hold;
pub mod reader;
pub mod record;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use record::{RecordType, RefSample, Tombstone, frame};

use crate::model::Labels;

/// Buffered series records are written out once this large even without a commit.
const SERIES_BUF_FLUSH: usize = 1 << 20;

/// Callbacks for the WAL to report into the TSDB's metrics without depending on them.
pub trait WalObserver: Send + Sync {
    fn fsync_done(&self, seconds: f64);
    fn segment_cut(&self);
}

struct Writer {
    file: File,
    seq: u32,
    size: u64,
    /// Series records waiting to go out ahead of the next samples.
    buf: Vec<u8>,
}

/// The append side of the WAL.
pub struct Wal {
    dir: PathBuf,
    segment_bytes: u64,
    sync_every_commit: bool,
    w: Mutex<Writer>,
    observer: Box<dyn WalObserver>,
}

pub fn segment_path(dir: &Path, seq: u32) -> PathBuf {
    dir.join(format!("{seq:08}"))
}

/// Sorted sequence numbers of the segment files in `dir`.
pub fn list_segments(dir: &Path) -> io::Result<Vec<u32>> {
    let mut v = Vec::new();
    for e in fs::read_dir(dir)? {
        let name = e?.file_name();
        if let Some(n) = name.to_str().filter(|s| s.len() == 8).and_then(|s| s.parse::<u32>().ok()) {
            v.push(n);
        }
    }
    v.sort_unstable();
    Ok(v)
}

fn lock(m: &Mutex<Writer>) -> std::sync::MutexGuard<'_, Writer> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Wal {
    /// Opens the WAL for appending in a fresh segment after any existing ones.
    pub fn open(dir: &Path, segment_bytes: u64, sync_every_commit: bool, observer: Box<dyn WalObserver>) -> io::Result<Wal> {
        fs::create_dir_all(dir)?;
        let next = list_segments(dir)?.last().map_or(1, |s| s + 1);
        let file = create_segment(dir, next)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            segment_bytes,
            sync_every_commit,
            w: Mutex::new(Writer { file, seq: next, size: 0, buf: Vec::new() }),
            observer,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues a series record; it reaches disk no later than the next commit.
    pub fn log_series(&self, id: u32, labels: &Labels) -> io::Result<()> {
        let mut payload = Vec::with_capacity(64);
        record::encode_series(&mut payload, id, labels);
        let mut w = lock(&self.w);
        frame(&mut w.buf, RecordType::Series, &payload);
        if w.buf.len() >= SERIES_BUF_FLUSH {
            self.write_out(&mut w, &[])?;
        }
        Ok(())
    }

    /// Writes samples (after any queued series records) and returns once the
    /// kernel has them.
    pub fn log_samples(&self, samples: &[RefSample]) -> io::Result<()> {
        if samples.is_empty() {
            return Ok(());
        }
        // Keep records well below the segment size.
        let mut rec = Vec::with_capacity(samples.len().min(8192) * 13 + 32);
        for part in samples.chunks(8192) {
            let mut payload = Vec::with_capacity(part.len() * 13 + 16);
            record::encode_samples(&mut payload, part);
            frame(&mut rec, RecordType::Samples, &payload);
        }
        let mut w = lock(&self.w);
        self.write_out(&mut w, &rec)
    }

    /// Writes tombstones durably (they are rare, so each is synced).
    pub fn log_tombstones(&self, ts: &[Tombstone]) -> io::Result<()> {
        let mut payload = Vec::new();
        record::encode_tombstones(&mut payload, ts);
        let mut rec = Vec::new();
        frame(&mut rec, RecordType::Tombstones, &payload);
        let mut w = lock(&self.w);
        self.write_out(&mut w, &rec)?;
        self.sync_locked(&mut w)
    }

    fn write_out(&self, w: &mut Writer, rec: &[u8]) -> io::Result<()> {
        if w.size > 0 && w.size + (w.buf.len() + rec.len()) as u64 > self.segment_bytes {
            self.cut_locked(w)?;
        }
        let buf = std::mem::take(&mut w.buf);
        if !buf.is_empty() {
            w.file.write_all(&buf)?;
            w.size += buf.len() as u64;
        }
        w.buf = buf;
        w.buf.clear();
        if !rec.is_empty() {
            w.file.write_all(rec)?;
            w.size += rec.len() as u64;
        }
        if self.sync_every_commit {
            self.sync_locked(w)?;
        }
        Ok(())
    }

    fn sync_locked(&self, w: &mut Writer) -> io::Result<()> {
        let start = Instant::now();
        w.file.sync_data()?;
        self.observer.fsync_done(start.elapsed().as_secs_f64());
        Ok(())
    }

    fn cut_locked(&self, w: &mut Writer) -> io::Result<()> {
        let buf = std::mem::take(&mut w.buf);
        w.file.write_all(&buf)?;
        self.sync_locked(w)?;
        let next = w.seq + 1;
        w.file = create_segment(&self.dir, next)?;
        w.seq = next;
        w.size = 0;
        self.observer.segment_cut();
        Ok(())
    }

    /// Flushes queued records and fsyncs the open segment.
    pub fn sync(&self) -> io::Result<()> {
        let mut w = lock(&self.w);
        self.write_out(&mut w, &[])?;
        // fsync outside the lock on a duplicate handle, so appends keep flowing.
        let f = w.file.try_clone()?;
        drop(w);
        let start = Instant::now();
        f.sync_data()?;
        self.observer.fsync_done(start.elapsed().as_secs_f64());
        Ok(())
    }

    /// Completes the open segment and starts a new one; returns the number of
    /// the last completed segment.
    pub fn cut_segment(&self) -> io::Result<u32> {
        let mut w = lock(&self.w);
        let last = w.seq;
        self.cut_locked(&mut w)?;
        Ok(last)
    }

    /// Bytes of WAL on disk (segments and checkpoint), for size retention.
    pub fn size_bytes(&self) -> u64 {
        dir_size(&self.dir)
    }
}

fn create_segment(dir: &Path, seq: u32) -> io::Result<File> {
    let f = OpenOptions::new().create(true).append(true).open(segment_path(dir, seq))?;
    // Make the new name durable so a crash cannot lose the file itself.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(f)
}

/// Total size of regular files under `dir`, recursively.
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
