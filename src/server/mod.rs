//! `hearth server`: wires storage, self-monitoring and the HTTP surface together.

mod config_dir;
pub mod config_secret;
mod malloc;
pub mod reload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::config::Config;
use crate::discovery::FileWatch;
use crate::notify::Notifier;
use crate::promql::{Engine, EngineOptions};
use crate::remote::RemoteStorage;
use crate::rules::manager::RuleManager;
use crate::scrape::manager::ScrapeManager;
use crate::server::config_secret::{SecretChanges, SecretData, SecretRef, SecretSync};
use crate::server::reload::{ConfigState, Subsystems};
use crate::tsdb::metrics::TsdbMetrics;
use crate::tsdb::{Db, Options};
use crate::web::busy_poll::BusyPollOptions;
use crate::web::lifecycle::Request;
use crate::web::serve::{self, HttpServer};
use crate::web::webconfig::{self, WebSecurity};
use crate::web::{self, WebState};

/// How often due compactions and retention run.
const COMPACT_EVERY: Duration = Duration::from_secs(60);

/// Everything `hearth server` needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub storage: Options,
    /// `--config.file`; without one the server scrapes itself.
    pub config_file: Option<PathBuf>,
    /// `--config.kubernetes-secret`: the files of `config_file`'s directory
    /// come from this Secret, read through the API (needs `config_file`).
    pub config_secret: Option<SecretRef>,
    /// How long startup waits for that Secret to be readable.
    pub config_secret_wait: Duration,
    /// Scrape interval of the built-in self-scrape (no `--config.file`).
    pub self_scrape_interval: Duration,
    /// How often the configuration file is checked for changes.
    pub config_watch_interval: Duration,
    /// `--web.enable-lifecycle`: `/-/reload` and `/-/quit`.
    pub lifecycle: bool,
    pub engine: EngineOptions,
    /// Serve the TSDB admin API (snapshots, deletion).
    pub admin_api: bool,
    /// `--web.config.file`: TLS and basic auth.
    pub web_config_file: Option<PathBuf>,
    /// Alerting rules' timing and links (`--rules.alert.*`, `--web.external-url`).
    pub rules: crate::rules::manager::RuleOptions,
    /// `--alertmanager.notification-queue-capacity`.
    pub notification_queue_capacity: usize,
    /// Flags as given on the command line, for `/api/v1/status/flags`.
    pub flags: std::collections::BTreeMap<String, String>,
    /// `--web.enable-remote-write-receiver`: accept `POST /api/v1/write`.
    pub remote_write_receiver: bool,
    /// `--web.busy-poll`: longest a serving thread polls for the next request.
    pub busy_poll: Duration,
}

/// The server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("opening storage: {0}")]
    Storage(#[from] crate::tsdb::DbError),
    #[error("listening on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
    #[error("configuration: {0}")]
    Config(String),
    #[error("web configuration: {0}")]
    WebConfig(String),
    #[error("internal task failed: {0}")]
    Task(String),
}

