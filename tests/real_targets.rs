//! Scrapes REAL targets and checks that the server stored exactly what they
//! expose.
//!
//! The test starts, on 127.0.0.1 with free ports:
//! - `prometheus-node-exporter` (Debian package), job `node`;
//! - `prometheus-pushgateway` (Debian package), job `pushgateway` with
//!   `honor_labels: true`; the test pushes groups `{job="batch",instance="x"}`
//!   and `{job="batch_noinst"}` (the gateway adds `instance=""`, which must
//!   end up as no `instance` label at all);
//! - a FastAPI app with prometheus-fastapi-instrumentator under uvicorn
//!   (tests/support/fastapi_app.py), job `fastapi`;
//! - a Flask app under gunicorn with 4 workers in prometheus_client's
//!   multiprocess mode (tests/support/flask_app.py, gunicorn_conf.py), job
//!   `gunicorn`, scraped at a non-default `metrics_path`;
//!
//! then the server under test with a Prometheus YAML config (1 s scrape
//! interval): by default Hearth (`hearth server --config.file …`), or with
//! `REAL_TARGETS_SERVER=prometheus` the real Prometheus (`prometheus` from
//! PATH, or `REAL_TARGETS_PROMETHEUS=/path`), so both can be shown to pass
//! the same test. After pushing and making a known amount of requests, it
//! waits for two scrapes of every target that started after the traffic,
//! then for each target reads its /metrics itself (with the Accept header
//! the server sent, recorded by the Flask app), parses it with our own
//! parser (tests/support/exposition.rs) and compares with the server's
//! /api/v1/query at the latest time:
//! (a) the set of series (name + labels + job/instance/static labels, with
//!     honor_labels / exported_* / empty-label rules applied) is equal (a
//!     few node_exporter families that follow host state are compared only
//!     when the host did not change them meanwhile, see `NODE_UNSTABLE`);
//! (b) values are equal for every series whose value cannot change without
//!     traffic (see each target's `stable_value`), plus values we know
//!     independently: pushed values, request counts we made, /proc facts;
//! (c) `up` is 1 and `scrape_samples_scraped` equals the number of samples
//!     in the exposition and the number of series stored for the target;
//! (d) the gunicorn request counter equals the number of requests made,
//!     spread over several workers, one of which the test stops halfway
//!     (gunicorn replaces it): its counts must remain, and the live-worker
//!     gauge (livesum) must be 4, not 5 (the child_exit hook at work).
//! It also checks /api/v1/targets and /api/v1/series.
//!
//! Peers are installed (cached) by tests/support/install_peers.sh, which the
//! test runs first. `REAL_TARGETS_KEEP=1` keeps the temporary directory
//! (configs, logs, data) for inspection.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::exposition::{self, Exposition, Format, Sample};
use support::http;
use support::procs::{Proc, free_ports, wait_for};

type Labels = BTreeMap<String, String>;
/// A series' raw samples: (timestamp ms, value).
type Points = Vec<(i64, f64)>;

/// Prometheus' scrape Accept header, used for direct reads only if the
/// server's own was not recorded.
const PROMETHEUS_ACCEPT: &str =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Series a scrape adds itself; compared separately, never with expositions.
const SYNTHETIC: &[&str] = &[
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
    "scrape_timeout_seconds",
    "scrape_sample_limit",
    "scrape_body_size_bytes",
];

/// node_exporter families whose series follow host state that other
/// software on the machine may change at any time. Each is compared like the
/// rest when the exporter exposed the same series for it just before and
/// just after the server was read, and left out (said so in the summary)
/// otherwise; a mismatch of the node target is retried twice, after a new
/// scrape, before it counts as a failure.
const NODE_UNSTABLE: &[(&str, &str)] = &[
    ("node_filesystem_", "one series per mount point: mounts come and go"),
    ("node_network_", "one series per network interface: interfaces (veth, bridges) come and go"),
    ("node_arp_", "one series per interface with ARP entries"),
    ("node_disk_", "one series per block device: loop/dm devices come and go"),
];

/// Requests made to the Flask app under gunicorn: GET /work and POST /submit.
const GUNICORN_GETS: usize = 100;
const GUNICORN_POSTS: usize = 20;
const GUNICORN_N: usize = GUNICORN_GETS + GUNICORN_POSTS;

