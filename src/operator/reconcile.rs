//! One reconcile of a Prometheus object: generate its configuration from
//! the ServiceMonitors and AlertRules it selects, apply the config Secret
//! and workloads, mark each selected object Accepted or Rejected, and
//! report Reconciled only once every pod runs the new configuration.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, Role, RoleBinding};
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::Store;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use super::apply::{self, Applied, ensure, prune};
use super::crd::common::{Binding, BindingResult};
use super::crd::prometheus::PrometheusStatus;
use super::crd::{AlertRule, Prometheus, ServiceMonitor};
use super::generate::{Inputs, Memo, Verdict, generate, selected_service_monitors};
use super::metrics::{ErrorLabels, Metrics};
use super::propagation::ConfigProbe;
use super::secret_cache::SecretCache;
use super::secrets::{SecretValues, prometheus_uses, secret_names, service_monitor_uses};
use super::status::{self, Selectable, binding_of, condition};
use super::workload::{self, Discovery, Names, Workload};

/// Finalizer that removes what owner references cannot: discovery
/// bindings in other namespaces and the cluster-wide binding.
pub const FINALIZER: &str = "monitoring.hearth.dev/cleanup";
/// While pods still run an older configuration, look again this soon.
const PROPAGATION_RECHECK: Duration = Duration::from_secs(1);
/// Periodic re-check of a settled object (repairs drift nobody reported).
const RESYNC: Duration = Duration::from_secs(300);
/// How long a reconcile waits for a StatefulSet deleted (orphaning its
/// pods) to be gone before creating it again.
const RECREATE_WAIT: Duration = Duration::from_secs(10);

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub service_monitors: Store<ServiceMonitor>,
    pub alert_rules: Store<AlertRule>,
    pub namespaces: Store<Namespace>,
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub probe: Arc<dyn ConfigProbe>,
    /// Image of `hearth server` when the Prometheus object names none.
    pub image: String,
    /// Each Prometheus object's generation memo, by `namespace/name`.
    pub memos: Mutex<HashMap<String, Arc<Memo>>>,
    /// Secrets read for credentials and certificates.
    pub secrets: Arc<SecretCache>,
    /// What the operator's own applies returned (see [`Applied`]).
    pub applied: Applied,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A StatefulSet deleted to be created again with new immutable fields
    /// is not gone yet; the next attempt creates it.
    #[error("StatefulSet {0} is still being deleted (orphaning its pods) to be created again")]
    Recreating(String),
}

impl Error {
    /// A short label for the errors metric.
    pub fn reason(&self) -> String {
        match self {
            Error::Kube(kube::Error::Api(e)) => format!("api_{}", e.code),
            Error::Kube(_) => "api_request".into(),
            Error::Recreating(_) => "recreating".into(),
        }
    }
}

/// Entry point for the controller.
pub async fn reconcile(p: Arc<Prometheus>, ctx: Arc<Context>) -> Result<Action, Error> {
    let names = Names::of(&p);
    let key = names.key();
    ctx.metrics.started(&key);
    ctx.metrics.reconciles.inc();
    let start = Instant::now();
    let result = reconcile_inner(&p, &names, &ctx).await;
    ctx.metrics.duration.observe(start.elapsed().as_secs_f64());
    if let Err(e) = &result {
        ctx.metrics.errors.get_or_create(&ErrorLabels { reason: e.reason() }).inc();
    }
    result
}

/// Whether every watch has listed its objects once: generating from a
/// store still filling would drop the jobs of the objects not yet seen.
async fn stores_ready(ctx: &Context) -> bool {
    let all = async {
        ctx.service_monitors.wait_until_ready().await.is_ok()
            && ctx.alert_rules.wait_until_ready().await.is_ok()
            && ctx.namespaces.wait_until_ready().await.is_ok()
            && ctx.secrets.wait_until_ready().await
    };
    tokio::time::timeout(Duration::from_secs(10), all).await.unwrap_or(false)
}

