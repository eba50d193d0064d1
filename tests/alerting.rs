//! Alerting end to end against a REAL Alertmanager (Debian's
//! `prometheus-alertmanager`, installed by tests/support/install_peers.sh):
//! `hearth server` scrapes a value the test controls, evaluates an alerting
//! rule with templated labels and annotations, and sends to Alertmanager.
//! The alert must appear in Alertmanager's API with our labels (external
//! labels included) and expanded annotations; when the condition clears,
//! Alertmanager must see it resolved: its webhook (pointed back at the test,
//! `send_resolved: true`) delivers a "resolved" notification, and the alert
//! leaves its list of active alerts. Everything runs on 127.0.0.1 and is
//! stopped by PID (process-group guards) at the end.

#[allow(dead_code)]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use support::http;
use support::procs::{Proc, free_ports, wait_for};

fn say(msg: String) {
    eprintln!("[alerting] {msg}");
}

/// The test's own HTTP endpoint: `/metrics` serves `demo_value`, `/hook`
/// records Alertmanager's webhook notifications.
#[derive(Clone, Default)]
struct Peer {
    value: Arc<AtomicU64>,
    hooks: Arc<Mutex<Vec<Value>>>,
}

impl Peer {
    fn serve(&self, listener: TcpListener) {
        let peer = self.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let peer = peer.clone();
                std::thread::spawn(move || peer.handle(stream));
            }
        });
    }

    fn handle(&self, mut stream: std::net::TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut reader = BufReader::new(match stream.try_clone() {
            Ok(s) => s,
            Err(_) => return,
        });
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() || line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length.min(1 << 20)];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let reply = if request_line.starts_with("GET /metrics") {
            format!("# TYPE demo_value gauge\ndemo_value {}\n", self.value.load(Ordering::SeqCst))
        } else {
            if let Ok(v) = serde_json::from_slice(&body) {
                self.hooks.lock().expect("lock").push(v);
            }
            String::new()
        };
        let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}", reply.len());
    }
}

fn json(addr: &str, path: &str) -> Result<Value, String> {
    let r = http::get(addr, path, &[])?;
    serde_json::from_str(r.text()?).map_err(|e| format!("{path}: {e}"))
}

