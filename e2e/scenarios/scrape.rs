//! Scenarios 2 and 3: a ServiceMonitor's targets are discovered through
//! EndpointSlices and scraped, and they follow the exporter's scaling.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::{
    APPS_NS, PROMETHEUS, RELEASE_NS, WEB_PORT, apply_all, exporter, helm_install, instances, operator_ready, operator_scenario, ready_pods,
    scale_exporter, server_pods, service_monitor, wait_up,
};
use crate::harness::{Env, query, wait};

const EXPORTER_UP: &str = r#"up{namespace="apps"}"#;

/// The target for scenario 2: the first successful scrape at most this
/// long after the ServiceMonitor is applied (measured from the sample's own
/// timestamp). The waits stay generous so a slow run reports its figure.
const FIRST_SCRAPE_TARGET_SECS: f64 = 5.0;

/// Installs with one operator replica, starts `replicas` exporters, and
/// waits for all of it; the server pod's name.
async fn installed_with_exporters(env: &Env, replicas: usize) -> Result<String, String> {
    helm_install(env, &["operator.replicas=1"])?;
    apply_all(env, exporter(replicas as i32)).await?;
    operator_ready(env, 1).await?;
    let pods = server_pods(env, RELEASE_NS, PROMETHEUS, 1).await?;
    wait("exporter pods ready", Duration::from_secs(60), || async {
        let n = ready_pods(env, APPS_NS, "app=node-exporter").await?.len();
        if n == replicas { Ok(()) } else { Err(format!("{n} ready")) }
    })
    .await?;
    env.step(&format!("operator, server pod {} and {replicas} exporter(s) ready", pods[0]));
    Ok(pods[0].clone())
}

#[test]
fn service_monitor_targets_are_discovered_through_endpointslices_and_scraped() {
    operator_scenario(
        concat!(module_path!(), "::service_monitor_targets_are_discovered_through_endpointslices_and_scraped"),
        async |env| {
            let server = installed_with_exporters(env, 1).await?;
            let exporter = ready_pods(env, APPS_NS, "app=node-exporter").await?.remove(0);
            let exporter_name = exporter.metadata.name.clone().unwrap_or_default();
            let exporter_ip = exporter.status.and_then(|s| s.pod_ip).unwrap_or_default();

            let applied = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|e| e.to_string())?.as_secs_f64();
            let t = Instant::now();
            env.apply(service_monitor("node-exporter", json!({}))).await?;
            let (found, seen) = wait_up(env, &server, EXPORTER_UP, 1, Duration::from_secs(60)).await?;
            if found != [format!("{exporter_ip}:9100")] {
                return Err(format!("scraped {found:?}, expected the exporter pod's address {exporter_ip}:9100"));
            }
            let series = query(env, RELEASE_NS, &server, WEB_PORT, EXPORTER_UP).await?;
            let m = &series[0]["metric"];
            for (label, want) in
                [("pod", exporter_name.as_str()), ("service", "node-exporter"), ("endpoint", "metrics"), ("job", "node-exporter")]
            {
                if m[label] != want {
                    return Err(format!("label {label} is {}, expected {want:?}: {m}", m[label]));
                }
            }
            // The first successful scrape's own timestamp, against the apply.
            let samples = query(env, RELEASE_NS, &server, WEB_PORT, &format!("{EXPORTER_UP}[5m]")).await?;
            let first = samples[0]["values"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|v| v[1] == "1")
                .and_then(|v| v[0].as_f64())
                .ok_or(format!("no successful sample in {samples:?}"))?;
            let latency = first - applied;
            env.step(&format!(
                "FIGURE scenario 2: first successful scrape {latency:.2}s after applying the ServiceMonitor \
             (up == 1 visible through the API after {:.2?}; seen at {seen:.2?})",
                t.elapsed()
            ));
            if latency > FIRST_SCRAPE_TARGET_SECS {
                return Err(format!(
                    "the first scrape came {latency:.2}s after the ServiceMonitor, more than the {FIRST_SCRAPE_TARGET_SECS}s target"
                ));
            }
            Ok(())
        },
    );
}

#[test]
fn scaling_the_exporter_moves_targets_and_removed_series_go_stale() {
    operator_scenario(concat!(module_path!(), "::scaling_the_exporter_moves_targets_and_removed_series_go_stale"), async |env| {
        let server = installed_with_exporters(env, 1).await?;
        env.apply(service_monitor("node-exporter", json!({}))).await?;
        let (one, _) = wait_up(env, &server, EXPORTER_UP, 1, Duration::from_secs(60)).await?;

        scale_exporter(env, 3).await?;
        let (three, took) = wait_up(env, &server, EXPORTER_UP, 3, Duration::from_secs(90)).await?;
        env.step(&format!("FIGURE scenario 3: 1 -> 3 exporters, all three scraped {took:.2?} after scaling"));
        if !three.contains(&one[0]) {
            return Err(format!("the first target {} vanished when scaling up: {three:?}", one[0]));
        }

        scale_exporter(env, 1).await?;
        let (left, took) = wait_up(env, &server, EXPORTER_UP, 1, Duration::from_secs(90)).await?;
        env.step(&format!("FIGURE scenario 3: 3 -> 1 exporters, removed targets gone from queries {took:.2?} after scaling"));
        // Gone from an instant query long before the 5m lookback ends: the
        // removed targets' series were ended with staleness markers.
        for gone in three.iter().filter(|i| !left.contains(i)) {
            let sel = format!(r#"up{{namespace="apps",instance="{gone}"}}"#);
            let now = instances(env, &server, &sel).await?;
            let before = query(env, RELEASE_NS, &server, WEB_PORT, &format!("count_over_time({sel}[5m])")).await?;
            if !now.is_empty() || before.is_empty() {
                return Err(format!("{gone}: instant query {now:?}, earlier samples {before:?}"));
            }
        }
        Ok(())
    });
}
