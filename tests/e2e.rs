//! End-to-end tests on a real control plane (issue 9): upstream etcd,
//! kube-apiserver, kube-controller-manager and kube-scheduler, with the
//! node agent running pods as local processes, or an existing cluster
//! named by `HEARTH_E2E_KUBECONFIG`. `e2e/run` runs only these.
//!
//! Here: the node agent's own behaviour. e2e/scenarios/: the operator
//! scenarios. Skipped, loudly, when the control plane is not built on this
//! host; see e2e/README.md.

#[path = "support/chart.rs"]
#[allow(dead_code)]
mod chart;
#[path = "../e2e/cluster.rs"]
mod cluster;
#[path = "../e2e/harness.rs"]
mod harness;
#[path = "../e2e/node_agent/mod.rs"]
mod node_agent;
#[path = "support/procs.rs"]
#[allow(dead_code)]
mod procs;
#[path = "../e2e/scenarios/mod.rs"]
mod scenarios;

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use harness::{Env, loud, scenario, wait};
use node_agent::ImageTable;

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

/// Pod IPs of node-exporter pods that are Running and Ready.
async fn ready_pod_ips(pods: &Api<Pod>) -> Result<Vec<String>, String> {
    let list = pods.list(&ListParams::default().labels("app=node-exporter")).await.map_err(|e| e.to_string())?;
    let mut ips = Vec::new();
    for p in &list.items {
        let s = p.status.as_ref().ok_or("no status yet")?;
        let ready = s.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True");
        if p.metadata.deletion_timestamp.is_none() && s.phase.as_deref() == Some("Running") && ready {
            ips.extend(s.pod_ip.clone());
        }
    }
    Ok(ips)
}

/// What the node agent tests need: their own cluster (they check the
/// agent itself) and the binaries they run as pods.
fn agent_only(env: &Env) -> bool {
    if !env.own_cluster() {
        loud("SKIPPED node agent test: it needs our own control plane, not HEARTH_E2E_KUBECONFIG's cluster");
    }
    env.own_cluster()
}

