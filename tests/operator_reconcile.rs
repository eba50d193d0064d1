//! The reconciler against a tower-test mock of the API server (an
//! in-memory object store): create, update, no-op, invalid object,
//! deletion, paused, and fewer shards. Each test runs real reconciles and
//! checks what was written, and that the Helm chart's ClusterRole allows
//! every request made (as does the whole operator's startup and watches).

#[path = "support/chart.rs"]
mod chart;
#[path = "support/fake_kube.rs"]
mod fake_kube;
#[path = "support/rbac.rs"]
mod rbac;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use fake_kube::FakeKube;
use futures::future::BoxFuture;
use hearth::operator::crd::{AlertRule, Prometheus, ServiceMonitor};
use hearth::operator::metrics::Metrics;
use hearth::operator::propagation::ConfigProbe;
use hearth::operator::reconcile::{Context, Error, FINALIZER, reconcile};
use hearth::operator::secret_cache::SecretCache;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::api::PartialObjectMeta;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use rbac::Access;
use serde_json::{Value, json};

const PROM: &str = "/apis/monitoring.hearth.dev/v1alpha1/namespaces/monitoring/prometheuses/main";
const SECRET: &str = "/api/v1/namespaces/monitoring/secrets/hearth-main-config";
const STS0: &str = "/apis/apps/v1/namespaces/monitoring/statefulsets/hearth-main";
const STS1: &str = "/apis/apps/v1/namespaces/monitoring/statefulsets/hearth-main-shard-1";
const SM_OK: &str = "/apis/monitoring.hearth.dev/v1alpha1/namespaces/apps/servicemonitors/web";
const SM_BAD: &str = "/apis/monitoring.hearth.dev/v1alpha1/namespaces/apps/servicemonitors/broken";
const RB_APPS: &str = "/apis/rbac.authorization.k8s.io/v1/namespaces/apps/rolebindings/hearth-monitoring-main-discovery";

/// Answers every pod with whatever hash the test sets.
#[derive(Default)]
struct FakeProbe(Mutex<String>);

impl ConfigProbe for FakeProbe {
    fn config_hash<'a>(&'a self, _: &'a Pod) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move { Ok(self.0.lock().expect("lock").clone()) })
    }
}

/// The fake API plus the stores the controller would keep by watching it.
struct Harness {
    kube: FakeKube,
    ctx: Arc<Context>,
    probe: Arc<FakeProbe>,
    sms: Writer<ServiceMonitor>,
    ars: Writer<AlertRule>,
    secrets: Writer<PartialObjectMeta<Secret>>,
}

impl Harness {
    fn new() -> Harness {
        let kube = FakeKube::default();
        let client = kube.client();
        let (sm_store, sms) = reflector::store();
        let (ar_store, ars) = reflector::store();
        let (ns_store, mut nss) = reflector::store::<Namespace>();
        for ns in ["monitoring", "apps"] {
            let n: Namespace = serde_json::from_value(json!({"metadata": {"name": ns, "labels": {"team": "a"}}})).expect("namespace");
            nss.apply_watcher_event(&watcher::Event::Apply(n));
        }
        nss.apply_watcher_event(&watcher::Event::InitDone);
        let (secret_store, secrets) = reflector::store();
        let probe = Arc::new(FakeProbe::default());
        let ctx = Arc::new(Context {
            client: client.clone(),
            service_monitors: sm_store,
            alert_rules: ar_store,
            namespaces: ns_store,
            recorder: Recorder::new(client.clone(), Reporter { controller: "hearth-operator".into(), instance: None }),
            metrics: Metrics::default(),
            probe: probe.clone(),
            image: "hearth:test".into(),
            memos: Default::default(),
            secrets: Arc::new(SecretCache::new(client, secret_store)),
            applied: Default::default(),
        });
        Harness { kube, ctx, probe, sms, ars, secrets }
    }

    /// What the watches would deliver: the fake's current ServiceMonitors and AlertRules.
    fn sync_stores(&mut self) {
        let sms: Vec<ServiceMonitor> = self.objects("/apis/monitoring.hearth.dev/v1alpha1/namespaces/apps/servicemonitors/");
        self.sms.apply_watcher_event(&watcher::Event::Init);
        for s in sms {
            self.sms.apply_watcher_event(&watcher::Event::InitApply(s));
        }
        self.sms.apply_watcher_event(&watcher::Event::InitDone);
        let ars: Vec<AlertRule> = self.objects("/apis/monitoring.hearth.dev/v1alpha1/namespaces/apps/alertrules/");
        self.ars.apply_watcher_event(&watcher::Event::Init);
        for a in ars {
            self.ars.apply_watcher_event(&watcher::Event::InitApply(a));
        }
        self.ars.apply_watcher_event(&watcher::Event::InitDone);
        self.secrets.apply_watcher_event(&watcher::Event::Init);
        for ns in ["apps", "monitoring"] {
            for s in self.objects::<PartialObjectMeta<Secret>>(&format!("/api/v1/namespaces/{ns}/secrets/")) {
                self.secrets.apply_watcher_event(&watcher::Event::InitApply(s));
            }
        }
        self.secrets.apply_watcher_event(&watcher::Event::InitDone);
    }

    fn objects<T: serde::de::DeserializeOwned>(&self, prefix: &str) -> Vec<T> {
        self.kube.under(prefix).into_iter().map(|(_, v)| serde_json::from_value(v).expect("object")).collect()
    }

    /// One reconcile of the Prometheus object as the fake now has it; returns the writes.
    async fn reconcile(&mut self) -> Vec<String> {
        let (result, writes) = self.try_reconcile().await;
        result.expect("reconcile");
        writes
    }

    /// One reconcile that may fail; returns its result and the writes.
    async fn try_reconcile(&mut self) -> (Result<Action, Error>, Vec<String>) {
        self.sync_stores();
        let p: Prometheus = serde_json::from_value(self.kube.get(PROM).expect("prometheus")).expect("decode prometheus");
        self.kube.take_writes();
        let result = reconcile(Arc::new(p), self.ctx.clone()).await;
        assert_chart_allows(&self.kube);
        (result, self.kube.take_writes())
    }

