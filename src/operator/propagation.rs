//! Confirming that the server pods run the newest configuration: each pod
//! reports the hash of the configuration in force at `/-/config-hash`
//! (docs/config-propagation.md); the operator reports Reconciled only when
//! every pod reports the hash of the config Secret it wrote.

use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;

use super::workload::WEB_PORT;

/// Asks a pod which configuration it runs. A trait so reconciler tests can
/// answer for pods that do not exist.
pub trait ConfigProbe: Send + Sync {
    fn config_hash<'a>(&'a self, pod: &'a Pod) -> BoxFuture<'a, Result<String, String>>;
}

/// Asks over HTTP(S) at the pod's IP, with the scheme of the pod's own
/// readiness probe. The certificate is not verified, as the kubelet does
/// not verify its probes': the answer is a hash, not a secret, and a forged
/// one could only delay or hasten the `Reconciled` condition.
pub struct HttpProbe {
    client: reqwest::Client,
}

impl HttpProbe {
    pub fn new() -> Result<HttpProbe, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .danger_accept_invalid_certs(true)
            .build()
            .map_err(|e| format!("building the HTTP client for configuration checks: {e}"))?;
        Ok(HttpProbe { client })
    }
}

impl ConfigProbe for HttpProbe {
    fn config_hash<'a>(&'a self, pod: &'a Pod) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let ip = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()).ok_or("no pod IP yet")?;
            let host = if ip.contains(':') { format!("[{ip}]") } else { ip.to_string() };
            let url = format!("{}://{host}:{WEB_PORT}/-/config-hash", scheme(pod));
            let resp = self.client.get(&url).send().await.map_err(|e| format!("{url}: {e}"))?;
            if !resp.status().is_success() {
                return Err(format!("{url}: HTTP {}", resp.status()));
            }
            Ok(resp.text().await.map_err(|e| format!("{url}: {e}"))?.trim().to_string())
        })
    }
}

/// `https` when the pod's server container is probed over HTTPS.
fn scheme(pod: &Pod) -> &'static str {
    let https = pod
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .filter_map(|c| c.readiness_probe.as_ref())
        .any(|p| p.http_get.as_ref().and_then(|h| h.scheme.as_deref()) == Some("HTTPS"));
    if https { "https" } else { "http" }
}
