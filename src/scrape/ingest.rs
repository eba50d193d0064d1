//! Turning one scrape body into appended samples: target labels, metric
//! relabeling, limits, the series cache and staleness markers.

use std::sync::Arc;

use crate::model::sample::stale_nan;
use crate::model::{Labels, LabelsBuilder};
use crate::relabel::Relabeler;
use crate::scrape::cache::ScrapeCache;
use crate::scrape::metadata::MetadataSet;
use crate::scrape::parse::{Entry, Format, ParseError, ScrapeSink, parse_scrape};
use crate::tsdb::{Appender, Db, SeriesRef};

/// Per-scrape-config settings that shape stored series.
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    /// 0 = no limit, as in Prometheus.
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub metric_relabel: Arc<Relabeler>,
}

/// Why a scrape failed; the text becomes the target's `lastError`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScrapeError {
    #[error("{0}")]
    Http(String),
    #[error("server returned HTTP status {0}")]
    Status(String),
    #[error("context deadline exceeded (scrape timeout {0:?})")]
    Timeout(std::time::Duration),
    #[error("body size limit exceeded: the response is larger than {0} bytes")]
    BodyLimit(u64),
    #[error("response is not valid UTF-8")]
    Utf8,
    #[error("parsing the response: {0}")]
    Parse(#[from] ParseError),
    #[error("sample limit exceeded: {scraped} samples after metric relabeling, limit {limit}")]
    SampleLimit { scraped: u64, limit: u64 },
    #[error("{0}")]
    LabelLimit(String),
    #[error("target_limit exceeded (number of targets: {targets}, limit: {limit})")]
    TargetLimit { targets: usize, limit: u64 },
    #[error("storage: {0}")]
    Storage(String),
}

/// What a successful scrape ingested, for the report series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrapeCounts {
    /// Samples in the body.
    pub scraped: u64,
    /// Samples left after metric relabeling.
    pub post_relabel: u64,
    /// Series not seen in recent scrapes of this target.
    pub added: u64,
}

/// Parses `body` and appends its samples at `t` (ms) for a target with
/// labels `target`. Nothing is stored when the scrape fails (limits, parse
/// errors); the caller then writes staleness markers via [`stale`].
#[allow(clippy::too_many_arguments)]
pub fn ingest(
    db: &Db,
    cache: &mut ScrapeCache,
    meta: &mut MetadataSet,
    target: &Labels,
    opts: &IngestOptions,
    body: &str,
    format: Format,
    t: i64,
) -> Result<ScrapeCounts, ScrapeError> {
    cache.begin();
    meta.begin();
    let mut sink = Sink { app: db.appender(), cache, meta, target, opts, t, counts: ScrapeCounts::default(), err: None };
    let parsed = parse_scrape(body, format, &mut sink);
    let Sink { app, cache, meta, counts, err, .. } = sink;
    if let Err(e) = parsed {
        return Err(e.into());
    }
    if let Some(e) = err {
        return Err(e);
    }
    if opts.sample_limit > 0 && counts.post_relabel > opts.sample_limit {
        return Err(ScrapeError::SampleLimit { scraped: counts.post_relabel, limit: opts.sample_limit });
    }
    let mut app = app;
    for sref in cache.commit() {
        let _ = app.append_ref(sref, t, stale_nan());
    }
    app.commit().map_err(|e| ScrapeError::Storage(e.to_string()))?;
    meta.commit();
    Ok(counts)
}

/// Writes staleness markers at `t` for every series the target's last
/// successful scrape produced: after a failed scrape, or when the target goes away.
pub fn stale(db: &Db, cache: &mut ScrapeCache, t: i64) -> Result<(), ScrapeError> {
    let gone = cache.fail();
    if gone.is_empty() {
        return Ok(());
    }
    let mut app = db.appender();
    for sref in gone {
        let _ = app.append_ref(sref, t, stale_nan());
    }
    app.commit().map(|_| ()).map_err(|e| ScrapeError::Storage(e.to_string()))
}

/// Receives parsed lines and appends them.
struct Sink<'a> {
    app: Appender<'a>,
    cache: &'a mut ScrapeCache,
    meta: &'a mut MetadataSet,
    target: &'a Labels,
    opts: &'a IngestOptions,
    t: i64,
    counts: ScrapeCounts,
    /// First limit violation; the scrape fails once parsing ends.
    err: Option<ScrapeError>,
}

