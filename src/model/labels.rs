//! Label sets: the identity of a series.
//!
//! A [`Labels`] is always sorted by name with unique names and no empty values,
//! as in Prometheus, so equality and hashing do not depend on input order.

use std::fmt;
use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3;

/// The label holding the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One name/value pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    pub name: String,
    pub value: String,
}

impl Label {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Label { name: name.into(), value: value.into() }
    }
}

/// A sorted, de-duplicated set of labels identifying one series.
///
/// Shared and immutable: cloning is a reference-count increment, because
/// query evaluation hands the same label set along at every step.
#[derive(Debug, Clone, Default)]
pub struct Labels(Arc<[Label]>);

impl std::hash::Hash for Labels {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // By content, consistent with equality (identity implies equal content).
        self.0.hash(state);
    }
}

// Equality and order short-cut on identity: the same shared set meets itself
// at every step of a query.
impl PartialEq for Labels {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for Labels {}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Labels {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if Arc::ptr_eq(&self.0, &other.0) { std::cmp::Ordering::Equal } else { self.0.cmp(&other.0) }
    }
}

impl Labels {
    /// The empty label set.
    pub fn empty() -> Self {
        Labels(Arc::from([]))
    }

    /// Builds a label set from pairs in any order. Later duplicates win and
    /// empty values are dropped, matching how Prometheus treats them.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (N, V)>) -> Self {
        let mut b = LabelsBuilder::new();
        for (n, v) in pairs {
            b.set(n, v);
        }
        b.build()
    }

    /// Wraps labels already sorted by name, unique and non-empty.
    /// Callers that cannot guarantee that use [`Labels::from_pairs`].
    pub fn from_sorted(labels: Vec<Label>) -> Self {
        debug_assert!(labels.windows(2).all(|w| w[0].name < w[1].name));
        Labels(Arc::from(labels))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    /// The value of `name`, or "" when absent (Prometheus' convention).
    pub fn get(&self, name: &str) -> &str {
        // Typical label sets are small: a scan rejecting on length first beats
        // a binary search of full string comparisons.
        if self.0.len() <= 16 {
            return self.0.iter().find(|l| l.name.len() == name.len() && l.name == name).map_or("", |l| l.value.as_str());
        }
        match self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) => &self.0[i].value,
            Err(_) => "",
        }
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.binary_search_by(|l| l.name.as_str().cmp(name)).is_ok()
    }

    /// The metric name, or "" when the series has none.
    pub fn metric_name(&self) -> &str {
        // `__name__` sorts first unless a name starts with an upper-case letter.
        match self.0.first() {
            Some(l) if l.name == METRIC_NAME => &l.value,
            _ => self.get(METRIC_NAME),
        }
    }

    /// A stable 64-bit hash of the label set.
    ///
    /// Stable across runs and platforms (xxh3 over `name 0xff value 0xff`), so it
    /// can be persisted and used for sharding.
    pub fn stable_hash(&self) -> u64 {
        hash_pairs(self.0.iter().map(|l| (l.name.as_str(), l.value.as_str())))
    }

    /// An identity for this shared set (stable while any clone of it lives),
    /// for memoizing work on the same label set across query steps.
    pub fn identity(&self) -> usize {
        Arc::as_ptr(&self.0) as *const Label as usize
    }

    pub fn into_vec(self) -> Vec<Label> {
        self.0.to_vec()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }
}

/// Hashes sorted name/value pairs the same way as [`Labels::stable_hash`], so
/// storage can hash interned labels without building a `Labels`.
pub fn hash_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut h = Xxh3::new();
    for (n, v) in pairs {
        h.update(n.as_bytes());
        h.update(&[0xff]);
        h.update(v.as_bytes());
        h.update(&[0xff]);
    }
    h.digest()
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Formats as `name{a="b", c="d"}` like Prometheus does in errors and output.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name();
        f.write_str(name)?;
        let mut rest = self.0.iter().filter(|l| l.name != METRIC_NAME).peekable();
        if rest.peek().is_none() && !name.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        let mut first = true;
        for l in rest {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{}=\"{}\"", l.name, escape_label_value(&l.value))?;
        }
        f.write_str("}")
    }
}

/// Escapes a label value for the text exposition format.
pub fn escape_label_value(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return std::borrow::Cow::Borrowed(v);
    }
    let mut s = String::with_capacity(v.len() + 2);
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    std::borrow::Cow::Owned(s)
}

/// Builds a [`Labels`] by setting and deleting names in any order.
#[derive(Debug, Default, Clone)]
pub struct LabelsBuilder {
    labels: Vec<Label>,
}

impl LabelsBuilder {
    pub fn new() -> Self {
        LabelsBuilder { labels: Vec::new() }
    }

    /// Starts from an existing label set.
    pub fn from_labels(l: &Labels) -> Self {
        LabelsBuilder { labels: l.0.to_vec() }
    }

    /// Sets `name` to `value`; an empty value deletes the label.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let name = name.into();
        let value = value.into();
        match self.labels.iter_mut().find(|l| l.name == name) {
            Some(l) if value.is_empty() => {
                let n = l.name.clone();
                self.labels.retain(|l| l.name != n);
            }
            Some(l) => l.value = value,
            None if value.is_empty() => {}
            None => self.labels.push(Label { name, value }),
        }
        self
    }

    pub fn del(&mut self, name: &str) -> &mut Self {
        self.labels.retain(|l| l.name != name);
        self
    }

    /// Keeps only the labels whose names pass `keep`.
    pub fn retain_names(&mut self, keep: impl Fn(&str) -> bool) -> &mut Self {
        self.labels.retain(|l| keep(&l.name));
        self
    }

    pub fn get(&self, name: &str) -> &str {
        self.labels.iter().find(|l| l.name == name).map(|l| l.value.as_str()).unwrap_or("")
    }

    pub fn build(mut self) -> Labels {
        self.labels.sort_by(|a, b| a.name.cmp(&b.name));
        Labels(Arc::from(self.labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_pairs_sorts_and_drops_empty_values() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("c", "")]);
        let names: Vec<_> = l.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(l.get("a"), "1");
        assert_eq!(l.get("c"), "");
    }

    #[test]
    fn hash_is_order_independent_and_separates_boundaries() {
        let a = Labels::from_pairs([("a", "1"), ("b", "2")]);
        let b = Labels::from_pairs([("b", "2"), ("a", "1")]);
        assert_eq!(a.stable_hash(), b.stable_hash());
        let c = Labels::from_pairs([("a", "1b"), ("", "2")]);
        assert_ne!(a.stable_hash(), c.stable_hash());
    }

    #[test]
    fn display_matches_prometheus() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "a\"b")]);
        assert_eq!(l.to_string(), r#"up{job="a\"b"}"#);
        assert_eq!(Labels::from_pairs([("__name__", "up")]).to_string(), "up");
        assert_eq!(Labels::from_pairs([("job", "x")]).to_string(), r#"{job="x"}"#);
    }
}
