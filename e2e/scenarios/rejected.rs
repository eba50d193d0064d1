//! Scenario 5: an invalid ServiceMonitor is Rejected (status condition
//! and Warning Event) and blocks nothing else.

use std::time::Duration;

use hearth::operator::crd::ServiceMonitor;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

use super::{
    APPS_NS, PROMETHEUS, RELEASE_NS, apply_all, exporter, helm_install, operator_ready, operator_scenario, server_pods, service_monitor,
    wait_up,
};
use crate::harness::{Env, wait};

/// The `Accepted` condition of ServiceMonitor `apps/name`, as JSON.
async fn accepted(env: &Env, name: &str) -> Result<Value, String> {
    let api: Api<ServiceMonitor> = Api::namespaced(env.client.clone(), APPS_NS);
    let sm = api.get(name).await.map_err(|e| e.to_string())?;
    let conditions = sm.status.map(|s| s.conditions).unwrap_or_default();
    let c = conditions.into_iter().find(|c| c.type_ == "Accepted").ok_or(format!("{name}: no Accepted condition yet"))?;
    serde_json::to_value(c).map_err(|e| e.to_string())
}

#[test]
fn invalid_service_monitor_is_rejected_with_an_event_and_blocks_nothing() {
    operator_scenario(concat!(module_path!(), "::invalid_service_monitor_is_rejected_with_an_event_and_blocks_nothing"), async |env| {
        helm_install(env, &["operator.replicas=1"])?;
        apply_all(env, exporter(1)).await?;
        env.apply(service_monitor("good", json!({}))).await?;
        operator_ready(env, 1).await?;
        let server = server_pods(env, RELEASE_NS, PROMETHEUS, 1).await?.remove(0);
        let good = r#"up{namespace="apps",e2e=""}"#;
        wait_up(env, &server, good, 1, Duration::from_secs(90)).await?;
        env.step("the good ServiceMonitor's target is up");

        let bad = json!({"relabelings": [{"sourceLabels": ["__address__"], "regex": "(unclosed", "targetLabel": "x"}]});
        env.apply(service_monitor("bad-regex", bad)).await?;
        let c = wait("bad-regex Rejected", Duration::from_secs(30), || async {
            let c = accepted(env, "bad-regex").await?;
            if c["status"] == "False" && c["reason"] == "Rejected" { Ok(c) } else { Err(format!("condition {c}")) }
        })
        .await?;
        let message = c["message"].as_str().unwrap_or_default().to_string();
        if !message.contains("regex") || !message.contains("relabelings[0]") {
            return Err(format!("the reason does not say what and where: {message}"));
        }
        env.step(&format!("Rejected: {message}"));
        let events: Api<Event> = Api::namespaced(env.client.clone(), APPS_NS);
        let ev = wait("a Warning Event on bad-regex", Duration::from_secs(30), || async {
            let list = events.list(&ListParams::default()).await.map_err(|e| e.to_string())?;
            list.items
                .into_iter()
                .find(|e| e.involved_object.name.as_deref() == Some("bad-regex") && e.type_.as_deref() == Some("Warning"))
                .ok_or("none yet".to_string())
        })
        .await?;
        env.step(&format!("Warning Event {}: {}", ev.reason.unwrap_or_default(), ev.message.unwrap_or_default()));

        // The rest keeps working: the good one stays accepted and scraped,
        // and a ServiceMonitor added after the bad one is picked up.
        let second = json!({"relabelings": [{"targetLabel": "e2e", "replacement": "second"}]});
        env.apply(service_monitor("second", second)).await?;
        let (_, took) = wait_up(env, &server, r#"up{namespace="apps",e2e="second"}"#, 1, Duration::from_secs(60)).await?;
        env.step(&format!("a ServiceMonitor added after the rejected one is scraped {took:.2?} later"));
        wait_up(env, &server, good, 1, Duration::from_secs(5)).await?;
        for name in ["good", "second"] {
            let c = accepted(env, name).await?;
            if c["status"] != "True" {
                return Err(format!("{name}: {c}"));
            }
        }
        Ok(())
    });
}
