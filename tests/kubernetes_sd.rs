//! Kubernetes SD's watch layer against a mocked API server (tower-test): lists,
//! watch events, sharing of one watch between subscribers, and recovery from
//! 410 Gone. Every wait is bounded, so a regression fails instead of hanging.

use std::time::Duration;

use axum::http::{Request, Response};
use hearth::discovery::kubernetes::watch::{Subscription, WatchRegistry, WatchSpec, Watchable};
use k8s_openapi::api::core::v1::Pod;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{Handle, SendResponse};

const WAIT: Duration = Duration::from_secs(10);

type ApiHandle = Handle<Request<Body>, Response<Body>>;

fn mock_client() -> (kube::Client, ApiHandle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(service, "default"), handle)
}

fn pod(name: &str, rv: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", "resourceVersion": rv}})
}

/// The next request the client makes, within [`WAIT`].
async fn next_request(handle: &mut ApiHandle) -> (Request<Body>, SendResponse<Response<Body>>) {
    tokio::time::timeout(WAIT, handle.next_request()).await.expect("a request in time").expect("the client is alive")
}

fn is_watch(req: &Request<Body>) -> bool {
    req.uri().query().is_some_and(|q| q.split('&').any(|p| p == "watch=true"))
}

fn respond(send: SendResponse<Response<Body>>, body: Vec<u8>) {
    send.send_response(Response::builder().status(200).body(Body::from(body)).expect("response"));
}

/// Answers a list request with `items` at resourceVersion `rv`.
async fn serve_list(handle: &mut ApiHandle, rv: &str, items: Vec<Value>) -> Request<Body> {
    let (req, send) = next_request(handle).await;
    assert!(!is_watch(&req), "expected a list, got {}", req.uri());
    let list = json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": rv}, "items": items});
    respond(send, serde_json::to_vec(&list).expect("json"));
    req
}

/// Answers a watch request with `events` (type, object); the body then ends,
/// as when the API server closes a watch, and the watcher watches again.
async fn serve_watch(handle: &mut ApiHandle, events: Vec<(&str, Value)>) -> Request<Body> {
    let (req, send) = next_request(handle).await;
    assert!(is_watch(&req), "expected a watch, got {}", req.uri());
    let mut body = Vec::new();
    for (kind, object) in events {
        body.extend(serde_json::to_vec(&json!({"type": kind, "object": object})).expect("json"));
        body.push(b'\n');
    }
    respond(send, body);
    req
}

