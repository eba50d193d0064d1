//! Relabeling as a whole: the golden table in `tests/relabel/golden.yaml`
//! and a fuzz test of random rules on random label sets.

use std::collections::BTreeMap;

use hearth::model::{Labels, LabelsBuilder};
use hearth::relabel::{NameValidation, RelabelConfig, Relabeler};
use proptest::prelude::*;

/// One golden case: rules applied to input labels, with the expected result.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Golden {
    name: String,
    #[serde(default)]
    names: Option<String>,
    input: BTreeMap<String, String>,
    rules: Vec<RelabelConfig>,
    #[serde(default)]
    output: Option<BTreeMap<String, String>>,
    #[serde(default)]
    dropped: bool,
}

#[test]
fn relabel_golden_cases() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/relabel/golden.yaml");
    let text = std::fs::read_to_string(path).expect("golden file readable");
    let cases: Vec<Golden> = serde_saphyr::from_str(&text).expect("golden file parses");
    assert!(cases.len() >= 50, "the golden table is complete ({} cases)", cases.len());
    for case in &cases {
        let names = match case.names.as_deref() {
            None | Some("legacy") => NameValidation::Legacy,
            Some("utf8") => NameValidation::Utf8,
            Some(other) => panic!("{}: unknown name scheme {other}", case.name),
        };
        assert!(case.dropped != case.output.is_some(), "{}: give exactly one of output and dropped", case.name);
        let relabeler = Relabeler::with_validation(&case.rules, names).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let got = relabeler.process(&Labels::from_pairs(case.input.clone()));
        let got: Option<BTreeMap<String, String>> = got.map(|l| l.iter().map(|l| (l.name.clone(), l.value.clone())).collect());
        assert_eq!(got, case.output, "{}", case.name);

        // Target relabeling goes through a builder: same result.
        let mut b = LabelsBuilder::new();
        for (n, v) in &case.input {
            b.set(n.as_str(), v.as_str());
        }
        let kept = relabeler.process_builder(&mut b);
        assert_eq!(kept, !case.dropped, "{}: process_builder", case.name);
        if let Some(want) = &case.output {
            assert_eq!(b.build(), Labels::from_pairs(want.clone()), "{}: process_builder", case.name);
        }
    }
}

/// Rules as Prometheus reads them from a configuration file: a list under
/// `relabel_configs`, with errors naming the rule.
#[test]
fn relabel_rule_list_errors_name_the_rule() {
    let yaml = "- source_labels: [a]\n  target_label: b\n- action: Labelmap\n  regex: '(.*'";
    let configs: Vec<RelabelConfig> = serde_saphyr::from_str(yaml).expect("parses");
    let err = Relabeler::new(&configs).expect_err("the second rule's regex is invalid");
    assert_eq!(err.index, 1);
    assert_eq!(err.message, "error parsing regexp: missing closing ): `^(?s:(.*)$`");
}

const NAMES: &[&str] = &["a", "b", "c", "__meta_x", "__meta_y_a", "__tmp", "job", "1a", "a.b", "é", ""];
const VALUES: &[&str] = &["", "foo", "a;b", "line1\nline2", "ΣAß", "123", "x{y}", "İ", "ᾳ"];
const ACTIONS: &[&str] = &[
    "replace",
    "Replace",
    "keep",
    "drop",
    "keepequal",
    "dropequal",
    "hashmod",
    "labelmap",
    "labeldrop",
    "labelkeep",
    "lowercase",
    "UPPERCASE",
];
const REGEXES: &[&str] = &[
    "(.*)",
    ".*",
    "",
    "(a|b)",
    r"\d+",
    "f(.*)",
    "(.+);(.*)",
    "__meta_(.+)",
    "(?P<n>.)(.*)",
    "a)|(b",
    "a{",
    "[[]",
    r"\Q.\E",
    "(?i)FOO",
    "(",
    "a**",
    "(?x)a",
    r"\8",
    "[z-a]",
    "(?P<x>a)|(?P<x>b)",
    r"(\w)(\w*)",
    "x*",
    "(|x)",
    "a(?i)+",
];
const TEMPLATES: &[&str] =
    &["$1", "${1}", "$1x", "${1}x", "$$", "$n", "${x}", "", "t", "$0", "$2", "a$", "${1", "$é", "__param_$1", "a.b", "1a"];
