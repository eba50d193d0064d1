//! Shared watches of Kubernetes objects.
//!
//! Many scrape jobs typically discover from the same objects (every job with
//! `role: pod` in a cluster needs all its pods). Prometheus runs one informer
//! per SD config; Hearth runs ONE watch per distinct (cluster identity, kind,
//! namespace or all, label selector, field selector), shared by every
//! subscriber, which spares the API server duplicate lists and watches.
//!
//! A [`WatchRegistry`] (one per process, cheap to clone) hands out
//! [`Subscription`]s. The first subscription to a key starts a task running
//! kube's `watcher` (with its default backoff) into a reflector [`Store`];
//! dropping the last subscription stops it. Subscribers read the store and
//! wait on a generation counter that is bumped whenever its contents change.
//!
//! Recovery is kube's: after 410 Gone, an expired resourceVersion or an API
//! server restart the watcher lists again, and the store swaps in the new list
//! only when it is complete, so the last known objects stay visible meanwhile.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use futures::StreamExt;
use kube::core::{ClusterResourceScope, NamespaceResourceScope};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::{Api, Resource};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The label set of a per-role counter.
type RoleLabels = [(&'static str, &'static str); 1];
/// The label set of the events counter.
type EventLabels = [(&'static str, &'static str); 2];

/// The roles (Prometheus' label values) whose series exist from the start, so
/// that `rate()` sees the first event of each.
const ROLES: [&str; 6] = ["endpoints", "endpointslice", "node", "pod", "service", "ingress"];
const EVENTS: [&str; 3] = ["add", "delete", "update"];

/// The metrics of the Kubernetes watches of a process; clones share the
/// series, so one value is registered once and handed to the registry.
#[derive(Clone, Default, Debug)]
pub struct KubernetesSdMetrics {
    events: Family<EventLabels, Counter>,
    relists: Family<RoleLabels, Counter>,
    failures: Counter,
}

impl KubernetesSdMetrics {
    /// Registers under Prometheus' names (`prometheus_sd_kubernetes_events_total`,
    /// `prometheus_sd_kubernetes_failures_total`), so dashboards written for
    /// Prometheus work; relists are Hearth's addition in the same namespace.
    pub fn register(&self, r: &mut Registry) {
        for role in ROLES {
            for event in EVENTS {
                let _ = self.events.get_or_create(&[("role", role), ("event", event)]);
            }
            let _ = self.relists.get_or_create(&[("role", role)]);
        }
        r.register("prometheus_sd_kubernetes_events", "The number of Kubernetes events handled.", self.events.clone());
        r.register(
            "prometheus_sd_kubernetes_relists",
            "The number of times a Kubernetes watch started over with a full list (start, 410 Gone, reconnects that lost their place).",
            self.relists.clone(),
        );
        r.register("prometheus_sd_kubernetes_failures", "The number of failed WATCH/LIST requests.", self.failures.clone());
    }

    /// Events counted so far for a role and event type (`add`, `update`, `delete`).
    pub fn events(&self, role: &'static str, event: &'static str) -> u64 {
        self.events.get_or_create(&[("role", role), ("event", event)]).get()
    }

    /// Full lists started so far for a role.
    pub fn relists(&self, role: &'static str) -> u64 {
        self.relists.get_or_create(&[("role", role)]).get()
    }

    /// Failed requests so far.
    pub fn failures(&self) -> u64 {
        self.failures.get()
    }
}

/// The role label for a kind: Prometheus' role names are the lower-cased kinds.
fn role_of<K: Resource<DynamicType = ()>>() -> &'static str {
    let kind = K::kind(&());
    ROLES.iter().copied().find(|r| r.eq_ignore_ascii_case(&kind)).unwrap_or("other")
}

/// What one shared watch is of. Two subscriptions with equal keys share a watch.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct WatchKey {
    /// [`super::client::cluster_identity`], or any string naming the client.
    pub cluster: String,
    kind: TypeId,
    kind_name: &'static str,
    /// `None` for all namespaces (and for cluster-scoped kinds).
    pub namespace: Option<String>,
    pub label_selector: String,
    pub field_selector: String,
}

/// Without the cluster identity, which may carry a credentials hash.
impl Debug for WatchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchKey")
            .field("kind", &self.kind_name)
            .field("namespace", &self.namespace)
            .field("label_selector", &self.label_selector)
            .field("field_selector", &self.field_selector)
            .finish()
    }
}

/// What a subscription asks for, besides the kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchSpec {
    /// `None` for all namespaces; ignored for cluster-scoped kinds.
    pub namespace: Option<String>,
    /// Pushed to the API server; empty for none.
    pub label_selector: String,
    /// Pushed to the API server; empty for none.
    pub field_selector: String,
}

