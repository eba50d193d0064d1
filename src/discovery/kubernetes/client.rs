//! The connection to the Kubernetes API server for one `kubernetes_sd_configs`
//! entry: which cluster, as whom.
//!
//! Like Prometheus, the configured `api_server` (with the entry's HTTP client
//! settings) wins; else `kubeconfig_file`; else the in-cluster service
//! account; and, as a convenience for running Hearth outside a cluster, the
//! default kubeconfig (`$KUBECONFIG` or `~/.kube/config`) last.
//!
//! Token, CA and client-certificate *files* are handed to kube as paths, so
//! kube re-reads them (rotated service-account tokens keep working); files kube
//! cannot reload (a basic-auth password file, non-Bearer credentials) are read
//! once when the client is built.

use axum::http;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::config::{HttpClientConfig, KubernetesSdConfig};

/// Which cluster-and-credentials an entry talks to, as a string that is equal
/// for two entries exactly when they would see the same objects, so that their
/// watches can be shared. Credentials enter only as a hash: the identity may
/// end up in debug output.
pub fn cluster_identity(cfg: &KubernetesSdConfig) -> String {
    let place = match (&cfg.api_server, &cfg.kubeconfig_file) {
        (Some(server), _) => format!("api_server={server}"),
        (None, Some(file)) => format!("kubeconfig={file}"),
        (None, None) => "in-cluster".to_string(),
    };
    let h = &cfg.http_client;
    let mut auth = String::new();
    if let Some(b) = &h.basic_auth {
        auth.push_str(&format!("basic\0{}\0{}\0{:?}\0", b.username, b.password.as_ref().map_or("", |p| p.expose()), b.password_file));
    }
    if let Some(a) = &h.authorization {
        auth.push_str(&format!(
            "authorization\0{}\0{}\0{:?}\0",
            a.auth_type,
            a.credentials.as_ref().map_or("", |c| c.expose()),
            a.credentials_file
        ));
    }
    auth.push_str(&format!("{:?}\0{:?}", h.tls_config, h.proxy_url));
    format!("{place}#{:032x}", xxhash_rust::xxh3::xxh3_128(auth.as_bytes()))
}

/// Checks what can be checked without a runtime or network, so that a broken
/// entry fails the configuration load (as in Prometheus) instead of only
/// logging later: the `api_server` URL and the readability of the kubeconfig.
pub fn validate(cfg: &KubernetesSdConfig) -> Result<(), String> {
    if let Some(server) = &cfg.api_server {
        server.parse::<http::Uri>().map_err(|e| format!("kubernetes_sd_configs: api_server {server:?} is not a valid URL: {e}"))?;
    } else if let Some(file) = &cfg.kubeconfig_file {
        Kubeconfig::read_from(file).map_err(|e| format!("kubernetes_sd_configs: kubeconfig_file {file:?}: {e}"))?;
    }
    Ok(())
}

/// The kube client configuration for an entry (see the module docs for the
/// order of sources). Errors name the setting at fault.
pub async fn kube_config(cfg: &KubernetesSdConfig) -> Result<kube::Config, String> {
    if let Some(server) = &cfg.api_server {
        let uri =
            server.parse::<http::Uri>().map_err(|e| format!("kubernetes_sd_configs: api_server {server:?} is not a valid URL: {e}"))?;
        let mut config = kube::Config::new(uri);
        apply_http_client(&mut config, &cfg.http_client)?;
        return Ok(config);
    }
    if let Some(file) = &cfg.kubeconfig_file {
        let kubeconfig = Kubeconfig::read_from(file).map_err(|e| format!("kubernetes_sd_configs: kubeconfig_file {file:?}: {e}"))?;
        return kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| format!("kubernetes_sd_configs: kubeconfig_file {file:?}: {e}"));
    }
    match kube::Config::incluster() {
        Ok(config) => Ok(config),
        Err(in_cluster) => kube::Config::from_kubeconfig(&KubeConfigOptions::default()).await.map_err(|kubeconfig| {
            format!(
                "kubernetes_sd_configs: neither api_server nor kubeconfig_file is set, and there is no in-cluster \
                 configuration ({in_cluster}) nor a default kubeconfig ({kubeconfig})"
            )
        }),
    }
}

/// Builds the client for an entry. Needs a tokio runtime (the client spawns
/// its connection-pool task).
pub async fn build_client(cfg: &KubernetesSdConfig) -> Result<kube::Client, String> {
    let config = kube_config(cfg).await?;
    kube::Client::try_from(config).map_err(|e| format!("kubernetes_sd_configs: cannot build the API client: {e}"))
}

