//! Service discovery: where scrape targets come from.
//!
//! Each scrape pool (or Alertmanager set) has a list of [`Provider`]s; [`spawn`]
//! runs them and merges their target groups into one view, published through a
//! `watch` channel at a throttled rate like Prometheus' discovery manager.
//! Providers always hand over their complete current list of groups, so a
//! group that is gone is simply absent from the next view.

pub mod file;
pub mod file_watch;
pub mod glob;
pub mod kubernetes;
pub mod target_group;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use file::FileSd;
pub use file_watch::FileWatch;
pub use target_group::TargetGroup;

/// A list of target groups. Groups are shared, so that a provider re-sending
/// thousands of unchanged groups, the merger and the scrape pools pass
/// pointers instead of copying label maps, and unchanged groups compare by
/// pointer.
pub type Groups = Vec<Arc<TargetGroup>>;

/// One source of target groups in a scrape pool's configuration.
pub enum Provider {
    /// `static_configs`: fixed groups, known up front.
    Static(Vec<TargetGroup>),
    /// `file_sd_configs`.
    File(FileSd),
    /// `kubernetes_sd_configs`, on watches shared through a [`kubernetes::watch::WatchRegistry`].
    Kubernetes(Box<kubernetes::provider::KubernetesSd>),
}

/// The providers of one section's service-discovery configs (a scrape
/// config's, or an Alertmanager config's): static groups first, then file
/// SD, then the already-checked Kubernetes providers.
pub fn providers(
    static_configs: &[crate::config::StaticConfig],
    file_sd_configs: &[crate::config::FileSdConfig],
    kubernetes: Vec<kubernetes::provider::KubernetesSd>,
    metrics: &DiscoveryMetrics,
) -> Vec<Provider> {
    let mut providers = Vec::new();
    if !static_configs.is_empty() {
        let groups =
            static_configs.iter().enumerate().map(|(i, s)| TargetGroup::from_static(i.to_string(), &s.targets, &s.labels)).collect();
        providers.push(Provider::Static(groups));
    }
    for f in file_sd_configs {
        providers.push(Provider::File(FileSd::new(f.files.clone(), f.refresh_interval, metrics.clone())));
    }
    providers.extend(kubernetes.into_iter().map(|sd| Provider::Kubernetes(Box::new(sd))));
    providers
}

/// The metrics of all discovery in a process; clones share the same series,
/// so one value is registered once and handed to every provider.
#[derive(Clone)]
pub struct DiscoveryMetrics {
    pub(crate) file_read_errors: Counter,
    pub(crate) file_scan_duration: Histogram,
}

impl Default for DiscoveryMetrics {
    fn default() -> Self {
        DiscoveryMetrics { file_read_errors: Counter::default(), file_scan_duration: Histogram::new(exponential_buckets(0.0001, 4.0, 10)) }
    }
}

impl DiscoveryMetrics {
    /// Registers under Prometheus' names, so dashboards and alerts written for
    /// Prometheus' file SD work unchanged. The scan duration is a histogram
    /// (Prometheus has a summary): its `_sum` and `_count` are the same series.
    pub fn register(&self, r: &mut Registry) {
        r.register("prometheus_sd_file_read_errors", "The number of File-SD read errors.", self.file_read_errors.clone());
        r.register(
            "prometheus_sd_file_scan_duration_seconds",
            "The duration of the File-SD scans that re-read files, in seconds.",
            self.file_scan_duration.clone(),
        );
    }
}

