//! ServiceMonitor → Prometheus scrape configs, on the endpointslice role,
//! with the relabeling prometheus-operator users know: keep on the Service
//! selector and the endpoint's port, `namespace`/`service`/`pod`/
//! `container`/`endpoint`/`job` labels, `jobLabel`, `targetLabels`,
//! `podTargetLabels`, Failed/Succeeded pods dropped, sharding, then the
//! user's relabelings.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::crd::common::RelabelConfig;
use super::crd::service_monitor::{Endpoint, ServiceMonitor};
use super::secrets::{Assets, Credentials};
use crate::discovery::kubernetes::meta::sanitize_label_name;

/// Limits the Prometheus object enforces on every ServiceMonitor.
#[derive(Debug, Clone, Default)]
pub struct Enforced {
    pub sample_limit: Option<u64>,
    pub target_limit: Option<u64>,
    pub label_limit: Option<u64>,
    pub label_name_length_limit: Option<u64>,
    pub label_value_length_limit: Option<u64>,
}

/// The scrape configs of one ServiceMonitor (one per endpoint), for the
/// shard `shard` of `shards`. `namespaces` are the namespaces it searches;
/// credentials and certificates come from `assets`.
pub fn scrape_configs(
    sm: &ServiceMonitor,
    namespaces: &[String],
    enforced: &Enforced,
    shard: u32,
    shards: u32,
    assets: &mut Assets<'_>,
) -> Result<Vec<Value>, String> {
    let ns = sm.metadata.namespace.as_deref().unwrap_or("default");
    let name = sm.metadata.name.as_deref().unwrap_or("");
    let mut out = Vec::new();
    for (i, ep) in sm.spec.endpoints.iter().enumerate() {
        let at = |e: String| format!("endpoints[{i}]: {e}");
        let mut c = serde_json::Map::new();
        c.insert("job_name".into(), json!(format!("serviceMonitor/{ns}/{name}/{i}")));
        let mut sd = json!({"role": "endpointslice"});
        if !namespaces.is_empty() {
            sd["namespaces"] = json!({"names": namespaces});
        }
        c.insert("kubernetes_sd_configs".into(), json!([sd]));
        if let Some(v) = &ep.interval {
            c.insert("scrape_interval".into(), json!(v));
        }
        if let Some(v) = &ep.scrape_timeout {
            c.insert("scrape_timeout".into(), json!(v));
        }
        if let Some(v) = &ep.path {
            c.insert("metrics_path".into(), json!(v));
        }
        if let Some(v) = &ep.scheme {
            c.insert("scheme".into(), json!(v));
        }
        if !ep.params.is_empty() {
            c.insert("params".into(), json!(ep.params));
        }
        if let Some(v) = ep.honor_labels {
            c.insert("honor_labels".into(), json!(v));
        }
        if let Some(v) = ep.honor_timestamps {
            c.insert("honor_timestamps".into(), json!(v));
        }
        if let Some(v) = ep.follow_redirects {
            c.insert("follow_redirects".into(), json!(v));
        }
        if let Some(v) = ep.enable_http2 {
            c.insert("enable_http2".into(), json!(v));
        }
        let credentials = Credentials {
            basic: ep.basic_auth.as_ref(),
            authorization: ep.authorization.as_ref(),
            bearer: ep.bearer_token_secret.as_ref(),
            bearer_file: ep.bearer_token_file.as_deref(),
        };
        assets.http_client(&mut c, &format!("endpoints[{i}]"), ep.tls_config.as_ref(), credentials)?;
        for (key, v) in [
            ("sample_limit", effective_limit(sm.spec.sample_limit, enforced.sample_limit)),
            ("target_limit", effective_limit(sm.spec.target_limit, enforced.target_limit)),
            ("label_limit", effective_limit(None, enforced.label_limit)),
            ("label_name_length_limit", effective_limit(None, enforced.label_name_length_limit)),
            ("label_value_length_limit", effective_limit(None, enforced.label_value_length_limit)),
        ] {
            if let Some(v) = v {
                c.insert(key.into(), json!(v));
            }
        }
        let mut relabel = generated_relabelings(sm, ep).map_err(at)?;
        if shards > 1 {
            relabel.push(json!({"source_labels": ["__address__"], "target_label": "__tmp_hash", "modulus": shards, "action": "hashmod"}));
            relabel.push(json!({"source_labels": ["__tmp_hash"], "regex": shard.to_string(), "action": "keep"}));
        }
        for (what, list) in [("relabelings", &ep.relabelings), ("metricRelabelings", &ep.metric_relabelings)] {
            for (j, r) in list.iter().enumerate() {
                check_relabel(r).map_err(|e| at(format!("{what}[{j}]: {e}")))?;
            }
        }
        relabel.extend(ep.relabelings.iter().map(relabel_json));
        c.insert("relabel_configs".into(), Value::Array(relabel));
        if !ep.metric_relabelings.is_empty() {
            c.insert("metric_relabel_configs".into(), Value::Array(ep.metric_relabelings.iter().map(relabel_json).collect()));
        }
        out.push(Value::Object(c));
    }
    Ok(out)
}

