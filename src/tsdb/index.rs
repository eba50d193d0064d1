//! Selecting series by label matchers over an inverted index.
//!
//! Both the head and persisted blocks expose their postings through
//! [`IndexReader`]; [`select_postings`] turns a list of matchers into the sorted
//! ids of matching series the way Prometheus does: intersect the postings of
//! matchers that cannot match the empty string, subtract those of negated
//! ones, and handle matchers that match "" (which also select series lacking
//! the label) by subtraction from the full set.

use super::postings::{intersect, subtract, union};
use crate::model::matcher::FastRegex;
use crate::model::{MatchOp, Matcher};

/// Read access to an inverted index.
pub trait IndexReader {
    /// Sorted ids of series having `name=value`.
    fn postings(&self, name: &str, value: &str) -> Vec<u32>;
    /// Sorted ids of every series.
    fn all_postings(&self) -> Vec<u32>;
    /// Every value `name` takes, sorted.
    fn label_values(&self, name: &str) -> Vec<String>;
    /// Every label name, sorted.
    fn label_names(&self) -> Vec<String>;
    /// Union of postings of `name=v` for each given value.
    fn postings_for_values(&self, name: &str, values: &[String]) -> Vec<u32> {
        let lists: Vec<Vec<u32>> = values.iter().map(|v| self.postings(name, v)).collect();
        let refs: Vec<&[u32]> = lists.iter().map(Vec::as_slice).collect();
        union(&refs)
    }
}

/// Sorted ids of series matching all `matchers`.
pub fn select_postings(ix: &dyn IndexReader, matchers: &[Matcher]) -> Vec<u32> {
    let mut its: Vec<Vec<u32>> = Vec::new();
    let mut not_its: Vec<Vec<u32>> = Vec::new();

    // With only matchers that match "", start from all series.
    let all_match_empty = matchers.iter().all(Matcher::matches_empty);
    if all_match_empty {
        its.push(ix.all_postings());
    }
    for m in matchers {
        let is_any = matches!(m.fast_regex(), Some(FastRegex::Any));
        if m.op == MatchOp::Regex && is_any {
            // `l=~".*"` matches everything, label or not.
            continue;
        }
        if m.op == MatchOp::NotRegex && is_any {
            return Vec::new();
        }
        if m.matches_empty() {
            // Series lacking the label match; exclude those whose value does not.
            // `l!=""` style matchers (matches empty when inverted) handled below.
            let inverse_values: Vec<String> = ix.label_values(&m.name).into_iter().filter(|v| !m.matches(v)).collect();
            not_its.push(ix.postings_for_values(&m.name, &inverse_values));
        } else {
            let p = postings_for_matcher(ix, m);
            if p.is_empty() {
                return Vec::new();
            }
            its.push(p);
        }
    }
    // Intersect smallest first to keep intermediates small.
    its.sort_by_key(Vec::len);
    let mut iter = its.into_iter();
    let Some(mut acc) = iter.next() else {
        return Vec::new();
    };
    for p in iter {
        acc = intersect(&acc, &p);
        if acc.is_empty() {
            return acc;
        }
    }
    for n in not_its {
        acc = subtract(&acc, &n);
    }
    acc
}

/// Postings for a matcher that does not match the empty string.
fn postings_for_matcher(ix: &dyn IndexReader, m: &Matcher) -> Vec<u32> {
    match (m.op, m.fast_regex()) {
        (MatchOp::Equal, _) => ix.postings(&m.name, &m.value),
        // Literal alternations need no scan of the label's values.
        (MatchOp::Regex, Some(FastRegex::Literals(lits))) => ix.postings_for_values(&m.name, lits),
        _ => {
            let values: Vec<String> = ix.label_values(&m.name).into_iter().filter(|v| m.matches(v)).collect();
            ix.postings_for_values(&m.name, &values)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// A naive index over a list of label sets.
    struct Naive(Vec<Labels>);

    impl IndexReader for Naive {
        fn postings(&self, name: &str, value: &str) -> Vec<u32> {
            (0..self.0.len() as u32).filter(|&i| self.0[i as usize].has(name) && self.0[i as usize].get(name) == value).collect()
        }
        fn all_postings(&self) -> Vec<u32> {
            (0..self.0.len() as u32).collect()
        }
        fn label_values(&self, name: &str) -> Vec<String> {
            let mut v: Vec<String> = self.0.iter().filter(|l| l.has(name)).map(|l| l.get(name).to_string()).collect();
            v.sort();
            v.dedup();
            v
        }
        fn label_names(&self) -> Vec<String> {
            let mut v: Vec<String> = self.0.iter().flat_map(|l| l.iter().map(|l| l.name.clone())).collect();
            v.sort();
            v.dedup();
            v
        }
    }

    fn matcher_strategy() -> impl Strategy<Value = Matcher> {
        let names = prop_oneof![Just("a"), Just("b"), Just("c")];
        let values = prop_oneof![Just(""), Just("x"), Just("y"), Just("x|y"), Just("x.*"), Just(".*"), Just(".+"), Just("[xz]")];
        let ops = prop_oneof![Just(MatchOp::Equal), Just(MatchOp::NotEqual), Just(MatchOp::Regex), Just(MatchOp::NotRegex)];
        (ops, names, values).prop_map(|(op, n, v)| Matcher::new(op, n, v).expect("valid regexes"))
    }

    proptest! {
        #[test]
        fn selection_agrees_with_scanning_every_series(
            series in proptest::collection::vec(
                proptest::collection::btree_map(prop_oneof![Just("a"), Just("b"), Just("c")], prop_oneof![Just("x"), Just("y"), Just("xz"), Just("z")], 0..3),
                0..40),
            matchers in proptest::collection::vec(matcher_strategy(), 1..4),
        ) {
            let ix = Naive(series.iter().map(|m: &BTreeMap<&str, &str>| Labels::from_pairs(m.iter().map(|(k, v)| (*k, *v)))).collect());
            let want: Vec<u32> = (0..ix.0.len() as u32).filter(|&i| matchers.iter().all(|m| m.matches(ix.0[i as usize].get(&m.name)))).collect();
            prop_assert_eq!(select_postings(&ix, &matchers), want);
        }
    }
}
