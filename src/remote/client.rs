//! One remote-write HTTP request and what its answer means for the queue.
//!
//! The HTTP client itself (TLS, proxy, redirects, basic auth, bearer or other
//! `Authorization` credentials read per request) is the scrape client's
//! ([`crate::scrape::client`]), built from the same `HttpClientConfig`.
//!
//! Classification follows Prometheus 2.x and 3.x: 2xx is success; 5xx and
//! connection errors are recoverable; 429 is recoverable only with
//! `queue_config.retry_on_http_429: true` (Prometheus' opt-in, default off;
//! otherwise it is dropped like other 4xx); any other status is
//! non-recoverable: the batch is dropped and counted as failed. A
//! `Retry-After` header (seconds or an HTTP date) on a recoverable answer
//! replaces the exponential backoff for that retry.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};

use crate::config::RemoteWriteConfig;
use crate::scrape::client::{self as http, Credentials};

/// The protocol version header value of remote write 1.0.
pub const PROTOCOL_VERSION: &str = "0.1.0";

/// How much of an error response's body goes into the message.
const ERROR_BODY_BYTES: usize = 512;

/// A failed send, and whether to try again.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: after `retry_after` when the server said so, else
    /// after the queue's backoff.
    #[error("{msg}")]
    Recoverable { msg: String, retry_after: Option<Duration> },
    /// Retrying cannot help; the batch is dropped.
    #[error("{msg}")]
    NonRecoverable { msg: String },
}

/// Sends remote-write bodies to one endpoint.
pub struct WriteClient {
    http: reqwest::Client,
    url: String,
    creds: Credentials,
    headers: HeaderMap,
    timeout: Duration,
    retry_on_429: bool,
}

impl WriteClient {
    /// Builds the client; errors name the setting or file at fault.
    pub fn new(cfg: &RemoteWriteConfig) -> Result<WriteClient, String> {
        let http = http::build(&cfg.http_client)?;
        let mut headers = HeaderMap::new();
        for (k, v) in &cfg.headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("remote_write header {k:?}: {e}"))?;
            let value = HeaderValue::from_str(v).map_err(|e| format!("remote_write header {k:?}: {e}"))?;
            headers.insert(name, value);
        }
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"));
        headers.insert("x-prometheus-remote-write-version", HeaderValue::from_static(PROTOCOL_VERSION));
        Ok(WriteClient {
            http,
            url: cfg.url.clone(),
            creds: Credentials::from_config(&cfg.http_client),
            headers,
            timeout: cfg.remote_timeout,
            retry_on_429: cfg.queue_config.retry_on_http_429,
        })
    }

    /// POSTs one compressed `WriteRequest`.
    pub async fn send(&self, body: Vec<u8>) -> Result<(), SendError> {
        let req = self.http.post(&self.url).headers(self.headers.clone()).timeout(self.timeout).body(body);
        let req = http::authorize(req, &self.creds).map_err(|msg| SendError::NonRecoverable { msg })?;
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Err(SendError::Recoverable { msg: format!("sending to {}: {e}", self.url), retry_after: None }),
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = resp.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = resp.bytes().await.unwrap_or_default();
        let text = String::from_utf8_lossy(&body[..body.len().min(ERROR_BODY_BYTES)]);
        let msg = format!("server returned HTTP status {status}: {}", text.trim());
        Err(classify(status, retry_after.as_deref(), self.retry_on_429, SystemTime::now(), msg))
    }
}

/// What a non-2xx answer means: see the module documentation.
pub fn classify(status: StatusCode, retry_after: Option<&str>, retry_on_429: bool, now: SystemTime, msg: String) -> SendError {
    let recoverable = status.is_server_error() || (retry_on_429 && status == StatusCode::TOO_MANY_REQUESTS);
    if recoverable {
        SendError::Recoverable { msg, retry_after: retry_after.and_then(|v| parse_retry_after(v, now)) }
    } else {
        SendError::NonRecoverable { msg }
    }
}

/// `Retry-After`: delay seconds, or an HTTP date (IMF-fixdate, e.g.
/// `Wed, 21 Oct 2015 07:28:00 GMT`). A date in the past means now.
pub fn parse_retry_after(v: &str, now: SystemTime) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_http_date(v)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn parse_http_date(v: &str) -> Option<SystemTime> {
    // "Wed, 21 Oct 2015 07:28:00 GMT"
    let rest = v.split_once(", ")?.1;
    let mut f = rest.split(' ');
    let day: i64 = f.next()?.parse().ok()?;
    let mon = f.next()?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].iter().position(|m| *m == mon)?;
    let year: i64 = f.next()?.parse().ok()?;
    let mut hms = f.next()?.split(':').map(|x| x.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if f.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    let secs = days_from_civil(year, month as i64 + 1, day) * 86_400 + h * 3600 + m * 60 + s;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn class(code: u16, retry_after: Option<&str>, retry_on_429: bool) -> SendError {
        let status = StatusCode::from_u16(code).expect("status");
        classify(status, retry_after, retry_on_429, at(1_445_412_000), "m".into())
    }

    #[test]
    fn server_errors_are_retried_and_honour_retry_after() {
        assert_eq!(class(500, None, false), SendError::Recoverable { msg: "m".into(), retry_after: None });
        assert_eq!(class(503, Some("7"), false), SendError::Recoverable { msg: "m".into(), retry_after: Some(Duration::from_secs(7)) });
        // 2015-10-21T07:28:00Z is 1445412480, 480 s after `now`.
        assert_eq!(
            class(502, Some("Wed, 21 Oct 2015 07:28:00 GMT"), false),
            SendError::Recoverable { msg: "m".into(), retry_after: Some(Duration::from_secs(480)) }
        );
        assert_eq!(
            class(500, Some("Wed, 21 Oct 2015 07:00:00 GMT"), false),
            SendError::Recoverable { msg: "m".into(), retry_after: Some(Duration::ZERO) },
            "a date in the past means retry now"
        );
        assert_eq!(class(500, Some("soon"), false), SendError::Recoverable { msg: "m".into(), retry_after: None });
    }

    #[test]
    fn too_many_requests_is_retried_only_when_configured() {
        assert_eq!(class(429, Some("3"), false), SendError::NonRecoverable { msg: "m".into() });
        assert_eq!(class(429, Some("3"), true), SendError::Recoverable { msg: "m".into(), retry_after: Some(Duration::from_secs(3)) });
    }

    #[test]
    fn other_client_errors_are_dropped() {
        for code in [400, 401, 403, 404, 413] {
            assert_eq!(class(code, Some("1"), true), SendError::NonRecoverable { msg: "m".into() }, "{code}");
        }
    }

    #[test]
    fn http_dates_match_the_civil_calendar() {
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(at(0)));
        assert_eq!(parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"), Some(at(951_825_600)));
        assert_eq!(parse_http_date("Tue, 29 Feb 2000 12:00:00 CET"), None);
    }
}