/// Waits (bounded) until the store satisfies `check`, waking on its changes.
async fn wait_until<K: Watchable>(sub: &Subscription<K>, what: &str, check: impl Fn(&Subscription<K>) -> bool) {
    let mut changes = sub.changes();
    let done = tokio::time::timeout(WAIT, async {
        while !check(sub) {
            if changes.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(done.is_ok() && check(sub), "timed out waiting until {what}");
}

fn names(sub: &Subscription<Pod>) -> Vec<String> {
    let mut names: Vec<String> = sub.store().state().iter().filter_map(|p| p.metadata.name.clone()).collect();
    names.sort();
    names
}

fn all_pods() -> WatchSpec {
    WatchSpec::default()
}

#[tokio::test]
async fn the_store_follows_list_and_watch_events() {
    let (client, mut api) = mock_client();
    let registry = WatchRegistry::default();
    let sub = registry.subscribe::<Pod>(&client, "mock", &WatchSpec { label_selector: "app=web".into(), ..all_pods() });

    let list = serve_list(&mut api, "1", vec![pod("a", "1")]).await;
    assert_eq!(list.uri().path(), "/api/v1/pods");
    assert!(list.uri().query().unwrap_or_default().contains("labelSelector=app%3Dweb"), "selector pushed down: {}", list.uri());
    assert!(tokio::time::timeout(WAIT, sub.ready()).await.expect("ready in time"));
    assert_eq!(names(&sub), ["a"]);

    let watch = serve_watch(&mut api, vec![("ADDED", pod("b", "2"))]).await;
    assert!(watch.uri().query().unwrap_or_default().contains("resourceVersion=1"), "{}", watch.uri());
    wait_until(&sub, "b is added", |s| names(s) == ["a", "b"]).await;

    serve_watch(&mut api, vec![("DELETED", pod("a", "3"))]).await;
    wait_until(&sub, "a is deleted", |s| names(s) == ["b"]).await;

    let metrics = registry.metrics();
    assert_eq!(metrics.events("pod", "add"), 1);
    assert_eq!(metrics.events("pod", "delete"), 1);
    assert_eq!(metrics.relists("pod"), 1);
}

#[tokio::test]
async fn subscriptions_with_the_same_key_share_one_watch() {
    let (client, mut api) = mock_client();
    let registry = WatchRegistry::default();
    let spec = WatchSpec { namespace: Some("default".into()), ..all_pods() };
    let first = registry.subscribe::<Pod>(&client, "mock", &spec);
    let second = registry.subscribe::<Pod>(&client, "mock", &spec);
    assert_eq!(registry.active_watches(), 1);

    let list = serve_list(&mut api, "1", vec![pod("a", "1")]).await;
    assert_eq!(list.uri().path(), "/api/v1/namespaces/default/pods");
    assert!(tokio::time::timeout(WAIT, first.ready()).await.expect("ready in time"));
    assert!(tokio::time::timeout(WAIT, second.ready()).await.expect("ready in time"));
    assert_eq!(names(&second), ["a"]);

    // The next request is the shared watch, not a second list.
    let (req, _pending) = next_request(&mut api).await;
    assert!(is_watch(&req), "a second list was made: {}", req.uri());

    // A late subscriber sees the objects at once, without a request.
    let third = registry.subscribe::<Pod>(&client, "mock", &spec);
    assert!(tokio::time::timeout(WAIT, third.ready()).await.expect("ready in time"));
    assert_eq!(names(&third), ["a"]);

    // Another namespace is another watch; the last subscriber gone stops one.
    let other = registry.subscribe::<Pod>(&client, "mock", &WatchSpec { namespace: Some("other".into()), ..all_pods() });
    assert_eq!(registry.active_watches(), 2);
    drop(other);
    assert_eq!(registry.active_watches(), 1);
    drop((first, second, third));
    assert_eq!(registry.active_watches(), 0);
}

#[tokio::test]
async fn gone_leads_to_a_relist_and_old_objects_stay_meanwhile() {
    let (client, mut api) = mock_client();
    let registry = WatchRegistry::default();
    let sub = registry.subscribe::<Pod>(&client, "mock", &all_pods());

    serve_list(&mut api, "1", vec![pod("a", "1")]).await;
    assert!(tokio::time::timeout(WAIT, sub.ready()).await.expect("ready in time"));

    let gone = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "too old resource version: 1 (5)", "reason": "Expired", "code": 410});
    serve_watch(&mut api, vec![("ERROR", gone)]).await;

    // The watcher lists again (after its backoff); until the list is in, the
    // last known objects stay.
    let (req, send) = next_request(&mut api).await;
    assert!(!is_watch(&req), "expected a relist, got {}", req.uri());
    assert_eq!(names(&sub), ["a"]);
    let list = json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "6"}, "items": [pod("b", "6")]});
    respond(send, serde_json::to_vec(&list).expect("json"));
    wait_until(&sub, "the relist replaced the store", |s| names(s) == ["b"]).await;

    assert_eq!(registry.metrics().relists("pod"), 2);
    assert!(registry.metrics().failures() >= 1);
}

#[tokio::test]
async fn the_pod_role_sends_groups_after_the_list_and_after_changes() {
    use hearth::config::{KubernetesRole, KubernetesSdConfig};
    use hearth::discovery::kubernetes::provider::KubernetesSd;

    let (client, mut api) = mock_client();
    let registry = WatchRegistry::default();
    let cfg = KubernetesSdConfig {
        api_server: None,
        role: KubernetesRole::Pod,
        kubeconfig_file: None,
        http_client: Default::default(),
        namespaces: Default::default(),
        selectors: Vec::new(),
        attach_metadata: Default::default(),
    };
    let sd = KubernetesSd::with_client(&cfg, &registry, client, "mock").expect("valid config");
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let task = tokio::spawn(sd.run(tx));

    let mut a = pod("a", "1");
    a["status"] = json!({"podIP": "10.0.0.1"});
    a["spec"] = json!({"containers": [{"name": "c", "ports": [{"containerPort": 8080}]}]});
    serve_list(&mut api, "1", vec![a]).await;
    let groups = tokio::time::timeout(WAIT, rx.recv()).await.expect("first groups in time").expect("provider alive");
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].targets[0].get("__address__").map(String::as_str), Some("10.0.0.1:8080"));

    // A modified pod is converted again (not served from the provider's memo).
    let mut moved = pod("a", "2");
    moved["status"] = json!({"podIP": "10.0.0.2"});
    moved["spec"] = json!({"containers": [{"name": "c", "ports": [{"containerPort": 8080}]}]});
    serve_watch(&mut api, vec![("MODIFIED", moved)]).await;
    let groups = tokio::time::timeout(WAIT, rx.recv()).await.expect("update in time").expect("provider alive");
    assert_eq!(groups[0].targets[0].get("__address__").map(String::as_str), Some("10.0.0.2:8080"));

    serve_watch(&mut api, vec![("DELETED", pod("a", "3"))]).await;
    let groups = tokio::time::timeout(WAIT, rx.recv()).await.expect("update in time").expect("provider alive");
    assert!(groups.is_empty(), "{groups:?}");
    task.abort();
}
