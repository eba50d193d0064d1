//! Configuration: Prometheus' YAML configuration file (same sections, field
//! names, defaults and validation, so a `prometheus.yml` works unchanged),
//! and command-line values in Prometheus' notation (`units`).

pub mod check;
mod expand;
pub mod hash;
mod model;
mod parse;
pub mod paths;
pub mod units;
pub mod yaml;

use std::fmt;
use std::path::{Path, PathBuf};

pub use model::*;
pub use parse::check_target_address;
pub(crate) use parse::is_valid_label_name;
use yaml::YamlError;

/// Why a configuration could not be loaded; the message names the file and,
/// for content errors, the YAML path, line and column.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: {source}", file.display())]
    Read { file: PathBuf, source: std::io::Error },
    /// The content is not a valid configuration.
    #[error("{}", ParseMessage(file.as_deref(), error))]
    Invalid { file: Option<PathBuf>, error: YamlError },
}

/// `parsing YAML file F:LINE:COL: PATH: MESSAGE`, Prometheus' prefix with the place added.
struct ParseMessage<'a>(Option<&'a Path>, &'a YamlError);

impl fmt::Display for ParseMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(file) => write!(f, "parsing YAML file {}", file.display())?,
            None => write!(f, "parsing YAML")?,
        }
        match self.1.line_col {
            Some((l, c)) if self.0.is_some() => write!(f, ":{l}:{c}: ")?,
            Some((l, c)) => write!(f, ": {l}:{c}: ")?,
            None => write!(f, ": ")?,
        }
        if !self.1.path.segments().is_empty() {
            write!(f, "{}: ", self.1.path)?;
        }
        f.write_str(&self.1.message)
    }
}

