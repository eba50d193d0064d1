//! Block metadata (`meta.json`) and block ids.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The contents of `meta.json`, in Prometheus' field names where they exist.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    pub ulid: String,
    /// Inclusive lower bound (ms).
    pub min_time: i64,
    /// Exclusive upper bound (ms).
    pub max_time: i64,
    pub stats: BlockStats,
    pub compaction: Compaction,
    pub version: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    pub num_samples: u64,
    pub num_series: u64,
    pub num_chunks: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Compaction {
    pub level: u32,
    pub sources: Vec<String>,
}

impl BlockMeta {
    pub fn read(dir: &Path) -> Result<BlockMeta, String> {
        let path = dir.join(super::META_FILE);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new ULID: 48 bits of milliseconds then 80 bits that differ per call,
/// so block directories sort by creation time like Prometheus'.
pub fn new_ulid() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let ms = now.as_millis() & ((1 << 48) - 1);
    let seed = [now.as_nanos() as u64, u64::from(std::process::id()), COUNTER.fetch_add(1, Ordering::Relaxed)];
    let mut bytes = Vec::with_capacity(24);
    for s in seed {
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    let rand = xxhash_rust::xxh3::xxh3_128(&bytes) & ((1u128 << 80) - 1);
    let v = (ms << 80) | rand;
    (0..26).map(|i| CROCKFORD[((v >> (125 - i * 5)) & 31) as usize] as char).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ulids_are_unique_and_sort_by_time() {
        let a = super::new_ulid();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = super::new_ulid();
        assert_eq!(a.len(), 26);
        assert!(a < b, "{a} {b}");
    }
}
