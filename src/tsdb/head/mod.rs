//! The head: the in-memory, appendable part of the TSDB covering recent time.
//!
//! Series live in lock stripes keyed by id, so appends to different series
//! rarely contend; the inverted index and symbol table sit behind one
//! read-write lock taken only to create, look up by labels, query or remove
//! series. A series' open chunk is XOR-encoded in memory; completed chunks
//! (120 samples, or crossing a block boundary) move to [`chunk_disk`].

pub mod appender;
pub mod chunk_disk;
pub mod series;
pub mod stripe;

use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

pub use appender::{AppendError, Appender, CommitStats};
use chunk_disk::ChunkDisk;
use series::{DoneChunk, MemSeries};
use stripe::Stripe;

use super::idhash::IdMap;
use super::index::IndexReader;
use super::metrics::TsdbMetrics;
use super::symbols::Symbols;
use super::tombstones::Intervals;
use super::wal::Wal;
use super::wal::record::RefSample;
use crate::model::{Label, Labels, Matcher, Sample};

/// Samples per head chunk before it is cut, as in Prometheus.
pub const SAMPLES_PER_CHUNK: usize = 120;
/// Lock stripes. Few enough that a commit of one target's consecutive series
/// takes each lock once for several samples; a power of two so parallel
/// replay shares line up with stripes.
pub(crate) const STRIPES: usize = 128;

/// A series' labels as (name, value) symbol ids.
type SymbolPairs = Box<[(u32, u32)]>;

/// The inverted index and symbol table of the head.
#[derive(Default)]
pub struct HeadIndex {
    pub symbols: Symbols,
    /// Series ids by label-set hash; collisions keep a list.
    by_hash: IdMap<u64, Vec<u32>>,
    postings: IdMap<(u32, u32), Vec<u32>>,
    /// Value symbols seen per name symbol.
    values: IdMap<u32, Vec<u32>>,
    all: Vec<u32>,
}

impl HeadIndex {
    fn add(&mut self, id: u32, labels: &[(u32, u32)], hash: u64) {
        self.by_hash.entry(hash).or_default().push(id);
        for &(n, v) in labels {
            let p = self.postings.entry((n, v)).or_default();
            if p.is_empty() {
                self.values.entry(n).or_default().push(v);
            }
            p.push(id);
        }
        self.all.push(id);
    }

    fn remove(&mut self, id: u32, labels: &[(u32, u32)], hash: u64) {
        if let Some(ids) = self.by_hash.get_mut(&hash) {
            ids.retain(|&i| i != id);
            if ids.is_empty() {
                self.by_hash.remove(&hash);
            }
        }
        for &(n, v) in labels {
            if let Some(p) = self.postings.get_mut(&(n, v)) {
                if let Ok(i) = p.binary_search(&id) {
                    p.remove(i);
                }
                if p.is_empty() {
                    self.postings.remove(&(n, v));
                    if let Some(vals) = self.values.get_mut(&n) {
                        vals.retain(|&x| x != v);
                        if vals.is_empty() {
                            self.values.remove(&n);
                        }
                    }
                }
            }
            self.symbols.release(n);
            self.symbols.release(v);
        }
        if let Ok(i) = self.all.binary_search(&id) {
            self.all.remove(i);
        }
    }

    fn resolve(&self, labels: &[(u32, u32)]) -> Labels {
        Labels::from_sorted(labels.iter().map(|&(n, v)| Label::new(self.symbols.get(n), self.symbols.get(v))).collect())
    }

    fn hash_of(&self, labels: &[(u32, u32)]) -> u64 {
        crate::model::labels::hash_pairs(labels.iter().map(|&(n, v)| (self.symbols.get(n), self.symbols.get(v))))
    }

    fn same_pairs(&self, a: &[(u32, u32)], b: &[(&str, &str)]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(&(n, v), &(bn, bv))| self.symbols.get(n) == bn && self.symbols.get(v) == bv)
    }

    fn same(&self, a: &[(u32, u32)], b: &Labels) -> bool {
        a.len() == b.len() && a.iter().zip(b.iter()).all(|(&(n, v), l)| self.symbols.get(n) == l.name && self.symbols.get(v) == l.value)
    }

    /// Sorted ids of all series.
    pub fn all_ids(&self) -> &[u32] {
        &self.all
    }
}

