//! Rule evaluation over real storage at chosen timestamps: recording rules
//! and their staleness, the alert state machine (`for`, `keep_firing_for`,
//! resolution and resends), `ALERTS`/`ALERTS_FOR_STATE`, restoring `for`
//! state after a restart, and the manager carrying state over a reload.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth::model::sample::is_stale_nan;
use hearth::model::{Labels, Matcher};
use hearth::notify::{Alert, AlertSink};
use hearth::promql::{Engine, EngineOptions};
use hearth::rules::alerting::AlertState;
use hearth::rules::expand::TemplateEnv;
use hearth::rules::group::{EvalEnv, Group, RuleKind};
use hearth::rules::metrics::RuleMetrics;
use hearth::rules::parse_rule_file;
use hearth::tsdb::metrics::TsdbMetrics;
use hearth::tsdb::{Db, Options};

const MIN: i64 = 60_000;

fn open_db(dir: &std::path::Path) -> Arc<Db> {
    Arc::new(Db::open(dir, Options::default(), TsdbMetrics::default()).expect("open db"))
}

/// Writes `name{labels}` = `value(t)` every 15 s from `from` to `to` (ms, inclusive).
fn load(db: &Db, labels: &[(&str, &str)], from: i64, to: i64, value: impl Fn(i64) -> f64) {
    let labels = Labels::from_pairs(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut app = db.appender();
    let mut t = from;
    while t <= to {
        app.append(None, &labels, t, value(t)).expect("append");
        t += 15_000;
    }
    app.commit().expect("commit");
}

fn env(db: &Arc<Db>) -> EvalEnv {
    EvalEnv {
        engine: Arc::new(Engine::new(EngineOptions::default())),
        db: db.clone(),
        templates: TemplateEnv {
            external_labels: [("cluster".to_string(), "eu1".to_string())].into(),
            external_url: "http://hearth.example:9090/".to_string(),
        },
        resend_delay: Duration::from_secs(60),
        metrics: RuleMetrics::default(),
    }
}

fn group(yaml: &str, restored: bool) -> Group {
    let file = parse_rule_file(yaml).expect("valid rule file");
    Group::new("rules.yml", &file.groups[0], Duration::from_secs(30), Duration::ZERO, restored)
}

/// The newest sample of the one series matching `ms`.
fn last(db: &Db, ms: &[Matcher]) -> Option<(i64, f64)> {
    let series = db.querier().select(ms, i64::MIN, i64::MAX).expect("select");
    assert!(series.len() <= 1, "more than one series for {ms:?}");
    series.first().and_then(|s| s.samples.last().map(|p| (p.t, p.v)))
}

fn alerting(g: &Group) -> &hearth::rules::alerting::AlertingRule {
    match &g.rules[0].rule {
        RuleKind::Alerting(r) => r,
        RuleKind::Recording(_) => panic!("not an alerting rule"),
    }
}

#[test]
fn recording_rules_store_results_and_mark_vanished_series_stale() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_db(dir.path());
    load(&db, &[("__name__", "http_requests_total"), ("job", "api"), ("code", "200")], 0, 20 * MIN, |t| (t / 1000) as f64);
    load(&db, &[("__name__", "http_requests_total"), ("job", "api"), ("code", "500")], 0, 5 * MIN, |t| (t / 10_000) as f64);
    let g = group(
        "groups:\n- name: api\n  labels: {team: core}\n  rules:\n  - record: code:http_requests:rate1m\n    expr: rate(http_requests_total[1m])\n    labels: {source: rule}\n",
        true,
    );
    let env = env(&db);
    g.eval(&env, 4 * MIN);
    let ok = [Matcher::equal("__name__", "code:http_requests:rate1m"), Matcher::equal("code", "200")];
    let err = [Matcher::equal("__name__", "code:http_requests:rate1m"), Matcher::equal("code", "500")];
    let (t, v) = last(&db, &ok).expect("recorded");
    assert_eq!(t, 4 * MIN);
    assert!((v - 1.0).abs() < 1e-9, "rate of a counter growing 1/s: {v}");
    let series = db.querier().select(&ok, 0, i64::MAX).expect("select");
    assert_eq!(series[0].labels.get("team"), "core", "group labels are added");
    assert_eq!(series[0].labels.get("source"), "rule");
    assert!(last(&db, &err).is_some());

    // code="500" stops at 5m; at 12m it is beyond the lookback and vanishes: stale.
    g.eval(&env, 12 * MIN);
    let (t, v) = last(&db, &err).expect("marker");
    assert_eq!(t, 12 * MIN);
    assert!(is_stale_nan(v), "a vanished recorded series gets a staleness marker");
    assert!(!last(&db, &ok).expect("still recorded").1.is_nan());
    assert_eq!(g.rules[0].status().health, "ok");
}

