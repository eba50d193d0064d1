//! A throw-away Kubernetes control plane for end-to-end tests: etcd,
//! kube-apiserver, kube-controller-manager and kube-scheduler run as child
//! processes on free 127.0.0.1 ports with their state in a temporary
//! directory. There is no container runtime here, so there is no kubelet;
//! `node_agent` plays that part in-process.
//!
//! Every process is started in its own process group and stopped by that
//! group's id when the `Cluster` is dropped (also when a test panics).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the upstream binaries built from `e2e/controlplane` are cached,
/// under `$HOME/.cache/hearth-e2e/`; `HEARTH_E2E_K8S_DIR` points elsewhere.
const K8S_DIR: &str = "k8s-v1.33.13";
const K8S_DIR_ENV: &str = "HEARTH_E2E_K8S_DIR";
/// An etcd binary to use instead of the candidates below.
const ETCD_ENV: &str = "HEARTH_E2E_ETCD";
/// etcd 3.5 as built for the e2e tests (in the cache); Debian's etcd 3.4 is the fallback.
const ETCD_CACHED: &str = "etcd-v3.5.21/etcd";
const ETCD_DEBIAN: &str = "/usr/bin/etcd";
/// The bearer token of the `system:masters` user written into the admin
/// kubeconfig. Only reachable on 127.0.0.1 for the life of one test.
const ADMIN_TOKEN: &str = "hearth-e2e-admin";

/// Why the control plane cannot run here (binaries missing); tests print
/// it and return instead of failing.
#[derive(Debug)]
pub struct Skip(pub String);

/// One child process in its own process group, logging to a file.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &'static str, mut cmd: Command, log: PathBuf) -> Result<Proc, String> {
        use std::os::unix::process::CommandExt;
        let out = File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("clone log handle: {e}"))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
        let child = cmd.spawn().map_err(|e| format!("start {name}: {e}"))?;
        Ok(Proc { name, child, log })
    }

    /// `Some(description)` once the process has ended.
    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("cannot be waited for: {e}")),
        }
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Until `try_wait` reaps the leader its pid (= the group id) cannot
        // be reused, so signalling the group only reaches what we started.
        let pgid = self.child.id() as libc::pid_t;
        if self.exited().is_some() {
            return;
        }
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// A running control plane. Dropping it stops every process (scheduler
/// first, etcd last) and removes the state directory.
pub struct Cluster {
    /// Stop order: reverse of start order.
    procs: Vec<Proc>,
    /// `https://127.0.0.1:<port>` of kube-apiserver.
    pub server: String,
    /// Admin (`system:masters`) kubeconfig, insecure-skip-tls-verify.
    pub kubeconfig: PathBuf,
    // Dropped after `procs` (field order), so processes are gone first.
    // `None` only while being dropped.
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

/// Set to keep the state directory (logs, pod directories) after a run.
const KEEP_ENV: &str = "HEARTH_E2E_KEEP";

impl Drop for Cluster {
    fn drop(&mut self) {
        while let Some(p) = self.procs.pop() {
            drop(p);
        }
        if std::env::var_os(KEEP_ENV).is_some() {
            if let Some(d) = self.dir.take() {
                eprintln!("{KEEP_ENV}: state kept in {}", d.keep().display());
            }
        }
    }
}

/// The binaries, or why they are not all there.
pub fn binaries() -> Result<(PathBuf, PathBuf), Skip> {
    let cache = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(".cache/hearth-e2e");
    let candidates = [cache.join(ETCD_CACHED), PathBuf::from(ETCD_DEBIAN)];
    let from_env = std::env::var_os(ETCD_ENV).map(PathBuf::from);
    let etcd = from_env.into_iter().chain(candidates.iter().cloned()).find(|p| p.is_file()).ok_or_else(|| {
        Skip(format!("no etcd binary (looked for {})", candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")))
    })?;
    let k8s = std::env::var_os(K8S_DIR_ENV).map(PathBuf::from).unwrap_or_else(|| cache.join(K8S_DIR));
    for b in ["kube-apiserver", "kube-controller-manager", "kube-scheduler"] {
        if !k8s.join(b).is_file() {
            return Err(Skip(format!("{}/{b} is missing (build it from e2e/controlplane, see e2e/README.md)", k8s.display())));
        }
    }
    Ok((etcd, k8s))
}

/// Writes a kubeconfig for `server` with a bearer `token`, trusting the
/// CA in `ca_file` (the run's own, see `Cluster::start`).
pub fn write_kubeconfig(path: &Path, server: &str, ca_file: &Path, token: &str, namespace: &str) -> Result<(), String> {
    let ca = ca_file.display();
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\n\
         users:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: e2e\n  context:\n    cluster: e2e\n    user: u\n    namespace: {namespace}\n\
         current-context: e2e\n"
    );
    std::fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))
}

