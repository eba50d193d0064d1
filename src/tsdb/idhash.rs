//! A fast hasher for integer keys (series ids, symbol ids, precomputed hashes).
//!
//! The standard SipHash costs more than the rest of an append; these keys are
//! not attacker-chosen strings, so a multiplicative mix is enough.

use std::hash::{BuildHasherDefault, Hasher};

/// Multiplicative hasher for integer keys.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
}

/// `HashMap<K, V, IdBuild>` for integer keys.
pub type IdBuild = BuildHasherDefault<IdHasher>;
/// A hash map keyed by integers.
pub type IdMap<K, V> = std::collections::HashMap<K, V, IdBuild>;
