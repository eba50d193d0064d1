//! `hearth render`: the default install and the examples render and
//! validate, manifests/ is what `hearth render jsonnet/main.jsonnet -m
//! manifests` writes (that it equals the Helm chart's install, which
//! tests/helm.rs checks object by object, is tests/install_parity.rs),
//! validation and Jsonnet errors say where, and the CLI's
//! `-J`, `--ext-str`, stream output and embedded library work; every metric
//! the dashboards and the alert mixin use is one Hearth really exposes (on
//! the /metrics of a real `hearth server` and of a real `hearth operator
//! run` against a fake Kubernetes API).

#[allow(dead_code)]
mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use hearth::render::{EvalOptions, RenderError, RenderedObject, render};
use serde_json::{Value, json};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn hearth(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth")).args(args).current_dir(dir).output().expect("run hearth")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn render_main() -> Vec<RenderedObject> {
    render(&repo().join("jsonnet/main.jsonnet"), &EvalOptions::default()).unwrap_or_else(|e| panic!("main.jsonnet: {e}"))
}

/// The object written to `file`.
fn object<'a>(objects: &'a [RenderedObject], file: &str) -> &'a Value {
    &objects.iter().find(|o| o.file == file).unwrap_or_else(|| panic!("no {file}")).value
}

/// Writes `files` into a new temporary directory.
fn tempdir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
    dir
}

fn files_under(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for sub in ["", "setup"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else { continue };
        for entry in entries {
            let path = entry.expect("entry").path();
            if path.is_file() {
                let name = path.strip_prefix(dir).expect("under dir").to_string_lossy().into_owned();
                out.insert(name, std::fs::read_to_string(&path).expect("read"));
            }
        }
    }
    out
}

#[test]
fn main_and_every_example_render_and_validate() {
    assert!(render_main().len() >= 15);
    let mut examples: Vec<PathBuf> = std::fs::read_dir(repo().join("jsonnet/examples"))
        .expect("jsonnet/examples")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonnet"))
        .collect();
    examples.sort();
    assert!(examples.len() >= 6, "{examples:?}");
    for example in examples {
        // With -J the working copy of the library is used, without it the embedded one: both must work.
        for jpaths in [vec![], vec![repo().join("jsonnet")]] {
            let objects =
                render(&example, &EvalOptions { jpaths, ..Default::default() }).unwrap_or_else(|e| panic!("{}: {e}", example.display()));
            assert!(objects.iter().any(|o| o.value["kind"] == "Prometheus"), "{}", example.display());
        }
    }
}

#[test]
fn manifests_directory_is_up_to_date() {
    let out = tempfile::tempdir().expect("tempdir");
    let run = hearth(&["render", "jsonnet/main.jsonnet", "-m", &out.path().to_string_lossy()], repo());
    assert!(run.status.success(), "{}", stderr(&run));
    let fresh = files_under(out.path());
    let committed = files_under(&repo().join("manifests"));
    let hint = "manifests/ is out of date: run `cargo run -- render jsonnet/main.jsonnet -m manifests`";
    assert_eq!(committed.keys().collect::<Vec<_>>(), fresh.keys().collect::<Vec<_>>(), "{hint}");
    for (file, text) in &fresh {
        assert!(committed.get(file) == Some(text), "manifests/{file} differs. {hint}");
    }
}

#[test]
fn alertmanagers_remote_write_and_volumes_come_from_values() {
    let dir = tempdir_with(&[(
        "install.jsonnet",
        r#"local h = (import 'hearth.libsonnet') + { values+:: { prometheus+: {
             alertmanagers: [{ namespace: 'monitoring', name: 'alertmanager-main', port: 'web' }],
             remoteWrite: [{ url: 'https://mimir.example.com/api/v1/push' }],
             volumeClaimTemplate: { spec: { resources: { requests: { storage: '10Gi' } } } },
           } } };
           h.manifests"#,
    )]);
    let objects = render(&dir.path().join("install.jsonnet"), &EvalOptions::default()).expect("render");
    let spec = &object(&objects, "hearth-prometheus.yaml")["spec"];
    assert_eq!(spec["alerting"], json!({"alertmanagers": [{"namespace": "monitoring", "name": "alertmanager-main", "port": "web"}]}));
    assert_eq!(spec["remoteWrite"], json!([{"url": "https://mimir.example.com/api/v1/push"}]));
    assert_eq!(spec["storage"], json!({"volumeClaimTemplate": {"spec": {"resources": {"requests": {"storage": "10Gi"}}}}}));
}