/// The limit a job gets from its own setting and the one the Prometheus
/// object enforces. In Prometheus 0 means "no limit", so an own limit that
/// is unset or 0 cannot escape an enforced one: the enforced limit applies
/// then, and the smaller of the two otherwise. An enforced 0 (or none)
/// enforces nothing.
pub fn effective_limit(own: Option<u64>, enforced: Option<u64>) -> Option<u64> {
    match (own, enforced.filter(|e| *e > 0)) {
        (_, None) => own,
        (None | Some(0), Some(e)) => Some(e),
        (Some(o), Some(e)) => Some(o.min(e)),
    }
}

/// The operator's own relabeling for one endpoint, before the user's.
fn generated_relabelings(sm: &ServiceMonitor, ep: &Endpoint) -> Result<Vec<Value>, String> {
    let mut r = Vec::new();
    let svc_label = |k: &str| format!("__meta_kubernetes_service_label_{}", sanitize_label_name(k));
    let svc_present = |k: &str| format!("__meta_kubernetes_service_labelpresent_{}", sanitize_label_name(k));
    for (k, v) in sm.spec.selector.match_labels.iter().flatten() {
        r.push(json!({"source_labels": [svc_label(k), svc_present(k)], "regex": format!("({});true", regex_escape(v)), "action": "keep"}));
    }
    for e in sm.spec.selector.match_expressions.iter().flatten() {
        let alternatives = || e.values.iter().flatten().map(|v| regex_escape(v)).collect::<Vec<_>>().join("|");
        let (sources, regex, action) = match e.operator.as_str() {
            "In" => (vec![svc_label(&e.key), svc_present(&e.key)], format!("({});true", alternatives()), "keep"),
            "NotIn" => (vec![svc_label(&e.key), svc_present(&e.key)], format!("({});true", alternatives()), "drop"),
            "Exists" => (vec![svc_present(&e.key)], "true".to_string(), "keep"),
            "DoesNotExist" => (vec![svc_present(&e.key)], "true".to_string(), "drop"),
            op => return Err(format!("selector {:?}: unknown operator {op:?}", e.key)),
        };
        r.push(json!({"source_labels": sources, "regex": regex, "action": action}));
    }
    match (&ep.port, &ep.target_port) {
        (Some(port), _) => {
            r.push(json!({"source_labels": ["__meta_kubernetes_endpointslice_port_name"], "regex": regex_escape(port), "action": "keep"}))
        }
        (None, Some(IntOrString::Int(n))) => {
            r.push(json!({"source_labels": ["__meta_kubernetes_pod_container_port_number"], "regex": n.to_string(), "action": "keep"}))
        }
        (None, Some(IntOrString::String(name))) => {
            r.push(json!({"source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": regex_escape(name), "action": "keep"}))
        }
        (None, None) => return Err("one of port and targetPort is required".into()),
    }
    r.push(json!({"source_labels": ["__meta_kubernetes_endpointslice_address_target_kind", "__meta_kubernetes_endpointslice_address_target_name"], "separator": ";", "regex": "Node;(.*)", "replacement": "${1}", "target_label": "node"}));
    r.push(json!({"source_labels": ["__meta_kubernetes_endpointslice_address_target_kind", "__meta_kubernetes_endpointslice_address_target_name"], "separator": ";", "regex": "Pod;(.*)", "replacement": "${1}", "target_label": "pod"}));
    r.push(json!({"source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)", "action": "drop"}));
    for (source, target) in [
        ("__meta_kubernetes_namespace", "namespace"),
        ("__meta_kubernetes_service_name", "service"),
        ("__meta_kubernetes_pod_name", "pod"),
        ("__meta_kubernetes_pod_container_name", "container"),
    ] {
        r.push(json!({"source_labels": [source], "target_label": target}));
    }
    for l in &sm.spec.target_labels {
        r.push(json!({"source_labels": [svc_label(l)], "target_label": sanitize_label_name(l), "regex": "(.+)", "replacement": "${1}"}));
    }
    for l in &sm.spec.pod_target_labels {
        r.push(json!({"source_labels": [format!("__meta_kubernetes_pod_label_{}", sanitize_label_name(l))], "target_label": sanitize_label_name(l), "regex": "(.+)", "replacement": "${1}"}));
    }
    r.push(json!({"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job", "replacement": "${1}"}));
    if let Some(j) = &sm.spec.job_label {
        r.push(json!({"source_labels": [svc_label(j)], "target_label": "job", "regex": "(.+)", "replacement": "${1}"}));
    }
    let endpoint = match (&ep.port, &ep.target_port) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(IntOrString::String(s))) => Some(s.clone()),
        (None, Some(IntOrString::Int(n))) => Some(n.to_string()),
        _ => None,
    };
    if let Some(e) = endpoint {
        r.push(json!({"target_label": "endpoint", "replacement": e}));
    }
    Ok(r)
}

/// Checks a user relabeling as the configuration loader will, so the
/// error can name the ServiceMonitor field.
fn check_relabel(r: &RelabelConfig) -> Result<(), String> {
    let cfg: crate::relabel::RelabelConfig = serde_json::from_value(relabel_json(r)).map_err(|e| e.to_string())?;
    cfg.validate()?;
    crate::relabel::Relabeler::new(&[cfg]).map(|_| ()).map_err(|e| e.to_string())
}

