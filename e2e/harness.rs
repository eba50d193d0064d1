//! What every e2e scenario shares: where its cluster comes from, polling,
//! helm and kubectl, PromQL queries and the timing lines.
//!
//! A scenario runs against one of two clusters:
//! - its own control plane (`cluster.rs`) plus the node agent. The test
//!   re-runs itself under `unshare` in private user, network, mount and
//!   PID namespaces whose loopback carries 10.244.0.0/24, so pods get
//!   addresses the apiserver accepts in EndpointSlices (it rejects
//!   127.0.0.0/8), nothing touches the host's network, and every process
//!   the scenario started dies with the namespace's first process;
//! - an existing cluster (kind, k3d, …) when `HEARTH_E2E_KUBECONFIG` names
//!   its kubeconfig (`e2e/run` sets it from `KUBECONFIG`). There is no node
//!   agent then: the cluster's kubelets pull the real images.

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::{ApiResource, Discovery, Scope};
use serde_json::Value;

use crate::cluster::{self, Cluster};
use crate::node_agent::{AgentConfig, ImageTable, NodeAgent};

pub const NODE: &str = "hearth-e2e-node";
/// Set in the re-run test process: the /24 whose addresses pods get.
const POD_NET_ENV: &str = "HEARTH_E2E_POD_NET";
const POD_NET: &str = "10.244.0";
/// An existing cluster's kubeconfig; no control plane is started then.
const KUBECONFIG_ENV: &str = "HEARTH_E2E_KUBECONFIG";
/// Longest a scenario may run (its own process is killed after that).
const SCENARIO_LIMIT: Duration = Duration::from_secs(600);

/// One scenario at a time: each runs a whole control plane on two cores.
static SERIAL: Mutex<()> = Mutex::new(());

/// Prints past the test harness's output capture, so a skip is seen.
pub fn loud(msg: &str) {
    let _ = writeln!(std::io::stderr(), "\n######## {msg} ########\n");
}

/// Polls `f` every 250 ms until it returns `Ok` or `timeout` passes.
pub async fn wait<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::from("never checked");
    while Instant::now() < deadline {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(format!("timed out after {timeout:?} waiting for {what}: {last}"))
}

/// The cluster a scenario talks to.
pub struct Env {
    pub client: kube::Client,
    /// Admin kubeconfig, for helm and kubectl.
    pub kubeconfig: PathBuf,
    t0: Instant,
    /// Before `cluster`: fields drop in order, and the agent must stop
    /// before the apiserver it talks to.
    agent: Option<NodeAgent>,
    cluster: Option<Cluster>,
    /// Where the node agent keeps each pod's directory and logs.
    pods_dir: Option<PathBuf>,
    /// `apiVersion/kind` → what [`Env::resource`] found.
    resources: Mutex<std::collections::HashMap<String, (ApiResource, bool)>>,
}

impl Env {
    /// Prints a progress line with the time since the scenario started.
    pub fn step(&self, what: &str) {
        eprintln!("[{:>6.1?}] {what}", self.t0.elapsed());
    }

    /// True when the pods run through our node agent (own control plane).
    pub fn own_cluster(&self) -> bool {
        self.agent.is_some()
    }

    /// Pids of the processes the node agent runs now.
    pub fn pids(&self) -> Vec<u32> {
        self.agent.as_ref().map(|a| a.pids()).unwrap_or_default()
    }

    /// Kills process `pid` (a container's, from its status) with SIGKILL,
    /// as a crash would (own cluster only).
    pub fn kill_container(&self, pid: u32) -> Result<(), String> {
        // SAFETY: kill(2) with a pid we read from the pod's status.
        let r = unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        if r == 0 { Ok(()) } else { Err(format!("kill {pid}: {}", std::io::Error::last_os_error())) }
    }

