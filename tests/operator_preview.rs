//! `hearth operator preview` on representative objects (tests/operator/*/):
//! the report and the generated files equal the golden files in each
//! case's `expected/` directory (refresh them with
//! `HEARTH_UPDATE_GOLDEN=1 cargo test --test operator_preview` and review
//! the diff), the configurations pass `hearth check config` as written
//! (they name the rule and credential files where preview put them), and
//! the rule files pass `promtool check rules`. Debian's promtool has no
//! Kubernetes SD, so it checks the configurations with
//! `kubernetes_sd_configs` replaced by empty `static_configs` (everything
//! else unchanged).

#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn say(msg: String) {
    eprintln!("[operator_preview] {msg}");
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.expect("entry").path();
            if p.is_dir() { stack.push(p) } else { out.push(p.strip_prefix(dir).expect("prefix").to_path_buf()) }
        }
    }
    out.sort();
    out
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn previews_match_golden_files_and_pass_the_checkers() {
    support::peers::install(say);
    let cases = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/operator");
    let update = std::env::var_os("HEARTH_UPDATE_GOLDEN").is_some();
    let mut n = 0;
    for case in std::fs::read_dir(&cases).expect("tests/operator").map(|e| e.expect("entry").path()).filter(|p| p.is_dir()) {
        n += 1;
        let out = tempfile::tempdir().expect("tempdir");
        let (ok, report) = run(Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["operator", "preview", "-f"])
            .arg(case.join("objects.yaml"))
            .arg("-o")
            .arg(out.path()));
        assert!(ok, "{}: preview failed:\n{report}", case.display());
        let report = report.replace(&out.path().display().to_string(), "OUT");
        let expected = case.join("expected");
        if update {
            let _ = std::fs::remove_dir_all(&expected);
            std::fs::create_dir_all(&expected).expect("mkdir");
            std::fs::write(expected.join("report.txt"), &report).expect("write");
            for f in files_under(out.path()) {
                let dst = expected.join(&f);
                std::fs::create_dir_all(dst.parent().expect("parent")).expect("mkdir");
                std::fs::copy(out.path().join(&f), dst).expect("copy");
            }
        }
        let golden = |f: &Path| std::fs::read_to_string(expected.join(f)).unwrap_or_else(|e| panic!("{}: {e}", expected.join(f).display()));
        assert_eq!(report, golden(Path::new("report.txt")), "{}: report differs from expected/report.txt", case.display());
        let generated = files_under(out.path());
        let mut want = files_under(&expected);
        want.retain(|f| f != Path::new("report.txt"));
        assert_eq!(generated, want, "{}: generated files differ from expected/", case.display());
        for f in &generated {
            let text = std::fs::read_to_string(out.path().join(f)).expect("read");
            assert_eq!(text, golden(f), "{}: {} differs from the golden file", case.display(), f.display());
            let path = out.path().join(f);
            if f.file_name().is_some_and(|n| n == "web-config.yaml") {
                // Its file names are relative: beside it, as in the pod.
                let (ok, msg) = run(Command::new("promtool").args(["check", "web-config"]).arg(&path));
                assert!(ok, "promtool check web-config {}:\n{msg}", f.display());
                continue;
            }
            if f.components().any(|c| c.as_os_str() == "files") {
                // Secret values, not configurations.
                continue;
            }
            if f.components().any(|c| c.as_os_str() == "rules") {
                let (ok, msg) = run(Command::new("promtool").args(["check", "rules"]).arg(&path));
                assert!(ok, "promtool check rules {}:\n{msg}", f.display());
            } else {
                // The configuration names its rule and credential files
                // where preview wrote them: checked as it is.
                let path = with_pod_files(&path);
                let (ok, msg) = run(Command::new(env!("CARGO_BIN_EXE_hearth")).args(["check", "config"]).arg(&path));
                assert!(ok, "hearth check config {}:\n{msg}", f.display());
                let (ok, msg) = promtool_check_config(&path);
                assert!(ok, "promtool check config {}:\n{msg}", f.display());
            }
        }
    }
    assert!(n >= 1, "no cases under tests/operator");
}

/// The service-account directory every server pod has mounted.
const POD_SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount/";

/// `config`, or, when it names files of the pod's service-account directory
/// (`bearerTokenFile`, `caFile`), a copy beside it naming stand-ins for
/// them: both checkers want a named token file to exist, and this machine
/// is no pod.
fn with_pod_files(config: &Path) -> PathBuf {
    let text = std::fs::read_to_string(config).expect("read");
    if !text.contains(POD_SA_DIR) {
        return config.to_path_buf();
    }
    let dir = config.with_file_name("pod-serviceaccount");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for f in ["token", "ca.crt"] {
        std::fs::write(dir.join(f), "stand-in\n").expect("write");
    }
    let copy = config.with_file_name(format!("pod-{}", config.file_name().expect("name").to_string_lossy()));
    std::fs::write(&copy, text.replace(POD_SA_DIR, &format!("{}/", dir.display()))).expect("write");
    copy
}