/// The Kubernetes monitors: the API server, the kubelet (with cAdvisor),
/// the scheduler and the controller manager authenticate with the server
/// pod's own token as kube-prometheus does; all validate, and the operator
/// accepts every one of them (`operator preview`).
#[test]
fn kubernetes_monitors_render_validate_and_are_accepted() {
    let objects = render(&repo().join("jsonnet/examples/full.jsonnet"), &EvalOptions::default()).expect("render");
    let token = "/var/run/secrets/kubernetes.io/serviceaccount/token";
    let monitors: BTreeMap<String, &Value> = objects
        .iter()
        .filter(|o| {
            o.value["kind"] == "ServiceMonitor" && o.value["metadata"]["labels"]["app.kubernetes.io/component"] == "kubernetes-monitor"
        })
        .map(|o| (o.value["metadata"]["name"].as_str().unwrap_or_default().to_string(), &o.value))
        .collect();
    let names: Vec<&str> = monitors.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["coredns", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-state-metrics", "kubelet", "node-exporter"]
    );

    let api = &monitors["kube-apiserver"]["spec"];
    assert_eq!(api["namespaceSelector"], json!({"matchNames": ["default"]}));
    assert_eq!(api["selector"], json!({"matchLabels": {"component": "apiserver", "provider": "kubernetes"}}));
    assert_eq!(api["jobLabel"], "component");
    assert_eq!(
        api["endpoints"],
        json!([{
            "port": "https", "interval": "30s", "scheme": "https", "bearerTokenFile": token,
            "tlsConfig": {"caFile": "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", "serverName": "kubernetes"},
        }])
    );

    let kubelet = &monitors["kubelet"]["spec"];
    assert_eq!(kubelet["namespaceSelector"], json!({"matchNames": ["kube-system"]}));
    assert_eq!(kubelet["selector"], json!({"matchLabels": {"app.kubernetes.io/name": "kubelet"}}));
    let endpoints = kubelet["endpoints"].as_array().expect("endpoints");
    let paths: Vec<&str> = endpoints.iter().filter_map(|e| e["path"].as_str()).collect();
    assert_eq!(paths, ["/metrics", "/metrics/cadvisor"]);
    for e in endpoints {
        assert_eq!((&e["port"], &e["scheme"], &e["bearerTokenFile"]), (&json!("https-metrics"), &json!("https"), &json!(token)), "{e}");
        assert_eq!(e["tlsConfig"], json!({"insecureSkipVerify": true}), "{e}");
        assert_eq!(e["interval"], "30s", "{e}");
    }
    for name in ["kube-scheduler", "kube-controller-manager"] {
        let e = &monitors[name]["spec"]["endpoints"][0];
        assert_eq!(e["bearerTokenFile"], token, "{name}");
        assert_eq!(e["tlsConfig"], json!({"insecureSkipVerify": true}), "{name}");
        assert_eq!(e["port"], "https-metrics", "{name}");
    }

    // The operator accepts them all.
    let docs: Vec<String> = objects
        .iter()
        .filter(|o| o.value["kind"] == "Prometheus" || o.value["kind"] == "ServiceMonitor")
        .map(|o| serde_saphyr::to_string(&o.value).expect("YAML"))
        .collect();
    let dir = tempdir_with(&[("objects.yaml", &docs.join("---\n"))]);
    let run = hearth(&["operator", "preview", "-f", "objects.yaml", "-o", "out"], dir.path());
    let report = String::from_utf8_lossy(&run.stdout).into_owned() + &stderr(&run);
    assert!(run.status.success(), "{report}");
    assert!(!report.contains("rejected"), "{report}");
    for name in monitors.keys() {
        assert!(report.contains(&format!("ServiceMonitor monitoring/{name}: accepted")), "{name}: {report}");
    }
}

