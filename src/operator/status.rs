//! Status of the custom resources: conditions on Prometheus objects, and on
//! each ServiceMonitor and AlertRule the list of Prometheus objects that
//! selected it with Accepted or Rejected. Written only when it changes, so
//! the status write does not trigger an endless round of reconciles.

use kube::api::{Patch, PatchParams};
use kube::core::NamespaceResourceScope;
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::crd::common::{Binding, BindingResult, Condition, SelectedStatus};
use super::crd::prometheus::PrometheusStatus;
use super::crd::{AlertRule, Prometheus, ServiceMonitor};

/// A condition, keeping the previous transition time when the status did not change.
pub fn condition(type_: &str, ok: bool, reason: &str, message: String, generation: Option<i64>, previous: &[Condition]) -> Condition {
    let status = if ok { "True" } else { "False" }.to_string();
    let last_transition_time = match previous.iter().find(|c| c.type_ == type_) {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Some(crate::server::rfc3339_now()),
    };
    Condition { type_: type_.into(), status, reason: reason.into(), message, last_transition_time, observed_generation: generation }
}

/// Writes `status` to the Prometheus object unless it already has it.
pub async fn write_prometheus(api: &Api<Prometheus>, p: &Prometheus, status: PrometheusStatus) -> Result<bool, kube::Error> {
    if p.status.as_ref() == Some(&status) {
        return Ok(false);
    }
    let body = json!({ "status": replacing(p.status.as_ref(), &status)? });
    api.patch_status(&p.name_any(), &PatchParams::default(), &Patch::Merge(body)).await?;
    Ok(true)
}

/// `new` as a merge patch over `old`: fields `old` has and `new` lacks
/// become `null`, so the patch removes them instead of keeping them.
fn replacing<T: Serialize>(old: Option<&T>, new: &T) -> Result<Value, kube::Error> {
    let mut patch = serde_json::to_value(new).map_err(kube::Error::SerdeError)?;
    let old = old.map(serde_json::to_value).transpose().map_err(kube::Error::SerdeError)?;
    if let (Some(Value::Object(old)), Value::Object(patch)) = (old, &mut patch) {
        for k in old.keys() {
            patch.entry(k.clone()).or_insert(Value::Null);
        }
    }
    Ok(patch)
}

/// The objects whose status holds bindings.
pub trait Selectable:
    Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + DeserializeOwned + Serialize + std::fmt::Debug
{
    const KIND: &'static str;
    fn selected_status(&self) -> Option<&SelectedStatus>;
}

impl Selectable for ServiceMonitor {
    const KIND: &'static str = "ServiceMonitor";
    fn selected_status(&self) -> Option<&SelectedStatus> {
        self.status.as_ref()
    }
}

impl Selectable for AlertRule {
    const KIND: &'static str = "AlertRule";
    fn selected_status(&self) -> Option<&SelectedStatus> {
        self.status.as_ref()
    }
}

/// The binding `prometheus` has on `obj`, if any.
pub fn binding_of<'a, K: Selectable>(obj: &'a K, prometheus: &str) -> Option<&'a Binding> {
    obj.selected_status()?.bindings.iter().find(|b| b.prometheus == prometheus)
}

/// Sets (or with `None` removes) `prometheus`'s binding on `obj`. The
/// status carries the object's resourceVersion, so a concurrent change by
/// another Prometheus' reconcile fails with a conflict and is retried
/// rather than lost. A selecting Prometheus also rewrites an unchanged
/// binding when the object's generation moved on, so that
/// `observedGeneration` says the verdict is about the current spec.
/// Returns whether it wrote.
pub async fn bind<K: Selectable>(client: &kube::Client, obj: &K, prometheus: &str, want: Option<Binding>) -> Result<bool, kube::Error> {
    let observed = obj.selected_status().and_then(|s| s.observed_generation);
    let stale = want.is_some() && observed != obj.meta().generation;
    if binding_of(obj, prometheus) == want.as_ref() && !stale {
        return Ok(false);
    }
    let old = obj.selected_status().cloned().unwrap_or_default();
    let mut bindings: Vec<Binding> = old.bindings.iter().filter(|b| b.prometheus != prometheus).cloned().collect();
    bindings.extend(want);
    bindings.sort_by(|a, b| a.prometheus.cmp(&b.prometheus));
    let rejected: Vec<String> =
        bindings.iter().filter(|b| b.result == BindingResult::Rejected).map(|b| format!("{}: {}", b.prometheus, b.reason)).collect();
    let generation = obj.meta().generation;
    let accepted = if bindings.is_empty() {
        Vec::new()
    } else if rejected.is_empty() {
        vec![condition("Accepted", true, "Accepted", String::new(), generation, &old.conditions)]
    } else {
        vec![condition("Accepted", false, "Rejected", rejected.join("; "), generation, &old.conditions)]
    };
    let status = SelectedStatus { observed_generation: generation, conditions: accepted, bindings };
    let api: Api<K> = Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    let body = json!({ "metadata": { "resourceVersion": obj.resource_version() }, "status": replacing(obj.selected_status(), &status)? });
    api.patch_status(&obj.name_any(), &PatchParams::default(), &Patch::Merge(body)).await?;
    Ok(true)
}
