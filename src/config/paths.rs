//! File paths in a configuration: relative ones are taken from the
//! configuration file's directory (Prometheus' `SetDirectory`), and file
//! lists may hold a `*` in their last component (Go's `filepath.Glob`).

use std::path::{Component, Path, PathBuf};

/// `path` joined onto `dir` unless it is empty or absolute, then cleaned
/// lexically like Go's `filepath.Join` (so `a/../b` becomes `b`).
pub fn join_dir(dir: &Path, path: &str) -> String {
    if path.is_empty() || Path::new(path).is_absolute() {
        return path.to_string();
    }
    clean(&dir.join(path)).to_string_lossy().into_owned()
}

/// Removes `.` components and resolves `..` against the preceding component.
fn clean(p: &Path) -> PathBuf {
    let mut out: Vec<Component> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            c => out.push(c),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_relative_paths_like_go() {
        let dir = Path::new("/etc/prometheus");
        assert_eq!(join_dir(dir, "rules/a.yml"), "/etc/prometheus/rules/a.yml");
        assert_eq!(join_dir(dir, "../certs/ca.pem"), "/etc/certs/ca.pem");
        assert_eq!(join_dir(dir, "./x.json"), "/etc/prometheus/x.json");
        assert_eq!(join_dir(dir, "/abs/file"), "/abs/file");
        assert_eq!(join_dir(dir, ""), "");
        assert_eq!(join_dir(Path::new("."), "a.yml"), "a.yml");
    }
}
