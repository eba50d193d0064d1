//! Applies the `remote_write` section: one queue per entry, kept running
//! across reloads that leave it (and the external labels) unchanged,
//! restarted from its saved position when changed, and removed (with its
//! saved position and WAL hold) when gone from the configuration.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::metrics::RemoteMetrics;
use super::queue::{Queue, QueueSettings};
use super::watcher::{Position, PositionFile};
use crate::config::RemoteWriteConfig;
use crate::tsdb::wal::hold::SegmentHold;

/// The remote-write queues of a server.
pub struct RemoteStorage {
    data_dir: PathBuf,
    hold: Arc<SegmentHold>,
    metrics: RemoteMetrics,
    queues: tokio::sync::Mutex<HashMap<String, Queue>>,
}

/// The queue name of each entry: its `name`, else derived from its URL (as
/// Prometheus derives one from a hash of the entry), made unique.
pub fn queue_names(cfgs: &[RemoteWriteConfig]) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    cfgs.iter()
        .map(|c| {
            let base = if c.name.is_empty() {
                format!("{:06x}", xxhash_rust::xxh3::xxh3_64(c.url.as_bytes()) & 0xff_ffff)
            } else {
                c.name.clone()
            };
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            if *n == 1 { base } else { format!("{base}-{n}") }
        })
        .collect()
}

impl RemoteStorage {
    /// Queues will read the WAL through `hold`, save positions under
    /// `data_dir` and report into `metrics` (registered by the caller, which
    /// owns the registry before storage opens).
    pub fn new(data_dir: &Path, hold: Arc<SegmentHold>, metrics: RemoteMetrics) -> RemoteStorage {
        RemoteStorage { data_dir: data_dir.to_path_buf(), hold, metrics, queues: Default::default() }
    }

    /// Makes the running queues match `cfgs`. Every new or changed queue is
    /// checked (client, TLS files, relabel rules) before anything changes,
    /// so a bad entry leaves the running queues as they were.
    pub async fn apply(&self, cfgs: &[RemoteWriteConfig], external_labels: &BTreeMap<String, String>) -> Result<(), String> {
        let wanted: Vec<QueueSettings> = queue_names(cfgs)
            .into_iter()
            .zip(cfgs)
            .map(|(name, c)| QueueSettings { name, config: c.clone(), external_labels: external_labels.clone() })
            .collect();
        for w in &wanted {
            super::client::WriteClient::new(&w.config).map_err(|e| format!("remote_write {:?}: {e}", w.name))?;
            crate::relabel::Relabeler::new(&w.config.write_relabel_configs)
                .map_err(|e| format!("remote_write {:?}: write_relabel_configs: {e}", w.name))?;
        }
        let mut queues = self.queues.lock().await;
        let names: Vec<String> = queues.keys().cloned().collect();
        for name in names {
            let keep = wanted.iter().any(|w| queues.get(&name).is_some_and(|q| q.settings() == w));
            if keep {
                continue;
            }
            let Some(q) = queues.remove(&name) else { continue };
            let url = q.settings().config.url.clone();
            q.stop().await;
            if !wanted.iter().any(|w| w.name == name) {
                // Gone from the configuration: forget its place in the WAL.
                PositionFile::new(&self.data_dir, &name).remove();
                self.hold.release(&name);
                self.metrics.remove_queue(&name, &url);
            } else if !wanted.iter().any(|w| w.name == name && w.config.url == url) {
                self.metrics.remove_queue(&name, &url);
            }
        }
        for w in wanted {
            if queues.contains_key(&w.name) {
                continue;
            }
            let metrics = self.metrics.queue(&w.name, &w.config.url);
            let name = w.name.clone();
            let q = Queue::start(w, &self.data_dir, self.hold.clone(), metrics).map_err(|e| e.to_string())?;
            queues.insert(name, q);
        }
        Ok(())
    }

    /// Where each queue has delivered up to (for tests and status).
    pub async fn delivered(&self) -> BTreeMap<String, Position> {
        self.queues.lock().await.iter().map(|(n, q)| (n.clone(), q.delivered())).collect()
    }

    /// Stops every queue, saving positions (shutdown).
    pub async fn stop(&self) {
        let queues: Vec<Queue> = self.queues.lock().await.drain().map(|(_, q)| q).collect();
        futures::future::join_all(queues.into_iter().map(Queue::stop)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_are_the_configured_name_or_derived_and_unique() {
        let cfg = |name: &str, url: &str| {
            let mut c = crate::config::Config::parse(&format!("remote_write:\n  - url: {url}\n"), Path::new("/"))
                .expect("config")
                .remote_write
                .remove(0);
            c.name = name.to_string();
            c
        };
        let names = queue_names(&[cfg("a", "http://x/w"), cfg("", "http://y/w"), cfg("", "http://y/w")]);
        assert_eq!(names[0], "a");
        assert_eq!(names[1].len(), 6);
        assert_eq!(names[2], format!("{}-2", names[1]));
    }
}