/// The bounds every watched kind meets (all of k8s-openapi's do).
pub trait Watchable: Resource<DynamicType = (), Scope: WatchScope> + Clone + DeserializeOwned + Debug + Send + Sync + 'static {}
impl<K: Resource<DynamicType = (), Scope: WatchScope> + Clone + DeserializeOwned + Debug + Send + Sync + 'static> Watchable for K {}

/// How to address a kind by its scope: kube's `Api::namespaced` only exists
/// for namespaced kinds, so the choice is made through the scope type.
pub trait WatchScope {
    /// Whether objects of this scope live in namespaces.
    const NAMESPACED: bool;
    /// The API for `namespace` (`None`: all), or the cluster for cluster-scoped kinds.
    fn api<K: Resource<Scope = Self, DynamicType = ()>>(client: kube::Client, namespace: Option<&str>) -> Api<K>
    where
        Self: Sized;
}

impl WatchScope for NamespaceResourceScope {
    const NAMESPACED: bool = true;
    fn api<K: Resource<Scope = Self, DynamicType = ()>>(client: kube::Client, namespace: Option<&str>) -> Api<K> {
        match namespace {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        }
    }
}

impl WatchScope for ClusterResourceScope {
    const NAMESPACED: bool = false;
    fn api<K: Resource<Scope = Self, DynamicType = ()>>(client: kube::Client, _namespace: Option<&str>) -> Api<K> {
        Api::all(client)
    }
}

struct Inner {
    /// Each value is a `Weak<Shared<K>>` for the key's kind: weak, so that the
    /// registry does not keep a watch alive that nobody reads.
    watches: Mutex<HashMap<WatchKey, Box<dyn Any + Send + Sync>>>,
    metrics: KubernetesSdMetrics,
}

/// Hands out subscriptions to shared watches; one per process, cheap to clone.
#[derive(Clone)]
pub struct WatchRegistry {
    inner: Arc<Inner>,
}

impl Default for WatchRegistry {
    fn default() -> Self {
        WatchRegistry::new(KubernetesSdMetrics::default())
    }
}

impl WatchRegistry {
    /// A registry counting into `metrics`.
    pub fn new(metrics: KubernetesSdMetrics) -> WatchRegistry {
        WatchRegistry { inner: Arc::new(Inner { watches: Mutex::new(HashMap::new()), metrics }) }
    }

    /// The metrics the watches count into.
    pub fn metrics(&self) -> &KubernetesSdMetrics {
        &self.inner.metrics
    }

    /// How many watches are running (for tests and debugging).
    pub fn active_watches(&self) -> usize {
        let watches = self.inner.watches.lock().unwrap_or_else(PoisonError::into_inner);
        watches.len()
    }

    /// Subscribes to the objects of kind `K` matching `spec` in the cluster
    /// `cluster` (an identity as from [`super::client::cluster_identity`]),
    /// starting a watch through `client` unless one for the same key runs
    /// already (its own client is then used). Must be called within a tokio
    /// runtime.
    pub fn subscribe<K: Watchable>(&self, client: &kube::Client, cluster: &str, spec: &WatchSpec) -> Subscription<K> {
        let namespaced = <K::Scope as WatchScope>::NAMESPACED;
        let key = WatchKey {
            cluster: cluster.to_string(),
            kind: TypeId::of::<K>(),
            kind_name: role_of::<K>(),
            namespace: if namespaced { spec.namespace.clone() } else { None },
            label_selector: spec.label_selector.clone(),
            field_selector: spec.field_selector.clone(),
        };
        let mut watches = self.inner.watches.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = watches.get(&key).and_then(|w| w.downcast_ref::<Weak<Shared<K>>>()).and_then(Weak::upgrade) {
            let changes = existing.changes.clone();
            return Subscription { shared: existing, changes };
        }
        let api: Api<K> = <K::Scope as WatchScope>::api(client.clone(), key.namespace.as_deref());
        let mut config = watcher::Config::default();
        if !key.label_selector.is_empty() {
            config = config.labels(&key.label_selector);
        }
        if !key.field_selector.is_empty() {
            config = config.fields(&key.field_selector);
        }
        let (store, writer) = reflector::store::<K>();
        let (tx, changes) = watch::channel(0u64);
        let (ready_tx, ready) = watch::channel(false);
        tracing::debug!(key = ?key, "kubernetes_sd: starting a watch");
        let task = tokio::spawn(run_watch(
            api,
            config,
            writer,
            Notify { changes: tx, ready: ready_tx },
            self.inner.metrics.clone(),
            key.kind_name,
        ));
        let shared =
            Arc::new(Shared { key: key.clone(), store, changes: changes.clone(), ready, task, registry: Arc::downgrade(&self.inner) });
        watches.insert(key, Box::new(Arc::downgrade(&shared)));
        Subscription { shared, changes }
    }
}

