//! The server scraping its own metrics into its own storage, so that an
//! unconfigured `hearth server` has data to show from its first minute.
//!
//! It reads the registry in-process rather than over HTTP, and records the
//! same synthetic series a scrape does (`up`, `scrape_duration_seconds`,
//! `scrape_samples_scraped`) under `job="hearth"`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

use crate::model::{Labels, LabelsBuilder};
use crate::scrape::parse::{Entry, Format, parse_each};
use crate::tsdb::{Db, SeriesRef};
use crate::web::{WebState, encode_registry};

/// Counters about the self-scrape itself.
#[derive(Clone, Default)]
pub struct SelfScrapeMetrics {
    failures: Counter,
}

impl SelfScrapeMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register("hearth_self_scrape_failures", "Self-scrapes that failed to parse or store", self.failures.clone());
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Scrapes every `interval` until cancelled.
pub async fn run(db: Arc<Db>, state: Arc<WebState>, instance: String, interval: Duration, m: SelfScrapeMetrics) {
    let mut refs: HashMap<Labels, SeriesRef> = HashMap::new();
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        let started = Instant::now();
        let text = encode_registry(&state.registry);
        let t = now_ms();
        let target = |l: Labels| {
            let mut b = LabelsBuilder::from_labels(&l);
            b.set("job", "hearth").set("instance", instance.clone());
            b.build()
        };
        let mut samples = Vec::new();
        let parsed = parse_each(&text, Format::OpenMetrics, |e| {
            if let Entry::Sample { labels, value, .. } = e {
                samples.push((target(labels), value));
            }
        });
        if let Err(e) = &parsed {
            tracing::warn!(error = %e, "self-scrape could not parse own metrics");
            m.failures.inc();
        }
        let n = samples.len() as f64;
        let up = if parsed.is_ok() { 1.0 } else { 0.0 };
        let dur = started.elapsed().as_secs_f64();
        for (name, v) in [("up", up), ("scrape_duration_seconds", dur), ("scrape_samples_scraped", n)] {
            samples.push((target(Labels::from_pairs([("__name__", name)])), v));
        }
        let mut app = db.appender();
        for (l, v) in samples {
            match app.append(refs.get(&l).copied(), &l, t, v) {
                Ok(r) => {
                    refs.insert(l, r);
                }
                Err(e) => tracing::debug!(error = %e, series = %l, "self-scrape sample rejected"),
            }
        }
        if let Err(e) = app.commit() {
            tracing::error!(error = %e, "self-scrape commit failed");
            m.failures.inc();
        }
    }
}
