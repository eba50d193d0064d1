//! Scrape targets: from discovered labels to the labels, URL and timing of
//! one endpoint (Prometheus' `PopulateLabels`), and the health the targets
//! API shows.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::config::format_duration;
use crate::config::units::parse_duration_ms;
use crate::model::{Labels, LabelsBuilder};
use crate::relabel::Relabeler;
use crate::scrape::metadata::Metadata;

/// What every target of a scrape config starts from.
#[derive(Debug, Clone, Default)]
pub struct TargetDefaults {
    pub job_name: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub metrics_path: String,
    pub scheme: String,
    pub params: BTreeMap<String, Vec<String>>,
}

/// Scrape health as the targets API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Health {
    #[default]
    Unknown,
    Up,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// The outcome of the latest scrape.
#[derive(Debug, Clone, Default)]
pub struct TargetStatus {
    pub health: Health,
    pub last_error: String,
    pub last_scrape: Option<SystemTime>,
    pub last_duration: Duration,
    pub metadata: Arc<HashMap<String, Metadata>>,
}

/// One endpoint to scrape.
#[derive(Debug)]
pub struct Target {
    /// Labels after relabeling, before internal (`__`) labels are removed:
    /// the target's identity.
    pub full: Labels,
    /// Labels attached to every sample (no `__` labels).
    pub labels: Labels,
    /// Labels as discovered, before relabeling.
    pub discovered: Labels,
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub status: Mutex<TargetStatus>,
}

impl Target {
    /// A stable identity: equal for the same endpoint across reloads.
    pub fn key(&self) -> u64 {
        self.full.stable_hash()
    }

