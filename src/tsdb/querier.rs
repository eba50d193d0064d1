//! Reading across the head and every block as if they were one store.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::block::Block;
use super::head::Head;
use crate::model::{Labels, Matcher, Sample};

/// A series and its samples in the queried range, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// A consistent view of the store at the time it was taken: blocks deleted
/// by retention or compaction afterwards stay readable until it is dropped.
pub struct Querier {
    pub(crate) head: Arc<Head>,
    pub(crate) blocks: Vec<Arc<Block>>,
}

/// A block could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading storage: {0}")]
pub struct QueryError(pub String);

impl Querier {
    fn blocks_in(&self, mint: i64, maxt: i64) -> impl Iterator<Item = &Arc<Block>> {
        self.blocks.iter().filter(move |b| b.meta().min_time <= maxt && b.meta().max_time > mint)
    }

    fn head_in(&self, mint: i64, maxt: i64) -> bool {
        self.head.min_time() <= maxt && self.head.max_time() >= mint
    }

    /// Series matching all `matchers` with their samples in `[mint, maxt]`
    /// (both inclusive, milliseconds), sorted by labels.
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>, QueryError> {
        Ok(self.select_at_most(matchers, mint, maxt, usize::MAX)?.unwrap_or_default())
    }

    /// [`Querier::select`], giving up (`Ok(None)`) as soon as more than
    /// `max_samples` samples are decoded: a query over its sample limit
    /// fails before it holds them all, and one tried on a small budget
    /// costs little when it turns out large.
    pub fn select_at_most(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
        max_samples: usize,
    ) -> Result<Option<Vec<Series>>, QueryError> {
        // Each source yields its series in label order.
        let mut sources: Vec<Vec<(Labels, Vec<Sample>)>> = Vec::new();
        let mut decoded = 0usize;
        for b in self.blocks_in(mint, maxt) {
            let mut out = Vec::new();
            for id in b.select_ids(matchers) {
                let mut s = Vec::new();
                b.samples(id, mint, maxt, &mut s).map_err(QueryError)?;
                decoded += s.len();
                if decoded > max_samples {
                    return Ok(None);
                }
                if !s.is_empty() {
                    out.push((b.labels(id), s));
                }
            }
            if !out.is_empty() {
                sources.push(out);
            }
        }
        if self.head_in(mint, maxt) {
            let Some(mut h) = self.head.select_at_most(matchers, mint, maxt, max_samples - decoded) else { return Ok(None) };
            h.sort_by(|a, b| a.0.cmp(&b.0));
            if !h.is_empty() {
                sources.push(h);
            }
        }
        if sources.len() == 1 {
            let only = sources.pop().unwrap_or_default();
            return Ok(Some(only.into_iter().map(|(labels, samples)| Series { labels, samples }).collect()));
        }
        let mut merged: BTreeMap<Labels, Vec<Vec<Sample>>> = BTreeMap::new();
        for src in sources {
            for (l, s) in src {
                merged.entry(l).or_default().push(s);
            }
        }
        Ok(Some(merged.into_iter().map(|(labels, parts)| Series { labels, samples: merge_parts(parts) }).collect()))
    }

    /// Label sets of matching series with data in `[mint, maxt]`, sorted.
    pub fn series(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Labels> {
        let mut set = BTreeSet::new();
        for b in self.blocks_in(mint, maxt) {
            set.extend(b.select_ids(matchers).into_iter().map(|id| b.labels(id)));
        }
        if self.head_in(mint, maxt) {
            set.extend(self.head.select_labels(matchers, mint, maxt));
        }
        set.into_iter().collect()
    }

    /// Label names of matching series (all series without matchers), sorted.
    pub fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<String> {
        use super::index::IndexReader;
        let mut set = BTreeSet::new();
        if matchers.is_empty() {
            for b in self.blocks_in(mint, maxt) {
                set.extend(b.label_names());
            }
            if self.head_in(mint, maxt) {
                set.extend(self.head.index().label_names());
            }
        } else {
            for l in self.series(matchers, mint, maxt) {
                set.extend(l.iter().map(|l| l.name.clone()));
            }
        }
        set.into_iter().collect()
    }

    /// Values of label `name` among matching series (all without matchers), sorted.
    pub fn label_values(&self, name: &str, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<String> {
        use super::index::IndexReader;
        let mut set = BTreeSet::new();
        if matchers.is_empty() {
            for b in self.blocks_in(mint, maxt) {
                set.extend(b.label_values(name));
            }
            if self.head_in(mint, maxt) {
                set.extend(self.head.index().label_values(name));
            }
        } else {
            for l in self.series(matchers, mint, maxt) {
                if l.has(name) {
                    set.insert(l.get(name).to_string());
                }
            }
        }
        set.into_iter().collect()
    }
}

/// Concatenates sorted runs from several sources into one sorted run; where
/// sources overlap, the first source's sample wins for a timestamp.
pub fn merge_parts(mut parts: Vec<Vec<Sample>>) -> Vec<Sample> {
    if parts.len() == 1 {
        return parts.pop().unwrap_or_default();
    }
    let disjoint = parts.windows(2).all(|w| match (w[0].last(), w[1].first()) {
        (Some(a), Some(b)) => a.t < b.t,
        _ => true,
    });
    let mut out: Vec<Sample> = parts.into_iter().flatten().collect();
    if !disjoint {
        out.sort_by_key(|s| s.t);
        out.dedup_by_key(|s| s.t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_parts_merge_sorted_without_duplicates() {
        let p = |ts: &[i64]| ts.iter().map(|&t| Sample::new(t, t as f64)).collect::<Vec<_>>();
        let got: Vec<i64> = merge_parts(vec![p(&[1, 3, 5]), p(&[2, 3, 6])]).iter().map(|s| s.t).collect();
        assert_eq!(got, vec![1, 2, 3, 5, 6]);
        let got: Vec<i64> = merge_parts(vec![p(&[1, 2]), p(&[3])]).iter().map(|s| s.t).collect();
        assert_eq!(got, vec![1, 2, 3]);
    }
}
