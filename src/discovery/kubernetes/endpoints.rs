//! The `endpoints` role over the core/v1 Endpoints API (deprecated by
//! Kubernetes in favour of EndpointSlices, still served): one target per
//! subset port × address; Prometheus' `discovery/kubernetes/endpoints.go`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, Endpoints};

use super::meta::{
    LabelSet, NAMESPACE_LABEL, Related, add_node_labels, add_object_meta_labels, join_host_port, name_of, namespace_of, namespaced_source,
    s,
};
use super::pod::{SeenPods, attach_container_port, pod_labels};
use super::service::service_labels;
use crate::discovery::TargetGroup;
use crate::discovery::target_group::ADDRESS_LABEL;

const ENDPOINT_NODE_NAME: &str = "__meta_kubernetes_endpoint_node_name";
const ENDPOINT_HOSTNAME: &str = "__meta_kubernetes_endpoint_hostname";
const ENDPOINT_READY: &str = "__meta_kubernetes_endpoint_ready";
const ENDPOINT_PORT_NAME: &str = "__meta_kubernetes_endpoint_port_name";
const ENDPOINT_PORT_PROTOCOL: &str = "__meta_kubernetes_endpoint_port_protocol";
const ADDRESS_TARGET_KIND: &str = "__meta_kubernetes_endpoint_address_target_kind";
const ADDRESS_TARGET_NAME: &str = "__meta_kubernetes_endpoint_address_target_name";

/// The target group of an Endpoints object, source
/// `endpoints/<namespace>/<name>`.
///
/// Per subset and port: a target per ready address (`endpoint_ready`
/// `true`), then per not-ready address (`false`), with pod labels and the
/// matching container's labels when the address targets a known pod; then a
/// target per container port of those pods that no endpoint port covered.
/// Group labels: namespace, the labels of the same-named service when known,
/// and the object's metadata (role name `endpoints`). `attach_node` adds the
/// labels of the address's `nodeName` node (else of its target ref when that
/// is a Node).
pub fn endpoints_group(ep: &Endpoints, related: &dyn Related, attach_node: bool) -> TargetGroup {
    let ns = namespace_of(&ep.metadata);
    let mut labels = BTreeMap::from([(NAMESPACE_LABEL.to_string(), ns.to_string())]);
    // An Endpoints object has the name of its service.
    if let Some(svc) = related.service(ns, name_of(&ep.metadata)) {
        labels.extend(service_labels(&svc));
    }
    add_object_meta_labels(&mut labels, &ep.metadata, "endpoints");
    let mut tg = TargetGroup { source: namespaced_source("endpoints", &ep.metadata), targets: Vec::new(), labels };

    let mut seen = SeenPods::default();
    for subset in ep.subsets.iter().flatten() {
        for port in subset.ports.iter().flatten() {
            for addr in subset.addresses.iter().flatten() {
                let t = address_target(addr, port, "true", related, attach_node, &mut seen);
                tg.targets.push(t);
            }
            // The same address may also be listed here; as upstream, it then
            // gets a second target, with ready "false".
            for addr in subset.not_ready_addresses.iter().flatten() {
                let t = address_target(addr, port, "false", related, attach_node, &mut seen);
                tg.targets.push(t);
            }
        }
    }
    tg.targets.extend(seen.uncovered_port_targets());
    tg
}

