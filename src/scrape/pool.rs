//! A scrape pool: the targets of one scrape config, kept in step with
//! discovery, one loop per target.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::discovery::{Discovery, Groups, TargetGroup};
use crate::model::Labels;
use crate::relabel::Relabeler;
use crate::scrape::ingest::ScrapeError;
use crate::scrape::scrape_loop::{self, FirstScrape, PoolContext, Stop};
use crate::scrape::target::{Populated, Target, TargetDefaults, populate};

/// A running target loop.
struct Running {
    target: Arc<Target>,
    stop: watch::Sender<Option<Stop>>,
    task: JoinHandle<()>,
}

/// The pool's current view, shared with the targets API.
#[derive(Default)]
struct PoolState {
    running: HashMap<u64, Running>,
    /// Discovered label sets that relabeling dropped.
    dropped: Vec<Labels>,
    /// What each discovered group (by source) turned into at the last sync.
    groups: HashMap<String, GroupResult>,
}

/// The outcome of relabeling one target group, kept so that an update
/// touching one group of thousands (one pod changed) relabels only that one.
struct GroupResult {
    /// The group itself: the same pointer means unchanged without hashing.
    group: Arc<TargetGroup>,
    /// Hash of the group's content: unchanged means the same targets.
    hash: u64,
    keys: Vec<u64>,
    dropped: Vec<Labels>,
}

/// A content hash of a target group.
fn group_hash(g: &TargetGroup) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut put = |s: &str| {
        h.update(s.as_bytes());
        h.update(&[0xff]);
    };
    for (k, v) in &g.labels {
        put(k);
        put(v);
    }
    for t in &g.targets {
        put("\u{0}target");
        for (k, v) in t {
            put(k);
            put(v);
        }
    }
    h.digest()
}

/// What the pool needs to (re)build its targets.
#[derive(Debug, Clone)]
pub struct PoolSpec {
    pub name: String,
    pub defaults: TargetDefaults,
    pub relabel: Arc<Relabeler>,
    /// 0 = unlimited.
    pub target_limit: u64,
}

/// A new configuration for a running pool.
pub struct Reload {
    pub spec: PoolSpec,
    pub ctx: Arc<PoolContext>,
    /// New discovery, when its configuration changed.
    pub discovery: Option<(Discovery, watch::Receiver<Arc<Groups>>)>,
}

/// One scrape config's targets and loops.
pub struct ScrapePool {
    state: Arc<Mutex<PoolState>>,
    reload: tokio::sync::mpsc::UnboundedSender<Reload>,
    task: JoinHandle<()>,
}

impl ScrapePool {
    /// Starts following the groups `discovery` publishes. With `startup`
    /// (a pool the server starts with) the targets of discovery's first view
    /// keep their slots in the interval; otherwise, and for every target
    /// appearing later, a target's first scrape is immediate.
    pub fn start(
        spec: PoolSpec,
        ctx: Arc<PoolContext>,
        discovery: Discovery,
        groups: watch::Receiver<Arc<Groups>>,
        startup: bool,
    ) -> ScrapePool {
        let state = Arc::new(Mutex::new(PoolState::default()));
        let (reload, reloads) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(follow(Generation { spec, ctx, _discovery: discovery, groups }, state.clone(), reloads, startup));
        ScrapePool { state, reload, task }
    }

    /// Switches to a new configuration. Loops restart with it; targets that
    /// keep their labels continue their series without staleness markers.
    pub fn reload(&self, r: Reload) {
        let _ = self.reload.send(r);
    }

    /// Active targets, in label order.
    pub fn active(&self) -> Vec<Arc<Target>> {
        let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = st.running.values().map(|r| r.target.clone()).collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }

    /// Discovered label sets relabeling dropped.
    pub fn dropped(&self) -> Vec<Labels> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).dropped.clone()
    }

    /// Stops every loop. With [`Stop::Stale`] their series are marked stale.
    pub async fn stop(self, how: Stop) {
        self.task.abort();
        let _ = self.task.await;
        let running: Vec<Running> = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.running.drain().map(|(_, r)| r).collect()
        };
        stop_all(running.into_iter().map(|r| (r, how)).collect()).await;
    }
}

/// The configuration a pool currently runs with.
struct Generation {
    spec: PoolSpec,
    ctx: Arc<PoolContext>,
    /// Kept alive while in use; dropping it stops its providers.
    _discovery: Discovery,
    groups: watch::Receiver<Arc<Groups>>,
}

async fn stop_all(loops: Vec<(Running, Stop)>) {
    for (r, how) in &loops {
        let _ = r.stop.send(Some(*how));
    }
    for (r, _) in loops {
        if tokio::time::timeout(Duration::from_secs(30), r.task).await.is_err() {
            tracing::warn!(target = %r.target.url, "scrape loop did not stop in time");
        }
    }
}

