//! One series in the head: its interned labels and its chunks.

use super::chunk_disk::{ChunkDisk, DiskChunkRef};
use crate::model::Sample;
use crate::tsdb::chunkenc::{XorChunk, XorIter};

/// A completed chunk: normally spilled to disk, kept in memory only if the
/// spill failed (for example on a full disk), so data is never dropped.
pub enum DoneChunk {
    Disk(DiskChunkRef),
    Mem(Box<XorChunk>),
}

impl DoneChunk {
    pub fn min_time(&self) -> i64 {
        match self {
            DoneChunk::Disk(r) => r.mint,
            DoneChunk::Mem(c) => c.min_time(),
        }
    }

    pub fn max_time(&self) -> i64 {
        match self {
            DoneChunk::Disk(r) => r.maxt(),
            DoneChunk::Mem(c) => c.max_time(),
        }
    }
}

/// A series in the head.
pub struct MemSeries {
    /// (name, value) symbol ids, sorted by name.
    pub labels: Box<[(u32, u32)]>,
    pub head: XorChunk,
    pub done: Vec<DoneChunk>,
}

impl MemSeries {
    pub fn new(labels: Box<[(u32, u32)]>) -> Self {
        MemSeries {
            labels,
            // Room for a typical first chunk's start; later chunks are sized from their predecessor.
            head: XorChunk::with_capacity(128),
            done: Vec::new(),
        }
    }

    /// Newest timestamp, if any.
    pub fn max_time(&self) -> Option<i64> {
        if !self.head.is_empty() {
            return Some(self.head.max_time());
        }
        self.done.last().map(DoneChunk::max_time)
    }

    pub fn min_time(&self) -> Option<i64> {
        self.done.first().map(DoneChunk::min_time).or((!self.head.is_empty()).then(|| self.head.min_time()))
    }

    pub fn last_value_bits(&self) -> Option<u64> {
        if !self.head.is_empty() {
            return Some(self.head.last_value().to_bits());
        }
        None
    }

    pub fn is_empty(&self) -> bool {
        self.head.is_empty() && self.done.is_empty()
    }

    /// Appends samples in `[mint, maxt]` to `out`, oldest first.
    pub fn samples(&self, disk: &ChunkDisk, mint: i64, maxt: i64, out: &mut Vec<Sample>) {
        let keep = |s: &Sample| s.t >= mint && s.t <= maxt;
        for c in &self.done {
            if c.max_time() < mint || c.min_time() > maxt {
                continue;
            }
            match c {
                DoneChunk::Disk(r) => {
                    disk.read(r, |b| out.extend(XorIter::new(b, usize::from(r.samples)).filter(keep)));
                }
                DoneChunk::Mem(c) => out.extend(c.iter().filter(keep)),
            }
        }
        if !self.head.is_empty() && self.head.max_time() >= mint && self.head.min_time() <= maxt {
            out.extend(self.head.iter().filter(keep));
        }
    }

    /// Drops chunks entirely before `mint`; returns whether the series is now empty.
    pub fn truncate_before(&mut self, mint: i64) -> bool {
        self.done.retain(|c| c.max_time() >= mint);
        if !self.head.is_empty() && self.head.max_time() < mint {
            self.head = XorChunk::new();
        }
        self.is_empty()
    }

    /// Heap bytes held by this series outside of spilled chunks.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.labels.len() * 8
            + self.head.heap_bytes()
            + self.done.capacity() * std::mem::size_of::<DoneChunk>()
            + self.done.iter().map(|c| if let DoneChunk::Mem(c) = c { c.heap_bytes() } else { 0 }).sum::<usize>()
    }
}
