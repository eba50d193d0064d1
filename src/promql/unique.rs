//! "vector cannot contain metrics with the same labelset": the check
//! Prometheus makes after rewriting label sets (name dropping,
//! `label_replace`, `label_join`), and its cheap form for rewrites memoized
//! across the steps of a query.

use std::collections::HashSet;

use crate::model::labels::Labels;
use crate::promql::value::{EvalError, Sample};
use crate::tsdb::idhash::IdBuild;

type Xxh3 = xxhash_rust::xxh3::Xxh3DefaultBuilder;

fn duplicate_labelset_error() -> EvalError {
    EvalError::exec("vector cannot contain metrics with the same labelset")
}

/// Fails when two samples have equal label sets (by content).
pub fn check_unique(v: &[Sample]) -> Result<(), EvalError> {
    let mut seen: HashSet<&Labels, Xxh3> = HashSet::with_capacity_and_hasher(v.len(), Xxh3::default());
    if v.iter().all(|s| seen.insert(&s.metric)) { Ok(()) } else { Err(duplicate_labelset_error()) }
}

/// The outputs of one memoized rewrite (each input label set rewritten
/// once, the result reused by identity at every step), and whether two
/// inputs ever gave equal outputs. Until they do, distinct inputs have
/// outputs of distinct content, hence distinct identities, so a step's
/// results are checked by identity, which hashes for free.
#[derive(Default)]
pub struct RewriteOutputs {
    seen: HashSet<Labels, Xxh3>,
    may_collide: bool,
}

impl RewriteOutputs {
    /// Records a newly memoized output.
    pub fn record(&mut self, out: &Labels) {
        if !self.seen.insert(out.clone()) {
            self.may_collide = true;
        }
    }

    /// [`check_unique`] for samples whose label sets all came from this
    /// rewrite's memo.
    pub fn check_unique(&self, v: &[Sample]) -> Result<(), EvalError> {
        if self.may_collide {
            return check_unique(v);
        }
        let mut ids: HashSet<usize, IdBuild> = HashSet::with_capacity_and_hasher(v.len(), IdBuild::default());
        if v.iter().all(|s| ids.insert(s.metric.identity())) { Ok(()) } else { Err(duplicate_labelset_error()) }
    }
}
