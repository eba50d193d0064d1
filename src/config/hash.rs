//! The hash that identifies a configuration: the operator computes it over
//! the config Secret it writes, each server over the Secret data it runs,
//! so the operator can confirm that every pod runs the new configuration.

use std::collections::BTreeMap;

use xxhash_rust::xxh3::Xxh3;

/// xxh3-64 over each key (sorted) and value, both length-prefixed so that
/// moving bytes between a key and its value changes the hash; 16 hex digits.
pub fn content_hash(files: &BTreeMap<String, Vec<u8>>) -> String {
    let mut h = Xxh3::new();
    for (k, v) in files {
        h.update(&(k.len() as u64).to_le_bytes());
        h.update(k.as_bytes());
        h.update(&(v.len() as u64).to_le_bytes());
        h.update(v);
    }
    format!("{:016x}", h.digest())
}