    fn condition(&self, type_: &str) -> (String, String) {
        let p = self.kube.get(PROM).expect("prometheus");
        let c = p["status"]["conditions"].as_array().into_iter().flatten().find(|c| c["type"] == type_).cloned().unwrap_or(Value::Null);
        (c["status"].as_str().unwrap_or("").to_string(), c["reason"].as_str().unwrap_or("").to_string())
    }

    fn secret_file(&self, key: &str) -> String {
        let s: k8s_openapi::api::core::v1::Secret = serde_json::from_value(self.kube.get(SECRET).expect("secret")).expect("decode secret");
        let data = s.data.unwrap_or_default();
        let packed = data.get(&format!("{key}.zst")).map(|b| b.0.clone()).unwrap_or_default();
        String::from_utf8(zstd::decode_all(packed.as_slice()).expect("zstd")).expect("utf8")
    }

    /// Pods report the configuration now in the Secret, and are available.
    fn pods_catch_up(&self, shards: usize, replicas: usize) {
        let s = self.kube.get(SECRET).expect("secret");
        let hash = s["metadata"]["annotations"]["monitoring.hearth.dev/config-hash"].as_str().expect("hash annotation").to_string();
        *self.probe.0.lock().expect("lock") = hash;
        for shard in 0..shards {
            let sts = if shard == 0 { STS0.to_string() } else { format!("{STS0}-shard-{shard}") };
            let mut obj = self.kube.get(&sts).expect("statefulset");
            obj["status"] = json!({"replicas": replicas, "availableReplicas": replicas});
            self.kube.put(&sts, obj);
            for r in 0..replicas {
                let name = format!("hearth-main-{shard}-{r}");
                self.kube.put(
                    &format!("/api/v1/namespaces/monitoring/pods/{name}"),
                    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "monitoring",
                        "labels": {"app.kubernetes.io/name": "hearth", "monitoring.hearth.dev/prometheus": "monitoring.main"}},
                        "status": {"podIP": "10.0.0.1"}}),
                );
            }
        }
    }
}

/// The rules of the ClusterRole `hearth-operator` of charts/hearth (rendered once).
fn chart_operator_rules() -> &'static [PolicyRule] {
    static RULES: OnceLock<Vec<PolicyRule>> = OnceLock::new();
    RULES.get_or_init(|| {
        let objects = chart::render(&[]).expect("helm template");
        let role = objects
            .into_iter()
            .find(|o| o["kind"] == "ClusterRole" && o["metadata"]["name"] == "hearth-operator")
            .expect("the chart renders the ClusterRole hearth-operator");
        serde_json::from_value::<ClusterRole>(role).expect("a ClusterRole").rules.unwrap_or_default()
    })
}

/// Fails unless the chart's ClusterRole grants every request the fake has seen.
fn assert_chart_allows(kube: &FakeKube) {
    for r in kube.requests() {
        let a = Access::of_request(&r.method, &r.path, &r.query).unwrap_or_else(|| panic!("not a resource request: {r:?}"));
        assert!(rbac::allows(chart_operator_rules(), &a), "the chart's ClusterRole hearth-operator does not allow {a:?} ({r:?})");
    }
}

fn prometheus(spec: Value) -> Value {
    json!({
        "apiVersion": "monitoring.hearth.dev/v1alpha1", "kind": "Prometheus",
        "metadata": {"name": "main", "namespace": "monitoring", "uid": "u-1", "generation": 1, "finalizers": [FINALIZER]},
        "spec": spec,
    })
}

fn service_monitor(name: &str, port: &str, relabel_regex: &str) -> Value {
    json!({
        "apiVersion": "monitoring.hearth.dev/v1alpha1", "kind": "ServiceMonitor",
        "metadata": {"name": name, "namespace": "apps", "uid": format!("u-{name}"), "generation": 1, "labels": {"team": "a"}},
        "spec": {"selector": {"matchLabels": {"app": name}}, "endpoints": [
            {"port": port, "relabelings": [{"sourceLabels": ["__address__"], "regex": relabel_regex, "action": "keep"}]}
        ]},
    })
}

fn selecting_spec() -> Value {
    json!({"serviceMonitorSelector": {"matchLabels": {"team": "a"}}, "serviceMonitorNamespaceSelector": {}})
}

fn creates(writes: &[String], path: &str) -> bool {
    writes.iter().any(|w| w == &format!("PATCH {path}"))
}

