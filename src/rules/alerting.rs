//! Alerting rules: Prometheus' alert state machine (inactive → pending →
//! firing, `for` and `keep_firing_for`), the `ALERTS` and `ALERTS_FOR_STATE`
//! series, and which alerts to (re)send to Alertmanager.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use super::expand::TemplateEnv;
use super::query::QueryContext;
use crate::model::{Labels, LabelsBuilder};
use crate::notify::Alert as Notification;

/// How long a resolved alert is kept (and resent as resolved).
const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// An alert's state; ordered so that the rule's state is the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of a rule. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveAlert {
    pub labels: Labels,
    pub annotations: Labels,
    pub state: AlertState,
    pub value: f64,
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub last_sent_at: Option<i64>,
    pub valid_until: i64,
    pub keep_firing_since: Option<i64>,
}

impl ActiveAlert {
    /// Prometheus' `needsSending`: firing alerts every `resend_delay`, a
    /// resolution at once.
    fn needs_sending(&self, ts: i64, resend_delay: Duration) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        match (self.resolved_at, self.last_sent_at) {
            (_, None) => true,
            (Some(r), Some(sent)) if r > sent => true,
            (_, Some(sent)) => sent + resend_delay.as_millis() as i64 <= ts,
        }
    }
}

/// An `alert:` rule with its group's labels merged in, and its alerts.
#[derive(Debug)]
pub struct AlertingRule {
    pub name: String,
    pub expr: String,
    /// `for`.
    pub hold: Duration,
    pub keep_firing_for: Duration,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    state: Mutex<RuleState>,
}

#[derive(Debug, Default)]
struct RuleState {
    active: HashMap<u64, ActiveAlert>,
    /// Whether `ALERTS`/`ALERTS_FOR_STATE` may be written: not until a
    /// restart's `for` state has been restored from them.
    restored: bool,
}

