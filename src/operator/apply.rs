//! Writing generated objects: server-side apply with one field manager,
//! skipped when the live object is still the one the operator last applied
//! and carries what would be applied, so a reconcile that changes nothing
//! writes nothing while an edit made behind the operator's back is
//! repaired; recreating a StatefulSet whose immutable fields must change;
//! and removal of objects generated earlier that are no longer wanted.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::sync::Mutex;
use std::time::Duration;

use kube::api::{DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use xxhash_rust::xxh3::xxh3_64;

use super::workload::MANAGER;

/// Annotation holding the hash of what the operator last applied.
pub const APPLIED_HASH: &str = "monitoring.hearth.dev/applied-hash";

/// The version of each object as the operator's own last apply returned
/// it: its uid and `metadata.generation` for objects with a spec
/// generation (StatefulSet: status updates do not move it, a `kubectl
/// scale` or edit of the spec does), else its uid and `resourceVersion`
/// (Secret, Service, ServiceAccount, Role, RoleBinding...: any write moves
/// it). [`ensure`] skips an object only while the live one still has that
/// version, so edits made by others are undone at the next reconcile.
///
/// It is kept in memory only: after an operator restart every object is
/// applied once more. Server-side apply of identical content changes
/// nothing on the server (no new resourceVersion, no rollout), so this
/// costs one request per object and no disruption.
#[derive(Default)]
pub struct Applied {
    versions: Mutex<HashMap<String, String>>,
}

impl Applied {
    fn get(&self, id: &str) -> Option<String> {
        self.versions.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    fn set(&self, id: String, version: String) {
        self.versions.lock().unwrap_or_else(|e| e.into_inner()).insert(id, version);
    }

    fn forget(&self, id: &str) {
        self.versions.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}

/// The version [`Applied`] compares: generation where the object has one.
fn version_of<K: Resource>(obj: &K) -> String {
    let m = obj.meta();
    let uid = m.uid.as_deref().unwrap_or("");
    match m.generation {
        Some(g) if g > 0 => format!("{uid}/generation/{g}"),
        _ => format!("{uid}/resourceVersion/{}", m.resource_version.as_deref().unwrap_or("")),
    }
}

/// `Kind namespace/name`, the key of an object in [`Applied`].
fn id<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    format!("{} {}", K::kind(&()), key(obj))
}

/// Applies `desired` unless the live object was applied from the same
/// content by the operator and not changed since (see [`Applied`]).
/// Returns the object as it now is and whether it was written.
pub async fn ensure<K>(api: &Api<K>, mut desired: K, applied: &Applied) -> Result<(K, bool), kube::Error>
where
    K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + Clone + Debug,
{
    let name = desired.name_any();
    let id = id(&desired);
    let body = serde_json::to_vec(&desired).map_err(kube::Error::SerdeError)?;
    let hash = format!("{:016x}", xxh3_64(&body));
    if let Some(live) = api.get_opt(&name).await?
        && live.annotations().get(APPLIED_HASH) == Some(&hash)
        && applied.get(&id).as_deref() == Some(version_of(&live).as_str())
    {
        return Ok((live, false));
    }
    desired.annotations_mut().insert(APPLIED_HASH.into(), hash);
    let result = api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&desired)).await?;
    applied.set(id, version_of(&result));
    Ok((result, true))
}

/// The message of the API server's 422 for a StatefulSet update that
/// changes a field it does not allow to change (`volumeClaimTemplates`,
/// `selector`, `serviceName`, `podManagementPolicy`).
pub const IMMUTABLE_STATEFULSET: &str = "Forbidden: updates to statefulset spec for fields other than";

/// Whether `e` is the API server refusing a change of a StatefulSet's
/// immutable fields.
pub fn is_immutable_statefulset_change(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 422 && s.message.contains(IMMUTABLE_STATEFULSET))
}

/// Deletes `name` leaving its dependents in place (propagationPolicy
/// Orphan: a StatefulSet's pods keep running, and one created again with
/// the same selector adopts them, as prometheus-operator does), then waits
/// up to `wait` for it to be gone. Returns whether it is gone.
pub async fn delete_orphaning<K>(api: &Api<K>, name: &str, applied: &Applied, wait: Duration) -> Result<bool, kube::Error>
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + Debug,
{
    let Some(live) = api.get_opt(name).await? else { return Ok(true) };
    applied.forget(&id(&live));
    let uid = live.meta().uid.clone();
    let dp = DeleteParams::orphan().preconditions(Preconditions { uid: uid.clone(), resource_version: None });
    match api.delete(name, &dp).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(true),
        Err(e) => return Err(e),
    }
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match api.get_opt(name).await? {
            None => return Ok(true),
            Some(o) if o.meta().uid != uid => return Ok(true),
            Some(_) if tokio::time::Instant::now() >= deadline => return Ok(false),
            Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Deletes the objects matching `selector` in `list` whose `namespace/name`
/// ([`key`]) is not in `keep`, each through the API `scoped` gives for it.
/// Returns how many were deleted.
pub async fn prune<K>(list: &Api<K>, scoped: impl Fn(&K) -> Api<K>, selector: &str, keep: &BTreeSet<String>) -> Result<usize, kube::Error>
where
    K: Resource + DeserializeOwned + Clone + Debug,
{
    let mut deleted = 0;
    for obj in list.list(&ListParams::default().labels(selector)).await? {
        if keep.contains(&key(&obj)) {
            continue;
        }
        match scoped(&obj).delete(&obj.name_any(), &DeleteParams::background()).await {
            Ok(_) => deleted += 1,
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

/// `namespace/name` of an object, as [`prune`] keys it.
pub fn key<K: Resource>(obj: &K) -> String {
    format!("{}/{}", obj.meta().namespace.as_deref().unwrap_or(""), obj.meta().name.as_deref().unwrap_or(""))
}