/// Retry soon after an API error; conflicts (another writer) at once.
pub fn error_policy(p: Arc<Prometheus>, e: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(prometheus = %p.name_any(), namespace = p.namespace().unwrap_or_default(), error = %e, "reconcile failed");
    match e {
        Error::Kube(kube::Error::Api(s)) if s.code == 409 => Action::requeue(Duration::from_millis(200)),
        _ => Action::requeue(Duration::from_secs(5)),
    }
}

async fn reconcile_inner(p: &Prometheus, names: &Names, ctx: &Context) -> Result<Action, Error> {
    let api: Api<Prometheus> = Api::namespaced(ctx.client.clone(), &names.namespace);
    if p.meta().deletion_timestamp.is_some() {
        ctx.memos.lock().unwrap_or_else(|e| e.into_inner()).remove(&names.key());
        ctx.secrets.forget_reader(&names.key());
        cleanup(p, names, ctx).await?;
        return Ok(Action::await_change());
    }
    if !p.finalizers().iter().any(|f| f == FINALIZER) {
        let mut finalizers = p.finalizers().to_vec();
        finalizers.push(FINALIZER.into());
        let body = json!({ "metadata": { "finalizers": finalizers, "resourceVersion": p.resource_version() } });
        api.patch(&names.name, &PatchParams::default(), &Patch::Merge(body)).await?;
        // The patch triggers the next reconcile.
        return Ok(Action::await_change());
    }
    let previous = p.status.clone().unwrap_or_default();
    let generation = p.meta().generation;
    if p.spec.paused {
        let mut st = previous.clone();
        st.observed_generation = generation;
        set_condition(
            &mut st,
            condition("Reconciled", false, "Paused", "spec.paused is true: nothing is changed".into(), generation, &previous.conditions),
        );
        status::write_prometheus(&api, p, st).await?;
        return Ok(Action::await_change());
    }

    if !stores_ready(ctx).await {
        tracing::info!(prometheus = %names.key(), "waiting for the watches to list every object before generating");
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let service_monitors = ctx.service_monitors.state();
    let alert_rules = ctx.alert_rules.state();
    let namespaces: BTreeMap<String, BTreeMap<String, String>> =
        ctx.namespaces.state().iter().map(|n| (n.name_any(), n.labels().clone())).collect();
    let memo = ctx.memos.lock().unwrap_or_else(|e| e.into_inner()).entry(names.key()).or_default().clone();
    let no_secrets = SecretValues::default();
    let mut inputs = Inputs {
        prometheus: p,
        service_monitors: service_monitors.iter().map(|s| s.as_ref()).collect(),
        alert_rules: alert_rules.iter().map(|a| a.as_ref()).collect(),
        namespaces: &namespaces,
        secrets: &no_secrets,
        memo: Some(&memo),
    };
    let mut uses = prometheus_uses(p);
    // A selector error is reported by `generate`.
    for sm in selected_service_monitors(&inputs).unwrap_or_default() {
        uses.extend(service_monitor_uses(sm));
    }
    let secrets = ctx.secrets.read(&names.key(), &secret_names(&uses)).await?;
    inputs.secrets = &secrets;
    let built = generate(&inputs).and_then(|g| workload::build(p, &g, &ctx.image).map(|w| (g, w)));
    let (generated, work) = match built {
        Ok(b) => b,
        Err(e) => return invalid_spec(p, &api, ctx, e, previous).await,
    };

    let (written, stateful_sets) = match apply_workload(p, names, ctx, &work).await {
        Ok(w) => w,
        Err(Error::Kube(kube::Error::Api(e))) if refused(&e) => return apply_failed(p, &api, ctx, *e, previous).await,
        Err(e) => return Err(e),
    };
    ctx.metrics.writes.inc_by(written as u64);
    let me = names.key();
    bind_all(ctx, &me, &service_monitors, &generated.verdicts).await?;
    bind_all(ctx, &me, &alert_rules, &generated.verdicts).await?;

    let replicas = p.spec.replicas.unwrap_or(1).max(0);
    let expected = replicas as usize * work.stateful_sets.len();
    let confirmed = confirmed_pods(ctx, names, &work.config_hash).await?;
    let available: i32 = stateful_sets.iter().filter_map(|s| s.status.as_ref()?.available_replicas).sum();
    let count =
        |kind: &str, rejected: bool| generated.verdicts.iter().filter(|v| v.kind == kind && v.rejected.is_some() == rejected).count();
    let propagated = confirmed >= expected;
    let mut st = PrometheusStatus {
        observed_generation: generation,
        conditions: Vec::new(),
        replicas: Some(replicas),
        available_replicas: Some(available),
        shards: Some(work.stateful_sets.len() as i32),
        config_hash: if propagated { Some(work.config_hash.clone()) } else { previous.config_hash.clone() },
        selected_service_monitors: Some(count("ServiceMonitor", false) as i32),
        selected_alert_rules: Some(count("AlertRule", false) as i32),
    };
    let rejected = count("ServiceMonitor", true) + count("AlertRule", true);
    let note = if rejected > 0 { format!("; {rejected} selected objects rejected (see their status)") } else { String::new() };
    let reconciled = if propagated {
        condition(
            "Reconciled",
            true,
            "ConfigApplied",
            format!("all {expected} pods run configuration {}{note}", work.config_hash),
            generation,
            &previous.conditions,
        )
    } else {
        let msg = format!("{confirmed} of {expected} pods run configuration {}{note}", work.config_hash);
        condition("Reconciled", false, "ConfigPropagating", msg, generation, &previous.conditions)
    };
    set_condition(&mut st, reconciled);
    let all_available = available as usize >= expected;
    let msg = format!("{available} of {expected} pods available");
    set_condition(
        &mut st,
        condition(
            "Available",
            all_available,
            if all_available { "AllAvailable" } else { "Degraded" },
            msg,
            generation,
            &previous.conditions,
        ),
    );
    status::write_prometheus(&api, p, st).await?;
    Ok(if propagated { Action::requeue(RESYNC) } else { Action::requeue(PROPAGATION_RECHECK) })
}

fn set_condition(st: &mut PrometheusStatus, c: super::crd::common::Condition) {
    st.conditions.retain(|x| x.type_ != c.type_);
    st.conditions.push(c);
    st.conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
}

/// The spec cannot be turned into a configuration: nothing is changed, so
/// the pods keep their last good configuration; the status says why and a
/// Warning Event is recorded (once per message).
async fn invalid_spec(
    p: &Prometheus,
    api: &Api<Prometheus>,
    ctx: &Context,
    e: String,
    previous: PrometheusStatus,
) -> Result<Action, Error> {
    let generation = p.meta().generation;
    let mut st = previous.clone();
    st.observed_generation = generation;
    set_condition(&mut st, condition("Reconciled", false, "InvalidSpec", e.clone(), generation, &previous.conditions));
    if status::write_prometheus(api, p, st).await? {
        warn(ctx, &p.object_ref(&()), "InvalidSpec", e).await;
    }
    Ok(Action::await_change())
}

/// Whether the API server refused a request for a reason retrying will not
/// fix (invalid object, forbidden, missing namespace...), as opposed to a
/// conflict, throttling or a server error.
fn refused(e: &kube::core::Status) -> bool {
    (400..500).contains(&e.code) && e.code != 409 && e.code != 429
}

/// The API server refused an object the operator applies (a 422 for a bad
/// `affinity`, a 403, a namespace that does not exist...): the status says
/// so with the API's message (`Reconciled=False`, reason `ApplyFailed`)
/// and a Warning Event is recorded once per distinct message. The error is
/// still returned, so it is counted and retried.
async fn apply_failed(
    p: &Prometheus,
    api: &Api<Prometheus>,
    ctx: &Context,
    e: kube::core::Status,
    previous: PrometheusStatus,
) -> Result<Action, Error> {
    let generation = p.meta().generation;
    let mut st = previous.clone();
    st.observed_generation = generation;
    let msg = if e.message.is_empty() { format!("the API server answered {} {}", e.code, e.reason) } else { e.message.clone() };
    let changed =
        previous.conditions.iter().find(|c| c.type_ == "Reconciled").is_none_or(|c| c.reason != "ApplyFailed" || c.message != msg);
    set_condition(&mut st, condition("Reconciled", false, "ApplyFailed", msg.clone(), generation, &previous.conditions));
    status::write_prometheus(api, p, st).await?;
    if changed {
        warn(ctx, &p.object_ref(&()), "ApplyFailed", msg).await;
    }
    Err(Error::Kube(kube::Error::Api(Box::new(e))))
}

/// Applies everything in `w` and removes what an earlier reconcile created
/// that `w` no longer has. Returns the number of objects written and the
/// StatefulSets as they now are.
async fn apply_workload(p: &Prometheus, names: &Names, ctx: &Context, w: &Workload) -> Result<(usize, Vec<StatefulSet>), Error> {
    let c = &ctx.client;
    let ns = names.namespace.as_str();
    let applied = &ctx.applied;
    let mut written = 0;
    let mut count = |changed: bool| written += changed as usize;
    if let Some(sa) = &w.service_account {
        count(ensure(&Api::<ServiceAccount>::namespaced(c.clone(), ns), sa.clone(), applied).await?.1);
    }
    count(ensure(&Api::<Role>::namespaced(c.clone(), ns), w.config_role.clone(), applied).await?.1);
    count(ensure(&Api::<RoleBinding>::namespaced(c.clone(), ns), w.config_role_binding.clone(), applied).await?.1);
    let selector = names.owner_selector();
    let mut keep_bindings: BTreeSet<String> = BTreeSet::from([apply::key(&w.config_role_binding)]);
    let mut keep_cluster = BTreeSet::new();
    match &w.discovery {
        Discovery::Namespaces(bindings) => {
            for b in bindings {
                let target = b.metadata.namespace.as_deref().unwrap_or(ns);
                count(ensure(&Api::<RoleBinding>::namespaced(c.clone(), target), b.clone(), applied).await?.1);
                keep_bindings.insert(apply::key(b));
            }
        }
        Discovery::Cluster(b) => {
            count(ensure(&Api::<ClusterRoleBinding>::all(c.clone()), (**b).clone(), applied).await?.1);
            keep_cluster.insert(apply::key(b.as_ref()));
        }
    }
    // The Secret before the pods that read it.
    count(ensure(&Api::<Secret>::namespaced(c.clone(), ns), w.secret.clone(), applied).await?.1);
    count(ensure(&Api::<Service>::namespaced(c.clone(), ns), w.service.clone(), applied).await?.1);
    let sts_api = Api::<StatefulSet>::namespaced(c.clone(), ns);
    let mut stateful_sets = Vec::new();
    for s in &w.stateful_sets {
        let (live, changed) = match ensure(&sts_api, s.clone(), applied).await {
            Err(e) if apply::is_immutable_statefulset_change(&e) => {
                // As prometheus-operator: delete it leaving the pods, and
                // create it again; it adopts the running pods.
                let name = s.name_any();
                tracing::info!(statefulset = %name, namespace = ns, "recreating a StatefulSet to change immutable fields; its pods keep running");
                if !apply::delete_orphaning(&sts_api, &name, applied, RECREATE_WAIT).await? {
                    return Err(Error::Recreating(format!("{ns}/{name}")));
                }
                let note = format!(
                    "StatefulSet {name} was deleted (its pods kept running) and created again to change fields that cannot be updated"
                );
                event(ctx, &p.object_ref(&()), EventType::Normal, "StatefulSetRecreated", note).await;
                ensure(&sts_api, s.clone(), applied).await?
            }
            r => r?,
        };
        count(changed);
        stateful_sets.push(live);
    }
    let keep_sts: BTreeSet<String> = w.stateful_sets.iter().map(apply::key).collect();
    written += prune(&sts_api, |_| sts_api.clone(), &selector, &keep_sts).await?;
    let scoped = |b: &RoleBinding| Api::<RoleBinding>::namespaced(c.clone(), b.metadata.namespace.as_deref().unwrap_or(ns));
    written += prune(&Api::<RoleBinding>::all(c.clone()), scoped, &selector, &keep_bindings).await?;
    let cluster = Api::<ClusterRoleBinding>::all(c.clone());
    written += prune(&cluster, |_| cluster.clone(), &selector, &keep_cluster).await?;
    Ok((written, stateful_sets))
}

/// Sets this Prometheus object's binding on every ServiceMonitor or
/// AlertRule: Accepted or Rejected for the selected ones, none for the
/// rest. A newly rejected object gets a Warning Event.
async fn bind_all<K: Selectable>(ctx: &Context, me: &str, objects: &[Arc<K>], verdicts: &[Verdict]) -> Result<(), Error> {
    let by_object: BTreeMap<&str, &Verdict> = verdicts.iter().filter(|v| v.kind == K::KIND).map(|v| (v.object.as_str(), v)).collect();
    for obj in objects {
        let key = format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any());
        let want = by_object.get(key.as_str()).map(|v| Binding {
            prometheus: me.to_string(),
            result: if v.rejected.is_some() { BindingResult::Rejected } else { BindingResult::Accepted },
            reason: v.rejected.clone().unwrap_or_default(),
        });
        let newly_rejected =
            want.as_ref().filter(|b| b.result == BindingResult::Rejected && binding_of(obj.as_ref(), me) != Some(b)).cloned();
        if status::bind(&ctx.client, obj.as_ref(), me, want).await?
            && let Some(b) = newly_rejected
        {
            warn(ctx, &obj.object_ref(&()), "Rejected", format!("rejected by Prometheus {me}: {}", b.reason)).await;
        }
    }
    Ok(())
}

