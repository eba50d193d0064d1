//! The rule manager: loads the configured rule files, runs each group on
//! its interval, and on a reload keeps unchanged groups running and carries
//! alert state over to changed ones, as Prometheus does.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::task::JoinHandle;

use super::expand::TemplateEnv;
use super::file::{RuleGroup, load_rule_file};
use super::group::{EvalEnv, Group};
use super::metrics::RuleMetrics;
use crate::config::Config;
use crate::notify::AlertSink;
use crate::promql::Engine;
use crate::tsdb::Db;

/// Settings from the command line (Prometheus' flag names in the docs).
#[derive(Debug, Clone)]
pub struct RuleOptions {
    /// `--rules.alert.resend-delay`.
    pub resend_delay: Duration,
    /// `--rules.alert.for-outage-tolerance`: how far back `for` state is restored.
    pub outage_tolerance: Duration,
    /// `--rules.alert.for-grace-period`: least time left before a restored alert fires.
    pub grace_period: Duration,
    /// `--web.external-url`, for `$externalURL` and generator links.
    pub external_url: String,
}

impl Default for RuleOptions {
    fn default() -> Self {
        RuleOptions {
            resend_delay: Duration::from_secs(60),
            outage_tolerance: Duration::from_secs(3600),
            grace_period: Duration::from_secs(600),
            external_url: String::new(),
        }
    }
}

/// Rule files read and checked, ready to apply: a reload reads everything
/// first, so a broken file changes nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedRules {
    groups: Vec<(String, RuleGroup)>,
    interval: Duration,
    offset: Duration,
    templates: TemplateEnv,
}

/// Reads every rule file `config` names (globs expanded). Errors name the
/// file and the place in it.
pub fn prepare(config: &Config, opts: &RuleOptions) -> Result<PreparedRules, String> {
    let mut groups = Vec::new();
    for pattern in &config.rule_files {
        for path in crate::discovery::glob::expand(pattern) {
            let file = load_rule_file(&path).map_err(|errs| errs.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))?;
            let name = path.display().to_string();
            groups.extend(file.groups.into_iter().map(|g| (name.clone(), g)));
        }
    }
    Ok(PreparedRules {
        groups,
        interval: config.global.evaluation_interval,
        offset: config.global.rule_query_offset,
        templates: TemplateEnv { external_labels: config.global.external_labels.clone(), external_url: opts.external_url.clone() },
    })
}

struct Running {
    group: Arc<Group>,
    templates: TemplateEnv,
    task: JoinHandle<()>,
}

/// Runs the rule groups of the configuration in force.
pub struct RuleManager {
    engine: Arc<Engine>,
    db: Arc<Db>,
    sink: Arc<dyn AlertSink>,
    opts: RuleOptions,
    metrics: RuleMetrics,
    running: Mutex<BTreeMap<String, Running>>,
    /// Set after the first load: only groups loaded at startup restore
    /// their alerts' `for` state from storage.
    loaded: AtomicBool,
}