fn say(msg: impl AsRef<str>) {
    static START: OnceLock<Instant> = OnceLock::new();
    let t = START.get_or_init(Instant::now).elapsed().as_secs_f64();
    eprintln!("[real_targets {t:6.1}s] {}", msg.as_ref());
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as i64
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum ServerKind {
    Hearth,
    Prometheus,
}

fn server_kind() -> ServerKind {
    match std::env::var("REAL_TARGETS_SERVER").as_deref() {
        Err(_) | Ok("") | Ok("hearth") => ServerKind::Hearth,
        Ok("prometheus") => ServerKind::Prometheus,
        Ok(other) => panic!("REAL_TARGETS_SERVER={other:?}: expected hearth or prometheus"),
    }
}

struct Target {
    job: &'static str,
    addr: String,
    metrics_path: &'static str,
    /// `static_configs` labels.
    static_labels: &'static [(&'static str, &'static str)],
    honor_labels: bool,
    /// Selectors that together pick every series this target's scrapes store.
    selectors: Vec<String>,
    /// Metric-name prefixes whose series follow host state, with why: compared
    /// only when the target exposed the same ones before and after the check.
    unstable_series: &'static [(&'static str, &'static str)],
    /// Whether a sample's value stays put while no one sends traffic.
    stable_value: fn(&Sample) -> bool,
    /// The exposition follows host state: retry a mismatch twice (logged).
    host_dependent: bool,
}

impl Target {
    fn unstable(&self, name: &str) -> bool {
        self.unstable_series.iter().any(|(p, _)| name.starts_with(p))
    }
}

/// node_exporter: only values fixed for the life of the process or host.
fn node_stable_value(s: &Sample) -> bool {
    matches!(
        s.name.as_str(),
        "node_uname_info"
            | "node_os_info"
            | "node_exporter_build_info"
            | "go_info"
            | "node_memory_MemTotal_bytes"
            | "node_boot_time_seconds"
            | "process_start_time_seconds"
            | "process_max_fds"
    )
}

/// Pushgateway: everything but its Go runtime and process metrics, its
/// self-instrumentation of /metrics requests (changes with every scrape) and
/// summary quantiles (computed over a sliding time window).
fn pushgateway_stable_value(s: &Sample) -> bool {
    !(s.name.starts_with("go_")
        || s.name.starts_with("process_")
        || s.name.starts_with("promhttp_metric_handler_")
        || (s.name.starts_with("pushgateway_") && s.label("quantile").is_some()))
}

/// Python apps: everything but the interpreter's process and GC metrics
/// (serving a scrape allocates, collects garbage and uses CPU).
fn python_stable_value(s: &Sample) -> bool {
    !(s.name.starts_with("process_") || s.name.starts_with("python_gc_"))
}

fn query_escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn series_string(l: &Labels) -> String {
    let name = l.get("__name__").map(String::as_str).unwrap_or("");
    let rest: Vec<String> = l.iter().filter(|(k, _)| *k != "__name__").map(|(k, v)| format!("{k}=\"{}\"", query_escape(v))).collect();
    format!("{name}{{{}}}", rest.join(","))
}

/// `le` and `quantile` values as numbers: Prometheus 2 stores them as
/// exposed ("1"), Prometheus 3 normalises them ("1.0"); both are right.
fn normalize(mut l: Labels) -> Labels {
    for key in ["le", "quantile"] {
        if let Some(v) = l.get_mut(key)
            && let Ok(f) = exposition::parse_value(v)
        {
            *v = if f == f64::INFINITY { "+Inf".to_string() } else { format!("{f}") };
        }
    }
    l
}

fn same_value(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b
}

// ---------------------------------------------------------------------------
// The server's HTTP API.

fn labels_of(v: &Value) -> Result<Labels, String> {
    let obj = v.as_object().ok_or_else(|| format!("labels are not an object: {v}"))?;
    obj.iter().map(|(k, v)| Ok((k.clone(), v.as_str().ok_or_else(|| format!("label {k} is not a string"))?.to_string()))).collect()
}

fn value_of(v: &Value) -> Result<f64, String> {
    exposition::parse_value(v.as_str().ok_or_else(|| format!("sample value is not a string: {v}"))?)
}

/// An instant query at the server's current time, as a vector.
fn query(addr: &str, promql: &str) -> Result<Vec<(Labels, f64)>, String> {
    let data = http::api_get(addr, &format!("/api/v1/query?query={}", http::encode(promql)))?;
    if data["resultType"] != "vector" {
        return Err(format!("{promql}: expected a vector, got {}", data["resultType"]));
    }
    let result = data["result"].as_array().ok_or("result is not an array")?;
    result.iter().map(|r| Ok((labels_of(&r["metric"])?, value_of(&r["value"][1])?))).collect()
}

/// An instant query of a range selector: raw samples (timestamp ms, value).
fn query_matrix(addr: &str, promql: &str) -> Result<Vec<(Labels, Points)>, String> {
    let data = http::api_get(addr, &format!("/api/v1/query?query={}", http::encode(promql)))?;
    if data["resultType"] != "matrix" {
        return Err(format!("{promql}: expected a matrix, got {}", data["resultType"]));
    }
    let mut out = Vec::new();
    for r in data["result"].as_array().ok_or("result is not an array")? {
        let mut points = Vec::new();
        for p in r["values"].as_array().ok_or("values is not an array")? {
            let ts = p[0].as_f64().ok_or("bad timestamp")?;
            points.push(((ts * 1000.0).round() as i64, value_of(&p[1])?));
        }
        out.push((labels_of(&r["metric"])?, points));
    }
    Ok(out)
}

/// Exactly one series must answer `promql`, with value `want`.
fn expect_value(failures: &mut Vec<String>, addr: &str, promql: &str, want: f64) {
    match query(addr, promql) {
        Ok(v) if v.len() == 1 && same_value(v[0].1, want) => {}
        Ok(v) => failures.push(format!("{promql}: want one series = {want}, got {v:?}")),
        Err(e) => failures.push(format!("{promql}: {e}")),
    }
}

// ---------------------------------------------------------------------------
// Peers.

fn python_cmd(program: PathBuf, support: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(support).env("PYTHONDONTWRITEBYTECODE", "1").env("PYTHONUNBUFFERED", "1").env_remove("PROMETHEUS_MULTIPROC_DIR");
    cmd
}

/// Waits until `addr` serves `path` with 200, failing at once if `proc` died.
fn wait_http_ok(proc: &Proc, addr: &str, path: &str) {
    wait_for(&format!("{} to serve http://{addr}{path}", proc.name), Duration::from_secs(60), || {
        if let Err(e) = proc.check_alive() {
            panic!("{e}");
        }
        match http::get(addr, path, &[]) {
            Ok(r) if r.status == 200 => Ok(()),
            Ok(r) => Err(format!("HTTP {}", r.status)),
            Err(e) => Err(e),
        }
    });
}

fn push_metrics(addr: &str) {
    let body = concat!(
        "# TYPE batch_records_total counter\n",
        "batch_records_total{stage=\"extract\"} 1234\n",
        "batch_records_total{stage=\"load\"} 1200\n",
        "# HELP batch_note A label value with \\\\ and \\n escapes.\n",
        "# TYPE batch_note gauge\n",
        "batch_note{msg=\"a \\\"quoted\\\" \\\\ path\\nline2\"} 1\n",
        "# TYPE batch_duration_seconds histogram\n",
        "batch_duration_seconds_bucket{le=\"0.5\"} 2\n",
        "batch_duration_seconds_bucket{le=\"1\"} 5\n",
        "batch_duration_seconds_bucket{le=\"+Inf\"} 6\n",
        "batch_duration_seconds_sum 4.5\n",
        "batch_duration_seconds_count 6\n",
        "batch_ratio NaN\n",
        "batch_limit +Inf\n",
        "batch_floor -Inf\n",
        "batch_last_success_timestamp_seconds 1700000000.25\n",
    );
    for (path, body) in [("/metrics/job/batch/instance/x", body), ("/metrics/job/batch_noinst", "batch_x 3\n")] {
        let r = http::request("PUT", addr, path, &[("Content-Type", "text/plain; version=0.0.4")], body.as_bytes())
            .unwrap_or_else(|e| panic!("push {path}: {e}"));
        assert!((200..300).contains(&r.status), "push {path}: HTTP {}: {}", r.status, String::from_utf8_lossy(&r.body));
    }
}

/// Sends requests number `range` (of `0..GUNICORN_N`) to the Flask app from
/// 8 threads at once; returns the pid of the worker that served each.
fn gunicorn_traffic(addr: &str, range: std::ops::Range<usize>) -> Vec<u64> {
    let threads: Vec<_> = (0..8)
        .map(|lane| {
            let a = addr.to_string();
            let r = range.clone();
            std::thread::spawn(move || -> Result<Vec<u64>, String> {
                let mut pids = Vec::new();
                for k in r.skip(lane).step_by(8) {
                    let (method, path) = if k % 6 == 5 { ("POST", "/submit") } else { ("GET", "/work?sleep_ms=20") };
                    let resp = http::request(method, &a, path, &[], b"")?;
                    if resp.status != 200 {
                        return Err(format!("{method} {path}: HTTP {}", resp.status));
                    }
                    let v: Value = serde_json::from_slice(&resp.body).map_err(|e| format!("{method} {path}: {e}"))?;
                    pids.push(v["pid"].as_u64().ok_or("no pid in the response")?);
                }
                Ok(pids)
            })
        })
        .collect();
    threads.into_iter().flat_map(|th| th.join().expect("traffic thread").unwrap_or_else(|e| panic!("gunicorn traffic: {e}"))).collect()
}

/// The parent pid of `pid`, from /proc.
fn parent_of(pid: u64) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid …"; comm may contain anything but ends at the last ')'.
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

fn children_of(pid: u64) -> BTreeSet<u64> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return BTreeSet::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok()).filter(|p| parent_of(*p) == Some(pid)).collect()
}

