//! File-based service discovery against real files: changes, broken files,
//! deletions, glob matches and Kubernetes-style `..data` symlink swaps.
#![cfg(unix)]

use std::collections::BTreeMap;
use std::fs::{File, FileTimes};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hearth::discovery::{self, DiscoveryMetrics, FileSd, FileWatch, Groups, Provider, TargetGroup};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};

/// Upper bound for anything the discovery should notice (it polls every second).
const WAIT: Duration = Duration::from_secs(10);
/// Long enough that only change detection, not the periodic re-read, can explain an update.
const NO_REFRESH: Duration = Duration::from_secs(3600);

fn path_str(p: &Path) -> String {
    p.to_str().expect("temp paths are UTF-8").to_string()
}

/// The `__address__` of every target, group by group.
fn addresses<G: std::borrow::Borrow<TargetGroup>>(groups: &[G]) -> Vec<Vec<String>> {
    groups.iter().map(|g| g.borrow().targets.iter().map(|t| t["__address__"].clone()).collect()).collect()
}

/// Receives until a list satisfies `want`, within [`WAIT`].
async fn recv_until(rx: &mut mpsc::Receiver<Vec<TargetGroup>>, want: impl Fn(&[TargetGroup]) -> bool) -> Vec<TargetGroup> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(groups)) if want(&groups) => return groups,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("file SD stopped"),
            Err(_) => panic!("no matching update within {WAIT:?}"),
        }
    }
}

/// Starts file SD on `files` with its own metrics and registry.
fn start(files: Vec<String>) -> (tokio::task::JoinHandle<()>, mpsc::Receiver<Vec<TargetGroup>>, Registry) {
    let metrics = DiscoveryMetrics::default();
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let (tx, rx) = mpsc::channel(16);
    let task = tokio::spawn(FileSd::new(files, NO_REFRESH, metrics).run(tx));
    (task, rx, registry)
}

fn read_errors(registry: &Registry) -> u64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).expect("encode metrics");
    text.lines()
        .find_map(|l| l.strip_prefix("prometheus_sd_file_read_errors_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("read error counter present")
}

/// Replaces `path` atomically, as config management tools do.
fn replace(path: &Path, content: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).expect("write temp file");
    std::fs::rename(&tmp, path).expect("rename into place");
}