impl RuleManager {
    pub fn new(engine: Arc<Engine>, db: Arc<Db>, sink: Arc<dyn AlertSink>, opts: RuleOptions, metrics: RuleMetrics) -> Self {
        RuleManager { engine, db, sink, opts, metrics, running: Mutex::new(BTreeMap::new()), loaded: AtomicBool::new(false) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Switches to `rules`. Unchanged groups keep running untouched;
    /// changed ones restart with their alerts' state; removed ones stop and
    /// their series are marked stale.
    pub fn apply(&self, rules: PreparedRules) {
        let restore = !self.loaded.swap(true, Ordering::SeqCst);
        let now = now_ms();
        let mut running = self.lock();
        let mut next = BTreeMap::new();
        for (file, g) in &rules.groups {
            let fresh = Group::new(file, g, rules.interval, rules.offset, !restore);
            let key = fresh.key();
            if let Some(old) = running.remove(&key) {
                let same = old.group.source == *g
                    && old.group.interval == fresh.interval
                    && old.group.query_offset == fresh.query_offset
                    && old.templates == rules.templates;
                if same {
                    next.insert(key, old);
                    continue;
                }
                old.task.abort();
                fresh.copy_state_from(&old.group);
                stale(&self.db, &fresh.orphans_of(&old.group), now);
            }
            let group = Arc::new(fresh);
            let task = tokio::spawn(run(group.clone(), self.env(&rules.templates), self.sink.clone(), restore.then(|| self.opts.clone())));
            tracing::info!(group = %group.name, file = %group.file, "rule group started");
            next.insert(key, Running { group, templates: rules.templates.clone(), task });
        }
        for (_, old) in std::mem::take(&mut *running) {
            old.task.abort();
            old.group.mark_stale(&self.db, now);
            tracing::info!(group = %old.group.name, file = %old.group.file, "rule group stopped");
        }
        *running = next;
    }

    fn env(&self, templates: &TemplateEnv) -> Arc<EvalEnv> {
        Arc::new(EvalEnv {
            engine: self.engine.clone(),
            db: self.db.clone(),
            templates: templates.clone(),
            resend_delay: self.opts.resend_delay,
            metrics: self.metrics.clone(),
        })
    }

    /// The running groups, by file and then name.
    pub fn groups(&self) -> Vec<Arc<Group>> {
        let mut v: Vec<Arc<Group>> = self.lock().values().map(|r| r.group.clone()).collect();
        v.sort_by(|a, b| (&a.file, &a.name).cmp(&(&b.file, &b.name)));
        v
    }

    /// Stops every group without staleness markers (shutdown: a restarted
    /// server continues the same series).
    pub fn stop(&self) {
        for (_, r) in std::mem::take(&mut *self.lock()) {
            r.task.abort();
        }
    }
}

fn stale(db: &Db, series: &[crate::model::Labels], t: i64) {
    if series.is_empty() {
        return;
    }
    let mut app = db.appender();
    for l in series {
        let _ = app.append(None, l, t, crate::model::sample::stale_nan());
    }
    if let Err(e) = app.commit() {
        tracing::error!(error = %e, "writing staleness markers failed");
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The first evaluation time after `now` (ms) in the group's slot.
fn next_slot(now: i64, interval: i64, phase: i64) -> i64 {
    let interval = interval.max(1);
    let base = (now - phase).div_euclid(interval) * interval + phase;
    if base > now { base } else { base + interval }
}

/// Evaluates `group` in its slot of every interval until aborted. With
/// `restore`, the alerts' `for` state is restored after the first round.
async fn run(group: Arc<Group>, env: Arc<EvalEnv>, sink: Arc<dyn AlertSink>, restore: Option<RuleOptions>) {
    let interval = group.interval.as_millis().max(1) as i64;
    let phase = group.phase().as_millis() as i64;
    env.metrics.interval.get_or_create(&[("rule_group", group.key())]).set(group.interval.as_secs_f64());
    let mut restore = restore;
    let mut ts = next_slot(now_ms(), interval, phase);
    loop {
        let wait = (ts - now_ms()).max(0) as u64;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let (g, e) = (group.clone(), env.clone());
        let alerts = match tokio::task::spawn_blocking(move || g.eval(&e, ts)).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(group = %group.name, error = %e, "rule group evaluation panicked");
                Vec::new()
            }
        };
        if let Some(opts) = restore.take() {
            let (g, db) = (group.clone(), env.db.clone());
            let _ = tokio::task::spawn_blocking(move || g.restore(&db, ts, opts.outage_tolerance, opts.grace_period)).await;
        }
        if !alerts.is_empty() {
            sink.send(alerts);
        }
        let next = ts + interval;
        let now = now_ms();
        ts = if next > now {
            next
        } else {
            let missed = (now - next) / interval + 1;
            env.metrics.missed.get_or_create(&[("rule_group", group.key())]).inc_by(missed as u64);
            next_slot(now, interval, phase)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_after_now_at_the_phase() {
        assert_eq!(next_slot(1000, 60_000, 5_000), 5_000);
        assert_eq!(next_slot(5_000, 60_000, 5_000), 65_000);
        assert_eq!(next_slot(64_999, 60_000, 5_000), 65_000);
        assert_eq!(next_slot(125_000, 60_000, 0), 180_000);
    }
}
