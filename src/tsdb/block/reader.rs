//! Opening and reading a block.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use memmap2::Mmap;

use super::meta::BlockMeta;
use super::{CHUNKS_FILE, INDEX_FILE, INDEX_MAGIC, TOMBSTONES_FILE};
use crate::model::{Label, Labels, Matcher, Sample};
use crate::tsdb::chunkenc::decimal;
use crate::tsdb::encoding::{DecodeError, Reader};
use crate::tsdb::index::{IndexReader, select_postings};
use crate::tsdb::tombstones::Intervals;

/// Decompressed pages kept per block for queries touching neighbouring series.
const PAGE_CACHE: usize = 32;

/// Where one chunk of a series lives.
#[derive(Debug, Clone, Copy)]
struct ChunkMeta {
    mint: i64,
    maxt: i64,
    page: u32,
    offset: u32,
}

struct SeriesEntry {
    labels: Box<[(u32, u32)]>,
    chunks: Box<[ChunkMeta]>,
}

/// An error opening a block, naming the block and the file.
#[derive(Debug, thiserror::Error)]
#[error("block {dir}: {msg}")]
pub struct BlockError {
    pub dir: String,
    pub msg: String,
}

/// An open, immutable block.
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    chunks: Option<Mmap>,
    /// (offset, compressed length, uncompressed length) per page.
    pages: Vec<(u64, u32, u32)>,
    symbols: Vec<Box<str>>,
    /// Symbol ids in string order, for lookups by string.
    sorted_symbols: Vec<u32>,
    series: Vec<SeriesEntry>,
    postings: HashMap<(u32, u32), Vec<u32>>,
    values: HashMap<u32, Vec<u32>>,
    tombstones: RwLock<HashMap<u32, Intervals>>,
    cache: Mutex<Vec<(u32, Arc<Vec<u8>>)>>,
    size_bytes: u64,
}

impl Block {
    /// Opens the block in `dir`, verifying its index decodes.
    pub fn open(dir: &Path) -> Result<Block, BlockError> {
        let err = |msg: String| BlockError { dir: dir.display().to_string(), msg };
        let meta = BlockMeta::read(dir).map_err(err)?;
        let raw = std::fs::read(dir.join(INDEX_FILE)).map_err(|e| err(format!("index: {e}")))?;
        let ix = zstd::stream::decode_all(&raw[..]).map_err(|e| err(format!("index: {e}")))?;
        let chunks_file = File::open(dir.join(CHUNKS_FILE)).map_err(|e| err(format!("chunks: {e}")))?;
        let chunks_len = chunks_file.metadata().map_err(|e| err(format!("chunks: {e}")))?.len();
        // SAFETY: block files are immutable once renamed into place.
        let chunks = if chunks_len > 0 { Some(unsafe { Mmap::map(&chunks_file) }.map_err(|e| err(format!("chunks: {e}")))?) } else { None };
        let mut b = Block {
            dir: dir.to_path_buf(),
            meta,
            chunks,
            pages: Vec::new(),
            symbols: Vec::new(),
            sorted_symbols: Vec::new(),
            series: Vec::new(),
            postings: HashMap::new(),
            values: HashMap::new(),
            tombstones: RwLock::new(HashMap::new()),
            cache: Mutex::new(Vec::new()),
            size_bytes: crate::tsdb::wal::dir_size(dir),
        };
        b.load_index(&ix, chunks_len).map_err(|e| err(format!("index: {e}")))?;
        if let Ok(bytes) = std::fs::read(dir.join(TOMBSTONES_FILE)) {
            let t: HashMap<u32, Intervals> = serde_json::from_slice(&bytes).map_err(|e| err(format!("{TOMBSTONES_FILE}: {e}")))?;
            b.tombstones = RwLock::new(t);
        }
        Ok(b)
    }

