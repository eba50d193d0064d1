//! A rule group: its rules evaluated in order at one timestamp, results
//! written to storage with staleness markers for series that vanished.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::alerting::{AlertState, AlertingRule};
use super::expand::TemplateEnv;
use super::file::{Rule, RuleGroup};
use super::metrics::RuleMetrics;
use super::query::QueryContext;
use super::recording::RecordingRule;
use crate::model::sample::stale_nan;
use crate::model::{Labels, Matcher};
use crate::notify::Alert as Notification;
use crate::promql::Engine;
use crate::tsdb::Db;

/// A recording or an alerting rule.
#[derive(Debug)]
pub enum RuleKind {
    Recording(RecordingRule),
    Alerting(AlertingRule),
}

impl RuleKind {
    pub fn name(&self) -> &str {
        match self {
            RuleKind::Recording(r) => &r.name,
            RuleKind::Alerting(r) => &r.name,
        }
    }

    pub fn expr(&self) -> &str {
        match self {
            RuleKind::Recording(r) => &r.expr,
            RuleKind::Alerting(r) => &r.expr,
        }
    }

    pub fn labels(&self) -> &std::collections::BTreeMap<String, String> {
        match self {
            RuleKind::Recording(r) => &r.labels,
            RuleKind::Alerting(r) => &r.labels,
        }
    }
}

/// How a rule's last evaluation went (for `/api/v1/rules`).
#[derive(Debug, Clone, Default)]
pub struct RuleStatus {
    /// `"unknown"` before the first evaluation, then `"ok"` or `"err"`.
    pub health: &'static str,
    pub last_error: String,
    pub last_eval: Option<SystemTime>,
    pub duration: Duration,
}

/// One rule of a group, with what its last evaluation wrote.
#[derive(Debug)]
pub struct RuleEntry {
    pub rule: RuleKind,
    status: Mutex<RuleStatus>,
    /// Series written by the last successful evaluation, to mark the ones
    /// that vanish stale.
    written: Mutex<HashMap<u64, Labels>>,
}

impl RuleEntry {
    fn new(rule: RuleKind) -> Self {
        RuleEntry { rule, status: Mutex::new(RuleStatus { health: "unknown", ..Default::default() }), written: Mutex::default() }
    }

