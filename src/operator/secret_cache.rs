//! The Secrets the operator reads for credentials and certificates.
//!
//! A cluster's Secrets are many and can be large (Helm releases,
//! certificates), so the operator watches their metadata only, reads a
//! Secret with a GET when a Prometheus object first needs it or when its
//! resourceVersion changes, and keeps what it read. It also remembers which
//! Prometheus objects read which Secrets, so a changed Secret requeues
//! exactly those.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::reflector::{ObjectRef, Store};

use super::secrets::{SecretData, SecretName, SecretValues};

/// Secret contents by resourceVersion, and their readers.
pub struct SecretCache {
    client: Client,
    meta: Store<PartialObjectMeta<Secret>>,
    /// What each Secret held at the resourceVersion read.
    data: Mutex<HashMap<SecretName, (String, SecretData)>>,
    /// Prometheus object (`namespace/name`) → the Secrets it read last.
    readers: Mutex<HashMap<String, BTreeSet<SecretName>>>,
}

impl SecretCache {
    /// `meta` is a store kept by a metadata watch of Secrets.
    pub fn new(client: Client, meta: Store<PartialObjectMeta<Secret>>) -> SecretCache {
        SecretCache { client, meta, data: Mutex::default(), readers: Mutex::default() }
    }

    /// Waits until the metadata watch has listed every Secret once (before
    /// that, an existing Secret would look missing).
    pub async fn wait_until_ready(&self) -> bool {
        self.meta.wait_until_ready().await.is_ok()
    }

    /// The contents of `wanted`, for the Prometheus object `reader`.
    pub async fn read(&self, reader: &str, wanted: &BTreeSet<SecretName>) -> Result<SecretValues, kube::Error> {
        self.readers.lock().unwrap_or_else(|e| e.into_inner()).insert(reader.to_string(), wanted.clone());
        let mut values = SecretValues::default();
        for (ns, name) in wanted {
            let live = self.meta.get(&ObjectRef::new(name).within(ns)).and_then(|m| m.metadata.resource_version.clone());
            let Some(live) = live else {
                self.forget(ns, name);
                values.insert(ns, name, None);
                continue;
            };
            let key = (ns.clone(), name.clone());
            let cached =
                self.data.lock().unwrap_or_else(|e| e.into_inner()).get(&key).filter(|(rv, _)| *rv == live).map(|(_, d)| d.clone());
            let data = match cached {
                Some(d) => Some(d),
                None => match Api::<Secret>::namespaced(self.client.clone(), ns).get_opt(name).await? {
                    Some(s) => {
                        let data: SecretData = s.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
                        let rv = s.metadata.resource_version.unwrap_or_default();
                        self.data.lock().unwrap_or_else(|e| e.into_inner()).insert(key, (rv, data.clone()));
                        Some(data)
                    }
                    None => None,
                },
            };
            values.insert(ns, name, data);
        }
        Ok(values)
    }

    /// Drops a Secret's cached contents (it was deleted).
    pub fn forget(&self, namespace: &str, name: &str) {
        self.data.lock().unwrap_or_else(|e| e.into_inner()).remove(&(namespace.to_string(), name.to_string()));
    }

    /// Drops what a deleted Prometheus object read.
    pub fn forget_reader(&self, reader: &str) {
        self.readers.lock().unwrap_or_else(|e| e.into_inner()).remove(reader);
    }

    /// The Prometheus objects (`namespace/name`) that read a Secret.
    pub fn readers_of(&self, namespace: &str, name: &str) -> Vec<String> {
        let key = (namespace.to_string(), name.to_string());
        self.readers.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|(_, s)| s.contains(&key)).map(|(r, _)| r.clone()).collect()
    }
}
