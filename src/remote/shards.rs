//! The sending side of a queue: shards that batch samples and POST them.
//!
//! Every sample of a series goes to the same shard (by WAL series id), and
//! a shard sends its samples in the order it got them, one request at a
//! time, so a receiver sees each series in time order. A shard sends when
//! it has `max_samples_per_send` samples, or when its oldest buffered
//! sample has waited `batch_send_deadline`. Failed sends are retried with
//! exponential backoff (`min_backoff` doubling up to `max_backoff`, or the
//! server's `Retry-After`) until they succeed or fail non-recoverably.
//!
//! Delivery is reported per WAL record through [`Ticket`]s so the queue can
//! save the position of what was delivered; the number of samples buffered
//! across shards is bounded by a [`Budget`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::client::{SendError, WriteClient};
use super::codec;
use super::metrics::QueueMetrics;

/// A sample on its way out.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingSample {
    /// The series' outgoing labels, encoded ([`codec::encode_labels`]) and
    /// shared by all its samples.
    pub series: Arc<[u8]>,
    pub t: i64,
    pub v: f64,
}

/// Counts the shard messages of one WAL record still undelivered.
#[derive(Debug, Default)]
pub struct Ticket {
    remaining: AtomicUsize,
}

impl Ticket {
    /// A ticket awaiting `parts` messages.
    pub fn new(parts: usize) -> Arc<Ticket> {
        Arc::new(Ticket { remaining: AtomicUsize::new(parts) })
    }

    pub fn is_done(&self) -> bool {
        self.remaining.load(Ordering::Acquire) == 0
    }

