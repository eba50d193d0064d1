//! Memory-mapped files holding the head's completed chunks.
//!
//! A full head chunk never changes again, so it moves out of the general heap
//! into an append-only file mapped into memory: the kernel pages it in and out
//! as queries need it, and resident heap per series stays small.
//!
//! The files are a spill area, not a source of truth: the WAL is. They are
//! cleared at startup, and a file is deleted once every chunk in it is older
//! than the head.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use memmap2::MmapRaw;

/// Size of one spill file; chunks never straddle files.
const FILE_BYTES: u64 = 128 << 20;

/// Where a spilled chunk lives. Packed to 24 bytes: every series holds a
/// list of these.
#[derive(Debug, Clone, Copy)]
pub struct DiskChunkRef {
    pub mint: i64,
    /// `maxt - mint`; a head chunk spans at most one block range.
    pub span: u32,
    pub file: u32,
    pub offset: u32,
    pub len: u16,
    pub samples: u16,
}

impl DiskChunkRef {
    pub fn maxt(&self) -> i64 {
        self.mint + i64::from(self.span)
    }
}

struct ChunkFile {
    seq: u32,
    map: MmapRaw,
    path: PathBuf,
    /// Largest chunk max time in the file, for deleting it once obsolete.
    maxt: AtomicI64,
}

struct Files {
    files: Vec<ChunkFile>,
    /// Write position in the last file.
    pos: u64,
    next_seq: u32,
}

/// The set of spill files of one head.
pub struct ChunkDisk {
    dir: PathBuf,
    inner: Mutex<Files>,
}

impl ChunkDisk {
    /// Opens `dir`, deleting any files left by an earlier run.
    pub fn open(dir: &Path) -> io::Result<Self> {
        if dir.exists() {
            fs::remove_dir_all(dir)?;
        }
        fs::create_dir_all(dir)?;
        Ok(ChunkDisk { dir: dir.to_path_buf(), inner: Mutex::new(Files { files: Vec::new(), pos: FILE_BYTES, next_seq: 1 }) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Files> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes a chunk and returns where it lives.
    pub fn write(&self, bytes: &[u8], mint: i64, maxt: i64, samples: u16) -> io::Result<DiskChunkRef> {
        if bytes.len() > usize::from(u16::MAX) || maxt - mint > i64::from(u32::MAX) {
            return Err(io::Error::other("chunk too large to spill"));
        }
        let mut f = self.lock();
        if f.pos + bytes.len() as u64 > FILE_BYTES {
            let seq = f.next_seq;
            let path = self.dir.join(format!("{seq:06}"));
            let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path)?;
            file.set_len(FILE_BYTES)?;
            let map = MmapRaw::map_raw(&file)?;
            f.files.push(ChunkFile { seq, map, path, maxt: AtomicI64::new(i64::MIN) });
            f.next_seq += 1;
            f.pos = 0;
        }
        let pos = f.pos;
        let last = f.files.last().ok_or_else(|| io::Error::other("no chunk file"))?;
        // SAFETY: [pos, pos+len) lies inside the mapping (checked above), no reader
        // can see it before the returned reference is published, and it is
        // never written again.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), last.map.as_mut_ptr().add(pos as usize), bytes.len());
        }
        last.maxt.fetch_max(maxt, Ordering::Relaxed);
        let seq = last.seq;
        f.pos += bytes.len() as u64;
        Ok(DiskChunkRef { mint, span: (maxt - mint) as u32, file: seq, offset: pos as u32, len: bytes.len() as u16, samples })
    }

    /// Calls `f` with the bytes of a chunk.
    pub fn read<R>(&self, r: &DiskChunkRef, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let files = self.lock();
        let file = files.files.iter().find(|c| c.seq == r.file)?;
        let end = r.offset as usize + r.len as usize;
        if end > file.map.len() {
            return None;
        }
        // SAFETY: the range was written before `r` was handed out and is immutable.
        let bytes = unsafe { std::slice::from_raw_parts(file.map.as_ptr().add(r.offset as usize), r.len as usize) };
        Some(f(bytes))
    }

    /// Deletes files whose chunks all end before `mint` (never the one being written).
    pub fn truncate_before(&self, mint: i64) -> io::Result<()> {
        let mut f = self.lock();
        let n = f.files.len();
        let mut keep = Vec::with_capacity(n);
        for (i, file) in std::mem::take(&mut f.files).into_iter().enumerate() {
            if i + 1 < n && file.maxt.load(Ordering::Relaxed) < mint {
                let path = file.path.clone();
                drop(file);
                fs::remove_file(path)?;
            } else {
                keep.push(file);
            }
        }
        f.files = keep;
        Ok(())
    }

    /// Bytes on disk, for size-based retention.
    pub fn size_bytes(&self) -> u64 {
        self.lock().files.len() as u64 * FILE_BYTES
    }
}
