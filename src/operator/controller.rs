//! `hearth operator run`: applies the CRDs, takes the leader lease, watches
//! Prometheus objects (and what they own), ServiceMonitors, AlertRules and
//! Namespaces, and reconciles only the Prometheus objects a change concerns.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PartialObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::runtime::{reflector, reflector::store};
use kube::{Api, Client, ResourceExt};
use prometheus_client::registry::Registry;
use serde::de::DeserializeOwned;

use super::crd::{AlertRule, Prometheus, ServiceMonitor, definitions};
use super::metrics::Metrics;
use super::propagation::HttpProbe;
use super::reconcile::{Context, error_policy, reconcile};
use super::secret_cache::SecretCache;
use super::select::{namespace_selected, object_selected};
use super::status::{Selectable, binding_of};
use super::workload::{MANAGER, discovery_cluster_role};

/// How `hearth operator run` was started.
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// `/metrics` and `/healthz`.
    pub metrics_address: SocketAddr,
    /// `hearth server` image for Prometheus objects that name none.
    pub image: String,
    /// Take the `hearth-operator` Lease before reconciling, so that only one replica acts.
    pub leader_election: bool,
    /// Namespace of the Lease (the operator's own).
    pub namespace: String,
    /// This replica's name in the Lease and in Events.
    pub identity: String,
}

/// Runs until SIGTERM/SIGINT, or fails when leadership is lost (the pod
/// restarts and competes again: no two replicas ever reconcile at once).
pub async fn run(cfg: OperatorConfig) -> Result<(), String> {
    let client = Client::try_default().await.map_err(|e| format!("connecting to the Kubernetes API: {e}"))?;
    run_with_client(client, cfg).await
}

/// How long a dead leader's Lease blocks the standby: as controller-runtime
/// (15 s), not the library's 30 s, so a failover costs seconds of delay.
const LEASE_SECONDS: u64 = 15;
/// The holder renews this long before the Lease would expire.
const LEASE_GRACE_SECONDS: u64 = 5;

/// `run` on a given client: tests run the whole operator against a fake
/// API server to see every request it makes (the RBAC it needs).
pub async fn run_with_client(client: Client, cfg: OperatorConfig) -> Result<(), String> {
    let metrics = Metrics::default();
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    registry.register_collector(Box::new(crate::web::process_metrics::ProcessCollector));
    serve_metrics(cfg.metrics_address, registry).await?;
    apply_crds(&client).await?;

    let mut leadership = None;
    if cfg.leader_election {
        let manager = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), "hearth-operator")
            .with_namespace(cfg.namespace.clone())
            .with_identity(cfg.identity.clone())
            .with_duration(LEASE_SECONDS)
            .with_grace(LEASE_GRACE_SECONDS)
            .build()
            .await
            .map_err(|e| format!("leader election: {e}"))?;
        let (mut leader, task) = manager.watch().await;
        tracing::info!(identity = %cfg.identity, "waiting for the hearth-operator lease");
        while !*leader.borrow_and_update() {
            leader.changed().await.map_err(|_| "leader election stopped".to_string())?;
        }
        tracing::info!("leading: reconciling");
        leadership = Some((leader, task));
    }

    let (service_monitors, sm_events) = reflect(Api::<ServiceMonitor>::all(client.clone()), |_| ());
    let (alert_rules, ar_events) = reflect(Api::<AlertRule>::all(client.clone()), |_| ());
    let (namespaces, ns_events) = reflect(Api::<Namespace>::all(client.clone()), |_| ());
    // Secrets by metadata only (see `SecretCache`); their annotations can
    // hold a whole copy of the data (kubectl's last-applied configuration).
    let (secret_meta, secret_events) = reflect(Api::<PartialObjectMeta<Secret>>::all(client.clone()), |m| m.metadata.annotations = None);
    let secrets = Arc::new(SecretCache::new(client.clone(), secret_meta));
    let owned = watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGER}"));
    let controller = Controller::new(Api::<Prometheus>::all(client.clone()), watcher::Config::default())
        .owns(Api::<StatefulSet>::all(client.clone()), owned.clone())
        .owns(Api::<Secret>::all(client.clone()), owned.clone())
        .owns(Api::<Service>::all(client.clone()), owned);
    let prometheuses = controller.store();
    let triggers = futures::stream::select_all([
        selected_triggers(sm_events, prometheuses.clone(), namespaces.clone(), metrics.clone(), |p| {
            (p.spec.service_monitor_namespace_selector.as_ref(), p.spec.service_monitor_selector.as_ref())
        }),
        selected_triggers(ar_events, prometheuses.clone(), namespaces.clone(), metrics.clone(), |p| {
            (p.spec.rule_namespace_selector.as_ref(), p.spec.rule_selector.as_ref())
        }),
        namespace_triggers(ns_events, prometheuses.clone(), metrics.clone()),
        secret_triggers(secret_events, secrets.clone(), metrics.clone()),
    ]);
    let ctx = Arc::new(Context {
        client: client.clone(),
        service_monitors,
        alert_rules,
        namespaces,
        recorder: Recorder::new(client.clone(), Reporter { controller: MANAGER.into(), instance: Some(cfg.identity.clone()) }),
        metrics,
        probe: Arc::new(HttpProbe::new()?),
        image: cfg.image.clone(),
        memos: Default::default(),
        secrets,
        applied: Default::default(),
    });
    let reconciling = controller.reconcile_on(triggers).shutdown_on_signal().run(reconcile, error_policy, ctx).for_each(|r| async move {
        if let Err(e) = r {
            tracing::debug!(error = %e, "controller");
        }
    });
    match leadership {
        None => reconciling.await,
        Some((mut leader, _task)) => {
            tokio::select! {
                _ = reconciling => {}
                _ = async { while leader.changed().await.is_ok() && *leader.borrow() {} } => {
                    return Err("lost the hearth-operator lease; exiting so that another replica takes over".into());
                }
            }
        }
    }
    tracing::info!("operator stopped");
    Ok(())
}

