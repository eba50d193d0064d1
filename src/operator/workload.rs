//! The Kubernetes objects that run one Prometheus object: its config
//! Secret, one StatefulSet per shard running `hearth server`, the governing
//! headless Service, a ServiceAccount and least-privilege RBAC. Pure: built
//! from the Prometheus object and what `generate` produced.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, HTTPGetAction, ObjectFieldSelector,
    PersistentVolumeClaim, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, Secret, SecurityContext, Service, ServiceAccount,
    ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;

use super::crd::Prometheus;
use super::generate::{CONFIG_DIR, Generated, RULE_FILE_PREFIX, WEB_CONFIG_FILE};

/// Field manager of every server-side apply, and the `managed-by` label value.
pub const MANAGER: &str = "hearth-operator";
/// Label on every generated object naming its Prometheus as `namespace.name`
/// (a label value cannot hold `/`), to find cross-namespace objects.
pub const OWNER_LABEL: &str = "monitoring.hearth.dev/prometheus";
/// Label on a StatefulSet and its pods giving the shard number.
pub const SHARD_LABEL: &str = "monitoring.hearth.dev/shard";
/// The ClusterRole the server's discovery bindings refer to (applied by the
/// operator at startup): read-only access to what service discovery lists.
pub const DISCOVERY_CLUSTER_ROLE: &str = "hearth-server-discovery";
/// The server's HTTP port in its pods.
pub const WEB_PORT: i32 = 9090;
const DATA_DIR: &str = "/data";
/// What a Secret may hold (the API server's limit), minus room for metadata.
const SECRET_LIMIT: usize = 1_000_000;

/// Every object one Prometheus object needs, ready for server-side apply.
#[derive(Debug, Clone)]
pub struct Workload {
    pub secret: Secret,
    pub service: Service,
    /// `None` when the user names their own ServiceAccount.
    pub service_account: Option<ServiceAccount>,
    /// Reading the config Secret (in the Prometheus object's namespace).
    pub config_role: Role,
    pub config_role_binding: RoleBinding,
    /// Discovery access per namespace, or cluster-wide.
    pub discovery: Discovery,
    /// Shard 0 first.
    pub stateful_sets: Vec<StatefulSet>,
    /// Hash of the Secret's data: what every pod must report once it runs this configuration.
    pub config_hash: String,
}

/// Where the server may discover targets.
#[derive(Debug, Clone)]
pub enum Discovery {
    Namespaces(Vec<RoleBinding>),
    Cluster(Box<ClusterRoleBinding>),
}

/// Names of generated objects, derived from the Prometheus object's name.
pub struct Names {
    pub namespace: String,
    pub name: String,
}

impl Names {
    pub fn of(p: &Prometheus) -> Names {
        Names {
            namespace: p.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
            name: p.metadata.name.clone().unwrap_or_default(),
        }
    }
    /// `namespace/name`: how statuses, memos and the queue name the object.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
    /// Shard 0 keeps the short name, as prometheus-operator does.
    pub fn stateful_set(&self, shard: u32) -> String {
        if shard == 0 { format!("hearth-{}", self.name) } else { format!("hearth-{}-shard-{shard}", self.name) }
    }
    pub fn service(&self) -> String {
        format!("hearth-{}", self.name)
    }
    pub fn secret(&self) -> String {
        format!("hearth-{}-config", self.name)
    }
    pub fn service_account(&self) -> String {
        format!("hearth-{}", self.name)
    }
    pub fn config_role(&self) -> String {
        format!("hearth-{}-config", self.name)
    }
    /// Bindings in other namespaces (and the cluster binding) carry the
    /// Prometheus object's namespace, being outside it.
    pub fn discovery_binding(&self) -> String {
        format!("hearth-{}-{}-discovery", self.namespace, self.name)
    }
    /// The value of [`OWNER_LABEL`].
    pub fn owner_label(&self) -> String {
        format!("{}.{}", self.namespace, self.name)
    }
    /// Selector for everything generated for this Prometheus object.
    pub fn owner_selector(&self) -> String {
        format!("{OWNER_LABEL}={},app.kubernetes.io/managed-by={MANAGER}", self.owner_label())
    }
}

/// The file (in the pods' configuration directory) holding shard `shard`'s
/// configuration; its key in the Secret adds `.zst`.
pub fn config_key(shard: u32) -> String {
    format!("prometheus-shard-{shard}.yaml")
}

