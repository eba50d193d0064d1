//! A small in-memory Kubernetes API behind tower-test's mock service: GET,
//! LIST (with equality label selectors, across namespaces), server-side
//! apply, JSON merge patch (with the resourceVersion precondition), POST
//! and DELETE. Enough to run the operator's reconciler for real, count
//! what it writes and record every request (for the RBAC check).
//!
//! StatefulSets behave as the API server's do where the operator depends
//! on it: `metadata.generation` moves only when the spec changes, and an
//! update of a field other than replicas, ordinals, template,
//! updateStrategy, persistentVolumeClaimRetentionPolicy and minReadySeconds
//! is refused with the API server's 422. Tests can also make writes to a
//! path fail ([`FakeKube::refuse`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

/// The objects, keyed by their API path, and the writes seen.
#[derive(Clone, Default)]
pub struct FakeKube {
    objects: Arc<Mutex<BTreeMap<String, Value>>>,
    writes: Arc<Mutex<Vec<String>>>,
    requests: Arc<Mutex<Vec<SeenRequest>>>,
    version: Arc<Mutex<u64>>,
    /// Path → (HTTP code, message) returned for every write to it.
    refusals: Arc<Mutex<BTreeMap<String, (u16, String)>>>,
}

/// A request as the fake received it.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The body of a DELETE (its DeleteOptions), else null.
    pub body: Value,
}

/// Plural resource names the fake knows, to tell a list from a get.
const PLURALS: &[&str] = &[
    "statefulsets",
    "secrets",
    "services",
    "serviceaccounts",
    "roles",
    "rolebindings",
    "clusterrolebindings",
    "pods",
    "prometheuses",
    "servicemonitors",
    "alertrules",
    "events",
    "namespaces",
];

impl FakeKube {
    /// A client whose requests this fake answers (on a spawned task).
    pub fn client(&self) -> kube::Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let fake = self.clone();
        tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                let resp = fake.handle(req).await;
                send.send_response(resp);
            }
        });
        kube::Client::new(service, "default")
    }

    /// Stores `obj` at `path` (as if created or changed by someone else).
    pub fn put(&self, path: &str, mut obj: Value) {
        obj["metadata"]["resourceVersion"] = json!(self.next_version());
        let mut objects = self.lock();
        set_generation(path, objects.get(path), &mut obj);
        objects.insert(path.to_string(), obj);
    }

    /// Makes every write (apply, patch) to `path` fail with `code` and
    /// `message`, as the API server refusing it would; `None` ends that.
    pub fn refuse(&self, path: &str, refusal: Option<(u16, &str)>) {
        let mut r = self.refusals.lock().expect("lock");
        match refusal {
            Some((code, message)) => r.insert(path.to_string(), (code, message.to_string())),
            None => r.remove(path),
        };
    }

    /// Removes the object at `path` (as if deleted by someone else).
    pub fn delete(&self, path: &str) {
        self.lock().remove(path);
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.lock().get(path).cloned()
    }

    /// All objects under `prefix`.
    pub fn under(&self, prefix: &str) -> Vec<(String, Value)> {
        self.lock().iter().filter(|(k, _)| k.starts_with(prefix)).map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Every request so far, reads included.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.requests.lock().expect("lock").clone()
    }

    /// The writes (`METHOD path`) since the last call.
    pub fn take_writes(&self) -> Vec<String> {
        std::mem::take(&mut *self.writes.lock().expect("lock"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Value>> {
        self.objects.lock().expect("lock")
    }

    fn next_version(&self) -> String {
        let mut v = self.version.lock().expect("lock");
        *v += 1;
        v.to_string()
    }

    async fn handle(&self, req: Request<Body>) -> Response<Body> {
        let method = req.method().as_str().to_string();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let body = req.into_body().collect_bytes().await.unwrap_or_default();
        let body: Value = if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).unwrap_or(Value::Null) };
        let seen_body = if method == "DELETE" { body.clone() } else { Value::Null };
        self.requests.lock().expect("lock").push(SeenRequest {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            body: seen_body,
        });
        if method != "GET" {
            self.writes.lock().expect("lock").push(format!("{method} {path}"));
        }
        let last = path.rsplit('/').next().unwrap_or("");
        match method.as_str() {
            "GET" if PLURALS.contains(&last) => respond(200, self.list(&path, &query)),
            "GET" => match self.get(&path) {
                Some(o) => respond(200, o),
                None => not_found(&path),
            },
            "PATCH" => self.patch(&path, &content_type, body),
            "POST" => {
                let mut obj = body;
                let name = format!("ev-{}", self.next_version());
                obj["metadata"]["name"] = json!(name);
                self.put(&format!("{path}/{name}"), obj.clone());
                respond(201, obj)
            }
            "DELETE" => match self.lock().remove(&path) {
                Some(o) => respond(200, o),
                None => not_found(&path),
            },
            _ => respond(405, json!({"kind": "Status", "code": 405})),
        }
    }

    fn list(&self, path: &str, query: &str) -> Value {
        let selector: Vec<(String, String)> = query
            .split('&')
            .filter_map(|kv| kv.strip_prefix("labelSelector="))
            .flat_map(|s| {
                decode(s).split(',').filter_map(|r| r.split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))).collect::<Vec<_>>()
            })
            .collect();
        let items: Vec<Value> = self
            .lock()
            .iter()
            .filter(|(p, _)| {
                let parent = p.rsplit_once('/').map_or("", |(a, _)| a);
                parent == path || (!path.contains("/namespaces/") && strip_namespace(parent) == path)
            })
            .filter(|(_, o)| selector.iter().all(|(k, v)| o["metadata"]["labels"][k].as_str() == Some(v)))
            .map(|(_, o)| o.clone())
            .collect();
        json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items})
    }

    fn patch(&self, path: &str, content_type: &str, body: Value) -> Response<Body> {
        let (target, status_only) = match path.strip_suffix("/status") {
            Some(p) => (p.to_string(), true),
            None => (path.to_string(), false),
        };
        if let Some((code, message)) = self.refusals.lock().expect("lock").get(path).cloned() {
            let reason = if code == 422 { "Invalid" } else { "BadRequest" };
            return respond(
                code,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code, "message": message}),
            );
        }
        let objects = self.lock();
        let existing = objects.get(&target).cloned();
        let updated = if content_type.starts_with("application/apply-patch") {
            let mut obj = body;
            if let Some(old) = &existing {
                if let Some(refused) = immutable_statefulset_change(&target, old, &obj) {
                    return refused;
                }
                obj["status"] = old["status"].clone();
                obj["metadata"]["uid"] = old["metadata"]["uid"].clone();
            }
            obj
        } else {
            let Some(mut old) = existing.clone() else {
                return not_found(path);
            };
            if let Some(want) = body["metadata"]["resourceVersion"].as_str()
                && old["metadata"]["resourceVersion"].as_str() != Some(want)
            {
                return respond(
                    409,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409, "message": "conflict"}),
                );
            }
            let mut patch = body;
            if status_only && let Some(m) = patch.as_object_mut() {
                m.retain(|k, _| k == "status");
            }
            merge(&mut old, &patch);
            old
        };
        let mut updated = updated;
        set_generation(&target, existing.as_ref(), &mut updated);
        drop(objects);
        updated["metadata"]["resourceVersion"] = json!(self.next_version());
        self.lock().insert(target, updated.clone());
        respond(200, updated)
    }
}