/// Stops gunicorn worker `victim` (SIGTERM: it finishes its request and
/// exits) and waits until the master has four booted workers again, each
/// with its live-gauge file in the multiprocess directory.
fn stop_worker(gunicorn: &Proc, victim: u64, multiproc: &Path) {
    let master = u64::from(gunicorn.pid());
    // Only ever a worker of the gunicorn this test started.
    assert_eq!(parent_of(victim), Some(master), "pid {victim} is not a worker of our gunicorn (pid {master})");
    let rc = unsafe { libc::kill(victim as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0, "kill {victim}: {}", std::io::Error::last_os_error());
    wait_for("gunicorn to replace the stopped worker", Duration::from_secs(30), || {
        if let Err(e) = gunicorn.check_alive() {
            panic!("{e}");
        }
        let workers = children_of(master);
        let booted = workers.iter().filter(|w| multiproc.join(format!("gauge_livesum_{w}.db")).exists()).count();
        if workers.len() == 4 && !workers.contains(&victim) && booted == 4 {
            Ok(())
        } else {
            Err(format!("workers {workers:?}, {booted} booted"))
        }
    });
}

fn scrape_config(targets: &[Target]) -> String {
    let mut y = String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
    for t in targets {
        y.push_str(&format!(
            "  - job_name: {}\n    honor_labels: {}\n    metrics_path: {}\n    static_configs:\n      - targets: ['{}']\n",
            t.job, t.honor_labels, t.metrics_path, t.addr
        ));
        if !t.static_labels.is_empty() {
            y.push_str("        labels:\n");
            for (k, v) in t.static_labels {
                y.push_str(&format!("          {k}: '{v}'\n"));
            }
        }
    }
    y
}

// ---------------------------------------------------------------------------
// Expected series from an exposition, as a Prometheus server stores them.

fn expected_series(t: &Target, e: &Exposition) -> Result<BTreeMap<Labels, Sample>, String> {
    let mut target_labels: Vec<(&str, &str)> = vec![("job", t.job), ("instance", t.addr.as_str())];
    target_labels.extend(t.static_labels.iter().copied());
    let mut out = BTreeMap::new();
    for s in &e.samples {
        let mut l: Labels = s.labels.iter().cloned().collect();
        for (k, v) in &target_labels {
            if t.honor_labels {
                // The exposed label wins, even when empty (then it is dropped below).
                l.entry(k.to_string()).or_insert_with(|| v.to_string());
            } else {
                if let Some(old) = l.remove(*k) {
                    let mut name = format!("exported_{k}");
                    while l.contains_key(&name) || target_labels.iter().any(|(tk, _)| *tk == name) {
                        name = format!("exported_{name}");
                    }
                    l.insert(name, old);
                }
                l.insert(k.to_string(), v.to_string());
            }
        }
        l.insert("__name__".into(), s.name.clone());
        // An empty label value is the same as no label.
        l.retain(|_, v| !v.is_empty());
        if out.insert(normalize(l.clone()), s.clone()).is_some() {
            return Err(format!("two samples map to the series {}", series_string(&l)));
        }
    }
    Ok(out)
}

/// What the server holds for the target now (synthetic series left out).
fn stored_series(addr: &str, t: &Target) -> Result<BTreeMap<Labels, f64>, String> {
    let mut out = BTreeMap::new();
    for sel in &t.selectors {
        for (l, v) in query(addr, sel)? {
            if SYNTHETIC.contains(&l.get("__name__").map(String::as_str).unwrap_or("")) {
                continue;
            }
            let l = normalize(l);
            if out.insert(l.clone(), v).is_some() {
                return Err(format!("series {} returned twice", series_string(&l)));
            }
        }
    }
    Ok(out)
}

fn list(items: &[String], max: usize) -> String {
    let mut s: Vec<String> = items.iter().take(max).map(|i| format!("\n      {i}")).collect();
    if items.len() > max {
        s.push(format!("\n      … and {} more", items.len() - max));
    }
    s.concat()
}

/// Reads the target directly and compares with what the server stored.
/// Returns the failures and a one-line summary.
fn compare_target(server: &str, t: &Target, accept: &str) -> (Vec<String>, String) {
    let job = t.job;
    let fail = |msg: String| (vec![format!("{job}: {msg}")], format!("{job}: could not compare"));
    let read = || -> Result<(Format, Exposition), String> {
        let resp = http::get(&t.addr, t.metrics_path, &[("Accept", accept)]).map_err(|e| format!("direct read: {e}"))?;
        if resp.status != 200 {
            return Err(format!("direct read: HTTP {}", resp.status));
        }
        let format = Format::from_content_type(resp.header("Content-Type"));
        let expo = resp.text().and_then(|text| exposition::parse(text, format));
        Ok((format, expo.map_err(|e| format!("cannot parse the target's exposition ({format:?}): {e}"))?))
    };
    let (format, expo) = match read() {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let expected = match expected_series(t, &expo) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let stored = match stored_series(server, t) {
        Ok(x) => x,
        Err(e) => return fail(format!("reading stored series: {e}")),
    };
    // Host-dependent families are compared too when the target exposed the
    // same series for them before and after reading the server.
    let after = match read() {
        Ok((_, x)) => x,
        Err(e) => return fail(e),
    };
    let series_with = |e: &Exposition, prefix: &str| -> BTreeSet<(String, Vec<(String, String)>)> {
        e.samples.iter().filter(|s| s.name.starts_with(prefix)).map(|s| (s.name.clone(), s.labels.clone())).collect()
    };
    let changed: Vec<&str> =
        t.unstable_series.iter().map(|(p, _)| *p).filter(|p| series_with(&expo, p) != series_with(&after, p)).collect();
    let skip = |l: &Labels| {
        let name = l.get("__name__").map(String::as_str).unwrap_or("");
        changed.iter().any(|p| name.starts_with(p))
    };
    let mut failures = Vec::new();

    // (a) The series sets.
    let missing: Vec<String> = expected.keys().filter(|l| !skip(l) && !stored.contains_key(*l)).map(series_string).collect();
    let extra: Vec<String> = stored.keys().filter(|l| !skip(l) && !expected.contains_key(*l)).map(series_string).collect();
    if !missing.is_empty() {
        failures.push(format!("{job}: {} exposed series not stored:{}", missing.len(), list(&missing, 15)));
    }
    if !extra.is_empty() {
        failures.push(format!("{job}: {} stored series not exposed:{}", extra.len(), list(&extra, 15)));
    }
    let compared = expected.keys().filter(|l| !skip(l)).count();
    let host_dependent = expected.keys().filter(|l| !skip(l) && t.unstable(l.get("__name__").map(String::as_str).unwrap_or(""))).count();
    let excluded = expected.len() - compared;

    // (b) Values that do not move without traffic.
    let mut values = 0;
    let mut wrong = Vec::new();
    for (l, s) in &expected {
        if let Some(v) = stored.get(l)
            && (t.stable_value)(s)
        {
            values += 1;
            if !same_value(*v, s.value) {
                wrong.push(format!("{}: stored {v}, exposed {}", series_string(l), s.value));
            }
        }
    }
    if !wrong.is_empty() {
        failures.push(format!("{job}: {} values differ:{}", wrong.len(), list(&wrong, 15)));
    }

    // (c) up and scrape_samples_scraped.
    let target_sel = format!("job=\"{job}\",instance=\"{}\"", t.addr);
    expect_value(&mut failures, server, &format!("up{{{target_sel}}}"), 1.0);
    let n = expo.samples.len() as f64;
    expect_value(&mut failures, server, &format!("scrape_samples_scraped{{{target_sel}}}"), n);
    if stored.len() != expo.samples.len() {
        failures.push(format!("{job}: {} series stored for the target, {} samples in the exposition", stored.len(), expo.samples.len()));
    }

    let mut summary = format!("{job}: {} samples ({format:?}), {compared} series compared", expo.samples.len());
    if host_dependent > 0 {
        summary.push_str(&format!(" ({host_dependent} of them host-dependent, unchanged during the check)"));
    }
    if excluded > 0 {
        summary.push_str(&format!(", {excluded} not compared (host-dependent, changed during the check: {changed:?})"));
    }
    summary.push_str(&format!(", {values} values compared exactly"));
    (failures, summary)
}

/// The newest Accept header the Flask app recorded from a scrape by the server.
fn recorded_accept(dir: &Path) -> Option<String> {
    let newest = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("scrape-accept.") && !e.file_name().to_string_lossy().ends_with(".tmp"))
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).unwrap_or(UNIX_EPOCH))?;
    std::fs::read_to_string(newest.path()).ok()
}