#[tokio::test]
async fn create_then_noop_then_update() {
    let mut h = Harness::new();
    h.kube.put(PROM, prometheus(selecting_spec()));
    h.kube.put(SM_OK, service_monitor("web", "http", ".*"));

    // Create: every object is applied, pods have not caught up yet.
    let writes = h.reconcile().await;
    for path in [
        SECRET,
        STS0,
        RB_APPS,
        "/api/v1/namespaces/monitoring/services/hearth-main",
        "/api/v1/namespaces/monitoring/serviceaccounts/hearth-main",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/monitoring/roles/hearth-main-config",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/monitoring/rolebindings/hearth-main-config",
    ] {
        assert!(creates(&writes, path), "{path} not applied; writes: {writes:?}");
    }
    let config = h.secret_file("prometheus-shard-0.yaml");
    assert!(config.contains("serviceMonitor/apps/web/0"), "{config}");
    assert!(config.contains("prometheus_replica: ${POD_NAME}"), "{config}");
    assert_eq!(h.condition("Reconciled"), ("False".into(), "ConfigPropagating".into()));
    let sm = h.kube.get(SM_OK).expect("sm");
    assert_eq!(sm["status"]["bindings"][0]["prometheus"], "monitoring/main");
    assert_eq!(sm["status"]["bindings"][0]["result"], "Accepted");
    let sts = h.kube.get(STS0).expect("sts");
    let container = &sts["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/-/ready");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/-/healthy");
    let args: Vec<&str> = container["args"].as_array().expect("args").iter().filter_map(|a| a.as_str()).collect();
    assert!(args.contains(&"--config.kubernetes-secret=monitoring/hearth-main-config"), "{args:?}");
    assert_eq!(sts["metadata"]["ownerReferences"][0]["uid"], "u-1");
    // The pod gets its service-account token (Kubernetes mounts it unless
    // told not to): discovery and ServiceMonitors' bearerTokenFile use it.
    let pod = &sts["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "hearth-main");
    assert!(pod["automountServiceAccountToken"] != json!(false), "{pod}");
    let sa = h.kube.get("/api/v1/namespaces/monitoring/serviceaccounts/hearth-main").expect("the ServiceAccount");
    assert!(sa["automountServiceAccountToken"] != json!(false), "{sa}");

    // Pods report the new hash: Reconciled, and only the status was written.
    h.pods_catch_up(1, 1);
    let writes = h.reconcile().await;
    assert_eq!(writes, vec![format!("PATCH {PROM}/status")]);
    assert_eq!(h.condition("Reconciled"), ("True".into(), "ConfigApplied".into()));
    assert_eq!(h.condition("Available"), ("True".into(), "AllAvailable".into()));

    // No-op: nothing is written at all.
    let writes = h.reconcile().await;
    assert!(writes.is_empty(), "a no-op reconcile wrote {writes:?}");

    // Update: a changed ServiceMonitor rewrites the Secret only (the pods keep running).
    h.kube.put(SM_OK, service_monitor("web", "metrics", ".*"));
    let writes = h.reconcile().await;
    assert!(creates(&writes, SECRET), "{writes:?}");
    assert!(!creates(&writes, STS0), "the StatefulSet must not change for a config change: {writes:?}");
    assert!(h.secret_file("prometheus-shard-0.yaml").contains("metrics"));
    assert_eq!(h.condition("Reconciled").1, "ConfigPropagating");
}

#[tokio::test]
async fn an_invalid_service_monitor_is_rejected_alone() {
    let mut h = Harness::new();
    h.kube.put(PROM, prometheus(selecting_spec()));
    h.kube.put(SM_OK, service_monitor("web", "http", ".*"));
    h.kube.put(SM_BAD, service_monitor("broken", "http", "(unclosed"));
    let writes = h.reconcile().await;
    let config = h.secret_file("prometheus-shard-0.yaml");
    assert!(config.contains("serviceMonitor/apps/web/0"));
    assert!(!config.contains("serviceMonitor/apps/broken"), "{config}");
    let bad = h.kube.get(SM_BAD).expect("sm");
    assert_eq!(bad["status"]["bindings"][0]["result"], "Rejected");
    let reason = bad["status"]["bindings"][0]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("endpoints[0]") && reason.contains("relabelings[0]"), "{reason}");
    assert_eq!(bad["status"]["conditions"][0]["status"], "False");
    let events = h.kube.under("/apis/events.k8s.io/v1/namespaces/apps/events/");
    assert_eq!(events.len(), 1, "one Warning Event: {writes:?}");
    assert_eq!(events[0].1["type"], "Warning");
    assert_eq!(events[0].1["regarding"]["name"], "broken");
    assert_eq!(h.kube.get(SM_OK).expect("sm")["status"]["bindings"][0]["result"], "Accepted");

    // The same rejection again records no second Event.
    h.reconcile().await;
    assert_eq!(h.kube.under("/apis/events.k8s.io/v1/namespaces/apps/events/").len(), 1);

    // Deselected (label removed): the binding is withdrawn.
    let mut bad = h.kube.get(SM_BAD).expect("sm");
    bad["metadata"]["labels"] = json!({"team": "b"});
    h.kube.put(SM_BAD, bad);
    h.reconcile().await;
    assert!(h.kube.get(SM_BAD).expect("sm")["status"]["bindings"].is_null());
}

#[tokio::test]
async fn an_invalid_spec_changes_nothing_and_says_why() {
    let mut h = Harness::new();
    let mut spec = selecting_spec();
    spec["additionalArgs"] = json!([{"name": "config.file", "value": "/x"}]);
    h.kube.put(PROM, prometheus(spec));
    let writes = h.reconcile().await;
    assert!(!creates(&writes, STS0) && !creates(&writes, SECRET), "{writes:?}");
    assert_eq!(h.condition("Reconciled"), ("False".into(), "InvalidSpec".into()));
    let p = h.kube.get(PROM).expect("prometheus");
    assert!(p["status"]["conditions"][0]["message"].as_str().unwrap_or("").contains("additionalArgs[0]"));
    assert_eq!(h.kube.under("/apis/events.k8s.io/v1/namespaces/monitoring/events/").len(), 1);
}

#[tokio::test]
async fn paused_objects_are_left_alone() {
    let mut h = Harness::new();
    let mut spec = selecting_spec();
    spec["paused"] = json!(true);
    h.kube.put(PROM, prometheus(spec));
    h.kube.put(SM_OK, service_monitor("web", "http", ".*"));
    let writes = h.reconcile().await;
    assert_eq!(writes, vec![format!("PATCH {PROM}/status")]);
    assert_eq!(h.condition("Reconciled"), ("False".into(), "Paused".into()));
    assert!(h.kube.get(SECRET).is_none());
}