    /// Runs helm against this cluster; stdout, or the error output.
    pub fn helm(&self, args: &[&str]) -> Result<String, String> {
        let mut all: Vec<&str> = args.to_vec();
        let kc = self.kubeconfig.display().to_string();
        all.extend(["--kubeconfig", &kc]);
        crate::chart::run_helm(&all)
    }

    /// Runs kubectl against this cluster; stdout, or the error output.
    pub fn kubectl(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .current_dir(crate::chart::root())
            .output()
            .map_err(|e| format!("running kubectl: {e}"))?;
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        if out.status.success() {
            Ok(text(&out.stdout))
        } else {
            Err(format!("kubectl {args:?}: {}{}", text(&out.stdout), text(&out.stderr)))
        }
    }

    /// Server-side applies a JSON object (any kind, found by discovery).
    pub async fn apply(&self, obj: Value) -> Result<(), String> {
        let (ar, namespaced) = self.resource(&obj).await?;
        let name = obj["metadata"]["name"].as_str().ok_or("object without a name")?.to_string();
        let api: Api<DynamicObject> = match obj["metadata"]["namespace"].as_str() {
            Some(ns) if namespaced => Api::namespaced_with(self.client.clone(), ns, &ar),
            _ => Api::all_with(self.client.clone(), &ar),
        };
        let pp = PatchParams::apply("hearth-e2e").force();
        api.patch(&name, &pp, &Patch::Apply(&obj)).await.map(|_| ()).map_err(|e| format!("apply {} {name}: {e}", ar.kind))
    }

    /// Deletes the object `obj` names (it need not exist).
    pub async fn delete(&self, obj: &Value) -> Result<(), String> {
        let (ar, namespaced) = self.resource(obj).await?;
        let name = obj["metadata"]["name"].as_str().ok_or("object without a name")?;
        let api: Api<DynamicObject> = match obj["metadata"]["namespace"].as_str() {
            Some(ns) if namespaced => Api::namespaced_with(self.client.clone(), ns, &ar),
            _ => Api::all_with(self.client.clone(), &ar),
        };
        match api.delete(name, &Default::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(format!("delete {} {name}: {e}", ar.kind)),
        }
    }

