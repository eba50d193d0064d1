//! The `pod` role: one target per declared container port of a pod, or one
//! per port-less container with the bare pod IP; Prometheus'
//! `discovery/kubernetes/pod.go` (`buildPod`, `podLabels`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Node, Pod};

use super::meta::{LabelSet, NAMESPACE_LABEL, add_node_labels, add_object_meta_labels, join_host_port, namespace_of, namespaced_source, s};
use crate::discovery::TargetGroup;
use crate::discovery::target_group::ADDRESS_LABEL;

pub(crate) const POD_IP: &str = "__meta_kubernetes_pod_ip";
pub(crate) const POD_CONTAINER_NAME: &str = "__meta_kubernetes_pod_container_name";
pub(crate) const POD_CONTAINER_ID: &str = "__meta_kubernetes_pod_container_id";
pub(crate) const POD_CONTAINER_IMAGE: &str = "__meta_kubernetes_pod_container_image";
pub(crate) const POD_CONTAINER_PORT_NAME: &str = "__meta_kubernetes_pod_container_port_name";
pub(crate) const POD_CONTAINER_PORT_NUMBER: &str = "__meta_kubernetes_pod_container_port_number";
pub(crate) const POD_CONTAINER_PORT_PROTOCOL: &str = "__meta_kubernetes_pod_container_port_protocol";
pub(crate) const POD_CONTAINER_INIT: &str = "__meta_kubernetes_pod_container_init";
pub(crate) const POD_READY: &str = "__meta_kubernetes_pod_ready";
pub(crate) const POD_PHASE: &str = "__meta_kubernetes_pod_phase";
pub(crate) const POD_NODE_NAME: &str = "__meta_kubernetes_pod_node_name";
pub(crate) const POD_HOST_IP: &str = "__meta_kubernetes_pod_host_ip";
pub(crate) const POD_UID: &str = "__meta_kubernetes_pod_uid";
pub(crate) const POD_CONTROLLER_KIND: &str = "__meta_kubernetes_pod_controller_kind";
pub(crate) const POD_CONTROLLER_NAME: &str = "__meta_kubernetes_pod_controller_name";

/// The pod's IP, `""` while it has none (starting or evicted).
pub(crate) fn pod_ip(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|st| st.pod_ip.as_deref()).unwrap_or("")
}

/// The regular containers followed by the init containers, each with whether
/// it is an init container: the order upstream walks them in (it appends the
/// init containers to the regular ones), which fixes the target order.
pub(crate) fn containers(pod: &Pod) -> impl Iterator<Item = (&Container, bool)> {
    let spec = pod.spec.as_ref();
    let regular = spec.map(|sp| sp.containers.as_slice()).unwrap_or_default();
    let init = spec.and_then(|sp| sp.init_containers.as_deref()).unwrap_or_default();
    regular.iter().map(|c| (c, false)).chain(init.iter().map(|c| (c, true)))
}

/// The labels describing the pod itself (not a container); shared with the
/// endpoint roles, which attach them to targets backed by the pod. Without
/// the namespace, which the callers set on the group.
pub(crate) fn pod_labels(pod: &Pod) -> LabelSet {
    let status = pod.status.as_ref();
    let mut ls = BTreeMap::from([
        (POD_IP.to_string(), pod_ip(pod).to_string()),
        (POD_READY.to_string(), pod_ready(pod)),
        (POD_PHASE.to_string(), status.map(|st| s(&st.phase)).unwrap_or_default()),
        (POD_NODE_NAME.to_string(), pod.spec.as_ref().map(|sp| s(&sp.node_name)).unwrap_or_default()),
        (POD_HOST_IP.to_string(), status.map(|st| s(&st.host_ip)).unwrap_or_default()),
        (POD_UID.to_string(), s(&pod.metadata.uid)),
    ]);
    add_object_meta_labels(&mut ls, &pod.metadata, "pod");

    // The controlling owner (Deployment pods: their ReplicaSet), as
    // apimachinery's GetControllerOf; empty kind or name are left out.
    let controller = pod.metadata.owner_references.iter().flatten().find(|r| r.controller == Some(true));
    if let Some(owner) = controller {
        if !owner.kind.is_empty() {
            ls.insert(POD_CONTROLLER_KIND.to_string(), owner.kind.clone());
        }
        if !owner.name.is_empty() {
            ls.insert(POD_CONTROLLER_NAME.to_string(), owner.name.clone());
        }
    }
    ls
}

