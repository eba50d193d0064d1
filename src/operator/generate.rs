//! What the operator produces for one Prometheus object: the selection of
//! ServiceMonitors and AlertRules (accepted or rejected, with reasons), the
//! server configuration of each shard, and the rule files. Pure: the
//! controller and `hearth operator preview` both call it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use serde_json::{Value, json};

use super::crd::{AlertRule, Prometheus, ServiceMonitor};
use super::scrape::{Enforced, relabel_json, scrape_configs};
use super::select::{namespace_selected, object_selected};

/// Where the server's pods keep their configuration: a writable emptyDir
/// that `hearth server --config.kubernetes-secret` fills from the config
/// Secret (docs/config-propagation.md).
pub const CONFIG_DIR: &str = "/etc/hearth/config";

/// Prefix of rule files among the config Secret's keys (Secret keys are
/// flat, so rules cannot live in a subdirectory).
pub const RULE_FILE_PREFIX: &str = "rules-";

/// External label naming the Prometheus object, as prometheus-operator sets it.
pub const PROMETHEUS_LABEL: &str = "prometheus";

/// Default name of the external label holding the pod's name.
pub const DEFAULT_REPLICA_LABEL: &str = "prometheus_replica";

/// Everything the operator knows when generating.
pub struct Inputs<'a> {
    pub prometheus: &'a Prometheus,
    pub service_monitors: Vec<&'a ServiceMonitor>,
    pub alert_rules: Vec<&'a AlertRule>,
    /// Namespace name → its labels.
    pub namespaces: &'a BTreeMap<String, BTreeMap<String, String>>,
    /// Results of unchanged objects from the previous generation of this
    /// Prometheus object (the controller keeps one; preview needs none).
    pub memo: Option<&'a Memo>,
}

/// Per-object results of the last generation, keyed by `namespace/name`
/// and valid while the object's spec (and the Prometheus object's shards
/// and limits) hash the same: one changed ServiceMonitor then costs its
/// own jobs, not a thousand.
#[derive(Default)]
pub struct Memo {
    inner: Mutex<MemoMaps>,
}

#[derive(Default)]
struct MemoMaps {
    jobs: HashMap<String, (u64, Result<Jobs, String>)>,
    rules: HashMap<String, (u64, Result<String, String>)>,
}

/// `f`'s result for `key`, reused from `old` when `fingerprint` matches;
/// kept in `new` either way (objects no longer seen drop out).
fn memoized<T: Clone>(
    old: &mut HashMap<String, (u64, T)>,
    new: &mut HashMap<String, (u64, T)>,
    key: &str,
    fingerprint: u64,
    f: impl FnOnce() -> T,
) -> T {
    let value = match old.remove(key) {
        Some((fp, v)) if fp == fingerprint => v,
        _ => f(),
    };
    new.insert(key.to_string(), (fingerprint, value.clone()));
    value
}

fn fingerprint<T: serde::Serialize>(spec: &T, extra: &str) -> u64 {
    let mut body = serde_json::to_vec(spec).unwrap_or_default();
    body.extend_from_slice(extra.as_bytes());
    xxhash_rust::xxh3::xxh3_64(&body)
}

/// One selected object and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub kind: &'static str,
    /// `namespace/name`.
    pub object: String,
    /// `None` when accepted, else why it was rejected.
    pub rejected: Option<String>,
}

/// The output for one Prometheus object.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The configuration file of each shard, shard 0 first.
    pub configs: Vec<String>,
    /// Rule file name → content.
    pub rule_files: BTreeMap<String, String>,
    pub verdicts: Vec<Verdict>,
    /// Namespaces the server discovers targets and Alertmanagers in; `None`
    /// when some job searches all namespaces. The server's RBAC follows it.
    pub discovery_namespaces: Option<BTreeSet<String>>,
}

fn key(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    format!("{}/{}", meta.namespace.as_deref().unwrap_or("default"), meta.name.as_deref().unwrap_or(""))
}