/// Each Kubernetes monitor can be left out with null.
#[test]
fn kubernetes_monitors_are_left_out_with_null() {
    let dir = tempdir_with(&[(
        "k.jsonnet",
        r#"local h = (import 'hearth.libsonnet') + { values+:: { kubernetesMonitors+: { kubelet: null, kubeScheduler: null } } };
           h.kubernetesMonitors"#,
    )]);
    let objects = render(&dir.path().join("k.jsonnet"), &EvalOptions::default()).expect("render");
    let mut names: Vec<&str> = objects.iter().filter_map(|o| o.value["metadata"]["name"].as_str()).collect();
    names.sort();
    assert_eq!(names, ["coredns", "kube-apiserver", "kube-controller-manager", "kube-state-metrics", "node-exporter"]);
}

#[test]
fn alertmanager_urls_from_values_follow_the_services() {
    let dir = tempdir_with(&[(
        "install.jsonnet",
        r#"local h = (import 'hearth.libsonnet') + { values+:: { prometheus+: {
             alertmanagers: [{ namespace: 'monitoring', name: 'alertmanager-main', port: 'web' }],
             alertmanagerUrls: [
               'http://am.example:9093',
               { url: 'https://am.example.com/eu', timeout: '5s', basicAuth: { username: { name: 'am', key: 'user' }, password: { name: 'am', key: 'pw' } } },
             ],
           } } };
           h.manifests"#,
    )]);
    let objects = render(&dir.path().join("install.jsonnet"), &EvalOptions::default()).expect("render");
    let alerting = &object(&objects, "hearth-prometheus.yaml")["spec"]["alerting"];
    assert_eq!(
        alerting,
        &json!({"alertmanagers": [
            {"namespace": "monitoring", "name": "alertmanager-main", "port": "web"},
            {"url": "http://am.example:9093"},
            {"url": "https://am.example.com/eu", "timeout": "5s",
             "basicAuth": {"username": {"name": "am", "key": "user"}, "password": {"name": "am", "key": "pw"}}},
        ]})
    );

    // URLs alone make an alerting section; the default has none.
    let dir = tempdir_with(&[(
        "install.jsonnet",
        "((import 'hearth.libsonnet') + { values+:: { prometheus+: { alertmanagerUrls: ['https://am.example.com'] } } }).manifests",
    )]);
    let objects = render(&dir.path().join("install.jsonnet"), &EvalOptions::default()).expect("render");
    assert_eq!(
        object(&objects, "hearth-prometheus.yaml")["spec"]["alerting"],
        json!({"alertmanagers": [{"url": "https://am.example.com"}]})
    );
    assert!(object(&render_main(), "hearth-prometheus.yaml")["spec"].get("alerting").is_none());
}

fn invalid(source: &str) -> Vec<String> {
    let dir = tempdir_with(&[("bad.jsonnet", source)]);
    match render(&dir.path().join("bad.jsonnet"), &EvalOptions::default()) {
        Err(RenderError::Invalid(errors)) => errors,
        other => panic!("expected validation errors, got {other:?}"),
    }
}

#[test]
fn wrong_custom_resources_are_reported_with_object_and_path() {
    let errors = invalid(
        r#"{
          prom: { apiVersion: 'monitoring.hearth.dev/v1alpha1', kind: 'Prometheus', metadata: { name: 'p', namespace: 'ns' },
                  spec: { replicas: 'two', retension: '15d' } },
          sm: { apiVersion: 'monitoring.hearth.dev/v1alpha1', kind: 'ServiceMonitor', metadata: { name: 's', namespace: 'ns' },
                spec: { selector: {}, endpoints: [{ port: 'web', relabelings: [{ action: 'rewrite' }] }] },
                status: { bindings: [{ prometheus: 'ns/p', result: 'Maybe' }] } },
        }"#,
    );
    assert_eq!(
        errors,
        vec![
            "Prometheus ns/p: spec.replicas: must be an integer, not a string",
            "Prometheus ns/p: spec.retension: unknown field",
            "ServiceMonitor ns/s: spec.endpoints[0].relabelings[0].action: \"rewrite\" does not match the pattern ^(?i)(replace|keep|drop|hashmod|labelmap|labeldrop|labelkeep|lowercase|uppercase|keepequal|dropequal)$",
            "ServiceMonitor ns/s: status.bindings[0].result: \"Maybe\" is not one of \"Accepted\", \"Rejected\"",
        ]
    );
}

