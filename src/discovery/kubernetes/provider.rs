//! `kubernetes_sd_configs` as a discovery provider: subscribes to the shared
//! watches its role needs and turns their stores into target groups with the
//! role conversions, like Prometheus' `discovery/kubernetes`.
//!
//! Instead of incremental per-object updates, every change recomputes the
//! complete list (the contract of [`crate::discovery::Provider`]); changes are
//! coalesced for [`COALESCE`] so that a burst (a rollout, a relist) costs one
//! recomputation while a single change still reaches the scrape manager well
//! within a second.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::{mpsc, watch};

use super::client;
use super::meta::Related;
use super::watch::{Subscription, WatchRegistry, WatchSpec, Watchable};
use crate::config::{KubernetesRole, KubernetesSdConfig};
use crate::discovery::{Groups, TargetGroup};

/// How long changes are gathered before the groups are recomputed.
pub const COALESCE: Duration = Duration::from_millis(100);

/// Where the service account's namespace is mounted in a pod.
const NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// How long to wait before trying again to build a client that failed.
const CLIENT_RETRY: Duration = Duration::from_secs(10);

/// Discovery from one `kubernetes_sd_configs` entry.
pub struct KubernetesSd {
    cfg: KubernetesSdConfig,
    registry: WatchRegistry,
    cluster: String,
    /// Built in `run` unless given (tests): building needs the runtime.
    client: Option<kube::Client>,
    /// `None` for all namespaces.
    namespaces: Vec<Option<String>>,
}

impl KubernetesSd {
    /// Checks the entry and resolves its namespaces; the client is built when
    /// the provider runs. Errors name the setting at fault.
    pub fn new(cfg: &KubernetesSdConfig, registry: &WatchRegistry) -> Result<KubernetesSd, String> {
        client::validate(cfg)?;
        KubernetesSd::build(cfg, registry, None, client::cluster_identity(cfg))
    }

    /// Like [`Self::new`], with a ready client standing for the cluster named
    /// `cluster` (for tests with a mocked API server).
    pub fn with_client(
        cfg: &KubernetesSdConfig,
        registry: &WatchRegistry,
        client: kube::Client,
        cluster: &str,
    ) -> Result<KubernetesSd, String> {
        KubernetesSd::build(cfg, registry, Some(client), cluster.to_string())
    }

    fn build(
        cfg: &KubernetesSdConfig,
        registry: &WatchRegistry,
        client: Option<kube::Client>,
        cluster: String,
    ) -> Result<KubernetesSd, String> {
        let mut names = cfg.namespaces.names.clone();
        if cfg.namespaces.own_namespace {
            let own = std::fs::read_to_string(NAMESPACE_FILE)
                .map_err(|e| format!("kubernetes_sd_configs: namespaces.own_namespace: cannot read {NAMESPACE_FILE}: {e}"))?;
            names.push(own.trim().to_string());
        }
        names.sort();
        names.dedup();
        let namespaces = if names.is_empty() { vec![None] } else { names.into_iter().map(Some).collect() };
        Ok(KubernetesSd { cfg: cfg.clone(), registry: registry.clone(), cluster, client, namespaces })
    }

    /// Runs until the task is aborted or `tx` is closed, sending the complete
    /// current list of groups after each (coalesced) change; the first send
    /// comes once every initial list is in.
    pub async fn run(self, tx: mpsc::Sender<Groups>) {
        let client = match self.client.clone() {
            Some(client) => client,
            None => loop {
                match client::build_client(&self.cfg).await {
                    Ok(client) => break client,
                    Err(e) => {
                        tracing::error!(error = %e, "kubernetes_sd: cannot connect; retrying");
                        tokio::time::sleep(CLIENT_RETRY).await;
                    }
                }
            },
        };
        let subs = self.subscribe(&client);
        subs.ready().await;
        let mut changes = subs.changes();
        loop {
            for rx in &mut changes {
                rx.borrow_and_update();
            }
            if tx.send(subs.groups()).await.is_err() {
                return;
            }
            let waits: Vec<_> = changes.iter_mut().map(|rx| Box::pin(rx.changed())).collect();
            let (result, _, _) = futures::future::select_all(waits).await;
            if result.is_err() {
                // A watch ended, which happens only when it was stopped.
                return;
            }
            tokio::time::sleep(COALESCE).await;
        }
    }

    /// The server-side selectors configured for `role`.
    fn spec(&self, role: KubernetesRole, namespace: &Option<String>) -> WatchSpec {
        let mut spec = WatchSpec { namespace: namespace.clone(), ..WatchSpec::default() };
        if let Some(s) = self.cfg.selectors.iter().find(|s| s.role == role) {
            spec.label_selector = s.label.clone();
            spec.field_selector = s.field.clone();
        }
        spec
    }

    fn each_namespace<K: Watchable>(&self, client: &kube::Client, role: KubernetesRole) -> Vec<Subscription<K>> {
        self.namespaces.iter().map(|ns| self.registry.subscribe::<K>(client, &self.cluster, &self.spec(role, ns))).collect()
    }