/// Generates the configuration and rules of `inputs.prometheus`.
pub fn generate(inputs: &Inputs<'_>) -> Result<Generated, String> {
    let p = inputs.prometheus;
    let own_ns = p.metadata.namespace.as_deref().unwrap_or("default");
    let spec = &p.spec;
    let shards = spec.shards.unwrap_or(1).max(1) as u32;
    let enforced = Enforced {
        sample_limit: spec.enforced_sample_limit,
        target_limit: spec.enforced_target_limit,
        label_limit: spec.enforced_label_limit,
        label_name_length_limit: spec.enforced_label_name_length_limit,
        label_value_length_limit: spec.enforced_label_value_length_limit,
    };
    for (i, rw) in spec.remote_write.iter().enumerate() {
        if rw.basic_auth.is_some() || rw.authorization.is_some() || rw.tls_config.is_some() {
            return Err(format!("remoteWrite[{i}]: credentials and TLS from Secrets are not supported yet"));
        }
    }
    for (i, am) in spec.alerting.iter().flat_map(|a| &a.alertmanagers).enumerate() {
        if am.basic_auth.is_some() || am.authorization.is_some() || am.tls_config.is_some() {
            return Err(format!("alerting.alertmanagers[{i}]: credentials and TLS from Secrets are not supported yet"));
        }
    }
    let mut verdicts = Vec::new();
    let empty = BTreeMap::new();
    let mut old = inputs.memo.map(|m| std::mem::take(&mut *m.inner.lock().unwrap_or_else(|e| e.into_inner()))).unwrap_or_default();
    let mut new = MemoMaps::default();
    let limits = format!("{shards}/{enforced:?}");
    let selected = |sel_ns, sel_obj, meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| -> Result<bool, String> {
        let ns = meta.namespace.as_deref().unwrap_or("default");
        Ok(namespace_selected(sel_ns, own_ns, ns, inputs.namespaces.get(ns))?
            && object_selected(sel_obj, meta.labels.as_ref().unwrap_or(&empty))?)
    };

    // Per shard: the accepted ServiceMonitors' scrape configs, as YAML.
    let mut jobs: Vec<String> = vec![String::new(); shards as usize];
    let mut discovery: Option<BTreeSet<String>> = Some(BTreeSet::new());
    let mut sms = inputs.service_monitors.clone();
    sms.sort_by_key(|s| key(&s.metadata));
    for sm in sms {
        let chosen = selected(spec.service_monitor_namespace_selector.as_ref(), spec.service_monitor_selector.as_ref(), &sm.metadata)
            .map_err(|e| format!("serviceMonitorSelector: {e}"))?;
        if !chosen {
            continue;
        }
        let object = key(&sm.metadata);
        let verdict = |rejected| Verdict { kind: "ServiceMonitor", object: object.clone(), rejected };
        let result = memoized(&mut old.jobs, &mut new.jobs, &object, fingerprint(&sm.spec, &format!("{object}/{limits}")), || {
            service_monitor_jobs(sm, &enforced, shards)
        });
        match result {
            Ok((searched, per_shard)) => {
                match (&mut discovery, searched) {
                    (Some(all), Some(these)) => all.extend(these),
                    (d, _) => *d = None,
                }
                for (all, mine) in jobs.iter_mut().zip(per_shard) {
                    all.push_str(&mine);
                }
                verdicts.push(verdict(None));
            }
            Err(e) => verdicts.push(verdict(Some(e))),
        }
    }

    let mut rule_files = BTreeMap::new();
    let mut ars = inputs.alert_rules.clone();
    ars.sort_by_key(|r| key(&r.metadata));
    for ar in ars {
        let chosen = selected(spec.rule_namespace_selector.as_ref(), spec.rule_selector.as_ref(), &ar.metadata)
            .map_err(|e| format!("ruleSelector: {e}"))?;
        if !chosen {
            continue;
        }
        let object = key(&ar.metadata);
        let file = memoized(&mut old.rules, &mut new.rules, &object, fingerprint(&ar.spec, &object), || super::rules::rule_file(ar));
        match file {
            Ok(text) => {
                rule_files.insert(format!("{}.yaml", object.replace('/', "-")), text);
                verdicts.push(Verdict { kind: "AlertRule", object, rejected: None });
            }
            Err(e) => verdicts.push(Verdict { kind: "AlertRule", object, rejected: Some(e) }),
        }
    }

    // Each ServiceMonitor's jobs were checked on their own; the rest of the
    // file is checked once here (parsing the whole file again would double
    // the generation time of a large fleet for nothing).
    if let (Some(all), Some(a)) = (&mut discovery, &spec.alerting) {
        all.extend(a.alertmanagers.iter().map(|am| am.namespace.clone().unwrap_or_else(|| own_ns.to_string())));
    }
    let base = base_config(p, own_ns, !rule_files.is_empty());
    let base_text = serde_saphyr::to_string(&base).map_err(|e| format!("encoding configuration: {e}"))?;
    crate::config::Config::parse(&base_text, std::path::Path::new("/")).map_err(|e| format!("generated configuration is invalid: {e}"))?;
    // `scrape_configs` sorts after every key of the base, so appending the
    // jobs' YAML gives the same file as encoding it all at once.
    let configs =
        jobs.into_iter()
            .map(|scrape| {
                if scrape.is_empty() { format!("{base_text}scrape_configs: []\n") } else { format!("{base_text}scrape_configs:\n{scrape}") }
            })
            .collect();
    if let Some(m) = inputs.memo {
        *m.inner.lock().unwrap_or_else(|e| e.into_inner()) = new;
    }
    Ok(Generated { configs, rule_files, verdicts, discovery_namespaces: discovery })
}

/// The namespaces a ServiceMonitor's jobs search (`None`: all) and its jobs
/// per shard as the YAML items of `scrape_configs` (kept as text: a
/// thousandth of the memory of the JSON values, and concatenated as is).
type Jobs = (Option<Vec<String>>, Vec<String>);

