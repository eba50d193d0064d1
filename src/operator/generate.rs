//! What the operator produces for one Prometheus object: the selection of
//! ServiceMonitors and AlertRules (accepted or rejected, with reasons), the
//! server configuration of each shard, and the rule files. Pure: the
//! controller and `hearth operator preview` both call it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::{Value, json};

use super::crd::common::{Authorization, BasicAuth, TlsConfig};
use super::crd::{AlertRule, Prometheus, ServiceMonitor};
use super::scrape::{Enforced, relabel_json, scrape_configs};
use super::secrets::{Assets, Credentials, SecretValues, service_monitor_uses};
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

/// The config Secret's key of the server's web configuration
/// (`--web.config.file`), present when the Prometheus object sets `web`.
pub const WEB_CONFIG_FILE: &str = "web-config.yaml";

/// Everything the operator knows when generating.
pub struct Inputs<'a> {
    pub prometheus: &'a Prometheus,
    pub service_monitors: Vec<&'a ServiceMonitor>,
    pub alert_rules: Vec<&'a AlertRule>,
    /// Namespace name → its labels.
    pub namespaces: &'a BTreeMap<String, BTreeMap<String, String>>,
    /// The Secrets that the Prometheus object and its ServiceMonitors name
    /// (see [`super::secrets`]).
    pub secrets: &'a SecretValues,
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
    /// Other files of the config Secret: Secret values (credentials and
    /// certificates) and the web configuration.
    pub files: BTreeMap<String, Vec<u8>>,
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
    let mut own_assets = Assets::new(inputs.secrets, own_ns);
    let base = base_config(p, own_ns, &mut own_assets)?;
    let web = web_config(p, &mut own_assets)?;
    let mut files = own_assets.files;
    if let Some(w) = web {
        files.insert(WEB_CONFIG_FILE.into(), w.into_bytes());
    }
    let mut verdicts = Vec::new();
    let mut old = inputs.memo.map(|m| std::mem::take(&mut *m.inner.lock().unwrap_or_else(|e| e.into_inner()))).unwrap_or_default();
    let mut new = MemoMaps::default();
    // Each ServiceMonitor's jobs are checked under the real `global`
    // section: its defaults decide, e.g., whether a job's scrape_timeout
    // exceeds its (inherited) scrape_interval.
    let global_text = serde_saphyr::to_string(&json!({ "global": base["global"] })).map_err(|e| format!("encoding configuration: {e}"))?;
    let limits = format!("{shards}/{enforced:?}/{global_text}");

    // Per shard: the accepted ServiceMonitors' scrape configs, as YAML.
    let mut jobs: Vec<String> = vec![String::new(); shards as usize];
    let mut discovery: Option<BTreeSet<String>> = Some(BTreeSet::new());
    for sm in selected_service_monitors(inputs)? {
        let object = key(&sm.metadata);
        let verdict = |rejected| Verdict { kind: "ServiceMonitor", object: object.clone(), rejected };
        let secrets = inputs.secrets.fingerprint(&service_monitor_uses(sm));
        let result =
            memoized(&mut old.jobs, &mut new.jobs, &object, fingerprint(&sm.spec, &format!("{object}/{limits}/{secrets}")), || {
                service_monitor_jobs(sm, &enforced, shards, &global_text, inputs.secrets)
            });
        match result {
            Ok(j) => {
                match (&mut discovery, j.namespaces) {
                    (Some(all), Some(these)) => all.extend(these),
                    (d, _) => *d = None,
                }
                for (all, mine) in jobs.iter_mut().zip(j.per_shard) {
                    all.push_str(&mine);
                }
                files.extend(j.files);
                verdicts.push(verdict(None));
            }
            Err(e) => verdicts.push(verdict(Some(e))),
        }
    }

    let mut rule_files = BTreeMap::new();
    for ar in selected(inputs, &inputs.alert_rules, spec.rule_namespace_selector.as_ref(), spec.rule_selector.as_ref())
        .map_err(|e| format!("ruleSelector: {e}"))?
    {
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

    if let (Some(all), Some(a)) = (&mut discovery, &spec.alerting) {
        // Alertmanagers given by URL are not discovered.
        all.extend(
            a.alertmanagers.iter().filter(|am| am.url.is_none()).map(|am| am.namespace.clone().unwrap_or_else(|| own_ns.to_string())),
        );
    }
    let mut base = base;
    if !rule_files.is_empty() {
        // Relative: resolved against the configuration file's directory.
        base["rule_files"] = json!([format!("{RULE_FILE_PREFIX}*.yaml")]);
    }
    let base_text = serde_saphyr::to_string(&base).map_err(|e| format!("encoding configuration: {e}"))?;
    crate::config::Config::parse(&base_text, std::path::Path::new("/")).map_err(|e| format!("generated configuration is invalid: {e}"))?;
    // `scrape_configs` sorts after every key of the base, so appending the
    // jobs' YAML gives the same file as encoding it all at once.
    let configs: Vec<String> =
        jobs.into_iter()
            .map(|scrape| {
                if scrape.is_empty() { format!("{base_text}scrape_configs: []\n") } else { format!("{base_text}scrape_configs:\n{scrape}") }
            })
            .collect();
    // The assembled file is not parsed again: each ServiceMonitor's jobs
    // were parsed under the real global section and the base on its own,
    // and job names are unique by construction. Parsing a large fleet's
    // whole file would cost ~0.7 s per change (1000 ServiceMonitors) for
    // nothing the parts' checks miss.
    if let Some(m) = inputs.memo {
        *m.inner.lock().unwrap_or_else(|e| e.into_inner()) = new;
    }
    Ok(Generated { configs, rule_files, files, verdicts, discovery_namespaces: discovery })
}

