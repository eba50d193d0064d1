//! `hearth server --config.kubernetes-secret`: the real binary against a fake
//! Kubernetes API server on 127.0.0.1 (list + streaming watch over plain
//! HTTP, reached through a kubeconfig written by the test). The server must
//! fetch the Secret before loading, write its keys as files, follow changes
//! within seconds, keep the running configuration (and its hash) when a new
//! one is invalid, remove files of removed keys, and report the hash of the
//! configuration in force at `/-/config-hash`.

#[allow(dead_code)]
mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use hearth::config::hash::content_hash;
use serde_json::{Value, json};
use support::http;
use support::procs::{Proc, free_ports, wait_for};
use tokio::sync::broadcast;

const SHARD: &str = "prometheus-shard-0.yaml";
const RULES: &str = "rules-ns1-r.yaml";

/// The fake API server: one namespace's Secrets and its open watches.
#[derive(Clone)]
struct FakeApi {
    secrets: Arc<Mutex<Vec<Value>>>,
    events: broadcast::Sender<Value>,
    resource_version: Arc<AtomicUsize>,
    watches: Arc<AtomicUsize>,
    /// The `fieldSelector` of every list and watch request, in order.
    selectors: Arc<Mutex<Vec<Option<String>>>>,
}

impl FakeApi {
    fn new() -> FakeApi {
        FakeApi {
            secrets: Arc::default(),
            events: broadcast::channel(64).0,
            resource_version: Arc::new(AtomicUsize::new(1)),
            watches: Arc::default(),
            selectors: Arc::default(),
        }
    }

    /// Stores the Secret and streams the event to open watches.
    fn emit(&self, kind: &str, mut secret: Value) {
        let rv = self.resource_version.fetch_add(1, Ordering::SeqCst) + 1;
        secret["metadata"]["resourceVersion"] = json!(rv.to_string());
        {
            let mut secrets = self.secrets.lock().expect("lock");
            secrets.retain(|s| s["metadata"]["name"] != secret["metadata"]["name"]);
            if kind != "DELETED" {
                secrets.push(secret.clone());
            }
        }
        // No receiver only means no watch is open yet; the next list has it.
        let _ = self.events.send(json!({"type": kind, "object": secret}));
    }

    fn selectors(&self) -> Vec<Option<String>> {
        self.selectors.lock().expect("lock").clone()
    }
}

/// `metadata.name=X` → `X`; `None` matches every name.
fn selected_name(selector: Option<&String>) -> Option<String> {
    selector.and_then(|s| s.strip_prefix("metadata.name=")).map(str::to_string)
}

async fn secrets_endpoint(State(api): State<FakeApi>, Query(q): Query<HashMap<String, String>>) -> Response {
    api.selectors.lock().expect("lock").push(q.get("fieldSelector").cloned());
    let name = selected_name(q.get("fieldSelector"));
    let matches = move |s: &Value| name.as_deref().is_none_or(|n| s["metadata"]["name"] == n);
    if q.get("watch").is_some_and(|w| w == "true" || w == "1") {
        let rx = api.events.subscribe();
        api.watches.fetch_add(1, Ordering::SeqCst);
        let stream = futures::stream::unfold((rx, matches), |(mut rx, matches)| async move {
            loop {
                match rx.recv().await {
                    Ok(event) if matches(&event["object"]) => {
                        return Some((Ok::<_, std::convert::Infallible>(event.to_string() + "\n"), (rx, matches)));
                    }
                    Ok(_) => continue,
                    Err(_) => return None,
                }
            }
        });
        return Body::from_stream(stream.boxed()).into_response();
    }
    let items: Vec<Value> = api.secrets.lock().expect("lock").iter().filter(|s| matches(s)).cloned().collect();
    let rv = api.resource_version.load(Ordering::SeqCst).to_string();
    axum::Json(json!({"apiVersion": "v1", "kind": "SecretList", "metadata": {"resourceVersion": rv}, "items": items})).into_response()
}

/// The fake API on a runtime of its own (the test itself blocks); both stop when dropped.
struct ApiServer {
    api: FakeApi,
    addr: String,
    _runtime: tokio::runtime::Runtime,
}

fn start_api() -> ApiServer {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let api = FakeApi::new();
    let app = Router::new().route("/api/v1/namespaces/ns1/secrets", get(secrets_endpoint)).with_state(api.clone());
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    runtime.spawn(async move { axum::serve(listener, app).await });
    ApiServer { api, addr, _runtime: runtime }
}