/// One running watch; dropped (and so stopped) with its last subscription.
struct Shared<K: Watchable> {
    key: WatchKey,
    store: Store<K>,
    changes: watch::Receiver<u64>,
    /// True once the first complete list is in the store. Ours, not the
    /// store's `wait_until_ready`: that one wakes only the last of several
    /// concurrent waiters, and a hundred scrape configs subscribing at once
    /// would otherwise wait forever.
    ready: watch::Receiver<bool>,
    task: JoinHandle<()>,
    registry: Weak<Inner>,
}

impl<K: Watchable> Drop for Shared<K> {
    fn drop(&mut self) {
        self.task.abort();
        tracing::debug!(key = ?self.key, "kubernetes_sd: stopping a watch nobody reads");
        if let Some(inner) = self.registry.upgrade() {
            let mut watches = inner.watches.lock().unwrap_or_else(PoisonError::into_inner);
            // A new watch may have taken the key since the count reached zero: keep that one.
            let dead = watches.get(&self.key).and_then(|w| w.downcast_ref::<Weak<Shared<K>>>()).is_some_and(|w| w.strong_count() == 0);
            if dead {
                watches.remove(&self.key);
            }
        }
    }
}

/// A reader of one shared watch. Clones share the watch too.
pub struct Subscription<K: Watchable> {
    shared: Arc<Shared<K>>,
    changes: watch::Receiver<u64>,
}

impl<K: Watchable> Clone for Subscription<K> {
    fn clone(&self) -> Self {
        Subscription { shared: Arc::clone(&self.shared), changes: self.changes.clone() }
    }
}

impl<K: Watchable> Subscription<K> {
    /// The objects as last seen; empty until the first list is in (see [`Self::ready`]).
    pub fn store(&self) -> &Store<K> {
        &self.shared.store
    }

    /// A generation counter bumped after each change of the store's contents;
    /// a fresh receiver, so each consumer tracks what it has seen itself.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }

    /// Waits until the first complete list is in the store. Returns `false` if
    /// the watch ended first (which it does not unless aborted).
    pub async fn ready(&self) -> bool {
        let mut ready = self.shared.ready.clone();
        ready.wait_for(|r| *r).await.is_ok()
    }

    /// What this subscription watches.
    pub fn key(&self) -> &WatchKey {
        &self.shared.key
    }
}

/// Runs one watch until aborted: applies the events to the store, bumps the
/// generation after each change, counts. Errors are retried by the watcher
/// after the default backoff (800 ms doubling up to 30 s).
async fn run_watch<K: Watchable>(
    api: Api<K>,
    config: watcher::Config,
    mut writer: reflector::store::Writer<K>,
    notify: Notify,
    metrics: KubernetesSdMetrics,
    role: &'static str,
) {
    let reader = writer.as_reader();
    let mut stream = std::pin::pin!(watcher(api, config).default_backoff());
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                metrics.failures.inc();
                tracing::warn!(role, error = %e, "kubernetes_sd: watch failed; retrying");
                continue;
            }
        };
        let changed = match &event {
            watcher::Event::Apply(obj) => {
                let known = reader.get(&reflector::ObjectRef::from_obj(obj)).is_some();
                metrics.events.get_or_create(&[("role", role), ("event", if known { "update" } else { "add" })]).inc();
                true
            }
            watcher::Event::Delete(_) => {
                metrics.events.get_or_create(&[("role", role), ("event", "delete")]).inc();
                true
            }
            watcher::Event::Init => {
                metrics.relists.get_or_create(&[("role", role)]).inc();
                false
            }
            // Listed objects reach the store all at once, at InitDone.
            watcher::Event::InitApply(_) => false,
            watcher::Event::InitDone => true,
        };
        writer.apply_watcher_event(&event);
        if matches!(event, watcher::Event::InitDone) {
            notify.ready.send_if_modified(|ready| !std::mem::replace(ready, true));
        }
        if changed {
            notify.changes.send_modify(|generation| *generation += 1);
        }
    }
}

/// How a running watch tells its subscribers about the store.
struct Notify {
    /// Bumped after each change of the store's contents.
    changes: watch::Sender<u64>,
    /// Set once the first list is complete.
    ready: watch::Sender<bool>,
}
