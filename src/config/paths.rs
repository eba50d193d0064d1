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

/// The files matching `pattern`, sorted; wildcards (`*`, `?`, `[...]`) are
/// honoured in the last path component only, which is all Prometheus allows
/// for rule files and file SD. A pattern without wildcards yields itself if
/// it exists. A directory that cannot be read yields nothing, as in Go.
pub fn glob(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !name.contains(['*', '?', '[']) {
        return if path.exists() { vec![path.to_path_buf()] } else { Vec::new() };
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let pattern: Vec<char> = name.chars().collect();
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let n: Vec<char> = e.file_name().to_string_lossy().chars().collect();
            wildcard_match(&pattern, &n)
        })
        .map(|e| dir.join(e.file_name()))
        .collect();
    out.sort();
    out
}

/// Go `path.Match` semantics for one component: `*`, `?`, `[abc]`, `[a-z]`, `[^a]`.
fn wildcard_match(p: &[char], s: &[char]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some(('*', rest)) => (0..=s.len()).any(|k| wildcard_match(rest, &s[k..])),
        Some(('?', rest)) => !s.is_empty() && wildcard_match(rest, &s[1..]),
        Some(('[', rest)) => {
            let Some((&c, s_rest)) = s.split_first() else { return false };
            let Some(end) = rest.iter().skip(1).position(|&x| x == ']').map(|i| i + 1) else {
                return false;
            };
            let (negate, class) = match rest[..end].split_first() {
                Some(('^', cls)) => (true, cls),
                _ => (false, &rest[..end]),
            };
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    hit |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit != negate && wildcard_match(&rest[end + 1..], s_rest)
        }
        Some((&lit, rest)) => s.first() == Some(&lit) && wildcard_match(rest, &s[1..]),
    }
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

    #[test]
    fn wildcards_match_one_component() {
        let m = |p: &str, s: &str| wildcard_match(&p.chars().collect::<Vec<_>>(), &s.chars().collect::<Vec<_>>());
        assert!(m("*.yml", "a.yml"));
        assert!(!m("*.yml", "a.yaml"));
        assert!(m("r?les.yml", "rules.yml"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[^a-c]x", "bx"));
        assert!(m("*", ""));
    }

    #[test]
    fn glob_lists_matching_files_sorted() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["b.yml", "a.yml", "c.json"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let pat = dir.path().join("*.yml");
        let got = glob(&pat.to_string_lossy());
        assert_eq!(got, vec![dir.path().join("a.yml"), dir.path().join("b.yml")]);
        assert_eq!(glob(&dir.path().join("c.json").to_string_lossy()).len(), 1);
        assert!(glob(&dir.path().join("missing.json").to_string_lossy()).is_empty());
    }
}