#[test]
fn wrong_built_in_objects_are_reported_with_object_and_path() {
    let errors = invalid(
        r#"[
          { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd', namespace: 'ns' },
            spec: { selector: {}, template: { spec: { containers: [{ name: 'c', image: 'i', imagePolicy: 'Always' }] } } } },
          { apiVersion: 'v1', kind: 'Service', metadata: { name: 's', namespace: 'ns' }, spec: { ports: [{ port: 'eighty' }] } },
          { apiVersion: 'v1', kind: 'Widget', metadata: { name: 'w' } },
        ]"#,
    );
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert_eq!(errors[0], "Deployment ns/d: spec.template.spec.containers[0].imagePolicy: unknown field");
    assert!(errors[1].starts_with("Service ns/s: spec.ports[0].port: invalid type"), "{errors:?}");
    assert!(errors[2].starts_with("Widget w: (root): unknown apiVersion/kind v1/Widget"), "{errors:?}");
}

#[test]
fn nothing_is_written_when_an_object_is_invalid() {
    let dir = tempdir_with(&[("bad.jsonnet", "{ a: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' }, dta: {} } }")]);
    let out = dir.path().join("out");
    let run = hearth(&["render", "bad.jsonnet", "-m", "out"], dir.path());
    assert!(!run.status.success());
    assert!(stderr(&run).contains("ConfigMap a: dta: unknown field"), "{}", stderr(&run));
    assert!(!out.exists());
}

#[test]
fn jsonnet_errors_show_file_line_and_column() {
    let dir = tempdir_with(&[
        ("syntax.jsonnet", "{\n  a: [1, 2,,\n}\n"),
        ("lib/broken.libsonnet", "{\n  value: error 'no value here',\n}\n"),
        ("runtime.jsonnet", "local b = import 'lib/broken.libsonnet';\n{ x: b.value }\n"),
        ("undefined.jsonnet", "{\n  x:   nope,\n}\n"),
    ]);
    let syntax = hearth(&["render", "syntax.jsonnet"], dir.path());
    assert!(!syntax.status.success());
    assert!(stderr(&syntax).contains("syntax error"), "{}", stderr(&syntax));
    assert!(stderr(&syntax).contains("syntax.jsonnet:2:"), "{}", stderr(&syntax));

    let runtime = hearth(&["render", "runtime.jsonnet"], dir.path());
    assert!(!runtime.status.success());
    let text = stderr(&runtime);
    assert!(text.contains("no value here"), "{text}");
    assert!(text.contains("lib/broken.libsonnet:2:10"), "{text}");
    assert!(text.contains("runtime.jsonnet:2:"), "{text}");

    let undefined = hearth(&["render", "undefined.jsonnet"], dir.path());
    assert!(stderr(&undefined).contains("undefined.jsonnet:2:8"), "{}", stderr(&undefined));
}