impl Sink<'_> {
    fn timestamp(&self, ts: Option<i64>) -> i64 {
        match ts {
            Some(ts) if self.opts.honor_timestamps => ts,
            _ => self.t,
        }
    }
}

impl ScrapeSink for Sink<'_> {
    fn known_sample(&mut self, series: &str, ts: Option<i64>, value: f64) -> bool {
        self.counts.scraped += 1;
        let t = self.timestamp(ts);
        let key = self.cache.key(series);
        if let Some(e) = self.cache.get_mut(key) {
            // Out-of-order and duplicate samples are counted by storage and
            // skipped, as Prometheus does; they do not fail the scrape.
            match self.app.append_ref(e.sref, t, value) {
                Ok(Some(r)) => e.sref = r,
                // Storage dropped the series: resolve the line again.
                Ok(None) => {
                    self.counts.scraped -= 1;
                    return false;
                }
                Err(_) => {}
            }
            self.counts.post_relabel += 1;
            return true;
        }
        if self.cache.is_dropped(key) {
            return true;
        }
        self.counts.scraped -= 1;
        false
    }

    fn new_sample(&mut self, series: &str, labels: Labels, empty: &[String], ts: Option<i64>, value: f64) {
        self.counts.scraped += 1;
        let mutated = target_labels(labels, empty, self.target, self.opts.honor_labels);
        let Some(labels) = (if self.opts.metric_relabel.is_empty() { Some(mutated) } else { self.opts.metric_relabel.process(&mutated) })
        else {
            self.cache.insert_dropped(series);
            return;
        };
        if labels.is_empty() || labels.metric_name().is_empty() {
            self.cache.insert_dropped(series);
            return;
        }
        if self.err.is_none()
            && let Err(e) = check_label_limits(&labels, self.opts)
        {
            self.err = Some(e);
        }
        self.counts.post_relabel += 1;
        self.counts.added += 1;
        let t = self.timestamp(ts);
        // A rejected sample (out of order, duplicate) leaves the text
        // uncached; it is resolved again next time.
        if let Ok(sref) = self.app.append(None, &labels, t, value) {
            self.cache.insert(series, sref, ts.is_some() && self.opts.honor_timestamps);
        }
    }

    fn metadata(&mut self, entry: Entry) {
        self.meta.add(entry);
    }
}

/// Attaches the target's labels to a scraped series (Prometheus'
/// `mutateSampleLabels`). With `honor_labels` scraped values win; otherwise
/// target labels win and a clashing scraped label is kept as
/// `exported_<name>` (prefixed again while that name is taken too).
/// `empty` names labels the exposition set to "": with `honor_labels` they
/// keep the target's label off the series, as in Prometheus.
pub fn target_labels(scraped: Labels, empty: &[String], target: &Labels, honor_labels: bool) -> Labels {
    if target.is_empty() {
        return scraped;
    }
    let mut b = LabelsBuilder::from_labels(&scraped);
    if honor_labels {
        for l in target {
            if scraped.get(&l.name).is_empty() && !empty.contains(&l.name) {
                b.set(l.name.clone(), l.value.clone());
            }
        }
        return b.build();
    }
    let mut clashes = Vec::new();
    for l in target {
        let existing = scraped.get(&l.name);
        if !existing.is_empty() {
            clashes.push((l.name.clone(), existing.to_string()));
        }
        b.set(l.name.clone(), l.value.clone());
    }
    for (name, value) in clashes {
        let mut exported = format!("exported_{name}");
        while !scraped.get(&exported).is_empty() || !target.get(&exported).is_empty() || !b.get(&exported).is_empty() {
            exported.insert_str(0, "exported_");
        }
        b.set(exported, value);
    }
    b.build()
}

