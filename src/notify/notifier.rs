//! The notifier: a bounded queue of alerts (oldest dropped on overflow) and
//! a sender that posts batches of at most 256 to every Alertmanager.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::alertmanagers::{AlertmanagerSet, Discovered};
use super::metrics::NotifyMetrics;
use super::{Alert, AlertSink};
use crate::config::Config;
use crate::discovery::DiscoveryMetrics;
use crate::discovery::kubernetes::watch::WatchRegistry;
use crate::model::{Labels, LabelsBuilder};
use crate::relabel::Relabeler;

/// Alertmanager's API takes at most this many alerts per request in
/// Prometheus' notifier; we batch the same.
const MAX_BATCH: usize = 256;

/// What the configuration decides.
struct Settings {
    external_labels: Labels,
    relabel: Relabeler,
    sets: Vec<AlertmanagerSet>,
    /// As configured, to skip restarting discovery on unrelated reloads.
    source: (crate::config::AlertingConfig, std::collections::BTreeMap<String, String>),
}

struct Inner {
    queue: Mutex<VecDeque<Alert>>,
    capacity: usize,
    wake: tokio::sync::Notify,
    settings: Mutex<Arc<Settings>>,
    metrics: NotifyMetrics,
    discovery: DiscoveryMetrics,
    kubernetes: WatchRegistry,
}

/// Sends alerts to the configured Alertmanagers. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

impl Notifier {
    /// A notifier with a queue of `capacity` alerts
    /// (`--alertmanager.notification-queue-capacity`); starts its sender on
    /// the current tokio runtime.
    pub fn start(capacity: usize, metrics: NotifyMetrics, discovery: DiscoveryMetrics, kubernetes: WatchRegistry) -> Notifier {
        metrics.queue_capacity.set(capacity as i64);
        let inner = Arc::new(Inner {
            queue: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            wake: tokio::sync::Notify::new(),
            settings: Mutex::new(Arc::new(Settings {
                external_labels: Labels::empty(),
                relabel: Relabeler::default(),
                sets: Vec::new(),
                source: Default::default(),
            })),
            metrics,
            discovery,
            kubernetes,
        });
        tokio::spawn(send_loop(Arc::downgrade(&inner)));
        Notifier { inner }
    }

    /// Applies `alerting` and the external labels of `config`. Fails without
    /// changing anything if an entry is invalid.
    pub fn apply(&self, config: &Config) -> Result<(), String> {
        let source = (config.alerting.clone(), config.global.external_labels.clone());
        if self.settings().source == source {
            return Ok(());
        }
        let relabel = Relabeler::new(&config.alerting.alert_relabel_configs).map_err(|e| format!("alert_relabel_configs: {e}"))?;
        let sets = config
            .alerting
            .alertmanagers
            .iter()
            .enumerate()
            .map(|(i, am)| AlertmanagerSet::start(i, am, &self.inner.kubernetes, &self.inner.discovery))
            .collect::<Result<Vec<_>, _>>()?;
        let external_labels = Labels::from_pairs(config.global.external_labels.clone());
        *self.inner.settings.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(Settings { external_labels, relabel, sets, source });
        Ok(())
    }