const MODULI: &[u64] = &[0, 1, 2, 7, 1000, u64::MAX];

/// A regex: one from the list, or a random string of regex syntax.
fn regex() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(REGEXES).prop_map(str::to_string),
        proptest::collection::vec(
            proptest::sample::select(
                &["a", "(", ")", "|", "*", "+", "?", "[", "]", "^", "{2}", "{", r"\d", r"\b", "(?i)", ".", "$", "é"][..]
            ),
            0..8
        )
        .prop_map(|parts| parts.concat()),
    ]
}

fn rule() -> impl Strategy<Value = RelabelConfig> {
    (
        proptest::option::of(proptest::sample::select(ACTIONS)),
        proptest::collection::vec(proptest::sample::select(NAMES), 0..3),
        proptest::option::of(proptest::sample::select(&[";", "", ","][..])),
        proptest::option::of(regex()),
        proptest::option::of(proptest::sample::select(TEMPLATES)),
        proptest::option::of(proptest::sample::select(TEMPLATES)),
        proptest::option::of(proptest::sample::select(MODULI)),
    )
        .prop_map(|(action, sources, separator, regex, target, replacement, modulus)| {
            // Through YAML, as a configuration file would give them.
            let mut yaml = String::from("{");
            let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
            if let Some(a) = action {
                yaml += &format!("action: {a}, ");
            }
            if !sources.is_empty() {
                let list: Vec<String> = sources.iter().map(|s| quote(s)).collect();
                yaml += &format!("source_labels: [{}], ", list.join(", "));
            }
            for (field, value) in [("separator", separator), ("target_label", target), ("replacement", replacement)] {
                if let Some(v) = value {
                    yaml += &format!("{field}: {}, ", quote(v));
                }
            }
            if let Some(r) = regex {
                yaml += &format!("regex: {}, ", quote(&r));
            }
            if let Some(m) = modulus {
                yaml += &format!("modulus: {m}, ");
            }
            yaml += "}";
            serde_saphyr::from_str::<RelabelConfig>(&yaml).unwrap_or_else(|e| panic!("generated rule {yaml} parses: {e}"))
        })
}

fn label_set() -> impl Strategy<Value = Labels> {
    proptest::collection::vec((proptest::sample::select(NAMES), proptest::sample::select(VALUES)), 0..7).prop_map(Labels::from_pairs)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Random rule lists (many of them invalid) on random label sets: never
    /// a panic, and a kept result is always sorted, unique and free of empty
    /// values, the same through a builder.
    #[test]
    fn relabel_fuzz_never_panics_and_keeps_labels_well_formed(
        rules in proptest::collection::vec(rule(), 1..5),
        input in label_set(),
        utf8 in any::<bool>(),
    ) {
        let names = if utf8 { NameValidation::Utf8 } else { NameValidation::Legacy };
        let Ok(relabeler) = Relabeler::with_validation(&rules, names) else {
            return Ok(());
        };
        let out = relabeler.process(&input);
        if let Some(out) = &out {
            for pair in out.as_slice().windows(2) {
                prop_assert!(pair[0].name < pair[1].name, "not sorted/unique: {:?}", out);
            }
            prop_assert!(out.iter().all(|l| !l.value.is_empty()), "empty value in {:?}", out);
        }
        let mut b = LabelsBuilder::from_labels(&input);
        prop_assert_eq!(relabeler.process_builder(&mut b), out.is_some());
        if let Some(out) = out {
            prop_assert_eq!(b.build(), out);
        }
    }
}
