//! The `endpointslice` role: one target per endpoint address and port of an
//! EndpointSlice, with the labels of the backing pod and of the owning
//! service; Prometheus' `discovery/kubernetes/endpointslice.go`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointPort, EndpointSlice};

use super::meta::{
    LabelSet, META_PREFIX, NAMESPACE_LABEL, PRESENT_VALUE, Related, add_node_labels, add_object_meta_labels, join_host_port, namespace_of,
    namespaced_source, sanitize_label_name,
};
use super::pod::{SeenPods, attach_container_port, pod_labels};
use super::service::service_labels;
use crate::discovery::TargetGroup;
use crate::discovery::target_group::ADDRESS_LABEL;

const ADDRESS_TYPE: &str = "__meta_kubernetes_endpointslice_address_type";
const PORT_NAME: &str = "__meta_kubernetes_endpointslice_port_name";
const PORT_PROTOCOL: &str = "__meta_kubernetes_endpointslice_port_protocol";
const PORT: &str = "__meta_kubernetes_endpointslice_port";
const PORT_APP_PROTOCOL: &str = "__meta_kubernetes_endpointslice_port_app_protocol";
const CONDITIONS_READY: &str = "__meta_kubernetes_endpointslice_endpoint_conditions_ready";
const CONDITIONS_SERVING: &str = "__meta_kubernetes_endpointslice_endpoint_conditions_serving";
const CONDITIONS_TERMINATING: &str = "__meta_kubernetes_endpointslice_endpoint_conditions_terminating";
const ENDPOINT_ZONE: &str = "__meta_kubernetes_endpointslice_endpoint_zone";
const ENDPOINT_HOSTNAME: &str = "__meta_kubernetes_endpointslice_endpoint_hostname";
const ENDPOINT_NODE_NAME: &str = "__meta_kubernetes_endpointslice_endpoint_node_name";
const ADDRESS_TARGET_KIND: &str = "__meta_kubernetes_endpointslice_address_target_kind";
const ADDRESS_TARGET_NAME: &str = "__meta_kubernetes_endpointslice_address_target_name";

/// The label every EndpointSlice carries naming the service it belongs to.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Whether `es` is the secondary-family slice of a dual-stack service: its
/// address type is not the service's primary IP family. Its targets would
/// duplicate those of the primary slice, so upstream emits none.
fn non_primary_ip_family_slice(svc: Option<&Service>, es: &EndpointSlice) -> bool {
    let Some(spec) = svc.and_then(|s| s.spec.as_ref()) else {
        return false;
    };
    match spec.ip_family_policy.as_deref() {
        Some("PreferDualStack" | "RequireDualStack") => {}
        _ => return false,
    }
    match spec.ip_families.as_deref() {
        Some([primary, ..]) => es.address_type != *primary,
        _ => false,
    }
}

/// The target group of an EndpointSlice, source
/// `endpointslice/<namespace>/<name>`.
///
/// Targets: one per endpoint × port × address (in that nesting), with the
/// endpoint's and port's labels; for an endpoint backed by a known pod also
/// the pod's labels and those of its container declaring the port; then one
/// per container port of those pods that no endpoint port covered. Group
/// labels: namespace, address type, the slice's metadata, and the owning
/// service's labels when the service is known. `attach_node` adds the labels
/// of the endpoint's node (the target ref when it is a Node, else the
/// endpoint's `nodeName`) to each endpoint target.
pub fn endpointslice_group(es: &EndpointSlice, related: &dyn Related, attach_node: bool) -> TargetGroup {
    let ns = namespace_of(&es.metadata);
    let mut labels = BTreeMap::from([(NAMESPACE_LABEL.to_string(), ns.to_string()), (ADDRESS_TYPE.to_string(), es.address_type.clone())]);
    add_object_meta_labels(&mut labels, &es.metadata, "endpointslice");
    let svc = es.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)).and_then(|name| related.service(ns, name));
    if let Some(svc) = &svc {
        labels.extend(service_labels(svc));
    }
    let mut tg = TargetGroup { source: namespaced_source("endpointslice", &es.metadata), targets: Vec::new(), labels };
    if non_primary_ip_family_slice(svc.as_deref(), es) {
        return tg;
    }

    let mut seen = SeenPods::default();
    for ep in &es.endpoints {
        for port in es.ports.iter().flatten() {
            for addr in &ep.addresses {
                let t = endpoint_target(addr, ep, port, related, attach_node, &mut seen);
                tg.targets.push(t);
            }
        }
    }
    tg.targets.extend(seen.uncovered_port_targets());
    tg
}

