//! The per-target series cache.
//!
//! A target's exposition changes little from one scrape to the next, so the
//! raw text of each series (`name{labels}` as written) is mapped to the
//! storage reference and final labels it produced last time. A steady-state
//! scrape then does no label parsing, relabeling, hashing of labels or
//! allocation per sample: one hash-map lookup on the text and an append by
//! reference. The cache also remembers which series each scrape saw, which is
//! what staleness markers are written from.
//!
//! Entries hold no labels (storage has them): a reference that storage no
//! longer knows makes the entry a miss, and the line is parsed again.

use std::collections::HashMap;
use std::hash::BuildHasher;

use xxhash_rust::xxh3::xxh3_128_with_seed;

use crate::tsdb::idhash::IdBuild;

use crate::tsdb::SeriesRef;

/// Scrapes a series may be absent before its entry is forgotten.
const KEEP_ITERATIONS: u32 = 10;

/// What one series text resolved to.
#[derive(Debug, Clone)]
pub struct CacheEntry {
    /// Storage reference of the series (after target labels and relabeling).
    pub sref: SeriesRef,
    /// Scrape iteration that last saw this text.
    pub seen: u32,
    /// The exposition gave this series its own timestamps; Prometheus writes
    /// no staleness markers for such series.
    pub explicit_ts: bool,
}

/// A series text's 128-bit hash. Keying by it instead of the text saves
/// the text's memory and a pointer chase plus comparison per lookup; with a
/// random per-target seed two texts of a target collide with probability
/// around n²/2¹²⁹, nothing a target can aim for.
pub type TextKey = u128;

type TextMap<V> = HashMap<TextKey, V, IdBuild>;
/// Series texts of one target, with what they resolved to.
#[derive(Debug)]
pub struct ScrapeCache {
    series: TextMap<CacheEntry>,
    /// Texts that metric relabeling dropped, with the iteration last seen.
    dropped: TextMap<u32>,
    seed: u64,
    /// The current scrape iteration (starts at 1).
    iter: u32,
    /// Iteration whose series are live in storage (0: none are), i.e. would
    /// need a staleness marker if they disappeared.
    live: u32,
}

impl Default for ScrapeCache {
    fn default() -> Self {
        let seed = std::collections::hash_map::RandomState::new().hash_one(0u8);
        ScrapeCache { series: TextMap::default(), dropped: TextMap::default(), seed, iter: 0, live: 0 }
    }
}

impl ScrapeCache {
    /// Starts a scrape iteration.
    pub fn begin(&mut self) -> u32 {
        self.iter += 1;
        self.iter
    }

    /// The key of a series text.
    pub fn key(&self, series: &str) -> TextKey {
        xxh3_128_with_seed(series.as_bytes(), self.seed)
    }

    /// The entry for a series text, marked as seen in this iteration.
    pub fn get_mut(&mut self, key: TextKey) -> Option<&mut CacheEntry> {
        let iter = self.iter;
        let e = self.series.get_mut(&key)?;
        e.seen = iter;
        Some(e)
    }

    /// Whether metric relabeling dropped this text before (marking it seen).
    pub fn is_dropped(&mut self, key: TextKey) -> bool {
        match self.dropped.get_mut(&key) {
            Some(seen) => {
                *seen = self.iter;
                true
            }
            None => false,
        }
    }

    pub fn insert(&mut self, series: &str, sref: SeriesRef, explicit_ts: bool) {
        if series.is_empty() {
            return;
        }
        self.series.insert(self.key(series), CacheEntry { sref, seen: self.iter, explicit_ts });
    }

    pub fn insert_dropped(&mut self, series: &str) {
        if !series.is_empty() {
            self.dropped.insert(self.key(series), self.iter);
        }
    }

    /// Ends a successful scrape: returns the series that were live after the
    /// previous one but are absent now (they need a staleness marker), makes
    /// this iteration's series the live set, and forgets long-absent texts.
    pub fn commit(&mut self) -> Vec<SeriesRef> {
        let gone = self.vanished(self.iter);
        self.live = self.iter;
        let min = self.iter.saturating_sub(KEEP_ITERATIONS);
        self.series.retain(|_, e| e.seen >= min);
        self.dropped.retain(|_, seen| *seen >= min);
        gone
    }

    /// Ends a failed scrape, or the target's last one: every live series is
    /// returned for a staleness marker and none remain live.
    pub fn fail(&mut self) -> Vec<SeriesRef> {
        let gone = self.vanished(u32::MAX);
        self.live = 0;
        gone
    }

    /// Live series not seen in iteration `now` (`u32::MAX`: all live ones).
    /// A series two texts resolved to is listed once.
    fn vanished(&self, now: u32) -> Vec<SeriesRef> {
        if self.live == 0 {
            return Vec::new();
        }
        let mut out: Vec<SeriesRef> =
            self.series.values().filter(|e| e.seen == self.live && e.seen != now && !e.explicit_ts).map(|e| e.sref).collect();
        out.sort_unstable_by_key(|r| *r as u32);
        out.dedup_by_key(|r| *r as u32);
        out
    }

    /// Number of cached series texts.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_missing_from_a_scrape_go_stale_once() {
        let mut c = ScrapeCache::default();
        c.begin();
        c.insert("a", 1, false);
        c.insert("b", 2, false);
        c.insert("b ", 2, false);
        assert!(c.commit().is_empty());
        c.begin();
        assert!(c.get_mut(c.key("a")).is_some());
        assert_eq!(c.commit(), vec![2], "b's two spellings are one series");
        c.begin();
        c.get_mut(c.key("a"));
        assert!(c.commit().is_empty(), "b was already marked stale");
    }

    #[test]
    fn a_failed_scrape_stales_every_live_series_except_explicit_timestamps() {
        let mut c = ScrapeCache::default();
        c.begin();
        c.insert("a", 1, false);
        c.insert("t", 3, true);
        c.commit();
        c.begin();
        assert_eq!(c.fail(), vec![1]);
        c.begin();
        assert!(c.fail().is_empty(), "nothing is live after a failure");
    }

    #[test]
    fn long_absent_texts_are_forgotten() {
        let mut c = ScrapeCache::default();
        c.begin();
        c.insert("a", 1, false);
        c.insert_dropped("d");
        c.commit();
        for _ in 0..=KEEP_ITERATIONS {
            c.begin();
            c.commit();
        }
        assert!(c.is_empty());
        assert!(!c.is_dropped(c.key("d")));
    }
}
