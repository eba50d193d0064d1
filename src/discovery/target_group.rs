//! The unit every discovery mechanism produces: Prometheus' `targetgroup.Group`.

use std::collections::BTreeMap;

/// The label holding a target's `host:port`; every discovered target has it.
pub const ADDRESS_LABEL: &str = "__address__";

/// A set of targets sharing labels, from one source; Prometheus'
/// `targetgroup.Group`. The scrape manager turns each target into the union of
/// its own labels and the group's (the target's win), then relabels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetGroup {
    /// Identifies the group within its provider (`<path>:<index>` for file SD,
    /// the config index for static configs), so updates replace it by name.
    pub source: String,
    /// Each target's own labels; at least `__address__`.
    pub targets: Vec<BTreeMap<String, String>>,
    /// Labels common to all targets of the group.
    pub labels: BTreeMap<String, String>,
}

impl TargetGroup {
    /// A group from `static_configs` (or the `targets:` list of a file), where
    /// each target is only an address.
    pub fn from_static(source: String, targets: &[String], labels: &BTreeMap<String, String>) -> TargetGroup {
        TargetGroup {
            source,
            targets: targets.iter().map(|t| BTreeMap::from([(ADDRESS_LABEL.to_string(), t.clone())])).collect(),
            labels: labels.clone(),
        }
    }
}

/// Whether `name` is a label name in the classic syntax, `[a-zA-Z_][a-zA-Z0-9_]*`.
///
/// Prometheus 3 also accepts other UTF-8 names in SD files; Hearth keeps the
/// classic rule so that every discovered label can go through relabeling,
/// storage and PromQL unquoted.
pub(crate) fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_') && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_targets_become_address_labels() {
        let labels = BTreeMap::from([("env".to_string(), "prod".to_string())]);
        let g = TargetGroup::from_static("0".into(), &["a:9100".into(), "b:9100".into()], &labels);
        assert_eq!(g.source, "0");
        assert_eq!(g.targets.len(), 2);
        assert_eq!(g.targets[1].get(ADDRESS_LABEL).map(String::as_str), Some("b:9100"));
        assert_eq!(g.targets[1].len(), 1);
        assert_eq!(g.labels, labels);
    }

    #[test]
    fn label_names_follow_the_classic_syntax() {
        for ok in ["a", "_", "__meta_filepath", "A1_b"] {
            assert!(is_valid_label_name(ok), "{ok:?}");
        }
        for bad in ["", "1a", "a-b", "a.b", "a:b", "é"] {
            assert!(!is_valid_label_name(bad), "{bad:?}");
        }
    }
}
