//! `hearth server`: wires storage, self-monitoring and the HTTP surface together.

mod self_scrape;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::promql::{Engine, EngineOptions};
use crate::tsdb::metrics::TsdbMetrics;
use crate::tsdb::{Db, Options};
use crate::web::webconfig::{self, TlsListener, WebSecurity};
use crate::web::{self, WebState};

/// How often due compactions and retention run.
const COMPACT_EVERY: Duration = Duration::from_secs(60);

/// Everything `hearth server` needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub storage: Options,
    pub self_scrape_interval: Duration,
    pub engine: EngineOptions,
    /// Serve the TSDB admin API (snapshots, deletion).
    pub admin_api: bool,
    /// `--web.config.file`: TLS and basic auth.
    pub web_config_file: Option<PathBuf>,
    /// Flags as given on the command line, for `/api/v1/status/flags`.
    pub flags: std::collections::BTreeMap<String, String>,
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
    #[error("web configuration: {0}")]
    WebConfig(String),
    #[error("internal task failed: {0}")]
    Task(String),
}

/// Runs until SIGINT or SIGTERM, then flushes storage and returns.
pub async fn run(cfg: ServerConfig) -> Result<(), ServerError> {
    let mut registry = Registry::default();
    let tsdb_metrics = TsdbMetrics::default();
    tsdb_metrics.register(&mut registry);
    registry.register(
        "hearth_build",
        "Build information",
        Info::new(vec![("version", env!("CARGO_PKG_VERSION").to_string()), ("component", "server".to_string())]),
    );
    let scrape_metrics = self_scrape::SelfScrapeMetrics::default();
    scrape_metrics.register(&mut registry);

    // Listen first, so probes get "not ready" rather than "connection refused" during replay.
    let listener = tokio::net::TcpListener::bind(cfg.listen).await.map_err(|source| ServerError::Listen { addr: cfg.listen, source })?;
    let state = Arc::new(WebState {
        registry,
        ready: Default::default(),
        db: Default::default(),
        engine: Arc::new(Engine::new(cfg.engine.clone())),
        flags: cfg.flags.clone(),
        config_yaml: "global:\n  scrape_interval: 15s\n  evaluation_interval: 1m\n".to_string(),
        started_rfc3339: crate::server::rfc3339_now(),
        admin_api: cfg.admin_api,
    });
    let security = match &cfg.web_config_file {
        Some(p) => WebSecurity::from_file(p).map_err(ServerError::WebConfig)?,
        None => WebSecurity::none(),
    };
    security.spawn_watcher(Duration::from_secs(1));
    let app = web::router(state.clone()).layer(axum::middleware::from_fn_with_state(security.clone(), webconfig::middleware));
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    let mut server_task = if security.tls_enabled() {
        let tls = TlsListener::new(listener, security.clone()).map_err(|source| ServerError::Listen { addr: cfg.listen, source })?;
        tokio::spawn(async move { axum::serve(tls, app).await })
    } else {
        tokio::spawn(async move { axum::serve(listener, app).await })
    };
    tracing::info!(listen = %cfg.listen, data = %cfg.data_dir.display(), "hearth server starting");

    let (dir, opts) = (cfg.data_dir.clone(), cfg.storage.clone());
    let db =
        tokio::task::spawn_blocking(move || Db::open(&dir, opts, tsdb_metrics)).await.map_err(|e| ServerError::Task(e.to_string()))??;
    let db = Arc::new(db);
    let _ = state.db.set(db.clone());
    state.ready.store(true, Ordering::Relaxed);
    tracing::info!("storage ready");

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
    let scraper =
        tokio::spawn(self_scrape::run(db.clone(), state.clone(), cfg.listen.to_string(), cfg.self_scrape_interval, scrape_metrics));

    tokio::select! {
        _ = &mut shutdown => tracing::info!("shutting down"),
        r = &mut server_task => {
            if let Ok(Err(e)) = r {
                return Err(ServerError::Serve(e));
            }
        }
    }
    server_task.abort();
    compactor.abort();
    scraper.abort();
    let _ = scraper.await;
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

/// The current time in RFC 3339 (UTC, seconds).
pub fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}