#[tokio::test]
async fn finalizer_is_added_first_and_deletion_cleans_up() {
    let mut h = Harness::new();
    let mut p = prometheus(selecting_spec());
    p["metadata"]["finalizers"] = json!([]);
    h.kube.put(PROM, p);
    h.kube.put(SM_OK, service_monitor("web", "http", ".*"));
    let writes = h.reconcile().await;
    assert_eq!(writes, vec![format!("PATCH {PROM}")]);
    assert_eq!(h.kube.get(PROM).expect("p")["metadata"]["finalizers"], json!([FINALIZER]));

    h.reconcile().await;
    assert!(h.kube.get(RB_APPS).is_some(), "discovery binding in the ServiceMonitor's namespace");
    let mut p = h.kube.get(PROM).expect("p");
    p["metadata"]["deletionTimestamp"] = json!("2026-11-21T00:00:00Z");
    h.kube.put(PROM, p);
    h.reconcile().await;
    assert!(h.kube.get(RB_APPS).is_none(), "cross-namespace binding removed");
    assert_eq!(h.kube.get(PROM).expect("p")["metadata"]["finalizers"], json!([]));
    assert!(h.kube.get(SM_OK).expect("sm")["status"]["bindings"].is_null(), "binding withdrawn on deletion");
}

#[tokio::test]
async fn fewer_shards_remove_the_extra_statefulsets() {
    let mut h = Harness::new();
    let mut spec = selecting_spec();
    spec["shards"] = json!(2);
    h.kube.put(PROM, prometheus(spec.clone()));
    h.kube.put(SM_OK, service_monitor("web", "http", ".*"));
    h.reconcile().await;
    assert!(h.kube.get(STS1).is_some());
    assert!(
        h.secret_file("prometheus-shard-1.yaml").contains("regex: '1'")
            || h.secret_file("prometheus-shard-1.yaml").contains("regex: \"1\"")
    );
    h.pods_catch_up(2, 1);
    h.reconcile().await;
    assert_eq!(h.condition("Reconciled").0, "True");

    let mut p = h.kube.get(PROM).expect("p");
    p["spec"]["shards"] = json!(1);
    p["metadata"]["generation"] = json!(2);
    h.kube.put(PROM, p);
    let writes = h.reconcile().await;
    assert!(writes.contains(&format!("DELETE {STS1}")), "{writes:?}");
    assert!(h.kube.get(STS1).is_none());
    assert!(h.kube.get(STS0).is_some());
}

#[tokio::test]
async fn any_namespace_needs_a_cluster_binding_and_narrowing_removes_it() {
    let mut h = Harness::new();
    h.kube.put(PROM, prometheus(selecting_spec()));
    let mut sm = service_monitor("web", "http", ".*");
    sm["spec"]["namespaceSelector"] = json!({"any": true});
    h.kube.put(SM_OK, sm);
    let crb = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/hearth-monitoring-main-discovery";
    let writes = h.reconcile().await;
    assert!(creates(&writes, crb), "{writes:?}");
    assert!(h.kube.get(RB_APPS).is_none(), "no per-namespace binding when cluster-wide");
    let binding = h.kube.get(crb).expect("binding");
    assert_eq!(binding["roleRef"]["name"], "hearth-server-discovery");
    assert_eq!(binding["subjects"][0]["name"], "hearth-main");

    h.kube.put(SM_OK, service_monitor("web", "http", ".*"));
    let writes = h.reconcile().await;
    assert!(writes.contains(&format!("DELETE {crb}")), "{writes:?}");
    assert!(h.kube.get(RB_APPS).is_some());
}

fn secret(ns: &str, name: &str, data: &[(&str, &str)]) -> Value {
    let data: serde_json::Map<String, Value> =
        data.iter().map(|(k, v)| (k.to_string(), json!(k8s_openapi::ByteString(v.as_bytes().to_vec())))).collect();
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns}, "data": data})
}

impl Harness {
    /// A file of the config Secret that is stored as is (not compressed).
    fn plain_file(&self, key: &str) -> Option<String> {
        let s: Secret = serde_json::from_value(self.kube.get(SECRET).expect("secret")).expect("decode secret");
        s.data.unwrap_or_default().get(key).map(|b| String::from_utf8_lossy(&b.0).into_owned())
    }

    fn config_hash(&self) -> String {
        self.kube.get(SECRET).expect("secret")["metadata"]["annotations"]["monitoring.hearth.dev/config-hash"].as_str().unwrap_or("").into()
    }
}

#[tokio::test]
async fn credentials_come_from_secrets_and_follow_their_rotation() {
    let mut h = Harness::new();
    const CREDS: &str = "/api/v1/namespaces/apps/secrets/creds";
    h.kube.put(PROM, prometheus(selecting_spec()));
    h.kube.put(CREDS, secret("apps", "creds", &[("user", "scraper"), ("pw", "first")]));
    let mut sm = service_monitor("web", "http", ".*");
    sm["spec"]["endpoints"][0]["basicAuth"] =
        json!({"username": {"name": "creds", "key": "user"}, "password": {"name": "creds", "key": "pw"}});
    h.kube.put(SM_OK, sm);

    h.reconcile().await;
    let config = h.secret_file("prometheus-shard-0.yaml");
    assert!(config.contains("username: scraper"), "{config}");
    assert!(config.contains("password_file: secret_apps_creds_pw"), "{config}");
    assert!(!config.contains("first"), "the password stays out of the configuration: {config}");
    assert_eq!(h.plain_file("secret_apps_creds_pw").as_deref(), Some("first"));
    assert_eq!(h.kube.get(SM_OK).expect("sm")["status"]["bindings"][0]["result"], "Accepted");
    assert_eq!(h.ctx.secrets.readers_of("apps", "creds"), vec!["monitoring/main".to_string()], "a change to it requeues main");
    h.pods_catch_up(1, 1);
    h.reconcile().await;
    assert_eq!(h.condition("Reconciled").0, "True");
    let before = h.config_hash();

    // Rotation: the new value reaches the config Secret and changes its hash, so pods reload and confirm.
    h.kube.put(CREDS, secret("apps", "creds", &[("user", "scraper"), ("pw", "second")]));
    let writes = h.reconcile().await;
    assert!(creates(&writes, SECRET), "{writes:?}");
    assert_eq!(h.plain_file("secret_apps_creds_pw").as_deref(), Some("second"));
    assert_ne!(h.config_hash(), before);
    assert_eq!(h.condition("Reconciled"), ("False".into(), "ConfigPropagating".into()));

    // The Secret disappears: the ServiceMonitor is rejected with the reason, its file goes.
    h.kube.delete(CREDS);
    h.reconcile().await;
    let sm = h.kube.get(SM_OK).expect("sm");
    assert_eq!(sm["status"]["bindings"][0]["result"], "Rejected");
    assert_eq!(sm["status"]["bindings"][0]["reason"], "endpoints[0].basicAuth.username: Secret apps/creds not found");
    assert_eq!(h.plain_file("secret_apps_creds_pw"), None);
    assert!(!h.secret_file("prometheus-shard-0.yaml").contains("serviceMonitor/apps/web"));
}

