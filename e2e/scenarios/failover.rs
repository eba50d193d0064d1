//! Scenario 7: two operator replicas; the leader is killed, the other
//! takes the Lease and reconciles what changed meanwhile, once.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams};
use serde_json::json;

use super::{
    PROMETHEUS, RELEASE_NS, apply_all, exporter, helm_install, operator_ready, operator_scenario, ready_pods, server_pods, service_monitor,
    wait_up,
};
use crate::harness::{Env, proxy_text, wait};

const OPERATOR_LABELS: &str = "app.kubernetes.io/name=hearth-operator";

async fn holder(env: &Env) -> Result<String, String> {
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), RELEASE_NS);
    let l = leases.get_opt("hearth-operator").await.map_err(|e| e.to_string())?.ok_or("no Lease yet")?;
    l.spec.and_then(|s| s.holder_identity).filter(|h| !h.is_empty()).ok_or("Lease not held".into())
}

/// Sum of the counter `name` on operator pod `pod`'s /metrics.
async fn counter(env: &Env, pod: &str, name: &str) -> Result<f64, String> {
    let text = proxy_text(env, RELEASE_NS, pod, 8080, "metrics", &[]).await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

#[test]
fn killing_the_leading_operator_hands_over_without_lost_or_duplicate_work() {
    operator_scenario(concat!(module_path!(), "::killing_the_leading_operator_hands_over_without_lost_or_duplicate_work"), async |env| {
        helm_install(env, &["operator.replicas=2"])?;
        apply_all(env, exporter(1)).await?;
        env.apply(service_monitor("before", json!({}))).await?;
        operator_ready(env, 2).await?;
        let server = server_pods(env, RELEASE_NS, PROMETHEUS, 1).await?.remove(0);
        wait_up(env, &server, r#"up{namespace="apps"}"#, 1, Duration::from_secs(90)).await?;
        let leader = wait("a Lease holder", Duration::from_secs(60), || holder(env)).await?;
        let operators: Vec<Pod> = ready_pods(env, RELEASE_NS, OPERATOR_LABELS).await?;
        let standby = operators.iter().filter_map(|p| p.metadata.name.clone()).find(|n| *n != leader).ok_or("no standby replica")?;
        if counter(env, &standby, "hearth_operator_reconciles_total").await? != 0.0 {
            return Err(format!("the standby {standby} reconciled while {leader} led"));
        }
        let sts: Api<StatefulSet> = Api::namespaced(env.client.clone(), RELEASE_NS);
        let generation = |s: StatefulSet| s.metadata.generation.unwrap_or(0);
        let before = generation(sts.get("hearth-hearth").await.map_err(|e| e.to_string())?);
        env.step(&format!("{leader} leads, {standby} stands by"));

        // Kill the leader as a crash would: no lease release.
        let pods: Api<Pod> = Api::namespaced(env.client.clone(), RELEASE_NS);
        if env.own_cluster() {
            let p = pods.get(&leader).await.map_err(|e| e.to_string())?;
            let id = p.status.and_then(|s| s.container_statuses).and_then(|c| c.into_iter().next()).and_then(|c| c.container_id);
            let pid = id.as_deref().and_then(|i| i.strip_prefix("hearth-e2e://")).and_then(|p| p.parse().ok()).ok_or("leader pid")?;
            env.kill_container(pid)?;
        }
        let now = DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() };
        pods.delete(&leader, &now).await.map_err(|e| format!("delete {leader}: {e}"))?;
        let t = Instant::now();
        env.step(&format!("killed the leader {leader}"));

        // Work arriving while nobody leads must not be lost.
        let after = json!({"relabelings": [{"targetLabel": "e2e", "replacement": "after"}]});
        env.apply(service_monitor("after", after)).await?;
        let new = wait("another replica holding the Lease", Duration::from_secs(90), || async {
            let h = holder(env).await?;
            if h != leader { Ok(h) } else { Err(format!("still {h}")) }
        })
        .await?;
        env.step(&format!("FIGURE scenario 7: {new} took the Lease {:.2?} after the leader was killed", t.elapsed()));
        // The standby and the Deployment's replacement for the dead pod
        // both wait for the Lease to expire; either may win.
        let who = if new == standby { "the standby" } else { "the replacement pod" };
        env.step(&format!("{who} {new} leads"));
        let (_, _) = wait_up(env, &server, r#"up{namespace="apps",e2e="after"}"#, 1, Duration::from_secs(60)).await?;
        env.step(&format!(
            "FIGURE scenario 7: the ServiceMonitor applied during the handover is scraped {:.2?} after the kill",
            t.elapsed()
        ));
        wait_up(env, &server, r#"up{namespace="apps",e2e=""}"#, 1, Duration::from_secs(5)).await?;

        // No duplicate work: the StatefulSet was not rewritten by the new
        // leader, and the replacement replica stays idle.
        let after_gen = generation(sts.get("hearth-hearth").await.map_err(|e| e.to_string())?);
        if after_gen != before {
            return Err(format!("the StatefulSet's generation went {before} -> {after_gen} across the handover"));
        }
        operator_ready(env, 2).await?;
        let idle = ready_pods(env, RELEASE_NS, OPERATOR_LABELS)
            .await?
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .find(|n| *n != new)
            .ok_or("no second replica after the handover")?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (r, w) = (
            counter(env, &idle, "hearth_operator_reconciles_total").await?,
            counter(env, &idle, "hearth_operator_object_writes_total").await?,
        );
        if r != 0.0 || w != 0.0 {
            return Err(format!("{idle} reconciled {r} times and wrote {w} objects while {new} leads"));
        }
        if holder(env).await? != new {
            return Err("the Lease moved again without a failure".into());
        }
        Ok(())
    });
}