/// Prometheus' label limits, checked after relabeling; a violation fails the scrape.
fn check_label_limits(labels: &Labels, o: &IngestOptions) -> Result<(), ScrapeError> {
    let metric: String = labels.metric_name().chars().take(50).collect();
    if o.label_limit > 0 && labels.len() as u64 > o.label_limit {
        return Err(ScrapeError::LabelLimit(format!(
            "label_limit exceeded (metric: {metric}, number of labels: {}, limit: {})",
            labels.len(),
            o.label_limit
        )));
    }
    for l in labels {
        if o.label_name_length_limit > 0 && l.name.len() as u64 > o.label_name_length_limit {
            let name: String = l.name.chars().take(50).collect();
            return Err(ScrapeError::LabelLimit(format!(
                "label_name_length_limit exceeded (metric: {metric}, label name: {name}, length: {}, limit: {})",
                l.name.len(),
                o.label_name_length_limit
            )));
        }
        if o.label_value_length_limit > 0 && l.value.len() as u64 > o.label_value_length_limit {
            let value: String = l.value.chars().take(50).collect();
            return Err(ScrapeError::LabelLimit(format!(
                "label_value_length_limit exceeded (metric: {metric}, label value: {value}, length: {}, limit: {})",
                l.value.len(),
                o.label_value_length_limit
            )));
        }
    }
    Ok(())
}

/// The series Prometheus records about each scrape, under the target's labels.
pub struct ReportSeries {
    labels: [Labels; 5],
    refs: [Option<SeriesRef>; 5],
}

/// Names of the report series, in [`ReportSeries`] order.
pub const REPORT_NAMES: [&str; 5] =
    ["up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling", "scrape_series_added"];

impl ReportSeries {
    pub fn new(target: &Labels) -> ReportSeries {
        let labels = REPORT_NAMES.map(|n| {
            let mut b = LabelsBuilder::from_labels(target);
            b.set("__name__", n);
            b.build()
        });
        ReportSeries { labels, refs: [None; 5] }
    }

    /// Appends the report of one scrape at `t` (ms).
    pub fn write(&mut self, db: &Db, t: i64, up: bool, duration_s: f64, c: ScrapeCounts) -> Result<(), ScrapeError> {
        let values = [f64::from(u8::from(up)), duration_s, c.scraped as f64, c.post_relabel as f64, c.added as f64];
        self.append_all(db, t, values)
    }

    /// Marks the report series stale (the target went away).
    pub fn stale(&mut self, db: &Db, t: i64) -> Result<(), ScrapeError> {
        self.append_all(db, t, [stale_nan(); 5])
    }

    fn append_all(&mut self, db: &Db, t: i64, values: [f64; 5]) -> Result<(), ScrapeError> {
        let mut app = db.appender();
        for ((sref, labels), v) in self.refs.iter_mut().zip(&self.labels).zip(values) {
            if let Ok(r) = app.append(*sref, labels, t, v) {
                *sref = Some(r);
            }
        }
        app.commit().map(|_| ()).map_err(|e| ScrapeError::Storage(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn target_labels_win_and_clashes_become_exported() {
        let scraped = ls(&[("__name__", "m"), ("job", "inner"), ("exported_job", "x")]);
        let target = ls(&[("job", "outer"), ("instance", "h:1")]);
        let got = target_labels(scraped, &[], &target, false);
        assert_eq!(
            got,
            ls(&[("__name__", "m"), ("job", "outer"), ("instance", "h:1"), ("exported_job", "x"), ("exported_exported_job", "inner")])
        );
    }

    #[test]
    fn honor_labels_keeps_scraped_values() {
        let scraped = ls(&[("__name__", "m"), ("job", "batch")]);
        let target = ls(&[("job", "pushgateway"), ("instance", "pg:9091")]);
        let got = target_labels(scraped.clone(), &[], &target, true);
        assert_eq!(got, ls(&[("__name__", "m"), ("job", "batch"), ("instance", "pg:9091")]));
        // An explicitly empty scraped label wins too: the series has no instance.
        let got = target_labels(scraped, &["instance".to_string()], &target, true);
        assert_eq!(got, ls(&[("__name__", "m"), ("job", "batch")]));
    }

    #[test]
    fn label_limits_name_the_metric_and_limit() {
        let l = ls(&[("__name__", "m"), ("a", "1"), ("b", "long value")]);
        let o = IngestOptions { label_limit: 2, ..Default::default() };
        let e = check_label_limits(&l, &o).unwrap_err().to_string();
        assert_eq!(e, "label_limit exceeded (metric: m, number of labels: 3, limit: 2)");
        let o = IngestOptions { label_value_length_limit: 5, ..Default::default() };
        assert!(check_label_limits(&l, &o).unwrap_err().to_string().contains("label value: long value, length: 10, limit: 5"));
        assert!(check_label_limits(&l, &IngestOptions::default()).is_ok());
    }
}
