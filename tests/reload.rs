//! Configuration reload of a running `hearth server`: on SIGHUP, on
//! `POST /-/reload`, and when the file changes on disk through a
//! Kubernetes-style symlink swap. A bad file never replaces a good one.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Server {
    child: Child,
    addr: String,
    /// The server's log, shown when a test fails.
    log: Option<std::path::PathBuf>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking()
            && let Some(log) = &self.log
        {
            eprintln!("--- server log ---\n{}", std::fs::read_to_string(log).unwrap_or_default());
        }
    }
}

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    l.local_addr().expect("addr").to_string()
}

/// Raw HTTP/1.0 exchange: (status, body).
fn http(addr: &str, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "{method} {path} HTTP/1.0\r\nHost: x\r\nContent-Length: 0\r\n\r\n")?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status = raw.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((status, raw.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default()))
}

fn json(addr: &str, path: &str) -> Value {
    let (_, body) = http(addr, "GET", path).expect("request");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn config_text(s: &Server) -> String {
    json(&s.addr, "/api/v1/status/config")["data"]["yaml"].as_str().unwrap_or("").to_string()
}

fn reload_ok(s: &Server) -> Option<bool> {
    json(&s.addr, "/api/v1/status/runtimeinfo")["data"]["reloadConfigSuccess"].as_bool()
}

fn metric(s: &Server, name: &str) -> Option<f64> {
    let (_, body) = http(&s.addr, "GET", "/metrics").ok()?;
    body.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
}

fn start(dir: &Path, config: &Path, watch_every: &str) -> Server {
    let addr = free_addr();
    let log = dir.join(format!("server-{}.log", addr.replace(':', "_")));
    let child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .current_dir(dir)
        .args(["server", "--web.listen-address", &addr, "--web.enable-lifecycle", "--config.auto-reload-interval", watch_every])
        .arg("--config.file")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn");
    let s = Server { child, addr, log: Some(log) };
    wait_for("server ready", || http(&s.addr, "GET", "/-/ready").is_ok_and(|r| r.0 == 200));
    s
}

fn job(name: &str) -> String {
    format!("scrape_configs:\n  - job_name: {name}\n    static_configs: [{{targets: ['127.0.0.1:1']}}]\n")
}

/// Writes `text` as a new `..<version>` directory and swaps `..data` to it,
/// the way the kubelet updates a mounted ConfigMap.
fn kube_swap(dir: &Path, version: u32, text: &str) {
    let v = dir.join(format!("..{version}"));
    std::fs::create_dir_all(&v).expect("mkdir");
    std::fs::write(v.join("prometheus.yml"), text).expect("write");
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("..{version}"), &tmp).expect("symlink");
    std::fs::rename(&tmp, dir.join("..data")).expect("swap");
}

#[test]
fn file_changes_through_symlink_swaps_reload_and_bad_configs_are_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mount = dir.path().join("mount");
    std::fs::create_dir_all(&mount).expect("mkdir");
    kube_swap(&mount, 1, &job("first"));
    std::os::unix::fs::symlink("..data/prometheus.yml", mount.join("prometheus.yml")).expect("symlink");
    let s = start(dir.path(), &mount.join("prometheus.yml"), "200ms");
    assert!(config_text(&s).contains("job_name: first"), "{}", config_text(&s));
    assert_eq!(metric(&s, "prometheus_config_last_reload_successful"), Some(1.0));

    // A swap to a new valid file is picked up.
    kube_swap(&mount, 2, &job("second"));
    wait_for("reload after swap", || config_text(&s).contains("job_name: second"));
    wait_for("target of the new job", || {
        json(&s.addr, "/api/v1/targets")["data"]["activeTargets"].as_array().is_some_and(|t| t.len() == 1 && t[0]["scrapePool"] == "second")
    });

    // A swap to an invalid file is rejected: the running config stays.
    kube_swap(&mount, 3, "scrape_configs:\n  - job_name: third\n    scrape_interval: banana\n");
    wait_for("failed reload reported", || reload_ok(&s) == Some(false));
    assert_eq!(metric(&s, "prometheus_config_last_reload_successful"), Some(0.0));
    let info = json(&s.addr, "/api/v1/status/runtimeinfo");
    assert!(info["data"]["reloadConfigError"].as_str().is_some_and(|e| e.contains("banana")), "{info}");
    assert!(config_text(&s).contains("job_name: second"));

    // POST /-/reload reports the same failure; fixing the file recovers.
    let (status, body) = http(&s.addr, "POST", "/-/reload").expect("reload");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("failed to reload config"), "{body}");
    kube_swap(&mount, 4, &job("fourth"));
    wait_for("recovery", || reload_ok(&s) == Some(true) && config_text(&s).contains("job_name: fourth"));
    assert_eq!(metric(&s, "prometheus_config_last_reload_successful"), Some(1.0));
}

#[test]
fn sighup_and_lifecycle_endpoint_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("prometheus.yml");
    std::fs::write(&file, job("one")).expect("write");
    let addr = free_addr();
    // Without --web.enable-lifecycle the endpoint is refused.
    let plain = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .current_dir(dir.path())
        .args(["server", "--web.listen-address", &addr, "--storage.tsdb.path", "plain", "--config.file"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let plain = Server { child: plain, addr, log: None };
    wait_for("plain server", || http(&plain.addr, "GET", "/-/ready").is_ok_and(|r| r.0 == 200));
    assert_eq!(http(&plain.addr, "POST", "/-/reload").expect("reload").0, 403);
    drop(plain);

    // The watcher is slowed right down, so only the signal and the endpoint can reload.
    let s = start(dir.path(), &file, "1h");
    std::fs::write(&file, job("two")).expect("write");
    let pid = s.child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().expect("kill").success());
    wait_for("SIGHUP reload", || config_text(&s).contains("job_name: two"));
    std::fs::write(&file, job("three")).expect("write");
    let (status, body) = http(&s.addr, "POST", "/-/reload").expect("reload");
    assert_eq!(status, 200, "{body}");
    assert!(config_text(&s).contains("job_name: three"));
}

#[test]
fn an_invalid_config_file_fails_startup_with_its_location() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.yml");
    std::fs::write(&file, "scrape_configs:\n  - job_name: x\n    static_configs:\n      - tragets: ['a:1']\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .current_dir(dir.path())
        .args(["server", "--web.listen-address", &free_addr(), "--config.file"])
        .arg(&file)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tragets") && err.contains("bad.yml"), "{err}");
}
