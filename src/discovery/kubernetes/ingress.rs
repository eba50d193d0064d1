//! The `ingress` role: one target per rule host and path, for probing the
//! ingress from outside; Prometheus' `discovery/kubernetes/ingress.go`.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{Ingress, IngressRule};

use super::meta::{NAMESPACE_LABEL, add_object_meta_labels, namespace_of, namespaced_source, s};
use crate::discovery::TargetGroup;
use crate::discovery::target_group::ADDRESS_LABEL;

const INGRESS_SCHEME: &str = "__meta_kubernetes_ingress_scheme";
const INGRESS_HOST: &str = "__meta_kubernetes_ingress_host";
const INGRESS_PATH: &str = "__meta_kubernetes_ingress_path";
const INGRESS_CLASS_NAME: &str = "__meta_kubernetes_ingress_class_name";

/// The paths of a rule; a rule without an `http` section stands for `/`, an
/// empty path is `/` too (an `http` section with no paths gives none).
fn rule_paths(rule: &IngressRule) -> Vec<String> {
    match &rule.http {
        None => vec!["/".to_string()],
        Some(http) => http.paths.iter().map(|p| p.path.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "/".to_string())).collect(),
    }
}

/// Whether `host` equals `pattern` or matches it as a `*.`-wildcard of the
/// same number of labels (a TLS host pattern); upstream's
/// `matchesHostnamePattern`.
fn matches_hostname_pattern(pattern: &str, host: &str) -> bool {
    if pattern == host {
        return true;
    }
    let pattern_parts: Vec<&str> = pattern.split('.').collect();
    let host_parts: Vec<&str> = host.split('.').collect();
    match (pattern_parts.split_first(), host_parts.split_first()) {
        (Some((&"*", pattern_rest)), Some((_, host_rest))) => pattern_rest == host_rest,
        _ => false,
    }
}

/// The target group of an ingress, source `ingress/<namespace>/<name>`:
/// per rule and path a target addressed by the rule's host, with scheme
/// `https` when a TLS entry covers the host, else `http`.
pub fn ingress_group(ing: &Ingress) -> TargetGroup {
    let mut labels = BTreeMap::from([(NAMESPACE_LABEL.to_string(), namespace_of(&ing.metadata).to_string())]);
    let spec = ing.spec.as_ref();
    if let Some(cls) = spec.and_then(|sp| sp.ingress_class_name.as_ref()) {
        labels.insert(INGRESS_CLASS_NAME.to_string(), cls.clone());
    }
    add_object_meta_labels(&mut labels, &ing.metadata, "ingress");
    let mut tg = TargetGroup { source: namespaced_source("ingress", &ing.metadata), targets: Vec::new(), labels };

    let tls_hosts: Vec<&str> =
        spec.and_then(|sp| sp.tls.as_ref()).into_iter().flatten().flat_map(|tls| tls.hosts.iter().flatten()).map(String::as_str).collect();
    for rule in spec.and_then(|sp| sp.rules.as_ref()).into_iter().flatten() {
        let host = s(&rule.host);
        let scheme = if tls_hosts.iter().any(|p| matches_hostname_pattern(p, &host)) { "https" } else { "http" };
        for path in rule_paths(rule) {
            tg.targets.push(BTreeMap::from([
                (ADDRESS_LABEL.to_string(), host.clone()),
                (INGRESS_SCHEME.to_string(), scheme.to_string()),
                (INGRESS_HOST.to_string(), host.clone()),
                (INGRESS_PATH.to_string(), path),
            ]));
        }
    }
    tg
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::meta::testutil::{ls, obj};
    use super::*;

    fn backend() -> serde_json::Value {
        json!({"service": {"name": "s", "port": {"number": 80}}})
    }

    /// Upstream's `makeIngress`, with TLS for `*.example.com` (matching
    /// `test.example.com`) and `nonmatching`.
    fn ingress(tls: serde_json::Value) -> Ingress {
        obj(json!({
            "metadata": {"name": "testingress", "namespace": "default",
                "labels": {"test/label": "testvalue"}, "annotations": {"test/annotation": "testannotationvalue"}},
            "spec": {
                "ingressClassName": "testclass",
                "tls": tls,
                "rules": [
                    {"host": "example.com", "http": {"paths": [
                        {"path": "/", "pathType": "Prefix", "backend": backend()},
                        {"path": "/foo", "pathType": "Prefix", "backend": backend()}
                    ]}},
                    {"host": "test.example.com", "http": {"paths": [{"pathType": "Prefix", "backend": backend()}]}},
                    {"host": "nohttp.example.com"}
                ]
            }
        }))
    }

    fn target(host: &str, scheme: &str, path: &str) -> BTreeMap<String, String> {
        ls(&[
            ("__address__", host),
            ("__meta_kubernetes_ingress_scheme", scheme),
            ("__meta_kubernetes_ingress_host", host),
            ("__meta_kubernetes_ingress_path", path),
        ])
    }

    #[test]
    fn one_target_per_rule_path() {
        let tg = ingress_group(&ingress(json!([])));
        assert_eq!(tg.source, "ingress/default/testingress");
        assert_eq!(
            tg.targets,
            vec![
                target("example.com", "http", "/"),
                target("example.com", "http", "/foo"),
                target("test.example.com", "http", "/"),
                target("nohttp.example.com", "http", "/"),
            ]
        );
        assert_eq!(
            tg.labels,
            ls(&[
                ("__meta_kubernetes_namespace", "default"),
                ("__meta_kubernetes_ingress_name", "testingress"),
                ("__meta_kubernetes_ingress_class_name", "testclass"),
                ("__meta_kubernetes_ingress_label_test_label", "testvalue"),
                ("__meta_kubernetes_ingress_labelpresent_test_label", "true"),
                ("__meta_kubernetes_ingress_annotation_test_annotation", "testannotationvalue"),
                ("__meta_kubernetes_ingress_annotationpresent_test_annotation", "true"),
            ])
        );
    }

    #[test]
    fn tls_wildcard_makes_https() {
        let tg = ingress_group(&ingress(json!([{"hosts": ["*.example.com", "nonmatching"]}])));
        let schemes: Vec<&str> = tg.targets.iter().map(|t| t["__meta_kubernetes_ingress_scheme"].as_str()).collect();
        // `*.example.com` does not match `example.com` (fewer labels).
        assert_eq!(schemes, ["http", "http", "https", "https"]);
        assert!(matches_hostname_pattern("a.b", "a.b"));
        assert!(!matches_hostname_pattern("*.b", "x.y.b"));
        assert!(!matches_hostname_pattern("a.*.c", "a.b.c"));
    }
}
