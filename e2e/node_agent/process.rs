//! Turning a container spec into a local command. There are no images, so
//! the test supplies a table from image prefix to a binary on this host;
//! addresses and paths in the arguments are rewritten so the process
//! listens on its pod's own IP and writes under its pod's directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Image prefix → local binary, first match wins.
#[derive(Clone, Default)]
pub struct ImageTable(pub Vec<(String, PathBuf)>);

impl ImageTable {
    /// The binary for `image` (`repo[:tag][@digest]`), matched on prefix.
    pub fn binary(&self, image: &str) -> Option<&Path> {
        self.0.iter().find(|(prefix, _)| image.starts_with(prefix.as_str())).map(|(_, b)| b.as_path())
    }
}

/// Rewrites one argument: a `0.0.0.0` or an empty host (`:9100`,
/// `--flag=:9100`) becomes the pod IP; a value starting with a volume
/// mount path is moved to that volume's host directory.
pub fn rewrite_arg(arg: &str, ip: &str, mounts: &[(String, PathBuf)]) -> String {
    let arg = arg.replace("0.0.0.0", ip);
    let (head, value) = match arg.split_once('=') {
        Some((h, v)) if h.starts_with('-') => (format!("{h}="), v.to_string()),
        _ => (String::new(), arg.clone()),
    };
    let value = if value.starts_with(':') { format!("{ip}{value}") } else { value };
    // Longest mount path first, so /etc/a/b wins over /etc/a.
    let mut sorted: Vec<&(String, PathBuf)> = mounts.iter().collect();
    sorted.sort_by_key(|(m, _)| std::cmp::Reverse(m.len()));
    for (mount, host) in sorted {
        let mount = mount.trim_end_matches('/');
        if let Some(rest) = value.strip_prefix(mount)
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return format!("{head}{}{rest}", host.display());
        }
    }
    format!("{head}{value}")
}

/// What to run for one container.
pub struct Launch<'a> {
    pub binary: &'a Path,
    /// `command[1..]` then `args`, already rewritten.
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub workdir: &'a Path,
    pub log: PathBuf,
}

/// Starts the process in its own process group (so SIGTERM/SIGKILL reach
/// whatever it forks) with a clean environment.
pub fn spawn(l: &Launch) -> Result<Child, String> {
    use std::os::unix::process::CommandExt;
    let out = std::fs::OpenOptions::new().create(true).append(true).open(&l.log).map_err(|e| format!("open {}: {e}", l.log.display()))?;
    let err = out.try_clone().map_err(|e| format!("clone log: {e}"))?;
    let mut c = Command::new(l.binary);
    c.args(&l.argv)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", l.workdir)
        .envs(&l.env)
        .current_dir(l.workdir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    c.spawn().map_err(|e| format!("start {}: {e}", l.binary.display()))
}

/// Signals the process group led by `child` if the child is still ours
/// (not yet reaped), so a recycled pid is never hit.
pub fn signal(child: &mut Child, sig: libc::c_int) {
    if let Ok(None) = child.try_wait() {
        unsafe { libc::kill(-(child.id() as libc::pid_t), sig) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_move_to_the_pod_ip() {
        let ip = "127.0.0.7";
        assert_eq!(rewrite_arg("--web.listen-address=0.0.0.0:9100", ip, &[]), "--web.listen-address=127.0.0.7:9100");
        assert_eq!(rewrite_arg("--web.listen-address=:9093", ip, &[]), "--web.listen-address=127.0.0.7:9093");
        assert_eq!(rewrite_arg(":8080", ip, &[]), "127.0.0.7:8080");
        assert_eq!(rewrite_arg("--log.level=info", ip, &[]), "--log.level=info");
    }

    #[test]
    fn mount_paths_move_to_host_dirs() {
        let m =
            vec![("/etc/cfg".to_string(), PathBuf::from("/tmp/p/v/cfg")), ("/etc/cfg/rules".to_string(), PathBuf::from("/tmp/p/v/rules"))];
        assert_eq!(rewrite_arg("--config.file=/etc/cfg/a.yml", "x", &m), "--config.file=/tmp/p/v/cfg/a.yml");
        assert_eq!(rewrite_arg("--rules=/etc/cfg/rules/r.yml", "x", &m), "--rules=/tmp/p/v/rules/r.yml");
        assert_eq!(rewrite_arg("/etc/cfg", "x", &m), "/tmp/p/v/cfg");
        assert_eq!(rewrite_arg("--x=/etc/cfgx", "x", &m), "--x=/etc/cfgx", "prefix must end at a path boundary");
    }

    #[test]
    fn images_match_by_prefix() {
        let t = ImageTable(vec![("quay.io/prometheus/node-exporter".into(), PathBuf::from("/bin/ne"))]);
        assert_eq!(t.binary("quay.io/prometheus/node-exporter:v1.9.0"), Some(Path::new("/bin/ne")));
        assert_eq!(t.binary("quay.io/prometheus/alertmanager"), None);
    }
}