    fn settings(&self) -> Arc<Settings> {
        self.inner.settings.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The Alertmanagers of every set (for `/api/v1/alertmanagers`).
    pub fn alertmanagers(&self) -> Discovered {
        let mut out = Discovered::default();
        for set in &self.settings().sets {
            let d = set.discovered();
            out.active.extend(d.active);
            out.dropped.extend(d.dropped);
        }
        out
    }

    /// Alerts waiting to be sent.
    pub fn queue_len(&self) -> usize {
        self.inner.queue.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl AlertSink for Notifier {
    /// Adds external labels (where the alert has no such label), applies
    /// `alert_relabel_configs` and queues the survivors, dropping the oldest
    /// queued alerts if the queue overflows.
    fn send(&self, alerts: Vec<Alert>) {
        let settings = self.settings();
        let mut queue = self.inner.queue.lock().unwrap_or_else(|p| p.into_inner());
        for mut a in alerts {
            if !settings.external_labels.is_empty() {
                let mut b = LabelsBuilder::from_labels(&a.labels);
                for l in settings.external_labels.iter() {
                    if !a.labels.has(&l.name) {
                        b.set(l.name.as_str(), l.value.as_str());
                    }
                }
                a.labels = b.build();
            }
            let Some(labels) = settings.relabel.process(&a.labels) else { continue };
            if labels.is_empty() {
                continue;
            }
            a.labels = labels;
            queue.push_back(a);
        }
        let overflow = queue.len().saturating_sub(self.inner.capacity);
        if overflow > 0 {
            queue.drain(..overflow);
            self.inner.metrics.dropped.inc_by(overflow as u64);
            tracing::warn!(dropped = overflow, "alert notification queue full; dropped the oldest alerts");
        }
        self.inner.metrics.queue_length.set(queue.len() as i64);
        drop(queue);
        self.inner.wake.notify_one();
    }
}

/// Sends queued alerts in batches until the notifier is dropped.
async fn send_loop(inner: std::sync::Weak<Inner>) {
    loop {
        let Some(strong) = inner.upgrade() else { return };
        let batch: Vec<Alert> = {
            let mut q = strong.queue.lock().unwrap_or_else(|p| p.into_inner());
            let n = q.len().min(MAX_BATCH);
            let batch = q.drain(..n).collect();
            strong.metrics.queue_length.set(q.len() as i64);
            batch
        };
        if batch.is_empty() {
            // Wake at least every second, so the task ends soon after the notifier is dropped.
            let wait = async {
                tokio::select! {
                    () = strong.wake.notified() => {}
                    () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
            };
            wait.await;
            continue;
        }
        send_all(&strong, &batch).await;
    }
}

/// Posts one batch to every Alertmanager at once. If none accepted it, the
/// alerts count as dropped.
async fn send_all(inner: &Inner, batch: &[Alert]) {
    let settings = inner.settings.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let body: Vec<_> = batch.iter().map(Alert::to_api_v2).collect();
    let body = match serde_json::to_vec(&body) {
        Ok(b) => axum::body::Bytes::from(b),
        Err(e) => {
            tracing::error!(error = %e, "encoding alerts failed");
            return;
        }
    };
    let mut posts = Vec::new();
    for set in &settings.sets {
        for url in set.discovered().active {
            let body = body.clone();
            posts.push(async move {
                let r = set.post(&url, body).await;
                (url, r)
            });
        }
    }
    if posts.is_empty() {
        return;
    }
    inner.metrics.discovered.set(posts.len() as i64);
    let mut delivered = false;
    for (url, result) in futures::future::join_all(posts).await {
        let labels = [("alertmanager", url.clone())];
        match result {
            Ok(()) => {
                delivered = true;
                inner.metrics.sent.get_or_create(&labels).inc_by(batch.len() as u64);
            }
            Err(e) => {
                inner.metrics.errors.get_or_create(&labels).inc_by(batch.len() as u64);
                tracing::error!(alertmanager = %url, error = %e, count = batch.len(), "sending alerts failed");
            }
        }
    }
    if !delivered {
        inner.metrics.dropped.inc_by(batch.len() as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(name: &str, severity: &str) -> Alert {
        Alert {
            labels: Labels::from_pairs([("alertname", name), ("severity", severity)]),
            annotations: Labels::empty(),
            starts_at: 1,
            ends_at: 2,
            generator_url: String::new(),
        }
    }

    fn notifier(capacity: usize, yaml: &str) -> (Notifier, NotifyMetrics) {
        let metrics = NotifyMetrics::default();
        let n = Notifier::start(capacity, metrics.clone(), DiscoveryMetrics::default(), WatchRegistry::default());
        n.apply(&Config::parse(yaml, Path::new("/")).expect("config")).expect("apply");
        (n, metrics)
    }

    use std::path::Path;

    // A current-thread runtime: the sender task does not run before the
    // test awaits, so the queue can be inspected as `send` left it.
    #[tokio::test(flavor = "current_thread")]
    async fn external_labels_and_alert_relabeling_apply_before_queueing() {
        let (n, _) = notifier(
            10,
            "global: {external_labels: {cluster: eu1, severity: none}}\nalerting:\n  alert_relabel_configs:\n  - source_labels: [severity]\n    regex: info\n    action: drop\n",
        );
        n.send(vec![alert("A", "page"), alert("B", "info")]);
        let q = n.inner.queue.lock().expect("lock");
        assert_eq!(q.len(), 1, "severity=info dropped by alert_relabel_configs");
        assert_eq!(q[0].labels.get("cluster"), "eu1", "external label added");
        assert_eq!(q[0].labels.get("severity"), "page", "the alert's own label wins over the external one");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_drops_the_oldest_alerts_and_counts_them() {
        let (n, metrics) = notifier(2, "");
        n.send(vec![alert("A", "x"), alert("B", "x"), alert("C", "x")]);
        n.send(vec![alert("D", "x")]);
        let q = n.inner.queue.lock().expect("lock");
        let names: Vec<&str> = q.iter().map(Alert::name).collect();
        assert_eq!(names, ["C", "D"]);
        assert_eq!(metrics.dropped.get(), 2);
        assert_eq!(metrics.queue_length.get(), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn alertmanager_urls_follow_discovery_and_relabeling() {
        let (n, _) = notifier(
            10,
            "alerting:\n  alertmanagers:\n  - path_prefix: /am\n    static_configs:\n    - targets: ['a:9093', 'b:9093']\n      labels: {zone: x}\n    relabel_configs:\n    - source_labels: [__address__]\n      regex: 'b:.*'\n      action: drop\n    - target_label: __scheme__\n      replacement: https\n",
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let d = n.alertmanagers();
            if !d.active.is_empty() {
                assert_eq!(d.active, ["https://a:9093/am/api/v2/alerts"]);
                assert_eq!(d.dropped, ["http://b:9093/am/api/v2/alerts"]);
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no alertmanager discovered");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn alerts_go_out_in_batches_of_at_most_256() {
        let batches: Arc<Mutex<Vec<usize>>> = Arc::default();
        let seen = batches.clone();
        let app = axum::Router::new().route(
            "/api/v2/alerts",
            axum::routing::post(move |body: axum::body::Bytes| {
                let seen = seen.clone();
                async move {
                    let v: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap_or_default();
                    seen.lock().expect("lock").push(v.len());
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let (n, metrics) = notifier(10_000, &format!("alerting:\n  alertmanagers:\n  - static_configs:\n    - targets: ['{addr}']\n"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while n.alertmanagers().active.is_empty() {
            assert!(std::time::Instant::now() < deadline, "no alertmanager discovered");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        n.send((0..600).map(|i| alert(&format!("A{i}"), "x")).collect());
        while batches.lock().expect("lock").iter().sum::<usize>() < 600 {
            assert!(std::time::Instant::now() < deadline, "alerts not delivered: {:?}", batches.lock().expect("lock"));
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let sizes = batches.lock().expect("lock").clone();
        assert!(sizes.iter().all(|&b| b <= 256), "{sizes:?}");
        // The counter moves once the last response is read, just after the server saw the batch.
        let sent = metrics.sent.get_or_create(&[("alertmanager", format!("http://{addr}/api/v2/alerts"))]).clone();
        while sent.get() < 600 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(sent.get(), 600);
    }
}
