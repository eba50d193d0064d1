//! Applying compiled rules to a label set, with Prometheus 3's semantics
//! (`model/relabel.ProcessBuilder`).
//!
//! The rules work on [`Work`], a copy of Prometheus' `labels.Builder`: the
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
    pub index: usize,
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
                let mapped: Vec<(String, String)> = w
                    .labels()
                    .filter(|l| self.is_match(&l.name))
                    .map(|l| (self.replace_all(&l.name, replacement), l.value.clone()))
                    .collect();
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

    /// Go's `Regexp.ReplaceAllString(src, template)`, which `labelmap`
    /// uses. With the anchored regex there is one match, the whole name,
    /// unless the pattern's own parentheses undo the anchoring.
    fn replace_all(&self, src: &str, template: &Template) -> String {
        if self.matches_all {
            return template.expand(&Groups::Whole(src)).into_owned();
        }
        let mut out = String::new();
        let mut locs = self.regex.capture_locations();
        let (mut search, mut last_end) = (0, 0);
        while search <= src.len() {
            let Some(m) = self.regex.captures_read_at(&mut locs, src, search) else {
                break;
            };
            out.push_str(&src[last_end..m.start()]);
            // No replacement for an empty match right after the previous one.
            if m.end() > last_end || m.start() == 0 {
                out.push_str(&template.expand(&Groups::Spans(src, &locs)));
            }
            last_end = m.end();
            let width = src[search..].chars().next().map_or(0, char::len_utf8);
            search = if search + width > m.end() {
                search + width
            } else if search + 1 > m.end() {
                search + 1
            } else {
                m.end()
            };
        }
        out.push_str(&src[last_end..]);
        out
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