/// The running discovery of one scrape pool: owns the provider tasks and the
/// merging task; dropping it aborts them all.
pub struct Discovery {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Discovery {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts `providers` (within the current tokio runtime) and merges their
/// groups into one view, in provider order. The first view is published as
/// soon as every provider has reported (or after `throttle`, if one is slow),
/// even when it is empty, so the receiver can tell "discovered nothing" from
/// "not yet"; later views at most once per `throttle` (Prometheus' manager:
/// 5 s) and only when they differ. `name` (the pool's) labels the logs.
pub fn spawn(name: String, providers: Vec<Provider>, throttle: Duration) -> (Discovery, watch::Receiver<Arc<Groups>>) {
    let (out_tx, out_rx) = watch::channel(Arc::new(Vec::new()));
    let (up_tx, up_rx) = mpsc::channel(providers.len().max(1));
    let mut latest = Vec::with_capacity(providers.len());
    let mut tasks = Vec::new();
    for (index, provider) in providers.into_iter().enumerate() {
        match provider {
            Provider::Static(groups) => latest.push(Some(groups.into_iter().map(Arc::new).collect())),
            Provider::File(sd) => {
                latest.push(None);
                let share = |groups: Vec<TargetGroup>| groups.into_iter().map(Arc::new).collect();
                tasks.push(tokio::spawn(run_provider(index, up_tx.clone(), |tx| sd.run(tx), share)));
            }
            Provider::Kubernetes(sd) => {
                latest.push(None);
                tasks.push(tokio::spawn(run_provider(index, up_tx.clone(), |tx| (*sd).run(tx), |groups: Groups| groups)));
            }
        }
    }
    drop(up_tx);
    tasks.push(tokio::spawn(merge(name, latest, up_rx, out_tx, throttle)));
    (Discovery { tasks }, out_rx)
}

/// Runs one provider, tagging what it sends with its index for the merger.
/// Ends when the provider does or when the merger is gone (the provider's next
/// send then fails and it returns).
async fn run_provider<T, F, Fut>(index: usize, up: mpsc::Sender<(usize, Groups)>, run: F, share: fn(T) -> Groups)
where
    F: FnOnce(mpsc::Sender<T>) -> Fut,
    Fut: Future<Output = ()>,
{
    let (tx, mut rx) = mpsc::channel(1);
    let forward = async move {
        while let Some(groups) = rx.recv().await {
            if up.send((index, share(groups))).await.is_err() {
                break;
            }
        }
    };
    tokio::join!(run(tx), forward);
}

/// Keeps each provider's latest list and publishes the concatenation, throttled.
async fn merge(
    name: String,
    mut latest: Vec<Option<Groups>>,
    mut up: mpsc::Receiver<(usize, Groups)>,
    out: watch::Sender<Arc<Groups>>,
    throttle: Duration,
) {
    let started = Instant::now();
    let mut last_publish: Option<Instant> = None;
    let mut dirty = true;
    let mut providers_running = true;
    loop {
        let due = match last_publish {
            _ if !dirty => None,
            Some(at) => Some(at + throttle),
            None if latest.iter().all(Option::is_some) => Some(started),
            None => Some(started + throttle),
        };
        tokio::select! {
            update = up.recv(), if providers_running => match update {
                Some((index, groups)) => {
                    latest[index] = Some(groups);
                    dirty = true;
                }
                None => providers_running = false,
            },
            () = tokio::time::sleep_until(due.unwrap_or(started)), if due.is_some() => {
                let view: Groups = latest.iter().flatten().flatten().cloned().collect();
                // Publishing nothing new costs the receivers nothing, nor the rate.
                if last_publish.is_none() || **out.borrow() != view {
                    tracing::debug!(pool = %name, groups = view.len(), "discovery: publishing targets");
                    out.send_replace(Arc::new(view));
                    last_publish = Some(Instant::now());
                }
                dirty = false;
            }
            () = out.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn group(source: &str, addr: &str) -> TargetGroup {
        TargetGroup::from_static(source.to_string(), &[addr.to_string()], &BTreeMap::new())
    }

    #[tokio::test]
    async fn static_groups_are_published_at_once() {
        let (_d, mut rx) = spawn(
            "pool".into(),
            vec![Provider::Static(vec![group("0", "a:1")]), Provider::Static(vec![group("1", "b:1")])],
            Duration::from_secs(3600),
        );
        tokio::time::timeout(Duration::from_secs(10), rx.changed()).await.expect("published in time").expect("sender alive");
        assert_eq!(*rx.borrow_and_update().clone(), vec![Arc::new(group("0", "a:1")), Arc::new(group("1", "b:1"))]);
    }

    #[tokio::test]
    async fn an_empty_first_view_is_still_published() {
        let (_d, mut rx) = spawn("pool".into(), Vec::new(), Duration::from_secs(3600));
        tokio::time::timeout(Duration::from_secs(10), rx.changed()).await.expect("published in time").expect("sender alive");
        assert!(rx.borrow().is_empty());
    }

    #[tokio::test]
    async fn dropping_the_discovery_stops_publishing() {
        let (d, mut rx) = spawn("pool".into(), vec![Provider::Static(vec![group("0", "a:1")])], Duration::from_millis(10));
        tokio::time::timeout(Duration::from_secs(10), rx.changed()).await.expect("published in time").expect("sender alive");
        drop(d);
        let closed = tokio::time::timeout(Duration::from_secs(10), rx.changed()).await.expect("closed in time");
        assert!(closed.is_err(), "the merger was aborted, so the sender is gone");
    }

    #[test]
    fn metrics_use_prometheus_names() {
        let metrics = DiscoveryMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        metrics.file_read_errors.inc();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        assert!(text.contains("prometheus_sd_file_read_errors_total 1"), "{text}");
        assert!(text.contains("prometheus_sd_file_scan_duration_seconds_count 0"), "{text}");
    }
}
