//! Postings lists: sorted, de-duplicated series ids, and the set operations
//! the index combines them with.
//!
//! Lists are plain sorted `u32` slices: compact, cache-friendly, and cheap to
//! intersect by galloping when one side is much shorter than the other.

/// Intersection of two sorted lists.
pub fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    if small.len() * 16 < large.len() {
        // Gallop through the large list for each element of the small one.
        let mut rest = large;
        for &x in small {
            match gallop(rest, x) {
                Ok(i) => {
                    out.push(x);
                    rest = &rest[i + 1..];
                }
                Err(i) => rest = &rest[i..],
            }
            if rest.is_empty() {
                break;
            }
        }
        return out;
    }
    let (mut i, mut j) = (0, 0);
    while i < small.len() && j < large.len() {
        match small[i].cmp(&large[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(small[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Exponential then binary search: finds `x` in `s` in O(log distance).
fn gallop(s: &[u32], x: u32) -> Result<usize, usize> {
    let mut hi = 1;
    while hi < s.len() && s[hi] < x {
        hi *= 2;
    }
    let lo = hi / 2;
    let hi = (hi + 1).min(s.len());
    s[lo..hi].binary_search(&x).map(|i| i + lo).map_err(|i| i + lo)
}

/// Union of any number of sorted lists.
pub fn union(lists: &[&[u32]]) -> Vec<u32> {
    match lists.len() {
        0 => Vec::new(),
        1 => lists[0].to_vec(),
        _ => {
            // Concatenate and sort: for the list sizes the index sees this beats
            // a heap merge and needs no per-element branching on list heads.
            let total: usize = lists.iter().map(|l| l.len()).sum();
            let mut out = Vec::with_capacity(total);
            for l in lists {
                out.extend_from_slice(l);
            }
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}

/// Elements of `a` not in `b`.
pub fn subtract(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j >= b.len() || b[j] != x {
            out.push(x);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn sorted(v: Vec<u32>) -> Vec<u32> {
        v.into_iter().collect::<BTreeSet<_>>().into_iter().collect()
    }

    proptest! {
        #[test]
        fn operations_agree_with_set_model(
            a in proptest::collection::vec(0u32..2000, 0..300).prop_map(sorted),
            b in proptest::collection::vec(0u32..2000, 0..30).prop_map(sorted),
            c in proptest::collection::vec(0u32..2000, 0..300).prop_map(sorted),
        ) {
            let (sa, sb, sc): (BTreeSet<_>, BTreeSet<_>, BTreeSet<_>) =
                (a.iter().copied().collect(), b.iter().copied().collect(), c.iter().copied().collect());
            prop_assert_eq!(intersect(&a, &b), sa.intersection(&sb).copied().collect::<Vec<_>>());
            prop_assert_eq!(intersect(&b, &a), sa.intersection(&sb).copied().collect::<Vec<_>>());
            prop_assert_eq!(intersect(&a, &c), sa.intersection(&sc).copied().collect::<Vec<_>>());
            let u: BTreeSet<_> = sa.union(&sb).copied().collect::<BTreeSet<_>>().union(&sc).copied().collect();
            prop_assert_eq!(union(&[&a, &b, &c]), u.into_iter().collect::<Vec<_>>());
            prop_assert_eq!(subtract(&a, &b), sa.difference(&sb).copied().collect::<Vec<_>>());
            prop_assert_eq!(subtract(&c, &a), sc.difference(&sa).copied().collect::<Vec<_>>());
        }
    }
}