fn write_kubeconfig(dir: &Path, api_addr: &str) -> PathBuf {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{api_addr}\n\
         contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: nobody\n    namespace: ns1\n\
         current-context: fake\nusers:\n- name: nobody\n  user: {{}}\n"
    );
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

type Data = BTreeMap<String, Vec<u8>>;

fn data(entries: &[(&str, &str)]) -> Data {
    entries.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect()
}

/// A Secret object with `data` base64-encoded, as the API serves it.
fn secret(name: &str, d: &Data) -> Value {
    let encoded: serde_json::Map<String, Value> = d.iter().map(|(k, v)| (k.clone(), json!(base64(v)))).collect();
    json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": name, "namespace": "ns1", "uid": format!("uid-{name}")},
        "data": encoded,
    })
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn shard(job: &str) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  external_labels:\n    prometheus_replica: ${{HEARTH_TEST_POD_NAME}}\n\
         rule_files: [{RULES}]\nscrape_configs:\n  - job_name: {job}\n    static_configs: [{{targets: ['127.0.0.1:1']}}]\n"
    )
}

const RULE_FILE: &str = "groups:\n  - name: from-secret\n    rules:\n      - record: secret_rule\n        expr: vector(1)\n";

fn text(addr: &str, path: &str) -> Result<String, String> {
    let r = http::get(addr, path, &[])?;
    if r.status != 200 {
        return Err(format!("GET {path}: HTTP {}", r.status));
    }
    Ok(r.text()?.to_string())
}

fn config_yaml(addr: &str) -> String {
    http::api_get(addr, "/api/v1/status/config").ok().and_then(|d| d["yaml"].as_str().map(str::to_string)).unwrap_or_default()
}

fn reload_ok(addr: &str) -> Option<bool> {
    http::api_get(addr, "/api/v1/status/runtimeinfo").ok().and_then(|d| d["reloadConfigSuccess"].as_bool())
}

/// Polls `ok` for at most `limit`; how long it took, or the last state on timeout.
fn within(server: &Proc, what: &str, limit: Duration, mut ok: impl FnMut() -> Result<(), String>) -> Duration {
    let start = Instant::now();
    loop {
        if let Err(e) = server.check_alive() {
            panic!("waiting for {what}: {e}");
        }
        match ok() {
            Ok(()) => return start.elapsed(),
            Err(e) if start.elapsed() > limit => panic!("{what}: not within {limit:?}: {e}\nserver log:\n{}", server.log_tail(40)),
            Err(_) => std::thread::sleep(Duration::from_millis(25)),
        }
    }
}

fn hash_is(addr: &str, want: &str) -> Result<(), String> {
    let got = text(addr, "/-/config-hash")?;
    if got == want { Ok(()) } else { Err(format!("hash {got:?}, want {want:?}")) }
}

