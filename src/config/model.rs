//! The configuration as Hearth uses it: Prometheus' sections and field names,
//! with every default applied and relative paths made absolute.
//!
//! These types serialize to the effective configuration (`to_yaml`, shown at
//! `/api/v1/status/config`). The leaf sections also deserialize directly;
//! sections whose defaults depend on other fields are read through the raw
//! forms in `parse.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::units::{parse_duration_ms, parse_size_bytes};
use crate::relabel::RelabelConfig;

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Config {
    pub global: GlobalConfig,
    #[serde(skip_serializing_if = "AlertingConfig::is_empty")]
    pub alerting: AlertingConfig,
    /// Rule file globs, absolute after load.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rule_files: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scrape_configs: Vec<ScrapeConfig>,
    pub storage: StorageConfig,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remote_write: Vec<RemoteWriteConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remote_read: Vec<RemoteReadConfig>,
}

/// Defaults for the other sections, and the labels this server adds when it
/// talks to the outside (federation, remote write, alerts).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlobalConfig {
    #[serde(serialize_with = "ser_duration")]
    pub scrape_interval: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub scrape_timeout: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub evaluation_interval: Duration,
    /// How far in the past rule groups query by default (their data may
    /// arrive late, e.g. via remote write).
    #[serde(serialize_with = "ser_duration", skip_serializing_if = "Duration::is_zero")]
    pub rule_query_offset: Duration,
    /// Where PromQL queries are logged; empty for nowhere.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub query_log_file: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub external_labels: BTreeMap<String, String>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        GlobalConfig {
            scrape_interval: Duration::from_secs(60),
            scrape_timeout: Duration::from_secs(10),
            evaluation_interval: Duration::from_secs(60),
            rule_query_offset: Duration::ZERO,
            query_log_file: String::new(),
            external_labels: BTreeMap::new(),
        }
    }
}

/// One scrape job: which targets, how to reach them and what to keep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScrapeConfig {
    pub job_name: String,
    #[serde(skip_serializing_if = "is_false")]
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Vec<String>>,
    /// The effective interval (the global one when the job sets none).
    #[serde(serialize_with = "ser_duration")]
    pub scrape_interval: Duration,
    /// The effective timeout (never above the interval unless set so explicitly, which fails validation).
    #[serde(serialize_with = "ser_duration")]
    pub scrape_timeout: Duration,
    pub metrics_path: String,
    pub scheme: String,
    /// Largest uncompressed body in bytes; 0 for no limit.
    #[serde(skip_serializing_if = "is_zero", serialize_with = "ser_size")]
    pub body_size_limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub sample_limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub target_limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub label_limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub label_name_length_limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub label_value_length_limit: u64,
    #[serde(flatten)]
    pub http_client: HttpClientConfig,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub static_configs: Vec<StaticConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub file_sd_configs: Vec<FileSdConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kubernetes_sd_configs: Vec<KubernetesSdConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub relabel_configs: Vec<RelabelConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

/// How to talk HTTP to targets, Alertmanagers, remote storage and the
/// Kubernetes API (Prometheus' `common/config.HTTPClientConfig`, written
/// inline in those sections). `bearer_token` and `bearer_token_file` are
/// folded into `authorization` of type `Bearer`, as Prometheus does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpClientConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    #[serde(skip_serializing_if = "TlsConfig::is_default")]
    pub tls_config: TlsConfig,
    pub follow_redirects: bool,
    pub enable_http2: bool,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        HttpClientConfig {
            basic_auth: None,
            authorization: None,
            proxy_url: None,
            tls_config: TlsConfig::default(),
            follow_redirects: true,
            enable_http2: true,
        }
    }
}

/// A password or token: kept out of `Debug` output and shown as `<secret>`
/// in the effective configuration, like Prometheus' `Secret`.
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is the empty string (which Prometheus treats as unset).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "<secret>" })
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<secret>")
    }
}

