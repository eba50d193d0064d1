//! The `Prometheus` resource: one monitoring server (sharded, replicated)
//! and which ServiceMonitors and AlertRules it takes.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, EmptyDirVolumeSource, PersistentVolumeClaimSpec, PodSecurityContext, ResourceRequirements, SecretKeySelector, Toleration,
    TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{Authorization, BasicAuth, Condition, DURATION_PATTERN, RelabelConfig, TlsConfig};

/// Desired state of a Prometheus server run by the operator.
///
/// Selectors: a missing (`null`) selector selects nothing, `{}` selects
/// everything; a missing namespace selector means the Prometheus object's
/// own namespace, `{}` all namespaces (docs/operator.md has the table).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "monitoring.hearth.dev",
    version = "v1alpha1",
    kind = "Prometheus",
    plural = "prometheuses",
    shortname = "prom",
    namespaced,
    status = "PrometheusStatus",
    printcolumn = r#"{"name":"Replicas","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"Shards","type":"integer","jsonPath":".spec.shards"}"#,
    printcolumn = r#"{"name":"Available","type":"integer","jsonPath":".status.availableReplicas"}"#,
    printcolumn = r#"{"name":"Reconciled","type":"string","jsonPath":".status.conditions[?(@.type==\"Reconciled\")].status"}"#,
    printcolumn = r#"{"name":"Paused","type":"boolean","jsonPath":".spec.paused","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusSpec {
    /// Pods per shard (each with the same targets; a replica label tells them apart). Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 0").message("replicas must not be negative"))]
    pub replicas: Option<i32>,
    /// Shards that split the targets by hashmod of their address. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1").message("shards must be at least 1"))]
    pub shards: Option<i32>,
    /// The `hearth` image; default: the operator's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `--storage.tsdb.retention.time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub retention: Option<String>,
    /// `--storage.tsdb.retention.size` (`512MB`, `10GB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(0|([0-9]+(\.[0-9]+)?(B|KB|MB|GB|TB|PB|EB)))$"))]
    pub retention_size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub scrape_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub scrape_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub evaluation_interval: Option<String>,
    /// Added to every series and alert leaving the server.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub external_labels: BTreeMap<String, String>,
    /// Name of the external label holding the pod name; empty disables it. Default `prometheus_replica`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_external_label_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_monitor_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_monitor_namespace_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_namespace_selector: Option<LabelSelector>,
    /// At most 100 (bounds the API server's cost of the CEL rules of the
    /// relabelings inside).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub remote_write: Vec<RemoteWriteSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerting: Option<AlertingSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::preserve_unknown_object")]
    pub affinity: Option<Affinity>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "super::schema::preserve_unknown_array")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    /// Default: one the operator creates, with read-only discovery RBAC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_metadata: Option<EmbeddedMetadata>,
    /// Extra `hearth server` flags; must not repeat a flag the operator sets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_args: Vec<Argument>,
    /// Upper bounds imposed on every ServiceMonitor (its own limit applies if lower).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforced_sample_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforced_target_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforced_label_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforced_label_name_length_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforced_label_value_length_limit: Option<u64>,
    /// Stop reconciling this object (its workloads stay as they are).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// TLS and basic auth for the server's own HTTP endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<WebSpec>,
}

/// One `remote_write` destination.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.basicAuth) && has(self.authorization))").message("at most one of basicAuth and authorization"))]
pub struct RemoteWriteSpec {
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("url must be http(s)"))]
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub remote_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// At most 1000 (bounds the API server's cost of their CEL rules).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000))]
    pub write_relabel_configs: Vec<RelabelConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_config: Option<QueueConfigSpec>,
}

/// `queue_config` of a remote write.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueConfigSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_shards: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_shards: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_samples_per_send: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub batch_send_deadline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on_rate_limit: Option<bool>,
}

/// Where alerts go.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertingSpec {
    /// At most 100: the API server admits the entries' CEL rules only with
    /// a bound on the list.
    #[schemars(length(max = 100))]
    pub alertmanagers: Vec<AlertmanagerEndpoints>,
}

/// Alertmanagers behind a Service, discovered through its endpoints
/// (`name` and `port`, optionally `namespace`), or one Alertmanager at a
/// fixed `url`, for an Alertmanager outside the cluster or behind an
/// Ingress, which has no Service to discover.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.url) ? !has(self.name) && !has(self.namespace) && !has(self.port) && !has(self.scheme) && !has(self.pathPrefix) : has(self.name) && has(self.port)")
        .message("either url, or name and port (with optional namespace, scheme and pathPrefix)")
)]
#[x_kube(validation = Rule::new("!(has(self.basicAuth) && has(self.authorization))").message("at most one of basicAuth and authorization"))]
pub struct AlertmanagerEndpoints {
    /// Default: the Prometheus object's namespace. Not with `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The Service's name. Required unless `url` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Port name or number on the Service's endpoints. Required unless `url` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<IntOrString>,
    /// One Alertmanager by URL, instead of a Service: `http(s)://host[:port][/path prefix]`
    /// (the port defaults to 80 or 443). Excludes name, namespace, port, scheme and pathPrefix,
    /// which the URL carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("url must be http(s)"))]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == 'http' || self == 'https'").message("scheme must be http or https"))]
    pub scheme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
}

/// Persistent storage, or an emptyDir (the default).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.volumeClaimTemplate) && has(self.emptyDir))").message("at most one of volumeClaimTemplate and emptyDir"))]
pub struct StorageSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_claim_template: Option<EmbeddedPersistentVolumeClaim>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<EmptyDirVolumeSource>,
}

/// A PVC template of the StatefulSet.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddedPersistentVolumeClaim {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<EmbeddedMetadata>,
    pub spec: PersistentVolumeClaimSpec,
}

/// Labels and annotations for generated objects.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmbeddedMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// One extra command-line flag (`--name=value`, or `--name` without a value).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Argument {
    #[x_kube(validation = Rule::new("!self.startsWith('-')").message("give the flag name without dashes"))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// TLS and basic auth of the server's own endpoints (`--web.config.file`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<WebTlsConfig>,
    /// A Secret whose keys are user names and values bcrypt hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth_users_secret: Option<String>,
}

/// The server certificate (and optional client CA) from Secrets.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebTlsConfig {
    pub cert: SecretKeySelector,
    pub key_secret: SecretKeySelector,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<SecretKeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self in ['TLS10', 'TLS11', 'TLS12', 'TLS13']").message("minVersion is one of TLS10, TLS11, TLS12, TLS13"))]
    pub min_version: Option<String>,
}

/// Observed state.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<i32>,
    /// Hash of the configuration every pod is confirmed to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_service_monitors: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_alert_rules: Option<i32>,
}
