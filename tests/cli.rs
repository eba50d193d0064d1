//! The `hearth` binary as a user runs it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hearth::model::Matcher;
use hearth::tsdb::metrics::TsdbMetrics;
use hearth::tsdb::{Db, Options};

fn hearth() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
}

#[test]
fn help_lists_the_subcommands() {
    let out = hearth().arg("--help").output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for sub in ["server", "tsdb"] {
        assert!(text.contains(sub), "{text}");
    }
    let out = hearth().args(["tsdb", "--help"]).output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in ["create-blocks-from", "bench", "analyze"] {
        assert!(text.contains(sub), "{text}");
    }
}

#[test]
fn backfill_then_analyze_reports_what_was_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.om");
    let mut text = String::from("# HELP reqs Requests.\n# TYPE reqs counter\n");
    // 3 hours at 15s for two series: two 2h blocks.
    for t in (0..3 * 3600).step_by(15) {
        text.push_str(&format!("reqs_total{{code=\"200\"}} {} {t}\nreqs_total{{code=\"500\"}} {} {t}\n", t * 3, t / 60));
    }
    text.push_str("# EOF\n");
    std::fs::write(&input, text).expect("write input");
    let out_dir = dir.path().join("blocks");
    let out = hearth().args(["tsdb", "create-blocks-from", "openmetrics"]).arg(&input).arg(&out_dir).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("wrote 2 blocks, 2 series, 1440 samples"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = hearth().args(["tsdb", "analyze"]).arg(&out_dir).output().expect("run");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains("blocks: 2  samples: 1440"), "{report}");
    assert!(report.contains("reqs_total"), "{report}");

    // The blocks are a usable data directory with exact values.
    let db = Db::open(&out_dir, Options { retention_ms: None, ..Options::default() }, TsdbMetrics::default()).expect("open");
    let s = db.querier().select(&[Matcher::equal("code", "200")], i64::MIN, i64::MAX).expect("select");
    assert_eq!(s[0].samples.len(), 720);
    assert_eq!(s[0].samples[10].t, 150_000);
    assert_eq!(s[0].samples[10].v, 450.0);
}

#[test]
fn backfill_rejects_bad_input_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("bad.om");
    std::fs::write(&input, "ok 1 1\nbroken{ 2 2\n# EOF\n").expect("write");
    let out = hearth().args(["tsdb", "create-blocks-from", "openmetrics"]).arg(&input).arg(dir.path().join("o")).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("bad.om") && err.contains("line 2"), "{err}");
}

#[test]
fn server_starts_scrapes_itself_and_keeps_data_across_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = 20000 + (std::process::id() % 20000) as u16;
    let addr = format!("127.0.0.1:{port}");
    let start = |addr: &str| {
        hearth()
            .current_dir(dir.path())
            .args(["server", "--web.listen-address", addr, "--self-scrape-interval", "200ms"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn server")
    };
    let mut child = start(&addr);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut metrics = String::new();
    while Instant::now() < deadline {
        if let Ok(body) = http_get(&addr, "/metrics")
            && body.contains("prometheus_tsdb_head_samples_appended_total")
            && !body.contains("prometheus_tsdb_head_samples_appended_total 0\n")
        {
            metrics = body;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(http_get(&addr, "/-/ready").is_ok_and(|b| b.contains("Ready")));
    assert!(http_get(&addr, "/-/healthy").is_ok_and(|b| b.contains("Healthy")));
    assert!(!metrics.is_empty(), "self-scrape appended samples");
    // Graceful stop with SIGTERM, as Kubernetes does.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "clean exit on SIGTERM: {status}");

    let db = Db::open(&dir.path().join("data"), Options::default(), TsdbMetrics::default()).expect("default ./data directory");
    let up = db.querier().select(&[Matcher::equal("__name__", "up"), Matcher::equal("job", "hearth")], i64::MIN, i64::MAX).expect("select");
    assert_eq!(up.len(), 1);
    assert!(up[0].samples.iter().all(|s| s.v == 1.0));
}

/// A minimal HTTP/1.0 GET, to avoid a client dependency in tests.
fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}