    fn load_index(&mut self, ix: &[u8], chunks_len: u64) -> Result<(), DecodeError> {
        let mut r = Reader::new(ix);
        if r.bytes(4)? != INDEX_MAGIC {
            return Err(DecodeError { offset: 0 });
        }
        let nsym = r.len_prefix()?;
        self.symbols = (0..nsym).map(|_| r.str().map(Box::from)).collect::<Result<_, _>>()?;
        let nsym32 = self.symbols.len() as u64;
        let npages = r.len_prefix()?;
        let mut off = 0u64;
        for _ in 0..npages {
            let c = r.uvarint()? as u32;
            let u = r.uvarint()? as u32;
            self.pages.push((off, c, u));
            off += u64::from(c);
        }
        if off > chunks_len {
            return Err(DecodeError { offset: r.pos() });
        }
        let nseries = r.len_prefix()?;
        self.series.reserve_exact(nseries);
        for id in 0..nseries as u32 {
            let nl = r.len_prefix()?;
            let mut labels = Vec::with_capacity(nl);
            for _ in 0..nl {
                let (n, v) = (r.uvarint()?, r.uvarint()?);
                if n >= nsym32 || v >= nsym32 {
                    return Err(DecodeError { offset: r.pos() });
                }
                labels.push((n as u32, v as u32));
            }
            let nc = r.len_prefix()?;
            let mut chunks = Vec::with_capacity(nc);
            let mut prev_maxt = self.meta.min_time;
            for _ in 0..nc {
                let mint = prev_maxt.wrapping_add(r.varint()?);
                let maxt = mint.wrapping_add(r.uvarint()? as i64);
                let page = r.uvarint()? as u32;
                let offset = r.uvarint()? as u32;
                if page as usize >= self.pages.len() {
                    return Err(DecodeError { offset: r.pos() });
                }
                chunks.push(ChunkMeta { mint, maxt, page, offset });
                prev_maxt = maxt;
            }
            for &(n, v) in &labels {
                let p = self.postings.entry((n, v)).or_default();
                if p.is_empty() {
                    self.values.entry(n).or_default().push(v);
                }
                p.push(id);
            }
            self.series.push(SeriesEntry { labels: labels.into(), chunks: chunks.into() });
        }
        let mut sorted: Vec<u32> = (0..self.symbols.len() as u32).collect();
        sorted.sort_by(|&a, &b| self.symbols[a as usize].cmp(&self.symbols[b as usize]));
        self.sorted_symbols = sorted;
        Ok(())
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    pub fn num_series(&self) -> usize {
        self.series.len()
    }

    fn lookup(&self, s: &str) -> Option<u32> {
        self.sorted_symbols.binary_search_by(|&id| (*self.symbols[id as usize]).cmp(s)).ok().map(|i| self.sorted_symbols[i])
    }

    /// Labels of series `i` (ids are positions in label order).
    pub fn labels(&self, i: u32) -> Labels {
        let s = &self.series[i as usize];
        Labels::from_sorted(s.labels.iter().map(|&(n, v)| Label::new(&*self.symbols[n as usize], &*self.symbols[v as usize])).collect())
    }

    fn page(&self, p: u32) -> Result<Arc<Vec<u8>>, String> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pos) = cache.iter().position(|(id, _)| *id == p) {
            let e = cache.remove(pos);
            let data = e.1.clone();
            cache.push(e);
            return Ok(data);
        }
        drop(cache);
        let &(off, clen, ulen) = self.pages.get(p as usize).ok_or("page out of range")?;
        let map = self.chunks.as_ref().ok_or("no chunks")?;
        let src = map.get(off as usize..off as usize + clen as usize).ok_or("page beyond end of chunks file")?;
        let data = Arc::new(decompress(src, ulen as usize)?);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= PAGE_CACHE {
            cache.remove(0);
        }
        cache.push((p, data.clone()));
        Ok(data)
    }

    /// Samples of series `i` in `[mint, maxt]`, deletions applied. Damaged
    /// chunks are reported, not panicked on.
    pub fn samples(&self, i: u32, mint: i64, maxt: i64, out: &mut Vec<Sample>) -> Result<(), String> {
        let s = &self.series[i as usize];
        let start = out.len();
        for c in s.chunks.iter().filter(|c| c.maxt >= mint && c.mint <= maxt) {
            let page = self.page(c.page)?;
            let mut r = Reader::new(page.get(c.offset as usize..).ok_or("chunk offset beyond page")?);
            decimal::decode_window(&mut r, mint, maxt, out).map_err(|e| format!("block {}: series {i}: {e}", self.meta.ulid))?;
        }
        if let Some(iv) = self.tombstones.read().unwrap_or_else(|e| e.into_inner()).get(&i) {
            let mut k = start;
            for j in start..out.len() {
                if !iv.contains(out[j].t) {
                    out[k] = out[j];
                    k += 1;
                }
            }
            out.truncate(k);
        }
        Ok(())
    }

    /// Ids of series matching `matchers`, in label order.
    pub fn select_ids(&self, matchers: &[Matcher]) -> Vec<u32> {
        select_postings(self, matchers)
    }

    /// Records deletions for matching series and persists them.
    pub fn delete(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> io::Result<usize> {
        if maxt < self.meta.min_time || mint >= self.meta.max_time {
            return Ok(0);
        }
        let ids = self.select_ids(matchers);
        let mut t = self.tombstones.write().unwrap_or_else(|e| e.into_inner());
        for &id in &ids {
            t.entry(id).or_default().add(mint, maxt);
        }
        let json = serde_json::to_vec(&*t).map_err(io::Error::other)?;
        let tmp = self.dir.join(format!("{TOMBSTONES_FILE}.tmp"));
        super::writer::write_synced(&tmp, &json)?;
        std::fs::rename(&tmp, self.dir.join(TOMBSTONES_FILE))?;
        Ok(ids.len())
    }

    /// Whether any deletions are recorded.
    pub fn has_tombstones(&self) -> bool {
        !self.tombstones.read().unwrap_or_else(|e| e.into_inner()).is_empty()
    }
}

/// Decompresses a page with a per-thread context (creating one per page costs more than small pages take to decode).
fn decompress(src: &[u8], len: usize) -> Result<Vec<u8>, String> {
    thread_local! {
        static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { std::cell::RefCell::new(None) };
    }
    DCTX.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?);
        }
        match slot.as_mut() {
            Some(d) => d.decompress(src, len).map_err(|e| e.to_string()),
            None => Err("no zstd context".to_string()),
        }
    })
}

impl IndexReader for Block {
    fn postings(&self, name: &str, value: &str) -> Vec<u32> {
        match (self.lookup(name), self.lookup(value)) {
            (Some(n), Some(v)) => self.postings.get(&(n, v)).cloned().unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    fn all_postings(&self) -> Vec<u32> {
        (0..self.series.len() as u32).collect()
    }

    fn label_values(&self, name: &str) -> Vec<String> {
        let Some(n) = self.lookup(name) else {
            return Vec::new();
        };
        let mut v: Vec<String> =
            self.values.get(&n).map(|vs| vs.iter().map(|&v| self.symbols[v as usize].to_string()).collect()).unwrap_or_default();
        v.sort();
        v
    }

    fn label_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.values.keys().map(|&n| self.symbols[n as usize].to_string()).collect();
        v.sort();
        v
    }
}