#[test]
fn node_exporter_deployment_runs_serves_scales_and_goes_away() {
    if !std::path::Path::new(NODE_EXPORTER).is_file() {
        return loud(&format!("SKIPPED e2e: {NODE_EXPORTER} is not installed"));
    }
    let images = ImageTable(vec![("quay.io/prometheus/node-exporter".into(), PathBuf::from(NODE_EXPORTER))]);
    scenario(concat!(module_path!(), "::node_exporter_deployment_runs_serves_scales_and_goes_away"), images, async |env| {
        if !agent_only(env) {
            return Ok(());
        }
        let client = &env.client;
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        env.apply(scenarios::exporter_deployment("default", 1)).await?;
        env.apply(scenarios::exporter_service("default")).await?;

        let ips = wait("one Running+Ready pod", Duration::from_secs(60), || async {
            let ips = ready_pod_ips(&pods).await?;
            if ips.len() == 1 { Ok(ips) } else { Err(format!("ready pod IPs {ips:?}")) }
        })
        .await?;
        let ip = ips[0].clone();
        let net = std::env::var("HEARTH_E2E_POD_NET").unwrap_or_default();
        if !ip.starts_with(&format!("{net}.")) || ip.ends_with(".1") {
            return Err(format!("pod IP {ip} must be its own address in {net}.x"));
        }
        env.step(&format!("pod ready at {ip}"));

        // The EndpointSlice controller picks the pod up.
        let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
        wait("EndpointSlice listing the pod IP", Duration::from_secs(30), || async {
            let lp = ListParams::default().labels("kubernetes.io/service-name=node-exporter");
            let list = slices.list(&lp).await.map_err(|e| e.to_string())?;
            let addrs: Vec<String> = list.items.iter().flat_map(|s| &s.endpoints).flat_map(|e| e.addresses.clone()).collect();
            if addrs.contains(&ip) { Ok(()) } else { Err(format!("slices {}, addresses {addrs:?}", list.items.len())) }
        })
        .await?;
        env.step(&format!("EndpointSlice lists {ip}"));

        let r = reqwest::get(format!("http://{ip}:9100/metrics")).await.and_then(|r| r.error_for_status());
        let text = r.map_err(|e| format!("GET {ip}:9100/metrics: {e}"))?.text().await.unwrap_or_default();
        if !text.contains("node_exporter_build_info") {
            return Err(format!("not node-exporter output: {text:.300}"));
        }

        let scale = json!({"spec": {"replicas": 2}});
        deployments.patch("node-exporter", &PatchParams::default(), &Patch::Merge(&scale)).await.map_err(|e| format!("scale: {e}"))?;
        let two = wait("two Running+Ready pods", Duration::from_secs(45), || async {
            let ips = ready_pod_ips(&pods).await?;
            if ips.len() == 2 { Ok(ips) } else { Err(format!("ready pod IPs {ips:?}")) }
        })
        .await?;
        if two[0] == two[1] {
            return Err(format!("two pods share an address: {two:?}"));
        }
        for ip in &two {
            let r = reqwest::get(format!("http://{ip}:9100/metrics")).await.and_then(|r| r.error_for_status());
            r.map_err(|e| format!("pod at {ip} does not answer: {e}"))?;
        }
        env.step(&format!("scaled to 2: {two:?}"));

        let pids = env.pids();
        if pids.len() != 2 {
            return Err(format!("expected one process per pod, got {pids:?}"));
        }
        deployments.delete("node-exporter", &DeleteParams::background()).await.map_err(|e| format!("delete deployment: {e}"))?;
        wait("pods and processes gone", Duration::from_secs(45), || async {
            let left = pods.list(&ListParams::default().labels("app=node-exporter")).await.map_err(|e| e.to_string())?;
            let running = env.pids();
            if left.items.is_empty() && running.is_empty() {
                Ok(())
            } else {
                Err(format!("{} pods, processes {running:?}", left.items.len()))
            }
        })
        .await?;
        if let Some(pid) = pids.iter().find(|pid| PathBuf::from(format!("/proc/{pid}")).exists()) {
            return Err(format!("process {pid} still exists"));
        }
        env.step("deployment deleted, pods and processes gone");
        Ok(())
    });
}

/// A bare pod in `default` from a JSON spec fragment.
fn bare_pod(name: &str, spec: serde_json::Value) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name, "namespace": "default"}, "spec": spec}))
        .unwrap_or_else(|e| panic!("pod object: {e}"))
}

/// Phase and first container status of `name`, for polling.
async fn pod_state(pods: &Api<Pod>, name: &str) -> Result<(String, serde_json::Value), String> {
    let p = pods.get(name).await.map_err(|e| e.to_string())?;
    let s = p.status.ok_or("no status")?;
    let cs = s.container_statuses.and_then(|v| v.into_iter().next()).ok_or("no container status")?;
    let cs = serde_json::to_value(cs).map_err(|e| e.to_string())?;
    Ok((s.phase.unwrap_or_default(), cs))
}