/// The ServiceMonitors `inputs.prometheus` selects, by namespace and name.
pub fn selected_service_monitors<'a>(inputs: &Inputs<'a>) -> Result<Vec<&'a ServiceMonitor>, String> {
    let spec = &inputs.prometheus.spec;
    selected(inputs, &inputs.service_monitors, spec.service_monitor_namespace_selector.as_ref(), spec.service_monitor_selector.as_ref())
        .map_err(|e| format!("serviceMonitorSelector: {e}"))
}

/// The objects of `all` that a namespace and an object selector pick, by
/// namespace and name.
fn selected<'a, K: kube::Resource>(
    inputs: &Inputs<'_>,
    all: &[&'a K],
    namespace_selector: Option<&LabelSelector>,
    selector: Option<&LabelSelector>,
) -> Result<Vec<&'a K>, String> {
    let own = inputs.prometheus.metadata.namespace.as_deref().unwrap_or("default");
    let empty = BTreeMap::new();
    let mut out = Vec::new();
    for o in all {
        let meta = o.meta();
        let ns = meta.namespace.as_deref().unwrap_or("default");
        if namespace_selected(namespace_selector, own, ns, inputs.namespaces.get(ns))?
            && object_selected(selector, meta.labels.as_ref().unwrap_or(&empty))?
        {
            out.push(*o);
        }
    }
    out.sort_by_key(|o| key(o.meta()));
    Ok(out)
}

/// What one ServiceMonitor contributes.
#[derive(Clone)]
struct Jobs {
    /// The namespaces its jobs search (`None`: all).
    namespaces: Option<Vec<String>>,
    /// Its jobs per shard as the YAML items of `scrape_configs` (kept as
    /// text: a thousandth of the memory of the JSON values, and
    /// concatenated as is).
    per_shard: Vec<String>,
    /// The Secret values its jobs read, as config Secret files.
    files: BTreeMap<String, Vec<u8>>,
}