/// jrsonnet raises these errors with no place of its own; `hearth render`
/// finds the expressions that can raise them in the source.
#[test]
fn jsonnet_errors_jrsonnet_gives_no_place_are_found_in_the_source() {
    // (name, file text, error, line, column, what the place is) — each file is
    // rendered itself and through `(import 'lib/NAME.libsonnet').x`.
    let cases = [
        ("literal", "{\n  x: { a: 1 }.b,\n}\n", "no such field: b", 2, 15, "the only access to field 'b' in the evaluated files"),
        (
            "values",
            "local h = import 'hearth.libsonnet';\n{\n  x: h.values.nope,\n}\n",
            "no such field: nope",
            3,
            15,
            "the only access to field 'nope' in the evaluated files",
        ),
        (
            "super",
            "{ a: 1 } + {\n  x: super.nope,\n}\n",
            "no such field: nope",
            2,
            12,
            "the only access to field 'nope' in the evaluated files",
        ),
        (
            "bracket",
            "local o = { a: 1 };\n{\n  x: o['b'],\n}\n",
            "no such field: b",
            3,
            8,
            "the only access to field 'b' in the evaluated files",
        ),
        (
            "bounds",
            "{\n  x: [1, 2][5],\n}\n",
            "array out of bounds: 5 is not within [0,2)",
            2,
            13,
            "the only index 5 in the evaluated files",
        ),
        (
            "operator",
            "{\n  x: 1 + {},\n}\n",
            "binary operation number + object is not implemented",
            2,
            8,
            "the only '+' operator in the evaluated files",
        ),
        (
            "import",
            "// not this: import 'nothere.libsonnet'\n{\n  x: import 'nothere.libsonnet',\n}\n",
            "can't resolve nothere.libsonnet from ",
            3,
            6,
            "the only import of 'nothere.libsonnet' in FILE",
        ),
        (
            "importstr",
            "{\n  x: importstr 'nothere.txt',\n}\n",
            "can't resolve nothere.txt from ",
            2,
            6,
            "the only import of 'nothere.txt' in FILE",
        ),
    ];
    let mut files = vec![];
    for (name, text, ..) in &cases {
        files.push((format!("{name}.jsonnet"), text.to_string()));
        files.push((format!("lib/{name}.libsonnet"), text.to_string()));
        files.push((format!("via-{name}.jsonnet"), format!("(import 'lib/{name}.libsonnet').x\n")));
    }
    files.push(("lib/ambiguous.libsonnet".into(), "local o = { a: 1 };\n{\n  x: o.nope,\n  y: o.nope,\n}\n".into()));
    files.push(("via-ambiguous.jsonnet".into(), "(import 'lib/ambiguous.libsonnet').x\n".into()));
    files.push(("computed.jsonnet".into(), "{\n  a:: 2,\n  x: [1, 2][self.a + 3],\n}\n".into()));
    let dir = tempdir_with(&files.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect::<Vec<_>>());

    for (name, _, error, line, column, what) in cases {
        for (main, file) in
            [(format!("{name}.jsonnet"), format!("{name}.jsonnet")), (format!("via-{name}.jsonnet"), format!("lib/{name}.libsonnet"))]
        {
            let run = hearth(&["render", &main], dir.path());
            assert!(!run.status.success(), "{main} renders");
            let text = stderr(&run);
            let lines: Vec<&str> = text.lines().collect();
            assert!(lines[0].starts_with(&format!("error: {error}")), "{main}: {text}");
            let what = what.replace("FILE", &file);
            assert_eq!(lines.get(1).copied(), Some(format!("    at {file}:{line}:{column} ({what})").as_str()), "{main}: {text}");
        }
    }

    // Two places can raise it: both are listed, neither is picked.
    let ambiguous = stderr(&hearth(&["render", "via-ambiguous.jsonnet"], dir.path()));
    let places =
        "    at one of lib/ambiguous.libsonnet:3:8, lib/ambiguous.libsonnet:4:8 (each access to field 'nope' in the evaluated files)";
    assert_eq!(ambiguous.lines().nth(1), Some(places), "{ambiguous}");

    // A computed index is not in the source: no place, as before.
    let computed = stderr(&hearth(&["render", "computed.jsonnet"], dir.path()));
    assert_eq!(
        computed.lines().collect::<Vec<_>>(),
        ["error: array out of bounds: 5 is not within [0,2)", "    in field <x> evaluation"],
        "{computed}"
    );
}

