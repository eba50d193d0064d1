//! Persisted, immutable blocks covering a time range `[minTime, maxTime)`.
//!
//! A block is a directory named by a ULID holding:
//! - `meta.json`: time range, statistics, compaction lineage;
//! - `chunks`: zstd-compressed pages, each a run of series chunks in the
//!   [`decimal`](crate::tsdb::chunkenc::decimal) encoding, series in label order;
//! - `index`: one zstd frame with the symbol table, page table and, per
//!   series, its labels as symbol ids and its chunk locations. Postings are
//!   not stored: they are rebuilt from the series list when the block opens,
//!   which costs little time and saves their bytes on disk;
//! - `tombstones.json` (optional): deleted intervals per series.
//!
//! Blocks are written in a `.tmp` directory and renamed into place, so a
//! crash never leaves a half-written block that looks complete.

pub mod meta;
pub mod reader;
pub mod writer;

pub use meta::BlockMeta;
pub use reader::Block;
pub use writer::BlockWriter;

const INDEX_MAGIC: &[u8; 4] = b"HIX1";
const INDEX_FILE: &str = "index";
const CHUNKS_FILE: &str = "chunks";
const META_FILE: &str = "meta.json";
const TOMBSTONES_FILE: &str = "tombstones.json";
/// Maximum samples in one block chunk.
pub const MAX_CHUNK_SAMPLES: usize = 1024;