impl IndexReader for HeadIndex {
    fn postings(&self, name: &str, value: &str) -> Vec<u32> {
        match (self.symbols.lookup(name), self.symbols.lookup(value)) {
            (Some(n), Some(v)) => self.postings.get(&(n, v)).cloned().unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    fn all_postings(&self) -> Vec<u32> {
        self.all.clone()
    }

    fn label_values(&self, name: &str) -> Vec<String> {
        let Some(n) = self.symbols.lookup(name) else {
            return Vec::new();
        };
        let mut v: Vec<String> =
            self.values.get(&n).map(|vs| vs.iter().map(|&v| self.symbols.get(v).to_string()).collect()).unwrap_or_default();
        v.sort();
        v
    }

    fn label_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.values.keys().map(|&n| self.symbols.get(n).to_string()).collect();
        v.sort();
        v
    }
}

/// Head cardinality rankings (name, count), largest first.
#[derive(Debug, Clone, Default)]
pub struct Cardinality {
    pub num_series: u64,
    pub num_label_pairs: u64,
    pub chunk_count: u64,
    pub series_by_metric: Vec<(String, u64)>,
    pub values_by_label: Vec<(String, u64)>,
    pub bytes_by_label: Vec<(String, u64)>,
    pub series_by_pair: Vec<(String, u64)>,
}

/// A reference to a head series for appenders to skip label hashing and
/// lookups: the series id and the garbage-collection epoch it was issued in.
/// While no series has been removed since, the id is known to be valid
/// without looking it up.
pub type SeriesRef = u64;

pub(crate) fn make_ref(epoch: u32, id: u32) -> SeriesRef {
    (u64::from(epoch) << 32) | u64::from(id)
}

/// The head block.
pub struct Head {
    index: RwLock<HeadIndex>,
    stripes: Box<[Mutex<Stripe>]>,
    next_id: AtomicU32,
    /// Samples older than this are rejected: their time range is already in blocks.
    min_valid_time: AtomicI64,
    mint: AtomicI64,
    maxt: AtomicI64,
    /// Block range: head chunks never straddle a multiple of it.
    chunk_range: i64,
    pub(crate) disk: ChunkDisk,
    pub(crate) wal: Option<Arc<Wal>>,
    pub(crate) metrics: TsdbMetrics,
    tombstones: RwLock<IdMap<u32, Intervals>>,
    /// Held for reading by every open appender and for writing while series
    /// are removed, so a series cannot vanish between append and commit.
    gc: RwLock<()>,
    /// Bumped whenever series are removed; invalidates outstanding refs.
    gc_epoch: AtomicU32,
}

impl Head {
    /// Creates an empty head whose spilled chunks go under `chunks_dir`.
    pub fn new(chunks_dir: &Path, chunk_range: i64, wal: Option<Arc<Wal>>, metrics: TsdbMetrics) -> std::io::Result<Head> {
        Ok(Head {
            index: RwLock::new(HeadIndex::default()),
            stripes: (0..STRIPES).map(|k| Mutex::new(Stripe::new(k))).collect(),
            next_id: AtomicU32::new(1),
            min_valid_time: AtomicI64::new(i64::MIN),
            mint: AtomicI64::new(i64::MAX),
            maxt: AtomicI64::new(i64::MIN),
            chunk_range: chunk_range.max(1),
            disk: ChunkDisk::open(chunks_dir)?,
            wal,
            metrics,
            tombstones: RwLock::new(IdMap::default()),
            gc: RwLock::new(()),
            gc_epoch: AtomicU32::new(0),
        })
    }

    pub(crate) fn stripe(&self, id: u32) -> MutexGuard<'_, Stripe> {
        self.stripe_at(id as usize % STRIPES)
    }