/// Pod status follows the processes (exit codes, restarts, images with
/// no local binary), and each pod talks to the API server with its own
/// ServiceAccount's token, so RBAC decides what it may do.
#[test]
fn pod_status_restarts_and_service_account_rbac_are_real() {
    const KUBECTL: &str = "/usr/bin/kubectl";
    for b in [KUBECTL, "/bin/true", "/bin/false"] {
        if !std::path::Path::new(b).is_file() {
            return loud(&format!("SKIPPED e2e: {b} is not installed"));
        }
    }
    let images = ImageTable(vec![
        ("example.com/true".into(), PathBuf::from("/bin/true")),
        ("example.com/false".into(), PathBuf::from("/bin/false")),
        ("registry.k8s.io/kubectl".into(), PathBuf::from(KUBECTL)),
    ]);
    scenario(concat!(module_path!(), "::pod_status_restarts_and_service_account_rbac_are_real"), images, async |env| {
        if !agent_only(env) {
            return Ok(());
        }
        let client = &env.client;
        env.apply(json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader", "namespace": "default"}})).await?;
        env.apply(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "reader-view", "namespace": "default"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "default"}]}))
            .await?;

        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let kubectl = |sa: &str| {
            json!({"restartPolicy": "Never", "serviceAccountName": sa, "containers": [{
                "name": "kubectl", "image": "registry.k8s.io/kubectl:v1.33.0",
                "command": ["kubectl"], "args": ["get", "pods", "-n", "default"]}]})
        };
        let specs = [
            ("ok", json!({"restartPolicy": "Never", "containers": [{"name": "c", "image": "example.com/true"}]})),
            ("crash", json!({"restartPolicy": "Always", "containers": [{"name": "c", "image": "example.com/false"}]})),
            ("unknown", json!({"containers": [{"name": "c", "image": "example.com/nothing-maps-this"}]})),
            ("denied", kubectl("default")),
            ("allowed", kubectl("reader")),
        ];
        for (name, spec) in specs {
            pods.create(&PostParams::default(), &bare_pod(name, spec)).await.map_err(|e| format!("create pod {name}: {e}"))?;
        }

        let expect = |name: &'static str, phase: &'static str, check: fn(&serde_json::Value) -> bool| {
            let pods = pods.clone();
            async move {
                wait(&format!("pod {name} {phase}"), Duration::from_secs(40), || async {
                    let (p, cs) = pod_state(&pods, name).await?;
                    if p == phase && check(&cs) { Ok(()) } else { Err(format!("phase {p}, container {cs}")) }
                })
                .await
            }
        };
        expect("ok", "Succeeded", |cs| cs["state"]["terminated"]["exitCode"] == 0).await?;
        expect("crash", "Running", |cs| cs["restartCount"].as_i64().unwrap_or(0) >= 1 && cs["lastState"]["terminated"]["exitCode"] == 1)
            .await?;
        expect("unknown", "Pending", |cs| cs["state"]["waiting"]["reason"] == "ErrImagePull").await?;
        expect("denied", "Failed", |cs| cs["state"]["terminated"]["exitCode"] == 1).await?;
        expect("allowed", "Succeeded", |cs| cs["state"]["terminated"]["exitCode"] == 0).await?;
        env.step("exit codes, restarts, unmapped image and RBAC all reflected in pod status");
        Ok(())
    });
}