/// How many of this Prometheus object's pods report `hash`.
async fn confirmed_pods(ctx: &Context, names: &Names, hash: &str) -> Result<usize, Error> {
    let selector: Vec<String> = workload::selector_labels(names).iter().map(|(k, v)| format!("{k}={v}")).collect();
    let pods =
        Api::<Pod>::namespaced(ctx.client.clone(), &names.namespace).list(&ListParams::default().labels(&selector.join(","))).await?;
    let answers = futures::future::join_all(pods.items.iter().map(|pod| ctx.probe.config_hash(pod))).await;
    Ok(answers.iter().filter(|a| a.as_deref() == Ok(hash)).count())
}

/// Deletion: remove the bindings owner references do not cover, this
/// object's bindings from ServiceMonitors and AlertRules, then the finalizer.
async fn cleanup(p: &Prometheus, names: &Names, ctx: &Context) -> Result<(), Error> {
    if !p.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(());
    }
    let c = &ctx.client;
    let selector = names.owner_selector();
    let scoped = |b: &RoleBinding| Api::<RoleBinding>::namespaced(c.clone(), b.metadata.namespace.as_deref().unwrap_or_default());
    prune(&Api::<RoleBinding>::all(c.clone()), scoped, &selector, &BTreeSet::new()).await?;
    let cluster = Api::<ClusterRoleBinding>::all(c.clone());
    prune(&cluster, |_| cluster.clone(), &selector, &BTreeSet::new()).await?;
    let me = names.key();
    bind_all(ctx, &me, &ctx.service_monitors.state(), &[]).await?;
    bind_all(ctx, &me, &ctx.alert_rules.state(), &[]).await?;
    let finalizers: Vec<String> = p.finalizers().iter().filter(|f| *f != FINALIZER).cloned().collect();
    let body = json!({ "metadata": { "finalizers": finalizers, "resourceVersion": p.resource_version() } });
    Api::<Prometheus>::namespaced(c.clone(), &names.namespace).patch(&names.name, &PatchParams::default(), &Patch::Merge(body)).await?;
    Ok(())
}

/// Records a Warning Event; failing to record one is logged, not fatal.
async fn warn(ctx: &Context, about: &k8s_openapi::api::core::v1::ObjectReference, reason: &str, note: String) {
    event(ctx, about, EventType::Warning, reason, note).await;
}

/// Records an Event; failing to record one is logged, not fatal.
async fn event(ctx: &Context, about: &k8s_openapi::api::core::v1::ObjectReference, type_: EventType, reason: &str, note: String) {
    let ev = Event { type_, reason: reason.into(), note: Some(note), action: "Reconcile".into(), secondary: None };
    if let Err(e) = ctx.recorder.publish(&ev, about).await {
        tracing::warn!(error = %e, reason, "cannot record an Event");
    }
}