/// HTTP basic authentication.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    pub username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// Read at each request, so a rotated password is picked up; absolute after load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
}

/// An `Authorization: <type> <credentials>` header.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    /// `Bearer` unless set.
    #[serde(rename = "type")]
    pub auth_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Secret>,
    /// Read at each request; absolute after load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
}

/// TLS settings for outgoing connections. File paths are absolute after load.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_version: Option<TlsVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_version: Option<TlsVersion>,
    /// A hash of the certificate files' contents when the configuration was
    /// loaded. Two loads with renewed certificates then compare unequal, so
    /// a reload rebuilds the clients that use them, as Prometheus picks up
    /// renewed certificates.
    #[serde(skip)]
    pub files_stamp: u64,
}

impl TlsConfig {
    fn is_default(&self) -> bool {
        *self == TlsConfig::default()
    }

    /// The hash for [`TlsConfig::files_stamp`] (0 when no file is named;
    /// an unreadable file counts as empty, its error comes at use).
    pub fn read_files_stamp(&self) -> u64 {
        let files: Vec<&String> = [&self.ca_file, &self.cert_file, &self.key_file].into_iter().flatten().collect();
        if files.is_empty() {
            return 0;
        }
        let mut body = Vec::new();
        for f in files {
            let content = std::fs::read(f).unwrap_or_default();
            body.extend_from_slice(&(content.len() as u64).to_le_bytes());
            body.extend_from_slice(&content);
        }
        xxhash_rust::xxh3::xxh3_64(&body)
    }
}

/// A TLS protocol version as Prometheus spells it (`TLS12`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

impl TlsVersion {
    const NAMES: [(&'static str, TlsVersion); 4] =
        [("TLS10", TlsVersion::Tls10), ("TLS11", TlsVersion::Tls11), ("TLS12", TlsVersion::Tls12), ("TLS13", TlsVersion::Tls13)];

    fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(_, v)| *v == self).map_or("", |(n, _)| n)
    }
}

impl<'de> Deserialize<'de> for TlsVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TlsVersion::NAMES
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, v)| *v)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown TLS version: {s}")))
    }
}

impl Serialize for TlsVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Targets written into the configuration, with labels for all of them.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaticConfig {
    /// `host:port` addresses.
    pub targets: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Targets read from JSON or YAML files that are re-read when they change.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileSdConfig {
    /// Paths, possibly with a `*` in the last component; absolute after load.
    pub files: Vec<String>,
    /// How often the files are re-read even without a change notification.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub refresh_interval: Duration,
}

impl Default for FileSdConfig {
    fn default() -> Self {
        FileSdConfig { files: Vec::new(), refresh_interval: Duration::from_secs(300) }
    }
}

/// Targets discovered from the Kubernetes API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KubernetesSdConfig {
    /// Absent to use the in-cluster configuration or `kubeconfig_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_server: Option<String>,
    pub role: KubernetesRole,
    /// Absolute after load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubeconfig_file: Option<String>,
    #[serde(flatten)]
    pub http_client: HttpClientConfig,
    #[serde(skip_serializing_if = "NamespaceDiscovery::is_default")]
    pub namespaces: NamespaceDiscovery,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub selectors: Vec<KubernetesSelector>,
    #[serde(skip_serializing_if = "AttachMetadata::is_default")]
    pub attach_metadata: AttachMetadata,
}

/// The kind of Kubernetes object that becomes a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KubernetesRole {
    Pod,
    Endpoints,
    EndpointSlice,
    Service,
    Node,
    Ingress,
}

impl KubernetesRole {
    const NAMES: [(&'static str, KubernetesRole); 6] = [
        ("pod", KubernetesRole::Pod),
        ("endpoints", KubernetesRole::Endpoints),
        ("endpointslice", KubernetesRole::EndpointSlice),
        ("service", KubernetesRole::Service),
        ("node", KubernetesRole::Node),
        ("ingress", KubernetesRole::Ingress),
    ];

    /// The name used in configuration (`endpointslice`).
    pub fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(_, v)| *v == self).map_or("", |(n, _)| n)
    }

    /// Parses a configured role with Prometheus' message for an unknown one.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::NAMES.iter().find(|(n, _)| *n == s).map(|(_, v)| *v).ok_or_else(|| format!("unknown Kubernetes SD role {s:?}"))
    }
}