/// A CA for this run and the apiserver's serving certificate signed by
/// it (127.0.0.1, localhost, and the in-cluster names), so every client
/// verifies TLS as against a real cluster. Writes ca.crt, apiserver.crt
/// and apiserver.key into `dir`.
fn write_pki(dir: &Path) -> Result<(), String> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let e = |e: rcgen::Error| format!("certificates: {e}");
    let ca_key = KeyPair::generate().map_err(e)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "hearth-e2e-ca");
    let ca = ca_params.self_signed(&ca_key).map_err(e)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let names = ["127.0.0.1", "localhost", "10.96.0.1", "kubernetes", "kubernetes.default", "kubernetes.default.svc"];
    let key = KeyPair::generate().map_err(e)?;
    let mut params = CertificateParams::new(names.map(String::from).to_vec()).map_err(e)?;
    params.distinguished_name.push(DnType::CommonName, "kube-apiserver");
    let cert = params.signed_by(&key, &issuer).map_err(e)?;
    write(&dir.join("ca.crt"), &ca.pem())?;
    write(&dir.join("apiserver.crt"), &cert.pem())?;
    write(&dir.join("apiserver.key"), &key.serialize_pem())
}

impl Cluster {
    /// Starts the control plane and waits (at most 90 s) until the apiserver
    /// reports /readyz. `Err(Ok(skip))` when the binaries are missing,
    /// `Err(Err(msg))` when something failed to come up.
    pub async fn start() -> Result<Cluster, Result<Skip, String>> {
        let (etcd, k8s) = binaries().map_err(Ok)?;
        Self::start_with(&etcd, &k8s).await.map_err(Err)
    }