    pub fn status(&self) -> TargetStatus {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set_status(&self, f: impl FnOnce(&mut TargetStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Delay until this target's next scrape slot. The slot is a fixed
    /// offset within the interval derived from the target's identity, so a
    /// pool's targets are spread over the interval and a restarted loop keeps
    /// its timing.
    pub fn offset(&self, now: SystemTime) -> Duration {
        let interval = self.interval.as_nanos().max(1);
        let now = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let slot = u128::from(self.key()) % interval;
        let into = now % interval;
        Duration::from_nanos(((slot + interval - into) % interval) as u64)
    }
}

/// Why a discovered target could not become a scrape target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("no address")]
    NoAddress,
    #[error("error parsing scrape interval: {0}")]
    Interval(String),
    #[error("error parsing scrape timeout: {0}")]
    Timeout(String),
    #[error("scrape interval cannot be 0")]
    ZeroInterval,
    #[error("scrape timeout cannot be 0")]
    ZeroTimeout,
    #[error("scrape timeout cannot be greater than scrape interval ({0:?} > {1:?})")]
    TimeoutAboveInterval(String, String),
    #[error("invalid URL {0:?}: {1}")]
    Url(String, String),
}

/// Result of turning discovered labels into a target.
#[derive(Debug)]
pub enum Populated {
    Target(Target),
    /// Relabeling dropped it; the discovered labels are kept for the API.
    Dropped(Labels),
}

/// Builds a target from a discovered label set: defaults from the scrape
/// config (`job`, `__scheme__`, `__metrics_path__`, `__scrape_interval__`,
/// `__scrape_timeout__`, `__param_<name>`), then relabeling, then `instance`
/// defaulting to `__address__` and the `__meta_` labels removed.
pub fn populate(discovered: &BTreeMap<String, String>, d: &TargetDefaults, relabel: &Relabeler) -> Result<Populated, TargetError> {
    let mut b = LabelsBuilder::new();
    for (k, v) in discovered {
        b.set(k.clone(), v.clone());
    }
    let defaults = [
        ("job", d.job_name.clone()),
        ("__scrape_interval__", format_duration(d.interval)),
        ("__scrape_timeout__", format_duration(d.timeout)),
        ("__metrics_path__", d.metrics_path.clone()),
        ("__scheme__", d.scheme.clone()),
    ];
    for (k, v) in defaults {
        if b.get(k).is_empty() {
            b.set(k, v);
        }
    }
    for (k, v) in &d.params {
        let name = format!("__param_{k}");
        if let Some(first) = v.first()
            && b.get(&name).is_empty()
        {
            b.set(name, first.clone());
        }
    }
    let pre = b.clone().build();
    if !relabel.process_builder(&mut b) {
        return Ok(Populated::Dropped(pre));
    }
    let address = b.get("__address__").to_string();
    if address.is_empty() {
        return Err(TargetError::NoAddress);
    }
    let interval_s = b.get("__scrape_interval__").to_string();
    let timeout_s = b.get("__scrape_timeout__").to_string();
    let interval = parse_duration_ms(&interval_s).map_err(|e| TargetError::Interval(e.to_string()))?;
    let timeout = parse_duration_ms(&timeout_s).map_err(|e| TargetError::Timeout(e.to_string()))?;
    if interval == 0 {
        return Err(TargetError::ZeroInterval);
    }
    if timeout == 0 {
        return Err(TargetError::ZeroTimeout);
    }
    if timeout > interval {
        return Err(TargetError::TimeoutAboveInterval(timeout_s, interval_s));
    }
    b.retain_names(|n| !n.starts_with("__meta_"));
    if b.get("instance").is_empty() {
        b.set("instance", address);
    }
    let full = b.build();
    let url = target_url(&full, &d.params)?;
    let labels = Labels::from_sorted(full.iter().filter(|l| !l.name.starts_with("__")).cloned().collect());
    Ok(Populated::Target(Target {
        full,
        labels,
        discovered: pre,
        url,
        interval: Duration::from_millis(interval as u64),
        timeout: Duration::from_millis(timeout as u64),
        status: Mutex::new(TargetStatus::default()),
    }))
}

/// `scheme://address/path?params`, with `__param_<name>` labels overriding
/// the first value of the configured parameter.
fn target_url(l: &Labels, params: &BTreeMap<String, Vec<String>>) -> Result<String, TargetError> {
    let (scheme, address, path) = (l.get("__scheme__"), l.get("__address__"), l.get("__metrics_path__"));
    let raw = format!("{scheme}://{address}{path}");
    let mut url = reqwest::Url::parse(&raw).map_err(|e| TargetError::Url(raw.clone(), e.to_string()))?;
    let mut query: BTreeMap<String, Vec<String>> = params.clone();
    for lab in l.iter() {
        if let Some(name) = lab.name.strip_prefix("__param_") {
            let vals = query.entry(name.to_string()).or_default();
            match vals.first_mut() {
                Some(first) => *first = lab.value.clone(),
                None => vals.push(lab.value.clone()),
            }
        }
    }
    if !query.is_empty() {
        let mut q = url.query_pairs_mut();
        for (k, vs) in &query {
            for v in vs {
                q.append_pair(k, v);
            }
        }
    }
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> TargetDefaults {
        TargetDefaults {
            job_name: "node".into(),
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
            metrics_path: "/metrics".into(),
            scheme: "http".into(),
            params: BTreeMap::from([("module".to_string(), vec!["a".to_string(), "b".to_string()])]),
        }
    }

    fn disc(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_instance_and_url() {
        let p = populate(&disc(&[("__address__", "h:9100"), ("__meta_x", "y"), ("env", "prod")]), &defaults(), &Relabeler::default());
        let Ok(Populated::Target(t)) = p else { panic!("{p:?}") };
        assert_eq!(t.labels, Labels::from_pairs([("instance", "h:9100"), ("job", "node"), ("env", "prod")]));
        assert_eq!(t.url, "http://h:9100/metrics?module=a&module=b");
        assert_eq!(t.discovered.get("__meta_x"), "y");
        assert_eq!(t.discovered.get("__scrape_interval__"), "15s");
        assert_eq!(t.full.get("__meta_x"), "");
        assert_eq!(t.interval, Duration::from_secs(15));
    }

    #[test]
    fn param_labels_override_the_first_value_and_interval_labels_apply() {
        let d = disc(&[("__address__", "h:1"), ("__param_module", "z"), ("__scrape_interval__", "1m"), ("__scheme__", "https")]);
        let Ok(Populated::Target(t)) = populate(&d, &defaults(), &Relabeler::default()) else { panic!() };
        assert_eq!(t.url, "https://h:1/metrics?module=z&module=b");
        assert_eq!(t.interval, Duration::from_secs(60));
    }

    #[test]
    fn bad_targets_get_prometheus_errors() {
        let e = populate(&disc(&[("x", "y")]), &defaults(), &Relabeler::default()).unwrap_err();
        assert_eq!(e.to_string(), "no address");
        let d = disc(&[("__address__", "h:1"), ("__scrape_timeout__", "20s")]);
        let e = populate(&d, &defaults(), &Relabeler::default()).unwrap_err();
        assert_eq!(e.to_string(), "scrape timeout cannot be greater than scrape interval (\"20s\" > \"15s\")");
    }

    #[test]
    fn offsets_are_stable_and_within_the_interval() {
        let Ok(Populated::Target(t)) = populate(&disc(&[("__address__", "h:1")]), &defaults(), &Relabeler::default()) else { panic!() };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let o = t.offset(now);
        assert!(o < t.interval);
        // One second later the same slot is one second closer.
        let o2 = t.offset(now + Duration::from_secs(1));
        assert_eq!((o + t.interval - Duration::from_secs(1)).as_nanos() % t.interval.as_nanos(), o2.as_nanos());
    }
}