#[test]
fn a_failing_rule_reports_its_error_and_the_next_rule_still_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_db(dir.path());
    load(&db, &[("__name__", "x"), ("a", "1")], 0, MIN, |_| 1.0);
    load(&db, &[("__name__", "x"), ("a", "2")], 0, MIN, |_| 2.0);
    let g = group(
        "groups:\n- name: g\n  rules:\n  - record: collide\n    expr: x\n    labels: {a: same}\n  - record: fine\n    expr: sum(x)\n",
        true,
    );
    g.eval(&env(&db), MIN);
    let st = g.rules[0].status();
    assert_eq!(st.health, "err");
    assert_eq!(st.last_error, "vector contains metrics with the same labelset after applying rule labels");
    assert_eq!(last(&db, &[Matcher::equal("__name__", "fine")]).map(|p| p.1), Some(3.0));
}

const INSTANCE_DOWN: &str = r#"
groups:
- name: availability
  rules:
  - alert: InstanceDown
    expr: up == 0
    for: 2m
    keep_firing_for: 1m
    labels:
      severity: page
    annotations:
      summary: "Instance {{ $labels.instance }} down"
"#;

#[test]
fn alerts_go_pending_firing_keep_firing_and_resolve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_db(dir.path());
    // Down from 0 to 10m, up again afterwards.
    load(&db, &[("__name__", "up"), ("job", "node"), ("instance", "n1:9100")], 0, 20 * MIN, |t| if t < 10 * MIN { 0.0 } else { 1.0 });
    let g = group(INSTANCE_DOWN, true);
    let rule = alerting(&g);
    let env = env(&db);
    let firing = [Matcher::equal("__name__", "ALERTS"), Matcher::equal("alertstate", "firing")];
    let pending = [Matcher::equal("__name__", "ALERTS"), Matcher::equal("alertstate", "pending")];

    let sent = g.eval(&env, MIN);
    assert_eq!(rule.state(), AlertState::Pending);
    assert!(sent.is_empty(), "pending alerts are not sent");
    assert_eq!(last(&db, &pending), Some((MIN, 1.0)));
    let for_state = [Matcher::equal("__name__", "ALERTS_FOR_STATE"), Matcher::equal("alertname", "InstanceDown")];
    assert_eq!(last(&db, &for_state), Some((MIN, 60.0)), "ALERTS_FOR_STATE holds the active-since time in seconds");

    let sent = g.eval(&env, 2 * MIN);
    assert_eq!(rule.state(), AlertState::Pending, "for: 2m has not passed yet");
    assert!(sent.is_empty());

    let sent = g.eval(&env, 3 * MIN);
    assert_eq!(rule.state(), AlertState::Firing);
    assert_eq!(last(&db, &firing), Some((3 * MIN, 1.0)));
    assert_eq!(sent.len(), 1);
    let a = &sent[0];
    assert_eq!(a.labels.get("alertname"), "InstanceDown");
    assert_eq!(a.labels.get("severity"), "page");
    assert_eq!(a.labels.get("instance"), "n1:9100");
    assert!(!a.labels.has("__name__"));
    assert_eq!(a.starts_at, 3 * MIN);
    assert_eq!(a.ends_at, 3 * MIN + 4 * MIN, "valid for four resend delays");
    assert_eq!(a.generator_url, "http://hearth.example:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1");
    let alerts = rule.alerts();
    assert_eq!(alerts[0].active_at, MIN);
    assert_eq!(alerts[0].fired_at, Some(3 * MIN));

    // Within the resend delay nothing is resent; after it, the alert is.
    assert!(g.eval(&env, 3 * MIN + 30_000).is_empty());
    assert_eq!(g.eval(&env, 4 * MIN).len(), 1);

    // The condition clears at 10m; keep_firing_for holds it one more minute.
    g.eval(&env, 10 * MIN + 30_000);
    assert_eq!(rule.state(), AlertState::Firing, "kept firing");
    assert_eq!(rule.alerts()[0].keep_firing_since, Some(10 * MIN + 30_000));
    let sent = g.eval(&env, 11 * MIN + 30_000);
    assert_eq!(rule.state(), AlertState::Inactive);
    assert_eq!(sent.len(), 1, "the resolution is sent at once");
    assert_eq!(sent[0].ends_at, 11 * MIN + 30_000, "endsAt is the resolution time");
    assert!(is_stale_nan(last(&db, &firing).expect("marker").1), "ALERTS goes stale");
    assert!(rule.alerts().is_empty(), "the API lists pending and firing alerts only");

    // Resolved alerts are resent every resend delay for 15 minutes, then forgotten.
    assert!(g.eval(&env, 12 * MIN).is_empty());
    assert_eq!(g.eval(&env, 13 * MIN).len(), 1);
    g.eval(&env, 27 * MIN);
    assert_eq!(g.eval(&env, 28 * MIN).len(), 0, "dropped after the resolved retention");
}

