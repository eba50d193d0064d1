//! Kubernetes pod discovery at scale: 10k pods × 2 container ports through
//! the pod role and a typical relabel config (annotation opt-in, port from
//! an annotation, pod labels mapped, namespace/pod/container copied).
//!
//! `cargo bench --bench kubernetes_sd` prints, for the whole set: the time
//! to build the target groups and the heap they hold, the time to relabel
//! them into scrape targets and the heap those hold; then the time to apply
//! one pod change (rebuild that pod's group and its targets) and to copy the
//! unchanged groups into the update the provider sends. Heap figures
//! come from a counting allocator, so they are exact live bytes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hearth::config::Config;
use hearth::discovery::kubernetes::pod::pod_group;
use hearth::relabel::Relabeler;
use hearth::scrape::target::{Populated, TargetDefaults, populate};
use k8s_openapi::api::core::v1::Pod;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static ALLOC: counting_alloc::Counting = counting_alloc::Counting;

const PODS: usize = 10_000;

fn pod(i: usize) -> Pod {
    let ns = format!("team-{}", i % 50);
    let json = serde_json::json!({
        "metadata": {
            "name": format!("api-{i}-7d9f8b6c5d-x{i:05}"),
            "namespace": ns,
            "uid": format!("5f0c8a2e-0000-4000-8000-{i:012}"),
            "labels": {"app": format!("api-{}", i % 200), "pod-template-hash": "7d9f8b6c5d", "tier": "backend", "app.kubernetes.io/version": "1.4.2"},
            "annotations": {"prometheus.io/scrape": if i % 10 == 0 { "false" } else { "true" }, "prometheus.io/port": "8080", "kubectl.kubernetes.io/restartedAt": "2026-11-01T00:00:00Z"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("api-{}-7d9f8b6c5d", i % 200), "uid": "u", "controller": true}]
        },
        "spec": {
            "nodeName": format!("node-{}", i % 100),
            "containers": [{
                "name": "api",
                "image": "registry.example/api:1.4.2",
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}, {"name": "grpc", "containerPort": 9090, "protocol": "TCP"}]
            }]
        },
        "status": {
            "phase": "Running",
            "podIP": format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256),
            "hostIP": format!("192.168.0.{}", i % 100),
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "api", "containerID": format!("containerd://{i:064}"), "image": "registry.example/api:1.4.2", "imageID": "", "ready": true, "restartCount": 0}]
        }
    });
    serde_json::from_value(json).expect("valid pod")
}

const RELABEL: &str = r#"
scrape_configs:
  - job_name: kubernetes-pods
    kubernetes_sd_configs: [{role: pod}]
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]
        action: keep
        regex: "true"
      - source_labels: [__meta_kubernetes_pod_container_port_name]
        action: keep
        regex: http
      - source_labels: [__address__, __meta_kubernetes_pod_annotation_prometheus_io_port]
        action: replace
        regex: '([^:]+)(?::\d+)?;(\d+)'
        replacement: '$1:$2'
        target_label: __address__
      - action: labelmap
        regex: __meta_kubernetes_pod_label_(.+)
      - source_labels: [__meta_kubernetes_namespace]
        target_label: namespace
      - source_labels: [__meta_kubernetes_pod_name]
        target_label: pod
      - source_labels: [__meta_kubernetes_pod_container_name]
        target_label: container
"#;

fn mib(bytes: isize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let pods: Vec<Pod> = (0..PODS).map(pod).collect();
    let cfg = Config::parse(RELABEL, std::path::Path::new("/")).expect("config");
    let sc = &cfg.scrape_configs[0];
    let relabel = Relabeler::new(&sc.relabel_configs).expect("relabel");
    let defaults = TargetDefaults {
        job_name: sc.job_name.clone(),
        interval: sc.scrape_interval,
        timeout: sc.scrape_timeout,
        metrics_path: sc.metrics_path.clone(),
        scheme: sc.scheme.clone(),
        params: sc.params.clone(),
    };
    let targets_of = |g: &hearth::discovery::TargetGroup| {
        let mut out = Vec::new();
        for t in &g.targets {
            let mut labels: BTreeMap<String, String> = g.labels.clone();
            labels.extend(t.iter().map(|(k, v)| (k.clone(), v.clone())));
            if let Ok(Populated::Target(t)) = populate(&labels, &defaults, &relabel) {
                out.push(t);
            }
        }
        out
    };

    let before = counting_alloc::live();
    let t0 = Instant::now();
    let groups: Vec<std::sync::Arc<_>> = pods.iter().map(|p| std::sync::Arc::new(pod_group(p, None))).collect();
    let build = t0.elapsed();
    let groups_bytes = counting_alloc::live() - before;
    let n_targets: usize = groups.iter().map(|g| g.targets.len()).sum();

    let before = counting_alloc::live();
    let t0 = Instant::now();
    let targets: Vec<_> = groups.iter().flat_map(|g| targets_of(g)).collect();
    let relabel_time = t0.elapsed();
    let targets_bytes = counting_alloc::live() - before;

    // One pod changes (its readiness flips): rebuild its group and targets.
    let mut changed = pods[1234].clone();
    if let Some(c) = changed.status.as_mut().and_then(|s| s.conditions.as_mut()).and_then(|c| c.first_mut()) {
        c.status = "False".to_string();
    }
    let runs: Vec<Duration> = (0..2000)
        .map(|_| {
            let t0 = Instant::now();
            let g = pod_group(&changed, None);
            let t = targets_of(&g);
            std::hint::black_box((g, t));
            t0.elapsed()
        })
        .collect();

    // With one pod changed, the provider reuses the other pods' groups
    // (shared into the update it sends): the rest of an update's cost.
    let t0 = Instant::now();
    let resent: Vec<_> = groups.iter().map(Clone::clone).collect();
    let resend = t0.elapsed();
    std::hint::black_box(resent);

    println!("kubernetes pod role: {PODS} pods x 2 container ports, typical relabel config");
    println!("  discovered targets            {n_targets}");
    println!(
        "  build target groups           {:>8.1} ms   heap {:>7.1} MiB ({:.0} B/target)",
        build.as_secs_f64() * 1e3,
        mib(groups_bytes),
        groups_bytes as f64 / n_targets as f64
    );
    println!(
        "  relabel into scrape targets   {:>8.1} ms   heap {:>7.1} MiB ({} kept)",
        relabel_time.as_secs_f64() * 1e3,
        mib(targets_bytes),
        targets.len()
    );
    println!(
        "  apply one pod change          {:>8.1} µs   (median of 2000; that pod's group and targets)",
        median(runs).as_secs_f64() * 1e6
    );
    println!("  resend the unchanged groups   {:>8.1} ms   (per update, in the provider)", resend.as_secs_f64() * 1e3);
}