#[tokio::test]
async fn json_file_lifecycle() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("targets.json");
    let file = path_str(&path);
    std::fs::write(&path, r#"[{"targets": ["a:9100"], "labels": {"env": "prod"}}]"#).expect("write");
    let (task, mut rx, registry) = start(vec![file.clone()]);

    let groups = recv_until(&mut rx, |_| true).await;
    assert_eq!(addresses(&groups), [["a:9100"]]);
    assert_eq!(groups[0].source, format!("{file}:0"));
    assert_eq!(groups[0].labels["env"], "prod");
    assert_eq!(groups[0].labels["__meta_filepath"], file);

    // Overwritten in place with the same length: only the content tells.
    let mut f = File::options().write(true).open(&path).expect("open for overwrite");
    f.write_all(br#"[{"targets": ["b:9100"], "labels": {"env": "prod"}}]"#).expect("overwrite");
    drop(f);
    let groups = recv_until(&mut rx, |g| addresses(g) == [["b:9100"]]).await;
    assert_eq!(groups.len(), 1);

    // Broken: the previous groups stay, and the error is counted. (A read
    // racing the overwrite above may have failed already; count from here.)
    let errors_before = read_errors(&registry);
    replace(&path, r#"[{"targets": ["c:9100"]"#);
    let deadline = tokio::time::Instant::now() + WAIT;
    while read_errors(&registry) == errors_before {
        assert!(tokio::time::Instant::now() < deadline, "the broken file was not reported within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(rx.try_recv().is_err(), "a broken file must not change the groups");

    // Fixed again, with a second group.
    replace(&path, r#"[{"targets": ["c:9100"]}, {"targets": ["d:9100", "e:9100"]}]"#);
    let groups = recv_until(&mut rx, |g| g.len() == 2).await;
    assert_eq!(addresses(&groups), vec![vec!["c:9100"], vec!["d:9100", "e:9100"]]);
    assert_eq!(groups[1].source, format!("{file}:1"));
    assert_eq!(read_errors(&registry), errors_before + 1, "one broken version, read once");

    // Deleted: its groups are gone.
    std::fs::remove_file(&path).expect("remove");
    recv_until(&mut rx, |g| g.is_empty()).await;
    task.abort();
}

#[tokio::test]
async fn glob_picks_up_new_and_removed_yaml_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("b.yml"), "- targets: ['b:1']\n").expect("write");
    std::fs::write(dir.path().join("ignored.json"), r#"[{"targets": ["x:1"]}]"#).expect("write");
    let (task, mut rx, registry) = start(vec![format!("{}/*.yml", path_str(dir.path()))]);

    let groups = recv_until(&mut rx, |_| true).await;
    assert_eq!(addresses(&groups), [["b:1"]]);

    replace(&dir.path().join("a.yml"), "- targets: ['a:1']\n  labels: {team: x}\n");
    let groups = recv_until(&mut rx, |g| g.len() == 2).await;
    assert_eq!(addresses(&groups), [["a:1"], ["b:1"]], "files in name order");
    assert_eq!(groups[0].labels["__meta_filepath"], path_str(&dir.path().join("a.yml")));

    std::fs::remove_file(dir.path().join("b.yml")).expect("remove");
    let groups = recv_until(&mut rx, |g| g.len() == 1).await;
    assert_eq!(addresses(&groups), [["a:1"]]);
    assert_eq!(read_errors(&registry), 0);
    task.abort();
}

/// Writes version directory `version` of a Kubernetes volume, holding `targets.yml`.
fn k8s_prepare(dir: &Path, version: &str, content: &str, mtime: SystemTime) {
    let vdir = dir.join(version);
    std::fs::create_dir(&vdir).expect("version dir");
    std::fs::write(vdir.join("targets.yml"), content).expect("write");
    set_mtime(&vdir.join("targets.yml"), mtime);
}

/// Points the volume at `version` as the kubelet does: a new `..data` symlink
/// renamed over the old one; `targets.yml -> ..data/targets.yml` stays.
fn k8s_activate(dir: &Path, version: &str) {
    std::os::unix::fs::symlink(version, dir.join("..data_tmp")).expect("symlink");
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("swap ..data");
    if std::fs::symlink_metadata(dir.join("targets.yml")).is_err() {
        std::os::unix::fs::symlink("..data/targets.yml", dir.join("targets.yml")).expect("key symlink");
    }
}

fn set_mtime(path: &Path, t: SystemTime) {
    File::options().write(true).open(path).expect("open").set_times(FileTimes::new().set_modified(t)).expect("set mtime");
}

#[tokio::test]
async fn kubernetes_configmap_swap_is_detected() {
    let dir = tempfile::tempdir().expect("temp dir");
    let old = SystemTime::now() - Duration::from_secs(3600);
    k8s_prepare(dir.path(), "..2024_01_01", "- targets: ['a:1']\n", old);
    k8s_activate(dir.path(), "..2024_01_01");
    let (task, mut rx, _registry) = start(vec![format!("{}/*.yml", path_str(dir.path()))]);
    let groups = recv_until(&mut rx, |_| true).await;
    assert_eq!(addresses(&groups), [["a:1"]], "only targets.yml matches, not ..data");

    // Same length and mtime, as restored from the ConfigMap.
    k8s_prepare(dir.path(), "..2024_01_02", "- targets: ['b:1']\n", old);
    k8s_activate(dir.path(), "..2024_01_02");
    std::fs::remove_dir_all(dir.path().join("..2024_01_01")).expect("remove old version");
    let groups = recv_until(&mut rx, |g| addresses(g) == [["b:1"]]).await;
    assert_eq!(groups[0].labels["__meta_filepath"], path_str(&dir.path().join("targets.yml")));
    task.abort();
}

#[test]
fn file_watch_sees_symlink_swaps_but_not_touches() {
    let dir = tempfile::tempdir().expect("temp dir");
    let old = SystemTime::now() - Duration::from_secs(3600);
    k8s_prepare(dir.path(), "..v1", "- targets: ['a:1']\n", old);
    k8s_prepare(dir.path(), "..v2", "- targets: ['a:1']\n", old);
    k8s_prepare(dir.path(), "..v3", "- targets: ['b:1']\n", old);
    k8s_activate(dir.path(), "..v1");
    // Let every timestamp age past FileWatch's racy window (2 s), after which
    // it trusts unchanged metadata without re-hashing: the swaps below must
    // then show in the metadata itself.
    std::thread::sleep(Duration::from_millis(2100));
    let mut watch = FileWatch::new(dir.path().join("targets.yml"));
    assert!(!watch.changed(), "baseline");
    assert!(!watch.changed());

    k8s_activate(dir.path(), "..v2");
    assert!(!watch.changed(), "swap to identical content");

    // Same length, same mtime, old ctime: only the inode differs.
    k8s_activate(dir.path(), "..v3");
    assert!(watch.changed(), "swap to new content");
    assert!(!watch.changed());

    // Rewritten in place with the mtime put back (`cp -p`): the inode change time tells.
    let current = dir.path().join("..v3/targets.yml");
    std::fs::write(&current, "- targets: ['c:1']\n").expect("rewrite");
    set_mtime(&current, old);
    assert!(watch.changed(), "rewrite with preserved mtime");

    // Touch: new mtime, same content.
    set_mtime(&current, SystemTime::now());
    assert!(!watch.changed(), "touch without change");
}

#[tokio::test]
async fn discovery_merges_static_and_file_groups() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.json");
    std::fs::write(&path, r#"[{"targets": ["f:1"]}]"#).expect("write");
    let static_group = TargetGroup::from_static("0".into(), &["s:1".into()], &BTreeMap::new());
    let providers = vec![
        Provider::Static(vec![static_group]),
        Provider::File(FileSd::new(vec![path_str(&path)], NO_REFRESH, DiscoveryMetrics::default())),
    ];
    let (discovery, mut rx) = discovery::spawn("pool".into(), providers, Duration::from_millis(100));

    let view = wait_view(&mut rx, |v| v.len() == 2).await;
    assert_eq!(addresses(&view), [["s:1"], ["f:1"]], "provider order");

    replace(&path, r#"[{"targets": ["g:1"]}]"#);
    wait_view(&mut rx, |v| addresses(v) == [["s:1"], ["g:1"]]).await;

    std::fs::remove_file(&path).expect("remove");
    wait_view(&mut rx, |v| addresses(v) == [["s:1"]]).await;

    drop(discovery);
    let closed = tokio::time::timeout(WAIT, async { while rx.changed().await.is_ok() {} }).await;
    assert!(closed.is_ok(), "dropping the Discovery stops it");
}

/// Waits, within [`WAIT`], for a published view satisfying `want`.
async fn wait_view(rx: &mut watch::Receiver<Arc<Groups>>, want: impl Fn(&[Arc<TargetGroup>]) -> bool) -> Arc<Groups> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let view = rx.borrow_and_update().clone();
        if want(&view) {
            return view;
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => panic!("discovery stopped"),
            Err(_) => panic!("no matching view within {WAIT:?}; last {view:?}"),
        }
    }
}
