//! The Node object and its heartbeat. The node-lifecycle controller taints
//! and evicts a node whose Lease stops being renewed or whose Ready
//! condition goes stale, so both are refreshed well inside the default
//! 40 s grace period.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

/// Taints the control plane puts on nodes it does not consider ready.
const NOT_READY_TAINTS: &[&str] = &["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"];

/// Creates the Node if it does not exist yet.
pub async fn register(client: &kube::Client, name: &str) -> Result<(), String> {
    let nodes: Api<Node> = Api::all(client.clone());
    if nodes.get_opt(name).await.map_err(|e| format!("get node: {e}"))?.is_some() {
        return Ok(());
    }
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}},
        "spec": {}
    }))
    .map_err(|e| format!("node object: {e}"))?;
    match nodes.create(&PostParams::default(), &node).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(format!("create node: {e}")),
    }
}

/// Renews the node Lease, refreshes the status and drops not-ready taints.
pub async fn heartbeat(client: &kube::Client, name: &str) -> Result<(), String> {
    renew_lease(client, name).await?;
    let now = serde_json::to_value(Time(Timestamp::now())).map_err(|e| e.to_string())?;
    let cond = |t: &str, s: &str, reason: &str| {
        json!({"type": t, "status": s, "reason": reason, "message": "hearth e2e node agent",
               "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    let capacity = json!({"cpu": "2", "memory": "4Gi", "pods": "110"});
    let status = json!({"status": {
        "conditions": [
            cond("Ready", "True", "KubeletReady"),
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID"),
        ],
        "capacity": capacity, "allocatable": capacity,
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
        "nodeInfo": {"kubeletVersion": "v1.33.13", "kubeProxyVersion": "", "operatingSystem": "linux",
            "architecture": "amd64", "containerRuntimeVersion": "hearth-e2e://0", "osImage": "", "kernelVersion": "",
            "machineID": "", "systemUUID": "", "bootID": ""},
    }});
    let nodes: Api<Node> = Api::all(client.clone());
    let node = nodes.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.map_err(|e| format!("node status: {e}"))?;
    let taints = node.spec.and_then(|s| s.taints).unwrap_or_default();
    if taints.iter().any(|t| NOT_READY_TAINTS.contains(&t.key.as_str())) {
        let keep: Vec<_> = taints.into_iter().filter(|t| !NOT_READY_TAINTS.contains(&t.key.as_str())).collect();
        nodes
            .patch(name, &PatchParams::default(), &Patch::Merge(&json!({"spec": {"taints": keep}})))
            .await
            .map_err(|e| format!("node taints: {e}"))?;
    }
    Ok(())
}

async fn renew_lease(client: &kube::Client, name: &str) -> Result<(), String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let now = serde_json::to_value(MicroTime(Timestamp::now())).map_err(|e| e.to_string())?;
    let spec = json!({"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now});
    if leases.get_opt(name).await.map_err(|e| format!("get lease: {e}"))?.is_some() {
        leases
            .patch(name, &PatchParams::default(), &Patch::Merge(&json!({"spec": spec})))
            .await
            .map_err(|e| format!("renew lease: {e}"))?;
        return Ok(());
    }
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).map_err(|e| e.to_string())?;
    leases.create(&PostParams::default(), &lease).await.map_err(|e| format!("create lease: {e}"))?;
    Ok(())
}