    /// The watches this entry's role needs: the role's kind, plus what the
    /// endpoint roles attach (pods, services) and nodes if asked for.
    fn subscribe(&self, client: &kube::Client) -> Subs {
        use KubernetesRole as R;
        let role = self.cfg.role;
        let attach_node = self.cfg.attach_metadata.node && matches!(role, R::Pod | R::Endpoints | R::EndpointSlice);
        let endpointish = matches!(role, R::Endpoints | R::EndpointSlice);
        Subs {
            role,
            attach_node,
            pods: if role == R::Pod || endpointish { self.each_namespace(client, R::Pod) } else { Vec::new() },
            services: if role == R::Service || endpointish { self.each_namespace(client, R::Service) } else { Vec::new() },
            nodes: (role == R::Node || attach_node).then(|| self.registry.subscribe(client, &self.cluster, &self.spec(R::Node, &None))),
            endpoints: if role == R::Endpoints { self.each_namespace(client, R::Endpoints) } else { Vec::new() },
            slices: if role == R::EndpointSlice { self.each_namespace(client, R::EndpointSlice) } else { Vec::new() },
            ingresses: if role == R::Ingress { self.each_namespace(client, R::Ingress) } else { Vec::new() },
            pod_memo: Default::default(),
        }
    }
}

/// A pod's group as last built, with the objects it was built from: the
/// stores hand out the same `Arc` until an object changes, so an unchanged
/// pod (and node) is recognised by pointer and not converted again.
struct PodMemo {
    pod: Arc<Pod>,
    node: Option<Arc<Node>>,
    group: Arc<TargetGroup>,
}

/// The subscriptions of one running provider.
struct Subs {
    role: KubernetesRole,
    attach_node: bool,
    pods: Vec<Subscription<Pod>>,
    services: Vec<Subscription<Service>>,
    nodes: Option<Subscription<Node>>,
    endpoints: Vec<Subscription<Endpoints>>,
    slices: Vec<Subscription<EndpointSlice>>,
    ingresses: Vec<Subscription<Ingress>>,
    /// Pod groups by pod pointer, from the previous [`Subs::groups`].
    pod_memo: std::sync::Mutex<HashMap<usize, PodMemo>>,
}

impl Subs {
    async fn ready(&self) {
        futures::future::join_all(self.pods.iter().map(|s| s.ready())).await;
        futures::future::join_all(self.services.iter().map(|s| s.ready())).await;
        futures::future::join_all(self.endpoints.iter().map(|s| s.ready())).await;
        futures::future::join_all(self.slices.iter().map(|s| s.ready())).await;
        futures::future::join_all(self.ingresses.iter().map(|s| s.ready())).await;
        if let Some(nodes) = &self.nodes {
            nodes.ready().await;
        }
    }

    fn changes(&self) -> Vec<watch::Receiver<u64>> {
        let mut out: Vec<_> = self.pods.iter().map(Subscription::changes).collect();
        out.extend(self.services.iter().map(Subscription::changes));
        out.extend(self.endpoints.iter().map(Subscription::changes));
        out.extend(self.slices.iter().map(Subscription::changes));
        out.extend(self.ingresses.iter().map(Subscription::changes));
        out.extend(self.nodes.iter().map(Subscription::changes));
        out
    }

    /// All groups of the role, sorted by source so that an unchanged state
    /// gives an equal list (the stores iterate in hash order).
    fn groups(&self) -> Groups {
        let mut groups: Groups = match self.role {
            KubernetesRole::Pod => self.pod_groups(),
            KubernetesRole::Service => all(&self.services).map(|s| Arc::new(super::service::service_group(&s))).collect(),
            KubernetesRole::Node => {
                self.nodes.iter().flat_map(|n| n.store().state()).map(|n| Arc::new(super::node::node_group(&n))).collect()
            }
            KubernetesRole::Endpoints => {
                all(&self.endpoints).map(|e| Arc::new(super::endpoints::endpoints_group(&e, self, self.attach_node))).collect()
            }
            KubernetesRole::EndpointSlice => {
                all(&self.slices).map(|e| Arc::new(super::endpointslice::endpointslice_group(&e, self, self.attach_node))).collect()
            }
            KubernetesRole::Ingress => all(&self.ingresses).map(|i| Arc::new(super::ingress::ingress_group(&i))).collect(),
        };
        groups.sort_by(|a, b| a.source.cmp(&b.source));
        groups
    }
}

impl Subs {
    /// The pod role's groups, converting only pods (or their nodes) that
    /// changed since the last call.
    fn pod_groups(&self) -> Groups {
        let mut memo = self.pod_memo.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = HashMap::with_capacity(memo.len());
        let mut out = Vec::with_capacity(memo.len());
        for pod in all(&self.pods) {
            let node =
                if self.attach_node { pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).and_then(|n| self.node(n)) } else { None };
            let key = Arc::as_ptr(&pod) as usize;
            let group = match memo.remove(&key) {
                Some(m) if Arc::ptr_eq(&m.pod, &pod) && m.node.as_ref().map(Arc::as_ptr) == node.as_ref().map(Arc::as_ptr) => m.group,
                _ => Arc::new(super::pod::pod_group(&pod, node.as_deref())),
            };
            out.push(group.clone());
            next.insert(key, PodMemo { pod, node, group });
        }
        *memo = next;
        out
    }
}

fn all<K: Watchable>(subs: &[Subscription<K>]) -> impl Iterator<Item = Arc<K>> + '_ {
    subs.iter().flat_map(|s| s.store().state())
}

fn find<K: Watchable>(subs: &[Subscription<K>], namespace: &str, name: &str) -> Option<Arc<K>> {
    let key = ObjectRef::new(name).within(namespace);
    subs.iter().find_map(|s| s.store().get(&key))
}

impl Related for Subs {
    fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        find(&self.pods, namespace, name)
    }

    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
        find(&self.services, namespace, name)
    }

    fn node(&self, name: &str) -> Option<Arc<Node>> {
        self.nodes.as_ref().and_then(|n| n.store().get(&ObjectRef::new(name)))
    }
}