/// The status of the `Ready` condition lowercased (`true`/`false`), or
/// `unknown` when the pod has no such condition yet.
fn pod_ready(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|st| st.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.to_lowercase())
        .unwrap_or_else(|| "unknown".to_string())
}

/// The runtime's ID of a container (`containerd://…`), `""` until it runs.
fn container_id(statuses: Option<&Vec<ContainerStatus>>, name: &str) -> String {
    statuses.and_then(|ss| ss.iter().find(|st| st.name == name)).map(|st| s(&st.container_id)).unwrap_or_default()
}

/// The target group of a pod, source `pod/<namespace>/<name>`.
///
/// `node` is the pod's node when `attach_metadata.node` is on: its name,
/// labels and annotations are added to the group labels. (Upstream then also
/// drops pods whose node is not in its node cache, because the node selector
/// filtered it; that decision needs the cache, so it is the caller's.)
///
/// A pod without an IP (pending, evicted) yields a group without targets or
/// labels, so that its former targets disappear.
pub fn pod_group(pod: &Pod, node: Option<&Node>) -> TargetGroup {
    let mut tg = TargetGroup { source: namespaced_source("pod", &pod.metadata), targets: Vec::new(), labels: BTreeMap::new() };
    let ip = pod_ip(pod);
    if ip.is_empty() {
        return tg;
    }

    tg.labels = pod_labels(pod);
    tg.labels.insert(NAMESPACE_LABEL.to_string(), namespace_of(&pod.metadata).to_string());
    add_node_labels(&mut tg.labels, node);

    let status = pod.status.as_ref();
    for (c, is_init) in containers(pod) {
        let statuses = status.and_then(|st| if is_init { st.init_container_statuses.as_ref() } else { st.container_statuses.as_ref() });
        let mut base = BTreeMap::from([
            (POD_CONTAINER_NAME.to_string(), c.name.clone()),
            (POD_CONTAINER_ID.to_string(), container_id(statuses, &c.name)),
            (POD_CONTAINER_IMAGE.to_string(), s(&c.image)),
            (POD_CONTAINER_INIT.to_string(), is_init.to_string()),
        ]);
        let ports = c.ports.as_deref().unwrap_or_default();
        if ports.is_empty() {
            // No port to scrape: the bare IP, for relabeling to add one.
            base.insert(ADDRESS_LABEL.to_string(), ip.to_string());
            tg.targets.push(base);
            continue;
        }
        for port in ports {
            let number = port.container_port.to_string();
            let mut t = base.clone();
            t.insert(ADDRESS_LABEL.to_string(), join_host_port(ip, &number));
            t.insert(POD_CONTAINER_PORT_NUMBER.to_string(), number);
            t.insert(POD_CONTAINER_PORT_NAME.to_string(), s(&port.name));
            t.insert(POD_CONTAINER_PORT_PROTOCOL.to_string(), s(&port.protocol));
            tg.targets.push(t);
        }
    }
    tg
}

/// Sets the `pod_container_*` labels of the container port equal to `port`
/// on an endpoint target backed by `pod`, as the endpoint roles do. Like
/// upstream, every container is looked at, so a later container declaring
/// the same port wins. `protocol` is the label value to use, or `None` for
/// the container port's own protocol (the endpointslice role uses the
/// container's, the endpoints role the endpoint port's).
pub(crate) fn attach_container_port(target: &mut LabelSet, pod: &Pod, port: i32, protocol: Option<&str>) {
    for (c, is_init) in containers(pod) {
        let Some(cport) = c.ports.iter().flatten().find(|cp| cp.container_port == port) else {
            continue;
        };
        target.insert(POD_CONTAINER_NAME.to_string(), c.name.clone());
        target.insert(POD_CONTAINER_IMAGE.to_string(), s(&c.image));
        target.insert(POD_CONTAINER_PORT_NAME.to_string(), s(&cport.name));
        target.insert(POD_CONTAINER_PORT_NUMBER.to_string(), port.to_string());
        target.insert(POD_CONTAINER_PORT_PROTOCOL.to_string(), protocol.map_or_else(|| s(&cport.protocol), str::to_string));
        target.insert(POD_CONTAINER_INIT.to_string(), is_init.to_string());
    }
}

