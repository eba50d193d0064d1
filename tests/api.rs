//! The Prometheus HTTP API of a running `hearth server`, exercised the way
//! Grafana's Prometheus data source calls it.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Server {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a server scraping itself every 200ms and waits until `up` is queryable.
fn server() -> Server {
    server_with(&[])
}

fn server_with(extra: &[&str]) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    let addr = listener.local_addr().expect("addr").to_string();
    drop(listener);
    let child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .current_dir(dir.path())
        .args(["server", "--web.listen-address", &addr, "--self-scrape-interval", "200ms"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let s = Server { child, addr, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok((200, body)) = request(&s.addr, "GET", "/api/v1/query?query=up", None)
            && body["data"]["result"].as_array().is_some_and(|r| !r.is_empty())
        {
            return s;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("server did not become queryable");
}

/// A minimal HTTP/1.0 client returning (status, JSON body).
fn request(addr: &str, method: &str, path: &str, form: Option<&str>) -> std::io::Result<(u16, Value)> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    match form {
        Some(body) => write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?,
        None => write!(s, "{method} {path} HTTP/1.0\r\nHost: x\r\n\r\n")?,
    }
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status = raw.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Ok((status, serde_json::from_str(body).unwrap_or(Value::Null)))
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs_f64()
}

#[test]
fn grafana_calls_work() {
    let s = server();
    // Grafana's data source health check.
    let (code, body) = request(&s.addr, "GET", "/api/v1/query?query=1%2B1", None).expect("health check");
    assert_eq!(code, 200);
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["resultType"], "scalar");
    assert_eq!(body["data"]["result"][1], "2");
    assert!(body["data"]["result"][0].is_number(), "timestamps are unix seconds as numbers");

    // Query editor: label names and values, series.
    let (_, body) = request(&s.addr, "GET", "/api/v1/labels", None).expect("labels");
    let names: Vec<&str> = body["data"].as_array().expect("array").iter().filter_map(Value::as_str).collect();
    assert!(names.contains(&"__name__") && names.contains(&"job"), "{names:?}");
    let (_, body) = request(&s.addr, "GET", "/api/v1/label/job/values", None).expect("values");
    assert_eq!(body["data"], serde_json::json!(["hearth"]));
    let (_, body) = request(&s.addr, "GET", "/api/v1/label/__name__/values?match[]=%7Bjob%3D%22hearth%22%7D", None).expect("names");
    assert!(body["data"].as_array().expect("array").iter().any(|v| v == "up"));
    let (code, body) = request(&s.addr, "POST", "/api/v1/series", Some("match[]=up")).expect("series");
    assert_eq!(code, 200);
    assert_eq!(body["data"][0]["__name__"], "up");

    // Panels: POST query_range with form parameters, over time the server has data for.
    std::thread::sleep(Duration::from_millis(1500));
    let t = now();
    let form = format!("query=up&start={}&end={}&step=0.5", t - 1.0, t);
    let (code, body) = request(&s.addr, "POST", "/api/v1/query_range", Some(&form)).expect("range");
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["resultType"], "matrix");
    let values = body["data"]["result"][0]["values"].as_array().expect("values");
    assert!(values.len() >= 3 && values.iter().all(|p| p[1] == "1"), "{values:?}");

    // buildinfo without `features`, so Grafana treats us as Prometheus.
    let (_, body) = request(&s.addr, "GET", "/api/v1/status/buildinfo", None).expect("buildinfo");
    assert!(body["data"]["version"].is_string());
    assert!(body["data"].get("features").is_none());
}