/// Applies every discovery update and reload to the running loops.
/// `startup`: see [`ScrapePool::start`].
async fn follow(mut g: Generation, state: Arc<Mutex<PoolState>>, mut reloads: tokio::sync::mpsc::UnboundedReceiver<Reload>, startup: bool) {
    let mut restart = false;
    // Until discovery's first view is synced, new targets keep their slots.
    let mut initial = startup;
    // Whether the view about to be synced was published by discovery (the
    // channel's initial value is an empty placeholder).
    let mut published = g.groups.has_changed().unwrap_or(false);
    loop {
        let current = g.groups.borrow_and_update().clone();
        let first = if initial { FirstScrape::AtSlot } else { FirstScrape::Now };
        initial &= !published;
        let stopped = sync(&g.spec, &g.ctx, &state, &current, restart, first);
        stop_all(stopped).await;
        restart = false;
        tokio::select! {
            changed = g.groups.changed() => {
                if changed.is_err() {
                    return;
                }
                published = true;
            }
            r = reloads.recv() => {
                let Some(r) = r else { return };
                g.spec = r.spec;
                g.ctx = r.ctx;
                if let Some((d, groups)) = r.discovery {
                    g._discovery = d;
                    g.groups = groups;
                    published = g.groups.has_changed().unwrap_or(false);
                }
                restart = true;
            }
        }
    }
}

/// Turns groups into targets, starts loops for new ones and returns the
/// loops to stop: targets that are gone (stale), and with `restart` every
/// other running loop (quietly, when a new loop continues its series).
/// New targets scrape first as `first` says, except that a loop taking over
/// a running target's series keeps its slot.
fn sync(
    spec: &PoolSpec,
    ctx: &Arc<PoolContext>,
    state: &Mutex<PoolState>,
    groups: &[Arc<TargetGroup>],
    restart: bool,
    first: FirstScrape,
) -> Vec<(Running, Stop)> {
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    if restart {
        st.groups.clear();
    }
    let mut wanted: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let mut fresh: HashMap<u64, Target> = HashMap::new();
    let mut results: HashMap<String, GroupResult> = HashMap::with_capacity(groups.len());
    for g in groups {
        let prev = st.groups.remove(&g.source);
        let hash = match &prev {
            Some(p) if Arc::ptr_eq(&p.group, g) => p.hash,
            _ => group_hash(g),
        };
        if let Some(prev) = prev
            && prev.hash == hash
        {
            wanted.extend(&prev.keys);
            results.insert(g.source.clone(), prev);
            continue;
        }
        let mut r = GroupResult { group: g.clone(), hash, keys: Vec::new(), dropped: Vec::new() };
        for t in &g.targets {
            let mut labels = g.labels.clone();
            labels.extend(t.iter().map(|(k, v)| (k.clone(), v.clone())));
            match populate(&labels, &spec.defaults, &spec.relabel) {
                Ok(Populated::Target(t)) => {
                    let key = t.key();
                    r.keys.push(key);
                    wanted.insert(key);
                    fresh.entry(key).or_insert(t);
                }
                Ok(Populated::Dropped(l)) => r.dropped.push(l),
                Err(e) => tracing::warn!(pool = %spec.name, source = %g.source, error = %e, "creating target failed"),
            }
        }
        results.insert(g.source.clone(), r);
    }
    st.groups = results;
    st.dropped = st.groups.values().flat_map(|r| r.dropped.iter().cloned()).collect();
    let over = spec.target_limit > 0 && wanted.len() as u64 > spec.target_limit;
    *ctx.forced_error.lock().unwrap_or_else(|p| p.into_inner()) =
        over.then_some(ScrapeError::TargetLimit { targets: wanted.len(), limit: spec.target_limit });
    // Series that continue: a target leaving with the same labels as a new one hands over quietly.
    let series: std::collections::HashSet<Labels> = wanted
        .iter()
        .filter_map(|k| fresh.get(k).map(|t| t.labels.clone()).or_else(|| st.running.get(k).map(|r| r.target.labels.clone())))
        .collect();
    let continuing: std::collections::HashSet<u64> = if fresh.is_empty() || first == FirstScrape::AtSlot {
        Default::default()
    } else {
        let running: std::collections::HashSet<&Labels> = st.running.values().map(|r| &r.target.labels).collect();
        fresh.iter().filter(|(_, t)| running.contains(&t.labels)).map(|(k, _)| *k).collect()
    };
    let leaving: Vec<u64> = st.running.keys().filter(|k| restart || !wanted.contains(k)).copied().collect();
    let mut stopped = Vec::new();
    for k in leaving {
        if let Some(r) = st.running.remove(&k) {
            let how = if series.contains(&r.target.labels) { Stop::Quiet } else { Stop::Stale };
            stopped.push((r, how));
        }
    }
    for key in wanted {
        if st.running.contains_key(&key) {
            continue;
        }
        // Keys of unchanged groups are running already; only fresh ones start.
        let Some(t) = fresh.remove(&key) else { continue };
        let target = Arc::new(t);
        let (stop, rx) = watch::channel(None);
        let first = if continuing.contains(&key) { FirstScrape::AtSlot } else { first };
        let task = tokio::spawn(scrape_loop::run(target.clone(), ctx.clone(), rx, first));
        st.running.insert(key, Running { target, stop, task });
    }
    stopped
}
