//! Pending alerts survive a restart of the `hearth` binary: the second run
//! restores how long each alert has been pending from `ALERTS_FOR_STATE`,
//! not counting the downtime, as Prometheus does. Runs on 127.0.0.1; the
//! server is stopped by PID (SIGTERM) between the runs.

#[allow(dead_code)]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::http;
use support::procs::{Proc, free_ports, wait_for};

fn start(dir: &Path, config: &Path, port: u16, log: &str) -> Proc {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hearth"));
    c.arg("server")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        // A grace period shorter than the remaining `for`, so the restored time counts as is.
        .arg("--rules.alert.for-grace-period=1s");
    let p = Proc::spawn("hearth", c, &dir.join(log));
    let addr = format!("127.0.0.1:{port}");
    wait_for("hearth ready", Duration::from_secs(30), || {
        p.check_alive()?;
        http::get(&addr, "/-/ready", &[]).and_then(|r| if r.status == 200 { Ok(()) } else { Err(format!("status {}", r.status)) })
    });
    p
}

/// The pending alert's activeAt, once the API shows one.
fn pending_since(addr: &str, p: &Proc) -> String {
    wait_for("a pending alert", Duration::from_secs(30), || {
        p.check_alive()?;
        let r = http::get(addr, "/api/v1/alerts", &[])?;
        let v: Value = serde_json::from_str(r.text()?).map_err(|e| e.to_string())?;
        let a = &v["data"]["alerts"][0];
        if a["state"] == "pending" { a["activeAt"].as_str().map(str::to_string).ok_or("no activeAt".into()) } else { Err(format!("{v}")) }
    })
}

fn rfc3339_ms(s: &str) -> i64 {
    // YYYY-MM-DDTHH:MM:SS(.mmm)Z, UTC; only differences matter here.
    let (date, time) = s.trim_end_matches('Z').split_once('T').expect("RFC 3339");
    let d: Vec<i64> = date.split('-').map(|x| x.parse().expect("date")).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().expect("time")).collect();
    let ms: i64 = format!("{frac:0<3}")[..3].parse().expect("ms");
    ((d[2] * 24 + t[0]) * 60 + t[1]) * 60_000 + t[2] * 1000 + ms
}

#[test]
fn pending_alerts_keep_their_progress_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, "groups:\n- name: g\n  interval: 1s\n  rules:\n  - alert: Always\n    expr: vector(1)\n    for: 10m\n")
        .expect("rules");
    let config = dir.path().join("hearth.yml");
    std::fs::write(&config, format!("global: {{evaluation_interval: 1s}}\nrule_files: [{:?}]\n", rules.display().to_string()))
        .expect("config");
    let port = free_ports(1)[0];
    let addr = format!("127.0.0.1:{port}");

    let first = start(dir.path(), &config, port, "first.log");
    let since = pending_since(&addr, &first);
    // Let a few evaluations write ALERTS_FOR_STATE, then stop (SIGTERM).
    std::thread::sleep(Duration::from_secs(8));
    drop(first);
    let down = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(3));

    let second = start(dir.path(), &config, port, "second.log");
    // Restore follows the first evaluation (interval 1 s); give it time.
    pending_since(&addr, &second);
    std::thread::sleep(Duration::from_secs(3));
    let restored = pending_since(&addr, &second);
    let shift = rfc3339_ms(&restored) - rfc3339_ms(&since);
    let downtime = down.elapsed().as_millis() as i64 - 3_000;
    // Active since the first run's time, moved by the downtime (whole seconds;
    // the last ALERTS_FOR_STATE sample may be up to one interval before the
    // stop). Without the restore it would be the second run's start, 8 s and
    // more later than that.
    assert!(shift >= 2_000 && shift <= downtime + 2_000, "activeAt moved by {shift} ms; downtime about {downtime} ms");
    drop(second);
}