// ---------------------------------------------------------------------------

#[test]
fn server_stores_exactly_what_real_targets_expose() {
    let kind = server_kind();
    say(format!("server under test: {kind:?} (REAL_TARGETS_SERVER=prometheus runs the reference Prometheus instead)"));
    let venv = support::peers::install(say);
    let support = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support");
    let tmp = tempfile::Builder::new().prefix("real-targets-").tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let multiproc = dir.join("multiproc");
    let record = dir.join("record");
    std::fs::create_dir_all(&multiproc).expect("mkdir");
    std::fs::create_dir_all(&record).expect("mkdir");
    let ports = free_ports(5);
    let addr = |i: usize| format!("127.0.0.1:{}", ports[i]);
    let server_addr = addr(4);

    // --- Targets -----------------------------------------------------------
    let mut cmd = Command::new("prometheus-node-exporter");
    cmd.arg(format!("--web.listen-address={}", addr(0)));
    let node = Proc::spawn("node_exporter", cmd, &dir.join("node_exporter.log"));

    let mut cmd = Command::new("prometheus-pushgateway");
    cmd.arg(format!("--web.listen-address={}", addr(1)));
    let pushgateway = Proc::spawn("pushgateway", cmd, &dir.join("pushgateway.log"));

    let mut cmd = python_cmd(venv.join("bin/uvicorn"), &support);
    cmd.args(["--app-dir", ".", "fastapi_app:app", "--host", "127.0.0.1", "--port", &ports[2].to_string(), "--no-access-log"]);
    let fastapi = Proc::spawn("uvicorn (FastAPI)", cmd, &dir.join("uvicorn.log"));

    let mut cmd = python_cmd(venv.join("bin/gunicorn"), &support);
    cmd.args(["--chdir", ".", "-c", "gunicorn_conf.py", "-b", &addr(3), "flask_app:app"])
        .env("PROMETHEUS_MULTIPROC_DIR", &multiproc)
        .env("SCRAPE_RECORD_DIR", &record);
    let gunicorn = Proc::spawn("gunicorn (Flask)", cmd, &dir.join("gunicorn.log"));

    wait_http_ok(&node, &addr(0), "/metrics");
    wait_http_ok(&pushgateway, &addr(1), "/metrics");
    wait_http_ok(&fastapi, &addr(2), "/metrics");
    wait_http_ok(&gunicorn, &addr(3), "/internal/metrics");
    say(format!(
        "targets up: node_exporter {} (pid {}), pushgateway {} (pid {}), uvicorn {} (pid {}), gunicorn {} (pid {})",
        addr(0),
        node.pid(),
        addr(1),
        pushgateway.pid(),
        addr(2),
        fastapi.pid(),
        addr(3),
        gunicorn.pid()
    ));

    push_metrics(&addr(1));
    say("pushed groups {job=\"batch\",instance=\"x\"} and {job=\"batch_noinst\"} to the pushgateway");

    let targets = vec![
        Target {
            job: "node",
            addr: addr(0),
            metrics_path: "/metrics",
            static_labels: &[("env", "test")],
            honor_labels: false,
            selectors: vec!["{job=\"node\"}".into()],
            unstable_series: NODE_UNSTABLE,
            stable_value: node_stable_value,
            host_dependent: true,
        },
        Target {
            job: "pushgateway",
            addr: addr(1),
            metrics_path: "/metrics",
            static_labels: &[("env", "test")],
            honor_labels: true,
            // Pushed series keep their own job; nothing else here uses these jobs.
            selectors: vec!["{job=\"pushgateway\"}".into(), "{job=\"batch\"}".into(), "{job=\"batch_noinst\"}".into()],
            unstable_series: &[],
            stable_value: pushgateway_stable_value,
            host_dependent: false,
        },
        Target {
            job: "fastapi",
            addr: addr(2),
            metrics_path: "/metrics",
            static_labels: &[],
            honor_labels: false,
            selectors: vec!["{job=\"fastapi\"}".into()],
            unstable_series: &[],
            stable_value: python_stable_value,
            host_dependent: false,
        },
        Target {
            job: "gunicorn",
            addr: addr(3),
            metrics_path: "/internal/metrics",
            static_labels: &[],
            honor_labels: false,
            selectors: vec!["{job=\"gunicorn\"}".into()],
            unstable_series: &[],
            stable_value: python_stable_value,
            host_dependent: false,
        },
    ];

    // --- The server under test ----------------------------------------------
    let config = dir.join("scrape.yml");
    std::fs::write(&config, scrape_config(&targets)).expect("write config");
    let data = dir.join("data");
    let mut cmd = match kind {
        ServerKind::Hearth => {
            let mut c = Command::new(env!("CARGO_BIN_EXE_hearth"));
            c.arg("server");
            c
        }
        ServerKind::Prometheus => Command::new(std::env::var("REAL_TARGETS_PROMETHEUS").unwrap_or_else(|_| "prometheus".into())),
    };
    cmd.current_dir(&dir)
        .arg("--config.file")
        .arg(&config)
        .arg("--storage.tsdb.path")
        .arg(&data)
        .args(["--web.listen-address", &server_addr]);
    let server = Proc::spawn(&format!("{kind:?} server"), cmd, &dir.join("server.log"));
    let alive = || {
        if let Err(e) = server.check_alive() {
            panic!("{e}");
        }
    };
    wait_http_ok(&server, &server_addr, "/-/ready");
    say(format!("{kind:?} ready on {server_addr} (pid {}), config {}", server.pid(), config.display()));

    wait_for("a first scrape of every target", Duration::from_secs(30), || {
        alive();
        let up = query(&server_addr, "up")?;
        let missing: Vec<&str> =
            targets.iter().filter(|t| !up.iter().any(|(l, _)| l.get("instance") == Some(&t.addr))).map(|t| t.job).collect();
        if missing.is_empty() { Ok(()) } else { Err(format!("no up series yet for {missing:?}")) }
    });
    say("every target scraped at least once; sending traffic");

    // --- Traffic --------------------------------------------------------------
    let fastapi_plan: [(&str, &str, usize, u16); 4] =
        [("GET", "/hello", 7, 200), ("GET", "/items/{}", 5, 200), ("POST", "/items", 3, 200), ("GET", "/no-such-route", 2, 404)];
    for (method, path, times, status) in fastapi_plan {
        for i in 0..times {
            let p = path.replace("{}", &(i + 1).to_string());
            let r = http::request(method, &addr(2), &p, &[], b"").unwrap_or_else(|e| panic!("fastapi {method} {p}: {e}"));
            assert_eq!(r.status, status, "fastapi {method} {p}");
        }
    }
    say("fastapi: 7 GET /hello, 5 GET /items/{id}, 3 POST /items, 2 GET /no-such-route (404)");

    // Half the requests, then one worker is stopped (gunicorn replaces it),
    // then the other half: the stopped worker's counts must still be there.
    let first = gunicorn_traffic(&addr(3), 0..GUNICORN_N / 2);
    let victim = first[0];
    stop_worker(&gunicorn, victim, &multiproc);
    let second = gunicorn_traffic(&addr(3), GUNICORN_N / 2..GUNICORN_N);
    assert_eq!(first.len() + second.len(), GUNICORN_N);
    let before: BTreeSet<u64> = first.iter().copied().collect();
    let after: BTreeSet<u64> = second.iter().copied().collect();
    say(format!(
        "gunicorn: {GUNICORN_GETS} GET /work + {GUNICORN_POSTS} POST /submit from 8 threads; first half served by workers {before:?}, \
         then worker {victim} stopped, second half served by {after:?}"
    ));
    assert!(before.len() >= 2, "the first half of the requests went to a single worker {before:?}: traffic not spread");
    assert!(!after.contains(&victim), "stopped worker {victim} still served requests");
    let t_done = now_ms();

    // --- Two scrapes of every target after the traffic --------------------------
    wait_for("two scrapes of every target after the traffic", Duration::from_secs(30), || {
        alive();
        let m = query_matrix(&server_addr, "up[1m]")?;
        let mut short = Vec::new();
        for t in &targets {
            let n = m
                .iter()
                .filter(|(l, _)| l.get("job").map(String::as_str) == Some(t.job) && l.get("instance") == Some(&t.addr))
                .flat_map(|(_, pts)| pts.iter())
                .filter(|(ts, _)| *ts > t_done)
                .count();
            if n < 2 {
                short.push(format!("{}: {n}", t.job));
            }
        }
        if short.is_empty() { Ok(()) } else { Err(format!("scrapes since the traffic: {short:?}")) }
    });
    say("two scrapes of every target since the traffic; comparing");

    let accept = recorded_accept(&record);
    let accept = match &accept {
        Some(a) => a.as_str(),
        None => {
            say("WARNING: the server's Accept header was not recorded; reading targets with Prometheus' own");
            PROMETHEUS_ACCEPT
        }
    };
    say(format!("server's scrape Accept header: {accept}"));

    // --- (a), (b), (c) per target -----------------------------------------------
    let mut failures: Vec<String> = Vec::new();
    for t in &targets {
        let mut attempt = 1;
        let (f, summary) = loop {
            let (f, summary) = compare_target(&server_addr, t, accept);
            if f.is_empty() || !t.host_dependent || attempt == 3 {
                break (f, summary);
            }
            say(format!(
                "{}: attempt {attempt} mismatched (host state may have changed), retrying after a scrape:\n  {}",
                t.job,
                f.join("\n  ")
            ));
            attempt += 1;
            std::thread::sleep(Duration::from_millis(2500));
        };
        say(format!("{summary}: {}", if f.is_empty() { "OK".to_string() } else { format!("{} FAILURES", f.len()) }));
        failures.extend(f);
    }

    // --- Values known independently of any exposition ------------------------------
    let mut known = Vec::new();
    check_node_facts(&mut known, &server_addr, &addr(0));
    check_pushed(&mut known, &server_addr);
    check_fastapi(&mut known, &server_addr);
    check_gunicorn(&mut known, &server_addr);
    check_targets_api(&mut known, &server_addr, &targets);
    check_series_api(&mut known, &server_addr, &targets, t_done);
    say(format!(
        "independent checks (pushed values, request counts, /proc facts, targets and series APIs): {}",
        if known.is_empty() { "OK".to_string() } else { format!("{} FAILURES", known.len()) }
    ));
    failures.extend(known);

    // Any target process that died during the test is a failure too.
    for p in [&node, &pushgateway, &fastapi, &gunicorn, &server] {
        if let Err(e) = p.check_alive() {
            failures.push(e);
        }
    }
    if !failures.is_empty() {
        eprintln!("--- end of the server log ---\n{}", server.log_tail(30));
    }
    if std::env::var_os("REAL_TARGETS_KEEP").is_some() {
        let kept = tmp.keep();
        say(format!("kept {}", kept.display()));
    }
    assert!(failures.is_empty(), "{} failures against {kind:?}:\n- {}", failures.len(), failures.join("\n- "));
    say("all checks passed");
}

