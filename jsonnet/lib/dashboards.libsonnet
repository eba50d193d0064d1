// Grafana dashboards for Hearth itself, each in a ConfigMap labelled
// grafana_dashboard: "1" for Grafana's dashboard sidecar. Every metric
// name here is checked against the real /metrics by tests/render.rs.
local g = import 'grafana.libsonnet';
local meta = import 'meta.libsonnet';

local rate(metric, by) = 'sum by (%s) (rate(%s[$__rate_interval]))' % [by, metric];
local p99(histogram, by) = 'histogram_quantile(0.99, sum by (le, %s) (rate(%s_bucket[$__rate_interval])))' % [by, histogram];

local server = g.dashboard('Hearth / Server', 'hearth-server', [
  g.row('Ingestion'),
  g.timeseries('Samples appended / s', [g.target(rate('prometheus_tsdb_head_samples_appended_total', 'instance'), '{{instance}}')], 'ops'),
  g.timeseries('Scrape duration', [g.target('max by (job) (scrape_duration_seconds)', '{{job}}')], 's'),
  g.row('Head'),
  g.timeseries('Head series', [g.target('sum by (instance) (prometheus_tsdb_head_series)', '{{instance}}')]),
  g.timeseries('Series created and removed / s', [
    g.target(rate('prometheus_tsdb_head_series_created_total', 'instance'), 'created {{instance}}'),
    g.target(rate('prometheus_tsdb_head_series_removed_total', 'instance'), 'removed {{instance}}'),
  ], 'ops'),
  g.row('WAL'),
  g.timeseries('WAL fsync duration (p99)', [g.target(p99('prometheus_tsdb_wal_fsync_duration_seconds', 'instance'), '{{instance}}')], 's'),
  g.timeseries('WAL segments, checkpoints and corruptions', [
    g.target('sum by (instance) (increase(prometheus_tsdb_wal_segments_cut_total[1h]))', 'segments cut {{instance}}'),
    g.target('sum by (instance) (increase(prometheus_tsdb_checkpoint_creations_total[1h]))', 'checkpoints {{instance}}'),
    g.target('sum by (instance) (increase(prometheus_tsdb_wal_corruptions_total[1h]))', 'corruptions {{instance}}'),
  ]),
  g.row('Queries'),
  g.timeseries('Query duration (p99) and queries in flight', [
    g.target(p99('hearth_engine_query_duration_seconds', 'kind'), 'p99 {{kind}}'),
    g.target('sum by (instance) (prometheus_engine_queries)', 'in flight {{instance}}'),
  ], 's'),
  g.timeseries('Queries and failures / s', [
    g.target(rate('hearth_engine_query_duration_seconds_count', 'kind'), '{{kind}}'),
    g.target(rate('hearth_engine_query_failures_total', 'reason'), 'failed: {{reason}}'),
  ], 'ops'),
  g.row('Rules'),
  g.timeseries('Rule evaluations and failures / s', [
    g.target(rate('prometheus_rule_evaluations_total', 'instance'), 'evaluations {{instance}}'),
    g.target(rate('prometheus_rule_evaluation_failures_total', 'instance'), 'failures {{instance}}'),
  ], 'ops'),
  g.timeseries('Rule group duration', [g.target('max by (rule_group) (prometheus_rule_group_last_duration_seconds)', '{{rule_group}}')], 's'),
  g.row('Scrape health'),
  g.timeseries('Targets up', [
    g.target('sum by (job) (up)', 'up {{job}}'),
    g.target('count by (job) (up == 0)', 'down {{job}}'),
  ]),
  g.timeseries('Samples per scrape', [g.target('sum by (job) (scrape_samples_scraped)', '{{job}}')]),
  g.row('Remote write'),
  g.timeseries('Samples sent and failed / s', [
    g.target(rate('prometheus_remote_storage_samples_total', 'remote_name'), 'sent {{remote_name}}'),
    g.target(rate('prometheus_remote_storage_samples_failed_total', 'remote_name'), 'failed {{remote_name}}'),
    g.target(rate('prometheus_remote_storage_samples_retried_total', 'remote_name'), 'retried {{remote_name}}'),
  ], 'ops'),
  g.timeseries('Remote write delay', [
    g.target('max by (instance) (prometheus_remote_storage_highest_timestamp_in_seconds) - ignoring (remote_name, url) group_right max by (instance, remote_name, url) (prometheus_remote_storage_queue_highest_sent_timestamp_seconds)', '{{remote_name}}'),
  ], 's'),
  g.row('Storage'),
  g.timeseries('Block bytes', [g.target('sum by (instance) (prometheus_tsdb_storage_blocks_bytes)', '{{instance}}')], 'bytes'),
  g.timeseries('Compactions / h', [
    g.target('sum by (instance) (increase(prometheus_tsdb_compactions_total[1h]))', 'done {{instance}}'),
    g.target('sum by (instance) (increase(prometheus_tsdb_compactions_failed_total[1h]))', 'failed {{instance}}'),
  ]),
]);

local operator = g.dashboard('Hearth / Operator', 'hearth-operator', [
  g.row('Reconciles'),
  g.timeseries('Reconciles / s', [g.target(rate('hearth_operator_reconciles_total', 'instance'), '{{instance}}')], 'ops'),
  g.timeseries('Reconcile duration', [
    g.target(p99('hearth_operator_reconcile_duration_seconds', 'instance'), 'p99 {{instance}}'),
    g.target('sum by (instance) (rate(hearth_operator_reconcile_duration_seconds_sum[$__rate_interval])) / sum by (instance) (rate(hearth_operator_reconcile_duration_seconds_count[$__rate_interval]))', 'mean {{instance}}'),
  ], 's'),
  g.timeseries('Reconcile errors / s', [g.target(rate('hearth_operator_reconcile_errors_total', 'reason'), '{{reason}}')], 'ops'),
  g.timeseries('Queue depth', [g.target('max by (instance) (hearth_operator_reconcile_queue_depth)', '{{instance}}')]),
  g.timeseries('Objects written / s', [g.target(rate('hearth_operator_object_writes_total', 'instance'), '{{instance}}')], 'ops'),
]);

local dashboards = { server: server, operator: operator };

function(values) {
  [name]: {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta.metadata('hearth-dashboard-' + name, values.namespace, meta.commonLabels(values) { grafana_dashboard: '1' }),
    data: { ['hearth-' + name + '.json']: std.manifestJsonEx(dashboards[name], '  ') },
  }
  for name in std.objectFields(dashboards)
}
