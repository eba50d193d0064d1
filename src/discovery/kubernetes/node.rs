//! The `node` role: one target per node, the kubelet's address; Prometheus'
//! `discovery/kubernetes/node.go`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;

use super::meta::{LabelSet, META_PREFIX, add_object_meta_labels, join_host_port, name_of, s, sanitize_label_name};
use crate::discovery::TargetGroup;
use crate::discovery::target_group::ADDRESS_LABEL;

const NODE_PROVIDER_ID: &str = "__meta_kubernetes_node_provider_id";
const INSTANCE_LABEL: &str = "instance";

/// The address types in the order the target address is chosen from, as
/// Kubernetes' own `GetPreferredNodeAddress` (upstream's `nodeAddress`).
const ADDRESS_PREFERENCE: [&str; 6] = ["InternalIP", "InternalDNS", "ExternalIP", "ExternalDNS", "LegacyHostIP", "Hostname"];

/// The group labels of a node: provider ID, one `node_condition_<type>` per
/// status condition (lowercased), name, labels and annotations.
fn node_labels(node: &Node) -> LabelSet {
    let mut ls = BTreeMap::from([(NODE_PROVIDER_ID.to_string(), node.spec.as_ref().map(|sp| s(&sp.provider_id)).unwrap_or_default())]);
    let conditions = node.status.as_ref().and_then(|st| st.conditions.as_ref());
    for c in conditions.into_iter().flatten() {
        let name = format!("{META_PREFIX}node_condition_{}", sanitize_label_name(&c.type_.to_lowercase()));
        ls.insert(name, c.status.to_lowercase());
    }
    add_object_meta_labels(&mut ls, &node.metadata, "node");
    ls
}

/// The target group of a node, source `node/<name>`: one target at the
/// preferred address and the kubelet port, with `instance` set to the node
/// name and `node_address_<type>` for the first address of each type.
///
/// A node without any address has no target. (Upstream sends no update at
/// all then, keeping the node's previous target; sending the empty group
/// instead drops a target that cannot be reached anyway.)
pub fn node_group(node: &Node) -> TargetGroup {
    let name = name_of(&node.metadata);
    let mut tg = TargetGroup { source: format!("node/{name}"), targets: Vec::new(), labels: node_labels(node) };

    // First address of each type, in the node's order.
    let mut by_type: BTreeMap<&str, &str> = BTreeMap::new();
    let status = node.status.as_ref();
    for a in status.and_then(|st| st.addresses.as_ref()).into_iter().flatten() {
        by_type.entry(a.type_.as_str()).or_insert(a.address.as_str());
    }
    let Some(addr) = ADDRESS_PREFERENCE.iter().find_map(|ty| by_type.get(ty)) else {
        return tg;
    };
    let port = status.and_then(|st| st.daemon_endpoints.as_ref()).and_then(|de| de.kubelet_endpoint.as_ref()).map_or(0, |ke| ke.port);

    let mut t = BTreeMap::from([
        (ADDRESS_LABEL.to_string(), join_host_port(addr, &port.to_string())),
        (INSTANCE_LABEL.to_string(), name.to_string()),
    ]);
    for (ty, a) in &by_type {
        t.insert(sanitize_label_name(&format!("{META_PREFIX}node_address_{ty}")), a.to_string());
    }
    tg.targets.push(t);
    tg
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::meta::testutil::{ls, obj};
    use super::*;

    fn make_node(addresses: serde_json::Value) -> Node {
        obj(json!({
            "metadata": {"name": "test", "labels": {"test-label": "testvalue"}, "annotations": {"test-annotation": "testannotationvalue"}},
            "spec": {"providerID": "aws:///us-east-1a/i-1"},
            "status": {
                "addresses": addresses,
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "conditions": [{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}]
            }
        }))
    }

    #[test]
    fn node_target_and_labels() {
        let node = make_node(json!([
            {"type": "ExternalIP", "address": "1.2.3.4"},
            {"type": "InternalIP", "address": "10.0.0.1"},
            {"type": "InternalIP", "address": "10.0.0.2"},
            {"type": "Hostname", "address": "test"}
        ]));
        let tg = node_group(&node);
        assert_eq!(tg.source, "node/test");
        assert_eq!(
            tg.targets,
            vec![ls(&[
                ("__address__", "10.0.0.1:10250"),
                ("instance", "test"),
                ("__meta_kubernetes_node_address_ExternalIP", "1.2.3.4"),
                ("__meta_kubernetes_node_address_InternalIP", "10.0.0.1"),
                ("__meta_kubernetes_node_address_Hostname", "test"),
            ])]
        );
        assert_eq!(
            tg.labels,
            ls(&[
                ("__meta_kubernetes_node_name", "test"),
                ("__meta_kubernetes_node_provider_id", "aws:///us-east-1a/i-1"),
                ("__meta_kubernetes_node_condition_ready", "true"),
                ("__meta_kubernetes_node_condition_memorypressure", "false"),
                ("__meta_kubernetes_node_label_test_label", "testvalue"),
                ("__meta_kubernetes_node_labelpresent_test_label", "true"),
                ("__meta_kubernetes_node_annotation_test_annotation", "testannotationvalue"),
                ("__meta_kubernetes_node_annotationpresent_test_annotation", "true"),
            ])
        );
    }

    #[test]
    fn address_preference_order() {
        let addr = |v| node_group(&make_node(v)).targets[0]["__address__"].clone();
        assert_eq!(addr(json!([{"type": "Hostname", "address": "h"}, {"type": "ExternalDNS", "address": "e.dns"}])), "e.dns:10250");
        assert_eq!(addr(json!([{"type": "Hostname", "address": "h"}, {"type": "LegacyHostIP", "address": "9.9.9.9"}])), "9.9.9.9:10250");
        assert_eq!(addr(json!([{"type": "ExternalIP", "address": "fd00::1"}, {"type": "InternalDNS", "address": "i.dns"}])), "i.dns:10250");
        assert_eq!(addr(json!([{"type": "ExternalIP", "address": "fd00::1"}])), "[fd00::1]:10250");
    }

    #[test]
    fn node_without_address_has_no_target() {
        let tg = node_group(&make_node(json!([])));
        assert!(tg.targets.is_empty());
        assert_eq!(tg.source, "node/test");
    }
}