// ---------------------------------------------------------------------------
// Independent checks.

fn check_node_facts(f: &mut Vec<String>, server: &str, node_addr: &str) {
    let sel = format!("job=\"node\",instance=\"{node_addr}\",env=\"test\"");
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {p}: {e}")).trim().to_string();
    let hostname = read("/proc/sys/kernel/hostname");
    let release = read("/proc/sys/kernel/osrelease");
    expect_value(
        f,
        server,
        &format!(
            "node_uname_info{{{sel},sysname=\"Linux\",nodename=\"{}\",release=\"{}\"}}",
            query_escape(&hostname),
            query_escape(&release)
        ),
        1.0,
    );
    let meminfo = read("/proc/meminfo");
    let kb: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("MemTotal in /proc/meminfo");
    expect_value(f, server, &format!("node_memory_MemTotal_bytes{{{sel}}}"), kb * 1024.0);
    // One node_cpu_seconds_total series per CPU of /proc/stat and per mode,
    // the same modes for every CPU.
    let cpus: BTreeSet<String> = read("/proc/stat")
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|w| w.strip_prefix("cpu"))
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    match query(server, &format!("node_cpu_seconds_total{{{sel}}}")) {
        Ok(v) => {
            let mut modes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (l, _) in &v {
                modes.entry(l.get("cpu").cloned().unwrap_or_default()).or_default().insert(l.get("mode").cloned().unwrap_or_default());
            }
            let got: BTreeSet<String> = modes.keys().cloned().collect();
            if got != cpus {
                f.push(format!("node_cpu_seconds_total: cpus {got:?}, /proc/stat has {cpus:?}"));
            }
            let first = modes.values().next().cloned().unwrap_or_default();
            if !first.contains("idle") || !first.contains("user") || !first.contains("system") || modes.values().any(|m| *m != first) {
                f.push(format!("node_cpu_seconds_total: modes per cpu {modes:?}"));
            }
        }
        Err(e) => f.push(format!("node_cpu_seconds_total: {e}")),
    }
}

