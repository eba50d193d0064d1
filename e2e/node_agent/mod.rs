//! An in-process stand-in for the kubelet: there is no container runtime
//! on the test hosts, so pods bound to this node run as local processes
//! (one 127.0.0.x address per pod) and their Pod status is kept true, so
//! Deployments, EndpointSlices and the operator see a working cluster.
//!
//! A watch on its pods (field selector `spec.nodeName`) wakes the agent
//! at once; otherwise it resyncs every `TICK`, which also drives process
//! reaping and probes. Each pass lists the node's pods (cheap for one
//! node) so the control flow stays one loop that ends when the agent is
//! stopped.

mod ips;
mod node;
mod pods;
mod process;
mod runtime;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::runtime::WatchStreamExt;
use tokio::sync::watch;

pub use process::ImageTable;
use runtime::{PodRt, Procs};

const TICK: Duration = Duration::from_millis(300);
const HEARTBEAT: Duration = Duration::from_secs(10);

pub struct AgentConfig {
    pub node_name: String,
    /// API server URL written into each pod's kubeconfig.
    pub server: String,
    /// The CA each pod's kubeconfig trusts for it.
    pub ca_file: PathBuf,
    pub images: ImageTable,
    /// Per-pod directories (volumes, logs, kubeconfig) go under here.
    pub work_dir: PathBuf,
}

/// A running agent. `stop().await` is the orderly end; dropping it (on a
/// test failure) still kills every process it started.
pub struct NodeAgent {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    procs: Procs,
}

impl NodeAgent {
    /// Registers the node (first heartbeat included) and starts the loop.
    pub async fn start(client: kube::Client, cfg: AgentConfig) -> Result<NodeAgent, String> {
        node::register(&client, &cfg.node_name).await?;
        node::heartbeat(&client, &cfg.node_name).await?;
        let procs = Procs::default();
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(run(client, cfg, procs.clone(), rx));
        Ok(NodeAgent { stop, task: Some(task), procs })
    }

    /// Pids of the processes running now (the group leaders).
    pub fn pids(&self) -> Vec<u32> {
        let map = self.procs.lock().unwrap_or_else(|p| p.into_inner());
        map.values().map(|c| c.id()).collect()
    }

    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
        }
    }
}

impl Drop for NodeAgent {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            t.abort();
        }
        let mut map = self.procs.lock().unwrap_or_else(|p| p.into_inner());
        for (_, mut child) in map.drain() {
            process::signal(&mut child, libc::SIGKILL);
            let _ = child.wait();
        }
    }
}

struct Agent {
    client: kube::Client,
    cfg: AgentConfig,
    procs: Procs,
    ips: ips::IpPool,
    pods: HashMap<String, PodRt>,
    /// uid → reason, for pods that cannot run here (reported once).
    unstartable: HashMap<String, String>,
    http: reqwest::Client,
}

async fn run(client: kube::Client, cfg: AgentConfig, procs: Procs, mut stop: watch::Receiver<bool>) {
    let http = reqwest::Client::builder().danger_accept_invalid_certs(true).timeout(Duration::from_secs(1)).build().unwrap_or_default();
    let mut a = Agent { client, cfg, procs, ips: ips::IpPool::default(), pods: HashMap::new(), unstartable: HashMap::new(), http };
    let cfg = kube::runtime::watcher::Config::default().fields(&format!("spec.nodeName={}", a.cfg.node_name));
    // Backoff keeps a failing watch (API server gone) from spinning the loop.
    let mut events = kube::runtime::watcher(Api::<Pod>::all(a.client.clone()), cfg).default_backoff().boxed();
    let mut last_beat = Instant::now();
    while !*stop.borrow() {
        if last_beat.elapsed() >= HEARTBEAT {
            last_beat = Instant::now();
            if let Err(e) = node::heartbeat(&a.client, &a.cfg.node_name).await {
                eprintln!("node agent heartbeat: {e}");
            }
        }
        if let Err(e) = a.sync().await {
            eprintln!("node agent: {e}");
        }
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(TICK) => {}
            // Any event (or watch error, retried by the next pass) only
            // means "look now"; the list in `sync` is the source of truth.
            _ = events.next() => {}
        }
    }
    for rt in a.pods.values_mut() {
        rt.kill(&a.procs);
    }
}

impl Agent {
    async fn sync(&mut self) -> Result<(), String> {
        let api: Api<Pod> = Api::all(self.client.clone());
        let lp = ListParams::default().fields(&format!("spec.nodeName={}", self.cfg.node_name));
        let list = api.list(&lp).await.map_err(|e| format!("list pods: {e}"))?;
        let mut seen = std::collections::HashSet::new();
        for pod in &list.items {
            let Some(uid) = pod.metadata.uid.clone() else { continue };
            seen.insert(uid.clone());
            self.observe(pod, uid).await;
        }
        // Pods removed behind our back: nothing to report, just stop them.
        let gone: Vec<String> = self.pods.keys().filter(|u| !seen.contains(*u)).cloned().collect();
        for uid in gone {
            if let Some(mut rt) = self.pods.remove(&uid) {
                rt.kill(&self.procs);
                self.ips.free(rt.ip);
            }
        }
        self.unstartable.retain(|u, _| seen.contains(u));
        self.advance().await;
        Ok(())
    }

