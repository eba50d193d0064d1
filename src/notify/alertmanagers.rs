//! One `alerting.alertmanagers` entry: its discovered Alertmanagers (service
//! discovery + `relabel_configs`, as Prometheus computes their URLs) and the
//! HTTP client that posts to them.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{AlertmanagerApiVersion, AlertmanagerConfig};
use crate::discovery::kubernetes::provider::KubernetesSd;
use crate::discovery::kubernetes::watch::WatchRegistry;
use crate::discovery::{self, DiscoveryMetrics, Groups};
use crate::model::Labels;
use crate::relabel::Relabeler;
use crate::scrape::client::{self, Credentials};

/// How often the discovered Alertmanagers may change (Prometheus' discovery
/// manager updates at most every 5 s; a smaller value costs nothing here).
const DISCOVERY_THROTTLE: std::time::Duration = std::time::Duration::from_secs(1);

/// A configured set of Alertmanagers, with discovery running.
pub struct AlertmanagerSet {
    pub config: AlertmanagerConfig,
    client: reqwest::Client,
    credentials: Credentials,
    relabel: Relabeler,
    _discovery: discovery::Discovery,
    groups: tokio::sync::watch::Receiver<Arc<Groups>>,
}

/// The Alertmanagers of a set as discovered now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Discovered {
    /// Alert endpoints to post to, deduplicated, sorted.
    pub active: Vec<String>,
    /// Endpoints that relabeling dropped.
    pub dropped: Vec<String>,
}

impl AlertmanagerSet {
    /// Checks the entry and starts its discovery (within a tokio runtime).
    /// `index` names the set in logs.
    pub fn start(
        index: usize,
        config: &AlertmanagerConfig,
        kubernetes: &WatchRegistry,
        metrics: &DiscoveryMetrics,
    ) -> Result<AlertmanagerSet, String> {
        let at = |e: String| format!("alerting.alertmanagers[{index}]: {e}");
        let k8s = config
            .kubernetes_sd_configs
            .iter()
            .map(|k| KubernetesSd::new(k, kubernetes).map_err(|e| at(format!("kubernetes_sd_configs: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let relabel = Relabeler::new(&config.relabel_configs).map_err(|e| at(e.to_string()))?;
        let client = client::build(&config.http_client).map_err(at)?;
        let providers = discovery::providers(&config.static_configs, &config.file_sd_configs, k8s, metrics);
        let (d, groups) = discovery::spawn(format!("alertmanagers[{index}]"), providers, DISCOVERY_THROTTLE);
        Ok(AlertmanagerSet {
            config: config.clone(),
            client,
            credentials: Credentials::from_config(&config.http_client),
            relabel,
            _discovery: d,
            groups,
        })
    }

    /// The current Alertmanagers.
    pub fn discovered(&self) -> Discovered {
        let groups = self.groups.borrow().clone();
        let mut out = Discovered::default();
        for g in groups.iter() {
            for t in &g.targets {
                let mut labels: BTreeMap<String, String> = g.labels.clone();
                labels.extend(t.clone());
                labels.insert("__scheme__".into(), self.config.scheme.clone());
                labels.insert("__alerts_path__".into(), post_path(&self.config.path_prefix, self.config.api_version));
                let before = Labels::from_pairs(labels);
                match self.relabel.process(&before) {
                    Some(after) => {
                        let address = after.get("__address__");
                        if address.is_empty() || address.contains('/') {
                            tracing::warn!(address, "alertmanager discovery: invalid address; skipped");
                            continue;
                        }
                        out.active.push(format!("{}://{}{}", after.get("__scheme__"), address, after.get("__alerts_path__")));
                    }
                    None => out.dropped.push(format!(
                        "{}://{}{}",
                        before.get("__scheme__"),
                        before.get("__address__"),
                        before.get("__alerts_path__")
                    )),
                }
            }
        }
        out.active.sort();
        out.active.dedup();
        out.dropped.sort();
        out.dropped.dedup();
        out
    }

    /// Posts a JSON body of alerts to one Alertmanager.
    pub async fn post(&self, url: &str, body: axum::body::Bytes) -> Result<(), String> {
        let req = self
            .client
            .post(url)
            .timeout(self.config.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::USER_AGENT, concat!("Hearth/", env!("CARGO_PKG_VERSION")))
            .body(body);
        let req = client::authorize(req, &self.credentials)?;
        let resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        if status.is_success() { Ok(()) } else { Err(format!("bad response status {status}")) }
    }
}

/// Prometheus' `postPath`: the path prefix joined with the API's alerts path.
fn post_path(prefix: &str, version: AlertmanagerApiVersion) -> String {
    let v = match version {
        AlertmanagerApiVersion::V1 => "v1",
        AlertmanagerApiVersion::V2 => "v2",
    };
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() { format!("/api/{v}/alerts") } else { format!("/{prefix}/api/{v}/alerts") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_path_joins_the_prefix() {
        assert_eq!(post_path("", AlertmanagerApiVersion::V2), "/api/v2/alerts");
        assert_eq!(post_path("/am/", AlertmanagerApiVersion::V2), "/am/api/v2/alerts");
    }
}