#[tokio::test]
async fn web_tls_and_users_configure_the_servers_and_their_probes() {
    let mut h = Harness::new();
    let mut spec = selecting_spec();
    spec["web"] = json!({
        "tlsConfig": {"cert": {"name": "tls", "key": "tls.crt"}, "keySecret": {"name": "tls", "key": "tls.key"}},
        "basicAuthUsersSecret": "users",
    });
    h.kube.put(PROM, prometheus(spec));
    h.kube.put("/api/v1/namespaces/monitoring/secrets/tls", secret("monitoring", "tls", &[("tls.crt", "CERT"), ("tls.key", "KEY")]));

    // The users Secret is missing: an invalid spec, nothing applied.
    let writes = h.reconcile().await;
    assert!(!creates(&writes, STS0), "{writes:?}");
    let (status, reason) = h.condition("Reconciled");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "InvalidSpec"));
    let message = h.kube.get(PROM).expect("p")["status"]["conditions"][0]["message"].as_str().unwrap_or("").to_string();
    assert!(message.contains("web.basicAuthUsersSecret: Secret monitoring/users not found"), "{message}");

    h.kube.put("/api/v1/namespaces/monitoring/secrets/users", secret("monitoring", "users", &[("grafana", "not-a-hash")]));
    h.reconcile().await;
    let message = h.kube.get(PROM).expect("p")["status"]["conditions"][0]["message"].as_str().unwrap_or("").to_string();
    assert!(message.contains("must be a bcrypt hash"), "{message}");

    let hash = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";
    h.kube.put("/api/v1/namespaces/monitoring/secrets/users", secret("monitoring", "users", &[("grafana", hash)]));
    let writes = h.reconcile().await;
    assert!(creates(&writes, STS0), "{writes:?}");
    let web = h.plain_file("web-config.yaml").expect("web-config.yaml in the config Secret");
    assert!(web.contains("cert_file: secret_monitoring_tls_tls.crt"), "{web}");
    assert!(web.contains(hash), "{web}");
    assert_eq!(h.plain_file("secret_monitoring_tls_tls.key").as_deref(), Some("KEY"));
    let sts = h.kube.get(STS0).expect("sts");
    let container = &sts["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"].as_array().expect("args").iter().filter_map(|a| a.as_str()).collect();
    assert!(args.contains(&"--web.config.file=/etc/hearth/config/web-config.yaml"), "{args:?}");
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        assert_eq!(container[probe]["httpGet"]["scheme"], "HTTPS", "{probe}");
    }
}

/// The operator binds `hearth-server-discovery` to the servers; Kubernetes
/// only lets it bind what it holds itself (no escalation).
#[test]
fn the_chart_grants_the_operator_what_it_binds() {
    let discovery = hearth::operator::workload::discovery_cluster_role().rules.unwrap_or_default();
    let wanted = rbac::expand(&discovery);
    assert!(wanted.len() >= 10, "{wanted:?}");
    // What the kubelet, the API server and the control plane check for a
    // scrape with the server's own token (bearerTokenFile).
    for (resource, group) in [("nodes/metrics", ""), ("/metrics", ""), ("/metrics/cadvisor", "")] {
        let a = rbac::Access { verb: "get".into(), group: group.into(), resource: resource.into() };
        assert!(wanted.contains(&a), "hearth-server-discovery lacks {a:?}");
    }
    for a in wanted {
        assert!(
            rbac::allows(chart_operator_rules(), &a),
            "hearth-server-discovery grants {a:?}, which the chart does not give the operator"
        );
    }
}

