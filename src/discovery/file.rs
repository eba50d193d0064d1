//! `file_sd_configs`: target groups from JSON or YAML files, Prometheus'
//! `discovery/file`.
//!
//! Instead of inotify (unreliable for the symlink swaps of Kubernetes volume
//! mounts, and unavailable on some filesystems) the files are polled: every
//! second the patterns are expanded again and each file's metadata is checked
//! through a [`FileWatch`]; a changed file is re-read, and every file is
//! re-read each refresh interval regardless.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::mpsc;

use super::DiscoveryMetrics;
use super::file_watch::FileWatch;
use super::glob::FilePattern;
use super::target_group::{ADDRESS_LABEL, TargetGroup, is_valid_label_name};

/// The label every file-discovered group carries: the file it came from.
pub const FILEPATH_LABEL: &str = "__meta_filepath";

/// How often the files' metadata is checked for changes.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Why one file's target groups could not be read; its previous groups stay.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// Opening or reading failed (including a dangling symlink).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The format follows from the extension; there is no other hint.
    #[error("the name must end in .json, .yml or .yaml")]
    UnknownExtension,
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The parser's message without its source snippet, to fit on one log line.
    #[error("invalid YAML: {0}")]
    Yaml(String),
    /// A `null` list entry, which Prometheus rejects too.
    #[error("target group {0} is null")]
    NullGroup(usize),
    #[error("target group {group}: {name:?} is not a valid label name")]
    InvalidLabelName { group: usize, name: String },
}

/// A group as written in a file. Unknown keys are errors, as in Prometheus
/// (strict YAML, JSON with `DisallowUnknownFields`). A `null` target or label
/// value reads as the empty string, as Go's decoders do.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    #[serde(default)]
    targets: Option<Vec<Option<String>>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, Option<String>>>,
}

/// Parses a file's content into its groups: sources `<path>:<index>`, and
/// `__meta_filepath` set on each group (overriding any such label in the file).
pub(crate) fn parse_groups(path: &str, content: &[u8]) -> Result<Vec<TargetGroup>, ReadError> {
    let extension = path.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
    // An empty YAML document or `null` means no groups; so does JSON `null`.
    let groups: Option<Vec<Option<FileGroup>>> = match extension.as_str() {
        "json" => serde_json::from_slice(content)?,
        "yml" | "yaml" => {
            let text = std::str::from_utf8(content).map_err(|e| ReadError::Yaml(e.to_string()))?;
            serde_saphyr::from_str(text).map_err(|e| ReadError::Yaml(e.without_snippet().to_string()))?
        }
        _ => return Err(ReadError::UnknownExtension),
    };
    let mut out = Vec::new();
    for (index, group) in groups.unwrap_or_default().into_iter().enumerate() {
        let group = group.ok_or(ReadError::NullGroup(index))?;
        let mut labels = BTreeMap::new();
        for (name, value) in group.labels.unwrap_or_default() {
            if !is_valid_label_name(&name) {
                return Err(ReadError::InvalidLabelName { group: index, name });
            }
            labels.insert(name, value.unwrap_or_default());
        }
        labels.insert(FILEPATH_LABEL.to_string(), path.to_string());
        let targets = group
            .targets
            .unwrap_or_default()
            .into_iter()
            .map(|t| BTreeMap::from([(ADDRESS_LABEL.to_string(), t.unwrap_or_default())]))
            .collect();
        out.push(TargetGroup { source: format!("{path}:{index}"), targets, labels });
    }
    Ok(out)
}

/// File-based service discovery over a set of paths and patterns.
pub struct FileSd {
    patterns: Vec<FilePattern>,
    refresh: Duration,
    metrics: DiscoveryMetrics,
}