fn is_statefulset(path: &str) -> bool {
    path.contains("/statefulsets/")
}

/// A StatefulSet's generation: 1 when created, one more at each change of
/// its spec. Other objects keep whatever generation they were given.
fn set_generation(path: &str, old: Option<&Value>, new: &mut Value) {
    if !is_statefulset(path) {
        return;
    }
    let generation = match old {
        None => 1,
        Some(o) => o["metadata"]["generation"].as_i64().unwrap_or(1) + i64::from(o["spec"] != new["spec"]),
    };
    new["metadata"]["generation"] = json!(generation);
}

/// The API server's answer to a StatefulSet update that changes fields it
/// does not allow to change, if `new` does.
fn immutable_statefulset_change(path: &str, old: &Value, new: &Value) -> Option<Response<Body>> {
    if !is_statefulset(path) {
        return None;
    }
    const MUTABLE: &[&str] =
        &["replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy", "minReadySeconds"];
    let fixed = |v: &Value| -> Value {
        let mut spec = v["spec"].clone();
        if let Some(m) = spec.as_object_mut() {
            m.retain(|k, _| !MUTABLE.contains(&k.as_str()));
        }
        spec
    };
    if fixed(old) == fixed(new) {
        return None;
    }
    let name = old["metadata"]["name"].as_str().unwrap_or("");
    let message = format!(
        "StatefulSet.apps {name:?} is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    );
    Some(respond(
        422,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Invalid", "code": 422, "message": message}),
    ))
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        v => *target = v.clone(),
    }
}

fn strip_namespace(parent: &str) -> String {
    let parts: Vec<&str> = parent.split('/').collect();
    match parts.iter().position(|p| *p == "namespaces") {
        Some(i) if i + 2 < parts.len() => [&parts[..i], &parts[i + 2..]].concat().join("/"),
        _ => parent.to_string(),
    }
}

fn decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or(""), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn respond(code: u16, body: Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string().into_bytes()))
        .expect("response")
}

fn not_found(path: &str) -> Response<Body> {
    respond(
        404,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": format!("{path} not found")}),
    )
}