#[test]
fn a_restart_restores_how_long_alerts_have_been_active() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_db(dir.path());
    load(&db, &[("__name__", "up"), ("job", "node"), ("instance", "n1:9100")], 0, 60 * MIN, |_| 0.0);
    // A long `for`, so restoring matters: 30m.
    let yaml = INSTANCE_DOWN.replace("for: 2m", "for: 30m");
    let before = group(&yaml, true);
    let env = env(&db);
    before.eval(&env, MIN);
    before.eval(&env, 10 * MIN);
    assert_eq!(alerting(&before).alerts()[0].active_at, MIN);

    // "Restart" at 12m: a new group evaluates once (pending, active since
    // now), then restores from ALERTS_FOR_STATE written until 10m. The two
    // minutes of downtime do not count: active since 1m + 2m = 3m.
    let after = group(&yaml, false);
    after.eval(&env, 12 * MIN);
    assert!(
        last(&db, &[Matcher::equal("__name__", "ALERTS"), Matcher::equal("alertstate", "pending")]).expect("earlier").0 <= 10 * MIN,
        "nothing is written before the state is restored"
    );
    after.restore(&db, 12 * MIN, Duration::from_secs(3600), Duration::from_secs(600));
    let rule = alerting(&after);
    assert_eq!(rule.alerts()[0].active_at, 3 * MIN);
    after.eval(&env, 32 * MIN);
    assert_eq!(rule.state(), AlertState::Pending, "29 minutes counted so far");
    after.eval(&env, 33 * MIN);
    assert_eq!(rule.state(), AlertState::Firing);
}

#[test]
fn an_alert_close_to_firing_gets_the_grace_period_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_db(dir.path());
    load(&db, &[("__name__", "up"), ("job", "node"), ("instance", "n1:9100")], 0, 60 * MIN, |_| 0.0);
    let yaml = INSTANCE_DOWN.replace("for: 2m", "for: 15m");
    let before = group(&yaml, true);
    let env = env(&db);
    before.eval(&env, MIN);
    before.eval(&env, 12 * MIN);
    // Restart at 13m: 11 minutes pending, 4 left (< the 10m grace): fires at 13m + 10m.
    let after = group(&yaml, false);
    after.eval(&env, 13 * MIN);
    after.restore(&db, 13 * MIN, Duration::from_secs(3600), Duration::from_secs(600));
    assert_eq!(alerting(&after).alerts()[0].active_at, 13 * MIN + 10 * MIN - 15 * MIN);
}

#[test]
fn the_limit_fails_an_evaluation_that_produces_too_many_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_db(dir.path());
    for i in 0..3 {
        load(&db, &[("__name__", "up"), ("instance", &format!("n{i}"))], 0, MIN, |_| 0.0);
    }
    let g = group("groups:\n- name: g\n  limit: 2\n  rules:\n  - alert: Down\n    expr: up == 0\n", true);
    g.eval(&env(&db), MIN);
    assert_eq!(g.rules[0].status().last_error, "exceeded limit of 2 with 3 alerts");
    assert!(alerting(&g).alerts().is_empty());
}

/// Records what the rule manager hands to the notifier.
#[derive(Default)]
struct Recorder(Mutex<Vec<Alert>>);

