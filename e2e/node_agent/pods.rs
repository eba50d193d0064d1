//! Preparing a pod to run: its directory, volumes, service-account
//! kubeconfig and one launch spec per container. Anything that cannot be
//! honoured (an image with no local binary) is an error the caller turns
//! into a waiting container status rather than a silent skip.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVar, Pod, Secret, ServiceAccount, Volume};
use kube::api::{Api, PostParams};
use serde_json::json;

use super::process::{ImageTable, rewrite_arg};

/// How to (re)start one container; kept for restarts.
pub struct ContainerPlan {
    pub name: String,
    pub image: String,
    pub binary: PathBuf,
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub log: PathBuf,
    pub probe: Option<HttpProbe>,
}

/// A readiness probe of kind httpGet, resolved to a URL on the pod IP.
pub struct HttpProbe {
    pub url: String,
    pub period: std::time::Duration,
}

/// Everything needed to run a pod, before any process is started.
pub struct PodPlan {
    pub dir: PathBuf,
    pub containers: Vec<ContainerPlan>,
}

/// Builds the plan for `pod` at address `ip` under `root`; its
/// kubeconfig names the apiserver `server`, trusted through `ca_file`.
pub async fn plan(
    client: &kube::Client,
    (server, ca_file): (&str, &Path),
    images: &ImageTable,
    root: &Path,
    pod: &Pod,
    ip: Ipv4Addr,
) -> Result<PodPlan, String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().ok_or("pod without a name")?;
    let uid = pod.metadata.uid.as_deref().unwrap_or("nouid");
    let spec = pod.spec.as_ref().ok_or("pod without a spec")?;
    let dir = root.join(format!("{ns}_{name}_{}", &uid[..uid.len().min(8)]));
    mkdir(&dir)?;

    let mut volumes = BTreeMap::new();
    for v in spec.volumes.iter().flatten() {
        let host = dir.join("volumes").join(&v.name);
        mkdir(&host)?;
        fill_volume(client, ns, v, &host).await?;
        volumes.insert(v.name.clone(), host);
    }

    let sa = spec.service_account_name.as_deref().unwrap_or("default");
    let token = service_account_token(client, ns, sa).await?;
    let kubeconfig = dir.join("kubeconfig");
    crate::cluster::write_kubeconfig(&kubeconfig, server, ca_file, &token, ns)?;

    let ip = ip.to_string();
    let mut containers = Vec::new();
    for c in &spec.containers {
        let image = c.image.clone().unwrap_or_default();
        let binary =
            images.binary(&image).ok_or_else(|| format!("no local binary for image {image:?} (container {})", c.name))?.to_path_buf();
        let mounts: Vec<(String, PathBuf)> = c
            .volume_mounts
            .iter()
            .flatten()
            .filter_map(|m| {
                let host = volumes.get(&m.name)?;
                let host = match m.sub_path.as_deref() {
                    Some(sub) if !sub.is_empty() => host.join(sub),
                    _ => host.clone(),
                };
                Some((m.mount_path.clone(), host))
            })
            .collect();
        let mut env = resolve_env(client, pod, &ip, c.env.as_deref().unwrap_or_default()).await?;
        env.insert("KUBECONFIG".into(), kubeconfig.display().to_string());
        let raw = c.command.iter().flatten().skip(1).chain(c.args.iter().flatten());
        let argv = raw.map(|a| rewrite_arg(&expand_vars(a, &env), &ip, &mounts)).collect();
        containers.push(ContainerPlan {
            name: c.name.clone(),
            image,
            binary,
            argv,
            env,
            log: dir.join(format!("{}.log", c.name)),
            probe: readiness_probe(c, &ip),
        });
    }
    Ok(PodPlan { dir, containers })
}

fn mkdir(p: &Path) -> Result<(), String> {
    std::fs::create_dir_all(p).map_err(|e| format!("mkdir {}: {e}", p.display()))
}

/// ConfigMap and Secret volumes get their keys as files (once, at start);
/// every other kind (emptyDir, PVC, …) is just the empty directory.
async fn fill_volume(client: &kube::Client, ns: &str, v: &Volume, host: &Path) -> Result<(), String> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(cm) = &v.config_map {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        if let Some(obj) = api.get_opt(&cm.name).await.map_err(|e| format!("configmap {}: {e}", cm.name))? {
            files.extend(obj.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())));
        }
    }
    if let Some(s) = &v.secret {
        let sname = s.secret_name.as_deref().unwrap_or_default();
        let api: Api<Secret> = Api::namespaced(client.clone(), ns);
        if let Some(obj) = api.get_opt(sname).await.map_err(|e| format!("secret {sname}: {e}"))? {
            files.extend(obj.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)));
        }
    }
    for (k, bytes) in files {
        if k.contains('/') || k.starts_with('.') {
            continue; // not a plain key; never write outside the volume
        }
        let p = host.join(&k);
        std::fs::write(&p, bytes).map_err(|e| format!("write {}: {e}", p.display()))?;
    }
    Ok(())
}