/// The freshly built hearth binary runs as a pod: config from a
/// ConfigMap volume, TSDB in an emptyDir, pod-role discovery through its
/// own ServiceAccount, and it scrapes a node-exporter pod (`up` == 1).
#[test]
fn hearth_server_pod_discovers_and_scrapes_node_exporter() {
    if !std::path::Path::new(NODE_EXPORTER).is_file() {
        return loud(&format!("SKIPPED e2e: {NODE_EXPORTER} is not installed"));
    }
    let images = ImageTable(vec![
        ("quay.io/prometheus/node-exporter".into(), PathBuf::from(NODE_EXPORTER)),
        ("ghcr.io/hearth-dev/hearth".into(), PathBuf::from(env!("CARGO_BIN_EXE_hearth"))),
    ]);
    scenario(concat!(module_path!(), "::hearth_server_pod_discovers_and_scrapes_node_exporter"), images, async |env| {
        if !agent_only(env) {
            return Ok(());
        }
        let config = r#"
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: ne
    scrape_interval: 1s
    kubernetes_sd_configs: [{role: pod, namespaces: {names: [default]}}]
    relabel_configs:
      - {source_labels: [__meta_kubernetes_pod_label_app], regex: ne, action: keep}
      - {source_labels: [__meta_kubernetes_pod_container_port_name], regex: metrics, action: keep}
"#;
        let objects = [
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "hearth", "namespace": "default"}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "hearth-view", "namespace": "default"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                   "subjects": [{"kind": "ServiceAccount", "name": "hearth", "namespace": "default"}]}),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "hearth", "namespace": "default"}, "data": {"hearth.yml": config}}),
        ];
        for o in objects {
            env.apply(o).await?;
        }
        let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
        let ne = json!({"containers": [{"name": "ne", "image": "quay.io/prometheus/node-exporter:v1.9.1",
            "args": ["--web.listen-address=:9100"], "ports": [{"name": "metrics", "containerPort": 9100}]}]});
        let mut ne_pod = bare_pod("ne", ne);
        ne_pod.metadata.labels = Some([("app".to_string(), "ne".to_string())].into());
        let hearth = json!({"serviceAccountName": "hearth", "containers": [{
            "name": "hearth", "image": "ghcr.io/hearth-dev/hearth:dev",
            "args": ["server", "--config.file=/etc/hearth/hearth.yml", "--storage.tsdb.path=/data",
                     "--web.listen-address=0.0.0.0:9090"],
            "ports": [{"name": "web", "containerPort": 9090}],
            "readinessProbe": {"httpGet": {"path": "/-/ready", "port": "web"}, "periodSeconds": 1},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/hearth"}, {"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "config", "configMap": {"name": "hearth"}}, {"name": "data", "emptyDir": {}}]});
        for p in [ne_pod, bare_pod("hearth", hearth)] {
            pods.create(&PostParams::default(), &p).await.map_err(|e| format!("create pod: {e}"))?;
        }
        wait("hearth pod Ready", Duration::from_secs(60), || async {
            let p = pods.get("hearth").await.map_err(|e| e.to_string())?;
            let s = p.status.ok_or("no status")?;
            let ready = s.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True");
            if ready { Ok(()) } else { Err(format!("phase {:?}", s.phase)) }
        })
        .await?;
        env.step("hearth server pod ready");
        let m = wait("up{job=\"ne\"} == 1", Duration::from_secs(60), || async {
            let result = harness::query(env, "default", "hearth", 9090, r#"up{job="ne"}"#).await?;
            if result.len() == 1 && result[0]["value"][1] == "1" { Ok(result[0]["metric"].clone()) } else { Err(format!("{result:?}")) }
        })
        .await?;
        env.step(&format!("up{{job=\"ne\"}} == 1 for {m}"));
        Ok(())
    });
}

/// The scenarios also run against an existing cluster: here our own
/// control plane and node agent play that cluster, and scenario 2 runs
/// against it in a second test process through `HEARTH_E2E_KUBECONFIG`,
/// starting no control plane and no agent of its own.
#[test]
fn scenarios_run_against_an_existing_cluster_named_by_kubeconfig() {
    if let Some(p) = scenarios::missing_peer() {
        return loud(&format!("SKIPPED e2e: {p} is not installed"));
    }
    scenario(
        concat!(module_path!(), "::scenarios_run_against_an_existing_cluster_named_by_kubeconfig"),
        scenarios::images(),
        async |env| {
            if !agent_only(env) {
                return Ok(());
            }
            let exe = std::env::current_exe().map_err(|e| e.to_string())?;
            let test = "scenarios::scrape::service_monitor_targets_are_discovered_through_endpointslices_and_scraped";
            let log = env.kubeconfig.with_file_name("existing-cluster-run.log");
            let file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
            let err = file.try_clone().map_err(|e| e.to_string())?;
            let mut child = std::process::Command::new(exe)
                .args([test, "--exact", "--nocapture", "--test-threads=1"])
                .env("HEARTH_E2E_KUBECONFIG", &env.kubeconfig)
                .stdout(file)
                .stderr(err)
                .spawn()
                .map_err(|e| format!("running the second test process: {e}"))?;
            let deadline = std::time::Instant::now() + Duration::from_secs(300);
            let status = loop {
                match child.try_wait() {
                    Ok(Some(s)) => break Some(s),
                    Ok(None) if std::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(250)).await,
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break None;
                    }
                }
            };
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if !status.is_some_and(|s| s.success()) || !text.contains("1 passed") {
                return Err(format!("scenario 2 against the existing cluster failed:\n{text}"));
            }
            if text.contains("control plane and node agent ready") {
                return Err(format!("the second process started a control plane of its own:\n{text}"));
            }
            let figure = text.lines().find(|l| l.contains("FIGURE")).unwrap_or("no FIGURE line");
            env.step(&format!("scenario 2 passed against the existing cluster: {figure}"));
            Ok(())
        },
    );
}