impl AlertingRule {
    pub fn new(
        name: String,
        expr: String,
        hold: Duration,
        keep_firing_for: Duration,
        labels: BTreeMap<String, String>,
        annotations: BTreeMap<String, String>,
        restored: bool,
    ) -> Self {
        AlertingRule {
            name,
            expr,
            hold,
            keep_firing_for,
            labels,
            annotations,
            state: Mutex::new(RuleState { active: HashMap::new(), restored }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RuleState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Evaluates at `ts` (querying `offset` ms earlier) and advances every
    /// alert's state; returns the `ALERTS` and `ALERTS_FOR_STATE` samples to
    /// store at `ts - offset`.
    pub fn eval(&self, q: &QueryContext<'_>, env: &TemplateEnv, ts: i64, offset: i64, limit: u64) -> Result<Vec<(Labels, f64)>, String> {
        let vector = q.vector(&self.expr, ts - offset)?;
        let mut current: HashMap<u64, ActiveAlert> = HashMap::with_capacity(vector.len());
        for s in &vector {
            let expand = |text: &str| env.expand(&self.name, text, &s.metric, s.v, q, ts);
            let mut b = LabelsBuilder::from_labels(&s.metric);
            b.del("__name__");
            for (k, v) in &self.labels {
                b.set(k.as_str(), expand(v));
            }
            b.set("alertname", self.name.as_str());
            let labels = b.build();
            let annotations = Labels::from_pairs(self.annotations.iter().map(|(k, v)| (k.clone(), expand(v))));
            let h = labels.stable_hash();
            if current.contains_key(&h) {
                return Err("vector contains metrics with the same labelset after applying alert labels".into());
            }
            current.insert(
                h,
                ActiveAlert {
                    labels,
                    annotations,
                    state: AlertState::Pending,
                    value: s.v,
                    active_at: ts,
                    fired_at: None,
                    resolved_at: None,
                    last_sent_at: None,
                    valid_until: 0,
                    keep_firing_since: None,
                },
            );
        }

        let mut st = self.lock();
        let result_keys: std::collections::HashSet<u64> = current.keys().copied().collect();
        for (h, a) in current {
            match st.active.get_mut(&h) {
                Some(known) if known.state != AlertState::Inactive => {
                    known.value = a.value;
                    known.annotations = a.annotations;
                }
                _ => {
                    st.active.insert(h, a);
                }
            }
        }
        let mut out = Vec::new();
        let mut active_pending = 0u64;
        let restored = st.restored;
        let (hold, keep_for) = (self.hold.as_millis() as i64, self.keep_firing_for.as_millis() as i64);
        st.active.retain(|h, a| {
            if !result_keys.contains(h) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && keep_for > 0 {
                    let since = *a.keep_firing_since.get_or_insert(ts);
                    keep_firing = ts - since < keep_for;
                }
                // Pending alerts vanish; resolved ones stay a while to be resent.
                if a.state == AlertState::Pending || a.resolved_at.is_some_and(|r| ts - r > RESOLVED_RETENTION_MS) {
                    return false;
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(ts);
                }
                if !keep_firing {
                    return true;
                }
            } else {
                a.keep_firing_since = None;
            }
            active_pending += 1;
            if a.state == AlertState::Pending && ts - a.active_at >= hold {
                a.state = AlertState::Firing;
                a.fired_at = Some(ts);
            }
            if restored {
                out.push((series("ALERTS", &a.labels, Some(a.state)), 1.0));
                out.push((series("ALERTS_FOR_STATE", &a.labels, None), (a.active_at.div_euclid(1000)) as f64));
            }
            true
        });
        if limit > 0 && active_pending > limit {
            st.active.clear();
            return Err(format!("exceeded limit of {limit} with {active_pending} alerts"));
        }
        Ok(out)
    }

    /// The alerts due for (re)sending at `ts`, marked as sent. Firing alerts
    /// are valid for four resend periods (or evaluation intervals, if
    /// longer), so two lost sends or evaluations do not resolve them.
    pub fn due(&self, ts: i64, resend_delay: Duration, interval: Duration, external_url: &str) -> Vec<Notification> {
        let delta = resend_delay.max(interval).as_millis() as i64;
        let url = generator_url(external_url, &self.expr);
        let mut st = self.lock();
        let mut out = Vec::new();
        for a in st.active.values_mut() {
            if !a.needs_sending(ts, resend_delay) {
                continue;
            }
            a.last_sent_at = Some(ts);
            a.valid_until = ts + 4 * delta;
            out.push(Notification {
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at: a.fired_at.unwrap_or(a.active_at),
                ends_at: a.resolved_at.unwrap_or(a.valid_until),
                generator_url: url.clone(),
            });
        }
        out
    }

    /// Pending and firing alerts, in label order (for the API).
    pub fn alerts(&self) -> Vec<ActiveAlert> {
        let mut v: Vec<ActiveAlert> = self.lock().active.values().filter(|a| a.state != AlertState::Inactive).cloned().collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }

    /// The most severe state of the rule's alerts.
    pub fn state(&self) -> AlertState {
        self.lock().active.values().map(|a| a.state).max().unwrap_or(AlertState::Inactive)
    }

    /// Takes over the alerts of the same rule from before a reload.
    pub fn copy_state_from(&self, old: &AlertingRule) {
        let old = old.lock();
        let mut st = self.lock();
        st.active = old.active.clone();
        st.restored = old.restored;
    }

    /// Whether the `for` state still has to be restored.
    pub fn needs_restore(&self) -> bool {
        !self.lock().restored
    }

    pub fn set_restored(&self) {
        self.lock().restored = true;
    }

    /// Prometheus' `for`-state restoration after a restart: for each alert
    /// (just found pending again), `last` gives the newest stored
    /// `ALERTS_FOR_STATE` sample for its labels (time ms, active-since
    /// seconds). The time the server was down does not count towards `for`,
    /// and an alert about to fire gets at least `grace` more.
    pub fn restore(&self, ts: i64, grace: Duration, last: impl Fn(&Labels) -> Option<(i64, f64)>) {
        let mut st = self.lock();
        let hold = self.hold.as_millis() as i64;
        let grace_ms = grace.as_millis() as i64;
        if hold >= grace_ms {
            for a in st.active.values_mut() {
                let Some((down_at, since)) = last(&series("ALERTS_FOR_STATE", &a.labels, None)) else { continue };
                if crate::model::sample::is_stale_nan(since) || !since.is_finite() {
                    continue;
                }
                let down_at = down_at.div_euclid(1000) * 1000;
                let mut active_at = (since as i64) * 1000;
                let remaining = hold - (down_at - active_at);
                if remaining <= 0 {
                } else if remaining < grace_ms {
                    active_at = ts + grace_ms - hold;
                } else {
                    active_at += ts - down_at;
                }
                a.active_at = active_at;
            }
        }
        st.restored = true;
    }
}

/// The `ALERTS{alertstate=...}` or `ALERTS_FOR_STATE` series of an alert.
fn series(name: &str, alert: &Labels, state: Option<AlertState>) -> Labels {
    let mut b = LabelsBuilder::from_labels(alert);
    b.set("__name__", name);
    if let Some(s) = state {
        b.set("alertstate", s.as_str());
    }
    b.build()
}

/// Prometheus' link to the expression's graph page.
fn generator_url(external_url: &str, expr: &str) -> String {
    format!("{}/graph?g0.expr={}&g0.tab=1", external_url.trim_end_matches('/'), query_escape(expr))
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_url_escapes_like_go() {
        assert_eq!(generator_url("http://h:9090/", "up == 0"), "http://h:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1");
    }
}
