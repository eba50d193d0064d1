//! Writing a block from series given in label order.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::meta::{BlockMeta, BlockStats, Compaction, new_ulid};
use super::{CHUNKS_FILE, INDEX_FILE, INDEX_MAGIC, MAX_CHUNK_SAMPLES, META_FILE};
use crate::model::{Labels, Sample};
use crate::tsdb::chunkenc::decimal;
use crate::tsdb::encoding::{put_str, put_uvarint, put_varint};

/// Uncompressed bytes gathered before a page is compressed.
const PAGE_BYTES: usize = 64 << 10;

/// Writes one block. Call [`BlockWriter::add_series`] in label order, then [`BlockWriter::finish`].
pub struct BlockWriter {
    tmp: PathBuf,
    dir: PathBuf,
    ulid: String,
    mint: i64,
    maxt: i64,
    level: u32,
    sources: Vec<String>,
    zstd_level: i32,
    chunks: BufWriter<File>,
    page: Vec<u8>,
    pages: Vec<(u32, u32)>,
    symbols: HashMap<String, u32>,
    symbol_list: Vec<String>,
    series: Vec<u8>,
    stats: BlockStats,
    last_labels: Option<Labels>,
}

impl BlockWriter {
    /// Starts a block for `[mint, maxt)` under `parent`.
    pub fn new(parent: &Path, mint: i64, maxt: i64, level: u32, sources: Vec<String>, zstd_level: i32) -> io::Result<Self> {
        let ulid = new_ulid();
        let dir = parent.join(&ulid);
        let tmp = parent.join(format!("{ulid}.tmp"));
        fs::create_dir_all(&tmp)?;
        let chunks = BufWriter::with_capacity(1 << 20, File::create(tmp.join(CHUNKS_FILE))?);
        let sources = if sources.is_empty() { vec![ulid.clone()] } else { sources };
        Ok(BlockWriter {
            tmp,
            dir,
            ulid,
            mint,
            maxt,
            level,
            sources,
            zstd_level,
            chunks,
            page: Vec::with_capacity(PAGE_BYTES + 4096),
            pages: Vec::new(),
            symbols: HashMap::new(),
            symbol_list: Vec::new(),
            series: Vec::new(),
            stats: BlockStats::default(),
            last_labels: None,
        })
    }

    fn sym(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.symbols.get(s) {
            return id;
        }
        let id = self.symbol_list.len() as u32;
        self.symbols.insert(s.to_string(), id);
        self.symbol_list.push(s.to_string());
        id
    }

    /// Adds a series with samples sorted by time within the block's range.
    /// Series without samples are skipped.
    pub fn add_series(&mut self, labels: &Labels, samples: &[Sample]) -> io::Result<()> {
        if samples.is_empty() {
            return Ok(());
        }
        if let Some(prev) = &self.last_labels
            && prev >= labels
        {
            return Err(io::Error::other(format!("series out of order in block: {labels} after {prev}")));
        }
        self.last_labels = Some(labels.clone());
        let syms: Vec<(u32, u32)> = labels.iter().map(|l| (self.sym(&l.name), self.sym(&l.value))).collect();
        put_uvarint(&mut self.series, syms.len() as u64);
        for (n, v) in syms {
            put_uvarint(&mut self.series, u64::from(n));
            put_uvarint(&mut self.series, u64::from(v));
        }
        let parts: Vec<&[Sample]> = samples.chunks(MAX_CHUNK_SAMPLES).collect();
        put_uvarint(&mut self.series, parts.len() as u64);
        let mut prev_maxt = self.mint;
        for part in parts {
            if self.page.len() >= PAGE_BYTES {
                self.flush_page()?;
            }
            let (mint, maxt) = (part[0].t, part[part.len() - 1].t);
            put_varint(&mut self.series, mint.wrapping_sub(prev_maxt));
            put_uvarint(&mut self.series, maxt.wrapping_sub(mint) as u64);
            put_uvarint(&mut self.series, self.pages.len() as u64);
            put_uvarint(&mut self.series, self.page.len() as u64);
            prev_maxt = maxt;
            decimal::encode(part, &mut self.page);
            self.stats.num_chunks += 1;
        }
        self.stats.num_series += 1;
        self.stats.num_samples += samples.len() as u64;
        Ok(())
    }

    fn flush_page(&mut self) -> io::Result<()> {
        if self.page.is_empty() {
            return Ok(());
        }
        let c = zstd::bulk::compress(&self.page, self.zstd_level)?;
        self.chunks.write_all(&c)?;
        self.pages.push((c.len() as u32, self.page.len() as u32));
        self.page.clear();
        Ok(())
    }

    /// Number of series written so far.
    pub fn num_series(&self) -> u64 {
        self.stats.num_series
    }

    /// Completes the block and moves it into place; returns its metadata, or
    /// None (and writes nothing) when it holds no series.
    pub fn finish(mut self) -> io::Result<Option<BlockMeta>> {
        if self.stats.num_series == 0 {
            drop(self.chunks);
            fs::remove_dir_all(&self.tmp)?;
            return Ok(None);
        }
        self.flush_page()?;
        let chunks = self.chunks.into_inner().map_err(|e| e.into_error())?;
        chunks.sync_all()?;

        let mut ix = Vec::with_capacity(self.series.len() + self.symbol_list.len() * 16 + 64);
        ix.extend_from_slice(INDEX_MAGIC);
        put_uvarint(&mut ix, self.symbol_list.len() as u64);
        for s in &self.symbol_list {
            put_str(&mut ix, s);
        }
        put_uvarint(&mut ix, self.pages.len() as u64);
        for &(c, u) in &self.pages {
            put_uvarint(&mut ix, u64::from(c));
            put_uvarint(&mut ix, u64::from(u));
        }
        put_uvarint(&mut ix, self.stats.num_series);
        ix.extend_from_slice(&self.series);
        let compressed = zstd::bulk::compress(&ix, self.zstd_level)?;
        write_synced(&self.tmp.join(INDEX_FILE), &compressed)?;

        let meta = BlockMeta {
            ulid: self.ulid.clone(),
            min_time: self.mint,
            max_time: self.maxt,
            stats: self.stats.clone(),
            compaction: Compaction { level: self.level, sources: self.sources.clone() },
            version: 1,
        };
        let json = serde_json::to_vec_pretty(&meta).map_err(io::Error::other)?;
        write_synced(&self.tmp.join(META_FILE), &json)?;
        File::open(&self.tmp)?.sync_all()?;
        fs::rename(&self.tmp, &self.dir)?;
        if let Some(parent) = self.dir.parent() {
            File::open(parent)?.sync_all()?;
        }
        Ok(Some(meta))
    }
}

/// Writes a file and fsyncs it.
pub fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
