//! Kubernetes discovery through the whole scrape path: a fake API server
//! (list + streaming watch over real HTTP on 127.0.0.1), the scrape manager,
//! a real metrics endpoint, and storage. Checks the promises at that
//! level: a change reaches the scrape manager within a second, a deleted pod
//! stops being scraped and its series go stale, and many scrape configs over
//! the same pods share one watch.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use hearth::config::Config;
use hearth::discovery::DiscoveryMetrics;
use hearth::discovery::kubernetes::watch::WatchRegistry;
use hearth::model::Matcher;
use hearth::model::sample::is_stale_nan;
use hearth::scrape::manager::ScrapeManager;
use hearth::tsdb::metrics::TsdbMetrics;
use hearth::tsdb::{Db, Options};
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// The fake API server's pods and its open watches.
#[derive(Clone)]
struct FakeApi {
    pods: Arc<Mutex<Vec<Value>>>,
    events: broadcast::Sender<String>,
    resource_version: Arc<AtomicUsize>,
    lists: Arc<AtomicUsize>,
    watches: Arc<AtomicUsize>,
}

impl FakeApi {
    fn new() -> FakeApi {
        FakeApi {
            pods: Arc::default(),
            events: broadcast::channel(64).0,
            resource_version: Arc::new(AtomicUsize::new(1)),
            lists: Arc::default(),
            watches: Arc::default(),
        }
    }

    /// Applies an event to the pod list and streams it to open watches.
    fn emit(&self, kind: &str, mut pod: Value) {
        let rv = self.resource_version.fetch_add(1, Ordering::SeqCst) + 1;
        pod["metadata"]["resourceVersion"] = json!(rv.to_string());
        {
            let mut pods = self.pods.lock().expect("lock");
            pods.retain(|p| p["metadata"]["name"] != pod["metadata"]["name"]);
            if kind != "DELETED" {
                pods.push(pod.clone());
            }
        }
        let line = json!({"type": kind, "object": pod}).to_string() + "\n";
        // No receiver only means no watch is open yet; the next list has it.
        let _ = self.events.send(line);
    }
}

async fn pods_endpoint(State(api): State<FakeApi>, RawQuery(query): RawQuery) -> Response {
    let watch = query.as_deref().unwrap_or("").split('&').any(|p| p == "watch=true");
    if watch {
        let rx = api.events.subscribe();
        api.watches.fetch_add(1, Ordering::SeqCst);
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(line) => Some((Ok::<_, std::convert::Infallible>(line), rx)),
                Err(_) => None,
            }
        });
        return Body::from_stream(stream.boxed()).into_response();
    }
    api.lists.fetch_add(1, Ordering::SeqCst);
    let items = api.pods.lock().expect("lock").clone();
    let rv = api.resource_version.load(Ordering::SeqCst).to_string();
    axum::Json(json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": rv}, "items": items})).into_response()
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr.to_string()
}

async fn metrics() -> &'static str {
    "app_requests_total 7\n"
}

fn pod(name: &str, port: u16) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"), "labels": {"app": "cart"}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "app", "ports": [{"name": "http", "containerPort": port}]}]},
        "status": {"phase": "Running", "podIP": "127.0.0.1", "hostIP": "127.0.0.1"}
    })
}

fn scrape_config(api: &str, jobs: usize) -> Config {
    let mut yaml = String::from("scrape_configs:\n");
    for i in 0..jobs {
        yaml.push_str(&format!(
            "- job_name: job{i}\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  kubernetes_sd_configs:\n  \
             - role: pod\n    api_server: http://{api}\n  relabel_configs:\n  \
             - source_labels: [__meta_kubernetes_pod_label_app]\n    regex: cart\n    action: keep\n  \
             - source_labels: [__meta_kubernetes_pod_name]\n    target_label: pod\n"
        ));
    }
    Config::parse(&yaml, std::path::Path::new("/")).expect("valid config")
}

/// Polls `f` until true; returns how long that took. Bounded.
async fn time_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

fn active_pods(m: &ScrapeManager, job: &str) -> Vec<String> {
    let views = m.views();
    let view = views.iter().find(|v| v.name == job).expect("pool exists");
    let mut pods: Vec<String> = view.active.iter().map(|t| t.labels.get("pod").to_string()).collect();
    pods.sort();
    pods
}

fn last_up(db: &Db, pod: &str) -> Option<f64> {
    let ms = [Matcher::equal("__name__", "up"), Matcher::equal("job", "job0"), Matcher::equal("pod", pod)];
    let series = db.querier().select(&ms, i64::MIN, i64::MAX).expect("select");
    series.first().and_then(|s| s.samples.last().map(|x| x.v))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_come_and_go_through_discovery_into_scraping() {
    let api = FakeApi::new();
    let api_addr = serve(Router::new().route("/api/v1/pods", get(pods_endpoint)).with_state(api.clone())).await;
    let exporter_addr = serve(Router::new().route("/metrics", get(metrics))).await;
    let port: u16 = exporter_addr.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");

    let dir = tempfile::tempdir().expect("tempdir");
    let db = Arc::new(Db::open(dir.path(), Options::default(), TsdbMetrics::default()).expect("open db"));
    let registry = WatchRegistry::default();
    // The production discovery throttle: the 1 s promise is made with it.
    let manager = ScrapeManager::new(db.clone(), DiscoveryMetrics::default(), registry.clone());
    let jobs = 100;
    manager.apply(&scrape_config(&api_addr, jobs).scrape_configs).await.expect("apply");

    // A hundred scrape configs over the same pods: one list, one watch.
    time_until("the watch to open", Duration::from_secs(10), || api.watches.load(Ordering::SeqCst) == 1).await;
    assert_eq!(registry.active_watches(), 1);
    assert_eq!(api.lists.load(Ordering::SeqCst), 1);

    // Wait until the pools have taken the (empty) first view, so that the
    // next change is timed from a quiet state, as in steady operation.
    tokio::time::sleep(Duration::from_secs(1)).await;

    api.emit("ADDED", pod("cart-1", port));
    let added = time_until("the new pod to be a target", Duration::from_secs(10), || active_pods(&manager, "job0") == ["cart-1"]).await;
    assert!(added < Duration::from_secs(1), "an added pod reached the scrape manager after {added:?}");
    eprintln!("added pod reached the scrape manager in {added:?}");
    time_until("every pool to have the pod", Duration::from_secs(10), || {
        (0..jobs).all(|i| active_pods(&manager, &format!("job{i}")) == ["cart-1"])
    })
    .await;
    time_until("the pod to be scraped", Duration::from_secs(10), || last_up(&db, "cart-1") == Some(1.0)).await;

    // An unrelated pod is dropped by the keep rule and never scraped.
    let mut other = pod("db-1", port);
    other["metadata"]["labels"] = json!({"app": "db"});
    api.emit("ADDED", other);

    api.emit("DELETED", pod("cart-1", port));
    let removed = time_until("the pod to stop being a target", Duration::from_secs(10), || active_pods(&manager, "job0").is_empty()).await;
    assert!(removed < Duration::from_secs(1), "a deleted pod left the scrape manager after {removed:?}");
    eprintln!("deleted pod left the scrape manager in {removed:?}");
    time_until("the pod's series to go stale", Duration::from_secs(10), || last_up(&db, "cart-1").is_some_and(is_stale_nan)).await;
    assert_eq!(last_up(&db, "db-1"), None, "the dropped pod was scraped");

    // Still one watch, never relisted.
    assert_eq!(registry.active_watches(), 1);
    assert_eq!(api.lists.load(Ordering::SeqCst), 1);
    manager.stop().await;
}
