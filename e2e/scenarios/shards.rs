//! Scenario 6: with `shards: 2`, every target is scraped by exactly one
//! shard.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use super::{
    APPS_NS, PROMETHEUS, RELEASE_NS, WEB_PORT, apply_all, exporter, helm_install, operator_ready, operator_scenario, ready_pods,
    server_pods, service_monitor,
};
use crate::harness::{query, wait};

const EXPORTERS: usize = 4;

#[test]
fn two_shards_scrape_every_target_exactly_once() {
    operator_scenario(concat!(module_path!(), "::two_shards_scrape_every_target_exactly_once"), async |env| {
        helm_install(env, &["operator.replicas=1", "prometheus.shards=2"])?;
        apply_all(env, exporter(EXPORTERS as i32)).await?;
        env.apply(service_monitor("node-exporter", json!({}))).await?;
        operator_ready(env, 1).await?;
        let shards = server_pods(env, RELEASE_NS, PROMETHEUS, 2).await?;
        let want: BTreeSet<String> = wait("exporters ready", Duration::from_secs(60), || async {
            let pods = ready_pods(env, APPS_NS, "app=node-exporter").await?;
            let ips: BTreeSet<String> = pods.into_iter().filter_map(|p| p.status?.pod_ip).map(|ip| format!("{ip}:9100")).collect();
            if ips.len() == EXPORTERS { Ok(ips) } else { Err(format!("{ips:?}")) }
        })
        .await?;
        env.step(&format!("shards {shards:?} and {EXPORTERS} exporters ready"));

        // Every target of every job (exporters and the operator itself).
        let split = wait("all exporters scraped across the shards", Duration::from_secs(90), || async {
            let mut per_shard = Vec::new();
            for pod in &shards {
                let r = query(env, RELEASE_NS, pod, WEB_PORT, "up == 1").await?;
                let targets: Vec<(String, String)> = r
                    .iter()
                    .map(|s| {
                        (s["metric"]["job"].as_str().unwrap_or("").to_string(), s["metric"]["instance"].as_str().unwrap_or("").to_string())
                    })
                    .collect();
                per_shard.push(targets);
            }
            let exporters: BTreeSet<String> =
                per_shard.iter().flatten().filter(|(j, _)| j == "node-exporter").map(|(_, i)| i.clone()).collect();
            if exporters == want { Ok(per_shard) } else { Err(format!("scraped {per_shard:?}")) }
        })
        .await?;
        let all: Vec<&(String, String)> = split.iter().flatten().collect();
        let distinct: BTreeSet<&(String, String)> = all.iter().copied().collect();
        if all.len() != distinct.len() {
            return Err(format!("a target is scraped by both shards: {split:?}"));
        }
        for (pod, targets) in shards.iter().zip(&split) {
            env.step(&format!("{pod} scrapes {targets:?}"));
        }
        Ok(())
    });
}