    async fn start_with(etcd: &Path, k8s: &Path) -> Result<Cluster, String> {
        let dir = tempfile::Builder::new().prefix("hearth-e2e-").tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let d = dir.path().to_path_buf();
        // Distinct ports: all three listeners are held until each is chosen.
        let [etcd_port, peer_port, api_port] = crate::procs::free_ports(3)[..] else { return Err("three free ports".into()) };
        let mut cluster = Cluster {
            procs: Vec::new(),
            server: format!("https://127.0.0.1:{api_port}"),
            kubeconfig: d.join("admin.kubeconfig"),
            dir: Some(dir),
            path: d.clone(),
        };

        // Service-account signing key: ECDSA P-256 in PKCS#8, which both
        // the apiserver and the controller-manager accept.
        let key = rcgen::KeyPair::generate().map_err(|e| format!("sa key: {e}"))?;
        write(&d.join("sa.key"), &key.serialize_pem())?;
        write(&d.join("sa.pub"), &key.public_key_pem())?;
        write(&d.join("tokens.csv"), &format!("{ADMIN_TOKEN},admin,admin,system:masters\n"))?;
        write_pki(&d)?;
        write_kubeconfig(&cluster.kubeconfig, &cluster.server, &cluster.ca_file(), ADMIN_TOKEN, "default")?;

        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let mut c = Command::new(etcd);
        c.arg("--data-dir")
            .arg(d.join("etcd"))
            .arg(format!("--listen-client-urls={etcd_url}"))
            .arg(format!("--advertise-client-urls={etcd_url}"))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"))
            .arg(format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"))
            .arg(format!("--initial-cluster=default=http://127.0.0.1:{peer_port}"))
            .arg("--unsafe-no-fsync");
        cluster.procs.push(Proc::spawn("etcd", c, d.join("etcd.log"))?);

        let mut c = Command::new(k8s.join("kube-apiserver"));
        c.arg(format!("--etcd-servers={etcd_url}"))
            .arg("--bind-address=127.0.0.1")
            .arg("--advertise-address=127.0.0.1")
            .arg(format!("--secure-port={api_port}"))
            .arg("--tls-cert-file")
            .arg(d.join("apiserver.crt"))
            .arg("--tls-private-key-file")
            .arg(d.join("apiserver.key"))
            .arg("--service-account-issuer=https://kubernetes.default.svc")
            .arg("--service-account-key-file")
            .arg(d.join("sa.pub"))
            .arg("--service-account-signing-key-file")
            .arg(d.join("sa.key"))
            .arg("--token-auth-file")
            .arg(d.join("tokens.csv"))
            .arg("--authorization-mode=RBAC")
            .arg("--service-cluster-ip-range=10.96.0.0/24");
        cluster.procs.push(Proc::spawn("kube-apiserver", c, d.join("apiserver.log"))?);
        cluster.wait_ready().await?;

        // The controller-manager publishes the CA as kube-root-ca.crt.
        let mut c = Command::new(k8s.join("kube-controller-manager"));
        c.arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .arg("--service-account-private-key-file")
            .arg(d.join("sa.key"))
            .arg("--root-ca-file")
            .arg(d.join("ca.crt"))
            .arg("--use-service-account-credentials=true")
            .arg("--leader-elect=false")
            .arg("--bind-address=127.0.0.1")
            .arg("--secure-port=0");
        cluster.procs.push(Proc::spawn("kube-controller-manager", c, d.join("kcm.log"))?);

        let mut c = Command::new(k8s.join("kube-scheduler"));
        c.arg("--kubeconfig").arg(&cluster.kubeconfig).arg("--leader-elect=false").arg("--bind-address=127.0.0.1").arg("--secure-port=0");
        cluster.procs.push(Proc::spawn("kube-scheduler", c, d.join("scheduler.log"))?);
        // Give both a moment to fail on bad flags before declaring success.
        tokio::time::sleep(Duration::from_millis(500)).await;
        cluster.check_alive()?;
        Ok(cluster)
    }

    /// Polls /readyz (at most 90 s), failing early if a process died.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let pem = std::fs::read(self.ca_file()).map_err(|e| format!("ca.crt: {e}"))?;
        let ca = reqwest::Certificate::from_pem(&pem).map_err(|e| format!("ca.crt: {e}"))?;
        let http = reqwest::Client::builder()
            .add_root_certificate(ca)
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        let url = format!("{}/readyz", self.server);
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut last = String::new();
        while Instant::now() < deadline {
            self.check_alive()?;
            match http.get(&url).bearer_auth(ADMIN_TOKEN).send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => last = format!("status {}", r.status()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(format!("apiserver not ready after 90 s ({last}):\n{}", self.logs(30)))
    }

    /// `Err` with the end of its log if any control-plane process exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        for p in &mut self.procs {
            if let Some(how) = p.exited() {
                return Err(format!("{} {how}; end of its log:\n{}", p.name, p.log_tail(30)));
            }
        }
        Ok(())
    }

    /// The last `lines` of every process log, for failure messages.
    pub fn logs(&self, lines: usize) -> String {
        self.procs.iter().map(|p| format!("--- {} ---\n{}", p.name, p.log_tail(lines))).collect::<Vec<_>>().join("\n")
    }

    /// A client for the admin kubeconfig.
    pub async fn client(&self) -> Result<kube::Client, String> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).map_err(|e| format!("kubeconfig: {e}"))?;
        let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| format!("kubeconfig: {e}"))?;
        kube::Client::try_from(cfg).map_err(|e| format!("client: {e}"))
    }

    /// The CA the apiserver's certificate is signed by.
    pub fn ca_file(&self) -> PathBuf {
        self.path.join("ca.crt")
    }

    /// The state directory (logs, certificates), for the node agent's
    /// per-pod directories as well.
    pub fn dir(&self) -> &Path {
        &self.path
    }
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))
}
