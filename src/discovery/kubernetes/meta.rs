//! Helpers shared by the Kubernetes SD role conversions: the label-name
//! sanitizer, the object-metadata labels every role exports, and the lookup
//! of related objects (pods, services, nodes) that the endpoint roles attach.
//!
//! Mirrors the helpers of Prometheus' `discovery/kubernetes/kubernetes.go` and
//! `endpoints.go` (`addObjectMetaLabels`, `addNodeLabels`, ...), so that
//! relabeling rules written for Prometheus see the very same label names.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The prefix of every label this discovery produces.
pub(crate) const META_PREFIX: &str = "__meta_kubernetes_";
/// `__meta_kubernetes_namespace`, set by every namespaced role.
pub(crate) const NAMESPACE_LABEL: &str = "__meta_kubernetes_namespace";
/// The value of the `_labelpresent_`/`_annotationpresent_` labels.
pub(crate) const PRESENT_VALUE: &str = "true";

/// A label set; a `BTreeMap` so groups compare and print deterministically.
pub(crate) type LabelSet = BTreeMap<String, String>;

/// Replaces every character outside `[a-zA-Z0-9_]` with `_`, like Prometheus'
/// `strutil.SanitizeLabelName`.
///
/// Kubernetes label and annotation keys may contain `.`, `/` and `-`, which a
/// Prometheus label name cannot; the result is always appended to a valid
/// prefix, so a leading digit needs no treatment (as upstream). Each
/// non-ASCII character becomes a single `_`, as Go's regexp replaces per rune.
pub fn sanitize_label_name(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

/// Lookups of related objects the endpoint roles attach metadata from.
///
/// The watch layer implements it over its caches; the conversions only read,
/// so they stay pure and testable with a plain map.
pub trait Related {
    /// The pod `namespace/name`, if known.
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>>;
    /// The service `namespace/name`, if known.
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>>;
    /// The node `name`, if known.
    fn node(&self, name: &str) -> Option<Arc<Node>>;
}

/// An object's name, `""` when unset (Go's zero value).
pub(crate) fn name_of(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or("")
}

/// An object's namespace, `""` when unset (Go's zero value).
pub(crate) fn namespace_of(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or("")
}

/// An optional string field as Go sees it: absent is the empty string.
pub(crate) fn s(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

/// `<kind>/<namespace>/<name>`, the group source of a namespaced object.
pub(crate) fn namespaced_source(kind: &str, meta: &ObjectMeta) -> String {
    format!("{kind}/{}/{}", namespace_of(meta), name_of(meta))
}

/// Adds `<resource>_label_<k>`, `<resource>_labelpresent_<k>` and the same
/// for annotations, keys sanitized; upstream's `addObjectAnnotationsAndLabels`.
pub(crate) fn add_object_annotations_and_labels(ls: &mut LabelSet, meta: &ObjectMeta, resource: &str) {
    for (k, v) in meta.labels.iter().flatten() {
        let ln = sanitize_label_name(k);
        ls.insert(format!("{META_PREFIX}{resource}_label_{ln}"), v.clone());
        ls.insert(format!("{META_PREFIX}{resource}_labelpresent_{ln}"), PRESENT_VALUE.to_string());
    }
    for (k, v) in meta.annotations.iter().flatten() {
        let ln = sanitize_label_name(k);
        ls.insert(format!("{META_PREFIX}{resource}_annotation_{ln}"), v.clone());
        ls.insert(format!("{META_PREFIX}{resource}_annotationpresent_{ln}"), PRESENT_VALUE.to_string());
    }
}

/// Adds `<role>_name` plus the labels and annotations; upstream's
/// `addObjectMetaLabels`. `role` is the role's configuration name (`pod`,
/// `service`, `node`, `endpoints`, `endpointslice`, `ingress`).
pub(crate) fn add_object_meta_labels(ls: &mut LabelSet, meta: &ObjectMeta, role: &str) {
    ls.insert(format!("{META_PREFIX}{role}_name"), name_of(meta).to_string());
    add_object_annotations_and_labels(ls, meta, role);
}

/// The labels `attach_metadata.node` adds for a node: its name, labels and
/// annotations (not its addresses or provider ID), as upstream's
/// `addNodeLabels`. Merged over `target`, overriding on conflict as Go's
/// `LabelSet.Merge` does.
pub(crate) fn add_node_labels(target: &mut LabelSet, node: Option<&Node>) {
    if let Some(node) = node {
        add_object_meta_labels(target, &node.metadata, "node");
    }
}

/// `host:port`, bracketing IPv6 hosts, like Go's `net.JoinHostPort`.
pub(crate) fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// Test helpers shared by the role modules.
#[cfg(test)]
pub(crate) mod testutil {
    use super::*;

    /// A label set from literal pairs.
    pub(crate) fn ls(pairs: &[(&str, &str)]) -> LabelSet {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// A Kubernetes object from its JSON form, as the API server sends it.
    pub(crate) fn obj<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).expect("test object must deserialize")
    }

    /// [`Related`] over plain lists.
    #[derive(Default)]
    pub(crate) struct Objects {
        pub(crate) pods: Vec<Arc<Pod>>,
        pub(crate) services: Vec<Arc<Service>>,
        pub(crate) nodes: Vec<Arc<Node>>,
    }

    impl Related for Objects {
        fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
            self.pods.iter().find(|p| namespace_of(&p.metadata) == namespace && name_of(&p.metadata) == name).cloned()
        }
        fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
            self.services.iter().find(|p| namespace_of(&p.metadata) == namespace && name_of(&p.metadata) == name).cloned()
        }
        fn node(&self, name: &str) -> Option<Arc<Node>> {
            self.nodes.iter().find(|p| name_of(&p.metadata) == name).cloned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_like_prometheus() {
        assert_eq!(sanitize_label_name("app.kubernetes.io/name"), "app_kubernetes_io_name");
        assert_eq!(sanitize_label_name("a-b_C9"), "a_b_C9");
        assert_eq!(sanitize_label_name("1x"), "1x");
        assert_eq!(sanitize_label_name("é"), "_");
        assert_eq!(sanitize_label_name(""), "");
    }

    #[test]
    fn joins_ipv6_in_brackets() {
        assert_eq!(join_host_port("1.2.3.4", "80"), "1.2.3.4:80");
        assert_eq!(join_host_port("::1", "80"), "[::1]:80");
    }

    #[test]
    fn object_meta_labels() {
        let meta = ObjectMeta {
            name: Some("n".into()),
            labels: Some(BTreeMap::from([("app/x".into(), "v".into())])),
            annotations: Some(BTreeMap::from([("a.b".into(), "w".into())])),
            ..Default::default()
        };
        let mut ls = LabelSet::new();
        add_object_meta_labels(&mut ls, &meta, "pod");
        let want: LabelSet = [
            ("__meta_kubernetes_pod_name", "n"),
            ("__meta_kubernetes_pod_label_app_x", "v"),
            ("__meta_kubernetes_pod_labelpresent_app_x", "true"),
            ("__meta_kubernetes_pod_annotation_a_b", "w"),
            ("__meta_kubernetes_pod_annotationpresent_a_b", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(ls, want);
    }
}