    pub fn status(&self) -> RuleStatus {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// How the last evaluation of the whole group went.
#[derive(Debug, Clone, Default)]
pub struct GroupStatus {
    pub last_eval: Option<SystemTime>,
    pub duration: Duration,
}

/// Everything a group evaluation uses besides its rules.
pub struct EvalEnv {
    pub engine: Arc<Engine>,
    pub db: Arc<Db>,
    pub templates: TemplateEnv,
    /// `--rules.alert.resend-delay`.
    pub resend_delay: Duration,
    pub metrics: RuleMetrics,
}

/// A loaded rule group.
#[derive(Debug)]
pub struct Group {
    pub name: String,
    pub file: String,
    pub interval: Duration,
    pub limit: u64,
    pub query_offset: Duration,
    pub rules: Vec<RuleEntry>,
    /// As configured, to tell whether a reload changed the group.
    pub source: RuleGroup,
    status: Mutex<GroupStatus>,
}

impl Group {
    /// Builds a group from its file form. `restored` is false when alerts'
    /// `for` state should first be restored from storage (startup).
    pub fn new(file: &str, g: &RuleGroup, default_interval: Duration, default_offset: Duration, restored: bool) -> Group {
        let rules = g
            .rules
            .iter()
            .map(|r| {
                let mut labels = g.labels.clone();
                labels.extend(r.labels.clone());
                RuleEntry::new(rule_kind(r, labels, restored))
            })
            .collect();
        Group {
            name: g.name.clone(),
            file: file.to_string(),
            interval: g.interval.unwrap_or(default_interval),
            limit: g.limit,
            query_offset: g.query_offset.unwrap_or(default_offset),
            rules,
            source: g.clone(),
            status: Mutex::default(),
        }
    }

    /// Identifies the group across reloads.
    pub fn key(&self) -> String {
        format!("{};{}", self.file, self.name)
    }

    pub fn status(&self) -> GroupStatus {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Where in each interval this group evaluates: spread by its key so
    /// that groups do not all run at once, and stable across restarts.
    pub fn phase(&self) -> Duration {
        let interval = self.interval.as_nanos().max(1) as u64;
        Duration::from_nanos(xxhash_rust::xxh3::xxh3_64(self.key().as_bytes()) % interval)
    }

    /// Evaluates every rule at `ts` (ms), in order, storing the results.
    /// Returns the alerts due for sending.
    pub fn eval(&self, env: &EvalEnv, ts: i64) -> Vec<Notification> {
        let started = Instant::now();
        let offset = self.query_offset.as_millis() as i64;
        let querier = env.db.querier();
        let q = QueryContext { engine: &env.engine, querier: &querier };
        let mut notifications = Vec::new();
        for entry in &self.rules {
            let rule_started = Instant::now();
            env.metrics.evaluations.get_or_create(&self.metric_labels()).inc();
            let result = match &entry.rule {
                RuleKind::Recording(r) => r.eval(&q, ts - offset, self.limit),
                RuleKind::Alerting(r) => r.eval(&q, &env.templates, ts, offset, self.limit),
            };
            let error = match result {
                Ok(samples) => {
                    self.write(env, entry, samples, ts - offset);
                    None
                }
                Err(e) => {
                    env.metrics.failures.get_or_create(&self.metric_labels()).inc();
                    tracing::warn!(group = %self.name, rule = entry.rule.name(), error = %e, "rule evaluation failed");
                    Some(e)
                }
            };
            // As in Prometheus, a failed evaluation sends nothing: alerts
            // not resent lapse in Alertmanager at their endsAt.
            if let (RuleKind::Alerting(r), None) = (&entry.rule, &error) {
                notifications.extend(r.due(ts, env.resend_delay, self.interval, &env.templates.external_url));
            }
            let mut st = entry.status.lock().unwrap_or_else(|p| p.into_inner());
            st.health = if error.is_some() { "err" } else { "ok" };
            st.last_error = error.unwrap_or_default();
            st.last_eval = Some(SystemTime::now());
            st.duration = rule_started.elapsed();
        }
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        st.last_eval = Some(SystemTime::now());
        st.duration = started.elapsed();
        env.metrics.last_duration.get_or_create(&self.metric_labels()).set(st.duration.as_secs_f64());
        notifications
    }

    fn metric_labels(&self) -> [(&'static str, String); 1] {
        [("rule_group", self.key())]
    }

    /// Appends a rule's samples at `t` and staleness markers for its series
    /// from the previous evaluation that are gone now.
    fn write(&self, env: &EvalEnv, entry: &RuleEntry, samples: Vec<(Labels, f64)>, t: i64) {
        let mut written = entry.written.lock().unwrap_or_else(|p| p.into_inner());
        let mut now: HashMap<u64, Labels> = HashMap::with_capacity(samples.len());
        let mut app = env.db.appender();
        let mut rejected = 0usize;
        for (labels, v) in samples {
            if app.append(None, &labels, t, v).is_err() {
                rejected += 1;
            }
            now.insert(labels.stable_hash(), labels);
        }
        for (h, labels) in written.iter() {
            if !now.contains_key(h) {
                // Already-newer data (e.g. after a restart) is no error here.
                let _ = app.append(None, labels, t, stale_nan());
            }
        }
        if let Err(e) = app.commit() {
            tracing::error!(group = %self.name, rule = entry.rule.name(), error = %e, "writing rule results failed");
        }
        if rejected > 0 {
            tracing::warn!(group = %self.name, rule = entry.rule.name(), rejected, "rule results rejected (out of order or duplicate)");
        }
        *written = now;
    }

    /// Marks every series the group wrote stale (the group was removed).
    pub fn mark_stale(&self, db: &Db, t: i64) {
        let mut app = db.appender();
        for entry in &self.rules {
            let mut written = entry.written.lock().unwrap_or_else(|p| p.into_inner());
            for labels in written.values() {
                let _ = app.append(None, labels, t, stale_nan());
            }
            written.clear();
        }
        if let Err(e) = app.commit() {
            tracing::error!(group = %self.name, error = %e, "writing staleness markers failed");
        }
    }

    /// Takes over alert states and written series from the group of the
    /// same key before a reload, rule by rule (matched by name and labels).
    pub fn copy_state_from(&self, old: &Group) {
        for entry in &self.rules {
            let Some(prev) = old.rules.iter().find(|o| o.rule.name() == entry.rule.name() && o.rule.labels() == entry.rule.labels()) else {
                continue;
            };
            if let (RuleKind::Alerting(new), RuleKind::Alerting(prev)) = (&entry.rule, &prev.rule) {
                new.copy_state_from(prev);
            }
            let written = prev.written.lock().unwrap_or_else(|p| p.into_inner()).clone();
            *entry.written.lock().unwrap_or_else(|p| p.into_inner()) = written;
        }
    }

    /// Series the old group wrote that no rule of this group takes over.
    pub fn orphans_of(&self, old: &Group) -> Vec<Labels> {
        old.rules
            .iter()
            .filter(|o| !self.rules.iter().any(|n| n.rule.name() == o.rule.name() && n.rule.labels() == o.rule.labels()))
            .flat_map(|o| o.written.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect::<Vec<_>>())
            .collect()
    }

    /// Restores alerts' `for` state from `ALERTS_FOR_STATE` after a restart
    /// (see [`AlertingRule::restore`]), looking back `tolerance`.
    pub fn restore(&self, db: &Db, ts: i64, tolerance: Duration, grace: Duration) {
        let querier = db.querier();
        let mint = ts - tolerance.as_millis() as i64;
        for entry in &self.rules {
            let RuleKind::Alerting(rule) = &entry.rule else { continue };
            if !rule.needs_restore() {
                continue;
            }
            rule.restore(ts, grace, |labels| {
                let matchers: Vec<Matcher> = labels.iter().map(|l| Matcher::equal(l.name.clone(), l.value.clone())).collect();
                let series = querier.select(&matchers, mint, ts).ok()?;
                let s = series.into_iter().find(|s| s.labels.len() == labels.len())?;
                s.samples.last().map(|p| (p.t, p.v))
            });
        }
    }

    /// The most severe state among the group's alerting rules.
    pub fn alert_state(&self) -> AlertState {
        self.rules
            .iter()
            .filter_map(|e| match &e.rule {
                RuleKind::Alerting(r) => Some(r.state()),
                RuleKind::Recording(_) => None,
            })
            .max()
            .unwrap_or(AlertState::Inactive)
    }
}

fn rule_kind(r: &Rule, labels: std::collections::BTreeMap<String, String>, restored: bool) -> RuleKind {
    match &r.alert {
        Some(alert) => RuleKind::Alerting(AlertingRule::new(
            alert.clone(),
            r.expr.clone(),
            r.for_,
            r.keep_firing_for,
            labels,
            r.annotations.clone(),
            restored,
        )),
        None => RuleKind::Recording(RecordingRule { name: r.record.clone().unwrap_or_default(), expr: r.expr.clone(), labels }),
    }
}
