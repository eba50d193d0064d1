//! AlertRule → a Prometheus rule file, checked (PromQL expressions,
//! templates, names) with the same validation as `hearth check rules`, so
//! an invalid AlertRule is rejected before it reaches a server.

use serde_json::{Value, json};

use super::crd::AlertRule;

/// The rule file for `rule`, or why it is rejected.
pub fn rule_file(rule: &AlertRule) -> Result<String, String> {
    let groups: Vec<Value> = rule
        .spec
        .groups
        .iter()
        .map(|g| {
            let mut o = serde_json::Map::new();
            o.insert("name".into(), json!(g.name));
            if let Some(v) = &g.interval {
                o.insert("interval".into(), json!(v));
            }
            if let Some(v) = g.limit {
                o.insert("limit".into(), json!(v));
            }
            if let Some(v) = &g.query_offset {
                o.insert("query_offset".into(), json!(v));
            }
            if !g.labels.is_empty() {
                o.insert("labels".into(), json!(g.labels));
            }
            let rules: Vec<Value> = g
                .rules
                .iter()
                .map(|r| {
                    let mut o = serde_json::Map::new();
                    if let Some(v) = &r.record {
                        o.insert("record".into(), json!(v));
                    }
                    if let Some(v) = &r.alert {
                        o.insert("alert".into(), json!(v));
                    }
                    o.insert("expr".into(), json!(r.expr));
                    if let Some(v) = &r.for_ {
                        o.insert("for".into(), json!(v));
                    }
                    if let Some(v) = &r.keep_firing_for {
                        o.insert("keep_firing_for".into(), json!(v));
                    }
                    if !r.labels.is_empty() {
                        o.insert("labels".into(), json!(r.labels));
                    }
                    if !r.annotations.is_empty() {
                        o.insert("annotations".into(), json!(r.annotations));
                    }
                    Value::Object(o)
                })
                .collect();
            o.insert("rules".into(), Value::Array(rules));
            Value::Object(o)
        })
        .collect();
    let text = serde_saphyr::to_string(&json!({ "groups": groups })).map_err(|e| format!("encoding rules: {e}"))?;
    crate::rules::parse_rule_file(&text).map_err(|errs| errs.join("; "))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert_rule(groups: serde_json::Value) -> AlertRule {
        serde_json::from_value(json!({
            "apiVersion": "monitoring.hearth.dev/v1alpha1", "kind": "AlertRule",
            "metadata": {"name": "r", "namespace": "apps"}, "spec": {"groups": groups},
        }))
        .expect("AlertRule")
    }

    /// The CRD's CEL rule says so too, but preview never meets the API server.
    #[test]
    fn group_names_must_be_unique() {
        let rule = |name: &str| json!({"name": name, "rules": [{"record": "r", "expr": "up"}]});
        assert!(rule_file(&alert_rule(json!([rule("a"), rule("b")]))).is_ok());
        let err = rule_file(&alert_rule(json!([rule("a"), rule("b"), rule("a")]))).expect_err("duplicate group");
        assert!(err.contains("\"a\" is repeated"), "{err}");
    }
}
