// TEMPORARY differential harness (removed before hand-off).
use std::collections::BTreeMap;

use hearth::model::Labels;
use hearth::relabel::{NameValidation, RelabelConfig, Relabeler};

#[derive(serde::Deserialize)]
struct Case {
    input: BTreeMap<String, String>,
    rules: String,
    scheme: String,
}

#[test]
#[ignore]
fn relabel_differential_dump() {
    let path = std::env::var("CASES").expect("CASES");
    let cases: Vec<Case> = serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
    let mut out = Vec::new();
    for c in cases {
        let scheme = if c.scheme == "legacy" { NameValidation::Legacy } else { NameValidation::Utf8 };
        let r = match serde_saphyr::from_str::<Vec<RelabelConfig>>(&c.rules) {
            Err(e) => serde_json::json!({"error": format!("PARSE {e}")}),
            Ok(cfgs) => match Relabeler::with_validation(&cfgs, scheme) {
                Err(e) => serde_json::json!({"error": e.message}),
                Ok(r) => match r.process(&Labels::from_pairs(c.input.clone())) {
                    None => serde_json::json!({"dropped": true}),
                    Some(l) => {
                        let m: BTreeMap<String, String> = l.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
                        serde_json::json!({"output": m})
                    }
                },
            },
        };
        out.push(r);
    }
    std::fs::write(std::env::var("OUT").expect("OUT"), serde_json::to_string(&out).expect("json")).expect("write");
}
