//! Applying compiled rules to a label set, with Prometheus 3's semantics
//! (`model/relabel.ProcessBuilder`).
//!
//! The rules work on `Work`, a copy of Prometheus' `labels.Builder`: the
//! input stays as the untouched base and changes collect beside it, so a
//! rule that changes nothing costs no allocation and an unchanged set comes
//! back as the same shared [`Labels`]. It also keeps the builder's
//! iteration order (unchanged base labels sorted, then the labels set since,
//! in the order they were set), which decides which label wins when
//! `labelmap` maps two names onto one.

use std::borrow::Cow;
use std::num::NonZeroU64;

use regex::Regex;

use super::config::{Action, NameValidation, RelabelConfig};
use super::md5;
use super::template::{Groups, Template};
use crate::model::{Label, Labels, LabelsBuilder};

/// Rules compiled once per configuration (regexes compiled once).
#[derive(Debug, Clone, Default)]
pub struct Relabeler {
    rules: Vec<Rule>,
    names: NameValidation,
}

/// Why a rule list was rejected: the rule's position (0-based) and
/// Prometheus' message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("relabel rule {index}: {message}")]
pub struct RelabelError {
    /// The rule's position in the list, from 0.
    pub index: usize,
    /// Prometheus' message for the problem.
    pub message: String,
}

#[derive(Debug, Clone)]
struct Rule {
    source_labels: Vec<String>,
    separator: String,
    regex: Regex,
    /// The regex is the default `(.*)` (or `.*`): it matches everything and
    /// its groups are the whole value, so it never needs to run.
    matches_all: bool,
    op: Op,
}

#[derive(Debug, Clone)]
enum Op {
    Replace { target: Template, replacement: Template, needs_groups: bool },
    Keep,
    Drop,
    KeepEqual(String),
    DropEqual(String),
    HashMod { target: String, modulus: NonZeroU64 },
    LabelMap(Template),
    LabelDrop,
    LabelKeep,
    Lowercase(String),
    Uppercase(String),
}

impl Relabeler {
    /// Validates and compiles `configs` under the legacy label name scheme
    /// (see [`NameValidation`]).
    pub fn new(configs: &[RelabelConfig]) -> Result<Relabeler, RelabelError> {
        Relabeler::with_validation(configs, NameValidation::Legacy)
    }

    /// Validates and compiles `configs` under the given label name scheme,
    /// which also decides which expanded `replace` targets are usable.
    pub fn with_validation(configs: &[RelabelConfig], names: NameValidation) -> Result<Relabeler, RelabelError> {
        let rules = configs
            .iter()
            .enumerate()
            .map(|(index, c)| Rule::compile(c, names).map_err(|message| RelabelError { index, message }))
            .collect::<Result<_, _>>()?;
        Ok(Relabeler { rules, names })
    }

    /// True when there are no rules (processing returns its input).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Applies all rules in order; None when a keep/drop-type rule drops the set.
    pub fn process(&self, labels: &Labels) -> Option<Labels> {
        let mut work = Work::new(labels.as_slice());
        for rule in &self.rules {
            if !rule.apply(&mut work, self.names) {
                return None;
            }
        }
        Some(work.finish(labels))
    }

    /// Same, in place on a builder (used by target relabeling); false =
    /// dropped, and then the builder keeps the labels it had.
    ///
    /// The builder's labels are taken in name order, where Prometheus would
    /// take them in the order they were set; that order comes from Go map
    /// iteration during target discovery, so Prometheus has none to match.
    pub fn process_builder(&self, b: &mut LabelsBuilder) -> bool {
        if self.rules.is_empty() {
            return true;
        }
        let labels = std::mem::take(b).build();
        let out = self.process(&labels);
        *b = LabelsBuilder::from_labels(out.as_ref().unwrap_or(&labels));
        out.is_some()
    }
}