fn start_server(dir: &Path, api: &ApiServer, extra: &[&str]) -> (Proc, String) {
    let kubeconfig = write_kubeconfig(dir, &api.addr);
    let addr = format!("127.0.0.1:{}", free_ports(1)[0]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.env("KUBECONFIG", &kubeconfig)
        .env("HEARTH_TEST_POD_NAME", "pod-0")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .current_dir(dir)
        .args(["server", "--web.listen-address", &addr, "--config.kubernetes-secret=ns1/cfg"])
        .arg(format!("--config.file={}", dir.join("config").join(SHARD).display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .args(extra);
    (Proc::spawn("hearth server", cmd, &dir.join("server.log")), addr)
}

#[test]
fn configuration_follows_the_secret_and_reports_its_hash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = start_api();
    let v1 = data(&[(SHARD, &shard("first")), (RULES, RULE_FILE), ("extra.txt", "to be removed")]);
    api.api.emit("ADDED", secret("cfg", &v1));
    // Another Secret in the namespace, which the field selector keeps out.
    api.api.emit("ADDED", secret("other", &data(&[(SHARD, "not: [valid")])));
    let config_dir = dir.path().join("config");
    std::fs::create_dir_all(&config_dir).expect("mkdir");
    std::fs::write(config_dir.join("unrelated.txt"), "not from the Secret").expect("write");

    let (server, addr) = start_server(dir.path(), &api, &[]);
    wait_for("the server to be ready", Duration::from_secs(60), || {
        server.check_alive()?;
        text(&addr, "/-/ready").map(drop)
    });

    // Started from the Secret: files written, hash of the Secret data, rules loaded, environment expanded.
    hash_is(&addr, &content_hash(&v1)).expect("hash of the Secret");
    for (key, value) in &v1 {
        assert_eq!(std::fs::read(config_dir.join(key)).expect("file written"), *value, "{key}");
    }
    let yaml = config_yaml(&addr);
    assert!(yaml.contains("job_name: first"), "{yaml}");
    assert!(yaml.contains("prometheus_replica: pod-0"), "{yaml}");
    // Ready means storage is open; rules are applied right after.
    within(&server, "the rule file from the Secret to be loaded", Duration::from_secs(10), || {
        let rules = http::api_get(&addr, "/api/v1/rules")?;
        let group = &rules["groups"][0];
        if group["name"] == "from-secret" && group["rules"][0]["name"] == "secret_rule" { Ok(()) } else { Err(rules.to_string()) }
    });
    let metrics = text(&addr, "/metrics").expect("metrics");
    assert!(metrics.contains(&format!("hearth_config_hash_info{{hash=\"{}\"}} 1", content_hash(&v1))), "{metrics}");
    wait_for("the watch to open", Duration::from_secs(10), || {
        if api.api.watches.load(Ordering::SeqCst) >= 1 { Ok(()) } else { Err("no watch yet".to_string()) }
    });

    // A new valid configuration (another job, a changed rule): in force within 2 s.
    let v2 = data(&[(SHARD, &shard("second")), (RULES, &RULE_FILE.replace("secret_rule", "secret_rule_v2")), ("extra.txt", "kept")]);
    api.api.emit("MODIFIED", secret("cfg", &v2));
    let took = within(&server, "the new configuration", Duration::from_secs(2), || {
        hash_is(&addr, &content_hash(&v2))?;
        let yaml = config_yaml(&addr);
        if yaml.contains("job_name: second") && !yaml.contains("job_name: first") { Ok(()) } else { Err(yaml) }
    });
    eprintln!("a changed Secret was in force after {took:?}");
    let rules = http::api_get(&addr, "/api/v1/rules").expect("rules");
    assert_eq!(rules["groups"][0]["rules"][0]["name"], "secret_rule_v2", "{rules}");
    assert_eq!(reload_ok(&addr), Some(true));

    // An invalid configuration: reported, the old one (and its hash) stays in force.
    let bad =
        data(&[(SHARD, "scrape_configs:\n  - job_name: third\n    scrape_interval: banana\n"), (RULES, RULE_FILE), ("extra.txt", "kept")]);
    api.api.emit("MODIFIED", secret("cfg", &bad));
    within(&server, "the failed reload to be reported", Duration::from_secs(2), || match reload_ok(&addr) {
        Some(false) => Ok(()),
        other => Err(format!("reloadConfigSuccess {other:?}")),
    });
    assert_eq!(std::fs::read(config_dir.join(SHARD)).expect("shard"), bad[SHARD], "the invalid file was written");
    hash_is(&addr, &content_hash(&v2)).expect("the old hash stays");
    let yaml = config_yaml(&addr);
    assert!(yaml.contains("job_name: second") && !yaml.contains("third"), "{yaml}");
    let targets = http::api_get(&addr, "/api/v1/targets").expect("targets");
    assert_eq!(targets["activeTargets"][0]["scrapePool"], "second", "{targets}");

    // A valid configuration without the extra key: its file goes, nothing else does.
    let v3 = data(&[(SHARD, &shard("fourth")), (RULES, RULE_FILE)]);
    api.api.emit("MODIFIED", secret("cfg", &v3));
    within(&server, "the key's file to be removed", Duration::from_secs(2), || {
        hash_is(&addr, &content_hash(&v3))?;
        if config_dir.join("extra.txt").exists() { Err("extra.txt still there".to_string()) } else { Ok(()) }
    });
    assert_eq!(reload_ok(&addr), Some(true));
    assert_eq!(std::fs::read_to_string(config_dir.join("unrelated.txt")).expect("unrelated file kept"), "not from the Secret");

    // Changes in quick succession, the last one invalid: whatever was put in
    // force, the hash shown is that of the configuration running.
    let v4 = data(&[(SHARD, &shard("fifth")), (RULES, RULE_FILE)]);
    api.api.emit("MODIFIED", secret("cfg", &v4));
    api.api.emit("MODIFIED", secret("cfg", &bad));
    within(&server, "the failed reload to be reported", Duration::from_secs(2), || match reload_ok(&addr) {
        Some(false) => Ok(()),
        other => Err(format!("reloadConfigSuccess {other:?}")),
    });
    let (hash, yaml) = (text(&addr, "/-/config-hash").expect("hash"), config_yaml(&addr));
    let running = if yaml.contains("job_name: fifth") { &v4 } else { &v3 };
    assert_eq!(hash, content_hash(running), "{yaml}");

    // A burst of valid changes ends with the last one in force.
    let v5 = data(&[(SHARD, &shard("sixth")), (RULES, RULE_FILE)]);
    let v6 = data(&[(SHARD, &shard("seventh")), (RULES, RULE_FILE)]);
    api.api.emit("MODIFIED", secret("cfg", &v5));
    api.api.emit("MODIFIED", secret("cfg", &v6));
    within(&server, "the last of a burst", Duration::from_secs(2), || {
        hash_is(&addr, &content_hash(&v6))?;
        if config_yaml(&addr).contains("job_name: seventh") { Ok(()) } else { Err("job seventh not in force".to_string()) }
    });

    // The Secret deleted: nothing in force changes.
    api.api.emit("DELETED", secret("cfg", &v6));
    std::thread::sleep(Duration::from_millis(500));
    hash_is(&addr, &content_hash(&v6)).expect("hash after the Secret was deleted");
    assert!(config_dir.join(SHARD).exists());

    // Every request used the field selector, so RBAC limited to this one name suffices.
    let selectors = api.api.selectors();
    assert!(selectors.len() >= 2, "{selectors:?}");
    assert!(selectors.iter().all(|s| s.as_deref() == Some("metadata.name=cfg")), "{selectors:?}");
    server.check_alive().expect("the server survived");
}

#[test]
fn startup_fails_naming_the_secret_when_it_cannot_be_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = start_api();
    api.api.emit("ADDED", secret("other", &data(&[(SHARD, &shard("x"))])));
    let started = Instant::now();
    let (server, _) = start_server(dir.path(), &api, &["--config.kubernetes-secret-timeout=2s"]);
    let how = wait_for("the server to give up", Duration::from_secs(20), || match server.check_alive() {
        Ok(()) => Err("still running".to_string()),
        Err(how) => Ok(how),
    });
    assert!(started.elapsed() >= Duration::from_secs(2), "gave up after {:?}", started.elapsed());
    assert!(how.contains("exited with status 1"), "{how}");
    assert!(how.contains("Secret ns1/cfg") && how.contains("not found"), "{how}");
    // It retried, with the field selector each time.
    let selectors = api.api.selectors();
    assert!(selectors.len() >= 3, "{selectors:?}");
    assert!(selectors.iter().all(|s| s.as_deref() == Some("metadata.name=cfg")), "{selectors:?}");
    assert!(!dir.path().join("config").join(SHARD).exists());
}

#[test]
fn without_a_secret_the_hash_is_of_the_file_or_of_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("prometheus.yml");
    std::fs::write(&file, "scrape_configs:\n  - job_name: plain\n    static_configs: [{targets: ['127.0.0.1:1']}]\n").expect("write");
    let ports = free_ports(2);
    let start = |port: u16, config: Option<&Path>, name: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
        cmd.current_dir(dir.path()).args(["server", "--web.listen-address", &format!("127.0.0.1:{port}")]);
        cmd.arg(format!("--storage.tsdb.path={}", dir.path().join(name).display()));
        if let Some(c) = config {
            cmd.arg(format!("--config.file={}", c.display()));
        }
        let server = Proc::spawn(name, cmd, &dir.path().join(format!("{name}.log")));
        let addr = format!("127.0.0.1:{port}");
        wait_for("the server to be ready", Duration::from_secs(60), || {
            server.check_alive()?;
            text(&addr, "/-/ready").map(drop)
        });
        (server, addr)
    };
    let (_file_server, addr) = start(ports[0], Some(&file), "file");
    let bytes = std::fs::read(&file).expect("read");
    hash_is(&addr, &content_hash(&BTreeMap::from([("prometheus.yml".to_string(), bytes)]))).expect("hash of the file");
    let (_default_server, addr) = start(ports[1], None, "default");
    hash_is(&addr, &content_hash(&BTreeMap::new())).expect("hash of the embedded default");
}

