//! An alert as sent to Alertmanager (its API v2 `postableAlert`).

use serde::Serialize;

use crate::model::Labels;

/// One alert notification. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub labels: Labels,
    pub annotations: Labels,
    /// When the alert started firing.
    pub starts_at: i64,
    /// When it resolved, or until when it is valid without a resend.
    pub ends_at: i64,
    /// Link back to the expression that produced it.
    pub generator_url: String,
}

impl Alert {
    pub fn name(&self) -> &str {
        self.labels.get("alertname")
    }

    /// Whether the alert has resolved by `now_ms`.
    pub fn resolved(&self, now_ms: i64) -> bool {
        self.ends_at <= now_ms
    }

    /// The JSON body element Alertmanager's `POST /api/v2/alerts` takes.
    pub fn to_api_v2(&self) -> ApiAlert<'_> {
        ApiAlert {
            labels: self.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect(),
            annotations: self.annotations.iter().map(|l| (l.name.as_str(), l.value.as_str())).collect(),
            starts_at: crate::server::rfc3339(ms_to_time(self.starts_at)),
            ends_at: crate::server::rfc3339(ms_to_time(self.ends_at)),
            generator_url: &self.generator_url,
        }
    }
}

/// Alertmanager's wire shape of an alert.
#[derive(Debug, Serialize)]
pub struct ApiAlert<'a> {
    pub labels: std::collections::BTreeMap<&'a str, &'a str>,
    pub annotations: std::collections::BTreeMap<&'a str, &'a str>,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: &'a str,
}

/// A Unix-millisecond timestamp as a `SystemTime` (clamped at the epoch).
pub fn ms_to_time(ms: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64)
}