/// A CRD relabeling in the configuration file's (snake_case) shape.
pub fn relabel_json(c: &RelabelConfig) -> Value {
    let mut o = serde_json::Map::new();
    if !c.source_labels.is_empty() {
        o.insert("source_labels".into(), json!(c.source_labels));
    }
    for (k, v) in [("separator", &c.separator), ("target_label", &c.target_label), ("regex", &c.regex), ("replacement", &c.replacement)] {
        if let Some(v) = v {
            o.insert(k.into(), json!(v));
        }
    }
    if let Some(m) = c.modulus {
        o.insert("modulus".into(), json!(m));
    }
    if let Some(a) = &c.action {
        o.insert("action".into(), json!(a.to_ascii_lowercase()));
    }
    Value::Object(o)
}

/// Escapes regex metacharacters (Go's `regexp.QuoteMeta`).
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::secrets::SecretValues;

    #[test]
    fn an_own_limit_of_zero_or_none_cannot_escape_the_enforced_one() {
        assert_eq!(effective_limit(Some(0), Some(100)), Some(100));
        assert_eq!(effective_limit(None, Some(100)), Some(100));
        assert_eq!(effective_limit(Some(500), Some(100)), Some(100));
        assert_eq!(effective_limit(Some(50), Some(100)), Some(50));
        // Nothing enforced (unset, or 0 meaning no limit): the own setting stands.
        assert_eq!(effective_limit(Some(50), None), Some(50));
        assert_eq!(effective_limit(Some(50), Some(0)), Some(50));
        assert_eq!(effective_limit(Some(0), Some(0)), Some(0));
        assert_eq!(effective_limit(None, None), None);
    }

    fn job(sm_limits: Value, enforced: &Enforced) -> Value {
        let mut spec = json!({"selector": {}, "endpoints": [{"port": "http"}]});
        if let (Value::Object(s), Value::Object(l)) = (&mut spec, sm_limits) {
            s.extend(l);
        }
        let sm: ServiceMonitor = serde_json::from_value(json!({
            "apiVersion": "monitoring.hearth.dev/v1alpha1", "kind": "ServiceMonitor",
            "metadata": {"name": "web", "namespace": "apps"}, "spec": spec,
        }))
        .expect("ServiceMonitor");
        let values = SecretValues::default();
        let mut assets = Assets::new(&values, "apps");
        let mut jobs = scrape_configs(&sm, &["apps".to_string()], enforced, 0, 1, &mut assets).expect("jobs");
        jobs.remove(0)
    }

    /// The CRD's CEL rule says so too, but preview never meets the API server.
    #[test]
    fn hashmod_needs_a_non_zero_modulus() {
        let relabel = |v: Value| -> RelabelConfig { serde_json::from_value(v).expect("relabeling") };
        let err = check_relabel(&relabel(json!({"sourceLabels": ["a"], "targetLabel": "h", "action": "HashMod"}))).expect_err("no modulus");
        assert!(err.contains("hashmod requires non-zero modulus"), "{err}");
        assert!(check_relabel(&relabel(json!({"sourceLabels": ["a"], "targetLabel": "h", "action": "hashmod", "modulus": 0}))).is_err());
        assert!(check_relabel(&relabel(json!({"sourceLabels": ["a"], "targetLabel": "h", "action": "HashMod", "modulus": 4}))).is_ok());
    }

    /// Every enforced limit in the generated job, for own settings of 0,
    /// none, more and less than the enforced value.
    #[test]
    fn enforced_limits_reach_every_job() {
        let enforced = Enforced {
            sample_limit: Some(100),
            target_limit: Some(10),
            label_limit: Some(30),
            label_name_length_limit: Some(64),
            label_value_length_limit: Some(256),
        };
        for (own, sample, target) in [
            (json!({"sampleLimit": 0, "targetLimit": 0}), 100, 10),
            (json!({}), 100, 10),
            (json!({"sampleLimit": 1000, "targetLimit": 20}), 100, 10),
            (json!({"sampleLimit": 50, "targetLimit": 5}), 50, 5),
        ] {
            let j = job(own.clone(), &enforced);
            assert_eq!(j["sample_limit"], json!(sample), "{own}");
            assert_eq!(j["target_limit"], json!(target), "{own}");
            assert_eq!(j["label_limit"], json!(30), "{own}");
            assert_eq!(j["label_name_length_limit"], json!(64), "{own}");
            assert_eq!(j["label_value_length_limit"], json!(256), "{own}");
        }
        // Nothing enforced: the ServiceMonitor's own limits, and no label limits.
        let j = job(json!({"sampleLimit": 7, "targetLimit": 0}), &Enforced::default());
        assert_eq!((j["sample_limit"].clone(), j["target_limit"].clone()), (json!(7), json!(0)));
        for k in ["label_limit", "label_name_length_limit", "label_value_length_limit"] {
            assert!(j.get(k).is_none(), "{k}: {j}");
        }
    }
}