/// The pods the targets of an endpoints object or slice resolved to, with
/// the endpoint ports seen for each, in first-seen order.
///
/// Upstream then adds a target for every container port of those pods that
/// no endpoint port covered, so that e.g. a metrics port not in the service
/// is still discovered. (Upstream walks a Go map, in random order; here the
/// order is that of first appearance, so groups are reproducible.)
#[derive(Default)]
pub(crate) struct SeenPods {
    pods: Vec<(std::sync::Arc<Pod>, Vec<i32>)>,
}

impl SeenPods {
    /// Records that a target for `port` (if the endpoint port has a number)
    /// was made from `pod`.
    pub(crate) fn saw(&mut self, pod: &std::sync::Arc<Pod>, port: Option<i32>) {
        let key = (namespace_of(&pod.metadata), pod.metadata.name.as_deref().unwrap_or(""));
        let i = match self.pods.iter().position(|(p, _)| (namespace_of(&p.metadata), p.metadata.name.as_deref().unwrap_or("")) == key) {
            Some(i) => i,
            None => {
                self.pods.push((pod.clone(), Vec::new()));
                self.pods.len() - 1
            }
        };
        if let Some(port) = port {
            self.pods[i].1.push(port);
        }
    }

    /// The targets for the container ports not covered by an endpoint
    /// port: address `<pod IP>:<port>`, the container labels and the pod's
    /// labels; none for a pod without IP.
    pub(crate) fn uncovered_port_targets(&self) -> Vec<LabelSet> {
        let mut out = Vec::new();
        for (pod, seen) in &self.pods {
            let ip = pod_ip(pod);
            if ip.is_empty() {
                continue;
            }
            for (c, is_init) in containers(pod) {
                for cport in c.ports.iter().flatten() {
                    if seen.contains(&cport.container_port) {
                        continue;
                    }
                    let number = cport.container_port.to_string();
                    let mut t = BTreeMap::from([
                        (ADDRESS_LABEL.to_string(), join_host_port(ip, &number)),
                        (POD_CONTAINER_NAME.to_string(), c.name.clone()),
                        (POD_CONTAINER_IMAGE.to_string(), s(&c.image)),
                        (POD_CONTAINER_PORT_NAME.to_string(), s(&cport.name)),
                        (POD_CONTAINER_PORT_NUMBER.to_string(), number),
                        (POD_CONTAINER_PORT_PROTOCOL.to_string(), s(&cport.protocol)),
                        (POD_CONTAINER_INIT.to_string(), is_init.to_string()),
                    ]);
                    t.extend(pod_labels(pod));
                    out.push(t);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::meta::testutil::{ls, obj};
    use super::*;

    /// Upstream's `makeMultiPortPods`: two ports on one container, none on
    /// the other, a controller owner, a label and an annotation.
    fn multi_port_pod() -> Pod {
        obj(json!({
            "metadata": {
                "name": "testpod", "namespace": "default", "uid": "abc123",
                "labels": {"test/label": "testvalue"},
                "annotations": {"test/annotation": "testannotationvalue"},
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "notcontroller", "name": "x", "uid": "1"},
                    {"apiVersion": "v1", "kind": "testcontrollerkind", "name": "testcontrollername", "uid": "2", "controller": true}
                ]
            },
            "spec": {
                "nodeName": "testnode",
                "containers": [
                    {"name": "testcontainer0", "image": "testcontainer0:latest", "ports": [
                        {"name": "testport0", "protocol": "TCP", "containerPort": 9000},
                        {"name": "testport1", "protocol": "UDP", "containerPort": 9001}
                    ]},
                    {"name": "testcontainer1", "image": "testcontainer1:latest"}
                ]
            },
            "status": {
                "podIP": "1.2.3.4", "hostIP": "2.3.4.5", "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {"name": "testcontainer0", "containerID": "docker://a1b2c3d4e5f6", "image": "", "imageID": "", "ready": true, "restartCount": 0},
                    {"name": "testcontainer1", "containerID": "containerd://6f5e4d3c2b1a", "image": "", "imageID": "", "ready": true, "restartCount": 0}
                ]
            }
        }))
    }

    /// Upstream's `makeInitContainerPods`.
    fn init_container_pod() -> Pod {
        obj(json!({
            "metadata": {"name": "testpod", "namespace": "default", "uid": "abc123"},
            "spec": {
                "nodeName": "testnode",
                "containers": [{"name": "testcontainer", "image": "testcontainer:latest", "ports": [
                    {"name": "testport", "protocol": "TCP", "containerPort": 9000}
                ]}],
                "initContainers": [{"name": "initcontainer", "image": "initcontainer:latest"}]
            },
            "status": {
                "podIP": "1.2.3.4", "hostIP": "2.3.4.5", "phase": "Pending",
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{"name": "testcontainer", "containerID": "docker://a1b2c3d4e5f6", "image": "", "imageID": "", "ready": false, "restartCount": 0}],
                "initContainerStatuses": [{"name": "initcontainer", "containerID": "containerd://6f5e4d3c2b1a", "image": "", "imageID": "", "ready": false, "restartCount": 0}]
            }
        }))
    }

