//! The `AlertRule` resource: rule groups in Prometheus' rule-file shape.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{DURATION_PATTERN, SelectedStatus};

/// Recording and alerting rule groups; the operator checks every expression
/// with the PromQL parser before it reaches a rule file.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "monitoring.hearth.dev",
    version = "v1alpha1",
    kind = "AlertRule",
    shortname = "arule",
    namespaced,
    status = "SelectedStatus",
    printcolumn = r#"{"name":"Accepted","type":"string","jsonPath":".status.conditions[?(@.type==\"Accepted\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Accepted\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AlertRuleSpec {
    /// Group names must be unique: the API server checks it (the bound on
    /// the number of groups keeps that check within its cost limit), and so
    /// does the operator, which rejects the object otherwise (for objects
    /// that never met the API server, as in `hearth operator preview`).
    #[schemars(length(max = 256))]
    #[x_kube(validation = Rule::new("self.all(g, self.exists_one(h, h.name == g.name))").message("group names must be unique"))]
    pub groups: Vec<RuleGroupSpec>,
}

/// A rule group.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleGroupSpec {
    #[x_kube(validation = Rule::new("size(self) > 0").message("name must not be empty"))]
    #[schemars(length(max = 253))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub query_offset: Option<String>,
    pub rules: Vec<RuleSpec>,
}

/// A recording (`record`) or alerting (`alert`) rule.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.record) != has(self.alert)").message("exactly one of record and alert"))]
#[x_kube(validation = Rule::new("!has(self.record) || (!has(self.annotations) && !has(self.__for__) && !has(self.keep_firing_for))").message("recording rules take no annotations, for or keep_firing_for"))]
pub struct RuleSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"))]
    pub record: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    #[x_kube(validation = Rule::new("size(self) > 0").message("expr must not be empty"))]
    pub expr: String,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub for_: Option<String>,
    #[serde(default, rename = "keep_firing_for", skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub keep_firing_for: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}