#[test]
fn jpath_and_ext_str_reach_the_evaluation() {
    let dir = tempdir_with(&[
        (
            "vendor/cm.libsonnet",
            "function(name) { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: name }, data: { env: std.extVar('env') } }",
        ),
        ("app/main.jsonnet", "local cm = import 'cm.libsonnet';\n{ config: cm(std.extVar('name')) }\n"),
    ]);
    let without = hearth(&["render", "app/main.jsonnet", "--ext-str", "name=a", "--ext-str", "env=prod"], dir.path());
    assert!(!without.status.success(), "cm.libsonnet is only found through -J");
    let run = hearth(
        &["render", "app/main.jsonnet", "-J", "vendor", "--ext-str", "name=settings", "--ext-str", "env=prod", "-m", "out"],
        dir.path(),
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let text = std::fs::read_to_string(dir.path().join("out/config.yaml")).expect("out/config.yaml");
    assert!(text.contains("name: settings") && text.contains("env: prod"), "{text}");
}

#[test]
fn the_embedded_library_needs_no_jsonnet_directory() {
    let dir = tempdir_with(&[("install.jsonnet", "((import 'hearth.libsonnet') + { values+:: { namespace: 'obs' } }).manifests\n")]);
    let run = hearth(&["render", "install.jsonnet"], dir.path());
    assert!(run.status.success(), "{}", stderr(&run));
    let stream = String::from_utf8_lossy(&run.stdout);
    // Without -m: one stream, one document per object, setup objects first.
    assert_eq!(stream.matches("\n---\n").count() + 1, render_main().len());
    assert!(stream.starts_with("---\napiVersion: v1\nkind: Namespace\n"), "{stream:.200}");
    assert!(stream.contains("namespace: obs"));
    assert!(!stream.contains("namespace: monitoring"));
}

#[test]
fn the_alert_mixin_passes_hearth_check_rules() {
    let objects = render(&repo().join("jsonnet/examples/full.jsonnet"), &EvalOptions::default()).expect("render");
    let rule = objects.iter().find(|o| o.value["kind"] == "AlertRule").expect("AlertRule");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("rules.yaml");
    let text = serde_saphyr::to_string(&json!({"groups": rule.value["spec"]["groups"]})).expect("yaml");
    std::fs::write(&file, text).expect("write");
    let run = hearth(&["check", "rules", &file.to_string_lossy()], dir.path());
    let out = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{out}{}", stderr(&run));
    assert!(out.contains("SUCCESS"), "{out}");
}

/// Series the scraper writes for every target; they are stored, not served on /metrics.
const SCRAPE_SERIES: [&str; 5] =
    ["up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling", "scrape_series_added"];

/// The PromQL expressions of the dashboards and of the alert mixin.
fn dashboard_and_alert_expressions() -> Vec<(String, String)> {
    let objects = render(&repo().join("jsonnet/examples/full.jsonnet"), &EvalOptions::default()).expect("render");
    let mut exprs = Vec::new();
    for o in &objects {
        let v = &o.value;
        if v["kind"] == "ConfigMap" && v["metadata"]["labels"]["grafana_dashboard"] == "1" {
            for (key, text) in v["data"].as_object().expect("data") {
                let dashboard: Value = serde_json::from_str(text.as_str().expect("text")).expect("dashboard JSON");
                for panel in dashboard["panels"].as_array().expect("panels") {
                    for target in panel["targets"].as_array().into_iter().flatten() {
                        // Grafana fills in $__rate_interval; any duration parses the same.
                        let expr = target["expr"].as_str().expect("expr").replace("$__rate_interval", "5m");
                        exprs.push((format!("{key}: {}", panel["title"]), expr));
                    }
                }
            }
        }
        if v["kind"] == "AlertRule" {
            for rule in v["spec"]["groups"].as_array().expect("groups").iter().flat_map(|g| g["rules"].as_array().expect("rules")) {
                exprs.push((format!("alert {}", rule["alert"]), rule["expr"].as_str().expect("expr").to_string()));
            }
        }
    }
    exprs
}

/// Metric names in a PromQL expression, from its syntax tree.
fn metric_names(expr: &str) -> Result<BTreeSet<String>, String> {
    use promql_parser::parser::{Expr, VectorSelector};
    struct Names(BTreeSet<String>);
    impl Names {
        fn add(&mut self, vs: &VectorSelector) {
            let by_matcher = vs.matchers.matchers.iter().filter(|m| m.name == "__name__").map(|m| m.value.clone());
            self.0.extend(vs.name.clone().into_iter().chain(by_matcher));
        }
    }
    impl promql_parser::util::ExprVisitor for Names {
        type Error = String;
        fn pre_visit(&mut self, e: &Expr) -> Result<bool, String> {
            match e {
                Expr::VectorSelector(vs) => self.add(vs),
                Expr::MatrixSelector(ms) => self.add(&ms.vs),
                _ => {}
            }
            Ok(true)
        }
    }
    let ast = promql_parser::parser::parse(expr)?;
    let mut names = Names(BTreeSet::new());
    promql_parser::util::walk_expr(&mut names, &ast)?;
    Ok(names.0)
}

/// What an exposition offers: families with their type, and sample names.
#[derive(Default)]
struct Exposed {
    families: HashMap<String, String>,
    samples: BTreeSet<String>,
}

impl Exposed {
    fn add(&mut self, text: &str) {
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split_whitespace();
                if let (Some(name), Some(ty)) = (parts.next(), parts.next()) {
                    self.families.insert(name.to_string(), ty.to_string());
                }
            } else if !line.starts_with('#') && !line.is_empty() {
                let end = line.find(['{', ' ']).unwrap_or(line.len());
                self.samples.insert(line[..end].to_string());
            }
        }
    }

    /// Whether `name` is a sample name, or a suffix of a family of the right type.
    fn has(&self, name: &str) -> bool {
        if self.samples.contains(name) || self.families.get(name).is_some_and(|t| t == "gauge" || t == "unknown") {
            return true;
        }
        let suffixes: [(&str, &[&str]); 5] = [
            ("_total", &["counter"]),
            ("_bucket", &["histogram"]),
            ("_sum", &["histogram", "summary"]),
            ("_count", &["histogram", "summary"]),
            ("_info", &["info"]),
        ];
        suffixes.iter().any(|(suffix, types)| {
            name.strip_suffix(suffix).and_then(|family| self.families.get(family)).is_some_and(|t| types.contains(&t.as_str()))
        })
    }
}

