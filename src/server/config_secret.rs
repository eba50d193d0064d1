//! `--config.kubernetes-secret=NAMESPACE/NAME`: the configuration comes from
//! a Secret read through the Kubernetes API, not from a mounted volume.
//!
//! Kubelet takes a minute or more to refresh a mounted Secret; the operator
//! instead writes the Secret, and each pod fetches it at startup (before the
//! configuration is first loaded: the directory starts empty), then watches
//! it and reloads on every change. The Secret is read by listing with a
//! `metadata.name` field selector, so RBAC restricted to that one name
//! (`resourceNames`) is enough for both the list and the watch.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ListParams;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::hash::content_hash;
use crate::server::config_dir::ConfigDir;

/// A Secret's `data`: key → decoded bytes.
pub type SecretData = BTreeMap<String, Vec<u8>>;

/// Longest wait for one list request at startup.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Waits between startup attempts: doubling from the first to the last.
const FIRST_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// `NAMESPACE/NAME` of the Secret holding the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub namespace: String,
    pub name: String,
}

impl FromStr for SecretRef {
    type Err = String;

    fn from_str(s: &str) -> Result<SecretRef, String> {
        match s.split_once('/') {
            Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(SecretRef { namespace: namespace.to_string(), name: name.to_string() })
            }
            _ => Err(format!("{s:?} is not NAMESPACE/NAME (exactly one '/', both parts non-empty)")),
        }
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl SecretRef {
    fn field_selector(&self) -> String {
        format!("metadata.name={}", self.name)
    }
}

/// The running Secret mode, in two parts so that the server's loop can wait
/// on one while using the other.
pub struct SecretSync {
    pub changes: SecretChanges,
    pub files: SecretFiles,
}

/// The Secret's latest data, as followed by a watch (stopped on drop).
pub struct SecretChanges {
    latest: watch::Receiver<Arc<SecretData>>,
    task: JoinHandle<()>,
}

/// Where the Secret's keys are written: the directory of `--config.file`.
pub struct SecretFiles {
    secret: SecretRef,
    dir: ConfigDir,
}

impl SecretSync {
    /// Connects (in-cluster or `KUBECONFIG`), fetches the Secret, retrying
    /// for at most `wait`, writes its keys beside `config_file` and starts
    /// watching it. Returns the `content_hash` of the data written. Fails,
    /// naming the Secret, when it cannot be read within `wait`.
    pub async fn start(secret: SecretRef, config_file: &Path, wait: Duration) -> Result<(SecretSync, String), String> {
        let client = Client::try_default()
            .await
            .map_err(|e| format!("Secret {secret}: no Kubernetes API configuration (in-cluster or KUBECONFIG): {e}"))?;
        let api: Api<Secret> = Api::namespaced(client, &secret.namespace);
        let data = fetch(&api, &secret, wait).await?;
        let dir = match config_file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let mut files = SecretFiles { secret: secret.clone(), dir: ConfigDir::new(dir) };
        let hash = files.write(&data)?;
        let (tx, latest) = watch::channel(Arc::new(data));
        let changes = SecretChanges { latest, task: tokio::spawn(follow(api, secret, tx)) };
        Ok((SecretSync { changes, files }, hash))
    }
}

impl SecretChanges {
    /// Waits until the Secret's content changes and returns it; `None` if
    /// the watch has ended (it does not, unless aborted).
    pub async fn next(&mut self) -> Option<Arc<SecretData>> {
        self.latest.changed().await.ok()?;
        Some(self.latest.borrow_and_update().clone())
    }
}

impl Drop for SecretChanges {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SecretFiles {
    /// Writes `data` into the directory, logging keys that were skipped, and
    /// returns its `content_hash` (over all keys, as the operator computes
    /// it). Fails, with every error, if the directory could not be made to
    /// hold the data: loading it then would not load this data.
    pub fn write(&mut self, data: &SecretData) -> Result<String, String> {
        let report = self.dir.sync(data);
        for skipped in &report.skipped {
            tracing::error!(secret = %self.secret, "configuration Secret: {skipped}");
        }
        if report.failed.is_empty() { Ok(content_hash(data)) } else { Err(format!("Secret {}: {}", self.secret, report.failed.join("; "))) }
    }
}

/// Lists the Secret until it is there, backing off, for at most `wait`.
async fn fetch(api: &Api<Secret>, secret: &SecretRef, wait: Duration) -> Result<SecretData, String> {
    let deadline = tokio::time::Instant::now() + wait;
    let params = ListParams::default().fields(&secret.field_selector());
    let mut backoff = FIRST_RETRY;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let error = match tokio::time::timeout(REQUEST_TIMEOUT.min(left), api.list(&params)).await {
            Ok(Ok(list)) => match list.items.into_iter().find(|s| s.metadata.name.as_deref() == Some(secret.name.as_str())) {
                Some(s) => return Ok(data_of(s)),
                None => "not found".to_string(),
            },
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {:?}", REQUEST_TIMEOUT.min(left)),
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(format!("Secret {secret}: not readable within {wait:?}: {error}"));
        }
        tracing::warn!(secret = %secret, error = %error, retry_in = ?backoff.min(left), "cannot read the configuration Secret yet");
        tokio::time::sleep(backoff.min(left)).await;
        backoff = (backoff * 2).min(MAX_RETRY);
    }
}

fn data_of(s: Secret) -> SecretData {
    s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect()
}

/// Watches the Secret until aborted, publishing its data when the content
/// changes. A deleted or missing Secret leaves the configuration as it is.
/// Errors are logged and retried by the watcher with its default backoff
/// (800 ms doubling up to 30 s).
async fn follow(api: Api<Secret>, secret: SecretRef, tx: watch::Sender<Arc<SecretData>>) {
    let config = watcher::Config::default().fields(&secret.field_selector());
    let mut stream = std::pin::pin!(watcher(api, config).default_backoff());
    // The Secret as listed by the current (re)list, published when it completes.
    let mut listed = None;
    let publish = |s: Secret| {
        if s.metadata.name.as_deref() != Some(secret.name.as_str()) {
            return;
        }
        let data = data_of(s);
        tx.send_if_modified(|current| {
            let changed = **current != data;
            if changed {
                *current = Arc::new(data);
            }
            changed
        });
    };
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => listed = None,
            Ok(Event::InitApply(s)) => listed = Some(s),
            Ok(Event::InitDone) => match listed.take() {
                Some(s) => publish(s),
                None => tracing::warn!(secret = %secret, "configuration Secret not found; keeping the configuration in force"),
            },
            Ok(Event::Apply(s)) => publish(s),
            Ok(Event::Delete(_)) => tracing::warn!(secret = %secret, "configuration Secret deleted; keeping the configuration in force"),
            Err(e) => tracing::warn!(secret = %secret, error = %e, "watching the configuration Secret failed; retrying"),
        }
    }
    tracing::error!(secret = %secret, "the watch of the configuration Secret ended; changes are no longer followed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_ref_is_namespace_slash_name() {
        assert_eq!("ns1/cfg".parse(), Ok(SecretRef { namespace: "ns1".to_string(), name: "cfg".to_string() }));
        for bad in ["cfg", "ns/a/b", "/cfg", "ns/", "/", ""] {
            let e = bad.parse::<SecretRef>().expect_err(bad);
            assert!(e.contains("is not NAMESPACE/NAME"), "{e}");
        }
        assert_eq!(SecretRef { namespace: "a".to_string(), name: "b".to_string() }.to_string(), "a/b");
    }
}