impl FileSd {
    /// `files`: absolute paths or patterns whose last element may contain
    /// `*`/`?`/`[...]` (Prometheus allows globs only in the final path
    /// element); a malformed pattern is logged and ignored, as Prometheus
    /// skips a glob it cannot expand. `refresh`: re-read interval (Prometheus
    /// default 5m); changes are noticed sooner by polling.
    pub fn new(files: Vec<String>, refresh: Duration, metrics: DiscoveryMetrics) -> FileSd {
        let patterns = files
            .iter()
            .filter_map(|f| match FilePattern::parse(f) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::error!(error = %e, "file_sd: ignoring pattern");
                    None
                }
            })
            .collect();
        FileSd { patterns, refresh, metrics }
    }

    /// Runs until the task is dropped/aborted (or `tx` is closed), sending the
    /// complete current list of groups from these files after each change
    /// (first send right away). File I/O runs on the blocking pool so that a
    /// slow mount cannot stall the runtime.
    pub async fn run(self, tx: mpsc::Sender<Vec<TargetGroup>>) {
        let poll_every = self.refresh.clamp(Duration::from_millis(10), POLL_INTERVAL);
        let refresh = self.refresh;
        let mut scan = Scan { patterns: self.patterns, metrics: self.metrics, files: HashMap::new(), order: Vec::new() };
        let mut last_full = Instant::now();
        let mut full = true;
        let mut first = true;
        loop {
            let (back, changed) = match tokio::task::spawn_blocking(move || {
                let changed = scan.poll(full);
                (scan, changed)
            })
            .await
            {
                Ok(done) => done,
                Err(e) => {
                    tracing::error!(error = %e, "file_sd: scan failed; discovery from these files stops");
                    return;
                }
            };
            scan = back;
            if full {
                last_full = Instant::now();
            }
            if (changed || first) && tx.send(scan.groups()).await.is_err() {
                return;
            }
            first = false;
            tokio::time::sleep(poll_every).await;
            full = last_full.elapsed() >= refresh;
        }
    }
}

/// The polling state, moved to the blocking pool and back for each poll.
struct Scan {
    patterns: Vec<FilePattern>,
    metrics: DiscoveryMetrics,
    files: HashMap<String, WatchedFile>,
    /// The files currently matched, in pattern order then name order.
    order: Vec<String>,
}

/// A matched file and the groups last read from it successfully.
struct WatchedFile {
    watch: FileWatch,
    groups: Vec<TargetGroup>,
}

impl Scan {
    /// Expands the patterns and re-reads new files, changed files, and on a
    /// `full` refresh all files. Returns whether the groups changed.
    fn poll(&mut self, full: bool) -> bool {
        let mut seen = HashSet::new();
        let order: Vec<String> = self.patterns.iter().flat_map(FilePattern::list).filter(|p| seen.insert(p.clone())).collect();
        let mut changed = false;
        let mut files = HashMap::with_capacity(order.len());
        let mut read_any = false;
        let started = Instant::now();
        for path in &order {
            let (mut file, is_new) = match self.files.remove(path) {
                Some(file) => (file, false),
                None => (WatchedFile { watch: FileWatch::new(PathBuf::from(path)), groups: Vec::new() }, true),
            };
            // Always consult the watch first: whatever it saw is then read below.
            let modified = file.watch.changed();
            if is_new || modified || full {
                read_any = true;
                match std::fs::read(path).map_err(ReadError::from).and_then(|content| parse_groups(path, &content)) {
                    Ok(groups) => {
                        changed |= groups != file.groups;
                        file.groups = groups;
                    }
                    Err(e) => {
                        self.metrics.file_read_errors.inc();
                        tracing::warn!(path = %path, error = %e, "file_sd: cannot read target groups; keeping the previous ones");
                    }
                }
            }
            files.insert(path.clone(), file);
        }
        // Files no longer matched take their groups with them.
        changed |= self.files.values().any(|f| !f.groups.is_empty());
        if read_any {
            self.metrics.file_scan_duration.observe(started.elapsed().as_secs_f64());
        }
        self.files = files;
        self.order = order;
        changed
    }