impl Rule {
    fn compile(c: &RelabelConfig, names: NameValidation) -> Result<Rule, String> {
        let compiled = c.check(names)?;
        let template = |t: &str| Template::parse(t, &compiled.group_names);
        let op = match c.action {
            Action::Replace => {
                let (target, replacement) = (template(&c.target_label), template(&c.replacement));
                let needs_groups = target.uses_groups() || replacement.uses_groups();
                Op::Replace { target, replacement, needs_groups }
            }
            Action::Keep => Op::Keep,
            Action::Drop => Op::Drop,
            Action::KeepEqual => Op::KeepEqual(c.target_label.clone()),
            Action::DropEqual => Op::DropEqual(c.target_label.clone()),
            Action::HashMod => Op::HashMod {
                target: c.target_label.clone(),
                modulus: NonZeroU64::new(c.modulus).ok_or("relabel configuration for hashmod requires non-zero modulus")?,
            },
            Action::LabelMap => Op::LabelMap(template(&c.replacement)),
            Action::LabelDrop => Op::LabelDrop,
            Action::LabelKeep => Op::LabelKeep,
            Action::Lowercase => Op::Lowercase(c.target_label.clone()),
            Action::Uppercase => Op::Uppercase(c.target_label.clone()),
        };
        Ok(Rule {
            source_labels: c.source_labels.clone(),
            separator: c.separator.clone(),
            matches_all: c.regex == "(.*)" || c.regex == ".*",
            regex: compiled.regex,
            op,
        })
    }

    fn is_match(&self, s: &str) -> bool {
        self.matches_all || self.regex.is_match(s)
    }

    /// Applies the rule; false when it drops the label set.
    fn apply(&self, w: &mut Work<'_>, names: NameValidation) -> bool {
        let value = w.join(&self.source_labels, &self.separator);
        match &self.op {
            Op::Drop => !self.is_match(&value),
            Op::Keep => self.is_match(&value),
            Op::DropEqual(target) => w.get(target) != value,
            Op::KeepEqual(target) => w.get(target) == value,
            Op::Replace { target, replacement, needs_groups } => {
                let Some((target, replacement)) = self.replace(&value, target, replacement, *needs_groups, names) else {
                    return true;
                };
                w.set(target.as_ref(), replacement.into_owned());
                true
            }
            Op::Lowercase(target) => {
                let lower = go_lowercase(&value);
                w.set(target.as_str(), lower);
                true
            }
            Op::Uppercase(target) => {
                let upper = go_uppercase(&value);
                w.set(target.as_str(), upper);
                true
            }
            Op::HashMod { target, modulus } => {
                let digest = md5::digest(value.as_bytes());
                let mut tail = [0u8; 8];
                tail.copy_from_slice(&digest[8..]);
                // Prometheus keeps the last 8 bytes of the MD5, big-endian.
                let shard = u64::from_be_bytes(tail) % modulus.get();
                w.set(target.as_str(), shard.to_string());
                true
            }
            Op::LabelMap(replacement) => {
                let mapped: Vec<(String, String)> =
                    w.labels().filter(|l| self.is_match(&l.name)).map(|l| (self.map_name(&l.name, replacement), l.value.clone())).collect();
                for (name, value) in mapped {
                    w.set(name, value);
                }
                true
            }
            Op::LabelDrop | Op::LabelKeep => {
                let keep_matching = matches!(self.op, Op::LabelKeep);
                let doomed: Vec<String> = w.labels().filter(|l| self.is_match(&l.name) != keep_matching).map(|l| l.name.clone()).collect();
                for name in &doomed {
                    w.del(name);
                }
                true
            }
        }
    }

    /// The `replace` action's target label and value, or None when the rule
    /// leaves the set alone (no match, or the target is not a usable label
    /// name once expanded). An empty value means "delete the target".
    fn replace<'t>(
        &self,
        value: &str,
        target: &'t Template,
        replacement: &'t Template,
        needs_groups: bool,
        names: NameValidation,
    ) -> Option<(Cow<'t, str>, Cow<'t, str>)> {
        let expand = |groups: &Groups<'_>| {
            let target = target.expand(groups);
            names.is_valid_label_name(&target).then(|| (target, replacement.expand(groups)))
        };
        if self.matches_all {
            return expand(&Groups::Whole(value));
        }
        if !needs_groups {
            return if self.regex.is_match(value) { expand(&Groups::Whole(value)) } else { None };
        }
        let mut locs = self.regex.capture_locations();
        self.regex.captures_read(&mut locs, value)?;
        expand(&Groups::Spans(value, &locs))
    }

    /// What `labelmap` renames `name` to.
    fn map_name(&self, name: &str, template: &Template) -> String {
        if self.matches_all { template.expand(&Groups::Whole(name)).into_owned() } else { template.replace_all(&self.regex, name) }
    }
}