/// Flags the operator sets; `additionalArgs` must not repeat them.
const OPERATOR_FLAGS: &[&str] = &[
    "config.file",
    "config.kubernetes-secret",
    "storage.tsdb.path",
    "web.listen-address",
    "web.enable-lifecycle",
    "storage.tsdb.retention.time",
    "storage.tsdb.retention.size",
    "web.config.file",
];

/// Builds the workload; errors name the offending field.
pub fn build(p: &Prometheus, g: &Generated, default_image: &str) -> Result<Workload, String> {
    let names = Names::of(p);
    let spec = &p.spec;
    for (i, a) in spec.additional_args.iter().enumerate() {
        if OPERATOR_FLAGS.contains(&a.name.as_str()) {
            return Err(format!("additionalArgs[{i}]: --{} is set by the operator", a.name));
        }
    }
    let owner = p.controller_owner_ref(&()).ok_or("the Prometheus object has no name or uid yet")?;
    let labels = common_labels(&names);
    let meta = |name: String, namespace: Option<&str>, own: bool| ObjectMeta {
        name: Some(name),
        namespace: namespace.map(str::to_string),
        labels: Some(labels.clone()),
        owner_references: own.then(|| vec![owner.clone()]),
        ..ObjectMeta::default()
    };
    let ns = names.namespace.as_str();

    // Compressed: a large fleet's configuration is several megabytes of
    // repetitive YAML, and a Secret holds at most 1 MiB. The server writes
    // each `.zst` key as the file without the suffix.
    let mut data = BTreeMap::new();
    let files = g
        .configs
        .iter()
        .enumerate()
        .map(|(i, c)| (config_key(i as u32), c))
        .chain(g.rule_files.iter().map(|(file, text)| (format!("{RULE_FILE_PREFIX}{file}"), text)));
    for (name, text) in files {
        let packed = zstd::encode_all(text.as_bytes(), 3).map_err(|e| format!("compressing {name}: {e}"))?;
        data.insert(format!("{name}.zst"), packed);
    }
    // Credentials, certificates and the web configuration: small, as they are.
    data.extend(g.files.iter().map(|(k, v)| (k.clone(), v.clone())));
    let size: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > SECRET_LIMIT {
        return Err(format!(
            "the configuration is {} KiB compressed, more than a Secret holds (1 MiB); select fewer objects or use more Prometheus objects",
            size >> 10
        ));
    }
    let config_hash = crate::config::hash::content_hash(&data);
    let mut secret_meta = meta(names.secret(), Some(ns), true);
    secret_meta.annotations = Some(BTreeMap::from([("monitoring.hearth.dev/config-hash".to_string(), config_hash.clone())]));
    let secret = Secret {
        metadata: secret_meta,
        data: Some(data.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
        type_: Some("Opaque".into()),
        ..Secret::default()
    };

    let service = Service {
        metadata: meta(names.service(), Some(ns), true),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(selector_labels(&names)),
            ports: Some(vec![ServicePort {
                name: Some("web".into()),
                port: WEB_PORT,
                target_port: Some(IntOrString::String("web".into())),
                ..ServicePort::default()
            }]),
            publish_not_ready_addresses: Some(true),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    };

    let account = spec.service_account_name.clone().unwrap_or_else(|| names.service_account());
    let service_account = spec
        .service_account_name
        .is_none()
        .then(|| ServiceAccount { metadata: meta(names.service_account(), Some(ns), true), ..ServiceAccount::default() });
    let subject = Subject { kind: "ServiceAccount".into(), name: account.clone(), namespace: Some(ns.to_string()), ..Subject::default() };
    let config_role = Role {
        metadata: meta(names.config_role(), Some(ns), true),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["secrets".into()]),
            resource_names: Some(vec![names.secret()]),
            verbs: vec!["get".into(), "list".into(), "watch".into()],
            ..PolicyRule::default()
        }]),
    };
    let config_role_binding = RoleBinding {
        metadata: meta(names.config_role(), Some(ns), true),
        role_ref: RoleRef { api_group: "rbac.authorization.k8s.io".into(), kind: "Role".into(), name: names.config_role() },
        subjects: Some(vec![subject.clone()]),
    };
    let discovery_ref =
        RoleRef { api_group: "rbac.authorization.k8s.io".into(), kind: "ClusterRole".into(), name: DISCOVERY_CLUSTER_ROLE.into() };
    let discovery = match &g.discovery_namespaces {
        Some(set) => Discovery::Namespaces(
            set.iter()
                .map(|target| RoleBinding {
                    // Owner references cannot cross namespaces: those
                    // bindings are removed by the operator's finalizer.
                    metadata: meta(names.discovery_binding(), Some(target), target == ns),
                    role_ref: discovery_ref.clone(),
                    subjects: Some(vec![subject.clone()]),
                })
                .collect(),
        ),
        None => Discovery::Cluster(Box::new(ClusterRoleBinding {
            metadata: meta(names.discovery_binding(), None, false),
            role_ref: discovery_ref,
            subjects: Some(vec![subject]),
        })),
    };

    let stateful_sets = (0..g.configs.len() as u32)
        .map(|shard| stateful_set(p, &names, shard, &account, default_image, meta(names.stateful_set(shard), Some(ns), true)))
        .collect();
    Ok(Workload { secret, service, service_account, config_role, config_role_binding, discovery, stateful_sets, config_hash })
}