    fn part_done(&self) {
        self.remaining.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Samples for one shard from one WAL record.
pub struct Message {
    pub samples: Vec<PendingSample>,
    pub ticket: Arc<Ticket>,
}

/// Bounds the samples read from the WAL but not yet delivered (Prometheus'
/// `capacity` per shard): the WAL reader waits while the queue is full.
#[derive(Default)]
pub struct Budget {
    pending: Mutex<usize>,
    freed: Condvar,
}

impl Budget {
    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `n` samples' room, waiting while `limit` are pending (a queue
    /// with nothing pending always admits, so one large record fits).
    /// Returns false if `stop` says to give up.
    pub fn acquire(&self, n: usize, limit: impl Fn() -> usize, stop: impl Fn() -> bool) -> bool {
        let mut p = self.lock();
        while *p > 0 && *p + n > limit() {
            if stop() {
                return false;
            }
            p = self.freed.wait_timeout(p, Duration::from_millis(100)).unwrap_or_else(|e| e.into_inner()).0;
        }
        *p += n;
        true
    }

    pub fn release(&self, n: usize) {
        let mut p = self.lock();
        *p = p.saturating_sub(n);
        self.freed.notify_all();
    }

    pub fn pending(&self) -> usize {
        *self.lock()
    }
}

/// What shards report for the queue's shard calculation.
#[derive(Default)]
pub struct SendStats {
    /// Samples delivered (sent or failed for good).
    pub samples_out: AtomicU64,
    /// Time spent in successful sends, in nanoseconds.
    pub send_nanos: AtomicU64,
    /// Newest sample timestamp sent (ms).
    pub highest_sent_ms: AtomicI64,
    /// When the last send succeeded (ms since the queue's start, at least 1), or 0.
    pub last_ok_ms: AtomicI64,
}

/// What every shard of a queue shares.
pub struct ShardContext {
    pub client: WriteClient,
    pub max_samples_per_send: usize,
    pub batch_send_deadline: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub metrics: QueueMetrics,
    pub budget: Arc<Budget>,
    pub stats: Arc<SendStats>,
    pub started: Instant,
    pub name: String,
}

/// A running generation of shards.
pub struct ShardSet {
    senders: Vec<mpsc::UnboundedSender<Message>>,
    handles: Vec<JoinHandle<()>>,
}

impl ShardSet {
    /// Starts `n` shards that begin sending once `go` turns true (after the
    /// previous generation has delivered everything it had, which keeps
    /// each series in order across a reshard).
    pub fn start(n: usize, ctx: &Arc<ShardContext>, go: watch::Receiver<bool>, abort: &watch::Receiver<bool>) -> ShardSet {
        let mut senders = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for _ in 0..n.max(1) {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.push(tx);
            let shard = Shard::new(ctx.clone(), abort.clone());
            handles.push(tokio::spawn(shard.run(rx, go.clone())));
        }
        ShardSet { senders, handles }
    }

    /// No shards (while a stopping queue delivers what its last ones hold).
    pub fn empty() -> ShardSet {
        ShardSet { senders: Vec::new(), handles: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.senders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }

    /// The shard of a series.
    pub fn shard_of(&self, series: u32) -> usize {
        series as usize % self.senders.len().max(1)
    }

    /// Hands a message to shard `k`; false if the shard is gone (stopping).
    pub fn send(&self, k: usize, m: Message) -> bool {
        self.senders.get(k).is_some_and(|s| s.send(m).is_ok())
    }

    /// Closes the inputs; the shards deliver what they have and end.
    /// Returns their handles.
    pub fn close(self) -> Vec<JoinHandle<()>> {
        drop(self.senders);
        self.handles
    }
}

/// One shard's loop state.
struct Shard {
    ctx: Arc<ShardContext>,
    abort: watch::Receiver<bool>,
    buf: VecDeque<PendingSample>,
    /// Tickets of the buffered samples, with how many of each are still buffered.
    tickets: VecDeque<(Arc<Ticket>, usize)>,
    scratch: Vec<u8>,
}

impl Shard {
    fn new(ctx: Arc<ShardContext>, abort: watch::Receiver<bool>) -> Shard {
        Shard { ctx, abort, buf: VecDeque::new(), tickets: VecDeque::new(), scratch: Vec::new() }
    }

    fn aborted(&self) -> bool {
        *self.abort.borrow()
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Message>, mut go: watch::Receiver<bool>) {
        let mut abort = self.abort.clone();
        tokio::select! {
            _ = until_true(&mut go) => {}
            _ = until_true(&mut abort) => return self.drop_all(),
        }
        let max = self.ctx.max_samples_per_send.max(1);
        let mut oldest: Option<tokio::time::Instant> = None;
        loop {
            let deadline = oldest.map(|t| t + self.ctx.batch_send_deadline);
            tokio::select! {
                biased;
                _ = until_true(&mut abort) => return self.drop_all(),
                m = rx.recv() => match m {
                    Some(m) => {
                        if self.buf.is_empty() {
                            oldest = Some(tokio::time::Instant::now());
                        }
                        self.tickets.push_back((m.ticket, m.samples.len()));
                        self.buf.extend(m.samples);
                        while self.buf.len() >= max {
                            if !self.send_front(max).await {
                                return self.drop_all();
                            }
                            oldest = (!self.buf.is_empty()).then(tokio::time::Instant::now);
                        }
                    }
                    None => {
                        while !self.buf.is_empty() {
                            if !self.send_front(max.min(self.buf.len())).await {
                                return self.drop_all();
                            }
                        }
                        return;
                    }
                },
                _ = sleep_until(deadline), if deadline.is_some() => {
                    let n = max.min(self.buf.len());
                    if !self.send_front(n).await {
                        return self.drop_all();
                    }
                    oldest = (!self.buf.is_empty()).then(tokio::time::Instant::now);
                }
            }
        }
    }

    /// Gives back the budget of what will never be sent (the queue is stopping).
    fn drop_all(&mut self) {
        self.ctx.budget.release(self.buf.len());
        self.ctx.metrics.samples_pending.set(self.ctx.budget.pending() as i64);
        self.buf.clear();
        self.tickets.clear();
    }

    /// Sends the first `n` buffered samples until delivered; false if the
    /// queue was stopped meanwhile (they stay undelivered).
    async fn send_front(&mut self, n: usize) -> bool {
        if n == 0 {
            return true;
        }
        let max_t = encode_batch(self.buf.range(..n), &mut self.scratch);
        let body = codec::compress(&self.scratch);
        let ctx = self.ctx.clone();
        let m = &ctx.metrics;
        let mut backoff = ctx.min_backoff;
        loop {
            m.samples_total.inc_by(n as u64);
            m.bytes_total.inc_by(body.len() as u64);
            let start = Instant::now();
            let res = tokio::select! {
                r = ctx.client.send(body.clone()) => r,
                _ = until_true(&mut self.abort) => return false,
            };
            match res {
                Ok(()) => {
                    let took = start.elapsed();
                    m.sent_batch_duration.observe(took.as_secs_f64());
                    ctx.stats.send_nanos.fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
                    ctx.stats.last_ok_ms.store((ctx.started.elapsed().as_millis() as i64).max(1), Ordering::Relaxed);
                    let prev = ctx.stats.highest_sent_ms.fetch_max(max_t, Ordering::Relaxed);
                    m.highest_sent.set(prev.max(max_t) as f64 / 1000.0);
                    break;
                }
                Err(SendError::Recoverable { msg, retry_after }) => {
                    m.samples_retried.inc_by(n as u64);
                    let wait = retry_after.unwrap_or(backoff);
                    tracing::warn!(remote_name = %ctx.name, samples = n, retry_in = ?wait, error = %msg, "failed to send batch, retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = until_true(&mut self.abort) => return false,
                    }
                    if retry_after.is_none() {
                        backoff = (backoff * 2).min(ctx.max_backoff);
                    }
                }
                Err(SendError::NonRecoverable { msg }) => {
                    m.samples_failed.inc_by(n as u64);
                    tracing::error!(remote_name = %ctx.name, samples = n, error = %msg, "non-recoverable error; dropping batch");
                    break;
                }
            }
        }
        self.complete(n);
        !self.aborted()
    }

    /// Removes `n` delivered samples from the front and settles their tickets.
    fn complete(&mut self, n: usize) {
        self.buf.drain(..n);
        let mut left = n;
        while left > 0 {
            let Some(front) = self.tickets.front_mut() else { break };
            let take = front.1.min(left);
            front.1 -= take;
            left -= take;
            if front.1 == 0 {
                front.0.part_done();
                self.tickets.pop_front();
            }
        }
        // Messages without samples are settled as soon as they reach the front.
        while self.tickets.front().is_some_and(|t| t.1 == 0) {
            if let Some((t, _)) = self.tickets.pop_front() {
                t.part_done();
            }
        }
        self.ctx.stats.samples_out.fetch_add(n as u64, Ordering::Relaxed);
        self.ctx.budget.release(n);
        self.ctx.metrics.samples_pending.set(self.ctx.budget.pending() as i64);
    }
}

/// Resolves once the flag is true (or its sender is gone).
async fn until_true(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Serializes a run of samples into `raw` as one `WriteRequest`: a
/// `TimeSeries` per series, its samples in the order given. Returns the
/// newest timestamp.
pub fn encode_batch<'a>(samples: impl Iterator<Item = &'a PendingSample>, raw: &mut Vec<u8>) -> i64 {
    let run: Vec<&PendingSample> = samples.collect();
    let key = |i: usize| Arc::as_ptr(&run[i].series).cast::<u8>() as usize;
    // A stable sort keeps each series' samples in order.
    let mut order: Vec<usize> = (0..run.len()).collect();
    order.sort_by_key(|&i| key(i));
    raw.clear();
    let mut points: Vec<(i64, f64)> = Vec::new();
    for group in order.chunk_by(|&a, &b| key(a) == key(b)) {
        points.clear();
        points.extend(group.iter().map(|&i| (run[i].t, run[i].v)));
        codec::put_timeseries(raw, &run[group[0]].series, &points);
    }
    run.iter().map(|s| s.t).max().unwrap_or(i64::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Labels;

    fn sample(series: &Arc<[u8]>, t: i64) -> PendingSample {
        PendingSample { series: series.clone(), t, v: t as f64 }
    }

    #[test]
    fn a_request_groups_samples_by_series_in_order() {
        let enc = |name: &str| -> Arc<[u8]> { codec::encode_labels(&Labels::from_pairs([("__name__", name)])).into() };
        let (a, b) = (enc("a"), enc("b"));
        let run = [sample(&a, 1), sample(&b, 1), sample(&a, 2), sample(&b, 2), sample(&a, 3)];
        let mut raw = Vec::new();
        assert_eq!(encode_batch(run.iter(), &mut raw), 3);
        let req = codec::decode(&codec::compress(&raw)).expect("decodes");
        let mut got: Vec<(String, Vec<i64>)> =
            req.timeseries.iter().map(|s| (s.labels[0].value.clone(), s.samples.iter().map(|x| x.timestamp).collect())).collect();
        got.sort();
        assert_eq!(got, vec![("a".to_string(), vec![1, 2, 3]), ("b".to_string(), vec![1, 2])]);
    }

    #[test]
    fn budget_blocks_a_full_queue_until_room_is_freed() {
        let budget = Arc::new(Budget::default());
        assert!(budget.acquire(8, || 10, || false));
        let b = budget.clone();
        let waiter = std::thread::spawn(move || b.acquire(5, || 10, || false));
        std::thread::sleep(Duration::from_millis(150));
        assert!(!waiter.is_finished(), "13 would exceed 10");
        budget.release(8);
        assert!(waiter.join().expect("join"));
        assert_eq!(budget.pending(), 5);
        assert!(!budget.acquire(20, || 10, || true), "gives up when told to stop");
    }
}
