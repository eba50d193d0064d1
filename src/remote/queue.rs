//! One remote-write queue: a WAL reader thread feeding shards, and a
//! control task that saves the delivered position and reshards.
//!
//! The reader turns series records into outgoing labels once (external
//! labels added where the series lacks them, then `write_relabel_configs`,
//! as Prometheus orders them) and hands each sample to the shard of its
//! series. Every 10 s the control task recomputes the shard count from the
//! rate of samples coming in against the throughput of sending, roughly as
//! Prometheus does ([`desired_shards`]), within `min_shards..=max_shards`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle as ThreadHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::client::WriteClient;
use super::codec;
use super::metrics::QueueMetrics;
use super::shards::{Budget, Message, PendingSample, SendStats, ShardContext, ShardSet, Ticket};
use super::watcher::{self, Event, Position, PositionFile, Progress, Tail};
use crate::config::RemoteWriteConfig;
use crate::model::{Labels, LabelsBuilder};
use crate::relabel::Relabeler;
use crate::tsdb::wal::hold::SegmentHold;

/// How often the delivered position is saved.
const SAVE_EVERY: Duration = Duration::from_secs(1);
/// How often the shard count is reconsidered (Prometheus' `shardUpdateDuration`).
const RESHARD_EVERY: Duration = Duration::from_secs(10);
/// Weight of the newest interval in the smoothed rates.
const EWMA_WEIGHT: f64 = 0.2;
/// How long the reader sleeps once it has caught up with the WAL.
const TAIL_POLL: Duration = Duration::from_millis(50);
/// Bytes of WAL the reader handles between checks of its stop flag.
const READ_BUDGET: usize = 1 << 20;
/// Longest a stopping queue keeps trying to deliver what it holds; the
/// rest is sent after the next start, from the saved position.
const FLUSH_DEADLINE: Duration = Duration::from_secs(10);

/// Why a queue could not start.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("remote_write {name:?}: {msg}")]
    Config { name: String, msg: String },
    #[error("remote_write {name:?}: reading the WAL in {dir}: {source}")]
    Wal { name: String, dir: String, source: std::io::Error },
}

/// What a queue is started from; equal settings mean an unchanged queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSettings {
    pub name: String,
    pub config: RemoteWriteConfig,
    pub external_labels: BTreeMap<String, String>,
}

/// Samples read but not yet delivered, per WAL record, in WAL order.
struct Tracker {
    /// Just after the last record read.
    read: Position,
    /// Records with samples in flight, and where each starts.
    inflight: VecDeque<(Arc<Ticket>, Position)>,
}

impl Tracker {
    /// Where everything before is delivered: the start of the oldest record
    /// still in flight, else the read position.
    fn delivered(&mut self) -> Position {
        while self.inflight.front().is_some_and(|(t, _)| t.is_done()) {
            self.inflight.pop_front();
        }
        self.inflight.front().map_or(self.read, |(_, p)| *p)
    }
}

/// What the reader, the control task and `stop` share.
struct Shared {
    settings: QueueSettings,
    ctx: Arc<ShardContext>,
    shards: RwLock<ShardSet>,
    tracker: Mutex<Tracker>,
    stop: AtomicBool,
    hold: Arc<SegmentHold>,
    position: PositionFile,
    relabel: Relabeler,
    /// Samples read from the WAL (for the shard calculation).
    samples_in: AtomicU64,
    /// Newest sample timestamp read (ms).
    highest_in_ms: AtomicI64,
}

/// A running queue.
pub struct Queue {
    shared: Arc<Shared>,
    abort: watch::Sender<bool>,
    reader: Option<ThreadHandle<()>>,
    control: JoinHandle<()>,
}

