//! The operator scenarios of issue 9 and the objects they share: the
//! Helm install, an exporter Deployment with its Service and
//! ServiceMonitor, and waits on what the operator produces.

mod alerting;
mod failover;
mod install;
mod rejected;
mod scrape;
mod shards;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

use crate::harness::{Env, loud, query, scenario, wait};
use crate::node_agent::ImageTable;

/// The release namespace of every install.
pub const RELEASE_NS: &str = "monitoring";
/// Where the scraped applications live.
pub const APPS_NS: &str = "apps";
/// The Prometheus object the chart creates (`prometheus.enabled`).
pub const PROMETHEUS: &str = "hearth";
pub const WEB_PORT: u16 = 9090;
const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";
const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// Images the scenarios use, and the local binaries standing in for them.
pub fn images() -> ImageTable {
    ImageTable(vec![
        ("ghcr.io/hearth-dev/hearth".into(), PathBuf::from(env!("CARGO_BIN_EXE_hearth"))),
        ("quay.io/prometheus/node-exporter".into(), PathBuf::from(NODE_EXPORTER)),
        ("quay.io/prometheus/alertmanager".into(), PathBuf::from(ALERTMANAGER)),
    ])
}

/// The peers the scenarios run as pods, or which one is missing.
pub fn missing_peer() -> Option<&'static str> {
    [NODE_EXPORTER, ALERTMANAGER].into_iter().find(|p| !std::path::Path::new(p).is_file())
}

/// Runs an operator scenario (see [`scenario`]) with [`images`], or says
/// SKIPPED when a peer it runs as a pod is not installed.
pub fn operator_scenario<B>(name: &str, body: B)
where
    B: AsyncFnOnce(&Env) -> Result<(), String>,
{
    match missing_peer() {
        Some(p) => loud(&format!("SKIPPED e2e {name}: {p} is not installed")),
        None => scenario(name, images(), body),
    }
}

/// `helm install hearth charts/hearth` into [`RELEASE_NS`] with `sets`
/// (`key=value`). Against an existing cluster, `HEARTH_E2E_IMAGE`
/// (`repository:tag`) names the image that cluster can pull.
pub fn helm_install(env: &Env, sets: &[&str]) -> Result<(), String> {
    let mut args = vec!["install", "hearth", "charts/hearth", "--namespace", RELEASE_NS, "--create-namespace"];
    let image = std::env::var("HEARTH_E2E_IMAGE").ok().filter(|_| !env.own_cluster());
    let image_sets: Vec<String> = match image.as_deref().and_then(|i| i.rsplit_once(':')) {
        Some((repo, tag)) => vec![format!("image.repository={repo}"), format!("image.tag={tag}")],
        None => Vec::new(),
    };
    for s in sets.iter().copied().chain(image_sets.iter().map(String::as_str)) {
        args.extend(["--set", s]);
    }
    env.helm(&args).map(|_| ())
}

/// Waits until the operator Deployment has `replicas` ready pods.
pub async fn operator_ready(env: &Env, replicas: i32) -> Result<(), String> {
    let api: Api<Deployment> = Api::namespaced(env.client.clone(), RELEASE_NS);
    wait("operator Deployment ready", Duration::from_secs(90), || async {
        let d = api.get_opt("hearth-operator").await.map_err(|e| e.to_string())?.ok_or("no Deployment yet")?;
        let ready = d.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0);
        if ready == replicas { Ok(()) } else { Err(format!("{ready} of {replicas} ready")) }
    })
    .await
}

/// Waits until the three CRDs report Established.
pub async fn crds_established(env: &Env) -> Result<(), String> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    wait("CRDs Established", Duration::from_secs(60), || async {
        for name in ["prometheuses", "servicemonitors", "alertrules"] {
            let name = format!("{name}.monitoring.hearth.dev");
            let crd = api.get_opt(&name).await.map_err(|e| e.to_string())?.ok_or(format!("{name} missing"))?;
            let established =
                crd.status.iter().flat_map(|s| s.conditions.iter().flatten()).any(|c| c.type_ == "Established" && c.status == "True");
            if !established {
                return Err(format!("{name} not Established"));
            }
        }
        Ok(())
    })
    .await
}

/// The Running and Ready pods matching `labels` in `ns`.
pub async fn ready_pods(env: &Env, ns: &str, labels: &str) -> Result<Vec<Pod>, String> {
    let api: Api<Pod> = Api::namespaced(env.client.clone(), ns);
    let list = api.list(&ListParams::default().labels(labels)).await.map_err(|e| e.to_string())?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| {
            let s = p.status.as_ref();
            p.metadata.deletion_timestamp.is_none()
                && s.and_then(|s| s.phase.as_deref()) == Some("Running")
                && s.into_iter().flat_map(|s| s.conditions.iter().flatten()).any(|c| c.type_ == "Ready" && c.status == "True")
        })
        .collect())
}