/// One endpoint target; records its pod, if any, in `seen`.
fn endpoint_target(
    addr: &str,
    ep: &Endpoint,
    port: &EndpointPort,
    related: &dyn Related,
    attach_node: bool,
    seen: &mut SeenPods,
) -> LabelSet {
    let mut t = BTreeMap::new();
    let address = match port.port {
        Some(p) => join_host_port(addr, &p.to_string()),
        None => addr.to_string(),
    };
    t.insert(ADDRESS_LABEL.to_string(), address);
    // Unset optional fields are left out rather than set to "".
    let mut opt = |name: &str, v: Option<String>| {
        if let Some(v) = v {
            t.insert(name.to_string(), v);
        }
    };
    opt(PORT_NAME, port.name.clone());
    opt(PORT_PROTOCOL, port.protocol.clone());
    opt(PORT, port.port.map(|p| p.to_string()));
    opt(PORT_APP_PROTOCOL, port.app_protocol.clone());
    let cond = ep.conditions.as_ref();
    opt(CONDITIONS_READY, cond.and_then(|c| c.ready).map(|b| b.to_string()));
    opt(CONDITIONS_SERVING, cond.and_then(|c| c.serving).map(|b| b.to_string()));
    opt(CONDITIONS_TERMINATING, cond.and_then(|c| c.terminating).map(|b| b.to_string()));
    opt(ENDPOINT_HOSTNAME, ep.hostname.clone());
    let target_ref = ep.target_ref.as_ref();
    let ref_kind = target_ref.map(|r| r.kind.clone().unwrap_or_default());
    let ref_name = target_ref.map(|r| r.name.clone().unwrap_or_default());
    opt(ADDRESS_TARGET_KIND, ref_kind.clone());
    opt(ADDRESS_TARGET_NAME, ref_name.clone());
    opt(ENDPOINT_NODE_NAME, ep.node_name.clone());
    opt(ENDPOINT_ZONE, ep.zone.clone());
    for (k, v) in ep.deprecated_topology.iter().flatten() {
        let ln = sanitize_label_name(k);
        t.insert(format!("{META_PREFIX}endpointslice_endpoint_topology_{ln}"), v.clone());
        t.insert(format!("{META_PREFIX}endpointslice_endpoint_topology_present_{ln}"), PRESENT_VALUE.to_string());
    }

    if attach_node {
        let node_name = if ref_kind.as_deref() == Some("Node") { ref_name.as_deref() } else { ep.node_name.as_deref() };
        let node = node_name.and_then(|n| related.node(n));
        add_node_labels(&mut t, node.as_deref());
    }

    let pod = target_ref
        .filter(|r| r.kind.as_deref() == Some("Pod"))
        .and_then(|r| related.pod(r.namespace.as_deref().unwrap_or(""), r.name.as_deref().unwrap_or("")));
    let Some(pod) = pod else {
        return t;
    };
    seen.saw(&pod, port.port);
    t.extend(pod_labels(&pod));
    if let Some(p) = port.port {
        attach_container_port(&mut t, &pod, p, None);
    }
    t
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::json;

    use super::super::meta::testutil::{Objects, ls, obj};
    use super::*;

    /// Upstream's `makeEndpointSliceV1`: four endpoints, one with an empty
    /// target ref and topology, one targeting a node.
    fn slice() -> EndpointSlice {
        obj(json!({
            "metadata": {"name": "testendpoints", "namespace": "default",
                "labels": {"kubernetes.io/service-name": "testendpoints"}, "annotations": {"test.annotation": "test"}},
            "addressType": "IPv4",
            "ports": [{"name": "testport", "port": 9000, "protocol": "TCP", "appProtocol": "http"}],
            "endpoints": [
                {"addresses": ["1.2.3.4"], "conditions": {"ready": true, "serving": true, "terminating": false},
                 "hostname": "testendpoint1", "targetRef": {}, "nodeName": "foobar",
                 "deprecatedTopology": {"topology": "value"}, "zone": "us-east-1a"},
                {"addresses": ["2.3.4.5"], "conditions": {"ready": true, "serving": true, "terminating": false}, "zone": "us-east-1b"},
                {"addresses": ["3.4.5.6"], "conditions": {"ready": false, "serving": true, "terminating": true}, "zone": "us-east-1c"},
                {"addresses": ["4.5.6.7"], "conditions": {"ready": true, "serving": true, "terminating": false},
                 "targetRef": {"kind": "Node", "name": "barbaz"}, "zone": "us-east-1a"}
            ]
        }))
    }

    fn expected_targets() -> Vec<LabelSet> {
        let common = |addr: &str, ready: &str, term: &str, zone: &str| {
            ls(&[
                ("__address__", addr),
                ("__meta_kubernetes_endpointslice_endpoint_conditions_ready", ready),
                ("__meta_kubernetes_endpointslice_endpoint_conditions_serving", "true"),
                ("__meta_kubernetes_endpointslice_endpoint_conditions_terminating", term),
                ("__meta_kubernetes_endpointslice_endpoint_zone", zone),
                ("__meta_kubernetes_endpointslice_port", "9000"),
                ("__meta_kubernetes_endpointslice_port_app_protocol", "http"),
                ("__meta_kubernetes_endpointslice_port_name", "testport"),
                ("__meta_kubernetes_endpointslice_port_protocol", "TCP"),
            ])
        };
        let mut t1 = common("1.2.3.4:9000", "true", "false", "us-east-1a");
        t1.extend(ls(&[
            ("__meta_kubernetes_endpointslice_address_target_kind", ""),
            ("__meta_kubernetes_endpointslice_address_target_name", ""),
            ("__meta_kubernetes_endpointslice_endpoint_hostname", "testendpoint1"),
            ("__meta_kubernetes_endpointslice_endpoint_node_name", "foobar"),
            ("__meta_kubernetes_endpointslice_endpoint_topology_present_topology", "true"),
            ("__meta_kubernetes_endpointslice_endpoint_topology_topology", "value"),
        ]));
        let mut t4 = common("4.5.6.7:9000", "true", "false", "us-east-1a");
        t4.extend(ls(&[
            ("__meta_kubernetes_endpointslice_address_target_kind", "Node"),
            ("__meta_kubernetes_endpointslice_address_target_name", "barbaz"),
        ]));
        vec![t1, common("2.3.4.5:9000", "true", "false", "us-east-1b"), common("3.4.5.6:9000", "false", "true", "us-east-1c"), t4]
    }

    fn slice_labels() -> LabelSet {
        ls(&[
            ("__meta_kubernetes_endpointslice_address_type", "IPv4"),
            ("__meta_kubernetes_endpointslice_name", "testendpoints"),
            ("__meta_kubernetes_endpointslice_label_kubernetes_io_service_name", "testendpoints"),
            ("__meta_kubernetes_endpointslice_labelpresent_kubernetes_io_service_name", "true"),
            ("__meta_kubernetes_endpointslice_annotation_test_annotation", "test"),
            ("__meta_kubernetes_endpointslice_annotationpresent_test_annotation", "true"),
            ("__meta_kubernetes_namespace", "default"),
        ])
    }

    #[test]
    fn slice_without_related_objects() {
        let tg = endpointslice_group(&slice(), &Objects::default(), false);
        assert_eq!(tg.source, "endpointslice/default/testendpoints");
        assert_eq!(tg.targets, expected_targets());
        assert_eq!(tg.labels, slice_labels());
    }

    #[test]
    fn service_labels_attached_and_dual_stack_secondary_skipped() {
        let svc: Service = obj(json!({"metadata": {"name": "testendpoints", "namespace": "default", "labels": {"app/name": "test"}}}));
        let mut objects = Objects { services: vec![Arc::new(svc)], ..Default::default() };
        let tg = endpointslice_group(&slice(), &objects, false);
        let mut want = slice_labels();
        want.extend(ls(&[
            ("__meta_kubernetes_service_label_app_name", "test"),
            ("__meta_kubernetes_service_labelpresent_app_name", "true"),
            ("__meta_kubernetes_service_name", "testendpoints"),
        ]));
        assert_eq!(tg.labels, want);
        assert_eq!(tg.targets.len(), 4);

        let dual: Service = obj(json!({"metadata": {"name": "testendpoints", "namespace": "default"},
            "spec": {"ipFamilyPolicy": "PreferDualStack", "ipFamilies": ["IPv6", "IPv4"]}}));
        objects.services = vec![Arc::new(dual)];
        let tg = endpointslice_group(&slice(), &objects, false);
        assert!(tg.targets.is_empty());
        assert_eq!(tg.labels["__meta_kubernetes_service_name"], "testendpoints");

        let single: Service = obj(json!({"metadata": {"name": "testendpoints", "namespace": "default"},
            "spec": {"ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv6"]}}));
        objects.services = vec![Arc::new(single)];
        assert_eq!(endpointslice_group(&slice(), &objects, false).targets.len(), 4);
    }

    #[test]
    fn node_metadata_from_node_name_or_node_target_ref() {
        let node = |name: &str, v: &str| -> Arc<Node> { Arc::new(obj(json!({"metadata": {"name": name, "labels": {"az": v}}}))) };
        let objects = Objects { nodes: vec![node("foobar", "a"), node("barbaz", "b")], ..Default::default() };
        let tg = endpointslice_group(&slice(), &objects, true);
        let mut want = expected_targets();
        let node_labels = |name: &str, v: &str| {
            ls(&[
                ("__meta_kubernetes_node_name", name),
                ("__meta_kubernetes_node_label_az", v),
                ("__meta_kubernetes_node_labelpresent_az", "true"),
            ])
        };
        want[0].extend(node_labels("foobar", "a"));
        want[3].extend(node_labels("barbaz", "b"));
        assert_eq!(tg.targets, want);
    }

    /// Upstream's `TestEndpointSliceDiscoverySidecarContainer`: endpoint
    /// ports matched to regular and init containers, and a target for the
    /// init container port no endpoint covers.
    #[test]
    fn pod_labels_container_matching_and_uncovered_ports() {
        let es: EndpointSlice = obj(json!({
            "metadata": {"name": "testsidecar", "namespace": "default"},
            "addressType": "IPv4",
            "ports": [{"name": "testport", "port": 9000, "protocol": "TCP"}, {"name": "initport", "port": 9111, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["4.3.2.1"], "targetRef": {"kind": "Pod", "name": "testpod", "namespace": "default"}}]
        }));
        let pod: Pod = obj(json!({
            "metadata": {"name": "testpod", "namespace": "default", "uid": "deadbeef"},
            "spec": {
                "nodeName": "testnode",
                "initContainers": [
                    {"name": "ic1", "image": "ic1:latest", "ports": [{"name": "initport", "containerPort": 1111, "protocol": "TCP"}]},
                    {"name": "ic2", "image": "ic2:latest", "ports": [{"name": "initport", "containerPort": 9111, "protocol": "TCP"}]}
                ],
                "containers": [{"name": "c1", "image": "c1:latest", "ports": [{"name": "mainport", "containerPort": 9000, "protocol": "TCP"}]}]
            },
            "status": {"hostIP": "2.3.4.5", "podIP": "4.3.2.1"}
        }));
        let objects = Objects { pods: vec![Arc::new(pod)], ..Default::default() };
        let tg = endpointslice_group(&es, &objects, false);
        let pod_common = ls(&[
            ("__meta_kubernetes_pod_host_ip", "2.3.4.5"),
            ("__meta_kubernetes_pod_ip", "4.3.2.1"),
            ("__meta_kubernetes_pod_name", "testpod"),
            ("__meta_kubernetes_pod_node_name", "testnode"),
            ("__meta_kubernetes_pod_phase", ""),
            ("__meta_kubernetes_pod_ready", "unknown"),
            ("__meta_kubernetes_pod_uid", "deadbeef"),
        ]);
        let with_pod = |pairs: &[(&str, &str)]| {
            let mut t = ls(pairs);
            t.extend(pod_common.clone());
            t
        };
        assert_eq!(
            tg.targets,
            vec![
                with_pod(&[
                    ("__address__", "4.3.2.1:9000"),
                    ("__meta_kubernetes_endpointslice_address_target_kind", "Pod"),
                    ("__meta_kubernetes_endpointslice_address_target_name", "testpod"),
                    ("__meta_kubernetes_endpointslice_port", "9000"),
                    ("__meta_kubernetes_endpointslice_port_name", "testport"),
                    ("__meta_kubernetes_endpointslice_port_protocol", "TCP"),
                    ("__meta_kubernetes_pod_container_image", "c1:latest"),
                    ("__meta_kubernetes_pod_container_name", "c1"),
                    ("__meta_kubernetes_pod_container_port_name", "mainport"),
                    ("__meta_kubernetes_pod_container_port_number", "9000"),
                    ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
                    ("__meta_kubernetes_pod_container_init", "false"),
                ]),
                with_pod(&[
                    ("__address__", "4.3.2.1:9111"),
                    ("__meta_kubernetes_endpointslice_address_target_kind", "Pod"),
                    ("__meta_kubernetes_endpointslice_address_target_name", "testpod"),
                    ("__meta_kubernetes_endpointslice_port", "9111"),
                    ("__meta_kubernetes_endpointslice_port_name", "initport"),
                    ("__meta_kubernetes_endpointslice_port_protocol", "TCP"),
                    ("__meta_kubernetes_pod_container_image", "ic2:latest"),
                    ("__meta_kubernetes_pod_container_name", "ic2"),
                    ("__meta_kubernetes_pod_container_port_name", "initport"),
                    ("__meta_kubernetes_pod_container_port_number", "9111"),
                    ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
                    ("__meta_kubernetes_pod_container_init", "true"),
                ]),
                with_pod(&[
                    ("__address__", "4.3.2.1:1111"),
                    ("__meta_kubernetes_pod_container_image", "ic1:latest"),
                    ("__meta_kubernetes_pod_container_name", "ic1"),
                    ("__meta_kubernetes_pod_container_port_name", "initport"),
                    ("__meta_kubernetes_pod_container_port_number", "1111"),
                    ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
                    ("__meta_kubernetes_pod_container_init", "true"),
                ]),
            ]
        );
        assert_eq!(
            tg.labels,
            ls(&[
                ("__meta_kubernetes_endpointslice_address_type", "IPv4"),
                ("__meta_kubernetes_endpointslice_name", "testsidecar"),
                ("__meta_kubernetes_namespace", "default"),
            ])
        );
    }
}
