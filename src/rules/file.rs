//! Prometheus' rule file format (`rulefmt`): groups of recording and alerting
//! rules, validated as promtool validates them and reported with promtool's
//! messages and `line:col` positions.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::yaml::{self, YamlPath};
use crate::config::{de_opt_duration, is_valid_label_name};

/// A parsed rule file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleFile {
    pub groups: Vec<RuleGroup>,
}

/// Rules evaluated together, in order, at one interval.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleGroup {
    pub name: String,
    /// `None` to use the global `evaluation_interval`.
    pub interval: Option<Duration>,
    /// Most alerts or series one evaluation may produce; 0 for no limit.
    pub limit: u64,
    /// How far in the past the group queries; `None` for the global
    /// `rule_query_offset`.
    pub query_offset: Option<Duration>,
    /// Labels added to every rule's result (the rule's own labels win).
    pub labels: BTreeMap<String, String>,
    pub rules: Vec<Rule>,
}

/// A recording rule (`record` set) or an alerting rule (`alert` set).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub record: Option<String>,
    pub alert: Option<String>,
    pub expr: String,
    /// How long an alert must be active before it fires (`for`).
    pub for_: Duration,
    /// How long an alert keeps firing after its condition cleared.
    pub keep_firing_for: Duration,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl Rule {
    /// The alert or recorded series name.
    pub fn name(&self) -> &str {
        self.alert.as_deref().or(self.record.as_deref()).unwrap_or("")
    }
}

