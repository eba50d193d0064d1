//! Keeps one scrape pool per `scrape_configs` entry in step with the
//! configuration. On reload only pools whose configuration changed are
//! touched: unchanged ones keep their loops, caches and timing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::ScrapeConfig;
use crate::discovery::kubernetes::provider::KubernetesSd;
use crate::discovery::kubernetes::watch::WatchRegistry;
use crate::discovery::{self, DiscoveryMetrics, Groups};
use crate::model::Labels;
use crate::relabel::Relabeler;
use crate::scrape::client::{self, Credentials};
use crate::scrape::ingest::IngestOptions;
use crate::scrape::pool::{PoolSpec, Reload, ScrapePool};
use crate::scrape::scrape_loop::{PoolContext, Stop};
use crate::scrape::target::{Target, TargetDefaults};
use crate::tsdb::Db;

/// How often discovery updates reach the pools at most. Prometheus uses 5 s;
/// shorter, so that a Kubernetes change (coalesced for 100 ms by its
/// provider) reaches the scrape loops within a second.
const DISCOVERY_THROTTLE: Duration = Duration::from_millis(800);

struct PoolEntry {
    config: ScrapeConfig,
    pool: ScrapePool,
}

/// A pool's targets as the targets API shows them.
pub struct PoolView {
    pub name: String,
    pub active: Vec<Arc<Target>>,
    pub dropped: Vec<Labels>,
}

/// All scrape pools of the server.
pub struct ScrapeManager {
    db: Arc<Db>,
    metrics: DiscoveryMetrics,
    /// Kubernetes watches, shared by every scrape config that needs the same one.
    kubernetes: WatchRegistry,
    throttle: Duration,
    pools: Mutex<BTreeMap<String, PoolEntry>>,
    /// Set by the first successful [`ScrapeManager::apply`]: pools created
    /// after it are new jobs, whose targets are scraped right away.
    applied: AtomicBool,
}

/// Everything a pool needs, built before anything is changed so that a
/// configuration that cannot be applied leaves the running one untouched.
struct Prepared {
    spec: PoolSpec,
    ctx: Arc<PoolContext>,
    /// Checked Kubernetes providers, used if the pool's discovery (re)starts.
    kubernetes: Vec<KubernetesSd>,
}

impl ScrapeManager {
    pub fn new(db: Arc<Db>, metrics: DiscoveryMetrics, kubernetes: WatchRegistry) -> ScrapeManager {
        ScrapeManager {
            db,
            metrics,
            kubernetes,
            throttle: DISCOVERY_THROTTLE,
            pools: Mutex::new(BTreeMap::new()),
            applied: AtomicBool::new(false),
        }
    }

    /// Shortens the discovery throttle (tests).
    pub fn with_throttle(mut self, throttle: Duration) -> ScrapeManager {
        self.throttle = throttle;
        self
    }

    /// Applies a new set of scrape configs. Fails without changing anything
    /// when one of them cannot be set up (e.g. an unreadable CA file).
    pub async fn apply(&self, configs: &[ScrapeConfig]) -> Result<(), String> {
        let mut prepared = BTreeMap::new();
        for c in configs {
            prepared.insert(c.job_name.clone(), (c, self.prepare(c).map_err(|e| format!("scrape config {:?}: {e}", c.job_name))?));
        }
        // The pools of the first configuration spread their first scrapes.
        let startup = !self.applied.swap(true, Ordering::SeqCst);
        let removed: Vec<ScrapePool> = {
            let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
            let gone: Vec<String> = pools.keys().filter(|k| !prepared.contains_key(*k)).cloned().collect();
            let removed = gone.iter().filter_map(|k| pools.remove(k)).map(|e| e.pool).collect();
            for (name, (cfg, p)) in prepared {
                match pools.get_mut(&name) {
                    Some(e) if e.config == *cfg => {}
                    Some(e) => {
                        let sd_changed = e.config.static_configs != cfg.static_configs
                            || e.config.file_sd_configs != cfg.file_sd_configs
                            || e.config.kubernetes_sd_configs != cfg.kubernetes_sd_configs;
                        let discovery = sd_changed.then(|| self.discover(cfg, p.kubernetes));
                        e.pool.reload(Reload { spec: p.spec, ctx: p.ctx, discovery });
                        e.config = cfg.clone();
                        tracing::info!(pool = %name, "scrape pool reloaded");
                    }
                    None => {
                        let (d, groups) = self.discover(cfg, p.kubernetes);
                        pools.insert(name, PoolEntry { config: cfg.clone(), pool: ScrapePool::start(p.spec, p.ctx, d, groups, startup) });
                    }
                }
            }
            removed
        };
        for pool in removed {
            pool.stop(Stop::Stale).await;
        }
        Ok(())
    }

    fn prepare(&self, c: &ScrapeConfig) -> Result<Prepared, String> {
        let kubernetes = c
            .kubernetes_sd_configs
            .iter()
            .map(|k| KubernetesSd::new(k, &self.kubernetes).map_err(|e| format!("kubernetes_sd_configs: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let relabel = Relabeler::new(&c.relabel_configs).map_err(|e| e.to_string())?;
        let metric_relabel = Relabeler::new(&c.metric_relabel_configs).map_err(|e| e.to_string())?;
        let spec = PoolSpec {
            name: c.job_name.clone(),
            defaults: TargetDefaults {
                job_name: c.job_name.clone(),
                interval: c.scrape_interval,
                timeout: c.scrape_timeout,
                metrics_path: c.metrics_path.clone(),
                scheme: c.scheme.clone(),
                params: c.params.clone(),
            },
            relabel: Arc::new(relabel),
            target_limit: c.target_limit,
        };
        let ctx = PoolContext {
            db: self.db.clone(),
            client: client::build(&c.http_client)?,
            credentials: Credentials::from_config(&c.http_client),
            ingest: IngestOptions {
                honor_labels: c.honor_labels,
                honor_timestamps: c.honor_timestamps,
                sample_limit: c.sample_limit,
                label_limit: c.label_limit,
                label_name_length_limit: c.label_name_length_limit,
                label_value_length_limit: c.label_value_length_limit,
                metric_relabel: Arc::new(metric_relabel),
            },
            body_size_limit: c.body_size_limit,
            forced_error: Mutex::new(None),
        };
        Ok(Prepared { spec, ctx: Arc::new(ctx), kubernetes })
    }

    /// Starts the discovery of one scrape config.
    fn discover(
        &self,
        c: &ScrapeConfig,
        kubernetes: Vec<KubernetesSd>,
    ) -> (discovery::Discovery, tokio::sync::watch::Receiver<Arc<Groups>>) {
        let providers = discovery::providers(&c.static_configs, &c.file_sd_configs, kubernetes, &self.metrics);
        discovery::spawn(c.job_name.clone(), providers, self.throttle)
    }

    /// Every pool's targets, in pool-name order.
    pub fn views(&self) -> Vec<PoolView> {
        let pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        pools.iter().map(|(name, e)| PoolView { name: name.clone(), active: e.pool.active(), dropped: e.pool.dropped() }).collect()
    }

    /// Stops all pools without staleness markers (shutdown: a restarted
    /// server continues the same series).
    pub async fn stop(&self) {
        let pools: Vec<ScrapePool> = {
            let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *pools).into_values().map(|e| e.pool).collect()
        };
        for p in pools {
            p.stop(Stop::Quiet).await;
        }
    }
}
