//! Loading and reloading the configuration file.
//!
//! A reload (SIGHUP, `POST /-/reload`, or the file changing on disk) either
//! applies the whole new configuration or none of it: an invalid file is
//! rejected, logged and reported (metric, `/api/v1/status/runtimeinfo`)
//! while the running configuration stays in force and on display.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::config::Config;
use crate::notify::Notifier;
use crate::remote::RemoteStorage;
use crate::rules::manager::{self as rules, RuleManager, RuleOptions};
use crate::scrape::manager::ScrapeManager;

/// The parts a configuration is applied to.
pub struct Subsystems<'a> {
    pub remote: &'a RemoteStorage,
    pub scrape: &'a ScrapeManager,
    pub rules: &'a RuleManager,
    pub rule_options: &'a RuleOptions,
    pub notifier: &'a Notifier,
}

impl Subsystems<'_> {
    /// Applies `c` everywhere. Rule files are read first, so that a broken
    /// rule file changes nothing; then remote write (before anything
    /// appends, so its queues see every sample), alerting, scraping, rules.
    pub async fn apply(&self, c: &Config) -> Result<(), String> {
        let prepared = rules::prepare(c, self.rule_options)?;
        self.remote.apply(&c.remote_write, &c.global.external_labels).await?;
        self.notifier.apply(c)?;
        self.scrape.apply(&c.scrape_configs).await?;
        self.rules.apply(prepared);
        Ok(())
    }
}

/// The configuration in force and the outcome of the last reload.
pub struct ConfigState {
    /// `--config.file`; `None` runs the embedded default.
    pub path: Option<PathBuf>,
    inner: Mutex<Status>,
    last_success: Gauge,
    last_success_time: Gauge,
}

struct Status {
    running: Arc<Config>,
    yaml: String,
    ok: bool,
    error: String,
    /// Last successful load, RFC 3339.
    loaded_at: String,
}

/// What the status API shows about configuration.
#[derive(Debug, Clone)]
pub struct ConfigStatus {
    pub yaml: String,
    pub reload_ok: bool,
    pub reload_error: String,
    pub loaded_at: String,
}

impl ConfigState {
    /// Loads the initial configuration; an invalid file fails startup.
    pub fn load(path: Option<PathBuf>, default: Config) -> Result<ConfigState, String> {
        let config = match &path {
            Some(p) => Config::load_file(p).map_err(|e| e.to_string())?,
            None => default,
        };
        let st = ConfigState {
            path,
            inner: Mutex::new(Status {
                yaml: config.to_yaml(),
                running: Arc::new(config),
                ok: true,
                error: String::new(),
                loaded_at: super::rfc3339_now(),
            }),
            last_success: Gauge::default(),
            last_success_time: Gauge::default(),
        };
        st.last_success.set(1);
        st.last_success_time.set(unix_now());
        Ok(st)
    }

    pub fn register(&self, r: &mut Registry) {
        r.register(
            "prometheus_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
            self.last_success.clone(),
        );
        r.register(
            "prometheus_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload.",
            self.last_success_time.clone(),
        );
    }

    /// The configuration in force.
    pub fn running(&self) -> Arc<Config> {
        self.lock().running.clone()
    }

    pub fn status(&self) -> ConfigStatus {
        let s = self.lock();
        ConfigStatus { yaml: s.yaml.clone(), reload_ok: s.ok, reload_error: s.error.clone(), loaded_at: s.loaded_at.clone() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Status> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Re-reads the file and applies it. On error nothing changes except the
    /// reported reload status.
    pub async fn reload(&self, parts: &Subsystems<'_>) -> Result<(), String> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let result = match Config::load_file(path) {
            Ok(c) => match parts.apply(&c).await {
                Ok(()) => Ok(c),
                Err(e) => Err(format!("applying {}: {e}", path.display())),
            },
            Err(e) => Err(e.to_string()),
        };
        let mut s = self.lock();
        match result {
            Ok(c) => {
                s.yaml = c.to_yaml();
                s.running = Arc::new(c);
                s.ok = true;
                s.error.clear();
                s.loaded_at = super::rfc3339_now();
                self.last_success.set(1);
                self.last_success_time.set(unix_now());
                tracing::info!(file = %path.display(), "configuration reloaded");
                Ok(())
            }
            Err(e) => {
                s.ok = false;
                s.error = e.clone();
                self.last_success.set(0);
                tracing::error!(file = %path.display(), error = %e, "configuration reload failed; keeping the running configuration");
                Err(e)
            }
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