/// A store of `K` kept by a watch, and the watch's events (which must be
/// polled for the store to fill). `slim` drops what the store need not
/// keep; managed fields are never kept.
fn reflect<K>(api: Api<K>, slim: fn(&mut K)) -> (Store<K>, impl Stream<Item = watcher::Event<K>> + Send + 'static)
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let (store, writer) = store();
    let stream = watcher(api, watcher::Config::default()).default_backoff().modify(move |o| {
        o.meta_mut().managed_fields = None;
        slim(o);
    });
    let events = reflector(writer, stream).filter_map(|e| async move {
        match e {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::warn!(error = %e, kind = std::any::type_name::<K>(), "watch failed; retrying");
                None
            }
        }
    });
    (store, events)
}

/// A Secret changed: the Prometheus objects that read it last.
fn secret_triggers(
    events: impl Stream<Item = watcher::Event<PartialObjectMeta<Secret>>> + Send + 'static,
    secrets: Arc<SecretCache>,
    metrics: Metrics,
) -> futures::stream::BoxStream<'static, ObjectRef<Prometheus>> {
    events
        .flat_map(move |e| {
            let (meta, deleted) = match e {
                watcher::Event::Apply(m) => (Some(m), false),
                watcher::Event::Delete(m) => (Some(m), true),
                _ => (None, false),
            };
            let refs: Vec<ObjectRef<Prometheus>> = meta
                .map(|m| {
                    let (ns, name) = (m.namespace().unwrap_or_default(), m.name_any());
                    if deleted {
                        secrets.forget(&ns, &name);
                    }
                    secrets
                        .readers_of(&ns, &name)
                        .into_iter()
                        .filter_map(|r| r.split_once('/').map(|(ns, name)| ObjectRef::new(name).within(ns)))
                        .collect()
                })
                .unwrap_or_default();
            futures::stream::iter(queued(&metrics, refs))
        })
        .boxed()
}

type Selectors<'a> = (
    Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
    Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
);