fn check_pushed(f: &mut Vec<String>, server: &str) {
    let g = "job=\"batch\",instance=\"x\",env=\"test\"";
    expect_value(f, server, &format!("batch_records_total{{{g},stage=\"extract\"}}"), 1234.0);
    expect_value(f, server, &format!("batch_records_total{{{g},stage=\"load\"}}"), 1200.0);
    expect_value(f, server, &format!("batch_note{{{g},msg=\"a \\\"quoted\\\" \\\\ path\\nline2\"}}"), 1.0);
    expect_value(f, server, &format!("batch_ratio{{{g}}}"), f64::NAN);
    expect_value(f, server, &format!("batch_limit{{{g}}}"), f64::INFINITY);
    expect_value(f, server, &format!("batch_floor{{{g}}}"), f64::NEG_INFINITY);
    expect_value(f, server, &format!("batch_last_success_timestamp_seconds{{{g}}}"), 1_700_000_000.25);
    for (le, want) in [("0.5", 2.0), ("1", 5.0), ("+Inf", 6.0)] {
        let le_re = if le == "1" { "1|1\\\\.0".to_string() } else { le.replace('.', "\\\\.").replace('+', "\\\\+") };
        expect_value(f, server, &format!("batch_duration_seconds_bucket{{{g},le=~\"{le_re}\"}}"), want);
    }
    expect_value(f, server, &format!("batch_duration_seconds_sum{{{g}}}"), 4.5);
    expect_value(f, server, &format!("batch_duration_seconds_count{{{g}}}"), 6.0);
    // The group without instance: the gateway exposes instance="", which
    // honor_labels keeps, and an empty label is no label.
    match query(server, "batch_x") {
        Ok(v) => {
            let want: Labels = [("__name__", "batch_x"), ("job", "batch_noinst"), ("env", "test")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            if v.len() != 1 || v[0].0 != want || v[0].1 != 3.0 {
                f.push(format!("batch_x: want exactly {} = 3, got {v:?}", series_string(&want)));
            }
        }
        Err(e) => f.push(format!("batch_x: {e}")),
    }
    // honor_labels: nothing renamed, nothing pushed filed under the scrape job.
    for sel in ["{exported_job=~\".+\"}", "{exported_instance=~\".+\"}", "{job=\"pushgateway\",__name__=~\"batch_.*\"}"] {
        match query(server, sel) {
            Ok(v) if v.is_empty() => {}
            Ok(v) => f.push(format!("{sel}: want nothing, got {} series, e.g. {}", v.len(), series_string(&v[0].0))),
            Err(e) => f.push(format!("{sel}: {e}")),
        }
    }
}

fn check_fastapi(f: &mut Vec<String>, server: &str) {
    let j = "job=\"fastapi\"";
    for (handler, method, status, n) in [
        ("/hello", "GET", "2xx", 7.0),
        ("/items/{item_id}", "GET", "2xx", 5.0),
        ("/items", "POST", "2xx", 3.0),
        ("none", "GET", "4xx", 2.0),
    ] {
        let l = format!("{j},handler=\"{handler}\",method=\"{method}\"");
        expect_value(f, server, &format!("http_requests_total{{{l},status=\"{status}\"}}"), n);
        expect_value(f, server, &format!("http_request_duration_seconds_count{{{l}}}"), n);
        expect_value(f, server, &format!("http_request_duration_seconds_bucket{{{l},le=\"+Inf\"}}"), n);
    }
    expect_value(f, server, &format!("sum(http_requests_total{{{j}}})"), 17.0);
    expect_value(f, server, &format!("http_request_duration_highr_seconds_count{{{j}}}"), 17.0);
}

fn check_gunicorn(f: &mut Vec<String>, server: &str) {
    let j = "job=\"gunicorn\"";
    // (d) Every request counted once, whichever worker served it.
    expect_value(f, server, &format!("sum(app_requests_total{{{j}}})"), GUNICORN_N as f64);
    for (route, method, n) in [("/work", "GET", GUNICORN_GETS), ("/submit", "POST", GUNICORN_POSTS)] {
        expect_value(f, server, &format!("app_requests_total{{{j},route=\"{route}\",method=\"{method}\"}}"), n as f64);
        expect_value(f, server, &format!("app_request_duration_seconds_count{{{j},route=\"{route}\"}}"), n as f64);
        expect_value(f, server, &format!("app_request_duration_seconds_bucket{{{j},route=\"{route}\",le=\"+Inf\"}}"), n as f64);
    }
    expect_value(f, server, &format!("app_requests_in_progress{{{j}}}"), 0.0);
    // Four live workers; the stopped one's live gauge was removed by the
    // child_exit hook (without it this would be 5).
    expect_value(f, server, &format!("app_workers{{{j}}}"), 4.0);
}

fn check_targets_api(f: &mut Vec<String>, server: &str, targets: &[Target]) {
    let data = match http::api_get(server, "/api/v1/targets") {
        Ok(d) => d,
        Err(e) => return f.push(format!("/api/v1/targets: {e}")),
    };
    let active = data["activeTargets"].as_array().cloned().unwrap_or_default();
    for t in targets {
        let found: Vec<&Value> =
            active.iter().filter(|a| a["labels"]["job"] == t.job && a["labels"]["instance"] == t.addr.as_str()).collect();
        let url = format!("http://{}{}", t.addr, t.metrics_path);
        match found.as_slice() {
            [a] if a["health"] == "up" && a["scrapeUrl"] == url.as_str() && a["scrapePool"] == t.job => {}
            _ => f.push(format!("/api/v1/targets: want one healthy {} target scraping {url}, got {found:?}", t.job)),
        }
    }
}

/// /api/v1/series since the traffic ended lists the same series as the
/// instant query (synthetic and host-dependent series left out).
fn check_series_api(f: &mut Vec<String>, server: &str, targets: &[Target], t_done: i64) {
    for t in targets {
        let stored = match stored_series(server, t) {
            Ok(s) => s,
            Err(e) => return f.push(format!("{}: {e}", t.job)),
        };
        let want: BTreeSet<&Labels> = stored.keys().filter(|l| !t.unstable(l.get("__name__").map(String::as_str).unwrap_or(""))).collect();
        let mut path = format!("/api/v1/series?start={:.3}&end={:.3}", t_done as f64 / 1000.0, now_ms() as f64 / 1000.0);
        for sel in &t.selectors {
            path.push_str(&format!("&match[]={}", http::encode(sel)));
        }
        let data = match http::api_get(server, &path) {
            Ok(d) => d,
            Err(e) => return f.push(format!("{}: {e}", t.job)),
        };
        let got: Result<BTreeSet<Labels>, String> = data
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|l| labels_of(l).map(normalize))
            .filter(|l| {
                l.as_ref().map_or(true, |l| {
                    let n = l.get("__name__").map(String::as_str).unwrap_or("");
                    !SYNTHETIC.contains(&n) && !t.unstable(n)
                })
            })
            .collect();
        match got {
            Ok(got) if got.iter().eq(want.iter().copied()) => {}
            Ok(got) => {
                let missing: Vec<String> = want.iter().filter(|l| !got.contains(**l)).map(|l| series_string(l)).collect();
                let extra: Vec<String> = got.iter().filter(|l| !want.contains(l)).map(series_string).collect();
                f.push(format!(
                    "{}: /api/v1/series differs from the instant query: missing{} extra{}",
                    t.job,
                    list(&missing, 10),
                    list(&extra, 10)
                ));
            }
            Err(e) => f.push(format!("{}: /api/v1/series: {e}", t.job)),
        }
    }
}
