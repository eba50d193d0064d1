//! One running pod: its processes, restarts with backoff, termination,
//! and the Pod status that follows from them.
//!
//! The `Child` handles live in a shared map (`Procs`) so the agent's
//! `Drop` can kill everything even if its task is stuck or gone.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::pods::PodPlan;
use super::process::{Launch, signal, spawn};

/// Every process the agent started, keyed by `<pod uid>/<container>`.
pub type Procs = Arc<Mutex<HashMap<String, Child>>>;

/// Restart backoff doubles from 1 s up to this cap.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Upper bound on the grace period we honour, so tests stay fast.
pub const MAX_GRACE: Duration = Duration::from_secs(10);

struct ContainerState {
    started: Option<Value>,
    ever_started: bool,
    restarts: i32,
    /// Exit code and finish time of the last run.
    last_exit: Option<(i32, Value)>,
    /// When to (re)start; `None` = never again.
    next_start: Option<Instant>,
    ready: bool,
    last_probe: Option<Instant>,
    pid: Option<u32>,
}

pub struct PodRt {
    pub uid: String,
    pub name: String,
    pub namespace: String,
    pub ip: Ipv4Addr,
    pub plan: PodPlan,
    restart_policy: String,
    state: Vec<ContainerState>,
    start_time: Value,
    /// Kill deadline once deletion has begun.
    pub terminating: Option<Instant>,
    /// Condition type → (status, lastTransitionTime).
    transitions: HashMap<&'static str, (bool, Value)>,
    pub last_sent: Option<Value>,
}