/// The Prometheus objects a changed ServiceMonitor or AlertRule concerns:
/// those whose selectors match it now, and those that had selected it
/// (named in its status), so a deselected object is let go.
fn selected_triggers<K: Selectable + Send + Sync + 'static>(
    events: impl Stream<Item = watcher::Event<K>> + Send + 'static,
    prometheuses: Store<Prometheus>,
    namespaces: Store<Namespace>,
    metrics: Metrics,
    selectors: fn(&Prometheus) -> Selectors<'_>,
) -> futures::stream::BoxStream<'static, ObjectRef<Prometheus>> {
    events
        .flat_map(move |e| {
            let obj = match e {
                watcher::Event::Apply(o) | watcher::Event::Delete(o) | watcher::Event::InitApply(o) => Some(o),
                watcher::Event::Init | watcher::Event::InitDone => None,
            };
            let refs: Vec<ObjectRef<Prometheus>> = obj
                .map(|o| {
                    let ns = o.namespace().unwrap_or_default();
                    let ns_labels = namespaces.get(&ObjectRef::new(&ns)).map(|n| n.labels().clone());
                    prometheuses
                        .state()
                        .iter()
                        .filter(|p| {
                            let key = format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any());
                            let (ns_sel, sel) = selectors(p);
                            let own = p.namespace().unwrap_or_default();
                            // A selector error selects: the reconcile reports it.
                            let chosen = namespace_selected(ns_sel, &own, &ns, ns_labels.as_ref()).unwrap_or(true)
                                && object_selected(sel, o.labels()).unwrap_or(true);
                            chosen || binding_of(&o, &key).is_some()
                        })
                        .map(|p| ObjectRef::from_obj(p.as_ref()))
                        .collect()
                })
                .unwrap_or_default();
            futures::stream::iter(queued(&metrics, refs))
        })
        .boxed()
}

/// A Namespace's labels changed: every Prometheus object with a namespace
/// selector may select differently now.
fn namespace_triggers(
    events: impl Stream<Item = watcher::Event<Namespace>> + Send + 'static,
    prometheuses: Store<Prometheus>,
    metrics: Metrics,
) -> futures::stream::BoxStream<'static, ObjectRef<Prometheus>> {
    events
        .flat_map(move |e| {
            let changed = matches!(e, watcher::Event::Apply(_) | watcher::Event::Delete(_));
            let refs: Vec<ObjectRef<Prometheus>> = if changed {
                prometheuses
                    .state()
                    .iter()
                    .filter(|p| p.spec.service_monitor_namespace_selector.is_some() || p.spec.rule_namespace_selector.is_some())
                    .map(|p| ObjectRef::from_obj(p.as_ref()))
                    .collect()
            } else {
                Vec::new()
            };
            futures::stream::iter(queued(&metrics, refs))
        })
        .boxed()
}

/// Counts `refs` as waiting for a reconcile, and passes them on.
fn queued(metrics: &Metrics, refs: Vec<ObjectRef<Prometheus>>) -> Vec<ObjectRef<Prometheus>> {
    for r in &refs {
        metrics.queued(format!("{}/{}", r.namespace.as_deref().unwrap_or_default(), r.name));
    }
    refs
}

/// Server-side applies the CRDs (Helm never upgrades CRDs, so the operator
/// does) and the ClusterRole the servers' discovery bindings refer to.
pub async fn apply_crds(client: &Client) -> Result<(), String> {
    let params = PatchParams::apply(MANAGER).force();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (_, crd) in definitions() {
        let name = crd.name_any();
        crds.patch(&name, &params, &Patch::Apply(&crd)).await.map_err(|e| format!("applying CRD {name}: {e}"))?;
    }
    let role = discovery_cluster_role();
    let name = role.name_any();
    Api::<ClusterRole>::all(client.clone())
        .patch(&name, &params, &Patch::Apply(&role))
        .await
        .map_err(|e| format!("applying ClusterRole {name}: {e}"))?;
    tracing::info!("CRDs and the discovery ClusterRole applied");
    Ok(())
}

/// Serves `/metrics` and `/healthz` in the background.
async fn serve_metrics(addr: SocketAddr, registry: Registry) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("listening on {addr}: {e}"))?;
    let registry = Arc::new(registry);
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let r = registry.clone();
                async move { crate::web::encode_registry(&r) }
            }),
        )
        .route("/healthz", axum::routing::get(|| async { "ok" }));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    Ok(())
}
