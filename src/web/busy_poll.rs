//! Busy-polling for the next request after an answer (`--web.busy-poll`).
//!
//! A serving thread that sleeps between requests must be woken for the
//! next one; on a virtual machine whose idle CPUs halt, that wake-up costs
//! more than a small query itself. So after answering, a serving thread
//! keeps checking its sockets for a while before it sleeps, as Go's
//! scheduler does and as the kernel's `haltpoll` idle governor does for a
//! whole CPU. How long adapts to the gaps it sees between an answer and
//! the next request on that thread: it grows while a longer poll would
//! have caught the next request and halves each time polling was in vain,
//! so an idle or sparsely used server does not poll at all and a busy one
//! only fills gaps it has seen. Polling yields the CPU to any other thread
//! that wants it on every round.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::Notify;

/// `--web.busy-poll`, and the counter of time spent polling, which explains
/// the CPU time it takes.
#[derive(Clone, Default)]
pub struct BusyPollOptions {
    /// The longest a window may grow; zero disables polling.
    pub max: Duration,
    /// `hearth_http_busy_poll_seconds_total`.
    pub polled_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
}

/// The shortest poll worth starting; a window that halves below it stops.
const MIN_WINDOW: Duration = Duration::from_micros(20);

/// One serving thread's poller: its middleware sees requests start and
/// end, its [`BusyPoll::run`] task polls in the gaps.
pub struct BusyPoll {
    options: BusyPollOptions,
    state: Mutex<PollState>,
    answered: Notify,
}

#[derive(Default)]
struct PollState {
    /// How long the next gap is polled for.
    window: Duration,
    /// Requests of this thread being answered.
    in_flight: usize,
    /// When the last request in flight was answered, until the next starts.
    idle_since: Option<Instant>,
}

impl BusyPoll {
    /// A poller whose window never exceeds `options.max` (zero: never polls).
    pub fn new(options: BusyPollOptions) -> Arc<Self> {
        Arc::new(BusyPoll { options, state: Mutex::default(), answered: Notify::new() })
    }

    fn state(&self) -> MutexGuard<'_, PollState> {
        // The state stays consistent even if a holder panicked: every
        // update is a plain store.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn started(&self) {
        let mut s = self.state();
        s.in_flight += 1;
        if let Some(idle) = s.idle_since.take() {
            s.window = next_window(s.window, idle.elapsed(), self.options.max);
        }
    }

    fn ended(&self) {
        let mut s = self.state();
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.in_flight == 0 {
            s.idle_since = Some(Instant::now());
            if !s.window.is_zero() {
                self.answered.notify_one();
            }
        }
    }

    /// Whether the thread should keep polling: no request is being
    /// answered and the last answer is younger than the window.
    fn polling(&self) -> bool {
        let s = self.state();
        s.in_flight == 0 && s.idle_since.is_some_and(|t| t.elapsed() < s.window)
    }

    /// Polls the thread's sockets in the gaps after answers; runs on the
    /// serving thread's own runtime for as long as it serves. Each round
    /// lets the runtime check its sockets without sleeping (a yielded task
    /// makes it poll with a zero timeout) and first offers the CPU to other
    /// threads, so polling only takes time nobody else wants.
    pub async fn run(self: Arc<Self>) {
        if self.options.max.is_zero() {
            return;
        }
        loop {
            self.answered.notified().await;
            let start = Instant::now();
            while self.polling() {
                std::thread::yield_now();
                tokio::task::yield_now().await;
            }
            self.options.polled_seconds.inc_by(start.elapsed().as_secs_f64());
        }
    }
}

/// The window after a gap of `gap` between an answer and the next request:
/// kept when polling caught the request, grown (to twice the gap, at most
/// `max`) when a longer poll would have, halved when the gap was longer
/// than any poll may be.
fn next_window(window: Duration, gap: Duration, max: Duration) -> Duration {
    if gap <= window {
        window
    } else if gap <= max {
        (gap * 2).min(max)
    } else {
        let half = window / 2;
        if half < MIN_WINDOW { Duration::ZERO } else { half }
    }
}

/// Middleware telling the thread's poller when requests start and end (also
/// when a request is dropped unanswered, e.g. its client went away).
pub async fn track(State(poll): State<Arc<BusyPoll>>, request: Request, next: Next) -> Response {
    struct InFlight(Arc<BusyPoll>);
    impl Drop for InFlight {
        fn drop(&mut self) {
            self.0.ended();
        }
    }
    poll.started();
    let _in_flight = InFlight(poll);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_millis(1);

    #[test]
    fn the_window_grows_to_cover_gaps_a_poll_could_catch_and_shrinks_to_zero_otherwise() {
        let us = Duration::from_micros;
        assert_eq!(next_window(Duration::ZERO, us(300), MAX), us(600), "a gap under the maximum: grow to twice it");
        assert_eq!(next_window(us(600), us(700), MAX), MAX, "growth stops at the maximum");
        assert_eq!(next_window(us(600), us(100), MAX), us(600), "a caught request keeps the window");
        let mut w = MAX;
        let mut halvings = 0;
        while !w.is_zero() {
            w = next_window(w, Duration::from_secs(1), MAX);
            halvings += 1;
            assert!(halvings < 10, "long gaps end polling in a few steps");
        }
        assert_eq!(next_window(Duration::ZERO, Duration::from_secs(1), MAX), Duration::ZERO);
        assert_eq!(next_window(Duration::ZERO, us(1), Duration::ZERO), Duration::ZERO, "a zero maximum never polls");
    }

    #[test]
    fn polling_follows_requests_in_flight_and_the_window() {
        let poll = BusyPoll::new(BusyPollOptions { max: Duration::from_secs(60), ..Default::default() });
        assert!(!poll.polling(), "nothing answered yet");
        poll.started();
        poll.ended();
        assert!(!poll.polling(), "no window before a gap was seen");
        poll.started();
        assert!(poll.state().window > Duration::ZERO, "a short gap opens a window");
        poll.state().window = Duration::from_secs(60);
        assert!(!poll.polling(), "no polling while a request is answered");
        poll.started();
        poll.ended();
        assert!(!poll.polling(), "one of two requests still in flight");
        poll.ended();
        assert!(poll.polling(), "polling after the last answer, within the window");
    }
}