impl Queue {
    /// Starts reading the WAL from the saved position (or its end, for a new
    /// queue) and sending. Must run inside a Tokio runtime.
    pub fn start(settings: QueueSettings, data_dir: &Path, hold: Arc<SegmentHold>, metrics: QueueMetrics) -> Result<Queue, QueueError> {
        let name = settings.name.clone();
        let cfg = &settings.config;
        let config_err = |msg: String| QueueError::Config { name: name.clone(), msg };
        let client = WriteClient::new(cfg).map_err(config_err)?;
        let relabel = Relabeler::new(&cfg.write_relabel_configs).map_err(|e| config_err(format!("write_relabel_configs: {e}")))?;
        let wal_err = |source| QueueError::Wal { name: name.clone(), dir: hold.wal_dir().display().to_string(), source };
        let position = PositionFile::new(data_dir, &name);
        let start = match position.load() {
            Some(p) => p,
            None => watcher::wal_end(&hold).map_err(wal_err)?,
        };
        // Before anything can checkpoint: keep what this queue has yet to send.
        hold.set_need(&name, start.segment);
        let q = &cfg.queue_config;
        let (min_shards, max_shards) = (q.min_shards.max(1) as usize, q.max_shards.max(1) as usize);
        metrics.shards_min.set(min_shards as i64);
        metrics.shards_max.set(max_shards as i64);
        metrics.shard_capacity.set(q.capacity as i64);
        metrics.max_samples_per_send.set(q.max_samples_per_send as i64);
        metrics.shards.set(min_shards as i64);
        metrics.shards_desired.set(min_shards as f64);
        let ctx = Arc::new(ShardContext {
            client,
            max_samples_per_send: q.max_samples_per_send.max(1) as usize,
            batch_send_deadline: q.batch_send_deadline,
            min_backoff: q.min_backoff,
            max_backoff: q.max_backoff.max(q.min_backoff),
            metrics,
            budget: Arc::new(Budget::default()),
            stats: Arc::new(SendStats::default()),
            started: Instant::now(),
            name: name.clone(),
        });
        let (abort, abort_rx) = watch::channel(false);
        let (_, go) = watch::channel(true);
        let shards = ShardSet::start(min_shards, &ctx, go, &abort_rx);
        let shared = Arc::new(Shared {
            settings,
            ctx,
            shards: RwLock::new(shards),
            tracker: Mutex::new(Tracker { read: start, inflight: VecDeque::new() }),
            stop: AtomicBool::new(false),
            hold,
            position,
            relabel,
            samples_in: AtomicU64::new(0),
            highest_in_ms: AtomicI64::new(i64::MIN),
        });
        let reader = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("remote-write-{name}"))
                .spawn(move || read_wal(&shared, start))
                .map_err(|e| config_err(format!("cannot start the WAL reader thread: {e}")))?
        };
        let control = tokio::spawn(control_loop(shared.clone(), abort_rx, min_shards, max_shards));
        tracing::info!(remote_name = %name, url = %shared.settings.config.url, segment = start.segment, offset = start.offset, "remote write queue started");
        Ok(Queue { shared, abort, reader: Some(reader), control })
    }

    pub fn settings(&self) -> &QueueSettings {
        &self.shared.settings
    }

    /// Where everything before has been delivered.
    pub fn delivered(&self) -> Position {
        lock(&self.shared.tracker).delivered()
    }

    /// Stops reading, delivers what is buffered (for up to
    /// [`FLUSH_DEADLINE`]) and saves the delivered position.
    pub async fn stop(mut self) {
        let s = self.shared.clone();
        s.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = tokio::task::spawn_blocking(move || r.join()).await;
        }
        self.control.abort();
        let _ = (&mut self.control).await;
        let handles = {
            let mut shards = s.shards.write().unwrap_or_else(|p| p.into_inner());
            std::mem::replace(&mut *shards, ShardSet::empty()).close()
        };
        let flush = futures::future::join_all(handles);
        tokio::pin!(flush);
        if tokio::time::timeout(FLUSH_DEADLINE, &mut flush).await.is_err() {
            tracing::warn!(remote_name = %s.settings.name, "remote write queue did not deliver everything before stopping; the rest is sent after the next start");
        }
        let _ = self.abort.send(true);
        flush.await;
        save_position(&s);
        tracing::info!(remote_name = %s.settings.name, "remote write queue stopped");
    }
}