fn now() -> Value {
    serde_json::to_value(Time(Timestamp::now())).unwrap_or(Value::Null)
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

impl PodRt {
    pub fn new(uid: String, name: String, namespace: String, ip: Ipv4Addr, plan: PodPlan, restart_policy: &str) -> PodRt {
        let state = plan
            .containers
            .iter()
            .map(|_| ContainerState {
                started: None,
                ever_started: false,
                restarts: 0,
                last_exit: None,
                next_start: Some(Instant::now()),
                ready: false,
                last_probe: None,
                pid: None,
            })
            .collect();
        PodRt {
            uid,
            name,
            namespace,
            ip,
            plan,
            restart_policy: restart_policy.to_string(),
            state,
            start_time: now(),
            terminating: None,
            transitions: HashMap::new(),
            last_sent: None,
        }
    }

    fn key(&self, i: usize) -> String {
        format!("{}/{}", self.uid, self.plan.containers[i].name)
    }

    /// Reaps exited processes, schedules restarts per restartPolicy, and
    /// starts what is due. Never blocks.
    pub fn tick(&mut self, procs: &Procs) {
        let mut map = procs.lock().unwrap_or_else(|p| p.into_inner());
        for i in 0..self.state.len() {
            let key = self.key(i);
            if let Some(child) = map.get_mut(&key)
                && let Ok(Some(status)) = child.try_wait()
            {
                map.remove(&key);
                let code = exit_code(status);
                let st = &mut self.state[i];
                st.last_exit = Some((code, now()));
                st.ready = false;
                st.pid = None;
                let again =
                    self.terminating.is_none() && (self.restart_policy == "Always" || (self.restart_policy == "OnFailure" && code != 0));
                let backoff = Duration::from_secs(1u64 << st.restarts.clamp(0, 4)).min(MAX_BACKOFF);
                st.next_start = again.then(|| Instant::now() + backoff);
            }
            let st = &mut self.state[i];
            let due = st.next_start.is_some_and(|t| t <= Instant::now());
            if !map.contains_key(&key) && due && self.terminating.is_none() {
                let c = &self.plan.containers[i];
                let launch =
                    Launch { binary: &c.binary, argv: c.argv.clone(), env: c.env.clone(), workdir: &self.plan.dir, log: c.log.clone() };
                match spawn(&launch) {
                    Ok(child) => {
                        st.pid = Some(child.id());
                        map.insert(key, child);
                        if st.ever_started {
                            st.restarts += 1;
                        }
                        st.ever_started = true;
                        st.started = Some(now());
                        st.next_start = None;
                        st.ready = c.probe.is_none();
                    }
                    Err(e) => {
                        eprintln!("node agent: {}/{}: {e}", self.namespace, self.name);
                        st.last_exit = Some((127, now()));
                        st.next_start = Some(Instant::now() + MAX_BACKOFF);
                    }
                }
            }
        }
    }

    /// Probe URLs due now, as (container index, url).
    pub fn probes_due(&mut self) -> Vec<(usize, String)> {
        let mut due = Vec::new();
        for (i, st) in self.state.iter_mut().enumerate() {
            let Some(p) = &self.plan.containers[i].probe else { continue };
            if st.pid.is_none() || st.last_probe.is_some_and(|t| t.elapsed() < p.period) {
                continue;
            }
            st.last_probe = Some(Instant::now());
            due.push((i, p.url.clone()));
        }
        due
    }

    pub fn set_ready(&mut self, i: usize, ready: bool) {
        if let Some(st) = self.state.get_mut(i) {
            st.ready = ready && st.pid.is_some();
        }
    }

    /// Sends SIGTERM to every process and sets the kill deadline.
    pub fn begin_termination(&mut self, procs: &Procs, grace: Duration) {
        if self.terminating.is_some() {
            return;
        }
        self.terminating = Some(Instant::now() + grace.min(MAX_GRACE));
        let mut map = procs.lock().unwrap_or_else(|p| p.into_inner());
        for i in 0..self.state.len() {
            if let Some(child) = map.get_mut(&self.key(i)) {
                signal(child, libc::SIGTERM);
            }
            self.state[i].next_start = None;
        }
    }

    /// True once every process is gone; SIGKILLs past the deadline.
    pub fn finish_termination(&mut self, procs: &Procs) -> bool {
        let past = self.terminating.is_some_and(|t| t <= Instant::now());
        let mut map = procs.lock().unwrap_or_else(|p| p.into_inner());
        let mut alive = false;
        for i in 0..self.state.len() {
            let key = self.key(i);
            if let Some(child) = map.get_mut(&key) {
                if past {
                    signal(child, libc::SIGKILL);
                    let _ = child.wait();
                } else if !matches!(child.try_wait(), Ok(Some(_))) {
                    alive = true;
                    continue;
                }
                map.remove(&key);
            }
        }
        !alive
    }

    /// Kills every process of this pod now (pod vanished, agent stopping).
    pub fn kill(&mut self, procs: &Procs) {
        self.terminating = Some(Instant::now());
        self.finish_termination(procs);
    }

    /// The status subresource body reflecting the processes now.
    pub fn status(&mut self) -> Value {
        let running = self.state.iter().any(|s| s.pid.is_some());
        let done = self.state.iter().all(|s| s.pid.is_none() && s.next_start.is_none() && s.last_exit.is_some());
        let phase = if running {
            "Running"
        } else if done && self.state.iter().all(|s| s.last_exit.as_ref().is_some_and(|(c, _)| *c == 0)) {
            "Succeeded"
        } else if done {
            "Failed"
        } else if self.state.iter().any(|s| s.ever_started) {
            "Running"
        } else {
            "Pending"
        };
        let all_ready = self.state.iter().all(|s| s.ready);
        let ready = all_ready && self.terminating.is_none();
        let mut conditions = Vec::new();
        for (t, ok) in [
            ("PodScheduled", true),
            ("PodReadyToStartContainers", true),
            ("Initialized", true),
            ("ContainersReady", all_ready),
            ("Ready", ready),
        ] {
            let entry = self.transitions.entry(t).or_insert_with(|| (ok, now()));
            if entry.0 != ok {
                *entry = (ok, now());
            }
            let s = if ok { "True" } else { "False" };
            conditions.push(json!({"type": t, "status": s, "lastTransitionTime": entry.1}));
        }
        let statuses: Vec<Value> =
            self.state.iter().zip(&self.plan.containers).map(|(s, c)| container_status(s, &c.name, &c.image)).collect();
        let ip = self.ip.to_string();
        json!({"status": {
            "phase": phase,
            "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
            "podIP": ip, "podIPs": [{"ip": ip}],
            "startTime": self.start_time,
            "conditions": conditions,
            "containerStatuses": statuses,
        }})
    }
}

fn container_status(s: &ContainerState, name: &str, image: &str) -> Value {
    let terminated = |(code, at): &(i32, Value)| {
        json!({"terminated": {"exitCode": code, "reason": if *code == 0 { "Completed" } else { "Error" },
                              "startedAt": s.started, "finishedAt": at}})
    };
    let (state, last) = match (s.pid, &s.last_exit) {
        (Some(_), last) => (json!({"running": {"startedAt": s.started}}), last.as_ref().map(terminated)),
        (None, Some(exit)) if s.next_start.is_some() => (json!({"waiting": {"reason": "CrashLoopBackOff"}}), Some(terminated(exit))),
        (None, Some(exit)) => (terminated(exit), None),
        (None, None) => (json!({"waiting": {"reason": "ContainerCreating"}}), None),
    };
    let mut v = json!({
        "name": name, "image": image, "imageID": image,
        "ready": s.ready, "started": s.pid.is_some(), "restartCount": s.restarts,
        "state": state,
    });
    if let Some(pid) = s.pid {
        v["containerID"] = json!(format!("hearth-e2e://{pid}"));
    }
    if let Some(last) = last {
        v["lastState"] = last;
    }
    v
}

/// Status for a pod that could not be started at all (e.g. no binary
/// for its image): Pending with the reason on every container.
pub fn unstartable_status(pod: &k8s_openapi::api::core::v1::Pod, why: &str) -> Value {
    let statuses: Vec<Value> = pod
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .map(|c| {
            json!({"name": c.name, "image": c.image, "imageID": "", "ready": false, "restartCount": 0,
                   "state": {"waiting": {"reason": "ErrImagePull", "message": why}}})
        })
        .collect();
    json!({"status": {"phase": "Pending", "hostIP": "127.0.0.1", "message": why, "containerStatuses": statuses}})
}
