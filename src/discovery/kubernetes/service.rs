//! The `service` role: one target per service port, addressed by the
//! service's cluster DNS name; Prometheus' `discovery/kubernetes/service.go`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;

use super::meta::{LabelSet, NAMESPACE_LABEL, add_object_meta_labels, join_host_port, name_of, namespace_of, namespaced_source, s};
use crate::discovery::TargetGroup;
use crate::discovery::target_group::ADDRESS_LABEL;

const SERVICE_PORT_NAME: &str = "__meta_kubernetes_service_port_name";
const SERVICE_PORT_NUMBER: &str = "__meta_kubernetes_service_port_number";
const SERVICE_PORT_PROTOCOL: &str = "__meta_kubernetes_service_port_protocol";
const SERVICE_CLUSTER_IP: &str = "__meta_kubernetes_service_cluster_ip";
const SERVICE_LOADBALANCER_IP: &str = "__meta_kubernetes_service_loadbalancer_ip";
const SERVICE_EXTERNAL_NAME: &str = "__meta_kubernetes_service_external_name";
const SERVICE_TYPE: &str = "__meta_kubernetes_service_type";

/// The namespace, name, labels and annotations of a service; also attached
/// by the endpoint roles to the groups of the service's endpoints.
pub(crate) fn service_labels(svc: &Service) -> LabelSet {
    let mut ls = BTreeMap::from([(NAMESPACE_LABEL.to_string(), namespace_of(&svc.metadata).to_string())]);
    add_object_meta_labels(&mut ls, &svc.metadata, "service");
    ls
}

/// The load balancer's addresses: the IPs of `status.loadBalancer.ingress`
/// joined with commas (for relabeling to split), else the deprecated
/// `spec.loadBalancerIP`.
fn load_balancer_ips(svc: &Service) -> String {
    let ips: Vec<&str> = svc
        .status
        .as_ref()
        .and_then(|st| st.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|ing| ing.ip.as_deref())
        .filter(|ip| !ip.is_empty())
        .collect();
    if !ips.is_empty() {
        return ips.join(",");
    }
    svc.spec.as_ref().map(|sp| s(&sp.load_balancer_ip)).unwrap_or_default()
}