/// Go's `strings.ToLower`: each character's simple lowercase mapping.
fn go_lowercase(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    s.chars()
        .map(|c| {
            let mut lower = c.to_lowercase();
            match (lower.len(), c) {
                (1, _) => lower.next().unwrap_or(c),
                // The only character whose lowercase is longer than one
                // character; its simple mapping is a plain `i`.
                (_, '\u{130}') => 'i',
                _ => c,
            }
        })
        .collect()
}

/// Go's `strings.ToUpper`: each character's simple uppercase mapping (Rust's
/// is the full mapping, `ß` → `SS`, which Go leaves as `ß`).
fn go_uppercase(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_uppercase();
    }
    s.chars()
        .map(|c| {
            let mut upper = c.to_uppercase();
            if upper.len() == 1 {
                return upper.next().unwrap_or(c);
            }
            // Characters with a multi-character full mapping: only the Greek
            // letters with ypogegrammeni have a simple one (to the
            // prosgegrammeni form).
            let code = u32::from(c);
            let simple = match code {
                0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => code + 8,
                0x1FB3 | 0x1FC3 | 0x1FF3 => code + 9,
                _ => code,
            };
            char::from_u32(simple).unwrap_or(c)
        })
        .collect()
}

/// A label set being relabeled: Prometheus' `labels.Builder`.
struct Work<'a> {
    /// The input, sorted.
    base: &'a [Label],
    /// Positions in `base` deleted since.
    deleted: Vec<usize>,
    /// Labels set since, in the order first set; they hide base labels of
    /// the same name.
    added: Vec<Label>,
}

impl<'a> Work<'a> {
    fn new(base: &'a [Label]) -> Self {
        Work { base, deleted: Vec::new(), added: Vec::new() }
    }

    fn base_position(&self, name: &str) -> Option<usize> {
        self.base.binary_search_by(|l| l.name.as_str().cmp(name)).ok()
    }

    /// The current value of `name` ("" when absent).
    fn get(&self, name: &str) -> &str {
        if let Some(l) = self.added.iter().find(|l| l.name == name) {
            return &l.value;
        }
        match self.base_position(name) {
            Some(i) if !self.deleted.contains(&i) => &self.base[i].value,
            _ => "",
        }
    }

