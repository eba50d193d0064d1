//! The loop that scrapes one target every interval.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use tokio::sync::watch;

use crate::scrape::cache::ScrapeCache;
use crate::scrape::client::{Credentials, authorize};
use crate::scrape::ingest::{IngestOptions, ReportSeries, ScrapeCounts, ScrapeError, ingest, stale};
use crate::scrape::metadata::MetadataSet;
use crate::scrape::parse::Format;
use crate::scrape::target::{Health, Target};
use crate::tsdb::Db;

/// Formats we accept, best first, as Prometheus negotiates them.
const ACCEPT_HEADER: &str =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// What the targets of one scrape pool share.
pub struct PoolContext {
    pub db: Arc<Db>,
    pub client: reqwest::Client,
    pub credentials: Credentials,
    pub ingest: IngestOptions,
    /// 0 = unlimited.
    pub body_size_limit: u64,
    /// Set while the pool is over its target limit: every scrape fails with it.
    pub forced_error: Mutex<Option<ScrapeError>>,
}

/// How a loop ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The target went away: its series get staleness markers.
    Stale,
    /// A replacement loop continues the same series (reload) or the server is
    /// shutting down: no markers, so data continues seamlessly.
    Quiet,
}

/// When a new loop scrapes for the first time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstScrape {
    /// At the target's slot: targets known at startup (spread over the
    /// interval, so a restart does not hit every target at once) and loops
    /// that take over a running target's series on reload (no extra scrape).
    AtSlot,
    /// Right away, then at the slot: a target that appears later (a new pod,
    /// a new job) is seen without waiting up to a whole interval.
    Now,
}

fn now_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Scrapes `target` at its slot in every interval until told to stop; with
/// [`FirstScrape::Now`] also once right away, skipping a slot that would
/// follow within half an interval (no back-to-back scrapes).
pub async fn run(target: Arc<Target>, ctx: Arc<PoolContext>, mut stop: watch::Receiver<Option<Stop>>, first: FirstScrape) {
    let mut cache = ScrapeCache::default();
    let mut meta = MetadataSet::default();
    let mut report = ReportSeries::new(&target.labels);
    let mut body = Vec::new();
    let mut to_slot = target.offset(SystemTime::now());
    if first == FirstScrape::Now && to_slot < target.interval / 2 {
        to_slot += target.interval;
    }
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + to_slot, target.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut scrape_now = first == FirstScrape::Now;
    let how = loop {
        if !std::mem::take(&mut scrape_now) {
            tokio::select! {
                _ = tick.tick() => {}
                r = stop.changed() => break if r.is_ok() { (*stop.borrow()).unwrap_or(Stop::Quiet) } else { Stop::Quiet },
            }
        }
        let started = SystemTime::now();
        let clock = Instant::now();
        let t = now_ms(started);
        let forced = ctx.forced_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let fetched = match forced {
            Some(e) => Err(e),
            None => fetch(&ctx, &target, std::mem::take(&mut body)).await,
        };
        let result = match fetched {
            Ok((text, format)) => {
                let r = ingest(&ctx.db, &mut cache, &mut meta, &target.labels, &ctx.ingest, &text, format, t);
                body = text.into_bytes();
                r
            }
            Err(e) => Err(e),
        };
        let duration = clock.elapsed();
        let (up, counts) = match &result {
            Ok(c) => (true, *c),
            Err(_) => {
                if let Err(e) = stale(&ctx.db, &mut cache, t) {
                    tracing::error!(target = %target.url, error = %e, "writing staleness markers failed");
                }
                (false, ScrapeCounts::default())
            }
        };
        if let Err(e) = report.write(&ctx.db, t, up, duration.as_secs_f64(), counts) {
            tracing::error!(target = %target.url, error = %e, "writing scrape report failed");
        }
        let metadata = meta.families();
        target.set_status(|s| {
            s.health = if up { Health::Up } else { Health::Down };
            s.last_error = result.err().map(|e| e.to_string()).unwrap_or_default();
            s.last_scrape = Some(started);
            s.last_duration = duration;
            s.metadata = metadata;
        });
    };
    if how == Stop::Stale {
        let t = now_ms(SystemTime::now());
        let stored = stale(&ctx.db, &mut cache, t).and_then(|()| report.stale(&ctx.db, t));
        if let Err(e) = stored {
            tracing::error!(target = %target.url, error = %e, "writing staleness markers failed");
        }
    }
}

/// GETs the target within its timeout, enforcing the body size limit as
/// the (decompressed) body arrives. `buf` is reused between scrapes.
async fn fetch(ctx: &PoolContext, target: &Target, mut buf: Vec<u8>) -> Result<(String, Format), ScrapeError> {
    let timeout = target.timeout;
    let request = async {
        let req = authorize(ctx.client.get(&target.url), &ctx.credentials).map_err(ScrapeError::Http)?;
        let mut resp = req
            .header(ACCEPT, HeaderValue::from_static(ACCEPT_HEADER))
            .header("X-Prometheus-Scrape-Timeout-Seconds", format!("{}", timeout.as_secs_f64()))
            .send()
            .await
            .map_err(http_error)?;
        if !resp.status().is_success() {
            return Err(ScrapeError::Status(resp.status().to_string()));
        }
        let format =
            resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map_or(Format::PrometheusText, Format::from_content_type);
        buf.clear();
        while let Some(chunk) = resp.chunk().await.map_err(http_error)? {
            if ctx.body_size_limit > 0 && (buf.len() + chunk.len()) as u64 > ctx.body_size_limit {
                return Err(ScrapeError::BodyLimit(ctx.body_size_limit));
            }
            buf.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(buf).map_err(|_| ScrapeError::Utf8)?;
        Ok((text, format))
    };
    match tokio::time::timeout(timeout, request).await {
        Ok(r) => r,
        Err(_) => Err(ScrapeError::Timeout(timeout)),
    }
}

/// An HTTP client error with its causes, e.g. "error sending request: connection refused".
fn http_error(e: reqwest::Error) -> ScrapeError {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    ScrapeError::Http(msg)
}