/// One problem in a rule file, printed as promtool prints it:
/// `FILE: LINE:COL: group "g", rule 1, "name": message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", file.display())]
pub struct RuleFileError {
    pub file: PathBuf,
    /// Everything after the file name.
    pub detail: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawFile {
    groups: Vec<RawGroup>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawGroup {
    name: String,
    #[serde(deserialize_with = "de_opt_duration")]
    interval: Option<Duration>,
    limit: u64,
    #[serde(deserialize_with = "de_opt_duration")]
    query_offset: Option<Duration>,
    labels: BTreeMap<String, String>,
    rules: Vec<RawRule>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawRule {
    record: Option<String>,
    alert: Option<String>,
    expr: Option<String>,
    #[serde(rename = "for", deserialize_with = "de_opt_duration")]
    for_: Option<Duration>,
    #[serde(deserialize_with = "de_opt_duration")]
    keep_firing_for: Option<Duration>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

/// Reads and validates a rule file; all problems found are returned.
pub fn load_rule_file(path: &Path) -> Result<RuleFile, Vec<RuleFileError>> {
    let text = std::fs::read_to_string(path).map_err(|e| vec![RuleFileError { file: path.to_path_buf(), detail: e.to_string() }])?;
    parse_rule_file(&text).map_err(|details| details.into_iter().map(|detail| RuleFileError { file: path.to_path_buf(), detail }).collect())
}

/// Parses and validates rule file content; errors are without the file name.
pub fn parse_rule_file(text: &str) -> Result<RuleFile, Vec<String>> {
    let raw: RawFile = yaml::from_str(text).map_err(|e| vec![e.to_string()])?;
    let mut errors = Vec::new();
    let pos = |p: &YamlPath| yaml::locate(text, p).unwrap_or((0, 0));
    let mut names = HashSet::new();
    let root = YamlPath::root().key("groups");
    for (j, g) in raw.groups.iter().enumerate() {
        let (l, c) = pos(&root.index(j));
        if g.name.is_empty() {
            errors.push(format!("{l}:{c}: Groupname must not be empty"));
        }
        if !names.insert(g.name.as_str()) {
            errors.push(format!("{l}:{c}: groupname: \"{}\" is repeated in the same file", g.name));
        }
        for k in g.labels.keys() {
            if !is_valid_label_name(k) || k == "__name__" {
                errors.push(format!("{l}:{c}: group {:?}: invalid label name: {k}", g.name));
            }
        }
        for (i, r) in g.rules.iter().enumerate() {
            let at = root.index(j).key("rules").index(i);
            let name = r.alert.as_deref().filter(|a| !a.is_empty()).or(r.record.as_deref()).unwrap_or("");
            let prefix = format!("group {:?}, rule {}, {:?}", g.name, i + 1, name);
            for (nodes, msg) in validate_rule(r) {
                let places: String = nodes.iter().map(|n| pos(&at.key(n))).map(|(l, c)| format!("{l}:{c}: ")).collect();
                errors.push(format!("{places}{prefix}: {msg}"));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let groups = raw
        .groups
        .into_iter()
        .map(|g| RuleGroup {
            name: g.name,
            interval: g.interval.filter(|d| !d.is_zero()),
            limit: g.limit,
            query_offset: g.query_offset,
            labels: g.labels,
            rules: g
                .rules
                .into_iter()
                .map(|r| Rule {
                    record: r.record.filter(|s| !s.is_empty()),
                    alert: r.alert.filter(|s| !s.is_empty()),
                    expr: r.expr.unwrap_or_default(),
                    for_: r.for_.unwrap_or_default(),
                    keep_firing_for: r.keep_firing_for.unwrap_or_default(),
                    labels: r.labels,
                    annotations: r.annotations,
                })
                .collect(),
        })
        .collect();
    Ok(RuleFile { groups })
}

/// promtool's `RuleNode.Validate`: each problem with the keys whose values it
/// points at (promtool prints `0:0` for a key that is absent).
fn validate_rule(r: &RawRule) -> Vec<(Vec<&'static str>, String)> {
    let mut out = Vec::new();
    let record = r.record.as_deref().unwrap_or("");
    let alert = r.alert.as_deref().unwrap_or("");
    let expr = r.expr.as_deref().unwrap_or("");
    if !record.is_empty() && !alert.is_empty() {
        out.push((vec!["record", "alert"], "only one of 'record' and 'alert' must be set".to_string()));
    }
    if record.is_empty() && alert.is_empty() {
        out.push((vec!["record"], "one of 'record' or 'alert' must be set".to_string()));
    }
    if expr.is_empty() {
        out.push((vec!["expr"], "field 'expr' must be set in rule".to_string()));
    } else if let Err(e) = crate::promql::parse::parse(expr) {
        out.push((vec!["expr"], format!("could not parse expression: {e}")));
    }
    if !record.is_empty() {
        if !r.annotations.is_empty() {
            out.push((vec!["record"], "invalid field 'annotations' in recording rule".to_string()));
        }
        if r.for_.is_some_and(|d| !d.is_zero()) {
            out.push((vec!["record"], "invalid field 'for' in recording rule".to_string()));
        }
        if r.keep_firing_for.is_some_and(|d| !d.is_zero()) {
            out.push((vec!["record"], "invalid field 'keep_firing_for' in recording rule".to_string()));
        }
        if !is_valid_metric_name(record) {
            out.push((vec!["record"], format!("invalid recording rule name: {record}")));
        }
    }
    for k in r.labels.keys() {
        if !is_valid_label_name(k) || k == "__name__" {
            out.push((vec![], format!("invalid label name: {k}")));
        }
    }
    for k in r.annotations.keys() {
        if !is_valid_label_name(k) {
            out.push((vec![], format!("invalid annotation name: {k}")));
        }
    }
    // Templates must parse (promtool checks alerting rules only).
    if !alert.is_empty() {
        let templates = r.labels.iter().map(|(k, v)| ("label", k, v)).chain(r.annotations.iter().map(|(k, v)| ("annotation", k, v)));
        for (what, k, text) in templates {
            if let Err(e) = super::template::check(alert, text) {
                out.push((vec![], format!("{what} {k:?}: {e}")));
            }
        }
    }
    out
}

/// Whether `name` is a metric name Prometheus 2 accepts: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn is_valid_metric_name(name: &str) -> bool {
    let mut b = name.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// Rules that share a name and labels across the file (promtool's
/// `duplicate-rules` lint), each reported once, sorted.
pub fn duplicate_rules(file: &RuleFile) -> Vec<(String, BTreeMap<String, String>)> {
    let mut all: Vec<(&str, &BTreeMap<String, String>)> =
        file.groups.iter().flat_map(|g| g.rules.iter()).map(|r| (r.name(), &r.labels)).collect();
    all.sort();
    let mut dups: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    for w in all.windows(2) {
        if w[0] == w[1] && dups.last().is_none_or(|(n, l)| (n.as_str(), l) != w[1]) {
            dups.push((w[1].0.to_string(), w[1].1.clone()));
        }
    }
    dups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_groups_and_rules() {
        let f = parse_rule_file(
            "groups:\n  - name: g\n    interval: 30s\n    limit: 10\n    rules:\n      - record: job:up:sum\n        expr: sum by (job) (up)\n      - alert: Down\n        expr: up == 0\n        for: 5m\n        keep_firing_for: 1m\n        labels: {severity: page}\n        annotations: {summary: '{{ $labels.instance }} down'}\n",
        )
        .unwrap();
        let g = &f.groups[0];
        assert_eq!((g.name.as_str(), g.interval, g.limit), ("g", Some(Duration::from_secs(30)), 10));
        assert_eq!(g.rules[0].record.as_deref(), Some("job:up:sum"));
        assert_eq!(g.rules[1].for_, Duration::from_secs(300));
        assert_eq!(g.rules[1].keep_firing_for, Duration::from_secs(60));
        assert_eq!(g.rules[1].name(), "Down");
        assert_eq!(parse_rule_file(""), Ok(RuleFile::default()));
    }

    #[test]
    fn errors_read_like_promtool() {
        let e = parse_rule_file(
            "groups:\n  - name: g\n    rules:\n      - record: bad-name\n        expr: up\n        for: 1m\n      - alert: A\n        expr: sum(\n        labels: {__name__: x}\n  - name: g\n    rules: []\n",
        )
        .unwrap_err();
        assert_eq!(
            e,
            vec![
                "4:17: group \"g\", rule 1, \"bad-name\": invalid field 'for' in recording rule",
                "4:17: group \"g\", rule 1, \"bad-name\": invalid recording rule name: bad-name",
                "8:15: group \"g\", rule 2, \"A\": could not parse expression: 1:4: parse error: unclosed left parenthesis",
                "group \"g\", rule 2, \"A\": invalid label name: __name__",
                "10:5: groupname: \"g\" is repeated in the same file",
            ]
        );
        let e = parse_rule_file("groups:\n  - name: g\n    rules:\n      - expr: up\n").unwrap_err();
        assert_eq!(e, vec!["0:0: group \"g\", rule 1, \"\": one of 'record' or 'alert' must be set"]);
        let e = parse_rule_file("groups:\n  - name: g\n    rules:\n      - record: a\n        exp: up\n").unwrap_err();
        assert!(e[0].starts_with("5:9: groups[0].rules[0].exp: unknown field `exp`"), "{e:?}");
    }

    #[test]
    fn duplicates_are_found_once() {
        let f = parse_rule_file(
            "groups:\n  - name: a\n    rules:\n      - record: x\n        expr: up\n      - record: x\n        expr: up\n  - name: b\n    rules:\n      - record: x\n        expr: up\n      - record: x\n        expr: up\n        labels: {a: b}\n",
        )
        .unwrap();
        assert_eq!(duplicate_rules(&f), vec![("x".to_string(), BTreeMap::new())]);
    }
}
