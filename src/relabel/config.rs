//! The `relabel_configs` / `metric_relabel_configs` entry, with Prometheus'
//! field names and defaults, and Prometheus' checks of it.
//!
//! YAML nulls read as Go's zero values, as they do in Prometheus (`regex:`
//! with nothing after it is the empty regex, not the default), and `action`
//! is case-insensitive.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::goregex::{self, GoRegex};

/// What a relabel rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Set `target_label` to the expanded `replacement` when `regex` matches.
    #[default]
    Replace,
    /// Drop the set unless `regex` matches the joined source values.
    Keep,
    /// Drop the set when `regex` matches the joined source values.
    Drop,
    /// Drop the set unless the joined source values equal `target_label`'s value.
    KeepEqual,
    /// Drop the set when the joined source values equal `target_label`'s value.
    DropEqual,
    /// Set `target_label` to MD5(joined values) mod `modulus` (sharding).
    HashMod,
    /// Copy every label whose name matches `regex` to the expanded `replacement`.
    LabelMap,
    /// Remove every label whose name matches `regex`.
    LabelDrop,
    /// Remove every label whose name does not match `regex`.
    LabelKeep,
    /// Set `target_label` to the joined values in lower case.
    Lowercase,
    /// Set `target_label` to the joined values in upper case.
    Uppercase,
}

impl Action {
    const ALL: [Action; 11] = [
        Action::Replace,
        Action::Keep,
        Action::Drop,
        Action::KeepEqual,
        Action::DropEqual,
        Action::HashMod,
        Action::LabelMap,
        Action::LabelDrop,
        Action::LabelKeep,
        Action::Lowercase,
        Action::Uppercase,
    ];

    /// The name as written in configuration and in Prometheus' messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }

    /// Parses an action name the way Prometheus does: ignoring case.
    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Option::<String>::deserialize(d)? {
            // `action:` with no value is Go's empty Action, which Prometheus
            // rejects with this message when it checks the rule.
            None => Err(D::Error::custom("relabel action cannot be empty")),
            Some(name) => Action::parse(&name).ok_or_else(|| D::Error::custom(format!("unknown relabel action {name:?}"))),
        }
    }
}

/// Which label names are acceptable: Prometheus' name validation scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameValidation {
    /// `[a-zA-Z_][a-zA-Z0-9_]*`: Prometheus 2.x (what `promtool check
    /// config` of 2.x accepts), and Prometheus 3 with
    /// `metric_name_validation_scheme: legacy`. The default, so that a
    /// configuration is accepted exactly when Prometheus 2 accepts it.
    #[default]
    Legacy,
    /// Any non-empty UTF-8 string: Prometheus 3's default.
    Utf8,
}

impl NameValidation {
    /// Whether `name` may be a label name under this scheme.
    pub fn is_valid_label_name(self, name: &str) -> bool {
        match self {
            NameValidation::Legacy => {
                let mut bytes = name.bytes();
                bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_') && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
            }
            NameValidation::Utf8 => !name.is_empty(),
        }
    }

    /// Whether `template` may be a `target_label` (or a `labelmap`
    /// replacement) that refers to groups: under the legacy scheme,
    /// Prometheus' `relabelTarget` pattern, a legacy name with `$1` /
    /// `${name}` references allowed anywhere in it.
    fn is_valid_target_template(self, template: &str) -> bool {
        if self == NameValidation::Utf8 {
            return !template.is_empty();
        }
        let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
        let b = template.as_bytes();
        if b.first().is_none_or(u8::is_ascii_digit) {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            if word(&b[i]) {
                i += 1;
            } else if b[i] == b'$' {
                i += 1;
                let braced = b.get(i) == Some(&b'{');
                let start = if braced { i + 1 } else { i };
                let end = start + b[start..].iter().take_while(|c| word(c)).count();
                if end == start || (braced && b.get(end) != Some(&b'}')) {
                    return false;
                }
                i = if braced { end + 1 } else { end };
            } else {
                return false;
            }
        }
        true
    }
}

/// Reads a YAML null as the type's zero value, as Go's YAML decoder does.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

const DEFAULT_SEPARATOR: &str = ";";
const DEFAULT_REGEX: &str = "(.*)";
const DEFAULT_REPLACEMENT: &str = "$1";