impl AlertSink for Recorder {
    fn send(&self, alerts: Vec<Alert>) {
        self.0.lock().expect("lock").extend(alerts);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manager_runs_groups_and_keeps_alert_state_across_a_reload() {
    use hearth::config::Config;
    use hearth::rules::manager::{RuleManager, RuleOptions, prepare};

    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_db(&dir.path().join("data"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    load(&db, &[("__name__", "up"), ("job", "node"), ("instance", "n1")], now - 10 * MIN, now + 10 * MIN, |_| 0.0);
    let rules = dir.path().join("rules.yml");
    let write_rules = |severity: &str| {
        let text = format!(
            "groups:\n- name: g\n  interval: 1s\n  rules:\n  - alert: Down\n    expr: up == 0\n    labels: {{severity: {severity}}}\n"
        );
        std::fs::write(&rules, text).expect("write rules");
    };
    write_rules("page");
    let config_text = format!("rule_files: [{:?}]\n", rules.display().to_string());
    let config = Config::parse(&config_text, dir.path()).expect("config");
    let sink = Arc::new(Recorder::default());
    let engine = Arc::new(Engine::new(EngineOptions::default()));
    let opts = RuleOptions { external_url: "http://h/".into(), ..RuleOptions::default() };
    let m = RuleManager::new(engine, db.clone(), sink.clone(), opts.clone(), RuleMetrics::default());
    m.apply(prepare(&config, &opts).expect("rules load"));

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while sink.0.lock().expect("lock").is_empty() {
        assert!(std::time::Instant::now() < deadline, "no alert was sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first = m.groups()[0].clone();
    let active_at = match &first.rules[0].rule {
        RuleKind::Alerting(r) => r.alerts()[0].active_at,
        RuleKind::Recording(_) => unreachable!("alerting rule"),
    };

    // Unchanged rules: the same group keeps running.
    m.apply(prepare(&config, &opts).expect("rules load"));
    assert!(Arc::ptr_eq(&first, &m.groups()[0]));

    // A changed group takes over the alerts of its unchanged rules.
    std::fs::write(&rules, "groups:\n- name: g\n  interval: 1s\n  rules:\n  - alert: Down\n    expr: up == 0\n    labels: {severity: page}\n  - record: r\n    expr: vector(1)\n").expect("write");
    m.apply(prepare(&config, &opts).expect("rules load"));
    let second = m.groups()[0].clone();
    assert!(!Arc::ptr_eq(&first, &second));
    match &second.rules[0].rule {
        RuleKind::Alerting(r) => assert_eq!(r.alerts()[0].active_at, active_at, "state carried over"),
        RuleKind::Recording(_) => unreachable!("alerting rule"),
    }

    // A broken rule file is rejected before anything changes.
    std::fs::write(&rules, "groups:\n- name: g\n  rules:\n  - alert: Bad\n    expr: up ==\n").expect("write");
    let err = prepare(&config, &opts).expect_err("invalid rules");
    assert!(err.contains("rules.yml"), "{err}");
    assert!(Arc::ptr_eq(&second, &m.groups()[0]));

    // Removing the rules stops the group and marks its series stale.
    std::fs::write(&rules, "groups: []\n").expect("write");
    let later = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    m.apply(prepare(&config, &opts).expect("rules load"));
    assert!(m.groups().is_empty());
    let (t, v) = last(&db, &[Matcher::equal("__name__", "ALERTS")]).expect("ALERTS written");
    assert!(t >= later && is_stale_nan(v), "ALERTS of a removed group go stale");
    m.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manager_restores_for_state_written_before_a_restart() {
    use hearth::config::Config;
    use hearth::rules::manager::{RuleManager, RuleOptions, prepare};

    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_db(&dir.path().join("data"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    load(&db, &[("__name__", "up"), ("job", "node"), ("instance", "n1")], now - 30 * MIN, now + 10 * MIN, |_| 0.0);
    // What the previous run wrote until a minute ago: pending since 20 minutes ago.
    let since = ((now - 20 * MIN) / 1000) as f64;
    load(
        &db,
        &[("__name__", "ALERTS_FOR_STATE"), ("alertname", "Down"), ("job", "node"), ("instance", "n1"), ("severity", "page")],
        now - 20 * MIN,
        now - MIN,
        |_| since,
    );
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n- name: g\n  interval: 1s\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: 30m\n    labels: {severity: page}\n",
    )
    .expect("write rules");
    let config = Config::parse(&format!("rule_files: [{:?}]\n", rules.display().to_string()), dir.path()).expect("config");
    let opts = RuleOptions::default();
    let m = RuleManager::new(
        Arc::new(Engine::new(EngineOptions::default())),
        db.clone(),
        Arc::new(Recorder::default()),
        opts.clone(),
        RuleMetrics::default(),
    );
    m.apply(prepare(&config, &opts).expect("rules load"));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let active_at = loop {
        let restored = m.groups().first().and_then(|g| match &g.rules[0].rule {
            RuleKind::Alerting(r) if !r.needs_restore() => r.alerts().first().map(|a| a.active_at),
            _ => None,
        });
        if let Some(t) = restored {
            break t;
        }
        assert!(std::time::Instant::now() < deadline, "the alert was not restored");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Active since 20 minutes ago, plus the ~1 minute the server was down.
    let expected = now - 19 * MIN;
    assert!((active_at - expected).abs() < 10_000, "active_at {active_at} vs expected about {expected}");
    m.stop();
}