    #[test]
    fn multi_port_pod_targets_and_labels() {
        let tg = pod_group(&multi_port_pod(), None);
        assert_eq!(tg.source, "pod/default/testpod");
        assert_eq!(
            tg.targets,
            vec![
                ls(&[
                    ("__address__", "1.2.3.4:9000"),
                    ("__meta_kubernetes_pod_container_name", "testcontainer0"),
                    ("__meta_kubernetes_pod_container_image", "testcontainer0:latest"),
                    ("__meta_kubernetes_pod_container_port_name", "testport0"),
                    ("__meta_kubernetes_pod_container_port_number", "9000"),
                    ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
                    ("__meta_kubernetes_pod_container_init", "false"),
                    ("__meta_kubernetes_pod_container_id", "docker://a1b2c3d4e5f6"),
                ]),
                ls(&[
                    ("__address__", "1.2.3.4:9001"),
                    ("__meta_kubernetes_pod_container_name", "testcontainer0"),
                    ("__meta_kubernetes_pod_container_image", "testcontainer0:latest"),
                    ("__meta_kubernetes_pod_container_port_name", "testport1"),
                    ("__meta_kubernetes_pod_container_port_number", "9001"),
                    ("__meta_kubernetes_pod_container_port_protocol", "UDP"),
                    ("__meta_kubernetes_pod_container_init", "false"),
                    ("__meta_kubernetes_pod_container_id", "docker://a1b2c3d4e5f6"),
                ]),
                ls(&[
                    ("__address__", "1.2.3.4"),
                    ("__meta_kubernetes_pod_container_name", "testcontainer1"),
                    ("__meta_kubernetes_pod_container_image", "testcontainer1:latest"),
                    ("__meta_kubernetes_pod_container_init", "false"),
                    ("__meta_kubernetes_pod_container_id", "containerd://6f5e4d3c2b1a"),
                ]),
            ]
        );
        assert_eq!(
            tg.labels,
            ls(&[
                ("__meta_kubernetes_pod_name", "testpod"),
                ("__meta_kubernetes_namespace", "default"),
                ("__meta_kubernetes_pod_label_test_label", "testvalue"),
                ("__meta_kubernetes_pod_labelpresent_test_label", "true"),
                ("__meta_kubernetes_pod_annotation_test_annotation", "testannotationvalue"),
                ("__meta_kubernetes_pod_annotationpresent_test_annotation", "true"),
                ("__meta_kubernetes_pod_node_name", "testnode"),
                ("__meta_kubernetes_pod_ip", "1.2.3.4"),
                ("__meta_kubernetes_pod_host_ip", "2.3.4.5"),
                ("__meta_kubernetes_pod_ready", "true"),
                ("__meta_kubernetes_pod_phase", "Running"),
                ("__meta_kubernetes_pod_uid", "abc123"),
                ("__meta_kubernetes_pod_controller_kind", "testcontrollerkind"),
                ("__meta_kubernetes_pod_controller_name", "testcontrollername"),
            ])
        );
    }

