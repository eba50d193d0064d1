//! What a rendered value must have to be a Kubernetes object, and how
//! messages name one (`Deployment monitoring/hearth-operator`).

use serde_json::Value;

/// `apiVersion` and `kind`, when `value` is a Kubernetes object.
pub fn type_of(value: &Value) -> Option<(&str, &str)> {
    Some((value.get("apiVersion")?.as_str()?, value.get("kind")?.as_str()?))
}

/// `metadata.name` (empty when missing).
pub fn name(value: &Value) -> &str {
    value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
}

/// `Kind namespace/name`, or `Kind name` for objects without a namespace.
pub fn describe(value: &Value) -> String {
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("object");
    match value.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => format!("{kind} {ns}/{}", name(value)),
        None => format!("{kind} {}", name(value)),
    }
}

/// The kind as file names spell it: `ClusterRoleBinding` → `clusterRoleBinding`.
pub fn lower_camel(kind: &str) -> String {
    let mut chars = kind.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn describes_namespaced_and_cluster_objects() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a", "namespace": "ns"}});
        assert_eq!(describe(&d), "Deployment ns/a");
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}});
        assert_eq!(describe(&ns), "Namespace ns");
        assert_eq!(type_of(&ns), Some(("v1", "Namespace")));
        assert_eq!(type_of(&json!({"kind": "Namespace"})), None);
    }

    #[test]
    fn kinds_become_lower_camel_case() {
        assert_eq!(lower_camel("ClusterRoleBinding"), "clusterRoleBinding");
        assert_eq!(lower_camel("CustomResourceDefinition"), "customResourceDefinition");
    }
}
