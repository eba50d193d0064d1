//! Writing generated objects: server-side apply with one field manager,
//! skipped when the live object already carries what would be applied, so
//! a reconcile that changes nothing writes nothing; and removal of objects
//! generated earlier that are no longer wanted.

use std::collections::BTreeSet;
use std::fmt::Debug;

use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use xxhash_rust::xxh3::xxh3_64;

use super::workload::MANAGER;

/// Annotation holding the hash of what the operator last applied.
pub const APPLIED_HASH: &str = "monitoring.hearth.dev/applied-hash";

/// Applies `desired` unless the live object was applied from the same
/// content. Returns the object as it now is and whether it was written.
pub async fn ensure<K>(api: &Api<K>, mut desired: K) -> Result<(K, bool), kube::Error>
where
    K: Resource + Serialize + DeserializeOwned + Clone + Debug,
{
    let name = desired.name_any();
    let body = serde_json::to_vec(&desired).map_err(kube::Error::SerdeError)?;
    let hash = format!("{:016x}", xxh3_64(&body));
    if let Some(live) = api.get_opt(&name).await?
        && live.annotations().get(APPLIED_HASH) == Some(&hash)
    {
        return Ok((live, false));
    }
    desired.annotations_mut().insert(APPLIED_HASH.into(), hash);
    let applied = api.patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&desired)).await?;
    Ok((applied, true))
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