#[test]
fn errors_use_prometheus_types_and_status_codes() {
    let s = server();
    let (code, body) = request(&s.addr, "GET", "/api/v1/query?query=sum(", None).expect("request");
    assert_eq!((code, body["errorType"].as_str()), (400, Some("bad_data")));
    assert!(body["error"].as_str().is_some_and(|e| e.contains("parse error")), "{body}");
    let (code, _) = request(&s.addr, "GET", "/api/v1/query", None).expect("request");
    assert_eq!(code, 400, "missing query");
    let (code, body) = request(&s.addr, "GET", "/api/v1/series", None).expect("request");
    assert_eq!(code, 400);
    assert_eq!(body["error"], "no match[] parameter provided");
    let t = now();
    let (code, body) =
        request(&s.addr, "GET", &format!("/api/v1/query_range?query=up&start={}&end={}&step=1", t - 20000.0, t), None).expect("request");
    assert_eq!(code, 400);
    assert!(body["error"].as_str().is_some_and(|e| e.contains("11,000 points")), "{body}");
    let (code, _) =
        request(&s.addr, "GET", &format!("/api/v1/query_range?query=up&start={t}&end={}&step=1", t - 10.0), None).expect("request");
    assert_eq!(code, 400, "end before start");
    // Execution errors are 422.
    let (code, body) = request(
        &s.addr,
        "GET",
        "/api/v1/query?query=up%20%2B%20ignoring(job)%20%7Bjob%3D~%22.%2B%22%2C__name__%3D~%22up%7Cscrape_duration_seconds%22%7D",
        None,
    )
    .expect("request");
    assert_eq!((code, body["errorType"].as_str()), (422, Some("execution")), "{body}");

    // The engine's metrics count them, for the dashboards' Queries row.
    let mut conn = std::net::TcpStream::connect(&s.addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(conn, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").expect("write");
    let mut metrics = String::new();
    conn.read_to_string(&mut metrics).expect("read");
    let value =
        |series: &str| -> f64 { metrics.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0) };
    assert!(value("hearth_engine_query_failures_total{reason=\"parse\"}") >= 1.0, "{metrics}");
    assert!(value("hearth_engine_query_failures_total{reason=\"execution\"}") >= 1.0, "{metrics}");
    assert!(value("hearth_engine_query_duration_seconds_count{kind=\"instant\"}") >= 3.0, "{metrics}");
    assert_eq!(value("prometheus_engine_queries_concurrent_max"), 20.0, "{metrics}");
}

#[test]
fn status_endpoints_answer() {
    let s = server();
    for path in ["/api/v1/status/config", "/api/v1/status/flags", "/api/v1/status/runtimeinfo", "/api/v1/status/tsdb", "/api/v1/metadata"] {
        let (code, body) = request(&s.addr, "GET", path, None).expect("request");
        assert_eq!((code, body["status"].as_str()), (200, Some("success")), "{path}: {body}");
    }
    let (_, body) = request(&s.addr, "GET", "/api/v1/status/tsdb", None).expect("tsdb");
    assert!(body["data"]["headStats"]["numSeries"].as_u64().is_some_and(|n| n > 0));
    assert!(body["data"]["seriesCountByMetricName"].as_array().is_some_and(|a| !a.is_empty()));
    let (_, body) = request(&s.addr, "GET", "/api/v1/status/flags", None).expect("flags");
    assert!(body["data"]["web.listen-address"].is_string(), "{body}");
}

#[test]
fn admin_api_is_off_by_default_and_works_when_enabled() {
    let s = server();
    let (code, body) = request(&s.addr, "POST", "/api/v1/admin/tsdb/snapshot", Some("")).expect("request");
    assert_eq!(code, 403);
    assert!(body["error"].as_str().is_some_and(|e| e.contains("--web.enable-admin-api")), "{body}");
    drop(s);

    let s = server_with(&["--web.enable-admin-api"]);
    let (code, body) = request(&s.addr, "POST", "/api/v1/admin/tsdb/snapshot", Some("")).expect("snapshot");
    assert_eq!(code, 200, "{body}");
    let name = body["data"]["name"].as_str().expect("snapshot name").to_string();
    let snap = s._dir.path().join("data/snapshots").join(&name);
    let blocks = std::fs::read_dir(&snap).expect("snapshot dir").flatten().filter(|e| e.path().join("meta.json").exists()).count();
    assert_eq!(blocks, 1, "the head was written into the snapshot as a block");

    // Deleting `up` hides it from queries at once.
    let (code, _) = request(&s.addr, "POST", "/api/v1/admin/tsdb/delete_series", Some("match[]=up")).expect("delete");
    assert_eq!(code, 204);
    let t = now();
    let (_, body) = request(&s.addr, "GET", &format!("/api/v1/query?query=up&time={}", t - 0.3), None).expect("query");
    assert_eq!(body["data"]["result"], serde_json::json!([]), "deleted data is hidden");
    let (code, _) = request(&s.addr, "POST", "/api/v1/admin/tsdb/clean_tombstones", Some("")).expect("clean");
    assert_eq!(code, 204);
    let (code, _) = request(&s.addr, "POST", "/api/v1/admin/tsdb/delete_series", Some("")).expect("delete");
    assert_eq!(code, 400, "match[] is required");
}
