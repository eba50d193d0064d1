//! Remote write and federation against a real Prometheus (2.42, installed by
//! tests/support/install_peers.sh), everything on 127.0.0.1 with free ports:
//!
//! 1. Hearth scrapes itself every second and remote-writes to Prometheus
//!    started with `--web.enable-remote-write-receiver`. Prometheus is
//!    stopped for a minute (by PID) and started again on the same data
//!    directory and port; later Hearth itself is restarted. Every sample
//!    Hearth stored must then be in Prometheus, with the same timestamps
//!    and values, plus our external label.
//! 2. Prometheus remote-writes its own samples to Hearth's receiver, and
//!    federates from Hearth's `/federate` with `honor_labels: true`: Hearth
//!    must hold exactly Prometheus' samples, and Prometheus must hold our
//!    series with our `job`, `instance` and external labels.
//!
//! `REMOTE_WRITE_KEEP=1` keeps the temporary directory (configs, logs, data).

#[path = "support/http.rs"]
mod http;
#[path = "support/procs.rs"]
mod procs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use procs::{Proc, free_ports, wait_for};
use serde_json::Value;

type Labels = BTreeMap<String, String>;
/// Raw samples of a series: (timestamp ms, value bits, with every NaN alike).
type Points = Vec<(i64, u64)>;

fn say(msg: impl AsRef<str>) {
    eprintln!("[remote_write] {}", msg.as_ref());
}

fn now_s() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn install_prometheus() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/install_peers.sh");
    let out = Command::new("bash").arg(&script).stdin(Stdio::null()).output().expect("run install_peers.sh");
    assert!(out.status.success(), "install_peers.sh failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hearth-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create work dir");
    dir
}

fn cleanup(dir: &Path) {
    if std::env::var_os("REMOTE_WRITE_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(dir);
    } else {
        say(format!("kept {}", dir.display()));
    }
}

fn prometheus(dir: &Path, config: &Path, data: &Path, addr: &str, log: &str) -> Proc {
    let mut cmd = Command::new("prometheus");
    cmd.current_dir(dir)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--web.enable-remote-write-receiver");
    let p = Proc::spawn("prometheus", cmd, &dir.join(log));
    wait_ready(&p, addr);
    p
}

fn hearth(dir: &Path, args: &[&str], addr: &str, log: &str) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.current_dir(dir).arg("server").args(args).arg(format!("--web.listen-address={addr}"));
    let p = Proc::spawn("hearth", cmd, &dir.join(log));
    wait_ready(&p, addr);
    p
}

fn wait_ready(p: &Proc, addr: &str) {
    wait_for(&format!("{} on {addr} to be ready", p.name), Duration::from_secs(60), || {
        if let Err(e) = p.check_alive() {
            panic!("{e}");
        }
        match http::get(addr, "/-/ready", &[]) {
            Ok(r) if r.status == 200 => Ok(()),
            Ok(r) => Err(format!("HTTP {}", r.status)),
            Err(e) => Err(e),
        }
    });
}

fn value_bits(v: &Value) -> Result<u64, String> {
    let s = v.as_str().ok_or_else(|| format!("sample value is not a string: {v}"))?;
    let f = match s {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s.parse().map_err(|e| format!("bad value {s:?}: {e}"))?,
    };
    Ok(if f.is_nan() { f64::NAN.to_bits() } else { f.to_bits() })
}

/// Raw samples of `selector` over `range` ending at `at` (unix seconds).
fn raw(addr: &str, selector: &str, range: &str, at: f64) -> Result<BTreeMap<Labels, Points>, String> {
    let q = format!("{selector}[{range}]");
    let data = http::api_get(addr, &format!("/api/v1/query?query={}&time={at:.3}", http::encode(&q)))?;
    let mut out = BTreeMap::new();
    for r in data["result"].as_array().ok_or("result is not an array")? {
        let labels: Labels = serde_json::from_value(r["metric"].clone()).map_err(|e| e.to_string())?;
        let mut points = Vec::new();
        for p in r["values"].as_array().ok_or("values is not an array")? {
            points.push(((p[0].as_f64().ok_or("bad timestamp")? * 1000.0).round() as i64, value_bits(&p[1])?));
        }
        out.insert(labels, points);
    }
    Ok(out)
}

/// What differs between two sets of series (empty when equal).
fn diff(want: &BTreeMap<Labels, Points>, got: &BTreeMap<Labels, Points>) -> Vec<String> {
    let mut out = Vec::new();
    for (l, w) in want {
        match got.get(l) {
            None => out.push(format!("missing series {l:?} ({} samples)", w.len())),
            Some(g) if g != w => {
                let missing: Vec<i64> = w.iter().filter(|p| !g.contains(p)).map(|p| p.0).collect();
                let extra: Vec<i64> = g.iter().filter(|p| !w.contains(p)).map(|p| p.0).collect();
                out.push(format!("{l:?}: {} vs {} samples; missing at {missing:?}, unexpected at {extra:?}", w.len(), g.len()));
            }
            Some(_) => {}
        }
    }
    for l in got.keys().filter(|l| !want.contains_key(*l)) {
        out.push(format!("unexpected series {l:?}"));
    }
    out
}