/// Moves the entry's HTTP client settings (used only with `api_server`, as in
/// Prometheus) into kube's configuration.
fn apply_http_client(config: &mut kube::Config, h: &HttpClientConfig) -> Result<(), String> {
    if let Some(basic) = &h.basic_auth {
        config.auth_info.username = Some(basic.username.clone());
        let password = match (&basic.password, &basic.password_file) {
            (Some(p), _) if !p.is_empty() => Some(p.expose().to_string()),
            (_, Some(file)) => Some(read_secret_file(file, "basic_auth.password_file")?),
            _ => None,
        };
        config.auth_info.password = password.map(Into::into);
    }
    if let Some(auth) = &h.authorization {
        let is_bearer = auth.auth_type.is_empty() || auth.auth_type.eq_ignore_ascii_case("bearer");
        let inline = auth.credentials.as_ref().filter(|c| !c.is_empty()).map(|c| c.expose().to_string());
        if is_bearer {
            if let Some(token) = inline {
                config.auth_info.token = Some(token.into());
            } else if let Some(file) = &auth.credentials_file {
                // A path, so that kube re-reads a rotated token.
                config.auth_info.token_file = Some(file.clone());
            }
        } else {
            let credentials = match (inline, &auth.credentials_file) {
                (Some(c), _) => c,
                (None, Some(file)) => read_secret_file(file, "authorization.credentials_file")?,
                (None, None) => String::new(),
            };
            let mut value = http::HeaderValue::try_from(format!("{} {credentials}", auth.auth_type)).map_err(|_| {
                "kubernetes_sd_configs: authorization: the type or credentials contain characters not allowed in an HTTP header".to_string()
            })?;
            value.set_sensitive(true);
            config.headers.push((http::header::AUTHORIZATION, value));
        }
    }
    let tls = &h.tls_config;
    if let Some(ca) = &tls.ca_file {
        // A path, so that kube picks up a rotated CA.
        config.root_cert_file = Some(ca.into());
    }
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            config.auth_info.client_certificate = Some(cert.clone());
            config.auth_info.client_key = Some(key.clone());
        }
        (Some(_), None) => return Err("kubernetes_sd_configs: tls_config.cert_file is set without tls_config.key_file".into()),
        (None, Some(_)) => return Err("kubernetes_sd_configs: tls_config.key_file is set without tls_config.cert_file".into()),
        (None, None) => {}
    }
    if let Some(name) = &tls.server_name {
        config.tls_server_name = Some(name.clone());
    }
    config.accept_invalid_certs = tls.insecure_skip_verify;
    if tls.min_version.is_some() || tls.max_version.is_some() {
        tracing::warn!(
            "kubernetes_sd_configs: tls_config.min_version/max_version are not supported for the Kubernetes API and are ignored"
        );
    }
    if let Some(proxy) = &h.proxy_url {
        config.proxy_url =
            Some(proxy.parse::<http::Uri>().map_err(|e| format!("kubernetes_sd_configs: proxy_url {proxy:?} is not a valid URL: {e}"))?);
    }
    Ok(())
}

/// Reads a password or credentials file; the trailing newline editors add is
/// not part of the secret (Prometheus trims it too).
fn read_secret_file(path: &str, setting: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("kubernetes_sd_configs: {setting} {path:?}: {e}"))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Authorization, BasicAuth, KubernetesRole, Secret};

    fn sd(api_server: Option<&str>) -> KubernetesSdConfig {
        KubernetesSdConfig {
            api_server: api_server.map(str::to_string),
            role: KubernetesRole::Pod,
            kubeconfig_file: None,
            http_client: HttpClientConfig::default(),
            namespaces: Default::default(),
            selectors: Vec::new(),
            attach_metadata: Default::default(),
        }
    }

    #[tokio::test]
    async fn api_server_with_bearer_token_file_and_tls() {
        let mut cfg = sd(Some("https://k8s.example:6443"));
        cfg.http_client.authorization =
            Some(Authorization { auth_type: "Bearer".into(), credentials: None, credentials_file: Some("/var/token".into()) });
        cfg.http_client.tls_config.ca_file = Some("/etc/ca.pem".into());
        cfg.http_client.tls_config.insecure_skip_verify = true;
        let config = kube_config(&cfg).await.expect("config");
        assert_eq!(config.cluster_url.to_string(), "https://k8s.example:6443/");
        assert_eq!(config.auth_info.token_file.as_deref(), Some("/var/token"));
        assert_eq!(config.root_cert_file.as_deref(), Some(std::path::Path::new("/etc/ca.pem")));
        assert!(config.accept_invalid_certs);
    }

    #[tokio::test]
    async fn basic_auth_and_custom_authorization_type() {
        let mut cfg = sd(Some("https://k8s.example"));
        cfg.http_client.basic_auth = Some(BasicAuth { username: "u".into(), password: Some(Secret::new("p")), password_file: None });
        cfg.http_client.authorization =
            Some(Authorization { auth_type: "Token".into(), credentials: Some(Secret::new("t")), credentials_file: None });
        let config = kube_config(&cfg).await.expect("config");
        assert_eq!(config.auth_info.username.as_deref(), Some("u"));
        assert!(config.auth_info.password.is_some());
        assert_eq!(config.headers.len(), 1);
        assert_eq!(config.headers[0].1.to_str().ok(), Some("Token t"));
    }

    #[tokio::test]
    async fn errors_name_the_setting() {
        let err = kube_config(&sd(Some("not a url"))).await.expect_err("bad url");
        assert!(err.contains("api_server"), "{err}");
        let mut cfg = sd(None);
        cfg.kubeconfig_file = Some("/nonexistent/kubeconfig".into());
        assert!(validate(&cfg).expect_err("missing file").contains("kubeconfig_file"));
        let mut cfg = sd(Some("https://k8s.example"));
        cfg.http_client.basic_auth =
            Some(BasicAuth { username: "u".into(), password: None, password_file: Some("/nonexistent/pw".into()) });
        assert!(kube_config(&cfg).await.expect_err("missing file").contains("basic_auth.password_file"));
    }

    #[test]
    fn identity_differs_by_credentials_but_does_not_show_them() {
        let mut a = sd(Some("https://k8s.example"));
        let mut b = a.clone();
        a.http_client.authorization =
            Some(Authorization { auth_type: "Bearer".into(), credentials: Some(Secret::new("one")), credentials_file: None });
        b.http_client.authorization =
            Some(Authorization { auth_type: "Bearer".into(), credentials: Some(Secret::new("two")), credentials_file: None });
        assert_ne!(cluster_identity(&a), cluster_identity(&b));
        assert_eq!(cluster_identity(&a), cluster_identity(&a.clone()));
        assert!(!cluster_identity(&a).contains("one"));
    }
}
