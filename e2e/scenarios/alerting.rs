//! Scenario 4: an AlertRule's always-firing alert reaches a real
//! Alertmanager running as a pod.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{RELEASE_NS, apply_all, helm_install, operator_ready, operator_scenario, ready_pods};
use crate::harness::{proxy_get, wait};

const ALERTMANAGER_CONFIG: &str = "route: {receiver: keep, group_wait: 1s}\nreceivers: [{name: keep}]\n";

fn alertmanager() -> Vec<serde_json::Value> {
    let labels = json!({"app": "alertmanager"});
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": RELEASE_NS}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "alertmanager", "namespace": RELEASE_NS},
            "data": {"alertmanager.yml": ALERTMANAGER_CONFIG}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "alertmanager", "namespace": RELEASE_NS},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
                "containers": [{
                    "name": "alertmanager", "image": "quay.io/prometheus/alertmanager:v0.28.1",
                    "args": ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager",
                             "--web.listen-address=0.0.0.0:9093", "--cluster.listen-address="],
                    "ports": [{"name": "web", "containerPort": 9093}],
                    "readinessProbe": {"httpGet": {"path": "/-/ready", "port": "web"}, "periodSeconds": 1},
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/alertmanager"}, {"name": "data", "mountPath": "/alertmanager"}]}],
                "volumes": [{"name": "config", "configMap": {"name": "alertmanager"}}, {"name": "data", "emptyDir": {}}]}}}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "alertmanager", "namespace": RELEASE_NS, "labels": labels},
            "spec": {"selector": labels, "ports": [{"name": "web", "port": 9093, "targetPort": "web"}]}}),
    ]
}

#[test]
fn alert_rule_fires_into_a_real_alertmanager_pod() {
    operator_scenario(concat!(module_path!(), "::alert_rule_fires_into_a_real_alertmanager_pod"), async |env| {
        apply_all(env, alertmanager()).await?;
        helm_install(env, &["operator.replicas=1", "prometheus.alertmanager.name=alertmanager", "prometheus.evaluationInterval=1s"])?;
        operator_ready(env, 1).await?;
        super::server_pods(env, RELEASE_NS, super::PROMETHEUS, 1).await?;
        let am = wait("Alertmanager pod ready", Duration::from_secs(60), || async {
            let pods = ready_pods(env, RELEASE_NS, "app=alertmanager").await?;
            pods.into_iter().next().and_then(|p| p.metadata.name).ok_or("not yet".to_string())
        })
        .await?;
        env.step(&format!("server and Alertmanager {am} ready"));

        let rule = json!({"apiVersion": "monitoring.hearth.dev/v1alpha1", "kind": "AlertRule",
            "metadata": {"name": "always-firing", "namespace": "apps"},
            "spec": {"groups": [{"name": "e2e", "interval": "1s", "rules": [
                {"alert": "E2EAlwaysFiring", "expr": "vector(1)", "labels": {"severity": "test"},
                 "annotations": {"summary": "fires as long as it exists"}}]}]}});
        apply_all(env, vec![json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}})]).await?;
        let t = Instant::now();
        env.apply(rule).await?;
        let alert = wait("E2EAlwaysFiring in Alertmanager", Duration::from_secs(90), || async {
            let alerts = proxy_get(env, RELEASE_NS, &am, 9093, "api/v2/alerts", &[]).await?;
            let list = alerts.as_array().cloned().unwrap_or_default();
            list.into_iter().find(|a| a["labels"]["alertname"] == "E2EAlwaysFiring").ok_or(format!("alerts: {alerts}"))
        })
        .await;
        let alert = match alert {
            Ok(a) => a,
            Err(e) => {
                // What the server thinks, for the failure message.
                let server = super::server_pods(env, RELEASE_NS, super::PROMETHEUS, 1).await?.remove(0);
                let mut why = e;
                for path in ["api/v1/rules", "api/v1/alertmanagers", "api/v1/alerts"] {
                    let r = proxy_get(env, RELEASE_NS, &server, super::WEB_PORT, path, &[]).await;
                    why.push_str(&format!("\n{path}: {}", r.map_or_else(|e| e, |v| v.to_string())));
                }
                return Err(why);
            }
        };
        env.step(&format!("FIGURE scenario 4: the alert reached Alertmanager {:.2?} after applying the AlertRule", t.elapsed()));
        let labels = &alert["labels"];
        if labels["severity"] != "test" || alert["annotations"]["summary"] != "fires as long as it exists" {
            return Err(format!("labels or annotations lost on the way: {alert}"));
        }
        if alert["status"]["state"] != "active" {
            return Err(format!("the alert is not active in Alertmanager: {alert}"));
        }
        Ok(())
    });
}