impl Drop for Queue {
    /// A queue dropped without [`Queue::stop`] still ends its reader and shards.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        let _ = self.abort.send(true);
        self.control.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Saves the delivered position and lets the WAL drop segments before it.
fn save_position(s: &Shared) -> Position {
    let pos = lock(&s.tracker).delivered();
    if let Err(e) = s.position.store(pos) {
        tracing::error!(remote_name = %s.settings.name, file = %s.position.path().display(), error = %e, "cannot save the remote write position");
    }
    s.hold.set_need(&s.settings.name, pos.segment);
    pos
}

/// A series' encoded outgoing labels (None: relabelled away) and the segment of its record.
struct SeriesEntry {
    labels: Option<Arc<[u8]>>,
    segment: u32,
}

/// The reader thread: WAL records to shard messages until stopped.
fn read_wal(s: &Shared, start: Position) {
    let mut series: HashMap<u32, SeriesEntry> = HashMap::new();
    let external: Vec<(String, String)> = s.settings.external_labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let outgoing = |l: Labels| outgoing_labels(&l, &external, &s.relabel).map(|l| Arc::from(codec::encode_labels(&l)));
    if let Err(e) = watcher::load_series(&s.hold, start, |id, l, segment| {
        series.insert(id, SeriesEntry { labels: outgoing(l), segment });
    }) {
        tracing::error!(remote_name = %s.settings.name, error = %e, "reading series from the WAL");
    }
    let mut tail = Tail::new(s.hold.clone(), start);
    let mut batch: Vec<(u32, PendingSample)> = Vec::new();
    let m = &s.ctx.metrics;
    while !s.stop.load(Ordering::Relaxed) {
        let mut stopped = false;
        let res = tail.poll(READ_BUDGET, |event, after| {
            if stopped {
                return;
            }
            match event {
                Event::Series(id, l, segment) => {
                    series.insert(id, SeriesEntry { labels: outgoing(l), segment });
                }
                Event::Checkpoint { upto, live } => series.retain(|id, e| e.segment > upto || live.contains(id)),
                Event::Samples(samples) => {
                    batch.clear();
                    let mut dropped = 0u64;
                    for x in samples {
                        match series.get(&x.id).and_then(|e| e.labels.as_ref()) {
                            Some(l) => batch.push((x.id, PendingSample { series: l.clone(), t: x.t, v: x.v })),
                            None => dropped += 1,
                        }
                    }
                    m.samples_in.inc_by(samples.len() as u64);
                    m.samples_dropped.inc_by(dropped);
                    s.samples_in.fetch_add(samples.len() as u64, Ordering::Relaxed);
                    if let Some(max_t) = samples.iter().map(|x| x.t).max() {
                        let prev = s.highest_in_ms.fetch_max(max_t, Ordering::Relaxed);
                        m.highest_timestamp_in.set(prev.max(max_t) as f64 / 1000.0);
                    }
                    if !batch.is_empty() && !enqueue(s, &mut batch, after) {
                        stopped = true;
                        return;
                    }
                }
            }
            if batch.is_empty() {
                lock(&s.tracker).read = after;
            }
            batch.clear();
        });
        m.watcher_segment.set(i64::from(tail.position().segment));
        match res {
            Ok(Progress::More) => {}
            Ok(Progress::CaughtUp) => std::thread::sleep(TAIL_POLL),
            Err(e) => {
                tracing::error!(remote_name = %s.settings.name, error = %e, "reading the WAL; retrying");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// Waits for room, then hands the samples of one record to their shards.
/// False when the queue is stopping.
fn enqueue(s: &Shared, batch: &mut Vec<(u32, PendingSample)>, after: Position) -> bool {
    let cap = s.settings.config.queue_config.capacity.max(1) as usize;
    let limit = || cap * s.shards.read().unwrap_or_else(|p| p.into_inner()).len().max(1);
    if !s.ctx.budget.acquire(batch.len(), limit, || s.stop.load(Ordering::Relaxed)) {
        return false;
    }
    s.ctx.metrics.samples_pending.set(s.ctx.budget.pending() as i64);
    let shards = s.shards.read().unwrap_or_else(|p| p.into_inner());
    let mut parts: Vec<Vec<PendingSample>> = (0..shards.len()).map(|_| Vec::new()).collect();
    for (id, x) in batch.drain(..) {
        parts[shards.shard_of(id)].push(x);
    }
    let ticket = Ticket::new(parts.iter().filter(|p| !p.is_empty()).count());
    {
        let mut t = lock(&s.tracker);
        let begin = t.read;
        t.inflight.push_back((ticket.clone(), begin));
        t.read = after;
    }
    for (k, samples) in parts.into_iter().enumerate().filter(|(_, p)| !p.is_empty()) {
        shards.send(k, Message { samples, ticket: ticket.clone() });
    }
    true
}

/// External labels the series lacks, then write relabeling; None if dropped.
pub fn outgoing_labels(l: &Labels, external: &[(String, String)], relabel: &Relabeler) -> Option<Labels> {
    let with_external = if external.iter().all(|(k, _)| l.has(k)) {
        l.clone()
    } else {
        let mut b = LabelsBuilder::from_labels(l);
        for (k, v) in external.iter().filter(|(k, _)| !l.has(k)) {
            b.set(k.clone(), v.clone());
        }
        b.build()
    };
    let out = if relabel.is_empty() { Some(with_external) } else { relabel.process(&with_external) };
    out.filter(|l| !l.is_empty())
}

/// Smoothed rates for the shard calculation.
#[derive(Debug, Default, Clone, Copy)]
pub struct Rates {
    /// Samples per second read from the WAL.
    pub samples_in: f64,
    /// Samples per second delivered.
    pub samples_out: f64,
    /// Seconds of sending per second.
    pub send_seconds: f64,
}

impl Rates {
    fn update(&mut self, first: bool, now: Rates) {
        let mix = |old: f64, new: f64| if first { new } else { EWMA_WEIGHT * new + (1.0 - EWMA_WEIGHT) * old };
        self.samples_in = mix(self.samples_in, now.samples_in);
        self.samples_out = mix(self.samples_out, now.samples_out);
        self.send_seconds = mix(self.send_seconds, now.send_seconds);
    }
}

/// The shard count wanted: enough shards for the incoming rate plus a
/// catch-up share (5% per interval) of the backlog, given how long a sample
/// takes to send. A change within 30% of `current` is not worth a reshard.
/// Returns the raw estimate and the count to run.
pub fn desired_shards(r: &Rates, behind_seconds: f64, current: usize, min: usize, max: usize) -> (f64, usize) {
    if r.samples_out <= 0.0 {
        return (current as f64, current.clamp(min, max));
    }
    let time_per_sample = r.send_seconds / r.samples_out;
    let backlog = behind_seconds.max(0.0) * r.samples_in;
    let desired = time_per_sample * (r.samples_in + 0.05 * backlog);
    let (lower, upper) = (current as f64 * 0.7, current as f64 * 1.3);
    let n = if desired > lower && desired < upper { current } else { desired.ceil() as usize };
    (desired, n.clamp(min, max))
}

/// Saves the position every second; reshards every 10 s.
async fn control_loop(s: Arc<Shared>, abort: watch::Receiver<bool>, min: usize, max: usize) {
    let mut tick = tokio::time::interval(SAVE_EVERY);
    let mut last_saved = None;
    let mut rates = Rates::default();
    let mut first = true;
    let (mut prev_in, mut prev_out, mut prev_nanos) = (0u64, 0u64, 0u64);
    let mut last_reshard = Instant::now();
    loop {
        tick.tick().await;
        let pos = lock(&s.tracker).delivered();
        if last_saved != Some(pos) {
            // The save syncs a file: off the async workers.
            let s2 = s.clone();
            let _ = tokio::task::spawn_blocking(move || save_position(&s2)).await;
            last_saved = Some(pos);
        }
        if last_reshard.elapsed() < RESHARD_EVERY {
            continue;
        }
        let secs = last_reshard.elapsed().as_secs_f64();
        last_reshard = Instant::now();
        let (i, o, n) = (
            s.samples_in.load(Ordering::Relaxed),
            s.ctx.stats.samples_out.load(Ordering::Relaxed),
            s.ctx.stats.send_nanos.load(Ordering::Relaxed),
        );
        let now = Rates {
            samples_in: (i - prev_in) as f64 / secs,
            samples_out: (o - prev_out) as f64 / secs,
            send_seconds: (n - prev_nanos) as f64 / 1e9 / secs,
        };
        (prev_in, prev_out, prev_nanos) = (i, o, n);
        rates.update(first, now);
        first = false;
        let (hi_in, hi_sent) = (s.highest_in_ms.load(Ordering::Relaxed), s.ctx.stats.highest_sent_ms.load(Ordering::Relaxed));
        let behind = if hi_in > 0 && hi_sent > 0 { (hi_in - hi_sent) as f64 / 1000.0 } else { 0.0 };
        let current = s.shards.read().unwrap_or_else(|p| p.into_inner()).len();
        let (desired, want) = desired_shards(&rates, behind, current, min, max);
        s.ctx.metrics.shards_desired.set(desired);
        // Resharding waits for the old shards to deliver: not while sends fail.
        let last_ok = s.ctx.stats.last_ok_ms.load(Ordering::Relaxed);
        let healthy = last_ok > 0
            && s.ctx.started.elapsed().as_millis() as i64 - last_ok
                < 2 * s.settings.config.queue_config.batch_send_deadline.as_millis() as i64 + 1000;
        if want != current && healthy {
            tracing::info!(remote_name = %s.settings.name, from = current, to = want, "remote write resharding");
            reshard(&s, want, &abort);
        }
    }
}

/// Replaces the shards with `n` new ones that start once the old ones have
/// delivered what they hold.
fn reshard(s: &Shared, n: usize, abort: &watch::Receiver<bool>) {
    let (go_tx, go) = watch::channel(false);
    let old = {
        let mut shards = s.shards.write().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *shards, ShardSet::start(n, &s.ctx, go, abort))
    };
    s.ctx.metrics.shards.set(n as i64);
    let handles = old.close();
    tokio::spawn(async move {
        futures::future::join_all(handles).await;
        let _ = go_tx.send(true);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relabel::RelabelConfig;

    use super::super::metrics::RemoteMetrics;
    use super::super::test_sink::Sink;
    use crate::config::Config;
    use crate::tsdb::metrics::TsdbMetrics;
    use crate::tsdb::{Db, Options};

    fn settings(url: &str, extra: &str) -> QueueSettings {
        let yaml = format!(
            "remote_write:\n  - url: {url}\n    queue_config:\n      max_samples_per_send: 10\n      batch_send_deadline: 100ms\n      min_shards: 3\n      max_shards: 3\n      min_backoff: 10ms\n      max_backoff: 50ms\n{extra}"
        );
        let config = Config::parse(&yaml, Path::new("/")).expect("config").remote_write.remove(0);
        QueueSettings { name: "t".into(), config, external_labels: BTreeMap::from([("cluster".to_string(), "eu".to_string())]) }
    }

    fn series(i: usize) -> Labels {
        Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())])
    }

    /// Appends timestamps `ts` (seconds) for series 0..5, one commit per timestamp.
    fn append(db: &Db, ts: std::ops::RangeInclusive<i64>) {
        for t in ts {
            let mut app = db.appender();
            for i in 0..5 {
                app.append(None, &series(i), t * 1000, t as f64).expect("append");
            }
            app.commit().expect("commit");
        }
    }

    async fn wait_for_samples(sink: &Sink, n: usize) {
        for _ in 0..200 {
            if sink.samples() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} of {n} samples arrived in 10 s", sink.samples());
    }

    /// Per series (by label `i`), the timestamps in arrival order.
    fn arrivals(sink: &Sink) -> BTreeMap<String, Vec<i64>> {
        let mut out: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for req in &sink.lock().accepted {
            for ts in &req.timeseries {
                let i = ts.labels.iter().find(|l| l.name == "i").map(|l| l.value.clone()).unwrap_or_default();
                out.entry(i).or_default().extend(ts.samples.iter().map(|s| s.timestamp));
            }
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_sample_arrives_once_in_order_in_bounded_batches_across_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), Options::default(), TsdbMetrics::default()).expect("open");
        let sink = Sink::start().await;
        sink.lock().script.extend([(503, Some("0")), (500, None)]);
        let metrics = RemoteMetrics::default().queue("t", &sink.url);
        let auth = "    basic_auth:\n      username: u\n      password: p\n";
        let q = Queue::start(settings(&sink.url, auth), dir.path(), db.wal_hold().clone(), metrics.clone()).expect("start");
        append(&db, 1..=40);
        wait_for_samples(&sink, 200).await;
        let want: Vec<i64> = (1..=40).map(|t| t * 1000).collect();
        assert!(arrivals(&sink).values().all(|ts| *ts == want), "each series complete, once, in order: {:?}", arrivals(&sink));
        {
            let st = sink.lock();
            for req in &st.accepted {
                assert!(req.timeseries.iter().map(|t| t.samples.len()).sum::<usize>() <= 10, "max_samples_per_send");
                for ts in &req.timeseries {
                    let names: Vec<&str> = ts.labels.iter().map(|l| l.name.as_str()).collect();
                    assert_eq!(names, ["__name__", "cluster", "i"], "sorted, with the external label");
                }
            }
            let h = &st.headers[0];
            assert_eq!(h["content-encoding"], "snappy");
            assert_eq!(h["content-type"], "application/x-protobuf");
            assert_eq!(h["x-prometheus-remote-write-version"], "0.1.0");
            assert!(h["user-agent"].to_str().is_ok_and(|u| u.starts_with("Hearth/")));
            assert_eq!(h["authorization"], "Basic dTpw", "basic auth from the remote_write entry");
        }
        assert!(metrics.samples_retried.get() >= 2, "two scripted 5xx answers were retried");
        q.stop().await;

        // Written while stopped and after: exactly those arrive after the restart.
        append(&db, 41..=45);
        let q = Queue::start(settings(&sink.url, auth), dir.path(), db.wal_hold().clone(), metrics).expect("restart");
        append(&db, 46..=50);
        wait_for_samples(&sink, 250).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let want: Vec<i64> = (1..=50).map(|t| t * 1000).collect();
        assert!(arrivals(&sink).values().all(|ts| *ts == want), "no loss, no repeat: {:?}", arrivals(&sink));
        q.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn client_errors_drop_batches_and_relabeled_series_are_not_sent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path(), Options::default(), TsdbMetrics::default()).expect("open");
        let sink = Sink::start().await;
        sink.lock().script.extend([(400, None), (429, Some("0"))]);
        let metrics = RemoteMetrics::default().queue("t", &sink.url);
        let drop_first = "    write_relabel_configs:\n      - source_labels: [i]\n        regex: \"0\"\n        action: drop\n";
        let q = Queue::start(settings(&sink.url, drop_first), dir.path(), db.wal_hold().clone(), metrics.clone()).expect("start");
        append(&db, 1..=20);
        for _ in 0..200 {
            if sink.samples() as u64 + metrics.samples_failed.get() >= 80 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(metrics.samples_dropped.get(), 20, "series i=0 relabelled away");
        assert!(metrics.samples_failed.get() > 0, "400 and 429 (retry_on_http_429 off) drop their batch");
        assert_eq!(metrics.samples_retried.get(), 0);
        assert_eq!(sink.samples() as u64 + metrics.samples_failed.get(), 80);
        assert!(!arrivals(&sink).contains_key("0"));
        q.stop().await;
    }

    #[test]
    fn external_labels_fill_gaps_and_relabeling_can_drop() {
        let ext = vec![("cluster".to_string(), "eu".to_string()), ("job".to_string(), "ext".to_string())];
        let drop_debug: Vec<RelabelConfig> =
            serde_saphyr::from_str("- source_labels: [__name__]\n  regex: debug_.*\n  action: drop\n").expect("yaml");
        let r = Relabeler::new(&drop_debug).expect("relabeler");
        let up = Labels::from_pairs([("__name__", "up"), ("job", "node")]);
        let got = outgoing_labels(&up, &ext, &r).expect("kept");
        assert_eq!(got, Labels::from_pairs([("__name__", "up"), ("job", "node"), ("cluster", "eu")]), "the series' own job wins");
        assert_eq!(outgoing_labels(&Labels::from_pairs([("__name__", "debug_x")]), &ext, &r), None);
    }

    #[test]
    fn shards_follow_the_incoming_rate_against_send_throughput() {
        // 10k samples/s in, each send-second delivers 2k samples: 5 shards.
        let r = Rates { samples_in: 10_000.0, samples_out: 10_000.0, send_seconds: 5.0 };
        assert_eq!(desired_shards(&r, 0.0, 1, 1, 200), (5.0, 5));
        // Within 30% of the current count: keep it.
        assert_eq!(desired_shards(&r, 0.0, 6, 1, 200).1, 6);
        // A backlog asks for more; the maximum caps it.
        assert_eq!(desired_shards(&r, 60.0, 5, 1, 200).1, 20);
        assert_eq!(desired_shards(&r, 60.0, 5, 1, 8).1, 8);
        // Nothing delivered yet: no basis to change.
        assert_eq!(desired_shards(&Rates::default(), 0.0, 3, 1, 10).1, 3);
    }

    #[test]
    fn delivered_position_stops_at_the_oldest_undelivered_record() {
        let p = |o| Position { segment: 1, offset: o };
        let mut t =
            Tracker { read: p(40), inflight: VecDeque::from([(Ticket::new(0), p(10)), (Ticket::new(1), p(20)), (Ticket::new(0), p(30))]) };
        assert_eq!(t.delivered(), p(20), "the first record is delivered, the second is not");
        assert_eq!(t.inflight.len(), 2);
        let mut t = Tracker { read: p(40), inflight: VecDeque::from([(Ticket::new(0), p(10))]) };
        assert_eq!(t.delivered(), p(40), "all delivered: up to what was read");
    }
}