/// The whole `operator run` (CRDs and ClusterRole applied, every watch
/// started) against the fake, for a few seconds: everything it asks for is
/// allowed by the chart.
#[tokio::test]
async fn the_chart_allows_the_operators_startup_and_watches() {
    let kube = FakeKube::default();
    kube.put(PROM, prometheus(selecting_spec()));
    let cfg = hearth::operator::controller::OperatorConfig {
        metrics_address: "127.0.0.1:0".parse().expect("address"),
        image: "hearth:test".into(),
        leader_election: false,
        namespace: "monitoring".into(),
        identity: "test".into(),
    };
    let run = hearth::operator::controller::run_with_client(kube.client(), cfg);
    // Runs until stopped; the deadline only ends the observation.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    tokio::pin!(run);
    let wanted = [
        ("patch", "apiextensions.k8s.io", "customresourcedefinitions"),
        ("patch", "rbac.authorization.k8s.io", "clusterroles"),
        ("watch", "monitoring.hearth.dev", "prometheuses"),
        ("watch", "monitoring.hearth.dev", "servicemonitors"),
        ("watch", "monitoring.hearth.dev", "alertrules"),
        ("watch", "", "namespaces"),
        ("watch", "", "secrets"),
        ("watch", "", "services"),
        ("watch", "apps", "statefulsets"),
    ];
    let seen = |kube: &FakeKube| -> Vec<Access> {
        kube.requests().iter().filter_map(|r| Access::of_request(&r.method, &r.path, &r.query)).collect()
    };
    let missing = |seen: &[Access]| -> Vec<(&str, &str, &str)> {
        wanted.iter().copied().filter(|(v, g, r)| !seen.iter().any(|a| a.verb == *v && a.group == *g && a.resource == *r)).collect()
    };
    while !missing(&seen(&kube)).is_empty() && tokio::time::Instant::now() < deadline {
        tokio::select! {
            result = &mut run => panic!("the operator stopped: {result:?}"),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    let seen = seen(&kube);
    assert!(missing(&seen).is_empty(), "the operator never made {:?}; it made {seen:?}", missing(&seen));
    assert_chart_allows(&kube);
}

/// A ServiceMonitor valid on its own but not under the Prometheus object's
/// global section (its timeout exceeds the 10s interval it inherits) is
/// rejected alone, and the configuration written still loads.
#[tokio::test]
async fn a_service_monitor_invalid_under_the_global_section_is_rejected_alone() {
    let mut h = Harness::new();
    let mut spec = selecting_spec();
    spec["scrapeInterval"] = json!("10s");
    h.kube.put(PROM, prometheus(spec));
    h.kube.put(SM_OK, service_monitor("web", "http", ".*"));
    let mut slow = service_monitor("broken", "http", ".*");
    slow["spec"]["endpoints"][0]["scrapeTimeout"] = json!("30s");
    h.kube.put(SM_BAD, slow);
    h.reconcile().await;

    assert_eq!(h.condition("Reconciled"), ("False".into(), "ConfigPropagating".into()));
    let config = h.secret_file("prometheus-shard-0.yaml");
    assert!(config.contains("serviceMonitor/apps/web/0"), "{config}");
    assert!(!config.contains("serviceMonitor/apps/broken"), "{config}");
    hearth::config::Config::parse(&config, std::path::Path::new("/"))
        .unwrap_or_else(|e| panic!("the written configuration: {e}\n{config}"));
    let bad = h.kube.get(SM_BAD).expect("sm");
    assert_eq!(bad["status"]["bindings"][0]["result"], "Rejected");
    let reason = bad["status"]["bindings"][0]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("scrape timeout greater than scrape interval"), "{reason}");
    let events = h.kube.under("/apis/events.k8s.io/v1/namespaces/apps/events/");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!((events[0].1["type"].as_str(), events[0].1["regarding"]["name"].as_str()), (Some("Warning"), Some("broken")));
    assert_eq!(h.kube.get(SM_OK).expect("sm")["status"]["bindings"][0]["result"], "Accepted");
}

/// A new generation of a ServiceMonitor that stays Accepted still gets its
/// `observedGeneration` (and the condition's) rewritten, once.
#[tokio::test]
async fn an_unchanged_binding_follows_the_objects_generation() {
    let mut h = Harness::new();
    h.kube.put(PROM, prometheus(selecting_spec()));
    h.kube.put(SM_OK, service_monitor("web", "http", ".*"));
    h.reconcile().await;
    let sm = h.kube.get(SM_OK).expect("sm");
    assert_eq!((sm["status"]["observedGeneration"].clone(), sm["status"]["bindings"][0]["result"].clone()), (json!(1), json!("Accepted")));

    let mut sm = service_monitor("web", "metrics", ".*");
    sm["metadata"]["generation"] = json!(2);
    h.kube.put(SM_OK, sm);
    let writes = h.reconcile().await;
    assert!(writes.contains(&format!("PATCH {SM_OK}/status")), "{writes:?}");
    let sm = h.kube.get(SM_OK).expect("sm");
    assert_eq!(sm["status"]["observedGeneration"], 2);
    assert_eq!(sm["status"]["conditions"][0]["observedGeneration"], 2);
    assert_eq!(sm["status"]["bindings"][0]["result"], "Accepted");

    // Up to date now: not written again.
    let writes = h.reconcile().await;
    assert!(!writes.contains(&format!("PATCH {SM_OK}/status")), "{writes:?}");
}

/// The Prometheus object's `Reconciled` message.
fn reconciled_message(h: &Harness) -> String {
    let p = h.kube.get(PROM).expect("prometheus");
    let c = p["status"]["conditions"].as_array().into_iter().flatten().find(|c| c["type"] == "Reconciled").cloned().unwrap_or(Value::Null);
    c["message"].as_str().unwrap_or("").to_string()
}

/// The Events about the Prometheus object, as (type, reason, note).
fn prometheus_events(h: &Harness) -> Vec<(String, String, String)> {
    h.kube
        .under("/apis/events.k8s.io/v1/namespaces/monitoring/events/")
        .into_iter()
        .filter(|(_, e)| e["regarding"]["kind"] == "Prometheus")
        .map(|(_, e)| {
            let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
            (s("type"), s("reason"), s("note"))
        })
        .collect()
}

/// The API server refuses the StatefulSet (a bad affinity): the status
/// says ApplyFailed with the API's message, one Warning Event per distinct
/// message, the reconcile fails (counted, retried); accepted again, it
/// recovers.
#[tokio::test]
async fn an_apply_the_api_server_refuses_reaches_the_status_and_events() {
    let mut h = Harness::new();
    h.kube.put(PROM, prometheus(selecting_spec()));
    h.kube.put(SM_OK, service_monitor("web", "http", ".*"));
    let affinity = "StatefulSet.apps \"hearth-main\" is invalid: spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: must have at least one node selector term";
    h.kube.refuse(STS0, Some((422, affinity)));
    let (result, _) = h.try_reconcile().await;
    match result {
        Err(Error::Kube(kube::Error::Api(e))) => assert_eq!(e.code, 422),
        other => panic!("expected the API's 422, got {other:?}"),
    }
    assert_eq!(h.condition("Reconciled"), ("False".into(), "ApplyFailed".into()));
    assert_eq!(reconciled_message(&h), affinity);
    let events = prometheus_events(&h);
    assert_eq!(events, vec![("Warning".to_string(), "ApplyFailed".to_string(), affinity.to_string())]);

    // The same refusal again: no Event is recorded.
    let (result, writes) = h.try_reconcile().await;
    assert!(result.is_err());
    assert!(!writes.iter().any(|w| w.contains("/events")), "{writes:?}");

    // Another message: recorded again (the Recorder counts a repeated
    // reason as a series of the same Event).
    h.kube.refuse(STS0, Some((403, "statefulsets.apps \"hearth-main\" is forbidden: exceeded quota")));
    let (result, writes) = h.try_reconcile().await;
    assert!(result.is_err());
    assert!(writes.iter().any(|w| w.contains("/namespaces/monitoring/events/")), "{writes:?}");
    assert_eq!(h.condition("Reconciled"), ("False".into(), "ApplyFailed".into()));
    assert!(reconciled_message(&h).contains("exceeded quota"));

    // Accepted again: applied, and the condition moves on.
    h.kube.refuse(STS0, None);
    let writes = h.reconcile().await;
    assert!(creates(&writes, STS0), "{writes:?}");
    assert_eq!(h.condition("Reconciled"), ("False".into(), "ConfigPropagating".into()));
}

/// A change of `volumeClaimTemplates`, which the API server refuses on an
/// existing StatefulSet: it is deleted with propagationPolicy Orphan (the
/// pods keep running) and created again with the new template.
#[tokio::test]
async fn an_immutable_statefulset_change_recreates_it_orphaning_the_pods() {
    let mut h = Harness::new();
    let storage = |size: &str| json!({"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}}});
    let mut spec = selecting_spec();
    spec["storage"] = storage("1Gi");
    h.kube.put(PROM, prometheus(spec.clone()));
    h.kube.put(SM_OK, service_monitor("web", "http", ".*"));
    h.reconcile().await;
    h.pods_catch_up(1, 1);
    h.reconcile().await;
    assert_eq!(h.condition("Reconciled").0, "True");

    let mut p = h.kube.get(PROM).expect("p");
    p["spec"]["storage"] = storage("5Gi");
    p["metadata"]["generation"] = json!(2);
    h.kube.put(PROM, p);
    let writes = h.reconcile().await;
    let delete = writes.iter().position(|w| w == &format!("DELETE {STS0}")).unwrap_or_else(|| panic!("no delete: {writes:?}"));
    let recreate = writes.iter().rposition(|w| w == &format!("PATCH {STS0}")).unwrap_or_else(|| panic!("no apply: {writes:?}"));
    assert!(delete < recreate, "deleted, then created again: {writes:?}");
    let deletes: Vec<_> = h.kube.requests().into_iter().filter(|r| r.method == "DELETE" && r.path == STS0).collect();
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].body["propagationPolicy"], "Orphan", "{:?}", deletes[0]);
    let sts = h.kube.get(STS0).expect("created again");
    assert_eq!(sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"], "5Gi");
    assert!(h.kube.get("/api/v1/namespaces/monitoring/pods/hearth-main-0-0").is_some(), "the pod is left running");
    assert_ne!(h.condition("Reconciled").1, "ApplyFailed");
    assert!(prometheus_events(&h).iter().any(|(t, r, _)| t == "Normal" && r == "StatefulSetRecreated"), "{:?}", prometheus_events(&h));
}

/// Edits made behind the operator's back (`kubectl scale`, an edited
/// config Secret) are undone at the next reconcile; untouched objects are
/// not written.
#[tokio::test]
async fn edits_to_generated_objects_are_repaired() {
    let mut h = Harness::new();
    h.kube.put(PROM, prometheus(selecting_spec()));
    h.kube.put(SM_OK, service_monitor("web", "http", ".*"));
    h.reconcile().await;
    h.pods_catch_up(1, 1);
    h.reconcile().await;
    assert!(h.reconcile().await.is_empty(), "settled");

    // kubectl scale: a spec change (new generation).
    let mut sts = h.kube.get(STS0).expect("sts");
    sts["spec"]["replicas"] = json!(5);
    h.kube.put(STS0, sts);
    let writes = h.reconcile().await;
    assert!(creates(&writes, STS0), "{writes:?}");
    assert_eq!(h.kube.get(STS0).expect("sts")["spec"]["replicas"], 1);
    let writes = h.reconcile().await;
    assert!(writes.is_empty(), "repaired once, then left alone: {writes:?}");

    // A status update of the StatefulSet (no new generation) is not an edit.
    let mut sts = h.kube.get(STS0).expect("sts");
    sts["status"]["observedGeneration"] = sts["metadata"]["generation"].clone();
    h.kube.put(STS0, sts);
    let writes = h.reconcile().await;
    assert!(writes.is_empty(), "{writes:?}");

    // An edited config Secret.
    let mut secret = h.kube.get(SECRET).expect("secret");
    let garbage = zstd::encode_all(&b"scrape_configs: []\n"[..], 3).expect("zstd");
    secret["data"]["prometheus-shard-0.yaml.zst"] = json!(k8s_openapi::ByteString(garbage));
    h.kube.put(SECRET, secret);
    let writes = h.reconcile().await;
    assert!(creates(&writes, SECRET), "{writes:?}");
    assert!(h.secret_file("prometheus-shard-0.yaml").contains("serviceMonitor/apps/web/0"));
    let writes = h.reconcile().await;
    assert!(writes.is_empty(), "{writes:?}");
}

fn alert_rule(name: &str, expr: &str) -> Value {
    json!({
        "apiVersion": "monitoring.hearth.dev/v1alpha1", "kind": "AlertRule",
        "metadata": {"name": name, "namespace": "apps", "uid": format!("u-{name}"), "generation": 1, "labels": {"team": "a"}},
        "spec": {"groups": [{"name": name, "rules": [{"alert": "Down", "expr": expr, "for": "5m"}]}]},
    })
}

/// An AlertRule whose expression does not parse is rejected with the
/// parser's reason and a Warning Event; the others still reach the rules
/// in the config Secret.
#[tokio::test]
async fn an_invalid_alert_rule_is_rejected_alone() {
    const AR_OK: &str = "/apis/monitoring.hearth.dev/v1alpha1/namespaces/apps/alertrules/node";
    const AR_BAD: &str = "/apis/monitoring.hearth.dev/v1alpha1/namespaces/apps/alertrules/typo";
    let mut h = Harness::new();
    let mut spec = selecting_spec();
    spec["ruleSelector"] = json!({"matchLabels": {"team": "a"}});
    spec["ruleNamespaceSelector"] = json!({});
    h.kube.put(PROM, prometheus(spec));
    h.kube.put(AR_OK, alert_rule("node", "up == 0"));
    h.kube.put(AR_BAD, alert_rule("typo", "sum(rate(x[5m])"));
    h.reconcile().await;

    let good = h.secret_file("rules-apps-node.yaml");
    assert!(good.contains("up == 0"), "{good}");
    let config = h.secret_file("prometheus-shard-0.yaml");
    assert!(config.contains("rules-*.yaml"), "{config}");
    let s: Secret = serde_json::from_value(h.kube.get(SECRET).expect("secret")).expect("decode secret");
    assert!(!s.data.unwrap_or_default().contains_key("rules-apps-typo.yaml.zst"), "the rejected rule file is left out");

    let bad = h.kube.get(AR_BAD).expect("alert rule");
    assert_eq!(bad["status"]["bindings"][0]["result"], "Rejected");
    let reason = bad["status"]["bindings"][0]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("could not parse expression"), "{reason}");
    assert_eq!(bad["status"]["conditions"][0]["status"], "False");
    assert_eq!(h.kube.get(AR_OK).expect("alert rule")["status"]["bindings"][0]["result"], "Accepted");
    let events = h.kube.under("/apis/events.k8s.io/v1/namespaces/apps/events/");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].1["type"], "Warning");
    assert_eq!(events[0].1["regarding"]["kind"], "AlertRule");
    assert_eq!(events[0].1["regarding"]["name"], "typo");
    assert_eq!(h.kube.get(PROM).expect("p")["status"]["selectedAlertRules"], 1);
}

