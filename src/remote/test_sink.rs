//! A remote-write receiver for tests: records what arrives (decoded, with
//! its headers) and answers from a script of statuses, then 204.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::codec;
use super::proto::WriteRequest;

#[derive(Default)]
pub struct SinkState {
    /// Requests answered 2xx, in arrival order.
    pub accepted: Vec<WriteRequest>,
    /// Every request's headers.
    pub headers: Vec<HeaderMap>,
    /// Statuses (and Retry-After values) to answer before answering 204.
    pub script: VecDeque<(u16, Option<&'static str>)>,
}

pub struct Sink {
    pub url: String,
    pub state: Arc<Mutex<SinkState>>,
}

impl Sink {
    pub async fn start() -> Sink {
        let state = Arc::new(Mutex::new(SinkState::default()));
        let app = Router::new().route("/write", post(receive)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the test sink");
        let url = format!("http://{}/write", listener.local_addr().expect("sink address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Sink { url, state }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, SinkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Samples accepted so far.
    pub fn samples(&self) -> usize {
        self.lock().accepted.iter().flat_map(|r| &r.timeseries).map(|t| t.samples.len()).sum()
    }
}

async fn receive(State(s): State<Arc<Mutex<SinkState>>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let mut st = s.lock().unwrap_or_else(|p| p.into_inner());
    st.headers.push(headers);
    if let Some((code, retry_after)) = st.script.pop_front() {
        let status = StatusCode::from_u16(code).expect("scripted status");
        return match retry_after {
            Some(v) => (status, [("retry-after", v)], "scripted").into_response(),
            None => (status, "scripted").into_response(),
        };
    }
    match codec::decode(&body) {
        Ok(req) => {
            st.accepted.push(req);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}
