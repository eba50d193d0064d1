//! Loading and reloading the configuration file.
//!
//! A reload (SIGHUP, `POST /-/reload`, or the file changing on disk) either
//! applies the whole new configuration or none of it: an invalid file is
//! rejected, logged and reported (metric, `/api/v1/status/runtimeinfo`)
//! while the running configuration stays in force and on display.
//!
//! The state also keeps the hash of the configuration in force
//! ([`crate::config::hash::content_hash`], served at `/-/config-hash`), so
//! that the operator can confirm which configuration each pod runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::config::Config;
use crate::config::hash::content_hash;
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
    /// `hearth_config_hash_info{hash}`: one series, the hash in force.
    hash_info: Family<Vec<(String, String)>, Gauge>,
}

struct Status {
    running: Arc<Config>,
    /// Hash of the configuration in force.
    hash: String,
    /// With `--config.kubernetes-secret`: the hash of the Secret data last
    /// written to the configuration directory, which a successful load
    /// puts in force. `None`: the hash is of the configuration file itself.
    written: Option<String>,
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
    /// `written`: the hash of the Secret data just written to the
    /// configuration directory (`--config.kubernetes-secret`), else `None`.
    pub fn load(path: Option<PathBuf>, default: Config, written: Option<String>) -> Result<ConfigState, String> {
        let (config, hash) = match &path {
            Some(p) => load(p, written.as_deref())?,
            None => (default, content_hash(&BTreeMap::new())),
        };
        let st = ConfigState {
            path,
            inner: Mutex::new(Status {
                yaml: config.to_yaml(),
                running: Arc::new(config),
                hash,
                written,
                ok: true,
                error: String::new(),
                loaded_at: super::rfc3339_now(),
            }),
            last_success: Gauge::default(),
            last_success_time: Gauge::default(),
            hash_info: Family::default(),
        };
        st.last_success.set(1);
        st.last_success_time.set(unix_now());
        st.show_hash(&st.hash());
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
        r.register(
            "hearth_config_hash_info",
            "Hash of the configuration in force, as served at /-/config-hash (always 1).",
            self.hash_info.clone(),
        );
    }

    /// The hash of the configuration in force: in Secret mode the
    /// `content_hash` of the Secret data whose load succeeded, otherwise of
    /// `{file name: content}` as loaded (of no files for the embedded default).
    pub fn hash(&self) -> String {
        self.lock().hash.clone()
    }

    /// Records that Secret data with this `content_hash` is now in the
    /// configuration directory; the next successful reload puts it in force.
    pub fn secret_written(&self, hash: String) {
        self.lock().written = Some(hash);
    }

    fn show_hash(&self, hash: &str) {
        self.hash_info.clear();
        self.hash_info.get_or_create(&vec![("hash".to_string(), hash.to_string())]).set(1);
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
        // Taken before reading: what is on disk now is what gets loaded
        // (the directory is written only by the task that calls this).
        let written = self.lock().written.clone();
        let result = match load(path, written.as_deref()) {
            Ok((c, hash)) => match parts.apply(&c).await {
                Ok(()) => Ok((c, hash)),
                Err(e) => Err(format!("applying {}: {e}", path.display())),
            },
            Err(e) => Err(e),
        };
        let mut s = self.lock();
        match result {
            Ok((c, hash)) => {
                s.yaml = c.to_yaml();
                s.running = Arc::new(c);
                self.show_hash(&hash);
                s.hash = hash;
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

/// Loads `path` and names the hash it puts in force: `written` (the Secret
/// data the file came from) or else that of the file as read.
fn load(path: &Path, written: Option<&str>) -> Result<(Config, String), String> {
    let (config, text) = Config::load_file_with_text(path).map_err(|e| e.to_string())?;
    let hash = match written {
        Some(h) => h.to_string(),
        None => {
            let name = path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            content_hash(&BTreeMap::from([(name, text.into_bytes())]))
        }
    };
    Ok((config, hash))
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