#[test]
fn the_flag_needs_a_config_file_and_namespace_slash_name() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_hearth")).arg("server").args(args).output().expect("run hearth");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, err) = run(&["--config.kubernetes-secret=ns1/cfg"]);
    assert!(!ok && err.contains("--config.file"), "{err}");
    for bad in ["cfg", "a/b/c", "/cfg"] {
        let (ok, err) = run(&["--config.file=x.yaml", &format!("--config.kubernetes-secret={bad}")]);
        assert!(!ok && err.contains("is not NAMESPACE/NAME"), "{bad}: {err}");
    }
}

/// A scrape target that answers only `Authorization: Bearer <token>`, the
/// token being whatever the test sets now.
fn start_guarded_target(api: &ApiServer, token: Arc<Mutex<String>>) -> String {
    let app = Router::new().route(
        "/metrics",
        get(move |headers: axum::http::HeaderMap| {
            let token = token.clone();
            async move {
                let want = format!("Bearer {}", token.lock().expect("lock"));
                if headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(want.as_str()) {
                    (axum::http::StatusCode::OK, "guarded_metric 1\n").into_response()
                } else {
                    axum::http::StatusCode::UNAUTHORIZED.into_response()
                }
            }
        }),
    );
    let listener = api._runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    api._runtime.spawn(async move { axum::serve(listener, app).await });
    addr
}

