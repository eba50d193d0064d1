//! `hearth operator preview`: what the operator would generate for the
//! Prometheus, ServiceMonitor and AlertRule objects in some YAML files
//! (Namespaces in them feed the namespace selectors, Secrets the
//! credentials and certificates), without a cluster.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::crd::{AlertRule, Prometheus, ServiceMonitor};
use super::generate::{Generated, Inputs, RULE_FILE_PREFIX, generate};
use super::secrets::SecretValues;

/// The objects read from the input files.
#[derive(Default)]
pub struct Objects {
    pub prometheuses: Vec<Prometheus>,
    pub service_monitors: Vec<ServiceMonitor>,
    pub alert_rules: Vec<AlertRule>,
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// Secrets the objects take credentials and certificates from.
    pub secrets: SecretValues,
}

/// Reads every YAML document of `paths` (files, or directories of `.yaml`,
/// `.yml` and `.json` files). Errors name the file and document.
pub fn load(paths: &[PathBuf]) -> Result<Objects, String> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "yaml" || x == "yml" || x == "json"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    let mut objs = Objects::default();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).map_err(|e| format!("{}: {e}", f.display()))?;
        for (i, doc) in docs.into_iter().enumerate() {
            if doc.is_null() {
                continue;
            }
            let kind = doc["kind"].as_str().unwrap_or("").to_string();
            let at = |e: serde_json::Error| format!("{}: document {} ({kind}): {e}", f.display(), i + 1);
            match kind.as_str() {
                "Prometheus" => objs.prometheuses.push(serde_json::from_value(doc).map_err(at)?),
                "ServiceMonitor" => objs.service_monitors.push(serde_json::from_value(doc).map_err(at)?),
                "AlertRule" => objs.alert_rules.push(serde_json::from_value(doc).map_err(at)?),
                "Secret" => objs.secrets.insert_secret(&serde_json::from_value(doc).map_err(at)?),
                "Namespace" => {
                    let name = doc["metadata"]["name"].as_str().unwrap_or("").to_string();
                    let labels = serde_json::from_value(doc["metadata"]["labels"].clone()).unwrap_or_default();
                    objs.namespaces.insert(name, labels);
                }
                _ => {}
            }
        }
    }
    Ok(objs)
}

/// A shard's configuration with the paths of the files it names changed to
/// where preview writes them, so that `hearth check config` and `promtool
/// check config` can be run on it as it is: in the pods every file of the
/// config Secret lies beside the configuration (`rules-<ns>-<name>.yaml`,
/// `secret_<ns>_<name>_<key>`), while preview writes the rule files under
/// `rules/` (without the prefix) and the other files under `files/`.
fn with_preview_paths(config: &str, g: &Generated) -> Result<String, String> {
    fn relocate(v: &mut Value, g: &Generated) {
        match v {
            Value::Object(o) => {
                for (k, v) in o.iter_mut() {
                    match v {
                        Value::String(s) if k.ends_with("_file") && g.files.contains_key(s.as_str()) => *s = format!("files/{s}"),
                        _ => relocate(v, g),
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|v| relocate(v, g)),
            _ => {}
        }
    }
    let mut doc: Value = serde_saphyr::from_str(config).map_err(|e| format!("reading the generated configuration: {e}"))?;
    relocate(&mut doc, g);
    if let Some(Value::Array(globs)) = doc.get_mut("rule_files") {
        for glob in globs.iter_mut() {
            if let Value::String(s) = glob
                && let Some(rest) = s.strip_prefix(RULE_FILE_PREFIX)
            {
                *s = format!("rules/{rest}");
            }
        }
    }
    serde_saphyr::to_string(&doc).map_err(|e| format!("encoding the configuration: {e}"))
}

/// Writes each Prometheus object's configuration and rules under
/// `out/<namespace>/<name>/` (rule files under `rules/`, credentials,
/// certificates and the web configuration under `files/`, and the
/// configuration naming them there) and reports the selection to `w`.
/// Returns whether every Prometheus object could be generated.
pub fn run(paths: &[PathBuf], out: &Path, w: &mut dyn Write) -> Result<bool, String> {
    let objs = load(paths)?;
    let io = |e: std::io::Error| e.to_string();
    let mut ok = true;
    if objs.prometheuses.is_empty() {
        writeln!(w, "no Prometheus objects in the input").map_err(io)?;
    }
    for p in &objs.prometheuses {
        let ns = p.metadata.namespace.as_deref().unwrap_or("default");
        let name = p.metadata.name.as_deref().unwrap_or("");
        let inputs = Inputs {
            prometheus: p,
            service_monitors: objs.service_monitors.iter().collect(),
            alert_rules: objs.alert_rules.iter().collect(),
            namespaces: &objs.namespaces,
            secrets: &objs.secrets,
            memo: None,
        };
        let g = match generate(&inputs) {
            Ok(g) => g,
            Err(e) => {
                ok = false;
                writeln!(w, "Prometheus {ns}/{name}: FAILED: {e}").map_err(io)?;
                continue;
            }
        };
        let count = |kind| g.verdicts.iter().filter(|v| v.kind == kind).count();
        writeln!(w, "Prometheus {ns}/{name}: selected {} ServiceMonitors, {} AlertRules", count("ServiceMonitor"), count("AlertRule"))
            .map_err(io)?;
        for v in &g.verdicts {
            match &v.rejected {
                None => writeln!(w, "  {} {}: accepted", v.kind, v.object),
                Some(r) => writeln!(w, "  {} {}: rejected: {r}", v.kind, v.object),
            }
            .map_err(io)?;
        }
        let dir = out.join(ns).join(name);
        let rules_dir = dir.join("rules");
        std::fs::create_dir_all(&rules_dir).map_err(|e| format!("{}: {e}", rules_dir.display()))?;
        for (i, c) in g.configs.iter().enumerate() {
            let file = if i == 0 { dir.join("prometheus.yaml") } else { dir.join(format!("prometheus-shard-{i}.yaml")) };
            let text = with_preview_paths(c, &g).map_err(|e| format!("{}: {e}", file.display()))?;
            std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
        }
        for (file, text) in &g.rule_files {
            let path = rules_dir.join(file);
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        if !g.files.is_empty() {
            let files_dir = dir.join("files");
            std::fs::create_dir_all(&files_dir).map_err(|e| format!("{}: {e}", files_dir.display()))?;
            for (file, content) in &g.files {
                let path = files_dir.join(file);
                std::fs::write(&path, content).map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        writeln!(
            w,
            "  wrote {} ({} shard configs, {} rule files, {} other files)",
            dir.display(),
            g.configs.len(),
            g.rule_files.len(),
            g.files.len()
        )
        .map_err(io)?;
    }
    Ok(ok)
}