    /// All current groups, file by file.
    fn groups(&self) -> Vec<TargetGroup> {
        self.order.iter().filter_map(|p| self.files.get(p)).flat_map(|f| f.groups.iter().cloned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(g: &TargetGroup) -> Vec<&str> {
        g.targets.iter().map(|t| t[ADDRESS_LABEL].as_str()).collect()
    }

    #[test]
    fn json_groups() {
        let content = br#"[
            {"targets": ["a:9100", "b:9100"], "labels": {"env": "prod"}},
            {"targets": ["c:9100"]},
            {"labels": {"__meta_filepath": "spoofed", "x": null}}
        ]"#;
        let groups = parse_groups("/sd/t.json", content).expect("valid");
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].source, "/sd/t.json:0");
        assert_eq!(addresses(&groups[0]), ["a:9100", "b:9100"]);
        assert_eq!(groups[0].labels["env"], "prod");
        assert_eq!(groups[0].labels[FILEPATH_LABEL], "/sd/t.json");
        assert_eq!(groups[1].source, "/sd/t.json:1");
        assert_eq!(groups[1].labels.len(), 1);
        assert!(groups[2].targets.is_empty());
        assert_eq!(groups[2].labels[FILEPATH_LABEL], "/sd/t.json", "the file path wins");
        assert_eq!(groups[2].labels["x"], "");
        assert_eq!(parse_groups("/sd/T.JSON", b"null").expect("null is no groups"), vec![]);
    }

    #[test]
    fn yaml_groups() {
        let content = "- targets: ['a:9100', b:9100]\n  labels:\n    env: prod\n    port: 8080\n- targets: []\n";
        for path in ["/sd/t.yml", "/sd/t.yaml", "/sd/t.YML"] {
            let groups = parse_groups(path, content.as_bytes()).expect("valid");
            assert_eq!(groups.len(), 2);
            assert_eq!(addresses(&groups[0]), ["a:9100", "b:9100"]);
            assert_eq!(groups[0].labels["port"], "8080", "scalars read as their text, as in yaml.v2");
            assert_eq!(groups[1].source, format!("{path}:1"));
            assert_eq!(groups[1].labels[FILEPATH_LABEL], path);
        }
        assert_eq!(parse_groups("/sd/empty.yml", b"").expect("empty YAML is no groups"), vec![]);
        assert_eq!(parse_groups("/sd/empty.yml", b"# nothing yet\n").expect("comment only"), vec![]);
    }

    #[test]
    fn malformed_files_are_errors() {
        let cases: &[(&str, &str, &str)] = &[
            ("t.json", "", "invalid JSON"),
            ("t.json", "[{\"targets\": [\"a\"]", "invalid JSON"),
            ("t.json", "{\"targets\": [\"a\"]}", "invalid JSON"),
            ("t.json", "[{\"targets\": [\"a\"], \"extra\": 1}]", "unknown field"),
            ("t.json", "[{\"targets\": [1]}]", "invalid JSON"),
            ("t.json", "[{\"targets\": \"a:1\"}]", "invalid JSON"),
            ("t.json", "[{\"targets\": [\"a\"], \"labels\": {\"x\": 1}}]", "invalid JSON"),
            ("t.json", "[null]", "target group 0 is null"),
            ("t.json", "[{\"targets\": [\"a\"], \"labels\": {\"a-b\": \"1\"}}]", "\"a-b\" is not a valid label name"),
            ("t.yml", "- targets: [a]\n  extra: 1\n", "unknown field"),
            ("t.yml", "- targets: [[a]]\n", "invalid YAML"),
            ("t.yml", "targets: [a]\n", "invalid YAML"),
            ("t.yml", "- labels: {a: 1, a: 2}\n", "duplicate"),
            ("t.yml", "- targets: [a]\n- labels: {'': x}\n", "target group 1: \"\" is not a valid label name"),
            ("t.yml", "- targets: [a\n", "invalid YAML"),
            ("t.txt", "[]", "must end in .json, .yml or .yaml"),
            ("json", "[]", "must end in .json, .yml or .yaml"),
        ];
        for (path, content, want) in cases {
            match parse_groups(path, content.as_bytes()) {
                Ok(g) => panic!("{path} {content:?} parsed as {g:?}"),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains(want), "{path} {content:?}: {msg:?} lacks {want:?}");
                    assert!(!msg.contains('\n'), "one-line message for the log: {msg:?}");
                }
            }
        }
    }
}