#[test]
fn a_firing_rule_reaches_alertmanager_and_resolves() {
    support::peers::install(say);
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = free_ports(3);
    let (peer_port, am_port, hearth_port) = (ports[0], ports[1], ports[2]);
    let peer = Peer::default();
    peer.serve(TcpListener::bind(("127.0.0.1", peer_port)).expect("bind peer"));

    let am_config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_config,
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n- name: hook\n  webhook_configs:\n  - url: http://127.0.0.1:{peer_port}/hook\n    send_resolved: true\n"
        ),
    )
    .expect("write am config");
    let mut am = Command::new("/usr/bin/prometheus-alertmanager");
    am.arg(format!("--config.file={}", am_config.display()))
        .arg(format!("--storage.path={}", dir.path().join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=debug");
    let am = Proc::spawn("alertmanager", am, &dir.path().join("alertmanager.log"));
    let am_addr = format!("127.0.0.1:{am_port}");
    wait_for("alertmanager ready", Duration::from_secs(30), || {
        am.check_alive()?;
        http::get(&am_addr, "/-/ready", &[]).and_then(|r| if r.status == 200 { Ok(()) } else { Err(format!("status {}", r.status)) })
    });

    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        r#"groups:
- name: demo
  interval: 1s
  rules:
  - alert: DemoHigh
    expr: demo_value > 5
    for: 2s
    labels:
      severity: '{{ if gt $value 50.0 }}critical{{ else }}warning{{ end }}'
    annotations:
      summary: 'demo_value is {{ $value }} on {{ $labels.instance }}'
      description: '{{ $labels.job }} at {{ $externalLabels.cluster }}: {{ humanize $value }}'
"#,
    )
    .expect("write rules");
    let config = dir.path().join("hearth.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  external_labels: {{cluster: eu1}}\n\
             rule_files: [{rules:?}]\n\
             alerting:\n  alertmanagers:\n  - static_configs:\n    - targets: ['127.0.0.1:{am_port}']\n\
             scrape_configs:\n- job_name: demo\n  static_configs:\n  - targets: ['127.0.0.1:{peer_port}']\n",
            rules = rules.display().to_string()
        ),
    )
    .expect("write config");
    let mut hearth = Command::new(env!("CARGO_BIN_EXE_hearth"));
    hearth
        .arg("server")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{hearth_port}"))
        .arg("--web.external-url=http://hearth.test:9090/")
        .arg("--rules.alert.resend-delay=1s");
    let hearth = Proc::spawn("hearth", hearth, &dir.path().join("hearth.log"));
    let addr = format!("127.0.0.1:{hearth_port}");
    wait_for("hearth ready", Duration::from_secs(30), || {
        hearth.check_alive()?;
        http::get(&addr, "/-/ready", &[]).and_then(|r| if r.status == 200 { Ok(()) } else { Err(format!("status {}", r.status)) })
    });

    let want = format!("http://127.0.0.1:{am_port}/api/v2/alerts");
    wait_for("the alertmanager to be discovered", Duration::from_secs(10), || {
        let ams = json(&addr, "/api/v1/alertmanagers")?;
        if ams["data"]["activeAlertmanagers"][0]["url"] == want.as_str() { Ok(()) } else { Err(format!("{ams}")) }
    });

    // The condition holds: pending for 2 s, then firing, then in Alertmanager.
    peer.value.store(70, Ordering::SeqCst);
    let alert = wait_for("the alert in Alertmanager", Duration::from_secs(60), || {
        hearth.check_alive()?;
        let alerts = json(&am_addr, "/api/v2/alerts")?;
        alerts
            .as_array()
            .and_then(|a| a.iter().find(|x| x["labels"]["alertname"] == "DemoHigh").cloned())
            .ok_or_else(|| format!("not yet: {alerts}"))
    });
    let labels = &alert["labels"];
    assert_eq!(labels["severity"], "critical", "templated label: {alert}");
    assert_eq!(labels["cluster"], "eu1", "external labels are added: {alert}");
    assert_eq!(labels["job"], "demo");
    assert_eq!(labels["instance"], format!("127.0.0.1:{peer_port}"));
    assert!(labels.get("__name__").is_none());
    assert_eq!(alert["annotations"]["summary"], format!("demo_value is 70 on 127.0.0.1:{peer_port}"));
    assert_eq!(alert["annotations"]["description"], "demo at eu1: 70");
    assert_eq!(alert["status"]["state"], "active");
    assert_eq!(alert["generatorURL"], "http://hearth.test:9090/graph?g0.expr=demo_value+%3E+5&g0.tab=1");

    // Our own API agrees.
    let ours = json(&addr, "/api/v1/alerts").expect("alerts");
    assert_eq!(ours["data"]["alerts"][0]["state"], "firing", "{ours}");
    assert_eq!(ours["data"]["alerts"][0]["value"], "7e+01");
    let rules_api = json(&addr, "/api/v1/rules?type=alert").expect("rules");
    let rule = &rules_api["data"]["groups"][0]["rules"][0];
    assert_eq!(rule["name"], "DemoHigh");
    assert_eq!(rule["state"], "firing");
    assert_eq!(rule["health"], "ok");
    assert_eq!(rule["duration"], 2.0);
    assert_eq!(rule["type"], "alerting");

    // Alertmanager notifies the firing alert (after its group_wait); only
    // then does the condition clear, or it would never tell of a resolution.
    wait_for("a firing notification from Alertmanager", Duration::from_secs(30), || {
        let hooks = peer.hooks.lock().expect("lock");
        hooks.iter().any(|h| h["status"] == "firing").then_some(()).ok_or_else(|| format!("not yet: {} notifications", hooks.len()))
    });

    // The condition clears: Alertmanager gets the resolution.
    peer.value.store(1, Ordering::SeqCst);
    wait_for("a resolved notification from Alertmanager", Duration::from_secs(60), || {
        hearth.check_alive()?;
        let hooks = peer.hooks.lock().expect("lock");
        hooks
            .iter()
            .find(|h| h["status"] == "resolved" && h["alerts"][0]["labels"]["alertname"] == "DemoHigh")
            .map(|_| ())
            .ok_or_else(|| format!("not yet: {} notifications; alertmanager log:\n{}", hooks.len(), am.log_tail(20)))
    });
    wait_for("the alert to leave Alertmanager's active alerts", Duration::from_secs(30), || {
        let alerts = json(&am_addr, "/api/v2/alerts?active=true")?;
        let active = alerts.as_array().is_some_and(|a| a.iter().any(|x| x["labels"]["alertname"] == "DemoHigh"));
        if active { Err(format!("still active: {alerts}")) } else { Ok(()) }
    });
    let ours = json(&addr, "/api/v1/alerts").expect("alerts");
    assert_eq!(ours["data"]["alerts"], serde_json::json!([]));
    drop(hearth);
    drop(am);
}