/// Alertmanager basic auth from a Secret of the Prometheus object's
/// namespace: the user inline, the password as a file of the config Secret
/// that the alerting section names.
#[tokio::test]
async fn alertmanager_credentials_come_from_secrets() {
    let mut h = Harness::new();
    let mut spec = selecting_spec();
    spec["alerting"] = json!({"alertmanagers": [{"name": "alertmanager", "port": "web",
        "basicAuth": {"username": {"name": "am-auth", "key": "user"}, "password": {"name": "am-auth", "key": "password"}}}]});
    h.kube.put(PROM, prometheus(spec));
    h.kube.put(
        "/api/v1/namespaces/monitoring/secrets/am-auth",
        secret("monitoring", "am-auth", &[("user", "sender"), ("password", "hunter2")]),
    );
    h.reconcile().await;

    let config = h.secret_file("prometheus-shard-0.yaml");
    let doc: Value = serde_saphyr::from_str(&config).expect("generated YAML");
    let am = &doc["alerting"]["alertmanagers"][0];
    assert_eq!(am["basic_auth"], json!({"username": "sender", "password_file": "secret_monitoring_am-auth_password"}), "{config}");
    assert!(!config.contains("hunter2"), "{config}");
    assert_eq!(h.plain_file("secret_monitoring_am-auth_password").as_deref(), Some("hunter2"));
    assert_eq!(h.ctx.secrets.readers_of("monitoring", "am-auth"), vec!["monitoring/main".to_string()]);
    assert_eq!(h.condition("Reconciled").1, "ConfigPropagating");
}