/// One relabel rule as written in YAML.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelabelConfig {
    /// Labels whose values, joined by `separator`, are the rule's input
    /// (a missing label counts as "").
    #[serde(deserialize_with = "null_as_default")]
    pub source_labels: Vec<String>,
    /// Put between the source values (default `;`).
    #[serde(deserialize_with = "null_as_default")]
    pub separator: String,
    /// Go RE2 syntax, matched fully anchored (default `(.*)`).
    #[serde(deserialize_with = "null_as_default")]
    pub regex: String,
    /// The `hashmod` divisor.
    #[serde(deserialize_with = "null_as_default")]
    pub modulus: u64,
    /// The label written (for `replace`, a template: `${1}` etc.).
    #[serde(deserialize_with = "null_as_default")]
    pub target_label: String,
    /// The value (`replace`) or name (`labelmap`) template (default `$1`).
    #[serde(deserialize_with = "null_as_default")]
    pub replacement: String,
    /// What the rule does (default `replace`).
    pub action: Action,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: DEFAULT_SEPARATOR.to_string(),
            regex: DEFAULT_REGEX.to_string(),
            modulus: 0,
            target_label: String::new(),
            replacement: DEFAULT_REPLACEMENT.to_string(),
            action: Action::Replace,
        }
    }
}

impl RelabelConfig {
    /// Checks the rule the way Prometheus 2 does when loading a
    /// configuration (legacy label names). The message is Prometheus' own
    /// wording.
    pub fn validate(&self) -> Result<(), String> {
        self.validate_with(NameValidation::Legacy)
    }

    /// [`RelabelConfig::validate`] under a chosen name validation scheme.
    pub fn validate_with(&self, names: NameValidation) -> Result<(), String> {
        self.check(names).map(|_| ())
    }