/// A bound token for the pod's ServiceAccount, so the process gets
/// exactly that account's RBAC rights.
async fn service_account_token(client: &kube::Client, ns: &str, sa: &str) -> Result<String, String> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let req = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                     "spec": {"audiences": [], "expirationSeconds": 3600}});
    let tr: TokenRequest = api
        .create_subresource("token", sa, &PostParams::default(), &req)
        .await
        .map_err(|e| format!("token for serviceaccount {ns}/{sa}: {e}"))?;
    tr.status.map(|s| s.token).ok_or_else(|| format!("empty token for {ns}/{sa}"))
}

/// Literal values, downward-API field references, and ConfigMap/Secret
/// key references, in order (later entries may use `$(EARLIER)`).
async fn resolve_env(client: &kube::Client, pod: &Pod, ip: &str, vars: &[EnvVar]) -> Result<BTreeMap<String, String>, String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut env = BTreeMap::new();
    for v in vars {
        let value = match (&v.value, &v.value_from) {
            (Some(val), _) => expand_vars(val, &env),
            (None, Some(from)) => {
                if let Some(f) = &from.field_ref {
                    field(pod, ip, &f.field_path)?
                } else if let Some(r) = &from.config_map_key_ref {
                    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
                    let cm = api.get_opt(&r.name).await.map_err(|e| format!("configmap {}: {e}", r.name))?;
                    cm.and_then(|c| c.data).and_then(|d| d.get(&r.key).cloned()).unwrap_or_default()
                } else if let Some(r) = &from.secret_key_ref {
                    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
                    let s = api.get_opt(&r.name).await.map_err(|e| format!("secret {}: {e}", r.name))?;
                    let bytes = s.and_then(|s| s.data).and_then(|d| d.get(&r.key).cloned());
                    bytes.map(|b| String::from_utf8_lossy(&b.0).into_owned()).unwrap_or_default()
                } else {
                    return Err(format!("env {}: only fieldRef, configMapKeyRef, secretKeyRef are supported", v.name));
                }
            }
            (None, None) => String::new(),
        };
        env.insert(v.name.clone(), value);
    }
    Ok(env)
}

fn field(pod: &Pod, ip: &str, path: &str) -> Result<String, String> {
    let m = &pod.metadata;
    let spec = pod.spec.as_ref();
    Ok(match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "status.podIP" => ip.to_string(),
        "status.hostIP" => "127.0.0.1".to_string(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()).unwrap_or_default(),
        other => return Err(format!("fieldRef {other} is not supported by the e2e node agent")),
    })
}

/// Kubernetes' `$(VAR)` expansion; unknown references stay as written.
pub fn expand_vars(s: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("$(") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find(')') {
            Some(j) if env.contains_key(&after[..j]) => {
                out.push_str(&env[&after[..j]]);
                rest = &after[j + 1..];
            }
            _ => {
                out.push_str("$(");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn readiness_probe(c: &Container, ip: &str) -> Option<HttpProbe> {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let p = c.readiness_probe.as_ref()?;
    let h = p.http_get.as_ref()?;
    let port = match &h.port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => {
            c.ports.iter().flatten().find(|cp| cp.name.as_deref() == Some(name.as_str())).map(|cp| cp.container_port)?
        }
    };
    let scheme = h.scheme.as_deref().unwrap_or("HTTP").to_ascii_lowercase();
    let path = h.path.as_deref().unwrap_or("/");
    let period = p.period_seconds.unwrap_or(10).clamp(1, 2) as u64;
    Some(HttpProbe { url: format!("{scheme}://{ip}:{port}{path}"), period: std::time::Duration::from_secs(period) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vars_expand_only_when_known() {
        let env = BTreeMap::from([("A".to_string(), "x".to_string())]);
        assert_eq!(expand_vars("--a=$(A)/$(B)", &env), "--a=x/$(B)");
        assert_eq!(expand_vars("$(A", &env), "$(A");
    }
}