/// One address target; records its pod, if any, in `seen`.
fn address_target(
    addr: &EndpointAddress,
    port: &EndpointPort,
    ready: &str,
    related: &dyn Related,
    attach_node: bool,
    seen: &mut SeenPods,
) -> LabelSet {
    let protocol = s(&port.protocol);
    let mut t = BTreeMap::from([
        (ADDRESS_LABEL.to_string(), join_host_port(&addr.ip, &port.port.to_string())),
        (ENDPOINT_PORT_NAME.to_string(), s(&port.name)),
        (ENDPOINT_PORT_PROTOCOL.to_string(), protocol.clone()),
        (ENDPOINT_READY.to_string(), ready.to_string()),
    ]);
    let target_ref = addr.target_ref.as_ref();
    if let Some(r) = target_ref {
        t.insert(ADDRESS_TARGET_KIND.to_string(), s(&r.kind));
        t.insert(ADDRESS_TARGET_NAME.to_string(), s(&r.name));
    }
    if let Some(node_name) = &addr.node_name {
        t.insert(ENDPOINT_NODE_NAME.to_string(), node_name.clone());
    }
    if let Some(hostname) = addr.hostname.as_deref().filter(|h| !h.is_empty()) {
        t.insert(ENDPOINT_HOSTNAME.to_string(), hostname.to_string());
    }

    if attach_node {
        let node_name = match (&addr.node_name, target_ref) {
            (Some(n), _) => Some(n.as_str()),
            (None, Some(r)) if r.kind.as_deref() == Some("Node") => Some(r.name.as_deref().unwrap_or("")),
            _ => None,
        };
        let node = node_name.and_then(|n| related.node(n));
        add_node_labels(&mut t, node.as_deref());
    }

    let pod = target_ref
        .filter(|r| r.kind.as_deref() == Some("Pod"))
        .and_then(|r| related.pod(r.namespace.as_deref().unwrap_or(""), r.name.as_deref().unwrap_or("")));
    let Some(pod) = pod else {
        return t;
    };
    seen.saw(&pod, Some(port.port));
    t.extend(pod_labels(&pod));
    // Upstream labels the container port with the endpoint port's protocol.
    attach_container_port(&mut t, &pod, port.port, Some(&protocol));
    t
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::{Node, Pod, Service};
    use serde_json::json;

    use super::super::meta::testutil::{Objects, ls, obj};
    use super::*;

    /// Upstream's `makeEndpoints`: one subset with a ready address on a
    /// node, a not-ready one, and a third targeting a node.
    fn endpoints() -> Endpoints {
        obj(json!({
            "metadata": {"name": "testendpoints", "namespace": "default", "annotations": {"test.annotation": "test"}},
            "subsets": [
                {"addresses": [{"ip": "1.2.3.4", "hostname": "testendpoint1", "nodeName": "foobar"}],
                 "notReadyAddresses": [{"ip": "2.3.4.5"}],
                 "ports": [{"name": "testport", "port": 9000, "protocol": "TCP"}]},
                {"addresses": [{"ip": "6.7.8.9", "targetRef": {"kind": "Node", "name": "barbaz"}}],
                 "ports": [{"name": "testport", "port": 9002, "protocol": "TCP"}]}
            ]
        }))
    }

    #[test]
    fn endpoints_targets_and_labels() {
        let svc: Service = obj(json!({"metadata": {"name": "testendpoints", "namespace": "default", "labels": {"app/name": "test"}}}));
        let node: Node = obj(json!({"metadata": {"name": "foobar", "labels": {"az": "a"}}}));
        let objects = Objects { services: vec![Arc::new(svc)], nodes: vec![Arc::new(node)], ..Default::default() };
        let tg = endpoints_group(&endpoints(), &objects, true);
        assert_eq!(tg.source, "endpoints/default/testendpoints");
        assert_eq!(
            tg.targets,
            vec![
                ls(&[
                    ("__address__", "1.2.3.4:9000"),
                    ("__meta_kubernetes_endpoint_hostname", "testendpoint1"),
                    ("__meta_kubernetes_endpoint_node_name", "foobar"),
                    ("__meta_kubernetes_endpoint_port_name", "testport"),
                    ("__meta_kubernetes_endpoint_port_protocol", "TCP"),
                    ("__meta_kubernetes_endpoint_ready", "true"),
                    ("__meta_kubernetes_node_name", "foobar"),
                    ("__meta_kubernetes_node_label_az", "a"),
                    ("__meta_kubernetes_node_labelpresent_az", "true"),
                ]),
                ls(&[
                    ("__address__", "2.3.4.5:9000"),
                    ("__meta_kubernetes_endpoint_port_name", "testport"),
                    ("__meta_kubernetes_endpoint_port_protocol", "TCP"),
                    ("__meta_kubernetes_endpoint_ready", "false"),
                ]),
                ls(&[
                    ("__address__", "6.7.8.9:9002"),
                    ("__meta_kubernetes_endpoint_address_target_kind", "Node"),
                    ("__meta_kubernetes_endpoint_address_target_name", "barbaz"),
                    ("__meta_kubernetes_endpoint_port_name", "testport"),
                    ("__meta_kubernetes_endpoint_port_protocol", "TCP"),
                    ("__meta_kubernetes_endpoint_ready", "true"),
                ]),
            ]
        );
        assert_eq!(
            tg.labels,
            ls(&[
                ("__meta_kubernetes_namespace", "default"),
                ("__meta_kubernetes_endpoints_name", "testendpoints"),
                ("__meta_kubernetes_endpoints_annotation_test_annotation", "test"),
                ("__meta_kubernetes_endpoints_annotationpresent_test_annotation", "true"),
                ("__meta_kubernetes_service_name", "testendpoints"),
                ("__meta_kubernetes_service_label_app_name", "test"),
                ("__meta_kubernetes_service_labelpresent_app_name", "true"),
            ])
        );
    }

    #[test]
    fn pod_targets_with_container_and_uncovered_ports() {
        let ep: Endpoints = obj(json!({
            "metadata": {"name": "testendpoints", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "4.3.2.1", "targetRef": {"kind": "Pod", "name": "testpod", "namespace": "default"}}],
                         "ports": [{"name": "testport", "port": 9000, "protocol": "TCP"}]}]
        }));
        let pod: Pod = obj(json!({
            "metadata": {"name": "testpod", "namespace": "default", "uid": "deadbeef"},
            "spec": {"nodeName": "testnode", "containers": [{"name": "c1", "image": "c1:latest", "ports": [
                {"name": "mainport", "containerPort": 9000, "protocol": "TCP"},
                {"name": "sideport", "containerPort": 9001, "protocol": "UDP"}
            ]}]},
            "status": {"hostIP": "2.3.4.5", "podIP": "4.3.2.1", "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        }));
        let objects = Objects { pods: vec![Arc::new(pod)], ..Default::default() };
        let tg = endpoints_group(&ep, &objects, false);
        let pod_common = ls(&[
            ("__meta_kubernetes_pod_host_ip", "2.3.4.5"),
            ("__meta_kubernetes_pod_ip", "4.3.2.1"),
            ("__meta_kubernetes_pod_name", "testpod"),
            ("__meta_kubernetes_pod_node_name", "testnode"),
            ("__meta_kubernetes_pod_phase", "Running"),
            ("__meta_kubernetes_pod_ready", "true"),
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
                    ("__meta_kubernetes_endpoint_address_target_kind", "Pod"),
                    ("__meta_kubernetes_endpoint_address_target_name", "testpod"),
                    ("__meta_kubernetes_endpoint_port_name", "testport"),
                    ("__meta_kubernetes_endpoint_port_protocol", "TCP"),
                    ("__meta_kubernetes_endpoint_ready", "true"),
                    ("__meta_kubernetes_pod_container_name", "c1"),
                    ("__meta_kubernetes_pod_container_image", "c1:latest"),
                    ("__meta_kubernetes_pod_container_port_name", "mainport"),
                    ("__meta_kubernetes_pod_container_port_number", "9000"),
                    ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
                    ("__meta_kubernetes_pod_container_init", "false"),
                ]),
                with_pod(&[
                    ("__address__", "4.3.2.1:9001"),
                    ("__meta_kubernetes_pod_container_name", "c1"),
                    ("__meta_kubernetes_pod_container_image", "c1:latest"),
                    ("__meta_kubernetes_pod_container_port_name", "sideport"),
                    ("__meta_kubernetes_pod_container_port_number", "9001"),
                    ("__meta_kubernetes_pod_container_port_protocol", "UDP"),
                    ("__meta_kubernetes_pod_container_init", "false"),
                ]),
            ]
        );
    }
}