/// The target group of a service, source `svc/<namespace>/<name>`: one target
/// `<name>.<namespace>.svc:<port>` per port, so the blackbox exporter can
/// probe each through cluster DNS.
pub fn service_group(svc: &Service) -> TargetGroup {
    let mut tg = TargetGroup { source: namespaced_source("svc", &svc.metadata), targets: Vec::new(), labels: service_labels(svc) };
    let Some(spec) = svc.spec.as_ref() else {
        return tg;
    };
    let type_ = s(&spec.type_);
    let host = format!("{}.{}.svc", name_of(&svc.metadata), namespace_of(&svc.metadata));
    for port in spec.ports.iter().flatten() {
        let number = port.port.to_string();
        let mut t = BTreeMap::from([
            (ADDRESS_LABEL.to_string(), join_host_port(&host, &number)),
            (SERVICE_PORT_NAME.to_string(), s(&port.name)),
            (SERVICE_PORT_NUMBER.to_string(), number),
            (SERVICE_PORT_PROTOCOL.to_string(), s(&port.protocol)),
            (SERVICE_TYPE.to_string(), type_.clone()),
        ]);
        // An ExternalName service has no cluster IP, only the DNS alias.
        if type_ == "ExternalName" {
            t.insert(SERVICE_EXTERNAL_NAME.to_string(), s(&spec.external_name));
        } else {
            t.insert(SERVICE_CLUSTER_IP.to_string(), s(&spec.cluster_ip));
        }
        if type_ == "LoadBalancer" {
            t.insert(SERVICE_LOADBALANCER_IP.to_string(), load_balancer_ips(svc));
        }
        tg.targets.push(t);
    }
    tg
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::meta::testutil::{ls, obj};
    use super::*;

    #[test]
    fn cluster_ip_service_one_target_per_port() {
        let svc: Service = obj(json!({
            "metadata": {"name": "testservice", "namespace": "default",
                "labels": {"test-label": "testvalue"}, "annotations": {"test-annotation": "testannotationvalue"}},
            "spec": {"type": "ClusterIP", "clusterIP": "10.0.0.1", "ports": [
                {"name": "testport0", "protocol": "TCP", "port": 30900},
                {"name": "testport1", "protocol": "UDP", "port": 30901}
            ]}
        }));
        let tg = service_group(&svc);
        assert_eq!(tg.source, "svc/default/testservice");
        assert_eq!(
            tg.targets,
            vec![
                ls(&[
                    ("__address__", "testservice.default.svc:30900"),
                    ("__meta_kubernetes_service_type", "ClusterIP"),
                    ("__meta_kubernetes_service_cluster_ip", "10.0.0.1"),
                    ("__meta_kubernetes_service_port_name", "testport0"),
                    ("__meta_kubernetes_service_port_number", "30900"),
                    ("__meta_kubernetes_service_port_protocol", "TCP"),
                ]),
                ls(&[
                    ("__address__", "testservice.default.svc:30901"),
                    ("__meta_kubernetes_service_type", "ClusterIP"),
                    ("__meta_kubernetes_service_cluster_ip", "10.0.0.1"),
                    ("__meta_kubernetes_service_port_name", "testport1"),
                    ("__meta_kubernetes_service_port_number", "30901"),
                    ("__meta_kubernetes_service_port_protocol", "UDP"),
                ]),
            ]
        );
        assert_eq!(
            tg.labels,
            ls(&[
                ("__meta_kubernetes_service_name", "testservice"),
                ("__meta_kubernetes_namespace", "default"),
                ("__meta_kubernetes_service_label_test_label", "testvalue"),
                ("__meta_kubernetes_service_labelpresent_test_label", "true"),
                ("__meta_kubernetes_service_annotation_test_annotation", "testannotationvalue"),
                ("__meta_kubernetes_service_annotationpresent_test_annotation", "true"),
            ])
        );
    }

    #[test]
    fn external_name_service_has_no_cluster_ip() {
        let svc: Service = obj(json!({
            "metadata": {"name": "testservice", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "FooExternalName", "ports": [{"name": "testport", "protocol": "TCP", "port": 31900}]}
        }));
        assert_eq!(
            service_group(&svc).targets,
            vec![ls(&[
                ("__address__", "testservice.default.svc:31900"),
                ("__meta_kubernetes_service_type", "ExternalName"),
                ("__meta_kubernetes_service_external_name", "FooExternalName"),
                ("__meta_kubernetes_service_port_name", "testport"),
                ("__meta_kubernetes_service_port_number", "31900"),
                ("__meta_kubernetes_service_port_protocol", "TCP"),
            ])]
        );
    }

    #[test]
    fn load_balancer_ips_from_status_else_spec() {
        let mut svc: Service = obj(json!({
            "metadata": {"name": "lb", "namespace": "default"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.1", "loadBalancerIP": "127.0.0.9",
                "ports": [{"name": "http", "protocol": "TCP", "port": 80}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}, {"hostname": "lb.example"}, {"ip": "127.0.0.2"}]}}
        }));
        let t = &service_group(&svc).targets[0];
        assert_eq!(t["__meta_kubernetes_service_loadbalancer_ip"], "127.0.0.1,127.0.0.2");
        assert_eq!(t["__meta_kubernetes_service_cluster_ip"], "10.0.0.1");
        svc.status = None;
        assert_eq!(service_group(&svc).targets[0]["__meta_kubernetes_service_loadbalancer_ip"], "127.0.0.9");
    }

    #[test]
    fn service_without_ports_has_labels_but_no_targets() {
        let svc: Service = obj(json!({"metadata": {"name": "s", "namespace": "n"}, "spec": {}}));
        let tg = service_group(&svc);
        assert!(tg.targets.is_empty());
        assert_eq!(tg.labels["__meta_kubernetes_service_name"], "s");
    }
}