/// The server's /metrics, with a recording rule, a failing rule, a group too
/// fast to keep up with, remote write and an Alertmanager (neither listening)
/// so that those families have series.
fn server_metrics() -> String {
    use support::procs::{Proc, free_ports, wait_for};
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = free_ports(3);
    let addr = format!("127.0.0.1:{}", ports[0]);
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
         scrape_configs: [{{job_name: hearth, static_configs: [{{targets: ['{addr}']}}]}}]\n\
         rule_files: [rules.yaml]\n\
         remote_write: [{{url: 'http://127.0.0.1:{}/api/v1/write'}}]\n\
         alerting: {{alertmanagers: [{{static_configs: [{{targets: ['127.0.0.1:{}']}}]}}]}}\n",
        ports[1], ports[2]
    );
    let rules = "groups:\n- name: test\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n  - alert: Always\n    expr: vector(1)\n\
                 - name: missed\n  interval: 1ms\n  rules:\n  - record: busy\n    expr: vector(1)\n\
                 - name: failing\n  rules:\n  - record: many_to_one\n    expr: vector(1) * on() group_left() (vector(1) or label_replace(vector(1), \"x\", \"y\", \"\", \"\"))\n";
    std::fs::write(dir.path().join("hearth.yaml"), config).expect("config");
    std::fs::write(dir.path().join("rules.yaml"), rules).expect("rules");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.current_dir(dir.path()).args([
        "server",
        "--config.file",
        "hearth.yaml",
        "--web.listen-address",
        &addr,
        "--storage.tsdb.path",
        "data",
    ]);
    let server = Proc::spawn("hearth server", cmd, &dir.path().join("server.log"));
    let wanted = [
        "prometheus_rule_evaluation_failures_total",
        "prometheus_rule_group_iterations_missed_total",
        "prometheus_remote_storage_samples_total",
        "prometheus_notifications_errors_total",
    ];
    let text = wait_for("the rule, remote-write and notification series on /metrics", Duration::from_secs(60), || {
        server.check_alive()?;
        let text = support::http::get(&addr, "/metrics", &[])?.text()?.to_string();
        match wanted.iter().find(|w| !text.contains(*w)) {
            Some(missing) => Err(format!("no {missing} yet")),
            None => Ok(text),
        }
    });
    drop(server);
    text
}

/// A fake Kubernetes API over plain HTTP, enough for `hearth operator run`
/// to start, stay up and fail reconciles: the startup's server-side applies
/// (the CRDs, the discovery ClusterRole) are answered with the object sent;
/// the list of Prometheus objects has one, every other list is empty;
/// watches stay open without events; every other write fails with a 500,
/// so that reconciling that object fails and the errors family gets a
/// series (a labelled family with no series is not exposed at all).
/// Counts the watches opened.
struct FakeApi {
    addr: String,
    watches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

fn start_fake_api() -> FakeApi {
    use axum::body::{Body, Bytes};
    use axum::http::{Method, StatusCode, Uri, header};
    use axum::response::{IntoResponse, Response};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let watches = Arc::new(AtomicUsize::new(0));
    let seen = watches.clone();
    let handler = move |method: Method, uri: Uri, body: Bytes| {
        let seen = seen.clone();
        async move {
            let json = |status: StatusCode, body: Vec<u8>| -> Response {
                (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
            };
            let query = uri.query().unwrap_or("");
            if method == Method::GET && query.split('&').any(|kv| kv == "watch=true" || kv == "watch=1") {
                seen.fetch_add(1, Ordering::SeqCst);
                let never = futures::stream::pending::<Result<Bytes, std::convert::Infallible>>();
                return (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], Body::from_stream(never)).into_response();
            }
            let path = uri.path();
            let startup = path.starts_with("/apis/apiextensions.k8s.io/") || path.starts_with("/apis/rbac.authorization.k8s.io/");
            match method {
                Method::GET => {
                    let items = if path == "/apis/monitoring.hearth.dev/v1alpha1/prometheuses" {
                        json!([{"apiVersion": "monitoring.hearth.dev/v1alpha1", "kind": "Prometheus",
                                "metadata": {"name": "main", "namespace": "monitoring", "uid": "u1", "generation": 1, "resourceVersion": "1"},
                                "spec": {}}])
                    } else {
                        json!([])
                    };
                    let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items});
                    json(StatusCode::OK, list.to_string().into_bytes())
                }
                Method::PATCH if startup => json(StatusCode::OK, body.to_vec()),
                _ => json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    br#"{"apiVersion":"v1","kind":"Status","status":"Failure","message":"the fake API refuses writes","reason":"InternalError","code":500}"#.to_vec(),
                ),
            }
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let app = axum::Router::new().fallback(handler);
    runtime.spawn(async move { axum::serve(listener, app).await });
    FakeApi { addr, watches, _runtime: runtime }
}