    pub(crate) fn stripe_at(&self, k: usize) -> MutexGuard<'_, Stripe> {
        self.stripes[k].lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn index(&self) -> RwLockReadGuard<'_, HeadIndex> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Lowest timestamp in the head, or `i64::MAX` when empty.
    pub fn min_time(&self) -> i64 {
        self.mint.load(Ordering::Relaxed)
    }

    /// Highest timestamp in the head, or `i64::MIN` when empty.
    pub fn max_time(&self) -> i64 {
        self.maxt.load(Ordering::Relaxed)
    }

    pub fn min_valid_time(&self) -> i64 {
        self.min_valid_time.load(Ordering::Relaxed)
    }

    pub fn set_min_valid_time(&self, t: i64) {
        self.min_valid_time.fetch_max(t, Ordering::Relaxed);
    }

    pub fn num_series(&self) -> usize {
        self.index().all.len()
    }

    /// Starts a batch of appends. Do not compact while holding one: series
    /// removal waits for open appenders.
    pub fn appender(&self) -> Appender<'_> {
        Appender::new(self, self.gc.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub(crate) fn gc_epoch(&self) -> u32 {
        self.gc_epoch.load(Ordering::Acquire)
    }

    /// Finds the series with exactly these labels.
    pub fn lookup(&self, labels: &Labels) -> Option<u32> {
        let ix = self.index();
        let ids = ix.by_hash.get(&labels.stable_hash())?;
        ids.iter().copied().find(|&id| self.stripe(id).get(&id).is_some_and(|s| ix.same(&s.labels, labels)))
    }

    /// Finds or creates the series for `labels`; new series are logged to the WAL.
    pub fn get_or_create(&self, labels: &Labels) -> std::io::Result<(u32, bool)> {
        if let Some(id) = self.lookup(labels) {
            return Ok((id, false));
        }
        let mut ix = self.index.write().unwrap_or_else(|p| p.into_inner());
        let hash = labels.stable_hash();
        if let Some(ids) = ix.by_hash.get(&hash)
            && let Some(id) = ids.iter().copied().find(|&id| self.stripe(id).get(&id).is_some_and(|s| ix.same(&s.labels, labels)))
        {
            return Ok((id, false));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // Logged under the index lock: no appender can use the series before
        // its record is queued ahead of their samples.
        if let Some(wal) = &self.wal {
            wal.log_series(id, labels)?;
        }
        let pairs: Vec<(&str, &str)> = labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect();
        self.insert_series(&mut ix, id, &pairs, hash);
        Ok((id, true))
    }

    /// Adds a series; `pairs` are sorted by name with non-empty values.
    fn insert_series(&self, ix: &mut HeadIndex, id: u32, pairs: &[(&str, &str)], hash: u64) {
        let syms: Box<[(u32, u32)]> = pairs.iter().map(|&(n, v)| (ix.symbols.intern(n), ix.symbols.intern(v))).collect();
        ix.add(id, &syms, hash);
        self.stripe(id).insert(id, MemSeries::new(syms));
        self.metrics.head_series.inc();
        self.metrics.head_series_created.inc();
    }

    /// Recreates a series from the WAL with its logged id. Returns the id
    /// samples for it must go to: an existing series with the same labels
    /// (a series removed and created again is logged under a new id).
    /// `pairs` are sorted by name with non-empty values, as [`Labels`] are.
    pub fn replay_series(&self, id: u32, pairs: &[(&str, &str)]) -> u32 {
        let mut ix = self.index.write().unwrap_or_else(|p| p.into_inner());
        let hash = crate::model::labels::hash_pairs(pairs.iter().copied());
        if let Some(ids) = ix.by_hash.get(&hash)
            && let Some(existing) = ids.iter().copied().find(|&i| self.stripe(i).get(&i).is_some_and(|s| ix.same_pairs(&s.labels, pairs)))
        {
            return existing;
        }
        if self.stripe(id).contains_key(&id) {
            // Same id with other labels: corrupt input; keep the first.
            return id;
        }
        self.insert_series(&mut ix, id, pairs, hash);
        self.next_id.fetch_max(id + 1, Ordering::Relaxed);
        id
    }

    /// Appends one sample to a series the caller has locked. Errors leave the series unchanged.
    pub(crate) fn append_locked(&self, s: &mut MemSeries, t: i64, v: f64) -> Result<(), AppendError> {
        if let Some(last) = s.max_time() {
            if t < last {
                return Err(AppendError::OutOfOrder);
            }
            if t == last {
                return match s.last_value_bits() {
                    Some(bits) if bits == v.to_bits() => Err(AppendError::DuplicateSameValue),
                    _ => Err(AppendError::Duplicate),
                };
            }
        }
        if !s.head.is_empty() {
            let boundary = (s.head.min_time().div_euclid(self.chunk_range) + 1).saturating_mul(self.chunk_range);
            if s.head.num_samples() >= SAMPLES_PER_CHUNK || t >= boundary {
                self.cut_chunk(s);
            }
        }
        s.head.append(t, v);
        Ok(())
    }

    fn cut_chunk(&self, s: &mut MemSeries) {
        let next = crate::tsdb::chunkenc::XorChunk::with_capacity(s.head.bytes().len() + 8);
        let mut full = std::mem::replace(&mut s.head, next);
        match self.disk.write(full.bytes(), full.min_time(), full.max_time(), full.num_samples() as u16) {
            Ok(r) => {
                s.done.push(DoneChunk::Disk(r));
                self.metrics.head_chunks_spilled.inc();
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not spill a head chunk to disk; keeping it in memory");
                full.shrink();
                s.done.push(DoneChunk::Mem(Box::new(full)));
            }
        }
    }

    /// Widens the head's time range; callers batch this, as the atomics are
    /// shared by every appending thread.
    pub(crate) fn extend_range(&self, mint: i64, maxt: i64) {
        if mint <= maxt {
            self.mint.fetch_min(mint, Ordering::Relaxed);
            self.maxt.fetch_max(maxt, Ordering::Relaxed);
        }
    }

    /// Appends samples sorted by series (each series' samples consecutive and
    /// in order), with one lock and lookup per series: the replay path.
    /// Returns the number stored.
    pub(crate) fn apply_runs(&self, sorted: &[RefSample]) -> u64 {
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        let mut stored = 0u64;
        for run in sorted.chunk_by(|a, b| a.id == b.id) {
            let id = run[0].id;
            let mut st = self.stripe(id);
            let Some(ms) = st.get_mut(&id) else { continue };
            for s in run {
                match self.append_locked(ms, s.t, s.v) {
                    Ok(()) => {
                        stored += 1;
                        lo = lo.min(s.t);
                        hi = hi.max(s.t);
                    }
                    Err(AppendError::DuplicateSameValue) => {}
                    Err(e) => e.count(&self.metrics),
                }
            }
        }
        self.extend_range(lo, hi);
        stored
    }

    /// Appends a batch of samples to their series, taking each lock stripe's
    /// lock once (grouping is stable, so each series keeps its order), and
    /// widens the head's time range once. Rejections are counted.
    pub(crate) fn apply_batch(&self, batch: &[RefSample]) -> CommitStats {
        let mut stats = CommitStats::default();
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        let mut starts = [0u32; STRIPES + 1];
        for s in batch {
            starts[s.id as usize % STRIPES + 1] += 1;
        }
        for i in 0..STRIPES {
            starts[i + 1] += starts[i];
        }
        let mut order = vec![0u32; batch.len()];
        let mut next = starts;
        for (i, s) in batch.iter().enumerate() {
            let k = s.id as usize % STRIPES;
            order[next[k] as usize] = i as u32;
            next[k] += 1;
        }
        for k in 0..STRIPES {
            let group = &order[starts[k] as usize..starts[k + 1] as usize];
            if group.is_empty() {
                continue;
            }
            let mut st = self.stripe_at(k);
            for &i in group {
                let s = &batch[i as usize];
                let Some(ms) = st.get_mut(&s.id) else {
                    continue;
                };
                match self.append_locked(ms, s.t, s.v) {
                    Ok(()) => {
                        stats.appended += 1;
                        lo = lo.min(s.t);
                        hi = hi.max(s.t);
                    }
                    Err(AppendError::DuplicateSameValue) => {}
                    Err(e) => {
                        e.count(&self.metrics);
                        match e {
                            AppendError::OutOfOrder => stats.out_of_order += 1,
                            _ => stats.duplicate += 1,
                        }
                    }
                }
            }
        }
        self.extend_range(lo, hi);
        stats
    }

    /// Labels and samples in `[mint, maxt]` of the series matching `matchers`,
    /// with deleted ranges removed.
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<(Labels, Vec<Sample>)> {
        self.select_at_most(matchers, mint, maxt, usize::MAX).unwrap_or_default()
    }

    /// [`Head::select`], giving up (`None`) as soon as more than
    /// `max_samples` samples are decoded, so a caller with a small budget
    /// does not pay for a large selection.
    pub fn select_at_most(&self, matchers: &[Matcher], mint: i64, maxt: i64, max_samples: usize) -> Option<Vec<(Labels, Vec<Sample>)>> {
        let ix = self.index();
        let ids = super::index::select_postings(&*ix, matchers);
        let tomb = self.tombstones.read().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::with_capacity(ids.len());
        let mut decoded = 0usize;
        for id in ids {
            let st = self.stripe(id);
            let Some(s) = st.get(&id) else { continue };
            let mut samples = Vec::new();
            s.samples(&self.disk, mint, maxt, &mut samples);
            decoded += samples.len();
            if decoded > max_samples {
                return None;
            }
            let labels = ix.resolve(&s.labels);
            drop(st);
            if let Some(iv) = tomb.get(&id) {
                samples.retain(|x| !iv.contains(x.t));
            }
            if !samples.is_empty() {
                out.push((labels, samples));
            }
        }
        Some(out)
    }

    /// Labels of matching series that have samples in `[mint, maxt]`.
    pub fn select_labels(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Labels> {
        let ix = self.index();
        let ids = super::index::select_postings(&*ix, matchers);
        ids.into_iter()
            .filter_map(|id| {
                let st = self.stripe(id);
                let s = st.get(&id)?;
                let overlaps = s.min_time().is_some_and(|lo| lo <= maxt) && s.max_time().is_some_and(|hi| hi >= mint);
                overlaps.then(|| ix.resolve(&s.labels))
            })
            .collect()
    }

    /// Ids of every series, ordered by their labels (the order blocks store them in).
    pub fn ids_sorted_by_labels(&self) -> Vec<u32> {
        let ix = self.index();
        let mut keyed: Vec<(u32, SymbolPairs)> =
            ix.all.iter().filter_map(|&id| self.stripe(id).get(&id).map(|s| (id, s.labels.clone()))).collect();
        let sym = &ix.symbols;
        keyed.sort_by(|(_, a), (_, b)| {
            let a = a.iter().flat_map(|&(n, v)| [sym.get(n), sym.get(v)]);
            let b = b.iter().flat_map(|&(n, v)| [sym.get(n), sym.get(v)]);
            a.cmp(b)
        });
        keyed.into_iter().map(|(id, _)| id).collect()
    }

    /// One series' labels and its samples in `[mint, maxt]`, deletions applied.
    pub fn series_data(&self, id: u32, mint: i64, maxt: i64) -> Option<(Labels, Vec<Sample>)> {
        let ix = self.index();
        let st = self.stripe(id);
        let s = st.get(&id)?;
        let mut samples = Vec::new();
        s.samples(&self.disk, mint, maxt, &mut samples);
        let labels = ix.resolve(&s.labels);
        drop(st);
        if let Some(iv) = self.tombstones.read().unwrap_or_else(|p| p.into_inner()).get(&id) {
            samples.retain(|x| !iv.contains(x.t));
        }
        Some((labels, samples))
    }

    /// Marks `[mint, maxt]` deleted in matching series; returns the affected ids.
    pub fn delete(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<u32> {
        let ids = super::index::select_postings(&*self.index(), matchers);
        let mut t = self.tombstones.write().unwrap_or_else(|p| p.into_inner());
        for &id in &ids {
            t.entry(id).or_default().add(mint, maxt);
        }
        ids
    }

    /// Applies a replayed tombstone.
    pub fn add_tombstone(&self, id: u32, mint: i64, maxt: i64) {
        self.tombstones.write().unwrap_or_else(|p| p.into_inner()).entry(id).or_default().add(mint, maxt);
    }

    /// Drops data before `mint` (now persisted in a block) and removes series
    /// left without samples.
    pub fn truncate(&self, mint: i64) -> std::io::Result<()> {
        let _no_appenders = self.gc.write().unwrap_or_else(|p| p.into_inner());
        self.set_min_valid_time(mint);
        let mut dead = Vec::new();
        let mut new_min = i64::MAX;
        for stripe in self.stripes.iter() {
            let mut st = stripe.lock().unwrap_or_else(|p| p.into_inner());
            for (id, s) in st.iter_mut() {
                if s.truncate_before(mint) {
                    dead.push(id);
                } else if let Some(t) = s.min_time() {
                    new_min = new_min.min(t);
                }
            }
        }
        if !dead.is_empty() {
            let mut ix = self.index.write().unwrap_or_else(|p| p.into_inner());
            let mut tomb = self.tombstones.write().unwrap_or_else(|p| p.into_inner());
            for id in dead {
                let mut st = self.stripe(id);
                if let Some(s) = st.remove(&id) {
                    drop(st);
                    let hash = ix.hash_of(&s.labels);
                    ix.remove(id, &s.labels, hash);
                    tomb.remove(&id);
                    self.metrics.head_series.dec();
                    self.metrics.head_series_removed.inc();
                }
            }
            self.gc_epoch.fetch_add(1, Ordering::AcqRel);
        }
        for iv in self.tombstones.write().unwrap_or_else(|p| p.into_inner()).values_mut() {
            iv.drop_before(mint);
        }
        self.mint.store(new_min, Ordering::Relaxed);
        self.disk.truncate_before(mint)?;
        self.metrics.head_truncations.inc();
        Ok(())
    }

    /// Head cardinality for `/api/v1/status/tsdb`: the `limit` largest entries of each ranking.
    pub fn cardinality(&self, limit: usize) -> Cardinality {
        let ix = self.index();
        let sym = |id: u32| ix.symbols.get(id).to_string();
        let name_sym = ix.symbols.lookup(crate::model::labels::METRIC_NAME);
        let mut by_metric = Vec::new();
        let mut by_pair = Vec::new();
        let mut values: std::collections::HashMap<u32, (u64, u64)> = std::collections::HashMap::new();
        for (&(n, v), ids) in &ix.postings {
            let count = ids.len() as u64;
            if Some(n) == name_sym {
                by_metric.push((sym(v), count));
            }
            by_pair.push((format!("{}={}", sym(n), sym(v)), count));
            let e = values.entry(n).or_default();
            e.0 += 1;
            e.1 += ix.symbols.get(v).len() as u64 * count;
        }
        let top = |mut v: Vec<(String, u64)>| {
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(limit);
            v
        };
        let chunk_count = self
            .stripes
            .iter()
            .map(|s| {
                s.lock().unwrap_or_else(|p| p.into_inner()).values().map(|m| m.done.len() + usize::from(!m.head.is_empty())).sum::<usize>()
            })
            .sum::<usize>() as u64;
        Cardinality {
            num_series: ix.all.len() as u64,
            num_label_pairs: ix.postings.len() as u64,
            chunk_count,
            series_by_metric: top(by_metric),
            values_by_label: top(values.iter().map(|(&n, &(c, _))| (sym(n), c)).collect()),
            bytes_by_label: top(values.iter().map(|(&n, &(_, b))| (sym(n), b)).collect()),
            series_by_pair: top(by_pair),
        }
    }

    /// Whether series `id` is still in the head (used by WAL checkpoints).
    pub fn contains(&self, id: u32) -> bool {
        self.stripe(id).contains_key(&id)
    }

    /// Heap bytes held by series data (chunks, labels), excluding the index.
    pub fn series_heap_bytes(&self) -> usize {
        self.stripes.iter().map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).values().map(MemSeries::heap_bytes).sum::<usize>()).sum()
    }
}