    /// Validates and compiles the regex: what Prometheus checks while
    /// parsing (source label names, the regex) and then in its validation,
    /// in Prometheus' order.
    pub(super) fn check(&self, names: NameValidation) -> Result<GoRegex, String> {
        if let Some(bad) = self.source_labels.iter().find(|l| !names.is_valid_label_name(l)) {
            return Err(format!("{bad:?} is not a valid label name"));
        }
        let regex = goregex::compile_anchored(&self.regex)?;
        let action = self.action;
        use Action::*;
        if action == HashMod && self.modulus == 0 {
            return Err("relabel configuration for hashmod requires non-zero modulus".to_string());
        }
        if matches!(action, Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual) && self.target_label.is_empty() {
            return Err(format!("relabel configuration for {action} action requires 'target_label' value"));
        }
        let invalid_target = || Err(format!("{:?} is invalid 'target_label' for {action} action", self.target_label));
        if matches!(action, Replace | Lowercase | Uppercase | KeepEqual | DropEqual) && !names.is_valid_target_template(&self.target_label)
        {
            return invalid_target();
        }
        if matches!(action, Lowercase | Uppercase | KeepEqual | DropEqual) && self.replacement != DEFAULT_REPLACEMENT {
            return Err(format!("'replacement' can not be set for {action} action"));
        }
        if action == LabelMap && !names.is_valid_target_template(&self.replacement) {
            return Err(format!("{:?} is invalid 'replacement' for {action} action", self.replacement));
        }
        if action == HashMod && !names.is_valid_label_name(&self.target_label) {
            return invalid_target();
        }
        // Prometheus compares these with the defaults; a `regex` written out
        // as the default "(.*)" is accepted here (Prometheus can tell it
        // was written, this struct cannot).
        if matches!(action, KeepEqual | DropEqual)
            && (self.regex != DEFAULT_REGEX
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!("{action} action requires only 'source_labels' and `target_label`, and no other fields"));
        }
        if matches!(action, LabelDrop | LabelKeep)
            && (!self.source_labels.is_empty()
                || !self.target_label.is_empty()
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!("{action} action requires only 'regex', and no other fields"));
        }
        Ok(regex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<RelabelConfig, String> {
        serde_saphyr::from_str::<RelabelConfig>(yaml).map_err(|e| e.to_string())
    }

    /// The validation message of a rule written in YAML.
    fn invalid(yaml: &str) -> String {
        parse(yaml).expect("parses").validate().expect_err("must be invalid")
    }

    #[test]
    fn defaults_are_prometheus_defaults() {
        let c = parse("target_label: x").expect("parses");
        assert_eq!(c.source_labels, Vec::<String>::new());
        assert_eq!(c.separator, ";");
        assert_eq!(c.regex, "(.*)");
        assert_eq!(c.replacement, "$1");
        assert_eq!(c.modulus, 0);
        assert_eq!(c.action, Action::Replace);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn action_is_case_insensitive() {
        for (text, want) in
            [("Replace", Action::Replace), ("KEEP", Action::Keep), ("labelMap", Action::LabelMap), ("HashMod", Action::HashMod)]
        {
            let c = parse(&format!("action: {text}\nmodulus: 2\ntarget_label: t")).expect("parses");
            assert_eq!(c.action, want, "{text}");
        }
    }

    #[test]
    fn unknown_and_empty_actions() {
        let err = parse("action: foo").expect_err("unknown action");
        assert!(err.contains(r#"unknown relabel action "foo""#), "{err}");
        let err = parse("action: ''").expect_err("empty string");
        assert!(err.contains(r#"unknown relabel action """#), "{err}");
        let err = parse("action:\ntarget_label: x").expect_err("null action");
        assert!(err.contains("relabel action cannot be empty"), "{err}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = parse("source_labels: [a]\ntarget: b").expect_err("unknown field");
        assert!(err.contains("target"), "{err}");
    }

    #[test]
    fn nulls_are_zero_values() {
        let c = parse("regex:\nseparator:\nreplacement:\ntarget_label: x\nsource_labels:").expect("parses");
        assert_eq!((c.regex.as_str(), c.separator.as_str(), c.replacement.as_str()), ("", "", ""));
        assert!(c.source_labels.is_empty());
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn serializes_with_prometheus_names() {
        let c = RelabelConfig { action: Action::KeepEqual, target_label: "t".into(), ..Default::default() };
        let yaml = serde_saphyr::to_string(&c).expect("serializes");
        assert!(yaml.contains("action: keepequal"), "{yaml}");
        assert_eq!(parse(&yaml).expect("round trip"), c);
    }

    /// Every check of Prometheus' `Config.UnmarshalYAML`/`Validate`, with
    /// its exact message (the messages were confirmed with `promtool check
    /// config` 2.42).
    #[test]
    fn validation_messages() {
        let cases = [
            ("action: hashmod\ntarget_label: t", "relabel configuration for hashmod requires non-zero modulus"),
            ("action: replace", "relabel configuration for replace action requires 'target_label' value"),
            ("action: hashmod\nmodulus: 2", "relabel configuration for hashmod action requires 'target_label' value"),
            ("action: lowercase", "relabel configuration for lowercase action requires 'target_label' value"),
            ("action: uppercase", "relabel configuration for uppercase action requires 'target_label' value"),
            ("action: keepequal", "relabel configuration for keepequal action requires 'target_label' value"),
            ("action: dropequal", "relabel configuration for dropequal action requires 'target_label' value"),
            ("target_label: 1a", r#""1a" is invalid 'target_label' for replace action"#),
            ("target_label: a-b", r#""a-b" is invalid 'target_label' for replace action"#),
            ("target_label: '${1'", r#""${1" is invalid 'target_label' for replace action"#),
            ("target_label: 'a$'", r#""a$" is invalid 'target_label' for replace action"#),
            ("action: lowercase\ntarget_label: a.b", r#""a.b" is invalid 'target_label' for lowercase action"#),
            ("action: uppercase\ntarget_label: é", r#""é" is invalid 'target_label' for uppercase action"#),
            ("action: keepequal\ntarget_label: '-'", r#""-" is invalid 'target_label' for keepequal action"#),
            ("action: lowercase\ntarget_label: t\nreplacement: x", "'replacement' can not be set for lowercase action"),
            ("action: uppercase\ntarget_label: t\nreplacement: ''", "'replacement' can not be set for uppercase action"),
            ("action: labelmap\nreplacement: 'a-$1'", r#""a-$1" is invalid 'replacement' for labelmap action"#),
            ("action: labelmap\nreplacement: ''", r#""" is invalid 'replacement' for labelmap action"#),
            ("action: hashmod\nmodulus: 2\ntarget_label: '${1}'", r#""${1}" is invalid 'target_label' for hashmod action"#),
            ("action: hashmod\nmodulus: 2\ntarget_label: a.b", r#""a.b" is invalid 'target_label' for hashmod action"#),
            (
                "action: keepequal\ntarget_label: t\nregex: a",
                "keepequal action requires only 'source_labels' and `target_label`, and no other fields",
            ),
            (
                "action: dropequal\ntarget_label: t\nseparator: ','",
                "dropequal action requires only 'source_labels' and `target_label`, and no other fields",
            ),
            (
                "action: keepequal\ntarget_label: t\nmodulus: 3",
                "keepequal action requires only 'source_labels' and `target_label`, and no other fields",
            ),
            ("action: labeldrop\nsource_labels: [a]", "labeldrop action requires only 'regex', and no other fields"),
            ("action: labelkeep\ntarget_label: a", "labelkeep action requires only 'regex', and no other fields"),
            ("action: labelkeep\nseparator: ''", "labelkeep action requires only 'regex', and no other fields"),
            ("action: labeldrop\nreplacement: x", "labeldrop action requires only 'regex', and no other fields"),
            ("action: labeldrop\nmodulus: 1", "labeldrop action requires only 'regex', and no other fields"),
            ("source_labels: [1a]\ntarget_label: t", r#""1a" is not a valid label name"#),
            ("source_labels: ['']\ntarget_label: t", r#""" is not a valid label name"#),
            ("regex: 'a('\ntarget_label: t", "error parsing regexp: missing closing ): `^(?s:a()$`"),
        ];
        for (yaml, want) in cases {
            assert_eq!(invalid(yaml), want, "{yaml}");
        }
    }

    #[test]
    fn valid_rules() {
        for yaml in [
            "target_label: '${1}'",
            "target_label: 'x_$1'",
            "target_label: '$1x'",
            "target_label: '_${1}_'",
            "target_label: 'foo${bar}foo'",
            "target_label: __address__\nregex: ''",
            "action: lowercase\ntarget_label: '${1}'", // Prometheus 2 checks this with its template pattern too
            "action: labelmap\nregex: '__meta_(.+)'",
            "action: labelmap\nregex: 'x_(.+)'\nreplacement: 'y_${1}'",
            "action: labeldrop\nregex: 'tmp_.*'",
            "action: keepequal\nsource_labels: [a]\ntarget_label: b",
            "action: hashmod\nsource_labels: [a]\nmodulus: 8\ntarget_label: __tmp_hash",
            "action: drop\nregex: 'a{'",
        ] {
            let c = parse(yaml).expect("parses");
            assert_eq!(c.validate(), Ok(()), "{yaml}");
        }
    }

    /// The legacy target pattern, with upstream's own table of examples.
    #[test]
    fn legacy_target_template() {
        for (s, valid) in [
            ("-label", false),
            ("label", true),
            ("label${1}", true),
            ("${1}label", true),
            ("${1}", true),
            ("${", false),
            ("$", false),
            ("${}", false),
            ("foo${", false),
            ("$1", true),
            ("asd$2asd", true),
            ("-foo${1}bar-", false),
            ("bar.foo${1}bar", false),
            ("_${1}_", true),
            ("foo${bar}foo", true),
            ("1a", false),
            ("", false),
        ] {
            assert_eq!(NameValidation::Legacy.is_valid_target_template(s), valid, "{s:?}");
        }
    }

    #[test]
    fn utf8_names() {
        let names = NameValidation::Utf8;
        for yaml in [
            "target_label: a.b",
            "target_label: 1a",
            "source_labels: [1a, é]\ntarget_label: t",
            "action: hashmod\nmodulus: 1\ntarget_label: '-'",
        ] {
            assert_eq!(parse(yaml).expect("parses").validate_with(names), Ok(()), "{yaml}");
        }
        assert_eq!(
            parse("source_labels: ['']\ntarget_label: t").expect("parses").validate_with(names),
            Err(r#""" is not a valid label name"#.to_string())
        );
        assert!(names.is_valid_label_name("http.method") && !names.is_valid_label_name(""));
        assert!(NameValidation::Legacy.is_valid_label_name("_a1") && !NameValidation::Legacy.is_valid_label_name("a.b"));
    }
}