/// The operator's /metrics, scraped from the real binary (`hearth operator
/// run`, no leader election) running against [`start_fake_api`]; it is
/// stopped (its process group signalled by PID) when the scrape is done.
fn operator_metrics() -> String {
    use std::sync::atomic::Ordering;
    use support::procs::{Proc, free_ports, wait_for};
    let api = start_fake_api();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    let config = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{}\n\
         contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: nobody\n    namespace: default\n\
         current-context: fake\nusers:\n- name: nobody\n  user: {{}}\n",
        api.addr
    );
    std::fs::write(&kubeconfig, config).expect("kubeconfig");
    let addr = format!("127.0.0.1:{}", free_ports(1)[0]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.current_dir(dir.path()).env("KUBECONFIG", &kubeconfig).args([
        "operator",
        "run",
        "--metrics-address",
        &addr,
        "--leader-election=false",
        "--identity",
        "test",
    ]);
    let operator = Proc::spawn("hearth operator run", cmd, &dir.path().join("operator.log"));
    // Serving /metrics alone is not enough: it starts before the operator
    // talks to the API. Its watches show it got through startup, the errors
    // series that it reconciled.
    let text = wait_for("the operator's watches and /metrics", Duration::from_secs(60), || {
        operator.check_alive()?;
        if api.watches.load(Ordering::SeqCst) == 0 {
            return Err("no watch yet".into());
        }
        let text = support::http::get(&addr, "/metrics", &[])?.text()?.to_string();
        if text.contains("hearth_operator_reconcile_errors_total{") { Ok(text) } else { Err("no reconcile error yet".into()) }
    });
    operator.check_alive().unwrap_or_else(|e| panic!("the operator stopped: {e}"));
    drop(operator);
    text
}

#[test]
fn dashboards_and_alerts_use_only_metrics_hearth_exposes() {
    let exprs = dashboard_and_alert_expressions();
    assert!(exprs.iter().any(|(w, _)| w.starts_with("hearth-server.json")) && exprs.iter().any(|(w, _)| w.starts_with("alert ")));
    let mut exposed = Exposed::default();
    exposed.add(&server_metrics());
    let operator = operator_metrics();
    // The operator's own families come from its binary, not from the server's /metrics.
    for family in [
        "hearth_operator_reconciles",
        "hearth_operator_reconcile_duration_seconds",
        "hearth_operator_reconcile_errors",
        "hearth_operator_object_writes",
        "hearth_operator_reconcile_queue_depth",
    ] {
        assert!(operator.contains(&format!("# TYPE {family} ")), "{family} not on the operator's /metrics:\n{operator}");
    }
    exposed.add(&operator);
    assert!(!exposed.has("prometheus_rule_evaluation_failures"), "a counter is only found with _total");
    let mut unknown = Vec::new();
    for (what, expr) in &exprs {
        let names = metric_names(expr).unwrap_or_else(|e| panic!("{what}: {expr}: {e}"));
        assert!(!names.is_empty(), "{what}: {expr} selects no metric");
        for name in names {
            if !SCRAPE_SERIES.contains(&name.as_str()) && !exposed.has(&name) {
                unknown.push(format!("{what}: {name}"));
            }
        }
    }
    assert!(unknown.is_empty(), "metrics Hearth does not expose:\n{}", unknown.join("\n"));
}
