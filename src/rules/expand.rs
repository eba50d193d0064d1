//! Expanding alert label and annotation templates, as Prometheus does: with
//! `$labels`, `$value`, `$externalLabels` and `$externalURL` defined, and the
//! `query` function answered by the rule's own engine at evaluation time.

use std::collections::BTreeMap;

use super::query::QueryContext;
use super::template::{self, ExecContext, QueryRunner};
use crate::model::Labels;

/// What templates may refer to besides the alert itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateEnv {
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
}

/// Answers `query "..."` in templates at the evaluation time.
struct AtTime<'a> {
    q: &'a QueryContext<'a>,
    ts: i64,
}

impl QueryRunner for AtTime<'_> {
    fn query(&self, expr: &str) -> Result<Vec<template::Sample>, String> {
        let v = self.q.vector(expr, self.ts)?;
        Ok(v.into_iter()
            .map(|s| template::Sample { labels: s.metric.iter().map(|l| (l.name.clone(), l.value.clone())).collect(), value: s.v })
            .collect())
    }

    fn now(&self) -> Option<f64> {
        Some(self.ts as f64 / 1000.0)
    }
}

impl TemplateEnv {
    /// Expands `text` for the alert `rule` over a result sample. A template
    /// error becomes the text, as in Prometheus, so the alert still goes
    /// out and the mistake is visible where it is read.
    pub fn expand(&self, rule: &str, text: &str, labels: &Labels, value: f64, q: &QueryContext<'_>, ts: i64) -> String {
        if !text.contains("{{") {
            return text.to_string();
        }
        let runner = AtTime { q, ts };
        let ctx =
            ExecContext { query: Some(&runner), external_url: self.external_url.clone(), path_prefix: path_prefix(&self.external_url) };
        let map: BTreeMap<String, String> = labels.iter().map(|l| (l.name.clone(), l.value.clone())).collect();
        template::expand_alert_template(rule, text, &map, &self.external_labels, &self.external_url, value, &ctx).unwrap_or_else(|e| {
            tracing::warn!(alert = rule, error = %e, "expanding alert template failed");
            format!("<error expanding template: {}>", e.expander_message())
        })
    }
}

/// The path part of the external URL (`pathPrefix` in templates).
fn path_prefix(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or(String::new(), |i| rest[i..].trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_prefix_is_the_url_path_without_trailing_slash() {
        assert_eq!(path_prefix("http://example.com:9090/"), "");
        assert_eq!(path_prefix("http://example.com/prometheus/"), "/prometheus");
        assert_eq!(path_prefix("example.com/x"), "/x");
    }
}