fn common_labels(names: &Names) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "hearth".to_string()),
        ("app.kubernetes.io/instance".to_string(), names.name.clone()),
        ("app.kubernetes.io/managed-by".to_string(), MANAGER.to_string()),
        (OWNER_LABEL.to_string(), names.owner_label()),
    ])
}

/// Labels that pick this Prometheus object's pods (all shards).
pub fn selector_labels(names: &Names) -> BTreeMap<String, String> {
    BTreeMap::from([("app.kubernetes.io/name".to_string(), "hearth".to_string()), (OWNER_LABEL.to_string(), names.owner_label())])
}

fn stateful_set(p: &Prometheus, names: &Names, shard: u32, account: &str, default_image: &str, mut meta: ObjectMeta) -> StatefulSet {
    let spec = &p.spec;
    let mut pod_selector = selector_labels(names);
    pod_selector.insert(SHARD_LABEL.into(), shard.to_string());
    if let Some(l) = meta.labels.as_mut() {
        l.insert(SHARD_LABEL.into(), shard.to_string());
    }
    let mut pod_labels = spec.pod_metadata.as_ref().map(|m| m.labels.clone()).unwrap_or_default();
    pod_labels.extend(meta.labels.clone().unwrap_or_default());
    let pod_annotations = spec.pod_metadata.as_ref().map(|m| m.annotations.clone()).filter(|a| !a.is_empty());

    let mut args = vec![
        format!("--config.file={CONFIG_DIR}/{}", config_key(shard)),
        format!("--config.kubernetes-secret={}/{}", names.namespace, names.secret()),
        format!("--storage.tsdb.path={DATA_DIR}"),
        format!("--web.listen-address=0.0.0.0:{WEB_PORT}"),
        "--web.enable-lifecycle".to_string(),
    ];
    if spec.web.is_some() {
        args.push(format!("--web.config.file={CONFIG_DIR}/{WEB_CONFIG_FILE}"));
    }
    // The kubelet does not verify the certificate of HTTPS probes.
    let scheme = spec.web.as_ref().and_then(|w| w.tls_config.as_ref()).map(|_| "HTTPS".to_string());
    if let Some(r) = &spec.retention {
        args.push(format!("--storage.tsdb.retention.time={r}"));
    }
    if let Some(r) = &spec.retention_size {
        args.push(format!("--storage.tsdb.retention.size={r}"));
    }
    args.extend(spec.additional_args.iter().map(|a| match &a.value {
        Some(v) => format!("--{}={v}", a.name),
        None => format!("--{}", a.name),
    }));
    let field_env = |name: &str, path: &str| EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { field_path: path.into(), ..ObjectFieldSelector::default() }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    };
    let probe = |path: &str, period: i32, failures: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("web".into()),
            scheme: scheme.clone(),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(3),
        ..Probe::default()
    };
    let container = Container {
        name: "hearth".into(),
        image: Some(spec.image.clone().unwrap_or_else(|| default_image.to_string())),
        args: Some(std::iter::once("server".to_string()).chain(args).collect()),
        env: Some(vec![field_env("POD_NAME", "metadata.name"), field_env("POD_NAMESPACE", "metadata.namespace")]),
        ports: Some(vec![ContainerPort { name: Some("web".into()), container_port: WEB_PORT, ..ContainerPort::default() }]),
        // Replaying a large WAL can take minutes: the startup probe allows 15.
        startup_probe: Some(probe("/-/ready", 15, 60)),
        readiness_probe: Some(probe("/-/ready", 5, 3)),
        liveness_probe: Some(probe("/-/healthy", 5, 6)),
        resources: spec.resources.clone(),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Capabilities::default() }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount { name: "config".into(), mount_path: CONFIG_DIR.into(), ..VolumeMount::default() },
            VolumeMount { name: "data".into(), mount_path: DATA_DIR.into(), ..VolumeMount::default() },
        ]),
        ..Container::default()
    };
    let storage = spec.storage.as_ref();
    let claim = storage.and_then(|s| s.volume_claim_template.as_ref());
    let mut volumes = vec![Volume { name: "config".into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Volume::default() }];
    if claim.is_none() {
        let dir = storage.and_then(|s| s.empty_dir.clone()).unwrap_or_default();
        volumes.push(Volume { name: "data".into(), empty_dir: Some(dir), ..Volume::default() });
    }
    let claims = claim.map(|c| {
        vec![PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("data".into()),
                labels: c.metadata.as_ref().map(|m| m.labels.clone()).filter(|l| !l.is_empty()),
                annotations: c.metadata.as_ref().map(|m| m.annotations.clone()).filter(|a| !a.is_empty()),
                ..ObjectMeta::default()
            },
            spec: Some(c.spec.clone()),
            ..PersistentVolumeClaim::default()
        }]
    });
    let security = spec.security_context.clone().unwrap_or(PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(65534),
        run_as_group: Some(65534),
        fs_group: Some(65534),
        ..PodSecurityContext::default()
    });
    let pod = PodSpec {
        containers: vec![container],
        service_account_name: Some(account.to_string()),
        security_context: Some(security),
        node_selector: (!spec.node_selector.is_empty()).then(|| spec.node_selector.clone()),
        affinity: spec.affinity.clone(),
        tolerations: (!spec.tolerations.is_empty()).then(|| spec.tolerations.clone()),
        topology_spread_constraints: (!spec.topology_spread_constraints.is_empty()).then(|| spec.topology_spread_constraints.clone()),
        termination_grace_period_seconds: Some(600),
        volumes: Some(volumes),
        ..PodSpec::default()
    };
    StatefulSet {
        metadata: meta,
        spec: Some(StatefulSetSpec {
            replicas: Some(spec.replicas.unwrap_or(1)),
            service_name: Some(names.service()),
            pod_management_policy: Some("Parallel".into()),
            selector: LabelSelector { match_labels: Some(pod_selector), ..LabelSelector::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(pod_labels), annotations: pod_annotations, ..ObjectMeta::default() }),
                spec: Some(pod),
            },
            volume_claim_templates: claims,
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    }
}