    /// Starts a new pod or begins terminating a deleted one.
    async fn observe(&mut self, pod: &Pod, uid: String) {
        let deleting = pod.metadata.deletion_timestamp.is_some();
        if let Some(rt) = self.pods.get_mut(&uid) {
            if deleting {
                let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(30).max(0) as u64;
                rt.begin_termination(&self.procs, Duration::from_secs(grace));
            }
            return;
        }
        let terminal = pod.status.as_ref().and_then(|s| s.phase.as_deref()).is_some_and(|p| p == "Succeeded" || p == "Failed");
        if deleting {
            // Never ran here (or already finished): nothing to stop.
            self.delete_now(pod).await;
            return;
        }
        if terminal || self.unstartable.contains_key(&uid) {
            return;
        }
        let Some(ip) = self.ips.take() else {
            eprintln!("node agent: no free 127.0.0.x address");
            return;
        };
        let root = self.cfg.work_dir.clone();
        match pods::plan(&self.client, (&self.cfg.server, &self.cfg.ca_file), &self.cfg.images, &root, pod, ip).await {
            Ok(plan) => {
                let policy = pod.spec.as_ref().and_then(|s| s.restart_policy.clone()).unwrap_or("Always".into());
                let ns = pod.metadata.namespace.clone().unwrap_or_default();
                let name = pod.metadata.name.clone().unwrap_or_default();
                self.pods.insert(uid.clone(), PodRt::new(uid, name, ns, ip, plan, &policy));
            }
            Err(why) => {
                self.ips.free(ip);
                eprintln!("node agent: cannot run pod {:?}: {why}", pod.metadata.name);
                let body = runtime::unstartable_status(pod, &why);
                self.patch_status(pod.metadata.namespace.as_deref(), pod.metadata.name.as_deref(), &body).await;
                self.unstartable.insert(uid, why);
            }
        }
    }

    /// Processes, probes, status and finished terminations of known pods.
    async fn advance(&mut self) {
        let uids: Vec<String> = self.pods.keys().cloned().collect();
        for uid in uids {
            let Some(rt) = self.pods.get_mut(&uid) else { continue };
            if rt.terminating.is_some() {
                if rt.finish_termination(&self.procs) {
                    let (ns, name, ip) = (rt.namespace.clone(), rt.name.clone(), rt.ip);
                    self.pods.remove(&uid);
                    self.ips.free(ip);
                    let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
                    let dp = DeleteParams {
                        grace_period_seconds: Some(0),
                        preconditions: Some(Preconditions { uid: Some(uid.clone()), resource_version: None }),
                        ..DeleteParams::default()
                    };
                    if let Err(e) = api.delete(&name, &dp).await
                        && !matches!(&e, kube::Error::Api(s) if s.code == 404 || s.code == 409)
                    {
                        eprintln!("node agent: delete {ns}/{name}: {e}");
                    }
                }
                continue;
            }
            rt.tick(&self.procs);
            for (i, url) in rt.probes_due() {
                let ok = matches!(self.http.get(&url).send().await, Ok(r) if r.status().as_u16() < 400);
                rt.set_ready(i, ok);
            }
            let body = rt.status();
            if rt.last_sent.as_ref() != Some(&body) {
                let (ns, name) = (rt.namespace.clone(), rt.name.clone());
                if self.patch_status(Some(&ns), Some(&name), &body).await
                    && let Some(rt) = self.pods.get_mut(&uid)
                {
                    rt.last_sent = Some(body);
                }
            }
        }
    }

    async fn patch_status(&self, ns: Option<&str>, name: Option<&str>, body: &serde_json::Value) -> bool {
        let (Some(ns), Some(name)) = (ns, name) else { return false };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        match api.patch_status(name, &PatchParams::default(), &Patch::Merge(body)).await {
            Ok(_) => true,
            Err(e) => {
                eprintln!("node agent: status of {ns}/{name}: {e}");
                false
            }
        }
    }

    async fn delete_now(&self, pod: &Pod) {
        let (Some(ns), Some(name)) = (pod.metadata.namespace.as_deref(), pod.metadata.name.as_deref()) else { return };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let dp = DeleteParams { grace_period_seconds: Some(0), ..DeleteParams::default() };
        if let Err(e) = api.delete(name, &dp).await
            && !matches!(&e, kube::Error::Api(s) if s.code == 404)
        {
            eprintln!("node agent: delete {ns}/{name}: {e}");
        }
    }
}