/// Waits (bounded) until `got()` holds exactly `want()`.
fn wait_same(what: &str, timeout: Duration, want: impl Fn() -> BTreeMap<Labels, Points>, got: impl Fn() -> BTreeMap<Labels, Points>) {
    let deadline = Instant::now() + timeout;
    loop {
        let (w, g) = (want(), got());
        let d = diff(&w, &g);
        let samples: usize = w.values().map(Vec::len).sum();
        if d.is_empty() {
            say(format!("{what}: {} series, {samples} samples, identical", w.len()));
            return;
        }
        if Instant::now() > deadline {
            panic!("{what}: {} differences after {timeout:?}, first ones:\n{}", d.len(), d[..d.len().min(15)].join("\n"));
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn sleep_s(s: u64) {
    std::thread::sleep(Duration::from_secs(s));
}

#[test]
fn every_sample_scraped_arrives_in_prometheus_across_its_outage_and_our_restart() {
    install_prometheus();
    let dir = workdir("remote-write-out");
    let ports = free_ports(2);
    let (prom_addr, hearth_addr) = (format!("127.0.0.1:{}", ports[0]), format!("127.0.0.1:{}", ports[1]));
    let prom_cfg = dir.join("prometheus.yml");
    std::fs::write(&prom_cfg, "global:\n  scrape_interval: 15s\n").expect("write config");
    let hearth_cfg = dir.join("hearth.yml");
    std::fs::write(
        &hearth_cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  external_labels:\n    source: hearth-under-test\n\
             scrape_configs:\n  - job_name: hearth\n    static_configs:\n      - targets: ['{hearth_addr}']\n\
             remote_write:\n  - url: http://{prom_addr}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n      max_backoff: 1s\n"
        ),
    )
    .expect("write config");
    let prom_data = dir.join("prom-data");
    let prom = prometheus(&dir, &prom_cfg, &prom_data, &prom_addr, "prometheus-1.log");
    let hearth_args = ["--config.file", hearth_cfg.to_str().expect("utf-8 path"), "--storage.tsdb.path", "hearth-data"];
    let h = hearth(&dir, &hearth_args, &hearth_addr, "hearth-1.log");
    let start = now_s();
    say(format!("Prometheus on {prom_addr} (pid {}), Hearth on {hearth_addr} (pid {})", prom.pid(), h.pid()));
    sleep_s(8);

    say("stopping Prometheus for a minute");
    drop(prom);
    sleep_s(60);
    let prom = prometheus(&dir, &prom_cfg, &prom_data, &prom_addr, "prometheus-2.log");
    say(format!("Prometheus back (pid {})", prom.pid()));
    sleep_s(8);

    say("restarting Hearth");
    drop(h);
    sleep_s(2);
    let h = hearth(&dir, &hearth_args, &hearth_addr, "hearth-2.log");
    sleep_s(8);

    // Everything up to a little before now must have arrived, exactly.
    let at = now_s() - 3.0;
    let range = format!("{}s", (at - start + 30.0).ceil() as i64);
    let ours = || raw(&hearth_addr, "{job=\"hearth\"}", &range, at).unwrap_or_else(|e| panic!("querying Hearth: {e}"));
    let theirs = || {
        let got = raw(&prom_addr, "{job=\"hearth\"}", &range, at).unwrap_or_else(|e| panic!("querying Prometheus: {e}"));
        got.into_iter()
            .map(|(mut l, p)| {
                assert_eq!(l.remove("source").as_deref(), Some("hearth-under-test"), "external label on {l:?}");
                (l, p)
            })
            .collect()
    };
    let scraped: usize = ours().values().map(Vec::len).sum();
    assert!(scraped > 3000, "Hearth scraped only {scraped} samples");
    wait_same("Hearth's samples in Prometheus", Duration::from_secs(90), ours, theirs);

    // The outage shows in our metrics: retries happened, nothing failed or was dropped.
    let metric = |q: &str| -> f64 {
        let d = http::api_get(&hearth_addr, &format!("/api/v1/query?query={}", http::encode(q))).expect("query");
        d["result"][0]["value"][1].as_str().and_then(|v| v.parse().ok()).unwrap_or(-1.0)
    };
    assert_eq!(metric("sum(prometheus_remote_storage_samples_failed_total)"), 0.0);
    assert_eq!(metric("sum(prometheus_remote_storage_samples_dropped_total)"), 0.0);
    assert!(metric("max(prometheus_remote_storage_queue_highest_sent_timestamp_seconds)") > at - 5.0);
    drop(h);
    drop(prom);
    cleanup(&dir);
}

#[test]
fn prometheus_writes_to_our_receiver_and_federates_from_us() {
    install_prometheus();
    let dir = workdir("remote-write-in");
    let ports = free_ports(3);
    let (prom_addr, hearth_addr, closed_addr) =
        (format!("127.0.0.1:{}", ports[0]), format!("127.0.0.1:{}", ports[1]), format!("127.0.0.1:{}", ports[2]));

    // Without the flag the receiver answers 404, as Prometheus does.
    let closed = hearth(&dir, &["--storage.tsdb.path", "closed-data"], &closed_addr, "hearth-closed.log");
    let r = http::request("POST", &closed_addr, "/api/v1/write", &[], b"").expect("POST");
    assert_eq!(r.status, 404);
    assert!(r.text().expect("text").contains("--web.enable-remote-write-receiver"));
    drop(closed);

    let hearth_cfg = dir.join("hearth.yml");
    std::fs::write(
        &hearth_cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  external_labels:\n    cluster: hearth-east\n\
             scrape_configs:\n  - job_name: hearth\n    static_configs:\n      - targets: ['{hearth_addr}']\n"
        ),
    )
    .expect("write config");
    let h = hearth(
        &dir,
        &[
            "--config.file",
            hearth_cfg.to_str().expect("utf-8 path"),
            "--storage.tsdb.path",
            "hearth-data",
            "--web.enable-remote-write-receiver",
        ],
        &hearth_addr,
        "hearth.log",
    );
    let prom_cfg = dir.join("prometheus.yml");
    std::fs::write(
        &prom_cfg,
        format!(
            "global:\n  scrape_interval: 1s\n\
             scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ['{prom_addr}']\n\
             \x20 - job_name: federate\n    honor_labels: true\n    metrics_path: /federate\n    params:\n      'match[]': ['{{job=\"hearth\"}}']\n\
             \x20   static_configs:\n      - targets: ['{hearth_addr}']\n\
             remote_write:\n  - url: http://{hearth_addr}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n\
             \x20   write_relabel_configs:\n      - source_labels: [job]\n        regex: prometheus\n        action: keep\n"
        ),
    )
    .expect("write config");
    let prom = prometheus(&dir, &prom_cfg, &dir.join("prom-data"), &prom_addr, "prometheus.log");
    let start = now_s();
    say(format!("Prometheus on {prom_addr} (pid {}), Hearth on {hearth_addr} (pid {})", prom.pid(), h.pid()));
    sleep_s(12);

    // Prometheus' own samples, as it stored them, are in Hearth.
    let at = now_s() - 3.0;
    let range = format!("{}s", (at - start + 30.0).ceil() as i64);
    let sel = "{job=\"prometheus\"}";
    let theirs = || raw(&prom_addr, sel, &range, at).unwrap_or_else(|e| panic!("querying Prometheus: {e}"));
    let ours = || raw(&hearth_addr, sel, &range, at).unwrap_or_else(|e| panic!("querying Hearth: {e}"));
    wait_same("Prometheus' samples in Hearth", Duration::from_secs(60), theirs, ours);

    // Federation: Prometheus has our series with our job/instance and external labels.
    let latest = |addr: &str| -> Vec<Labels> {
        let d = http::api_get(addr, &format!("/api/v1/series?match[]={}&start={:.0}", http::encode("{job=\"hearth\"}"), now_s() - 5.0))
            .unwrap_or_else(|e| panic!("series from {addr}: {e}"));
        serde_json::from_value(d).expect("series list")
    };
    wait_for("federated series in Prometheus", Duration::from_secs(30), || {
        let mut want: Vec<Labels> = latest(&hearth_addr)
            .into_iter()
            .map(|mut l| {
                l.insert("cluster".into(), "hearth-east".into());
                l
            })
            .collect();
        let got = latest(&prom_addr);
        want.retain(|l| l.get("__name__").is_some_and(|n| n == "up" || n.starts_with("prometheus_tsdb_head")));
        let missing: Vec<&Labels> = want.iter().filter(|l| !got.contains(l)).collect();
        if !want.is_empty() && missing.is_empty() { Ok(()) } else { Err(format!("missing {missing:?}")) }
    });
    let up = http::api_get(&prom_addr, &format!("/api/v1/query?query={}", http::encode("up{job=\"hearth\"}"))).expect("query");
    assert_eq!(up["result"][0]["metric"]["instance"], hearth_addr.as_str(), "honor_labels keeps our instance: {up}");
    drop(prom);
    drop(h);
    cleanup(&dir);
}