/// `promtool check config` on a copy of `config` beside it (so that its
/// relative paths resolve the same) with `kubernetes_sd_configs` swapped
/// for empty `static_configs`, which Debian's promtool lacks.
fn promtool_check_config(config: &Path) -> (bool, String) {
    let text = std::fs::read_to_string(config).expect("read");
    let mut doc: serde_json::Value = serde_saphyr::from_str(&text).expect("generated YAML");
    swap_kubernetes_sd(&mut doc);
    let copy = config.with_file_name(format!("promtool-{}", config.file_name().expect("name").to_string_lossy()));
    std::fs::write(&copy, serde_saphyr::to_string(&doc).expect("encode")).expect("write");
    let result = run(Command::new("promtool").args(["check", "config"]).arg(&copy));
    std::fs::remove_file(&copy).expect("remove the copy");
    result
}

/// The credentials case's configuration names its files where preview
/// wrote them (`files/`), so both checkers take the output directory as
/// it is, and they fail without those files (the paths are really used).
#[test]
fn the_credentials_preview_is_checkable_as_written() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/operator/credentials/objects.yaml");
    let out = tempfile::tempdir().expect("tempdir");
    let (ok, report) =
        run(Command::new(env!("CARGO_BIN_EXE_hearth")).args(["operator", "preview", "-f"]).arg(&case).arg("-o").arg(out.path()));
    assert!(ok, "preview failed:\n{report}");
    let dir = out.path().join("monitoring/secure");
    let config = dir.join("prometheus.yaml");
    let text = std::fs::read_to_string(&config).expect("prometheus.yaml");
    for f in [
        "files/secret_apps_scrape-auth_password",
        "files/secret_apps_scrape-auth_ca.crt",
        "files/secret_apps_scrape-auth_token",
        "files/secret_monitoring_mimir_password",
    ] {
        assert!(text.contains(f), "{f} not named: {text}");
        assert!(dir.join(f).is_file(), "{f} not written");
    }
    let (ok, msg) = run(Command::new(env!("CARGO_BIN_EXE_hearth")).args(["check", "config"]).arg(&config));
    assert!(ok, "hearth check config {}:\n{msg}", config.display());
    let promtool = Command::new("promtool").arg("--version").output().is_ok_and(|o| o.status.success());
    if promtool {
        let (ok, msg) = promtool_check_config(&config);
        assert!(ok, "promtool check config {}:\n{msg}", config.display());
    } else {
        say("promtool is not installed: only hearth check config ran".into());
    }

    // Without a file the configuration names, the check fails (it stats
    // credentials files): the paths above are the ones it reads.
    std::fs::remove_file(dir.join("files/secret_apps_scrape-auth_token")).expect("remove");
    let (ok, msg) = run(Command::new(env!("CARGO_BIN_EXE_hearth")).args(["check", "config"]).arg(&config));
    assert!(!ok && msg.contains("files/secret_apps_scrape-auth_token"), "{msg}");
}

/// Replaces every `kubernetes_sd_configs` with empty `static_configs`.
fn swap_kubernetes_sd(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            if o.remove("kubernetes_sd_configs").is_some() {
                o.insert("static_configs".into(), serde_json::json!([]));
            }
            o.values_mut().for_each(swap_kubernetes_sd);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(swap_kubernetes_sd),
        _ => {}
    }
}

/// An Alertmanager entry is a Service (`name`, `port`) or a `url`, never
/// both, never neither; a URL carries no credentials, query or fragment.
/// The CRD's CEL rule says the same, but the operator checks it itself
/// (an API server may skip CEL; preview has none).
#[test]
fn alertmanager_entries_must_be_a_service_or_a_url() {
    let cases = [
        ("url: http://am.example:9093\n      port: web", "url excludes name, namespace, port, scheme and pathPrefix"),
        ("url: http://am.example:9093\n      pathPrefix: /am", "url excludes name, namespace, port, scheme and pathPrefix"),
        ("namespace: alerting\n      port: web", "either url, or name and port of the Alertmanager Service"),
        ("name: alertmanager", "either url, or name and port of the Alertmanager Service"),
        ("url: https://user:pw@am.example", "credentials go in basicAuth or authorization"),
        ("url: http://am.example:9093/?x=1", "a query or fragment cannot be part"),
        ("url: 'http://'", "url \"http://\""),
    ];
    for (entry, message) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let objects = dir.path().join("objects.yaml");
        std::fs::write(
            &objects,
            format!(
                "apiVersion: monitoring.hearth.dev/v1alpha1\nkind: Prometheus\nmetadata: {{name: p, namespace: monitoring}}\n\
                 spec:\n  alerting:\n    alertmanagers:\n    - name: fine\n      port: 9093\n    - {entry}\n"
            ),
        )
        .expect("write");
        let (ok, report) = run(Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["operator", "preview", "-f"])
            .arg(&objects)
            .arg("-o")
            .arg(dir.path().join("out")));
        assert!(!ok, "{entry}: accepted:\n{report}");
        assert!(report.contains("Prometheus monitoring/p: FAILED: alerting.alertmanagers[1]: "), "{entry}: {report}");
        assert!(report.contains(message), "{entry}: {report}");
    }
}
