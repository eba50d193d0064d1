//! Which ServiceMonitors and AlertRules a Prometheus object takes: label
//! selectors with Kubernetes' semantics, and the null-versus-empty rules of
//! prometheus-operator (docs/operator.md has the table).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether `labels` match `sel` (`matchLabels` and every `matchExpressions`
/// requirement). An invalid requirement is an error naming it.
pub fn matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> Result<bool, String> {
    for (k, v) in sel.match_labels.iter().flatten() {
        if labels.get(k) != Some(v) {
            return Ok(false);
        }
    }
    for r in sel.match_expressions.iter().flatten() {
        let values = r.values.as_deref().unwrap_or_default();
        let have = labels.get(&r.key);
        let ok = match r.operator.as_str() {
            "In" if values.is_empty() => return Err(format!("selector {:?} In: values must not be empty", r.key)),
            "NotIn" if values.is_empty() => return Err(format!("selector {:?} NotIn: values must not be empty", r.key)),
            "In" => have.is_some_and(|h| values.contains(h)),
            "NotIn" => have.is_none_or(|h| !values.contains(h)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            op => return Err(format!("selector {:?}: unknown operator {op:?}", r.key)),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// An object selector: `None` selects nothing, `{}` everything.
pub fn object_selected(sel: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> Result<bool, String> {
    match sel {
        None => Ok(false),
        Some(s) => matches(s, labels),
    }
}

/// A namespace selector: `None` means the Prometheus object's own
/// namespace, `{}` every namespace; `namespace_labels` gives a namespace's
/// labels (none if unknown).
pub fn namespace_selected(
    sel: Option<&LabelSelector>,
    own_namespace: &str,
    namespace: &str,
    namespace_labels: Option<&BTreeMap<String, String>>,
) -> Result<bool, String> {
    match sel {
        None => Ok(namespace == own_namespace),
        Some(s) => {
            // The namespace's name is always a label (kubernetes.io/metadata.name).
            let mut labels = namespace_labels.cloned().unwrap_or_default();
            labels.entry("kubernetes.io/metadata.name".into()).or_insert_with(|| namespace.to_string());
            matches(s, &labels)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn req(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn null_selects_nothing_and_empty_selects_everything() {
        let l = labels(&[("team", "a")]);
        assert!(!object_selected(None, &l).expect("valid"));
        assert!(object_selected(Some(&LabelSelector::default()), &l).expect("valid"));
        assert!(namespace_selected(None, "mon", "mon", None).expect("valid"));
        assert!(!namespace_selected(None, "mon", "apps", None).expect("valid"));
        assert!(namespace_selected(Some(&LabelSelector::default()), "mon", "apps", None).expect("valid"));
    }

    #[test]
    fn match_labels_and_expressions() {
        let l = labels(&[("team", "a"), ("tier", "web")]);
        let sel = |ml: &[(&str, &str)], ex: Vec<LabelSelectorRequirement>| LabelSelector {
            match_labels: (!ml.is_empty()).then(|| labels(ml)),
            match_expressions: (!ex.is_empty()).then_some(ex),
        };
        assert!(matches(&sel(&[("team", "a")], vec![]), &l).expect("valid"));
        assert!(!matches(&sel(&[("team", "b")], vec![]), &l).expect("valid"));
        assert!(matches(&sel(&[], vec![req("tier", "In", &["web", "db"])]), &l).expect("valid"));
        assert!(!matches(&sel(&[], vec![req("tier", "NotIn", &["web"])]), &l).expect("valid"));
        assert!(matches(&sel(&[], vec![req("env", "NotIn", &["prod"])]), &l).expect("valid"));
        assert!(matches(&sel(&[], vec![req("team", "Exists", &[])]), &l).expect("valid"));
        assert!(!matches(&sel(&[], vec![req("team", "DoesNotExist", &[])]), &l).expect("valid"));
        assert!(matches(&sel(&[], vec![req("x", "Near", &[])]), &l).is_err());
        assert!(matches(&sel(&[], vec![req("x", "In", &[])]), &l).is_err());
    }

    #[test]
    fn namespaces_match_by_their_name_label() {
        let sel = LabelSelector { match_labels: Some(labels(&[("kubernetes.io/metadata.name", "apps")])), match_expressions: None };
        assert!(namespace_selected(Some(&sel), "mon", "apps", None).expect("valid"));
        assert!(!namespace_selected(Some(&sel), "mon", "other", None).expect("valid"));
    }
}
