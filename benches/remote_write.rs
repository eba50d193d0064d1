//! Remote-write throughput: samples sent per second and per CPU-second of
//! the sending process.
//!
//! The bench fills a WAL with `BENCH_SERIES` series × `BENCH_SAMPLES`
//! samples (defaults 10 000 × 100), then starts a queue positioned at the
//! WAL's start, as after a long receiver outage, and times until the last
//! sample is delivered. The receiver is this same program re-run as a
//! separate process (so its work is not counted): it decodes every request,
//! counts the samples and answers 204; the bench checks the count.
//!
//! `cargo bench --bench remote_write` (env: `BENCH_SERIES`, `BENCH_SAMPLES`,
//! `BENCH_SHARDS` to fix the shard count, default 4).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use hearth::config::Config;
use hearth::model::Labels;
use hearth::remote::codec;
use hearth::remote::metrics::RemoteMetrics;
use hearth::remote::queue::{Queue, QueueSettings};
use hearth::remote::watcher::{Position, PositionFile};
use hearth::tsdb::metrics::TsdbMetrics;
use hearth::tsdb::{Db, Options};

const SINK_ENV: &str = "HEARTH_REMOTE_WRITE_BENCH_SINK";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// User + system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn main() {
    if std::env::var_os(SINK_ENV).is_some() {
        return sink();
    }
    // `cargo bench` passes `--bench`; other arguments (filters) are ignored.
    let series = env_or("BENCH_SERIES", 10_000);
    let per_series = env_or("BENCH_SAMPLES", 100);
    let shards = env_or("BENCH_SHARDS", 4);
    let total = (series * per_series) as u64;

    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env(SINK_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the sink process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("sink stdout")).read_line(&mut line).expect("sink address");
    let sink_addr = line.trim().to_string();

    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(dir.path(), Options { retention_ms: None, ..Options::default() }, TsdbMetrics::default()).expect("open");
    let labels: Vec<Labels> = (0..series)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", format!("bench_metric_{}", i % 100)),
                ("instance", format!("host-{}:9100", i / 100)),
                ("job", "node".to_string()),
                ("series", i.to_string()),
            ])
        })
        .collect();
    let t0 = 1_700_000_000_000i64;
    for k in 0..per_series {
        let mut app = db.appender();
        for l in &labels {
            app.append(None, l, t0 + k as i64 * 15_000, k as f64).expect("append");
        }
        app.commit().expect("commit");
    }
    let wal_end = hearth::remote::watcher::wal_end(db.wal_hold()).expect("wal end");
    let first = db.wal_hold().segments().expect("segments")[0];

    let yaml = format!(
        "remote_write:\n  - url: http://{sink_addr}/write\n    name: bench\n    queue_config:\n      capacity: 10000\n      max_samples_per_send: 2000\n      min_shards: {shards}\n      max_shards: {shards}\n"
    );
    let config = Config::parse(&yaml, dir.path()).expect("config").remote_write.remove(0);
    PositionFile::new(dir.path(), "bench").store(Position { segment: first, offset: 0 }).expect("position");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let metrics = RemoteMetrics::default().queue("bench", &config.url);
    let settings = QueueSettings { name: "bench".into(), config, external_labels: BTreeMap::new() };

    let (cpu0, wall0) = (cpu_seconds(), Instant::now());
    let queue = rt.block_on(async { Queue::start(settings, dir.path(), db.wal_hold().clone(), metrics.clone()).expect("start queue") });
    let deadline = Instant::now() + Duration::from_secs(600);
    while queue.delivered() < wal_end {
        assert!(Instant::now() < deadline, "not delivered within 10 minutes");
        std::thread::sleep(Duration::from_millis(5));
    }
    let (cpu, wall) = (cpu_seconds() - cpu0, wall0.elapsed().as_secs_f64());
    rt.block_on(queue.stop());
    let received = http_get_count(&sink_addr);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(received, total, "the sink counted every sample");
    assert_eq!(metrics.samples_failed.get() + metrics.samples_retried.get(), 0);
    println!(
        "remote_write: {total} samples ({series} series x {per_series}) to a local sink with {shards} shards, {} MB compressed: {:.2} s wall, {:.2} CPU-s; {:.0} samples/s, {:.0} samples per CPU-second",
        metrics.bytes_total.get() / 1_000_000,
        wall,
        cpu,
        total as f64 / wall,
        total as f64 / cpu
    );
}

/// `GET /count` of the sink, over a plain TCP connection.
fn http_get_count(addr: &str) -> u64 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to sink");
    s.write_all(format!("GET /count HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).expect("request");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("response");
    resp.rsplit("\r\n\r\n").next().and_then(|b| b.trim().parse().ok()).expect("a count")
}

/// The receiver process: decodes, counts, answers 204; prints its address first.
fn sink() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let count = Arc::new(AtomicU64::new(0));
        let app = Router::new()
            .route(
                "/write",
                post(|State(c): State<Arc<AtomicU64>>, body: axum::body::Bytes| async move {
                    match codec::decode(&body) {
                        Ok(req) => {
                            c.fetch_add(req.timeseries.iter().map(|t| t.samples.len() as u64).sum(), Ordering::Relaxed);
                            StatusCode::NO_CONTENT
                        }
                        Err(_) => StatusCode::BAD_REQUEST,
                    }
                }),
            )
            .route("/count", get(|State(c): State<Arc<AtomicU64>>| async move { c.load(Ordering::Relaxed).to_string() }))
            .with_state(count);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        println!("{}", listener.local_addr().expect("address"));
        let _ = axum::serve(listener, app).await;
    });
}