/// What the operator puts in a config Secret besides the configuration:
/// credential files the configuration names, and the web configuration
/// (`--web.config.file` pointing into the directory, which only exists
/// once the Secret is written).
#[test]
fn credentials_and_the_web_configuration_come_from_the_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = start_api();
    let token = Arc::new(Mutex::new("first-token".to_string()));
    let target = start_guarded_target(&api, token.clone());
    let config_dir = dir.path().join("config");
    let shard = format!(
        "global:\n  scrape_interval: 200ms\nscrape_configs:\n  - job_name: guarded\n    authorization:\n      credentials_file: {}\n    static_configs: [{{targets: ['{target}']}}]\n",
        config_dir.join("secret_apps_api_token").display()
    );
    let hash = bcrypt::hash("viewer-password", 4).expect("bcrypt");
    let web = format!("basic_auth_users:\n  viewer: {hash}\n");
    let v1 = data(&[(SHARD, &shard), ("secret_apps_api_token", "first-token"), ("web-config.yaml", &web)]);
    api.api.emit("ADDED", secret("cfg", &v1));
    let web_flag = format!("--web.config.file={}", config_dir.join("web-config.yaml").display());
    let (server, addr) = start_server(dir.path(), &api, &[&web_flag]);
    wait_for("the server to be ready", Duration::from_secs(60), || {
        server.check_alive()?;
        text(&addr, "/-/ready").map(drop)
    });

    // Probes and the configuration hash need no password; the API does.
    hash_is(&addr, &content_hash(&v1)).expect("hash without credentials");
    let denied = http::get(&addr, "/api/v1/query?query=up", &[]).expect("request");
    assert_eq!(denied.status, 401);
    let auth = format!("Basic {}", base64(b"viewer:viewer-password"));
    let up = |addr: &str| -> Result<(), String> {
        let r = http::get(addr, "/api/v1/query?query=up%7Bjob%3D%22guarded%22%7D", &[("Authorization", &auth)])?;
        let body: Value = serde_json::from_str(r.text()?).map_err(|e| e.to_string())?;
        if body["data"]["result"][0]["value"][1] == "1" { Ok(()) } else { Err(body.to_string()) }
    };
    within(&server, "the target scraped with the token from the Secret", Duration::from_secs(10), || up(&addr));

    // The token rotates on both sides: the target keeps being scraped.
    *token.lock().expect("lock") = "second-token".into();
    let v2 = data(&[(SHARD, &shard), ("secret_apps_api_token", "second-token"), ("web-config.yaml", &web)]);
    api.api.emit("MODIFIED", secret("cfg", &v2));
    within(&server, "the new hash", Duration::from_secs(2), || hash_is(&addr, &content_hash(&v2)));
    let after = Instant::now();
    within(&server, "a successful scrape with the rotated token", Duration::from_secs(5), || {
        let r = http::get(&addr, "/api/v1/targets", &[("Authorization", &auth)])?;
        let body: Value = serde_json::from_str(r.text()?).map_err(|e| e.to_string())?;
        let t = &body["data"]["activeTargets"][0];
        let last = t["lastScrape"].as_str().unwrap_or("").to_string();
        if t["health"] == "up" && !last.is_empty() && after.elapsed() > Duration::from_millis(600) { Ok(()) } else { Err(body.to_string()) }
    });
    server.check_alive().expect("the server survived");
}