    /// The source labels' values joined by the separator.
    fn join(&self, names: &[String], separator: &str) -> Cow<'_, str> {
        match names {
            [] => Cow::Borrowed(""),
            [name] => Cow::Borrowed(self.get(name)),
            _ => {
                let mut joined = String::new();
                for (i, name) in names.iter().enumerate() {
                    if i > 0 {
                        joined.push_str(separator);
                    }
                    joined.push_str(self.get(name));
                }
                Cow::Owned(joined)
            }
        }
    }

    /// Sets `name`; an empty value deletes it.
    fn set<N: AsRef<str> + Into<String>>(&mut self, name: N, value: String) {
        if value.is_empty() {
            self.del(name.as_ref());
        } else if let Some(l) = self.added.iter_mut().find(|l| l.name == name.as_ref()) {
            l.value = value;
        } else {
            self.added.push(Label { name: name.into(), value });
        }
    }

    fn del(&mut self, name: &str) {
        self.added.retain(|l| l.name != name);
        match self.base_position(name) {
            Some(i) if !self.deleted.contains(&i) => self.deleted.push(i),
            _ => {}
        }
    }

    /// The current labels in the builder's order: unchanged base labels,
    /// then the ones set since.
    fn labels(&self) -> impl Iterator<Item = &Label> {
        let base = self.base.iter().enumerate().filter(|(i, l)| !self.deleted.contains(i) && !self.added.iter().any(|a| a.name == l.name));
        base.map(|(_, l)| l).chain(&self.added)
    }

    /// The result; `original` itself when nothing was changed.
    fn finish(self, original: &Labels) -> Labels {
        if self.added.is_empty() && self.deleted.is_empty() {
            return original.clone();
        }
        let mut added = self.added;
        added.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let mut out = Vec::with_capacity(self.base.len() + added.len());
        let mut added = added.into_iter().peekable();
        for (i, l) in self.base.iter().enumerate() {
            while let Some(a) = added.next_if(|a| a.name < l.name) {
                out.push(a);
            }
            if let Some(a) = added.next_if(|a| a.name == l.name) {
                out.push(a);
            } else if !self.deleted.contains(&i) {
                out.push(l.clone());
            }
        }
        out.extend(added);
        Labels::from_sorted(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    fn relabeler(yaml: &str) -> Relabeler {
        let configs: Vec<RelabelConfig> = serde_saphyr::from_str(yaml).expect("rules parse");
        Relabeler::new(&configs).expect("rules are valid")
    }

    /// Runs `yaml` rules over `input`; None when dropped.
    fn run(yaml: &str, input: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        relabeler(yaml).process(&labels(input)).map(|l| l.iter().map(|l| (l.name.clone(), l.value.clone())).collect())
    }

    fn pairs(p: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(p.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect())
    }

    #[test]
    fn replace_with_default_regex_copies_joined_sources() {
        let rules = "- source_labels: [a, b]\n  target_label: t";
        assert_eq!(run(rules, &[("a", "1"), ("b", "2")]), pairs(&[("a", "1"), ("b", "2"), ("t", "1;2")]));
        // A missing source label contributes "" to the joined value.
        assert_eq!(run(rules, &[("b", "2")]), pairs(&[("b", "2"), ("t", ";2")]));
        // Two missing labels still join to ";".
        assert_eq!(run(rules, &[]), pairs(&[("t", ";")]));
        // One missing label is "", which deletes the target.
        assert_eq!(run("- source_labels: [a]\n  target_label: t", &[("t", "old")]), pairs(&[]));
    }

    #[test]
    fn replace_separator_and_no_sources() {
        assert_eq!(
            run("- source_labels: [a, b]\n  separator: ''\n  target_label: t", &[("a", "x"), ("b", "y")]),
            pairs(&[("a", "x"), ("b", "y"), ("t", "xy")])
        );
        // No source labels: the value is "", which `(.*)` matches; a static replacement.
        assert_eq!(run("- target_label: env\n  replacement: prod", &[("a", "1")]), pairs(&[("a", "1"), ("env", "prod")]));
    }

    #[test]
    fn replace_without_match_changes_nothing() {
        let input = labels(&[("a", "boo"), ("b", "keep")]);
        let out = relabeler("- source_labels: [a]\n  regex: f\n  target_label: b\n  replacement: bar").process(&input).expect("kept");
        assert_eq!(out, input);
        assert_eq!(out.identity(), input.identity(), "an unchanged set is the same shared set");
    }

    #[test]
    fn replace_groups_and_templates() {
        let input = [("a", "some-name-value")];
        let regex = "regex: 'some-([^-]+)-([^,]+)'";
        let rule = |target: &str, replacement: &str| {
            format!("- source_labels: [a]\n  {regex}\n  target_label: '{target}'\n  replacement: '{replacement}'")
        };
        assert_eq!(run(&rule("${1}", "${2}"), &input), pairs(&[("a", "some-name-value"), ("name", "value")]));
        assert_eq!(run(&rule("x", "$2-$1"), &input), pairs(&[("a", "some-name-value"), ("x", "value-name")]));
        // `$1x` is the group named "1x": empty, so the target is deleted (here: never set).
        assert_eq!(run(&rule("x", "$1x"), &input), pairs(&[("a", "some-name-value")]));
        assert_eq!(run(&rule("x", "${1}x"), &input), pairs(&[("a", "some-name-value"), ("x", "namex")]));
        // A reference to a group that does not exist expands to nothing.
        assert_eq!(run(&rule("x", "${3}"), &input), pairs(&[("a", "some-name-value")]));
        // A target that expands to an invalid (here empty) name: the rule does nothing.
        assert_eq!(run(&rule("${3}", "v"), &input), pairs(&[("a", "some-name-value")]));
        assert_eq!(run(&rule("x", "$$1"), &input), pairs(&[("a", "some-name-value"), ("x", "$1")]));
    }

    #[test]
    fn replace_empty_result_deletes_the_expanded_target() {
        let rules = "- source_labels: [a]\n  regex: '(f).*'\n  target_label: '$1'\n  replacement: '$2'";
        assert_eq!(run(rules, &[("a", "foo"), ("f", "baz")]), pairs(&[("a", "foo")]));
    }

    #[test]
    fn replace_expanded_target_must_be_a_legacy_name_by_default() {
        let rules = "- source_labels: [a]\n  regex: '(.*)'\n  target_label: 'x_${1}'\n  replacement: v";
        assert_eq!(run(rules, &[("a", "ok")]), pairs(&[("a", "ok"), ("x_ok", "v")]));
        assert_eq!(run(rules, &[("a", "not.ok")]), pairs(&[("a", "not.ok")]));
        let configs: Vec<RelabelConfig> = serde_saphyr::from_str(rules).expect("parses");
        let utf8 = Relabeler::with_validation(&configs, NameValidation::Utf8).expect("valid");
        assert_eq!(utf8.process(&labels(&[("a", "not.ok")])), Some(labels(&[("a", "not.ok"), ("x_not.ok", "v")])));
    }

    #[test]
    fn regex_is_anchored_and_dot_matches_newline() {
        let rules = "- source_labels: [a]\n  regex: 'line1.*line2'\n  target_label: d\n  replacement: 'match${1}'";
        assert_eq!(run(rules, &[("a", "line1\nline2")]), pairs(&[("a", "line1\nline2"), ("d", "match")]));
        assert_eq!(run("- source_labels: [a]\n  regex: o\n  action: keep", &[("a", "foo")]), None);
    }

    #[test]
    fn keep_and_drop() {
        let keep = "- source_labels: [a]\n  regex: 'f.*'\n  action: keep";
        assert_eq!(run(keep, &[("a", "foo")]), pairs(&[("a", "foo")]));
        assert_eq!(run(keep, &[("a", "bar")]), None);
        // A missing label is "", which `f.*` does not match.
        assert_eq!(run(keep, &[("b", "foo")]), None);
        let drop = "- source_labels: [a]\n  regex: 'f|o'\n  action: drop";
        assert_eq!(run(drop, &[("a", "foo")]), pairs(&[("a", "foo")]), "anchored: `f|o` is not found inside foo");
        assert_eq!(run(drop, &[("a", "o")]), None);
        // Drop on the empty value: a classic "drop targets without the annotation".
        let drop_empty = "- source_labels: [a]\n  regex: ''\n  action: drop";
        assert_eq!(run(drop_empty, &[("b", "1")]), None);
        assert_eq!(run(drop_empty, &[("a", "1")]), pairs(&[("a", "1")]));
    }

    #[test]
    fn keepequal_and_dropequal() {
        let input = [("__tmp_port", "1234"), ("__port1", "1234"), ("__port2", "5678")];
        let rule = |action: &str, target: &str| format!("- source_labels: [__tmp_port]\n  action: {action}\n  target_label: {target}");
        assert_eq!(run(&rule("keepequal", "__port1"), &input), pairs(&[("__port1", "1234"), ("__port2", "5678"), ("__tmp_port", "1234")]));
        assert_eq!(run(&rule("keepequal", "__port2"), &input), None);
        assert_eq!(run(&rule("dropequal", "__port1"), &input), None);
        assert!(run(&rule("dropequal", "__port2"), &input).is_some());
        // Both missing: "" == "".
        assert_eq!(run(&rule("dropequal", "missing"), &[("x", "1")]), None);
    }

    /// Expected shards from `python3 -c 'import hashlib; print(int.from_bytes(
    /// hashlib.md5(VALUE.encode()).digest()[8:], "big") % MODULUS)'`; the
    /// first two are also upstream's test values.
    #[test]
    fn hashmod_matches_prometheus_arithmetic() {
        let cases: [(&str, u64, &str); 9] = [
            ("baz", 1000, "976"),
            ("foo\nbar", 1000, "734"),
            ("", 3, "1"),
            ("10.0.0.1:9100", 8, "5"),
            ("node-1;9100", 16, "15"),
            ("a;b", u64::MAX, "2420134994223480074"),
            ("é", 7, "3"),
            ("x", 1, "0"),
            ("10.132.183.40:80", 3, "1"),
        ];
        for (value, modulus, want) in cases {
            let rules = format!("- source_labels: [v]\n  action: hashmod\n  modulus: {modulus}\n  target_label: shard");
            let out = relabeler(&rules).process(&labels(&[("v", value)])).expect("kept");
            assert_eq!(out.get("shard"), want, "hashmod({value:?}) % {modulus}");
        }
        // Two sources are hashed joined by the separator.
        let joined = relabeler("- source_labels: [a, b]\n  separator: ';'\n  action: hashmod\n  modulus: 16\n  target_label: s")
            .process(&labels(&[("a", "node-1"), ("b", "9100")]))
            .expect("kept");
        assert_eq!(joined.get("s"), "15");
    }

    #[test]
    fn lowercase_and_uppercase_follow_go() {
        let rules = "- source_labels: [foo]\n  action: uppercase\n  target_label: up\n- source_labels: [foo]\n  action: lowercase\n  target_label: low";
        assert_eq!(run(rules, &[("foo", "bAr123Foo")]), pairs(&[("foo", "bAr123Foo"), ("low", "bar123foo"), ("up", "BAR123FOO")]));
        // Go maps character by character: ß stays ß in upper case, final
        // sigma is not special, İ lowers to a plain i, ᾳ uppers to ᾼ.
        assert_eq!(go_uppercase("straße ᾳ ﬁ"), "STRAßE ᾼ ﬁ");
        assert_eq!(go_lowercase("ΣΑΣ İ"), "σασ i");
        // An empty value deletes the target.
        assert_eq!(run(rules, &[("up", "X"), ("low", "y")]), pairs(&[]));
    }

    #[test]
    fn labelmap() {
        let rules = "- action: labelmap\n  regex: '__meta_(my.*)'\n  replacement: '${1}'";
        let input = [("a", "foo"), ("__meta_my_bar", "aaa"), ("__meta_my_baz", "bbb"), ("__meta_other", "ccc")];
        assert_eq!(
            run(rules, &input),
            pairs(&[
                ("__meta_my_bar", "aaa"),
                ("__meta_my_baz", "bbb"),
                ("__meta_other", "ccc"),
                ("a", "foo"),
                ("my_bar", "aaa"),
                ("my_baz", "bbb")
            ])
        );
        // The default replacement `$1` with the usual Kubernetes pattern.
        assert_eq!(
            run("- action: labelmap\n  regex: '__meta_kubernetes_pod_label_(.+)'", &[("__meta_kubernetes_pod_label_app", "web")]),
            pairs(&[("__meta_kubernetes_pod_label_app", "web"), ("app", "web")])
        );
    }

    /// When two labels map to one name, the later one in Prometheus' builder
    /// order wins: unchanged input labels in name order, then labels set by
    /// earlier rules in the order they were set.
    #[test]
    fn labelmap_collisions_follow_builder_order() {
        let rules = "- action: labelmap\n  regex: '(?:x|y)_(.*)'";
        assert_eq!(run(rules, &[("x_a", "1"), ("y_a", "2")]), pairs(&[("a", "2"), ("x_a", "1"), ("y_a", "2")]));
        // Both set by earlier rules: visited in the order they were set, so
        // x_a (set second) wins over y_a although it sorts first.
        let rules =
            "- target_label: y_a\n  replacement: '1'\n- target_label: x_a\n  replacement: '2'\n- action: labelmap\n  regex: '(?:x|y)_(.*)'";
        assert_eq!(run(rules, &[]), pairs(&[("a", "2"), ("x_a", "2"), ("y_a", "1")]));
        // Rewriting an input label moves it to the end of the order.
        let rules = "- target_label: x_a\n  replacement: '3'\n- action: labelmap\n  regex: '(?:x|y)_(.*)'";
        assert_eq!(run(rules, &[("x_a", "1"), ("y_a", "2")]), pairs(&[("a", "3"), ("x_a", "3"), ("y_a", "2")]));
    }

    #[test]
    fn labelmap_sees_the_labels_as_they_were() {
        // b is mapped from a's old value although a is overwritten in the same pass.
        let rules = "- action: labelmap\n  regex: '(a|b)'\n  replacement: 'b'";
        assert_eq!(run(rules, &[("a", "1"), ("b", "2")]), pairs(&[("a", "1"), ("b", "2")]));
        let rules = "- action: labelmap\n  regex: 'a'\n  replacement: 'b'";
        assert_eq!(run(rules, &[("a", "1"), ("b", "2")]), pairs(&[("a", "1"), ("b", "1")]));
    }

    #[test]
    fn labeldrop_and_labelkeep() {
        let input = [("a", "foo"), ("b1", "bar"), ("b2", "baz")];
        assert_eq!(run("- action: labelkeep\n  regex: '(b.*)'", &input), pairs(&[("b1", "bar"), ("b2", "baz")]));
        assert_eq!(run("- action: labeldrop\n  regex: '(b.*)'", &input), pairs(&[("a", "foo")]));
        assert_eq!(run("- action: labeldrop\n  regex: 'b'", &input), pairs(&input), "anchored: `b` does not match b1");
        assert_eq!(run("- action: labelkeep\n  regex: 'x'", &input), pairs(&[]));
    }

    #[test]
    fn rules_apply_in_order_and_stop_at_a_drop() {
        // From upstream issue 12283: drop a label, set it again, keep on it.
        let rules = "
- regex: '^__meta_kubernetes_pod_container_port_name$'
  action: labeldrop
- source_labels: [__meta_kubernetes_pod_annotation_XXX_metrics_port]
  regex: '(.+)'
  replacement: metrics
  target_label: __meta_kubernetes_pod_container_port_name
- source_labels: [__meta_kubernetes_pod_container_port_name]
  regex: '^metrics$'
  action: keep";
        let input = [("__meta_kubernetes_pod_container_port_name", "foo"), ("__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091")];
        assert_eq!(
            run(rules, &input),
            pairs(&[
                ("__meta_kubernetes_pod_annotation_XXX_metrics_port", "9091"),
                ("__meta_kubernetes_pod_container_port_name", "metrics")
            ])
        );
        let rules = "- source_labels: [a]\n  regex: '.*o.*'\n  action: drop\n- target_label: never\n  replacement: x";
        assert_eq!(run(rules, &[("a", "foo")]), None);
    }

    #[test]
    fn process_builder_in_place() {
        let r = relabeler("- source_labels: [__address__]\n  target_label: instance\n- regex: '__tmp.*'\n  action: labeldrop");
        let mut b = LabelsBuilder::new();
        b.set("__address__", "10.0.0.1:9100");
        b.set("__tmp_x", "y");
        assert!(r.process_builder(&mut b));
        assert_eq!(b.get("instance"), "10.0.0.1:9100");
        assert_eq!(b.get("__tmp_x"), "");
        let drop = relabeler("- source_labels: [job]\n  regex: ''\n  action: drop");
        let mut b = LabelsBuilder::new();
        b.set("a", "1");
        assert!(!drop.process_builder(&mut b));
        assert_eq!(b.get("a"), "1", "a dropped set leaves the builder as it was");
    }

    #[test]
    fn empty_relabeler_returns_the_input() {
        let r = Relabeler::new(&[]).expect("no rules");
        assert!(r.is_empty() && Relabeler::default().is_empty());
        let input = labels(&[("a", "1")]);
        assert_eq!(r.process(&input).map(|l| l.identity()), Some(input.identity()));
        let mut b = LabelsBuilder::from_labels(&input);
        assert!(r.process_builder(&mut b));
        assert_eq!(b.build(), input);
    }

    #[test]
    fn errors_name_the_rule() {
        let configs: Vec<RelabelConfig> =
            serde_saphyr::from_str("- target_label: ok\n- action: hashmod\n  target_label: t").expect("parses");
        let err = Relabeler::new(&configs).expect_err("second rule invalid");
        assert_eq!(err, RelabelError { index: 1, message: "relabel configuration for hashmod requires non-zero modulus".into() });
        assert_eq!(err.to_string(), "relabel rule 1: relabel configuration for hashmod requires non-zero modulus");
    }
}