/// Runs until SIGINT or SIGTERM, then flushes storage and returns.
pub async fn run(cfg: ServerConfig) -> Result<(), ServerError> {
    malloc::tune();
    tokio::spawn(async {
        let mut tick = tokio::time::interval(malloc::TRIM_INTERVAL);
        loop {
            tick.tick().await;
            let _ = tokio::task::spawn_blocking(malloc::trim).await;
        }
    });
    let mut registry = Registry::default();
    let tsdb_metrics = TsdbMetrics::default();
    tsdb_metrics.register(&mut registry);
    registry.register(
        "hearth_build",
        "Build information",
        Info::new(vec![("version", env!("CARGO_PKG_VERSION").to_string()), ("component", "server".to_string())]),
    );
    registry.register_collector(Box::new(crate::web::process_metrics::ProcessCollector));
    let mut hup = hangup_signal();
    let discovery_metrics = crate::discovery::DiscoveryMetrics::default();
    discovery_metrics.register(&mut registry);
    let kubernetes_metrics = crate::discovery::kubernetes::watch::KubernetesSdMetrics::default();
    kubernetes_metrics.register(&mut registry);
    let rule_metrics = crate::rules::metrics::RuleMetrics::default();
    rule_metrics.register(&mut registry);
    let notify_metrics = crate::notify::metrics::NotifyMetrics::default();
    notify_metrics.register(&mut registry);
    let remote_metrics = crate::remote::metrics::RemoteMetrics::default();
    remote_metrics.register(&mut registry);
    // Secret mode: the directory is filled before the configuration is first loaded.
    let (mut secret_changes, mut secret_files, written) = match (&cfg.config_secret, &cfg.config_file) {
        (Some(secret), Some(file)) => {
            let (sync, hash) = SecretSync::start(secret.clone(), file, cfg.config_secret_wait).await.map_err(ServerError::Config)?;
            tracing::info!(secret = %secret, hash = %hash, "configuration Secret written");
            (Some(sync.changes), Some(sync.files), Some(hash))
        }
        (Some(_), None) => return Err(ServerError::Config("--config.kubernetes-secret requires --config.file".to_string())),
        (None, _) => (None, None, None),
    };
    // After the Secret is written: the web configuration may be one of its files.
    let security = match &cfg.web_config_file {
        Some(p) => WebSecurity::from_file(p).map_err(ServerError::WebConfig)?,
        None => WebSecurity::none(),
    };
    let default_config = self_scrape_config(&cfg, security.tls_enabled())?;
    // Baseline before loading: a change racing the load then still reloads.
    let mut watch = cfg.config_file.clone().map(FileWatch::new);
    rebaseline(&mut watch);
    let config = Arc::new(ConfigState::load(cfg.config_file.clone(), default_config, written).map_err(ServerError::Config)?);
    config.register(&mut registry);
    let engine = Arc::new(Engine::new(cfg.engine.clone()));
    engine.metrics().register(&mut registry);
    let busy_poll = BusyPollOptions { max: cfg.busy_poll, ..Default::default() };
    registry.register(
        "hearth_http_busy_poll_seconds",
        "Time serving threads spent polling for the next request instead of sleeping (--web.busy-poll)",
        busy_poll.polled_seconds.clone(),
    );
    let (lifecycle_tx, mut lifecycle_rx) = tokio::sync::mpsc::channel(4);

    // Listen first, so probes get "not ready" rather than "connection refused" during replay.
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .and_then(|l| l.into_std())
        .map_err(|source| ServerError::Listen { addr: cfg.listen, source })?;
    let state = Arc::new(WebState {
        registry,
        ready: Default::default(),
        db: Default::default(),
        engine,
        flags: cfg.flags.clone(),
        config: config.clone(),
        scrape: Default::default(),
        rules: Default::default(),
        notifier: Default::default(),
        lifecycle: cfg.lifecycle.then_some(lifecycle_tx),
        started_rfc3339: crate::server::rfc3339_now(),
        admin_api: cfg.admin_api,
        remote_write_receiver: cfg.remote_write_receiver,
    });
    security.spawn_watcher(Duration::from_secs(1));
    let app = web::router(state.clone()).layer(axum::middleware::from_fn_with_state(security.clone(), webconfig::middleware));
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut http = HttpServer::start(listener, app, security.clone(), serve::default_threads(), &busy_poll)
        .map_err(|source| ServerError::Listen { addr: cfg.listen, source })?;
    tracing::info!(listen = %cfg.listen, data = %cfg.data_dir.display(), "hearth server starting");

    let (dir, opts) = (cfg.data_dir.clone(), cfg.storage.clone());
    let db =
        tokio::task::spawn_blocking(move || Db::open(&dir, opts, tsdb_metrics)).await.map_err(|e| ServerError::Task(e.to_string()))??;
    let db = Arc::new(db);
    let _ = state.db.set(db.clone());
    state.ready.store(true, Ordering::Relaxed);
    tracing::info!("storage ready");
    // Remote write starts before compaction can checkpoint the WAL and
    // before scraping appends, so no sample escapes its queues.
    let remote = Arc::new(RemoteStorage::new(&cfg.data_dir, db.wal_hold().clone(), remote_metrics));
    let running = config.running();
    remote.apply(&running.remote_write, &running.global.external_labels).await.map_err(ServerError::Config)?;

    let compactor = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(COMPACT_EVERY);
            loop {
                tick.tick().await;
                let db = db.clone();
                match tokio::task::spawn_blocking(move || db.compact()).await {
                    Ok(Err(e)) => tracing::error!(error = %e, "compaction failed"),
                    Err(e) => tracing::error!(error = %e, "compaction task failed"),
                    Ok(Ok(())) => {}
                }
            }
        })
    };
    let kubernetes = crate::discovery::kubernetes::watch::WatchRegistry::new(kubernetes_metrics);
    let notifier = Notifier::start(cfg.notification_queue_capacity, notify_metrics, discovery_metrics.clone(), kubernetes.clone());
    let scrape = Arc::new(ScrapeManager::new(db.clone(), discovery_metrics, kubernetes));
    let rules = Arc::new(RuleManager::new(state.engine.clone(), db.clone(), Arc::new(notifier.clone()), cfg.rules.clone(), rule_metrics));
    let parts = Subsystems { remote: &remote, scrape: &scrape, rules: &rules, rule_options: &cfg.rules, notifier: &notifier };
    parts.apply(&config.running()).await.map_err(ServerError::Config)?;
    let _ = state.scrape.set(scrape.clone());
    let _ = state.rules.set(rules.clone());
    let _ = state.notifier.set(notifier.clone());
    let mut watch_tick = tokio::time::interval(cfg.config_watch_interval.max(Duration::from_millis(100)));

    loop {
        tokio::select! {
            _ = &mut shutdown => {
                tracing::info!("shutting down");
                break;
            }
            e = http.failed() => return Err(ServerError::Serve(e)),
            Some(req) = lifecycle_rx.recv() => match req {
                Request::Reload(done) => {
                    rebaseline(&mut watch);
                    let _ = done.send(config.reload(&parts).await);
                }
                Request::Quit => {
                    tracing::info!("shutting down (/-/quit)");
                    break;
                }
            },
            Some(()) = hup.recv() => {
                rebaseline(&mut watch);
                let _ = config.reload(&parts).await;
            }
            Some(data) = next_secret(&mut secret_changes) => {
                let Some(files) = secret_files.as_mut() else { continue };
                tracing::info!("configuration Secret changed");
                // Written and loaded here, one change at a time: the hash
                // recorded is that of the data the reload read.
                match files.write(&data) {
                    Ok(hash) => {
                        config.secret_written(hash);
                        rebaseline(&mut watch);
                        let _ = config.reload(&parts).await;
                    }
                    Err(e) => tracing::error!(error = %e, "configuration Secret not applied: its files could not be written"),
                }
            }
            _ = watch_tick.tick() => {
                if watch.as_mut().is_some_and(|w| w.changed()) {
                    tracing::info!("configuration file changed on disk");
                    let _ = config.reload(&parts).await;
                }
            }
        }
    }
    rules.stop();
    scrape.stop().await;
    remote.stop().await;
    http.stop().await;
    compactor.abort();
    let _ = compactor.await;
    match Arc::try_unwrap(db) {
        Ok(db) => tokio::task::spawn_blocking(move || db.close()).await.map_err(|e| ServerError::Task(e.to_string()))??,
        Err(db) => db.head().wal.as_ref().map_or(Ok(()), |w| w.sync()).map_err(|e| ServerError::Task(e.to_string()))?,
    }
    tracing::info!("storage closed");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The Secret's next content, or never without `--config.kubernetes-secret`.