impl Config {
    /// Reads, parses, applies defaults, resolves relative paths against the
    /// file's directory (made absolute) and validates.
    pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
        Config::load_file_with_text(path).map(|(config, _)| config)
    }

    /// [`Config::load_file`], also returning the text it parsed, so that
    /// the caller can tell exactly which content is in force ([`hash`]).
    pub fn load_file_with_text(path: &Path) -> Result<(Config, String), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { file: path.to_path_buf(), source })?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        let config = parse::parse(&text, &dir).map_err(|error| ConfigError::Invalid { file: Some(path.to_path_buf()), error })?;
        Ok((config, text))
    }

    /// Parses a configuration held in memory; relative paths are taken from
    /// `base_dir`. An empty document is the all-defaults configuration.
    pub fn parse(yaml: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        parse::parse(yaml, base_dir).map_err(|error| ConfigError::Invalid { file: None, error })
    }

    /// The effective configuration with defaults filled in and secrets shown
    /// as `<secret>`, as Prometheus serves it at `/api/v1/status/config`.
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).unwrap_or_else(|e| format!("# error creating config string: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(yaml: &str) -> Config {
        match Config::parse(yaml, Path::new("/etc/hearth")) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    fn error(yaml: &str) -> String {
        match Config::parse(yaml, Path::new("/etc/hearth")) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn empty_document_is_all_defaults() {
        for doc in ["", "# nothing\n", "global:\n", "global: {}\n"] {
            let c = parse(doc);
            assert_eq!(c, Config::default(), "{doc:?}");
        }
        let g = GlobalConfig::default();
        assert_eq!(
            (g.scrape_interval, g.scrape_timeout, g.evaluation_interval),
            (Duration::from_secs(60), Duration::from_secs(10), Duration::from_secs(60))
        );
    }

    #[test]
    fn scrape_defaults_follow_global_and_prometheus() {
        let c = parse(
            "global:\n  scrape_interval: 5s\nscrape_configs:\n  - job_name: a\n  - job_name: b\n    scrape_interval: 30s\n  - job_name: c\n    scrape_interval: 20s\n    scrape_timeout: 15s\n",
        );
        // The global timeout is capped at the global interval.
        assert_eq!(c.global.scrape_timeout, Duration::from_secs(5));
        let [a, b, cc] = &c.scrape_configs[..] else { panic!("{:?}", c.scrape_configs) };
        assert_eq!((a.scrape_interval, a.scrape_timeout), (Duration::from_secs(5), Duration::from_secs(5)));
        assert_eq!((b.scrape_interval, b.scrape_timeout), (Duration::from_secs(30), Duration::from_secs(5)));
        assert_eq!((cc.scrape_interval, cc.scrape_timeout), (Duration::from_secs(20), Duration::from_secs(15)));
        assert_eq!(a.metrics_path, "/metrics");
        assert_eq!(a.scheme, "http");
        assert!(a.honor_timestamps && !a.honor_labels);
        assert!(a.http_client.follow_redirects && a.http_client.enable_http2);
        assert_eq!(a.body_size_limit, 0);
    }

    #[test]
    fn bearer_token_folds_into_authorization() {
        let c = parse("scrape_configs:\n  - job_name: a\n    bearer_token_file: token\n");
        let auth = c.scrape_configs[0].http_client.authorization.clone();
        assert_eq!(
            auth,
            Some(Authorization { auth_type: "Bearer".into(), credentials: None, credentials_file: Some("/etc/hearth/token".into()) })
        );
    }

    #[test]
    fn renewed_certificate_files_make_the_configuration_differ() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = dir.path().join("ca.pem");
        let text = format!("scrape_configs:\n  - job_name: a\n    tls_config: {{ca_file: {}}}\n", ca.display());
        std::fs::write(&ca, "first").expect("write");
        let first = Config::parse(&text, dir.path()).expect("valid");
        assert_eq!(first, Config::parse(&text, dir.path()).expect("valid"), "same files, same configuration");
        std::fs::write(&ca, "renewed").expect("write");
        let renewed = Config::parse(&text, dir.path()).expect("valid");
        assert_ne!(first.scrape_configs, renewed.scrape_configs, "a reload must rebuild the pool's client");
    }

    #[test]
    fn relative_paths_resolve_against_the_config_directory() {
        let c = parse(
            "global:\n  query_log_file: q.log\nrule_files: ['rules/*.yml', /abs/r.yml]\nscrape_configs:\n  - job_name: a\n    basic_auth: {username: u, password_file: ../pw}\n    tls_config: {ca_file: ca.pem, cert_file: c.pem, key_file: /k.pem}\n    file_sd_configs:\n      - files: [sd/*.json]\n",
        );
        assert_eq!(c.global.query_log_file, "/etc/hearth/q.log");
        assert_eq!(c.rule_files, ["/etc/hearth/rules/*.yml", "/abs/r.yml"]);
        let s = &c.scrape_configs[0];
        assert_eq!(s.http_client.basic_auth.as_ref().and_then(|b| b.password_file.as_deref()), Some("/etc/pw"));
        assert_eq!(s.http_client.tls_config.ca_file.as_deref(), Some("/etc/hearth/ca.pem"));
        assert_eq!(s.http_client.tls_config.cert_file.as_deref(), Some("/etc/hearth/c.pem"));
        assert_eq!(s.http_client.tls_config.key_file.as_deref(), Some("/k.pem"));
        assert_eq!(s.file_sd_configs[0].files, ["/etc/hearth/sd/*.json"]);
        assert_eq!(s.file_sd_configs[0].refresh_interval, Duration::from_secs(300));
    }

    #[test]
    fn load_file_resolves_against_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prometheus.yml");
        std::fs::write(&path, "rule_files: [r.yml]\n").unwrap();
        let c = Config::load_file(&path).unwrap();
        assert_eq!(c.rule_files, [dir.path().join("r.yml").to_string_lossy()]);
        let e = Config::load_file(&dir.path().join("missing.yml")).unwrap_err();
        assert!(e.to_string().contains("missing.yml"), "{e}");
    }

    #[test]
    fn errors_name_the_place() {
        let e = error("scrape_configs:\n  - job_name: a\n    static_configs:\n      - tragets: [x]\n");
        assert!(e.starts_with("parsing YAML: 4:9: scrape_configs[0].static_configs[0].tragets: unknown field `tragets`"), "{e}");
        let e = error("scrape_configs:\n  - job_name: a\n  - job_name: a\n");
        assert_eq!(e, "parsing YAML: 3:15: scrape_configs[1].job_name: found multiple scrape configs with job name \"a\"");
        let e = error("scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['ok:1', 'http://x:9100']\n");
        assert_eq!(e, "parsing YAML: 4:27: scrape_configs[0].static_configs[0].targets[1]: \"http://x:9100\" is not a valid hostname");
        let e = error("global:\n  external_labels:\n    foo-bar: x\n");
        assert_eq!(e, "parsing YAML: 3:14: global.external_labels.foo-bar: \"foo-bar\" is not a valid label name");
        let e = error("scrape_configs:\n  - job_name: a\n    scrape_interval: 1x\n");
        assert_eq!(e, "parsing YAML: 3:22: scrape_configs[0].scrape_interval: not a valid duration string: \"1x\"");
        let e = error("scrape_configs:\n  - job_name: a\n    dns_sd_configs: []\n");
        assert!(e.contains("scrape_configs[0].dns_sd_configs: dns_sd_configs is a Prometheus service discovery"), "{e}");
    }

    #[test]
    fn validation_matches_prometheus() {
        for (yaml, want) in [
            (
                "scrape_configs:\n  - job_name: a\n    scrape_timeout: 2m\n",
                "scrape timeout greater than scrape interval for scrape config with job name \"a\"",
            ),
            ("global:\n  scrape_timeout: 2m\n", "global scrape timeout greater than scrape interval"),
            ("scrape_configs:\n  - scrape_interval: 1m\n", "job_name is empty"),
            (
                "scrape_configs:\n  - job_name: a\n    bearer_token: x\n    bearer_token_file: y\n",
                "at most one of bearer_token & bearer_token_file must be configured",
            ),
            (
                "scrape_configs:\n  - job_name: a\n    basic_auth: {username: u}\n    authorization: {credentials: x}\n",
                "at most one of basic_auth, oauth2 & authorization must be configured",
            ),
            (
                "scrape_configs:\n  - job_name: a\n    authorization: {type: Basic}\n",
                "authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
            ),
            ("scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs: [{role: pods}]\n", "unknown Kubernetes SD role \"pods\""),
            (
                "scrape_configs:\n  - job_name: a\n    file_sd_configs: [{files: [a.txt]}]\n",
                "path name \"a.txt\" is not valid for file discovery",
            ),
            ("rule_files: ['a/*/b.yml']\n", "invalid rule file path \"a/*/b.yml\""),
            ("remote_write:\n  - name: x\n", "url for remote_write is empty"),
            (
                "remote_write:\n  - url: http://x\n    headers: {User-Agent: me}\n",
                "User-Agent is a reserved header. It must not be changed",
            ),
            ("alerting:\n  alertmanagers:\n    - api_version: v3\n", "expected Alertmanager api version to be one of [v1 v2] but got v3"),
            (
                "scrape_configs:\n  - job_name: a\n    tls_config: {cert_file: c.pem}\n",
                "client cert file \"c.pem\" specified without client key file",
            ),
        ] {
            let e = error(yaml);
            assert!(e.ends_with(want), "{yaml:?}: {e}");
        }
    }

    #[test]
    fn to_yaml_hides_secrets() {
        let c = parse(
            "scrape_configs:\n  - job_name: a\n    basic_auth: {username: u, password: hunter2}\nremote_write:\n  - url: http://rw\n    authorization: {credentials: tok3n}\n",
        );
        let y = c.to_yaml();
        assert!(!y.contains("hunter2") && !y.contains("tok3n"), "{y}");
        assert!(y.contains("password: <secret>") && y.contains("credentials: <secret>"), "{y}");
    }

    #[test]
    fn external_label_values_expand_environment_references() {
        // PATH is set wherever tests run; changing the environment would race other tests.
        let path = std::env::var("PATH").expect("PATH is set");
        let c = parse("global:\n  external_labels:\n    a: ${PATH}\n    b: x-$PATH\n    c: $$PATH\n    d: ${HEARTH_TEST_UNSET_VARIABLE}\n");
        let labels = &c.global.external_labels;
        assert_eq!(labels["a"], path);
        assert_eq!(labels["b"], format!("x-{path}"));
        assert_eq!(labels["c"], "$PATH");
        assert_eq!(labels["d"], "");
        // Only values are expanded: a name with `$` is still rejected.
        let e = error("global:\n  external_labels:\n    $PATH: v\n");
        assert!(e.contains("\"$PATH\" is not a valid label name"), "{e}");
        // What the status API shows is the expanded value.
        assert!(c.to_yaml().contains("c: $PATH"), "{}", c.to_yaml());
    }

    #[test]
    fn to_yaml_round_trips() {
        let c = parse(
            r#"
global:
  scrape_interval: 15s
  external_labels: {cluster: eu1, "replica": "0"}
rule_files: [rules/*.yml]
alerting:
  alertmanagers:
    - static_configs: [{targets: ['am:9093']}]
      timeout: 5s
scrape_configs:
  - job_name: node
    params: {module: [http_2xx]}
    body_size_limit: 10MB
    sample_limit: 1000
    honor_labels: true
    tls_config: {insecure_skip_verify: true, min_version: TLS12, server_name: x}
    proxy_url: http://proxy:3128
    static_configs:
      - targets: ['a:9100', 'b:9100']
        labels: {env: prod, "n": "1"}
    file_sd_configs: [{files: [sd/*.yml], refresh_interval: 1m}]
    relabel_configs:
      - source_labels: [__address__]
        target_label: instance
    metric_relabel_configs:
      - action: drop
        source_labels: [__name__]
        regex: go_.*
  - job_name: k8s
    kubernetes_sd_configs:
      - role: endpointslice
        namespaces: {names: [default]}
        selectors: [{role: pod, label: "app=x"}]
        attach_metadata: {node: true}
remote_write:
  - url: http://rw/api/v1/write
    queue_config: {max_shards: 10, retry_on_http_429: true}
    write_relabel_configs: [{action: keep, source_labels: [job], regex: node}]
remote_read:
  - url: http://rr/api/v1/read
    read_recent: true
storage:
  tsdb: {out_of_order_time_window: 30m}
"#,
        );
        let y = c.to_yaml();
        let again = Config::parse(&y, Path::new("/elsewhere")).unwrap_or_else(|e| panic!("{e}\n{y}"));
        assert_eq!(again, c, "{y}");
        assert!(y.contains("scrape_timeout: 10s") && y.contains("metrics_path: /metrics") && y.contains("body_size_limit: 10MiB"), "{y}");
    }
}