/// A ServiceMonitor's jobs per shard, each checked by the configuration
/// parser on its own (under `global`, the YAML of the configuration's
/// global section, whose defaults they inherit) so that one bad object is
/// rejected alone.
fn service_monitor_jobs(
    sm: &ServiceMonitor,
    enforced: &Enforced,
    shards: u32,
    global: &str,
    secrets: &SecretValues,
) -> Result<Jobs, String> {
    let own = sm.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    let mut assets = Assets::new(secrets, &own);
    let namespaces = match &sm.spec.namespace_selector {
        Some(s) if s.any => Vec::new(),
        Some(s) if !s.match_names.is_empty() => s.match_names.clone(),
        _ => vec![own.clone()],
    };
    let mut per_shard = Vec::new();
    for shard in 0..shards {
        let jobs = scrape_configs(sm, &namespaces, enforced, shard, shards, &mut assets)?;
        let text = if jobs.is_empty() {
            String::new()
        } else {
            serde_saphyr::to_string(&jobs).map_err(|e| format!("encoding configuration: {e}"))?
        };
        // Shards differ only in the shard number they keep: checking one suffices.
        if shard == 0 && !text.is_empty() {
            crate::config::Config::parse(&format!("{global}scrape_configs:\n{text}"), std::path::Path::new("/"))
                .map_err(|e| e.to_string())?;
        }
        per_shard.push(text);
    }
    // The pod's own token is presented to the API server, the kubelet and
    // the control plane, which authorize `nodes/metrics` and the
    // non-resource URL `/metrics`: only a ClusterRoleBinding can grant
    // those (a RoleBinding to the same ClusterRole grants nothing of
    // them), so such a ServiceMonitor makes the discovery binding cluster-wide.
    let own_token = sm.spec.endpoints.iter().any(|e| e.bearer_token_file.is_some());
    Ok(Jobs { namespaces: (!namespaces.is_empty() && !own_token).then_some(namespaces), per_shard, files: assets.files })
}

/// The global, alerting and remote-write sections.
fn base_config(p: &Prometheus, own_ns: &str, assets: &mut Assets<'_>) -> Result<Value, String> {
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
    if let Some(a) = &spec.alerting {
        let ams: Vec<Value> = a
            .alertmanagers
            .iter()
            .enumerate()
            .map(|(i, am)| {
                let mut o = alertmanager_discovery(am, own_ns).map_err(|e| format!("alerting.alertmanagers[{i}]: {e}"))?;
                if let Some(s) = &am.timeout {
                    o["timeout"] = json!(s);
                }
                with_client(
                    o,
                    assets,
                    &format!("alerting.alertmanagers[{i}]"),
                    am.tls_config.as_ref(),
                    am.basic_auth.as_ref(),
                    am.authorization.as_ref(),
                )
            })
            .collect::<Result<_, String>>()?;
        c["alerting"] = json!({ "alertmanagers": ams });
    }
    if !spec.remote_write.is_empty() {
        let rws: Vec<Value> = spec
            .remote_write
            .iter()
            .enumerate()
            .map(|(i, rw)| {
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
                with_client(
                    o,
                    assets,
                    &format!("remoteWrite[{i}]"),
                    rw.tls_config.as_ref(),
                    rw.basic_auth.as_ref(),
                    rw.authorization.as_ref(),
                )
            })
            .collect::<Result<_, String>>()?;
        c["remote_write"] = Value::Array(rws);
    }
    Ok(c)
}

