//! Child processes for the real-target test: each runs in its own process
//! group with its output in a log file, and is stopped on drop (also when
//! the test panics) by signalling that group — the process we started and
//! whatever it forked (gunicorn's workers) — never anything else.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Proc {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Starts `cmd` in a new process group, stdout and stderr to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Proc {
        use std::os::unix::process::CommandExt;
        let out = File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let err = out.try_clone().expect("clone log handle");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("start {name} ({cmd:?}): {e}"));
        Proc { name: name.to_string(), child, log: log.to_path_buf() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Err` (with the end of its log) if the process has exited. Does not
    /// reap it (see `exited`).
    pub fn check_alive(&self) -> Result<(), String> {
        match self.exited() {
            None => Ok(()),
            Some(how) => Err(format!("{} (pid {}) {how}; end of its log:\n{}", self.name, self.pid(), self.log_tail(40))),
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// How the process ended, if it has, without reaping it: while it is an
    /// unreaped zombie its pid, and so its process group id, cannot be
    /// reused, which keeps signalling the group safe until `drop` reaps it.
    fn exited(&self) -> Option<String> {
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let pid = self.child.id() as libc::id_t;
        let rc = unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) };
        if rc != 0 {
            return Some(format!("cannot be waited for: {}", std::io::Error::last_os_error()));
        }
        // A running child leaves si_pid 0.
        if unsafe { info.si_pid() } == 0 {
            return None;
        }
        let status = unsafe { info.si_status() };
        Some(match info.si_code {
            libc::CLD_EXITED => format!("exited with status {status}"),
            _ => format!("was killed by signal {status}"),
        })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Nothing else reaps the leader, so until the `wait` below the group
        // id cannot have been reused by an unrelated process.
        let pgid = self.child.id() as libc::pid_t;
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(8);
        while self.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whatever of the group is left (workers, a leader that ignored
        // SIGTERM) goes now; the leader is at most a zombie, so pgid is ours.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// `n` free TCP ports on 127.0.0.1 (all distinct: the listeners
/// are held until every port is chosen).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0")).collect();
    listeners.iter().map(|l| l.local_addr().expect("local addr").port()).collect()
}

/// Polls `f` every 100 ms until it returns `Ok`, for at most `timeout`;
/// panics with the last error otherwise.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() >= deadline => panic!("timed out after {timeout:?} waiting for {what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