impl<'de> Deserialize<'de> for KubernetesRole {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        KubernetesRole::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Serialize for KubernetesRole {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Which namespaces to watch; none listed means all.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NamespaceDiscovery {
    /// Also watch the namespace Hearth runs in (in-cluster only).
    pub own_namespace: bool,
    pub names: Vec<String>,
}

impl NamespaceDiscovery {
    fn is_default(&self) -> bool {
        *self == NamespaceDiscovery::default()
    }
}

/// A label and/or field selector applied server-side for one role.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSelector {
    pub role: KubernetesRole,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field: String,
}

/// Extra metadata to attach to discovered targets.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttachMetadata {
    /// Add the labels of the node a pod runs on (roles pod, endpoints, endpointslice).
    pub node: bool,
}

impl AttachMetadata {
    fn is_default(&self) -> bool {
        !self.node
    }
}

/// Where alerts go and how they are relabeled on the way.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct AlertingConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alert_relabel_configs: Vec<RelabelConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

impl AlertingConfig {
    fn is_empty(&self) -> bool {
        self.alert_relabel_configs.is_empty() && self.alertmanagers.is_empty()
    }
}

/// A set of Alertmanagers (discovered like scrape targets) and how to send to them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertmanagerConfig {
    #[serde(flatten)]
    pub http_client: HttpClientConfig,
    pub scheme: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path_prefix: String,
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    pub api_version: AlertmanagerApiVersion,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub relabel_configs: Vec<RelabelConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub static_configs: Vec<StaticConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub file_sd_configs: Vec<FileSdConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kubernetes_sd_configs: Vec<KubernetesSdConfig>,
}

/// The Alertmanager API to post alerts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertmanagerApiVersion {
    V1,
    V2,
}

/// Where and how samples are sent to remote storage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemoteWriteConfig {
    pub url: String,
    #[serde(serialize_with = "ser_duration")]
    pub remote_timeout: Duration,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub write_relabel_configs: Vec<RelabelConfig>,
    /// Identifies the queue in metrics; empty lets the server derive one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "is_false")]
    pub send_exemplars: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub send_native_histograms: bool,
    #[serde(flatten)]
    pub http_client: HttpClientConfig,
    pub queue_config: QueueConfig,
    pub metadata_config: MetadataConfig,
}

/// Sharding and batching of a remote-write queue.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Samples buffered per shard before reading the WAL blocks.
    pub capacity: u64,
    pub max_shards: u64,
    pub min_shards: u64,
    pub max_samples_per_send: u64,
    /// Longest a sample waits in a partial batch.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub batch_send_deadline: Duration,
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub min_backoff: Duration,
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub max_backoff: Duration,
    #[serde(skip_serializing_if = "is_false")]
    pub retry_on_http_429: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 2500,
            max_shards: 200,
            min_shards: 1,
            max_samples_per_send: 500,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            retry_on_http_429: false,
        }
    }
}

/// Whether and how often metric metadata is sent along with samples.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    pub send: bool,
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub send_interval: Duration,
    pub max_samples_per_send: u64,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig { send: true, send_interval: Duration::from_secs(60), max_samples_per_send: 500 }
    }
}

/// A remote storage to query alongside local data (parsed and validated only).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemoteReadConfig {
    pub url: String,
    #[serde(serialize_with = "ser_duration")]
    pub remote_timeout: Duration,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_false")]
    pub read_recent: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(flatten)]
    pub http_client: HttpClientConfig,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub required_matchers: BTreeMap<String, String>,
    pub filter_external_labels: bool,
}