    /// The API resource of `obj`'s kind and whether it is namespaced, found
    /// by discovery once per kind (a kind not served yet, like a CRD still
    /// being installed, is looked up again next time).
    async fn resource(&self, obj: &Value) -> Result<(ApiResource, bool), String> {
        let api_version = obj["apiVersion"].as_str().ok_or("object without apiVersion")?;
        let kind = obj["kind"].as_str().ok_or("object without kind")?;
        let key = format!("{api_version}/{kind}");
        if let Some(found) = self.resources.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(found.clone());
        }
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let discovery = Discovery::new(self.client.clone()).filter(&[group]).run().await.map_err(|e| format!("discovery: {e}"))?;
        for g in discovery.groups() {
            for (ar, caps) in g.versioned_resources(version) {
                if ar.kind == kind {
                    let found = (ar, caps.scope == Scope::Namespaced);
                    self.resources.lock().unwrap_or_else(|p| p.into_inner()).insert(key, found.clone());
                    return Ok(found);
                }
            }
        }
        Err(format!("the cluster does not serve {api_version} {kind}"))
    }

    /// The end of the control-plane and pod logs, for a failure message.
    pub fn logs(&self) -> String {
        let mut out = self.cluster.as_ref().map(|c| c.logs(10)).unwrap_or_default();
        let Some(dir) = &self.pods_dir else { return out };
        let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        logs.sort();
        for p in logs {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(12).collect();
            let name = p.strip_prefix(dir).unwrap_or(&p).display().to_string();
            out.push_str(&format!("\n--- pod {name} ---\n"));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    async fn stop(mut self) -> Result<(), String> {
        if let Some(agent) = self.agent.take() {
            agent.stop().await;
        }
        match self.cluster.as_mut() {
            Some(c) => c.check_alive().map_err(|e| format!("control plane died during the test: {e}")),
            None => Ok(()),
        }
    }
}

/// Runs one scenario: in its own namespaces with its own control plane, or
/// against `HEARTH_E2E_KUBECONFIG`'s cluster. `name` is the test's path
/// (`module::function`); `images` maps images to local binaries for the
/// node agent. Passes with a loud SKIPPED line when the control plane
/// cannot be built or started here.
pub fn scenario<B>(name: &str, images: ImageTable, body: B)
where
    B: AsyncFnOnce(&Env) -> Result<(), String>,
{
    let existing = std::env::var_os(KUBECONFIG_ENV).map(PathBuf::from);
    if existing.is_none() && std::env::var_os(POD_NET_ENV).is_none() {
        if let Err(cluster::Skip(why)) = cluster::binaries() {
            return loud(&format!("SKIPPED e2e {name}: {why}"));
        }
        // Installed out here: the private network namespace has no network.
        crate::chart::helm();
        let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        return rerun_isolated(name);
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let rt = rt.unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    rt.block_on(async move {
        let t0 = Instant::now();
        let env = match existing {
            Some(kc) => connect(kc, t0).await,
            None => own(images, t0).await,
        };
        let env = env.unwrap_or_else(|e| panic!("{name}: {e}"));
        let result = body(&env).await;
        let logs = env.logs();
        let elapsed = t0.elapsed();
        let stopped = env.stop().await;
        match result.and(stopped) {
            Ok(()) => eprintln!("E2E-TIME {name} {:.1}s", elapsed.as_secs_f64()),
            Err(e) => panic!("{name} failed after {elapsed:.1?}: {e}\n{logs}"),
        }
    })
}

/// Starts the control plane and the node agent.
async fn own(images: ImageTable, t0: Instant) -> Result<Env, String> {
    let cluster = match Cluster::start().await {
        Ok(c) => c,
        Err(Ok(cluster::Skip(why))) => return Err(format!("binaries vanished: {why}")),
        Err(Err(e)) => return Err(format!("control plane did not start: {e}")),
    };
    let client = cluster.client().await?;
    let pods_dir = cluster.dir().join("pods");
    let cfg = AgentConfig {
        node_name: NODE.into(),
        server: cluster.server.clone(),
        ca_file: cluster.ca_file(),
        images,
        work_dir: pods_dir.clone(),
    };
    let agent = NodeAgent::start(client.clone(), cfg).await.map_err(|e| format!("node agent: {e}\n{}", cluster.logs(20)))?;
    let env = Env {
        client,
        kubeconfig: cluster.kubeconfig.clone(),
        t0,
        cluster: Some(cluster),
        agent: Some(agent),
        pods_dir: Some(pods_dir),
        resources: Mutex::default(),
    };
    env.step("control plane and node agent ready");
    // Pod admission wants the namespace's default ServiceAccount, which
    // the controller-manager creates shortly after starting.
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> = Api::namespaced(env.client.clone(), "default");
    wait("default ServiceAccount", Duration::from_secs(60), || async {
        sas.get_opt("default").await.map_err(|e| e.to_string())?.ok_or("not yet".to_string())
    })
    .await
    .map_err(|e| format!("{e}\n{}", env.logs()))?;
    Ok(env)
}

/// An existing cluster: no control plane, no node agent.
async fn connect(kubeconfig: PathBuf, t0: Instant) -> Result<Env, String> {
    let kc = kube::config::Kubeconfig::read_from(&kubeconfig).map_err(|e| format!("{}: {e}", kubeconfig.display()))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await.map_err(|e| format!("kubeconfig: {e}"))?;
    let client = kube::Client::try_from(cfg).map_err(|e| format!("client: {e}"))?;
    Ok(Env { client, kubeconfig, t0, cluster: None, agent: None, pods_dir: None, resources: Mutex::default() })
}

/// Runs this same test binary, filtered to `name`, inside fresh user,
/// network, mount and PID namespaces, and fails when it fails.
fn rerun_isolated(name: &str) {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("own executable: {e}"));
    // The test path without the crate's name, as libtest matches it.
    let filter = name.split_once("::").map_or(name, |(_, rest)| rest);
    let setup = format!(
        "ip link set lo up && i=2 && while [ $i -le 254 ]; do ip addr add {POD_NET}.$i/32 dev lo || exit 97; i=$((i + 1)); done && exec \"$0\" \"$@\""
    );
    let child = Command::new("unshare")
        .args(["--user", "--map-root-user", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c", &setup])
        .arg(&exe)
        .args([filter, "--exact", "--nocapture", "--test-threads=1"])
        .env(POD_NET_ENV, POD_NET)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return loud(&format!("SKIPPED e2e {name}: cannot run unshare: {e}")),
    };
    let (out, err) = (child.stdout.take(), child.stderr.take());
    let read = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let (out, err) = (read(out.map(|r| Box::new(r) as _)), read(err.map(|r| Box::new(r) as _)));
    let deadline = Instant::now() + SCENARIO_LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            _ => {
                // --kill-child: the namespace's processes all die with it.
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let (out, err) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    let output = format!("{out}{err}");
    if output.contains("unshare: ") && !output.contains("running 1 test") {
        return loud(&format!("SKIPPED e2e {name}: no private namespaces here: {}", err.trim()));
    }
    if !output.contains("running 1 test") {
        panic!("{name}: the isolated re-run did not run the test (filter {filter:?}):\n{output}");
    }
    for line in output.lines().filter(|l| l.starts_with("E2E-TIME") || l.contains("FIGURE") || l.contains("SKIPPED")) {
        loud(line);
    }
    // Indented: the inner run's own `test ... ok` lines are not this run's.
    let indented: Vec<String> = output.lines().map(|l| format!("    | {l}")).collect();
    eprintln!("{}", indented.join("\n"));
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!("{name} failed ({s}):\n{output}"),
        None => panic!("{name} did not finish within {SCENARIO_LIMIT:?}:\n{output}"),
    }
}

/// `GET /api/v1/query` on pod `ns/pod` port `port`, through the
/// apiserver's pod proxy (so it also works where pod IPs are not
/// reachable from the test, as with kind): the result vector.
pub async fn query(env: &Env, ns: &str, pod: &str, port: u16, promql: &str) -> Result<Vec<Value>, String> {
    let body = proxy_get(env, ns, pod, port, "api/v1/query", &[("query", promql)]).await?;
    if body["status"] != "success" {
        return Err(format!("query {promql}: {body}"));
    }
    Ok(body["data"]["result"].as_array().cloned().unwrap_or_default())
}

/// A JSON GET of `path` on pod `ns/pod` port `port` through the apiserver.
pub async fn proxy_get(env: &Env, ns: &str, pod: &str, port: u16, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
    let text = proxy_text(env, ns, pod, port, path, params).await?;
    serde_json::from_str(&text).map_err(|e| format!("GET {path}: {e}: {text:.300}"))
}

/// A GET of `path` on pod `ns/pod` port `port` through the apiserver: the body.
pub async fn proxy_text(env: &Env, ns: &str, pod: &str, port: u16, path: &str, params: &[(&str, &str)]) -> Result<String, String> {
    let base = format!("http://x/api/v1/namespaces/{ns}/pods/{pod}:{port}/proxy/{path}");
    let url = if params.is_empty() { reqwest::Url::parse(&base) } else { reqwest::Url::parse_with_params(&base, params) };
    let url = url.map_err(|e| e.to_string())?;
    let uri = &url.as_str()["http://x".len()..];
    let req = http::Request::get(uri).body(Vec::new()).map_err(|e| e.to_string())?;
    env.client.request_text(req).await.map_err(|e| format!("GET {uri}: {e}"))
}