/// A ServiceMonitor's jobs per shard, each checked by the configuration
/// parser on its own so that one bad object is rejected alone.
fn service_monitor_jobs(sm: &ServiceMonitor, enforced: &Enforced, shards: u32) -> Result<Jobs, String> {
    let own = sm.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    let namespaces = match &sm.spec.namespace_selector {
        Some(s) if s.any => Vec::new(),
        Some(s) if !s.match_names.is_empty() => s.match_names.clone(),
        _ => vec![own],
    };
    let mut per_shard = Vec::new();
    for shard in 0..shards {
        let jobs = scrape_configs(sm, &namespaces, enforced, shard, shards)?;
        let text = if jobs.is_empty() {
            String::new()
        } else {
            serde_saphyr::to_string(&jobs).map_err(|e| format!("encoding configuration: {e}"))?
        };
        // Shards differ only in the shard number they keep: checking one suffices.
        if shard == 0 && !text.is_empty() {
            crate::config::Config::parse(&format!("scrape_configs:\n{text}"), std::path::Path::new("/")).map_err(|e| e.to_string())?;
        }
        per_shard.push(text);
    }
    Ok(((!namespaces.is_empty()).then_some(namespaces), per_shard))
}

/// The global, rule, alerting and remote-write sections.
fn base_config(p: &Prometheus, own_ns: &str, has_rules: bool) -> Value {
    let spec = &p.spec;
    let mut global = serde_json::Map::new();
    for (k, v) in [
        ("scrape_interval", &spec.scrape_interval),
        ("scrape_timeout", &spec.scrape_timeout),
        ("evaluation_interval", &spec.evaluation_interval),
    ] {
        if let Some(v) = v {
            global.insert(k.into(), json!(v));
        }
    }
    // The replica label is expanded by the server from the pod's
    // environment, so every replica of a shard shares one configuration.
    let mut external = spec.external_labels.clone();
    external.entry(PROMETHEUS_LABEL.into()).or_insert_with(|| format!("{own_ns}/{}", p.metadata.name.as_deref().unwrap_or("")));
    let replica = spec.replica_external_label_name.as_deref().unwrap_or(DEFAULT_REPLICA_LABEL);
    if !replica.is_empty() {
        external.insert(replica.into(), "${POD_NAME}".into());
    }
    global.insert("external_labels".into(), json!(external));
    let mut c = json!({ "global": Value::Object(global) });
    if has_rules {
        c["rule_files"] = json!([format!("{CONFIG_DIR}/{RULE_FILE_PREFIX}*.yaml")]);
    }
    if let Some(a) = &spec.alerting {
        let ams: Vec<Value> = a
            .alertmanagers
            .iter()
            .map(|am| {
                let ns = am.namespace.as_deref().unwrap_or(own_ns);
                let port = match &am.port {
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => {
                        json!({"source_labels": ["__meta_kubernetes_endpointslice_port"], "regex": n.to_string(), "action": "keep"})
                    }
                    k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => {
                        json!({"source_labels": ["__meta_kubernetes_endpointslice_port_name"], "regex": s, "action": "keep"})
                    }
                };
                let mut o = json!({
                    "kubernetes_sd_configs": [{"role": "endpointslice", "namespaces": {"names": [ns]}}],
                    "relabel_configs": [
                        {"source_labels": ["__meta_kubernetes_service_name"], "regex": am.name, "action": "keep"},
                        port,
                    ],
                });
                if let Some(s) = &am.scheme {
                    o["scheme"] = json!(s);
                }
                if let Some(s) = &am.path_prefix {
                    o["path_prefix"] = json!(s);
                }
                if let Some(s) = &am.timeout {
                    o["timeout"] = json!(s);
                }
                o
            })
            .collect();
        c["alerting"] = json!({ "alertmanagers": ams });
    }
    if !spec.remote_write.is_empty() {
        let rws: Vec<Value> = spec
            .remote_write
            .iter()
            .map(|rw| {
                let mut o = json!({ "url": rw.url });
                if let Some(n) = &rw.name {
                    o["name"] = json!(n);
                }
                if let Some(t) = &rw.remote_timeout {
                    o["remote_timeout"] = json!(t);
                }
                if !rw.headers.is_empty() {
                    o["headers"] = json!(rw.headers);
                }
                if !rw.write_relabel_configs.is_empty() {
                    o["write_relabel_configs"] = Value::Array(rw.write_relabel_configs.iter().map(relabel_json).collect());
                }
                if let Some(q) = &rw.queue_config {
                    let mut qc = serde_json::Map::new();
                    for (k, v) in [
                        ("capacity", q.capacity),
                        ("min_shards", q.min_shards),
                        ("max_shards", q.max_shards),
                        ("max_samples_per_send", q.max_samples_per_send),
                    ] {
                        if let Some(v) = v {
                            qc.insert(k.into(), json!(v));
                        }
                    }
                    if let Some(d) = &q.batch_send_deadline {
                        qc.insert("batch_send_deadline".into(), json!(d));
                    }
                    if let Some(r) = q.retry_on_rate_limit {
                        qc.insert("retry_on_http_429".into(), json!(r));
                    }
                    o["queue_config"] = Value::Object(qc);
                }
                o
            })
            .collect();
        c["remote_write"] = Value::Array(rws);
    }
    c
}