/// Waits until the `hearth server` pods of Prometheus `ns/name` (all
/// shards) are `count` and ready; their names, sorted.
pub async fn server_pods(env: &Env, ns: &str, name: &str, count: usize) -> Result<Vec<String>, String> {
    let labels = format!("monitoring.hearth.dev/prometheus={ns}.{name}");
    wait("hearth server pods ready", Duration::from_secs(120), || async {
        let mut names: Vec<String> = ready_pods(env, ns, &labels).await?.into_iter().filter_map(|p| p.metadata.name).collect();
        names.sort();
        if names.len() == count { Ok(names) } else { Err(format!("ready: {names:?}")) }
    })
    .await
}

/// The exporter the scenarios scrape: namespace, Deployment, Service.
pub fn exporter(replicas: i32) -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": APPS_NS}}),
        exporter_deployment(APPS_NS, replicas),
        exporter_service(APPS_NS),
    ]
}

/// A node-exporter Deployment (`app: node-exporter`, port `metrics`,
/// ready once it serves /metrics).
pub fn exporter_deployment(ns: &str, replicas: i32) -> Value {
    let labels = json!({"app": "node-exporter"});
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "node-exporter", "namespace": ns},
    "spec": {
        "replicas": replicas,
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels},
            "spec": {"terminationGracePeriodSeconds": 5, "containers": [{
                "name": "node-exporter",
                "image": "quay.io/prometheus/node-exporter:v1.9.1",
                "args": ["--web.listen-address=0.0.0.0:9100", "--no-collector.hwmon"],
                "ports": [{"name": "metrics", "containerPort": 9100}],
                "readinessProbe": {"httpGet": {"path": "/metrics", "port": "metrics"}, "periodSeconds": 1}
            }]}
        }
    }})
}

/// The Service in front of [`exporter_deployment`].
pub fn exporter_service(ns: &str) -> Value {
    let labels = json!({"app": "node-exporter"});
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "node-exporter", "namespace": ns, "labels": labels},
        "spec": {"selector": labels, "ports": [{"name": "metrics", "port": 9100, "targetPort": "metrics"}]}})
}

/// A ServiceMonitor on the exporter's Service, scraped every second, with
/// `extra` merged into its endpoint (e.g. relabelings).
pub fn service_monitor(name: &str, extra: Value) -> Value {
    let mut endpoint = json!({"port": "metrics", "interval": "1s"});
    if let (Some(e), Some(x)) = (endpoint.as_object_mut(), extra.as_object()) {
        e.extend(x.clone());
    }
    json!({"apiVersion": "monitoring.hearth.dev/v1alpha1", "kind": "ServiceMonitor",
        "metadata": {"name": name, "namespace": APPS_NS},
        "spec": {"selector": {"matchLabels": {"app": "node-exporter"}}, "endpoints": [endpoint]}})
}

/// Applies `objects` in order (namespaces first, as listed).
pub async fn apply_all(env: &Env, objects: Vec<Value>) -> Result<(), String> {
    for o in objects {
        env.apply(o).await?;
    }
    Ok(())
}

/// Scales the exporter Deployment.
pub async fn scale_exporter(env: &Env, replicas: i32) -> Result<(), String> {
    let api: Api<Deployment> = Api::namespaced(env.client.clone(), APPS_NS);
    let body = json!({"spec": {"replicas": replicas}});
    api.patch("node-exporter", &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&body))
        .await
        .map(|_| ())
        .map_err(|e| format!("scale node-exporter: {e}"))
}

/// `instance` labels of the series `promql` returns on server pod `pod`.
pub async fn instances(env: &Env, pod: &str, promql: &str) -> Result<Vec<String>, String> {
    Ok(instance_labels(&query(env, RELEASE_NS, pod, WEB_PORT, promql).await?))
}

/// The sorted `instance` labels of a query result.
fn instance_labels(result: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = result.iter().filter_map(|r| r["metric"]["instance"].as_str().map(String::from)).collect();
    v.sort();
    v
}

/// Waits until `promql` on `pod` returns exactly `count` series, each
/// with value 1; their instances. Also the time it took.
pub async fn wait_up(env: &Env, pod: &str, promql: &str, count: usize, timeout: Duration) -> Result<(Vec<String>, Duration), String> {
    let t = Instant::now();
    let r = wait(&format!("{count} series of {promql} == 1"), timeout, || async {
        let result = query(env, RELEASE_NS, pod, WEB_PORT, promql).await?;
        let all_one = result.iter().all(|r| r["value"][1] == "1");
        if result.len() == count && all_one {
            Ok(instance_labels(&result))
        } else {
            Err(format!("{} series: {}", result.len(), Value::Array(result)))
        }
    })
    .await?;
    Ok((r, t.elapsed()))
}
