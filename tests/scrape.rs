//! Scraping end to end inside one process: real HTTP targets (served by
//! axum on 127.0.0.1), the scrape manager, and storage.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hearth::config::Config;
use hearth::discovery::DiscoveryMetrics;
use hearth::model::sample::is_stale_nan;
use hearth::model::{Labels, Matcher};
use hearth::scrape::manager::ScrapeManager;
use hearth::scrape::target::Health;
use hearth::tsdb::metrics::TsdbMetrics;
use hearth::tsdb::{Db, Options};

/// What the test exporter serves on `/metrics`, changeable by the test.
#[derive(Clone, Default)]
struct Exporter {
    body: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
}

async fn serve_metrics(State(e): State<Exporter>) -> Response {
    e.hits.fetch_add(1, Ordering::SeqCst);
    let body = e.body.lock().expect("lock").clone();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn html() -> Response {
    ([(header::CONTENT_TYPE, "text/html")], "<html><body><h1>Welcome</h1></body></html>").into_response()
}

async fn endless() -> Response {
    let chunk = axum::body::Bytes::from("x_total 1\n".repeat(1000));
    Body::from_stream(futures::stream::repeat_with(move || Ok::<_, std::convert::Infallible>(chunk.clone()))).into_response()
}

async fn hang() -> Response {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    "never".into_response()
}

async fn start_exporter(e: Exporter) -> String {
    let app = Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/html", get(html))
        .route("/endless", get(endless))
        .route("/hang", get(hang))
        .with_state(e);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr.to_string()
}

fn open_db(dir: &std::path::Path) -> Arc<Db> {
    Arc::new(Db::open(dir, Options::default(), TsdbMetrics::default()).expect("open db"))
}

fn select(db: &Db, ms: &[Matcher]) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let q = db.querier();
    q.select(ms, i64::MIN, i64::MAX)
        .expect("select")
        .into_iter()
        .map(|s| (s.labels.clone(), s.samples.iter().map(|x| (x.t, x.v)).collect()))
        .collect()
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn config(yaml: &str) -> Config {
    Config::parse(yaml, std::path::Path::new("/")).expect("valid config")
}

async fn garbage() -> Response {
    ([(header::CONTENT_TYPE, "text/plain")], vec![0xffu8, 0xfe, 0x00, 0x41, 0x42]).into_response()
}

fn exporter_with(body: &str) -> Exporter {
    let e = Exporter::default();
    *e.body.lock().expect("lock") = body.to_string();
    e
}

fn target_status(m: &ScrapeManager, pool: &str) -> hearth::scrape::target::TargetStatus {
    let views = m.views();
    let v = views.iter().find(|v| v.name == pool).unwrap_or_else(|| panic!("no pool {pool}"));
    v.active.first().unwrap_or_else(|| panic!("pool {pool} has no target")).status()
}

fn last_value(db: &Db, ms: &[Matcher]) -> Option<f64> {
    select(db, ms).first().and_then(|(_, s)| s.last().map(|x| x.1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_store_samples_report_series_metadata_and_staleness() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_db(dir.path());
    let exp = exporter_with("# HELP a_total Things done.\n# TYPE a_total counter\na_total{x=\"1\"} 1\na_total{x=\"2\"} 2\n");
    let addr = start_exporter(exp.clone()).await;
    let m = ScrapeManager::new(db.clone(), DiscoveryMetrics::default(), Default::default()).with_throttle(Duration::from_millis(50));
    let cfg =
        config(&format!("scrape_configs:\n  - job_name: app\n    scrape_interval: 1s\n    static_configs: [{{targets: ['{addr}']}}]\n"));
    m.apply(&cfg.scrape_configs).await.expect("apply");

    let up = [Matcher::equal("__name__", "up"), Matcher::equal("job", "app")];
    wait_for("two scrapes", || select(&db, &up).first().is_some_and(|(_, s)| s.len() >= 2)).await;
    let (labels, samples) = &select(&db, &up)[0];
    assert_eq!(labels, &Labels::from_pairs([("__name__", "up"), ("job", "app"), ("instance", addr.as_str())]));
    assert!(samples.iter().all(|s| s.1 == 1.0));
    let x1 = [Matcher::equal("__name__", "a_total"), Matcher::equal("x", "1")];
    assert_eq!(last_value(&db, &x1), Some(1.0));
    assert_eq!(last_value(&db, &[Matcher::equal("__name__", "scrape_samples_scraped")]), Some(2.0));
    let added = select(&db, &[Matcher::equal("__name__", "scrape_series_added")]);
    assert_eq!(added[0].1.first().map(|s| s.1), Some(2.0), "first scrape adds both series");
    assert_eq!(added[0].1.last().map(|s| s.1), Some(0.0), "later scrapes add none (cache hits)");
    let md = target_status(&m, "app").metadata;
    let a = md.get("a_total").expect("metadata for a_total");
    assert_eq!((a.kind.as_str(), a.help.as_str()), ("counter", "Things done."));

    // x="2" disappears: it gets a staleness marker, x="1" continues.
    *exp.body.lock().expect("lock") = "a_total{x=\"1\"} 5\n".to_string();
    wait_for("the new value", || last_value(&db, &x1) == Some(5.0)).await;
    let x2 = select(&db, &[Matcher::equal("__name__", "a_total"), Matcher::equal("x", "2")]);
    assert!(is_stale_nan(x2[0].1.last().expect("samples").1), "vanished series is marked stale");

    // The target goes away: all its series, report series included, go stale.
    m.apply(&[]).await.expect("apply empty");
    assert!(is_stale_nan(last_value(&db, &x1).expect("x1")));
    assert!(is_stale_nan(last_value(&db, &up).expect("up")));
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_targets_fail_alone_with_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_db(dir.path());
    let exp = exporter_with("ok 1\n");
    let app = Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/html", get(html))
        .route("/endless", get(endless))
        .route("/hang", get(hang))
        .route("/garbage", get(garbage))
        .with_state(exp.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let job = |name: &str, path: &str, extra: &str| {
        format!(
            "  - job_name: {name}\n    scrape_interval: 1s\n    scrape_timeout: 800ms\n    metrics_path: {path}\n{extra}    static_configs: [{{targets: ['{addr}']}}]\n"
        )
    };
    let yaml = format!(
        "scrape_configs:\n{}{}{}{}{}{}{}",
        job("good", "/metrics", ""),
        job("html", "/html", ""),
        job("endless_limited", "/endless", "    body_size_limit: 100KB\n"),
        job("endless", "/endless", ""),
        job("hang", "/hang", ""),
        job("garbage", "/garbage", ""),
        "  - job_name: refused\n    scrape_interval: 1s\n    static_configs: [{targets: ['127.0.0.1:1']}]\n",
    );
    let m = ScrapeManager::new(db.clone(), DiscoveryMetrics::default(), Default::default()).with_throttle(Duration::from_millis(50));
    m.apply(&config(&yaml).scrape_configs).await.expect("apply");
    let started = Instant::now();
    wait_for("every target scraped twice", || {
        ["html", "endless_limited", "endless", "hang", "garbage", "refused"].iter().all(|p| {
            let up = select(&db, &[Matcher::equal("__name__", "up"), Matcher::equal("job", *p)]);
            up.first().is_some_and(|(_, s)| s.len() >= 2)
        })
    })
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let hits = exp.hits.load(Ordering::SeqCst) as f64;
    // The good target kept its 1s rhythm while the others failed or hung.
    assert!(hits >= elapsed - 2.0, "good target scraped {hits} times in {elapsed:.1}s");
    assert_eq!(target_status(&m, "good").health, Health::Up);
    assert_eq!(target_status(&m, "good").last_error, "");
    for (pool, fragment) in [
        ("html", "parsing the response: line 1"),
        ("endless_limited", "body size limit exceeded"),
        ("endless", "context deadline exceeded"),
        ("hang", "context deadline exceeded"),
        ("garbage", "not valid UTF-8"),
        ("refused", "error sending request"),
    ] {
        let st = target_status(&m, pool);
        assert_eq!(st.health, Health::Down, "{pool}");
        assert!(st.last_error.contains(fragment), "{pool}: {:?} should contain {fragment:?}", st.last_error);
        let up = [Matcher::equal("__name__", "up"), Matcher::equal("job", pool)];
        assert_eq!(last_value(&db, &up), Some(0.0), "{pool}");
        assert!(select(&db, &[Matcher::equal("__name__", "x_total"), Matcher::equal("job", pool)]).is_empty(), "{pool} stored nothing");
    }
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_fail_the_scrape_and_label_clashes_are_exported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_db(dir.path());
    let exp = exporter_with("m{job=\"inner\",instance=\"i\"} 1\nn 2\n");
    let addr = start_exporter(exp).await;
    let yaml = format!(
        "scrape_configs:\n  - job_name: limited\n    scrape_interval: 1s\n    sample_limit: 1\n    static_configs: [{{targets: ['{addr}']}}]\n  - job_name: clash\n    scrape_interval: 1s\n    static_configs: [{{targets: ['{addr}']}}]\n  - job_name: honor\n    honor_labels: true\n    scrape_interval: 1s\n    static_configs: [{{targets: ['{addr}']}}]\n"
    );
    let m = ScrapeManager::new(db.clone(), DiscoveryMetrics::default(), Default::default()).with_throttle(Duration::from_millis(50));
    m.apply(&config(&yaml).scrape_configs).await.expect("apply");
    wait_for("scrapes", || {
        // The honor job's own series carry the scraped job label, so its `up` is looked up by instance.
        ["limited", "clash"].iter().all(|j| !select(&db, &[Matcher::equal("__name__", "up"), Matcher::equal("job", *j)]).is_empty())
            && !select(&db, &[Matcher::equal("__name__", "m"), Matcher::equal("job", "inner")]).is_empty()
    })
    .await;
    let st = target_status(&m, "limited");
    assert_eq!(st.last_error, "sample limit exceeded: 2 samples after metric relabeling, limit 1");
    assert!(select(&db, &[Matcher::equal("__name__", "n"), Matcher::equal("job", "limited")]).is_empty());
    let clash = select(&db, &[Matcher::equal("__name__", "m"), Matcher::equal("job", "clash")]);
    assert_eq!(clash[0].0.get("exported_job"), "inner");
    assert_eq!(clash[0].0.get("exported_instance"), "i");
    assert_eq!(clash[0].0.get("instance"), addr);
    let honored = select(&db, &[Matcher::equal("__name__", "m"), Matcher::equal("job", "inner")]);
    assert_eq!(honored.len(), 1, "honor_labels keeps the scraped job");
    assert_eq!(honored[0].0.get("instance"), "i");
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_restarts_only_changed_pools() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_db(dir.path());
    let addr = start_exporter(exporter_with("v 1\n")).await;
    let yaml = |b_interval: &str| {
        format!(
            "scrape_configs:\n  - job_name: a\n    scrape_interval: 1s\n    static_configs: [{{targets: ['{addr}']}}]\n  - job_name: b\n    scrape_interval: {b_interval}\n    static_configs: [{{targets: ['{addr}']}}]\n"
        )
    };
    let m = ScrapeManager::new(db.clone(), DiscoveryMetrics::default(), Default::default()).with_throttle(Duration::from_millis(50));
    m.apply(&config(&yaml("1s")).scrape_configs).await.expect("apply");
    let target = |pool: &str| m.views().into_iter().find(|v| v.name == pool).and_then(|v| v.active.first().cloned());
    wait_for("targets", || target("a").is_some() && target("b").is_some()).await;
    let (a, b) = (target("a").expect("a"), target("b").expect("b"));
    m.apply(&config(&yaml("2s")).scrape_configs).await.expect("reload");
    wait_for("b restarted", || target("b").is_some_and(|t| !Arc::ptr_eq(&t, &b))).await;
    assert!(Arc::ptr_eq(&target("a").expect("a"), &a), "unchanged pool keeps its target loop");
    assert_eq!(target("b").expect("b").interval, Duration::from_secs(2));
    m.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sd_targets_follow_the_file_and_relabeling_drops_are_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_db(&dir.path().join("data"));
    let a = start_exporter(exporter_with("v 1\n")).await;
    let b = start_exporter(exporter_with("v 2\n")).await;
    let sd = dir.path().join("targets.json");
    let write = |targets: &[&str]| {
        let list: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        let tmp = dir.path().join("targets.json.tmp");
        std::fs::write(&tmp, format!("[{{\"targets\": [{}], \"labels\": {{\"env\": \"test\"}}}}]", list.join(","))).expect("write");
        std::fs::rename(&tmp, &sd).expect("rename");
    };
    write(&[&a, "drop.me:1"]);
    let yaml = format!(
        "scrape_configs:\n  - job_name: sd\n    scrape_interval: 1s\n    file_sd_configs: [{{files: ['{}']}}]\n    relabel_configs:\n      - source_labels: [__address__]\n        regex: 'drop\\.me:.*'\n        action: drop\n",
        sd.display()
    );
    let m = ScrapeManager::new(db.clone(), DiscoveryMetrics::default(), Default::default()).with_throttle(Duration::from_millis(50));
    m.apply(&config(&yaml).scrape_configs).await.expect("apply");
    let v_of = |inst: &str| last_value(&db, &[Matcher::equal("__name__", "v"), Matcher::equal("instance", inst)]);
    wait_for("target a scraped", || v_of(&a) == Some(1.0)).await;
    let view = m.views().into_iter().next().expect("pool");
    assert_eq!(view.active.len(), 1);
    assert_eq!(view.active[0].labels.get("env"), "test");
    assert_eq!(view.active[0].discovered.get("__meta_filepath"), sd.display().to_string());
    assert_eq!(view.dropped.len(), 1, "the relabel-dropped target is listed");
    assert_eq!(view.dropped[0].get("__address__"), "drop.me:1");

    // The file now names b instead of a: a's series go stale, b is scraped.
    write(&[&b]);
    wait_for("target b scraped", || v_of(&b) == Some(2.0)).await;
    wait_for("a marked stale", || v_of(&a).is_some_and(is_stale_nan)).await;
    m.stop().await;
}

/// Hits on one exporter, polled until `n` or `limit`; how long it took.
async fn time_until_hits(e: &Exporter, n: usize, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while e.hits.load(Ordering::SeqCst) < n {
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Some(start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_targets_are_scraped_at_once_and_startup_targets_at_their_slot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_db(&dir.path().join("data"));
    let (boot, found, late) = (exporter_with("v 1\n"), exporter_with("v 2\n"), exporter_with("v 3\n"));
    let boot_addr = start_exporter(boot.clone()).await;
    let found_addr = start_exporter(found.clone()).await;
    let late_addr = start_exporter(late.clone()).await;
    let sd = dir.path().join("targets.json");
    let write_sd = |targets: &str| {
        let tmp = dir.path().join("targets.json.tmp");
        std::fs::write(&tmp, format!("[{{\"targets\": [{targets}]}}]")).expect("write");
        std::fs::rename(&tmp, &sd).expect("rename");
    };
    write_sd("");
    // An hour's interval: without the immediate first scrape, nothing new would be scraped during the test.
    let yaml = |boot_timeout: &str, with_late: bool| {
        let mut y = format!(
            "scrape_configs:\n  - job_name: boot\n    scrape_interval: 1h\n    scrape_timeout: {boot_timeout}\n    static_configs: [{{targets: ['{boot_addr}']}}]\n  - job_name: sd\n    scrape_interval: 1h\n    file_sd_configs: [{{files: ['{}']}}]\n",
            sd.display()
        );
        if with_late {
            y.push_str(&format!("  - job_name: late\n    scrape_interval: 1h\n    static_configs: [{{targets: ['{late_addr}']}}]\n"));
        }
        config(&y)
    };
    let m = ScrapeManager::new(db.clone(), DiscoveryMetrics::default(), Default::default()).with_throttle(Duration::from_millis(50));
    m.apply(&yaml("10s", false).scrape_configs).await.expect("apply");
    let target = |pool: &str| m.views().into_iter().find(|v| v.name == pool).and_then(|v| v.active.first().cloned());
    wait_for("the startup target", || target("boot").is_some()).await;
    // The startup target waits for its slot, unless that slot happens to be near (then nothing can be concluded).
    let slot_is_far = target("boot").expect("boot").offset(std::time::SystemTime::now()) > Duration::from_secs(10);
    if !slot_is_far {
        eprintln!("the startup target's slot is within 10 s: not checking that it waits for it");
    }

    // A target discovered after startup in a startup pool: scraped at once.
    write_sd(&format!("\"{found_addr}\""));
    wait_for("the discovered target", || target("sd").is_some()).await;
    let took = time_until_hits(&found, 1, Duration::from_secs(5)).await;
    assert!(took.is_some_and(|t| t < Duration::from_secs(1)), "a discovered target was first scraped after {took:?}");

    // A new job from a reload: scraped at once; the unchanged pool keeps its loop and timing.
    let boot_loop = target("boot").expect("boot");
    m.apply(&yaml("10s", true).scrape_configs).await.expect("reload adding a job");
    let took = time_until_hits(&late, 1, Duration::from_secs(5)).await;
    assert!(took.is_some_and(|t| t < Duration::from_secs(1)), "a new job's target was first scraped after {took:?}");
    assert!(Arc::ptr_eq(&target("boot").expect("boot"), &boot_loop), "an unchanged pool keeps its loop");

    // A changed pool restarts its loop; the loop continuing the series keeps its slot.
    m.apply(&yaml("5s", true).scrape_configs).await.expect("reload changing a job");
    wait_for("the changed pool's loop to restart", || target("boot").is_some_and(|t| !Arc::ptr_eq(&t, &boot_loop))).await;
    // Its labels are the same, its slot may move (the timeout is part of its identity).
    let slot_is_far = slot_is_far && target("boot").expect("boot").offset(std::time::SystemTime::now()) > Duration::from_secs(10);
    tokio::time::sleep(Duration::from_secs(1)).await;
    if slot_is_far {
        assert_eq!(boot.hits.load(Ordering::SeqCst), 0, "a startup target, or a loop continuing its series, was scraped before its slot");
    }
    // Each new target was scraped once: the immediate scrape is not followed by a second one right after.
    assert_eq!((found.hits.load(Ordering::SeqCst), late.hits.load(Ordering::SeqCst)), (1, 1));
    m.stop().await;
}
