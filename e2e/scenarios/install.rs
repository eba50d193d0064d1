//! Scenarios 1 and 8: the two ways to install (Helm, and manifests/ with
//! `kubectl apply --server-side`) give a working, identical system.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, ListParams};
use serde_json::{Value, json};

use super::{PROMETHEUS, RELEASE_NS, crds_established, helm_install, operator_ready, operator_scenario, server_pods, wait_up};
use crate::harness::{Env, wait};

/// The chart's default: two operator replicas behind the Lease.
const OPERATOR_REPLICAS: i32 = 2;

#[test]
fn helm_install_makes_the_operator_ready_and_the_crds_established() {
    operator_scenario(concat!(module_path!(), "::helm_install_makes_the_operator_ready_and_the_crds_established"), async |env| {
        let t = Instant::now();
        helm_install(env, &[])?;
        env.step("helm install returned");
        crds_established(env).await?;
        env.step(&format!("CRDs Established {:.1?} after helm install", t.elapsed()));
        operator_ready(env, OPERATOR_REPLICAS).await?;
        env.step(&format!("FIGURE scenario 1: operator Ready ({OPERATOR_REPLICAS} replicas) {:.1?} after helm install", t.elapsed()));
        // The chart's own Prometheus object comes up and scrapes the operator.
        let pods = server_pods(env, RELEASE_NS, PROMETHEUS, 1).await?;
        env.step(&format!("hearth server pod {} Ready {:.1?} after helm install", pods[0], t.elapsed()));
        let (instances, _) =
            wait_up(env, &pods[0], r#"up{job="hearth-operator"}"#, OPERATOR_REPLICAS as usize, Duration::from_secs(90)).await?;
        env.step(&format!("the server scrapes both operator replicas {instances:?} {:.1?} after helm install", t.elapsed()));
        Ok(())
    });
}

#[test]
fn manifests_install_runs_the_same_system_as_helm() {
    operator_scenario(concat!(module_path!(), "::manifests_install_runs_the_same_system_as_helm"), async |env| {
        let t = Instant::now();
        helm_install(env, &[])?;
        let helm = running_system(env).await?;
        env.step(&format!("Helm install running {:.1?}", t.elapsed()));
        uninstall_helm(env).await?;
        env.step("Helm install removed");

        let t = Instant::now();
        env.kubectl(&["apply", "--server-side", "-f", "manifests/setup"])?;
        crds_established(env).await?;
        env.kubectl(&["apply", "--server-side", "-f", "manifests/"])?;
        let manifests = running_system(env).await?;
        env.step(&format!("FIGURE scenario 8: manifests/ install running {:.1?} after the first kubectl apply", t.elapsed()));

        for (what, h) in &helm {
            let m = manifests.get(what).ok_or(format!("{what}: only the Helm install has it"))?;
            if h != m {
                return Err(format!("{what} differs:\n helm:      {h}\n manifests: {m}"));
            }
        }
        let extra: Vec<&String> = manifests.keys().filter(|k| !helm.contains_key(*k)).collect();
        if !extra.is_empty() {
            return Err(format!("only the manifests install has {extra:?}"));
        }
        env.step(&format!("identical: {} aspects compared", helm.len()));
        Ok(())
    });
}

/// Waits for a complete running install, then describes it: which objects
/// exist, what the operator and the server pods run, the configuration the
/// operator generated, and which targets the server scrapes. Fields that
/// differ between any two installs (uids, IPs, times, Helm's own
/// bookkeeping) are left out.
async fn running_system(env: &Env) -> Result<BTreeMap<String, Value>, String> {
    crds_established(env).await?;
    operator_ready(env, OPERATOR_REPLICAS).await?;
    let pods = server_pods(env, RELEASE_NS, PROMETHEUS, 1).await?;
    let (targets, _) = wait_up(env, &pods[0], r#"up{job="hearth-operator"}"#, OPERATOR_REPLICAS as usize, Duration::from_secs(90)).await?;

    let c = &env.client;
    let ns = RELEASE_NS;
    let all = |_: &Option<String>| true;
    let mut out = BTreeMap::new();
    out.insert("Deployment names".into(), names(Api::<Deployment>::namespaced(c.clone(), ns), all).await?);
    out.insert("StatefulSet names".into(), names(Api::<StatefulSet>::namespaced(c.clone(), ns), all).await?);
    out.insert("Service names".into(), names(Api::<Service>::namespaced(c.clone(), ns), all).await?);
    out.insert("ServiceAccount names".into(), names(Api::<ServiceAccount>::namespaced(c.clone(), ns), all).await?);
    out.insert("Role names".into(), names(Api::<Role>::namespaced(c.clone(), ns), all).await?);
    out.insert("RoleBinding names".into(), names(Api::<RoleBinding>::namespaced(c.clone(), ns), all).await?);
    // Helm's release records are its own bookkeeping.
    let not_helm = |n: &Option<String>| !n.as_deref().is_some_and(|n| n.starts_with("sh.helm."));
    out.insert("Secret names".into(), names(Api::<Secret>::namespaced(c.clone(), ns), not_helm).await?);
    // The dashboards are the Jsonnet install's addition (docs/helm.md).
    let not_dashboard = |n: &Option<String>| !n.as_deref().is_some_and(|n| n.starts_with("hearth-dashboard-"));
    out.insert("ConfigMap names".into(), names(Api::<ConfigMap>::namespaced(c.clone(), ns), not_dashboard).await?);
    let hearth = |n: &Option<String>| n.as_deref().is_some_and(|n| n.contains("hearth"));
    out.insert("ClusterRole names".into(), names(Api::<ClusterRole>::all(c.clone()), hearth).await?);
    out.insert("ClusterRoleBinding names".into(), names(Api::<ClusterRoleBinding>::all(c.clone()), hearth).await?);

    let err = |e: kube::Error| e.to_string();
    let op = Api::<Deployment>::namespaced(c.clone(), ns).get("hearth-operator").await.map_err(err)?;
    out.insert("operator pod template".into(), serde_json::to_value(op.spec.map(|s| s.template.spec)).map_err(|e| e.to_string())?);
    let sts = Api::<StatefulSet>::namespaced(c.clone(), ns).get("hearth-hearth").await.map_err(err)?;
    out.insert("server pod template".into(), serde_json::to_value(sts.spec.map(|s| s.template)).map_err(|e| e.to_string())?);
    let secret = Api::<Secret>::namespaced(c.clone(), ns).get("hearth-hearth-config").await.map_err(err)?;
    out.insert("generated configuration".into(), serde_json::to_value(secret.data).map_err(|e| e.to_string())?);
    out.insert("operator targets scraped".into(), json!(targets.len()));
    Ok(out)
}

/// The sorted names of `api`'s objects that `keep` accepts.
async fn names<K>(api: Api<K>, keep: impl Fn(&Option<String>) -> bool) -> Result<Value, String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let list = api.list(&ListParams::default()).await.map_err(|e| e.to_string())?;
    let mut v: Vec<String> = list.items.into_iter().map(|o| o.meta().name.clone()).filter(|n| keep(n)).flatten().collect();
    v.sort();
    Ok(json!(v))
}

/// Deletes the Prometheus object first (its finalizer needs the operator
/// still running), then `helm uninstall`, and waits until the operator's
/// pods are gone.
async fn uninstall_helm(env: &Env) -> Result<(), String> {
    let prometheus = json!({"apiVersion": "monitoring.hearth.dev/v1alpha1", "kind": "Prometheus",
        "metadata": {"name": PROMETHEUS, "namespace": RELEASE_NS}});
    env.delete(&prometheus).await?;
    let sts: Api<StatefulSet> = Api::namespaced(env.client.clone(), RELEASE_NS);
    wait("the StatefulSet of the deleted Prometheus gone", Duration::from_secs(60), || async {
        match sts.get_opt("hearth-hearth").await.map_err(|e| e.to_string())? {
            None => Ok(()),
            Some(_) => Err("still there".into()),
        }
    })
    .await?;
    env.helm(&["uninstall", "hearth", "--namespace", RELEASE_NS, "--wait", "--timeout", "90s"])?;
    wait("operator pods gone", Duration::from_secs(60), || async {
        let left = super::ready_pods(env, RELEASE_NS, "app.kubernetes.io/name=hearth-operator").await?;
        let all: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(env.client.clone(), RELEASE_NS);
        let any = all.list(&ListParams::default()).await.map_err(|e| e.to_string())?.items.len();
        if left.is_empty() && any == 0 { Ok(()) } else { Err(format!("{any} pods left")) }
    })
    .await
}
