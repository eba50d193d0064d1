//! Reading the YAML into [`Config`]: Prometheus' defaults, its validation
//! (same checks, same messages) and `SetDirectory`'s path resolution.
//!
//! Sections whose defaults depend on other fields (`global`, a scrape job's
//! interval, the HTTP client fields written inline in several sections) are
//! decoded into the raw forms below first and then converted; every error
//! names the YAML path it is about.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::model::*;
use super::paths::join_dir;
use super::yaml::{YamlError, YamlPath, error_at, from_str};
use crate::relabel::RelabelConfig;

/// Fields Prometheus accepts that Hearth does not implement: they get a
/// clearer message than "unknown field".
const UNSUPPORTED: [&str; 6] = ["oauth2", "proxy_connect_header", "sigv4", "azuread", "tracing", "no_proxy"];

/// Parses, defaults, resolves paths against `dir` and validates.
pub(crate) fn parse(yaml: &str, dir: &Path) -> Result<Config, YamlError> {
    let raw: RawConfig = from_str(yaml).map_err(explain_unsupported)?;
    Ctx { yaml, dir }.config(raw)
}

fn explain_unsupported(mut e: YamlError) -> YamlError {
    let field = e.message.strip_prefix("unknown field `").and_then(|m| m.split('`').next()).map(str::to_string);
    if let Some(f) = field {
        if f.ends_with("_sd_configs") {
            e.message = format!(
                "{f} is a Prometheus service discovery that Hearth does not support (static_configs, file_sd_configs and kubernetes_sd_configs are)"
            );
        } else if UNSUPPORTED.contains(&f.as_str()) {
            e.message = format!("{f} is valid in Prometheus but not supported by Hearth");
        }
    }
    e
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawConfig {
    global: RawGlobal,
    alerting: RawAlerting,
    rule_files: Vec<String>,
    scrape_configs: Vec<RawScrape>,
    storage: StorageConfig,
    remote_write: Vec<RawRemoteWrite>,
    remote_read: Vec<RawRemoteRead>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawGlobal {
    #[serde(deserialize_with = "de_opt_duration")]
    scrape_interval: Option<Duration>,
    #[serde(deserialize_with = "de_opt_duration")]
    scrape_timeout: Option<Duration>,
    #[serde(deserialize_with = "de_opt_duration")]
    evaluation_interval: Option<Duration>,
    #[serde(deserialize_with = "de_opt_duration")]
    rule_query_offset: Option<Duration>,
    query_log_file: String,
    external_labels: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawAlerting {
    alert_relabel_configs: Vec<RelabelConfig>,
    alertmanagers: Vec<RawAlertmanager>,
}

/// The HTTP client fields, which Prometheus writes inline in a section.
#[derive(Default)]
struct RawHttp {
    basic_auth: Option<BasicAuth>,
    authorization: Option<Authorization>,
    bearer_token: Option<Secret>,
    bearer_token_file: Option<String>,
    tls_config: TlsConfig,
    follow_redirects: Option<bool>,
    enable_http2: Option<bool>,
    proxy_url: Option<String>,
}

/// Declares a raw section with the HTTP client fields added (serde's
/// `flatten` cannot be combined with `deny_unknown_fields`).
macro_rules! with_http_client {
    (struct $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty,)* }) => {
        #[derive(Deserialize, Default)]
        #[serde(deny_unknown_fields, default)]
        struct $name {
            $($(#[$fm])* $field: $ty,)*
            basic_auth: Option<BasicAuth>,
            authorization: Option<Authorization>,
            bearer_token: Option<Secret>,
            bearer_token_file: Option<String>,
            tls_config: TlsConfig,
            follow_redirects: Option<bool>,
            enable_http2: Option<bool>,
            proxy_url: Option<String>,
        }

        impl $name {
            fn take_http(&mut self) -> RawHttp {
                RawHttp {
                    basic_auth: self.basic_auth.take(),
                    authorization: self.authorization.take(),
                    bearer_token: self.bearer_token.take(),
                    bearer_token_file: self.bearer_token_file.take(),
                    tls_config: std::mem::take(&mut self.tls_config),
                    follow_redirects: self.follow_redirects,
                    enable_http2: self.enable_http2,
                    proxy_url: self.proxy_url.take(),
                }
            }
        }
    };
}

with_http_client! {
    struct RawScrape {
        job_name: String,
        honor_labels: bool,
        honor_timestamps: Option<bool>,
        params: BTreeMap<String, Vec<String>>,
        #[serde(deserialize_with = "de_opt_duration")]
        scrape_interval: Option<Duration>,
        #[serde(deserialize_with = "de_opt_duration")]
        scrape_timeout: Option<Duration>,
        metrics_path: Option<String>,
        scheme: Option<String>,
        #[serde(deserialize_with = "de_size")]
        body_size_limit: u64,
        sample_limit: u64,
        target_limit: u64,
        label_limit: u64,
        label_name_length_limit: u64,
        label_value_length_limit: u64,
        static_configs: Vec<StaticConfig>,
        file_sd_configs: Vec<FileSdConfig>,
        kubernetes_sd_configs: Vec<RawKubernetes>,
        relabel_configs: Vec<RelabelConfig>,
        metric_relabel_configs: Vec<RelabelConfig>,
    }
}

with_http_client! {
    struct RawKubernetes {
        api_server: Option<String>,
        role: Option<KubernetesRole>,
        kubeconfig_file: Option<String>,
        namespaces: NamespaceDiscovery,
        selectors: Vec<KubernetesSelector>,
        attach_metadata: AttachMetadata,
    }
}

with_http_client! {
    struct RawAlertmanager {
        scheme: Option<String>,
        path_prefix: String,
        #[serde(deserialize_with = "de_opt_duration")]
        timeout: Option<Duration>,
        api_version: Option<String>,
        relabel_configs: Vec<RelabelConfig>,
        static_configs: Vec<StaticConfig>,
        file_sd_configs: Vec<FileSdConfig>,
        kubernetes_sd_configs: Vec<RawKubernetes>,
    }
}

with_http_client! {
    struct RawRemoteWrite {
        url: Option<String>,
        #[serde(deserialize_with = "de_opt_duration")]
        remote_timeout: Option<Duration>,
        headers: BTreeMap<String, String>,
        write_relabel_configs: Vec<RelabelConfig>,
        name: String,
        send_exemplars: bool,
        send_native_histograms: bool,
        queue_config: QueueConfig,
        metadata_config: MetadataConfig,
    }
}

with_http_client! {
    struct RawRemoteRead {
        url: Option<String>,
        #[serde(deserialize_with = "de_opt_duration")]
        remote_timeout: Option<Duration>,
        headers: BTreeMap<String, String>,
        read_recent: bool,
        name: String,
        required_matchers: BTreeMap<String, String>,
        filter_external_labels: Option<bool>,
    }
}

/// Whether `name` is a label name Prometheus 2 accepts: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(crate) fn is_valid_label_name(name: &str) -> bool {
    let mut b = name.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_') && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// An external label value with environment references expanded (see
/// [`super::expand`]); an unset variable is logged, as Prometheus does, since
/// it usually means a missing `env` entry in the pod.
fn expand_env(value: &str) -> String {
    super::expand::expand(value, |name| match std::env::var(name) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            // Debug only: the operator checks configurations outside the pods, where the variables are unset.
            tracing::debug!(variable = name, "external label refers to an unset or empty environment variable");
            None
        }
    })
}

/// Whether a rule file path is one Prometheus accepts: a `*` only in the last component.
fn is_valid_rule_path(p: &str) -> bool {
    match p.find('*') {
        None => true,
        Some(i) => !p[i + 1..].contains(['*', '/']),
    }
}

/// Whether a file SD path is one Prometheus accepts: a `*` only in the last
/// component, and a `.json`, `.yml` or `.yaml` extension.
fn is_valid_file_sd_path(p: &str) -> bool {
    let ext_ok = ["json", "yml", "yaml", "JSON", "YML", "YAML"].iter().any(|e| p.strip_suffix(e).is_some_and(|s| s.ends_with('.')));
    ext_ok && is_valid_rule_path(p)
}

/// Prometheus' check that a static target is an address, not a URL.
pub fn check_target_address(addr: &str) -> Result<(), String> {
    if addr.contains('/') { Err(format!("{addr:?} is not a valid hostname")) } else { Ok(()) }
}

/// Headers remote write/read may not set (Prometheus' list).
const RESERVED_HEADERS: [&str; 16] = [
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

struct Ctx<'a> {
    yaml: &'a str,
    dir: &'a Path,
}

impl Ctx<'_> {
    fn err(&self, at: YamlPath, msg: impl Into<String>) -> YamlError {
        error_at(self.yaml, at, msg)
    }

    fn join(&self, p: &str) -> String {
        join_dir(self.dir, p)
    }

    fn join_opt(&self, p: Option<String>) -> Option<String> {
        p.filter(|s| !s.is_empty()).map(|s| self.join(&s))
    }

    fn config(&self, raw: RawConfig) -> Result<Config, YamlError> {
        let root = YamlPath::root();
        let global = self.global(raw.global, &root.key("global"))?;

        let mut rule_files = Vec::with_capacity(raw.rule_files.len());
        for (i, rf) in raw.rule_files.iter().enumerate() {
            if !is_valid_rule_path(rf) {
                return Err(self.err(root.key("rule_files").index(i), format!("invalid rule file path {rf:?}")));
            }
            rule_files.push(self.join(rf));
        }

        let mut scrape_configs = Vec::with_capacity(raw.scrape_configs.len());
        let mut jobs = HashSet::new();
        for (i, s) in raw.scrape_configs.into_iter().enumerate() {
            let at = root.key("scrape_configs").index(i);
            let sc = self.scrape(s, &global, &at)?;
            if !jobs.insert(sc.job_name.clone()) {
                return Err(self.err(at.key("job_name"), format!("found multiple scrape configs with job name {:?}", sc.job_name)));
            }
            scrape_configs.push(sc);
        }

        let at = root.key("alerting");
        self.relabels(&raw.alerting.alert_relabel_configs, &at.key("alert_relabel_configs"))?;
        let mut alertmanagers = Vec::new();
        for (i, a) in raw.alerting.alertmanagers.into_iter().enumerate() {
            alertmanagers.push(self.alertmanager(a, &at.key("alertmanagers").index(i))?);
        }
        let alerting = AlertingConfig { alert_relabel_configs: raw.alerting.alert_relabel_configs, alertmanagers };

        let mut remote_write = Vec::new();
        let mut names = HashSet::new();
        for (i, r) in raw.remote_write.into_iter().enumerate() {
            let at = root.key("remote_write").index(i);
            let rw = self.remote_write(r, &at)?;
            if !rw.name.is_empty() && !names.insert(rw.name.clone()) {
                return Err(self.err(at.key("name"), format!("found multiple remote write configs with job name {:?}", rw.name)));
            }
            remote_write.push(rw);
        }

        let mut remote_read = Vec::new();
        let mut names = HashSet::new();
        for (i, r) in raw.remote_read.into_iter().enumerate() {
            let at = root.key("remote_read").index(i);
            let rr = self.remote_read(r, &at)?;
            if !rr.name.is_empty() && !names.insert(rr.name.clone()) {
                return Err(self.err(at.key("name"), format!("found multiple remote read configs with job name {:?}", rr.name)));
            }
            remote_read.push(rr);
        }

        Ok(Config { global, alerting, rule_files, scrape_configs, storage: raw.storage, remote_write, remote_read })
    }

    fn global(&self, raw: RawGlobal, at: &YamlPath) -> Result<GlobalConfig, YamlError> {
        for name in raw.external_labels.keys() {
            if !is_valid_label_name(name) {
                return Err(self.err(at.key("external_labels").key(name), format!("{name:?} is not a valid label name")));
            }
        }
        let defaults = GlobalConfig::default();
        let interval = raw.scrape_interval.filter(|d| !d.is_zero()).unwrap_or(defaults.scrape_interval);
        let timeout = match raw.scrape_timeout.filter(|d| !d.is_zero()) {
            Some(t) if t > interval => return Err(self.err(at.key("scrape_timeout"), "global scrape timeout greater than scrape interval")),
            Some(t) => t,
            None => defaults.scrape_timeout.min(interval),
        };
        Ok(GlobalConfig {
            scrape_interval: interval,
            scrape_timeout: timeout,
            evaluation_interval: raw.evaluation_interval.filter(|d| !d.is_zero()).unwrap_or(defaults.evaluation_interval),
            rule_query_offset: raw.rule_query_offset.unwrap_or_default(),
            query_log_file: self.join(&raw.query_log_file),
            external_labels: raw.external_labels.into_iter().map(|(name, value)| (name, expand_env(&value))).collect(),
        })
    }

    fn scrape(&self, mut raw: RawScrape, global: &GlobalConfig, at: &YamlPath) -> Result<ScrapeConfig, YamlError> {
        if raw.job_name.is_empty() {
            return Err(self.err(at.clone(), "job_name is empty"));
        }
        let http_client = self.http_client(raw.take_http(), at)?;
        self.static_configs(&raw.static_configs, raw.relabel_configs.is_empty(), &at.key("static_configs"))?;
        let file_sd_configs = self.file_sd_configs(raw.file_sd_configs, &at.key("file_sd_configs"))?;
        let kubernetes_sd_configs = self.kubernetes_sd_configs(raw.kubernetes_sd_configs, &at.key("kubernetes_sd_configs"))?;
        self.relabels(&raw.relabel_configs, &at.key("relabel_configs"))?;
        self.relabels(&raw.metric_relabel_configs, &at.key("metric_relabel_configs"))?;

        // The interval first, then the timeout (explicit or inferred) against it.
        let interval = raw.scrape_interval.filter(|d| !d.is_zero()).unwrap_or(global.scrape_interval);
        let timeout = match raw.scrape_timeout.filter(|d| !d.is_zero()) {
            Some(t) if t > interval => {
                return Err(self.err(
                    at.key("scrape_timeout"),
                    format!("scrape timeout greater than scrape interval for scrape config with job name {:?}", raw.job_name),
                ));
            }
            Some(t) => t,
            None => global.scrape_timeout.min(interval),
        };

        Ok(ScrapeConfig {
            job_name: raw.job_name,
            honor_labels: raw.honor_labels,
            honor_timestamps: raw.honor_timestamps.unwrap_or(true),
            params: raw.params,
            scrape_interval: interval,
            scrape_timeout: timeout,
            metrics_path: raw.metrics_path.unwrap_or_else(|| "/metrics".to_string()),
            scheme: raw.scheme.unwrap_or_else(|| "http".to_string()),
            body_size_limit: raw.body_size_limit,
            sample_limit: raw.sample_limit,
            target_limit: raw.target_limit,
            label_limit: raw.label_limit,
            label_name_length_limit: raw.label_name_length_limit,
            label_value_length_limit: raw.label_value_length_limit,
            http_client,
            static_configs: raw.static_configs,
            file_sd_configs,
            kubernetes_sd_configs,
            relabel_configs: raw.relabel_configs,
            metric_relabel_configs: raw.metric_relabel_configs,
        })
    }

    /// Prometheus' `HTTPClientConfig.Validate` (and the TLS pairing it checks
    /// when building the client), then `SetDirectory`.
    fn http_client(&self, raw: RawHttp, at: &YamlPath) -> Result<HttpClientConfig, YamlError> {
        let bearer_token = raw.bearer_token.filter(|s| !s.is_empty());
        let bearer_token_file = raw.bearer_token_file.filter(|s| !s.is_empty());
        let has_bearer = bearer_token.is_some() || bearer_token_file.is_some();
        if bearer_token.is_some() && bearer_token_file.is_some() {
            return Err(self.err(at.key("bearer_token_file"), "at most one of bearer_token & bearer_token_file must be configured"));
        }
        if raw.basic_auth.is_some() && has_bearer {
            return Err(
                self.err(at.key("basic_auth"), "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured")
            );
        }
        let basic_auth = match raw.basic_auth {
            Some(b) => {
                let password = b.password.filter(|s| !s.is_empty());
                let password_file = b.password_file.filter(|s| !s.is_empty());
                if password.is_some() && password_file.is_some() {
                    return Err(self.err(at.key("basic_auth"), "at most one of basic_auth password & password_file must be configured"));
                }
                Some(BasicAuth { username: b.username, password, password_file: password_file.map(|f| self.join(&f)) })
            }
            None => None,
        };
        let authorization = match raw.authorization {
            Some(a) => {
                let at = at.key("authorization");
                if has_bearer {
                    return Err(self.err(at, "authorization is not compatible with bearer_token & bearer_token_file"));
                }
                let credentials = a.credentials.filter(|s| !s.is_empty());
                let credentials_file = a.credentials_file.filter(|s| !s.is_empty());
                if credentials.is_some() && credentials_file.is_some() {
                    return Err(self.err(at, "at most one of authorization credentials & credentials_file must be configured"));
                }
                let auth_type = match a.auth_type.trim() {
                    "" => "Bearer".to_string(),
                    t => t.to_string(),
                };
                if auth_type.eq_ignore_ascii_case("basic") {
                    return Err(self.err(at.key("type"), r#"authorization type cannot be set to "basic", use "basic_auth" instead"#));
                }
                if basic_auth.is_some() {
                    return Err(self.err(at, "at most one of basic_auth, oauth2 & authorization must be configured"));
                }
                Some(Authorization { auth_type, credentials, credentials_file: credentials_file.map(|f| self.join(&f)) })
            }
            None if has_bearer => Some(Authorization {
                auth_type: "Bearer".to_string(),
                credentials: bearer_token,
                credentials_file: bearer_token_file.map(|f| self.join(&f)),
            }),
            None => None,
        };
        let tls = raw.tls_config;
        let tls_at = at.key("tls_config");
        let cert = tls.cert_file.filter(|s| !s.is_empty());
        let key = tls.key_file.filter(|s| !s.is_empty());
        match (&cert, &key) {
            (Some(c), None) => return Err(self.err(tls_at, format!("client cert file {c:?} specified without client key file"))),
            (None, Some(k)) => return Err(self.err(tls_at, format!("client key file {k:?} specified without client cert file"))),
            _ => {}
        }
        if let (Some(min), Some(max)) = (tls.min_version, tls.max_version)
            && max < min
        {
            return Err(
                self.err(tls_at, "tls_config.max_version must be greater than or equal to tls_config.min_version if both are specified")
            );
        }
        let mut tls_config = TlsConfig {
            ca_file: self.join_opt(tls.ca_file),
            cert_file: self.join_opt(cert),
            key_file: self.join_opt(key),
            server_name: tls.server_name.filter(|s| !s.is_empty()),
            ..tls
        };
        tls_config.files_stamp = tls_config.read_files_stamp();
        Ok(HttpClientConfig {
            basic_auth,
            authorization,
            proxy_url: raw.proxy_url.filter(|s| !s.is_empty()),
            tls_config,
            follow_redirects: raw.follow_redirects.unwrap_or(true),
            enable_http2: raw.enable_http2.unwrap_or(true),
        })
    }

    /// Label names of the groups, and (when no relabeling could fix them up)
    /// that targets are addresses rather than URLs.
    fn static_configs(&self, groups: &[StaticConfig], check_targets: bool, at: &YamlPath) -> Result<(), YamlError> {
        for (i, g) in groups.iter().enumerate() {
            for name in g.labels.keys() {
                if !is_valid_label_name(name) {
                    return Err(self.err(at.index(i).key("labels").key(name), format!("{name:?} is not a valid label name")));
                }
            }
            if check_targets {
                for (j, t) in g.targets.iter().enumerate() {
                    check_target_address(t).map_err(|m| self.err(at.index(i).key("targets").index(j), m))?;
                }
            }
        }
        Ok(())
    }

    fn file_sd_configs(&self, configs: Vec<FileSdConfig>, at: &YamlPath) -> Result<Vec<FileSdConfig>, YamlError> {
        let mut out = Vec::with_capacity(configs.len());
        for (i, c) in configs.into_iter().enumerate() {
            if c.files.is_empty() {
                return Err(self.err(at.index(i), "file service discovery config must contain at least one path name"));
            }
            let mut files = Vec::with_capacity(c.files.len());
            for (j, f) in c.files.iter().enumerate() {
                if !is_valid_file_sd_path(f) {
                    return Err(self.err(at.index(i).key("files").index(j), format!("path name {f:?} is not valid for file discovery")));
                }
                files.push(self.join(f));
            }
            out.push(FileSdConfig { files, refresh_interval: c.refresh_interval });
        }
        Ok(out)
    }

    fn kubernetes_sd_configs(&self, configs: Vec<RawKubernetes>, at: &YamlPath) -> Result<Vec<KubernetesSdConfig>, YamlError> {
        configs.into_iter().enumerate().map(|(i, c)| self.kubernetes(c, &at.index(i))).collect()
    }

    /// Prometheus' `kubernetes.SDConfig` validation (label and field selector
    /// syntax is left to the API server).
    fn kubernetes(&self, mut raw: RawKubernetes, at: &YamlPath) -> Result<KubernetesSdConfig, YamlError> {
        let Some(role) = raw.role else {
            return Err(self.err(at.clone(), "role missing (one of: pod, service, endpoints, endpointslice, node, ingress)"));
        };
        let http_client = self.http_client(raw.take_http(), at)?;
        let api_server = raw.api_server.filter(|s| !s.is_empty());
        let kubeconfig = raw.kubeconfig_file.filter(|s| !s.is_empty());
        let custom_http = http_client != HttpClientConfig::default();
        if api_server.is_some() && kubeconfig.is_some() {
            return Err(self.err(at.key("kubeconfig_file"), "cannot use 'kubeconfig_file' and 'api_server' simultaneously"));
        }
        if kubeconfig.is_some() && custom_http {
            return Err(
                self.err(at.key("kubeconfig_file"), "cannot use a custom HTTP client configuration together with 'kubeconfig_file'")
            );
        }
        if api_server.is_none() && custom_http {
            return Err(self.err(at.clone(), "to use custom HTTP client configuration please provide the 'api_server' URL explicitly"));
        }
        if api_server.is_some() && raw.namespaces.own_namespace {
            return Err(self
                .err(at.key("namespaces").key("own_namespace"), "cannot use 'api_server' and 'namespaces.own_namespace' simultaneously"));
        }
        if kubeconfig.is_some() && raw.namespaces.own_namespace {
            return Err(self.err(
                at.key("namespaces").key("own_namespace"),
                "cannot use 'kubeconfig_file' and 'namespaces.own_namespace' simultaneously",
            ));
        }
        let allowed: &[KubernetesRole] = match role {
            KubernetesRole::Pod => &[KubernetesRole::Pod],
            KubernetesRole::Service => &[KubernetesRole::Service],
            KubernetesRole::EndpointSlice => &[KubernetesRole::Pod, KubernetesRole::Service, KubernetesRole::EndpointSlice],
            KubernetesRole::Endpoints => &[KubernetesRole::Pod, KubernetesRole::Service, KubernetesRole::Endpoints],
            KubernetesRole::Node => &[KubernetesRole::Node],
            KubernetesRole::Ingress => &[KubernetesRole::Ingress],
        };
        let mut seen = HashSet::new();
        for (i, s) in raw.selectors.iter().enumerate() {
            let sat = at.key("selectors").index(i).key("role");
            if !seen.insert(s.role) {
                return Err(self.err(sat, format!("duplicated selector role: {}", s.role.name())));
            }
            if !allowed.contains(&s.role) {
                let names: Vec<&str> = allowed.iter().map(|r| r.name()).collect();
                return Err(self.err(sat, format!("{} role supports only {} selectors", role.name(), names.join(", "))));
            }
        }
        Ok(KubernetesSdConfig {
            api_server,
            role,
            kubeconfig_file: kubeconfig.map(|k| self.join(&k)),
            http_client,
            namespaces: raw.namespaces,
            selectors: raw.selectors,
            attach_metadata: raw.attach_metadata,
        })
    }

    fn relabels(&self, configs: &[RelabelConfig], at: &YamlPath) -> Result<(), YamlError> {
        for (i, r) in configs.iter().enumerate() {
            r.validate().map_err(|m| self.err(at.index(i), m))?;
        }
        Ok(())
    }

    fn alertmanager(&self, mut raw: RawAlertmanager, at: &YamlPath) -> Result<AlertmanagerConfig, YamlError> {
        let api_version = match raw.api_version.as_deref() {
            None | Some("v2") => AlertmanagerApiVersion::V2,
            Some("v1") => AlertmanagerApiVersion::V1,
            Some(v) => {
                return Err(self.err(at.key("api_version"), format!("expected Alertmanager api version to be one of [v1 v2] but got {v}")));
            }
        };
        let http_client = self.http_client(raw.take_http(), at)?;
        self.static_configs(&raw.static_configs, raw.relabel_configs.is_empty(), &at.key("static_configs"))?;
        let file_sd_configs = self.file_sd_configs(raw.file_sd_configs, &at.key("file_sd_configs"))?;
        let kubernetes_sd_configs = self.kubernetes_sd_configs(raw.kubernetes_sd_configs, &at.key("kubernetes_sd_configs"))?;
        self.relabels(&raw.relabel_configs, &at.key("relabel_configs"))?;
        Ok(AlertmanagerConfig {
            http_client,
            scheme: raw.scheme.unwrap_or_else(|| "http".to_string()),
            path_prefix: raw.path_prefix,
            timeout: raw.timeout.unwrap_or(Duration::from_secs(10)),
            api_version,
            relabel_configs: raw.relabel_configs,
            static_configs: raw.static_configs,
            file_sd_configs,
            kubernetes_sd_configs,
        })
    }

    /// Remote write/read may not set headers the client manages itself.
    fn headers(&self, headers: &BTreeMap<String, String>, at: &YamlPath) -> Result<(), YamlError> {
        for h in headers.keys() {
            let lower = h.to_ascii_lowercase();
            if lower == "authorization" {
                return Err(self
                    .err(at.key(h), "authorization header must be changed via the basic_auth, authorization, oauth2, or sigv4 parameter"));
            }
            if RESERVED_HEADERS.contains(&lower.as_str()) {
                return Err(self.err(at.key(h), format!("{h} is a reserved header. It must not be changed")));
            }
        }
        Ok(())
    }

    fn remote_write(&self, mut raw: RawRemoteWrite, at: &YamlPath) -> Result<RemoteWriteConfig, YamlError> {
        let Some(url) = raw.url.take() else {
            return Err(self.err(at.clone(), "url for remote_write is empty"));
        };
        self.relabels(&raw.write_relabel_configs, &at.key("write_relabel_configs"))?;
        self.headers(&raw.headers, &at.key("headers"))?;
        let http_client = self.http_client(raw.take_http(), at)?;
        Ok(RemoteWriteConfig {
            url,
            remote_timeout: raw.remote_timeout.unwrap_or(Duration::from_secs(30)),
            headers: raw.headers,
            write_relabel_configs: raw.write_relabel_configs,
            name: raw.name,
            send_exemplars: raw.send_exemplars,
            send_native_histograms: raw.send_native_histograms,
            http_client,
            queue_config: raw.queue_config,
            metadata_config: raw.metadata_config,
        })
    }

    fn remote_read(&self, mut raw: RawRemoteRead, at: &YamlPath) -> Result<RemoteReadConfig, YamlError> {
        let Some(url) = raw.url.take() else {
            return Err(self.err(at.clone(), "url for remote_read is empty"));
        };
        self.headers(&raw.headers, &at.key("headers"))?;
        let http_client = self.http_client(raw.take_http(), at)?;
        Ok(RemoteReadConfig {
            url,
            remote_timeout: raw.remote_timeout.unwrap_or(Duration::from_secs(60)),
            headers: raw.headers,
            read_recent: raw.read_recent,
            name: raw.name,
            http_client,
            required_matchers: raw.required_matchers,
            filter_external_labels: raw.filter_external_labels.unwrap_or(true),
        })
    }
}
