//! Serving the HTTP surface: one single-threaded runtime per core, all
//! accepting from the same listening socket. A connection stays on the
//! thread that accepted it, so a request is read, answered and written by
//! one thread. On tokio's shared multi-threaded runtime each request also
//! woke a second worker to look for work to steal; for a small query those
//! wake-ups cost more than the query itself. Work that may block (large
//! queries, snapshots, remote-write batches) still goes to a blocking pool.

use std::io;
use std::net::TcpListener as StdListener;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use tokio::sync::{mpsc, watch};

use super::busy_poll::{self, BusyPoll, BusyPollOptions};
use super::webconfig::{TlsListener, WebSecurity};

/// How long stopping waits for requests still running on blocking threads
/// (remote-write appends, snapshots) before leaving them behind.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The serving threads. [`HttpServer::stop`] ends them and waits; dropping
/// the server (a start-up step after it failed) ends them without waiting.
pub struct HttpServer {
    stop: watch::Sender<bool>,
    failed: mpsc::UnboundedReceiver<io::Error>,
    threads: Vec<JoinHandle<()>>,
}

impl HttpServer {
    /// Serves `app` on `listener` from `threads` threads (at least one);
    /// TLS when `security` says so, with the certificates current at each
    /// handshake. After an answer each thread may poll for its next request
    /// (see [`busy_poll`]).
    pub fn start(
        listener: StdListener,
        app: Router,
        security: Arc<WebSecurity>,
        threads: usize,
        busy_poll: &BusyPollOptions,
    ) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let (stop, stop_rx) = watch::channel(false);
        let (failed_tx, failed) = mpsc::unbounded_channel();
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let listener = listener.try_clone()?;
            let (app, security, mut stop_rx, failed_tx) = (app.clone(), security.clone(), stop_rx.clone(), failed_tx.clone());
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let poll = BusyPoll::new(busy_poll.clone());
            let app = app.layer(axum::middleware::from_fn_with_state(poll.clone(), busy_poll::track));
            let thread = std::thread::Builder::new().name(format!("hearth-http-{i}")).spawn(move || {
                let served = rt.block_on(async move {
                    tokio::spawn(poll.run());
                    tokio::select! {
                        r = serve(listener, app, security) => r,
                        _ = stop_rx.wait_for(|stopped| *stopped) => Ok(()),
                    }
                });
                if let Err(e) = served {
                    let _ = failed_tx.send(e);
                }
                rt.shutdown_timeout(STOP_GRACE);
            })?;
            handles.push(thread);
        }
        Ok(HttpServer { stop, failed, threads: handles })
    }

    /// Resolves with the error of the first serving thread that failed.
    pub async fn failed(&mut self) -> io::Error {
        match self.failed.recv().await {
            Some(e) => e,
            None => std::future::pending().await,
        }
    }

    /// Stops accepting, drops open connections and waits for the threads
    /// (each gives requests running on blocking threads [`STOP_GRACE`]).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || threads.into_iter().for_each(|t| drop(t.join()))).await;
    }
}

/// One thread's serving loop over its copy of the listening socket.
async fn serve(listener: StdListener, app: Router, security: Arc<WebSecurity>) -> io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    if security.tls_enabled() { axum::serve(TlsListener::new(listener, security)?, app).await } else { axum::serve(listener, app).await }
}

/// Serving threads for this machine: one per core the process may use.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Sends `GET /thread` on `conn` and returns the answer's body.
    async fn thread_name(conn: &mut tokio::net::TcpStream) -> String {
        conn.write_all(b"GET /thread HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("send");
        let mut buf = Vec::new();
        loop {
            let mut chunk = [0u8; 1024];
            let n = conn.read(&mut chunk).await.expect("read");
            assert!(n > 0, "connection closed early");
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf);
            if let Some((_, body)) = text.split_once("\r\n\r\n")
                && body.ends_with('\n')
            {
                return body.trim().to_string();
            }
        }
    }

    #[tokio::test]
    async fn each_connection_is_served_by_one_serving_thread_until_stopped() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new().route("/thread", get(|| async { format!("{}\n", std::thread::current().name().unwrap_or_default()) }));
        let server = HttpServer::start(listener, app, WebSecurity::none(), 2, &BusyPollOptions::default()).expect("start");
        let mut conns = Vec::new();
        for _ in 0..4 {
            conns.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
        }
        for conn in conns.iter_mut() {
            let first = thread_name(conn).await;
            assert!(first.starts_with("hearth-http-"), "served by {first:?}");
            for _ in 0..3 {
                assert_eq!(thread_name(conn).await, first, "a connection stays on its thread");
            }
        }
        tokio::time::timeout(Duration::from_secs(20), server.stop()).await.expect("stopped in time");
        let mut closed = conns.pop().expect("a connection");
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), closed.read_to_end(&mut rest)).await.expect("closed in time");
        assert!(read.is_err() || rest.is_empty(), "open connections are dropped");
        assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "no longer accepting");
    }

    /// Serves `/thread` with busy-polling up to `max` and sends `n`
    /// requests back to back on one connection; returns the options (whose
    /// counter says how long was polled) and the running server.
    async fn polled_after_requests(max: Duration, n: usize) -> (BusyPollOptions, HttpServer) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new().route("/thread", get(|| async { format!("{}\n", std::thread::current().name().unwrap_or_default()) }));
        let options = BusyPollOptions { max, ..Default::default() };
        let server = HttpServer::start(listener, app, WebSecurity::none(), 1, &options).expect("start");
        let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
        for _ in 0..n {
            thread_name(&mut conn).await;
        }
        (options, server)
    }

    #[tokio::test]
    async fn serving_threads_poll_between_close_requests_then_stop_polling() {
        let max = Duration::from_millis(50);
        let (options, server) = polled_after_requests(max, 20).await;
        tokio::time::sleep(max * 4).await;
        let polled = options.polled_seconds.get();
        assert!(polled > 0.0, "requests back to back are polled for");
        tokio::time::sleep(max * 2).await;
        assert_eq!(options.polled_seconds.get(), polled, "polling ends within the window after the last answer");
        server.stop().await;

        let (options, server) = polled_after_requests(Duration::ZERO, 20).await;
        tokio::time::sleep(max).await;
        assert_eq!(options.polled_seconds.get(), 0.0, "--web.busy-poll=0s never polls");
        server.stop().await;
    }
}