async fn next_secret(changes: &mut Option<SecretChanges>) -> Option<Arc<SecretData>> {
    match changes {
        Some(c) => c.next().await,
        None => std::future::pending().await,
    }
}

/// Records the file's current content as seen, right before it is loaded,
/// so the watcher does not report a change that is being applied (a change
/// racing the load is still reported).
fn rebaseline(watch: &mut Option<FileWatch>) {
    if let Some(w) = watch {
        w.changed();
    }
}

/// SIGHUP requests a reload, as in Prometheus. Registered synchronously at
/// startup, so an early SIGHUP cannot kill the process.
fn hangup_signal() -> tokio::sync::mpsc::Receiver<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    if tx.send(()).await.is_err() {
                        return;
                    }
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot listen for SIGHUP"),
    }
    #[cfg(not(unix))]
    drop(tx);
    rx
}

/// The configuration without `--config.file`: scrape this server itself.
fn self_scrape_config(cfg: &ServerConfig, tls: bool) -> Result<Config, ServerError> {
    let host = if cfg.listen.ip().is_unspecified() { "localhost".to_string() } else { cfg.listen.ip().to_string() };
    let host = if cfg.listen.is_ipv6() && !cfg.listen.ip().is_unspecified() { format!("[{host}]") } else { host };
    let tls = if tls { "\n    scheme: https\n    tls_config:\n      insecure_skip_verify: true" } else { "" };
    let yaml = format!(
        "global:\n  scrape_interval: {interval}\nscrape_configs:\n  - job_name: hearth\n    static_configs:\n      - targets: [\"{host}:{port}\"]{tls}\n",
        interval = crate::config::format_duration(cfg.self_scrape_interval),
        port = cfg.listen.port(),
    );
    Config::parse(&yaml, &cfg.data_dir).map_err(|e| ServerError::Config(format!("built-in self-scrape configuration: {e}")))
}

/// Prometheus' default `--web.external-url`: `http://<hostname>:<port>/`.
pub fn default_external_url(listen: SocketAddr) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    format!("http://{host}:{}/", listen.port())
}

/// The current time in RFC 3339 (UTC, seconds).
pub fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    rfc3339(std::time::UNIX_EPOCH + Duration::from_secs(secs))
}

/// A time in RFC 3339 (UTC), with milliseconds when it has any.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let since = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = crate::model::time::civil_from_days(days);
    let ms = since.subsec_millis();
    let frac = if ms == 0 { String::new() } else { format!(".{ms:03}") };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}