/// Runtime-reloadable storage settings.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub tsdb: TsdbConfig,
    pub exemplars: ExemplarsConfig,
}

/// TSDB settings that may change without a restart.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TsdbConfig {
    /// How far behind the newest sample a sample may still be appended; 0 disables.
    #[serde(deserialize_with = "de_duration", serialize_with = "ser_duration")]
    pub out_of_order_time_window: Duration,
}

/// Exemplar storage.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExemplarsConfig {
    /// Size of the circular exemplar buffer; 0 or less disables it.
    pub max_exemplars: i64,
}

impl Default for ExemplarsConfig {
    fn default() -> Self {
        ExemplarsConfig { max_exemplars: 100_000 }
    }
}

/// Parses a Prometheus duration, with Prometheus' messages.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    if s.is_empty() {
        return Err("empty duration string".to_string());
    }
    // Go's time.Duration counts nanoseconds in an i64 (about 292 years).
    const MAX_MS: i64 = i64::MAX / 1_000_000;
    match parse_duration_ms(s) {
        Ok(ms) if ms > MAX_MS => Err("duration out of range".to_string()),
        Ok(ms) => Ok(Duration::from_millis(ms as u64)),
        Err(e) if e.reason == "duration too large" || e.reason == "number too large" => Err("duration out of range".to_string()),
        Err(_) => Err(format!("not a valid duration string: {s:?}")),
    }
}

/// Formats like Prometheus' `model.Duration.String()`: `1m`, `1h30m`, `90d`
/// (years and weeks only when exact), `0s` for zero.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    const DAY: u64 = 86_400_000;
    for (unit, mult, exact) in [
        ("y", 365 * DAY, true),
        ("w", 7 * DAY, true),
        ("d", DAY, false),
        ("h", 3_600_000, false),
        ("m", 60_000, false),
        ("s", 1000, false),
        ("ms", 1, false),
    ] {
        if exact && ms % mult != 0 {
            continue;
        }
        if ms >= mult {
            out.push_str(&format!("{}{unit}", ms / mult));
            ms %= mult;
        }
    }
    out
}

/// Formats a byte count with the largest exact binary unit (`10MiB`).
fn format_size(b: u64) -> String {
    for (unit, shift) in [("EiB", 60), ("PiB", 50), ("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if b >= 1 << shift && b % (1 << shift) == 0 {
            return format!("{}{unit}", b >> shift);
        }
    }
    format!("{b}B")
}

pub(crate) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    parse_duration(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

pub(crate) fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Option::<String>::deserialize(d)?.map(|s| parse_duration(&s)).transpose().map_err(serde::de::Error::custom)
}

pub(crate) fn de_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let s = String::deserialize(d)?;
    parse_size_bytes(&s).map_err(serde::de::Error::custom)
}

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

fn ser_size<S: Serializer>(b: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_size(*b))
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_format_like_prometheus() {
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_secs(60)), "1m");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(90 * 86400)), "90d");
        assert_eq!(format_duration(Duration::from_secs(14 * 86400)), "2w");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        for s in ["1m", "1h30m", "90d", "2w", "1s500ms", "1y"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
        assert_eq!(parse_duration("1x"), Err("not a valid duration string: \"1x\"".to_string()));
        assert_eq!(parse_duration(""), Err("empty duration string".to_string()));
    }

    #[test]
    fn sizes_format_with_binary_units() {
        assert_eq!(format_size(10 << 20), "10MiB");
        assert_eq!(format_size(1000), "1000B");
        assert_eq!(format_size(3 << 10), "3KiB");
        assert_eq!(parse_size_bytes(&format_size(10 << 20)), Ok(10 << 20));
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let a = BasicAuth { username: "u".into(), password: Some(Secret::new("hunter2")), password_file: None };
        assert!(!format!("{a:?}").contains("hunter2"));
        assert_eq!(a.password.as_ref().map(Secret::expose), Some("hunter2"));
    }
}
