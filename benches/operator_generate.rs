//! Operator generation at scale: 1000 ServiceMonitors (2 endpoints each)
//! and 500 AlertRules (2 groups × 5 rules) across 50 namespaces, selected by
//! one Prometheus with 2 shards.
//!
//! `cargo bench --bench operator_generate` prints the time of a full
//! generation (selection, scrape configs with relabeling, rule files, every
//! output checked by the configuration and rule parsers), the heap it holds
//! (counting allocator: exact live bytes) with the objects, and the time of
//! a generation after one ServiceMonitor changed (with the controller's
//! memo: unchanged objects' jobs and rule files are reused).

use std::collections::BTreeMap;
use std::time::Instant;

use hearth::operator::crd::{AlertRule, Prometheus, ServiceMonitor};
use hearth::operator::generate::{Inputs, Memo, generate};
use hearth::operator::secrets::SecretValues;
use serde_json::json;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static ALLOC: counting_alloc::Counting = counting_alloc::Counting;

fn service_monitor(i: usize, port: &str) -> ServiceMonitor {
    serde_json::from_value(json!({
        "apiVersion": "monitoring.hearth.dev/v1alpha1", "kind": "ServiceMonitor",
        "metadata": {"name": format!("svc-{i}"), "namespace": format!("team-{}", i % 50), "labels": {"monitoring": "main"}},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": format!("svc-{i}")}},
            "jobLabel": "app.kubernetes.io/name",
            "targetLabels": ["tier"],
            "endpoints": [
                {"port": port, "interval": "30s", "relabelings": [{"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node_name"}]},
                {"port": "admin", "path": "/admin/metrics", "metricRelabelings": [{"sourceLabels": ["__name__"], "regex": "go_.*", "action": "drop"}]}
            ]
        }
    }))
    .expect("valid ServiceMonitor")
}

fn alert_rule(i: usize) -> AlertRule {
    let rules: Vec<_> = (0..5)
        .map(|r| {
            json!({"alert": format!("High{r}"), "expr": format!("sum by (job) (rate(http_requests_total{{code=~\"5..\",svc=\"{i}\"}}[5m])) > {r}"),
                   "for": "5m", "labels": {"severity": "warning"}, "annotations": {"summary": "{{ $labels.job }} fails {{ $value | humanize }}/s"}})
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "monitoring.hearth.dev/v1alpha1", "kind": "AlertRule",
        "metadata": {"name": format!("rules-{i}"), "namespace": format!("team-{}", i % 50), "labels": {"monitoring": "main"}},
        "spec": {"groups": [{"name": "a", "rules": rules.clone()}, {"name": "b", "rules": rules}]}
    }))
    .expect("valid AlertRule")
}

fn main() {
    let prometheus: Prometheus = serde_json::from_value(json!({
        "apiVersion": "monitoring.hearth.dev/v1alpha1", "kind": "Prometheus",
        "metadata": {"name": "main", "namespace": "monitoring", "uid": "bench"},
        "spec": {"shards": 2, "serviceMonitorSelector": {"matchLabels": {"monitoring": "main"}}, "serviceMonitorNamespaceSelector": {},
                 "ruleSelector": {"matchLabels": {"monitoring": "main"}}, "ruleNamespaceSelector": {}}
    }))
    .expect("valid Prometheus");
    let mut sms: Vec<ServiceMonitor> = (0..1000).map(|i| service_monitor(i, "http")).collect();
    let ars: Vec<AlertRule> = (0..500).map(alert_rule).collect();
    let namespaces: BTreeMap<String, BTreeMap<String, String>> = (0..50).map(|i| (format!("team-{i}"), BTreeMap::new())).collect();

    let memo = Memo::default();
    let secrets = SecretValues::default();
    let run = |sms: &[ServiceMonitor]| {
        generate(&Inputs {
            prometheus: &prometheus,
            service_monitors: sms.iter().collect(),
            alert_rules: ars.iter().collect(),
            namespaces: &namespaces,
            secrets: &secrets,
            memo: Some(&memo),
        })
        .expect("generate")
    };
    let before = counting_alloc::live();
    let t = Instant::now();
    let g = run(&sms);
    let full = t.elapsed();
    let held = counting_alloc::live() - before;
    let accepted = g.verdicts.iter().filter(|v| v.rejected.is_none()).count();
    assert_eq!(accepted, 1500, "every object accepted");
    let config_bytes: usize = g.configs.iter().map(String::len).sum();
    let rule_bytes: usize = g.rule_files.values().map(String::len).sum();
    println!(
        "full generation: {:.1} ms; output {} KiB config ({} shards), {} KiB rules; heap held by the output and memo {:.1} MiB",
        full.as_secs_f64() * 1e3,
        config_bytes / 1024,
        g.configs.len(),
        rule_bytes / 1024,
        held as f64 / (1 << 20) as f64
    );
    let t = Instant::now();
    let w = hearth::operator::workload::build(&prometheus, &g, "hearth:bench").expect("workload");
    let secret: usize = w.secret.data.iter().flatten().map(|(k, v)| k.len() + v.0.len()).sum();
    println!(
        "workload (compressed config Secret, StatefulSets, RBAC): {:.1} ms; Secret {} KiB (limit 1024 KiB)",
        t.elapsed().as_secs_f64() * 1e3,
        secret / 1024
    );
    drop((g, w));

    sms[500] = service_monitor(500, "metrics");
    let t = Instant::now();
    let g = run(&sms);
    println!("after one ServiceMonitor change: {:.1} ms to the new config", t.elapsed().as_secs_f64() * 1e3);
    assert!(g.configs[0].contains("regex: metrics"));
    println!("live heap with all objects and the output: {:.1} MiB", counting_alloc::live() as f64 / (1 << 20) as f64);
}