/// The ClusterRole every server's discovery bindings refer to: read-only
/// access to the objects Kubernetes service discovery watches, and `get`
/// on `nodes/metrics` and the non-resource URLs `/metrics` and
/// `/metrics/cadvisor`, which the kubelet, the API server and the control
/// plane check when a ServiceMonitor scrapes them with the pod's own token
/// (`bearerTokenFile`). Those two take effect only through the
/// ClusterRoleBinding such a ServiceMonitor brings (a RoleBinding cannot
/// grant cluster-scoped resources or URLs), and are read-only.
pub fn discovery_cluster_role() -> ClusterRole {
    let rule = |group: &str, resources: &[&str]| PolicyRule {
        api_groups: Some(vec![group.to_string()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: vec!["get".into(), "list".into(), "watch".into()],
        ..PolicyRule::default()
    };
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(DISCOVERY_CLUSTER_ROLE.into()),
            labels: Some(BTreeMap::from([("app.kubernetes.io/managed-by".to_string(), MANAGER.to_string())])),
            ..ObjectMeta::default()
        },
        rules: Some(vec![
            rule("", &["pods", "services", "endpoints", "nodes"]),
            rule("discovery.k8s.io", &["endpointslices"]),
            rule("networking.k8s.io", &["ingresses"]),
            PolicyRule {
                api_groups: Some(vec![String::new()]),
                resources: Some(vec!["nodes/metrics".into()]),
                verbs: vec!["get".into()],
                ..PolicyRule::default()
            },
            PolicyRule {
                non_resource_urls: Some(vec!["/metrics".into(), "/metrics/cadvisor".into()]),
                verbs: vec!["get".into()],
                ..PolicyRule::default()
            },
        ]),
        ..ClusterRole::default()
    }
}
