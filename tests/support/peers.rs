//! Installing the real peers the integration tests run (Debian packages and
//! a Python venv), through install_peers.sh beside this file.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs install_peers.sh (cached, idempotent; at most 20 minutes), passing
/// its log lines to `say`; returns the Python venv it prepared.
pub fn install(say: fn(String)) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/install_peers.sh");
    say(format!("installing peers (cached): {}", script.display()));
    let log = std::env::temp_dir().join(format!("hearth-peers-install-{}.log", std::process::id()));
    let log_file = std::fs::File::create(&log).expect("install log");
    let mut child = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .expect("run install_peers.sh");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(1200);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait install_peers.sh") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("install_peers.sh took over 20 minutes; log: {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = reader.join().expect("reader");
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    for line in log_text.lines() {
        say(format!("  {line}"));
    }
    assert!(status.success(), "install_peers.sh failed ({status}):\n{log_text}");
    let venv = out.lines().rev().find_map(|l| l.strip_prefix("PEERS_VENV=")).expect("install_peers.sh printed no PEERS_VENV=");
    PathBuf::from(venv)
}