/// How the server finds one `alerting.alertmanagers` entry: a fixed target
/// for a `url` (scheme, `host:port` and path prefix taken from it), else
/// the endpoints of a Service. The CRD's CEL rule says the same; this check
/// also covers API servers that skip CEL and `hearth operator preview`.
fn alertmanager_discovery(am: &super::crd::prometheus::AlertmanagerEndpoints, own_ns: &str) -> Result<Value, String> {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    if let Some(url) = &am.url {
        if am.name.is_some() || am.namespace.is_some() || am.port.is_some() || am.scheme.is_some() || am.path_prefix.is_some() {
            return Err("url excludes name, namespace, port, scheme and pathPrefix (the URL carries them)".into());
        }
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("url {url:?}: {e}"))?;
        let scheme = parsed.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(format!("url {url:?}: the scheme must be http or https"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(format!("url {url:?}: credentials go in basicAuth or authorization, not in the URL"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(format!("url {url:?}: a query or fragment cannot be part of an Alertmanager's address"));
        }
        let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default()) else {
            return Err(format!("url {url:?}: no host"));
        };
        let mut o = json!({ "static_configs": [{ "targets": [format!("{host}:{port}")] }], "scheme": scheme });
        let path = parsed.path().trim_end_matches('/');
        if !path.is_empty() {
            o["path_prefix"] = json!(path);
        }
        return Ok(o);
    }
    let (Some(name), Some(port)) = (&am.name, &am.port) else {
        return Err("either url, or name and port of the Alertmanager Service".into());
    };
    let ns = am.namespace.as_deref().unwrap_or(own_ns);
    let port = match port {
        IntOrString::Int(n) => {
            json!({"source_labels": ["__meta_kubernetes_endpointslice_port"], "regex": n.to_string(), "action": "keep"})
        }
        IntOrString::String(s) => {
            json!({"source_labels": ["__meta_kubernetes_endpointslice_port_name"], "regex": s, "action": "keep"})
        }
    };
    let mut o = json!({
        "kubernetes_sd_configs": [{"role": "endpointslice", "namespaces": {"names": [ns]}}],
        "relabel_configs": [
            {"source_labels": ["__meta_kubernetes_service_name"], "regex": name, "action": "keep"},
            port,
        ],
    });
    if let Some(s) = &am.scheme {
        o["scheme"] = json!(s);
    }
    if let Some(s) = &am.path_prefix {
        o["path_prefix"] = json!(s);
    }
    Ok(o)
}

/// `o` with the TLS settings and credentials of a section added.
fn with_client(
    mut o: Value,
    assets: &mut Assets<'_>,
    at: &str,
    tls: Option<&TlsConfig>,
    basic: Option<&BasicAuth>,
    authorization: Option<&Authorization>,
) -> Result<Value, String> {
    if let Value::Object(m) = &mut o {
        assets.http_client(m, at, tls, Credentials { basic, authorization, ..Credentials::default() })?;
    }
    Ok(o)
}

/// The server's web configuration (`--web.config.file`, Prometheus'
/// format): its certificate, the client CA and the basic-auth users.
/// Client certificates are verified when given but not required, so that
/// the kubelet's probes and the operator's configuration check (which
/// present none) still reach the pods.
fn web_config(p: &Prometheus, assets: &mut Assets<'_>) -> Result<Option<String>, String> {
    let Some(web) = &p.spec.web else { return Ok(None) };
    let mut c = serde_json::Map::new();
    if let Some(t) = &web.tls_config {
        let mut tls = json!({
            "cert_file": assets.file("web.tlsConfig.cert", &t.cert)?,
            "key_file": assets.file("web.tlsConfig.keySecret", &t.key_secret)?,
        });
        if let Some(ca) = &t.client_ca {
            tls["client_ca_file"] = json!(assets.file("web.tlsConfig.clientCA", ca)?);
            tls["client_auth_type"] = json!("VerifyClientCertIfGiven");
        }
        if let Some(v) = &t.min_version {
            tls["min_version"] = json!(v);
        }
        c.insert("tls_server_config".into(), tls);
    }
    if let Some(name) = &web.basic_auth_users_secret {
        let users = assets.all_text("web.basicAuthUsersSecret", name)?;
        if users.is_empty() {
            return Err(format!("web.basicAuthUsersSecret: Secret {name} has no users"));
        }
        for (user, hash) in &users {
            if !crate::web::webconfig::is_bcrypt_hash(hash) {
                return Err(format!("web.basicAuthUsersSecret: Secret {name} key {user:?}: the value must be a bcrypt hash"));
            }
        }
        c.insert("basic_auth_users".into(), json!(users));
    }
    serde_saphyr::to_string(&Value::Object(c)).map(Some).map_err(|e| format!("encoding the web configuration: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prometheus(spec: Value) -> Prometheus {
        serde_json::from_value(json!({
            "apiVersion": "monitoring.hearth.dev/v1alpha1", "kind": "Prometheus",
            "metadata": {"name": "main", "namespace": "monitoring"}, "spec": spec,
        }))
        .expect("Prometheus")
    }

    fn service_monitor(name: &str, endpoint: Value) -> ServiceMonitor {
        serde_json::from_value(json!({
            "apiVersion": "monitoring.hearth.dev/v1alpha1", "kind": "ServiceMonitor",
            "metadata": {"name": name, "namespace": "monitoring"},
            "spec": {"selector": {"matchLabels": {"app": name}}, "endpoints": [endpoint]},
        }))
        .expect("ServiceMonitor")
    }

    fn run(p: &Prometheus, sms: &[ServiceMonitor], memo: Option<&Memo>) -> Result<Generated, String> {
        let namespaces = BTreeMap::new();
        let secrets = SecretValues::default();
        generate(&Inputs {
            prometheus: p,
            service_monitors: sms.iter().collect(),
            alert_rules: Vec::new(),
            namespaces: &namespaces,
            secrets: &secrets,
            memo,
        })
    }

    /// A timeout valid under the default 1m interval but not under the
    /// Prometheus object's 10s: the ServiceMonitor is rejected, the other
    /// kept, and the assembled file parses.
    #[test]
    fn service_monitors_are_checked_under_the_real_global_section() {
        let sms =
            [service_monitor("slow", json!({"port": "http", "scrapeTimeout": "30s"})), service_monitor("fine", json!({"port": "http"}))];
        let memo = Memo::default();
        let g = run(&prometheus(json!({"scrapeInterval": "10s", "serviceMonitorSelector": {}})), &sms, Some(&memo)).expect("generated");
        let slow = g.verdicts.iter().find(|v| v.object == "monitoring/slow").expect("verdict");
        let reason = slow.rejected.as_deref().unwrap_or("");
        assert!(reason.contains("scrape timeout greater than scrape interval"), "{reason}");
        let fine = g.verdicts.iter().find(|v| v.object == "monitoring/fine").expect("verdict");
        assert_eq!(fine.rejected, None);
        assert!(!g.configs[0].contains("serviceMonitor/monitoring/slow"), "{}", g.configs[0]);
        crate::config::Config::parse(&g.configs[0], std::path::Path::new("/")).expect("the assembled file parses");

        // The same objects under a longer interval: accepted (the memo does
        // not keep the verdict made under the other global section).
        let g = run(&prometheus(json!({"scrapeInterval": "1m", "serviceMonitorSelector": {}})), &sms, Some(&memo)).expect("generated");
        assert!(g.verdicts.iter().all(|v| v.rejected.is_none()), "{:?}", g.verdicts);
        assert!(g.configs[0].contains("serviceMonitor/monitoring/slow"));
    }

    /// The pod's own token only helps with `nodes/metrics` and `/metrics`,
    /// which only a ClusterRoleBinding grants: a ServiceMonitor using it
    /// makes discovery cluster-wide; without it the namespaces stay listed.
    /// Its job still searches only its own namespace.
    #[test]
    fn the_pods_own_token_makes_the_discovery_binding_cluster_wide() {
        let p = prometheus(json!({"serviceMonitorSelector": {}}));
        let plain = [service_monitor("web", json!({"port": "http"}))];
        let g = run(&p, &plain, None).expect("generated");
        assert_eq!(g.discovery_namespaces, Some(BTreeSet::from(["monitoring".to_string()])));

        let token = "/var/run/secrets/kubernetes.io/serviceaccount/token";
        let ca = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
        let sms = [
            plain[0].clone(),
            service_monitor(
                "kubelet",
                json!({"port": "https-metrics", "scheme": "https", "bearerTokenFile": token, "tlsConfig": {"caFile": ca}}),
            ),
        ];
        let g = run(&p, &sms, None).expect("generated");
        assert!(g.verdicts.iter().all(|v| v.rejected.is_none()), "{:?}", g.verdicts);
        assert_eq!(g.discovery_namespaces, None);
        let config: Value = serde_saphyr::from_str(&g.configs[0]).expect("YAML");
        let job = config["scrape_configs"]
            .as_array()
            .and_then(|jobs| jobs.iter().find(|j| j["job_name"] == "serviceMonitor/monitoring/kubelet/0"))
            .expect("the kubelet job");
        assert_eq!(job["authorization"], json!({"type": "Bearer", "credentials_file": token}));
        assert_eq!(job["tls_config"], json!({"ca_file": ca}));
        assert_eq!(job["kubernetes_sd_configs"][0]["namespaces"], json!({"names": ["monitoring"]}));
        // The server's loader takes them as they are (absolute, not under the config directory).
        let parsed = crate::config::Config::parse(&g.configs[0], std::path::Path::new("/etc/hearth/config")).expect("parses");
        let sc = parsed.scrape_configs.iter().find(|s| s.job_name == "serviceMonitor/monitoring/kubelet/0").expect("job");
        let auth = sc.http_client.authorization.as_ref().expect("authorization");
        assert_eq!((auth.auth_type.as_str(), auth.credentials_file.as_deref()), ("Bearer", Some(token)));
        assert_eq!(sc.http_client.tls_config.ca_file.as_deref(), Some(ca));
    }
}