/// A sample's value in the text exposition `text` (`name{labels}` as written).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The operator's metrics as `/metrics` serves them.
fn exposition(h: &Harness) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    h.ctx.metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
    text
}

/// A reconcile moves the reconcile counter, the duration histogram and the
/// queue depth; a failed one the errors counter by reason; applies count
/// writes.
#[tokio::test]
async fn operator_metrics_follow_the_reconciles() {
    let mut h = Harness::new();
    h.kube.put(PROM, prometheus(selecting_spec()));
    h.kube.put(SM_OK, service_monitor("web", "http", ".*"));
    let before = exposition(&h);
    assert_eq!(sample(&before, "hearth_operator_reconciles_total"), 0.0);

    h.ctx.metrics.queued("monitoring/main".into());
    h.ctx.metrics.queued("monitoring/other".into());
    assert_eq!(sample(&exposition(&h), "hearth_operator_reconcile_queue_depth"), 2.0);
    h.reconcile().await;
    let after = exposition(&h);
    assert_eq!(sample(&after, "hearth_operator_reconciles_total"), 1.0);
    assert_eq!(sample(&after, "hearth_operator_reconcile_duration_seconds_count"), 1.0);
    assert!(sample(&after, "hearth_operator_reconcile_duration_seconds_sum") > 0.0, "{after}");
    assert_eq!(sample(&after, "hearth_operator_reconcile_queue_depth"), 1.0, "main was reconciled, other still waits");
    assert!(sample(&after, "hearth_operator_object_writes_total") >= 7.0, "{after}");

    h.kube.refuse(STS0, Some((422, "StatefulSet.apps \"hearth-main\" is invalid")));
    let mut p = h.kube.get(PROM).expect("p");
    p["spec"]["replicas"] = json!(2);
    h.kube.put(PROM, p);
    assert!(h.try_reconcile().await.0.is_err());
    let failed = exposition(&h);
    assert_eq!(sample(&failed, "hearth_operator_reconciles_total"), 2.0);
    assert_eq!(sample(&failed, "hearth_operator_reconcile_duration_seconds_count"), 2.0);
    assert_eq!(sample(&failed, "hearth_operator_reconcile_errors_total{reason=\"api_422\"}"), 1.0, "{failed}");
}