    #[test]
    fn init_containers_come_last_with_their_own_status() {
        let tg = pod_group(&init_container_pod(), None);
        assert_eq!(
            tg.targets,
            vec![
                ls(&[
                    ("__address__", "1.2.3.4:9000"),
                    ("__meta_kubernetes_pod_container_name", "testcontainer"),
                    ("__meta_kubernetes_pod_container_image", "testcontainer:latest"),
                    ("__meta_kubernetes_pod_container_port_name", "testport"),
                    ("__meta_kubernetes_pod_container_port_number", "9000"),
                    ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
                    ("__meta_kubernetes_pod_container_init", "false"),
                    ("__meta_kubernetes_pod_container_id", "docker://a1b2c3d4e5f6"),
                ]),
                ls(&[
                    ("__address__", "1.2.3.4"),
                    ("__meta_kubernetes_pod_container_name", "initcontainer"),
                    ("__meta_kubernetes_pod_container_image", "initcontainer:latest"),
                    ("__meta_kubernetes_pod_container_init", "true"),
                    ("__meta_kubernetes_pod_container_id", "containerd://6f5e4d3c2b1a"),
                ]),
            ]
        );
        assert_eq!(tg.labels["__meta_kubernetes_pod_phase"], "Pending");
        assert_eq!(tg.labels["__meta_kubernetes_pod_ready"], "false");
        assert!(!tg.labels.contains_key("__meta_kubernetes_pod_controller_kind"));
    }

    #[test]
    fn pod_without_ip_has_no_targets_and_no_labels() {
        let mut pod = multi_port_pod();
        if let Some(st) = pod.status.as_mut() {
            st.pod_ip = None;
        }
        let tg = pod_group(&pod, None);
        assert_eq!(tg, TargetGroup { source: "pod/default/testpod".into(), targets: vec![], labels: LabelSet::new() });
        // A pod with no status at all is the same.
        pod.status = None;
        assert!(pod_group(&pod, None).targets.is_empty());
    }

    #[test]
    fn ready_unknown_without_condition_and_ipv6_address() {
        let pod: Pod = obj(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]},
            "status": {"podIP": "fd00::1"}
        }));
        let tg = pod_group(&pod, None);
        assert_eq!(tg.labels["__meta_kubernetes_pod_ready"], "unknown");
        assert_eq!(tg.labels["__meta_kubernetes_pod_phase"], "");
        assert_eq!(tg.targets[0]["__address__"], "[fd00::1]:80");
        assert_eq!(tg.targets[0]["__meta_kubernetes_pod_container_id"], "");
        assert_eq!(tg.targets[0]["__meta_kubernetes_pod_container_port_name"], "");
    }

    #[test]
    fn node_metadata_is_added_to_group_labels() {
        let node: Node = obj(json!({"metadata": {"name": "testnode", "labels": {"l1": "v1"}, "annotations": {"a.b": "c"}}}));
        let tg = pod_group(&multi_port_pod(), Some(&node));
        let mut want = pod_group(&multi_port_pod(), None).labels;
        want.extend(ls(&[
            ("__meta_kubernetes_node_name", "testnode"),
            ("__meta_kubernetes_node_label_l1", "v1"),
            ("__meta_kubernetes_node_labelpresent_l1", "true"),
            ("__meta_kubernetes_node_annotation_a_b", "c"),
            ("__meta_kubernetes_node_annotationpresent_a_b", "true"),
        ]));
        assert_eq!(tg.labels, want);
    }
}
